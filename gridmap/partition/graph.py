"""Graph helpers of the partition: connected components, random spanning trees, edge
lists, and the atom graph the bisection works on.

Small graphs use plain Python (union-find, Kruskal): scipy's per-call overhead (sparse
construction and graph validation) dominates below a few hundred edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import InputError

__all__ = [
    "Graph",
    "SMALL_GRAPH",
    "clean_edges",
    "components",
    "connected_components_of",
    "spanning_tree",
    "subtree_sums",
    "violation",
]

SMALL_GRAPH = 400  # edges; below this connectivity uses a Python union-find
_TINY_GRAPH = 64  # nodes; below this the component labels are found in Python too


def components(n: int, u: np.ndarray, v: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the graph ``(range(n), zip(u, v))``.

    Small graphs use a Python union-find (scipy's per-call overhead dominates there),
    larger ones :func:`scipy.sparse.csgraph.connected_components`.
    """
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    if len(u) <= SMALL_GRAPH:
        parent = list(range(n))
        count = n
        for a, b in zip(u.tolist(), v.tolist(), strict=True):
            if _union(parent, a, b):
                count -= 1
        if n <= _TINY_GRAPH:  # labels in plain Python: numpy calls cost more here
            roots_l = [_root(parent, i) for i in range(n)]
            rank = {r: k for k, r in enumerate(sorted(set(roots_l)))}
            return count, np.array([rank[r] for r in roots_l], dtype=np.int64)
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


def spanning_tree(
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
    if len(u) > SMALL_GRAPH:
        tree = csgraph.minimum_spanning_tree(sparse.csr_matrix((weight, (u, v)), shape=(n, n)))
        return csgraph.depth_first_order(tree, root, directed=False)
    parent = list(range(n))
    adj: list[list[int]] = [[] for _ in range(n)]
    uu, vv = u.tolist(), v.tolist()
    for i in np.argsort(weight, kind="stable").tolist():
        a, b = uu[i], vv[i]
        if _union(parent, a, b):
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


def subtree_sums(
    pre: np.ndarray, pred: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weight and node count of every node's subtree in a tree walked by
    :func:`spanning_tree` (`pre` its preorder, `pred` the parents)."""
    predl = pred.tolist()
    sw = np.asarray(weight, dtype=np.float64).tolist()
    sn = [1] * len(sw)
    for x in pre[::-1].tolist():
        px = predl[x]
        if px >= 0:
            sw[px] += sw[x]
            sn[px] += sn[x]
    return np.asarray(sw), np.asarray(sn, dtype=np.int64)


def clean_edges(n: int, edges: np.ndarray, lengths: np.ndarray | None):
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
    _, lab = components(len(nodes), local[e[:, 0]], local[e[:, 1]])
    # renumber by first appearance so the numbering does not depend on scipy internals
    _, first = np.unique(lab, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    out[nodes] = rank[lab]
    return out


@dataclass
class Graph:
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

    def sub(self, mask: np.ndarray) -> Graph:
        loc = np.cumsum(mask) - 1
        keep = mask[self.u] & mask[self.v]
        return Graph(
            self.idx[mask],
            self.w[mask],
            self.xy[mask],
            loc[self.u[keep]],
            loc[self.v[keep]],
            self.c[keep],
            self.el[keep],
        )


def violation(weights: np.ndarray, lo: float, hi: float) -> float:
    w = np.asarray(weights, dtype=np.float64)
    return float(np.sum(np.maximum(lo - w, 0.0) + np.maximum(w - hi, 0.0)))


def _root(parent: list[int], a: int) -> int:
    """The root of `a` in a union-find forest (halving the path on the way)."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _union(parent: list[int], a: int, b: int) -> bool:
    """Join the sets of `a` and `b` in a union-find forest; whether they were apart."""
    a, b = _root(parent, a), _root(parent, b)
    if a == b:
        return False
    parent[a] = b
    return True
