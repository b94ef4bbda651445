"""stable-baselines3's PPO with what legged-robot training on a small CPU machine needs.

* Torch threads per phase. MuJoCo's rollout pool and torch's OpenMP pool share the same cores. With
  torch at full width during rollout collection, its workers spin between the tiny batch-of-envs
  forward passes and slow every MuJoCo step (measured on 2 cores: one env step + policy forward
  12.0 ms against 6.8 + 0.2 ms apart). So collection runs torch on `rollout_threads` (1 by default)
  and the update on all of them.
* An adaptive learning rate (rsl_rl's rule): after each update the rate is divided by 1.5 when the
  policy moved more than twice the target KL and multiplied by 1.5 when it moved less than half of it.
  A rate decayed over a step total that a time- or step-limited run never reaches is either too high
  early (KL spikes of 0.1-0.3 measured at a constant 5e-4) or too low late.
* The update logs how many epochs ran (`train/epochs_done`) and whether `target_kl` cut it short
  (`train/early_stopped`); SB3 only prints that in verbose mode.
* Optional left-right symmetry augmentation (`humanoid_prior.algorithms.symmetry`): before SB3's own
  `train()`, the rollout buffer is doubled with the mirrored transitions (see `mirrored_buffer`).
* Optional bfloat16 hidden layers in the update (`update_precision`, see `trunk_precision`). The update's
  matrix products are most of a PPO iteration on 2 cores; rollouts, the action and value heads, the
  loss and the optimiser stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from stable_baselines3 import PPO as SB3PPO
from stable_baselines3.common.buffers import DictRolloutBuffer

from humanoid_prior.algorithms.symmetry import Mirror, mirrored_buffer


class AdaptiveLR:
    """A learning rate that follows the measured KL divergence of each update (rsl_rl's schedule).

    Used as SB3's `learning_rate` (a callable of the remaining progress, which it ignores).
    """

    def __init__(self, initial: float, target_kl: float, bounds: tuple[float, float] = (1e-5, 1e-2)) -> None:
        if target_kl <= 0:
            raise ValueError(f"the adaptive learning rate needs target KL > 0, got {target_kl}.")
        self.value = initial
        self.target_kl = target_kl
        self.bounds = bounds

    def __call__(self, progress_remaining: float) -> float:
        """The current rate."""
        return self.value

    def update(self, kl: float) -> float:
        """Adjust the rate after an update whose policy moved by `kl`; returns the new rate."""
        if kl > 2.0 * self.target_kl:
            self.value = max(self.value / 1.5, self.bounds[0])
        elif kl < 0.5 * self.target_kl:
            self.value = min(self.value * 1.5, self.bounds[1])
        return self.value


UPDATE_PRECISIONS = ("float32", "bfloat16")


def check_update_precision(precision: str) -> None:
    """A clear error for a precision the update does not know."""
    if precision not in UPDATE_PRECISIONS:
        raise ValueError(f"--ppo.update-precision must be one of {UPDATE_PRECISIONS}, got '{precision}'.")


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX-512 BF16 or AMX tiles).

    Without them torch emulates bfloat16: on an AVX2-only AMD EPYC a PPO minibatch step took 350 ms
    against 21 ms in float32 (docs/results/train_throughput_g1_flat_20261207.json).
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


@contextlib.contextmanager
def trunk_precision(policy: Any, precision: str) -> Iterator[None]:
    """Run the policy's hidden layers (SB3's `mlp_extractor` nets) under `precision`, for the `with` block.

    bfloat16 autocasts only the two MLP trunks, where nearly all the compute is, and hands their outputs
    back as float32: heads, log-probabilities, values and the loss stay float32. The trunks' rounding
    still moves log-probabilities by a few percent, which is why `PPO.train` recomputes the rollout's
    old ones in the same precision. float32 changes nothing.
    """
    check_update_precision(precision)
    if precision == "float32":
        yield
        return
    extractor = policy.mlp_extractor
    nets = (extractor.policy_net, extractor.value_net)
    device = policy.device.type

    def low_precision(net: torch.nn.Module) -> Any:
        forward = type(net).forward

        def run(*args: Any) -> torch.Tensor:
            with torch.autocast(device, dtype=torch.bfloat16):
                out = forward(net, *args)
            return out.float()

        return run

    for net in nets:  # an instance attribute shadows the class's forward; deleting it restores that
        net.forward = low_precision(net)
    try:
        yield
    finally:
        for net in nets:
            del net.forward


class PPO(SB3PPO):
    """SB3 PPO with per-phase torch threads, adaptive learning rate, mirror augmentation, bfloat16 update."""

    def __init__(
        self,
        *args: Any,
        rollout_threads: int = 1,
        mirror: Mirror | None = None,
        update_precision: str = "float32",
        **kwargs: Any,
    ) -> None:
        """SB3's PPO arguments; a `learning_rate` that is an `AdaptiveLR` follows the KL of each update."""
        check_update_precision(update_precision)
        if mirror is not None and kwargs.get("target_kl") is not None:
            # SB3 measures its early-stop KL over every trained sample, mirrored ones included, whose
            # ratios swing widely while the policy is not yet symmetric: measured, it stopped every update
            # after its first minibatch and the policy did not learn.
            raise ValueError(
                "target_kl early stopping cannot be combined with symmetry augmentation; use "
                "--ppo.lr-schedule adaptive (KL on the collected samples) or --ppo.no-symmetry."
            )
        super().__init__(*args, **kwargs)
        if update_precision == "bfloat16" and self.device.type == "cpu" and not native_bfloat16():
            raise ValueError(
                "--ppo.update-precision bfloat16 needs a CPU with bfloat16 instructions (AVX-512 BF16 or "
                f"AMX); this one has {torch.backends.cpu.get_cpu_capability()}, on which bfloat16 is "
                "emulated and the update runs ~15x slower. Train with --ppo.update-precision float32."
            )
        self.rollout_threads = rollout_threads
        rate = kwargs.get("learning_rate")
        self.adaptive_lr = rate if isinstance(rate, AdaptiveLR) else None
        self.mirror = mirror
        self.update_precision = update_precision

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> bool:
        """SB3's collection with torch on `rollout_threads` threads (restored afterwards)."""
        update_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(self.rollout_threads, update_threads)))
        try:
            return super().collect_rollouts(*args, **kwargs)
        finally:
            torch.set_num_threads(update_threads)

    def train(self) -> None:
        """SB3's update (on the mirrored-and-original buffer when a mirror is set), then the LR rule."""
        updates_before = self._n_updates
        original, batch_size = self.rollout_buffer, self.batch_size
        if self.update_precision != "float32":
            # PPO's ratio divides the update's probabilities by the collection's. Computed in two precisions
            # they differ before any step (bfloat16 hidden layers, a trained-scale action head: 3% mean,
            # 20% max), so the old log-probabilities are recomputed in the update's own precision.
            old = self.buffer_log_probs(original).cpu().numpy()
            original.log_probs = old.reshape(original.log_probs.shape).astype(original.log_probs.dtype)
        if self.mirror is not None:
            if not isinstance(original, DictRolloutBuffer):
                raise TypeError("symmetry augmentation needs Dict observations (a DictRolloutBuffer).")
            # Twice the samples in the same number of minibatches: as many gradient steps as without it.
            normaliser = self.env if hasattr(self.env, "obs_rms") else None  # SB3's VecNormalize
            self.rollout_buffer = mirrored_buffer(original, self.mirror, normaliser)
            self.batch_size = 2 * batch_size
        try:
            with trunk_precision(self.policy, self.update_precision):
                super().train()
        finally:
            self.rollout_buffer, self.batch_size = original, batch_size
        epochs = self._n_updates - updates_before
        self.logger.record("train/epochs_done", epochs)
        self.logger.record("train/early_stopped", float(epochs < self.n_epochs))
        if self.adaptive_lr is not None:
            kl = self.rollout_kl(original)
            self.logger.record("train/rollout_kl", kl)
            self.adaptive_lr.update(kl)

    def rollout_kl(self, buffer: Any) -> float:
        """KL of the updated policy from the one that collected `buffer`, on the collected samples only.

        SB3's `train/approx_kl` averages over every sample trained on; with mirror augmentation that
        includes mirrored actions far in the tails of a not-yet-symmetric policy, whose probability ratios
        swing widely, and the adaptive rate collapsed on it (5e-4 -> 2e-5 within 0.7 M steps).
        Estimator: mean((r - 1) - log r), r the probability ratio (as SB3's).
        """
        old = torch.as_tensor(buffer.log_probs.reshape(-1), device=self.device)
        log_ratio = self.buffer_log_probs(buffer) - old
        return float(torch.mean(torch.exp(log_ratio) - 1.0 - log_ratio))

    def buffer_log_probs(self, buffer: Any) -> torch.Tensor:
        """The current policy's log-probability of each collected action, in the update's precision."""
        # SB3's `train()` may have flattened the buffer in place (steps x envs -> samples): reshape by sample.
        if isinstance(buffer.observations, dict):
            obs: Any = {k: torch.as_tensor(v.reshape(-1, *buffer.obs_shape[k]), device=self.device)
                        for k, v in buffer.observations.items()}  # fmt: skip
        else:
            obs = torch.as_tensor(buffer.observations.reshape(-1, *buffer.obs_shape), device=self.device)
        actions = torch.as_tensor(buffer.actions.reshape(-1, buffer.action_dim), device=self.device)
        with torch.no_grad(), trunk_precision(self.policy, self.update_precision):
            _, log_prob, _ = self.policy.evaluate_actions(obs, actions)
        return log_prob
