"""The main job: run the whole gridmap pipeline on the embedded sample town.

``gridmap run`` calls :func:`run_sample`. Each step writes its outputs to the output
folder: households → grid plan (GeoPackage, GeoJSON, tables, map, validation report)
→ events → flood grading → evacuation.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

log = logging.getLogger("gridmap")


def sample_inputs(data: str | Path | None = None) -> dict:
    """Load the sample town and prepare the inputs of :func:`gridmap.plan_grids`.

    Returns
    -------
    dict
        ``buildings`` (estimated), ``communities``, ``barriers``, ``difficult``,
        ``compounds``, ``institutions``, ``layers`` (all sample layers) and ``paths``.
    """
    from .households import estimate_households
    from .load import read_buildings
    from .sample import load_sample, sample_paths

    layers = load_sample(data)
    paths = sample_paths(data)
    buildings = estimate_households(read_buildings(paths["gpkg"], layer="buildings"))
    roads = layers["roads"]
    from .partition.blocks import RANK_ARTERIAL, barrier_ranks

    arterials = roads[barrier_ranks(roads)[0] >= RANK_ARTERIAL]
    barriers = [arterials, layers["rivers"]]
    return {
        "buildings": buildings,
        "communities": layers["communities"],
        "barriers": barriers,
        "difficult": layers["difficult_areas"],
        "compounds": layers["compounds"],
        "institutions": layers["institutions"],
        "layers": layers,
        "paths": paths,
    }


def plan_sample(data: str | Path | None = None, seed: int = 0):
    """Plan the sample town's grids (as the main job does) and return the Plan."""
    from .partition import plan_grids

    inp = sample_inputs(data)
    return plan_grids(
        inp["buildings"],
        inp["communities"],
        barriers=inp["barriers"],
        difficult=inp["difficult"],
        compounds=inp["compounds"],
        institutions=inp["institutions"],
        admin_code="230717",
        seed=seed,
    )


def write_plan_outputs(plan, out: str | Path) -> list[Path]:
    """Write a plan's standard outputs: GeoPackage, GeoJSON, tables, map, validation."""
    from .io import write_table
    from .maps import plan_map, save_html

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [plan.to_file(out / "plan.gpkg")]
    gj = out / "grids.geojson"
    plan.grids_wgs84().to_file(gj, driver="GeoJSON", engine="pyogrio")
    written.append(gj)
    grids_table = plan.grids.drop(columns="geometry")
    weak = _weak_by_grid(plan)
    if weak is not None:  # how much of each grid's count rests on weak estimates
        grids_table = grids_table.merge(
            weak[["grid_code", "households_weak", "weak_share"]], on="grid_code", how="left"
        )
    written += write_table(grids_table, out / "grids", sheet_name="grids")
    roster = plan.buildings.drop(columns="geometry")
    keep = [
        c
        for c in (
            "grid_code",
            "building_id",
            "name",
            "use",
            "levels",
            "units",
            "households",
            "households_source",
            "households_confidence",
            "households_flag",
            "community_code",
        )
        if c in roster.columns
    ]
    written += write_table(
        roster[keep].sort_values(["grid_code", "building_id"]),
        out / "grid_buildings",
        sheet_name="buildings",
    )
    if len(plan.splits):
        written += write_table(plan.splits, out / "unit_splits", sheet_name="splits")
    report = plan.validate()
    written += write_table(report, out / "validation", sheet_name="validation")
    written.append(save_html(plan_map(plan), out / "plan_map.html"))
    return written


def run_sample(
    out: str | Path = "out", data: str | Path | None = None, seed: int = 0
) -> list[Path]:
    """Run every step on the sample town and write all outputs under `out`.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    inp = sample_inputs(data)
    b = inp["buildings"]
    log.info("sample town: %d buildings, %d households", len(b), int(b["households"].sum()))
    written: list[Path] = []
    hh_path = out / "buildings_households.gpkg"
    gpd.GeoDataFrame(b).to_file(hh_path, layer="buildings", driver="GPKG", engine="pyogrio")
    written.append(hh_path)

    from .partition import plan_grids

    t = time.perf_counter()
    plan = plan_grids(
        b,
        inp["communities"],
        barriers=inp["barriers"],
        difficult=inp["difficult"],
        compounds=inp["compounds"],
        institutions=inp["institutions"],
        admin_code="230717",
        seed=seed,
    )
    log.info("plan: %s in %.1f s", plan, time.perf_counter() - t)
    written += write_plan_outputs(plan, out)
    from .events import write_event_outputs

    t = time.perf_counter()
    written += _offline(
        write_event_outputs(plan, inp["paths"]["gpkg"], out / "events", layer="events")
    )
    log.info("events done in %.1f s", time.perf_counter() - t)

    from .flood import grade_flood, write_flood_outputs

    t = time.perf_counter()
    paths = inp["paths"]
    grading = grade_flood(
        plan,
        depth=paths["flood_depth"],
        extent=inp["layers"]["flood_extent"],
        dem=paths["dem"],
    )
    written += write_flood_outputs(grading, out / "flood", depth=paths["flood_depth"])
    log.info("flood grading done in %.1f s", time.perf_counter() - t)

    from .evacuation import plan_evacuation, write_evacuation_outputs

    t = time.perf_counter()
    evac = plan_evacuation(grading, inp["layers"]["roads"], inp["layers"]["shelters"])
    written += write_evacuation_outputs(evac, out / "evacuation")
    log.info("%r", evac)
    log.info("evacuation plan done in %.1f s", time.perf_counter() - t)

    s = {**plan.summary(), **_weak_summary(plan)}
    summary = pd.DataFrame([{k: (str(v) if isinstance(v, dict) else v) for k, v in s.items()}])
    written += _write_summary(summary, out)
    log.info("main job done in %.1f s", time.perf_counter() - t0)
    return written


def _offline(paths: list[Path]) -> list[Path]:
    """Make every HTML page among `paths` work offline (see :func:`gridmap.maps.save_html`;
    pages already written with it are left as they are)."""
    from .maps import make_offline

    for p in paths:
        if Path(p).suffix.lower() == ".html":
            make_offline(p, strict=False)
    return paths


def _weak_by_grid(plan) -> pd.DataFrame | None:
    """Households per grid resting on weak estimates (None without the columns)."""
    from .households import weak_by_grid

    b = plan.buildings
    if "grid_code" not in b.columns or "households" not in b.columns:
        return None
    return weak_by_grid(b, by="grid_code")


def _weak_summary(plan) -> dict:
    """Summary figures: households on weak estimates, and grids mostly resting on them.

    Weak = ``households_confidence`` below
    :data:`gridmap.households.WEAK_CONFIDENCE` (0.5), see :mod:`gridmap.households`.
    """
    weak = _weak_by_grid(plan)
    if weak is None:
        return {}
    total = int(weak["households"].sum())
    n_weak = int(weak["households_weak"].sum())
    return {
        "households_weak": n_weak,
        "weak_share": round(n_weak / total, 4) if total else 0.0,
        "grids_mostly_weak": int((weak["weak_share"] >= 0.5).sum()),
    }


def _write_summary(summary: pd.DataFrame, out: Path) -> list[Path]:
    from .io import write_table

    return write_table(summary, out / "summary", sheet_name="summary")
