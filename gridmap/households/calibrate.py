"""Calibration of estimated households to official counts per polygon.

A street office knows its registered (户籍) or resident (常住) households per community.
:func:`calibrate` (and ``gridmap.estimate_households(buildings, totals=layer)``) makes
the buildings of each polygon add up to its count:

1. Each building belongs to the polygon holding its point on surface (the first polygon
   in row order when polygons overlap; buildings outside every polygon are unchanged).
2. In a polygon with count ``T``, given counts ``G`` (``households_source == "given"``)
   are never changed. The rest, ``R = T - G``, is shared among its estimated buildings
   in proportion to their estimates, rounded to whole households by the largest
   remainder method (Hamilton): the sum is exactly ``R``, no building moves by a whole
   household or more from its exact share, and ties go to the earlier row.
3. A polygon whose estimated buildings all hold 0 households (for example coarse OSM
   areas flagged as not homes) shares ``R`` among its untagged buildings flagged by
   plausibility, in proportion to their floor area (footprint × levels).
4. Estimated buildings get ``households_source = "calibrated"`` and keep their estimate in
   ``households_estimate``.
5. A polygon whose given counts already exceed its count (``R < 0``) is flagged
   ``given_exceeds_total``: its estimates are set to 0 (the nearest the sum can get). A
   polygon with ``R > 0`` and no building to carry it is flagged ``total_unmatched``.

The per-polygon table (:func:`calibrate` returns it) has the polygon ``id``,
``households_total``, ``given``, ``estimated`` (before), ``households`` (after),
``buildings``, ``status`` (``matched``, ``matched_by_area``, ``given_exceeds_total``,
``total_unmatched``) and ``factor``.
"""

from __future__ import annotations

import logging
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import require_crs
from ..errors import SchemaError
from ..load import COLUMN_ALIASES, parse_numbers, read_layer

__all__ = ["ID_COLUMNS", "STATUSES", "calibrate", "largest_remainder", "read_totals"]

logger = logging.getLogger("gridmap")

#: Columns tried, in order, for the polygon id of the calibration table.
ID_COLUMNS = ("community_code", "code", "id", "name", "名称", "社区名称")
#: Polygon statuses of the calibration table.
STATUSES = ("matched", "matched_by_area", "given_exceeds_total", "total_unmatched")


def read_totals(
    totals: str | os.PathLike | gpd.GeoDataFrame, *, layer: str | None = None
) -> gpd.GeoDataFrame:
    """Read and check official household counts: polygons with a ``households`` column.

    The column may also be named as the households aliases of
    :data:`gridmap.load.COLUMN_ALIASES` (``户数``, ...). Counts must be whole numbers
    ≥ 0; the returned frame has ``id`` (from :data:`ID_COLUMNS`, else the row number),
    ``households`` (int64) and the geometry.

    Raises
    ------
    SchemaError
        No households column, or missing / unreadable counts (rows and values named).
    """
    name = str(totals) if not isinstance(totals, gpd.GeoDataFrame) else "totals"
    if isinstance(totals, gpd.GeoDataFrame):
        require_crs(totals, "totals")
        gdf = totals.reset_index(drop=True)
    else:
        gdf = read_layer(totals, layer=layer, geom_types="polygon")
    col = next((c for c in COLUMN_ALIASES["households"] if c in gdf.columns), None)
    if col is None:
        raise SchemaError(
            "totals need a 'households' column (official households per polygon); it has: "
            f"{', '.join(map(str, gdf.columns))}",
            source=name,
        )
    values, bad = parse_numbers(gdf[col], integer=True, minimum=0.0, inclusive=True)
    bad |= np.isnan(values)
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raw = gdf[col].iloc[rows].tolist()
        raise SchemaError(
            f"{int(bad.sum())} missing or unreadable count(s), first rows (0-based): "
            + ", ".join(f"{r}={v!r}" for r, v in zip(rows, raw, strict=True))
            + "; expected a whole number ≥ 0",
            source=name,
            where=f"column '{col}'",
        )
    id_col = next((c for c in ID_COLUMNS if c in gdf.columns), None)
    ids = gdf[id_col].astype("str").to_numpy() if id_col else np.arange(len(gdf)).astype(str)
    return gpd.GeoDataFrame(
        {"id": ids, "households": values.astype(np.int64)},
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )


def largest_remainder(weights: np.ndarray, groups: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Integers proportional to `weights` that sum to ``targets[g]`` within each group.

    Parameters
    ----------
    weights : numpy.ndarray
        Non-negative weights, one per item.
    groups : numpy.ndarray
        Group index of each item (0 .. len(targets) - 1).
    targets : numpy.ndarray
        Whole-number target per group (≥ 0). A group whose weights are all 0 gets 0.

    Returns
    -------
    numpy.ndarray
        int64 counts: ``floor(share)`` plus one for the items with the largest
        remainders (earlier items first on ties), so each group sums to its target.
    """
    weights = np.asarray(weights, dtype=float)
    groups = np.asarray(groups, dtype=np.intp)
    targets = np.asarray(targets, dtype=np.int64)
    out = np.zeros(len(weights), dtype=np.int64)
    if len(weights) == 0:
        return out
    total = np.bincount(groups, weights=weights, minlength=len(targets))
    live = total[groups] > 0
    share = np.zeros(len(weights))
    share[live] = weights[live] / total[groups][live] * targets[groups][live]
    base = np.floor(share + 1e-9).astype(np.int64)
    out[live] = base[live]
    missing = np.where(
        total > 0, targets - np.bincount(groups, weights=out, minlength=len(targets)), 0
    )
    frac = np.where(live, share - base, -1.0)
    order = np.lexsort((np.arange(len(weights)), -frac, groups))  # by group, largest first
    g_sorted = groups[order]
    start = np.searchsorted(g_sorted, np.arange(len(targets)))
    rank = np.arange(len(order)) - start[g_sorted]
    plus = rank < missing[g_sorted].astype(np.int64)
    out[order[plus]] += 1
    return out


def calibrate(
    buildings: gpd.GeoDataFrame,
    totals: str | os.PathLike | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    fallback: np.ndarray | None = None,
    fallback_weight: np.ndarray | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Scale estimated households so each polygon of `totals` matches its count exactly.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Output of :func:`gridmap.estimate_households` (``households``,
        ``households_source``, ``households_flag``).
    totals : str, path-like or geopandas.GeoDataFrame
        Polygons with a ``households`` column (see :func:`read_totals`).
    layer : str, optional
        Layer of the totals file.
    fallback, fallback_weight : numpy.ndarray, optional
        Buildings that may carry a polygon's count when none of its estimates is
        above 0, and their weights (default: untagged buildings flagged by
        plausibility, weighted by ``footprint_m2 × levels``).

    Returns
    -------
    buildings : geopandas.GeoDataFrame
        A copy with calibrated ``households``, ``households_source``,
        ``households_flag`` and ``households_estimate`` (before calibration).
    table : pandas.DataFrame
        One row per polygon (see the module docstring).
    """
    for col in ("households", "households_source"):
        if col not in buildings.columns:
            raise SchemaError(
                f"column '{col}' is missing; run gridmap.estimate_households first",
                source="buildings",
            )
    zones = read_totals(totals, layer=layer)
    require_crs(buildings, "buildings")
    out = buildings.copy()
    n, m = len(out), len(zones)
    hh = out["households"].to_numpy(dtype=np.int64, na_value=0)
    source = out["households_source"].astype("str").to_numpy()
    flag = (
        out["households_flag"].astype("str").fillna("").to_numpy(dtype=object)
        if "households_flag" in out.columns
        else np.full(n, "", dtype=object)
    )
    given = source == "given"
    estimated = ~given & (hh > 0)
    if fallback is None:
        fallback = _default_fallback(out, flag, hh)
    if fallback_weight is None:
        fallback_weight = _floor_area(out)

    zone = _zone_of(out, zones)
    inside = zone >= 0
    z = np.where(inside, zone, 0)
    targets = zones["households"].to_numpy(dtype=np.int64)
    g_sum = np.bincount(z[inside & given], weights=hh[inside & given], minlength=m).astype(np.int64)
    e_sum = np.bincount(z[inside & estimated], weights=hh[inside & estimated], minlength=m)
    f_sum = np.bincount(
        z[inside & fallback], weights=fallback_weight[inside & fallback], minlength=m
    )
    rest = targets - g_sum
    status = np.full(m, "matched", dtype=object)
    over = rest < 0
    use_fb = ~over & (e_sum == 0) & (rest > 0) & (f_sum > 0)
    unmatched = ~over & (e_sum == 0) & (rest > 0) & ~use_fb
    status[over] = "given_exceeds_total"
    status[use_fb] = "matched_by_area"
    status[unmatched] = "total_unmatched"

    carry = inside & (estimated | (fallback & use_fb[z]))
    weight = np.where(estimated, hh.astype(float), 0.0)
    weight = np.where(fallback & use_fb[z] & ~estimated, fallback_weight, weight)
    new = largest_remainder(weight[carry], z[carry], np.maximum(rest, 0))

    out["households_estimate"] = hh.copy()
    hh_new = hh.copy()
    hh_new[carry] = new
    changed = carry.copy()
    # estimated buildings of an over-full polygon drop to 0
    zeroed = inside & estimated & over[z]
    hh_new[zeroed] = 0
    changed |= zeroed
    source = source.astype(object)
    source[changed] = "calibrated"
    flag = flag.copy()
    in_over = inside & ~given & over[z]
    flag[in_over] = "given_exceeds_total"
    flag[inside & unmatched[z] & ~given] = "total_unmatched"
    out["households"] = hh_new
    out["households_source"] = pd.array(source, dtype="str")
    out["households_flag"] = pd.array(flag, dtype="str")

    after = np.bincount(z[inside], weights=hh_new[inside], minlength=m).astype(np.int64)
    table = pd.DataFrame(
        {
            "id": zones["id"].to_numpy(),
            "households_total": targets,
            "given": g_sum,
            "estimated": e_sum.astype(np.int64),
            "households": after,
            "buildings": np.bincount(z[inside], minlength=m),
            "status": status,
            "factor": np.divide(
                np.maximum(rest, 0), e_sum, out=np.full(m, np.nan), where=e_sum > 0
            ),
        }
    )
    for label in ("given_exceeds_total", "total_unmatched"):
        bad = table.loc[table["status"] == label, "id"].tolist()
        if bad:
            logger.warning(
                "calibration: %d polygon(s) %s: %s",
                len(bad),
                label.replace("_", " "),
                ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else ""),
            )
    return out, table


def _zone_of(buildings: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> np.ndarray:
    """Row of the totals polygon holding each building's point on surface (-1: none)."""
    n = len(buildings)
    zone = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(zones) == 0:
        return zone
    zones = zones.to_crs(buildings.crs) if zones.crs != buildings.crs else zones
    pts = shapely.point_on_surface(buildings.geometry.values)
    inp, tree = zones.sindex.query(pts, predicate="within")
    if len(inp):
        order = np.lexsort((tree, inp))
        inp, tree = inp[order], tree[order]
        first = np.r_[True, inp[1:] != inp[:-1]]
        if (~first).any():
            logger.warning(
                "calibration: %d building(s) lie in several totals polygons; the first "
                "polygon in row order takes them",
                len(np.unique(inp[~first])),
            )
        zone[inp[first]] = tree[first]
    return zone


def _default_fallback(buildings: gpd.GeoDataFrame, flag: np.ndarray, hh: np.ndarray) -> np.ndarray:
    """Untagged buildings with 0 households flagged by plausibility (not by a tag)."""
    codes, uniques = pd.factorize(pd.Series(flag, dtype=object))
    plaus = np.array(
        [
            str(f)
            in (
                "implausible_footprint",
                "large_footprint",
                "larger_than_homes",
                "deep_plan",
                "tall",
            )
            or str(f).startswith("landuse:")
            for f in uniques
        ]
        + [False]
    )
    flagged = plaus[codes]  # code -1 (missing) takes the appended False
    if "use" in buildings.columns:
        untagged = (buildings["use"].astype("str") == "unknown").to_numpy()
    else:
        untagged = np.ones(len(flag), dtype=bool)
    return flagged & untagged & (hh == 0)


def _floor_area(buildings: gpd.GeoDataFrame) -> np.ndarray:
    area = (
        buildings["footprint_m2"].to_numpy(dtype=float, na_value=0.0)
        if "footprint_m2" in buildings.columns
        else np.zeros(len(buildings))
    )
    levels = (
        buildings["levels"].to_numpy(dtype=float, na_value=1.0)
        if "levels" in buildings.columns
        else np.ones(len(buildings))
    )
    return area * np.maximum(levels, 1.0)
