"""The map page's edit mode in headless Chromium: select and brush buildings, assign them
to the active grid, watch the totals, undo, a conflict from a second tab, compare two
versions, and the phone layout (390×844). Reuses test_browser's server and Chromium."""

from __future__ import annotations

import pytest
import shapely
from live_support import CHROMIUM, CHROMIUM_ARGS, LiveServer, require_browser

pytestmark = pytest.mark.browser

TOKEN = "edit-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A served store holding one small plan that the tests edit."""
    sync_api = require_browser()
    from api.demo import lattice_plan
    from api.main import create_app, store_plan
    from api.settings import Settings

    tmp = tmp_path_factory.mktemp("browser_edit")
    plan = lattice_plan(1000, 600)
    app = create_app(settings=Settings(store_path=tmp / "store.gpkg", token=TOKEN))
    store_plan(app.state.store, plan, "编辑测试 edit town")
    with LiveServer(app) as server:
        yield sync_api, server, plan
    app.state.store.close()


@pytest.fixture
def browser(served):
    sync_api, server, plan = served
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b, server, plan
        b.close()


def _page(browser, server, width=1280, height=800):
    # Playwright's wait_for_function evaluates strings, which the page's CSP forbids
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    pg = context.new_page()
    pg.errors = []
    pg.outside = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))

    def guard(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:  # nothing may leave the machine
            pg.outside.append(route.request.url)
            route.abort()

    pg.route("**/*", guard)
    pg.goto(server.url + "/?lang=en")
    pg.wait_for_function(
        "window.gridmap && window.gridmap.ready === true && window.gridmapEdit"
        " && window.gridmapEdit.ready === true",
        timeout=30_000,
    )
    return pg


def _enter(pg, token=TOKEN):
    pg.click("#edit-toggle")
    pg.wait_for_selector("#edit-panel:not([hidden])")
    if pg.is_visible("#edit-login"):
        pg.fill("#edit-token", token)
        pg.press("#edit-token", "Enter")
    pg.wait_for_function("window.gridmapEdit.grids.size > 0", timeout=10_000)


def _xy(pg, lon, lat):
    """Page pixel of a WGS84 point."""
    x, y = pg.evaluate(
        "([lat, lon]) => { const p = window.gridmap.map.latLngToContainerPoint([lat, lon]);"
        " return [p.x, p.y]; }",
        [lat, lon],
    )
    box = pg.locator("#map").bounding_box()
    return box["x"] + x, box["y"] + y


def _pair(plan):
    """Grid A, neighbour B, and B's two buildings with households nearest A (WGS84 points)."""
    from gridmap import edit

    a = plan.grids["grid_code"].iloc[0]
    b_code = edit.neighbours(plan, a)["grid_code"].iloc[0]
    ga = plan.grids.set_index("grid_code").at[a, "geometry"]
    b = plan.buildings
    b = b[(b["grid_code"] == b_code) & (b["households"] > 0)]
    near = b.assign(d=b.geometry.distance(ga)).nsmallest(2, "d").to_crs(4326)
    pts = shapely.point_on_surface(near.geometry.values)
    return a, b_code, near["building_id"].tolist(), near["households"].astype(int).tolist(), pts


def _api_hh(pg, server, codes):
    data = pg.evaluate("async (url) => (await fetch(url)).json()", server.url + "/api/grids?plan=1")
    hh = {f["properties"]["grid_code"]: f["properties"]["households"] for f in data["features"]}
    return [hh.get(c) for c in codes]


def _click_grid(pg, plan, code):
    g = plan.grids_wgs84().set_index("grid_code").at[code, "geometry"]
    pt = shapely.point_on_surface(g)
    pg.evaluate("window.gridmapEdit.setTool('grid')")
    pg.mouse.click(*_xy(pg, pt.x, pt.y))
    pg.wait_for_function(f"window.gridmapEdit.active === '{code}'", timeout=5_000)


def _click_building(pg, plan, grid, pt, bid):
    """Make `grid` active, zoom to the building at `pt` and select it with the click tool."""
    _click_grid(pg, plan, grid)
    pg.evaluate(
        "([lat, lon]) => { window.gridmap.map.setView([lat, lon], 18, {animate: false}); }",
        [pt.y, pt.x],
    )
    pg.wait_for_function("window.gridmapEdit.buildingCount() > 0", timeout=10_000)
    pg.click("#edit-panel [data-tool='click']")
    pg.mouse.click(*_xy(pg, pt.x, pt.y))
    pg.wait_for_function(f"window.gridmapEdit.selected.has('{bid}')", timeout=5_000)


def test_select_brush_assign_undo_and_conflict(browser, tmp_path):
    b, server, plan = browser
    pg = _page(b, server)
    a, b_code, ids, hh, pts = _pair(plan)
    before_a, before_b = _api_hh(pg, server, [a, b_code])
    _enter(pg)
    # a second tab opens the editor on the same version before the first tab edits
    pg2 = _page(b, server)
    _enter(pg2)

    _click_building(pg, plan, a, pts[0], ids[0])
    assert a[-6:] in pg.inner_text("#edit-active")
    # the brush (small radius) adds the second one
    pg.click("#edit-panel [data-tool='brush']")
    pg.fill("#edit-radius", "5")
    pg.dispatch_event("#edit-radius", "input")
    x, y = _xy(pg, pts[1].x, pts[1].y)
    pg.mouse.move(x, y)
    pg.mouse.down()
    pg.mouse.move(x + 2, y + 1)
    pg.mouse.up()
    pg.wait_for_function(f"window.gridmapEdit.selected.has('{ids[1]}')", timeout=5_000)
    selected = pg.evaluate("Array.from(window.gridmapEdit.selected.keys())")
    assert set(ids) <= set(selected)
    assert all(plan.buildings.set_index("building_id").at[i, "grid_code"] != a for i in selected)
    moved = int(plan.buildings.set_index("building_id").loc[selected, "households"].sum())
    # the preview shows the totals before the edit is made
    preview = pg.inner_text("#edit-preview")
    assert f"{before_a} → {before_a + moved}" in preview, preview

    pg.fill("#edit-reason", "entrances face grid A")
    pg.click("#edit-assign")
    pg.wait_for_function("window.gridmapEdit.saved !== null", timeout=30_000)
    totals = pg.inner_text("#edit-totals")
    assert a[-6:] in totals and str(before_a + moved) in totals
    # the API moved exactly those households
    assert _api_hh(pg, server, [a, b_code]) == [before_a + moved, before_b - moved]
    assert pg.evaluate("window.gridmapEdit.selected.size") == 0
    pg.click("#edit-history-box summary")  # the version history with the reasons
    history = pg.inner_text("#edit-history")
    assert "entrances face grid A" in history

    # undo: back to the figures before
    v = pg.evaluate("window.gridmapEdit.version")
    pg.click("#edit-undo")
    pg.wait_for_function(f"window.gridmapEdit.saved > {v}", timeout=30_000)
    assert _api_hh(pg, server, [a, b_code]) == [before_a, before_b]

    # compare the version before the move with the move: two maps side by side
    pg.evaluate(
        f"window.gridmapEdit.compareVersions({v - 1}, {v})",
    )
    pg.wait_for_selector("#edit-compare-view", timeout=10_000)
    n = pg.evaluate("window.gridmapEdit.compare.maps.map((m) => m.grids)")
    assert n == [len(plan.grids), len(plan.grids)]
    assert pg.evaluate("window.gridmapEdit.compare.maps[1].changed") == 2
    pg.click("#edit-compare-close")
    assert pg.locator("#edit-compare-view").count() == 0

    # the second tab still holds the first version: its edit is refused with 409
    _click_building(pg2, plan, a, pts[0], ids[0])
    pg2.click("#edit-assign")
    pg2.wait_for_selector("#edit-conflict:not([hidden])", timeout=30_000)
    text = pg2.inner_text("#edit-conflict")
    assert "Conflict" in text and "Reload" in text
    assert _api_hh(pg2, server, [a, b_code]) == [before_a, before_b]  # nothing saved
    pg2.click("#edit-reload")
    pg2.wait_for_selector("#edit-conflict", state="hidden", timeout=10_000)
    assert pg2.evaluate("window.gridmapEdit.version") == pg.evaluate("window.gridmapEdit.version")
    pg.screenshot(path=str(tmp_path / "edit.png"))
    for p in (pg, pg2):
        assert p.errors == [] or all("409" in e for e in p.errors), p.errors
        assert p.outside == [], p.outside


def test_wrong_token_is_refused(browser):
    b, server, plan = browser
    pg = _page(b, server)
    a, b_code, ids, hh, pts = _pair(plan)
    _enter(pg, token="not-the-token")
    # select with the box tool: a rectangle dragged around the building
    _click_grid(pg, plan, a)
    pg.evaluate(
        "([lat, lon]) => { window.gridmap.map.setView([lat, lon], 18, {animate: false}); }",
        [pts[0].y, pts[0].x],
    )
    pg.wait_for_function("window.gridmapEdit.buildingCount() > 0", timeout=10_000)
    pg.click("#edit-panel [data-tool='box']")
    x, y = _xy(pg, pts[0].x, pts[0].y)
    pg.mouse.move(x - 10, y - 10)
    pg.mouse.down()
    pg.mouse.move(x + 10, y + 10, steps=4)
    pg.mouse.up()
    pg.wait_for_function(f"window.gridmapEdit.selected.has('{ids[0]}')", timeout=5_000)
    assert ids[1] not in pg.evaluate("Array.from(window.gridmapEdit.selected.keys())")
    before = _api_hh(pg, server, [a, b_code])
    pg.click("#edit-assign")
    pg.wait_for_selector("#edit-message.error", timeout=10_000)
    assert "Token refused" in pg.inner_text("#edit-message")
    assert pg.is_visible("#edit-login")  # asks for a token again
    assert _api_hh(pg, server, [a, b_code]) == before


def test_phone_layout_leaves_the_map_visible(browser):
    b, server, plan = browser
    pg = _page(b, server, width=390, height=844)
    _enter(pg)
    map_box = pg.locator("#map").bounding_box()
    panel = pg.locator("#edit-panel").bounding_box()
    # the panel is a bottom sheet within the screen; the map above it stays usable
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390 + 0.5
    assert panel["y"] + panel["height"] <= 844 + 0.5
    visible = panel["y"] - map_box["y"]
    assert visible >= 0.5 * map_box["height"], (map_box, panel)
    assert map_box["width"] >= 389
    toggle = pg.locator("#edit-toggle").bounding_box()
    assert toggle["y"] + toggle["height"] <= panel["y"]
    # the panel's controls fit the width: nothing wider than the screen
    widest = pg.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('#edit-panel *'))"
        ".map((e) => e.getBoundingClientRect().right))"
    )
    assert widest <= 390 + 0.5
    # picking a grid on the visible part of the map works with the panel open
    _click_grid(pg, plan, plan.grids["grid_code"].iloc[0])
    assert pg.errors == [], pg.errors
    assert pg.outside == []
