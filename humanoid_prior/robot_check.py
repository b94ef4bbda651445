"""`train.py robot`: compile a robot description and report what the simulator will use.

Meant for a new robot file: it resolves every name, prints the joints in policy order with their
gains and limits, and drops the robot on flat ground, holding its default pose for a few seconds: it
reports the base height over time, how long the robot stayed up, and what went wrong if it did not.
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
    drop_seconds: float = 3.0
    """How long to hold the robot on flat ground at its default pose (a robot can take seconds to tip)."""


@dataclass
class DropResult:
    """What the robot did when held at its default pose on flat ground."""

    times: np.ndarray
    """Sample times (s)."""
    base_height: np.ndarray
    """Base height at each sample (m)."""
    tilt_deg: np.ndarray
    """Angle between the base's z axis and the vertical at each sample."""
    feet_touched: np.ndarray
    """Per foot: whether it touched the ground at any time."""
    stayed_up_s: float
    """Time until the base fell below half its nominal height or tilted past 45 degrees (the whole test
    if it never did)."""

    def verdict(self, nominal: float, seconds: float) -> str:
        """One line: ok, or what went wrong and what to check.

        A humanoid holding a fixed pose is an unbalanced inverted pendulum: the built-in robots, with the
        gains they walk with, topple as a rigid body after 0.8-2 s. So toppling after it settled is fine;
        sagging while upright (too weak to carry its weight) or tipping before it settled is not.
        """
        upright = self.tilt_deg < 20.0
        sag = self.base_height[upright].min() if upright.any() else 0.0
        if not self.feet_touched.any() and self.stayed_up_s < seconds:
            return ("no contact between the feet and the ground: the robot fell through the floor; do the "
                    "foot geoms collide (contype/conaffinity, or explicit <pair>s)?")  # fmt: skip
        if sag < 0.9 * nominal:
            return (f"sagged to {sag:.3f} m while upright (nominal {nominal:.3f} m): the gains are too weak "
                    "for its weight, or the default pose is not the standing one")  # fmt: skip
        if self.stayed_up_s < 0.5:
            return (f"tipped over after {self.stayed_up_s:.2f} s, before it settled: put the centre of mass "
                    "over the feet in the default pose, or check the gains")  # fmt: skip
        if not self.feet_touched.all():
            return (
                f"feet {np.flatnonzero(~self.feet_touched).tolist()} never touched the ground: check the pose"
            )
        if self.stayed_up_s < seconds:
            return (f"ok: landed and held the pose, then toppled as a rigid body after "
                    f"{self.stayed_up_s:.2f} s, as any held pose does (the policy balances it)")  # fmt: skip
        return "ok: stood for the whole test"


def drop_test(rm: RobotModel, seconds: float) -> DropResult:
    """Drop the robot 2 cm above its nominal height and hold the default pose with its PD gains."""
    m, d = rm.model, mujoco.MjData(rm.model)
    d.qpos[:] = rm.default_qpos(rm.robot.nominal_base_height + 0.02)
    d.ctrl[:] = rm.robot.default_joint_pos
    nominal = rm.robot.nominal_base_height
    steps = max(1, round(seconds / m.opt.timestep))
    every = max(1, round(0.05 / m.opt.timestep))
    times, heights, tilts = [], [], []
    touched = np.zeros(len(rm.robot.feet_bodies), dtype=bool)
    stayed_up = seconds
    for k in range(1, steps + 1):
        mujoco.mj_step(m, d)
        touched |= np.array([d.sensordata[rm.sensor_slices[f"foot{i}_contact"]][0] > 0
                             for i in range(len(touched))])  # fmt: skip
        _, x, y, _ = d.qpos[rm.base_qpos_adr + 3 : rm.base_qpos_adr + 7]
        tilt = float(np.degrees(np.arccos(np.clip(1.0 - 2.0 * (x * x + y * y), -1.0, 1.0))))
        height = float(d.qpos[rm.base_qpos_adr + 2])
        if stayed_up == seconds and (height < 0.5 * nominal or tilt > 45.0):
            stayed_up = k * m.opt.timestep
        if k % every == 0 or k == steps:
            times.append(k * m.opt.timestep)
            heights.append(height)
            tilts.append(tilt)
    return DropResult(np.array(times), np.array(heights), np.array(tilts), touched, stayed_up)


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
    drop = drop_test(rm, args.drop_seconds)
    nominal = robot.nominal_base_height
    marks = [t for t in (0.25, 0.5, 1.0, 2.0, 3.0, 5.0) if t <= args.drop_seconds]
    heights = ", ".join(f"{t:g} s {np.interp(t, drop.times, drop.base_height):.3f} m" for t in marks)
    lines += [
        f"  drop test, {args.drop_seconds:.1f} s at the default pose (nominal base height {nominal:.3f} m):",
        f"    base height {heights}; lowest {drop.base_height.min():.3f} m; "
        f"largest tilt {drop.tilt_deg.max():.0f} deg",
        f"    stayed up {drop.stayed_up_s:.2f} s; "
        f"feet touched the ground: {drop.feet_touched.astype(int).tolist()}",
        f"    -> {drop.verdict(nominal, args.drop_seconds)}",
    ]
    return "\n".join(lines)
