"""The control loop on the robot: state -> observation -> policy -> safety -> joint targets, every period.

`Runtime.step` is one tick: read the robot and validate the reading at the door (`validation`), check
it (emergency stop), then during the soft start ramp to the default pose, afterwards build the
observation with the env's code (`PolicyObservation`), run the exported policy, turn its action into
joint targets exactly as the env does (default + action_scale * clip(action)), clamp them and send
them. `Runtime.run` calls it at the control period on the robot's clock and reports the loop's timing
(`LoopStats`).

A tick fails safe: it never raises. An invalid reading, or an exception anywhere in the tick, latches
the emergency stop with its reason and the tick sends damping, so a fault never leaves the motors
holding the last targets of a walking gait. A command that is not 3 finite numbers is refused by
`set_command` and the last valid command holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from humanoid_prior.envs.frames import gravity_z_in_base

from .inference import PolicyEngine
from .manifest import Manifest, SafetyCfg
from .observation import PolicyObservation
from .robot import JointCommand, Robot, RobotState
from .safety import SafetyCounters, SafetyLayer
from .validation import InvalidInputError, check_command, check_state

logger = logging.getLogger(__name__)


def joint_mapping(manifest: Manifest, robot_joints: tuple[str, ...]) -> np.ndarray:
    """Index into the robot's joint arrays of each policy joint; fails naming joints the robot lacks."""
    missing = [j for j in manifest.joint_names if j not in robot_joints]
    if missing:
        raise ValueError(
            f"the policy's joints {missing} are not joints of this robot (it has {list(robot_joints)}); "
            f"the manifest is for robot '{manifest.robot}': deploy it on that robot, or export a policy "
            "trained for this one."
        )
    return np.array([robot_joints.index(j) for j in manifest.joint_names], dtype=np.intp)


@dataclass
class LoopStats:
    """Timing of the control loop and what the safety layer did."""

    period_s: float
    steps: int = 0
    policy_steps: int = 0
    tick_lateness_s: list[float] = field(default_factory=list)
    """Start of each tick minus its scheduled time, on the robot's clock."""
    compute_s: list[float] = field(default_factory=list)
    """Wall time of each `Runtime.step` (read, observation, policy, safety, send)."""
    safety: SafetyCounters = field(default_factory=SafetyCounters)

    def summary(self) -> dict[str, Any]:
        """Jitter, overruns (a tick computed longer than the period, or started a period late) and safety."""
        late = np.abs(np.asarray(self.tick_lateness_s)) if self.tick_lateness_s else np.zeros(1)
        comp = np.asarray(self.compute_s) if self.compute_s else np.zeros(1)
        overruns = int(((comp > self.period_s) | (late > self.period_s)).sum()) if self.steps else 0
        ms = 1e3
        return {
            "steps": self.steps, "policy_steps": self.policy_steps, "period_ms": self.period_s * ms,
            "jitter_mean_ms": float(late.mean() * ms), "jitter_p99_ms": float(np.percentile(late, 99) * ms),
            "jitter_max_ms": float(late.max() * ms), "overruns": overruns,
            "compute_p50_ms": float(np.percentile(comp, 50) * ms),
            "compute_p99_ms": float(np.percentile(comp, 99) * ms), "compute_max_ms": float(comp.max() * ms),
            "estop": self.safety.estop_reason, "command_clamped": self.safety.command_clamped,
            "command_rejected": self.safety.command_rejected,
            "joint_limit_clamped": self.safety.joint_limit_clamped,
            "torque_clamped": self.safety.torque_clamped,
        }  # fmt: skip


class Runtime:
    """Runs an exported policy on a `Robot` (see the module docstring)."""

    def __init__(
        self,
        manifest: Manifest,
        policy: PolicyEngine,
        robot: Robot,
        command: npt.ArrayLike = (0.0, 0.0, 0.0),
        safety: SafetyCfg | None = None,
    ) -> None:
        self.manifest = m = manifest
        expected = m.observation.input_size
        if policy.input_size != expected:
            raise ValueError(
                f"the policy file takes {policy.input_size} observation values but the manifest's layout "
                f"gives {expected} ({m.observation.history_len} frame(s) of {m.observation.frame_size}); "
                "the policy file and deploy.json come from different exports: export again with "
                "`train.py export`."
            )
        if policy.output_size != m.num_joints:
            raise ValueError(
                f"the policy file outputs {policy.output_size} actions but the manifest lists {m.num_joints} "
                "joints; export again with `train.py export`."
            )
        self.policy = policy
        self.robot = robot
        self.index = joint_mapping(m, robot.joint_names)
        self.safety = SafetyLayer(m, safety)
        self.default = m.array("default_joint_pos")
        self.kp, self.kd = m.array("kp"), m.array("kd")
        self.command = self.safety.clamp_command(check_command(command))  # a bad start command: fail here
        self.last_action = np.zeros(m.num_joints)
        self.policy_step = 0
        self.observation: PolicyObservation | None = None
        self.last_input: np.ndarray | None = None
        self.stats = LoopStats(period_s=m.control_period_s, safety=self.safety.counters)
        self._t0: float | None = None
        self._num_robot_joints = len(robot.joint_names)
        self._send_target = np.zeros(self._num_robot_joints)
        self._now = float("nan")  # the robot clock at this tick: stamps an emergency stop
        self._pose = self.default.copy()  # the last valid joint angles: the stop's target if a reading is bad

    # --- one tick -----------------------------------------------------------------------------------

    def set_command(self, command: npt.ArrayLike) -> bool:
        """A new velocity command (v_x, v_y, yaw rate), clamped to the trained ranges; True if taken.

        A command that is not 3 finite numbers is refused (False): the last valid command holds, and the
        reason is counted and kept in `stats.safety` (`command_rejected`, `command_error`) and logged.
        A NaN would pass the clamp and reach the policy; refusing it keeps a walking robot walking.
        """
        try:
            self.command = self.safety.clamp_command(check_command(command))
        except InvalidInputError as exc:
            self.safety.reject_command(str(exc))
            return False
        return True

    def read(self, now: float | None = None) -> RobotState:
        """The robot's newest state, validated at `now` (default: the robot clock), in policy joint order.

        Raises `InvalidInputError` for a malformed reading (see `validation.check_state`).
        """
        now = self.robot.now() if now is None else now
        state = check_state(self.robot.read_state(), self._num_robot_joints, now)
        state.joint_pos, state.joint_vel = state.joint_pos[self.index], state.joint_vel[self.index]
        return state

    @property
    def in_soft_start(self) -> bool:
        """The policy has not taken over yet."""
        return self.observation is None or self._t0 is not None

    def step(self) -> np.ndarray:
        """One control tick; returns the joint targets sent (policy order). Never raises.

        An invalid reading or an exception inside the tick latches the emergency stop: the reason is in
        `safety.counters.estop_reason` (and the log) and this and every later tick send damping.
        """
        try:
            return self._tick()
        except InvalidInputError as exc:
            self.safety.trip(f"invalid robot state: {exc}", self._now)
        except Exception as exc:  # a backend fault or a bug: stopping beats holding the last targets
            logger.exception("exception in the control step")
            self.safety.trip(f"exception in the control step: {type(exc).__name__}: {exc}", self._now)
        return self._damp()

    def _tick(self) -> np.ndarray:
        self._now = now = float(self.robot.now())
        state = self.read(now)
        self._pose = state.joint_pos
        if self.safety.stopped:
            return self._damp()
        gravity_z = gravity_z_in_base(state.base_quat)
        reason = self.safety.check_state(state, now, gravity_z)
        if reason is not None:
            self.safety.trip(reason, now)
            return self._damp()
        if self.observation is None:
            # The first reading checks that the robot gives every term the policy reads, with its size.
            self.observation = PolicyObservation(self.manifest, state)
            self._t0 = now
        if self._t0 is not None:
            target, done = self.safety.soft_start(state.joint_pos, now - self._t0)
            if done:
                self._t0 = None  # the policy acts from the next tick, its clock and history starting afresh
                self.observation.reset()
                self.policy_step = 0
                self.last_action[:] = 0.0
        else:
            acted = self._policy_target(state, now)
            if acted is None:
                return self._damp()
            target = acted
        target = self.safety.clamp_targets(target, state.joint_pos, state.joint_vel)
        if not np.isfinite(target).all():  # unreachable from valid inputs; the motors never get a NaN
            self.safety.trip("non-finite joint target", now)
            return self._damp()
        return self._send(target, self.kp, self.kd)

    def _policy_target(self, state: RobotState, now: float) -> np.ndarray | None:
        assert self.observation is not None
        obs = self.observation(state, self.command, self.last_action, self.policy_step)
        self.last_input = obs
        action = np.asarray(self.policy(obs), dtype=np.float64)[0]
        if not np.isfinite(action).all():
            self.safety.trip("non-finite policy action", now)
            return None
        m = self.manifest
        np.clip(action, -m.action_clip, m.action_clip, out=self.last_action)
        self.policy_step += 1
        self.stats.policy_steps += 1
        return self.default + m.action_scale * self.last_action

    def rehearse(self) -> None:
        """Compute the next tick on the newest state and throw the result away, to warm the CPU.

        A core that slept since the last tick runs it several times slower than one that runs it back
        to back (over DDS on the 2-core development VM the step's p50 went 0.96 -> 0.70 ms with a
        rehearsal 2.5 ms before, docs/unitree_g1.md). The rehearsal runs the tick's own code
        (validation, observation terms, policy, clamps) and changes nothing: no history push, no
        counter, nothing sent. Any error is left for the tick itself to meet.
        """
        if self.observation is None or self._t0 is not None or self.last_input is None or self.safety.stopped:
            return
        try:
            state = self.read()
            self.observation.fill(state, self.command, self.last_action, self.policy_step)
            self.observation.frame()  # the next tick's fill overwrites every field of the filled state
            action = np.asarray(self.policy(self.last_input), dtype=np.float64)[0]
            target = self.default + self.manifest.action_scale * action
            self.safety.clamp_targets(target, state.joint_pos, state.joint_vel, count=False)
        except Exception:  # the tick that follows reports whatever this met
            return

    def send_damping(self) -> np.ndarray:
        """Damping on every joint now (before arming), the same command the emergency stop sends."""
        return self._damp()

    def _damp(self) -> np.ndarray:
        """Send the emergency stop's damping (its target, unused at kp = 0, is the last valid pose)."""
        target, kp, kd = self.safety.estop_targets(self._pose)
        try:
            return self._send(target, kp, kd, damping=True)
        except Exception:  # the backend cannot send: say so, and keep the loop (and the stop) alive
            logger.exception("could not send the emergency stop's damping command")
            return target

    def _send(self, target: np.ndarray, kp: np.ndarray, kd: np.ndarray, damping: bool = False) -> np.ndarray:
        """Send policy-order targets and gains in the robot's order (other robot joints get zero gains)."""
        n = self._num_robot_joints
        out_t, out_kp, out_kd = self._send_target.copy(), np.zeros(n), np.zeros(n)
        out_t[self.index], out_kp[self.index], out_kd[self.index] = target, kp, kd
        self.robot.send(JointCommand(out_t, out_kp, out_kd, damping=damping))
        return target

    # --- the loop -----------------------------------------------------------------------------------

    def run(
        self, seconds: float, on_tick: Callable[[Runtime], object] | None = None, rehearse_s: float = 0.0
    ) -> LoopStats:
        """Tick every control period for `seconds` of robot time; `on_tick(runtime)` after each tick.

        `rehearse_s` > 0: `rehearse` that long before each tick (a robot whose clock is wall time).
        """
        period = self.manifest.control_period_s
        next_tick = self.robot.now()
        for _ in range(max(1, round(seconds / period))):
            if rehearse_s > 0:
                delay = next_tick - rehearse_s - self.robot.now()
                if delay > 0:
                    time.sleep(delay)
                self.rehearse()
            self.robot.wait_until(next_tick)
            self.stats.tick_lateness_s.append(self.robot.now() - next_tick)
            start = time.perf_counter()
            self.step()
            self.stats.compute_s.append(time.perf_counter() - start)
            self.stats.steps += 1
            if on_tick is not None:
                on_tick(self)
            next_tick += period
        return self.stats
