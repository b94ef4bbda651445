"""The env renderer draws one env headless, with the robot in the middle of the frame wherever it walks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import mujoco
import numpy as np
import pytest

from humanoid_prior.envs.batched_sim import BatchedSim, SimCfg
from humanoid_prior.envs.model_builder import RobotModel
from humanoid_prior.envs.rendering import EnvRenderer, gl_backend

W, H = 160, 120


def _renderer(rm: RobotModel, width: int = W, height: int = H, shadows: bool = True) -> EnvRenderer:
    try:
        return EnvRenderer(rm, width, height, shadows=shadows)
    except RuntimeError as exc:  # no usable OpenGL on this machine: nothing to test
        pytest.skip(f"no OpenGL backend works here (MUJOCO_GL={gl_backend()!r}): {exc}")


@pytest.fixture(scope="module")
def sim(built: Callable[[str], RobotModel]) -> Iterator[BatchedSim]:
    with BatchedSim(built("g1"), SimCfg(num_envs=2, nthread=1)) as s:
        yield s


@pytest.fixture(scope="module")
def renderer(sim: BatchedSim) -> Iterator[EnvRenderer]:
    # Without shadows: with software OpenGL (no GPU) a shadowed frame takes ~0.25 s, a plain one ~0.05 s.
    r = _renderer(sim.robot_model, shadows=False)
    # A plain ground (no checker texture), so that "far from the ground's colour" means "robot".
    r.model.geom_matid[r.model.geom("ground").id] = -1
    yield r
    r.close()


def _robot_fraction(img: np.ndarray) -> float:
    """Share of the central ninth of the frame whose colour is far from the ground's (bottom corners)."""
    h, w, _ = img.shape
    corners = np.concatenate([img[-h // 8 :, : w // 8], img[-h // 8 :, -w // 8 :]], axis=1)
    ground = np.median(corners.reshape(-1, 3), axis=0)
    centre = img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].astype(np.int64)
    return float((np.abs(centre - ground).sum(axis=-1) > 60).mean())


def _shifted(sim: BatchedSim, env: int, dxy: tuple[float, float]) -> np.ndarray:
    state = sim.state[env].copy()
    a = 1 + sim.robot_model.base_qpos_adr  # FULLPHYSICS: time, then qpos
    state[a : a + 2] += dxy
    return state


def test_frame_shape_and_robot_in_centre(sim: BatchedSim, renderer: EnvRenderer) -> None:
    img = renderer.render(sim.state[0])
    assert img.shape == (H, W, 3)
    assert img.dtype == np.uint8
    assert img.std() > 10.0  # not blank
    assert _robot_fraction(img) > 0.1  # the robot covers ~25% of the central ninth


def test_camera_tracks_the_walking_robot(sim: BatchedSim, renderer: EnvRenderer) -> None:
    home = renderer.render(sim.state[0])
    away = renderer.render(_shifted(sim, 0, (5.0, 3.0)))
    # The camera followed: the same picture (flat ground), the robot still in the middle.
    assert _robot_fraction(away) > 0.1
    assert np.abs(home.astype(np.int64) - away).mean() < 4.0
    # Control: a camera that stays where it looked loses the robot, so the measure above means it.
    renderer.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    renderer.camera.lookat[:] = sim.base_pos[0]
    try:
        assert _robot_fraction(renderer.render(_shifted(sim, 0, (5.0, 3.0)))) < 0.02
    finally:
        renderer.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING


def test_large_frame_with_shadows_then_close(sim: BatchedSim) -> None:
    model = sim.robot_model.model
    width = model.vis.global_.offwidth + 60  # wider than MuJoCo's default offscreen buffer
    with _renderer(sim.robot_model, width, 40) as r:  # the default settings, shadows included
        assert r.render(sim.state[1]).shape == (40, width, 3)
        with pytest.raises(ValueError, match="FULLPHYSICS"):
            r.render(sim.state)  # the whole batch, not one env
    assert model.vis.global_.offwidth == width - 60  # the caller's model is untouched
    r.close()  # idempotent
    with pytest.raises(RuntimeError, match="after close"):
        r.render(sim.state[0])


def test_unknown_backend_names_the_variable(sim: BatchedSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "nonsense")
    with pytest.raises(RuntimeError, match="MUJOCO_GL"):
        EnvRenderer(sim.robot_model, 32, 24)
