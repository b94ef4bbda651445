"""Procedural tile terrain (legged_gym-style curriculum) stored as one heightfield array.

Layout: ``heights[i, j]`` is the ground height at world ``x = origin_x + j * horizontal_scale``,
``y = origin_y + i * horizontal_scale`` (MuJoCo hfield order: data rows are y, columns are x); generated
terrains put element ``[0, 0]`` at the world origin. Square tiles sit inside a flat border: tile
``(row, col)`` spans ``x in border + [row, row + 1] * tile_size`` and ``y in border + [col, col + 1] *
tile_size``, i.e. rows are difficulty levels along world x and columns are terrain types along world y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_Real = npt.NDArray[np.floating]
_F = TypeVar("_F", bound=np.floating)


class TerrainType(StrEnum):
    """Terrain kind of one tile column."""

    FLAT = "flat"
    ROUGH = "rough"
    SLOPE_UP = "slope_up"
    SLOPE_DOWN = "slope_down"
    STAIRS_UP = "stairs_up"
    STAIRS_DOWN = "stairs_down"
    OBSTACLES = "obstacles"


_KNOWN_TYPES = ", ".join(t.value for t in TerrainType)
_OBSTACLE_SIDE_RANGE = (0.5, 1.5)  # metres, per block side
_PYRAMIDS = frozenset(
    {TerrainType.SLOPE_UP, TerrainType.SLOPE_DOWN, TerrainType.STAIRS_UP, TerrainType.STAIRS_DOWN}
)


@dataclass(frozen=True)
class TerrainCfg:
    """Parameters of the tile grid; validated on construction."""

    num_rows: int = 10
    """Difficulty levels (tile rows, laid out along world x)."""
    num_cols: int = 14
    """Tile columns (one terrain type each, laid out along world y)."""
    tile_size: float = 8.0
    """Side of a square tile in metres; a multiple of horizontal_scale."""
    horizontal_scale: float = 0.1
    """Grid spacing in metres per cell."""
    border: float = 4.0
    """Width in metres of the flat border around the whole grid; a multiple of horizontal_scale."""
    proportions: tuple[tuple[str, float], ...] = (
        ("flat", 0.1),
        ("rough", 0.2),
        ("slope_up", 0.15),
        ("slope_down", 0.15),
        ("stairs_up", 0.15),
        ("stairs_down", 0.15),
        ("obstacles", 0.1),
    )
    """(type name, weight) pairs; weights are normalised and assigned to columns by cumulative proportion."""
    difficulty_range: tuple[float, float] = (0.0, 1.0)
    """Difficulty of the first and last row, within [0, 1]; rows in between are linear."""
    max_slope_deg: float = 20.0
    """Slope angle in degrees at difficulty 1 (angle = difficulty * max_slope_deg)."""
    step_height_range: tuple[float, float] = (0.02, 0.18)
    """Stair step height in metres at difficulty 0 and 1 (linear in difficulty)."""
    step_width: float = 0.3
    """Stair tread depth in metres."""
    roughness_range: tuple[float, float] = (0.01, 0.06)
    """Rough-tile noise amplitude a in metres at difficulty 0 and 1; noise is uniform in [-a, a]."""
    roughness_cell: float = 0.2
    """Spacing in metres of the noise knots (rounded to whole cells), bilinearly interpolated in between."""
    obstacle_height_range: tuple[float, float] = (0.03, 0.15)
    """Maximum obstacle height h in metres at difficulty 0 and 1; blocks are +-[0.5h, h]."""
    num_obstacles: int = 20
    """Rectangular blocks per obstacle tile."""
    platform_size: float = 2.0
    """Side in metres of the flat spawn platform at the centre of every non-flat, non-rough tile."""
    vertical_scale: float = 0.005
    """All heights are quantised to multiples of this many metres."""
    level_edges: bool = False
    """Lift or sink each slope and stairs tile so its outer ring is at height 0, as legged_gym's pyramids
    are: tiles then meet each other and the border without a cliff, and a tile's feature, seen from its
    platform, is unchanged. Off, the platform is at 0 and the edges are not (up to 1.8 m at 0.18 m steps),
    so a robot that walks off its tile meets a wall or a drop of up to 3.6 m."""
    seed: int = 0
    """Seed of the generator; tile (row, col) draws from default_rng([seed, row, col])."""

    def __post_init__(self) -> None:
        _validate(self)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"TerrainCfg.{message}")


def _validate(cfg: TerrainCfg) -> None:
    for name in ("num_rows", "num_cols"):
        value = getattr(cfg, name)
        _require(isinstance(value, int) and value >= 1, f"{name} must be an integer >= 1, got {value!r}")
    for name in ("tile_size", "horizontal_scale", "step_width", "roughness_cell", "vertical_scale"):
        value = getattr(cfg, name)
        _require(value > 0, f"{name} must be > 0, got {value!r}; use a positive size")
    for name in ("border", "platform_size", "max_slope_deg", "num_obstacles", "seed"):
        value = getattr(cfg, name)
        _require(value >= 0, f"{name} must be >= 0, got {value!r}")
    for name in ("tile_size", "border"):
        cells = getattr(cfg, name) / cfg.horizontal_scale
        _require(
            abs(cells - round(cells)) < 1e-6,
            f"{name}={getattr(cfg, name)!r} is not a multiple of horizontal_scale={cfg.horizontal_scale!r}; "
            f"round it to {round(cells) * cfg.horizontal_scale:g} or change horizontal_scale",
        )
    _require(
        cfg.platform_size < cfg.tile_size,
        f"platform_size={cfg.platform_size!r} must be smaller than tile_size={cfg.tile_size!r}",
    )
    _require(cfg.max_slope_deg < 90, f"max_slope_deg must be < 90, got {cfg.max_slope_deg!r}")
    lo, hi = cfg.difficulty_range
    _require(
        0.0 <= lo <= hi <= 1.0,
        f"difficulty_range must satisfy 0 <= lo <= hi <= 1, got {cfg.difficulty_range!r}",
    )
    for name in ("step_height_range", "roughness_range", "obstacle_height_range"):
        lo, hi = getattr(cfg, name)
        _require(0.0 <= lo <= hi, f"{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)!r}")
    _require(len(cfg.proportions) > 0, "proportions must name at least one terrain type")
    names = [name for name, _ in cfg.proportions]
    for name in names:
        _require(
            name in TerrainType.__members__.values(),
            f"proportions has unknown terrain type {name!r}; known types: {_KNOWN_TYPES}",
        )
    _require(len(set(names)) == len(names), f"proportions lists a type twice: {names!r}; merge the weights")
    weights = [float(w) for _, w in cfg.proportions]
    _require(
        all(math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0,
        f"proportions weights must be finite, >= 0 and not all zero, got {weights!r}",
    )


def column_types(cfg: TerrainCfg) -> tuple[TerrainType, ...]:
    """Terrain type of each column: the type whose cumulative interval contains (j + 0.5) / num_cols."""
    types = [TerrainType(name) for name, _ in cfg.proportions]
    weights = np.array([float(w) for _, w in cfg.proportions])
    cumulative = np.cumsum(weights / weights.sum())
    centres = (np.arange(cfg.num_cols) + 0.5) / cfg.num_cols
    # Intervals are [a, b): a centre exactly on a boundary goes up; the epsilon makes that choice immune to
    # rounding in the cumulative sum (e.g. the default proportions put column 10 of 14 exactly at 0.75).
    index = np.minimum(np.searchsorted(cumulative, centres + 1e-9, side="right"), len(types) - 1)
    return tuple(types[i] for i in index)


def row_difficulties(cfg: TerrainCfg) -> FloatArray:
    """Difficulty of each row, linear from difficulty_range[0] to difficulty_range[1]."""
    lo, hi = cfg.difficulty_range
    if cfg.num_rows == 1:
        return np.array([lo], dtype=np.float64)
    return lo + (hi - lo) * np.arange(cfg.num_rows, dtype=np.float64) / (cfg.num_rows - 1)


def _bilinear(grid: npt.NDArray[_F], u: FloatArray, v: FloatArray) -> npt.NDArray[_F]:
    """Sample a C-contiguous grid (>= 2x2) at fractional column u and row v, clamped to its edges.

    u and v are same-shape float64 arrays that get overwritten: working in place saves temporaries on the
    per-control-step height scan. The result has the grid's dtype.
    """
    ny, nx = grid.shape
    np.clip(u, 0, nx - 1, out=u)
    np.clip(v, 0, ny - 1, out=v)
    j0 = np.minimum(u.astype(np.intp), nx - 2)  # truncation is floor since u >= 0
    idx = np.minimum(v.astype(np.intp), ny - 2)
    u -= j0
    v -= idx
    idx *= nx
    idx += j0
    flat = grid.reshape(-1)
    h00, h01 = flat.take(idx), flat.take(idx + 1)
    idx += nx
    h10, h11 = flat.take(idx), flat.take(idx + 1)
    h01 -= h00
    h01 *= u
    h01 += h00  # interpolated along x on row i0
    h11 -= h10
    h11 *= u
    h11 += h10  # interpolated along x on row i0 + 1
    h11 -= h01
    h11 *= v
    h11 += h01
    return h11


def _lerp(bounds: tuple[float, float], d: float) -> float:
    return bounds[0] + (bounds[1] - bounds[0]) * d


def _rough_tile(amplitude: float, cfg: TerrainCfg, rng: np.random.Generator, n: int) -> FloatArray:
    cell = max(1, round(cfg.roughness_cell / cfg.horizontal_scale))
    knots = rng.uniform(-amplitude, amplitude, size=(n // cell + 2, n // cell + 2))
    u, v = np.meshgrid(np.arange(n) / cell, np.arange(n) / cell)
    return _bilinear(knots, u, v)


def _obstacle_tile(h_max: float, cfg: TerrainCfg, rng: np.random.Generator, local: _Real) -> FloatArray:
    tile = np.zeros((local.size, local.size))
    n = cfg.num_obstacles
    # One cell of clearance keeps the platform's edge samples flat as well as its interior.
    keep_out = cfg.platform_size / 2 + cfg.horizontal_scale
    blocks = np.empty((0, 5))
    for _ in range(100):  # bounded rejection sampling: a platform filling the tile yields fewer blocks
        size = rng.uniform(*_OBSTACLE_SIDE_RANGE, size=(n, 2))
        centre = rng.uniform(-cfg.tile_size / 2, cfg.tile_size / 2, size=(n, 2))
        height = rng.uniform(0.5 * h_max, h_max, size=n) * rng.choice([-1.0, 1.0], size=n)
        clear = np.any(np.abs(centre) >= size / 2 + keep_out, axis=1)
        blocks = np.concatenate([blocks, np.column_stack([centre, size, height])[clear]])
        if len(blocks) >= n:
            break
    for cx, cy, sx, sy, h in blocks[:n]:  # later blocks overwrite earlier ones where they overlap
        tile[np.ix_(np.abs(local - cy) <= sy / 2, np.abs(local - cx) <= sx / 2)] = h
    return tile


def _tile_heights(
    kind: TerrainType, d: float, cfg: TerrainCfg, rng: np.random.Generator, local: _Real, dist: _Real
) -> _Real:
    """Heights of one tile, indexed [y, x]: the platform at 0 (or the outer ring, `level_edges`)."""
    sign = -1.0 if kind in (TerrainType.SLOPE_DOWN, TerrainType.STAIRS_DOWN) else 1.0
    if kind in (TerrainType.SLOPE_UP, TerrainType.SLOPE_DOWN):
        h = sign * math.tan(math.radians(d * cfg.max_slope_deg)) * dist
    elif kind in (TerrainType.STAIRS_UP, TerrainType.STAIRS_DOWN):
        # Quantising the step first keeps every tread an exact multiple of it.
        step = round(_lerp(cfg.step_height_range, d) / cfg.vertical_scale) * cfg.vertical_scale
        # Step k covers (k-1)*w < dist <= k*w; the epsilon absorbs float error on tread edges.
        h = sign * step * np.maximum(np.ceil(dist / cfg.step_width - 1e-6), 0.0)
    elif kind is TerrainType.ROUGH:
        h = _rough_tile(_lerp(cfg.roughness_range, d), cfg, rng, local.size)
    elif kind is TerrainType.OBSTACLES:
        h = _obstacle_tile(_lerp(cfg.obstacle_height_range, d), cfg, rng, local)
    else:
        h = np.zeros_like(dist)
    if cfg.level_edges and kind in _PYRAMIDS:
        # Sample [0, 0] is on the outer ring; a whole number of quanta keeps the feature's own rounding.
        h = h - np.round(h[0, 0] / cfg.vertical_scale) * cfg.vertical_scale
    return np.round(h / cfg.vertical_scale) * cfg.vertical_scale


@dataclass(frozen=True, eq=False)
class Terrain:
    """A heightfield and the tile layout it was generated with (see the module docstring for axes)."""

    heights: npt.NDArray[np.float32]
    """Ground height in metres, shape (ny, nx): row index is y, column index is x."""
    horizontal_scale: float
    """Grid spacing in metres along x and y."""
    tile_size: float = 0.0
    """Side of a square tile in metres (0 for a hand-made field without tiles)."""
    border: float = 0.0
    """Width in metres of the flat border before the first tile."""
    tile_types: tuple[str, ...] = ()
    """Terrain type of each tile column."""
    difficulties: FloatArray = field(default_factory=lambda: np.zeros(0))
    """Difficulty of each tile row."""
    origin_xy: tuple[float, float] = (0.0, 0.0)
    """World (x, y) of grid element [0, 0]."""

    def __post_init__(self) -> None:
        heights = np.ascontiguousarray(self.heights, dtype=np.float32)
        if heights.ndim != 2 or min(heights.shape) < 2:
            raise ValueError(f"Terrain.heights must be a 2-D array, at least 2x2; got shape {heights.shape}")
        if not self.horizontal_scale > 0:
            raise ValueError(f"Terrain.horizontal_scale must be > 0, got {self.horizontal_scale!r}")
        object.__setattr__(self, "heights", heights)
        object.__setattr__(self, "difficulties", np.asarray(self.difficulties, dtype=np.float64))
        size_x, size_y = self.size_xy
        if (
            2 * self.border + self.num_rows * self.tile_size > size_x + 1e-6
            or 2 * self.border + self.num_cols * self.tile_size > size_y + 1e-6
        ):
            raise ValueError("Terrain tiles plus border do not fit in heights; check tile_size and border")

    @property
    def num_rows(self) -> int:
        """Number of difficulty rows."""
        return len(self.difficulties)

    @property
    def num_cols(self) -> int:
        """Number of terrain-type columns."""
        return len(self.tile_types)

    @property
    def size_xy(self) -> tuple[float, float]:
        """World extent (x, y) in metres covered by the grid samples."""
        ny, nx = self.heights.shape
        return ((nx - 1) * self.horizontal_scale, (ny - 1) * self.horizontal_scale)

    def height_at(self, points_xy: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Bilinearly interpolated ground height at world points of shape (..., 2); returns shape (...).

        Points outside the field take the height of the nearest edge.
        """
        pts = np.asarray(points_xy)
        if pts.ndim == 0 or pts.shape[-1] != 2:
            raise ValueError(
                f"height_at expects points_xy of shape (..., 2) holding world (x, y) in the last dimension, "
                f"got shape {pts.shape}"
            )
        inv = 1.0 / self.horizontal_scale
        u = np.array(pts[..., 0], dtype=np.float64)  # always a fresh array (even 0-d): _bilinear writes it
        u -= self.origin_xy[0]
        u *= inv
        v = np.array(pts[..., 1], dtype=np.float64)
        v -= self.origin_xy[1]
        v *= inv
        return _bilinear(self.heights, u, v)

    def tile_centers(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """World (x, y, z) of the centre of tiles (rows[k], cols[k]); inputs broadcast, output (N, 3)."""
        r, c = (a.reshape(-1) for a in np.broadcast_arrays(np.asarray(rows), np.asarray(cols)))
        if np.any((r < 0) | (r >= self.num_rows)) or np.any((c < 0) | (c >= self.num_cols)):
            raise ValueError(
                f"tile index out of range: rows must be in [0, {self.num_rows}), cols in [0, {self.num_cols})"
            )
        x = self.origin_xy[0] + self.border + (r + 0.5) * self.tile_size
        y = self.origin_xy[1] + self.border + (c + 0.5) * self.tile_size
        xy = np.stack([x, y], axis=-1)
        return np.column_stack([xy, self.height_at(xy).astype(np.float64)])

    def tile_center(self, row: int, col: int) -> FloatArray:
        """World (x, y, z) of the centre platform surface of tile (row, col), shape (3,)."""
        return self.tile_centers(np.array([row]), np.array([col]))[0]

    def tile_heights(self, row: int, col: int) -> npt.NDArray[np.float32]:
        """View of the heights of tile (row, col), indexed [y, x]."""
        if not (0 <= row < self.num_rows and 0 <= col < self.num_cols):
            raise ValueError(f"tile ({row}, {col}) out of range ({self.num_rows} rows, {self.num_cols} cols)")
        n = round(self.tile_size / self.horizontal_scale)
        b = round(self.border / self.horizontal_scale)
        return self.heights[b + col * n : b + (col + 1) * n, b + row * n : b + (row + 1) * n]


def generate_terrain(cfg: TerrainCfg | None = None) -> Terrain:
    """Build the tile grid described by cfg (default TerrainCfg()); deterministic given cfg.seed."""
    cfg = cfg or TerrainCfg()
    hs = cfg.horizontal_scale
    n = round(cfg.tile_size / hs)
    b = round(cfg.border / hs)
    heights = np.zeros((2 * b + cfg.num_cols * n + 1, 2 * b + cfg.num_rows * n + 1), np.float32)
    types = column_types(cfg)
    terrain = Terrain(heights, hs, cfg.tile_size, cfg.border, types, row_difficulties(cfg))
    local = (np.arange(n) - n / 2) * hs  # sample offsets from the tile centre, same along x and y
    cheb = np.maximum(np.abs(local)[None, :], np.abs(local)[:, None])
    dist = np.maximum(cheb - cfg.platform_size / 2, 0.0)
    # Tiles are generated independently. Without `level_edges` neighbouring slope and stairs tiles meet at
    # a cliff (e.g. slope_up next to slope_down); legged_gym's pyramids avoid it with every edge at 0.
    for c, kind in enumerate(types):
        for r, d in enumerate(terrain.difficulties):
            rng = np.random.default_rng([cfg.seed, r, c])  # per-tile streams: tiles do not shift each other
            terrain.tile_heights(r, c)[...] = _tile_heights(kind, float(d), cfg, rng, local, dist)
    return terrain
