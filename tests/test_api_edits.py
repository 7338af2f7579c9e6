"""Tests of plan editing over the web: POST /api/plans/{id}/edits, versions, uploads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import shapely

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import gridmap  # noqa: E402
from api.demo import lattice_plan  # noqa: E402
from api.main import create_app, store_plan  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store import Store, plan_from_bytes  # noqa: E402

TOKEN = "edit-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def plan():
    """A partitioned synthetic plan (two communities, a main road)."""
    return lattice_plan(1000, 600)


@pytest.fixture(scope="module")
def store_bytes(plan, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("edit-store") / "base.gpkg"
    store = Store(path)
    store_plan(store, plan, "edit town")
    store.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.read_bytes()


@pytest.fixture
def client(tmp_path, store_bytes):
    path = tmp_path / "store.gpkg"
    path.write_bytes(store_bytes)
    app = create_app(settings=Settings(store_path=path, token=TOKEN))
    with TestClient(app) as c:
        yield c


def _error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text[:800]
    body = resp.json()["error"]
    if code is not None:
        assert body["code"] == code, body
    return body


def _pair(plan):
    """Two neighbouring grids of one community and the three buildings of the first
    nearest to the second."""
    g = plan.grids[plan.grids["kind"] != "special"]
    for src in g["grid_code"]:
        nb = gridmap.neighbours(plan, src)
        nb = nb[nb["kind"] != "special"]
        if len(nb):
            dst = nb["grid_code"].iloc[0]
            b = plan.buildings
            geom = plan.grids.set_index("grid_code").at[dst, "geometry"]
            mine = b[(b["grid_code"] == src) & (b["households"] > 0)]
            ids = mine.assign(d=mine.geometry.distance(geom)).nsmallest(3, "d")["building_id"]
            return src, dst, ids.tolist()
    raise AssertionError("no neighbouring grids")


def _edit(c, op, args, version=1, reason="test", headers=AUTH):
    return c.post(
        "/api/plans/1/edits",
        json={"version": version, "op": op, "args": args, "reason": reason},
        headers=headers,
    )


def _grid_totals(c) -> dict[str, int]:
    fc = c.get("/api/grids", params={"plan": 1}).json()
    return {f["properties"]["grid_code"]: f["properties"]["households"] for f in fc["features"]}


# ---------------------------------------------------------------------- edits
def test_move_changes_both_totals_by_exactly_the_moved_households(client, plan):
    src, dst, ids = _pair(plan)
    hh = int(plan.buildings.set_index("building_id").loc[ids, "households"].sum())
    before = _grid_totals(client)
    r = _edit(client, "move_buildings", {"ids": ids, "to_grid": dst}, reason="entrance")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan_id"] == 1 and body["version"] == 2 and body["op"] == "move_buildings"
    assert body["reason"] == "entrance" and body["added"] == [] and body["removed"] == []
    ch = {c["code"]: c for c in body["changed"]}
    assert set(ch) == {src, dst}
    assert ch[src]["households"] == before[src] - hh
    assert ch[dst]["households"] == before[dst] + hh
    for c in ch.values():
        assert set(c) >= {"code", "households", "min", "max", "in_range", "violations"}
        assert c["in_range"] == (c["min"] <= c["households"] <= c["max"])
        assert ("range" in c["violations"]) == (not c["in_range"])
    after = _grid_totals(client)
    assert after[src] == before[src] - hh and after[dst] == before[dst] + hh
    assert {k: v for k, v in after.items() if k not in (src, dst)} == {
        k: v for k, v in before.items() if k not in (src, dst)
    }
    assert sum(after.values()) == sum(before.values())
    assert client.get("/api/plans/1").json()["version"] == 2
    # the buildings moved in the published layer too
    feats = client.get("/api/buildings", params={"plan": 1, "grid": dst}).json()["features"]
    assert set(ids) <= {f["properties"]["building_id"] for f in feats}
    # the stored version (a delta) rebuilds the same plan, e.g. for the download
    data = client.get("/api/plans/1/gpkg", params={"version": 2}).content
    back = plan_from_bytes(data)
    got = back.grids.set_index("grid_code")["households"].to_dict()
    assert got == after
    assert [h["op"] for h in back.history][-1] == "move_buildings"


def test_every_op_and_the_version_history(client, plan):
    src, dst, ids = _pair(plan)
    v = 1
    r = _edit(client, "merge_grids", {"a": src, "b": dst}, v, "one worker")
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == [dst] and r.json()["changed"][0]["code"] == src
    v = r.json()["version"]
    r = _edit(client, "split_grid", {"code": src, "n": 2}, v, "split again")
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted([c["code"] for c in body["changed"]]) == sorted([src, dst])
    assert body["added"] == [dst]  # the merged-away code comes back
    v = body["version"]
    r = _edit(client, "lock_grids", {"codes": [src]}, v, "agreed")
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    e = _error(_edit(client, "merge_grids", {"a": src, "b": dst}, v), 422, "edit_refused")
    assert "locked" in e["message"]
    r = _edit(client, "replan", {"community_code": src[6:12]}, v, "tidy")
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    r = _edit(client, "unlock_grids", {}, v, "free")
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    r = _edit(client, "undo", {}, v, "oops")
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    r = _edit(client, "redo", {}, v, "after all")
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    r = _edit(client, "redo", {}, v)
    assert "nothing to redo" in _error(r, 422, "edit_refused")["message"]
    versions = client.get("/api/plans/1/versions").json()
    assert [x["version"] for x in versions] == list(range(1, v + 1))
    assert [x["op"] for x in versions] == [
        "create", "merge_grids", "split_grid", "lock_grids", "replan", "unlock_grids",
        "undo", "redo",
    ]  # fmt: skip
    assert versions[1]["reason"] == "one worker" and versions[1]["actor"] == "GRIDMAP_TOKEN"
    assert all(set(x) == {"version", "at", "actor", "op", "reason"} for x in versions)
    # undo all the way back: the plan has the codes it started with
    for _ in range(5):  # unlock, replan, lock, split, merge
        r = _edit(client, "undo", {}, v)
        assert r.status_code == 200, r.text
        v = r.json()["version"]
    assert _error(_edit(client, "undo", {}, v), 422, "edit_refused")
    assert _grid_totals(client) == plan.grids.set_index("grid_code")["households"].to_dict()
    # every edit is in the audit log with its op and reason
    audit = client.get("/api/audit", params={"action": "plan.edit"}, headers=AUTH).json()
    ops = [a["after"]["op"] for a in audit["entries"]]
    assert ops.count("undo") == 6 and "merge_grids" in ops
    # an old version's grids, for a side-by-side comparison
    fc = client.get("/api/plans/1/versions/2/grids").json()
    assert dst not in {f["properties"]["grid_code"] for f in fc["features"]}
    fc1 = client.get("/api/plans/1/versions/1/grids").json()
    assert len(fc1["features"]) == len(plan.grids)
    _error(client.get("/api/plans/1/versions/999/grids"), 404, "not_found")


def test_polygon_and_units_arguments(client, plan):
    src, dst, ids = _pair(plan)
    b = plan.buildings[plan.buildings["building_id"].isin(ids)]
    area = gridmap.to_wgs84(b.assign(geometry=b.buffer(2.0))).union_all()
    poly = shapely.geometry.mapping(shapely.convex_hull(area))
    r = _edit(client, "move_buildings", {"polygon": poly, "to_grid": dst[-6:]})
    assert r.status_code == 200, r.text
    assert {c["code"] for c in r.json()["changed"]} >= {dst}
    r = _edit(
        client, "move_buildings", {"units": [ids[0], [1]], "to_grid": src}, r.json()["version"]
    )
    assert "not split by units" in _error(r, 422, "edit_refused")["message"]


def test_conflict_auth_and_bad_arguments(client, plan, tmp_path):
    src, dst, ids = _pair(plan)
    ok = _edit(client, "move_buildings", {"ids": ids, "to_grid": dst})
    assert ok.status_code == 200
    # a second tab still on version 1
    e = _error(_edit(client, "move_buildings", {"ids": ids, "to_grid": src}), 409)
    assert e["code"] == "version_conflict" and e["current_version"] == 2
    # tokens and roles
    _error(_edit(client, "undo", {}, 2, headers={}), 401, "missing_token")
    _error(_edit(client, "undo", {}, 2, headers={"Authorization": "Bearer nope"}), 403)
    store: Store = client.app.state.store
    viewer = store.add_user("vera", "viewer")
    worker = store.add_user("wang", "worker")
    planner = store.add_user("li", "planner", scope=src[:12])
    other = store.add_user("zhao", "planner", scope="230717009")
    for tok in (viewer, worker):
        r = _edit(client, "undo", {}, 2, headers={"Authorization": f"Bearer {tok}"})
        _error(r, 403, "forbidden_role")
    r = _edit(client, "undo", {}, 2, headers={"Authorization": f"Bearer {other}"})
    _error(r, 403, "out_of_scope")
    assert client.get("/api/plans/1").json()["version"] == 2  # nothing was saved
    r = _edit(client, "undo", {}, 2, headers={"Authorization": f"Bearer {planner}"})
    assert r.status_code == 200, r.text
    assert client.get("/api/plans/1/versions").json()[-1]["actor"] == "li"
    # unknown op, missing and unknown arguments, wrong types: 422 naming the argument
    e = _error(_edit(client, "paint", {}, 3), 422, "unknown_op")
    assert "move_buildings" in e["message"]
    e = _error(_edit(client, "merge_grids", {"a": src}, 3), 422, "invalid_args")
    assert "args.b" in e["message"]
    e = _error(_edit(client, "merge_grids", {"a": src, "b": dst, "c": 1}, 3), 422)
    assert "args.c" in e["message"]
    e = _error(_edit(client, "split_grid", {"code": src, "n": "two"}, 3), 422)
    assert "args.n" in e["message"]
    e = _error(_edit(client, "move_buildings", {"to_grid": dst}, 3), 422, "invalid_args")
    assert "exactly one of" in e["message"]
    e = _error(_edit(client, "move_buildings", {"ids": ["nope"], "to_grid": dst}, 3), 422)
    assert e["code"] == "edit_refused" and "nope" in e["message"]
    e = _error(_edit(client, "merge_grids", {"a": src, "b": "999999999999999"}, 3), 422)
    assert "no grid" in e["message"]
    r = client.post("/api/plans/1/edits", json={"op": "undo"}, headers=AUTH)
    assert "version" in _error(r, 422)["message"]
    r = client.post("/api/plans/9/edits", json={"version": 1, "op": "undo"}, headers=AUTH)
    _error(r, 404, "not_found")
    assert client.get("/api/plans/1").json()["version"] == 3


def test_two_tabs_at_once_one_wins(client, plan):
    src, dst, ids = _pair(plan)
    codes = []

    def go(target):
        r = _edit(client, "move_buildings", {"ids": ids[:1], "to_grid": target})
        codes.append(r.status_code)

    threads = [threading.Thread(target=go, args=(t,)) for t in (dst, dst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]


# -------------------------------------------------------------------- uploads
def test_upload_a_notebook_version(client, plan, tmp_path):
    src, dst, ids = _pair(plan)
    edited, _ = gridmap.move_buildings(plan, dst, ids=ids, reason="in the notebook")
    path = edited.to_file(tmp_path / "plan.gpkg")
    with path.open("rb") as fh:
        r = client.post(
            "/api/plans/1/versions",
            files={"file": ("plan.gpkg", fh, "application/geopackage+sqlite3")},
            data={"version": "1", "reason": "from the notebook"},
            headers=AUTH,
        )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["op"] == "upload"
    assert r.json()["reason"] == "from the notebook"
    totals = _grid_totals(client)
    assert totals == edited.grids.set_index("grid_code")["households"].to_dict()
    # the notebook's undo log came along: undo over the web
    r = _edit(client, "undo", {}, 2)
    assert r.status_code == 200, r.text
    assert _grid_totals(client) == plan.grids.set_index("grid_code")["households"].to_dict()
    # stale version
    with path.open("rb") as fh:
        r = client.post(
            "/api/plans/1/versions",
            files={"file": ("plan.gpkg", fh)},
            data={"version": "1"},
            headers=AUTH,
        )
    _error(r, 409, "version_conflict")


def test_upload_a_broken_plan_lists_its_errors(client, plan, tmp_path):
    g = plan.grids.copy()
    g.loc[g.index[0], "households"] += 7  # does not add up
    g.loc[g.index[1], "geometry"] = g.geometry.iloc[1].buffer(30)  # overlaps its neighbours
    bad = gridmap.Plan(
        grids=g, buildings=plan.buildings, crs=plan.crs, splits=plan.splits,
        communities=plan.communities,
    )  # fmt: skip
    path = bad.to_file(tmp_path / "bad.gpkg")
    with path.open("rb") as fh:
        r = client.post("/api/plans/1/versions", files={"file": ("bad.gpkg", fh)}, headers=AUTH)
    e = _error(r, 422, "invalid_plan")
    checks = {x["check"] for x in e["errors"]}
    assert {"households_mismatch", "overlap"} <= checks
    # not a plan at all
    junk = Path(tmp_path / "junk.gpkg")
    junk.write_bytes(b"not a geopackage")
    with junk.open("rb") as fh:
        r = client.post("/api/plans/1/versions", files={"file": ("j.gpkg", fh)}, headers=AUTH)
    _error(r, 422, "invalid_plan")
    r = client.post("/api/plans/1/versions", data={"reason": "x"}, headers=AUTH)
    _error(r, 422)
    with path.open("rb") as fh:
        r = client.post("/api/plans/1/versions", files={"file": ("bad.gpkg", fh)})
    _error(r, 401)
    assert client.get("/api/plans/1").json()["version"] == 1
