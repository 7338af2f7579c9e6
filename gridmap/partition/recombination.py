"""Repair and recombination across the regions of a community: moves of atoms between
neighbouring grids, then ReCom-style recombination (two or three neighbouring grids
merged and re-split along a balanced cut of a random spanning tree).
"""

from __future__ import annotations

import numpy as np

from .graph import clean_edges, components, spanning_tree, subtree_sums
from .moves import Mover

__all__ = ["recombine", "repair_labels"]


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
    u, v, _ = clean_edges(len(idx), e, None)
    regions, lab = np.unique(labels[idx], return_inverse=True)
    mover = Mover(w[idx], np.asarray(xy, dtype=np.float64)[idx], u, v, lab, len(regions), lo, hi)
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
    if n < k or components(n, u, v)[0] != 1:
        return None
    ww = w[atoms]
    rlo, rhi = (k - 1) * lo, (k - 1) * hi
    for _ in range(trees):
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        jit = rng.random(len(u)) + 1e-3
        root = int(rng.integers(n))
        pre, pred = spanning_tree(n, u, v, jit, root)
        if len(pre) < n:
            continue
        sub, size = subtree_sums(pre, pred, ww)
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
