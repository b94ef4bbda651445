"""The runtime fails safe and validates its inputs at the door (issue 11, findings 5, 6, 7).

No training here: the manifest is G1's from the robot registry with the student's proprio layout, the
policy a stub, the robot a script whose readings (malformed ones too) the test sets.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from conftest import Recorder

from humanoid_prior.deploy.manifest import Manifest, ManifestError, ObsLayout, ObsTerm, SafetyCfg
from humanoid_prior.deploy.robot import JointCommand, Robot, RobotState
from humanoid_prior.deploy.runtime import Runtime
from humanoid_prior.envs.observations import PROPRIO_TERMS
from humanoid_prior.envs.robots import get_robot

G1 = get_robot("g1")
J = len(G1.actuated_joints)
TERM_SIZES = {"base_ang_vel": 3, "projected_gravity": 3, "commands": 3, "joint_pos": J, "joint_vel": J,
              "actions": J, "gait_clock": 2}  # fmt: skip
PERIOD = 0.02
FAST_START = SafetyCfg(soft_start_s=0.1)  # the policy acts after 5 ticks


def g1_manifest() -> Manifest:
    """A valid G1 manifest as an export writes it (the last joint unlimited, as `null` in the file)."""
    terms = tuple(ObsTerm(t.name, TERM_SIZES[t.name], t.scale, t.clip) for t in PROPRIO_TERMS)
    return Manifest(
        robot="g1", joint_names=G1.actuated_joints, default_joint_pos=G1.default_joint_pos, kp=G1.kp,
        kd=G1.kd, torque_limits=G1.torque_limits,
        joint_limits=((-2.5, 2.5),) * (J - 1) + ((-math.inf, math.inf),), action_scale=G1.action_scale,
        action_clip=10.0, control_period_s=PERIOD, gait_period_s=0.8,
        observation=ObsLayout("proprio", terms, history_len=2),
        command_ranges={"lin_vel_x": (-0.5, 1.0), "lin_vel_y": (-0.3, 0.3), "ang_vel_yaw": (-0.5, 0.5)},
        robot_description=dataclasses.asdict(G1),
    )  # fmt: skip


class ScriptedRobot(Robot):
    """Returns `state` (whatever the test put there) at clock `t`; records what the runtime sends."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.t = 0.0
        self.clock_fault: float | None = None
        self.read_fault: Exception | None = None
        self.state: Any = self.healthy()
        self.sent: list[JointCommand] = []

    def healthy(self, quat: np.ndarray | None = None) -> RobotState:
        """A fresh, valid reading at the default pose."""
        q = np.array([1.0, 0.0, 0.0, 0.0]) if quat is None else quat
        return RobotState(self.t, self.manifest.array("default_joint_pos"), np.zeros(J), np.zeros(3), q)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.manifest.joint_names

    def now(self) -> float:
        return self.t if self.clock_fault is None else self.clock_fault

    def wait_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def read_state(self) -> RobotState:
        if self.read_fault is not None:
            raise self.read_fault
        return self.state

    def send(self, command: JointCommand) -> None:
        self.sent.append(command)


class StubPolicy:
    """A fixed action (the test may change it); raises `fault` when set."""

    def __init__(self, manifest: Manifest) -> None:
        self.input_size = manifest.observation.input_size
        self.output_size = manifest.num_joints
        self.action = np.zeros((1, manifest.num_joints), dtype=np.float32)
        self.fault: Exception | None = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.fault is not None:
            raise self.fault
        return self.action.copy()


def walking(
    command: tuple[float, float, float] = (0.5, 0.0, 0.0),
) -> tuple[Runtime, ScriptedRobot, StubPolicy]:
    """A runtime past its soft start, the policy acting on healthy readings."""
    m = g1_manifest()
    robot, policy = ScriptedRobot(m), StubPolicy(m)
    runtime = Runtime(m, policy, robot, command, FAST_START)
    for _ in range(8):
        tick(runtime, robot)
    assert not runtime.in_soft_start and not runtime.safety.stopped and robot.sent[-1].kp.min() > 0
    return runtime, robot, policy


def tick(runtime: Runtime, robot: ScriptedRobot, state: Any = None) -> np.ndarray:
    """Advance the clock one period, give the robot `state` (default: a healthy reading) and step."""
    robot.t += PERIOD
    robot.state = robot.healthy() if state is None else state
    return runtime.step()


def assert_damping(runtime: Runtime, robot: ScriptedRobot, reason: str) -> None:
    """The stop latched for `reason` and the last command sent holds damping only, with finite targets."""
    assert reason in (runtime.safety.counters.estop_reason or ""), runtime.safety.counters.estop_reason
    sent = robot.sent[-1]
    assert np.all(sent.kp == 0.0) and np.allclose(sent.kd, runtime.manifest.array("kd"))
    assert np.isfinite(sent.target).all()


def _stopped(runtime: Runtime) -> str:
    return f"damping, latched; estop_reason: {runtime.safety.counters.estop_reason}"


def tilt_quat(deg: float, axis: np.ndarray | None = None) -> np.ndarray:
    axis = np.array([1.0, 0.0, 0.0]) if axis is None else axis / np.linalg.norm(axis)
    half = np.radians(deg) / 2
    return np.array([np.cos(half), *(np.sin(half) * axis)])


# --- finding 5: a fault inside a control step stops the robot, never raises -------------------------------


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("joint_pos", np.zeros(J - 1), "joint_pos has shape (11,), expected (12,)"),
        ("joint_vel", np.zeros(J + 1), "joint_vel has shape (13,), expected (12,)"),
        ("base_quat", np.array([1.0, 0.0, 0.0]), "base_quat has shape (3,), expected (4,)"),
        ("base_ang_vel", "spinning", "base_ang_vel is not numbers"),
    ],
)
def test_malformed_state_latches_damping_instead_of_raising(
    field: str, value: Any, reason: str, bad_input: Recorder
) -> None:
    runtime, robot, _ = walking()
    state = dataclasses.replace(robot.healthy(), **{field: value})
    tick(runtime, robot, state)  # raised out of step before, the walking targets still in force
    assert_damping(runtime, robot, "invalid robot state: " + reason)
    tick(runtime, robot)  # a healthy reading does not release the latched stop
    assert_damping(runtime, robot, reason)
    given = f"{value!r}" if isinstance(value, str) else f"of shape {np.shape(value)}"
    bad_input("robot runtime", f"state with {field} {given}", _stopped(runtime))


@pytest.mark.parametrize("fault", ["policy", "read_state", "wrong_length_command"])
def test_an_exception_in_the_step_latches_damping_and_is_reported(
    fault: str, caplog: pytest.LogCaptureFixture, bad_input: Recorder
) -> None:
    runtime, robot, policy = walking()
    if fault == "policy":
        policy.fault = RuntimeError("inference runtime lost its device")
        expected = "RuntimeError: inference runtime lost its device"
    elif fault == "read_state":
        robot.read_fault = TimeoutError("no state message for 100 ms")
        expected = "TimeoutError: no state message for 100 ms"
    else:
        runtime.command = np.zeros(4)  # bypassing set_command: the observation cannot take it
        expected = "exception in the control step: ValueError"
    sent = len(robot.sent)
    runtime.step()
    assert len(robot.sent) == sent + 1, "the failing tick still sends a command: damping"
    assert_damping(runtime, robot, expected)
    assert expected in caplog.text and "emergency stop" in caplog.text
    assert runtime.stats.summary()["estop"] == runtime.safety.counters.estop_reason
    bad_input("robot runtime", f"an exception inside the control step ({fault})", _stopped(runtime))


# --- finding 6: every input is validated at the door -------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [(math.nan, 0.0, 0.0), (0.2, math.inf, 0.0), (0.5,), (0.1, 0.2), (0, 0, 0, 1)]
)
def test_invalid_commands_are_rejected_and_the_last_valid_one_holds(
    bad: tuple[float, ...], bad_input: Recorder
) -> None:
    runtime, robot, _ = walking(command=(0.5, 0.0, 0.2))
    assert runtime.set_command(bad) is False
    np.testing.assert_array_equal(runtime.command, [0.5, 0.0, 0.2])
    counters = runtime.safety.counters
    assert counters.command_rejected == 1 and counters.command_error is not None
    assert ("non-finite" if len(bad) == 3 else "expected 3 values") in counters.command_error
    tick(runtime, robot)
    assert not runtime.safety.stopped, "a bad command must not drop a walking robot"
    assert runtime.observation is not None
    np.testing.assert_array_equal(runtime.observation.state.commands[0], [0.5, 0.0, 0.2])
    assert runtime.set_command((0.3, 0.0, 0.0)) is True and runtime.command[0] == 0.3
    bad_input(
        "robot runtime",
        f"command {bad}",
        f"refused ({counters.command_error}); the last valid command holds, the robot keeps walking",
    )


def test_an_invalid_start_command_fails_the_construction() -> None:
    m = g1_manifest()
    with pytest.raises(ValueError, match="non-finite command"):
        Runtime(m, StubPolicy(m), ScriptedRobot(m), (math.nan, 0.0, 0.0))


@pytest.mark.parametrize(
    ("ahead", "reason"),
    [
        (math.nan, "state time is nan"),
        (math.inf, "state time is inf"),
        (0.5, "0.500000 s ahead of the robot"),
    ],
)
def test_a_nan_or_future_state_timestamp_latches_damping(
    ahead: float, reason: str, bad_input: Recorder
) -> None:
    runtime, robot, _ = walking()
    state = robot.healthy()
    state.time = robot.t + PERIOD + ahead  # the clock at the tick, plus `ahead`
    tick(runtime, robot, state)  # the stale check passed these: now - NaN > limit is False
    assert_damping(runtime, robot, reason)
    bad_input("robot runtime", f"state timestamp {ahead} s ahead of the clock", _stopped(runtime))


def test_a_nan_robot_clock_latches_damping() -> None:
    runtime, robot, _ = walking()
    robot.clock_fault = math.nan
    tick(runtime, robot)
    assert_damping(runtime, robot, "the robot clock reads nan")


@pytest.mark.parametrize(
    ("scale", "ok"), [(3.0, False), (0.5, False), (0.0, False), (1.08, True), (0.93, True)]
)
def test_quaternion_norm_is_checked_and_small_drift_normalised(
    scale: float, ok: bool, bad_input: Recorder
) -> None:
    runtime, robot, _ = walking()
    q = tilt_quat(20.0)
    tick(runtime, robot, robot.healthy(quat=scale * q))
    if not ok:
        assert_damping(runtime, robot, f"base_quat has norm {scale:.3f}, not 1 ± 0.1")
        bad_input("robot runtime", f"quaternion of norm {scale}", _stopped(runtime))
        return
    assert not runtime.safety.stopped
    # The policy sees the gravity of the unit quaternion: a 20 deg tilt, not a longer vector.
    expected = [0.0, -np.sin(np.radians(20.0)), -np.cos(np.radians(20.0))]
    assert runtime.observation is not None
    np.testing.assert_allclose(runtime.observation.state.projected_gravity[0], expected, atol=1e-12)


# --- finding 7: the manifest's ranges, signs, limits and joint order ----------------------------------------


def _swap_legs(data: dict[str, Any]) -> dict[str, Any]:
    """Right leg first: names and every per-joint list swapped together (a consistent but wrong file)."""
    half = J // 2
    return {k: data[k][half:] + data[k][:half] for k in
            ("joint_names", "default_joint_pos", "kp", "kd", "torque_limits", "joint_limits")}  # fmt: skip


def _edit(data: dict[str, Any], key: str, index: int, value: Any) -> dict[str, Any]:
    values = list(data[key])
    values[index] = value
    return {key: values}


BAD_MANIFESTS: dict[str, tuple[Any, str]] = {
    "reversed_command_range": (
        lambda d: {"command_ranges": {**d["command_ranges"], "lin_vel_x": [0.5, -0.5]}},
        r"command_ranges\['lin_vel_x'\] is \(0.5, -0.5\): low > high; give the trained \[low, high\]",
    ),
    "command_range_without_zero": (
        lambda d: {"command_ranges": {**d["command_ranges"], "ang_vel_yaw": [0.2, 0.5]}},
        r"command_ranges\['ang_vel_yaw'\] is \(0.2, 0.5\): 0 is outside it; .* low <= 0 <= high",
    ),
    "negative_kp": (
        lambda d: _edit(d, "kp", 3, -150.0),
        r"kp\[3\] \('left_knee_joint'\) is -150.0; give a finite stiffness > 0",
    ),
    "negative_kd": (lambda d: _edit(d, "kd", 0, -2.0), r"kd\[0\] .* is -2.0; give a finite damping >= 0"),
    "zero_torque_limit": (
        lambda d: _edit(d, "torque_limits", 4, 0.0),
        r"torque_limits\[4\] \('left_ankle_pitch_joint'\) is 0.0; give a finite torque limit > 0",
    ),
    "nan_torque_limit": (lambda d: _edit(d, "torque_limits", 1, math.nan), r"torque_limits\[1\] .* is nan"),
    "reversed_joint_limits": (
        lambda d: _edit(d, "joint_limits", 2, [1.0, -1.0]),
        r"joint_limits\[2\] .* is \(1.0, -1.0\); give \(lower, upper\) with lower < upper",
    ),
    "tilt_limit_180": (
        lambda d: {"safety": {**d["safety"], "max_tilt_deg": 180.0}},
        r"safety.max_tilt_deg is 180.0; give a finite value in \(0, 90\) degrees",
    ),
    "zero_action_clip": (lambda d: {"action_clip": 0.0}, r"action_clip is 0.0; give a finite value > 0"),
    "swapped_legs": (
        _swap_legs,
        r"joint_names are in another order than robot 'g1' .* position 0 is 'right_hip_pitch_joint', "
        r"expected 'left_hip_pitch_joint'",
    ),
    "swapped_legs_checked_by_the_registry": (
        lambda d: {**_swap_legs(d), "robot_description": {}},
        r"joint_names are in another order than the built-in robot 'g1'",
    ),
    "unknown_robot_without_description": (
        lambda d: {"robot": "g2", "robot_description": {}},
        r"robot 'g2' is not a built-in robot .* joint_names cannot be checked; re-export",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_manifest_rejects_unsafe_values_naming_the_field_and_the_fix(case: str, bad_input: Recorder) -> None:
    data = g1_manifest().to_json()
    Manifest.from_json({**data, "robot_description": {}})  # unedited, it passes (registry check too)
    edit, message = BAD_MANIFESTS[case]
    with pytest.raises(ManifestError, match=message) as error:
        Manifest.from_json({**data, **edit(data)})
    assert "\n" not in str(error.value), "one line"
    bad_input("deploy manifest", case.replace("_", " "), error.value)


# --- fuzz: thousands of random, mostly malformed inputs ----------------------------------------------------

_BAD_STATES = ("short_joints", "long_vel", "quat3", "quat_2d", "quat_norm", "nan", "inf", "huge",
               "future_time", "nan_time", "stale_time", "not_numbers", "nan_clock")  # fmt: skip
_BAD_COMMANDS = ("nan", "inf", "short", "long", "scalar", "text")


def _valid_state(rng: np.random.Generator, robot: ScriptedRobot) -> RobotState:
    """A plausible reading: near the default pose, fresh, tilted < 30 deg, quaternion drift < 5 %."""
    q = tilt_quat(rng.uniform(0, 30), rng.normal(size=3)) * rng.uniform(0.95, 1.05)
    return RobotState(robot.t - rng.uniform(0, 0.04), robot.manifest.array("default_joint_pos") +
                      rng.uniform(-0.5, 0.5, J), rng.uniform(-5, 5, J), rng.uniform(-2, 2, 3), q)  # fmt: skip


def _bad_state(kind: str, rng: np.random.Generator, robot: ScriptedRobot) -> RobotState:
    s = _valid_state(rng, robot)
    field = str(rng.choice(["joint_pos", "joint_vel", "base_ang_vel", "base_quat"]))
    if kind == "short_joints":
        s.joint_pos = s.joint_pos[: rng.integers(0, J)]
    elif kind == "long_vel":
        s.joint_vel = np.zeros(J + rng.integers(1, 5))
    elif kind == "quat3":
        s.base_quat = s.base_quat[:3]
    elif kind == "quat_2d":
        s.base_quat = s.base_quat[None]
    elif kind == "quat_norm":
        s.base_quat = s.base_quat * rng.choice([0.0, 0.3, 0.85, 1.15, 3.0, 1e6])
    elif kind in ("nan", "inf", "huge"):
        values = np.array(getattr(s, field))
        bad = {"nan": math.nan, "inf": -math.inf, "huge": 10 ** rng.uniform(5, 300)}[kind]
        values[rng.integers(0, values.size)] = bad
        setattr(s, field, values)
    elif kind == "future_time":
        s.time = robot.t + rng.uniform(1e-3, 10.0)
    elif kind == "nan_time":
        s.time = rng.choice([math.nan, math.inf, -math.inf])
    elif kind == "stale_time":
        s.time = robot.t - rng.uniform(0.07, 5.0)
    elif kind == "not_numbers":
        setattr(s, field, ["abc", None, [[1.0], [2.0, 3.0]]][rng.integers(0, 3)])
    return s


def _command(kind: str, rng: np.random.Generator) -> Any:
    valid = rng.uniform(-3, 3, 3) * rng.choice([1.0, 1e9])  # out of range or huge: clamped, not refused
    return {"valid": valid, "nan": [math.nan, 0.0, 0.1], "inf": [0.0, math.inf, 0.0], "short": valid[:2],
            "long": [*valid, 0.0], "scalar": 0.5, "text": "forward"}[kind]  # fmt: skip


def test_fuzz_runtime_never_raises_never_sends_nan_and_stops_on_invalid_state(bad_input: Recorder) -> None:
    rng = np.random.default_rng(2024)
    m = g1_manifest()
    lower, upper = m.array("joint_limits").T
    low, high = m.command_low_high()
    ticks = 0
    for _episode in range(100):  # a fresh runtime each time: a latched stop would end the episode's interest
        robot, policy = ScriptedRobot(m), StubPolicy(m)
        runtime = Runtime(m, policy, robot, safety=FAST_START)
        faulted = False  # an input that must stop the robot was given
        for _ in range(30):
            robot.t += PERIOD
            if rng.random() < 0.3:
                kind = "valid" if rng.random() < 0.5 else str(rng.choice(_BAD_COMMANDS))
                before = runtime.command.copy()
                assert runtime.set_command(_command(kind, rng)) is (kind == "valid")
                assert runtime.command.shape == (3,) and np.all(
                    (low <= runtime.command) & (runtime.command <= high)
                )
                if kind != "valid":
                    np.testing.assert_array_equal(runtime.command, before)
            policy.action = rng.uniform(-20, 20, (1, J)).astype(np.float32)
            if rng.random() < 0.02:
                policy.action[0, rng.integers(0, J)] = math.nan
                faulted |= not runtime.in_soft_start  # the policy runs only after the soft start
            bad = rng.random() < 0.08
            kind = str(rng.choice(_BAD_STATES)) if bad else "valid"
            robot.clock_fault = math.nan if kind == "nan_clock" else None
            robot.state = _bad_state(kind, rng, robot) if bad else _valid_state(rng, robot)
            sent = len(robot.sent)
            target = runtime.step()  # must not raise
            ticks += 1
            cmd = robot.sent[-1]
            assert len(robot.sent) == sent + 1, "every tick sends a command"
            assert all(np.isfinite(a).all() for a in (target, cmd.target, cmd.kp, cmd.kd)), kind
            faulted |= bad
            if faulted:
                assert runtime.safety.stopped and np.all(cmd.kp == 0.0), (kind, runtime.safety.counters)
            else:
                assert not runtime.safety.stopped, (kind, runtime.safety.counters.estop_reason)
                assert np.all((lower <= target) & (target <= upper))
    assert ticks == 3000
    bad_input(
        "robot runtime",
        f"fuzz: {ticks} ticks, random states ({len(_BAD_STATES)} kinds of malformed) and commands "
        f"({len(_BAD_COMMANDS)} kinds of bad), seed 2024",
        "never raised, never sent a non-finite target, damping on and after every invalid state",
    )


def test_a_rehearsed_tick_changes_nothing_the_tick_sends() -> None:
    # Two runtimes on the same readings; one rehearses before every tick, with joint targets far enough
    # out that the clamps act. They must send the same commands and count the same clamps.
    plain, plain_robot, plain_policy = walking()
    rehearsed, robot, policy = walking()
    rng = np.random.default_rng(3)
    for _ in range(20):
        action = rng.normal(scale=4.0, size=(1, J)).astype(np.float32)
        state = plain_robot.healthy()
        state.joint_vel = rng.normal(size=J)
        plain_policy.action, policy.action = action, action.copy()
        tick(plain, plain_robot, state)
        robot.t += PERIOD
        robot.state = dataclasses.replace(state)
        rehearsed.rehearse()
        policy.action = rng.normal(size=(1, J)).astype(np.float32)  # what the rehearsal saw is not reused
        rehearsed.rehearse()
        policy.action = action.copy()
        rehearsed.step()
        np.testing.assert_array_equal(robot.sent[-1].target, plain_robot.sent[-1].target)
    np.testing.assert_array_equal(rehearsed.last_input, plain.last_input)
    assert rehearsed.safety.counters == plain.safety.counters
    assert rehearsed.safety.counters.joint_limit_clamped > 0 and rehearsed.policy_step == plain.policy_step
