"""Benchmark the events pipeline on 1,000 grids and 1,000,000 events.

Run from the repository root::

    .venv/bin/python bench/bench_events.py [--events 1000000] [--grids 1000]

It synthesises square grids in a metric CRS and a CSV of events with Chinese headers
(not timed), then times ``read_events`` + ``assign_events`` + ``event_stats`` (target:
at most 10 s together on 2 cores), ``read_events`` with ``plan=`` (outside-plan check),
``hotspots`` and ``event_map`` (target: HTML under 15 MB). Results are printed and
written to ``bench/results/events.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap import events as ev  # noqa: E402

METRIC = "EPSG:32652"  # UTM 52N (Yichun)
X0, Y0 = 500_000.0, 5_290_000.0
CELL = 200.0  # grid side, metres
CATEGORIES_CN = list(ev.CATEGORIES.values())


def _grids(n: int) -> gpd.GeoDataFrame:
    cols = int(np.ceil(np.sqrt(n * 1.6)))
    i = np.arange(n)
    ix, iy = i % cols, i // cols
    rng = np.random.default_rng(0)
    community = i // 50
    street = community // 5
    return gpd.GeoDataFrame(
        {
            "grid_code": [
                f"230717{s + 1:03d}{c + 1:03d}{k:03d}"
                for s, c, k in zip(street, community, i % 50 + 1, strict=True)
            ],
            "community_code": [f"{c + 1:03d}" for c in community],
            "street_code": [f"{s + 1:03d}" for s in street],
            "community_name": [f"社区{c + 1}" for c in community],
            "kind": "community",
            "households": rng.integers(50, 400, n),
        },
        geometry=shapely.box(
            X0 + ix * CELL, Y0 + iy * CELL, X0 + (ix + 1) * CELL, Y0 + (iy + 1) * CELL
        ),
        crs=METRIC,
    )


def _events_csv(grids: gpd.GeoDataFrame, n: int, path: Path) -> None:
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = grids.total_bounds
    n_uniform = int(n * 0.8)
    x = rng.uniform(minx - 300, maxx + 300, n)  # some fall outside the plan
    y = rng.uniform(miny - 300, maxy + 300, n)
    centres = rng.uniform([minx, miny], [maxx, maxy], size=(3, 2))
    pick = rng.integers(0, 3, n - n_uniform)
    x[n_uniform:] = centres[pick, 0] + rng.normal(0, 250, n - n_uniform)
    y[n_uniform:] = centres[pick, 1] + rng.normal(0, 250, n - n_uniform)
    lon, lat = Transformer.from_crs(METRIC, 4326, always_xy=True).transform(x, y)
    start = pd.Timestamp("2025-01-01").value // 10**9
    reported = pd.to_datetime(start + rng.integers(0, 365 * 86400, n), unit="s")
    deadline = reported + pd.to_timedelta(rng.choice([24, 72, 168], n), unit="h")
    closed = rng.random(n) < 0.85
    handling = pd.to_timedelta(rng.exponential(40.0, n), unit="h").round("s")
    closed_at = (reported + handling).where(closed)
    fmt = "%Y-%m-%d %H:%M:%S"
    table = pd.DataFrame(
        {
            "事件编号": np.char.add("E", np.arange(n).astype(str)),
            "上报时间": reported.strftime(fmt),
            "事件类型": rng.choice(CATEGORIES_CN, n),
            "来源": rng.choice(["网格员", "随手拍"], n, p=[0.9, 0.1]),
            "状态": np.where(closed, "已办结", "办理中"),
            "办结时限": deadline.strftime(fmt),
            "办结时间": pd.Series(closed_at).dt.strftime(fmt).fillna(""),
            "经度": np.round(lon, 6),
            "纬度": np.round(lat, 6),
        }
    )
    bad = rng.choice(n, 500, replace=False)  # a few broken rows
    table.loc[bad[:250], "经度"] = np.nan
    table.loc[bad[250:], "上报时间"] = "待补录"
    table.to_csv(path, index=False, encoding="utf-8")


def _timed(label: str, results: list, fn, *args, **kwargs):
    """Run `fn`, record wall-clock and CPU seconds (CPU: all threads of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    results.append((label, dt, dc))
    print(f"{label:<45s} {dt:7.2f} s wall {dc:7.2f} s CPU", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "events.md")
    args = parser.parse_args()

    grids = _grids(args.grids)
    results: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "events.csv"
        t0 = time.perf_counter()
        _events_csv(grids, args.events, csv)
        print(
            f"synthesised {args.events:,} events ({csv.stat().st_size / 1e6:.0f} MB CSV) in {time.perf_counter() - t0:.1f} s (not timed)"
        )

        events = _timed("read_events (no plan)", results, ev.read_events, csv)
        assigned = _timed("assign_events", results, ev.assign_events, grids, events)
        stats = _timed("event_stats", results, ev.event_stats, grids, assigned)
        core = sum(dt for _, dt, _ in results)
        core_cpu = sum(dc for _, _, dc in results)
        print(
            f"{'= read + assign + stats':<45s} {core:7.2f} s wall {core_cpu:7.2f} s CPU (target <= 10 s)"
        )

        events_p = _timed(
            "read_events (plan=, outside check + assign)", results, ev.read_events, csv, plan=grids
        )
        _timed("event_stats on read_events(plan=) output", results, ev.event_stats, grids, events_p)
        _timed("event_stats by='month'", results, ev.event_stats, grids, assigned, by="month")
        hot = _timed("hotspots (999 permutations)", results, ev.hotspots, grids, stats)
        fmap = _timed("event_map", results, ev.event_map, grids, assigned, stats=stats, hot=hot)
        html = Path(tmp) / "events_map.html"
        _timed("save map HTML", results, fmap.save, str(html))
        size_mb = html.stat().st_size / 1e6
        print(f"map HTML size: {size_mb:.2f} MB (target < 15 MB)")
        rejects = ev.rejects_of(events)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())

    lines = [
        "# Events benchmark (`bench/bench_events.py`)",
        "",
        f"- {args.grids:,} square grids ({CELL:.0f} m, {METRIC}), {args.events:,} events in a CSV "
        "with Chinese headers and naive local times",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"Python {platform.python_version()}, pandas {pd.__version__}, shapely {shapely.__version__}",
        f"- accepted {len(events):,}, rejected {len(rejects):,} "
        f"({rejects['reason'].value_counts().to_dict()}); outside every grid after assignment: "
        f"{int(assigned['grid_code'].isna().sum()):,}",
        f"- hot grids {int((hot['hotspot'] == 'hot').sum())}, cold {int((hot['hotspot'] == 'cold').sum())}",
        "",
        f"- load average when run: {load}; the machine is shared, so wall-clock time depends on "
        "other jobs; CPU time (all threads of the process) is the steadier figure",
        "",
        "| step | wall s | CPU s |",
        "|---|---:|---:|",
        *[f"| {label} | {dt:.2f} | {dc:.2f} |" for label, dt, dc in results],
        f"| **read_events + assign_events + event_stats** (target ≤ 10 s) | **{core:.2f}** | **{core_cpu:.2f}** |",
        "",
        f"Map HTML: **{size_mb:.2f} MB** (target < 15 MB; heat maps aggregated to 100 m squares).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
