"""Plan every community of a city, in worker processes.

The communities are independent once the tessellation and the unit graph are known:
each is cut into grids by :func:`gridmap.partition.pieces.plan_community` and its
grids' faces are dissolved into polygons. Large jobs run in one forked process per core
(the workers share the prepared arrays); results come back in community order, so a plan
does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

import numpy as np
import shapely
from tqdm.auto import tqdm

from .geometry import PRECISION
from .pieces import CommunityUnits, plan_community
from .tessellation import Tessellation, dissolve

__all__ = ["CommunityJob", "plan_communities"]


@dataclass
class CommunityJob:
    """Everything the communities of a city are planned from.

    The tessellation, the unit attributes (``ua``: households, xy, difficult, rural,
    fixed special grid), each unit's community, the unit graph (edges with their
    shared length, cut cost and weakest barrier rank), the unit groups (compounds,
    villages, institutions, split buildings), the household ranges, the seed and the
    village join distance. Orders by community are built once, so each worker slices
    its community's units, edges and faces directly.
    """

    tess: Tessellation
    ua: dict
    unit_comm: np.ndarray
    edges: np.ndarray
    length: np.ndarray
    cost: np.ndarray
    rank: np.ndarray
    groups: np.ndarray
    group_kind: np.ndarray
    building_group: np.ndarray
    special_name: dict
    ranges: tuple
    seed: int
    join: float
    n_comm: int

    def __post_init__(self) -> None:
        order = np.argsort(self.unit_comm, kind="stable")
        self.unit_order = order
        self.unit_bounds = np.searchsorted(self.unit_comm[order], np.arange(self.n_comm + 1))
        fc = self.unit_comm[self.tess.unit]
        forder = np.argsort(fc, kind="stable")
        self.face_order = forder
        self.face_bounds = np.searchsorted(fc[forder], np.arange(self.n_comm + 1))
        ec = self.unit_comm[self.edges[:, 0]] if len(self.edges) else np.zeros(0, np.int64)
        eorder = np.argsort(ec, kind="stable")
        self.edge_order = eorder
        self.edge_bounds = np.searchsorted(ec[eorder], np.arange(self.n_comm + 1))


_STATE: CommunityJob | None = None


def _community(ci: int):
    job = _STATE
    uidx = job.unit_order[job.unit_bounds[ci] : job.unit_bounds[ci + 1]]
    es = job.edge_order[job.edge_bounds[ci] : job.edge_bounds[ci + 1]]
    # local numbers of the edges' ends (`uidx` is sorted: the stable order of units)
    ends = job.edges[es]
    e = np.minimum(np.searchsorted(uidx, ends), max(len(uidx) - 1, 0))
    ok = (uidx[e] == ends).all(axis=1) if len(uidx) else np.zeros(len(es), dtype=bool)
    es, e = es[ok], e[ok].astype(np.int64)
    ua = job.ua
    grp = job.groups[uidx]
    cu = CommunityUnits(
        households=ua["households"][uidx],
        xy=ua["xy"][uidx],
        difficult=ua["difficult"][uidx],
        rural=ua["rural"][uidx],
        group=grp,
        group_kind=job.group_kind,
        building_group=job.building_group[uidx],
        edges=e,
        length=job.length[es],
        cost=job.cost[es],
        rank=job.rank[es],
        fixed_special=ua["fixed"][uidx],
        special_name=job.special_name,
    )
    lab, metas = plan_community(
        cu, job.ranges, seed=job.seed * 100_003 + ci, join_distance=job.join
    )
    fidx = job.face_order[job.face_bounds[ci] : job.face_bounds[ci + 1]]
    flab = lab[np.searchsorted(uidx, job.tess.unit[fidx])]
    geoms = _one_part_each(dissolve(job.tess.faces[fidx], flab, len(metas)))
    return uidx, lab, metas, geoms


def _one_part_each(geoms: np.ndarray) -> np.ndarray:
    """Give a grid's stray slivers (parts left by faces that touch it by less than
    5 cm) to the grid they share the longest border with, so every grid is one
    Polygon; a sliver touching no other grid stays."""
    multi = np.flatnonzero(shapely.get_type_id(geoms) == 6)
    if not len(multi):
        return geoms
    geoms = geoms.copy()
    for g in multi.tolist():
        parts = shapely.get_parts(geoms[g])
        keep = int(np.argmax(shapely.area(parts)))
        geoms[g] = parts[keep]
        for k, part in enumerate(parts):
            if k == keep:
                continue
            border = shapely.length(
                shapely.intersection(shapely.boundary(geoms), shapely.boundary(part))
            )
            border[g] = -1.0
            best = int(np.argmax(border))
            if border[best] > 0:
                geoms[best] = shapely.union(geoms[best], part, grid_size=PRECISION)
            else:
                geoms[g] = shapely.union(geoms[g], part, grid_size=PRECISION)
    return geoms


def plan_communities(job: CommunityJob, workers: int | None, progress: bool | None) -> list:
    """Plan every community, in worker processes when the job is large.

    Fork: the workers share the prepared arrays. Results come back in community order,
    so the plan does not depend on the number of workers.

    Parameters
    ----------
    job : CommunityJob
    workers : int or None
        Worker processes (None: one per core for large jobs; ``GRIDMAP_WORKERS``).
    progress : bool or None
        Show a progress bar (None: when stderr is a terminal).

    Returns
    -------
    list of tuple
        Per community: its units, their grid labels, the grids' facts, the grid
        polygons.
    """
    global _STATE
    n = job.n_comm
    nw = _worker_count(n, len(job.unit_comm), workers)
    bar = tqdm(total=n, desc="partition", unit="community", disable=progress is False)
    _STATE = job
    out = []
    try:
        if nw <= 1:
            for ci in range(n):
                out.append(_community(ci))
                bar.update()
        else:
            ctx = multiprocessing.get_context("fork")
            chunk = max(1, min(16, n // (nw * 8)))
            with ctx.Pool(nw) as pool:
                for r in pool.imap(_community, range(n), chunksize=chunk):
                    out.append(r)
                    bar.update()
    finally:
        _STATE = None
        bar.close()
    return out


def _worker_count(n_comm: int, n_units: int, workers: int | None) -> int:
    env = os.environ.get("GRIDMAP_WORKERS")
    if workers is None and env:
        workers = int(env)
    if workers is not None:
        return max(1, int(workers))
    if n_comm < 4 or n_units < 5_000 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 8, n_comm))
