"""Atoms: the buildings, unit groups, compounds and villages that grids are made of.

1. **Where a building belongs.** A footprint that straddles a community edge belongs to
   the community holding most of its area; its anchor point is a point on the part of
   the footprint inside that community, and its unit-split parts are cut from that part
   only, so they stay inside the community. A footprint outside every community is not
   planned (the plan lists it).
2. **Units.** A building is one unit, except a building with more households than the
   grid ceiling, which is split by units (单元) — by floors when it has too few units —
   into the smallest number of parts that can each be in range.
3. **Seeds.** Every unit gets seed points for the tessellation: its anchor point, the
   outline of a large footprint (so cells follow the footprint), and one point per unit
   strip of a split building. Seeds are made distinct to the centimetre.
4. **Groups.** Units that should stay in one grid are grouped: a compound (小区) whose
   households fit in one grid, a natural village (rural houses clustered by distance)
   that fits in one grid, and loose institution buildings clustered into a special grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, QhullError, cKDTree

from .geometry import PRECISION, grid_keys, in_threads, polygonal, unit_strips_many

__all__ = [
    "BIG_FOOTPRINT_M2",
    "SPLIT_COLUMNS",
    "Units",
    "cluster_points",
    "distinct_seeds",
    "footprint_seeds",
    "locate_buildings",
    "make_units",
    "split_building",
    "strip_seeds",
    "unit_groups",
    "unit_seeds",
]

#: Footprints larger than this (m²) also seed cells from their outline.
BIG_FOOTPRINT_M2 = 600.0
_SHRINK = 1.0  # metres: outline seeds are moved this far inside the footprint
_MAX_OUTLINE_SEEDS = 64  # per footprint

#: Columns of the table of unit-split parts.
SPLIT_COLUMNS = ["building_id", "part", "unit_from", "unit_to", "floor_from", "floor_to",
                 "households"]  # fmt: skip


def locate_buildings(
    footprints: np.ndarray, areas: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The area (community) of every footprint, by largest share of its area.

    Parameters
    ----------
    footprints : ndarray of Polygon
        Building footprints (metric CRS).
    areas : ndarray of Polygon or MultiPolygon
        Non-overlapping areas.

    Returns
    -------
    area : ndarray of int
        Index of the area holding most of each footprint; -1 when it touches none.
    anchor : ndarray of Point
        A point inside the footprint's part in its area (its representative point).
    part : ndarray of geometry
        The footprint clipped to its area (the footprint itself when it lies inside).
    """
    n = len(footprints)
    area = np.full(n, -1, dtype=np.int64)
    part = footprints.copy()
    tree = shapely.STRtree(areas)
    bi, ai = tree.query(footprints, predicate="intersects")
    if len(bi):
        shapely.prepare(areas)
        inside = shapely.contains_properly(areas[ai], footprints[bi])
        shapely.destroy_prepared(areas)
        whole = np.unique(bi[inside])
        first = np.zeros(n, dtype=bool)
        first[whole] = True
        area[bi[inside]] = ai[inside]
        rest = ~first[bi]
        bi, ai = bi[rest], ai[rest]
        if len(bi):
            inter = shapely.intersection(footprints[bi], areas[ai])
            share = shapely.area(inter)
            o = np.lexsort((ai, -share, bi))
            top = np.r_[True, bi[o][1:] != bi[o][:-1]]
            best = o[top]
            best = best[share[best] > 0]
            area[bi[best]] = ai[best]
            part[bi[best]] = [polygonal(g) for g in inter[best]]
    anchor = shapely.point_on_surface(part)
    return area, anchor, part


_PARTS_KEY = 1024  # optional groups: building * _PARTS_KEY + part of the building


def split_building(
    building_id, households: int, units: int, levels: int, lo: int, hi: int,
    parts: int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Split a building into parts by units (单元) or floors.

    The number of parts is `parts`, or else the smallest ``m`` with
    ``m*lo <= households <= m*hi`` (``ceil(households / hi)`` when none exists). Units
    are kept together; a building with fewer units than parts is split by floors.

    Returns
    -------
    pandas.DataFrame
        One row per part, columns :data:`SPLIT_COLUMNS`.
    """
    rows = _split_rows(building_id, households, units, levels, lo, hi, parts)
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


def _split_rows(
    building_id, households: int, units: int, levels: int, lo: int, hi: int,
    parts: int | None,
) -> list[tuple]:  # fmt: skip
    """The rows of :func:`split_building` (tuples in :data:`SPLIT_COLUMNS` order)."""
    m = parts
    if m is None:
        for cand in range(int(np.ceil(households / hi)), int(households // lo) + 1):
            if cand * lo <= households <= cand * hi:
                m = cand
                break
    if m is None:
        m = int(np.ceil(households / hi))
    units = max(int(units), 1)
    levels = max(int(levels), 1)
    by_units = units >= m
    n = units if by_units else levels
    per = np.full(n, households // n, dtype=np.int64)
    per[: households % n] += 1
    cum = np.cumsum(per)
    cuts = [int(np.argmin(np.abs(cum - households * j / m))) + 1 for j in range(1, m)]
    edges = np.unique(np.clip(np.array([0, *cuts, n]), 0, n))
    rows = []
    for p in range(len(edges) - 1):
        a, b = int(edges[p]), int(edges[p + 1])
        if by_units:
            rows.append((building_id, p + 1, a + 1, b, 1, levels, int(per[a:b].sum())))
        else:
            rows.append((building_id, p + 1, 1, units, a + 1, b, int(per[a:b].sum())))
    return rows


@dataclass
class Units:
    """What the partition moves around.

    Attributes
    ----------
    building : ndarray of int
        Building row of each unit (-1 for a unit without a building).
    part : ndarray of int
        Part number of a unit-split part, -1 for a whole building.
    households : ndarray of int
    area : ndarray of int
        Area (community) of each unit.
    splits : pandas.DataFrame
        One row per part of a split building (:data:`SPLIT_COLUMNS`) plus ``unit``.
    optional : ndarray of bool
        Parts of a building that fits in one grid but was cut into two by units in
        case the balance needs it; its parts stay together unless it does. The parts
        of a building above its ceiling are cut the same way, each into two groups
        of units.
    optional_group : ndarray of int
        The parts that stay together unless the balance needs them apart (a building,
        or one part of a building above its ceiling); -1 for the other units.
    """

    building: np.ndarray
    part: np.ndarray
    households: np.ndarray
    area: np.ndarray
    splits: pd.DataFrame
    optional: np.ndarray
    optional_group: np.ndarray

    def __len__(self) -> int:
        return len(self.building)


def make_units(
    building_id: np.ndarray,
    households: np.ndarray,
    units: np.ndarray,
    levels: np.ndarray,
    area: np.ndarray,
    ceiling_range: np.ndarray,
    planned: np.ndarray,
) -> Units:
    """One unit per planned building, parts for buildings above their ceiling.

    A very large building, above half the floor of its range (150 households for
    300–500) and with at least two units or floors, is also cut into two groups of
    units, marked ``optional``: its parts are kept in one grid unless a balanced plan
    needs them apart (DOMAIN: only a very large building is split, by units). So is
    every part of a building above its ceiling that holds more than half a floor and
    two units or more: a 512-household tower of 4 units is cut into two parts of two
    units, which stay whole unless the balance needs one unit (128 households) on the
    other side.

    Parameters
    ----------
    building_id, households, units, levels, area : ndarray
        Per building.
    ceiling_range : ndarray, shape (n, 2)
        The household range of each building's grid class (``lo``, ``hi``).
    planned : ndarray of bool
        Buildings that get units (the others belong to special grids or to no area).

    Returns
    -------
    Units
    """
    idx = np.flatnonzero(planned)
    lo_b, hi_b = ceiling_range[idx, 0], ceiling_range[idx, 1]
    nu = np.where(np.isfinite(units[idx]), units[idx], 1).astype(np.int64)
    nl = np.where(np.isfinite(levels[idx]), np.round(levels[idx]), 1).astype(np.int64)
    big = households[idx] > hi_b
    # a very large building (over half a grid's floor) may be cut into two groups of
    # units if a balanced plan needs it
    halves = ~big & (2 * households[idx] > lo_b) & ((nu >= 2) | (nl >= 2))
    whole = idx[~big & ~halves]
    rows = []
    for k in np.flatnonzero(big | halves).tolist():
        bi = int(idx[k])
        lo, hi = int(lo_b[k]), int(hi_b[k])
        parts = _split_rows(
            building_id[bi], int(households[bi]), int(nu[k]), int(nl[k]), lo, hi,
            2 if halves[k] else None,
        )  # fmt: skip
        if halves[k]:
            rows += [(*r, bi, True, bi * _PARTS_KEY) for r in parts]
            continue
        for r in parts:
            rows += _part_halves(r, lo, hi, bi)
    cols = [*SPLIT_COLUMNS, "_b", "_optional", "_group"]
    splits = pd.DataFrame(rows, columns=cols)
    if len(splits) == 0:
        splits = pd.DataFrame({c: [] for c in cols})
    # parts numbered 1.. in unit order within each building
    splits["part"] = splits.groupby("_b").cumcount().to_numpy(dtype=np.int64) + 1
    pb = splits["_b"].to_numpy(dtype=np.int64)
    opt = np.concatenate(
        [np.zeros(len(whole), dtype=bool), splits["_optional"].to_numpy(dtype=bool)]
    )
    grp = np.concatenate(
        [np.full(len(whole), -1, dtype=np.int64), splits["_group"].to_numpy(dtype=np.int64)]
    )
    building = np.concatenate([whole, pb])
    order = np.argsort(building, kind="stable")
    building = building[order]
    part = np.concatenate([np.full(len(whole), -1), splits["part"].to_numpy(dtype=np.int64)])[order]
    hh = np.concatenate([households[whole], splits["households"].to_numpy(dtype=np.int64)])[order]
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    splits = splits.drop(columns=["_b", "_optional", "_group"])
    splits["unit"] = pos[len(whole) :]
    return Units(
        building, part, hh.astype(np.int64), area[building], splits, opt[order], grp[order]
    )


def _part_halves(row: tuple, lo: int, hi: int, bi: int) -> list[tuple]:
    """A part of a building above its ceiling, cut into two optional groups of units
    when it holds more than half a floor and two units or more; else the part alone."""
    bid, p, u0, u1, f0, f1, hh = row
    if 2 * hh <= lo or u1 - u0 < 1:
        return [(*row, bi, False, -1)]
    sub = _split_rows(bid, hh, u1 - u0 + 1, f1 - f0 + 1, lo, hi, 2)
    return [
        (bid, p, a + u0 - 1, b + u0 - 1, f0, f1, h, bi, True, bi * _PARTS_KEY + p)
        for _, _, a, b, _, _, h in sub
    ]


def footprint_seeds(
    anchors: np.ndarray, footprints: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds of whole buildings: the anchor, and the outline of a large footprint.

    Parameters
    ----------
    anchors : ndarray of Point
        A point inside each footprint.
    footprints : ndarray of Polygon
        The footprints (metric CRS); those above :data:`BIG_FOOTPRINT_M2` also seed
        from their outline moved 1 m inside (at most 64 points each).

    Returns
    -------
    xy : ndarray, shape (s, 2)
    index : ndarray of int
        The footprint of each seed.
    main : ndarray of bool
        The anchor seeds.
    """
    n = len(anchors)
    xy = [shapely.get_coordinates(anchors)]
    idx = [np.arange(n)]
    main = [np.ones(n, dtype=bool)]
    big = np.flatnonzero(shapely.area(footprints) > BIG_FOOTPRINT_M2)
    if len(big):
        inner = in_threads(shapely.buffer, footprints[big], distance=-_SHRINK)
        # a coarser outline for very long outlines keeps the seed count bounded
        tol = np.maximum(1.0, shapely.length(inner) / _MAX_OUTLINE_SEEDS)
        inner = in_threads(shapely.simplify, inner, tol)
        c, ci = shapely.get_coordinates(inner, return_index=True)
        xy.append(c)
        idx.append(big[ci])
        main.append(np.zeros(len(ci), dtype=bool))
    return np.concatenate(xy), np.concatenate(idx).astype(np.int64), np.concatenate(main)


def strip_seeds(
    footprint: shapely.Geometry, anchor: shapely.Geometry, households: np.ndarray
) -> tuple[np.ndarray, int]:
    """Seeds of the parts of a building split by units: one point per unit strip.

    Parameters
    ----------
    footprint : Polygon
        The footprint (its part in its community).
    anchor : Point
        The building's anchor point.
    households : ndarray
        Households of each part, in part order (the strips' shares).

    Returns
    -------
    xy : ndarray, shape (parts, 2)
        A point inside each part's strip.
    holder : int
        The part whose strip holds the anchor (it is seeded with the anchor too).
    """
    hh = np.asarray(households, dtype=float)
    xy, holder = _strip_seeds_many(
        np.array([footprint], dtype=object),
        np.array([anchor], dtype=object),
        np.zeros(len(hh), dtype=np.int64),
        hh,
    )
    return xy, int(holder[0])


def _strip_seeds_many(
    parts: np.ndarray, anchors: np.ndarray, building: np.ndarray, households: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`strip_seeds` for many buildings at once.

    `building` holds the building (row of `parts` and `anchors`) of every part,
    grouped by building in part order. Returns one seed per part and, per building
    (in order), the part whose strip lies nearest the anchor.
    """
    start = np.flatnonzero(np.r_[True, building[1:] != building[:-1]])
    size = np.diff(np.r_[start, len(building)])
    owner = np.repeat(np.arange(len(start)), size)
    total = np.bincount(owner, weights=households)
    frac = np.where(
        total[owner] > 0, households / np.where(total > 0, total, 1)[owner], 1.0 / size[owner]
    )
    fp = parts[building[start]]
    strips = unit_strips_many(fp, frac, owner)
    empty = shapely.is_empty(strips)
    strips[empty] = fp[owner[empty]]
    d = shapely.distance(strips, anchors[building])
    o = np.lexsort((np.arange(len(d)), d, owner))
    holder = o[np.r_[True, owner[o][1:] != owner[o][:-1]]]
    return shapely.get_coordinates(shapely.point_on_surface(strips)), holder


def unit_seeds(
    units: Units, anchors: np.ndarray, parts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed points of every unit for the tessellation.

    Parameters
    ----------
    units : Units
    anchors : ndarray of Point
        Anchor point of every building (inside its part in its area).
    parts : ndarray of geometry
        Every building's footprint clipped to its area.

    Returns
    -------
    xy : ndarray, shape (s, 2)
        Seed points, distinct to the centimetre.
    unit : ndarray of int
        Unit of each seed.
    main : ndarray of bool
        The main seed of each unit (exactly one per unit).
    """
    whole = np.flatnonzero(units.part < 0)
    wb = units.building[whole]
    fxy, fi, fmain = footprint_seeds(anchors[wb], parts[wb])
    xy, unit, main = [fxy], [whole[fi]], [fmain]
    if len(units.splits):
        sp = units.splits.sort_values(["unit"])
        u = sp["unit"].to_numpy(dtype=np.int64)
        bi = units.building[u]
        o = np.lexsort((u, bi))  # parts grouped by building, in part order
        u, bi = u[o], bi[o]
        pts, holder = _strip_seeds_many(
            parts, anchors, bi, sp["households"].to_numpy(dtype=float)[o]
        )
        xy += [pts, shapely.get_coordinates(anchors[bi[holder]])]
        unit += [u, u[holder]]
        main += [np.ones(len(u), dtype=bool), np.zeros(len(holder), dtype=bool)]
    return distinct_seeds(
        np.concatenate(xy), np.concatenate(unit).astype(np.int64), np.concatenate(main)
    )


def distinct_seeds(
    xy: np.ndarray, unit: np.ndarray, main: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make seed points distinct to the centimetre.

    Duplicates are dropped (main seeds win); a main seed that duplicates another
    unit's main seed is nudged east in 1 cm steps, so every unit keeps its main seed.

    Returns
    -------
    xy, unit, main : ndarray
        The kept seeds.
    """
    q = np.rint(xy / PRECISION).astype(np.int64)
    order = np.lexsort((unit, ~main))  # main seeds win duplicates
    _, first = np.unique(grid_keys(xy)[order], return_index=True)
    keep = np.zeros(len(xy), dtype=bool)
    keep[order[first]] = True
    lost = np.flatnonzero(main & ~keep)
    if len(lost):
        taken = {tuple(p) for p in q[keep].tolist()}
        for i in lost:
            step = 1
            while (q[i, 0] + step, q[i, 1]) in taken:
                step += 1
            q[i, 0] += step
            taken.add((int(q[i, 0]), int(q[i, 1])))
            keep[i] = True
    xy = xy.copy()
    xy[lost] = q[lost] * PRECISION
    return xy[keep], unit[keep], main[keep]


def cluster_points(xy: np.ndarray, distance: float, key: np.ndarray | None = None) -> np.ndarray:
    """Single-linkage clusters of points closer than `distance` (with equal `key`).

    The clusters are the connected components of the Delaunay edges no longer than
    `distance` (the Euclidean minimum spanning tree lies in the Delaunay graph, so
    this equals linking every pair within `distance`, without listing those pairs:
    dense towns have millions of them).

    Returns
    -------
    ndarray of int
        Cluster label of every point (``0 .. c-1``).
    """
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    xy = np.asarray(xy, dtype=np.float64)
    groups = np.zeros(n, dtype=np.int64) if key is None else pd.factorize(key)[0]
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    edges = [np.empty((0, 2), dtype=np.int64)]
    for idx in np.split(order, bounds):
        if len(idx) >= 2:
            edges.append(idx[_near_pairs(xy[idx], distance)])
    e = np.concatenate(edges)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1].astype(np.int64)


def _near_pairs(xy: np.ndarray, distance: float) -> np.ndarray:
    """Pairs of points (local indexes) whose single-linkage at `distance` joins them:
    Delaunay edges within `distance`, and every duplicate point to its first copy."""
    uniq, first, inv = np.unique(xy, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    dup = np.flatnonzero(first[inv] != np.arange(len(xy)))
    pairs = [np.column_stack([dup, first[inv[dup]]])]
    if len(uniq) >= 3:
        try:
            simplices = Delaunay(uniq).simplices
            tri = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
        except QhullError:  # all points on one line: every pair is cheap to list
            tri = cKDTree(uniq).query_pairs(distance, output_type="ndarray")
    else:
        tri = np.array([[0, 1]]) if len(uniq) == 2 else np.empty((0, 2), dtype=np.int64)
    if len(tri):
        length = np.hypot(*(uniq[tri[:, 0]] - uniq[tri[:, 1]]).T)
        pairs.append(first[tri[length <= distance]])
    return np.concatenate(pairs).astype(np.int64)


def unit_groups(
    households: np.ndarray,
    xy: np.ndarray,
    area: np.ndarray,
    compound: np.ndarray,
    rural: np.ndarray,
    difficult: np.ndarray,
    special: np.ndarray,
    ceilings: tuple[int, int],
    village_distance: float,
    optional_of: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups of units that should stay in one grid.

    Parameters
    ----------
    households, xy, area : ndarray
        Per unit: households, location (m), area (community).
    compound : ndarray of object
        Compound id of each unit's building, or None.
    rural, difficult : ndarray of bool
        Per unit.
    special : ndarray of int
        Special group of loose institution units (-1 for the others).
    ceilings : tuple of int
        Ceiling of an ordinary and of a difficult grid.
    village_distance : float
        Rural units closer than this (m) form one natural village.
    optional_of : ndarray of int, optional
        The group of each optional part (``Units.optional_group``), -1 for other units.

    Returns
    -------
    group : ndarray of int
        Group of each unit, -1 for units on their own.
    kind : ndarray of str
        Per group: ``"compound"``, ``"village"``, ``"special"`` or ``"building"``.
    building_group : ndarray of int
        The ``"building"`` group of the optional parts of a building (the group that
        holds them when their compound group is broken up), -1 for other units.
    """
    n = len(households)
    group = np.full(n, -1, dtype=np.int64)
    kinds: list[str] = []
    hi, dhi = ceilings

    def add(mask_labels: np.ndarray, members: np.ndarray, kind: str, fits: bool = True) -> None:
        nonlocal kinds
        if not len(members):
            return
        lab = pd.factorize(mask_labels)[0]
        tot = np.bincount(lab, weights=households[members])
        dshare = np.bincount(lab, weights=difficult[members].astype(float)) / np.bincount(lab)
        cap = np.where(dshare >= 0.5, dhi, hi)
        ok = (tot <= cap) if fits else np.ones(len(tot), dtype=bool)
        new = np.full(len(tot), -1, dtype=np.int64)
        new[ok] = len(kinds) + np.arange(int(ok.sum()))
        kinds += [kind] * int(ok.sum())
        group[members] = new[lab]

    sp = np.flatnonzero(special >= 0)
    add(special[sp], sp, "special", fits=False)
    free = special < 0
    has_c = free & pd.notna(pd.Series(compound, dtype=object)).to_numpy() & ~rural
    ci = np.flatnonzero(has_c)
    add(pd.Series(area[ci]).astype(str).to_numpy() + "|" + compound[ci].astype(str), ci, "compound")
    ri = np.flatnonzero(free & rural)
    if len(ri):
        lab = cluster_points(xy[ri], village_distance, key=area[ri])
        add(lab, ri, "village")
    building_group = np.full(n, -1, dtype=np.int64)
    if optional_of is not None:
        oi = np.flatnonzero(optional_of >= 0)
        if len(oi):
            lab = pd.factorize(optional_of[oi])[0]
            building_group[oi] = len(kinds) + lab
            kinds += ["building"] * (int(lab.max()) + 1)
            alone = oi[group[oi] < 0]
            group[alone] = building_group[alone]
    return group, np.array(kinds, dtype=object), building_group
