"""The student: history, labels, targets, end to end (the discriminator: tests/policies/)."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecNormalize

from humanoid_prior import evaluation
from humanoid_prior.config import PPOCfg, RunCfg, StudentCfg, TeacherDataCfg, g1_flat, student_preset
from humanoid_prior.envs.history import FrameHistory
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.sb3_vec_env import LocomotionVecEnv
from humanoid_prior.envs.task_cfg import task_preset
from humanoid_prior.evaluation import EvalCfg
from humanoid_prior.runners.student import teacher_config, train_student
from humanoid_prior.runners.student_env import StudentVecEnv
from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runs.checkpoint import RESUME_ONLY, list_checkpoints, load_checkpoint
from humanoid_prior.runs.policy_io import LoadedStudent, load_policy

REPO = Path(__file__).resolve().parents[1]


# --- history, labels, auxiliary targets -----------------------------------------------------------------


def test_history_is_oldest_first_and_restarts_with_the_first_frame() -> None:
    h = FrameHistory(num_envs=2, length=3, frame_dim=2)
    h.reset(np.array([[0, 0], [5, 5]]))
    h.push(np.array([[1, 1], [6, 6]]))
    h.push(np.array([[2, 2], [7, 7]]))
    np.testing.assert_array_equal(h.flat()[0], [0, 0, 1, 1, 2, 2])
    h.reset(np.array([[9, 9]]), np.array([1]))
    np.testing.assert_array_equal(h.flat()[1], [9, 9, 9, 9, 9, 9])
    np.testing.assert_array_equal(h.flat()[0], [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="frames must be"):
        h.push(np.zeros((2, 3)))


def student_env(teacher=None, aux=("base_lin_vel", "feet_height_scan", "feet_contact")) -> StudentVecEnv:
    env = LocomotionEnv(task_preset("g1", "rough", 3).with_history("proprio", 4), seed=0)
    return StudentVecEnv(LocomotionVecEnv(env), teacher=teacher, aux_terms=aux)


def test_aux_targets_are_the_true_state_in_physical_units() -> None:
    venv = student_env()
    venv.reset()
    for _ in range(5):
        obs = venv.step(np.zeros((3, 12)))[0]
    assert isinstance(obs, dict)
    s = venv.env.state
    layout = {t.name: t for t in venv.aux}
    target = obs["aux_target"]
    np.testing.assert_allclose(target[:, layout["base_lin_vel"].start : layout["base_lin_vel"].stop],
                               s.base_lin_vel, atol=1e-5)  # fmt: skip
    scan = layout["feet_height_scan"]
    np.testing.assert_allclose(target[:, scan.start : scan.stop], s.feet_height_scan, atol=1e-5)
    contact = layout["feet_contact"]
    np.testing.assert_array_equal(target[:, contact.start : contact.stop], s.feet_contact.astype(np.float32))
    assert contact.binary and not scan.binary
    venv.close()
    with pytest.raises(ValueError, match="not a privileged term"):
        student_env(aux=("joint_torque",))


def test_imitation_labels_are_the_teacher_on_the_privileged_observation_of_the_same_state() -> None:
    def stub_teacher(obs: dict[str, np.ndarray]) -> np.ndarray:
        assert set(obs) == {"privileged"}
        return np.tanh(obs["privileged"] @ weights)

    inner = student_env(teacher=stub_teacher)
    size = inner.env.obs_sizes["privileged"]
    weights = np.linspace(-1, 1, 12 * size).reshape(size, 12).astype(np.float32)
    venv = VecNormalize(inner, norm_obs_keys=["proprio_history", "privileged"])
    venv.reset()
    for _ in range(3):
        obs = venv.step(np.random.default_rng(0).uniform(-1, 1, (3, 12)))[0]
        raw = venv.get_original_obs()
        assert isinstance(obs, dict) and isinstance(raw, dict)
        np.testing.assert_allclose(
            obs["teacher_action"], stub_teacher({"privileged": raw["privileged"]}), atol=1e-6
        )
        assert not np.allclose(obs["privileged"], raw["privileged"]), "the critic's input is normalised"
    # The history holds the noisy proprio frames oldest first: its newest frame is this step's proprio.
    proprio = inner.env.observations.compute(inner.env.state, noise=False)["proprio"]
    newest = raw["proprio_history"][:, -proprio.shape[1] :]
    assert np.abs(newest - proprio).max() < 1.0 and np.abs(newest - proprio).mean() > 0  # noise, not zeros
    venv.close()


# --- end to end --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    cfg = g1_flat()
    run = dataclasses.replace(RunCfg(), run_dir=str(root), name="t", total_steps=64, checkpoint_every=1,
                              video_every=0, progress_bar=False)  # fmt: skip
    ppo = dataclasses.replace(PPOCfg(), n_steps=8, batch_size=16, n_epochs=1)
    task = cfg.task.with_batch(4, nthread=1)
    cfg = dataclasses.replace(cfg, task=task, run=run, ppo=ppo)
    return train_teacher(cfg, use_wandb=False)


def csv_columns(run_dir: Path) -> list[str]:
    with open(run_dir / "progress_0.csv") as f:
        return next(csv.reader(f))


def tiny_student(teacher_run: Path, tmp_path: Path, method: str = "tmp", **changes) -> StudentCfg:
    cfg = student_preset(teacher_config(teacher_run), str(teacher_run), method)
    run = dataclasses.replace(cfg.run, run_dir=str(tmp_path), name=method, total_steps=96, checkpoint_every=1,
                              video_every=0, progress_bar=False)  # fmt: skip
    task = cfg.task.with_batch(4, nthread=1)
    ppo = dataclasses.replace(PPOCfg(), n_steps=8, batch_size=16, n_epochs=1)
    disc = dataclasses.replace(cfg.discriminator, batch_size=32, steps_per_iteration=2)
    data = TeacherDataCfg(transitions=300, num_envs=4)
    return dataclasses.replace(
        cfg, run=run, task=task, ppo=ppo, discriminator=disc, teacher_data=data, **changes
    )


def test_tiny_tmp_student_trains_saves_resumes_and_acts(tiny_teacher: Path, tmp_path: Path) -> None:
    run_dir = train_student(tiny_student(tiny_teacher, tmp_path), use_wandb=False)
    data = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert data["kind"] == "student" and data["discriminator"] is not None and data["disc_optimizer"]
    assert list((tiny_teacher / "teacher_data").glob("motion_*_300.npz")), (
        "teacher data cached in the teacher run"
    )
    columns = csv_columns(run_dir)
    for key in ("disc/loss", "disc/real_accuracy", "student/imitation_loss", "aux/feet_contact_accuracy",
                "aux/base_lin_vel_mean_abs_error", "student/style_reward", "train/approx_kl"):  # fmt: skip
        assert f"env/{key}" in columns or key in columns, key
    # Resume: more steps asked in the saved config; the step count goes on from the checkpoint.
    import json

    saved = json.loads((run_dir / "config.json").read_text())
    saved["run"]["total_steps"] = data["num_timesteps"] + 48
    (run_dir / "config.json").write_text(json.dumps(saved))
    train_student(StudentCfg(), resume=run_dir, use_wandb=False)
    after = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert after["num_timesteps"] >= data["num_timesteps"] + 48
    policy = load_policy(run_dir)
    assert isinstance(policy, LoadedStudent) and policy.history_len == 6
    with pytest.raises(ValueError, match="not a teacher"):
        teacher_config(run_dir)  # a student cannot teach
    env = LocomotionEnv(policy.cfg.task.with_batch(2, nthread=1), seed=0)
    obs = env.reset()
    actions = policy(obs)
    assert actions.shape == (2, 12) and np.isfinite(actions).all()
    env.close()


def test_student_evaluates_on_its_history_during_training_and_keeps_the_evaluated_policy(
    tiny_teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2))
    cfg = tiny_student(tiny_teacher, tmp_path, "distill")
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, eval_every_steps=64))
    run_dir = train_student(cfg, use_wandb=False)
    rows = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [64] and np.isfinite(rows[0]["lin_vel_error"])
    kept = load_policy(run_dir, Path(rows[0]["checkpoint"]))
    assert isinstance(kept, LoadedStudent) and kept.num_timesteps == 64
    assert not set(RESUME_ONLY) & set(load_checkpoint(run_dir / rows[0]["checkpoint"]))


@pytest.mark.parametrize("method", ["distill", "ppo_proprio"])
def test_baselines_train(tiny_teacher: Path, tmp_path: Path, method: str) -> None:
    run_dir = train_student(tiny_student(tiny_teacher, tmp_path, method), use_wandb=False)
    data = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert data["discriminator"] is None
    columns = csv_columns(run_dir)
    assert ("student/imitation_loss" in columns) == (method == "distill")
    assert ("train/approx_kl" in columns) == (method == "ppo_proprio")
    assert "aux/base_lin_vel_loss" not in columns


def test_student_without_a_teacher_fails_in_one_line(tmp_path: Path) -> None:
    for args in (["--teacher", str(tmp_path / "nowhere")], []):
        result = subprocess.run([sys.executable, str(REPO / "train.py"), "student", *args, "--no-wandb"],
                                cwd=REPO, capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "teacher" in result.stderr


def test_the_env_keeps_the_history_across_an_episode_end() -> None:
    """An ended episode's terminal observation holds its own last frames; the next starts from its first."""
    task = dataclasses.replace(g1_flat().task.with_history("proprio", 3), episode_length_s=0.1)
    env = LocomotionEnv(task.with_batch(2, nthread=1), seed=0)
    obs = env.reset(seed=0)
    frame = env.obs_sizes["proprio"]
    assert env.obs_sizes["proprio_history"] == 3 * frame
    np.testing.assert_array_equal(obs["proprio_history"], np.tile(obs["proprio"], 3))
    seen = [obs["proprio"]]
    for _ in range(env.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(np.zeros((2, env.num_joints)))
        seen.append(obs["proprio"])
    assert truncated.all() and not terminated.any() and len(info["done_ids"]) == 2
    ended = info["terminal_obs"]
    np.testing.assert_array_equal(ended["proprio_history"][:, -frame:], ended["proprio"])
    np.testing.assert_array_equal(ended["proprio_history"][:, :frame], seen[-3])  # frames t-2, t-1, t
    np.testing.assert_array_equal(ended["proprio_history"][:, frame : 2 * frame], seen[-2])
    np.testing.assert_array_equal(obs["proprio_history"], np.tile(obs["proprio"], 3))  # a new episode
    env.close()
