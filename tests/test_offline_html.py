"""Every HTML page gridmap writes works offline: no CDN, no tiles, Leaflet inlined.

The main job's pages are grepped for remote scripts and stylesheets; the plan map is
opened from file:// in headless Chromium with every request that is not a file aborted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import folium
import pytest
from folium.plugins import HeatMap

from gridmap.maps import OfflineError, make_offline, offline_html, save_html

CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

#: A script or stylesheet loaded from another host (http, https or protocol-relative).
REMOTE = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//"
    r"|<img\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|@import\s+(?:url\()?[\"']?(?:https?:)?//",
    re.IGNORECASE,
)


def _pages(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_main_job_writes_four_offline_pages(main_job_out):
    pages = _pages(main_job_out)
    names = {p.name for p in pages}
    assert {"plan_map.html", "flood_map.html", "evacuation_map.html"} <= names
    assert any(p.parent.name == "events" for p in pages), names
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not REMOTE.findall(text), (page.name, REMOTE.findall(text)[:3])
        plain = re.sub(r"data:[\w/+.-]+;base64,[\w+/=]+", "", text)  # images inlined
        assert "cdn" not in plain.lower(), (page.name, re.findall(r".{40}cdn.{40}", plain)[:3])
        assert "tile.openstreetmap.org" not in text, page.name  # no base map by default
        assert "Leaflet 1.9.4" in text, page.name  # the vendored copy, inlined


def test_offline_html_inlines_leaflet_and_heat_and_drops_the_rest():
    m = folium.Map(tiles=None)
    HeatMap([[45.0, 128.0, 1.0], [45.01, 128.01, 2.0]]).add_to(m)
    folium.Marker([45, 128], popup="<b>弹窗</b>").add_to(m)
    raw = m.get_root().render()
    assert REMOTE.search(raw)  # folium's page loads its assets from CDNs
    page = offline_html(raw)
    assert not REMOTE.search(page)
    assert "L.heatLayer" in page and "simpleheat" in page
    assert "data:image/png;base64," in page  # Leaflet's images inlined into its CSS
    assert "bootstrap" not in page.lower() and "jquery-3" not in page.lower()
    assert offline_html(page) == page  # a second pass changes nothing


def test_unknown_remote_asset_is_an_error_or_a_warning(caplog):
    raw = '<html><head><script src="https://cdnjs.example/d3.min.js"></script></head></html>'
    with pytest.raises(OfflineError, match="d3.min.js"):
        offline_html(raw)
    with caplog.at_level("WARNING", logger="gridmap"):
        assert offline_html(raw, strict=False) == raw
    assert "d3.min.js" in caplog.text


def test_save_html_and_make_offline(tmp_path):
    m = folium.Map(tiles=None)
    folium.CircleMarker([45, 128], radius=5).add_to(m)
    path = save_html(m, tmp_path / "sub" / "map.html")
    assert not REMOTE.search(path.read_text(encoding="utf-8"))
    raw = tmp_path / "raw.html"
    m.save(str(raw))
    assert REMOTE.search(raw.read_text(encoding="utf-8"))
    make_offline(raw)
    assert not REMOTE.search(raw.read_text(encoding="utf-8"))
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


# --------------------------------------------------------------------------- browser
def _sync_api():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set GRIDMAP_CHROMIUM)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


_STATE = """() => {
  const labels = [...document.querySelectorAll('.gm-label > div')];
  const inView = (r) => r.width > 0 && r.right > 0 && r.left < innerWidth
                        && r.bottom > 0 && r.top < innerHeight;
  const shown = labels.filter((e) => e.style.visibility !== 'hidden')
                      .map((e) => e.getBoundingClientRect()).filter(inView);
  let overlaps = 0;
  for (let i = 0; i < shown.length; i++) for (let j = i + 1; j < shown.length; j++) {
    const a = shown[i], b = shown[j];
    if (a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top) overlaps++;
  }
  const map = Object.values(window).find((v) => window.L && v instanceof L.Map);
  let paths = 0;
  if (map) map.eachLayer((l) => { if (l instanceof L.Path) paths += 1; });
  return {L: typeof window.L, paths: paths, canvas: document.querySelectorAll('canvas').length,
          labels: labels.length, shown: shown.length, overlaps: overlaps,
          legendOpen: document.getElementById('gm-legend').open,
          zoom: map ? map.getZoom() : null};
}"""


@pytest.mark.browser
def test_plan_map_opens_offline_at_phone_size(main_job_out, tmp_path):
    sync_api = _sync_api()
    page = main_job_out / "plan_map.html"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = browser.new_context(viewport={"width": 390, "height": 844})
            pg = ctx.new_page()
            errors, outside = [], []
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))

            def guard(route):
                if route.request.url.startswith(("file:", "data:")):
                    route.continue_()
                else:  # nothing may leave the machine
                    outside.append(route.request.url)
                    route.abort()

            pg.route("**/*", guard)
            pg.goto(page.as_uri())
            pg.wait_for_selector(".leaflet-container canvas", timeout=15_000)
            pg.wait_for_timeout(300)
            s = pg.evaluate(_STATE)
            assert s["L"] == "object" and s["canvas"] >= 1 and s["paths"] > 50, s
            # labels: some shown, none overlapping, more once zoomed in
            assert s["labels"] > 50 and 0 < s["shown"] < s["labels"], s
            assert s["overlaps"] == 0, s
            assert s["legendOpen"] is False  # folded on a phone, the map stays visible
            pg.screenshot(path=str(tmp_path / "plan_390.png"))
            pg.evaluate(
                "() => { Object.values(window).find((v) => v instanceof L.Map)"
                ".zoomIn(2, {animate: false}); }"
            )
            pg.wait_for_timeout(300)
            z = pg.evaluate(_STATE)
            assert z["zoom"] == s["zoom"] + 2 and z["overlaps"] == 0, z
            # a popup opens (folium builds it with the jQuery stand-in)
            pg.mouse.click(195, 422)
            pg.wait_for_selector(".leaflet-popup-content", timeout=5_000)
            assert "网格编码" in pg.inner_text(".leaflet-popup-content")
            assert errors == [], errors
            assert outside == [], outside
        finally:
            browser.close()
