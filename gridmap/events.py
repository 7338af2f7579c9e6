"""Events (事件): ingest reports, per-grid rates and closure KPIs, heat maps, hot spots.

Grid workers (网格员) report events from their phones and residents report them through
"随手拍" (snap-and-report). This module turns such reports into figures a street or
community office uses:

* :func:`read_events` reads a report file (CSV/XLSX with Chinese or English headers,
  GeoJSON, GeoPackage, ...) or a table, normalises columns, categories, sources, statuses
  and times, and puts every row it cannot use in a rejects table (:func:`rejects_of`)
  with its row number and the reason. Nothing is dropped silently.
* :func:`assign_events` attaches each event to exactly one grid.
* :func:`event_stats` gives per-grid counts, events per 100 households, closure KPIs
  (on-time rate, open, overdue, median handling hours), rolled up to communities and
  streets, optionally per month or week.
* :func:`hotspots` finds hot and cold grids with Getis-Ord Gi*.
* :func:`event_map` draws heat maps (static and by month/week), a choropleth and the
  hot-spot grids on a folium map; :func:`write_event_outputs` writes all of it to a folder.

KPI definitions (evaluated "as of" a time ``now``)
--------------------------------------------------
closed
    ``closed_at`` is set and ``closed_at <= now``; or ``closed_at`` is missing and the
    status is ``closed`` (closed at an unknown time: it counts as closed, but never as
    closed on time).
cancelled
    status ``cancelled`` (撤销/作废) and not closed. Cancelled events count in
    ``events`` but are neither open nor due.
open
    neither closed nor cancelled at ``now`` (an event closed after ``now`` is open).
due
    the event has a deadline and either it is closed or its deadline has passed
    (``deadline <= now``). Events without a deadline cannot be judged and are counted
    in ``no_deadline`` instead.
closed_on_time
    due, closed, and ``closed_at <= deadline``.
on_time_rate
    ``closed_on_time / due``; NaN when nothing is due.
overdue
    open, with ``deadline < now``.
median_handling_hours
    median of ``closed_at - reported_at`` in hours over events closed by ``now``.

``now`` defaults to ``end`` when a window end is given, else to the latest
``reported_at`` or ``closed_at`` in the data (the moment the extract was taken).
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from .crs import WGS84, to_metric, to_wgs84
from .errors import CRSError, GridmapError, InputError, SchemaError
from .io import write_table

logger = logging.getLogger("gridmap")

__all__ = [
    "CATEGORIES",
    "CATEGORY_VALUES",
    "DEFAULT_TZ",
    "EVENT_COLUMNS",
    "REJECT_REASONS",
    "SOURCES",
    "SOURCE_VALUES",
    "STATUS_VALUES",
    "EventRejects",
    "EventStats",
    "assign_events",
    "event_map",
    "event_stats",
    "hotspots",
    "read_events",
    "rejects_of",
    "write_event_outputs",
]

#: Time zone given to times without an offset (China Standard Time, no DST).
DEFAULT_TZ = "Asia/Shanghai"

#: Header (any case; spaces and hyphens count as ``_``) -> canonical event column.
#: Extend it at run time (``EVENT_COLUMNS["受理时间"] = "reported_at"``) or pass
#: ``columns=`` to :func:`read_events`.
EVENT_COLUMNS: dict[str, str] = {
    # event_id
    "event_id": "event_id",
    "事件编号": "event_id",
    "事件id": "event_id",
    "事件编码": "event_id",
    "工单号": "event_id",
    "工单编号": "event_id",
    "编号": "event_id",
    "id": "event_id",
    "eventid": "event_id",
    "case_id": "event_id",
    "ticket_id": "event_id",
    # reported_at
    "reported_at": "reported_at",
    "上报时间": "reported_at",
    "发现时间": "reported_at",
    "登记时间": "reported_at",
    "时间": "reported_at",
    "datetime": "reported_at",
    "date_time": "reported_at",
    "time": "reported_at",
    "timestamp": "reported_at",
    "report_time": "reported_at",
    "reported": "reported_at",
    "created_at": "reported_at",
    # category
    "category": "category",
    "事件类型": "category",
    "事件类别": "category",
    "事项类型": "category",
    "类型": "category",
    "类别": "category",
    "type": "category",
    "event_type": "category",
    # source
    "source": "source",
    "来源": "source",
    "事件来源": "source",
    "上报来源": "source",
    "上报渠道": "source",
    "channel": "source",
    # status
    "status": "status",
    "状态": "status",
    "办理状态": "status",
    "办结状态": "status",
    "state": "status",
    # deadline
    "deadline": "deadline",
    "办结时限": "deadline",
    "办理时限": "deadline",
    "截止时间": "deadline",
    "时限": "deadline",
    "due": "deadline",
    "due_at": "deadline",
    "due_date": "deadline",
    # closed_at
    "closed_at": "closed_at",
    "办结时间": "closed_at",
    "结案时间": "closed_at",
    "完成时间": "closed_at",
    "关闭时间": "closed_at",
    "close_time": "closed_at",
    "closed_time": "closed_at",
    "resolved_at": "closed_at",
    "completed_at": "closed_at",
    # coordinates
    "lon": "lon",
    "经度": "lon",
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "lat": "lat",
    "纬度": "lat",
    "latitude": "lat",
    "x": "x",
    "x坐标": "x",
    "横坐标": "x",
    "easting": "x",
    "y": "y",
    "y坐标": "y",
    "纵坐标": "y",
    "northing": "y",
}

#: The seven Fujin service categories: code -> Chinese name.
CATEGORIES: dict[str, str] = {
    "information_collection": "信息采集",
    "opinion_survey": "民意调查",
    "policy_publicity": "政策宣传",
    "key_population": "重点人群服务",
    "errand_service": "代办服务",
    "safety_hazard": "安全隐患排查",
    "dispute_mediation": "矛盾纠纷调解",
}

#: Category value as written in sources (normalised) -> category code.
CATEGORY_VALUES: dict[str, str] = {
    **{code: code for code in CATEGORIES},
    **{name: code for code, name in CATEGORIES.items()},
    "民意收集": "opinion_survey",
    "重点人群": "key_population",
    "代办": "errand_service",
    "安全隐患": "safety_hazard",
    "隐患排查": "safety_hazard",
    "矛盾纠纷": "dispute_mediation",
    "纠纷调解": "dispute_mediation",
    "key_population_service": "key_population",
    "key_population_services": "key_population",
    "errand": "errand_service",
    "errand_services": "errand_service",
    "safety_hazard_check": "safety_hazard",
    "safety_hazard_checks": "safety_hazard",
    "hazard": "safety_hazard",
    "dispute": "dispute_mediation",
    "mediation": "dispute_mediation",
    "survey": "opinion_survey",
    "publicity": "policy_publicity",
}

#: Report sources: code -> Chinese name.
SOURCES: dict[str, str] = {"grid_worker": "网格员", "resident": "居民随手拍"}

#: Source value as written in sources (normalised) -> source code.
SOURCE_VALUES: dict[str, str] = {
    "grid_worker": "grid_worker",
    "gridworker": "grid_worker",
    "worker": "grid_worker",
    "网格员": "grid_worker",
    "网格员上报": "grid_worker",
    "网格员巡查": "grid_worker",
    "巡查": "grid_worker",
    "resident": "resident",
    "residents": "resident",
    "citizen": "resident",
    "public": "resident",
    "随手拍": "resident",
    "居民": "resident",
    "居民上报": "resident",
    "居民随手拍": "resident",
    "群众": "resident",
    "群众上报": "resident",
    "市民": "resident",
}

#: Status value as written in sources (normalised) -> ``closed``/``open``/``cancelled``.
STATUS_VALUES: dict[str, str] = {
    **dict.fromkeys(
        [
            "closed", "close", "done", "resolved", "completed", "complete", "finished",
            "已办结", "办结", "已结案", "结案", "已完成", "完成", "已关闭", "关闭", "已处理",
            "处理完成", "已解决",
        ],
        "closed",
    ),
    **dict.fromkeys(
        [
            "open", "pending", "in_progress", "new", "assigned", "processing",
            "办理中", "处理中", "待办", "待处理", "待办理", "未办结", "未处理", "未完成",
            "已受理", "受理中", "待受理", "已派遣", "派遣中", "已分派", "待核查", "核查中",
        ],
        "open",
    ),
    **dict.fromkeys(
        ["cancelled", "canceled", "withdrawn", "void", "已撤销", "撤销", "作废", "已作废"],
        "cancelled",
    ),
}  # fmt: skip

#: Reasons a row lands in the rejects table, in the order they are checked.
REJECT_REASONS: dict[str, str] = {
    "bad_coordinate": "coordinate missing, not numeric, out of range, (0, 0) or not a point",
    "bad_time": "reported_at missing or unparseable, or deadline/closed_at unparseable",
    "closed_before_report": "closed_at earlier than reported_at",
    "outside_plan": "point outside every grid of the plan",
}

_CANONICAL = (
    "event_id",
    "reported_at",
    "category",
    "source",
    "status",
    "deadline",
    "closed_at",
    "lon",
    "lat",
    "x",
    "y",
)
_TIME_COLUMNS = ("reported_at", "deadline", "closed_at")
_MISSING_STRINGS = ["", "nan", "NaN", "NaT", "None", "none", "null", "NULL", "-", "—", "/", "无"]
# ASCII classes only ([0-9], [ \t]) so that pandas runs them in pyarrow's RE2, not re
_TZ_TAIL = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_DATE_ONLY = r"[0-9]{4}[ \t]*[-/.年][ \t]*[0-9]{1,2}[ \t]*[-/.月][ \t]*[0-9]{1,2}[ \t]*日?"
_CN_TIME = (
    r"^(?P<Y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:[\sT]*(?P<H>\d{1,2})\s*[:：时点]\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*[:：]?\s*(?P<S>\d{1,2}(?:\.\d+)?)\s*秒?)?)?\s*$"
)
_DURATION = r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<u>天|日|个工作日|工作日|d|day|days|小时|个小时|时|h|hr|hrs|hour|hours)$"
_DURATION_HOURS = {
    "天": 24, "日": 24, "个工作日": 24, "工作日": 24, "d": 24, "day": 24, "days": 24,
    "小时": 1, "个小时": 1, "时": 1, "h": 1, "hr": 1, "hrs": 1, "hour": 1, "hours": 1,
}  # fmt: skip
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
_TOUCH_TOLERANCE_M = 0.5
_HOT_LABELS = {"hot": "热点 Hot spot", "cold": "冷点 Cold spot"}


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
        ``closed_without_time``, ``columns`` (source header -> canonical name), ``crs``,
        ``tz``, ``row_numbering``.
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
    tz: str = DEFAULT_TZ,
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
    tz : str
        Time zone of times written without a UTC offset (default Asia/Shanghai). All
        times are returned converted to this zone.
    layer : str, optional
        Layer of a multi-layer file (default: ``events`` if present, else the only one).

    Returns
    -------
    geopandas.GeoDataFrame
        The accepted events, one row per report, in the source CRS (EPSG:4326 for
        lon/lat): ``event_id`` (str; ``E0000002``-style from the row when missing),
        ``reported_at``, ``deadline``, ``closed_at`` (tz-aware), ``category`` (code for
        the seven categories, otherwise the value as given), ``source``
        (``grid_worker``/``resident``/as given), ``status`` (``closed``/``open``/
        ``cancelled``/as given), the other source columns unchanged, ``lon``/``lat``
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
    times: dict[str, pd.Series] = {}
    bad_time = np.zeros(len(raw), dtype=bool)
    time_detail = np.full(len(raw), "", dtype=object)
    for col in _TIME_COLUMNS:
        if col not in canon:
            times[col] = pd.Series(pd.NaT, index=raw.index, dtype=f"datetime64[us, {tz}]")
            continue
        parsed, bad, missing, text = _parse_times(
            raw[canon[col]],
            tz,
            end_of_day=(col == "deadline"),
            base=times["reported_at"] if col == "deadline" else None,
        )
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
        grids = _grids_of(plan)
        ok = reason == ""
        gidx = np.full(len(raw), -1, dtype=np.int64)
        gidx[ok] = _locate(grids, x[ok], y[ok], coord_crs)
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
    if assigned is not None:
        grids, gidx = assigned
        events = _attach_codes(events, grids, gidx[keep])
        events.attrs["assigned_to"] = _grids_key(grids)
    events.attrs["rejects"] = EventRejects(rejects, summary)
    _log_read(summary)
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


def _norm_key(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())


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
            if canonical not in _CANONICAL:
                raise SchemaError(
                    f"columns= maps {src!r} to unknown name {canonical!r}; "
                    f"use one of {list(_CANONICAL)}",
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
    aliases = {_norm_key(k): v for k, v in EVENT_COLUMNS.items()}
    # exact canonical names first, then aliases in column order
    for exact in (True, False):
        for col in cols:
            if col in mapping or col == geometry:
                continue
            key = _norm_key(col)
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


def _parse_times(
    raw: pd.Series,
    tz: str,
    *,
    end_of_day: bool = False,
    base: pd.Series | None = None,
) -> tuple[pd.Series, np.ndarray, np.ndarray, pd.Series]:
    """Parse a column of times, vectorised.

    The whole column first goes through pandas' ISO 8601 parser (the common case of a
    clean export costs one call). Only the values it cannot read are stripped, checked
    for "missing" markers and sent through the slower paths (offset/naive split,
    Chinese formats, durations).

    Returns the parsed times (tz-aware in `tz`), a mask of present-but-unparseable
    values, a mask of missing values and the text.
    """
    dtype = f"datetime64[us, {tz}]"
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        out = raw.dt.tz_convert(tz).astype(dtype)
        missing = out.isna().to_numpy()
        return out, np.zeros(len(raw), dtype=bool), missing, raw.astype("str")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        out = _localize(raw, tz).astype(dtype)
        missing = raw.isna().to_numpy()
        return out, (out.isna() & raw.notna()).to_numpy(), missing, raw.astype("str")

    text = raw if isinstance(raw.dtype, pd.StringDtype) else raw.astype("str")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            out = parsed.dt.tz_convert(tz).astype(dtype)
        else:
            out = _localize(parsed, tz).astype(dtype)
    except (ValueError, TypeError, OverflowError):  # mixed offsets, naive + aware, ...
        out = pd.Series(pd.NaT, index=raw.index, dtype=dtype)

    missing = np.zeros(len(raw), dtype=bool)
    nat = out.isna().to_numpy()
    if nat.any():
        idx = np.flatnonzero(nat)
        sub = text.iloc[idx].str.strip()
        miss = (sub.isna() | sub.isin(_MISSING_STRINGS)).to_numpy(dtype=bool)
        missing[idx[miss]] = True
        todo = idx[~miss]
        if len(todo):
            slow = _parse_slow(
                sub[~miss], tz, dtype, base=None if base is None else base.iloc[todo]
            )
            out.iloc[todo] = slow.to_numpy()

    if end_of_day:  # "2025-03-06" as a deadline means the end of that day
        ok = out.notna().to_numpy()
        midnight = ok & (out == out.dt.normalize()).fillna(False).to_numpy(dtype=bool)
        if midnight.any():
            idx = np.flatnonzero(midnight)
            cand = text.iloc[idx].str.strip().str.fullmatch(_DATE_ONLY)
            sel = idx[cand.fillna(False).to_numpy(dtype=bool)]
            if len(sel):
                out.iloc[sel] = (
                    out.iloc[sel] + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
                ).to_numpy()

    bad = ~missing & out.isna().to_numpy()
    return out, bad, missing, text


def _parse_slow(text: pd.Series, tz: str, dtype: str, *, base: pd.Series | None) -> pd.Series:
    """Parse stripped, non-missing time strings the ISO fast path could not read."""
    out = pd.Series(pd.NaT, index=text.index, dtype=dtype)
    # an offset needs a time before it ("2025-03-01" ends in "-01" but has no offset)
    has_time = text.str.contains(":", regex=False).fillna(False).to_numpy(dtype=bool)
    tail = text.str.slice(-6).str.contains(_TZ_TAIL, regex=True).fillna(False)
    aware = has_time & tail.to_numpy(dtype=bool)
    if aware.any():
        parsed = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
        out[aware] = parsed.dt.tz_convert(tz).astype(dtype)
    if (~aware).any():
        parsed = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
        out[~aware] = _localize(parsed, tz).astype(dtype)

    failed = out.isna().to_numpy()
    if failed.any():
        parts = text[failed].str.extract(_CN_TIME)
        iso = (
            parts["Y"]
            + "-"
            + parts["m"].str.zfill(2)
            + "-"
            + parts["d"].str.zfill(2)
            + "T"
            + parts["H"].fillna("0").str.zfill(2)
            + ":"
            + parts["M"].fillna("0").str.zfill(2)
            + ":"
            + parts["S"].fillna("0").str.replace(r"^(\d)(?=\.|$)", r"0\1", regex=True)
        )
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce")
        out[failed] = _localize(parsed, tz).astype(dtype)

    failed = out.isna().to_numpy()
    if failed.any() and base is not None:
        parts = text[failed].str.lower().str.extract(_DURATION)
        hours = pd.to_numeric(parts["n"], errors="coerce") * parts["u"].map(_DURATION_HOURS)
        ok = hours.notna().to_numpy(dtype=bool)
        if ok.any():
            pos = np.flatnonzero(failed)[ok]
            delta = pd.to_timedelta(hours[ok].astype(float).to_numpy(), unit="h")
            out.iloc[pos] = (base.iloc[pos] + delta).to_numpy()
    return out


def _localize(parsed: pd.Series, tz: str) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # pragma: no cover - defensive
        return parsed.dt.tz_convert(tz)
    return parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")


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
        no_id = (ids.isna() | ids.isin(_MISSING_STRINGS)).to_numpy(dtype=bool)
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
    lookup = {_norm_key(k): v for k, v in table.items()}
    missing = set(_MISSING_STRINGS)
    mapped: list[str | None] = []
    unknown_of: list[str | None] = []
    for label in labels:
        if label in missing:
            mapped.append(None)
            unknown_of.append(None)
            continue
        code = lookup.get(_norm_key(label))
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


# ---------------------------------------------------------------------------
# grids and assignment
# ---------------------------------------------------------------------------


def _grids_of(plan: Any) -> gpd.GeoDataFrame:
    """Return the grids of `plan` in a metric CRS, with the columns the events need.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        A :class:`gridmap.Plan` (its ``grids``), a grids GeoDataFrame (projected to a
        metric CRS when geographic), or a plan GeoPackage (layer ``grids``).

    Returns
    -------
    geopandas.GeoDataFrame
        With ``grid_code`` (str), ``households`` (nullable Int64; NA when unknown or
        absent) and the other columns as given; index reset.
    """
    if isinstance(plan, str | os.PathLike):
        path = Path(plan)
        if not path.exists():
            raise InputError("plan file not found", source=str(path))
        try:
            grids = gpd.read_file(path, layer="grids")
        except Exception as exc:
            raise InputError(f"cannot read the grids layer: {exc}", source=str(path)) from exc
        name = f"{path}:grids"
    elif isinstance(plan, gpd.GeoDataFrame):
        grids, name = plan, "grids"
    elif hasattr(plan, "grids") and isinstance(plan.grids, gpd.GeoDataFrame):
        grids, name = plan.grids, "plan.grids"
        if grids.crs is None and getattr(plan, "crs", None) is not None:
            grids = grids.set_crs(plan.crs)
    else:
        raise InputError(
            f"expected a Plan, a grids GeoDataFrame or a plan file, got {type(plan).__name__}",
            source="plan",
        )
    if "grid_code" not in grids.columns:
        raise SchemaError(
            f"grids have no 'grid_code' column; available columns: {list(grids.columns)}",
            source=name,
        )
    if len(grids) == 0:
        raise InputError("the plan has no grids", source=name)
    grids = to_metric(grids, source=name)
    grids = grids.reset_index(drop=True).copy()
    grids["grid_code"] = grids["grid_code"].astype("str")
    dup = grids["grid_code"].duplicated()
    if dup.any():
        raise SchemaError(
            f"grid_code is not unique: {grids.loc[dup, 'grid_code'].head(5).tolist()}",
            source=name,
            where="column grid_code",
        )
    for col in ("community_code", "street_code"):
        if col in grids.columns:
            grids[col] = grids[col].astype("str")
    if "households" in grids.columns:
        hh = pd.to_numeric(grids["households"], errors="coerce")
        grids["households"] = hh.round().astype("Int64")
    else:
        grids["households"] = pd.array([pd.NA] * len(grids), dtype="Int64")
    return grids


def _grids_key(grids: gpd.GeoDataFrame) -> str:
    """Fingerprint of grid codes, geometry and CRS (to reuse an earlier assignment)."""
    h = hashlib.sha1()
    h.update("\x1f".join(grids["grid_code"]).encode())
    h.update(b"".join(shapely.to_wkb(grids.geometry.to_numpy(), hex=False)))
    h.update(str(grids.crs).encode())
    return h.hexdigest()


def _locate(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, crs: Any) -> np.ndarray:
    """Positions (in `grids`) of the grid holding each point; -1 outside every grid.

    `x`, `y` are in `crs`. A point on a shared boundary goes to the grid with the
    smallest ``grid_code``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) and CRS.from_user_input(crs) != CRS.from_user_input(grids.crs):
        transformer = Transformer.from_crs(crs, grids.crs, always_xy=True)
        with np.errstate(invalid="ignore"):
            x, y = transformer.transform(x, y, errcheck=False)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return _locate_xy(grids, x, y)


def _locate_xy(
    grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, max_cells: int = 4_000_000
) -> np.ndarray:
    """Point-in-grid for coordinate arrays in the grids' CRS, without point objects.

    Grid bounding boxes are registered in a regular bucket lattice (cells about a third
    of the median grid size); each point gets the grids registered in its cell as
    candidates, which are tested exactly with ``shapely.intersects_xy`` (boundary
    included). Creating a million GEOS points costs more than the whole test.
    """
    n = len(x)
    out = np.full(n, -1, dtype=np.int64)
    polys = grids.geometry.to_numpy()
    b = shapely.bounds(polys)
    okg = np.isfinite(b).all(axis=1)
    if n == 0 or not okg.any():
        return out
    gids = np.flatnonzero(okg)
    b = b[okg]
    size = max(float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))) / 3.0, 1e-6)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    while True:
        cx0 = np.floor((b[:, 0] - x0) / size).astype(np.int64)
        cx1 = np.floor((b[:, 2] - x0) / size).astype(np.int64)
        cy0 = np.floor((b[:, 1] - y0) / size).astype(np.int64)
        cy1 = np.floor((b[:, 3] - y0) / size).astype(np.int64)
        cw, ch = cx1 - cx0 + 1, cy1 - cy0 + 1
        per_grid = cw * ch
        if per_grid.sum() <= max_cells:
            break
        size *= 2.0
    nx, ny = int(cx1.max()) + 1, int(cy1.max()) + 1
    g = np.repeat(np.arange(len(gids)), per_grid)
    k = np.arange(per_grid.sum()) - np.repeat(np.cumsum(per_grid) - per_grid, per_grid)
    cell = (cx0[g] + k % cw[g]) * ny + (cy0[g] + k // cw[g])
    order = np.argsort(cell, kind="stable")
    cell_sorted, grid_sorted = cell[order], gids[g[order]]

    with np.errstate(invalid="ignore"):
        px = np.floor((x - x0) / size)
        py = np.floor((y - y0) / size)
    inside = np.isfinite(px) & np.isfinite(py) & (px >= 0) & (py >= 0) & (px < nx) & (py < ny)
    sel = np.flatnonzero(inside)
    pid = px[sel].astype(np.int64) * ny + py[sel].astype(np.int64)
    lo = np.searchsorted(cell_sorted, pid, "left")
    count = np.searchsorted(cell_sorted, pid, "right") - lo
    pt = np.repeat(sel, count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    cand = grid_sorted[np.repeat(lo, count) + offset]
    shapely.prepare(polys)
    hit = shapely.intersects_xy(polys[cand], x[pt], y[pt])
    pt, cand = pt[hit], cand[hit]
    if len(pt) == 0:
        return out
    rank = np.empty(len(grids), dtype=np.int64)
    rank[np.argsort(grids["grid_code"].to_numpy(dtype=object), kind="stable")] = np.arange(
        len(grids)
    )
    order = np.lexsort((rank[cand], pt))
    pt, cand = pt[order], cand[order]
    first = np.r_[True, pt[1:] != pt[:-1]]
    out[pt[first]] = cand[first]
    return out


def _attach_codes(
    events: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, gidx: np.ndarray
) -> gpd.GeoDataFrame:
    """Set grid_code/community_code/street_code columns from grid positions (-1 = NA)."""
    out = events.copy(deep=False)
    codes = pd.Categorical.from_codes(gidx, categories=pd.Index(grids["grid_code"], dtype=object))
    out["grid_code"] = codes
    for col in ("community_code", "street_code"):
        if col not in grids.columns:
            continue
        values = grids[col].astype("str")
        cats, inverse = np.unique(values.fillna("").to_numpy(dtype=object), return_inverse=True)
        per_grid = np.where(values.isna().to_numpy(), -1, inverse)
        codes_c = np.where(gidx >= 0, per_grid[np.maximum(gidx, 0)], -1)
        out[col] = pd.Categorical.from_codes(codes_c, categories=pd.Index(cats, dtype=object))
    # codes right after the event columns, geometry last
    codes_cols = [c for c in ("grid_code", "community_code", "street_code") if c in out.columns]
    geo = out.geometry.name
    rest = [c for c in out.columns if c not in codes_cols and c != geo]
    at = rest.index("closed_at") + 1 if "closed_at" in rest else len(rest)
    return out[[*rest[:at], *codes_cols, *rest[at:], geo]]


def assign_events(plan: Any, events: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Attach each event to the grid that holds it.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids: a :class:`gridmap.Plan`, a grids GeoDataFrame (any CRS; projected
        to a metric one) or a plan GeoPackage (layer ``grids``).
    events : geopandas.GeoDataFrame
        Events with point geometry in any CRS (e.g. from :func:`read_events`).
        Non-point geometries are represented by a point on their surface.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of `events` with ``grid_code`` and, when the grids have them,
        ``community_code`` and ``street_code`` (categorical columns; NA for events
        outside every grid). The spatial join runs in the grids' metric CRS with
        "intersects"; an event on the boundary of two grids goes to exactly one, the
        one with the smallest ``grid_code``. Events outside every grid are counted and
        logged at WARNING; the count is in ``attrs["unassigned"]``.
    """
    grids = _grids_of(plan)
    return _assign(grids, events)


def _assign(grids: gpd.GeoDataFrame, events: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not isinstance(events, gpd.GeoDataFrame):
        raise InputError("events must be a GeoDataFrame (use gridmap.read_events)", source="events")
    if events.crs is None:
        raise CRSError("events have no CRS", source="events")
    geoms = events.geometry.to_numpy()
    is_point = shapely.get_type_id(geoms) == 0
    if not is_point.all():
        geoms = geoms.copy()
        other = ~is_point & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        geoms[other] = shapely.point_on_surface(geoms[other])
    gidx = _locate(grids, shapely.get_x(geoms), shapely.get_y(geoms), events.crs)
    out = _attach_codes(events, grids, gidx)
    unassigned = int((gidx < 0).sum())
    out.attrs["assigned_to"] = _grids_key(grids)
    out.attrs["unassigned"] = unassigned
    if unassigned:
        logger.warning(
            "%d of %d events lie outside every grid (grid_code NA)", unassigned, len(events)
        )
    return out


# ---------------------------------------------------------------------------
# event_stats
# ---------------------------------------------------------------------------


@dataclass
class EventStats:
    """Event KPIs per grid, community and street.

    Attributes
    ----------
    grids : pandas.DataFrame
        One row per grid of the plan (per grid and period when `by` is set), zeros for
        grids without events. Columns: ``grid_code``, ``community_code``,
        ``street_code``, ``community_name``, ``kind`` (those the plan has),
        [``period``, ``period_start``], ``households``, ``events``,
        ``per_100_households`` (NaN when households is 0 or unknown), ``cat_<code>`` for
        the seven categories and ``cat_other`` (unknown or missing), ``src_grid_worker``,
        ``src_resident``, ``src_other``, ``closed``, ``open``, ``cancelled``, ``due``,
        ``closed_on_time``, ``on_time_rate``, ``overdue``, ``no_deadline``,
        ``median_handling_hours``. See the module docstring for the definitions.
    communities : pandas.DataFrame or None
        The same per community (``community_code`` with ``street_code``: community codes
        repeat across streets), plus ``community_name`` and ``grids``; None when the
        grids have no ``community_code``.
    streets : pandas.DataFrame or None
        The same per ``street_code`` (plus ``grids``, ``communities``); None when the
        grids have no ``street_code``.
    now : pandas.Timestamp or None
        The time the KPIs are evaluated at.
    start, end : pandas.Timestamp or None
        The window on ``reported_at`` (``start <= reported_at < end``).
    by : str or None
        ``"month"``, ``"week"`` or None.
    summary : dict
        ``events`` (in the window), ``assigned``, ``unassigned`` (outside every grid,
        not in any table), ``now``, ``on_time_rate`` (all assigned events).
    notes : list of str
        Roll-ups skipped and similar remarks.
    """

    grids: pd.DataFrame
    communities: pd.DataFrame | None
    streets: pd.DataFrame | None
    now: pd.Timestamp | None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    by: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def event_stats(
    plan: Any,
    events: gpd.GeoDataFrame,
    *,
    start: Any = None,
    end: Any = None,
    by: Literal["month", "week"] | None = None,
    now: Any = None,
) -> EventStats:
    """Count events and closure KPIs per grid, community and street.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids. Every grid appears in the result.
    events : geopandas.GeoDataFrame
        Events from :func:`read_events`. They are assigned to grids with
        :func:`assign_events` unless they already were, to these same grids.
    start, end : str or Timestamp, optional
        Window on ``reported_at``: ``start <= reported_at < end``. Naive values are in
        the events' time zone.
    by : {"month", "week"}, optional
        Give a long table with one row per unit and period (``period`` like
        ``2025-03`` or ``2025-W10``; weeks start on Monday, ``period_start`` is the
        local start). Every period from the window start (or the first event) to the
        window end (or the last event) appears. All periods use the same `now`, so the
        periods add up to the totals.
    now : str or Timestamp, optional
        When to evaluate due/open/overdue. Default: `end` if given, else the latest
        ``reported_at`` or ``closed_at`` of the events in the window.

    Returns
    -------
    EventStats
        Community and street figures are sums over their events (rates are
        recomputed from the sums, medians from the raw events).
    """
    grids = _grids_of(plan)
    if by not in (None, "month", "week"):
        raise InputError(f"by must be 'month', 'week' or None, not {by!r}", source="event_stats")
    if "reported_at" not in events.columns or not isinstance(
        events["reported_at"].dtype, pd.DatetimeTZDtype
    ):
        raise SchemaError(
            "events need a time-zone aware 'reported_at' column; read them with "
            "gridmap.read_events",
            source="events",
            where="column reported_at",
        )
    if events.attrs.get("assigned_to") != _grids_key(grids) or "grid_code" not in events:
        events = _assign(grids, events)
    tz = events["reported_at"].dt.tz
    start_t, end_t, now_t = (
        _as_time(v, tz, label) for v, label in ((start, "start"), (end, "end"), (now, "now"))
    )

    rep = events["reported_at"]
    inside = rep.notna().to_numpy(copy=True)
    if start_t is not None:
        inside &= (rep >= start_t).to_numpy()
    if end_t is not None:
        inside &= (rep < end_t).to_numpy()
    ev = events.loc[inside]
    if now_t is None:
        now_t = end_t
    if now_t is None and len(ev):
        latest = [ev["reported_at"].max()]
        if "closed_at" in ev:
            latest.append(ev["closed_at"].max())
        now_t = max(t for t in latest if pd.notna(t))

    gidx = _grid_positions(grids, ev)
    flags, cat_idx, src_idx, hours = _event_flags(ev, now_t)
    notes: list[str] = []

    # periods
    period_idx = None
    periods = None
    if by is not None:
        period_idx, periods = _periods(ev["reported_at"], by, start_t, end_t)

    assigned = gidx >= 0
    unit_tables: dict[str, pd.DataFrame | None] = {}
    # grids
    grid_attrs = grids[
        [
            c
            for c in ("grid_code", "community_code", "street_code", "community_name", "kind")
            if c in grids.columns
        ]
    ].copy()
    grid_attrs["households"] = grids["households"]
    unit_tables["grids"] = _kpi_table(
        grid_attrs, gidx, flags, cat_idx, src_idx, hours, period_idx, periods
    )

    # communities: a community code is unique only within its street
    if "community_code" in grids.columns:
        key_cols = [c for c in ("street_code", "community_code") if c in grids.columns]
        keys = grids[key_cols].astype(object).fillna("")
        comm_of_grid = keys.groupby(key_cols, sort=True).ngroup().to_numpy(dtype=np.int64)
        n_comm = int(comm_of_grid.max()) + 1
        grp = grids.groupby(comm_of_grid, sort=True)
        comm = pd.DataFrame({c: grp[c].first().to_numpy() for c in key_cols})
        comm = comm[["community_code", *[c for c in key_cols if c != "community_code"]]]
        if "community_name" in grids.columns:
            comm["community_name"] = grp["community_name"].first().to_numpy()
        comm["grids"] = grp.size().to_numpy()
        comm["households"] = _sum_strict(grids["households"], comm_of_grid, n_comm)
        cidx = np.where(assigned, comm_of_grid[np.maximum(gidx, 0)], -1)
        unit_tables["communities"] = _kpi_table(
            comm, cidx, flags, cat_idx, src_idx, hours, period_idx, periods
        )
    else:
        unit_tables["communities"] = None
        notes.append("grids have no community_code column: community roll-up skipped")

    if "street_code" in grids.columns:
        st_codes, st_of_grid = np.unique(
            grids["street_code"].fillna("").to_numpy(dtype=object), return_inverse=True
        )
        st = pd.DataFrame({"street_code": st_codes})
        st["grids"] = np.bincount(st_of_grid, minlength=len(st_codes))
        if "community_code" in grids.columns:
            st["communities"] = grids.groupby(st_of_grid)["community_code"].nunique().to_numpy()
        st["households"] = _sum_strict(grids["households"], st_of_grid, len(st_codes))
        sidx = np.where(assigned, st_of_grid[np.maximum(gidx, 0)], -1)
        unit_tables["streets"] = _kpi_table(
            st, sidx, flags, cat_idx, src_idx, hours, period_idx, periods
        )
    else:
        unit_tables["streets"] = None
        notes.append("grids have no street_code column: street roll-up skipped")

    unassigned = int((~assigned).sum())
    if unassigned:
        notes.append(
            f"{unassigned} events in the window lie outside every grid and are not counted"
        )
    due = int(flags["due"][assigned].sum())
    summary = {
        "events": len(ev),
        "assigned": int(assigned.sum()),
        "unassigned": unassigned,
        "now": now_t,
        "due": due,
        "closed_on_time": int(flags["closed_on_time"][assigned].sum()),
        "on_time_rate": float(flags["closed_on_time"][assigned].sum() / due)
        if due
        else float("nan"),
    }
    for note in notes:
        logger.info("event_stats: %s", note)
    return EventStats(
        grids=unit_tables["grids"],
        communities=unit_tables["communities"],
        streets=unit_tables["streets"],
        now=now_t,
        start=start_t,
        end=end_t,
        by=by,
        summary=summary,
        notes=notes,
    )


def _as_time(value: Any, tz: Any, label: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot read {label}={value!r} as a time", source="event_stats") from exc
    return ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)


def _grid_positions(grids: gpd.GeoDataFrame, ev: pd.DataFrame) -> np.ndarray:
    codes = ev["grid_code"]
    if isinstance(codes.dtype, pd.CategoricalDtype) and list(codes.cat.categories) == list(
        grids["grid_code"]
    ):
        return codes.cat.codes.to_numpy(dtype=np.int64)
    return pd.Index(grids["grid_code"]).get_indexer(codes.astype(object)).astype(np.int64)


def _event_flags(
    ev: pd.DataFrame, now: pd.Timestamp | None
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per-event booleans (closed, open, due, ...), category/source indices, hours."""
    n = len(ev)

    def col(name: str, dtype: str | None = None) -> pd.Series:
        if name in ev.columns:
            return ev[name]
        return pd.Series(pd.NA if dtype is None else pd.NaT, index=ev.index, dtype=dtype or "str")

    tz = ev["reported_at"].dt.tz
    rep = ev["reported_at"]
    deadline = col("deadline", f"datetime64[us, {tz}]")
    closed_at = col("closed_at", f"datetime64[us, {tz}]")
    status = col("status").astype("str")
    has_deadline = deadline.notna().to_numpy()
    has_closed_at = closed_at.notna().to_numpy()
    status_closed = (status == "closed").fillna(False).to_numpy(bool)
    status_cancelled = (status == "cancelled").fillna(False).to_numpy(bool)
    if now is None:
        closed_by_now = has_closed_at
        deadline_passed = np.zeros(n, dtype=bool)
        deadline_before = np.zeros(n, dtype=bool)
    else:
        closed_by_now = (closed_at <= now).fillna(False).to_numpy(bool)
        deadline_passed = (deadline <= now).fillna(False).to_numpy(bool)
        deadline_before = (deadline < now).fillna(False).to_numpy(bool)
    closed = closed_by_now | (~has_closed_at & status_closed)
    cancelled = status_cancelled & ~closed
    open_ = ~closed & ~cancelled
    due = has_deadline & ~cancelled & (closed | deadline_passed)
    on_time = due & closed_by_now & (closed_at <= deadline).fillna(False).to_numpy(bool)
    overdue = open_ & deadline_before
    no_deadline = ~has_deadline & ~cancelled
    hours = ((closed_at - rep).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan)
    hours = np.where(closed_by_now, hours, np.nan)
    flags = {
        "closed": closed,
        "open": open_,
        "cancelled": cancelled,
        "due": due,
        "closed_on_time": on_time,
        "overdue": overdue,
        "no_deadline": no_deadline,
    }
    cats = list(CATEGORIES)
    cat_idx = _index_of(col("category"), cats)
    src_idx = _index_of(col("source"), list(SOURCES))
    return flags, cat_idx, src_idx, hours


def _index_of(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """Index of each value in `vocab`; len(vocab) for other or missing values."""
    codes, uniques = pd.factorize(values.astype("str"))
    lut = np.array([vocab.index(u) if u in vocab else len(vocab) for u in uniques] + [len(vocab)])
    return lut[np.where(codes >= 0, codes, len(uniques))]


def _periods(
    rep: pd.Series, by: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Period number of each event and the table of periods (label, local start)."""
    local = rep.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")

    def number(t: np.ndarray) -> np.ndarray:
        if by == "month":
            return t.astype("datetime64[M]").astype(np.int64)
        days = t.astype("datetime64[D]").astype(np.int64)
        return (days - 4) // 7  # 1970-01-05 is a Monday

    nums = number(local)
    lo = (
        number(np.array([start.tz_localize(None)], dtype="datetime64[us]"))[0]
        if start is not None
        else (nums.min() if len(nums) else None)
    )
    if end is not None:
        hi = number(
            np.array(
                [(end - pd.Timedelta(microseconds=1)).tz_localize(None)], dtype="datetime64[us]"
            )
        )[0]
    else:
        hi = nums.max() if len(nums) else None
    if lo is None or hi is None or hi < lo:
        return np.full(len(rep), -1, dtype=np.int64), pd.DataFrame(
            {"period": [], "period_start": []}
        )
    span = np.arange(lo, hi + 1)
    if by == "month":
        starts = pd.DatetimeIndex(span.astype("datetime64[M]").astype("datetime64[us]"))
        labels = starts.strftime("%Y-%m")
    else:
        starts = pd.DatetimeIndex((span * 7 + 4).astype("datetime64[D]").astype("datetime64[us]"))
        iso = starts.isocalendar()
        labels = pd.Index(iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2))
    table = pd.DataFrame({"period": np.asarray(labels, dtype=object), "period_start": starts})
    idx = nums - lo
    idx[(idx < 0) | (idx >= len(span))] = -1
    return idx.astype(np.int64), table


def _sum_strict(values: pd.Series, groups: np.ndarray, n: int) -> pd.Series:
    """Group sums of a nullable integer column; NA for a group with any NA member."""
    v = values.astype("Float64")
    total = np.bincount(groups, weights=v.fillna(0).to_numpy(dtype=float), minlength=n)
    has_na = np.bincount(groups, weights=v.isna().to_numpy(dtype=float), minlength=n) > 0
    out = pd.array(np.round(total).astype(np.int64), dtype="Int64")
    out[has_na] = pd.NA
    return pd.Series(out)


def _kpi_table(
    units: pd.DataFrame,
    key: np.ndarray,
    flags: dict[str, np.ndarray],
    cat_idx: np.ndarray,
    src_idx: np.ndarray,
    hours: np.ndarray,
    period_idx: np.ndarray | None,
    periods: pd.DataFrame | None,
) -> pd.DataFrame:
    """Counts, rates and medians per unit (and period) from per-event arrays."""
    n_units = len(units)
    units = units.reset_index(drop=True)
    if period_idx is not None:
        n_p = len(periods)
        valid = (key >= 0) & (period_idx >= 0)
        k = np.where(valid, key * n_p + period_idx, -1)
        n_keys = n_units * n_p
        base = units.loc[np.repeat(np.arange(n_units), n_p)].reset_index(drop=True)
        per = periods.iloc[np.tile(np.arange(n_p), n_units)].reset_index(drop=True)
        hh = base.pop("households")
        table = pd.concat([base, per], axis=1)
        table["households"] = hh.to_numpy()
    else:
        valid = key >= 0
        k = key
        n_keys = n_units
        table = units.copy()
    kv = k[valid]

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        sel = kv if mask is None else kv[mask[valid]]
        return np.bincount(sel, minlength=n_keys).astype(np.int64)

    table["events"] = count()
    hh = table["households"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["per_100_households"] = np.where(hh > 0, table["events"] * 100.0 / hh, np.nan)
    cats = [*CATEGORIES, "other"]
    cat_counts = np.bincount(kv * len(cats) + cat_idx[valid], minlength=n_keys * len(cats))
    for i, c in enumerate(cats):
        table[f"cat_{c}"] = cat_counts[i :: len(cats)].astype(np.int64)
    srcs = [*SOURCES, "other"]
    src_counts = np.bincount(kv * len(srcs) + src_idx[valid], minlength=n_keys * len(srcs))
    for i, s in enumerate(srcs):
        table[f"src_{s}"] = src_counts[i :: len(srcs)].astype(np.int64)
    for name in ("closed", "open", "cancelled", "due", "closed_on_time"):
        table[name] = count(flags[name])
    with np.errstate(divide="ignore", invalid="ignore"):
        table["on_time_rate"] = np.where(
            table["due"] > 0, table["closed_on_time"] / table["due"].replace(0, 1), np.nan
        )
    table["overdue"] = count(flags["overdue"])
    table["no_deadline"] = count(flags["no_deadline"])
    h = hours[valid]
    has_h = ~np.isnan(h)
    med = pd.Series(h[has_h]).groupby(kv[has_h]).median()
    median = np.full(n_keys, np.nan)
    median[med.index.to_numpy(dtype=np.int64)] = med.to_numpy()
    table["median_handling_hours"] = median
    return table


# ---------------------------------------------------------------------------
# hot spots
# ---------------------------------------------------------------------------


def hotspots(
    plan: Any,
    stats: EventStats | pd.DataFrame,
    value: str = "per_100_households",
    *,
    confidence: float = 0.95,
    weights: Literal["queen", "knn"] = "queen",
    permutations: int = 999,
    seed: int | None = 0,
    k: int = 6,
) -> gpd.GeoDataFrame:
    """Find hot and cold grids with the Getis-Ord Gi* statistic.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids.
    stats : EventStats or pandas.DataFrame
        Per-grid figures (``EventStats`` without `by`, or a table with ``grid_code``
        and `value`).
    value : str
        The column to test, e.g. ``per_100_households`` or ``events``.
    confidence : float
        Confidence level of the two-sided test (0.90, 0.95, 0.99 ...).
    weights : {"queen", "knn"}
        ``queen``: grids that share a boundary or a corner are neighbours. It is
        computed with shapely in the metric CRS with a 0.5 m tolerance, so grids meeting
        at T-junctions or across digitising slivers count as neighbours (libpysal's
        vertex-based Queen misses those). Grids with no neighbour (islands) get their
        nearest grid as neighbour. ``knn``: the `k` nearest grid centroids.
    permutations : int
        Conditional permutations for the pseudo p-value; 0 uses the normal
        approximation only.
    seed : int, optional
        Random seed of the permutations (results are reproducible by default).
    k : int
        Neighbours for ``weights="knn"``.

    Returns
    -------
    geopandas.GeoDataFrame
        The grids (metric CRS) with `value`, ``gi_z`` (standardised Gi*, analytic, as
        in ArcGIS "Hot Spot Analysis"), ``gi_p`` and ``hotspot`` (``hot``/``cold``/
        ``not_significant``), ``neighbours``.

    Notes
    -----
    Gi* uses binary weights with the grid itself included (``esda.G_Local``,
    ``star=True``, ``transform="B"``). ``gi_p`` is two-sided: twice the folded
    permutation pseudo p-value ``p_sim`` (capped at 1), or twice the one-sided normal
    p-value when ``permutations=0``. A grid is ``hot`` when ``gi_p <= 1 - confidence``
    and ``gi_z > 0``, ``cold`` when ``gi_z < 0``; so at 95 % a grid needs about
    ``|z| >= 1.96``, the usual reading. No correction for multiple tests is made.

    Grids whose value is NaN (e.g. events per 100 households with 0 or unknown
    households) are left out of the analysis (neither neighbours nor observations) and
    marked ``not_significant`` with NaN ``gi_z``/``gi_p``; filling them with 0 would
    make them look like cold spots.
    """
    from esda import G_Local

    grids = _grids_of(plan)
    table = _per_grid_table(stats)
    if value not in table.columns:
        raise SchemaError(
            f"stats have no column {value!r}; available: {list(table.columns)}",
            source="hotspots",
        )
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, not {confidence}", source="hotspots")
    values = (
        pd.Series(
            pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float),
            index=table["grid_code"].astype(str),
        )
        .reindex(grids["grid_code"])
        .to_numpy(dtype=float)
    )
    keep = [
        c
        for c in ("grid_code", "community_code", "street_code", "community_name", "households")
        if c in grids.columns
    ]
    out = gpd.GeoDataFrame(grids[keep].copy(), geometry=grids.geometry.to_numpy(), crs=grids.crs)
    if value != "households":
        out[value] = values
    out["gi_z"] = np.nan
    out["gi_p"] = np.nan
    out["hotspot"] = "not_significant"
    out["neighbours"] = 0

    valid = np.isfinite(values)
    n_valid = int(valid.sum())
    if n_valid < 3 or np.nanstd(values[valid]) == 0 or values[valid].sum() <= 0:
        logger.warning(
            "hotspots: %d grids with a value for %r (or no variation); nothing tested",
            n_valid,
            value,
        )
        return out
    if (values[valid] < 0).any():
        raise InputError(
            f"Getis-Ord G needs non-negative values; {value!r} has negatives", source="hotspots"
        )
    geoms = grids.geometry.to_numpy()[valid]
    w, n_nb = _weights(geoms, weights, k)
    alpha = 1.0 - confidence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = G_Local(
            values[valid],
            w,
            transform="B",
            star=True,
            permutations=permutations,
            seed=seed,
            n_jobs=1,
            keep_simulations=False,
        )
    z = np.asarray(g.Zs, dtype=float)
    one_sided = np.asarray(g.p_sim if permutations else g.p_norm, dtype=float)
    p = np.minimum(1.0, 2.0 * one_sided)
    cls = np.where(
        p <= alpha,
        np.where(z > 0, "hot", np.where(z < 0, "cold", "not_significant")),
        "not_significant",
    )
    out.loc[valid, "gi_z"] = z
    out.loc[valid, "gi_p"] = p
    out.loc[valid, "hotspot"] = cls
    out.loc[valid, "neighbours"] = n_nb
    counts = pd.Series(cls).value_counts().to_dict()
    logger.info(
        "hotspots on %r (%d grids, %s weights, %.0f%%): %d hot, %d cold",
        value,
        n_valid,
        weights,
        confidence * 100,
        counts.get("hot", 0),
        counts.get("cold", 0),
    )
    return out


def _per_grid_table(stats: EventStats | pd.DataFrame) -> pd.DataFrame:
    if isinstance(stats, EventStats):
        if stats.by is not None:
            raise InputError(
                "hotspots need per-grid totals; compute event_stats without by=", source="hotspots"
            )
        return stats.grids
    if isinstance(stats, pd.DataFrame) and "grid_code" in stats.columns:
        if stats["grid_code"].duplicated().any():
            raise InputError(
                "stats have several rows per grid_code (a by= table?)", source="hotspots"
            )
        return stats
    raise InputError("stats must be an EventStats or a table with grid_code", source="hotspots")


def _weights(geoms: np.ndarray, kind: str, k: int) -> tuple[Any, np.ndarray]:
    """Binary spatial weights (libpysal W) between `geoms` and neighbour counts."""
    import scipy.sparse as sp
    from libpysal.weights import W

    n = len(geoms)
    if kind == "queen":
        tree = shapely.STRtree(geoms)
        i, j = tree.query(geoms, predicate="dwithin", distance=_TOUCH_TOLERANCE_M)
        off = i != j
        i, j = i[off], j[off]
        island = np.bincount(i, minlength=n) == 0
        if island.any():
            ii, jj = tree.query_nearest(geoms[island], exclusive=True, all_matches=False)
            src = np.flatnonzero(island)[ii]
            i = np.concatenate([i, src, jj])
            j = np.concatenate([j, jj, src])
            logger.info(
                "hotspots: %d grids without contiguous neighbours get their nearest grid",
                int(island.sum()),
            )
    elif kind == "knn":
        from scipy.spatial import cKDTree

        pts = shapely.get_coordinates(shapely.point_on_surface(geoms))
        kk = min(k, n - 1)
        _, nb = cKDTree(pts).query(pts, k=kk + 1)
        i = np.repeat(np.arange(n), kk)
        j = nb[:, 1:].ravel()
    else:
        raise InputError(f"weights must be 'queen' or 'knn', not {kind!r}", source="hotspots")
    mat = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    mat.data[:] = 1.0
    mat.sum_duplicates()
    mat.data[:] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = W.from_sparse(mat)
    return w, np.diff(mat.indptr)


# ---------------------------------------------------------------------------
# maps
# ---------------------------------------------------------------------------


def event_map(
    plan: Any,
    events: gpd.GeoDataFrame,
    *,
    stats: EventStats | None = None,
    hot: gpd.GeoDataFrame | bool | None = None,
    max_points: int = 50_000,
    period: Literal["month", "week"] = "month",
    bin_m: float = 100.0,
    tiles: str = "OpenStreetMap",
) -> Any:
    """Draw events on a folium map: heat maps, choropleth, hot spots, grid popups.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids.
    events : geopandas.GeoDataFrame
        Events from :func:`read_events`.
    stats : EventStats, optional
        Per-grid KPIs (computed with :func:`event_stats` when None).
    hot : GeoDataFrame, bool or None
        Result of :func:`hotspots`; None computes it on ``per_100_households`` (on
        ``events`` when no grid has households); False leaves the layer out.
    max_points : int
        Above this many events the heat maps are aggregated: events are counted in
        `bin_m` squares of the metric CRS (larger squares if still too many) and the
        heat is weighted by the counts. A note on the map says so.
    period : {"month", "week"}
        Step of the animated heat map.
    bin_m : float
        Side of the aggregation squares in metres.
    tiles : str
        Base map tiles.

    Returns
    -------
    folium.Map
        In WGS84, with layers: 事件热力图 Event heat map, 事件时序热力图 Event heat map by
        month/week (HeatMapWithTime), 每百户事件数 Events per 100 households (choropleth
        with a legend and KPI popups per grid), 热点/冷点网格 Hot/cold spot grids, and a
        LayerControl.
    """
    import branca.colormap as bcm
    import folium
    from folium.plugins import HeatMap, HeatMapWithTime

    grids = _grids_of(plan)
    if period not in ("month", "week"):
        raise InputError(f"period must be 'month' or 'week', not {period!r}", source="event_map")
    if stats is None:
        stats = event_stats(grids, events)
    table = _per_grid_table(stats).set_index("grid_code")

    # -- grid layer data (WGS84) ----------------------------------------------
    geoms = shapely.simplify(grids.geometry.to_numpy(), 0.5, preserve_topology=True)
    gw = to_wgs84(
        gpd.GeoDataFrame({"grid_code": grids["grid_code"]}, geometry=geoms, crs=grids.crs)
    )
    gw = gw.set_geometry(shapely.transform(gw.geometry.to_numpy(), lambda c: np.round(c, 6)))
    kpi = table.reindex(grids["grid_code"])
    value_col = "per_100_households"
    caption = "每百户事件数 Events per 100 households"
    vals = kpi[value_col].to_numpy(dtype=float)
    if not np.isfinite(vals).any():
        value_col, caption = "events", "事件数 Events (无户数 no household data)"
        vals = kpi["events"].to_numpy(dtype=float)

    minx, miny, maxx, maxy = gw.total_bounds
    m = folium.Map(tiles=tiles, control_scale=True)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    title = "事件热力图 Event heat map"
    m.get_root().html.add_child(
        folium.Element(
            '<div id="gridmap-title" style="position:fixed;top:10px;left:60px;z-index:9999;'
            "background:rgba(255,255,255,.85);padding:4px 10px;border-radius:4px;"
            f'font:bold 15px sans-serif">{html.escape(title)}</div>'
        )
    )

    # -- heat maps --------------------------------------------------------------
    lon, lat, when = _event_lonlat(events)
    n_ev = len(lon)
    heat, frames, labels, aggregated, used_bin = _heat_data(
        lon, lat, when, grids.crs, max_points=max_points, period=period, bin_m=bin_m
    )
    HeatMap(heat, name="事件热力图 Event heat map", radius=14, blur=18, min_opacity=0.3).add_to(m)
    step = "按月 by month" if period == "month" else "按周 by week"
    HeatMapWithTime(
        frames,
        index=labels,
        name=f"事件时序热力图 Event heat map {step}",
        radius=14,
        max_opacity=0.7,
        auto_play=False,
        show=False,
    ).add_to(m)

    # -- choropleth + popups ---------------------------------------------------
    finite = vals[np.isfinite(vals)]
    vmax = float(np.nanpercentile(finite, 95)) if len(finite) else 1.0
    if not vmax > 0:
        vmax = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    cmap = bcm.LinearColormap(
        ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"], vmin=0.0, vmax=vmax
    )
    cmap.caption = f"{caption}（≥{vmax:.3g} 同色 capped at p95）"
    fills = np.array(
        [cmap(min(v, vmax)) if np.isfinite(v) else "#cccccc" for v in vals], dtype=object
    )
    props = _popup_props(grids, kpi)
    props["_fill"] = fills
    layer = gpd.GeoDataFrame(props, geometry=gw.geometry.to_numpy(), crs=WGS84)
    fields = list(_POPUP_FIELDS)
    folium.GeoJson(
        layer.to_json(drop_id=True),
        name=caption.split("（")[0],
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "color": "#555555",
            "weight": 0.6,
            "fillOpacity": 0.55,
        },
        highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
        popup=folium.GeoJsonPopup(fields=fields, aliases=[_POPUP_FIELDS[f] for f in fields]),
        tooltip=folium.GeoJsonTooltip(fields=["grid_code"], aliases=["网格 Grid"]),
    ).add_to(m)
    cmap.add_to(m)

    # -- hot spots ----------------------------------------------------------------
    if hot is None:
        hot = hotspots(grids, stats, value=value_col) if np.isfinite(vals).sum() >= 3 else False
    if isinstance(hot, gpd.GeoDataFrame) and len(hot):
        sig = hot[hot["hotspot"].isin(["hot", "cold"])]
        if len(sig):
            hw = to_wgs84(sig[["grid_code", "hotspot", sig.geometry.name]].copy())
            hw["label"] = hw["hotspot"].map(_HOT_LABELS)
            folium.GeoJson(
                hw.to_json(drop_id=True),
                name="热点/冷点网格 Hot/cold spot grids",
                style_function=lambda f: {
                    "color": "#d7191c" if f["properties"]["hotspot"] == "hot" else "#2c7bb6",
                    "weight": 3,
                    "fill": False,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=["grid_code", "label"], aliases=["网格 Grid", ""]
                ),
            ).add_to(m)
        else:
            folium.FeatureGroup(name="热点/冷点网格 Hot/cold spot grids (无 none)").add_to(m)

    note = f"{n_ev:,} 条事件 events"
    if aggregated:
        note += (
            f"；超过 {max_points:,} 条，热力图按 {used_bin:g} m 方格聚合、按数量加权 / "
            f"above {max_points:,}: heat maps aggregated to {used_bin:g} m squares, weighted by counts"
        )
    m.get_root().html.add_child(
        folium.Element(
            f'<div id="{"gridmap-aggregation-note" if aggregated else "gridmap-note"}" '
            'style="position:fixed;bottom:28px;right:10px;z-index:9999;max-width:360px;'
            "background:rgba(255,255,255,.9);padding:4px 8px;border-radius:4px;"
            f'font:12px sans-serif">{html.escape(note)}</div>'
        )
    )
    folium.LayerControl(collapsed=False).add_to(m)
    return m


_POPUP_FIELDS = {
    "grid_code": "网格编码 Grid code",
    "households": "户数 Households",
    "events": "事件数 Events",
    "per_100_households": "每百户事件 Per 100 households",
    "on_time_rate": "按时办结率 On-time rate",
    "open": "未办结 Open",
    "overdue": "超期 Overdue",
    "median_handling_hours": "办理时长中位数 Median hours",
}


def _popup_props(grids: gpd.GeoDataFrame, kpi: pd.DataFrame) -> pd.DataFrame:
    """Popup values as display strings (JSON has no NaN)."""

    def fmt(values: pd.Series, spec: str) -> np.ndarray:
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.array([format(x, spec) if np.isfinite(x) else "—" for x in v], dtype=object)

    out = pd.DataFrame({"grid_code": grids["grid_code"].to_numpy(dtype=object)})
    out["households"] = fmt(grids["households"].astype("Float64"), ".0f")
    out["events"] = fmt(kpi["events"], ".0f")
    out["per_100_households"] = fmt(kpi["per_100_households"], ".2f")
    out["on_time_rate"] = np.array(
        [f"{x:.1%}" if np.isfinite(x) else "—" for x in kpi["on_time_rate"].to_numpy(dtype=float)],
        dtype=object,
    )
    out["open"] = fmt(kpi["open"], ".0f")
    out["overdue"] = fmt(kpi["overdue"], ".0f")
    out["median_handling_hours"] = fmt(kpi["median_handling_hours"], ".1f")
    return out


def _event_lonlat(events: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    if {"lon", "lat"} <= set(events.columns) and pd.api.types.is_float_dtype(events["lon"]):
        lon = events["lon"].to_numpy(dtype=float)
        lat = events["lat"].to_numpy(dtype=float)
    else:
        pts = to_wgs84(events[[events.geometry.name]]).geometry
        pts = pts.where(pts.geom_type == "Point", pts.representative_point())
        lon, lat = pts.x.to_numpy(dtype=float), pts.y.to_numpy(dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    return lon[ok], lat[ok], events["reported_at"][ok]


def _heat_data(
    lon: np.ndarray,
    lat: np.ndarray,
    when: pd.Series,
    metric: Any,
    *,
    max_points: int,
    period: str,
    bin_m: float,
) -> tuple[list, list, list[str], bool, float]:
    """Heat points, animation frames and labels; aggregated to squares when large."""
    n = len(lon)
    pidx, ptable = _periods(when, period, None, None)
    labels = list(ptable["period"]) or ["—"]
    n_p = max(len(ptable), 1)
    pidx = np.maximum(pidx, 0)
    aggregated = n > max_points
    used_bin = bin_m
    if not aggregated:
        heat = np.round(np.column_stack([lat, lon]), 5).tolist()
        order = np.argsort(pidx, kind="stable")
        bounds = np.searchsorted(pidx[order], np.arange(n_p + 1))
        pts = np.round(np.column_stack([lat, lon]), 5)[order]
        frames = [pts[bounds[i] : bounds[i + 1]].tolist() for i in range(n_p)]
        return heat, frames, labels, False, used_bin

    to_m = Transformer.from_crs(WGS84, metric, always_xy=True)
    x, y = (np.asarray(a, dtype=float) for a in to_m.transform(lon, lat))
    x0, y0 = np.nanmin(x), np.nanmin(y)
    while True:
        ix = np.floor((x - x0) / used_bin).astype(np.int64)
        iy = np.floor((y - y0) / used_bin).astype(np.int64)
        cell = ix * (int(iy.max()) + 1) + iy
        cells, inv, counts = np.unique(cell, return_inverse=True, return_counts=True)
        if len(cells) <= max_points:
            break
        used_bin *= 2
    ny = int(iy.max()) + 1
    cx = x0 + (cells // ny + 0.5) * used_bin
    cy = y0 + (cells % ny + 0.5) * used_bin
    back = Transformer.from_crs(metric, WGS84, always_xy=True)
    clon, clat = (np.asarray(a, dtype=float) for a in back.transform(cx, cy))
    cap = max(float(np.percentile(counts, 99)), 1.0)
    w = np.round(np.minimum(counts / cap, 1.0), 3)
    heat = np.column_stack([np.round(clat, 5), np.round(clon, 5), w]).tolist()
    # per period and cell
    pc = pidx.astype(np.int64) * len(cells) + inv
    keys, pcounts = np.unique(pc, return_counts=True)
    kp, kc = keys // len(cells), keys % len(cells)
    cap_t = max(float(np.percentile(pcounts, 99)), 1.0)
    wt = np.round(np.minimum(pcounts / cap_t, 1.0), 3)
    rows = np.column_stack([np.round(clat[kc], 5), np.round(clon[kc], 5), wt])
    bounds = np.searchsorted(kp, np.arange(n_p + 1))
    frames = [rows[bounds[i] : bounds[i + 1]].tolist() for i in range(n_p)]
    return heat, frames, labels, True, used_bin


# ---------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------


def write_event_outputs(
    plan: Any,
    events: Any,
    out_dir: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    crs: Any = None,
    tz: str = DEFAULT_TZ,
    layer: str | None = None,
    start: Any = None,
    end: Any = None,
    now: Any = None,
    value: str = "per_100_households",
    confidence: float = 0.95,
    permutations: int = 999,
    seed: int | None = 0,
    max_points: int = 50_000,
    period: Literal["month", "week"] = "month",
) -> list[Path]:
    """Read, assign, measure and map events; write the results to `out_dir`.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids.
    events : path-like, DataFrame or GeoDataFrame
        Events as accepted by :func:`read_events`, or already read by it.
    out_dir : path-like
        Output folder (created).
    columns, crs, tz, layer
        Passed to :func:`read_events` when `events` is not yet read.
    start, end, now
        Passed to :func:`event_stats`.
    value, confidence, permutations, seed
        Passed to :func:`hotspots`. When no grid has households, ``events`` is tested
        instead of ``per_100_households``.
    max_points, period
        Passed to :func:`event_map`.

    Returns
    -------
    list of pathlib.Path
        ``events_map.html``, ``event_kpis_grids.csv/.xlsx``,
        ``event_kpis_communities.csv/.xlsx`` and ``event_kpis_streets.csv/.xlsx`` (when
        the plan has those codes), ``event_hotspots.csv/.xlsx``, and
        ``event_rejects.csv`` when rows were rejected.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grids = _grids_of(plan)
    if not (
        isinstance(events, gpd.GeoDataFrame)
        and isinstance(events.attrs.get("rejects"), EventRejects)
    ):
        events = read_events(events, columns=columns, crs=crs, plan=grids, tz=tz, layer=layer)
    events = (
        events if events.attrs.get("assigned_to") == _grids_key(grids) else _assign(grids, events)
    )
    stats = event_stats(grids, events, start=start, end=end, now=now)
    if value == "per_100_households" and not stats.grids[value].notna().any():
        logger.warning("no grid has households: hot spots are computed on event counts")
        value = "events"
    hot = hotspots(
        grids, stats, value=value, confidence=confidence, permutations=permutations, seed=seed
    )

    written: list[Path] = []
    written += write_table(stats.grids, out / "event_kpis_grids", sheet_name="grids")
    if stats.communities is not None:
        written += write_table(
            stats.communities, out / "event_kpis_communities", sheet_name="communities"
        )
    if stats.streets is not None:
        written += write_table(stats.streets, out / "event_kpis_streets", sheet_name="streets")
    written += write_table(
        pd.DataFrame(hot.drop(columns=hot.geometry.name)),
        out / "event_hotspots",
        sheet_name="hotspots",
    )
    rejects = rejects_of(events)
    if len(rejects):
        path = out / "event_rejects.csv"
        rejects.to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    fmap = event_map(grids, events, stats=stats, hot=hot, max_points=max_points, period=period)
    html_path = out / "events_map.html"
    fmap.save(str(html_path))
    written.append(html_path)
    logger.info("event outputs written to %s (%d files)", out, len(written))
    return written
