"""Background jobs (plan building)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ..deps import ReadAccess, get_store
from ..errors import ApiError
from ..schemas import ErrorBody, JobOut
from ..store import NotFound, Store

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[ReadAccess])


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses={404: {"model": ErrorBody, "description": "no such job"}},
)
def get_job(
    job_id: Annotated[str, Path(max_length=64)], store: Annotated[Store, Depends(get_store)]
) -> dict[str, Any]:
    """A job: ``status`` (queued/running/done/failed), ``progress`` 0-1, ``message``,
    ``plan_id`` when done, ``error`` (one line) when failed."""
    try:
        return store.job(job_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
