"""Evacuation maps in a real browser: the offline folium page and the web view's overlay.

Headless Chromium (Playwright) with every request leaving the machine blocked. Skipped
when Playwright or Debian's /usr/bin/chromium is missing.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import shapely

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _sync_api():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set GRIDMAP_CHROMIUM)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _roads(plan):
    """A street lattice over the plan, lines not split at the crossings."""
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


@pytest.fixture(scope="module")
def evac_case():
    """A lattice plan, its south-west third flooded 1.2 m deep, two shelters in the
    north-east (one small), and a 10-minute walking limit so that some households need a
    vehicle: placed buildings in waves and buildings not placed."""
    _sync_api()
    import geopandas as gpd

    import gridmap
    from api.demo import lattice_plan

    plan = lattice_plan(1000, 600)
    x0, y0, x1, y1 = plan.grids.total_bounds
    extent = gpd.GeoDataFrame(
        {"depth_m": [1.2]},
        geometry=[shapely.box(x0, y0, x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2)],
        crs=plan.crs,
    )
    graded = gridmap.grade_flood(plan, extent=extent)
    shelters = gpd.GeoDataFrame(
        {"name": ["第一中学", "体育馆"], "capacity": [400, 60]},
        geometry=[shapely.Point(x1 - 50, y1 - 50), shapely.Point(x1 - 300, y1 - 60)],
        crs=plan.crs,
    )
    evac = gridmap.plan_evacuation(graded, _roads(plan), shelters, max_walk_min=10)
    s = evac.summary()
    assert s["placed_persons"] > 0 and s["needs_transport_persons"] > 0
    return plan, evac


def _browser_page(p, base: str | None):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    context = browser.new_context(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    pg = context.new_page()
    pg.errors, pg.outside = [], []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))

    def guard(route):
        url = route.request.url
        if url.startswith(("file:", "data:")) or (base and url.startswith(base)):
            route.continue_()
        else:
            pg.outside.append(url)
            route.abort()

    pg.route("**/*", guard)
    return browser, pg


def test_evacuation_map_html_works_offline(evac_case, tmp_path):
    sync_api = _sync_api()
    _, evac = evac_case
    import gridmap

    gridmap.write_evacuation_outputs(evac, tmp_path, tiles=None)
    page = tmp_path / "evacuation_map.html"
    with sync_api.sync_playwright() as p:
        browser, pg = _browser_page(p, None)
        pg.goto(page.as_uri())
        pg.wait_for_selector(".leaflet-container canvas", timeout=10_000)
        legend = pg.inner_text("#evac-legend")
        for text in ("wave 1", "needs transport", "island at the peak", "flooded at the peak"):
            assert text in legend, (text, legend)
        # buildings by wave, the buildings not placed (and their markers), shelters: drawn
        n = pg.evaluate(
            "() => { const m = Object.values(window).find((v) => v instanceof L.Map);"
            " let k = 0; m.eachLayer((l) => { if (l instanceof L.Path) k += 1; }); return k; }"
        )
        assert n > len(evac.shelters) + len(evac.buildings)
        assert pg.errors == [], pg.errors
        assert pg.outside == [], pg.outside  # no CDN, no tiles
        browser.close()


def test_evacuation_overlay_in_the_web_view(evac_case, tmp_path):
    sync_api = _sync_api()
    pytest.importorskip("uvicorn")
    from live_support import LiveServer  # the suite's uvicorn helper

    from api.main import attach_evacuation, create_app, store_plan
    from api.settings import Settings

    plan, evac = evac_case
    app = create_app(settings=Settings(store_path=tmp_path / "store.gpkg", token="t"))
    store_plan(app.state.store, plan, "疏散测试 evacuation town")
    attach_evacuation(app.state.store, 1, evac)
    with LiveServer(app) as server, sync_api.sync_playwright() as p:
        browser, pg = _browser_page(p, server.url)
        pg.goto(server.url + "/?lang=en")
        pg.wait_for_function("window.gridmap && window.gridmap.ready === true", timeout=30_000)
        pg.locator(".leaflet-control-layers").get_by_text(
            "Evacuation routes and shelters", exact=False
        ).click()
        pg.wait_for_function("window.gridmap.layers.evacuation_inner", timeout=10_000)
        legend = pg.inner_text(".legend")
        for text in ("Departure waves", "Wave 1", "No shelter within walking reach", "体育馆"):
            assert text in legend, (text, legend)
        assert "Impassable road at the peak" in legend
        drawn = pg.evaluate("window.gridmap.layers.evacuation_buildings.getLayers().length")
        assert drawn == len(evac.buildings)
        # a building not placed is ringed in magenta; a placed one takes its wave's colour
        rings = pg.evaluate(
            "window.gridmap.layers.evacuation_buildings.getLayers().map((l) => l.options.color)"
        )
        assert "#ff00ff" in rings and "#762a83" in rings
        assert pg.errors == [], pg.errors
        assert pg.outside == [], pg.outside
        browser.close()
        app.state.store.close()
