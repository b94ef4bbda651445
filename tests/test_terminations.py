from typing import Any

import numpy as np
import pytest

from humanoid_prior.envs.task_state import TaskState
from humanoid_prior.envs.terminations import TerminationCfg, TerminationManager


def state(**overrides: Any) -> TaskState:
    """Three upright envs at their nominal height, mid-episode."""
    fields: dict[str, Any] = dict(
        dt=0.02,
        default_joint_pos=np.zeros(1),
        base_ang_vel=np.zeros((3, 3)),
        commands=np.zeros((3, 3)),
        joint_pos=np.zeros((3, 1)),
        joint_vel=np.zeros((3, 1)),
        actions=np.zeros((3, 1)),
        gait_phase=np.zeros(3),
        projected_gravity=np.tile([0.0, 0.0, -1.0], (3, 1)),
        base_height=np.full(3, 0.78),
        base_contact=np.zeros(3, bool),
        diverged=np.zeros(3, bool),
        episode_step=np.array([10, 10, 10]),
        max_episode_steps=1000,
        nominal_base_height=0.78,
    )
    fields.update(overrides)
    return TaskState(**fields)


def test_a_time_out_is_a_truncation_and_a_fall_on_the_last_step_is_a_failure():
    s = state(episode_step=np.array([1000, 1000, 10]), base_height=np.array([0.78, 0.2, 0.78]))
    ends = TerminationManager(TerminationCfg()).compute(s)
    assert ends.terminated.tolist() == [False, True, False]
    assert ends.truncated.tolist() == [True, False, False]
    assert ends.causes["time_out"].tolist() == [True, False, False]
    assert ends.causes["base_height"].tolist() == [False, True, False]


def test_tilt_ends_beyond_the_configured_angle_only():
    def leaning(deg: float) -> np.ndarray:
        r = np.radians(deg)
        return np.array([np.sin(r), 0.0, -np.cos(r)])

    s = state(projected_gravity=np.stack([leaning(30), leaning(59), leaning(61)]))
    ends = TerminationManager(TerminationCfg(max_tilt_deg=60.0)).compute(s)
    assert ends.causes["tilt"].tolist() == [False, False, True]


def test_terms_left_out_of_the_config_do_not_end_episodes():
    s = state(base_contact=np.array([True, False, False]))
    assert TerminationManager(TerminationCfg()).compute(s).terminated.tolist() == [True, False, False]
    only = TerminationManager(TerminationCfg(terms=("diverged", "time_out")))
    assert not only.compute(s).terminated.any()


def test_an_unknown_term_names_the_closest_one():
    with pytest.raises(ValueError, match="unknown termination term 'tilted'; did you mean 'tilt'"):
        TerminationCfg(terms=("tilted", "diverged"))


def test_the_diverged_term_cannot_be_switched_off():
    with pytest.raises(ValueError, match="must include 'diverged'"):
        TerminationCfg(terms=("tilt", "time_out"))
