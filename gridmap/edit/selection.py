"""Selecting buildings on a map: read a drawn polygon, draw the plan with a drawing tool."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS

from ..errors import InputError
from ..partition.geometry import polygonal
from ..plan import Plan

__all__ = ["polygon_from_geojson", "selection_map", "selection_polygon", "wgs84_wkt"]


def polygon_from_geojson(source: Any) -> shapely.Geometry:
    """Read the polygon(s) of a GeoJSON selection, e.g. exported from :func:`selection_map`.

    Parameters
    ----------
    source : str, path-like, dict or shapely geometry
        A path to a ``.geojson``/``.json`` file, GeoJSON text, a parsed GeoJSON dict
        (FeatureCollection, Feature or geometry), or a shapely geometry.

    Returns
    -------
    shapely Polygon or MultiPolygon
        The union of all polygons in the source (lines and points are ignored), in the
        source's coordinates (WGS84 for GeoJSON).

    Raises
    ------
    InputError
        When the source cannot be read or holds no polygon.
    """
    if isinstance(source, shapely.Geometry):
        geoms = [source]
    else:
        obj = source
        where = "GeoJSON"
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and not source.lstrip().startswith(("{", "["))
        ):
            path = Path(source)
            where = str(path)
            if not path.is_file():
                raise InputError("GeoJSON file not found", source=where)
            obj = path.read_text(encoding="utf-8")
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc})", source=where) from exc
        try:
            geoms = [shapely.geometry.shape(g) for g in _geojson_geometries(obj)]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a GeoJSON geometry ({exc})", source=where) from exc
    polys = [polygonal(shapely.make_valid(g)) for g in geoms if g is not None]
    polys = [p for p in polys if not p.is_empty]
    if not polys:
        raise InputError("the GeoJSON holds no polygon", source="GeoJSON")
    return polygonal(shapely.union_all(polys))


def selection_map(plan: Plan, *, filename: str = "selection.geojson", **kwargs):
    """:func:`gridmap.plan_map` with a drawing tool to select buildings.

    Draw a polygon or rectangle and press *Export*: the browser downloads `filename`
    (a GeoJSON FeatureCollection in WGS84). Pass it to
    :func:`gridmap.edit.move_buildings` as
    ``polygon=polygon_from_geojson("selection.geojson")``.

    Parameters
    ----------
    plan : Plan
    filename : str
        Name of the exported file.
    **kwargs
        Passed to :func:`gridmap.plan_map` (e.g. ``tiles=None`` for no base map).

    Returns
    -------
    folium.Map
    """
    from folium.plugins import Draw

    from ..maps import plan_map

    m = plan_map(plan, **kwargs)
    Draw(
        export=True,
        filename=filename,
        draw_options={
            "polyline": False,
            "circle": False,
            "marker": False,
            "circlemarker": False,
            "polygon": True,
            "rectangle": True,
        },
    ).add_to(m)
    return m


def selection_polygon(polygon: Any, crs: Any, plan_crs: CRS) -> shapely.Geometry:
    """A selection (anything :func:`polygon_from_geojson` reads) in the plan's CRS."""
    poly = polygon_from_geojson(polygon)
    src = CRS.from_user_input(crs) if crs is not None else CRS.from_epsg(4326)
    if src != plan_crs:
        poly = gpd.GeoSeries([poly], crs=src).to_crs(plan_crs).iloc[0]
    return poly


def wgs84_wkt(geom: shapely.Geometry, crs: CRS) -> str:
    """WKT of a geometry in WGS84 (7 decimals), for the edit history."""
    g = gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]
    return shapely.to_wkt(g, rounding_precision=7)


def _geojson_geometries(obj: Any) -> list[dict]:
    if isinstance(obj, list):
        return [g for o in obj for g in _geojson_geometries(o)]
    if not isinstance(obj, dict):
        raise TypeError(f"expected a GeoJSON object, got {type(obj).__name__}")
    t = obj.get("type")
    if t == "FeatureCollection":
        return [g for f in obj.get("features", []) for g in _geojson_geometries(f)]
    if t == "Feature":
        return [obj["geometry"]] if obj.get("geometry") else []
    if t == "GeometryCollection":
        return [g for x in obj.get("geometries", []) for g in _geojson_geometries(x)]
    if t is None:
        raise KeyError("type")
    return [obj]
