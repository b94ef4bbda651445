"""Run directories: naming, the config a run started with, where a resume starts, and the robot it trains.

A run on a robot file (`--task.robot-file`) trains on a copy of the resolved description kept in its run
directory (`robot.yaml`), so editing, moving or deleting the original afterwards changes nothing: resume,
evaluation and export read the copy, and say so when the original (or its MJCF) has changed since.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml

from humanoid_prior.config import TeacherCfg, from_saved, to_dict
from humanoid_prior.envs.robots import RobotCfg, RobotConfigError, load_robot_file, resolve_mjcf
from humanoid_prior.runs.checkpoint import EVALUATED, latest_checkpoint, list_checkpoints

TEACHER_KIND = "teacher"
"""`kind` of a teacher run's checkpoints (and the default run-name part)."""
STUDENT_KIND = "student"
"""`kind` of a student run's checkpoints."""
ROBOT_COPY = "robot.yaml"
"""The run's copy of its robot description (only for runs on a robot file)."""
ROBOT_SOURCE = "robot_source.json"
"""Where the copy came from, and the SHA-256 of the MJCF file it names, when the run started."""
EVALS = "evals.jsonl"
"""One row per periodic evaluation, oldest first."""
SUPERSEDED = "evals_superseded.jsonl"
"""Rows of evaluations that a resume from an earlier checkpoint took back (their policy is not this run's)."""


def new_run_dir(cfg: Any, kind: str = TEACHER_KIND) -> Path:
    """runs/<name>, the name defaulting to <robot>_<terrain>_<kind>_<date-time>; never an existing run's.

    Reusing a directory would overwrite its config and, as checkpoint pruning keeps the highest
    iteration numbers, delete every new checkpoint as soon as it is written.
    """
    name = cfg.run.name or f"{cfg.task.robot}_{cfg.task.terrain_name}_{kind}_{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.run.run_dir) / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"run directory {run_dir} already exists; continue it with --resume {run_dir} "
            "or choose another --run.name."
        )
    return run_dir


def resume_point(run_dir: Path) -> Path | None:
    """The checkpoint a resumed run (a directory with a config.json) starts from.

    None when the run was stopped before its first checkpoint, which loses nothing.
    """
    directory = run_dir / "checkpoints"
    if list_checkpoints(directory):
        return latest_checkpoint(directory)
    print(f"{run_dir} stopped before its first checkpoint: it starts again from step 0.")
    return None


def set_aside_later_evaluations(run_dir: Path, env_steps: int) -> int:
    """Move the evaluations made after `env_steps` out of `EVALS`; returns how many.

    A run killed without its final checkpoint resumes from an earlier one and evaluates again at the
    same steps, with a policy trained anew from there. The rows (and kept policies) of the lost stretch
    are kept, not overwritten: they go to `SUPERSEDED` and `EVALUATED`/superseded/, each row marked with
    the step the run resumed from, so `EVALS` names only the policies of the run that continues.
    """
    path = run_dir / EVALS
    if not path.is_file():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    later = [row for row in rows if row["env_steps"] > env_steps]
    if not later:
        return 0
    aside = run_dir / EVALUATED / "superseded"
    aside.mkdir(parents=True, exist_ok=True)
    with (run_dir / SUPERSEDED).open("a") as f:
        for row in later:
            kept = run_dir / row["checkpoint"] if "checkpoint" in row else None
            if kept is not None and kept.is_file():
                moved = kept.replace(aside / f"{kept.stem}_resumed_at_{env_steps}{kept.suffix}")
                row["checkpoint"] = str(moved.relative_to(run_dir))
            f.write(json.dumps({**row, "superseded_by_resume_at": env_steps}) + "\n")
    text = "".join(json.dumps(row) + "\n" for row in rows if row["env_steps"] <= env_steps)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(
        f"{len(later)} evaluation(s) after step {env_steps:,} belong to the stretch this resume trains "
        f"again: moved to {run_dir / SUPERSEDED}."
    )
    return len(later)


def load_run_config(run_dir: Path, cls: type = TeacherCfg) -> Any:
    """The config a run directory was started with (its robot file: the run's own copy)."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no config.json; is it a run directory?")
    data = json.loads(path.read_text())
    kind = STUDENT_KIND if "teacher" in data else TEACHER_KIND  # only a student's config names its teacher
    want = STUDENT_KIND if "teacher" in {f.name for f in dataclasses.fields(cls)} else TEACHER_KIND
    if kind != want:
        raise ValueError(
            f"{run_dir} is a {kind} run, not a {want} run; "
            f"continue it with `train.py {kind} --resume {run_dir}`."
        )
    cfg: Any = from_saved(cls, data)
    for note in robot_changes(run_dir):
        print(note)
    return cfg


def pin_robot(cfg: Any, run_dir: Path) -> Any:
    """`cfg` with its robot file replaced by a copy in `run_dir` (unchanged for a built-in robot)."""
    if cfg.task.robot_file is None:
        return cfg
    source = Path(cfg.task.robot_file).expanduser().resolve()
    robot = load_robot_file(source)
    run_dir.mkdir(parents=True, exist_ok=True)
    copy = run_dir / ROBOT_COPY
    copy.write_text(yaml.safe_dump(to_dict(robot), sort_keys=False))
    (run_dir / ROBOT_SOURCE).write_text(
        json.dumps({"source": str(source), "mjcf_sha256": mjcf_sha256(robot)}, indent=2) + "\n"
    )
    return dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, robot_file=str(copy.resolve())))


def mjcf_sha256(robot: RobotCfg) -> str:
    """SHA-256 of the robot's MJCF file (the file itself; meshes and included files are not hashed)."""
    return hashlib.sha256(resolve_mjcf(robot.mjcf).read_bytes()).hexdigest()


def robot_changes(run_dir: Path) -> list[str]:
    """Notes on what changed since the run started: its original robot file, or the MJCF it names."""
    source_path = run_dir / ROBOT_SOURCE
    if not source_path.is_file():
        return []
    recorded = json.loads(source_path.read_text())
    copy = load_robot_file(run_dir / ROBOT_COPY)
    notes = []
    source = Path(recorded["source"])
    try:
        changed = source.is_file() and load_robot_file(source) != copy
    except RobotConfigError:
        changed = True
    if changed:
        notes.append(
            f"note: {source} has changed since this run started; "
            f"the run uses its copy {run_dir / ROBOT_COPY}."
        )
    try:
        mjcf_now = mjcf_sha256(copy)
    except RobotConfigError:
        mjcf_now = "missing"
    if mjcf_now != recorded["mjcf_sha256"]:
        notes.append(
            f"warning: the MJCF {copy.mjcf} has changed (or gone) since this run started; the robot built "
            "now is not the one it trained on."
        )
    return notes
