"""Households (户), levels and units (单元) of every building: the estimate.

:func:`estimate_households` fills ``households``, ``levels`` and ``units`` for every
building, records where each number came from and how much to trust it, and never
overrides a number the source gave. The steps, in order:

1. **Levels** from the data (:mod:`gridmap.households.levels`): given, else from the
   height, else from similar nearby buildings, else the region's default.
2. **Households** by the rules below (the first that matches wins).
3. **Plausibility** (:mod:`gridmap.households.plausibility`): footprints that are not
   homes (5 ha areas, untagged halls, towers and buildings in industrial or commercial
   landuse) get 0 households; counts no dwelling could hold are capped; each case is
   flagged in ``households_flag``.
4. **Calibration** to official counts per polygon when ``totals=`` is given
   (:mod:`gridmap.households.calibrate`).
5. **Units** and **confidence**, then one summary line (:mod:`gridmap.households.report`).

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
scaled to an official total (``totals=``)          see below   ``calibrated``
=================================================  ==========  =====================

\\* residential = ``apartments``, ``residential``, ``dormitory``, and ``unknown`` when
``unknown_as_residential`` (OSM ``building=yes`` is mostly housing in Chinese towns; the
plausibility rules then take out what is not).

Unit rule: ``households = units × levels × households_per_unit_floor`` (the survey
convention 一梯两户: two households per unit per floor by default).

Area rule: ``households = round(footprint × levels × net_to_gross / dwelling_size)``,
at least 1, with the footprint measured in m² in a metric CRS.

Regions
-------
``region=`` picks the settings of :data:`gridmap.households.REGIONS`: China (``"CN"``,
the default), Indonesia (``"ID"``), France (``"FR"``), other EU countries (``"EU"``),
or ``"auto"`` (the region whose box holds the data's centre; China when none does).
A region sets ``dwelling_size``, ``net_to_gross``, the storey height, the default
levels, the plausibility limits and the persons per household
(:func:`gridmap.households.persons_per_household`). Parameters given explicitly win.

=============================  ===============  ===========================================
parameter                      default (CN)     meaning
=============================  ===============  ===========================================
``dwelling_size``              region (90.0)    m² of floor area per household
``net_to_gross``               region (0.75)    share of gross floor area that is dwellings
``unit_width``                 15.0             m of building length per unit (单元)
``households_per_unit_floor``  2                households per unit per floor (一梯两户)
``unknown_as_residential``     True             estimate households in ``unknown`` buildings
``max_households``             region (2,000)   cap on one building's estimate
=============================  ===============  ===========================================

Fixed thresholds (module constants): :data:`TINY_FOOTPRINT_M2` = 20 m²,
:data:`MIN_AREA_ESTIMATE_M2` = 40 m², :data:`SINGLE_STOREY_MAX_M2` = 200 m²,
:data:`STOREY_HEIGHT_M` = 3.0 m (China; the region's storey height is used),
:data:`MIN_LEVELS_FOR_UNITS` = 4.

``area_overrides`` sets ``dwelling_size`` and/or ``net_to_gross`` per area (for
example larger flats in a new district): a polygon layer with either column; a building
takes the values of the polygon its centroid lies in (the last polygon in row order when
several overlap; an empty cell keeps the default).

Levels
------
See :mod:`gridmap.households.levels`: ``levels_source`` is ``given``, ``height``,
``neighbours`` or ``default``. China's defaults (:data:`DEFAULT_LEVELS`):

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

Confidence
----------
``households_confidence`` (0–1) says how much to trust a building's count; households
below :data:`~gridmap.households.report.WEAK_CONFIDENCE` (0.5) rest on weak estimates:

=====================================================================  ==========
count                                                                  confidence
=====================================================================  ==========
given by the source                                                    1.0
0 because of the building's use (tag or survey)                        0.9
calibrated to an official total                                        0.8
unit rule; ``rural_house``; one household in a tagged house/one-storey  0.7
area rule with levels given or from the height                         0.6
area rule with levels from neighbours; one household, untagged         0.4
area rule with default levels; 0 by plausibility (not a home)          0.3
capped                                                                 0.1
=====================================================================  ==========
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from ..crs import require_crs, to_metric
from ..errors import SchemaError
from ..load import RESIDENTIAL_USES, USES, labels, parse_levels, parse_numbers, use_index
from .calibrate import calibrate
from .footprints import MetricFootprints
from .levels import (
    DEFAULT_LEVELS,
    LEVELS_SOURCES,
    default_levels,
    levels_table,
    neighbour_levels,
    use_groups,
)
from .plausibility import (
    DEEP_PLAN_MIN_M2,
    DEEP_PLAN_WIDTH_M,
    FLAGS,
    IMPLAUSIBLE_FOOTPRINT_M2,
    MIN_DWELLING_M2,
    NON_RESIDENTIAL_LANDUSE,
    equivalent_width,
    homes_threshold,
    landuse_at,
    read_landuse,
)
from .regions import REGIONS, Region, get_region, region_of
from .report import CONFIDENCE, format_summary, households_summary

__all__ = [
    "DEFAULT_LEVELS",
    "HOUSEHOLDS_SOURCES",
    "MIN_AREA_ESTIMATE_M2",
    "MIN_LEVELS_FOR_UNITS",
    "SINGLE_STOREY_MAX_M2",
    "STOREY_HEIGHT_M",
    "TINY_FOOTPRINT_M2",
    "UNITS_SOURCES",
    "estimate_households",
]

logger = logging.getLogger("gridmap")

#: Storey height of the default region (China) used to turn a height into levels (m).
STOREY_HEIGHT_M = REGIONS["CN"].storey_height_m
#: Footprints below this count no households (sheds, kiosks), m².
TINY_FOOTPRINT_M2 = 20.0
#: Residential footprints from this size are estimated by area, m².
MIN_AREA_ESTIMATE_M2 = 40.0
#: Residential one-storey buildings below this size count one household, m².
SINGLE_STOREY_MAX_M2 = 200.0
#: Residential buildings from this many levels get units from their long side.
MIN_LEVELS_FOR_UNITS = 4.0

#: ``households_source`` vocabulary.
HOUSEHOLDS_SOURCES: tuple[str, ...] = (
    "given",
    "unit_estimate",
    "area_estimate",
    "single_storey",
    "rural_house",
    "non_residential",
    "calibrated",
)
#: ``units_source`` vocabulary.
UNITS_SOURCES: tuple[str, ...] = ("given", "long_side", "single")

_RESIDENTIAL_ESTIMATED = ("apartments", "residential", "dormitory")
_OVERRIDE_COLUMNS = ("dwelling_size", "net_to_gross")
_LANDUSE_FLAG_PREFIX = "landuse:"
_NOT_A_HOME = (
    "implausible_footprint",
    "zero_levels",
    "large_footprint",
    "larger_than_homes",
    "deep_plan",
    "tall",
)


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    region: str | Region | None = None,
    dwelling_size: float | None = None,
    net_to_gross: float | None = None,
    unit_width: float = 15.0,
    households_per_unit_floor: int = 2,
    defaults: Mapping[str, float | Sequence[tuple[float, float]]] | None = None,
    area_overrides: gpd.GeoDataFrame | None = None,
    unknown_as_residential: bool = True,
    landuse: gpd.GeoDataFrame | str | os.PathLike | bool | None = None,
    totals: gpd.GeoDataFrame | str | os.PathLike | None = None,
    max_households: int | None = None,
    neighbours: bool = True,
    plausibility: bool = True,
) -> gpd.GeoDataFrame:
    """Estimate households, levels and units of every building.

    Numbers given in the source always win. Running the estimate again on its own
    output (for example with another ``dwelling_size``) re-estimates every number whose
    ``*_source`` is not ``"given"``. See the module docstring for the rules.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Buildings, ideally from :func:`gridmap.read_buildings`. Columns ``use``,
        ``levels``, ``height``, ``households`` and ``units`` are used when present.
    region : str or Region, optional
        Regional settings (:data:`gridmap.households.REGIONS`): ``"CN"`` (default),
        ``"ID"``, ``"FR"``, ``"EU"``, or ``"auto"`` (from the data's location).
    dwelling_size : float, optional
        Floor area per household in m² (default: the region's, 90 in China).
    net_to_gross : float, optional
        Share of the gross floor area (footprint × levels) that is dwellings, in (0, 1]
        (default: the region's, 0.75 in China).
    unit_width : float
        Building length per unit (单元) in m.
    households_per_unit_floor : int
        Households per unit and floor (一梯两户 = 2); caps the long-side unit count.
    defaults : mapping, optional
        Entries replacing the region's default levels (use -> levels or bound/levels
        pairs).
    area_overrides : geopandas.GeoDataFrame, optional
        Polygons with a ``dwelling_size`` and/or ``net_to_gross`` column whose values
        apply to buildings with their centroid inside.
    unknown_as_residential : bool
        Estimate households in ``unknown`` buildings (OSM ``building=yes``).
    landuse : GeoDataFrame, path, bool, optional
        Landuse polygons (``landuse`` column, see
        :func:`gridmap.households.read_landuse`): untagged buildings in industrial,
        commercial, education... areas are not homes. Default: the landuse of the same
        source when :func:`gridmap.read_buildings` found some (an OSM ``.pbf``, landuse
        rows or a ``landuse`` layer); ``False``: none.
    totals : GeoDataFrame or path, optional
        Official households per polygon (a ``households`` column): the estimates are
        scaled so that each polygon's buildings add up to its count exactly.
    max_households : int, optional
        Cap on the households estimated for one building (default: the region's,
        2,000).
    neighbours : bool
        Fill missing levels from similar nearby buildings before the defaults.
    plausibility : bool
        Apply the plausibility rules (switch off only to compare).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy in the input CRS with ``households`` (int64), ``households_source``,
        ``households_flag`` (str, ``""`` when none), ``households_confidence``
        (float64, 0–1), ``levels`` (float64), ``levels_source``, ``units`` (int64),
        ``units_source``, ``households_per_unit`` (float64), ``footprint_m2``
        (float64), with ``totals`` also ``households_estimate`` (before calibration);
        ``attrs["households_summary"]`` (the figures of the summary line, see
        :func:`gridmap.households.households_summary`; also as
        ``attrs["households_report"]``) and, with ``totals``,
        ``attrs["households_calibration"]`` (the per-polygon table of
        :func:`gridmap.households.calibrate` as a dict of columns:
        ``pandas.DataFrame(attrs["households_calibration"])``).

    Raises
    ------
    CRSError
        `buildings`, `area_overrides`, `landuse` or `totals` have no CRS.
    SchemaError
        Given numbers are unreadable or negative; `area_overrides` lacks both columns
        or holds bad values; `landuse` or `totals` lack their column.
    ValueError
        Bad parameters or an unknown region.
    """
    require_crs(buildings, "buildings")
    reg = _resolve_region(region, buildings)
    dwelling_size = reg.dwelling_size if dwelling_size is None else dwelling_size
    net_to_gross = reg.net_to_gross if net_to_gross is None else net_to_gross
    max_households = reg.max_households if max_households is None else max_households
    _check_parameters(
        dwelling_size, net_to_gross, unit_width, households_per_unit_floor, max_households
    )
    table = levels_table(defaults, reg.default_levels)
    out = buildings.copy()
    n = len(out)

    metric = MetricFootprints(out)
    area = metric.area()
    xy = metric.centroids() if n else np.zeros((0, 2))

    use = _use_codes(out)  # index into USES
    unknown = use == USES.index("unknown")
    # numbers given in the source (after an earlier estimate: its ``given`` ones only)
    levels_given = _levels_given(out)
    height = _numbers(out, "height", integer=False, minimum=0.0, inclusive=False)
    hh_given = _numbers(out, "households", integer=True, minimum=0.0, inclusive=True)
    units_given = _numbers(out, "units", integer=True, minimum=0.0, inclusive=True)

    # ---- 1. levels
    levels, levels_source = _levels(
        use, area, xy, levels_given, height, reg, table, neighbours=neighbours
    )

    # ---- 2. households
    ds = np.full(n, float(dwelling_size))
    ntg = np.full(n, float(net_to_gross))
    if area_overrides is not None:
        _apply_overrides(
            area_overrides,
            shapely.points(xy) if n else np.array([]),
            metric.crs,
            {"dwelling_size": ds, "net_to_gross": ntg},
        )
    households, households_source = _household_rules(
        use, area, levels, levels_given, hh_given, units_given, ds, ntg,
        households_per_unit_floor, unknown_as_residential,
    )  # fmt: skip

    # ---- 3. plausibility
    flag = np.zeros(n, dtype=np.int8)
    landuse_value = np.full(n, None, dtype=object)
    if plausibility and n:
        zones = _resolve_landuse(landuse, out)
        flag, landuse_value = _plausibility(
            households, households_source, flag, use, unknown, area, metric, xy,
            levels, height, reg, max_households, zones,
        )  # fmt: skip
    flag_text = _flag_labels(flag, landuse_value)

    out["use"] = labels(use, USES)
    out["households"] = households
    out["households_source"] = labels(households_source, HOUSEHOLDS_SOURCES)
    out["households_flag"] = flag_text
    out["levels"] = levels.astype(np.float64)
    out["levels_source"] = labels(levels_source, LEVELS_SOURCES)
    out["footprint_m2"] = area

    # ---- 4. calibration
    calibration = None
    if totals is not None:
        out, calibration = calibrate(out, totals)
        households = out["households"].to_numpy(dtype=np.int64)
        cal_source = out["households_source"].astype("str").to_numpy()
        households_source = pd.Categorical(cal_source, categories=HOUSEHOLDS_SOURCES).codes
        households_source = households_source.astype(np.int8)
        flag_text = out["households_flag"].astype("str").to_numpy(dtype=object)

    # ---- 5. units and confidence
    units, units_source = _units(
        households, levels, units_given, metric, unit_width, households_per_unit_floor
    )
    per_unit = np.divide(
        households, units, out=np.zeros(n, dtype=float), where=units > 0, dtype=float
    )
    out["households_confidence"] = _confidence(
        households_source, levels_source, flag_text, unknown, use
    )
    out["units"] = units
    out["units_source"] = labels(units_source, UNITS_SOURCES)
    out["households_per_unit"] = per_unit
    out = out[[c for c in out.columns if c != out.geometry.name] + [out.geometry.name]]

    summary = households_summary(out)
    summary["units_source"] = _counts(units_source, UNITS_SOURCES)
    summary["region"] = reg.code
    load = buildings.attrs.get("load_report") if hasattr(buildings, "attrs") else None
    if isinstance(load, Mapping) and "features_read" in load and "features_kept" in load:
        summary["dropped_at_read"] = int(load["features_read"]) - int(load["features_kept"])
    if calibration is not None:
        statuses = calibration["status"].value_counts()
        summary["calibration"] = {
            "polygons": len(calibration),
            "matched": int(statuses.get("matched", 0) + statuses.get("matched_by_area", 0)),
            "given_exceeds_total": int(statuses.get("given_exceeds_total", 0)),
            "total_unmatched": int(statuses.get("total_unmatched", 0)),
        }
        # JSON-friendly (attrs travel into GeoParquet metadata): DataFrame(...) rebuilds it
        out.attrs["households_calibration"] = calibration.to_dict(orient="list")
    summary["params"] = {
        **reg.as_dict(),
        "dwelling_size": dwelling_size,
        "net_to_gross": net_to_gross,
        "max_households": max_households,
        "unit_width": unit_width,
        "households_per_unit_floor": households_per_unit_floor,
        "unknown_as_residential": unknown_as_residential,
        "area_overrides": area_overrides is not None,
        "neighbours": neighbours,
        "plausibility": plausibility,
    }
    out.attrs["households_summary"] = summary
    out.attrs["households_report"] = summary
    line = format_summary(summary)
    logger.log(logging.WARNING if summary.get("flagged") else logging.INFO, "%s", line)
    return out


# --------------------------------------------------------------------------- steps


def _resolve_region(region: str | Region | None, gdf: gpd.GeoDataFrame) -> Region:
    if isinstance(region, str) and region.strip().lower() == "auto":
        code = _region_of_data(gdf)
        logger.info("region 'auto': %s (%s)", code, REGIONS[code].name)
        return REGIONS[code]
    return get_region(region)


def _region_of_data(gdf: gpd.GeoDataFrame) -> str:
    """Region code of the centre of the data's bounds (the default region if unknown)."""
    if len(gdf) == 0:
        return get_region(None).code
    minx, miny, maxx, maxy = gdf.total_bounds
    x, y = (minx + maxx) / 2, (miny + maxy) / 2
    src = CRS.from_user_input(gdf.crs)
    if not src.is_geographic or src.to_epsg() != 4326:
        x, y = Transformer.from_crs(src, 4326, always_xy=True).transform(x, y)
    return region_of(float(x), float(y))


def _levels(
    use: np.ndarray,
    area: np.ndarray,
    xy: np.ndarray,
    levels_given: np.ndarray,
    height: np.ndarray,
    reg: Region,
    table: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    neighbours: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Levels and their source code (index into LEVELS_SOURCES)."""
    n = len(use)
    levels = levels_given.copy()
    source = np.full(n, LEVELS_SOURCES.index("default"), dtype=np.int8)
    source[~np.isnan(levels_given)] = LEVELS_SOURCES.index("given")
    from_height = np.isnan(levels) & ~np.isnan(height)
    levels[from_height] = np.maximum(1.0, np.floor(height[from_height] / reg.storey_height_m + 0.5))
    source[from_height] = LEVELS_SOURCES.index("height")
    missing = np.isnan(levels)
    if neighbours and missing.any():
        donors = ~missing & (levels > 0)
        filled = neighbour_levels(xy, area, levels, donors, missing, use_groups(use))
        got = ~np.isnan(filled)
        levels[got] = filled[got]
        source[got] = LEVELS_SOURCES.index("neighbours")
        missing &= ~got
    levels[missing] = default_levels(use[missing], area[missing], table)
    return levels, source


def _household_rules(
    use: np.ndarray,
    area: np.ndarray,
    levels: np.ndarray,
    levels_given: np.ndarray,
    hh_given: np.ndarray,
    units_given: np.ndarray,
    ds: np.ndarray,
    ntg: np.ndarray,
    per_floor: int,
    unknown_as_residential: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Households and their source code by the rules of the module docstring."""
    n = len(use)
    src = HOUSEHOLDS_SOURCES.index
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
    source = np.full(n, src("non_residential"), dtype=np.int8)
    households[given] = hh_given[given].astype(np.int64)
    source[given] = src("given")
    households[rural] = 1
    source[rural] = src("rural_house")
    households[single] = 1
    source[single] = src("single_storey")
    # Survey registers give 单元数 and 层数 more often than 户数: a walk-up with known
    # units and storeys holds units x storeys x households per unit-floor (一梯两户).
    by_unit = (
        by_area
        & ~np.isnan(units_given)
        & (units_given > 0)
        & ~np.isnan(levels_given)
        & (levels >= MIN_LEVELS_FOR_UNITS)
    )
    households[by_unit] = (units_given[by_unit] * levels[by_unit] * per_floor).astype(np.int64)
    source[by_unit] = src("unit_estimate")
    by_area = by_area & ~by_unit
    raw = area[by_area] * levels[by_area] * ntg[by_area] / ds[by_area]
    households[by_area] = np.maximum(1, np.floor(raw + 0.5)).astype(np.int64)
    source[by_area] = src("area_estimate")
    return households, source


def _plausibility(
    households: np.ndarray,
    source: np.ndarray,
    flag: np.ndarray,
    use: np.ndarray,
    unknown: np.ndarray,
    area: np.ndarray,
    metric: MetricFootprints,
    xy: np.ndarray,
    levels: np.ndarray,
    height: np.ndarray,
    reg: Region,
    max_households: int,
    zones: gpd.GeoDataFrame | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the plausibility rules in place on `households`; return (flags, landuse)."""
    n = len(households)
    code = FLAGS.index
    given = source == HOUSEHOLDS_SOURCES.index("given")
    est = ~given
    landuse_value = np.full(n, None, dtype=object)

    def drop(mask: np.ndarray, name: str) -> None:
        mask = mask & (flag == 0)
        flag[mask] = code(name)
        households[mask & est] = 0

    drop(area > IMPLAUSIBLE_FOOTPRINT_M2, "implausible_footprint")
    drop(est & (levels == 0), "zero_levels")
    cand = est & unknown & (households > 0) & (flag == 0)
    if zones is not None and cand.any():
        rows = np.flatnonzero(cand)
        values = landuse_at(xy[rows], metric.crs, zones)
        hit = np.array([v in NON_RESIDENTIAL_LANDUSE for v in values], dtype=bool)
        landuse_value[rows[hit]] = values[hit]
        mask = np.zeros(n, dtype=bool)
        mask[rows[hit]] = True
        drop(mask, "landuse")
    cand &= flag == 0
    drop(cand & (area > reg.max_untagged_footprint_m2), "large_footprint")
    cand &= flag == 0
    homes = np.isin(use, [USES.index(u) for u in RESIDENTIAL_USES])
    drop(cand & (area > homes_threshold(area, homes)), "larger_than_homes")
    cand &= flag == 0
    deep = cand & (area >= DEEP_PLAN_MIN_M2)
    if deep.any():
        rows = np.flatnonzero(deep)
        perimeter = metric.perimeter()[rows]
        width = equivalent_width(area[rows], perimeter)
        mask = np.zeros(n, dtype=bool)
        mask[rows[width > DEEP_PLAN_WIDTH_M]] = True
        drop(mask, "deep_plan")
    cand &= flag == 0
    tall_m = np.where(np.isnan(height), levels * reg.storey_height_m, height)
    drop(cand & (tall_m > reg.max_residential_height_m), "tall")

    floor_cap = np.floor(area * np.maximum(levels, 1.0) / MIN_DWELLING_M2)
    cap = np.minimum(float(max_households), np.maximum(1.0, floor_cap)).astype(np.int64)
    over = est & (households > cap) & (flag == 0)
    households[over] = cap[over]
    flag[over] = code("capped")
    above = given & (households > np.maximum(1.0, floor_cap)) & (flag == 0)
    flag[above] = code("given_above_capacity")
    return flag, landuse_value


def _flag_labels(flag: np.ndarray, landuse_value: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``households_flag`` strings (``landuse:<value>`` for landuse flags)."""
    text = np.asarray(FLAGS, dtype=object)[flag]
    lu = flag == FLAGS.index("landuse")
    if lu.any():
        text = text.copy()
        text[lu] = [_LANDUSE_FLAG_PREFIX + str(v) for v in landuse_value[lu]]
    return pd.array(text, dtype="str")


def _units(
    households: np.ndarray,
    levels: np.ndarray,
    units_given: np.ndarray,
    metric: MetricFootprints,
    unit_width: float,
    per_floor: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(households)
    units = np.zeros(n, dtype=np.int64)
    source = np.full(n, UNITS_SOURCES.index("single"), dtype=np.int8)
    u_given = ~np.isnan(units_given)
    units[u_given] = units_given[u_given].astype(np.int64)
    source[u_given] = UNITS_SOURCES.index("given")
    inhabited = ~u_given & (households > 0)
    long = inhabited & (levels >= MIN_LEVELS_FOR_UNITS)
    if long.any():
        by_side = np.maximum(1.0, np.floor(metric.long_sides(long) / unit_width + 0.5))
        cap = np.maximum(1.0, np.ceil(households[long] / (levels[long] * per_floor)))
        units[long] = np.minimum(by_side, cap).astype(np.int64)
        source[long] = UNITS_SOURCES.index("long_side")
    units[inhabited & ~long] = 1
    return units, source


def _confidence(
    source: np.ndarray,
    levels_source: np.ndarray,
    flag: Any,
    unknown: np.ndarray,
    use: np.ndarray,
) -> np.ndarray:
    """``households_confidence`` by the table of the module docstring."""
    n = len(source)
    s, lv = HOUSEHOLDS_SOURCES.index, LEVELS_SOURCES.index
    flag = np.asarray(flag, dtype=object)
    conf = np.full(n, CONFIDENCE["area_estimate_default_levels"])
    conf[source == s("given")] = CONFIDENCE["given"]
    conf[source == s("non_residential")] = CONFIDENCE["non_residential"]
    conf[source == s("calibrated")] = CONFIDENCE["calibrated"]
    conf[source == s("unit_estimate")] = CONFIDENCE["unit_estimate"]
    conf[source == s("rural_house")] = CONFIDENCE["rural_house"]
    single = source == s("single_storey")
    conf[single & ~unknown] = CONFIDENCE["single_storey_tagged"]
    conf[single & unknown] = CONFIDENCE["single_storey_untagged"]
    area_est = source == s("area_estimate")
    known = np.isin(levels_source, [lv("given"), lv("height")])
    conf[area_est & known] = CONFIDENCE["area_estimate_known_levels"]
    conf[area_est & (levels_source == lv("neighbours"))] = CONFIDENCE[
        "area_estimate_neighbour_levels"
    ]
    conf[area_est & (levels_source == lv("default"))] = CONFIDENCE["area_estimate_default_levels"]
    if n:
        codes, uniques = pd.factorize(pd.Series(flag, dtype=object))
        names = [str(u) for u in uniques]
        not_home = np.array(
            [f in _NOT_A_HOME
             or f.startswith(_LANDUSE_FLAG_PREFIX) for f in names] + [False]
        )[codes]  # fmt: skip
        capped = np.array([f == "capped" for f in names] + [False])[codes]
        estimated = source != s("given")
        conf[not_home & estimated & (source != s("calibrated"))] = CONFIDENCE["not_a_home"]
        conf[capped & estimated] = CONFIDENCE["capped"]
    return conf


# --------------------------------------------------------------------------- helpers


def _check_parameters(
    dwelling_size: float,
    net_to_gross: float,
    unit_width: float,
    per_floor: int,
    max_households: int,
) -> None:
    if not dwelling_size > 0:
        raise ValueError(f"dwelling_size must be > 0 m², not {dwelling_size!r}")
    if not 0 < net_to_gross <= 1:
        raise ValueError(f"net_to_gross must be in (0, 1], not {net_to_gross!r}")
    if not unit_width > 0:
        raise ValueError(f"unit_width must be > 0 m, not {unit_width!r}")
    if not per_floor >= 1:
        raise ValueError(f"households_per_unit_floor must be ≥ 1, not {per_floor!r}")
    if not max_households >= 1:
        raise ValueError(f"max_households must be ≥ 1, not {max_households!r}")


def _resolve_landuse(
    landuse: gpd.GeoDataFrame | str | os.PathLike | bool | None, buildings: gpd.GeoDataFrame
) -> gpd.GeoDataFrame | None:
    """Landuse polygons to use, or None (see the `landuse` parameter)."""
    if landuse is False:
        return None
    if landuse is None or landuse is True:
        load = buildings.attrs.get("load_report") or {}
        found = load.get("landuse_source") if isinstance(load, Mapping) else None
        if not found:
            return None
        zones = read_landuse(found["path"], layer=found.get("layer"))
        logger.info("landuse from the same source: %d polygons (%s)", len(zones), found["path"])
        return zones if len(zones) else None
    zones = read_landuse(landuse)
    return zones if len(zones) else None


def _use_codes(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Index of each building's use in USES (raw values normalised as in read_buildings)."""
    if "use" not in gdf.columns:
        return np.full(len(gdf), USES.index("unknown"), dtype=np.int8)
    return use_index(gdf["use"], osm=False)


def _levels_given(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Given levels by the rules of :func:`gridmap.load.parse_levels` (0 allowed)."""
    if "levels" not in gdf.columns:
        return np.full(len(gdf), np.nan)
    values, bad, _ = parse_levels(gdf["levels"], osm=True)
    if "levels_source" in gdf.columns:  # an earlier estimate: only its given values count
        values[(gdf["levels_source"] != "given").to_numpy()] = np.nan
    if bad.any():
        _raise_bad(gdf, "levels", bad)
    return values


def _numbers(
    gdf: gpd.GeoDataFrame, column: str, *, integer: bool, minimum: float, inclusive: bool
) -> np.ndarray:
    if column not in gdf.columns:
        return np.full(len(gdf), np.nan)
    values, bad = parse_numbers(
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
        _raise_bad(gdf, column, bad)
    return values


def _raise_bad(gdf: gpd.GeoDataFrame, column: str, bad: np.ndarray) -> None:
    rows = np.flatnonzero(bad)[:5]
    raw = gdf[column].iloc[rows].tolist()
    raise SchemaError(
        f"{int(bad.sum())} unreadable value(s), first rows (0-based): "
        + ", ".join(f"{r}={v!r}" for r, v in zip(rows, raw, strict=True)),
        source="buildings",
        where=f"column '{column}'",
    )


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
