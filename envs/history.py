"""A per-env history of observation frames, oldest first: the student's input on the robot and in training.

The same class feeds the student during training (`humanoid_prior.runners.student_env`) and on the robot
(`deploy`), so the frame order cannot differ between them. A new episode fills every slot with its
first frame (a robot that just started has no past, and zeros would look like a fall).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class FrameHistory:
    """(N, H, D) ring of the last H frames per env; `flat()` is (N, H * D) ordered oldest to newest."""

    def __init__(self, num_envs: int, length: int, frame_dim: int) -> None:
        if length < 1:
            raise ValueError(f"history length must be >= 1, got {length}.")
        self.length = length
        self.frame_dim = frame_dim
        self._frames = np.zeros((num_envs, length, frame_dim), dtype=np.float32)

    def reset(self, frames: np.ndarray, env_ids: npt.NDArray[np.integer] | None = None) -> None:
        """Fill every slot of `env_ids` (default: all) with their current frame (len(ids), D)."""
        ids = slice(None) if env_ids is None else np.asarray(env_ids, dtype=np.intp)
        frames = self._check(frames)
        self._frames[ids] = frames[:, None, :]

    def push(self, frames: np.ndarray) -> None:
        """Append one frame (N, D) per env, dropping the oldest."""
        frames = self._check(frames)
        if len(frames) != len(self._frames):
            raise ValueError(f"push expects one frame per env ({len(self._frames)}), got {len(frames)}.")
        self._frames[:, :-1] = self._frames[:, 1:]
        self._frames[:, -1] = frames

    def flat(self) -> np.ndarray:
        """(N, H * D) float32 copy, frame t-H+1 first and frame t last."""
        return self._frames.reshape(len(self._frames), -1).copy()

    def _check(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.frame_dim:
            raise ValueError(f"history frames must be (envs, {self.frame_dim}), got {frames.shape}.")
        return frames


def history_key(group: str) -> str:
    """The observation key of a group's frame history, e.g. ``proprio_history``."""
    return f"{group}_history"


class GroupHistories:
    """The frame histories of the observation groups that declare one (`ObsGroupCfg.history_len` > 1).

    `LocomotionEnv` keeps them, so training, evaluation, videos and export read one history protocol:
    each step pushes the frame the step observed (an ended episode's last frame), then an ended env starts
    its next episode's history from that episode's first frame.
    """

    def __init__(self, lengths: dict[str, int], sizes: dict[str, int], num_envs: int) -> None:
        self.histories = {g: FrameHistory(num_envs, n, sizes[g]) for g, n in lengths.items() if n > 1}

    def sizes(self) -> dict[str, int]:
        """Values per env of each history key."""
        return {history_key(g): h.length * h.frame_dim for g, h in self.histories.items()}

    def restart(self, obs: dict[str, np.ndarray]) -> None:
        """Fill every env's histories with its current frame `obs[group]`."""
        for group, history in self.histories.items():
            history.reset(obs[group])

    def push(
        self, obs: dict[str, np.ndarray], done_ids: npt.NDArray[np.integer], terminal: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """One step: push `obs` (`terminal` rows for `done_ids`), restart the ended envs from `obs`.

        Returns each history key's value at the end of the ended episodes (rows in `done_ids` order).
        """
        ended = {}
        for group, history in self.histories.items():
            if not len(done_ids):
                history.push(obs[group])
                continue
            frames = obs[group].copy()
            frames[done_ids] = terminal[group]
            history.push(frames)
            ended[history_key(group)] = history.flat()[done_ids]
            history.reset(obs[group][done_ids], done_ids)
        return ended

    def current(self) -> dict[str, np.ndarray]:
        """Each history key's (N, H * D) value, oldest frame first."""
        return {history_key(g): h.flat() for g, h in self.histories.items()}
