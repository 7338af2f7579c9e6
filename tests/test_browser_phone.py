"""The map page on a phone (390 x 844) and the page's search and labels, in Chromium.

Reuses the served demo store of tests/test_browser.py (12 grids, events, a flood and an
evacuation overlay). Skipped without Playwright or the Debian Chromium.
"""

from __future__ import annotations

import re

import pytest
import shapely
from test_api_search import png_image
from test_browser import CHROMIUM, CHROMIUM_ARGS, TOKEN, demo  # noqa: F401 - demo: a fixture

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}

#: Share of the viewport the map must keep visible on a phone.
MAP_SHARE = 0.6

# the visible share of #map: its area minus what the page lays over it
_MAP_SHARE_JS = """() => {
  const vw = window.innerWidth, vh = window.innerHeight;
  const clip = (r, c) => Math.max(0, Math.min(r.right, c.right) - Math.max(r.left, c.left)) *
    Math.max(0, Math.min(r.bottom, c.bottom) - Math.max(r.top, c.top));
  const screen = { left: 0, top: 0, right: vw, bottom: vh };
  const m = document.getElementById('map').getBoundingClientRect();
  const mapBox = { left: Math.max(m.left, 0), top: Math.max(m.top, 0),
    right: Math.min(m.right, vw), bottom: Math.min(m.bottom, vh) };
  let visible = clip(mapBox, screen);
  const covers = ['.leaflet-control-layers', '.legend-box', '#panel', '#report', '#search-results',
    '.leaflet-popup'];
  for (const sel of covers) {
    for (const el of document.querySelectorAll(sel)) {
      if (el.hidden || el.offsetParent === null) continue;
      visible -= clip(el.getBoundingClientRect(), mapBox);
    }
  }
  return visible / (vw * vh);
}"""


def _wait_ready(pg) -> None:
    pg.wait_for_function("window.gridmap && window.gridmap.ready === true", timeout=30_000)
    assert pg.evaluate("window.gridmap.error") is None


def _assert_clean(pg) -> None:
    """No console error, no request leaving the machine, no failed request."""
    assert pg.problems == []


@pytest.fixture
def phone(request):
    sync_api, server, plan = request.getfixturevalue("demo")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, bypass_csp=True
        )
        # everything that goes wrong on the page: console errors, failed requests, and
        # requests for anything outside the test server (they are blocked)
        problems: list[str] = []
        context.route(
            re.compile(r"^(?!" + re.escape(server.url) + ").*"),
            lambda route: (problems.append("outside " + route.request.url), route.abort()),
        )
        pg = context.new_page()
        pg.problems = problems
        pg.on("console", lambda m: m.type == "error" and problems.append("console " + m.text))
        pg.on("pageerror", lambda e: problems.append("error " + str(e)))
        pg.on("requestfailed", lambda r: problems.append("failed " + r.url))
        yield pg, server, plan
        context.close()
        browser.close()


def _tap_grid(pg, plan, i: int) -> str:
    wgs = plan.grids_wgs84()
    pt = shapely.point_on_surface(wgs.geometry.iloc[i])
    xy = pg.evaluate(
        "([lat, lon]) => { const p = window.gridmap.map.latLngToContainerPoint([lat, lon]);"
        " return [p.x, p.y]; }",
        [pt.y, pt.x],
    )
    box = pg.locator("#map").bounding_box()
    pg.touchscreen.tap(box["x"] + xy[0], box["y"] + xy[1])
    return wgs["grid_code"].iloc[i]


def test_phone_map_keeps_the_screen(phone, tmp_path):
    pg, server, plan = phone
    pg.goto(server.url + "/")
    _wait_ready(pg)
    assert pg.evaluate("window.gridmap.narrow()") is True
    # layer list and legend start folded; the map keeps most of the screen
    assert not pg.is_visible(".leaflet-control-layers-list")
    assert pg.evaluate("document.querySelector('.legend-box').classList.contains('folded')")
    share = pg.evaluate(_MAP_SHARE_JS)
    assert share >= MAP_SHARE, share
    # open the layer list, switch the flood layer on, fold the list again
    pg.locator(".leaflet-control-layers-toggle").tap()
    assert pg.is_visible(".leaflet-control-layers-list")
    pg.locator(".leaflet-control-layers").get_by_text("洪涝风险四色").tap()
    pg.wait_for_function("!!window.gridmap.layers.flood_inner", timeout=10_000)
    pg.locator(".layers-fold").tap()
    assert not pg.is_visible(".leaflet-control-layers-list")
    share_flood = pg.evaluate(_MAP_SHARE_JS)
    assert share_flood >= MAP_SHARE, share_flood
    # the flood legend is one tap away, and even unfolded the map keeps the screen
    pg.locator(".legend-toggle").tap()
    assert "橙色" in pg.inner_text(".legend")
    share_legend = pg.evaluate(_MAP_SHARE_JS)
    assert share_legend >= MAP_SHARE, share_legend
    pg.screenshot(path=str(tmp_path / "phone_flood.png"))
    _assert_clean(pg)


def test_phone_bottom_sheet_and_my_grid(phone, tmp_path):
    pg, server, plan = phone
    pg.goto(server.url + "/")
    _wait_ready(pg)
    code = _tap_grid(pg, plan, 4)
    pg.wait_for_selector("#panel:not([hidden])", timeout=5_000)
    assert pg.evaluate("window.gridmap.selected") == code
    sheet = pg.locator("#panel").bounding_box()
    # a bottom sheet: full width, at the bottom, at most about 40 % of the screen high
    assert sheet["width"] >= PHONE["width"] - 2
    assert abs(sheet["y"] + sheet["height"] - PHONE["height"]) <= 2
    assert sheet["height"] <= 0.45 * PHONE["height"]
    assert pg.locator(".leaflet-popup").count() == 0  # no popup on a phone
    assert code[-6:] in pg.inner_text("#panel-title")
    assert pg.evaluate(_MAP_SHARE_JS) >= 0.5
    pg.screenshot(path=str(tmp_path / "phone_sheet.png"))
    # the tapped grid is not left under the sheet
    at = pg.evaluate(
        f"(() => {{ const b = window.gridmap.gridBounds('{code}');"
        " const p = window.gridmap.map.latLngToContainerPoint("
        "[(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2]); return p.y; })()"
    )
    map_box = pg.locator("#map").bounding_box()
    assert map_box["y"] + at < sheet["y"], (at, sheet)
    # the handle folds the sheet out
    pg.locator("#panel-title").click()
    assert pg.locator("#panel").bounding_box()["height"] > sheet["height"]
    # "my grid": remembered on the phone, opened with its buildings on a later visit
    pg.locator("button[data-action=set-mine]").click()
    assert pg.evaluate("window.gridmap.myGrid()") == code
    assert pg.locator("button[data-action=set-mine]").is_disabled()
    pg.wait_for_function(  # the grid's event figures arrive before we leave the page
        "document.getElementById('panel-body').innerText.includes('事件数')", timeout=10_000
    )
    pg.wait_for_load_state("networkidle")
    pg.goto(server.url + "/")
    _wait_ready(pg)
    assert pg.evaluate("window.gridmap.selected") is None
    pg.locator("#my-grid").click()
    assert pg.evaluate("window.gridmap.selected") == code
    pg.wait_for_function(
        "window.gridmap.map.hasLayer(window.gridmap.layers.buildings) &&"
        " Object.keys(window.gridmap.layers.buildings._layers).length > 0",
        timeout=10_000,
    )
    codes = pg.evaluate(
        "Object.values(window.gridmap.layers.buildings._layers)"
        ".map((l) => l.feature.properties.grid_code)"
    )
    assert code in codes
    bounds = pg.evaluate("window.gridmap.mapBounds()")
    gb = pg.evaluate(f"window.gridmap.gridBounds('{code}')")
    assert bounds[0][0] <= gb[0][0] and bounds[1][0] >= gb[1][0]  # the grid is in view
    _assert_clean(pg)


def test_phone_report_form_submits_an_event(phone, tmp_path):
    pg, server, plan = phone
    pg.goto(server.url + "/")
    _wait_ready(pg)
    pg.locator("#report-button").click()
    form = pg.locator("#report-form")
    assert form.is_visible()
    # no place yet: the form says so
    form.locator("button[type=submit]").click()
    assert "位置" in form.locator(".msg").inner_text()
    # the place from a tap on the map, inside grid 2
    form.locator("[data-act=tap]").click()
    code = _tap_grid(pg, plan, 2)
    assert pg.evaluate("window.gridmap.selected") is None  # picking a place selects nothing
    assert "," in form.locator(".where").inner_text()
    form.locator("select[name=category]").select_option("safety_hazard")
    if form.locator("textarea[name=text]").count():
        form.locator("textarea[name=text]").fill("楼道堆放杂物")
    # a photo over 5 MB is refused before sending
    big = b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10)
    form.locator("input[name=photo]").set_input_files(
        {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": big}
    )
    assert "5 MB" in form.locator(".msg").inner_text()
    form.locator("input[name=photo]").set_input_files(
        {"name": "p.png", "mimeType": "image/png", "buffer": png_image(4, 4)}
    )
    form.locator("input[name=token]").fill(TOKEN)
    pg.screenshot(path=str(tmp_path / "phone_report.png"))
    form.locator("button[type=submit]").click()
    pg.wait_for_function(
        "window.gridmap.lastReport && window.gridmap.lastReport.photo", timeout=10_000
    )
    report = pg.evaluate("window.gridmap.lastReport")
    assert "事件已上报" in pg.inner_text("#status")
    assert not pg.is_visible("#report-form")
    # the event is stored in the tapped grid, with its photo
    ev = pg.evaluate("async (id) => (await fetch('/api/events/' + id)).json()", report["id"])
    assert ev["category"] == "safety_hazard" and ev["grid_code"] == code
    photos = pg.evaluate(
        "async (id) => (await fetch('/api/events/' + id + '/photos')).json()", report["id"]
    )
    assert [p["name"] for p in photos["photos"]] == [report["photo"]]
    _assert_clean(pg)


def test_search_lists_matches_and_opens_a_grid_with_buildings(phone):
    pg, server, plan = phone
    pg.goto(server.url + "/")
    _wait_ready(pg)
    # a community by name
    name = plan.grids["community_name"].iloc[0]
    pg.fill("#search-input", name)
    pg.press("#search-input", "Enter")
    pg.wait_for_function(
        "(n) => !document.getElementById('status').hidden &&"
        " document.getElementById('status').textContent.includes(n)",
        arg=name,
        timeout=5_000,
    )
    assert pg.evaluate("window.gridmap.selected") is None  # a community is not a grid
    view = pg.evaluate("window.gridmap.mapBounds()")
    wgs = plan.grids_wgs84()
    mine = wgs[wgs["community_name"] == name].total_bounds
    assert view[0][1] <= mine[0] + 1e-6 and view[1][1] >= mine[2] - 1e-6  # in view
    # an ending shared by several grids: a list to pick from
    codes = list(plan.grids["grid_code"])
    ending = codes[0][-1]
    shared = [c for c in codes if c.endswith(ending)]
    assert len(shared) > 1
    pg.fill("#search-input", ending)
    pg.press("#search-input", "Enter")
    pg.wait_for_selector("#search-results:not([hidden]) li[data-i]", timeout=5_000)
    items = pg.locator("#search-results li[data-i]")
    texts = [items.nth(i).inner_text() for i in range(items.count())]
    target = shared[-1]
    pick = next(i for i, t in enumerate(texts) if target in t)
    items.nth(pick).click()
    assert pg.is_hidden("#search-results")
    assert pg.evaluate("window.gridmap.selected") == target
    # by keyboard: arrow down into the list, Enter opens the first match
    pg.fill("#search-input", ending)
    pg.press("#search-input", "Enter")
    pg.wait_for_selector("#search-results:not([hidden]) li[data-i]", timeout=5_000)
    top = pg.evaluate(
        "async (q) => (await (await fetch('/api/search?limit=12&q=' + q)).json()).results[0]",
        ending,
    )
    pg.press("#search-input", "ArrowDown")
    assert pg.evaluate("document.activeElement.dataset.i") == "0"
    pg.keyboard.press("Enter")
    assert pg.is_hidden("#search-results")
    if top["type"] == "grid":
        assert pg.evaluate("window.gridmap.selected") == top["code"]
    else:  # a community or street: the map shows its extent and the status names it
        assert top["code"] in pg.inner_text("#status")
    pg.wait_for_function(
        "window.gridmap.map.hasLayer(window.gridmap.layers.buildings) &&"
        " Object.keys(window.gridmap.layers.buildings._layers).length > 0",
        timeout=10_000,
    )
    _assert_clean(pg)


def test_labels_do_not_overlap(phone):
    pg, server, plan = phone
    pg.goto(server.url + "/")
    _wait_ready(pg)
    for zoom in (15, 16, 17):
        pg.evaluate(
            f"""() => new Promise((res) => {{
              const s = window.gridmap.viewSeq;
              const on = (e) => {{ if (e.detail.seq > s) {{ removeEventListener('gridmap:drawn', on); res(); }} }};
              addEventListener('gridmap:drawn', on);
              window.gridmap.map.setZoom({zoom}, {{ animate: false }});
            }})"""
        )
        n = pg.evaluate("window.gridmap.labelCount()")
        boxes = pg.evaluate(
            "Array.from(document.querySelectorAll('.grid-label')).map((e) => {"
            " const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
        )
        assert n == len(boxes) and n > 0, zoom
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not (a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]), (a, b)
        texts = pg.evaluate(
            "Array.from(document.querySelectorAll('.grid-label')).map((e) => e.innerText)"
        )
        codes = set(pg.evaluate("window.gridmap.labels()"))
        hh = plan.grids.set_index("grid_code")["households"]
        for t in texts:
            end = t.split()[0]
            assert any(c.endswith(end) for c in codes)
        for c in codes:
            assert any(c[-3:] in t and f"{int(hh[c])}" in t.replace(",", "") for t in texts)
    _assert_clean(pg)
