"""The last step of every edit: recount the touched grids, refresh their flags and
crossings, record history and undo patches, check the changed grids."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..partition.crossings import crossings as grid_crossings
from ..partition.geometry import polsby_popper
from ..plan import CROSSING_COLUMNS, GRID_COLUMNS, Plan, empty_crossings
from .checks import EditResult, check_grids, report_of
from .common import (
    DERIVED_FLAGS,
    EXPLAIN_FLAGS,
    MANUAL_CROSSING,
    MAX_UNDO,
    TOL_M2,
    changed_positions,
    jsonable,
    locked_codes,
    same_splits,
    splits_of,
    tally,
)
from .history import make_entry

log = logging.getLogger("gridmap")

__all__ = ["commit", "commit_params"]


def commit(
    plan: Plan,
    op: str,
    params: dict[str, Any],
    reason: str,
    grids: gpd.GeoDataFrame,
    b: pd.DataFrame,
    s: pd.DataFrame,
    *,
    touched: list[str],
    added: list[str],
    removed: list[str],
    manual: bool,
    geometry_changed: bool = True,
    crossings: pd.DataFrame | None = None,
    locked: list[str] | None = None,
    changed: list[str] | None = None,
    retired: dict[str, list[str]] | None = None,
) -> EditResult:
    """Finish an edit: recount the touched grids, record the history entry and the undo
    patches, check the changed grids and log their problems.

    Only the grids of the edit are recounted and checked, so the cost does not grow with
    the size of the plan.
    """
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs).reset_index(drop=True)
    # Grids whose households or buildings change as a side effect (e.g. a split building
    # whose largest part moved) are touched too: look at the buildings whose grid changed.
    moved = changed_positions(plan.buildings, b, [*touched, *added, *removed])
    codes_now = set(grids["grid_code"])
    side = _side_effects(plan, b, s, touched, moved, codes_now)
    touched = [c for c in dict.fromkeys([*touched, *side]) if c in codes_now]
    tm = grids["grid_code"].isin(touched).to_numpy()
    if tm.any():
        _recount(grids, b, s, tm)
    if crossings is None:
        crossings = plan.crossings if plan.crossings is not None else empty_crossings()
        gone = set(touched) | set(removed)
        crossings = crossings[~crossings["grid_code"].isin(gone)]
        if tm.any() and geometry_changed:
            crossings = pd.concat(
                [crossings, _new_crossings(plan, grids[tm], manual)], ignore_index=True
            )
        elif tm.any():
            crossings = pd.concat(
                [crossings, plan.crossings[plan.crossings["grid_code"].isin(touched)]],
                ignore_index=True,
            )
        crossings = crossings[CROSSING_COLUMNS].sort_values(["grid_code", "barrier"])
        crossings = crossings.reset_index(drop=True)
    if tm.any():
        _refresh_flags(plan, grids, tm, set(crossings["grid_code"]), manual)
    extra = [c for c in grids.columns if c not in GRID_COLUMNS and c != "geometry"]
    grids = grids[GRID_COLUMNS + extra + ["geometry"]]
    if not grids["grid_code"].is_monotonic_increasing:
        grids = grids.sort_values("grid_code", kind="stable")
    grids = grids.reset_index(drop=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)

    new_params = dict(plan.params)
    if locked is None:
        locked = sorted(locked_codes(plan) - set(removed))
    if locked or "locked_grids" in new_params:
        new_params["locked_grids"] = list(locked)
    if changed is None:
        changed = [c for c in touched if c not in added]
    entry = {
        "op": op,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": str(reason or ""),
        "params": jsonable(params),
        "changed": sorted(changed),
        "added": sorted(added),
        "removed": sorted(removed),
    }
    if retired:
        entry["retired"] = {c: sorted(map(str, ids)) for c, ids in retired.items()}
    new = dataclasses.replace(
        plan,
        grids=grids,
        buildings=b,
        splits=s.reset_index(drop=True),
        crossings=crossings,
        params=new_params,
        history=[*plan.history, entry],
        notes=list(plan.notes),
        redo_log=[],
    )
    edited = sorted(set(touched) | set(added))
    old_codes = sorted((set(touched) - set(added)) | set(removed))
    if op == "renumber":
        old_codes = sorted(plan.grids["grid_code"])
        edited = sorted(new.grids["grid_code"])
    record = make_entry(plan, new, entry, old_codes=old_codes, new_codes=edited, moved=moved)
    new.undo_log = [*plan.undo_log, record][-MAX_UNDO:]
    checks = check_grids(new, edited)
    report = report_of(new, checks)
    report.attrs.update(
        edited_grids=edited,
        changed=sorted(changed),
        added=sorted(added),
        removed=sorted(removed),
        checks=checks,
    )
    result = EditResult(new, report)
    probs = report[report["severity"].isin(["error", "warning"])]
    summary = f"{op}: changed {len(changed)}, added {len(added)}, removed {len(removed)} grid(s)"
    if len(probs):
        lines = "\n".join(
            f"  {r.severity.upper():7s} {r.check} {r.grid_code}: {r.detail}"
            for r in probs.itertuples()
        )
        log.warning(
            "%s — the edit breaks %d rule(s) in the edited grids (allowed; fix or explain):\n%s",
            summary,
            len(probs),
            lines,
        )
    else:
        log.info("%s; no problems in the edited grids", summary)
    return result


def commit_params(
    plan: Plan, op: str, params: dict[str, Any], reason: str, locked: list[str]
) -> EditResult:
    """Finish an edit that changes only the locks."""
    return commit(
        plan,
        op,
        params,
        reason,
        plan.grids.copy(),
        plan.buildings,
        splits_of(plan).copy(),
        touched=[],
        added=[],
        removed=[],
        manual=False,
        geometry_changed=False,
        locked=locked,
    )


def _side_effects(
    plan: Plan,
    b: pd.DataFrame,
    s: pd.DataFrame,
    touched: list[str],
    moved: np.ndarray,
    codes_now: set[str],
) -> list[str]:
    """Grids of the new plan (`codes_now`) beyond `touched` whose buildings or split
    parts changed (`moved`: the positions of the buildings whose grid changed)."""
    old = plan.buildings["grid_code"].to_numpy()[moved]
    new = b["grid_code"].to_numpy()[moved]
    codes = {c for c in [*old, *new] if isinstance(c, str)}
    s_old = splits_of(plan)
    if not same_splits(s_old, s):
        cols = ["building_id", "part", "households", "grid_code"]
        a = set(map(tuple, s_old[cols].astype(str).to_numpy()))
        z = set(map(tuple, s[cols].astype(str).to_numpy()))
        codes |= {t[3] for t in a ^ z}
    codes = (codes & codes_now) - set(touched)
    if not codes:
        return []
    before = tally(plan.buildings, s_old, codes)
    after = tally(b, s, codes)
    both = before.index.union(after.index)
    delta = before.reindex(both, fill_value=0).ne(after.reindex(both, fill_value=0)).any(axis=1)
    return [c for c in both[delta.to_numpy()] if c not in touched]


def _recount(grids: gpd.GeoDataFrame, b: pd.DataFrame, s: pd.DataFrame, tm: np.ndarray) -> None:
    """Households, buildings, area and compactness of the grids selected by `tm`."""
    codes = grids.loc[tm, "grid_code"]
    t = tally(b, s, codes.tolist())
    grids.loc[tm, "households"] = codes.map(t["households"]).fillna(0).astype(np.int64).to_numpy()
    grids.loc[tm, "buildings"] = codes.map(t["buildings"]).fillna(0).astype(np.int64).to_numpy()
    geoms = grids.geometry.values[tm]
    grids.loc[tm, "area_m2"] = shapely.area(geoms)
    grids.loc[tm, "polsby_popper"] = polsby_popper(geoms)
    for col in ("households", "buildings", "range_min", "range_max"):
        grids[col] = grids[col].astype(np.int64)


def _new_crossings(plan: Plan, rows: gpd.GeoDataFrame, manual: bool) -> pd.DataFrame:
    if plan.barriers is None or len(plan.barriers) == 0 or len(rows) == 0:
        return empty_crossings()
    bar = plan.barriers
    near = shapely.intersects(bar.geometry.values, shapely.box(*rows.total_bounds).buffer(1.0))
    out = grid_crossings(rows.reset_index(drop=True), bar[near])
    if manual and len(out):
        out["reason"] = MANUAL_CROSSING
    return out


def _refresh_flags(
    plan: Plan, grids: gpd.GeoDataFrame, tm: np.ndarray, crossing_codes: set[str], manual: bool
) -> None:
    """Recompute the derived flags (and their reasons) of the grids selected by `tm`."""
    comm_geom: dict[tuple[str, str], shapely.Geometry] = {}
    c = plan.communities
    if c is not None and len(c) and {"street_code", "community_code"} <= set(c.columns):
        comm_geom = {
            (str(s_), str(c_)): g
            for s_, c_, g in zip(
                c["street_code"], c["community_code"], c.geometry.values, strict=True
            )
        }
    for i in np.flatnonzero(tm):
        row = grids.iloc[i]
        old = [f for f in str(row["flags"] or "").split(";") if f]
        keep = [f for f in old if f not in DERIVED_FLAGS]
        if manual:
            keep = [f for f in keep if f not in EXPLAIN_FLAGS]
        reasons: list[str] = []
        if keep and not manual and row["flag_reason"]:
            reasons.append(str(row["flag_reason"]))
        flags = list(keep)
        hh = int(row["households"])
        special = row["kind"] == "special"
        lo, hi = int(row["range_min"]), int(row["range_max"])
        if not special and (hh < lo or hh > hi):
            flags.append("out_of_range")
            if manual or not set(keep) & set(EXPLAIN_FLAGS):
                side = "below" if hh < lo else "above"
                reasons.append(f"{hh} households, {side} the range {lo}–{hi}")
        if hh == 0 and (not special or "no_households" in old):
            # (a special grid keeps the flag it was drawn with: land without homes)
            flags.append("no_households")
            reasons.append("no households in this grid")
        if row["grid_code"] in crossing_codes:
            flags.append("crosses_barrier")
        geom = row.geometry
        parts = shapely.get_parts(geom) if geom is not None else np.array([])
        big = parts[shapely.area(parts) > TOL_M2] if len(parts) else parts
        if len(big) > 1:
            flags.append("discontiguous")
            reasons.append(f"the grid is in {len(big)} separate parts")
        cg = comm_geom.get((str(row["street_code"]), str(row["community_code"])))
        if cg is not None and geom is not None:
            outside = shapely.area(shapely.difference(geom, cg))
            if outside > TOL_M2:
                flags.append("crosses_community")
                reasons.append(f"{outside:,.0f} m² lie outside its community")
        uniq_reasons = list(dict.fromkeys(r for part in reasons for r in part.split("; ") if r))
        grids.iat[i, grids.columns.get_loc("flags")] = ";".join(dict.fromkeys(flags))
        grids.iat[i, grids.columns.get_loc("flag_reason")] = "; ".join(uniq_reasons)
