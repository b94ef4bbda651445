"""benchmarks/run_bundle.py carries a run across sessions: what it packs is enough to resume it."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import torch
from test_teacher import REPO, tiny_cfg

from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runs.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from humanoid_prior.runs.policy_io import load_policy


def _bundle(*args: str) -> subprocess.CompletedProcess[str]:
    script = REPO / "benchmarks" / "run_bundle.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=REPO)


def test_an_unpacked_bundle_resumes_from_the_newest_checkpoint(tmp_path: Path) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path / "here"), use_wandb=False)
    assert len(list_checkpoints(run_dir / "checkpoints")) > 1
    archive = tmp_path / "run.tar.gz"
    assert _bundle("pack", str(run_dir), str(archive)).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    result = _bundle("unpack", str(archive), "--runs", str(elsewhere))
    assert result.returncode == 0, result.stderr
    copy = elsewhere / run_dir.name
    (only,) = list_checkpoints(copy / "checkpoints")
    assert only.name == list_checkpoints(run_dir / "checkpoints")[-1].name, "the newest checkpoint only"
    assert load_policy(copy).num_timesteps == load_policy(run_dir).num_timesteps == 64
    config = json.loads((copy / "config.json").read_text())
    config["run"]["total_steps"] = 128  # a larger budget, as a multi-session run has from its start
    (copy / "config.json").write_text(json.dumps(config))
    train_teacher(tiny_cfg(elsewhere), resume=copy, use_wandb=False)
    newest = load_policy(copy)
    assert newest.num_timesteps == 128 and newest.checkpoint.name == "ckpt_0000004.pt", "it continues"
    again = _bundle("unpack", str(archive), "--runs", str(elsewhere))
    assert again.returncode != 0 and "exists already" in again.stderr


def test_a_bundle_without_tensorboard_keeps_the_csv_curves_and_the_checkpoint(tmp_path: Path) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path / "here"), use_wandb=False)
    assert list(run_dir.glob("events.out.tfevents.*")), "the run logs to TensorBoard"
    archive = tmp_path / "run.tar.gz"
    assert _bundle("pack", str(run_dir), str(archive), "--no-tensorboard").returncode == 0
    with tarfile.open(archive) as tar:
        names = [Path(n).name for n in tar.getnames()]
    assert not [n for n in names if n.startswith("events.out.tfevents")], names
    assert [n for n in names if n.startswith("progress_")] and [n for n in names if n.endswith(".pt")], names


def test_the_committed_rough_teacher_bundle_still_loads(tmp_path: Path) -> None:
    """The resume bundle in benchmarks/resume was written by an earlier version: it must stay loadable."""
    from humanoid_prior.runs.run_dir import load_run_config

    with tarfile.open(REPO / "benchmarks" / "resume" / "bench_teacher_g1_rough_s0.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    (run,) = [p.parent for p in tmp_path.rglob("config.json")]
    data = load_checkpoint(latest_checkpoint(run / "checkpoints"), kind="teacher", robot="g1")
    assert data["num_timesteps"] > 15_000_000
    assert load_run_config(run).task.terrain is not None


def test_a_bundle_keeps_the_evaluations_a_resume_set_aside(tmp_path: Path) -> None:
    from humanoid_prior.runs.run_dir import EVALS, SUPERSEDED

    run_dir = train_teacher(tiny_cfg(tmp_path / "here"), use_wandb=False)
    (run_dir / EVALS).write_text('{"env_steps": 32}\n')
    (run_dir / SUPERSEDED).write_text('{"env_steps": 64, "superseded_by_resume_at": 32}\n')
    archive = tmp_path / "run.tar.gz"
    assert _bundle("pack", str(run_dir), str(archive)).returncode == 0
    with tarfile.open(archive) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {EVALS, SUPERSEDED} <= names, names


def test_a_bundle_carries_the_kept_policies_named_with_it_and_refuses_files_outside_the_run(
    tmp_path: Path,
) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path / "here", eval_every_steps=32), use_wandb=False)
    kept = sorted((run_dir / "checkpoints" / "evaluated").glob("*.pt"))
    assert len(kept) == 2
    # The second as a run from before evaluations left the optimizer out wrote it: packed without it.
    older = torch.load(kept[1], weights_only=True)
    newest = torch.load(latest_checkpoint(run_dir / "checkpoints"), weights_only=True)
    older["optimizer"] = newest["optimizer"]
    torch.save(older, kept[1])
    archive = tmp_path / "run.tar.gz"
    first, second = (str(k.relative_to(run_dir)) for k in kept)
    assert _bundle("pack", str(run_dir), str(archive), "--with", first, "--with", second).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    assert _bundle("unpack", str(archive), "--runs", str(elsewhere)).returncode == 0
    copy = elsewhere / run_dir.name
    assert (copy / first).read_bytes() == kept[0].read_bytes()
    packed = load_checkpoint(copy / second)
    assert "optimizer" not in packed and "optimizer" in torch.load(kept[1], weights_only=True)
    assert all(torch.equal(packed["policy"][k], v) for k, v in older["policy"].items())
    assert load_checkpoint(latest_checkpoint(copy / "checkpoints"))["optimizer"], "the resume keeps it"
    alone = tmp_path / "alone.tar.gz"
    assert _bundle("pack", str(run_dir), str(alone), "--with", first).returncode == 0
    with tarfile.open(alone) as tar:
        assert not any(n.endswith(second) for n in tar.getnames()), "only the policies named"
    outside = _bundle("pack", str(run_dir), str(tmp_path / "x.tar.gz"), "--with", "../../run.tar.gz")
    assert outside.returncode != 0 and "no such file inside" in outside.stderr
    kept[0].write_bytes(b"not a checkpoint")
    corrupt = _bundle("pack", str(run_dir), str(tmp_path / "y.tar.gz"), "--with", first)
    assert corrupt.returncode != 0 and "corrupt" in corrupt.stderr and "Traceback" not in corrupt.stderr
