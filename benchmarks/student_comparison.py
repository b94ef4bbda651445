"""Students from one teacher at one env-step budget: TMP, its ablations and two baselines, evaluated.

    python benchmarks/student_comparison.py --teacher runs/<teacher run> --steps 3000000

Trains (resumably: run it again after an interruption) one student per row under runs/cmp_<row>:
tmp, no_gan, no_aux, no_imitation, distill, ppo_proprio, each for `--steps` env steps, then runs the
teacher's evaluation protocol (`train.py eval`) on each and on the teacher. Writes under docs/results/:
student_comparison.json (rows with return, lin_vel_error, yaw_rate_error, fall_rate, terrain_level,
energy_per_m, steps_to_90pct; budget, command, machine), student_comparison.md (the table),
student_comparison_curves.png (return and tracking error vs env steps, all students) and
student_tmp.mp4 (the TMP student). The budget is in env steps, so the comparison does not depend on
what else the machine was doing; each row's wall-clock minutes are reported too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.config import StudentCfg, student_preset
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.evaluation import evaluate
from humanoid_prior.evaluation import protocol as eval_protocol
from humanoid_prior.monitoring import machine, read_curves, rollout_frames, write_video
from humanoid_prior.runners.student import teacher_config, train_student
from humanoid_prior.runs.policy_io import LoadedPolicy, load_policy

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
ROWS: dict[str, dict[str, Any]] = {
    "tmp": {"method": "tmp"},
    "distill": {"method": "distill"},
    "ppo_proprio": {"method": "ppo_proprio"},
    "no_gan": {"method": "tmp", "gan": False},
    "no_aux": {"method": "tmp", "aux": False},
    "no_imitation": {"method": "tmp", "imitation": False},
}
COLUMNS = ("return", "lin_vel_error", "yaw_rate_error", "fall_rate", "terrain_level", "energy_per_m",
           "steps_to_90pct")  # fmt: skip


def student_cfg(teacher_run: Path, row: str, steps: int, run_root: Path, seed: int) -> StudentCfg:
    spec = dict(ROWS[row])
    cfg = student_preset(teacher_config(teacher_run), str(teacher_run), spec.pop("method"))
    run = dataclasses.replace(cfg.run, run_dir=str(run_root), name=f"cmp_{row}", total_steps=steps,
                              time_limit_min=None, seed=seed, video_every=0)  # fmt: skip
    return dataclasses.replace(cfg, run=run, **spec)


def steps_to_fraction(curves: dict[str, np.ndarray], fraction: float = 0.9) -> float | None:
    """First env step at which the return reaches `fraction` of its final value (mean of the last 5)."""
    ret, steps = curves["return"], curves["steps"]
    ok = ~np.isnan(ret)
    ret, steps = ret[ok], steps[ok]
    if not len(ret):
        return None
    final = float(ret[-5:].mean())
    reached = np.flatnonzero(ret >= fraction * final) if final > 0 else np.arange(len(ret))
    return float(steps[reached[0]]) if len(reached) else None


def evaluate_row(policy: LoadedPolicy, run_dir: Path | None) -> dict[str, Any]:
    rough = policy.cfg.task.terrain_name == "rough"
    result = evaluate(policy.cfg.task, policy, eval_protocol(policy.cfg.task.terrain_name))
    row: dict[str, Any] = dict(result["summary"])
    row["env_steps"] = policy.num_timesteps
    row["minutes"] = round(policy.trained_seconds / 60.0, 2)
    row["terrain_level"] = None
    row["steps_to_90pct"] = None
    if run_dir is not None:
        curves = read_curves(run_dir)
        levels = curves["terrain_level"][~np.isnan(curves["terrain_level"])]
        if rough and len(levels):
            row["terrain_level"] = float(levels[-10:].mean())
        row["steps_to_90pct"] = steps_to_fraction(curves)
    if rough:
        row["per_terrain"] = per_terrain(result["table"])
    return row


def per_terrain(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean of each metric per terrain type (keys '<type>/d=.../cmd=...')."""
    groups: dict[str, list[dict[str, float]]] = {}
    for key, values in table.items():
        groups.setdefault(key.split("/")[0], []).append(values)
    return {t: {m: float(np.mean([v[m] for v in vs])) for m in ("lin_vel_error", "fall_rate")}
            for t, vs in groups.items()}  # fmt: skip


def markdown(rows: dict[str, dict[str, Any]], budget: int) -> str:
    def fmt(column: str, v: Any) -> str:
        if v is None:
            return "–"
        if column == "steps_to_90pct":
            return f"{v / 1e6:.2f} M"
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"

    lines = [
        f"Students at {budget / 1e6:.1f} M env steps each (the teacher: its own training). Eval protocol: "
        "`train.py eval` (fixed seeds and commands, 20 s episodes).",
        "",
        "| row | " + " | ".join(COLUMNS) + " | minutes |",
        "|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for name, row in rows.items():
        cells = " | ".join(fmt(c, row.get(c)) for c in COLUMNS)
        lines.append(f"| {name} | {cells} | {fmt('minutes', row['minutes'])} |")
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    for name, c in curves.items():
        axes[0].plot(c["steps"] / 1e6, c["return"], label=name)
        axes[1].plot(c["steps"] / 1e6, c["lin_vel_error"], label=name)
    axes[0].set_ylabel("mean episode return (task reward)")
    axes[1].set_ylabel("lin. velocity tracking error (m/s)")
    for ax in axes:
        ax.set_xlabel("env steps (M)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="teacher run directory")
    parser.add_argument("--steps", type=int, default=3_000_000, help="env steps per student")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {list(ROWS)}")
    parser.add_argument("--run-root", type=Path, default=Path("runs"), help="where the student runs live")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-wandb", action="store_true")
    parser.add_argument("--table-only", action="store_true", help="rewrite the markdown from the JSON")
    args = parser.parse_args()
    if args.table_only:
        saved = json.loads((RESULTS / "student_comparison.json").read_text())
        text = markdown(saved["rows"], saved["budget"]["env_steps"])
        (RESULTS / "student_comparison.md").write_text(text)
        print(text)
        return

    names = args.rows.split(",")
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        raise SystemExit(f"error: unknown rows {unknown}; choose from {list(ROWS)}")
    rows: dict[str, dict[str, Any]] = {"teacher": evaluate_row(load_policy(args.teacher), args.teacher)}
    curves = {}
    for name in names:
        cfg = student_cfg(args.teacher, name, args.steps, args.run_root, args.seed)
        run_dir = args.run_root / f"cmp_{name}"
        resume = run_dir if (run_dir / "config.json").exists() else None
        print(f"[{name}] training to {args.steps} env steps in {run_dir}", flush=True)
        train_student(cfg, resume=resume, use_wandb=not args.no_wandb)
        rows[name] = evaluate_row(load_policy(run_dir), run_dir)
        curves[name] = read_curves(run_dir)
        print(f"[{name}] " + json.dumps({c: rows[name].get(c) for c in COLUMNS}), flush=True)

    out = {
        "rows": rows,
        "budget": {"env_steps": args.steps},
        "teacher": str(args.teacher),
        "command": "python " + shlex.join(["benchmarks/student_comparison.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "student_comparison.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "student_comparison.md").write_text(markdown(rows, args.steps))
    plot(curves, RESULTS / "student_comparison_curves.png")
    if "tmp" in names:
        policy = load_policy(args.run_root / "cmp_tmp")
        env = LocomotionEnv(policy.cfg.task.with_batch(1, nthread=1), seed=2)
        frames = rollout_frames(env, policy, seconds=6.0, width=320, height=240)
        env.close()
        write_video(frames[::2], RESULTS / "student_tmp.mp4", fps=round(0.5 / env.dt))
    print(markdown(rows, args.steps))


if __name__ == "__main__":
    main()
