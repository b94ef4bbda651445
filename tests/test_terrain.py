import dataclasses
import math

import numpy as np
import pytest

from humanoid_prior.envs.terrain import (
    Terrain,
    TerrainCfg,
    TerrainType,
    column_types,
    generate_terrain,
    row_difficulties,
)

HS = 0.1  # horizontal_scale used below: an 8 m tile is 80 samples, its centre is sample 40
N = 80
C = 40


def small_cfg(*types: str, **overrides) -> TerrainCfg:
    """Three rows (d = 0, 0.5, 1), one column per given type, equal weights, 1 m border."""
    base = TerrainCfg(num_rows=3, num_cols=len(types), border=1.0, proportions=tuple((t, 1.0) for t in types))
    return dataclasses.replace(base, **overrides)


def chebyshev_samples() -> np.ndarray:
    """Chebyshev distance, in samples, of each tile sample [iy, ix] from the tile centre sample."""
    offsets = np.abs(np.arange(N) - C)
    return np.maximum(offsets[None, :], offsets[:, None])


# --- stairs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "sign"), [("stairs_up", 1.0), ("stairs_down", -1.0)])
def test_stairs_are_concentric_flat_treads_of_one_step_height(kind, sign):
    terrain = generate_terrain(small_cfg(kind))
    tile = terrain.tile_heights(1, 0)  # d = 0.5: step = 0.02 + (0.18 - 0.02) * 0.5 = 0.10 m
    step = 0.10
    # Platform: Chebyshev distance <= 1.0 m = 10 samples -> height 0. Then treads of 0.3 m = 3 samples:
    # samples 11..13 are step 1, 14..16 step 2, ..., 38..40 step 10 (the tile edge at -4.0 m).
    expected_by_distance = np.concatenate([np.zeros(11)] + [np.full(3, k * step) for k in range(1, 11)])
    assert expected_by_distance.shape == (41,)
    np.testing.assert_allclose(tile, sign * expected_by_distance[chebyshev_samples()], atol=1e-6)


@pytest.mark.parametrize(("kind", "sign"), [("stairs_up", 1.0), ("stairs_down", -1.0)])
def test_stairs_height_k_steps_out_from_platform_edge_in_world_coordinates(kind, sign):
    terrain = generate_terrain(small_cfg(kind))
    cx, cy, cz = terrain.tile_center(1, 0)
    assert cz == 0.0
    k = np.arange(1, 10)
    out = 1.0 + (k - 0.5) * 0.3  # middle of tread k, measured from the tile centre
    for direction in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        pts = np.stack([cx + direction[0] * out, cy + direction[1] * out], axis=-1)
        np.testing.assert_allclose(terrain.height_at(pts), sign * k * 0.10, atol=1e-6)


# --- slopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "sign"), [("slope_up", 1.0), ("slope_down", -1.0)])
def test_slope_gradient_is_tan_of_difficulty_times_max_angle(kind, sign):
    terrain = generate_terrain(small_cfg(kind))
    tile = terrain.tile_heights(1, 0).astype(np.float64)
    grad = sign * math.tan(math.radians(10.0))  # d = 0.5, max_slope_deg = 20 -> 10 deg -> 0.17633 m/m
    vs = 0.005
    profiles = [tile[C, C:], tile[C, C::-1], tile[C:, C], tile[C::-1, C]]  # +x, -x, +y, -y
    for profile in profiles:
        np.testing.assert_array_equal(profile[:11], 0.0)  # the 2 m platform: 10 samples each side
        outward = profile[10:]
        # Each sample is quantised by at most vs/2, so one-cell differences are within vs / HS.
        np.testing.assert_allclose(np.diff(outward) / HS, grad, atol=vs / HS + 1e-6)
        baseline = (len(outward) - 1) * HS
        assert (outward[-1] - outward[0]) / baseline == pytest.approx(grad, abs=vs / baseline)


# --- flat, border, layout -----------------------------------------------------------------------


def test_flat_terrain_is_exactly_zero():
    terrain = generate_terrain(small_cfg("flat", num_rows=2, num_cols=2))
    assert terrain.heights.dtype == np.float32
    assert not terrain.heights.any()


def test_border_is_flat_and_heights_are_quantised():
    cfg = small_cfg(*TerrainType, num_rows=2, border=1.5)
    terrain = generate_terrain(cfg)
    h = terrain.heights
    b = 15
    assert h.shape == (2 * b + 7 * N + 1, 2 * b + 2 * N + 1)
    for band in (h[:b], h[-b - 1 :], h[:, :b], h[:, -b - 1 :]):
        assert not band.any()
    q = h / cfg.vertical_scale
    np.testing.assert_allclose(q, np.round(q), atol=1e-3)


def test_layout_rows_run_along_x_and_columns_along_y():
    terrain = generate_terrain(small_cfg("stairs_up", "slope_down"))
    assert terrain.num_rows == 3
    assert terrain.num_cols == 2
    assert terrain.size_xy == pytest.approx((2 * 1.0 + 3 * 8.0, 2 * 1.0 + 2 * 8.0))
    # Tile (row 2, col 1): x centre = 1 + 2.5 * 8 = 21, y centre = 1 + 1.5 * 8 = 13.
    np.testing.assert_allclose(terrain.tile_center(2, 1), [21.0, 13.0, 0.0])
    # The same spot as a grid element: heights[i = y / hs, j = x / hs].
    i, j = 130, 210
    assert terrain.heights[i, j] == 0.0
    assert terrain.heights[i, j + 25] < 0.0  # slope_down falls away 2.5 m further along +x
    assert terrain.tile_heights(2, 1).base is not None  # a view into heights
    np.testing.assert_array_equal(terrain.tile_heights(2, 1), terrain.heights[90:170, 170:250])


def test_tile_centers_is_the_vectorised_tile_center():
    terrain = generate_terrain(small_cfg("rough", "stairs_up"))
    rows = np.array([0, 2, 1, 2])
    cols = np.array([1, 0, 0, 1])
    centers = terrain.tile_centers(rows, cols)
    assert centers.shape == (4, 3)
    for k in range(4):
        np.testing.assert_allclose(centers[k], terrain.tile_center(rows[k], cols[k]))
    with pytest.raises(ValueError, match="out of range"):
        terrain.tile_centers(np.array([3]), np.array([0]))


# --- height_at ----------------------------------------------------------------------------------

GRID = np.array([[0.0, 1.0, 4.0], [2.0, 7.0, 3.0], [5.0, 6.0, 8.0]], dtype=np.float32)


def hand_made(origin=(0.0, 0.0)) -> Terrain:
    return Terrain(heights=GRID, horizontal_scale=0.5, origin_xy=origin)


def test_height_at_grid_points_returns_grid_values_with_x_along_columns():
    terrain = hand_made()
    ii, jj = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    pts = np.stack([jj * 0.5, ii * 0.5], axis=-1)  # x = j * hs, y = i * hs
    np.testing.assert_array_equal(terrain.height_at(pts), GRID)
    assert terrain.height_at([1.0, 0.0]) == 4.0  # x = 1.0 is column 2 of row 0, not row 2 (which is 5)


def test_height_at_midpoints_average_the_neighbours():
    terrain = hand_made()
    pts = np.array([[0.25, 0.0], [0.0, 0.25], [0.75, 0.75], [0.25, 0.25]])
    expected = [(0 + 1) / 2, (0 + 2) / 2, (7 + 3 + 6 + 8) / 4, (0 + 1 + 2 + 7) / 4]
    np.testing.assert_allclose(terrain.height_at(pts), expected, atol=1e-6)


def test_height_at_clamps_outside_points_to_the_edge():
    terrain = hand_made()
    pts = np.array([[-3.0, -3.0], [5.0, 0.25], [0.25, 9.0], [7.0, 7.0]])
    expected = [0.0, (4 + 3) / 2, (5 + 6) / 2, 8.0]
    np.testing.assert_allclose(terrain.height_at(pts), expected, atol=1e-6)


def test_height_at_honours_origin_and_batch_shape():
    terrain = hand_made(origin=(10.0, -2.0))
    assert terrain.height_at(np.array([10.5, -2.0])) == 1.0
    pts = np.random.default_rng(0).uniform(9.0, 12.0, size=(64, 200, 2)).astype(np.float32)
    out = terrain.height_at(pts)
    assert out.shape == (64, 200)
    assert out.dtype == np.float32
    assert pts.shape == (64, 200, 2)  # input left untouched
    assert np.all((out >= 0.0) & (out <= 8.0))


@pytest.mark.parametrize("bad", [np.zeros((5, 3)), np.zeros(3), np.float64(1.0)])
def test_height_at_rejects_points_without_xy_last_dimension(bad):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        hand_made().height_at(bad)


# --- config: columns, rows, validation ----------------------------------------------------------


def test_column_types_follow_cumulative_proportions():
    cfg = TerrainCfg(num_cols=4, proportions=(("flat", 1.0), ("stairs_up", 1.0)))
    assert column_types(cfg) == ("flat", "flat", "stairs_up", "stairs_up")
    # Intervals are [a, b): one column's centre 0.5 sits on the flat/rough boundary and goes up.
    assert column_types(TerrainCfg(num_cols=1, proportions=(("flat", 1.0), ("rough", 1.0)))) == ("rough",)
    # A zero weight gets no column.
    zero = (("flat", 1.0), ("rough", 0.0), ("obstacles", 1.0))
    assert column_types(TerrainCfg(num_cols=2, proportions=zero)) == ("flat", "obstacles")
    # Defaults over 14 columns: cumulative 0.1, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0 against centres (j + 0.5) / 14;
    # column 10's centre is exactly 0.75 and falls in the upper interval [0.75, 0.9) -> stairs_down.
    counts = {t: column_types(TerrainCfg()).count(t) for t in TerrainType}
    assert counts == {
        "flat": 1,
        "rough": 3,
        "slope_up": 2,
        "slope_down": 2,
        "stairs_up": 2,
        "stairs_down": 3,
        "obstacles": 1,
    }


def test_row_difficulties_are_linear_over_the_range():
    def rows(n: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        return row_difficulties(TerrainCfg(num_rows=n, difficulty_range=(lo, hi)))

    np.testing.assert_allclose(rows(5), [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(rows(3, 0.2, 0.6), [0.2, 0.4, 0.6])
    np.testing.assert_allclose(rows(1, 0.3, 0.9), [0.3])  # a single row sits at the low end


def test_unknown_type_error_lists_known_names():
    with pytest.raises(ValueError, match="proportions") as info:
        TerrainCfg(proportions=(("flat", 1.0), ("lava", 1.0)))
    message = str(info.value)
    assert "'lava'" in message
    for name in TerrainType:
        assert name.value in message


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"tile_size": -8.0}, "tile_size must be > 0"),
        ({"horizontal_scale": 0.0}, "horizontal_scale must be > 0"),
        ({"num_rows": 0}, "num_rows"),
        ({"tile_size": 8.05}, "not a multiple of horizontal_scale"),
        ({"border": 0.25}, "border=0.25 is not a multiple"),
        ({"difficulty_range": (0.0, 1.5)}, "difficulty_range"),
        ({"difficulty_range": (0.8, 0.2)}, "difficulty_range"),
        ({"platform_size": 8.0}, "platform_size"),
        ({"proportions": (("flat", 0.0),)}, "weights"),
    ],
)
def test_invalid_config_raises_with_field_name(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        TerrainCfg(**overrides)


# --- difficulty, determinism, obstacles ---------------------------------------------------------


def test_difficulty_grows_with_row():
    cfg = small_cfg(*TerrainType, num_rows=2)  # d = 0 and d = 1; column j is the j-th TerrainType
    terrain = generate_terrain(cfg)

    def tile(row: int, kind: str) -> np.ndarray:
        return terrain.tile_heights(row, list(TerrainType).index(TerrainType(kind))).astype(np.float64)

    for kind in ("slope_up", "stairs_up"):
        assert 0.0 <= tile(0, kind).max() < tile(1, kind).max()
    for kind in ("slope_down", "stairs_down"):
        assert tile(0, kind).min() > tile(1, kind).min()
    # d = 0 slope angle is 0 deg (flat); d = 1 stairs top out at 10 steps of 0.18 m.
    assert not tile(0, "slope_up").any()
    assert tile(1, "stairs_up").max() == pytest.approx(1.8, abs=1e-5)
    # Roughness amplitude 0.01 m at d = 0, 0.06 m at d = 1; obstacles up to 0.03 m and 0.15 m.
    tol = 1e-6
    assert np.abs(tile(0, "rough")).max() <= 0.01 + tol < np.abs(tile(1, "rough")).max() <= 0.06 + tol
    assert np.abs(tile(0, "obstacles")).max() <= 0.03 + tol < np.abs(tile(1, "obstacles")).max() <= 0.15 + tol


def test_same_seed_same_heights_different_seed_different_rough_tile():
    a = generate_terrain(small_cfg("rough", "obstacles", seed=3))
    b = generate_terrain(small_cfg("rough", "obstacles", seed=3))
    c = generate_terrain(small_cfg("rough", "obstacles", seed=4))
    np.testing.assert_array_equal(a.heights, b.heights)
    assert not np.array_equal(a.tile_heights(1, 0), c.tile_heights(1, 0))
    assert np.abs(a.tile_heights(1, 0)).max() > 0  # rough everywhere, the centre included


def test_obstacles_leave_the_centre_platform_clear():
    terrain = generate_terrain(small_cfg("obstacles", num_rows=4, difficulty_range=(0.4, 1.0)))
    platform = chebyshev_samples() <= 10  # 2 m platform = 10 samples each side of the centre
    for row in range(terrain.num_rows):
        tile = terrain.tile_heights(row, 0)
        assert not tile[platform].any()
        assert (tile > 0).any() and (tile < 0).any()  # blocks are signed, up and down
        assert terrain.tile_center(row, 0)[2] == 0.0


def test_level_edges_join_tiles_without_a_cliff_and_keep_each_feature():
    kinds = ("flat", "slope_up", "slope_down", "stairs_up", "stairs_down")
    cfg = small_cfg(*kinds, num_rows=4)  # d = 0, 1/3, 2/3, 1
    cliffs, level = generate_terrain(cfg), generate_terrain(dataclasses.replace(cfg, level_edges=True))

    def largest_step_across_borders(terrain: Terrain) -> float:
        h = terrain.heights.astype(np.float64)
        return max(np.abs(np.diff(h, axis=0)).max(), np.abs(np.diff(h, axis=1)).max())

    # Within a slope tile one 0.1 m cell rises at most tan(20°) * 0.1 = 0.036 m (plus quantisation); a
    # stairs tile rises 0.18 m per tread at d = 1. So 0.19 m bounds every step inside tiles, and any
    # larger one is a cliff between tiles or at the border.
    assert largest_step_across_borders(level) <= 0.18 + 0.005 + 1e-6
    assert largest_step_across_borders(cliffs) > 1.0
    for row in range(cfg.num_rows):
        for col in range(len(kinds)):
            old, new = cliffs.tile_heights(row, col), level.tile_heights(row, col)
            np.testing.assert_allclose(new - new[C, C], old - old[C, C], atol=1e-6)  # same feature
            assert new[0, :].max() == new[0, :].min() == 0.0  # the outer ring at 0
            np.testing.assert_allclose(level.tile_center(row, col)[2], new[C, C], atol=1e-6)
