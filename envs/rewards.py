"""Locomotion reward terms, each a pure function of a `TaskState`, and the manager that sums them.

Every term ``term(s, p) -> (N,)`` returns its raw value, unweighted and not scaled by the step: the
`RewardManager` multiplies each by its weight and by the policy period ``dt`` (legged_gym convention,
so weights are "per second" and do not depend on the control rate). Terms are registered by name in
`REWARD_TERMS`; a `RewardCfg` selects and weights them by those names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from humanoid_prior.envs.task_state import TaskState

from .term_names import check_term_names

_SMALL_COMMAND = 0.1  # m/s (or rad/s): below this norm a command counts as "stand still"


@dataclass(frozen=True)
class RewardParams:
    """Shape parameters of the reward terms (not their weights); validated on construction."""

    tracking_sigma: float = 0.25
    """Width of the tracking kernels: exp(-err² / tracking_sigma)."""
    base_height_target: float | None = None
    """Target base height above the terrain (m); None: the loaded robot's `nominal_base_height`."""
    swing_height_target: float = 0.08
    """Target foot height above the terrain while the foot is in the air (m)."""
    stance_phase_fraction: float = 0.55
    """Part of each gait cycle a foot should be in stance: while its phase is below this value."""
    contact_force_threshold: float = 1.0
    """Vertical ground force (N) above which a foot is in contact (`ground_readings.feet_in_contact`)."""
    soft_joint_limit: float = 0.9
    """Fraction of each joint's position range (centred) and torque limit inside which there is no penalty."""
    air_time_target: float = 0.4
    """Swing duration (s) above which `feet_air_time` is positive at touchdown."""
    stumble_ratio: float = 4.0
    """A foot stumbles when its horizontal contact force exceeds this multiple of the vertical one."""
    swing_clearance: float = 0.08
    """Peak height (m) of a swinging foot above the lower foot in `feet_phase`'s trajectory."""
    feet_phase_sigma: float = 0.0025
    """Width of `feet_phase`'s kernel (m²): exp(-Σ_feet error² / feet_phase_sigma)."""

    def __post_init__(self) -> None:
        if self.base_height_target is not None and not self.base_height_target > 0:
            raise ValueError(f"base_height_target must be > 0 m (or None), got {self.base_height_target}")
        if self.tracking_sigma <= 0:
            raise ValueError(f"tracking_sigma must be > 0, got {self.tracking_sigma}")
        if not 0 < self.stance_phase_fraction < 1:
            raise ValueError(f"stance_phase_fraction must be in (0, 1), got {self.stance_phase_fraction}")
        if self.swing_clearance <= 0 or self.feet_phase_sigma <= 0:
            raise ValueError(
                f"swing_clearance and feet_phase_sigma must be > 0, got {self.swing_clearance}, "
                f"{self.feet_phase_sigma}"
            )
        if not 0 < self.soft_joint_limit <= 1:
            raise ValueError(f"soft_joint_limit must be in (0, 1], got {self.soft_joint_limit}")


RewardFn = Callable[[TaskState, RewardParams], np.ndarray]


def foot_phases(gait_phase: np.ndarray, num_feet: int) -> np.ndarray:
    """[N, F] phase of each foot: (gait_phase + i / F) % 1, so two feet are half a cycle apart."""
    return np.mod(gait_phase[:, None] + np.arange(num_feet) / num_feet, 1.0)


def _sq_sum(x: np.ndarray) -> np.ndarray:
    return np.sum(np.square(x), axis=-1)


# --- velocity tracking -----------------------------------------------------------------------------


def tracking_lin_vel(s: TaskState, p: RewardParams) -> np.ndarray:
    """exp(-|cmd_xy - v_xy|² / σ), base frame."""
    return np.exp(-_sq_sum(s.commands[:, :2] - s.base_lin_vel[:, :2]) / p.tracking_sigma)


def tracking_ang_vel(s: TaskState, p: RewardParams) -> np.ndarray:
    """exp(-(cmd_yaw - ω_z)² / σ)."""
    return np.exp(-np.square(s.commands[:, 2] - s.base_ang_vel[:, 2]) / p.tracking_sigma)


# --- base motion and posture -----------------------------------------------------------------------


def lin_vel_z(s: TaskState, p: RewardParams) -> np.ndarray:
    """v_z² (base frame)."""
    return np.square(s.base_lin_vel[:, 2])


def ang_vel_xy(s: TaskState, p: RewardParams) -> np.ndarray:
    """|ω_xy|² (base frame)."""
    return _sq_sum(s.base_ang_vel[:, :2])


def orientation(s: TaskState, p: RewardParams) -> np.ndarray:
    """|g_xy|² of the projected gravity (0 when upright)."""
    return _sq_sum(s.projected_gravity[:, :2])


def base_height(s: TaskState, p: RewardParams) -> np.ndarray:
    """(h - base_height_target)², h above the terrain below the base."""
    return np.square(s.base_height - p.base_height_target)


# --- joints and actions ----------------------------------------------------------------------------


def joint_torques(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j τ_j²."""
    return _sq_sum(s.joint_torque)


def joint_vel(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j q̇_j²."""
    return _sq_sum(s.joint_vel)


def joint_acc(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j q̈_j²."""
    return _sq_sum(s.joint_acc)


def action_rate(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j (a_j - a_prev_j)²."""
    return _sq_sum(s.actions - s.last_actions)


def joint_pos_limits(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j distance of q_j outside [m - k·r/2, m + k·r/2]; m, r: range middle, width; k: soft_joint_limit."""
    lo, hi = s.joint_limits[:, 0], s.joint_limits[:, 1]
    finite = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = np.where(finite, lo, 0.0), np.where(finite, hi, 0.0)
    mid = 0.5 * (lo + hi)
    half = np.where(finite, 0.5 * (hi - lo) * p.soft_joint_limit, np.inf)
    excess = np.maximum(s.joint_pos - (mid + half), 0.0) + np.maximum((mid - half) - s.joint_pos, 0.0)
    return np.sum(excess, axis=-1)


def torque_limits(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j max(|τ_j| - soft_joint_limit · τ_max_j, 0)."""
    return np.sum(np.maximum(np.abs(s.joint_torque) - p.soft_joint_limit * s.torque_limits, 0.0), axis=-1)


def hip_pos(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j∈hip roll/yaw (q_j - q_default_j)²: a wide or twisted stance costs (Unitree's `hip_pos`)."""
    return _sq_sum((s.joint_pos - s.default_joint_pos) * s.hip_splay_mask)


def stand_still(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_j |q_j - q_default_j| when |cmd| < 0.1 (all three components), else 0."""
    still = np.linalg.norm(s.commands, axis=-1) < _SMALL_COMMAND
    return np.sum(np.abs(s.joint_pos - s.default_joint_pos), axis=-1) * still


# --- feet ------------------------------------------------------------------------------------------


def feet_air_time(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_feet (air_time - air_time_target) · 1[first contact], zeroed when |cmd_xy| < 0.1."""
    per_foot = (s.feet_air_time - p.air_time_target) * s.feet_first_contact
    moving = np.linalg.norm(s.commands[:, :2], axis=-1) >= _SMALL_COMMAND
    return np.sum(per_foot, axis=-1) * moving


def gait_contact(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_feet 1[contact == (foot phase < stance_phase_fraction)], foot i phase = (gait_phase + i/F) % 1."""
    stance = foot_phases(s.gait_phase, s.feet_contact.shape[1]) < p.stance_phase_fraction
    return np.sum(s.feet_contact == stance, axis=-1).astype(np.float64)


def swing_clearance_targets(gait_phase: np.ndarray, num_feet: int, p: RewardParams) -> np.ndarray:
    """[N, F] target height of each foot above the lower foot: 0 in stance, a half-sine in swing."""
    phase = foot_phases(gait_phase, num_feet)
    swing = np.clip((phase - p.stance_phase_fraction) / (1.0 - p.stance_phase_fraction), 0.0, 1.0)
    return p.swing_clearance * np.sin(np.pi * swing)


def feet_phase(s: TaskState, p: RewardParams) -> np.ndarray:
    """exp(-Σ_feet (c - c*)² / feet_phase_sigma), c: height above the lower foot, c*: the clock's target."""
    # Dense where `gait_contact` is binary: a foot lifted a little at the right time already earns more.
    # Heights above the lower foot make a hop (both feet up together) earn what standing does, and read
    # the same on any terrain. MuJoCo Playground's G1 rewards a similar foot-height trajectory.
    clearance = s.feet_height - s.feet_height.min(axis=1, keepdims=True)
    target = swing_clearance_targets(s.gait_phase, s.feet_height.shape[1], p)
    return np.exp(-_sq_sum(clearance - target) / p.feet_phase_sigma)


def feet_swing_height(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_feet (h_foot - swing_height_target)² · 1[not contact]."""
    return np.sum(np.square(s.feet_height - p.swing_height_target) * ~s.feet_contact, axis=-1)


def feet_slip(s: TaskState, p: RewardParams) -> np.ndarray:
    """Σ_feet |v_foot_xy|² · 1[contact] (world frame)."""
    return np.sum(_sq_sum(s.feet_vel[..., :2]) * s.feet_contact, axis=-1)


def feet_stumble(s: TaskState, p: RewardParams) -> np.ndarray:
    """1.0 if any foot has |F_xy| > stumble_ratio · |F_z|, else 0."""
    f = s.feet_contact_force
    stumbling = np.linalg.norm(f[..., :2], axis=-1) > p.stumble_ratio * np.abs(f[..., 2])
    return np.any(stumbling, axis=-1).astype(np.float64)


# --- events ----------------------------------------------------------------------------------------


def undesired_contacts(s: TaskState, p: RewardParams) -> np.ndarray:
    """Number of contacts of non-foot bodies."""
    return np.asarray(s.undesired_contacts, dtype=np.float64)


def termination(s: TaskState, p: RewardParams) -> np.ndarray:
    """1.0 where the episode ended in failure (not a time-out)."""
    return np.asarray(s.terminated, dtype=np.float64)


def alive(s: TaskState, p: RewardParams) -> np.ndarray:
    """1.0."""
    return np.ones(s.commands.shape[0])


REWARD_TERMS: dict[str, RewardFn] = {
    fn.__name__: fn
    for fn in (
        tracking_lin_vel,
        tracking_ang_vel,
        lin_vel_z,
        ang_vel_xy,
        orientation,
        base_height,
        joint_torques,
        joint_vel,
        joint_acc,
        action_rate,
        joint_pos_limits,
        torque_limits,
        stand_still,
        hip_pos,
        feet_air_time,
        gait_contact,
        feet_phase,
        feet_swing_height,
        feet_slip,
        feet_stumble,
        undesired_contacts,
        termination,
        alive,
    )
}
"""Every reward term by name."""


def g1_reward_weights() -> dict[str, float]:
    """Per-second weights for the Unitree G1 (Unitree rl_gym's G1 config, legged_gym convention).

    Walking appears through a phase of more falls, so there is no fall penalty (Unitree and mjlab use
    none either); the joint-acceleration, torque, joint-limit and undesired-contact penalties are off
    too, as in the bare recipe that learned fastest (issue 10). They stay selectable by weight; what
    each default is worth is measured in docs/results/teacher_levers.md.

    `gait_contact` counts 1.0/s, not Unitree's 0.18: at 0.18 the policy found a two-footed hop within
    8 M env steps (5% of steps on one foot at 0.5 m/s), could not walk backwards with it and stood still
    on both feet when told to, where pushes toppled it. At 1.0 it steps foot by foot from ~2 M steps.
    """
    return {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.5,
        "lin_vel_z": -2.0,
        "ang_vel_xy": -0.05,
        "orientation": -1.0,
        "base_height": -10.0,
        "joint_vel": -1e-3,
        "action_rate": -0.01,
        "hip_pos": -1.0,
        "alive": 0.15,
        "gait_contact": 1.0,
        "feet_swing_height": -20.0,
        "feet_slip": -0.2,  # Unitree's "contact_no_vel"
        # Available but off by default; listed so a config can switch them on by weight alone.
        "joint_acc": 0.0,
        "joint_torques": 0.0,
        "joint_pos_limits": 0.0,
        "undesired_contacts": 0.0,
        "termination": 0.0,
        "torque_limits": 0.0,
        "feet_air_time": 0.0,
        "feet_phase": 0.0,
        "feet_stumble": 0.0,
        "stand_still": 0.0,
    }


@dataclass(frozen=True)
class RewardCfg:
    """Which reward terms to use and how much each counts; validated on construction."""

    weights: Mapping[str, float] = field(default_factory=g1_reward_weights)
    """Per-second weight of each term by its `REWARD_TERMS` name; terms with weight 0 are skipped."""
    params: RewardParams = field(default_factory=RewardParams)
    """Shape parameters shared by the terms."""
    only_positive_rewards: bool = False
    """Clip each step's total reward at 0 from below (legged_gym's option)."""

    def __post_init__(self) -> None:
        check_term_names("reward", self.weights, REWARD_TERMS)


class RewardManager:
    """Sums the weighted active terms each step and keeps their per-episode sums for logging."""

    def __init__(self, cfg: RewardCfg, num_envs: int, dt: float) -> None:
        if cfg.params.base_height_target is None and cfg.weights.get("base_height", 0.0) != 0.0:
            raise ValueError(
                "RewardParams.base_height_target is None (the loaded robot's height, which LocomotionEnv "
                "fills in); give a value to use a RewardManager on its own."
            )
        self.cfg = cfg
        self.num_envs = num_envs
        self.dt = dt
        self._terms: list[tuple[str, RewardFn, float]] = [
            (name, REWARD_TERMS[name], float(w)) for name, w in cfg.weights.items() if w != 0.0
        ]
        self.episode_sums: dict[str, np.ndarray] = {name: np.zeros(num_envs) for name, _, _ in self._terms}
        """Per-env running sum over the episode of each term's weight · value · dt."""
        self.last_terms: dict[str, np.ndarray] = {}
        """Each active term's weight · value · dt in the last `compute` (sums to the unclipped total)."""

    @property
    def term_names(self) -> list[str]:
        """Names of the active (non-zero weight) terms, in configuration order."""
        return [name for name, _, _ in self._terms]

    def compute(self, s: TaskState) -> np.ndarray:
        """Total reward (N,) = Σ_i w_i · term_i(s) · dt, clipped at 0 if `only_positive_rewards`."""
        total = np.zeros(self.num_envs)
        for name, fn, weight in self._terms:
            value = fn(s, self.cfg.params)
            if value.shape != (self.num_envs,):
                raise ValueError(
                    f"reward term {name!r} returned shape {value.shape}, want ({self.num_envs},)"
                )
            scaled = weight * value * self.dt
            self.last_terms[name] = scaled
            self.episode_sums[name] += scaled
            total += scaled
        if self.cfg.only_positive_rewards:
            np.maximum(total, 0.0, out=total)
        return total

    def reset(self, env_ids: Sequence[int] | npt.NDArray[np.integer]) -> dict[str, float]:
        """Mean over `env_ids` of each term's episode sum (key ``"rew/<name>"``); then zero those envs' sums.

        Returns an empty dict when `env_ids` is empty.
        """
        ids = np.asarray(env_ids, dtype=np.intp)
        if ids.size == 0:
            return {}
        means: dict[str, float] = {}
        for name, sums in self.episode_sums.items():
            means[f"rew/{name}"] = float(np.mean(sums[ids]))
            sums[ids] = 0.0
        return means
