"""Tests for gridmap.events: ingest, assignment, KPIs, hot spots, maps.

The KPI figures below are computed by hand from the fixture; see the table in
``_EVENTS``. ``NOW`` is the evaluation time used by most tests.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

import gridmap
from gridmap import events as ev
from gridmap.errors import InputError, SchemaError

X0, Y0 = 500000.0, 5290000.0  # EPSG:32652 (UTM 52N), near Yichun
METRIC = "EPSG:32652"
NOW = "2025-03-31 00:00"
G1, G2, G3, G4 = "230717001001001", "230717001001002", "230717001002001", "230717002001001"


def _t(text: str) -> str:
    return f"2025-{text}:00+08:00" if text else ""


# id, x, y (metres from the origin), reported, deadline, closed, category, source, status
# Grids are 100 m squares side by side: G1 x 0-100, G2 100-200, G3 200-300, G4 300-400.
# At NOW (03-31 00:00):
#   G1 (200 hh): e1 on time 24 h, e2 late 72 h, e3 open overdue, e4 open not due,
#                e5 on the G1/G2 boundary -> G1, on time 12 h.
#   G2 (50 hh):  e6 late 96 h (unknown category), e7 open overdue.
#   G3 (0 hh):   e8 open, not due -> nothing due, rate NaN, per 100 hh NaN.
#   G4 (100 hh): e9 on time 6 h, e10 deadline == NOW (due, not overdue), e12 closed
#                after NOW (open, not due), e13 (February) on time 24 h.
#   e11 lies outside every grid.
_EVENTS = [
    ("e1", 30, 50, "03-01T08:00", "03-03T08:00", "03-02T08:00", "safety_hazard", "grid_worker", "closed"),
    ("e2", 60, 20, "03-02T08:00", "03-04T08:00", "03-05T08:00", "dispute_mediation", "resident", "closed"),
    ("e3", 20, 80, "03-10T08:00", "03-12T08:00", "", "information_collection", "grid_worker", "open"),
    ("e4", 70, 70, "03-28T08:00", "04-05T08:00", "", "opinion_survey", "grid_worker", "open"),
    ("e5", 100, 50, "03-05T08:00", "03-07T08:00", "03-05T20:00", "key_population", "grid_worker", "closed"),
    ("e6", 150, 50, "03-03T10:00", "03-06T10:00", "03-07T10:00", "垃圾清运", "resident", "closed"),
    ("e7", 180, 20, "03-20T08:00", "03-25T08:00", "", "errand_service", "grid_worker", "open"),
    ("e8", 250, 50, "03-25T08:00", "04-10T08:00", "", "policy_publicity", "resident", "open"),
    ("e9", 350, 50, "03-01T09:00", "03-02T09:00", "03-01T15:00", "policy_publicity", "grid_worker", "closed"),
    ("e10", 320, 80, "03-15T08:00", "03-31T00:00", "", "safety_hazard", "grid_worker", "open"),
    ("e11", 1000, 50, "03-10T08:00", "03-12T08:00", "", "safety_hazard", "grid_worker", "open"),
    ("e12", 380, 20, "03-29T08:00", "04-02T08:00", "04-01T12:00", "dispute_mediation", "resident", "closed"),
    ("e13", 340, 30, "02-20T10:00", "02-22T10:00", "02-21T10:00", "information_collection", "grid_worker", "closed"),
]  # fmt: skip


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    boxes = [shapely.box(X0 + 100 * i, Y0, X0 + 100 * (i + 1), Y0 + 100) for i in range(4)]
    return gpd.GeoDataFrame(
        {
            "grid_code": [G1, G2, G3, G4],
            # community 001 of street 002 is not community 001 of street 001
            "community_code": ["001", "001", "002", "001"],
            "street_code": ["001", "001", "001", "002"],
            "community_name": ["东风社区", "东风社区", "学府社区", "河西村"],
            "kind": ["community", "community", "special", "rural"],
            "households": [200, 50, 0, 100],
        },
        geometry=boxes,
        crs=METRIC,
    )


def _events_frame() -> pd.DataFrame:
    df = pd.DataFrame(
        _EVENTS,
        columns=[
            "event_id",
            "x",
            "y",
            "reported_at",
            "deadline",
            "closed_at",
            "category",
            "source",
            "status",
        ],
    )
    for col in ("reported_at", "deadline", "closed_at"):
        df[col] = df[col].map(_t)
    return df


@pytest.fixture
def events_gdf() -> gpd.GeoDataFrame:
    df = _events_frame()
    return gpd.GeoDataFrame(
        df.drop(columns=["x", "y"]),
        geometry=shapely.points(X0 + df["x"], Y0 + df["y"]),
        crs=METRIC,
    )


@pytest.fixture
def events(events_gdf) -> gpd.GeoDataFrame:
    return ev.read_events(events_gdf)


def _lonlat(x, y):
    tr = Transformer.from_crs(METRIC, 4326, always_xy=True)
    return tr.transform(X0 + np.asarray(x, float), Y0 + np.asarray(y, float))


def _row(table: pd.DataFrame, key: str, code: str, street: str | None = None) -> pd.Series:
    hit = table[table[key] == code]
    if street is not None:
        hit = hit[hit["street_code"] == street]
    assert len(hit) == 1, f"{key}={code}: {len(hit)} rows"
    return hit.iloc[0]


# ---------------------------------------------------------------------------
# assignment and KPIs
# ---------------------------------------------------------------------------


def test_public_names_exported():
    assert gridmap.read_events is ev.read_events
    assert gridmap.event_stats is ev.event_stats
    assert gridmap.advance is ev.advance and gridmap.apply_history is ev.apply_history
    for name in ev.__all__:  # every public name of the package resolves
        assert getattr(ev, name) is not None


def test_assign_boundary_event_once(grids, events):
    out = ev.assign_events(grids, events)
    assert len(out) == len(events)  # never duplicated
    codes = dict(zip(out["event_id"], out["grid_code"].astype(object), strict=True))
    assert codes["e5"] == G1  # on the G1/G2 boundary: smallest grid_code
    assert codes["e6"] == G2 and codes["e8"] == G3 and codes["e10"] == G4
    assert pd.isna(codes["e11"])
    assert out.attrs["unassigned"] == 1
    e1 = out[out["event_id"] == "e1"].iloc[0]
    assert e1["community_code"] == "001" and e1["street_code"] == "001"


def test_assign_boundary_deterministic_order(grids, events):
    """Reordering the grids must not change which grid gets the boundary event."""
    shuffled = grids.iloc[::-1].reset_index(drop=True)
    out = ev.assign_events(shuffled, events)
    assert out.loc[out["event_id"] == "e5", "grid_code"].astype(object).iloc[0] == G1


def test_assign_logs_outside(grids, events, caplog):
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        ev.assign_events(grids, events)
    assert "1 of 13 events lie outside every grid" in caplog.text


def test_grid_kpis_hand_computed(grids, events):
    st = ev.event_stats(grids, events, now=NOW)
    g = st.grids
    assert list(g["grid_code"]) == [G1, G2, G3, G4]  # every grid, plan order
    r1 = _row(g, "grid_code", G1)
    assert r1["events"] == 5
    assert r1["per_100_households"] == pytest.approx(2.5)
    assert (r1["due"], r1["closed_on_time"], r1["open"], r1["overdue"]) == (4, 2, 2, 1)
    assert r1["on_time_rate"] == pytest.approx(0.5)
    assert r1["median_handling_hours"] == pytest.approx(24.0)
    assert r1["cat_key_population"] == 1 and r1["cat_safety_hazard"] == 1
    assert (r1["src_grid_worker"], r1["src_resident"]) == (4, 1)

    r2 = _row(g, "grid_code", G2)
    assert r2["events"] == 2 and r2["per_100_households"] == pytest.approx(4.0)
    assert (r2["due"], r2["closed_on_time"], r2["overdue"]) == (2, 0, 1)
    assert r2["on_time_rate"] == 0.0
    assert r2["cat_other"] == 1 and r2["cat_errand_service"] == 1
    assert r2["median_handling_hours"] == pytest.approx(96.0)

    r3 = _row(g, "grid_code", G3)  # 0 households, nothing due
    assert r3["events"] == 1 and math.isnan(r3["per_100_households"])
    assert r3["due"] == 0 and math.isnan(r3["on_time_rate"])
    assert r3["open"] == 1 and r3["overdue"] == 0
    assert math.isnan(r3["median_handling_hours"])

    r4 = _row(g, "grid_code", G4)
    assert r4["events"] == 4 and r4["per_100_households"] == pytest.approx(4.0)
    # e10: deadline == now -> due but not overdue; e12 closed after now -> open, not due
    assert (r4["closed"], r4["open"], r4["due"], r4["closed_on_time"], r4["overdue"]) == (
        2,
        2,
        3,
        2,
        0,
    )
    assert r4["on_time_rate"] == pytest.approx(2 / 3)
    assert r4["median_handling_hours"] == pytest.approx(15.0)

    assert st.summary["unassigned"] == 1 and st.summary["assigned"] == 12
    assert g["events"].sum() == 12


def test_rollups_recompute_rates_from_sums(grids, events):
    st = ev.event_stats(grids, events, now=NOW)
    assert len(st.communities) == 3
    c = _row(st.communities, "community_code", "001", street="001")
    assert c["households"] == 250 and c["events"] == 7 and c["grids"] == 2
    assert c["per_100_households"] == pytest.approx(2.8)
    assert (c["due"], c["closed_on_time"], c["open"], c["overdue"]) == (6, 2, 3, 2)
    assert c["on_time_rate"] == pytest.approx(1 / 3)  # mean of grid rates would be 0.25
    assert c["median_handling_hours"] == pytest.approx(48.0)  # raw events, not 60
    c2 = _row(st.communities, "community_code", "002", street="001")
    assert math.isnan(c2["on_time_rate"]) and math.isnan(c2["per_100_households"])
    c3 = _row(st.communities, "community_code", "001", street="002")
    assert (c3["events"], c3["households"], c3["due"]) == (4, 100, 3)
    s = _row(st.streets, "street_code", "001")
    assert (s["events"], s["households"], s["due"], s["closed_on_time"]) == (8, 250, 6, 2)
    assert s["per_100_households"] == pytest.approx(3.2)
    assert s["on_time_rate"] == pytest.approx(1 / 3)
    assert s["median_handling_hours"] == pytest.approx(48.0)
    s2 = _row(st.streets, "street_code", "002")
    assert s2["on_time_rate"] == pytest.approx(2 / 3)


def test_window_and_default_now(grids, events):
    st = ev.event_stats(grids, events, start="2025-03-01", end="2025-04-01")
    assert st.now == pd.Timestamp("2025-04-01", tz="Asia/Shanghai")  # now = end
    r4 = _row(st.grids, "grid_code", G4)
    assert r4["events"] == 3  # e13 (February) outside the window
    assert r4["overdue"] == 1  # e10's deadline has now passed
    assert r4["open"] == 2  # e12 closed after the window end
    st_all = ev.event_stats(grids, events)
    assert st_all.now == pd.Timestamp("2025-04-01 12:00", tz="Asia/Shanghai")  # latest closed_at


def test_by_month_long_table(grids, events):
    st = ev.event_stats(grids, events, by="month", now=NOW)
    g = st.grids
    assert len(g) == 4 * 2 and set(g["period"]) == {"2025-02", "2025-03"}
    feb = g[(g["grid_code"] == G4) & (g["period"] == "2025-02")].iloc[0]
    assert feb["events"] == 1 and feb["closed_on_time"] == 1
    total = ev.event_stats(grids, events, now=NOW).grids.set_index("grid_code")
    summed = g.groupby("grid_code")[["events", "due", "closed_on_time", "open", "overdue"]].sum()
    pd.testing.assert_frame_equal(summed, total[summed.columns], check_dtype=False)
    assert st.communities is not None and "period" in st.communities.columns
    weekly = ev.event_stats(grids, events, by="week", now=NOW)
    assert weekly.grids["period"].str.match(r"^\d{4}-W\d{2}$").all()
    assert weekly.grids["events"].sum() == 12


def test_rollups_skipped_without_codes(grids, events):
    st = ev.event_stats(grids.drop(columns=["community_code", "street_code"]), events, now=NOW)
    assert st.communities is None and st.streets is None
    assert any("community" in n for n in st.notes) and any("street" in n for n in st.notes)


def test_plan_object_and_geographic_grids(grids, events):
    class FakePlan:
        def __init__(self, g):
            self.grids = g
            self.crs = g.crs

    a = ev.event_stats(FakePlan(grids), events, now=NOW).grids
    b = ev.event_stats(grids.to_crs(4326), events, now=NOW).grids  # projected back
    assert a["events"].tolist() == [5, 2, 1, 4]
    assert b["events"].sum() == 12


# ---------------------------------------------------------------------------
# read_events
# ---------------------------------------------------------------------------

_CN_HEADER = "事件编号,上报时间,事件类型,来源,状态,办结时限,办结时间,经度,纬度"


def _cn_csv(tmp_path: Path) -> Path:
    """The fixture events in a Chinese CSV with Chinese time formats and bad rows."""
    lon, lat = _lonlat([30, 150, 350, 1000, 60], [50, 50, 50, 50, 20])
    lines = [
        _CN_HEADER,
        # line 2: ok, Chinese date format
        f"A1,2025年3月1日 08:00,安全隐患排查,网格员,已办结,2025年3月3日 08:00,2025年3月2日 08:00,{lon[0]:.7f},{lat[0]:.7f}",
        # line 3: ok, slashes without zero padding, date-only deadline
        f"A2,2025/3/3 10:00,垃圾清运,随手拍,办理中,2025/3/6,,{lon[1]:.7f},{lat[1]:.7f}",
        # line 4: bad coordinate (not numeric)
        "A3,2025-03-04 08:00,信息采集,网格员,办理中,,,abc,47.76",
        # line 5: ok, ISO with offset, duration deadline
        f"A4,2025-03-01T09:00:00+08:00,政策宣传,网格员,已办结,3天,2025-03-01 15:00,{lon[2]:.7f},{lat[2]:.7f}",
        # line 6: unparseable report time
        f"A5,昨天下午,信息采集,网格员,办理中,,,{lon[0]:.7f},{lat[0]:.7f}",
        # line 7: closed before reported
        f"A6,2025-03-05 08:00,矛盾纠纷调解,居民,已办结,,2025-03-04 08:00,{lon[0]:.7f},{lat[0]:.7f}",
        # line 8: outside the plan (e11)
        f"A7,2025-03-10 08:00,安全隐患排查,网格员,办理中,,,{lon[3]:.7f},{lat[3]:.7f}",
        # line 9: latitude out of range
        "A8,2025-03-10 08:00,安全隐患排查,网格员,办理中,,,129.0,95.0",
        # line 10: missing longitude
        f"A9,2025-03-10 08:00,安全隐患排查,网格员,办理中,,,,{lat[0]:.7f}",
        # line 11: unparseable deadline
        f"A10,2025-03-11 08:00,代办服务,网格员,办理中,下周,,{lon[4]:.7f},{lat[4]:.7f}",
        # line 12: ok, seconds and dots
        f"A11,2025.3.12 8:05:30,民意调查,网格员,待处理,,,{lon[4]:.7f},{lat[4]:.7f}",
    ]
    path = tmp_path / "事件.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_chinese_csv_with_rejects(tmp_path, grids, caplog):
    path = _cn_csv(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = ev.read_events(path, plan=grids)
    rej = ev.rejects_of(out)
    got = dict(zip(rej["row"], rej["reason"], strict=True))
    assert got == {
        4: "bad_coordinate",
        6: "bad_time",
        7: "closed_before_report",
        8: "outside_plan",
        9: "bad_coordinate",
        10: "bad_coordinate",
        11: "bad_time",
    }
    # original values kept under the original headers
    assert rej.loc[rej["row"] == 4, "经度"].iloc[0] == "abc"
    assert rej.loc[rej["row"] == 6, "上报时间"].iloc[0] == "昨天下午"
    assert "办结时限" in rej.loc[rej["row"] == 11, "detail"].iloc[0]
    assert "7 of 11 event rows rejected" in caplog.text
    assert "outside_plan 1" in caplog.text

    assert list(out["event_id"]) == ["A1", "A2", "A4", "A11"]
    assert list(out["row"]) == [2, 3, 5, 12]
    tz = "Asia/Shanghai"
    a1 = out.iloc[0]
    assert a1["reported_at"] == pd.Timestamp("2025-03-01 08:00", tz=tz)
    assert a1["closed_at"] == pd.Timestamp("2025-03-02 08:00", tz=tz)
    assert (a1["category"], a1["source"], a1["status"]) == (
        "safety_hazard",
        "grid_worker",
        "closed",
    )
    a2 = out.iloc[1]
    assert a2["reported_at"] == pd.Timestamp("2025-03-03 10:00", tz=tz)
    assert a2["deadline"] == pd.Timestamp("2025-03-06 23:59:59", tz=tz)  # date only: end of day
    assert (a2["category"], a2["source"], a2["status"]) == ("垃圾清运", "resident", "open")
    assert out.iloc[2]["deadline"] == pd.Timestamp("2025-03-04 09:00", tz=tz)  # 3天
    assert out.iloc[3]["reported_at"] == pd.Timestamp("2025-03-12 08:05:30", tz=tz)
    assert list(out["grid_code"].astype(object)) == [G1, G2, G4, G1]
    summary = out.attrs["rejects"].summary
    assert summary["unknown_categories"] == {"垃圾清运": 1}
    assert summary["rejects_by_reason"]["bad_coordinate"] == 3


def test_read_without_plan_keeps_outside(tmp_path):
    out = ev.read_events(_cn_csv(tmp_path))
    assert "A7" in set(out["event_id"])
    assert "outside_plan" not in set(ev.rejects_of(out)["reason"])


def test_read_gb18030_and_tz(tmp_path):
    lines = ["上报时间,经度,纬度", "2025-03-01 08:00,129.0,47.76"]
    path = tmp_path / "gbk.csv"
    path.write_bytes("\n".join(lines).encode("gb18030"))
    out = ev.read_events(path, tz="Asia/Jakarta")
    assert out["reported_at"].iloc[0] == pd.Timestamp("2025-03-01 08:00", tz="Asia/Jakarta")
    assert out["event_id"].iloc[0] == "E0000002"  # generated from the row number


def test_missing_columns_error(tmp_path):
    path = tmp_path / "no_time.csv"
    path.write_text("事件编号,经度,纬度\nA1,129.0,47.7\n", encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        ev.read_events(path)
    msg = str(err.value)
    assert str(path) in msg and "上报时间" in msg and "经度" in msg
    path2 = tmp_path / "no_xy.csv"
    path2.write_text("上报时间,地址\n2025-03-01,A\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="coordinates"):
        ev.read_events(path2)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        ev.read_events(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(_CN_HEADER + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="no data rows"):
        ev.read_events(header_only)
    with pytest.raises(InputError, match="not found"):
        ev.read_events(tmp_path / "nope.csv")


def test_columns_mapping_and_xy_crs(tmp_path):
    path = tmp_path / "xy.csv"
    path.write_text(f"编码,when,E,N\nZ1,2025-03-01 08:00,{X0 + 30},{Y0 + 50}\n", encoding="utf-8")
    out = ev.read_events(
        path, columns={"编码": "event_id", "when": "reported_at", "E": "x", "N": "y"}, crs=METRIC
    )
    assert out.crs.to_epsg() == 32652 and out["event_id"].iloc[0] == "Z1"
    assert out.geometry.iloc[0].equals(shapely.Point(X0 + 30, Y0 + 50))
    assert 128.9 < out["lon"].iloc[0] < 129.1
    with pytest.raises(SchemaError, match="not in the source"):
        ev.read_events(path, columns={"nope": "event_id"})
    with pytest.raises(gridmap.CRSError):
        ev.read_events(path, columns={"when": "reported_at", "E": "x", "N": "y"})


def test_geojson_and_geopackage(tmp_path, events_gdf):
    wgs = events_gdf.to_crs(4326)
    gj = tmp_path / "events.geojson"
    gp = tmp_path / "events.gpkg"
    wgs.to_file(gj, driver="GeoJSON")
    wgs.to_file(gp, layer="events", driver="GPKG")
    wgs.iloc[:2].to_file(gp, layer="other", driver="GPKG")
    for path in (gj, gp):
        out = ev.read_events(path)
        assert len(out) == 13 and len(ev.rejects_of(out)) == 0
        assert out["reported_at"].iloc[0] == pd.Timestamp("2025-03-01 08:00", tz="Asia/Shanghai")
        assert list(out["row"][:3]) == [1, 2, 3]
    assert len(ev.read_events(gp, layer="other")) == 2


def test_dataframe_input(events_gdf):
    df = _events_frame()
    lon, lat = _lonlat(df["x"], df["y"])
    df = df.drop(columns=["x", "y"]).assign(longitude=lon, latitude=lat)
    df.loc[3, "longitude"] = np.nan
    out = ev.read_events(df)
    assert len(out) == 12
    rej = ev.rejects_of(out)
    assert rej["row"].tolist() == [4] and rej["reason"].tolist() == ["bad_coordinate"]
    assert rej["event_id"].tolist() == ["e4"]
    assert out.crs.to_epsg() == 4326


def test_xlsx_input(tmp_path):
    df = pd.DataFrame(
        {
            "事件编号": ["X1", "X2", "X3"],
            "上报时间": [pd.Timestamp("2025-03-01 08:00"), "2025/3/2 9:00", "不详"],
            "经度": [129.0004, 129.0, 129.0],
            "纬度": [47.7638, 47.7638, 47.7638],
        }
    )
    path = tmp_path / "events.xlsx"
    df.to_excel(path, index=False)
    out = ev.read_events(path)
    assert out["event_id"].tolist() == ["X1", "X2"]
    assert out["reported_at"].iloc[1] == pd.Timestamp("2025-03-02 09:00", tz="Asia/Shanghai")
    rej = ev.rejects_of(out)
    assert rej["row"].tolist() == [4] and rej["reason"].tolist() == ["bad_time"]


def test_events_export_keeps_working(tmp_path, grids, events):
    """attrs must not break GeoParquet (JSON metadata), GeoPackage or pickle."""
    import pickle

    assigned = ev.assign_events(grids, events)
    assigned.to_parquet(tmp_path / "e.parquet")
    assert gpd.read_parquet(tmp_path / "e.parquet")["grid_code"].notna().sum() == 12
    assigned.to_file(tmp_path / "e.gpkg", layer="events")
    back = pickle.loads(pickle.dumps(assigned))
    assert isinstance(back.attrs["rejects"], ev.EventRejects)


def test_rejects_survive_filter_and_concat(events):
    sub = events[events["status"] == "open"]
    assert isinstance(sub.attrs["rejects"], ev.EventRejects)
    both = pd.concat([events, ev.read_events(events.drop(columns=["row"]))])
    assert len(both) == 26  # different rejects holders must not break concat


# ---------------------------------------------------------------------------
# hot spots
# ---------------------------------------------------------------------------


def _js(text: str) -> str:
    return json.dumps(text)[1:-1]


def _lattice(n: int = 10, size: float = 100.0) -> gpd.GeoDataFrame:
    ix, iy = np.meshgrid(np.arange(n), np.arange(n))
    ix, iy = ix.ravel(), iy.ravel()
    boxes = shapely.box(X0 + ix * size, Y0 + iy * size, X0 + (ix + 1) * size, Y0 + (iy + 1) * size)
    codes = [f"230717001001{i:03d}" for i in range(n * n)]
    return gpd.GeoDataFrame({"grid_code": codes, "ix": ix, "iy": iy}, geometry=boxes, crs=METRIC)


def test_hotspots_planted_cluster():
    lat = _lattice()
    rng = np.random.default_rng(1)
    value = rng.uniform(0.5, 1.5, len(lat))
    cluster = (lat["ix"] >= 6) & (lat["ix"] <= 8) & (lat["iy"] >= 6) & (lat["iy"] <= 8)
    value[cluster.to_numpy()] = 12.0
    value[(lat["ix"] == 0).to_numpy() & (lat["iy"] == 0).to_numpy()] = np.nan  # no households
    stats = pd.DataFrame({"grid_code": lat["grid_code"], "per_100_households": value})
    hot = ev.hotspots(lat, stats)
    assert isinstance(hot, gpd.GeoDataFrame) and len(hot) == 100
    centre = hot[(lat["ix"] == 7) & (lat["iy"] == 7)].iloc[0]
    assert centre["hotspot"] == "hot" and centre["gi_z"] > 1.96 and centre["gi_p"] <= 0.05
    assert (hot.loc[cluster.to_numpy(), "hotspot"] == "hot").sum() >= 7
    far = ((lat["ix"] <= 4) | (lat["iy"] <= 4)).to_numpy()
    assert not (hot.loc[far, "hotspot"] == "hot").any()
    nan_row = hot[(lat["ix"] == 0) & (lat["iy"] == 0)].iloc[0]
    assert nan_row["hotspot"] == "not_significant" and math.isnan(nan_row["gi_z"])
    again = ev.hotspots(lat, stats)
    assert again["hotspot"].tolist() == hot["hotspot"].tolist()  # seeded


def test_hotspots_cold_and_knn():
    lat = _lattice()
    value = np.full(len(lat), 10.0) + np.random.default_rng(2).uniform(0, 1, len(lat))
    cold = ((lat["ix"] <= 2) & (lat["iy"] <= 2)).to_numpy()
    value[cold] = 0.0
    stats = pd.DataFrame({"grid_code": lat["grid_code"], "events": value})
    res = ev.hotspots(lat, stats, value="events", weights="knn")
    assert (res.loc[cold, "hotspot"] == "cold").sum() >= 5
    near = ((lat["ix"] <= 3) & (lat["iy"] <= 3)).to_numpy()
    assert not (res.loc[near, "hotspot"] == "hot").any()
    assert res["neighbours"].eq(6).all()


def test_hotspots_from_event_stats(grids, events):
    st = ev.event_stats(grids, events, now=NOW)
    res = ev.hotspots(grids, st, permutations=99)
    assert set(res["hotspot"]) <= {"hot", "cold", "not_significant"}
    assert res.loc[res["grid_code"] == G3, "hotspot"].iloc[0] == "not_significant"
    with pytest.raises(InputError):
        ev.hotspots(grids, ev.event_stats(grids, events, by="month"))


# ---------------------------------------------------------------------------
# maps and outputs
# ---------------------------------------------------------------------------


def test_event_map_layers(grids, events):
    fmap = ev.event_map(grids, events, stats=ev.event_stats(grids, events, now=NOW))
    page = fmap.get_root().render()
    assert page.count("L.heatLayer") == 2  # heat map and heat map by month
    assert '"2025-02"' in page and '"2025-03"' in page and 'id="gridmap-period"' in page
    # Chinese text sits JSON-escaped inside the scripts
    assert _js("按时办结率 On-time rate") in page and "bindPopup" in page  # KPI popups
    assert "L.control.layers" in page
    assert "事件热力图 Event heat map" in page
    assert "gridmap-aggregation-note" not in page
    # no d3 colour scale, no TimeDimension: only Leaflet and Leaflet.heat
    assert "color_map" not in page and "TDHeatmap" not in page
    assert not re.search(r"/d3(\.v\d)?(\.min)?\.js", page)


def _layer_adds(page: str) -> list[str]:
    """Names of the variables added to the map on opening (``x.addTo(map_...)``)."""
    return re.findall(r"\b(\w+)\.addTo\(map_\w+\)", page)


def test_event_map_one_layer_on_one_palette_every_legend(grids, events):
    from gridmap.events import palette as pal

    fmap = ev.event_map(grids, events, stats=ev.event_stats(grids, events, now=NOW))
    page = fmap.get_root().render()
    on = [v for v in _layer_adds(page) if not v.startswith(("tile_layer", "layer_control"))]
    assert len(on) == 1 and on[0].startswith("geo_json"), on  # the rate layer only
    # the rate legend: its five classes, in the purple ramp, in an HTML box that wraps
    legend = page[page.index('id="gridmap-events-legend"') :]
    assert "每百户事件数 Events per 100 households" in legend
    for colour in pal.RATE_RAMP:
        assert colour in legend
    assert "max-width:min(320px,calc(100vw - 20px))" in page
    # a legend section for every layer, hot and cold spots included
    for name in ("事件热力图 Event heat map", "事件时序热力图 Event heat map 按月 by month"):
        assert f'data-layer="{name}"' in legend
    assert "热点 Hot spot" in legend and "冷点 Cold spot" in legend
    # flood colours are not used by any event layer
    flood = ("#d7191c", "#2c7bb6", "#bd0026", "#f03b20", "#fd8d3c", "#fecc5c", "#ffffb2")
    assert not any(c in page.lower() for c in flood)
    # heat radius in metres, rescaled on zoom; gradient from the palette
    assert 'map.on("zoomend", resize)' in page
    assert pal.HEAT_GRADIENT[1.0] in page


def test_heat_radius_keeps_shape_at_zoom_16(grids, events):
    """At zoom 16 the heat radius covers tens of pixels (not single-point blobs)."""
    from gridmap.events import maps

    metres = maps._heat_radius_m(grids, None)
    assert metres == pytest.approx(100 / 3)  # a third of the 100 m grid side
    mpp16 = 156543.03392 * np.cos(np.radians(47.7)) / 2**16  # metres per pixel, zoom 16
    assert metres / mpp16 > 14  # wider than the old fixed 14 px radius (~23 m here)
    assert maps._heat_radius_m(grids, 200.0) == pytest.approx(160.0)
    page = ev.event_map(grids, events, hot=False).get_root().render()
    assert re.search(r"metres = 3\d\.\d", page)


def test_palette_json_matches_constants():
    import json

    from gridmap.events import palette as pal

    data = json.loads(pal.palette_json())
    assert data["rate_ramp"] == list(pal.RATE_RAMP)
    assert data["steps"]["closed"] == pal.STEP_COLOURS["closed"]
    assert set(data["steps"]) >= set(ev.STEPS)


def test_event_map_aggregates_above_max_points(grids, events):
    fmap = ev.event_map(grids, events, max_points=5, hot=False)
    page = fmap.get_root().render()
    assert "gridmap-aggregation-note" in page
    assert "aggregated to 100 m squares" in page


def test_write_event_outputs(tmp_path, grids):
    paths = ev.write_event_outputs(grids, _cn_csv(tmp_path), tmp_path / "out", permutations=99)
    names = {p.name for p in paths}
    assert {
        "events_map.html",
        "event_kpis_grids.csv",
        "event_kpis_grids.xlsx",
        "event_kpis_communities.csv",
        "event_kpis_communities.xlsx",
        "event_hotspots.csv",
        "event_hotspots.xlsx",
        "event_rejects.csv",
    } <= names
    assert all(p.exists() for p in paths)
    rej = pd.read_csv(tmp_path / "out" / "event_rejects.csv", encoding="utf-8-sig")
    assert len(rej) == 7 and "reason" in rej.columns
    kpi = pd.read_csv(
        tmp_path / "out" / "event_kpis_grids.csv", encoding="utf-8-sig", dtype={"grid_code": str}
    )
    assert kpi["grid_code"].tolist() == [G1, G2, G3, G4]


# ---------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.slow
def test_jakarta_flood_reports(tmp_path, realdata):
    jakarta = realdata / "jakarta"
    if not (jakarta / "flood_reports_2016.csv").exists():
        pytest.skip("jakarta flood reports absent")
    rw = gpd.read_file(jakarta / "rw_boundaries.shp")
    # RW neighbourhoods as grids; households unknown -> NA, per_100_households NaN
    grids = gpd.GeoDataFrame(
        {
            "grid_code": rw["OBJECTID"].astype(str),
            "community_code": rw["KEL_NAME"],
            "street_code": rw["KEC_NAME"],
        },
        geometry=rw.geometry,
        crs=rw.crs,
    )
    events = ev.read_events(jakarta / "flood_reports_2016.csv", plan=grids, tz="Asia/Jakarta")
    rej = ev.rejects_of(events)
    assert len(events) + len(rej) == 8997
    # README: ~350 reports lie outside Jakarta. Against the RW polygons 475 fall
    # outside: ~390 are > 2 km from any RW, the rest at the edges and in small gaps.
    assert 350 <= len(rej) <= 550
    assert set(rej["reason"]) == {"outside_plan"}
    assert rej["row"].min() >= 2 and {"datetime", "longitude", "latitude"} <= set(rej.columns)
    assert events["grid_code"].notna().all()
    assert events["reported_at"].min() >= pd.Timestamp("2015-12-01", tz="Asia/Jakarta")
    st = ev.event_stats(grids, events, by=None)
    assert len(st.grids) == 2685 and st.grids["events"].sum() == len(events)
    assert st.grids["per_100_households"].isna().all()
    assert st.communities["events"].sum() == len(events)
    monthly = ev.event_stats(grids, events, by="month")
    assert monthly.grids["period"].nunique() == 12
    hot = ev.hotspots(grids, st, value="events", permutations=199)
    assert (hot["hotspot"] == "hot").sum() > 0
    fmap = ev.event_map(grids, events, stats=st, hot=hot)
    out = tmp_path / "jakarta.html"
    fmap.save(str(out))
    assert out.stat().st_size < 15_000_000
    page = out.read_text(encoding="utf-8")
    assert "L.heatLayer" in page and "事件数 Events" in page


@pytest.mark.slow
def test_sample_town_events(sample_town_path):
    import pyogrio

    if "events" not in [row[0] for row in pyogrio.list_layers(sample_town_path)]:
        pytest.skip("sample_town.gpkg has no events layer yet")
    out = ev.read_events(sample_town_path, layer="events")
    assert len(out) > 0
    assert len(ev.rejects_of(out)) == 0
    assert set(out["category"].dropna()) <= set(ev.CATEGORIES)
    assert set(out["source"].dropna()) <= {"grid_worker", "resident"}
    assert set(out["status"].dropna()) <= {"closed", "open"}
    # the communities as coarse grids: nearly every event falls in one
    comm = gpd.read_file(sample_town_path, layer="communities")
    grids = comm.assign(grid_code="230717" + comm["street_code"] + comm["community_code"] + "000")
    st = ev.event_stats(grids, out)
    assert st.summary["assigned"] >= 0.95 * len(out)
    assert 0.0 < st.summary["on_time_rate"] <= 1.0


@pytest.mark.slow
def test_sample_town_plan_end_to_end(sample_town_path, tmp_path):
    """A real Plan from the partition engine, through write_event_outputs."""
    pipeline = pytest.importorskip("gridmap.pipeline")
    if not hasattr(pipeline, "plan_sample"):
        pytest.skip("gridmap.pipeline.plan_sample not available")
    plan = pipeline.plan_sample()
    paths = ev.write_event_outputs(plan, sample_town_path, tmp_path, permutations=99)
    assert (tmp_path / "events_map.html").exists()
    kpi = pd.read_csv(tmp_path / "event_kpis_grids.csv", dtype={"grid_code": str})
    assert len(kpi) == len(plan.grids) and kpi["events"].sum() > 0
    assert set(kpi["grid_code"]) == set(plan.grids["grid_code"])
    assert any(p.name == "event_hotspots.xlsx" for p in paths)


# ---------------------------------------------------------------------------
# time zones, unknown status
# ---------------------------------------------------------------------------


def test_naive_times_in_zone_of_location_and_logged(tmp_path, caplog):
    """Yichun data: Asia/Shanghai from the location; the count of naive times logged."""
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = ev.read_events(_cn_csv(tmp_path))
    assert str(out["reported_at"].dt.tz) == "Asia/Shanghai"
    summary = out.attrs["rejects"].summary
    assert summary["tz"] == "Asia/Shanghai" and summary["tz_origin"] == "location"
    # every parsed time but A4's report (+08:00) and durations ("3天") is naive
    assert summary["naive_times"] > 0
    assert (
        f"{summary['naive_times']} of " in caplog.text
        and "read as local times in Asia/Shanghai (UTC+08:00, the zone of the events' location"
        in caplog.text
    )


def test_offsets_kept_and_tz_given(tmp_path, caplog):
    lon, lat = _lonlat([30, 150], [50, 50])
    path = tmp_path / "e.csv"
    path.write_text(
        "reported_at,lon,lat\n"
        f"2025-03-01T08:00:00+07:00,{lon[0]},{lat[0]}\n"
        f"2025-03-01T08:00:00Z,{lon[1]},{lat[1]}\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = ev.read_events(path)
    assert "no UTC offset" not in caplog.text  # nothing assumed, nothing logged
    assert out.attrs["rejects"].summary["naive_times"] == 0
    assert out["reported_at"].iloc[0] == pd.Timestamp("2025-03-01T01:00:00Z")
    assert out["reported_at"].iloc[1] == pd.Timestamp("2025-03-01T08:00:00Z")
    given = ev.read_events(path, tz="Asia/Jakarta")
    assert str(given["reported_at"].dt.tz) == "Asia/Jakarta"
    assert given["reported_at"].iloc[0].isoformat() == "2025-03-01T08:00:00+07:00"
    with pytest.raises(InputError, match="unknown time zone 'Nowhere/City'"):
        ev.read_events(path, tz="Nowhere/City")


@pytest.mark.parametrize(
    ("lon", "lat", "zone"),
    [
        (128.9, 47.7, "Asia/Shanghai"),  # Yichun
        (106.8, -6.2, "Asia/Jakarta"),
        (115.2, -8.65, "Asia/Makassar"),  # Denpasar, Bali: WITA
        (119.4, -5.1, "Asia/Makassar"),
        (140.7, -2.5, "Asia/Jayapura"),
        (4.84, 45.76, "Europe/Paris"),  # Lyon
        (114.17, 22.3, "Asia/Hong_Kong"),
        (-74.0, 40.7, None),  # New York: not in the table
    ],
)
def test_zone_of(lon, lat, zone):
    assert ev.zone_of(np.array([lon, lon + 0.01]), np.array([lat, lat])) == zone


def test_no_location_zone_falls_back_with_warning(caplog):
    df = pd.DataFrame({"time": ["2025-03-01 08:00"], "lon": [-74.0], "lat": [40.7]})
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = ev.read_events(df)
    assert str(out["reported_at"].dt.tz) == "Asia/Shanghai"
    assert "matches no known zone; pass tz=" in caplog.text


@pytest.mark.realdata
def test_jakarta_times_are_jakarta_time(realdata, caplog):
    path = realdata / "jakarta" / "flood_reports_2016.csv"
    if not path.exists():
        pytest.skip("jakarta flood reports absent")
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        events = ev.read_events(path)
    assert str(events["reported_at"].dt.tz) == "Asia/Jakarta"
    # the file's first line: 2015-12-07T21:36:23 -> +07:00, not +08:00
    first = events.loc[events["row"] == 2, "reported_at"].iloc[0]
    assert first.isoformat() == "2015-12-07T21:36:23+07:00"
    n = events.attrs["rejects"].summary["naive_times"]
    assert n == 8997
    assert "8997 of 8997 times have no UTC offset; read as local times in Asia/Jakarta" in (
        caplog.text
    )
    # no status column: every event is unknown, reported, and out of the on-time figures
    assert set(events["status"]) == {"unknown"}
    assert "8997 events have no status" in caplog.text


def test_missing_status_is_unknown(grids, events_gdf, caplog):
    df = events_gdf.drop(columns=["status"])
    with caplog.at_level(logging.WARNING, logger="gridmap"):
        out = ev.read_events(df)
    # a closing time makes an event closed; the others are unknown
    closed = out["closed_at"].notna()
    assert (out.loc[closed, "status"] == "closed").all()
    assert (out.loc[~closed, "status"] == "unknown").all() and (~closed).sum() == 6
    assert out.attrs["rejects"].summary["unknown_status"] == 6
    assert "6 events have no status" in caplog.text
    st = ev.event_stats(grids, out, now=NOW)
    g1 = _row(st.grids, "grid_code", G1)
    # G1: e1 on time, e2 late, e5 on time (closed); e3, e4 unknown: not open, not due
    assert (g1["closed"], g1["open"], g1["unknown"], g1["overdue"]) == (3, 0, 2, 0)
    assert (g1["due"], g1["closed_on_time"]) == (3, 2)
    assert g1["on_time_rate"] == pytest.approx(2 / 3)  # not NaN: unknowns left out
    assert g1["no_deadline"] == 0
    assert st.summary["unknown_status"] == 5  # e11 (unknown) is outside every grid
    assert np.isfinite(st.summary["on_time_rate"])
    assert any("unknown status" in n for n in st.notes)
    # with the statuses the same grid has its open and overdue events back
    full = _row(ev.event_stats(grids, ev.read_events(events_gdf), now=NOW).grids, "grid_code", G1)
    assert (full["open"], full["unknown"], full["overdue"]) == (2, 0, 1)


# ---------------------------------------------------------------------------
# the six-step loop
# ---------------------------------------------------------------------------


def test_advance_through_the_loop():
    event = {"event_id": "X", "status": "reported", "reported_at": "2025-03-01T08:00:00+08:00"}
    history: list[dict] = []
    steps = [
        ("accepted", "2025-03-01T09:00:00+08:00", None),
        ("assigned", "2025-03-01T09:30:00+08:00", "王芳"),
        ("handled", "2025-03-02T10:00:00+08:00", None),
        ("feedback", "2025-03-02T12:00:00+08:00", None),
        ("closed", "2025-03-02T12:30:00+08:00", None),
    ]
    for status, at, worker in steps:
        entry = ev.advance({**event, "history": history}, status, at, note="ok", worker=worker)
        assert entry["status"] == status and entry["at"] == pd.Timestamp(at)
        assert entry["from"] == (history[-1]["status"] if history else "reported")
        history.append(entry)
    assert [h["status"] for h in history] == list(ev.STEPS[1:])
    with pytest.raises(ev.TransitionError, match="closed: it cannot change any more"):
        ev.advance({**event, "history": history}, "accepted", "2025-03-03T00:00:00+08:00")
    # Chinese step names; the history table as the event
    entry = ev.advance(pd.DataFrame(history[:1]), "分派", "2025-03-01T10:00", worker="李")
    assert entry["status"] == "assigned" and entry["worker"] == "李"
    assert entry["at"] == pd.Timestamp("2025-03-01T10:00:00+08:00")


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        ("accepted", "closed", "cannot go from accepted to closed; next step is assigned"),
        ("reported", "handled", "cannot go from reported to handled; next step is accepted"),
        ("open", "assigned", "cannot go from open to assigned; next step is accepted"),
        ("assigned", "accepted", "cannot go from assigned to accepted; next step is handled"),
        ("cancelled", "accepted", "the event is cancelled: it cannot change any more"),
        ("unknown", "accepted", "'unknown' is not a step of the loop"),
    ],
)
def test_advance_refuses_out_of_order(current, target, message):
    event = {"status": current, "reported_at": "2025-03-01T08:00:00+08:00"}
    with pytest.raises(ev.TransitionError, match=re.escape(message)) as exc:
        ev.advance(event, target, "2025-03-02T08:00:00+08:00", worker="w")
    assert (exc.value.current, exc.value.target) == (current, target)


def test_advance_rules_time_worker_shortcuts():
    event = {"status": "reported", "reported_at": "2025-03-01T08:00:00+08:00"}
    with pytest.raises(ev.TransitionError, match="earlier than the previous step"):
        ev.advance(event, "accepted", "2025-03-01T07:59:00+08:00")
    with pytest.raises(ev.TransitionError, match="needs the worker"):
        ev.advance({**event, "status": "accepted"}, "assigned", "2025-03-01T09:00:00+08:00")
    with pytest.raises(InputError, match="unknown step 'done-ish'"):
        ev.advance(event, "done-ish")
    # closed on the spot from reported; cancelled from any open step
    assert ev.advance(event, "closed", "2025-03-01T08:10:00+08:00")["status"] == "closed"
    assert ev.advance({**event, "status": "handled"}, "撤销")["status"] == "cancelled"
    # a naive time is in the zone of the previous step
    at = ev.advance(event, "accepted", "2025-03-01 09:00")["at"]
    assert at == pd.Timestamp("2025-03-01T09:00:00+08:00")
    assert ev.allowed_steps("reported") == ("accepted", "closed", "cancelled")
    assert ev.allowed_steps("feedback") == ("closed", "cancelled")
    assert ev.next_step("closed") is None


def test_history_drives_kpis(grids, events):
    """e3 (G1, open, overdue) goes through the loop and closes late; e4 is cancelled."""
    history = pd.DataFrame(
        [
            ("e3", "accepted", "2025-03-10T09:00:00+08:00", None),
            ("e3", "assigned", "2025-03-10T10:00:00+08:00", "王芳"),
            ("e3", "handled", "2025-03-13T08:00:00+08:00", None),
            ("e3", "feedback", "2025-03-13T09:00:00+08:00", None),
            ("e3", "closed", "2025-03-13T10:00:00+08:00", None),
            ("e4", "cancelled", "2025-03-29T08:00:00+08:00", None),
        ],
        columns=["event_id", "status", "at", "worker"],
    )
    before = _row(ev.event_stats(grids, events, now=NOW).grids, "grid_code", G1)
    st = ev.event_stats(grids, events, now=NOW, history=history)
    g1 = _row(st.grids, "grid_code", G1)
    assert g1["closed"] == before["closed"] + 1
    assert (g1["open"], g1["overdue"], g1["cancelled"]) == (0, 0, 1)
    assert g1["due"] == before["due"]  # e3 was due (overdue) and still is (closed late)
    assert g1["closed_on_time"] == before["closed_on_time"]
    # handling hours: e1 24, e2 72, e5 12 and now e3 74
    assert g1["median_handling_hours"] == pytest.approx(48.0)
    assert g1["mean_handling_hours"] == pytest.approx((24 + 72 + 12 + 74) / 4)
    applied = ev.apply_history(events, history)
    e3 = applied.set_index("event_id").loc["e3"]
    assert e3["status"] == "closed" and e3["worker"] == "王芳"
    assert e3["closed_at"] == pd.Timestamp("2025-03-13T10:00:00+08:00")
    bad = history.iloc[[0, 4]]  # accepted -> closed
    with pytest.raises(InputError, match="e3: accepted -> closed"):
        ev.apply_history(events, bad)
