"""Tests of the planner's editing API (gridmap.edit) on small synthetic towns."""

from __future__ import annotations

import json
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridmap
from gridmap import edit
from gridmap.errors import InputError, PlanError

CRS = 32652


# ------------------------------------------------------------------ synthetic towns
def _buildings(xy, hh, *, units=None, levels=None, size=(24, 16)):
    xy = np.asarray(xy, dtype=float)
    hh = np.asarray(hh, dtype=np.int64)
    w, h = size
    geom = shapely.box(xy[:, 0] - w / 2, xy[:, 1] - h / 2, xy[:, 0] + w / 2, xy[:, 1] + h / 2)
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:05d}" for i in range(len(xy))],
            "use": np.where(hh == 0, "garage", np.where(hh == 1, "house", "apartments")),
            "levels": levels if levels is not None else np.where(hh > 1, 6.0, 1.0),
            "units": units if units is not None else np.where(hh > 1, 3, 1),
            "households": hh,
            "households_source": "given",
            "name": [f"幸福小区{i}号楼" for i in range(len(xy))],
        },
        geometry=geom,
        crs=CRS,
    )


def _lattice(x0, x1, y0, y1, dx=60, dy=45):
    xs, ys = np.meshgrid(np.arange(x0 + dx / 2, x1, dx), np.arange(y0 + dy / 2, y1, dy))
    return np.column_stack([xs.ravel(), ys.ravel()])


def _comms(boxes):
    codes = [f"{i + 1:03d}" for i in range(len(boxes))]
    return gpd.GeoDataFrame(
        {"community_code": codes, "street_code": "001", "name": [f"社区{c}" for c in codes]},
        geometry=[shapely.box(*b) for b in boxes],
        crs=CRS,
    )


@pytest.fixture(scope="module")
def town():
    rng = np.random.default_rng(0)
    xy = _lattice(0, 2000, 0, 1000)
    xy = xy[np.abs(xy[:, 1] - 500) > 15]
    hh = rng.choice([1, 24, 36, 60, 0], size=len(xy), p=[0.3, 0.3, 0.2, 0.15, 0.05])
    b = _buildings(xy, hh)
    comms = _comms([(0, 0, 1000, 1000), (1000, 0, 2000, 1000)])
    road = gpd.GeoDataFrame(
        {"highway": ["primary"], "name": ["Main"]},
        geometry=[shapely.LineString([(-10, 500), (2010, 500)])],
        crs=CRS,
    )
    plan = gridmap.plan_grids(b, comms, barriers=road, admin_code="230717", progress=False)
    return plan, comms


@pytest.fixture(scope="module")
def tower():
    """A plan with a 33-storey tower split by units between two grids."""
    xy = _lattice(0, 600, 0, 400)
    hh = np.full(len(xy), 30)
    units = np.full(len(xy), 3)
    levels = np.full(len(xy), 6.0)
    hh[0], units[0], levels[0] = 594, 3, 33.0
    b = _buildings(xy, hh, units=units, levels=levels)
    plan = gridmap.plan_grids(b, _comms([(0, 0, 600, 400)]), admin_code="230717", progress=False)
    assert plan.splits["grid_code"].nunique() == 2
    return plan


# ----------------------------------------------------------------------- helpers
def _assert_tiles(plan, comms=None):
    """Grids tile every community exactly and do not overlap."""
    comms = plan.communities if comms is None else comms
    g = plan.grids
    assert shapely.is_valid(g.geometry.values).all()
    for _, c in comms.iterrows():
        sub = g[g["community_code"] == c["community_code"]]
        assert abs(sub.area.sum() - c.geometry.area) < 1.0
        assert shapely.union_all(sub.geometry.values).symmetric_difference(c.geometry).area < 1.0
    rep = plan.validate()
    assert not rep["check"].isin(["overlap", "gap", "invalid_geometry"]).any(), rep


def _assert_counts(plan):
    """Grid households and building counts equal what their buildings hold."""
    b, s, g = plan.buildings, plan.splits, plan.grids
    split = b["building_id"].isin(set(s["building_id"]))
    per = b[~split].groupby("grid_code")["households"].sum()
    if len(s):
        per = per.add(s.groupby("grid_code")["households"].sum(), fill_value=0)
    got = per.reindex(g["grid_code"]).fillna(0).astype(int).to_numpy()
    assert (got == g["households"].to_numpy()).all()
    cnt = b["grid_code"].value_counts().reindex(g["grid_code"]).fillna(0).astype(int).to_numpy()
    assert (cnt == g["buildings"].to_numpy()).all()
    assert g["grid_code"].is_unique
    assert int(g["households"].sum()) == int(b["households"].sum())


def _neighbours(plan, code):
    g = plan.grids
    geom = g.loc[g["grid_code"] == code].geometry.iloc[0]
    shared = shapely.length(shapely.intersection(g.geometry.values, geom.boundary))
    same = (
        g["community_code"] == g.loc[g["grid_code"] == code, "community_code"].iloc[0]
    ).to_numpy()
    ok = (shared > 10) & (g["grid_code"] != code).to_numpy() & same
    return g.loc[ok, "grid_code"].tolist()


def _edge_building(plan, src, dst):
    """A building of grid `src` nearest to grid `dst`, with households."""
    g = plan.grids
    target = g.loc[g["grid_code"] == dst].geometry.iloc[0]
    b = plan.buildings[(plan.buildings["grid_code"] == src) & (plan.buildings["households"] > 0)]
    d = b.geometry.distance(target)
    return b.loc[d.idxmin(), "building_id"]


def _frozen(plan):
    return (plan.grids.copy(), plan.buildings.copy(), plan.splits.copy(), list(plan.history))


def _unchanged(plan, frozen):
    g, b, s, h = frozen
    pd.testing.assert_frame_equal(plan.grids.drop(columns="geometry"), g.drop(columns="geometry"))
    assert plan.grids.geometry.geom_equals_exact(g.geometry, 0).all()
    pd.testing.assert_series_equal(plan.buildings["grid_code"], b["grid_code"])
    pd.testing.assert_frame_equal(plan.splits, s)
    assert plan.history == h


# ---------------------------------------------------------------------- moving
def test_move_by_ids_transfers_the_cell_and_keeps_everything_else(town):
    plan, comms = town
    before = _frozen(plan)
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    bid = _edge_building(plan, src, dst)
    hh = int(plan.buildings.loc[plan.buildings["building_id"] == bid, "households"].iloc[0])
    res = edit.move_buildings(plan, dst, ids=[bid], reason="lane is on the other side")
    new, report = res
    _unchanged(plan, before)  # never mutated in place
    assert new.buildings.loc[new.buildings["building_id"] == bid, "grid_code"].iloc[0] == dst
    old_g = plan.grids.set_index("grid_code")
    new_g = new.grids.set_index("grid_code")
    assert new_g.at[src, "households"] == old_g.at[src, "households"] - hh
    assert new_g.at[dst, "households"] == old_g.at[dst, "households"] + hh
    # the moved building's point is now inside its new grid; both grids stay one polygon
    pt = new.buildings.loc[new.buildings["building_id"] == bid].geometry.representative_point()
    assert new_g.at[dst, "geometry"].covers(pt.iloc[0])
    assert new_g.loc[[src, dst]].geom_type.eq("Polygon").all()
    # every other grid keeps its code and polygon exactly
    others = old_g.index.difference([src, dst])
    assert new_g.loc[others].geometry.geom_equals_exact(old_g.loc[others].geometry, 0).all()
    assert set(new_g.index) == set(old_g.index)
    _assert_tiles(new, comms)
    _assert_counts(new)
    assert report.attrs["edited_grids"] == sorted([src, dst])
    h = new.history[-1]
    assert h["op"] == "move_buildings" and h["reason"] == "lane is on the other side"
    assert h["params"]["buildings"] == [bid] and sorted(h["changed"]) == sorted([src, dst])
    assert h["time"].endswith("+00:00")
    json.dumps(new.history)  # persisted as JSON


def test_move_accepts_code_endings_and_rejects_bad_input(town):
    plan, _ = town
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    bid = _edge_building(plan, src, dst)
    new, _ = edit.move_buildings(plan, dst[-6:], ids=bid)
    assert new.buildings.loc[new.buildings["building_id"] == bid, "grid_code"].iloc[0] == dst
    with pytest.raises(PlanError, match="no grid"):
        edit.move_buildings(plan, "999999999999999", ids=[bid])
    with pytest.raises(PlanError, match="no building"):
        edit.move_buildings(plan, dst, ids=["nope"])
    with pytest.raises(PlanError, match="exactly one"):
        edit.move_buildings(plan, dst)
    with pytest.raises(PlanError, match="already in grid"):
        edit.move_buildings(plan, src, ids=[bid])


def test_move_by_polygon_in_wgs84_from_geojson(town, tmp_path):
    plan, comms = town
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    b = plan.buildings
    pick = b[b["grid_code"] == src].iloc[:2]
    area = shapely.buffer(shapely.union_all(pick.geometry.values), 2.0).envelope
    wgs = gpd.GeoSeries([area], crs=plan.crs).to_crs(4326).iloc[0]
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": wgs.__geo_interface__}],
    }
    path = tmp_path / "selection.geojson"
    path.write_text(json.dumps(fc), encoding="utf-8")
    for source in (wgs, fc, json.dumps(fc), str(path), path):
        poly = edit.polygon_from_geojson(source)
        assert poly.geom_type in ("Polygon", "MultiPolygon")
        assert abs(poly.area - wgs.area) < 1e-12
    new, _ = edit.move_buildings(plan, dst, polygon=json.dumps(fc))
    inside = shapely.covers(area, shapely.point_on_surface(b.geometry.values))
    moved = set(b.loc[inside, "building_id"])
    assert moved >= set(pick["building_id"])
    assert (new.buildings.loc[new.buildings["building_id"].isin(moved), "grid_code"] == dst).all()
    assert "polygon_wkt" in new.history[-1]["params"]
    _assert_tiles(new, comms)
    _assert_counts(new)
    # metric polygons work with polygon_crs
    new2, _ = edit.move_buildings(plan, dst, polygon=area, polygon_crs=plan.crs)
    assert (new2.buildings["grid_code"] == new.buildings["grid_code"]).all()
    with pytest.raises(InputError, match="no polygon"):
        edit.polygon_from_geojson({"type": "Point", "coordinates": [0, 0]})
    with pytest.raises(InputError, match="not found"):
        edit.polygon_from_geojson(tmp_path / "missing.geojson")
    with pytest.raises(PlanError, match="inside the polygon"):
        edit.move_buildings(plan, dst, polygon=shapely.box(0, 0, 1e-6, 1e-6))


def test_move_units_of_a_split_building(tower):
    plan = tower
    s = plan.splits
    bid = s["building_id"].iloc[0]
    p1 = s.sort_values("part").iloc[0]
    p2 = s.sort_values("part").iloc[1]
    # move part 1 to a third grid next to the tower
    third = [c for c in _neighbours(plan, p1["grid_code"]) if c not in set(s["grid_code"])][0]
    new, _ = edit.move_buildings(plan, third, units=(bid, [int(p1["part"])]))
    ns = new.splits.sort_values("part")
    assert ns.loc[ns["part"] == p1["part"], "grid_code"].iloc[0] == third
    assert ns.loc[ns["part"] == p2["part"], "grid_code"].iloc[0] == p2["grid_code"]
    assert ns["households"].sum() == s["households"].sum()
    _assert_tiles(new)
    _assert_counts(new)
    # moving the other part to the grid of the first makes the building whole again
    whole, _ = edit.move_buildings(plan, p2["grid_code"], units=(bid, [int(p1["part"])]))
    assert bid not in set(whole.splits["building_id"])
    assert (
        whole.buildings.loc[whole.buildings["building_id"] == bid, "grid_code"].iloc[0]
        == (p2["grid_code"])
    )
    _assert_counts(whole)
    with pytest.raises(PlanError, match="no part 9"):
        edit.move_buildings(plan, third, units=(bid, [9]))
    with pytest.raises(PlanError, match="not split"):
        edit.move_buildings(plan, third, units=("B00005", [1]))


def test_out_of_range_edit_is_allowed_but_reported(town, caplog):
    plan, _ = town
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    ids = plan.buildings.loc[plan.buildings["grid_code"] == src, "building_id"].tolist()
    ids = ids[: max(1, len(ids) // 2)]
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        new, report = edit.move_buildings(plan, dst, ids=ids)
    g = new.grids.set_index("grid_code")
    assert g.at[dst, "households"] > 500 or g.at[src, "households"] < 300
    bad = report[(report["check"] == "out_of_range") & (report["severity"] == "error")]
    assert set(bad["grid_code"]) & {src, dst}
    assert any("out_of_range" in g.at[c, "flags"] for c in (src, dst))
    assert "breaks" in caplog.text and "out_of_range" in caplog.text
    res = edit.move_buildings(plan, dst, ids=ids)
    assert len(res.problems) and set(res.problems["grid_code"]) <= {src, dst}
    assert "out_of_range" in set(new.validate()["check"])


def test_moving_every_building_removes_the_grid(town):
    plan, comms = town
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    ids = plan.buildings.loc[plan.buildings["grid_code"] == src, "building_id"].tolist()
    new, _ = edit.move_buildings(plan, dst, ids=ids)
    assert src not in set(new.grids["grid_code"])
    assert new.history[-1]["removed"] == [src]
    _assert_tiles(new, comms)
    _assert_counts(new)


def test_move_across_communities_is_reported(town):
    plan, comms = town
    g = plan.grids
    # a grid of community 001 touching community 002 at x = 1000
    east = g[(g["community_code"] == "001") & (g.geometry.bounds["maxx"] > 999)].iloc[0]
    west = g[
        (g["community_code"] == "002")
        & (shapely.length(shapely.intersection(g.geometry.values, east.geometry.boundary)) > 10)
    ].iloc[0]
    bid = _edge_building(plan, west["grid_code"], east["grid_code"])
    new, report = edit.move_buildings(plan, east["grid_code"], ids=[bid])
    flags = new.grids.set_index("grid_code").at[east["grid_code"], "flags"]
    assert "crosses_community" in flags
    assert report["check"].isin(["crosses_community", "outside_community"]).any()
    assert abs(new.grids.area.sum() - plan.grids.area.sum()) < 1.0


# ---------------------------------------------------------------- merge / split
def test_merge_keeps_a_and_retires_b(town):
    plan, comms = town
    a = plan.grids["grid_code"].iloc[0]
    b = _neighbours(plan, a)[0]
    g = plan.grids.set_index("grid_code")
    new, report = edit.merge_grids(plan, a, b, reason="one worker for both")
    ng = new.grids.set_index("grid_code")
    assert b not in ng.index and a in ng.index
    assert ng.at[a, "households"] == g.at[a, "households"] + g.at[b, "households"]
    assert ng.at[a, "geometry"].geom_type == "Polygon"
    assert abs(ng.at[a, "geometry"].area - g.at[a, "geometry"].area - g.at[b, "geometry"].area) < 1
    _assert_tiles(new, comms)
    _assert_counts(new)
    assert new.history[-1]["removed"] == [b] and new.history[-1]["changed"] == [a]
    if ng.at[a, "households"] > 500:
        assert "out_of_range" in ng.at[a, "flags"]
    # non-adjacent grids: allowed, reported as discontiguous
    far = plan.grids[plan.grids["community_code"] == "001"]["grid_code"].iloc[-1]
    assert far not in _neighbours(plan, a)
    new2, report2 = edit.merge_grids(plan, a, far)
    assert "discontiguous" in new2.grids.set_index("grid_code").at[a, "flags"]
    assert (report2["check"] == "discontiguous").any()
    with pytest.raises(PlanError, match="itself"):
        edit.merge_grids(plan, a, a)


def test_split_of_a_merged_grid_gives_both_codes_back(town):
    plan, comms = town
    a = plan.grids["grid_code"].iloc[0]
    b = _neighbours(plan, a)[0]
    merged, _ = edit.merge_grids(plan, a, b)
    assert merged.history[-1]["retired"][b]  # the buildings b held are remembered
    poly = merged.grids.set_index("grid_code").at[a, "geometry"]
    total = merged.grids.set_index("grid_code").at[a, "households"]
    new, report = edit.split_grid(merged, a)
    h = new.history[-1]
    assert h["op"] == "split_grid" and h["removed"] == []
    assert h["changed"] == [a] and h["added"] == [b]
    parts = new.grids[new.grids["grid_code"].isin([a, b])]
    assert len(parts) == 2
    assert parts["households"].sum() == total
    assert parts["households"].between(300, 500).all()
    assert (parts.geom_type == "Polygon").all()
    assert shapely.union_all(parts.geometry.values).symmetric_difference(poly).area < 1.0
    # the edit and its reverse end with the codes they started with
    assert set(new.grids["grid_code"]) == set(plan.grids["grid_code"])
    for code in (a, b):  # each code holds most of the buildings it held before
        was = set(plan.buildings.loc[plan.buildings["grid_code"] == code, "building_id"])
        now = set(new.buildings.loc[new.buildings["grid_code"] == code, "building_id"])
        assert len(was & now) > len(was) / 2
    _assert_tiles(new, comms)
    _assert_counts(new)
    assert not (report["severity"] == "error").any(), report
    # a split without a retired code to give back: the larger part keeps the code, the
    # other takes the next free number (retired numbers are not reused)
    c = plan.grids["grid_code"].iloc[3]
    split, _ = edit.split_grid(merged, c, n=2)
    h = split.history[-1]
    top = max(int(x[-3:]) for x in plan.grids["grid_code"] if x[:12] == c[:12])
    assert h["changed"] == [c] and h["removed"] == []
    assert [int(x[-3:]) for x in h["added"]] == [top + 1]
    was = set(plan.buildings.loc[plan.buildings["grid_code"] == c, "building_id"])
    keep = set(split.buildings.loc[split.buildings["grid_code"] == c, "building_id"])
    other = set(split.buildings.loc[split.buildings["grid_code"] == h["added"][0], "building_id"])
    assert keep | other == was and len(keep) >= len(other)


def test_split_with_n_and_refusals(town):
    plan, comms = town
    code = plan.grids["grid_code"].iloc[3]
    with pytest.raises(PlanError, match="pass n=2"):
        edit.split_grid(plan, code)
    new, report = edit.split_grid(plan, code, n=2)
    added = [code, *new.history[-1]["added"]]  # the larger part keeps the code
    parts = new.grids[new.grids["grid_code"].isin(added)]
    assert len(parts) == 2
    assert (parts["range_min"] == 300).all() and (parts["range_max"] == 500).all()
    assert (parts.geom_type == "Polygon").all()
    # below the floor: allowed, reported
    assert report[report["grid_code"].isin(added)]["check"].eq("out_of_range").any()
    _assert_tiles(new, comms)
    _assert_counts(new)
    with pytest.raises(PlanError, match="at least 2"):
        edit.split_grid(plan, code, n=1)


def test_split_grid_with_part_of_a_split_building(tower):
    plan = tower
    part = plan.splits.sort_values("households").iloc[-1]
    code = part["grid_code"]
    new, _ = edit.split_grid(plan, code, n=2)
    assert new.splits.groupby("building_id")["households"].sum().iloc[0] == 594
    _assert_tiles(new)
    _assert_counts(new)
    assert not new.validate()["check"].isin(["split_building", "households_mismatch"]).any()


# ------------------------------------------------------------------ lock / replan
def test_lock_and_replan_around_locked_grids(town):
    plan, comms = town
    c1 = plan.grids[plan.grids["community_code"] == "001"]
    # make a mess first, then re-plan the rest of the community around two locked grids
    a = c1["grid_code"].iloc[0]
    messy, _ = edit.merge_grids(plan, a, _neighbours(plan, a)[0])
    keep = [c for c in c1["grid_code"].iloc[[5, 6]]]
    locked, _ = edit.lock_grids(messy, keep, reason="agreed with the community")
    assert set(locked.params["locked_grids"]) == set(keep)
    with pytest.raises(PlanError, match="locked"):
        edit.merge_grids(locked, keep[0], keep[1])
    with pytest.raises(PlanError, match="locked"):
        edit.split_grid(locked, keep[0], n=2)
    new, report = edit.replan(locked, "001", reason="tidy up")
    g0 = locked.grids.set_index("grid_code")
    g1 = new.grids.set_index("grid_code")
    for c in keep:  # locked grids keep code and polygon
        assert g1.at[c, "geometry"].equals_exact(g0.at[c, "geometry"], 0)
        assert g1.at[c, "households"] == g0.at[c, "households"]
    sub = new.grids[new.grids["community_code"] == "001"]
    assert sub["households"].between(300, 500).all()
    assert (sub.geom_type == "Polygon").all()
    # grids of the other community are untouched
    other = plan.grids[plan.grids["community_code"] == "002"].set_index("grid_code")
    assert g1.loc[other.index].geometry.geom_equals_exact(other.geometry, 0).all()
    _assert_tiles(new, comms)
    _assert_counts(new)
    assert not (report["severity"] == "error").any(), report
    h = new.history[-1]
    assert h["op"] == "replan" and set(h["params"]["kept"]) == set(keep)
    # unlocking
    free, _ = edit.unlock_grids(new)
    assert free.params["locked_grids"] == []
    with pytest.raises(PlanError, match="nothing to re-plan"):
        everything, _ = edit.lock_grids(plan, c1["grid_code"].tolist())
        edit.replan(everything, "001")
    with pytest.raises(PlanError, match="no community"):
        edit.replan(plan, "777")


def test_replan_codes_stable_for_same_buildings_and_fresh_otherwise(town):
    plan, comms = town
    new, _ = edit.replan(plan, "002")
    h = new.history[-1]
    old = plan.grids[plan.grids["community_code"] == "002"]
    sub = new.grids[new.grids["community_code"] == "002"]
    kept = set(old["grid_code"]) & set(sub["grid_code"])
    assert kept
    for code in kept:  # a kept code holds at least half the buildings it held before
        a = set(plan.buildings.loc[plan.buildings["grid_code"] == code, "building_id"])
        b = set(new.buildings.loc[new.buildings["grid_code"] == code, "building_id"])
        assert len(a & b) >= len(a) / 2
    top = old["grid_code"].str[-3:].astype(int).max()
    assert all(int(c[-3:]) > top for c in h["added"])
    assert set(h["removed"]) == set(old["grid_code"]) - kept
    assert sub["households"].between(300, 500).all()
    _assert_tiles(new, comms)
    _assert_counts(new)


# --------------------------------------------------------------- attributes, codes
def test_set_grid_difficult_kind_and_worker(town):
    plan, _ = town
    code = plan.grids["grid_code"].iloc[2]
    new, report = edit.set_grid(plan, code, difficult=True, worker="张三", name="老街网格")
    row = new.grids.set_index("grid_code").loc[code]
    assert bool(row["difficult"]) and (row["range_min"], row["range_max"]) == (200, 300)
    assert row["worker"] == "张三" and row["name"] == "老街网格"
    if row["households"] > 300:
        assert "out_of_range" in row["flags"]
        assert ((report["grid_code"] == code) & (report["check"] == "out_of_range")).any()
    assert new.history[-1]["params"]["worker"] == "张三"
    sp, _ = edit.set_grid(plan, code, kind="special")
    row = sp.grids.set_index("grid_code").loc[code]
    assert (row["range_min"], row["range_max"]) == (0, 0) and row["flags"] == ""
    with pytest.raises(PlanError, match="kind"):
        edit.set_grid(plan, code, kind="bogus")


def test_renumber_gives_reading_order(town):
    plan, comms = town
    a = plan.grids["grid_code"].iloc[0]
    merged, _ = edit.merge_grids(plan, a, _neighbours(plan, a)[0])
    new, _ = edit.renumber(merged)
    for _, sub in new.grids.groupby("community_code"):
        assert sub["grid_code"].str[-3:].tolist() == [f"{i + 1:03d}" for i in range(len(sub))]
    mapping = new.history[-1]["params"]["mapping"]
    assert mapping
    assert set(new.buildings["grid_code"]) <= set(new.grids["grid_code"])
    _assert_counts(new)
    # after renumbering, freed numbers are used again
    code = new.grids["grid_code"].iloc[3]
    split, _ = edit.split_grid(new, code, n=2)
    n1 = (
        new.grids["community_code"] == new.grids.set_index("grid_code").at[code, "community_code"]
    ).sum()
    assert max(int(c[-3:]) for c in split.history[-1]["added"]) == n1 + 1


# ------------------------------------------------------------------ undo / history
def test_undo_redo_round_trip_and_what_survives_a_save(town, tmp_path):
    plan, _ = town
    a = plan.grids["grid_code"].iloc[0]
    p1, _ = edit.merge_grids(plan, a, _neighbours(plan, a)[0], reason="r1")
    p2, _ = edit.set_grid(p1, a, worker="李四", reason="r2")
    back1 = edit.undo(p2)
    pd.testing.assert_frame_equal(
        back1.grids.drop(columns="geometry"), p1.grids.drop(columns="geometry")
    )
    back0 = edit.undo(back1)
    pd.testing.assert_frame_equal(
        back0.grids.drop(columns="geometry"), plan.grids.drop(columns="geometry")
    )
    assert back0.history == plan.history
    with pytest.raises(PlanError, match="nothing to undo"):
        edit.undo(back0)
    fwd = edit.redo(edit.redo(back0))
    pd.testing.assert_frame_equal(
        fwd.grids.drop(columns="geometry"), p2.grids.drop(columns="geometry")
    )
    assert [h["op"] for h in fwd.history] == ["merge_grids", "set_grid"]
    with pytest.raises(PlanError, match="nothing to redo"):
        edit.redo(fwd)
    # a new edit after undo clears the redo stack
    alt, _ = edit.set_grid(back1, a, worker="王五")
    with pytest.raises(PlanError, match="nothing to redo"):
        edit.redo(alt)
    # the edit functions are the API (Plan holds data only: no import circle)
    p3, _ = gridmap.set_grid(p2, a, name="x")
    assert gridmap.undo(p3).grids.equals(p2.grids)
    # history, locks and the undo log are saved with the plan
    locked, _ = edit.lock_grids(p2, [a])
    path = locked.to_file(tmp_path / "plan.gpkg")
    back = gridmap.read_plan(path)
    assert [h["op"] for h in back.history] == ["merge_grids", "set_grid", "lock_grids"]
    assert back.history[0]["reason"] == "r1"
    assert back.params["locked_grids"] == [a]
    table = edit.history_table(back)
    assert table["op"].tolist() == ["merge_grids", "set_grid", "lock_grids"]
    unlocked = edit.undo(back)
    assert unlocked.params["locked_grids"] == [] and len(unlocked.history) == 2
    again = edit.undo(edit.undo(unlocked))  # back to the plan before the merge
    pd.testing.assert_frame_equal(  # read_plan gives codes as object, not str, columns
        again.grids.drop(columns="geometry"), plan.grids.drop(columns="geometry"), check_dtype=False
    )
    assert again.grids.geometry.geom_equals_exact(plan.grids.geometry, 1e-6).all()
    assert (again.buildings["grid_code"] == plan.buildings["grid_code"]).all()
    with pytest.raises(PlanError, match="nothing to undo"):
        edit.undo(again)
    assert gridmap.diff(plan, again).empty
    redone = gridmap.read_plan(edit.redo(again).to_file(tmp_path / "redo.gpkg"))
    assert [h["op"] for h in redone.history] == ["merge_grids"]
    assert a in set(redone.grids["grid_code"]) and len(redone.grids) == len(plan.grids) - 1


def test_edit_plan_read_from_file(town, tmp_path):
    plan, comms = town
    back = gridmap.read_plan(plan.to_file(tmp_path / "p.gpkg"))
    src = back.grids["grid_code"].iloc[0]
    dst = _neighbours(back, src)[0]
    new, report = edit.move_buildings(back, dst, ids=[_edge_building(back, src, dst)])
    _assert_tiles(new, comms)
    _assert_counts(new)
    new2, _ = edit.split_grid(back, back.grids["grid_code"].iloc[2], n=2)
    _assert_tiles(new2, comms)
    _assert_counts(new2)


# ---------------------------------------------------------------------------- diff
def test_diff_figures_and_map(town):
    plan, _ = town
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    bid = _edge_building(plan, src, dst)
    hh = int(plan.buildings.loc[plan.buildings["building_id"] == bid, "households"].iloc[0])
    p1, _ = edit.move_buildings(plan, dst, ids=[bid])
    code = p1.grids["grid_code"].iloc[5]
    p2, _ = edit.split_grid(p1, code, n=2)
    d = gridmap.diff(plan, p2)
    assert len(d.removed) == 0  # the larger part keeps the code
    assert set(d.added["grid_code"]) == set(p2.history[-1]["added"])
    ch = d.changed.set_index("grid_code")
    assert set(ch.index) == {src, dst, code}
    assert ch.at[src, "households_delta"] == -hh and ch.at[dst, "households_delta"] == hh
    assert "geometry" in ch.at[src, "what"] and ch.at[src, "area_changed_m2"] > 0
    mv = d.moved.set_index("building_id")
    assert mv.at[bid, "from_grid"] == src and mv.at[bid, "to_grid"] == dst
    # buildings of the split grid moved to the new grids
    moved_split = d.moved[d.moved["from_grid"] == code]
    assert len(moved_split) and set(moved_split["to_grid"]) <= set(d.added["grid_code"])
    hht = d.households.set_index("grid_code")
    assert hht.at[src, "delta"] == -hh and hht.at[code, "status"] == "changed"
    assert hht["delta"].sum() == 0
    s = d.summary()
    assert s["added"] == 1 and s["removed"] == 0 and s["changed"] == 3
    assert "PlanDiff" in repr(d)
    html = d.map(tiles=None).get_root().render()
    assert "Plan diff" in html and "Moved buildings" in html
    assert gridmap.diff(plan, plan).empty


def test_selection_map_has_draw_export(town):
    plan, _ = town
    html = edit.selection_map(plan, tiles=None, filename="sel.geojson").get_root().render()
    assert "sel.geojson" in html and "Draw" in html


# ------------------------------------------------------------- reverse edits, checks
def test_an_edit_and_its_reverse_end_with_the_same_codes(town):
    """Notebook 01's worked example: move buildings, move them back; merge, split."""
    plan, comms = town
    src = plan.grids["grid_code"].iloc[6]
    dst = _neighbours(plan, src)[0]
    b = plan.buildings
    near = b[b["grid_code"] == src].assign(
        d=b.geometry.distance(plan.grids.set_index("grid_code").at[dst, "geometry"])
    )
    ids = near.nsmallest(3, "d")["building_id"].tolist()
    there, _ = edit.move_buildings(plan, dst, ids=ids, reason="entrance on the other lane")
    back, _ = edit.move_buildings(there, src, ids=ids, reason="moved back")
    assert list(back.grids["grid_code"]) == list(plan.grids["grid_code"])
    s = gridmap.diff(plan, back).summary()
    assert (s["added"], s["removed"], s["moved_buildings"], s["moved_households"]) == (0, 0, 0, 0)
    pd.testing.assert_series_equal(back.grids["households"], plan.grids["households"])
    # merge then split: both codes come back, with most of their buildings
    merged, _ = edit.merge_grids(back, src, dst)
    split, _ = edit.split_grid(merged, src)
    assert set(split.grids["grid_code"]) == set(plan.grids["grid_code"])
    s = gridmap.diff(plan, split).summary()
    assert s["added"] == 0 and s["removed"] == 0
    assert s["moved_buildings"] < len(b[b["grid_code"].isin([src, dst])]) / 2
    _assert_tiles(split, comms)
    _assert_counts(split)


def test_check_grids_and_the_changed_table(town):
    plan, _ = town
    src = plan.grids["grid_code"].iloc[0]
    dst = _neighbours(plan, src)[0]
    b = plan.buildings
    ids = b.loc[(b["grid_code"] == src) & (b["households"] > 0), "building_id"].tolist()
    res = edit.move_buildings(plan, dst, ids=ids[: max(1, len(ids) // 2)])
    ch = res.changed.set_index("code")
    assert list(res.changed.columns[:7]) == [
        "code", "kind", "households", "buildings", "min", "max", "in_range",
    ]  # fmt: skip
    assert set(ch.index) == {src, dst}
    g = res.plan.grids.set_index("grid_code")
    for code in (src, dst):
        hh = int(g.at[code, "households"])
        assert ch.at[code, "households"] == hh
        assert ch.at[code, "in_range"] == (300 <= hh <= 500)
        assert ("range" in ch.at[code, "violations"]) == (not 300 <= hh <= 500)
        assert len(ch.at[code, "violations"]) == len(ch.at[code, "details"])
    # checks agree with the independent validator on these grids
    rep = res.plan.validate()
    bad = set(rep.loc[rep["check"] == "out_of_range", "grid_code"]) & {src, dst}
    assert bad == {c for c in (src, dst) if not ch.at[c, "in_range"]}
    # contiguity, community and crossings
    far = plan.grids[plan.grids["community_code"] == "001"]["grid_code"].iloc[-1]
    merged = edit.merge_grids(plan, src, far)
    assert "contiguity" in merged.changed.set_index("code").at[src, "violations"]
    east = plan.grids[plan.grids["community_code"] == "002"]
    west = plan.grids[plan.grids["community_code"] == "001"]
    pair = [
        (w, e) for w in west["grid_code"] for e in _touching(plan, w) if e in set(east["grid_code"])
    ][0]
    bid = _edge_building(plan, pair[1], pair[0])
    across = edit.move_buildings(plan, pair[0], ids=[bid])
    assert "community" in across.changed.set_index("code").at[pair[0], "violations"]
    road = plan.grids[plan.grids.geometry.bounds["maxy"] <= 500]["grid_code"]
    north = plan.grids[plan.grids.geometry.bounds["miny"] >= 500]
    cross = [
        (s_, n_)
        for s_ in road
        for n_ in _touching(plan, s_)
        if n_ in set(north["grid_code"]) and n_[:12] == s_[:12]
    ][0]
    over = edit.move_buildings(plan, cross[0], ids=[_edge_building(plan, cross[1], cross[0])])
    viol = over.changed.set_index("code").at[cross[0], "violations"]
    assert "crossing" in viol
    assert gridmap.check_grids(over.plan, [cross[0]]).iloc[0]["violations"] == viol
    assert edit.check_grids(plan, ["nope"]).empty


def _touching(plan, code):
    g = plan.grids
    geom = g.loc[g["grid_code"] == code].geometry.iloc[0]
    shared = shapely.length(shapely.intersection(g.geometry.values, geom.boundary))
    return g.loc[(shared > 10) & (g["grid_code"] != code).to_numpy(), "grid_code"].tolist()


def test_notebook_worked_example_ends_where_it_began():
    """Notebook 01 on the sample town: move a building and four small ones from B to A,
    merge B into A, split A again: the plan ends with the codes it began with."""
    from gridmap.pipeline import plan_sample

    plan0 = plan_sample()
    g = plan0.grids
    res = g[g["kind"] != "special"]
    out = res[(res["households"] < res["range_min"]) | (res["households"] > res["range_max"])]
    a = (out if len(out) else res)["grid_code"].iloc[0]
    nb = edit.neighbours(plan0, a)
    b = nb.loc[nb["kind"] != "special", "grid_code"].iloc[0]
    geom_a = g.set_index("grid_code").at[a, "geometry"]

    def nearest(plan, n, households):
        bl = plan.buildings
        bl = bl[(bl["grid_code"] == b) & bl["households"].between(*households)]
        return bl.assign(d=bl.geometry.distance(geom_a)).nsmallest(n, "d")["building_id"].tolist()

    plan, _ = edit.move_buildings(plan0, a, ids=nearest(plan0, 1, (1, 10_000)))
    plan, _ = edit.move_buildings(plan, a, ids=nearest(plan, 4, (0, 60)))
    plan, _ = edit.merge_grids(plan, a, b)
    plan, _ = edit.split_grid(plan, a)
    assert set(plan.grids["grid_code"]) == set(plan0.grids["grid_code"])
    s = gridmap.diff(plan0, plan).summary()
    assert s["added"] == 0 and s["removed"] == 0
    # the split re-partitions A and B under the planner's rules: back to where they were
    assert s["moved_buildings"] == 0, gridmap.diff(plan0, plan).moved
    _assert_counts(plan)
