"""The precision model shared by every overlay of the partition.

All partition geometry is computed in a projected metric CRS and snapped to one fixed
precision grid, :data:`PRECISION` (1 cm). Every overlay (noding the barrier lines,
polygonizing blocks, clipping Voronoi cells, dissolving cells into grids) runs with
``grid_size=PRECISION``, so neighbouring polygons share exactly the same vertices and
their unions never leave slivers, gaps or point-touching parts.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely

from .._runtime import gc_paused

__all__ = [
    "PRECISION",
    "gc_paused",
    "grid_keys",
    "in_threads",
    "locate_points",
    "points_near_lines",
    "round_to_grid",
    "polsby_popper",
    "polygonal",
    "polygonal_parts",
    "snap",
    "unique_pairs",
    "unit_strips",
    "unit_strips_many",
]

#: Precision grid of every partition overlay, in metres.
PRECISION = 0.01

_POLYGON, _MULTIPOLYGON = 3, 6
_THREAD_MIN = 4_000  # elements: smaller arrays are not worth a thread pool


def in_threads(func, *arrays, min_size: int = _THREAD_MIN, **kwargs) -> np.ndarray:
    """Run a vectorised shapely function over chunks of its arrays in threads.

    Shapely's vectorised functions release the GIL, so chunks run on all cores. The
    arrays are split along their first axis; the results are concatenated in order.
    Small inputs run directly.

    Parameters
    ----------
    func : callable
        A shapely ufunc-like function (``shapely.intersection``, ...).
    *arrays : ndarray
        Arrays of equal length.
    min_size : int
        Shorter arrays run directly (a thread pool costs more than it saves there).
    **kwargs
        Passed to `func`.

    Returns
    -------
    ndarray
    """
    n = len(arrays[0])
    workers = min(os.cpu_count() or 1, 8)
    if n < min_size or workers < 2:
        return func(*arrays, **kwargs)
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(
            lambda ab: func(*(a[ab[0] : ab[1]] for a in arrays), **kwargs),
            zip(bounds[:-1], bounds[1:], strict=True),
        )
        return np.concatenate(list(parts))


def grid_keys(xy: np.ndarray) -> np.ndarray:
    """One int64 per point on the :data:`PRECISION` grid: equal keys, equal points.

    x goes in the high 31 bits and y in the low 32, relative to the points' lower-left
    corner: exact for any extent under 21,000 km. Sorting the keys sorts the points
    by x, then y.
    """
    q = np.rint(np.asarray(xy, dtype=float) / PRECISION).astype(np.int64)
    if len(q):
        q -= q.min(axis=0)
    return (q[:, 0] << 32) | q[:, 1]


def unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """The distinct rows of an ``(m, 2)`` array of ints in ``0 .. n-1``, sorted.

    The same as ``np.unique(pairs, axis=0)``, through one int64 key per row (several
    times faster).
    """
    k = np.unique(np.asarray(pairs[:, 0], dtype=np.int64) * n + pairs[:, 1])
    return np.column_stack([k // n, k % n])


def points_near_lines(
    points: np.ndarray, lines: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (point, line) with the point within `distance` of the line.

    The lines are cut into their straight segments first: a point then meets only
    the few segments around it, and each test is one segment's distance instead of a
    whole (possibly kilometres long) line's.

    Parameters
    ----------
    points : ndarray of Point
    lines : ndarray of LineString or MultiLineString
    distance : float

    Returns
    -------
    point, line : ndarray of int
        Unique pairs, sorted by point then line.
    """
    coords, ci = shapely.get_coordinates(lines, return_index=True)
    parts = shapely.get_num_coordinates(shapely.get_parts(lines))
    # consecutive coordinates of one line, not across the parts of a multi-line
    start = np.cumsum(parts) - parts
    brk = np.zeros(len(coords), dtype=bool)
    brk[start[start < len(coords)]] = True
    s = np.flatnonzero((ci[1:] == ci[:-1]) & ~brk[1:])
    if len(s) == 0 or len(points) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    segs = shapely.linestrings(np.stack([coords[s], coords[s + 1]], axis=1))
    pi, si = shapely.STRtree(segs).query(points, predicate="dwithin", distance=distance)
    pairs = unique_pairs(np.column_stack([pi, ci[s][si]]), len(lines))
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


_SCALE = 1.0 / PRECISION  # 100: GEOS rounds as round(x * scale) / scale


def round_to_grid(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round every coordinate to the :data:`PRECISION` grid (numpy; no overlay).

    Much faster than :func:`shapely.set_precision` for geometries that are already
    clean (Voronoi cells, clipped cells), and gives the same numbers as GEOS's fixed
    precision model. Rounding can make a geometry invalid (a vertex moved across an
    edge); those are reported so the caller can snap them with an overlay instead.
    Empty geometries and valid multi-part polygons are fine as they are.

    Parameters
    ----------
    geoms : ndarray of geometry

    Returns
    -------
    rounded : ndarray of geometry
    ok : ndarray of bool
        Rounded geometries that are valid polygons.
    """
    out = np.array(geoms, dtype=object, copy=True)
    if len(out) == 0:
        return out, np.zeros(0, dtype=bool)
    coords = shapely.get_coordinates(out)
    out = shapely.set_coordinates(out, np.rint(coords * _SCALE) / _SCALE)
    polygonal_type = np.isin(shapely.get_type_id(out), (_POLYGON, _MULTIPOLYGON))
    ok = (polygonal_type & shapely.is_valid(out)) | shapely.is_empty(out)
    return out, ok


def snap(geoms: np.ndarray | shapely.Geometry) -> np.ndarray | shapely.Geometry:
    """Repair and snap geometries to the :data:`PRECISION` grid.

    Parameters
    ----------
    geoms : shapely geometry or array of them
        Geometries in a metric CRS.

    Returns
    -------
    shapely geometry or ndarray
        Valid geometries whose coordinates lie on the 1 cm grid.
    """
    if isinstance(geoms, shapely.Geometry):
        return shapely.set_precision(shapely.make_valid(geoms), PRECISION)
    geoms = in_threads(shapely.make_valid, np.asarray(geoms, dtype=object), min_size=500)
    return in_threads(shapely.set_precision, geoms, grid_size=PRECISION, min_size=500)


def polygonal(geom: shapely.Geometry | None) -> shapely.Geometry:
    """The polygonal part of `geom` (lines and points left by an overlay are dropped).

    Parameters
    ----------
    geom : shapely geometry or None

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        An empty Polygon when `geom` has no area.
    """
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    tid = shapely.get_type_id(geom)
    if tid in (_POLYGON, _MULTIPOLYGON):
        return geom
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), (_POLYGON, _MULTIPOLYGON))]
    if len(polys) == 0:
        return shapely.Polygon()
    if len(polys) == 1:
        return polys[0]
    return shapely.union_all(polys, grid_size=PRECISION)


def polygonal_parts(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every Polygon in `geoms` with the index of the geometry it came from.

    Parameters
    ----------
    geoms : ndarray of shapely geometries

    Returns
    -------
    parts : ndarray of Polygon
    index : ndarray of int
    """
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    multi = shapely.get_type_id(parts) == _MULTIPOLYGON
    if multi.any():  # collections may nest multipolygons
        sub, sidx = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        idx = np.concatenate([idx[~multi], idx[multi][sidx]])
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    return parts[keep], idx[keep]


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby–Popper compactness ``4πA/P²`` (1 for a circle, near 0 for a thin strip).

    Parameters
    ----------
    geoms : ndarray of shapely geometries

    Returns
    -------
    ndarray of float
        NaN for geometries without a perimeter.
    """
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perim > 0, 4 * np.pi * area / perim**2, np.nan)


def unit_strips(geom: shapely.Geometry, fractions: np.ndarray) -> np.ndarray:
    """Cut a footprint into strips across its long axis with the given area shares.

    Used to place the parts of a building split by units (单元): unit groups lie side
    by side along the long side of a slab.

    Parameters
    ----------
    geom : shapely Polygon
        The footprint (metric CRS).
    fractions : ndarray of float
        Share of each strip, summing to 1, in order along the long axis.

    Returns
    -------
    ndarray of geometry
        One (possibly empty) polygonal geometry per fraction.
    """
    fractions = np.asarray(fractions, dtype=float)
    return unit_strips_many(
        np.array([geom], dtype=object), fractions, np.zeros(len(fractions), dtype=np.int64)
    )


def unit_strips_many(geoms: np.ndarray, fractions: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """:func:`unit_strips` of many footprints at once.

    Parameters
    ----------
    geoms : ndarray of Polygon
        The footprints.
    fractions : ndarray of float
        Share of every strip; the strips of one footprint are consecutive, in order
        along its long axis, and their shares sum to 1.
    owner : ndarray of int
        The footprint of every strip (non-decreasing).

    Returns
    -------
    ndarray of geometry
        One (possibly empty) polygonal geometry per strip; a degenerate footprint (no
        rectangle around it) is its own first strip, the others are empty.
    """
    start = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    size = np.diff(np.r_[start, len(owner)])
    cum = np.cumsum(fractions)
    hi = cum - np.repeat(cum[start] - fractions[start], size)  # cumulated within its own
    lo = hi - fractions
    hi[np.r_[start[1:] - 1, len(hi) - 1]] = 1.0  # the last strip ends at the far side
    rect = shapely.minimum_rotated_rectangle(geoms)
    ok = (shapely.get_type_id(rect) == _POLYGON) & (shapely.get_num_coordinates(rect) == 5)
    corners = np.zeros((len(geoms), 4, 2))
    if ok.any():
        ring = shapely.get_coordinates(shapely.get_exterior_ring(rect[ok]))
        corners[ok] = ring.reshape(-1, 5, 2)[:, :4]
    e1 = corners[:, 1] - corners[:, 0]
    e2 = corners[:, 2] - corners[:, 1]
    first_long = np.hypot(*e1.T) >= np.hypot(*e2.T)
    long_vec = np.where(first_long[:, None], e1, e2)[owner]
    short_vec = np.where(first_long[:, None], e2, e1)[owner]
    p0 = corners[owner, 0] + long_vec * lo[:, None]
    p1 = corners[owner, 0] + long_vec * hi[:, None]
    quads = shapely.buffer(
        shapely.polygons(np.stack([p0, p1, p1 + short_vec, p0 + short_vec], axis=1)), 1e-6
    )
    strips = shapely.intersection(geoms[owner], quads, grid_size=PRECISION)
    odd = np.flatnonzero(~np.isin(shapely.get_type_id(strips), (_POLYGON, _MULTIPOLYGON)))
    strips[odd] = [polygonal(g) for g in strips[odd]]
    bad = ~ok[owner]
    first = np.zeros(len(owner), dtype=bool)
    first[start] = True
    strips[bad & first] = geoms[owner[bad & first]]
    strips[bad & ~first] = shapely.Polygon()
    return strips


def locate_points(points: np.ndarray, polys: np.ndarray) -> np.ndarray:
    """Index of the polygon covering each point (the lowest index on shared edges).

    Parameters
    ----------
    points : ndarray of Point, or ndarray of shape (n, 2)
    polys : ndarray of Polygon

    Returns
    -------
    ndarray of int
        -1 for points covered by no polygon.
    """
    pts = np.asarray(points)
    if pts.dtype != object:
        pts = shapely.points(pts)
    out = np.full(len(pts), -1, dtype=np.int64)
    if len(pts) == 0 or len(polys) == 0:
        return out
    pi, gi = shapely.STRtree(polys).query(pts, predicate="intersects")
    order = np.lexsort((gi, pi))
    pi, gi = pi[order], gi[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
    out[pi[first]] = gi[first]
    return out
