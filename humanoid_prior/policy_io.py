"""Load a trained policy from a run directory, without building the training env."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.policies import MultiInputActorCriticPolicy

from humanoid_prior.checkpoint import latest_checkpoint, load_checkpoint
from humanoid_prior.config import TeacherCfg
from humanoid_prior.envs.sb3_vec_env import action_space, observation_space
from humanoid_prior.policies.actor_critic import policy_kwargs
from humanoid_prior.teacher import KIND, load_run_config

CLIP_OBS = 10.0
"""Normalised observations are clipped to ±this (as VecNormalize does in training)."""


@dataclass
class LoadedPolicy:
    """A trained policy with its observation normaliser: raw observations in, actions out."""

    cfg: TeacherCfg
    policy: MultiInputActorCriticPolicy
    obs_mean: dict[str, np.ndarray]
    obs_var: dict[str, np.ndarray]
    checkpoint: Path
    num_timesteps: int
    trained_seconds: float

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Deterministic (mean) actions for a batch of raw observations."""
        normalised = {
            k: np.clip((v - self.obs_mean[k]) / np.sqrt(self.obs_var[k] + 1e-8), -CLIP_OBS, CLIP_OBS).astype(
                np.float32
            )
            for k, v in obs.items()
        }
        with torch.no_grad():
            actions, _ = self.policy.predict(normalised, deterministic=True)
        return np.asarray(actions)


def load_policy(run_dir: Path) -> LoadedPolicy:
    """The newest checkpoint of a teacher run, as a callable policy."""
    cfg = load_run_config(run_dir)
    path = latest_checkpoint(run_dir / "checkpoints")
    data = load_checkpoint(path, kind=KIND)
    obs_sizes = {str(k): int(v) for k, v in data["obs_sizes"].items()}
    policy = MultiInputActorCriticPolicy(
        observation_space(obs_sizes), action_space(int(data["action_dim"]), cfg.task.action_clip),
        lr_schedule=lambda _: 0.0, **policy_kwargs(cfg.network),
    )  # fmt: skip
    policy.load_state_dict(data["policy"])
    policy.eval()
    rms = data["obs_rms"]
    return LoadedPolicy(
        cfg=cfg,
        policy=policy,
        obs_mean={k: v["mean"].numpy() for k, v in rms.items()},
        obs_var={k: v["var"].numpy() for k, v in rms.items()},
        checkpoint=path,
        num_timesteps=int(data["num_timesteps"]),
        trained_seconds=float(data["trained_seconds"]),
    )
