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
