"""The `Robot` interface the runtime drives: read a state, send joint targets with gains, keep time.

A backend is one module implementing `Robot`: `humanoid_prior.deploy.mujoco_robot` (sim2sim) and
`humanoid_prior.deploy.unitree_g1` (a G1 over DDS) here; another robot's backend implements the same
five members (joint names, clock, wait, read, send) on top of its SDK's state and command messages.
Arrays are in the robot's own joint order (`joint_names`); the runtime maps them onto the policy's order
by name, so a robot whose SDK lists its motors in another order needs no reordering code of its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RobotState:
    """One reading of the robot's sensors, in the robot's joint order."""

    time: float
    """When it was measured, on the robot's clock (`Robot.now`) (s): the runtime checks its age."""
    joint_pos: np.ndarray
    """[J] joint angles (rad)."""
    joint_vel: np.ndarray
    """[J] joint velocities (rad/s)."""
    base_ang_vel: np.ndarray
    """[3] IMU angular velocity, base frame (rad/s)."""
    base_quat: np.ndarray
    """[4] base orientation (w, x, y, z) in a gravity-aligned world frame (the IMU's attitude estimate)."""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """Further `TaskState` fields by name, without the batch axis (e.g. "base_lin_vel" from a state
    estimator). Only a teacher's privileged terms need them; a simulator can give them all."""


@dataclass
class JointCommand:
    """PD targets for every joint, in the robot's joint order.

    A motor driver applies tau = torque + kp (target - q) + kd (target_vel - qdot); the runtime sends no
    feed-forward torque and zero target velocity, i.e. tau = kp (target - q) - kd qdot.
    """

    target: np.ndarray
    """[J] joint angle targets (rad)."""
    kp: np.ndarray
    """[J] stiffness (N m / rad)."""
    kd: np.ndarray
    """[J] damping (N m s / rad)."""
    target_vel: np.ndarray | None = None
    """[J] joint velocity targets (rad/s); None: 0."""
    torque: np.ndarray | None = None
    """[J] feed-forward torques (N m); None: 0."""
    damping: bool = False
    """The emergency stop's damping: a backend that holds joints the policy does not drive damps them too."""


class Robot(ABC):
    """What the runtime needs from a robot (see the module docstring)."""

    @property
    @abstractmethod
    def joint_names(self) -> tuple[str, ...]:
        """Names of the joints in the order of `RobotState` and `JointCommand` arrays."""

    @abstractmethod
    def now(self) -> float:
        """The robot's clock (s): wall time on hardware, simulated time in a simulator."""

    @abstractmethod
    def wait_until(self, t: float) -> None:
        """Return at time `t` of `now()` (hardware: sleep; a simulator: simulate up to `t`)."""

    @abstractmethod
    def read_state(self) -> RobotState:
        """The newest sensor reading."""

    @abstractmethod
    def send(self, command: JointCommand) -> None:
        """Hand joint targets and gains to the motor drivers (they hold them until the next command)."""

    def provides(self) -> frozenset[str]:
        """Names of the `RobotState.extras` this robot fills (none by default)."""
        return frozenset()

    def close(self) -> None:  # noqa: B027 - optional hook, most backends have nothing to free
        """Release the robot (connections, threads, renderers)."""


class VirtualClockRobot(Robot):
    """A robot on a virtual clock: time moves only when the runtime waits.

    A loop over it runs as fast as its code (state replays, scripted tests). Subclasses give
    `read_state` and `send`.
    """

    def __init__(self, joint_names: tuple[str, ...]) -> None:
        self._joint_names = tuple(joint_names)
        self.t = 0.0

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The joints given at construction."""
        return self._joint_names

    def now(self) -> float:
        """The virtual clock (s)."""
        return self.t

    def wait_until(self, t: float) -> None:
        """Move the clock to `t` at once (never back)."""
        self.t = max(self.t, t)
