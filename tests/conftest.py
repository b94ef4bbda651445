from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from humanoid_prior.envs.model_builder import RobotModel, build_model
from humanoid_prior.envs.robots import get_robot


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
