"""Tessellation: every square metre of every block belongs to exactly one unit.

A *unit* is what the partition moves around: a building, or a group of units (单元) of a
building split by units. Each unit has seed points (its representative point, points on
the outline of a large footprint, one point per unit strip). The tessellation

1. divides every block among its seeds with a Voronoi diagram clipped to the block (all
   blocks in one vectorised call), on the 1 cm precision grid;
2. keeps, for each clipped cell, the part that holds its seed; the other parts (cut off
   by a reflex corner of the block) and blocks without seeds become *orphan faces*;
3. finds which faces share a border and how long it is: inside a block by matching
   identical edges (neighbouring Voronoi cells share their vertices exactly), across
   blocks by intersecting outlines; a border across a block edge carries the rank of
   the barrier that separates the blocks;
4. gives each orphan face to the neighbour it shares the longest border with (a face in
   the same block first), and makes sure the faces of every unit form one connected
   area (a stray piece goes to its best neighbour in the same way). Orphan land that
   touches no unit at all (a detached part of an area without buildings) becomes a new
   unit without households.

Because the faces tile each block exactly and a unit's faces are connected, any
connected set of units dissolves (:func:`dissolve`) into one valid Polygon.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .geometry import (
    PRECISION,
    grid_keys,
    in_threads,
    locate_points,
    points_near_lines,
    polygonal_parts,
    round_to_grid,
    unique_pairs,
)

__all__ = ["Tessellation", "dissolve", "redraw", "tessellate", "unit_graph"]

_MIN_BORDER = 0.05  # metres: a shared border shorter than this is a touch, not adjacency
_SMALL_EMPTY_BLOCK = 1000.0  # m²: an empty block below this goes whole to one neighbour
_DISSOLVE_THREAD_MIN = 20_000  # faces: fewer are dissolved in one thread
_EMPTY = shapely.Polygon()  # (geometries are immutable: one empty polygon serves all)


@dataclass
class Tessellation:
    """Faces of a tessellation and their adjacency.

    Attributes
    ----------
    faces : ndarray of Polygon
        The faces; together they tile every block exactly.
    unit : ndarray of int
        Unit of every face (``0 .. n_units-1``).
    block : ndarray of int
        Block of every face.
    edges : ndarray of int, shape (m, 2)
        Pairs of faces (``i < j``) that share a border.
    length : ndarray of float
        Length of each shared border (m).
    rank : ndarray of int
        0 for faces of one block, else the rank of the barrier between them.
    line : ndarray of int
        The barrier line between the two faces (the one along their longest border
        across a block edge), -1 for faces of one block or where no line was found.
    n_units : int
        Number of units, including the units without households made for detached
        orphan land (numbered after the given ones).
    zone_edges, zone_length : ndarray
        Pairs of zones (communities) that share a border, and its length (m).
    """

    faces: np.ndarray
    unit: np.ndarray
    block: np.ndarray
    edges: np.ndarray
    length: np.ndarray
    rank: np.ndarray
    line: np.ndarray
    n_units: int
    zone_edges: np.ndarray
    zone_length: np.ndarray


def tessellate(
    block_geoms: np.ndarray,
    seeds: np.ndarray,
    seed_unit: np.ndarray,
    seed_main: np.ndarray,
    *,
    block_zone: np.ndarray | None = None,
    barrier_lines: np.ndarray | None = None,
    barrier_rank: np.ndarray | None = None,
    default_rank: int = 1,
    block_unit: np.ndarray | None = None,
) -> Tessellation:
    """Tessellate blocks among the seed points of units.

    Parameters
    ----------
    block_geoms : ndarray of Polygon
        Blocks (snapped to the 1 cm grid); blocks of one zone tile it.
    seeds : ndarray, shape (s, 2)
        Seed points in metres, distinct to the centimetre.
    seed_unit : ndarray of int
        Unit of every seed (``0 .. n_units-1``; every unit has a seed).
    seed_main : ndarray of bool
        The main seed of each unit (exactly one per unit): the face holding it anchors
        the unit.
    block_zone : ndarray of int, optional
        Zone (community) of every block; faces of different zones are never adjacent.
    barrier_lines, barrier_rank : ndarray, optional
        Barrier lines and their ranks, to rank borders between blocks.
    default_rank : int
        Rank of a border between blocks where no barrier line is found (a cutting line
        such as a compound outline).
    block_unit : ndarray of int, optional
        A unit that takes a whole block (an institution's special grid), -1 for blocks
        divided among their seeds. Seeds inside such blocks are ignored.

    Returns
    -------
    Tessellation
    """
    block_geoms = np.asarray(block_geoms, dtype=object)
    nb = len(block_geoms)
    n_units = int(seed_unit.max()) + 1 if len(seed_unit) else 0
    zone = np.zeros(nb, dtype=np.int64) if block_zone is None else np.asarray(block_zone)
    fixed = np.full(nb, -1, dtype=np.int64) if block_unit is None else np.asarray(block_unit)
    if len(fixed):
        n_units = max(n_units, int(fixed.max()) + 1)
    seed_block = locate_points(seeds, block_geoms)
    lost = np.flatnonzero((seed_block < 0) & seed_main)
    if len(lost):  # a main seed nudged off its block: move it into the nearest block
        seeds = seeds.copy()
        seeds[lost], seed_block[lost] = _into_nearest_block(seeds[lost], block_geoms)
    ok = seed_block >= 0
    ok &= fixed[np.maximum(seed_block, 0)] < 0
    # a unit's seeds outside the block of its main seed are not used
    main_block = np.full(n_units, -1, dtype=np.int64)
    main_block[seed_unit[seed_main & ok]] = seed_block[seed_main & ok]
    ok &= seed_block == main_block[seed_unit]
    # a block holding a single unit needs no outline seeds: the block is its face
    units_in = (
        np.bincount(
            np.unique(seed_block[ok & seed_main] * n_units + seed_unit[ok & seed_main]) // n_units,
            minlength=nb,
        )
        if ok.any()
        else np.zeros(nb, dtype=np.int64)
    )
    ok &= seed_main | (units_in[np.maximum(seed_block, 0)] > 1)
    seeds, seed_unit, seed_main, seed_block = (
        seeds[ok],
        seed_unit[ok],
        seed_main[ok],
        seed_block[ok],
    )

    divided = np.where(fixed < 0, block_geoms, shapely.Polygon())
    # a block without seeds is divided among the buildings around it (their main seeds
    # lent to it), as if the empty land belonged to the block next door
    lent = _lend_seeds(block_geoms, zone, fixed, seeds, seed_main, seed_block)
    borrowed = np.r_[np.zeros(len(seeds), dtype=bool), np.ones(len(lent[0]), dtype=bool)]
    seeds = np.concatenate([seeds, seeds[lent[0]]])
    seed_unit = np.concatenate([seed_unit, seed_unit[lent[0]]])
    seed_main = np.concatenate([seed_main, np.zeros(len(lent[0]), dtype=bool)])
    seed_block = np.concatenate([seed_block, lent[1]])
    faces, face_seed, face_block = _voronoi_faces(divided, seeds, seed_block, borrowed)
    face_unit = np.where(face_seed >= 0, seed_unit[np.maximum(face_seed, 0)], -1)
    face_main = np.zeros(len(faces), dtype=bool)
    face_main[face_seed >= 0] = seed_main[face_seed[face_seed >= 0]]
    whole = np.flatnonzero(fixed >= 0)
    if len(whole):
        keep = ~np.isin(face_block, whole)  # the empty stand-ins of fixed blocks
        faces = np.concatenate([faces[keep], block_geoms[whole]])
        face_unit = np.concatenate([face_unit[keep], fixed[whole]])
        face_main = np.concatenate([face_main[keep], np.ones(len(whole), dtype=bool)])
        face_block = np.concatenate([face_block[keep], whole])

    p_in, l_in, m_in, outline = _shared_edges(faces)
    p_x, l_x, m_x, ins = _cross_block_edges(outline, face_block, zone)
    faces = _insert_vertices(faces, outline, ins)
    pairs = np.concatenate([p_in, p_x])
    seg_len = np.concatenate([l_in, l_x])
    seg_mid = np.concatenate([m_in, m_x])
    # vertices are shared across zones too (the coverage is exact everywhere), but
    # faces are neighbours only within a zone; zones touch where their faces do
    za = zone[face_block[pairs[:, 0]]]
    zb = zone[face_block[pairs[:, 1]]]
    same_zone = za == zb
    zone_edges, zone_length, _, _ = _face_pairs(
        np.sort(np.column_stack([za, zb])[~same_zone], axis=1),
        seg_len[~same_zone],
        np.zeros(int((~same_zone).sum()), dtype=np.int64),
        np.full(int((~same_zone).sum()), -1, dtype=np.int64),
        int(zone.max()) + 1 if len(zone) else 1,
    )
    pairs, seg_len, seg_mid = pairs[same_zone], seg_len[same_zone], seg_mid[same_zone]
    cross = face_block[pairs[:, 0]] != face_block[pairs[:, 1]]
    seg_rank = np.zeros(len(pairs), dtype=np.int64)
    seg_line = np.full(len(pairs), -1, dtype=np.int64)
    seg_rank[cross], seg_line[cross] = _border_ranks(
        shapely.points(seg_mid[cross]), barrier_lines, barrier_rank, default_rank
    )
    edges, length, rank, line = _face_pairs(pairs, seg_len, seg_rank, seg_line, len(faces))
    keep = length > _MIN_BORDER
    edges, length, rank, line = edges[keep], length[keep], rank[keep], line[keep]

    avoid = np.zeros(n_units + 1, dtype=bool)
    avoid[fixed[fixed >= 0]] = True
    unit, n_units = _settle_units(faces, face_unit, face_main, edges, length, rank, n_units, avoid)
    return Tessellation(
        faces, unit, face_block, edges, length, rank, line, n_units, zone_edges, zone_length
    )


def unit_graph(
    tess: Tessellation, rank_factor: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Adjacency of units from the shared borders of their faces.

    Parameters
    ----------
    tess : Tessellation
    rank_factor : ndarray of float
        Cost of one metre of border by barrier rank (index 0 = same block).

    Returns
    -------
    edges : ndarray of int, shape (m, 2)
        Unit pairs ``i < j`` sharing a border.
    length : ndarray of float
        Total shared border (m).
    cost : ndarray of float
        Border weighted by ``rank_factor`` (the cost of cutting the pair apart).
    rank : ndarray of int
        The weakest barrier between the pair (0 when they touch inside a block).
    """
    u = tess.unit[tess.edges]
    m = u[:, 0] != u[:, 1]
    u = np.sort(u[m], axis=1)
    ln = tess.length[m]
    rk = tess.rank[m]
    if len(u) == 0:
        e = np.empty((0, 2), np.int64)
        return e, np.empty(0), np.empty(0), np.empty(0, np.int64)
    key = u[:, 0] * tess.n_units + u[:, 1]
    uk, inv = np.unique(key, return_inverse=True)
    length = np.bincount(inv, weights=ln)
    cost = np.bincount(inv, weights=ln * np.asarray(rank_factor)[rk])
    rank = np.full(len(uk), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(rank, inv, rk)
    edges = np.column_stack([uk // tess.n_units, uk % tess.n_units]).astype(np.int64)
    return edges, length, cost, rank


def dissolve(
    faces: np.ndarray, labels: np.ndarray, n_labels: int, *, single: bool = True
) -> np.ndarray:
    """Union the faces of each label (exactly: the faces form a noded coverage).

    Parameters
    ----------
    faces : ndarray of Polygon
    labels : ndarray of int
        Label of every face (``-1``: not dissolved).
    n_labels : int
    single : bool
        Each label's faces are connected, so the union must be one Polygon (a grid);
        otherwise a valid MultiPolygon is accepted as it is (a community in parts).

    Returns
    -------
    ndarray of geometry
        One geometry per label (an empty Polygon for a label without faces).
    """
    out = np.empty(n_labels, dtype=object)
    out[:] = _EMPTY
    sel = np.flatnonzero(labels >= 0)
    order = sel[np.argsort(labels[sel], kind="stable")]
    lab = labels[order]
    bounds = np.searchsorted(lab, np.arange(n_labels + 1))
    groups = np.flatnonzero(np.diff(bounds) > 0)

    def run(chunk: np.ndarray) -> None:
        for g in chunk.tolist():
            out[g] = _dissolve_one(faces, order[bounds[g] : bounds[g + 1]], single)

    workers = min(os.cpu_count() or 1, 8) if len(sel) >= _DISSOLVE_THREAD_MIN else 1
    if workers < 2 or len(groups) < 2 * workers:
        run(groups)
    else:  # GEOS releases the GIL: labels in threads (`out` slots are disjoint)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, np.array_split(groups, 4 * workers)))
    return out


def _dissolve_one(faces: np.ndarray, idx: np.ndarray, single: bool) -> shapely.Geometry:
    """The union of `faces[idx]` (see :func:`dissolve`)."""
    if len(idx) == 1:
        return faces[idx[0]]
    try:  # the faces form an exact coverage: the fast, linear union is exact
        merged = shapely.coverage_union_all(faces[idx])
    except shapely.errors.GEOSException:
        merged = None
    bad_type = shapely.get_type_id(merged) != 3 if single else False
    if merged is None or bad_type or not merged.is_valid:
        merged = shapely.union_all(faces[idx], grid_size=PRECISION)
    return merged


# ------------------------------------------------------------------------- helpers
def _voronoi(points: np.ndarray, extent: np.ndarray) -> np.ndarray:
    return shapely.voronoi_polygons(points, extend_to=extent, ordered=True)


def _into_nearest_block(xy: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point inside the nearest block, as close to each point as practical."""
    pts = shapely.points(xy)
    (src, tgt), dist = shapely.STRtree(blocks).query_nearest(
        pts, all_matches=False, return_distance=True
    )
    out = xy.copy()
    near = shapely.intersection(blocks[tgt], shapely.buffer(pts[src], dist + 0.5))
    cand = shapely.point_on_surface(near)
    inside = shapely.contains_properly(blocks[tgt], cand)
    cand = np.where(inside, cand, shapely.point_on_surface(blocks[tgt]))
    out[src] = shapely.get_coordinates(cand)
    block = np.full(len(xy), -1, dtype=np.int64)
    block[src] = tgt
    return out, block


def _lend_seeds(
    blocks: np.ndarray,
    zone: np.ndarray,
    fixed: np.ndarray,
    xy: np.ndarray,
    main: np.ndarray,
    seed_block: np.ndarray,
    rounds: int = 3,
    per_block: int = 24,
    small_block: float = _SMALL_EMPTY_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeds lent to blocks without seeds by the blocks around them.

    Returns the lent seeds (indexes into `xy`) and the block each is lent to. Blocks
    two or three steps from any building borrow what their neighbours borrowed. A
    block of less than `small_block` m² (a traffic island, a strip between two roads)
    borrows one seed, the nearest, and goes whole to its unit: dividing it would cost
    a Voronoi diagram for a sliver of land.
    """
    nb = len(blocks)
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    has = np.zeros(nb, dtype=bool)
    has[seed_block] = True
    need = ~has & (fixed < 0) & ~shapely.is_empty(blocks)
    if not need.any() or not has.any():
        return none
    pairs, _, _, _ = _shared_edges(blocks)
    if len(pairs) == 0:
        return none
    pairs = unique_pairs(pairs, nb)
    pairs = pairs[zone[pairs[:, 0]] == zone[pairs[:, 1]]]
    pairs = np.concatenate([pairs, pairs[:, ::-1]])  # (borrower, lender) both ways
    pairs = pairs[(fixed[pairs[:, 1]] < 0)]
    lend_seed = np.flatnonzero(main)
    lend_block = seed_block[lend_seed]
    out_seed, out_block = [], []
    centre = shapely.get_coordinates(shapely.point_on_surface(blocks))
    small = shapely.area(blocks) < small_block
    for _ in range(rounds):
        pr = pairs[need[pairs[:, 0]] & np.isin(pairs[:, 1], np.unique(lend_block))]
        if len(pr) == 0:
            break
        order = np.argsort(lend_block, kind="stable")
        lb = lend_block[order]
        start = np.searchsorted(lb, pr[:, 1], side="left")
        stop = np.searchsorted(lb, pr[:, 1], side="right")
        cnt = stop - start
        rows = np.repeat(np.arange(len(pr)), cnt)
        pos = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + start[rows]
        seed = lend_seed[order][pos]
        borrower = pr[rows, 0]
        # one lent seed per unit and block, the nearest `per_block` to the block
        key = unique_pairs(np.column_stack([borrower, seed]), len(xy))
        borrower, seed = key[:, 0], key[:, 1]
        d = np.hypot(*(xy[seed] - centre[borrower]).T)
        o = np.lexsort((d, borrower))
        borrower, seed = borrower[o], seed[o]
        first = np.r_[0, np.flatnonzero(borrower[1:] != borrower[:-1]) + 1]
        rank = np.arange(len(borrower)) - np.repeat(first, np.diff(np.r_[first, len(borrower)]))
        keep = rank < np.where(small[borrower], 1, per_block)
        borrower, seed = borrower[keep], seed[keep]
        out_seed.append(seed)
        out_block.append(borrower)
        need[borrower] = False
        # what a block borrowed it can lend on
        lend_seed = np.concatenate([lend_seed, seed])
        lend_block = np.concatenate([lend_block, borrower])
    if not out_seed:
        return none
    return np.concatenate(out_seed), np.concatenate(out_block)


def _voronoi_faces(
    blocks: np.ndarray, xy: np.ndarray, seed_block: np.ndarray, borrowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi cells of the seeds of every block, clipped to the block and exploded.

    Returns the faces, the seed of each face (-1 for orphan parts and empty blocks) and
    the block of each face. Every part of
    a borrowed seed's cell keeps the seed (the seed lies outside the block).
    """
    nb = len(blocks)
    count = np.bincount(seed_block, minlength=nb)
    order = np.lexsort((np.arange(len(xy)), seed_block))  # seeds grouped by block
    sb = seed_block[order]

    cells = np.empty(len(xy), dtype=object)
    multi_blocks = np.flatnonzero(count >= 2)
    if len(multi_blocks):
        sel = order[count[sb] >= 2]
        blk = seed_block[sel]
        _, idx = np.unique(blk, return_inverse=True)
        mp = shapely.multipoints(xy[sel], indices=idx)
        vor = in_threads(_voronoi, mp, blocks[multi_blocks])
        parts, pidx = shapely.get_parts(vor, return_index=True)
        if len(parts) != len(sel) or (pidx != idx).any():  # pragma: no cover - GEOS contract
            raise RuntimeError("voronoi_polygons did not return one cell per seed")
        cells[sel] = parts
    single = order[count[sb] == 1]
    cells[single] = blocks[seed_block[single]]

    cblock = blocks[seed_block]
    # (blocks are not prepared: a prepared geometry shared by threads is not safe)
    inside = in_threads(shapely.contains_properly, cblock, cells)
    inside[single] = False
    # clip with a floating overlay and round to the grid with numpy (several times
    # faster than snap-rounding overlays); the few that rounding spoils are clipped
    # again with a snap-rounding overlay
    out = ~inside
    cut = cells.copy()
    cut[out] = in_threads(shapely.intersection, cells[out], cblock[out])
    clipped, ok = round_to_grid(cut)
    bad = np.flatnonzero(~ok)
    if len(bad):
        clipped[bad] = shapely.intersection(cells[bad], cblock[bad], grid_size=PRECISION)
    parts, owner = polygonal_parts(clipped)
    # the part holding the seed stays with it; the others become orphan faces
    part_seed = owner.copy()
    n_parts = np.bincount(owner, minlength=len(cells))
    multi = (n_parts[owner] > 1) & ~borrowed[owner]
    if multi.any():
        mi = np.flatnonzero(multi)
        d = shapely.distance(parts[mi], shapely.points(xy[owner[mi]]))
        o = np.lexsort((d, owner[mi]))
        first = np.r_[True, owner[mi][o][1:] != owner[mi][o][:-1]]
        lose = np.ones(len(mi), dtype=bool)
        lose[o[first]] = False
        part_seed[mi[lose]] = -1
    # a sliver of a cell (under 1 dm², a seed a hair from the block outline) is no
    # home for its seed: it goes to a neighbour like any orphan, and a unit left
    # without a face rides with the unit around it (see the engine)
    part_seed[shapely.area(parts) < 0.01] = -1
    face_block = seed_block[owner]
    empty_blocks = np.flatnonzero(count == 0)
    faces = np.concatenate([parts, blocks[empty_blocks]])
    face_seed = np.concatenate([part_seed, np.full(len(empty_blocks), -1)])
    face_block = np.concatenate([face_block, empty_blocks])
    return faces, face_seed.astype(np.int64), face_block.astype(np.int64)


@dataclass
class _Outline:
    """Coordinates of every face outline and the edges found on one face only."""

    coords: np.ndarray  # all ring coordinates (get_coordinates of get_rings)
    ring: np.ndarray  # ring of each coordinate
    ring_face: np.ndarray  # face of each ring
    row: np.ndarray  # unmatched edges: row of their first coordinate
    face: np.ndarray  # unmatched edges: face


def _shared_edges(faces: np.ndarray):
    """Pairs of faces with identical edges (on the 1 cm grid): one row per shared edge,
    with its length and middle point; and the outline edges found once only (they lie
    on the outline of a block)."""
    rings, ridx = shapely.get_rings(faces, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    outline = _Outline(coords, cidx, ridx, np.empty(0, np.int64), np.empty(0, np.int64))
    if len(coords) < 2:
        return np.empty((0, 2), np.int64), np.empty(0), np.empty((0, 2)), outline
    key = grid_keys(coords)  # every vertex as one int64 on the 1 cm grid
    row = np.flatnonzero(cidx[1:] == cidx[:-1])
    ka, kb = key[row], key[row + 1]
    nz = ka != kb
    row, ka, kb = row[nz], ka[nz], kb[nz]
    k1, k2 = np.minimum(ka, kb), np.maximum(ka, kb)  # an edge keyed by its two ends
    order = np.lexsort((k2, k1))
    k1, k2, row = k1[order], k2[order], row[order]
    face = ridx[cidx[row]]
    i = np.flatnonzero((k1[1:] == k1[:-1]) & (k2[1:] == k2[:-1]))
    matched = np.zeros(len(k1), dtype=bool)
    matched[i] = True
    matched[i + 1] = True
    fa, fb = face[i], face[i + 1]
    m = fa != fb
    i = i[m]
    pairs = np.sort(np.column_stack([fa[m], fb[m]]), axis=1)
    a, b = coords[row[i]], coords[row[i] + 1]
    seglen = np.hypot(*(b - a).T)
    mid = (a + b) / 2
    outline.row = row[~matched]
    outline.face = face[~matched]
    return pairs, seglen, mid, outline


def _face_pairs(pairs, seg_len, seg_rank, seg_line, n):
    """Aggregate shared edges per face pair: total length, strongest barrier, and the
    barrier line of the longest edge across a block edge."""
    if len(pairs) == 0:
        e = np.empty((0, 2), np.int64)
        return e, np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64)
    key = pairs[:, 0].astype(np.int64) * n + pairs[:, 1]
    uk, inv = np.unique(key, return_inverse=True)
    length = np.bincount(inv, weights=seg_len)
    rank = np.zeros(len(uk), dtype=np.int64)
    np.maximum.at(rank, inv, seg_rank)
    o = np.lexsort((-seg_len, seg_line < 0, inv))
    first = np.r_[True, inv[o][1:] != inv[o][:-1]]
    line = np.full(len(uk), -1, dtype=np.int64)
    line[inv[o][first]] = seg_line[o][first]
    return np.column_stack([uk // n, uk % n]).astype(np.int64), length, rank, line


def _cross_block_edges(outline: _Outline, face_block: np.ndarray, zone: np.ndarray):
    """Faces of different blocks whose outline edges overlap.

    Edges on block outlines are matched by overlap along a common line (their vertices
    differ: each side was clipped on its own). Returns one row per overlap (face pair,
    length, middle point) and the vertices to insert so that both sides of a block
    edge have the same vertices: ``(row, t, xy)``, a point ``xy`` to insert ``t``
    metres along the edge that starts at outline coordinate ``row``.
    """
    none = (
        np.empty((0, 2), np.int64),
        np.empty(0),
        np.empty((0, 2)),
        (np.empty(0, np.int64), np.empty(0), np.empty((0, 2))),
    )
    row, face = outline.row, outline.face
    if len(row) < 2:
        return none
    a = outline.coords[row]
    b = outline.coords[row + 1]
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    i, j = shapely.STRtree(lines).query(lines)
    fb = face_block[face]
    m = (i < j) & (fb[i] != fb[j])
    i, j = i[m], j[m]
    d = b[i] - a[i]
    L = np.hypot(d[:, 0], d[:, 1])
    u = d / L[:, None]
    tol = 1.5 * PRECISION
    ra, rb = a[j] - a[i], b[j] - a[i]
    off_a = np.abs(u[:, 0] * ra[:, 1] - u[:, 1] * ra[:, 0])
    off_b = np.abs(u[:, 0] * rb[:, 1] - u[:, 1] * rb[:, 0])
    ta = (ra * u).sum(axis=1)
    tb = (rb * u).sum(axis=1)
    lo_j, hi_j = np.minimum(ta, tb), np.maximum(ta, tb)
    over = np.minimum(L, hi_j) - np.maximum(0.0, lo_j)
    ok = (off_a <= tol) & (off_b <= tol) & (over > _MIN_BORDER)
    i, j, u, L, ta, tb, lo_j, hi_j, over = (x[ok] for x in (i, j, u, L, ta, tb, lo_j, hi_j, over))
    if len(i) == 0:
        return none
    # an end of one edge strictly inside the other is inserted into the other
    eps = 0.2 * PRECISION
    ins_row, ins_t, ins_xy = [], [], []
    for t, pt in ((ta, a[j]), (tb, b[j])):
        inner = (t > eps) & (t < L - eps)
        ins_row.append(row[i][inner])
        ins_t.append(t[inner])
        ins_xy.append(pt[inner])
    rev = ta > tb  # edge j runs against edge i
    for t, pt in ((np.zeros(len(i)), a[i]), (L, b[i])):
        inner = (t > lo_j + eps) & (t < hi_j - eps)
        tj = np.where(rev, ta - t, t - ta)  # distance from j's first vertex
        ins_row.append(row[j][inner])
        ins_t.append(tj[inner])
        ins_xy.append(pt[inner])
    start = np.maximum(0.0, lo_j)
    midpt = a[i] + u * (start + over / 2)[:, None]
    pairs = np.sort(np.column_stack([face[i], face[j]]), axis=1)
    ins = (np.concatenate(ins_row), np.concatenate(ins_t), np.concatenate(ins_xy))
    return pairs, over, midpt, ins


def _insert_vertices(faces: np.ndarray, outline: _Outline, ins) -> np.ndarray:
    """Insert vertices into face outlines (exactly, at the given edges), so that the
    faces on both sides of every block edge share their vertices: the faces then form
    an exact coverage that unions without noding."""
    row, t, xy = ins
    if len(row) == 0:
        return faces
    ring = outline.ring
    face_of_ring = outline.ring_face
    touched = np.unique(face_of_ring[ring[row]])
    sel_ring = np.isin(face_of_ring, touched)
    rows = np.flatnonzero(sel_ring[ring])
    key_row = np.concatenate([rows, row])
    key_t = np.concatenate([np.zeros(len(rows)), t])
    pts = np.concatenate([outline.coords[rows], xy])
    rid = np.concatenate([ring[rows], ring[row]])
    o = np.lexsort((key_t, key_row))
    pts, rid = pts[o], rid[o]
    dup = np.r_[False, (pts[1:] == pts[:-1]).all(axis=1) & (rid[1:] == rid[:-1])]
    pts, rid = pts[~dup], rid[~dup]
    ring_ids, rid_local = np.unique(rid, return_inverse=True)
    new_rings = shapely.linearrings(pts, indices=rid_local)
    _, owner_local = np.unique(face_of_ring[ring_ids], return_inverse=True)
    polys = shapely.polygons(new_rings, indices=owner_local)
    out = faces.copy()
    good = shapely.is_valid(polys)
    out[touched[good]] = polys[good]
    return out


def _border_ranks(
    mid: np.ndarray, lines: np.ndarray | None, ranks: np.ndarray | None, default: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of the strongest barrier line through each border midpoint, and that line
    (-1 where no barrier line is found)."""
    out = np.full(len(mid), default, dtype=np.int64)
    line = np.full(len(mid), -1, dtype=np.int64)
    if len(mid) == 0 or lines is None or len(lines) == 0:
        return out, line
    pi, li = points_near_lines(mid, lines, 5 * PRECISION)
    if len(pi):
        r = np.asarray(ranks)[li]
        o = np.lexsort((li, -r, pi))
        first = np.r_[True, pi[o][1:] != pi[o][:-1]]
        out[pi[o][first]] = r[o][first]
        line[pi[o][first]] = li[o][first]
    return out, line


def _settle_units(
    faces: np.ndarray,
    unit: np.ndarray,
    main: np.ndarray,
    edges: np.ndarray,
    length: np.ndarray,
    rank: np.ndarray,
    n_units: int,
    avoid: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Give orphan faces to neighbours and make every unit's faces connected."""
    n_faces = len(faces)
    unit = unit.copy()
    for _ in range(64):
        unit = _absorb_orphans(unit, edges, length, rank, avoid)
        stray = _stray_faces(n_faces, unit, main, edges)
        if not stray.any():
            break
        unit[stray] = -1
    # orphan land touching no unit: each connected piece is a unit without households,
    # except crumbs (under 1 m² in all), which go to the nearest face's unit
    orphan = unit < 0
    if orphan.any():
        m = orphan[edges[:, 0]] & orphan[edges[:, 1]]
        e = edges[m]
        g = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n_faces, n_faces))
        _, comp = csgraph.connected_components(g, directed=False)
        oi = np.flatnonzero(orphan)
        _, new = np.unique(comp[oi], return_inverse=True)
        size = np.bincount(new, weights=shapely.area(faces[oi]))
        crumb = size[new] < 1.0
        known = np.flatnonzero(~orphan)
        if crumb.any() and len(known):
            src, tgt = shapely.STRtree(faces[known]).query_nearest(
                faces[oi[crumb]], all_matches=False
            )
            unit[oi[crumb][src]] = unit[known[tgt]]
        rest = oi[unit[oi] < 0]
        if len(rest):
            _, new = np.unique(comp[rest], return_inverse=True)
            unit[rest] = n_units + new
            n_units += int(new.max()) + 1
    return unit, n_units


def _absorb_orphans(
    unit: np.ndarray, edges: np.ndarray, length: np.ndarray, rank: np.ndarray, avoid: np.ndarray
) -> np.ndarray:
    """Repeatedly give each orphan face the unit of the neighbour it borders most
    (a neighbour in the same block before one across a barrier; units in `avoid`, the
    institutions' fixed grids, last)."""
    unit = unit.copy()
    while True:
        u0, u1 = unit[edges[:, 0]], unit[edges[:, 1]]
        a = np.r_[edges[:, 0][(u0 < 0) & (u1 >= 0)], edges[:, 1][(u1 < 0) & (u0 >= 0)]]
        b = np.r_[edges[:, 1][(u0 < 0) & (u1 >= 0)], edges[:, 0][(u1 < 0) & (u0 >= 0)]]
        if len(a) == 0:
            return unit
        sel = np.r_[np.flatnonzero((u0 < 0) & (u1 >= 0)), np.flatnonzero((u1 < 0) & (u0 >= 0))]
        o = np.lexsort((-length[sel], rank[sel], avoid[unit[b]], a))
        first = np.r_[True, a[o][1:] != a[o][:-1]]
        unit[a[o][first]] = unit[b[o][first]]


def _stray_faces(n: int, unit: np.ndarray, main: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Faces not connected (through faces of their unit) to their unit's main face."""
    same = (unit[edges[:, 0]] == unit[edges[:, 1]]) & (unit[edges[:, 0]] >= 0)
    e = edges[same]
    g = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, comp = csgraph.connected_components(g, directed=False)
    has = unit >= 0
    anchor = np.full(int(unit.max()) + 1 if has.any() else 0, -1, dtype=np.int64)
    mains = np.flatnonzero(main & has)
    anchor[unit[mains]] = comp[mains]
    stray = has & (anchor[np.maximum(unit, 0)] != comp)
    # a unit whose main face was lost keeps its largest piece instead (never happens
    # when every main seed has a face; guards against losing a unit)
    stray &= anchor[np.maximum(unit, 0)] >= 0
    return stray


def redraw(
    areas: np.ndarray,
    seeds: np.ndarray,
    seed_unit: np.ndarray,
    seed_main: np.ndarray,
    unit_label: np.ndarray,
    n_labels: int,
    *,
    barrier_lines: np.ndarray | None = None,
    barrier_rank: np.ndarray | None = None,
) -> np.ndarray:
    """Draw the polygons of labelled units over some areas (a planner's edit).

    The areas are cut into blocks along the barriers, tessellated among the units'
    seeds exactly as :func:`gridmap.plan_grids` does, and the faces are dissolved per
    label. Land that no unit reaches (a detached piece of an area) goes to the label
    of the nearest face.

    Parameters
    ----------
    areas : ndarray of Polygon
        Non-overlapping areas to redraw (e.g. the edited grids of each community).
    seeds, seed_unit, seed_main : ndarray
        Seed points, the unit of each, and each unit's main seed (see
        :func:`gridmap.partition.atoms.unit_seeds`).
    unit_label : ndarray of int
        Label (grid) of every unit.
    n_labels : int
    barrier_lines, barrier_rank : ndarray, optional

    Returns
    -------
    ndarray of geometry
        One polygon per label (empty for a label without units).
    """
    from .blocks import blocks

    areas = np.asarray(areas, dtype=object)
    lines = np.empty(0, dtype=object) if barrier_lines is None else barrier_lines
    blk, zone, _ = blocks(areas, lines)
    tess = tessellate(
        blk, seeds, seed_unit, seed_main, block_zone=zone,
        barrier_lines=barrier_lines, barrier_rank=barrier_rank,
    )  # fmt: skip
    label = np.full(tess.n_units, -1, dtype=np.int64)
    label[: len(unit_label)] = unit_label
    face_label = label[tess.unit]
    lost = np.flatnonzero(face_label < 0)
    if len(lost) and (face_label >= 0).any():
        known = np.flatnonzero(face_label >= 0)
        src, tgt = shapely.STRtree(tess.faces[known]).query_nearest(
            tess.faces[lost], all_matches=False
        )
        face_label[lost[src]] = face_label[known[tgt]]
    return dissolve(tess.faces, face_label, n_labels)
