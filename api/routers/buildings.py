"""Buildings of a grid or of a map view, as GeoJSON (WGS84)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from ..deps import ReadAccess, get_settings, parse_bbox, plan_view
from ..errors import ApiError
from ..geo import PlanView, feature_collection
from ..schemas import ErrorBody
from ..settings import Settings

router = APIRouter(prefix="/api/buildings", tags=["buildings"], dependencies=[ReadAccess])


@router.get(
    "",
    responses={
        200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}},
        404: {"model": ErrorBody, "description": "no such plan or grid"},
        422: {"model": ErrorBody, "description": "invalid parameter"},
    },
)
def list_buildings(
    view: Annotated[PlanView, Depends(plan_view)],
    settings: Annotated[Settings, Depends(get_settings)],
    grid: Annotated[str | None, Query(max_length=64, description="grid code")] = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minx,miny,maxx,maxy in WGS84")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="most features")] = None,
) -> Response:
    """Buildings of one grid (``grid``) and/or in a bounding box (``bbox``); one is needed.

    Properties: ``building_id``, ``grid_code``, ``households``, ``use``, ``levels``,
    ``units``, ``name``. At most ``limit`` (default the server's ``max_buildings``)
    features; ``total`` and ``truncated`` tell whether more matched.
    """
    box = parse_bbox(bbox)
    if grid is None and box is None:
        raise ApiError(
            422, "missing_filter", "give grid=CODE or bbox=minx,miny,maxx,maxy to keep it light"
        )
    if grid is not None and grid not in view.code_index:
        raise ApiError(404, "unknown_grid", f"no grid {grid!r} in plan {view.plan_id}")
    cap = min(limit or settings.max_buildings, max(settings.max_buildings, 1) * 20)
    feats, total = view.buildings(grid=grid, bbox=box, limit=cap)
    data = feature_collection(
        feats,
        plan_id=view.plan_id,
        version=view.version,
        total=total,
        truncated=total > len(feats),
    )
    return Response(data, media_type="application/geo+json")
