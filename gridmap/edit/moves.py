"""Moving buildings (or units of a split building) between grids.

The grids involved (the target and every grid that loses a building) are redrawn from a
tessellation of their union; no other grid changes, and only those grids are recounted
and checked, so a move on a 1,000-grid plan takes a fraction of a second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import shapely

from ..errors import PlanError
from ..plan import Plan
from .checks import EditResult
from .commit import commit
from .common import (
    editable_buildings,
    member_ids,
    normalise_splits,
    refuse_locked,
    resolve_code,
    set_geoms,
    splits_of,
)
from .redraw import retessellate
from .selection import selection_polygon, wgs84_wkt

log = logging.getLogger("gridmap")

__all__ = ["assign", "move_buildings"]


def move_buildings(
    plan: Plan,
    to_grid: str,
    *,
    ids: Iterable[str] | str | None = None,
    polygon: Any = None,
    polygon_crs: Any = "EPSG:4326",
    units: tuple[str, Iterable[int] | int] | None = None,
    reason: str = "",
) -> EditResult:
    """Move buildings, or units of a split building, to another grid.

    Give exactly one of `ids`, `polygon` or `units`. The polygons of the grids involved
    (the target and every grid that loses a building) are redrawn from a tessellation of
    their union, so each moved building takes its cell along and no other grid changes.
    A grid left without buildings is removed (its area goes to the other grids
    involved).

    Parameters
    ----------
    plan : Plan
        The plan to edit (not changed).
    to_grid : str
        Code of the grid that receives the buildings (the full 15-digit code or a
        unique ending of it, e.g. the last 6 digits shown on the map).
    ids : str or iterable of str, optional
        ``building_id`` values of the buildings to move. A building split by units
        moves whole (all its parts).
    polygon : shapely geometry, GeoJSON dict or str, or path, optional
        Move every building whose representative point lies inside this polygon, e.g.
        one drawn on :func:`selection_map` (see :func:`polygon_from_geojson`).
    polygon_crs : CRS-like
        CRS of `polygon` (default WGS84, as drawn on a web map).
    units : tuple (building_id, part numbers), optional
        Move parts of a building split by units (rows of ``plan.splits``), e.g.
        ``("B000123", [2])``. When every part ends up in one grid the building is
        whole again.
    reason : str
        Why the edit was made; stored in the history.

    Returns
    -------
    EditResult
        ``(plan, report)``.

    Raises
    ------
    PlanError
        Unknown grid or building, nothing to move, or a locked grid involved.
    """
    target = resolve_code(plan, to_grid)
    if sum(x is not None for x in (ids, polygon, units)) != 1:
        raise PlanError("move_buildings: give exactly one of ids=, polygon= or units=")
    b = editable_buildings(plan)
    s = splits_of(plan)  # copied below only when a part moves
    split_ids = set(s["building_id"])
    params: dict[str, Any] = {"to_grid": target}
    if units is not None:
        try:
            bid, parts = units
        except (TypeError, ValueError) as exc:
            raise PlanError(f"units must be (building_id, [part numbers]), got {units!r}") from exc
        bid = str(bid)
        parts = [int(p) for p in np.atleast_1d(parts)]
        rows = (s["building_id"] == bid).to_numpy()
        if not rows.any():
            if bid in set(b["building_id"]):
                raise PlanError(
                    f"building {bid} is not split by units; move it whole with ids=[{bid!r}]"
                )
            raise PlanError(f"no building {bid!r} in the plan")
        have = sorted(int(p) for p in s.loc[rows, "part"])
        bad = [p for p in parts if p not in have]
        if bad:
            raise PlanError(f"building {bid} has no part {bad[0]}; its parts are {have}")
        m = rows & s["part"].isin(parts).to_numpy()
        sources = set(s.loc[m, "grid_code"].dropna())
        s = s.copy(deep=False)
        s.loc[m, "grid_code"] = target
        params["units"] = [bid, parts]
        moved = [f"{bid} part {p}" for p in parts]
    else:
        if ids is not None:
            wanted = [str(i) for i in ([ids] if isinstance(ids, str) else list(ids))]
            if not wanted:
                raise PlanError("move_buildings: ids= is empty")
            sel = b["building_id"].isin(wanted).to_numpy()
            found = set(b["building_id"].to_numpy()[sel])
            unknown = [i for i in wanted if i not in found]
            if unknown:
                raise PlanError(
                    f"no building {unknown[0]!r} in the plan"
                    + (f" ({len(unknown)} unknown ids)" if len(unknown) > 1 else "")
                )
            params["ids"] = wanted
        else:
            poly = selection_polygon(polygon, polygon_crs, plan.crs)
            geoms = b.geometry.values
            x0, y0, x1, y1 = shapely.bounds(poly)
            bb = shapely.bounds(geoms)
            near = np.flatnonzero(
                (bb[:, 2] >= x0) & (bb[:, 0] <= x1) & (bb[:, 3] >= y0) & (bb[:, 1] <= y1)
            )
            sel = np.zeros(len(b), dtype=bool)
            sel[near] = shapely.covers(poly, shapely.point_on_surface(geoms[near]))
            if not sel.any():
                raise PlanError("no building has its representative point inside the polygon")
            params["polygon_wkt"] = wgs84_wkt(poly, plan.crs)
        whole = sel.copy()
        pos = np.flatnonzero(sel)
        whole[pos] = [i not in split_ids for i in b["building_id"].to_numpy()[pos]]
        sources = set(b.loc[whole, "grid_code"].dropna())
        sel_ids = set(b.loc[sel, "building_id"])
        pm = s["building_id"].isin(sel_ids).to_numpy()
        sources |= set(s.loc[pm, "grid_code"].dropna())
        b.loc[sel, "grid_code"] = target
        if pm.any():
            s = s.copy(deep=False)
            s.loc[pm, "grid_code"] = target
        moved = sorted(sel_ids)
        params["buildings"] = moved
    sources.discard(target)
    if not sources and not _has_unassigned(plan, moved):
        raise PlanError(f"nothing to move: the selected buildings are already in grid {target}")
    refuse_locked(plan, sources | {target}, "move buildings into or out of")
    region = sorted(sources | {target})
    b, s = normalise_splits(b, s, only=[m.split(" part ")[0] for m in moved])
    geoms = retessellate(plan, b, s, region, keep=[target])
    grids = plan.grids.copy()
    removed = [c for c in region if c not in geoms]
    for c in removed:
        log.warning(
            "move_buildings: grid %s lost all its buildings and was removed; its area went "
            "to the neighbouring grids of the edit",
            c,
        )
    grids = grids[~grids["grid_code"].isin(removed)].copy()
    set_geoms(grids, geoms)
    params["moved"] = len(moved)
    params["from_grids"] = sorted(sources)
    return commit(
        plan,
        "move_buildings",
        params,
        reason,
        grids,
        b,
        s,
        touched=[c for c in region if c in geoms],
        added=[],
        removed=removed,
        manual=True,
        retired=member_ids(plan.buildings, splits_of(plan), removed) if removed else None,
    )


def assign(plan: Plan, ids: Iterable[str] | str, to_grid: str, *, reason: str = "") -> EditResult:
    """Assign buildings to a grid: one paint stroke of an editor.

    The same as ``move_buildings(plan, to_grid, ids=ids, reason=reason)``; buildings
    already in `to_grid` are left out, and a stroke that changes nothing is refused.

    Parameters
    ----------
    plan : Plan
    ids : str or iterable of str
        ``building_id`` values.
    to_grid : str
        The grid receiving them (full code or a unique ending).
    reason : str
        Stored in the history.

    Returns
    -------
    EditResult
    """
    wanted = [str(i) for i in ([ids] if isinstance(ids, str) else list(ids))]
    target = resolve_code(plan, to_grid)
    b = plan.buildings
    here = b.loc[b["building_id"].isin(wanted) & (b["grid_code"] == target), "building_id"]
    s = splits_of(plan)
    split_here = set(s.loc[s["grid_code"] != target, "building_id"]) if len(s) else set()
    rest = [i for i in wanted if i not in set(here) or i in split_here]
    if wanted and not rest:
        raise PlanError(f"nothing to move: the selected buildings are already in grid {target}")
    return move_buildings(plan, target, ids=rest or wanted, reason=reason)


def _has_unassigned(plan: Plan, ids: list[str]) -> bool:
    b = plan.buildings
    return bool(b.loc[b["building_id"].isin(ids), "grid_code"].isna().any())
