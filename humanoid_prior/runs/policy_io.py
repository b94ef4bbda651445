"""Load a trained policy from a run directory, without building the training env."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import MultiInputActorCriticPolicy

from humanoid_prior.config import StudentCfg, TeacherCfg, student_task
from humanoid_prior.envs.spaces import action_space, observation_space
from humanoid_prior.normaliser import ObsNormaliser
from humanoid_prior.policies.actor_critic import policy_kwargs
from humanoid_prior.policies.student_policy import StudentPolicy
from humanoid_prior.runs.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from humanoid_prior.runs.run_dir import STUDENT_KIND, TEACHER_KIND, load_run_config


@dataclass
class LoadedPolicy:
    """A trained teacher with its observation normaliser: raw observations in, actions out."""

    cfg: TeacherCfg | StudentCfg
    policy: MultiInputActorCriticPolicy
    normaliser: ObsNormaliser
    checkpoint: Path
    num_timesteps: int
    trained_seconds: float
    kind: str = TEACHER_KIND
    robot_description: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The robot the policy was trained on (`envs.robots.RobotCfg` as a dict)."""
    obs_layouts: dict[str, list[tuple[str, int]]] | None = None
    """Per observation group, its terms' names and sizes in order (None: an older checkpoint)."""
    joint_limits: list[tuple[float, float]] | None = None
    """The model's (lo, hi) range per actuated joint (rad) (None: an older checkpoint)."""

    def normalise(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each given key normalised with the training statistics and clipped as in training."""
        for key, value in obs.items():
            want = self.normaliser.size(key) if key in self.normaliser.mean else None
            if want is not None and np.shape(value)[-1:] != (want,):
                raise ValueError(
                    f"observation '{key}' has {np.shape(value)[-1:] or 'no'} values per env, but the policy "
                    f"in {self.checkpoint} was trained on {want}: it was trained for another robot or "
                    "observation layout (its run's config.json names both)."
                )
        return self.normaliser(obs)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Deterministic (mean) actions for a batch of raw observations."""
        with torch.no_grad():
            actions, _ = self.policy.predict(self.normalise(obs), deterministic=True)
        return np.asarray(actions)

    def reset(self) -> None:
        """Nothing to forget: the env keeps any history a policy reads."""


@dataclass
class LoadedStudent(LoadedPolicy):
    """A trained student: acts on the proprio history its env keeps.

    `cfg.task` is the student's task, whose proprio group gives `history_len` frames; the robot runtime
    keeps the same history on the robot (`envs.history.FrameHistory`).
    """

    history_len: int = 1
    kind: str = STUDENT_KIND

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Deterministic actions from the `proprio_history` observation."""
        if "proprio_history" not in obs:
            raise ValueError(
                f"a student acts on 'proprio_history'; the observations have {sorted(obs)}: make the env "
                "from the loaded student's cfg.task, whose proprio group keeps the history."
            )
        normalised = self.normalise({"proprio_history": obs["proprio_history"]})
        assert isinstance(self.policy, StudentPolicy)
        with torch.no_grad():
            mean, _ = self.policy.actor_outputs(
                {"proprio_history": torch.from_numpy(normalised["proprio_history"])}
            )
        return mean.numpy()


def load_policy(run_dir: Path, checkpoint: Path | None = None) -> LoadedPolicy:
    """The newest checkpoint of a teacher or student run, or its `checkpoint`, as a callable policy.

    `checkpoint` is another checkpoint of the same run, e.g. one kept at a periodic evaluation
    (<run>/checkpoints/evaluated/, named in evals.jsonl); the run's own config.json describes it.
    """
    if checkpoint is None:
        path = latest_checkpoint(run_dir / "checkpoints")
    else:
        # As evals.jsonl names it (relative to the run), or a path from here.
        path = (
            run_dir / checkpoint if not checkpoint.is_absolute() and not checkpoint.exists() else checkpoint
        )
        if not Path(os.path.abspath(path)).is_relative_to(os.path.abspath(run_dir)):
            raise CheckpointError(
                f"checkpoint {path} is not inside the run directory {run_dir}; give the run it belongs to "
                "(its config.json describes the policy)."
            )
    data = load_checkpoint(path)
    if data["kind"] == STUDENT_KIND:
        return _load_student(run_dir, path, data)
    if data["kind"] != TEACHER_KIND:
        raise CheckpointError(f"{path} is a '{data['kind']}' checkpoint, not a teacher or student one.")
    cfg = load_run_config(run_dir)
    _check_robot(cfg, data, path)
    obs_sizes = {str(k): int(v) for k, v in data["obs_sizes"].items()}
    policy = MultiInputActorCriticPolicy(
        observation_space(obs_sizes), action_space(int(data["action_dim"]), cfg.task.action_clip),
        lr_schedule=lambda _: 0.0, **policy_kwargs(cfg.network),
    )  # fmt: skip
    return LoadedPolicy(cfg=cfg, **_trained(policy, data, path))


def _check_robot(cfg: TeacherCfg | StudentCfg, data: dict[str, Any], path: Path) -> None:
    """A checkpoint copied into another robot's run would be fed that robot's observations."""
    if cfg.task.robot_file is None and data["robot"] != cfg.task.robot:
        raise CheckpointError(
            f"checkpoint {path} was trained for robot '{data['robot']}', but its run directory's config.json "
            f"says '{cfg.task.robot}'; the checkpoint belongs to another run."
        )


def _trained(policy: MultiInputActorCriticPolicy, data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The checkpoint's weights loaded into `policy` (eval mode), and the fields every loaded policy has."""
    policy.load_state_dict(data["policy"])
    policy.eval()
    layouts, limits = data.get("obs_layouts"), data.get("joint_limits")
    return {
        "policy": policy,
        "normaliser": ObsNormaliser.from_checkpoint(data),
        "checkpoint": path,
        "num_timesteps": int(data["num_timesteps"]),
        "trained_seconds": float(data["trained_seconds"]),
        "robot_description": dict(data.get("robot_description") or {}),
        "obs_layouts": None
        if layouts is None
        else {str(g): [(str(name), int(size)) for name, size in terms] for g, terms in layouts.items()},
        "joint_limits": None if limits is None else [(float(lo), float(hi)) for lo, hi in limits],
    }


def _load_student(run_dir: Path, path: Path, data: dict[str, Any]) -> LoadedStudent:
    cfg = load_run_config(run_dir, StudentCfg)
    cfg = dataclasses.replace(cfg, task=student_task(cfg))
    _check_robot(cfg, data, path)
    sizes = {str(k): int(v) for k, v in data["obs_sizes"].items()}
    history_len = int(data["history_len"])
    space = observation_space(
        {"proprio_history": history_len * sizes["proprio"], "privileged": sizes["privileged"]}
    )
    aux = data["policy"].get("aux_head.weight")
    policy = StudentPolicy(
        space, action_space(int(data["action_dim"]), cfg.task.action_clip), lambda _: 0.0,
        actor_hidden=cfg.network.actor_hidden, critic_hidden=cfg.network.critic_hidden,
        aux_dim=0 if aux is None else int(aux.shape[0]), critic_group=cfg.critic_group,
    )  # fmt: skip
    return LoadedStudent(cfg=cfg, history_len=history_len, **_trained(policy, data, path))
