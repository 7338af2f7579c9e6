"""Grids as GeoJSON (WGS84), filtered by community or bounding box."""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from ..deps import ReadAccess, get_cache, parse_bbox, plan_view
from ..errors import ApiError
from ..geo import PlanCache, PlanView, feature_collection, grid_stats, lod_level
from ..schemas import ErrorBody

router = APIRouter(prefix="/api/grids", tags=["grids"], dependencies=[ReadAccess])

_GEOJSON = {"content": {"application/geo+json": {"schema": {"type": "object"}}}}
_ERRORS = {
    404: {"model": ErrorBody, "description": "no such plan or grid"},
    422: {"model": ErrorBody, "description": "invalid parameter"},
}


@router.get("", responses={200: _GEOJSON, 304: {"description": "not modified"}, **_ERRORS})
def list_grids(
    request: Request,
    view: Annotated[PlanView, Depends(plan_view)],
    community: Annotated[
        str | None, Query(max_length=32, description="3-digit community code")
    ] = None,
    bbox: Annotated[
        str | None,
        Query(max_length=200, description="minx,miny,maxx,maxy in WGS84 (lon/lat)"),
    ] = None,
    zoom: Annotated[
        float | None,
        Query(
            ge=0,
            le=24,
            description="map zoom: geometry simplified for it (coverage-preserving), "
            "each feature with a ``label`` point; full geometry from zoom 17",
        ),
    ] = None,
) -> Response:
    """The grids of a plan (default the newest) as a GeoJSON FeatureCollection in WGS84.

    Properties: ``grid_code``, ``community_code``, ``street_code``, ``community_name``,
    ``kind``, ``households``, ``buildings``, ``range_min``, ``range_max``,
    ``difficult``, ``flags``, ``flag_reason``, ``name``, ``worker``, ``area_m2``,
    ``polsby_popper``. The answer is cached per plan version (``ETag``).

    With ``zoom`` (a map view), the geometry is simplified to about half a screen
    pixel at that zoom (shared edges stay shared), coordinates are rounded to what the
    zoom shows, features carry the main properties only (``grid_code``,
    ``community_code``, ``community_name``, ``kind``, ``households``, ``range_min``,
    ``range_max``, ``flags``, ``name``; empty ones left out) and ``label`` ([lon, lat]
    of a point well inside the grid, for its label). Each level is built once per plan version; the answer
    names its ``zoom`` level. Combined with ``bbox`` it holds only the view's grids.
    """
    box = parse_bbox(bbox)
    if zoom is not None:
        return _grids_at_zoom(request, view, zoom, community, box)
    headers = {"ETag": view.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if community is None and box is None:
        if request.headers.get("if-none-match") == view.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                view.geojson_gz,
                media_type="application/geo+json",
                headers={**headers, "Content-Encoding": "gzip"},
            )
        return Response(view.geojson, media_type="application/geo+json", headers=headers)
    idx = view.select(community=community, bbox=box)
    data = feature_collection(
        [view.features[i] for i in idx], plan_id=view.plan_id, version=view.version
    )
    return Response(data, media_type="application/geo+json", headers={"Vary": "Accept-Encoding"})


def _gzip_ok(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


def _grids_at_zoom(
    request: Request, view: PlanView, zoom: float, community: str | None, box: tuple | None
) -> Response:
    """Grids simplified for `zoom` (all, or of a community and/or a bbox)."""
    level = lod_level(zoom)
    etag = view.etag[:-1] + f'-z{level}"'
    if community is None and box is None:
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        data, gz = view.lod_collection(level)
        if _gzip_ok(request):
            return Response(
                gz,
                media_type="application/geo+json",
                headers={**headers, "Content-Encoding": "gzip"},
            )
        return Response(data, media_type="application/geo+json", headers=headers)
    feats = view.lod_features(level)
    idx = view.select(community=community, bbox=box)
    data = feature_collection(
        [feats[i] for i in idx], plan_id=view.plan_id, version=view.version, zoom=level
    )
    headers = {"Vary": "Accept-Encoding"}
    if _gzip_ok(request) and len(data) > 2048:
        return Response(
            gzip.compress(data, compresslevel=5),
            media_type="application/geo+json",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return Response(data, media_type="application/geo+json", headers=headers)


@router.get("/{code}", responses={200: _GEOJSON, **_ERRORS})
def get_grid(
    code: Annotated[str, Path(max_length=64, description="15-digit grid code")],
    view: Annotated[PlanView, Depends(plan_view)],
    cache: Annotated[PlanCache, Depends(get_cache)],
) -> JSONResponse:
    """One grid as a GeoJSON Feature (with ``bbox``); ``events`` figures when there are events."""
    feat = view.grid_feature(code)
    if feat is None:
        raise ApiError(404, "unknown_grid", f"no grid {code[:64]!r} in plan {view.plan_id}")
    if cache.store.events_revision()[0]:
        stats = grid_stats(cache, view)
        row: dict[str, Any] = stats["grids"][view.code_index[code]]
        feat["properties"]["events"] = {k: v for k, v in row.items() if k != "grid_code"}
    feat["plan_id"] = view.plan_id
    feat["version"] = view.version
    return JSONResponse(feat, media_type="application/geo+json")
