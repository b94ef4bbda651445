"""The sim2sim gap: an exported policy in the `mujoco` backend beside the training-simulator evaluation.

For each run (teacher or student) and each command of `EvalCfg().commands`, the exported policy walks
for `--seconds` (20 s) on flat ground in the sim2sim backend (1 kHz physics, PD computed in the loop,
optional sensor noise and latencies, soft start in a gantry first), and the training simulator runs
`humanoid_prior.evaluation.evaluate` with `EvalCfg()` (domain randomisation and observation noise as in
training, 4 robots per command, 20 s). A rough-terrain run is evaluated on flat ground in both, so that
the two columns differ by the simulator only. Reported per command and on average: planar velocity
tracking error (m/s), yaw-rate error (rad/s), fall rate and distance (m), and the gap sim2sim - training.
Prints the JSON as its last line.

    python benchmarks/sim2sim.py --run runs/<teacher> --run runs/<student> --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.deploy.export import export_policy
from humanoid_prior.deploy.manifest import MANIFEST_NAME
from humanoid_prior.deploy.mujoco_robot import SimRobotCfg
from humanoid_prior.deploy.sim2sim import run_sim2sim
from humanoid_prior.envs.curriculum import CurriculumCfg
from humanoid_prior.evaluation import EvalCfg, evaluate
from humanoid_prior.monitoring import machine, report
from humanoid_prior.runs.policy_io import load_policy

METRICS = ("lin_vel_error", "yaw_rate_error", "fall_rate", "distance")


def training_eval(run_dir: Path, cfg: EvalCfg) -> dict[str, dict[str, float]]:
    """evaluate() on flat ground: metrics per command."""
    policy = load_policy(run_dir)
    task = dataclasses.replace(policy.cfg.task, terrain=None, curriculum=CurriculumCfg(enabled=False))
    table = evaluate(task, policy, cfg)["table"]
    return {str(c): {k: table[f"flat/cmd={c}"][k] for k in METRICS} for c in cfg.commands}


def sim2sim_eval(
    policy_dir: Path, cfg: EvalCfg, sim: SimRobotCfg, seconds: float, engine: str
) -> dict[str, Any]:
    out = {}
    for command in cfg.commands:
        r = run_sim2sim(policy_dir, command, seconds, engine, sim)
        out[str(command)] = {
            "lin_vel_error": r.lin_vel_error, "yaw_rate_error": r.yaw_rate_error, "fall_rate": float(r.fell),
            "distance": r.distance, "fall_time_s": r.fall_time_s, "estop": r.loop["estop"],
            "compute_p99_ms": r.loop["compute_p99_ms"], "overruns": r.loop["overruns"],
            "joint_limit_clamped": r.loop["joint_limit_clamped"], "torque_clamped": r.loop["torque_clamped"],
        }  # fmt: skip
        print(f"  sim2sim {command}: " + json.dumps({k: out[str(command)][k] for k in METRICS}), flush=True)
    return out


def mean_of(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows.values()])) for k in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True, help="run directory (repeatable)")
    parser.add_argument("--seconds", type=float, default=20.0, help="policy time per command in sim2sim")
    parser.add_argument("--engine", default="onnx", choices=("onnx", "torchscript"))
    parser.add_argument("--noise", type=float, default=0.0, help="sensor noise scale (1: training's levels)")
    parser.add_argument("--sensor-latency-ms", type=float, default=0.0)
    parser.add_argument("--action-latency-ms", type=float, default=0.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cfg = EvalCfg()
    sim = SimRobotCfg(joint_pos_noise=0.01 * args.noise, joint_vel_noise=1.5 * args.noise,
                      ang_vel_noise=0.2 * args.noise, sensor_latency_s=args.sensor_latency_ms / 1e3,
                      action_latency_s=args.action_latency_ms / 1e3)  # fmt: skip
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
        "eval_cfg": dataclasses.asdict(cfg), "sim2sim_cfg": dataclasses.asdict(sim), "seconds": args.seconds,
        "engine": args.engine, "runs": {},
    }  # fmt: skip
    for run_dir in args.run:
        policy_dir = run_dir / "deploy"
        if not (policy_dir / MANIFEST_NAME).is_file():
            export_policy(run_dir, policy_dir)
        print(f"{run_dir}:", flush=True)
        ours = sim2sim_eval(policy_dir, cfg, sim, args.seconds, args.engine)
        theirs = training_eval(run_dir, cfg)
        gap = {c: {k: ours[c][k] - theirs[c][k] for k in METRICS} for c in ours}
        summary = {"sim2sim": mean_of(ours), "training_sim": mean_of(theirs)}
        summary["gap"] = {k: summary["sim2sim"][k] - summary["training_sim"][k] for k in METRICS}
        result["runs"][str(run_dir)] = {
            "kind": load_policy(run_dir).kind, "sim2sim": ours, "training_sim": theirs, "gap": gap,
            "summary": summary,
        }  # fmt: skip
        print(f"  summary: {json.dumps(summary)}", flush=True)
    report(result, args.json)


if __name__ == "__main__":
    main()
