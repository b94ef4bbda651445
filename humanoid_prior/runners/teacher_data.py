"""Teacher motion data: motion-feature transitions (s, s') of a trained teacher, the discriminator's "real".

The teacher is rolled out in its own training task (domain randomisation and noise on; on rough
ground its envs stand on the terrain levels its checkpoint had reached) and every control step adds
one transition per env that did not fall on it. Data are stored as float16 in
`<teacher run>/teacher_data/motion_<teacher steps>_<size>.npz` and reused by every student of that
teacher checkpoint; `refresh` says when to make them again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from humanoid_prior.config import TeacherDataCfg
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.runs.checkpoint import atomic_write, latest_checkpoint, load_checkpoint
from humanoid_prior.runs.policy_io import LoadedPolicy, load_policy


@dataclass
class MotionData:
    """Transitions of the teacher: `pairs` (B, 2M) = [s, s'] float32 and their `commands` (B, 3)."""

    pairs: np.ndarray
    commands: np.ndarray
    path: Path

    @property
    def feature_dim(self) -> int:
        """M, the length of one motion-feature frame."""
        return self.pairs.shape[1] // 2


def data_path(teacher_run: Path, teacher: LoadedPolicy, cfg: TeacherDataCfg) -> Path:
    """Where the data of this teacher checkpoint and size live."""
    return teacher_run / "teacher_data" / f"motion_{teacher.num_timesteps}_{cfg.transitions}.npz"


def record(teacher: LoadedPolicy, cfg: TeacherDataCfg, teacher_levels: np.ndarray | None) -> MotionData:
    """Roll the teacher out and collect `cfg.transitions` transitions (failing steps left out)."""
    env = LocomotionEnv(teacher.cfg.task.with_batch(cfg.num_envs), seed=cfg.seed)
    try:
        env.reset(seed=cfg.seed)
        if env.curriculum is not None and teacher_levels is not None and len(teacher_levels):
            ids = np.arange(env.num_envs)
            levels = env.rng.choice(teacher_levels, env.num_envs)
            env.curriculum.place(ids, levels, env.curriculum.types)
            env.reset()
        obs, motion = env.observe(), env.motion_features()
        pairs, commands, count = [], [], 0
        while count < cfg.transitions:
            cmd = env.commands.commands.copy()
            obs, _, terminated, _, info = env.step(teacher(obs))
            after = env.motion_features()
            done = info["done_ids"]
            if len(done):
                after[done] = info["terminal_motion"]
            keep = ~terminated
            pairs.append(np.hstack([motion, after])[keep])
            commands.append(cmd[keep])
            count += int(keep.sum())
            motion = env.motion_features()
    finally:
        env.close()
    return MotionData(
        pairs=np.concatenate(pairs)[: cfg.transitions].astype(np.float32),
        commands=np.concatenate(commands)[: cfg.transitions].astype(np.float32),
        path=Path(),
    )


def load_or_record(teacher_run: Path, cfg: TeacherDataCfg, log: bool = True) -> MotionData:
    """The teacher's motion data: read from the run's cache, or recorded and cached (atomically)."""
    teacher = load_policy(teacher_run)
    path = data_path(teacher_run, teacher, cfg)
    if cfg.refresh not in ("if_teacher_changed", "always"):
        raise ValueError(
            f"teacher data refresh must be 'if_teacher_changed' or 'always', got {cfg.refresh!r}."
        )
    if path.is_file() and cfg.refresh == "if_teacher_changed":
        return read(path)
    start = time.perf_counter()
    levels = load_checkpoint(latest_checkpoint(teacher_run / "checkpoints")).get("curriculum_levels")
    data = record(teacher, cfg, None if levels is None else torch.as_tensor(levels).numpy())
    atomic_write(path, lambda f: np.savez_compressed(
        f, pairs=data.pairs.astype(np.float16), commands=data.commands.astype(np.float16)
    ))  # fmt: skip
    if log:
        print(f"teacher data: {len(data.pairs)} transitions in {time.perf_counter() - start:.0f} s -> {path}")
    data.path = path
    return data


def read(path: Path) -> MotionData:
    """Load stored teacher data, with a clear error for a damaged file."""
    try:
        with np.load(path) as f:
            pairs, commands = f["pairs"].astype(np.float32), f["commands"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"teacher data {path} is unreadable ({exc}); delete it to record it again."
        ) from None
    if pairs.ndim != 2 or pairs.shape[1] % 2 or len(pairs) != len(commands):
        raise ValueError(f"teacher data {path} has inconsistent shapes; delete it to record it again.")
    return MotionData(pairs=pairs, commands=commands, path=path)
