"""The audit log (admins only, read only: no operation changes it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..auth import Principal, require
from ..deps import get_store
from ..schemas import AuditOut, ErrorBody, IsoTime
from ..store import Store

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get(
    "",
    response_model=AuditOut,
    responses={
        401: {"model": ErrorBody, "description": "token missing"},
        403: {"model": ErrorBody, "description": "wrong token or not an admin"},
        422: {"model": ErrorBody, "description": "invalid parameter"},
    },
)
def read_audit(
    store: Annotated[Store, Depends(get_store)],
    principal: Annotated[Principal, require("audit.read")],
    user: Annotated[
        str | None, Query(max_length=80, description="only this user (GRIDMAP_TOKEN, system...)")
    ] = None,
    since: Annotated[IsoTime | None, Query(description="only writes at or after this time")] = None,
    action: Annotated[
        str | None, Query(max_length=40, description="only this action, e.g. events.add")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="most entries")] = 100,
) -> dict[str, Any]:
    """Every write: who (user, role), when (UTC), what (action, target), the state
    before and after (versions, ids, values) and the client address; newest first.
    Role: admin. The log is append-only: the store itself refuses to change it."""
    rows = store.audit(
        who=user,
        since_ts=None if since is None else since.timestamp(),
        action=action,
        limit=limit + 1,
    )
    return {"entries": rows[:limit], "truncated": len(rows) > limit}
