"""Benchmarks of evacuation planning: a synthetic 100k-household city, and Jakarta.

Two cases (``--case synthetic``, ``--case jakarta``, default both):

**synthetic** -- 100,000 households at risk, 200 shelters, 30,000+ junctions. Target:
``plan_evacuation`` in <= 60 s.

The synthetic city (EPSG:32652, not timed) is a perturbed street lattice of 175 x 175
junctions 60 m apart (10.4 km square; 350 streets drawn as long polylines that are *not*
split at the junctions, so the road network is noded as part of the timed run), one
apartment building per block (2-4 units, 4-9 storeys, 2 households per unit and floor),
a meandering river valley whose design flood (0-6 m) grades the buildings, and a
"current water" raster (the river channel, crossed by bridges every 1.5 km, plus
ponds) that blocks roads. Shelters: 200 dry junctions 0.3-2.5 km from the river,
capacities summing to 1.15 times the persons to move.

**jakarta** -- real data from ``../shared/realdata/jakarta`` (read at run time, never
copied): the attributed building footprints (``buildings_attrs.gpkg``; households
estimated with the Indonesian setting), shelters = its schools and mosques (``use`` in
education, place_of_worship; capacities from floor area), the OSM road centre lines
(``roads.shp``, 18,574 lines not split at junctions: noded in the timed run) and the
current-conditions flood depth grid (``flood_depth_current.tif``). The grid plan is built
first and not timed: the buildings partitioned into a lattice of 1.5 km "communities"
with 3-digit codes by :func:`gridmap.plan_grids`, then graded. Target: ``plan_evacuation``
in <= 30 s on 2 cores. Two demands: the default (households on flooded floors) and a
heavy one (every household of every building with water at its walls).

Run::

    .venv/bin/python bench/bench_evacuation.py [--case synthetic|jakarta|all]
        [--side 175] [--target 100000] [--write DIR]

Results are printed and written to ``bench/results/evacuation.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CRS = "EPSG:32652"
X0, Y0 = 400_000.0, 5_300_000.0
SPACING = 60.0
CELL = 10.0


def _river_distance(x: np.ndarray, y: np.ndarray, extent: float) -> np.ndarray:
    """Distance (m, vertical approximation) to a meandering river across the city."""
    centre = Y0 + extent / 2 + 900 * np.sin(2 * np.pi * (x - X0) / 5200.0)
    return np.abs(y - centre)


def _write_raster(path: Path, depth_fn, extent: float) -> None:
    import rasterio
    from rasterio.transform import from_origin

    n = int(np.ceil((extent + 400) / CELL))
    tr = from_origin(X0 - 200, Y0 + extent + 200, CELL, CELL)
    cols = np.arange(n)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=n,
        height=n,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=tr,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        nodata=-9999.0,
    ) as dst:
        for r0 in range(0, n, 256):
            rows = np.arange(r0, min(n, r0 + 256))
            cx = X0 - 200 + (cols + 0.5) * CELL
            cy = Y0 + extent + 200 - (rows + 0.5) * CELL
            gx, gy = np.meshgrid(cx, cy)
            dst.write(depth_fn(gx, gy).astype("float32"), 1, window=((r0, r0 + len(rows)), (0, n)))


def make_city(side: int, target: int, folder: Path, seed: int = 0):
    """Streets, buildings, shelters and the two rasters of the synthetic city."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    extent = (side - 1) * SPACING
    gx, gy = np.meshgrid(np.arange(side) * SPACING + X0, np.arange(side) * SPACING + Y0)
    gx = gx + rng.normal(0, 5, gx.shape)
    gy = gy + rng.normal(0, 5, gy.shape)
    lines = [shapely.linestrings(np.c_[gx[i], gy[i]]) for i in range(side)]
    lines += [shapely.linestrings(np.c_[gx[:, j], gy[:, j]]) for j in range(side)]
    k = np.r_[np.arange(side), np.arange(side)]
    highway = np.where(k % 10 == 0, "primary", np.where(k % 5 == 0, "secondary", "residential"))
    names = [f"{'东西' if i < side else '南北'}{k[i]}路" for i in range(2 * side)]
    streets = gpd.GeoDataFrame({"highway": highway, "name": names}, geometry=lines, crs=CRS)

    # one apartment building per block, at the block centre
    bx = (gx[:-1, :-1] + gx[1:, 1:]) / 2
    by = (gy[:-1, :-1] + gy[1:, 1:]) / 2
    bx, by = bx.ravel(), by.ravel()
    dist = _river_distance(bx, by, extent)
    # the design flood reaches 2.4 km from the river: keep the blocks near it, then thin
    near = np.flatnonzero(dist < 2400)
    n = len(near)
    units = rng.integers(2, 5, n)
    levels = rng.integers(4, 10, n)
    households = units * levels * 2
    # expected at-risk households: 2 per unit and flooded floor (1 floor per 3 m)
    floors = np.minimum(np.ceil(_design_depth(dist[near]) / 3.0), levels)
    risk = units * 2 * floors
    keep = rng.random(n) < min(1.0, 1.4 * target / max(risk.sum(), 1))  # trimmed later
    near, units, levels, households = near[keep], units[keep], levels[keep], households[keep]
    w, h = rng.uniform(25, 40, len(near)), rng.uniform(10, 14, len(near))
    geoms = shapely.box(bx[near] - w / 2, by[near] - h / 2, bx[near] + w / 2, by[near] + h / 2)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:06d}" for i in range(len(near))],
            "units": units,
            "levels": levels.astype(float),
            "households": households,
            "grid_code": [
                f"G{int(x // 400):03d}{int(y // 400):03d}"
                for x, y in zip(bx[near] - X0, by[near] - Y0, strict=True)
            ],
        },
        geometry=geoms,
        crs=CRS,
    )

    design = folder / "bench_evac_design.tif"
    current = folder / "bench_evac_current.tif"
    _write_raster(design, lambda x, y: _design_depth(_river_distance(x, y, extent)), extent)
    ponds = np.c_[rng.uniform(X0, X0 + extent, 40), rng.uniform(Y0, Y0 + extent, 40)]
    radius = rng.uniform(40, 120, 40)

    def current_depth(x, y):
        d = np.clip(1.5 - _river_distance(x, y, extent) / 100.0, 0, None)
        bridge = ((x - X0) % 1500) < 80
        d[bridge] = 0.0
        for (px, py), r in zip(ponds, radius, strict=True):
            d = np.maximum(d, np.where(np.hypot(x - px, y - py) < r, 0.6, 0.0))
        return d

    _write_raster(current, current_depth, extent)

    # shelters: dry junctions 0.3-2.5 km from the river
    jx, jy = gx.ravel(), gy.ravel()
    jd = _river_distance(jx, jy, extent)
    cand = np.flatnonzero((jd > 300) & (jd < 3000))
    pick = rng.choice(cand, 200, replace=False)
    shelters = gpd.GeoDataFrame(
        {"name": [f"避难所{i + 1:03d}" for i in range(200)], "type": "school"},
        geometry=shapely.points(jx[pick] + 15, jy[pick] + 15),
        crs=CRS,
    )
    return streets, buildings, shelters, design, current


def _design_depth(dist: np.ndarray) -> np.ndarray:
    """Design flood: 6 m at the river, 0 at 2.4 km."""
    return np.clip(6.0 * (1 - dist / 2400.0), 0, None)


def _plan_lines(plan, seconds: float, cpu: float, target: float, label: str) -> list[str]:
    """Markdown lines for one timed plan_evacuation run."""
    s = plan.summary()
    sol = plan.solver
    t = sol.get("transport") or {}
    lines = [
        f"- **plan_evacuation ({label}): {seconds:.1f} s wall** (target <= {target:g} s: "
        f"{'OK' if seconds <= target else 'FAIL'}), {cpu:.1f} s CPU",
        f"- demand: {s['demand_units']:,} unit groups, {s['households']:,} households, "
        f"{s['persons']:,} persons; road network {plan.params['road_nodes']:,} junctions, "
        f"{plan.params['road_edges']:,} edges; flooded at the peak "
        f"{s['impassable_edges']:,} edges ({s['impassable_km']} km)",
        f"- assignment: {sol['method']}; {sol['pairs']:,} building-shelter pairs within "
        f"{s['max_walk_min']:g} min, {sol['lp_pairs']:,} entered the LP in "
        f"{sol['lp_rounds']} rounds; gap to the LP bound {100 * sol['gap']:.3f} %"
        + (f"; vehicles: {t['pairs']:,} pairs, gap {100 * t['gap']:.3f} %" if t else ""),
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in plan.params["timings_s"].items()]
    waves = ", ".join(f"{k}: {v:,}" for k, v in s["persons_by_wave"].items())
    lines += [
        "",
        "| result | value |",
        "|---|---:|",
        f"| placed persons (walking, with shelter, wave, cut stage) | {s['placed_persons']:,} "
        f"({100 * s['placed_share']:.1f} %) |",
        f"| needs transport (no shelter within {s['max_walk_min']:g} min) | "
        f"{s['needs_transport_persons']:,} |",
        f"| no capacity (every shelter within reach full) | {s['no_capacity_persons']:,} |",
        f"| no route | {s['no_route_persons']:,} |",
        f"| not walking, driven to a shelter with room | {s['transport_placed_persons']:,} |",
        f"| persons by wave | {waves} |",
        f"| placed on routes cut at the peak | {s['cut_at_peak_persons']:,} |",
        f"| shelters open / used / islands at the peak | {s['shelters_open']} / "
        f"{s['shelters_used']} / {s['shelters_island_at_peak']} |",
        f"| mean / longest walk (min) | {s['mean_travel_time_min']} / {s['max_travel_time_min']} |",
        f"| clearance time (min) | {s['clearance_time_min']} |",
        "",
    ]
    return lines


def _timed(fn):
    t, cpu = time.time(), time.process_time()
    out = fn()
    return out, time.time() - t, time.process_time() - cpu


def run_synthetic(args) -> list[str]:
    """The 100,000-household synthetic city."""
    import gridmap

    t = time.time()
    streets, buildings, shelters, design, current = make_city(args.side, args.target, args.folder)
    graded = gridmap.grade_flood(buildings, depth=design)
    # keep buildings in random order until `target` households are at risk, then regrade
    at = graded.buildings["households_at_risk"].to_numpy()
    order = np.random.default_rng(7).permutation(len(at))
    cut = np.searchsorted(np.cumsum(at[order]), args.target)
    dry = order[at[order] == 0]
    keep = np.sort(np.r_[order[: cut + 1], dry[: len(dry) // 4]])
    buildings = buildings.iloc[keep].reset_index(drop=True)
    graded = gridmap.grade_flood(buildings, depth=design)
    persons = np.ceil(
        graded.households_to_move().groupby(["building_id", "unit"])["households"].sum() * 2.62
        - 1e-9
    )
    rng = np.random.default_rng(5)
    caps = rng.uniform(0.7, 1.3, len(shelters))
    shelters["capacity"] = np.floor(caps / caps.sum() * 1.15 * persons.sum()).astype(int)
    t_make = time.time() - t
    load = os.getloadavg()[0]
    # the roads are cut by the current water (the river channel, ponds): `depth=current`
    plan, wall, cpu = _timed(
        lambda: gridmap.plan_evacuation(graded, streets, shelters, depth=current)
    )
    lines = [
        "## Synthetic city: 100,000 households at risk",
        "",
        f"- city: {args.side} x {args.side} perturbed street lattice, 60 m blocks, "
        f"{len(streets)} streets as unsplit polylines; {len(shelters)} shelters "
        f"(capacity {int(shelters['capacity'].sum()):,} persons); load average before "
        f"the run {load:.1f}",
        f"- building the city and grading it (not timed): {t_make:.1f} s",
    ]
    lines += _plan_lines(plan, wall, cpu, 60, "synthetic")
    if args.write is not None:
        _, w, _ = _timed(
            lambda: gridmap.write_evacuation_outputs(plan, args.write / "synthetic", tiles=None)
        )
        lines += [f"write_evacuation_outputs: {w:.1f} s", ""]
    return lines


def jakarta_inputs(folder: Path):
    """The Jakarta plan (lattice communities), its flood grading and the shelters."""
    import geopandas as gpd
    import shapely

    import gridmap

    b = gridmap.read_buildings(folder / "buildings_attrs.gpkg", on_bad_levels="null")
    b = gridmap.estimate_households(b, region="ID")
    metric = b.estimate_utm_crs()
    bm = b.to_crs(metric)
    x0, y0, x1, y1 = bm.total_bounds
    step = 1500.0
    cells = [
        shapely.box(x, y, x + step, y + step)
        for x in np.arange(x0 - 1, x1, step)
        for y in np.arange(y0 - 1, y1, step)
    ]
    comm = gpd.GeoDataFrame(geometry=cells, crs=metric)
    comm = comm[comm.intersects(shapely.MultiPoint(bm.centroid.to_numpy()))].reset_index(drop=True)
    comm["street_code"] = [f"{1 + i // 50:03d}" for i in range(len(comm))]
    comm["community_code"] = [f"{1 + i % 50:03d}" for i in range(len(comm))]
    plan = gridmap.plan_grids(bm, comm, admin_code="317101")
    graded = gridmap.grade_flood(plan, depth=folder / "flood_depth_current.tif")
    raw = gpd.read_file(folder / "buildings_attrs.gpkg")
    shelters = raw[raw["use"].isin(["education", "place_of_worship"])].reset_index(drop=True)
    return plan, graded, shelters


def run_jakarta(args) -> list[str]:
    """Jakarta: schools and mosques as shelters, OSM roads, the current flood grid."""
    import gridmap

    folder = args.realdata / "jakarta"
    if not (folder / "roads.shp").exists():
        return ["## Jakarta", "", f"skipped: {folder} not found", ""]
    t = time.time()
    plan, graded, shelters = jakarta_inputs(folder)
    t_make = time.time() - t
    lines = [
        "## Jakarta: schools and mosques, OSM roads, current flood",
        "",
        f"- inputs: {len(plan.buildings):,} buildings ({int(plan.buildings['households'].sum()):,}"
        f" households, region ID: 3.9 persons per household), plan of {len(plan.grids):,} "
        f"grids in {plan.grids['community_code'].nunique()} lattice communities; "
        f"{len(shelters)} shelters (schools and mosques, capacity from floor area)",
        f"- building the plan and grading it (not timed): {t_make:.1f} s; load average "
        f"{os.getloadavg()[0]:.1f}",
        "",
    ]

    def heavy(b):
        return b["households"].where(b["depth_m"] > 0, 0)

    for label, who in (("default demand", None), ("heavy demand", heavy)):
        evac, wall, cpu = _timed(
            lambda who=who: gridmap.plan_evacuation(
                graded, folder / "roads.shp", shelters, region="ID", who=who
            )
        )
        lines += [f"### {label}", ""]
        lines += _plan_lines(evac, wall, cpu, 30, f"Jakarta, {label}")
        if args.write is not None:
            _, w, _ = _timed(
                lambda evac=evac, label=label: gridmap.write_evacuation_outputs(
                    evac, args.write / f"jakarta_{label.split()[0]}", tiles=None
                )
            )
            lines += [f"write_evacuation_outputs: {w:.1f} s", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["synthetic", "jakarta", "all"], default="all")
    ap.add_argument("--side", type=int, default=175, help="junctions per side of the lattice")
    ap.add_argument("--target", type=int, default=100_000, help="households at risk")
    ap.add_argument("--folder", type=Path, default=Path("/tmp"), help="where rasters go")
    ap.add_argument("--realdata", type=Path, default=HERE.parents[1] / "shared" / "realdata")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "evacuation.md")
    ap.add_argument("--write", type=Path, default=None, help="also write the outputs here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)

    lines = [
        "# Benchmark: evacuation planning",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"visible, Python {platform.python_version()}.",
        "",
    ]
    if args.case in ("synthetic", "all"):
        lines += run_synthetic(args)
    if args.case in ("jakarta", "all"):
        lines += run_jakarta(args)
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
