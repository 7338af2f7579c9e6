"""Helpers shared by the steps of :mod:`gridmap.edit`: finding grids and communities,
locks, split-building bookkeeping, tallies and code allocation.

Everything here is public inside the package (the edit steps import it) but not part of
``gridmap.edit``'s public API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import PlanError
from ..plan import Plan, empty_splits

#: Number of earlier versions :func:`gridmap.edit.undo` can go back to.
MAX_UNDO = 50
#: Flags recomputed from the geometry and figures of a grid after every edit.
DERIVED_FLAGS = (
    "out_of_range",
    "no_households",
    "crosses_barrier",
    "discontiguous",
    "crosses_community",
)
#: Flags by which the planner explains an out-of-range grid; dropped on manual edits.
EXPLAIN_FLAGS = ("infeasible_split", "isolated_village", "below_floor", "unbalanced")
#: Joins a building id and a part number into a planner atom id.
PSEUDO = "\x1fpart="
#: m²: area differences below this are noise.
TOL_M2 = 1.0
#: Grid kinds.
KINDS = ("community", "rural", "special")
#: Reason given to barrier crossings drawn by a manual edit.
MANUAL_CROSSING = "drawn across the barrier by a manual edit"


def splits_of(plan: Plan) -> pd.DataFrame:
    """The plan's unit-split table (an empty one when it has none)."""
    s = plan.splits
    return empty_splits() if s is None else s


def locked_codes(plan: Plan) -> set[str]:
    """Codes of the locked grids."""
    return {str(c) for c in plan.params.get("locked_grids", [])}


def refuse_locked(plan: Plan, codes: set[str], what: str) -> None:
    """Raise :class:`PlanError` when one of `codes` is locked."""
    hit = sorted(locked_codes(plan) & set(codes))
    if hit:
        raise PlanError(
            f"grid(s) {', '.join(hit)} are locked: cannot {what} them; "
            "unlock them first with gridmap.edit.unlock_grids"
        )


def resolve_code(plan: Plan, code: Any) -> str:
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


def resolve_codes(plan: Plan, codes: Iterable[str] | str) -> list[str]:
    """:func:`resolve_code` of one code or of each of several."""
    if isinstance(codes, str):
        codes = [codes]
    out = [resolve_code(plan, c) for c in codes]
    if not out:
        raise PlanError("no grid codes given")
    return out


def community_of(plan: Plan, code: str) -> tuple[str, str, str, str, shapely.Geometry]:
    """street_code, community_code, name, kind and polygon of a community.

    `code` is 3 digits (community code, when unique across streets), 6 digits
    (street + community), or the 12-digit prefix (or a 15-digit code) of its grids.
    """
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


def editable_buildings(plan: Plan) -> gpd.GeoDataFrame:
    """A shallow copy of the buildings whose ``grid_code`` column may be changed.

    pandas copies on write, so an edit of a 100,000-building plan copies only the
    column block it changes, never the footprints; the input plan stays unchanged.
    """
    return plan.buildings.copy(deep=False)


def changed_positions(old: pd.DataFrame, new: pd.DataFrame, codes: Iterable[str]) -> np.ndarray:
    """Positions of the buildings whose ``grid_code`` differs between two versions of
    the buildings table, looking only at rows whose old or new code is in `codes`.

    Every building an edit moves leaves or enters one of the grids the edit names, so
    `codes` (the grids touched, added and removed) finds them all without comparing
    the whole table.
    """
    codes = list(codes)
    oc = old["grid_code"].to_numpy()
    nc = new["grid_code"].to_numpy()
    if len(oc) != len(nc):  # pragma: no cover - edits never add or remove buildings
        raise PlanError("an edit changed the number of buildings")
    cand = np.flatnonzero(
        old["grid_code"].isin(codes).to_numpy() | new["grid_code"].isin(codes).to_numpy()
    )
    o, n = oc[cand], nc[cand]
    same = (o == n) | (pd.isna(o) & pd.isna(n))
    return cand[~np.asarray(same, dtype=bool)]


def set_geoms(grids: gpd.GeoDataFrame, geoms: dict[str, shapely.Geometry]) -> None:
    """Replace the polygons of the grids whose codes are keys of `geoms` (in place)."""
    if not geoms:
        return
    idx = grids.index[grids["grid_code"].isin(list(geoms))]
    vals = grids.loc[idx, "grid_code"].map(geoms)
    grids.loc[idx, "geometry"] = gpd.GeoSeries(vals.to_list(), index=idx, crs=grids.crs)


def same_geom(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    """Whether two polygons differ by at most :data:`TOL_M2`."""
    return shapely.area(shapely.symmetric_difference(a, b)) <= TOL_M2


def tally(b: pd.DataFrame, s: pd.DataFrame, codes: Iterable[str] | None = None) -> pd.DataFrame:
    """Households and buildings per grid code, from the buildings and split parts.

    With `codes`, only those grids are counted (fast on a large plan: the whole table
    is only scanned for the codes).
    """
    split_ids = set(s["building_id"]) if len(s) else set()
    gc = b["grid_code"].to_numpy()
    if codes is not None:
        codes = list(codes)
        rows = np.flatnonzero(b["grid_code"].isin(codes).to_numpy())
        s = s[s["grid_code"].isin(codes)] if len(s) else s
    else:
        rows = np.flatnonzero(pd.notna(gc))
    gc = gc[rows]
    hh = pd.to_numeric(pd.Series(b["households"].to_numpy()[rows]), errors="coerce").fillna(0)
    ids = b["building_id"].to_numpy()[rows]
    whole = np.array([i not in split_ids for i in ids], dtype=bool)
    per = hh[whole].groupby(gc[whole]).sum()
    if len(s):
        per = per.add(s.groupby("grid_code")["households"].sum(), fill_value=0)
    count = pd.Series(gc).value_counts()
    return pd.DataFrame({"households": per, "buildings": count}).fillna(0)


def same_splits(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two unit-split tables hold the same rows (in the same order)."""
    if a is b:
        return True
    if len(a) != len(b):
        return False
    if not len(a):
        return True
    cols = list(a.columns)
    if list(b.columns) != cols:
        return False
    return all(
        np.array_equal(a[c].to_numpy(dtype=object), b[c].to_numpy(dtype=object)) for c in cols
    )


def member_ids(b: pd.DataFrame, s: pd.DataFrame, codes: Iterable[str]) -> dict[str, set[str]]:
    """Building ids held by each grid of `codes` (a split building counts in every grid
    holding one of its parts)."""
    codes = list(codes)
    out: dict[str, set[str]] = {c: set() for c in codes}
    m = b["grid_code"].isin(codes).to_numpy()
    for c, bid in zip(b["grid_code"].to_numpy()[m], b["building_id"].to_numpy()[m], strict=True):
        out[c].add(str(bid))
    if len(s):
        p = s[s["grid_code"].isin(codes)]
        for c, bid in zip(p["grid_code"], p["building_id"], strict=True):
            out[c].add(str(bid))
    return out


def retired_members(plan: Plan, street: str, community: str) -> dict[str, set[str]]:
    """Codes of the community retired by edits since the last renumber, with the
    buildings they held when retired (``history[i]["retired"]``), newest first, and
    only those not in use now."""
    admin = admin_code(plan)
    prefix = f"{admin}{street}{community}"
    in_use = set(plan.grids["grid_code"].astype(str))
    out: dict[str, set[str]] = {}
    for h in reversed(plan.history):
        if h.get("op") == "renumber":
            break
        for code, ids in (h.get("retired") or {}).items():
            if str(code).startswith(prefix) and code not in in_use and code not in out:
                out[str(code)] = {str(i) for i in ids}
    return out


def admin_code(plan: Plan) -> str:
    """The plan's 6-digit administrative division code."""
    return str(plan.params.get("admin_code") or plan.grids["grid_code"].iloc[0][:6])


def match_codes(
    new_members: dict[str, set[str]],
    own: dict[str, set[str]],
    retired: dict[str, set[str]],
    *,
    keep_own: bool = False,
) -> dict[str, str]:
    """Which new grid keeps (or gets back) which old code.

    First, a new grid holding more than half of the buildings an old code held takes
    that code (best share first); codes retired by earlier edits (`retired`) come back
    only this way, so an edit followed by its reverse ends with the same codes. Then,
    with `keep_own`, a code being replaced (`own`) that no grid holds most of goes to the
    new grid, still without a code, holding the largest share of it: splitting a grid
    keeps its code on one of its parts.

    Returns ``{temporary code: old code}``.
    """
    pairs = []
    for code, mem in {**retired, **own}.items():
        for t, nm in new_members.items():
            k = len(mem & nm)
            if mem and k * 2 > len(mem):
                pairs.append((k / len(mem), k, code in own, code, t))
    pairs.sort(key=lambda p: p[:3], reverse=True)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for *_, code, t in pairs:
        if t not in mapping and code not in used:
            mapping[t] = code
            used.add(code)
    for code in sorted(own, key=lambda c: len(own[c]), reverse=True) if keep_own else []:
        if code in used:
            continue
        free = [(len(own[code] & nm), t) for t, nm in new_members.items() if t not in mapping]
        k, t = max(free, default=(0, None))
        if k > 0:
            mapping[t] = code
            used.add(code)
    return mapping


def next_codes(
    plan: Plan, street: str, community: str, n: int, retiring: Iterable[str] = ()
) -> list[str]:
    """The next `n` free codes of a community (never reusing retired ones)."""
    if n == 0:
        return []
    prefix = f"{admin_code(plan)}{street}{community}"
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


def apply_codes(
    grids: gpd.GeoDataFrame, b: pd.DataFrame, s: pd.DataFrame, mapping: dict[str, str]
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Rename grid codes in the grids, buildings and splits (new frames)."""
    if not mapping:
        return grids, b, s

    def f(x):
        return mapping.get(x, x) if isinstance(x, str) else x

    grids = grids.copy()
    grids["grid_code"] = grids["grid_code"].map(f)
    b = b.copy(deep=False)
    b["grid_code"] = b["grid_code"].map(f)
    s = s.copy()
    if len(s):
        s["grid_code"] = s["grid_code"].map(f)
    return grids, b, s


def reset_ranges(rows: pd.DataFrame, plan: Plan, target: pd.DataFrame | None = None) -> None:
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


def normalise_splits(
    b: pd.DataFrame, s: pd.DataFrame, only: Iterable[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collapse splits whose parts all lie in one grid, number parts in unit order, and
    give each split building the grid of its largest part (ties: the first part).

    Only the buildings `only` (all when None) are looked at, so that an edit leaves
    the split rows of other buildings exactly as they were. `b`'s ``grid_code`` column
    is changed in place (callers pass a frame of their own).
    """
    if not len(s):
        return b, s
    if only is not None:
        only = set(only)
        mine = s["building_id"].isin(only)
        if not mine.any():
            return b, s
        b2, s2 = normalise_splits(b, s[mine])
        return b2, pd.concat([s[~mine], s2], ignore_index=True)
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


def jsonable(obj: Any) -> Any:
    """`obj` with numpy scalars, tuples and sets turned into JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
