"""Tests of gridmap.export: every format written and readable back."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely

import gridmap
from gridmap import export
from gridmap.errors import InputError

CRS = 32652


@pytest.fixture(scope="module")
def plan():
    """A small plan with Chinese names and a tower split by units."""
    xs, ys = np.meshgrid(np.arange(30, 600, 60), np.arange(22.5, 400, 45))
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    n = len(xy)
    hh = np.full(n, 30)
    units = np.full(n, 3)
    levels = np.full(n, 6.0)
    hh[0], units[0], levels[0] = 594, 3, 33.0
    b = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:05d}" for i in range(n)],
            "use": "apartments",
            "levels": levels,
            "units": units,
            "households": hh,
            "households_source": "given",
            "name": [f"幸福小区{i}号楼" for i in range(n)],
            "楼栋编号": [f"伊美-{i}" for i in range(n)],
        },
        geometry=shapely.box(xy[:, 0] - 12, xy[:, 1] - 8, xy[:, 0] + 12, xy[:, 1] + 8),
        crs=CRS,
    )
    comms = gpd.GeoDataFrame(
        {"community_code": ["001"], "street_code": "001", "name": ["朝阳社区"]},
        geometry=[shapely.box(0, 0, 600, 400)],
        crs=CRS,
    )
    road = gpd.GeoDataFrame(
        {"highway": ["primary"], "name": ["林都大街"]},
        geometry=[shapely.LineString([(300, -10), (300, 410)])],
        crs=CRS,
    )
    p = gridmap.plan_grids(b, comms, barriers=road, admin_code="230717", progress=False)
    p, _ = gridmap.set_grid(p, p.grids["grid_code"].iloc[0], worker="张三", name="一号网格")
    assert len(p.splits)
    return p


def test_export_every_format_and_read_back(plan, tmp_path):
    out = export.export_plan(plan, tmp_path / "out", progress=False)
    assert set(out) == set(export.FORMATS)
    for paths in out.values():
        assert all(p.is_file() for p in paths)
    # GeoPackage: the same plan
    back = gridmap.read_plan(out["gpkg"][0])
    assert len(back.grids) == len(plan.grids)
    assert back.history == plan.history
    # GeoJSON in WGS84
    gj = gpd.read_file(tmp_path / "out" / "grids.geojson")
    assert gj.crs.to_epsg() == 4326
    assert set(gj["grid_code"]) == set(plan.grids["grid_code"])
    assert "张三" in set(gj["worker"])
    bj = gpd.read_file(tmp_path / "out" / "buildings.geojson")
    assert len(bj) == len(plan.buildings) and bj.crs.to_epsg() == 4326


def test_shapefile_keeps_chinese_and_short_field_names(plan, tmp_path):
    out = export.export_plan(plan, tmp_path, formats=["shp"])
    shp = tmp_path / "shp" / "grids.shp"
    assert shp.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    g = pyogrio.read_dataframe(shp)
    for col in g.columns:
        assert len(col.encode("utf-8")) <= 10
    assert "张三" in set(g["worker"]) and "朝阳社区" in set(g["comm_name"])
    assert "一号网格" in set(g["name"])
    assert set(g["grid_code"]) == set(plan.grids["grid_code"])
    b = pyogrio.read_dataframe(tmp_path / "shp" / "buildings.shp")
    assert "幸福小区3号楼" in set(b["name"])
    assert "楼栋编" in b.columns and "伊美-3" in set(b["楼栋编"])  # 12-byte name cut at a character
    fields = pd.read_csv(tmp_path / "shp" / "fields.csv", encoding="utf-8-sig")
    m = fields[fields["layer"] == "grids"].set_index("column")["field"]
    assert m["community_code"] == "comm_code" and m["flag_reason"] == "flag_rsn"
    assert fields.groupby("layer")["field"].apply(lambda s: s.str.lower().is_unique).all()
    assert shp in out["shp"]
    # the shapefile reads back in WGS84 with the same geometry
    gs = gpd.read_file(shp).to_crs(plan.crs).set_index("grid_code")
    orig = plan.grids.set_index("grid_code")
    assert (gs.loc[orig.index].area - orig.area).abs().max() < 1.0


def test_rosters_csv_and_xlsx(plan, tmp_path):
    out = export.export_plan(plan, tmp_path, formats=("csv", "xlsx"))
    assert {p.name for p in out["csv"]} == {"grids.csv", "roster.csv"}
    r = pd.read_csv(tmp_path / "roster.csv", encoding="utf-8-sig", dtype={"grid_code": str})
    assert r["households"].sum() == plan.buildings["households"].sum()
    assert set(r["grid_code"]) == set(plan.grids["grid_code"])
    per = r.groupby("grid_code")["households"].sum()
    g = plan.grids.set_index("grid_code")["households"]
    assert (per.reindex(g.index) == g).all()
    parts = r[r["part"] > 0]
    assert len(parts) == len(plan.splits) and parts["units"].str.len().gt(0).all()
    assert "张三" in set(r["worker"].dropna())
    wb = openpyxl.load_workbook(tmp_path / "roster.xlsx", read_only=True)
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:2] == ("grid_code", "community_code")
    assert len(rows) == len(r) + 1
    assert any("幸福小区" in str(v) for row in rows[1:5] for v in row)
    wb2 = openpyxl.load_workbook(tmp_path / "grids.xlsx", read_only=True)
    assert wb2.worksheets[0].max_row == len(plan.grids) + 1


def test_png_map_per_grid(plan, tmp_path):
    out = export.export_plan(plan, tmp_path, formats=["png"], dpi=60)
    pngs = out["png"]
    assert {p.stem for p in pngs} == set(plan.grids["grid_code"])
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 5_000
    some = export.export_plan(
        plan, tmp_path / "some", formats=["png"], map_grids=plan.grids["grid_code"][:1], dpi=60
    )
    assert len(some["png"]) == 1
    fig = export.grid_sheet(plan, plan.grids["grid_code"].iloc[0])
    assert any("张三" in t.get_text() for t in fig.texts) or export._cjk_font() is None


def test_png_without_cjk_font_falls_back_to_english(plan, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_cjk_font", lambda: None)
    code = plan.grids["grid_code"].iloc[0]
    fig = export.grid_sheet(plan, code)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "Grid worker" in texts and "张三" not in texts
    p = export.grid_sheet(plan, code, tmp_path / "x.png", dpi=50)
    assert p.is_file()


def test_bad_arguments(plan, tmp_path):
    with pytest.raises(InputError, match="unknown export format"):
        export.export_plan(plan, tmp_path, formats=["pdf"])
    with pytest.raises(InputError, match="no grid"):
        export.export_plan(plan, tmp_path, formats=["png"], map_grids=["123"])
    with pytest.raises(gridmap.PlanError, match="no grid"):
        export.grid_sheet(plan, "nope")


def test_export_plan_function(plan, tmp_path):
    out = gridmap.export_plan(plan, tmp_path, formats=["gpkg", "csv"])
    assert set(out) == {"gpkg", "csv"}
