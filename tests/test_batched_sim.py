"""The batched simulator steps like plain mj_step, names its state correctly and survives divergence."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from humanoid_prior.envs.batched_sim import BatchedSim, SimCfg
from humanoid_prior.envs.frames import gravity_z_in_base, quat_rotate_inverse
from humanoid_prior.envs.model_builder import RobotModel, build_model
from humanoid_prior.envs.robots import get_robot
from humanoid_prior.envs.terrain import TerrainCfg, generate_terrain


def _targets(rm: RobotModel, n: int) -> np.ndarray:
    return np.tile(np.asarray(rm.robot.default_joint_pos), (n, 1))


def test_batch_matches_sequential_mj_step(g1_model: RobotModel) -> None:
    n, steps = 6, 25
    rng = np.random.default_rng(0)
    targets = _targets(g1_model, n) + rng.uniform(-0.2, 0.2, (n, g1_model.num_joints))
    with BatchedSim(g1_model, SimCfg(num_envs=n, nthread=2)) as sim:
        for _ in range(steps):
            sim.step(targets)
        for i in (0, n - 1):
            d = mujoco.MjData(g1_model.model)
            d.qpos[:] = g1_model.default_qpos()
            d.ctrl[:] = targets[i]
            mujoco.mj_step(g1_model.model, d, nstep=steps * 4)
            # Not bit-equal: rollout starts each policy step's constraint solve without the previous
            # step's warm start, so the two agree to the solver's tolerance, not to the last bit.
            np.testing.assert_allclose(sim.qpos[i], d.qpos, atol=1e-5)
            np.testing.assert_allclose(sim.qvel[i], d.qvel, atol=1e-4)
            np.testing.assert_allclose(sim.sensordata[i], d.sensordata, atol=1e-2, rtol=1e-4)
        assert sim.time == pytest.approx(steps * 0.02)


def test_joint_accessors_follow_policy_order(g1_model: RobotModel) -> None:
    with BatchedSim(g1_model, SimCfg(num_envs=2, nthread=1)) as sim:
        qpos = np.tile(g1_model.default_qpos(), (2, 1))
        qvel = np.zeros((2, g1_model.model.nv))
        knee = g1_model.robot.actuated_joints.index("right_knee_joint")
        qpos[1, g1_model.model.joint("right_knee_joint").qposadr[0]] = 0.7
        qvel[1, g1_model.model.joint("right_knee_joint").dofadr[0]] = -1.5
        sim.reset(np.arange(2), qpos, qvel)
        assert sim.joint_pos[1, knee] == 0.7
        assert sim.joint_vel[1, knee] == -1.5
        np.testing.assert_array_equal(sim.joint_pos[0], g1_model.robot.default_joint_pos)


def test_base_terms_against_hand_set_motion(g1_model: RobotModel) -> None:
    """Env 0 yawed +90°, env 1 pitched nose-down 90°; both move +x at 1 m/s, turn 0.5 rad/s about body z."""
    with BatchedSim(g1_model, SimCfg(num_envs=2, nthread=1)) as sim:
        qpos = np.tile(g1_model.default_qpos(base_height=1.5), (2, 1))
        qvel = np.zeros((2, g1_model.model.nv))
        a = g1_model.base_qpos_adr
        c = math.cos(math.pi / 4)
        qpos[0, a + 3 : a + 7] = (c, 0.0, 0.0, c)  # yaw +90°: body x points along world +y
        qpos[1, a + 3 : a + 7] = (c, 0.0, c, 0.0)  # pitch +90° about y: body x points along world -z
        v = g1_model.base_dof_adr
        qvel[:, v : v + 3] = (1.0, 0.0, 0.0)  # world frame
        qvel[:, v + 3 : v + 6] = (0.0, 0.0, 0.5)  # body frame
        sim.reset(np.arange(2), qpos, qvel)
        # World +x seen from a body yawed +90° is its -y axis.
        np.testing.assert_allclose(sim.base_lin_vel[0], (0.0, -1.0, 0.0), atol=1e-12)
        np.testing.assert_allclose(sim.projected_gravity[0], (0.0, 0.0, -1.0), atol=1e-12)
        # Pitched nose-down by 90°, gravity points along body +x.
        np.testing.assert_allclose(sim.projected_gravity[1], (1.0, 0.0, 0.0), atol=1e-12)
        np.testing.assert_allclose(sim.base_ang_vel, [[0.0, 0.0, 0.5]] * 2, atol=1e-12)
        # The IMU sits on the pelvis, axes aligned: its gyro reads the base angular velocity, and its
        # velocimeter the base velocity plus ω × r for its offset r from the pelvis origin.
        np.testing.assert_allclose(sim.imu_gyro[0], (0.0, 0.0, 0.5), atol=1e-9)
        r = g1_model.model.site_pos[g1_model.model.site(g1_model.robot.imu_site).id]
        expected = np.array([0.0, -1.0, 0.0]) + np.cross([0.0, 0.0, 0.5], r)
        np.testing.assert_allclose(sim.imu_lin_vel[0], expected, atol=1e-9)


def test_feet_carry_the_weight_when_standing(g1_model: RobotModel) -> None:
    with BatchedSim(g1_model, SimCfg(num_envs=3, nthread=2)) as sim:
        sim.reset(
            np.arange(3), np.tile(g1_model.default_qpos(g1_model.robot.nominal_base_height + 0.02), (3, 1))
        )
        for _ in range(15):  # 0.3 s: landed, not yet tipping
            sim.step(_targets(g1_model, 3))
        weight = g1_model.model.body_subtreemass[1] * 9.81
        force = sim.feet_contact_force
        assert force.shape == (3, 2, 3)
        np.testing.assert_allclose(force[..., 2].sum(axis=1), weight, rtol=0.2)
        assert (sim.feet_contact_count >= 1).all()
        # Left foot on the left (+y in the base frame of an unyawed robot), both near the ground.
        assert (sim.feet_pos[:, 0, 1] > sim.feet_pos[:, 1, 1]).all()
        assert (sim.feet_pos[..., 2] < 0.1).all()
        assert np.abs(sim.feet_vel).max() < 0.5


def test_diverged_env_is_reset_alone(g1_model: RobotModel) -> None:
    n = 4
    with BatchedSim(g1_model, SimCfg(num_envs=n, nthread=2)) as sim, \
            BatchedSim(g1_model, SimCfg(num_envs=n, nthread=2)) as reference:  # fmt: skip
        for s in (sim, reference):
            s.step(_targets(g1_model, n))
        sim.qvel[2, 8] = np.nan
        diverged = sim.step(_targets(g1_model, n)).copy()
        reference.step(_targets(g1_model, n))
        np.testing.assert_array_equal(diverged, [False, False, True, False])
        assert sim.diverged_count == 1
        np.testing.assert_array_equal(sim.qpos[2], g1_model.default_qpos())
        assert sim.time[2] == 0.0
        keep = [0, 1, 3]
        np.testing.assert_array_equal(sim.state[keep], reference.state[keep])
        assert np.isfinite(sim.sensordata).all()
        # MuJoCo's own instability reset (a huge but finite velocity) is caught too.
        sim.qvel[0, :3] = 1e12
        assert sim.step(_targets(g1_model, n))[0]
        assert sim.diverged_count == 2


def test_shape_errors_are_explicit(g1_model: RobotModel) -> None:
    with BatchedSim(g1_model, SimCfg(num_envs=2, nthread=1)) as sim:
        with pytest.raises(ValueError, match=r"joint_targets must have shape \(2, 12\), got \(2, 11\)"):
            sim.step(np.zeros((2, 11)))
        with pytest.raises(ValueError, match=r"qpos must have shape \(1, 19\)"):
            sim.reset(np.array([0]), np.zeros((1, 18)))
    with pytest.raises(ValueError, match="build_model"):
        BatchedSim(g1_model, SimCfg(num_envs=1, sim_dt=0.002))


def test_quat_rotate_inverse_matches_mujoco() -> None:
    rng = np.random.default_rng(1)
    quat = rng.normal(size=(20, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    vec = rng.normal(size=(20, 3))
    expected = np.empty_like(vec)
    for i in range(20):
        neg = np.empty(4)
        mujoco.mju_negQuat(neg, quat[i])
        mujoco.mju_rotVecQuat(expected[i], vec[i], neg)
    np.testing.assert_allclose(quat_rotate_inverse(quat, vec), expected, atol=1e-12)
    # The runtime's per-tick tilt check uses the scalar form of the same rotation's z row.
    down = quat_rotate_inverse(quat, np.tile([0.0, 0.0, -1.0], (20, 1)))[:, 2]
    np.testing.assert_allclose([gravity_z_in_base(q) for q in quat], down, atol=1e-12)
    assert gravity_z_in_base(np.array([1.0, 0.0, 0.0, 0.0])) == -1.0


def test_terrain_heightfield_is_where_the_height_query_says() -> None:
    """Rays cast down onto the compiled heightfield hit the heights the privileged scan reports."""
    terrain = generate_terrain(
        TerrainCfg(
            num_rows=2,
            num_cols=3,
            tile_size=4.0,
            border=1.0,
            seed=3,
            proportions=(("stairs_up", 1), ("rough", 1), ("slope_down", 1)),
        )
    )
    rm = build_model(get_robot("berkeley_humanoid"), terrain)
    m, d = rm.model, mujoco.MjData(rm.model)
    d.qpos[:] = rm.default_qpos(base_height=50.0)  # robot out of the way of the rays
    mujoco.mj_forward(m, d)
    rng = np.random.default_rng(0)
    ny, nx = terrain.heights.shape
    ij = np.stack([rng.integers(1, ny - 1, 200), rng.integers(1, nx - 1, 200)], axis=1)
    xy = ij[:, ::-1] * terrain.horizontal_scale + np.asarray(terrain.origin_xy)
    ground = m.geom("ground").id
    geomid = np.zeros(1, dtype=np.int32)
    for (x, y), expected in zip(xy, terrain.height_at(xy), strict=True):
        dist = mujoco.mj_ray(m, d, np.array([x, y, 10.0]), np.array([0.0, 0.0, -1.0]), None, 1, -1, geomid)
        assert geomid[0] == ground
        assert 10.0 - dist == pytest.approx(expected, abs=1e-4)
    np.testing.assert_allclose(terrain.height_at(xy), terrain.heights[ij[:, 0], ij[:, 1]], atol=1e-9)


def test_feet_sliding_on_a_flat_heightfield_get_upward_contact_normals() -> None:
    """A heightfield is a set of prisms: a foot sphere sunk near a cell edge could be pushed out sideways
    through a neighbouring prism's wall. With the terrain's stiff contacts the normals stay upright."""
    terrain = generate_terrain(TerrainCfg(num_rows=1, num_cols=1, tile_size=4.0, proportions=(("flat", 1),)))
    rm = build_model(get_robot("g1"), terrain)
    m, d = rm.model, mujoco.MjData(rm.model)
    centre = terrain.tile_centers(np.array([0]), np.array([0]))[0]
    d.qpos[:] = rm.default_qpos(rm.robot.nominal_base_height + 0.02)
    d.qpos[rm.base_qpos_adr : rm.base_qpos_adr + 2] = centre[:2]
    ground = m.geom("ground").id
    found: list[float] = []
    for step in range(300):  # 1.5 s; from 0.3 s on, the base is dragged forward at 0.6 m/s
        if step >= 60:
            d.qvel[0] = 0.6
        d.ctrl[:] = rm.robot.default_joint_pos  # position actuators: hold the default pose
        mujoco.mj_step(m, d)
        found += [abs(c.frame[2]) for c in d.contact[: d.ncon] if ground in (c.geom1, c.geom2)]
    normals = np.array(found)
    assert len(normals) > 100, "the feet touch the ground"
    assert np.mean(normals < math.cos(math.radians(5))) < 0.1
