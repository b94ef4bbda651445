"""The `mujoco` robot backend: sim2sim in a MuJoCo model configured differently from training.

Training steps a 200 Hz model whose actuators are MuJoCo PD servos (computed in C, damping integrated
implicitly). This backend compiles the same robot description with a 1 kHz physics step, turns every
actuator into a plain torque motor and computes the PD law itself, in Python, at every 1 ms substep from
the last command it was sent, as a motor driver does: tau = clip(tau_ff + kp (q* - q) + kd (qdot* - qdot),
±torque limit).
Optional uniform sensor noise, sensor latency (readings are that old) and actuation latency (commands
take effect that late) make the gap wider. Ground is flat.

Joint arrays are in the MJCF's joint order (as a robot SDK lists its motors), not the policy's: the
runtime's name mapping is exercised on every run.

Privileged terms (a teacher's input) are simulation truth here: base velocity and height, the height
scans of flat ground, foot contact forces, and nominal values of the randomised parameters (friction of
the model, no added mass or CoM offset, motor strength 1, no push).
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from humanoid_prior.envs.frames import quat_rotate_inverse
from humanoid_prior.envs.ground_readings import GroundProbe
from humanoid_prior.envs.model_builder import SPAWN_CLEARANCE, RobotModel, build_model
from humanoid_prior.envs.robots import robot_from_dict

from .manifest import Manifest
from .robot import JointCommand, Robot, RobotState

_FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


@dataclass(frozen=True)
class SimRobotCfg:
    """How the sim2sim robot differs from the training simulator."""

    physics_dt: float = 0.001
    """Physics step (s): 1 kHz, where training uses 5 ms."""
    joint_pos_noise: float = 0.0
    """Half-width of uniform noise on joint angles (rad)."""
    joint_vel_noise: float = 0.0
    """Half-width of uniform noise on joint velocities (rad/s)."""
    ang_vel_noise: float = 0.0
    """Half-width of uniform noise on the gyro (rad/s)."""
    sensor_latency_s: float = 0.0
    """Age of every reading (s)."""
    action_latency_s: float = 0.0
    """Delay between `send` and the command acting on the motors (s)."""
    gantry_s: float | None = None
    """Hold the base still in the air at its spawn pose until this simulated time (s), as a gantry holds a
    robot during its soft start; the feet hang 3 cm above the ground, as at a training spawn. None or 0:
    the robot stands on its own from the start (`run_sim2sim` sets None to the soft-start time)."""
    real_time: bool = False
    """Pace the simulation to the wall clock (`now` is wall time), as a robot is; False: as fast as it can."""
    seed: int = 0
    """Seed of the sensor noise."""


_PRIVILEGED_FIELDS = (
    "base_lin_vel", "base_height", "height_scan", "feet_height_scan", "feet_contact_force", "feet_contact",
    "friction", "added_mass", "com_offset", "motor_strength", "push_vel", "latency_steps",
)  # fmt: skip


class MujocoRobot(Robot):
    """One simulated robot of the manifest's robot description (see the module docstring)."""

    def __init__(self, manifest: Manifest, cfg: SimRobotCfg | None = None) -> None:
        self.cfg = cfg = cfg or SimRobotCfg()
        self.gantry_until = float(cfg.gantry_s or 0.0)
        """Simulated time (s) until which the gantry holds the base (`release_gantry` moves it)."""
        if not manifest.robot_description:
            raise ValueError(
                "the manifest has no robot_description; the mujoco backend needs it to build a model."
            )
        robot = robot_from_dict(manifest.robot_description, source="manifest robot_description")
        self.rm: RobotModel = build_model(robot, None, sim_dt=cfg.physics_dt)
        self.model = model = self.rm.model
        # Plain motors: ctrl is the joint torque (the PD law runs in `_substep`); MuJoCo still clamps it.
        model.actuator_biastype[:] = mujoco.mjtBias.mjBIAS_NONE
        model.actuator_biasprm[:] = 0.0
        model.actuator_gainprm[:] = 0.0
        model.actuator_gainprm[:, 0] = 1.0
        self.data = mujoco.MjData(model)
        # Robot (MJCF) order: joints sorted by their place in qpos; actuators are in policy order.
        order = np.argsort(self.rm.joint_qpos_adr, kind="stable")
        self._names = tuple(robot.actuated_joints[i] for i in order)
        self._act = order  # actuator index of each robot-order joint
        self._qadr = self.rm.joint_qpos_adr[order]
        self._dadr = self.rm.joint_dof_adr[order]
        self._torque_limit = np.asarray(robot.torque_limits, dtype=np.float64)[order]
        self.nominal_height = robot.nominal_base_height
        self.num_feet = len(robot.feet_bodies)
        self._rng = np.random.default_rng(cfg.seed)
        self._sizes = {t.name: t.size for t in manifest.observation.terms}
        self._wanted = tuple(f for f in _PRIVILEGED_FIELDS if f in self._sizes)
        # Flat ground reads the same height at every scan point, so only the points' number matters here.
        self._probe = GroundProbe(
            base_points=np.zeros((self._sizes.get("height_scan", 0), 2)),
            foot_points=np.zeros((self._sizes.get("feet_height_scan", 0) // self.num_feet, 2)),
            nominal_base_height=self.nominal_height,
            contact_force_threshold=float(manifest.sim_truth.get("contact_force_threshold", 1.0)),
        )
        self._friction = float(model.geom_friction[:, 0].max())
        s = self.rm.sensor_slices
        self._gyro = s["imu_gyro"]
        self._base_contact = s["base_contact"]
        self._feet_contact = [s[f"foot{i}_contact"] for i in range(self.num_feet)]
        self._feet_pos = [s[f"foot{i}_pos"] for i in range(self.num_feet)]
        self._renderer: Any = None
        self._wall0 = 0.0
        self.reset()

    # --- Robot interface ------------------------------------------------------------------------------

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Actuated joints in MJCF order."""
        return self._names

    def provides(self) -> frozenset[str]:
        """Every privileged field the manifest's terms need (simulation truth)."""
        return frozenset(self._wanted)

    def now(self) -> float:
        """Simulated time, or wall time since `reset` in real-time mode."""
        return time.perf_counter() - self._wall0 if self.cfg.real_time else float(self.data.time)

    def wait_until(self, t: float) -> None:
        """Simulate up to time `t` (and in real-time mode, sleep until the wall clock gets there)."""
        while self.data.time < t - 0.5 * self.cfg.physics_dt:
            self._substep()
        if self.cfg.real_time:
            delay = t - self.now()
            if delay > 0:
                time.sleep(delay)
            self._wall_offset = self.now() - float(self.data.time)

    def read_state(self) -> RobotState:
        """The reading `sensor_latency_s` old, with noise."""
        t, qpos, qvel, sensors = self._snapshots[-1]
        if self.cfg.sensor_latency_s > 0:
            for snap in reversed(self._snapshots):
                if snap[0] <= self.data.time - self.cfg.sensor_latency_s + 1e-9:
                    t, qpos, qvel, sensors = snap
                    break
            else:
                t, qpos, qvel, sensors = self._snapshots[0]
        c, rng = self.cfg, self._rng
        a = self.rm.base_qpos_adr
        state = RobotState(
            time=self._clock_of(t),
            joint_pos=qpos[self._qadr] + rng.uniform(-1, 1, len(self._qadr)) * c.joint_pos_noise,
            joint_vel=qvel[self._dadr] + rng.uniform(-1, 1, len(self._dadr)) * c.joint_vel_noise,
            base_ang_vel=sensors[self._gyro] + rng.uniform(-1, 1, 3) * c.ang_vel_noise,
            base_quat=qpos[a + 3 : a + 7].copy(),
        )  # fmt: skip
        if self._wanted:
            state.extras = self._privileged(qpos, qvel, sensors)
        return state

    def send(self, command: JointCommand) -> None:
        """Queue targets and gains (robot order); they act after `action_latency_s`."""

        def copy(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else np.array(values, dtype=np.float64)

        cmd = JointCommand(np.array(command.target, dtype=np.float64), np.array(command.kp, dtype=np.float64),
                           np.array(command.kd, dtype=np.float64), copy(command.target_vel),
                           copy(command.torque))  # fmt: skip
        self._pending.append((float(self.data.time) + self.cfg.action_latency_s, cmd))

    def close(self) -> None:
        """Free the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # --- simulation -----------------------------------------------------------------------------------

    def reset(self, qpos: np.ndarray | None = None, qvel: np.ndarray | None = None) -> None:
        """Put the robot at `qpos`/`qvel` (default: the default pose just above the ground, still), time 0."""
        d = self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[:] = self.rm.default_qpos(self.nominal_height + SPAWN_CLEARANCE) if qpos is None else qpos
        if qvel is not None:
            d.qvel[:] = qvel
        mujoco.mj_forward(self.model, d)
        a = self.rm.base_qpos_adr
        self._spawn_base = d.qpos[a : a + 7].copy()
        self._pending: collections.deque[tuple[float, JointCommand]] = collections.deque()
        self._active: JointCommand | None = None
        keep = max(2, int(np.ceil(self.cfg.sensor_latency_s / self.cfg.physics_dt)) + 2)
        self._snapshots: collections.deque[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = (
            collections.deque(maxlen=keep)
        )
        self._record()
        self._wall0 = time.perf_counter()
        self._wall_offset = 0.0

    def load_state(self, full_state: np.ndarray, sensordata: np.ndarray | None = None) -> None:
        """Jump to a FULLPHYSICS state (e.g. a training env's), optionally with that state's sensor readings.

        MuJoCo's sensors after `mj_step` are those of the step's start; passing the env's own readings
        makes this robot read exactly what the env read (used by the observation parity test).
        """
        mujoco.mj_setState(self.model, self.data, np.asarray(full_state, dtype=np.float64), _FULLPHYSICS)
        mujoco.mj_forward(self.model, self.data)
        if sensordata is not None:
            self.data.sensordata[:] = sensordata
        self._snapshots.clear()
        self._record()

    def _clock_of(self, sim_time: float) -> float:
        """A simulated time on the clock `now` reads (wall clock in real-time mode)."""
        # Real time: wall minus simulated time as of the last `wait_until`, so a reading is never stamped
        # later than a clock read after it (the runtime rejects a state from the future).
        return sim_time + (self._wall_offset if self.cfg.real_time else 0.0)

    def _record(self) -> None:
        d = self.data
        self._snapshots.append((float(d.time), d.qpos.copy(), d.qvel.copy(), d.sensordata.copy()))

    def _substep(self) -> None:
        """One physics step with the PD torques of the command in force."""
        d = self.data
        while self._pending and self._pending[0][0] <= d.time + 1e-9:
            self._active = self._pending.popleft()[1]
        cmd = self._active
        if cmd is not None:
            q, qd = d.qpos[self._qadr], d.qvel[self._dadr]
            tau = cmd.kp * (cmd.target - q) - cmd.kd * qd
            if cmd.target_vel is not None:
                tau += cmd.kd * cmd.target_vel
            if cmd.torque is not None:
                tau += cmd.torque
            tau = np.clip(tau, -self._torque_limit, self._torque_limit)
            d.ctrl[self._act] = tau
        else:
            d.ctrl[:] = 0.0
        mujoco.mj_step(self.model, d)
        if d.time < self.gantry_until:
            a, v = self.rm.base_qpos_adr, self.rm.base_dof_adr
            d.qpos[a : a + 7] = self._spawn_base
            d.qvel[v : v + 6] = 0.0
            mujoco.mj_forward(self.model, d)  # sensors of the held pose
        self._record()

    def release_gantry(self, at: float) -> None:
        """Let the gantry go at simulated time `at` (s); the base is free from the first step after it."""
        self.gantry_until = float(at)

    def _privileged(self, qpos: np.ndarray, qvel: np.ndarray, sensors: np.ndarray) -> dict[str, np.ndarray]:
        """Simulation truth for the privileged terms the manifest lists (flat ground at height 0)."""
        a, v = self.rm.base_qpos_adr, self.rm.base_dof_adr
        quat = qpos[None, a + 3 : a + 7]
        feet_pos = np.array([sensors[s] for s in self._feet_pos])[None]
        force = -np.array([sensors[s][1:4] for s in self._feet_contact])[None]  # reaction on the foot, world
        ground = self._probe.read(qpos[None, a : a + 3], quat, feet_pos, force)
        j = len(self._qadr)
        truth = {
            "base_lin_vel": quat_rotate_inverse(quat, qvel[None, v : v + 3])[0],
            "base_height": ground.base_height[0], "height_scan": ground.height_scan[0],
            "feet_height_scan": ground.feet_height_scan[0], "feet_contact_force": force[0],
            "feet_contact": ground.feet_contact[0],
            "friction": np.asarray(self._friction), "added_mass": np.asarray(0.0), "com_offset": np.zeros(3),
            "motor_strength": np.ones(2 * j), "push_vel": np.zeros(3), "latency_steps": np.asarray(0),
        }  # fmt: skip
        return {k: truth[k] for k in self._wanted}

    # --- ground truth for benchmarks and videos ---------------------------------------------------------

    def truth(self) -> dict[str, Any]:
        """Current base position (world), base-frame linear velocity, gyro yaw rate and base contact."""
        d, a, v = self.data, self.rm.base_qpos_adr, self.rm.base_dof_adr
        quat = d.qpos[None, a + 3 : a + 7]
        return {
            "base_pos": d.qpos[a : a + 3].copy(),
            "base_lin_vel": quat_rotate_inverse(quat, d.qvel[None, v : v + 3])[0],
            "yaw_rate": float(d.sensordata[self._gyro][2]),
            "base_contact": bool(d.sensordata[self._base_contact][0] > 0),
        }

    def joint_torques(self) -> np.ndarray:
        """The torque each motor applies now (robot order, N m)."""
        return np.array(self.data.ctrl[self._act])

    def full_state(self) -> np.ndarray:
        """The FULLPHYSICS state vector (for rendering)."""
        state = np.zeros(mujoco.mj_stateSize(self.model, _FULLPHYSICS))
        mujoco.mj_getState(self.model, self.data, state, _FULLPHYSICS)
        return state

    def render(self, width: int = 480, height: int = 360) -> np.ndarray:
        """An RGB frame of the robot from a tracking camera (headless EGL, no shadows)."""
        if self._renderer is None:
            from humanoid_prior.envs.rendering import EnvRenderer

            self._renderer = EnvRenderer(self.rm, width=width, height=height, shadows=False)
        return np.asarray(self._renderer.render(self.full_state()))
