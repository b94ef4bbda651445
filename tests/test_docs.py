"""Documentation that states numbers from the code says what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from humanoid_prior.envs.rewards import g1_reward_weights

TASK_DOC = Path(__file__).resolve().parents[1] / "docs" / "task.md"


def documented_reward_weights() -> dict[str, float]:
    """Term -> weight from the rewards table of docs/task.md (rows may name several terms)."""
    section = TASK_DOC.read_text().split("## Rewards", 1)[1].split("\n## ", 1)[0]
    weights: dict[str, float] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        weight = float(cells[1].replace("−", "-"))
        for name in re.findall(r"`(\w+)`", cells[0]):
            weights[name] = weight
    return weights


def test_the_reward_table_in_the_docs_matches_the_g1_defaults() -> None:
    assert documented_reward_weights() == g1_reward_weights()


def test_the_data_flow_table_names_modules_that_exist_and_own_their_constants() -> None:
    """README "How data flows": every file it names exists, and the normaliser constants it states are
    the ones training uses."""
    from humanoid_prior.normaliser import CLIP_OBS, EPSILON

    repo = TASK_DOC.parents[1]
    section = (repo / "README.md").read_text().split("## How data flows", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:humanoid_prior|envs|deploy|policies)/[\w/]+\.py)`", section))
    assert len(named) >= 15, named
    missing = sorted(p for p in named if not (repo / p).is_file())
    assert not missing, f"the data-flow table names files that do not exist: {missing}"
    assert EPSILON == 1e-8 and "eps 1e-8" in section
    assert f"clip ±{CLIP_OBS:g}" in section
