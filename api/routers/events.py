"""Events (事件): report them (one or many) and read them back as GeoJSON."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ..deps import ReadAccess, WriteAccess, get_cache, get_store, plan_record, plan_view
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
from ..schemas import ErrorBody, EventIn, EventsAccepted
from ..store import Store

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


@router.post(
    "",
    status_code=201,
    response_model=EventsAccepted,
    responses={
        400: {"model": ErrorBody, "description": "malformed JSON"},
        401: {"model": ErrorBody, "description": "token missing"},
        403: {"model": ErrorBody, "description": "wrong token or writes disabled"},
        413: {"model": ErrorBody, "description": "body too large"},
        422: {"model": ErrorBody, "description": "every event was refused"},
    },
    openapi_extra=_POST_SCHEMA,
    dependencies=[WriteAccess],
)
async def post_events(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
) -> JSONResponse:
    """Report one event (an object) or several (a list).

    Each event is validated on its own: ISO 8601 times (no offset = +08:00), lon/lat
    in range, one of the seven categories (code or Chinese name), inside the plan area
    of the newest plan. Its grid is found by point-in-polygon. Valid events are stored
    in one transaction; the answer lists their ids and the refused ones with reasons
    (201), or is 422 when every event was refused.
    """
    raw = await request.body()
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
        view = cache.view(plan_record(store))
    except ApiError as exc:
        raise ApiError(
            422, "no_plan", "the store has no plan to assign events to: upload one first"
        ) from exc
    return _ingest(items, view, store)


def _ingest(items: list[Any], view: PlanView, store: Store) -> JSONResponse:
    errors: list[dict[str, Any]] = []
    valid: list[tuple[int, EventIn]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(
                {
                    "index": i,
                    "event_id": None,
                    "errors": [{"field": "", "message": "must be a JSON object"}],
                }
            )
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
    for (i, ev), g in zip(valid, gidx, strict=True):
        problem = None
        if g < 0:
            problem = {
                "field": "lon,lat",
                "message": f"point ({ev.lon}, {ev.lat}) is outside the plan area",
            }
        elif ev.event_id and (ev.event_id in existing or ev.event_id in seen):
            problem = {"field": "event_id", "message": f"event_id {ev.event_id!r} already exists"}
        if problem:
            errors.append({"index": i, "event_id": ev.event_id, "errors": [problem]})
            continue
        eid = ev.event_id or "E" + uuid.uuid4().hex[:15]
        seen.add(eid)
        rows.append(
            {
                "event_id": eid,
                "plan_id": view.plan_id,
                "grid_code": str(view.codes[g]),
                "reported_at": iso_cst(ev.reported_at),
                "reported_ts": parse_time(ev.reported_at).timestamp(),
                "category": ev.category,
                "source": ev.source,
                "status": ev.status,
                "deadline": iso_cst(ev.deadline),
                "closed_at": iso_cst(ev.closed_at),
                "lon": ev.lon,
                "lat": ev.lat,
            }
        )
    errors.sort(key=lambda e: e["index"])
    if not rows:
        body = error_body(
            "invalid_events",
            f"all {len(items)} event(s) were refused; see errors",
            items=errors,
        )
        return JSONResponse({**body, "accepted": [], "errors": errors}, status_code=422)
    accepted = store.add_events(rows)
    return JSONResponse(
        {"accepted": accepted, "errors": errors, "plan_id": view.plan_id}, status_code=201
    )


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
    start: Annotated[datetime | None, Query(description="reported_at >= start (ISO 8601)")] = None,
    end: Annotated[datetime | None, Query(description="reported_at < end (ISO 8601)")] = None,
    category: Annotated[str | None, Query(max_length=64, description="category code")] = None,
    limit: Annotated[int, Query(ge=1, le=200_000)] = 50_000,
) -> Response:
    """Events as GeoJSON points (WGS84), oldest first.

    ``grid_code`` is the grid of the viewed plan (``plan``, default the newest) that
    holds the event. ``total`` and ``truncated`` tell whether ``limit`` cut the list.
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
    total = len(df)
    feats = event_features(df.iloc[:limit])
    data = feature_collection(
        feats, plan_id=view.plan_id, version=view.version, total=total, truncated=total > limit
    )
    return Response(data, media_type="application/geo+json")
