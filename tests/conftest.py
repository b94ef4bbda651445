from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from humanoid_prior.config import PPOCfg, RunCfg, TeacherCfg, g1_flat, g1_rough
from humanoid_prior.envs.model_builder import RobotModel, build_model
from humanoid_prior.envs.robots import get_robot
from humanoid_prior.envs.task_cfg import TaskCfg


@functools.cache
def _build(name: str) -> RobotModel:
    return build_model(get_robot(name))


@pytest.fixture(scope="session")
def built() -> Callable[[str], RobotModel]:
    """Compile each built-in robot once per test session (mesh loading takes up to ~2 s)."""
    return _build


@pytest.fixture
def g1_model() -> RobotModel:
    return _build("g1")


Recorder = Callable[[str, str, object], None]
"""`bad_input(door, given, got)`: a bad input a test tried and what it got (message or exception)."""

_BAD_INPUTS: list[tuple[str, str, str]] = []
_BAD_INPUT_TESTS: set[str] = set()


@pytest.fixture
def bad_input(request: pytest.FixtureRequest) -> Recorder:
    """Record (door, bad input, what it got) for docs/reliability.md (see tests/reliability_doc.py)."""

    def record(door: str, given: str, got: object) -> None:
        text = got if isinstance(got, str) else f"{type(got).__name__}: {got}"
        _BAD_INPUTS.append((door, given, text))
        _BAD_INPUT_TESTS.add(request.path.name)

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With HUMANOID_PRIOR_RELIABILITY_DOC set and every test passed, write the reliability table."""
    out = os.environ.get("HUMANOID_PRIOR_RELIABILITY_DOC")
    if out and exitstatus == 0 and _BAD_INPUTS:
        from reliability_doc import write

        write(out, _BAD_INPUTS, sorted(_BAD_INPUT_TESTS))


def tiny_cfg(tmp_path: Path, **run_changes: Any) -> TeacherCfg:
    """A G1 flat teacher of 4 envs and 64 steps, checkpointing every iteration, in `tmp_path`."""
    cfg = g1_flat()
    task = cfg.task.with_batch(4, nthread=1)
    settings: dict[str, Any] = dict(run_dir=str(tmp_path), name="tiny", total_steps=64, checkpoint_every=1,
                                    video_every=0, progress_bar=False)  # fmt: skip
    run = dataclasses.replace(RunCfg(), **(settings | run_changes))
    ppo = dataclasses.replace(PPOCfg(), n_steps=8, batch_size=16, n_epochs=1)
    return dataclasses.replace(cfg, task=task, run=run, ppo=ppo)


def tiny_rough_task(num_rows: int) -> TaskCfg:
    """The G1 rough task on `num_rows` x 7 tiles (one column per terrain type) with 4 envs."""
    rough = g1_rough().task
    assert rough.terrain is not None
    terrain = dataclasses.replace(rough.terrain, num_rows=num_rows, num_cols=7)
    return dataclasses.replace(rough.with_batch(4, nthread=1), terrain=terrain)
