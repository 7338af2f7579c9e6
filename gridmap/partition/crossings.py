"""Barrier crossings: which barrier lines run through which grid, and why.

A grid crosses a barrier only when the household range could not be met otherwise; the
plan lists every crossing with its length and a reason in plain words. Two ways to find
them: from the tessellation while planning (:func:`tessellation_crossings`: faces of one
grid meeting across a barrier line) and from the geometry of any grids (:func:`crossings`,
used after edits).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..plan import CROSSING_COLUMNS, empty_crossings
from .geometry import PRECISION, in_threads, points_near_lines
from .tessellation import Tessellation

__all__ = ["crossings", "tessellation_crossings"]


def crossings(grids: gpd.GeoDataFrame, barriers: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """Every barrier line that runs through a grid's interior for more than 1 m.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grids with ``grid_code``, ``households``, ``flags`` and ``kind``.
    barriers : geopandas.GeoDataFrame or None
        Barrier lines with a ``barrier`` label (as in ``Plan.barriers``).

    Returns
    -------
    pandas.DataFrame
        Columns ``grid_code``, ``barrier``, ``length_m``, ``reason``.
    """
    if barriers is None or len(barriers) == 0:
        return empty_crossings()
    g = barriers.geometry.values
    lines = np.where(np.isin(shapely.get_type_id(g), (3, 6)), shapely.boundary(g), g)
    labels = (
        barriers["barrier"].astype(str).to_numpy()
        if "barrier" in barriers.columns
        else np.full(len(barriers), "barrier", dtype=object)
    )
    return _crossings(grids, np.asarray(lines, dtype=object), labels)


def tessellation_crossings(
    tess: Tessellation,
    unit_grid: np.ndarray,
    grids: gpd.GeoDataFrame,
    labels: np.ndarray,
    loose: np.ndarray,
    lines: np.ndarray,
) -> pd.DataFrame:
    """Barrier crossings of a plan from its tessellation.

    A barrier runs through a grid where two of the grid's faces meet across the
    barrier's line, or where a dead end of a barrier (a piece of line bounding no
    block) lies inside it.

    Parameters
    ----------
    tess : Tessellation
    unit_grid : ndarray of int
        Grid (row of `grids`) of every unit.
    grids : geopandas.GeoDataFrame
        Grids with ``grid_code``, ``households``, ``flags`` and ``kind``.
    labels : ndarray of str
        Label of every barrier line.
    loose : ndarray of LineString
        Dead ends of barrier lines (see :func:`gridmap.partition.blocks.blocks`).
    lines : ndarray of LineString
        The barrier lines.

    Returns
    -------
    pandas.DataFrame
        Columns ``grid_code``, ``barrier``, ``length_m``, ``reason``.
    """
    fg = unit_grid[tess.unit]
    e = tess.edges
    m = (tess.rank > 0) & (tess.line >= 0) & (fg[e[:, 0]] == fg[e[:, 1]]) & (fg[e[:, 0]] >= 0)
    frames = [
        pd.DataFrame(
            {"_g": fg[e[m, 0]], "barrier": labels[tess.line[m]], "length_m": tess.length[m]}
        )
    ]
    if len(loose) and len(lines):
        # which barrier each dead-end piece belongs to, and which grids it runs through
        mid = shapely.line_interpolate_point(loose, 0.5, normalized=True)
        pi, li = points_near_lines(mid, lines, 5 * PRECISION)
        o = np.unique(pi, return_index=True)[1]
        pi, li = pi[o], li[o]
        if len(pi):
            gi, ki = shapely.STRtree(grids.geometry.values).query(loose[pi], predicate="intersects")
            inner = shapely.length(
                in_threads(shapely.intersection, loose[pi][gi], grids.geometry.values[ki])
            )
            frames.append(pd.DataFrame({"_g": ki, "barrier": labels[li[gi]], "length_m": inner}))
    df = pd.concat(frames, ignore_index=True)
    if len(df) == 0:
        return empty_crossings()
    df = df.groupby(["_g", "barrier"], as_index=False)["length_m"].sum()
    df = df[df["length_m"] > 1.0]
    if len(df) == 0:
        return empty_crossings()
    df["grid_code"] = grids["grid_code"].to_numpy()[df["_g"].to_numpy()]
    return _with_reasons(df, grids)


def _with_reasons(df: pd.DataFrame, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    hh = grids["households"].to_numpy()
    flags = grids["flags"].astype(str).to_numpy()
    kinds = grids["kind"].to_numpy()

    def reason(g: int) -> str:
        if kinds[g] == "special" and "no_households" in flags[g]:
            return "land without homes, one grid per community (or detached part of it)"
        if kinds[g] == "special":
            return "the institution's own polygon spans the barrier"
        if any(f in flags[g] for f in ("isolated_village", "infeasible", "below_floor")):
            return f"no in-range grid exists on one side alone ({hh[g]} households)"
        return (
            "joined across the barrier: the households on one side cannot form in-range "
            "grids on their own (too few, or a total no number of grids fits), or the land "
            "there holds no buildings"
        )

    df["reason"] = [reason(int(g)) for g in df["_g"]]
    df["length_m"] = df["length_m"].round(1)
    return df[CROSSING_COLUMNS].sort_values(["grid_code", "barrier"]).reset_index(drop=True)


def _crossings(grids: gpd.GeoDataFrame, lines: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    if len(lines) == 0 or len(grids) == 0:
        return empty_crossings()
    inner = shapely.buffer(grids.geometry.values, -0.5)
    gi, li = shapely.STRtree(lines).query(inner, predicate="intersects")
    if len(gi) == 0:
        return empty_crossings()
    length = shapely.length(shapely.intersection(lines[li], inner[gi]))
    m = length > 1.0
    df = pd.DataFrame(
        {
            "grid_code": grids["grid_code"].to_numpy()[gi[m]],
            "barrier": labels[li[m]],
            "length_m": length[m],
            "_g": gi[m],
        }
    )
    if len(df) == 0:
        return empty_crossings()
    df = df.groupby(["grid_code", "barrier", "_g"], as_index=False)["length_m"].sum()
    return _with_reasons(df, grids)
