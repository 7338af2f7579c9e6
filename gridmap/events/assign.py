"""Assign events to grids (step 2): exactly one grid per event, found by its point.

Also the grid helpers the other steps share: :func:`grids_of` reads the grids of a
plan in a metric CRS, :func:`locate` finds the grid of coordinate arrays.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from ..crs import to_metric
from ..errors import CRSError, InputError, SchemaError

logger = logging.getLogger("gridmap")

__all__ = ["assign_events", "assign_to_grids", "attach_codes", "grids_key", "grids_of", "locate"]


def grids_of(plan: Any) -> gpd.GeoDataFrame:
    """Return the grids of `plan` in a metric CRS, with the columns the events need.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        A :class:`gridmap.Plan` (its ``grids``), a grids GeoDataFrame (projected to a
        metric CRS when geographic), or a plan GeoPackage (layer ``grids``).

    Returns
    -------
    geopandas.GeoDataFrame
        With ``grid_code`` (str), ``households`` (nullable Int64; NA when unknown or
        absent) and the other columns as given; index reset.
    """
    if isinstance(plan, str | os.PathLike):
        path = Path(plan)
        if not path.exists():
            raise InputError("plan file not found", source=str(path))
        try:
            grids = gpd.read_file(path, layer="grids")
        except Exception as exc:
            raise InputError(f"cannot read the grids layer: {exc}", source=str(path)) from exc
        name = f"{path}:grids"
    elif isinstance(plan, gpd.GeoDataFrame):
        grids, name = plan, "grids"
    elif hasattr(plan, "grids") and isinstance(plan.grids, gpd.GeoDataFrame):
        grids, name = plan.grids, "plan.grids"
        if grids.crs is None and getattr(plan, "crs", None) is not None:
            grids = grids.set_crs(plan.crs)
    else:
        raise InputError(
            f"expected a Plan, a grids GeoDataFrame or a plan file, got {type(plan).__name__}",
            source="plan",
        )
    if "grid_code" not in grids.columns:
        raise SchemaError(
            f"grids have no 'grid_code' column; available columns: {list(grids.columns)}",
            source=name,
        )
    if len(grids) == 0:
        raise InputError("the plan has no grids", source=name)
    grids = to_metric(grids, source=name)
    grids = grids.reset_index(drop=True).copy()
    grids["grid_code"] = grids["grid_code"].astype("str")
    dup = grids["grid_code"].duplicated()
    if dup.any():
        raise SchemaError(
            f"grid_code is not unique: {grids.loc[dup, 'grid_code'].head(5).tolist()}",
            source=name,
            where="column grid_code",
        )
    for col in ("community_code", "street_code"):
        if col in grids.columns:
            grids[col] = grids[col].astype("str")
    if "households" in grids.columns:
        hh = pd.to_numeric(grids["households"], errors="coerce")
        grids["households"] = hh.round().astype("Int64")
    else:
        grids["households"] = pd.array([pd.NA] * len(grids), dtype="Int64")
    return grids


def grids_key(grids: gpd.GeoDataFrame) -> str:
    """Fingerprint of grid codes, geometry and CRS (to reuse an earlier assignment)."""
    h = hashlib.sha1()
    h.update("\x1f".join(grids["grid_code"]).encode())
    h.update(b"".join(shapely.to_wkb(grids.geometry.to_numpy(), hex=False)))
    h.update(str(grids.crs).encode())
    return h.hexdigest()


def locate(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, crs: Any) -> np.ndarray:
    """Positions (in `grids`) of the grid holding each point; -1 outside every grid.

    `x`, `y` are in `crs`. A point on a shared boundary goes to the grid with the
    smallest ``grid_code``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) and CRS.from_user_input(crs) != CRS.from_user_input(grids.crs):
        transformer = Transformer.from_crs(crs, grids.crs, always_xy=True)
        with np.errstate(invalid="ignore"):
            x, y = transformer.transform(x, y, errcheck=False)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return _locate_xy(grids, x, y)


def _locate_xy(
    grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, max_cells: int = 4_000_000
) -> np.ndarray:
    """Point-in-grid for coordinate arrays in the grids' CRS, without point objects.

    Grid bounding boxes are registered in a regular bucket lattice (cells about a third
    of the median grid size); each point gets the grids registered in its cell as
    candidates, which are tested exactly with ``shapely.intersects_xy`` (boundary
    included). Creating a million GEOS points costs more than the whole test.
    """
    n = len(x)
    out = np.full(n, -1, dtype=np.int64)
    polys = grids.geometry.to_numpy()
    b = shapely.bounds(polys)
    okg = np.isfinite(b).all(axis=1)
    if n == 0 or not okg.any():
        return out
    gids = np.flatnonzero(okg)
    b = b[okg]
    size = max(float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))) / 3.0, 1e-6)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    while True:
        cx0 = np.floor((b[:, 0] - x0) / size).astype(np.int64)
        cx1 = np.floor((b[:, 2] - x0) / size).astype(np.int64)
        cy0 = np.floor((b[:, 1] - y0) / size).astype(np.int64)
        cy1 = np.floor((b[:, 3] - y0) / size).astype(np.int64)
        cw, ch = cx1 - cx0 + 1, cy1 - cy0 + 1
        per_grid = cw * ch
        if per_grid.sum() <= max_cells:
            break
        size *= 2.0
    nx, ny = int(cx1.max()) + 1, int(cy1.max()) + 1
    g = np.repeat(np.arange(len(gids)), per_grid)
    k = np.arange(per_grid.sum()) - np.repeat(np.cumsum(per_grid) - per_grid, per_grid)
    cell = (cx0[g] + k % cw[g]) * ny + (cy0[g] + k // cw[g])
    order = np.argsort(cell, kind="stable")
    cell_sorted, grid_sorted = cell[order], gids[g[order]]

    with np.errstate(invalid="ignore"):
        px = np.floor((x - x0) / size)
        py = np.floor((y - y0) / size)
    inside = np.isfinite(px) & np.isfinite(py) & (px >= 0) & (py >= 0) & (px < nx) & (py < ny)
    sel = np.flatnonzero(inside)
    pid = px[sel].astype(np.int64) * ny + py[sel].astype(np.int64)
    lo = np.searchsorted(cell_sorted, pid, "left")
    count = np.searchsorted(cell_sorted, pid, "right") - lo
    pt = np.repeat(sel, count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    cand = grid_sorted[np.repeat(lo, count) + offset]
    shapely.prepare(polys)
    hit = shapely.intersects_xy(polys[cand], x[pt], y[pt])
    pt, cand = pt[hit], cand[hit]
    if len(pt) == 0:
        return out
    rank = np.empty(len(grids), dtype=np.int64)
    rank[np.argsort(grids["grid_code"].to_numpy(dtype=object), kind="stable")] = np.arange(
        len(grids)
    )
    order = np.lexsort((rank[cand], pt))
    pt, cand = pt[order], cand[order]
    first = np.r_[True, pt[1:] != pt[:-1]]
    out[pt[first]] = cand[first]
    return out


def attach_codes(
    events: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, gidx: np.ndarray
) -> gpd.GeoDataFrame:
    """Set grid_code/community_code/street_code columns from grid positions (-1 = NA)."""
    out = events.copy(deep=False)
    codes = pd.Categorical.from_codes(gidx, categories=pd.Index(grids["grid_code"], dtype=object))
    out["grid_code"] = codes
    for col in ("community_code", "street_code"):
        if col not in grids.columns:
            continue
        values = grids[col].astype("str")
        cats, inverse = np.unique(values.fillna("").to_numpy(dtype=object), return_inverse=True)
        per_grid = np.where(values.isna().to_numpy(), -1, inverse)
        codes_c = np.where(gidx >= 0, per_grid[np.maximum(gidx, 0)], -1)
        out[col] = pd.Categorical.from_codes(codes_c, categories=pd.Index(cats, dtype=object))
    # codes right after the event columns, geometry last
    codes_cols = [c for c in ("grid_code", "community_code", "street_code") if c in out.columns]
    geo = out.geometry.name
    rest = [c for c in out.columns if c not in codes_cols and c != geo]
    at = rest.index("closed_at") + 1 if "closed_at" in rest else len(rest)
    return out[[*rest[:at], *codes_cols, *rest[at:], geo]]


def assign_events(plan: Any, events: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Attach each event to the grid that holds it.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids: a :class:`gridmap.Plan`, a grids GeoDataFrame (any CRS; projected
        to a metric one) or a plan GeoPackage (layer ``grids``).
    events : geopandas.GeoDataFrame
        Events with point geometry in any CRS (e.g. from :func:`read_events`).
        Non-point geometries are represented by a point on their surface.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of `events` with ``grid_code`` and, when the grids have them,
        ``community_code`` and ``street_code`` (categorical columns; NA for events
        outside every grid). The spatial join runs in the grids' metric CRS with
        "intersects"; an event on the boundary of two grids goes to exactly one, the
        one with the smallest ``grid_code``. Events outside every grid are counted and
        logged at WARNING; the count is in ``attrs["unassigned"]``.
    """
    grids = grids_of(plan)
    return assign_to_grids(grids, events)


def assign_to_grids(grids: gpd.GeoDataFrame, events: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """:func:`assign_events` for grids already read with :func:`grids_of`."""
    if not isinstance(events, gpd.GeoDataFrame):
        raise InputError("events must be a GeoDataFrame (use gridmap.read_events)", source="events")
    if events.crs is None:
        raise CRSError("events have no CRS", source="events")
    geoms = events.geometry.to_numpy()
    is_point = shapely.get_type_id(geoms) == 0
    if not is_point.all():
        geoms = geoms.copy()
        other = ~is_point & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        geoms[other] = shapely.point_on_surface(geoms[other])
    gidx = locate(grids, shapely.get_x(geoms), shapely.get_y(geoms), events.crs)
    out = attach_codes(events, grids, gidx)
    unassigned = int((gidx < 0).sum())
    out.attrs["assigned_to"] = grids_key(grids)
    out.attrs["unassigned"] = unassigned
    if unassigned:
        logger.warning(
            "%d of %d events lie outside every grid (grid_code NA)", unassigned, len(events)
        )
    return out
