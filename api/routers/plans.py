"""Plans: list, read, edit (optimistic concurrency), upload footprints to build one."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridmap.errors import GridmapError

from ..auth import Principal, check_scope, require
from ..deps import ReadAccess, get_cache, get_settings, get_store
from ..errors import ApiError, validation_details
from ..geo import PLAN_LAYERS, PlanCache, clean_json
from ..jobs import UPLOAD_KINDS, JobRunner, PartitionParams, UploadRefused, ZipLimits, sniff_upload
from ..schemas import ErrorBody, EvacuationOverlay, JobAccepted, Name, PlanOut, PlanPatch
from ..settings import Settings
from ..store import NotFound, PlanRecord, Store, VersionConflict, plan_to_bytes
from ..upload import UploadForm, read_upload

router = APIRouter(prefix="/api/plans", tags=["plans"])

_ERRORS = {
    401: {"model": ErrorBody, "description": "token missing"},
    403: {
        "model": ErrorBody,
        "description": "wrong token, role without the right, out of scope, or writes disabled",
    },
    404: {"model": ErrorBody, "description": "no such plan"},
    422: {"model": ErrorBody, "description": "invalid input"},
}
PlanId = Annotated[int, Path(ge=1, le=2**62, description="plan id")]


def _record_or_404(store: Store, plan_id: int) -> PlanRecord:
    try:
        return store.plan(plan_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


def _plan_out(store: Store, record: PlanRecord, with_versions: bool = False) -> dict[str, Any]:
    out = record.as_dict()
    if with_versions:
        out["versions"] = store.versions(record.id)
    return clean_json(out)


@router.get("", response_model=list[PlanOut], dependencies=[ReadAccess])
def list_plans(store: Annotated[Store, Depends(get_store)]) -> list[dict[str, Any]]:
    """Every plan (its current version), newest first."""
    return [_plan_out(store, r) for r in store.plans()]


@router.get("/{plan_id}", response_model=PlanOut, responses=_ERRORS, dependencies=[ReadAccess])
def get_plan(plan_id: PlanId, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """One plan: summary, notes, current version and the list of saved versions."""
    return _plan_out(store, _record_or_404(store, plan_id), with_versions=True)


@router.get(
    "/{plan_id}/gpkg",
    responses={**_ERRORS, 200: {"content": {"application/geopackage+sqlite3": {}}}},
    dependencies=[ReadAccess],
)
def download_plan(
    plan_id: PlanId,
    store: Annotated[Store, Depends(get_store)],
    version: Annotated[int | None, Query(ge=1, le=2**31)] = None,
) -> Response:
    """The plan as a GeoPackage (:func:`gridmap.read_plan` reads it), any saved version."""
    record = _record_or_404(store, plan_id)
    v = version or record.version
    try:
        data = store.plan_bytes(plan_id, v)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return Response(
        data,
        media_type="application/geopackage+sqlite3",
        headers={"Content-Disposition": f'attachment; filename="plan_{plan_id}_v{v}.gpkg"'},
    )


@router.get(
    "/{plan_id}/layers/{name}",
    responses={**_ERRORS, 200: {"content": {"application/geo+json": {}}}},
    dependencies=[ReadAccess],
)
def plan_layer(
    plan_id: PlanId,
    name: Annotated[str, Path(description="communities, barriers or compounds")],
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    request: Request,
    zoom: Annotated[
        float | None,
        Query(ge=0, le=24, description="map zoom: geometry simplified for it"),
    ] = None,
) -> Response:
    """A background layer of the plan in WGS84 GeoJSON (roads, rivers, communities);
    with ``zoom``, simplified to about half a screen pixel at that zoom."""
    if name not in PLAN_LAYERS:
        raise ApiError(
            404, "not_found", f"unknown layer {name[:40]!r}; use one of {list(PLAN_LAYERS)}"
        )
    view = cache.view(_record_or_404(store, plan_id))
    data = view.layer(name, zoom)
    if data is None:
        data = b'{"type":"FeatureCollection","features":[]}'
    if len(data) > 4096 and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            gzip.compress(data, compresslevel=5),
            media_type="application/geo+json",
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return Response(data, media_type="application/geo+json")


@router.get(
    "/{plan_id}/overlays/evacuation",
    response_model=EvacuationOverlay,
    responses=_ERRORS,
    dependencies=[ReadAccess],
)
def evacuation_overlay(
    plan_id: PlanId, store: Annotated[Store, Depends(get_store)]
) -> dict[str, Any]:
    """The plan's evacuation plan (:func:`gridmap.plan_evacuation`), in WGS84 GeoJSON.

    ``shelters`` (points: ``name``, ``capacity``, ``load``, ``pct_used``, ...),
    ``routes`` (lines building -> shelter: ``shelter_id``, ``shelter``, ``persons``, ...),
    ``impassable`` (flooded road edges) and ``summary`` (``placed_persons``,
    ``unplaced_persons`` by reason, ``clearance_time_min``, ...). 404 when the plan has
    no evacuation overlay.
    """
    return _overlay_or_404(store, plan_id, "evacuation")


def _overlay_or_404(store: Store, plan_id: int, name: str) -> dict[str, Any]:
    _record_or_404(store, plan_id)
    data = store.overlay(plan_id, name)
    if data is None:
        raise ApiError(
            404,
            "not_found",
            f"plan {plan_id} has no overlay {name[:64]!r}; it has {store.overlay_names(plan_id)}",
        )
    return clean_json({"plan_id": plan_id, "name": name, **data})


@router.get("/{plan_id}/overlays/{name}", responses=_ERRORS, dependencies=[ReadAccess])
def plan_overlay(
    plan_id: PlanId,
    name: Annotated[str, Path(max_length=64, description="overlay name, e.g. flood")],
    store: Annotated[Store, Depends(get_store)],
) -> dict[str, Any]:
    """Per-grid figures computed for the plan by another gridmap step.

    ``flood``: ``{"grids": [{"grid_code", "grade" (red/orange/yellow/blue/none),
    "households_at_risk", "persons_at_risk", ...}], "thresholds": {...}}``.
    ``evacuation`` has its own operation (schema ``EvacuationOverlay``).
    """
    return _overlay_or_404(store, plan_id, name)


@router.patch(
    "/{plan_id}",
    response_model=PlanOut,
    responses={
        **_ERRORS,
        400: {"model": ErrorBody, "description": "malformed JSON"},
        409: {"model": ErrorBody, "description": "stale version"},
        413: {"model": ErrorBody, "description": "body too large"},
    },
)
def edit_plan(
    plan_id: PlanId,
    patch: PlanPatch,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    principal: Annotated[Principal, require("plans.edit")],
) -> dict[str, Any]:
    """Edit a plan's name or grids' names and workers; saved as a new version.
    Role: planner or admin.

    Send the ``version`` you edited. When somebody saved a newer version meanwhile
    the answer is 409 with ``current_version``: reload, re-apply, send again. A user
    with a scope may edit only grids of the stored plan whose codes start with it,
    and rename the plan only when all its grids do (403 ``out_of_scope``).
    """
    record = _record_or_404(store, plan_id)
    if patch.version != record.version:
        raise VersionConflict(plan_id, patch.version, record.version)
    if patch.name is None and not patch.grids:
        raise ApiError(422, "nothing_to_change", "give a new name or at least one grid edit")
    plan = cache.view(record).plan
    grids = plan.grids.copy()
    codes = grids["grid_code"].astype(str)
    pos = {c: i for i, c in enumerate(codes)}
    seen: set[str] = set()
    unknown = [g.grid_code for g in patch.grids if g.grid_code not in pos]
    if unknown:
        raise ApiError(
            422, "unknown_grid", f"no grid {unknown[0]} in plan {plan_id}", grids=unknown[:20]
        )
    check_scope(principal, [codes.iloc[pos[g.grid_code]] for g in patch.grids], "edit grids")
    if patch.name is not None:
        check_scope(principal, codes, f"rename plan {plan_id}, which has grids")
    for g in patch.grids:
        if g.grid_code in seen:
            raise ApiError(422, "duplicate_grid", f"grid {g.grid_code} is edited twice")
        seen.add(g.grid_code)
        for col in ("name", "worker"):
            value = getattr(g, col)
            if value is not None:
                grids.iloc[pos[g.grid_code], grids.columns.get_loc(col)] = value
    history = list(plan.history) + [
        {
            "what": "edit",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "who": principal.name,
            "grids": sorted(seen)[:100],
            "name": patch.name,
            "reason": patch.comment,
            "from_version": record.version,
        }
    ]
    new_plan = dataclasses.replace(plan, grids=grids, history=history)
    data = plan_to_bytes(new_plan)
    updated = store.update_plan(
        plan_id,
        patch.version,
        data,
        record.summary,
        record.notes,
        name=patch.name,
        comment=patch.comment or f"edited {len(seen)} grid(s)",
        actor=principal.actor,
        audit_extra={"grids": sorted(seen)} if seen else None,
    )
    return _plan_out(store, updated, with_versions=True)


class _UploadForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Name | None = Field(None, min_length=1, max_length=200)
    admin_code: str | None = Field(None, pattern=r"^\d{6}$")
    household_min: int = Field(300, ge=1, le=100_000)
    household_max: int = Field(500, ge=1, le=100_000)
    crs: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9:_.\- ]+$")
    seed: int = Field(0, ge=0, le=2**31)
    encoding: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r}; e.g. GBK, GB18030, UTF-8") from None
        return value


_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "footprints: .gpkg, .geojson/.json or zipped Shapefile (.zip)",
                        },
                        "name": {"type": "string", "maxLength": 200},
                        "admin_code": {"type": "string", "pattern": "^[0-9]{6}$"},
                        "household_min": {"type": "integer", "minimum": 1, "default": 300},
                        "household_max": {"type": "integer", "minimum": 1, "default": 500},
                        "crs": {"type": "string", "description": "CRS of a source without one"},
                        "seed": {"type": "integer", "minimum": 0, "default": 0},
                        "encoding": {
                            "type": "string",
                            "description": "encoding of a Shapefile's attributes without .cpg, "
                            "e.g. GBK",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={
        **_ERRORS,
        400: {"model": ErrorBody, "description": "malformed multipart body or not UTF-8"},
        413: {
            "model": ErrorBody,
            "description": "upload too large, or a zip unpacking to too much",
        },
    },
    openapi_extra=_UPLOAD_SCHEMA,
)
async def upload_plan(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    settings: Annotated[Settings, Depends(get_settings)],
    principal: Annotated[Principal, require("plans.upload")],
) -> JSONResponse:
    """Upload building footprints; a background job partitions them into a new plan.
    Role: planner or admin.

    Multipart form: ``file`` (GeoPackage, GeoJSON or zipped Shapefile; at most
    ``GRIDMAP_MAX_UPLOAD_MB``; a zip may unpack to at most ``GRIDMAP_MAX_UNZIPPED_MB``
    and 200 times its size), optional ``name``, ``admin_code`` (6 digits),
    ``household_min``/``household_max``, ``crs``, ``seed``, ``encoding`` (of a
    Shapefile's attributes without ``.cpg``, e.g. ``GBK``). Names must be UTF-8 (or
    the request's declared ``charset``). A user with a scope must be scoped to a
    district (6 digits); the plan's codes then start with it. Answers 202 with the
    job id; follow it at ``GET /api/jobs/{id}``.
    """
    runner: JobRunner = request.app.state.jobs
    job_id, workdir = runner.new_workdir()
    try:
        form = await read_upload(
            request.headers,
            request.stream(),
            workdir / "upload.bin",
            max_bytes=settings.max_upload_bytes,
        )
        return await run_in_threadpool(
            _accept_upload, form, job_id, workdir, store, settings, principal, runner
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _accept_upload(
    form: UploadForm,
    job_id: str,
    workdir: FsPath,
    store: Store,
    settings: Settings,
    principal: Principal,
    runner: JobRunner,
) -> JSONResponse:
    if form.path is None:
        raise ApiError(422, "missing_file", "send the footprints as the multipart field 'file'")
    fields = {k: v for k, v in form.fields.items() if v != ""}
    try:
        params = _UploadForm.model_validate(fields)
    except ValidationError as exc:
        details = validation_details(exc.errors())
        raise ApiError(
            422,
            "validation_error",
            f"{details[0]['field']}: {details[0]['message']}",
            details=details,
        ) from exc
    if params.household_min > params.household_max:
        raise ApiError(422, "validation_error", "household_min must not exceed household_max")
    admin_code = _upload_scope(principal, params.admin_code)
    filename = FsPath((form.filename or "").replace("\\", "/")).name
    suffix = FsPath(filename).suffix.lower()
    if suffix not in UPLOAD_KINDS:
        raise ApiError(
            422,
            "unsupported_file",
            f"unsupported file type {suffix[:20] or '(none)'}: upload a GeoPackage (.gpkg), "
            "GeoJSON (.geojson/.json) or a zipped Shapefile (.zip)",
        )
    target = workdir / f"upload{suffix}"
    form.path.rename(target)
    label = re.sub(r"[^\w.\-]", "_", filename)[:100] or target.name
    limits = ZipLimits(max_total=settings.max_unzipped_bytes)
    try:
        source = sniff_upload(target, suffix, limits, params.encoding, label)
    except UploadRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    except GridmapError as exc:
        raise ApiError(422, "invalid_upload", str(exc)) from exc
    params_ = PartitionParams(
        name=params.name or FsPath(label).stem,
        admin_code=admin_code,
        household_range=(params.household_min, params.household_max),
        difficult_range=(min(200, params.household_min), min(300, params.household_max)),
        crs=params.crs,
        seed=params.seed,
    )
    store.create_job(
        "partition",
        f"queued: {label}",
        job_id=job_id,
        owner=runner.instance.id,
        actor=principal.actor,
        audit_after={"file": filename, "bytes": form.size, "name": params_.name},
    )
    runner.submit_partition(job_id, source, workdir, params_, label, principal.actor)
    return JSONResponse(
        {"job": job_id, "status_url": f"/api/jobs/{job_id}"},
        status_code=202,
        headers={"Location": f"/api/jobs/{job_id}"},
    )


def _upload_scope(principal: Principal, admin_code: str | None) -> str | None:
    """The district code of a new plan as the user's scope allows (403 otherwise)."""
    if principal.scope is None:
        return admin_code
    if len(principal.scope) != 6:
        raise ApiError(
            403,
            "out_of_scope",
            f"{principal.label()} may not upload plans: a new plan covers a whole district, "
            "so only users scoped to a district (6 digits) or without a scope may",
            scope=principal.scope,
        )
    if admin_code is not None and admin_code != principal.scope:
        raise ApiError(
            403,
            "out_of_scope",
            f"{principal.label()} may only upload plans of district {principal.scope}, "
            f"not {admin_code}",
            scope=principal.scope,
        )
    return principal.scope
