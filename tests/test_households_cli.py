"""``gridmap households``: read options, region, landuse and calibration on the CLI."""

from __future__ import annotations

import inspect

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import gridmap
from gridmap.cli import _parser, main

UTM52 = "EPSG:32652"
X0, Y0 = 500_000.0, 5_280_000.0


def _options(cmd: str) -> set[str]:
    sub = next(a for a in _parser()._actions if isinstance(getattr(a, "choices", None), dict))
    return {o for a in sub.choices[cmd]._actions for o in a.option_strings}


@pytest.mark.parametrize("cmd", ["households", "partition"])
def test_every_read_option_is_on_the_cli(cmd):
    params = set(inspect.signature(gridmap.read_buildings).parameters) - {"source", "layer"}
    flags = {
        "id_column": "--id-column",
        "columns": "--column",
        "crs": "--crs",
        "bbox": "--bbox",
        "on_bad_levels": "--on-bad-levels",
        "max_footprint_m2": "--max-footprint",
        "osm": "--osm",
    }
    assert params == set(flags)  # a new read option needs a flag here and in the CLI
    opts = _options(cmd)
    assert {flags[p] for p in params} <= opts
    assert {"--region", "--totals", "--landuse"} <= opts


def test_households_command_with_options_and_totals(tmp_path, capsys):
    src = tmp_path / "b.geojson"
    gpd.GeoDataFrame(
        {
            "CODE": ["a", "b", "c", "d"],
            "HH": [None, 20, None, None],
            "htotale": [18.0, 18.0, 18.0, 18.0],
        },
        geometry=[shapely.box(X0 + 100 * i, Y0, X0 + 100 * i + 20, Y0 + 30) for i in range(4)],
        crs=UTM52,
    ).to_crs(4326).to_file(src)
    totals = tmp_path / "t.gpkg"
    gpd.GeoDataFrame(
        {"community_code": ["001"], "households": [101]},
        geometry=[shapely.box(X0 - 10, Y0 - 10, X0 + 250, Y0 + 50)],  # buildings a, b, c
        crs=UTM52,
    ).to_file(totals, layer="communities")
    out = tmp_path / "hh.gpkg"
    code = main(
        ["households", str(src), "-o", str(out), "--id-column", "CODE",
         "--column", "households=HH", "--region", "CN", "--totals", f"{totals}:communities",
         "--bbox", "128.5", "47.0", "129.5", "48.0"]
    )  # fmt: skip
    assert code == 0
    got = gpd.read_file(out)
    assert got["building_id"].tolist() == ["a", "b", "c", "d"]
    assert (got["levels_source"] == "height").all()
    inside = got["building_id"].isin(["a", "b", "c"])
    assert got.loc[inside, "households"].sum() == 101  # the community's total, exactly
    assert got.loc[got["building_id"] == "b", "households"].item() == 20  # given: kept
    assert got["households_source"].tolist() == [
        "calibrated",
        "given",
        "calibrated",
        "area_estimate",
    ]
    table = pd.read_csv(tmp_path / "hh_calibration.csv", dtype={"id": str})
    assert table["id"].tolist() == ["001"] and table["status"].tolist() == ["matched"]
    assert "calibration table ->" in capsys.readouterr().out


def test_households_command_errors(tmp_path, capsys):
    src = tmp_path / "b.gpkg"
    gpd.GeoDataFrame(
        {"levels": ["3", "abc"]},
        geometry=[
            shapely.box(X0, Y0, X0 + 20, Y0 + 30),
            shapely.box(X0 + 50, Y0, X0 + 70, Y0 + 30),
        ],
        crs=UTM52,
    ).to_file(src)
    out = str(tmp_path / "o.gpkg")
    assert main(["households", str(src), "-o", out]) == 2  # not OSM: a clear error
    assert "'abc'" in capsys.readouterr().err
    assert main(["households", str(src), "-o", out, "--on-bad-levels", "null"]) == 0
    assert main(["households", str(src), "-o", out, "--osm"]) == 0
    assert main(["households", str(src), "-o", out, "--column", "levels"]) == 2
    assert "NAME=COLUMN" in capsys.readouterr().err
    assert main(["households", str(src), "-o", out, "--osm", "--totals", str(src)]) == 2
    assert "'households' column" in capsys.readouterr().err
