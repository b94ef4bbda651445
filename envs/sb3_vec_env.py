"""stable-baselines3's `VecEnv` interface over the batched `LocomotionEnv`.

The whole batch is stepped by one `LocomotionEnv.step` call (no subprocesses, no per-env Python
objects); this adapter only reshapes its results into SB3's conventions:

* observations: a dict group -> float32 (N, D), matching a `spaces.Dict` of unbounded Boxes, so
  ``"MultiInputPolicy"`` works (and the trainer can pick groups for actor and critic);
* ``dones = terminated | truncated``; for each env that ended, its info holds the episode's last
  observation (``terminal_observation``, a dict group -> (D,)), ``TimeLimit.truncated`` (a time-out
  that PPO bootstraps from) and ``episode`` ({"r", "l", "t"}, what SB3's `Monitor` would write), so
  ``ep_info_buffer`` and ``rollout/ep_rew_mean`` work without wrapping anything;
* the task's monitoring scalars (``info["log"]`` of the last step) are kept in `last_log` instead of
  being copied into every env's info.

Envs that ended are already reset when `step_wait` returns, as SB3 expects of a VecEnv.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from .locomotion import LocomotionEnv
from .spaces import action_space, observation_space


class LocomotionVecEnv(VecEnv):
    """A `LocomotionEnv` of N robots seen by stable-baselines3 as a VecEnv of N environments.

    Attributes live on the one batched env, so `get_attr` returns the same value for every index and
    `set_attr`/`env_method` act on the whole batch. `render` draws env 0 (``render_mode`` "rgb_array",
    frames of `render_size` = (width, height)); `get_images` draws every env.
    """

    def __init__(
        self,
        env: LocomotionEnv,
        render_mode: str | None = "rgb_array",
        render_size: tuple[int, int] = (640, 480),
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
        self.env = env
        self._render_mode = render_mode
        self.render_size = render_size
        self.last_log: dict[str, float] = {}
        """The task's monitoring scalars (``info["log"]``) of the last step."""
        self.last_info: dict[str, Any] = {"done_ids": np.zeros(0, dtype=np.intp)}
        """`LocomotionEnv.step`'s whole info of the last step (for wrappers that need terminal states)."""
        self._actions: np.ndarray | None = None
        self._pending_seed: int | None = None
        self._closed = False
        self._start_time = time.time()
        super().__init__(
            env.num_envs,
            observation_space(env.obs_sizes),
            action_space(env.num_joints, env.cfg.action_clip),
        )

    # --- stepping ---------------------------------------------------------------------------------------

    def reset(self) -> VecEnvObs:
        """Reset every env (with the seed given to `seed`, if any); return the obs dict (N, D) float32."""
        obs = self.env.reset(seed=self._pending_seed)
        self._pending_seed = None
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the (N, num_joints) actions for `step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step the batch with the stored actions; see the module docstring for the returned infos."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions).")
        actions, self._actions = self._actions, None
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self.last_log = info["log"]
        self.last_info = info
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done_ids = info["done_ids"]
        if len(done_ids):
            terminal = info["terminal_obs"]
            returns, lengths = info["episode"]["r"], info["episode"]["l"]
            elapsed = round(time.time() - self._start_time, 6)
            for k, i in enumerate(done_ids.tolist()):
                infos[i] = {
                    "terminal_observation": {
                        g: np.asarray(v[k], dtype=np.float32) for g, v in terminal.items()
                    },
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {"r": float(returns[k]), "l": int(lengths[k]), "t": elapsed},
                }
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the simulator and renderer; idempotent."""
        if not self._closed:
            self._closed = True
            self.env.close()

    # --- seeding and rendering ----------------------------------------------------------------------------

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed every random stream of the batch at the next `reset` (one seed for the batch).

        Returns ``seed + i`` per env, as SB3's VecEnvs do; without `seed`, one is drawn at random.
        """
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        self._pending_seed = seed
        return [seed + i for i in range(self.num_envs)]

    def cancel_seed(self) -> None:
        """Forget a seed given to `seed`: the next `reset` keeps the env's random state as it is.

        A resumed run restores that state from its checkpoint after SB3 has seeded the env.
        """
        self._pending_seed = None

    def render(self, mode: str | None = None) -> np.ndarray | None:
        """An RGB frame (H, W, 3) uint8 of env 0 in "rgb_array" mode; None (with a warning) otherwise."""
        mode = mode or self._render_mode
        if mode != "rgb_array":
            warnings.warn(
                f"LocomotionVecEnv renders only in 'rgb_array' mode (asked for {mode!r}).", stacklevel=2
            )
            return None
        width, height = self.render_size
        return self.env.render(0, width, height)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One RGB frame per env (slow for large batches: every env is drawn)."""
        width, height = self.render_size
        return [self.env.render(i, width, height) for i in range(self.num_envs)]

    # --- attributes -------------------------------------------------------------------------------------

    def _count(self, indices: VecEnvIndices) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The batched env's attribute, repeated once per requested index."""
        value = self._render_mode if attr_name == "render_mode" else getattr(self.env, attr_name)
        return [value] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the batched env; it is shared, so only all envs at once can be set."""
        if self._count(indices) != self.num_envs:
            raise ValueError(
                f"attribute '{attr_name}' belongs to the whole batch of {self.num_envs} envs; "
                "it cannot be set for some envs only."
            )
        if attr_name == "render_mode":
            self._render_mode = value
        else:
            setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the batched env once; its result is repeated once per requested index."""
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """No env is wrapped (the batch is not made of gymnasium envs)."""
        return [False] * self._count(indices)
