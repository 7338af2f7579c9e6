"""Edit history: undo, redo and the history table.

Every edit records, next to its entry in ``plan.history``, a pair of small patches in
``plan.undo_log``: what to put back to undo it (the old rows of the grids it changed,
the old grid of every building it moved, the old split and crossing rows, the old
locks) and what to apply again to redo it. The patches are plain JSON (geometries as
WKB hex), so they are saved with the plan by :meth:`gridmap.Plan.to_file` and undo works
on a plan read back from a file or from the web store. At most
:data:`~gridmap.edit.MAX_UNDO` edits are kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import PlanError
from ..plan import CROSSING_COLUMNS, Plan
from .common import (
    MAX_UNDO,
    changed_positions,
    jsonable,
    locked_codes,
    same_splits,
    splits_of,
)

log = logging.getLogger("gridmap")

__all__ = ["apply_patch", "history_table", "make_entry", "redo", "replay", "undo"]


# ----------------------------------------------------------------------- patches
def make_entry(
    old: Plan,
    new: Plan,
    entry: dict[str, Any],
    *,
    old_codes: list[str],
    new_codes: list[str],
    moved: np.ndarray | None = None,
) -> dict[str, Any]:
    """The undo-log record of an edit from `old` to `new`.

    Parameters
    ----------
    old, new : Plan
        The plan before and after the edit (``new`` without the record yet).
    entry : dict
        The edit's history entry.
    old_codes, new_codes : list of str
        Grids of `old` the edit changed or removed, and grids of `new` it changed or
        added.
    moved : ndarray of int, optional
        Positions of the buildings whose grid changed (found when not given).

    Returns
    -------
    dict
        ``{"history": entry, "forward": patch, "backward": patch}``.
    """
    drop = sorted(set(old_codes) | set(new_codes))
    ob, nb = old.buildings, new.buildings
    if moved is None:
        moved = changed_positions(ob, nb, drop)
    oc = ob["grid_code"].to_numpy()[moved]
    nc = nb["grid_code"].to_numpy()[moved]
    ids = ob["building_id"].to_numpy()[moved]
    b_fwd = [[str(i), _code(c)] for i, c in zip(ids, nc, strict=True)]
    b_bwd = [[str(i), _code(c)] for i, c in zip(ids, oc, strict=True)]
    so, sn = splits_of(old), splits_of(new)
    split_ids = [] if same_splits(so, sn) else sorted(_changed_split_ids(so, sn))
    locked_old, locked_new = sorted(locked_codes(old)), sorted(locked_codes(new))

    def patch(plan: Plan, codes: list[str], s: pd.DataFrame, b: list, locked: list) -> dict:
        g = plan.grids[plan.grids["grid_code"].isin(codes)]
        c = plan.crossings if plan.crossings is not None else None
        crows = c[c["grid_code"].isin(codes)] if c is not None and len(c) else None
        return {
            "grids_drop": drop,
            "grids_put": _records(g, geometry=True),
            "buildings": b,
            "splits_drop": split_ids,
            "splits_put": _records(s[s["building_id"].isin(split_ids)]) if len(s) else [],
            "crossings_drop": drop,
            "crossings_put": _records(crows) if crows is not None else [],
            "locked": locked,
        }

    return {
        "history": entry,
        "forward": patch(new, list(new_codes), sn, b_fwd, locked_new),
        "backward": patch(old, list(old_codes), so, b_bwd, locked_old),
    }


def apply_patch(plan: Plan, patch: dict[str, Any]) -> Plan:
    """The plan with a patch of :func:`make_entry` applied (history and logs unchanged)."""
    grids = plan.grids
    keep = grids[~grids["grid_code"].isin(patch["grids_drop"])]
    put = _frame(patch["grids_put"], grids, geometry=True, crs=plan.crs)
    grids = pd.concat([keep, put], ignore_index=True) if len(put) else keep
    grids = grids.sort_values("grid_code", kind="stable").reset_index(drop=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)
    b = plan.buildings
    if patch["buildings"]:
        b = b.copy(deep=False)
        to = dict(patch["buildings"])
        m = b["building_id"].isin(list(to)).to_numpy()
        if int(m.sum()) != len(to):
            raise PlanError("the edit history names buildings this plan does not have")
        b.loc[m, "grid_code"] = [to[str(i)] for i in b["building_id"].to_numpy()[m]]
    s = splits_of(plan)
    if patch["splits_drop"] or patch["splits_put"]:
        s_keep = s[~s["building_id"].isin(patch["splits_drop"])]
        s_put = _frame(patch["splits_put"], s)
        s = pd.concat([s_keep, s_put], ignore_index=True) if len(s_put) else s_keep
        s = s.reset_index(drop=True)
    c = plan.crossings
    c_keep = c[~c["grid_code"].isin(patch["crossings_drop"])]
    c_put = _frame(patch["crossings_put"], c)
    c = pd.concat([c_keep, c_put], ignore_index=True) if len(c_put) else c_keep
    c = c[CROSSING_COLUMNS].sort_values(["grid_code", "barrier"]).reset_index(drop=True)
    params = dict(plan.params)
    if patch["locked"] or "locked_grids" in params:
        params["locked_grids"] = list(patch["locked"])
    return dataclasses.replace(plan, grids=grids, buildings=b, splits=s, crossings=c, params=params)


def replay(plan: Plan, record: dict[str, Any]) -> Plan:
    """Apply an edit recorded by :func:`make_entry` (e.g. by another process) as if it
    had just been made: forward patch, history entry, undo log; the redo log is cleared.
    """
    out = apply_patch(plan, record["forward"])
    return dataclasses.replace(
        out,
        history=[*plan.history, record["history"]],
        undo_log=[*plan.undo_log, record][-MAX_UNDO:],
        redo_log=[],
    )


# -------------------------------------------------------------------- undo/redo
def undo(plan: Plan) -> Plan:
    """Return the version of the plan before its last edit.

    The undo log is part of the plan (saved with it), so a plan read from a file can
    be undone too, up to :data:`~gridmap.edit.MAX_UNDO` edits back.

    Raises
    ------
    PlanError
        When there is nothing to undo.
    """
    if not plan.undo_log:
        raise PlanError("nothing to undo: the plan has no recorded edits")
    record = plan.undo_log[-1]
    out = apply_patch(plan, record["backward"])
    history = list(plan.history)
    for i in range(len(history) - 1, -1, -1):
        if history[i] == record["history"]:
            del history[i]
            break
    out = dataclasses.replace(
        out, history=history, undo_log=plan.undo_log[:-1], redo_log=[*plan.redo_log, record]
    )
    log.info("undo: %s taken back", record["history"].get("op"))
    return out


def redo(plan: Plan) -> Plan:
    """Re-apply the edit that :func:`undo` took back.

    Raises
    ------
    PlanError
        When there is nothing to redo.
    """
    if not plan.redo_log:
        raise PlanError("nothing to redo")
    record = plan.redo_log[-1]
    out = replay(plan, record)
    out.redo_log = plan.redo_log[:-1]
    log.info("redo: %s applied again", record["history"].get("op"))
    return out


def history_table(plan: Plan) -> pd.DataFrame:
    """The plan's edit history as a table.

    Returns
    -------
    pandas.DataFrame
        ``op``, ``time`` (UTC), ``reason``, ``changed``, ``added``, ``removed`` (codes
        joined by ``;``) and ``params`` (JSON text), one row per edit.
    """
    rows = []
    for h in plan.history:
        rows.append(
            {
                "op": h.get("op", h.get("what", "")),
                "time": h.get("time", h.get("when", "")),
                "reason": h.get("reason", "") or "",
                "changed": ";".join(h.get("changed", [])),
                "added": ";".join(h.get("added", [])),
                "removed": ";".join(h.get("removed", [])),
                "params": json.dumps(h.get("params", {}), ensure_ascii=False),
            }
        )
    cols = ["op", "time", "reason", "changed", "added", "removed", "params"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------- internals
def _value(v: Any) -> Any:
    """A table value as JSON: numpy scalars as Python, NaN and NA as None."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return jsonable(v.item() if isinstance(v, np.generic) else v)


def _code(c: Any) -> str | None:
    return None if c is None or (isinstance(c, float) and np.isnan(c)) else str(c)


def _changed_split_ids(old: pd.DataFrame, new: pd.DataFrame) -> set[str]:
    if not len(old) and not len(new):
        return set()
    cols = [c for c in old.columns if c in new.columns]

    def keyed(s: pd.DataFrame) -> dict[str, set]:
        out: dict[str, set] = {}
        for row in s[cols].itertuples(index=False):
            out.setdefault(str(row[0]), set()).add(tuple(str(v) for v in row))
        return out

    ko, kn = keyed(old[cols]), keyed(new[cols])
    return {i for i in set(ko) | set(kn) if ko.get(i) != kn.get(i)}


def _records(df: pd.DataFrame | None, geometry: bool = False) -> list[dict[str, Any]]:
    if df is None or not len(df):
        return []
    cols = [c for c in df.columns if c != "geometry"]
    recs = [
        {c: _value(v) for c, v in zip(cols, row, strict=True)}
        for row in zip(*(df[c].to_numpy() for c in cols), strict=True)
    ]
    if geometry:
        wkb = shapely.to_wkb(df.geometry.values, hex=True)
        for r, w in zip(recs, wkb, strict=True):
            r["geometry"] = w
    return recs


def _frame(
    records: list[dict[str, Any]], like: pd.DataFrame, geometry: bool = False, crs: Any = None
) -> pd.DataFrame:
    """Records as a frame with the columns and dtypes of `like`."""
    if not records:
        return like.iloc[:0]
    df = pd.DataFrame.from_records(records)
    for col in like.columns:
        if col == "geometry":
            continue
        if col not in df.columns:
            df[col] = None
        try:
            df[col] = df[col].astype(like[col].dtype)
        except (TypeError, ValueError):
            pass
    cols = [c for c in like.columns if c != "geometry"]
    if geometry:
        geoms = shapely.from_wkb(df["geometry"].to_numpy())
        return gpd.GeoDataFrame(df[cols], geometry=list(geoms), crs=crs)[list(like.columns)]
    return df[cols]
