"""Edit a grid plan by hand: move buildings, merge, split, lock and re-plan, undo, compare.

Planners redraw grids in notebooks. Every edit here takes a :class:`~gridmap.plan.Plan`
and returns an :class:`EditResult` ``(plan, report)``: a **new** plan (the old one is
never changed) and the validation report of the new plan
(:func:`gridmap.validate_plan`). Unpack it with ``plan, report = move_buildings(...)``.

Rules every edit keeps
----------------------
- **Exact coverage.** Grid polygons still tile each community with no gap or overlap.
  Moving buildings re-tessellates only the grids involved: the union of their polygons
  is divided again among their buildings (a Voronoi diagram of the building points cut
  along barriers and community borders, the same construction as
  :func:`gridmap.plan_grids`), so a moved building takes its cell with it and every
  other grid keeps its polygon exactly. Splitting and re-planning call
  :func:`gridmap.plan_grids` on the area being redrawn.
- **Recomputed figures.** Households, building counts, area, Polsby–Popper
  compactness, flags (``out_of_range``, ``no_households``, ``crosses_barrier``,
  ``discontiguous``, ``crosses_community``) and the barrier-crossing table are
  recomputed for every grid an edit touches.
- **Stable codes.** Grids an edit does not touch keep their codes. New grids take the
  next free sequence numbers of their community (numbers retired by earlier edits are
  not reused until :func:`renumber`); :func:`renumber` renumbers everything in reading
  order (north→south, west→east) on request.
- **Rule-breaking edits are allowed but loud.** An edit that leaves a grid out of its
  household range, in several parts, or reaching into another community is carried
  out; a ``WARNING`` on the ``gridmap`` logger lists the problems of the edited grids,
  ``EditResult.problems`` holds them and ``plan.validate()`` lists them. The planner's
  own explanations (``infeasible_split``, ``isolated_village``) are removed from grids
  edited by hand, so an out-of-range grid is reported as an error again.
- **Locked grids** (:func:`lock_grids`) are kept as they are by :func:`replan`, and
  moving buildings into or out of them, merging or splitting them is refused until they
  are unlocked. Special grids (专属网格) are always kept by :func:`replan`.

History and undo
----------------
Every edit appends one entry to ``plan.history`` (``op``, ``time`` in UTC ISO 8601,
``reason``, ``params``, and the grid codes ``changed``, ``added`` and ``removed``).
The history is saved with the plan by :meth:`Plan.to_file` and read back by
:func:`gridmap.read_plan`; so are the locked grids (``plan.params["locked_grids"]``).
:func:`undo` and :func:`redo` step through earlier versions kept in memory on the plan
object (up to :data:`MAX_UNDO`); those stacks are *not* saved: a plan read from a file
starts with an empty undo stack, and its history says how it was made.

Finding grids
-------------
Codes can be given in full or by a unique ending (the six digits the map labels show).
:func:`neighbours` lists the grids sharing a border with a grid.

Interactive selection
---------------------
:func:`selection_map` draws the plan with folium's Draw plugin; draw a polygon and
press *Export* to download it as GeoJSON, then pass the file (or its text) to
:func:`polygon_from_geojson`, or straight to ``move_buildings(..., polygon=...)``.

Comparing versions
------------------
:func:`diff` compares two plans: grids added, removed and changed, buildings moved and
the household change per grid, with :meth:`PlanDiff.map` to see it.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .errors import InputError, PlanError
from .partition.atoms import distinct_seeds, footprint_seeds, strip_seeds
from .partition.blocks import barrier_ranks
from .partition.codes import reading_order
from .partition.engine import crossings
from .partition.geometry import PRECISION, polsby_popper, polygonal, unit_strips
from .partition.tessellation import redraw
from .plan import CROSSING_COLUMNS, GRID_COLUMNS, Plan, empty_crossings

log = logging.getLogger("gridmap")

__all__ = [
    "MAX_UNDO",
    "EditResult",
    "PlanDiff",
    "diff",
    "history_table",
    "lock_grids",
    "merge_grids",
    "move_buildings",
    "neighbours",
    "polygon_from_geojson",
    "redo",
    "renumber",
    "replan",
    "selection_map",
    "set_grid",
    "split_grid",
    "undo",
    "unlock_grids",
]

#: Number of earlier versions :func:`undo` can go back to (kept in memory only).
MAX_UNDO = 50

#: Flags recomputed from the geometry and figures of a grid after every edit.
_DERIVED_FLAGS = (
    "out_of_range",
    "no_households",
    "crosses_barrier",
    "discontiguous",
    "crosses_community",
)
#: Flags by which the planner explains an out-of-range grid; dropped on manual edits.
_EXPLAIN_FLAGS = ("infeasible_split", "isolated_village", "below_floor", "unbalanced")
_PSEUDO = "\x1fpart="  # joins a building id and a part number into a planner atom id
_TOL_M2 = 1.0  # m²: area differences below this are noise
_KINDS = ("community", "rural", "special")


# =============================================================================== results
class EditResult(NamedTuple):
    """What every edit returns: the new plan and its validation report.

    Unpacks as a pair: ``plan, report = move_buildings(plan, ...)``.

    Attributes
    ----------
    plan : Plan
        The edited plan (a new object; the input plan is unchanged).
    report : pandas.DataFrame
        :meth:`Plan.validate` of the new plan (``check``, ``grid_code``,
        ``severity``, ``detail``). ``report.attrs["edited_grids"]`` lists the codes of
        the grids the edit touched.
    """

    plan: Plan
    report: pd.DataFrame

    @property
    def problems(self) -> pd.DataFrame:
        """Rows of the report about the grids this edit touched."""
        edited = set(self.report.attrs.get("edited_grids", []))
        r = self.report
        return r[r["grid_code"].isin(edited)].reset_index(drop=True)

    def __repr__(self) -> str:
        n_err = int((self.report["severity"] == "error").sum()) if len(self.report) else 0
        return (
            f"EditResult(plan={self.plan!r}, report=<{len(self.report)} rows, {n_err} errors; "
            f"{len(self.problems)} on the edited grids>)"
        )


# ============================================================================ edits
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
    target = _resolve_code(plan, to_grid)
    if sum(x is not None for x in (ids, polygon, units)) != 1:
        raise PlanError("move_buildings: give exactly one of ids=, polygon= or units=")
    b = plan.buildings.copy()
    s = _splits(plan).copy()
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
        s.loc[m, "grid_code"] = target
        params["units"] = [bid, parts]
        moved = [f"{bid} part {p}" for p in parts]
    else:
        if ids is not None:
            wanted = [str(i) for i in ([ids] if isinstance(ids, str) else list(ids))]
            if not wanted:
                raise PlanError("move_buildings: ids= is empty")
            known = set(b["building_id"])
            unknown = [i for i in wanted if i not in known]
            if unknown:
                raise PlanError(
                    f"no building {unknown[0]!r} in the plan"
                    + (f" ({len(unknown)} unknown ids)" if len(unknown) > 1 else "")
                )
            sel = b["building_id"].isin(wanted).to_numpy()
            params["ids"] = wanted
        else:
            poly = _selection_polygon(polygon, polygon_crs, plan.crs)
            pts = shapely.point_on_surface(b.geometry.values)
            sel = shapely.covers(poly, pts)
            if not sel.any():
                raise PlanError("no building has its representative point inside the polygon")
            params["polygon_wkt"] = _to_wgs84_wkt(poly, plan.crs)
        whole = sel & ~b["building_id"].isin(split_ids).to_numpy()
        sources = set(b.loc[whole, "grid_code"].dropna())
        sel_ids = set(b.loc[sel, "building_id"])
        pm = s["building_id"].isin(sel_ids).to_numpy()
        sources |= set(s.loc[pm, "grid_code"].dropna())
        b.loc[sel, "grid_code"] = target
        s.loc[pm, "grid_code"] = target
        moved = sorted(sel_ids)
        params["buildings"] = moved
    sources.discard(target)
    if not sources and not _has_unassigned(plan, moved):
        raise PlanError(f"nothing to move: the selected buildings are already in grid {target}")
    _refuse_locked(plan, sources | {target}, "move buildings into or out of")
    region = sorted(sources | {target})
    b, s = _normalise_splits(b, s, only=[m.split(" part ")[0] for m in moved])
    geoms = _retessellate(plan, b, s, region, keep=[target])
    grids = plan.grids.copy()
    removed = [c for c in region if c not in geoms]
    for c in removed:
        log.warning(
            "move_buildings: grid %s lost all its buildings and was removed; its area went "
            "to the neighbouring grids of the edit",
            c,
        )
    grids = grids[~grids["grid_code"].isin(removed)].copy()
    _set_geoms(grids, geoms)
    params["moved"] = len(moved)
    params["from_grids"] = sorted(sources)
    return _commit(
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
    )


def merge_grids(plan: Plan, a: str, b: str, *, reason: str = "") -> EditResult:
    """Merge grid `b` into grid `a`.

    The merged grid keeps the code, kind, name, worker, difficulty and household range
    of `a`; the code of `b` is retired. Its polygon is the union of both polygons (in
    several parts when they do not touch: allowed, and reported as ``discontiguous``).

    Parameters
    ----------
    plan : Plan
    a, b : str
        Grid codes (or unique endings of them).
    reason : str
        Stored in the history.

    Returns
    -------
    EditResult
    """
    ca, cb = _resolve_code(plan, a), _resolve_code(plan, b)
    if ca == cb:
        raise PlanError(f"cannot merge grid {ca} with itself")
    _refuse_locked(plan, {ca, cb}, "merge")
    grids = plan.grids.copy()
    ra = grids.index[grids["grid_code"] == ca][0]
    rb = grids.index[grids["grid_code"] == cb][0]
    if grids.at[ra, "kind"] != grids.at[rb, "kind"]:
        log.warning(
            "merge_grids: %s (%s) and %s (%s) are of different kinds; the merged grid stays %s",
            ca,
            grids.at[ra, "kind"],
            cb,
            grids.at[rb, "kind"],
            grids.at[ra, "kind"],
        )
    if (grids.at[ra, "street_code"], grids.at[ra, "community_code"]) != (
        grids.at[rb, "street_code"],
        grids.at[rb, "community_code"],
    ):
        log.warning(
            "merge_grids: %s and %s are in different communities; the merged grid crosses "
            "the community border",
            ca,
            cb,
        )
    merged = polygonal(shapely.union_all([grids.at[ra, "geometry"], grids.at[rb, "geometry"]]))
    bl = plan.buildings.copy()
    s = _splits(plan).copy()
    bl.loc[bl["grid_code"] == cb, "grid_code"] = ca
    s.loc[s["grid_code"] == cb, "grid_code"] = ca
    bl, s = _normalise_splits(bl, s, only=s.loc[s["grid_code"] == ca, "building_id"])
    grids = grids.drop(index=rb)
    _set_geoms(grids, {ca: merged})
    return _commit(
        plan,
        "merge_grids",
        {"a": ca, "b": cb},
        reason,
        grids,
        bl,
        s,
        touched=[ca],
        added=[],
        removed=[cb],
        manual=True,
    )


def split_grid(plan: Plan, code: str, n: int | None = None, *, reason: str = "") -> EditResult:
    """Split a grid by re-partitioning its buildings under the planner's rules.

    :func:`gridmap.plan_grids` is run on the grid's buildings (and split parts) with the
    grid polygon as the only community and the plan's parameters and barriers, so the
    parts tile the old polygon exactly. All parts get new codes (the next free sequence
    numbers of the community); the old code is retired.

    Parameters
    ----------
    plan : Plan
    code : str
        The grid to split (a non-special grid).
    n : int, optional
        Number of grids wanted. By default the planner chooses from the plan's
        household ranges (which gives one grid for a grid already in range: then pass
        `n`). With `n`, the range passed to the planner is narrowed around
        ``households / n`` so that it makes `n` grids; the new grids get the plan's
        ranges back, and are reported when they fall outside them.
    reason : str
        Stored in the history.

    Returns
    -------
    EditResult

    Raises
    ------
    PlanError
        Unknown, special or locked grid; `n` < 2; or the split gives a single grid.
    """
    code = _resolve_code(plan, code)
    _refuse_locked(plan, {code}, "split")
    row = plan.grids.loc[plan.grids["grid_code"] == code].iloc[0]
    if row["kind"] == "special":
        raise PlanError(f"grid {code} is a special grid (专属网格); special grids are not split")
    if n is not None and int(n) < 2:
        raise PlanError(f"split_grid: n must be at least 2, got {n}")
    hh = int(row["households"])
    ranges = None
    if n is not None:
        n = int(n)
        if hh < n:
            raise PlanError(f"grid {code} holds {hh} households: cannot split it into {n} grids")
        ranges = _forced_range(hh, n)
    area = row.geometry
    new_grids, b, s = _replan_area(
        plan,
        area,
        street=row["street_code"],
        community=row["community_code"],
        community_name=row["community_name"],
        village=row["kind"] == "rural",
        codes={code},
        ranges=ranges,
    )
    if len(new_grids) < 2:
        raise PlanError(
            f"grid {code} ({hh} households) stays one grid under the plan's household ranges; "
            "pass n=2 (or more) to force a split"
        )
    if n is not None and len(new_grids) != n:
        log.warning("split_grid: asked for %d grids, the planner made %d", n, len(new_grids))
    new_codes = _next_codes(plan, row["street_code"], row["community_code"], len(new_grids), [code])
    mapping = dict(zip(new_grids["grid_code"], new_codes, strict=True))
    new_grids, b, s = _apply_codes(new_grids, b, s, mapping)
    if n is not None:
        _reset_ranges(new_grids, plan)
    grids = pd.concat([plan.grids[plan.grids["grid_code"] != code], new_grids], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)
    return _commit(
        plan,
        "split_grid",
        {"code": code, "n": n, "into": new_codes},
        reason,
        grids,
        b,
        s,
        touched=new_codes,
        added=new_codes,
        removed=[code],
        manual=n is not None,
    )


def lock_grids(plan: Plan, codes: Iterable[str] | str, *, reason: str = "") -> EditResult:
    """Lock grids so that :func:`replan` keeps them and manual edits leave them alone.

    The locked codes are kept in ``plan.params["locked_grids"]`` (saved with the plan).

    Parameters
    ----------
    plan : Plan
    codes : str or iterable of str
        Grid codes (or unique endings).
    reason : str
        Stored in the history.

    Returns
    -------
    EditResult
    """
    codes = [_resolve_code(plan, c) for c in ([codes] if isinstance(codes, str) else codes)]
    locked = _locked(plan) | set(codes)
    return _commit_params(plan, "lock_grids", {"codes": codes}, reason, sorted(locked))


def unlock_grids(
    plan: Plan, codes: Iterable[str] | str | None = None, *, reason: str = ""
) -> EditResult:
    """Unlock grids (all locked grids when `codes` is None).

    Returns
    -------
    EditResult
    """
    if codes is None:
        codes = sorted(_locked(plan))
    else:
        codes = [_resolve_code(plan, c) for c in ([codes] if isinstance(codes, str) else codes)]
    locked = _locked(plan) - set(codes)
    return _commit_params(plan, "unlock_grids", {"codes": list(codes)}, reason, sorted(locked))


def replan(plan: Plan, community_code: str, *, reason: str = "") -> EditResult:
    """Re-plan a community around its locked grids.

    Every grid of the community that is neither locked (:func:`lock_grids`) nor special
    is redrawn: :func:`gridmap.plan_grids` is run on their buildings (and split parts),
    with the community polygon minus the kept grids as the community and the plan's
    parameters and barriers. A new grid holding exactly the buildings of an old one
    keeps its code; the others take the next free sequence numbers.

    Parameters
    ----------
    plan : Plan
    community_code : str
        The community: 3 digits (``community_code``, when unique across streets),
        6 digits (street + community) or the 12-digit prefix of its grid codes.
    reason : str
        Stored in the history.

    Returns
    -------
    EditResult
    """
    street, comm, name, kind, comm_geom = _community(plan, community_code)
    g = plan.grids
    in_comm = ((g["street_code"] == street) & (g["community_code"] == comm)).to_numpy()
    locked = _locked(plan)
    keep = in_comm & (g["grid_code"].isin(locked) | (g["kind"] == "special")).to_numpy()
    redo_mask = in_comm & ~keep
    old_codes = g.loc[redo_mask, "grid_code"].tolist()
    if not old_codes:
        raise PlanError(
            f"community {street}{comm}: every grid is locked or special; nothing to re-plan"
        )
    replaced = shapely.union_all(g.geometry.values[redo_mask])
    others = g.geometry.values[~redo_mask]
    others = others[shapely.intersects(others, shapely.union(replaced, comm_geom))]
    area = shapely.union(comm_geom, replaced)
    if len(others):
        area = shapely.difference(area, shapely.union_all(others))
    area = polygonal(area)
    new_grids, b, s = _replan_area(
        plan,
        area,
        street=street,
        community=comm,
        community_name=name,
        village=kind == "village",
        codes=set(old_codes),
    )
    # Codes: a new grid holding exactly the members of an old one keeps its code.
    old_members = _members(plan.buildings, _splits(plan), old_codes)
    new_members = _members(b, s, new_grids["grid_code"].tolist())
    by_members = {v: k for k, v in old_members.items()}
    mapping: dict[str, str] = {}
    for tmp, mem in new_members.items():
        if mem and mem in by_members:
            mapping[tmp] = by_members.pop(mem)
    fresh = [c for c in new_grids["grid_code"] if c not in mapping]
    retired = [c for c in old_codes if c not in mapping.values()]
    new_codes = _next_codes(plan, street, comm, len(fresh), retired)
    mapping.update(zip(fresh, new_codes, strict=True))
    new_grids, b, s = _apply_codes(new_grids, b, s, mapping)
    grids = pd.concat([g[~redo_mask], new_grids], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)
    kept_codes = sorted(mapping[t] for t in mapping if t not in fresh)
    changed = [
        c
        for c in kept_codes
        if not _same_geom(
            g.loc[g["grid_code"] == c].geometry.iloc[0],
            new_grids.loc[new_grids["grid_code"] == c].geometry.iloc[0],
        )
    ]
    return _commit(
        plan,
        "replan",
        {
            "community": f"{street}{comm}",
            "kept": sorted(g.loc[keep, "grid_code"]),
            "replaced": old_codes,
        },
        reason,
        grids,
        b,
        s,
        touched=sorted(new_grids["grid_code"]),
        added=sorted(new_codes),
        removed=sorted(retired),
        manual=False,
        changed=changed,
    )


def set_grid(
    plan: Plan,
    code: str,
    *,
    difficult: bool | None = None,
    kind: str | None = None,
    name: str | None = None,
    worker: str | None = None,
    reason: str = "",
) -> EditResult:
    """Change a grid's attributes.

    Parameters
    ----------
    plan : Plan
    code : str
        Grid code (or a unique ending).
    difficult : bool, optional
        Mark the grid difficult (its range becomes the plan's ``difficult_range``,
        200–300 by default) or ordinary (``household_range``).
    kind : {"community", "rural", "special"}, optional
        A special grid has the range 0/0 (no household rule).
    name, worker : str, optional
        The grid's name and its grid worker (网格员).
    reason : str
        Stored in the history.

    Returns
    -------
    EditResult
    """
    code = _resolve_code(plan, code)
    if kind is not None and kind not in _KINDS:
        raise PlanError(f"kind must be one of {_KINDS}, got {kind!r}")
    grids = plan.grids.copy()
    i = grids.index[grids["grid_code"] == code][0]
    params: dict[str, Any] = {"code": code}
    if name is not None:
        grids.at[i, "name"] = str(name)
        params["name"] = str(name)
    if worker is not None:
        grids.at[i, "worker"] = str(worker)
        params["worker"] = str(worker)
    if difficult is not None:
        grids.at[i, "difficult"] = bool(difficult)
        params["difficult"] = bool(difficult)
    if kind is not None:
        grids.at[i, "kind"] = kind
        params["kind"] = kind
    if difficult is not None or kind is not None:
        _reset_ranges(grids.loc[[i]], plan, target=grids)
    if len(params) == 1:
        raise PlanError("set_grid: give at least one of difficult=, kind=, name=, worker=")
    return _commit(
        plan,
        "set_grid",
        params,
        reason,
        grids,
        plan.buildings.copy(),
        _splits(plan).copy(),
        touched=[code],
        added=[],
        removed=[],
        manual=difficult is not None or kind is not None,
        geometry_changed=False,
    )


def renumber(plan: Plan, *, reason: str = "") -> EditResult:
    """Renumber every grid in reading order (north→south, west→east) per community.

    Codes freed by earlier edits become available again. The history entry holds the
    mapping from old to new codes.

    Returns
    -------
    EditResult
    """
    g = plan.grids
    key = (g["street_code"].astype(str) + g["community_code"].astype(str)).to_numpy()
    labels = pd.factorize(key)[0]
    seq = reading_order(g.geometry.values, labels)
    prefix = g["grid_code"].astype(str).str[:12].to_numpy()
    new = [f"{p}{q:03d}" for p, q in zip(prefix, seq, strict=True)]
    mapping = {o: n for o, n in zip(g["grid_code"], new, strict=True) if o != n}
    grids, b, s = _apply_codes(
        plan.grids.copy(), plan.buildings.copy(), _splits(plan).copy(), mapping
    )
    params = {"mapping": mapping}
    locked = sorted(mapping.get(c, c) for c in _locked(plan))
    crossings = plan.crossings.copy()
    if len(crossings):
        crossings["grid_code"] = crossings["grid_code"].map(lambda c: mapping.get(c, c))
    return _commit(
        plan,
        "renumber",
        params,
        reason,
        grids,
        b,
        s,
        touched=sorted(mapping.values()),
        added=[],
        removed=[],
        manual=False,
        geometry_changed=False,
        crossings=crossings,
        locked=locked,
        changed=[],
    )


def undo(plan: Plan) -> Plan:
    """Return the version of the plan before its last edit.

    The undo stack lives on the plan object in memory (it is not saved): a plan read
    from a file cannot be undone past the point where it was saved.

    Raises
    ------
    PlanError
        When there is nothing to undo.
    """
    stack = list(getattr(plan, "_undo", []))
    if not stack:
        raise PlanError("nothing to undo (the undo stack is kept in memory only)")
    prev = stack.pop()
    out = dataclasses.replace(prev)
    out._undo = stack
    out._redo = [*getattr(plan, "_redo", []), plan]
    log.info("undo: back to %s", out)
    return out


def redo(plan: Plan) -> Plan:
    """Re-apply the edit that :func:`undo` took back.

    Raises
    ------
    PlanError
        When there is nothing to redo.
    """
    stack = list(getattr(plan, "_redo", []))
    if not stack:
        raise PlanError("nothing to redo")
    nxt = stack.pop()
    out = dataclasses.replace(nxt)
    out._undo = [*getattr(plan, "_undo", []), plan][-MAX_UNDO:]
    out._redo = stack
    log.info("redo: forward to %s", out)
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
                "op": h.get("op", ""),
                "time": h.get("time", ""),
                "reason": h.get("reason", ""),
                "changed": ";".join(h.get("changed", [])),
                "added": ";".join(h.get("added", [])),
                "removed": ";".join(h.get("removed", [])),
                "params": json.dumps(h.get("params", {}), ensure_ascii=False),
            }
        )
    cols = ["op", "time", "reason", "changed", "added", "removed", "params"]
    return pd.DataFrame(rows, columns=cols)


def neighbours(plan: Plan, code: str, *, same_community: bool = True) -> pd.DataFrame:
    """The grids sharing a border with grid `code`, longest shared border first.

    Parameters
    ----------
    plan : Plan
    code : str
        Grid code (or a unique ending).
    same_community : bool
        Only grids of the same community (the ones it may merge or swap buildings with).

    Returns
    -------
    pandas.DataFrame
        ``grid_code``, ``kind``, ``households``, ``range_min``, ``range_max``,
        ``shared_m`` (length of the shared border in metres).
    """
    code = _resolve_code(plan, code)
    g = plan.grids
    row = g.loc[g["grid_code"] == code].iloc[0]
    shared = shapely.length(shapely.intersection(g.geometry.values, row.geometry.boundary))
    m = (shared > 0.5) & (g["grid_code"] != code).to_numpy()
    if same_community:
        m &= (
            (g["street_code"] == row["street_code"])
            & (g["community_code"] == row["community_code"])
        ).to_numpy()
    out = g.loc[m, ["grid_code", "kind", "households", "range_min", "range_max"]].copy()
    out["shared_m"] = shared[m].round(1)
    return out.sort_values(["shared_m", "grid_code"], ascending=[False, True]).reset_index(
        drop=True
    )


# ========================================================================= selection
def polygon_from_geojson(source: Any) -> shapely.Geometry:
    """Read the polygon(s) of a GeoJSON selection, e.g. exported from :func:`selection_map`.

    Parameters
    ----------
    source : str, path-like, dict or shapely geometry
        A path to a ``.geojson``/``.json`` file, GeoJSON text, a parsed GeoJSON dict
        (FeatureCollection, Feature or geometry), or a shapely geometry.

    Returns
    -------
    shapely Polygon or MultiPolygon
        The union of all polygons in the source (lines and points are ignored), in the
        source's coordinates (WGS84 for GeoJSON).

    Raises
    ------
    InputError
        When the source cannot be read or holds no polygon.
    """
    if isinstance(source, shapely.Geometry):
        geoms = [source]
    else:
        obj = source
        where = "GeoJSON"
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and not source.lstrip().startswith(("{", "["))
        ):
            path = Path(source)
            where = str(path)
            if not path.is_file():
                raise InputError("GeoJSON file not found", source=where)
            obj = path.read_text(encoding="utf-8")
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc})", source=where) from exc
        try:
            geoms = [shapely.geometry.shape(g) for g in _geojson_geometries(obj)]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a GeoJSON geometry ({exc})", source=where) from exc
    polys = [polygonal(shapely.make_valid(g)) for g in geoms if g is not None]
    polys = [p for p in polys if not p.is_empty]
    if not polys:
        raise InputError("the GeoJSON holds no polygon", source="GeoJSON")
    return polygonal(shapely.union_all(polys))


def selection_map(plan: Plan, *, filename: str = "selection.geojson", **kwargs):
    """:func:`gridmap.plan_map` with a drawing tool to select buildings.

    Draw a polygon or rectangle and press *Export*: the browser downloads `filename`
    (a GeoJSON FeatureCollection in WGS84). Pass it to :func:`move_buildings` as
    ``polygon=polygon_from_geojson("selection.geojson")``.

    Parameters
    ----------
    plan : Plan
    filename : str
        Name of the exported file.
    **kwargs
        Passed to :func:`gridmap.plan_map` (e.g. ``tiles=None`` for no base map).

    Returns
    -------
    folium.Map
    """
    from folium.plugins import Draw

    from .maps import plan_map

    m = plan_map(plan, **kwargs)
    Draw(
        export=True,
        filename=filename,
        draw_options={
            "polyline": False,
            "circle": False,
            "marker": False,
            "circlemarker": False,
            "polygon": True,
            "rectangle": True,
        },
    ).add_to(m)
    return m


# ============================================================================== diff
@dataclasses.dataclass
class PlanDiff:
    """Differences between two versions of a plan (see :func:`diff`).

    Attributes
    ----------
    added : geopandas.GeoDataFrame
        Grids of the new plan whose codes are not in the old one (new geometry).
    removed : geopandas.GeoDataFrame
        Grids of the old plan whose codes are gone (old geometry).
    changed : geopandas.GeoDataFrame
        Grids in both plans that differ: ``grid_code``, ``households_old``,
        ``households_new``, ``households_delta``, ``buildings_old``, ``buildings_new``,
        ``area_old_m2``, ``area_new_m2``, ``area_changed_m2`` (area of the symmetric
        difference), ``what`` (``;``-separated: ``households``, ``buildings``,
        ``geometry`` and changed attributes such as ``worker``) and the new geometry.
    moved : pandas.DataFrame
        Buildings (or split parts) now in another grid: ``building_id``, ``part``
        (``""`` for a whole building, else e.g. ``units 3-4``), ``households``,
        ``from_grid``, ``to_grid`` (several codes joined by ``;`` when a building's
        split changed).
    households : pandas.DataFrame
        Household change per grid: ``grid_code``, ``status`` (added, removed, changed),
        ``households_old``, ``households_new``, ``delta``; grids with a change only.
    """

    old: Plan
    new: Plan
    added: gpd.GeoDataFrame
    removed: gpd.GeoDataFrame
    changed: gpd.GeoDataFrame
    moved: pd.DataFrame
    households: pd.DataFrame

    def summary(self) -> dict[str, int]:
        """Counts: grids added, removed, changed; buildings moved; households moved."""
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "moved_buildings": int(self.moved["building_id"].nunique()) if len(self.moved) else 0,
            "moved_households": int(self.moved["households"].sum()) if len(self.moved) else 0,
        }

    @property
    def empty(self) -> bool:
        """True when the two plans have the same grids and assignments."""
        return not any(self.summary().values())

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<PlanDiff: {s['added']} added, {s['removed']} removed, {s['changed']} changed "
            f"grids; {s['moved_buildings']} buildings moved ({s['moved_households']} households)>"
        )

    def map(self, *, tiles: str | None = "osm"):
        """Draw the changes on a folium map (WGS84).

        Unchanged grids are outlined in grey, changed grids orange, added grids green,
        removed grids dashed red (old outline); moved buildings are blue with a tooltip
        giving where they came from.

        Parameters
        ----------
        tiles : str or None
            Base map as in :func:`gridmap.plan_map` (None: no base map, works offline).

        Returns
        -------
        folium.Map
        """
        import folium

        from .crs import to_wgs84
        from .maps import _add_tiles

        new = to_wgs84(self.new.grids, "new grids")
        bounds = new.total_bounds if len(new) else to_wgs84(self.old.grids).total_bounds
        m = folium.Map(tiles=None, control_scale=True)
        _add_tiles(m, tiles, None)
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
        touched = set(self.changed["grid_code"]) | set(self.added["grid_code"])
        same = new[~new["grid_code"].isin(touched)]
        if len(same):
            folium.GeoJson(
                same[["grid_code", "households", "geometry"]].to_json(drop_id=True),
                name="未变 Unchanged",
                style_function=lambda f: {"color": "#777", "weight": 1, "fillOpacity": 0.05},
                tooltip=folium.GeoJsonTooltip(["grid_code", "households"]),
            ).add_to(m)
        layers = (
            (self.removed, "删除 Removed", "#d62728", "6 4", 0.0, ["grid_code", "households"]),
            (
                self.changed,
                "变化 Changed",
                "#ff7f0e",
                None,
                0.35,
                ["grid_code", "households_old", "households_new", "what"],
            ),
            (self.added, "新增 Added", "#2ca02c", None, 0.35, ["grid_code", "households"]),
        )
        for gdf, name, colour, dash, fill, fields in layers:
            if not len(gdf):
                continue
            w = to_wgs84(gdf, name)[[*fields, "geometry"]]
            folium.GeoJson(
                w.to_json(drop_id=True, default=str),
                name=name,
                style_function=lambda f, c=colour, d=dash, o=fill: {
                    "color": c,
                    "weight": 3,
                    "dashArray": d,
                    "fillColor": c,
                    "fillOpacity": o,
                },
                tooltip=folium.GeoJsonTooltip(fields),
            ).add_to(m)
        if len(self.moved):
            bl = self.new.buildings[
                self.new.buildings["building_id"].isin(self.moved["building_id"])
            ]
            info = (
                self.moved.groupby("building_id")
                .agg(
                    from_grid=("from_grid", lambda x: ";".join(sorted(set(x)))),
                    to_grid=("to_grid", lambda x: ";".join(sorted(set(x)))),
                    households=("households", "sum"),
                )
                .reset_index()
            )
            bl = bl[["building_id", "geometry"]].merge(info, on="building_id")
            w = to_wgs84(gpd.GeoDataFrame(bl, geometry="geometry", crs=self.new.crs))
            folium.GeoJson(
                w.to_json(drop_id=True, default=str),
                name="移动的楼栋 Moved buildings",
                style_function=lambda f: {
                    "color": "#1f3b99",
                    "weight": 1,
                    "fillColor": "#1f77b4",
                    "fillOpacity": 0.9,
                },
                tooltip=folium.GeoJsonTooltip(
                    ["building_id", "households", "from_grid", "to_grid"],
                    aliases=["楼栋 Building", "户数 Households", "从 From", "到 To"],
                ),
            ).add_to(m)
        s = self.summary()
        box = (
            '<div style="position:fixed;bottom:24px;left:12px;z-index:9999;background:#fff;'
            'padding:8px 10px;border:1px solid #999;font:12px sans-serif;line-height:1.5">'
            "<b>版本比较 Plan diff</b>"
            f"<div style='color:#2ca02c'>新增 added: {s['added']}</div>"
            f"<div style='color:#d62728'>删除 removed: {s['removed']}</div>"
            f"<div style='color:#ff7f0e'>变化 changed: {s['changed']}</div>"
            f"<div style='color:#1f77b4'>移动楼栋 moved buildings: {s['moved_buildings']} "
            f"({s['moved_households']} 户)</div></div>"
        )
        m.get_root().html.add_child(folium.Element(box))
        folium.LayerControl(collapsed=False).add_to(m)
        return m

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>" + self.households.head(30).to_html(
            index=False
        )


def diff(old: Plan, new: Plan, *, tolerance_m2: float = _TOL_M2) -> PlanDiff:
    """Compare two versions of a plan.

    Grids are matched by code: after :func:`renumber` most grids show as removed and
    added. Buildings are matched by ``building_id``.

    Parameters
    ----------
    old, new : Plan
        Two versions (e.g. before and after edits, or two saved files).
    tolerance_m2 : float
        A grid whose polygon changes by less than this area (m²) keeps its geometry.

    Returns
    -------
    PlanDiff
    """
    go = old.grids.to_crs(new.crs) if old.crs != new.crs else old.grids
    gn = new.grids
    co, cn = set(go["grid_code"]), set(gn["grid_code"])
    added = gn[~gn["grid_code"].isin(co)].reset_index(drop=True)
    removed = go[~go["grid_code"].isin(cn)].reset_index(drop=True)
    both = sorted(co & cn)
    o = go.set_index("grid_code").loc[both]
    n = gn.set_index("grid_code").loc[both]
    go_geom = o.geometry.values
    gn_geom = n.geometry.values
    sym = shapely.area(shapely.symmetric_difference(go_geom, gn_geom)) if len(both) else np.zeros(0)
    what = [[] for _ in both]
    hh_o = o["households"].to_numpy(dtype=np.int64)
    hh_n = n["households"].to_numpy(dtype=np.int64)
    bo = o["buildings"].to_numpy(dtype=np.int64)
    bn = n["buildings"].to_numpy(dtype=np.int64)
    for i in np.flatnonzero(hh_o != hh_n):
        what[i].append("households")
    for i in np.flatnonzero(bo != bn):
        what[i].append("buildings")
    for i in np.flatnonzero(sym > tolerance_m2):
        what[i].append("geometry")
    for col in ("kind", "difficult", "range_min", "range_max", "name", "worker"):
        if col in o.columns and col in n.columns:
            diffc = o[col].astype(str).to_numpy() != n[col].astype(str).to_numpy()
            for i in np.flatnonzero(diffc):
                what[i].append(col)
    ch = np.array([bool(w) for w in what], dtype=bool)
    changed = gpd.GeoDataFrame(
        {
            "grid_code": np.array(both, dtype=object)[ch] if len(both) else [],
            "households_old": hh_o[ch],
            "households_new": hh_n[ch],
            "households_delta": (hh_n - hh_o)[ch],
            "buildings_old": bo[ch],
            "buildings_new": bn[ch],
            "area_old_m2": shapely.area(go_geom)[ch] if len(both) else [],
            "area_new_m2": shapely.area(gn_geom)[ch] if len(both) else [],
            "area_changed_m2": sym[ch],
            "what": [";".join(w) for w, c in zip(what, ch, strict=True) if c],
        },
        geometry=list(gn_geom[ch]) if len(both) else [],
        crs=new.crs,
    )
    hh = pd.concat(
        [
            pd.DataFrame(
                {
                    "grid_code": added["grid_code"],
                    "status": "added",
                    "households_old": 0,
                    "households_new": added["households"].astype(np.int64),
                }
            ),
            pd.DataFrame(
                {
                    "grid_code": removed["grid_code"],
                    "status": "removed",
                    "households_old": removed["households"].astype(np.int64),
                    "households_new": 0,
                }
            ),
            pd.DataFrame(
                {
                    "grid_code": changed["grid_code"],
                    "status": "changed",
                    "households_old": changed["households_old"],
                    "households_new": changed["households_new"],
                }
            ),
        ],
        ignore_index=True,
    )
    hh["delta"] = hh["households_new"] - hh["households_old"]
    hh = hh[(hh["delta"] != 0) | (hh["status"] != "changed")]
    hh = hh.sort_values(["status", "grid_code"]).reset_index(drop=True)
    return PlanDiff(
        old=old,
        new=new,
        added=added,
        removed=removed,
        changed=changed,
        moved=_moved(old, new),
        households=hh,
    )


def _moved(old: Plan, new: Plan) -> pd.DataFrame:
    ao, an = _allocation(old), _allocation(new)
    cols = ["building_id", "part", "households", "from_grid", "to_grid"]
    m = ao.merge(an, on=["building_id", "key"], how="outer", suffixes=("_o", "_n"))
    exact = m[m["grid_o"].notna() & m["grid_n"].notna()]
    rows = exact[exact["grid_o"] != exact["grid_n"]]
    out = [
        pd.DataFrame(
            {
                "building_id": rows["building_id"],
                "part": rows["part_n"],
                "households": rows["households_n"].astype(np.int64),
                "from_grid": rows["grid_o"],
                "to_grid": rows["grid_n"],
            }
        )
    ]
    # Buildings whose split changed: compare the sets of grids per building.
    loose = m.loc[m["grid_o"].isna() | m["grid_n"].isna(), "building_id"].unique()
    if len(loose):
        go = (
            ao[ao["building_id"].isin(loose)]
            .groupby("building_id")["grid"]
            .agg(lambda x: ";".join(sorted(set(x))))
        )
        gn = (
            an[an["building_id"].isin(loose)]
            .groupby("building_id")["grid"]
            .agg(lambda x: ";".join(sorted(set(x))))
        )
        hn = an[an["building_id"].isin(loose)].groupby("building_id")["households"].sum()
        ids = [i for i in loose if go.get(i, "") != gn.get(i, "")]
        out.append(
            pd.DataFrame(
                {
                    "building_id": ids,
                    "part": "split changed",
                    "households": [int(hn.get(i, 0)) for i in ids],
                    "from_grid": [go.get(i, "") for i in ids],
                    "to_grid": [gn.get(i, "") for i in ids],
                }
            )
        )
    res = pd.concat(out, ignore_index=True)[cols]
    return res.sort_values(["building_id", "part"]).reset_index(drop=True)


def _allocation(plan: Plan) -> pd.DataFrame:
    """One row per whole building or split part: building_id, key, part, households, grid."""
    b = plan.buildings
    s = _splits(plan)
    split_ids = set(s["building_id"])
    whole = b[~b["building_id"].isin(split_ids) & b["grid_code"].notna()]
    w = pd.DataFrame(
        {
            "building_id": whole["building_id"].astype(str).to_numpy(),
            "key": "",
            "part": "",
            "households": pd.to_numeric(whole["households"]).fillna(0).astype(np.int64).to_numpy(),
            "grid": whole["grid_code"].astype(str).to_numpy(),
        }
    )
    if len(s):
        f0 = s["floor_from"] if "floor_from" in s.columns else pd.Series(1, index=s.index)
        f1 = s["floor_to"] if "floor_to" in s.columns else pd.Series(1, index=s.index)
        key = (
            s["unit_from"].astype(str)
            + "-"
            + s["unit_to"].astype(str)
            + "/"
            + f0.astype(str)
            + "-"
            + f1.astype(str)
        )
        label = "units " + s["unit_from"].astype(str) + "-" + s["unit_to"].astype(str)
        if "floor_from" in s.columns:
            floors = s["floor_from"].astype(str) + "-" + s["floor_to"].astype(str)
            label = label.where(
                s.groupby("building_id")["unit_from"].transform("nunique") > 1,
                "floors " + floors,
            )
        p = pd.DataFrame(
            {
                "building_id": s["building_id"].astype(str).to_numpy(),
                "key": key.to_numpy(),
                "part": label.to_numpy(),
                "households": s["households"].astype(np.int64).to_numpy(),
                "grid": s["grid_code"].astype(str).to_numpy(),
            }
        )
        w = pd.concat([w, p], ignore_index=True)
    return w


# ======================================================================== internals
def _splits(plan: Plan) -> pd.DataFrame:
    s = plan.splits
    if s is None:
        from .plan import empty_splits

        return empty_splits()
    return s


def _locked(plan: Plan) -> set[str]:
    return {str(c) for c in plan.params.get("locked_grids", [])}


def _refuse_locked(plan: Plan, codes: set[str], what: str) -> None:
    hit = sorted(_locked(plan) & set(codes))
    if hit:
        raise PlanError(
            f"grid(s) {', '.join(hit)} are locked: cannot {what} them; "
            "unlock them first with gridmap.edit.unlock_grids"
        )


def _resolve_code(plan: Plan, code: Any) -> str:
    """The full code of a grid from its code or a unique ending of it."""
    code = str(code).strip()
    codes = plan.grids["grid_code"].astype(str)
    if (codes == code).any():
        return code
    if len(code) >= 3 and code.isdigit():
        hits = codes[codes.str.endswith(code)]
        if len(hits) == 1:
            return hits.iloc[0]
        if len(hits) > 1:
            raise PlanError(
                f"grid code ending {code!r} is ambiguous: {', '.join(hits.head(5))}"
                + (" ..." if len(hits) > 5 else "")
            )
    raise PlanError(f"no grid with code {code!r} in the plan")


def _community(plan: Plan, code: str) -> tuple[str, str, str, str, shapely.Geometry]:
    """street_code, community_code, name, kind and polygon of a community."""
    code = str(code).strip()
    c = plan.communities
    if c is None or not len(c):
        raise PlanError("the plan has no community layer; cannot re-plan a community")
    st = c["street_code"].astype(str)
    cc = c["community_code"].astype(str)
    if len(code) == 3:
        m = cc == code
    elif len(code) == 6:
        m = (st + cc) == code
    elif len(code) in (12, 15):
        m = (st + cc) == code[6:12]
    else:
        m = pd.Series(False, index=c.index)
    if m.sum() > 1:
        raise PlanError(
            f"community code {code!r} is ambiguous (several streets); give street+community "
            "(6 digits)"
        )
    if m.sum() == 0:
        raise PlanError(
            f"no community {code!r}; the plan has {', '.join(sorted((st + cc).unique())[:10])}"
        )
    row = c[m.to_numpy()].iloc[0]
    kind = str(row["kind"]) if "kind" in c.columns else "community"
    name = str(row["name"]) if "name" in c.columns else str(row["community_code"])
    return str(row["street_code"]), str(row["community_code"]), name, kind, row.geometry


def _has_unassigned(plan: Plan, ids: list[str]) -> bool:
    b = plan.buildings
    return bool(b.loc[b["building_id"].isin(ids), "grid_code"].isna().any())


def _selection_polygon(polygon: Any, crs: Any, plan_crs: CRS) -> shapely.Geometry:
    poly = polygon_from_geojson(polygon)
    src = CRS.from_user_input(crs) if crs is not None else CRS.from_epsg(4326)
    if src != plan_crs:
        poly = gpd.GeoSeries([poly], crs=src).to_crs(plan_crs).iloc[0]
    return poly


def _to_wgs84_wkt(geom: shapely.Geometry, crs: CRS) -> str:
    g = gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]
    return shapely.to_wkt(g, rounding_precision=7)


def _geojson_geometries(obj: Any) -> list[dict]:
    if isinstance(obj, list):
        return [g for o in obj for g in _geojson_geometries(o)]
    if not isinstance(obj, dict):
        raise TypeError(f"expected a GeoJSON object, got {type(obj).__name__}")
    t = obj.get("type")
    if t == "FeatureCollection":
        return [g for f in obj.get("features", []) for g in _geojson_geometries(f)]
    if t == "Feature":
        return [obj["geometry"]] if obj.get("geometry") else []
    if t == "GeometryCollection":
        return [g for x in obj.get("geometries", []) for g in _geojson_geometries(x)]
    if t is None:
        raise KeyError("type")
    return [obj]


def _set_geoms(grids: gpd.GeoDataFrame, geoms: dict[str, shapely.Geometry]) -> None:
    if not geoms:
        return
    idx = grids.index[grids["grid_code"].isin(list(geoms))]
    vals = grids.loc[idx, "grid_code"].map(geoms)
    grids.loc[idx, "geometry"] = gpd.GeoSeries(vals.to_list(), index=idx, crs=grids.crs)


def _same_geom(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    return shapely.area(shapely.symmetric_difference(a, b)) <= _TOL_M2


# ------------------------------------------------------------------- tessellation
def _retessellate(
    plan: Plan, b: pd.DataFrame, s: pd.DataFrame, region: list[str], keep: list[str]
) -> dict[str, shapely.Geometry]:
    """Redraw the polygons of the grids `region` from their (new) buildings.

    The union of their current polygons, cut by community borders and barriers, is
    tessellated among the seed points of the buildings (and split parts) assigned to
    those grids, exactly as :func:`gridmap.plan_grids` draws grids, and dissolved per
    grid. Grids of `region` left without buildings disappear (unless in `keep`).
    Returns ``{code: polygon}``.
    """
    g = plan.grids
    area = polygonal(
        shapely.union_all(g.loc[g["grid_code"].isin(region)].geometry.values, grid_size=PRECISION)
    )
    xy, unit, main, unit_label = _seeds(b, s, region)
    present = sorted(set(unit_label.tolist()))
    out_codes = [region[i] for i in present]
    out_codes += [k for k in keep if k not in out_codes]
    if len(xy) == 0:
        return {out_codes[0]: area} if out_codes else {}
    pos = {c: i for i, c in enumerate(out_codes)}
    label = np.array([pos[region[i]] for i in unit_label], dtype=np.int64)
    areas = np.array([area], dtype=object)
    if plan.communities is not None and len(plan.communities):
        cg = plan.communities.geometry.values
        cg = cg[shapely.intersects(cg, area)]
        if len(cg) > 1:
            pieces = np.array(
                [polygonal(x) for x in shapely.intersection(cg, area, grid_size=PRECISION)],
                dtype=object,
            )
            areas = pieces[~shapely.is_empty(pieces)]
    lines, ranks = _barrier_lines_ranked(plan)
    geoms = redraw(areas, xy, unit, main, label, len(out_codes), barrier_lines=lines,
                   barrier_rank=ranks)  # fmt: skip
    return dict(zip(out_codes, geoms, strict=True))


def _barrier_lines_ranked(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    bar = plan.barriers
    if bar is None or not len(bar):
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    ranks = bar["rank"].to_numpy() if "rank" in bar.columns else barrier_ranks(bar)[0]
    geoms = bar.geometry.values
    poly = np.isin(shapely.get_type_id(geoms), (3, 6))
    lines = np.where(poly, shapely.boundary(geoms), geoms)
    keep = ~(shapely.is_empty(lines) | shapely.is_missing(lines))
    return np.asarray(lines[keep], dtype=object), np.asarray(ranks)[keep].astype(np.int64)


def _seeds(
    b: pd.DataFrame, s: pd.DataFrame, region: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seed points of the buildings and split parts assigned to the grids `region`.

    Every building (or split part) is a unit with a main seed; returns the seeds, the
    unit of each and whether it is the unit's main seed, and per unit the index into
    `region` of its grid.
    """
    pos = {c: i for i, c in enumerate(region)}
    geoms = b.geometry.values
    codes = b["grid_code"].to_numpy()
    split_ids = set(s["building_id"])
    whole = np.flatnonzero(
        (~b["building_id"].isin(split_ids) & b["grid_code"].isin(region)).to_numpy()
    )
    anchors = shapely.point_on_surface(geoms[whole])
    fxy, fi, fmain = footprint_seeds(anchors, geoms[whole])
    xy, unit, main = [fxy], [fi], [fmain]
    labels = [pos[c] for c in codes[whole]]
    sp = s[s["grid_code"].isin(region)]
    if len(sp):
        lookup = pd.Series(np.arange(len(b)), index=b["building_id"].to_numpy())
        for bid in sorted(set(sp["building_id"])):
            allp = s[s["building_id"] == bid].sort_values("part")
            bi = int(lookup[bid])
            anchor = shapely.point_on_surface(geoms[bi])
            pts, holder = strip_seeds(geoms[bi], anchor, allp["households"].to_numpy())
            for k, code in enumerate(allp["grid_code"].tolist()):
                if code not in pos:
                    continue
                u = len(labels)
                labels.append(pos[code])
                xy.append(pts[k : k + 1])
                unit.append(np.array([u]))
                main.append(np.ones(1, dtype=bool))
                if k == holder:
                    xy.append(shapely.get_coordinates(anchor))
                    unit.append(np.array([u]))
                    main.append(np.zeros(1, dtype=bool))
    if not labels:
        return np.empty((0, 2)), np.empty(0, np.int64), np.empty(0, bool), np.empty(0, np.int64)
    sxy, su, sm = distinct_seeds(
        np.concatenate(xy), np.concatenate(unit).astype(np.int64), np.concatenate(main)
    )
    return sxy, su, sm, np.array(labels, dtype=np.int64)


# ------------------------------------------------------------------ planner runs
def _forced_range(households: int, n: int) -> tuple[int, int]:
    """A household range for which `n` is the only feasible number of grids."""
    t = households / n
    d = 0.9 / (n + 1)
    lo = max(1, int(np.floor(t * (1 - d))))
    hi = max(lo, int(np.ceil(t * (1 + d))))
    # Tighten until n is the only k with k*lo <= households <= k*hi.
    while hi > lo and (n - 1) * hi >= households:
        hi -= 1
    while lo < hi and (n + 1) * lo <= households:
        lo += 1
    return lo, hi


def _replan_area(
    plan: Plan,
    area: shapely.Geometry,
    *,
    street: str,
    community: str,
    community_name: str,
    village: bool,
    codes: set[str],
    ranges: tuple[int, int] | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Run :func:`gridmap.plan_grids` on the buildings and parts of the grids `codes`.

    Returns the new grids (temporary codes ``~0001``...), and the plan's buildings and
    splits with those buildings and parts re-assigned to the temporary codes.
    """
    from .partition import plan_grids

    b = plan.buildings.copy()
    s = _splits(plan).copy()
    # Parts of split buildings in these grids: whole again when every part is here.
    part_in = s["grid_code"].isin(codes)
    all_here = s.assign(_in=part_in).groupby("building_id")["_in"].all()
    whole_again = set(all_here.index[all_here])
    pseudo_rows = s[part_in & ~s["building_id"].isin(whole_again)]
    split_ids = set(s["building_id"])
    mine = (b["grid_code"].isin(codes) & ~b["building_id"].isin(split_ids)) | b["building_id"].isin(
        whole_again
    )
    sel = b[mine.to_numpy()]
    pseudo = _pseudo_buildings(b, s, pseudo_rows)
    drop = [c for c in ("grid_code", "community_code") if c in b.columns]
    inp = pd.concat([sel.drop(columns=drop), pseudo.drop(columns=drop, errors="ignore")])
    inp = gpd.GeoDataFrame(inp, geometry="geometry", crs=plan.crs).reset_index(drop=True)
    p = plan.params
    rng = ranges or tuple(p.get("household_range", (300, 500)))
    drng = ranges or tuple(p.get("difficult_range", (200, 300)))
    admin = str(p.get("admin_code") or plan.grids["grid_code"].iloc[0][:6])
    comm = gpd.GeoDataFrame(
        {
            "community_code": [community],
            "street_code": [street],
            "name": [community_name],
            "kind": ["village" if village else "community"],
        },
        geometry=[area],
        crs=plan.crs,
    )
    if len(inp) == 0:
        lo, hi = rng
        new_grids = gpd.GeoDataFrame(
            [
                {
                    "grid_code": "~0001",
                    "community_code": community,
                    "street_code": street,
                    "community_name": community_name,
                    "kind": "rural" if village else "community",
                    "households": 0,
                    "buildings": 0,
                    "range_min": lo,
                    "range_max": hi,
                    "difficult": False,
                    "flags": "no_households",
                    "flag_reason": "no households in this grid",
                    "name": "",
                    "worker": "",
                    "area_m2": area.area,
                    "polsby_popper": float(polsby_popper(np.array([area]))[0]),
                    "geometry": area,
                }
            ],
            geometry="geometry",
            crs=plan.crs,
        )
        s = s[~s["building_id"].isin(whole_again) & ~part_in]
        return new_grids, b, s
    bar = plan.barriers
    barriers = None
    if bar is not None and len(bar):
        label = bar["barrier"] if "barrier" in bar.columns else "barrier"
        barriers = gpd.GeoDataFrame({"name": label}, geometry=bar.geometry.values, crs=plan.crs)
    sub = plan_grids(
        inp,
        comm,
        barriers=barriers,
        difficult="difficult" if "difficult" in inp.columns else None,
        compounds=plan.compounds,
        institutions=None,
        household_range=rng,
        difficult_range=drng,
        admin_code=admin,
        seed=int(p.get("seed", 0)),
        village_distance=float(p.get("village_distance", 150.0)),
        village_join_distance=float(p.get("village_join_distance", 2000.0)),
        institution_uses=set(p.get("institution_uses", ())) or _default_uses("INSTITUTION_USES"),
        rural_uses=set(p.get("rural_uses", ())) or _default_uses("RURAL_USES"),
        progress=False,
    )
    for note in sub.notes:
        log.debug("planner: %s", note)
    tmp = {c: f"~{i + 1:04d}" for i, c in enumerate(sub.grids["grid_code"])}
    new_grids = sub.grids.copy()
    new_grids["grid_code"] = new_grids["grid_code"].map(tmp)
    new_grids["community_name"] = community_name
    sb = sub.buildings
    sb_grid = sb["grid_code"].map(tmp)
    ids = sb["building_id"].astype(str)
    is_pseudo = ids.str.contains(_PSEUDO, regex=False).to_numpy()
    # Whole real buildings.
    assign = pd.Series(sb_grid.to_numpy()[~is_pseudo], index=ids.to_numpy()[~is_pseudo])
    m = b["building_id"].isin(assign.index).to_numpy()
    b.loc[m, "grid_code"] = b.loc[m, "building_id"].map(assign).to_numpy()
    # Split rows: remove the parts being re-planned, add what the planner made.
    s = s[~(part_in | s["building_id"].isin(whole_again))]
    ss = sub.splits.copy()
    ss["grid_code"] = ss["grid_code"].map(tmp)
    ss_pseudo = ss["building_id"].astype(str).str.contains(_PSEUDO, regex=False)
    new_rows = [ss[~ss_pseudo]]
    # Pseudo buildings (parts of split buildings) -> split rows of the real building.
    prow = pseudo_rows.copy()
    if len(prow):
        pid = prow["building_id"].astype(str) + _PSEUDO + prow["part"].astype(str)
        whole_p = pd.Series(sb_grid.to_numpy()[is_pseudo], index=ids.to_numpy()[is_pseudo])
        resplit = set(ss.loc[ss_pseudo, "building_id"])
        keep_rows = prow[~pid.isin(resplit).to_numpy()].copy()
        keep_rows["grid_code"] = pid[~pid.isin(resplit)].map(whole_p).to_numpy()
        new_rows.append(keep_rows)
        for _, sub_rows in ss[ss_pseudo].groupby("building_id"):
            real, part = str(sub_rows["building_id"].iloc[0]).split(_PSEUDO)
            orig = prow[(prow["building_id"] == real) & (prow["part"].astype(str) == part)].iloc[0]
            r = sub_rows.copy()
            r["building_id"] = real
            u0 = int(orig["unit_from"])
            f0 = (
                int(orig["floor_from"])
                if "floor_from" in orig and pd.notna(orig["floor_from"])
                else 1
            )
            r["unit_from"] = r["unit_from"] + u0 - 1
            r["unit_to"] = r["unit_to"] + u0 - 1
            if "floor_from" in r.columns:
                r["floor_from"] = r["floor_from"] + f0 - 1
                r["floor_to"] = r["floor_to"] + f0 - 1
            new_rows.append(r)
    s = pd.concat([s, *[r for r in new_rows if len(r)]], ignore_index=True)
    for col in ("part", "unit_from", "unit_to", "households"):
        s[col] = s[col].astype("int64")
    for col in ("floor_from", "floor_to"):
        if col in s.columns:
            s[col] = pd.to_numeric(s[col]).fillna(1).astype("int64")
    b, s = _normalise_splits(b, s, only=set(pseudo_rows["building_id"]) | set(ss["building_id"]))
    return new_grids, b, s


def _pseudo_buildings(b: pd.DataFrame, s: pd.DataFrame, rows: pd.DataFrame) -> gpd.GeoDataFrame:
    """One planner input building per split part: its unit strip of the footprint."""
    if not len(rows):
        return b.iloc[:0].copy()
    lookup = pd.Series(np.arange(len(b)), index=b["building_id"].to_numpy())
    out = []
    for bid, grp in rows.groupby("building_id", sort=True):
        base = b.iloc[int(lookup[bid])]
        allp = s[s["building_id"] == bid].sort_values("part")
        hh = allp["households"].to_numpy(dtype=float)
        frac = hh / hh.sum() if hh.sum() > 0 else np.full(len(hh), 1.0 / len(hh))
        strips = dict(zip(allp["part"], unit_strips(base.geometry, frac), strict=True))
        for _, r in grp.iterrows():
            row = base.copy()
            row["building_id"] = f"{bid}{_PSEUDO}{int(r['part'])}"
            row["households"] = int(r["households"])
            row["units"] = int(r["unit_to"]) - int(r["unit_from"]) + 1
            if "floor_from" in r and pd.notna(r.get("floor_from")):
                row["levels"] = float(int(r["floor_to"]) - int(r["floor_from"]) + 1)
            strip = strips.get(r["part"])
            row["geometry"] = base.geometry if strip is None or strip.is_empty else strip
            out.append(row)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=b.crs)


def _default_uses(name: str) -> set[str]:
    from . import partition

    return set(getattr(partition, name))


def _members(b: pd.DataFrame, s: pd.DataFrame, codes: list[str]) -> dict[str, frozenset]:
    """What each grid holds: whole building ids and (building, units, floors) of parts."""
    split_ids = set(s["building_id"])
    out: dict[str, set] = {c: set() for c in codes}
    w = b[b["grid_code"].isin(codes) & ~b["building_id"].isin(split_ids)]
    for c, bid in zip(w["grid_code"], w["building_id"], strict=True):
        out[c].add(str(bid))
    p = s[s["grid_code"].isin(codes)]
    for _, r in p.iterrows():
        out[r["grid_code"]].add(
            (
                str(r["building_id"]),
                int(r["unit_from"]),
                int(r["unit_to"]),
                int(r.get("floor_from", 1) or 1),
            )
        )
    return {c: frozenset(v) for c, v in out.items()}


def _next_codes(
    plan: Plan, street: str, community: str, n: int, retiring: Iterable[str] = ()
) -> list[str]:
    """The next `n` free codes of a community (never reusing retired ones)."""
    if n == 0:
        return []
    admin = str(plan.params.get("admin_code") or plan.grids["grid_code"].iloc[0][:6])
    prefix = f"{admin}{street}{community}"
    used = {c for c in plan.grids["grid_code"].astype(str) if c.startswith(prefix)}
    used |= {c for c in retiring if str(c).startswith(prefix)}
    for h in reversed(plan.history):
        if h.get("op") == "renumber":
            break
        used |= {c for c in h.get("removed", []) if str(c).startswith(prefix)}
    seqs = {int(c[12:]) for c in used if c[12:].isdigit()}
    start = max(seqs, default=0) + 1
    out = list(range(start, start + n))
    if out[-1] > 999:
        free = [q for q in range(1, 1000) if q not in seqs]
        if len(free) < n:
            raise PlanError(f"community {street}{community} has no free grid sequence numbers left")
        out = free[:n]
    return [f"{prefix}{q:03d}" for q in out]


def _apply_codes(
    grids: gpd.GeoDataFrame, b: pd.DataFrame, s: pd.DataFrame, mapping: dict[str, str]
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    if not mapping:
        return grids, b, s

    def f(x):
        return mapping.get(x, x) if isinstance(x, str) else x

    grids = grids.copy()
    grids["grid_code"] = grids["grid_code"].map(f)
    b = b.copy()
    b["grid_code"] = b["grid_code"].map(f)
    s = s.copy()
    if len(s):
        s["grid_code"] = s["grid_code"].map(f)
    return grids, b, s


def _reset_ranges(rows: pd.DataFrame, plan: Plan, target: pd.DataFrame | None = None) -> None:
    """Give grids the plan's household range for their kind and difficulty."""
    target = rows if target is None else target
    lo, hi = plan.params.get("household_range", (300, 500))
    dlo, dhi = plan.params.get("difficult_range", (200, 300))
    for i in rows.index:
        kind = target.at[i, "kind"]
        if kind == "special":
            r = (0, 0)
        elif bool(target.at[i, "difficult"]):
            r = (dlo, dhi)
        else:
            r = (lo, hi)
        target.at[i, "range_min"], target.at[i, "range_max"] = int(r[0]), int(r[1])


def _normalise_splits(
    b: pd.DataFrame, s: pd.DataFrame, only: Iterable[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collapse splits whose parts all lie in one grid, number parts in unit order, and
    give each split building the grid of its largest part (ties: the first part).

    Only the buildings `only` (all when None) are looked at, so that an edit leaves
    the split rows of other buildings exactly as they were.
    """
    if not len(s):
        return b, s
    if only is not None:
        only = set(only)
        mine = s["building_id"].isin(only)
        if not mine.any():
            return b, s
        b2, s2 = _normalise_splits(b, s[mine])
        return b2, pd.concat([s[~mine], s2], ignore_index=True)
    b = b.copy()
    s = s.copy()
    n_grids = s.groupby("building_id")["grid_code"].nunique()
    single = n_grids.index[n_grids <= 1]
    if len(single):
        code = s[s["building_id"].isin(single)].groupby("building_id")["grid_code"].first()
        m = b["building_id"].isin(single).to_numpy()
        b.loc[m, "grid_code"] = b.loc[m, "building_id"].map(code).to_numpy()
        s = s[~s["building_id"].isin(single)]
    if not len(s):
        return b, s.reset_index(drop=True)
    order = ["building_id", "unit_from"] + (["floor_from"] if "floor_from" in s.columns else [])
    s = s.sort_values([*order, "part"], kind="stable").reset_index(drop=True)
    s["part"] = (s.groupby("building_id").cumcount() + 1).astype("int64")
    best = s.sort_values(
        ["building_id", "households", "part"], ascending=[True, False, True], kind="stable"
    ).drop_duplicates("building_id")
    code = best.set_index("building_id")["grid_code"]
    m = b["building_id"].isin(code.index).to_numpy()
    b.loc[m, "grid_code"] = b.loc[m, "building_id"].map(code).to_numpy()
    return b, s


# ---------------------------------------------------------------------- commit
def _commit(
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
) -> EditResult:
    """Recompute the touched grids, record the history entry, validate, log problems."""
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs).reset_index(drop=True)
    # Grids whose households or buildings change as a side effect (e.g. a split building
    # whose largest part moved) are touched too.
    before, after = _tally(plan.buildings, _splits(plan)), _tally(b, s)
    both = before.index.union(after.index)
    delta = before.reindex(both, fill_value=0).ne(after.reindex(both, fill_value=0)).any(axis=1)
    side = [c for c in both[delta.to_numpy()] if c not in touched]
    touched = [c for c in [*touched, *side] if c in set(grids["grid_code"])]
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
    grids = grids.sort_values("grid_code", kind="stable").reset_index(drop=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)

    new_params = dict(plan.params)
    if locked is None:
        locked = sorted(_locked(plan) - set(removed))
    if locked or "locked_grids" in new_params:
        new_params["locked_grids"] = list(locked)
    if changed is None:
        changed = [c for c in touched if c not in added]
    entry = {
        "op": op,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": str(reason or ""),
        "params": _jsonable(params),
        "changed": sorted(changed),
        "added": sorted(added),
        "removed": sorted(removed),
    }
    new = dataclasses.replace(
        plan,
        grids=grids,
        buildings=b,
        splits=s.reset_index(drop=True),
        crossings=crossings,
        params=new_params,
        history=[*plan.history, entry],
        notes=list(plan.notes),
    )
    new._undo = [*getattr(plan, "_undo", []), plan][-MAX_UNDO:]
    new._redo = []
    report = new.validate()
    edited = sorted(set(touched) | set(added))
    report.attrs["edited_grids"] = edited
    result = EditResult(new, report)
    probs = result.problems
    probs = probs[probs["severity"].isin(["error", "warning"])]
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


def _commit_params(
    plan: Plan, op: str, params: dict[str, Any], reason: str, locked: list[str]
) -> EditResult:
    return _commit(
        plan,
        op,
        params,
        reason,
        plan.grids.copy(),
        plan.buildings.copy(),
        _splits(plan).copy(),
        touched=[],
        added=[],
        removed=[],
        manual=False,
        geometry_changed=False,
        locked=locked,
    )


def _tally(b: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    """Households and buildings per grid code, from the buildings and split parts."""
    split_ids = set(s["building_id"])
    hh = pd.to_numeric(b["households"], errors="coerce").fillna(0)
    whole = ~b["building_id"].isin(split_ids)
    per = hh[whole].groupby(b.loc[whole, "grid_code"]).sum()
    if len(s):
        per = per.add(s.groupby("grid_code")["households"].sum(), fill_value=0)
    return pd.DataFrame({"households": per, "buildings": b["grid_code"].value_counts()}).fillna(0)


def _recount(grids: gpd.GeoDataFrame, b: pd.DataFrame, s: pd.DataFrame, tm: np.ndarray) -> None:
    """Households, buildings, area and compactness of the grids selected by `tm`."""
    t = _tally(b, s)
    codes = grids.loc[tm, "grid_code"]
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
    out = crossings(rows.reset_index(drop=True), plan.barriers)
    if manual and len(out):
        out["reason"] = "drawn across the barrier by a manual edit"
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
        keep = [f for f in old if f not in _DERIVED_FLAGS]
        if manual:
            keep = [f for f in keep if f not in _EXPLAIN_FLAGS]
        reasons: list[str] = []
        if keep and not manual and row["flag_reason"]:
            reasons.append(str(row["flag_reason"]))
        flags = list(keep)
        hh = int(row["households"])
        special = row["kind"] == "special"
        lo, hi = int(row["range_min"]), int(row["range_max"])
        if not special and (hh < lo or hh > hi):
            flags.append("out_of_range")
            if manual or not set(keep) & set(_EXPLAIN_FLAGS):
                side = "below" if hh < lo else "above"
                reasons.append(f"{hh} households, {side} the range {lo}–{hi}")
        if not special and hh == 0:
            flags.append("no_households")
            reasons.append("no households in this grid")
        if row["grid_code"] in crossing_codes:
            flags.append("crosses_barrier")
        geom = row.geometry
        parts = shapely.get_parts(geom) if geom is not None else np.array([])
        big = parts[shapely.area(parts) > _TOL_M2] if len(parts) else parts
        if len(big) > 1:
            flags.append("discontiguous")
            reasons.append(f"the grid is in {len(big)} separate parts")
        cg = comm_geom.get((str(row["street_code"]), str(row["community_code"])))
        if cg is not None and geom is not None:
            outside = shapely.area(shapely.difference(geom, cg))
            if outside > _TOL_M2:
                flags.append("crosses_community")
                reasons.append(f"{outside:,.0f} m² lie outside its community")
        uniq_reasons = list(dict.fromkeys(r for part in reasons for r in part.split("; ") if r))
        grids.iat[i, grids.columns.get_loc("flags")] = ";".join(dict.fromkeys(flags))
        grids.iat[i, grids.columns.get_loc("flag_reason")] = "; ".join(uniq_reasons)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
