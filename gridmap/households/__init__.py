"""Households (户) and units (单元) per building.

The steps, one module each:

- :mod:`~gridmap.households.regions`: regional settings (persons per household,
  dwelling size, default levels, plausibility limits); China is the default region.
- :mod:`~gridmap.households.estimate`: :func:`estimate_households`.

See :func:`estimate_households` for the rules.
"""

from __future__ import annotations

from .estimate import (
    DEFAULT_LEVELS,
    MIN_AREA_ESTIMATE_M2,
    MIN_LEVELS_FOR_UNITS,
    SINGLE_STOREY_MAX_M2,
    STOREY_HEIGHT_M,
    TINY_FOOTPRINT_M2,
    estimate_households,
)
from .regions import DEFAULT_REGION, REGIONS, Region, get_region, persons_per_household, region_of

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_REGION",
    "MIN_AREA_ESTIMATE_M2",
    "MIN_LEVELS_FOR_UNITS",
    "REGIONS",
    "SINGLE_STOREY_MAX_M2",
    "STOREY_HEIGHT_M",
    "TINY_FOOTPRINT_M2",
    "Region",
    "estimate_households",
    "get_region",
    "persons_per_household",
    "region_of",
]
