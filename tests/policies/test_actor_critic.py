"""The teacher's and the student's actor-critics read the observation groups they are meant to read."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import MultiInputActorCriticPolicy

from humanoid_prior.envs.spaces import action_space, observation_space
from humanoid_prior.policies.actor_critic import GroupExtractor, NetworkCfg, policy_kwargs
from humanoid_prior.policies.student_policy import StudentPolicy

SIZES = {"proprio": 5, "privileged": 7}


def batch(seed: int, sizes: dict[str, int] = SIZES) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(3, n, generator=g) for k, n in sizes.items()}


def action_mean(policy: MultiInputActorCriticPolicy, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    dist = policy.get_distribution(obs).distribution
    assert isinstance(dist, torch.distributions.Normal)
    return dist.mean


def teacher(cfg: NetworkCfg) -> MultiInputActorCriticPolicy:
    return MultiInputActorCriticPolicy(
        observation_space(SIZES), action_space(4, 1.0), lambda _: 1e-3, **policy_kwargs(cfg)
    )


def test_the_teacher_acts_on_its_group_alone_with_the_configured_noise():
    policy = teacher(NetworkCfg(obs_group="privileged", init_noise_std=0.6, actor_hidden=(16, 8)))
    obs = batch(0)
    mean = action_mean(policy, obs)
    other = {**obs, "proprio": obs["proprio"] + 5.0}
    torch.testing.assert_close(action_mean(policy, other), mean)
    moved = {**obs, "privileged": obs["privileged"] + 0.5}
    assert not torch.allclose(action_mean(policy, moved), mean)
    np.testing.assert_allclose(policy.log_std.exp().detach().numpy(), 0.6, rtol=1e-6)
    widths = [m.out_features for m in policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 8]


def test_an_unknown_group_names_the_groups_there_are():
    with pytest.raises(ValueError, match=r"'history' not in the env's groups \['privileged', 'proprio'\]"):
        GroupExtractor(observation_space(SIZES), "history")


def test_the_student_actor_reads_the_history_and_its_critic_the_privileged_group():
    sizes = {"proprio_history": 6, "privileged": 7}
    policy = StudentPolicy(
        observation_space(sizes), action_space(4, 1.0), lambda _: 1e-3,
        actor_hidden=(16,), critic_hidden=(16,), aux_dim=3,
    )  # fmt: skip
    obs = batch(1, sizes)
    mean, aux = policy.actor_outputs(obs)
    value = policy.predict_values(obs)
    hidden = {**obs, "privileged": obs["privileged"] + 5.0}
    torch.testing.assert_close(policy.actor_outputs(hidden)[0], mean)
    assert not torch.allclose(policy.predict_values(hidden), value)
    seen = {**obs, "proprio_history": obs["proprio_history"] + 0.5}
    torch.testing.assert_close(policy.predict_values(seen), value)
    assert aux is not None and aux.shape == (3, 3)
    # the auxiliary head is trained: its weights are in the optimiser
    trained = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert policy.aux_head is not None and id(policy.aux_head.weight) in trained
