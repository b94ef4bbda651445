"""Frame math on batches of unit quaternions, in numpy only.

The simulator, the observation terms and the robot runtime share it; it imports nothing else so that the
runtime on a robot's computer does not pull in MuJoCo.
"""

from __future__ import annotations

import numpy as np


def quat_rotate_inverse(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate world vectors `vec` (N, 3) into the frames given by unit quaternions `quat` (N, 4; w, x, y, z).

    v' = v (2w² - 1) - 2w (u × v) + 2u (u · v), with u the quaternion's vector part (the transpose rotation).
    The cross product is written out: np.cross costs ~15 µs of overhead per call at this size.
    """
    w = quat[:, 0:1]
    ux, uy, uz = quat[:, 1:2], quat[:, 2:3], quat[:, 3:4]
    vx, vy, vz = vec[:, 0:1], vec[:, 1:2], vec[:, 2:3]
    cross = np.hstack([uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx])
    dot = ux * vx + uy * vy + uz * vz
    return vec * (2.0 * w * w - 1.0) - 2.0 * w * cross + 2.0 * quat[:, 1:] * dot


def gravity_z_in_base(quat: np.ndarray) -> float:
    """The z component of gravity's direction (0, 0, -1) in the base frame of one unit quaternion (4,).

    -1 upright, 0 lying on its side: `quat_rotate_inverse`'s z row for that vector, 2 (x² + y²) - 1,
    as scalar arithmetic (a control tick checks the tilt every period; the batched form costs ~20 numpy
    calls).
    """
    _, x, y, _ = (float(v) for v in quat)
    return 2.0 * (x * x + y * y) - 1.0


def yaw_of(quat: np.ndarray) -> np.ndarray:
    """Heading (rad) of each unit quaternion (N, 4; w, x, y, z): the rotation about world z."""
    w, x, y, z = quat[:, 0], quat[:, 1], quat[:, 2], quat[:, 3]
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles (rad) wrapped to (-pi, pi]."""
    return np.angle(np.exp(1j * angle))


def yaw_rotate(offsets: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Offsets (P, 2) in each heading frame -> world-frame offsets (N, P, 2)."""
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack([c * offsets[:, 0] - s * offsets[:, 1], s * offsets[:, 0] + c * offsets[:, 1]], axis=-1)
