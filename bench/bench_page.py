"""City-scale benchmark of the map page on a phone-sized viewport.

A real uvicorn server (a subprocess) serves a store holding a plan of real-shaped grids:
by default the plan of the 1M-building synthetic city (``bench/synth_city.py``, 9,573
grids that follow its roads, compounds and villages), built once by
``bench/bench_partition.py`` / ``synth_city`` and cached under ``/tmp/gridmap-bench``;
or any plan GeoPackage (``--plan``). Headless Debian Chromium opens the page at
390 x 844 and measures

- **first paint**: from navigation start to the grids of the opening view drawn
  (``window.gridmap.timings.drawn``, set after the grid layer is on the map and two
  animation frames have passed); target <= 3 s;
- **pans**: from ``map.panBy`` to the new view's grids drawn (``gridmap:drawn``), at
  the city zoom and zoomed in (where finer shapes are fetched for the view);
- **zoom in**: from ``setZoom`` (two levels, then to zoom 15 at least) to the finer
  shapes and the labels drawn;
- **payload**: bytes transferred (compressed) for the page, its assets and the data.

The server is warmed first (the plan decoded and the opening level simplified, as on a
running server); the cold first request is reported too. Results go to
``bench/results/page.json``.

Usage::

    python bench/bench_page.py [--plan PLAN.gpkg] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_api import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

CACHE = Path("/tmp/gridmap-bench")
REALDATA = REPO.parent / "shared" / "realdata"
DEFAULT_PLAN = CACHE / "plan_1000000_s0.gpkg"
VIEWPORT = {"width": 390, "height": 844}
FIRST_PAINT_TARGET_S = 3.0
RESULTS = REPO / "bench" / "results" / "page.json"


def jakarta_plan(root: Path = REALDATA) -> Path:
    """Plan Jakarta (OSM 2012 footprints, RW polygons, all roads as barriers) as
    ``bench/quality.py`` does; cached as ``/tmp/gridmap-bench/plan_jakarta.gpkg``."""
    import gridmap

    out = CACHE / "plan_jakarta.gpkg"
    if out.exists():
        return out
    d = Path(root) / "jakarta"
    b = gridmap.read_buildings(d / "buildings_osm2012.gpkg")
    rw = gridmap.read_layer(d / "rw_boundaries.shp")
    roads = gridmap.read_layer(d / "roads.shp")
    plan = gridmap.plan_grids(b, rw, barriers=roads, progress=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    plan.to_file(out)
    return out


def build_store(plan_path: Path) -> tuple[Path, int, int]:
    """A store holding the plan at `plan_path` (cached next to it); (path, grids, buildings)."""
    from api.main import store_plan
    from api.store import Store
    from gridmap.plan import read_plan

    store_path = plan_path.with_name(plan_path.stem + ".page-store.gpkg")
    meta = store_path.with_suffix(".json")
    if store_path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return store_path, info["grids"], info["buildings"]
    plan = read_plan(plan_path)
    tmp = store_path.with_name(store_path.name + ".tmp")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        p.unlink(missing_ok=True)
    store = Store(tmp)
    store_plan(store, plan, plan_path.stem)
    store.close()
    os.replace(tmp, store_path)
    info = {"grids": len(plan.grids), "buildings": len(plan.buildings)}
    meta.write_text(json.dumps(info))
    return store_path, info["grids"], info["buildings"]


def _start_server(store: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_STORE": str(store), "PYTHONPATH": str(REPO)}
    env.pop("GRIDMAP_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=REPO,
    )  # fmt: skip


def _wait_up(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if proc.poll() is not None:
            raise RuntimeError("the server stopped")
        try:
            if httpx.get(base + "/api/plans", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not start")


def _page_measure(pg, base: str) -> dict:
    pg.goto(base + "/")
    pg.wait_for_function(
        "window.gridmap && window.gridmap.ready === true && window.gridmap.drawn", timeout=120_000
    )
    out = pg.evaluate(
        """() => {
        const gm = window.gridmap;
        const res = performance.getEntriesByType('resource');
        const nav = performance.getEntriesByType('navigation')[0];
        const bytes = res.reduce((s, r) => s + (r.transferSize || 0), nav ? nav.transferSize : 0);
        const grids = res.filter((r) => r.name.includes('/api/grids'));
        return {
          first_paint_s: gm.timings.drawn / 1000,
          grids_loaded_s: gm.timings.grids / 1000,
          ready_s: gm.readyAt / 1000,
          zoom: gm.map.getZoom(),
          grids: gm.gridCount(),
          labels: gm.labelCount(),
          bytes_total: bytes,
          bytes_grids: grids.reduce((s, r) => s + (r.transferSize || 0), 0),
          bytes_grids_decoded: grids.reduce((s, r) => s + (r.decodedBodySize || 0), 0),
        };
    }"""
    )
    return out


_MOVE = """async ([kind, arg]) => {
    const gm = window.gridmap;
    const seq = gm.viewSeq;
    const t0 = performance.now();
    const done = new Promise((resolve) => {
      const on = (e) => { if (e.detail.seq > seq) { window.removeEventListener('gridmap:drawn', on); resolve(); } };
      window.addEventListener('gridmap:drawn', on);
    });
    if (kind === 'pan') gm.map.panBy(arg, { animate: false });
    else gm.map.setView(window.benchCentre, arg, { animate: false }); // zoom in on the centre
    await done;
    return { ms: performance.now() - t0, zoom: gm.map.getZoom(), labels: gm.labelCount() };
}"""


def _moves(pg) -> dict:
    """Pans at the opening zoom, then zoomed in (finer shapes fetched for each view)."""
    out: dict = {"pan_city": [], "zoom_in": [], "pan_zoomed": []}
    pg.evaluate("() => { window.benchCentre = window.gridmap.map.getCenter(); }")
    for dx in (150, -150, 150):
        out["pan_city"].append(pg.evaluate(_MOVE, ["pan", [dx, 200]]))
    z0 = pg.evaluate("window.gridmap.map.getZoom()")
    for z in (z0 + 2, max(z0 + 5, 15)):
        out["zoom_in"].append(pg.evaluate(_MOVE, ["zoom", z]))
    for dx in (300, 300, -300, 0):
        out["pan_zoomed"].append(pg.evaluate(_MOVE, ["pan", [dx, 400 if dx == 0 else 0]]))
    return out


def _summary(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "runs": [round(v, 3) for v in values],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=DEFAULT_PLAN, help="plan GeoPackage")
    parser.add_argument(
        "--jakarta", action="store_true", help="plan Jakarta's real data first (cached)"
    )
    parser.add_argument("--runs", type=int, default=5, help="page loads measured")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.jakarta:
        args.plan = jakarta_plan()
    if not args.plan.exists():
        print(
            f"no plan at {args.plan}: build it with `python bench/bench_partition.py` "
            "(1M-building synthetic city) or pass --plan",
            file=sys.stderr,
        )
        return 2
    t = time.perf_counter()
    store, n_grids, n_buildings = build_store(args.plan)
    store_s = time.perf_counter() - t
    print(f"store {store} ({n_grids} grids, {n_buildings} buildings) in {store_s:.1f} s")
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_server(store, port)
    try:
        _wait_up(base, proc)
        # cold: the first request decodes the plan and simplifies the opening level
        t = time.perf_counter()
        r = httpx.get(base + "/api/grids?zoom=11", timeout=600, headers={"Accept-Encoding": "gzip"})
        r.raise_for_status()
        cold_s = time.perf_counter() - t
        print(f"cold first /api/grids?zoom=11: {cold_s:.1f} s")
        pages, moves = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # one load to warm the server's levels (as a running server has them)
            ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=3, is_mobile=True, has_touch=True, bypass_csp=True)  # fmt: skip
            warm = ctx.new_page()
            _page_measure(warm, base)
            _moves(warm)
            ctx.close()
            for i in range(args.runs):
                ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=3, is_mobile=True, has_touch=True, bypass_csp=True)  # fmt: skip
                pg = ctx.new_page()
                m = _page_measure(pg, base)
                pages.append(m)
                if i == 0:
                    pg.screenshot(path=str(CACHE / "bench_page_phone.png"))
                moves.append(_moves(pg))
                print(
                    f"run {i + 1}: first paint {m['first_paint_s']:.2f} s, "
                    f"{m['bytes_total'] / 1e6:.2f} MB, zoom {m['zoom']}"
                )
                ctx.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    fp = [m["first_paint_s"] for m in pages]
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "plan": str(args.plan.name),
        "grids": n_grids,
        "buildings": n_buildings,
        "viewport": VIEWPORT,
        "cold_first_request_s": round(cold_s, 2),
        "first_paint_s": _summary(fp),
        "first_paint_target_s": FIRST_PAINT_TARGET_S,
        "meets_target": statistics.median(fp) <= FIRST_PAINT_TARGET_S,
        "opening_zoom": pages[0]["zoom"],
        "labels_at_opening": pages[0]["labels"],
        "bytes_transferred": _summary([m["bytes_total"] for m in pages]),
        "bytes_grids_transferred": pages[0]["bytes_grids"],
        "bytes_grids_decoded": pages[0]["bytes_grids_decoded"],
        "pan_city_ms": _summary([x["ms"] for mv in moves for x in mv["pan_city"]]),
        "zoom_in_ms": _summary([x["ms"] for mv in moves for x in mv["zoom_in"]]),
        "pan_zoomed_ms": _summary([x["ms"] for mv in moves for x in mv["pan_zoomed"]]),
        "zoomed_labels": [x["labels"] for x in moves[0]["pan_zoomed"]],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
