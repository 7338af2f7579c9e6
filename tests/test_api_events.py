"""The six-step event loop through the API: PATCH steps, history, KPIs, the list view."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from api.demo import lattice_plan, sample_events  # noqa: E402
from api.main import create_app, store_plan  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store import Store  # noqa: E402

TOKEN = "loop-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOOP = [
    ("accepted", "2025-06-01T09:00:00+08:00", None, "受理：路灯不亮"),
    ("assigned", "2025-06-01T09:30:00+08:00", "王芳", None),
    ("handled", "2025-06-01T15:00:00+08:00", None, "已更换灯泡"),
    ("feedback", "2025-06-01T16:00:00+08:00", None, "居民满意"),
    ("closed", "2025-06-01T16:30:00+08:00", None, None),
]


@pytest.fixture(scope="module")
def plan():
    return lattice_plan(1000, 600)


@pytest.fixture
def client(plan, tmp_path):
    app = create_app(settings=Settings(store_path=tmp_path / "store.gpkg", token=TOKEN))
    store_plan(app.state.store, plan, "loop town")
    with TestClient(app) as c:
        yield c
    app.state.store.close()


def _report(client, plan, event_id: str, **extra) -> dict:
    ev = {
        **sample_events(plan, 1, seed=3)[0],
        "event_id": event_id,
        "reported_at": "2025-06-01T08:00:00+08:00",
        "deadline": "2025-06-03T08:00:00+08:00",
        "status": "open",
        "closed_at": None,
        **extra,
    }
    r = client.post("/api/events", json=ev, headers=AUTH)
    assert r.status_code == 201, r.text
    return client.get(f"/api/events/{event_id}").json()


def _grid_row(client, code: str) -> dict:
    st = client.get("/api/stats/grids").json()
    return next(g for g in st["grids"] if g["grid_code"] == code)


def _step(client, event_id: str, status: str, at: str, worker=None, note=None, **extra):
    body = {"status": status, "at": at, **extra}
    if worker is not None:
        body["worker"] = worker
    if note is not None:
        body["note"] = note
    return client.patch(f"/api/events/{event_id}", json=body, headers=AUTH)


def test_an_event_goes_through_the_loop_to_closed(client, plan):
    """Done when: an event posted through the API can be taken through the loop to
    closed; its history shows the steps, and its grid's closed count goes up by one."""
    ev = _report(client, plan, "L1")
    code = ev["grid_code"]
    assert ev["history"] == [
        {
            "status": "reported",
            "at": "2025-06-01T08:00:00+08:00",
            "note": None,
            "worker": None,
            "actor": None,
        }
    ]
    assert ev["next_steps"] == ["accepted", "closed", "cancelled"]
    before = _grid_row(client, code)
    for status, at, worker, note in LOOP:
        r = _step(client, "L1", status, at, worker=worker, note=note)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
        if status != "closed":  # open all along the loop
            assert _grid_row(client, code)["open"] == before["open"]
    ev = client.get("/api/events/L1").json()
    assert [h["status"] for h in ev["history"]] == [
        "reported",
        "accepted",
        "assigned",
        "handled",
        "feedback",
        "closed",
    ]
    assert [h["at"] for h in ev["history"][1:]] == [at for _, at, _, _ in LOOP]
    assert ev["history"][2]["worker"] == "王芳" and ev["worker"] == "王芳"
    assert ev["history"][1]["note"] == "受理：路灯不亮"
    assert {h["actor"] for h in ev["history"][1:]} == {"GRIDMAP_TOKEN"}
    assert ev["closed_at"] == "2025-06-01T16:30:00+08:00" and ev["next_steps"] == []
    assert ev["revision"] == 5
    after = _grid_row(client, code)
    assert after["closed"] == before["closed"] + 1
    assert after["open"] == before["open"] - 1
    assert after["events"] == before["events"]
    assert after["closed_on_time"] == before["closed_on_time"] + 1  # 8.5 h, deadline 48 h
    # the community of the grid counts it too
    comms = client.get("/api/stats/communities").json()["communities"]
    assert sum(c["closed"] for c in comms) == sum(
        g["closed"] for g in client.get("/api/stats/grids").json()["grids"]
    )
    assert all("mean_handling_hours" in c and "on_time_rate" in c for c in comms)


def test_steps_out_of_order_are_refused(client, plan):
    _report(client, plan, "L2")
    assert _step(client, "L2", "accepted", "2025-06-01T09:00:00+08:00").status_code == 200
    r = _step(client, "L2", "closed", "2025-06-01T10:00:00+08:00")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_step"
    assert err["message"] == "cannot go from accepted to closed; next step is assigned"
    assert err["next_steps"] == ["assigned", "cancelled"]
    # assigning needs a worker; a step earlier than the one before is refused
    r = _step(client, "L2", "assigned", "2025-06-01T10:00:00+08:00")
    assert r.status_code == 422 and "needs the worker" in r.json()["error"]["message"]
    r = _step(client, "L2", "assigned", "2025-06-01T08:30:00+08:00", worker="李")
    assert r.status_code == 422
    assert (
        "earlier than the previous step (accepted at 2025-06-01T09:00:00+08:00)"
        in (r.json()["error"]["message"])
    )
    # a step in the future, an unknown status, a note without a status
    r = _step(client, "L2", "assigned", "2100-01-01T00:00:00+08:00", worker="李")
    assert r.status_code == 422 and "in the future" in r.json()["error"]["message"]
    assert _step(client, "L2", "finished-ish", "2025-06-01T10:00:00+08:00").status_code == 422
    r = client.patch("/api/events/L2", json={"note": "x"}, headers=AUTH)
    assert r.status_code == 422 and "give its status" in r.json()["error"]["message"]
    # nothing of the refused steps was stored
    ev = client.get("/api/events/L2").json()
    assert [h["status"] for h in ev["history"]] == ["reported", "accepted"]
    assert ev["revision"] == 1 and ev["status"] == "accepted"
    # Chinese step names work; cancelling ends the loop
    assert (
        _step(client, "L2", "分派", "2025-06-01T10:00:00+08:00", worker="李").json()["status"]
        == "assigned"
    )
    assert _step(client, "L2", "cancelled", "2025-06-01T11:00:00+08:00").status_code == 200
    r = _step(client, "L2", "handled", "2025-06-01T12:00:00+08:00")
    assert r.status_code == 422 and "cancelled: it cannot change any more" in r.text


def test_close_on_the_spot_and_legacy_closed_at(client, plan):
    _report(client, plan, "L3")
    r = client.patch(
        "/api/events/L3",
        json={"status": "closed", "closed_at": "2025-06-01T08:20:00+08:00", "revision": 0},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["closed_at"] == "2025-06-01T08:20:00+08:00"
    assert [(h["status"], h["at"]) for h in ev["history"]] == [
        ("reported", "2025-06-01T08:00:00+08:00"),
        ("closed", "2025-06-01T08:20:00+08:00"),
    ]
    # a stale revision is 409 before anything else
    r = client.patch("/api/events/L3", json={"status": "accepted", "revision": 0}, headers=AUTH)
    assert r.status_code == 409
    # closed_at that disagrees with at
    _report(client, plan, "L4")
    r = client.patch(
        "/api/events/L4",
        json={
            "status": "closed",
            "closed_at": "2025-06-01T08:20:00+08:00",
            "at": "2025-06-01T08:30:00+08:00",
        },
        headers=AUTH,
    )
    assert r.status_code == 422 and "closed_at and at differ" in r.text
    # a deadline alone is still a plain change, no step
    r = client.patch("/api/events/L4", json={"deadline": "2025-06-05T00:00:00+08:00"}, headers=AUTH)
    assert r.status_code == 200 and len(r.json()["history"]) == 1


def test_the_step_is_audited(client, plan):
    _report(client, plan, "L5")
    _step(client, "L5", "accepted", "2025-06-01T09:00:00+08:00", note="ok")
    entries = client.get("/api/audit", params={"action": "event.update"}, headers=AUTH).json()
    e = entries["entries"][0]
    assert e["target"] == "events/L5" and e["before"]["status"] == "open"
    assert e["after"]["step"] == {
        "status": "accepted",
        "at": "2025-06-01T09:00:00+08:00",
        "note": "ok",
        "worker": None,
    }


def test_event_list_filters_and_pages(client, plan):
    for k in range(5):
        _report(
            client, plan, f"P{k}", reported_at=f"2025-06-0{k + 1}T08:00:00+08:00", deadline=None
        )
    _step(client, "P1", "accepted", "2025-06-02T09:00:00+08:00")
    _step(client, "P2", "closed", "2025-06-03T09:00:00+08:00")
    fc = client.get("/api/events", params={"status": "accepted"}).json()
    assert [f["properties"]["event_id"] for f in fc["features"]] == ["P1"]
    active = client.get("/api/events", params={"status": "active"}).json()
    assert {f["properties"]["event_id"] for f in active["features"]} == {"P0", "P1", "P3", "P4"}
    page = client.get("/api/events", params={"order": "desc", "limit": 2, "offset": 1}).json()
    assert [f["properties"]["event_id"] for f in page["features"]] == ["P3", "P2"]
    assert page["total"] == 5 and page["truncated"] is True and page["offset"] == 1
    window = client.get(
        "/api/events",
        params={"start": "2025-06-02T00:00:00+08:00", "end": "2025-06-04", "status": "open,closed"},
    ).json()
    assert [f["properties"]["event_id"] for f in window["features"]] == ["P2"]
    assert "worker" in window["features"][0]["properties"]
    r = client.get("/api/events", params={"status": "done"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_status"


def test_old_store_gets_the_history_table(tmp_path, plan):
    """A store made before the loop (no event_history, no worker column) is upgraded."""
    path = tmp_path / "old.gpkg"
    store = Store(path)
    store.close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE event_history")
    con.execute("ALTER TABLE events DROP COLUMN worker")
    con.commit()
    con.close()
    app = create_app(settings=Settings(store_path=path, token=TOKEN))
    store_plan(app.state.store, plan, "old town")
    with TestClient(app) as c:
        _report(c, plan, "O1")
        r = _step(c, "O1", "accepted", "2025-06-01T09:00:00+08:00")
        assert r.status_code == 200 and len(r.json()["history"]) == 2
    app.state.store.close()


def test_a_report_keeps_its_description(client, plan):
    ev = _report(client, plan, "E-text-1", description="  路灯不亮，已三天  ")
    assert ev["description"] == "路灯不亮，已三天"
    too_long = {
        **sample_events(plan, 1, seed=4)[0],
        "event_id": "E-text-2",
        "description": "长" * 501,
    }
    r = client.post("/api/events", json=too_long, headers=AUTH)
    assert r.status_code == 422, r.text
    assert "description" in r.text
    assert client.get("/api/events/E-text-2").status_code == 404


def test_a_time_without_offset_is_read_in_the_place_of_the_event():
    from api.schemas import EventIn

    def posted(when: str, lon: float, lat: float):
        return EventIn(reported_at=when, category="safety_hazard", lon=lon, lat=lat).reported_at

    jakarta = posted("2016-01-05T21:00:00", 106.82, -6.2)
    assert jakarta.utcoffset().total_seconds() == 7 * 3600
    assert jakarta.hour == 21
    harbin = posted("2016-01-05T21:00:00", 126.6, 45.7)
    assert harbin.utcoffset().total_seconds() == 8 * 3600
    given = posted("2016-01-05T21:00:00+09:00", 106.82, -6.2)  # an offset given is kept
    assert given.utcoffset().total_seconds() == 9 * 3600
