"""The hierarchy above grids: communities (社区/村) and streets (街道/乡镇).

Given communities
    The polygons are repaired, snapped to the 1 cm grid and made a proper coverage:
    where two communities overlap, the earlier row keeps the overlap; detached slivers
    (parts under 100 m² and under 1 % of their community) are dropped. Valid 3-digit
    ``street_code`` and ``community_code`` columns (or a 12-digit ``code``) are kept;
    otherwise communities are numbered (see :mod:`gridmap.partition.codes`) and the plan
    notes say so. Streets come from ``street_code``, from a ``street_column`` named by
    the caller, or are derived by grouping neighbouring communities.

No communities
    The planning area is the buffered convex hull of the buildings. Its units are
    grouped into *planning communities* of ``community_size`` households (default
    3,000–5,000, as a community holds in the field) that follow the strongest barriers,
    and planning communities are grouped into streets of ``street_size`` households
    (default 20,000–40,000). Both groupings use the grid partition itself
    (:func:`gridmap.partition.regions.partition_region`) with barrier-weighted cut costs,
    so they are contiguous and cut along rivers and arterials where they can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import to_metric
from ..errors import PlanError, SchemaError
from .codes import MAX_SEQUENCE, reading_order, reading_order_points
from .geometry import PRECISION, in_threads, polygonal, polygonal_parts, snap
from .regions import partition_region

__all__ = [
    "COMMUNITY_SIZE",
    "STREET_SIZE",
    "group_units",
    "number_communities",
    "planning_area",
    "prepare_communities",
    "source_communities",
]

#: Households of a derived planning community (a community holds 3,000–5,000).
COMMUNITY_SIZE = (3000, 5000)
#: Households of a derived street (街道).
STREET_SIZE = (20000, 40000)
_SLIVER_M2 = 100.0
_SLIVER_SHARE = 0.01
_HULL_BUFFER = 50.0


def prepare_communities(communities: gpd.GeoDataFrame, crs, notes: list[str]) -> gpd.GeoDataFrame:
    """Repair community polygons into a coverage in the metric CRS.

    Parameters
    ----------
    communities : geopandas.GeoDataFrame
        Community polygons (any CRS).
    crs : pyproj.CRS
        The plan's metric CRS.
    notes : list of str
        Plain-language notes; what was repaired is appended.

    Returns
    -------
    geopandas.GeoDataFrame
        Same rows (minus those left without area) and columns, snapped polygons that do
        not overlap.
    """
    if not isinstance(communities, gpd.GeoDataFrame):
        raise SchemaError(f"communities must be a GeoDataFrame, got {type(communities).__name__}")
    if len(communities) == 0:
        raise PlanError("the community layer is empty", source="communities")
    comms = to_metric(communities, crs, "communities").reset_index(drop=True).copy()
    missing = comms.geometry.isna().to_numpy()
    geoms = np.array(
        [polygonal(g) for g in snap(np.where(missing, shapely.Polygon(), comms.geometry.values))],
        dtype=object,
    )
    # overlaps: the earlier community keeps the shared area
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    m = left < right
    left, right = left[m], right[m]
    inner = in_threads(
        shapely.relate_pattern, geoms[left], geoms[right], pattern="T********", min_size=500
    )
    left, right = left[inner], right[inner]
    overlap_area = 0.0
    for j in np.unique(right):
        earlier = geoms[left[right == j]]
        cut = shapely.union_all(earlier, grid_size=PRECISION)
        before = geoms[j].area
        geoms[j] = polygonal(shapely.difference(geoms[j], cut, grid_size=PRECISION))
        overlap_area += before - geoms[j].area
    if len(right):
        notes.append(
            f"{len(np.unique(right))} communities overlapped earlier ones by "
            f"{overlap_area:,.0f} m² in all; the earlier community keeps each overlap."
        )
    # detached slivers
    parts, owner = polygonal_parts(geoms)
    area = shapely.area(parts)
    biggest = np.zeros(len(geoms))
    np.maximum.at(biggest, owner, area)
    sliver = (area < _SLIVER_M2) & (area < _SLIVER_SHARE * biggest[owner])
    if sliver.any():
        kept = pd.Series(list(parts[~sliver])).groupby(owner[~sliver]).agg(list)
        new = np.full(len(geoms), shapely.Polygon(), dtype=object)
        for i, ps in kept.items():
            new[i] = ps[0] if len(ps) == 1 else shapely.multipolygons(ps)
        geoms = new
        notes.append(
            f"{int(sliver.sum())} detached slivers of communities (under {_SLIVER_M2:.0f} m² "
            f"and 1 % of their community; {area[sliver].sum():,.0f} m² in all) were dropped."
        )
    empty = shapely.is_empty(geoms)
    if empty.all():
        raise PlanError("no community polygon has any area", source="communities")
    if empty.any():
        rows = np.flatnonzero(empty)
        notes.append(
            f"{len(rows)} communities have no area of their own (empty, or covered by "
            f"earlier rows) and were left out: rows {rows[:10].tolist()}."
        )
    comms = comms.set_geometry(geoms)
    comms = comms[~empty].reset_index(drop=True)
    return comms


def source_communities(
    path: str | Path | None,
    buildings: gpd.GeoDataFrame,
    *,
    levels: Iterable[int] | None = None,
    bbox: Sequence[float] | None = None,
) -> tuple[gpd.GeoDataFrame | None, str | None, str | None, str | None]:
    """The community layer from the administrative boundaries of the buildings' source.

    When the footprints were read from an OSM extract (``.pbf``; the file is
    recorded by :func:`gridmap.read_buildings` in ``attrs["source_path"]``), its
    ``boundary=administrative`` relations are used as
    :func:`gridmap.boundaries.admin_hierarchy` finds them (admin_level 8 streets,
    9/10 communities, used only when they hold enough of the households).

    Parameters
    ----------
    path : str, pathlib.Path or None
        The file the footprints were read from.
    buildings : geopandas.GeoDataFrame
        The footprints, with ``households``.
    levels, bbox : optional
        ``admin_level`` values and lon/lat box, as for
        :func:`gridmap.boundaries.read_boundaries`.

    Returns
    -------
    communities : GeoDataFrame or None
        None when the source is not an OSM extract or has no usable boundary.
    street_column, district_code : str or None
        For :func:`gridmap.plan_grids`.
    note : str or None
        Where the hierarchy comes from, in plain words.
    """
    if not path or not str(path).lower().endswith(".pbf") or not Path(path).exists():
        return None, None, None, None
    from ..boundaries import admin_hierarchy  # (reads PBFs: imported only when needed)

    comms, note = admin_hierarchy(path, buildings, levels=levels, bbox=bbox)
    if comms is None:
        return None, None, None, note
    return comms, comms.attrs.get("street_column"), comms.attrs.get("district_code"), note


def planning_area(anchors: np.ndarray) -> shapely.Geometry:
    """The planning area when no community is given: the buildings' hull plus 50 m."""
    hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(anchors)))
    return snap(shapely.buffer(hull, _HULL_BUFFER))


def group_units(
    weights: np.ndarray,
    xy: np.ndarray,
    edges: np.ndarray,
    cost: np.ndarray,
    size: tuple[int, int],
    *,
    seed: int = 0,
) -> np.ndarray:
    """Group units into contiguous regions of `size` households (communities, streets).

    Parameters
    ----------
    weights : ndarray of int
        Households per unit.
    xy : ndarray, shape (n, 2)
        Unit locations (m).
    edges, cost : ndarray
        Unit adjacency and the cost of cutting each pair apart (barrier-weighted).
    size : tuple of int
        Household range of a group.
    seed : int

    Returns
    -------
    ndarray of int
        Group of every unit (``0 .. g-1``); every connected set of units below the range
        is a group of its own.
    """
    lo, hi = size
    res = partition_region(
        np.asarray(weights, dtype=np.int64), xy, edges, lo, hi, seed=seed, edge_lengths=cost
    )
    return res.labels


def number_communities(
    comms: gpd.GeoDataFrame,
    street_of: np.ndarray | None,
    notes: list[str],
) -> gpd.GeoDataFrame:
    """Give every community a 3-digit street and community code.

    Valid given codes are kept. Otherwise streets (from `street_of`, a street label per
    community) are numbered in reading order of their outlines, and communities in
    reading order within their street.

    Parameters
    ----------
    comms : geopandas.GeoDataFrame
        Communities (metric CRS).
    street_of : ndarray, optional
        Street label of each community (any hashable values); required when the layer
        has no valid ``street_code``.
    notes : list of str

    Returns
    -------
    geopandas.GeoDataFrame
        With ``street_code``, ``community_code`` and ``name``.
    """
    comms = comms.copy()
    n = len(comms)
    if "community_code" not in comms.columns and "code" in comms.columns:
        code = comms["code"].astype(str).str.strip()
        if code.str.fullmatch(r"\d{12}").all():
            comms["street_code"] = code.str[6:9]
            comms["community_code"] = code.str[9:12]
    street_ok = _valid_codes(comms, "street_code")
    comm_ok = _valid_codes(comms, "community_code")
    if street_ok and comm_ok and not comms.duplicated(["street_code", "community_code"]).any():
        comms["street_code"] = comms["street_code"].astype(str).str.strip()
        comms["community_code"] = comms["community_code"].astype(str).str.strip()
    else:
        if "community_code" in comms.columns:
            comms["source_code"] = comms["community_code"].astype(str)
        if street_ok:
            street = comms["street_code"].astype(str).str.strip().to_numpy()
            street_codes = street
        else:
            if street_of is None:
                street_of = np.zeros(n, dtype=np.int64)
            street_codes = _number_groups(comms.geometry.values, np.asarray(street_of))
        comm_seq = reading_order(comms.geometry.values, street_codes)
        if comm_seq.max(initial=0) > MAX_SEQUENCE:
            raise PlanError(
                f"a street would hold {comm_seq.max()} communities; at most {MAX_SEQUENCE} "
                "fit a 3-digit code"
            )
        comms["street_code"] = street_codes
        comms["community_code"] = [f"{s:03d}" for s in comm_seq]
        why = (
            "had no valid codes"
            if not comm_ok
            else "had duplicate street_code + community_code pairs"
        )
        notes.append(
            f"Communities {why}: numbered 001, 002, ... in reading order (north to south, "
            f"west to east) within {len(set(street_codes))} street(s)"
            + ("" if street_ok else ", streets numbered the same way")
            + "; the original values are kept in 'source_code'." * ("source_code" in comms.columns)
        )
    if "name" not in comms.columns:
        comms["name"] = comms["community_code"]
    comms["name"] = comms["name"].astype(object).where(comms["name"].notna(), "").astype(str)
    return comms


def _valid_codes(comms: pd.DataFrame, col: str) -> bool:
    if col not in comms.columns:
        return False
    v = comms[col].astype(object)
    return bool(v.notna().all() and v.astype(str).str.strip().str.fullmatch(r"\d{3}").all())


def _number_groups(geoms: np.ndarray, label: np.ndarray) -> np.ndarray:
    """3-digit codes for groups of polygons, in reading order of the groups (each
    group placed at the area-weighted centre of its members' inner points)."""
    keys, inv = np.unique(label.astype(str), return_inverse=True)
    pts = shapely.point_on_surface(geoms)
    a = shapely.area(geoms)
    tot = np.bincount(inv, weights=a, minlength=len(keys))
    w = np.maximum(tot, 1e-9)
    x = np.bincount(inv, weights=a * shapely.get_x(pts), minlength=len(keys)) / w
    y = np.bincount(inv, weights=a * shapely.get_y(pts), minlength=len(keys)) / w
    seq = reading_order_points(x, y, tot)
    if seq.max(initial=0) > MAX_SEQUENCE:
        raise PlanError(f"{seq.max()} streets do not fit a 3-digit street code")
    return np.array([f"{s:03d}" for s in seq[inv]], dtype=object)
