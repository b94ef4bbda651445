"""Domain randomisation: physical parameters per env, resampled at reset, and random pushes.

Model parameters (friction, base mass and centre of mass, PD gains, joint friction and armature)
live in K model copies (`BatchedSim(model_variants=K)`), one drawn per env at each reset. Action
latency is a true delay of whole control steps, applied by the env's action buffer.
Pushes change the base velocity in the simulator's state at random intervals.

A curriculum widens every range from near the nominal model (strength 0.1; 0 is the nominal model) to
the configured one (strength 1) as training advances (`DomainRandCfg.curriculum_steps`): a robot that
cannot yet stand gains nothing from learning to stand on ice with a 3 kg backpack and a delayed motor.
At strength s each parameter is nominal + s * (its draw - nominal), an env gets its drawn latency with
probability s, and pushes are s times as strong; the draws are fixed, so widening only rescales them.
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
    model_variants: int = 16
    """Randomised model copies (each ~70 MB for a humanoid with meshes); envs draw one at every reset."""
    curriculum_steps: tuple[int, int] = (0, 3_000_000)
    """Env steps (summed over envs) over which the ranges widen from `curriculum_start_strength` to full
    width; (0, 0): full ranges from the first step."""
    curriculum_start_strength: float = 0.1
    """Strength before and at the start of the widening. Not 0: a privileged input (friction, added mass,
    latency, ...) that is constant for a million steps gets a running variance of ~0, and when it starts
    to vary the observation normaliser blows it up to its clip (±10): seen as the episode length falling
    from 1000 to 94 steps within 0.1 M steps of a curriculum that started from 0."""

    def __post_init__(self) -> None:
        """Check ranges (validation only)."""
        for name in ("friction", "added_mass", "com_offset", "kp_scale", "kd_scale", "joint_friction",
                     "armature_scale", "latency_steps", "push_interval_s", "curriculum_steps"):  # fmt: skip
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(
                    f"DomainRandCfg.{name} must be (low, high) with low <= high, got {(lo, hi)}."
                )
        if self.friction[0] <= 0 or self.latency_steps[0] < 0:
            raise ValueError("DomainRandCfg: friction must be > 0 and latency_steps >= 0.")
        for name in ("kp_scale", "kd_scale", "armature_scale"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(
                    f"DomainRandCfg.{name} is a factor on the nominal value and must stay > 0, "
                    f"got {getattr(self, name)}; e.g. (0.9, 1.1)."
                )
        if self.joint_friction[0] < 0 or self.push_vel_xy < 0 or self.push_interval_s[0] <= 0:
            raise ValueError(
                "DomainRandCfg: joint_friction and push_vel_xy must be >= 0 and push_interval_s > 0, got "
                f"{self.joint_friction}, {self.push_vel_xy}, {self.push_interval_s}."
            )
        if not 0.0 <= self.curriculum_start_strength <= 1.0:
            raise ValueError(
                "DomainRandCfg.curriculum_start_strength must be in [0, 1], "
                f"got {self.curriculum_start_strength}."
            )
        if self.enabled and self.model_variants < 1:
            raise ValueError(f"DomainRandCfg.model_variants must be >= 1, got {self.model_variants}.")


class DomainRandomizer:
    """Samples and applies physical parameters; keeps each env's for the privileged observation.

    Model parameters are drawn once per model variant (`DomainRandCfg.model_variants` copies of the
    model); at every reset an env is given a random variant, so its friction, masses and gains change
    from episode to episode among K draws. Latency, pushes and encoder bias are drawn per env.
    """

    def __init__(self, cfg: DomainRandCfg, sim: BatchedSim, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.sim = sim
        self.rng = rng
        n, rm = sim.num_envs, sim.robot_model
        j = rm.num_joints
        self._base = sim.model.body(rm.robot.base_body).id
        self._dofs = rm.joint_dof_adr
        self.friction = np.ones(n)
        self.added_mass = np.zeros(n)
        self.com_offset = np.zeros((n, 3))
        self.motor_strength = np.ones((n, 2 * j))
        self.latency = np.zeros(n, dtype=np.intp)
        self.push_vel = np.zeros((n, 3))
        self._next_push = np.full(n, np.inf)
        self._latency_draw = np.zeros(n, dtype=np.intp)
        self._latency_on = np.zeros(n)
        self.strength = 1.0
        """How far the ranges are widened: 0 nominal model, 1 the configured ranges (the default; a
        training env follows the curriculum through `set_strength`)."""
        if cfg.enabled and len(sim.variants) == 0:
            raise ValueError("DomainRandomizer needs BatchedSim(..., model_variants=K) with K > 0.")
        base_mass = float(sim.model.body_mass[self._base])
        if cfg.enabled and base_mass + cfg.added_mass[0] <= 0.1 * base_mass:
            raise ValueError(
                f"DomainRandCfg.added_mass {cfg.added_mass} would leave the {base_mass:.1f} kg base of "
                f"'{rm.robot.name}' with {base_mass + cfg.added_mass[0]:.1f} kg; keep the low end above "
                f"{-0.9 * base_mass:.1f} kg."
            )
        self._variant_params = self._sample_variants() if cfg.enabled else None

    def _sample_variants(self) -> dict[str, np.ndarray]:
        """Draw every model variant's parameters once (at full width) and write them into its model."""
        cfg, rng = self.cfg, self.rng
        k, j = len(self.sim.variants), self.sim.robot_model.num_joints
        self._full_draws = {
            "friction": rng.uniform(*cfg.friction, k),
            "added_mass": rng.uniform(*cfg.added_mass, k),
            "com_offset": rng.uniform(*cfg.com_offset, (k, 3)),
            "motor_strength": np.hstack(
                [rng.uniform(*cfg.kp_scale, (k, j)), rng.uniform(*cfg.kd_scale, (k, j))]
            ),
            "joint_friction": rng.uniform(*cfg.joint_friction, (k, j)),
            "armature": rng.uniform(*cfg.armature_scale, (k, j)),
        }
        return self._write_variants()

    def _write_variants(self) -> dict[str, np.ndarray]:
        """Each variant's parameters at the current strength, written into its model copy.

        Nominal friction is 1 on every geom (the Menagerie G1 mixes 0.6 and 1; contacts take the larger
        of a pair, and the ground's is 1).
        """
        nominal_values = {"friction": 1.0, "added_mass": 0.0, "com_offset": 0.0, "motor_strength": 1.0,
                          "joint_friction": 0.0, "armature": 1.0}  # fmt: skip
        params = {
            key: nominal_values[key] + self.strength * (draw - nominal_values[key])
            for key, draw in self._full_draws.items()
        }
        j = self.sim.robot_model.num_joints
        nominal = self.sim.model
        gain, bias = nominal.actuator_gainprm[:, 0], nominal.actuator_biasprm[:, :3]
        for v, m in enumerate(self.sim.variants):
            kp, kd = params["motor_strength"][v, :j], params["motor_strength"][v, j:]
            m.geom_friction[:, 0] = params["friction"][v]
            m.body_mass[self._base] = nominal.body_mass[self._base] + params["added_mass"][v]
            m.body_ipos[self._base] = nominal.body_ipos[self._base] + params["com_offset"][v]
            m.actuator_gainprm[:, 0] = gain * kp
            m.actuator_biasprm[:, 1] = bias[:, 1] * kp
            m.actuator_biasprm[:, 2] = bias[:, 2] * kd
            m.dof_frictionloss[self._dofs] = (
                nominal.dof_frictionloss[self._dofs] + params["joint_friction"][v]
            )
            m.dof_armature[self._dofs] = nominal.dof_armature[self._dofs] * params["armature"][v]
        return params

    def set_strength(self, strength: float) -> None:
        """Widen (or narrow) every range to `strength` in [0, 1]; envs see it at once, pushes included.

        Rewriting the model copies costs a few ms, so the strength moves in steps of 0.05.
        """
        strength = float(np.clip(round(strength * 20.0) / 20.0, 0.0, 1.0))
        if strength == self.strength or self._variant_params is None:
            self.strength = strength
            return
        self.strength = strength
        self._variant_params = self._write_variants()
        variants = self.sim.variant_of_env
        for key in ("friction", "added_mass", "com_offset", "motor_strength"):
            getattr(self, key)[:] = self._variant_params[key][variants]
        self._apply_latency(np.arange(len(self.latency)))

    def _apply_latency(self, env_ids: np.ndarray) -> None:
        """An env gets its drawn delay with probability `strength` (its fixed uniform draw below it)."""
        self.latency[env_ids] = self._latency_draw[env_ids] * (self._latency_on[env_ids] < self.strength)

    def strength_at(self, env_steps: int) -> float:
        """The curriculum's strength after `env_steps` env steps (linear between `curriculum_steps`)."""
        start, full = self.cfg.curriculum_steps
        if full <= 0:
            return 1.0
        low = self.cfg.curriculum_start_strength
        return low + (1.0 - low) * float(np.clip((env_steps - start) / max(full - start, 1), 0.0, 1.0))

    @property
    def max_latency(self) -> int:
        """Largest action delay any env can get (sizes the action buffer)."""
        return self.cfg.latency_steps[1] if self.cfg.enabled else 0

    def reset(self, env_ids: np.ndarray) -> None:
        """Give `env_ids` a random model variant, a latency and a push timer."""
        cfg, rng, k = self.cfg, self.rng, len(env_ids)
        if k == 0 or self._variant_params is None:
            return
        variants = rng.integers(0, len(self.sim.variants), k)
        self.sim.assign_variants(env_ids, variants)
        params = self._variant_params
        self.friction[env_ids] = params["friction"][variants]
        self.added_mass[env_ids] = params["added_mass"][variants]
        self.com_offset[env_ids] = params["com_offset"][variants]
        self.motor_strength[env_ids] = params["motor_strength"][variants]
        self._latency_draw[env_ids] = rng.integers(cfg.latency_steps[0], cfg.latency_steps[1] + 1, k)
        self._latency_on[env_ids] = rng.random(k)
        self._apply_latency(env_ids)
        self.push_vel[env_ids] = 0.0
        self._next_push[env_ids] = rng.uniform(*cfg.push_interval_s, k)

    def step(self, dt: float) -> None:
        """Apply due pushes to the simulator's base velocity and let the push observation fade."""
        if self._variant_params is None:
            return
        self._next_push -= dt
        self.push_vel *= np.exp(-dt / self.cfg.push_decay_s)
        due = np.flatnonzero(self._next_push <= 0.0)
        if len(due) == 0:
            return
        push = np.zeros((len(due), 3))
        reach = self.strength * self.cfg.push_vel_xy
        push[:, :2] = self.rng.uniform(-1.0, 1.0, (len(due), 2)) * reach
        adr = self.sim.robot_model.base_dof_adr
        qvel = self.sim.qvel
        qvel[due, adr : adr + 3] += push  # free-joint linear velocity is in the world frame
        self.push_vel[due] = push
        self._next_push[due] = self.rng.uniform(*self.cfg.push_interval_s, len(due))
