"""Domain randomisation: physical parameters per env, resampled at reset, and random pushes.

Model parameters (friction, base mass and centre of mass, PD gains, joint friction and armature)
live in each env's own `MjModel` copy (`BatchedSim(per_env_models=True)`), written when the env
resets. Action latency is a true delay of whole control steps, applied by the env's action buffer.
Pushes change the base velocity in the simulator's state at random intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batched_sim import BatchedSim


@dataclass(frozen=True)
class DomainRandCfg:
    """Ranges of every randomised quantity; a range (a, a) turns that one off."""

    enabled: bool = True
    """Master switch: False keeps the nominal model, no latency and no pushes."""
    friction: tuple[float, float] = (0.4, 1.25)
    """Sliding friction coefficient of every geom (MuJoCo uses the larger of a pair: the contact's)."""
    added_mass: tuple[float, float] = (-1.0, 3.0)
    """Mass added to the base body (kg)."""
    com_offset: tuple[float, float] = (-0.03, 0.03)
    """Per-axis shift of the base centre of mass (m)."""
    kp_scale: tuple[float, float] = (0.9, 1.1)
    """Motor strength: per-joint factor on kp."""
    kd_scale: tuple[float, float] = (0.9, 1.1)
    """Per-joint factor on kd."""
    joint_friction: tuple[float, float] = (0.0, 0.3)
    """Dry friction added to every actuated joint (N m)."""
    armature_scale: tuple[float, float] = (0.9, 1.1)
    """Factor on each actuated joint's armature (reflected rotor inertia)."""
    latency_steps: tuple[int, int] = (0, 1)
    """Action delay in whole control steps, inclusive range; sampled per env at reset."""
    push_interval_s: tuple[float, float] = (5.0, 10.0)
    """Time between random pushes (s)."""
    push_vel_xy: float = 0.5
    """Largest planar velocity change of a push (m/s)."""
    push_decay_s: float = 0.5
    """Time constant with which the privileged 'current push' observation fades."""

    def __post_init__(self) -> None:
        """Check ranges (validation only)."""
        for name in ("friction", "added_mass", "com_offset", "kp_scale", "kd_scale", "joint_friction",
                     "armature_scale", "latency_steps", "push_interval_s"):  # fmt: skip
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(
                    f"DomainRandCfg.{name} must be (low, high) with low <= high, got {(lo, hi)}."
                )
        if self.friction[0] <= 0 or self.latency_steps[0] < 0:
            raise ValueError("DomainRandCfg: friction must be > 0 and latency_steps >= 0.")


class DomainRandomizer:
    """Samples and applies per-env physical parameters; keeps them for the privileged observation."""

    def __init__(self, cfg: DomainRandCfg, sim: BatchedSim, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.sim = sim
        self.rng = rng
        n, rm = sim.num_envs, sim.robot_model
        j = rm.num_joints
        m = sim.model
        self._base = m.body(rm.robot.base_body).id
        self._dofs = rm.joint_dof_adr
        self._nominal = {
            "mass": float(m.body_mass[self._base]),
            "ipos": m.body_ipos[self._base].copy(),
            "gain": m.actuator_gainprm[:, 0].copy(),
            "bias": m.actuator_biasprm[:, :3].copy(),
            "frictionloss": m.dof_frictionloss[self._dofs].copy(),
            "armature": m.dof_armature[self._dofs].copy(),
        }
        self.friction = np.ones(n)
        self.added_mass = np.zeros(n)
        self.com_offset = np.zeros((n, 3))
        self.motor_strength = np.ones((n, 2 * j))
        self.latency = np.zeros(n, dtype=np.intp)
        self.push_vel = np.zeros((n, 3))
        self._next_push = np.full(n, np.inf)
        if cfg.enabled and sim.models[0] is sim.models[-1] and n > 1:
            raise ValueError("DomainRandomizer needs BatchedSim(..., per_env_models=True).")

    @property
    def max_latency(self) -> int:
        """Largest action delay any env can get (sizes the action buffer)."""
        return self.cfg.latency_steps[1] if self.cfg.enabled else 0

    def reset(self, env_ids: np.ndarray) -> None:
        """Sample new parameters for `env_ids` and write them into their models."""
        cfg, rng, k = self.cfg, self.rng, len(env_ids)
        if k == 0 or not cfg.enabled:
            return
        j = self.sim.robot_model.num_joints
        self.friction[env_ids] = rng.uniform(*cfg.friction, k)
        self.added_mass[env_ids] = rng.uniform(*cfg.added_mass, k)
        self.com_offset[env_ids] = rng.uniform(*cfg.com_offset, (k, 3))
        kp = rng.uniform(*cfg.kp_scale, (k, j))
        kd = rng.uniform(*cfg.kd_scale, (k, j))
        self.motor_strength[env_ids] = np.hstack([kp, kd])
        joint_friction = rng.uniform(*cfg.joint_friction, (k, j))
        armature = rng.uniform(*cfg.armature_scale, (k, j))
        self.latency[env_ids] = rng.integers(cfg.latency_steps[0], cfg.latency_steps[1] + 1, k)
        self.push_vel[env_ids] = 0.0
        self._next_push[env_ids] = rng.uniform(*cfg.push_interval_s, k)
        nom = self._nominal
        # One model per resetting env: a loop over the few envs that reset this step, not the batch.
        for row, i in enumerate(env_ids):
            m = self.sim.models[i]
            m.geom_friction[:, 0] = self.friction[i]
            m.body_mass[self._base] = nom["mass"] + self.added_mass[i]
            m.body_ipos[self._base] = nom["ipos"] + self.com_offset[i]
            m.actuator_gainprm[:, 0] = nom["gain"] * kp[row]
            m.actuator_biasprm[:, 1] = nom["bias"][:, 1] * kp[row]
            m.actuator_biasprm[:, 2] = nom["bias"][:, 2] * kd[row]
            m.dof_frictionloss[self._dofs] = nom["frictionloss"] + joint_friction[row]
            m.dof_armature[self._dofs] = nom["armature"] * armature[row]

    def step(self, dt: float) -> None:
        """Apply due pushes to the simulator's base velocity and let the push observation fade."""
        self._next_push -= dt
        self.push_vel *= np.exp(-dt / self.cfg.push_decay_s)
        due = np.flatnonzero(self._next_push <= 0.0)
        if len(due) == 0:
            return
        push = np.zeros((len(due), 3))
        push[:, :2] = self.rng.uniform(-self.cfg.push_vel_xy, self.cfg.push_vel_xy, (len(due), 2))
        adr = self.sim.robot_model.base_dof_adr
        qvel = self.sim.qvel
        qvel[due, adr : adr + 3] += push  # free-joint linear velocity is in the world frame
        self.push_vel[due] = push
        self._next_push[due] = self.rng.uniform(*self.cfg.push_interval_s, len(due))
