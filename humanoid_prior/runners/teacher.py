"""Train the privileged teacher: SB3 PPO on the `privileged` group (see `humanoid_prior.runners.training`)."""

from __future__ import annotations

import json
from pathlib import Path

from humanoid_prior.config import TeacherCfg
from humanoid_prior.runners.training import (
    TrainingSession,
    run_session,
    seed_everything,
)
from humanoid_prior.runners.warm_start import warm_start
from humanoid_prior.runs.run_dir import load_run_config, new_run_dir, pin_robot, resume_point

WARM_START = "warm_start.json"
"""What a run started from another run (`--run.init-from`) carried over; kept in the run directory."""


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
    if start_from is None and cfg.run.init_from is not None:
        carried = warm_start(session, Path(cfg.run.init_from))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / WARM_START).write_text(json.dumps(carried, indent=2) + "\n")
        new = ", ".join(f"{n} {term}" for term, n in carried["inputs_new"].items()) or "none"
        print(f"warm start from {carried['checkpoint']} at {carried['env_steps']:,} env steps; "
              f"new inputs (zero weights): {new}")  # fmt: skip
    return run_session(session, resumed=resume is not None, use_wandb=use_wandb)
