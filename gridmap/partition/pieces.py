"""Pieces: one community's units cut into grids, barriers as preferences.

For one community:

1. **Atoms.** Units of one group (a compound or a village that fits in one grid, a
   cluster of loose institution buildings) are contracted into one atom, per connected
   part. Institution atoms become special grids (专属网格) of their own.
2. **Pieces.** Atoms that touch inside a block (no barrier between them) and share a
   class (ordinary, difficult, rural) form a piece.
3. **Merging.** A piece whose total cannot be split in range (below the floor, or in a
   gap such as 501–599 households for 300–500) joins a neighbouring piece across the
   weakest barrier available (lane before arterial before river), preferring a join
   that makes the total feasible, then the same class, then the smaller total. A
   natural village below the floor grows together with neighbours within
   ``join_distance`` (distances between their nearest homes) up to one grid; up to
   twice that distance it joins only a neighbour with which it makes an in-range total
   (directly, or with a third piece next to either); otherwise it stays, flagged
   ``isolated_village``. Villages left alone are tried again once their neighbours
   have grown.
4. **Regions.** Each piece is cut into connected, compact grids in range by
   :func:`gridmap.partition.regions.partition_region`, with barrier-weighted cut costs
   so that cuts follow the remaining lanes and walls. A piece that cannot be balanced
   (lumpy atoms) is retried with its compounds broken into buildings, then joined with
   a neighbour.
5. **Rebalancing.** Grids still out of range trade boundary atoms with neighbouring
   grids of the community, across barriers if need be
   (:func:`gridmap.partition.recombination.repair_labels`); if that is not enough and the
   community's total allows it, the whole community is partitioned at once and the
   better plan is kept.

A grid may stay below the floor only when it is an isolated natural village, a special
grid, or the whole community (or a detached part of it) holds fewer households than the
floor; each is flagged with its reason. Empty grids arise only for detached land
without buildings.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from .graph import connected_components_of
from .recombination import recombine, repair_labels
from .regions import partition_region

__all__ = ["CommunityUnits", "NON_RESIDENTIAL", "RANK_FACTOR", "plan_community"]

#: Name of the special grid over land of a community where no home is mapped.
NON_RESIDENTIAL = "non-residential land"

#: Cost of cutting one metre of shared border, by the rank of the barrier on it
#: (0 = no barrier, 1 wall, 2 local road, 3 arterial, 4 water/railway).
RANK_FACTOR = np.array([1.0, 0.3, 0.1, 0.02, 0.005])
#: Searches of a community while a grid is left unbalanced (see plan_community).
_ATTEMPTS = 3
_SEED_STEP = 7919  # seed offset between those searches
#: Largest community (atoms) re-planned at once as a last resort.
_WHOLE_MAX_ATOMS = 300
#: Travel-distance multiplier across a barrier, by rank (geodesic cut orders).
_RANK_DISTANCE = np.array([1.0, 2.0, 4.0, 8.0, 16.0])


@dataclass
class CommunityUnits:
    """The units of one community and their adjacency (local numbering).

    Attributes
    ----------
    households, xy, difficult, rural, group : ndarray
        Per unit; ``group`` indexes ``group_kind`` (-1: the unit is alone).
    group_kind : ndarray of str
        ``"compound"``, ``"village"`` or ``"special"`` per group.
    special_name : dict
        Name of each special group.
    edges, length, cost, rank : ndarray
        Unit adjacency (pairs ``i < j``), shared border (m), cut cost and barrier rank.
    fixed_special : ndarray of int
        Per unit: a special grid (institution polygon) the unit is fixed to, or -1.
    building_group : ndarray of int, optional
        Per unit: the ``"building"`` group of an optional part (the two halves of a
        building above the floor), which holds it when its compound is broken up.
    """

    households: np.ndarray
    xy: np.ndarray
    difficult: np.ndarray
    rural: np.ndarray
    group: np.ndarray
    group_kind: np.ndarray
    edges: np.ndarray
    length: np.ndarray
    cost: np.ndarray
    rank: np.ndarray
    fixed_special: np.ndarray
    special_name: dict = field(default_factory=dict)
    building_group: np.ndarray | None = None


@dataclass
class _Atoms:
    unit_atom: np.ndarray
    weight: np.ndarray
    xy: np.ndarray
    difficult: np.ndarray
    rural: np.ndarray
    special: np.ndarray  # special group (or fixed special) per atom, -1 otherwise
    compound: np.ndarray  # explodable compound group per atom, -1 otherwise
    edges: np.ndarray
    cost: np.ndarray
    rank: np.ndarray
    dist: np.ndarray
    gap: np.ndarray  # distance between the closest touching units of the two atoms


@dataclass
class _Piece:
    atoms: list[int]
    households: int
    difficult_households: int
    rural: bool
    nbrs: dict[int, tuple[int, float]]  # neighbour -> (weakest barrier rank, gap in m)


def plan_community(
    cu: CommunityUnits,
    ranges: tuple[tuple[int, int], tuple[int, int]],
    *,
    seed: int = 0,
    join_distance: float = 2000.0,
    attempts: int = _ATTEMPTS,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Cut one community's units into grids.

    Parameters
    ----------
    cu : CommunityUnits
    ranges : ((lo, hi), (dlo, dhi))
        Household ranges of ordinary and difficult grids.
    seed : int
    join_distance : float
        A village joins a neighbour only when they are at most this far apart (m).
    attempts : int
        Searches with other random choices while a grid is left ``unbalanced`` (out of
        range although the totals allow a plan: the search missed it); the plan with
        the fewest households out of range is kept. A community planned in range the
        first time is planned once.

    Returns
    -------
    labels : ndarray of int
        Grid of every unit (``0 .. g-1``).
    metas : list of dict
        Per grid: ``kind``, ``households``, ``range_min``, ``range_max``,
        ``difficult``, ``flags``, ``flag_reason``, ``name``.
    """
    at = _contract(cu, set())
    quick = _quick(cu, at, ranges)
    if quick is not None:
        return quick[0][at.unit_atom], quick[1]
    best = _plan_search(cu, at, ranges, seed, join_distance)
    for k in range(1, max(1, attempts)):
        if not _unbalanced(best[1]):
            break
        again = _plan_search(cu, at, ranges, seed + k * _SEED_STEP, join_distance)
        if _excess(again[1]) < _excess(best[1]):
            best = again
    return best


def _plan_search(cu, at, ranges, seed, join_distance) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One search for the plan of a community (see :func:`plan_community`)."""
    # lumpy atoms: break the compounds kept whole, then the very large buildings (into
    # their two groups of units), while that lowers the households out of range; the
    # costly last resorts run only on the finest atoms
    stages = [
        set(np.flatnonzero(np.isin(cu.group_kind, kinds)).tolist())
        for kinds in (("compound",), ("compound", "building"))
    ]
    stages = [x for i, x in enumerate(stages) if x and (i == 0 or x != stages[0])]
    labels_a, metas = _plan_atoms(cu, at, ranges, seed, join_distance, final=not stages)
    for k, explode in enumerate(stages):
        if not _unbalanced(metas):
            break
        at2 = _contract(cu, explode)
        final = k == len(stages) - 1
        labels2, metas2 = _plan_atoms(cu, at2, ranges, seed, join_distance, final=final)
        if _excess(metas2) < _excess(metas) or (final and _excess(metas2) == _excess(metas)):
            at, labels_a, metas = at2, labels2, metas2
    return labels_a[at.unit_atom], metas


# ----------------------------------------------------------------------------- atoms
def _components(n: int, edges: np.ndarray) -> tuple[int, np.ndarray]:
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    comp = connected_components_of(n, np.asarray(edges, dtype=np.int64).reshape(-1, 2))
    return int(comp.max()) + 1, comp


def _house_gap(cu: CommunityUnits, unit_atom: np.ndarray, na: int, pairs: np.ndarray) -> np.ndarray:
    """Distance between the nearest homes of two atoms (their units with households;
    all their units when they have none): how far apart two settlements really are,
    even where their cells touch only through fields far from either."""
    home = cu.households > 0
    has_home = np.bincount(unit_atom[home], minlength=na) > 0
    use = home | ~has_home[unit_atom]
    idx = np.flatnonzero(use)
    idx = idx[np.argsort(unit_atom[idx], kind="stable")]
    atoms, local = np.unique(unit_atom[idx], return_inverse=True)
    mp = np.full(na, None, dtype=object)
    mp[atoms] = shapely.multipoints(cu.xy[idx], indices=local.ravel())
    return shapely.distance(mp[pairs[:, 0]], mp[pairs[:, 1]])


def _contract(cu: CommunityUnits, explode: set[int]) -> _Atoms:
    """Contract units into atoms: one per connected part of a group, else one per unit."""
    n = len(cu.households)
    grp = cu.group.copy()
    if explode:
        out = np.isin(grp, list(explode))
        if cu.building_group is not None:  # a broken compound leaves its buildings whole
            grp[out] = cu.building_group[out]
            out = np.isin(grp, list(explode))
        grp[out] = -1
    key = np.where(grp >= 0, grp, -1 - np.arange(n))
    key = np.where(cu.fixed_special >= 0, -10 * n - cu.fixed_special, key)
    e = cu.edges
    same = key[e[:, 0]] == key[e[:, 1]] if len(e) else np.zeros(0, bool)
    ncomp, comp = _components(n, e[same] if len(e) else e)
    # a fixed special grid (institution polygon) stays one atom even if in pieces
    fixed = cu.fixed_special >= 0
    comp = np.where(fixed, ncomp + cu.fixed_special, comp)
    _, unit_atom = np.unique(comp, return_inverse=True)
    na = int(unit_atom.max()) + 1 if n else 0
    w = np.bincount(unit_atom, weights=cu.households, minlength=na).astype(np.int64)
    ww = np.maximum(cu.households, 1).astype(float)
    tot = np.bincount(unit_atom, weights=ww, minlength=na)
    xy = np.column_stack(
        [
            np.bincount(unit_atom, weights=ww * cu.xy[:, 0], minlength=na) / tot,
            np.bincount(unit_atom, weights=ww * cu.xy[:, 1], minlength=na) / tot,
        ]
    )
    dh = np.bincount(unit_atom, weights=ww * cu.difficult, minlength=na)
    rh = np.bincount(unit_atom, weights=ww * cu.rural, minlength=na)
    special = np.full(na, -1, dtype=np.int64)
    is_sp = (
        (grp >= 0) & (cu.group_kind[np.maximum(grp, 0)] == "special")
        if len(cu.group_kind)
        else np.zeros(n, bool)
    )
    special[unit_atom[is_sp]] = grp[is_sp]
    fixed = cu.fixed_special >= 0
    special[unit_atom[fixed]] = 1_000_000 + cu.fixed_special[fixed]
    compound = np.full(na, -1, dtype=np.int64)
    is_c = (
        (grp >= 0) & (cu.group_kind[np.maximum(grp, 0)] == "compound")
        if len(cu.group_kind)
        else np.zeros(n, bool)
    )
    compound[unit_atom[is_c]] = grp[is_c]
    # atom edges
    ae = unit_atom[e] if len(e) else np.empty((0, 2), np.int64)
    m = ae[:, 0] != ae[:, 1] if len(ae) else np.zeros(0, bool)
    ae = np.sort(ae[m], axis=1)
    inv = np.empty(0, dtype=np.int64)
    if len(ae):
        k = ae[:, 0] * na + ae[:, 1]
        uk, inv = np.unique(k, return_inverse=True)
        cost = np.bincount(inv, weights=cu.cost[m])
        rank = np.full(len(uk), 99, dtype=np.int64)
        np.minimum.at(rank, inv, cu.rank[m])
        edges = np.column_stack([uk // na, uk % na]).astype(np.int64)
    else:
        edges, cost, rank = np.empty((0, 2), np.int64), np.empty(0), np.empty(0, np.int64)
    d = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T) if len(edges) else np.empty(0)
    dist = (d + 1.0) * _RANK_DISTANCE[np.minimum(rank, 4)]
    # the gap between two atoms: the closest pair of their touching units
    gap = np.full(len(edges), np.inf)
    if len(edges):
        ud = np.hypot(*(cu.xy[e[m, 0]] - cu.xy[e[m, 1]]).T)
        np.minimum.at(gap, inv, ud)
    rural = rh * 2 > tot
    village = rural[edges[:, 0]] | rural[edges[:, 1]] if len(edges) else np.zeros(0, bool)
    if village.any():
        gap[village] = np.minimum(gap[village], _house_gap(cu, unit_atom, na, edges[village]))
    return _Atoms(
        unit_atom=unit_atom.astype(np.int64),
        weight=w,
        xy=xy,
        difficult=dh * 2 > tot,
        rural=rural,
        special=special,
        compound=compound,
        edges=edges,
        cost=cost,
        rank=rank,
        dist=dist,
        gap=gap,
    )


def _quick(cu, at: _Atoms, ranges):
    """The plan of a community that needs no search: no special grids, and every
    connected part either below its floor or a single in-range grid."""
    if (at.special >= 0).any() or len(at.weight) == 0 or at.rural.any():
        return None  # special grids and villages follow the full rules
    na = len(at.weight)
    e = at.edges
    k, comp = _components(na, e)
    w = np.bincount(comp, weights=at.weight, minlength=k)
    ww = np.maximum(at.weight, 1).astype(float)
    d = np.bincount(comp, weights=ww * at.difficult, minlength=k) * 2 > np.bincount(
        comp, weights=ww, minlength=k
    )
    (lo, hi), (dlo, dhi) = ranges
    flo = np.where(d, dlo, lo)
    fhi = np.where(d, dhi, hi)
    if not ((w < flo) | ((w >= flo) & (w <= fhi))).all():
        return None
    return comp.astype(np.int64), _metas(cu, at, comp, k, {}, ranges, {}, {})


# ---------------------------------------------------------------------------- planning
def _feasible(h: int, lo: int, hi: int) -> bool:
    if h <= 0:
        return False
    return -(-h // hi) * lo <= h


def _range_of(p: _Piece, ranges) -> tuple[int, int]:
    (lo, hi), (dlo, dhi) = ranges
    return (dlo, dhi) if p.difficult_households * 2 > p.households else (lo, hi)


def _plan_atoms(cu, at: _Atoms, ranges, seed, join_distance, final: bool = True):
    special = at.special >= 0
    pocket_of = _pockets(at, ranges)
    res = ~special & (pocket_of < 0)
    pieces = _initial_pieces(at, res)
    isolated: dict[int, str] = {}
    _merge_infeasible(pieces, at, ranges, join_distance, isolated)

    # quick solves first; the full search only for pieces that need it
    solutions = {pid: _solve(at, pc, ranges, seed, "quick") for pid, pc in pieces.items()}
    for pid, pc in pieces.items():
        if "unbalanced" in solutions[pid][1].status:
            solutions[pid] = _solve(at, pc, ranges, seed)
    label, region_piece, notes = _assemble(at, pieces, solutions)
    k = len(region_piece)
    # the cheap remedies first: moves and recombination across pieces; then joining
    # unbalanced pieces with a neighbour; last, the whole community at once
    if k > 1:
        label = _cross_piece_repair(at, label, region_piece, pieces, ranges, isolated, seed)
    if final and _label_unbalanced(at, label, region_piece, pieces, ranges, isolated):
        _rebalance_unbalanced(pieces, solutions, at, ranges, seed)
        label, region_piece, notes = _assemble(at, pieces, solutions)
        k = len(region_piece)
        if k > 1:
            label = _cross_piece_repair(at, label, region_piece, pieces, ranges, isolated, seed)
    if final and _label_unbalanced(at, label, region_piece, pieces, ranges, isolated):
        label, k = _whole_community(at, label, k, pieces, ranges, seed, isolated)
    metas = _metas(cu, at, label, k, pieces, ranges, isolated, notes)
    # special atoms: a grid each (with the residential pockets they enclose)
    for a in np.flatnonzero(special):
        label[a] = len(metas)
        sid = int(at.special[a])
        pocket = np.flatnonzero(pocket_of == a)
        label[pocket] = len(metas)
        ph = int(at.weight[pocket].sum())
        metas.append(
            {
                "kind": "special",
                "households": int(at.weight[a]) + ph,
                "range_min": 0,
                "range_max": 0,
                "difficult": False,
                "flags": "includes_residential" if len(pocket) else "",
                "flag_reason": (
                    f"includes {ph} households of homes enclosed by the institution's land "
                    "(too few for a grid of their own, and no other grid can reach them)"
                    if len(pocket)
                    else ""
                ),
                "name": str(cu.special_name.get(sid, "")),
            }
        )
    return label, metas


def _pockets(at: _Atoms, ranges) -> np.ndarray:
    """Residential land cut off by special grids: each connected part of the
    residential atoms that holds fewer households than the floor (and is not all of the
    community's residential land, nor a village) goes to the special atom it borders
    most. Returns that special atom per atom (-1 for the others)."""
    na = len(at.weight)
    out = np.full(na, -1, dtype=np.int64)
    special = at.special >= 0
    if not special.any() or special.all():
        return out
    e = at.edges
    both = ~special[e[:, 0]] & ~special[e[:, 1]]
    k, comp = _components(na, e[both])
    comp = np.where(special, -1, comp)
    res = ~special
    parts = np.unique(comp[res])
    if len(parts) <= 1:
        return out
    (lo, _), (dlo, _) = ranges
    ww = np.maximum(at.weight, 1).astype(float)
    for c in parts.tolist():
        sel = comp == c
        h = int(at.weight[sel].sum())
        floor = dlo if (ww * at.difficult)[sel].sum() * 2 > ww[sel].sum() else lo
        if h >= floor or at.rural[sel].any():
            continue
        # the special atom with the longest (costliest to cut) border
        m1 = sel[e[:, 0]] & special[e[:, 1]]
        m2 = sel[e[:, 1]] & special[e[:, 0]]
        cand = np.r_[e[m1, 1], e[m2, 0]]
        if not len(cand):
            continue
        w = np.r_[at.cost[m1], at.cost[m2]]
        best = np.bincount(cand, weights=w, minlength=na)
        out[sel] = int(np.argmax(best))
    return out


def _assemble(at: _Atoms, pieces, solutions):
    """Labels of the atoms from the pieces' solutions; the piece of every region."""
    label = np.full(len(at.weight), -1, dtype=np.int64)
    region_piece: list[int] = []
    notes: dict[int, str] = {}
    for pid in sorted(pieces, key=lambda p: min(pieces[p].atoms)):
        idx, res_p = solutions[pid]
        for r in range(res_p.k):
            label[idx[res_p.labels == r]] = len(region_piece)
            region_piece.append(pid)
        if res_p.note:
            notes[pid] = res_p.note
    return label, np.array(region_piece, dtype=np.int64), notes


def _label_unbalanced(at, label, region_piece, pieces, ranges, isolated) -> bool:
    """Some region out of the range of its piece, in a piece that is not isolated and
    whose total allows an in-range split."""
    k = len(region_piece)
    if k == 0:
        return False
    rw = np.bincount(label[label >= 0], weights=at.weight[label >= 0], minlength=k)
    for r in range(k):
        p = int(region_piece[r])
        if p not in pieces or p in isolated:
            continue
        lo, hi = _range_of(pieces[p], ranges)
        if not (lo <= rw[r] <= hi) and _feasible(pieces[p].households, lo, hi):
            return True
    return False


def _initial_pieces(at: _Atoms, res: np.ndarray) -> dict[int, _Piece]:
    na = len(at.weight)
    e = at.edges
    if len(e):
        same = (
            (at.rank == 0)
            & res[e[:, 0]]
            & res[e[:, 1]]
            & (at.difficult[e[:, 0]] == at.difficult[e[:, 1]])
            & (at.rural[e[:, 0]] == at.rural[e[:, 1]])
        )
        se = e[same]
    else:
        se = np.empty((0, 2), np.int64)
    _, comp = _components(na, se)
    pieces: dict[int, _Piece] = {}
    for a in np.flatnonzero(res).tolist():
        p = int(comp[a])
        pc = pieces.get(p)
        if pc is None:
            pc = pieces[p] = _Piece([], 0, 0, True, {})
        w = int(at.weight[a])
        pc.atoms.append(a)
        pc.households += w
        pc.difficult_households += w if at.difficult[a] else 0
        pc.rural = pc.rural and bool(at.rural[a])
    if len(e):
        both = res[e[:, 0]] & res[e[:, 1]]
        pa, pb = comp[e[both, 0]], comp[e[both, 1]]
        rk = at.rank[both]
        gap = at.gap[both]
        for a, b, r, d in zip(pa.tolist(), pb.tolist(), rk.tolist(), gap.tolist(), strict=True):
            if a == b:
                continue
            for x, y in ((a, b), (b, a)):
                old = pieces[x].nbrs.get(y)
                pieces[x].nbrs[y] = (r, d) if old is None else (min(old[0], r), min(old[1], d))
    return pieces


def _join(pieces: dict[int, _Piece], p: int, q: int) -> None:
    """Merge piece q into piece p."""
    pc, qc = pieces[p], pieces.pop(q)
    pc.atoms += qc.atoms
    pc.households += qc.households
    pc.difficult_households += qc.difficult_households
    pc.rural = pc.rural and qc.rural
    for r, (rk, d) in qc.nbrs.items():
        if r == p:
            continue
        rc = pieces[r]
        rc.nbrs.pop(q, None)
        old = pc.nbrs.get(r)
        new = (rk, d) if old is None else (min(old[0], rk), min(old[1], d))
        pc.nbrs[r] = new
        rc.nbrs[p] = new
    pc.nbrs.pop(q, None)


def _merge_infeasible(pieces, at, ranges, join_distance, isolated) -> None:
    heap = [(pc.households, p) for p, pc in pieces.items()]
    heapq.heapify(heap)
    for _ in range(3):
        joins = _merge_pass(pieces, heap, ranges, join_distance, isolated)
        # a village left alone may find a partner once its neighbours have grown
        again = [(pieces[p].households, p) for p in isolated if p in pieces]
        if not joins or not again:
            break
        for p in list(isolated):
            del isolated[p]
        heap = again
        heapq.heapify(heap)


def _merge_pass(pieces, heap, ranges, join_distance, isolated) -> int:
    """Join infeasible pieces with neighbours, smallest first; the number of joins."""
    joins = 0
    while heap:
        h, p = heapq.heappop(heap)
        pc = pieces.get(p)
        if pc is None or pc.households != h or p in isolated:
            continue
        lo, hi = _range_of(pc, ranges)
        if _feasible(h, lo, hi):
            continue
        best, best_key = None, None
        for q, (rk, gap) in pc.nbrs.items():
            qc = pieces[q]
            if (pc.rural or qc.rural) and gap > join_distance and h > 0:
                continue
            merged = _Piece([], h + qc.households, pc.difficult_households +
                            qc.difficult_households, pc.rural and qc.rural, {})  # fmt: skip
            mlo, mhi = _range_of(merged, ranges)
            feas = _feasible(merged.households, mlo, mhi)
            if pc.rural and not feas and h > 0 and merged.households > mhi:
                continue  # villages grow together up to one grid, not beyond
            key = (rk, not feas, _range_of(qc, ranges) != (lo, hi), merged.households, q)
            if best_key is None or key < best_key:
                best, best_key = q, key
        if best is None and pc.rural and 0 < h < lo:
            # a little beyond reach (up to twice the join distance), a village still
            # joins the nearest neighbour with which it makes an in-range grid: a longer
            # round for the grid worker is worth it when it spares a grid below the floor
            best = _nearest_feasible(pieces, p, ranges, 2 * join_distance)
        if best is None:
            if pc.rural and 0 < h < lo:
                isolated[p] = (
                    f"natural village of {h} households below the floor of {lo}; no neighbour "
                    f"within {join_distance:.0f} m gives an in-range grid"
                )
            continue
        _join(pieces, p, best)
        joins += 1
        isolated.pop(p, None)
        isolated.pop(best, None)
        heapq.heappush(heap, (pieces[p].households, p))
    return joins


def _nearest_feasible(pieces, p: int, ranges, reach: float) -> int | None:
    """The neighbour of piece `p` within `reach` (m) nearest to it whose join gives a
    total that splits in range; or, when there is none, the nearest one whose join
    (still within one grid) makes such a total with a third piece next to either (two
    hamlets and a village)."""

    def fits(households: int, difficult: int, rural: bool) -> bool:
        m = _Piece([], households, difficult, rural, {})
        return _feasible(households, *_range_of(m, ranges))

    pc = pieces[p]
    direct, chained = [], []
    for q, (_, gap) in pc.nbrs.items():
        if gap > reach:
            continue
        qc = pieces[q]
        h = pc.households + qc.households
        d = pc.difficult_households + qc.difficult_households
        rural = pc.rural and qc.rural
        if fits(h, d, rural):
            direct.append((gap, q))
            continue
        if h > _range_of(_Piece([], h, d, rural, {}), ranges)[1]:
            continue
        for r in (set(pc.nbrs) | set(qc.nbrs)) - {p, q}:
            rc = pieces[r]
            if fits(h + rc.households, d + rc.difficult_households, rural and rc.rural):
                chained.append((gap, q))
                break
    best = min(direct or chained, default=None)
    return None if best is None else best[1]


def _solve(at: _Atoms, pc: _Piece, ranges, seed: int, effort: str = "full"):
    idx = np.array(sorted(pc.atoms), dtype=np.int64)
    lo, hi = _range_of(pc, ranges)
    local = np.full(len(at.weight), -1, dtype=np.int64)
    local[idx] = np.arange(len(idx))
    le = local[at.edges] if len(at.edges) else np.empty((0, 2), np.int64)
    m = (le >= 0).all(axis=1) if len(le) else np.zeros(0, bool)
    res = partition_region(
        at.weight[idx],
        at.xy[idx],
        le[m],
        lo,
        hi,
        seed=seed,
        edge_lengths=at.cost[m],
        edge_distance=at.dist[m],
        effort=effort,
    )
    return idx, res


def _sol_excess(sol, lo, hi) -> int:
    w = sol[1].weights
    return int(np.maximum(lo - w, 0).sum() + np.maximum(w - hi, 0).sum())


def _rebalance_unbalanced(pieces, solutions, at, ranges, seed) -> None:
    """Join a piece that could not be balanced with a neighbour when that helps."""
    for p in sorted(pieces, key=lambda x: min(pieces[x].atoms)):
        if p not in pieces or "unbalanced" not in solutions[p][1].status:
            continue
        pc = pieces[p]
        lo, hi = _range_of(pc, ranges)
        nbrs = sorted(pc.nbrs.items(), key=lambda kv: (kv[1][0], pieces[kv[0]].households))
        for q, _ in nbrs[:3]:
            qc = pieces[q]
            merged = _Piece(pc.atoms + qc.atoms, pc.households + qc.households,
                            pc.difficult_households + qc.difficult_households,
                            pc.rural and qc.rural, {})  # fmt: skip
            mlo, mhi = _range_of(merged, ranges)
            sol = _solve(at, merged, ranges, seed, "quick")
            qlo, qhi = _range_of(qc, ranges)
            before = _sol_excess(solutions[p], lo, hi) + _sol_excess(solutions[q], qlo, qhi)
            if _sol_excess(sol, mlo, mhi) < before:
                _join(pieces, p, q)
                solutions[p] = sol
                del solutions[q]
                if "unbalanced" not in sol[1].status:
                    break
                pc = pieces[p]
                lo, hi = mlo, mhi


def _cross_piece_repair(at, label, region_piece, pieces, ranges, isolated, seed) -> np.ndarray:
    k = len(region_piece)
    rw = np.bincount(label[label >= 0], weights=at.weight[label >= 0], minlength=k)
    rng = np.array([_range_of(pieces[p], ranges) for p in region_piece])
    out = (rw < rng[:, 0]) | (rw > rng[:, 1])
    skip = np.array([p in isolated for p in region_piece])
    if not (out & ~skip).any():
        return label
    for lo, hi in sorted({tuple(r) for r in rng[out & ~skip].tolist()}):
        cls = (rng[:, 0] == lo) & (rng[:, 1] == hi) & ~skip
        movable = (label >= 0) & cls[np.maximum(label, 0)]
        label = repair_labels(at.weight, at.xy, at.edges, label, lo, hi, movable=movable)
        label = recombine(
            at.weight, at.edges, label, lo, hi, cost=at.cost, movable=movable, seed=seed,
            trees=12, budget=160,
        )  # fmt: skip
    return label


def _excess(metas) -> int:
    tot = 0
    for m in metas:
        if m["kind"] == "special":
            continue
        h = m["households"]
        tot += max(0, m["range_min"] - h) + max(0, h - m["range_max"])
    return tot


def _label_excess(at, label, k, region_range) -> int:
    rw = np.bincount(label[label >= 0], weights=at.weight[label >= 0], minlength=k)
    return int(
        np.maximum(region_range[:, 0] - rw, 0).sum() + np.maximum(rw - region_range[:, 1], 0).sum()
    )


def _whole_community(at, label, k, pieces, ranges, seed, isolated):
    """Partition the whole community at once when that puts fewer households out of
    range than the piece-by-piece plan (a last resort: it ignores lane/wall blocks)."""
    res = label >= 0
    if k == 0 or not res.any() or isolated or res.sum() > _WHOLE_MAX_ATOMS:
        return label, k
    h = int(at.weight[res].sum())
    dh = int(at.weight[res & at.difficult].sum())
    (lo, hi), (dlo, dhi) = ranges
    if 0 < dh < h:  # mixed classes: keep the class-aware plan
        return label, k
    plo, phi = (dlo, dhi) if dh == h and h > 0 else (lo, hi)
    rr = np.array([[plo, phi]] * k)
    cur = _label_excess(at, label, k, rr)
    if cur == 0 or not _feasible(h, plo, phi):
        return label, k
    # only when the residential atoms are connected (a detached part stays apart)
    idx = np.flatnonzero(res)
    whole = _Piece(idx.tolist(), h, dh, bool(at.rural[idx].all()), {})
    _, sol = _solve(at, whole, ranges, seed)
    if sol.note.startswith("the adjacency graph has"):
        return label, k
    w = sol.weights
    exc = int(np.maximum(plo - w, 0).sum() + np.maximum(w - phi, 0).sum())
    if exc < cur:
        out = np.full(len(label), -1, dtype=np.int64)
        out[idx] = sol.labels
        for p in list(pieces):
            pieces.pop(p)
        pieces[0] = whole
        return out, sol.k
    return label, k


def _metas(cu, at, label, k, pieces, ranges, isolated, notes) -> list[dict[str, Any]]:
    """Flags and facts of every residential grid."""
    (lo, hi), (dlo, dhi) = ranges
    res = label >= 0
    rw = np.bincount(label[res], weights=at.weight[res], minlength=k).astype(np.int64)
    ww = np.maximum(at.weight, 1).astype(float)
    dsh = np.bincount(label[res], weights=(ww * at.difficult)[res], minlength=k)
    rsh = np.bincount(label[res], weights=(ww * at.rural)[res], minlength=k)
    tot = np.bincount(label[res], weights=ww[res], minlength=k)
    piece_of_atom = np.full(len(at.weight), -1, dtype=np.int64)
    for p, pc in pieces.items():
        piece_of_atom[pc.atoms] = p
    # connected parts of the community's residential land
    e = at.edges
    both = res[e[:, 0]] & res[e[:, 1]] if len(e) else np.zeros(0, bool)
    na = len(at.weight)
    ncomp, comp = _components(na, e[both] if len(e) else e)
    comp_total = np.bincount(comp[res], weights=at.weight[res], minlength=ncomp)
    metas = []
    for r in range(k):
        sel = np.flatnonzero(label == r)
        # a grid is judged by the range its piece was cut with
        own = piece_of_atom[sel]
        own = own[own >= 0]
        piece = int(np.bincount(own).argmax()) if len(own) else -1
        if piece in pieces:
            plo, phi = _range_of(pieces[piece], ranges)
            d = (plo, phi) == (dlo, dhi) and (dlo, dhi) != (lo, hi)
        else:
            d = bool(dsh[r] * 2 > tot[r])
            plo, phi = (dlo, dhi) if d else (lo, hi)
        h = int(rw[r])
        flags: list[str] = []
        reason: list[str] = []
        c_tot = int(comp_total[comp[sel[0]]]) if len(sel) else 0
        iso = [piece_of_atom[a] for a in sel if piece_of_atom[a] in isolated]
        if 0 < h < plo and c_tot < plo:  # the whole (part of the) community is small
            iso = []
        if h == 0:
            flags.append("no_households")
            whole = len(sel) == int(res.sum())
            reason.append(
                "the community holds no households (no building with households is mapped in it)"
                if whole
                else "a detached part of the community without households"
            )
        elif plo <= h <= phi:
            pass
        elif iso and h < plo:
            flags.append("isolated_village")
            reason.append(isolated[iso[0]])
        elif c_tot < plo:
            flags.append("below_floor")
            reason.append(
                f"the community (or a detached part of it) holds only {c_tot} households, "
                f"below the floor of {plo}"
            )
        elif not _feasible(c_tot, plo, phi):
            flags.append("infeasible_split")
            reason.append(
                f"no number of grids puts the {c_tot} households of this (detached part of "
                f"the) community in {plo}-{phi}"
            )
        else:
            flags.append("unbalanced")
            reason.append(
                "no balanced cut was found with the buildings kept whole (large buildings "
                "or compounds where the land narrows): "
                + (notes.get(piece) or "the search found no in-range split")
            )
        kind = "rural" if rsh[r] * 2 > tot[r] else "community"
        if h == 0 and c_tot == 0:
            # land where no home is mapped, which no residential grid can take: the
            # whole community, or a part of it detached from the rest (grids never
            # cross a community, and every m² has a grid). It is a special grid of
            # non-residential land (专属网格: parks, works, markets), kept flagged.
            kind, plo, phi, d = "special", 0, 0, False
            reason.append("a special grid of non-residential land")
        metas.append(
            {
                "kind": kind,
                "households": h,
                "range_min": int(plo),
                "range_max": int(phi),
                "difficult": d,
                "flags": ";".join(flags),
                "flag_reason": "; ".join(reason),
                "name": NON_RESIDENTIAL if kind == "special" else "",
            }
        )
    return metas


def _unbalanced(metas) -> bool:
    """Some grid ended out of range for want of a balanced cut (not for a reason that
    no plan can change)."""
    return any("unbalanced" in m["flags"] for m in metas)
