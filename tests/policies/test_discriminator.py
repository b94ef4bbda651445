"""The motion discriminator: style reward, LSGAN loss, gradient penalty, and learning to separate."""

from __future__ import annotations

import pytest
import torch

from humanoid_prior.policies.discriminator import (
    MotionDiscriminator,
    gradient_penalty,
    lsgan_loss,
    style_reward,
)


def test_style_reward_worked_values() -> None:
    d = torch.tensor([1.0, 0.0, 2.0, -1.0, 3.0, -5.0])
    # 1 - (d-1)^2/4: 1, 0.75, 0.75, 0, 0 (clamped from 0), 0 (clamped from -8)
    torch.testing.assert_close(style_reward(d), torch.tensor([1.0, 0.75, 0.75, 0.0, 0.0, 0.0]))


def test_lsgan_loss_worked_values() -> None:
    # real (d-1)^2: 0, 1 -> 0.5; fake (d+1)^2: 0, 4 -> 2.0
    loss = lsgan_loss(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]))
    assert loss.item() == pytest.approx(2.5)


def test_gradient_penalty_of_a_linear_discriminator_is_its_squared_weight_norm() -> None:
    disc = MotionDiscriminator(feature_dim=2, hidden=())
    layer = disc.net[0]
    assert isinstance(layer, torch.nn.Linear)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))
        layer.bias.fill_(0.3)
        disc.std.fill_(2.0)  # the penalty is on the normalised input, so normalisation must not matter
    real = torch.randn(16, 4)
    # D(x) = w . x + b on the normalised input x: dD/dx = w, ||w||^2 = 1 + 4 + 0.25 + 9 = 14.25
    assert gradient_penalty(disc, real).item() == pytest.approx(14.25)


def test_discriminator_separates_toy_data() -> None:
    torch.manual_seed(0)
    real = torch.randn(512, 6) * 0.3 + 1.0
    fake = torch.randn(512, 6) * 0.3 - 1.0
    disc = MotionDiscriminator(feature_dim=3, hidden=(32, 32))
    disc.fit_normaliser(real)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    losses = []
    for _ in range(150):
        loss = lsgan_loss(disc(real), disc(fake)) + 0.1 * gradient_penalty(disc, real)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    with torch.no_grad():
        assert disc(real).mean() > 0.5 > -0.5 > disc(fake).mean()
        assert disc.style_reward(real).mean() > 0.8 > 0.2 > disc.style_reward(fake).mean()
    with pytest.raises(ValueError, match="two motion-feature frames of 3"):
        disc(torch.zeros(2, 5))
