"""Gymnasium ids ``humanoid_prior/<Robot>-<Terrain>-v0`` for every built-in robot and terrain preset.

Importing this module registers them (cheaply: only names and an entry-point string; MuJoCo
is imported when an env is made)::

    import gymnasium, humanoid_prior.envs.registration
    env = gymnasium.make("humanoid_prior/G1-Rough-v0")

No ``max_episode_steps`` is set: the env truncates its episodes itself (``TaskCfg.episode_length_s``).
"""

from __future__ import annotations

import gymnasium as gym

from .presets import preset_names

NAMESPACE = "humanoid_prior"
ENTRY_POINT = "humanoid_prior.envs.gym_env:LocomotionGymEnv"


def _camel(name: str) -> str:
    """``berkeley_humanoid`` -> ``BerkeleyHumanoid``, ``g1`` -> ``G1``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def env_id(robot: str, terrain: str) -> str:
    """The gymnasium id of a (robot, terrain) preset, e.g. ``humanoid_prior/G1-Rough-v0``."""
    return f"{NAMESPACE}/{_camel(robot)}-{_camel(terrain)}-v0"


def register_all() -> list[str]:
    """Register every (robot, terrain) preset not registered yet; return all their ids."""
    ids = []
    for robot, terrain in preset_names():
        id_ = env_id(robot, terrain)
        if id_ not in gym.registry:
            gym.register(id=id_, entry_point=ENTRY_POINT, kwargs={"robot": robot, "terrain": terrain})
        ids.append(id_)
    return ids


ENV_IDS: list[str] = register_all()
"""Every registered id, robots in `ROBOTS` order, flat before rough."""
