"""The motion discriminator of the teacher motion prior: least-squares GAN on motion-feature transitions.

D sees a transition (s, s') of motion features (`LocomotionEnv.motion_features`) and is trained to
output +1 on the teacher's transitions ("real") and -1 on the student's ("fake"), with a gradient
penalty on real samples that keeps D smooth where the teacher moves (AMP, Peng et al. 2021). The
student is rewarded for transitions D scores near +1: style = max(0, 1 - (d - 1)^2 / 4).

Inputs are normalised by fixed statistics of the teacher's data (set once with `fit_normaliser`), so
the teacher's motion, which does not change, defines the units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DiscriminatorCfg:
    """Size and training of the motion discriminator."""

    hidden: tuple[int, ...] = (256, 128)
    """Hidden layer widths (ELU)."""
    learning_rate: float = 1e-4
    """Adam learning rate of the discriminator's own optimiser."""
    gradient_penalty: float = 5.0
    """Weight of the gradient penalty on real samples."""
    batch_size: int = 1024
    """Real and fake transitions per discriminator step (each)."""
    steps_per_iteration: int = 4
    """Discriminator gradient steps per PPO iteration."""
    weight_decay: float = 1e-4
    """Adam weight decay (keeps D from saturating)."""


class MotionDiscriminator(nn.Module):
    """D(s, s') -> scalar score; pairs are given as (B, 2M) = [s, s']."""

    def __init__(self, feature_dim: int, hidden: tuple[int, ...] = (256, 128)) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        layers: list[nn.Module] = []
        width = 2 * feature_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ELU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.zeros(2 * feature_dim))
        self.register_buffer("std", torch.ones(2 * feature_dim))

    def fit_normaliser(self, real_pairs: torch.Tensor) -> None:
        """Set the input normalisation from the teacher's transitions (B, 2M)."""
        self.mean.copy_(real_pairs.mean(0))
        self.std.copy_(real_pairs.std(0).clamp_min(1e-3))

    def normalise(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, 2M) raw transitions -> the network's input."""
        if pairs.shape[-1] != 2 * self.feature_dim:
            raise ValueError(
                f"discriminator input must be (batch, {2 * self.feature_dim}) = two motion-feature "
                f"frames of {self.feature_dim}, got {tuple(pairs.shape)}."
            )
        return (pairs - self.mean) / self.std

    def score(self, normalised: torch.Tensor) -> torch.Tensor:
        """D on already normalised input, (B,)."""
        return self.net(normalised).squeeze(-1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """D on raw transitions (B, 2M) -> (B,)."""
        return self.score(self.normalise(pairs))

    @torch.no_grad()
    def style_reward(self, pairs: torch.Tensor) -> torch.Tensor:
        """max(0, 1 - (d - 1)^2 / 4) per transition, in [0, 1]."""
        return style_reward(self(pairs))


def style_reward(d: torch.Tensor) -> torch.Tensor:
    """The least-squares GAN style reward: 1 at d = +1 (teacher-like), 0 at d <= -1 (student-like)."""
    return torch.clamp(1.0 - 0.25 * (d - 1.0) ** 2, min=0.0)


def lsgan_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[(D(real) - 1)^2] + E[(D(fake) + 1)^2] (targets +1 and -1)."""
    return (d_real - 1.0).pow(2).mean() + (d_fake + 1.0).pow(2).mean()


def gradient_penalty(disc: MotionDiscriminator, real_pairs: torch.Tensor) -> torch.Tensor:
    """E[||dD/dx||^2] at the teacher's transitions, x being D's normalised input."""
    x = disc.normalise(real_pairs).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(disc.score(x).sum(), x, create_graph=True)
    return grad.pow(2).sum(-1).mean()
