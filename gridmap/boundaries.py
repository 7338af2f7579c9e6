"""Administrative boundaries from OpenStreetMap: the streets and communities above grids.

:func:`read_boundaries` reads the ``boundary=administrative`` relations (and named closed
ways) of an OSM ``.pbf`` extract and returns them as the two layers of the partition's
hierarchy, ``streets`` (街道/乡镇) and ``communities`` (社区/村).
:func:`admin_communities` turns them into the community layer of
:func:`gridmap.plan_grids` (filling what they leave uncovered), and
:func:`admin_hierarchy` does both for an extract and its buildings, as
``gridmap partition`` does by default for a ``.pbf`` source without ``--communities``.

Mapping rule
------------
OSM China tags the levels below the county (区/县, ``admin_level=6``) as:

===============  ==========================================  ====================
``admin_level``  OSM China                                   gridmap layer
===============  ==========================================  ====================
8                乡、镇、街道 (township, town, street office)   ``streets``
9, 10            村、社区 (village, community)                 ``communities``
===============  ==========================================  ====================

Of the levels asked for (`levels`, default 8, 9 and 10), the ones present in the extract
decide the layers:

* two or more present: the coarsest is ``streets``, the others are ``communities``;
  where a coarser community level overlaps a finer one, the finer polygon wins and
  the coarser keeps only its remainder (parts under 1 ha are dropped);
* one present: it is ``communities`` and ``streets`` is empty, so
  :func:`gridmap.plan_grids` derives streets by grouping neighbouring communities;
* none present: both layers are empty.

Each community belongs to the street that contains it, else the one sharing most of its
area, else the nearest one; ``street_id`` names it and is the ``street_column`` to give
:func:`gridmap.plan_grids`.

Names and codes
---------------
``name`` is the ``name`` tag (else ``name:zh``, else ``relation <id>``); the ``name``,
``name:zh`` and ``ref`` tags are kept as ``name``, ``name_zh`` and ``ref``. The first of
:data:`CODE_TAGS` present is read as the official division code (GB/T 2260 + the
statistical township/village code, 统计用区划代码). It becomes a code only when it is
valid: 9 digits (or 12 digits ending in ``000``) for a street, 12 digits not ending in
``000`` for a community. Then ``street_code`` (digits 7–9), ``code`` (the community's
12 digits) and ``district_code`` (digits 1–6) are filled; any other value is ignored
with a warning.
When some codes are missing, :func:`gridmap.plan_grids` numbers the communities in
reading order (see :mod:`gridmap.partition.codes`).

Geometry
--------
A relation's rings close when every end of a member way meets an even number of way
ends (the check libosmium makes). A relation whose rings do not close (a way missing
from the extract, a gap in the data) is left out, with a warning naming its relation id
and an open end. Member ways of every role are noded and polygonized (a ring that is one
closed way is its own face); the area is the even–odd union of the faces, so inner
rings and enclaves are holes whatever their role, and spikes fall away. Invalid polygons are repaired with
:func:`shapely.make_valid` and reduced to their polygonal parts. Both layers are
projected to the metric CRS of the data (:func:`gridmap.crs.metric_crs`, the local UTM
zone) unless `crs` is given.

The extract is read with pyosmium, which gives the relation members and the untagged
ways that form their rings (pyrosm's ``get_boundaries`` drops a relation whose ring does
not close without saying which one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .crs import WGS84, metric_crs, to_metric
from .errors import InputError, SchemaError
from .partition.geometry import PRECISION, polygonal, polygonal_parts

log = logging.getLogger("gridmap")

__all__ = [
    "ADMIN_LEVELS",
    "CODE_TAGS",
    "JOIN_HOUSEHOLDS",
    "MIN_COVERAGE",
    "admin_communities",
    "admin_hierarchy",
    "read_boundaries",
]

#: OSM ``admin_level`` values read by default: 8 streets, 9 and 10 communities.
ADMIN_LEVELS = (8, 9, 10)
#: Tags read, in this order, for the official division code of a boundary.
CODE_TAGS = (
    "ref:admin:CN:nbs",
    "ref:admin:CN",
    "ref:admin:CN:mca",
    "ref:cadc:2020",
    "admin_code",
    "ref",
)
#: Share of the households the boundaries must hold for :func:`admin_hierarchy` to
#: use them (below it the partition derives its own communities).
MIN_COVERAGE = 0.9
#: A street remainder or outside area holding fewer households joins a neighbour.
JOIN_HOUSEHOLDS = 300

_MIN_PART_M2 = 10_000.0  # 1 ha: smaller remainders are slivers between mapped polygons
_OUTSIDE_BUFFER = 50.0  # m around buildings outside every boundary
_TOUCH = 0.05  # m: polygons this close share a border
_STREET_COLUMNS = [
    "osm_id", "osm_type", "admin_level", "name", "name_zh", "ref", "code",
    "street_code", "district_code",
]  # fmt: skip
_COMMUNITY_COLUMNS = [
    "osm_id", "osm_type", "admin_level", "name", "name_zh", "ref", "code",
    "street_code", "district_code", "street_id", "street_name", "source",
]  # fmt: skip


# ====================================================================== public API
def read_boundaries(
    path: str | Path,
    *,
    levels: Iterable[int] | None = None,
    bbox: Sequence[float] | None = None,
    crs: Any = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Read administrative boundaries from an OSM extract as streets and communities.

    Parameters
    ----------
    path : str or pathlib.Path
        OSM extract (``.osm.pbf``; any format pyosmium reads).
    levels : iterable of int, optional
        ``admin_level`` values to read (default :data:`ADMIN_LEVELS`, 8, 9 and 10).
        The coarsest present becomes the streets, the others the communities (see the
        module docstring).
    bbox : sequence of float, optional
        ``(minx, miny, maxx, maxy)`` in lon/lat: keep only boundaries intersecting it.
    crs : optional
        Target CRS (default: the metric CRS of the boundaries, their UTM zone).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``"streets"``: ``osm_id``, ``osm_type``, ``admin_level``, ``name``, ``name_zh``,
        ``ref``, ``code`` (9 digits), ``street_code``, ``district_code``, geometry.
        ``"communities"``: the same (``code`` of 12 digits) plus ``street_id`` (the
        ``osm_id`` of its street), ``street_name`` and ``source`` (``"osm"``).
        Layers are empty (with these columns) when the extract has no such boundary.
        ``attrs["boundaries_report"]`` of each layer lists the levels found, the
        relations left out (``open_rings``) and the codes ignored.

    Raises
    ------
    InputError
        The file is missing or cannot be read as OSM data.
    SchemaError
        `levels` is not a list of integers.
    """
    wanted = _check_levels(levels)
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=str(path))
    records, open_rings = _read_osm(path, wanted)
    report: dict[str, Any] = {
        "source": str(path),
        "levels_asked": list(wanted),
        "open_rings": open_rings,
        "ignored_codes": [],
    }
    for rid, name, end in open_rings:
        log.warning(
            "%s: relation %d (%s) left out: its ring does not close (open end near "
            "lon %.6f, lat %.6f)",
            path.name, rid, name, end[0], end[1],
        )  # fmt: skip
    frame = pd.DataFrame(records, columns=["osm_id", "osm_type", "admin_level", "tags", "geometry"])
    gdf = gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)
    if bbox is not None and len(gdf):
        box = shapely.box(*[float(v) for v in bbox])
        gdf = gdf[shapely.intersects(gdf.geometry.values, box)]
    gdf = gdf[~shapely.is_empty(gdf.geometry.values)].reset_index(drop=True)
    present = sorted(set(gdf["admin_level"].astype(int).tolist()))
    report["levels_found"] = present
    if not present:
        log.info("%s: no administrative boundary at admin_level %s", path.name, list(wanted))
        streets = _empty(_STREET_COLUMNS, crs)
        comms = _empty(_COMMUNITY_COLUMNS, crs)
    else:
        target = crs if crs is not None else metric_crs(gdf, str(path))
        gdf = to_metric(gdf, target, str(path))
        street_level = present[0] if len(present) > 1 else None
        report["street_level"] = street_level
        report["community_levels"] = [lv for lv in present if lv != street_level]
        gdf = _attributes(gdf)
        is_street = (gdf["admin_level"] == street_level).to_numpy()
        streets = _with_codes(gdf[is_street], "street", report)
        comms = _finer_wins(gdf[~is_street])
        comms = _with_codes(comms, "community", report)
        comms = _street_membership(comms, streets)
        comms["source"] = "osm"
        streets = streets[_STREET_COLUMNS + ["geometry"]].reset_index(drop=True)
        comms = comms[_COMMUNITY_COLUMNS + ["geometry"]].reset_index(drop=True)
        log.info(
            "%s: %d streets (admin_level %s), %d communities (admin_level %s)",
            path.name, len(streets), street_level, len(comms),
            ", ".join(map(str, report["community_levels"])),
        )  # fmt: skip
    for layer in (streets, comms):
        layer.attrs["boundaries_report"] = report
    return {"streets": streets, "communities": comms}


def admin_communities(
    boundaries: dict[str, gpd.GeoDataFrame],
    buildings: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """The community layer of :func:`gridmap.plan_grids` from :func:`read_boundaries`.

    The mapped communities are completed so that every building has one:

    * the part of a street that no community covers becomes a community named
      ``"<street>（其余）"`` (the whole street, under its own name, when none of its
      communities is mapped);
    * buildings that touch no boundary get areas of their own: their footprints
      buffered by 50 m, merged, minus the mapped areas, one per connected part holding a
      building, named ``"边界外区域 <n>"``;
    * such a filler that is small (under 1 ha or under :data:`JOIN_HOUSEHOLDS`
      households) joins the community it shares most border with; one without a
      neighbour stays when it holds a building and is dropped otherwise.

    Parameters
    ----------
    boundaries : dict of str to geopandas.GeoDataFrame
        ``streets`` and ``communities`` as :func:`read_boundaries` returns them.
    buildings : geopandas.GeoDataFrame, optional
        Footprints (with ``households`` when estimated); without them only street
        remainders are added.

    Returns
    -------
    geopandas.GeoDataFrame
        The columns of :func:`read_boundaries` communities; ``source`` is ``"osm"``,
        ``"street_remainder"`` or ``"outside"``. Give ``street_column="street_id"`` to
        :func:`gridmap.plan_grids` when ``streets`` is not empty.
        ``attrs["coverage"]`` is the share of the buildings' households (buildings when
        there is no ``households`` column) whose footprints touch a mapped boundary.
    """
    comms = boundaries["communities"]
    streets = boundaries["streets"]
    if len(comms) == 0 and len(streets) == 0:
        raise InputError("there are no administrative boundaries to use", source="boundaries")
    crs = comms.crs if len(comms) else streets.crs
    feet = hh = None
    if buildings is not None and len(buildings):
        b = to_metric(buildings, crs, "buildings")
        feet = np.array(b.geometry.values, dtype=object)
        bad = ~shapely.is_valid(feet)
        feet[bad] = shapely.make_valid(feet[bad])
        hh = (
            pd.to_numeric(b["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
            if "households" in b.columns
            else np.ones(len(b))
        )
    pieces = [comms]
    if len(streets):
        pieces.append(_street_remainders(comms, streets))
    out = gpd.GeoDataFrame(
        pd.concat([p for p in pieces if len(p)], ignore_index=True), geometry="geometry", crs=crs
    )
    coverage = 1.0
    if feet is not None:
        # a footprint touching a community is planned in it (by largest share)
        held = _any_match(feet, np.asarray(out.geometry.values), "intersects")
        total = hh.sum()
        coverage = float(hh[held].sum() / total) if total > 0 else float(held.mean())
        if not held.all():
            outside = _outside(feet[~held], np.asarray(out.geometry.values), streets, crs)
            out = gpd.GeoDataFrame(
                pd.concat([out, outside], ignore_index=True), geometry="geometry", crs=crs
            )
    out = _absorb_small(out, feet, hh)
    out.attrs["coverage"] = coverage
    out.attrs["boundaries_report"] = comms.attrs.get("boundaries_report", {})
    return out


def admin_hierarchy(
    path: str | Path,
    buildings: gpd.GeoDataFrame,
    *,
    levels: Iterable[int] | None = None,
    bbox: Sequence[float] | None = None,
    min_coverage: float = MIN_COVERAGE,
) -> tuple[gpd.GeoDataFrame | None, str]:
    """The community layer for `buildings` from the boundaries of an OSM extract.

    Parameters
    ----------
    path : str or pathlib.Path
        OSM extract (``.pbf``).
    buildings : geopandas.GeoDataFrame
        The footprints to plan (with ``households`` when estimated).
    levels : iterable of int, optional
        ``admin_level`` values (default :data:`ADMIN_LEVELS`).
    bbox : sequence of float, optional
        Lon/lat box, as for :func:`read_boundaries`.
    min_coverage : float
        The boundaries are used only when they hold at least this share of the
        households (default :data:`MIN_COVERAGE`).

    Returns
    -------
    communities : geopandas.GeoDataFrame or None
        From :func:`admin_communities`, or None when the extract has no boundary at
        those levels or they hold too few households. ``attrs["street_column"]`` is the
        ``street_column`` for :func:`gridmap.plan_grids` (None without streets) and
        ``attrs["district_code"]`` the 6-digit district code when all the division
        codes found share one (else None).
    note : str
        Where the hierarchy comes from, in plain words (for the plan's notes).
    """
    bnd = read_boundaries(path, levels=levels, bbox=bbox)
    report = bnd["communities"].attrs["boundaries_report"]
    name = Path(path).name
    asked = ", ".join(map(str, report["levels_asked"]))
    if not report["levels_found"]:
        note = (
            f"{name} holds no boundary=administrative relation at admin_level {asked}: "
            "communities and streets were derived."
        )
        log.info(note)
        return None, note
    comms = admin_communities(bnd, buildings)
    cov = comms.attrs["coverage"]
    if cov < min_coverage:
        note = (
            f"The administrative boundaries in {name} hold only {cov:.1%} of the "
            f"households (at least {min_coverage:.0%} needed): communities and streets "
            "were derived instead."
        )
        log.warning(note)
        return None, note
    district = comms["district_code"].dropna().unique()
    comms.attrs["district_code"] = str(district[0]) if len(district) == 1 else None
    comms.attrs["street_column"] = "street_id" if comms["street_id"].notna().any() else None
    src = comms["source"].value_counts()
    sl = report.get("street_level")
    streets = (
        f"{len(bnd['streets'])} streets (admin_level {sl})"
        if sl is not None
        else "streets derived by grouping them"
    )
    extra = []
    if src.get("street_remainder", 0):
        extra.append(f"{src['street_remainder']} street remainders")
    if src.get("outside", 0):
        extra.append(f"{src['outside']} areas outside every boundary")
    note = (
        f"Communities from the OSM administrative boundaries in {name}: "
        f"{src.get('osm', 0)} communities (admin_level "
        f"{', '.join(map(str, report['community_levels']))}), {streets}"
        + (f"; added {' and '.join(extra)}" if extra else "")
        + f"; they hold {cov:.1%} of the households"
        + (
            f"; relations left out because their rings do not close: "
            f"{', '.join(str(r[0]) for r in report['open_rings'])}"
            if report["open_rings"]
            else ""
        )
        + (
            f"; district code {comms.attrs['district_code']} from their division codes"
            if comms.attrs["district_code"]
            else ""
        )
        + "."
    )
    log.info(note)
    return comms, note


# ====================================================================== reading
def _check_levels(levels: Iterable[int] | None) -> tuple[int, ...]:
    if levels is None:
        return ADMIN_LEVELS
    try:
        out = tuple(sorted({int(v) for v in levels}))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"levels must be integers (admin_level), got {levels!r}") from exc
    if not out or not all(1 <= v <= 12 for v in out):
        raise SchemaError(f"levels must be admin_level values between 1 and 12, got {levels!r}")
    return out


def _level(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _read_osm(path: Path, levels: tuple[int, ...]) -> tuple[list[tuple], list[tuple]]:
    """Boundary areas at `levels`: ``(osm_id, osm_type, level, tags, lon/lat polygon)``
    records, and ``(relation id, name, open end)`` for relations that do not close."""
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError(
            "reading boundaries needs pyosmium (pip install osmium)", source=str(path)
        ) from exc
    relations: list[tuple[int, int, dict, list[int]]] = []
    closed_ways: list[tuple[int, int, dict]] = []
    try:
        fp = osmium.FileProcessor(str(path), osmium.osm.WAY | osmium.osm.RELATION)
        for obj in fp.with_filter(osmium.filter.TagFilter(("boundary", "administrative"))):
            tags = dict(obj.tags)
            level = _level(tags.get("admin_level"))
            if level not in levels:
                continue
            if isinstance(obj, osmium.osm.Relation):
                ways = [m.ref for m in obj.members if m.type == "w"]
                relations.append((obj.id, level, tags, ways))
            elif obj.is_closed() and len(obj.nodes) >= 4 and "name" in tags:
                closed_ways.append((obj.id, level, tags))
        members = {w for r in relations for w in r[3]}
        closed_ways = [w for w in closed_ways if w[0] not in members]
        wanted = members | {w[0] for w in closed_ways}
        lines: dict[int, shapely.LineString] = {}
        if wanted:
            fp = (
                osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                .with_locations()
                .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                .with_filter(osmium.filter.IdFilter(wanted))
            )
            wkb = osmium.geom.WKBFactory()
            for w in fp:
                try:
                    lines[w.id] = shapely.from_wkb(wkb.create_linestring(w))
                except (osmium.InvalidLocationError, RuntimeError):
                    # nodes outside the extract (or a way of one location): what is left
                    xy = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
                    if len(xy) >= 2:
                        lines[w.id] = shapely.LineString(xy)
    except RuntimeError as exc:
        raise InputError(f"cannot read the OSM extract: {exc}", source=str(path)) from exc
    records: list[tuple] = []
    open_rings: list[tuple] = []
    for rid, level, tags, ways in relations:
        area, end = _assemble([lines[w] for w in ways if w in lines])
        if end is not None:
            open_rings.append((rid, tags.get("name", tags.get("name:zh", "")), end))
        elif area is not None:
            records.append((rid, "relation", level, tags, area))
    for wid, level, tags in closed_ways:
        line = lines.get(wid)
        if line is not None and line.is_closed and len(line.coords) >= 4:
            area = polygonal(shapely.make_valid(shapely.Polygon(line.coords)))
            records.append((wid, "way", level, tags, area))
    return records, open_rings


def _assemble(lines: list[shapely.LineString]) -> tuple[shapely.Geometry | None, Any]:
    """The area of a relation's member lines (even–odd union of the polygonized faces)
    and ``None``, or ``None`` and an open end ``(lon, lat)`` when a ring does not close.

    A ring closes when every end of a member way meets an even number of way ends (as
    libosmium checks it); spikes and self-touching rings are left to the polygonizer."""
    if not lines:
        return None, None
    geoms = np.array(lines, dtype=object)
    ends = np.concatenate(
        [shapely.get_coordinates(shapely.get_point(geoms, 0)),
         shapely.get_coordinates(shapely.get_point(geoms, -1))]
    )  # fmt: skip
    xy, count = np.unique(ends, axis=0, return_counts=True)
    odd = count % 2 == 1
    if odd.any():
        return None, (float(xy[odd][0, 0]), float(xy[odd][0, 1]))
    faces = None
    if all(g.is_closed and g.is_simple and len(g.coords) >= 4 for g in geoms):
        # the common case, each ring one closed way: its polygon is the face
        faces = shapely.polygons(shapely.linearrings(
            shapely.get_coordinates(geoms),
            indices=np.repeat(np.arange(len(geoms)), shapely.get_num_coordinates(geoms)),
        ))  # fmt: skip
        if not shapely.is_valid(faces).all():
            faces = None
    if faces is None:
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(geoms))))
    if not len(faces):
        return None, None
    shells = shapely.polygons(shapely.get_exterior_ring(faces))
    area = shells[0]
    for shell in shells[1:]:
        area = shapely.symmetric_difference(area, shell)
    area = polygonal(shapely.make_valid(area))
    return (None if area.is_empty else area), None


# ====================================================================== the two layers
def _empty(columns: list[str], crs: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {c: pd.Series(dtype=object) for c in columns},
        geometry=gpd.GeoSeries([], crs=crs if crs is not None else WGS84),
    )


def _attributes(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Name, name:zh and ref columns from the tags; geometry repaired (polygonal)."""
    tags = gdf["tags"]
    out = gdf.drop(columns="tags").copy()
    out["name_zh"] = [t.get("name:zh") for t in tags]
    out["ref"] = [t.get("ref") for t in tags]
    out["name"] = [
        t.get("name") or t.get("name:zh") or f"{k} {i}"
        for t, k, i in zip(tags, out["osm_type"], out["osm_id"], strict=True)
    ]
    out["_tags"] = list(tags)
    geoms = np.array(out.geometry.values, dtype=object)
    bad = ~shapely.is_valid(geoms)
    geoms[bad] = shapely.make_valid(geoms[bad])
    out = out.set_geometry([polygonal(g) for g in geoms], crs=gdf.crs)
    return out[~shapely.is_empty(out.geometry.values)]


def _with_codes(gdf: gpd.GeoDataFrame, kind: str, report: dict) -> gpd.GeoDataFrame:
    """``code``, ``street_code`` and ``district_code`` from the first code tag present."""
    gdf = gdf.copy()
    n_digits = 9 if kind == "street" else 12
    code: list[str | None] = []
    for tags, oid, name in zip(gdf["_tags"], gdf["osm_id"], gdf["name"], strict=True):
        tag = next((t for t in CODE_TAGS if tags.get(t)), None)
        value = str(tags[tag]).strip() if tag else None
        digits = value
        if kind == "street" and value and len(value) == 12 and value.endswith("000"):
            digits = value[:9]
        if value is None:
            code.append(None)
        elif digits.isdigit() and len(digits) == n_digits and not digits.endswith("000"):
            code.append(digits)
        else:
            code.append(None)
            report["ignored_codes"].append((int(oid), tag, value))
            log.warning(
                "boundary %d (%s): %s=%r is not a %d-digit %s code; ignored",
                oid, name, tag, value, n_digits, kind,
            )  # fmt: skip
    gdf["code"] = code
    gdf["street_code"] = [c[6:9] if c else None for c in code]
    gdf["district_code"] = [c[:6] if c else None for c in code]
    return gdf


def _finer_wins(comms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Where community levels overlap, the finer polygon keeps the area; the coarser
    keeps its remainder (parts under 1 ha dropped)."""
    levels = sorted(set(comms["admin_level"].tolist()), reverse=True)
    if len(levels) < 2:
        return comms
    geoms = comms.geometry.values.copy()
    lv = comms["admin_level"].to_numpy()
    finer = np.zeros(len(comms), dtype=bool)
    for level in levels:
        this = lv == level
        if finer.any():
            cover = shapely.union_all(geoms[finer], grid_size=PRECISION)
            idx = np.flatnonzero(this)
            rest = shapely.difference(geoms[idx], cover, grid_size=PRECISION)
            geoms[idx] = [_drop_small(polygonal(g)) for g in rest]
        finer |= this
    out = comms.set_geometry(list(geoms), crs=comms.crs)
    return out[~shapely.is_empty(out.geometry.values)]


def _drop_small(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    parts = parts[shapely.area(parts) >= _MIN_PART_M2]
    if not len(parts):
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def _street_membership(comms: gpd.GeoDataFrame, streets: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``street_id`` and ``street_name`` of each community: the street holding most of
    its area, else the nearest one; street codes filled from the street when the
    community has none."""
    comms = comms.copy()
    n = len(comms)
    if len(streets) == 0 or n == 0:
        comms["street_id"] = pd.array([pd.NA] * n, dtype="Int64")
        comms["street_name"] = None
        return comms
    owner = _largest_overlap(comms.geometry.values, streets.geometry.values)
    none = owner < 0
    if none.any():
        tree = shapely.STRtree(streets.geometry.values)
        owner[none] = tree.query_nearest(comms.geometry.values[none], all_matches=False)[1]
    comms["street_id"] = pd.array(streets["osm_id"].to_numpy()[owner], dtype="Int64")
    comms["street_name"] = streets["name"].to_numpy()[owner]
    for col in ("street_code", "district_code"):
        given = comms[col].to_numpy(dtype=object)
        comms[col] = np.where(pd.isna(given), streets[col].to_numpy(dtype=object)[owner], given)
    return comms


def _largest_overlap(geoms: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Index of the polygon in `owners` sharing most area with each of `geoms` (-1: none)."""
    geoms, owners = np.asarray(geoms), np.asarray(owners)
    tree = shapely.STRtree(owners)
    best = np.full(len(geoms), -1, dtype=np.int64)
    wi, wo = tree.query(geoms, predicate="within")  # the common case, and cheap
    best[wi[::-1]] = wo[::-1]  # the first owner when several hold it
    rest = np.flatnonzero(best < 0)
    gi, oi = tree.query(geoms[rest], predicate="intersects")
    gi = rest[gi]
    if len(gi):
        share = shapely.area(shapely.intersection(geoms[gi], owners[oi]))
        order = np.lexsort((-share, gi))
        first = np.r_[True, gi[order][1:] != gi[order][:-1]]
        pick = order[first]
        pick = pick[share[pick] > 0]
        best[gi[pick]] = oi[pick]
    return best


# ====================================================================== completing
def _street_remainders(comms: gpd.GeoDataFrame, streets: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The part of each street no community covers, as a community of that street."""
    sgeoms = np.asarray(streets.geometry.values)
    cgeoms = np.asarray(comms.geometry.values)
    si, ci = shapely.STRtree(cgeoms).query(sgeoms, predicate="intersects")
    has_comms = set(comms["street_id"].dropna().tolist())
    rows = []
    for i, s in enumerate(streets.itertuples(index=False)):
        near = cgeoms[ci[si == i]]
        rest = sgeoms[i]
        if len(near):
            cover = shapely.union_all(near)  # floating: twice as fast on real outlines
            rest = polygonal(shapely.difference(rest, cover, grid_size=PRECISION))
        if rest.is_empty:
            continue
        rows.append(
            {
                "osm_id": s.osm_id, "osm_type": s.osm_type, "admin_level": s.admin_level,
                "name": f"{s.name}（其余）" if s.osm_id in has_comms else s.name,
                "name_zh": None, "ref": None, "code": None,
                "street_code": s.street_code, "district_code": s.district_code,
                "street_id": s.osm_id, "street_name": s.name,
                "source": "street_remainder", "geometry": rest,
            }
        )  # fmt: skip
    return gpd.GeoDataFrame(rows, columns=_COMMUNITY_COLUMNS + ["geometry"], crs=streets.crs)


def _outside(
    feet: np.ndarray, mapped: np.ndarray, streets: gpd.GeoDataFrame, crs: Any
) -> gpd.GeoDataFrame:
    """Communities for buildings outside every boundary: their footprints buffered by
    50 m, merged, minus the mapped areas; one per connected part holding a building."""
    zone = shapely.get_parts(
        shapely.union_all(shapely.buffer(feet, _OUTSIDE_BUFFER, quad_segs=2), grid_size=1.0)
    )
    zi, mi = shapely.STRtree(mapped).query(zone, predicate="intersects")
    parts = []
    for k, z in enumerate(zone):
        near = mapped[mi[zi == k]]
        if len(near):
            z = shapely.difference(z, shapely.union_all(near), grid_size=PRECISION)
        parts.extend(polygonal_parts(np.array([polygonal(z)], dtype=object))[0])
    parts = np.array(parts, dtype=object)
    if len(parts):
        parts = parts[_any_match(parts, feet, "intersects")]
    n = len(parts)
    street_id = street_name = [None] * n
    if len(streets) and n:
        near = shapely.STRtree(np.asarray(streets.geometry.values)).query_nearest(
            parts, all_matches=False
        )[1]
        street_id = streets["osm_id"].to_numpy()[near]
        street_name = streets["name"].to_numpy()[near]
    return gpd.GeoDataFrame(
        {
            "osm_id": pd.array([pd.NA] * n, dtype="Int64"),
            "osm_type": None,
            "admin_level": pd.array([pd.NA] * n, dtype="Int64"),
            "name": [f"边界外区域 {k + 1}" for k in range(n)],
            "name_zh": None,
            "ref": None,
            "code": None,
            "street_code": None,
            "district_code": None,
            "street_id": pd.array(street_id, dtype="Int64"),
            "street_name": street_name,
            "source": "outside",
        },
        geometry=list(parts),
        crs=crs,
    )


def _absorb_small(
    comms: gpd.GeoDataFrame, feet: np.ndarray | None, hh: np.ndarray | None
) -> gpd.GeoDataFrame:
    """Street remainders and outside areas that are small (under 1 ha, or under
    :data:`JOIN_HOUSEHOLDS` households) join the community they share most border with;
    those left without a neighbour and without a building are dropped; the outside
    areas left are numbered again."""
    geoms = np.array(comms.geometry.values, dtype=object)
    filler = (comms["source"] != "osm").to_numpy()
    load = np.zeros(len(comms))
    if feet is not None:
        bi, ci = shapely.STRtree(geoms).query(shapely.point_on_surface(feet), "intersects")
        np.add.at(load, ci, hh[bi])
        has_building = np.bincount(ci, minlength=len(comms)) > 0
    else:
        has_building = np.zeros(len(comms), dtype=bool)
    small = filler & ((shapely.area(geoms) < _MIN_PART_M2) | (load < JOIN_HOUSEHOLDS))
    drop = np.zeros(len(comms), dtype=bool)
    tree = shapely.STRtree(geoms)
    for i in np.flatnonzero(small)[np.argsort(shapely.area(geoms[small]))]:
        near = tree.query(geoms[i], predicate="dwithin", distance=_TOUCH)
        near = near[(near != i) & ~drop[near]]
        if len(near):
            edge = shapely.boundary(geoms[i])
            border = shapely.length(shapely.intersection(edge, shapely.buffer(geoms[near], _TOUCH)))
            if border.max() > 0:
                j = near[np.argmax(border)]
                geoms[j] = polygonal(shapely.union(geoms[j], geoms[i], grid_size=PRECISION))
                drop[i] = True
                continue
        drop[i] = not has_building[i]
    out = comms.set_geometry(list(geoms), crs=comms.crs)[~drop].reset_index(drop=True)
    outside = (out["source"] == "outside").to_numpy()
    out.loc[outside, "name"] = [f"边界外区域 {k + 1}" for k in range(int(outside.sum()))]
    return out


def _any_match(geoms: np.ndarray, others: np.ndarray, predicate: str) -> np.ndarray:
    """Whether each of `geoms` is in relation `predicate` with any of `others`."""
    hit, _ = shapely.STRtree(others).query(geoms, predicate=predicate)
    out = np.zeros(len(geoms), dtype=bool)
    out[hit] = True
    return out
