"""PPO as the teacher uses it: GAE with time-outs bootstrapped and failures not; the CLI end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from humanoid_prior.algorithms import ppo as ppo_module
from humanoid_prior.algorithms.ppo import PPO
from humanoid_prior.runs.checkpoint import list_checkpoints

REPO = Path(__file__).resolve().parents[1]
GAMMA, LAM, VALUE = 0.9, 0.8, 2.0


class TwoStepEpisodes(gym.Env):
    """Reward 1 per step; every episode ends after 2 steps, as a time-out or as a failure."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, time_out: bool) -> None:
        self.time_out = time_out
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        end = self.t == 2
        return np.zeros(1, np.float32), 1.0, end and not self.time_out, end and self.time_out, {}


def collect_four_steps(time_out: bool) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of one 4-step rollout under a critic that outputs VALUE everywhere."""
    model = PPO("MlpPolicy", DummyVecEnv([lambda: TwoStepEpisodes(time_out)]), n_steps=4, batch_size=4,
                gamma=GAMMA, gae_lambda=LAM, seed=0, device="cpu")  # fmt: skip
    with torch.no_grad():
        for p in model.policy.mlp_extractor.value_net.parameters():
            p.zero_()
        model.policy.value_net.weight.zero_()
        model.policy.value_net.bias.fill_(VALUE)
    _, callback = model._setup_learn(4)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=4)
    buffer = model.rollout_buffer
    return buffer.advantages[:, 0].copy(), buffer.returns[:, 0].copy()


def hand_gae(rewards: list[float], ends: list[bool], last_value: float) -> np.ndarray:
    """Advantages by the GAE recursion, written out for a constant critic."""
    adv, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        next_value = last_value if t == len(rewards) - 1 else VALUE
        alive = 0.0 if ends[t] else 1.0
        delta = rewards[t] + GAMMA * next_value * alive - VALUE
        running = delta + GAMMA * LAM * alive * running
        adv[t] = running
    return adv


def test_gae_bootstraps_time_outs_but_not_failures() -> None:
    ends = [False, True, False, True]
    # Failures: no bootstrap at episode ends (the value after the end belongs to the next episode).
    adv, ret = collect_four_steps(time_out=False)
    expected = hand_gae([1, 1, 1, 1], ends, last_value=VALUE)
    # Worked values: t=1 and t=3 end episodes: delta = 1 - 2 = -1; t=0: 1 + 0.9*2 - 2 = 0.8, adv = 0.8 - 0.72.
    np.testing.assert_allclose(expected, [0.08, -1.0, 0.08, -1.0], atol=1e-12)
    np.testing.assert_allclose(adv, expected, atol=1e-5)
    np.testing.assert_allclose(ret, expected + VALUE, atol=1e-5)
    # Time-outs: the reward at the cut is increased by gamma * V(terminal observation) = 0.9 * 2, so
    # t=1: delta = 2.8 - 2 = 0.8; t=0: delta = 0.8, adv = 0.8 + 0.72 * 0.8 = 1.376.
    adv, ret = collect_four_steps(time_out=True)
    expected = hand_gae([1, 1 + GAMMA * VALUE, 1, 1 + GAMMA * VALUE], ends, last_value=VALUE)
    np.testing.assert_allclose(expected, [1.376, 0.8, 1.376, 0.8], atol=1e-12)
    np.testing.assert_allclose(adv, expected, atol=1e-5)


def test_collection_uses_one_torch_thread_and_restores_the_rest() -> None:
    seen: list[int] = []

    class Spy(TwoStepEpisodes):
        def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
            seen.append(torch.get_num_threads())
            return super().step(action)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = PPO("MlpPolicy", DummyVecEnv([lambda: Spy(False)]), n_steps=4, batch_size=4, device="cpu")
        model.learn(4)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_train_cli_writes_checkpoint_wandb_and_tensorboard(tmp_path: Path) -> None:
    args = [
        sys.executable, str(REPO / "train.py"), "teacher", "--preset", "g1_flat",
        "--task.sim.num-envs", "4", "--task.sim.nthread", "1", "--ppo.n-steps", "8", "--ppo.batch-size", "16",
        "--ppo.n-epochs", "1", "--run.total-steps", "64", "--run.checkpoint-every", "1",
        "--run.video-every", "0", "--run.no-progress-bar", "--run.run-dir", str(tmp_path),
        "--run.name", "cli",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=280)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "cli"
    assert list_checkpoints(run_dir / "checkpoints")
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb")), "W&B offline run files"


class WideEnv(gym.Env):
    """G1-teacher-sized spaces (147 inputs, 23 actions) with random observations."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (147,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (23,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 147).astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.np_random.uniform(-1, 1, 147).astype(np.float32), float(action.sum()), False, False, {}


def wide_model(precision: str) -> PPO:
    arch = {"net_arch": [256, 128, 64]}
    return PPO("MlpPolicy", DummyVecEnv([WideEnv]), n_steps=16, batch_size=16, n_epochs=1, seed=0,
               device="cpu", policy_kwargs=arch, update_precision=precision)  # fmt: skip


@pytest.fixture
def bfloat16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Allow a bfloat16 update on any CPU (these models are small enough to run emulated)."""
    monkeypatch.setattr(ppo_module, "native_bfloat16", lambda: True)


@pytest.mark.usefixtures("bfloat16_cpu")
def test_bfloat16_update_runs_only_the_hidden_layers_in_bfloat16_and_only_in_the_update() -> None:
    hidden: list[tuple[bool, torch.dtype]] = []  # (gradients on, output dtype) of each hidden layer call
    heads: list[torch.dtype] = []
    for precision, trained_in in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        hidden.clear()
        heads.clear()
        model = wide_model(precision)
        policy = model.policy
        for net in (policy.mlp_extractor.policy_net, policy.mlp_extractor.value_net):
            net[0].register_forward_hook(lambda m, i, o: hidden.append((torch.is_grad_enabled(), o.dtype)))
        for head in (policy.action_net, policy.value_net):
            head.register_forward_hook(lambda m, i, o: heads.append(i[0].dtype))
        _, callback = model._setup_learn(16)
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=16)
        assert hidden and {dtype for _, dtype in hidden} == {torch.float32}  # rollouts stay float32
        hidden.clear()
        model.train()
        assert {dtype for grad, dtype in hidden if grad} == {trained_in}
        assert set(heads) == {torch.float32}
        assert "forward" not in vars(policy.mlp_extractor.policy_net)  # restored after the update


@pytest.mark.usefixtures("bfloat16_cpu")
def test_a_bfloat16_update_compares_probabilities_in_one_precision() -> None:
    model = wide_model("bfloat16")
    policy = model.policy
    with torch.no_grad():  # a trained-scale action head (mean |a| ~0.4, std 0.3), not SB3's 0.01-gain init
        for param in policy.action_net.parameters():
            param.mul_(100.0)
        policy.log_std.copy_(torch.full_like(policy.log_std, float(np.log(0.3))))
    _, callback = model._setup_learn(16)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=16)
    buffer = model.rollout_buffer
    # Collected in float32, evaluated with bfloat16 hidden layers: the ratio is off before any step.
    assert model.rollout_kl(buffer) > 1e-4
    model.learning_rate, model.lr_schedule = 0.0, lambda _: 0.0  # an update that leaves the policy as it was
    model.train()
    # train() recomputed the old log-probabilities in its own precision: an unchanged policy has moved 0.
    assert model.rollout_kl(buffer) < 1e-6


def test_an_unknown_update_precision_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="bfloat16"):
        wide_model("float16")


def test_a_bfloat16_update_is_refused_on_a_cpu_that_would_emulate_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ppo_module, "native_bfloat16", lambda: False)
    with pytest.raises(ValueError, match=r"AVX-512 BF16 or AMX.*--ppo.update-precision float32"):
        wide_model("bfloat16")
