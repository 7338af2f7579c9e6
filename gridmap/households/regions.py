"""Regional settings for household estimates: one table, one row per region.

gridmap was built for Chinese cities, and China (``"CN"``) stays the default region:
nothing changes unless a region is asked for. Other regions change the numbers that
depend on how people live there: persons per household, the floor area of a dwelling,
the storey height that turns a building height into levels, the levels assumed when the
data has none, and the plausibility limits of :mod:`gridmap.households.plausibility`.

===============================  ======  ======  ======  ======
setting                          CN      ID      FR      EU
===============================  ======  ======  ======  ======
``persons_per_household``        2.62    3.9     2.19    2.3
``dwelling_size`` (m²)           90      50      65      75
``net_to_gross``                 0.75    0.8     0.8     0.8
``storey_height_m``              3.0     3.5     3.0     3.0
``max_residential_height_m``     100     100     50      60
``max_untagged_footprint_m2``    5,000   5,000   5,000   5,000
``max_households``               2,000   2,000   2,000   2,000
===============================  ======  ======  ======  ======

Sources of the persons per household: CN 2020 census (第七次全国人口普查, 2.62);
ID 2010 census (237.6M persons in 61.2M households, 3.9); FR INSEE 2020 census (2.19);
EU Eurostat household statistics (EU-27, 2.3). Dwelling sizes are typical gross sizes of
new urban flats (CN), of urban kampung and row houses (ID) and of city flats (FR, EU);
``max_residential_height_m`` is 50 m in France because a residential building above it is
an IGH (immeuble de grande hauteur) and rare; elsewhere it is a generous upper bound.

Default levels (used when neither the data nor nearby buildings give them) are in
:data:`REGIONS` ``[code].default_levels``; China's are the table of
:mod:`gridmap.households.estimate`.

Pick a region with ``region="ID"`` (any code of :data:`REGIONS`, case-insensitive),
``region=None`` (the default region, :data:`DEFAULT_REGION`) or ``region="auto"``: the
region whose box holds the centre of the data (:func:`region_of`), and the default
region when none does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_REGION",
    "REGIONS",
    "Region",
    "get_region",
    "persons_per_household",
    "region_of",
]

#: The region used when nothing says otherwise.
DEFAULT_REGION = "CN"

LevelsSpec = float | tuple[tuple[float, float], ...]

_INF = math.inf

#: China: default levels by use (a number, or (upper footprint bound m², levels) pairs).
_CN_LEVELS: dict[str, LevelsSpec] = {
    "apartments": ((300.0, 5.0), (1000.0, 6.0), (_INF, 6.0)),
    "dormitory": ((300.0, 5.0), (1000.0, 6.0), (_INF, 6.0)),
    "residential": ((120.0, 1.0), (300.0, 5.0), (1000.0, 6.0), (_INF, 6.0)),
    "unknown": ((120.0, 1.0), (300.0, 5.0), (1000.0, 6.0), (_INF, 6.0)),
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

#: Indonesia: kampung and row houses of one or two storeys, walk-up flats (rusun).
_ID_LEVELS: dict[str, LevelsSpec] = {
    **_CN_LEVELS,
    "apartments": ((300.0, 4.0), (_INF, 5.0)),
    "dormitory": 2.0,
    "residential": ((60.0, 1.0), (_INF, 2.0)),
    "unknown": ((60.0, 1.0), (_INF, 2.0)),
    "school": 2.0,
    "hospital": 2.0,
    "government": 2.0,
}

#: France / Europe: city blocks of four to six storeys, houses of two.
_FR_LEVELS: dict[str, LevelsSpec] = {
    **_CN_LEVELS,
    "apartments": ((300.0, 4.0), (_INF, 5.0)),
    "dormitory": 4.0,
    "residential": ((120.0, 2.0), (300.0, 4.0), (_INF, 5.0)),
    "unknown": ((120.0, 2.0), (300.0, 4.0), (_INF, 5.0)),
    "house": 2.0,
    "rural_house": 2.0,
}


@dataclass(frozen=True)
class Region:
    """Settings of one region (see the module docstring for the values and sources).

    Attributes
    ----------
    code, name : str
        Region code (ISO 3166 country code, or ``EU``) and English name.
    persons_per_household : float
        Average persons per household (census), used by flood grading and evacuation.
    dwelling_size : float
        Gross floor area of one dwelling, m².
    net_to_gross : float
        Share of a residential building's gross floor area that is dwellings.
    storey_height_m : float
        Height of one storey, m (turns a building height into levels).
    max_residential_height_m : float
        A building taller than this without a residential tag is not taken as housing.
    max_untagged_footprint_m2 : float
        A footprint this large without a residential tag is not taken as housing.
    max_households : int
        Cap on the households estimated for one building.
    default_levels : mapping
        Levels by use when nothing else gives them (see :data:`DEFAULT_LEVELS`).
    bbox : tuple of float
        ``(west, south, east, north)`` in degrees, for ``region="auto"``.
    sources : str
        Where the figures come from.
    """

    code: str
    name: str
    persons_per_household: float
    dwelling_size: float
    net_to_gross: float
    storey_height_m: float
    max_residential_height_m: float
    max_untagged_footprint_m2: float
    max_households: int
    default_levels: Mapping[str, LevelsSpec] = field(repr=False)
    bbox: tuple[float, float, float, float] = field(repr=False)
    sources: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The scalar settings as a plain dict (for reports)."""
        return {
            "region": self.code,
            "persons_per_household": self.persons_per_household,
            "dwelling_size": self.dwelling_size,
            "net_to_gross": self.net_to_gross,
            "storey_height_m": self.storey_height_m,
            "max_residential_height_m": self.max_residential_height_m,
            "max_untagged_footprint_m2": self.max_untagged_footprint_m2,
            "max_households": self.max_households,
        }


#: Region code -> :class:`Region`. China (``"CN"``) is the default region.
REGIONS: Mapping[str, Region] = MappingProxyType(
    {
        "CN": Region(
            code="CN",
            name="China",
            persons_per_household=2.62,
            dwelling_size=90.0,
            net_to_gross=0.75,
            storey_height_m=3.0,
            max_residential_height_m=100.0,
            max_untagged_footprint_m2=5_000.0,
            max_households=2_000,
            default_levels=MappingProxyType(_CN_LEVELS),
            bbox=(73.5, 18.0, 135.1, 53.6),
            sources="persons per household: 2020 census (第七次全国人口普查)",
        ),
        "ID": Region(
            code="ID",
            name="Indonesia",
            persons_per_household=3.9,
            dwelling_size=50.0,
            net_to_gross=0.8,
            storey_height_m=3.5,
            max_residential_height_m=100.0,
            max_untagged_footprint_m2=5_000.0,
            max_households=2_000,
            default_levels=MappingProxyType(_ID_LEVELS),
            bbox=(95.0, -11.0, 141.0, 6.0),
            sources="persons per household: 2010 census (237.6M persons, 61.2M households)",
        ),
        "FR": Region(
            code="FR",
            name="France",
            persons_per_household=2.19,
            dwelling_size=65.0,
            net_to_gross=0.8,
            storey_height_m=3.0,
            max_residential_height_m=50.0,
            max_untagged_footprint_m2=5_000.0,
            max_households=2_000,
            default_levels=MappingProxyType(_FR_LEVELS),
            bbox=(-5.2, 41.3, 9.6, 51.1),
            sources="persons per household: INSEE, 2020 census",
        ),
        "EU": Region(
            code="EU",
            name="European Union (other countries)",
            persons_per_household=2.3,
            dwelling_size=75.0,
            net_to_gross=0.8,
            storey_height_m=3.0,
            max_residential_height_m=60.0,
            max_untagged_footprint_m2=5_000.0,
            max_households=2_000,
            default_levels=MappingProxyType(_FR_LEVELS),
            bbox=(-25.0, 34.0, 45.0, 72.0),
            sources="persons per household: Eurostat, EU-27 average",
        ),
    }
)


def get_region(region: str | Region | None = None) -> Region:
    """The :class:`Region` named by `region` (``None``: the default region, China).

    Parameters
    ----------
    region : str, Region or None
        A code of :data:`REGIONS` (case-insensitive), a :class:`Region`, or ``None``.
        ``"auto"`` is resolved by :func:`region_of`, not here.

    Raises
    ------
    ValueError
        An unknown code.
    """
    if region is None:
        return REGIONS[DEFAULT_REGION]
    if isinstance(region, Region):
        return region
    code = str(region).strip().upper()
    if code not in REGIONS:
        raise ValueError(
            f"unknown region {region!r}; known regions: {', '.join(REGIONS)} (or 'auto')"
        )
    return REGIONS[code]


def persons_per_household(region: str | None = None) -> float:
    """Persons per household of a region: the one setting flood grading and evacuation use.

    Parameters
    ----------
    region : str, optional
        A code of :data:`REGIONS` (``"CN"``, ``"ID"``, ``"FR"``, ``"EU"``);
        ``None`` gives the default region, China: 2.62 (2020 census).

    Returns
    -------
    float

    Examples
    --------
    >>> persons_per_household()
    2.62
    >>> persons_per_household("FR")
    2.19
    """
    return get_region(region).persons_per_household


def region_of(lon: float, lat: float) -> str:
    """Code of the region whose box holds (`lon`, `lat`) in degrees, else the default.

    Boxes are tried in the order of :data:`REGIONS` (China first; ``EU`` after ``FR``).
    """
    if math.isfinite(lon) and math.isfinite(lat):
        for code, reg in REGIONS.items():
            west, south, east, north = reg.bbox
            if west <= lon <= east and south <= lat <= north:
                return code
    return DEFAULT_REGION
