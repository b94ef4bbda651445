"""Learning evidence for the teacher: train (resumably) under a wall-clock budget, evaluate, plot, record.

    python benchmarks/teacher_learning.py --preset g1_flat --minutes 20
    python benchmarks/teacher_learning.py --preset g1_rough --minutes 120

Run it in the background (`nohup ... &`): it checkpoints as it goes, and the same command resumes an
interrupted run from its run directory (default runs/bench_<preset>) and skips training once the budget
is spent. Then it runs `train.py eval`'s protocol on the newest checkpoint and writes, under
docs/results/: teacher_<preset>.json (minutes, env_steps, lin_vel_error, yaw_rate_error, fall_rate,
the per-terrain table, command, machine), teacher_<preset>_curves.png (return and tracking error vs env
steps and vs wall-clock) and teacher_<preset>.mp4 (a short video).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from humanoid_prior.config import named_teacher_preset, to_dict
from humanoid_prior.envs.batched_sim import SimCfg
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.evaluation import EvalCfg, evaluate, rough_eval
from humanoid_prior.monitoring import machine, read_curves, rollout_frames, write_video
from humanoid_prior.policy_io import load_policy
from humanoid_prior.teacher import train_teacher

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def plot_curves(curves: dict[str, np.ndarray], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 6), dpi=80)
    for col, (x, label) in enumerate(
        [(curves["steps"] / 1e6, "env steps (M)"), (curves["minutes"], "wall-clock (min)")]
    ):
        axes[0, col].plot(x, curves["return"])
        axes[0, col].set_ylabel("mean episode return")
        axes[1, col].plot(x, curves["lin_vel_error"], color="tab:red")
        axes[1, col].set_ylabel("lin. velocity tracking error (m/s)")
        axes[1, col].set_xlabel(label)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="g1_flat")
    parser.add_argument(
        "--minutes", type=float, default=None, help="wall-clock training budget (preset's if unset)"
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/bench_<preset>")
    parser.add_argument("--no-wandb", action="store_true")
    parser.add_argument(
        "--results-name", default=None, help="file stem under docs/results (default teacher_<preset>)"
    )
    args = parser.parse_args()

    cfg = named_teacher_preset(args.preset)
    if args.minutes is not None:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, time_limit_min=args.minutes))
    run_dir = args.run_dir or Path("runs") / f"bench_{args.preset}"
    cfg = dataclasses.replace(
        cfg, run=dataclasses.replace(cfg.run, run_dir=str(run_dir.parent), name=run_dir.name)
    )
    resume = run_dir if (run_dir / "config.json").exists() else None
    train_teacher(cfg, resume=resume, use_wandb=not args.no_wandb)

    policy = load_policy(run_dir)
    rough = policy.cfg.terrain_name == "rough"
    result = evaluate(policy.cfg.task, policy, rough_eval() if rough else EvalCfg())
    summary = result["summary"]
    meta = json.loads((run_dir / "meta.json").read_text())
    stem = args.results_name or f"teacher_{args.preset}"
    out = {
        "preset": args.preset,
        "minutes": round(policy.trained_seconds / 60.0, 2),
        "env_steps": policy.num_timesteps,
        "lin_vel_error": summary["lin_vel_error"],
        "yaw_rate_error": summary["yaw_rate_error"],
        "fall_rate": summary["fall_rate"],
        "energy_per_m": summary["energy_per_m"],
        "return": summary["return"],
        "table": result["table"],
        "eval": result["eval_cfg"],
        "checkpoint": str(policy.checkpoint),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        # Every (re)start of the training itself, as recorded in the run's meta.json.
        "train_commands": [start["command"] for start in meta["starts"]],
        "train_machines": sorted({start["machine"] for start in meta["starts"]}),
        "machine": machine(),  # where this script (and the evaluation) ran
        "config": to_dict(policy.cfg),
    }
    curves = read_curves(run_dir)
    levels = curves["terrain_level"][~np.isnan(curves["terrain_level"])]
    if rough and len(levels):
        out["terrain_level"] = float(levels[-10:].mean())  # mean row over the last 10 iterations
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    trained_on = "; ".join(out["train_machines"])
    plot_curves(curves, f"{stem} (trained on {trained_on})", RESULTS / f"{stem}_curves.png")
    task = dataclasses.replace(policy.cfg.task, sim=SimCfg(num_envs=1, nthread=1))
    env = LocomotionEnv(task, seed=2)
    frames = rollout_frames(env, policy, seconds=6.0, width=320, height=240)
    env.close()
    write_video(frames[::2], RESULTS / f"{stem}.mp4", fps=round(0.5 / env.dt))
    print(
        json.dumps(
            {k: out[k] for k in ("minutes", "env_steps", "lin_vel_error", "yaw_rate_error", "fall_rate")}
        )
    )


if __name__ == "__main__":
    main()
