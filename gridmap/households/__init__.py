"""Households (户), levels and units (单元) per building.

The steps, one module each:

- :mod:`~gridmap.households.regions`: regional settings (persons per household,
  dwelling size, storey height, default levels, plausibility limits); China is the
  default region. :func:`persons_per_household` is the one setting that flood grading
  and evacuation use.
- :mod:`~gridmap.households.levels`: levels from the data (given, height, similar
  neighbours), then the region's defaults.
- :mod:`~gridmap.households.plausibility`: homes or not (tags, landuse, size, depth,
  height) and caps, flagged in ``households_flag``.
- :mod:`~gridmap.households.calibrate`: scaling to official counts per polygon.
- :mod:`~gridmap.households.report`: the summary line and the confidence per grid.
- :mod:`~gridmap.households.estimate`: :func:`estimate_households`, which runs them.

See :mod:`gridmap.households.estimate` for the rules.
"""

from __future__ import annotations

from .calibrate import calibrate, largest_remainder, read_totals
from .estimate import (
    HOUSEHOLDS_SOURCES,
    MIN_AREA_ESTIMATE_M2,
    MIN_LEVELS_FOR_UNITS,
    SINGLE_STOREY_MAX_M2,
    STOREY_HEIGHT_M,
    TINY_FOOTPRINT_M2,
    UNITS_SOURCES,
    estimate_households,
)
from .levels import DEFAULT_LEVELS, LEVELS_SOURCES
from .plausibility import FLAGS, NON_RESIDENTIAL_LANDUSE, read_landuse
from .regions import DEFAULT_REGION, REGIONS, Region, get_region, persons_per_household, region_of
from .report import (
    CONFIDENCE,
    WEAK_CONFIDENCE,
    format_summary,
    households_summary,
    weak_by_grid,
)

__all__ = [
    "CONFIDENCE",
    "DEFAULT_LEVELS",
    "DEFAULT_REGION",
    "FLAGS",
    "HOUSEHOLDS_SOURCES",
    "LEVELS_SOURCES",
    "MIN_AREA_ESTIMATE_M2",
    "MIN_LEVELS_FOR_UNITS",
    "NON_RESIDENTIAL_LANDUSE",
    "REGIONS",
    "SINGLE_STOREY_MAX_M2",
    "STOREY_HEIGHT_M",
    "TINY_FOOTPRINT_M2",
    "UNITS_SOURCES",
    "WEAK_CONFIDENCE",
    "Region",
    "calibrate",
    "estimate_households",
    "format_summary",
    "get_region",
    "households_summary",
    "largest_remainder",
    "persons_per_household",
    "read_landuse",
    "read_totals",
    "region_of",
    "weak_by_grid",
]
