"""The runtime's safety layer: command clamps, soft start, joint-target and torque clamps, emergency stop.

All arrays are in policy joint order. The emergency stop latches: once tripped (excessive tilt, a
stale or invalid state, a non-finite action, any error in a control tick) every later command holds
damping only (kp = 0, kd > 0), which lets the robot sink slowly instead of fighting, until the runtime
is restarted. Inputs reach this layer already checked (`validation`): finite, of the right shapes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .manifest import Manifest, SafetyCfg
from .robot import RobotState

logger = logging.getLogger(__name__)


@dataclass
class SafetyCounters:
    """How often each clamp acted, why the emergency stop tripped (None: it did not), rejected commands."""

    command_clamped: int = 0
    command_rejected: int = 0
    """Commands refused at the door (not 3 finite numbers); the last valid command held each time."""
    command_error: str | None = None
    """Why the last refused command was refused."""
    joint_limit_clamped: int = 0
    torque_clamped: int = 0
    estop_reason: str | None = None
    estop_time: float | None = None
    events: list[str] = field(default_factory=list)


class SafetyLayer:
    """Clamps and the emergency stop for one robot and policy (see the module docstring)."""

    def __init__(self, manifest: Manifest, cfg: SafetyCfg | None = None) -> None:
        self.cfg = cfg or manifest.safety
        self.default = manifest.array("default_joint_pos")
        self.kp = manifest.array("kp")
        self.kd = manifest.array("kd")
        limits = manifest.array("joint_limits")
        self.lower, self.upper = limits[:, 0], limits[:, 1]
        self.torque_limit = manifest.array("torque_limits") * self.cfg.torque_limit_fraction
        self.cmd_low, self.cmd_high = manifest.command_low_high()
        self.min_up = float(np.cos(np.radians(self.cfg.max_tilt_deg)))
        self.counters = SafetyCounters()
        self._start_pose: np.ndarray | None = None

    @property
    def stopped(self) -> bool:
        """The emergency stop has tripped."""
        return self.counters.estop_reason is not None

    def clamp_command(self, command: np.ndarray) -> np.ndarray:
        """The command (v_x, v_y, yaw rate) clamped to the ranges the policy was trained on."""
        command = np.asarray(command, dtype=np.float64)
        clamped = np.clip(command, self.cmd_low, self.cmd_high)
        if not np.array_equal(clamped, command):
            self.counters.command_clamped += 1
        return clamped

    def reject_command(self, reason: str) -> None:
        """Count and log a command refused at the door (the caller keeps the last valid one)."""
        self.counters.command_rejected += 1
        self.counters.command_error = reason
        logger.warning("command rejected, the last valid command holds: %s", reason)

    def check_state(self, state: RobotState, now: float, projected_gravity_z: float) -> str | None:
        """Why this valid (`validation.check_state`) reading must stop the robot (stale, tilted), or None."""
        age = now - state.time
        if age > self.cfg.stale_state_s:
            return f"stale robot state ({age * 1e3:.1f} ms old > {self.cfg.stale_state_s * 1e3:.1f} ms)"
        if -projected_gravity_z < self.min_up:
            tilt = float(np.degrees(np.arccos(np.clip(-projected_gravity_z, -1.0, 1.0))))
            return f"base tilt {tilt:.1f} deg > {self.cfg.max_tilt_deg:.1f} deg"
        return None

    def trip(self, reason: str, now: float) -> None:
        """Latch the emergency stop (the first reason is kept)."""
        if self.counters.estop_reason is None:
            self.counters.estop_reason, self.counters.estop_time = reason, now
            self.counters.events.append(f"{now:.3f}s emergency stop: {reason}")
            logger.error("emergency stop (damping only) at %.3f s: %s", now, reason)

    def estop_targets(self, joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(target, kp, kd) of the emergency stop: damping only (target: the current pose, unused at kp 0)."""
        target = np.nan_to_num(np.asarray(joint_pos, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return target, np.zeros_like(self.kp), self.kd * self.cfg.estop_kd_scale

    def soft_start(self, joint_pos: np.ndarray, elapsed: float) -> tuple[np.ndarray, bool]:
        """Target ramping from the pose at the first call to the default pose; True once the ramp is over.

        The ramp is a smoothstep in time (zero velocity at both ends), so the joints neither jerk at the
        start nor at the hand-over to the policy.
        """
        if self._start_pose is None:
            self._start_pose = np.array(joint_pos, dtype=np.float64)
        duration = self.cfg.soft_start_s
        x = 1.0 if duration <= 0 else min(max(elapsed / duration, 0.0), 1.0)
        alpha = x * x * (3.0 - 2.0 * x)
        return self._start_pose + alpha * (self.default - self._start_pose), x >= 1.0

    def clamp_targets(
        self, target: np.ndarray, joint_pos: np.ndarray, joint_vel: np.ndarray, count: bool = True
    ) -> np.ndarray:
        """Targets within the joint limits whose PD torque estimate kp (q* - q) - kd qdot is within limits.

        A target demanding more torque than a motor has is moved towards the pose that demands exactly
        the limit; then the joint limits are applied again (they win over the torque estimate).
        `count=False` leaves the counters alone (a rehearsal, not a tick).
        """
        limited = np.clip(target, self.lower, self.upper)
        if count and not np.array_equal(limited, target):
            self.counters.joint_limit_clamped += 1
        torque = self.kp * (limited - joint_pos) - self.kd * joint_vel
        capped = np.clip(torque, -self.torque_limit, self.torque_limit)
        over = (capped != torque) & (self.kp > 0)
        if over.any():
            self.counters.torque_clamped += count
            moved = joint_pos + (capped + self.kd * joint_vel) / np.where(self.kp > 0, self.kp, 1.0)
            limited = np.clip(np.where(over, moved, limited), self.lower, self.upper)
        return limited
