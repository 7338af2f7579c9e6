"""The map page in a real browser: uvicorn on 127.0.0.1 + headless Chromium (Playwright).

Skipped when Playwright or the Debian Chromium (/usr/bin/chromium) is missing. The page
must load without console errors and without any request leaving 127.0.0.1.
"""

from __future__ import annotations

import pytest
import shapely
from live_support import CHROMIUM, CHROMIUM_ARGS, TOKEN, LiveServer, require_browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A served store with a small synthetic plan and 120 events."""
    sync_api = require_browser()
    from fastapi.testclient import TestClient

    from api.demo import lattice_plan, sample_events
    from api.main import create_app, store_plan
    from api.settings import Settings

    tmp = tmp_path_factory.mktemp("browser")
    plan = lattice_plan(1000, 600)
    app = create_app(settings=Settings(store_path=tmp / "store.gpkg", token=TOKEN))
    store_plan(app.state.store, plan, "浏览器测试 browser town")
    with TestClient(app) as c:
        r = c.post(
            "/api/events",
            json=sample_events(plan, 120),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 201, r.text
    # a flood overlay: every third grid orange, the others without risk
    codes = list(plan.grids["grid_code"])
    app.state.store.set_overlay(
        1,
        "flood",
        {
            "grids": [
                {
                    "grid_code": c,
                    "grade": "orange" if i % 3 == 0 else "none",
                    "households_at_risk": 40 if i % 3 == 0 else 0,
                    "persons_at_risk": 104.8 if i % 3 == 0 else 0.0,
                }
                for i, c in enumerate(codes)
            ],
            "thresholds": {"red": 1.5, "orange": 0.5, "yellow": 0.2, "blue": 0.0},
        },
    )
    app.state.store.set_overlay(1, "evacuation", _evacuation_overlay(plan))
    with LiveServer(app) as server:
        yield sync_api, server, plan
    app.state.store.close()


def _evacuation_overlay(plan) -> dict:
    """A small evacuation overlay: two shelters, a route from every fourth grid, one
    impassable road (the shape :func:`api.main.evacuation_overlay` stores)."""
    wgs = plan.grids_wgs84()
    pts = [shapely.point_on_surface(g) for g in wgs.geometry]
    names = ["第一中学", "体育馆"]
    shelters = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [pts[i].x, pts[i].y]},
            "properties": {
                "shelter_id": f"S{k + 1}",
                "name": names[k],
                "capacity": 500,
                "load": 120 * (k + 1),
                "pct_used": 24.0 * (k + 1),
                "status": "open",
            },
        }
        for k, i in enumerate((0, len(pts) - 1))
    ]
    routes = []
    for i in range(1, len(pts) - 1, 4):
        k = i % 2
        end = shelters[k]["geometry"]["coordinates"]
        routes.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[pts[i].x, pts[i].y], end]},
                "properties": {"shelter_id": f"S{k + 1}", "shelter": names[k], "persons": 30},
            }
        )
    (x0, y0, x1, y1) = wgs.total_bounds
    ym = (y0 + y1) / 2
    return {
        "summary": {
            "persons": 400,
            "placed_persons": 360,
            "unplaced_persons": {"cut_off": 40, "no_capacity": 0},
            "clearance_time_min": 18.5,
        },
        "shelters": {"type": "FeatureCollection", "features": shelters},
        "routes": {"type": "FeatureCollection", "features": routes},
        "impassable": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": [[x0, ym], [x1, ym]]},
                    "properties": {"name": "林都大街", "depth_max_m": 0.6},
                }
            ],
        },
    }


@pytest.fixture
def page(demo):
    sync_api, server, plan = demo
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        # Playwright's wait_for_function evaluates strings, which the page's CSP forbids;
        # test_page_under_its_csp checks the page with the CSP enforced.
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        pg = context.new_page()
        pg.console_errors = []
        pg.outside_requests = []
        pg.failed_requests = []
        pg.on(
            "console",
            lambda m: pg.console_errors.append(m.text) if m.type == "error" else None,
        )
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
        pg.on("requestfailed", lambda r: pg.failed_requests.append(r.url))

        def guard(route):
            if route.request.url.startswith(server.url):
                route.continue_()
            else:  # nothing may leave the machine
                pg.outside_requests.append(route.request.url)
                route.abort()

        pg.route("**/*", guard)
        yield pg, server, plan
        context.close()
        browser.close()


def _wait_ready(pg) -> None:
    pg.wait_for_function("window.gridmap && window.gridmap.ready === true", timeout=30_000)
    assert pg.evaluate("window.gridmap.error") is None


def _assert_clean(pg) -> None:
    assert pg.console_errors == [], pg.console_errors
    assert pg.outside_requests == [], pg.outside_requests
    assert pg.failed_requests == [], pg.failed_requests


def _contains(outer, inner) -> bool:
    (s1, w1), (n1, e1) = outer
    (s2, w2), (n2, e2) = inner
    return s1 <= s2 and w1 <= w2 and n1 >= n2 and e1 >= e2


def test_map_page_grids_popup_search(page, tmp_path):
    pg, server, plan = page
    pg.goto(server.url + "/")
    _wait_ready(pg)
    assert pg.evaluate("window.gridmap.gridCount()") == len(plan.grids)
    # Chinese by default
    assert "网格" in pg.inner_text(".leaflet-control-layers")
    assert "疏散路线与避难场所" in pg.inner_text(".leaflet-control-layers")
    assert "图例" not in pg.title()

    # click inside a grid: its popup opens with its code
    wgs = plan.grids_wgs84()
    code = wgs["grid_code"].iloc[3]
    pt = shapely.point_on_surface(wgs.geometry.iloc[3])
    xy = pg.evaluate(
        "([lat, lon]) => { const p = window.gridmap.map.latLngToContainerPoint([lat, lon]);"
        " return [p.x, p.y]; }",
        [pt.y, pt.x],
    )
    box = pg.locator("#map").bounding_box()
    pg.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    pg.wait_for_selector(".leaflet-popup-content", timeout=5_000)
    assert code in pg.inner_text(".leaflet-popup-content")
    assert pg.evaluate("window.gridmap.popupCode()") == code
    assert pg.is_visible("#panel")  # the side panel opens too
    assert code[-6:] in pg.inner_text("#panel-title")

    # search another grid by code: the map zooms to it and its panel opens
    target = wgs["grid_code"].iloc[-1]
    pg.fill("#search-input", target)
    pg.press("#search-input", "Enter")
    pg.wait_for_function(f"window.gridmap.selected === '{target}'", timeout=5_000)
    bounds = pg.evaluate("window.gridmap.mapBounds()")
    gbounds = pg.evaluate(f"window.gridmap.gridBounds('{target}')")
    assert _contains(bounds, gbounds), (bounds, gbounds)
    assert pg.evaluate("window.gridmap.map.getZoom()") >= 15
    assert pg.evaluate("window.gridmap.popupCode()") == target
    panel = pg.inner_text("#panel-body")
    assert target in panel
    assert "户数" in panel
    # event figures arrive in the panel (the store has events)
    pg.wait_for_function(
        "document.getElementById('panel-body').innerText.includes('事件数')", timeout=10_000
    )
    # search by the last digits works too; an unknown code shows a message
    pg.fill("#search-input", "999999")
    pg.press("#search-input", "Enter")
    pg.wait_for_selector("#status:not([hidden])", timeout=5_000)
    assert "999999" in pg.inner_text("#status")

    shot = tmp_path / "map.png"
    pg.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    _assert_clean(pg)


def test_layers_switch_and_legends(page, tmp_path):
    pg, server, plan = page
    pg.goto(server.url + "/?lang=en")
    _wait_ready(pg)
    control = pg.locator(".leaflet-control-layers")
    assert "Grids" in control.inner_text()
    assert "Event heat map" in control.inner_text()
    labels = (
        "Event heat map",
        "Events per 100 households",
        "Buildings",
        "Flood risk",
        "Evacuation routes and shelters",
    )
    for label in labels:
        control.get_by_text(label, exact=False).click()
    pg.wait_for_function(
        "window.gridmap.layers.events_heat_inner && window.gridmap.layers.event_rates_inner"
        " && window.gridmap.layers.flood_inner && window.gridmap.layers.evacuation_inner",
        timeout=10_000,
    )
    legend = pg.inner_text(".legend")
    assert "Events per 100 households" in legend and "Event density" in legend
    assert "Orange: elevated" in legend
    # the evacuation legend: shelters' colours, impassable roads, the summary figures
    for text in ("Evacuation routes and shelters", "体育馆", "Impassable", "Clearance time"):
        assert text in legend, (text, legend)
    assert "18.5 min" in legend and "cut off" in legend
    # a shelter circle opens its popup with load / capacity and % used
    pg.evaluate(
        "() => { const m = window.gridmap.layers.evacuation_shelters.getLayers()[1];"
        " m.fire('click', { latlng: m.getLatLng() }, true); }"
    )
    popup = pg.inner_text(".leaflet-popup-content")
    assert "体育馆" in popup and "240 / 500" in popup and "48%" in popup
    pg.evaluate("() => { window.gridmap.map.closePopup(); }")
    # zoom in: buildings of the view are fetched and drawn
    code = plan.grids["grid_code"].iloc[0]
    pg.evaluate(f"window.gridmap.select('{code}')")
    pg.evaluate("() => { window.gridmap.map.setZoom(17, {animate: false}); }")
    pg.wait_for_function(
        "Object.keys(window.gridmap.layers.buildings._layers).length > 0", timeout=10_000
    )
    # the panel of a flooded grid shows its flood figures
    pg.wait_for_function(
        "document.getElementById('panel-body').innerText.includes('Persons to move')",
        timeout=10_000,
    )
    pg.screenshot(path=str(tmp_path / "layers.png"))
    _assert_clean(pg)


def test_empty_store_page(tmp_path):
    sync_api = require_browser()
    from api.main import create_app
    from api.settings import Settings

    app = create_app(settings=Settings(store_path=tmp_path / "empty.gpkg"))
    with LiveServer(app) as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(bypass_csp=True)
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server.url + "/")
        _wait_ready(pg)
        assert pg.evaluate("window.gridmap.gridCount()") == 0
        assert "POST /api/plans" in pg.inner_text("#status")
        assert errors == []
        browser.close()


def test_page_under_its_csp(demo):
    """With the Content-Security-Policy enforced the page loads without violations."""
    sync_api, server, plan = demo
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        resp = pg.goto(server.url + "/?lang=en")
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        pg.wait_for_selector("body[data-ready='true']", timeout=30_000)
        pg.locator(".leaflet-control-layers").get_by_text("Event heat map").click()
        pg.locator(".leaflet-control-layers").get_by_text("Events per 100 households").click()
        pg.wait_for_selector(".legend >> text=Event density", timeout=10_000)
        pg.fill("#search-input", plan.grids["grid_code"].iloc[2])
        pg.press("#search-input", "Enter")
        pg.wait_for_selector("#panel:not([hidden])", timeout=5_000)
        assert plan.grids["grid_code"].iloc[2] in pg.inner_text("#panel-body")
        assert errors == [], errors
        browser.close()
