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

__all__ = [
    "RegionResult",
    "connected_components_of",
    "partition_region",
    "recombine",
    "repair_labels",
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
_REFINE_PASSES = 8
_REPAIR_ROUNDS = 30
_SMALL_GRAPH = 400  # edges; below this connectivity uses a Python union-find


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


# --- graph helpers ----------------------------------------------------------------------
def _components(n: int, u: np.ndarray, v: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the graph ``(range(n), zip(u, v))``.

    Small graphs use a Python union-find (scipy's per-call overhead dominates there),
    larger ones :func:`scipy.sparse.csgraph.connected_components`.
    """
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    if len(u) <= _SMALL_GRAPH:
        parent = list(range(n))
        count = n
        for a, b in zip(u.tolist(), v.tolist(), strict=True):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            if a != b:
                parent[a] = b
                count -= 1
        roots = np.asarray(parent)
        for _ in range(64):  # pointer jumping to the roots
            nxt = roots[roots]
            if np.array_equal(nxt, roots):
                break
            roots = nxt
        _, lab = np.unique(roots, return_inverse=True)
        return count, lab.ravel().astype(np.int64)
    # build the CSR arrays directly (cheaper than a COO conversion)
    order = np.argsort(u, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(u, minlength=n), out=indptr[1:])
    a = sparse.csr_matrix((np.ones(len(u)), v[order].astype(np.int32), indptr), shape=(n, n))
    ncomp, lab = csgraph.connected_components(a, directed=True, connection="weak")
    return int(ncomp), lab.astype(np.int64)


def _spanning_tree(
    n: int, u: np.ndarray, v: np.ndarray, weight: np.ndarray, root: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning tree of ``(range(n), zip(u, v))`` under `weight`, walked depth
    first from `root`.

    Returns the preorder (every subtree is a contiguous run of it) and each node's
    parent (``-9999`` for the root, as :func:`scipy.sparse.csgraph.depth_first_order`
    gives). Nodes the tree does not reach are missing from the preorder. Small graphs
    use Kruskal with a Python union-find and an explicit stack: scipy's per-call
    overhead (sparse construction and graph validation) dominates there.
    """
    if len(u) > _SMALL_GRAPH:
        tree = csgraph.minimum_spanning_tree(sparse.csr_matrix((weight, (u, v)), shape=(n, n)))
        return csgraph.depth_first_order(tree, root, directed=False)
    parent = list(range(n))
    adj: list[list[int]] = [[] for _ in range(n)]
    uu, vv = u.tolist(), v.tolist()
    for i in np.argsort(weight, kind="stable").tolist():
        a, b = uu[i], vv[i]
        ra, rb = a, b
        while parent[ra] != ra:
            parent[ra] = parent[parent[ra]]
            ra = parent[ra]
        while parent[rb] != rb:
            parent[rb] = parent[parent[rb]]
            rb = parent[rb]
        if ra != rb:
            parent[ra] = rb
            adj[a].append(b)
            adj[b].append(a)
    pred = [-9999] * n
    seen = [False] * n
    seen[root] = True
    pre: list[int] = []
    stack = [root]
    while stack:
        x = stack.pop()
        pre.append(x)
        for y in reversed(adj[x]):
            if not seen[y]:
                seen[y] = True
                pred[y] = x
                stack.append(y)
    return np.asarray(pre, dtype=np.int32), np.asarray(pred, dtype=np.int32)


def _clean_edges(n: int, edges: np.ndarray, lengths: np.ndarray | None):
    """Drop self loops, orient ``u < v`` and deduplicate; lengths of duplicates are summed
    only once (the first occurrence wins)."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(e) and (e.min() < 0 or e.max() >= n):
        raise InputError(f"edges refer to atoms outside 0..{n - 1}", where="edges")
    u = np.minimum(e[:, 0], e[:, 1])
    v = np.maximum(e[:, 0], e[:, 1])
    keep = u != v
    u, v = u[keep], v[keep]
    lens = None if lengths is None else np.asarray(lengths, dtype=np.float64)[keep]
    key = u * n + v
    _, first = np.unique(key, return_index=True)
    first.sort()
    u, v = u[first], v[first]
    if lens is not None:
        lens = lens[first]
    return u, v, lens


def connected_components_of(
    n: int, edges: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Label the connected components of a graph, or of the subgraph induced by ``mask``.

    Parameters
    ----------
    n : int
        Number of nodes.
    edges : numpy.ndarray
        ``(m, 2)`` int node pairs (undirected; duplicates and both directions allowed).
    mask : numpy.ndarray, optional
        ``(n,)`` bool; only these nodes and the edges between them are used.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 component label ``0 .. c-1`` per node (numbered in order of the
        lowest node index), ``-1`` for nodes outside ``mask``.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(e) and (e.min() < 0 or e.max() >= n):
        raise InputError(f"edges refer to nodes outside 0..{n - 1}", where="edges")
    out = np.full(n, -1, dtype=np.int64)
    if mask is None:
        nodes = np.arange(n)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n,):
            raise InputError(f"mask must have shape ({n},), got {mask.shape}", where="mask")
        nodes = np.flatnonzero(mask)
        keep = mask[e[:, 0]] & mask[e[:, 1]]
        e = e[keep]
    if len(nodes) == 0:
        return out
    local = np.full(n, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    _, lab = _components(len(nodes), local[e[:, 0]], local[e[:, 1]])
    # renumber by first appearance so the numbering does not depend on scipy internals
    _, first = np.unique(lab, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    out[nodes] = rank[lab]
    return out


@dataclass
class _Graph:
    """A connected set of atoms in local numbering (a node of the bisection tree)."""

    idx: np.ndarray  # global atom ids
    w: np.ndarray  # float64 weights
    xy: np.ndarray  # (n, 2)
    u: np.ndarray  # local edge ends, u < v
    v: np.ndarray
    c: np.ndarray  # cut cost per edge
    el: np.ndarray  # euclidean length per edge (> 0)

    @property
    def n(self) -> int:
        return len(self.idx)

    def sub(self, mask: np.ndarray) -> _Graph:
        loc = np.cumsum(mask) - 1
        keep = mask[self.u] & mask[self.v]
        return _Graph(
            self.idx[mask],
            self.w[mask],
            self.xy[mask],
            loc[self.u[keep]],
            loc[self.v[keep]],
            self.c[keep],
            self.el[keep],
        )


def _violation(weights: np.ndarray, lo: float, hi: float) -> float:
    w = np.asarray(weights, dtype=np.float64)
    return float(np.sum(np.maximum(lo - w, 0.0) + np.maximum(w - hi, 0.0)))


# --- the bisection solver ---------------------------------------------------------------
class _Solver:
    """Recursive-bisection solver for one connected piece and one range."""

    def __init__(self, lo: float, hi: float, rng: np.random.Generator, budget: int):
        self.lo = float(lo)
        self.hi = float(hi)
        self.rng = rng
        self.budget = budget

    # candidate orderings ---------------------------------------------------------------
    def _straight_orders(self, g: _Graph) -> np.ndarray:
        """Atom orders along ``_N_DIRECTIONS`` directions (random common offset)."""
        xc = g.xy - g.xy.mean(axis=0)
        offset = self.rng.random()
        ang = (np.arange(_N_DIRECTIONS) + offset) * (np.pi / _N_DIRECTIONS)
        proj = (xc @ np.stack([np.cos(ang), np.sin(ang)])).T  # (D, n)
        return np.argsort(proj, axis=1)

    def _geodesic_orders(self, g: _Graph, straight: np.ndarray) -> np.ndarray:
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

    def _evaluate(self, g: _Graph, k: int, orders: np.ndarray, relaxed: bool, cref):
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

    def _ordering_candidates(self, g: _Graph, k: int, relaxed: bool = False):
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

    def _tree_candidates(self, g: _Graph, k: int, relaxed: bool = False):
        """Yield cuts of random spanning trees (always connected on both sides)."""
        n = g.n
        wtot = float(g.w.sum())
        wins = [w for w in self._windows(wtot, k, self.lo, self.hi) if relaxed or w[2] <= w[3]]
        if not wins or n < 2:
            return
        for _ in range(_N_TREES):
            jit = g.el * (1.0 + self.rng.random(len(g.el)))
            root = int(self.rng.integers(n))
            pre, pred = _spanning_tree(n, g.u, g.v, jit, root)
            if len(pre) < n:
                return
            sub_w = g.w.astype(np.float64).copy()
            sub_n = np.ones(n, dtype=np.int64)
            predl = pred.tolist()
            sw = sub_w.tolist()
            sn = sub_n.tolist()
            for x in pre[::-1].tolist():
                px = predl[x]
                if px >= 0:
                    sw[px] += sw[x]
                    sn[px] += sn[x]
            sub_w = np.asarray(sw)
            sub_n = np.asarray(sn)
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
    def _connected_split(self, g: _Graph, mask: np.ndarray, ka: int, kb: int, window):
        """Return a connected version of the split ``mask`` / ``~mask`` or None."""
        n = g.n
        lw, uw = window if window is not None else (-np.inf, np.inf)
        keep = mask[g.u] == mask[g.v]
        ncomp, comp = _components(n, g.u[keep], g.v[keep])
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
            if _components(n, g.u[keep], g.v[keep])[0] == 2:
                return new
        return None

    # recursion --------------------------------------------------------------------------
    def solve(self, g: _Graph, k: int) -> tuple[np.ndarray, float]:
        """Labels ``0..k'-1`` (``k' <= k``) for the atoms of ``g`` and their violation."""
        wtot = float(g.w.sum())
        if k <= 1 or g.n <= 1:
            return np.zeros(g.n, dtype=np.int64), _violation([wtot], self.lo, self.hi)
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
            return np.zeros(g.n, dtype=np.int64), _violation([wtot], self.lo, self.hi)
        return best


# --- local moves: repair and refinement -------------------------------------------------
class _Mover:
    """Boundary-atom moves between regions with a connectivity guard.

    Region statistics (weight, atom count, coordinate sums) are kept in Python lists
    because the move loops touch them one at a time.
    """

    def __init__(self, w, xy, u, v, labels, k, lo, hi):
        n = len(w)
        self.n = n
        self.w = np.asarray(w, dtype=np.float64)
        self.xy = np.asarray(xy, dtype=np.float64)
        self.u = u
        self.v = v
        # neighbour lists, sorted and without repeats (numpy: cheaper than a sparse matrix)
        key = np.unique(np.r_[u, v].astype(np.int64) * n + np.r_[v, u])
        ind = (key % n).tolist()
        ptr = np.searchsorted(key // n, np.arange(n + 1)).tolist()
        self.adj = [ind[ptr[i] : ptr[i + 1]] for i in range(n)]
        self.wl = self.w.tolist()
        self.xl = self.xy[:, 0].tolist()
        self.yl = self.xy[:, 1].tolist()
        self.lab = np.asarray(labels, dtype=np.int64).copy()
        self.labl = self.lab.tolist()
        self.k = k
        self.lo = float(lo)
        self.hi = float(hi)
        self.rw = np.bincount(self.lab, weights=self.w, minlength=k).tolist()
        self.rn = np.bincount(self.lab, minlength=k).astype(np.float64).tolist()
        self.sx = np.bincount(self.lab, weights=self.xy[:, 0], minlength=k).tolist()
        self.sy = np.bincount(self.lab, weights=self.xy[:, 1], minlength=k).tolist()

    # basic operations --------------------------------------------------------------------
    def region_weights(self) -> np.ndarray:
        return np.asarray(self.rw, dtype=np.float64)

    def _viol(self, wr: float) -> float:
        return max(self.lo - wr, 0.0) + max(wr - self.hi, 0.0)

    def total_violation(self) -> float:
        return _violation(self.region_weights(), self.lo, self.hi)

    def _move(self, a: int, r: int, s: int) -> None:
        wa = self.wl[a]
        x = self.xl[a]
        y = self.yl[a]
        self.rw[r] -= wa
        self.rw[s] += wa
        self.rn[r] -= 1.0
        self.rn[s] += 1.0
        self.sx[r] -= x
        self.sx[s] += x
        self.sy[r] -= y
        self.sy[s] += y
        self.lab[a] = s
        self.labl[a] = s

    def _gain(self, a: int, r: int, s: int) -> float:
        """Decrease of the total inertia when ``a`` moves from ``r`` to ``s`` (exact)."""
        nr = self.rn[r]
        ns = self.rn[s]
        if nr <= 1.0:
            return -np.inf
        x = self.xl[a]
        y = self.yl[a]
        dr = (x - self.sx[r] / nr) ** 2 + (y - self.sy[r] / nr) ** 2
        ds = (x - self.sx[s] / ns) ** 2 + (y - self.sy[s] / ns) ** 2
        return nr / (nr - 1.0) * dr - ns / (ns + 1.0) * ds

    def _stays_connected(self, a: int, r: int) -> bool:
        """True if region ``r`` stays connected without atom ``a``.

        A sufficient local test: the neighbours of ``a`` inside ``r`` must be connected
        to each other through atoms of ``r`` within two hops of ``a``. Any path through
        ``a`` can then be rerouted, so the region stays connected.
        """
        lab = self.labl
        adj = self.adj
        nb = [x for x in adj[a] if lab[x] == r]
        if len(nb) <= 1:
            return len(nb) == 1
        targets = set(nb)
        seen = {nb[0]}
        stack = [nb[0]]
        while stack:  # one hop: through the other neighbours only
            x = stack.pop()
            for y in adj[x]:
                if y in targets and y not in seen:
                    seen.add(y)
                    stack.append(y)
        if len(seen) == len(targets):
            return True
        allowed = set(targets)
        for x in nb:
            for y in adj[x]:
                if y != a and lab[y] == r:
                    allowed.add(y)
        stack = list(seen)
        while stack:  # two hops
            x = stack.pop()
            for y in adj[x]:
                if y in allowed and y not in seen:
                    seen.add(y)
                    stack.append(y)
        return targets.issubset(seen)

    def _region_connected(self, r: int) -> bool:
        nodes = np.flatnonzero(self.lab == r)
        if len(nodes) <= 1:
            return len(nodes) == 1
        inside = (self.lab[self.u] == r) & (self.lab[self.v] == r)
        loc = np.full(self.n, -1, dtype=np.int64)
        loc[nodes] = np.arange(len(nodes))
        return _components(len(nodes), loc[self.u[inside]], loc[self.v[inside]])[0] == 1

    def _boundary_moves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All boundary moves (atom, from, to) with their inertia gain, vectorised."""
        lu = self.lab[self.u]
        lv = self.lab[self.v]
        cut = lu != lv
        a = np.r_[self.u[cut], self.v[cut]]
        s = np.r_[lv[cut], lu[cut]]
        if len(a):
            key = np.unique(a * self.k + s)
            a, s = key // self.k, key % self.k
        r = self.lab[a]
        rn = np.asarray(self.rn)
        nr = rn[r]
        ns = rn[s]
        cx = np.asarray(self.sx) / np.maximum(rn, 1.0)
        cy = np.asarray(self.sy) / np.maximum(rn, 1.0)
        px, py = self.xy[a, 0], self.xy[a, 1]
        dr = (px - cx[r]) ** 2 + (py - cy[r]) ** 2
        ds = (px - cx[s]) ** 2 + (py - cy[s]) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(nr > 1, nr / (nr - 1) * dr - ns / (ns + 1) * ds, -np.inf)
        return a, r, s, gain

    # compactness refinement -----------------------------------------------------------------
    def refine(self, passes: int = _REFINE_PASSES) -> int:
        """Inertia-lowering moves that keep every region in range (regions already out
        of range may only get closer) and connected. Returns the number of moves."""
        total = 0
        if self.n < 2:
            return 0
        scale = float(np.ptp(self.xy, axis=0).max() ** 2)
        tol = 1e-9 * max(scale, 1.0)
        lo, hi = self.lo, self.hi
        rw, labl, wl, adj = self.rw, self.labl, self.wl, self.adj
        for _ in range(passes):
            a, r, s, gain = self._boundary_moves()
            idx = np.flatnonzero(gain > tol)
            if not len(idx):
                break
            idx = idx[np.argsort(-gain[idx], kind="stable")]
            moved = 0
            for aa, ss in zip(a[idx].tolist(), s[idx].tolist(), strict=True):
                rr = labl[aa]
                if rr == ss:
                    continue
                wa = wl[aa]
                if not (rw[rr] - wa >= lo - 1e-9 and rw[ss] + wa <= hi + 1e-9):
                    before = self._viol(rw[rr]) + self._viol(rw[ss])
                    if self._viol(rw[rr] - wa) + self._viol(rw[ss] + wa) > before + 1e-9:
                        continue
                if self._gain(aa, rr, ss) <= tol:
                    continue
                if not any(labl[x] == ss for x in adj[aa]):
                    continue
                if not self._stays_connected(aa, rr):
                    continue
                self._move(aa, rr, ss)
                moved += 1
            total += moved
            if moved * 200 < len(idx):  # converged: the last pass changed almost nothing
                break
        return total

    # range repair ---------------------------------------------------------------------------
    def repair(self, rounds: int = _REPAIR_ROUNDS) -> bool:
        """Lower the total range violation by moving boundary atoms along chains of
        neighbouring regions (a chain of length one is a direct move).

        Returns
        -------
        bool
            True if every region ends in range.
        """
        banned: set[int] = set()
        rounds = max(rounds, 10 * self.k)
        for _ in range(rounds):
            rw = self.region_weights()
            viol = np.maximum(self.lo - rw, 0) + np.maximum(rw - self.hi, 0)
            if not (viol > 1e-9).any():
                return True
            arcs = self._arcs()
            improved = False
            for b in np.argsort(-viol, kind="stable").tolist():
                if viol[b] <= 1e-9:
                    break
                if self._viol(self.rw[b]) <= 1e-9:
                    continue  # fixed by an earlier chain of this round
                path = self._find_chain(b, arcs, banned)
                if path is not None and self._apply(path, banned):
                    improved = True
            if not improved:
                return False
        return self.total_violation() <= 1e-9

    def _arcs(self):
        """Movable boundary atoms per (region, neighbouring region), best gain first,
        and the out- and in-neighbour lists of the region graph."""
        a, r, s, gain = self._boundary_moves()
        keep = (self.w[a] > 0) & np.isfinite(gain)
        a, r, s, gain = a[keep], r[keep], s[keep], gain[keep]
        order = np.lexsort((-gain, s, r))
        a, r, s = a[order], r[order], s[order]
        if not len(a):
            return {}, {}, {}
        first = np.flatnonzero(np.r_[True, (r[1:] != r[:-1]) | (s[1:] != s[:-1])])
        bounds = np.r_[first, len(a)].tolist()
        al = a.tolist()
        arcs: dict[tuple[int, int], list[int]] = {}
        out_nbrs: dict[int, list[int]] = {}
        in_nbrs: dict[int, list[int]] = {}
        for j, (rr, ss) in enumerate(zip(r[first].tolist(), s[first].tolist(), strict=True)):
            arcs[(rr, ss)] = al[bounds[j] : bounds[j + 1]]
            out_nbrs.setdefault(rr, []).append(ss)
            in_nbrs.setdefault(ss, []).append(rr)
        return arcs, out_nbrs, in_nbrs

    def _pick(
        self, atoms, r: int, dst: int, wmin: float, wmax: float, banned: set[int], heaviest=False
    ):
        """The lightest (or heaviest) atom of ``atoms`` in region ``r`` next to region
        ``dst`` with weight in ``[wmin, wmax]`` whose removal keeps ``r`` connected; None
        if there is none."""
        best, best_w = None, (-np.inf if heaviest else np.inf)
        labl = self.labl
        for aa in atoms:
            wa = self.wl[aa]
            if wa < wmin - 1e-9 or wa > wmax + 1e-9 or aa in banned:
                continue
            if (wa <= best_w) if heaviest else (wa >= best_w):
                continue
            if labl[aa] != r or not any(labl[x] == dst for x in self.adj[aa]):
                continue
            if not self._stays_connected(aa, r):
                continue
            best, best_w = aa, wa
        return best

    def _find_chain(self, b: int, arcs, banned: set[int]):
        """Breadth-first search over regions for a chain of single-atom moves that
        lowers the violation of region ``b``: an over-full ``b`` pushes an atom to a
        neighbour, which pushes one on if it overflows, and so on; an under-full ``b``
        pulls atoms the same way. Returns a list of (atom, from, to) or None."""
        lo, hi = self.lo, self.hi
        over = self.rw[b] > hi
        arcs, out_nbrs, in_nbrs = arcs
        nbrs_of = out_nbrs if over else in_nbrs
        queue = [(b, 0.0, [])]
        seen = {b}
        partial = None
        while queue:
            nxt = []
            for x, carry, chain in queue:
                # weight of x once the previous hop is applied
                wx = self.rw[x] + carry if over else self.rw[x] - carry
                for y in nbrs_of.get(x, []):
                    if y in seen:
                        continue
                    if over:  # x gives one atom to y and must end in range
                        src, dst, wmin, wmax = x, y, wx - hi, wx - lo
                    else:  # x takes one atom from y and must end in range
                        src, dst, wmin, wmax = y, x, lo - wx, hi - wx
                    atoms = arcs[(src, dst)]
                    a = self._pick(atoms, src, dst, max(wmin, 1e-9), wmax, banned)
                    if a is None:
                        if x == b:  # partial direct move: y must stay in range
                            if over:
                                cap = min(wx - lo, hi - self.rw[y])
                            else:
                                cap = min(hi - wx, self.rw[y] - lo)
                            a = self._pick(atoms, src, dst, 1e-9, cap, banned, heaviest=True)
                            if a is not None and (partial is None or self.wl[a] > partial[1]):
                                partial = ([(a, src, dst)], self.wl[a])
                        continue
                    wa = self.wl[a]
                    wy = self.rw[y] + wa if over else self.rw[y] - wa
                    step = (a, src, dst)
                    if (wy <= hi + 1e-9) if over else (wy >= lo - 1e-9):
                        return chain + [step]
                    seen.add(y)
                    nxt.append((y, wa, chain + [step]))
            queue = nxt
        return None if partial is None else partial[0]

    def _apply(self, chain, banned: set[int]) -> bool:
        """Apply a chain of moves; undo it (and ban its first atom) unless it lowers the
        total violation and keeps every touched region connected."""
        v0 = self.total_violation()
        for a, r, s in chain:
            self._move(a, r, s)
        touched = {r for _, r, _ in chain} | {s for _, _, s in chain}
        ok = self.total_violation() < v0 - 1e-9
        ok = ok and all(self._region_connected(x) for x in touched)
        if not ok:
            for a, r, s in reversed(chain):
                self._move(a, s, r)
            banned.add(chain[0][0])
        return ok


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
    g: _Graph, lo: float, hi: float, target: float, rng: np.random.Generator, quick: bool = False
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


def _solve_relaxed(g: _Graph, k: int, lo: float, hi: float, rng) -> np.ndarray:
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
    g: _Graph, k: int, lo: float, hi: float, rng: np.random.Generator, budget: int
) -> tuple[np.ndarray, float]:
    """Bisection into ``k`` regions followed by the range repair."""
    solver = _Solver(lo, hi, rng, budget=budget)
    lab, _ = solver.solve(g, k)
    lab = _relabel(lab)
    mover = _Mover(g.w, g.xy, g.u, g.v, lab, int(lab.max()) + 1, lo, hi)
    mover.repair()
    return mover.lab.copy(), mover.total_violation()


def _refined(g: _Graph, lab: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Compactness refinement of a labelling (keeps the ranges and connectivity)."""
    lab = _relabel(lab)
    mover = _Mover(g.w, g.xy, g.u, g.v, lab, int(lab.max()) + 1, lo, hi)
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
        u, v, packed = _clean_edges(n, edges, both)
        lens = None if edge_lengths is None else packed[:, 0]
        el = np.maximum(packed[:, 1], 0.0) + 1e-3
    else:
        u, v, lens = _clean_edges(n, edges, edge_lengths)
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
        g = _Graph(idx, wf[idx], xy[idx], loc[u[es]], loc[v[es]], cost[es], el[es])
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


def repair_labels(
    weights: np.ndarray,
    xy: np.ndarray,
    edges: np.ndarray,
    labels: np.ndarray,
    lo: float,
    hi: float,
    *,
    movable: np.ndarray | None = None,
) -> np.ndarray:
    """Bring regions of an existing labelling into range by moving boundary atoms.

    The range repair and compactness refinement of :func:`partition_region`, run on a
    whole graph whose regions were made separately (e.g. block by block): atoms move
    between neighbouring regions only when that lowers the total range violation (or,
    in the refinement, makes regions rounder while keeping them in range), and every
    region stays connected.

    Parameters
    ----------
    weights : numpy.ndarray
        ``(n,)`` households per atom.
    xy : numpy.ndarray
        ``(n, 2)`` atom locations (m).
    edges : numpy.ndarray
        ``(m, 2)`` adjacency pairs.
    labels : numpy.ndarray
        ``(n,)`` region of every atom (``0 .. k-1``; regions must be connected).
    lo, hi : float
        The household range of the regions.
    movable : numpy.ndarray, optional
        ``(n,)`` bool; only these atoms take part (the others and their regions are left
        as they are).

    Returns
    -------
    numpy.ndarray
        New labels (same numbering; a region is never emptied).
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    labels = np.asarray(labels, dtype=np.int64)
    mov = np.ones(n, dtype=bool) if movable is None else np.asarray(movable, dtype=bool)
    idx = np.flatnonzero(mov)
    out = labels.copy()
    if len(idx) < 2:
        return out
    local = np.full(n, -1, dtype=np.int64)
    local[idx] = np.arange(len(idx))
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = local[e]
    e = e[(e >= 0).all(axis=1)]
    u, v, _ = _clean_edges(len(idx), e, None)
    regions, lab = np.unique(labels[idx], return_inverse=True)
    mover = _Mover(w[idx], np.asarray(xy, dtype=np.float64)[idx], u, v, lab, len(regions), lo, hi)
    mover.repair()
    mover.refine()
    new = mover.lab
    if len(np.unique(new)) < len(regions):  # pragma: no cover - moves never empty a region
        return out
    out[idx] = regions[new]
    return out


def recombine(
    weights: np.ndarray,
    edges: np.ndarray,
    labels: np.ndarray,
    lo: float,
    hi: float,
    *,
    cost: np.ndarray | None = None,
    movable: np.ndarray | None = None,
    trees: int = 24,
    seed: int = 0,
    budget: int = 600,
) -> np.ndarray:
    """Fix regions out of range by recombining them with a neighbour (ReCom).

    For a region out of range and each neighbouring region, the two are merged and
    split again along a cut of a random spanning tree of their union so that both
    sides are in range (a subtree and its complement are always connected). Among the
    balanced cuts found, the cheapest (by `cost`) is kept. This is the recombination
    step of GerryChain's ReCom, used here as a repair.

    Parameters
    ----------
    weights : numpy.ndarray
        ``(n,)`` households per atom.
    edges : numpy.ndarray
        ``(m, 2)`` adjacency pairs.
    labels : numpy.ndarray
        ``(n,)`` region of every atom.
    lo, hi : float
        Household range of the regions.
    cost : numpy.ndarray, optional
        ``(m,)`` cost of cutting each edge (default 1).
    movable : numpy.ndarray, optional
        ``(n,)`` bool; only regions made of these atoms take part.
    trees : int
        Random spanning trees tried per pair (or triple) of regions.
    seed : int
    budget : int
        Spanning trees drawn in all (bounds the time on hopeless cases).

    Returns
    -------
    numpy.ndarray
        New labels (same region numbers).
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    lab = np.asarray(labels, dtype=np.int64).copy()
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    c = np.ones(len(e)) if cost is None else np.asarray(cost, dtype=np.float64)
    mov = np.ones(n, dtype=bool) if movable is None else np.asarray(movable, dtype=bool)
    mov = mov & (lab >= 0)
    if n < 2 or len(e) == 0 or not mov.any():
        return lab
    rng = np.random.default_rng(seed)
    ok_e = mov[e[:, 0]] & mov[e[:, 1]]
    e, c = e[ok_e], c[ok_e]
    k = int(lab.max()) + 1
    left = [budget]

    def region_weights() -> np.ndarray:
        return np.bincount(lab[mov], weights=w[mov], minlength=k)

    for _ in range(3):  # a few sweeps: a fix can enable the next one
        rw = region_weights()
        viol = np.maximum(lo - rw, 0) + np.maximum(rw - hi, 0)
        bad = [
            r for r in np.argsort(-viol).tolist()
            if viol[r] > 1e-9 and (lab == r).any() and mov[lab == r].all()
        ]  # fmt: skip
        if not bad:
            break
        changed = False
        for r in bad:
            rw = region_weights()
            if lo - 1e-9 <= rw[r] <= hi + 1e-9:
                continue
            lu, lv = lab[e[:, 0]], lab[e[:, 1]]
            nb = np.unique(np.r_[lv[(lu == r) & (lv != r)], lu[(lv == r) & (lu != r)]])
            nb = [q for q in nb.tolist() if q >= 0 and mov[lab == q].all()]
            nb = sorted(nb, key=lambda q: abs(rw[q] + rw[r] - (lo + hi)))
            groups = [[q] for q in nb]
            # then r with two neighbours (of r, or of r's neighbour)
            for q in nb[:4]:
                nq = np.unique(np.r_[lv[(lu == q) & (lv != q)], lu[(lv == q) & (lu != q)]])
                for q2 in nq.tolist():
                    if q2 != r and q2 >= 0 and mov[lab == q2].all():
                        groups.append(sorted({q, q2}))
            for grp in groups:
                regions = [r, *grp]
                if len(set(regions)) != len(regions):
                    continue
                if left[0] <= 0:
                    return lab
                atoms = np.flatnonzero(np.isin(lab, regions))
                parts = _tree_split(w, e, c, atoms, len(regions), lo, hi, trees, rng, left)
                if parts is not None:
                    for reg, part in zip(regions, parts, strict=True):
                        lab[part] = reg
                    changed = True
                    break
        if not changed:
            break
    return lab


def _tree_split(w, e, c, atoms, k, lo, hi, trees, rng, budget=None):
    """Split `atoms` into `k` connected parts in ``[lo, hi]`` by cuts of random spanning
    trees (one part at a time); the list of parts' atoms, or None. `budget` (a one-item
    list) caps the spanning trees drawn over the whole recursion."""
    if budget is None:
        budget = [4 * trees]
    total = float(w[atoms].sum())
    if not (k * lo - 1e-9 <= total <= k * hi + 1e-9):
        return None
    if k == 1:
        return [atoms]
    n = len(atoms)
    local = np.full(len(w), -1, dtype=np.int64)
    local[atoms] = np.arange(n)
    le = local[e]
    m = (le >= 0).all(axis=1)
    u, v, cc = le[m, 0], le[m, 1], c[m]
    if n < k or _components(n, u, v)[0] != 1:
        return None
    ww = w[atoms]
    rlo, rhi = (k - 1) * lo, (k - 1) * hi
    for _ in range(trees):
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        jit = rng.random(len(u)) + 1e-3
        root = int(rng.integers(n))
        pre, pred = _spanning_tree(n, u, v, jit, root)
        if len(pre) < n:
            continue
        predl = pred.tolist()
        sw = ww.tolist()
        sz = [1] * n
        for x in pre[::-1].tolist():
            px = predl[x]
            if px >= 0:
                sw[px] += sw[x]
                sz[px] += sz[x]
        sub = np.asarray(sw)
        size = np.asarray(sz)
        rest = total - sub
        ok = (pred >= 0) & (sub >= lo - 1e-9) & (sub <= hi + 1e-9)
        ok &= (rest >= rlo - 1e-9) & (rest <= rhi + 1e-9)
        cand = np.flatnonzero(ok)
        if not len(cand):
            continue
        pos = np.empty(n, dtype=np.int64)
        pos[pre] = np.arange(n)
        # the cheapest cut among a few balanced ones
        best, best_cost = None, np.inf
        for x in cand[:8].tolist():
            side = np.zeros(n, dtype=bool)
            side[pre[pos[x] : pos[x] + size[x]]] = True
            cut = float(cc[side[u] != side[v]].sum())
            if cut < best_cost:
                best, best_cost = side, cut
        others = _tree_split(w, e, c, atoms[~best], k - 1, lo, hi, max(4, trees // 4), rng, budget)
        if others is not None:
            return [atoms[best], *others]
    return None
