"""Where the terrain curriculum sends robots that track their commands well, by its demotion rule.

    python benchmarks/curriculum_drift.py --json docs/results/curriculum_drift.json

No physics: robots that move at a fixed share of their commanded velocity (100%, 70%, 45%) along the
heading their yaw command gives them, for one 20 s episode of the task's command sampler (default
`CommandCfg`: yaw-rate commands, or heading commands). Per case: the share of episodes promoted (walked
past half an 8 m tile) and demoted, under the rule the curriculum uses (demote below half the commanded
displacement, `curriculum.commanded_step`) and under legged_gym's (demote below half the commanded path
length, |command| x time), and the resulting mean drift in rows per episode. A curriculum whose drift is
negative for a robot walking at 70% of its command keeps a walking policy on the easiest rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from humanoid_prior.envs.commands import CommandCfg, CommandSampler
from humanoid_prior.envs.curriculum import CurriculumCfg, commanded_step
from humanoid_prior.monitoring import machine


def episode(
    cfg: CommandCfg, speed: float, n: int, episode_s: float, dt: float, seed: int
) -> dict[str, float]:
    """Promotion and demotion shares of `n` robots moving at `speed` x their command for one episode."""
    rng = np.random.default_rng(seed)
    commands = CommandSampler(cfg, n, dt, rng)
    commands.resample(np.arange(n))
    yaw = rng.uniform(-np.pi, np.pi, n)
    commanded, path = np.zeros((n, 2)), np.zeros(n)
    for _ in range(round(episode_s / dt)):
        commands.step(yaw)
        v = commands.commands
        yaw = yaw + v[:, 2] * dt
        commanded += commanded_step(yaw, v[:, :2], dt)
        path += np.linalg.norm(v[:, :2], axis=1) * dt
    walked = speed * np.linalg.norm(commanded, axis=1)
    curriculum = CurriculumCfg()
    promote = walked > curriculum.promote_fraction * 8.0
    displacement_rule = (walked < curriculum.demote_fraction * np.linalg.norm(commanded, axis=1)) & ~promote
    path_rule = (walked < curriculum.demote_fraction * path) & ~promote
    return {
        "promoted": float(promote.mean()),
        "demoted_displacement_rule": float(displacement_rule.mean()),
        "demoted_path_rule": float(path_rule.mean()),
        "drift_displacement_rule": float(promote.mean() - displacement_rule.mean()),
        "drift_path_rule": float(promote.mean() - path_rule.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robots", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cases = {}
    for name, cfg in (
        ("yaw_rate_commands", CommandCfg()),
        ("heading_commands", dataclasses.replace(CommandCfg(), heading_command=True)),
    ):
        for speed in (1.0, 0.7, 0.45):
            row = episode(cfg, speed, args.robots, episode_s=20.0, dt=0.02, seed=0)
            cases[f"{name}/speed_{speed:.2f}"] = row
            demoted = f"{row['demoted_displacement_rule']:5.1%} / {row['demoted_path_rule']:5.1%}"
            drift = f"{row['drift_displacement_rule']:+.2f} / {row['drift_path_rule']:+.2f}"
            print(f"{name:18s} at {speed:4.0%} of command: promoted {row['promoted']:5.1%}; demoted {demoted}"
                  f" (displacement / path rule); drift {drift} rows per episode")  # fmt: skip
    result = {
        "cases": cases,
        "robots": args.robots,
        "command": "python " + shlex.join(["benchmarks/curriculum_drift.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
