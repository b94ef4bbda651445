"""Train the privileged teacher: SB3 PPO on the `privileged` group (see `humanoid_prior.training`)."""

from __future__ import annotations

from pathlib import Path

from humanoid_prior.config import TeacherCfg
from humanoid_prior.runs import load_run_config, new_run_dir, pin_robot, resume_point
from humanoid_prior.training import (
    TrainingSession,
    run_session,
    seed_everything,
)


def train_teacher(cfg: TeacherCfg, resume: Path | None = None, use_wandb: bool = True) -> Path:
    """Train (or continue, with `resume` = a run directory) and return the run directory."""
    if resume is not None:
        run_dir = resume
        cfg = load_run_config(run_dir)
        start_from = resume_point(run_dir)
    else:
        run_dir = new_run_dir(cfg)
        cfg = pin_robot(cfg, run_dir)
        start_from = None
    seed_everything(cfg.run.seed)
    session = TrainingSession(cfg, run_dir, resume_from=start_from)
    return run_session(session, resumed=resume is not None, use_wandb=use_wandb)
