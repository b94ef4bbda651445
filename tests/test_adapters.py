"""The SB3 VecEnv and gymnasium adapters: spaces, episode ends, SB3 training, gymnasium's own checker."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from humanoid_prior.envs import registration
from humanoid_prior.envs.batched_sim import SimCfg
from humanoid_prior.envs.gym_env import LocomotionGymEnv
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.presets import preset_names
from humanoid_prior.envs.sb3_vec_env import LocomotionVecEnv
from humanoid_prior.envs.task_cfg import TaskCfg, task_preset
from humanoid_prior.envs.terminations import TerminationCfg

N = 2
EPISODE_3_STEPS = 0.06  # 3 control steps of 0.02 s
NEVER_FAIL = TerminationCfg(terms=("diverged", "time_out"))  # only the time limit ends an episode
ALWAYS_FAIL = TerminationCfg(min_base_height_fraction=10.0)  # the base is always "too low"
ACTION = 0.1  # a constant action, visible in the observations' "actions" term


def _cfg(num_envs: int = N, **overrides: Any) -> TaskCfg:
    cfg = task_preset("g1", "flat", num_envs)
    return dataclasses.replace(cfg.with_batch(num_envs, nthread=1), **overrides)


@pytest.fixture
def make_venv() -> Iterator[Any]:
    made: list[LocomotionVecEnv] = []

    def make(cfg: TaskCfg, **kwargs: Any) -> LocomotionVecEnv:
        venv = LocomotionVecEnv(LocomotionEnv(cfg), **kwargs)
        made.append(venv)
        return venv

    yield make
    for venv in made:
        venv.close()


def _actions_slice(env: LocomotionEnv, group: str = "proprio") -> slice:
    (term,) = [t for t in env.observations.layouts[group] if t.name == "actions"]
    return slice(term.start, term.stop)


@contextlib.contextmanager
def _skip_without_gl() -> Iterator[None]:
    """Skip the test when no OpenGL backend works on this machine (the renderer names MUJOCO_GL then)."""
    try:
        yield
    except RuntimeError as exc:
        if "MUJOCO_GL" not in str(exc):
            raise
        pytest.skip(f"no OpenGL backend works here: {exc}")


# --- SB3 VecEnv ------------------------------------------------------------------------------------------


def test_vec_env_spaces_and_reset(make_venv: Any) -> None:
    venv = make_venv(_cfg())
    env = venv.env
    assert venv.num_envs == N
    assert set(venv.observation_space.spaces) == set(env.obs_sizes)
    for group, size in env.obs_sizes.items():
        box = venv.observation_space[group]
        assert box.shape == (size,) and box.dtype == np.float32
    assert venv.action_space.shape == (env.num_joints,)
    assert venv.action_space.dtype == np.float32
    np.testing.assert_array_equal(venv.action_space.low, -env.cfg.action_clip)
    np.testing.assert_array_equal(venv.action_space.high, env.cfg.action_clip)

    obs = venv.reset()
    assert isinstance(obs, dict) and set(obs) == set(env.obs_sizes)
    for group, size in env.obs_sizes.items():
        assert obs[group].shape == (N, size) and obs[group].dtype == np.float32
        assert np.isfinite(obs[group]).all()
    assert venv.observation_space.contains({g: v[0] for g, v in obs.items()})


def test_vec_env_time_out_is_truncation_with_terminal_observation(make_venv: Any) -> None:
    venv = make_venv(_cfg(episode_length_s=EPISODE_3_STEPS, terminations=NEVER_FAIL))
    acts = _actions_slice(venv.env)
    venv.reset()
    actions = np.full((N, venv.env.num_joints), ACTION, dtype=np.float32)
    rewards = []
    for _ in range(2):
        obs, rew, dones, infos = venv.step(actions)
        rewards.append(rew)
        assert not dones.any()
        assert infos == [{}] * N
    obs, rew, dones, infos = venv.step(actions)
    rewards.append(rew)
    assert rew.dtype == np.float32 and rew.shape == (N,)
    assert dones.dtype == bool and dones.all()
    assert len(infos) == N and infos[0] is not infos[1]
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        terminal = info["terminal_observation"]
        assert set(terminal) == set(obs)
        for group, value in terminal.items():
            assert value.shape == obs[group].shape[1:] and value.dtype == np.float32
            assert not np.array_equal(value, obs[group][i])
        # The terminal observation is the ended episode's last one (it saw the action); the returned
        # observation is the new episode's first (no action yet).
        np.testing.assert_allclose(terminal["proprio"][acts], ACTION, rtol=1e-6)
        np.testing.assert_array_equal(obs["proprio"][i, acts], 0.0)
        episode = info["episode"]
        assert episode["l"] == 3 and isinstance(episode["l"], int)
        assert isinstance(episode["r"], float)
        assert episode["r"] == pytest.approx(float(sum(r[i] for r in rewards)), rel=1e-4, abs=1e-5)
        assert isinstance(episode["t"], float) and episode["t"] >= 0.0
    assert venv.last_log["term/time_out"] == 1.0
    assert all("log" not in info for info in infos)

    # The next episode counts from zero again.
    for _ in range(2):
        assert not venv.step(actions)[2].any()
    assert venv.step(actions)[2].all()


def test_vec_env_failure_is_not_truncation(make_venv: Any) -> None:
    venv = make_venv(_cfg(terminations=ALWAYS_FAIL))
    venv.reset()
    _, _, dones, infos = venv.step(np.zeros((N, venv.env.num_joints), dtype=np.float32))
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is False
        assert set(info["terminal_observation"]) == set(venv.env.obs_sizes)
        assert info["episode"]["l"] == 1
    assert venv.last_log["term/base_height"] == 1.0


def test_vec_env_seed_makes_reset_reproducible(make_venv: Any) -> None:
    venv = make_venv(_cfg())
    assert list(venv.seed(7)) == [7 + i for i in range(N)]
    first = venv.reset()
    venv.step(np.zeros((N, venv.env.num_joints), dtype=np.float32))
    unseeded = venv.reset()
    venv.seed(7)
    again = venv.reset()
    for group in first:
        np.testing.assert_array_equal(first[group], again[group])
    assert any(not np.array_equal(first[g], unseeded[g]) for g in first)


def test_vec_env_attributes(make_venv: Any) -> None:
    venv = make_venv(_cfg())
    assert venv.get_attr("num_joints") == [venv.env.num_joints] * N
    assert venv.get_attr("dt", indices=[1]) == [pytest.approx(0.02)]
    assert venv.get_attr("render_mode") == ["rgb_array"] * N
    assert venv.has_attr("obs_sizes") and not venv.has_attr("no_such_attribute")
    assert venv.env_is_wrapped(gymnasium.Wrapper) == [False] * N
    obs = venv.env_method("reset", seed=3)
    assert len(obs) == N and set(obs[0]) == set(venv.env.obs_sizes)
    venv.set_attr("custom_flag", 5)
    assert venv.get_attr("custom_flag") == [5] * N
    with pytest.raises(ValueError, match="whole batch"):
        venv.set_attr("custom_flag", 6, indices=[0])


def test_vec_env_renders_rgb_frames(make_venv: Any) -> None:
    venv = make_venv(_cfg(), render_size=(64, 48))
    venv.reset()
    with _skip_without_gl():
        frame = venv.render()
    assert frame is not None and frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert frame.std() > 0  # not a blank image
    venv.step(np.zeros((N, venv.env.num_joints), dtype=np.float32))
    second = venv.render()  # renders again with the same renderer
    assert second is not None and second.shape == (48, 64, 3)


def test_ppo_trains_on_vec_env_and_records_episodes(make_venv: Any) -> None:
    from stable_baselines3 import PPO

    venv = make_venv(_cfg(episode_length_s=EPISODE_3_STEPS, terminations=NEVER_FAIL))
    model = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, device="cpu", seed=0)
    model.learn(16)
    assert model.num_timesteps == 16
    # 8 steps of 2 envs with 3-step episodes: 2 episodes ended in each env.
    episodes = model.ep_info_buffer
    assert episodes is not None and len(episodes) == 2 * N
    assert all(ep["l"] == 3 for ep in episodes)
    assert all(np.isfinite(ep["r"]) for ep in episodes)


# --- gymnasium -------------------------------------------------------------------------------------------

EXPECTED_IDS = {
    f"humanoid_prior/{name}-{terrain}-v0"
    for name in ("G1", "H1", "T1", "BerkeleyHumanoid")
    for terrain in ("Flat", "Rough")
}


def test_env_ids_registered() -> None:
    assert len(registration.ENV_IDS) == 8
    assert set(registration.ENV_IDS) == EXPECTED_IDS
    assert {registration.env_id(r, t) for r, t in preset_names()} == EXPECTED_IDS
    for env_id in registration.ENV_IDS:
        spec = gymnasium.registry[env_id]
        assert spec.entry_point == "humanoid_prior.envs.gym_env:LocomotionGymEnv"
        assert spec.max_episode_steps is None
    assert gymnasium.registry["humanoid_prior/BerkeleyHumanoid-Rough-v0"].kwargs == {
        "robot": "berkeley_humanoid",
        "terrain": "rough",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered again
        importlib.reload(registration)
    assert set(registration.ENV_IDS) == EXPECTED_IDS


def test_registration_does_not_import_mujoco() -> None:
    probe = (
        "import sys, gymnasium, humanoid_prior.envs.registration\n"
        "assert 'humanoid_prior/G1-Flat-v0' in gymnasium.registry\n"
        "assert 'mujoco' not in sys.modules, 'registering imported mujoco'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)


@pytest.mark.parametrize("env_id", ["humanoid_prior/G1-Flat-v0", "humanoid_prior/G1-Rough-v0"])
def test_gymnasium_check_env_passes(env_id: str) -> None:
    env = gymnasium.make(env_id)
    try:
        with warnings.catch_warnings(record=True) as caught, _skip_without_gl():
            warnings.simplefilter("always")
            # The render checks (one more env per render mode) once, on flat ground.
            check_env(env.unwrapped, skip_render_check=env_id.endswith("Rough-v0"))
    finally:
        env.close()
    # Only the warnings about the spaces' ranges (unbounded observations, actions in ±action_clip) are
    # expected; any other (e.g. "observations are not equal although similar") is a finding.
    expected = ("infinity", "symmetric and normalized")
    unexpected = [str(w.message) for w in caught if not any(e in str(w.message) for e in expected)]
    assert not unexpected, unexpected


def test_gym_env_returns_terminal_observation_at_time_out() -> None:
    env = LocomotionGymEnv("g1", "flat", episode_length_s=EPISODE_3_STEPS, terminations=NEVER_FAIL)
    try:
        acts = _actions_slice(env.locomotion_env)
        obs, info = env.reset(seed=1)
        assert set(obs) == set(env.locomotion_env.obs_sizes) and info == {}
        action = np.full(env.locomotion_env.num_joints, ACTION, dtype=np.float32)
        for _ in range(2):
            obs, reward, terminated, truncated, info = env.step(action)
            assert terminated is False and truncated is False
        obs, reward, terminated, truncated, info = env.step(action)
        assert terminated is False and truncated is True
        assert isinstance(reward, float)
        assert info["episode"]["l"] == 3
        np.testing.assert_allclose(obs["proprio"][acts], ACTION, rtol=1e-6)  # the last obs, not the reset's
        assert obs in env.observation_space
    finally:
        env.close()


def test_gym_env_failure_terminates() -> None:
    env = LocomotionGymEnv("g1", "flat", terminations=ALWAYS_FAIL)
    try:
        env.reset(seed=0)
        _, _, terminated, truncated, info = env.step(np.zeros(env.locomotion_env.num_joints, np.float32))
        assert terminated is True and truncated is False
        assert info["episode"]["l"] == 1
    finally:
        env.close()


def test_gym_env_rejects_unknown_overrides_and_bad_actions() -> None:
    with pytest.raises(TypeError, match="episode_lenght_s"):
        LocomotionGymEnv("g1", "flat", episode_lenght_s=1.0)
    env = LocomotionGymEnv("g1", "flat", sim=SimCfg(num_envs=8, nthread=4))
    try:
        assert env.cfg.sim.num_envs == 1 and env.cfg.sim.nthread == 1
        env.reset(seed=0)
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros(3))
    finally:
        env.close()


def test_rough_env_steps_with_finite_observations() -> None:
    env = gymnasium.make("humanoid_prior/G1-Rough-v0")
    try:
        assert isinstance(env.unwrapped, LocomotionGymEnv) and env.unwrapped.cfg.terrain is not None
        obs, _ = env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(5):
            assert all(np.isfinite(v).all() for v in obs.values())
            assert obs in env.observation_space
            obs, reward, _, _, _ = env.step(env.action_space.sample() * 0.1)
            assert np.isfinite(float(reward))
    finally:
        env.close()


def test_gym_env_renders_rgb_frames() -> None:
    env = gymnasium.make(
        "humanoid_prior/G1-Flat-v0", render_mode="rgb_array", render_width=64, render_height=48
    )
    try:
        assert env.metadata["render_fps"] == 50
        env.reset(seed=0)
        with _skip_without_gl():
            frame = env.render()
        assert isinstance(frame, np.ndarray)
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert isinstance(env.unwrapped, LocomotionGymEnv)
        env.step(np.zeros(env.unwrapped.locomotion_env.num_joints, dtype=np.float32))
        again = env.render()  # a video recorder renders every step
        assert isinstance(again, np.ndarray) and again.shape == (48, 64, 3)
    finally:
        env.close()
