"""The gymnasium spaces of the task: one owner for the gym env, the SB3 VecEnv and loaded policies."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


def observation_space(obs_sizes: dict[str, int]) -> spaces.Dict:
    """One unbounded float32 Box (D,) per observation group."""
    return spaces.Dict({
        g: spaces.Box(-np.inf, np.inf, shape=(d,), dtype=np.float32) for g, d in obs_sizes.items()
    })  # fmt: skip


def action_space(num_joints: int, action_clip: float) -> spaces.Box:
    """Joint actions in [-action_clip, action_clip], float32 (num_joints,)."""
    return spaces.Box(-action_clip, action_clip, shape=(num_joints,), dtype=np.float32)
