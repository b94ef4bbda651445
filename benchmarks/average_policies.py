"""Average the weights of a run's newest checkpoints into one policy (stochastic weight averaging).

Late in a rough-terrain run the policy moves between evaluations by more than the evaluation's noise
(seed 0 of the step-cap recipe: stairs-up distance 6.24 m at 37.5 M steps, 4.85 m at 40 M); the mean of
the last iterates of one run sits inside the region they wander over. The average takes the newest
checkpoint's observation normaliser and bookkeeping (so it reads as that step count) and is written
beside the policies the evaluations kept, without optimizer state, so that
`teacher_learning.py --interim --select checkpoints/evaluated/<name>` evaluates it and `export` reads it.

    python benchmarks/average_policies.py runs/bench_teacher_g1_rough_lrdecay_s0 --last 13
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from humanoid_prior.runs.checkpoint import (
    EVALUATED,
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    policy_snapshot,
    save_checkpoint,
)

SAME = ("kind", "robot", "action_dim")


def average(paths: Sequence[Path]) -> dict[str, Any]:
    """The newest (last) checkpoint of `paths` with the mean of all their policy weights."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    loaded = [load_checkpoint(p) for p in paths]
    newest = loaded[-1]
    for path, data in zip(paths, loaded, strict=True):
        differ = [k for k in SAME if data[k] != newest[k]]
        if differ or dict(data["obs_sizes"]) != dict(newest["obs_sizes"]):
            raise CheckpointError(
                f"{path} differs from {paths[-1]} in {differ or ['obs_sizes']}; use one run's."
            )
        if data["policy"].keys() != newest["policy"].keys():
            raise CheckpointError(f"{path} holds other network parameters than {paths[-1]}; average one run.")
    mean = {}
    for key, value in newest["policy"].items():
        if value.is_floating_point():
            mean[key] = torch.stack([d["policy"][key] for d in loaded]).mean(dim=0)
        else:
            mean[key] = value
    steps = [int(d["num_timesteps"]) for d in loaded]
    return policy_snapshot(newest) | {"policy": mean, "averaged_steps": steps}


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--last", type=int, required=True, help="how many of the newest checkpoints")
    args = parser.parse_args(argv)
    found = list_checkpoints(args.run_dir / "checkpoints")
    if args.last < 2 or len(found) < args.last:
        raise SystemExit(
            f"error: --last {args.last}: {args.run_dir}/checkpoints holds {len(found)} checkpoints; average "
            f"2 to {len(found)} (keep more with --set run.keep_checkpoints=N while training)."
        )
    chosen = found[-args.last :]
    try:
        data = average(chosen)
    except CheckpointError as exc:
        raise SystemExit(f"error: {exc}") from None
    out = args.run_dir / EVALUATED / f"average_{chosen[0].stem}_{chosen[-1].stem}.pt"
    save_checkpoint(out, data)
    steps = data["averaged_steps"]
    print(f"written: {out} (mean of {len(chosen)} policies, {steps[0]:,} to {steps[-1]:,} env steps)")
    return out


if __name__ == "__main__":
    main()
