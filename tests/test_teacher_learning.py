"""benchmarks/teacher_learning.py: seeds of one experiment run in different sessions end in one result."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "teacher_learning", REPO / "benchmarks" / "teacher_learning.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_later_seed_joins_the_earlier_seeds_of_the_same_experiment_only(tmp_path: Path) -> None:
    earlier_seeds = _script().earlier_seeds
    path = tmp_path / "teacher_g1_rough_x.json"
    overrides = ["ppo.ent_coef=0.0"]
    seeds = {"0": {"fall_rate": 0.07}, "1": {"fall_rate": 0.5}}
    path.write_text(json.dumps({"preset": "g1_rough", "overrides": overrides, "seeds": seeds}))
    # Seed 1 is rerun, so only seed 0 is carried over.
    assert earlier_seeds(path, "g1_rough", overrides, [1]) == {"0": {"fall_rate": 0.07}}
    assert earlier_seeds(path, "g1_rough", overrides, [0, 1]) == {}
    # Another experiment under the same name: nothing is merged into it.
    assert earlier_seeds(path, "g1_rough", ["ppo.ent_coef=0.005"], [1]) == {}
    assert earlier_seeds(path, "g1_flat", overrides, [1]) == {}
    assert earlier_seeds(tmp_path / "absent.json", "g1_rough", overrides, [1]) == {}
