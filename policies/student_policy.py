"""The student's actor-critic for stable-baselines3: a plain MLP over the proprio history, with heads.

The actor reads only ``proprio_history`` (what the robot has); the critic reads ``privileged``
(asymmetric actor-critic; the `ppo-proprio` baseline points it at the history too). Auxiliary heads
are one linear layer off the actor's last hidden layer: predicting hidden quantities shapes the
features the action is computed from, and no latent encoder of privileged state is involved.

SB3's `MlpExtractor` gives actor and critic one input width; here they differ, so the policy builds
its own two-input extractor and a second group-selecting features extractor for the critic.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from torch import nn

from .actor_critic import GroupExtractor


def mlp(in_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """Linear + ELU layers of the given widths."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ELU()]
        in_dim = width
    return nn.Sequential(*layers)


class TwoInputMlpExtractor(nn.Module):
    """Separate actor and critic MLPs over inputs of different widths (SB3's extractor interface)."""

    def __init__(
        self, pi_in: int, vf_in: int, pi_hidden: tuple[int, ...], vf_hidden: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.policy_net = mlp(pi_in, pi_hidden)
        self.value_net = mlp(vf_in, vf_hidden)
        self.latent_dim_pi = pi_hidden[-1]
        self.latent_dim_vf = vf_hidden[-1]

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """Actor latent."""
        return self.policy_net(features)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """Critic latent."""
        return self.value_net(features)


class StudentPolicy(MultiInputActorCriticPolicy):
    """Actor on the proprio history (+ auxiliary heads), critic on `critic_group`."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        lr_schedule: Any,
        actor_hidden: tuple[int, ...] = (256, 128, 64),
        critic_hidden: tuple[int, ...] = (256, 128, 64),
        aux_dim: int = 0,
        critic_group: str = "privileged",
        init_noise_std: float = 1.0,
        use_sde: bool = False,
    ) -> None:
        self.actor_hidden = tuple(actor_hidden)
        self.critic_hidden = tuple(critic_hidden)
        self.aux_dim = aux_dim
        self.critic_group = critic_group
        super().__init__(
            observation_space, action_space, lr_schedule,
            net_arch={"pi": list(actor_hidden), "vf": list(critic_hidden)}, activation_fn=nn.ELU,
            features_extractor_class=GroupExtractor, features_extractor_kwargs={"group": "proprio_history"},
            share_features_extractor=False, log_std_init=float(torch.log(torch.tensor(init_noise_std))),
            use_sde=use_sde,
        )  # fmt: skip

    def _build(self, lr_schedule: Any) -> None:
        # Runs inside SB3's __init__, before the optimiser is made: swap in the critic's own group and
        # add the auxiliary head so that both are in place (and in the optimiser) from the start.
        self.vf_features_extractor = GroupExtractor(self.observation_space, self.critic_group)  # type: ignore[arg-type]
        self.aux_head = nn.Linear(self.actor_hidden[-1], self.aux_dim) if self.aux_dim else None
        super()._build(lr_schedule)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = TwoInputMlpExtractor(  # type: ignore[assignment]
            self.pi_features_extractor.features_dim, self.vf_features_extractor.features_dim,
            self.actor_hidden, self.critic_hidden,
        )  # fmt: skip

    def actor_outputs(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean action (B, A) and auxiliary predictions (B, K) (None without heads), with gradients."""
        features = self.pi_features_extractor({k: v.float() for k, v in obs.items()})
        latent = self.mlp_extractor.forward_actor(features)
        mean = self.action_net(latent)
        return mean, (self.aux_head(latent) if self.aux_head is not None else None)
