"""Step 4 of evacuation planning, when (何时转): how the flood rises, cut stages, waves, clock.

Evacuation is pre-emptive: people leave on a warning, before the water comes. What a
plan must tell each grid is which households leave first because their way out floods
first. This module models the rise of the flood from its start to the peak of the flood
map and gives, for any place, the **cut stage**: the stage of the rise at which the water
there reaches the impassable depth (``flooded_road_depth``, 0.3 m).

The stage
---------
Stage 0 is the start of the rise, stage 1 the peak of the hazard map; a place that stays
shallower than the impassable depth at the peak has a cut stage above 1 (infinite when it
stays dry).

* **Depth rasters and flood extents with a depth** (the peak only): the depth at every
  place grows in proportion to its peak depth, ``depth(s) = s * peak_depth``, so a place
  with peak depth ``d`` is cut at ``s = threshold / d``.
* **DEM and water level** (``grade_flood(dem=..., water_level=...)``, optionally with
  river lines): the water surface rises uniformly from the start level ``L0`` (by default
  the lowest ground where water enters: the river cells, or the DEM edge cells within
  :data:`gridmap.flood.SEED_TOLERANCE_M` of the lowest edge cell) to the peak level
  ``Lp``. A cell is under water at level ``L`` only when it is connected to the water
  entry through cells lower than ``L`` (the same rule as the grading: no "bathtub" filling
  of closed basins). The level at which each cell joins the water is the minimax ground
  height over all paths from the entry (computed exactly, as the largest edge on the path
  of a minimum spanning tree of the grid, :func:`scipy.sparse.csgraph.minimum_spanning_tree`).
  A place is cut at the level ``max(joins, ground + threshold)``, reported as
  ``cut_level_m``; its stage is ``(level - L0) / (Lp - L0)``. A water-surface raster or
  river stages (a surface that varies in space) rise the same way, by a uniform offset.

With several sources the earliest cut wins.

Waves and the clock
-------------------
Households are grouped into departure **waves** by the cut stage of their route: the
stretch of the rise from the first cut to the peak is cut into ``n`` equal parts, and
wave ``k`` holds the routes cut in the ``k``-th part (so the first wave always holds the
earliest cuts, whatever the start level); routes still open at the peak leave with the
last wave. With a rise rate or a hydrograph, the stage is turned into a clock time
(:class:`RiseClock`): the parts are then equal stretches of time, the route is cut at
``cut_time`` and the household must leave by ``cut_time - arrival time``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.windows import Window
from scipy import ndimage, sparse

from .. import _raster
from ..errors import CRSError, InputError, SchemaError
from ..roads import RoadNetwork

__all__ = [
    "DEFAULT_WAVES",
    "RISE_MAX_CELLS",
    "SAMPLE_SPACING_M",
    "EdgeProfile",
    "FloodRise",
    "RiseClock",
    "flood_rise",
    "rise_clock",
    "waves_of",
]

#: Default number of departure waves.
DEFAULT_WAVES = 3

#: Default spacing (m) of the depth samples along road edges.
SAMPLE_SPACING_M = 10.0

#: Largest DEM (cells) whose rise is modelled at native resolution; larger DEMs are
#: aggregated by an integer factor taking the block minimum (keeps channels open).
RISE_MAX_CELLS = 4_000_000

_INF = np.inf


# --------------------------------------------------------------------------- sources


def _read_points_raster(
    path: Path, x: np.ndarray, y: np.ndarray, crs: CRS, what: str = "depth"
) -> np.ndarray:
    """Raster values at points (NaN outside the raster and for no data)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=str(path), where=what)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read {what} raster: {exc}", source=str(path)) from exc
    out = np.full(len(x), np.nan, dtype=float)
    with src, _raster.raster_env():
        if src.crs is None:
            raise CRSError("raster has no coordinate reference system", source=str(path))
        rcrs = CRS.from_user_input(src.crs.to_wkt())
        if rcrs != crs and len(x):
            x, y = Transformer.from_crs(crs, rcrs, always_xy=True).transform(x, y)
            x, y = np.asarray(x), np.asarray(y)
        inv = ~src.transform
        col = np.floor(inv.a * x + inv.b * y + inv.c)
        row = np.floor(inv.d * x + inv.e * y + inv.f)
        inside = (row >= 0) & (row < src.height) & (col >= 0) & (col < src.width)
        idx = np.flatnonzero(inside)
        if len(idx) == 0:
            return out
        r, c = row[idx].astype(np.int64), col[idx].astype(np.int64)
        size = _raster.TILE_SIZE
        tile = (r // size) * (src.width // size + 1) + c // size
        order = np.argsort(tile, kind="stable")
        tile, idx, r, c = tile[order], idx[order], r[order], c[order]
        starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
        ends = np.r_[starts[1:], len(tile)]
        for s, e in zip(starts, ends, strict=True):
            rr, cc = r[s:e], c[s:e]
            r0, c0 = int(rr.min()), int(cc.min())
            window = Window(c0, r0, int(cc.max()) - c0 + 1, int(rr.max()) - r0 + 1)
            arr = _raster.read_band(src, window)
            out[idx[s:e]] = arr[rr - r0, cc - c0]
    return out


def _depth_at(source: dict[str, Any], x: np.ndarray, y: np.ndarray, crs: CRS) -> np.ndarray:
    """Peak depth (m, >= 0) of a depth raster or a flood extent with a depth."""
    if source.get("kind") == "depth":
        d = _read_points_raster(source["path"], x, y, crs)
        return np.maximum(np.nan_to_num(d, nan=0.0), 0.0)
    layer, col = source.get("layer"), source.get("depth_column")
    out = np.zeros(len(x))
    if layer is None or col is None or len(x) == 0:
        return out  # an extent without a depth says nothing about the roads
    gdf = layer.to_crs(crs) if CRS.from_user_input(layer.crs) != crs else layer
    depth = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=float)
    poly = shapely.make_valid(gdf.geometry.to_numpy())
    p_idx, e_idx = shapely.STRtree(poly).query(shapely.points(x, y), predicate="intersects")
    np.maximum.at(out, p_idx, np.maximum(np.nan_to_num(depth[e_idx], nan=0.0), 0.0))
    return out


# --------------------------------------------------------------------------- DEM rise


def minimax_levels(h: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Lowest water level at which each cell of a grid joins the water from `entry`.

    For every cell, the minimum over all 4-connected paths from a cell next to an entry
    cell (its 3 x 3 neighbourhood) of the maximum of `h` along the path, the cell itself
    included; ``inf`` for cells no path reaches (NaN cells are walls). Computed as the
    largest edge on the cell's path in a minimum spanning tree of the grid graph (edge
    weight: the higher of its two cells; a virtual root joins the cells next to the
    entry with the cell's own height), the tree path maxima by pointer doubling.

    Parameters
    ----------
    h : numpy.ndarray
        2-D heights (NaN: no data).
    entry : numpy.ndarray
        2-D booleans: where the water enters.

    Returns
    -------
    numpy.ndarray
        float64 levels of the shape of `h`.
    """
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    shape = h.shape
    hv = h.astype(float).ravel()
    valid = ~np.isnan(hv)
    out = np.full(hv.shape, _INF)
    if not valid.any():
        return out.reshape(shape)
    idx = np.arange(hv.size).reshape(shape)
    a_parts, b_parts = [], []
    for a, b in ((idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])):
        a, b = a.ravel(), b.ravel()
        ok = valid[a] & valid[b]
        a_parts.append(a[ok])
        b_parts.append(b[ok])
    a = np.concatenate(a_parts)
    b = np.concatenate(b_parts)
    near = ndimage.binary_dilation(entry, structure=np.ones((3, 3), bool)).ravel() & valid
    root = hv.size
    r_cells = np.flatnonzero(near)
    if len(r_cells) == 0:
        return out.reshape(shape)
    w = np.r_[np.maximum(hv[a], hv[b]), hv[r_cells]]
    lo = float(np.nanmin(hv[valid]))
    rows = np.r_[a, r_cells]
    cols = np.r_[b, np.full(len(r_cells), root)]
    # scipy drops explicit zeros: shift the weights to >= 1 (order is what matters)
    graph = sparse.csr_matrix((w - lo + 1.0, (rows, cols)), shape=(root + 1, root + 1))
    tree = minimum_spanning_tree(graph)
    _, pred = breadth_first_order(tree, root, directed=False, return_predecessors=True)
    reached = pred >= 0
    reached[root] = False
    hv_root = np.r_[hv, -_INF]
    val = np.full(root + 1, _INF)
    p = pred[reached]
    n_idx = np.flatnonzero(reached)
    val[n_idx] = np.maximum(hv_root[p], hv_root[n_idx])
    val[root] = -_INF
    anc = np.where(reached, pred, root)
    anc[root] = root
    todo = np.flatnonzero(anc != root)
    while len(todo):
        val[todo] = np.maximum(val[todo], val[anc[todo]])
        anc[todo] = anc[anc[todo]]
        todo = todo[anc[todo] != root]
    out[n_idx] = val[n_idx]
    return out.reshape(shape)


@dataclass
class _DemRise:
    """The rise of a water surface over a DEM (grid arrays in the DEM's CRS)."""

    name: str
    crs: CRS
    transform: Affine
    ground: np.ndarray  # block-minimum ground
    h: np.ndarray  # ground - peak surface (m)
    joins: np.ndarray  # offset (m, relative to the peak) at which each cell joins the water
    span: float  # rise from the start to the peak (m)
    peak_level: float | None  # the peak water level when it is one number

    def at(
        self, x: np.ndarray, y: np.ndarray, crs: CRS, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(cut stage, peak depth) at points."""
        stage = np.full(len(x), _INF)
        depth = np.zeros(len(x))
        if len(x) == 0:
            return stage, depth
        if self.crs != crs:
            x, y = Transformer.from_crs(crs, self.crs, always_xy=True).transform(x, y)
            x, y = np.asarray(x), np.asarray(y)
        inv = ~self.transform
        col = np.floor(inv.a * x + inv.b * y + inv.c)
        row = np.floor(inv.d * x + inv.e * y + inv.f)
        rows, cols = self.h.shape
        ok = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        r, c = row[ok].astype(np.int64), col[ok].astype(np.int64)
        h, joins = self.h[r, c].astype(float), self.joins[r, c]
        cut = np.maximum(joins, h + threshold)  # offset from the peak, m
        s = np.where(np.isfinite(cut), 1.0 + cut / self.span, _INF) if self.span > 0 else _INF
        stage[ok] = np.where(np.isnan(h), _INF, s)
        depth[ok] = np.where((joins < 0) & ~np.isnan(h), -h, 0.0)
        return stage, np.maximum(depth, 0.0)


def _river_lines(rivers: Any, crs: CRS):
    import geopandas as gpd

    from ..load import read_layer

    gdf = rivers if isinstance(rivers, gpd.GeoDataFrame) else read_layer(Path(rivers))
    if gdf.crs is None:
        raise CRSError("rivers have no coordinate reference system", source="rivers")
    return gdf.to_crs(crs) if CRS.from_user_input(gdf.crs) != crs else gdf


def _stage_grid(rivers, shape: tuple[int, int], transform: Affine) -> np.ndarray:
    """River cells carrying the river's water level (``stage``, or ``stage_start`` to
    ``stage_end`` along the line); NaN elsewhere."""
    cols = set(rivers.columns)
    geoms = rivers.geometry.to_numpy()
    if "stage" in cols:
        s0 = s1 = pd.to_numeric(rivers["stage"], errors="coerce").to_numpy(dtype=float)
    elif {"stage_start", "stage_end"} <= cols:
        s0 = pd.to_numeric(rivers["stage_start"], errors="coerce").to_numpy(dtype=float)
        s1 = pd.to_numeric(rivers["stage_end"], errors="coerce").to_numpy(dtype=float)
    else:
        raise SchemaError(
            "rivers need a stage column (water level, m) when no water_level is given",
            source="rivers",
            where="stage",
        )
    if np.isnan(s0).any() or np.isnan(s1).any():
        raise SchemaError("rivers have rows without a numeric stage", source="rivers")
    return _raster.sloping_line_grid(geoms, s0, s1, shape, transform)


def _dem_rise(source: dict[str, Any], start_level: float | None, max_cells: int) -> _DemRise:
    """Model the rise of a DEM source of the grading (``dem`` + water level or rivers)."""
    from rasterio.features import rasterize

    from ..flood import SEED_TOLERANCE_M

    path = Path(source["dem"])
    if not path.exists():
        raise InputError("file not found", source=str(path), where="dem")
    with rasterio.open(path) as src, _raster.raster_env():
        if src.crs is None:
            raise CRSError("DEM has no coordinate reference system", source=str(path))
        factor = max(1, math.ceil(math.sqrt(src.height * src.width / max_cells)))
        ground = _raster.block_min(src, factor)
        transform = src.transform @ Affine.scale(factor)
        dcrs = CRS.from_user_input(src.crs.to_wkt())
    shape = ground.shape
    level, rivers = source.get("water_level"), source.get("rivers")
    river_gdf = _river_lines(rivers, dcrs) if rivers is not None else None
    peak_level: float | None = None
    if level is None:
        if river_gdf is None:
            raise InputError("dem needs water_level or rivers with a stage", source=str(path))
        stages = _stage_grid(river_gdf, shape, transform)
        entry = ~np.isnan(stages)
        if not entry.any():
            raise InputError("no river line crosses the DEM", source="rivers")
        near = ndimage.distance_transform_edt(~entry, return_distances=False, return_indices=True)
        surface = stages[near[0], near[1]]
    elif isinstance(level, str | os.PathLike):
        from rasterio.warp import Resampling, reproject

        with rasterio.open(level) as lsrc:
            surface = np.full(shape, np.nan, dtype="float32")
            reproject(
                source=rasterio.band(lsrc, 1),
                destination=surface,
                src_nodata=lsrc.nodata,
                dst_transform=transform,
                dst_crs=dcrs.to_wkt(),
                dst_nodata=np.nan,
                resampling=Resampling.bilinear,
            )
    else:
        peak_level = float(level)
        surface = np.full(shape, peak_level, dtype="float32")
    if level is not None and river_gdf is not None:
        burnt = rasterize(
            [(g, 1) for g in river_gdf.geometry if g is not None and not g.is_empty],
            out_shape=shape,
            transform=transform,
            fill=0,
            all_touched=True,
            dtype="uint8",
        )
        entry = burnt.astype(bool)
        if not entry.any():
            raise InputError("no river line crosses the DEM", source="rivers")
    elif level is not None:
        entry = np.zeros(shape, dtype=bool)
        entry[0, :] = entry[-1, :] = entry[:, 0] = entry[:, -1] = True
        entry &= ~np.isnan(ground)
        if entry.any():
            entry &= ground <= ground[entry].min() + SEED_TOLERANCE_M
    h = (ground - surface).astype("float32")
    joins = minimax_levels(h, entry)
    if start_level is not None and peak_level is not None:
        span = peak_level - float(start_level)
    else:
        entry_h = h[entry & ~np.isnan(h)]
        span = float(-entry_h.min()) if len(entry_h) else 0.0
    name = source.get("name") or "dem"
    return _DemRise(name, dcrs, transform, ground, h, joins, max(span, 0.0), peak_level)


# --------------------------------------------------------------------------- model


@dataclass
class FloodRise:
    """The rise of the flood to the peak of the hazard map (see the module notes).

    Built by :func:`flood_rise`. ``threshold`` is the impassable depth (m); ``sources``
    the hazard sources used; ``peak_level`` and ``start_level`` the water levels (m) of a
    DEM source with one water level (else None); ``max_depth`` the deepest water found so
    far by :meth:`at` (m).
    """

    threshold: float
    crs: CRS
    depth_sources: list[dict[str, Any]] = field(default_factory=list)
    dem: list[_DemRise] = field(default_factory=list)
    max_depth: float = 0.0

    @property
    def sources(self) -> list[str]:
        names = [str(s.get("name")) for s in self.depth_sources]
        return names + [d.name for d in self.dem]

    @property
    def peak_level(self) -> float | None:
        levels = [d.peak_level for d in self.dem if d.peak_level is not None]
        return levels[0] if len(levels) == 1 else None

    @property
    def start_level(self) -> float | None:
        d = next((d for d in self.dem if d.peak_level is not None), None)
        return None if d is None or self.peak_level is None else d.peak_level - d.span

    def at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cut stage and peak depth at points (metric CRS of the plan).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            The stage (0 = start, 1 = peak; > 1 when the place is shallower than the
            threshold at the peak, ``inf`` when it stays dry) and the peak depth (m).
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        stage = np.full(len(x), _INF)
        depth = np.zeros(len(x))
        if not np.isfinite(self.threshold):
            return stage, depth
        for s in self.depth_sources:
            d = _depth_at(s, x, y, self.crs)
            with np.errstate(divide="ignore"):
                st = np.where(d > 0, self.threshold / np.maximum(d, 1e-12), _INF)
            np.minimum(stage, st, out=stage)
            np.maximum(depth, d, out=depth)
        for m in self.dem:
            st, d = m.at(x, y, self.crs, self.threshold)
            np.minimum(stage, st, out=stage)
            np.maximum(depth, d, out=depth)
        if len(depth):
            self.max_depth = max(self.max_depth, float(depth.max()))
        return np.maximum(stage, 0.0), depth

    def level_of(self, stage: np.ndarray) -> np.ndarray:
        """Water level (m) at `stage` when the rise has one water level, else NaN."""
        stage = np.asarray(stage, dtype=float)
        peak, start = self.peak_level, self.start_level
        if peak is None or start is None:
            return np.full(stage.shape, np.nan)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(stage), start + stage * (peak - start), np.nan)


def flood_rise(
    sources: list[dict[str, Any]],
    crs: CRS,
    threshold: float | None,
    *,
    start_level: float | None = None,
    max_cells: int = RISE_MAX_CELLS,
) -> FloodRise:
    """Model the rise of the flood from hazard sources (``FloodGrading.sources``).

    Parameters
    ----------
    sources : list of dict
        Hazard sources as :func:`gridmap.grade_flood` records them: ``kind`` ``depth``
        (``path``), ``extent`` (``layer``, ``depth_column``) or ``dem`` (``dem``,
        ``water_level``, ``rivers``). A DEM used only for ground heights is skipped.
    crs : pyproj.CRS
        Metric CRS of the points asked about.
    threshold : float or None
        Impassable depth (m); None: nothing is ever cut.
    start_level : float, optional
        Water level (m) at the start of the rise, for a DEM with one water level
        (default: the lowest ground where water enters).
    max_cells : int
        Largest DEM modelled at native resolution (:data:`RISE_MAX_CELLS`).

    Returns
    -------
    FloodRise
    """
    thr = _INF if threshold is None else float(threshold)
    if not thr > 0:
        raise InputError(
            f"flooded_road_depth must be > 0 m, got {threshold}", source="flooded_road_depth"
        )
    rise = FloodRise(threshold=thr, crs=crs)
    for s in sources:
        kind = s.get("kind")
        if kind in ("depth", "extent"):
            rise.depth_sources.append(s)
        elif kind == "dem" and (s.get("water_level") is not None or s.get("rivers") is not None):
            rise.dem.append(_dem_rise(s, start_level, max_cells))
    return rise


# --------------------------------------------------------------------------- roads


@dataclass
class EdgeProfile:
    """Cut stages and peak depths sampled along every road edge.

    Samples are sorted by edge, then by the fraction ``frac`` (0 at ``u``, 1 at ``v``);
    ``edge_stage`` is the earliest cut and ``edge_depth`` the deepest peak water of each
    edge.
    """

    edge: np.ndarray
    frac: np.ndarray
    stage: np.ndarray
    depth: np.ndarray
    edge_stage: np.ndarray
    edge_depth: np.ndarray

    @classmethod
    def sample(cls, net: RoadNetwork, rise: FloodRise, spacing: float) -> EdgeProfile:
        """Sample `rise` along the edges of `net` every `spacing` metres (ends included)."""
        if not spacing > 0:
            raise InputError(f"sample_spacing must be > 0, got {spacing}", source="sample_spacing")
        n = net.n_edges
        if n == 0 or not (rise.depth_sources or rise.dem) or not np.isfinite(rise.threshold):
            z = np.zeros(n, dtype=np.int64)
            return cls(np.arange(n), z.astype(float), np.full(n, _INF), np.zeros(n),
                       np.full(n, _INF), np.zeros(n))  # fmt: skip
        n_seg = np.maximum(1, np.ceil(net.length / spacing)).astype(np.int64)
        edge, j = _raster.expand_runs(np.zeros(n, np.int64), n_seg + 1)
        frac = j / n_seg[edge]
        pts = shapely.line_interpolate_point(net.geometry[edge], frac, normalized=True)
        xy = shapely.get_coordinates(pts)
        stage, depth = rise.at(xy[:, 0], xy[:, 1])
        starts = np.cumsum(n_seg + 1) - (n_seg + 1)
        return cls(
            edge,
            frac,
            stage,
            depth,
            np.minimum.reduceat(stage, starts),
            np.maximum.reduceat(depth, starts),
        )

    def range_min(self, edge: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Earliest cut stage along each `edge` between fractions `t0` and `t1`.

        The samples just outside the range are included (a conservative answer at the
        sample spacing).
        """
        edge = np.asarray(edge, dtype=np.int64)
        out = np.full(len(edge), _INF)
        if len(edge) == 0:
            return out
        lo_t, hi_t = np.minimum(t0, t1), np.maximum(t0, t1)
        key = self.edge * 2.0 + self.frac
        first = np.searchsorted(key, edge * 2.0, side="left")
        last = np.searchsorted(key, edge * 2.0 + 1.0, side="right")
        lo = np.maximum(np.searchsorted(key, edge * 2.0 + lo_t, side="left") - 1, first)
        hi = np.minimum(np.searchsorted(key, edge * 2.0 + hi_t, side="right") + 1, last)
        run, pos = _raster.expand_runs(lo, hi - lo)
        np.minimum.at(out, run, self.stage[pos])
        return out


# --------------------------------------------------------------------------- waves, clock


def waves_of(stage: np.ndarray, n_waves: int, *, peak: float = 1.0) -> np.ndarray:
    """Departure wave (1 = first) of each cut stage (or cut time).

    The stretch of the rise from the first cut to the peak (`peak`: 1 for stages, the
    peak's hour for times) is cut into `n_waves` equal parts: wave ``k`` holds the
    routes cut in the ``k``-th part. Routes still open at the peak leave with the last
    wave.
    """
    stage = np.asarray(stage, dtype=float)
    cut = np.isfinite(stage) & (stage <= peak)
    out = np.full(stage.shape, n_waves, dtype=np.int64)
    if cut.any():
        first = float(stage[cut].min())
        span = peak - first
        if span > 0:
            w = np.ceil((stage[cut] - first) / span * n_waves)
        else:
            w = np.ones(int(cut.sum()))
        out[cut] = np.clip(w, 1, n_waves).astype(np.int64)
    return out


@dataclass
class RiseClock:
    """When the flood reaches a stage: hours after the start (and clock times).

    ``hours_at`` are increasing times (h) and ``stages`` the stage reached at each (not
    decreasing); ``start`` is the clock time of hour 0, when known.
    """

    hours_at: np.ndarray
    stages: np.ndarray
    start: pd.Timestamp | None
    source: str

    @property
    def peak_hours(self) -> float:
        """Hours from the start to the peak (stage 1), or to the hydrograph's top."""
        h = self.hours(np.array([1.0]))[0]
        return float(h) if np.isfinite(h) else float(self.hours_at[-1])

    def hours(self, stage: np.ndarray) -> np.ndarray:
        """Hours after the start at which `stage` is first reached (NaN: never)."""
        stage = np.asarray(stage, dtype=float)
        xs, ts = self.stages, self.hours_at
        out = np.full(stage.shape, np.nan)
        ok = np.isfinite(stage) & (stage <= xs[-1])
        s = stage[ok]
        i = np.searchsorted(xs, s, side="left")
        i = np.clip(i, 0, len(xs) - 1)
        prev = np.maximum(i - 1, 0)
        dx = xs[i] - xs[prev]
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(dx > 0, (s - xs[prev]) / dx, 1.0)
        t = np.where(s <= xs[0], ts[0], ts[prev] + f * (ts[i] - ts[prev]))
        out[ok] = t
        return out

    def clock(self, hours: np.ndarray) -> np.ndarray:
        """Clock times ``YYYY-MM-DD HH:MM`` of `hours` (None when no start is known)."""
        hours = np.asarray(hours, dtype=float)
        out = np.full(hours.shape, None, dtype=object)
        if self.start is None:
            return out
        ok = np.isfinite(hours)
        ts = self.start + pd.to_timedelta(hours[ok], unit="h")
        out[ok] = ts.strftime("%Y-%m-%d %H:%M").to_numpy(dtype=object)
        return out


def _timestamp(value: Any, what: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"not a date and time: {value!r}", source=what) from exc


def _hydrograph_table(hydrograph: Any) -> tuple[np.ndarray, np.ndarray]:
    """(time values, levels) of a hydrograph given as a table, mapping or pairs."""
    if isinstance(hydrograph, str | os.PathLike):
        path = Path(hydrograph)
        if not path.exists():
            raise InputError("file not found", source=str(path), where="hydrograph")
        hydrograph = pd.read_csv(path)
    if isinstance(hydrograph, pd.Series):
        return hydrograph.index.to_numpy(), hydrograph.to_numpy()
    if isinstance(hydrograph, pd.DataFrame):
        if hydrograph.shape[1] < 2:
            raise SchemaError(
                "a hydrograph needs two columns: time and water level", source="hydrograph"
            )
        return hydrograph.iloc[:, 0].to_numpy(), hydrograph.iloc[:, 1].to_numpy()
    if isinstance(hydrograph, dict):
        return np.array(list(hydrograph.keys()), dtype=object), np.array(list(hydrograph.values()))
    pairs = list(hydrograph)
    if not pairs or any(len(p) != 2 for p in pairs):
        raise SchemaError(
            "a hydrograph is a list of (time, water level) pairs", source="hydrograph"
        )
    return np.array([p[0] for p in pairs], dtype=object), np.array([p[1] for p in pairs])


def rise_clock(
    rise: FloodRise,
    *,
    rise_rate: float | None = None,
    hydrograph: Any = None,
    warning_time: Any = None,
) -> RiseClock | None:
    """The clock of the rise, from a rise rate or a hydrograph (None when neither).

    Parameters
    ----------
    rise : FloodRise
        The rise model (its levels, or its deepest water for depth-only sources).
    rise_rate : float, optional
        Rise of the water (m/h) from the start. With a DEM and one water level the level
        rises at this rate from ``start_level`` to the peak; with depth rasters only, the
        deepest water on the roads and buildings rises at this rate (every place in
        proportion to its peak depth).
    hydrograph : table, mapping, pairs or CSV path, optional
        Water level over time: a DataFrame (first column time, second level), a Series
        (index time), a ``{time: level}`` mapping, ``(time, level)`` pairs, or a CSV of
        those two columns. Times are hours after the start, or dates and times. With a
        DEM and one water level the levels are absolute (m, the DEM's datum); otherwise
        the stage is the level's rise from the first value to the highest, as a fraction.
    warning_time : date and time, optional
        Clock time of hour 0 (the warning). Default: the hydrograph's first time when it
        has dates; else clock times are not given, only hours.

    Returns
    -------
    RiseClock or None
    """
    if rise_rate is not None and hydrograph is not None:
        raise InputError("give rise_rate or hydrograph, not both", source="rise_rate")
    start = _timestamp(warning_time, "warning_time") if warning_time is not None else None
    if rise_rate is not None:
        rate = float(rise_rate)
        if not rate > 0:
            raise InputError(f"rise_rate must be > 0 m/h, got {rise_rate}", source="rise_rate")
        peak, lo = rise.peak_level, rise.start_level
        if peak is not None and lo is not None and peak > lo:
            total = peak - lo
            source = f"water level rising {rate:g} m/h from {lo:.2f} m to {peak:.2f} m"
        else:
            total = rise.max_depth
            source = f"deepest water ({total:.2f} m) rising {rate:g} m/h"
        if not total > 0:
            return None
        hours = total / rate
        return RiseClock(np.array([0.0, hours]), np.array([0.0, 1.0]), start, source)
    if hydrograph is None:
        return None
    times, levels = _hydrograph_table(hydrograph)
    levels = pd.to_numeric(pd.Series(levels), errors="coerce").to_numpy(dtype=float)
    if len(levels) < 2 or np.isnan(levels).any():
        raise SchemaError(
            "a hydrograph needs at least two rows with numeric water levels",
            source="hydrograph",
        )
    ser = pd.Series(times)
    numeric = (
        pd.Series(np.nan, index=ser.index)
        if pd.api.types.is_datetime64_any_dtype(ser)
        else pd.to_numeric(ser, errors="coerce")
    )
    if numeric.notna().all():
        hours = numeric.to_numpy(dtype=float)
    else:
        try:
            stamps = pd.to_datetime(ser)
        except (TypeError, ValueError) as exc:
            raise SchemaError(
                "hydrograph times must be hours or dates and times", source="hydrograph"
            ) from exc
        if start is None:
            start = stamps.iloc[0]
        hours = ((stamps - start) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
    order = np.argsort(hours, kind="stable")
    hours, levels = hours[order], levels[order]
    if np.any(np.diff(hours) <= 0):
        raise SchemaError("hydrograph times must be distinct", source="hydrograph")
    top = int(np.argmax(levels))
    hours, levels = hours[: top + 1], np.maximum.accumulate(levels[: top + 1])
    peak, lo = rise.peak_level, rise.start_level
    if peak is not None and lo is not None and peak > lo:
        stages = (levels - lo) / (peak - lo)
        source = "hydrograph (water levels)"
    else:
        span = levels[-1] - levels[0]
        if not span > 0:
            raise SchemaError("the hydrograph never rises", source="hydrograph")
        stages = (levels - levels[0]) / span
        source = "hydrograph (rise as a fraction of the peak)"
    if len(hours) < 2:
        hours, stages = np.r_[hours, hours + 1e-9], np.r_[stages, stages]
    return RiseClock(hours, stages, start, source)
