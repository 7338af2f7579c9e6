"""Benchmark: grade 1,000,000 buildings against a 20,000 x 20,000-cell depth raster.

Targets: ``grade_flood`` in <= 60 s and <= 4 GB peak resident memory.

The raster (float32, 2 m cells = 40 x 40 km, tiled 256 x 256, deflate, 1.6 GB
uncompressed) is generated once into /tmp by a child process (not timed, and its memory
does not count): a meandering river valley, smooth multi-scale relief, scattered ponds
and a no-data corner. The buildings are 1,000,000 rectangles of 8-25 m made in bulk
with ``shapely.box``, with levels, units, households, 400 m grids and 2 km communities.

Run::

    .venv/bin/python bench/bench_flood.py [--n 1000000] [--size 20000]

Results are printed and written to ``bench/results/flood.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CELL = 2.0  # m
X0, Y0 = 400_000.0, 5_350_000.0  # UTM 52N, top-left corner
CRS = "EPSG:32652"


def _rss_mb(field: str) -> float:
    """VmRSS / VmHWM from /proc/self/status in MB (ru_maxrss as fallback)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Reset VmHWM (Linux >= 4.0), so the peak measures grade_flood alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def generate_raster(path: Path, size: int, seed: int = 0) -> None:
    """Write the synthetic depth raster strip by strip (never whole in memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    waves = [
        (rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi), rng.uniform(-1, 1, 2), wl, amp)
        for wl, amp in [(6000, 0.6), (2500, 0.4), (900, 0.25), (300, 0.12), (80, 0.05)]
        for _ in range(2)
    ]
    ponds = np.c_[rng.uniform(0, size, (60, 2)), rng.uniform(50, 400, 60)]
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=from_origin(X0, Y0, CELL, CELL),
        nodata=-9999.0,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=3,
        zlevel=1,
        num_threads="ALL_CPUS",
        BIGTIFF="IF_SAFER",
    )
    cols = np.arange(size, dtype=np.float32)
    step = 512
    t = time.time()
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, step):
            rows = np.arange(r0, min(size, r0 + step), dtype=np.float32)[:, None]
            river = size * 0.5 + size * 0.15 * np.sin(rows / (size * 0.12))
            dist = np.abs(cols[None, :] - river)
            relief = np.zeros((len(rows), size), dtype=np.float32)
            for px, py, (dx, dy), wl, amp in waves:
                relief += (
                    amp
                    * np.sin((cols[None, :] * (1 + dx) + px * wl) / wl)
                    * np.sin((rows * (1 + dy) + py * wl) / wl)
                )
            depth = 4.0 - dist / (size * 0.0225) + relief
            for pc, pr, rad in ponds:
                reach = 1.2 * rad
                r_sel = np.abs(rows[:, 0] - pr) <= reach
                if not r_sel.any():
                    continue
                c_lo, c_hi = int(max(0, pc - reach)), int(min(size, pc + reach + 1))
                d2 = (cols[None, c_lo:c_hi] - pc) ** 2 + (rows[r_sel] - pr) ** 2
                sub = depth[r_sel, c_lo:c_hi]
                depth[r_sel, c_lo:c_hi] = np.maximum(sub, 1.2 - np.sqrt(d2) / rad)
            depth = np.where(depth > 0, depth, np.float32(-0.5)).astype(np.float32)
            if r0 < size // 10:
                depth[:, : size // 10] = -9999.0  # a no-data corner
            dst.write(depth, 1, window=Window(0, r0, size, len(rows)))
    print(f"generated {path} in {time.time() - t:.0f} s", flush=True)


def make_buildings(n: int, size: int, seed: int = 1):
    """1M rectangles in bulk with plausible attributes."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    rng = np.random.default_rng(seed)
    extent = size * CELL
    # clustered settlement: 70 % around 400 town centres, 30 % scattered
    centres = rng.uniform(2000, extent - 2000, (400, 2))
    k = int(n * 0.7)
    pick = rng.integers(0, len(centres), k)
    xy = np.r_[
        centres[pick] + rng.normal(0, 900, (k, 2)),
        rng.uniform(0, extent, (n - k, 2)),
    ]
    xy = np.clip(xy, 30, extent - 30)
    w, h = rng.uniform(8, 25, n), rng.uniform(8, 25, n)
    x, y = X0 + xy[:, 0], Y0 - xy[:, 1]
    geoms = shapely.box(x, y, x + w, y + h)
    levels = rng.choice([1, 2, 3, 6, 7, 11, 18], n, p=[0.3, 0.2, 0.1, 0.2, 0.1, 0.05, 0.05])
    units = np.where(levels >= 6, rng.integers(1, 5, n), 1)
    households = np.where(levels >= 6, levels * units * 2, rng.integers(1, 3, n))
    gx, gy = (xy[:, 0] // 400).astype(int), (xy[:, 1] // 400).astype(int)
    cx, cy = (xy[:, 0] // 2000).astype(int), (xy[:, 1] // 2000).astype(int)
    grid_code = pd.Series(gx * 1000 + gy).map("{:06d}".format)
    community = pd.Series(cx * 100 + cy).map("{:04d}".format)
    return gpd.GeoDataFrame(
        {
            "building_id": pd.Series(np.arange(n)).map("B{:07d}".format),
            "levels": levels.astype(float),
            "households": households.astype(np.int64),
            "units": units.astype(np.int64),
            "households_per_unit": households / units,
            "grid_code": grid_code,
            "community_code": community,
        },
        geometry=geoms,
        crs=CRS,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of buildings")
    ap.add_argument("--size", type=int, default=20_000, help="raster side in cells")
    ap.add_argument("--raster", type=Path, default=None, help="depth raster path")
    ap.add_argument("--generate", action="store_true", help="only generate the raster")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "flood.md")
    args = ap.parse_args()
    raster = args.raster or Path(f"/tmp/gridmap_bench_depth_{args.size}.tif")
    if args.generate:
        generate_raster(raster, args.size)
        return
    if not raster.exists():
        # a child process, so the generator's memory does not count
        cmd = [sys.executable, __file__, "--generate", "--size", str(args.size)]
        subprocess.run([*cmd, "--raster", str(raster)], check=True)

    import gridmap

    t = time.time()
    b = make_buildings(args.n, args.size)
    t_make = time.time() - t
    rss_before = _rss_mb("VmRSS")
    _reset_peak()
    load = os.getloadavg()[0]
    t, cpu = time.time(), time.process_time()
    g = gridmap.grade_flood(b, depth=raster)
    t_grade, cpu_grade = time.time() - t, time.process_time() - cpu
    peak = _rss_mb("VmHWM")
    t = time.time()
    move = g.households_to_move()
    t_move = time.time() - t
    summary = g.summary()

    ok_time, ok_mem = t_grade <= 60, peak <= 4096
    lines = [
        "# Benchmark: flood grading",
        "",
        f"- buildings: {args.n:,} rectangles (8-25 m), 1 depth raster of "
        f"{args.size:,} x {args.size:,} cells ({args.size**2 * 4 / 1e9:.1f} GB float32, "
        f"tiled deflate, {raster.stat().st_size / 1e6:.0f} MB on disk)",
        f"- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, Python {platform.python_version()}",
        f"- building the GeoDataFrame (not timed): {t_make:.1f} s, RSS {rss_before:.0f} MB",
        f"- **grade_flood: {t_grade:.1f} s wall** (target <= 60 s: {'OK' if ok_time else 'FAIL'}), "
        f"{cpu_grade:.1f} s CPU; load average before the run {load:.1f} on "
        f"{os.cpu_count()} CPUs shared with other jobs",
        f"- **peak RSS: {peak:.0f} MB** (target <= 4096 MB: {'OK' if ok_mem else 'FAIL'}; "
        "VmHWM, reset before grading, includes the buildings)",
        f"- households_to_move(): {t_move:.1f} s, {len(move):,} rows",
        f"- grids: {len(g.grids):,}, communities: {len(g.communities):,}",
        "",
        "| colour | buildings | households | households at risk | persons at risk |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary.itertuples():
        lines.append(
            f"| {row.colour} {row.colour_zh} | {row.buildings:,} | {row.households:,} | "
            f"{row.households_at_risk:,} | {row.persons_at_risk:,.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
