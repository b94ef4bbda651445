"""Headless RGB frames of one environment of a `BatchedSim`, seen by a camera that follows the robot.

`EnvRenderer` loads one env's FULLPHYSICS state into a private `MjData` and draws it offscreen with
MuJoCo's own OpenGL renderer (`mjr_render`), from a tracking camera that keeps the robot's base body in
the middle of the frame at a fixed distance, azimuth and elevation while it walks across the terrain.

OpenGL backend. MuJoCo's Python package picks its GL backend from the ``MUJOCO_GL`` environment variable
*when ``mujoco`` is imported* (not when the first context is created); unset, it picks GLFW, which
needs a display and fails on a headless machine. ``mujoco`` is usually imported long before this module
(every simulator module imports it), so setting the variable here would come too late for
``mujoco.Renderer``. `EnvRenderer` therefore creates its GL context itself, with the backend named by
``MUJOCO_GL`` at the time the renderer is constructed, or EGL when the variable is unset (EGL renders
without a display, on a GPU or on Mesa's software driver). It then does what ``mujoco.Renderer`` does:
an offscreen `MjrContext`, `mjv_updateScene`, `mjr_render`, `mjr_readPixels`. OSMesa is used only when
asked for (``MUJOCO_GL=osmesa``): it is not tried as an automatic fallback, because it needs the
OSMesa library, which machines with EGL rarely have.

Frame size. The renderer works on a private copy of the model whose offscreen framebuffer
(``vis.global_.offwidth/offheight``) is set to the requested size, so any size the GL driver supports
works; the caller's model is not modified.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any

# Set before `mujoco` is imported below: if this module happens to be the first to import mujoco, then
# mujoco's own `mujoco.Renderer` (used elsewhere) also gets the headless backend. A value the user set
# is kept. The renderer below does not depend on this ordering (see the module docstring).
if not os.environ.get("MUJOCO_GL"):
    os.environ["MUJOCO_GL"] = "egl"

import mujoco
import numpy as np

if TYPE_CHECKING:
    from types import TracebackType

    from .model_builder import RobotModel

_FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS.value
_MAX_GEOM = 10_000
_DISABLED = ("disable", "disabled", "off", "false", "0")
_FIX = (
    "Set MUJOCO_GL before starting Python: MUJOCO_GL=egl (headless; needs libEGL, from a GPU driver or "
    "Mesa, e.g. `apt-get install libegl1`), MUJOCO_GL=osmesa (software; needs libOSMesa, e.g. "
    "`apt-get install libosmesa6`), or MUJOCO_GL=glfw (needs a display)."
)


def gl_backend() -> str:
    """The OpenGL backend `EnvRenderer` uses: ``MUJOCO_GL`` lower-cased, or "egl" when it is unset."""
    return os.environ.get("MUJOCO_GL", "").strip().lower() or "egl"


_FAILED: dict[str, str] = {}
"""Why each backend failed in this process. MuJoCo aborts the whole process when an `MjrContext` is
created again after a failed attempt (measured with GLFW and no display), so a failure is final."""


def _new_gl_context(backend: str, width: int, height: int) -> Any:
    """A current OpenGL context of `backend`, from MuJoCo's own context classes."""
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif backend in ("glfw", "glx", "enable", "enabled", "on", "true", "1"):
        import glfw
        from mujoco.glfw import GLContext
    else:
        raise RuntimeError("not a backend this renderer knows")
    context = GLContext(width, height)
    context.make_current()
    if GLContext.__module__ == "mujoco.glfw" and not glfw.get_current_context():
        context.free()  # GLFW only warns when it cannot open its (hidden) window, e.g. without a display
        raise RuntimeError("GLFW could not open a window (is DISPLAY set?)")
    return context


def _open_gl(model: mujoco.MjModel, width: int, height: int) -> tuple[Any, mujoco.MjrContext]:
    """A GL context of `gl_backend()` and MuJoCo's offscreen rendering context on it, or a RuntimeError."""
    backend = gl_backend()
    if backend in _DISABLED:
        raise RuntimeError(f"rendering is disabled by MUJOCO_GL={backend!r}. {_FIX}")
    if backend in _FAILED:
        raise RuntimeError(_FAILED[backend])
    gl = None
    try:
        gl = _new_gl_context(backend, width, height)
        mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
    except Exception as exc:
        if gl is not None:
            gl.free()
        _FAILED[backend] = f"cannot render with MUJOCO_GL={backend!r} ({type(exc).__name__}: {exc}). {_FIX}"
        raise RuntimeError(_FAILED[backend]) from exc
    mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, mjr)
    return gl, mjr


class EnvRenderer:
    """Render one environment's state to an RGB frame (H, W, 3) uint8, with a camera tracking the base.

    Use as ``with EnvRenderer(sim.robot_model) as r: frame = r.render(sim.state[i])``, or call `close`.
    The camera looks at the base body's subtree centre of mass (MuJoCo's tracking camera) from
    `distance` metres, at `azimuth` degrees about the world z axis and `elevation` degrees (negative
    looks down); its orientation is fixed in the world, so the terrain moves past while the robot stays
    centred. `shadows` False skips the shadow pass, the costliest part of a frame with software OpenGL
    (Mesa's llvmpipe: ~0.25 s a frame with shadows, ~0.05 s without). Not thread-safe: one renderer
    per thread.
    """

    def __init__(
        self,
        robot_model: RobotModel,
        width: int = 640,
        height: int = 480,
        *,
        distance: float = 3.0,
        azimuth: float = 135.0,
        elevation: float = -20.0,
        shadows: bool = True,
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"width and height must be >= 1, got {width}x{height}.")
        self.width = width
        self.height = height
        # Private copy: its offscreen framebuffer is sized to the frame without touching the caller's model.
        self._model = copy.copy(robot_model.model)
        self._model.vis.global_.offwidth = width
        self._model.vis.global_.offheight = height
        self._data = mujoco.MjData(self._model)
        self._nstate = mujoco.mj_stateSize(self._model, _FULLPHYSICS)

        self.camera = mujoco.MjvCamera()
        """The tracking camera; its distance, azimuth and elevation may be changed between frames."""
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = self._model.body(robot_model.robot.base_body).id
        self.camera.distance = distance
        self.camera.azimuth = azimuth
        self.camera.elevation = elevation
        self._option = mujoco.MjvOption()
        self._scene = mujoco.MjvScene(self._model, maxgeom=_MAX_GEOM)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        self._rect = mujoco.MjrRect(0, 0, width, height)

        self._gl: Any = None
        self._context: mujoco.MjrContext | None = None
        self._gl, self._context = _open_gl(self._model, width, height)
        self._pixels = np.empty((height, width, 3), dtype=np.uint8)

    @property
    def model(self) -> mujoco.MjModel:
        """The renderer's private copy of the model."""
        return self._model

    def render(self, state: np.ndarray) -> np.ndarray:
        """Draw the env whose FULLPHYSICS state vector (nstate,) is `state`, e.g. ``sim.state[i]``.

        Returns a new (height, width, 3) uint8 RGB array, top row first.
        """
        if self._context is None:
            raise RuntimeError("EnvRenderer.render called after close().")
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self._nstate,):
            raise ValueError(
                f"state must be one env's FULLPHYSICS vector of shape ({self._nstate},), got {state.shape}; "
                "pass sim.state[i]."
            )
        mujoco.mj_setState(self._model, self._data, state, _FULLPHYSICS)
        mujoco.mj_forward(self._model, self._data)  # positions, and the subtree com the camera tracks
        mujoco.mjv_updateScene(
            self._model,
            self._data,
            self._option,
            None,
            self.camera,
            mujoco.mjtCatBit.mjCAT_ALL.value,
            self._scene,
        )
        self._gl.make_current()
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._rect, self._context)
        # OpenGL's first row is the bottom of the image.
        return np.flipud(self._pixels).copy()

    def close(self) -> None:
        """Free the GL resources; idempotent. The renderer cannot render afterwards."""
        if self._context is not None:
            if self._gl is not None:
                with self._gl.as_current():  # and restore the caller's current context, if any
                    self._context.free()
            else:
                self._context.free()
            self._context = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None

    def __enter__(self) -> EnvRenderer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A renderer dropped without close() still frees its context (as mujoco.Renderer does).
        if getattr(self, "_gl", None) is not None or getattr(self, "_context", None) is not None:
            self.close()
