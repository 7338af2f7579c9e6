"""Tests of the grid partition engine against the rules in issue 3 / DOMAIN.md."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridmap
from gridmap.errors import PlanError, SchemaError

CRS = 32652


def _buildings(xy, hh, *, use=None, units=None, levels=None, extra=None, size=(24, 16)):
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    hh = np.asarray(hh, dtype=np.int64)
    w, h = size
    geom = shapely.box(xy[:, 0] - w / 2, xy[:, 1] - h / 2, xy[:, 0] + w / 2, xy[:, 1] + h / 2)
    if use is None:
        use = np.where(hh == 0, "garage", np.where(hh == 1, "house", "apartments"))
    data = {
        "building_id": [f"B{i:05d}" for i in range(n)],
        "use": use,
        "levels": levels if levels is not None else np.where(hh > 1, 6.0, 1.0),
        "units": units if units is not None else np.where(hh > 1, 3, 1),
        "households": hh,
        "households_source": "given",
    }
    if extra:
        data.update(extra)
    return gpd.GeoDataFrame(data, geometry=geom, crs=CRS)


def _lattice(x0, x1, y0, y1, dx=60, dy=45):
    xs, ys = np.meshgrid(np.arange(x0 + dx / 2, x1, dx), np.arange(y0 + dy / 2, y1, dy))
    return np.column_stack([xs.ravel(), ys.ravel()])


def _comms(boxes, codes=None, street="001"):
    codes = codes or [f"{i + 1:03d}" for i in range(len(boxes))]
    return gpd.GeoDataFrame(
        {"community_code": codes, "street_code": street, "name": [f"C{c}" for c in codes]},
        geometry=[shapely.box(*b) for b in boxes],
        crs=CRS,
    )


def _errors(plan):
    rep = plan.validate()
    return rep[rep["severity"] == "error"]


def _town(seed=0):
    rng = np.random.default_rng(seed)
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
    return b, comms, road


@pytest.fixture(scope="module")
def town_plan():
    b, comms, road = _town()
    return gridmap.plan_grids(b, comms, barriers=road, admin_code="230717"), (b, comms, road)


# ------------------------------------------------------------------ core rules
def test_ranges_contiguity_coverage_and_no_errors(town_plan):
    plan, (b, comms, road) = town_plan
    g = plan.grids
    assert len(g) > 10
    res = g[g["kind"] != "special"]
    assert res["households"].between(300, 500).all(), res["households"].describe()
    assert (g.geom_type == "Polygon").all()
    assert shapely.is_valid(g.geometry.values).all()
    # exact tiling of each community: union = community, areas sum = community area
    for _, c in comms.iterrows():
        sub = g[g["community_code"] == c["community_code"]]
        assert abs(sub.area.sum() - c.geometry.area) < 1.0
        assert shapely.union_all(sub.geometry.values).symmetric_difference(c.geometry).area < 1.0
    assert _errors(plan).empty, _errors(plan)
    # households recomputed from buildings
    per_grid = plan.buildings.groupby("grid_code")["households"].sum()
    assert (
        per_grid.reindex(g["grid_code"]).fillna(0).to_numpy() == g["households"].to_numpy()
    ).all()
    assert plan.buildings["grid_code"].notna().all()
    assert 0 < g["polsby_popper"].mean() <= 1


def test_grids_do_not_cross_the_road_when_avoidable(town_plan):
    plan, (b, comms, road) = town_plan
    assert len(plan.crossings) == 0
    inner = shapely.buffer(plan.grids.geometry.values, -0.5)
    assert not shapely.intersects(inner, road.geometry.iloc[0]).any()


def test_codes_are_15_digits_in_reading_order(town_plan):
    plan, _ = town_plan
    g = plan.grids
    assert g["grid_code"].str.fullmatch(r"230717001\d{3}\d{3}").all()
    assert g["grid_code"].is_unique
    for _, sub in g.groupby("community_code"):
        sub = sub.sort_values("grid_code")
        assert sub["grid_code"].str[-3:].tolist() == [f"{i + 1:03d}" for i in range(len(sub))]
        p = shapely.point_on_surface(sub.geometry.values)
        y = shapely.get_y(p)
        # north to south: the first grid is in the top row, the last in the bottom row
        assert y[0] >= np.median(y) >= y[-1]


def test_deterministic():
    b, comms, road = _town(seed=3)
    p1 = gridmap.plan_grids(b, comms, barriers=road, admin_code="230717", seed=7)
    p2 = gridmap.plan_grids(b, comms, barriers=road, admin_code="230717", seed=7)
    pd.testing.assert_series_equal(p1.buildings["grid_code"], p2.buildings["grid_code"])
    assert p1.grids.geometry.geom_equals_exact(p2.grids.geometry, 1e-9).all()


def test_barrier_crossed_only_when_needed_and_reported():
    # North of the road: 150 households (too few for a grid); south: 900.
    top = _lattice(0, 1000, 520, 600, dx=100, dy=60)
    bottom = _lattice(0, 1000, 0, 480)
    xy = np.vstack([top, bottom])
    hh = np.r_[np.full(len(top), 150 // len(top)), np.full(len(bottom), 0)]
    hh[len(top) : len(top) + 30] = 30
    b = _buildings(xy, hh)
    comms = _comms([(0, 0, 1000, 620)])
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(-5, 500), (1005, 500)])], crs=CRS)
    plan = gridmap.plan_grids(b, comms, barriers=road, admin_code="230717")
    assert plan.grids["households"].between(300, 500).all()
    assert len(plan.crossings) >= 1
    assert plan.crossings["reason"].str.len().gt(10).all()
    assert plan.grids["flags"].str.contains("crosses_barrier").any()


def test_compound_kept_whole_when_it_fits():
    xy = _lattice(0, 800, 0, 600)
    hh = np.full(len(xy), 20)
    b = _buildings(xy, hh)
    compound = gpd.GeoDataFrame(
        {"compound_id": ["K1"]}, geometry=[shapely.box(200, 200, 440, 380)], crs=CRS
    )
    inside = shapely.within(shapely.point_on_surface(b.geometry.values), compound.geometry.iloc[0])
    assert 300 <= hh[inside].sum() <= 500
    plan = gridmap.plan_grids(
        b, _comms([(0, 0, 800, 600)]), compounds=compound, admin_code="230717"
    )
    codes = plan.buildings.loc[inside, "grid_code"].unique()
    assert len(codes) == 1
    assert not (plan.validate()["check"] == "split_compound").any()


def test_big_building_split_by_units_with_unit_table():
    xy = _lattice(0, 600, 0, 400)
    hh = np.full(len(xy), 30)
    units = np.full(len(xy), 3)
    levels = np.full(len(xy), 6.0)
    hh[0], units[0], levels[0] = 594, 3, 33.0  # a 33-storey tower, 3 units x 6 per floor
    b = _buildings(xy, hh, units=units, levels=levels)
    plan = gridmap.plan_grids(b, _comms([(0, 0, 600, 400)]), admin_code="230717")
    sp = plan.splits
    assert set(sp["building_id"]) == {"B00000"}
    assert sp["households"].sum() == 594
    assert len(sp) >= 2 and (sp["households"] <= 500).all()
    # units are contiguous and cover 1..3 without overlap
    covered = np.concatenate(
        [np.arange(a, c + 1) for a, c in zip(sp["unit_from"], sp["unit_to"], strict=True)]
    )
    assert sorted(covered.tolist()) == [1, 2, 3]
    assert sp["grid_code"].notna().all()
    assert plan.grids["households"].sum() == hh.sum()
    assert plan.grids["households"].between(300, 500).all()


def test_single_unit_tower_split_by_floors():
    xy = _lattice(0, 600, 0, 400)
    hh = np.full(len(xy), 30)
    units = np.full(len(xy), 3)
    levels = np.full(len(xy), 6.0)
    hh[0], units[0], levels[0] = 640, 1, 32.0
    b = _buildings(xy, hh, units=units, levels=levels)
    plan = gridmap.plan_grids(b, _comms([(0, 0, 600, 400)]), admin_code="230717")
    sp = plan.splits
    assert sp["households"].sum() == 640
    floors = np.concatenate(
        [np.arange(a, c + 1) for a, c in zip(sp["floor_from"], sp["floor_to"], strict=True)]
    )
    assert sorted(floors.tolist()) == list(range(1, 33))


def test_infeasible_total_is_flagged_least_bad():
    # 520 households in a community: one grid too many, two too few.
    xy = _lattice(0, 400, 0, 260, dx=50, dy=50)[:26]
    hh = np.full(len(xy), 20)
    b = _buildings(xy, hh)
    plan = gridmap.plan_grids(b, _comms([(0, 0, 400, 260)]), admin_code="230717")
    assert len(plan.grids) == 1
    g = plan.grids.iloc[0]
    assert g["households"] == 520
    assert "infeasible_split" in g["flags"] and "out_of_range" in g["flags"]
    assert "520" in g["flag_reason"]


def test_difficult_area_uses_difficult_range_polygons_column_and_callable():
    xy = _lattice(0, 1200, 0, 600)
    hh = np.full(len(xy), 12)
    b = _buildings(xy, hh)
    area = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 600, 600)], crs=CRS)
    comms = _comms([(0, 0, 1200, 600)])
    for difficult in (
        area,
        "hard",
        lambda bb: bb.geometry.centroid.x.to_numpy() < 600,
    ):
        bb = b.assign(hard=b.geometry.centroid.x < 600)
        plan = gridmap.plan_grids(bb, comms, difficult=difficult, admin_code="230717")
        g = plan.grids
        d = g[g["difficult"]]
        assert len(d) > 0
        assert d["households"].between(200, 300).all()
        assert (d[["range_min", "range_max"]].to_numpy() == [200, 300]).all()
        assert g.loc[~g["difficult"], "households"].between(300, 500).all()


def test_special_grids_from_polygons_and_uses():
    xy = _lattice(0, 1000, 0, 600)
    hh = np.full(len(xy), 20)
    use = np.array(["apartments"] * len(xy), dtype=object)
    use[5] = "hospital"
    hh[5] = 0
    b = _buildings(xy, hh, use=use)
    school = gpd.GeoDataFrame(
        {"name": ["第一小学"], "use": ["school"]},
        geometry=[shapely.box(600, 300, 760, 420)],
        crs=CRS,
    )
    plan = gridmap.plan_grids(
        b, _comms([(0, 0, 1000, 600)]), institutions=school, admin_code="230717"
    )
    sp = plan.grids[plan.grids["kind"] == "special"]
    assert len(sp) == 2
    assert (sp["name"] == "第一小学").any()
    assert sp.iloc[0]["range_max"] == 0
    poly = sp[sp["name"] == "第一小学"].geometry.iloc[0]
    assert poly.symmetric_difference(school.geometry.iloc[0]).area < 1.0
    res = plan.grids[plan.grids["kind"] != "special"]
    assert res["households"].between(300, 500).all()
    assert plan.buildings.loc[5, "grid_code"] in set(sp["grid_code"])
    assert _errors(plan).empty, _errors(plan)


def test_rural_villages_join_or_stay_isolated():
    rng = np.random.default_rng(1)

    def village(cx, cy, n):
        return np.column_stack([cx + rng.uniform(-80, 80, n), cy + rng.uniform(-80, 80, n)])

    v1 = village(500, 500, 180)  # alone too small, joins v2 -> 180 + 200 = 380
    v2 = village(900, 500, 200)
    v3 = village(4500, 4500, 60)  # isolated far away: too small, no in-range join
    xy = np.vstack([v1, v2, v3])
    # keep houses apart
    b = _buildings(
        xy, np.ones(len(xy), dtype=int), use=np.full(len(xy), "rural_house"), size=(6, 6)
    )
    b["geometry"] = shapely.box(xy[:, 0] - 3, xy[:, 1] - 3, xy[:, 0] + 3, xy[:, 1] + 3)
    comms = _comms([(0, 0, 5000, 5000)])
    comms["kind"] = "village"
    plan = gridmap.plan_grids(b, comms, admin_code="230717", village_distance=150)
    g = plan.grids
    assert (g["kind"] == "rural").all()
    iso = g[g["flags"].str.contains("isolated_village")]
    assert len(iso) == 1 and iso["households"].iloc[0] == 60
    assert sorted(g["households"].tolist()) == [60, 380]
    assert (g.geom_type == "Polygon").all()
    assert abs(g.area.sum() - 25e6) < 1.0


def test_no_communities_derives_blocks_from_roads_and_notes_it():
    b, _, road = _town()
    plan = gridmap.plan_grids(b, None, barriers=road, admin_code="230717")
    assert any("derived" in n for n in plan.notes)
    assert plan.communities is not None and len(plan.communities) >= 2
    assert plan.grids["households"].between(300, 500).all()
    assert (plan.grids.geom_type == "Polygon").all()


def test_empty_block_and_gap_free_with_park():
    # A park (no buildings) cut off by a road still ends up in a grid.
    xy = _lattice(0, 1000, 0, 400)
    b = _buildings(xy, np.full(len(xy), 20))
    comms = _comms([(0, 0, 1000, 700)])
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(-5, 420), (1005, 420)])], crs=CRS)
    plan = gridmap.plan_grids(b, comms, barriers=road, admin_code="230717")
    assert abs(plan.grids.area.sum() - 700_000) < 1.0
    assert (plan.grids.geom_type == "Polygon").all()
    assert _errors(plan).empty, _errors(plan)


def test_geographic_input_is_planned_in_metric_crs():
    b, comms, road = _town()
    plan = gridmap.plan_grids(b.to_crs(4326), comms.to_crs(4326), barriers=road.to_crs(4326))
    assert plan.crs.is_projected
    assert plan.grids.crs == plan.crs
    assert plan.grids_wgs84().crs.to_epsg() == 4326


# ------------------------------------------------------------------------- I/O
def test_plan_roundtrip(tmp_path, town_plan):
    plan, _ = town_plan
    path = plan.to_file(tmp_path / "plan.gpkg")
    back = gridmap.read_plan(path)
    assert back.crs == plan.crs
    pd.testing.assert_frame_equal(
        back.grids.drop(columns="geometry").reset_index(drop=True),
        plan.grids.drop(columns="geometry").reset_index(drop=True),
        check_dtype=False,
    )
    assert back.grids.geometry.geom_equals_exact(plan.grids.geometry, 1e-6).all()
    assert back.params == plan.params and back.notes == plan.notes
    assert (back.buildings["grid_code"].to_numpy() == plan.buildings["grid_code"].to_numpy()).all()
    # overwriting is atomic: a failed write leaves the old file intact
    before = path.read_bytes()
    broken = gridmap.read_plan(path)
    broken.grids = "not a frame"
    with pytest.raises((AttributeError, TypeError)):
        broken.to_file(path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".plan.*"))


def test_read_plan_errors(tmp_path):
    with pytest.raises(gridmap.InputError, match="not found"):
        gridmap.read_plan(tmp_path / "missing.gpkg")
    other = tmp_path / "other.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=CRS).to_file(other, layer="x")
    with pytest.raises(gridmap.InputError, match="not a gridmap plan"):
        gridmap.read_plan(other)


# ---------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors():
    b, comms, _ = _town()
    with pytest.raises(PlanError, match="household_range"):
        gridmap.plan_grids(b, comms, household_range=(500, 300))
    with pytest.raises(PlanError, match="admin_code"):
        gridmap.plan_grids(b, comms, admin_code="12345")
    with pytest.raises(SchemaError, match="building_id"):
        gridmap.plan_grids(b.drop(columns="building_id"), comms)
    dup = b.copy()
    dup.loc[1, "building_id"] = dup.loc[0, "building_id"]
    with pytest.raises(SchemaError, match="duplicate"):
        gridmap.plan_grids(dup, comms)
    with pytest.raises(SchemaError, match="difficult"):
        gridmap.plan_grids(b, comms, difficult="no_such_column")
    # codes that are not 3 digits (e.g. '1000' from a file's own numbering) are
    # replaced by a documented numbering, never refused
    bad = comms.copy()
    bad["community_code"] = ["1", "1000"]
    plan = gridmap.plan_grids(b, bad, admin_code="230717")
    assert plan.grids["grid_code"].str.fullmatch(r"\d{15}").all()
    assert sorted(plan.communities["source_code"]) == ["1", "1000"]
    assert sorted(plan.communities["community_code"]) == ["001", "002"]
    assert any("numbered 001, 002" in n for n in plan.notes)
    with pytest.raises(gridmap.CRSError):
        gridmap.plan_grids(b.set_crs(None, allow_override=True), comms)
    with pytest.raises(PlanError, match="no buildings"):
        gridmap.plan_grids(b.iloc[:0], comms)
