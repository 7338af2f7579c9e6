"""The six-step event loop (step 5): 上报 → 受理 → 分派 → 处置 → 反馈 → 办结.

An event is ``reported`` (上报) by a grid worker or a resident, ``accepted`` (受理) by
the office, ``assigned`` (分派) to a worker, ``handled`` (处置) by that worker, the
result is fed back (``feedback``, 反馈) to whoever reported it, and the office
``closed`` (办结) it. (DOMAIN.md words the same loop as 源头发现、采集建档、分流交办、
检查督促、结果反馈、综合考评.) The order is checked:

* From each step the only way forward is the next step. Steps are never skipped, and
  none is taken back: a closed event stays closed (report a new one when the matter
  comes back). DOMAIN.md describes no reopening, so none is offered.
* One exception, at the start: a ``reported`` event may be ``closed`` at once. This is
  a grid worker settling a small matter on the spot ("small matters stay in the grid"),
  and it is also how a closure made outside gridmap is recorded.
* ``cancelled`` (撤销) ends an event from any step before ``closed``.
* ``open`` (an event from an older file or client, whose step is not tracked) stands
  where ``reported`` stands.
* Each step's time is not earlier than the previous step's (nor the report's).
* ``assigned`` names the worker.

:func:`advance` checks one step and returns the history entry to store;
:func:`apply_history` gives a table of events the status and ``closed_at`` of their
latest steps, so the KPIs of :func:`~gridmap.events.event_stats` follow the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .schema import DEFAULT_TZ, STATUS_VALUES, STEPS, norm_key

__all__ = [
    "TransitionError",
    "advance",
    "allowed_steps",
    "apply_history",
    "next_step",
    "normalise_status",
]

_RANK = {s: i for i, s in enumerate(STEPS)}
_START = ("reported", "open")


class TransitionError(InputError):
    """A step of the loop out of order, back in time, or without its worker.

    Attributes
    ----------
    current : str
        The event's status before the step.
    target : str
        The status asked for.
    """

    def __init__(self, message: str, *, current: str, target: str, source: str = "event"):
        self.current = current
        self.target = target
        super().__init__(message, source=source)


def normalise_status(value: Any) -> str | None:
    """Status code of a value as written (``受理``, ``Accepted``, ``已派遣`` ...).

    Returns None for a missing value or one not in
    :data:`~gridmap.events.schema.STATUS_VALUES`.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    key = norm_key(str(value))
    lookup = {norm_key(k): v for k, v in STATUS_VALUES.items()}
    return lookup.get(key)


def next_step(status: str) -> str | None:
    """The step that follows `status` in the loop; None after ``closed``/``cancelled``
    and for an unknown status."""
    if status in _START:
        return "accepted"
    rank = _RANK.get(status)
    if rank is None or rank + 1 >= len(STEPS):
        return None
    return STEPS[rank + 1]


def allowed_steps(status: str) -> tuple[str, ...]:
    """Every status an event at `status` may go to next (see the module docstring)."""
    nxt = next_step(status)
    if nxt is None:
        return ()
    if status in _START:
        return (nxt, "closed", "cancelled")
    return (nxt, "cancelled")


def _as_time(value: Any, tz: Any, label: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot read {label}={value!r} as a time", source="event") from exc
    if ts is pd.NaT:
        raise InputError(f"{label} is missing", source="event")
    return ts.tz_localize(tz) if ts.tzinfo is None else ts


def _current(event: Any) -> tuple[str, pd.Timestamp | None]:
    """Status of `event` and the time of its latest step (or report)."""
    if isinstance(event, pd.DataFrame):  # the event's history
        if len(event) == 0:
            return "reported", None
        if not {"status", "at"} <= set(event.columns):
            raise InputError("a history table needs 'status' and 'at' columns", source="event")
        times = pd.to_datetime(event["at"], utc=True, format="ISO8601")
        last = len(event) - 1 - int(np.argmax(times.to_numpy()[::-1]))  # latest, last on ties
        # the latest entry's own offset (naive times of the next step are read in it)
        return str(event["status"].iloc[last]), _as_time(event["at"].iloc[last], DEFAULT_TZ, "at")
    if not isinstance(event, Mapping | pd.Series):
        raise InputError(
            f"expected an event (mapping or row) or its history table, not {type(event).__name__}",
            source="event",
        )
    status = event.get("status")
    status = "reported" if status is None or pd.isna(status) else str(status)
    prev = None
    history = event.get("history")
    if isinstance(history, list | tuple) and history:
        frame = pd.DataFrame(list(history))
        status, prev = _current(frame)
    else:
        for key in ("at", "reported_at"):
            value = event.get(key)
            if value is not None and not pd.isna(value):
                prev = _as_time(value, DEFAULT_TZ, key)
                break
    return status, prev


def advance(
    event: Mapping[str, Any] | pd.Series | pd.DataFrame,
    status: str,
    at: Any = None,
    note: str | None = None,
    worker: str | None = None,
    *,
    actor: str | None = None,
) -> dict[str, Any]:
    """Check one step of the loop and return its history entry.

    A pure function: nothing is changed; store the entry (and the event's new status)
    yourself, as the web API does.

    Parameters
    ----------
    event : mapping, pandas.Series or pandas.DataFrame
        The event as it is now: a row or dict with ``status`` and ``reported_at`` (and
        optionally ``history``, a list of earlier entries), the entry the previous call
        returned (``status``, ``at``), or the event's history table (``status``,
        ``at``; its latest entry is the current state).
    status : str
        The status to go to: a step (``accepted``, ``assigned``, ``handled``,
        ``feedback``, ``closed``) or ``cancelled``, as code or Chinese name (受理, 分派,
        处置, 反馈, 办结, 撤销 ...).
    at : str, datetime or Timestamp, optional
        When the step was taken (default: now). A time without an offset is in the zone
        of the event's times (Asia/Shanghai when unknown).
    note : str, optional
        Free text (what was done, the resident's answer ...).
    worker : str, optional
        The worker the event goes to; required for ``assigned``.
    actor : str, optional
        Who records the step.

    Returns
    -------
    dict
        ``{"status", "at" (tz-aware Timestamp), "note", "worker", "actor", "from"}``.

    Raises
    ------
    TransitionError
        The step is not allowed from the current status (the message names the next
        step), `at` is earlier than the previous step, or ``assigned`` has no worker.
    InputError
        Unknown status or unreadable time.
    """
    current, prev_at = _current(event)
    target = normalise_status(status)
    if target is None or target not in (*STEPS, "cancelled"):
        raise InputError(
            f"unknown step {status!r}; the steps are {', '.join(STEPS[1:])} (or cancelled)",
            source="event",
        )
    allowed = allowed_steps(current)
    if target not in allowed:
        if not allowed:
            why = (
                f"the event is {current}: it cannot change any more"
                if current in ("closed", "cancelled")
                else f"the event's status {current!r} is not a step of the loop"
            )
            raise TransitionError(
                f"cannot go from {current} to {target}; {why}", current=current, target=target
            )
        nxt = next_step(current)
        extra = " (or closed at once, when handled on the spot)" if current in _START else ""
        raise TransitionError(
            f"cannot go from {current} to {target}; next step is {nxt}{extra}",
            current=current,
            target=target,
        )
    tz = prev_at.tz if prev_at is not None else DEFAULT_TZ
    when = (
        pd.Timestamp(datetime.now().astimezone()).tz_convert(tz)
        if at is None
        else _as_time(at, tz, "at")
    )
    if prev_at is not None and when < prev_at:
        raise TransitionError(
            f"at {when.isoformat()} is earlier than the previous step ({current} at "
            f"{prev_at.tz_convert(when.tz).isoformat()})",
            current=current,
            target=target,
        )
    if worker is not None and not str(worker).strip():
        worker = None
    if target == "assigned" and worker is None:
        raise TransitionError(
            "assigning an event needs the worker it goes to (worker=)",
            current=current,
            target=target,
        )
    return {
        "status": target,
        "at": when,
        "note": note,
        "worker": None if worker is None else str(worker).strip(),
        "actor": actor,
        "from": current,
    }


def apply_history(events: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Give events the status and closing time of their latest steps.

    Parameters
    ----------
    events : pandas.DataFrame or geopandas.GeoDataFrame
        Events with ``event_id`` and a tz-aware ``reported_at`` (from
        :func:`~gridmap.events.read_events`).
    history : pandas.DataFrame
        One row per step: ``event_id``, ``status`` (code or Chinese name), ``at``
        (ISO 8601 text or times); optional ``worker``, ``note``. Steps are checked in
        time order per event, starting from ``reported``.

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        A copy of `events`: events with steps get ``status`` = their latest step,
        ``closed_at`` = the time of their ``closed`` step (NaT when not closed) and
        ``worker`` = the worker of their latest ``assigned`` step. Events without steps
        are unchanged.

    Raises
    ------
    InputError
        A step out of order or earlier than the report, or an unknown status; the
        message names the first events concerned.
    """
    need = {"event_id", "status", "at"}
    if not need <= set(history.columns):
        raise InputError(
            f"history needs columns {sorted(need)}; it has {list(history.columns)}",
            source="history",
        )
    out = events.copy()
    if len(history) == 0:
        return out
    tz = events["reported_at"].dt.tz
    h = pd.DataFrame(
        {
            "event_id": history["event_id"].astype(str).to_numpy(),
            "status": [normalise_status(s) for s in history["status"]],
            "at": pd.to_datetime(history["at"], utc=True, format="ISO8601").dt.tz_convert(tz),
            "worker": history["worker"].to_numpy() if "worker" in history else None,
            "order": np.arange(len(history)),
        }
    )
    unknown = h["status"].isna() | ~h["status"].isin([*STEPS, "cancelled"])
    if unknown.any():
        bad = history.loc[unknown.to_numpy(), "status"].astype(str).unique()[:5]
        raise InputError(f"history has unknown statuses {list(bad)}", source="history")
    ids = out["event_id"].astype(str)
    pos = pd.Index(ids).get_indexer(h["event_id"])
    h = h[pos >= 0].assign(pos=pos[pos >= 0]).sort_values(["pos", "at", "order"], kind="stable")
    if len(h) == 0:
        return out
    # order check, vectorised: previous status per event (the report before the first)
    first = np.r_[True, h["pos"].to_numpy()[1:] != h["pos"].to_numpy()[:-1]]
    status = h["status"].to_numpy(dtype=object)
    prev = np.where(first, "reported", np.roll(status, 1))
    rank = np.array([_RANK.get(s, -1) for s in status])
    prev_rank = np.array([_RANK.get(s, -1) for s in prev])
    ok = (rank == prev_rank + 1) & (prev_rank >= 0)
    ok |= (prev == "reported") & (status == "closed")
    ok |= (status == "cancelled") & (prev_rank >= 0) & (prev != "closed")
    rep = _utc(out["reported_at"])[h["pos"].to_numpy()]
    at = _utc(h["at"])
    prev_at = np.where(first, rep, np.roll(at, 1))
    ok &= ~(at < prev_at)
    if not ok.all():
        where = np.flatnonzero(~ok)[:5]
        detail = "; ".join(
            f"event {h['event_id'].iloc[i]}: {prev[i]} -> {status[i]} at {h['at'].iloc[i]}"
            for i in where
        )
        raise InputError(
            f"{int((~ok).sum())} history steps out of order or earlier than the step "
            f"before: {detail}",
            source="history",
        )
    last = h.groupby("pos", sort=False).tail(1)
    status_col = out["status"].astype(object).to_numpy(copy=True)
    status_col[last["pos"].to_numpy()] = last["status"].to_numpy()
    out["status"] = pd.array(status_col, dtype="str")
    closed_at = out["closed_at"].copy() if "closed_at" in out else None
    if closed_at is None:
        closed_at = pd.Series(pd.NaT, index=out.index, dtype=f"datetime64[us, {tz}]")
    stepped = out.index[last["pos"].to_numpy()]
    closed_at.loc[stepped] = pd.NaT
    closes = h[h["status"] == "closed"].groupby("pos").tail(1)
    closed_at.iloc[closes["pos"].to_numpy()] = closes["at"].dt.tz_convert(tz).array
    out["closed_at"] = closed_at
    assigned = h[(h["status"] == "assigned") & h["worker"].notna()].groupby("pos").tail(1)
    if len(assigned):
        worker = (
            out["worker"].astype(object).to_numpy(copy=True)
            if "worker" in out
            else np.full(len(out), None, dtype=object)
        )
        worker[assigned["pos"].to_numpy()] = assigned["worker"].to_numpy()
        out["worker"] = worker
    return out


def _utc(times: pd.Series) -> np.ndarray:
    """Tz-aware times as naive UTC datetime64 (NaT kept), for vectorised comparisons."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
