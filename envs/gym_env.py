"""One robot of the locomotion task as a standard `gymnasium.Env`, for users of other RL libraries.

Registered as ``humanoid_prior/<Robot>-<Terrain>-v0`` (see `registration`), e.g.::

    import gymnasium, humanoid_prior.envs.registration
    env = gymnasium.make("humanoid_prior/G1-Flat-v0", render_mode="rgb_array")

Training at scale should use the batched `LocomotionEnv` (`LocomotionVecEnv` for SB3) instead: this
wrapper runs a batch of one. Episodes end by themselves (falls are ``terminated``, the task's time limit
is ``truncated``), so no `TimeLimit` wrapper is needed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from .locomotion import LocomotionEnv
from .spaces import action_space, observation_space
from .task_cfg import TaskCfg, task_preset

Obs = dict[str, np.ndarray]


class LocomotionGymEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A single env of `LocomotionEnv`: dict observations (group -> float32 (D,)), joint actions (J,).

    `overrides` replace fields of the preset's `TaskCfg` (e.g. ``episode_length_s=5.0`` or
    ``terminations=TerminationCfg(...)``); whatever they say, the simulator holds one env
    (``sim.num_envs`` = 1) stepped by one thread (``sim.nthread`` = 1).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012

    def __init__(
        self,
        robot: str = "g1",
        terrain: str = "rough",
        render_mode: str | None = None,
        render_width: int = 640,
        render_height: int = 480,
        **overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}."
            )
        self.cfg = self._make_cfg(robot, terrain, overrides)
        self.render_mode = render_mode
        self.render_width = render_width
        self.render_height = render_height
        self._env = LocomotionEnv(self.cfg)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self._env.dt)}
        self.observation_space = observation_space(self._env.obs_sizes)
        self.action_space = action_space(self._env.num_joints, self.cfg.action_clip)
        self._seeded = False
        self._closed = False

    @staticmethod
    def _make_cfg(robot: str, terrain: str, overrides: dict[str, Any]) -> TaskCfg:
        fields = {f.name for f in dataclasses.fields(TaskCfg)} - {"robot", "robot_file"}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(
                f"unknown TaskCfg field(s) {unknown}; "
                f"fields that can be overridden: {', '.join(sorted(fields))}."
            )
        cfg = dataclasses.replace(task_preset(robot, terrain, num_envs=1), **overrides)
        return cfg.with_batch(1, nthread=1)

    @property
    def dt(self) -> float:
        """Control period (s)."""
        return self._env.dt

    @property
    def locomotion_env(self) -> LocomotionEnv:
        """The underlying batch-of-one env."""
        return self._env

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Start an episode; return (observation, info).

        `seed` restarts every random stream of the task (commands, DR, noise, terrain placement). The
        first reset without a seed draws one from `np_random` (itself seeded from the OS), so unseeded
        envs in one process do not replay the same episodes.
        """
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self._seeded = True
        obs = self._env.reset(seed=seed)
        return {g: v[0] for g, v in obs.items()}, {}

    def step(self, action: np.ndarray) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """One control step. When the episode ends, the returned observation is its last one."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self._env.num_joints,):
            raise ValueError(
                f"action must have shape ({self._env.num_joints},) (joints of '{self.cfg.robot}'), "
                f"got {action.shape}."
            )
        obs, reward, terminated, truncated, info = self._env.step(action[None])
        out_info: dict[str, Any] = {"log": info["log"]}
        if len(info["done_ids"]):
            # The batch has already started the next episode; gymnasium's user expects the last
            # observation of this one, and calls reset() next.
            obs = info["terminal_obs"]
            out_info["episode"] = {"r": float(info["episode"]["r"][0]), "l": int(info["episode"]["l"][0])}
        return (
            {g: v[0] for g, v in obs.items()},
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            out_info,
        )

    def render(self) -> np.ndarray | None:
        """An RGB frame (H, W, 3) uint8 from a camera tracking the robot, when render_mode is "rgb_array"."""
        if self.render_mode != "rgb_array":
            gym.logger.warn(
                "render() called without render_mode='rgb_array'; "
                "pass it to gymnasium.make(..., render_mode='rgb_array')."
            )
            return None
        return self._env.render(0, self.render_width, self.render_height)

    def close(self) -> None:
        """Free the simulator and renderer; idempotent."""
        if not self._closed:
            self._closed = True
            self._env.close()
