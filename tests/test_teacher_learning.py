"""benchmarks/teacher_learning.py, teacher_levers.py, crossing_spread.py and crossing_causes.py: results of
learning runs."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(name: str = "teacher_learning") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_later_seed_joins_the_earlier_seeds_of_the_same_experiment_only(tmp_path: Path) -> None:
    earlier_seeds = _script().earlier_seeds
    path = tmp_path / "teacher_g1_rough_x.json"
    overrides = ["ppo.ent_coef=0.0"]
    seeds = {"0": {"fall_rate": 0.07}, "1": {"fall_rate": 0.5}}
    earlier = {"preset": "g1_rough", "overrides": overrides, "seeds": seeds, "command": "x"}
    path.write_text(json.dumps(earlier))
    # Seed 1 is rerun, so only seed 0 is carried over, with the command that made it.
    assert earlier_seeds(path, "g1_rough", overrides, [1]) == {"0": {"fall_rate": 0.07, "command": "x"}}
    assert earlier_seeds(path, "g1_rough", overrides, [0, 1]) == {}
    # Another experiment under the same name: nothing is merged into it.
    assert earlier_seeds(path, "g1_rough", ["ppo.ent_coef=0.005"], [1]) == {}
    assert earlier_seeds(path, "g1_flat", overrides, [1]) == {}
    assert earlier_seeds(tmp_path / "absent.json", "g1_rough", overrides, [1]) == {}
    # The same overrides on a default that changed since: another experiment, not merged.
    from humanoid_prior.config import g1_rough, to_dict

    today = to_dict(g1_rough())
    path.write_text(json.dumps({**earlier, "config": today}))
    assert earlier_seeds(path, "g1_rough", overrides, [1], today) == {
        "0": {"fall_rate": 0.07, "command": "x"}
    }
    older = copy.deepcopy(today)
    older["ppo"]["desired_kl"] = 0.01
    older["run"]["seed"] = 5  # bookkeeping alone would not make it another experiment
    path.write_text(json.dumps({**earlier, "config": older}))
    assert earlier_seeds(path, "g1_rough", overrides, [1], today) == {}
    older["ppo"]["desired_kl"] = today["ppo"]["desired_kl"]
    path.write_text(json.dumps({**earlier, "config": older}))
    assert earlier_seeds(path, "g1_rough", overrides, [1], today) == {
        "0": {"fall_rate": 0.07, "command": "x"}
    }


def test_a_seed_placeholder_in_an_override_gives_each_seed_its_own_value() -> None:
    """One command warm-starts each seed from its own source run; the experiment's overrides stay one list."""
    args = argparse.Namespace(
        preset="g1_flat", overrides=["run.init_from=runs/src_s{seed}/ckpt.pt"], steps=96, minutes=None,
        eval_every=32,
    )  # fmt: skip
    for seed in (0, 3):
        cfg = _script().seed_cfg(args, seed, Path("runs") / f"bench_x_s{seed}")
        assert (cfg.run.init_from, cfg.run.seed) == (f"runs/src_s{seed}/ckpt.pt", seed)
        assert (cfg.run.run_dir, cfg.run.name) == ("runs", f"bench_x_s{seed}")
        assert (cfg.run.total_steps, cfg.run.eval_every_steps) == (96, 32)


def test_a_warm_started_run_reports_its_own_speed_not_its_sources_steps_over_its_own_clock() -> None:
    steps_per_second = _script().steps_per_second
    # 8 M steps came from the flat source; this run added 2 M in 100 s.
    assert steps_per_second(10_000_000, 100.0, {"env_steps": 8_000_000}) == 20_000
    assert steps_per_second(10_000_000, 100.0, None) == 100_000


def test_a_lever_row_names_settings_that_differ_from_the_default_but_not_fields_added_since() -> None:
    from humanoid_prior.config import g1_flat, to_dict

    stale_settings = _script("teacher_levers").stale_settings
    baseline = to_dict(g1_flat())
    # An older config of the same recipe: the base-contact flag before terminations were named terms,
    # and no entry for a reward term added since at weight 0. Nothing to flag.
    older_form = copy.deepcopy(baseline)
    older_form["task"]["terminations"] = {**baseline["task"]["terminations"], "base_contact": True}
    del older_form["task"]["terminations"]["terms"]
    del older_form["task"]["rewards"]["weights"]["feet_phase"]
    assert stale_settings(baseline, older_form, ["ppo.ent_coef=0.0"]) == {}
    assert stale_settings(older_form, baseline, ["ppo.ent_coef=0.0"]) == {}
    # Another set of terminations, or another setting than the lever's: named. The lever itself is not.
    other = copy.deepcopy(baseline)
    other["task"]["terminations"]["terms"] = ["tilt", "diverged", "time_out"]
    other["ppo"].update(desired_kl=0.01, ent_coef=0.0)
    assert stale_settings(baseline, other, ["ppo.ent_coef=0.0"]) == {
        "task.terminations.terms": ["tilt", "diverged", "time_out"],
        "ppo.desired_kl": 0.01,
    }


def test_compare_commits_makes_each_tree_import_its_own_package(tmp_path: Path) -> None:
    """The before/after throughput script runs an old tree's code, not this checkout's (which the
    editable install would supply)."""
    compare = _script("compare_commits")
    old = tmp_path / "old"
    old.mkdir()
    (old / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    for package in ("humanoid_prior", "envs", "policies", "deploy"):
        (old / package).mkdir()
        (old / package / "__init__.py").write_text("")
    env = compare.checked_env(old, compare.import_tree(old, tmp_path / "old_import"))
    assert env["PYTHONPATH"] == str(tmp_path / "old_import")
    # This checkout's import tree, used for the old tree: caught before any benchmark runs.
    with pytest.raises(SystemExit, match="imports humanoid_prior from"):
        compare.checked_env(old, compare.import_tree(REPO, tmp_path / "repo_import"))
    # A package the old tree lacks would come from this checkout's editable install: caught too.
    (old / "deploy" / "__init__.py").unlink()
    (old / "deploy").rmdir()
    with pytest.raises(SystemExit, match=r"imports humanoid_prior\.deploy from"):
        compare.checked_env(old, compare.import_tree(old, tmp_path / "partial_import"))


def test_the_first_crossing_rule_picks_the_policy_kept_at_the_first_evaluation_that_met_it(
    tmp_path: Path,
) -> None:
    selected_checkpoint = _script().selected_checkpoint
    met = {"fall_rate": 0.05, "distance_m": 5.5}
    short = {"fall_rate": 0.0, "distance_m": 4.9}
    rows = [
        {
            "env_steps": 10,
            "checkpoint": "checkpoints/evaluated/a.pt",
            "crossing": {"stairs": short, "slope": met},
        },
        {
            "env_steps": 20,
            "checkpoint": "checkpoints/evaluated/b.pt",
            "crossing": {"stairs": met, "slope": met},
        },
        {
            "env_steps": 30,
            "checkpoint": "checkpoints/evaluated/c.pt",
            "crossing": {"stairs": met, "slope": met},
        },
    ]
    assert selected_checkpoint(Path("run"), rows, "first-crossing") == (
        Path("checkpoints/evaluated/b.pt"),
        rows[1],
    )
    assert selected_checkpoint(Path("run"), rows, "final") == (None, None)
    assert selected_checkpoint(Path("run"), rows[:1], "first-crossing") == (None, None)  # none met: newest
    older = [{k: v for k, v in rows[1].items() if k != "checkpoint"}]  # from before policies were kept
    with pytest.raises(SystemExit, match="kept no policy"):
        selected_checkpoint(Path("run"), older, "first-crossing")
    # A checkpoint given by its path: taken as it is, with the row that kept it if there is one.
    (tmp_path / "checkpoints" / "evaluated").mkdir(parents=True)
    for name in ("b.pt", "c.pt"):
        (tmp_path / "checkpoints" / "evaluated" / name).write_bytes(b"")
    given = "checkpoints/evaluated/c.pt"
    assert selected_checkpoint(tmp_path, rows, given) == (Path(given), rows[2])
    assert selected_checkpoint(tmp_path, rows[:2], given) == (Path(given), None)
    with pytest.raises(SystemExit, match="nor a checkpoint"):
        selected_checkpoint(tmp_path, rows, "checkpoints/evaluated/absent.pt")


def test_a_seed_result_of_a_selected_policy_reports_that_policy_at_the_given_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import tiny_cfg

    from humanoid_prior.evaluation import EvalCfg
    from humanoid_prior.runners.teacher import train_teacher

    script = _script()
    monkeypatch.setattr(script, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2))
    import humanoid_prior.evaluation as evaluation

    monkeypatch.setattr(evaluation, "protocol", lambda terrain: EvalCfg(repeats=1, episode_s=0.2))
    run_dir = train_teacher(tiny_cfg(tmp_path, total_steps=96, eval_every_steps=32), use_wandb=False)
    rows = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [32, 64, 96]
    # As if the evaluation at 64 steps had met the crossing target (a flat run walks no crossing).
    met = {"stairs_up_0.10": {"fall_rate": 0.0, "distance_m": 5.2}}
    rows[1]["crossing"] = rows[2]["crossing"] = met
    (run_dir / "evals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = script.train_seed(
        None, run_dir, no_wandb=True, train=False, select="first-crossing", eval_seed=5
    )
    assert result["env_steps"] == 64 and result["eval_seed"] == 5
    expected = {"rule": "first-crossing", "checkpoint": rows[1]["checkpoint"], "newest_env_steps": 96}
    assert result["selected"] == {**expected, "chosen_at_eval_seed": rows[1]["eval_seed"]}
    assert result["interim"] is False  # the run reached its budget; the report is of an earlier policy
    assert [r["env_steps"] for r in result["evals"]] == [32, 64, 96]  # no row of another seed added


def test_crossing_spread_reports_each_seed_and_the_range_over_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    script = _script("crossing_spread")
    rough = SimpleNamespace(cfg=SimpleNamespace(task=SimpleNamespace(terrain=object())), checkpoint="c.pt",
                            num_timesteps=7)  # fmt: skip
    monkeypatch.setattr(script, "load_policy", lambda run, checkpoint: rough)
    # Seed 3's stairs fall too often; seed 1 meets every cell.
    falls = {1: 0.05, 3: 0.25}
    monkeypatch.setattr(
        script, "crossing",
        lambda task, policy, repeats, seed, hold_heading: {
            "stairs": {"fall_rate": falls[seed], "distance_m": 5.0 + seed},
            "slope": {"fall_rate": 0.0, "distance_m": 6.0},
        },
    )  # fmt: skip
    out = tmp_path / "spread.json"
    monkeypatch.setattr(
        "sys.argv", ["crossing_spread.py", "--run", "r", "--seeds", "1", "3", "--json", str(out)]
    )
    script.main()
    result = json.loads(out.read_text())
    assert result["seeds_met"] == 1
    assert result["per_seed"]["3"] == {
        "cells": {
            "stairs": {"fall_rate": 0.25, "distance_m": 8.0},
            "slope": {"fall_rate": 0.0, "distance_m": 6.0},
        },
        "met": False,
    }
    assert result["over_seeds"]["stairs"]["fall_rate"] == pytest.approx(
        {"mean": 0.15, "min": 0.05, "max": 0.25}
    )
    assert result["over_seeds"]["stairs"]["distance_m"] == {"mean": 7.0, "min": 6.0, "max": 8.0}
    # A flat run has no crossing: a clear error, not a traceback from the terrain code.
    flat = SimpleNamespace(cfg=SimpleNamespace(task=SimpleNamespace(terrain=None)))
    monkeypatch.setattr(script, "load_policy", lambda run, checkpoint: flat)
    with pytest.raises(SystemExit, match="flat ground"):
        script.main()


def test_crossing_causes_changes_one_thing_per_variant_and_reports_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    from types import SimpleNamespace

    from humanoid_prior.config import g1_rough

    script = _script("crossing_causes")
    task = g1_rough().task
    assert task.terrain is not None
    base_rand = task.domain_rand
    changed = {name: variant(task) for name, variant in script.VARIANTS.items()}
    assert changed["protocol"] == task
    one_change = (
        ("no_pushes", "push_vel_xy", 0.0),
        ("nominal_friction", "friction", (1.0, 1.0)),
        ("lowest_friction", "friction", (base_rand.friction[0],) * 2),
        ("no_latency", "latency_steps", (0, 0)),
        ("no_randomisation", "enabled", False),
    )
    for name, field, value in one_change:
        assert getattr(changed[name].domain_rand, field) == value
        # Nothing else about the walk changes.
        assert (
            dataclasses.replace(changed[name].domain_rand, **{field: getattr(base_rand, field)}) == base_rand
        )
        assert changed[name].terrain == task.terrain
    sharp = changed["sharp_edges"]
    assert sharp.terrain is not None and sharp.terrain.horizontal_scale == task.terrain.horizontal_scale / 2
    assert dataclasses.replace(sharp.terrain, horizontal_scale=task.terrain.horizontal_scale) == task.terrain

    # Each variant walks the one cell at the same seed; the report keeps each variant's figures.
    policy = SimpleNamespace(cfg=SimpleNamespace(task=task), checkpoint="c.pt", num_timesteps=9)
    monkeypatch.setattr(script, "load_policy", lambda run, checkpoint: policy)
    walked: list[tuple[float, int, list[str]]] = []

    def crossing(t, p, repeats, seed, cells):
        walked.append((t.domain_rand.push_vel_xy, seed, cells))
        falls = 0.1 if t.domain_rand.push_vel_xy > 0 else 0.02
        return {cells[0]: {"fall_rate": falls, "distance_m": 6.0, "lin_vel_error": 0.2, "fall_at_m": [3.0]}}

    monkeypatch.setattr(script, "crossing", crossing)
    out = tmp_path / "causes.json"
    argv = ["crossing_causes.py", "--run", "r", "--variants", "protocol", "no_pushes", "--seed", "7"]
    monkeypatch.setattr("sys.argv", [*argv, "--json", str(out)])
    script.main()
    result = json.loads(out.read_text())
    assert walked == [(0.5, 7, ["stairs_down_0.10"]), (0.0, 7, ["stairs_down_0.10"])]
    assert (
        result["variants"]["protocol"]["fall_rate"] == 0.1
        and result["variants"]["no_pushes"]["fall_rate"] == 0.02
    )
    assert result["cell"] == "stairs_down_0.10" and result["env_steps"] == 9 and result["seed"] == 7


def test_a_call_stopped_in_a_later_seed_keeps_the_finished_seeds_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script()
    monkeypatch.setattr(script, "RESULTS", tmp_path)

    def train_seed(cfg, run_dir, no_wandb, train, select, eval_seed, crossing_repeats):
        if cfg.run.seed == 1:
            raise KeyboardInterrupt  # the session ends while seed 1 trains
        return {"lin_vel_error": 0.14, "fall_rate": 0.0, "evals": [], "run_dir": str(run_dir)}

    monkeypatch.setattr(script, "train_seed", train_seed)
    argv = ["teacher_learning.py", "--preset", "g1_flat", "--seeds", "0", "1", "--results-name", "x"]
    monkeypatch.setattr("sys.argv", [*argv, "--steps", "64", "--no-video", "--no-wandb"])
    with pytest.raises(KeyboardInterrupt):
        script.main()
    result = json.loads((tmp_path / "x.json").read_text())
    assert list(result["seeds"]) == ["0"] and result["seeds"]["0"]["lin_vel_error"] == 0.14
