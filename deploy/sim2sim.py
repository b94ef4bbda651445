"""Run an exported policy on the `mujoco` backend and measure what it did (tracking, falls, loop timing).

Shared by `train.py deploy --backend mujoco` and `benchmarks/sim2sim.py`. Tracking is measured as the
training evaluation measures it (`humanoid_prior.evaluation`): per policy step, the planar velocity
error |command_xy - base_lin_vel_xy| in the base frame and the yaw-rate error against the gyro, averaged
over the steps before a fall. A fall is a base contact, the base below half its nominal height, or an
emergency stop of the safety layer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .inference import load_engine
from .manifest import Manifest
from .mujoco_robot import MujocoRobot, SimRobotCfg
from .runtime import Runtime


@dataclass
class Sim2SimResult:
    """One sim2sim episode."""

    command: tuple[float, float, float]
    seconds: float
    """Policy time simulated (after the soft start)."""
    lin_vel_error: float
    yaw_rate_error: float
    fell: bool
    fall_time_s: float | None
    distance: float
    loop: dict[str, Any]
    frames: list[np.ndarray] = dataclasses.field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Without the frames."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "frames"}


def run_sim2sim(
    policy_dir: Path,
    command: tuple[float, float, float] = (0.5, 0.0, 0.0),
    seconds: float = 10.0,
    engine: str = "onnx",
    sim: SimRobotCfg | None = None,
    soft_start_s: float | None = None,
    video: bool = False,
    video_size: tuple[int, int] = (480, 360),
) -> Sim2SimResult:
    """Soft start, then `seconds` of the policy holding `command` on a fresh `MujocoRobot`."""
    manifest = Manifest.load(policy_dir)
    safety = (
        manifest.safety
        if soft_start_s is None
        else dataclasses.replace(manifest.safety, soft_start_s=soft_start_s)
    )
    sim = sim or SimRobotCfg()
    if sim.gantry_s is None:
        sim = dataclasses.replace(sim, gantry_s=safety.soft_start_s)
    robot = MujocoRobot(manifest, sim)
    runtime = Runtime(
        manifest, load_engine(policy_dir, engine, manifest.policy_files), robot, command, safety
    )
    frames: list[np.ndarray] = []
    err = {"lin": 0.0, "yaw": 0.0, "n": 0}
    fall: dict[str, Any] = {"time": None}
    start_xy: list[np.ndarray] = []
    end_xy: list[np.ndarray] = []
    min_height = 0.5 * robot.nominal_height

    def on_tick(rt: Runtime) -> None:
        if video:
            frames.append(robot.render(*video_size))
        if fall["time"] is not None:
            return
        truth = robot.truth()
        if rt.safety.stopped or truth["base_contact"] or truth["base_pos"][2] < min_height:
            fall["time"] = rt.policy_step * manifest.control_period_s  # 0: fell before the policy acted
            return
        if rt.in_soft_start:
            return
        if not start_xy:
            start_xy.append(truth["base_pos"][:2])
        cmd = rt.command
        err["lin"] += float(np.linalg.norm(cmd[:2] - truth["base_lin_vel"][:2]))
        err["yaw"] += abs(float(cmd[2]) - truth["yaw_rate"])
        err["n"] += 1
        end_xy[:] = [truth["base_pos"][:2]]

    try:
        stats = runtime.run(safety.soft_start_s + seconds + manifest.control_period_s, on_tick=on_tick)
    finally:
        robot.close()
    n = max(err["n"], 1)
    distance = float(np.linalg.norm(end_xy[0] - start_xy[0])) if start_xy and end_xy else 0.0
    return Sim2SimResult(
        command=(float(command[0]), float(command[1]), float(command[2])), seconds=seconds,
        lin_vel_error=err["lin"] / n, yaw_rate_error=err["yaw"] / n, fell=fall["time"] is not None,
        fall_time_s=fall["time"], distance=distance, loop=stats.summary(), frames=frames,
    )  # fmt: skip
