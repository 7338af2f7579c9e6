"""The static events map (``events_map.html``) in Chromium, offline, on a phone and a desk.

Skipped without Playwright or the Debian Chromium.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from live_support import CHROMIUM, CHROMIUM_ARGS, require_browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def events_map(tmp_path_factory):
    sync_api = require_browser()
    from api.demo import lattice_plan, sample_events
    from gridmap import events as ev
    from gridmap.maps import save_html

    plan = lattice_plan(1000, 600)
    events = ev.read_events(pd.DataFrame(sample_events(plan, 300, seed=2)), plan=plan)
    path = tmp_path_factory.mktemp("evmap") / "events_map.html"
    save_html(ev.event_map(plan, events), path)
    return sync_api, path


@pytest.mark.parametrize("viewport", [(390, 844), (1280, 800)], ids=["phone", "desk"])
def test_events_map_one_layer_legend_visible_heat_at_zoom_16(events_map, viewport):
    sync_api, path = events_map
    width, height = viewport
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": width, "height": height})
        outside: list[str] = []
        errors: list[str] = []
        pg.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith("file:")
                else (outside.append(r.request.url), r.abort())
            ),
        )
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(path.as_uri())
        pg.wait_for_selector(".leaflet-interactive")
        # one layer on: the rates; its legend wholly on screen
        checked = pg.eval_on_selector_all(
            ".leaflet-control-layers-overlays input", "els => els.map((e) => e.checked)"
        )
        assert checked == [True, False, False, False]
        box = pg.locator("#gridmap-events-legend").bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height
        visible = pg.eval_on_selector_all(
            "#gridmap-events-legend section", "els => els.map((e) => e.offsetParent !== null)"
        )
        assert visible == [True, False, False, False]
        # the layer list is a button on a phone, open on a desk
        expanded = pg.evaluate(
            "document.querySelector('.leaflet-control-layers')"
            ".classList.contains('leaflet-control-layers-expanded')"
        )
        assert expanded is (width > 640)
        # zoom 16: the heat map can be switched on, draws, and its legend shows
        pg.evaluate(
            "() => { const m = Object.values(window).find((v) => v && v._leaflet_id && v.setZoom);"
            " m.setZoom(16, {animate: false}); }"
        )
        pg.wait_for_timeout(300)
        pg.locator(".leaflet-control-layers").hover()
        heat = pg.locator(".leaflet-control-layers-overlays input").nth(1)
        assert heat.is_enabled()
        heat.check()
        pg.wait_for_selector("canvas.leaflet-heatmap-layer")
        assert pg.locator("#gridmap-events-legend section").nth(1).is_visible()
        radius = pg.evaluate(
            "() => Object.values(window).find((v) => v && v._heat && v.options"
            " && v._map).options.radius"
        )
        assert radius > 14  # metres, not the fixed 14 px
        # the heat map by month: its slider swaps the points of the layer
        pg.locator(".leaflet-control-layers").hover()
        pg.locator(".leaflet-control-layers-overlays input").nth(2).check()
        slider = pg.locator("#gridmap-period")
        assert slider.is_visible()
        last = int(slider.get_attribute("max"))
        first_label = pg.inner_text("#gridmap-period-label")
        slider.fill(str(last))
        assert pg.inner_text("#gridmap-period-label") != first_label
        assert re.fullmatch(r"\d{4}-\d{2}", pg.inner_text("#gridmap-period-label"))
        assert errors == [] and outside == [], (errors, outside)
        browser.close()
