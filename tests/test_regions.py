"""Tests of the balanced connected partition (gridmap.regions)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from scipy.spatial import Delaunay

from gridmap.errors import InputError
from gridmap.partition.regions import RegionResult, connected_components_of, partition_region

LO, HI = 300, 500


# --- instance builders ---------------------------------------------------------------------
def lattice(mask: np.ndarray, weights: np.ndarray | None = None, seed: int = 0):
    """4-neighbour square lattice over the True cells of ``mask`` (10 m spacing)."""
    rows, cols = np.nonzero(mask)
    idx = np.full(mask.shape, -1)
    idx[rows, cols] = np.arange(len(rows))
    xy = np.c_[cols * 10.0, -rows * 10.0]
    right = mask[:, :-1] & mask[:, 1:]
    down = mask[:-1, :] & mask[1:, :]
    e = np.r_[
        np.c_[idx[:, :-1][right], idx[:, 1:][right]],
        np.c_[idx[:-1, :][down], idx[1:, :][down]],
    ]
    if weights is None:
        weights = np.random.default_rng(seed).integers(1, 21, len(rows))
    return np.asarray(weights), xy, e


def shape(kind: str, size: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "square":
        return np.ones((size, size), dtype=bool)
    if kind == "L":
        return (xx < size // 3) | (yy >= 2 * size // 3)
    if kind == "ring":
        r = np.hypot(xx - size / 2 + 0.5, yy - size / 2 + 0.5)
        return (r < size / 2) & (r > size / 4)
    raise ValueError(kind)


def building_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """Households per building: mostly houses, some slabs, a few towers, some empty."""
    kind = rng.random(n)
    w = np.where(
        kind < 0.6,
        1,
        np.where(kind < 0.9, rng.integers(20, 121, n), rng.integers(150, 481, n)),
    )
    w[rng.random(n) < 0.1] = 0
    return w


def delaunay_instance(n: int, seed: int):
    """Random points (uniform or clustered), Delaunay adjacency, building weights."""
    rng = np.random.default_rng(seed)
    if seed % 2:
        centres = rng.uniform(0, 2000, (max(3, n // 150), 2))
        xy = centres[rng.integers(len(centres), size=n)] + rng.normal(0, 120, (n, 2))
    else:
        xy = rng.uniform(0, 30 * np.sqrt(n), (n, 2))
    tri = Delaunay(xy).simplices
    e = np.r_[tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]  # duplicates on purpose
    return building_weights(n, rng), xy, e


# --- checks ----------------------------------------------------------------------------------
def assert_valid(res: RegionResult, weights, edges) -> None:
    """Labels cover 0..k-1, weights add up, and every region is connected (networkx)."""
    n = len(weights)
    assert res.labels.shape == (n,)
    assert res.labels.dtype == np.int64
    assert set(np.unique(res.labels)) == set(range(res.k))
    assert len(res.status) == res.k == len(res.weights)
    np.testing.assert_array_equal(
        res.weights, np.bincount(res.labels, weights=weights, minlength=res.k).astype(int)
    )
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(map(tuple, np.asarray(edges).reshape(-1, 2).tolist()))
    for r in range(res.k):
        nodes = np.flatnonzero(res.labels == r).tolist()
        assert nx.is_connected(g.subgraph(nodes)), f"region {r} is not connected"


def in_range(res: RegionResult, lo: float = LO, hi: float = HI) -> np.ndarray:
    return (res.weights >= lo) & (res.weights <= hi)


def assert_all_ok(res: RegionResult, lo: float = LO, hi: float = HI) -> None:
    assert in_range(res, lo, hi).all(), (res.weights, res.note)
    assert res.status == ["ok"] * res.k
    assert res.note == ""


def reock(xy: np.ndarray, labels: np.ndarray) -> float:
    """Mean of convex-hull area / minimum-bounding-circle area over the regions."""
    vals = []
    for r in np.unique(labels):
        pts = shapely.multipoints(xy[labels == r])
        circle = shapely.minimum_bounding_circle(pts)
        if len(xy[labels == r]) >= 3 and circle.area > 0:
            vals.append(shapely.convex_hull(pts).area / circle.area)
    return float(np.mean(vals))


# --- connected_components_of -----------------------------------------------------------------
def test_connected_components_of_graph_and_mask():
    edges = np.array([[0, 1], [1, 2], [3, 4], [2, 1], [5, 5]])
    np.testing.assert_array_equal(connected_components_of(6, edges), [0, 0, 0, 1, 1, 2])
    mask = np.array([True, False, True, True, True, False])
    np.testing.assert_array_equal(connected_components_of(6, edges, mask), [0, -1, 1, 2, 2, -1])
    assert connected_components_of(0, np.zeros((0, 2), dtype=int)).shape == (0,)
    with pytest.raises(InputError):
        connected_components_of(3, np.array([[0, 3]]))


# --- shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["square", "L", "ring"])
def test_lattice_shapes_all_in_range_and_compact(kind):
    w, xy, e = lattice(shape(kind), seed=1)
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert_all_ok(res)
    total = w.sum()
    feasible = [k for k in range(1, total // LO + 1) if k * LO <= total <= k * HI]
    best_k = min(feasible, key=lambda k: abs(k - total / ((LO + HI) / 2)))
    assert res.k == best_k
    assert reock(xy, res.labels) > 0.5  # a square scores 0.64, a long snake near 0


def test_square_lattice_regions_are_compact_not_snakes():
    w, xy, e = lattice(shape("square"), weights=np.full(1600, 10))
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert_all_ok(res)
    for r in range(res.k):
        p = xy[res.labels == r]
        extent = np.ptp(p, axis=0)
        assert extent.max() <= 3.5 * max(extent.min(), 10.0), f"region {r} is elongated"


def test_path_graph_gives_intervals():
    rng = np.random.default_rng(3)
    n = 300
    w = rng.integers(1, 21, n)
    xy = np.c_[np.arange(n) * 10.0, np.zeros(n)]
    e = np.c_[np.arange(n - 1), np.arange(1, n)]
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert_all_ok(res)
    for r in range(res.k):  # a connected set of a path is an interval
        assert np.all(np.diff(np.flatnonzero(res.labels == r)) == 1)


def test_lumpy_weights_with_towers():
    rng = np.random.default_rng(7)
    mask = shape("square", 30)
    w = rng.integers(1, 6, mask.sum())
    towers = rng.choice(mask.sum(), 30, replace=False)
    w[towers] = rng.integers(250, 481, len(towers))
    w, xy, e = lattice(mask, weights=w)
    res = partition_region(w, xy, e, LO, HI, seed=2)
    assert_valid(res, w, e)
    assert_all_ok(res)


def test_only_one_feasible_k_needs_exact_halves():
    # 600 households with 300-500: one grid is too many households, so k=2 with 300 each
    w, xy, e = lattice(shape("square", 10), weights=np.r_[np.full(50, 10), np.full(50, 2)])
    assert w.sum() == 600
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert res.k == 2
    np.testing.assert_array_equal(np.sort(res.weights), [300, 300])
    assert_all_ok(res)


def test_difficult_area_range_and_target():
    w, xy, e = lattice(shape("square", 30), seed=5)
    res = partition_region(w, xy, e, 200, 300, target=250)
    assert_valid(res, w, e)
    assert_all_ok(res, 200, 300)
    assert res.k == round(w.sum() / 250) or abs(res.k - w.sum() / 250) <= 1


# --- infeasible and degenerate totals ---------------------------------------------------------
def test_520_is_least_bad_single_region_flagged():
    w, xy, e = lattice(shape("square", 8), weights=np.r_[np.full(8, 30), np.full(56, 5)])
    assert w.sum() == 520
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert res.k == 1
    assert res.status == ["infeasible_total"]
    assert "520" in res.note


def test_infeasible_total_picks_two_regions_when_that_is_closer():
    # 390 with 200-300: one grid is 30 % over, two grids of 195 are 2.5 % under
    w, xy, e = lattice(shape("square", 6), weights=np.r_[np.full(30, 10), np.full(6, 15)])
    assert w.sum() == 390
    res = partition_region(w, xy, e, 200, 300)
    assert_valid(res, w, e)
    assert res.k == 2
    assert res.status == ["infeasible_total"] * 2
    assert np.abs(res.weights - 195).max() <= 15
    assert res.note


def test_below_floor_single_region():
    w, xy, e = lattice(shape("square", 5), weights=np.full(25, 4))
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert res.k == 1 and res.status == ["below_floor"] and res.weights.tolist() == [100]
    assert "below" in res.note


def test_zero_total_is_one_ok_region():
    w, xy, e = lattice(shape("square", 4), weights=np.zeros(16, dtype=int))
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert res.k == 1 and res.status == ["ok"] and res.weights.tolist() == [0]


def test_single_range_total_is_one_region():
    w, xy, e = lattice(shape("square", 10), weights=np.full(100, 4))
    res = partition_region(w, xy, e, LO, HI)
    assert res.k == 1 and res.status == ["ok"]


def test_atom_heavier_than_hi_is_alone_and_unbalanced():
    w, xy, e = lattice(shape("square", 6), weights=np.r_[700, np.full(35, 10)])
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    heavy_region = res.labels[0]
    assert np.flatnonzero(res.labels == heavy_region).tolist() == [0]
    assert res.status[heavy_region] == "unbalanced"
    others = [r for r in range(res.k) if r != heavy_region]
    assert all(res.status[r] == "ok" for r in others)
    assert in_range(res)[others].all()
    assert "more than 500" in res.note


def test_lumpiness_without_a_solution_is_unbalanced():
    # 1000 households on a path: 480 | 40 | 480 can only give 480 + 520 or 520 + 480
    w = np.array([480, 40, 480])
    xy = np.c_[np.arange(3) * 10.0, np.zeros(3)]
    e = np.array([[0, 1], [1, 2]])
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert sorted(res.weights.tolist()) == [480, 520]
    assert sorted(res.status) == ["ok", "unbalanced"]
    assert "lumpy" in res.note


def test_empty_input():
    res = partition_region(np.zeros(0, dtype=int), np.zeros((0, 2)), np.zeros((0, 2)), LO, HI)
    assert res.k == 0 and res.labels.shape == (0,)


# --- disconnected input, duplicates, determinism ---------------------------------------------
def test_disconnected_graph_partitioned_per_component():
    w1, xy1, e1 = lattice(shape("square", 20), seed=1)
    w2, xy2, e2 = lattice(shape("square", 15), seed=2)
    n1 = len(w1)
    w = np.r_[w1, w2]
    xy = np.r_[xy1, xy2 + [150.0, 0.0]]  # overlapping in space, separate in the graph
    e = np.r_[e1, e2 + n1]
    res = partition_region(w, xy, e, LO, HI)
    assert_valid(res, w, e)
    assert_all_ok_except_note(res)
    assert not set(res.labels[:n1]) & set(res.labels[n1:])
    assert "2 connected components" in res.note


def assert_all_ok_except_note(res: RegionResult) -> None:
    assert in_range(res).all()
    assert res.status == ["ok"] * res.k


def test_duplicate_and_reversed_edges_do_not_matter():
    w, xy, e = lattice(shape("square", 20), seed=4)
    noisy = np.r_[e, e[:, ::-1], e[:50], np.c_[np.arange(10), np.arange(10)]]
    a = partition_region(w, xy, e, LO, HI, seed=3)
    b = partition_region(w, xy, noisy, LO, HI, seed=3)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_deterministic_for_a_seed_and_seed_matters():
    w, xy, e = delaunay_instance(400, 4)
    a = partition_region(w, xy, e, LO, HI, seed=11)
    b = partition_region(w, xy, e, LO, HI, seed=11)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.status == b.status and a.note == b.note
    others = [partition_region(w, xy, e, LO, HI, seed=s).labels for s in range(4)]
    assert any(not np.array_equal(others[0], x) for x in others[1:])


def test_edge_lengths_are_accepted():
    w, xy, e = lattice(shape("L", 30), seed=6)
    lengths = np.random.default_rng(0).uniform(1, 20, len(e))
    res = partition_region(w, xy, e, LO, HI, edge_lengths=lengths)
    assert_valid(res, w, e)
    assert_all_ok(res)


# --- input errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("weights", "xy", "edges", "lo", "hi"),
    [
        (np.array([1, -1]), np.zeros((2, 2)), np.array([[0, 1]]), LO, HI),
        (np.array([1, 1]), np.zeros((3, 2)), np.array([[0, 1]]), LO, HI),
        (np.array([1, 1]), np.zeros((2, 2)), np.array([[0, 2]]), LO, HI),
        (np.array([1, 1]), np.zeros((2, 2)), np.array([[0, 1]]), 500, 300),
        (np.array([1, 1]), np.zeros((2, 2)), np.array([[0, 1]]), 0, 300),
    ],
)
def test_bad_input_raises(weights, xy, edges, lo, hi):
    with pytest.raises(InputError):
        partition_region(weights, xy, edges, lo, hi)


# --- random instances: success rate and compactness --------------------------------------------
def test_random_building_like_instances_success_rate():
    ok = total = 0
    scores = []
    for seed in range(50):
        n = 150 + (seed * 37) % 350
        w, xy, e = delaunay_instance(n, seed)
        res = partition_region(w, xy, e, LO, HI, seed=seed)
        assert_valid(res, w, e)
        flags = in_range(res)
        ok += int(flags.sum())
        total += res.k
        # every region out of range is flagged with a reason and explained
        assert all((s == "ok") == f for s, f in zip(res.status, flags, strict=True))
        if not flags.all():
            assert res.note
        scores.append(reock(xy, res.labels))
    rate = ok / total
    print(f"\nregions in range: {ok}/{total} = {rate:.1%}; mean Reock {np.mean(scores):.3f}")
    assert rate >= 0.95
    assert np.mean(scores) > 0.3


@pytest.mark.slow
def test_large_piece_is_fast_enough():
    import time

    rng = np.random.default_rng(0)
    n = 20000
    xy = rng.uniform(0, 30 * np.sqrt(n), (n, 2))
    tri = Delaunay(xy).simplices
    e = np.r_[tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]
    w = np.full(n, 2)
    t0 = time.process_time()
    res = partition_region(w, xy, e, LO, HI)
    elapsed = time.process_time() - t0
    assert_valid(res, w, e)
    assert_all_ok(res)
    assert elapsed < 5.0  # about 0.5 s of CPU time on one core; generous for shared CI


def test_checker_catches_a_disconnected_region():
    # the contiguity check used throughout must itself be able to fail
    w, xy, e = lattice(shape("square", 4), weights=np.full(16, 1))
    labels = np.zeros(16, dtype=np.int64)
    labels[[0, 15]] = 1  # two opposite corners: not adjacent
    fake = RegionResult(labels, 2, np.bincount(labels, weights=w).astype(int), ["ok", "ok"])
    with pytest.raises(AssertionError, match="not connected"):
        assert_valid(fake, w, e)
