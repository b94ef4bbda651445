"""Learning evidence for the teacher: train seeds to an env-step budget, evaluating as they go.

    python benchmarks/teacher_learning.py --preset g1_flat --steps 8000000 --seeds 0 1
    python benchmarks/teacher_learning.py --preset g1_flat --steps 4000000 --set ppo.symmetry=false

Budgets are env steps (summed over envs), not minutes: this machine's speed varies by 3x between days.
Each seed trains in runs/bench_<name>_s<seed> and runs the evaluation protocol every `--eval-every` steps
(`RunCfg.eval_every_steps`: 256 episodes on flat ground, full domain randomisation, seeds apart from
training). `steps_to_target` is the first evaluated step count with lin-vel error <= 0.15 m/s and fall
rate <= 2%; on terrain, `steps_to_crossing` is the first at which every crossing cell (0.10 m stairs
and 15° slopes, up and down) was walked >= 5 m in 20 s with <= 10% falls. Run it in the background
(`nohup ... &`): runs checkpoint as they go, and the same command
resumes an interrupted seed and skips finished ones, and a later call with other `--seeds` (another
session) adds them to the same result; `--interim` evaluates each seed's newest
checkpoint without training (a run still short of its budget) into <name>_interim.*. `--select
first-crossing` reports, instead of the newest policy, the one kept at the first evaluation that met the
crossing target (or `--select <checkpoint>`, one the docs' measurements chose), evaluated again at
`--eval-seed` (not a seed that chose it) with `--crossing-repeats` episodes per crossing cell, into
`--out-name`.
Writes, under docs/results/: <name>.json (per seed: steps_to_target, the final lin_vel_error, yaw_rate_error,
fall_rate, env_steps, minutes, steps_per_s and every evaluation; command and machine),
<name>_curves.png (evaluation curves of every seed) and <name>.mp4 (a short video of the first seed;
on terrain, its walk up the crossing's 0.10 m stairs).
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

from humanoid_prior.config import learning_differences, named_teacher_preset, to_dict
from humanoid_prior.config_io import with_overrides
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.evaluation import (
    TARGET_FALL_RATE,
    TARGET_LIN_VEL_ERROR,
    crossing_both_ways,
    crossing_env,
    crossing_summary,
    evaluate,
    protocol,
    steps_to_crossing,
    steps_to_target,
)
from humanoid_prior.monitoring import machine, read_curves, rollout_frames, write_video
from humanoid_prior.runners.teacher import WARM_START, train_teacher
from humanoid_prior.runs.checkpoint import atomic_write
from humanoid_prior.runs.policy_io import load_policy
from humanoid_prior.runs.run_dir import EVALS

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def plot_evals(per_seed: dict[str, list[dict[str, Any]]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), dpi=80)
    for seed, rows in per_seed.items():
        steps = np.array([r["env_steps"] for r in rows]) / 1e6
        axes[0].plot(steps, [r["lin_vel_error"] for r in rows], marker="o", label=f"seed {seed}")
        axes[1].plot(steps, [100.0 * r["fall_rate"] for r in rows], marker="o", label=f"seed {seed}")
    axes[0].axhline(TARGET_LIN_VEL_ERROR, color="gray", ls="--")
    axes[1].axhline(100.0 * TARGET_FALL_RATE, color="gray", ls="--")
    axes[0].set_ylabel("eval lin. velocity error (m/s)")
    axes[1].set_ylabel("eval falls (%)")
    for ax in axes:
        ax.set_xlabel("env steps (M)")
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def steps_per_second(env_steps: int, trained_seconds: float, warm_start: dict[str, Any] | None) -> int:
    """Env steps per second of the run's own training.

    A warm-started run's clock starts at 0 while its step count carries its source's steps
    (`warm_start["env_steps"]`), so those are not divided by this run's seconds.
    """
    own = env_steps - (int(warm_start["env_steps"]) if warm_start else 0)
    return round(own / max(trained_seconds, 1e-9))


SELECT_RULES = ("final", "first-crossing")
"""Which policy of a seed its result reports: the newest checkpoint, or the policy kept at the first
periodic evaluation whose crossing met the rough target (early stopping on a policy that swings between
evaluations; report it at another `--eval-seed` than the one that chose it). `--select` also takes a
checkpoint of the run by its path (relative to the run), chosen by measurements the docs give."""


def selected_checkpoint(
    run_dir: Path, evals: list[dict[str, Any]], rule: str
) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint `rule` picks (relative to the run) and the row that picked it; (None, None): newest."""
    if rule == "final":
        return None, None
    if rule not in SELECT_RULES:
        if not (run_dir / rule).is_file():
            raise SystemExit(f"error: --select {rule}: neither {SELECT_RULES} nor a checkpoint in {run_dir}")
        return Path(rule), next((r for r in evals if r.get("checkpoint") == rule), None)
    step = steps_to_crossing(evals)
    if step is None:
        print(f"note: no evaluation of {run_dir} met the crossing target; reporting its newest checkpoint")
        return None, None
    row = next(r for r in evals if r["env_steps"] == step)
    if "checkpoint" not in row:
        raise SystemExit(
            f"error: the evaluation of {run_dir} at {step:,} steps kept no policy (a run from before "
            "evaluated policies were kept); use --select final."
        )
    return Path(row["checkpoint"]), row


def train_seed(cfg: Any, run_dir: Path, no_wandb: bool, train: bool = True, select: str = "final",
               eval_seed: int | None = None, crossing_repeats: int = 64) -> dict[str, Any]:  # fmt: skip
    """Train (or resume, or skip) one seed; its selected policy's evaluation and those along the way.

    `select` is one of `SELECT_RULES`; the policy is evaluated at `eval_seed` (default: the protocol's).
    `train=False` evaluates the run's newest checkpoint as it stands (an interim result of a run that
    is still going, or was stopped, short of its budget).
    """
    resume = run_dir if (run_dir / "config.json").exists() else None
    if train:
        train_teacher(cfg, resume=resume, use_wandb=not no_wandb)
    elif resume is None:
        raise FileNotFoundError(f"--interim: {run_dir} has no run to evaluate; train it first.")
    evals_path = run_dir / EVALS
    evals = [json.loads(line) for line in evals_path.read_text().splitlines()] if evals_path.exists() else []
    checkpoint, chosen_by = selected_checkpoint(run_dir, evals, select)
    newest_steps = load_policy(run_dir).num_timesteps
    policy = load_policy(run_dir, checkpoint)
    protocol_cfg = protocol(policy.cfg.task.terrain_name)
    eval_cfg = protocol_cfg if eval_seed is None else dataclasses.replace(protocol_cfg, seed=eval_seed)
    at_protocol_seed = eval_cfg.seed == protocol_cfg.seed
    result = evaluate(policy.cfg.task, policy, eval_cfg)
    summary = result["summary"]
    # Rough teachers also walk straight over each feature (0.10 m stairs, 15° slopes) for 20 s.
    task = policy.cfg.task
    walked: dict[str, Any] = {}
    if task.terrain is not None:
        walked = crossing_both_ways(task, policy, crossing_repeats, eval_cfg.seed)
    crossed = walked.get("crossing")
    # The newest policy's evaluation closes the curve (at the seed the curve's evaluations used).
    if at_protocol_seed and (not evals or evals[-1]["env_steps"] < policy.num_timesteps):
        final = {"crossing": crossing_summary(crossed)} if crossed is not None else {}
        evals.append({"env_steps": policy.num_timesteps, **summary, **final})
    minutes = policy.trained_seconds / 60.0
    curves = read_curves(run_dir)
    up_to_policy = ~np.isnan(curves["terrain_level"]) & (curves["steps"] <= policy.num_timesteps)
    levels = curves["terrain_level"][up_to_policy]
    warm = run_dir / WARM_START
    warm_start = json.loads(warm.read_text()) if warm.exists() else None
    starts = json.loads((run_dir / "meta.json").read_text())["starts"]
    selection = None
    if checkpoint is not None:
        rule = select if select in SELECT_RULES else "given"
        selection = {"rule": rule, "checkpoint": str(checkpoint), "newest_env_steps": newest_steps}
        if chosen_by is not None:  # the periodic evaluation that kept it, at its own seed
            selection["chosen_at_eval_seed"] = chosen_by.get("eval_seed", protocol_cfg.seed)
    return {
        "steps_to_target": steps_to_target(evals),
        "lin_vel_error": summary["lin_vel_error"],
        "yaw_rate_error": summary["yaw_rate_error"],
        "fall_rate": summary["fall_rate"],
        "return": summary["return"],
        "single_support": summary["single_support"],  # share of steps on one foot: a walk, not a shuffle
        "env_steps": policy.num_timesteps,
        "minutes": round(minutes, 2),
        "steps_per_s": steps_per_second(policy.num_timesteps, policy.trained_seconds, warm_start),
        "budget_steps": policy.cfg.run.total_steps,
        "interim": newest_steps < policy.cfg.run.total_steps,  # the run stands short of its budget
        "eval_seed": eval_cfg.seed,
        **({"crossing_repeats": crossing_repeats} if crossed is not None else {}),
        **({"selected": selection} if selection else {}),
        "table": result["table"],  # per command (flat) or terrain cell (rough): distance, falls, errors
        **walked,  # crossing, crossing_held_heading, crossing_met (>= 5 m, <= 10% falls in every cell)
        # The first evaluation whose crossing met the rough target.
        **({"steps_to_crossing": steps_to_crossing(evals)} if crossed is not None else {}),
        # Mean curriculum row over the last 10 iterations up to the policy's step (rough terrain only).
        **({"terrain_level": float(levels[-10:].mean())} if crossed is not None and len(levels) else {}),
        # A warm-started run's steps include its source's (--run.init-from): the source run and steps.
        **({"warm_start": warm_start} if warm_start else {}),
        "evals": evals,
        "run_dir": str(run_dir),
        # Every (re)start of the training itself, as recorded in the run's meta.json.
        "train_commands": [start["command"] for start in starts],
        "train_machines": sorted({start["machine"] for start in starts}),
    }


SEED = "{seed}"
"""Stands for each seed's number in a `--set` value, e.g. a per-seed `run.init_from`, so one command (and
one experiment's overrides) serves every seed."""


def seed_cfg(args: argparse.Namespace, seed: int, run_dir: Path) -> Any:
    """One seed's teacher config: preset, `--set` overrides with `SEED` filled in, budget, run directory."""
    cfg = with_overrides(
        named_teacher_preset(args.preset), [o.replace(SEED, str(seed)) for o in args.overrides]
    )
    run = dataclasses.replace(
        cfg.run,
        seed=seed,
        total_steps=args.steps or cfg.run.total_steps,
        time_limit_min=args.minutes,
        eval_every_steps=args.eval_every,
        video_every=0,
        run_dir=str(run_dir.parent),
        name=run_dir.name,
    )
    return dataclasses.replace(cfg, run=run)


def write_result(path: Path, result: dict[str, Any]) -> None:
    """The result file, written atomically: a kill while it is written leaves the previous one whole."""
    text = (json.dumps(result, indent=2) + "\n").encode()
    atomic_write(path, lambda f: f.write(text))


def earlier_seeds(path: Path, preset: str, overrides: list[str], rerun: list[int],
                  config: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Seeds of an earlier result of the same experiment that this call does not rerun.

    Seeds of one experiment may run in different sessions (`--seeds 1` after `--seeds 0`): the result
    keeps them all instead of the last call's alone. A file of another preset or overrides is replaced,
    and so is one whose saved config learns differently from `config` (this call's): the same overrides
    on a default that changed since are another experiment, and the file has one config for all seeds.
    """
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    if earlier.get("preset") != preset or earlier.get("overrides") != overrides:
        print(f"note: {path.name} holds another experiment; its seeds are replaced, not merged")
        return {}
    if config is not None and "config" in earlier:
        changed = learning_differences(config, earlier["config"])
        if changed:
            print(f"note: {path.name} was made with another default ({', '.join(sorted(changed))}); "
                  "its seeds are replaced, not merged")  # fmt: skip
            return {}
    # Each seed keeps the command that made its entry (older files name it only at the top level).
    return {s: {**r, "command": r.get("command", earlier.get("command"))}
            for s, r in earlier["seeds"].items() if int(s) not in rerun}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", default="g1_flat", help="a preset of envs.presets: g1_flat, h1_rough, ..."
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="env-step budget per seed (preset's if unset)"
    )
    parser.add_argument("--minutes", type=float, default=None, help="optional wall-clock cap per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-every", type=int, default=1_000_000, help="env steps between evaluations")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[],
        help=f"dotted.path=value; {SEED} in a value stands for each seed's number",
    )  # fmt: skip
    parser.add_argument(
        "--results-name", default=None, help="file stem under docs/results (teacher_<preset>)"
    )
    parser.add_argument(
        "--interim", action="store_true",
        help="train nothing: evaluate each seed's newest checkpoint (a run still short of --steps)",
    )  # fmt: skip
    parser.add_argument(
        "--select", default="final",
        help="the policy each seed's result reports: 'final' (its newest), 'first-crossing' (the one kept at "
        "the first evaluation that met the crossing target; pass another --eval-seed than the periodic "
        "evaluations' 12345), or a checkpoint's path relative to the run",
    )  # fmt: skip
    parser.add_argument(
        "--crossing-repeats", type=int, default=64, help="episodes per crossing cell in the result"
    )
    parser.add_argument(
        "--eval-seed", type=int, default=None, help="seed of the result's evaluation (protocol's if unset)"
    )
    parser.add_argument(
        "--out-name", default=None, help="result file stem, if not --results-name (which names the runs)"
    )
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--no-wandb", action="store_true")
    args = parser.parse_args()

    stem = args.results_name or f"teacher_{args.preset}"
    # an interim result never replaces a final one, unless its file is named (--out-name)
    out_stem = args.out_name or (stem + ("_interim" if args.interim else ""))
    cfgs = {seed: seed_cfg(args, seed, Path("runs") / f"bench_{stem}_s{seed}") for seed in args.seeds}
    base = cfgs[args.seeds[0]]
    out_path = RESULTS / f"{out_stem}.json"
    seeds = earlier_seeds(out_path, args.preset, args.overrides, args.seeds, to_dict(base))
    command = "python " + shlex.join(sys.argv)
    for seed, cfg in cfgs.items():
        run_dir = Path(cfg.run.run_dir) / cfg.run.name
        seeds[str(seed)] = train_seed(
            cfg, run_dir, args.no_wandb, train=not args.interim, select=args.select, eval_seed=args.eval_seed,
            crossing_repeats=args.crossing_repeats,
        ) | {"command": command}  # fmt: skip
        print(json.dumps({"seed": seed, **{k: v for k, v in seeds[str(seed)].items() if k != "evals"}}))
        # Written after every seed: a call stopped in a later seed keeps the finished seeds' results.
        out: dict[str, Any] = {
            "preset": args.preset,
            "overrides": args.overrides,
            "target": {"lin_vel_error": TARGET_LIN_VEL_ERROR, "fall_rate": TARGET_FALL_RATE},
            "seeds": seeds,
            "eval": dataclasses.asdict(protocol(base.task.terrain_name)),
            "select": args.select,
            "command": command,  # this call's; each seed's own is in its entry
            "machine": machine(),
            "config": to_dict(cfg),
        }
        levels = [r["terrain_level"] for r in seeds.values() if "terrain_level" in r]
        if levels:
            out["terrain_level"] = float(np.mean(levels))  # over seeds, each its last 10 iterations
        write_result(out_path, out)
    plot_evals(
        {s: r["evals"] for s, r in seeds.items()},
        f"{out_stem} ({machine()})",
        RESULTS / f"{out_stem}_curves.png",
    )
    if not args.no_video:
        first = seeds[str(args.seeds[0])]
        chosen = first.get("selected", {}).get("checkpoint")
        policy = load_policy(Path(first["run_dir"]), Path(chosen) if chosen else None)
        task = policy.cfg.task
        if task.terrain is not None:  # the rough target's own walk: 0.10 m stairs up, then down, at 0.5 m/s
            env = crossing_env(task, "stairs_up_0.10", repeats=1, seed=2)
            frames = rollout_frames(env, policy, seconds=12.0, command=(0.5, 0.0, 0.0))
        else:
            env = LocomotionEnv(task.with_batch(1, nthread=1), seed=2)
            frames = rollout_frames(env, policy, seconds=6.0)
        env.close()
        write_video(frames[::2], RESULTS / f"{out_stem}.mp4", fps=round(0.5 / env.dt))


if __name__ == "__main__":
    main()
