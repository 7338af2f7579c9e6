"""Tests for gridmap.validate: every check fails on a hand-built broken plan and passes
on the clean one.

The clean plan: two communities side by side (001: x 0–200, 002: x 200–400, y 0–100 m),
each cut into two 100 × 100 m grids holding four 100-household buildings. One building
(B017, 4 units, 40 households) straddles grids 1 and 2 and is split by units: units 1–3
(30 households) in grid 1, unit 4 (10 households) in grid 2. Compound C1 holds grid 1's
four buildings. A road runs along the community boundary (x = 200).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

import gridmap
from gridmap.errors import CRSError, SchemaError
from gridmap.validate import CHECKS, COLUMNS, summary, validate_plan

CRS = "EPSG:32652"
G1, G2, G3, G4 = "230717001001001", "230717001001002", "230717001002001", "230717001002002"


def _plan() -> dict:
    communities = gpd.GeoDataFrame(
        {"community_code": ["001", "002"]},
        geometry=[box(0, 0, 200, 100), box(200, 0, 400, 100)],
        crs=CRS,
    )
    grids = gpd.GeoDataFrame(
        {
            "grid_code": [G1, G2, G3, G4],
            "community_code": ["001", "001", "002", "002"],
            "kind": ["community"] * 4,
            "households": [430, 410, 400, 400],
            "range_min": [300] * 4,
            "range_max": [500] * 4,
            "difficult": [False] * 4,
            "flags": [""] * 4,
        },
        geometry=[box(x, 0, x + 100, 100) for x in (0, 100, 200, 300)],
        crs=CRS,
    )
    ids, geoms, codes, compound = [], [], [], []
    for g, x0 in enumerate((0, 100, 200, 300)):
        for j in range(4):
            ids.append(f"B{g * 4 + j + 1:03d}")
            left = x0 + 10 + 22 * j
            geoms.append(box(left, 40, left + 15, 60))
            codes.append(grids.grid_code[g])
            compound.append("C1" if g == 0 else None)
    ids.append("B017")
    geoms.append(box(92, 5, 104, 15))
    codes.append(G1)
    compound.append(None)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ids,
            "households": [100] * 16 + [40],
            "units": [2] * 16 + [4],
            "grid_code": codes,
            "community_code": ["001"] * 8 + ["002"] * 8 + ["001"],
            "compound_id": compound,
        },
        geometry=geoms,
        crs=CRS,
    )
    splits = pd.DataFrame(
        {
            "building_id": ["B017", "B017"],
            "part": [1, 2],
            "unit_from": [1, 4],
            "unit_to": [3, 4],
            "households": [30, 10],
            "grid_code": [G1, G2],
        }
    )
    compounds = gpd.GeoDataFrame({"compound_id": ["C1"]}, geometry=[box(5, 30, 95, 70)], crs=CRS)
    barriers = gpd.GeoDataFrame(
        {"name": ["Linye Road"], "highway": ["primary"]},
        geometry=[LineString([(200, -50), (200, 150)])],
        crs=CRS,
    )
    return {
        "grids": grids,
        "buildings": buildings,
        "communities": communities,
        "barriers": barriers,
        "compounds": compounds,
        "splits": splits,
    }


def _run(plan: dict, **kwargs) -> pd.DataFrame:
    plan = {**plan, **kwargs}
    grids, buildings = plan.pop("grids"), plan.pop("buildings")
    return validate_plan(grids, buildings, **plan)


def _checks(report: pd.DataFrame) -> set[str]:
    return set(report["check"])


def _set_geom(gdf: gpd.GeoDataFrame, row: int, geom) -> gpd.GeoDataFrame:
    gdf = gdf.copy()
    geoms = list(gdf.geometry)
    geoms[row] = geom
    return gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))


# ----------------------------------------------------------------------------- clean plan


def test_clean_plan_has_empty_report():
    report = _run(_plan())
    assert list(report.columns) == COLUMNS
    assert report.empty, report.to_string()
    assert report.attrs["totals"]["overlap_m2"] == 0
    assert report.attrs["totals"]["gap_m2"] == pytest.approx(0, abs=1e-6)


def test_clean_plan_without_optional_layers():
    plan = _plan()
    report = validate_plan(plan["grids"], plan["buildings"], splits=plan["splits"])
    assert report.empty, report.to_string()


def test_public_export_and_summary():
    assert gridmap.validate_plan is validate_plan
    plan = _plan()
    plan["grids"].loc[0, "households"] = 999
    counts = summary(_run(plan))
    assert counts["households_mismatch"] == 1
    assert set(CHECKS) <= set(counts)
    assert sum(counts.values()) == 1
    assert summary(_run(_plan())) == dict.fromkeys(CHECKS, 0)


# ----------------------------------------------------------------------------- inputs


def test_geographic_crs_is_refused():
    plan = _plan()
    plan["grids"] = plan["grids"].to_crs(4326)
    with pytest.raises(CRSError, match="projected metric"):
        _run(plan)


def test_different_crs_is_refused():
    plan = _plan()
    plan["communities"] = plan["communities"].to_crs("EPSG:32651")
    with pytest.raises(CRSError, match="communities"):
        _run(plan)


def test_missing_crs_is_refused():
    plan = _plan()
    plan["buildings"] = plan["buildings"].set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="buildings"):
        _run(plan)


def test_missing_column_is_refused():
    plan = _plan()
    plan["grids"] = plan["grids"].drop(columns="range_max")
    with pytest.raises(SchemaError, match="range_max"):
        _run(plan)


# ----------------------------------------------------------------------------- geometry


def test_invalid_geometry():
    plan = _plan()
    # a square with an inward zero-width spike: invalid, repaired to the same square
    bad = Polygon([(0, 0), (100, 0), (100, 100), (50, 100), (50, 90), (50, 100), (0, 100)])
    assert not bad.is_valid
    plan["grids"] = _set_geom(plan["grids"], 0, bad)
    report = _run(plan)
    assert _checks(report) == {"invalid_geometry"}
    row = report.iloc[0]
    assert row.grid_code == G1 and row.severity == "error"
    assert "Self-intersection" in row.detail


def test_missing_grid_geometry_is_invalid():
    plan = _plan()
    plan["grids"] = _set_geom(plan["grids"], 3, None)
    report = _run(plan)
    assert "invalid_geometry" in _checks(report)
    assert "no geometry" in report.loc[report.check == "invalid_geometry", "detail"].iloc[0]


def _island_plan() -> dict:
    plan = _plan()
    island = box(120, 0, 130, 10)  # 100 m² of grid 1 inside grid 2's square
    plan["grids"] = _set_geom(plan["grids"], 0, MultiPolygon([box(0, 0, 100, 100), island]))
    plan["grids"] = _set_geom(plan["grids"], 1, box(100, 0, 200, 100).difference(island))
    return plan


def test_discontiguous():
    report = _run(_island_plan())
    assert _checks(report) == {"discontiguous"}
    assert report.iloc[0].grid_code == G1
    assert "2 separate parts" in report.iloc[0].detail


def test_discontiguous_passes_when_parts_are_below_tolerance():
    assert _run(_island_plan(), tolerance_m2=150).empty


def test_duplicate_grid_code():
    plan = _plan()
    plan["grids"].loc[1, "grid_code"] = G1
    report = _run(plan)
    dup = report[report.check == "duplicate_grid_code"]
    assert len(dup) == 2 and set(dup.grid_code) == {G1}


def test_overlap():
    plan = _plan()
    plan["grids"] = _set_geom(plan["grids"], 0, box(0, 0, 110, 100))
    report = _run(plan)
    assert _checks(report) == {"overlap"}
    row = report.iloc[0]
    assert row.grid_code == G1 and G2 in row.detail and "1,000.0 m²" in row.detail
    assert report.attrs["totals"]["overlap_m2"] == pytest.approx(1000)
    assert _run(plan, tolerance_m2=2000).empty


def test_gap_per_community():
    plan = _plan()
    plan["grids"] = _set_geom(plan["grids"], 0, box(10, 0, 100, 100))
    report = _run(plan)
    assert _checks(report) == {"gap"}
    row = report.iloc[0]
    assert pd.isna(row.grid_code)
    assert "community 001" in row.detail and "1,000.0 m²" in row.detail
    assert report.attrs["totals"]["gap_m2"] == pytest.approx(1000)
    assert _run(plan, tolerance_m2=2000).empty


def test_gap_as_holes_without_communities():
    plan = _plan()
    plan["grids"] = _set_geom(plan["grids"], 0, box(0, 0, 100, 100).difference(box(40, 80, 50, 90)))
    plan["communities"] = None
    report = _run(plan)
    assert _checks(report) == {"gap"}
    assert "100.0 m²" in report.iloc[0].detail
    # a notch on the outer edge is not a hole when no communities are given
    plan["grids"] = _set_geom(plan["grids"], 0, box(10, 0, 100, 100))
    assert _run(plan).empty


def test_outside_community():
    plan = _plan()
    plan["grids"] = _set_geom(plan["grids"], 3, box(300, 0, 410, 100))
    report = _run(plan)
    assert _checks(report) == {"outside_community"}
    assert report.iloc[0].grid_code == G4 and "1,000.0 m²" in report.iloc[0].detail
    assert _run(plan, tolerance_m2=1500).empty


def test_unknown_community_code():
    plan = _plan()
    plan["grids"].loc[3, "community_code"] = "009"
    report = _run(plan)
    assert "outside_community" in _checks(report)
    assert "009" in report.loc[report.check == "outside_community", "detail"].iloc[0]


def test_crosses_community():
    plan = _plan()
    plan["grids"] = _set_geom(plan["grids"], 1, box(100, 0, 210, 100))
    plan["grids"] = _set_geom(plan["grids"], 2, box(210, 0, 300, 100))
    report = _run(plan)
    # grid 2 now also crosses the road on the community boundary
    assert _checks(report) == {"outside_community", "crosses_community", "barrier_crossing"}
    row = report[report.check == "crosses_community"].iloc[0]
    assert row.grid_code == G2 and "community 002" in row.detail
    assert "Linye Road" in report[report.check == "barrier_crossing"].iloc[0].detail
    assert _run(plan, tolerance_m2=1500, barriers=None).empty


# ----------------------------------------------------------------------------- households


def test_households_mismatch():
    plan = _plan()
    plan["grids"].loc[0, "households"] = 999
    report = _run(plan)
    assert _checks(report) == {"households_mismatch"}
    assert "999" in report.iloc[0].detail and "430" in report.iloc[0].detail


def test_households_mismatch_counts_split_parts():
    plan = _plan()
    # counting B017 whole in grid 1 (470) would be wrong: the parts give 430 and 410
    plan["grids"].loc[0, "households"] = 470
    plan["grids"].loc[1, "households"] = 400
    report = _run(plan)
    assert set(report.grid_code) == {G1, G2} and _checks(report) == {"households_mismatch"}


def test_out_of_range_error_and_flag_explained_warning():
    plan = _plan()
    plan["grids"].loc[0, "range_min"] = 450
    report = _run(plan)
    assert _checks(report) == {"out_of_range"}
    assert report.iloc[0].severity == "error" and "below the range 450–500" in report.iloc[0].detail
    plan["grids"].loc[0, "flags"] = "out_of_range;below_floor"
    report = _run(plan)
    assert report.iloc[0].severity == "warning"
    # below_floor does not explain a grid above its range
    plan["grids"].loc[0, "range_min"] = 300
    plan["grids"].loc[0, "range_max"] = 420
    report = _run(plan)
    assert report.iloc[0].severity == "error" and "above" in report.iloc[0].detail
    plan["grids"].loc[0, "flags"] = "infeasible_split"
    assert _run(plan).iloc[0].severity == "warning"


def test_special_grid_is_not_ranged():
    plan = _plan()
    keep = plan["buildings"].grid_code != G4
    plan["buildings"] = plan["buildings"][keep]
    plan["grids"].loc[3, ["kind", "households", "range_min", "range_max"]] = ["special", 0, 0, 0]
    assert _run(plan).empty


def test_empty_grid():
    plan = _plan()
    plan["buildings"] = plan["buildings"][plan["buildings"].grid_code != G4]
    plan["grids"].loc[3, "households"] = 0
    report = _run(plan)
    assert _checks(report) == {"empty_grid", "out_of_range"}
    row = report[report.check == "empty_grid"].iloc[0]
    assert row.grid_code == G4 and row.severity == "warning"


# ----------------------------------------------------------------------------- buildings


def test_building_outside_grid():
    plan = _plan()
    plan["buildings"].loc[8, "grid_code"] = G4  # B009 lies in grid 3
    plan["grids"].loc[2, "households"] = 300
    plan["grids"].loc[3, "households"] = 500
    report = _run(plan)
    assert _checks(report) == {"building_outside_grid"}
    row = report.iloc[0]
    assert row.grid_code == G4 and "B009" in row.detail and f"lies in grid {G3}" in row.detail


def test_building_with_unknown_grid_code():
    plan = _plan()
    plan["buildings"].loc[0, "grid_code"] = "230717001001099"
    report = _run(plan)
    row = report[report.check == "building_outside_grid"].iloc[0]
    assert "not in the grids layer" in row.detail


def test_split_building_may_sit_in_any_part_grid():
    plan = _plan()
    # the split building's main grid is grid 2 although its point is in grid 1: allowed
    plan["buildings"].loc[16, "grid_code"] = G2
    assert _run(plan).empty


def test_unassigned_building():
    plan = _plan()
    plan["buildings"].loc[0, "grid_code"] = None
    plan["grids"].loc[0, "households"] = 330
    report = _run(plan)
    assert _checks(report) == {"unassigned_building"}
    assert "B001" in report.iloc[0].detail and "100 households" in report.iloc[0].detail
    # a building without households and without grid is no problem
    plan = _plan()
    extra = gpd.GeoDataFrame(
        {"building_id": ["S1"], "households": [0], "grid_code": [None]},
        geometry=[box(50, 80, 55, 85)],
        crs=CRS,
    )
    plan["buildings"] = pd.concat([plan["buildings"], extra], ignore_index=True)
    assert _run(plan).empty


# ----------------------------------------------------------------------------- barriers


def test_barrier_crossing_line():
    plan = _plan()
    road = gpd.GeoDataFrame(
        {"name": [None], "highway": ["secondary"]},
        geometry=[LineString([(50, -10), (50, 110)])],
        crs=CRS,
    )
    plan["barriers"] = pd.concat([plan["barriers"], road], ignore_index=True)
    report = _run(plan)
    assert _checks(report) == {"barrier_crossing"}
    row = report.iloc[0]
    assert row.grid_code == G1 and row.severity == "warning"
    assert "highway secondary" in row.detail and "99.0 m" in row.detail
    assert _run(plan, crossing_tolerance_m=150).empty


def test_barrier_along_boundary_does_not_cross():
    plan = _plan()
    # runs along grid 1's edge, 0.3 m inside: ignored by the 0.5 m inward buffer
    plan["barriers"] = gpd.GeoDataFrame(
        {"waterway": ["stream"]}, geometry=[LineString([(99.7, 0), (99.7, 100)])], crs=CRS
    )
    assert _run(plan).empty


def test_barrier_crossing_polygon():
    plan = _plan()
    plan["barriers"] = gpd.GeoDataFrame(
        {"name": ["Yichun River", "Pond"]},
        geometry=[box(-10, 70, 210, 75), box(250, 90, 260, 120)],
        crs=CRS,
    )
    report = _run(plan)
    # the river cuts grids 1 and 2 in two; the pond only bites into grid 3's edge
    assert _checks(report) == {"barrier_crossing"}
    assert set(report.grid_code) == {G1, G2}
    assert "Yichun River" in report.iloc[0].detail and "both sides" in report.iloc[0].detail


# ----------------------------------------------------------------------------- compounds


def _spread_compound_plan(households: int) -> dict:
    plan = _plan()
    b = plan["buildings"]
    # compound C2 over B003, B004 (grid 1) and B005, B006 (grid 2)
    b["compound_id"] = None
    b.loc[[2, 3, 4, 5], "compound_id"] = "C2"
    b.loc[[2, 3, 4, 5], "households"] = households
    g = plan["grids"]
    g["range_max"] = 100_000
    g.loc[0, "households"] = 230 + 2 * households
    g.loc[1, "households"] = 210 + 2 * households
    plan["compounds"] = None
    return plan


def test_split_compound_error_when_it_would_fit():
    report = _run(_spread_compound_plan(100))
    assert _checks(report) == {"split_compound"}
    row = report.iloc[0]
    assert row.severity == "error" and "C2 (400 households)" in row.detail


def test_split_compound_explained_by_flag_is_a_warning():
    plan = _spread_compound_plan(100)
    plan["grids"].loc[1, "flags"] = "split_compound"
    row = _run(plan).iloc[0]
    assert row.check == "split_compound" and row.severity == "warning"
    assert "flagged: split_compound" in row.detail


def test_split_compound_info_when_too_large():
    plan = _spread_compound_plan(100)
    plan["grids"]["range_max"] = 500
    plan["grids"].loc[[0, 1], "range_max"] = 300  # 400 > 300: splitting was needed
    report = _run(plan)
    row = report[report.check == "split_compound"].iloc[0]
    assert row.severity == "info"


def test_split_compound_found_from_compound_layer():
    plan = _spread_compound_plan(100)
    plan["buildings"] = plan["buildings"].drop(columns="compound_id")
    plan["compounds"] = gpd.GeoDataFrame(
        {"compound_id": ["C2"]}, geometry=[box(50, 30, 150, 70)], crs=CRS
    )
    report = _run(plan)
    assert _checks(report) == {"split_compound"} and "C2" in report.iloc[0].detail


def test_whole_compound_passes():
    plan = _plan()
    plan["buildings"] = plan["buildings"].drop(columns="compound_id")
    report = _run(plan)  # C1 from the layer, all in grid 1
    assert report.empty


# ----------------------------------------------------------------------------- splits


def test_split_building_households_do_not_add_up():
    plan = _plan()
    plan["buildings"].loc[16, "households"] = 45
    report = _run(plan)
    assert _checks(report) == {"split_building"}
    assert "hold 40 households but the building has 45" in report.iloc[0].detail


@pytest.mark.parametrize(
    ("unit_from", "unit_to", "words"),
    [
        ([1, 3], [3, 4], "overlaps part 1"),
        ([1, 4], [2, 4], "units 3–3 are in no part"),
        ([2, 4], [3, 4], "units 1–1 are in no part"),
        ([1, 4], [3, 3], "units 4–4 are in no part"),
        ([1, 4], [3, 5], "building has 4 units"),
        ([1, 4], [3, 2], "invalid unit range"),
    ],
)
def test_split_building_units(unit_from, unit_to, words):
    plan = _plan()
    plan["splits"] = plan["splits"].assign(unit_from=unit_from, unit_to=unit_to)
    report = _run(plan)
    assert "split_building" in _checks(report)
    assert words in report[report.check == "split_building"].iloc[0].detail


def test_split_of_unknown_building():
    plan = _plan()
    extra = pd.DataFrame(
        {
            "building_id": ["B999"],
            "part": [1],
            "unit_from": [1],
            "unit_to": [1],
            "households": [0],
            "grid_code": [G1],
        }
    )
    plan["splits"] = pd.concat([plan["splits"], extra], ignore_index=True)
    report = _run(plan)
    assert _checks(report) == {"split_building"}
    assert "not in the buildings layer" in report.iloc[0].detail


# ----------------------------------------------------------------------------- scale


def test_vectorised_on_a_lattice_plan():
    """A 40 × 40 lattice of grids with 20 buildings each: clean, then one defect."""
    n, size = 40, 100.0
    x, y = np.meshgrid(np.arange(n) * size, np.arange(n) * size)
    x, y = x.ravel(), y.ravel()
    grids = gpd.GeoDataFrame(
        {
            "grid_code": [f"G{i:05d}" for i in range(len(x))],
            "kind": "community",
            "households": 400,
            "range_min": 300,
            "range_max": 500,
        },
        geometry=shapely.box(x, y, x + size, y + size),
        crs=CRS,
    )
    k = np.arange(20)
    bx = (x[:, None] + 5 + (k % 5) * 19).ravel()
    by = (y[:, None] + 5 + (k // 5) * 24).ravel()
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:06d}" for i in range(len(bx))],
            "households": 20,
            "grid_code": np.repeat(grids.grid_code.to_numpy(), 20),
        },
        geometry=shapely.box(bx, by, bx + 12, by + 15),
        crs=CRS,
    )
    assert validate_plan(grids, buildings).empty
    grids.loc[5, "households"] = 1
    report = validate_plan(grids, buildings)
    assert summary(report)["households_mismatch"] == 1
