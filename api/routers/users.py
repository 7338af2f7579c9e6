"""Users (admins only): list, add (the answer shows the token once), revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ..auth import Principal, require
from ..deps import get_store
from ..errors import ApiError
from ..schemas import ErrorBody, UserCreated, UserIn, UserOut
from ..store import NotFound, Store

router = APIRouter(prefix="/api/users", tags=["users"])

_ERRORS = {
    401: {"model": ErrorBody, "description": "token missing"},
    403: {"model": ErrorBody, "description": "wrong token or not an admin"},
}
UserName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\w.@\-]+$")]


@router.get("", response_model=list[UserOut], responses=_ERRORS)
def list_users(
    store: Annotated[Store, Depends(get_store)],
    principal: Annotated[Principal, require("users.manage")],
) -> list[dict[str, Any]]:
    """Every user, active and revoked (tokens are never shown). Role: admin."""
    return store.users()


@router.post(
    "",
    status_code=201,
    response_model=UserCreated,
    responses={
        **_ERRORS,
        400: {"model": ErrorBody, "description": "malformed JSON"},
        413: {"model": ErrorBody, "description": "body too large"},
        422: {"model": ErrorBody, "description": "invalid or taken name, role or scope"},
    },
)
def add_user(
    user: UserIn,
    store: Annotated[Store, Depends(get_store)],
    principal: Annotated[Principal, require("users.manage")],
) -> dict[str, Any]:
    """Add a user with a role and optional scope; the answer holds their token, shown
    this once (only its SHA-256 is stored). Names are never reused. Role: admin."""
    token = store.add_user(user.name, user.role, user.scope, actor=principal.actor)
    return {**store.user(user.name), "token": token}


@router.post(
    "/{name}/revoke",
    response_model=UserOut,
    responses={
        **_ERRORS,
        404: {"model": ErrorBody, "description": "no such user"},
        422: {"model": ErrorBody, "description": "already revoked"},
    },
)
def revoke_user(
    name: UserName,
    store: Annotated[Store, Depends(get_store)],
    principal: Annotated[Principal, require("users.manage")],
) -> dict[str, Any]:
    """Revoke a user's token for good (the user stays listed, with ``revoked``). Role:
    admin."""
    try:
        return store.revoke_user(name, actor=principal.actor)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
