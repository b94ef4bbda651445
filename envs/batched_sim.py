"""N copies of one compiled robot model, stepped together in C threads by `mujoco.rollout`.

The simulator owns the batch state as one numpy array (num_envs, nstate) in MuJoCo's
``mjSTATE_FULLPHYSICS`` layout, plus the last sensor readings (num_envs, nsensordata). A policy step
hands the rollout thread pool that state and the joint targets for `decimation` physics substeps;
Python never loops over environments while stepping. Everything the task reads is a named view.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout

from .frames import quat_rotate_inverse
from .model_builder import RobotModel

_FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS.value
_CTRL = mujoco.mjtState.mjSTATE_CTRL.value


@dataclass(frozen=True)
class SimCfg:
    """How the batch is stepped."""

    num_envs: int = 64
    """Environments stepped together."""
    sim_dt: float = 0.005
    """Physics time step (s)."""
    decimation: int = 4
    """Physics substeps per policy step (policy period = sim_dt * decimation)."""
    nthread: int = 0
    """C threads stepping the batch; 0 uses every core."""


class BatchedSim:
    """A batch of environments of one model, with named accessors to its state.

    State accessors return views where the value is stored directly (`qpos`, `qvel`, `joint_pos`
    is a fancy-indexed copy), so writing `sim.qvel[ids, :3] += push` changes the next step's start.
    """

    def __init__(self, robot_model: RobotModel, cfg: SimCfg, model_variants: int = 0) -> None:
        """Create the batch at the default pose.

        With `model_variants` = K > 0 the simulator holds K copies of the model (`self.variants`) and
        each env steps with one of them (`assign_variants`), so that domain randomisation can give envs
        different friction, masses or gains. A copy of a humanoid model with its meshes is ~70 MB, so K
        is kept well below the number of envs rather than one copy per env.
        """
        if cfg.num_envs < 1:
            raise ValueError(f"SimCfg.num_envs must be >= 1, got {cfg.num_envs}.")
        if cfg.decimation < 1:
            raise ValueError(f"SimCfg.decimation must be >= 1, got {cfg.decimation}.")
        model = robot_model.model
        if abs(model.opt.timestep - cfg.sim_dt) > 1e-12:
            raise ValueError(
                f"model was compiled with timestep {model.opt.timestep} s but SimCfg.sim_dt is "
                f"{cfg.sim_dt} s; "
                "build the model with build_model(..., sim_dt=cfg.sim_dt)."
            )
        self.robot_model = robot_model
        self.model = model
        self.cfg = cfg
        self.num_envs = n = cfg.num_envs
        self.nthread = cfg.nthread or os.cpu_count() or 1
        self.dt = cfg.sim_dt * cfg.decimation
        """Policy period (s)."""

        self._nstate = mujoco.mj_stateSize(model, _FULLPHYSICS)
        # FULLPHYSICS packs time, qpos, qvel, ... in that order.
        self._qpos = slice(1, 1 + model.nq)
        self._qvel = slice(1 + model.nq, 1 + model.nq + model.nv)

        self._datas = [mujoco.MjData(model) for _ in range(self.nthread)]
        self.variants: list[mujoco.MjModel] = [copy.copy(model) for _ in range(model_variants)]
        """Independent model copies that domain randomisation edits."""
        self.variant_of_env = np.zeros(n, dtype=np.intp)
        """Which variant each env steps with (meaningful only when there are variants)."""
        self.models: list[mujoco.MjModel] = [self.variants[0] if self.variants else model] * n
        """The model each env is stepped with (rollout takes one per env; entries share objects)."""
        self._pool = rollout.Rollout(nthread=self.nthread)
        # One chunk per thread: fewer hand-offs than rollout's default of ten per thread (measured).
        self._chunk = max(1, n // self.nthread)
        k = cfg.decimation
        self.state = np.zeros((n, self._nstate))
        """The batch state, (num_envs, nstate), FULLPHYSICS layout."""
        self.sensordata = np.zeros((n, model.nsensordata))
        """Sensor readings after the last substep (or after a reset), (num_envs, nsensordata)."""
        self._control = np.zeros((n, k, model.nu))
        self._state_out = np.zeros((n, k, self._nstate))
        self._sensor_out = np.zeros((n, k, model.nsensordata))
        self._reset_state = np.zeros((n, self._nstate))
        # Constraint-solver warm start per env. rollout does not return MuJoCo's own (qacc of the last
        # substep), so it is estimated from the last two substeps' velocities; measured ~3% faster
        # than a cold start, and closer to stepping each env's own MjData.
        self._warmstart = np.zeros((n, model.nv))
        self._scratch = mujoco.MjData(model)
        self._down = np.broadcast_to(np.array([0.0, 0.0, -1.0]), (n, 3))

        self.diverged = np.zeros(n, dtype=bool)
        """Envs whose simulation diverged in the last step (and were put back to their reset state)."""
        self.diverged_count = 0
        """Divergence resets since construction."""

        ids = np.arange(n)
        self.reset(ids, np.tile(robot_model.default_qpos(), (n, 1)))

    # --- stepping -------------------------------------------------------------------------------------

    def assign_variants(self, env_ids: np.ndarray, variant_ids: np.ndarray) -> None:
        """Make `env_ids` step with the model variants `variant_ids` from their next step on."""
        if not self.variants:
            raise ValueError("this BatchedSim has no model variants (create it with model_variants > 0).")
        self.variant_of_env[env_ids] = variant_ids
        for i, v in zip(np.asarray(env_ids).tolist(), np.asarray(variant_ids).tolist(), strict=True):
            self.models[i] = self.variants[v]

    def step(self, joint_targets: np.ndarray) -> np.ndarray:
        """Advance every env one policy step holding `joint_targets` (num_envs, num_joints) as PD targets.

        Returns the boolean mask of envs that diverged (NaN/inf state, or MuJoCo's own instability
        reset) during this step; those envs are already back at their last reset state.
        """
        n, nu = self.num_envs, self.model.nu
        if joint_targets.shape != (n, nu):
            raise ValueError(f"joint_targets must have shape ({n}, {nu}), got {joint_targets.shape}.")
        self._control[:] = joint_targets[:, None, :]
        t_expected = self.state[:, 0] + self.cfg.decimation * self.cfg.sim_dt
        self._pool.rollout(
            self.models, self._datas, self.state, self._control,
            control_spec=_CTRL, skip_checks=True, nstep=self.cfg.decimation,
            initial_warmstart=self._warmstart,
            state=self._state_out, sensordata=self._sensor_out, chunk_size=self._chunk,
        )  # fmt: skip
        if self.cfg.decimation > 1:
            np.subtract(
                self._state_out[:, -1, self._qvel], self._state_out[:, -2, self._qvel], out=self._warmstart
            )
            self._warmstart /= self.cfg.sim_dt
        self.state[:] = self._state_out[:, -1]
        self.sensordata[:] = self._sensor_out[:, -1]

        # MuJoCo resets an unstable MjData to qpos0 at time 0 by itself; a clock that did not advance
        # by the full policy period, or a non-finite state, marks a diverged env.
        finite = np.isfinite(self.state[:, 1 : self._qvel.stop]).all(axis=1)
        self.diverged[:] = ~finite | (np.abs(self.state[:, 0] - t_expected) > 0.5 * self.cfg.sim_dt)
        if self.diverged.any():
            bad = np.flatnonzero(self.diverged)
            self.diverged_count += len(bad)
            self.state[bad] = self._reset_state[bad]
            self._warmstart[bad] = 0.0
            self._refresh_sensors(bad)
        return self.diverged

    def reset(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray | None = None) -> None:
        """Put `env_ids` at `qpos` (len(ids), nq) and `qvel` (zeros if None), time 0, and read their sensors.

        This state is also where a diverged env is put back.
        """
        env_ids = np.asarray(env_ids, dtype=np.intp)
        m = len(env_ids)
        if qpos.shape != (m, self.model.nq):
            raise ValueError(f"qpos must have shape ({m}, {self.model.nq}), got {qpos.shape}.")
        if qvel is not None and qvel.shape != (m, self.model.nv):
            raise ValueError(f"qvel must have shape ({m}, {self.model.nv}), got {qvel.shape}.")
        fresh = np.zeros((m, self._nstate))
        fresh[:, self._qpos] = qpos
        if qvel is not None:
            fresh[:, self._qvel] = qvel
        self._reset_state[env_ids] = fresh
        self.state[env_ids] = fresh
        self._warmstart[env_ids] = 0.0
        self._refresh_sensors(env_ids)

    def _refresh_sensors(self, env_ids: np.ndarray) -> None:
        """Recompute sensors of just-reset envs. Loops over the reset envs only, never the batch."""
        d = self._scratch
        for i in env_ids:
            mujoco.mj_setState(self.models[i], d, self.state[i], _FULLPHYSICS)
            mujoco.mj_forward(self.models[i], d)
            self.sensordata[i] = d.sensordata

    def close(self) -> None:
        """Stop the rollout thread pool."""
        self._pool.close()

    def __enter__(self) -> BatchedSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- named state ----------------------------------------------------------------------------------

    @property
    def time(self) -> np.ndarray:
        """Simulated time since each env's reset (s), (N,)."""
        return self.state[:, 0]

    @property
    def qpos(self) -> np.ndarray:
        """Generalised positions (view), (N, nq)."""
        return self.state[:, self._qpos]

    @property
    def qvel(self) -> np.ndarray:
        """Generalised velocities (view), (N, nv)."""
        return self.state[:, self._qvel]

    @property
    def base_pos(self) -> np.ndarray:
        """Base position in the world (view), (N, 3)."""
        a = 1 + self.robot_model.base_qpos_adr
        return self.state[:, a : a + 3]

    @property
    def base_quat(self) -> np.ndarray:
        """Base orientation quaternion (w, x, y, z), world frame (view), (N, 4)."""
        a = 1 + self.robot_model.base_qpos_adr + 3
        return self.state[:, a : a + 4]

    @property
    def base_lin_vel_world(self) -> np.ndarray:
        """Base linear velocity in the world frame (view), (N, 3)."""
        a = self._qvel.start + self.robot_model.base_dof_adr
        return self.state[:, a : a + 3]

    @property
    def base_ang_vel(self) -> np.ndarray:
        """Base angular velocity in the base frame (view; MuJoCo's free-joint convention), (N, 3)."""
        a = self._qvel.start + self.robot_model.base_dof_adr + 3
        return self.state[:, a : a + 3]

    @property
    def base_lin_vel(self) -> np.ndarray:
        """Base linear velocity in the base frame, (N, 3)."""
        return quat_rotate_inverse(self.base_quat, self.base_lin_vel_world)

    @property
    def projected_gravity(self) -> np.ndarray:
        """Unit gravity direction in the base frame ((0, 0, -1) when upright), (N, 3)."""
        return quat_rotate_inverse(self.base_quat, self._down)

    @property
    def joint_pos(self) -> np.ndarray:
        """Actuated joint angles in policy order (copy), (N, num_joints)."""
        return self.state[:, self._qpos.start + self.robot_model.joint_qpos_adr]

    @property
    def joint_vel(self) -> np.ndarray:
        """Actuated joint velocities in policy order (copy), (N, num_joints)."""
        return self.state[:, self._qvel.start + self.robot_model.joint_dof_adr]

    def sensor(self, name: str) -> np.ndarray:
        """Readings of the added sensor `name` (view), (N, dim)."""
        return self.sensordata[:, self.robot_model.sensor_slices[name]]

    @property
    def imu_gyro(self) -> np.ndarray:
        """IMU angular velocity in the IMU frame (rad/s), (N, 3)."""
        return self.sensor("imu_gyro")

    @property
    def imu_lin_vel(self) -> np.ndarray:
        """Linear velocity of the IMU site in its own frame (m/s), (N, 3)."""
        return self.sensor("imu_linvel")

    def _per_foot(self, kind: str, dim: int) -> np.ndarray:
        """(N, feet, dim) view of the per-foot sensors of one kind (the builder stores them contiguously)."""
        nfeet = len(self.robot_model.robot.feet_bodies)
        first = self.robot_model.sensor_slices[f"foot0_{kind}"].start
        return self.sensordata[:, first : first + nfeet * dim].reshape(self.num_envs, nfeet, dim)

    @property
    def feet_contact_force(self) -> np.ndarray:
        """Net ground reaction force on each foot, world frame (+z pushes the foot up), (N, feet, 3)."""
        # The contact sensor reports the force the foot exerts on the rest; the reaction is its negative.
        return -self._per_foot("contact", 4)[..., 1:]

    @property
    def feet_contact_count(self) -> np.ndarray:
        """Number of contact points of each foot, (N, feet)."""
        return self._per_foot("contact", 4)[..., 0]

    @property
    def joint_torque(self) -> np.ndarray:
        """PD torque applied in the last substep per actuated joint, policy order (view), (N, num_joints)."""
        first = self.robot_model.sensor_slices[f"torque_{self.robot_model.robot.actuated_joints[0]}"].start
        return self.sensordata[:, first : first + self.robot_model.num_joints]

    @property
    def base_contact_count(self) -> np.ndarray:
        """Number of contacts on the base body itself, (N,)."""
        return self.sensor("base_contact")[:, 0]

    @property
    def robot_contact_count(self) -> np.ndarray:
        """Number of contacts on any body of the robot, feet included, (N,)."""
        return self.sensor("robot_contact")[:, 0]

    @property
    def feet_pos(self) -> np.ndarray:
        """Foot body origins in the world, (N, feet, 3)."""
        return self._per_foot("pos", 3)

    @property
    def feet_vel(self) -> np.ndarray:
        """Foot body linear velocities in the world, (N, feet, 3)."""
        return self._per_foot("linvel", 3)
