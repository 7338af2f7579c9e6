"""Benchmark of the web layer through a real uvicorn server.

1. ``GET /api/grids`` of a 10,000-grid plan: median over >= 20 requests with httpx
   (target: <= 300 ms), plain and gzip, plus a bbox-filtered request and one grid.
2. The map page of a 1,000-grid plan in headless Chromium: time from navigation start
   to the grid layer loaded (``window.gridmap.readyAt``; target: <= 3 s).
3. A zip bomb (a 2 MB zip whose .shp unpacks to 2 GiB) uploaded while ``GET /api/grids``
   is timed every 20 ms: the bomb must get a 4xx within 5 s and every read must answer
   within 1 s (issue 16).

The plans are synthesised directly (:func:`api.demo.square_plan`), not partitioned.
The server runs in a subprocess (``uvicorn api.main:create_app --factory``) so that the
client does not share its interpreter. Results go to ``bench/results/api.md``.

Usage::

    python bench/bench_api.py [--requests 30] [--page-runs 5] [--no-browser] [--no-bomb]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.demo import square_plan  # noqa: E402
from api.main import store_plan  # noqa: E402
from api.store import Store  # noqa: E402

CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GRIDS_TARGET_MS = 300.0
PAGE_TARGET_S = 3.0
BOMB_TARGET_S = 5.0
BOMB_READ_TARGET_S = 1.0
#: Write token of the benchmark server (the bomb is an upload).
TOKEN = secrets.token_urlsafe(16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(store: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_STORE": str(store), "PYTHONPATH": str(REPO)}
    env["GRIDMAP_TOKEN"] = TOKEN
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    t = time.monotonic()
    while time.monotonic() - t < 60:
        try:
            if httpx.get(url + "/api/plans", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError("uvicorn exited")
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def _time_requests(client: httpx.Client, url: str, n: int, headers: dict) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        r.raise_for_status()
        _ = r.content
        out.append((time.perf_counter() - t) * 1000)
    return out


def bench_grids(base: str, plan_id: int, n: int) -> dict:
    """Time ``GET /api/grids`` for the 10,000-grid plan."""
    res: dict = {}
    with httpx.Client(base_url=base, timeout=120) as c:
        t = time.perf_counter()
        r = c.get(f"/api/grids?plan={plan_id}", headers={"Accept-Encoding": "identity"})
        res["cold_ms"] = (time.perf_counter() - t) * 1000
        fc = r.json()
        res["features"] = len(fc["features"])
        res["bytes"] = len(r.content)
        plain = _time_requests(c, f"/api/grids?plan={plan_id}", n, {"Accept-Encoding": "identity"})
        gz = _time_requests(c, f"/api/grids?plan={plan_id}", n, {"Accept-Encoding": "gzip"})
        r = c.get(f"/api/grids?plan={plan_id}", headers={"Accept-Encoding": "gzip"})
        res["gzip_bytes"] = int(r.headers.get("content-length", 0))
        b = fc["features"][0]["geometry"]["coordinates"][0][0]
        bbox = f"{b[0] - 0.005},{b[1] - 0.005},{b[0] + 0.005},{b[1] + 0.005}"
        filtered = _time_requests(c, f"/api/grids?plan={plan_id}&bbox={bbox}", n, {})
        code = fc["features"][5000]["properties"]["grid_code"]
        one = _time_requests(c, f"/api/grids/{code}?plan={plan_id}", n, {})
    res["plain"] = plain
    res["gzip"] = gz
    res["bbox"] = filtered
    res["one"] = one
    return res


def bench_page(base: str, plan_id: int, runs: int) -> dict:
    """Time the map page of the 1,000-grid plan in headless Chromium."""
    from playwright.sync_api import sync_playwright

    times, counts = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for _ in range(runs):
            ctx = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            page = ctx.new_page()
            errors: list[str] = []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/?plan={plan_id}")
            page.wait_for_function("window.gridmap && window.gridmap.ready", timeout=60_000)
            times.append(page.evaluate("window.gridmap.readyAt") / 1000)
            counts.append(page.evaluate("window.gridmap.gridCount()"))
            if errors:
                raise RuntimeError(f"console errors: {errors}")
            ctx.close()
        browser.close()
    return {"seconds": times, "grids": counts}


def _zip_bomb(unpacked: int) -> bytes:
    """A zip whose ``b.shp`` is `unpacked` zero bytes, written byte by byte (the Deflate
    stream repeats one 1 MiB block after full flushes, so it is built in milliseconds)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = (c.compress(b"\0" * (1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)) * (unpacked >> 20)
    data += c.flush()
    out = io.BytesIO()
    fields = (20, 0, 8, 0, 0, 0, len(data), unpacked)
    out.write(struct.pack("<IHHHHHIII", 0x04034B50, *fields) + struct.pack("<HH", 5, 0))
    out.write(b"b.shp" + data)
    start = out.tell()
    out.write(
        struct.pack("<IH", 0x02014B50, 20)
        + struct.pack("<HHHHHIII", *fields)
        + struct.pack("<HHHHHII", 5, 0, 0, 0, 0, 0, 0)
        + b"b.shp"
    )
    size = out.tell() - start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, size, start, 0))
    return out.getvalue()


def bench_bomb(base: str, plan_id: int, store_dir: Path) -> dict:
    """Upload a 2 GiB zip bomb while timing ``GET /api/grids`` every 20 ms."""
    bomb = _zip_bomb(2 << 30)
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while not done.is_set():
                t = time.perf_counter()
                c.get(f"/api/grids?plan={plan_id}").raise_for_status()
                latencies.append((time.perf_counter() - t) * 1000)
                time.sleep(0.02)

    httpx.get(f"{base}/api/grids?plan={plan_id}", timeout=120).raise_for_status()
    before = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file())
    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.5)
        t = time.perf_counter()
        r = httpx.post(
            f"{base}/api/plans",
            files={"file": ("bomb.zip", bomb, "application/zip")},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=300,
        )
        refused_s = time.perf_counter() - t
        time.sleep(0.5)
    finally:
        done.set()
        poller.join()
    after = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file())
    return {
        "zip_bytes": len(bomb),
        "status": r.status_code,
        "message": r.json().get("error", {}).get("message", ""),
        "refused_s": refused_s,
        "reads_ms": latencies,
        "grew_bytes": after - before,
    }


def _fmt(ms: list[float]) -> str:
    return (
        f"median {statistics.median(ms):.1f} ms, min {min(ms):.1f}, max {max(ms):.1f} (n={len(ms)})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=30, help="timed requests per case (>= 20)")
    ap.add_argument("--page-runs", type=int, default=5, help="page loads to time")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    ap.add_argument("--no-bomb", action="store_true", help="skip the zip-bomb part")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "api.md"))
    args = ap.parse_args(argv)
    n = max(20, args.requests)

    with tempfile.TemporaryDirectory(prefix="gridmap-bench-") as tmp:
        store_path = Path(tmp) / "store.gpkg"
        t = time.perf_counter()
        store = Store(store_path)
        big = store_plan(store, square_plan(10_000), "bench 10000 grids")
        page_plan = store_plan(store, square_plan(1_000), "bench 1000 grids")
        store.close()
        build_s = time.perf_counter() - t
        port = free_port()
        proc = _start_server(store_path, port)
        base = f"http://127.0.0.1:{port}"
        try:
            grids = bench_grids(base, big, n)
            page = None
            if not args.no_browser and Path(CHROMIUM).exists():
                page = bench_page(base, page_plan, args.page_runs)
            bomb = None if args.no_bomb else bench_bomb(base, page_plan, Path(tmp))
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    med = statistics.median(grids["plain"])
    med_gz = statistics.median(grids["gzip"])
    lines = [
        "# Web layer benchmark (`bench/bench_api.py`)",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')} on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}); "
        "uvicorn in a subprocess, httpx client, headless Debian Chromium; load average "
        f"{os.getloadavg()[0]:.1f} at the end (the machine is shared).",
        f"Stores built in {build_s:.1f} s (synthetic square-grid plans, `api.demo.square_plan`).",
        "",
        "## `GET /api/grids`, 10,000-grid plan",
        "",
        f"- features: {grids['features']:,}; body {grids['bytes'] / 1e6:.1f} MB plain, "
        f"{grids['gzip_bytes'] / 1e6:.1f} MB gzip",
        f"- first request (decodes the plan and builds the GeoJSON cache): {grids['cold_ms']:.0f} ms",
        f"- plain (`Accept-Encoding: identity`): {_fmt(grids['plain'])}",
        f"- gzip: {_fmt(grids['gzip'])}",
        f"- bbox filter (about 1 km²): {_fmt(grids['bbox'])}",
        f"- one grid (`GET /api/grids/{{code}}`): {_fmt(grids['one'])}",
        f"- target median <= {GRIDS_TARGET_MS:.0f} ms: "
        f"**{'met' if max(med, med_gz) <= GRIDS_TARGET_MS else 'NOT met'}** "
        f"(plain {med:.1f} ms, gzip {med_gz:.1f} ms)",
        "",
    ]
    ok = max(med, med_gz) <= GRIDS_TARGET_MS
    if page is not None:
        secs = page["seconds"]
        lines += [
            "## Map page, 1,000-grid plan (headless Chromium)",
            "",
            "Navigation start to the grid layer drawn and fitted (`window.gridmap.readyAt`).",
            "",
            f"- grids on the map: {page['grids'][0]:,}",
            f"- load times (s): {', '.join(f'{s:.2f}' for s in secs)}",
            f"- median {statistics.median(secs):.2f} s, max {max(secs):.2f} s",
            f"- target <= {PAGE_TARGET_S:.0f} s: "
            f"**{'met' if max(secs) <= PAGE_TARGET_S else 'NOT met'}** (every run)",
            "",
        ]
        ok = ok and max(secs) <= PAGE_TARGET_S
    else:
        lines += ["## Map page", "", "Skipped (no Chromium or --no-browser).", ""]
    if bomb is not None:
        reads = bomb["reads_ms"]
        bomb_ok = (
            400 <= bomb["status"] < 500
            and bomb["refused_s"] <= BOMB_TARGET_S
            and max(reads) <= BOMB_READ_TARGET_S * 1000
        )
        lines += [
            "## Zip bomb during reads (issue 16)",
            "",
            f"A {bomb['zip_bytes'] / 1e6:.1f} MB zip whose `.shp` unpacks to 2 GiB, uploaded "
            "while `GET /api/grids` (1,000-grid plan) is timed every 20 ms.",
            "",
            f"- answer: {bomb['status']} in {bomb['refused_s'] * 1000:.0f} ms: {bomb['message']}",
            f"- reads meanwhile: {_fmt(reads)}",
            f"- store folder grew by {bomb['grew_bytes']:,} bytes",
            f"- target 4xx within {BOMB_TARGET_S:.0f} s and every read within "
            f"{BOMB_READ_TARGET_S:.0f} s: **{'met' if bomb_ok else 'NOT met'}**",
            "",
        ]
        ok = ok and bomb_ok
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"written to {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
