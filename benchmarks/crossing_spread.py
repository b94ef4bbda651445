"""How much the crossing test of one policy moves between evaluation seeds.

    python benchmarks/crossing_spread.py --run runs/bench_teacher_g1_rough_cap14_s0 \
        --checkpoint checkpoints/evaluated/ckpt_0001348.pt --seeds 1 2 3 4 --json out.json

The crossing (`humanoid_prior.evaluation.crossing`: 64 episodes of 20 s per cell, randomisation and
noise on) is drawn from one seed. Before a difference between two evaluations of a run is read as the
policy changing, it has to exceed what the same policy gives at other seeds: this walks one policy over
the crossing at each seed and reports every cell's fall rate and mean distance per seed, with their
mean and range over the seeds.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.evaluation import crossing, crossing_met, crossing_summary
from humanoid_prior.monitoring import machine, report
from humanoid_prior.runs.policy_io import load_policy


def spread(values: list[float]) -> dict[str, float]:
    """Mean, lowest and highest of one figure over the seeds."""
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="teacher run directory (runs/<name>)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="relative to the run (default newest)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--repeats", type=int, default=64, help="episodes per cell and seed")
    parser.add_argument("--hold-heading", action="store_true", help="the heading law on (see `crossing`)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    policy = load_policy(args.run, args.checkpoint)
    if policy.cfg.task.terrain is None:
        raise SystemExit(f"error: {args.run} trained on flat ground; the crossing needs a terrain run.")
    per_seed: dict[str, Any] = {}
    for seed in args.seeds:
        cells = crossing(
            policy.cfg.task, policy, repeats=args.repeats, seed=seed, hold_heading=args.hold_heading
        )
        per_seed[str(seed)] = {"cells": crossing_summary(cells), "met": crossing_met(cells)}
        print(seed, {n: (round(c["fall_rate"], 3), round(c["distance_m"], 2)) for n, c in cells.items()})
    names = list(next(iter(per_seed.values()))["cells"])
    result = {
        "checkpoint": str(policy.checkpoint),
        "env_steps": policy.num_timesteps,
        "repeats": args.repeats,
        "hold_heading": args.hold_heading,
        "per_seed": per_seed,
        "over_seeds": {
            name: {
                fig: spread([s["cells"][name][fig] for s in per_seed.values()])
                for fig in ("fall_rate", "distance_m")
            }
            for name in names
        },
        "seeds_met": sum(s["met"] for s in per_seed.values()),
        "command": "python " + shlex.join(sys.argv),
        "machine": machine(),
    }
    report(result, args.json)


if __name__ == "__main__":
    main()
