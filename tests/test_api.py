"""Tests of the web layer (api/): every endpoint, bad inputs, auth, concurrency, the store."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyogrio
import pytest
import shapely

if TYPE_CHECKING:
    import geopandas as gpd

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from api.demo import lattice_plan, lattice_town, sample_events  # noqa: E402
from api.main import create_app, store_plan  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store import Store, VersionConflict, plan_from_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def demo_plan():
    """A real (partitioned) synthetic plan: 12 grids, 204 buildings."""
    return lattice_plan(1000, 600)


@pytest.fixture(scope="module")
def demo_store_bytes(demo_plan, tmp_path_factory) -> bytes:
    """A store file holding the demo plan as plan 1 (copied for each test)."""
    path = tmp_path_factory.mktemp("store") / "base.gpkg"
    store = Store(path)
    store_plan(store, demo_plan, "demo town")
    store.close()
    # fold the WAL into the main file so one file is a complete copy
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.read_bytes()


def _make_client(tmp_path: Path, store_bytes: bytes | None, **settings) -> TestClient:
    path = tmp_path / "store.gpkg"
    if store_bytes is not None:
        path.write_bytes(store_bytes)
    values = {"store_path": path, "token": TOKEN, **settings}
    return TestClient(create_app(settings=Settings(**values)))


@pytest.fixture
def client(tmp_path, demo_store_bytes):
    with _make_client(tmp_path, demo_store_bytes) as c:
        yield c


@pytest.fixture
def empty_client(tmp_path):
    (tmp_path / "empty").mkdir()
    with _make_client(tmp_path / "empty", None) as c:
        yield c


def _error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text[:500]
    body = resp.json()
    assert set(body["error"]) >= {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def _wait_job(c: TestClient, job: str, timeout: float = 120.0) -> dict:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        j = c.get(f"/api/jobs/{job}").json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish: {j}")


# --------------------------------------------------------------------- plans
def test_list_and_get_plan(client, demo_plan):
    plans = client.get("/api/plans").json()
    assert [p["id"] for p in plans] == [1]
    p = client.get("/api/plans/1").json()
    assert p["version"] == 1
    assert p["name"] == "demo town"
    assert p["summary"]["grids"] == len(demo_plan.grids)
    assert p["notes"] == list(demo_plan.notes)
    assert [v["version"] for v in p["versions"]] == [1]


def test_plan_errors(client, empty_client):
    _error(client.get("/api/plans/99"), 404, "not_found")
    _error(client.get("/api/plans/abc"), 422, "validation_error")
    _error(client.get("/api/plans/0"), 422)
    _error(empty_client.get("/api/grids"), 404, "no_plan")
    assert empty_client.get("/api/plans").json() == []


def test_download_plan_gpkg(client, demo_plan):
    r = client.get("/api/plans/1/gpkg")
    assert r.status_code == 200
    plan = plan_from_bytes(r.content)
    assert sorted(plan.grids["grid_code"]) == sorted(demo_plan.grids["grid_code"])
    _error(client.get("/api/plans/1/gpkg?version=5"), 404)


def test_plan_layers(client):
    bar = client.get("/api/plans/1/layers/barriers").json()
    assert bar["features"][0]["properties"]["class"] == "road"
    com = client.get("/api/plans/1/layers/communities").json()
    assert len(com["features"]) == 2
    _error(client.get("/api/plans/1/layers/secret"), 404)


# --------------------------------------------------------------------- grids
def test_grids_geojson(client, demo_plan):
    r = client.get("/api/grids")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == len(demo_plan.grids)
    codes = {f["properties"]["grid_code"] for f in fc["features"]}
    assert codes == set(demo_plan.grids["grid_code"])
    f = fc["features"][0]
    assert {"households", "kind", "flags", "community_code", "worker"} <= set(f["properties"])
    lon, lat = f["geometry"]["coordinates"][0][0]
    assert 128 < lon < 130 and 47 < lat < 48  # WGS84 near Yichun
    # the same bytes again, by ETag
    r2 = client.get("/api/grids", headers={"If-None-Match": r.headers["etag"]})
    assert r2.status_code == 304


def test_grids_gzip(client):
    r = client.get("/api/grids", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    assert r.json()["type"] == "FeatureCollection"  # httpx decodes it


def test_grids_filters(client, demo_plan):
    fc = client.get("/api/grids?community=001").json()
    n001 = int((demo_plan.grids["community_code"] == "001").sum())
    assert len(fc["features"]) == n001
    assert all(f["properties"]["community_code"] == "001" for f in fc["features"])
    assert client.get("/api/grids?community=999").json()["features"] == []
    # bbox around one grid's centroid: that grid is in the answer, far grids are not
    wgs = demo_plan.grids_wgs84()
    c = shapely.point_on_surface(wgs.geometry.iloc[0])
    box = f"{c.x - 1e-4},{c.y - 1e-4},{c.x + 1e-4},{c.y + 1e-4}"
    got = {
        f["properties"]["grid_code"]
        for f in client.get(f"/api/grids?bbox={box}").json()["features"]
    }
    assert wgs["grid_code"].iloc[0] in got
    assert len(got) < len(wgs)
    assert client.get("/api/grids?bbox=0,0,1,1").json()["features"] == []


@pytest.mark.parametrize(
    "bbox",
    [
        "a",
        "1,2,3",
        "1,2,3,x",
        "1,2,3,4,5",
        "200,0,201,1",
        "0,-95,1,1",
        "10,10,0,0",
        "nan,0,1,1",
        "",
    ],
)
def test_grids_bad_bbox(client, bbox):
    _error(client.get("/api/grids", params={"bbox": bbox}), 422, "invalid_bbox")


def test_grid_by_code(client, demo_plan):
    code = demo_plan.grids["grid_code"].iloc[0]
    f = client.get(f"/api/grids/{code}").json()
    assert f["properties"]["grid_code"] == code
    assert len(f["bbox"]) == 4
    assert "events" not in f["properties"]  # no events yet
    _error(client.get("/api/grids/230717999999999"), 404, "unknown_grid")
    _error(client.get("/api/grids/%3Cscript%3E"), 404)
    _error(client.get("/api/grids?plan=7"), 404)
    _error(client.get("/api/grids?plan=x"), 422)


# ----------------------------------------------------------------- buildings
def test_buildings(client, demo_plan):
    code = demo_plan.grids["grid_code"].iloc[0]
    fc = client.get(f"/api/buildings?grid={code}").json()
    expected = int((demo_plan.buildings["grid_code"] == code).sum())
    assert len(fc["features"]) == expected == fc["total"]
    assert all(f["properties"]["grid_code"] == code for f in fc["features"])
    assert fc["truncated"] is False
    fc = client.get("/api/buildings?bbox=128,47,130,48&limit=10").json()
    assert len(fc["features"]) == 10
    assert fc["total"] == len(demo_plan.buildings)
    assert fc["truncated"] is True
    _error(client.get("/api/buildings"), 422, "missing_filter")
    _error(client.get("/api/buildings?grid=1"), 404, "unknown_grid")
    _error(client.get("/api/buildings?bbox=1,2"), 422, "invalid_bbox")
    _error(client.get("/api/buildings?bbox=128,47,130,48&limit=0"), 422)


# -------------------------------------------------------------------- events
def test_events_post_get_and_stats(client, demo_plan):
    events = sample_events(demo_plan, 40, seed=1)
    r = client.post("/api/events", json=events, headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] == [e["event_id"] for e in events]
    assert body["errors"] == []
    fc = client.get("/api/events").json()
    assert fc["total"] == 40 and len(fc["features"]) == 40
    # the grid of each event is its point's grid
    wgs = demo_plan.grids_wgs84().set_index("grid_code")
    for f in fc["features"][:10]:
        pt = shapely.Point(f["geometry"]["coordinates"])
        assert wgs.geometry.loc[f["properties"]["grid_code"]].buffer(1e-7).contains(pt)
    code = fc["features"][0]["properties"]["grid_code"]
    in_grid = client.get(f"/api/events?grid={code}").json()
    assert 0 < in_grid["total"] < 40
    assert all(f["properties"]["grid_code"] == code for f in in_grid["features"])
    # time window
    win = client.get(
        "/api/events", params={"start": "2025-05-01T00:00:00+08:00", "end": "2025-06-01"}
    ).json()
    times = [f["properties"]["reported_at"] for f in win["features"]]
    assert all("2025-05-01" <= t[:10] < "2025-06-01" for t in times)
    assert 0 < win["total"] < 40
    # stats
    st = client.get("/api/stats/grids").json()
    assert len(st["grids"]) == len(demo_plan.grids)
    assert sum(g["events"] for g in st["grids"]) == 40
    g = next(g for g in st["grids"] if g["grid_code"] == code)
    assert g["events"] == in_grid["total"]
    assert g["per_100_households"] == pytest.approx(100 * g["events"] / g["households"])
    assert "on_time_rate" in g
    # the grid endpoint now carries the figures
    props = client.get(f"/api/grids/{code}").json()["properties"]
    assert props["events"]["events"] == in_grid["total"]
    # a single object, Chinese category name, naive time (+08:00)
    one = {
        "reported_at": "2025-07-01 09:30",
        "category": "矛盾纠纷调解",
        "source": "随手拍",
        "lon": events[0]["lon"],
        "lat": events[0]["lat"],
    }
    r = client.post("/api/events", json=one, headers=AUTH)
    assert r.status_code == 201, r.text
    eid = r.json()["accepted"][0]
    got = [
        f
        for f in client.get("/api/events").json()["features"]
        if f["properties"]["event_id"] == eid
    ]
    assert got[0]["properties"]["reported_at"] == "2025-07-01T09:30:00+08:00"
    assert got[0]["properties"]["category"] == "dispute_mediation"
    assert got[0]["properties"]["source"] == "resident"


def _good_event(demo_plan) -> dict:
    return {k: v for k, v in sample_events(demo_plan, 1, seed=7)[0].items() if k != "event_id"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reported_at": "yesterday"}, "reported_at"),
        ({"reported_at": "2025-13-45T00:00:00"}, "reported_at"),
        ({"reported_at": 1717200000}, "reported_at"),
        ({"lon": 181.0}, "lon"),
        ({"lat": -91.0}, "lat"),
        ({"lon": "east"}, "lon"),
        ({"category": "noise"}, "category"),
        ({"source": "robot"}, "source"),
        ({"status": "maybe"}, "status"),
        ({"lon": 100.0, "lat": 30.0}, "lon,lat"),  # valid but outside the plan area
        ({"closed_at": "2020-01-01T00:00:00+08:00"}, ""),
        ({"unknown_field": 1}, "unknown_field"),
        ({"event_id": "bad id with spaces"}, "event_id"),
    ],
)
def test_events_bad_items(client, demo_plan, change, field):
    ev = {**_good_event(demo_plan), **change}
    r = client.post("/api/events", json=ev, headers=AUTH)
    err = _error(r, 422, "invalid_events")
    fields = [e["field"] for e in err["items"][0]["errors"]]
    assert field in fields, err
    assert r.json()["accepted"] == []


def test_events_partial_batch_and_duplicates(client, demo_plan):
    good = _good_event(demo_plan)
    batch = [
        {**good, "event_id": "A1"},
        {**good, "lat": 95},
        "not an object",
        {**good, "event_id": "A1"},
    ]
    r = client.post("/api/events", json=batch, headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] == ["A1"]
    assert [e["index"] for e in body["errors"]] == [1, 2, 3]
    # a second post of the same id is refused
    _error(client.post("/api/events", json={**good, "event_id": "A1"}, headers=AUTH), 422)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"[]", 422, "empty_batch"),
        (b"42", 422, "invalid_events"),
        (b"null", 422, "invalid_events"),
    ],
)
def test_events_malformed_bodies(client, body, status, code):
    r = client.post(
        "/api/events", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    _error(r, status, code)


def test_events_bad_queries(client):
    _error(client.get("/api/events?start=yesterday"), 422)
    _error(client.get("/api/events?start=2025-06-01&end=2025-05-01"), 422, "invalid_window")
    _error(client.get("/api/events?grid=000"), 404, "unknown_grid")
    _error(client.get("/api/events?limit=-1"), 422)
    _error(client.get("/api/stats/grids?end=notatime"), 422)
    _error(client.get("/api/stats/grids?start=2025-06-01&end=2025-06-01"), 422)
    st = client.get("/api/stats/grids").json()
    assert all(g["events"] == 0 for g in st["grids"])


def test_events_need_a_plan(empty_client):
    ev = {
        "reported_at": "2025-06-01T10:00:00+08:00",
        "category": "safety_hazard",
        "lon": 129,
        "lat": 47.7,
    }
    _error(empty_client.post("/api/events", json=ev, headers=AUTH), 422, "no_plan")


# ---------------------------------------------------------------------- auth
def test_writes_need_the_token(client, demo_plan):
    ev = _good_event(demo_plan)
    r = client.post("/api/events", json=ev)
    _error(r, 401, "missing_token")
    assert r.headers["www-authenticate"] == "Bearer"
    _error(
        client.post("/api/events", json=ev, headers={"Authorization": "Bearer nope"}),
        403,
        "invalid_token",
    )
    _error(client.post("/api/events", json=ev, headers={"Authorization": "Basic abc"}), 403)
    _error(client.patch("/api/plans/1", json={"version": 1, "name": "x"}), 401)
    _error(client.put("/api/settings", json={"lang": "en"}), 401)
    _error(client.post("/api/plans", files={"file": ("a.geojson", b"{}")}), 401)
    # nothing was written
    assert client.get("/api/events").json()["total"] == 0
    assert client.get("/api/plans/1").json()["version"] == 1


def test_writes_refused_without_configured_token(tmp_path, demo_store_bytes, demo_plan, caplog):
    with caplog.at_level("WARNING", logger="gridmap.api"):
        c = _make_client(tmp_path, demo_store_bytes, token=None)
    assert "GRIDMAP_TOKEN is not set" in caplog.text
    with c:
        err = _error(
            c.post("/api/events", json=_good_event(demo_plan), headers=AUTH), 403, "writes_disabled"
        )
        assert "GRIDMAP_TOKEN" in err["message"]
        assert c.get("/api/grids").status_code == 200  # reads stay open
        assert c.get("/api/settings").json()["writes_enabled"] is False


def test_private_reads(tmp_path, demo_store_bytes):
    with _make_client(tmp_path, demo_store_bytes, private_reads=True) as c:
        _error(c.get("/api/grids"), 401, "missing_token")
        _error(c.get("/api/plans"), 401)
        _error(c.get("/api/jobs/abc"), 401)
        assert c.get("/api/grids", headers=AUTH).status_code == 200
        page = c.get("/")
        assert page.status_code == 401 and 'name="token"' in page.text
        bad = c.post("/login", data={"token": "wrong"}, follow_redirects=False)
        assert bad.status_code == 401
        ok = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert ok.status_code == 303
        assert "httponly" in ok.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200  # the cookie now opens the page ...
        assert c.get("/api/grids").status_code == 200  # ... and reads
        # ... but never writes
        _error(c.put("/api/settings", json={"lang": "en"}), 401)


# ------------------------------------------------------- edits, concurrency
def test_patch_plan(client, demo_plan):
    code = demo_plan.grids["grid_code"].iloc[1]
    r = client.patch(
        "/api/plans/1",
        json={
            "version": 1,
            "grids": [{"grid_code": code, "worker": "王芳", "name": "一网格"}],
            "comment": "assign",
        },
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    props = client.get(f"/api/grids/{code}").json()["properties"]
    assert props["worker"] == "王芳" and props["name"] == "一网格"
    fc = client.get("/api/grids").json()
    assert fc["version"] == 2
    # the old version is kept
    old = plan_from_bytes(client.get("/api/plans/1/gpkg?version=1").content)
    assert (old.grids["worker"] == "").all()
    new = plan_from_bytes(client.get("/api/plans/1/gpkg").content)
    assert new.history[-1]["reason"] == "assign"
    _error(
        client.patch(
            "/api/plans/1", json={"version": 2, "grids": [{"grid_code": "1"}]}, headers=AUTH
        ),
        422,
        "unknown_grid",
    )
    _error(
        client.patch("/api/plans/1", json={"version": 2}, headers=AUTH), 422, "nothing_to_change"
    )
    _error(client.patch("/api/plans/1", json={"version": "x"}, headers=AUTH), 422)
    _error(
        client.patch(
            "/api/plans/1", content=b"{", headers={**AUTH, "Content-Type": "application/json"}
        ),
        400,
        "malformed_json",
    )
    _error(client.patch("/api/plans/9", json={"version": 1, "name": "x"}, headers=AUTH), 404)
    err = _error(
        client.patch("/api/plans/1", json={"version": 1, "name": "late"}, headers=AUTH),
        409,
        "version_conflict",
    )
    assert err["current_version"] == 2


def test_two_concurrent_edits_one_conflict(tmp_path, demo_store_bytes, demo_plan):
    """Two clients edit version 1 at the same time: one wins, the other gets 409."""
    codes = list(demo_plan.grids["grid_code"])
    path = tmp_path / "s2.gpkg"
    path.write_bytes(demo_store_bytes)
    app = create_app(settings=Settings(store_path=path, token=TOKEN))
    clients = [TestClient(app), TestClient(app)]
    clients[0].get("/api/grids")  # warm the plan cache so both start together
    barrier = threading.Barrier(2)
    results: list[int] = [0, 0]

    def edit(i: int) -> None:
        barrier.wait()
        r = clients[i].patch(
            "/api/plans/1",
            json={"version": 1, "grids": [{"grid_code": codes[i], "worker": f"worker {i}"}]},
            headers=AUTH,
        )
        results[i] = r.status_code

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    assert clients[0].get("/api/plans/1").json()["version"] == 2
    winner = results.index(200)
    props = clients[1].get(f"/api/grids/{codes[winner]}").json()["properties"]
    assert props["worker"] == f"worker {winner}"


def test_store_update_is_compare_and_set(tmp_path, demo_store_bytes):
    path = tmp_path / "s.gpkg"
    path.write_bytes(demo_store_bytes)
    store = Store(path)
    rec = store.plan(1)
    blob = store.plan_bytes(1, 1)
    barrier = threading.Barrier(4)
    outcome: list[str] = []

    def writer() -> None:
        barrier.wait()
        try:
            store.update_plan(1, 1, blob, rec.summary, rec.notes)
            outcome.append("ok")
        except VersionConflict:
            outcome.append("conflict")

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome) == ["conflict"] * 3 + ["ok"]
    assert store.plan(1).version == 2
    assert [v["version"] for v in store.versions(1)] == [1, 2]
    store.close()


# --------------------------------------------------------------- crash safety
def test_store_exception_mid_transaction_rolls_back(tmp_path, demo_store_bytes, monkeypatch):
    path = tmp_path / "s.gpkg"
    path.write_bytes(demo_store_bytes)
    store = Store(path)
    rec = store.plan(1)
    blob = store.plan_bytes(1, 1)
    original = Store._insert_version

    def boom(*args, **kwargs):
        original(*args, **kwargs)  # the version row is written ...
        raise RuntimeError("disk on fire")  # ... then the write dies

    monkeypatch.setattr(Store, "_insert_version", staticmethod(boom))
    with pytest.raises(RuntimeError):
        store.update_plan(1, 1, blob, rec.summary, rec.notes, name="half written")
    monkeypatch.undo()
    store.close()
    again = Store(path)
    assert again.plan(1).version == 1
    assert again.plan(1).name == "demo town"
    assert [v["version"] for v in again.versions(1)] == [1]
    # and the store still works
    assert again.update_plan(1, 1, blob, rec.summary, rec.notes).version == 2
    again.close()


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_store_killed_mid_write_keeps_previous_state(tmp_path, demo_store_bytes):
    path = tmp_path / "s.gpkg"
    path.write_bytes(demo_store_bytes)
    code = f"""
import os, signal
from api.store import Store
s = Store({str(path)!r})
with s.transaction() as con:
    con.execute("UPDATE plans SET version = 99, name = 'half' WHERE id = 1")
    con.execute("INSERT INTO plan_versions (plan_id, version, created, summary, notes, sha256, gpkg) "
                "VALUES (1, 99, 'x', '{{}}', '[]', 'x', x'00')")
    con.execute("INSERT INTO events (event_id, reported_at, reported_ts, category, source, status, "
                "lon, lat, received) VALUES ('X', 'x', 0, 'c', 's', 'open', 0, 0, 'x')")
    os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    store = Store(path)
    assert store.plan(1).version == 1 and store.plan(1).name == "demo town"
    assert [v["version"] for v in store.versions(1)] == [1]
    assert store.events_revision()[0] == 0
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert len(plan_from_bytes(store.plan_bytes(1, 1)).grids) > 0
    store.close()


def test_store_is_a_geopackage(client, demo_plan):
    client.post("/api/events", json=sample_events(demo_plan, 5), headers=AUTH)
    path = client.app.state.store.path
    layers = dict(pyogrio.list_layers(path))
    assert layers["events"] == "Point"
    ev = pyogrio.read_dataframe(path, layer="events")
    assert len(ev) == 5 and ev.crs.to_epsg() == 4326
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


# -------------------------------------------------------------------- upload
def _footprints_geojson(n_town: tuple = (1000, 600)) -> bytes:
    b, _, _ = lattice_town(*n_town)
    return b.to_crs(4326).to_json().encode()


def test_upload_job_plan_flow(client):
    data = _footprints_geojson()
    r = client.post(
        "/api/plans",
        files={"file": ("town.geojson", data, "application/geo+json")},
        data={
            "name": "上传的小镇",
            "admin_code": "230717",
            "household_min": "300",
            "household_max": "500",
        },
        headers=AUTH,
    )
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert r.headers["location"] == f"/api/jobs/{job}"
    j = _wait_job(client, job)
    assert j["status"] == "done", j
    assert j["progress"] == 1.0
    plan_id = j["plan_id"]
    assert plan_id == 2
    p = client.get(f"/api/plans/{plan_id}").json()
    assert p["name"] == "上传的小镇" and p["version"] == 1
    fc = client.get(f"/api/grids?plan={plan_id}").json()
    assert len(fc["features"]) == p["summary"]["grids"] > 5
    assert all(f["properties"]["grid_code"].startswith("230717") for f in fc["features"])
    hh = [f["properties"]["households"] for f in fc["features"]]
    assert sum(hh) == p["summary"]["households"]
    # the newest plan is now the default
    assert client.get("/api/grids").json()["plan_id"] == plan_id
    # the upload folder is cleaned up
    assert not any(client.app.state.jobs.instance.dir.iterdir())


def test_upload_zipped_shapefile(client, tmp_path):
    b, _, _ = lattice_town(600, 400)
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    b = b.rename(columns={"building_id": "id"})  # Shapefile names have at most 10 characters
    b[["id", "households", "levels", "units", "use", "geometry"]].to_crs(4326).to_file(
        shp_dir / "b.shp"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in shp_dir.iterdir():
            zf.write(f, f"../evil/{f.name}")  # hostile paths are never used on disk
    r = client.post("/api/plans", files={"file": ("b.zip", buf.getvalue())}, headers=AUTH)
    assert r.status_code == 202, r.text
    j = _wait_job(client, r.json()["job"])
    assert j["status"] == "done", j
    assert not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize(
    ("filename", "content", "code"),
    [
        ("notes.txt", b"hello", "unsupported_file"),
        ("noext", b"hello", "unsupported_file"),
        ("town.geojson", b"", "invalid_upload"),
        ("town.geojson", b"PK\x03\x04 not json", "invalid_upload"),
        ("town.gpkg", b"this is not sqlite", "invalid_upload"),
        ("town.zip", b"not a zip", "invalid_upload"),
    ],
)
def test_upload_bad_files(client, filename, content, code):
    r = client.post("/api/plans", files={"file": (filename, content)}, headers=AUTH)
    _error(r, 422, code)


def test_upload_zip_without_shapefile(client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no shapes here")
    _error(
        client.post("/api/plans", files={"file": ("x.zip", buf.getvalue())}, headers=AUTH),
        422,
        "invalid_upload",
    )


def test_upload_bad_forms(client):
    _error(client.post("/api/plans", data={"name": "x"}, headers=AUTH), 422, "missing_file")
    _error(client.post("/api/plans", json={"file": "x"}, headers=AUTH), 422, "missing_file")
    files = {"file": ("a.geojson", b"{}")}
    _error(client.post("/api/plans", files=files, data={"admin_code": "12"}, headers=AUTH), 422)
    _error(client.post("/api/plans", files=files, data={"household_min": "abc"}, headers=AUTH), 422)
    _error(
        client.post(
            "/api/plans",
            files=files,
            data={"household_min": "600", "household_max": "500"},
            headers=AUTH,
        ),
        422,
    )
    r = client.post(
        "/api/plans",
        content=b'--xx\r\nContent-Disposition: form-data; name="file"\r\n',
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert 400 <= r.status_code < 500


def test_upload_unreadable_geojson_fails_the_job(client):
    empty = b'{"type": "FeatureCollection", "features": []}'
    r = client.post("/api/plans", files={"file": ("empty.geojson", empty)}, headers=AUTH)
    assert r.status_code == 202
    j = _wait_job(client, r.json()["job"])
    assert j["status"] == "failed"
    assert j["error"] and "\n" not in j["error"]
    assert "uploads" not in j["error"]  # no server paths in messages
    assert len(client.get("/api/plans").json()) == 1
    _error(client.get("/api/jobs/doesnotexist"), 404)


def test_oversized_upload(tmp_path, demo_store_bytes):
    with _make_client(tmp_path, demo_store_bytes, max_upload_mb=0.05) as c:
        big = b"{" + b" " * 80_000 + b"}"
        _error(
            c.post("/api/plans", files={"file": ("big.geojson", big)}, headers=AUTH),
            413,
            "payload_too_large",
        )

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(100):
                yield b" " * 1000

        r = c.post(
            "/api/events", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
        )
        _error(r, 413)
        assert c.get("/api/plans").status_code == 200


# --------------------------------------------------------- pages, i18n, misc
def _page_config(html: str) -> dict:
    start = html.index('<script id="gridmap-config" type="application/json">') + len(
        '<script id="gridmap-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_map_page_and_lang_switch(client):
    zh = client.get("/")
    assert zh.status_code == 200 and zh.headers["content-type"].startswith("text/html")
    cfg = _page_config(zh.text)
    assert cfg["lang"] == "zh"
    assert cfg["strings"]["layer_grids"] == "网格"
    assert cfg["strings"]["kinds"]["special"] == "专属网格"
    assert cfg["plan"]["id"] == 1
    assert cfg["tiles"]["kind"] == "none"
    assert '<html lang="zh-CN">' in zh.text
    en = _page_config(client.get("/?lang=en").text)
    assert en["lang"] == "en" and en["strings"]["layer_grids"] == "Grids"
    assert _page_config(client.get("/?lang=xx").text)["lang"] == "zh"
    # a saved setting changes the default language
    r = client.put("/api/settings", json={"lang": "en"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["lang"] == "en"
    assert _page_config(client.get("/").text)["lang"] == "en"
    assert _page_config(client.get("/?lang=zh").text)["lang"] == "zh"
    client.put("/api/settings", json={"lang": ""}, headers=AUTH)
    assert _page_config(client.get("/").text)["lang"] == "zh"


def test_page_is_offline_ready(client):
    html = client.get("/").text
    assert "http://" not in html and "https://" not in html
    for asset in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/leaflet/images/layers.png",
        "/static/vendor/leaflet.heat/leaflet-heat.js",
        "/static/js/gridmap.js",
        "/static/css/gridmap.css",
        "/static/favicon.svg",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
    ):
        assert client.get(asset).status_code == 200, asset
    docs = client.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower()
    assert client.get("/openapi.json").json()["paths"]["/api/grids"]


def test_tile_settings(client):
    _error(client.put("/api/settings", json={"tiles": "javascript:alert(1)"}, headers=AUTH), 422)
    _error(client.put("/api/settings", json={"tiles": "http://x/{z}/{x}"}, headers=AUTH), 422)
    _error(client.put("/api/settings", json={"tianditu_key": "a b"}, headers=AUTH), 422)
    _error(client.put("/api/settings", json={"colour": "red"}, headers=AUTH), 422)
    r = client.put(
        "/api/settings", json={"tiles": "tianditu", "tianditu_key": "abc123"}, headers=AUTH
    )
    assert r.json()["tianditu_key_set"] is True
    cfg = _page_config(client.get("/").text)
    assert cfg["tiles"]["kind"] == "tianditu"
    assert "tk=abc123" in cfg["tiles"]["layers"][0]["url"]
    client.put(
        "/api/settings", json={"tiles": "https://tiles.example/{z}/{x}/{y}.png"}, headers=AUTH
    )
    assert _page_config(client.get("/").text)["tiles"]["kind"] == "xyz"
    client.put("/api/settings", json={"tiles": "", "tianditu_key": ""}, headers=AUTH)
    assert _page_config(client.get("/").text)["tiles"]["kind"] == "none"


def test_unknown_paths_and_methods(client):
    _error(client.get("/api/nothing"), 404, "not_found")
    _error(client.get("/static/nothing.js"), 404)
    _error(client.delete("/api/plans/1", headers=AUTH), 405, "method_not_allowed")
    _error(client.get("/api/grids?plan=99999999999999999999999"), 422)


def test_page_escapes_names(client, demo_plan):
    code = demo_plan.grids["grid_code"].iloc[0]
    evil = "</script><script>alert(1)</script>"
    client.patch("/api/plans/1", json={"version": 1, "name": evil}, headers=AUTH)
    html = client.get("/").text
    assert "<script>alert(1)" not in html
    assert _page_config(html)["plan"]["name"] == evil
    assert code  # the grid layer escapes properties in JS (esc())


def test_empty_store_page(empty_client):
    cfg = _page_config(empty_client.get("/").text)
    assert cfg["plan"] is None and cfg["plans"] == []


def test_gzip_body_matches_plain(client):
    plain = client.get("/api/grids").content
    r = client.get("/api/grids", headers={"Accept-Encoding": "gzip"})
    assert json.loads(r.content) == json.loads(plain)
    assert (
        gzip.decompress(client.app.state.cache.view(client.app.state.store.plan(1)).geojson_gz)
        == plain
    )


# ------------------------------------------------------------------ overlays
def test_flood_overlay(client, demo_plan):
    flood = pytest.importorskip("gridmap.flood")
    import geopandas as gpd

    from api.main import attach_flood

    # a historical flood 1.2 m deep over the south-west corner of the town
    x0, y0, x1, y1 = demo_plan.grids.total_bounds
    extent = gpd.GeoDataFrame(
        {"name": ["2013"], "depth_m": [1.2]},
        geometry=[shapely.box(x0, y0, x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3)],
        crs=demo_plan.crs,
    )
    grading = flood.grade_flood(demo_plan, extent=extent)
    store = client.app.state.store
    _error(client.get("/api/plans/1/overlays/flood"), 404, "not_found")
    assert attach_flood(store, 1, grading) == len(demo_plan.grids)
    data = client.get("/api/plans/1/overlays/flood").json()
    grades = {g["grid_code"]: g["grade"] for g in data["grids"]}
    assert set(grades) == set(demo_plan.grids["grid_code"])
    assert "orange" in grades.values() and "none" in grades.values()
    assert data["thresholds"]["red"] == 1.5 and data["palette"]["red"]
    assert _page_config(client.get("/").text)["overlays"] == ["flood"]
    # an edit of the plan keeps the overlay
    client.patch("/api/plans/1", json={"version": 1, "name": "edited"}, headers=AUTH)
    assert client.get("/api/plans/1/overlays/flood").status_code == 200
    _error(client.get("/api/plans/9/overlays/flood"), 404)


def _lattice_roads(plan: Any) -> gpd.GeoDataFrame:
    """A small street lattice over the plan (lines noded at the crossings)."""
    import geopandas as gpd
    import numpy as np

    x0, y0, x1, y1 = plan.grids.total_bounds
    xs = np.linspace(x0 - 20, x1 + 20, 6)
    ys = np.linspace(y0 - 20, y1 + 20, 5)
    lines = [shapely.LineString([(a, y), (b, y)]) for y in ys for a, b in itertools.pairwise(xs)]
    lines += [shapely.LineString([(x, a), (x, b)]) for x in xs for a, b in itertools.pairwise(ys)]
    return gpd.GeoDataFrame(
        {"highway": "residential", "name": [f"路{i}" for i in range(len(lines))]},
        geometry=lines,
        crs=plan.crs,
    )


def test_evacuation_overlay(client, demo_plan):
    flood = pytest.importorskip("gridmap.flood")
    evacuation = pytest.importorskip("gridmap.evacuation")
    import geopandas as gpd

    from api.main import attach_evacuation

    # the south-west third under 1.2 m of water; two shelters in the north-east
    x0, y0, x1, y1 = demo_plan.grids.total_bounds
    extent = gpd.GeoDataFrame(
        {"name": ["2013"], "depth_m": [1.2]},
        geometry=[shapely.box(x0, y0, x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3)],
        crs=demo_plan.crs,
    )
    grading = flood.grade_flood(demo_plan, extent=extent)
    shelters = gpd.GeoDataFrame(
        {"name": ["第一中学", "体育馆"], "type": "school", "capacity": [400, 60]},
        geometry=[shapely.Point(x1 - 50, y1 - 50), shapely.Point(x1 - 300, y1 - 60)],
        crs=demo_plan.crs,
    )
    evac = evacuation.plan_evacuation(grading, _lattice_roads(demo_plan), shelters, depth=[])
    store = client.app.state.store
    _error(client.get("/api/plans/1/overlays/evacuation"), 404, "not_found")
    assert attach_evacuation(store, 1, evac) == len(evac.routes)
    data = client.get("/api/plans/1/overlays/evacuation").json()
    assert data["plan_id"] == 1 and data["name"] == "evacuation"
    s = data["summary"]
    assert s["placed_persons"] == evac.summary()["placed_persons"] > 0
    assert set(s["unplaced_persons"]) == {"cut_off", "no_capacity", "needs_transport", "no_route"}
    assert sum(s["persons_by_wave"].values()) == s["persons"]
    # the buildings to move (points): placed ones by wave, the others by reason
    b = data["buildings"]["features"]
    assert len(b) == len(evac.buildings) and b[0]["geometry"]["type"] == "Point"
    assert {"status", "wave", "households_to_move"} <= set(b[0]["properties"])
    assert len(data["palette"]["waves"]) >= 3 and data["palette"]["flooded"]
    assert s["clearance_time_min"] == pytest.approx(evac.clearance_time_min, abs=0.1)
    sh = data["shelters"]["features"]
    assert [f["geometry"]["type"] for f in sh] == ["Point", "Point"]
    assert {"name", "capacity", "load", "pct_used"} <= set(sh[0]["properties"])
    assert sum(f["properties"]["load"] for f in sh) == s["placed_persons"]
    lon, lat = sh[0]["geometry"]["coordinates"]
    assert 120 < lon < 135 and 40 < lat < 55  # WGS84
    routes = data["routes"]["features"]
    assert routes and routes[0]["geometry"]["type"] == "LineString"
    assert {"shelter", "shelter_id", "persons"} <= set(routes[0]["properties"])
    assert data["impassable"]["type"] == "FeatureCollection"
    assert _page_config(client.get("/").text)["overlays"] == ["evacuation"]
    _error(client.get("/api/plans/9/overlays/evacuation"), 404)


def test_evacuation_overlay_synthetic(client):
    """A hand-made overlay (as another step could store it) is served as stored."""
    store = client.app.state.store
    store.set_overlay(
        1,
        "evacuation",
        {
            "summary": {
                "persons": 12,
                "placed_persons": 10,
                "unplaced_persons": {"cut_off": 2, "no_capacity": 0},
                "clearance_time_min": 7.5,
            },
            "shelters": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [128.9, 47.73]},
                        "properties": {
                            "name": "小学",
                            "capacity": 50,
                            "load": 10,
                            "pct_used": 20.0,
                        },
                    }
                ],
            },
            "routes": {"type": "FeatureCollection", "features": []},
            "impassable": {"type": "FeatureCollection", "features": []},
        },
    )
    data = client.get("/api/plans/1/overlays/evacuation").json()
    assert data["summary"]["unplaced_persons"] == {"cut_off": 2, "no_capacity": 0}
    assert data["shelters"]["features"][0]["properties"]["pct_used"] == 20.0
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/plans/{plan_id}/overlays/evacuation"]["get"]
    assert "EvacuationOverlay" in json.dumps(op["responses"]["200"])
