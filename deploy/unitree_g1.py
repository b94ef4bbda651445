"""The `unitree_g1` robot backend: a Unitree G1 (or the simulated one) over DDS, `rt/lowstate` -> `rt/lowcmd`.

The robot publishes `LowState_` at 500 Hz and its motor drivers apply the latest `LowCmd_`
(tau = tau_ff + kp (q* - q) + kd (dq* - dq), at 1 kHz on the drivers). This backend listens on a DDS
domain on one network interface and:

* maps the manifest's joints to the G1's motor slots by name (`G1_MOTOR_JOINTS`, Unitree's 29-motor
  order), so a policy trained on the legs drives motors 0-11 and nothing else;
* holds every motor the policy does not drive (the joints welded in training: waist, arms) at its
  training pose with its own gains (`HOLD_GAINS`, Unitree's G1 deployment gains), and damps them too
  when the runtime damps;
* echoes `mode_machine` as the robot reports it, sends `mode_pr` 0 (joint-space ankle and waist) and
  motor mode 1 (enabled) on the 29 motors, 0 on the six unused slots, with the CRC;
* takes the states in the control thread itself (a DDS waitset, no listener calling Python 500 times
  a second) and stamps each when the waitset wakes on it (or, found after a sleep, with the poll
  before it: its age overstated, never understated), so the runtime's stale-state check trips when
  the robot goes silent; rejects a state whose CRC is wrong by raising from `read_state` (the runtime
  latches damping on it);
* triggers each control tick on the state that arrives nearest its scheduled time, so the policy acts
  on a fresh reading and the answer leaves within the same state period.

Nothing here imports MuJoCo or the trainer: it is what runs on the robot's computer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .manifest import Manifest
from .robot import JointCommand, Robot, RobotState
from .unitree_hg import (
    LOWCMD_TOPIC,
    LOWSTATE_TOPIC,
    LowCmd_,
    LowCmdEncoder,
    LowState_,
    crc_ok,
)
from .validation import InvalidInputError

G1_MOTOR_JOINTS = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint",
    "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint", "right_knee_joint",
    "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint",
    "right_elbow_joint", "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)  # fmt: skip
"""Motor slot i of `LowCmd_`/`LowState_` drives this joint (unitree_sdk2 g1 `JointIndex`; MuJoCo Menagerie
names, whose g1.xml lists its joints in the same order)."""

_ARM_GAINS = ((100.0, 2.0), (100.0, 2.0), (50.0, 2.0), (50.0, 2.0), (20.0, 1.0), (20.0, 1.0), (20.0, 1.0))
HOLD_GAINS: dict[str, tuple[float, float]] = {
    **{name: (300.0, 3.0) for name in G1_MOTOR_JOINTS[12:15]},
    **dict(zip(G1_MOTOR_JOINTS[15:22], _ARM_GAINS, strict=True)),
    **dict(zip(G1_MOTOR_JOINTS[22:29], _ARM_GAINS, strict=True)),
}
"""(kp, kd) of the waist and arm motors when held (Unitree's unitree_rl_gym G1 deployment config)."""

G1_29DOF_MODE_MACHINE = 5
"""`mode_machine` a 29-motor G1 reports (unitree_mujoco's G1 bridge; a 23-motor one reports 4)."""


def motor_map(joint_names: tuple[str, ...]) -> np.ndarray:
    """The G1 motor slot of each joint, or an error naming the joints a G1 does not have."""
    unknown = [j for j in joint_names if j not in G1_MOTOR_JOINTS]
    if unknown:
        raise ValueError(
            f"joints {unknown} are not motors of a Unitree G1 (its motors: {list(G1_MOTOR_JOINTS)}); "
            "deploy a policy trained for the G1 (robot 'g1'), or a robot file whose joints use those names."
        )
    return np.array([G1_MOTOR_JOINTS.index(j) for j in joint_names], dtype=np.intp)


def dds_config(network: str | None) -> str:
    """CycloneDDS configuration that binds to one network interface ("lo", "eth0"; None: Cyclone picks)."""
    iface = (
        f'<NetworkInterface name="{network}" priority="default" multicast="default"/>'
        if network
        else '<NetworkInterface autodetermine="true" priority="default" multicast="default"/>'
    )
    return (
        '<CycloneDDS><Domain Id="any"><General><Interfaces>'
        f"{iface}</Interfaces></General></Domain></CycloneDDS>"
    )


_DOMAINS: dict[int, tuple[object, str | None]] = {}
"""The configured DDS domains of this process (CycloneDDS configures a domain once per process)."""


class DdsNode:
    """One DDS participant on a domain and interface, with its topics (kept alive together)."""

    def __init__(self, domain_id: int, network: str | None) -> None:
        from cyclonedds.domain import Domain, DomainParticipant

        if not 0 <= domain_id <= 232:
            raise ValueError(f"DDS domain id {domain_id} is out of range: use 0-232 (a G1: 0).")
        if domain_id not in _DOMAINS:
            _DOMAINS[domain_id] = (Domain(domain_id, dds_config(network)), network)
        elif _DOMAINS[domain_id][1] != network:
            raise ValueError(
                f"DDS domain {domain_id} is already set up on interface {_DOMAINS[domain_id][1]!r} in this "
                f"process; use that interface or another domain id for {network!r}."
            )
        self.participant = DomainParticipant(domain_id)

    def writer(self, topic: str, kind: type) -> object:
        """A reliable, keep-last-1 writer (the SDK's defaults)."""
        from cyclonedds.pub import DataWriter
        from cyclonedds.topic import Topic

        return DataWriter(self.participant, Topic(self.participant, topic, kind))

    def polled_reader(self, topic: str, kind: type) -> tuple[object, Any]:
        """A best-effort, keep-last-1 reader its owner polls with `take`, and a waitset on it.

        The waitset blocks (in C, without the GIL) until the reader holds an unread sample: no DDS
        thread calls into Python.
        """
        from cyclonedds.core import InstanceState, Policy, Qos, ReadCondition, SampleState, ViewState, WaitSet
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        qos = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))
        topic_: Any = Topic(self.participant, topic, kind)
        reader = DataReader(self.participant, topic_, qos)
        waitset = WaitSet(self.participant)
        waitset.attach(ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any))
        return reader, waitset

    def reader(self, topic: str, kind: type, on_sample: object) -> object:
        """A best-effort, keep-last-1 reader calling `on_sample(sample)` on a DDS thread."""
        from cyclonedds.core import Listener, Policy, Qos
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        def on_data_available(reader: DataReader | None) -> None:
            if reader is None:  # a callback racing the reader's deletion at shutdown
                return
            for sample in reader.take(N=8):
                if isinstance(sample, kind):  # skips InvalidSample (a writer that went away)
                    on_sample(sample)  # type: ignore[operator]

        qos = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))
        topic_: Any = Topic(self.participant, topic, kind)
        return DataReader(self.participant, topic_, qos, Listener(on_data_available=on_data_available))


@dataclass(frozen=True)
class UnitreeG1Cfg:
    """Where the robot is on the network, and how its messages are checked."""

    network: str | None = None
    """Network interface facing the robot ("eth0", "enp3s0"; "lo" for the simulated G1 on this computer)."""
    domain_id: int = 0
    """DDS domain: 0 on a G1; tests and the simulated G1 may use another to keep runs apart."""
    check_crc: bool = True
    """Reject (and stop on) a `LowState_` whose CRC does not match; Unitree's Python simulator sends none."""
    state_period_s: float = 0.002
    """The robot's `LowState_` period (500 Hz): a tick waits at most half of it for a fresh state."""
    echo_state_tick: bool = False
    """Write the `tick` of the state each command answers into `LowCmd_.reserve[0]` (the simulated G1
    measures end-to-end latency from it; leave off on hardware)."""


class UnitreeG1Robot(Robot):
    """A Unitree G1 over DDS (see the module docstring)."""

    def __init__(self, manifest: Manifest, cfg: UnitreeG1Cfg | None = None) -> None:
        self.cfg = cfg = cfg or UnitreeG1Cfg()
        self.policy_motors = motor_map(manifest.joint_names)
        held = [i for i in range(len(G1_MOTOR_JOINTS)) if i not in set(self.policy_motors.tolist())]
        self.held_motors = np.array(held, dtype=np.intp)
        # Held joints stay at their training pose (welded at 0 in the G1 robot file).
        self.hold_kp = np.array([HOLD_GAINS.get(G1_MOTOR_JOINTS[i], (0.0, 0.0))[0] for i in held])
        self.hold_kd = np.array([HOLD_GAINS.get(G1_MOTOR_JOINTS[i], (0.0, 0.0))[1] for i in held])
        self.hold_pose = np.zeros(len(held))
        self._latest: Any = None  # LowState_ (its array fields are Any to mypy)
        self._arrival = float("-inf")
        self._arrivals = 0
        self._last_poll = time.monotonic()  # a state taken in the first poll arrived after this
        self._crc_errors = 0
        self._crc_error_seen = False
        self._answered_tick = 0
        self._encoder = LowCmdEncoder(len(G1_MOTOR_JOINTS))
        self._motor_mode = np.ones(len(G1_MOTOR_JOINTS))  # enabled; the six unused slots stay 0
        self.node = DdsNode(cfg.domain_id, cfg.network)
        self._writer = self.node.writer(LOWCMD_TOPIC, LowCmd_)
        self._reader: Any
        self._reader, self._arrived = self.node.polled_reader(LOWSTATE_TOPIC, LowState_)

    # --- DDS side (all in the control thread) ------------------------------------------------------

    def poll(self, woken_at: float | None = None) -> bool:
        """Take the states that arrived since the last poll; True if a valid one did.

        A new state is stamped `woken_at`, the time the waitset woke on it (its arrival, within a
        thread wake-up), or else with the time of the poll before this one: it came after that, so
        the age of a state found after a sleep is overstated, never understated. A state with a bad
        CRC is counted and latches the error `read_state` raises.
        """
        now = time.monotonic()
        fresh = False
        for msg in self._reader.take(N=4):
            if not isinstance(msg, LowState_):  # an InvalidSample: a writer that went away
                continue
            if self.cfg.check_crc and not crc_ok(msg):
                self._crc_errors += 1
                self._crc_error_seen = True
                continue
            self._latest, fresh = msg, True
        if fresh:
            self._arrival = self._last_poll if woken_at is None else woken_at
            self._arrivals += 1
        self._last_poll = now
        return fresh

    @property
    def crc_errors(self) -> int:
        """`LowState_` messages rejected for a bad CRC."""
        return self._crc_errors

    def wait_for_state(self, timeout_s: float = 2.0) -> LowState_:
        """The first `LowState_`, or an error that says where the robot was expected."""
        deadline = time.monotonic() + timeout_s
        while self._latest is None and time.monotonic() < deadline:
            if not self.poll():
                time.sleep(0.001)
        if self._latest is None:
            raise TimeoutError(
                f"no {LOWSTATE_TOPIC} from a G1 on DDS domain {self.cfg.domain_id} via interface "
                f"{self.cfg.network or '(auto)'} within {timeout_s:.1f} s: is the robot (or `train.py "
                "sim-g1`) running, the cable in and the interface the one facing it (`ip addr`)?"
            )
        return self._latest

    def wait_for_next_state(self, timeout_s: float = 0.1) -> float:
        """Block until the next state arrives; return its arrival time.

        A control schedule started there stays in phase with the robot's state stream, so each tick
        finds a fresh state.
        """
        self.poll()  # what arrived before now is not "next"
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if self._arrived.wait(int(left * 1e9)) and self.poll(woken_at=time.monotonic()):
                break
        return self._arrival

    def remote(self) -> bytes:
        """The wireless remote's 40 bytes of the newest state (zeros before the first)."""
        return bytes(self._latest.wireless_remote) if self._latest is not None else bytes(40)

    # --- Robot interface ----------------------------------------------------------------------------

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The G1's 29 motors, in motor-slot order."""
        return G1_MOTOR_JOINTS

    def now(self) -> float:
        """The runtime computer's monotonic clock (s); states are stamped with it on arrival."""
        return time.monotonic()

    def wait_until(self, t: float) -> None:
        """Return when the state nearest `t` has arrived (at most half a state period after `t`)."""
        half = 0.5 * self.cfg.state_period_s
        delay = t - half - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        while not self._arrival >= t - half:
            if self.poll():
                continue
            left = t + half - time.monotonic()
            if left <= 0:
                return  # no state in time: the runtime reads the old one and its age decides
            if self._arrived.wait(int(left * 1e9)):  # blocks in C until a state is unread (or time is up)
                self.poll(woken_at=time.monotonic())

    def read_state(self) -> RobotState:
        """The newest state (29 motors); raises `InvalidInputError` after a state with a bad CRC."""
        self.poll()
        if self._crc_error_seen:
            raise InvalidInputError(
                f"a {LOWSTATE_TOPIC} message failed its CRC check ({self._crc_errors} so far): "
                "the link is corrupting messages or another program publishes on the topic"
            )
        msg, arrived = self._latest, self._arrival
        if msg is None:
            raise InvalidInputError(f"no {LOWSTATE_TOPIC} received yet")
        self._answered_tick = int(msg.tick)
        motors = msg.motor_state[: len(G1_MOTOR_JOINTS)]
        imu = msg.imu_state
        return RobotState(
            time=arrived,
            joint_pos=np.array([m.q for m in motors]),
            joint_vel=np.array([m.dq for m in motors]),
            base_ang_vel=np.array(imu.gyroscope, dtype=np.float64),
            base_quat=np.array(imu.quaternion, dtype=np.float64),
        )

    def send(self, command: JointCommand) -> None:
        """Write a `LowCmd_`: the policy's motors from `command`, the others held (or damped with it)."""
        target = np.asarray(command.target, dtype=np.float64).copy()
        kp = np.asarray(command.kp, dtype=np.float64).copy()
        kd = np.asarray(command.kd, dtype=np.float64).copy()
        h = self.held_motors
        target[h] = self.hold_pose
        kp[h] = 0.0 if command.damping else self.hold_kp
        kd[h] = self.hold_kd
        mode_machine = int(self._latest.mode_machine) if self._latest is not None else 0
        # Only a command computed from a state answers it (damping before arming answers none: 0).
        reserve = (self._answered_tick if self.cfg.echo_state_tick else 0, 0, 0, 0)
        self._answered_tick = 0
        msg = self._encoder.encode(mode_machine, self._motor_mode, target, kp, kd, reserve)
        self._writer.write(msg)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Leave the DDS domain."""
        self._reader = self._writer = None
        self.node = None  # type: ignore[assignment]
