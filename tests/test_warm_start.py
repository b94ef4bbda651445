"""A rough teacher started from a flat one (`--run.init-from`) acts as its source until it learns more."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_cfg, tiny_rough_task

from humanoid_prior.config import TeacherCfg
from humanoid_prior.runners.teacher import WARM_START, train_teacher
from humanoid_prior.runners.training import TrainingSession
from humanoid_prior.runners.warm_start import column_map, source_layout, warm_start
from humanoid_prior.runs.checkpoint import latest_checkpoint, policy_snapshot
from humanoid_prior.runs.policy_io import load_policy


def tiny_rough(tmp_path: Path, source: Path | None, name: str = "rough") -> TeacherCfg:
    flat = tiny_cfg(tmp_path)
    task = tiny_rough_task(num_rows=2)
    run = dataclasses.replace(flat.run, name=name, init_from=None if source is None else str(source))
    return dataclasses.replace(flat, task=task, run=run)


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny flat teacher (64 steps), shared: the tests only read it."""
    return train_teacher(tiny_cfg(tmp_path_factory.mktemp("flat")), use_wandb=False)


def test_the_warm_started_policy_acts_and_values_as_its_source(tmp_path: Path, flat_run: Path) -> None:
    source = load_policy(flat_run)
    session = TrainingSession(tiny_rough(tmp_path, flat_run), tmp_path / "rough")
    carried = warm_start(session, flat_run)
    assert carried["env_steps"] == source.num_timesteps == session.model.num_timesteps == 64
    # A flat teacher's scan read flat ground all its life: none of the rough grid is carried.
    assert carried["inputs_new"] == {"height_scan": 45, "feet_height_scan": 10}

    # Rough observations, and the flat observations that share their common terms (scans at random).
    session.env.reset()
    obs = session.env.observe()
    target = session.env.observations.layouts["privileged"]
    assert isinstance(source.cfg, TeacherCfg)
    flat_layout = source_layout(source.cfg)
    # The flat policy's scan reads its average flat ground (its normaliser's mean); the rest is shared.
    flat_obs = np.tile(source.normaliser.mean["privileged"], (4, 1)).astype(np.float32)
    new, old = column_map(flat_layout, source.cfg.task.scan, target, session.cfg.task.scan, num_feet=2)
    flat_obs[:, old] = obs["privileged"][:, new]
    scans = [t for t in flat_layout if t.name in ("height_scan", "feet_height_scan")]
    assert sorted(set(range(flat_layout[-1].stop)) - set(old)) == [
        c for t in scans for c in range(t.start, t.stop)
    ]
    np.testing.assert_allclose(session.act(obs), source({"privileged": flat_obs}), atol=1e-5)
    with torch.no_grad():
        mine = session.model.policy.predict_values(
            session.model.policy.obs_to_tensor(session.venv.normalize_obs(obs))[0]
        )
        theirs = source.policy.predict_values(
            source.policy.obs_to_tensor(source.normalise({"privileged": flat_obs}))[0]
        )
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-5)
    session.env.close()


def test_a_rough_source_keeps_what_its_scan_points_learnt_in_a_finer_scan(tmp_path: Path) -> None:
    """Stairs need a scan that resolves a tread: a rough teacher moves to a finer grid holding its own."""
    from humanoid_prior.envs.task_cfg import ScanCfg

    rough_run = train_teacher(tiny_rough(tmp_path, None, name="rough_source"), use_wandb=False)
    source = load_policy(rough_run)
    coarse = ScanCfg()
    between = tuple(round(x + 0.075, 3) for x in coarse.base_x[:-1])
    finer = ScanCfg(base_x=tuple(sorted(coarse.base_x + between)), base_y=coarse.base_y,
                    foot_xy=(*coarse.foot_xy, (0.05, 0.0), (-0.05, 0.0)))  # fmt: skip
    cfg = tiny_rough(tmp_path, rough_run, name="finer")
    cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, scan=finer))
    session = TrainingSession(cfg, tmp_path / "finer")
    carried = warm_start(session, rough_run)
    # 17 x 5 base points, 45 of them the source's; 7 per foot, 5 of them the source's.
    assert carried["inputs_new"] == {"height_scan": 40, "feet_height_scan": 4}

    # On the same state the warm-started policy acts as its source: every source input is carried.
    session.env.reset()
    obs = session.env.observe()
    assert isinstance(source.cfg, TeacherCfg)
    src_layout = source_layout(source.cfg)
    new, old = column_map(src_layout, coarse, session.env.observations.layouts["privileged"], finer,
                          num_feet=2, source_on_terrain=True)  # fmt: skip
    assert sorted(old) == list(range(src_layout[-1].stop))
    src_obs = np.zeros((4, src_layout[-1].stop), dtype=np.float32)
    src_obs[:, old] = obs["privileged"][:, new]
    np.testing.assert_allclose(session.act(obs), source({"privileged": src_obs}), atol=1e-5)
    # A flat source's scan points never are (see the test above), even where the offsets match.
    flat_new, _ = column_map(src_layout, coarse, session.env.observations.layouts["privileged"], finer,
                             num_feet=2, source_on_terrain=False)  # fmt: skip
    assert len(flat_new) == len(new) - 45 - 10
    session.env.close()


def test_init_from_continues_the_step_count_and_a_resume_does_not_warm_start_again(
    tmp_path: Path, flat_run: Path
) -> None:
    cfg = tiny_rough(tmp_path, flat_run)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, total_steps=96))
    rough_run = train_teacher(cfg, use_wandb=False)
    assert json.loads((rough_run / WARM_START).read_text())["env_steps"] == 64
    assert load_policy(rough_run).num_timesteps == 96, "64 flat steps + one 32-step rough iteration"
    (rough_run / WARM_START).unlink()
    train_teacher(cfg, resume=rough_run, use_wandb=False)
    assert not (rough_run / WARM_START).exists(), "a resume continues its own checkpoint"


def test_init_from_one_checkpoint_file_starts_from_that_checkpoint(tmp_path: Path, flat_run: Path) -> None:
    """A kept policy (not the run's newest) can seed a later stage: its step count is the one carried."""
    older = tmp_path / "kept" / "ckpt_0000001.pt"
    older.parent.mkdir()
    data = torch.load(latest_checkpoint(flat_run / "checkpoints"), weights_only=False)
    data["num_timesteps"] = 32  # stands for an earlier snapshot of the same run, kept without its optimizer
    torch.save(policy_snapshot(data), older)
    session = TrainingSession(tiny_rough(tmp_path, older), tmp_path / "rough")
    carried = warm_start(session, older)
    assert carried["checkpoint"] == str(older)
    assert carried["env_steps"] == session.model.num_timesteps == 32
    session.env.close()


def test_init_from_a_run_with_other_network_sizes_is_refused(tmp_path: Path, flat_run: Path) -> None:
    cfg = tiny_rough(tmp_path, flat_run)
    cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, actor_hidden=(64, 64)))
    session = TrainingSession(cfg, tmp_path / "rough")
    with pytest.raises(ValueError, match="same --network widths"):
        warm_start(session, flat_run)
    session.env.close()
