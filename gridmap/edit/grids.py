"""Editing whole grids: merge, split, lock and unlock, re-plan a community around its
locked grids, change attributes, renumber; and finding a grid's neighbours.

Codes stay stable: a new grid holding most of the buildings of an old code keeps (or
gets back) that code, so an edit followed by its reverse ends with the codes it started
with; other new grids take the next free sequence numbers of their community.
:func:`renumber` renumbers everything, and only on request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from ..errors import PlanError
from ..partition.codes import reading_order
from ..partition.geometry import polygonal
from ..plan import Plan
from .checks import EditResult
from .commit import commit, commit_params
from .common import (
    KINDS,
    apply_codes,
    community_of,
    editable_buildings,
    locked_codes,
    match_codes,
    member_ids,
    next_codes,
    normalise_splits,
    refuse_locked,
    reset_ranges,
    resolve_code,
    retired_members,
    same_geom,
    set_geoms,
    splits_of,
)
from .redraw import forced_range, replan_area

log = logging.getLogger("gridmap")

__all__ = [
    "lock_grids",
    "merge_grids",
    "neighbours",
    "renumber",
    "replan",
    "set_grid",
    "split_grid",
    "unlock_grids",
]


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
    ca, cb = resolve_code(plan, a), resolve_code(plan, b)
    if ca == cb:
        raise PlanError(f"cannot merge grid {ca} with itself")
    refuse_locked(plan, {ca, cb}, "merge")
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
    retired = member_ids(plan.buildings, splits_of(plan), [cb])
    bl = editable_buildings(plan)
    s = splits_of(plan).copy()
    bl.loc[bl["grid_code"] == cb, "grid_code"] = ca
    s.loc[s["grid_code"] == cb, "grid_code"] = ca
    bl, s = normalise_splits(bl, s, only=s.loc[s["grid_code"] == ca, "building_id"])
    grids = grids.drop(index=rb)
    set_geoms(grids, {ca: merged})
    return commit(
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
        retired=retired,
    )


def split_grid(plan: Plan, code: str, n: int | None = None, *, reason: str = "") -> EditResult:
    """Split a grid by re-partitioning its buildings under the planner's rules.

    :func:`gridmap.plan_grids` is run on the grid's buildings (and split parts) with the
    grid polygon as the only community and the plan's parameters and barriers, so the
    parts tile the old polygon exactly. Codes stay stable: a part holding most of the
    buildings a code retired by an earlier edit held (e.g. the grid merged into this
    one) gets that code back, one part keeps the grid's own code (the one holding most
    of it), and the other parts take the next free sequence numbers of the community.

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
    code = resolve_code(plan, code)
    refuse_locked(plan, {code}, "split")
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
        ranges = forced_range(hh, n)
    area = row.geometry
    new_grids, b, s = replan_area(
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
    mapping, kept, _fresh, retired = _stable_codes(
        plan, new_grids, b, s, [code], row["street_code"], row["community_code"], keep_own=True
    )
    new_grids, b, s = apply_codes(new_grids, b, s, mapping)
    if n is not None:
        reset_ranges(new_grids, plan)
    grids = pd.concat([plan.grids[plan.grids["grid_code"] != code], new_grids], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)
    into = sorted(mapping.values())
    return commit(
        plan,
        "split_grid",
        {"code": code, "n": n, "into": into},
        reason,
        grids,
        b,
        s,
        touched=into,
        added=[c for c in into if c != code],
        removed=[c for c in [code] if c not in kept],
        manual=n is not None,
        retired=retired,
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
    codes = [resolve_code(plan, c) for c in ([codes] if isinstance(codes, str) else codes)]
    locked = locked_codes(plan) | set(codes)
    return commit_params(plan, "lock_grids", {"codes": codes}, reason, sorted(locked))


def unlock_grids(
    plan: Plan, codes: Iterable[str] | str | None = None, *, reason: str = ""
) -> EditResult:
    """Unlock grids (all locked grids when `codes` is None).

    Returns
    -------
    EditResult
    """
    if codes is None:
        codes = sorted(locked_codes(plan))
    else:
        codes = [resolve_code(plan, c) for c in ([codes] if isinstance(codes, str) else codes)]
    locked = locked_codes(plan) - set(codes)
    return commit_params(plan, "unlock_grids", {"codes": list(codes)}, reason, sorted(locked))


def replan(plan: Plan, community_code: str, *, reason: str = "") -> EditResult:
    """Re-plan a community around its locked grids.

    Every grid of the community that is neither locked (:func:`lock_grids`) nor special
    is redrawn: :func:`gridmap.plan_grids` is run on their buildings (and split parts),
    with the community polygon minus the kept grids as the community and the plan's
    parameters and barriers. A new grid holding most of the buildings of an old one
    keeps (or, for a code retired by an earlier edit, gets back) its code; the others
    take the next free sequence numbers.

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
    street, comm, name, kind, comm_geom = community_of(plan, community_code)
    g = plan.grids
    in_comm = ((g["street_code"] == street) & (g["community_code"] == comm)).to_numpy()
    locked = locked_codes(plan)
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
    new_grids, b, s = replan_area(
        plan,
        area,
        street=street,
        community=comm,
        community_name=name,
        village=kind == "village",
        codes=set(old_codes),
    )
    # Codes: a new grid holding most of the buildings of an old one keeps its code.
    mapping, kept, _fresh, retired_ids = _stable_codes(
        plan, new_grids, b, s, old_codes, street, comm
    )
    retired = [c for c in old_codes if c not in kept]
    new_grids, b, s = apply_codes(new_grids, b, s, mapping)
    grids = pd.concat([g[~redo_mask], new_grids], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=plan.crs)
    kept_codes = sorted(kept)
    changed = [
        c
        for c in kept_codes
        if not same_geom(
            g.loc[g["grid_code"] == c].geometry.iloc[0],
            new_grids.loc[new_grids["grid_code"] == c].geometry.iloc[0],
        )
    ]
    return commit(
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
        added=sorted(c for c in mapping.values() if c not in kept),
        removed=sorted(retired),
        manual=False,
        changed=changed,
        retired=retired_ids,
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
    code = resolve_code(plan, code)
    if kind is not None and kind not in KINDS:
        raise PlanError(f"kind must be one of {KINDS}, got {kind!r}")
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
        reset_ranges(grids.loc[[i]], plan, target=grids)
    if len(params) == 1:
        raise PlanError("set_grid: give at least one of difficult=, kind=, name=, worker=")
    return commit(
        plan,
        "set_grid",
        params,
        reason,
        grids,
        plan.buildings,
        splits_of(plan).copy(),
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
    grids, b, s = apply_codes(plan.grids.copy(), plan.buildings, splits_of(plan).copy(), mapping)
    params = {"mapping": mapping}
    locked = sorted(mapping.get(c, c) for c in locked_codes(plan))
    crossings = plan.crossings.copy()
    if len(crossings):
        crossings["grid_code"] = crossings["grid_code"].map(lambda c: mapping.get(c, c))
    return commit(
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
    code = resolve_code(plan, code)
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


def _stable_codes(
    plan: Plan,
    new_grids: gpd.GeoDataFrame,
    b: pd.DataFrame,
    s: pd.DataFrame,
    old_codes: list[str],
    street: str,
    community: str,
    *,
    keep_own: bool = False,
) -> tuple[dict[str, str], set[str], list[str], dict[str, list[str]]]:
    """Codes for the grids a planner run made (temporary codes ``~0001``...).

    Returns the mapping temporary -> final code, the old codes kept, the fresh codes
    and the retired codes with the buildings they held.
    """
    own = member_ids(plan.buildings, splits_of(plan), old_codes)
    new_members = member_ids(b, s, new_grids["grid_code"].tolist())
    retired_before = retired_members(plan, street, community)
    mapping = match_codes(new_members, own, retired_before, keep_own=keep_own)
    fresh_tmp = [c for c in new_grids["grid_code"] if c not in mapping]
    kept = {c for c in mapping.values() if c in own}
    gone = [c for c in old_codes if c not in kept]
    fresh = next_codes(plan, street, community, len(fresh_tmp), gone)
    mapping.update(zip(fresh_tmp, fresh, strict=True))
    retired = {c: sorted(own[c]) for c in gone}
    return mapping, kept, fresh, retired
