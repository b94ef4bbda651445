"""Why an episode ends: named termination terms, each a pure function of a `TaskState`.

A term ``term(s, cfg) -> (N,) bool`` says which envs it ends. Terms registered with ``time_out=True`` are
time limits, not failures: the env reports them as truncations, so PPO bootstraps from the last state and
the curriculum does not count them as falls (mjlab's ``TerminationTermCfg(time_out=True)``). A
`TerminationCfg` selects terms by their `TERMINATION_TERMS` name, as a `RewardCfg` selects reward terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .task_state import TaskState
from .term_names import check_term_names

DEFAULT_TERMS = ("base_contact", "tilt", "base_height", "diverged", "time_out")


@dataclass(frozen=True)
class TerminationCfg:
    """Which terms end an episode, and their thresholds; validated on construction."""

    terms: tuple[str, ...] = DEFAULT_TERMS
    """`TERMINATION_TERMS` names in force; "diverged" is required (a diverged simulation has no state)."""
    max_tilt_deg: float = 60.0
    """"tilt": angle between the base's up axis and the world's up axis above this."""
    min_base_height_fraction: float = 0.5
    """"base_height": base closer to the terrain than this fraction of the robot's nominal height."""

    def __post_init__(self) -> None:
        check_term_names("termination", self.terms, TERMINATION_TERMS)
        if "diverged" not in self.terms:
            raise ValueError(
                "termination terms must include 'diverged': an env whose simulation diverged has to be reset."
            )


TerminationFn = Callable[[TaskState, TerminationCfg], np.ndarray]


@dataclass(frozen=True)
class TerminationTerm:
    """A registered term: its function and whether it is a time limit."""

    fn: TerminationFn
    time_out: bool = False
    """A time limit (a truncation), not a failure."""


def base_contact(s: TaskState, c: TerminationCfg) -> np.ndarray:
    """The base body touches anything."""
    return s.base_contact


def tilt(s: TaskState, c: TerminationCfg) -> np.ndarray:
    """The base leans further than `max_tilt_deg` from upright."""
    return s.projected_gravity[:, 2] > -np.cos(np.radians(c.max_tilt_deg))


def base_height(s: TaskState, c: TerminationCfg) -> np.ndarray:
    """The base is lower above the terrain than `min_base_height_fraction` of the nominal height."""
    return s.base_height < c.min_base_height_fraction * s.nominal_base_height


def diverged(s: TaskState, c: TerminationCfg) -> np.ndarray:
    """The physics produced NaN or huge values (the simulator has restored a sane state)."""
    return s.diverged


def time_out(s: TaskState, c: TerminationCfg) -> np.ndarray:
    """The episode reached its length."""
    return s.episode_step >= s.max_episode_steps


TERMINATION_TERMS: dict[str, TerminationTerm] = {
    "base_contact": TerminationTerm(base_contact),
    "tilt": TerminationTerm(tilt),
    "base_height": TerminationTerm(base_height),
    "diverged": TerminationTerm(diverged),
    "time_out": TerminationTerm(time_out, time_out=True),
}


@dataclass(frozen=True)
class Terminations:
    """Which envs ended in a step, and why."""

    terminated: np.ndarray
    """[N] bool: a failure term fired."""
    truncated: np.ndarray
    """[N] bool: only a time-out term fired."""
    causes: dict[str, np.ndarray]
    """[N] bool per term; time-out terms only where no failure fired (so causes add up to the ends)."""


class TerminationManager:
    """Evaluates the configured terms on a batch."""

    def __init__(self, cfg: TerminationCfg) -> None:
        self.cfg = cfg
        self.terms = {name: TERMINATION_TERMS[name] for name in cfg.terms}

    def compute(self, s: TaskState) -> Terminations:
        """Which envs end after this step: failures, time limits, and the term behind each."""
        n = len(s.episode_step)
        values = {name: np.asarray(term.fn(s, self.cfg), dtype=bool) for name, term in self.terms.items()}
        none = np.zeros(n, dtype=bool)
        terminated = np.logical_or.reduce(
            [none, *(v for k, v in values.items() if not self.terms[k].time_out)]
        )
        limit = np.logical_or.reduce([none, *(v for k, v in values.items() if self.terms[k].time_out)])
        truncated = limit & ~terminated
        causes = {k: (v & ~terminated if self.terms[k].time_out else v) for k, v in values.items()}
        return Terminations(terminated, truncated, causes)
