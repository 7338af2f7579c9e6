"""Quality of the grid partition on data it was not tuned on (issue 11).

Runs :func:`gridmap.plan_grids` on three kinds of input and measures each plan against
the issue's Done-when list:

- **towngen**: towns of :mod:`towngen` (a morphology unlike :mod:`synth_city`) over
  several seeds, with and (optionally) without the community layer;
- **Jakarta**, the whole city from ``../shared/realdata/jakarta`` read with defaults:
  ``gridmap.read_buildings("buildings_osm2012.gpkg")``, the RW polygons
  ``rw_boundaries.shp`` as communities as given (no codes), all of ``roads.shp`` as
  barriers;
- **Lyon** roofs (``../shared/realdata/lyon/roofs.gpkg``), no communities, no barriers;
  grids holding buildings on both banks of the Rhône or the Saône are counted with the
  hand-drawn rivers of :mod:`lyon_rivers`.

Each case runs in its own subprocess (with a timeout), so an exception, a crash or a
hang of the engine is recorded and the run goes on. Per case it reports the wall time
of read → plan → ``plan.to_file``; the number of grids; the share of residential grids
(``kind != "special"``) in their range, overall and restricted to the communities whose
total allows an in-range split; ``plan.validate()`` problems by check; MultiPolygon and
empty grids; barrier crossings (listed by the plan, found independently, and those found
but not listed); code format; for towngen the straddling buildings and isolated
villages; for Lyon the both-bank grids.

When does a community's total allow an in-range split? Its residential grids (isolated
natural villages excluded, see below) hold ``H`` households, ``D`` of them in buildings
inside difficult areas. It allows one when some ``k`` grids of the ordinary range can
hold ``H`` (``k·300 ≤ H ≤ k·500``), or when ``H − D`` fits the ordinary range and ``D``
the difficult range (200–300) separately (a part that is zero fits). A totals-only
test: it does not ask whether the buildings' layout allows the split too.

Isolated natural villages: a grid flagged ``isolated_village`` is exempt (not counted
anywhere) only when every building in it belongs to a hamlet that towngen placed far
from every other settlement (its ``truth["isolated"]``); elsewhere the flag exempts
nothing.

Usage::

    python bench/quality.py                       # 5 towns of 3,000 buildings, Jakarta, Lyon
    python bench/quality.py --towns 10 --town-buildings 5000 --no-communities
    python bench/quality.py --cases town:3:3000 jakarta jakarta:coded
    python bench/quality.py --only towns --out bench/results/quality_towns.json

Results go to ``bench/results/quality.json`` (``--out``) and a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REALDATA = REPO.parent / "shared" / "realdata"
sys.path.insert(0, str(HERE))

ADMIN_CODE = "210102"
RANGE = (300, 500)
#: Read → plan → save runs of the Jakarta case (the machine's speed varies by ±20 %
#: from run to run; the median is reported).
JAKARTA_RUNS = 5
DIFFICULT_RANGE = (200, 300)

#: Validator checks that a sound plan never fails (geometry, cover, bookkeeping).
STRUCTURAL_CHECKS: tuple[str, ...] = (
    "invalid_geometry",
    "discontiguous",
    "duplicate_grid_code",
    "overlap",
    "gap",
    "outside_community",
    "crosses_community",
    "households_mismatch",
    "building_outside_grid",
    "unassigned_building",
    "split_building",
)

#: Barrier classes (lower case) that are strong barriers: crossing one must be listed.
WATER_RAIL = frozenset(
    {"river", "canal", "stream", "water", "riverbank", "drain", "rail", "railway", "light_rail",
     "subway", "tram", "narrow_gauge"}
)  # fmt: skip
ARTERIAL = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
     "secondary", "secondary_link", "tertiary", "tertiary_link"}
)  # fmt: skip
_CLASS_COLUMNS = ("waterway", "railway", "natural", "highway", "fclass", "TYPE", "type")


# =================================================================== barriers
def barrier_classes(layer: gpd.GeoDataFrame) -> np.ndarray:
    """Class of each barrier feature from whichever class column the layer has.

    The first non-empty value among ``waterway``, ``railway``, ``natural``,
    ``highway``, ``fclass``, ``TYPE`` and ``type`` wins (lower-cased); ``""`` when none.
    """
    out = pd.Series([""] * len(layer), index=layer.index, dtype=object)
    for col in _CLASS_COLUMNS:
        if col in layer.columns:
            v = layer[col].astype(object).where(layer[col].notna(), "").astype(str).str.lower()
            out = out.where(out != "", v)
    return out.to_numpy(dtype=object)


def barrier_rank(classes: np.ndarray) -> np.ndarray:
    """Rank of each class as the issue orders them: 0 water/rail, 1 arterial, 2 other."""
    classes = np.asarray(classes, dtype=object)
    return np.where(np.isin(classes, list(WATER_RAIL)), 0, np.where(np.isin(classes, list(ARTERIAL)), 1, 2))  # fmt: skip


def strong_barriers(barriers: Any, crs: Any) -> gpd.GeoDataFrame | None:
    """Water, rail and arterial features of one layer or a list of layers, in `crs`.

    Local streets (``residential`` and the like) are left out: the issue ranks them as
    the weakest barrier, which a grid may cross. Features carry ``name`` = their class.
    """
    if barriers is None:
        return None
    layers = barriers if isinstance(barriers, list | tuple) else [barriers]
    frames = []
    for layer in layers:
        if layer is None or not len(layer):
            continue
        cls = barrier_classes(layer)
        keep = barrier_rank(cls) < 2
        if keep.any():
            frames.append(
                gpd.GeoDataFrame(
                    {"name": cls[keep]}, geometry=layer.geometry.values[keep], crs=layer.crs
                ).to_crs(crs)
            )
    if not frames:
        return None
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)


# =================================================================== metrics
def _feasible(total: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Whether `total` households split into k ≥ 1 grids of lo..hi each."""
    total = np.asarray(total, dtype=float)
    k = np.ceil(total / hi)
    return (total >= lo) & (k * lo <= total)


def _plan_ranges(plan) -> tuple[tuple[int, int], tuple[int, int]]:
    params = getattr(plan, "params", {}) or {}
    lo_hi = tuple(params.get("household_range", RANGE))
    d_lo_hi = tuple(params.get("difficult_range", DIFFICULT_RANGE))
    return (int(lo_hi[0]), int(lo_hi[1])), (int(d_lo_hi[0]), int(d_lo_hi[1]))


def _building_grid_pairs(plan) -> pd.DataFrame:
    """(building row, grid code) of every building and every split part."""
    b = plan.buildings
    pairs = pd.DataFrame({"row": np.arange(len(b)), "grid_code": b["grid_code"].to_numpy()})
    splits = getattr(plan, "splits", None)
    if splits is not None and len(splits):
        rows = pd.Series(np.arange(len(b)), index=b["building_id"].astype(str).to_numpy())
        rows = rows[~rows.index.duplicated()]
        srow = rows.reindex(splits["building_id"].astype(str).to_numpy()).to_numpy()
        ok = ~pd.isna(srow)
        pairs = pd.concat(
            [
                pairs,
                pd.DataFrame(
                    {
                        "row": srow[ok].astype(np.int64),
                        "grid_code": splits["grid_code"].to_numpy()[ok],
                    }
                ),
            ],
            ignore_index=True,
        )
    pairs = pairs[pairs["grid_code"].notna()].drop_duplicates()
    return pairs


def community_table(
    plan,
    *,
    difficult: gpd.GeoDataFrame | None = None,
    isolated: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-community totals, whether they allow an in-range split, and grids in range.

    Parameters
    ----------
    plan : gridmap.Plan
    difficult : GeoDataFrame, optional
        Difficult areas; buildings whose representative point lies in one count in
        ``D`` (see the module docstring).
    isolated : array of bool, optional
        Per row of ``plan.buildings``: the building belongs to a truly isolated hamlet.

    Returns
    -------
    (communities, grids) : tuple of DataFrame
        ``communities``: index (street_code, community_code) → ``grids``,
        ``households``, ``difficult_households``, ``allows``, ``in_range``, ``share``.
        ``grids``: the residential grids with ``in_range``, ``exempt`` (isolated
        village), ``allows`` (their community's), ``flags``.
    """
    g = plan.grids
    (lo, hi), (dlo, dhi) = _plan_ranges(plan)
    res = g[g["kind"].astype(str) != "special"].copy()
    hh = pd.to_numeric(res["households"], errors="coerce").fillna(0).to_numpy(float)
    rmin = pd.to_numeric(res["range_min"], errors="coerce").to_numpy(float)
    rmax = pd.to_numeric(res["range_max"], errors="coerce").to_numpy(float)
    res["in_range"] = (hh >= rmin) & (hh <= rmax)
    flags = res["flags"].fillna("").astype(str) if "flags" in res.columns else pd.Series("", index=res.index)  # fmt: skip
    res["flags"] = flags.to_numpy()
    res["exempt"] = False
    b = plan.buildings
    pairs = _building_grid_pairs(plan)
    if isolated is not None and "isolated_village" in " ".join(res["flags"]):
        iso = np.asarray(isolated, dtype=bool)[pairs["row"].to_numpy()]
        all_iso = pd.Series(iso).groupby(pairs["grid_code"].to_numpy()).all()
        flagged = res["flags"].str.contains("isolated_village").to_numpy()
        truly = all_iso.reindex(res["grid_code"].to_numpy()).fillna(False).to_numpy(bool)
        res["exempt"] = flagged & truly
    # households in difficult areas, per grid (split buildings are never in difficult areas)
    d_hh = np.zeros(len(res))
    if difficult is not None and len(difficult):
        dgeom = shapely.union_all(difficult.to_crs(plan.crs).geometry.values)
        pts = shapely.point_on_surface(b.geometry.values)
        in_d = shapely.intersects(dgeom, pts)
        bhh = pd.to_numeric(b["households"], errors="coerce").fillna(0).to_numpy(float)
        per_grid = pd.Series(np.where(in_d, bhh, 0.0)).groupby(b["grid_code"].to_numpy()).sum()
        d_hh = per_grid.reindex(res["grid_code"].to_numpy()).fillna(0).to_numpy(float)
    res["difficult_households"] = np.minimum(d_hh, hh)
    key = ["street_code", "community_code"] if "street_code" in res.columns else ["community_code"]
    counted = res[~res["exempt"]]
    comm = counted.groupby(key, dropna=False).agg(
        grids=("grid_code", "size"),
        households=("households", "sum"),
        difficult_households=("difficult_households", "sum"),
        in_range=("in_range", "sum"),
    )
    h = comm["households"].to_numpy(float)
    d = comm["difficult_households"].to_numpy(float)
    normal = h - d
    split_ok = (_feasible(normal, lo, hi) | (normal == 0)) & (_feasible(d, dlo, dhi) | (d == 0))
    comm["allows"] = (_feasible(h, lo, hi) | split_ok) & (h > 0)
    comm["share"] = comm["in_range"] / comm["grids"]
    allows = comm["allows"].reindex(pd.MultiIndex.from_frame(res[key]) if len(key) > 1 else res[key[0]])  # fmt: skip
    res["allows"] = allows.fillna(False).to_numpy(bool) & ~res["exempt"].to_numpy(bool)
    return comm, res


def _geometry_counts(grids: gpd.GeoDataFrame) -> dict[str, int]:
    geoms = np.asarray(grids.geometry.values, dtype=object)
    types = shapely.get_type_id(geoms)
    return {
        "multipolygons": int(np.count_nonzero(types == 6)),
        "non_polygons": int(np.count_nonzero(~np.isin(types, (3, 6)))),
        "empty_geometry": int(
            np.count_nonzero(shapely.is_empty(geoms) | shapely.is_missing(geoms))
        ),  # fmt: skip
        "invalid": int(np.count_nonzero(~shapely.is_valid(geoms))),
    }


def crossing_audit(plan, strong: gpd.GeoDataFrame | None) -> dict[str, Any]:
    """Grids that a strong barrier runs through (independently found) vs ``plan.crossings``."""
    from gridmap.validate import validate_plan

    listed = set(plan.crossings["grid_code"].astype(str)) if len(plan.crossings) else set()
    out: dict[str, Any] = {"listed_rows": int(len(plan.crossings)), "listed_grids": len(listed)}
    if strong is None or not len(strong):
        out.update(found_grids=0, unlisted_grids=0, unlisted_examples=[])
        return out
    grids = plan.grids[["grid_code", "households", "kind", "range_min", "range_max", "geometry"]]
    report = validate_plan(
        grids,
        plan.buildings[["building_id", "households", "grid_code", "geometry"]],
        barriers=strong,
        crossing_tolerance_m=2.0,
    )
    found = set(report.loc[report["check"] == "barrier_crossing", "grid_code"].astype(str))
    unlisted = sorted(found - listed)
    out.update(
        found_grids=len(found),
        unlisted_grids=len(unlisted),
        unlisted_examples=unlisted[:10],
    )
    return out


def plan_metrics(
    plan,
    *,
    barriers: Any = None,
    difficult: gpd.GeoDataFrame | None = None,
    isolated: np.ndarray | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Measure one plan against the issue's Done-when list (see the module docstring)."""
    g = plan.grids
    out: dict[str, Any] = {"grids": int(len(g))}
    out["grids_by_kind"] = {str(k): int(v) for k, v in g["kind"].value_counts().items()}
    comm, res = community_table(plan, difficult=difficult, isolated=isolated)
    counted = res[~res["exempt"]]
    allowed = res[res["allows"]]
    out["residential_grids"] = int(len(counted))
    out["exempt_isolated_villages"] = int(res["exempt"].sum())
    out["share_in_range"] = round(float(counted["in_range"].mean()), 4) if len(counted) else 1.0
    out["communities"] = int(len(comm))
    chh = comm["households"].to_numpy(float)
    out["community_households"] = {
        "min": int(chh.min()) if len(chh) else 0,
        "median": int(np.median(chh)) if len(chh) else 0,
        "max": int(chh.max()) if len(chh) else 0,
        "share_in_communities_over_1000": round(
            float(chh[chh >= 1000].sum() / max(chh.sum(), 1)), 4
        ),  # fmt: skip
    }
    out["communities_allowing"] = int(comm["allows"].sum())
    out["grids_where_allowed"] = int(len(allowed))
    out["share_in_range_where_allowed"] = (
        round(float(allowed["in_range"].mean()), 4) if len(allowed) else 1.0
    )
    worst = comm[comm["allows"]].sort_values("share")
    out["communities_below_99pct"] = int((worst["share"] < 0.99).sum())
    out["worst_communities"] = [
        {
            "community": "/".join(map(str, idx if isinstance(idx, tuple) else (idx,))),
            "households": int(r.households),
            "grids": int(r.grids),
            "in_range": int(r.in_range),
        }
        for idx, r in worst.head(5).iterrows()
        if r.share < 1.0
    ]
    off = allowed[~allowed["in_range"]]
    out["out_of_range_where_allowed"] = [
        {"grid": str(c), "households": int(h), "range": [int(a), int(b)], "flags": str(f)}
        for c, h, a, b, f in zip(
            off["grid_code"], off["households"], off["range_min"], off["range_max"],
            off["flags"], strict=True,
        )
    ][:15]  # fmt: skip
    out["geometry"] = _geometry_counts(g)
    hh = pd.to_numeric(g["households"], errors="coerce").fillna(0).to_numpy()
    special = g["kind"].astype(str).to_numpy() == "special"
    out["empty_grids"] = int(np.count_nonzero((hh == 0) & ~special))
    out["empty_special_grids"] = int(np.count_nonzero((hh == 0) & special))
    codes = g["grid_code"].astype(str)
    out["codes"] = {
        "all_15_digits": bool(codes.str.fullmatch(r"\d{15}").all()),
        "unique": bool(codes.is_unique),
        "bad_examples": codes[~codes.str.fullmatch(r"\d{15}")].head(5).tolist(),
    }
    out["split_buildings"] = int(plan.splits["building_id"].nunique()) if len(plan.splits) else 0
    strong = strong_barriers(barriers, plan.crs)
    out["crossings"] = crossing_audit(plan, strong)
    if validate:
        report = plan.validate()
        counts = report.groupby(["check", "severity"]).size()
        out["validate"] = {
            check: {sev: int(n) for sev, n in counts[check].items()}
            for check in counts.index.get_level_values(0).unique()
        }
        out["validate_structural"] = int(report["check"].isin(STRUCTURAL_CHECKS).sum())
        out["validate_unexplained_out_of_range"] = int(
            ((report["check"] == "out_of_range") & (report["severity"] == "error")).sum()
        )
    return out


def straddler_audit(plan, town: dict) -> dict[str, Any]:
    """Do buildings that straddle a community edge go to the community holding most of them?"""
    truth = town["truth"].set_index("building_id")
    b = plan.buildings
    ids = b["building_id"].astype(str).to_numpy()
    strad = truth["straddles"].reindex(ids).fillna(False).to_numpy(bool)
    want = truth["community_code"].reindex(ids).to_numpy(dtype=object)
    got = b["community_code"].astype(str).to_numpy() if "community_code" in b.columns else None
    out: dict[str, Any] = {"straddlers": int(strad.sum())}
    if got is None or not strad.any():
        out["wrong_community"] = 0
        return out
    wrong = strad & (got != want)
    # split parts must stay in the building's community
    grid_comm = pd.Series(
        plan.grids["community_code"].astype(str).to_numpy(),
        index=plan.grids["grid_code"].astype(str).to_numpy(),
    )
    pairs = _building_grid_pairs(plan)
    part_comm = grid_comm.reindex(pairs["grid_code"].astype(str).to_numpy()).to_numpy(dtype=object)
    bad_part = strad[pairs["row"].to_numpy()] & (part_comm != want[pairs["row"].to_numpy()])
    out["wrong_community"] = int(wrong.sum())
    out["parts_outside_community"] = int(bad_part.sum())
    out["examples"] = [
        f"{i}: in {g}, most of it in {w}"
        for i, g, w in zip(ids[wrong][:5], got[wrong][:5], want[wrong][:5], strict=True)
    ]
    return out


def both_banks(plan) -> dict[str, Any]:
    """Lyon: grids holding buildings on two banks (Rhône or Saône between them)."""
    import lyon_rivers

    b = plan.buildings.to_crs(lyon_rivers.CRS)
    bank = lyon_rivers.bank_of(b.geometry.values)
    pairs = _building_grid_pairs(plan)
    frame = pd.DataFrame(
        {"grid": pairs["grid_code"].astype(str).to_numpy(), "bank": bank[pairs["row"].to_numpy()]}
    )
    frame = frame[frame["bank"] >= 0]
    banks = frame.groupby("grid")["bank"].nunique()
    both = banks[banks > 1].index.tolist()
    per_bank = (
        frame.drop_duplicates()
        .groupby("grid")["bank"]
        .apply(lambda s: "+".join(lyon_rivers.BANKS[i] for i in sorted(s)))
    )
    return {
        "grids_on_two_banks": len(both),
        "examples": [f"{c} ({per_bank[c]})" for c in both[:10]],
        "buildings_in_water": int(np.count_nonzero(bank < 0)),
    }


# =================================================================== cases
def _error(stage: str, exc: BaseException) -> dict[str, Any]:
    tb = traceback.extract_tb(exc.__traceback__)
    return {
        "stage": stage,
        "type": type(exc).__name__,
        "message": str(exc)[:500],
        "where": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in tb[-4:]],
    }


def _save(plan, times: dict[str, float], result: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="gridmap-quality-") as tmp:
        t = time.perf_counter()
        try:
            plan.to_file(Path(tmp) / "plan.gpkg")
            times["save"] = round(time.perf_counter() - t, 2)
        except Exception as exc:  # noqa: BLE001 - the harness records every failure
            result["error"] = _error("save", exc)


def _plan(buildings, communities, times, result, **kwargs):
    import gridmap

    t = time.perf_counter()
    try:
        plan = gridmap.plan_grids(buildings, communities, progress=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the harness records every failure
        times["plan"] = round(time.perf_counter() - t, 2)
        result["error"] = _error("plan", exc)
        return None
    times["plan"] = round(time.perf_counter() - t, 2)
    return plan


def _finish(result: dict[str, Any], times: dict[str, float], t0: float) -> dict[str, Any]:
    times["total"] = round(time.perf_counter() - t0, 2)
    result["times"] = times
    return result


def town_inputs(town: dict, *, with_communities: bool = True) -> tuple[Any, Any, dict]:
    """(buildings, communities, keyword arguments) of ``plan_grids`` for a towngen town."""
    kwargs = {
        "barriers": town["barriers"],
        "difficult": town["difficult"],
        "compounds": town["compounds"],
        "institutions": town["institutions"],
        "admin_code": ADMIN_CODE,
    }
    return town["buildings"], town["communities"] if with_communities else None, kwargs


def run_town(seed: int, n_buildings: int, *, with_communities: bool = True) -> dict[str, Any]:
    """Generate a towngen town, plan it, save the plan, measure it."""
    import towngen

    result: dict[str, Any] = {
        "case": f"town:{seed}:{n_buildings}" + ("" if with_communities else ":nocomm"),
        "seed": seed,
        "with_communities": with_communities,
    }
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    town = towngen.generate_town(n_buildings, seed)
    times["generate"] = round(time.perf_counter() - t0, 2)
    result["town"] = {
        k: town["stats"][k]
        for k in ("buildings", "households_true", "barrier_style", "communities",
                  "small_communities", "straddlers", "towers_over_500", "far_hamlets")
    }  # fmt: skip
    buildings, communities, kwargs = town_inputs(town, with_communities=with_communities)
    t1 = time.perf_counter()
    plan = _plan(buildings, communities, times, result, **kwargs)
    if plan is None:
        return _finish(result, times, t1)
    _save(plan, times, result)
    times["read_plan_save"] = round(time.perf_counter() - t1, 2)
    try:
        isolated = _isolated_rows(plan, town)
        result["metrics"] = plan_metrics(
            plan, barriers=town["barriers"], difficult=town["difficult"], isolated=isolated
        )
        if with_communities:
            result["straddlers"] = straddler_audit(plan, town)
    except Exception as exc:  # noqa: BLE001
        result["metrics_error"] = _error("metrics", exc)
    return _finish(result, times, t1)


def _isolated_rows(plan, town: dict) -> np.ndarray:
    truth = town["truth"].set_index("building_id")["isolated"]
    ids = plan.buildings["building_id"].astype(str).to_numpy()
    return truth.reindex(ids).fillna(False).to_numpy(bool)


def run_jakarta(
    root: Path = REALDATA, *, coded: bool = False, runs: int = JAKARTA_RUNS
) -> dict[str, Any]:
    """Jakarta whole city, read with defaults, RW polygons as given, all roads as barriers.

    With `coded`, the RW polygons get codes first as a user would add them (street =
    kecamatan ``KEC_NAME``, community = running number within it): a way to measure an
    engine that stops on the polygons as given.

    Read → plan → save runs `runs` times in one interpreter (the package, partition
    included, is imported before the clock starts); ``times["read_plan_save"]`` is the
    median, every run's figure is in ``times["read_plan_save_runs"]``, and the metrics
    are those of the last plan (the same input and seed give the same plan).
    """
    import gridmap
    import gridmap.partition  # noqa: F401  (importing is not part of read → plan → save)

    d = Path(root) / "jakarta"
    result: dict[str, Any] = {"case": "jakarta:coded" if coded else "jakarta"}
    times: dict[str, float] = {}
    totals: list[float] = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        try:
            b = gridmap.read_buildings(d / "buildings_osm2012.gpkg")
            rw = gridmap.read_layer(d / "rw_boundaries.shp")
            roads = gridmap.read_layer(d / "roads.shp")
        except Exception as exc:  # noqa: BLE001
            result["error"] = _error("read", exc)
            return _finish(result, times, t0)
        times["read"] = round(time.perf_counter() - t0, 2)
        if coded:
            street = pd.factorize(rw["KEC_NAME"].astype(str))[0]
            rw = rw.assign(
                street_code=[f"{s + 1:03d}" for s in street],
                community_code=[
                    f"{k + 1:03d}" for k in pd.Series(street).groupby(street).cumcount()
                ],
            )
        result["input"] = {"buildings": len(b), "communities": len(rw), "barriers": len(roads)}
        plan = _plan(b, rw, times, result, barriers=roads)
        if plan is None:
            return _finish(result, times, t0)
        _save(plan, times, result)
        totals.append(round(time.perf_counter() - t0, 2))
    times["read_plan_save"] = float(np.median(totals))
    times["read_plan_save_runs"] = totals
    try:
        result["metrics"] = plan_metrics(plan, barriers=roads)
    except Exception as exc:  # noqa: BLE001
        result["metrics_error"] = _error("metrics", exc)
    return _finish(result, times, t0)


def run_lyon(root: Path = REALDATA) -> dict[str, Any]:
    """Lyon roofs, no communities, no barriers; grids on both banks of a river."""
    import gridmap

    result: dict[str, Any] = {"case": "lyon"}
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        b = gridmap.read_buildings(Path(root) / "lyon" / "roofs.gpkg")
    except Exception as exc:  # noqa: BLE001
        result["error"] = _error("read", exc)
        return _finish(result, times, t0)
    times["read"] = round(time.perf_counter() - t0, 2)
    result["input"] = {"buildings": len(b)}
    plan = _plan(b, None, times, result)
    if plan is None:
        return _finish(result, times, t0)
    _save(plan, times, result)
    times["read_plan_save"] = round(time.perf_counter() - t0, 2)
    try:
        result["metrics"] = plan_metrics(plan)
        result["rivers"] = both_banks(plan)
    except Exception as exc:  # noqa: BLE001
        result["metrics_error"] = _error("metrics", exc)
    return _finish(result, times, t0)


def run_case(case: str) -> dict[str, Any]:
    """Run one case by name: ``town:SEED:N[:nocomm]``, ``jakarta[:coded]`` or ``lyon``."""
    if case.startswith("town:"):
        parts = case.split(":")
        return run_town(int(parts[1]), int(parts[2]), with_communities=parts[3:] != ["nocomm"])
    if case in ("jakarta", "jakarta:coded"):
        return run_jakarta(coded=case.endswith("coded"))
    if case == "lyon":
        return run_lyon()
    raise ValueError(f"unknown case {case!r}")


# =================================================================== driver
def _run_isolated(case: str, timeout: float) -> dict[str, Any]:
    """Run a case in a fresh interpreter, so crashes and hangs are recorded, not fatal."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", case]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"case": case, "error": {"stage": "run", "type": "Timeout", "message": f"no result after {timeout:.0f} s"}}  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        return {
            "case": case,
            "error": {
                "stage": "run",
                "type": f"exit {proc.returncode}",
                "message": " | ".join(tail)[:800],
            },
            "times": {"total": round(time.perf_counter() - t0, 2)},
        }
    return json.loads(lines[-1])


def _row(r: dict[str, Any]) -> list[str]:
    m = r.get("metrics", {})
    t = r.get("times", {})
    err = r.get("error")
    v = m.get("validate", {})
    vs = ", ".join(f"{k} {sum(s.values())}" for k, s in v.items() if k in STRUCTURAL_CHECKS)
    extra = ""
    if "rivers" in r:
        extra = f"both banks {r['rivers']['grids_on_two_banks']}"
    if "straddlers" in r:
        extra = (
            f"straddlers wrong {r['straddlers']['wrong_community']}/{r['straddlers']['straddlers']}"
        )
    return [
        r["case"],
        f"{t.get('read_plan_save', t.get('total', float('nan'))):.1f}",
        str(m.get("grids", "")),
        f"{m['share_in_range']:.1%}" if m else "",
        f"{m['share_in_range_where_allowed']:.1%}" if m else "",
        vs or ("—" if m else ""),
        str(m.get("geometry", {}).get("multipolygons", "")),
        str(m.get("empty_grids", "")),
        f"{m['crossings']['listed_rows']}/{m['crossings']['unlisted_grids']}" if m else "",
        extra,
        f"{err['type']}: {' '.join(err['message'].split())[:70]}" if err else "",
    ]


def format_table(results: Iterable[dict[str, Any]]) -> str:
    """A Markdown table of the results, one row per case."""
    head = ["case", "s", "grids", "in range", "where allowed", "validate (structural)",
            "multi", "empty", "crossings listed/unlisted", "", "error"]  # fmt: skip
    rows = [head, ["---"] * len(head)] + [_row(r) for r in results]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--towns", type=int, default=5, help="number of towngen seeds")
    parser.add_argument("--seed0", type=int, default=0, help="first towngen seed")
    parser.add_argument("--town-buildings", type=int, default=3000)
    parser.add_argument("--no-communities", action="store_true", help="also run every town without its community layer")  # fmt: skip
    parser.add_argument("--only", choices=("towns", "jakarta", "lyon", "realdata"), help="run one kind of case")  # fmt: skip
    parser.add_argument("--cases", nargs="+", help="explicit cases: town:SEED:N[:nocomm], jakarta[:coded], lyon")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quality.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # child process: one case, one JSON line on stdout
        print(json.dumps(run_case(args.one), ensure_ascii=False, default=str))
        return 0

    cases = args.cases or []
    if not cases:
        if args.only in (None, "towns"):
            for s in range(args.seed0, args.seed0 + args.towns):
                cases.append(f"town:{s}:{args.town_buildings}")
                if args.no_communities:
                    cases.append(f"town:{s}:{args.town_buildings}:nocomm")
        if args.only in (None, "jakarta", "realdata"):
            cases.append("jakarta")
        if args.only in (None, "lyon", "realdata"):
            cases.append("lyon")
    real = ("jakarta", "jakarta:coded", "lyon")
    if any(c in real for c in cases) and not REALDATA.is_dir():
        print(f"{REALDATA} is absent: skipping Jakarta and Lyon", file=sys.stderr)
        cases = [c for c in cases if c not in real]

    results = []
    for case in cases:
        print(f"running {case} ...", file=sys.stderr, flush=True)
        results.append(_run_isolated(case, args.timeout))
        print(format_table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    payload = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "git": _git_head(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=str) + "\n")
    print(format_table(results))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


def _git_head() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:  # pragma: no cover
        return ""


if __name__ == "__main__":
    sys.exit(main())
