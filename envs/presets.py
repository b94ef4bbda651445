"""The names of the task presets: every built-in robot on every terrain variant.

The one list of them, read by the task and teacher presets, the CLI, the benchmarks and the gymnasium
ids; it imports no simulator, so registering the ids stays cheap.
"""

from __future__ import annotations

from .robots import ROBOTS

TERRAIN_PRESETS = ("flat", "rough")
"""Terrain variants every robot has: a plane, and the tile curriculum."""


def preset_names() -> list[tuple[str, str]]:
    """Every (robot, terrain) preset, robots in `ROBOTS` order, flat before rough."""
    return [(r, t) for r in ROBOTS for t in TERRAIN_PRESETS]


def preset_name(robot: str, terrain: str) -> str:
    """The name the CLI and benchmarks use for a preset, e.g. 'g1_rough'."""
    return f"{robot}_{terrain}"


def parse_preset_name(name: str) -> tuple[str, str]:
    """(robot, terrain) of a preset name, with an error that lists the presets."""
    robot, _, terrain = name.rpartition("_")
    if (robot, terrain) not in preset_names():
        known = ", ".join(preset_name(r, t) for r, t in preset_names())
        raise ValueError(f"unknown preset '{name}'; presets: {known}.")
    return robot, terrain
