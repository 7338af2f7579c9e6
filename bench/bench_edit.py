"""Benchmark of hand edits on a ~1,000-grid plan: the library and the web API.

The plan is the synthetic city of 100,000 buildings (:mod:`bench.synth_city`,
partitioned by :func:`gridmap.plan_grids` into about 1,000 grids), cached under
``/tmp/gridmap-bench`` (the same files as ``bench/bench_partition.py``).

Timed, median over several runs of each operation:

- library: :func:`gridmap.edit.move_buildings` (three buildings between neighbouring
  grids, and back), :func:`~gridmap.edit.merge_grids`, :func:`~gridmap.edit.split_grid`
  (the merged grid into two), :func:`~gridmap.edit.undo`;
- API: the same through ``POST /api/plans/1/edits`` with FastAPI's TestClient (the store
  is a real SQLite file; each accepted edit is saved as a new version), and the first
  ``GET /api/grids`` after an edit.

Target: one move answers in <= 300 ms median. Results go to ``bench/results/edit.json``,
with the CPU time of each operation and the machine's load average: on a shared machine
the wall-clock figures grow with the load, the CPU times do not.

Usage::

    python bench/bench_edit.py [--runs 9] [--buildings 100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

TARGET_MS = 300.0
WORKDIR = Path("/tmp/gridmap-bench")
RESULTS = REPO / "bench" / "results" / "edit.json"


def bench_plan(n_buildings: int, seed: int = 0):
    """The cached plan of the synthetic city (built and cached when missing)."""
    import gridmap

    WORKDIR.mkdir(parents=True, exist_ok=True)
    plan_path = WORKDIR / f"plan_{n_buildings}_s{seed}.gpkg"
    if not plan_path.exists():
        import bench_partition
        import synth_city

        city_path = WORKDIR / f"city_{n_buildings}_s{seed}.gpkg"
        if not city_path.exists():
            synth_city.write_city(synth_city.generate_city(n_buildings, seed=seed), city_path)
        result = bench_partition.run_pipeline(city_path, plan_path)
        if result.get("status") != "ok":
            raise SystemExit(f"building the benchmark plan failed: {result.get('status')}")
    return gridmap.read_plan(plan_path)


def pairs(plan, n: int, seed: int = 0) -> list[tuple[str, str, list[str]]]:
    """`n` pairs of neighbouring residential grids of one community, with the three
    buildings of the first nearest to the second."""
    import numpy as np

    from gridmap import edit

    rng = np.random.default_rng(seed)
    g = plan.grids
    codes = g.loc[g["kind"] == "community", "grid_code"].to_numpy().copy()
    rng.shuffle(codes)
    out, used = [], set()
    b = plan.buildings
    geoms = g.set_index("grid_code").geometry
    for src in codes:
        if src in used:
            continue
        nb = edit.neighbours(plan, src)
        nb = nb[(nb["kind"] == "community") & ~nb["grid_code"].isin(used)]
        if not len(nb):
            continue
        dst = nb["grid_code"].iloc[0]
        mine = b[(b["grid_code"] == src) & (b["households"] > 0)]
        if len(mine) < 6:
            continue
        ids = mine.assign(d=mine.geometry.distance(geoms[dst])).nsmallest(3, "d")["building_id"]
        out.append((src, dst, ids.tolist()))
        used |= {src, dst}
        if len(out) == n:
            break
    return out


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _summary(times: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "runs": len(times),
    }


def bench_library(plan, work: list, runs: int) -> dict:
    """Time the edit functions on the plan (wall clock and this process's CPU time)."""
    from gridmap import edit

    ops = ("move_buildings", "merge_grids", "split_grid", "undo")
    wall: dict[str, list[float]] = {op: [] for op in ops}
    cpu: dict[str, list[float]] = {op: [] for op in ops}

    def timed(op, func, *args, **kwargs):
        w, c = time.perf_counter(), time.process_time()
        out = func(*args, **kwargs)
        wall[op].append(_ms(time.perf_counter() - w))
        cpu[op].append(_ms(time.process_time() - c))
        return out

    for src, dst, ids in work[:runs]:
        p1, _ = timed("move_buildings", edit.move_buildings, plan, dst, ids=ids, reason="bench")
        p2, _ = timed("move_buildings", edit.move_buildings, p1, src, ids=ids, reason="back")
        assert list(p2.grids["grid_code"]) == list(plan.grids["grid_code"])
        p3, _ = timed("merge_grids", edit.merge_grids, plan, src, dst, reason="bench")
        timed("split_grid", edit.split_grid, p3, src, n=2, reason="bench")
        timed("undo", edit.undo, p3)
    return {
        op: {**_summary(wall[op]), "cpu_median_ms": _summary(cpu[op])["median_ms"]} for op in ops
    }


def bench_api(plan, work: list, runs: int) -> dict:
    """Time ``POST /api/plans/1/edits`` with TestClient on a real store."""
    from fastapi.testclient import TestClient

    from api.main import create_app, store_plan
    from api.settings import Settings
    from api.store import Store

    token = "bench-token"
    auth = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-edit-") as tmp:
        path = Path(tmp) / "store.gpkg"
        s = time.perf_counter()
        store = Store(path)
        store_plan(store, plan, "bench city")
        store.close()
        stored_s = time.perf_counter() - s
        app = create_app(settings=Settings(store_path=path, token=token))
        t: dict[str, list[float]] = {
            "move_buildings": [],
            "merge_grids": [],
            "split_grid": [],
            "undo": [],
            "server_move_ms": [],
            "cpu_move_ms": [],
            "get_grids_after_edit": [],
        }
        with TestClient(app) as c:
            version = 1

            def post(op: str, args: dict) -> dict:
                nonlocal version
                start, cpu = time.perf_counter(), time.process_time()
                r = c.post(
                    "/api/plans/1/edits",
                    json={"version": version, "op": op, "args": args, "reason": "bench"},
                    headers=auth,
                )
                took = _ms(time.perf_counter() - start)
                cpu_ms = _ms(time.process_time() - cpu)
                if r.status_code != 200:
                    raise SystemExit(f"{op} failed: {r.status_code} {r.text[:300]}")
                body = r.json()
                version = body["version"]
                body["_ms"] = took
                body["_cpu_ms"] = cpu_ms
                return body

            # warm-up: the first request decodes the stored plan (not an edit's cost); the
            # server also decodes the newest plan in the background when it starts
            s = time.perf_counter()
            c.get("/api/grids", params={"plan": 1})
            first = work[runs] if len(work) > runs else work[0]
            post("move_buildings", {"ids": first[2], "to_grid": first[1]})
            warm_ms = _ms(time.perf_counter() - s)
            post("undo", {})
            for src, dst, ids in work[:runs]:
                b = post("move_buildings", {"ids": ids, "to_grid": dst})
                t["move_buildings"].append(b["_ms"])
                t["server_move_ms"].append(b["elapsed_ms"])
                t["cpu_move_ms"].append(b["_cpu_ms"])
                s = time.perf_counter()
                fc = c.get("/api/grids", params={"plan": 1})
                t["get_grids_after_edit"].append(_ms(time.perf_counter() - s))
                assert fc.status_code == 200
                b = post("move_buildings", {"ids": ids, "to_grid": src})
                t["move_buildings"].append(b["_ms"])
                t["server_move_ms"].append(b["elapsed_ms"])
                t["cpu_move_ms"].append(b["_cpu_ms"])
                t["merge_grids"].append(post("merge_grids", {"a": src, "b": dst})["_ms"])
                t["split_grid"].append(post("split_grid", {"code": src, "n": 2})["_ms"])
                t["undo"].append(post("undo", {})["_ms"])
                t["undo"].append(post("undo", {})["_ms"])
            versions = len(c.get("/api/plans/1/versions").json())
        size_mb = round(path.stat().st_size / 1e6, 1)
    out = {op: _summary(v) for op, v in t.items()}
    out["store_plan_s"] = round(stored_s, 2)
    out["first_request_ms"] = warm_ms
    out["versions_saved"] = versions
    out["store_mb"] = size_mb
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="pairs of grids edited")
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--no-api", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("gridmap").setLevel(logging.ERROR)
    s = time.perf_counter()
    plan = bench_plan(args.buildings)
    read_s = time.perf_counter() - s
    work = pairs(plan, args.runs + 1)
    print(f"plan: {plan} (read in {read_s:.1f} s); {len(work)} pairs of neighbouring grids")
    result = {
        "run": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "plan": {
            "grids": int(len(plan.grids)),
            "buildings": int(len(plan.buildings)),
            "households": int(plan.grids["households"].sum()),
        },
        "target_ms": TARGET_MS,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "library": bench_library(plan, work, args.runs),
    }
    for op, r in result["library"].items():
        print(
            f"library {op:16s} median {r['median_ms']:8.1f} ms  (min {r['min_ms']}, max {r['max_ms']}; CPU {r['cpu_median_ms']} ms)"
        )
    if not args.no_api:
        result["api"] = bench_api(plan, work, args.runs)
        for op, r in result["api"].items():
            if isinstance(r, dict):
                print(
                    f"api     {op:20s} median {r['median_ms']:8.1f} ms  (min {r['min_ms']}, max {r['max_ms']})"
                )
        print(
            f"api: store_plan {result['api']['store_plan_s']} s, first request "
            f"{result['api']['first_request_ms']} ms, {result['api']['versions_saved']} versions, "
            f"store {result['api']['store_mb']} MB"
        )
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    move = result.get("api", result["library"])["move_buildings"]["median_ms"]
    result["move_within_target"] = move <= TARGET_MS
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"move median {move} ms (target {TARGET_MS:.0f} ms); results in {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
