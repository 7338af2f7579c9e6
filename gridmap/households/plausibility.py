"""Plausibility: is a footprint a home, and could a dwelling hold its count?

Applied to estimated buildings before the arithmetic of
:mod:`gridmap.households.estimate`; a number the source gave is never changed, only
flagged. The first matching rule sets ``households_flag`` (empty when none does):

=========================  ==============================================  ============
flag                       rule                                            households
=========================  ==============================================  ============
``implausible_footprint``  footprint > :data:`IMPLAUSIBLE_FOOTPRINT_M2`     0
                           (5 ha): an area drawn as a building, any use
``zero_levels``            OSM ``building:levels=0``: no storey above       0
                           ground (roof, carport, underground)
``landuse:<value>``        untagged\\*, centroid in a non-residential       0
                           landuse polygon (:data:`NON_RESIDENTIAL_LANDUSE`;
                           the smallest polygon holding it decides)
``large_footprint``        untagged\\*, footprint > the region's            0
                           ``max_untagged_footprint_m2`` (5,000 m²)
``larger_than_homes``      untagged\\*, footprint above the                 0
                           :data:`HOMES_QUANTILE` (99 %) of the source's
                           tagged homes (at least :data:`HOMES_MIN_COUNT`
                           of them; never below :data:`HOMES_MIN_M2`)
``deep_plan``              untagged\\*, footprint ≥ :data:`DEEP_PLAN_MIN_M2` 0
                           and plan depth > :data:`DEEP_PLAN_WIDTH_M`: too
                           deep for daylight in dwellings (halls, malls,
                           factories, warehouses)
``tall``                   untagged\\*, height (or levels × storey height)   0
                           above the region's ``max_residential_height_m``
                           (office towers)
``capped``                 estimate above ``max_households`` (2,000) or     the cap
                           above floor area / :data:`MIN_DWELLING_M2`
``given_above_capacity``   a given count above floor area /                 as given
                           :data:`MIN_DWELLING_M2` (flag only)
=========================  ==============================================  ============

\\* untagged = use ``unknown`` (OSM ``building=yes`` with no ``amenity``, ``shop``,
``office``, ``tourism`` or ``craft`` tag, which :func:`gridmap.read_buildings` turns into
a use). A tagged residential building keeps its tag: only the 5 ha and cap rules apply.

A building set to 0 keeps the ``households_source`` of the rule that would have counted
it (for example ``area_estimate``); ``households_flag`` says why it holds nothing, and
its ``households_confidence`` is 0.3.

Plan depth is the width of the rectangle with the footprint's area and perimeter
(holes included), so a courtyard block of narrow wings is not deep.

Calibration (:mod:`gridmap.households.calibrate`) adds ``given_exceeds_total`` and
``total_unmatched``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import require_crs, to_metric
from ..errors import InputError, SchemaError
from ..load import read_layer

__all__ = [
    "DEEP_PLAN_MIN_M2",
    "DEEP_PLAN_WIDTH_M",
    "FLAGS",
    "HOMES_MIN_COUNT",
    "HOMES_MIN_M2",
    "HOMES_QUANTILE",
    "IMPLAUSIBLE_FOOTPRINT_M2",
    "MIN_DWELLING_M2",
    "NON_RESIDENTIAL_LANDUSE",
    "equivalent_width",
    "homes_threshold",
    "landuse_at",
    "read_landuse",
]

#: Any footprint larger than this is an area drawn as a building (m², 5 ha).
IMPLAUSIBLE_FOOTPRINT_M2 = 50_000.0
#: Untagged footprints from this size are checked for plan depth (m²).
DEEP_PLAN_MIN_M2 = 1_500.0
#: Plan depth above which an untagged footprint is not housing (m).
DEEP_PLAN_WIDTH_M = 35.0
#: Smallest gross floor area one household can live in (m²).
MIN_DWELLING_M2 = 10.0
#: Untagged footprints above this quantile of the source's tagged homes are not homes.
HOMES_QUANTILE = 0.99
#: Tagged homes (residential uses) needed to apply :data:`HOMES_QUANTILE`.
HOMES_MIN_COUNT = 100
#: The homes quantile rule never drops footprints below this (m²).
HOMES_MIN_M2 = 1_000.0

#: ``households_flag`` vocabulary (``landuse`` is written ``landuse:<value>``).
FLAGS: tuple[str, ...] = (
    "",
    "implausible_footprint",
    "zero_levels",
    "landuse",
    "large_footprint",
    "larger_than_homes",
    "deep_plan",
    "tall",
    "capped",
    "given_above_capacity",
    "given_exceeds_total",
    "total_unmatched",
)

#: Landuse (or amenity area) values whose untagged buildings are not homes.
NON_RESIDENTIAL_LANDUSE: frozenset[str] = frozenset(
    {
        "industrial",
        "commercial",
        "retail",
        "education",
        "school",
        "university",
        "college",
        "kindergarten",
        "hospital",
        "healthcare",
        "military",
        "railway",
        "port",
        "depot",
        "garages",
        "religious",
        "cemetery",
        "institutional",
        "civic_admin",
        "construction",
        "landfill",
        "quarry",
        "aerodrome",
        "warehouse",
        "logistics",
    }
)

_LANDUSE_COLUMNS = ("landuse", "amenity", "用地性质", "用地类型")


def read_landuse(
    source: str | os.PathLike | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read landuse polygons (OSM ``landuse=*`` areas, or a planning layer).

    Parameters
    ----------
    source : str, path-like or geopandas.GeoDataFrame
        An OSM extract (``.pbf``, its ``landuse`` areas), any polygon file GDAL reads,
        or a GeoDataFrame (for example the OSM features that also hold the buildings;
        rows without a value are skipped).
    layer : str, optional
        Layer of a multi-layer file.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``landuse`` (lower-case value; from ``landuse``, else ``amenity``, else
        ``用地性质``/``用地类型``) and ``geometry`` (polygons), in the source CRS.

    Raises
    ------
    InputError, CRSError, GeometryError
        As :func:`gridmap.read_layer`.
    SchemaError
        The layer has none of the columns above.
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".pbf":
        gdf = _read_pbf_landuse(Path(source))
        name = str(source)
    else:
        name = str(source) if not isinstance(source, gpd.GeoDataFrame) else "landuse"
        if isinstance(source, gpd.GeoDataFrame):
            require_crs(source, "landuse")
            polygonal = np.isin(shapely.get_type_id(source.geometry.values), (3, 6))
            gdf = source.loc[polygonal]
        else:
            gdf = read_layer(source, layer=layer, geom_types="polygon")
    cols = [c for c in _LANDUSE_COLUMNS if c in gdf.columns]
    if not cols:
        raise SchemaError(
            f"landuse needs a column {' or '.join(_LANDUSE_COLUMNS)}; it has: "
            f"{', '.join(map(str, gdf.columns))}",
            source=name,
        )
    value = pd.Series(np.nan, index=gdf.index, dtype=object)
    for col in cols:  # first column with a value wins
        raw = gdf[col].astype("str").str.strip().str.lower()
        raw = raw.where(~raw.isin(["", "nan", "none", "<na>", "no"]))
        value = value.where(value.notna(), raw)
    keep = value.notna().to_numpy()
    out = gpd.GeoDataFrame(
        {"landuse": value[keep].astype("str").to_numpy()},
        geometry=gdf.geometry.values[keep],
        crs=gdf.crs,
    )
    return out.reset_index(drop=True)


def _read_pbf_landuse(path: Path) -> gpd.GeoDataFrame:
    try:
        import pyrosm

        gdf = pyrosm.OSM(str(path)).get_landuse()
    except Exception as exc:
        raise InputError(
            f"cannot read landuse from the OSM extract: {exc}", source=str(path)
        ) from exc
    if gdf is None or len(gdf) == 0:
        return gpd.GeoDataFrame({"landuse": []}, geometry=[], crs="EPSG:4326")
    polygonal = np.isin(shapely.get_type_id(gdf.geometry.values), (3, 6))
    return gdf.loc[polygonal]


def landuse_at(points: np.ndarray, crs: Any, landuse: gpd.GeoDataFrame) -> np.ndarray:
    """Landuse value at each point (the smallest polygon holding it), or None.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, 2)`` coordinates in the metric CRS `crs` (NaN rows: no value).
    crs
        The points' CRS.
    landuse : geopandas.GeoDataFrame
        From :func:`read_landuse`.
    """
    n = len(points)
    out = np.full(n, None, dtype=object)
    if n == 0 or len(landuse) == 0:
        return out
    zones = to_metric(landuse, crs, source="landuse")
    geoms = zones.geometry.values
    ok = np.isfinite(points).all(axis=1)
    pts = shapely.points(points[ok])
    inp, tree = zones.sindex.query(pts, predicate="within")
    if len(inp) == 0:
        return out
    area = shapely.area(geoms)[tree]
    order = np.lexsort((area, inp))  # by point, smallest polygon first
    inp, tree = inp[order], tree[order]
    first = np.r_[True, inp[1:] != inp[:-1]]
    rows = np.flatnonzero(ok)[inp[first]]
    out[rows] = zones["landuse"].to_numpy(dtype=object)[tree[first]]
    return out


def equivalent_width(area: np.ndarray, perimeter: np.ndarray) -> np.ndarray:
    """Width of the rectangle with this area and perimeter (plan depth), m.

    A shape more compact than a square (no such rectangle) gets ``sqrt(area)``.
    """
    half = perimeter / 2.0
    disc = half * half - 4.0 * area
    with np.errstate(invalid="ignore"):
        width = np.where(disc >= 0, (half - np.sqrt(np.maximum(disc, 0))) / 2.0, np.sqrt(area))
    return np.nan_to_num(width)


def homes_threshold(area: np.ndarray, homes: np.ndarray) -> float:
    """Footprint above which an untagged building is larger than the source's homes.

    The :data:`HOMES_QUANTILE` of the footprints of the tagged homes (`homes` mask),
    at least :data:`HOMES_MIN_M2`; infinite with fewer than :data:`HOMES_MIN_COUNT`
    tagged homes.
    """
    sizes = area[homes & (area > 0)]
    if len(sizes) < HOMES_MIN_COUNT:
        return float("inf")
    return max(float(np.quantile(sizes, HOMES_QUANTILE)), HOMES_MIN_M2)
