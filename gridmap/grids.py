"""Grid geometry: planning blocks, tessellation, adjacency, grid polygons and codes.

These helpers turn the partition of buildings into polygons that tile each community:

1. :func:`_community_blocks` cuts a community into blocks along barrier lines (major
   roads, rivers, railways) and removes special-grid polygons.
2. :func:`_tessellate_block` divides a block among the points of its atoms with a
   Voronoi diagram clipped to the block, so every square metre belongs to exactly one
   atom ("wherever the satellite can see, there is a grid").
3. :func:`_cell_adjacency` finds which atoms share a border: the contiguity graph the
   partition works on.
4. :func:`_dissolve_cells` unions the cells of each grid and :func:`_repair_coverage`
   gives stray fragments and gaps to the neighbour with the longest shared border.
5. :func:`_sequence_codes` numbers grids in reading order (north to south, west to east).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import QhullError, Voronoi

_EPS_LEN = 0.05  # metres: a shared border shorter than this is a touch, not adjacency


# ------------------------------------------------------------------------ blocks
def _community_blocks(
    area: shapely.Geometry, barrier_lines: np.ndarray, min_area: float = 1.0
) -> np.ndarray:
    """Cut `area` into blocks along `barrier_lines`.

    Parameters
    ----------
    area : shapely Polygon or MultiPolygon
        The community (minus special-grid polygons).
    barrier_lines : ndarray of shapely geometries
        Barrier lines that may cross the area.
    min_area : float
        Pieces smaller than this (m²) are not returned as blocks of their own; they are
        left to the gap filler, which joins them to a neighbour.

    Returns
    -------
    ndarray of Polygon
    """
    if area.is_empty:
        return np.array([], dtype=object)
    parts = shapely.get_parts(area)
    if len(barrier_lines) == 0:
        return parts[shapely.area(parts) >= min_area]
    lines = barrier_lines[shapely.intersects(barrier_lines, area)]
    if len(lines) == 0:
        return parts[shapely.area(parts) >= min_area]
    cut = shapely.intersection(lines, area)
    linework = np.concatenate([shapely.get_parts(shapely.boundary(parts)), shapely.get_parts(cut)])
    linework = linework[shapely.get_type_id(linework) == 1]
    noded = shapely.unary_union(linework)
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(polys) == 0:
        return parts
    keep = shapely.contains_properly(area, shapely.point_on_surface(polys)) | shapely.within(
        shapely.point_on_surface(polys), area
    )
    polys = polys[keep & (shapely.area(polys) >= min_area)]
    return polys


def _merge_empty_blocks(
    blocks: np.ndarray, has_points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Join blocks without atoms to the neighbouring block with the longest shared border.

    Returns the new block geometries (only those holding points) and, for each of them,
    whether empty land was joined to it.
    """
    blocks = blocks.copy()
    absorbed = np.zeros(len(blocks), dtype=bool)
    alive = has_points.copy()
    empty = list(np.flatnonzero(~has_points))
    if not alive.any():
        return blocks[:0], absorbed[:0]
    # Repeat because an empty block may touch only other empty blocks at first.
    for _ in range(len(empty) + 1):
        if not empty:
            break
        still = []
        live_idx = np.flatnonzero(alive)
        tree = shapely.STRtree(blocks[live_idx])
        for e in empty:
            cand = live_idx[tree.query(blocks[e], predicate="intersects")]
            if len(cand) == 0:
                still.append(e)
                continue
            shared = shapely.length(shapely.intersection(blocks[cand], blocks[e].boundary))
            best = cand[int(np.argmax(shared))]
            if shared.max() <= 0:
                still.append(e)
                continue
            blocks[best] = shapely.union(blocks[best], blocks[e])
            absorbed[best] = True
        if len(still) == len(empty):
            # Islands of empty land not touching any block: join to the nearest one.
            for e in still:
                d = shapely.distance(blocks[live_idx], blocks[e])
                best = live_idx[int(np.argmin(d))]
                blocks[best] = shapely.union(blocks[best], blocks[e])
                absorbed[best] = True
            break
        empty = still
    return blocks[alive], absorbed[alive]


# ------------------------------------------------------------------- tessellation
def _tessellate_block(
    block: shapely.Geometry, xy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi cells of the points `xy` clipped to `block`, and which cells share a border.

    Duplicate points must have been removed by the caller.

    Returns
    -------
    cells : ndarray of Polygon
        One cell per point, in the order of `xy`.
    edges : ndarray of int, shape (m, 2)
        Pairs of points whose cells share a border longer than 5 cm.
    lengths : ndarray of float
        Length of each shared border (m).
    clipped : ndarray of bool
        Cells that touch the block's outline (the only ones that can have neighbours
        in other blocks).
    """
    n = len(xy)
    if n == 1:
        return (
            np.array([block], dtype=object),
            np.empty((0, 2), np.int64),
            np.empty(0),
            np.ones(1, dtype=bool),
        )
    raw = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=block, ordered=True)
    )
    if len(raw) != n:  # pragma: no cover - GEOS returns one cell per unique point
        raise RuntimeError("voronoi_polygons returned an unexpected number of cells")
    shapely.prepare(block)
    inside = shapely.contains_properly(block, raw)
    cells = raw.copy()
    out = np.flatnonzero(~inside)
    if len(out):
        clipped = shapely.intersection(raw[out], block)
        if not shapely.is_valid(clipped).all():
            clipped = shapely.make_valid(clipped)
        # Clipping at a reflex corner can leave stray lines or points beside the polygon.
        mixed = ~np.isin(shapely.get_type_id(clipped), (3, 6))
        if mixed.any():
            clipped[mixed] = [_polygonal(g) for g in clipped[mixed]]
        # A cell clipped by a reflex corner of the block can fall into pieces. Keep the
        # piece holding the seed: the other pieces are not reachable from it, so they
        # become gaps that the coverage repair gives to the neighbour they border most.
        multi = np.flatnonzero(shapely.get_num_geometries(clipped) > 1)
        for i in multi:
            parts = shapely.get_parts(clipped[i])
            seed = shapely.points(xy[out[i]])
            holds = shapely.intersects(parts, seed)
            j = (
                int(np.argmax(holds))
                if holds.any()
                else int(np.argmin(shapely.distance(parts, seed)))
            )
            clipped[i] = parts[j]
        cells[out] = clipped
    edges, lengths = _voronoi_neighbours(xy, cells, inside)
    return cells, edges, lengths, ~inside


def _voronoi_neighbours(
    xy: np.ndarray, cells: np.ndarray, inside: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbouring cells from the Voronoi ridges.

    A ridge between two unclipped cells is their whole shared border, so its length
    comes straight from the ridge's end points. Pairs involving a clipped cell are
    measured on the clipped geometry.
    """
    try:
        vor = Voronoi(xy)
    except (QhullError, ValueError):
        pairs = _chain(xy)
        return _measure(cells, pairs)
    rp = vor.ridge_points.astype(np.int64)
    rv = np.asarray(vor.ridge_vertices, dtype=np.int64)
    finite = (rv >= 0).all(axis=1)
    fast = finite & inside[rp[:, 0]] & inside[rp[:, 1]]
    v = vor.vertices
    seg = np.where(fast, np.hypot(*(v[rv[:, 0]] - v[rv[:, 1]]).T), 0.0)
    e_fast, l_fast = rp[fast], seg[fast]
    keep = l_fast > _EPS_LEN
    e_slow, l_slow = _measure(cells, rp[~fast])
    edges = np.concatenate([e_fast[keep], e_slow])
    lengths = np.concatenate([l_fast[keep], l_slow])
    edges.sort(axis=1)
    return edges, lengths


def _chain(xy: np.ndarray) -> np.ndarray:
    """Pairs of consecutive points along their main axis (collinear or two points)."""
    centred = xy - xy.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(centred @ axis, kind="stable")
    return np.column_stack([order[:-1], order[1:]]).astype(np.int64)


def _measure(cells: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the `pairs` of cells that share a border; return pairs and border lengths."""
    if len(pairs) == 0:
        return np.empty((0, 2), np.int64), np.empty(0)
    a, b = cells[pairs[:, 0]], cells[pairs[:, 1]]
    length = shapely.length(shapely.intersection(shapely.boundary(a), shapely.boundary(b)))
    keep = length > _EPS_LEN
    return pairs[keep], length[keep]


def _cross_block_adjacency(
    cells: np.ndarray, cell_block: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of cells in different blocks that share a border (across a barrier).

    Only `candidates` (indexes of cells touching their block's outline) are examined.
    """
    if len(candidates) < 2:
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    sub = cells[candidates]
    tree = shapely.STRtree(sub)
    left, right = tree.query(sub, predicate="intersects")
    left, right = candidates[left], candidates[right]
    m = (left < right) & (cell_block[left] != cell_block[right])
    return _measure(cells, np.column_stack([left[m], right[m]]).astype(np.int64))


# --------------------------------------------------------------------- polygons
def _dissolve_cells(cells: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Union the cells of each label.

    Cells of one block form a coverage, so the fast coverage union is exact there; where
    it leaves several parts the cells are unioned again with noding.
    """
    out = np.empty(n_labels, dtype=object)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_labels + 1))
    for g in range(n_labels):
        idx = order[bounds[g] : bounds[g + 1]]
        if len(idx) == 0:
            out[g] = shapely.Polygon()
        elif len(idx) == 1:
            out[g] = cells[idx[0]]
        else:
            parts = shapely.get_parts(cells[idx])
            try:
                merged = shapely.coverage_union_all(parts)
            except shapely.errors.GEOSException:  # pragma: no cover - fall back on noding
                merged = shapely.union_all(parts)
            if shapely.get_num_geometries(merged) > 1:
                # Cells of different blocks meet along a barrier without sharing their
                # vertices; coverage union cannot join them there, a noding union can.
                merged = shapely.union_all(parts, grid_size=None)
            out[g] = merged
    return out


def _repair_coverage(
    area: shapely.Geometry,
    geoms: np.ndarray,
    anchors: list[np.ndarray],
    locked: np.ndarray | None = None,
    tol: float = 0.01,
) -> np.ndarray:
    """Make `geoms` one connected polygon each and an exact cover of `area`.

    Fragments of a grid that hold none of its anchor points, and gaps left in `area`,
    are given to the neighbouring grid with the longest shared border. Fragments that
    do hold anchor points are left (the validator will report them).

    Parameters
    ----------
    area : shapely geometry
        The community polygon the grids must tile.
    geoms : ndarray of geometries
        Grid polygons.
    anchors : list of ndarray of Point
        Points that must stay in each grid (its buildings).
    locked : ndarray of bool, optional
        Grids whose polygon must not grow (special grids from institution polygons).
    tol : float
        Area (m²) below which a fragment is treated as noise.
    """
    geoms = shapely.make_valid(geoms)
    geoms = np.array([_polygonal(g) for g in geoms], dtype=object)
    locked = np.zeros(len(geoms), dtype=bool) if locked is None else locked
    pieces: list[shapely.Geometry] = []
    for g in range(len(geoms)):
        parts = shapely.get_parts(geoms[g])
        if len(parts) <= 1:
            continue
        pts = anchors[g]
        if len(pts):
            holds = np.array([shapely.intersects(p, pts).any() for p in parts])
        else:
            holds = np.zeros(len(parts), dtype=bool)
            holds[int(np.argmax(shapely.area(parts)))] = True
        if not holds.any():
            holds[int(np.argmax(shapely.area(parts)))] = True
        geoms[g] = shapely.union_all(parts[holds])
        pieces.extend(parts[~holds])
    covered = shapely.union_all(geoms[~shapely.is_empty(geoms)])
    gap = shapely.difference(area, covered)
    if not gap.is_empty:
        gp = shapely.get_parts(gap)
        pieces.extend(gp[shapely.area(gp) > 0])
    # Trim any overlap with the outside of the area.
    geoms = shapely.intersection(geoms, area)
    geoms = np.array([_polygonal(g) for g in geoms], dtype=object)
    if not pieces:
        return geoms
    pieces_arr = np.array(pieces, dtype=object)
    order = np.argsort(-shapely.area(pieces_arr), kind="stable")
    free = np.flatnonzero(~locked)
    if len(free) == 0:
        free = np.arange(len(geoms))
    for i in order:
        piece = pieces_arr[i]
        border = shapely.length(shapely.intersection(geoms[free], piece.boundary))
        if border.max() > 0:
            target = free[int(np.argmax(border))]
        else:
            target = free[int(np.argmin(shapely.distance(geoms[free], piece)))]
        geoms[target] = _polygonal(shapely.union(geoms[target], piece))
    return geoms


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep only the polygonal parts of `geom` (drop lines and points from noding)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    tid = shapely.get_type_id(geom)
    if tid in (3, 6):
        return geom
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    if len(polys) == 0:
        return shapely.Polygon()
    return shapely.union_all(polys)


# ------------------------------------------------------------------------ codes
def _sequence_codes(
    geoms: np.ndarray, community: np.ndarray, row_height: float | None = None
) -> np.ndarray:
    """Sequence numbers (1-based) within each community in reading order.

    Grids are banded into rows from north to south (row height: the square root of the
    community's median grid area, unless given), then ordered west to east in a row.
    """
    pts = shapely.point_on_surface(geoms)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    seq = np.zeros(len(geoms), dtype=np.int64)
    frame = pd.DataFrame({"c": community, "x": x, "y": y, "a": shapely.area(geoms)})
    for _, sub in frame.groupby("c", sort=False):
        h = row_height or max(float(np.sqrt(np.median(sub["a"]))), 1.0)
        row = np.floor((sub["y"].max() - sub["y"]) / h).astype(np.int64)
        order = np.lexsort((sub["x"].to_numpy(), row.to_numpy()))
        seq[sub.index.to_numpy()[order]] = np.arange(1, len(sub) + 1)
    return seq


def _dedupe_seeds(xy: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mask of seed points to keep: one per distinct location (to the millimetre).

    Voronoi cells need distinct points. Where every seed of a label (atom or grid)
    duplicates another label's seed, one of its seeds is nudged east in 1 cm steps
    (`xy` is changed in place) and kept, so every label keeps at least one cell.
    """
    key = np.round(xy, 3)
    _, first = np.unique(key, axis=0, return_index=True)
    keep = np.zeros(len(xy), dtype=bool)
    keep[first] = True
    for lab in np.setdiff1d(labels, labels[keep]):
        i = int(np.flatnonzero(labels == lab)[0])
        step = 1
        while True:
            cand = xy[i] + np.array([0.01 * step, 0.0])
            if not (np.abs(key - np.round(cand, 3)).sum(axis=1) == 0).any():
                xy[i] = cand
                keep[i] = True
                break
            step += 1
    return keep


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby–Popper compactness 4πA/P² (1 for a circle, near 0 for a thin strip)."""
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perim > 0, 4 * np.pi * area / perim**2, np.nan)
    return pp


def _unit_strips(geom: shapely.Geometry, fractions: np.ndarray) -> np.ndarray:
    """Cut a footprint into strips across its long axis with the given area fractions.

    Used to place the parts of a building split by units: unit groups lie side by side
    along the long side of a slab.
    """
    rect = shapely.minimum_rotated_rectangle(geom)
    coords = np.asarray(rect.exterior.coords)[:4]
    e1, e2 = coords[1] - coords[0], coords[2] - coords[1]
    # The rectangle is coords[0] + s*e1 + t*e2 for s, t in [0, 1].
    long_vec, short_vec = (e1, e2) if np.hypot(*e1) >= np.hypot(*e2) else (e2, e1)
    origin = coords[0]
    cuts = np.concatenate([[0.0], np.cumsum(fractions)])
    cuts[-1] = 1.0
    strips = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        p0 = origin + long_vec * a
        p1 = origin + long_vec * b
        quad = shapely.Polygon([p0, p1, p1 + short_vec, p0 + short_vec])
        strips.append(_polygonal(shapely.intersection(geom, quad.buffer(1e-6))))
    return np.array(strips, dtype=object)
