"""The gridmap command line: help on every subcommand, one-line errors, real runs."""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmap.cli import _parser, main

SUBCOMMANDS = sorted(
    a.choices for a in _parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
)[0]


@pytest.mark.parametrize("cmd", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: gridmap" in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "gridmap.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "partition" in out.stdout and "households" in out.stdout


def test_missing_file_is_one_line_error(tmp_path, capsys):
    code = main(["households", str(tmp_path / "nope.gpkg"), "-o", str(tmp_path / "o.gpkg")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("gridmap: error:") and "nope.gpkg" in err
    assert len(err.splitlines()) == 1


def test_bad_levels_is_one_line_error(tmp_path, capsys):
    f = tmp_path / "b.geojson"
    gpd.GeoDataFrame(
        {"levels": ["5", "5;6x"]},  # "5;6" is read by rule; this is not
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)],
        crs=32652,
    ).to_file(f, driver="GeoJSON")
    code = main(["households", str(f), "-o", str(tmp_path / "o.gpkg")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "5;6x" in err and len(err.splitlines()) == 1


def test_households_and_partition_commands(tmp_path, capsys):
    xs, ys = np.meshgrid(np.arange(30, 1000, 60.0), np.arange(30, 600, 45.0))
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    b = gpd.GeoDataFrame(
        {"楼栋编号": [f"L{i}" for i in range(len(xy))], "户数": 20, "层数": 6, "单元数": 2},
        geometry=shapely.box(xy[:, 0] - 10, xy[:, 1] - 6, xy[:, 0] + 10, xy[:, 1] + 6),
        crs=32652,
    )
    src = tmp_path / "b.gpkg"
    b.to_file(src, layer="楼栋")
    comm = gpd.GeoDataFrame(
        {"community_code": ["001"], "street_code": ["002"], "name": ["林都社区"]},
        geometry=[shapely.box(0, 0, 1000, 600)],
        crs=32652,
    )
    comm.to_file(tmp_path / "c.gpkg", layer="communities")
    hh_out = tmp_path / "hh.gpkg"
    assert main(["households", f"{src}:楼栋", "-o", str(hh_out)]) == 0
    assert gpd.read_file(hh_out)["households"].sum() == 20 * len(xy)
    plan_out = tmp_path / "plan.gpkg"
    code = main(
        [
            "partition",
            str(src),
            "-o",
            str(plan_out),
            "--communities",
            f"{tmp_path / 'c.gpkg'}:communities",
            "--admin-code",
            "230717",
            "--map",
            str(tmp_path / "m.html"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "grids" in out and "plan ->" in out
    import gridmap

    plan = gridmap.read_plan(plan_out)
    assert plan.grids["grid_code"].str.startswith("230717002001").all()
    assert plan.grids["households"].between(300, 500).all()
    assert (tmp_path / "m.html").stat().st_size > 1000
    assert main(["validate", str(plan_out)]) == 0


def _plan_and_events(tmp_path):
    """A plan of four square grids near Yichun and a CSV of events with naive times."""
    from api.demo import square_plan

    plan = square_plan(4, size=200.0)
    path = tmp_path / "plan.gpkg"
    plan.to_file(path)
    centres = plan.grids.geometry.centroid.to_crs(4326)
    csv = tmp_path / "events.csv"
    rows = ["上报时间,经度,纬度"] + [
        f"2025-03-0{i + 1} 08:00,{c.x:.6f},{c.y:.6f}" for i, c in enumerate(centres[[0, 0, 1]])
    ]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, csv


def test_events_command_tz(tmp_path, caplog):
    import pandas as pd

    plan, csv = _plan_and_events(tmp_path)
    with caplog.at_level("WARNING", logger="gridmap"):
        assert main(["events", str(csv), "-p", str(plan), "-o", str(tmp_path / "a")]) == 0
    assert (
        "3 of 3 times have no UTC offset; read as local times in Asia/Shanghai (UTC+08:00, "
        "the zone of the events' location" in caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="gridmap"):
        code = main(
            ["events", str(csv), "-p", str(plan), "-o", str(tmp_path / "b"), "--tz", "Asia/Tokyo"]
        )
    assert code == 0 and "in Asia/Tokyo (UTC+09:00, as given by tz=)" in caplog.text
    kpi = pd.read_csv(tmp_path / "b" / "event_kpis_grids.csv", dtype={"grid_code": str})
    assert kpi["events"].tolist() == [2, 1, 0, 0]


def test_events_command_bad_tz_is_one_line_error(tmp_path, capsys):
    plan, csv = _plan_and_events(tmp_path)
    args = ["events", str(csv), "-p", str(plan), "-o", str(tmp_path / "c"), "--tz", "Mars/Base"]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Mars/Base" in err and len(err.splitlines()) == 1
