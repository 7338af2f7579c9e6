"""Events (事件): report them (one or many), handle them, read them back as GeoJSON."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gridmap.errors import GridmapError
from gridmap.events.schema import OPEN_STATUSES, STEPS
from gridmap.events.workflow import TransitionError, advance, allowed_steps

from ..auth import Principal, check_scope, require
from ..deps import ReadAccess, get_cache, get_store, plan_record, plan_view
from ..errors import ApiError, error_body, validation_details
from ..geo import (
    PlanCache,
    PlanView,
    event_features,
    events_frame,
    feature_collection,
    iso_cst,
    parse_time,
)
from ..schemas import ErrorBody, EventIn, EventOut, EventPatch, EventsAccepted, IsoTime
from ..store import EventConflict, NotFound, Store

router = APIRouter(prefix="/api/events", tags=["events"])

#: Most events accepted in one request.
MAX_BATCH = 10_000

_POST_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EventIn"},
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/EventIn"},
                            "minItems": 1,
                            "maxItems": MAX_BATCH,
                        },
                    ]
                }
            }
        },
    }
}
_WRITE_ERRORS = {
    400: {"model": ErrorBody, "description": "malformed JSON"},
    401: {"model": ErrorBody, "description": "token missing"},
    403: {
        "model": ErrorBody,
        "description": "wrong token, role without the right, out of scope, or writes disabled",
    },
    413: {"model": ErrorBody, "description": "body too large"},
}
PlanQuery = Annotated[
    int | None,
    Query(ge=1, le=2**62, description="plan whose grids the events go to (default: the newest)"),
]


@router.post(
    "",
    status_code=201,
    response_model=EventsAccepted,
    responses={
        **_WRITE_ERRORS,
        404: {"model": ErrorBody, "description": "no such plan"},
        422: {"model": ErrorBody, "description": "every event was refused"},
    },
    openapi_extra=_POST_SCHEMA,
)
async def post_events(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    principal: Annotated[Principal, require("events.report")],
    plan: PlanQuery = None,
) -> JSONResponse:
    """Report one event (an object) or several (a list). Role: worker or admin.

    Each event is validated on its own: ISO 8601 times (no offset = +08:00, years
    1900-2199), lon/lat in range, one of the seven categories (code or Chinese
    name), inside the plan area of the plan ``?plan=`` (default the newest) and, for a
    user with a scope, inside a grid whose code starts with the scope. Its grid is
    found by point-in-polygon. Valid events are stored in one transaction; the
    answer lists their ids and the refused ones with reasons (201), or is 422 when
    every event was refused (403 when one was refused for the scope). An
    ``event_id`` that exists already, also one sent at the same moment to another
    server process, is refused for that item only.
    """
    raw = await request.body()
    return await run_in_threadpool(_post_events, raw, store, cache, principal, plan)


def _post_events(
    raw: bytes, store: Store, cache: PlanCache, principal: Principal, plan: int | None
) -> JSONResponse:
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"the request body is not valid JSON: {exc}") from exc
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ApiError(422, "empty_batch", "send one event object or a non-empty list of them")
    if len(items) > MAX_BATCH:
        raise ApiError(422, "batch_too_large", f"at most {MAX_BATCH} events per request")
    try:
        record = plan_record(store, plan)
    except ApiError as exc:
        if plan is not None:
            raise
        raise ApiError(
            422, "no_plan", "the store has no plan to assign events to: upload one first"
        ) from exc
    return _ingest(items, cache.view(record), store, principal)


def _item_error(index: int, event_id: Any, field: str, message: str) -> dict[str, Any]:
    return {
        "index": index,
        "event_id": event_id if isinstance(event_id, str) else None,
        "errors": [{"field": field, "message": message}],
    }


def _ingest(items: list[Any], view: PlanView, store: Store, principal: Principal) -> JSONResponse:
    errors: list[dict[str, Any]] = []
    valid: list[tuple[int, EventIn]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(_item_error(i, None, "", "must be a JSON object"))
            continue
        try:
            valid.append((i, EventIn.model_validate(item)))
        except ValidationError as exc:
            eid = item.get("event_id") if isinstance(item.get("event_id"), str) else None
            errors.append({"index": i, "event_id": eid, "errors": validation_details(exc.errors())})
    lon = np.array([e.lon for _, e in valid], dtype=float)
    lat = np.array([e.lat for _, e in valid], dtype=float)
    gidx = view.locate(lon, lat)
    given = [e.event_id for _, e in valid if e.event_id]
    existing = store.existing_event_ids(given) if given else set()
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    positions: dict[str, tuple[int, str | None]] = {}
    scope_refused = 0
    for (i, ev), g in zip(valid, gidx, strict=True):
        if g < 0:
            errors.append(
                _item_error(
                    i,
                    ev.event_id,
                    "lon,lat",
                    f"point ({ev.lon}, {ev.lat}) is outside the plan area of plan {view.plan_id}",
                )
            )
            continue
        code = str(view.codes[g])
        if not principal.in_scope(code):
            scope_refused += 1
            errors.append(
                _item_error(
                    i,
                    ev.event_id,
                    "lon,lat",
                    f"point ({ev.lon}, {ev.lat}) falls in grid {code}, outside the scope "
                    f"{principal.scope} of {principal.label()}",
                )
            )
            continue
        if ev.event_id and (ev.event_id in existing or ev.event_id in seen):
            errors.append(
                _item_error(i, ev.event_id, "event_id", f"event_id {ev.event_id!r} already exists")
            )
            continue
        eid = ev.event_id or "E" + uuid.uuid4().hex[:15]
        seen.add(eid)
        positions[eid] = (i, ev.event_id)
        rows.append(
            {
                "event_id": eid,
                "plan_id": view.plan_id,
                "grid_code": code,
                "reported_at": iso_cst(ev.reported_at),
                "reported_ts": parse_time(ev.reported_at).timestamp(),
                "category": ev.category,
                "source": ev.source,
                "status": ev.status,
                "deadline": iso_cst(ev.deadline),
                "closed_at": iso_cst(ev.closed_at),
                "lon": ev.lon,
                "lat": ev.lat,
                "description": (ev.description or "").strip() or None,
            }
        )
    accepted = (
        store.add_events(rows, actor=principal.actor, target=f"plan/{view.plan_id}/events")
        if rows
        else []
    )
    for eid in sorted(set(positions) - set(accepted), key=lambda e: positions[e][0]):
        i, given_id = positions[eid]  # stored by someone else meanwhile
        errors.append(_item_error(i, given_id, "event_id", f"event_id {eid!r} already exists"))
    errors.sort(key=lambda e: e["index"])
    if not accepted:
        status, code = (403, "out_of_scope") if scope_refused else (422, "invalid_events")
        body = error_body(
            code,
            f"all {len(items)} event(s) were refused"
            + (f", {scope_refused} outside your scope {principal.scope}" if scope_refused else "")
            + "; see errors",
            items=errors,
        )
        return JSONResponse({**body, "accepted": [], "errors": errors}, status_code=status)
    return JSONResponse(
        {"accepted": accepted, "errors": errors, "plan_id": view.plan_id}, status_code=201
    )


EventId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$", description="event id"),
]


@router.get(
    "/{event_id}",
    response_model=EventOut,
    responses={404: {"model": ErrorBody, "description": "no such event"}},
    dependencies=[ReadAccess],
)
def get_event(event_id: EventId, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """One event as stored, with its ``revision`` (for ``PATCH``), its ``history`` (the
    report, then every step of the loop taken: status, at, note, worker, actor) and
    ``next_steps`` (the statuses it may go to next)."""
    try:
        return _event_out(store.event(event_id), store.event_history(event_id))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


def _event_out(row: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("fid", "reported_ts")}
    report = {
        "status": "reported",
        "at": row["reported_at"],
        "note": None,
        "worker": None,
        "actor": None,
    }
    out["history"] = [report, *steps]
    out["next_steps"] = list(allowed_steps(row["status"]))
    return out


#: How far in the future a step's time may lie (clocks of phones differ a little).
_CLOCK_SKEW = timedelta(minutes=5)


@router.patch(
    "/{event_id}",
    response_model=EventOut,
    responses={
        **_WRITE_ERRORS,
        404: {"model": ErrorBody, "description": "no such event"},
        409: {"model": ErrorBody, "description": "the event changed meanwhile"},
        422: {"model": ErrorBody, "description": "invalid values or a step out of order"},
    },
)
def handle_event(
    event_id: EventId,
    patch: EventPatch,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    principal: Annotated[Principal, require("events.handle")],
) -> dict[str, Any]:
    """Take an event one step along the loop 上报 → 受理 → 分派 → 处置 → 反馈 → 办结,
    or change its deadline. Role: worker or admin; a scoped user only for events whose
    point lies in a grid of their scope (located in the event's plan as it is now).

    ``{"status": "accepted", "at": "...", "note": "..."}`` records the step (``worker``
    is required for ``assigned``); its ``history`` shows it. Steps go in order: from each
    step only the next one, or ``cancelled`` (a ``reported``/``open`` event may also be
    ``closed`` at once: handled on the spot). Closed and cancelled events do not change
    any more. A step out of order, or earlier than the step before, is a 422 naming the
    next step (code ``invalid_step``). Closing sets ``closed_at`` to the step's time, so
    the KPIs of ``/api/stats`` follow the loop.
    """
    try:
        row = store.event(event_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    changes = patch.model_dump(exclude_unset=True, exclude={"revision"})
    if not changes:
        raise ApiError(422, "nothing_to_change", "give status (with at, note, worker) or deadline")
    if principal.scope is not None:
        check_scope(principal, [_event_grid(store, cache, row)], "handle events")
    if patch.revision is not None and patch.revision != row["revision"]:
        raise EventConflict(event_id, int(patch.revision), int(row["revision"]))
    status = changes.pop("status", None)
    at, note, worker = (changes.pop(k, None) for k in ("at", "note", "worker"))
    step = None
    if status is None:
        if at is not None or note is not None or worker is not None:
            raise ApiError(
                422, "validation_error", "at, note and worker record a step: give its status"
            )
    else:
        step = _step(event_id, row, store, status, at, note, worker, changes, principal)
        changes["status"] = step["status"]
        if step["status"] == "closed":
            changes["closed_at"] = step["at"]
        if step["status"] == "assigned":
            changes["worker"] = step["worker"]
    reported = datetime.fromisoformat(row["reported_at"])
    for key in ("closed_at", "deadline"):
        value = changes.get(key)
        if isinstance(value, datetime):
            if value < reported:
                raise ApiError(
                    422,
                    "validation_error",
                    f"{key} is earlier than reported_at ({row['reported_at']})",
                )
            changes[key] = iso_cst(value)
    expected = row["revision"]
    updated = store.update_event(event_id, changes, expected, actor=principal.actor, step=step)
    return _event_out(updated, store.event_history(event_id))


def _step(
    event_id: str,
    row: dict[str, Any],
    store: Store,
    status: str,
    at: datetime | None,
    note: str | None,
    worker: str | None,
    changes: dict[str, Any],
    principal: Principal,
) -> dict[str, Any]:
    """Check a step with :func:`gridmap.events.advance`; return it as stored."""
    closed_at = changes.get("closed_at")
    if closed_at is not None:
        if status != "closed":
            raise ApiError(422, "validation_error", "closed_at goes with status closed only")
        if at is not None and parse_time(at) != parse_time(closed_at):
            raise ApiError(
                422, "validation_error", "closed_at and at differ: give one time for the close"
            )
        at = closed_at
    now = datetime.now(UTC)
    when = parse_time(at) if at is not None else now
    if when > now + _CLOCK_SKEW:
        raise ApiError(422, "validation_error", f"at {when.isoformat()} is in the future")
    event = {
        "status": row["status"],
        "reported_at": row["reported_at"],
        "history": store.event_history(event_id),
    }
    try:
        entry = advance(event, status, when, note=note, worker=worker, actor=principal.name)
    except TransitionError as exc:
        raise ApiError(
            422, "invalid_step", exc.message, current=exc.current, next_steps=_next(exc.current)
        ) from exc
    except GridmapError as exc:
        raise ApiError(422, "invalid_step", exc.message) from exc
    return {
        "status": entry["status"],
        "at": iso_cst(when),
        "ts": when.timestamp(),
        "note": entry["note"],
        "worker": entry["worker"],
    }


def _next(status: str) -> list[str]:
    return list(allowed_steps(status))


def _event_grid(store: Store, cache: PlanCache, row: dict[str, Any]) -> str:
    """The grid holding an event's point in its plan now (the newest plan when that
    plan is gone); outside every grid: the grid it was given on arrival, or ``""``."""
    try:
        record = plan_record(store, row["plan_id"])
    except ApiError:
        record = plan_record(store, None)
    view = cache.view(record)
    g = int(view.locate(np.array([row["lon"]]), np.array([row["lat"]]))[0])
    return str(view.codes[g]) if g >= 0 else str(row["grid_code"] or "")


@router.get(
    "",
    responses={
        200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}},
        404: {"model": ErrorBody, "description": "no such plan or grid"},
        422: {"model": ErrorBody, "description": "invalid parameter"},
    },
    dependencies=[ReadAccess],
)
def get_events(
    view: Annotated[PlanView, Depends(plan_view)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    grid: Annotated[str | None, Query(max_length=64, description="grid code")] = None,
    start: Annotated[IsoTime | None, Query(description="reported_at >= start")] = None,
    end: Annotated[IsoTime | None, Query(description="reported_at < end")] = None,
    category: Annotated[str | None, Query(max_length=64, description="category code")] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=200,
            description="comma-separated statuses (reported, accepted, assigned, handled, "
            "feedback, closed, open, cancelled), or active: every event not closed nor "
            "cancelled",
        ),
    ] = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="by report time: oldest (asc) or newest first")
    ] = "asc",
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="events to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=200_000)] = 50_000,
) -> Response:
    """Events as GeoJSON points (WGS84), oldest first (``order=desc``: newest first).

    ``grid_code`` is the grid of the viewed plan (``plan``, default the newest) that
    holds the event; ``status`` and ``worker`` tell where it is in the loop. Filters:
    ``grid``, the window ``start``/``end``, ``category``, ``status``. ``total`` counts the
    events that match; ``offset`` and ``limit`` page through them (``truncated`` tells
    whether more follow).
    """
    if grid is not None and grid not in view.code_index:
        raise ApiError(404, "unknown_grid", f"no grid {grid!r} in plan {view.plan_id}")
    if start is not None and end is not None and parse_time(start) >= parse_time(end):
        raise ApiError(422, "invalid_window", "start must be earlier than end")
    df = events_frame(cache, view)
    if start is not None:
        df = df[df["reported_ts"] >= parse_time(start).timestamp()]
    if end is not None:
        df = df[df["reported_ts"] < parse_time(end).timestamp()]
    if grid is not None:
        df = df[df["plan_grid"] == grid]
    if category is not None:
        df = df[df["category"] == category]
    if status is not None:
        df = df[df["status"].isin(_statuses(status))]
    if order == "desc":
        df = df.iloc[::-1]
    total = len(df)
    feats = event_features(df.iloc[offset : offset + limit])
    data = feature_collection(
        feats,
        plan_id=view.plan_id,
        version=view.version,
        total=total,
        truncated=total > offset + limit,
        offset=offset,
    )
    return Response(data, media_type="application/geo+json")


#: Statuses ``GET /api/events?status=`` knows; ``active`` stands for the unfinished ones.
_LIST_STATUSES = (*STEPS, "open", "cancelled", "unknown")


def _statuses(text: str) -> list[str]:
    wanted: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "active":
            wanted += sorted(OPEN_STATUSES)
        elif part in _LIST_STATUSES:
            wanted.append(part)
        else:
            raise ApiError(
                422,
                "invalid_status",
                f"unknown status {part!r}; use {', '.join(_LIST_STATUSES)} or active",
            )
    return wanted
