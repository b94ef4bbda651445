"""What makes a policy fall in a crossing cell: the cell walked with one thing changed at a time.

    python benchmarks/crossing_causes.py --run runs/bench_teacher_g1_rough_lrdecay_s1 \
        --checkpoint checkpoints/evaluated/ckpt_0001221.pt --cell stairs_down_0.10 --json out.json

The crossing (`humanoid_prior.evaluation.crossing`) walks with the training's full domain randomisation and
observation noise. When a cell's falls sit above the target, this walks the same cell at the same seed
once as the protocol does and once per variant below, each changing one thing: a variant whose fall rate
drops far below the protocol's names the randomisation the policy cannot handle there (and so what the
training has to teach), one that does not move rules it out. `sharp_edges` asks the opposite question of
the terrain: the height field is sampled every `horizontal_scale` (0.1 m) and MuJoCo joins neighbouring
samples with planes, so each stair riser is a 45° ramp 0.1 m long on a 0.3 m tread; at half the spacing
the ramp is half as long, closer to a real stair's edge.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from humanoid_prior.envs.randomization import DomainRandCfg
from humanoid_prior.envs.task_cfg import TaskCfg
from humanoid_prior.evaluation import crossing, terrain_of
from humanoid_prior.monitoring import machine, report
from humanoid_prior.runs.policy_io import load_policy


def _with_rand(**changes: Any) -> Callable[[TaskCfg], TaskCfg]:
    def change(task: TaskCfg) -> TaskCfg:
        return dataclasses.replace(task, domain_rand=dataclasses.replace(task.domain_rand, **changes))

    return change


def _sharp_edges(task: TaskCfg) -> TaskCfg:
    terrain = terrain_of(task)
    return dataclasses.replace(
        task, terrain=dataclasses.replace(terrain, horizontal_scale=terrain.horizontal_scale / 2)
    )


VARIANTS: dict[str, Callable[[TaskCfg], TaskCfg]] = {
    "protocol": lambda task: task,
    "no_pushes": _with_rand(push_vel_xy=0.0),
    "nominal_friction": _with_rand(friction=(1.0, 1.0)),
    "lowest_friction": _with_rand(friction=(DomainRandCfg().friction[0],) * 2),
    "no_latency": _with_rand(latency_steps=(0, 0)),
    "no_randomisation": _with_rand(enabled=False),
    "sharp_edges": _sharp_edges,
}
"""Each variant's change to the policy's training task (`lowest_friction`: every env at the default range's
low end, to show whether slipping is the cause rather than averaging it away; `sharp_edges`: the height
field sampled twice as finely, same features)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="teacher run directory (runs/<name>)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="relative to the run (default newest)")
    parser.add_argument("--cell", default="stairs_down_0.10", help="crossing cell (see `crossing_cells`)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=256, help="episodes per variant")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    policy = load_policy(args.run, args.checkpoint)
    if policy.cfg.task.terrain is None:
        raise SystemExit(f"error: {args.run} trained on flat ground; the crossing needs a terrain run.")
    out = {}
    for name in args.variants:
        task = VARIANTS[name](policy.cfg.task)
        cell = crossing(task, policy, repeats=args.repeats, seed=args.seed, cells=[args.cell])[args.cell]
        out[name] = {k: cell[k] for k in ("fall_rate", "distance_m", "lin_vel_error", "fall_at_m")}
        print(f"{name}: falls {cell['fall_rate']:.1%}, {cell['distance_m']:.2f} m", flush=True)
    report(
        {
            "checkpoint": str(policy.checkpoint),
            "env_steps": policy.num_timesteps,
            "cell": args.cell,
            "repeats": args.repeats,
            "seed": args.seed,
            "variants": out,
            "command": "python " + shlex.join(sys.argv),
            "machine": machine(),
        },
        args.json,
    )


if __name__ == "__main__":
    main()
