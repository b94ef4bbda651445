"""Teacher training machinery: checkpoints (atomic, validated), resume, determinism, configs, evaluation."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_cfg, tiny_rough_task

from humanoid_prior import evaluation
from humanoid_prior.algorithms.ppo import AdaptiveLR
from humanoid_prior.config import PPOCfg, TeacherCfg, g1_flat, g1_rough, teacher_preset, to_dict
from humanoid_prior.config_io import from_dict, with_overrides
from humanoid_prior.evaluation import EvalCfg, evaluate
from humanoid_prior.runners.teacher import train_teacher
from humanoid_prior.runners.training import TrainingSession, learning_rate_schedule
from humanoid_prior.runs.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from humanoid_prior.runs.policy_io import load_policy

REPO = Path(__file__).resolve().parents[1]


def test_configs_round_trip_through_json() -> None:
    for cfg in (g1_flat(), g1_rough(), teacher_preset("t1", "rough")):
        assert from_dict(TeacherCfg, json.loads(json.dumps(to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        from_dict(TeacherCfg, {"ppo": {"n_stepz": 3}})


def test_linear_learning_rate_schedule() -> None:
    schedule = learning_rate_schedule(PPOCfg(learning_rate=1e-3, lr_final_fraction=0.1, lr_schedule="linear"))
    # progress_remaining 1 -> 1e-3; 0.5 -> 1e-3 * (0.1 + 0.9 * 0.5) = 5.5e-4; 0 -> 1e-4.
    assert [schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([1e-3, 5.5e-4, 1e-4])
    with pytest.raises(ValueError, match="lr-schedule"):
        learning_rate_schedule(PPOCfg(lr_schedule="cosine"))


def test_adaptive_learning_rate_follows_the_kl() -> None:
    lr = learning_rate_schedule(PPOCfg(learning_rate=1e-3, desired_kl=0.01))
    assert isinstance(lr, AdaptiveLR) and lr(0.3) == 1e-3
    # KL above 2x target: / 1.5; below half: x 1.5; in between: unchanged; clamped to [1e-5, 1e-2].
    assert lr.update(0.03) == pytest.approx(1e-3 / 1.5)
    assert lr.update(0.01) == pytest.approx(1e-3 / 1.5)
    assert lr.update(0.001) == pytest.approx(1e-3)
    for _ in range(20):
        lr.update(0.0)
    assert lr(0.0) == 1e-2


def test_symmetry_refuses_kl_early_stopping(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, target_kl=0.02))
    with pytest.raises(ValueError, match="target_kl early stopping cannot be combined with symmetry"):
        TrainingSession(cfg, tmp_path / "run")


def test_overrides_set_nested_fields_and_name_a_bad_path() -> None:
    cfg = with_overrides(g1_flat(), ["ppo.symmetry=false", "task.domain_rand.curriculum_steps=[0, 0]",
                                     "task.rewards.weights.termination=-200"])  # fmt: skip
    assert not cfg.ppo.symmetry and cfg.task.domain_rand.curriculum_steps == (0, 0)
    assert cfg.task.rewards.weights["termination"] == -200.0
    with pytest.raises(ValueError, match="'symmetri' is not a field"):
        with_overrides(g1_flat(), ["ppo.symmetri=false"])


def test_training_evaluates_on_schedule_keeps_each_evaluated_policy_and_checkpoints_the_learning_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4 envs x 8 steps = 32 per iteration; an evaluation every 64 steps -> at 64 and 128 (a tiny protocol).
    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2))
    cfg = tiny_cfg(tmp_path, total_steps=128, eval_every_steps=64, keep_checkpoints=1)
    run = train_teacher(cfg, use_wandb=False)
    rows = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [64, 128]
    assert {"lin_vel_error", "fall_rate", "yaw_rate_error"} <= set(rows[0])
    newest = list_checkpoints(run / "checkpoints")
    data = load_checkpoint(newest[-1])
    assert data["learning_rate"] is not None and data["learning_rate"] != cfg.ppo.learning_rate
    # The kept policies leave out what only a resume reads (the resumable newest checkpoint keeps it).
    assert "optimizer" in data
    assert all("optimizer" not in load_checkpoint(run / r["checkpoint"]) for r in rows)
    # Pruning kept one newest checkpoint (128 steps); the policy evaluated at 64 steps is still there.
    assert len(newest) == 1
    kept = [load_policy(run, Path(r["checkpoint"])) for r in rows]  # relative to the run, as the row says
    assert [p.num_timesteps for p in kept] == [64, 128]
    first, last = (dict(p.policy.state_dict()) for p in kept)
    assert any(not torch.equal(first[k], last[k]) for k in first)
    with pytest.raises(CheckpointError, match="not inside the run directory"):
        load_policy(tmp_path / "elsewhere", run / rows[0]["checkpoint"])


def test_a_resume_from_before_an_evaluation_sets_its_row_and_policy_aside_instead_of_doubling_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2))
    cfg = tiny_cfg(tmp_path, total_steps=96, eval_every_steps=32, keep_checkpoints=5)
    run = train_teacher(cfg, use_wandb=False)
    first = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in first] == [32, 64, 96]
    # A kill that lost every checkpoint after the first iteration: the resume starts at 32 steps.
    for path in list_checkpoints(run / "checkpoints")[1:]:
        path.unlink()
    train_teacher(cfg, resume=run, use_wandb=False)
    rows = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [32, 64, 96]  # once each, from the run that continued
    aside = [json.loads(line) for line in (run / "evals_superseded.jsonl").read_text().splitlines()]
    assert [(r["env_steps"], r["superseded_by_resume_at"]) for r in aside] == [(64, 32), (96, 32)]
    for row in rows + aside:
        assert (run / row["checkpoint"]).is_file()
    assert len({r["checkpoint"] for r in rows + aside}) == 5  # nothing overwritten
    assert load_policy(run, Path(aside[0]["checkpoint"])).num_timesteps == 64


def test_rough_training_evaluates_the_crossing_and_finds_when_it_was_first_met(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny protocols: 1 episode per cell, 0.2 s long (the real crossing walks 64 x 20 s per cell).
    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2,
                                                                       difficulties=(0.5, 1.0)))  # fmt: skip
    tiny_crossing = functools.partial(evaluation.crossing, repeats=1, episode_s=0.2)
    monkeypatch.setattr(evaluation, "crossing", tiny_crossing)
    cfg = dataclasses.replace(tiny_cfg(tmp_path, total_steps=64, eval_every_steps=64),
                              task=tiny_rough_task(num_rows=4))  # fmt: skip
    assert cfg.task.terrain is not None
    train_teacher(cfg, use_wandb=False)
    rows = [json.loads(line) for line in (tmp_path / "tiny" / "evals.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and set(rows[0]["crossing"]) == set(evaluation.crossing_cells(cfg.task.terrain))
    # 0.2 s of walking covers nowhere near 5 m: not met.
    assert all(c["distance_m"] < 1.0 for c in rows[0]["crossing"].values())
    assert evaluation.steps_to_crossing(rows) is None
    cell = {"fall_rate": 0.0, "distance_m": 5.2}
    met = dict.fromkeys(rows[0]["crossing"], cell)
    later = [{"env_steps": 3, "crossing": met}, {"env_steps": 2, "crossing": {**met, "stairs_up_0.10": {
        "fall_rate": 0.0, "distance_m": 4.9}}}, {"env_steps": 1, "crossing": {**met, "slope_up_15deg": {
        "fall_rate": 0.11, "distance_m": 6.0}}}]  # fmt: skip
    assert evaluation.steps_to_crossing(rows + later) == 3  # 4.9 m, or 11% falls, in one cell is not met
    assert evaluation.steps_to_crossing(rows + later + [{"env_steps": 4, "crossing": met}]) == 3


def test_eval_at_another_seed_draws_other_episodes_and_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from humanoid_prior import cli

    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=2, episode_s=0.4))
    run_dir = train_teacher(tiny_cfg(tmp_path), use_wandb=False)
    results = {}
    for seed in (None, 5):
        out = tmp_path / f"eval_{seed}.json"
        cli.evaluate_run(cli.EvalArgs(run=run_dir, out=out, seed=seed))
        results[seed] = json.loads(out.read_text())
    assert results[None]["seed"] == EvalCfg().seed and results[5]["seed"] == 5
    # Other randomised physics, noise and spawn poses: the same policy scores differently.
    assert results[None]["summary"]["lin_vel_error"] != results[5]["summary"]["lin_vel_error"]


def test_eval_of_a_terrain_run_walks_the_crossing_at_its_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from humanoid_prior import cli

    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2,
                                                                       difficulties=(0.5,)))  # fmt: skip
    monkeypatch.setattr(
        evaluation, "crossing", functools.partial(evaluation.crossing, repeats=2, episode_s=0.4)
    )
    cfg = dataclasses.replace(tiny_cfg(tmp_path), task=tiny_rough_task(num_rows=4))
    assert cfg.task.terrain is not None
    run_dir = train_teacher(cfg, use_wandb=False)
    results = {}
    for seed, walk in ((None, True), (5, True), (5, False)):
        out = tmp_path / f"eval_{seed}_{walk}.json"
        cli.evaluate_run(cli.EvalArgs(run=run_dir, out=out, seed=seed, crossing=walk))
        results[seed, walk] = json.loads(out.read_text())
    cells = set(evaluation.crossing_cells(cfg.task.terrain))
    for key in ((None, True), (5, True)):
        assert set(results[key]["crossing"]) == set(results[key]["crossing_held_heading"]) == cells
        assert results[key]["crossing_met"] is False  # 0.4 s of walking covers nowhere near 5 m
    # The crossing's episodes are drawn from the evaluation's seed, not a fixed one.
    distances = [[c["distance_m"] for c in results[seed, True]["crossing"].values()] for seed in (None, 5)]
    assert distances[0] != distances[1]
    assert "crossing" not in results[5, False]


def test_train_checkpoint_load_gives_identical_actions(tmp_path: Path) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path), use_wandb=False)
    assert (run_dir / "config.json").is_file() and (run_dir / "meta.json").is_file()
    assert json.loads((run_dir / "meta.json").read_text())["starts"][0]["machine"]
    policy = load_policy(run_dir)
    assert policy.num_timesteps >= 64
    # The loaded policy (with its saved normaliser) acts like the training session restored from the file.
    session = TrainingSession(policy.cfg, run_dir, resume_from=policy.checkpoint)
    obs = session.env.reset(seed=3)
    np.testing.assert_allclose(policy(obs), session.act(obs), atol=1e-6)
    assert np.abs(policy.normaliser.mean["privileged"]).sum() > 0, "normaliser statistics were saved"
    session.env.close()


def test_resume_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path)
    run_dir = train_teacher(cfg, use_wandb=False)
    first = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    # Ask for more steps by editing the saved config, then resume.
    saved = json.loads((run_dir / "config.json").read_text())
    saved["run"]["total_steps"] = 128
    (run_dir / "config.json").write_text(json.dumps(saved))
    train_teacher(cfg, resume=run_dir, use_wandb=False)
    second = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert second["num_timesteps"] >= 128 > first["num_timesteps"]
    assert second["iteration"] > first["iteration"]
    assert len(json.loads((run_dir / "meta.json").read_text())["starts"]) == 2


def test_same_seed_same_weights(tmp_path: Path) -> None:
    weights = []
    for name in ("a", "b"):
        cfg = tiny_cfg(tmp_path / name)
        run_dir = train_teacher(cfg, use_wandb=False)
        weights.append(load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["policy"])
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key])


def test_bad_checkpoints_fail_clearly(tmp_path: Path) -> None:
    payload = {"kind": "teacher", "robot": "g1", "obs_sizes": {"proprio": 47}, "action_dim": 12, "config": {},
               "policy": {"w": torch.zeros(3)}, "num_timesteps": 5}  # fmt: skip
    good = save_checkpoint(tmp_path / "ckpt_0000001.pt", payload)
    assert not list(tmp_path.glob("*.tmp")), "the temporary file was renamed into place"
    assert load_checkpoint(good, robot="g1", obs_sizes={"proprio": 47})["num_timesteps"] == 5
    with pytest.raises(CheckpointError, match="trained for robot 'g1', but this run uses 'h1'"):
        load_checkpoint(good, robot="h1")
    with pytest.raises(CheckpointError, match="observation layout"):
        load_checkpoint(good, obs_sizes={"proprio": 48})
    truncated = tmp_path / "ckpt_0000002.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(truncated)
    stranger = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, stranger)
    with pytest.raises(CheckpointError, match="not a humanoid_prior checkpoint"):
        load_checkpoint(stranger)
    (tmp_path / "ckpt_0000003.pt.tmp").write_bytes(b"half-written")  # a write killed before its rename
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_0000001.pt", "ckpt_0000002.pt"]


def test_resume_of_a_corrupt_run_is_one_clear_line(tmp_path: Path) -> None:
    run_dir = train_teacher(tiny_cfg(tmp_path), use_wandb=False)
    newest = list_checkpoints(run_dir / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    resume = [sys.executable, str(REPO / "train.py"), "teacher", "--resume", str(run_dir), "--no-wandb"]
    result = subprocess.run(resume, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert "corrupt, truncated" in result.stderr and "Traceback" not in result.stderr


def test_evaluation_counts_falls_and_groups_results() -> None:
    task = g1_flat().task.with_batch(1, nthread=1)
    cfg = EvalCfg(commands=((0.0, 0.0, 0.0), (0.5, 0.0, 0.0)), repeats=2, episode_s=3.0)
    # Default-pose targets: a humanoid under fixed PD targets tips over within ~1-2 s (physics).
    result = evaluate(task, lambda obs: np.zeros((len(obs["proprio"]), 12)), cfg)
    assert result["num_envs"] == 4
    assert set(result["table"]) == {"flat/cmd=(0.0, 0.0, 0.0)", "flat/cmd=(0.5, 0.0, 0.0)"}
    assert result["summary"]["fall_rate"] == 1.0
    moving = result["table"]["flat/cmd=(0.5, 0.0, 0.0)"]
    assert moving["lin_vel_error"] > 0.3, "a robot that does not walk misses a 0.5 m/s command"
    # It stands on both feet until it tips: no step on one foot, and never both feet in the air.
    assert result["summary"]["single_support"] < 0.1 and result["summary"]["flight"] < 0.5
    with pytest.raises(ValueError, match="evenly spaced"):
        EvalCfg(difficulties=(0.1, 0.5, 0.6))


def test_resume_restores_curriculum_levels_and_env_random_state(tmp_path: Path) -> None:
    cfg = dataclasses.replace(tiny_cfg(tmp_path), task=tiny_rough_task(num_rows=4))
    session = TrainingSession(cfg, tmp_path / "run")
    session.env.reset()
    curriculum = session.env.curriculum
    assert curriculum is not None
    curriculum.place(np.arange(4), np.array([3, 2, 1, 0]), curriculum.types)
    saved_rng = session.env.rng.bit_generator.state
    path = session.save()
    session.env.close()

    restored = TrainingSession(cfg, tmp_path / "run", resume_from=path)
    assert restored.env.rng.bit_generator.state == saved_rng
    restored.vec_env.reset()  # what SB3's learn() does first: the restored state must survive it
    levels = restored.env.curriculum
    assert levels is not None and levels.levels.tolist() == [3, 2, 1, 0]
    assert restored.env.terrain is not None
    np.testing.assert_allclose(levels.origins[0], restored.env.terrain.tile_center(3, int(levels.types[0])))
    restored.env.close()


def test_crossing_walks_along_rows_of_one_feature_and_counts_who_got_past_it() -> None:
    rough = g1_rough().task
    assert rough.terrain is not None
    cells = evaluation.crossing_cells(rough.terrain)
    lo, hi = rough.terrain.step_height_range
    kind, d = cells["stairs_up_0.10"]
    assert kind.value == "stairs_up" and lo + d * (hi - lo) == pytest.approx(0.10)
    assert cells["slope_down_15deg"][1] * rough.terrain.max_slope_deg == pytest.approx(15.0)
    with pytest.raises(ValueError, match=r"0\.10 m steps"):
        evaluation.crossing_cells(dataclasses.replace(rough.terrain, step_height_range=(0.12, 0.2)))

    # A robot holding its default pose only tips (its base moves ~0.5 m in 1 s): nobody crosses.
    standing = evaluation.crossing(
        rough, lambda obs: np.zeros((len(obs["proprio"]), 12)), repeats=2, episode_s=1.0
    )
    assert set(standing) == set(cells)
    assert all(c["crossed"] == 0.0 and abs(c["distance_m"]) < 1.0 for c in standing.values())
    for c in standing.values():  # one forward position per fall, where it fell
        assert len(c["fall_at_m"]) == round(c["fall_rate"] * 2)
        assert c["fall_at_m"] == sorted(c["fall_at_m"]) and all(abs(x) < 1.0 for x in c["fall_at_m"])
        assert 0.0 <= c["heading_change_deg"] <= 180.0

    # A subset of cells walks only those; a name that is no cell is refused before anything runs.
    one = evaluation.crossing(rough, lambda obs: np.zeros((len(obs["proprio"]), 12)), repeats=2,
                              episode_s=0.2, cells=["slope_down_15deg"])  # fmt: skip
    assert (
        list(one) == ["slope_down_15deg"]
        and one["slope_down_15deg"]["difficulty"] == cells["slope_down_15deg"][1]
    )
    with pytest.raises(ValueError, match="unknown crossing cell 'ramp'"):
        evaluation.crossing(rough, lambda obs: obs["proprio"], repeats=1, cells=["ramp"])

    # One cell's env alone (videos): every robot on the middle tile, told 0.5 m/s along +x.
    env = evaluation.crossing_env(rough, "stairs_down_0.10", repeats=2)
    assert env.num_envs == 2 and np.allclose(env.commands.commands, [[0.5, 0.0, 0.0]] * 2)
    assert env.curriculum is not None and list(env.curriculum.levels) == [1, 1]
    env.close()
    with pytest.raises(ValueError, match="unknown crossing cell 'stairs'"):
        evaluation.crossing_env(rough, "stairs", repeats=1)
    with pytest.raises(ValueError, match="needs a terrain task"):
        evaluation.crossing_env(g1_flat().task, "stairs_up_0.10", repeats=1)


def test_the_crossing_steers_a_turned_robot_back_to_its_heading_only_when_it_holds_the_heading() -> None:
    from humanoid_prior.envs.commands import CommandSampler

    rough = g1_rough().task
    for hold, expected in ((True, -0.5 * 0.4), (False, 0.0)):
        cfg = evaluation.crossing_commands(rough, hold_heading=hold)
        sampler = CommandSampler(cfg, 2, dt=0.02, rng=np.random.default_rng(0))
        sampler.resample(np.arange(2))
        sampler.commands[:] = (0.5, 0.0, 0.0)
        sampler.heading[:] = 0.0
        for _ in range(100):  # 2 s: nothing is resampled and the heading target stays
            sampler.step(np.array([0.4, 0.0]))  # one robot turned 0.4 rad left, one facing +x
        np.testing.assert_allclose(sampler.commands[:, :2], [[0.5, 0.0], [0.5, 0.0]])
        # heading law: yaw rate = stiffness (0.5) x heading error, no dead band (small_command 0)
        assert cfg.heading_stiffness == 0.5 and cfg.small_command == 0.0
        np.testing.assert_allclose(sampler.commands[:, 2], [expected, 0.0], atol=1e-12)
