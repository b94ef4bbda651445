"""The locomotion task over a batch of simulated robots: commands, observations, rewards, resets.

`LocomotionEnv` is vectorised over N envs; every quantity is a numpy array with the batch first and
no Python loop runs over all envs per step (only over the few that reset). A step:

    actions -> latency buffer -> PD targets -> BatchedSim (decimation substeps) -> TaskState
    -> terminations / time-outs -> rewards -> commands -> reset done envs -> observations

Time-outs are truncations, reported apart from failures, so that PPO bootstraps on them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .batched_sim import BatchedSim
from .commands import CommandSampler
from .curriculum import TerrainCurriculum, commanded_step
from .frames import yaw_of
from .ground_readings import GroundProbe
from .history import GroupHistories
from .model_builder import SPAWN_CLEARANCE, build_model
from .observations import ObservationManager, gait_phase, motion_features
from .randomization import DomainRandomizer
from .rewards import RewardCfg, RewardManager
from .robots import RobotCfg, select_robot
from .task_cfg import TaskCfg
from .task_state import TaskState
from .terminations import TerminationManager
from .terrain import Terrain, generate_terrain


class LocomotionEnv:
    """N robots walking on one terrain; see the module docstring for one step's order."""

    def __init__(self, cfg: TaskCfg, seed: int = 0, dr_curriculum: bool = False) -> None:
        """Build the batch, its terrain and its randomisation.

        `dr_curriculum`: widen the randomisation ranges with `env_steps` as `cfg.domain_rand` says
        (training envs); otherwise every range is at full width from the start (evaluation, video).
        """
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.robot = select_robot(cfg.robot, cfg.robot_file)
        self.terrain: Terrain | None = generate_terrain(cfg.terrain) if cfg.terrain is not None else None
        self.robot_model = rm = build_model(self.robot, self.terrain, sim_dt=cfg.sim.sim_dt)
        variants = cfg.domain_rand.model_variants if cfg.domain_rand.enabled else 0
        self.sim = BatchedSim(rm, cfg.sim, model_variants=variants)
        self.num_envs = n = cfg.sim.num_envs
        self.num_joints = j = rm.num_joints
        self.num_feet = f = len(self.robot.feet_bodies)
        self.dt = self.sim.dt
        self.max_episode_steps = round(cfg.episode_length_s / self.dt)
        self.default_joint_pos = np.asarray(self.robot.default_joint_pos)
        self.action_scale = self.robot.action_scale

        self.commands = CommandSampler(cfg.commands, n, self.dt, self.rng)
        self.domain_rand = DomainRandomizer(cfg.domain_rand, self.sim, self.rng)
        self.dr_curriculum = dr_curriculum
        self.env_steps = 0
        """Env steps taken (summed over envs); drives the randomisation curriculum."""
        if dr_curriculum:
            self.domain_rand.set_strength(self.domain_rand.strength_at(0))
        self.curriculum = (
            TerrainCurriculum(cfg.curriculum, self.terrain, n, self.rng) if self.terrain is not None else None
        )
        self.rewards = RewardManager(robot_rewards(cfg.rewards, self.robot), n, self.dt)
        self.terminations = TerminationManager(cfg.terminations)

        self.actions = np.zeros((n, j))
        self.last_actions = np.zeros((n, j))
        self._action_history = np.zeros((n, self.domain_rand.max_latency + 1, j))
        self._history_ptr = 0
        self.episode_step = np.zeros(n, dtype=np.intp)
        self.episode_return = np.zeros(n)
        self._air_time = np.zeros((n, f))
        self._last_contact = np.zeros((n, f), dtype=bool)
        self._last_joint_vel = np.zeros((n, j))
        self._spawn_xy = np.zeros((n, 2))
        self._commanded_xy = np.zeros((n, 2))
        """Where each robot would be, relative to its spawn point, had it tracked its commands exactly."""
        self._commanded_yaw = np.zeros(n)
        """The heading it would have: the spawn yaw plus the yaw-rate commands so far (a robot that lets
        its heading wander or spin must not shrink what its commands ask of it)."""
        self.ground_probe = GroundProbe(
            base_points=np.array(
                [(x, y) for x in cfg.scan.base_x for y in cfg.scan.base_y], dtype=np.float64
            ),
            foot_points=np.asarray(cfg.scan.foot_xy, dtype=np.float64),
            nominal_base_height=self.robot.nominal_base_height,
            contact_force_threshold=cfg.rewards.params.contact_force_threshold,
        )

        self.state = self._empty_state()
        self._refresh_state()
        self.observations = ObservationManager(dict(cfg.observations), self.state, self.rng)
        group_sizes = self.observations.sizes()
        lengths = {g: c.history_len for g, c in cfg.observations.items()}
        self.histories = GroupHistories(lengths, group_sizes, n)
        self.obs_sizes = {**group_sizes, **self.histories.sizes()}
        self._renderer: Any = None

    # --- public API -----------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start a new episode in every env; return the observation groups (N, D) as float32 copies.

        With `seed`, every random stream (commands, DR, noise, curriculum placement) restarts from it,
        so two envs reset with one seed and given the same actions produce the same observations.
        """
        if seed is not None:
            # In place: the commands, DR, curriculum and observation noise share this generator.
            self.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
            if self.terrain is not None:
                self.curriculum = TerrainCurriculum(
                    self.cfg.curriculum, self.terrain, self.num_envs, self.rng
                )
        self._reset_envs(np.arange(self.num_envs), log={}, update_curriculum=False)
        self._refresh_state()
        return self.observe(restart_history=True)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply (N, num_joints) actions for one control period.

        Returns observations (of the next episode for envs that ended), rewards (N,), terminated (N,)
        (failure), truncated (N,) (time-out), and info: ``done_ids``, ``terminal_obs`` (each group's
        last observation of the ended episodes, rows in `done_ids` order), ``episode`` (their return
        ``r`` and length ``l``), ``terminal_motion`` (their last `motion_features`, same rows) and ``log``
        (scalars for monitoring).
        """
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, self.num_joints):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.num_joints}) (envs, joints of "
                f"'{self.robot.name}'), got {actions.shape}."
            )
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf; check the policy's output.")
        self.last_actions[:] = self.actions
        np.clip(actions, -self.cfg.action_clip, self.cfg.action_clip, out=self.actions)
        targets = self.default_joint_pos + self.action_scale * self._delayed_actions()

        self.env_steps += self.num_envs
        if self.dr_curriculum:
            self.domain_rand.set_strength(self.domain_rand.strength_at(self.env_steps))
        self.domain_rand.step(self.dt)
        self.state.diverged = self.sim.step(targets).copy()
        self.episode_step += 1
        self._refresh_state()
        self._commanded_yaw += self.commands.commands[:, 2] * self.dt
        self._commanded_xy += commanded_step(self._commanded_yaw, self.commands.commands[:, :2], self.dt)
        self._advance_step_clocks()

        ends = self.terminations.compute(self.state)
        terminated, truncated = ends.terminated, ends.truncated
        self.state.terminated = terminated
        reward = self.rewards.compute(self.state)
        self.episode_return += reward
        self._air_time *= ~(self.state.feet_contact | self._last_contact)
        self._last_contact = self.state.feet_contact.copy()
        self.commands.step(yaw_of(self.sim.base_quat))

        log: dict[str, float] = {f"term/{k}": float(v.mean()) for k, v in ends.causes.items()}
        log["sim/diverged_total"] = float(self.sim.diverged_count)
        cmd_err = self.state.commands[:, :2] - self.state.base_lin_vel[:, :2]
        log["track/lin_vel_error"] = float(np.linalg.norm(cmd_err, axis=1).mean())
        feet_down = self.state.feet_contact.sum(axis=1)
        # A walk spends most steps on one foot; a shuffle or a two-footed hop almost none.
        log["gait/single_support"] = float(np.mean(feet_down == 1))
        log["gait/flight"] = float(np.mean(feet_down == 0))
        log["track/yaw_rate_error"] = float(
            np.abs(self.state.commands[:, 2] - self.state.base_ang_vel[:, 2]).mean()
        )
        info: dict[str, Any] = {"log": log}
        done_ids = np.flatnonzero(terminated | truncated)
        info["done_ids"] = done_ids
        terminal: dict[str, np.ndarray] = {}
        if len(done_ids):
            terminal = {g: v[done_ids] for g, v in self._groups().items()}
            info["terminal_obs"] = terminal
            info["terminal_motion"] = self.motion_features()[done_ids]
            info["episode"] = {
                "r": self.episode_return[done_ids].copy(),
                "l": self.episode_step[done_ids].copy(),
            }
            self._reset_envs(done_ids, log, fell=terminated[done_ids])
            # Only the reset envs' state changed: re-read positions and velocities for their first
            # observation, without advancing any per-step clock (air time, joint acceleration) again.
            self._refresh_state()
        if self.curriculum is not None:
            log["curriculum/terrain_level"] = self.curriculum.mean_level
        log["curriculum/domain_rand_strength"] = self.domain_rand.strength
        obs = self._groups()
        terminal.update(self.histories.push(obs, done_ids, terminal))  # empty when no env ended
        return {**obs, **self.histories.current()}, reward, terminated, truncated, info

    def render(self, env_id: int = 0, width: int = 640, height: int = 480) -> np.ndarray:
        """RGB frame (H, W, 3) of one env from a camera tracking its base (MuJoCo offscreen, EGL headless)."""
        from .rendering import EnvRenderer

        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            if self._renderer is not None:
                self._renderer.close()
            # No shadow pass: 5x faster with the software GL of a headless machine.
            self._renderer = EnvRenderer(self.robot_model, width=width, height=height, shadows=False)
        return np.asarray(self._renderer.render(self.sim.state[env_id]))

    def close(self) -> None:
        """Stop the simulator's threads and free the renderer."""
        if self._renderer is not None:
            self._renderer.close()
        self.sim.close()

    # --- internals --------------------------------------------------------------------------------------

    def _delayed_actions(self) -> np.ndarray:
        """The action each env's latency says to apply now: the one from `latency` steps ago."""
        length = self._action_history.shape[1]
        self._history_ptr = (self._history_ptr + 1) % length
        self._action_history[:, self._history_ptr] = self.actions
        slot = (self._history_ptr - self.domain_rand.latency) % length
        return self._action_history[np.arange(self.num_envs), slot]

    def _ground_height(self, xy: np.ndarray) -> np.ndarray:
        if self.terrain is None:
            return np.zeros(xy.shape[:-1])
        return self.terrain.height_at(xy).astype(np.float64)

    def _empty_state(self) -> TaskState:
        n, j = self.num_envs, self.num_joints
        rm = self.robot_model
        return TaskState(
            dt=self.dt, default_joint_pos=self.default_joint_pos,
            base_ang_vel=np.zeros((n, 3)), projected_gravity=np.zeros((n, 3)),
            commands=self.commands.commands,
            joint_pos=np.zeros((n, j)), joint_vel=np.zeros((n, j)), actions=self.actions,
            gait_phase=np.zeros(n), last_actions=self.last_actions,
            joint_limits=rm.joint_range, torque_limits=np.asarray(self.robot.torque_limits),
            feet_air_time=self._air_time,
            friction=self.domain_rand.friction, added_mass=self.domain_rand.added_mass,
            com_offset=self.domain_rand.com_offset, motor_strength=self.domain_rand.motor_strength,
            push_vel=self.domain_rand.push_vel, terminated=np.zeros(n, dtype=bool),
            latency_steps=self.domain_rand.latency,
            diverged=np.zeros(n, dtype=bool), episode_step=self.episode_step,
            max_episode_steps=self.max_episode_steps, nominal_base_height=self.robot.nominal_base_height,
            hip_splay_mask=np.isin(self.robot.actuated_joints, self.robot.hip_splay_joints),
        )  # fmt: skip

    def _refresh_state(self) -> None:
        """Re-read the TaskState from the simulator; idempotent (safe to call twice on one sim state)."""
        sim, s = self.sim, self.state
        s.base_pos = sim.base_pos.copy()
        s.base_quat = sim.base_quat.copy()
        s.base_ang_vel = sim.imu_gyro.copy()
        s.projected_gravity = sim.projected_gravity
        s.base_lin_vel = sim.base_lin_vel
        s.joint_pos = sim.joint_pos
        s.joint_vel = sim.joint_vel
        s.joint_torque = sim.joint_torque.copy()
        s.gait_phase = gait_phase(self.episode_step, self.dt, self.cfg.gait_period_s)
        s.feet_pos = sim.feet_pos.copy()
        s.feet_vel = sim.feet_vel.copy()
        s.feet_contact_force = sim.feet_contact_force
        s.undesired_contacts = sim.robot_contact_count - sim.feet_contact_count.sum(axis=1)
        s.base_contact = sim.base_contact_count > 0
        ground = self.ground_probe.read(
            s.base_pos, s.base_quat, s.feet_pos, s.feet_contact_force, self._ground_height
        )
        s.base_height, s.feet_height, s.feet_contact = (
            ground.base_height,
            ground.feet_height,
            ground.feet_contact,
        )
        s.height_scan, s.feet_height_scan = ground.height_scan, ground.feet_height_scan

    def _advance_step_clocks(self) -> None:
        """Once per control step, after the physics: joint acceleration, foot air time and touchdowns."""
        s = self.state
        s.joint_acc = (s.joint_vel - self._last_joint_vel) / self.dt
        self._last_joint_vel = s.joint_vel
        # legged_gym's air time: a touchdown is a contact (in this or the last step) after time in the air.
        either = s.feet_contact | self._last_contact
        s.feet_first_contact = (self._air_time > 0.0) & either
        self._air_time += self.dt

    def _reset_envs(
        self, env_ids: np.ndarray, log: dict[str, float], fell: np.ndarray | None = None,
        update_curriculum: bool = True,
    ) -> None:  # fmt: skip
        """Curriculum update, new physics parameters, spawn pose, commands and cleared buffers.

        `fell`: which of `env_ids` ended in a fall (the curriculum demotes those).
        """
        k = len(env_ids)
        if self.curriculum is not None and update_curriculum:
            walked = np.linalg.norm(self.sim.base_pos[env_ids, :2] - self._spawn_xy[env_ids], axis=1)
            commanded = np.linalg.norm(self._commanded_xy[env_ids], axis=1)
            self.curriculum.update(env_ids, walked, commanded, fell)
        origins = self.curriculum.origins[env_ids] if self.curriculum is not None else np.zeros((k, 3))
        self.domain_rand.reset(env_ids)
        rm = self.robot_model
        qpos = np.tile(rm.default_qpos(), (k, 1))
        a = rm.base_qpos_adr
        qpos[:, a : a + 2] = origins[:, :2]
        qpos[:, a + 2] = origins[:, 2] + self.robot.nominal_base_height + SPAWN_CLEARANCE
        yaw = self.rng.uniform(*self.cfg.spawn_yaw, k)
        self._commanded_yaw[env_ids] = yaw
        qpos[:, a + 3 : a + 7] = np.column_stack([np.cos(yaw / 2), np.zeros(k), np.zeros(k), np.sin(yaw / 2)])
        noise = self.rng.uniform(
            -self.cfg.spawn_joint_noise, self.cfg.spawn_joint_noise, (k, self.num_joints)
        )
        lo, hi = rm.joint_range[:, 0], rm.joint_range[:, 1]
        qpos[:, rm.joint_qpos_adr] = np.clip(qpos[:, rm.joint_qpos_adr] + noise, lo, hi)
        self.sim.reset(env_ids, qpos)
        self._spawn_xy[env_ids] = origins[:, :2]
        self._last_joint_vel[env_ids] = self.sim.joint_vel[env_ids]

        self.commands.resample(env_ids)
        self.actions[env_ids] = 0.0
        self.last_actions[env_ids] = 0.0
        self._action_history[env_ids] = 0.0
        self.episode_step[env_ids] = 0
        self.episode_return[env_ids] = 0.0
        self._air_time[env_ids] = 0.0
        self._last_contact[env_ids] = False
        self._commanded_xy[env_ids] = 0.0
        self.observations.reset(env_ids)
        log.update(self.rewards.reset(env_ids))

    def motion_features(self) -> np.ndarray:
        """(N, M) motion features of the current state: what the student's discriminator compares."""
        return motion_features(self.state)

    def observe(self, restart_history: bool = False) -> dict[str, np.ndarray]:
        """The observation groups of the current state (float32 copies) and the groups' histories.

        `restart_history`: fill the histories with this frame, as at an episode's start (after changing
        the state by hand, e.g. setting commands after a reset, so no frame from before is kept).
        """
        obs = self._groups()
        if restart_history:
            self.histories.restart(obs)
        return {**obs, **self.histories.current()}

    def _groups(self) -> dict[str, np.ndarray]:
        return {g: v.copy() for g, v in self.observations.compute(self.state).items()}


def robot_rewards(cfg: RewardCfg, robot: RobotCfg) -> RewardCfg:
    """`cfg` with its robot-dependent targets taken from the robot actually loaded (unless set)."""
    if cfg.params.base_height_target is not None:
        return cfg
    params = dataclasses.replace(cfg.params, base_height_target=robot.nominal_base_height)
    return dataclasses.replace(cfg, params=params)
