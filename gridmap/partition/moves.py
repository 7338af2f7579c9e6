"""Local moves between the regions of a piece: repair of regions out of range by chains
of single-atom moves, and refinement of their shape (Hartigan's exact k-means gain),
each move guarded so that every region stays connected.
"""

from __future__ import annotations

import numpy as np

from .graph import components, violation

__all__ = ["Mover"]

_REFINE_PASSES = 8
_REPAIR_ROUNDS = 30


class Mover:
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
        return violation(self.region_weights(), self.lo, self.hi)

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
        return components(len(nodes), loc[self.u[inside]], loc[self.v[inside]])[0] == 1

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
