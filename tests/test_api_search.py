"""Search (GET /api/search), grids by zoom (GET /api/grids?zoom=) and event photos."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
import shapely

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from api.demo import lattice_plan, sample_events  # noqa: E402
from api.main import create_app, store_plan  # noqa: E402
from api.settings import Settings  # noqa: E402

TOKEN = "search-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def plan():
    """The lattice demo plan with two named buildings and named streets."""
    p = lattice_plan(1000, 600)
    p.buildings["name"] = None
    p.buildings.loc[p.buildings.index[0], "name"] = "林都小学"
    p.buildings.loc[p.buildings.index[5], "name"] = "林都医院"
    p.communities["street_name"] = "前进街道"
    return p


@pytest.fixture(scope="module")
def client(plan, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    app = create_app(settings=Settings(store_path=tmp / "store.gpkg", token=TOKEN))
    store_plan(app.state.store, plan, "search town")
    with TestClient(app) as c:
        yield c
    app.state.store.close()


def _search(client, q, **params):
    r = client.get("/api/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _inside(bbox, lon, lat) -> bool:
    w, s, e, n = bbox
    return w - 1e-6 <= lon <= e + 1e-6 and s - 1e-6 <= lat <= n + 1e-6


# -------------------------------------------------------------------- search
def test_the_search_api_finds_a_community_by_name(client, plan):
    name = plan.grids["community_name"].iloc[0]
    body = _search(client, name)
    top = body["results"][0]
    assert top["type"] == "community" and top["name"] == name and top["match"] == "exact"
    code = plan.grids["grid_code"].iloc[0][:12]
    assert top["code"] == code
    # its bbox holds every grid of the community
    wgs = plan.grids_wgs84()
    mine = wgs[wgs["grid_code"].str[:12] == code]
    for g in mine.geometry:
        c = g.centroid
        assert _inside(top["bbox"], c.x, c.y)
    # part of the name finds it too, ranked as a prefix / contains match
    assert any(
        r["type"] == "community" and r["code"] == code for r in _search(client, name[:2])["results"]
    )


def test_search_grid_code_whole_and_ending(client, plan):
    codes = sorted(plan.grids["grid_code"])
    whole = _search(client, codes[3])
    assert whole["results"][0] == {
        **whole["results"][0],
        "type": "grid",
        "code": codes[3],
        "match": "exact",
    }
    assert whole["results"][0]["households"] == int(
        plan.grids.set_index("grid_code").loc[codes[3], "households"]
    )
    # an ending that several grids share lists them all, each with a bbox
    ending = codes[3][-1]
    hits = [r for r in _search(client, ending, limit=100)["results"] if r["type"] == "grid"]
    expected = {c for c in codes if c.endswith(ending)}
    assert expected <= {r["code"] for r in hits}
    assert len(expected) > 1
    wgs = plan.grids_wgs84().set_index("grid_code")
    for r in hits:
        if r["code"] in expected:
            p = shapely.point_on_surface(wgs.loc[r["code"], "geometry"])
            assert _inside(r["bbox"], p.x, p.y)


def test_search_ranks_exact_then_prefix_then_contains(client):
    body = _search(client, "林都", limit=10)
    names = [r["name"] for r in body["results"]]
    assert {"林都小学", "林都医院"} <= set(names)
    assert all(r["type"] == "building" for r in body["results"])
    assert all(r["match"] == "prefix" for r in body["results"])
    exact = _search(client, "林都医院")["results"]
    assert exact[0]["name"] == "林都医院" and exact[0]["match"] == "exact"
    assert exact[0]["grid_code"]
    contains = _search(client, "医院")["results"]
    assert contains and contains[0]["match"] == "contains"
    # streets by name, with the 9-digit code
    street = _search(client, "前进街道")["results"][0]
    assert street["type"] == "street" and len(street["code"]) == 9


def test_search_limits_and_bad_queries(client):
    body = _search(client, "2", limit=3)
    assert len(body["results"]) == 3 and body["truncated"] and body["total"] > 3
    assert _search(client, "没有这个地方")["results"] == []
    for params in ({"q": ""}, {"q": "   "}, {"q": "x" * 65}, {}, {"q": "1", "limit": 0}):
        r = client.get("/api/search", params=params)
        assert r.status_code == 422, (params, r.text)
        assert "q" in r.text or "limit" in r.text
    assert client.get("/api/search", params={"q": "1", "plan": 99}).status_code == 404


# ------------------------------------------------------------------ by zoom
def test_grids_by_zoom_simplified_with_labels(client, plan):
    full = client.get("/api/grids").json()
    low = client.get("/api/grids", params={"zoom": 11}).json()
    assert low["zoom"] == 11
    assert len(low["features"]) == len(full["features"])
    by_code = {f["properties"]["grid_code"]: f for f in full["features"]}

    def n_coords(f):
        return len(shapely.get_coordinates(shapely.from_geojson(json.dumps(f["geometry"]))))

    assert sum(map(n_coords, low["features"])) <= sum(map(n_coords, full["features"]))
    for f in low["features"]:
        p = f["properties"]
        ref = by_code[p["grid_code"]]
        assert p["grid_code"] == ref["properties"]["grid_code"]
        assert {"grid_code", "kind", "households", "community_name", "label"} <= set(p)
        assert all(ref["properties"][k] == v for k, v in p.items() if k != "label")
        assert "polsby_popper" not in p  # the rest is one GET /api/grids/{code} away
        poly = shapely.from_geojson(json.dumps(ref["geometry"]))
        assert poly.contains(shapely.Point(p["label"]))  # the label sits inside its grid
    # the full geometry from zoom 17 on, and the same ETag / 304 rules
    hi = client.get("/api/grids", params={"zoom": 18})
    assert hi.json()["zoom"] == 17
    assert hi.json()["features"][0]["geometry"] == full["features"][0]["geometry"]
    r = client.get("/api/grids", params={"zoom": 11}, headers={"If-None-Match": hi.headers["etag"]})
    assert r.status_code == 200  # another level, another ETag
    r = client.get(
        "/api/grids", params={"zoom": 11.6}, headers={"If-None-Match": r.headers["etag"]}
    )
    assert r.status_code == 304
    gz = client.get("/api/grids", params={"zoom": 11}, headers={"Accept-Encoding": "gzip"})
    assert gz.headers.get("content-encoding") == "gzip" or gz.json()["zoom"] == 11
    # a bbox gives only the view's grids
    g0 = shapely.from_geojson(json.dumps(full["features"][0]["geometry"]))
    c = g0.centroid
    box = f"{c.x - 1e-5},{c.y - 1e-5},{c.x + 1e-5},{c.y + 1e-5}"
    part = client.get("/api/grids", params={"zoom": 16, "bbox": box}).json()
    codes = [f["properties"]["grid_code"] for f in part["features"]]
    assert full["features"][0]["properties"]["grid_code"] in codes
    assert len(codes) < len(full["features"])
    for bad in (-1, 25, "x"):
        assert client.get("/api/grids", params={"zoom": bad}).status_code == 422


def test_simplified_grids_stay_a_coverage(client):
    """Neighbours share their simplified edges: no overlaps between grids."""
    low = client.get("/api/grids", params={"zoom": 8}).json()
    geoms = [shapely.from_geojson(json.dumps(f["geometry"])) for f in low["features"]]
    assert all(g.is_valid and not g.is_empty for g in geoms)
    total = sum(g.area for g in geoms)
    union = shapely.union_all(geoms).area
    assert union == pytest.approx(total, rel=1e-6)


# ------------------------------------------------------------------- photos
def png_image(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (red pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_event_photo_upload(client, plan):
    ev = sample_events(plan, 1)[0]
    r = client.post("/api/events", json=ev, headers=AUTH)
    assert r.status_code == 201, r.text
    eid = r.json()["accepted"][0]
    png = png_image()
    files = {"photo": ("p.png", png, "image/png")}
    assert client.post(f"/api/events/{eid}/photo", files=files).status_code == 401
    r = client.post(f"/api/events/{eid}/photo", files=files, headers=AUTH)
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["content_type"] == "image/png" and info["bytes"] == len(png)
    got = client.get(info["url"])
    assert got.status_code == 200 and got.content == png
    assert got.headers["content-type"] == "image/png"
    listed = client.get(f"/api/events/{eid}/photos").json()["photos"]
    assert [p["name"] for p in listed] == [info["name"]]
    # not an image, too large, unknown event, bad names
    r = client.post(
        f"/api/events/{eid}/photo",
        files={"photo": ("x.png", b"<html>", "image/png")},
        headers=AUTH,
    )
    assert r.status_code == 415 and "x.png" in r.text
    big = b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024)
    r = client.post(
        f"/api/events/{eid}/photo", files={"photo": ("big.jpg", big, "image/jpeg")}, headers=AUTH
    )
    assert r.status_code == 413 and "5 MB" in r.text
    assert client.post("/api/events/NOPE/photo", files=files, headers=AUTH).status_code == 404
    assert client.get(f"/api/events/{eid}/photos/..%2F..%2Fstore.gpkg").status_code == 404
    assert client.get(f"/api/events/{eid}/photos/0000000000000000.png").status_code == 404
    # the write is in the audit log
    audit = client.get("/api/audit", params={"action": "event.photo"}, headers=AUTH).json()
    entries = audit if isinstance(audit, list) else audit.get("entries", audit.get("audit", []))
    assert any(e["target"] == f"events/{eid}" for e in entries), audit
