"""Per-grid event figures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..deps import ReadAccess, get_cache, plan_view
from ..errors import ApiError
from ..geo import PlanCache, PlanView, grid_stats, parse_time
from ..schemas import ErrorBody, IsoTime

router = APIRouter(prefix="/api/stats", tags=["stats"], dependencies=[ReadAccess])


@router.get(
    "/grids",
    responses={
        404: {"model": ErrorBody, "description": "no such plan"},
        422: {"model": ErrorBody, "description": "invalid parameter"},
    },
)
def stats_grids(
    view: Annotated[PlanView, Depends(plan_view)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    start: Annotated[IsoTime | None, Query(description="reported_at >= start")] = None,
    end: Annotated[IsoTime | None, Query(description="reported_at < end")] = None,
) -> dict[str, Any]:
    """Events per grid: count, events per 100 households, open/closed, on-time rate.

    ``on_time_rate`` is closed-on-time / due, where an event is due when it has a
    deadline and is closed or past it (null when nothing is due). With the events
    module installed the figures come from :func:`gridmap.event_stats` (more columns:
    categories, overdue, median handling hours).
    """
    stats = _stats(cache, view, start, end)
    grids = {k: v for k, v in stats.items() if k != "communities"}
    return {"plan_id": view.plan_id, "version": view.version, **grids}


def _stats(cache: PlanCache, view: PlanView, start: Any, end: Any) -> dict[str, Any]:
    if start is not None and end is not None and parse_time(start) >= parse_time(end):
        raise ApiError(422, "invalid_window", "start must be earlier than end")
    return grid_stats(cache, view, start, end)


@router.get(
    "/communities",
    responses={
        404: {"model": ErrorBody, "description": "no such plan"},
        422: {"model": ErrorBody, "description": "invalid parameter"},
    },
)
def stats_communities(
    view: Annotated[PlanView, Depends(plan_view)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    start: Annotated[IsoTime | None, Query(description="reported_at >= start")] = None,
    end: Annotated[IsoTime | None, Query(description="reported_at < end")] = None,
) -> dict[str, Any]:
    """Events and closure KPIs per community: ``events``, ``open``, ``closed``,
    ``unknown``, ``due``, ``closed_on_time``, ``on_time_rate``, ``overdue``, median and
    mean handling hours, summed over the community's grids (rates recomputed from the
    sums, medians from the events). They follow the steps of the event loop: an event
    counts as closed from its ``closed`` step. Empty when there are no events.
    """
    stats = _stats(cache, view, start, end)
    return {
        "plan_id": view.plan_id,
        "version": view.version,
        "method": stats["method"],
        "summary": stats["summary"],
        "communities": stats.get("communities", []),
    }
