"""The student's view of the locomotion task: proprio history, training labels and the style reward.

`StudentVecEnv` (an SB3 `VecEnvWrapper`) wraps a `LocomotionVecEnv` of the student's task
(`config.student_task`) and returns, per env:

* ``proprio_history``: the last H frames of the noisy `proprio` group, oldest first, as the env keeps
  them (`envs.history`, whose `FrameHistory` the deploy runtime uses too), the student's only input;
* ``privileged``: the asymmetric critic's input;
* ``teacher_action``: the teacher's action for the privileged observation of this very state
  (the imitation label, DAgger-style), when a teacher is given;
* ``aux_target``: the auxiliary heads' targets in physical units, cut from the clean privileged group.

The labels travel with the observation so that SB3's rollout buffer keeps them aligned with each
sample (they are left out of observation normalisation). With a discriminator, every step's reward
becomes w_task * task + w_style * style * dt, and the transitions (s, s') of motion features are kept
for the discriminator's "fake" batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from humanoid_prior.envs.sb3_vec_env import LocomotionVecEnv
from humanoid_prior.policies.discriminator import MotionDiscriminator

BINARY_AUX_TERMS = frozenset({"feet_contact"})
"""Auxiliary targets that are 0/1 states (binary cross-entropy); the others are regressed (MSE)."""


@dataclass(frozen=True)
class AuxTerm:
    """One auxiliary target: a privileged term, where it sits in ``aux_target`` and how it is learnt."""

    name: str
    start: int
    stop: int
    binary: bool
    source: slice
    """Columns of the privileged group it comes from."""
    scale: float
    """The privileged group's scale of this term (targets are divided by it: physical units)."""


def aux_layout(env: LocomotionVecEnv, names: tuple[str, ...]) -> list[AuxTerm]:
    """Where each named privileged term lies, with a clear error for a name the group lacks."""
    group = env.env.observations.groups["privileged"]
    scales = {t.name: t.scale for t in group.terms}
    slices = {t.name: t for t in env.env.observations.layouts["privileged"]}
    layout, start = [], 0
    for name in names:
        if name not in slices:
            raise ValueError(
                f"auxiliary target {name!r} is not a privileged term; choose from {list(slices)}."
            )
        width = slices[name].stop - slices[name].start
        layout.append(AuxTerm(name, start, start + width, name in BINARY_AUX_TERMS,
                              slice(slices[name].start, slices[name].stop), scales[name]))  # fmt: skip
        start += width
    return layout


class StudentVecEnv(VecEnvWrapper):
    """Student observations, labels and the task + style reward over a `LocomotionVecEnv`."""

    def __init__(
        self,
        venv: LocomotionVecEnv,
        teacher: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
        aux_terms: tuple[str, ...] = (),
        discriminator: MotionDiscriminator | None = None,
        task_weight: float = 1.0,
        style_weight: float = 0.0,
    ) -> None:
        self.base = venv
        self.env = venv.env
        sizes = self.env.obs_sizes
        if "proprio_history" not in sizes:
            raise ValueError(
                "the student reads the env's proprio history: build the env from config.student_task(cfg) "
                "(its proprio group's history_len)."
            )
        self.teacher = teacher
        self.aux = aux_layout(venv, aux_terms)
        self.aux_dim = self.aux[-1].stop if self.aux else 0
        self.discriminator = discriminator
        self.task_weight = task_weight
        self.style_weight = style_weight
        self.last_log: dict[str, float] = {}
        self.fake_pairs: list[np.ndarray] = []
        """The student's motion transitions since the discriminator last took them."""
        self._motion = np.zeros((venv.num_envs, 0))
        boxes = {
            "proprio_history": sizes["proprio_history"],
            "privileged": sizes["privileged"],
        }
        if teacher is not None:
            boxes["teacher_action"] = self.env.num_joints
        if self.aux_dim:
            boxes["aux_target"] = self.aux_dim
        space = spaces.Dict({k: spaces.Box(-np.inf, np.inf, (d,), np.float32) for k, d in boxes.items()})
        super().__init__(venv, observation_space=space)

    @property
    def normalised_keys(self) -> list[str]:
        """Keys that observation normalisation may touch (never the labels)."""
        return ["proprio_history", "privileged"]

    def reset(self) -> VecEnvObs:
        """Reset every env; the history is filled with each env's first frame."""
        obs = self.venv.reset()
        assert isinstance(obs, dict)
        self._motion = self.env.motion_features()
        return self._student_obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Forward the actions."""
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step, update the history (ended envs restart theirs) and mix the style reward in."""
        obs, task_reward, dones, infos = self.venv.step_wait()
        assert isinstance(obs, dict)
        info = self.base.last_info
        done_ids = info["done_ids"]
        for i in done_ids.tolist():
            infos[i]["terminal_observation"] = self._terminal_obs(infos[i]["terminal_observation"])
        reward = self.task_weight * task_reward
        self.last_log = {**self.base.last_log, "student/task_reward": float(task_reward.mean())}
        if self.discriminator is not None:
            after = self.env.motion_features()
            if len(done_ids):
                after[done_ids] = info["terminal_motion"]
            pairs = np.hstack([self._motion, after]).astype(np.float32)
            self.fake_pairs.append(pairs)
            style = self.discriminator.style_reward(torch.from_numpy(pairs)).numpy()
            reward = reward + self.style_weight * self.env.dt * style
            self.last_log["student/style_reward"] = float(style.mean())
            self._motion = self.env.motion_features()
        return self._student_obs(obs), reward.astype(np.float32), dones, infos

    def take_fake_pairs(self) -> np.ndarray:
        """(B, 2M) student transitions collected since the last call (then forgotten)."""
        pairs = np.concatenate(self.fake_pairs) if self.fake_pairs else np.zeros((0, 0), np.float32)
        self.fake_pairs = []
        return pairs

    def aux_targets(self, privileged: np.ndarray) -> np.ndarray:
        """(N, K) auxiliary targets in physical units from raw privileged observations (N, D)."""
        out = np.empty((len(privileged), self.aux_dim), dtype=np.float32)
        for term in self.aux:
            out[:, term.start : term.stop] = privileged[:, term.source] / term.scale
        return out

    def _student_obs(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {"proprio_history": obs["proprio_history"], "privileged": obs["privileged"]}
        if self.teacher is not None:
            out["teacher_action"] = np.asarray(self.teacher({"privileged": obs["privileged"]}), np.float32)
        if self.aux_dim:
            out["aux_target"] = self.aux_targets(obs["privileged"])
        return out

    def _terminal_obs(self, terminal: dict[str, Any]) -> dict[str, np.ndarray]:
        """The last observation of an ended episode in the student's layout (labels are not needed)."""
        out = {"proprio_history": terminal["proprio_history"], "privileged": terminal["privileged"]}
        if self.teacher is not None:
            out["teacher_action"] = np.zeros(self.env.num_joints, np.float32)
        if self.aux_dim:
            out["aux_target"] = np.zeros(self.aux_dim, np.float32)
        return out
