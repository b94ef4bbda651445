"""What the robot's pose says about the ground under it: heights, height scans and foot contact.

The one derivation of these privileged quantities. `LocomotionEnv` calls it with its terrain's height
map, the sim2sim robot (`deploy.mujoco_robot`) with flat ground, so a teacher's privileged input means the
same thing in training and in sim2sim. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .frames import yaw_of, yaw_rotate

GroundHeight = Callable[[np.ndarray], np.ndarray]
"""Ground height (m) at world points (..., 2) -> (...)."""


def flat_ground(xy: np.ndarray) -> np.ndarray:
    """Ground at height 0 everywhere."""
    return np.zeros(xy.shape[:-1])


def feet_in_contact(feet_contact_force: np.ndarray, threshold: float) -> np.ndarray:
    """[N, F] bool: the vertical ground force on each foot above `threshold` (N)."""
    return np.asarray(feet_contact_force[..., 2] > threshold)


@dataclass(frozen=True)
class GroundReadings:
    """Batch arrays (see `TaskState` for each field's meaning and frame)."""

    base_height: np.ndarray
    feet_height: np.ndarray
    feet_contact: np.ndarray
    height_scan: np.ndarray
    feet_height_scan: np.ndarray


@dataclass(frozen=True)
class GroundProbe:
    """Where to sample the ground and what counts as contact, for one robot."""

    base_points: np.ndarray
    """(P, 2) scan offsets around the base, in its heading frame (m)."""
    foot_points: np.ndarray
    """(Q, 2) scan offsets around each foot, in the base's heading frame (m)."""
    nominal_base_height: float
    """Subtracted from the base scan, so a robot standing on flat ground reads about 0 (m)."""
    contact_force_threshold: float
    """Vertical force above which a foot is in contact (N)."""

    def read(
        self, base_pos: np.ndarray, base_quat: np.ndarray, feet_pos: np.ndarray,
        feet_contact_force: np.ndarray, ground: GroundHeight = flat_ground,
    ) -> GroundReadings:  # fmt: skip
        """Readings for bases (N, 3) at orientations (N, 4), feet (N, F, 3) with foot forces (N, F, 3)."""
        n = len(base_pos)
        yaw = yaw_of(base_quat)
        base_pts = base_pos[:, None, :2] + yaw_rotate(self.base_points, yaw)
        foot_pts = feet_pos[:, :, None, :2] + yaw_rotate(self.foot_points, yaw)[:, None]
        scan = base_pos[:, 2:3] - ground(base_pts) - self.nominal_base_height
        foot_scan = feet_pos[..., 2:3] - ground(foot_pts)
        return GroundReadings(
            base_height=base_pos[:, 2] - ground(base_pos[:, :2]),
            feet_height=feet_pos[..., 2] - ground(feet_pos[..., :2]),
            feet_contact=feet_in_contact(feet_contact_force, self.contact_force_threshold),
            height_scan=np.clip(scan, -1.0, 1.0),
            feet_height_scan=np.clip(foot_scan.reshape(n, -1), -1.0, 1.0),
        )
