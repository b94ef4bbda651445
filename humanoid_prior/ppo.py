"""stable-baselines3's PPO with the one change a small CPU machine needs: torch threads per phase.

MuJoCo's rollout pool and torch's OpenMP pool share the same cores. With torch at full width during
rollout collection, its workers spin between the tiny batch-of-envs forward passes and slow every
MuJoCo step (measured on 2 cores: one env step + policy forward 12.0 ms against 6.8 + 0.2 ms apart).
So collection runs torch on `rollout_threads` (1 by default) and the update on all of them.
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3 import PPO as SB3PPO


class PPO(SB3PPO):
    """SB3 PPO that narrows torch's thread pool while the simulator steps."""

    def __init__(self, *args: Any, rollout_threads: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rollout_threads = rollout_threads

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> bool:
        """SB3's collection with torch on `rollout_threads` threads (restored afterwards)."""
        update_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(self.rollout_threads, update_threads)))
        try:
            return super().collect_rollouts(*args, **kwargs)
        finally:
            torch.set_num_threads(update_threads)
