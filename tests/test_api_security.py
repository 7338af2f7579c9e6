"""Server hardening (issue 16): one test per defect an independent test of the API found.

1. zip bombs are refused early, off the event loop, while other requests keep answering;
2. far dates, huge plan ids, corrupt / encrypted / Deflate64 zips and the same
   ``event_id`` posted to two server processes get a 4xx naming the problem;
3. ``POST /api/events`` honours ``?plan=``;
4. a second server process on a store leaves the first one's running job alone;
5. background job errors name the problem;
6. nothing is stored other than as sent (NUL, non-UTF-8 multipart names);
7. OpenAPI: components, documented 413, ``Allow`` on 405, strict date-times;
8. uploads of a killed job are removed at start-up.

Tests marked with a server start ``uvicorn`` in a subprocess (``_Uvicorn``).
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import shapely
from live_support import free_port

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import geopandas as gpd  # noqa: E402
import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.demo import lattice_plan, lattice_town, sample_events  # noqa: E402
from api.main import create_app, store_plan  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN = "security-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GIB = 1 << 30


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def plan():
    return lattice_plan(1000, 600)


@pytest.fixture(scope="module")
def store_bytes(plan, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("security") / "base.gpkg"
    store = Store(path)
    store_plan(store, plan, "demo town")
    store.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.read_bytes()


def _store(tmp_path: Path, store_bytes: bytes) -> Path:
    path = tmp_path / "store.gpkg"
    path.write_bytes(store_bytes)
    return path


@pytest.fixture
def client(tmp_path, store_bytes):
    path = _store(tmp_path, store_bytes)
    with TestClient(create_app(settings=Settings(store_path=path, token=TOKEN))) as c:
        yield c


def _error(resp, status: int | tuple[int, ...], code: str | None = None) -> dict:
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, resp.text[:600]
    err = resp.json()["error"]
    assert err["message"], err
    if code is not None:
        assert err["code"] == code, err
    return err


def _wait_job(c, job: str, timeout: float = 180.0) -> dict:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        j = c.get(f"/api/jobs/{job}").json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish: {j}")


class _Uvicorn:
    """``uvicorn api.main:create_app --factory`` in a subprocess on a free port."""

    def __init__(self, store: Path, log: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "GRIDMAP_STORE": str(store),
            "GRIDMAP_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
            **env,
        }

    def __enter__(self) -> _Uvicorn:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdout=self._out, stderr=self._out
        )
        t = time.monotonic()
        while True:
            try:
                if httpx.get(self.url + "/api/settings", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() - t > 90:
                self.__exit__()
                raise RuntimeError(f"uvicorn did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self._out.close()


# --------------------------------------------------------------- zip helpers
def _zip(entries: list[dict]) -> bytes:
    """A zip written byte by byte, so that sizes, flags and methods can be anything.

    Each entry: ``name``, ``data`` (as stored), ``method``, ``size`` (declared
    unpacked size), ``crc``, ``flags``.
    """
    out = io.BytesIO()
    central = []
    for e in entries:
        name = e["name"].encode()
        offset = out.tell()
        fields = (20, e.get("flags", 0), e["method"], 0, 0, e["crc"], len(e["data"]), e["size"])
        out.write(struct.pack("<IHHHHHIII", 0x04034B50, *fields) + struct.pack("<HH", len(name), 0))
        out.write(name + e["data"])
        central.append(
            struct.pack("<IH", 0x02014B50, 20)
            + struct.pack("<HHHHHIII", *fields)
            + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset)
            + name
        )
    start = out.tell()
    for c in central:
        out.write(c)
    size = out.tell() - start
    out.write(
        struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), size, start, 0)
    )
    return out.getvalue()


def _stored(name: str, data: bytes) -> dict:
    return {"name": name, "data": data, "method": 0, "size": len(data), "crc": zlib.crc32(data)}


def _zeros_deflated(total: int) -> bytes:
    """A raw Deflate stream of `total` zero bytes (1 MiB blocks after full flushes repeat)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * (1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (total >> 20) + c.flush()


def _bomb(unpacked: int = 2 * GIB, declared: int | None = None) -> bytes:
    """A 'Shapefile' whose .shp is `unpacked` zero bytes (declared as `declared`)."""
    shp = {
        "name": "b.shp",
        "data": _zeros_deflated(unpacked),
        "method": 8,
        "size": unpacked if declared is None else declared,
        "crc": 0,
    }
    return _zip([shp, _stored("b.shx", b"\0" * 100), _stored("b.dbf", b"\x03" + b"\0" * 40)])


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _shapefile_zip(
    tmp_path: Path, gdf, *, drop: tuple[str, ...] = (), encoding: str = "utf-8"
) -> bytes:
    folder = tmp_path / f"shp-{len(list(tmp_path.glob('shp-*')))}"
    folder.mkdir()
    gdf.to_file(folder / "b.shp", encoding=encoding)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            if f.suffix not in drop:
                zf.write(f, f.name)
    return buf.getvalue()


def _town(width: float = 600, height: float = 400):
    b, _, _ = lattice_town(width, height)
    return b.rename(columns={"building_id": "id"})[["id", "households", "geometry"]]


# ============================================================ 1. zip bombs
@pytest.mark.parametrize(
    ("declared", "status", "words"),
    [
        (None, 413, "zip bomb"),  # honest sizes: refused before anything is unpacked
        (10_000, 422, "damaged"),  # lying sizes: unpacking stops at the declared size
    ],
)
def test_zip_bomb_refused_fast_while_others_answer(tmp_path, store_bytes, declared, status, words):
    """A 2 MB zip of a 2 GiB .shp: 4xx within 5 s, the store's folder does not grow,
    and GET /api/grids answers within 1 s all the while (real server, real sockets)."""
    bomb = _bomb(2 * GIB, declared)
    assert len(bomb) < 3_000_000
    path = _store(tmp_path, store_bytes)
    with _Uvicorn(path, tmp_path / "uvicorn.log") as server:
        assert httpx.get(server.url + "/api/grids", timeout=60).status_code == 200  # warm
        before = _folder_bytes(tmp_path)
        latencies: list[float] = []
        statuses: list[int] = []
        done = threading.Event()

        def poll() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while not done.is_set():
                    t = time.perf_counter()
                    statuses.append(http.get("/api/grids").status_code)
                    latencies.append(time.perf_counter() - t)
                    time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            time.sleep(0.2)
            t = time.perf_counter()
            r = httpx.post(
                server.url + "/api/plans",
                files={"file": ("bomb.zip", bomb, "application/zip")},
                headers=AUTH,
                timeout=120,
            )
            elapsed = time.perf_counter() - t
            time.sleep(0.3)
        finally:
            done.set()
            poller.join()
        after = _folder_bytes(tmp_path)
        uploads = list((tmp_path / "store.gpkg.uploads").glob("*/*"))
    err = _error(r, status)
    assert words in err["message"], err
    assert elapsed < 5, f"the bomb took {elapsed:.1f} s to refuse"
    assert latencies and max(latencies) < 1.0, f"GET /api/grids took up to {max(latencies):.2f} s"
    assert set(statuses) == {200}
    assert after - before < 1_000_000, f"the store's folder grew by {after - before} bytes"
    assert uploads == []  # nothing left in the upload folder


def test_zip_limits(client):
    """A zip within the ratio but over GRIDMAP_MAX_UNZIPPED_MB, and one with too many
    entries, are refused with 413 / 422 and say why."""
    app = create_app(
        settings=Settings(store_path=client.app.state.store.path, token=TOKEN, max_unzipped_mb=1)
    )
    with TestClient(app) as small:
        data = os.urandom(1_500_000)  # incompressible: ratio 1
        z = _zip([_stored("b.shp", data), _stored("b.dbf", b"\x03" + b"\0" * 40)])
        err = _error(small.post("/api/plans", files={"file": ("a.zip", z)}, headers=AUTH), 413)
        assert "GRIDMAP_MAX_UNZIPPED_MB" in err["message"] and err["code"] == "unzipped_too_large"
    many = _zip([_stored("b.shp", b"x")] + [_stored(f"f{i}.txt", b"") for i in range(10_001)])
    err = _error(client.post("/api/plans", files={"file": ("m.zip", many)}, headers=AUTH), 422)
    assert "10,002 entries" in err["message"]


# ================================================ 2. 4xx instead of 500
@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+09:00", "1899-12-31T23:59:59"]
)
def test_far_dates_are_refused_per_item(client, plan, when):
    good = sample_events(plan, 2, seed=3)
    bad = {**good[0], "event_id": "FAR", "reported_at": when}
    r = client.post("/api/events", json=[good[1], bad], headers=AUTH)
    assert r.status_code == 201, r.text  # the good item is kept
    body = r.json()
    assert body["accepted"] == [good[1]["event_id"]]
    (item,) = body["errors"]
    assert item["index"] == 1 and item["event_id"] == "FAR"
    assert item["errors"][0]["field"] == "reported_at"
    assert "outside the accepted range" in item["errors"][0]["message"]
    for field in ("deadline", "closed_at"):
        one = {**good[0], "event_id": "X", field: when}
        _error(client.post("/api/events", json=one, headers=AUTH), 422, "invalid_events")
    for path in ("/api/events", "/api/stats/grids"):
        err = _error(client.get(path, params={"start": when}), 422, "validation_error")
        assert "start" in err["message"]


def test_huge_plan_ids(client):
    big = "99999999999999999999"
    err = _error(client.get("/", params={"plan": big}), 404, "not_found")
    assert big in err["message"]
    _error(client.get("/", params={"plan": "abc"}), 422)
    _error(client.get("/", params={"plan": "7"}), 404)
    for path in (f"/api/plans/{big}", f"/api/grids?plan={big}", f"/api/events?plan={big}"):
        _error(client.get(path), 422)
    _error(client.post(f"/api/events?plan={big}", json={}, headers=AUTH), 422)
    _error(client.patch(f"/api/plans/{big}", json={"version": 1, "name": "x"}, headers=AUTH), 422)
    assert client.app.state.store.overlay(int(big), "flood") is None


def _deflated(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _bad_zips() -> dict[str, tuple[bytes, str]]:
    payload = b"shape data " * 5000
    dbf = _stored("b.dbf", b"\x03" + b"\0" * 40)
    body = bytearray(_deflated(payload))
    body[len(body) // 2 : len(body) // 2 + 8] = b"\xff" * 8
    corrupt = {"name": "b.shp", "data": bytes(body), "method": 8, "size": len(payload)}
    bad_crc = {"name": "b.shp", "data": _deflated(payload), "method": 8, "size": len(payload)}
    lzma = {"name": "b.shp", "data": os.urandom(200), "method": 14, "size": 5000, "crc": 0}
    bz2 = {"name": "b.shp", "data": os.urandom(200), "method": 12, "size": 5000, "crc": 0}
    return {
        "corrupt deflate": (_zip([{**corrupt, "crc": zlib.crc32(payload)}, dbf]), "damaged"),
        "bad crc": (_zip([{**bad_crc, "crc": 1234}, dbf]), "damaged"),
        "corrupt lzma": (_zip([lzma, dbf]), "damaged"),
        "corrupt bzip2": (_zip([bz2, dbf]), "damaged"),
        "encrypted": (_zip([{**_stored("b.shp", payload), "flags": 1}, dbf]), "encrypted"),
        "deflate64": (
            _zip([{**bad_crc, "method": 9, "crc": zlib.crc32(payload)}, dbf]),
            "Deflate64",
        ),
        "truncated": (_zip([_stored("b.shp", payload), dbf])[:-30], "not a readable zip"),
        "no central directory": (b"PK\x03\x04" + os.urandom(500), "not a readable zip"),
    }


@pytest.mark.parametrize("kind", list(_bad_zips()))
def test_bad_zips_get_4xx(client, kind):
    data, words = _bad_zips()[kind]
    err = _error(client.post("/api/plans", files={"file": ("x.zip", data)}, headers=AUTH), 422)
    assert words in err["message"], err
    assert not any(client.app.state.jobs.instance.dir.iterdir())


def test_same_event_id_on_two_server_processes(tmp_path, store_bytes, plan):
    """Clients post the same event ids to two servers on one store at the same moment:
    each id is stored once, the others are refused per item (never a 500)."""
    path = _store(tmp_path, store_bytes)
    events = sample_events(plan, 5, seed=5)
    rounds, per_server = 30, 2
    results: list[tuple[int, list[str]]] = []
    with (
        _Uvicorn(path, tmp_path / "a.log") as a,
        _Uvicorn(path, tmp_path / "b.log") as b,
        httpx.Client(timeout=60) as http,
    ):
        for url in (a.url, b.url):  # decode the plan in both before the race
            http.get(url + "/api/grids")
        for k in range(rounds):
            batch = [{**e, "event_id": f"R{k}-{e['event_id']}"} for e in events]
            barrier = threading.Barrier(2 * per_server)

            def post(url: str, batch: list = batch, barrier: threading.Barrier = barrier):
                barrier.wait()
                r = httpx.post(url + "/api/events", json=batch, headers=AUTH, timeout=60)
                return r.status_code, r.json().get("accepted", [])

            with ThreadPoolExecutor(2 * per_server) as pool:
                urls = [a.url, b.url] * per_server
                results += list(pool.map(post, urls))
    statuses = {s for s, _ in results}
    assert statuses <= {201, 422}, statuses
    accepted = [eid for _, ids in results for eid in ids]
    assert len(accepted) == len(set(accepted)) == rounds * len(events)
    store = Store(path)
    assert store.events_revision()[0] == rounds * len(events)
    store.close()


# ==================================================== 3. events ?plan=
def test_events_go_to_the_plan_asked_for(client, plan):
    store_plan(client.app.state.store, plan, "second plan")  # plan 2 is now the newest
    ev = sample_events(plan, 1, seed=9)[0]
    r = client.post("/api/events?plan=1", json=ev, headers=AUTH)
    assert r.status_code == 201 and r.json()["plan_id"] == 1, r.text
    assert client.app.state.store.event(ev["event_id"])["plan_id"] == 1
    r = client.post("/api/events", json={**ev, "event_id": "N2"}, headers=AUTH)
    assert r.json()["plan_id"] == 2
    _error(client.post("/api/events?plan=9", json={**ev, "event_id": "N9"}, headers=AUTH), 404)
    _error(client.post("/api/events?plan=x", json=ev, headers=AUTH), 422)


# ====================================== 4 and 8. several server processes
_DIE = """
import os, signal, sys
from api.jobs import Instance
from api.store import Store
store = Store(sys.argv[1])
me = Instance(store.uploads_dir)
store.create_job("partition", "x", job_id="deadjob", owner=me.id)
store.update_job("deadjob", status="running")
(me.dir / "deadjob").mkdir()
(me.dir / "deadjob" / "upload.zip").write_bytes(b"x" * 100_000)
print(me.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_second_server_leaves_running_jobs_alone(tmp_path, store_bytes):
    path = _store(tmp_path, store_bytes)
    first = create_app(settings=Settings(store_path=path, token=TOKEN))
    store = first.state.store
    mine = first.state.jobs.instance
    store.create_job("partition", "x", job_id="livejob", owner=mine.id)
    store.update_job("livejob", status="running", progress=0.3)
    (mine.dir / "livejob").mkdir()
    # a server process that dies (kill -9) in the middle of a job
    proc = subprocess.run(
        [sys.executable, "-c", _DIE, str(path)], cwd=REPO, capture_output=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    dead = proc.stdout.decode().strip()
    assert (store.uploads_dir / dead / "deadjob" / "upload.zip").exists()
    # the running server notices when the job is read
    j = TestClient(first).get("/api/jobs/deadjob").json()
    assert j["status"] == "failed"
    assert "stopped before the job ended" in j["error"] and dead.split("-")[-2] in j["error"]
    assert "owner" not in j
    # a second server starting on the store: the live job stays running, its upload stays
    second = create_app(settings=Settings(store_path=path, token=TOKEN))
    j = TestClient(second).get("/api/jobs/livejob").json()
    assert (j["status"], j["progress"]) == ("running", 0.3)
    assert (mine.dir / "livejob").is_dir()
    # the dead process's uploads and lock are gone
    assert not (store.uploads_dir / dead).exists()
    assert not (store.uploads_dir / f"{dead}.lock").exists()
    first.state.jobs.shutdown()
    second.state.jobs.shutdown()


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_leftover_uploads_removed_at_start_up(tmp_path, store_bytes):
    path = _store(tmp_path, store_bytes)
    proc = subprocess.run(
        [sys.executable, "-c", _DIE, str(path)], cwd=REPO, capture_output=True, timeout=120
    )
    dead = proc.stdout.decode().strip()
    assert (path.with_name("store.gpkg.uploads") / dead / "deadjob").is_dir()
    app = create_app(settings=Settings(store_path=path, token=TOKEN))
    uploads = app.state.store.uploads_dir
    assert sorted(p.name for p in uploads.iterdir()) == sorted(
        [app.state.jobs.instance.id, f"{app.state.jobs.instance.id}.lock"]
    )
    assert app.state.store.job("deadjob")["status"] == "failed"
    app.state.jobs.shutdown()
    assert not any(uploads.iterdir())  # a clean stop leaves nothing behind


def test_workers_of_one_uvicorn_share_a_store(tmp_path, store_bytes, plan):
    """``uvicorn --workers 2``: both processes serve; an upload's job is followed from
    either of them."""
    path = _store(tmp_path, store_bytes)
    town = _town().to_crs(4326).to_json().encode()
    log = tmp_path / "uvicorn.log"
    with _Uvicorn(path, log, WEB_CONCURRENCY="2") as server:
        r = httpx.post(
            server.url + "/api/plans",
            files={"file": ("t.geojson", town)},
            headers=AUTH,
            timeout=60,
        )
        assert r.status_code == 202, r.text
        with httpx.Client(base_url=server.url, timeout=30) as http:
            j = _wait_job(http, r.json()["job"])
        assert j["status"] == "done", j
    assert "Traceback" not in log.read_text()


# ==================================================== 5. job errors
def test_job_error_no_crs(client, tmp_path):
    data = _shapefile_zip(tmp_path, _town(), drop=(".prj",))
    r = client.post("/api/plans", files={"file": ("b.zip", data)}, headers=AUTH)
    j = _wait_job(client, r.json()["job"])
    assert j["status"] == "failed"
    assert "no coordinate reference system" in j["error"]
    assert ".prj" in j["error"] and "form field crs" in j["error"]  # how to fix it
    # with the form field crs it works
    r = client.post(
        "/api/plans", files={"file": ("b.zip", data)}, data={"crs": "EPSG:32652"}, headers=AUTH
    )
    assert _wait_job(client, r.json()["job"])["status"] == "done"


def test_job_error_coordinates_out_of_range(client):
    fc = json.loads(_town().to_json())  # metres, but GeoJSON means WGS 84
    fc.pop("crs", None)
    r = client.post(
        "/api/plans", files={"file": ("m.geojson", json.dumps(fc).encode())}, headers=AUTH
    )
    j = _wait_job(client, r.json()["job"])
    assert j["status"] == "failed"
    assert "out of range for EPSG:4326" in j["error"] and "longitude" in j["error"]
    assert "UTM" not in j["error"]


def test_job_error_far_outside_the_crs(client, tmp_path):
    town = _town()
    moved = town.set_geometry(town.geometry.translate(0, -20_000_000)).set_crs(
        32652, allow_override=True
    )
    data = _shapefile_zip(tmp_path, moved)
    r = client.post("/api/plans", files={"file": ("far.zip", data)}, headers=AUTH)
    j = _wait_job(client, r.json()["job"])
    assert j["status"] == "failed" and "EPSG:32652" in j["error"], j


def test_gbk_shapefile_without_cpg(client, tmp_path):
    town = _town()
    town["name"] = [f"林都{i}号楼" for i in range(len(town))]
    data = _shapefile_zip(tmp_path, town, drop=(".cpg",), encoding="gbk")
    err = _error(
        client.post("/api/plans", files={"file": ("gbk.zip", data)}, headers=AUTH),
        422,
        "unknown_encoding",
    )
    assert "GBK" in err["message"] and ".cpg" in err["message"] and "encoding" in err["message"]
    # telling the encoding stores the names exactly
    r = client.post(
        "/api/plans", files={"file": ("gbk.zip", data)}, data={"encoding": "GBK"}, headers=AUTH
    )
    j = _wait_job(client, r.json()["job"])
    assert j["status"] == "done", j
    fc = client.get(f"/api/buildings?bbox=-180,-90,180,90&limit=5000&plan={j['plan_id']}").json()
    assert {f["properties"]["name"] for f in fc["features"]} == set(town["name"])
    # a UTF-8 Shapefile without .cpg is read as UTF-8, not Latin-1
    data = _shapefile_zip(tmp_path, town, drop=(".cpg",))
    r = client.post("/api/plans", files={"file": ("utf8.zip", data)}, headers=AUTH)
    j = _wait_job(client, r.json()["job"])
    fc = client.get(f"/api/buildings?bbox=-180,-90,180,90&limit=5000&plan={j['plan_id']}").json()
    assert {f["properties"]["name"] for f in fc["features"]} == set(town["name"])
    # a wrong encoding is refused
    _error(
        client.post(
            "/api/plans", files={"file": ("g.zip", data)}, data={"encoding": "ascii"}, headers=AUTH
        ),
        422,
    )
    _error(
        client.post(
            "/api/plans",
            files={"file": ("g.zip", data)},
            data={"encoding": "klingon"},
            headers=AUTH,
        ),
        422,
    )


def test_job_error_huge_self_overlapping_footprint(client):
    town = _town()
    x0, y0, x1, y1 = town.total_bounds
    n = 200_000
    t = np.linspace(0, 14 * np.pi, n)
    r = np.random.default_rng(0).uniform(5, 250, n)  # winds 7 times, crossing itself
    ring = np.column_stack([(x0 + x1) / 2 + r * np.cos(t), (y0 + y1) / 2 + r * np.sin(t)])
    big = gpd.GeoDataFrame(
        {"id": ["BIG"], "households": [50]}, geometry=[shapely.Polygon(ring)], crs=town.crs
    )
    data = pd.concat([town, big], ignore_index=True).to_crs(4326).to_json().encode()
    start = time.monotonic()
    r = client.post("/api/plans", files={"file": ("big.geojson", data)}, headers=AUTH)
    j = _wait_job(client, r.json()["job"], timeout=120)
    assert j["status"] == "failed"
    assert "not a valid polygon" in j["error"] and "200,001 vertices" in j["error"], j
    assert f"footprint {len(town)}" in j["error"]
    assert time.monotonic() - start < 60


# ============================================== 6. no silent changes
@pytest.mark.parametrize("text", ["a\u0000b", "a\u0007b", "line\nbreak", "\ud800"])
def test_control_characters_refused(client, plan, text):
    code = plan.grids["grid_code"].iloc[0]
    bodies = [
        {"version": 1, "name": text},
        {"version": 1, "grids": [{"grid_code": code, "name": text}]},
        {"version": 1, "grids": [{"grid_code": code, "worker": text}]},
    ]
    for body in bodies:
        raw = json.dumps(body).encode()  # \\u escapes: the server sees exactly `text`
        r = client.patch(
            "/api/plans/1", content=raw, headers={**AUTH, "Content-Type": "application/json"}
        )
        err = _error(r, 422, "validation_error")
        assert "U+" in err["message"] or "unicode" in err["message"], err
    raw = json.dumps({"tiles_attribution": text}).encode()
    r = client.put(
        "/api/settings", content=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    _error(r, 422)
    assert client.get("/api/plans/1").json()["version"] == 1


def test_unusual_text_is_stored_exactly(client, plan):
    code = plan.grids["grid_code"].iloc[0]
    name = "林都 😀 e\u0301 \u200b\u202e ﷽ \uffff tab-free"
    comment = "first line\nsecond\tline"
    body = {
        "version": 1,
        "name": name,
        "grids": [{"grid_code": code, "worker": name}],
        "comment": comment,
    }
    r = client.patch("/api/plans/1", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert client.get("/api/plans/1").json()["name"] == name
    assert client.get(f"/api/grids/{code}").json()["properties"]["worker"] == name
    versions = client.get("/api/plans/1").json()["versions"]
    assert versions[-1]["comment"] == comment


def _multipart(parts: list[tuple[bytes, bytes | None, bytes]], boundary: bytes = b"xx") -> bytes:
    out = b""
    for name, filename, value in parts:
        disp = b'form-data; name="' + name + b'"'
        if filename is not None:
            disp += b'; filename="' + filename + b'"'
        out += (
            b"--" + boundary + b"\r\nContent-Disposition: " + disp + b"\r\n\r\n" + value + b"\r\n"
        )
    return out + b"--" + boundary + b"--\r\n"


def test_non_utf8_multipart_names(client):
    town = _town().to_crs(4326).to_json().encode()
    gbk = "林都小镇".encode("gbk")
    cases = [
        ([(b"name", None, gbk), (b"file", b"t.geojson", town)], "field 'name'"),
        ([(b"file", "小镇.geojson".encode("gbk"), town)], "file name"),
        ([("名".encode("gbk"), None, b"x"), (b"file", b"t.geojson", town)], "field name"),
    ]
    for parts, where in cases:
        r = client.post(
            "/api/plans",
            content=_multipart(parts),
            headers={**AUTH, "Content-Type": "multipart/form-data; boundary=xx"},
        )
        err = _error(r, 400, "bad_encoding")
        assert where in err["message"] and "UTF-8" in err["message"] or "utf-8" in err["message"]
    # declared as GBK, the same bytes are stored exactly
    r = client.post(
        "/api/plans",
        content=_multipart([(b"name", None, gbk), (b"file", b"t.geojson", town)]),
        headers={**AUTH, "Content-Type": "multipart/form-data; charset=gbk; boundary=xx"},
    )
    assert r.status_code == 202, r.text
    j = _wait_job(client, r.json()["job"])
    assert client.get(f"/api/plans/{j['plan_id']}").json()["name"] == "林都小镇"
    # UTF-8 names arrive as sent
    r = client.post(
        "/api/plans",
        files={"file": ("小镇.geojson", town)},
        data={"name": "a\u0000b"},
        headers=AUTH,
    )
    _error(r, 422, "validation_error")


def test_geojson_must_be_utf8(client):
    fc = _town().to_crs(4326)
    fc["name"] = "林都"
    data = fc.to_json(ensure_ascii=False).encode("gbk")
    err = _error(client.post("/api/plans", files={"file": ("g.geojson", data)}, headers=AUTH), 422)
    assert "not UTF-8" in err["message"]


# ======================================================== 7. OpenAPI
def test_openapi_documents_what_the_api_does(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "EventIn" in schemas and "reported_at" in schemas["EventIn"]["properties"]
    ref = json.dumps(spec["paths"]["/api/events"]["post"]["requestBody"])
    assert "#/components/schemas/EventIn" in ref
    for path, method in [
        ("/api/plans/{plan_id}", "patch"),
        ("/api/settings", "put"),
        ("/api/plans", "post"),
        ("/api/events", "post"),
        ("/api/events/{event_id}", "patch"),
        ("/api/users", "post"),
    ]:
        assert "413" in spec["paths"][path][method]["responses"], (path, method)
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/plans/{plan_id}"]["patch"]["security"] == [{"bearer": []}]
    start = spec["paths"]["/api/events"]["get"]["parameters"]
    assert any("pattern" in json.dumps(p["schema"]) for p in start if p["name"] == "start")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/plans/1", "GET, PATCH"),
        ("PUT", "/api/plans/1", "GET, PATCH"),
        ("OPTIONS", "/api/plans/1", "GET, PATCH"),
        ("DELETE", "/api/plans", "GET, POST"),
        ("DELETE", "/api/settings", "GET, PUT"),
        ("PUT", "/api/events/E1", "GET, PATCH"),
        ("POST", "/static/js/gridmap.js", "GET, HEAD"),
    ],
)
def test_405_allow_header(client, method, path, allow):
    r = client.request(method, path, headers=AUTH)
    _error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


@pytest.mark.parametrize("value", ["0.5", "1717200000", "2025-13-01", "2025-06-01T25:00", "now"])
def test_times_are_iso_8601_only(client, value):
    for path in ("/api/events", "/api/stats/grids"):
        err = _error(client.get(path, params={"start": value}), 422, "validation_error")
        assert "start" in err["message"]
    assert client.get("/api/events", params={"start": "2025-06-01"}).status_code == 200
    assert client.get("/api/events", params={"start": "2025-06-01T10:00:00Z"}).status_code == 200
