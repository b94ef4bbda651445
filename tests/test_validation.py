"""Validation at every door: bad configs, robot files and foreign checkpoints get one line that names the
field and the fix, before any simulation runs (issue 11, finding 8 and 9)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import Recorder
from test_teacher import REPO, tiny_cfg

from humanoid_prior.config import PPOCfg, RunCfg
from humanoid_prior.envs.batched_sim import BatchedSim, SimCfg
from humanoid_prior.envs.model_builder import RobotModel, build_model
from humanoid_prior.envs.randomization import DomainRandCfg, DomainRandomizer
from humanoid_prior.envs.robots import RobotConfigError, get_robot
from humanoid_prior.evaluation import protocol
from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runs.checkpoint import CheckpointError, list_checkpoints
from humanoid_prior.runs.policy_io import load_policy


@pytest.mark.parametrize(
    ("cls", "field", "value", "message"),
    [
        (PPOCfg, "batch_size", 0, "--ppo.batch-size must be at least 1"),
        (PPOCfg, "n_steps", 0, "--ppo.n-steps must be at least 2"),
        (PPOCfg, "n_epochs", 0, "--ppo.n-epochs must be at least 1"),
        (PPOCfg, "lr_schedule", "cosine", "--ppo.lr-schedule must be"),
        (RunCfg, "checkpoint_every", 0, "--run.checkpoint-every must be at least 1"),
        (RunCfg, "total_steps", 0, "--run.total-steps must be at least 1"),
        (RunCfg, "device", "tpu", "--run.device must be"),
    ],
)
def test_bad_training_settings_are_refused(
    cls: type, field: str, value: object, message: str, bad_input: Recorder
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        cls(**{field: value})
    bad_input("training options", f"{cls.__name__}.{field} = {value!r}", info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_refused(tmp_path: Path, bad_input: Recorder) -> None:
    cfg = tiny_cfg(tmp_path)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, device="cuda"))
    with pytest.raises(ValueError, match=r"sees no CUDA GPU; use --run\.device cpu") as info:
        train_teacher(cfg, use_wandb=False)
    bad_input("training options", "--run.device cuda on a machine without a GPU", info.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kp_scale", (-1.0, 1.1), "kp_scale is a factor"),
        ("kd_scale", (0.0, 1.0), "kd_scale is a factor"),
        ("joint_friction", (-0.1, 0.3), "joint_friction and push_vel_xy must be >= 0"),
    ],
)
def test_bad_randomisation_ranges_are_refused(
    field: str, value: Any, message: str, bad_input: Recorder
) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=message) as info:
        DomainRandCfg(**kwargs)
    bad_input("domain randomisation", f"{field} = {value}", info.value)


def test_added_mass_that_empties_the_base_is_refused(g1_model: RobotModel, bad_input: Recorder) -> None:
    sim = BatchedSim(g1_model, SimCfg(num_envs=2, nthread=1), model_variants=1)
    with pytest.raises(ValueError, match=r"would leave the .* kg base of 'g1'") as info:
        DomainRandomizer(DomainRandCfg(added_mass=(-40.0, -30.0)), sim, np.random.default_rng(0))
    sim.close()
    bad_input("domain randomisation", "added_mass = (-40, -30) kg on the G1", info.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kp", float("nan"), "kp needs a finite number per joint"),
        ("kp", "a", "kp needs a finite number per joint; got left_hip_pitch_joint='a'"),
        ("torque_limits", 0.0, "torque_limits is 0"),
    ],
)
def test_bad_robot_numbers_are_refused(field: str, value: object, message: str, bad_input: Recorder) -> None:
    robot = get_robot("g1")
    values = list(getattr(robot, field))
    values[0] = value
    changes: dict[str, Any] = {field: tuple(values)}
    with pytest.raises(RobotConfigError, match=message) as info:
        dataclasses.replace(robot, **changes)
    bad_input("robot description", f"{field}: [{value!r}, ...]", info.value)


def test_a_default_pose_outside_the_joint_range_is_refused(bad_input: Recorder) -> None:
    robot = get_robot("g1")
    pose = list(robot.default_joint_pos)
    pose[robot.actuated_joints.index("left_knee_joint")] = -1.0  # the knee bends one way only
    with pytest.raises(
        RobotConfigError, match="default_joint_pos lies outside the MJCF joint range for left_knee"
    ) as info:
        build_model(dataclasses.replace(robot, default_joint_pos=tuple(pose)))
    bad_input("robot description", "default pose with the knee at -1 rad", info.value)


def test_an_unknown_evaluation_protocol_is_refused(bad_input: Recorder) -> None:
    with pytest.raises(
        ValueError, match="unknown evaluation protocol 'hilly'; protocols: flat, rough"
    ) as info:
        protocol("hilly")
    bad_input("commands", "train.py eval --protocol hilly", info.value)


def test_a_foreign_checkpoint_is_named_by_every_loader(tmp_path: Path, bad_input: Recorder) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path), use_wandb=False)
    # The same checkpoint in a run whose config names another robot (a file copied between runs).
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["task"]["robot"] = "h1"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"trained for robot 'g1', but its run directory's config\.json"
    ) as info:
        load_policy(other)
    bad_input("checkpoints", "a G1 checkpoint in a run whose config says H1", info.value)
    # Observations of the wrong size (another robot's env) fed to a loaded policy.
    policy = load_policy(run_dir)
    width = policy.normaliser.size("privileged")
    with pytest.raises(
        ValueError, match=f"has \\(\\d+,\\) values per env, but the policy .* trained on {width}"
    ) as size_info:
        policy({"privileged": np.zeros((2, width - 3), dtype=np.float32)})
    bad_input("checkpoints", "observations 3 values short fed to a loaded policy", size_info.value)


def test_the_cli_names_a_foreign_checkpoint_and_a_wrong_run_kind(tmp_path: Path, bad_input: Recorder) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path), use_wandb=False)
    config = json.loads((run_dir / "config.json").read_text())
    config["task"]["robot"] = "h1"
    (run_dir / "config.json").write_text(json.dumps(config))
    for command in (
        ["eval", "--run"],
        ["export", "--run"],
        ["play", "--run"],
        ["student", "--no-wandb", "--teacher"],
    ):
        result = subprocess.run([sys.executable, str(REPO / "train.py"), *command, str(run_dir)],
                                cwd=REPO, capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 1, (command, result.stderr[-1500:])
        assert result.stderr.strip().splitlines()[-1].startswith("error: checkpoint"), (
            command,
            result.stderr,
        )
        assert "trained for robot 'g1'" in result.stderr
        bad_input("commands", f"train.py {' '.join(command)} <run with a foreign checkpoint>", result.stderr)
    # A teacher run given to `student --resume` names the kind, not a missing config field.
    config["task"]["robot"] = "g1"
    (run_dir / "config.json").write_text(json.dumps(config))
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "student", "--resume", str(run_dir),
                             "--no-wandb"], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {run_dir} is a teacher run, not a student run; continue it with "
        f"`train.py teacher --resume {run_dir}`."
    )
    assert list_checkpoints(run_dir / "checkpoints"), "nothing was deleted"
    bad_input("commands", "train.py student --resume <teacher run>", result.stderr)


def test_robot_dependent_targets_come_from_the_robot_loaded() -> None:
    """`--task.robot h1` on the G1's preset trains towards the H1's base height, not the G1's 0.78 m."""
    from humanoid_prior.envs.locomotion import LocomotionEnv
    from humanoid_prior.envs.task_cfg import g1_flat

    task = g1_flat(num_envs=2)
    env = LocomotionEnv(dataclasses.replace(task.with_batch(2, nthread=1), robot="h1"), seed=0)
    assert env.rewards.cfg.params.base_height_target == get_robot("h1").nominal_base_height == 1.01
    env.close()


def test_copies_of_a_task_keep_its_physics_step_and_decimation() -> None:
    """Video, play, export, recording and evaluation copies of a task change its batch, not its physics.

    `train.py play` and two benchmarks used to build `SimCfg(num_envs=1, nthread=1)`, which put a task
    with another `sim_dt` or `decimation` back on the defaults (a 0.024 s policy period played at 0.02 s).
    """
    from humanoid_prior.envs.locomotion import LocomotionEnv
    from humanoid_prior.envs.task_cfg import g1_flat
    from humanoid_prior.evaluation import _eval_task, held_command_task

    task = dataclasses.replace(g1_flat(), sim=SimCfg(num_envs=64, sim_dt=0.004, decimation=6, nthread=0))
    copies = {
        "with_batch": task.with_batch(1, nthread=1),
        "play": held_command_task(task),
        "evaluation": _eval_task(task, protocol("flat"), num_envs=2),
    }
    for name, copy in copies.items():
        assert (copy.sim.sim_dt, copy.sim.decimation) == (0.004, 6), name
    env = LocomotionEnv(copies["play"], seed=0)
    assert env.num_envs == 1 and env.dt == pytest.approx(0.024)
    env.close()


def test_a_robot_file_gets_its_own_preset_and_run_name(tmp_path: Path) -> None:
    import yaml

    from humanoid_prior.config import to_dict

    mine = {**to_dict(get_robot("berkeley_humanoid")), "name": "mybot", "nominal_base_height": 0.5}
    (tmp_path / "mybot.yaml").write_text(yaml.safe_dump(mine))
    args = [sys.executable, str(REPO / "train.py"), "teacher", "--robot-file", str(tmp_path / "mybot.yaml"),
            "--no-wandb", "--task.sim.num-envs", "4", "--task.sim.nthread", "1", "--ppo.n-steps", "8",
            "--ppo.batch-size", "16", "--ppo.n-epochs", "1", "--run.total-steps", "32",
            "--run.video-every", "0", "--run.no-progress-bar",
            "--run.run-dir", str(tmp_path / "runs")]  # fmt: skip
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("mybot_flat_teacher_")
    policy = load_policy(run_dir)
    assert policy.cfg.task.robot == "mybot" and policy.cfg.task.terrain is None
    assert not policy.cfg.ppo.symmetry, "no mirror map in the file: no mirror augmentation"
    from humanoid_prior.envs.locomotion import LocomotionEnv

    env = LocomotionEnv(policy.cfg.task.with_batch(2, nthread=1), seed=0)
    assert env.rewards.cfg.params.base_height_target == 0.5
    env.close()


def test_the_robot_check_reports_time_up_and_catches_weak_gains(bad_input: Recorder) -> None:
    """G1 at a tenth of its gains buckles at the knees within 1 s; the 0.5 s drop test called it ok."""
    from humanoid_prior.robot_check import drop_test

    g1 = get_robot("g1")
    held = drop_test(build_model(g1), 3.0)
    assert 0.5 < held.stayed_up_s < 3.0  # a held pose topples as a rigid body: reported, not failed
    assert held.verdict(g1.nominal_base_height, 3.0).startswith("ok: landed and held the pose")
    weak = dataclasses.replace(g1, kp=tuple(k / 10 for k in g1.kp))
    drop = drop_test(build_model(weak), 3.0)
    verdict = drop.verdict(weak.nominal_base_height, 3.0)
    assert verdict.startswith("sagged to") and "gains are too weak" in verdict
    assert drop.base_height[drop.times <= 0.5].min() > 0.8 * weak.nominal_base_height, "fine at 0.5 s"
    bad_input("robot description", "G1 with a tenth of its kp (train.py robot)", verdict)


def test_a_run_config_from_before_terrain_name_was_derived_still_loads(tmp_path: Path) -> None:
    """Configs written until 2026-12-03 name `terrain_name` beside the task; it is the task's now."""
    from humanoid_prior.config import g1_flat, to_dict
    from humanoid_prior.runs.run_dir import load_run_config

    old = {**to_dict(g1_flat()), "terrain_name": "flat"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = load_run_config(tmp_path)
    assert cfg.task.terrain_name == "flat" and cfg == g1_flat()
    (tmp_path / "config.json").write_text(json.dumps({**old, "terrain_nam": "flat"}))
    with pytest.raises(ValueError, match="terrain_nam"):
        load_run_config(tmp_path)


@pytest.mark.parametrize("flag", [True, False])
def test_a_run_config_with_the_old_base_contact_flag_loads_as_named_terms(tmp_path: Path, flag: bool) -> None:
    """Configs written until 2026-12-03 switch the base-contact termination with `base_contact: bool`."""
    from humanoid_prior.config import g1_flat, to_dict
    from humanoid_prior.runs.run_dir import load_run_config

    old = to_dict(g1_flat())
    old["task"]["terminations"] = {
        "base_contact": flag,
        "max_tilt_deg": 45.0,
        "min_base_height_fraction": 0.5,
    }
    (tmp_path / "config.json").write_text(json.dumps(old))
    terms = load_run_config(tmp_path).task.terminations
    assert ("base_contact" in terms.terms) == flag and terms.max_tilt_deg == 45.0
    assert {"tilt", "base_height", "diverged", "time_out"} <= set(terms.terms)
