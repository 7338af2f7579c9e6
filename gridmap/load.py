"""Read building footprints and other layers into gridmap's schemas.

:func:`read_buildings` turns footprints from any common source (GeoPackage, GeoJSON,
Shapefile, GeoParquet, an OSM ``.pbf`` extract or a GeoDataFrame) into the *buildings
schema* of ``docs/DESIGN.md``:

=================  =====================  ==========================================
column             type                   meaning
=================  =====================  ==========================================
``building_id``    str, unique            source id (楼栋编号, ``osm_id``, ``id``...)
                                          or generated ``B000001`` (row number + 1)
``name``           str (nullable)
``use``            str                    one of :data:`USES`
``levels``         Float64 (nullable)     storeys above ground
``households``     Int64 (nullable)       given in the source (户数, ``building:flats``)
``units``          Int64 (nullable)       given in the source (单元数)
``height``         Float64 (nullable)     metres (``height``, 高度; ``" m"`` is allowed)
``geometry``       Polygon/MultiPolygon   repaired, empty and zero-area parts dropped
=================  =====================  ==========================================

Source columns are kept as they were (a source column that has the name of a schema
column is replaced by its normalised version). The output stays in the source CRS.

Column mapping
--------------
Schema columns are found through :data:`COLUMN_ALIASES`: for each schema name the first
alias present in the source is used. Pass ``columns={"households": "HH_TOTAL"}`` to
name a column explicitly (an explicit name always wins, ``None`` switches the mapping
off). Extend the module constant to teach gridmap a new source format for good.

Use vocabulary
--------------
Values of the use column are lower-cased, stripped and looked up in
:data:`USE_ALIASES`; a value that already belongs to :data:`USES` is kept, anything
else becomes ``other`` and a missing value ``unknown``. The OSM ``building`` tag is
special in one way: there ``public`` means a public-administration building (town hall,
court house) and becomes ``government``. Where the use is ``unknown`` (OSM
``building=yes``), a recognised OSM ``amenity`` tag (school, hospital, townhall, ...)
gives the use.

Repairs and report
------------------
Invalid geometries are repaired with :func:`shapely.make_valid`, geometry collections
are reduced to their polygonal parts, MultiPolygons are kept whole, and features whose
geometry is missing, empty, of zero area or not polygonal are dropped. What was dropped
or repaired is counted in ``gdf.attrs["load_report"]`` and logged to the ``gridmap``
logger. Report keys: ``source``, ``features_read``, ``features_kept``, ``columns``
(schema name -> source column used), ``missing_geometry``, ``non_polygon_dropped``,
``repaired``, ``collections_reduced``, ``empty_or_zero_area_dropped``,
``too_large_dropped`` (with ``max_footprint_m2``), ``bad_<column>_nulled`` for
numbers read as missing, ``osm`` (whether the source was read as OpenStreetMap data,
with ``osm_reason``), ``levels_by_rule`` (how many levels values each rule below read),
``landuse_rows_dropped`` and ``landuse_source`` (see "Landuse" below).

Levels
------
Levels values are read by these rules, in every source (each use is counted in the
report and logged as a warning):

==============  =========================================================  =========
value           read as                                                    example
==============  =========================================================  =========
a number > 0    that number                                                ``6``
``N+``          ``N``: at least N storeys                                  ``10+``
``A-B``         a range: the mean of A and B, rounded half up              ``2-3``→3
``A;B;...``     several parts: the mean of the values, rounded half up     ``2;3``→3
``0``           OSM sources only: no storey above ground (roof, carport,   ``0``
                underground); the building holds no household
==============  =========================================================  =========

``–``, ``~`` and ``to`` also mark a range. Any other value is unreadable: an
**OpenStreetMap source** reads it as missing with a warning, any other source stops
with a :class:`SchemaError` naming the file, column, rows and values, unless
``on_bad_levels="null"``. A source is read as OSM when it is a ``.pbf`` extract, has
OSM columns (``osm_id``, ``osmid``, ``osm_type``, ``element``/``element_type``,
``@id``, a ``building`` tag column, or any ``key:subkey`` tag such as
``building:levels`` or ``addr:street``), or has the layout of InaSAFE/HOT OSM building
exports (two of ``structure``, ``walls``, ``roof`` beside ``levels``); ``osm=True`` or
``osm=False`` decides it explicitly.

Heights
-------
The height column is found by name (:data:`COLUMN_ALIASES`: ``height``, ``高度``,
``建筑高度``, ``building:height``, ``htotale``, ``hauteur``, ``height_m``, ...). The
numeric columns (levels, households, units, height) also match their aliases in any
letter case (``HEIGHT``, ``Hauteur``). The explicit mapping (``columns=``) still wins.

Landuse
-------
Landuse polygons tell homes from workplaces (see :mod:`gridmap.households`). Rows of an
OSM source that carry a ``landuse`` tag and no ``building`` tag are landuse areas, not
buildings: they are dropped (``landuse_rows_dropped``). When the source itself holds
landuse (a ``.pbf`` extract, such rows, or a ``landuse`` layer beside the buildings
layer), ``landuse_source`` in the report names it, and
:func:`gridmap.estimate_households` reads it from there.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ._runtime import gc_paused
from .crs import to_metric
from .errors import CRSError, GeometryError, InputError, SchemaError

logger = logging.getLogger("gridmap")

#: The use vocabulary (``use`` column of the buildings schema).
USES: tuple[str, ...] = (
    # residential
    "apartments",
    "residential",
    "house",
    "rural_house",
    "dormitory",
    # institutions (special grids)
    "school",
    "hospital",
    "market",
    "enterprise",
    "government",
    # other
    "commercial",
    "public",
    "religious",
    "garage",
    "shed",
    "other",
    "unknown",
)

#: Uses whose buildings hold households.
RESIDENTIAL_USES: frozenset[str] = frozenset(
    {"apartments", "residential", "house", "rural_house", "dormitory"}
)

#: Uses that get special grids (专属网格).
INSTITUTION_USES: frozenset[str] = frozenset(
    {"school", "hospital", "market", "enterprise", "government"}
)

#: Schema column -> source column names tried in order (first present wins; the
#: numeric columns also match in any letter case). ``amenity``, ``shop``, ``office``,
#: ``tourism`` and ``craft`` are not schema columns: they are the OSM hints used when
#: the use is unknown.
COLUMN_ALIASES: dict[str, list[str]] = {
    "building_id": ["building_id", "楼栋编号", "建筑编号", "楼栋代码", "osm_id", "id"],
    "name": ["name", "名称", "建筑名称", "楼栋名称"],
    "use": ["use", "用途", "建筑用途", "building_use", "building"],
    "levels": [
        "levels",
        "层数",
        "地上层数",
        "floors",
        "storeys",
        "building:levels",
        "building_levels",
        "num_floors",
        "nombre_d_etages",
        "nb_etages",
    ],
    "households": ["households", "户数", "住户数", "dwellings", "building:flats", "flats"],
    "units": ["units", "单元数", "building:units"],
    "height": [
        "height",
        "高度",
        "建筑高度",
        "楼高",
        "building:height",
        "building_height",
        "height_m",
        "htotale",
        "hauteur",
        "h_total",
        "bldg_height",
    ],
    # OSM hints used when the use is unknown (``building=yes``), in this order
    "amenity": ["amenity"],
    "shop": ["shop"],
    "office": ["office"],
    "tourism": ["tourism"],
    "craft": ["craft"],
}

#: Source values (lower case) -> use vocabulary. Values already in :data:`USES` map to
#: themselves (except OSM ``building=public``, see the module docstring).
USE_ALIASES: dict[str, str] = {
    # unknown: OSM building=yes and friends
    "": "unknown",
    "yes": "unknown",
    "building": "unknown",
    "true": "unknown",
    "未知": "unknown",
    # apartments / residential
    "apartments": "apartments",
    "apartment": "apartments",
    "flats": "apartments",
    "楼房": "apartments",
    "住宅楼": "apartments",
    "公寓": "apartments",
    "residential": "residential",
    "住宅": "residential",
    "居民楼": "residential",
    "residence": "residential",
    # houses
    "house": "house",
    "detached": "house",
    "semidetached_house": "house",
    "semi-detached": "house",
    "terrace": "house",
    "bungalow": "house",
    "cabin": "house",
    "static_caravan": "house",
    "平房": "house",
    "别墅": "house",
    "独栋": "house",
    "farm": "rural_house",
    "farmhouse": "rural_house",
    "农房": "rural_house",
    "农宅": "rural_house",
    "农村住房": "rural_house",
    "民房": "rural_house",
    "dormitory": "dormitory",
    "宿舍": "dormitory",
    # schools
    "school": "school",
    "university": "school",
    "college": "school",
    "kindergarten": "school",
    "education": "school",
    "学校": "school",
    "小学": "school",
    "中学": "school",
    "大学": "school",
    "幼儿园": "school",
    "教育": "school",
    # hospitals
    "hospital": "hospital",
    "clinic": "hospital",
    "doctors": "hospital",
    "medical": "hospital",
    "healthcare": "hospital",
    "医院": "hospital",
    "卫生院": "hospital",
    "卫生室": "hospital",
    "诊所": "hospital",
    # markets
    "market": "market",
    "marketplace": "market",
    "市场": "market",
    "农贸市场": "market",
    "集市": "market",
    # enterprises
    "industrial": "enterprise",
    "warehouse": "enterprise",
    "office": "enterprise",
    "factory": "enterprise",
    "manufacture": "enterprise",
    "storage": "enterprise",
    "企业": "enterprise",
    "厂房": "enterprise",
    "工厂": "enterprise",
    "仓库": "enterprise",
    "公司": "enterprise",
    "办公": "enterprise",
    # government
    "government": "government",
    "public": "government",
    "townhall": "government",
    "courthouse": "government",
    "police": "government",
    "fire_station": "government",
    "机关": "government",
    "政府": "government",
    "行政": "government",
    "派出所": "government",
    # commercial
    "retail": "commercial",
    "commercial": "commercial",
    "shop": "commercial",
    "supermarket": "commercial",
    "kiosk": "commercial",
    "hotel": "commercial",
    "restaurant": "commercial",
    "cafe": "commercial",
    "fast_food": "commercial",
    "pub": "commercial",
    "bar": "commercial",
    "bank": "commercial",
    "fuel": "commercial",
    "ruko": "commercial",
    "商业": "commercial",
    "商铺": "commercial",
    "商店": "commercial",
    "商场": "commercial",
    "超市": "commercial",
    "门市": "commercial",
    "宾馆": "commercial",
    "酒店": "commercial",
    # public facilities
    "community_centre": "public",
    "library": "public",
    "theatre": "public",
    "arts_centre": "public",
    "sports_centre": "public",
    "sports_hall": "public",
    "civic": "public",
    "文化站": "public",
    "活动中心": "public",
    "体育馆": "public",
    "党群服务中心": "public",
    "社区服务中心": "public",
    # religious
    "religious": "religious",
    "place_of_worship": "religious",
    "church": "religious",
    "chapel": "religious",
    "cathedral": "religious",
    "mosque": "religious",
    "temple": "religious",
    "shrine": "religious",
    "synagogue": "religious",
    "monastery": "religious",
    "寺庙": "religious",
    "教堂": "religious",
    "宗教": "religious",
    # garages and sheds
    "garage": "garage",
    "garages": "garage",
    "carport": "garage",
    "parking": "garage",
    "车库": "garage",
    "shed": "shed",
    "hut": "shed",
    "barn": "shed",
    "cowshed": "shed",
    "stable": "shed",
    "greenhouse": "shed",
    "roof": "shed",
    "仓房": "shed",
    "棚": "shed",
    "杂物间": "shed",
    # Indonesian (InaSAFE exports) and French survey words
    "rumah": "house",
    "kantor": "enterprise",
    "rumah sakit": "hospital",
    "sekolah": "school",
    "masjid": "religious",
    "gereja": "religious",
    "pasar": "market",
    "toko": "commercial",
    "logement": "residential",
    "habitation": "residential",
    "immeuble": "apartments",
    "maison": "house",
    "bureaux": "enterprise",
    "commerce": "commercial",
}

#: OSM hint columns (used where the use is unknown): tag value -> use. ``*`` stands for
#: any other value except ``no``; a value without an entry gives no hint.
HINT_USES: dict[str, dict[str, str]] = {
    "amenity": {},  # through USE_ALIASES (school, hospital, townhall, ...)
    "shop": {"*": "commercial"},
    "office": {"government": "government", "*": "enterprise"},
    "tourism": {
        "hotel": "commercial",
        "hostel": "commercial",
        "motel": "commercial",
        "museum": "public",
        "gallery": "public",
    },
    "craft": {"*": "enterprise"},
}

_SCHEMA_COLUMNS = ("building_id", "name", "use", "levels", "households", "units", "height")
# source columns holding OSM tags (their ``public`` means government)
_OSM_TAG_COLUMNS = frozenset({"building", "amenity", "building_use"})
# columns that hold the OSM element type beside an ``id``/``osm_id`` column
_OSM_TYPE_COLUMNS = ("osm_type", "element", "element_type")
_PARQUET_SUFFIXES = (".parquet", ".geoparquet")
_POLYGONAL_TYPES = (3, 6, 7)  # shapely type ids: Polygon, MultiPolygon, GeometryCollection
_GEOM_FAMILIES = {
    "point": (0, 4),
    "line": (1, 2, 5),
    "polygon": (3, 6),
}
_MAX_LISTED = 5  # how many bad rows / duplicates an error message lists
# schema columns that also match their aliases in any letter case
_CASELESS = ("levels", "households", "units", "height")
# columns that mark an OSM source (besides ``key:subkey`` tags and a ``building`` column)
_OSM_ID_COLUMNS = ("osm_id", "osmid", "osm_type", "osm_way_id", "element", "element_type", "@id")
# InaSAFE / HOT Export Tool building keys without their ``building:`` prefix
_OSM_EXPORT_KEYS = ("structure", "walls", "roof")
# names of a landuse layer beside the buildings layer
_LANDUSE_LAYERS = ("landuse", "landuses", "land_use")

BadValues = Literal["auto", "raise", "null"]


# --------------------------------------------------------------------------- public


@gc_paused()
def read_buildings(
    source: str | os.PathLike | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    id_column: str | None = None,
    columns: Mapping[str, str | None] | None = None,
    crs: Any = None,
    bbox: tuple[float, float, float, float] | None = None,
    on_bad_levels: BadValues = "auto",
    max_footprint_m2: float | None = None,
    osm: bool | None = None,
) -> gpd.GeoDataFrame:
    """Read building footprints into the gridmap buildings schema.

    Parameters
    ----------
    source : str, path-like or geopandas.GeoDataFrame
        A GeoPackage, GeoJSON, Shapefile (any format GDAL reads), a GeoParquet file
        (``.parquet``), an OSM extract (``.pbf``, read with pyrosm) or a GeoDataFrame
        (not modified).
    layer : str, optional
        Layer of a multi-layer file. Without it a file's only layer is read, or its
        layer called ``buildings``.
    id_column : str, optional
        Source column holding the building id; shorthand for
        ``columns={"building_id": id_column}``.
    columns : mapping, optional
        Schema column -> source column, overriding :data:`COLUMN_ALIASES` (for example
        ``{"households": "HH_TOTAL"}``). ``None`` as a value switches a mapping off.
    crs : optional
        CRS to set when the source has none (anything pyproj accepts). gridmap never
        assumes a CRS: a source without one and without `crs` raises.
    bbox : tuple of float, optional
        ``(minx, miny, maxx, maxy)`` in the source CRS; only features intersecting it
        are read.
    on_bad_levels : {"auto", "raise", "null"}
        What to do with unreadable levels, households or units (``"abc"``, ``"-1"``,
        ``"12户"``; ``"0"`` levels outside OSM sources; see "Levels" in the module
        docstring for the values read by rule, such as ``"10+"`` and ``"2;3"``):
        raise :class:`SchemaError`, or read them as missing with a warning and count
        them in the report. ``"auto"`` (default) reads them as missing in an
        OpenStreetMap source and raises for any other source. Unreadable heights are
        always read as missing (height is only a fallback for levels). Error
        messages count rows from 0 in source order.
    max_footprint_m2 : float, optional
        Drop (and count) footprints larger than this, measured in a metric CRS. Coarse
        OSM mapping holds block- or district-sized "buildings" (for example 5 ha);
        :func:`gridmap.estimate_households` flags them without dropping them.
    osm : bool, optional
        Read the source as OpenStreetMap data (lenient levels, ``0`` levels, landuse
        rows). Default: detected (see "Levels" in the module docstring).

    Returns
    -------
    geopandas.GeoDataFrame
        Buildings schema (see the module docstring), in the source CRS, with
        ``attrs["load_report"]`` counting what was read, repaired and dropped, and
        ``attrs["source_path"]`` the file read (when read from a file).

    Raises
    ------
    InputError
        Missing, unreadable or empty source, unknown layer.
    CRSError
        Source without CRS and no `crs`, or a `crs` contradicting the source's.
    GeometryError
        No polygon geometry at all, or none left after repair.
    SchemaError
        Unknown or missing mapped column, unreadable numbers, missing or duplicate ids.
    """
    if on_bad_levels not in ("auto", "raise", "null"):
        raise ValueError(f"on_bad_levels must be 'auto', 'raise' or 'null', not {on_bad_levels!r}")
    gdf, name = _read_source(source, layer=layer, bbox=bbox, default_layer="buildings")
    gdf = _apply_crs(gdf, crs, name)
    mapping = _resolve_columns(gdf, columns, id_column, name)
    is_osm, why = _osm_source(source, gdf, osm)
    report: dict[str, Any] = {
        "source": name,
        "features_read": len(gdf),
        "columns": {k: v for k, v in mapping.items() if v is not None},
        "osm": is_osm,
        "osm_reason": why,
    }
    on_bad: BadValues = on_bad_levels
    if on_bad == "auto":
        on_bad = "null" if is_osm else "raise"

    not_building = _landuse_rows(gdf, mapping, is_osm)
    report["landuse_rows_dropped"] = int(not_building.sum())
    landuse_source = _landuse_source(source, gdf, layer, not_building)
    if landuse_source is not None:
        report["landuse_source"] = landuse_source
    attrs = _building_attributes(gdf, mapping, name, on_bad, report, osm=is_osm)

    geoms, keep = _clean_polygons(gdf.geometry.values, name, report)
    keep &= ~not_building
    if max_footprint_m2 is not None:
        keep &= _drop_large(geoms, keep, gdf.crs, max_footprint_m2, name, report)
    if not keep.any():
        raise GeometryError(
            "no usable building footprint left after dropping empty, zero-area and "
            "oversized geometries",
            source=name,
        )

    drop = [c for c in gdf.columns if c in _SCHEMA_COLUMNS or c == gdf.geometry.name]
    out = pd.concat(
        [attrs.reset_index(drop=True), gdf.drop(columns=drop).reset_index(drop=True)], axis=1
    )
    out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=gdf.crs), crs=gdf.crs)
    out = out.loc[keep].reset_index(drop=True)
    report["features_kept"] = len(out)
    out.attrs["load_report"] = report
    if isinstance(source, (str, os.PathLike)):  # where more layers may be read from
        out.attrs["source_path"] = str(Path(source).resolve())
    _log_report(report)
    return out


def read_layer(
    source: str | os.PathLike | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    crs: Any = None,
    geom_types: str | Iterable[str] | None = None,
) -> gpd.GeoDataFrame:
    """Read a generic layer (communities, barriers, compounds, shelters, ...).

    Parameters
    ----------
    source : str, path-like or geopandas.GeoDataFrame
        Any file GDAL reads, a GeoParquet file, or a GeoDataFrame (not modified).
    layer : str, optional
        Layer name; required for a file with several layers.
    crs : optional
        CRS to set when the source has none. Never assumed.
    geom_types : str or iterable of str, optional
        Accepted geometry families or types: ``"polygon"``, ``"line"``, ``"point"``
        (or shapely type names such as ``"Polygon"``, ``"MultiLineString"``). Features
        of other types are dropped and counted; if none is left, GeometryError.

    Returns
    -------
    geopandas.GeoDataFrame
        The layer in its own CRS, polygons repaired (as in :func:`read_buildings`),
        empty geometries dropped, with ``attrs["load_report"]``.
    """
    gdf, name = _read_source(source, layer=layer, bbox=None, default_layer=None)
    gdf = _apply_crs(gdf, crs, name)
    report: dict[str, Any] = {"source": name, "features_read": len(gdf)}
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    type_id = shapely.get_type_id(geoms)
    keep = type_id >= 0
    report["missing_geometry"] = int((~keep).sum())

    if geom_types is not None:
        wanted = _geom_type_ids(geom_types)
        if 3 in wanted or 6 in wanted:
            wanted = wanted | {7}  # collections may hold polygons: reduced below
        match = np.isin(type_id, sorted(wanted))
        if not match.any():
            raise GeometryError(
                f"expected {_fmt_types(geom_types)} geometries, found only {_found_types(geoms)}",
                source=name,
            )
        report["wrong_type_dropped"] = int((keep & ~match).sum())
        keep &= match

    polygonal = keep & np.isin(type_id, _POLYGONAL_TYPES)
    if polygonal.any():
        sub_report: dict[str, Any] = {}
        fixed, ok = _clean_polygons(geoms[polygonal], name, sub_report, require=False)
        geoms = geoms.copy()
        geoms[polygonal] = fixed
        idx = np.flatnonzero(polygonal)
        keep[idx[~ok]] = False
        report["repaired"] = sub_report.get("repaired", 0)
        report["empty_or_zero_area_dropped"] = sub_report.get("empty_or_zero_area_dropped", 0)
    other = keep & ~polygonal
    empty = other & shapely.is_empty(geoms)
    report["empty_dropped"] = int(empty.sum())
    keep &= ~empty
    if not keep.any():
        raise GeometryError("no usable geometry in the layer", source=name)
    out = gdf.copy()
    out = out.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    out = out.loc[keep].reset_index(drop=True)
    report["features_kept"] = len(out)
    out.attrs["load_report"] = report
    _log_report(report)
    return out


def buildings_from_osm(
    place: str | None = None,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    **kwargs: Any,
) -> gpd.GeoDataFrame:
    """Download building footprints from OpenStreetMap with osmnx.

    Parameters
    ----------
    place : str, optional
        A place name geocoded by Nominatim (``"伊美区, 伊春市"``).
    bbox : tuple of float, optional
        ``(west, south, east, north)`` in WGS84 degrees. Give `place` or `bbox`.
    **kwargs
        Passed on to :func:`read_buildings` (``columns=``, ``on_bad_levels=``,
        ``max_footprint_m2=``, ...).

    Returns
    -------
    geopandas.GeoDataFrame
        Buildings schema in EPSG:4326; ids are ``"way/123"``/``"relation/456"``.
    """
    if (place is None) == (bbox is None):
        raise InputError("give exactly one of place= or bbox=", source="buildings_from_osm")
    import osmnx as ox

    tags = {"building": True}
    what = place if place is not None else f"bbox {tuple(bbox)}"
    try:
        if place is not None:
            features = ox.features_from_place(place, tags=tags)
        else:
            features = ox.features_from_bbox(tuple(bbox), tags=tags)
    except Exception as exc:  # osmnx raises its own and network errors
        raise InputError(f"OpenStreetMap download failed: {exc}", source=what) from exc
    if features is None or len(features) == 0:
        raise InputError("OpenStreetMap has no buildings here", source=what)
    features = features.reset_index()
    return read_buildings(features, **kwargs)


# --------------------------------------------------------------------------- reading


def _read_source(
    source: Any, *, layer: str | None, bbox: Sequence[float] | None, default_layer: str | None
) -> tuple[gpd.GeoDataFrame, str]:
    """Read `source` into a GeoDataFrame; return it with a name for messages."""
    if isinstance(source, gpd.GeoDataFrame):
        name = "GeoDataFrame"
        gdf = source.copy()
        if bbox is not None:
            gdf = _filter_bbox(gdf, bbox)
    elif isinstance(source, pd.DataFrame):
        raise InputError("a DataFrame without geometry cannot be read", source="DataFrame")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise InputError("file not found", source=name)
        suffix = path.suffix.lower()
        if suffix == ".pbf":
            gdf = _read_pbf(path, bbox)
        elif suffix in _PARQUET_SUFFIXES:
            gdf = _read_parquet(path, bbox)
        else:
            gdf = _read_ogr(path, layer, bbox, default_layer)
            if layer is not None or gdf.attrs.get("_layer"):
                name = f"{name} (layer '{gdf.attrs.pop('_layer', layer)}')"
    else:
        raise InputError(
            f"cannot read a {type(source).__name__}; pass a file path or a GeoDataFrame",
            source=repr(source)[:80],
        )
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputError("the source has no geometry column", source=name)
    if len(gdf) == 0:
        raise InputError("the layer has no features", source=name)
    return gdf, name


def _read_ogr(
    path: Path, layer: str | None, bbox: Sequence[float] | None, default_layer: str | None
) -> gpd.GeoDataFrame:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise InputError(f"cannot read the file: {exc}", source=str(path)) from exc
    if not layers:
        raise InputError("the file has no layers", source=str(path))
    if layer is not None:
        if layer not in layers:
            raise InputError(
                f"layer '{layer}' does not exist; available layers: {', '.join(layers)}",
                source=str(path),
            )
        chosen = layer
    elif len(layers) == 1:
        chosen = layers[0]
    elif default_layer in layers:
        chosen = default_layer
    else:
        raise InputError(
            f"the file has several layers; pass layer= (one of: {', '.join(layers)})",
            source=str(path),
        )
    kw: dict[str, Any] = {"layer": chosen, "engine": "pyogrio"}
    if bbox is not None:
        kw["bbox"] = tuple(bbox)
    try:
        try:
            gdf = gpd.read_file(path, use_arrow=True, **kw)
        except (DataSourceError, DataLayerError):
            raise
        except Exception:  # arrow cannot take every field type: fall back
            gdf = gpd.read_file(path, use_arrow=False, **kw)
    except Exception as exc:
        raise InputError(f"cannot read layer '{chosen}': {exc}", source=str(path)) from exc
    if len(layers) > 1 or layer is not None:
        gdf.attrs["_layer"] = chosen
    return gdf


def _read_parquet(path: Path, bbox: Sequence[float] | None) -> gpd.GeoDataFrame:
    try:
        gdf = gpd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"cannot read the GeoParquet file: {exc}", source=str(path)) from exc
    return _filter_bbox(gdf, bbox) if bbox is not None else gdf


def _read_pbf(path: Path, bbox: Sequence[float] | None) -> gpd.GeoDataFrame:
    try:
        import pyrosm

        osm = pyrosm.OSM(str(path), bounding_box=list(bbox) if bbox is not None else None)
        gdf = osm.get_buildings()
    except Exception as exc:
        raise InputError(f"cannot read the OSM extract: {exc}", source=str(path)) from exc
    if gdf is None or len(gdf) == 0:
        raise InputError("the OSM extract holds no buildings", source=str(path))
    return gdf


def _filter_bbox(gdf: gpd.GeoDataFrame, bbox: Sequence[float]) -> gpd.GeoDataFrame:
    box = shapely.box(*bbox)
    hits = gdf.sindex.query(box, predicate="intersects")
    return gdf.iloc[np.sort(hits)]


def _apply_crs(gdf: gpd.GeoDataFrame, crs: Any, name: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        if crs is None:
            raise CRSError(
                "the layer has no coordinate reference system (CRS) and gridmap does not "
                "guess one; pass crs=... (for example crs='EPSG:4326')",
                source=name,
            )
        return gdf.set_crs(crs)
    if crs is not None and CRS.from_user_input(crs) != CRS.from_user_input(gdf.crs):
        raise CRSError(
            f"the layer already has CRS {CRS.from_user_input(gdf.crs).to_string()}, "
            f"crs={crs!r} contradicts it; crs= only sets a missing CRS (reproject with "
            "GeoDataFrame.to_crs instead)",
            source=name,
        )
    return gdf


# --------------------------------------------------------------------------- columns


def _resolve_columns(
    gdf: pd.DataFrame,
    columns: Mapping[str, str | None] | None,
    id_column: str | None,
    name: str,
) -> dict[str, str | None]:
    """Schema column -> source column (or None) from aliases and explicit choices."""
    explicit = dict(columns or {})
    if id_column is not None:
        if explicit.get("building_id", id_column) != id_column:
            raise SchemaError(
                f"id_column={id_column!r} contradicts columns['building_id']="
                f"{explicit['building_id']!r}",
                source=name,
            )
        explicit["building_id"] = id_column
    present = [c for c in gdf.columns if c != gdf.geometry.name]
    for key, col in explicit.items():
        if key not in COLUMN_ALIASES:
            raise SchemaError(
                f"columns= has unknown schema name {key!r}; known names: "
                f"{', '.join(COLUMN_ALIASES)}",
                source=name,
            )
        if col is not None and col not in present:
            raise SchemaError(
                f"column {col!r} (given for {key!r}) does not exist; available columns: "
                f"{', '.join(map(str, present)) or '(none)'}",
                source=name,
                where=f"columns['{key}']",
            )
    mapping: dict[str, str | None] = {}
    lower: dict[str, str] = {}
    for c in present:  # first column of each lower-case spelling
        lower.setdefault(str(c).lower(), c)
    for key, aliases in COLUMN_ALIASES.items():
        if key in explicit:
            mapping[key] = explicit[key]
            continue
        found = next((a for a in aliases if a in present), None)
        if found is None and key in _CASELESS:
            found = next((lower[a.lower()] for a in aliases if a.lower() in lower), None)
        mapping[key] = found
    return mapping


def _osm_source(source: Any, gdf: pd.DataFrame, osm: bool | None) -> tuple[bool, str]:
    """Whether to read the source as OpenStreetMap data, and why."""
    if osm is not None:
        return bool(osm), "osm=" + str(bool(osm))
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".pbf":
        return True, "OSM extract (.pbf)"
    cols = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    found = [c for c in _OSM_ID_COLUMNS if c in cols]
    if found:
        return True, f"column '{found[0]}'"
    tags = [c for c in cols if ":" in c and not c.startswith(":") and not c.endswith(":")]
    if tags:
        return True, f"OSM tag column '{tags[0]}'"
    if "building" in cols:
        return True, "column 'building'"
    keys = [k for k in _OSM_EXPORT_KEYS if k in cols]
    if len(keys) >= 2 and any(c in cols for c in ("levels", "building_levels")):
        return True, f"OSM building export layout (columns {', '.join(keys)})"
    return False, "no OSM columns"


def _landuse_rows(gdf: pd.DataFrame, mapping: Mapping[str, str | None], osm: bool) -> np.ndarray:
    """Rows of an OSM source that are landuse areas (a landuse tag, no building tag)."""
    n = len(gdf)
    if not osm or "landuse" not in gdf.columns or mapping.get("use") != "building":
        return np.zeros(n, dtype=bool)
    building = gdf["building"].astype("str").str.strip().str.lower()
    no_building = (building.isna() | building.isin(["", "no", "none", "nan"])).to_numpy()
    landuse = gdf["landuse"].astype("str").str.strip()
    has_landuse = (landuse.notna() & (landuse != "")).to_numpy()
    return no_building & has_landuse


def _landuse_source(
    source: Any, gdf: pd.DataFrame, layer: str | None, landuse_rows: np.ndarray
) -> dict[str, Any] | None:
    """Where the landuse of the same source can be read again, or None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    if path.suffix.lower() == ".pbf":
        return {"path": str(path), "layer": None}
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return {"path": str(path), "layer": None} if landuse_rows.any() else None
    try:
        import pyogrio

        layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    except Exception:  # pragma: no cover - the file was just read
        return None
    other = next((lyr for lyr in layers if lyr.lower() in _LANDUSE_LAYERS), None)
    if other is not None:
        return {"path": str(path), "layer": other}
    if landuse_rows.any():
        chosen = layer if layer is not None else (layers[0] if len(layers) == 1 else "buildings")
        return {"path": str(path), "layer": chosen}
    return None


def _building_attributes(
    gdf: gpd.GeoDataFrame,
    mapping: Mapping[str, str | None],
    name: str,
    on_bad: BadValues,
    report: dict[str, Any],
    *,
    osm: bool = False,
) -> pd.DataFrame:
    """Build the schema columns (one row per source row, same order)."""
    n = len(gdf)
    out = pd.DataFrame(index=gdf.index)
    out["building_id"] = _building_ids(gdf, mapping["building_id"], name)

    if mapping["name"] is not None:
        out["name"] = gdf[mapping["name"]].astype("str")
    else:
        out["name"] = pd.Series([None] * n, index=gdf.index, dtype="str")

    out["use"] = _normalise_use(gdf, mapping)

    numeric = {
        # schema column: (kind, integer, minimum, minimum allowed?)
        "levels": ("levels", False, 0.0, False),
        "households": ("households", True, 0.0, True),
        "units": ("units", True, 0.0, True),
    }
    for key, (kind, integer, minimum, inclusive) in numeric.items():
        col = mapping[key]
        dtype = "Int64" if integer else "Float64"
        if col is None:
            out[key] = _masked_array(np.full(n, np.nan), dtype)
            continue
        if key == "levels":
            values, bad, rules = parse_levels(gdf[col], osm=osm)
            report["levels_by_rule"] = {k: int(v.sum()) for k, v in rules.items() if v.any()}
            if report["levels_by_rule"]:
                logger.warning(
                    "%s: column '%s': levels read by rule: %s",
                    name,
                    col,
                    ", ".join(_rule_examples(gdf[col], rules)),
                )
        else:
            values, bad = parse_numbers(
                gdf[col], integer=integer, minimum=minimum, inclusive=inclusive
            )
        if bad.any():
            if on_bad == "raise":
                if key == "levels":
                    rule = "a number > 0, 'N+', 'A-B' or 'A;B'" + (
                        " or 0" if osm else " (0 only in OSM sources)"
                    )
                else:
                    rule = "a whole number ≥ 0" if integer else "a number > 0"
                raise SchemaError(
                    f"{int(bad.sum())} unreadable {kind} value(s), first rows (0-based): "
                    f"{_fmt_rows(gdf[col], bad)}; expected {rule} (pass "
                    "on_bad_levels='null' to read them as missing)",
                    source=name,
                    where=f"column '{col}'",
                )
            logger.warning(
                "%s: column '%s': %d unreadable %s value(s) read as missing, first rows "
                "(0-based): %s",
                name,
                col,
                int(bad.sum()),
                kind,
                _fmt_rows(gdf[col], bad),
            )
        report[f"bad_{key}_nulled"] = int(bad.sum())
        out[key] = _masked_array(values, dtype)

    col = mapping["height"]
    if col is None:
        out["height"] = _masked_array(np.full(n, np.nan), "Float64")
    else:
        values, bad = parse_numbers(
            gdf[col], integer=False, minimum=0.0, inclusive=False, metres=True
        )
        if bad.any():
            logger.warning(
                "%s: column '%s': %d unreadable height value(s) read as missing",
                name,
                col,
                int(bad.sum()),
            )
        report["bad_height_nulled"] = int(bad.sum())
        out["height"] = _masked_array(values, "Float64")
    return out


def _building_ids(gdf: pd.DataFrame, col: str | None, name: str) -> pd.Series:
    n = len(gdf)
    if col is None:
        width = max(6, len(str(n)))
        return pd.Series(
            np.char.add("B", np.char.zfill(np.arange(1, n + 1).astype(str), width)),
            index=gdf.index,
            dtype="str",
        )
    raw = gdf[col]
    if pd.api.types.is_float_dtype(raw.dtype):
        vals = raw.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(vals)
        if np.all(vals[finite] == np.round(vals[finite])):
            raw = raw.astype("Int64")
    ids = raw.astype("str").str.strip()
    missing = ids.isna() | (ids == "")
    if missing.any():
        raise SchemaError(
            f"{int(missing.sum())} building(s) have no id, first rows (0-based): "
            f"{', '.join(map(str, np.flatnonzero(missing.to_numpy())[:_MAX_LISTED]))}",
            source=name,
            where=f"column '{col}'",
        )
    if col in ("id", "osm_id"):
        type_col = next((c for c in _OSM_TYPE_COLUMNS if c in gdf.columns), None)
        if type_col is not None:
            ids = gdf[type_col].astype("str").str.strip() + "/" + ids
    if not ids.is_unique:
        dup = ids.duplicated(keep=False).to_numpy()
        values = ids.to_numpy()
        rows = np.flatnonzero(dup)
        firsts = pd.unique(values[rows])[:_MAX_LISTED]
        parts = []
        for v in firsts:  # at most _MAX_LISTED small lookups
            where = rows[values[rows] == v][:_MAX_LISTED]
            parts.append(f"{v!r} at rows {', '.join(map(str, where))}")
        n_dup = int(pd.Series(values[rows]).nunique())
        raise SchemaError(
            f"{n_dup} duplicate building id(s), first (0-based rows): {'; '.join(parts)}",
            source=name,
            where=f"column '{col}'",
        )
    return pd.Series(ids.array, index=gdf.index)


def parse_numbers(
    series: pd.Series,
    *,
    integer: bool,
    minimum: float,
    inclusive: bool,
    metres: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Parse numbers vectorised; return (float array, NaN where missing or bad; bad mask).

    Missing values (NA, empty or blank strings) are not bad. With `metres`, strings may
    carry a unit (``"12 m"``, ``"12米"``). Any other text is bad, as are values below the
    minimum, non-finite values and, when `integer`, fractions. Text columns are parsed
    once per distinct value (survey columns hold few), then spread back to the rows.
    Shared with :mod:`gridmap.households`.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("str")
    if pd.api.types.is_numeric_dtype(series.dtype):
        num = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(num)
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        text = pd.Series(uniques, dtype="str").str.strip()
        if metres:
            text = text.str.replace(r"\s*(?:m|米|metres?|meters?)$", "", regex=True)
        u_missing = (text.isna() | (text == "")).to_numpy()
        u_num = pd.to_numeric(text.where(~u_missing), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        num = np.append(u_num, np.nan)[codes]  # code -1 (NA) takes the appended NaN
        missing = np.append(u_missing, True)[codes]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(num) & ((num >= minimum) if inclusive else (num > minimum))
        if integer:
            ok &= num == np.round(num)
    bad = ~missing & ~ok
    num = num.copy()
    num[bad | missing] = np.nan
    return num, bad


_NUM = r"(\d+(?:\.\d+)?)"
_AT_LEAST = re.compile(rf"^{_NUM}\s*\+$")
_RANGE = re.compile(rf"^{_NUM}\s*(?:-|–|~|to)\s*{_NUM}$", re.IGNORECASE)
_LIST = re.compile(rf"^{_NUM}(?:\s*;\s*{_NUM})+$")
#: Levels rules (report keys of ``levels_by_rule``), see "Levels" in the module docstring.
LEVELS_RULES = ("at_least", "range", "list", "zero")


def parse_levels(
    series: pd.Series, *, osm: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Parse a levels column by the documented rules (module docstring, "Levels").

    Parameters
    ----------
    series : pandas.Series
        Raw levels values (numbers or text).
    osm : bool
        OpenStreetMap source: ``0`` reads as 0 storeys instead of being bad.

    Returns
    -------
    values : numpy.ndarray
        Levels (NaN where missing or bad).
    bad : numpy.ndarray
        Boolean mask of unreadable values.
    rules : dict of str to numpy.ndarray
        Boolean mask of the values read by each rule of :data:`LEVELS_RULES`.
    """
    n = len(series)
    rules = {k: np.zeros(n, dtype=bool) for k in LEVELS_RULES}
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("str")
    if pd.api.types.is_numeric_dtype(series.dtype):
        num = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(num)
        bad = np.zeros(n, dtype=bool)
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        text = [str(u).strip() for u in uniques]  # one entry per distinct value
        u_num = np.full(len(text) + 1, np.nan)
        u_missing = np.zeros(len(text) + 1, dtype=bool)
        u_missing[-1] = True  # code -1 (NA)
        u_rule = np.full(len(text) + 1, -1, dtype=np.int8)
        for i, t in enumerate(text):
            u_num[i], u_rule[i], u_missing[i] = _level_value(t)
        num = u_num[codes]
        missing = u_missing[codes]
        rule = u_rule[codes]
        for k, name in enumerate(LEVELS_RULES[:3]):
            rules[name] = rule == k
        bad = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        zero = ~missing & (num == 0)
        ok = np.isfinite(num) & ((num > 0) | (zero & osm))
    rules["zero"] = zero & osm
    bad = ~missing & ~ok
    for name in LEVELS_RULES[:3]:
        rules[name] &= ~bad
    num = num.copy()
    num[bad | missing] = np.nan
    return num, bad, rules


def _level_value(text: str) -> tuple[float, int, bool]:
    """(value, rule index or -1, missing) of one distinct levels text."""
    if text == "" or text.lower() in ("nan", "none", "<na>"):
        return np.nan, -1, True
    try:
        return float(text), -1, False
    except ValueError:
        pass
    m = _AT_LEAST.match(text)
    if m:
        return float(m.group(1)), 0, False
    m = _RANGE.match(text)
    if m:
        return _half_up((float(m.group(1)) + float(m.group(2))) / 2), 1, False
    if _LIST.match(text):
        parts = [float(p) for p in text.split(";")]
        return _half_up(sum(parts) / len(parts)), 2, False
    return np.nan, -1, False  # unreadable: NaN and not missing -> bad


def _half_up(x: float) -> float:
    return float(math.floor(x + 0.5))


def _rule_examples(series: pd.Series, rules: Mapping[str, np.ndarray]) -> list[str]:
    """One short text per levels rule used: count and first value."""
    what = {
        "at_least": "'N+' as N",
        "range": "'A-B' as the rounded mean",
        "list": "'A;B' as the rounded mean",
        "zero": "'0' as no storey above ground",
    }
    out = []
    for name, mask in rules.items():
        if mask.any():
            first = series.iloc[int(np.flatnonzero(mask)[0])]
            out.append(f"{int(mask.sum())} {what[name]} (e.g. {first!r})")
    return out


def _masked_array(values: np.ndarray, dtype: str) -> pd.api.extensions.ExtensionArray:
    """Float64 / Int64 array from floats with NaN for missing (no per-element checks)."""
    mask = np.isnan(values)
    if dtype == "Int64":
        return pd.arrays.IntegerArray(np.where(mask, 0, values).astype(np.int64), mask)
    return pd.arrays.FloatingArray(values.astype(np.float64), mask)


def _normalise_use(gdf: pd.DataFrame, mapping: Mapping[str, str | None]) -> pd.Series:
    """Use codes from the use column, then OSM hints where the use is unknown."""
    unknown = USES.index("unknown")
    use_col = mapping.get("use")
    if use_col is None:
        use = np.full(len(gdf), unknown, dtype=np.int8)
    else:
        use = use_index(gdf[use_col], osm=use_col in _OSM_TAG_COLUMNS)
    skip = {USES.index("other"), unknown}
    for key, table in HINT_USES.items():
        col = mapping.get(key)
        if col is None or col == use_col:
            continue
        todo = use == unknown
        if not todo.any():
            break
        if key == "amenity":
            hint = use_index(gdf[col], osm=True, missing=-1)
        else:
            hint = _hint_index(gdf[col], table)
        take = todo & (hint >= 0) & ~np.isin(hint, sorted(skip))
        use[take] = hint[take]
    return pd.Series(labels(use, USES), index=gdf.index)


def _hint_index(series: pd.Series, table: Mapping[str, str]) -> np.ndarray:
    """Use index of each value of an OSM hint column through `table` (-1: no hint)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(uniques, dtype="str").str.strip().str.lower().tolist()
    default = table.get("*")
    values = []
    for t in text:  # one lookup per distinct value
        use = None if (t in ("", "no") or not isinstance(t, str)) else table.get(t, default)
        values.append(USES.index(use) if use is not None else -1)
    return np.array([*values, -1], dtype=np.int8)[codes]


def use_index(series: pd.Series, *, osm: bool, missing: int | None = None) -> np.ndarray:
    """Index into :data:`USES` of each raw use value, through :data:`USE_ALIASES`.

    Values are stripped and lower-cased; unknown values give ``other``, missing or empty
    ones `missing` (default: ``unknown``). Each distinct value is looked up once.
    Shared with :mod:`gridmap.households`.
    """
    if missing is None:
        missing = USES.index("unknown")
    identity = {u: u for u in USES}
    lookup = {**identity, **USE_ALIASES} if osm else {**USE_ALIASES, **identity}
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(uniques, dtype="str").str.strip().str.lower().tolist()
    table = [
        USES.index(lookup.get(u, "other")) if isinstance(u, str) and u != "" else missing
        for u in text
    ]
    return np.array([*table, missing], dtype=np.int8)[codes]


def labels(codes: np.ndarray, names: Sequence[str]) -> pd.api.extensions.ExtensionArray:
    """A pandas ``str`` array of ``names[codes]``, built without per-row Python objects.

    Shared with :mod:`gridmap.households`.
    """
    try:
        import pyarrow as pa

        dictionary = pa.DictionaryArray.from_arrays(
            pa.array(codes), pa.array(list(names), type=pa.large_string())
        )
        return pd.array(
            dictionary.cast(pa.large_string()), dtype=pd.StringDtype("pyarrow", na_value=np.nan)
        )
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return pd.array(np.asarray(names, dtype=object)[codes], dtype="str")


# --------------------------------------------------------------------------- geometry


def _clean_polygons(
    geoms: Any, name: str, report: dict[str, Any], *, require: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Repair polygon geometries; return (geometries, keep mask), vectorised.

    Invalid geometries go through ``make_valid``; collections are reduced to their
    polygonal parts (merged into a MultiPolygon when there are several); rows that end
    up missing, empty, zero-area or without polygons are marked to drop.
    """
    geoms = np.asarray(geoms, dtype=object)
    type_id = shapely.get_type_id(geoms)
    present = type_id >= 0
    polygonal = np.isin(type_id, _POLYGONAL_TYPES)
    if require and not polygonal.any():
        raise GeometryError(f"no polygon geometries; found {_found_types(geoms)}", source=name)
    out = geoms.copy()
    invalid = polygonal & ~shapely.is_valid(geoms)
    if invalid.any():
        out[invalid] = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
    new_type = shapely.get_type_id(out)
    reduce = polygonal & ~np.isin(new_type, (3, 6))
    if reduce.any():
        out[reduce] = _polygonal_parts(out[reduce])
    area = np.zeros(len(out))
    area[polygonal] = shapely.area(out[polygonal])
    usable = polygonal & (area > 0) & ~shapely.is_empty(out)

    report["missing_geometry"] = int((~present).sum())
    report["non_polygon_dropped"] = int((present & ~polygonal).sum())
    report["repaired"] = int(invalid.sum())
    report["collections_reduced"] = int((reduce & (type_id == 7)).sum())
    report["empty_or_zero_area_dropped"] = int((polygonal & ~usable).sum())
    return out, usable


def _polygonal_parts(geoms: np.ndarray) -> np.ndarray:
    """Polygon / MultiPolygon of the polygonal parts of each geometry (None if none)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    # collections may nest multi-geometries: explode until only simple parts remain
    while True:
        nested = shapely.get_num_geometries(parts) > 1
        nested |= np.isin(shapely.get_type_id(parts), (4, 5, 6, 7))
        if not nested.any():
            break
        sub, sub_idx = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        idx = np.concatenate([idx[~nested], idx[nested][sub_idx]])
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, idx = parts[keep], idx[keep]
    order = np.argsort(idx, kind="stable")
    parts, idx = parts[order], idx[order]
    out = np.full(len(geoms), None, dtype=object)
    if len(parts) == 0:
        return out
    counts = np.bincount(idx, minlength=len(geoms))
    single = counts[idx] == 1
    out[idx[single]] = parts[single]
    multi = ~single
    if multi.any():
        groups, inverse = np.unique(idx[multi], return_inverse=True)
        out[groups] = shapely.multipolygons(parts[multi], indices=inverse)
    return out


def _drop_large(
    geoms: np.ndarray, keep: np.ndarray, crs: Any, max_m2: float, name: str, report: dict
) -> np.ndarray:
    """Mask of footprints not larger than `max_m2` (measured in a metric CRS)."""
    ok = np.ones(len(geoms), dtype=bool)
    idx = np.flatnonzero(keep)
    metric = to_metric(gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms[idx], crs=crs)), source=name)
    large = shapely.area(metric.geometry.values) > max_m2
    ok[idx[large]] = False
    report["too_large_dropped"] = int(large.sum())
    report["max_footprint_m2"] = float(max_m2)
    return ok


def _geom_type_ids(geom_types: str | Iterable[str]) -> set[int]:
    names = [geom_types] if isinstance(geom_types, str) else list(geom_types)
    by_name = {
        "point": 0,
        "linestring": 1,
        "linearring": 2,
        "polygon": 3,
        "multipoint": 4,
        "multilinestring": 5,
        "multipolygon": 6,
    }
    ids: set[int] = set()
    for t in names:
        key = str(t).lower()
        if key in ("polygon", "line", "point"):
            ids.update(_GEOM_FAMILIES[key])
        elif key in by_name:
            ids.add(by_name[key])
        else:
            raise ValueError(f"unknown geometry type {t!r}")
    return ids


def _fmt_types(geom_types: str | Iterable[str]) -> str:
    return geom_types if isinstance(geom_types, str) else "/".join(map(str, geom_types))


def _found_types(geoms: np.ndarray) -> str:
    types = pd.Series(shapely.get_type_id(geoms)).map(
        {
            -1: "missing",
            0: "Point",
            1: "LineString",
            2: "LinearRing",
            3: "Polygon",
            4: "MultiPoint",
            5: "MultiLineString",
            6: "MultiPolygon",
            7: "GeometryCollection",
        }
    )
    counts = types.value_counts()
    return ", ".join(f"{t} ({c})" for t, c in counts.items())


def _fmt_rows(values: pd.Series, bad: np.ndarray) -> str:
    rows = np.flatnonzero(bad)[:_MAX_LISTED]
    raw = values.iloc[rows].tolist()
    return ", ".join(f"{r}={v!r}" for r, v in zip(rows, raw, strict=True))


def _log_report(report: Mapping[str, Any]) -> None:
    dropped = {
        k: v for k, v in report.items() if k.endswith(("_dropped", "_nulled", "_geometry")) and v
    }
    logger.info(
        "%s: read %d features, kept %d",
        report["source"],
        report["features_read"],
        report["features_kept"],
    )
    if dropped or report.get("repaired"):
        logger.warning(
            "%s: repaired %d geometries; %s",
            report["source"],
            report.get("repaired", 0),
            ", ".join(f"{k}={v}" for k, v in dropped.items()) or "nothing dropped",
        )
