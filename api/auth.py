"""Who may do what: tokens, users, roles and scopes.

Tokens
------
Every write needs ``Authorization: Bearer <token>``. The token is either the server's
``GRIDMAP_TOKEN`` (the bootstrap admin, recorded as ``GRIDMAP_TOKEN`` in the audit log)
or the token of an active user made with ``gridmap users add`` or ``POST /api/users``.
The store keeps only the SHA-256 of user tokens. Without a ``GRIDMAP_TOKEN`` and without
users the server refuses every write (403): it never trusts, say, localhost, because a
browser on the same machine can be tricked into sending requests.

Roles
-----
===========  =================================================================
``viewer``   reads only (and private reads with ``GRIDMAP_PRIVATE_READS=1``)
``worker``   reports events and handles them (status, closing) in its scope
``planner``  edits plans (names, workers of grids) in its scope, uploads plans
``admin``    everything: events, plans, settings, users, the audit log
===========  =================================================================

Scopes
------
A scope is a code prefix: a district (6 digits), street (9), community (12) or grid
(15). A user without a scope may write everywhere. Scope is checked on what the write
touches as the server knows it, never on codes the client sends: an event's point is
located in the plan's grids and the grid's code must start with the scope; a plan edit
may only touch grids of the stored plan whose codes start with it (renaming a whole
plan needs every grid of the plan in scope); of scoped users only those scoped to a
district (6 digits) may upload a plan, and its codes then start with that district.
Reads are not scoped.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from .errors import ApiError
from .settings import Settings
from .store import ROLES, Actor, Store

#: Name under which the bootstrap ``GRIDMAP_TOKEN`` appears (audit log, errors).
BOOTSTRAP = "GRIDMAP_TOKEN"
#: Name of the cookie that carries the token for private reads of the page.
TOKEN_COOKIE = "gridmap_token"

#: Which roles may do what.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "events.report": ("worker", "admin"),
    "events.handle": ("worker", "admin"),
    "plans.edit": ("planner", "admin"),
    "plans.upload": ("planner", "admin"),
    "settings.write": ("admin",),
    "users.manage": ("admin",),
    "audit.read": ("admin",),
}
#: How a permission is named in error messages.
_WHAT = {
    "events.report": "report events",
    "events.handle": "handle events",
    "plans.edit": "edit plans",
    "plans.upload": "upload plans",
    "settings.write": "change settings",
    "users.manage": "manage users",
    "audit.read": "read the audit log",
}

#: Declares the bearer scheme in OpenAPI (Swagger's "Authorize"); the checks are ours.
_BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="GRIDMAP_TOKEN (bootstrap admin) or a user token from `gridmap users add`",
)


@dataclass(frozen=True)
class Principal:
    """The user a request acts for.

    Attributes
    ----------
    name : str
        User name, or ``GRIDMAP_TOKEN`` for the bootstrap token.
    role : str
        One of :data:`api.store.ROLES`.
    scope : str or None
        Code prefix the user may write in (None: everywhere).
    client : str
        Client address of the request.
    """

    name: str
    role: str
    scope: str | None
    client: str

    @property
    def actor(self) -> Actor:
        """The audit log's view of this principal."""
        return Actor(self.name, self.role, self.client)

    def may(self, permission: str) -> bool:
        """Whether the role allows `permission` (see :data:`PERMISSIONS`)."""
        return self.role in PERMISSIONS[permission]

    def in_scope(self, code: str) -> bool:
        """Whether a grid code lies in the user's scope."""
        return self.scope is None or str(code).startswith(self.scope)

    def label(self) -> str:
        """``user 'li' (worker, scope 230717001001)`` for messages."""
        where = f", scope {self.scope}" if self.scope else ""
        return f"user {self.name!r} ({self.role}{where})"


def client_address(request: Request) -> str:
    """The client's address as the server sees it (proxy headers only when uvicorn is
    told to trust them, ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    """The bearer token of a request: None without an ``Authorization`` header, ``""``
    when the header is not ``Bearer <token>``."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ""
    return value.strip()


def token_matches(given: str | None, token: str | None) -> bool:
    """Compare a given token with the server's in constant time."""
    if not given or not token:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode())


def identify(token: str | None, settings: Settings, store: Store, client: str) -> Principal | None:
    """The principal holding `token`, or None when it is nobody's."""
    if not token:
        return None
    if token_matches(token, settings.token):
        return Principal(BOOTSTRAP, "admin", None, client)
    user = store.user_by_token(token)
    if user is None:
        return None
    return Principal(user["name"], user["role"], user["scope"], client)


def writes_enabled(settings: Settings, store: Store) -> bool:
    """Whether any token can write: ``GRIDMAP_TOKEN`` is set or a user is active."""
    return bool(settings.token) or store.has_users()


def authenticate(request: Request) -> Principal:
    """The principal of a request that must carry a valid token (401/403 otherwise)."""
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    given = bearer_token(request)
    if given is None:
        if not writes_enabled(settings, store):
            raise _writes_disabled()
        raise ApiError(
            401,
            "missing_token",
            "this endpoint needs the header 'Authorization: Bearer <token>' (GRIDMAP_TOKEN "
            "or a user token from 'gridmap users add')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = identify(given, settings, store, client_address(request))
    if principal is None:
        if not writes_enabled(settings, store):
            raise _writes_disabled()
        raise ApiError(
            403,
            "invalid_token",
            "the bearer token is neither the server's GRIDMAP_TOKEN nor the token of an "
            "active user (a revoked user's token stops working)",
        )
    return principal


def _writes_disabled() -> ApiError:
    return ApiError(
        403,
        "writes_disabled",
        "writes are disabled because the server has no token: start it with the "
        "environment variable GRIDMAP_TOKEN=<secret> (or add users with 'gridmap users "
        "add') and send the header 'Authorization: Bearer <secret>'",
    )


def require(permission: str) -> Any:
    """A dependency that returns the request's :class:`Principal` when its role allows
    `permission`; 401 without a token, 403 with a wrong one or the wrong role."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request, _scheme: Annotated[Any, Depends(_BEARER_SCHEME)]) -> Principal:
        principal = authenticate(request)
        if not principal.may(permission):
            allowed = ", ".join(PERMISSIONS[permission])
            raise ApiError(
                403,
                "forbidden_role",
                f"{principal.label()} may not {_WHAT[permission]}; roles that may: {allowed}",
                role=principal.role,
            )
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return Depends(dependency)


def reads_allowed(request: Request) -> bool:
    """Whether the request may read: always, unless private reads are on; then any
    valid token (header, or the page's cookie) of any role."""
    settings: Settings = request.app.state.settings
    if not settings.private_reads:
        return True
    store: Store = request.app.state.store
    client = client_address(request)
    for token in (bearer_token(request), request.cookies.get(TOKEN_COOKIE)):
        if identify(token, settings, store, client) is not None:
            return True
    return False


def check_scope(principal: Principal, codes: Iterable[str], what: str) -> None:
    """Raise 403 ``out_of_scope`` unless every grid code lies in the principal's scope.

    Parameters
    ----------
    principal : Principal
        The user.
    codes : iterable of str
        Grid codes the write touches, as the server knows them.
    what : str
        What the write is, for the message (``"edit grid"``...).
    """
    if principal.scope is None:
        return
    outside = sorted({str(c) for c in codes if not principal.in_scope(str(c))})
    if outside:
        shown = ", ".join(outside[:5]) + (
            f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        )
        raise ApiError(
            403,
            "out_of_scope",
            f"{principal.label()} may only {what} in {principal.scope}; outside it: {shown}",
            scope=principal.scope,
            grids=outside[:20],
        )


__all__ = [
    "BOOTSTRAP",
    "PERMISSIONS",
    "ROLES",
    "TOKEN_COOKIE",
    "Principal",
    "authenticate",
    "bearer_token",
    "check_scope",
    "client_address",
    "identify",
    "reads_allowed",
    "require",
    "token_matches",
    "writes_enabled",
]
