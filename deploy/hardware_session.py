"""A session on a robot: wait for it, damp until the operator arms it, then run the policy until stopped.

The order is the one Unitree's own deployment follows, with this runtime's safety on top:
1. wait for the first state (a clear error if none comes: wrong interface, robot off);
2. damping (kp 0) on every motor, sent every control period, until the operator arms;
3. the runtime's soft start to the default pose, then the policy; the operator's sticks or keys set
   the command (clamped to the trained ranges), and the stop input latches damping.
A stale or corrupt state at any point latches damping too (the runtime's emergency stop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .operator import OperatorInput
from .runtime import LoopStats, Runtime
from .unitree_g1 import UnitreeG1Robot

REHEARSE_S = 0.0025
"""Rehearse a tick this long before it: the rehearsal (~1 ms on a cold core) ends before the window
for the state it answers opens (half a state period, 1 ms, before the tick)."""


class Operator(Protocol):
    """A source of operator input, polled once per control period."""

    def poll(self) -> OperatorInput:
        """Command, arm and stop now."""
        ...


@dataclass
class HeldCommand:
    """An operator that holds one command and arms at once (scripted runs, tests, benchmarks)."""

    command: tuple[float, float, float]

    def poll(self) -> OperatorInput:
        """The held command, armed."""
        return OperatorInput(np.asarray(self.command, dtype=np.float64), arm=True)


def run_session(
    runtime: Runtime,
    robot: UnitreeG1Robot,
    operator: Operator,
    seconds: float,
    arm_timeout_s: float = 600.0,
    on_tick: Callable[[Runtime], object] | None = None,
    rehearse_s: float = REHEARSE_S,
) -> LoopStats:
    """Steps 1-3 of the module docstring; `seconds` of runtime after arming (soft start included).

    Each tick is rehearsed `rehearse_s` before it (`Runtime.rehearse`; 0: off).
    """
    robot.wait_for_state()
    period = runtime.manifest.control_period_s
    t = robot.now()
    deadline = t + arm_timeout_s
    while True:
        robot.wait_until(t)
        runtime.send_damping()
        op = operator.poll()
        if op.stop:
            runtime.safety.trip("operator stop before arming", robot.now())
            return runtime.stats
        if op.arm:
            runtime.set_command(op.command)
            break
        if robot.now() > deadline:
            raise TimeoutError(f"not armed within {arm_timeout_s:.0f} s; the robot stays damped.")
        t += period

    def tick(rt: Runtime) -> None:
        op = operator.poll()
        rt.set_command(op.command)
        if op.stop:
            rt.safety.trip("operator stop", robot.now())
        if on_tick is not None:
            on_tick(rt)

    robot.wait_for_next_state()  # start the schedule in phase with the state stream
    return runtime.run(seconds, tick, rehearse_s)
