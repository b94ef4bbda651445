"""Per-step latency of an exported policy at batch 1, and of the whole runtime step around it.

  inference      one call of `policy.pt` (TorchScript) and of `policy.onnx` (ONNX Runtime), single-threaded,
                 on observations recorded from the training env: p50 / p99 / max over `--calls` calls;
  runtime step   one `Runtime.step` (read the state, check it, build the observation with the env's code,
                 history, policy, action -> targets, clamps, send) on robot states recorded from a sim2sim
                 run and replayed from memory, so that no physics is timed: p50 / p99 / max over `--calls`
                 ticks. `runtime_step_p99_ms` is the ONNX Runtime one (the runtime's default engine).
Target: runtime_step_p99_ms <= 1 ms on the development machine. Each call is timed on its own
(perf_counter_ns), after a warm-up. Prints the JSON as its last line.

    python benchmarks/policy_latency.py --run runs/<run> --json out.json   # exports to <run>/deploy if needed
    python benchmarks/policy_latency.py --policy <export dir> --json out.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.deploy.export import export_policy, probe_observations
from humanoid_prior.deploy.inference import ENGINES, PolicyEngine, load_engine
from humanoid_prior.deploy.manifest import MANIFEST_NAME, Manifest, SafetyCfg
from humanoid_prior.deploy.mujoco_robot import MujocoRobot, SimRobotCfg
from humanoid_prior.deploy.robot import JointCommand, RobotState, VirtualClockRobot
from humanoid_prior.deploy.runtime import Runtime
from humanoid_prior.monitoring import machine, report
from humanoid_prior.runs.policy_io import load_policy

WARMUP = 500


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "max_ms": float(ms.max()), "calls": len(ms)}  # fmt: skip


def time_inference(engine: PolicyEngine, inputs: np.ndarray, calls: int) -> dict[str, float]:
    rows = [np.ascontiguousarray(inputs[i : i + 1]) for i in range(len(inputs))]
    for i in range(WARMUP):
        engine(rows[i % len(rows)])
    samples = []
    for i in range(calls):
        row = rows[i % len(rows)]
        start = time.perf_counter_ns()
        engine(row)
        samples.append(time.perf_counter_ns() - start)
    return percentiles_ms(samples)


class ReplayRobot(VirtualClockRobot):
    """Replays recorded robot states from memory (robot order); its clock advances with `wait_until`."""

    def __init__(self, names: tuple[str, ...], states: list[RobotState], period: float) -> None:
        super().__init__(names)
        self.states, self.period, self.k = states, period, 0

    def read_state(self) -> RobotState:
        s = self.states[self.k % len(self.states)]
        self.k += 1
        return RobotState(self.t, s.joint_pos, s.joint_vel, s.base_ang_vel, s.base_quat, s.extras)

    def send(self, command: JointCommand) -> None:
        pass


def record_states(
    policy_dir: Path, manifest: Manifest, seconds: float = 10.0
) -> tuple[tuple[str, ...], list[RobotState]]:
    """Robot states of the policy walking forward in sim2sim (after a short soft start, held in a gantry)."""
    robot = MujocoRobot(manifest, SimRobotCfg(gantry_s=0.2))
    engine = load_engine(policy_dir, "onnx", manifest.policy_files)
    runtime = Runtime(manifest, engine, robot, (0.5, 0.0, 0.0), safety=SafetyCfg(soft_start_s=0.2))
    states: list[RobotState] = []
    runtime.run(
        seconds, on_tick=lambda rt: states.append(robot.read_state()) if not rt.in_soft_start else None
    )
    return robot.joint_names, states


def time_runtime_step(
    manifest: Manifest, engine: PolicyEngine, names: tuple[str, ...], states: list[RobotState], calls: int
) -> dict[str, float]:
    robot = ReplayRobot(names, states, manifest.control_period_s)
    runtime = Runtime(manifest, engine, robot, (0.5, 0.0, 0.0), safety=SafetyCfg(soft_start_s=0.0,
                      max_tilt_deg=89.9))  # fmt: skip
    samples = []
    for i in range(WARMUP + calls):
        robot.wait_until(i * manifest.control_period_s)
        start = time.perf_counter_ns()
        runtime.step()
        if i >= WARMUP:
            samples.append(time.perf_counter_ns() - start)
    if runtime.safety.stopped or runtime.stats.policy_steps < calls:
        raise RuntimeError(f"the policy did not run at every tick ({runtime.safety.counters.estop_reason}).")
    return percentiles_ms(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", type=Path, default=None, help="run directory (exported to <run>/deploy if needed)"
    )
    parser.add_argument(
        "--policy", type=Path, default=None, help="export directory (deploy.json, policy files)"
    )
    parser.add_argument("--calls", type=int, default=10_000, help="timed calls per measurement (>= 10,000)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if (args.run is None) == (args.policy is None):
        raise SystemExit("error: pass either --run RUN_DIR or --policy EXPORT_DIR.")
    policy_dir = args.policy or args.run / "deploy"
    if args.run is not None and not (policy_dir / MANIFEST_NAME).is_file():
        export_policy(args.run, policy_dir)
    manifest = Manifest.load(policy_dir)
    run_dir = Path(manifest.source["run"])
    inputs = probe_observations(load_policy(run_dir), count=1024)  # timing: any inputs in the trained range
    names, states = record_states(policy_dir, manifest)

    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
        "policy": str(policy_dir), "kind": manifest.source.get("kind"), "robot": manifest.robot,
        "input_size": manifest.observation.input_size, "batch": 1, "threads": 1,
    }  # fmt: skip
    for name in ENGINES:
        engine = load_engine(policy_dir, name, manifest.policy_files)
        result[f"inference_{name}"] = time_inference(engine, inputs, args.calls)
        result[f"runtime_step_{name}"] = time_runtime_step(manifest, engine, names, states, args.calls)
    result["runtime_step_p99_ms"] = result["runtime_step_onnx"]["p99_ms"]
    result["target_ms"] = 1.0
    result["meets_target"] = result["runtime_step_p99_ms"] <= 1.0
    report(result, args.json)


if __name__ == "__main__":
    main()
