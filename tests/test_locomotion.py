"""The locomotion task: observation layout, latency, curriculum, DR, commands, terminations, seeds, smoke."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import tiny_rough_task

from humanoid_prior.envs.commands import CommandCfg, CommandSampler
from humanoid_prior.envs.curriculum import CurriculumCfg, TerrainCurriculum, commanded_step
from humanoid_prior.envs.frames import yaw_of
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.observations import motion_features
from humanoid_prior.envs.presets import preset_names
from humanoid_prior.envs.randomization import DomainRandCfg
from humanoid_prior.envs.task_cfg import TaskCfg, task_preset
from humanoid_prior.envs.terminations import TerminationCfg
from humanoid_prior.envs.terrain import TerrainCfg, generate_terrain

NEVER_FALL = TerminationCfg(terms=("diverged", "time_out"))  # only the time limit ends an episode


def small_task(num_envs: int = 3, **changes) -> TaskCfg:
    cfg = task_preset("g1", "flat").with_batch(num_envs, nthread=1)
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def flat_env():
    env = LocomotionEnv(small_task(domain_rand=DomainRandCfg(enabled=False)), seed=0)
    env.reset(seed=0)
    yield env
    env.close()


def test_observation_layout_names_and_sizes(flat_env: LocomotionEnv) -> None:
    layout = {
        g: [(t.name, t.stop - t.start) for t in terms] for g, terms in flat_env.observations.layouts.items()
    }
    j = 12
    assert layout["proprio"] == [
        ("base_ang_vel", 3), ("projected_gravity", 3), ("commands", 3), ("joint_pos", j), ("joint_vel", j),
        ("actions", j), ("gait_clock", 2),
    ]  # fmt: skip
    privileged = dict(layout["privileged"])
    # Flat ground: one scan point under the base and one under each of 2 feet (the rough preset has 9 x 5
    # and 5 per foot), 2 x 3 contact forces, 2 x 12 motor strengths.
    assert (privileged["height_scan"], privileged["feet_height_scan"]) == (1, 2)
    assert (privileged["feet_contact_force"], privileged["motor_strength"]) == (6, 24)
    assert flat_env.obs_sizes == {
        "proprio": 47,
        "privileged": 47 + 3 + 1 + 1 + 2 + 6 + 2 + 1 + 1 + 3 + 24 + 3 + 1,  # ..., push, latency
    }


def test_noise_off_gives_exact_values_and_privileged_holds_clean_proprio(flat_env: LocomotionEnv) -> None:
    s = flat_env.state
    s.base_ang_vel[:] = (0.4, -0.8, 1.2)
    s.commands[:] = (0.5, -0.2, 0.3)
    s.joint_vel[:] = 2.0
    s.gait_phase[:] = 0.25
    clean = {g: v.copy() for g, v in flat_env.observations.compute(s, noise=False).items()}
    proprio = {
        t.name: clean["proprio"][:, t.start : t.stop] for t in flat_env.observations.layouts["proprio"]
    }
    np.testing.assert_allclose(proprio["base_ang_vel"], [[0.1, -0.2, 0.3]] * 3, rtol=1e-6)  # scale 0.25
    np.testing.assert_allclose(proprio["commands"], [[0.5, -0.2, 0.3]] * 3, rtol=1e-6)
    np.testing.assert_allclose(proprio["joint_vel"], 0.1, rtol=1e-6)  # 2 rad/s x 0.05
    np.testing.assert_allclose(proprio["gait_clock"], [[1.0, 0.0]] * 3, atol=1e-7)  # sin, cos of 2π/4
    np.testing.assert_allclose(proprio["joint_pos"], (s.joint_pos - s.default_joint_pos).astype(np.float32))
    # The privileged group starts with the same terms, clean.
    np.testing.assert_array_equal(clean["privileged"][:, : clean["proprio"].shape[1]], clean["proprio"])
    noisy = flat_env.observations.compute(s, noise=True)["proprio"].copy()
    assert not np.allclose(noisy, clean["proprio"])


def test_latency_applies_the_action_from_d_steps_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = small_task(domain_rand=dataclasses.replace(DomainRandCfg(), latency_steps=(0, 2)))
    env = LocomotionEnv(cfg, seed=1)
    env.reset()
    env.domain_rand.latency[:] = (0, 1, 2)
    applied: list[np.ndarray] = []
    real_step = env.sim.step

    def recording_step(joint_targets: np.ndarray) -> np.ndarray:
        applied.append(joint_targets.copy())
        return real_step(joint_targets)

    monkeypatch.setattr(env.sim, "step", recording_step)
    actions = [np.full((3, env.num_joints), float(k + 1)) for k in range(5)]
    for a in actions:
        env.step(a)
    env.close()
    scale, default = env.action_scale, env.default_joint_pos
    for k in range(5):
        for i, d in enumerate((0, 1, 2)):
            expected = actions[k - d][i] if k >= d else np.zeros(env.num_joints)  # before any action: 0
            np.testing.assert_allclose(applied[k][i], default + scale * expected)


def test_curriculum_promotes_walkers_and_demotes_stragglers() -> None:
    terrain = generate_terrain(TerrainCfg(num_rows=5, num_cols=2, tile_size=4.0, border=1.0,
                                          proportions=(("flat", 1.0), ("slope_up", 1.0))))  # fmt: skip
    cur = TerrainCurriculum(CurriculumCfg(max_init_level=0), terrain, 4, np.random.default_rng(0))
    cur.levels[:] = 2
    # Tile 4 m: promote beyond 2 m walked. Env 1 walked 1 m of 6 m asked (< half): demoted.
    # Env 2 walked 1.5 m of 2 m asked: stays. Env 3 is on the last row and walked: sent to a random row.
    cur.levels[3] = 4
    cur.update(
        np.arange(4),
        distance=np.array([2.5, 1.0, 1.5, 3.0]),
        commanded_distance=np.array([5.0, 6.0, 2.0, 4.0]),
    )
    assert cur.levels[:3].tolist() == [3, 1, 2]
    assert 0 <= cur.levels[3] <= 4
    np.testing.assert_allclose(cur.origins[0], terrain.tile_center(3, cur.types[0]))

    # A fall demotes, however far the robot got, unless it got past half a tile first.
    cur.levels[:] = 2
    cur.update(np.arange(3), distance=np.array([1.5, 1.5, 2.5]), commanded_distance=np.array([2.0, 2.0, 2.0]),
               fell=np.array([False, True, True]))  # fmt: skip
    assert cur.levels[:3].tolist() == [2, 1, 3]


def test_curriculum_asks_a_perfect_walker_for_where_its_commands_lead_not_for_their_path_length() -> None:
    # Robots that track the default commands exactly for a 20 s episode. Their yaw-rate commands bend each
    # path into arcs (v = 0.5 m/s at 0.3 rad/s: a 1.7 m radius), so the path's length says little about
    # how far from the spawn point they end up.
    rng = np.random.default_rng(0)
    n, dt = 2000, 0.02
    commands = CommandSampler(CommandCfg(), n, dt, rng)
    commands.resample(np.arange(n))
    yaw = rng.uniform(-np.pi, np.pi, n)
    position, commanded, path = np.zeros((n, 2)), np.zeros((n, 2)), np.zeros(n)
    for _ in range(round(20.0 / dt)):
        commands.step(yaw)
        v = commands.commands
        yaw = yaw + v[:, 2] * dt
        forward = np.column_stack([np.cos(yaw), np.sin(yaw)])
        left = np.column_stack([-np.sin(yaw), np.cos(yaw)])
        position += (forward * v[:, :1] + left * v[:, 1:2]) * dt  # base-frame velocity, rotated by hand
        commanded += commanded_step(yaw, v[:, :2], dt)
        path += np.linalg.norm(v[:, :2], axis=1) * dt
    np.testing.assert_allclose(commanded, position, atol=1e-9)
    walked = np.linalg.norm(position, axis=1)
    terrain = generate_terrain(TerrainCfg(num_rows=5, num_cols=1, proportions=(("flat", 1.0),)))
    for asked, demoted_share in ((np.linalg.norm(commanded, axis=1), 0.0), (path, 0.2)):
        cur = TerrainCurriculum(CurriculumCfg(max_init_level=0), terrain, n, np.random.default_rng(1))
        cur.levels[:] = 2
        cur.update(np.arange(n), distance=walked, commanded_distance=asked)
        if demoted_share == 0.0:
            assert np.all(cur.levels >= 2), "a robot that did exactly what it was told is never demoted"
        else:  # the path-length rule (legged_gym's |command| x time) demotes many perfect walkers
            assert np.mean(cur.levels == 1) > demoted_share


def test_env_asks_for_the_displacement_its_commands_give_from_the_spawn_heading() -> None:
    held = CommandCfg(resample_interval_s=(100.0, 100.0), standing_fraction=0.0)
    no_dr = DomainRandCfg(enabled=False)
    task = small_task(num_envs=2, domain_rand=no_dr, terminations=NEVER_FALL, commands=held)
    env = LocomotionEnv(task, seed=0)
    env.reset(seed=0)
    spawn_yaw = yaw_of(env.sim.base_quat)
    commands = np.array([[0.5, 0.0, 0.0], [0.0, -0.4, 0.3]])
    env.commands.commands[:] = commands
    steps = 25
    for _ in range(steps):
        env.step(np.zeros((2, env.num_joints)))
    env.close()
    # By hand: the heading the yaw-rate command gives after k steps is yaw0 + w k dt (the standing robots
    # do not turn: integrating their actual heading would ask env 1 for ~3 cm less sideways); each step
    # moves the body-frame command rotated by that heading.
    k = np.arange(1, steps + 1)
    expected = []
    for (vx, vy, w), yaw0 in zip(commands, spawn_yaw, strict=True):
        heading = yaw0 + w * k * env.dt
        expected.append([np.sum(np.cos(heading) * vx - np.sin(heading) * vy) * env.dt,
                         np.sum(np.sin(heading) * vx + np.cos(heading) * vy) * env.dt])  # fmt: skip
    np.testing.assert_allclose(env._commanded_xy, expected, atol=1e-9)


def test_env_demotes_a_fall_but_not_a_time_out() -> None:
    # Standing commands ask for no distance, so only a fall can demote; both episodes last one step.
    standing = CommandCfg(standing_fraction=1.0)
    base = dataclasses.replace(tiny_rough_task(num_rows=4), commands=standing,
                               domain_rand=DomainRandCfg(enabled=False))  # fmt: skip
    always_fallen = TerminationCfg(min_base_height_fraction=10.0)  # the base is never 10x its height up
    for terminations, level_after in ((always_fallen, 1), (NEVER_FALL, 2)):
        env = LocomotionEnv(
            dataclasses.replace(base, terminations=terminations, episode_length_s=0.02), seed=0
        )
        env.reset(seed=0)
        assert env.curriculum is not None
        everyone = np.arange(env.num_envs)
        env.curriculum.place(everyone, np.full(env.num_envs, 2), env.curriculum.types)
        _, _, terminated, truncated, info = env.step(np.zeros((env.num_envs, env.num_joints)))
        env.close()
        assert len(info["done_ids"]) == env.num_envs
        assert terminated.all() if level_after == 1 else (truncated.all() and not terminated.any())
        assert env.curriculum.levels.tolist() == [level_after] * env.num_envs
        assert np.all(env._commanded_xy == 0.0), "a new episode asks for nothing yet"


def test_domain_randomisation_reaches_each_env_model_and_pushes_move_the_base() -> None:
    dr_cfg = dataclasses.replace(DomainRandCfg(), push_interval_s=(0.02, 0.02), model_variants=4)
    env = LocomotionEnv(small_task(domain_rand=dr_cfg), seed=2)
    env.reset()
    dr, sim = env.domain_rand, env.sim
    base = sim.model.body(env.robot.base_body).id
    assert len({float(m.geom_friction[0, 0]) for m in sim.variants}) == 4, "each variant has its own friction"
    for i in range(3):
        model = sim.models[i]
        assert model is sim.variants[sim.variant_of_env[i]]
        assert model.geom_friction[0, 0] == pytest.approx(dr.friction[i])
        assert model.body_mass[base] == pytest.approx(sim.model.body_mass[base] + dr.added_mass[i])
        np.testing.assert_allclose(
            model.actuator_gainprm[:, 0], np.asarray(env.robot.kp) * dr.motor_strength[i, :12]
        )
    assert sim.model.geom_friction[0, 0] == 1.0, "the nominal model is untouched"
    before = sim.base_lin_vel_world.copy()
    dr.step(env.dt)  # a push is due after 0.02 s
    change = sim.base_lin_vel_world - before
    np.testing.assert_allclose(change[:, :2], dr.push_vel[:, :2])
    assert np.abs(change[:, :2]).max() > 0.0
    env.close()


def test_randomisation_curriculum_widens_from_nominal_to_full_ranges() -> None:
    dr_cfg = DomainRandCfg(model_variants=4, curriculum_steps=(30, 60), curriculum_start_strength=0.0)
    env = LocomotionEnv(small_task(domain_rand=dr_cfg), seed=2, dr_curriculum=True)
    env.reset()
    dr, sim = env.domain_rand, env.sim
    base = sim.model.body(env.robot.base_body).id
    assert dr.strength == 0.0
    assert all(m.body_mass[base] == sim.model.body_mass[base] for m in sim.variants), "nominal at first"
    assert (dr.friction == 1.0).all() and (dr.latency == 0).all()
    # 3 envs per step: strength (steps - 30) / 30 in steps of 0.05 -> 0.5 after 15 steps (45 env steps).
    for _ in range(15):
        env.step(np.zeros((3, 12)))
    assert dr.strength == 0.5
    full = dr._full_draws["added_mass"]
    np.testing.assert_allclose(
        [m.body_mass[base] - sim.model.body_mass[base] for m in sim.variants], 0.5 * full
    )
    np.testing.assert_allclose(dr.added_mass, 0.5 * full[sim.variant_of_env], err_msg="privileged obs follow")
    for _ in range(10):
        env.step(np.zeros((3, 12)))
    assert dr.strength == 1.0
    np.testing.assert_allclose([m.geom_friction[0, 0] for m in sim.variants], dr._full_draws["friction"])
    env.close()
    evaluation = LocomotionEnv(small_task(domain_rand=dr_cfg), seed=2)
    assert evaluation.domain_rand.strength == 1.0, "envs outside training use the full ranges"
    evaluation.close()


def test_commands_ranges_standing_and_small_commands() -> None:
    rng = np.random.default_rng(0)
    sampler = CommandSampler(CommandCfg(standing_fraction=0.0, small_command=0.2), 2000, 0.02, rng)
    sampler.resample(np.arange(2000))
    c = sampler.commands
    assert c[:, 0].min() >= -0.5 and c[:, 0].max() <= 1.0
    speed = np.linalg.norm(c[:, :2], axis=1)
    assert ((speed == 0.0) | (speed >= 0.2)).all() and (speed == 0.0).any()
    standing = CommandSampler(CommandCfg(standing_fraction=1.0), 50, 0.02, rng)
    standing.resample(np.arange(50))
    assert not standing.commands.any()
    heading = CommandSampler(CommandCfg(heading_command=True, standing_fraction=0.0), 2, 0.02, rng)
    heading.resample(np.arange(2))
    assert not heading.commands[:, 2].any(), "no random yaw rate before the heading law first runs"
    heading.heading[:] = (1.0, -1.0)
    heading.step(base_yaw=np.zeros(2))
    assert heading.commands[0, 2] > 0 > heading.commands[1, 2], "turns towards the heading target"


def test_backward_fraction_sets_the_share_of_backward_commands_and_keeps_the_range() -> None:
    rng = np.random.default_rng(1)
    cfg = CommandCfg(lin_vel_x=(-0.5, 1.0), standing_fraction=0.0, small_command=0.0, backward_fraction=0.5)
    sampler = CommandSampler(cfg, 4000, 0.02, rng)
    sampler.resample(np.arange(4000))
    vx = sampler.commands[:, 0]
    assert vx.min() >= -0.5 and vx.max() <= 1.0
    assert abs((vx < 0).mean() - 0.5) < 0.03, "uniform over (-0.5, 1.0) would give 1/3"
    assert abs((vx < -0.25).mean() - 0.25) < 0.03, "speeds uniform within the backward side"
    with pytest.raises(ValueError, match="backward_fraction"):
        CommandCfg(lin_vel_x=(0.2, 1.0), backward_fraction=0.5)


def test_failures_terminate_and_time_outs_truncate() -> None:
    env = LocomotionEnv(small_task(episode_length_s=0.06, terminations=NEVER_FALL), seed=0)
    env.reset()
    for _ in range(2):
        _, _, terminated, truncated, info = env.step(np.zeros((3, 12)))
        assert not terminated.any() and not truncated.any()
    _, _, terminated, truncated, info = env.step(np.zeros((3, 12)))
    assert truncated.all() and not terminated.any()
    assert info["episode"]["l"].tolist() == [3, 3, 3]
    env.close()
    task = small_task(terminations=TerminationCfg(min_base_height_fraction=10.0))
    weights = dict(task.rewards.weights, termination=-200.0)
    task = dataclasses.replace(task, rewards=dataclasses.replace(task.rewards, weights=weights))
    falls = LocomotionEnv(task, seed=0)
    falls.reset()
    _, _, terminated, truncated, info = falls.step(np.zeros((3, 12)))
    assert terminated.all() and not truncated.any()
    assert info["log"]["term/base_height"] == 1.0
    assert (falls.rewards.last_terms["termination"] < 0).all()
    falls.close()


def test_the_gait_log_reads_a_robot_standing_on_both_feet() -> None:
    env = LocomotionEnv(small_task(domain_rand=DomainRandCfg(enabled=False)), seed=0)
    env.reset()
    for _ in range(25):  # 0.5 s: the robot settles onto both feet at its default pose
        _, _, _, _, info = env.step(np.zeros((3, 12)))
    contact = env.state.feet_contact
    assert contact.all(), "standing at the default pose, both feet are down"
    assert info["log"]["gait/single_support"] == 0.0 and info["log"]["gait/flight"] == 0.0
    env.close()


def test_a_reset_in_one_env_does_not_advance_the_others_air_time() -> None:
    """Air time grows by exactly one dt per step in every env, also on steps where another env resets.

    Before the fix the step refreshed the whole batch twice when any env reset: every foot gained 2 dt
    and a foot in stance registered a touchdown on the next step.
    """
    env = LocomotionEnv(small_task(domain_rand=DomainRandCfg(enabled=False), terminations=NEVER_FALL), seed=0)
    env.reset(seed=0)
    env.step(np.zeros((3, 12)))
    env.episode_step[0] = env.max_episode_steps - 1  # env 0 times out on the next step; 1 and 2 go on
    air_before = env._air_time.copy()
    contact_before = env.state.feet_contact.copy()
    _, _, _, truncated, info = env.step(np.zeros((3, 12)))
    assert truncated.tolist() == [True, False, False] and info["done_ids"].tolist() == [0]
    kept = ~(contact_before[1:] | env.state.feet_contact[1:])  # feet in the air in both steps
    np.testing.assert_allclose(env._air_time[1:][kept], air_before[1:][kept] + env.dt)
    assert (env._air_time[0] == 0.0).all()
    # Standing on the ground, no foot of env 1 or 2 touches down again on the next step.
    stance = env.state.feet_contact[1:].copy()
    env.step(np.zeros((3, 12)))
    assert not env.state.feet_first_contact[1:][stance & env.state.feet_contact[1:]].any()
    env.close()


def test_same_seed_same_observations() -> None:
    runs = []
    for seed in (7, 7, 8):
        env = LocomotionEnv(small_task(num_envs=2), seed=seed)
        obs = [env.reset(seed=seed)]
        rng = np.random.default_rng(3)
        for _ in range(100):
            obs.append(env.step(rng.normal(0.0, 0.5, (2, 12)))[0])
        env.close()
        runs.append(obs)
    for a, b in zip(runs[0], runs[1], strict=True):
        for group in a:
            np.testing.assert_array_equal(a[group], b[group])
    assert not np.array_equal(runs[0][50]["proprio"], runs[2][50]["proprio"]), "another seed differs"


def test_motion_features_on_a_known_state(flat_env: LocomotionEnv) -> None:
    s = flat_env.state
    feats = motion_features(s)
    assert feats.shape == (3, 2 * 12 + 3 + 3 + 1 + 2 * 3)
    # Base unrotated at (1, 2, 0.8), feet at (1.1, 2.1, 0.05) and (1.1, 1.9, 0.05): base frame = offsets.
    s_copy = dataclasses.replace(
        s,
        base_pos=np.tile([1.0, 2.0, 0.8], (3, 1)),
        base_quat=np.tile([1.0, 0.0, 0.0, 0.0], (3, 1)),
        feet_pos=np.tile([[1.1, 2.1, 0.05], [1.1, 1.9, 0.05]], (3, 1, 1)),
    )
    np.testing.assert_allclose(
        motion_features(s_copy)[0, -6:], [0.1, 0.1, -0.75, 0.1, -0.1, -0.75], atol=1e-12
    )


@pytest.mark.parametrize(("robot", "terrain"), preset_names())
def test_every_preset_runs_100_random_steps(robot: str, terrain: str) -> None:
    cfg = task_preset(robot, terrain, num_envs=4)
    if cfg.terrain is not None:  # a smaller grid keeps the test quick; same generator and code path
        cfg = dataclasses.replace(cfg, terrain=dataclasses.replace(cfg.terrain, num_rows=3, num_cols=7))
    env = LocomotionEnv(cfg.with_batch(4, nthread=2), seed=0)
    obs = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(100):
        before = env.episode_step.copy()
        obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, (4, env.num_joints)))
        assert reward.shape == terminated.shape == truncated.shape == (4,)
        assert np.isfinite(reward).all()
        # the reward is its named terms' sum, and an env that ended starts its next episode at once
        total = sum(env.rewards.last_terms.values())
        np.testing.assert_allclose(
            reward, np.maximum(total, 0.0) if cfg.rewards.only_positive_rewards else total
        )
        done = terminated | truncated
        assert (env.episode_step[done] == 0).all() and (env.episode_step[~done] == before[~done] + 1).all()
        for group, size in env.obs_sizes.items():
            assert obs[group].shape == (4, size) and obs[group].dtype == np.float32
            assert np.isfinite(obs[group]).all()
    env.close()


def test_spawn_yaw_sets_the_heading_at_reset() -> None:
    env = LocomotionEnv(small_task(spawn_yaw=(0.5, 0.5)), seed=0)
    env.reset()
    np.testing.assert_allclose(yaw_of(env.sim.base_quat), 0.5, atol=1e-6)
    env.close()
