"""Left-right symmetry: the mirror of a simulated state's observation is the mirrored state's observation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer

from humanoid_prior.algorithms.symmetry import Mirror, _point_mirror, joint_mirror, mirrored_buffer
from humanoid_prior.envs.batched_sim import SimCfg
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.randomization import DomainRandCfg
from humanoid_prior.envs.robots import get_robot
from humanoid_prior.envs.task_cfg import ScanCfg, task_preset


def mirror_quat(q: np.ndarray) -> np.ndarray:
    """Reflection through the world x-z plane of an orientation (w, x, y, z) -> (w, -x, y, -z)."""
    return q * np.array([1.0, -1.0, 1.0, -1.0])


@pytest.fixture(scope="module")
def pair() -> Iterator[LocomotionEnv]:
    """Two G1s, env 1 the mirror image of env 0 (a generic airborne state: nothing symmetric by luck)."""
    task = task_preset("g1", "flat")
    task = dataclasses.replace(
        task, sim=SimCfg(num_envs=2, nthread=1), domain_rand=DomainRandCfg(enabled=False)
    )
    env = LocomotionEnv(task, seed=0)
    env.reset(seed=0)
    rm, rng = env.robot_model, np.random.default_rng(3)
    joints = joint_mirror(env.robot)
    a, j = rm.base_qpos_adr, rm.joint_qpos_adr
    qpos = np.tile(rm.default_qpos(), (2, 1))
    qpos[0, a : a + 3] = (0.3, 0.2, 1.2)  # in the air: no contacts
    tilt = np.array([0.95, 0.1, -0.15, 0.25])
    qpos[0, a + 3 : a + 7] = tilt / np.linalg.norm(tilt)
    qpos[0, j] = env.default_joint_pos + rng.uniform(-0.3, 0.3, env.num_joints)
    qvel = np.zeros((2, rm.model.nv))
    d, dj = rm.base_dof_adr, rm.joint_dof_adr
    qvel[0, d : d + 6] = (0.4, -0.3, 0.1, 0.5, -0.7, 0.9)  # world linear, body-frame angular velocity
    qvel[0, dj] = rng.uniform(-2.0, 2.0, env.num_joints)
    qpos[1, a : a + 3] = qpos[0, a : a + 3] * (1, -1, 1)
    qpos[1, a + 3 : a + 7] = mirror_quat(qpos[0, a + 3 : a + 7])
    qpos[1, j] = joints(qpos[0, j])  # the default pose is symmetric, so absolute angles mirror too
    qvel[1, d : d + 3] = qvel[0, d : d + 3] * (1, -1, 1)  # polar vector
    qvel[1, d + 3 : d + 6] = qvel[0, d + 3 : d + 6] * (-1, 1, -1)  # axial vector
    qvel[1, dj] = joints(qvel[0, dj])
    env.sim.reset(np.arange(2), qpos, qvel)
    env.commands.commands[:] = [(0.6, 0.2, -0.4), (0.6, -0.2, 0.4)]
    env.actions[:] = [rng.uniform(-1, 1, env.num_joints)] * 2
    env.actions[1] = joints(env.actions[0])
    # The feet are half a gait period apart: the mirror image is the clock half a period later.
    env.episode_step[:] = (3, 3 + round(0.5 * env.cfg.gait_period_s / env.dt))
    env.domain_rand.push_vel[:] = [(0.3, 0.4, 0.0), (0.3, -0.4, 0.0)]  # world frame, mirrored in the world
    env._refresh_state()
    yield env
    env.close()


def test_observation_of_the_mirrored_state_is_the_mirrored_observation(pair: LocomotionEnv) -> None:
    mirror = Mirror.build(pair.robot, pair.observations.layouts, pair.cfg.scan)
    obs = pair.observations.compute(pair.state, noise=False)
    for group, values in obs.items():
        assert np.abs(values[0] - values[1]).max() > 0.1, "the state must not be its own mirror image"
        np.testing.assert_allclose(mirror.groups[group](values[0]), values[1], atol=1e-5, err_msg=group)


def test_mirror_is_an_involution_and_actions_swap_legs(pair: LocomotionEnv) -> None:
    mirror = Mirror.build(pair.robot, pair.observations.layouts, pair.cfg.scan)
    x = np.random.default_rng(0).normal(size=(5, pair.obs_sizes["privileged"]))
    np.testing.assert_array_equal(mirror.groups["privileged"](mirror.groups["privileged"](x)), x)
    action = np.arange(12.0)  # left hip pitch, roll, yaw, knee, ankle pitch, roll; then the right leg
    np.testing.assert_array_equal(mirror.actions(action)[:6], [6, -7, -8, 9, 10, -11])


def test_scan_points_map_to_their_twins_and_asymmetric_scans_are_refused() -> None:
    points = np.array([(x, y) for x in ScanCfg().base_x for y in ScanCfg().base_y])
    twin = _point_mirror(points, "base scan")
    np.testing.assert_allclose(points[twin], points * (1, -1))
    with pytest.raises(ValueError, match=r"no \(x, -y\) twin"):
        _point_mirror(np.array([(0.0, 0.1), (0.0, 0.2)]), "foot scan")


def test_a_robot_without_a_mirror_map_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="has no mirror map"):
        joint_mirror(get_robot("h1"))
    g1 = get_robot("g1")
    swapped = dataclasses.replace(g1, mirror_joints=("left_knee_joint",) * 12)
    with pytest.raises(ValueError, match="each actuated joint once"):
        joint_mirror(swapped)


def test_mirrored_buffer_appends_the_mirror_image_with_equal_returns() -> None:
    steps, n = 4, 3
    obs_space = spaces.Dict({"a": spaces.Box(-np.inf, np.inf, (2,), np.float32)})
    buf = DictRolloutBuffer(steps, obs_space, spaces.Box(-1, 1, (2,)), n_envs=n)
    rng = np.random.default_rng(0)
    buf.observations["a"] = rng.normal(size=(steps, n, 2)).astype(np.float32)
    buf.actions = rng.normal(size=(steps, n, 2)).astype(np.float32)
    buf.returns, buf.advantages = rng.normal(size=(2, steps, n)).astype(np.float32)
    swap = Mirror(groups={"a": _signed([1, 0], [1.0, -1.0])}, actions=_signed([1, 0], [-1.0, 1.0]))
    buf.log_probs, buf.values = rng.normal(size=(2, steps, n)).astype(np.float32)
    out = mirrored_buffer(buf, swap)
    assert out.observations["a"].shape == (steps, 2 * n, 2) and out.full
    np.testing.assert_allclose(out.observations["a"][:, n:], buf.observations["a"][..., [1, 0]] * [1, -1])
    np.testing.assert_allclose(out.actions[:, n:], buf.actions[..., [1, 0]] * [-1, 1])
    np.testing.assert_allclose(out.returns, np.concatenate([buf.returns] * 2, axis=1))
    np.testing.assert_allclose(out.advantages[:, n:], buf.advantages)
    # The mirror image keeps the sampled action's old log-probability (a bounded PPO ratio) and value.
    np.testing.assert_allclose(out.log_probs[:, n:], buf.log_probs)
    np.testing.assert_allclose(out.values[:, n:], buf.values)


def _signed(index: list[int], sign: list[float]):
    from humanoid_prior.algorithms.symmetry import SignedPermutation

    return SignedPermutation(np.array(index), np.array(sign))
