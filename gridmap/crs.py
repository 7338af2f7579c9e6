"""Coordinate reference systems: choose a metric CRS, project, publish in WGS84.

All geometry in gridmap is computed in a projected metric CRS (by default the local
UTM zone, chosen from the data) and published in WGS84 (EPSG:4326).
"""

from __future__ import annotations

from functools import lru_cache

import geopandas as gpd
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from .errors import CRSError

WGS84 = CRS.from_epsg(4326)


def require_crs(gdf: gpd.GeoDataFrame, source: str = "layer") -> CRS:
    """Return the CRS of `gdf`, or raise :class:`CRSError` when it has none.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        The layer to check.
    source : str
        Name of the file or layer, used in the error message.

    Returns
    -------
    pyproj.CRS
    """
    if gdf.crs is None:
        raise CRSError(
            "layer has no coordinate reference system (CRS); set one with "
            "GeoDataFrame.set_crs() or pass crs=...",
            source=source,
        )
    return CRS.from_user_input(gdf.crs)


def metric_crs(gdf: gpd.GeoDataFrame, source: str = "layer") -> CRS:
    """Pick a projected metric CRS for `gdf`.

    If the layer is already in a projected CRS whose unit is the metre, that CRS is
    kept. Otherwise the UTM zone of the layer's centre is used.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Layer with a CRS.
    source : str
        Name used in error messages.

    Returns
    -------
    pyproj.CRS
    """
    crs = require_crs(gdf, source)
    if crs.is_projected and _unit_is_metre(crs):
        return crs
    if len(gdf) == 0 or gdf.geometry.is_empty.all():
        raise CRSError("cannot choose a metric CRS for an empty layer", source=source)
    west, south, east, north = gdf.total_bounds
    if not crs.is_geographic:  # the layer's extent in lon/lat (corners, not features)
        to_ll = Transformer.from_crs(crs, WGS84, always_xy=True)
        west, south, east, north = to_ll.transform_bounds(west, south, east, north)
    utm = _utm_zone(round((west + east) / 2, 3), round((south + north) / 2, 3))
    if utm is None:  # pragma: no cover - pyproj finds a zone for any valid lon/lat
        raise CRSError("no UTM zone found for the layer's extent", source=source)
    return utm


@lru_cache(maxsize=64)
def _utm_zone(lon: float, lat: float) -> CRS | None:
    """The WGS 84 UTM zone holding a point (cached: the CRS database query is slow)."""
    found = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    return CRS.from_epsg(found[0].code) if found else None


def to_metric(
    gdf: gpd.GeoDataFrame, crs: CRS | str | int | None = None, source: str = "layer"
) -> gpd.GeoDataFrame:
    """Project `gdf` to `crs`, or to :func:`metric_crs` of the layer when `crs` is None."""
    require_crs(gdf, source)
    target = CRS.from_user_input(crs) if crs is not None else metric_crs(gdf, source)
    if CRS.from_user_input(gdf.crs) == target:
        return gdf
    return gdf.to_crs(target)


def to_wgs84(gdf: gpd.GeoDataFrame, source: str = "layer") -> gpd.GeoDataFrame:
    """Project `gdf` to WGS84 (EPSG:4326) for publishing (maps, GeoJSON, API)."""
    require_crs(gdf, source)
    if CRS.from_user_input(gdf.crs) == WGS84:
        return gdf
    return gdf.to_crs(WGS84)


def _unit_is_metre(crs: CRS) -> bool:
    axes = crs.axis_info
    return bool(axes) and all(a.unit_name in ("metre", "meter") for a in axes)
