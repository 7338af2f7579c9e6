"""Read event reports (step 1): normalise columns, values and times; keep rejects.

:func:`read_events` reads a report file (CSV/XLSX with Chinese or English headers,
GeoJSON, GeoPackage, ...) or a table, normalises columns, categories, sources, statuses
and times, and puts every row it cannot use in a rejects table (:func:`rejects_of`)
with its row number and the reason. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from ..crs import WGS84
from ..errors import CRSError, GridmapError, InputError, SchemaError
from .assign import attach_codes, grids_key, grids_of, locate
from .schema import (
    CANONICAL_COLUMNS,
    CATEGORY_VALUES,
    EVENT_COLUMNS,
    MISSING_STRINGS,
    REJECT_REASONS,
    SOURCE_VALUES,
    STATUS_VALUES,
    TIME_COLUMNS,
    norm_key,
)
from .times import log_zone, parse_times, pick_zone

logger = logging.getLogger("gridmap")

__all__ = ["EventRejects", "read_events", "rejects_of"]

_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}


# ---------------------------------------------------------------------------
# rejects holder
# ---------------------------------------------------------------------------


class EventRejects(dict):
    """Rows of an event source that :func:`read_events` did not accept.

    It rides along with the accepted events in ``events.attrs["rejects"]``. As a dict
    it holds the read summary (JSON-friendly, so GeoParquet export of the events keeps
    working); the rejected rows are in :attr:`table`. Use :func:`rejects_of` to get
    them.

    It is treated as immutable and compares by identity: pandas deep-copies ``attrs``
    on every operation and compares them in ``pd.concat``; a DataFrame stored there
    directly would be copied each time and make ``pd.concat`` of two event tables fail.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per rejected source row: ``row``, ``reason``, ``detail`` and the
        original values of that row under their original column names.
    summary : dict
        The read summary (the dict itself): ``source``, ``rows``, ``accepted``,
        ``rejected``, ``rejects_by_reason``, ``unknown_categories``,
        ``unknown_sources``, ``unknown_statuses``, ``duplicate_ids``,
        ``closed_without_time``, ``unknown_status``, ``columns`` (source header ->
        canonical name), ``crs``, ``tz`` (zone of naive times), ``tz_origin``
        (``given``, ``location`` or ``default``), ``naive_times``, ``row_numbering``.
    """

    __slots__ = ("table",)

    def __init__(self, table: pd.DataFrame, summary: Mapping[str, Any]):
        super().__init__(summary)
        self.table = table

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict) -> EventRejects:
        return self

    def __copy__(self) -> EventRejects:
        return self

    def __reduce__(self) -> tuple:
        return (EventRejects, (self.table, dict(self)))

    def __repr__(self) -> str:
        return f"EventRejects({len(self.table)} rows: {self.get('rejects_by_reason', {})})"


def rejects_of(events: pd.DataFrame) -> pd.DataFrame:
    """Return the rejected rows of an event table read by :func:`read_events`.

    Parameters
    ----------
    events : pandas.DataFrame or geopandas.GeoDataFrame
        Accepted events as returned by :func:`read_events` (or a subset of them).

    Returns
    -------
    pandas.DataFrame
        Columns ``row``, ``reason``, ``detail`` followed by the original values of the
        row. ``row`` is the spreadsheet row number for CSV/XLSX sources (the header is
        row 1, so the first record is row 2) and the 1-based feature/row position for
        GeoJSON, GeoPackage and in-memory tables. Empty when nothing was rejected or
        `events` did not come from :func:`read_events`.
    """
    holder = events.attrs.get("rejects")
    if isinstance(holder, EventRejects):
        return holder.table.copy()
    return pd.DataFrame({"row": pd.Series(dtype="int64"), "reason": [], "detail": []})


# ---------------------------------------------------------------------------
# read_events
# ---------------------------------------------------------------------------


def read_events(
    source: str | os.PathLike | pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    crs: Any = None,
    plan: Any = None,
    tz: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read event reports and normalise them; keep the unusable rows as rejects.

    Parameters
    ----------
    source : path-like, pandas.DataFrame or geopandas.GeoDataFrame
        A CSV/TXT/TSV (UTF-8 or GB18030), XLSX, GeoJSON, GeoPackage, Shapefile,
        FlatGeobuf or (Geo)Parquet file, or a table. Tables without geometry need
        ``lon``/``lat`` (经度/纬度, longitude/latitude, lng) or ``x``/``y`` columns.
    columns : mapping, optional
        Source header -> canonical name (``event_id``, ``reported_at``, ``category``,
        ``source``, ``status``, ``deadline``, ``closed_at``, ``lon``, ``lat``, ``x``,
        ``y``), applied before :data:`EVENT_COLUMNS`.
    crs : optional
        CRS of ``x``/``y`` columns (or of a GeoDataFrame without one). ``lon``/``lat``
        columns are taken as WGS84 unless `crs` says otherwise. ``x``/``y`` without a
        `crs` are taken as WGS84 if they look like longitude/latitude, else
        :class:`~gridmap.errors.CRSError`. GCJ-02 / BD-09 ("火星坐标") are not CRSs and
        must be converted to WGS84 before.
    plan : Plan, GeoDataFrame or path, optional
        When given, events outside every grid are rejected (``outside_plan``) and the
        accepted events carry ``grid_code``/``community_code``/``street_code``.
    tz : str, optional
        Time zone (IANA name) of times written without a UTC offset. Default: the zone
        of the events' location (:func:`~gridmap.events.times.zone_of`: China
        Asia/Shanghai, Jakarta Asia/Jakarta, Lyon Europe/Paris, ...), else
        Asia/Shanghai. The zone used and the number of times read in it are logged at
        WARNING. Times with an offset keep it. All times are returned converted to this
        zone.
    layer : str, optional
        Layer of a multi-layer file (default: ``events`` if present, else the only one).

    Returns
    -------
    geopandas.GeoDataFrame
        The accepted events, one row per report, in the source CRS (EPSG:4326 for
        lon/lat): ``event_id`` (str; ``E0000002``-style from the row when missing),
        ``reported_at``, ``deadline``, ``closed_at`` (tz-aware), ``category`` (code for
        the seven categories, otherwise the value as given), ``source``
        (``grid_worker``/``resident``/as given), ``status`` (a step of
        :data:`~gridmap.events.schema.STEPS`, ``open``, ``cancelled``, ``unknown`` or
        as given: a missing status is ``closed`` when the row has a closing time, else
        ``unknown``, neither open nor closed), the other source columns unchanged, ``lon``/``lat``
        (WGS84), ``row`` (see :func:`rejects_of`) and ``geometry``. Missing optional
        columns are NA. ``events.attrs["rejects"]`` holds an :class:`EventRejects`
        (table + read summary); use :func:`rejects_of`.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, or a file without data rows.
    SchemaError
        No time column or no coordinates; bad `columns` mapping.
    CRSError
        Projected ``x``/``y`` without `crs`, or a GeoDataFrame without a CRS.

    Notes
    -----
    Times: ISO 8601 (with or without offset), ``2025/3/1 8:00``, ``2025年3月1日 08:00``,
    ``2025.3.1``. A deadline written as a date only means the end of that day
    (23:59:59); a deadline written as a duration (``3天``, ``72小时``, ``48h``) counts
    from ``reported_at``. A deadline or closing time that is present but unparseable is
    rejected (``bad_time``) rather than read as missing.

    Rows are checked in the order of :data:`REJECT_REASONS`; a row gets the first
    reason that applies. The counts per reason are logged at WARNING.
    """
    raw, name, header_rows, src_crs = _read_source(source, layer=layer, crs=crs)
    if len(raw) == 0:
        raise InputError("no events: the table has no data rows", source=name)
    raw = raw.reset_index(drop=True)
    rows = np.arange(1, len(raw) + 1, dtype=np.int64) + header_rows
    mapping = _map_columns(list(raw.columns), columns, name, geometry=_geometry_name(raw))
    canon = {canonical: src for src, canonical in mapping.items()}
    _require_columns(raw, canon, name)

    # -- coordinates --------------------------------------------------------
    x, y, coord_crs, bad_coord, coord_detail = _coordinates(raw, canon, src_crs, name)
    lon, lat = _to_lonlat(x, y, coord_crs)
    out_of_range = ~(np.isfinite(lon) & np.isfinite(lat))
    with np.errstate(invalid="ignore"):
        out_of_range |= (np.abs(lon) > 180) | (np.abs(lat) > 90)
        null_island = (lon == 0) & (lat == 0)
    fresh = ~bad_coord & out_of_range
    coord_detail = np.where(fresh, "coordinate out of longitude/latitude range", coord_detail)
    bad_coord |= out_of_range
    coord_detail = np.where(~bad_coord & null_island, "coordinate is (0, 0)", coord_detail)
    bad_coord |= null_island

    # -- times ----------------------------------------------------------------
    tz, tz_origin = pick_zone(tz, lon[~bad_coord], lat[~bad_coord], name)
    times: dict[str, pd.Series] = {}
    naive_times = 0
    all_times = 0
    bad_time = np.zeros(len(raw), dtype=bool)
    time_detail = np.full(len(raw), "", dtype=object)
    for col in TIME_COLUMNS:
        if col not in canon:
            times[col] = pd.Series(pd.NaT, index=raw.index, dtype=f"datetime64[us, {tz}]")
            continue
        parsed, bad, missing, text, naive = parse_times(
            raw[canon[col]],
            tz,
            end_of_day=(col == "deadline"),
            base=times["reported_at"] if col == "deadline" else None,
        )
        naive_times += int(naive.sum())
        all_times += int((~missing).sum())
        if col == "reported_at":
            bad = bad | missing
        new = bad & ~bad_time
        if new.any():
            shown = text[new].fillna("").astype(str).str.slice(0, 40).to_numpy(dtype=object)
            time_detail[new] = np.where(
                missing[new] if col == "reported_at" else False,
                f"{canon[col]} ({col}) is empty",
                f"{canon[col]} ({col}): cannot parse '" + shown + "'",
            )
        bad_time |= bad
        times[col] = parsed
    rep_v = times["reported_at"]
    closed_before = (times["closed_at"] < rep_v).fillna(False).to_numpy(dtype=bool)

    # -- reasons in order -----------------------------------------------------
    reason = np.full(len(raw), "", dtype=object)
    detail = np.full(len(raw), "", dtype=object)
    _set_reason(reason, detail, bad_coord, "bad_coordinate", coord_detail)
    _set_reason(reason, detail, bad_time, "bad_time", time_detail)
    _set_reason(reason, detail, closed_before, "closed_before_report", "closed_at < reported_at")

    assigned = None
    if plan is not None:
        grids = grids_of(plan)
        ok = reason == ""
        gidx = np.full(len(raw), -1, dtype=np.int64)
        gidx[ok] = locate(grids, x[ok], y[ok], coord_crs)
        _set_reason(reason, detail, ok & (gidx < 0), "outside_plan", "outside every grid")
        assigned = (grids, gidx)

    keep = reason == ""
    summary: dict[str, Any] = {
        "source": name,
        "rows": len(raw),
        "accepted": int(keep.sum()),
        "rejected": int((~keep).sum()),
        "rejects_by_reason": {
            r: int(n) for r in REJECT_REASONS if (n := int((reason == r).sum())) > 0
        },
        "columns": dict(mapping),
        "crs": coord_crs.to_string(),
        "tz": tz,
        "tz_origin": tz_origin,
        "naive_times": naive_times,
        "row_numbering": "spreadsheet row (header = row 1)"
        if header_rows
        else "1-based row/feature position",
    }

    # -- rejects table --------------------------------------------------------
    rejects = _rejects_table(raw, rows, reason, detail, keep)

    # -- accepted events ------------------------------------------------------
    events, unknown = _build_events(
        raw, canon, mapping, keep, rows, times, lon, lat, x, y, coord_crs
    )
    summary.update(unknown)
    summary["duplicate_ids"] = int(events["event_id"].duplicated().sum())
    no_time = (events["status"] == "closed").fillna(False) & events["closed_at"].isna()
    summary["closed_without_time"] = int(no_time.sum())
    summary["unknown_status"] = int((events["status"] == "unknown").sum())
    if assigned is not None:
        grids, gidx = assigned
        events = attach_codes(events, grids, gidx[keep])
        events.attrs["assigned_to"] = grids_key(grids)
    events.attrs["rejects"] = EventRejects(rejects, summary)
    _log_read(summary)
    log_zone(name, tz, tz_origin, naive_times, all_times)
    return events


def _set_reason(
    reason: np.ndarray, detail: np.ndarray, mask: np.ndarray, code: str, text: Any
) -> None:
    """Give `code` to rows in `mask` that have no reason yet (first reason wins)."""
    new = mask & (reason == "")
    if not new.any():
        return
    reason[new] = code
    detail[new] = text[new] if isinstance(text, np.ndarray) else text


def _log_read(summary: dict[str, Any]) -> None:
    logger.info(
        "%s: read %d event rows, %d accepted, %d rejected",
        summary["source"],
        summary["rows"],
        summary["accepted"],
        summary["rejected"],
    )
    if summary["rejected"]:
        per = ", ".join(f"{k} {v}" for k, v in summary["rejects_by_reason"].items())
        logger.warning(
            "%s: %d of %d event rows rejected (%s); see gridmap.events.rejects_of(events)",
            summary["source"],
            summary["rejected"],
            summary["rows"],
            per,
        )
    for key, what in (
        ("unknown_categories", "categories"),
        ("unknown_sources", "sources"),
        ("unknown_statuses", "statuses"),
    ):
        if summary.get(key):
            top = sorted(summary[key].items(), key=lambda kv: -kv[1])[:5]
            logger.info(
                "%s: %d events with unknown %s kept as given: %s",
                summary["source"],
                sum(summary[key].values()),
                what,
                ", ".join(f"{k!r} {v}" for k, v in top),
            )
    if summary.get("duplicate_ids"):
        logger.warning(
            "%s: %d events repeat an event_id already seen",
            summary["source"],
            summary["duplicate_ids"],
        )
    if summary.get("unknown_status"):
        logger.warning(
            "%s: %d events have no status (and no closing time): counted as 'unknown', "
            "neither open nor closed, and left out of on-time and overdue figures",
            summary["source"],
            summary["unknown_status"],
        )
    if summary.get("closed_without_time"):
        logger.warning(
            "%s: %d events are closed without a closing time; they count as closed "
            "but never as closed on time",
            summary["source"],
            summary["closed_without_time"],
        )


def _read_source(
    source: Any, *, layer: str | None, crs: Any
) -> tuple[pd.DataFrame, str, int, CRS | None]:
    """Load `source` as a (Geo)DataFrame of raw values.

    Returns the table, a name for messages, the number of header rows before the first
    record (1 for CSV/XLSX, else 0) and the CRS of its geometry or coordinate columns
    (`crs` for tables; None when unknown).
    """
    user_crs = CRS.from_user_input(crs) if crs is not None else None
    if isinstance(source, gpd.GeoDataFrame):
        gcrs = source.crs if source.crs is not None else crs
        if gcrs is None and source.geometry.notna().any():
            raise CRSError(
                "events GeoDataFrame has no CRS; set one or pass crs=", source="GeoDataFrame"
            )
        return source, "GeoDataFrame", 0, CRS.from_user_input(gcrs) if gcrs else None
    if isinstance(source, pd.DataFrame):
        if (
            "geometry" in source.columns
            and source["geometry"].map(lambda g: isinstance(g, shapely.Geometry)).any()
        ):
            if crs is None:
                raise CRSError("events table has geometries but no crs=", source="DataFrame")
            return (
                gpd.GeoDataFrame(source, geometry="geometry", crs=crs),
                "DataFrame",
                0,
                CRS.from_user_input(crs),
            )
        return source, "DataFrame", 0, user_crs
    if not isinstance(source, str | os.PathLike):
        raise InputError(
            f"cannot read events from a {type(source).__name__}; pass a path or a table",
            source=repr(source)[:80],
        )
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise InputError("file not found", source=name)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError("file is empty", source=name)
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return _read_csv(path), name, 1, user_crs
    if suffix in _EXCEL_SUFFIXES:
        try:
            table = pd.read_excel(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl/xlrd raise many kinds
            raise InputError(f"cannot read spreadsheet: {exc}", source=name) from exc
        return table, name, 1, user_crs
    table = _read_vector(path, layer, crs)
    return table, name, 0, CRS.from_user_input(table.crs) if table.crs is not None else None


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV as strings (exact original values), UTF-8 or GB18030."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    encoding = "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is fine
        if exc.start < len(head) - 4:
            encoding = "gb18030"
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    kw: dict[str, Any] = dict(dtype=str, keep_default_na=False, encoding=encoding, sep=sep)
    try:
        table = pd.read_csv(path, engine="pyarrow", **kw)
    except Exception:
        try:
            table = pd.read_csv(path, **kw)
        except pd.errors.EmptyDataError as exc:
            raise InputError("file is empty", source=str(path)) from exc
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot parse CSV: {exc}", source=str(path)) from exc
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _read_vector(path: Path, layer: str | None, crs: Any) -> gpd.GeoDataFrame:
    import pyogrio

    name = str(path)
    try:
        if layer is None:
            layers = [str(row[0]) for row in pyogrio.list_layers(path)]
            if "events" in layers:
                layer = "events"
            elif len(layers) > 1:
                raise InputError(f"file has several layers {layers}; pass layer=", source=name)
        table = gpd.read_file(path, layer=layer, datetime_as_string=True)
    except GridmapError:
        raise
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise InputError(f"cannot read: {exc}", source=name) from exc
    if table.crs is None and crs is not None:
        table = table.set_crs(crs)
    if table.crs is None and table.geometry.notna().any():
        raise CRSError("layer has no CRS; pass crs=", source=name)
    return table


def _geometry_name(table: pd.DataFrame) -> str | None:
    if isinstance(table, gpd.GeoDataFrame) and table.geometry.notna().any():
        return table.geometry.name
    return None


def _map_columns(
    cols: list[str],
    columns: Mapping[str, str] | None,
    name: str,
    *,
    geometry: str | None,
) -> dict[str, str]:
    """Map source headers to canonical names; the first header for a name wins."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    if columns:
        for src, canonical in columns.items():
            if canonical not in CANONICAL_COLUMNS:
                raise SchemaError(
                    f"columns= maps {src!r} to unknown name {canonical!r}; "
                    f"use one of {list(CANONICAL_COLUMNS)}",
                    source=name,
                )
            if src not in cols:
                raise SchemaError(
                    f"columns= names column {src!r}, which is not in the source; "
                    f"available columns: {cols}",
                    source=name,
                )
            mapping[src] = canonical
            taken.add(canonical)
    aliases = {norm_key(k): v for k, v in EVENT_COLUMNS.items()}
    # exact canonical names first, then aliases in column order
    for exact in (True, False):
        for col in cols:
            if col in mapping or col == geometry:
                continue
            key = norm_key(col)
            canonical = aliases.get(key)
            if canonical is None or canonical in taken or (exact and key != canonical):
                continue
            mapping[col] = canonical
            taken.add(canonical)
    return mapping


def _require_columns(raw: pd.DataFrame, canon: dict[str, str], name: str) -> None:
    missing = []
    if "reported_at" not in canon:
        missing.append("report time (上报时间 / reported_at / datetime / time / timestamp)")
    has_geom = _geometry_name(raw) is not None
    if not has_geom and not ({"lon", "lat"} <= canon.keys() or {"x", "y"} <= canon.keys()):
        missing.append("coordinates (经度+纬度 / lon+lat / longitude+latitude / x+y)")
    if missing:
        cols = [
            c for c in raw.columns if not (isinstance(raw, gpd.GeoDataFrame) and c == "geometry")
        ]
        raise SchemaError(
            f"missing required column(s): {'; '.join(missing)}; available columns: {cols}",
            source=name,
        )


def _coordinates(
    raw: pd.DataFrame, canon: dict[str, str], src_crs: CRS | None, name: str
) -> tuple[np.ndarray, np.ndarray, CRS, np.ndarray, np.ndarray]:
    """Return x, y in `crs`, the CRS, a bad-coordinate mask and details."""
    n = len(raw)
    detail = np.full(n, "", dtype=object)
    geom_col = _geometry_name(raw)
    if geom_col is not None:
        geoms = raw.geometry.to_numpy()
        missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        is_point = shapely.get_type_id(geoms) == 0
        bad = missing | ~is_point
        x = np.where(is_point, shapely.get_x(np.where(is_point, geoms, None)), np.nan)
        y = np.where(is_point, shapely.get_y(np.where(is_point, geoms, None)), np.nan)
        detail[missing] = "geometry missing or empty"
        other = ~missing & ~is_point
        if other.any():
            detail[other] = np.array(
                [f"geometry is not a point ({t})" for t in shapely.get_type_id(geoms[other])],
                dtype=object,
            )
        return x.astype(float), y.astype(float), src_crs, bad, detail

    if {"lon", "lat"} <= canon.keys():
        xs, ys = raw[canon["lon"]], raw[canon["lat"]]
        crs = CRS.from_user_input(src_crs) if src_crs is not None else WGS84
        label = f"{canon['lon']}/{canon['lat']}"
    else:
        xs, ys = raw[canon["x"]], raw[canon["y"]]
        crs = src_crs
        label = f"{canon['x']}/{canon['y']}"
    x = _to_float(xs)
    y = _to_float(ys)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        shown_x = xs[bad].astype(str).fillna("").str.slice(0, 20).to_numpy(dtype=object)
        shown_y = ys[bad].astype(str).fillna("").str.slice(0, 20).to_numpy(dtype=object)
        detail[bad] = f"{label} missing or not numeric: '" + shown_x + "', '" + shown_y + "'"
    if crs is None:
        ok = ~bad
        with np.errstate(invalid="ignore"):
            lonlat = (np.abs(x[ok]) <= 180) & (np.abs(y[ok]) <= 90)
        if ok.any() and lonlat.mean() < 0.5:
            raise CRSError(
                f"columns {label} hold projected coordinates but no crs= was given",
                source=name,
            )
        logger.warning("%s: %s taken as WGS84 longitude/latitude (pass crs= if not)", name, label)
        crs = WGS84
    return x, y, crs, bad, detail


def _to_float(values: pd.Series) -> np.ndarray:
    """Numbers from a column of text; NaN where empty or not a number."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    import pyarrow as pa
    import pyarrow.compute as pc

    try:  # fast path: pyarrow parses clean text in C++
        arr = pc.utf8_trim_whitespace(pa.array(values.astype("str").array))
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
        return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _to_lonlat(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    if CRS.from_user_input(crs) == WGS84:
        return x.copy(), y.copy()
    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)
    with np.errstate(invalid="ignore"):
        lon, lat = transformer.transform(x, y, errcheck=False)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _rejects_table(
    raw: pd.DataFrame, rows: np.ndarray, reason: np.ndarray, detail: np.ndarray, keep: np.ndarray
) -> pd.DataFrame:
    bad = ~keep
    original = pd.DataFrame(raw[bad]).copy()
    if isinstance(raw, gpd.GeoDataFrame):
        gname = raw.geometry.name
        geoms = raw.geometry.to_numpy()[bad]
        original = pd.DataFrame(original.drop(columns=[gname]))
        original["geometry_wkt"] = shapely.to_wkt(geoms, rounding_precision=7)
    original = original.reset_index(drop=True)
    head = pd.DataFrame(
        {
            "row": rows[bad],
            "reason": pd.array(reason[bad], dtype="str"),
            "detail": pd.array(detail[bad], dtype="str"),
        }
    )
    clash = [c for c in original.columns if c in head.columns]
    original = original.rename(columns={c: f"{c}_source" for c in clash})
    return pd.concat([head, original], axis=1)


def _build_events(
    raw: pd.DataFrame,
    canon: dict[str, str],
    mapping: dict[str, str],
    keep: np.ndarray,
    rows: np.ndarray,
    times: dict[str, pd.Series],
    lon: np.ndarray,
    lat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    crs: CRS,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Assemble the accepted events; only the columns still needed are subset."""
    gname = raw.geometry.name if isinstance(raw, gpd.GeoDataFrame) else None
    all_kept = bool(keep.all())

    def subset(values: pd.Series) -> pd.Series:
        out = values if all_kept else values[keep]
        return out.reset_index(drop=True)

    kept_rows = rows[keep]
    n = len(kept_rows)
    data: dict[str, Any] = {}
    if "event_id" in canon:
        ids = subset(raw[canon["event_id"]]).astype("str").str.strip()
        no_id = (ids.isna() | ids.isin(MISSING_STRINGS)).to_numpy(dtype=bool)
    else:
        ids = pd.Series(pd.NA, index=range(n), dtype="str")
        no_id = np.ones(n, dtype=bool)
    if no_id.any():  # generated from the row number: stable and traceable
        made = "E" + pd.Series(kept_rows[no_id], dtype="int64").astype("str").str.zfill(7)
        ids = ids.copy()
        ids.iloc[np.flatnonzero(no_id)] = made.to_numpy()
    data["event_id"] = ids
    data["reported_at"] = subset(times["reported_at"])
    unknown: dict[str, Any] = {}
    for col, table, key in (
        ("category", CATEGORY_VALUES, "unknown_categories"),
        ("source", SOURCE_VALUES, "unknown_sources"),
        ("status", STATUS_VALUES, "unknown_statuses"),
    ):
        if col in canon:
            data[col], unknown[key] = _map_values(raw[canon[col]], table, keep)
        else:
            data[col], unknown[key] = pd.Series(pd.NA, index=range(n), dtype="str"), {}
    data["deadline"] = subset(times["deadline"])
    data["closed_at"] = subset(times["closed_at"])
    # a missing status is unknown: closed when a closing time says so
    no_status = data["status"].isna()
    if no_status.any():
        has_close = data["closed_at"].notna()
        data["status"] = data["status"].mask(no_status & has_close, "closed")
        data["status"] = data["status"].mask(no_status & ~has_close, "unknown")
    events = pd.DataFrame(data)
    for col in raw.columns:
        if col in mapping or col == gname or col in events.columns:
            continue
        name = f"{col}_source" if col in ("lon", "lat", "row", "x", "y", "geometry") else col
        events[name] = subset(raw[col]).to_numpy()
    events["lon"] = lon[keep]
    events["lat"] = lat[keep]
    if CRS.from_user_input(crs) != WGS84:
        events["x"] = x[keep]
        events["y"] = y[keep]
    events["row"] = kept_rows
    geometry = shapely.points(x[keep], y[keep]) if n else np.array([], dtype=object)
    return gpd.GeoDataFrame(events, geometry=geometry, crs=crs), unknown


def _map_values(
    values: pd.Series, table: Mapping[str, str], keep: np.ndarray
) -> tuple[pd.Series, dict[str, int]]:
    """Map the kept raw values through `table` (on normalised keys).

    Unknown values are kept as given (stripped) and counted. The column is factorised
    once, so stripping and mapping run over the distinct values only.
    """
    codes, uniques = pd.factorize(values)
    codes = codes[keep]
    labels = [str(u).strip() for u in uniques]
    lookup = {norm_key(k): v for k, v in table.items()}
    missing = set(MISSING_STRINGS)
    mapped: list[str | None] = []
    unknown_of: list[str | None] = []
    for label in labels:
        if label in missing:
            mapped.append(None)
            unknown_of.append(None)
            continue
        code = lookup.get(norm_key(label))
        mapped.append(code if code is not None else label)
        unknown_of.append(None if code is not None else label)
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    unknown: dict[str, int] = {}
    for label, n in zip(unknown_of, counts, strict=True):
        if label is not None and n:
            unknown[label] = unknown.get(label, 0) + int(n)
    present = [m for m in mapped if m is not None]
    cats = np.unique(np.array(present, dtype=object).astype(str)) if present else np.array([])
    lut = np.array(
        [-1 if m is None else int(np.searchsorted(cats, m)) for m in mapped] + [-1],
        dtype=np.int64,
    )
    new_codes = lut[np.where(codes >= 0, codes, len(mapped))]
    result = pd.Series(
        pd.Categorical.from_codes(new_codes, categories=pd.Index(cats, dtype=object))
    ).astype("str")
    return result, unknown
