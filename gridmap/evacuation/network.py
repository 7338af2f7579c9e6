"""Step 2 of evacuation planning, by which road: access to the roads, walking distances, routes.

The road network (:func:`gridmap.roads.road_network`) is built in the buildings' metric
CRS. Buildings (centroid) and shelters (a point inside) join it at the foot of the
perpendicular on a nearby edge; the walk goes straight to the road, along the edge to one
of its ends (or straight along it to a shelter on the same edge) and on over the network.

Access edges are taken in the big connected parts of the network (at least
:data:`BIG_COMPONENT_SHARE` of the largest one's junctions), unless an edge of a small
part is more than :data:`SNAP_SLACK_M` nearer: a building next to an unconnected scrap of
road (common in mapped data) still joins the street network, while a village with its own
roads joins those.

Distances come from Dijkstra searches from every open shelter (a virtual node on its
access edge) over a CSR matrix (:func:`scipy.sparse.csgraph.dijkstra`), cut at the
walking limit, so that a search only visits the streets within walking reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from .. import _raster
from ..roads import RoadNetwork, edge_width
from .timing import EdgeProfile

__all__ = [
    "BIG_COMPONENT_SHARE",
    "all_pairs",
    "PEDESTRIAN_FLOW",
    "SNAP_SLACK_M",
    "Access",
    "Router",
    "attach",
    "nearest_shelter",
    "pair_costs",
    "pairs_within",
    "route_details",
    "router",
]

#: Pedestrian flow capacity, persons per metre of walkable width per second (about
#: 75 persons/min/m, the maximum flow of Fruin's walkway levels of service and of the
#: Highway Capacity Manual).
PEDESTRIAN_FLOW = 1.25

#: A connected part of the network with at least this share of the largest part's
#: junctions is "big": buildings and shelters join big parts by preference.
BIG_COMPONENT_SHARE = 0.1

#: A building joins a small part of the network only when it is more than this many
#: metres nearer than the nearest edge of a big part.
SNAP_SLACK_M = 50.0

_PRED_MAX = 40_000_000  # largest shelters x nodes predecessor matrix kept in memory
_INF = np.inf


@dataclass
class Access:
    """Where points join the road network: edge, fraction along it, offset, foot point."""

    edge: np.ndarray
    t: np.ndarray
    offset: np.ndarray
    foot: np.ndarray  # (n, 2) coordinates of the foot of the perpendicular


def attach(points: np.ndarray, net: RoadNetwork) -> Access:
    """Join points to the network (see the module notes on big parts).

    Parameters
    ----------
    points : numpy.ndarray
        Shapely points in the network's CRS.
    net : RoadNetwork

    Returns
    -------
    Access
    """
    n = len(points)
    if n == 0:
        e = np.empty(0, np.int64)
        return Access(e, np.empty(0), np.empty(0), np.empty((0, 2)))
    label = net.components()
    size = np.bincount(label)
    big_edge = size[label[net.u]] >= BIG_COMPONENT_SHARE * size.max()
    tree = shapely.STRtree(net.geometry)
    pi, ei = tree.query_nearest(points, all_matches=False)
    edge = np.empty(n, dtype=np.int64)
    edge[pi] = ei
    if not big_edge.all():
        dist = shapely.distance(points, net.geometry[edge])
        small = np.flatnonzero(~big_edge[edge])
        if len(small):
            big = np.flatnonzero(big_edge)
            bq, be = shapely.STRtree(net.geometry[big]).query_nearest(
                points[small], all_matches=False
            )
            alt = np.empty(len(small), dtype=np.int64)
            alt[bq] = big[be]
            d_alt = shapely.distance(points[small], net.geometry[alt])
            use = d_alt <= dist[small] + SNAP_SLACK_M
            edge[small[use]] = alt[use]
    lines = net.geometry[edge]
    t = shapely.line_locate_point(lines, points, normalized=True)
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
    foot = shapely.line_interpolate_point(lines, t, normalized=True)
    offset = shapely.distance(points, foot)
    return Access(edge, t, offset, shapely.get_coordinates(foot))


@dataclass
class Router:
    """Shortest walks from a set of shelters over the passable roads."""

    net: RoadNetwork
    passable: np.ndarray
    matrix: sparse.csr_matrix  # nodes 0..n-1, shelter k = virtual node n + k
    keys: np.ndarray  # sorted unordered node-pair keys of the routing edges
    key_edge: np.ndarray  # edge id of each key (shortest passable edge)
    s_acc: Access
    sources: np.ndarray  # shelters searched from
    dist: np.ndarray  # (shelters, needed nodes) float32 metres; inf where not reached
    needed: np.ndarray  # sorted node ids with a dist column
    pred: np.ndarray | None  # (shelters, n + shelters) int32, when small enough
    limit: float

    @property
    def n(self) -> int:
        return self.net.n_nodes


def _matrix(
    net: RoadNetwork, passable: np.ndarray, s_acc: Access
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Routing matrix (nodes, then one virtual node per shelter), edge keys and ids."""
    n = net.n_nodes
    m = len(s_acc.edge)
    e = np.flatnonzero(passable)
    a, b = np.minimum(net.u[e], net.v[e]), np.maximum(net.u[e], net.v[e])
    key = a.astype(np.int64) * n + b
    order = np.lexsort((net.length[e], key))
    key, e = key[order], e[order]
    first = np.r_[True, key[1:] != key[:-1]][: len(key)]
    key, e = key[first], e[first]
    rows = [np.minimum(net.u[e], net.v[e])]
    cols = [np.maximum(net.u[e], net.v[e])]
    data = [net.length[e]]
    ok = passable[s_acc.edge]
    k = np.flatnonzero(ok)
    se = s_acc.edge[k]
    length = net.length[se]
    rows += [n + k, n + k]
    cols += [net.u[se], net.v[se]]
    data += [s_acc.t[k] * length + s_acc.offset[k], (1 - s_acc.t[k]) * length + s_acc.offset[k]]
    size = n + m
    mat = sparse.csr_matrix(
        (np.maximum(np.concatenate(data), 1e-6), (np.concatenate(rows), np.concatenate(cols))),
        shape=(size, size),
    )
    return mat, key, e


def router(
    net: RoadNetwork,
    passable: np.ndarray,
    s_acc: Access,
    sources: np.ndarray,
    needed_nodes: np.ndarray,
    limit: float = _INF,
) -> Router:
    """Dijkstra from every shelter in `sources` (a virtual node on its access edge).

    Parameters
    ----------
    net : RoadNetwork
    passable : numpy.ndarray
        Edges usable for routing.
    s_acc : Access
        Where every shelter joins the network.
    sources : numpy.ndarray
        Shelters to search from (indices into `s_acc`); a shelter whose access edge is
        not passable is not connected.
    needed_nodes : numpy.ndarray
        Nodes whose distances are kept.
    limit : float
        Search radius (m): farther nodes stay at ``inf``.
    """
    n = net.n_nodes
    m = len(s_acc.edge)
    mat, key, e = _matrix(net, passable, s_acc)
    size = n + m
    ok = passable[s_acc.edge]
    needed = np.unique(needed_nodes)
    dist = np.full((m, len(needed)), _INF, dtype=np.float32)
    keep_pred = m * size <= _PRED_MAX
    pred = np.full((m, size), -9999, dtype=np.int32) if keep_pred else None
    src = np.asarray(sources, dtype=np.int64)
    src = src[ok[src]]
    for i in range(0, len(src), 32):
        s = src[i : i + 32]
        if keep_pred:
            d, p = dijkstra(
                mat, directed=False, indices=n + s, return_predecessors=True, limit=limit
            )
            pred[s] = p
        else:
            d = dijkstra(mat, directed=False, indices=n + s, limit=limit)
        dist[s] = d[:, needed]
    return Router(net, passable, mat, key, e, s_acc, src, dist, needed, pred, float(limit))


def pair_costs(
    rt: Router, b_acc: Access, bpos: np.ndarray, spos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Network distance (m) from buildings `bpos` to shelters `spos` (paired arrays).

    Returns (distance, end): end 0 = via the building edge's ``u``, 1 = via ``v``, 2 =
    straight along the shared edge; the distance is inf without a passable path.
    """
    net = rt.net
    e = b_acc.edge[bpos]
    t, off = b_acc.t[bpos], b_acc.offset[bpos]
    length = net.length[e]
    ia = np.searchsorted(rt.needed, net.u[e])
    ib = np.searchsorted(rt.needed, net.v[e])
    da = rt.dist[spos, ia].astype(float) + t * length
    db = rt.dist[spos, ib].astype(float) + (1 - t) * length
    end = (db < da).astype(np.int8)
    best = np.minimum(da, db)
    searched = np.zeros(len(rt.s_acc.edge), dtype=bool)
    searched[rt.sources] = True
    same = (rt.s_acc.edge[spos] == e) & rt.passable[e] & searched[spos]
    if same.any():
        direct = np.abs(t - rt.s_acc.t[spos]) * length + rt.s_acc.offset[spos]
        win = same & (direct <= best)
        best = np.where(win, direct, best)
        end[win] = 2
    best = best + off
    best[~rt.passable[e]] = _INF
    return best, end


def pairs_within(
    rt: Router, b_acc: Access, buildings: np.ndarray, limit: float, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (building, shelter) pair of the searched shelters within `limit` metres.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Building position (index into `buildings`), shelter and metres, sorted by
        building then metres.
    """
    sh = rt.sources
    out_b, out_s, out_d = [], [], []
    if len(sh) and len(buildings):
        for i in range(0, len(buildings), chunk):
            pos = np.arange(i, min(i + chunk, len(buildings)))
            bb = np.repeat(buildings[pos], len(sh))
            ss = np.tile(sh, len(pos))
            d, _ = pair_costs(rt, b_acc, bb, ss)
            keep = d <= limit
            out_b.append(np.repeat(pos, len(sh))[keep])
            out_s.append(ss[keep])
            out_d.append(d[keep])
    if not out_b:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    b, s, d = np.concatenate(out_b), np.concatenate(out_s), np.concatenate(out_d)
    order = np.lexsort((s, d, b))
    return b[order], s[order], d[order]


def all_pairs(
    net: RoadNetwork,
    passable: np.ndarray,
    s_acc: Access,
    shelters: np.ndarray,
    b_acc: Access,
    buildings: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (building, shelter) pair joined by a passable road, with no distance limit.

    Searches from the buildings' road ends when they are fewer than the shelters (the
    usual case for the few buildings that need a vehicle), else from the shelters.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Building position (index into `buildings`), shelter and metres, sorted by
        building then metres.
    """
    shelters = np.asarray(shelters, dtype=np.int64)
    shelters = shelters[passable[s_acc.edge[shelters]]]
    e = b_acc.edge[buildings]
    nodes = np.unique(np.r_[net.u[e], net.v[e]])
    if len(buildings) == 0 or len(shelters) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    if len(nodes) >= len(shelters):
        rt = router(net, passable, s_acc, shelters, nodes)
        return pairs_within(rt, b_acc, buildings, _INF)
    n = net.n_nodes
    mat, _, _ = _matrix(net, passable, s_acc)
    d = dijkstra(mat, directed=False, indices=nodes)[:, n + shelters]  # (nodes, shelters)
    iu = np.searchsorted(nodes, net.u[e])
    iv = np.searchsorted(nodes, net.v[e])
    t, off, length = b_acc.t[buildings], b_acc.offset[buildings], net.length[e]
    cost = (
        np.minimum(d[iu] + (t * length)[:, None], d[iv] + ((1 - t) * length)[:, None])
        + off[:, None]
    )
    same = (s_acc.edge[shelters][None, :] == e[:, None]) & passable[e][:, None]
    if same.any():
        direct = np.abs(t[:, None] - s_acc.t[shelters][None, :]) * length[:, None]
        direct = direct + s_acc.offset[shelters][None, :] + off[:, None]
        cost = np.where(same, np.minimum(cost, direct), cost)
    cost[~passable[e]] = _INF
    bi, si = np.nonzero(np.isfinite(cost))
    m = cost[bi, si]
    order = np.lexsort((shelters[si], m, bi))
    return bi[order], shelters[si][order], m[order]


def nearest_shelter(
    net: RoadNetwork,
    passable: np.ndarray,
    s_acc: Access,
    sources: np.ndarray,
    b_acc: Access,
    buildings: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest shelter of `sources` by road from each building, with no distance limit.

    Returns (shelter or -1, metres or inf). One multi-source Dijkstra search.
    """
    nb = len(buildings)
    shelter = np.full(nb, -1, dtype=np.int64)
    metres = np.full(nb, _INF)
    if nb == 0 or len(sources) == 0:
        return shelter, metres
    mat, _, _ = _matrix(net, passable, s_acc)
    src = np.asarray(sources, dtype=np.int64)
    src = src[passable[s_acc.edge[src]]]
    if len(src) == 0:
        return shelter, metres
    n = net.n_nodes
    d, _, origin = dijkstra(
        mat, directed=False, indices=n + src, return_predecessors=True, min_only=True
    )
    e = b_acc.edge[buildings]
    length = net.length[e]
    da = d[net.u[e]] + b_acc.t[buildings] * length
    db = d[net.v[e]] + (1 - b_acc.t[buildings]) * length
    via_v = db < da
    best = np.where(via_v, db, da) + b_acc.offset[buildings]
    orig = np.where(via_v, origin[net.v[e]], origin[net.u[e]])
    ok = np.isfinite(best) & (orig >= n) & passable[e]
    shelter[ok] = orig[ok] - n
    metres[ok] = best[ok]
    return shelter, metres


# --------------------------------------------------------------------------- routes


def _edge_lookup(rt: Router, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    key = np.minimum(a, b).astype(np.int64) * rt.n + np.maximum(a, b)
    pos = np.searchsorted(rt.keys, key)
    return rt.key_edge[pos]


def _paths(
    rt: Router, start: np.ndarray, shelter: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node paths start -> shelter: (path index, node, edge into the next node).

    The steps are sorted by path, each path's nodes in walking order from `start` to the
    node where the shelter's access edge begins; ``edge`` is the edge from each node to
    the next (-1 on the last node).
    """
    n = rt.n
    steps_p, steps_node = [np.arange(len(start))], [start.astype(np.int64)]
    order_sh = np.argsort(shelter, kind="stable")
    uniq = np.unique(shelter)
    for i in range(0, len(uniq), 32):
        chunk = uniq[i : i + 32]
        if rt.pred is not None:
            pred = rt.pred[chunk]
        else:
            _, pred = dijkstra(
                rt.matrix,
                directed=False,
                indices=n + chunk,
                return_predecessors=True,
                limit=rt.limit,
            )
        row_of = np.full(int(uniq.max()) + 1, -1, dtype=np.int64)
        row_of[chunk] = np.arange(len(chunk))
        sel = order_sh[np.isin(shelter[order_sh], chunk)]
        active, cur = sel, start[sel].astype(np.int64)
        rows = row_of[shelter[sel]]
        while len(active):
            nxt = pred[rows, cur].astype(np.int64)
            go = (nxt >= 0) & (nxt < n)
            active, cur, rows = active[go], nxt[go], rows[go]
            steps_p.append(active)
            steps_node.append(cur)
    p = np.concatenate(steps_p)
    node = np.concatenate(steps_node)
    order = np.argsort(p, kind="stable")  # steps were appended in walking order
    p, node = p[order], node[order]
    edge = np.full(len(p), -1, dtype=np.int64)
    more = np.flatnonzero(p[:-1] == p[1:])
    if len(more):
        edge[more] = _edge_lookup(rt, node[more], node[more + 1])
    return p, node, edge


def _line_coords(
    net: RoadNetwork, p: np.ndarray, node: np.ndarray, edge: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of each path following the edge geometries: (coords, path index)."""
    used, inv = np.unique(edge[edge >= 0], return_inverse=True)
    coords, cidx = shapely.get_coordinates(net.geometry[used], return_index=True)
    count = np.bincount(cidx, minlength=len(used))
    first = np.cumsum(count) - count
    step = np.flatnonzero(edge >= 0)
    ue = inv
    fwd = net.u[edge[step]] == node[step]
    run, pos = _raster.expand_runs(np.zeros(len(step), np.int64), count[ue] - 1)
    src = np.where(fwd[run], first[ue][run] + 1 + pos, first[ue][run] + count[ue][run] - 2 - pos)
    heads = np.r_[True, p[1:] != p[:-1]]
    head_idx = np.flatnonzero(heads)
    pieces_path = np.r_[p[head_idx], p[step][run]]
    pieces_xy = np.vstack([np.c_[net.x[node[head_idx]], net.y[node[head_idx]]], coords[src]])
    pieces_key = np.r_[np.full(len(head_idx), -1), np.arange(len(run))]
    order = np.lexsort((pieces_key, pieces_path))
    return pieces_xy[order], pieces_path[order]


def route_details(
    rt: Router,
    b_acc: Access,
    b_xy: np.ndarray,
    s_xy: np.ndarray,
    ub: np.ndarray,
    us: np.ndarray,
    persons: np.ndarray,
    profile: EdgeProfile | None = None,
    b_stage: np.ndarray | None = None,
    s_stage: np.ndarray | None = None,
) -> dict[str, Any]:
    """Routes of placed units (building `ub`, shelter `us`): lengths, geometry, flows, cuts.

    Parameters
    ----------
    rt : Router
        The router the units were placed with.
    b_acc : Access
        Building access.
    b_xy, s_xy : numpy.ndarray
        Building and shelter point coordinates.
    ub, us : numpy.ndarray
        Building and shelter of each unit.
    persons : numpy.ndarray
        Persons of each unit.
    profile : EdgeProfile, optional
        Cut stages along the roads: gives each route its cut stage.
    b_stage, s_stage : numpy.ndarray, optional
        Cut stage at the buildings' and shelters' points (their doors).

    Returns
    -------
    dict
        ``metres`` and ``queue_s`` per unit; per route (unique building-shelter pair):
        ``route_of`` (route of each unit), ``rb``, ``rs``, ``r_persons``, ``geometry``,
        ``stage`` (earliest cut along the route) and ``cut_edge`` (edge where it is cut
        first; -1 at a door or when never cut); per edge: ``e_persons``, ``e_stage``
        (earliest cut stage of the routes on it), ``queue_edge``
        (seconds to let everyone pass), ``width``; ``used`` (edges with walkers) and
        ``main`` (the shelter most of their walkers go to).
    """
    net = rt.net
    metres, end = pair_costs(rt, b_acc, ub, us)
    pair = pd.DataFrame({"b": ub, "s": us, "end": end})
    rkey = pair.drop_duplicates(["b", "s"]).reset_index(drop=True)
    route_of = (
        pd.MultiIndex.from_frame(rkey[["b", "s"]]).get_indexer(
            pd.MultiIndex.from_frame(pair[["b", "s"]])
        )
        if len(pair)
        else np.empty(0, dtype=np.int64)
    )
    rb = rkey["b"].to_numpy(dtype=np.int64)
    rs = rkey["s"].to_numpy(dtype=np.int64)
    rend = rkey["end"].to_numpy(dtype=np.int64)
    r_persons = np.bincount(route_of, weights=persons, minlength=len(rb))
    bedge, sedge = b_acc.edge[rb], rt.s_acc.edge[rs]
    via = rend < 2
    start = np.where(rend == 0, net.u[bedge], net.v[bedge])
    pkey = pd.DataFrame({"n": start[via], "s": rs[via]})
    upath = pkey.drop_duplicates().reset_index(drop=True)
    path_of = np.full(len(rb), -1, dtype=np.int64)
    if len(upath):
        path_of[via] = pd.MultiIndex.from_frame(upath).get_indexer(pd.MultiIndex.from_frame(pkey))
        sp, snode, sedge_p = _paths(rt, upath["n"].to_numpy(), upath["s"].to_numpy())
    else:
        sp = snode = sedge_p = np.empty(0, dtype=np.int64)
    p_sh = upath["s"].to_numpy(dtype=np.int64)

    # persons per edge: the path edges plus the access edges at both ends
    p_persons = np.bincount(path_of[via], weights=r_persons[via], minlength=len(upath))
    step = sedge_p >= 0
    other = bedge != sedge
    e = np.r_[sedge_p[step], bedge, sedge[other]]
    s = np.r_[p_sh[sp[step]], rs, rs[other]]
    w = np.r_[p_persons[sp[step]], r_persons, r_persons[other]]
    e_persons = np.bincount(e, weights=w, minlength=net.n_edges)
    width = edge_width(net.highway)
    queue_edge = e_persons / (width * PEDESTRIAN_FLOW)
    p_queue = np.zeros(len(upath))
    if step.any():
        np.maximum.at(p_queue, sp[step], queue_edge[sedge_p[step]])
    r_queue = np.maximum(queue_edge[bedge], queue_edge[sedge])
    r_queue[via] = np.maximum(r_queue[via], p_queue[path_of[via]])
    used = np.flatnonzero(e_persons > 0)
    if len(e):
        flows = pd.DataFrame({"e": e, "s": s, "w": w}).groupby(["e", "s"], as_index=False)["w"]
        best = (
            flows.sum()
            .sort_values(["e", "w"], ascending=[True, False], kind="stable")
            .drop_duplicates("e")
            .set_index("e")["s"]
        )
        main = best.reindex(used).fillna(0).to_numpy(dtype=np.int64)
    else:
        main = np.empty(0, dtype=np.int64)

    # cut stage: the earliest cut over the doors, the access stretches and the path
    nr = len(rb)
    stage = np.full(nr, _INF)
    cut_edge = np.full(nr, -1, dtype=np.int64)
    if profile is not None and nr:
        last_node = np.full(len(upath), -1, dtype=np.int64)
        if len(sp):
            last = np.r_[sp[1:] != sp[:-1], True]
            last_node[sp[last]] = snode[last]
        t_b, t_s = b_acc.t[rb], rt.s_acc.t[rs]
        b_to = np.where(rend == 0, 0.0, np.where(rend == 1, 1.0, t_s))
        s_end = (
            np.where(via, last_node[np.maximum(path_of, 0)], -1)
            if len(upath)
            else np.full(nr, -1, dtype=np.int64)
        )
        s_from = np.where(s_end == net.u[sedge], 0.0, 1.0)
        cands = [
            (np.full(nr, -1), b_stage[rb] if b_stage is not None else np.full(nr, _INF)),
            (bedge, profile.range_min(bedge, t_b, b_to)),
            (
                np.where(via, sedge, -1),
                np.where(via, profile.range_min(sedge, s_from, t_s), _INF),
            ),
            (np.full(nr, -1), s_stage[rs] if s_stage is not None else np.full(nr, _INF)),
        ]
        if step.any():
            pe = sedge_p[step]
            ps = profile.edge_stage[pe]
            order = np.lexsort((ps, sp[step]))
            first = np.r_[True, sp[step][order][1:] != sp[step][order][:-1]]
            p_min = np.full(len(upath), _INF)
            p_edge = np.full(len(upath), -1, dtype=np.int64)
            p_min[sp[step][order][first]] = ps[order][first]
            p_edge[sp[step][order][first]] = pe[order][first]
            pp = np.maximum(path_of, 0)
            cands.insert(2, (np.where(via, p_edge[pp], -1), np.where(via, p_min[pp], _INF)))
        for edge_c, st in cands:
            better = st < stage
            stage = np.where(better, st, stage)
            cut_edge = np.where(better, edge_c, cut_edge)
        cut_edge[~np.isfinite(stage)] = -1
    # the earliest cut of the routes walking on each edge
    e_stage = np.full(net.n_edges, _INF)
    if len(e):
        p_stage = np.full(len(upath), _INF)
        if via.any():
            np.minimum.at(p_stage, path_of[via], stage[via])
        np.minimum.at(e_stage, e, np.r_[p_stage[sp[step]], stage, stage[other]])

    # geometry: building -> foot on its road -> path -> foot of the shelter -> shelter
    if len(upath):
        pxy, pidx = _line_coords(net, sp, snode, sedge_p)
        p_count = np.bincount(pidx, minlength=len(upath))
        p_first = np.cumsum(p_count) - p_count
    else:
        pxy, p_count, p_first = np.empty((0, 2)), np.zeros(0, int), np.zeros(0, int)
    rk = np.arange(nr)
    pp = np.maximum(path_of, 0)
    mid_n = np.where(via, p_count[pp] if len(p_count) else 0, 0)
    run, pos = _raster.expand_runs(np.where(via, p_first[pp] if len(p_first) else 0, 0), mid_n)
    pieces = [
        (rk, 0, b_xy[rb]),
        (rk, 1, b_acc.foot[rb]),
        (run, 2, pxy[pos] if len(pos) else np.empty((0, 2))),
        (rk, 3, rt.s_acc.foot[rs]),
        (rk, 4, s_xy[rs]),
    ]
    r_idx = np.concatenate([q[0] for q in pieces])
    r_ord = np.concatenate([np.full(len(q[0]), q[1]) for q in pieces])
    r_xy = np.vstack([q[2] for q in pieces])
    order = np.lexsort((r_ord, r_idx))
    geoms = (
        shapely.linestrings(r_xy[order], indices=r_idx[order]) if nr else np.empty(0, dtype=object)
    )
    return {
        "metres": metres,
        "queue_s": r_queue[route_of] if len(route_of) else np.empty(0),
        "route_of": route_of,
        "rb": rb,
        "rs": rs,
        "r_persons": r_persons,
        "geometry": geoms,
        "stage": stage,
        "cut_edge": cut_edge,
        "e_stage": e_stage,
        "e_persons": e_persons,
        "queue_edge": queue_edge,
        "width": width,
        "main": main,
        "used": used,
    }
