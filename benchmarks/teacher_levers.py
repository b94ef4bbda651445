"""What each lever of the flat teacher's recipe is worth: the default against the default with one lever off.

    python benchmarks/teacher_levers.py --steps 5000000 --seeds 0 1            # run what is missing
    python benchmarks/teacher_levers.py --steps 5000000 --seeds 0 1 --only symmetry
    python benchmarks/teacher_levers.py --report-only                           # rewrite the table

Each lever's "off" run is `benchmarks/teacher_learning.py --preset g1_flat --set <override>` (results in
docs/results/lever_<name>.json, runs in runs/bench_lever_<name>_s<seed>); the "on" side is the default
recipe's own result, docs/results/teacher_g1_flat.json, read at the same env-step count (both evaluate
every 1 M steps with the same protocol). Runs are resumable and skipped once done. The table goes to
docs/results/teacher_levers.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from humanoid_prior.config import learning_differences
from humanoid_prior.evaluation import steps_to_target
from humanoid_prior.monitoring import machine

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
BASELINE = RESULTS / "teacher_g1_flat.json"

LEVERS: dict[str, tuple[str, list[str]]] = {
    "gait_contact": (
        "gait-clock contact reward at 1.0/s (off: 0.18/s, Unitree's weight, with which the policy learns to "
        "hop on both feet and stands still when told to back up)",
        ["task.rewards.weights.gait_contact=0.18"],
    ),
    "n_epochs": (
        "5 epochs per update (off: 3, which cuts the update's compute by 40% for the throughput target)",
        ["ppo.n_epochs=3"],
    ),
    "symmetry": ("left-right mirror augmentation", ["ppo.symmetry=false"]),
    "ppo_update": (
        "symmetry + KL-adaptive rate (off: no mirror, constant 5e-4, KL early stop at 0.02: bare recipe)",
        ["ppo.symmetry=false", "ppo.lr_schedule=constant", "ppo.target_kl=0.02"],
    ),
    "flat_scan": (
        "one scan point under the base and each foot on flat ground (off: the rough 45 + 10 point scan)",
        [
            "task.scan.base_x=[-0.6,-0.45,-0.3,-0.15,0.0,0.15,0.3,0.45,0.6]",
            "task.scan.base_y=[-0.3,-0.15,0.0,0.15,0.3]",
            "task.scan.foot_xy=[[0.0,0.0],[0.1,0.0],[-0.1,0.0],[0.0,0.05],[0.0,-0.05]]",
        ],
    ),
    "dr_curriculum": (
        "randomisation widened from 0.1 to full strength over 0-3 M steps (off: full from the first step)",
        ["task.domain_rand.curriculum_steps=[0, 0]"],
    ),
    "no_fall_penalty": (
        "no fall penalty (off: termination -200/s, -4 per fall)",
        ["task.rewards.weights.termination=-200"],
    ),
    "adaptive_lr": (
        "KL-adaptive learning rate (off: linear decay from 5e-4 over the budget)",
        ["ppo.lr_schedule=linear"],
    ),
    "init_std": ("initial action std 0.6 (off: 1.0)", ["network.init_noise_std=1.0"]),
    "desired_kl": (
        "adaptive rate aiming at KL 0.02 after the update (off: 0.01, the default until 2026-12-02)",
        ["ppo.desired_kl=0.01"],
    ),
}
"""Lever name -> (what it is, the override that turns it off)."""


def at_steps(result: dict[str, Any], steps: int) -> dict[str, dict[str, Any]]:
    """Per seed: the evaluation at `steps` env steps (the last one at or before it) and steps_to_target."""
    out = {}
    for seed, run in result["seeds"].items():
        # An evaluation runs at the first iteration end past each multiple of 1 M: allow one iteration over.
        evals = [e for e in run["evals"] if e["env_steps"] <= steps * 1.01]
        if not evals:
            continue
        last = max(evals, key=lambda e: e["env_steps"])
        out[seed] = {
            "env_steps": last["env_steps"],
            "lin_vel_error": last["lin_vel_error"],
            "fall_rate": last["fall_rate"],
            "steps_to_target": steps_to_target(evals),
        }
    return out


def stale_settings(baseline: dict[str, Any], off: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Settings in which a lever's "off" runs differ from today's default other than the lever itself.

    An "off" run measured against an older default differs in more than one lever; the table says so
    (`config.learning_differences`).
    """
    lever = {o.split("=", 1)[0] for o in overrides}
    return {
        key: value
        for key, value in learning_differences(baseline, off).items()
        if not any(key == k or key.startswith(k + ".") for k in lever)
    }


def episodes(result: dict[str, Any]) -> int:
    """Episodes per evaluation of a flat result: every command, `repeats` times."""
    return int(result["eval"]["repeats"]) * len(result["eval"]["commands"])


def cell(rows: dict[str, dict[str, Any]]) -> str:
    if not rows:
        return "not run"
    parts = []
    for seed, r in sorted(rows.items()):
        reached = f"{r['steps_to_target'] / 1e6:.1f} M" if r["steps_to_target"] else "not reached"
        parts.append(
            f"s{seed}: {r['lin_vel_error']:.3f} m/s, {100 * r['fall_rate']:.0f}% falls, target {reached}"
        )
    return "<br>".join(parts)


def report(steps: int) -> str:
    baseline = json.loads(BASELINE.read_text())
    on = at_steps(baseline, steps)
    lines = [
        "# What each lever of the flat teacher is worth",
        "",
        f"G1 flat teacher, default recipe against the default with one lever off, at {steps / 1e6:.0f} M env "
        f"steps each, evaluated with the protocol of `humanoid_prior.evaluation` ({episodes(baseline)} "
        "episodes on the default's side unless a row says otherwise, full randomisation and noise, seeds "
        "apart from training). Per seed: lin-vel tracking error, falls, and "
        "the first evaluated step count that met the target (<= 0.15 m/s, <= 2% falls).",
        "",
        "Read with care: walking first appears around 4-6 M steps and the step at which it does varies by "
        "~1 M between seeds of one recipe, so a difference smaller than the spread between the two seeds "
        "of one cell is noise.",
        "",
        "The default's own runs go on to 8 M steps: "
        + "; ".join(
            f"seed {seed} met the target at "
            + (f"{run['steps_to_target'] / 1e6:.1f} M" if run["steps_to_target"] else "no evaluation")
            for seed, run in sorted(baseline["seeds"].items())
        )
        + f" ({BASELINE.name}).",
        "",
        "| lever | on (default) | off |",
        "|---|---|---|",
    ]
    commands = [baseline["command"]]
    for name, (what, overrides) in LEVERS.items():
        path = RESULTS / f"lever_{name}.json"
        off = {}
        if path.exists():
            result = json.loads(path.read_text())
            off = at_steps(result, steps)
            commands.append(result["command"])
            stale = stale_settings(baseline["config"], result.get("config", {}), overrides)
            if stale:
                settings = ", ".join(f"{k} = {v}" for k, v in stale.items())
                what += f" *(off runs made with an older default, which also differs in: {settings})*"
            if episodes(result) != episodes(baseline) or result.get("machine") != baseline.get("machine"):
                # A finer evaluation or another machine's run: the cells are not measured alike.
                what += (f" *(off: {episodes(result)} episodes per evaluation on {result.get('machine')}; "
                         f"on: {episodes(baseline)} on {baseline.get('machine')})*")  # fmt: skip
        lines.append(f"| {what} | {cell(on)} | {cell(off)} |")
    lines += ["", "Made by `python benchmarks/teacher_levers.py --report-only --steps "
              f"{steps}` from:", ""] + [f"- `{c}`" for c in commands]  # fmt: skip
    lines += ["", f"Machine of this table: {machine()}; each run's own machine is in its JSON."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5_000_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", default=None, choices=list(LEVERS))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        repo = Path(__file__).resolve().parents[1]  # run from the repo, so results record a relative command
        script = "benchmarks/teacher_learning.py"
        for name in args.only or list(LEVERS):
            cmd = [sys.executable, script, "--preset", "g1_flat", "--steps", str(args.steps), "--seeds",
                   *map(str, args.seeds), "--results-name", f"lever_{name}", "--no-video"]  # fmt: skip
            for override in LEVERS[name][1]:
                cmd += ["--set", override]
            subprocess.run(cmd, check=True, cwd=repo)
    text = report(args.steps)
    (RESULTS / "teacher_levers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
