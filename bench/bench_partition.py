"""Benchmark of the gridmap partition pipeline on synthetic cities, with a spopt peer.

For each size (``--sizes 10000 100000 1000000``) the driver

1. generates a city with :mod:`synth_city` into a GeoPackage (not timed);
2. runs, in a fresh subprocess, the pipeline ``gridmap.read_buildings`` →
   ``gridmap.estimate_households`` → ``gridmap.plan_grids`` → ``Plan.to_file``, timing
   each stage (wall clock) and the peak memory (the process's own peak RSS, or the
   summed RSS of the process and its workers sampled from ``/proc`` every 0.2 s if
   higher; also the subprocess's ``ru_maxrss``);
3. checks the plan with ``gridmap.validate_plan`` and reports the share of residential
   grids within their household range, discontiguous grids, overlap and gap area (m²),
   and the mean Polsby–Popper compactness (4πA/P²) of the grid polygons.

As a peer, spopt's ``MaxPHeuristic`` (floor 300 households) regionalises the buildings
of one or two communities (1,000–2,000 buildings; adjacency = Rook contiguity of the
Voronoi cells of the buildings, clipped to the community), next to ``plan_grids`` on the
same subset; both report the share of regions with 300–500 households.

Results go to ``bench/results/partition.json`` and ``bench/results/partition.md``; the
Markdown tables are printed too.

Usage::

    python bench/bench_partition.py --sizes 10000 100000 1000000
    python bench/bench_partition.py --sizes 10000 --peer-only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth_city  # noqa: E402  (bench/ is not a package)

ADMIN_CODE = "230717"
LAYERS = ("communities", "barriers", "compounds", "difficult", "institutions")
RANGE = (300, 500)


# --------------------------------------------------------------------------- memory


def _rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident set size of this process, in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _descendants(root: int) -> list[int]:
    """Process ids of `root` and all its descendants (from ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _rss_sum_mb(pids: list[int]) -> float:
    """Sum of the resident set sizes of `pids` (an upper bound: forked workers share
    pages that each one counts)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total / 2**20


def _pss_sum_mb(pids: list[int]) -> float:
    """Sum of the proportional set sizes of `pids`: each page shared by k processes
    counts 1/k in each, so forked workers are not counted several times over."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total / 2**20


class _Stages:
    """Wall time and peak memory per stage.

    A thread samples every 0.2 s the summed RSS of this process and its descendants,
    so that worker processes count too (the process tree is rescanned every second).
    """

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.overall_mb = 0.0
        self.overall_pss_mb = 0.0
        self._current = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        pids, tick = [os.getpid()], 0
        while not self._stop.wait(0.2):
            if tick % 5 == 0 and os.path.isdir("/proc"):
                pids = _descendants(os.getpid())
            tick += 1
            now = _rss_sum_mb(pids)
            self._current = max(self._current, now)
            self.overall_mb = max(self.overall_mb, now)
            if tick % 5 == 1:  # PSS is slower to read: once a second
                self.overall_pss_mb = max(self.overall_pss_mb, _pss_sum_mb(pids))

    @contextmanager
    def stage(self, name: str):
        self._current = _rss_mb()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round(time.perf_counter() - start, 3)
            self.peak_mb[name] = round(max(self._current, _rss_mb()), 1)
            self.overall_mb = max(self.overall_mb, self.peak_mb[name])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- plan metrics


def _polsby_popper(geoms) -> np.ndarray:
    import shapely

    area, perimeter = shapely.area(geoms), shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perimeter > 0, 4 * math.pi * area / perimeter**2, np.nan)


def _plan_metrics(grids, report) -> dict:
    """Quality figures of a plan from its grids and its validation report."""
    from gridmap.validate import summary

    residential = grids[grids["kind"] != "special"]
    hh = residential["households"].astype(float)
    in_range = (hh >= residential["range_min"]) & (hh <= residential["range_max"])
    in_300_500 = (hh >= RANGE[0]) & (hh <= RANGE[1])
    counts = summary(report)
    totals = report.attrs.get("totals", {})
    pp = _polsby_popper(np.asarray(grids.geometry.array))
    return {
        "grids": len(grids),
        "residential_grids": len(residential),
        "special_grids": int((grids["kind"] == "special").sum()),
        "households": int(grids["households"].sum()),
        "in_range_share": round(float(in_range.mean()), 4) if len(residential) else None,
        "in_300_500_share": round(float(in_300_500.mean()), 4) if len(residential) else None,
        "households_min": int(hh.min()) if len(hh) else None,
        "households_median": float(hh.median()) if len(hh) else None,
        "households_max": int(hh.max()) if len(hh) else None,
        "discontiguous": counts.get("discontiguous", 0),
        "overlap_m2": round(totals.get("overlap_m2", float("nan")), 1),
        "gap_m2": round(totals.get("gap_m2", float("nan")), 1),
        "mean_polsby_popper": round(float(np.nanmean(pp)), 4) if len(pp) else None,
        "validation_errors": int((report["severity"] == "error").sum()),
        "validation_warnings": int((report["severity"] == "warning").sum()),
        "checks": {k: v for k, v in counts.items() if v},
    }


def _read_layers(gpkg: Path) -> dict:
    import geopandas as gpd

    return {name: gpd.read_file(gpkg, layer=name, engine="pyogrio") for name in LAYERS}


def run_pipeline(gpkg: Path, out: Path) -> dict:
    """Run and time the full pipeline on one city (called in a fresh subprocess)."""
    import gridmap

    layers = _read_layers(gpkg)  # input layers: not timed
    stages = _Stages()
    result: dict = {"gpkg": str(gpkg), "plan": str(out)}
    try:
        start = time.perf_counter()
        with stages.stage("read_buildings"):
            buildings = gridmap.read_buildings(gpkg, layer="buildings")
        with stages.stage("estimate_households"):
            buildings = gridmap.estimate_households(buildings)
        with stages.stage("plan_grids"):
            plan = gridmap.plan_grids(
                buildings,
                layers["communities"],
                barriers=layers["barriers"],
                compounds=layers["compounds"],
                difficult=layers["difficult"],
                institutions=layers["institutions"],
                admin_code=ADMIN_CODE,
            )
        with stages.stage("to_file"):
            plan.to_file(out)
        result["total_s"] = round(time.perf_counter() - start, 3)
        with stages.stage("validate"):
            report = _validate(plan, layers)
        result["metrics"] = _plan_metrics(plan.grids, report)
        result["status"] = "ok"
    except Exception as exc:  # the pipeline is being written: report, don't crash
        result["status"] = f"failed: {type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=6)
    finally:
        stages.close()
    result["stage_s"] = stages.times
    result["stage_peak_mb"] = stages.peak_mb
    result["peak_mb"] = round(max(stages.overall_mb, _rss_mb("VmHWM")), 1)
    # the memory the run really held: proportional set size summed over the workers
    result["peak_pss_mb"] = round(max(stages.overall_pss_mb, _rss_mb("VmHWM")), 1)
    result["peak_main_process_mb"] = round(_rss_mb("VmHWM"), 1)
    return result


def _validate(plan, layers: dict):
    """Validate a plan independently, against the input layers in the plan's CRS."""
    import gridmap

    crs = plan.grids.crs

    def metric(gdf):
        return None if gdf is None else gridmap.to_metric(gdf, crs)

    return gridmap.validate_plan(
        plan.grids,
        plan.buildings,
        communities=metric(layers["communities"]),
        barriers=metric(layers["barriers"]),
        compounds=metric(layers["compounds"]),
        splits=plan.splits,
    )


# --------------------------------------------------------------------------- spopt peer


def _subset(city_gpkg: Path, low: int = 1000, high: int = 2000, target: int = 1000) -> dict:
    """Buildings of the community (or two consecutive, hence adjacent, communities)
    whose building count is nearest `target` within [low, high] (spopt's heuristic
    slows down steeply with the number of areas)."""
    import shapely

    layers = _read_layers(city_gpkg)
    buildings = _read_buildings(city_gpkg)
    comm = layers["communities"].sort_values("community_code").reset_index(drop=True)
    points = shapely.point_on_surface(np.asarray(buildings.geometry.array))
    bi, ci = shapely.STRtree(np.asarray(comm.geometry.array)).query(points, predicate="within")
    owner = np.full(len(buildings), -1)
    owner[bi] = ci
    counts = np.bincount(owner[owner >= 0], minlength=len(comm))
    options = [((k,), counts[k]) for k in range(len(comm))]
    options += [((k, k + 1), counts[k] + counts[k + 1]) for k in range(len(comm) - 1)]
    fitting = [o for o in options if low <= o[1] <= high] or options
    chosen, _ = min(fitting, key=lambda o: abs(o[1] - target))
    chosen = list(chosen)
    inside = np.isin(owner, chosen)
    area = shapely.union_all(np.asarray(comm.geometry.array)[chosen])
    clip = {
        name: gdf[gdf.intersects(area)] for name, gdf in layers.items() if name != "communities"
    }
    return {
        "buildings": buildings[inside].reset_index(drop=True),
        "communities": comm.iloc[chosen].reset_index(drop=True),
        "area": area,
        **clip,
    }


def _read_buildings(gpkg: Path):
    """Buildings through ``gridmap.read_buildings`` when it exists, else read directly."""
    import geopandas as gpd

    try:
        import gridmap

        return gridmap.read_buildings(gpkg, layer="buildings")
    except Exception:  # noqa: BLE001 - the loader may not exist yet
        raw = gpd.read_file(gpkg, layer="buildings", engine="pyogrio")
        return raw.rename(columns={v: k for k, v in synth_city.SOURCE_COLUMNS.items()})


def _households(buildings) -> tuple[object, str]:
    """Households per building: gridmap's estimate when available, else a rough one."""
    try:
        import gridmap

        est = gridmap.estimate_households(buildings)
        return est, "gridmap.estimate_households"
    except Exception as exc:  # noqa: BLE001 - the estimator may not exist yet
        use = buildings["use"].astype(str)  # type: ignore[index]
        levels = buildings["levels"].fillna(6.0)
        units = buildings["units"].fillna(2.0)
        rough = np.select(
            [use.isin(["house", "rural_house"]), use == "apartments"],
            [1.0, levels * units * 2.0],
            0.0,
        )
        given = buildings["households"].astype(float)
        out = buildings.copy()
        out["households"] = np.where(given.notna(), given, rough).astype(int)
        return out, f"given, else levels × units × 2 ({type(exc).__name__})"


def run_peer(city_gpkg: Path, *, iterations: int = 3, sa_iterations: int = 1) -> dict:
    """spopt MaxPHeuristic (floor 300) vs gridmap.plan_grids on a 1,000–2,000 building
    subset of a city."""
    import geopandas as gpd
    import libpysal
    import shapely
    from libpysal.cg import voronoi_frames
    from spopt.region import MaxPHeuristic

    sub = _subset(city_gpkg)
    buildings, source = _households(sub["buildings"])
    out: dict = {
        "communities": sub["communities"]["community_code"].tolist(),
        "buildings": len(buildings),
        "households": int(buildings["households"].sum()),
        "households_source": source,
    }

    # areas: Voronoi cells of the buildings' representative points, clipped to the subset
    points = gpd.GeoSeries(buildings.representative_point(), crs=buildings.crs)
    cells = voronoi_frames(points, clip=sub["area"], as_gdf=True, return_input=False)
    frame = gpd.GeoDataFrame(
        {
            "households": buildings["households"].to_numpy(dtype=float),
            "x": points.x.to_numpy(),
            "y": points.y.to_numpy(),
        },
        geometry=np.asarray(cells.geometry.array),
        crs=buildings.crs,
    )
    w = libpysal.weights.Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
    start = time.perf_counter()
    model = MaxPHeuristic(
        frame,
        w,
        ["x", "y"],
        "households",
        RANGE[0],
        top_n=2,
        max_iterations_construction=iterations,
        max_iterations_sa=sa_iterations,
    )
    model.solve()
    elapsed = time.perf_counter() - start
    labels = np.asarray(model.labels_)
    valid = labels >= 0
    _, region = np.unique(labels[valid], return_inverse=True)  # labels start at 1
    region_hh = np.bincount(region, weights=frame["households"].to_numpy()[valid])
    regions = frame[valid].assign(region=labels[valid]).dissolve("region")
    out["spopt"] = {
        "method": "spopt MaxPHeuristic (Rook on Voronoi cells, attrs x/y)",
        "iterations": {"construction": iterations, "sa": sa_iterations},
        "time_s": round(elapsed, 2),
        "regions": int(len(region_hh)),
        "unassigned_areas": int((~valid).sum()),
        "in_300_500_share": round(float(((region_hh >= 300) & (region_hh <= 500)).mean()), 4),
        "households_min": int(region_hh.min()),
        "households_median": float(np.median(region_hh)),
        "households_max": int(region_hh.max()),
        "mean_polsby_popper": round(
            float(np.nanmean(_polsby_popper(np.asarray(regions.geometry.array)))), 4
        ),
        "multipart_regions": int((shapely.get_num_geometries(regions.geometry.array) > 1).sum()),
    }

    try:
        import gridmap

        start = time.perf_counter()
        plan = gridmap.plan_grids(
            buildings,
            sub["communities"],
            barriers=sub["barriers"],
            compounds=sub["compounds"],
            difficult=sub["difficult"],
            institutions=sub["institutions"],
            admin_code=ADMIN_CODE,
        )
        elapsed = time.perf_counter() - start
        report = _validate(plan, {**sub})
        metrics = _plan_metrics(plan.grids, report)
        out["gridmap"] = {"method": "gridmap.plan_grids", "time_s": round(elapsed, 2), **metrics}
    except Exception as exc:  # noqa: BLE001 - plan_grids is being written
        out["gridmap"] = {"status": f"failed: {type(exc).__name__}: {exc}"}
    return out


# --------------------------------------------------------------------------- report


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def markdown(results: dict) -> str:
    lines = ["# gridmap partition benchmark", ""]
    lines.append(
        f"Machine: {os.cpu_count()} CPU, Python {sys.version.split()[0]}; "
        f"run {results['started']}. Times are wall-clock seconds; memory is the peak RSS of the pipeline process "
        "summed with its workers' (an upper bound: forked workers share pages), and the peak PSS "
        "summed the same way (each shared page counted once). Cities already on disk are not "
        "rewritten (write s: –)."
    )
    lines += ["", "## Synthetic cities", ""]
    lines.append("| buildings | communities | households (true) | generate s | write gpkg s |")
    lines.append("|---:|---:|---:|---:|---:|")
    for run in results["runs"]:
        c = run["city"]
        lines.append(
            f"| {_fmt(c['buildings'])} | {_fmt(c['communities'])} | "
            f"{_fmt(c['households_true'])} | {_fmt(c['generate_s'], 2)} | {_fmt(c.get('write_s'), 1)} |"
        )
    lines += ["", "## Pipeline", ""]
    header = (
        "| buildings | status | read s | estimate s | plan s | write s | total s | peak MB | peak PSS MB "
        "| grids | in range | in 300–500 | discontiguous | overlap m² | gap m² | mean PP "
        "| validate s | errors |"
    )
    lines += [header, _align(header)]
    for run in results["runs"]:
        p = run.get("pipeline", {})
        m = p.get("metrics", {})
        s = p.get("stage_s", {})
        status = "ok" if p.get("status") == "ok" else "failed"
        lines.append(
            "| "
            + " | ".join(
                [
                    _fmt(run["city"]["buildings"]),
                    status,
                    _fmt(s.get("read_buildings"), 2),
                    _fmt(s.get("estimate_households"), 2),
                    _fmt(s.get("plan_grids"), 2),
                    _fmt(s.get("to_file"), 2),
                    _fmt(p.get("total_s"), 2),
                    _fmt(p.get("peak_mb"), 0),
                    _fmt(p.get("peak_pss_mb"), 0),
                    _fmt(m.get("grids")),
                    _pct(m.get("in_range_share")),
                    _pct(m.get("in_300_500_share")),
                    _fmt(m.get("discontiguous")),
                    _fmt(m.get("overlap_m2")),
                    _fmt(m.get("gap_m2")),
                    _fmt(m.get("mean_polsby_popper"), 3),
                    _fmt(s.get("validate"), 2),
                    _fmt(m.get("validation_errors")),
                ]
            )
            + " |"
        )
    failed = [r for r in results["runs"] if r.get("pipeline", {}).get("status", "ok") != "ok"]
    for run in failed:
        lines.append("")
        lines.append(f"- {_fmt(run['city']['buildings'])} buildings: {run['pipeline']['status']}")
    peer = results.get("peer")
    if peer:
        lines += ["", "## Peer: spopt MaxPHeuristic vs gridmap on one subset", ""]
        if "error" in peer:
            lines.append(f"Peer run failed: {peer['error']}")
        else:
            lines.append(
                f"Subset: communities {', '.join(peer['communities'])} of the "
                f"{_fmt(peer['city_buildings'])}-building city: {_fmt(peer['buildings'])} "
                f"buildings, {_fmt(peer['households'])} households ({peer['households_source']})."
            )
            lines.append("")
            head = "| method | time s | regions | in 300–500 | min | median | max | mean PP |"
            lines += [head, _align(head)]
            for key in ("spopt", "gridmap"):
                r = peer.get(key, {})
                if "status" in r:
                    lines.append(f"| {key} | {r['status']} |" + " |" * 6)
                    continue
                lines.append(
                    "| "
                    + " | ".join(
                        [
                            r.get("method", key),
                            _fmt(r.get("time_s"), 2),
                            _fmt(r.get("regions", r.get("residential_grids"))),
                            _pct(r.get("in_300_500_share")),
                            _fmt(r.get("households_min")),
                            _fmt(r.get("households_median"), 0),
                            _fmt(r.get("households_max")),
                            _fmt(r.get("mean_polsby_popper"), 3),
                        ]
                    )
                    + " |"
                )
    return "\n".join(lines) + "\n"


def _align(header: str) -> str:
    return "|" + "---:|" * (header.count("|") - 1)


# --------------------------------------------------------------------------- driver


def _city(size: int, seed: int, workdir: Path) -> dict:
    gpkg = workdir / f"city_{size}_s{seed}.gpkg"
    start = time.perf_counter()
    city = synth_city.generate_city(size, seed=seed)
    generated = time.perf_counter() - start
    info = {
        "gpkg": str(gpkg),
        "buildings": len(city["buildings"]),
        "communities": len(city["communities"]),
        "households_true": city["stats"]["households_true"],
        "generate_s": round(generated, 2),
    }
    if not gpkg.exists():
        start = time.perf_counter()
        synth_city.write_city(city, gpkg)
        info["write_s"] = round(time.perf_counter() - start, 1)
    return info


def _run_child(gpkg: Path, out: Path, timeout: float) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-one",
        str(gpkg),
        "--plan-out",
        str(out),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"status": f"subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}"}
    result = json.loads(lines[-1])
    if after > before:  # ru_maxrss of children is the max over all children so far
        result["child_maxrss_mb"] = round(after / 1024, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gridmap partition benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gridmap-bench"))
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per size")
    parser.add_argument("--peer-only", action="store_true", help="only the spopt comparison")
    parser.add_argument("--no-peer", action="store_true", help="skip the spopt comparison")
    parser.add_argument("--peer-size", type=int, default=10_000, help="city for the peer subset")
    parser.add_argument("--peer-iterations", type=int, default=3, help="MaxP construction runs")
    parser.add_argument(
        "--peer-sa-iterations", type=int, default=1, help="MaxP simulated-annealing runs (slow)"
    )
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plan-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_one:  # child process: one pipeline run, JSON on stdout
        print(json.dumps(run_pipeline(args.run_one, args.plan_out)))
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
    if not args.peer_only:
        for size in args.sizes:
            city = _city(size, args.seed, args.workdir)
            print(f"city {size:,}: {city}", file=sys.stderr)
            plan_out = args.workdir / f"plan_{size}_s{args.seed}.gpkg"
            pipeline = _run_child(Path(city["gpkg"]), plan_out, args.timeout)
            print(f"pipeline {size:,}: {pipeline.get('status')}", file=sys.stderr)
            results["runs"].append({"size": size, "city": city, "pipeline": pipeline})
    if not args.no_peer:
        city = _city(args.peer_size, args.seed, args.workdir)
        try:
            peer = run_peer(
                Path(city["gpkg"]),
                iterations=args.peer_iterations,
                sa_iterations=args.peer_sa_iterations,
            )
            peer["city_buildings"] = city["buildings"]
        except Exception as exc:  # noqa: BLE001 - report and keep the other results
            peer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        results["peer"] = peer

    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "partition.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
    )
    table = markdown(results)
    (args.results / "partition.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
