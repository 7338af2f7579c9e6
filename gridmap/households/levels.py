"""Levels (storeys above ground) of every building, from the data first.

Levels come from the first source that has them (``levels_source``):

==============  =========================================================================
source          rule
==============  =========================================================================
``given``       the source's levels (read by :func:`gridmap.read_buildings`, which reads
                ``10+`` as 10, ``2-3`` and ``2;3`` as 3, and OSM ``0`` as 0)
``height``      ``max(1, round(height / storey_height_m))``, the storey height of the
                region (3.0 m in China)
``neighbours``  the median levels of nearby buildings whose levels are given or come
                from their height, rounded half up: at least :data:`NEIGHBOUR_MIN`
                buildings among the :data:`NEIGHBOUR_K` nearest within
                :data:`NEIGHBOUR_RADIUS_M`, of the same use group and with a footprint
                within a factor :data:`NEIGHBOUR_AREA_RATIO` of the building's
``default``     the region's default by use and footprint (see
                :mod:`gridmap.households.regions`; China's are :data:`DEFAULT_LEVELS`)
==============  =========================================================================

Use groups for neighbours: housing (``apartments``, ``residential``, ``dormitory``,
``unknown``), houses (``house``, ``rural_house``), and each other use on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial import cKDTree

from ..load import USES
from .regions import REGIONS

__all__ = [
    "DEFAULT_LEVELS",
    "LEVELS_SOURCES",
    "NEIGHBOUR_AREA_RATIO",
    "NEIGHBOUR_K",
    "NEIGHBOUR_MIN",
    "NEIGHBOUR_RADIUS_M",
    "default_levels",
    "levels_table",
    "neighbour_levels",
    "use_groups",
]

#: China's default levels by use: a number, or ``(upper footprint bound m², levels)``
#: pairs (the default region's table; other regions: ``REGIONS[code].default_levels``).
DEFAULT_LEVELS: dict[str, float | list[tuple[float, float]]] = {
    use: (spec if isinstance(spec, float) else list(spec))
    for use, spec in REGIONS["CN"].default_levels.items()
}

#: Where levels came from, in order of preference.
LEVELS_SOURCES: tuple[str, ...] = ("given", "height", "neighbours", "default")

#: Nearest buildings with known levels looked at.
NEIGHBOUR_K = 10
#: Farthest neighbour used, m (centroid to centroid).
NEIGHBOUR_RADIUS_M = 200.0
#: A neighbour's footprint is similar within this factor (either way).
NEIGHBOUR_AREA_RATIO = 2.0
#: Similar neighbours needed to fill a building's levels.
NEIGHBOUR_MIN = 3

_CHUNK = 200_000  # buildings per cKDTree query (bounds memory)
_HOUSING = ("apartments", "residential", "dormitory", "unknown")
_HOUSES = ("house", "rural_house")


def levels_table(
    defaults: Mapping[str, float | Sequence[tuple[float, float]]] | None,
    base: Mapping[str, float | Sequence[tuple[float, float]]] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Use -> (upper area bounds, levels) arrays: `defaults` merged over `base`.

    Parameters
    ----------
    defaults : mapping, optional
        Entries replacing those of `base` (use -> levels, or bound/levels pairs).
    base : mapping, optional
        The region's table (default: China's, :data:`DEFAULT_LEVELS`).

    Raises
    ------
    ValueError
        An unknown use, decreasing bounds or levels ≤ 0.
    """
    merged = {**dict(base if base is not None else DEFAULT_LEVELS), **dict(defaults or {})}
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


def default_levels(
    use: np.ndarray, area: np.ndarray, table: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Default levels of buildings by use code (index into USES) and footprint (m²)."""
    levels = np.ones(len(use))
    for name, (bounds, values) in table.items():  # one vectorised pass per use (≤ 17)
        mask = use == USES.index(name)
        if mask.any():
            levels[mask] = values[np.searchsorted(bounds, area[mask], side="right")]
    return levels


def use_groups(use: np.ndarray) -> np.ndarray:
    """Neighbour group of each use code: housing 0, houses 1, other uses 2 + code."""
    group = 2 + use.astype(np.int16)
    group[np.isin(use, [USES.index(u) for u in _HOUSING])] = 0
    group[np.isin(use, [USES.index(u) for u in _HOUSES])] = 1
    return group


def neighbour_levels(
    xy: np.ndarray,
    area: np.ndarray,
    levels: np.ndarray,
    donors: np.ndarray,
    wanted: np.ndarray,
    group: np.ndarray,
    *,
    k: int = NEIGHBOUR_K,
    radius: float = NEIGHBOUR_RADIUS_M,
    ratio: float = NEIGHBOUR_AREA_RATIO,
    min_donors: int = NEIGHBOUR_MIN,
) -> np.ndarray:
    """Levels of `wanted` buildings from similar nearby `donors` (NaN where too few).

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` centroids in a metric CRS.
    area : numpy.ndarray
        Footprints, m².
    levels : numpy.ndarray
        Known levels (read where `donors`).
    donors, wanted : numpy.ndarray
        Boolean masks: buildings whose levels are known, and those to fill.
    group : numpy.ndarray
        Use group per building (:func:`use_groups`); donors must share it.
    k, radius, ratio, min_donors
        See :data:`NEIGHBOUR_K`, :data:`NEIGHBOUR_RADIUS_M`,
        :data:`NEIGHBOUR_AREA_RATIO`, :data:`NEIGHBOUR_MIN`.

    Returns
    -------
    numpy.ndarray
        Length ``n``: the median donor levels rounded half up, NaN elsewhere.
    """
    n = len(xy)
    out = np.full(n, np.nan)
    ok_xy = np.isfinite(xy).all(axis=1)
    donor_idx = np.flatnonzero(donors & ok_xy & (area > 0))
    todo = np.flatnonzero(wanted & ok_xy & (area > 0))
    if len(donor_idx) < min_donors or len(todo) == 0:
        return out
    tree = cKDTree(xy[donor_idx])
    kk = min(k, len(donor_idx))
    d_levels = np.append(levels[donor_idx], np.nan)  # index len(donors) = no neighbour
    d_log_area = np.append(np.log(area[donor_idx]), np.nan)
    d_group = np.append(group[donor_idx], -1)
    log_ratio = math.log(ratio)
    for chunk in np.array_split(todo, -(-len(todo) // _CHUNK)):
        dist, idx = tree.query(xy[chunk], k=kk, distance_upper_bound=radius)
        dist, idx = dist.reshape(len(chunk), kk), idx.reshape(len(chunk), kk)
        idx = np.where(np.isfinite(dist), idx, len(donor_idx))
        # a building is not its own neighbour (it has no known levels anyway)
        similar = (np.abs(d_log_area[idx] - np.log(area[chunk])[:, None]) <= log_ratio) & (
            d_group[idx] == group[chunk][:, None]
        )
        vals = np.where(similar, d_levels[idx], np.nan)
        enough = similar.sum(axis=1) >= min_donors
        if enough.any():
            med = np.nanmedian(vals[enough], axis=1)
            out[chunk[enough]] = np.floor(med + 0.5)
    return out
