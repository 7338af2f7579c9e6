"""Households (户) and units (单元) per building.

:func:`estimate_households` fills ``households``, ``levels`` and ``units`` for every
building, records where each number came from, and never overrides a number the
source gave. The rules are applied in this order (the first that matches wins):

Households
----------
=================================================  ==========  =====================
building                                           households  ``households_source``
=================================================  ==========  =====================
household count given in the source (户数)         as given    ``given``
footprint < 20 m² (sheds, kiosks)                  0           ``non_residential``
``rural_house``                                    1           ``rural_house``
``house``                                          1           ``single_storey``
``unknown``, footprint < 40 m²                     0           ``non_residential``
residential\\*, levels ≤ 1 and footprint < 200 m²  1           ``single_storey``
other residential\\*, footprint < 40 m²            1           ``single_storey``
residential\\*, units+levels given, levels ≥ 4    unit rule   ``unit_estimate``
residential\\*, footprint ≥ 40 m²                  area rule   ``area_estimate``
any other use                                      0           ``non_residential``
=================================================  ==========  =====================

\\* residential = ``apartments``, ``residential``, ``dormitory``, and ``unknown`` when
``unknown_as_residential`` (OSM ``building=yes`` is mostly housing in Chinese towns).

Unit rule: ``households = units × levels × households_per_unit_floor`` (the survey
convention 一梯两户: two households per unit per floor by default).

Area rule: ``households = round(footprint × levels × net_to_gross / dwelling_size)``,
at least 1, with the footprint measured in m² in a metric CRS.

=============================  =======  ===========================================
parameter                      default  meaning
=============================  =======  ===========================================
``dwelling_size``              90.0     m² of floor area per household
``net_to_gross``               0.75     share of gross floor area that is dwellings
``unit_width``                 15.0     m of building length per unit (单元)
``households_per_unit_floor``  2        households per unit per floor (一梯两户)
``unknown_as_residential``     True     estimate households in ``unknown`` buildings
=============================  =======  ===========================================

Fixed thresholds (module constants): :data:`TINY_FOOTPRINT_M2` = 20 m²,
:data:`MIN_AREA_ESTIMATE_M2` = 40 m², :data:`SINGLE_STOREY_MAX_M2` = 200 m²,
:data:`STOREY_HEIGHT_M` = 3.0 m, :data:`MIN_LEVELS_FOR_UNITS` = 4.

``area_overrides`` sets ``dwelling_size`` and/or ``net_to_gross`` per area (for
example larger flats in a new district): a polygon layer with either column; a building
takes the values of the polygon its centroid lies in (the last polygon in row order when
several overlap; an empty cell keeps the default).

Levels
------
Given levels win (``levels_source="given"``); else ``round(height / 3.0 m)``, at least 1
(``"height"``); else a default by use and footprint (``"default"``), from
:data:`DEFAULT_LEVELS`:

==========================================================  ========  =======  ========  ======
use                                                         < 120 m²  120–300  300–1000  ≥ 1000
==========================================================  ========  =======  ========  ======
``apartments``, ``dormitory``                               5         5        6         6
``residential``, ``unknown``                                1         5        6         6
``house``, ``rural_house``                                  1         1        1         1
``school``, ``hospital``, ``government``                    3         3        3         3
``enterprise``, ``commercial``, ``public``                  2         2        2         2
``market``, ``religious``, ``garage``, ``shed``, ``other``  1         1        1         1
==========================================================  ========  =======  ========  ======

Pass ``defaults={"unknown": 2, "apartments": [(500, 6), (inf, 7)]}`` to change
entries: a number, or ``(upper footprint bound in m², levels)`` pairs in increasing
order (a footprint below the first bound takes the first value, and so on).

Units
-----
========================================  ==========================  ================
building                                  units                       ``units_source``
========================================  ==========================  ================
unit count given in the source (单元数)   as given                    ``given``
households > 0 and levels ≥ 4             long side / ``unit_width``  ``long_side``
households > 0, lower buildings           1                           ``single``
no households                             0                           ``single``
========================================  ==========================  ================

The long side is that of the footprint's minimum rotated rectangle; the count is rounded
and at least 1, and at most ``ceil(households / (levels × households_per_unit_floor))``,
so that a unit holds at least ``households_per_unit_floor`` households per floor.
``households_per_unit = households / units`` (0 when there are no units).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from ..crs import metric_crs, require_crs, to_metric
from ..errors import SchemaError
from ..load import USES, _labels, _parse_numbers, _use_index

logger = logging.getLogger("gridmap")

#: Default levels by use: a number, or ``(upper footprint bound m², levels)`` pairs.
DEFAULT_LEVELS: dict[str, float | list[tuple[float, float]]] = {
    "apartments": [(300.0, 5.0), (1000.0, 6.0), (math.inf, 6.0)],
    "dormitory": [(300.0, 5.0), (1000.0, 6.0), (math.inf, 6.0)],
    "residential": [(120.0, 1.0), (300.0, 5.0), (1000.0, 6.0), (math.inf, 6.0)],
    "unknown": [(120.0, 1.0), (300.0, 5.0), (1000.0, 6.0), (math.inf, 6.0)],
    "house": 1.0,
    "rural_house": 1.0,
    "school": 3.0,
    "hospital": 3.0,
    "government": 3.0,
    "enterprise": 2.0,
    "commercial": 2.0,
    "public": 2.0,
    "market": 1.0,
    "religious": 1.0,
    "garage": 1.0,
    "shed": 1.0,
    "other": 1.0,
}

#: Storey height used to turn a known building height into levels (m).
STOREY_HEIGHT_M = 3.0
#: Footprints below this count no households (sheds, kiosks), m².
TINY_FOOTPRINT_M2 = 20.0
#: Residential footprints from this size are estimated by area, m².
MIN_AREA_ESTIMATE_M2 = 40.0
#: Residential one-storey buildings below this size count one household, m².
SINGLE_STOREY_MAX_M2 = 200.0
#: Residential buildings from this many levels get units from their long side.
MIN_LEVELS_FOR_UNITS = 4.0

_RESIDENTIAL_ESTIMATED = ("apartments", "residential", "dormitory")
_HH_SOURCES = (
    "given",
    "unit_estimate",
    "area_estimate",
    "single_storey",
    "rural_house",
    "non_residential",
)
_LEVELS_SOURCES = ("given", "height", "default")
_UNITS_SOURCES = ("given", "long_side", "single")
_CALIPER_MAX_VERTICES = 8  # convex footprints up to this many corners are measured in numpy
_CHUNK = 200_000  # rows per numpy block (bounds memory)
_OVERRIDE_COLUMNS = ("dwelling_size", "net_to_gross")


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    dwelling_size: float = 90.0,
    net_to_gross: float = 0.75,
    unit_width: float = 15.0,
    households_per_unit_floor: int = 2,
    defaults: Mapping[str, float | Sequence[tuple[float, float]]] | None = None,
    area_overrides: gpd.GeoDataFrame | None = None,
    unknown_as_residential: bool = True,
) -> gpd.GeoDataFrame:
    """Estimate households, levels and units of every building.

    Numbers given in the source always win. Running the estimate again on its own
    output (for example with another ``dwelling_size``) re-estimates every number whose
    ``*_source`` is not ``"given"``.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Buildings, ideally from :func:`gridmap.read_buildings`. Columns ``use``,
        ``levels``, ``height``, ``households`` and ``units`` are used when present.
    dwelling_size : float
        Floor area per household in m².
    net_to_gross : float
        Share of the gross floor area (footprint × levels) that is dwellings, in (0, 1].
    unit_width : float
        Building length per unit (单元) in m.
    households_per_unit_floor : int
        Households per unit and floor (一梯两户 = 2); caps the long-side unit count.
    defaults : mapping, optional
        Entries replacing :data:`DEFAULT_LEVELS` (use -> levels or bound/levels pairs).
    area_overrides : geopandas.GeoDataFrame, optional
        Polygons with a ``dwelling_size`` and/or ``net_to_gross`` column whose values
        apply to buildings with their centroid inside.
    unknown_as_residential : bool
        Estimate households in ``unknown`` buildings (OSM ``building=yes``).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy in the input CRS with ``households`` (int64), ``households_source``,
        ``levels`` (float64), ``levels_source``, ``units`` (int64), ``units_source``,
        ``households_per_unit`` (float64) and ``footprint_m2`` (float64), and
        ``attrs["households_report"]`` (counts by source, total households).

    Raises
    ------
    CRSError
        `buildings` or `area_overrides` have no CRS.
    SchemaError
        Given numbers are unreadable or negative; `area_overrides` lacks both columns
        or holds bad values.
    """
    _check_parameters(dwelling_size, net_to_gross, unit_width, households_per_unit_floor)
    table = _levels_table(defaults)
    require_crs(buildings, "buildings")
    out = buildings.copy()
    n = len(out)

    metric = _MetricFootprints(out)
    area = metric.area()

    use = _use_codes(out)  # index into USES
    # numbers given in the source (after an earlier estimate: its ``given`` ones only)
    levels_given = _numbers(out, "levels", integer=False, minimum=0.0, inclusive=False)
    height = _numbers(out, "height", integer=False, minimum=0.0, inclusive=False)
    hh_given = _numbers(out, "households", integer=True, minimum=0.0, inclusive=True)
    units_given = _numbers(out, "units", integer=True, minimum=0.0, inclusive=True)

    # ---- levels
    levels = levels_given.copy()
    levels_source = np.full(n, _LEVELS_SOURCES.index("default"), dtype=np.int8)
    levels_source[~np.isnan(levels_given)] = _LEVELS_SOURCES.index("given")
    from_height = np.isnan(levels) & ~np.isnan(height)
    levels[from_height] = np.maximum(1.0, np.floor(height[from_height] / STOREY_HEIGHT_M + 0.5))
    levels_source[from_height] = _LEVELS_SOURCES.index("height")
    missing = np.isnan(levels)
    levels[missing] = _default_levels(use[missing], area[missing], table)

    # ---- households
    ds = np.full(n, float(dwelling_size))
    ntg = np.full(n, float(net_to_gross))
    if area_overrides is not None:
        centroids = shapely.centroid(metric.geometries(np.ones(n, dtype=bool)))
        _apply_overrides(
            area_overrides, centroids, metric.crs, {"dwelling_size": ds, "net_to_gross": ntg}
        )

    unknown = use == USES.index("unknown")
    residential = np.isin(use, [USES.index(u) for u in _RESIDENTIAL_ESTIMATED])
    if unknown_as_residential:
        residential |= unknown
    given = ~np.isnan(hh_given)
    est = ~given & (area >= TINY_FOOTPRINT_M2)
    rural = est & (use == USES.index("rural_house"))
    house = est & (use == USES.index("house"))
    small = est & residential & (area < MIN_AREA_ESTIMATE_M2)
    small_unknown = small & unknown  # outbuildings: no households
    one_storey = (
        est & residential & ~small_unknown & (levels <= 1.0) & (area < SINGLE_STOREY_MAX_M2)
    )
    single = house | one_storey | (small & ~small_unknown)
    by_area = est & residential & ~small & ~one_storey

    households = np.zeros(n, dtype=np.int64)
    households_source = np.full(n, _HH_SOURCES.index("non_residential"), dtype=np.int8)
    households[given] = hh_given[given].astype(np.int64)
    households_source[given] = _HH_SOURCES.index("given")
    households[rural] = 1
    households_source[rural] = _HH_SOURCES.index("rural_house")
    households[single] = 1
    households_source[single] = _HH_SOURCES.index("single_storey")
    # Survey registers give 单元数 and 层数 more often than 户数: a walk-up with known
    # units and storeys holds units x storeys x households per unit-floor (一梯两户).
    by_unit = (
        by_area
        & ~np.isnan(units_given)
        & (units_given > 0)
        & ~np.isnan(levels_given)
        & (levels >= MIN_LEVELS_FOR_UNITS)
    )
    households[by_unit] = (
        units_given[by_unit] * levels[by_unit] * households_per_unit_floor
    ).astype(np.int64)
    households_source[by_unit] = _HH_SOURCES.index("unit_estimate")
    by_area = by_area & ~by_unit
    raw = area[by_area] * levels[by_area] * ntg[by_area] / ds[by_area]
    households[by_area] = np.maximum(1, np.floor(raw + 0.5)).astype(np.int64)
    households_source[by_area] = _HH_SOURCES.index("area_estimate")

    # ---- units
    units = np.zeros(n, dtype=np.int64)
    units_source = np.full(n, _UNITS_SOURCES.index("single"), dtype=np.int8)
    u_given = ~np.isnan(units_given)
    units[u_given] = units_given[u_given].astype(np.int64)
    units_source[u_given] = _UNITS_SOURCES.index("given")
    inhabited = ~u_given & (households > 0)
    long = inhabited & (levels >= MIN_LEVELS_FOR_UNITS)
    if long.any():
        by_side = np.maximum(1.0, np.floor(metric.long_sides(long) / unit_width + 0.5))
        cap = np.maximum(
            1.0, np.ceil(households[long] / (levels[long] * households_per_unit_floor))
        )
        units[long] = np.minimum(by_side, cap).astype(np.int64)
        units_source[long] = _UNITS_SOURCES.index("long_side")
    units[inhabited & ~long] = 1
    per_unit = np.divide(
        households, units, out=np.zeros(n, dtype=float), where=units > 0, dtype=float
    )

    out["use"] = _labels(use, USES)
    out["households"] = households
    out["households_source"] = _labels(households_source, _HH_SOURCES)
    out["levels"] = levels.astype(np.float64)
    out["levels_source"] = _labels(levels_source, _LEVELS_SOURCES)
    out["units"] = units
    out["units_source"] = _labels(units_source, _UNITS_SOURCES)
    out["households_per_unit"] = per_unit
    out["footprint_m2"] = area

    report = {
        "buildings": n,
        "households": int(households.sum()),
        "households_source": _counts(households_source, _HH_SOURCES),
        "levels_source": _counts(levels_source, _LEVELS_SOURCES),
        "units_source": _counts(units_source, _UNITS_SOURCES),
        "params": {
            "dwelling_size": dwelling_size,
            "net_to_gross": net_to_gross,
            "unit_width": unit_width,
            "households_per_unit_floor": households_per_unit_floor,
            "unknown_as_residential": unknown_as_residential,
            "area_overrides": area_overrides is not None,
        },
    }
    out.attrs["households_report"] = report
    logger.info(
        "estimated %d households in %d buildings (%s)",
        report["households"],
        n,
        ", ".join(f"{k}={v}" for k, v in report["households_source"].items()),
    )
    return out


# --------------------------------------------------------------------------- helpers


def _check_parameters(
    dwelling_size: float, net_to_gross: float, unit_width: float, per_floor: int
) -> None:
    if not dwelling_size > 0:
        raise ValueError(f"dwelling_size must be > 0 m², not {dwelling_size!r}")
    if not 0 < net_to_gross <= 1:
        raise ValueError(f"net_to_gross must be in (0, 1], not {net_to_gross!r}")
    if not unit_width > 0:
        raise ValueError(f"unit_width must be > 0 m, not {unit_width!r}")
    if not per_floor >= 1:
        raise ValueError(f"households_per_unit_floor must be ≥ 1, not {per_floor!r}")


def _levels_table(
    defaults: Mapping[str, float | Sequence[tuple[float, float]]] | None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Use -> (upper area bounds, levels) arrays, defaults merged over DEFAULT_LEVELS."""
    merged = {**DEFAULT_LEVELS, **dict(defaults or {})}
    table = {}
    for use, spec in merged.items():
        if use not in USES:
            raise ValueError(f"defaults names unknown use {use!r}; known uses: {', '.join(USES)}")
        if isinstance(spec, (int, float)):
            pairs = [(math.inf, float(spec))]
        else:
            pairs = [(float(b), float(v)) for b, v in spec]
            if not pairs or pairs[-1][0] != math.inf:
                pairs.append((math.inf, pairs[-1][1] if pairs else 1.0))
        bounds = np.array([b for b, _ in pairs])
        values = np.array([v for _, v in pairs])
        if np.any(np.diff(bounds) <= 0) or np.any(values <= 0):
            raise ValueError(
                f"defaults[{use!r}] needs increasing area bounds and levels > 0: {spec!r}"
            )
        table[use] = (bounds, values)
    return table


def _default_levels(
    use: np.ndarray, area: np.ndarray, table: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    levels = np.ones(len(use))
    for name, (bounds, values) in table.items():  # one vectorised pass per use (≤ 17)
        mask = use == USES.index(name)
        if mask.any():
            levels[mask] = values[np.searchsorted(bounds, area[mask], side="right")]
    return levels


def _use_codes(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Index of each building's use in USES (raw values normalised as in read_buildings)."""
    if "use" not in gdf.columns:
        return np.full(len(gdf), USES.index("unknown"), dtype=np.int8)
    return _use_index(gdf["use"], osm=False)


def _numbers(
    gdf: gpd.GeoDataFrame, column: str, *, integer: bool, minimum: float, inclusive: bool
) -> np.ndarray:
    if column not in gdf.columns:
        return np.full(len(gdf), np.nan)
    values, bad = _parse_numbers(
        gdf[column],
        integer=integer,
        minimum=minimum,
        inclusive=inclusive,
        metres=column == "height",
    )
    source_col = f"{column}_source"
    if source_col in gdf.columns:  # an earlier estimate: only its given values count
        values[(gdf[source_col] != "given").to_numpy()] = np.nan
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raw = gdf[column].iloc[rows].tolist()
        raise SchemaError(
            f"{int(bad.sum())} unreadable value(s), first rows (0-based): "
            + ", ".join(f"{r}={v!r}" for r, v in zip(rows, raw, strict=True)),
            source="buildings",
            where=f"column '{column}'",
        )
    return values


class _MetricFootprints:
    """Footprint coordinates projected once to a metric CRS, measured with numpy.

    The coordinates of all footprints are projected in one pyproj call to the CRS of
    :func:`gridmap.crs.metric_crs` (about three times faster than
    ``GeoDataFrame.to_crs`` on a million footprints). Simple polygons (one ring, the
    vast majority of buildings) are measured straight from these coordinates: area by
    the shoelace formula, long side by rotating calipers. Shapely geometries in the
    metric CRS are built only for the rest (holes, multi-polygons, concave rings).
    """

    def __init__(self, gdf: gpd.GeoDataFrame):
        self.geoms = np.asarray(gdf.geometry.values, dtype=object)
        n = len(self.geoms)
        source = CRS.from_user_input(gdf.crs)
        self.crs = metric_crs(gdf, "buildings") if n else source
        coords, idx = shapely.get_coordinates(self.geoms, return_index=True)
        if self.crs != source:
            transformer = Transformer.from_crs(source, self.crs, always_xy=True)
            coords[:, 0], coords[:, 1] = transformer.transform(coords[:, 0], coords[:, 1])
        self.coords, self.idx = coords, idx
        self.counts = np.bincount(idx, minlength=n)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.intp)
        self.simple = (
            (shapely.get_type_id(self.geoms) == 3)
            & (shapely.get_num_interior_rings(self.geoms) == 0)
            & (self.counts >= 4)
        )

    def geometries(self, rows: np.ndarray) -> np.ndarray:
        """Shapely geometries of the `rows` (boolean mask) in the metric CRS."""
        geoms = shapely.force_2d(self.geoms[rows])
        return shapely.set_coordinates(geoms, self.coords[np.repeat(rows, self.counts)])

    def area(self) -> np.ndarray:
        """Footprint areas in m² (0 for missing or empty geometries)."""
        n = len(self.geoms)
        area = np.zeros(n)
        if n == 0:
            return area
        rel = self.coords - self.coords[self.offsets[self.idx]]  # keeps precision in UTM
        same = self.idx[1:] == self.idx[:-1]
        cross = rel[:-1, 0] * rel[1:, 1] - rel[1:, 0] * rel[:-1, 1]
        ring = np.abs(np.bincount(self.idx[:-1][same], weights=cross[same], minlength=n)) / 2
        area[self.simple] = ring[self.simple]
        other = ~self.simple & (self.counts > 0)
        if other.any():
            area[other] = shapely.area(self.geometries(other))
        return np.nan_to_num(area)

    def long_sides(self, rows: np.ndarray) -> np.ndarray:
        """Long side of the minimum-area rotated rectangle of the `rows` (boolean mask)."""
        out = np.full(len(self.geoms), np.nan)
        fast = rows & self.simple & (self.counts <= _CALIPER_MAX_VERTICES + 1)
        for k in np.unique(self.counts[fast]):  # one pass per corner count (≤ 6)
            idx = np.flatnonzero(fast & (self.counts == k))
            for chunk in np.array_split(idx, -(-len(idx) // _CHUNK)):
                take = self.offsets[chunk][:, None] + np.arange(k - 1)  # closing point dropped
                out[chunk] = _caliper_long_sides(self.coords[take])
        rest = rows & np.isnan(out)
        if rest.any():
            rect = shapely.minimum_rotated_rectangle(self.geometries(rest))
            out[rest] = _rectangle_long_sides(rect)
        return out[rows]


def _caliper_long_sides(corners: np.ndarray) -> np.ndarray:
    """Long side of the minimum-area rectangle of convex rings, NaN for concave ones.

    Parameters
    ----------
    corners : numpy.ndarray
        ``(m, k, 2)`` ring corners (closing point dropped).
    """
    rel = corners - corners[:, :1]  # relative coordinates keep precision in UTM metres
    edges = np.roll(rel, -1, axis=1) - rel
    length = np.hypot(edges[..., 0], edges[..., 1])
    nxt = np.roll(edges, -1, axis=1)
    cross = edges[..., 0] * nxt[..., 1] - edges[..., 1] * nxt[..., 0]
    tol = 1e-9 * length * np.roll(length, -1, axis=1)
    convex = np.all(cross >= -tol, axis=1) | np.all(cross <= tol, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = edges / length[..., None]
    ux, uy = u[..., 0][..., None], u[..., 1][..., None]  # edge i direction, (m, k, 1)
    px, py = rel[:, None, :, 0], rel[:, None, :, 1]  # corner j, (m, 1, k)
    along = ux * px + uy * py  # corner j projected on edge i
    across = ux * py - uy * px  # ... and on its normal
    width = along.max(axis=2) - along.min(axis=2)
    height = across.max(axis=2) - across.min(axis=2)
    area = width * height
    area[~(length > 0)] = np.inf
    best = np.argmin(area, axis=1)
    rows = np.arange(len(corners))
    long = np.maximum(width[rows, best], height[rows, best])
    long[~convex | ~np.isfinite(area[rows, best])] = np.nan
    return long


def _rectangle_long_sides(rect: np.ndarray) -> np.ndarray:
    out = np.asarray(shapely.length(rect), dtype=float)  # lines/points: their length
    poly = shapely.get_type_id(rect) == 3
    if not poly.any():
        return out
    coords, idx = shapely.get_coordinates(rect[poly], return_index=True)
    counts = np.bincount(idx, minlength=int(poly.sum()))
    if np.all(counts == 5):
        c = coords.reshape(-1, 5, 2)
        side_a = np.hypot(*(c[:, 1] - c[:, 0]).T)
        side_b = np.hypot(*(c[:, 2] - c[:, 1]).T)
        out[poly] = np.maximum(side_a, side_b)
    else:  # pragma: no cover - GEOS returns 5-point rectangles
        seg = np.hypot(*(coords[1:] - coords[:-1]).T)
        same = idx[1:] == idx[:-1]
        longest = np.zeros(int(poly.sum()))
        np.maximum.at(longest, idx[1:][same], seg[same])
        out[poly] = longest
    return out


def _apply_overrides(
    overrides: gpd.GeoDataFrame,
    centroids: np.ndarray,
    crs: Any,
    targets: Mapping[str, np.ndarray],
) -> None:
    """Write per-area parameter values into `targets` (arrays by column), in place.

    `centroids` are the buildings' centroids in the metric CRS `crs`.
    """
    cols = [c for c in _OVERRIDE_COLUMNS if c in overrides.columns]
    if not cols:
        raise SchemaError(
            f"area_overrides needs a column {' or '.join(_OVERRIDE_COLUMNS)}; it has: "
            f"{', '.join(map(str, overrides.columns))}",
            source="area_overrides",
        )
    require_crs(overrides, "area_overrides")
    if len(overrides) == 0 or len(centroids) == 0:
        return
    zones = to_metric(overrides, crs, source="area_overrides")
    inp, tree = zones.sindex.query(centroids, predicate="within")
    for col in cols:
        values = pd.to_numeric(zones[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        raw_present = zones[col].notna().to_numpy()
        upper = 1.0 if col == "net_to_gross" else np.inf
        bad = raw_present & ~((values > 0) & (values <= upper))
        if bad.any():
            rows = np.flatnonzero(bad)[:5]
            raise SchemaError(
                f"bad {col} value(s) at rows (0-based) "
                + ", ".join(
                    f"{r}={v!r}" for r, v in zip(rows, zones[col].iloc[rows].tolist(), strict=True)
                )
                + (" (must be in (0, 1])" if col == "net_to_gross" else " (must be > 0)"),
                source="area_overrides",
                where=f"column '{col}'",
            )
        ok = ~np.isnan(values[tree])
        i, t = inp[ok], tree[ok]
        if len(i) == 0:
            continue
        order = np.lexsort((t, i))  # by building, then by override row
        i, t = i[order], t[order]
        last = np.r_[i[1:] != i[:-1], True]  # the last override row wins
        targets[col][i[last]] = values[t[last]]


def _counts(codes: np.ndarray, names: Sequence[str]) -> dict[str, int]:
    counts = np.bincount(codes.astype(np.intp), minlength=len(names))
    return {name: int(c) for name, c in zip(names, counts, strict=True) if c}
