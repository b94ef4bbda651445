"""The policy's observation normaliser: running mean and variance per observation key, eps and clip.

One owner for what the policy's input is: training builds SB3's `VecNormalize` from these constants and
writes its statistics to the checkpoint through `rms_state`; loaded policies, videos, the exported model
and the warm start read them back as an `ObsNormaliser`. Numpy only (torch where a checkpoint needs it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CLIP_OBS = 10.0
"""Normalised observations are clipped to ±this."""
EPSILON = 1e-8
"""Added to the variance before its square root."""


@dataclass(frozen=True)
class ObsNormaliser:
    """Frozen statistics: x -> clip((x - mean) / sqrt(var + epsilon), ±clip), per key."""

    mean: Mapping[str, np.ndarray]
    var: Mapping[str, np.ndarray]
    clip: float = CLIP_OBS
    epsilon: float = EPSILON

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any]) -> ObsNormaliser:
        """The statistics a checkpoint saved (`rms_state`); older checkpoints used today's eps and clip."""
        rms = data["obs_rms"]
        return cls(
            mean={k: np.asarray(v["mean"], dtype=np.float64) for k, v in rms.items()},
            var={k: np.asarray(v["var"], dtype=np.float64) for k, v in rms.items()},
            clip=float(data.get("obs_clip", CLIP_OBS)),
            epsilon=float(data.get("obs_epsilon", EPSILON)),
        )

    def size(self, key: str) -> int:
        """Values per env of observation `key`."""
        return int(self.mean[key].shape[-1])

    def std(self, key: str) -> np.ndarray:
        """sqrt(var + epsilon) of `key` (float64)."""
        return np.sqrt(self.var[key] + self.epsilon)

    def __call__(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The normalised float32 value of every given key this normaliser knows (others are dropped)."""
        return {
            k: np.clip((v - self.mean[k]) / self.std(k), -self.clip, self.clip).astype(np.float32)
            for k, v in obs.items()
            if k in self.mean
        }


def vec_normalize(venv: Any, keys: list[str] | None) -> Any:
    """SB3's running normaliser over `venv` for `keys` (None: all), with this module's eps and clip."""
    from stable_baselines3.common.vec_env import VecNormalize

    return VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=CLIP_OBS, epsilon=EPSILON,
                        norm_obs_keys=keys)  # fmt: skip


def rms_state(normaliser: Any) -> dict[str, Any]:
    """A `VecNormalize`'s statistics as checkpoint entries (`obs_rms` per key, its eps and clip)."""
    import torch

    return {
        "obs_rms": {
            key: {
                "mean": torch.as_tensor(rms.mean),
                "var": torch.as_tensor(rms.var),
                "count": float(rms.count),
            }
            for key, rms in normaliser.obs_rms.items()
        },
        "obs_clip": float(normaliser.clip_obs),
        "obs_epsilon": float(normaliser.epsilon),
    }


def load_rms_state(normaliser: Any, data: Mapping[str, Any]) -> None:
    """Put a checkpoint's statistics (`rms_state`) back into a `VecNormalize`."""
    for key, rms in normaliser.obs_rms.items():
        saved = data["obs_rms"][key]
        rms.mean, rms.var, rms.count = (
            np.asarray(saved["mean"]),
            np.asarray(saved["var"]),
            float(saved["count"]),
        )
