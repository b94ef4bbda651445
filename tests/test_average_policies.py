"""benchmarks/average_policies.py: the mean of a run's newest policies, as a policy the tools can read."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import tiny_cfg

from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runs.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from humanoid_prior.runs.policy_io import load_policy

REPO = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "average_policies", REPO / "benchmarks" / "average_policies.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_average_is_the_mean_of_the_newest_policies_and_loads_as_the_newest_step(tmp_path: Path) -> None:
    script = _script()
    run = train_teacher(tiny_cfg(tmp_path, total_steps=128, keep_checkpoints=3), use_wandb=False)
    newest = list_checkpoints(run / "checkpoints")
    assert len(newest) == 3
    out = script.main([str(run), "--last", "2"])
    policies = [load_checkpoint(p)["policy"] for p in newest[1:]]
    data = load_checkpoint(out)
    for key, value in data["policy"].items():
        torch.testing.assert_close(value, (policies[0][key] + policies[1][key]) / 2)
    assert any(not torch.equal(policies[0][k], policies[1][k]) for k in policies[0]), "two different policies"
    assert "optimizer" not in data and data["averaged_steps"] == [96, 128]
    assert load_policy(run, out.relative_to(run)).num_timesteps == 128

    with pytest.raises(SystemExit, match="holds 3 checkpoints"):
        script.main([str(run), "--last", "4"])
    other = load_checkpoint(newest[0])
    other["action_dim"] = 5
    torch.save(other, newest[0])
    with pytest.raises(CheckpointError, match="action_dim"):
        script.average(newest)
