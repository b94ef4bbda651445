"""Nothing lost: a run directory is never reused, checkpoints hold what their step count says, and a
stopped run (SIGTERM, SIGINT, SIGKILL) resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Recorder
from test_teacher import REPO, tiny_cfg

from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runs.checkpoint import CheckpointError, list_checkpoints, load_checkpoint


def test_a_run_name_in_use_is_refused_and_the_old_run_survives(tmp_path: Path) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path), use_wandb=False)
    before = {p.name: p.read_bytes() for p in list_checkpoints(run_dir / "checkpoints")}
    config = (run_dir / "config.json").read_text()
    with pytest.raises(FileExistsError, match="already exists; continue it with --resume"):
        train_teacher(tiny_cfg(tmp_path, seed=7), use_wandb=False)
    assert {p.name: p.read_bytes() for p in list_checkpoints(run_dir / "checkpoints")} == before
    assert (run_dir / "config.json").read_text() == config


def test_the_cli_refuses_a_run_name_in_use_in_one_line(tmp_path: Path, bad_input: Recorder) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    args = [sys.executable, str(REPO / "train.py"), "teacher", "--preset", "g1_flat", "--no-wandb",
            "--run.run-dir", str(tmp_path), "--run.name", "taken"]  # fmt: skip
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: run directory {tmp_path / 'taken'} already exists; continue it with --resume "
        f"{tmp_path / 'taken'} or choose another --run.name."
    ]
    bad_input("runs", "train.py teacher --run.name <a run that exists>", result.stderr)


def test_a_checkpoint_holds_the_update_of_every_step_it_counts(tmp_path: Path) -> None:
    """The checkpoint of iteration 1 of a longer run equals a run that stopped after 1 iteration."""
    long_run = train_teacher(tiny_cfg(tmp_path / "long", total_steps=64), use_wandb=False)
    short_run = train_teacher(tiny_cfg(tmp_path / "short", total_steps=32), use_wandb=False)
    first = load_checkpoint(list_checkpoints(long_run / "checkpoints")[0])
    short = load_checkpoint(list_checkpoints(short_run / "checkpoints")[-1])
    assert first["iteration"] == short["iteration"] == 1
    assert first["num_timesteps"] == short["num_timesteps"] == 32
    assert first["n_updates"] == short["n_updates"] == 1  # one epoch per update in tiny_cfg
    for key, value in short["policy"].items():
        torch.testing.assert_close(first["policy"][key], value)


def test_resume_restores_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """Resume from iteration 1 of a run, compared with the weights a same-seed run had at that step.

    Training after the resume differs from the uninterrupted run: the envs restart their episodes
    (the physics state is not checkpointed), as documented in docs/reliability.md.
    """
    from humanoid_prior.runners.training import TrainingSession

    run_dir = train_teacher(tiny_cfg(tmp_path / "a", total_steps=64), use_wandb=False)
    reference = train_teacher(tiny_cfg(tmp_path / "b", total_steps=32), use_wandb=False)
    first = list_checkpoints(run_dir / "checkpoints")[0]
    session = TrainingSession(tiny_cfg(tmp_path / "c"), tmp_path / "c", resume_from=first)
    expected = load_checkpoint(list_checkpoints(reference / "checkpoints")[-1])["policy"]
    for key, value in session.model.policy.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    assert session.model.num_timesteps == 32
    session.env.close()


def _cli_run(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable, str(REPO / "train.py"), "teacher", "--preset", "g1_flat", "--no-wandb",
        "--task.sim.num-envs", "4", "--task.sim.nthread", "1", "--ppo.n-steps", "8",
        "--ppo.batch-size", "16", "--ppo.n-epochs", "1", "--run.total-steps", "100000",
        "--run.video-every", "0", "--run.no-progress-bar", "--run.run-dir", str(tmp_path),
        "--run.name", name, *extra,
    ]  # fmt: skip


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_with_a_final_checkpoint(
    tmp_path: Path, sig: signal.Signals, bad_input: Recorder
) -> None:
    # No periodic checkpoint within the run: the only one is written on the signal.
    proc = subprocess.Popen(_cli_run(tmp_path, "s", "--run.checkpoint-every", "100000"), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(lambda: any((tmp_path / "s").glob("progress_*.csv"))
              and (tmp_path / "s" / "progress_0.csv").stat().st_size > 0)  # fmt: skip
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"stopped by {sig.name}" in stderr and "--resume" in stderr
    (checkpoint,) = list_checkpoints(tmp_path / "s" / "checkpoints")
    data = load_checkpoint(checkpoint)
    assert data["num_timesteps"] == data["iteration"] * 32 > 0  # whole, trained iterations only
    assert data["n_updates"] == data["iteration"]
    bad_input("runs", f"{sig.name} during training", stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("moment", ["mid-rollout", "mid-checkpoint-write", "after-checkpoint"])
def test_sigkill_at_any_moment_resumes_with_a_continuous_step_count(
    tmp_path: Path, moment: str, bad_input: Recorder
) -> None:
    checkpoints = tmp_path / "k" / "checkpoints"
    proc = subprocess.Popen(_cli_run(tmp_path, "k", "--run.checkpoint-every", "1"), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _wait_for(lambda: len(list_checkpoints(checkpoints)) >= 2)
    if moment == "mid-rollout":
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if moment == "mid-checkpoint-write":
        # What a kill inside `atomic_write` leaves: the next checkpoint's temporary file, half written.
        newest = list_checkpoints(checkpoints)[-1]
        (checkpoints / "ckpt_9999999.pt.tmp").write_bytes(newest.read_bytes()[:500])
    last = load_checkpoint(list_checkpoints(checkpoints)[-1])
    saved = json.loads((tmp_path / "k" / "config.json").read_text())
    saved["run"]["total_steps"] = last["num_timesteps"] + 64
    (tmp_path / "k" / "config.json").write_text(json.dumps(saved))
    resume = [
        sys.executable,
        str(REPO / "train.py"),
        "teacher",
        "--resume",
        str(tmp_path / "k"),
        "--no-wandb",
    ]
    resumed = subprocess.run(resume, cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = load_checkpoint(list_checkpoints(checkpoints)[-1])
    assert after["num_timesteps"] == last["num_timesteps"] + 64  # continuous: nothing lost, nothing double
    assert after["iteration"] == last["iteration"] + 2
    assert after["n_updates"] == after["iteration"]
    bad_input(
        "runs",
        f"SIGKILL {moment}, then --resume",
        f"resumed from the last checkpoint ({last['num_timesteps']:,} steps, iteration "
        f"{last['iteration']}); 64 steps later: {after['num_timesteps']:,} steps, iteration "
        f"{after['iteration']}, one update per iteration, no corrupt file read",
    )


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path)
    run_dir = train_teacher(cfg, use_wandb=False)
    for path in list_checkpoints(run_dir / "checkpoints"):
        path.unlink()
    train_teacher(cfg, resume=run_dir, use_wandb=False)
    assert load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["num_timesteps"] == 64
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        train_teacher(cfg, resume=tmp_path / "nothing", use_wandb=False)


def test_a_file_that_is_not_a_checkpoint_never_gets_torch_s_unsafe_advice(
    tmp_path: Path, bad_input: Recorder
) -> None:
    # Many draws: about 1 in 20 random files makes torch's unpickler raise IndexError or KeyError rather
    # than UnpicklingError (a single draw let that slip through at random).
    rng = np.random.default_rng(0)
    junk = tmp_path / "ckpt_0000001.pt"
    for _ in range(100):
        junk.write_bytes(rng.bytes(4096))
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(junk)
        assert "weights_only" not in str(info.value) and "corrupt, truncated" in str(info.value)
    bad_input("checkpoints", "4 KiB of random bytes as a checkpoint (100 draws)", info.value)


def test_a_run_keeps_its_robot_file_by_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Editing, then deleting, the robot file after training changes nothing the run uses; it is said."""
    import dataclasses

    import yaml

    from humanoid_prior.config import to_dict
    from humanoid_prior.envs.robots import get_robot, select_robot
    from humanoid_prior.runs.policy_io import load_policy

    original = get_robot("g1")
    user_file = tmp_path / "my_g1.yaml"
    user_file.write_text(yaml.safe_dump(to_dict(original)))
    cfg = tiny_cfg(tmp_path)
    cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, robot_file=str(user_file)))
    run_dir = train_teacher(cfg, use_wandb=False)
    edited = {**to_dict(original), "kp": [k / 10 for k in original.kp], "action_scale": 0.5}
    user_file.write_text(yaml.safe_dump(edited))

    policy = load_policy(run_dir)
    assert "my_g1.yaml has changed since this run started" in capsys.readouterr().out
    robot = select_robot(policy.cfg.task.robot, policy.cfg.task.robot_file)
    assert robot.kp == original.kp and robot.action_scale == original.action_scale
    assert load_checkpoint(policy.checkpoint)["robot_description"] == to_dict(original)
    user_file.unlink()  # a moved or deleted original: the run still loads, resumes and exports
    assert load_policy(run_dir).cfg.task.robot_file == str((run_dir / "robot.yaml").resolve())


def test_resuming_a_finished_run_keeps_its_step_count(tmp_path: Path) -> None:
    """Nothing left to train: the final checkpoint written again must still count every step."""
    cfg = tiny_cfg(tmp_path)
    run_dir = train_teacher(cfg, use_wandb=False)
    before = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    train_teacher(cfg, resume=run_dir, use_wandb=False)
    after = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert after["num_timesteps"] == before["num_timesteps"] == 64
    assert after["iteration"] == before["iteration"]
    assert after["trained_seconds"] == before["trained_seconds"]
