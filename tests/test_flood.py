"""Tests of gridmap.flood: four-colour flood grading of buildings, households and grids."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import CRS
from rasterio.transform import from_origin
from scipy import ndimage

import gridmap
from gridmap import _raster, flood
from gridmap.errors import CRSError, InputError, SchemaError

METRIC = "EPSG:32652"  # UTM 52N, the sample town's metric CRS
X0, Y0 = 500_000.0, 5_300_000.0  # top-left corner of the synthetic rasters (UTM 52N)
DATA = Path(__file__).resolve().parents[1] / "data"
RANK = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}


# --------------------------------------------------------------------------- helpers


def _write_raster(path, arr, transform, crs=METRIC, nodata=None, **extra):
    arr = np.asarray(arr, dtype="float32")
    profile = dict(
        driver="GTiff",
        width=arr.shape[1],
        height=arr.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=nodata,
        **extra,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    return path


def _buildings(geoms, crs=METRIC, **columns):
    n = len(geoms)
    data = {
        "building_id": [f"B{i:03d}" for i in range(n)],
        "levels": [1.0] * n,
        "households": [1] * n,
        "units": [1] * n,
    }
    data.update(columns)
    gdf = gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)
    gdf["households_per_unit"] = gdf["households"] / gdf["units"].clip(lower=1)
    return gdf


def _cell_box(transform, row, col, frac=0.4):
    """A small square around the centre of cell (row, col)."""
    x, y = transform @ (col + 0.5, row + 0.5)
    hx, hy = abs(transform.a) * frac / 2, abs(transform.e) * frac / 2
    return shapely.box(x - hx, y - hy, x + hx, y + hy)


# --------------------------------------------------------------------------- colours

DEPTHS = [0.0, 0.1, 0.2, 0.5, 1.5, 0.19, 0.49, 1.49, -1.0, -9999.0, 1.2, 4.0]
EXPECTED = [
    "none", "blue", "yellow", "orange", "red", "blue",
    "yellow", "orange", "none", "none", "orange", "red",
]  # fmt: skip


@pytest.mark.parametrize("raster_crs", [METRIC, "EPSG:4326"])
def test_thresholds_at_exact_boundaries(tmp_path, raster_crs):
    # one row of cells, one small building in each; the raster is metric or lon/lat,
    # the buildings always metric (they are reprojected into the raster CRS)
    depths = np.array([DEPTHS], dtype="float32")
    if raster_crs == METRIC:
        transform = from_origin(X0, Y0, 10, 10)
        geoms = [_cell_box(transform, 0, c) for c in range(len(DEPTHS))]
        b = _buildings(geoms)
    else:
        transform = from_origin(127.0, 47.7, 0.0002, 0.0002)
        geoms = [_cell_box(transform, 0, c) for c in range(len(DEPTHS))]
        b = _buildings(geoms, crs="EPSG:4326").to_crs(METRIC)
    path = _write_raster(tmp_path / "d.tif", depths, transform, crs=raster_crs, nodata=-9999)
    g = gridmap.grade_flood(b, depth=path)
    assert list(g.buildings["colour"]) == EXPECTED
    assert list(g.buildings["depth_m"])[:5] == [0.0, 0.1, 0.2, 0.5, 1.5]
    assert g.buildings.loc[g.buildings["colour"] == "none", "hazard_source"].isna().all()
    assert (
        g.buildings.loc[g.buildings["colour"] != "none", "hazard_source"] == "depth:d.tif"
    ).all()
    # the Chinese names follow the colours
    assert list(g.buildings["colour_zh"])[:5] == ["无", "蓝", "黄", "橙", "红"]


def test_thresholds_override(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", [[0.25, 0.7, 1.0, 3.0]], transform)
    b = _buildings([_cell_box(transform, 0, c) for c in range(4)])
    g = gridmap.grade_flood(
        b, depth=path, thresholds={"red": 3.0, "orange": 1.0, "yellow": 0.7, "blue": 0.3}
    )
    assert list(g.buildings["colour"]) == ["none", "yellow", "orange", "red"]
    assert g.thresholds["yellow"] == 0.7
    with pytest.raises(InputError):
        gridmap.grade_flood(b, depth=path, thresholds={"red": 0.1})
    with pytest.raises(InputError):
        gridmap.grade_flood(b, depth=path, thresholds={"purple": 1.0})


# --------------------------------------------------------------------------- floors


def test_floor_arithmetic_and_households_at_risk(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", [[4.0, 0.05, 20.0, 3.0, 0.0]], transform)
    geoms = [_cell_box(transform, 0, c) for c in range(5)]
    b = _buildings(
        geoms,
        levels=[6.0, 1.0, 3.0, 4.0, 6.0],
        households=[12, 3, 9, 10, 12],
        units=[1, 1, 1, 1, 1],
    )
    g = gridmap.grade_flood(b, depth=path, floor_height=3.0)
    out = g.buildings
    # 4 m of water with 3 m storeys floods the ground and first floors
    assert out["flooded_floors"].tolist() == [2, 1, 3, 1, 0]
    # 6 storeys, 12 households, 2 floors -> 4; a one-storey house with 5 cm -> all 3;
    # 20 m on 3 storeys -> capped, all 9; exactly 3 m -> 1 floor of 4 -> 2.5 -> 3 (half up)
    assert out["households_at_risk"].tolist() == [4, 3, 9, 3, 0]
    assert out["persons_at_risk"].iloc[0] == pytest.approx(4 * 2.62)
    move = g.households_to_move()  # no grid_code column: still listed
    assert move["households"].sum() == out["households_at_risk"].sum() == 19
    assert move["grid_code"].isna().all()
    g2 = gridmap.grade_flood(b, depth=path, floor_height=2.0, persons_per_household=3.0)
    assert g2.buildings["flooded_floors"].tolist() == [2, 1, 3, 2, 0]
    assert g2.buildings["persons_at_risk"].iloc[0] == pytest.approx(4 * 3.0)


def test_households_to_move_by_unit_and_floor(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", [[4.0, 0.3, 0.0]], transform)
    geoms = [_cell_box(transform, 0, c) for c in range(3)]
    b = _buildings(
        geoms,
        levels=[6.0, 5.0, 2.0],
        households=[24, 11, 4],
        units=[2, 3, 1],
        grid_code=["G1", "G1", "G2"],
    )
    g = gridmap.grade_flood(b, depth=path)
    move = g.households_to_move()
    assert set(move.columns) >= {
        "building_id", "grid_code", "unit", "floor", "households", "colour", "depth_m",
    }  # fmt: skip
    first = move[move["building_id"] == "B000"]
    # 2 units x 12 households on 6 floors: 2 per floor, floors 1-2 flooded
    assert first[["unit", "floor", "households"]].values.tolist() == [
        [1, 1, 2], [1, 2, 2], [2, 1, 2], [2, 2, 2],
    ]  # fmt: skip
    assert first["floor_depth_m"].tolist() == [4.0, 1.0, 4.0, 1.0]
    # 11 households in 3 units (4, 4, 3) on 5 floors; only the ground floor is flooded
    second = move[move["building_id"] == "B001"]
    assert second["floor"].eq(1).all()
    # round(4 / 5) + round(4 / 5) + round(3 / 5) = 1 + 1 + 1 (half up per unit)
    assert second["households"].tolist() == [1, 1, 1]
    assert second["households"].sum() == g.buildings["households_at_risk"].iloc[1]
    # listing and building totals agree
    per_b = move.groupby("building_id")["households"].sum()
    at_risk = g.buildings.set_index("building_id")["households_at_risk"]
    assert (per_b == at_risk[at_risk > 0]).all()
    assert "B002" not in set(move["building_id"])
    assert (move["colour"] != "none").all()


# --------------------------------------------------------------------------- zonal stats


def test_zonal_max_over_footprint_and_centroid_fallback(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    d = np.full((10, 10), 0.3, dtype="float32")
    d[1, 1] = 2.0  # a deep corner cell under the 3x3-cell building
    d[5, 5] = 5.0  # the cell next to building 2, whose centre lies outside it
    d[8, 8] = 0.6  # under the tiny building 3
    path = _write_raster(tmp_path / "d.tif", d, transform)
    x, y = X0, Y0
    big = shapely.box(x + 10, y - 40, x + 40, y - 10)  # cells rows 1-3, cols 1-3
    edge = shapely.box(x + 40, y - 50, x + 54, y - 40)  # covers cell (4,4) and 40 % of (4,5)
    tiny = shapely.box(x + 81, y - 83, x + 83, y - 81)  # in cell (8, 8), off its centre
    g = gridmap.grade_flood(_buildings([big, edge, tiny]), depth=path)
    out = g.buildings
    # the zonal max finds the deep corner, though the centroid cell holds 0.3
    assert out["depth_m"].iloc[0] == 2.0
    assert out["colour"].iloc[0] == "red"
    assert out["depth_mean_m"].iloc[0] == pytest.approx((8 * 0.3 + 2.0) / 9, abs=1e-3)
    # a cell whose centre lies outside the footprint does not count
    assert out["depth_m"].iloc[1] == pytest.approx(0.3)
    # a footprint smaller than a cell takes the cell under its centroid
    assert out["depth_m"].iloc[2] == pytest.approx(0.6)
    assert out["depth_mean_m"].iloc[2] == pytest.approx(0.6)
    assert out["colour"].tolist() == ["red", "yellow", "orange"]


def test_buildings_outside_the_raster_are_dry(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", np.full((5, 5), 2.0), transform)
    far = shapely.box(X0 + 1000, Y0 + 1000, X0 + 1010, Y0 + 1010)
    half = shapely.box(X0 - 15, Y0 - 15, X0 + 15, Y0 - 5)  # half over the raster
    g = gridmap.grade_flood(_buildings([far, half, shapely.Polygon()]), depth=path)
    assert g.buildings["colour"].tolist() == ["none", "red", "none"]


# --------------------------------------------------------------------------- sources


def test_worst_case_wins_and_source_is_recorded(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    a = _write_raster(tmp_path / "flood_2013.tif", [[0.3, 2.0, 0.0, 0.3, 0.0]], transform)
    b_ = _write_raster(tmp_path / "design_100y.tif", [[1.0, 0.0, 0.0, 0.1, 0.0]], transform)
    geoms = [_cell_box(transform, 0, c) for c in range(5)]
    hist = gpd.GeoDataFrame(
        {"name": ["2016", "1998"], "depth_m": [None, 0.6]},
        geometry=[geoms[2].buffer(2), geoms[3].buffer(2)],
        crs=METRIC,
    )
    hist.attrs["name"] = "hist"
    g = gridmap.grade_flood(_buildings(geoms), depth=[a, b_], extent=hist)
    out = g.buildings
    assert out["colour"].tolist() == ["orange", "red", "blue", "orange", "none"]
    assert out["hazard_source"].tolist()[:4] == [
        "depth:design_100y.tif",
        "depth:flood_2013.tif",
        "extent:hist",
        "extent:hist",
    ]
    assert out["hazard_source"].isna().tolist()[4]
    assert out["depth_m"].tolist()[:4] == [1.0, 2.0, 0.0, 0.6]
    assert [s["name"] for s in g.sources] == [
        "depth:flood_2013.tif",
        "depth:design_100y.tif",
        "extent:hist",
    ]


def test_extent_without_depth_is_blue(tmp_path):
    geoms = [shapely.box(X0 + 20 * i, Y0, X0 + 20 * i + 10, Y0 + 10) for i in range(3)]
    ext = gpd.GeoDataFrame(
        {"year": [2013]}, geometry=[shapely.box(X0 - 5, Y0 - 5, X0 + 35, Y0 + 15)], crs=METRIC
    )
    path = tmp_path / "flooded_2013.gpkg"
    ext.to_crs("EPSG:4326").to_file(path)  # a file in another CRS
    b = _buildings(geoms, levels=[4.0, 1.0, 2.0], households=[8, 2, 0])
    g = gridmap.grade_flood(b, extent=path)
    out = g.buildings
    assert out["colour"].tolist() == ["blue", "blue", "none"]
    assert out["hazard_source"].iloc[0] == "extent:flooded_2013"
    # depth unknown: the ground floor is taken as flooded
    assert out["flooded_floors"].tolist() == [1, 1, 0]
    assert out["households_at_risk"].tolist() == [2, 2, 0]


# --------------------------------------------------------------------------- grids


def _extent_with_depths(geoms, depths):
    return gpd.GeoDataFrame({"depth_m": depths}, geometry=list(geoms), crs=METRIC)


def test_grid_grade_with_share_rule():
    geoms = [shapely.box(X0 + 20 * i, Y0, X0 + 20 * i + 10, Y0 + 10) for i in range(9)]
    # grid A: 9 red + 2 orange of 100 households -> 11 % orange-or-worse -> orange
    # grid B: 10 red of 100 -> red (exactly 10 %)
    # grid C: 9 red of 100 -> none (below 10 %)
    # grid D: a non-residential yellow building and a dry one -> graded by buildings
    b = _buildings(
        geoms,
        grid_code=["A", "A", "A", "B", "B", "C", "C", "D", "D"],
        community_code=["001"] * 5 + ["002"] * 4,
        households=[9, 2, 89, 10, 90, 9, 91, 0, 0],
        levels=[1.0] * 9,
    )
    depth = [2.0, 1.0, 0.0, 2.0, 0.0, 2.0, 0.0, 0.3, 0.0]
    ext = _extent_with_depths([g.buffer(1) for g in geoms], depth)
    g = gridmap.grade_flood(b, extent=ext)
    grids = g.grids.set_index("grid_code")
    assert grids.loc[["A", "B", "C", "D"], "grade"].tolist() == ["orange", "red", "none", "yellow"]
    assert grids.loc["A", "households_red"] == 9
    assert grids.loc["A", "households_orange"] == 2
    assert grids.loc["A", "households"] == 100
    assert grids.loc["A", "buildings_red"] == 1
    assert grids.loc["A", "households_at_risk"] == 11
    assert grids.loc["A", "persons_at_risk"] == pytest.approx(11 * 2.62, abs=0.05)
    assert grids.loc["A", "grade_share"] == pytest.approx(0.11)
    assert grids.loc["D", "grade_share"] == pytest.approx(0.5)
    # a lower share turns grid C red, a higher one takes A down to none
    assert (
        gridmap.grade_flood(b, extent=ext, grid_share=0.05)
        .grids.set_index("grid_code")
        .loc["C", "grade"]
        == "red"
    )
    assert (
        gridmap.grade_flood(b, extent=ext, grid_share=0.5)
        .grids.set_index("grid_code")
        .loc["A", "grade"]
        == "none"
    )
    com = g.communities.set_index("community_code")
    assert com.loc["001", "households"] == 200
    # community 001: 19 red (9.5 %) + 2 orange households of 200 -> 10.5 % -> orange
    assert com.loc["001", "grade"] == "orange"
    assert com.loc["002", "households_red"] == 9


def test_plan_input_with_split_building(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", [[4.0, 0.0]], transform)
    # building B000 (4 units, 24 households, 6 storeys) is split between grids G1 and G2
    big = shapely.box(X0 + 1, Y0 - 9, X0 + 9, Y0 - 1)
    b = _buildings(
        [big, _cell_box(transform, 0, 1)],
        levels=[6.0, 2.0],
        households=[24, 4],
        units=[4, 1],
        grid_code=["G1", "G2"],
        community_code=["001", "001"],
    )
    grids = gpd.GeoDataFrame(
        {"grid_code": ["G1", "G2", "G3"], "community_code": ["001"] * 3,
         "community_name": ["东风社区"] * 3, "households": [18, 10, 0]},
        geometry=[shapely.box(X0, Y0 - 10, X0 + 10, Y0), shapely.box(X0 + 10, Y0 - 10, X0 + 20, Y0),
                  shapely.box(X0 + 20, Y0 - 10, X0 + 30, Y0)],
        crs=METRIC,
    )  # fmt: skip
    splits = pd.DataFrame(
        {
            "building_id": ["B000", "B000"],
            "part": [1, 2],
            "unit_from": [1, 4],
            "unit_to": [3, 4],
            "households": [18, 6],
            "grid_code": ["G1", "G2"],
        }
    )
    plan = gridmap.Plan(grids=grids, buildings=b, crs=CRS.from_user_input(METRIC), splits=splits)
    g = gridmap.grade_flood(plan, depth=path)
    assert g.buildings["households_at_risk"].iloc[0] == 8  # 2 of 6 floors of 24
    gr = g.grids.set_index("grid_code")
    assert isinstance(g.grids, gpd.GeoDataFrame)
    assert gr.loc["G1", "households_at_risk"] == 6  # units 1-3
    assert gr.loc["G2", "households_at_risk"] == 2  # unit 4
    assert gr.loc["G2", "households"] == 10
    assert gr.loc["G1", "buildings"] == 1 and gr.loc["G2", "buildings"] == 1
    assert gr.loc["G3", "grade"] == "none" and gr.loc["G3", "households"] == 0
    assert gr.loc["G1", "grade"] == "red"
    move = g.households_to_move()
    unit4 = move[(move["building_id"] == "B000") & (move["unit"] == 4)]
    assert set(unit4["grid_code"]) == {"G2"}
    assert set(move.loc[move["unit"] < 4, "grid_code"]) == {"G1"}
    assert g.communities["community_name"].iloc[0] == "东风社区"


def test_input_errors(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", [[1.0]], transform)
    b = _buildings([_cell_box(transform, 0, 0)])
    with pytest.raises(SchemaError, match="households"):
        gridmap.grade_flood(b.drop(columns="households"), depth=path)
    with pytest.raises(InputError, match="no hazard source"):
        gridmap.grade_flood(b)
    with pytest.raises(InputError, match="not found"):
        gridmap.grade_flood(b, depth=tmp_path / "missing.tif")
    nocrs = _write_raster(tmp_path / "nocrs.tif", [[1.0]], transform, crs=None)
    with pytest.raises(CRSError, match="nocrs.tif"):
        gridmap.grade_flood(b, depth=nocrs)
    with pytest.raises(InputError):
        gridmap.grade_flood(b, water_level=3.0)  # no dem
    with pytest.raises(InputError):
        gridmap.grade_flood("plan.gpkg", depth=path)


# --------------------------------------------------------------------------- DEM


def _valley_dem():
    """100 x 100 cells of 10 m: a N-S river valley (floor 10 m) through 30 m hills, and a
    closed basin in the east (floor 5 m, rim 30 m)."""
    rows, cols = np.mgrid[0:100, 0:100]
    dem = np.full((100, 100), 30.0, dtype="float32")
    valley = np.abs(cols - 30) <= 8
    dem[valley] = 10.0 + np.abs(cols[valley] - 30) * 0.5  # 10 m at the river, 14 m at sides
    basin = (np.abs(rows - 50) <= 10) & (np.abs(cols - 75) <= 10)
    dem[basin] = 5.0
    return dem


def _valley_buildings(transform):
    return _buildings(
        [
            _cell_box(transform, 50, 32, 0.8),  # valley, ground 11 m
            _cell_box(transform, 20, 36, 0.8),  # valley side, ground 13 m
            _cell_box(transform, 50, 75, 0.8),  # closed basin, ground 5 m
            _cell_box(transform, 50, 50, 0.8),  # hill, 30 m
        ],
        levels=[3.0, 3.0, 3.0, 3.0],
        households=[6, 6, 6, 6],
    )


@pytest.mark.parametrize("mode", ["number", "rivers_stage", "number_rivers", "surface_raster"])
def test_dem_connected_flooding_leaves_closed_basin_dry(tmp_path, mode):
    transform = from_origin(X0, Y0, 10, 10)
    dem = _valley_dem()
    dem_path = _write_raster(tmp_path / "dem.tif", dem, transform)
    # the basin lies below the water level: a bathtub fill would flood it
    assert dem[50, 75] < 12.5
    river = gpd.GeoDataFrame(
        {"name": ["river"], "stage": [12.5]},
        geometry=[shapely.LineString([(X0 + 305, Y0), (X0 + 305, Y0 - 1000)])],
        crs=METRIC,
    )
    kwargs = {
        "number": dict(water_level=12.5),
        "rivers_stage": dict(rivers=river),
        "number_rivers": dict(water_level=12.5, rivers=river.drop(columns="stage")),
        "surface_raster": dict(
            water_level=_write_raster(tmp_path / "wse.tif", np.full((50, 50), 12.5), from_origin(X0, Y0, 20, 20))
        ),
    }[mode]  # fmt: skip
    g = gridmap.grade_flood(_valley_buildings(transform), dem=dem_path, **kwargs)
    out = g.buildings
    assert out["colour"].tolist() == ["red", "none", "none", "none"]
    assert out["depth_m"].iloc[0] == pytest.approx(1.5)
    assert out["ground_m"].tolist() == pytest.approx([11.0, 13.0, 5.0, 30.0])
    assert out["hazard_source"].iloc[0].startswith("dem+")
    assert out["flooded_floors"].iloc[0] == 1
    src = g.sources[-1]
    assert src["kind"] == "dem" and src["bathtub_cells"] > src["flooded_cells"]


def test_dem_higher_level_floods_valley_side_and_downsampling(tmp_path, monkeypatch):
    transform = from_origin(X0, Y0, 10, 10)
    dem_path = _write_raster(tmp_path / "dem.tif", _valley_dem(), transform)
    b = _valley_buildings(transform)
    g = gridmap.grade_flood(b, dem=dem_path, water_level=13.6)
    assert g.buildings["colour"].tolist() == ["red", "orange", "none", "none"]
    # a DEM above the memory budget is analysed on aggregated blocks (factor 3)
    monkeypatch.setattr(flood, "DEM_MAX_CELLS", 1200)
    g3 = gridmap.grade_flood(b, dem=dem_path, water_level=13.6)
    assert g3.sources[-1]["downsample_factor"] == 3
    assert g3.buildings["colour"].tolist() == ["red", "orange", "none", "none"]
    assert g3.buildings["depth_m"].iloc[1] == pytest.approx(0.6)


def test_dem_sloping_river_stage(tmp_path):
    # a valley falling 10 m from north to south; the river stage falls with it
    transform = from_origin(X0, Y0, 10, 10)
    rows, cols = np.mgrid[0:100, 0:60]
    dem = np.where(np.abs(cols - 30) <= 5, 20.0 - 0.1 * rows, 40.0).astype("float32")
    dem_path = _write_raster(tmp_path / "dem.tif", dem, transform)
    river = gpd.GeoDataFrame(
        {"stage_start": [21.0], "stage_end": [11.0]},
        geometry=[shapely.LineString([(X0 + 305, Y0), (X0 + 305, Y0 - 1000)])],
        crs=METRIC,
    )
    b = _buildings([_cell_box(transform, 50, 30), _cell_box(transform, 80, 31)])
    g = gridmap.grade_flood(b, dem=dem_path, rivers=river)
    # about 1 m of water all along the valley: the stage follows the slope
    assert g.buildings["depth_m"].tolist() == pytest.approx([0.95, 0.95], abs=0.06)
    assert g.buildings["colour"].tolist() == ["orange", "orange"]
    assert g.buildings["hazard_source"].iloc[0] == "dem+river_stage"
    # one flat level cannot do that: deep upstream water or none downstream
    flat = gridmap.grade_flood(b, dem=dem_path, rivers=river.assign(stage=16.0))
    assert flat.buildings["colour"].tolist() == ["orange", "red"]
    with pytest.raises(SchemaError, match="stage"):
        gridmap.grade_flood(b, dem=dem_path, rivers=river.drop(columns="stage_end"))


# --------------------------------------------------------------------------- windows


def test_windowed_reads_only_touch_tiles_with_buildings(tmp_path, monkeypatch):
    transform = from_origin(X0, Y0, 2, 2)
    size, tile = 1024, 128
    depth = np.full((size, size), 0.3, dtype="float32")
    depth[5:15, 5:15] = 2.0
    depth[-15:-5, -15:-5] = 2.0
    path = _write_raster(
        tmp_path / "big.tif", depth, transform, tiled=True, blockxsize=128, blockysize=128,
        compress="deflate",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    # 100 buildings in each of two opposite corners (cells 0-190 and 834-1024)
    x = np.r_[rng.uniform(0, 380, 100), rng.uniform(1670, 2040, 100)] + X0
    y = Y0 - np.r_[rng.uniform(6, 380, 100), rng.uniform(1670, 2040, 100)]
    geoms = list(shapely.box(x, y, x + 6, y + 6))
    geoms.append(shapely.box(X0 + 10, Y0 - 30, X0 + 30, Y0 - 10))  # over a 2 m patch
    geoms.append(shapely.box(X0 + 2018, Y0 - 2038, X0 + 2038, Y0 - 2018))  # the other one
    b = _buildings(geoms)
    windows = []
    real = _raster.read_band

    def counting(src, window=None, *args, **kwargs):
        windows.append(window)
        return real(src, window, *args, **kwargs)

    monkeypatch.setattr(_raster, "read_band", counting)
    monkeypatch.setattr(_raster, "TILE_SIZE", tile)
    g = gridmap.grade_flood(b, depth=path)
    assert windows and all(w is not None for w in windows)
    assert len(windows) <= 8  # at most the 2 x 2 tiles of each corner
    cells = sum(int(w.width) * int(w.height) for w in windows)
    assert cells < 0.1 * size * size  # one window over both corners would read it all
    for w in windows:  # each window stays within the tiles of its corner (+ overhang)
        assert int(w.width) <= 2 * tile + 8 and int(w.height) <= 2 * tile + 8
    assert g.buildings["colour"].iloc[-2:].tolist() == ["red", "red"]
    assert g.buildings["colour"].iloc[:-2].isin(["yellow", "red"]).all()


def test_footprint_cells_match_gdal_rasterize():
    from rasterio.features import rasterize
    from rasterio.windows import Window

    transform = from_origin(1000, 5000, 2, 2)
    rng = np.random.default_rng(3)
    shapes = []
    for i in range(60):
        cx, cy = rng.uniform(1050, 1500), rng.uniform(4650, 4950)
        g = shapely.Point(cx, cy).buffer(rng.uniform(1, 30), quad_segs=int(rng.integers(1, 6)))
        if i % 3 == 0:
            g = g.difference(shapely.Point(cx + 2, cy).buffer(rng.uniform(0.5, 8)))
        if i % 4 == 0:
            g = shapely.affinity.rotate(shapely.box(cx, cy, cx + 40, cy + 9), rng.uniform(0, 90))
        shapes.append(g)
    fp = _raster._pixel_footprints(np.array(shapes, dtype=object), transform)
    for i, g in enumerate(shapes):
        ref = rasterize([(g, 1)], out_shape=(200, 300), transform=transform, fill=0, dtype="uint8")
        sel = fp.eb == i
        _, flat = _raster.footprint_cells(
            fp.ex0[sel],
            fp.ey0[sel],
            fp.ex1[sel],
            fp.ey1[sel],
            fp.eb[sel] * 0,
            Window(0, 0, 300, 200),
        )
        mine = np.zeros(200 * 300, dtype="uint8")
        mine[flat] = 1
        assert np.array_equal(mine.reshape(200, 300), ref), i


# --------------------------------------------------------------------------- outputs


def test_flood_map_and_outputs(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    path = _write_raster(tmp_path / "d.tif", [[2.0, 1.0, 0.3, 0.1, 0.0]], transform, nodata=-9999)
    geoms = [_cell_box(transform, 0, c) for c in range(5)]
    b = _buildings(geoms, grid_code=["G1", "G1", "G2", "G2", "G2"], households=[5, 5, 5, 5, 5])
    grids = gpd.GeoDataFrame(
        {"grid_code": ["G1", "G2"]},
        geometry=[
            shapely.box(X0, Y0 - 10, X0 + 20, Y0),
            shapely.box(X0 + 20, Y0 - 10, X0 + 50, Y0),
        ],
        crs=METRIC,
    )
    plan = SimpleNamespace(buildings=b, grids=grids, splits=None, crs=METRIC)
    g = gridmap.grade_flood(plan, depth=path)
    html = gridmap.flood_map(g).get_root().render()
    for colour in ("#e60000", "#ff8c00", "#ffd700", "#1e6fd9"):
        assert colour in html
    assert "红 Red" in html and "蓝 Blue" in html
    assert "data:image/png;base64" in html  # the depth overlay
    files = flood.write_flood_outputs(g, tmp_path / "out")
    names = {p.name for p in files}
    assert {
        "flood_map.html",
        "flood_grids.csv",
        "flood_grids.xlsx",
        "flood_buildings.csv",
        "flood_buildings.xlsx",
        "flood_households_to_move.csv",
        "flood_households_to_move.xlsx",
    } <= names
    table = pd.read_csv(tmp_path / "out" / "flood_grids.csv", encoding="utf-8-sig")
    assert table.set_index("grid_code").loc["G1", "grade"] == "red"
    bt = pd.read_csv(tmp_path / "out" / "flood_buildings.csv", encoding="utf-8-sig")
    assert len(bt) == 4 and bt["colour"].iloc[0] == "red"
    assert bt["lon"].between(127, 130).all()


def test_dem_only_map_has_overlay(tmp_path):
    transform = from_origin(X0, Y0, 10, 10)
    dem_path = _write_raster(tmp_path / "dem.tif", _valley_dem(), transform)
    g = gridmap.grade_flood(_valley_buildings(transform), dem=dem_path, water_level=12.5)
    html = flood.flood_map(g).get_root().render()
    assert "data:image/png;base64" in html


# --------------------------------------------------------------------------- real data


def _centroid_depth(path, gdf):
    """Reference: the depth under each building centroid (no-data and negative = 0)."""
    with rasterio.open(path) as src:
        cent = gdf.geometry.centroid.to_crs(src.crs)
        vals = np.array([v[0] for v in src.sample(zip(cent.x, cent.y, strict=True))], dtype=float)
        nodata = src.nodata
    vals[(vals == nodata) | ~(vals > 0)] = 0.0
    return vals


@pytest.mark.realdata
def test_jakarta_depth_grid_four_colours(realdata):
    folder = realdata / "jakarta"
    if not (folder / "flood_depth_current.tif").exists():
        pytest.skip("real data not available")
    raw = gpd.read_file(folder / "buildings_osm2012.gpkg")
    metric = raw.to_crs(raw.estimate_utm_crs())
    # coarse 2011-12 mapping: drop implausible footprints over 5 ha
    b = metric[metric.area <= 50_000].reset_index(drop=True)
    # households are unknown: one household on one storey per building, so that
    # households count buildings
    b["building_id"] = [f"J{i:05d}" for i in range(len(b))]
    b["households"], b["levels"], b["units"] = 1, 1.0, 1
    depth = folder / "flood_depth_current.tif"
    g = gridmap.grade_flood(b, depth=depth)
    out = g.buildings
    assert set(out["colour"]) == {"red", "orange", "yellow", "blue", "none"}

    ref = np.round(_centroid_depth(depth, b), 3)
    ref_rank = flood._rank(ref, flood.DEFAULT_THRESHOLDS)
    zonal_rank = out["colour"].map(RANK).to_numpy()
    # the zonal max is never better than centroid sampling, building by building
    assert (zonal_rank >= ref_rank).all()
    # README: ~15,900 dry, 1,400 at 0-0.5 m, 2,100 at 0.5-1.5 m, 700 at 1.5-3 m, 50 above 3 m
    classes = [
        ref <= 0,
        (ref > 0) & (ref < 0.5),
        (ref >= 0.5) & (ref < 1.5),
        (ref >= 1.5) & (ref < 3),
        ref >= 3,
    ]
    readme = [15_900, 1_400, 2_100, 700, 50]
    for mask, expected in zip(classes, readme, strict=True):
        assert abs(mask.sum() - expected) <= 0.2 * expected
    # zonal grading is somewhat worse than centroid sampling, not wildly so
    wet_ref, wet_zonal = (ref_rank > 0).sum(), (zonal_rank > 0).sum()
    assert wet_ref <= wet_zonal <= 1.25 * wet_ref
    for colour in flood.COLOURS:
        n_ref = (ref_rank == RANK[colour]).sum()
        assert abs((zonal_rank == RANK[colour]).sum() - n_ref) <= 0.25 * n_ref + 50
    assert (out["households_at_risk"] == (zonal_rank > 0)).all()


@pytest.mark.realdata
def test_jakarta_historical_extent_adds_blue(realdata):
    folder = realdata / "jakarta"
    if not (folder / "rw_flooded_2007.shp").exists():
        pytest.skip("real data not available")
    raw = gpd.read_file(folder / "buildings_osm2012.gpkg")
    metric = raw.to_crs(raw.estimate_utm_crs())
    b = metric[metric.area <= 50_000].reset_index(drop=True)
    b["building_id"] = [f"J{i:05d}" for i in range(len(b))]
    b["households"], b["levels"] = 1, 1.0
    depth = folder / "flood_depth_current.tif"
    only_depth = gridmap.grade_flood(b, depth=depth).buildings
    both = gridmap.grade_flood(b, depth=depth, extent=folder / "rw_flooded_2007.shp")
    out = both.buildings
    from_extent = out["hazard_source"] == "extent:rw_flooded_2007"
    assert from_extent.sum() > 1000
    assert (out.loc[from_extent, "colour"] == "blue").all()
    assert (only_depth.loc[from_extent, "colour"] == "none").all()
    # adding a source never lowers a colour
    assert (out["colour"].map(RANK) >= only_depth["colour"].map(RANK)).all()
    assert [s["name"] for s in both.sources] == [
        "depth:flood_depth_current.tif",
        "extent:rw_flooded_2007",
    ]


@pytest.mark.realdata
def test_lyon_dem_connected_flooding_is_less_than_bathtub(realdata, tmp_path):
    folder = realdata / "lyon"
    if not (folder / "dem_10m.tif").exists():
        pytest.skip("real data not available")
    b = gpd.read_file(folder / "roofs.gpkg")
    b["building_id"] = [f"L{i:05d}" for i in range(len(b))]
    b["levels"] = np.maximum(1, np.round(b["htotale"] / 3))
    b["households"] = b["levels"].astype(int)  # one household per storey
    with rasterio.open(folder / "dem_10m.tif") as src:
        dem = src.read(1).astype("float32")
        profile = src.profile | {"dtype": "float32", "nodata": -9999}
    river = dem <= 161  # the Rhône and the Saône
    dist_m = ndimage.distance_transform_edt(~river) * 10

    def bathtub(level):
        path = tmp_path / f"bathtub_{level}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.maximum(level - dem, 0), 1)
        return gridmap.grade_flood(b, depth=path).buildings["colour"] != "none"

    # 165 m: the quays (~167 m) hold; only a closed depression (160-163 m) lies below
    # the level, and it is not connected to the rivers
    g165 = gridmap.grade_flood(b, dem=folder / "dem_10m.tif", water_level=165)
    assert (g165.buildings["colour"] != "none").sum() == 0
    assert bathtub(165).sum() > 10
    # 167 m: the water tops the quays; the flooded buildings line the rivers
    g = gridmap.grade_flood(b, dem=folder / "dem_10m.tif", water_level=167)
    flooded = g.buildings["colour"] != "none"
    tub = bathtub(167)
    assert 100 < flooded.sum() < tub.sum()
    assert not (flooded & ~tub).any()
    with rasterio.open(folder / "dem_10m.tif") as src:
        cent = g.buildings.geometry[flooded].centroid
        rows, cols = rasterio.transform.rowcol(src.transform, cent.x, cent.y)
    assert (
        dist_m[np.clip(rows, 0, dem.shape[0] - 1), np.clip(cols, 0, dem.shape[1] - 1)].max() < 500
    )
    assert g.buildings["ground_m"].between(150, 300).all()


def test_sample_town_four_colours():
    paths = [DATA / "sample_town.gpkg", DATA / "sample_flood_depth.tif", DATA / "sample_dem.tif"]
    if not all(p.exists() for p in paths):
        pytest.skip("sample data not generated")
    raw = gpd.read_file(DATA / "sample_town.gpkg", layer="buildings")
    b = raw.to_crs(METRIC)
    b["building_id"] = b["楼栋编号"].astype(str)
    b["levels"] = pd.to_numeric(b["层数"], errors="coerce").fillna(1.0)
    b["households"] = pd.to_numeric(b["户数"], errors="coerce").fillna(1).astype(int)
    b["units"] = pd.to_numeric(b["单元数"], errors="coerce").fillna(1).astype(int)
    extent = DATA / "sample_town.gpkg"  # a multi-layer file: its flood_extent layer
    g = gridmap.grade_flood(
        b, depth=DATA / "sample_flood_depth.tif", extent=extent, dem=DATA / "sample_dem.tif"
    )
    assert set(flood.COLOURS) <= set(g.buildings["colour"])
    assert "extent:flood_extent" in set(g.buildings["hazard_source"])
    assert g.buildings["ground_m"].notna().mean() > 0.9
    assert g.households_to_move()["households"].sum() == g.buildings["households_at_risk"].sum()
