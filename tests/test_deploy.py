"""Deploy: export check, manifest, observation parity with the env, runtime, safety layer, sim2sim."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest

from humanoid_prior.config import PPOCfg, RunCfg, g1_flat, student_preset
from humanoid_prior.deploy.export import ExportCheckError, check_exports, export_policy, policy_input_key
from humanoid_prior.deploy.inference import OnnxPolicy, TorchScriptPolicy, load_engine
from humanoid_prior.deploy.manifest import Manifest, ManifestError, SafetyCfg
from humanoid_prior.deploy.mujoco_robot import MujocoRobot, SimRobotCfg
from humanoid_prior.deploy.observation import PolicyObservation
from humanoid_prior.deploy.robot import JointCommand, RobotState, VirtualClockRobot
from humanoid_prior.deploy.runtime import Runtime
from humanoid_prior.deploy.safety import SafetyLayer
from humanoid_prior.deploy.sim2sim import run_sim2sim
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.sb3_vec_env import LocomotionVecEnv
from humanoid_prior.runners.student import teacher_config, train_student
from humanoid_prior.runners.student_env import StudentVecEnv
from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runs.policy_io import LoadedPolicy, load_policy

REPO = Path(__file__).resolve().parents[1]


# --- fixtures: a tiny teacher and student, trained and exported once -------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deploy")
    cfg = g1_flat()
    ppo = dataclasses.replace(PPOCfg(), n_steps=8, batch_size=16, n_epochs=1)
    run = dataclasses.replace(RunCfg(), run_dir=str(root), name="teacher", total_steps=64, checkpoint_every=1,
                              video_every=0, progress_bar=False)  # fmt: skip
    task = cfg.task.with_batch(4, nthread=1)
    teacher = train_teacher(dataclasses.replace(cfg, task=task, run=run, ppo=ppo), use_wandb=False)
    scfg = student_preset(teacher_config(teacher), str(teacher), "distill")
    scfg = dataclasses.replace(
        scfg, run=dataclasses.replace(run, name="student"), ppo=ppo,
        task=scfg.task.with_batch(4, nthread=1),
    )  # fmt: skip
    student = train_student(scfg, use_wandb=False)
    return {"teacher": teacher, "student": student}


@pytest.fixture(scope="module")
def exports(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    return {kind: export_policy(run, root / kind, probes=64).directory for kind, run in runs.items()}


@pytest.fixture
def student_manifest(exports: dict[str, Path]) -> Manifest:
    return Manifest.load(exports["student"])


class FakeRobot(VirtualClockRobot):
    """A robot whose state the test sets; records what the runtime sends. Joints in reversed policy order."""

    def __init__(self, manifest: Manifest, reverse: bool = True) -> None:
        super().__init__(tuple(reversed(manifest.joint_names)) if reverse else manifest.joint_names)
        self.order = np.array([manifest.joint_names.index(n) for n in self.joint_names])
        self.frozen_time: float | None = None
        self.policy_pos = manifest.array("default_joint_pos").copy()
        self.policy_vel = np.zeros(manifest.num_joints)
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.sent: list[JointCommand] = []

    def read_state(self) -> RobotState:
        stamp = self.t if self.frozen_time is None else self.frozen_time
        return RobotState(stamp, self.policy_pos[self.order].copy(), self.policy_vel[self.order].copy(),
                          np.zeros(3), self.quat.copy())  # fmt: skip

    def send(self, command: JointCommand) -> None:
        self.sent.append(command)

    def last_target(self) -> np.ndarray:
        """The last sent targets, back in policy order."""
        out = np.empty(len(self.joint_names))
        out[self.order] = self.sent[-1].target
        return out


class StubPolicy:
    """A policy engine returning a fixed action and counting its calls."""

    def __init__(self, manifest: Manifest, action: float = 0.0) -> None:
        self.input_size = manifest.observation.input_size
        self.output_size = manifest.num_joints
        self.action = np.full((1, manifest.num_joints), action, dtype=np.float32)
        self.calls = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        assert obs.shape == (1, self.input_size)
        self.calls += 1
        return self.action.copy()


def tilt_quat(deg: float) -> np.ndarray:
    half = np.radians(deg) / 2
    return np.array([np.cos(half), np.sin(half), 0.0, 0.0])


# --- export -----------------------------------------------------------------------------------------------


def record_observations(
    policy: LoadedPolicy, steps: int, seed: int = 7, num_envs: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """The policy's raw inputs (M, D) and actions (M, J) along its own rollout in its training task."""
    task = policy.cfg.task.with_batch(num_envs, nthread=1)
    task = dataclasses.replace(task, domain_rand=dataclasses.replace(task.domain_rand, enabled=False))
    key = policy_input_key(policy)
    env = LocomotionEnv(task, seed=seed)
    obs, inputs, actions = env.reset(seed=seed), [], []
    for _ in range(steps):
        inputs.append(obs[key].copy())
        actions.append(np.asarray(policy(obs), dtype=np.float32))
        obs, *_ = env.step(actions[-1])
    env.close()
    return np.concatenate(inputs), np.concatenate(actions)


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_exports_equal_the_training_policy_on_recorded_observations(
    kind: str, runs: dict[str, Path], exports: dict[str, Path]
) -> None:
    manifest = Manifest.load(exports[kind])
    check = manifest.source["export_check"]
    assert check["observations"] == 64 and max(check["max_abs_error"].values()) <= 1e-5
    # Independently of the export's own check (probe inputs): the policy's real observations in its task.
    policy = load_policy(runs[kind])
    inputs, actions = record_observations(policy, steps=10, seed=99)
    assert inputs.shape[1] == manifest.observation.input_size
    for engine in (TorchScriptPolicy(exports[kind] / "policy.pt"), OnnxPolicy(exports[kind] / "policy.onnx")):
        assert engine.input_size == manifest.observation.input_size and engine.output_size == 12
        np.testing.assert_allclose(engine(inputs), actions, atol=1e-5, rtol=0)
    assert manifest.source["kind"] == kind
    if kind == "student":
        assert manifest.observation.group == "proprio" and manifest.observation.history_len == 6
        assert manifest.observation.frame_size == 47
    else:
        assert manifest.observation.group == "privileged" and manifest.observation.history_len == 1


def test_export_check_rejects_outputs_that_differ(exports: dict[str, Path], runs: dict[str, Path]) -> None:
    policy = load_policy(runs["teacher"])
    inputs, actions = record_observations(policy, steps=2)
    assert max(check_exports(exports["teacher"], inputs, actions).values()) <= 1e-5
    with pytest.raises(ExportCheckError, match="differs from the training policy"):
        check_exports(exports["teacher"], inputs, actions + 1e-4)


def test_export_reads_only_the_run_and_builds_no_env(
    runs: dict[str, Path], exports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_env(*args, **kwargs):
        raise AssertionError("export built a LocomotionEnv")

    monkeypatch.setattr(LocomotionEnv, "__init__", no_env)
    again = export_policy(runs["student"], tmp_path / "student")
    assert again.manifest.observation == Manifest.load(exports["student"]).observation
    assert again.manifest.joint_limits == Manifest.load(exports["student"]).joint_limits


def test_manifest_has_what_the_runtime_needs_and_round_trips(student_manifest: Manifest, runs) -> None:
    m = student_manifest
    g1 = load_policy(runs["student"]).cfg
    assert m.joint_names[0] == "left_hip_pitch_joint" and m.num_joints == 12
    assert m.control_period_s == pytest.approx(0.02) and m.action_scale == 0.25
    assert m.command_ranges["lin_vel_x"] == tuple(g1.task.commands.lin_vel_x)
    assert [t.name for t in m.observation.terms][:3] == ["base_ang_vel", "projected_gravity", "commands"]
    assert m.joint_limits[3][0] < 0.0 < m.joint_limits[3][1] and len(m.config_hash) == 64
    assert Manifest.from_json(json.loads(json.dumps(m.to_json()))) == m


def test_manifest_errors_name_the_problem(student_manifest: Manifest, tmp_path: Path) -> None:
    data = student_manifest.to_json()
    with pytest.raises(ManifestError, match="kp has 11 entries but joint_names has 12"):
        Manifest.from_json({**data, "kp": data["kp"][:-1]})
    with pytest.raises(ManifestError, match="re-export"):
        Manifest.from_json({**data, "format": "something/0"})
    with pytest.raises(FileNotFoundError, match=r"train\.py export"):
        Manifest.load(tmp_path)


# --- observation parity with the env ------------------------------------------------------------------------


def noise_free_env(task, num_envs: int = 1) -> LocomotionEnv:
    groups = {k: dataclasses.replace(g, noisy=False) for k, g in task.observations.items()}
    task = dataclasses.replace(task.with_batch(num_envs, nthread=1), observations=groups,
                               domain_rand=dataclasses.replace(task.domain_rand, enabled=False))  # fmt: skip
    return LocomotionEnv(task, seed=3)


def load_env_state(robot: MujocoRobot, env: LocomotionEnv) -> None:
    """The sim2sim robot at env 0's MuJoCo state, with env 0's sensor readings of that step."""
    robot.load_state(env.sim.state[0], env.sim.sensordata[0])


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_runtime_observation_equals_the_env_observation_for_the_same_state(
    kind: str, exports: dict[str, Path], runs: dict[str, Path]
) -> None:
    manifest = Manifest.load(exports[kind])
    env = noise_free_env(load_policy(runs[kind]).cfg.task)
    robot = MujocoRobot(manifest)
    runtime = Runtime(manifest, StubPolicy(manifest), robot)
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for step in range(12):
        env.step(rng.uniform(-0.5, 0.5, (1, 12)))
        load_env_state(robot, env)
        state = runtime.read()  # robot (MJCF) order -> policy order
        obs = PolicyObservation(manifest, state)
        obs.fill(state, env.commands.commands[0], env.actions[0], int(env.episode_step[0]))
        expected = env.observations.compute(env.state, noise=False)[manifest.observation.group]
        np.testing.assert_allclose(obs.frame(), expected, atol=1e-5, rtol=0, err_msg=f"step {step}")
    env.close()


def test_runtime_history_frames_are_in_the_students_training_order(
    exports: dict[str, Path], runs: dict[str, Path]
) -> None:
    manifest = Manifest.load(exports["student"])
    env = noise_free_env(load_policy(runs["student"]).cfg.task)
    assert env.obs_sizes["proprio_history"] == manifest.observation.input_size, "the student's task keeps it"
    venv = StudentVecEnv(LocomotionVecEnv(env))
    robot = MujocoRobot(manifest)
    runtime = Runtime(manifest, StubPolicy(manifest), robot)
    obs = venv.reset()
    load_env_state(robot, env)
    built = PolicyObservation(manifest, runtime.read())
    rng = np.random.default_rng(1)
    for step in range(10):  # more steps than history frames: the ring wraps
        load_env_state(robot, env)
        ours = built(runtime.read(), env.commands.commands[0], env.actions[0], int(env.episode_step[0]))
        assert isinstance(obs, dict)
        np.testing.assert_allclose(ours, obs["proprio_history"], atol=1e-5, rtol=0, err_msg=f"step {step}")
        venv.step_async(rng.uniform(-0.3, 0.3, (1, 12)))
        obs = venv.step_wait()[0]
        assert env.episode_step[0] == step + 1, "the episode must not restart during the test"
    frames = ours.reshape(manifest.observation.history_len, -1)
    assert not np.allclose(frames[0], frames[-1]), "oldest and newest frames differ after 10 steps"
    venv.close()


# --- runtime checks and the safety layer -----------------------------------------------------------------


def test_runtime_rejects_a_manifest_whose_joints_the_robot_lacks(student_manifest: Manifest) -> None:
    robot = FakeRobot(student_manifest)
    robot._joint_names = robot.joint_names[
        :-1
    ]  # FakeRobot lists joints reversed: the policy's first joint is gone
    with pytest.raises(ValueError, match=r"joints \['left_hip_pitch_joint'\] are not joints of this robot"):
        Runtime(student_manifest, StubPolicy(student_manifest), robot)


def test_runtime_rejects_a_wrong_observation_size(student_manifest: Manifest) -> None:
    m = student_manifest
    policy = StubPolicy(m)
    policy.input_size = m.observation.input_size - 6
    with pytest.raises(ValueError, match=r"takes 276 observation values but .* gives 282 .*train.py export"):
        Runtime(m, policy, FakeRobot(m))
    layout = dataclasses.replace(m.observation, terms=tuple(
        dataclasses.replace(t, size=10) if t.name == "joint_pos" else t for t in m.observation.terms
    ))  # fmt: skip
    bad = dataclasses.replace(m, observation=layout)
    runtime = Runtime(bad, StubPolicy(bad), FakeRobot(m))
    runtime.step()  # found on the first reading: the step stops the robot (damping) and says why
    assert re.search(r"term 'joint_pos' gives shape \(1, 12\) .* trained with 10 values",
                     runtime.safety.counters.estop_reason or "")  # fmt: skip


def test_a_teacher_needs_privileged_state_the_robot_lacks(exports: dict[str, Path]) -> None:
    teacher = Manifest.load(exports["teacher"])
    robot = FakeRobot(teacher)
    runtime = Runtime(teacher, StubPolicy(teacher), robot)
    runtime.step()
    assert re.search(
        r"'base_lin_vel' .* privileged .* Deploy a student", runtime.safety.counters.estop_reason or ""
    )
    assert np.all(robot.sent[-1].kp == 0.0), "damping only"


def test_soft_start_ramps_to_the_default_pose_then_the_policy_acts(student_manifest: Manifest) -> None:
    m = student_manifest
    robot = FakeRobot(m)
    default = m.array("default_joint_pos")
    start = default + 0.2
    robot.policy_pos = start.copy()
    policy = StubPolicy(m, action=0.4)
    runtime = Runtime(m, policy, robot, safety=dataclasses.replace(m.safety, soft_start_s=1.0))
    targets = []
    for k in range(52):
        robot.t = k * m.control_period_s
        runtime.step()
        targets.append(robot.last_target())
    np.testing.assert_allclose(targets[0], start, atol=1e-12)
    np.testing.assert_allclose(targets[25], 0.5 * (start + default), atol=1e-9)  # smoothstep is 1/2 halfway
    np.testing.assert_allclose(targets[50], default, atol=1e-9)
    assert np.all(np.abs(np.diff(targets[:51], axis=0)) <= 0.2 * 1.5 / 50 + 1e-12), "no jumps in the ramp"
    assert policy.calls == 1 and not runtime.in_soft_start
    np.testing.assert_allclose(targets[51], default + m.action_scale * 0.4, atol=1e-7)


def test_joint_targets_are_clamped_to_the_joint_limits(student_manifest: Manifest) -> None:
    safety = SafetyLayer(student_manifest)
    limits = student_manifest.array("joint_limits")
    q = limits[:, 1] - 0.01
    out = safety.clamp_targets(limits[:, 1] + 1.0, q, np.zeros(12))
    np.testing.assert_allclose(out, limits[:, 1])
    assert safety.counters.joint_limit_clamped == 1 and safety.counters.torque_clamped == 0
    # The same through the runtime: a policy asking for the largest action never leaves the limits.
    robot = FakeRobot(student_manifest)
    runtime = Runtime(student_manifest, StubPolicy(student_manifest, action=10.0), robot,
                      safety=SafetyCfg(soft_start_s=0.0))  # fmt: skip
    for _ in range(3):
        runtime.step()
        assert np.all(robot.last_target() <= limits[:, 1]) and np.all(robot.last_target() >= limits[:, 0])


def test_torque_estimate_is_clamped_to_the_torque_limits(student_manifest: Manifest) -> None:
    m = student_manifest
    safety = SafetyLayer(m)
    kp, kd, limit = m.array("kp"), m.array("kd"), m.array("torque_limits")
    q, qd = m.array("default_joint_pos"), np.full(12, 2.0)
    target = q + 2.0 * limit / kp  # asks for twice the limit
    target = np.clip(target, m.array("joint_limits")[:, 0], m.array("joint_limits")[:, 1])
    out = safety.clamp_targets(target, q, qd)
    torque = kp * (out - q) - kd * qd
    assert np.all(np.abs(torque) <= limit + 1e-9)
    knee = m.joint_names.index("left_knee_joint")
    assert torque[knee] == pytest.approx(limit[knee]) and safety.counters.torque_clamped == 1
    small = q + 0.01
    np.testing.assert_array_equal(safety.clamp_targets(small, q, np.zeros(12)), small)


@pytest.mark.parametrize("fault", ["tilt", "nan_state", "nan_action", "stale"])
def test_emergency_stop_holds_damping_and_latches(student_manifest: Manifest, fault: str) -> None:
    m = student_manifest
    robot = FakeRobot(m)
    policy = StubPolicy(m, action=0.1)
    runtime = Runtime(
        m, policy, robot, safety=SafetyCfg(soft_start_s=0.0, max_tilt_deg=45.0, stale_state_s=0.06)
    )
    for _ in range(3):  # healthy ticks first: no stop
        runtime.step()
        robot.t += m.control_period_s
    assert not runtime.safety.stopped and robot.sent[-1].kp.min() > 0
    if fault == "tilt":
        robot.quat = tilt_quat(40.0)
        runtime.step()
        assert not runtime.safety.stopped, "40 deg is within the 45 deg threshold"
        robot.quat = tilt_quat(50.0)
    elif fault == "nan_state":
        robot.policy_vel[4] = np.nan
    elif fault == "nan_action":
        policy.action[0, 2] = np.nan
    else:
        robot.frozen_time = robot.t  # the state stops updating
        for _ in range(3):  # 40 ms old at most: still fresh enough
            robot.t += m.control_period_s
            if robot.t - robot.frozen_time <= 0.06:
                runtime.step()
                assert not runtime.safety.stopped
        robot.t += m.control_period_s
    runtime.step()
    reason = runtime.safety.counters.estop_reason
    assert (
        reason is not None
        and {
            "tilt": "tilt",
            "nan_state": "non-finite robot state",
            "nan_action": "non-finite policy action",
            "stale": "stale",
        }[fault]
        in reason
    )
    # Recovered inputs do not release the stop: damping only, finite targets.
    robot.quat, robot.policy_vel[:], robot.frozen_time = tilt_quat(0.0), 0.0, None
    policy.action[:] = 0.0
    calls = policy.calls
    runtime.step()
    cmd = robot.sent[-1]
    assert (
        np.all(cmd.kp == 0.0)
        and np.allclose(cmd.kd, m.array("kd")[robot.order])
        and np.isfinite(cmd.target).all()
    )
    assert policy.calls == calls, "the policy is not run after an emergency stop"


def test_commands_are_clamped_to_the_trained_ranges(student_manifest: Manifest) -> None:
    robot = FakeRobot(student_manifest)
    runtime = Runtime(student_manifest, StubPolicy(student_manifest), robot, command=(5.0, -0.1, -3.0))
    lo, hi = student_manifest.command_low_high()
    np.testing.assert_allclose(runtime.command, [hi[0], -0.1, lo[2]])
    assert runtime.safety.counters.command_clamped == 1
    runtime.set_command((0.2, 0.0, 0.1))
    np.testing.assert_allclose(runtime.command, [0.2, 0.0, 0.1])
    assert runtime.safety.counters.command_clamped == 1


def test_joint_order_mapping_sends_each_target_to_its_joint(student_manifest: Manifest) -> None:
    m = student_manifest
    robot = FakeRobot(m, reverse=True)
    runtime = Runtime(m, StubPolicy(m), robot, safety=SafetyCfg(soft_start_s=0.0))
    runtime.step()
    sent = robot.sent[-1].target
    assert robot.joint_names[0] == m.joint_names[-1]
    assert sent[0] == pytest.approx(m.default_joint_pos[-1]) and sent[-1] == pytest.approx(
        m.default_joint_pos[0]
    )
    np.testing.assert_allclose(robot.sent[-1].kp, m.array("kp")[::-1])


# --- the mujoco backend and sim2sim -------------------------------------------------------------------------


def test_mujoco_backend_is_1khz_with_pd_computed_in_the_loop(student_manifest: Manifest) -> None:
    robot = MujocoRobot(student_manifest, SimRobotCfg(action_latency_s=0.003, sensor_latency_s=0.002))
    assert robot.model.opt.timestep == 0.001
    assert np.all(robot.model.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE), "plain motors, no MuJoCo PD"
    n = len(robot.joint_names)
    target = np.full(n, 0.05)
    robot.send(JointCommand(target, np.full(n, 50.0), np.full(n, 1.0)))
    robot.wait_until(0.003)
    assert np.all(robot.data.ctrl == 0.0), "the command acts only after the 3 ms actuation latency"
    q, qd = robot.data.qpos[robot._qadr].copy(), robot.data.qvel[robot._dadr].copy()
    robot.wait_until(0.004)
    expected = np.clip(50.0 * (target - q) - qd, -robot._torque_limit, robot._torque_limit)
    np.testing.assert_allclose(robot.data.ctrl[robot._act], expected)
    state = robot.read_state()
    assert state.time == pytest.approx(robot.now() - 0.002), "readings are 2 ms old"


def test_sim2sim_runs_the_loop_at_the_manifest_period(exports: dict[str, Path]) -> None:
    result = run_sim2sim(
        exports["student"], (0.5, 0.0, 0.0), seconds=0.4, engine="torchscript", soft_start_s=0.2
    )
    loop = result.loop
    assert loop["steps"] == round((0.2 + 0.4 + 0.02) / 0.02)
    assert loop["policy_steps"] >= 19 and loop["period_ms"] == pytest.approx(20.0)
    assert loop["jitter_max_ms"] < 1e-6, "simulated clock: ticks start exactly on schedule"
    assert 0 < loop["compute_p50_ms"] < 20.0 and loop["overruns"] >= 0


@pytest.mark.slow
def test_export_and_deploy_commands(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "exp"
    run = [sys.executable, str(REPO / "train.py")]
    args = ["export", "--run", str(runs["student"]), "--out", str(out), "--probes", "8"]
    done = subprocess.run([*run, *args],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "policy.pt").is_file() and (out / "policy.onnx").is_file() and "onnx" in done.stdout
    bad = subprocess.run([*run, "deploy", "--policy", str(out), "--command", "1,2"], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "v_x,v_y,yaw_rate" in bad.stderr and "Traceback" not in bad.stderr
    video = tmp_path / "v.mp4"
    args = ["--command", "0.3,0,0", "--seconds", "0.2", "--soft-start-s", "0.2", "--video", str(video)]
    done = subprocess.run(
        [*run, "deploy", "--policy", str(out), *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert video.stat().st_size > 1000 and '"policy_steps"' in done.stdout
    assert load_engine(out, "onnx").input_size == 282
