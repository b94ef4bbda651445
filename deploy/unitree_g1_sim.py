"""A simulated Unitree G1 that speaks the robot's DDS topics: test a controller before the robot.

One process steps the sim2sim MuJoCo G1 (`mujoco_robot.MujocoRobot`: 1 kHz physics, torque motors)
in real time. Each physics step applies the newest `LowCmd_` to the leg motors as the G1's motor
drivers do, tau = tau_ff + kp (q* - q) + kd (dq* - dq), clipped to the motor's limit; every 2 ms it
publishes a `LowState_` (pelvis IMU quaternion and gyro, accelerometer, motor q/dq/tau_est, a
millisecond `tick`, `mode_machine` 5 as a 29-motor G1 reports, the CRC). Joints welded in the model
(waist, arms) report their weld pose. A `LowCmd_` with a bad CRC is dropped, as the robot drops it.

The robot hangs in a gantry (base held, feet 3 cm above the ground) until `gantry_s` after the first
command with stiffness, so a controller can damp and soft-start it as on the real robot, then stands
on the ground. Unlike Unitree's unitree_mujoco it needs no C++ build and runs headless.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.envs.frames import quat_rotate_inverse

from .manifest import Manifest
from .mujoco_robot import MujocoRobot, SimRobotCfg
from .robot import JointCommand
from .unitree_g1 import G1_29DOF_MODE_MACHINE, DdsNode, motor_map
from .unitree_hg import LOWCMD_TOPIC, LOWSTATE_TOPIC, LowCmd_, LowState_, crc_ok, seal, zero_low_state

_GRAVITY = np.array([[0.0, 0.0, 9.81]])


@dataclass(frozen=True)
class SimulatedG1Cfg:
    """Where the simulated G1 publishes and how it runs."""

    network: str = "lo"
    domain_id: int = 1
    """unitree_mujoco's default for a simulator, so a sim never talks to a robot on domain 0."""
    state_period_s: float = 0.002
    """`LowState_` period (500 Hz)."""
    gantry_s: float = 2.0
    """Hold the base this long after the first command with stiffness: the runtime's soft start (2 s),
    so the robot stands on the ground when the policy takes over, as in `deploy.sim2sim`."""
    fall_height_fraction: float = 0.5
    """A base lower than this fraction of the nominal height counts as a fall in the stats."""


class SimulatedG1:
    """The simulated robot and its DDS endpoints (see the module docstring)."""

    def __init__(self, manifest: Manifest, cfg: SimulatedG1Cfg | None = None) -> None:
        self.cfg = cfg = cfg or SimulatedG1Cfg()
        self.sim = MujocoRobot(manifest, SimRobotCfg(real_time=True, gantry_s=float("inf")))
        self.motors = motor_map(self.sim.joint_names)  # the model's joints -> G1 motor slots
        self._lock = threading.Lock()
        self._command: Any = None  # LowCmd_ (its array fields are Any to mypy)
        self._released = False
        self.stats: dict[str, Any] = {"commands": 0, "crc_rejected": 0, "states": 0}
        self._published: dict[int, float] = {}
        self.e2e_s: list[float] = []
        self.node = DdsNode(cfg.domain_id, cfg.network)
        self._writer = self.node.writer(LOWSTATE_TOPIC, LowState_)
        self._reader = self.node.reader(LOWCMD_TOPIC, LowCmd_, self._on_command)
        self._state: Any = zero_low_state()
        self._state.mode_machine = G1_29DOF_MODE_MACHINE
        self.track: list[tuple[float, ...]] = []
        """Every 10th state's truth (50 Hz): time, x, y, z, base-frame v_x, v_y, yaw rate, base contact."""

    def _on_command(self, msg: Any) -> None:
        arrived = time.monotonic()
        if not crc_ok(msg):
            self.stats["crc_rejected"] += 1
            return
        with self._lock:
            self._command = msg
            self.stats["commands"] += 1
            answered = int(msg.reserve[0])  # 0: answers no state (the first state's tick is 2)
            sent = self._published.get(answered) if answered else None
            if sent is not None:
                self.e2e_s.append(arrived - sent)

    def _apply(self) -> None:
        """Hand the newest command to the motor drivers (the model's joints)."""
        with self._lock:
            msg, self._command = self._command, None
        if msg is None:
            return  # no new command: the drivers hold the last one
        m = [msg.motor_cmd[i] for i in self.motors]
        kp = np.array([c.kp if c.mode == 1 else 0.0 for c in m])
        kd = np.array([c.kd if c.mode == 1 else 0.0 for c in m])
        on = np.array([c.mode == 1 for c in m])
        cmd = JointCommand(
            np.array([c.q for c in m]), kp, kd, np.array([c.dq for c in m]),
            np.where(on, np.array([c.tau for c in m]), 0.0),
        )  # fmt: skip
        self.sim.send(cmd)
        if not self._released and (kp > 0).any():
            self._released = True
            self.sim.release_gantry(float(self.sim.data.time) + self.cfg.gantry_s)

    def _publish(self) -> None:
        s, sim = self._state, self.sim
        reading = sim.read_state()
        d = sim.data
        s.tick = round(float(d.time) * 1e3)
        quat = reading.base_quat
        s.imu_state.quaternion = [float(v) for v in quat]
        s.imu_state.gyroscope = [float(v) for v in reading.base_ang_vel]
        # The model has no accelerometer: report the specific force of a still IMU (gravity, body frame).
        s.imu_state.accelerometer = [float(v) for v in quat_rotate_inverse(quat[None], _GRAVITY)[0]]
        w, x, y, z = (float(v) for v in quat)
        s.imu_state.rpy = [
            float(np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))),
            float(np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))),
            float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))),
        ]
        tau = sim.joint_torques()
        for j, slot in enumerate(self.motors):
            ms = s.motor_state[slot]
            ms.mode, ms.q, ms.dq, ms.tau_est = (
                1,
                float(reading.joint_pos[j]),
                float(reading.joint_vel[j]),
                float(tau[j]),
            )
        seal(s)  # the robot's firmware seals in microseconds: latency counts from the write
        with self._lock:
            self._published[s.tick] = time.monotonic()
            if len(self._published) > 2000:
                for old in sorted(self._published)[:1000]:
                    del self._published[old]
        self._writer.write(s)  # type: ignore[attr-defined]
        self.stats["states"] += 1
        if self.stats["states"] % 10 == 0:
            truth = sim.truth()
            pos, vel = truth["base_pos"], truth["base_lin_vel"]
            row = (float(d.time), *map(float, pos), float(vel[0]), float(vel[1]), truth["yaw_rate"])
            self.track.append((*row, float(truth["base_contact"])))

    def run(self, seconds: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """Simulate and publish for `seconds` (or until `stop` is set); returns `summary()`."""
        stop = stop or threading.Event()
        dt = self.sim.cfg.physics_dt
        per_state = max(1, round(self.cfg.state_period_s / dt))
        t = self.sim.now()
        end = t + seconds
        step = 0
        while t < end and not stop.is_set():
            t += dt
            step += 1
            self._apply()  # the drivers act on the newest command from the next physics step on
            self.sim.wait_until(t)
            if step % per_state == 0:
                self._publish()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """Commands and states counted, end-to-end latency (when the controller echoes ticks), the track."""
        track = np.array(self.track) if self.track else np.zeros((0, 8))
        nominal = self.sim.nominal_height
        release = self.sim.gantry_until if self._released else np.inf
        walked = track[track[:, 0] >= release]
        out: dict[str, Any] = dict(self.stats)
        out["released_at_s"] = release if self._released else None
        if len(walked):
            out["fell"] = bool((walked[:, 3] < self.cfg.fall_height_fraction * nominal).any())
            out["distance_x_m"] = float(walked[-1, 1] - walked[0, 1])
            out["seconds_on_ground"] = float(walked[-1, 0] - walked[0, 0])
            out["min_base_height_m"] = float(walked[:, 3].min())
        out["nominal_base_height_m"] = float(nominal)
        out["track"] = [[round(v, 5) for v in row] for row in track.tolist()]
        if self.e2e_s:
            e2e = np.array(self.e2e_s) * 1e3
            out.update(e2e_p50_ms=float(np.percentile(e2e, 50)), e2e_p99_ms=float(np.percentile(e2e, 99)),
                       e2e_max_ms=float(e2e.max()), e2e_samples=len(e2e))  # fmt: skip
        return out

    def close(self) -> None:
        """Leave the DDS domain and free the model."""
        self._reader = self._writer = None
        self.node = None  # type: ignore[assignment]
        self.sim.close()


def tracking(summary: dict[str, Any], command: tuple[float, float, float]) -> dict[str, Any]:
    """Tracking errors as `deploy.sim2sim` measures them, from a simulated G1's summary.

    Per 20 ms sample on the ground: |command_xy - v_xy| (base frame) and |command_yaw - yaw rate|,
    averaged until a fall (base contact or the base below half its nominal height); the distance.
    """
    track = np.asarray(summary.get("track") or np.zeros((0, 8)), dtype=np.float64).reshape(-1, 8)
    release = summary.get("released_at_s")
    on_ground = track[track[:, 0] >= release] if release is not None else track[:0]
    low = on_ground[:, 3] < 0.5 * summary["nominal_base_height_m"]
    down = np.flatnonzero(low | (on_ground[:, 7] > 0))
    upright = on_ground[: down[0]] if len(down) else on_ground
    if not len(upright):
        return {
            "lin_vel_error": None,
            "yaw_rate_error": None,
            "fell": True,
            "fall_time_s": 0.0,
            "distance": 0.0,
        }
    cmd = np.asarray(command, dtype=np.float64)
    lin = np.linalg.norm(cmd[:2] - upright[:, 4:6], axis=1).mean()
    return {
        "lin_vel_error": float(lin), "yaw_rate_error": float(np.abs(cmd[2] - upright[:, 6]).mean()),
        "fell": bool(len(down)), "fall_time_s": float(on_ground[down[0], 0] - release) if len(down) else None,
        "distance": float(np.linalg.norm(upright[-1, 1:3] - upright[0, 1:3])),
    }  # fmt: skip


def serve(manifest_dir: Path, seconds: float, cfg: SimulatedG1Cfg, stats_path: Path | None) -> dict[str, Any]:
    """Simulate the robot of an export (its manifest's robot description) for `seconds` or until SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    g1 = SimulatedG1(Manifest.load(manifest_dir), cfg)
    print(
        f"simulated G1 on DDS domain {cfg.domain_id} via {cfg.network}: publishing {LOWSTATE_TOPIC}",
        flush=True,
    )
    try:
        summary = g1.run(seconds, stop)
    finally:
        g1.close()
    if stats_path is not None:
        stats_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
