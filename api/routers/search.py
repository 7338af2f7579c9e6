"""Search a plan: grids by code (whole or ending), communities, streets, named buildings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from ..deps import ReadAccess, plan_view
from ..errors import ApiError
from ..geo import PlanView
from ..schemas import ErrorBody
from ..search import search

router = APIRouter(prefix="/api/search", tags=["search"], dependencies=[ReadAccess])

#: Longest query accepted (a 15-digit code, or a name).
MAX_QUERY = 64


@router.get(
    "",
    responses={
        404: {"model": ErrorBody, "description": "no such plan"},
        422: {"model": ErrorBody, "description": "empty or too long query, bad limit"},
    },
)
async def search_plan(
    view: Annotated[PlanView, Depends(plan_view)],
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY,
            description="grid code (whole, first or last digits) or part of a community, "
            "street, grid or building name",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=100, description="most results")] = 20,
) -> dict[str, Any]:
    """Find grids, communities, streets and named buildings of a plan (default the newest).

    Results are typed (``type``: ``grid``, ``community``, ``street``, ``building``) with
    ``code``, ``name`` and ``bbox`` ([west, south, east, north], WGS84), ranked: exact
    match first, then a code that starts or ends with the query or a name that starts
    with it, then a name or code containing it. Community codes are the 12-digit prefix
    of their grids' codes, street codes the 9-digit prefix. ``total`` counts all
    matches, of which at most ``limit`` are listed.
    """
    if not q.strip():
        raise ApiError(422, "validation_error", "q must contain a code or a name, not only blanks")
    results, total = await run_in_threadpool(search, view, q, limit)
    return {
        "q": q.strip(),
        "plan_id": view.plan_id,
        "version": view.version,
        "total": total,
        "truncated": total > len(results),
        "results": results,
    }
