"""Terrain curriculum (legged_gym): each env lives on one tile; its row (difficulty) moves with success.

At every reset an env is promoted one row if its robot walked farther than half a tile from the spawn
point, and demoted one row if it fell, or if it got less than half as far as its commands asked. An env
promoted past the last row is sent to a random row, so the hardest tiles never hoard the batch.

"As far as its commands asked" is a displacement, not a path length: the commands are body-frame
velocities, integrated with the heading their yaw-rate commands give (`commanded_step`) into where a
robot that tracked them exactly would be. Compared with the commanded path length instead (legged_gym's
|command| x time), a yaw-rate command bends a perfect walker's path into an arc whose chord is far
shorter than the path: in a kinematic model of the default commands over 20 s, such a walker was
demoted in 31% of episodes (benchmarks/curriculum_drift.py). Falls demote outright because an episode
cut short asks for little distance (legged_gym counts the full episode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .terrain import Terrain


@dataclass(frozen=True)
class CurriculumCfg:
    """How envs are placed on the terrain grid and moved between difficulty rows."""

    enabled: bool = True
    """False spreads envs uniformly over all rows and never moves them."""
    max_init_level: int = 2
    """Envs start on a row drawn from [0, max_init_level]."""
    promote_fraction: float = 0.5
    """Promote when the distance walked exceeds this fraction of the tile size."""
    demote_fraction: float = 0.5
    """Demote when the distance walked is below this fraction of the commanded displacement."""


class TerrainCurriculum:
    """Per-env tile (level = row, type = column) and the spawn origin on it."""

    def __init__(self, cfg: CurriculumCfg, terrain: Terrain, num_envs: int, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.terrain = terrain
        self.rng = rng
        rows, cols = terrain.num_rows, terrain.num_cols
        top = min(cfg.max_init_level, rows - 1) if cfg.enabled else rows - 1
        self.levels = rng.integers(0, top + 1, num_envs)
        # Types cycle over the columns so every terrain type gets its share of envs.
        self.types = np.arange(num_envs) % cols
        self.origins = terrain.tile_centers(self.levels, self.types)

    @property
    def mean_level(self) -> float:
        """Mean row index over the batch (0 = easiest)."""
        return float(self.levels.mean())

    def place(self, env_ids: np.ndarray, levels: np.ndarray, types: np.ndarray) -> None:
        """Put `env_ids` on given tiles (rows `levels`, columns `types`); used by evaluation."""
        self.levels[env_ids] = levels
        self.types[env_ids] = types
        self.origins[env_ids] = self.terrain.tile_centers(levels, types)

    def update(
        self,
        env_ids: np.ndarray,
        distance: np.ndarray,
        commanded_distance: np.ndarray,
        fell: np.ndarray | None = None,
    ) -> None:
        """Move `env_ids` up or down a row from how far they walked and whether they fell.

        `distance`: walked from the spawn point (m); `commanded_distance`: how far their commands would
        have taken them (m, the norm of `commanded_step` summed over the episode); `fell`: the episode
        ended in a fall.
        """
        if not self.cfg.enabled or len(env_ids) == 0:
            return
        promote = distance > self.cfg.promote_fraction * self.terrain.tile_size
        short = distance < self.cfg.demote_fraction * commanded_distance
        demote = (short | (fell if fell is not None else False)) & ~promote
        levels = self.levels[env_ids] + promote.astype(int) - demote.astype(int)
        rows = self.terrain.num_rows
        past_top = levels >= rows
        levels[past_top] = self.rng.integers(0, rows, int(past_top.sum()))
        self.levels[env_ids] = np.clip(levels, 0, rows - 1)
        self.origins[env_ids] = self.terrain.tile_centers(self.levels[env_ids], self.types[env_ids])


def commanded_step(yaw: np.ndarray, command_xy: np.ndarray, dt: float) -> np.ndarray:
    """World-frame displacement (N, 2) in `dt` of robots that track their planar commands exactly.

    `yaw` (N,): each robot's heading; `command_xy` (N, 2): its base-frame velocity command (m/s).
    """
    c, s = np.cos(yaw), np.sin(yaw)
    vx, vy = command_xy[:, 0], command_xy[:, 1]
    return np.column_stack([c * vx - s * vy, s * vx + c * vy]) * dt
