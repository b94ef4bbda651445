"""What the operator tells the robot: velocity commands, arm and stop, from the G1's remote or a keyboard.

The G1's wireless remote arrives inside every `LowState_` (40 bytes, unitree_sdk2's `xRockerBtnDataStruct`):
a little-endian uint16 of buttons at byte 2 and float32 sticks lx at 4, rx at 8, ry at 12, ly at 20,
each in [-1, 1] with ly > 0 pushed forward. The command is v_x = ly, v_y = -lx, yaw rate = -rx, each
scaled to the trained range in that direction (the runtime clamps again). Buttons: start arms the robot
(damping -> soft start -> policy), select stops it (damping, latched).

The keyboard source reads single keys: w/s v_x ±0.1, a/d v_y ±0.1, q/e yaw rate ±0.2, space zero,
Enter arms, x stops. Both give an `OperatorInput` per poll.
"""

from __future__ import annotations

import queue
import struct
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

import numpy as np

BUTTONS = (
    "R1",
    "L1",
    "start",
    "select",
    "R2",
    "L2",
    "F1",
    "F2",
    "A",
    "B",
    "X",
    "Y",
    "up",
    "right",
    "down",
    "left",
)
"""Bit i of the remote's button word (unitree_sdk2 / unitree_rl_gym key map)."""
STICK_DEADZONE = 0.05


@dataclass(frozen=True)
class RemoteReading:
    """The remote's buttons and sticks."""

    buttons: frozenset[str]
    lx: float
    ly: float
    rx: float
    ry: float


def parse_remote(raw: bytes) -> RemoteReading:
    """Buttons and sticks of the 40 remote bytes of a `LowState_`; an error for another length."""
    if len(raw) != 40:
        raise ValueError(f"the wireless remote field has 40 bytes, got {len(raw)}")
    (keys,) = struct.unpack_from("<H", raw, 2)
    lx, rx, ry = struct.unpack_from("<3f", raw, 4)
    (ly,) = struct.unpack_from("<f", raw, 20)
    pressed = frozenset(name for i, name in enumerate(BUTTONS) if keys >> i & 1)
    return RemoteReading(pressed, lx, ly, rx, ry)


def remote_bytes(reading: RemoteReading) -> bytes:
    """The 40 bytes a remote in this state sends (for simulators and tests)."""
    raw = bytearray(40)
    keys = sum(1 << BUTTONS.index(b) for b in reading.buttons)
    struct.pack_into("<H", raw, 2, keys)
    struct.pack_into("<3f", raw, 4, reading.lx, reading.rx, reading.ry)
    struct.pack_into("<f", raw, 20, reading.ly)
    return bytes(raw)


def _scaled(stick: float, low: float, high: float) -> float:
    """A stick value in [-1, 1] onto [low, high]: +1 -> high, -1 -> low (0 -> 0), with a dead zone."""
    s = float(np.clip(stick, -1.0, 1.0))
    if abs(s) < STICK_DEADZONE or not np.isfinite(s):
        return 0.0
    return s * high if s > 0 else -s * low


def remote_command(reading: RemoteReading, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """(v_x, v_y, yaw rate) from the sticks, within the trained `ranges` (a manifest's command_ranges)."""
    return np.array([
        _scaled(reading.ly, *ranges["lin_vel_x"]),
        _scaled(-reading.lx, *ranges["lin_vel_y"]),
        _scaled(-reading.rx, *ranges["ang_vel_yaw"]),
    ])  # fmt: skip


@dataclass(frozen=True)
class OperatorInput:
    """One poll of an operator source."""

    command: np.ndarray
    arm: bool = False
    stop: bool = False


class RemoteOperator:
    """Commands from the G1's wireless remote (the `remote()` bytes of a `UnitreeG1Robot`)."""

    def __init__(self, read_bytes: object, ranges: Mapping[str, tuple[float, float]]) -> None:
        self.read_bytes = read_bytes
        self.ranges = ranges

    def poll(self) -> OperatorInput:
        """The remote now."""
        reading = parse_remote(self.read_bytes())  # type: ignore[operator]
        return OperatorInput(remote_command(reading, self.ranges), "start" in reading.buttons,
                             "select" in reading.buttons)  # fmt: skip


KEY_STEPS = {"w": (0, 0.1), "s": (0, -0.1), "a": (1, 0.1), "d": (1, -0.1), "q": (2, 0.2), "e": (2, -0.2)}


class KeyboardOperator:
    """Commands from single keys on a stream (stdin by default), read on a background thread."""

    def __init__(self, ranges: Mapping[str, tuple[float, float]], stream: IO[str] | None = None) -> None:
        self.low = np.array([ranges[k][0] for k in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw")])
        self.high = np.array([ranges[k][1] for k in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw")])
        self.command = np.zeros(3)
        self._keys: queue.Queue[str] = queue.Queue()
        self._stream = stream or sys.stdin
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            ch = self._stream.read(1)
            if not ch:
                return
            self._keys.put(ch)

    def poll(self) -> OperatorInput:
        """Apply the keys pressed since the last poll."""
        arm = stop = False
        while not self._keys.empty():
            key = self._keys.get_nowait().lower()
            if key in KEY_STEPS:
                axis, step = KEY_STEPS[key]
                self.command[axis] = round(self.command[axis] + step, 3)
            elif key == " ":
                self.command[:] = 0.0
            elif key in "\r\n":
                arm = True
            elif key == "x":
                stop = True
        np.clip(self.command, self.low, self.high, out=self.command)
        return OperatorInput(self.command.copy(), arm, stop)
