"""`train.py robot`: compile a robot description and report what the simulator will use.

Meant for a new robot file: it resolves every name, prints the joints in policy order with their
gains and limits, and drops the robot on flat ground for half a second to show that it lands on
its feet at the configured height.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from humanoid_prior.envs.model_builder import RobotModel, build_model
from humanoid_prior.envs.robots import select_robot


@dataclass
class RobotCheckArgs:
    """Compile a robot and print its summary."""

    robot: str = "g1"
    """Built-in robot name (g1, h1, t1, berkeley_humanoid)."""
    robot_file: Path | None = None
    """A YAML/TOML robot description; overrides --robot."""
    drop_seconds: float = 0.5
    """How long to drop the robot on flat ground at its default pose."""


def drop_test(rm: RobotModel, seconds: float) -> tuple[float, float, np.ndarray]:
    """Drop the robot 2 cm above its nominal height; return min and final base height and foot contacts."""
    m, d = rm.model, mujoco.MjData(rm.model)
    d.qpos[:] = rm.default_qpos(rm.robot.nominal_base_height + 0.02)
    d.ctrl[:] = rm.robot.default_joint_pos
    lowest = np.inf
    for _ in range(max(1, round(seconds / m.opt.timestep))):
        mujoco.mj_step(m, d)
        lowest = min(lowest, float(d.qpos[rm.base_qpos_adr + 2]))
    contacts = np.array([d.sensordata[rm.sensor_slices[f"foot{i}_contact"]][0]
                         for i in range(len(rm.robot.feet_bodies))])  # fmt: skip
    return lowest, float(d.qpos[rm.base_qpos_adr + 2]), contacts


def run_robot_check(args: RobotCheckArgs) -> str:
    """Build the robot and return a human-readable report."""
    robot = select_robot(args.robot, args.robot_file)
    rm = build_model(robot)
    m = rm.model
    mass = float(m.body_subtreemass[m.body(robot.base_body).id])
    lines = [
        f"robot '{robot.name}' from {robot.mjcf}",
        f"  mass {mass:.1f} kg, nq {m.nq}, nv {m.nv}, {rm.num_joints} actuated joints, "
        f"physics dt {m.opt.timestep * 1e3:.1f} ms",
        f"  base '{robot.base_body}', imu '{robot.imu_site}', feet {', '.join(robot.feet_bodies)}",
        f"  {'#':>2} {'joint':<28} {'default':>8} {'kp':>7} {'kd':>6} {'limit':>7} {'range (rad)':>18}",
    ]
    for i, name in enumerate(robot.actuated_joints):
        lo, hi = rm.joint_range[i]
        lines.append(
            f"  {i:>2} {name:<28} {robot.default_joint_pos[i]:>8.3f} {robot.kp[i]:>7.1f} {robot.kd[i]:>6.2f} "
            f"{robot.torque_limits[i]:>7.1f} {f'[{lo:.2f}, {hi:.2f}]':>18}"
        )
    lowest, final, contacts = drop_test(rm, args.drop_seconds)
    nominal = robot.nominal_base_height
    verdict = "ok" if lowest > 0.8 * nominal and (contacts > 0).all() else "CHECK GAINS / DEFAULT POSE"
    lines.append(
        f"  drop test {args.drop_seconds:.2f} s: base min {lowest:.3f} m, final {final:.3f} m "
        f"(nominal {nominal:.3f} m), foot contacts {contacts.astype(int).tolist()} -> {verdict}"
    )
    return "\n".join(lines)
