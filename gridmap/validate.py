"""Independent checker of a grid plan.

The partition engine is not trusted: :func:`validate_plan` re-checks a plan from its
outputs only (grid polygons, buildings with their grid codes, split parts) against the
division rules of grid management (网格化管理): every grid within its household range,
closed non-overlapping grids that cover each community without gaps, no grid straddling
two communities, buildings inside their grid, compounds and buildings kept whole.

Every check is vectorised (shapely 2 / numpy / pandas), so a plan of a million buildings
and several thousand grids is checked in seconds. Python loops run only over the
problems found, and over communities for the gap check.

The result is a table with one row per problem, columns ``check``, ``grid_code``,
``severity`` (``error``/``warning``/``info``) and ``detail`` (plain words with
numbers). An empty table means the plan passed. :func:`summary` counts rows per check.
Plan-wide totals (overlap, gap and outside areas in m², barrier crossing length in m)
are kept in ``report.attrs["totals"]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .crs import _unit_is_metre, require_crs
from .errors import CRSError, SchemaError

__all__ = ["CHECKS", "COLUMNS", "summary", "validate_plan"]

#: Report columns, in order.
COLUMNS: list[str] = ["check", "grid_code", "severity", "detail"]

#: Every check, in the order rows appear in a report.
CHECKS: tuple[str, ...] = (
    "invalid_geometry",
    "discontiguous",
    "duplicate_grid_code",
    "overlap",
    "gap",
    "outside_community",
    "crosses_community",
    "households_mismatch",
    "out_of_range",
    "empty_grid",
    "building_outside_grid",
    "unassigned_building",
    "outside_plan",
    "barrier_crossing",
    "split_compound",
    "split_building",
)

#: Flags (in ``grids.flags``) that explain a grid below its range.
_EXPLAIN_BELOW = frozenset({"infeasible_split", "isolated_village", "below_floor", "unbalanced"})
#: Flags that explain a grid above its range.
_EXPLAIN_ABOVE = frozenset({"infeasible_split", "isolated_village", "unbalanced"})

#: Flag by which the partitioner explains a compound it had to split.
_SPLIT_FLAG = "split_compound"

_GRID_COLUMNS = ("grid_code", "households", "kind", "range_min", "range_max")
_BUILDING_COLUMNS = ("building_id", "households", "grid_code")
_SPLIT_COLUMNS = ("building_id", "part", "unit_from", "unit_to", "households", "grid_code")
_SHRINK_M = 0.5  # inward buffer that ignores barriers following a grid's boundary
_LINE_TYPES = (1, 2)  # shapely type ids: LineString, LinearRing
_POLYGON_TYPE = 3


def validate_plan(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    splits: pd.DataFrame | None = None,
    tolerance_m2: float = 1.0,
    crossing_tolerance_m: float = 1.0,
) -> pd.DataFrame:
    """Check a grid plan from its outputs and list every problem found.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        One row per grid: ``grid_code``, ``households``, ``kind``
        (``community``/``rural``/``special``), ``range_min``, ``range_max``, and
        optionally ``community_code`` (needed with `communities`) and ``flags``
        (``;``-separated).
    buildings : geopandas.GeoDataFrame
        ``building_id``, ``households``, ``grid_code`` (null when unassigned), and
        optionally ``compound_id`` and ``units``.
    communities : geopandas.GeoDataFrame, optional
        ``community_code`` and polygon geometry. Enables the ``gap`` check per
        community and the ``outside_community`` / ``crosses_community`` checks.
        Without it, gaps are the holes inside the union of all grids.
    barriers : geopandas.GeoDataFrame or GeoSeries, optional
        Roads, rivers, rail as lines, or water as polygons. The label of a barrier in
        the report comes from its ``name``, ``highway`` or ``waterway`` column.
    compounds : geopandas.GeoDataFrame, optional
        ``compound_id`` and polygon geometry, used to find each building's compound
        when `buildings` has no ``compound_id`` column.
    splits : pandas.DataFrame, optional
        Buildings split by units: ``building_id``, ``part``, ``unit_from``,
        ``unit_to`` (1-based, inclusive), ``households``, ``grid_code``.
    tolerance_m2 : float
        Areas up to this size (m²) are ignored: overlaps, gaps, parts of a grid,
        area outside a community.
    crossing_tolerance_m : float
        A barrier must run this far (m) inside a grid to count as crossing it.

    Returns
    -------
    pandas.DataFrame
        Columns ``check``, ``grid_code``, ``severity``, ``detail``; one row per
        problem, ordered as :data:`CHECKS`. Empty (same columns) when the plan passes.
        ``report.attrs["totals"]`` holds ``overlap_m2``, ``gap_m2``, ``outside_m2`` and
        ``crossing_m`` for the whole plan (all pieces, including those under the
        tolerances).

    Raises
    ------
    gridmap.errors.CRSError
        When a layer has no CRS, a geographic (non-metric) CRS, or a CRS different
        from the grids'.
    gridmap.errors.SchemaError
        When a required column is missing.

    Notes
    -----
    Checks and severities:

    - ``invalid_geometry`` (error): a grid polygon that is missing or not valid; the
      detail gives :func:`shapely.is_valid_reason`. Other checks use the repaired shape.
    - ``discontiguous`` (error): a grid with more than one polygon part larger than
      `tolerance_m2`.
    - ``duplicate_grid_code`` (error): the same code on more than one grid.
    - ``overlap`` (error): two grids sharing more than `tolerance_m2`.
    - ``gap`` (error): community area covered by no grid, or holes in the union of
      all grids when `communities` is not given.
    - ``outside_community`` / ``crosses_community`` (error): grid area outside its own
      community, or inside another one.
    - ``households_mismatch`` (error): the grid's ``households`` differs from the sum
      over its buildings (split buildings count by their parts).
    - ``out_of_range``: recomputed households outside ``[range_min, range_max]`` of a
      non-special grid; ``warning`` when the grid's flags explain it
      (``infeasible_split``, ``isolated_village``, ``unbalanced``, or ``below_floor`` for
      a grid below its floor), else ``error``.
    - ``empty_grid`` (warning): a non-special grid with no households.
    - ``building_outside_grid`` (error): a building whose representative point is not
      in its grid (for a split building: in none of its parts' grids), or whose grid
      code is not in `grids`.
    - ``unassigned_building`` (error): a building with households and no grid code.
    - ``outside_plan`` (info): a building with households and no grid code whose
      footprint touches no community (it lies outside the planned area).
    - ``barrier_crossing`` (warning): a barrier line running more than
      `crossing_tolerance_m` through the grid's interior (the grid shrunk by 0.5 m, so
      barriers along its boundary do not count); for a polygon barrier, the grid must
      also lie on both sides of it.
    - ``split_compound``: a compound whose households are spread over several grids;
      ``error`` when they would fit in one (total ≤ the largest ``range_max`` of those
      grids, all in one community) — ``warning`` if one of those grids carries the
      ``split_compound`` flag (the partitioner explains why) — else ``info``.
    - ``split_building`` (error): split parts whose households do not add up to the
      building's, or whose unit ranges overlap, skip units, or run past the building's
      ``units``.
    """
    _check_crs(grids, buildings, communities, barriers, compounds)
    _require_columns(grids, "grids", _GRID_COLUMNS)
    _require_columns(buildings, "buildings", _BUILDING_COLUMNS)
    if splits is None:
        splits = pd.DataFrame({c: pd.Series(dtype=object) for c in _SPLIT_COLUMNS})
    _require_columns(splits, "splits", _SPLIT_COLUMNS)
    if communities is not None:
        _require_columns(communities, "communities", ("community_code",))
        _require_columns(grids, "grids", ("community_code",))
    if compounds is not None:
        _require_columns(compounds, "compounds", ("compound_id",))
    if isinstance(barriers, gpd.GeoSeries):
        barriers = gpd.GeoDataFrame(geometry=barriers)

    g = _GridTable(grids)
    parts: list[pd.DataFrame] = []
    totals = {"overlap_m2": 0.0, "gap_m2": 0.0, "outside_m2": 0.0, "crossing_m": 0.0}

    parts.append(_check_geometry(g, tolerance_m2))
    overlap_rows, totals["overlap_m2"] = _check_overlap(g, tolerance_m2)
    parts.append(overlap_rows)
    if communities is not None:
        comm = _CommunityTable(communities)
        rows, totals["gap_m2"], totals["outside_m2"] = _check_community_cover(g, comm, tolerance_m2)
        parts.append(rows)
    else:
        gap_rows, totals["gap_m2"] = _check_holes(g, tolerance_m2)
        parts.append(gap_rows)

    b = _BuildingTable(buildings, splits, g)
    parts.append(_check_households(g, b))
    parts.append(_check_building_location(g, b, comm if communities is not None else None))
    if barriers is not None and len(barriers):
        cross_rows, totals["crossing_m"] = _check_barriers(
            g, barriers, crossing_tolerance_m, tolerance_m2
        )
        parts.append(cross_rows)
    parts.append(_check_compounds(g, b, compounds))
    parts.append(_check_splits(b, splits))

    report = _concat(parts)
    report.attrs["totals"] = {k: float(v) for k, v in totals.items()}
    return report


def summary(report: pd.DataFrame) -> dict[str, int]:
    """Count the rows of a validation report per check.

    Parameters
    ----------
    report : pandas.DataFrame
        A result of :func:`validate_plan` (or ``Plan.validate()``).

    Returns
    -------
    dict
        ``{check: number of rows}`` for every check in :data:`CHECKS` (zeros
        included), followed by any other check name found in the report.
    """
    counts = report["check"].value_counts() if len(report) else pd.Series(dtype=int)
    out = {name: int(counts.get(name, 0)) for name in CHECKS}
    for name, n in counts.items():
        out.setdefault(str(name), int(n))
    return out


# --------------------------------------------------------------------------- inputs


def _check_crs(*layers: gpd.GeoDataFrame | gpd.GeoSeries | None) -> CRS:
    names = ("grids", "buildings", "communities", "barriers", "compounds")
    reference: CRS | None = None
    for name, layer in zip(names, layers, strict=True):
        if layer is None:
            continue
        crs = require_crs(layer, name)
        if not (crs.is_projected and _unit_is_metre(crs)):
            raise CRSError(
                f"CRS {crs.to_string()} is not a projected metric CRS; project every layer "
                "with gridmap.to_metric() before validating",
                source=name,
            )
        if reference is None:
            reference = crs
        elif not crs.equals(reference, ignore_axis_order=True):
            raise CRSError(
                f"CRS {crs.to_string()} differs from the grids' CRS {reference.to_string()}",
                source=name,
            )
    assert reference is not None
    return reference


def _require_columns(df: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}",
            source=name,
        )


def _geometry_array(gdf: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(gdf.geometry.array, dtype=object)


def _polygonal(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (usable polygonal geometry, missing mask, invalid mask)."""
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    invalid = ~missing & ~shapely.is_valid(geoms)
    work = geoms.copy()
    if invalid.any():
        work[invalid] = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
    work[missing] = shapely.Polygon()
    return work, missing, invalid


def _community_keys(table: pd.DataFrame) -> np.ndarray:
    """A community's key: ``street_code-community_code`` when the table has street codes
    (community codes repeat across streets), else the community code."""
    comm = _codes(table["community_code"])
    if "street_code" not in table.columns:
        return comm
    street = _codes(table["street_code"])
    return np.array(
        [
            None if c is None else (c if s is None else f"{s}-{c}")
            for s, c in zip(street, comm, strict=True)
        ],
        dtype=object,
    )


def _codes(values: pd.Series) -> np.ndarray:
    """Codes as an object array of str, with None for missing values."""
    arr = values.to_numpy(dtype=object, copy=True)
    na = pd.isna(arr)
    if pd.api.types.infer_dtype(arr, skipna=True) not in ("string", "empty"):
        arr = arr.astype(str).astype(object)
    arr[na] = None
    return arr


class _GridTable:
    """The grids as arrays, with a code → row lookup (first row of duplicated codes)."""

    def __init__(self, grids: gpd.GeoDataFrame):
        self.n = len(grids)
        self.code = _codes(grids["grid_code"])
        self.raw = _geometry_array(grids)
        self.geom, self.missing, self.invalid = _polygonal(self.raw)
        self.kind = grids["kind"].astype(object).to_numpy()
        self.special = self.kind == "special"
        self.households = pd.to_numeric(grids["households"], errors="coerce").to_numpy(float)
        self.range_min = pd.to_numeric(grids["range_min"], errors="coerce").to_numpy(float)
        self.range_max = pd.to_numeric(grids["range_max"], errors="coerce").to_numpy(float)
        if "flags" in grids.columns:
            self.flags = grids["flags"].fillna("").astype(str).to_numpy(dtype=object)
        else:
            self.flags = np.full(self.n, "", dtype=object)
        if "community_code" in grids.columns:
            self.community = _community_keys(grids)
        else:
            self.community = np.full(self.n, None, dtype=object)
        lookup = pd.Series(np.arange(self.n), index=pd.Index(self.code, dtype=object))
        self.lookup = lookup[~lookup.index.duplicated(keep="first")]
        self.duplicated = pd.Series(self.code).duplicated(keep=False).to_numpy() & pd.notna(
            self.code
        )
        shapely.prepare(self.geom)
        self.tree = shapely.STRtree(self.geom)

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Row of each code, -1 when unknown or missing."""
        pos = self.lookup.reindex(pd.Index(codes, dtype=object)).to_numpy()
        return np.where(pd.isna(pos), -1, pos).astype(np.int64)


class _CommunityTable:
    """Communities dissolved by code."""

    def __init__(self, communities: gpd.GeoDataFrame):
        codes = _community_keys(communities)
        geoms, _, _ = _polygonal(_geometry_array(communities))
        frame = pd.DataFrame({"code": codes, "geom": geoms}).dropna(subset=["code"])
        if frame["code"].duplicated().any():
            frame = (
                frame.groupby("code", sort=False)["geom"]
                .agg(lambda s: shapely.union_all(s.to_numpy()))
                .reset_index()
            )
        self.code = frame["code"].to_numpy(dtype=object)
        self.geom = frame["geom"].to_numpy(dtype=object)
        self.lookup = pd.Series(np.arange(len(self.code)), index=pd.Index(self.code))
        shapely.prepare(self.geom)
        self.tree = shapely.STRtree(self.geom)


class _BuildingTable:
    """Buildings as arrays, plus the household allocation to grids."""

    def __init__(self, buildings: gpd.GeoDataFrame, splits: pd.DataFrame, g: _GridTable):
        self.n = len(buildings)
        self.frame = buildings
        self.id = _codes(buildings["building_id"])
        self.households = (
            pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy(float)
        )
        self.grid = _codes(buildings["grid_code"])
        self.grid_row = g.rows(self.grid)
        self.geom = _geometry_array(buildings)

        split_ids = _codes(splits["building_id"])
        self.split_row = self.rows(split_ids)
        self.is_split = np.zeros(self.n, dtype=bool)
        self.is_split[self.split_row[self.split_row >= 0]] = True
        split_grid = _codes(splits["grid_code"])
        split_hh = pd.to_numeric(splits["households"], errors="coerce").fillna(0).to_numpy(float)
        whole = ~self.is_split
        # one row per (building or split part, grid): the households each grid holds
        self.alloc = pd.DataFrame(
            {
                "building": np.concatenate([np.flatnonzero(whole), self.split_row]),
                "grid": np.concatenate([self.grid_row[whole], g.rows(split_grid)]),
                "households": np.concatenate([self.households[whole], split_hh]),
            }
        )

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each building id (first row if duplicated), -1 when unknown.

        The few ids asked for are hashed, not the million buildings.
        """
        ids = np.asarray(ids, dtype=object)
        if not len(ids):
            return np.empty(0, dtype=np.int64)
        keys = pd.Index(pd.unique(ids[pd.notna(ids)]), dtype=object)
        hit = keys.get_indexer(self.id)
        found = np.flatnonzero(hit >= 0)
        first = np.full(len(keys), self.n, dtype=np.int64)
        np.minimum.at(first, hit[found], found)
        first[first == self.n] = -1
        pos = keys.get_indexer(ids)
        return np.where(pos >= 0, first[pos], -1)


# --------------------------------------------------------------------------- helpers


def _rows(check: str, grid_code, severity, detail) -> pd.DataFrame:
    detail = list(detail)
    n = len(detail)
    if isinstance(grid_code, str) or grid_code is None:
        grid_code = [grid_code] * n
    if isinstance(severity, str):
        severity = [severity] * n
    return pd.DataFrame(
        {
            "check": [check] * n,
            "grid_code": pd.Series(list(grid_code), dtype=object),
            "severity": pd.Series(list(severity), dtype=object),
            "detail": pd.Series(detail, dtype=object),
        },
        columns=COLUMNS,
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty()
    report = pd.concat(parts, ignore_index=True)
    order = {name: i for i, name in enumerate(CHECKS)}
    key = report["check"].map(order).fillna(len(order))
    report = report.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    return report


def _n(value: float) -> str:
    """A count in plain words: integers without decimals."""
    if value is None or pd.isna(value):
        return "unknown"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _m2(value: float) -> str:
    return f"{value:,.1f} m²"


def _point(geom) -> str:
    return f"({shapely.get_x(geom):,.1f}, {shapely.get_y(geom):,.1f})"


# --------------------------------------------------------------------------- grid checks


def _check_geometry(g: _GridTable, tol: float) -> pd.DataFrame:
    parts = [_empty()]
    bad = np.flatnonzero(g.missing | g.invalid)
    if len(bad):
        reasons = shapely.is_valid_reason(g.raw[bad])
        detail = [
            "grid has no geometry" if g.missing[i] else f"invalid polygon: {r}"
            for i, r in zip(bad, reasons, strict=True)
        ]
        parts.append(_rows("invalid_geometry", g.code[bad], "error", detail))

    pieces, owner = shapely.get_parts(g.geom, return_index=True)
    polygon = shapely.get_type_id(pieces) == _POLYGON_TYPE
    area = shapely.area(pieces)
    big = polygon & (area > tol)
    n_big = np.bincount(owner[big], minlength=g.n)
    multi = np.flatnonzero(n_big > 1)
    if len(multi):
        frame = pd.DataFrame({"grid": owner[big], "area": area[big]})
        frame = frame[np.isin(frame["grid"], multi)].sort_values(
            ["grid", "area"], ascending=[True, False]
        )
        listed = frame.groupby("grid", sort=True)["area"].agg(
            lambda a: ", ".join(f"{v:,.0f}" for v in a.to_numpy()[:5])
        )
        detail = [
            f"grid is in {n_big[i]} separate parts larger than {_m2(tol)} (areas {listed[i]} m²)"
            for i in multi
        ]
        parts.append(_rows("discontiguous", g.code[multi], "error", detail))

    dup = np.flatnonzero(g.duplicated)
    if len(dup):
        count = pd.Series(g.code[dup]).value_counts()
        detail = [f"grid code used by {count[c]} grids" for c in g.code[dup]]
        parts.append(_rows("duplicate_grid_code", g.code[dup], "error", detail))
    return _concat(parts)


def _check_overlap(g: _GridTable, tol: float) -> tuple[pd.DataFrame, float]:
    g.overlap_area = np.zeros(g.n)
    if g.n < 2:
        return _empty(), 0.0
    # Grids forming a valid coverage (interiors disjoint, shared edges matched) cannot
    # overlap: only grids with invalid coverage edges need a pairwise overlay.
    flagged = ~shapely.is_empty(shapely.coverage_invalid_edges(g.geom))
    candidates = np.flatnonzero(flagged)
    if not len(candidates):
        return _empty(), 0.0
    local, right = g.tree.query(g.geom[candidates], predicate="intersects")
    left = candidates[local]
    keep = (left != right) & ((left < right) | ~flagged[right])
    left, right = left[keep], right[keep]
    area = shapely.area(shapely.intersection(g.geom[left], g.geom[right]))
    g.overlap_area = np.bincount(left, area, g.n) + np.bincount(right, area, g.n)
    hit = area > tol
    detail = [
        f"overlaps grid {g.code[j]} by {_m2(a)}" for j, a in zip(right[hit], area[hit], strict=True)
    ]
    return _rows("overlap", g.code[left[hit]], "error", detail), float(area.sum())


def _check_community_cover(
    g: _GridTable, comm: _CommunityTable, tol: float
) -> tuple[pd.DataFrame, float, float]:
    """Gaps in each community, grids outside their community or inside another one."""
    parts = [_empty()]
    own = comm.lookup.reindex(pd.Index(g.community, dtype=object)).to_numpy()
    own = np.where(pd.isna(own), -1, own).astype(np.int64)
    unknown = np.flatnonzero((own < 0) & ~g.missing)
    if len(unknown):
        detail = [
            f"its community {g.community[i]} is not in the communities layer"
            if g.community[i] is not None
            else "grid has no community code"
            for i in unknown
        ]
        parts.append(_rows("outside_community", g.code[unknown], "error", detail))

    # area of each grid inside each community it touches; exact overlays only where
    # containment in the own community does not settle it
    gi, ci = comm.tree.query(g.geom, predicate="intersects")
    grid_area = shapely.area(g.geom)
    covered = np.zeros(g.n, dtype=bool)
    known = np.flatnonzero(own >= 0)
    covered[known] = shapely.covers(comm.geom[own[known]], g.geom[known])
    comm_flag = np.zeros(len(comm.code), dtype=bool)
    if len(comm.code) > 1:
        comm_flag = ~shapely.is_empty(shapely.coverage_invalid_edges(comm.geom))
    is_own = ci == own[gi]
    inside = np.full(len(gi), np.nan)
    inside[is_own & covered[gi]] = grid_area[gi[is_own & covered[gi]]]
    settled = ~is_own & covered[gi] & ~comm_flag[ci] & ~comm_flag[np.maximum(own[gi], 0)]
    inside[settled] = 0.0
    rest = np.isnan(inside)
    inside[rest] = shapely.area(shapely.intersection(g.geom[gi[rest]], comm.geom[ci[rest]]))

    in_own = np.bincount(gi[is_own], inside[is_own], g.n)
    outside = np.where(own >= 0, np.clip(grid_area - in_own, 0.0, None), 0.0)
    outside_total = float(outside.sum())
    hit = np.flatnonzero(outside > tol)
    if len(hit):
        detail = [
            f"{_m2(outside[i])} ({100 * outside[i] / grid_area[i]:.1f}% of the grid) lies "
            f"outside its community {comm.code[own[i]]}"
            for i in hit
        ]
        parts.append(_rows("outside_community", g.code[hit], "error", detail))

    cross = np.flatnonzero(~is_own & (inside > tol))
    if len(cross):
        detail = [f"reaches {_m2(inside[k])} into community {comm.code[ci[k]]}" for k in cross]
        parts.append(_rows("crosses_community", g.code[gi[cross]], "error", detail))

    gap_rows, gap_total = _community_gaps(g, comm, gi, ci, inside, tol)
    parts.append(gap_rows)
    return _concat(parts), gap_total, outside_total


def _community_gaps(
    g: _GridTable,
    comm: _CommunityTable,
    gi: np.ndarray,
    ci: np.ndarray,
    inside: np.ndarray,
    tol: float,
) -> tuple[pd.DataFrame, float]:
    n = len(comm.code)
    # Without overlaps, gap = community area - sum of grid areas inside it. Overlaps can
    # only hide gap area, so the bound `estimate + overlap` decides which communities
    # need the exact union.
    estimate = shapely.area(comm.geom) - np.bincount(ci, inside, n)
    overlap = np.bincount(ci, g.overlap_area[gi], n)
    exact = np.flatnonzero(estimate + overlap > tol)
    total = float(np.clip(estimate, 0.0, None).sum())
    if not len(exact):
        return _empty(), total
    order = np.argsort(ci, kind="stable")
    ci_sorted, gi_sorted = ci[order], gi[order]
    starts = np.searchsorted(ci_sorted, np.arange(n + 1))
    covers = np.empty(len(exact), dtype=object)
    for j, k in enumerate(exact):  # one union per suspect community
        members = gi_sorted[starts[k] : starts[k + 1]]
        covers[j] = shapely.union_all(g.geom[members]) if len(members) else shapely.Polygon()
    gaps = shapely.difference(comm.geom[exact], covers)
    pieces, owner = shapely.get_parts(gaps, return_index=True)
    area = shapely.area(pieces)
    gap_area = np.bincount(owner, area, len(exact))
    total += float(gap_area.sum() - np.clip(estimate[exact], 0.0, None).sum())
    rows = []
    for j, k in enumerate(exact):
        if gap_area[j] <= tol:
            continue
        mine = np.flatnonzero(owner == j)
        big = mine[np.argmax(area[mine])]
        rows.append(
            f"community {comm.code[k]}: {_m2(gap_area[j])} covered by no grid in "
            f"{np.count_nonzero(area[mine] > 0)} piece(s); biggest piece {_m2(area[big])} "
            f"near {_point(shapely.point_on_surface(pieces[big]))}"
        )
    return _rows("gap", None, "error", rows), total


def _check_holes(g: _GridTable, tol: float) -> tuple[pd.DataFrame, float]:
    if not g.n:
        return _empty(), 0.0
    union = shapely.union_all(g.geom)
    polys = shapely.get_parts(union)
    polys = polys[shapely.get_type_id(polys) == _POLYGON_TYPE]
    n_holes = shapely.get_num_interior_rings(polys)
    if not n_holes.sum():
        return _empty(), 0.0
    which = np.repeat(np.arange(len(polys)), n_holes)
    ring_no = np.arange(n_holes.sum()) - np.repeat(np.cumsum(n_holes) - n_holes, n_holes)
    holes = shapely.polygons(shapely.get_interior_ring(polys[which], ring_no))
    area = shapely.area(holes)
    hit = np.flatnonzero(area > tol)
    points = shapely.point_on_surface(holes[hit])
    detail = [
        f"hole of {_m2(area[i])} covered by no grid near {_point(p)}"
        for i, p in zip(hit, points, strict=True)
    ]
    return _rows("gap", None, "error", detail), float(area.sum())


# --------------------------------------------------------------------------- households


def _recomputed(g: _GridTable, b: _BuildingTable) -> np.ndarray:
    alloc = b.alloc[b.alloc["grid"] >= 0]
    return np.bincount(alloc["grid"], weights=alloc["households"], minlength=g.n)


def _check_households(g: _GridTable, b: _BuildingTable) -> pd.DataFrame:
    parts = [_empty()]
    rec = _recomputed(g, b)
    stated = g.households
    bad = np.flatnonzero(np.isnan(stated) | (np.abs(stated - rec) > 1e-6))
    if len(bad):
        detail = [
            f"grid says {_n(stated[i])} households, its buildings hold {_n(rec[i])}"
            + ("" if np.isnan(stated[i]) else f" (difference {rec[i] - stated[i]:+,.0f})")
            for i in bad
        ]
        parts.append(_rows("households_mismatch", g.code[bad], "error", detail))

    residential = ~g.special & ~g.missing
    ranged = residential & ~np.isnan(g.range_min) & ~np.isnan(g.range_max)
    below = ranged & (rec < g.range_min)
    above = ranged & (rec > g.range_max)
    out = np.flatnonzero(below | above)
    if len(out):
        flag_sets = [frozenset(f.strip() for f in g.flags[i].split(";") if f.strip()) for i in out]
        explained = [
            bool(fs & (_EXPLAIN_BELOW if below[i] else _EXPLAIN_ABOVE))
            for i, fs in zip(out, flag_sets, strict=True)
        ]
        detail = []
        for i, fs, ok in zip(out, flag_sets, explained, strict=True):
            side = "below" if below[i] else "above"
            text = (
                f"{_n(rec[i])} households, {side} the range "
                f"{_n(g.range_min[i])}–{_n(g.range_max[i])}"
            )
            if ok:
                text += f" (flagged: {', '.join(sorted(fs))})"
            detail.append(text)
        severity = ["warning" if ok else "error" for ok in explained]
        parts.append(_rows("out_of_range", g.code[out], severity, detail))

    empty = np.flatnonzero(residential & (rec == 0))
    if len(empty):
        parts.append(
            _rows("empty_grid", g.code[empty], "warning", ["grid holds no households"] * len(empty))
        )
    return _concat(parts)


# --------------------------------------------------------------------------- buildings


def _check_building_location(
    g: _GridTable, b: _BuildingTable, comm: _CommunityTable | None = None
) -> pd.DataFrame:
    parts = [_empty()]
    no_grid = pd.isna(b.grid)
    lost = np.flatnonzero(no_grid & (b.households > 0))
    if len(lost) and comm is not None and len(comm.geom):
        # a footprint touching no community lies outside the planned area
        hit = np.unique(comm.tree.query(b.geom[lost], predicate="intersects")[0])
        away = np.setdiff1d(np.arange(len(lost)), hit)
        if len(away):
            detail = [
                f"building {b.id[lost[i]]} with {_n(b.households[lost[i]])} households lies "
                "outside every community: not planned"
                for i in away
            ]
            parts.append(_rows("outside_plan", None, "info", detail))
        lost = lost[hit]
    if len(lost):
        detail = [
            f"building {b.id[i]} with {_n(b.households[i])} households has no grid" for i in lost
        ]
        parts.append(_rows("unassigned_building", None, "error", detail))

    unknown = np.flatnonzero(~no_grid & (b.grid_row < 0))
    if len(unknown):
        detail = [
            f"building {b.id[i]} is assigned to grid {b.grid[i]}, which is not in the grids layer"
            for i in unknown
        ]
        parts.append(_rows("building_outside_grid", b.grid[unknown], "error", detail))

    has_geom = ~(shapely.is_missing(b.geom) | shapely.is_empty(b.geom))
    check = np.flatnonzero((b.grid_row >= 0) & has_geom)
    points = shapely.point_on_surface(b.geom[check])
    inside = shapely.covers(g.geom[b.grid_row[check]], points)
    fail, fail_pts = check[~inside], points[~inside]
    if len(fail) and b.is_split[fail].any():
        # a building split by units may sit in any of its parts' grids
        alloc = b.alloc[
            np.isin(b.alloc["building"], fail[b.is_split[fail]]) & (b.alloc["grid"] >= 0)
        ]
        pos = pd.Series(np.arange(len(fail)), index=fail).reindex(alloc["building"]).to_numpy()
        ok = shapely.covers(g.geom[alloc["grid"].to_numpy()], fail_pts[pos])
        rescued = np.zeros(len(fail), dtype=bool)
        rescued[pos[ok]] = True
        fail, fail_pts = fail[~rescued], fail_pts[~rescued]
    if len(fail) and comm is not None:
        # a footprint straddling a community edge belongs to the community holding most
        # of it: its point is taken on its part inside its grid's community
        own = comm.lookup.reindex(pd.Index(g.community[b.grid_row[fail]], dtype=object))
        own = np.where(pd.isna(own.to_numpy()), -1, own.to_numpy()).astype(np.int64)
        ok = own >= 0
        if ok.any():
            part = shapely.intersection(b.geom[fail[ok]], comm.geom[own[ok]])
            pts = shapely.point_on_surface(part)
            rescued = np.zeros(len(fail), dtype=bool)
            rescued[np.flatnonzero(ok)] = ~shapely.is_empty(part) & shapely.covers(
                g.geom[b.grid_row[fail[ok]]], pts
            )
            fail, fail_pts = fail[~rescued], fail_pts[~rescued]
    if len(fail):
        pi, gi = g.tree.query(fail_pts, predicate="within")
        found = pd.Series(g.code[gi], index=pi).groupby(level=0).first()
        detail = [
            f"building {b.id[i]}: its representative point {_point(p)} is outside its grid"
            + (f"; it lies in grid {found[k]}" if k in found.index else "; it lies in no grid")
            for k, (i, p) in enumerate(zip(fail, fail_pts, strict=True))
        ]
        parts.append(_rows("building_outside_grid", b.grid[fail], "error", detail))
    return _concat(parts)


def _barrier_labels(barriers: gpd.GeoDataFrame) -> np.ndarray:
    labels = pd.Series([None] * len(barriers), index=barriers.index, dtype=object)
    for col, prefix in (("name", ""), ("highway", "highway "), ("waterway", "waterway ")):
        if col in barriers.columns:
            val = barriers[col].astype(object)
            good = val.notna() & (val.astype(str).str.strip() != "") & labels.isna()
            labels[good] = prefix + val[good].astype(str)
    missing = labels.isna().to_numpy()
    labels[missing] = [f"barrier #{i}" for i in np.flatnonzero(missing)]
    return labels.to_numpy(dtype=object)


def _check_barriers(
    g: _GridTable, barriers: gpd.GeoDataFrame, tol_m: float, tol_m2: float
) -> tuple[pd.DataFrame, float]:
    labels = _barrier_labels(barriers)
    geoms = _geometry_array(barriers)
    geoms = np.where(shapely.is_missing(geoms), shapely.GeometryCollection(), geoms)
    pieces, owner = shapely.get_parts(geoms, return_index=True)
    kind = shapely.get_type_id(pieces)
    is_line = np.isin(kind, _LINE_TYPES)
    is_poly = kind == _POLYGON_TYPE
    lines, line_owner = pieces[is_line], owner[is_line]
    polys, poly_owner = pieces[is_poly], owner[is_poly]
    empty = np.array([], dtype=np.int64)
    lg, li = (
        shapely.STRtree(lines).query(g.geom, predicate="intersects")
        if len(lines)
        else (empty, empty)
    )
    pg, pi = (
        shapely.STRtree(polys).query(g.geom, predicate="intersects")
        if len(polys)
        else (empty, empty)
    )
    if len(pg):
        # a polygon barrier (water) crosses a grid only if the grid lies on both sides
        rest = shapely.difference(g.geom[pg], polys[pi])
        rest_parts, rest_owner = shapely.get_parts(rest, return_index=True)
        big = shapely.area(rest_parts) > tol_m2
        both = np.bincount(rest_owner[big], minlength=len(pg)) >= 2
        pg, pi = pg[both], pi[both]

    # shrink each touched grid once, so barriers along its boundary do not count
    touched, inverse = np.unique(np.concatenate([lg, pg]), return_inverse=True)
    inner = shapely.buffer(g.geom[touched], -_SHRINK_M, join_style="mitre")[inverse]
    line_inner, poly_inner = inner[: len(lg)], inner[len(lg) :]
    found = [
        pd.DataFrame(
            {
                "grid": lg,
                "label": labels[line_owner[li]],
                "length": shapely.length(shapely.intersection(lines[li], line_inner)),
                "note": "",
            }
        ),
        pd.DataFrame(
            {
                "grid": pg,
                "label": labels[poly_owner[pi]],
                "length": shapely.length(
                    shapely.intersection(shapely.boundary(polys[pi]), poly_inner)
                ),
                "note": " (the grid lies on both sides)",
            }
        ),
    ]
    found = [f for f in found if len(f)]
    if not found:
        return _empty(), 0.0
    frame = pd.concat(found, ignore_index=True)
    frame = frame.groupby(["grid", "label"], sort=True, as_index=False).agg(
        length=("length", "sum"), note=("note", "max")
    )
    total = float(frame["length"].sum())
    frame = frame[frame["length"] > tol_m]
    detail = [
        f"crossed by {lab} over {ln:,.1f} m{note}"
        for lab, ln, note in zip(frame["label"], frame["length"], frame["note"], strict=True)
    ]
    return _rows("barrier_crossing", g.code[frame["grid"].to_numpy()], "warning", detail), total


def _compound_of_buildings(
    b: _BuildingTable, compounds: gpd.GeoDataFrame | None
) -> np.ndarray | None:
    """Compound id of each building (None outside compounds), or None when unknown."""
    if "compound_id" in b.frame.columns and b.frame["compound_id"].notna().any():
        return b.frame["compound_id"].to_numpy(dtype=object)
    if compounds is None or not len(compounds):
        return None
    cgeom, _, _ = _polygonal(_geometry_array(compounds))
    cid = _codes(compounds["compound_id"])
    out = np.full(b.n, None, dtype=object)
    has_geom = np.flatnonzero(~(shapely.is_missing(b.geom) | shapely.is_empty(b.geom)))
    points = shapely.point_on_surface(b.geom[has_geom])
    pi, ci = shapely.STRtree(cgeom).query(points, predicate="within")
    first = pd.Series(ci, index=pi).groupby(level=0).first()
    out[has_geom[first.index.to_numpy()]] = cid[first.to_numpy()]
    return out


def _check_compounds(
    g: _GridTable, b: _BuildingTable, compounds: gpd.GeoDataFrame | None
) -> pd.DataFrame:
    compound = _compound_of_buildings(b, compounds)
    if compound is None:
        return _empty()
    compound, names = pd.factorize(compound)  # -1 for buildings outside compounds
    alloc = b.alloc[(b.alloc["building"] >= 0) & (b.alloc["grid"] >= 0)]
    alloc = alloc[(alloc["households"] > 0) & ~g.special[alloc["grid"].to_numpy()]]
    alloc = alloc.assign(compound=compound[alloc["building"].to_numpy()])
    alloc = alloc[alloc["compound"] >= 0]
    if not len(alloc):
        return _empty()
    per = alloc.groupby(["compound", "grid"], sort=False)["households"].sum().reset_index()
    n_grids = per.groupby("compound")["grid"].transform("size")
    per = per[n_grids > 1]
    if not len(per):
        return _empty()
    per = per.sort_values(["compound", "households"], ascending=[True, False])
    grid = per["grid"].to_numpy()
    per = per.assign(
        code=g.code[grid],
        rmax=g.range_max[grid],
        community=g.community[grid],
        flagged=[_SPLIT_FLAG in {f.strip() for f in g.flags[i].split(";")} for i in grid],
        text=[f"{c} ({_n(h)})" for c, h in zip(g.code[grid], per["households"], strict=True)],
    )
    agg = per.groupby("compound", sort=True).agg(
        total=("households", "sum"),
        n=("grid", "size"),
        rmax=("rmax", "max"),
        n_comm=("community", "nunique"),
        main=("code", "first"),
        flagged=("flagged", "any"),
        listing=("text", ", ".join),
    )
    fits = (agg["total"] <= agg["rmax"]) & (agg["n_comm"] <= 1)
    detail = []
    for cid, row, fit in zip(agg.index, agg.itertuples(), fits, strict=True):
        text = f"compound {names[cid]} ({_n(row.total)} households) is spread over {row.n} grids: {row.listing}"
        if fit:
            text += f"; it would fit in one grid (max {_n(row.rmax)})"
            if row.flagged:
                text += f" (flagged: {_SPLIT_FLAG})"
        elif row.n_comm > 1:
            text += f"; it spans {row.n_comm} communities"
        else:
            text += f"; it is larger than one grid (max {_n(row.rmax)})"
        detail.append(text)
    severity = np.where(fits, np.where(agg["flagged"], "warning", "error"), "info")
    return _rows("split_compound", agg["main"].to_numpy(), severity, detail)


def _check_splits(b: _BuildingTable, splits: pd.DataFrame) -> pd.DataFrame:
    if not len(splits):
        return _empty()
    s = pd.DataFrame(
        {
            "building": _codes(splits["building_id"]),
            "row": b.split_row,
            "part": splits["part"].to_numpy(),
            "u0": pd.to_numeric(splits["unit_from"], errors="coerce").to_numpy(float),
            "u1": pd.to_numeric(splits["unit_to"], errors="coerce").to_numpy(float),
            "hh": pd.to_numeric(splits["households"], errors="coerce").fillna(0).to_numpy(float),
        }
    ).sort_values(["building", "u0", "u1"], kind="stable")
    problems: dict[str, list[str]] = {}

    def add(ids: Iterable[str], texts: Iterable[str]) -> None:
        for i, t in zip(ids, texts, strict=True):
            problems.setdefault(i, []).append(t)

    unknown = s[s["row"] < 0]["building"].unique()
    add(unknown, ["the building is not in the buildings layer"] * len(unknown))

    per = s.groupby("building", sort=False).agg(
        row=("row", "first"), hh=("hh", "sum"), first=("u0", "first"), last=("u1", "max")
    )
    per = per[per["row"] >= 0]
    b_hh = b.households[per["row"].to_numpy()]
    wrong = np.abs(per["hh"].to_numpy() - b_hh) > 1e-6
    add(
        per.index[wrong],
        [
            f"split parts hold {_n(p)} households but the building has {_n(h)}"
            for p, h in zip(per["hh"].to_numpy()[wrong], b_hh[wrong], strict=True)
        ],
    )

    bad_range = s["u0"].isna() | s["u1"].isna() | (s["u0"] > s["u1"])
    add(
        s.loc[bad_range, "building"],
        [
            f"part {p} has an invalid unit range {_n(a)}–{_n(z)}"
            for p, a, z in zip(
                s.loc[bad_range, "part"],
                s.loc[bad_range, "u0"],
                s.loc[bad_range, "u1"],
                strict=True,
            )
        ],
    )
    start = per["first"] > 1
    add(per.index[start], [f"units 1–{_n(f - 1)} are in no part" for f in per.loc[start, "first"]])

    prev_end = s.groupby("building", sort=False)["u1"].shift()
    prev_end = prev_end.groupby(s["building"]).cummax()
    prev_part = s.groupby("building", sort=False)["part"].shift()
    overlap = s["u0"] <= prev_end
    skip = s["u0"] > prev_end + 1
    add(
        s.loc[overlap, "building"],
        [
            f"part {p} (units {_n(a)}–{_n(z)}) overlaps part {q}"
            for p, a, z, q in zip(
                s.loc[overlap, "part"],
                s.loc[overlap, "u0"],
                s.loc[overlap, "u1"],
                prev_part[overlap],
                strict=True,
            )
        ],
    )
    add(
        s.loc[skip, "building"],
        [
            f"units {_n(e + 1)}–{_n(a - 1)} are in no part"
            for e, a in zip(prev_end[skip], s.loc[skip, "u0"], strict=True)
        ],
    )

    if "units" in b.frame.columns:
        units = pd.to_numeric(b.frame["units"], errors="coerce").to_numpy(float)[
            per["row"].to_numpy()
        ]
        known = ~np.isnan(units) & (units > 0)
        short = known & (per["last"].to_numpy() < units)
        over = known & (per["last"].to_numpy() > units)
        add(
            per.index[short],
            [
                f"units {_n(e + 1)}–{_n(u)} are in no part"
                for e, u in zip(per["last"].to_numpy()[short], units[short], strict=True)
            ],
        )
        add(
            per.index[over],
            [
                f"parts reach unit {_n(e)} but the building has {_n(u)} units"
                for e, u in zip(per["last"].to_numpy()[over], units[over], strict=True)
            ],
        )

    if not problems:
        return _empty()
    ids = sorted(problems)
    rows = b.rows(np.array(ids, dtype=object))
    codes = [b.grid[r] if r >= 0 else None for r in rows]
    detail = [f"building {i}: " + "; ".join(problems[i]) for i in ids]
    return _rows("split_building", codes, "error", detail)
