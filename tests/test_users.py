"""Users, roles, scopes and the audit log of the web app (issue 16).

Roles: viewer reads; worker reports and handles events in its scope; planner edits
plans in its scope; admin does everything. A scope is a code prefix checked on what
the server knows (an event's point located in the plan's grids, the stored grids of an
edit). Every write is in the append-only audit log.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest
import shapely

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from api.demo import lattice_plan, sample_events  # noqa: E402
from api.main import create_app, store_plan  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store import Store  # noqa: E402
from gridmap.cli import main  # noqa: E402

TOKEN = "bootstrap-secret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
COMMUNITY_1 = "230717001001"  # grids 230717001001001-006
COMMUNITY_2 = "230717001002"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def plan():
    return lattice_plan(1000, 600)


@pytest.fixture(scope="module")
def store_bytes(plan, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("users") / "base.gpkg"
    store = Store(path)
    store_plan(store, plan, "demo town")
    store.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.read_bytes()


def _client(tmp_path: Path, store_bytes: bytes, **settings) -> TestClient:
    path = tmp_path / "store.gpkg"
    path.write_bytes(store_bytes)
    values = {"store_path": path, "token": TOKEN, **settings}
    return TestClient(create_app(settings=Settings(**values)))


@pytest.fixture
def client(tmp_path, store_bytes):
    with _client(tmp_path, store_bytes) as c:
        yield c


def _user(c: TestClient, name: str, role: str, scope: str | None = None) -> dict[str, str]:
    """Add a user through the API (as the bootstrap admin); return its auth header."""
    r = c.post("/api/users", json={"name": name, "role": role, "scope": scope}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return _bearer(r.json()["token"])


def _point_in(plan, code: str) -> tuple[float, float]:
    wgs = plan.grids_wgs84().set_index("grid_code")
    p = shapely.point_on_surface(wgs.geometry.loc[code])
    return p.x, p.y


def _event(plan, code: str, **extra) -> dict:
    lon, lat = _point_in(plan, code)
    return {
        "reported_at": "2025-06-01T09:30:00+08:00",
        "category": "safety_hazard",
        "lon": lon,
        "lat": lat,
        **extra,
    }


def _error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text[:600]
    err = resp.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    return err


# ----------------------------------------------------------------------- CLI
def test_cli_users_add_list_revoke(tmp_path, store_bytes, plan, capsys):
    path = tmp_path / "store.gpkg"
    path.write_bytes(store_bytes)
    args = ["users", "add", "li", "--role", "worker", "--scope", COMMUNITY_1, "--store", str(path)]
    assert main(args) == 0
    token = capsys.readouterr().out.split()[-1]
    assert token.startswith("gm_") and len(token) > 30
    # the store keeps only the SHA-256 of the token
    wal = Path(str(path) + "-wal")
    raw = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert token.encode() not in raw
    con = sqlite3.connect(path)
    stored = con.execute("SELECT token_sha256 FROM users WHERE name = 'li'").fetchone()[0]
    con.close()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    # a taken name, a bad scope or role: one-line errors, exit code 2
    assert main(["users", "add", "li", "--role", "viewer", "--store", str(path)]) == 2
    assert (
        main(["users", "add", "x", "--role", "worker", "--scope", "1234", "--store", str(path)])
        == 2
    )
    assert "scope '1234'" in capsys.readouterr().err
    assert main(["users", "add", "GRIDMAP_TOKEN", "--role", "admin", "--store", str(path)]) == 2
    assert main(["users", "list", "--store", str(path)]) == 0
    listed = capsys.readouterr().out
    assert "li" in listed and "worker" in listed and COMMUNITY_1 in listed and "active" in listed
    # the CLI's token works on a server over that store ...
    with TestClient(create_app(settings=Settings(store_path=path, token=None))) as c:
        r = c.post("/api/events", json=_event(plan, COMMUNITY_1 + "002"), headers=_bearer(token))
        assert r.status_code == 201, r.text
        # ... until the user is revoked (then nobody can write on this server)
        assert main(["users", "revoke", "li", "--store", str(path)]) == 0
        r = c.post("/api/events", json=_event(plan, COMMUNITY_1 + "002"), headers=_bearer(token))
        _error(r, 403, "writes_disabled")
    assert main(["users", "revoke", "li", "--store", str(path)]) == 2
    assert main(["users", "revoke", "nobody", "--store", str(path)]) == 2
    assert main(["users", "list", "--store", str(path)]) == 0
    assert "revoked" in capsys.readouterr().out
    # the audit log says who added and revoked
    actions = [(e["who"], e["action"]) for e in Store(path).audit()]
    assert ("cli:" in actions[0][0]) and actions[0][1] == "user.revoke"
    assert any(a == "user.add" and w.startswith("cli:") for w, a in actions)


# --------------------------------------------------------------------- roles
def test_viewer_reads_only(client, plan):
    viewer = _user(client, "kan", "viewer")
    assert client.get("/api/grids", headers=viewer).status_code == 200
    err = _error(
        client.post("/api/events", json=_event(plan, COMMUNITY_1 + "001"), headers=viewer),
        403,
        "forbidden_role",
    )
    assert "viewer" in err["message"] and "worker" in err["message"]
    _error(client.patch("/api/plans/1", json={"version": 1, "name": "x"}, headers=viewer), 403)
    _error(client.put("/api/settings", json={"lang": "en"}, headers=viewer), 403)
    _error(client.get("/api/audit", headers=viewer), 403)
    _error(client.get("/api/users", headers=viewer), 403)
    assert client.get("/api/events").json()["total"] == 0


def test_worker_in_and_out_of_scope(client, plan):
    worker = _user(client, "li", "worker", COMMUNITY_1)
    inside = _event(plan, COMMUNITY_1 + "003", event_id="IN1")
    r = client.post("/api/events", json=inside, headers=worker)
    assert r.status_code == 201, r.text
    outside = _event(plan, COMMUNITY_2 + "003", event_id="OUT1")
    err = _error(client.post("/api/events", json=outside, headers=worker), 403, "out_of_scope")
    assert COMMUNITY_1 in err["message"]
    assert COMMUNITY_2 + "003" in err["items"][0]["errors"][0]["message"]
    # a batch keeps the in-scope events and reports the others per item
    batch = [_event(plan, COMMUNITY_1 + "001", event_id="IN2"), {**outside, "event_id": "OUT2"}]
    r = client.post("/api/events", json=batch, headers=worker)
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == ["IN2"]
    assert [e["index"] for e in r.json()["errors"]] == [1]
    ids = {f["properties"]["event_id"] for f in client.get("/api/events").json()["features"]}
    assert ids == {"IN1", "IN2"}
    # the worker may not edit plans or settings
    _error(client.patch("/api/plans/1", json={"version": 1, "name": "x"}, headers=worker), 403)
    _error(client.put("/api/settings", json={"lang": "en"}, headers=worker), 403)
    # the audit log lists the worker's posts by name
    entries = client.get("/api/audit", params={"user": "li"}, headers=ADMIN).json()["entries"]
    assert [e["action"] for e in entries] == ["events.add", "events.add"]
    assert entries[-1]["after"]["event_ids"] == ["IN1"]
    assert entries[0]["after"]["event_ids"] == ["IN2"]
    assert all(e["who"] == "li" and e["role"] == "worker" for e in entries)
    assert entries[0]["client"] == "testclient"
    assert entries[0]["target"] == "plan/1/events"


def test_scope_is_checked_on_the_geometry(client, plan):
    """A street-scoped worker may post anywhere in the street, a grid-scoped one only
    in their grid; the grid comes from the point, never from the request."""
    street = _user(client, "jie", "worker", "230717001")
    grid = _user(client, "ge", "worker", COMMUNITY_2 + "004")
    for code in (COMMUNITY_1 + "001", COMMUNITY_2 + "006"):
        assert (
            client.post("/api/events", json=_event(plan, code), headers=street).status_code == 201
        )
    assert (
        client.post("/api/events", json=_event(plan, COMMUNITY_2 + "004"), headers=grid).status_code
        == 201
    )
    _error(client.post("/api/events", json=_event(plan, COMMUNITY_2 + "005"), headers=grid), 403)
    # a district scope that is not the plan's
    other = _user(client, "wai", "worker", "110101")
    _error(client.post("/api/events", json=_event(plan, COMMUNITY_1 + "001"), headers=other), 403)


def test_worker_handles_events_in_scope(client, plan):
    worker = _user(client, "li", "worker", COMMUNITY_1)
    other = _user(client, "wang", "worker", COMMUNITY_2)
    client.post("/api/events", json=_event(plan, COMMUNITY_1 + "002", event_id="H1"), headers=ADMIN)
    ev = client.get("/api/events/H1").json()
    assert ev["status"] == "open" and ev["revision"] == 0 and ev["grid_code"] == COMMUNITY_1 + "002"
    # a worker of another community may not handle it
    _error(
        client.patch("/api/events/H1", json={"status": "closed"}, headers=other),
        403,
        "out_of_scope",
    )
    r = client.patch(
        "/api/events/H1",
        json={"status": "已办结", "closed_at": "2025-06-01T12:00:00+08:00", "revision": 0},
        headers=worker,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["revision"] == 1
    assert r.json()["closed_at"] == "2025-06-01T12:00:00+08:00"
    # stale revision: 409; closing before the report: 422; unknown: 404
    _error(
        client.patch("/api/events/H1", json={"status": "open", "revision": 0}, headers=worker), 409
    )
    _error(
        client.patch(
            "/api/events/H1", json={"closed_at": "2025-05-01T00:00:00+08:00"}, headers=worker
        ),
        422,
    )
    _error(client.patch("/api/events/NOPE", json={"status": "open"}, headers=worker), 404)
    _error(client.patch("/api/events/H1", json={}, headers=worker), 422, "nothing_to_change")
    # the GeoJSON and the statistics see the change
    props = client.get("/api/events").json()["features"][0]["properties"]
    assert props["status"] == "closed"
    st = client.get("/api/stats/grids").json()
    assert sum(g["closed"] for g in st["grids"]) == 1
    entry = client.get("/api/audit", params={"action": "event.update"}, headers=ADMIN).json()
    e = entry["entries"][0]
    assert e["who"] == "li" and e["target"] == "events/H1"
    assert e["before"] == {"status": "open", "closed_at": None, "revision": 0}
    assert e["after"]["status"] == "closed" and e["after"]["revision"] == 1


def test_planner_edits_in_scope(client, plan):
    planner = _user(client, "zhang", "planner", COMMUNITY_1)
    ok = {"version": 1, "grids": [{"grid_code": COMMUNITY_1 + "002", "worker": "王芳"}]}
    r = client.patch("/api/plans/1", json=ok, headers=planner)
    assert r.status_code == 200, r.text
    # a grid of the other community, even together with one of its own: 403, no change
    bad = {
        "version": 2,
        "grids": [
            {"grid_code": COMMUNITY_1 + "003", "worker": "a"},
            {"grid_code": COMMUNITY_2 + "001", "worker": "b"},
        ],
    }
    err = _error(client.patch("/api/plans/1", json=bad, headers=planner), 403, "out_of_scope")
    assert err["grids"] == [COMMUNITY_2 + "001"]
    # renaming the plan touches every grid: only for a scope holding them all
    _error(client.patch("/api/plans/1", json={"version": 2, "name": "mine"}, headers=planner), 403)
    district = _user(client, "zhao", "planner", "230717")
    r = client.patch("/api/plans/1", json={"version": 2, "name": "林都"}, headers=district)
    assert r.status_code == 200 and r.json()["version"] == 3
    assert client.get("/api/plans/1").json()["version"] == 3
    # a planner does not report events or change settings
    _error(client.post("/api/events", json=_event(plan, COMMUNITY_1 + "002"), headers=planner), 403)
    _error(client.put("/api/settings", json={"lang": "en"}, headers=planner), 403)
    # the audit log has the versions before and after, and the grids
    edits = client.get("/api/audit", params={"action": "plan.edit"}, headers=ADMIN).json()
    first, second = edits["entries"][1], edits["entries"][0]
    assert (first["who"], first["before"], first["after"]) == (
        "zhang",
        {"version": 1},
        {"version": 2, "grids": [COMMUNITY_1 + "002"]},
    )
    assert second["who"] == "zhao" and second["before"] == {"version": 2, "name": "demo town"}
    assert second["after"] == {"version": 3, "name": "林都"}


def test_planner_upload_scope(client):
    community = _user(client, "zhang", "planner", COMMUNITY_1)
    files = {"file": ("a.geojson", b'{"type": "FeatureCollection", "features": []}')}
    _error(client.post("/api/plans", files=files, headers=community), 403, "out_of_scope")
    district = _user(client, "zhao", "planner", "230717")
    err = _error(
        client.post("/api/plans", files=files, data={"admin_code": "110101"}, headers=district),
        403,
        "out_of_scope",
    )
    assert "230717" in err["message"]
    r = client.post("/api/plans", files=files, headers=district)
    assert r.status_code == 202, r.text
    audit = client.get("/api/audit", params={"user": "zhao"}, headers=ADMIN).json()["entries"]
    assert audit[0]["action"] == "partition.submit"
    assert audit[0]["after"]["file"] == "a.geojson"
    _error(client.post("/api/plans", files=files, headers=_user(client, "w", "worker")), 403)


def test_admin_user_and_settings(client, plan):
    admin = _user(client, "boss", "admin")
    r = client.put("/api/settings", json={"lang": "en", "tianditu_key": "abc123"}, headers=admin)
    assert r.status_code == 200
    r = client.post("/api/users", json={"name": "new", "role": "viewer"}, headers=admin)
    assert r.status_code == 201 and r.json()["token"].startswith("gm_")
    names = [u["name"] for u in client.get("/api/users", headers=admin).json()]
    assert names == ["boss", "new"]
    assert all("token" not in u for u in client.get("/api/users", headers=admin).json())
    # names are never reused; bad roles and scopes are refused
    _error(client.post("/api/users", json={"name": "new", "role": "viewer"}, headers=admin), 422)
    _error(client.post("/api/users", json={"name": "x", "role": "king"}, headers=admin), 422)
    _error(
        client.post(
            "/api/users", json={"name": "x", "role": "worker", "scope": "12345"}, headers=admin
        ),
        422,
    )
    r = client.post("/api/users/new/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["revoked"]
    _error(client.post("/api/users/new/revoke", headers=admin), 422, "invalid_user")
    _error(client.post("/api/users/ghost/revoke", headers=admin), 404)
    settings = client.get("/api/audit", params={"action": "settings.update"}, headers=ADMIN).json()
    e = settings["entries"][0]
    assert e["who"] == "boss" and e["after"] == {"lang": "en", "tianditu_key": "(set)"}
    assert "abc123" not in str(e)  # secrets are not copied into the log


def test_bootstrap_token_and_writes_without_it(tmp_path, store_bytes, plan):
    with _client(tmp_path, store_bytes) as c:
        r = c.post("/api/events", json=_event(plan, COMMUNITY_1 + "001"), headers=ADMIN)
        assert r.status_code == 201
        e = c.get("/api/audit", headers=ADMIN).json()["entries"][0]
        assert (e["who"], e["role"], e["action"]) == ("GRIDMAP_TOKEN", "admin", "events.add")
        worker = _user(c, "li", "worker")
    # no GRIDMAP_TOKEN: users' tokens still write, the old token does not
    with TestClient(create_app(settings=Settings(store_path=tmp_path / "store.gpkg"))) as c:
        assert c.get("/api/settings").json()["writes_enabled"] is True
        r = c.post("/api/events", json=_event(plan, COMMUNITY_1 + "001"), headers=worker)
        assert r.status_code == 201, r.text
        _error(c.post("/api/events", json=_event(plan, COMMUNITY_1 + "001"), headers=ADMIN), 403)
        _error(c.post("/api/events", json=_event(plan, COMMUNITY_1 + "001")), 401, "missing_token")


def test_private_reads_with_user_tokens(tmp_path, store_bytes):
    with _client(tmp_path, store_bytes, private_reads=True) as c:
        viewer = _user(c, "kan", "viewer")
        _error(c.get("/api/grids"), 401)
        assert c.get("/api/grids", headers=viewer).status_code == 200
        token = viewer["Authorization"].split()[-1]
        assert c.post("/login", data={"token": token}, follow_redirects=False).status_code == 303
        assert c.get("/").status_code == 200
        c.post("/api/users/kan/revoke", headers=ADMIN)
        assert c.get("/").status_code == 401  # the cookie of a revoked user opens nothing
        _error(c.get("/api/grids", headers=viewer), 401)


# --------------------------------------------------------------------- audit
def test_audit_log_query_and_append_only(client, plan):
    worker = _user(client, "li", "worker")
    t0 = time.time()
    for i in range(3):
        r = client.post(
            "/api/events", json=_event(plan, COMMUNITY_1 + "001", event_id=f"A{i}"), headers=worker
        )
        assert r.status_code == 201
    log = client.get("/api/audit", headers=ADMIN).json()
    assert [e["action"] for e in log["entries"][:4]] == ["events.add"] * 3 + ["user.add"]
    assert log["truncated"] is False
    limited = client.get("/api/audit", params={"limit": 2}, headers=ADMIN).json()
    assert len(limited["entries"]) == 2 and limited["truncated"] is True
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t0 - 1))
    assert (
        len(
            client.get("/api/audit", params={"since": since, "user": "li"}, headers=ADMIN).json()[
                "entries"
            ]
        )
        == 3
    )
    future = client.get("/api/audit", params={"since": "2199-01-01"}, headers=ADMIN).json()
    assert future["entries"] == []
    _error(client.get("/api/audit", params={"since": "0.5"}, headers=ADMIN), 422)
    _error(client.get("/api/audit", params={"limit": 0}, headers=ADMIN), 422)
    _error(client.get("/api/audit"), 401)
    _error(client.get("/api/audit", headers=worker), 403, "forbidden_role")
    # no API changes it
    for method in ("post", "put", "patch", "delete"):
        r = client.request(method.upper(), "/api/audit", headers=ADMIN)
        _error(r, 405)
        assert r.headers["allow"] == "GET"
    # nor does SQL: the store refuses UPDATE and DELETE
    con = sqlite3.connect(client.app.state.store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET who = 'nobody'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit")
    con.close()
    assert len(client.get("/api/audit", headers=ADMIN).json()["entries"]) == 5  # + plan.create


def test_every_write_is_audited(client, plan):
    """Each kind of write leaves exactly one entry, in the write's own transaction."""
    before = len(client.app.state.store.audit(limit=10_000))
    client.post("/api/events", json=sample_events(plan, 3), headers=ADMIN)
    client.patch("/api/plans/1", json={"version": 1, "name": "x"}, headers=ADMIN)
    client.put("/api/settings", json={"lang": "en"}, headers=ADMIN)
    client.post("/api/users", json={"name": "a", "role": "viewer"}, headers=ADMIN)
    client.post("/api/users/a/revoke", headers=ADMIN)
    # refused writes change nothing and are not entries
    client.patch("/api/plans/1", json={"version": 1, "name": "late"}, headers=ADMIN)
    client.post("/api/events", json={"lon": 0}, headers=ADMIN)
    actions = [e["action"] for e in client.app.state.store.audit(limit=10_000)]
    assert len(actions) - before == 5
    assert actions[:5] == ["user.revoke", "user.add", "settings.update", "plan.edit", "events.add"]
