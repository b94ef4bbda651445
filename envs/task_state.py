"""The per-step quantities that observation terms and reward terms read, as one batch of named arrays.

`LocomotionEnv` fills a `TaskState` from the simulator after every policy step; the deploy runtime
fills the proprioceptive part of one from a robot's sensors (batch of 1), so both build observations
with the same functions. Terms never index the simulator's raw arrays.

Frames: "base" is the floating-base body frame, "world" is the simulation frame (z up). Angles in rad,
lengths in m, velocities in m/s or rad/s, forces in N, torques in N m. N = num_envs, J = actuated
joints (policy order), F = feet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _empty(*shape: int) -> np.ndarray:
    return np.zeros(shape)


@dataclass
class TaskState:
    """Named batch arrays for one policy step. Shapes in brackets; all float64 unless noted."""

    dt: float
    """Policy period (s)."""
    default_joint_pos: np.ndarray
    """[J] default joint angles; observations and actions are relative to them."""
    # --- proprioception: what the robot itself measures ------------------------------------------
    base_ang_vel: np.ndarray
    """[N, 3] IMU angular velocity, base frame."""
    projected_gravity: np.ndarray
    """[N, 3] unit gravity direction in the base frame ((0, 0, -1) upright)."""
    commands: np.ndarray
    """[N, 3] commanded forward velocity, lateral velocity (base frame, m/s) and yaw rate (rad/s)."""
    joint_pos: np.ndarray
    """[N, J] joint angles."""
    joint_vel: np.ndarray
    """[N, J] joint velocities."""
    actions: np.ndarray
    """[N, J] the policy's latest action (joint target = default + action_scale * action)."""
    gait_phase: np.ndarray
    """[N] gait clock phase in [0, 1)."""
    # --- privileged: simulation truth ------------------------------------------------------------------
    last_actions: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, J] the action before `actions`."""
    base_lin_vel: np.ndarray = field(default_factory=lambda: _empty(0, 3))
    """[N, 3] base linear velocity, base frame."""
    base_pos: np.ndarray = field(default_factory=lambda: _empty(0, 3))
    """[N, 3] base position, world frame."""
    base_quat: np.ndarray = field(default_factory=lambda: _empty(0, 4))
    """[N, 4] base orientation quaternion (w, x, y, z), world frame."""
    base_height: np.ndarray = field(default_factory=lambda: _empty(0))
    """[N] base height above the terrain directly below it."""
    joint_acc: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, J] joint accelerations (finite difference of joint_vel over dt)."""
    joint_torque: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, J] actuator torques applied in the last physics substep."""
    joint_limits: np.ndarray = field(default_factory=lambda: _empty(0, 2))
    """[J, 2] joint position limits."""
    torque_limits: np.ndarray = field(default_factory=lambda: _empty(0))
    """[J] torque limits."""
    feet_pos: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))
    """[N, F, 3] foot positions, world frame."""
    feet_vel: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))
    """[N, F, 3] foot linear velocities, world frame."""
    feet_height: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, F] foot height above the terrain directly below it."""
    feet_contact_force: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))
    """[N, F, 3] ground reaction force on each foot, world frame."""
    feet_contact: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    """[N, F] bool, foot in contact (vertical force above the contact threshold)."""
    feet_air_time: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, F] time since the foot last left the ground; at touchdown it holds the swing's duration."""
    feet_first_contact: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    """[N, F] bool, the foot touched down in this step."""
    undesired_contacts: np.ndarray = field(default_factory=lambda: _empty(0))
    """[N] number of contacts of robot bodies other than the feet."""
    terminated: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """[N] bool, the episode ended in failure in this step (not a time-out)."""
    base_contact: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """[N] bool, the base body touches something."""
    diverged: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """[N] bool, the physics diverged in this step (the simulator restored a sane state)."""
    episode_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    """[N] policy steps since the episode's start."""
    max_episode_steps: int = 0
    """Policy steps in a full episode."""
    nominal_base_height: float = 0.0
    """The robot's standing base height above flat ground (m)."""
    # --- privileged: hidden parameters and surroundings --------------------------------------------------
    height_scan: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, P] base height above the terrain at scan points around the robot, minus the nominal height."""
    feet_height_scan: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, F*Q] foot sole height above the terrain at points around each foot."""
    friction: np.ndarray = field(default_factory=lambda: _empty(0))
    """[N] ground friction coefficient."""
    added_mass: np.ndarray = field(default_factory=lambda: _empty(0))
    """[N] mass added to the base (kg)."""
    com_offset: np.ndarray = field(default_factory=lambda: _empty(0, 3))
    """[N, 3] base centre-of-mass offset (m, base frame)."""
    motor_strength: np.ndarray = field(default_factory=lambda: _empty(0, 0))
    """[N, 2J] kp and kd scale factors per joint."""
    push_vel: np.ndarray = field(default_factory=lambda: _empty(0, 3))
    """[N, 3] the last random push (world-frame velocity change), decaying with time since it."""
    latency_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    """[N] action delay (control steps) of each env's actuation."""
    hip_splay_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """[J] the robot's hip roll and yaw joints (`RobotCfg.hip_splay_joints`)."""
