"""The runtime's door: every robot reading and velocity command is checked before anything uses it.

numpy lets malformed inputs through silently or fails far from their cause: a NaN passes `np.clip`, a
NaN timestamp makes every age comparison False (so a frozen state looks fresh), a one-element command
broadcasts to all three axes, and a quaternion of norm 3 turns projected gravity into a vector 17
times too long (upright), so the tilt check reads nonsense.
`check_state` and `check_command` either return a clean float64 copy or raise `InvalidInputError` with a
one-line reason; the runtime turns an invalid state into an emergency stop and an invalid command into
a rejected command (the last valid one holds).
"""

from __future__ import annotations

import math

import numpy as np

from .robot import RobotState

QUAT_NORM_TOLERANCE = 0.1
"""A base quaternion with |‖q‖ - 1| above this is not an attitude (a corrupted or uninitialised IMU
message); smaller deviations (an estimator's integration drift) are normalised away."""
MAX_ABS_READING = 1e4
"""No joint angle (rad), joint speed (rad/s) or body rate (rad/s) of a humanoid comes near this: a value
beyond it is a corrupted reading (an encoder glitch, an uninitialised buffer), not a state to act on."""
CLOCK_TOLERANCE_S = 1e-6
"""A reading may be stamped this far after `Robot.now()` (float rounding of the same clock), no further."""


class InvalidInputError(ValueError):
    """An input the runtime must not act on; the message is the reason, one line."""


def check_command(command: object) -> np.ndarray:
    """`command` (v_x, v_y, yaw rate) as a (3,) float64 array; `InvalidInputError` unless 3 finite numbers."""
    try:
        values = np.asarray(command, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"command {command!r} is not numbers: give (v_x, v_y, yaw_rate)") from exc
    if values.shape != (3,):
        raise InvalidInputError(f"command has shape {values.shape}, expected 3 values (v_x, v_y, yaw_rate)")
    if not np.isfinite(values).all():
        raise InvalidInputError(f"non-finite command {values.tolist()} (NaN or inf)")
    return values


def check_state(raw: RobotState, num_joints: int, now: float) -> RobotState:
    """A copy of `raw` (robot joint order) with float64 arrays and a unit quaternion, or `InvalidInputError`.

    Checks the shapes (`num_joints` joints, a 3-vector gyro, a 4-vector quaternion), that every value
    is finite and plausible, that the timestamp is a finite time not after `now`, and that the
    quaternion has norm 1 within `QUAT_NORM_TOLERANCE`.
    """
    if not np.isfinite(now):
        raise InvalidInputError(f"the robot clock reads {now}")
    stamp = _finite_scalar(raw.time, "time")
    if stamp > now + CLOCK_TOLERANCE_S:
        raise InvalidInputError(f"state time {stamp:.6f} s is {stamp - now:.6f} s ahead of the robot clock")
    joint_pos, joint_vel = _as_float(raw.joint_pos, "joint_pos"), _as_float(raw.joint_vel, "joint_vel")
    gyro, quat = _as_float(raw.base_ang_vel, "base_ang_vel"), _as_float(raw.base_quat, "base_quat")
    readings = (joint_pos, joint_vel, gyro, quat)
    expected = ((num_joints,), (num_joints,), (3,), (4,))
    # One finite-and-plausible test over all readings (NaN fails `<=`): this runs every control tick, and
    # each numpy call costs microseconds on a robot's computer. A failure is named reading by reading.
    if tuple(r.shape for r in readings) != expected or not (
        float(np.abs(np.concatenate(readings)).max()) <= MAX_ABS_READING
    ):
        for name, value, shape in zip(_READINGS, readings, expected, strict=True):
            _reading(value, name, shape)
    state = RobotState(
        time=stamp, joint_pos=joint_pos, joint_vel=joint_vel, base_ang_vel=gyro, base_quat=quat, extras={}
    )
    norm = math.sqrt(float(quat @ quat))
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise InvalidInputError(f"base_quat has norm {norm:.3f}, not 1 ± {QUAT_NORM_TOLERANCE}")
    state.base_quat /= norm
    for name, value in raw.extras.items():
        # Extras are simulator-truth terms of any unit (contact forces in N): finite is all we can ask.
        extra = _as_float(value, f"extras['{name}']")
        if not np.isfinite(extra).all():
            raise InvalidInputError(f"non-finite robot state (NaN or inf) in extras['{name}']")
        state.extras[name] = extra
    return state


def _as_float(value: object, name: str) -> np.ndarray:
    try:
        return np.array(value, dtype=np.float64)  # a copy: the backend may reuse its buffers
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} is not numbers ({exc})") from exc


def _finite_scalar(value: object, name: str) -> float:
    array = _as_float(value, name)
    if array.shape != ():
        raise InvalidInputError(f"state {name} has shape {array.shape}, expected one number")
    if not np.isfinite(array):
        raise InvalidInputError(f"state {name} is {float(array)}, not a finite time")
    return float(array)


_READINGS = ("joint_pos", "joint_vel", "base_ang_vel", "base_quat")


def _reading(value: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = _as_float(value, name)
    if array.shape != shape:
        raise InvalidInputError(f"{name} has shape {array.shape}, expected {shape}")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"non-finite robot state (NaN or inf) in {name}")
    largest = float(np.abs(array).max())
    if largest > MAX_ABS_READING:
        raise InvalidInputError(f"implausible {name}: |value| {largest:.3g} > {MAX_ABS_READING:g}")
    return array
