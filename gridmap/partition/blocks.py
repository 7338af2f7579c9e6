"""Barriers and blocks: what grids should not straddle, ranked by strength.

Barriers are ranked; the partition crosses the weakest one available when a grid has
to cross one (the size range is the standard, barriers are preferences):

=====  =============  ===============================================================
rank   name           what
=====  =============  ===============================================================
4      ``water``      rivers, canals, water bodies, railways
3      ``arterial``   motorway, trunk, primary, secondary roads (and their links)
2      ``local``      tertiary, residential, unclassified, service roads, lanes
1      ``wall``       compound walls, fences, footpaths, tracks
=====  =============  ===============================================================

The class is read from the usual columns: OSM's ``highway``, ``railway``, ``waterway``,
``natural``, ``landuse`` and ``barrier``; Geofabrik's ``fclass``; and ``TYPE`` or
``type`` as in many road shapefiles. Polygon barriers (water bodies) act through their
outlines. A layer with none of these columns is taken as arterial roads (a barrier the
user chose), or as water when it holds polygons.

:func:`blocks` cuts the planning areas (communities) along the barrier lines: the
linework is noded once on the 1 cm precision grid and polygonized, so blocks of one
area tile it exactly and neighbouring blocks share their edges.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import to_metric
from ..errors import SchemaError
from .geometry import PRECISION

__all__ = [
    "BARRIER_CLASS_COLUMNS",
    "RANK_ARTERIAL",
    "RANK_LOCAL",
    "RANK_NAMES",
    "RANK_WALL",
    "RANK_WATER",
    "barrier_ranks",
    "blocks",
    "prepare_barriers",
]

RANK_WALL, RANK_LOCAL, RANK_ARTERIAL, RANK_WATER = 1, 2, 3, 4
#: Name of every barrier rank.
RANK_NAMES = {0: "none", RANK_WALL: "wall", RANK_LOCAL: "local", RANK_ARTERIAL: "arterial",
              RANK_WATER: "water"}  # fmt: skip

#: Columns that name a barrier's class, in the order they are read.
BARRIER_CLASS_COLUMNS = ("waterway", "railway", "natural", "landuse", "highway", "fclass",
                         "TYPE", "type", "barrier")  # fmt: skip

_CHUNK_MIN = 200  # areas: below this, blocks are made in one piece

_WATER = frozenset({
    "river", "riverbank", "canal", "stream", "drain", "ditch", "water", "wetland", "reservoir",
    "basin", "lake", "pond", "dock", "rail", "light_rail", "subway", "tram", "narrow_gauge",
    "railway", "monorail", "preserved", "funicular",
})  # fmt: skip
_ARTERIAL = frozenset({
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "expressway",
})  # fmt: skip
_LOCAL = frozenset({
    "tertiary", "tertiary_link", "residential", "unclassified", "living_street", "service",
    "road", "pedestrian", "busway", "construction", "raceway",
})  # fmt: skip
_WALL = frozenset({
    "footway", "path", "cycleway", "steps", "track", "track_grade1", "track_grade2",
    "track_grade3", "track_grade4", "track_grade5", "bridleway", "corridor", "wall", "fence",
    "city_wall", "retaining_wall", "hedge", "unknown",
})  # fmt: skip
_BY_CLASS = {**{c: RANK_WALL for c in _WALL}, **{c: RANK_LOCAL for c in _LOCAL},
             **{c: RANK_ARTERIAL for c in _ARTERIAL}, **{c: RANK_WATER for c in _WATER}}  # fmt: skip


def barrier_ranks(layer: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The rank and class label of every feature of a barrier layer.

    Parameters
    ----------
    layer : geopandas.GeoDataFrame
        Roads, rivers, railways, walls (lines or polygons).

    Returns
    -------
    ranks : ndarray of int
        1 (wall) .. 4 (water, railway); see the module documentation.
    labels : ndarray of str
        ``column=value`` of the class found, plus the feature's name when it has one
        (``"highway=primary 人民路"``); ``"barrier"`` when no class column is present.
    """
    n = len(layer)
    ranks = np.zeros(n, dtype=np.int64)
    labels = np.full(n, "", dtype=object)
    for col in BARRIER_CLASS_COLUMNS:
        if col not in layer.columns:
            continue
        val = layer[col].astype(object).where(layer[col].notna(), "").astype(str)
        val = val.str.strip().str.lower().to_numpy()
        if col in ("waterway", "railway"):
            r = np.where((val != "") & (val != "no"), RANK_WATER, 0)
            r = np.where(np.isin(val, ["abandoned", "disused", "razed", "platform"]), 0, r)
        elif col in ("natural", "landuse"):
            r = np.where(np.isin(val, list(_WATER)), RANK_WATER, 0)
        elif col == "barrier":
            r = np.where(val != "", RANK_WALL, 0)
        else:
            r = pd.Series(val).map(_BY_CLASS).fillna(0).to_numpy(dtype=np.int64)
            # an unknown road class still is a road
            r = np.where((r == 0) & (val != "") & (col != "type"), RANK_LOCAL, r)
        new = (ranks == 0) & (r > 0)
        ranks[new] = r[new]
        labels[new] = [f"{col}={v}" for v in val[new]]
    unknown = ranks == 0
    if unknown.any():
        poly = np.isin(shapely.get_type_id(layer.geometry.values), (3, 6))
        ranks[unknown] = np.where(poly[unknown], RANK_WATER, RANK_ARTERIAL)
        labels[unknown] = "barrier"
    for col in ("name", "NAME", "名称"):
        if col in layer.columns:
            nm = layer[col].astype(object).where(layer[col].notna(), "").astype(str).to_numpy()
            labels = np.array(
                [f"{lab} {n}".strip() if n else lab for lab, n in zip(labels, nm, strict=True)],
                dtype=object,
            )
            break
    return ranks, labels


def prepare_barriers(
    barriers: gpd.GeoDataFrame | list[gpd.GeoDataFrame] | tuple | None,
    crs,
    *,
    min_rank: int = RANK_WALL,
) -> gpd.GeoDataFrame:
    """Barrier lines in the metric CRS, one row per line, with rank and label.

    Parameters
    ----------
    barriers : GeoDataFrame or list of GeoDataFrame, optional
        Barrier layers (lines or polygons, any CRS).
    crs : pyproj.CRS
        The metric CRS of the plan.
    min_rank : int
        Drop barriers weaker than this rank (e.g. ``RANK_ARTERIAL`` keeps arterials,
        rivers and railways only).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``barrier`` (label), ``rank``, ``rank_name`` and line geometry, snapped
        to the 1 cm grid; empty when there are no barriers.
    """
    empty = gpd.GeoDataFrame(
        {"barrier": pd.Series([], dtype=object), "rank": pd.Series([], dtype="int64"),
         "rank_name": pd.Series([], dtype=object)},
        geometry=gpd.GeoSeries([], crs=crs), crs=crs,
    )  # fmt: skip
    if barriers is None:
        return empty
    layers = list(barriers) if isinstance(barriers, list | tuple) else [barriers]
    frames = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, gpd.GeoDataFrame):
            raise SchemaError(f"barriers[{i}] must be a GeoDataFrame, got {type(layer).__name__}")
        if len(layer) == 0:
            continue
        layer = layer[~(layer.geometry.isna() | layer.geometry.is_empty)]
        m = to_metric(layer, crs, f"barriers[{i}]")
        ranks, labels = barrier_ranks(m)
        geoms = shapely.make_valid(m.geometry.values)
        poly = np.isin(shapely.get_type_id(geoms), (3, 6, 7))
        lines = np.where(poly, shapely.boundary(shapely.force_2d(geoms)), geoms)
        lines = np.where(poly, lines, shapely.force_2d(geoms))
        parts, idx = shapely.get_parts(lines, return_index=True)
        keep = np.isin(shapely.get_type_id(parts), (1, 2)) & (ranks[idx] >= min_rank)
        parts = shapely.line_merge(parts[keep]) if keep.any() else parts[keep]
        idx = idx[keep]
        frames.append(
            gpd.GeoDataFrame({"barrier": labels[idx], "rank": ranks[idx]}, geometry=parts, crs=crs)
        )
    if not frames:
        return empty
    gdf = pd.concat(frames, ignore_index=True)
    gdf = gdf.set_geometry(shapely.set_precision(gdf.geometry.values, PRECISION))
    gdf = gdf[~shapely.is_empty(gdf.geometry.values)].reset_index(drop=True)
    gdf["rank_name"] = gdf["rank"].map(RANK_NAMES)
    return gdf


def _chunks(areas: np.ndarray) -> list[np.ndarray]:
    """Areas split into spatial chunks (west/east halves and so on) for threads."""
    workers = min(os.cpu_count() or 1, 8)
    if len(areas) < _CHUNK_MIN or workers < 2:
        return [np.arange(len(areas))]
    x = shapely.get_x(shapely.point_on_surface(areas))
    order = np.argsort(x, kind="stable")
    return [np.sort(c) for c in np.array_split(order, workers)]


def _faces(areas: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Polygonize the outlines of `areas` with the cutting lines that cross them."""
    rings = shapely.get_parts(shapely.boundary(areas))
    parts = [rings]
    if len(cut):
        hit = np.unique(shapely.STRtree(areas).query(cut, predicate="intersects")[0])
        parts.append(cut[hit])
    noded = shapely.union_all(np.concatenate(parts), grid_size=PRECISION)
    # noded on the grid, so the faces are valid and on the grid already
    faces, cuts, dangles, _ = shapely.polygonize_full(shapely.get_parts(noded))
    polys = shapely.get_parts(faces)
    loose = np.concatenate([shapely.get_parts(cuts), shapely.get_parts(dangles)]).astype(object)
    return polys[~shapely.is_empty(polys) & (shapely.get_type_id(polys) == 3)], loose


def blocks(
    areas: np.ndarray, lines: np.ndarray, *, extra_lines: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut planning areas into blocks along barrier lines.

    Parameters
    ----------
    areas : ndarray of Polygon or MultiPolygon
        Non-overlapping planning areas (communities), snapped to the 1 cm grid.
    lines : ndarray of LineString
        Barrier lines (any extent; lines outside every area are ignored).
    extra_lines : ndarray of LineString, optional
        More cutting lines (e.g. institution and compound outlines).

    Returns
    -------
    block_geoms : ndarray of Polygon
        Blocks; the blocks of one area tile it (up to the 1 cm snap rounding of the
        noded outlines: the union of an area's blocks is the area on the 1 cm grid).
    block_area : ndarray of int
        Index of the area holding each block.
    loose : ndarray of LineString
        Pieces of cutting line that bound no block (dead ends inside a block): a grid
        holding one still crosses that line.
    """
    areas = np.asarray(areas, dtype=object)
    cut = [np.asarray(x, dtype=object) for x in (lines, extra_lines) if x is not None and len(x)]
    cut = np.concatenate(cut) if cut else np.empty(0, dtype=object)
    # large layers are noded in spatial chunks, in threads (GEOS releases the GIL);
    # chunks share their outer edges, which both sides node the same way
    chunks = _chunks(areas)
    if len(chunks) > 1:
        # shared geometries must not be prepared (cached) here: GEOS builds a prepared
        # geometry's indexes lazily, which is not safe across threads
        with ThreadPoolExecutor(len(chunks)) as pool:
            out = list(pool.map(lambda c: _chunk_blocks(areas, c, cut), chunks))
    else:
        out = [_chunk_blocks(areas, chunks[0], cut)]
    loose = np.concatenate([o[2] for o in out]).astype(object)
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]), loose


def _chunk_blocks(
    all_areas: np.ndarray, chunk: np.ndarray, cut: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of the areas `chunk` (indexes into `all_areas`)."""
    areas = all_areas[chunk]
    polys, loose = _faces(areas, cut)
    rep = shapely.point_on_surface(polys)
    tree = shapely.STRtree(areas)
    pi, ai = tree.query(rep, predicate="within")
    # a block lies in one area; keep the first match (areas do not overlap)
    order = np.lexsort((ai, pi))
    pi, ai = pi[order], ai[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
    owner = np.full(len(polys), -1, dtype=np.int64)
    owner[pi[first]] = ai[first]
    # snap rounding moves the noded outlines by up to half a centimetre: a thin block
    # along an area's edge may have its representative point just outside the area;
    # it belongs to the area that holds most of it
    lost = np.flatnonzero(owner < 0)
    if len(lost):
        li, la = tree.query(polys[lost], predicate="intersects")
        share = shapely.area(shapely.intersection(polys[lost][li], areas[la])) / shapely.area(
            polys[lost][li]
        )
        o = np.lexsort((-share, li))
        top = np.r_[True, li[o][1:] != li[o][:-1]] if len(li) else np.zeros(0, bool)
        best = o[top]
        best = best[share[best] > 0.5]
        owner[lost[li[best]]] = la[best]
    keep = owner >= 0
    return polys[keep], chunk[owner[keep]], loose
