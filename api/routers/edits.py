"""Editing a plan's grids over the web: one edit per request, saved as a new version.

``POST /api/plans/{id}/edits`` runs one :mod:`gridmap.edit` operation on the plan's
current version and stores the result as the next version, with the op, its arguments,
the reason and who made it (``GET /api/plans/{id}/versions``), plus an audit entry. The
edit is saved as a small delta (the edit's undo-log record), so an edit of a 1,000-grid
plan answers in a fraction of a second; ``undo`` and ``redo`` step through the plan's
own undo log, which is part of the stored plan. ``POST /api/plans/{id}/versions`` takes
a whole plan GeoPackage written by :meth:`gridmap.Plan.to_file` (e.g. from a notebook)
as the next version, once :func:`gridmap.validate_plan` finds no structural error.
"""

from __future__ import annotations

import shutil
import time
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridmap import edit
from gridmap.errors import GridmapError

from ..auth import Principal, check_scope, require
from ..deps import ReadAccess, get_cache, get_settings, get_store
from ..errors import ApiError, validation_details
from ..geo import PlanCache, clean_json
from ..schemas import ErrorBody
from ..settings import Settings
from ..store import NotFound, PlanRecord, Store, VersionConflict, plan_from_bytes
from ..upload import read_upload

router = APIRouter(prefix="/api/plans", tags=["edits"])

PlanId = Annotated[int, Path(ge=1, le=2**62, description="plan id")]
Version = Annotated[int, Path(ge=1, le=2**31, description="plan version")]
Code = Annotated[str, Field(min_length=3, max_length=15, pattern=r"^\d{3,15}$")]
BuildingId = Annotated[str, Field(min_length=1, max_length=200)]

#: Checks of :func:`gridmap.validate_plan` that make an uploaded plan unusable (the
#: others are rule violations a planner may accept and explain).
STRUCTURAL_CHECKS = (
    "invalid_geometry",
    "duplicate_grid_code",
    "overlap",
    "gap",
    "households_mismatch",
    "building_outside_grid",
    "unassigned_building",
    "split_building",
)

_ERRORS = {
    401: {"model": ErrorBody, "description": "token missing"},
    403: {"model": ErrorBody, "description": "wrong token, role, or grids out of scope"},
    404: {"model": ErrorBody, "description": "no such plan or version"},
    409: {"model": ErrorBody, "description": "stale version (version_conflict)"},
    422: {"model": ErrorBody, "description": "unknown op, bad arguments, or refused edit"},
}


# ------------------------------------------------------------------ arguments
class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoveArgs(_Args):
    """``move_buildings``: give `to_grid` and exactly one of `ids`, `polygon`, `units`."""

    to_grid: Code
    ids: list[BuildingId] | None = Field(None, min_length=1, max_length=100_000)
    polygon: dict[str, Any] | None = Field(None, description="GeoJSON polygon in WGS84")
    units: tuple[BuildingId, list[Annotated[int, Field(ge=1, le=10_000)]]] | None = None


class MergeArgs(_Args):
    """``merge_grids``: grid `b` goes into grid `a`."""

    a: Code
    b: Code


class SplitArgs(_Args):
    """``split_grid``: split grid `code` (into `n` grids)."""

    code: Code
    n: int | None = Field(None, ge=2, le=50)


class LockArgs(_Args):
    """``lock_grids``: the grids to lock."""

    codes: list[Code] = Field(min_length=1, max_length=10_000)


class UnlockArgs(_Args):
    """``unlock_grids``: the grids to unlock (all locked grids without `codes`)."""

    codes: list[Code] | None = Field(None, min_length=1, max_length=10_000)


class ReplanArgs(_Args):
    """``replan``: the community (3, 6, 12 or 15 digits)."""

    community_code: Annotated[str, Field(min_length=3, max_length=15, pattern=r"^\d{3,15}$")]


class NoArgs(_Args):
    """``undo``, ``redo``: no arguments."""


OPS: dict[str, type[_Args]] = {
    "move_buildings": MoveArgs,
    "merge_grids": MergeArgs,
    "split_grid": SplitArgs,
    "lock_grids": LockArgs,
    "unlock_grids": UnlockArgs,
    "replan": ReplanArgs,
    "undo": NoArgs,
    "redo": NoArgs,
}


class EditIn(BaseModel):
    """One edit of a plan."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31, description="the version you edited")
    op: str = Field(
        min_length=1,
        max_length=40,
        description="one of: " + ", ".join(OPS),
        examples=["merge_grids"],
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the gridmap.edit function, e.g. "
        '{"ids": ["B001"], "to_grid": "230717001001004"} for move_buildings',
    )
    reason: str = Field("", max_length=500, description="why (kept in the history)")


class GridCheck(BaseModel):
    """A grid the edit changed or added, against the rules (:func:`gridmap.check_grids`)."""

    code: str
    kind: str
    households: int
    buildings: int
    min: int
    max: int
    in_range: bool
    violations: list[str] = Field(
        description="rules broken: range, contiguity, community, crossing"
    )
    details: list[str]


class EditOut(BaseModel):
    """The new version and what the edit changed."""

    plan_id: int
    version: int
    op: str
    reason: str
    changed: list[GridCheck]
    removed: list[str]
    added: list[str]
    elapsed_ms: float


class VersionOut(BaseModel):
    """One saved version of a plan."""

    version: int
    at: str
    actor: str | None
    op: str
    reason: str


# ------------------------------------------------------------------ endpoints
@router.post("/{plan_id}/edits", response_model=EditOut, responses=_ERRORS)
def post_edit(
    plan_id: PlanId,
    body: EditIn,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    principal: Annotated[Principal, require("plans.edit")],
) -> dict[str, Any]:
    """Edit the plan's grids; the result is saved as the plan's next version.
    Role: planner or admin; a scoped user may only touch grids in their scope.

    ``op`` is one of ``move_buildings`` (``{"to_grid", "ids"}``, or ``"polygon"`` as
    GeoJSON in WGS84, or ``"units": [building_id, [parts]]``), ``merge_grids``
    (``{"a", "b"}``), ``split_grid`` (``{"code", "n"}``), ``lock_grids``
    (``{"codes"}``), ``unlock_grids`` (``{"codes"}`` or ``{}`` for all), ``replan``
    (``{"community_code"}``), ``undo``, ``redo`` (``{}``). Send the ``version`` you
    edited: 409 ``version_conflict`` with ``current_version`` when somebody saved a newer
    one. The answer lists the grids changed or added with their households against
    their range and the rules they now break, and the codes removed and added. 422 for
    an unknown op, a missing or wrong argument (named), or an edit the plan refuses
    (locked grid, unknown building...), with gridmap's message.
    """
    started = time.perf_counter()
    model = OPS.get(body.op)
    if model is None:
        raise ApiError(
            422,
            "unknown_op",
            f"unknown op {body.op[:40]!r}; use one of: {', '.join(OPS)}",
            ops=list(OPS),
        )
    try:
        args = model.model_validate(body.args)
    except ValidationError as exc:
        details = validation_details(exc.errors())
        first = details[0]
        field = f"args.{first['field']}" if first["field"] else "args"
        raise ApiError(
            422,
            "invalid_args",
            f"{body.op}: {field}: {first['message']}",
            details=details,
        ) from exc
    kwargs = args.model_dump(exclude_none=True)
    if body.op == "move_buildings" and sum(k in kwargs for k in ("ids", "polygon", "units")) != 1:
        raise ApiError(
            422,
            "invalid_args",
            "move_buildings: give exactly one of args.ids, args.polygon or args.units",
        )
    record = _record_or_404(store, plan_id)
    if body.version != record.version:
        raise VersionConflict(plan_id, body.version, record.version)
    plan = cache.plan(record)
    new_plan, changed, added, removed, delta = _apply(plan, body.op, kwargs, body.reason)
    touched = {*changed["code"], *added, *removed}
    check_scope(principal, touched, "edit grids")
    summary = clean_json(new_plan.summary())
    updated = store.add_edit_version(
        plan_id,
        body.version,
        op=body.op,
        args=clean_json(kwargs),
        reason=body.reason,
        summary=summary,
        notes=list(new_plan.notes),
        delta=delta,
        actor=principal.actor,
        audit_extra={"changed": sorted(changed["code"]), "added": added, "removed": removed},
    )
    cache.put(updated, new_plan)
    return {
        "plan_id": plan_id,
        "version": updated.version,
        "op": body.op,
        "reason": body.reason,
        "changed": clean_json(changed.to_dict("records")),
        "removed": removed,
        "added": added,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


@router.get(
    "/{plan_id}/versions",
    response_model=list[VersionOut],
    responses={404: _ERRORS[404]},
    dependencies=[ReadAccess],
)
def list_versions(
    plan_id: PlanId, store: Annotated[Store, Depends(get_store)]
) -> list[dict[str, Any]]:
    """Every saved version of the plan, oldest first: ``version``, ``at`` (UTC),
    ``actor``, ``op`` (``create``, an edit op, ``upload``, or ``edit`` for a
    name/worker change) and ``reason``."""
    _record_or_404(store, plan_id)
    return [
        {
            "version": v["version"],
            "at": v["at"],
            "actor": v["actor"],
            "op": v["op"],
            "reason": v["reason"] or "",
        }
        for v in store.versions(plan_id)
    ]


@router.get(
    "/{plan_id}/versions/{version}/grids",
    responses={200: {"content": {"application/geo+json": {}}}, 404: _ERRORS[404]},
    dependencies=[ReadAccess],
)
def version_grids(
    plan_id: PlanId,
    version: Version,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
) -> Response:
    """The grids of one saved version as GeoJSON (WGS84), as ``GET /api/grids`` gives
    the current one: to compare two versions side by side."""
    _record_or_404(store, plan_id)
    try:
        record = store.plan_version(plan_id, version)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    view = cache.view(record)
    return Response(
        view.geojson,
        media_type="application/geo+json",
        headers={"ETag": view.etag, "Cache-Control": "no-cache"},
    )


_VERSION_UPLOAD = {
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
                            "description": "a plan GeoPackage written by gridmap.Plan.to_file",
                        },
                        "version": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 2147483648,
                            "description": "the version the plan was edited from (409 if stale)",
                        },
                        "reason": {"type": "string", "maxLength": 500},
                    },
                }
            }
        },
    }
}


@router.post(
    "/{plan_id}/versions",
    status_code=201,
    response_model=VersionOut,
    responses={**_ERRORS, 413: {"model": ErrorBody, "description": "file too large"}},
    openapi_extra=_VERSION_UPLOAD,
)
async def upload_version(
    plan_id: PlanId,
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    cache: Annotated[PlanCache, Depends(get_cache)],
    settings: Annotated[Settings, Depends(get_settings)],
    principal: Annotated[Principal, require("plans.edit")],
) -> dict[str, Any]:
    """Publish a plan edited elsewhere (a notebook's ``plan.to_file("plan.gpkg")``) as
    the plan's next version. Role: planner or admin (a scoped user only when every grid
    of the stored and the uploaded plan is in scope).

    Multipart form: ``file`` (the GeoPackage, at most ``GRIDMAP_MAX_UPLOAD_MB``),
    optional ``version`` (the version it was edited from: 409 when the plan moved on)
    and ``reason``. The plan is checked with :func:`gridmap.validate_plan`: 422
    ``invalid_plan`` lists the structural errors (overlaps, gaps, households that do
    not add up, buildings outside their grid...); rule violations a planner may accept
    (households out of range, crossings) do not block it.
    """
    record = _record_or_404(store, plan_id)
    runner = request.app.state.jobs
    job_id, workdir = runner.new_workdir()
    try:
        form = await read_upload(
            request.headers,
            request.stream(),
            workdir / "plan.gpkg",
            max_bytes=settings.max_upload_bytes,
        )
        return await run_in_threadpool(_accept_version, form, record, store, cache, principal)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------ internals
def _record_or_404(store: Store, plan_id: int) -> PlanRecord:
    try:
        return store.plan(plan_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


def _apply(plan: Any, op: str, kwargs: dict[str, Any], reason: str) -> tuple:
    """Run one edit; return the new plan, the checks of the changed grids, the codes
    added and removed, and the delta to store (None for undo/redo)."""
    try:
        if op in ("undo", "redo"):
            log_ = plan.undo_log if op == "undo" else plan.redo_log
            if not log_:
                raise GridmapError(
                    "nothing to undo: no edit of this plan is recorded"
                    if op == "undo"
                    else "nothing to redo"
                )
            h = log_[-1]["history"]
            new_plan = edit.undo(plan) if op == "undo" else edit.redo(plan)
            added = list(h.get("removed", [])) if op == "undo" else list(h.get("added", []))
            removed = list(h.get("added", [])) if op == "undo" else list(h.get("removed", []))
            codes = [*h.get("changed", []), *added]
            return new_plan, edit.check_grids(new_plan, codes), added, removed, None
        func = getattr(edit, op)
        if op == "move_buildings" and "polygon" in kwargs:
            try:
                poly = edit.polygon_from_geojson(kwargs["polygon"])
                ok = bool(shapely.is_valid(poly)) and np.isfinite(shapely.bounds(poly)).all()
            except GridmapError:
                raise
            except Exception as exc:  # noqa: BLE001 - shapely raises many types
                raise GridmapError(f"args.polygon is not a GeoJSON polygon ({exc})") from exc
            if not ok or not (-180 <= poly.bounds[0] <= poly.bounds[2] <= 180):
                raise GridmapError("args.polygon must be a valid polygon in WGS84 (lon/lat)")
            kwargs = {**kwargs, "polygon": poly, "polygon_crs": "EPSG:4326"}
        res = func(plan, **kwargs, reason=reason)
    except GridmapError as exc:
        raise ApiError(422, "edit_refused", str(exc)) from exc
    return res.plan, res.changed, res.added, res.removed, res.plan.undo_log[-1]


def _accept_version(
    form: Any, record: PlanRecord, store: Store, cache: PlanCache, principal: Principal
) -> dict[str, Any]:
    if form.path is None:
        raise ApiError(
            422, "missing_file", "send the plan GeoPackage as the multipart field 'file'"
        )
    fields = {k: v for k, v in form.fields.items() if v != ""}
    unknown = sorted(set(fields) - {"version", "reason"})
    if unknown:
        raise ApiError(422, "validation_error", f"unknown form field {unknown[0][:40]!r}")
    version = record.version
    if "version" in fields:
        try:
            version = int(fields["version"])
        except ValueError:
            raise ApiError(422, "validation_error", "version: must be an integer") from None
        if not 1 <= version <= 2**31:
            raise ApiError(422, "validation_error", "version: must be at least 1")
    reason = fields.get("reason", "")
    if len(reason) > 500:
        raise ApiError(422, "validation_error", "reason: at most 500 characters")
    data = form.path.read_bytes()
    try:
        plan = plan_from_bytes(data)
        report = plan.validate()
    except GridmapError as exc:
        raise ApiError(422, "invalid_plan", f"not a gridmap plan: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - GDAL and pandas raise many types
        raise ApiError(
            422, "invalid_plan", f"cannot read the file as a gridmap plan GeoPackage ({exc})"
        ) from exc
    bad = report[report["check"].isin(STRUCTURAL_CHECKS) & (report["severity"] == "error")]
    if len(bad):
        errors = [
            {"check": r.check, "grid_code": r.grid_code, "detail": r.detail}
            for r in bad.head(50).itertuples()
        ]
        raise ApiError(
            422,
            "invalid_plan",
            f"the plan has {len(bad)} structural error(s), e.g. {errors[0]['check']} "
            f"{errors[0]['grid_code'] or ''}: {errors[0]['detail']}",
            errors=clean_json(errors),
        )
    old = cache.plan(record)
    codes = {*old.grids["grid_code"].astype(str), *plan.grids["grid_code"].astype(str)}
    check_scope(principal, codes, "publish a version with grids")
    updated = store.add_edit_version(
        record.id,
        version,
        op="upload",
        args={"bytes": len(data), "grids": len(plan.grids)},
        reason=reason,
        summary=clean_json(plan.summary()),
        notes=list(plan.notes),
        gpkg=data,
        actor=principal.actor,
        audit_extra={"errors": int((report["severity"] == "error").sum())},
    )
    cache.put(updated, plan)
    v = store.versions(record.id)[-1]
    return {
        "version": v["version"],
        "at": v["at"],
        "actor": v["actor"],
        "op": v["op"],
        "reason": v["reason"] or "",
    }
