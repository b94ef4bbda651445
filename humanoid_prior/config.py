"""Training configurations: typed dataclasses with a docstring per field, variants by factory functions.

Every field can be overridden on the command line (`train.py teacher --ppo.learning-rate 3e-4`);
presets only choose starting values and never rewrite what the user passes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from humanoid_prior.envs.task_cfg import TaskCfg, task_preset
from humanoid_prior.policies.actor_critic import NetworkCfg


@dataclass(frozen=True)
class PPOCfg:
    """PPO hyperparameters (stable-baselines3 names), legged-robot defaults sized for 2 CPU cores."""

    n_steps: int = 24
    """Control steps per env per iteration (rollout length); samples per iteration = n_steps * num_envs."""
    batch_size: int = 1536
    """Minibatch size (samples per gradient step)."""
    n_epochs: int = 5
    """Passes over each rollout."""
    learning_rate: float = 5e-4
    """Initial learning rate (Adam)."""
    lr_schedule: str = "linear"
    """'linear': decay to lr_final_fraction of the start over the run; 'constant': keep it."""
    lr_final_fraction: float = 0.1
    """Final learning rate as a fraction of the initial one (linear schedule)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO ratio clip."""
    ent_coef: float = 0.005
    """Entropy bonus."""
    vf_coef: float = 1.0
    """Value-loss weight."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    target_kl: float | None = 0.03
    """Stop an iteration's epochs early when the approximate KL exceeds this (None: never)."""


@dataclass(frozen=True)
class RunCfg:
    """Where a run lives, how long it lasts and what it records."""

    total_steps: int = 20_000_000
    """Environment steps (summed over envs) to train for."""
    time_limit_min: float | None = None
    """Stop after this much wall-clock training time (minutes), whichever comes first."""
    run_dir: str = "runs"
    """Parent folder of run directories."""
    name: str | None = None
    """Run name (default: <robot>_<terrain>_<kind>_<date-time>)."""
    seed: int = 0
    """Seed of the env, the networks and the sampling."""
    checkpoint_every: int = 50
    """Iterations between checkpoints."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk (older ones are deleted)."""
    video_every: int = 200
    """Iterations between policy videos (0: none)."""
    video_seconds: float = 5.0
    """Length of each video."""
    wandb_project: str = "humanoid_prior"
    """Weights & Biases project; the mode comes from WANDB_MODE (default offline)."""
    device: str = "auto"
    """Torch device for the networks ('cpu', 'cuda', or 'auto')."""
    progress_bar: bool = True
    """Show a progress bar with steps/s and ETA."""
    rollout_threads: int = 1
    """Torch threads while collecting rollouts (the update uses all); see humanoid_prior/ppo.py."""


@dataclass(frozen=True)
class TeacherCfg:
    """A privileged teacher training run."""

    task: TaskCfg = field(default_factory=TaskCfg)
    """The locomotion task (robot, terrain, rewards, randomisation, batch size)."""
    network: NetworkCfg = field(default_factory=NetworkCfg)
    """Actor and critic sizes; both read the privileged group."""
    ppo: PPOCfg = field(default_factory=PPOCfg)
    """PPO hyperparameters."""
    run: RunCfg = field(default_factory=RunCfg)
    """Run bookkeeping."""
    terrain_name: str = "rough"
    """Terrain preset name ('flat' or 'rough'), used in the run name and evaluation."""


def teacher_preset(robot: str = "g1", terrain: str = "rough", num_envs: int = 128) -> TeacherCfg:
    """A teacher run for a built-in robot on a terrain preset."""
    return TeacherCfg(task=task_preset(robot, terrain, num_envs), terrain_name=terrain)


def g1_flat() -> TeacherCfg:
    """G1 on flat ground: the fast sanity run (20 minutes on 2 cores)."""
    cfg = teacher_preset("g1", "flat")
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, time_limit_min=20.0))


def g1_rough() -> TeacherCfg:
    """G1 on the rough-terrain curriculum: the default teacher."""
    cfg = teacher_preset("g1", "rough")
    return dataclasses.replace(
        cfg, run=dataclasses.replace(cfg.run, time_limit_min=120.0, total_steps=100_000_000)
    )


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain JSON-able data (tuples become lists, mappings dicts)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict) or hasattr(cfg, "items"):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [to_dict(v) for v in cfg]
    return cfg
