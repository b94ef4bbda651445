"""Run directories, Weights & Biases (offline by default) + TensorBoard, and policy videos.

A run directory describes itself: `config.json` (the full config), `meta.json` (git commit, machine,
package versions, command line), `checkpoints/`, `videos/`, TensorBoard event files and
`progress.csv` (SB3's logger), and `wandb/` (sync later with `wandb sync`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The repository's HEAD commit (with '+dirty' when there are uncommitted changes), or 'unknown'."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def vector_isa(cpuinfo: str) -> str:
    """The widest SIMD level the CPU flags in /proc/cpuinfo text name ("AVX-512 BF16", "AVX2", ...).

    Two machines with the same model name ("AMD EPYC") have measured 2x apart in the update's compute:
    torch's kernels follow the instruction set, and bfloat16 is native only with AVX-512 BF16 or AMX.
    """
    flags: set[str] = set()
    for ln in cpuinfo.splitlines():
        if ln.startswith("flags"):
            flags = set(ln.split(":", 1)[1].split())
            break
    if "avx512f" in flags:
        return "AVX-512 BF16" if flags & {"avx512_bf16", "amx_bf16"} else "AVX-512"
    return "AVX2" if "avx2" in flags else ""


def machine() -> str:
    """CPU model, instruction set and core count (the machine a figure was measured on)."""
    model = platform.processor() or platform.machine()
    arch = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        names = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")]
        model = names[0] if names else model
        isa = vector_isa(text)
        arch = f"{arch}, {isa}" if isa else arch
    return f"{model} ({arch}), {os.cpu_count()} cores"


def write_run_metadata(run_dir: Path, config: dict[str, Any]) -> None:
    """config.json and meta.json; meta.json gains one entry per (re)start of the run."""
    import mujoco
    import stable_baselines3
    import torch

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"starts": []}
    meta["starts"].append({
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "git_commit": git_commit(),
        "machine": machine(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    })  # fmt: skip
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


class WandbRun:
    """A W&B run mirroring the TensorBoard logs, offline unless WANDB_MODE says otherwise."""

    def __init__(self, run_dir: Path, project: str, name: str, config: dict[str, Any], resume: bool) -> None:
        import wandb

        os.environ.setdefault("WANDB_MODE", "offline")  # no network needed; `wandb sync` uploads later
        os.environ.setdefault("WANDB_SILENT", "true")
        run_id_file = run_dir / "wandb_id.txt"
        run_id = run_id_file.read_text().strip() if resume and run_id_file.exists() else uuid.uuid4().hex[:8]
        run_id_file.write_text(run_id)
        self._wandb = wandb
        self.run = wandb.init(
            project=project, name=name, id=run_id, dir=str(run_dir), config=config, resume="allow",
            sync_tensorboard=True, settings=wandb.Settings(console="off"),
        )  # fmt: skip

    def log_video(self, path: Path, fps: int, step: int) -> None:
        """Attach an MP4 to the run."""
        self.run.log({"video/policy": self._wandb.Video(str(path), fps=fps, format="mp4")}, step=step)

    def finish(self) -> None:
        """Close the run (flushes the offline files)."""
        self.run.finish()


def write_video(frames: Sequence[np.ndarray], path: Path, fps: int) -> Path:
    """Encode RGB frames as an H.264 MP4 (imageio + its bundled ffmpeg)."""
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264", macro_block_size=8)
    return path


def rollout_frames(
    env: Any,
    act: Callable[[dict[str, np.ndarray]], np.ndarray],
    seconds: float,
    width: int = 320,
    height: int = 240,
    command: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """Frames of env 0 of a `LocomotionEnv` driven by `act` (observations -> actions) for `seconds`.

    With `command` (v_x, v_y, yaw rate) every env is given it after the reset; the task's command
    settings decide whether it is held (`evaluation.held_command_task`) or resampled.
    """
    obs = env.reset()
    if command is not None:
        env.commands.commands[:] = command
        obs = env.observe(restart_history=True)
    frames = []
    for _ in range(max(1, round(seconds / env.dt))):
        obs, *_ = env.step(act(obs))
        frames.append(env.render(0, width, height))
    return frames


CURVE_TAGS = {
    "minutes": "time/trained_minutes",
    "return": "rollout/ep_rew_mean",
    "lin_vel_error": "env/track/lin_vel_error",
    "episode_length": "rollout/ep_len_mean",
    "terrain_level": "env/curriculum/terrain_level",
}
"""Curve name -> the logger key it is read from."""


def _csv_scalars(run_dir: Path, by_step: dict[str, dict[int, float]]) -> None:
    """Fill `by_step` from the run's CSV logs (`progress_<start>.csv`, one per start of the run)."""
    import csv

    for path in sorted(run_dir.glob("progress_*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                step = row.get("time/total_timesteps")
                if not step:
                    continue
                for name, tag in CURVE_TAGS.items():
                    if row.get(tag):
                        by_step[name][int(float(step))] = float(row[tag])


def read_curves(run_dir: Path) -> dict[str, np.ndarray]:
    """Scalars of every start of the run, by env step: its CSV logs, then its TensorBoard event files.

    A run bundle packed without TensorBoard (`run_bundle.py pack --no-tensorboard`) keeps its curves in
    the CSV logs alone; where both hold a step, the event file's value is the one kept.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = CURVE_TAGS
    by_step: dict[str, dict[int, float]] = {name: {} for name in tags}
    _csv_scalars(run_dir, by_step)
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        available = set(acc.Tags()["scalars"])
        for name, tag in tags.items():
            if tag in available:
                by_step[name].update({e.step: e.value for e in acc.Scalars(tag)})
    steps = sorted(by_step["minutes"])
    curves = {name: np.array([values.get(s, np.nan) for s in steps]) for name, values in by_step.items()}
    curves["steps"] = np.array(steps, dtype=float)
    return curves


def report(result: dict[str, Any], path: Path | None) -> None:
    """A benchmark's result: written as JSON to `path` (if given) and printed as one JSON line."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
