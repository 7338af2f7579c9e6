"""Private raster helpers: windowed zonal statistics over building footprints.

The functions here never hold a whole raster in memory. Buildings are grouped by the
raster tile (``TILE_SIZE`` x ``TILE_SIZE`` cells) that holds their centroid; for each
tile that holds buildings, one window covering those buildings is read, and the cells
of every footprint are found with a vectorised scan-line fill (numpy only, no
per-building Python loop), so a million footprints cost a few seconds.

Cell rule
---------
A cell belongs to a footprint when its centre lies inside the polygon (even-odd rule,
half-open on the row and column, the rule GDAL uses for ``all_touched=False``). Unlike
burning ids with ``rasterio.features.rasterize``, overlapping footprints each keep all
their cells. The cell under the footprint's centroid is always sampled as well, so a
footprint smaller than a cell still gets a value.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.env
import shapely
from affine import Affine
from rasterio.windows import Window
from tqdm import tqdm

#: Side, in cells, of the square tiles the raster is cut into for windowed reads.
TILE_SIZE = 2048

Reader = Callable[[Window], Mapping[str, np.ndarray]]


#: GDAL block cache (MB) used while reading windows, unless GDAL_CACHEMAX is set by the
#: caller. GDAL's default (5 % of RAM) would keep up to gigabytes of decompressed blocks
#: that a single pass over the tiles never reuses.
GDAL_CACHE_MB = 256


def raster_env() -> rasterio.Env:
    """A :class:`rasterio.Env` with a bounded block cache (see :data:`GDAL_CACHE_MB`)."""
    user_set = "GDAL_CACHEMAX" in os.environ or (
        rasterio.env.hasenv() and "GDAL_CACHEMAX" in rasterio.env.getenv()
    )
    return rasterio.Env() if user_set else rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


def read_band(
    src, window: Window | None = None, band: int = 1, *, mask_nodata: bool = True
) -> np.ndarray:
    """Read one band (or a window of it) as float32, with no-data cells set to NaN.

    Parameters
    ----------
    src : rasterio.io.DatasetReader
        Open raster.
    window : rasterio.windows.Window, optional
        Cells to read; the whole band when None.
    band : int
        Band number (1-based).
    mask_nodata : bool
        Set the no-data cells to NaN (skip when the caller handles them).

    Returns
    -------
    numpy.ndarray
        2-D float32 array.
    """
    arr = src.read(band, window=window, out_dtype="float32")
    nodata = src.nodata
    if mask_nodata and nodata is not None and not np.isnan(nodata):
        arr[arr == np.float32(nodata)] = np.nan
    return arr


def block_min(src, factor: int, band: int = 1) -> np.ndarray:
    """Read a band aggregated by an integer `factor`, taking the minimum of each block.

    The band is read in strips, so memory stays at one strip plus the result. NaN
    (no data) cells are ignored; an all-NaN block gives NaN. The result has
    ``ceil(height / factor)`` rows and ``ceil(width / factor)`` columns; the last row and
    column of blocks may be partial.
    """
    if factor <= 1:
        return read_band(src, band=band)
    height, width = src.height, src.width
    out_h, out_w = math.ceil(height / factor), math.ceil(width / factor)
    out = np.empty((out_h, out_w), dtype="float32")
    step = factor * max(1, 1024 // factor)
    for row in range(0, height, step):
        h = min(step, height - row)
        strip = read_band(src, Window(0, row, width, h), band=band)
        hb = math.ceil(h / factor)
        padded = np.full((hb * factor, out_w * factor), np.inf, dtype="float32")
        padded[:h, :width] = np.where(np.isnan(strip), np.inf, strip)
        mins = padded.reshape(hb, factor, out_w, factor).min(axis=(1, 3))
        mins[np.isinf(mins)] = np.nan
        out[row // factor : row // factor + hb] = mins
    return out


@dataclass
class _PixelFootprints:
    """Footprint edges, bounds and centroids in the pixel space of one raster grid."""

    ex0: np.ndarray  # edge start column (float, pixel units)
    ey0: np.ndarray  # edge start row
    ex1: np.ndarray
    ey1: np.ndarray
    eb: np.ndarray  # building index of each edge
    c0: np.ndarray  # first column of the bounding box (int)
    r0: np.ndarray
    c1: np.ndarray  # one past the last column
    r1: np.ndarray
    cx: np.ndarray  # centroid column (float)
    cy: np.ndarray  # centroid row (float)


def _pixel_footprints(geoms: np.ndarray, transform: Affine) -> _PixelFootprints:
    """Convert footprints (in the raster CRS) to edges and bounds in pixel space."""
    n = len(geoms)
    inv = ~transform
    types = shapely.get_type_id(geoms)
    simple = types == 3  # polygons ...
    simple[simple] = shapely.get_num_interior_rings(geoms[simple]) == 0  # ... without holes
    if simple.all():
        # fast path (most footprints): one ring per geometry, no part/ring objects
        coords, coord_b = shapely.get_coordinates(geoms, return_index=True)
        coord_r = coord_b
    else:
        parts, part_b = shapely.get_parts(geoms, return_index=True)
        is_poly = shapely.get_type_id(parts) == 3
        parts, part_b = parts[is_poly], part_b[is_poly]
        rings, ring_p = shapely.get_rings(parts, return_index=True)
        coords, coord_r = shapely.get_coordinates(rings, return_index=True)
        coord_b = part_b[ring_p][coord_r]
    px = inv.a * coords[:, 0] + inv.b * coords[:, 1] + inv.c
    py = inv.d * coords[:, 0] + inv.e * coords[:, 1] + inv.f
    # an edge joins two consecutive vertices of the same ring
    e = np.flatnonzero(coord_r[:-1] == coord_r[1:])
    c0 = np.full(n, 0, dtype=np.int64)
    c1 = np.full(n, 0, dtype=np.int64)
    r0 = np.full(n, 0, dtype=np.int64)
    r1 = np.full(n, 0, dtype=np.int64)
    if len(coords):
        starts = np.flatnonzero(np.r_[True, coord_b[1:] != coord_b[:-1]])
        owners = coord_b[starts]
        c0[owners] = np.floor(np.minimum.reduceat(px, starts))
        c1[owners] = np.ceil(np.maximum.reduceat(px, starts))
        r0[owners] = np.floor(np.minimum.reduceat(py, starts))
        r1[owners] = np.ceil(np.maximum.reduceat(py, starts))
    cent = shapely.centroid(geoms)
    ok = ~(shapely.is_missing(cent) | shapely.is_empty(cent))
    gx, gy = np.full(n, np.nan), np.full(n, np.nan)
    gx[ok], gy[ok] = shapely.get_x(cent[ok]), shapely.get_y(cent[ok])
    cx = inv.a * gx + inv.b * gy + inv.c
    cy = inv.d * gx + inv.e * gy + inv.f
    return _PixelFootprints(px[e], py[e], px[e + 1], py[e + 1], coord_b[e], c0, r0, c1, r1, cx, cy)


def expand_runs(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand runs ``(start, count)``: return (run index, start + offset) of each element.

    Runs with a count of zero or less give nothing. Fully vectorised.
    """
    counts = np.maximum(counts, 0)
    total = int(counts.sum())
    run = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    offset = np.arange(total, dtype=np.int64) - np.repeat(first, counts)
    return run, starts[run] + offset


def footprint_cells(
    ex0: np.ndarray,
    ey0: np.ndarray,
    ex1: np.ndarray,
    ey1: np.ndarray,
    eb: np.ndarray,
    window: Window,
) -> tuple[np.ndarray, np.ndarray]:
    """Cells of a window whose centres lie inside the footprints (scan-line fill).

    Parameters
    ----------
    ex0, ey0, ex1, ey1 : numpy.ndarray
        Polygon edges in absolute pixel coordinates (column, row) of the raster.
    eb : numpy.ndarray
        Non-negative building index of each edge (local to the window's group).
    window : rasterio.windows.Window
        The window; cells outside it are dropped.

    Returns
    -------
    building, flat : numpy.ndarray
        Building index and flat index (row * width + col, window-relative) of every
        cell, sorted by building.
    """
    row0, col0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    ylo, yhi = np.minimum(ey0, ey1), np.maximum(ey0, ey1)
    # rows r with centre r + 0.5 in [ylo, yhi): half-open, so a shared vertex counts once
    r_lo = np.maximum(np.ceil(ylo - 0.5), row0).astype(np.int64)
    r_hi = np.minimum(np.ceil(yhi - 0.5) - 1, row0 + h - 1).astype(np.int64)
    edge, rows = expand_runs(r_lo, r_hi - r_lo + 1)
    if len(rows) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    yc = rows + 0.5
    x0, y0 = ex0[edge], ey0[edge]
    x = x0 + (yc - y0) * (ex1[edge] - x0) / (ey1[edge] - y0)
    key = eb[edge].astype(np.int64) * h + (rows - row0)
    order = np.lexsort((x, key))
    x, key = x[order], key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(key)])
    if (sizes % 2).any():  # degenerate ring (NaN vertex): drop the unpaired rows
        keep = np.repeat(sizes % 2 == 0, sizes)
        x, key = x[keep], key[keep]
    # even-odd rule: consecutive crossings on one row of one building bound a run
    xa, xb, k = x[0::2], x[1::2], key[0::2]
    c_lo = np.maximum(np.ceil(xa - 0.5), col0).astype(np.int64)
    c_hi = np.minimum(np.ceil(xb - 0.5) - 1, col0 + w - 1).astype(np.int64)
    run, cols = expand_runs(c_lo, c_hi - c_lo + 1)
    k = k[run]
    building = k // h
    flat = (k % h) * w + (cols - col0)
    return building, flat


def _group_stats(
    values: np.ndarray, starts: np.ndarray, stats: Sequence[str]
) -> dict[str, np.ndarray]:
    """Statistics of `values` over contiguous groups beginning at `starts` (NaN ignored)."""
    out: dict[str, np.ndarray] = {}
    valid = ~np.isnan(values)
    count = np.add.reduceat(valid.astype(np.int64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        if "max" in stats:
            out["max"] = np.fmax.reduceat(values, starts)
        if "min" in stats:
            out["min"] = np.fmin.reduceat(values, starts)
        if "mean" in stats:
            out["mean"] = np.add.reduceat(np.where(valid, values, 0.0), starts) / count
    if "median" in stats:
        out["median"] = _group_median(values, starts)
    out["count"] = count
    return out


def _group_median(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Median per contiguous group, ignoring NaN (NaN for an all-NaN group)."""
    n_groups = len(starts)
    group = np.repeat(np.arange(n_groups), np.diff(np.r_[starts, len(values)]))
    valid = ~np.isnan(values)
    v, g = values[valid].astype(np.float64), group[valid]
    result = np.full(n_groups, np.nan)
    if len(v) == 0:
        return result
    order = np.lexsort((v, g))
    v, g = v[order], g[order]
    cnt = np.bincount(g, minlength=n_groups)
    first = np.cumsum(cnt) - cnt
    has = cnt > 0
    lo = first[has] + (cnt[has] - 1) // 2
    hi = first[has] + cnt[has] // 2
    result[has] = (v[lo] + v[hi]) / 2.0
    return result


def zonal_stats(
    geoms: np.ndarray,
    transform: Affine,
    shape: tuple[int, int],
    read: Reader,
    stats: Mapping[str, Sequence[str]],
    *,
    tile_size: int | None = None,
    desc: str = "zonal statistics",
) -> dict[str, np.ndarray]:
    """Zonal statistics of raster layers over building footprints, tile by tile.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
        Footprints in the raster's CRS. Empty or missing geometries get NaN.
    transform : affine.Affine
        Raster transform (any affine, rotation included).
    shape : (int, int)
        Raster (height, width).
    read : callable
        ``read(window) -> {layer: 2-D float array}``; NaN marks cells without a value.
    stats : mapping
        For each layer the statistics wanted, among ``max``, ``min``, ``mean``,
        ``median``.
    tile_size : int, optional
        Tile side in cells (default :data:`TILE_SIZE`).
    desc : str
        Label of the progress bar.

    Returns
    -------
    dict
        ``"<layer>_<stat>"`` arrays (float64, one value per footprint). ``max`` and
        ``min`` include the cell under the centroid; ``mean`` and ``median`` fall back
        to that cell when no cell centre lies inside the footprint. ``"<layer>_count"``
        holds the number of cells with a value whose centre lies inside the footprint,
        ``"<layer>_centroid"`` the value under the centroid.
    """
    tile = int(tile_size or TILE_SIZE)
    n = len(geoms)
    height, width = shape
    fp = _pixel_footprints(np.asarray(geoms, dtype=object), transform)
    out: dict[str, np.ndarray] = {}
    for layer, wanted in stats.items():
        for s in wanted:
            out[f"{layer}_{s}"] = np.full(n, np.nan)
        out[f"{layer}_count"] = np.zeros(n, dtype=np.int64)
        out[f"{layer}_centroid"] = np.full(n, np.nan)

    # group buildings by the tile holding their centroid; footprints larger than a tile
    # form a group of their own
    has_geom = np.isfinite(fp.cx) & np.isfinite(fp.cy)
    overlaps = (fp.c1 > 0) & (fp.c0 < width) & (fp.r1 > 0) & (fp.r0 < height) & has_geom
    n_tx, n_ty = math.ceil(width / tile), math.ceil(height / tile)
    cx = np.where(has_geom, fp.cx, 0.0)
    cy = np.where(has_geom, fp.cy, 0.0)
    tx = np.clip(np.floor(cx) // tile, 0, n_tx - 1).astype(np.int64)
    ty = np.clip(np.floor(cy) // tile, 0, n_ty - 1).astype(np.int64)
    key = ty * n_tx + tx
    big = ((fp.c1 - fp.c0) > tile) | ((fp.r1 - fp.r0) > tile)
    key[big] = n_tx * n_ty + np.arange(int(big.sum()))
    key[~overlaps] = -1
    order = np.argsort(key, kind="stable")
    order = order[key[order] >= 0]
    sorted_keys = key[order]
    group_starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    group_ends = np.r_[group_starts[1:], len(order)]
    local = np.zeros(n, dtype=np.int64)
    if len(order):
        local[order] = np.arange(len(order)) - np.repeat(group_starts, group_ends - group_starts)

    edge_key = key[fp.eb] if len(fp.eb) else np.empty(0, np.int64)
    e_order = np.argsort(edge_key, kind="stable")
    edge_key = edge_key[e_order]
    ex0, ey0, ex1, ey1, eb = (a[e_order] for a in (fp.ex0, fp.ey0, fp.ex1, fp.ey1, fp.eb))

    groups = range(len(group_starts)) if len(order) else range(0)
    bar = tqdm(groups, desc=desc, unit="tile", disable=not sys.stderr.isatty(), leave=False)
    with raster_env():
        for g in bar:
            members = order[group_starts[g] : group_ends[g]]
            gkey = sorted_keys[group_starts[g]]
            row0 = max(0, int(fp.r0[members].min()))
            row1 = min(height, int(fp.r1[members].max()))
            col0 = max(0, int(fp.c0[members].min()))
            col1 = min(width, int(fp.c1[members].max()))
            if row1 <= row0 or col1 <= col0:
                continue
            window = Window(col0, row0, col1 - col0, row1 - row0)
            arrays = read(window)
            e0, e1 = np.searchsorted(edge_key, [gkey, gkey + 1])
            building, flat = footprint_cells(
                ex0[e0:e1], ey0[e0:e1], ex1[e0:e1], ey1[e0:e1], local[eb[e0:e1]], window
            )
            if len(building):
                starts = np.flatnonzero(np.r_[True, building[1:] != building[:-1]])
                owners = members[building[starts]]
            # cell under the centroid
            rc = np.floor(fp.cy[members]).astype(np.int64) - row0
            cc = np.floor(fp.cx[members]).astype(np.int64) - col0
            inside = (rc >= 0) & (rc < window.height) & (cc >= 0) & (cc < window.width)
            for layer, wanted in stats.items():
                arr = np.asarray(arrays[layer])
                cval = np.full(len(members), np.nan)
                cval[inside] = arr[rc[inside], cc[inside]]
                out[f"{layer}_centroid"][members] = cval
                if len(building):
                    res = _group_stats(arr.ravel()[flat], starts, wanted)
                    out[f"{layer}_count"][owners] = res["count"]
                    for s in wanted:
                        out[f"{layer}_{s}"][owners] = res[s]
    bar.close()

    # combine the footprint cells with the centroid cell
    for layer, wanted in stats.items():
        cval = out[f"{layer}_centroid"]
        none = out[f"{layer}_count"] == 0
        for s in wanted:
            col = out[f"{layer}_{s}"]
            if s == "max":
                out[f"{layer}_{s}"] = np.fmax(col, cval)
            elif s == "min":
                out[f"{layer}_{s}"] = np.fmin(col, cval)
            else:
                out[f"{layer}_{s}"] = np.where(none, cval, col)
    return out


def sloping_line_grid(
    geoms: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    shape: tuple[int, int],
    transform: Affine,
) -> np.ndarray:
    """Burn lines into a grid with a value varying linearly along each line.

    Each line is densified to half a cell, and every cell a point falls in takes the
    value interpolated between the line's `start` and `end` (the highest value wins
    where lines share a cell); NaN elsewhere. Used for sloping river water levels.

    Parameters
    ----------
    geoms : ndarray of LineString
    start, end : ndarray of float
        Value at each line's first and last vertex.
    shape : tuple of int
        Grid rows and columns.
    transform : affine.Affine
        The grid's transform.

    Returns
    -------
    numpy.ndarray
        ``float32`` grid.
    """
    step = min(abs(transform.a), abs(transform.e)) / 2
    dense = shapely.segmentize(geoms, step)
    xy, line = shapely.get_coordinates(dense, return_index=True)
    frac = shapely.line_locate_point(geoms[line], shapely.points(xy), normalized=True)
    value = start[line] + (end[line] - start[line]) * np.nan_to_num(frac)
    inv = ~transform
    c = np.floor(inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c).astype(np.int64)
    r = np.floor(inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f).astype(np.int64)
    ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    order = np.argsort(value[ok], kind="stable")  # the highest value in a cell wins
    grid = np.full(shape, np.nan, dtype="float32")
    grid[r[ok][order], c[ok][order]] = value[ok][order]
    return grid
