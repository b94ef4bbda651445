"""The control loop over DDS on loopback: period jitter, overruns and end-to-end latency.

Starts the simulated G1 (`train.py sim-g1`, its own process: 1 kHz physics, `LowState_` at 500 Hz) and
runs the exported policy on it through the `unitree_g1` backend and the runtime at 50 Hz, the operator
holding a forward command. Jitter is each tick's start minus its schedule (the runtime's `LoopStats`);
an overrun is a tick that computed longer than the period or started a period late. End-to-end is
measured by the simulator: from publishing a `LowState_` to receiving the `LowCmd_` that answers it
(the backend echoes the state's `tick` into `LowCmd_.reserve[0]` for this).

    python benchmarks/dds_loop.py --seconds 60 --repeats 3 --json docs/results/dds_loop_g1.json

The figures are medians over `--repeats` runs, each run's own figures beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.deploy.hardware_session import HeldCommand, run_session
from humanoid_prior.deploy.inference import load_engine
from humanoid_prior.deploy.manifest import Manifest
from humanoid_prior.deploy.runtime import Runtime
from humanoid_prior.deploy.unitree_g1 import UnitreeG1Cfg, UnitreeG1Robot
from humanoid_prior.monitoring import machine, report

REPO = Path(__file__).resolve().parents[1]
SIM_CORE, CONTROL_CORE = 1, 0
"""The simulated G1 stands in for the robot's own computer: it gets a core of its own, as the robot's
firmware does not share the controller's CPU (on a 2-core machine: one each)."""


def _on_core(core: int) -> Any:
    """A callable that pins the calling process to `core` (when the machine has it)."""

    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {core})

    return pin


def run_dds_loop(policy: Path, seconds: float, command: tuple[float, float, float], domain_id: int,
                 engine: str = "onnx") -> dict[str, Any]:  # fmt: skip
    """Loop statistics (runtime side) and what the simulated G1 saw (its side) for one run."""
    manifest = Manifest.load(policy)
    walk = manifest.safety.soft_start_s + seconds
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "sim.json"
        sim = subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), "sim-g1", "--policy", str(policy), "--domain-id",
             str(domain_id), "--seconds", str(walk + 30.0), "--stats", str(stats_path)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "MUJOCO_GL": "egl"}, preexec_fn=_on_core(SIM_CORE),
        )  # fmt: skip
        _on_core(CONTROL_CORE)()
        robot = UnitreeG1Robot(
            manifest, UnitreeG1Cfg(network="lo", domain_id=domain_id, echo_state_tick=True)
        )
        try:
            robot.wait_for_state(timeout_s=60.0)
            runtime = Runtime(manifest, load_engine(policy, engine, manifest.policy_files), robot)
            loop = run_session(runtime, robot, HeldCommand(command), walk)
        finally:
            robot.close()
            sim.terminate()
            _, err = sim.communicate(timeout=60)
        if not stats_path.exists():
            raise RuntimeError(f"the simulated G1 wrote no statistics; its stderr:\n{err}")
        sim_stats = json.loads(stats_path.read_text())
    return {"runtime": loop.summary(), "sim": sim_stats, "crc_errors": robot.crc_errors}


def compare_with_in_process(policy: Path, seconds: float, domain_id: int) -> dict[str, Any]:
    """The same policy and commands over DDS (simulated G1) and in-process (`mujoco` backend)."""
    from humanoid_prior.deploy.mujoco_robot import SimRobotCfg
    from humanoid_prior.deploy.sim2sim import run_sim2sim
    from humanoid_prior.deploy.unitree_g1_sim import tracking
    from humanoid_prior.evaluation import EvalCfg

    rows: dict[str, Any] = {}
    for i, command in enumerate(EvalCfg().commands):
        over_dds = run_dds_loop(policy, seconds, command, domain_id + 1 + i)
        dds = {**tracking(over_dds["sim"], command), "estop": over_dds["runtime"]["estop"]}
        local = run_sim2sim(policy, command, seconds, "onnx", SimRobotCfg())
        rows[str(command)] = {
            "dds": dds,
            "in_process": {"lin_vel_error": local.lin_vel_error, "yaw_rate_error": local.yaw_rate_error,
                           "fell": local.fell, "distance": local.distance, "estop": local.loop["estop"]},
        }  # fmt: skip
        print(f"  {command}: " + json.dumps(rows[str(command)]), flush=True)
    return rows


def main() -> None:
    """Run the loop and write the JSON with the issue's keys (and, with --compare, the side-by-side)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", type=Path, default=REPO / "tests" / "data" / "g1_student")
    p.add_argument("--seconds", type=float, default=60.0, help="policy time after the soft start")
    p.add_argument("--command", type=float, nargs=3, default=(0.5, 0.0, 0.0))
    p.add_argument("--domain-id", type=int, default=180)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--compare", type=Path, default=None,
                   help="also run each eval command 20 s over DDS and in-process; JSON here")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="runs of --seconds each; the figures are medians")
    args = p.parse_args()
    runs = []
    for i in range(args.repeats):
        got = run_dds_loop(args.policy, args.seconds, tuple(args.command), args.domain_id + i)
        rt, sim = got["runtime"], {k: v for k, v in got["sim"].items() if k != "track"}
        runs.append({
            "jitter_p99_ms": rt["jitter_p99_ms"], "jitter_max_ms": rt["jitter_max_ms"],
            "overruns": rt["overruns"], "e2e_p50_ms": sim.get("e2e_p50_ms"),
            "e2e_p99_ms": sim.get("e2e_p99_ms"), "e2e_max_ms": sim.get("e2e_max_ms"),
            "compute_p50_ms": rt["compute_p50_ms"], "compute_p99_ms": rt["compute_p99_ms"],
            "policy_steps": rt["policy_steps"], "estop": rt["estop"], "crc_errors": got["crc_errors"],
            "sim": sim,
        })  # fmt: skip
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "sim"}), flush=True)
    header = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "policy": str(args.policy)}

    def median(key: str) -> float:
        return float(np.median([r[key] for r in runs]))

    result = {
        **header, "seconds": args.seconds, "repeats": args.repeats,
        "policy_hz": round(1e3 / rt["period_ms"]), "state_hz": 500,
        # Medians over the runs (the machine is shared and its timing noisy); overruns: all runs together.
        "jitter_p99_ms": median("jitter_p99_ms"), "overruns": sum(r["overruns"] for r in runs),
        "e2e_p50_ms": median("e2e_p50_ms"), "e2e_p99_ms": median("e2e_p99_ms"),
        "compute_p50_ms": median("compute_p50_ms"), "compute_p99_ms": median("compute_p99_ms"),
        "estops": [r["estop"] for r in runs if r["estop"]],
        "targets": {"jitter_p99_ms": 1.0, "overruns": 0, "e2e_p99_ms": 2.0}, "runs": runs,
    }  # fmt: skip
    report(result, args.json)
    if args.compare is not None:
        rows = compare_with_in_process(args.policy, 20.0, args.domain_id + 10)
        report({**header, "seconds": 20.0, "commands": rows}, args.compare)


if __name__ == "__main__":
    main()
