"""Per-grid, community and street event figures and closure KPIs (step 3).

KPI definitions (evaluated "as of" a time ``now``)
--------------------------------------------------
closed
    ``closed_at`` is set and ``closed_at <= now``; or ``closed_at`` is missing and the
    status is ``closed`` (closed at an unknown time: it counts as closed, but never as
    closed on time). With a history of the six-step loop
    (:func:`~gridmap.events.workflow.apply_history`) ``closed_at`` is the time of the
    ``closed`` step.
cancelled
    status ``cancelled`` (撤销/作废) and not closed. Cancelled events count in
    ``events`` but are neither open nor due.
unknown
    no usable status (missing, or a value not in
    :data:`~gridmap.events.schema.STATUS_VALUES`) and not closed. Such events count in
    ``events`` and ``unknown`` but are neither open, closed, due, overdue nor
    ``no_deadline``: on-time rates are computed over the other events.
open
    a status of :data:`~gridmap.events.schema.OPEN_STATUSES` (``open`` or a step of the
    loop before ``closed``) and not closed at ``now`` (an event closed after ``now`` is
    open).
due
    the event is closed or open, has a deadline and either it is closed or its deadline
    has passed (``deadline <= now``). Events without a deadline cannot be judged and
    are counted in ``no_deadline`` instead.
closed_on_time
    due, closed, and ``closed_at <= deadline``.
on_time_rate
    ``closed_on_time / due``; NaN when nothing is due.
overdue
    open, with ``deadline < now``.
median_handling_hours, mean_handling_hours
    median and mean of ``closed_at - reported_at`` in hours over events closed by
    ``now``.

``now`` defaults to ``end`` when a window end is given, else to the latest
``reported_at`` or ``closed_at`` in the data (the moment the extract was taken).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputError, SchemaError
from .assign import assign_to_grids, grids_key, grids_of
from .schema import CATEGORIES, OPEN_STATUSES, SOURCES
from .workflow import apply_history

logger = logging.getLogger("gridmap")

__all__ = ["EventStats", "event_stats", "per_grid_table", "period_index"]


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
        ``src_resident``, ``src_other``, ``closed``, ``open``, ``cancelled``,
        ``unknown``, ``due``, ``closed_on_time``, ``on_time_rate``, ``overdue``,
        ``no_deadline``, ``median_handling_hours``, ``mean_handling_hours``. See the
        module docstring for the definitions.
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
        not in any table), ``now``, ``due``, ``closed_on_time``, ``on_time_rate`` (all
        assigned events), ``unknown_status`` (assigned events with an unknown status).
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
    history: pd.DataFrame | None = None,
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
    history : pandas.DataFrame, optional
        Steps of the six-step loop (``event_id``, ``status``, ``at``, ...), e.g. the
        ``history`` lists of the web API or entries made with
        :func:`~gridmap.events.workflow.advance`. Each event then takes the status of
        its latest step and ``closed_at`` from its ``closed`` step
        (:func:`~gridmap.events.workflow.apply_history`).

    Returns
    -------
    EventStats
        Community and street figures are sums over their events (rates are
        recomputed from the sums, medians from the raw events).
    """
    grids = grids_of(plan)
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
    if history is not None:
        events = apply_history(events, history)
    if events.attrs.get("assigned_to") != grids_key(grids) or "grid_code" not in events:
        events = assign_to_grids(grids, events)
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
        period_idx, periods = period_index(ev["reported_at"], by, start_t, end_t)

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
    n_unknown = int(flags["unknown"][assigned].sum())
    if n_unknown:
        notes.append(
            f"{n_unknown} events have an unknown status: counted in 'unknown', neither open "
            "nor closed, and left out of due, on-time and overdue figures"
        )
    due = int(flags["due"][assigned].sum())
    summary = {
        "events": len(ev),
        "assigned": int(assigned.sum()),
        "unassigned": unassigned,
        "now": now_t,
        "due": due,
        "closed_on_time": int(flags["closed_on_time"][assigned].sum()),
        "unknown_status": int(flags["unknown"][assigned].sum()),
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
    status_open = status.isin(OPEN_STATUSES).fillna(False).to_numpy(bool)
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
    # closed after `now`: open then, whatever the status says now
    open_ = ~closed & ~cancelled & (status_open | status_closed | has_closed_at)
    unknown = ~closed & ~cancelled & ~open_
    due = has_deadline & (closed | (open_ & deadline_passed))
    on_time = due & closed_by_now & (closed_at <= deadline).fillna(False).to_numpy(bool)
    overdue = open_ & deadline_before
    no_deadline = ~has_deadline & (closed | open_)
    hours = ((closed_at - rep).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan)
    hours = np.where(closed_by_now, hours, np.nan)
    flags = {
        "closed": closed,
        "open": open_,
        "cancelled": cancelled,
        "unknown": unknown,
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


def period_index(
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
    for name in ("closed", "open", "cancelled", "unknown", "due", "closed_on_time"):
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
    n_h = np.bincount(kv[has_h], minlength=n_keys)
    sum_h = np.bincount(kv[has_h], weights=h[has_h], minlength=n_keys)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["mean_handling_hours"] = np.where(n_h > 0, sum_h / np.maximum(n_h, 1), np.nan)
    return table


def per_grid_table(stats: EventStats | pd.DataFrame) -> pd.DataFrame:
    """The per-grid table of `stats` (an :class:`EventStats` without ``by`` or a table
    with one row per ``grid_code``)."""
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
