"""Background jobs (plan building)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

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
    request: Request,
    job_id: Annotated[str, Path(max_length=64)],
    store: Annotated[Store, Depends(get_store)],
) -> dict[str, Any]:
    """A job: ``status`` (queued/running/done/failed), ``progress`` 0-1, ``message``,
    ``plan_id`` when done, ``error`` (one line) when failed.

    A job whose server process died is reported failed (with the reason), whichever
    process is asked."""
    try:
        job = store.job(job_id)
        if job["status"] in ("queued", "running"):
            request.app.state.jobs.reap(job.get("owner"))
            job = store.job(job_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    job.pop("owner", None)
    return job
