"""Balanced, connected, compact partition of one piece of atoms into grids.

A *piece* is a set of atoms (a building, a small compound, part of a big building split
by units, a village ...) with a household weight, a point location in metres and an
adjacency graph. :func:`partition_region` cuts it into ``k`` regions (grids) so that

* every region is connected in the graph (hard constraint),
* every region holds ``lo .. hi`` households whenever the heuristic finds such a split,
* regions are compact (short cuts, round shapes).

Algorithm
---------
1. **Choose k.** The feasible ``k`` satisfy ``k*lo <= W <= k*hi``; they are tried in
   order of closeness to ``W / target``. When no ``k`` is feasible the least-bad one
   (smallest relative deviation of ``W / k`` from the range) is used with a relaxed range.
2. **Recursive bisection.** A set that must become ``k`` regions is cut into two connected
   sides with ``k1 = k // 2`` and ``k2 = k - k1`` regions whose weights lie in the windows
   ``k1*lo <= w1 <= k1*hi`` and ``k2*lo <= w2 <= k2*hi``. Candidate cuts are prefixes of
   atom orderings: projections on 8 directions (straight cuts) and, when the best
   straight cuts are turned down, geodesic (shortest-path) distances from 4 extreme atoms
   (these follow L shapes and rings). For every ordering and every prefix the cut cost
   (number or length of cut edges) is computed at once with a difference array, so all
   cuts are scored in numpy. The score is ``cut / best_cut + beta * t**2`` where ``t`` is
   the relative distance of ``w1`` from the proportional target ``W*k1/k`` inside the
   window (``beta = 10`` keeps the sides near their share, which leaves slack for lumpy
   atoms further down). Cuts are checked for connectivity in score order; stray
   components of a side are handed to the other side. When no ordering gives a connected
   cut, random spanning trees are cut instead (a subtree and its complement are always
   connected); when no cut fits the window at all, the cut closest to it is taken.
   With a budget (second round), a side that cannot be split in range makes the search
   backtrack to the next cut.
3. **Repair.** Regions out of range are fixed by chains of single-atom moves between
   neighbouring regions (an over-full region pushes an atom to a neighbour, which passes
   one on if it overflows, ...; under-full regions pull the same way), found by a
   breadth-first search over the region graph. A chain is kept only if it lowers the
   total violation and every touched region stays connected (checked exactly).
4. **Refinement.** Boundary atoms move to a neighbouring region when that lowers the
   total moment of inertia (sum of squared distances of atoms to their region centroid,
   Hartigan's exact k-means gain), keeps both regions in range and keeps the losing
   region connected (checked locally on the two-hop neighbourhood of the atom).

Steps 2-3 run greedily for up to 8 feasible ``k`` (closest to ``W / target`` first), then
with backtracking for the 2 preferred ``k``; the first partition with every region in
range is refined and returned, else the one with the smallest total violation. An atom
above ``hi`` can never be in range: the search clips it to ``hi`` so that it ends up
alone in its region, which is reported as ``"unbalanced"``.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import InputError
from .graph import (
    Graph,
    clean_edges,
    components,
    connected_components_of,
    spanning_tree,
    subtree_sums,
    violation,
)
from .moves import Mover

__all__ = [
    "RegionResult",
    "connected_components_of",
    "partition_region",
]

# --- tuning constants -------------------------------------------------------------------
_N_DIRECTIONS = 8  # straight-cut directions in [0, pi)
_N_GEODESIC = 4  # geodesic sweeps from extreme atoms
_LAZY_GEODESIC = 2  # straight cuts turned down before geodesic orders are added
_BETA = 10.0  # weight of the balance term in the cut score
_MAX_CANDIDATES = 24  # cuts tried per bisection node while the budget lasts
_MAX_K_TRIES = 8  # feasible k values tried (greedy bisection) before giving up
_MAX_K_BACKTRACK = 2  # of these, k values retried with a backtracking budget
_BACKTRACK_BUDGET = 40  # candidate cuts (+ 4 per region) for the backtracking retry
_N_TREES = 4  # random spanning trees tried when no ordering cut is connected


STATUS_OK = "ok"
STATUS_INFEASIBLE = "infeasible_total"
STATUS_BELOW_FLOOR = "below_floor"
STATUS_UNBALANCED = "unbalanced"


@dataclass
class RegionResult:
    """Result of :func:`partition_region`.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(n,)`` int64, region index ``0 .. k-1`` of every atom.
    k : int
        Number of regions.
    weights : numpy.ndarray
        ``(k,)`` int64, households per region.
    status : list of str
        Per region: ``"ok"``, or the reason it is out of range: ``"infeasible_total"``
        (no number of regions puts the total in range), ``"below_floor"`` (the whole
        piece is below ``lo``) or ``"unbalanced"`` (a feasible ``k`` exists but the sizes
        of the atoms prevented an in-range split).
    note : str
        Human-readable explanation when anything is not ``"ok"`` (else ``""``).
    """

    labels: np.ndarray
    k: int
    weights: np.ndarray
    status: list[str]
    note: str = ""


# --- the bisection solver ---------------------------------------------------------------
class _Solver:
    """Recursive-bisection solver for one connected piece and one range."""

    def __init__(self, lo: float, hi: float, rng: np.random.Generator, budget: int):
        self.lo = float(lo)
        self.hi = float(hi)
        self.rng = rng
        self.budget = budget

    # candidate orderings ---------------------------------------------------------------
    def _straight_orders(self, g: Graph) -> np.ndarray:
        """Atom orders along ``_N_DIRECTIONS`` directions (random common offset)."""
        xc = g.xy - g.xy.mean(axis=0)
        offset = self.rng.random()
        ang = (np.arange(_N_DIRECTIONS) + offset) * (np.pi / _N_DIRECTIONS)
        proj = (xc @ np.stack([np.cos(ang), np.sin(ang)])).T  # (D, n)
        return np.argsort(proj, axis=1)

    def _geodesic_orders(self, g: Graph, straight: np.ndarray) -> np.ndarray:
        """Atom orders by shortest-path distance from extreme atoms (prefixes are
        geodesic balls, which are connected and follow bends of the piece)."""
        n = g.n
        d1 = straight.shape[0] // 2
        src = np.unique([straight[0, 0], straight[0, -1], straight[d1, 0], straight[d1, -1]])
        src = src[:_N_GEODESIC]
        a = sparse.csr_matrix((g.el, (g.u, g.v)), shape=(n, n))
        dist = csgraph.dijkstra(a, directed=False, indices=src)
        # tie-break equal distances by the position along the first direction
        tie = np.empty(n, dtype=np.int64)
        tie[straight[0]] = np.arange(n)
        return np.lexsort((np.broadcast_to(tie, dist.shape), dist), axis=1)

    @staticmethod
    def _windows(wtot: float, k: int, lo: float, hi: float):
        """(k_prefix, k_rest, L, U, T) windows for the prefix side."""
        k1 = k // 2
        k2 = k - k1
        out = []
        for ka, kb in ((k1, k2), (k2, k1)) if k1 != k2 else ((k1, k2),):
            lw = max(ka * lo, wtot - kb * hi)
            uw = min(ka * hi, wtot - kb * lo)
            out.append((ka, kb, lw, uw, wtot * ka / k))
        return out

    def _score(self, w1, cut, lw, uw, tw, valid, cref=None):
        t = np.where(
            w1 >= tw,
            (w1 - tw) / max(uw - tw, 1e-9),
            (tw - w1) / max(tw - lw, 1e-9),
        )
        if cref is None:
            pos = cut[valid]
            cref = max(float(pos.min()), 1e-9) if pos.size else 1.0
        s = cut / cref + _BETA * t * t
        return np.where(valid, s, np.inf), t

    def _relaxed_score(self, w1, cut, lw, uw, tw, valid, cref=None):
        """Score for soft windows: distance from the window dominates the cut cost."""
        dist = np.maximum(np.maximum(lw - w1, w1 - uw), 0.0)
        if cref is None:
            pos = cut[valid]
            cref = max(float(pos.min()), 1e-9) if pos.size else 1.0
        s = 100.0 * dist / max(self.hi - self.lo, 1.0) + cut / cref
        return np.where(valid, s, np.inf), np.abs(w1 - tw)

    def _evaluate(self, g: Graph, k: int, orders: np.ndarray, relaxed: bool, cref):
        """Score every prefix cut of every order.

        Returns the candidate list ``(score, row, prefix length, k_prefix, k_rest)``
        (per order and side assignment: the best-scored and the best-balanced prefix),
        the rank matrix and the reference cut used for normalising."""
        n = g.n
        n_ord = orders.shape[0]
        ranks = np.empty_like(orders)
        np.put_along_axis(ranks, orders, np.arange(n)[None, :].repeat(n_ord, 0), axis=1)
        w1 = np.cumsum(g.w[orders], axis=1)[:, :-1]  # prefix length p = 1..n-1
        ru = ranks[:, g.u]
        rv = ranks[:, g.v]
        # edge (u, v) is cut by the prefix of length p iff min(rank) < p <= max(rank):
        # a difference array over p gives the cut cost of all prefixes at once
        lo_r = np.minimum(ru, rv)
        hi_r = np.maximum(ru, rv)
        off = (np.arange(n_ord) * (n + 1))[:, None]
        cw = np.broadcast_to(g.c, lo_r.shape).ravel()
        size = n_ord * (n + 1)
        diff = np.bincount((lo_r + (off + 1)).ravel(), weights=cw, minlength=size)
        diff -= np.bincount((hi_r + (off + 1)).ravel(), weights=cw, minlength=size)
        cut = np.round(np.cumsum(diff.reshape(n_ord, n + 1), axis=1)[:, 1:n], 9)
        p = np.arange(1, n)[None, :]
        wtot = float(g.w.sum())
        cands = []
        for ka, kb, lw, uw, tw in self._windows(wtot, k, self.lo, self.hi):
            if relaxed:
                valid = np.broadcast_to((p >= ka) & (n - p >= kb), w1.shape)
            else:
                if lw > uw:
                    continue
                valid = (w1 >= lw - 1e-9) & (w1 <= uw + 1e-9) & (p >= ka) & (n - p >= kb)
            if not valid.any():
                continue
            if cref is None:
                cref = max(float(cut[valid].min()), 1e-9)
            scorer = self._relaxed_score if relaxed else self._score
            s, t = scorer(w1, cut, lw, uw, tw, valid, cref)
            rows = np.flatnonzero(valid.any(axis=1))
            best = np.argmin(s[rows], axis=1)
            bal = np.argmin(np.where(valid[rows], np.abs(t[rows]), np.inf), axis=1)
            for r, pb, pt in zip(rows.tolist(), best.tolist(), bal.tolist(), strict=True):
                cands.append((float(s[r, pb]), r, pb + 1, ka, kb))
                if pt != pb:
                    cands.append((float(s[r, pt]), r, pt + 1, ka, kb))
        return cands, ranks, cref

    def _ordering_candidates(self, g: Graph, k: int, relaxed: bool = False):
        """Yield (score, prefix mask, k_prefix, k_rest) candidate cuts, best first.

        Straight orders are scored first; geodesic orders are added (lazily, they need
        shortest paths) once ``_LAZY_GEODESIC`` straight cuts have been turned down.
        With ``relaxed`` the weight windows are soft: cuts are ranked by their distance
        from the window first and by cut cost second."""
        straight = self._straight_orders(g)
        cands, ranks, cref = self._evaluate(g, k, straight, relaxed, None)
        pool = sorted((c[0], 0, c[1], c[2], c[3], c[4]) for c in cands)
        all_ranks = [ranks]
        geodesic = _N_GEODESIC > 0 and g.n > 3 and len(g.u) > 0
        seen: set = set()
        yielded = 0
        while pool or geodesic:
            if geodesic and (yielded >= _LAZY_GEODESIC or not pool):
                geodesic = False
                orders = self._geodesic_orders(g, straight)
                more, ranks, _ = self._evaluate(g, k, orders, relaxed, cref)
                all_ranks.append(ranks)
                pool += [(c[0], 1, c[1], c[2], c[3], c[4]) for c in more]
                pool.sort()
                if not pool:
                    break
            sc, bi, r, pp, ka, kb = pool.pop(0)
            mask = all_ranks[bi][r] < pp
            key = (ka, np.packbits(mask).tobytes())
            if key in seen:
                continue
            seen.add(key)
            yielded += 1
            yield sc, mask, ka, kb

    def _tree_candidates(self, g: Graph, k: int, relaxed: bool = False):
        """Yield cuts of random spanning trees (always connected on both sides)."""
        n = g.n
        wtot = float(g.w.sum())
        wins = [w for w in self._windows(wtot, k, self.lo, self.hi) if relaxed or w[2] <= w[3]]
        if not wins or n < 2:
            return
        for _ in range(_N_TREES):
            jit = g.el * (1.0 + self.rng.random(len(g.el)))
            root = int(self.rng.integers(n))
            pre, pred = spanning_tree(n, g.u, g.v, jit, root)
            if len(pre) < n:
                return
            sub_w, sub_n = subtree_sums(pre, pred, g.w)
            tin = np.empty(n, dtype=np.int64)
            tin[pre] = np.arange(n)
            rank_u = tin[g.u]
            rank_v = tin[g.v]
            cands = []
            for ka, kb, lw, uw, tw in wins:
                ok = (sub_n >= ka) & (n - sub_n >= kb) & (pred >= 0)
                if not relaxed:
                    ok &= (sub_w >= lw - 1e-9) & (sub_w <= uw + 1e-9)
                vs = np.flatnonzero(ok)
                if not len(vs):
                    continue
                t = np.abs(sub_w[vs] - tw) / max(abs(uw - lw), 1e-9)
                vs = vs[np.argsort(t, kind="stable")[:32]]
                lo_r = tin[vs][:, None]
                hi_r = (tin[vs] + sub_n[vs])[:, None]
                inu = (rank_u[None, :] >= lo_r) & (rank_u[None, :] < hi_r)
                inv = (rank_v[None, :] >= lo_r) & (rank_v[None, :] < hi_r)
                cut = ((inu != inv) * g.c[None, :]).sum(axis=1)
                valid = np.ones(len(vs), dtype=bool)
                scorer = self._relaxed_score if relaxed else self._score
                s, _ = scorer(sub_w[vs], cut, lw, uw, tw, valid)
                for j in range(len(vs)):
                    cands.append((float(s[j]), int(vs[j]), ka, kb))
            cands.sort(key=lambda c: (c[0], c[1]))
            for sc, x, ka, kb in cands[:8]:
                mask = np.zeros(n, dtype=bool)
                mask[pre[tin[x] : tin[x] + sub_n[x]]] = True
                yield sc, mask, ka, kb

    # connectivity -----------------------------------------------------------------------
    def _connected_split(self, g: Graph, mask: np.ndarray, ka: int, kb: int, window):
        """Return a connected version of the split ``mask`` / ``~mask`` or None."""
        n = g.n
        lw, uw = window if window is not None else (-np.inf, np.inf)
        keep = mask[g.u] == mask[g.v]
        ncomp, comp = components(n, g.u[keep], g.v[keep])
        if ncomp == 2:
            return mask
        cwt = np.bincount(comp, weights=g.w, minlength=ncomp)
        ccount = np.bincount(comp, minlength=ncomp)
        cside = np.zeros(ncomp, dtype=bool)
        cside[comp] = mask
        key = cwt * (n + 1.0) + ccount
        options = []
        for side in (True, False):
            sel = np.flatnonzero(cside == side)
            if not len(sel):
                continue
            main = sel[np.argmax(key[sel])]
            moved = float(cwt[sel].sum() - cwt[main])
            options.append((moved, side, main))
        options.sort(key=lambda o: o[0])
        for _, side, main in options:
            new = comp == main if side else comp != main
            w1 = float(g.w[new].sum())
            cnt = int(new.sum())
            if not (lw - 1e-9 <= w1 <= uw + 1e-9) or cnt < ka or n - cnt < kb:
                continue
            keep = new[g.u] == new[g.v]
            if components(n, g.u[keep], g.v[keep])[0] == 2:
                return new
        return None

    # recursion --------------------------------------------------------------------------
    def solve(self, g: Graph, k: int) -> tuple[np.ndarray, float]:
        """Labels ``0..k'-1`` (``k' <= k``) for the atoms of ``g`` and their violation."""
        wtot = float(g.w.sum())
        if k <= 1 or g.n <= 1:
            return np.zeros(g.n, dtype=np.int64), violation([wtot], self.lo, self.hi)
        best: tuple[np.ndarray, float] | None = None
        wins = {
            (ka, kb): (lw, uw) for ka, kb, lw, uw, _ in self._windows(wtot, k, self.lo, self.hi)
        }
        for source, cap, relaxed in (
            (self._ordering_candidates, _MAX_CANDIDATES, False),
            (self._tree_candidates, 4 * _N_TREES, False),
            (self._ordering_candidates, _MAX_CANDIDATES, True),
            (self._tree_candidates, 4 * _N_TREES, True),
        ):
            if relaxed and best is not None:
                break
            tried = 0
            for _, mask, ka, kb in source(g, k, relaxed):
                if tried >= cap or (best is not None and self.budget <= 0):
                    break
                tried += 1
                self.budget -= 1
                win = None if relaxed else wins[(ka, kb)]
                split = self._connected_split(g, mask, ka, kb, win)
                if split is None:
                    continue
                la, va = self.solve(g.sub(split), ka)
                lb, vb = self.solve(g.sub(~split), kb)
                lab = np.empty(g.n, dtype=np.int64)
                lab[split] = la
                lab[~split] = lb + (la.max() + 1)
                viol = va + vb
                if best is None or viol < best[1]:
                    best = (lab, viol)
                if viol <= 1e-9 or relaxed:
                    return best
            if best is not None and self.budget <= 0:
                break
        if best is None:
            return np.zeros(g.n, dtype=np.int64), violation([wtot], self.lo, self.hi)
        return best


# --- driver -----------------------------------------------------------------------------
def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber labels ``0..k-1`` by first appearance (drops empty labels)."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]


def _k_order(wtot: float, lo: float, hi: float, target: float) -> list[int]:
    kmin = max(1, int(np.ceil(wtot / hi - 1e-12)))
    kmax = int(np.floor(wtot / lo + 1e-12))
    ks = list(range(kmin, kmax + 1))
    ks.sort(key=lambda k: (abs(k - wtot / target), k))
    return ks


def _least_bad_k(wtot: float, lo: float, hi: float) -> int:
    k0 = max(1, int(np.floor(wtot / lo)))
    best, best_dev = 1, np.inf
    for k in (k0 - 1, k0, k0 + 1):
        if k < 1:
            continue
        avg = wtot / k
        dev = max((avg - hi) / hi, (lo - avg) / lo, 0.0)
        if dev < best_dev - 1e-12:
            best, best_dev = k, dev
    return best


def _partition_connected(
    g: Graph, lo: float, hi: float, target: float, rng: np.random.Generator, quick: bool = False
) -> tuple[np.ndarray, list[str], str]:
    """Partition one connected piece. Returns local labels, per-region status, note."""
    n = g.n
    wtot = float(g.w.sum())
    if wtot <= 0:
        return np.zeros(n, dtype=np.int64), [STATUS_OK], ""
    if wtot < lo:
        return (
            np.zeros(n, dtype=np.int64),
            [STATUS_BELOW_FLOOR],
            f"total {wtot:g} households is below the floor {lo:g}; kept as one region",
        )
    # An atom above hi can never be in range. The search runs on weights clipped at hi,
    # so such an atom ends up alone in its region (with empty atoms at most) and the
    # rest of the piece is still balanced; its region is reported as unbalanced.
    heavy = g.w > hi
    wmax = float(g.w.max())
    notes = []
    if heavy.any():
        notes.append(
            f"{int(heavy.sum())} atom(s) hold more than {hi:g} households "
            f"(largest {wmax:g}); split them by units"
        )
        g = replace(g, w=np.minimum(g.w, hi))
        wtot = float(g.w.sum())
    ks = _k_order(wtot, lo, hi, target)
    if not ks:
        k = _least_bad_k(wtot, lo, hi)
        lab = _solve_relaxed(g, k, lo, hi, rng)
        kk = int(lab.max()) + 1
        notes.insert(
            0,
            f"no number of regions puts {wtot:g} households in {lo:g}-{hi:g} "
            f"({k} region(s) of about {wtot / k:.0f} is the least deviation)",
        )
        return lab, [STATUS_INFEASIBLE] * kk, "; ".join(notes)
    best_lab, best_v, best_k = None, np.inf, ks[0]
    # greedy bisection (+ repair) for the preferred k values first, then the same with
    # a backtracking budget; stop at the first partition with every region in range
    tries = [(k, 0) for k in ks[: 2 if quick else _MAX_K_TRIES]]
    if not quick:
        tries += [(k, _BACKTRACK_BUDGET + 4 * k) for k in ks[:_MAX_K_BACKTRACK]]
    for k, budget in tries:
        lab, v = _attempt(g, k, lo, hi, rng, budget)
        if v < best_v - 1e-9:
            best_lab, best_v, best_k = lab, v, k
        if v <= 1e-9:
            break
    lab = _relabel(_refined(g, best_lab, lo, hi))
    rw = np.bincount(lab, weights=g.w)  # clipped weights: heavy atoms count as hi
    inr = (rw >= lo - 1e-9) & (rw <= hi + 1e-9)
    if heavy.any():
        inr &= np.bincount(lab, weights=heavy, minlength=len(rw)) == 0
    status = [STATUS_OK if x else STATUS_UNBALANCED for x in inr]
    if not inr.all():
        msg = f"{int((~inr).sum())} of {len(rw)} regions out of {lo:g}-{hi:g}"
        if best_v > 1e-9:
            msg += (
                f" although {best_k} regions are feasible on the total {wtot:g}: atoms are "
                f"too lumpy (largest atom {wmax:g} households)"
            )
        notes.insert(0, msg)
    return lab, status, "; ".join(notes)


def _solve_relaxed(g: Graph, k: int, lo: float, hi: float, rng) -> np.ndarray:
    """Solve with a range widened around ``W / k`` (for infeasible totals)."""
    wtot = float(g.w.sum())
    if k == 1:
        return np.zeros(g.n, dtype=np.int64)
    avg = wtot / k
    best, best_v = None, np.inf
    for frac in (0.0, 0.05, 0.1, 0.2, 0.4, 1.0):
        if avg > hi:
            lo_e, hi_e = lo, max(hi, avg) * (1 + frac)
        else:
            lo_e, hi_e = min(lo, avg) * (1 - frac), hi
        lab, v = _attempt(g, k, lo_e, hi_e, rng, _BACKTRACK_BUDGET + 4 * k)
        if v < best_v:
            best, best_v = _refined(g, lab, lo_e, hi_e), v
        if v <= 1e-9:
            break
    return _relabel(best)


def _attempt(
    g: Graph, k: int, lo: float, hi: float, rng: np.random.Generator, budget: int
) -> tuple[np.ndarray, float]:
    """Bisection into ``k`` regions followed by the range repair."""
    solver = _Solver(lo, hi, rng, budget=budget)
    lab, _ = solver.solve(g, k)
    lab = _relabel(lab)
    mover = Mover(g.w, g.xy, g.u, g.v, lab, int(lab.max()) + 1, lo, hi)
    mover.repair()
    return mover.lab.copy(), mover.total_violation()


def _refined(g: Graph, lab: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Compactness refinement of a labelling (keeps the ranges and connectivity)."""
    lab = _relabel(lab)
    mover = Mover(g.w, g.xy, g.u, g.v, lab, int(lab.max()) + 1, lo, hi)
    mover.refine()
    return mover.lab.copy()


def partition_region(
    weights: np.ndarray,
    xy: np.ndarray,
    edges: np.ndarray,
    lo: float,
    hi: float,
    *,
    target: float | None = None,
    seed: int = 0,
    edge_lengths: np.ndarray | None = None,
    edge_distance: np.ndarray | None = None,
    effort: str = "full",
) -> RegionResult:
    """Cut one piece of atoms into connected, compact regions of ``lo .. hi`` households.

    Parameters
    ----------
    weights : numpy.ndarray
        ``(n,)`` non-negative integer households per atom.
    xy : numpy.ndarray
        ``(n, 2)`` atom locations in metres.
    edges : numpy.ndarray
        ``(m, 2)`` int adjacency pairs (undirected; duplicates and both directions allowed).
    lo, hi : float
        Inclusive household range of a region (e.g. 300 and 500).
    target : float, optional
        Preferred region size, used to choose the number of regions ``k`` among the
        feasible ones. Default ``(lo + hi) / 2``.
    seed : int, default 0
        Seed of the random choices; the same input and seed give the same labels.
    edge_lengths : numpy.ndarray, optional
        ``(m,)`` shared-border length per edge; used as the cost of cutting the edge
        (default: every edge costs 1).
    edge_distance : numpy.ndarray, optional
        ``(m,)`` travel distance along each edge for the geodesic cut orders (default:
        the distance between the atoms). Make it longer across barriers so that
        geodesic balls fill a block before they cross into the next one.
    effort : {"full", "quick"}
        ``"full"`` tries up to 8 feasible region counts and then backtracks before it
        gives up; ``"quick"`` tries the 2 preferred counts without backtracking, for
        probing alternatives cheaply (a quick failure may still have a solution).

    Returns
    -------
    RegionResult
        Labels, number of regions, households per region, per-region status and a note.

    Raises
    ------
    gridmap.errors.InputError
        If the arrays have wrong shapes, negative weights, or ``lo > hi``.

    Notes
    -----
    If the graph is disconnected, every connected component is partitioned on its own
    (regions never span two components) and the note says so.
    """
    w = np.asarray(weights)
    n = len(w)
    if w.ndim != 1:
        raise InputError(f"weights must be 1-d, got shape {w.shape}", where="weights")
    if n and (not np.all(np.isfinite(w)) or (w < 0).any()):
        raise InputError("weights must be finite and non-negative", where="weights")
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape != (n, 2):
        raise InputError(f"xy must have shape ({n}, 2), got {xy.shape}", where="xy")
    if not (0 < lo <= hi):
        raise InputError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}", where="lo/hi")
    if target is None:
        target = (lo + hi) / 2.0
    if effort not in ("full", "quick"):
        raise InputError(f"effort must be 'full' or 'quick', got {effort!r}", where="effort")
    if edge_lengths is not None:
        edge_lengths = np.asarray(edge_lengths, dtype=np.float64).ravel()
        if len(edge_lengths) != len(np.asarray(edges).reshape(-1, 2)):
            raise InputError("edge_lengths must have one value per edge", where="edge_lengths")
    if n == 0:
        return RegionResult(np.zeros(0, dtype=np.int64), 0, np.zeros(0, dtype=np.int64), [], "")
    wf = w.astype(np.float64)
    if edge_distance is not None:
        edge_distance = np.asarray(edge_distance, dtype=np.float64).ravel()
        if len(edge_distance) != len(np.asarray(edges).reshape(-1, 2)):
            raise InputError("edge_distance must have one value per edge", where="edge_distance")
        both = np.column_stack(
            [np.ones(len(edge_distance)) if edge_lengths is None else edge_lengths, edge_distance]
        )
        u, v, packed = clean_edges(n, edges, both)
        lens = None if edge_lengths is None else packed[:, 0]
        el = np.maximum(packed[:, 1], 0.0) + 1e-3
    else:
        u, v, lens = clean_edges(n, edges, edge_lengths)
        el = np.hypot(*(xy[u] - xy[v]).T) + 1e-3
    cost = np.ones(len(u)) if lens is None else np.maximum(lens, 0.0) + 1e-6
    rng = np.random.default_rng(seed)

    comp = connected_components_of(n, np.stack([u, v], axis=1))
    ncomp = int(comp.max()) + 1
    # group atoms and edges by component once (pieces may hold many isolated atoms)
    atom_order = np.argsort(comp, kind="stable")
    atom_bounds = np.r_[0, np.cumsum(np.bincount(comp, minlength=ncomp))]
    loc = np.empty(n, dtype=np.int64)
    loc[atom_order] = np.arange(n) - atom_bounds[comp[atom_order]]
    ecomp = comp[u]
    edge_order = np.argsort(ecomp, kind="stable")
    edge_bounds = np.r_[0, np.cumsum(np.bincount(ecomp, minlength=ncomp))]
    labels = np.empty(n, dtype=np.int64)
    status: list[str] = []
    notes: list[str] = []
    offset = 0
    for c in range(ncomp):
        idx = atom_order[atom_bounds[c] : atom_bounds[c + 1]]
        es = edge_order[edge_bounds[c] : edge_bounds[c + 1]]
        g = Graph(idx, wf[idx], xy[idx], loc[u[es]], loc[v[es]], cost[es], el[es])
        lab, st, note = _partition_connected(
            g, float(lo), float(hi), float(target), rng, quick=effort == "quick"
        )
        labels[idx] = lab + offset
        offset += len(st)
        status.extend(st)
        if note:
            notes.append(note if ncomp == 1 else f"component {c}: {note}")
    if ncomp > 1:
        notes.insert(
            0,
            f"the adjacency graph has {ncomp} connected components; "
            "each was partitioned on its own",
        )
    rw = np.bincount(labels, weights=wf, minlength=offset)
    return RegionResult(
        labels=labels,
        k=offset,
        weights=np.rint(rw).astype(np.int64),
        status=status,
        note="; ".join(notes),
    )
