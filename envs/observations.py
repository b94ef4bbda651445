"""Observation terms declared by name, grouped into "proprio" and "privileged".

A term is a function of the `TaskState` returning (N, d); a group lists terms with their scale,
noise and clip. Noise is what hardware adds: uniform per step (`noise`) and a per-env constant offset
resampled at every reset (`bias`, e.g. encoder offsets), both in physical units before scaling.
The layout of each group (term, start, stop) is explicit, so nothing downstream slices by offsets
it has to guess; the export manifest writes it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .frames import quat_rotate_inverse
from .task_state import TaskState

ObsFn = Callable[[TaskState], np.ndarray]


def gait_phase(policy_step: Any, control_period_s: float, gait_period_s: float) -> Any:
    """The gait clock's phase in [0, 1) after `policy_step` policy steps of an episode (int or array).

    The env and the robot runtime both advance the clock with it, so the robot's clock is the trained one.
    """
    return (policy_step * control_period_s / gait_period_s) % 1.0


def _gait_clock(s: TaskState) -> np.ndarray:
    phase = 2.0 * np.pi * s.gait_phase
    return np.column_stack([np.sin(phase), np.cos(phase)])


def _flat(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1)


OBS_TERMS: dict[str, ObsFn] = {
    # proprioception
    "base_ang_vel": lambda s: s.base_ang_vel,
    "projected_gravity": lambda s: s.projected_gravity,
    "commands": lambda s: s.commands,
    "joint_pos": lambda s: s.joint_pos - s.default_joint_pos,
    "joint_vel": lambda s: s.joint_vel,
    "actions": lambda s: s.actions,
    "gait_clock": _gait_clock,
    # privileged
    "base_lin_vel": lambda s: s.base_lin_vel,
    "base_height": lambda s: s.base_height[:, None],
    "height_scan": lambda s: s.height_scan,
    "feet_height_scan": lambda s: s.feet_height_scan,
    "feet_contact_force": lambda s: _flat(s.feet_contact_force),
    "feet_contact": lambda s: s.feet_contact.astype(np.float64),
    "friction": lambda s: s.friction[:, None],
    "added_mass": lambda s: s.added_mass[:, None],
    "com_offset": lambda s: s.com_offset,
    "motor_strength": lambda s: s.motor_strength,
    # The push in the base frame: the robot's yaw is random, and a mirror of the state must mirror it.
    "push_vel": lambda s: quat_rotate_inverse(s.base_quat, s.push_vel),
    "latency_steps": lambda s: s.latency_steps[:, None].astype(np.float64),
}
"""Every observation term by name: a function of the TaskState returning (N, d)."""


@dataclass(frozen=True)
class ObsTermCfg:
    """One term of an observation group."""

    name: str
    """A key of OBS_TERMS."""
    scale: float = 1.0
    """Multiplies the value (after noise)."""
    noise: float = 0.0
    """Half-width of uniform noise added every step, physical units."""
    bias: float = 0.0
    """Half-width of a uniform per-env offset drawn at each reset, physical units."""
    clip: float | None = None
    """The scaled value is clipped to [-clip, clip]; None leaves it unclipped."""


PROPRIO_TERMS: tuple[ObsTermCfg, ...] = (
    ObsTermCfg("base_ang_vel", scale=0.25, noise=0.2),
    ObsTermCfg("projected_gravity", noise=0.05),
    ObsTermCfg("commands"),
    ObsTermCfg("joint_pos", noise=0.01, bias=0.02),  # bias: encoder offset after calibration
    ObsTermCfg("joint_vel", scale=0.05, noise=1.5),
    ObsTermCfg("actions"),
    ObsTermCfg("gait_clock"),
)
"""What the robot's own sensors give; noise as on hardware (legged_gym's levels, in physical units)."""

PRIVILEGED_EXTRA_TERMS: tuple[ObsTermCfg, ...] = (
    ObsTermCfg("base_lin_vel", scale=2.0),
    ObsTermCfg("base_height"),
    ObsTermCfg("height_scan"),  # already clipped to ±1 m in the TaskState
    ObsTermCfg("feet_height_scan"),
    ObsTermCfg("feet_contact_force", scale=0.005),
    ObsTermCfg("feet_contact"),
    ObsTermCfg("friction"),
    ObsTermCfg("added_mass", scale=0.3),
    ObsTermCfg("com_offset", scale=10.0),
    ObsTermCfg("motor_strength"),
    ObsTermCfg("push_vel"),
    ObsTermCfg("latency_steps"),  # the action delay the teacher acts through (control steps)
)
"""What only the simulator knows; the privileged group is the clean proprio terms plus these."""


@dataclass(frozen=True)
class ObsGroupCfg:
    """An ordered list of terms, with noise on or off."""

    terms: tuple[ObsTermCfg, ...]
    """Terms in the order they are concatenated."""
    noisy: bool = False
    """Apply each term's noise and bias (proprio for the student and on hardware); False: clean values."""
    history_len: int = 1
    """Frames of this group the env also emits as ``<group>_history`` (oldest first); 1: none."""


def default_groups() -> dict[str, ObsGroupCfg]:
    """`proprio` (noisy) and `privileged` (clean proprio + simulator truth)."""
    clean = tuple(ObsTermCfg(t.name, t.scale, clip=t.clip) for t in PROPRIO_TERMS)
    return {
        "proprio": ObsGroupCfg(PROPRIO_TERMS, noisy=True),
        "privileged": ObsGroupCfg(clean + PRIVILEGED_EXTRA_TERMS, noisy=False),
    }


@dataclass(frozen=True)
class TermSlice:
    """Where one term sits in its group's vector."""

    name: str
    start: int
    stop: int


class ObservationManager:
    """Computes every group for the batch into preallocated float32 arrays.

    Per group, the terms are written side by side, then noise, bias, scale and clip are applied to the
    whole (N, D) block at once: a handful of numpy calls per group, whatever the number of terms.
    """

    def __init__(self, groups: dict[str, ObsGroupCfg], probe: TaskState, rng: np.random.Generator) -> None:
        """`probe` is a filled TaskState of the right batch size: term widths are read from it."""
        unknown = sorted({t.name for g in groups.values() for t in g.terms} - set(OBS_TERMS))
        if unknown:
            raise ValueError(f"unknown observation term(s) {unknown}; known terms: {', '.join(OBS_TERMS)}.")
        self.groups = groups
        self.rng = rng
        self.num_envs = n = len(probe.joint_pos)
        self.layouts: dict[str, list[TermSlice]] = {}
        self._raw: dict[str, np.ndarray] = {}
        self._out: dict[str, np.ndarray] = {}
        self._scale: dict[str, np.ndarray] = {}
        self._noise: dict[str, np.ndarray] = {}
        self._bias_range: dict[str, np.ndarray] = {}
        self._bias: dict[str, np.ndarray] = {}
        self._clip: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        for gname, group in groups.items():
            layout, start = [], 0
            for term in group.terms:
                width = OBS_TERMS[term.name](probe).shape[1]
                layout.append(TermSlice(term.name, start, start + width))
                start += width
            self.layouts[gname] = layout

            def per_column(values: list[float], layout: list[TermSlice] = layout) -> np.ndarray:
                return np.concatenate(
                    [np.full(w.stop - w.start, v) for w, v in zip(layout, values, strict=True)]
                )

            self._raw[gname] = np.zeros((n, start))
            self._out[gname] = np.zeros((n, start), dtype=np.float32)
            self._scale[gname] = per_column([t.scale for t in group.terms])
            self._noise[gname] = per_column([t.noise if group.noisy else 0.0 for t in group.terms])
            self._bias_range[gname] = per_column([t.bias if group.noisy else 0.0 for t in group.terms])
            self._bias[gname] = np.zeros((n, start))
            clip = per_column([np.inf if t.clip is None else t.clip for t in group.terms])
            self._clip[gname] = (-clip, clip) if np.isfinite(clip).any() else None

    def sizes(self) -> dict[str, int]:
        """Vector length of each group."""
        return {g: out.shape[1] for g, out in self._out.items()}

    def reset(self, env_ids: np.ndarray) -> None:
        """Draw new per-env offsets (bias) for `env_ids`."""
        for gname, bias in self._bias.items():
            if self._bias_range[gname].any():
                bias[env_ids] = (
                    self.rng.uniform(-1.0, 1.0, (len(env_ids), bias.shape[1])) * self._bias_range[gname]
                )

    def compute(self, s: TaskState, noise: bool = True) -> dict[str, np.ndarray]:
        """All groups for the batch (arrays are reused between calls: copy to keep them)."""
        for gname, group in self.groups.items():
            raw = self._raw[gname]
            for term, where in zip(group.terms, self.layouts[gname], strict=True):
                raw[:, where.start : where.stop] = OBS_TERMS[term.name](s)
            if noise and group.noisy:
                raw += self.rng.uniform(-1.0, 1.0, raw.shape) * self._noise[gname]
                raw += self._bias[gname]
            raw *= self._scale[gname]
            clip = self._clip[gname]
            if clip is not None:
                np.clip(raw, clip[0], clip[1], out=raw)
            self._out[gname][:] = raw
        return self._out


def motion_features(s: TaskState) -> np.ndarray:
    """The discriminator's view of motion, (N, 2J + 7 + 3F).

    Joint positions (relative to default) and velocities, base angular velocity, projected gravity,
    base height and the feet positions in the base frame.
    """
    rel_feet = s.feet_pos - s.base_pos[:, None, :]
    n, f = rel_feet.shape[:2]
    quat = np.repeat(s.base_quat, f, axis=0)
    feet_base = quat_rotate_inverse(quat, rel_feet.reshape(n * f, 3)).reshape(n, f * 3)
    return np.hstack([
        s.joint_pos - s.default_joint_pos, s.joint_vel, s.base_ang_vel, s.projected_gravity,
        s.base_height[:, None], feet_base,
    ])  # fmt: skip
