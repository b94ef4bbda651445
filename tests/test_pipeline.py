"""The main job end to end at a tiny budget: every stage runs once, a second run skips them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanoid_prior import evaluation
from humanoid_prior.evaluation import EvalCfg
from humanoid_prior.runners.pipeline import Pipeline, PipelineCfg, report, summary_text
from humanoid_prior.runs.checkpoint import list_checkpoints


@pytest.mark.slow
def test_pipeline_runs_every_stage_once_and_skips_them_when_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=2, episode_s=2.0))
    # Budgets are env steps: 4 envs x 32 steps per iteration, so 1,000 x 0.5 -> 4 iterations (512 steps).
    cfg = PipelineCfg(teacher_steps=1000, student_steps=500, budget=0.5, num_envs=4,
                      teacher_data_transitions=400, root=str(tmp_path), use_wandb=False)  # fmt: skip
    state = Pipeline(cfg).run()
    assert list(state["stages"]) == ["teacher", "teacher_data", "student", "eval", "export"]
    assert state["stages"]["teacher"]["env_steps"] == 512 and state["stages"]["student"]["env_steps"] == 256
    assert all(stage["done"] for stage in state["stages"].values())
    policy = tmp_path / "policy"
    assert {"policy.pt", "policy.onnx", "deploy.json"} <= {p.name for p in policy.iterdir()}
    assert json.loads((policy / "deploy.json").read_text())["source"]["kind"] == "student"
    assert (tmp_path / "student" / "eval.json").is_file() and (tmp_path / "teacher" / "eval.json").is_file()
    summary = report(cfg, state, "make train")
    assert summary["stages"]["teacher"]["env_steps"] == 512 and summary["budget"] == 0.5
    assert set(summary["student"]) >= {"lin_vel_error", "yaw_rate_error", "fall_rate", "return"}
    table = summary["student"].pop("table")
    assert summary["student"] == {
        k: state["stages"]["eval"]["result"]["student"][k] for k in summary["student"]
    }
    assert list(table) == [f"flat/cmd={c}" for c in ((-0.5, 0.0, 0.0), (0.0, 0.0, 0.0), (0.5, 0.0, 0.0),
                                                     (1.0, 0.0, 0.0))]  # fmt: skip
    assert set(table["flat/cmd=(0.5, 0.0, 0.0)"]) == set(summary["student"])
    text = summary_text(state)
    assert "exported policy" in text and "student" in text and "teacher" in text

    checkpoints = list_checkpoints(tmp_path / "teacher" / "checkpoints")
    again = Pipeline(cfg).run()
    assert again["stages"] == state["stages"], "a finished pipeline is not redone"
    assert list_checkpoints(tmp_path / "teacher" / "checkpoints") == checkpoints


def test_pipeline_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget must be > 0"):
        PipelineCfg(budget=0)
