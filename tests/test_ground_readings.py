import numpy as np

from humanoid_prior.envs.ground_readings import GroundProbe, feet_in_contact, flat_ground


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([[np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]])


def slope(xy: np.ndarray) -> np.ndarray:
    """Ground rising 0.1 m per metre along world x."""
    return 0.1 * xy[..., 0]


PROBE = GroundProbe(
    base_points=np.array([[1.0, 0.0], [0.0, 1.0]]),
    foot_points=np.array([[0.5, 0.0]]),
    nominal_base_height=0.7,
    contact_force_threshold=5.0,
)


def test_a_foot_is_in_contact_only_above_the_vertical_force_threshold():
    force = np.array([[[100.0, 0.0, 4.9], [0.0, 0.0, 5.1]]])  # a large sideways force is not contact
    assert feet_in_contact(force, threshold=5.0).tolist() == [[False, True]]


def test_scan_points_turn_with_the_heading_and_read_the_ground_under_them():
    base = np.array([[2.0, 0.0, 1.0]])
    feet = np.array([[[2.0, 0.1, 0.3], [2.0, -0.1, 0.25]]])
    force = np.array([[[0.0, 0.0, 50.0], [0.0, 0.0, 0.0]]])
    ahead = PROBE.read(base, yaw_quat(0.0), feet, force, slope)
    # heading +x: the point 1 m ahead is at x=3 (ground 0.3), the one to the left at x=2 (ground 0.2)
    np.testing.assert_allclose(ahead.height_scan, [[1.0 - 0.3 - 0.7, 1.0 - 0.2 - 0.7]])
    np.testing.assert_allclose(ahead.feet_height_scan, [[0.3 - 0.25, 0.25 - 0.25]])
    np.testing.assert_allclose(ahead.base_height, [1.0 - 0.2])
    np.testing.assert_allclose(ahead.feet_height, [[0.3 - 0.2, 0.25 - 0.2]])
    assert ahead.feet_contact.tolist() == [[True, False]]
    # heading +y (yaw 90°): "ahead" now lies across the slope, "left" points down it (x=1, ground 0.1)
    turned = PROBE.read(base, yaw_quat(np.pi / 2), feet, force, slope)
    np.testing.assert_allclose(turned.height_scan, [[1.0 - 0.2 - 0.7, 1.0 - 0.1 - 0.7]], atol=1e-12)


def test_a_robot_standing_at_its_nominal_height_on_flat_ground_reads_zero():
    base = np.array([[0.0, 0.0, 0.7], [5.0, -3.0, 0.7]])
    quat = np.vstack([yaw_quat(0.3), yaw_quat(-2.0)])
    feet = np.zeros((2, 2, 3))
    readings = PROBE.read(base, quat, feet, np.zeros((2, 2, 3)), flat_ground)
    np.testing.assert_allclose(readings.height_scan, 0.0, atol=1e-12)
    np.testing.assert_allclose(readings.base_height, 0.7)
