"""Start a teacher from another teacher run on a task with a different observation layout.

The rough teacher starts from the flat one (legged_gym and mjlab users do the same by hand): walking is
learnt on flat ground, where it is cheap, and the terrain curriculum then only has to teach climbing.
The two tasks observe different height scans (flat: a point under the base and each foot; rough: a
45 + 10 point grid), so the networks' first layers differ in width. Every input present in both layouts
keeps its weights and normaliser statistics (terms by name, scan points by offset; scan points only
from a source that read terrain with them, see `column_map`). The other inputs get zero weights, so the
warm-started policy acts exactly as its source does on average flat ground (a rough source: on any
ground) until training teaches it to use them. Deeper layers, the action
noise and the learning rate are copied; the optimizer starts fresh (its moments have the old shapes).
The step count continues, so a result reports the steps of both stages together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from humanoid_prior.config import TeacherCfg, from_saved
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.observations import TermSlice
from humanoid_prior.envs.task_cfg import ScanCfg
from humanoid_prior.normaliser import ObsNormaliser
from humanoid_prior.runners.training import TrainingSession
from humanoid_prior.runs.checkpoint import latest_checkpoint, load_checkpoint

FIRST_LAYERS = ("mlp_extractor.policy_net.0.weight", "mlp_extractor.value_net.0.weight")
"""The input layers of SB3's actor and critic MLPs: the only weights whose shape depends on the layout."""


def source_layout(cfg: TeacherCfg) -> list[TermSlice]:
    """The observation layout (of the policy's group) of a teacher config, from a one-env copy of its task."""
    env = LocomotionEnv(cfg.task.with_batch(1, nthread=1), seed=0)
    try:
        return env.observations.layouts[cfg.network.obs_group]
    finally:
        env.close()


def column_keys(layout: list[TermSlice], scan: ScanCfg, num_feet: int) -> dict[Any, int]:
    """What each input column reads -> its index: (term, i), or (term, foot, x, y) for scan points."""
    points: dict[str, list[Any]] = {
        "height_scan": [(x, y) for x in scan.base_x for y in scan.base_y],
        "feet_height_scan": [(foot, x, y) for foot in range(num_feet) for x, y in scan.foot_xy],
    }
    keys: dict[Any, int] = {}
    for term in layout:
        labels = points.get(term.name, list(range(term.stop - term.start)))
        for column, label in zip(range(term.start, term.stop), labels, strict=True):
            keys[(term.name, label)] = column
    return keys


SCAN_TERMS = ("height_scan", "feet_height_scan")


def column_map(
    source: list[TermSlice],
    source_scan: ScanCfg,
    target: list[TermSlice],
    target_scan: ScanCfg,
    num_feet: int,
    source_on_terrain: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(target columns, source columns) of every input both layouts read.

    Height-scan points (by their offset) are carried only from a source that trained on terrain
    (`source_on_terrain`) or between identical scan layouts: a flat teacher's scan read the same flat
    ground all its life, so its weights on them hold no knowledge of terrain, and its normaliser saw a
    variance near 0 that would blow real terrain up to the clip. A rough teacher's points are carried
    into a finer scan that contains them, so it keeps what it knows of the terrain while it learns the
    points between them.
    """
    old = column_keys(source, source_scan, num_feet)
    new = column_keys(target, target_scan, num_feet)
    carry_scan = source_on_terrain or source_scan == target_scan
    shared = [key for key in new if key in old and (carry_scan or key[0] not in SCAN_TERMS)]
    return np.array([new[k] for k in shared], dtype=np.intp), np.array(
        [old[k] for k in shared], dtype=np.intp
    )


def warm_start(session: TrainingSession, source: Path) -> dict[str, Any]:
    """Load a checkpoint into a fresh `session`; returns what was carried over.

    `source` is a run directory (its newest checkpoint) or one checkpoint file, e.g. a policy a result
    selected and kept under <run>/checkpoints/evaluated, so a later stage can start from it.
    """
    path = source if source.is_file() else latest_checkpoint(source / "checkpoints")
    data = load_checkpoint(path, kind=session.kind, robot=session.env.robot.name,
                           action_dim=session.env.num_joints)  # fmt: skip
    source_cfg: TeacherCfg = from_saved(TeacherCfg, data["config"])
    group = session.cfg.network.obs_group
    shape = ("actor_hidden", "critic_hidden", "obs_group")
    if any(getattr(source_cfg.network, f) != getattr(session.cfg.network, f) for f in shape):
        raise ValueError(
            f"--run.init-from {source}: its networks ({source_cfg.network}) differ in size or input "
            f"group from this run's ({session.cfg.network}); use the same --network widths and group."
        )
    target = session.env.observations.layouts[group]
    num_feet = len(session.env.robot.feet_bodies)
    new, old = column_map(source_layout(source_cfg), source_cfg.task.scan, target, session.cfg.task.scan,
                          num_feet, source_on_terrain=source_cfg.task.terrain is not None)  # fmt: skip
    width = target[-1].stop

    state = {}
    for key, value in data["policy"].items():
        if key in FIRST_LAYERS:
            weight = torch.zeros(value.shape[0], width, dtype=value.dtype)
            weight[:, torch.as_tensor(new)] = value[:, torch.as_tensor(old)]
            state[key] = weight
        else:
            state[key] = value
    session.model.policy.load_state_dict(state)

    rms = session.venv.obs_rms[group]
    saved = ObsNormaliser.from_checkpoint(data)
    mean, var = np.zeros(width), np.ones(width)  # new inputs (scan heights, m) enter unscaled
    mean[new], var[new] = saved.mean[group][old], saved.var[group][old]
    # The source's count keeps the carried statistics as the policy learnt them. Measured with a count of
    # one iteration instead: the statistics moved within a few iterations, the policy's inputs with
    # them, and its tracking error went from 0.15 to 0.76 m/s in 40 k steps.
    rms.mean, rms.var, rms.count = mean, var, float(data["obs_rms"][group]["count"])

    steps = int(data["num_timesteps"])
    session.model.num_timesteps = session.trained_steps = steps
    session.env.env_steps = steps  # the randomisation curriculum continues where the source left it
    if session.model.adaptive_lr is not None and data.get("learning_rate") is not None:
        session.model.adaptive_lr.value = float(data["learning_rate"])
    carried = np.zeros(width, dtype=bool)
    carried[new] = True
    return {
        "source": str(source),
        "checkpoint": str(path),
        "env_steps": steps,
        "source_minutes": round(float(data["trained_seconds"]) / 60.0, 2),  # this run's own clock starts at 0
        "inputs_carried": int(carried.sum()),
        "inputs_new": {
            t.name: int((~carried[t.start : t.stop]).sum())
            for t in target
            if not carried[t.start : t.stop].all()
        },
    }
