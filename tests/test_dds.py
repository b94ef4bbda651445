"""The Unitree G1 backend over DDS (loopback only): messages and CRC, joint map, safety, a walk on the sim G1.

Each test uses its own DDS domain id so that no two see each other's messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest

from humanoid_prior.deploy.hardware_session import HeldCommand, run_session
from humanoid_prior.deploy.inference import load_engine
from humanoid_prior.deploy.manifest import Manifest
from humanoid_prior.deploy.operator import RemoteReading, parse_remote, remote_bytes, remote_command
from humanoid_prior.deploy.runtime import Runtime
from humanoid_prior.deploy.unitree_g1 import (
    G1_MOTOR_JOINTS,
    HOLD_GAINS,
    DdsNode,
    UnitreeG1Cfg,
    UnitreeG1Robot,
    motor_map,
)
from humanoid_prior.deploy.unitree_hg import (
    LOWCMD_TOPIC,
    LOWSTATE_TOPIC,
    LowCmd_,
    LowCmdEncoder,
    LowState_,
    crc_of,
    crc_ok,
    seal,
    zero_low_cmd,
    zero_low_state,
)
from humanoid_prior.envs.robots import get_robot, resolve_mjcf

REPO = Path(__file__).resolve().parents[1]
STUDENT = REPO / "tests" / "data" / "g1_student"
"""A walking G1 student exported by `make train` (tests/data/README.md says which run and machine)."""


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return Manifest.load(STUDENT)


class Inbox:
    """The newest message on a topic, and how many arrived."""

    def __init__(self) -> None:
        self.latest: Any = None
        self.count = 0
        self.arrived = threading.Event()

    def __call__(self, msg: Any) -> None:
        self.latest, self.count = msg, self.count + 1
        self.arrived.set()

    def wait(self, timeout: float = 5.0) -> Any:
        assert self.arrived.wait(timeout), "no message arrived over DDS loopback"
        self.arrived.clear()
        return self.latest


def standing_state(manifest: Manifest, tick: int) -> Any:
    """A sealed LowState_ of an upright G1 at the policy's default pose."""
    s: Any = zero_low_state()
    s.tick, s.mode_machine = tick, 5
    s.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
    for q, slot in zip(manifest.default_joint_pos, motor_map(manifest.joint_names), strict=True):
        s.motor_state[slot].q = q
    return seal(s)


def step_until_received(runtime: Runtime, inbox: Inbox, timeout: float = 5.0) -> Any:
    """Tick until the command reaches `inbox` (the first ticks may precede DDS discovery)."""
    inbox.arrived.clear()
    deadline = time.monotonic() + timeout
    while not inbox.arrived.is_set() and time.monotonic() < deadline:
        runtime.step()
        time.sleep(0.02)
    return inbox.wait(0.5)


class ZeroPolicy:
    """An engine that always outputs the default pose (action 0)."""

    def __init__(self, manifest: Manifest) -> None:
        self.input_size, self.output_size = manifest.observation.input_size, manifest.num_joints

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros((1, self.output_size), dtype=np.float32)


# --- messages ------------------------------------------------------------------------------------------


def test_dds_messages_round_trip_with_the_crc_unitree_computes() -> None:
    # Reference values computed with Unitree's own crc32_core (unitree_sdk2_python utils/crc.py).
    assert crc_of(zero_low_cmd()) == 0xFE172F9F
    assert crc_of(zero_low_cmd(mode_machine=5)) == 0x54F027ED
    assert crc_of(zero_low_state()) == 0xD64BB04A
    cmd: Any = zero_low_cmd(mode_machine=5)
    for i in range(29):
        m = cmd.motor_cmd[i]
        m.mode, m.q, m.kp, m.kd = 1, float(np.float32(0.1 * i)), 60.0, 1.0
    assert crc_of(cmd) == 0xCC005D43
    seal(cmd)
    # The fast CDR codec writes exactly what cyclonedds' generic serializer writes, and reads it back.
    from cyclonedds.idl import IdlStruct

    assert cmd.serialize() == IdlStruct.serialize(cmd) and LowCmd_.deserialize(cmd.serialize()) == cmd
    # The backend's array encoder gives the same sealed bytes as the dataclass path.
    q = np.array([m.q for m in cmd.motor_cmd[:29]])
    encoded = LowCmdEncoder(29).encode(5, np.ones(29), q, np.full(29, 60.0), np.ones(29)).serialize()
    assert encoded == IdlStruct.serialize(cmd)
    with pytest.raises(ValueError, match="35 motor slots"):
        LowCmdEncoder(36)
    state = standing_state(Manifest.load(STUDENT), tick=42)
    state.wireless_remote = bytes(range(40))
    seal(state)
    assert state.serialize() == IdlStruct.serialize(state)
    assert LowState_.deserialize(state.serialize()) == LowState_.__idl__.deserialize(state.serialize())
    # ... and over DDS on loopback
    node = DdsNode(171, "lo")
    inbox = Inbox()
    reader = node.reader(LOWCMD_TOPIC, LowCmd_, inbox)
    writer: Any = node.writer(LOWCMD_TOPIC, LowCmd_)
    deadline = time.monotonic() + 5.0
    while inbox.count == 0 and time.monotonic() < deadline:  # discovery takes a moment
        writer.write(cmd)
        time.sleep(0.05)
    got = inbox.wait()
    assert got == cmd and crc_ok(got) and got.motor_cmd[28].q == pytest.approx(2.8, abs=1e-6)
    del reader, writer


def test_dds_a_corrupted_crc_is_rejected_and_the_robot_stays_damped(manifest: Manifest) -> None:
    state = standing_state(manifest, tick=1)
    bad: Any = LowState_.deserialize(state.serialize())
    bad.motor_state[3].q += 0.01  # one bit of one joint angle changed in transit
    assert crc_ok(state) and not crc_ok(bad)
    node = DdsNode(172, "lo")
    commands = Inbox()
    listening = node.reader(LOWCMD_TOPIC, LowCmd_, commands)  # noqa: F841 - a dropped reader leaves
    publisher: Any = node.writer(LOWSTATE_TOPIC, LowState_)
    robot = UnitreeG1Robot(manifest, UnitreeG1Cfg(network="lo", domain_id=172))
    try:
        while not robot.poll():
            publisher.write(state)
            time.sleep(0.02)
        runtime = Runtime(manifest, ZeroPolicy(manifest), robot)
        runtime.step()
        assert runtime.safety.counters.estop_reason is None
        publisher.write(bad)
        deadline = time.monotonic() + 2.0
        while robot.crc_errors == 0 and time.monotonic() < deadline:
            robot.poll()
            time.sleep(0.01)
        assert robot.crc_errors == 1
        for tick in range(2, 6):  # good states again: the stop holds
            publisher.write(standing_state(manifest, tick))
            time.sleep(0.02)
            runtime.step()
        assert "failed its CRC check" in (runtime.safety.counters.estop_reason or "")
        sent = step_until_received(runtime, commands)
        legs = [sent.motor_cmd[i] for i in range(12)]
        assert all(m.kp == 0.0 and m.kd > 0.0 for m in legs), "damping on the policy's motors"
        assert all(m.kp == 0.0 for m in sent.motor_cmd[12:29]), "the held joints are damped too"
        assert crc_ok(sent) and sent.mode_machine == 5
    finally:
        robot.close()


def test_dds_joint_map_follows_the_manifest_and_the_g1_motor_order(manifest: Manifest) -> None:
    # Unitree's motor order is the Menagerie G1's joint order.
    model = mujoco.MjModel.from_xml_path(str(resolve_mjcf(get_robot("g1").mjcf)))
    hinges = [
        model.joint(i).name for i in range(model.njnt) if model.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE
    ]
    assert tuple(hinges) == G1_MOTOR_JOINTS
    assert motor_map(manifest.joint_names).tolist() == list(range(12))
    reordered = tuple(reversed(manifest.joint_names))
    assert motor_map(reordered).tolist() == list(range(11, -1, -1))
    with pytest.raises(ValueError, match=r"\['left_toe_joint'\] are not motors of a Unitree G1"):
        motor_map(("left_hip_pitch_joint", "left_toe_joint"))
    node = DdsNode(173, "lo")
    commands = Inbox()
    listening = node.reader(LOWCMD_TOPIC, LowCmd_, commands)  # noqa: F841 - a dropped reader leaves
    robot = UnitreeG1Robot(manifest, UnitreeG1Cfg(network="lo", domain_id=173))
    try:
        assert robot.held_motors.tolist() == list(range(12, 29))
        from humanoid_prior.deploy.robot import JointCommand

        target = np.arange(29) * 0.01
        deadline = time.monotonic() + 5.0
        while commands.count == 0 and time.monotonic() < deadline:
            robot.send(JointCommand(target, np.full(29, 7.0), np.full(29, 0.5)))
            time.sleep(0.05)
        sent = commands.wait()
        assert [round(sent.motor_cmd[i].q, 4) for i in range(12)] == [round(0.01 * i, 4) for i in range(12)]
        for i in range(12, 29):  # held at the training pose with their own gains, not the command's
            kp, kd = HOLD_GAINS[G1_MOTOR_JOINTS[i]]
            assert (sent.motor_cmd[i].q, sent.motor_cmd[i].kp, sent.motor_cmd[i].kd) == (0.0, kp, kd)
        assert all(m.mode == 1 for m in sent.motor_cmd[:29]) and all(m.mode == 0 for m in sent.motor_cmd[29:])
    finally:
        robot.close()


def test_dds_stale_state_goes_to_damping_and_stays(manifest: Manifest) -> None:
    node = DdsNode(174, "lo")
    commands = Inbox()
    listening = node.reader(LOWCMD_TOPIC, LowCmd_, commands)  # noqa: F841 - a dropped reader leaves
    publisher: Any = node.writer(LOWSTATE_TOPIC, LowState_)
    robot = UnitreeG1Robot(manifest, UnitreeG1Cfg(network="lo", domain_id=174))
    # A 0.25 s threshold: on a loaded 2-core CI machine the publishing thread was once descheduled for
    # 140 ms, which tripped the robot's 60 ms threshold before the planned silence. The mechanism is the same.
    safety = replace(manifest.safety, stale_state_s=0.25)
    runtime = Runtime(manifest, ZeroPolicy(manifest), robot, safety=safety)
    stop = threading.Event()
    state = standing_state(manifest, 1)
    last_write = [0.0]

    def publish(until: float) -> None:
        while time.monotonic() < until and not stop.is_set():
            state.tick += 1
            publisher.write(seal(state))
            last_write[0] = time.monotonic()
            time.sleep(0.002)

    try:
        threading.Thread(target=publish, args=(time.monotonic() + 0.8,), daemon=True).start()
        robot.wait_for_state(timeout_s=5.0)
        stats = runtime.run(1.2)  # the robot goes silent 0.8 s in
        reason = stats.safety.estop_reason or ""
        assert reason.startswith("stale robot state"), reason
        # Tripped by the silence, soon after. A state is stamped with the poll before it (its age is never
        # understated), at most one control period before it came.
        silent_for = (stats.safety.estop_time or 0.0) - last_write[0]
        period = manifest.control_period_s
        assert safety.stale_state_s - period < silent_for < safety.stale_state_s + 0.1, silent_for
        publisher.write(standing_state(manifest, 10_000))  # it speaks again: the stop holds
        time.sleep(0.05)
        sent = step_until_received(runtime, commands)
        assert runtime.safety.counters.estop_reason == reason
        assert all(sent.motor_cmd[i].kp == 0.0 and sent.motor_cmd[i].kd > 0 for i in range(29))
    finally:
        stop.set()
        robot.close()


def test_dds_remote_sticks_give_commands_within_the_trained_ranges(manifest: Manifest) -> None:
    ranges = manifest.command_ranges
    full = RemoteReading(frozenset({"start"}), lx=-1.0, ly=1.0, rx=0.5, ry=0.0)
    raw = remote_bytes(full)
    assert parse_remote(raw) == full
    cmd = remote_command(parse_remote(raw), ranges)
    assert cmd[0] == pytest.approx(ranges["lin_vel_x"][1]) and cmd[1] == pytest.approx(ranges["lin_vel_y"][1])
    assert cmd[2] == pytest.approx(0.5 * ranges["ang_vel_yaw"][0])  # stick right: turn right (negative yaw)
    back = remote_command(RemoteReading(frozenset(), 0.0, -1.0, 0.0, 0.0), ranges)
    assert back[0] == pytest.approx(ranges["lin_vel_x"][0]) and back[1] == 0.0
    with pytest.raises(ValueError, match="40 bytes"):
        parse_remote(bytes(24))


# --- the simulated G1 over DDS ---------------------------------------------------------------------------


def start_sim_g1(domain: int, seconds: float, stats: Path) -> subprocess.Popen[str]:
    args = [sys.executable, str(REPO / "train.py"), "sim-g1", "--policy", str(STUDENT), "--domain-id",
            str(domain), "--seconds", str(seconds), "--stats", str(stats)]  # fmt: skip
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MUJOCO_GL": "egl"})  # fmt: skip


@pytest.mark.slow
def test_dds_runtime_walks_the_exported_student_on_the_simulated_g1(
    manifest: Manifest, tmp_path: Path
) -> None:
    stats_path = tmp_path / "sim.json"
    walk_s = 10.0
    sim = start_sim_g1(175, manifest.safety.soft_start_s + walk_s + 20.0, stats_path)
    robot = UnitreeG1Robot(manifest, UnitreeG1Cfg(network="lo", domain_id=175))
    try:
        robot.wait_for_state(timeout_s=30.0)
        # This test is about walking over DDS; the stale-state stop has its own test above. The sim G1
        # shares 2 cores with this loop, and one 61 ms deschedule of its publisher tripped the real
        # 60 ms threshold in CI (stop 22), so the walk runs with the threshold that test uses.
        safety = replace(manifest.safety, stale_state_s=0.25)
        engine = load_engine(STUDENT, "onnx", manifest.policy_files)
        runtime = Runtime(manifest, engine, robot, safety=safety)
        stats = run_session(
            runtime, robot, HeldCommand((0.5, 0.0, 0.0)), manifest.safety.soft_start_s + walk_s
        )
    finally:
        robot.close()
        sim.terminate()
        sim.communicate(timeout=30)
    assert stats.safety.estop_reason is None, stats.safety.estop_reason
    summary = json.loads(stats_path.read_text())
    assert summary["crc_rejected"] == 0
    assert summary["commands"] >= 0.95 * stats.steps  # the first commands may precede DDS discovery
    assert not summary["fell"], summary
    # Released from the gantry half a second after the soft start: ~9.5 s of walking at 0.5 m/s.
    assert summary["distance_x_m"] >= 3.5, summary
