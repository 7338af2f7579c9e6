"""FastAPI dependencies: settings, store, plan lookup, language and authentication.

Authentication
--------------
Writes (POST/PUT/PATCH) need ``Authorization: Bearer <GRIDMAP_TOKEN>``. Without a
configured token the server refuses every write (403) rather than trusting, say,
localhost: a browser on the same machine can be tricked into sending requests.
With ``GRIDMAP_PRIVATE_READS=1`` reads need the token too, sent as the same header or,
for the map page, as the ``gridmap_token`` cookie set by ``POST /login``. The cookie is
never accepted for writes (so a cross-site form cannot write).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from .errors import ApiError
from .geo import PlanCache, PlanView
from .settings import LANGS, Settings
from .store import NotFound, PlanRecord, Store

#: Name of the cookie that carries the token for private reads of the page.
TOKEN_COOKIE = "gridmap_token"


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """The app's project store."""
    return request.app.state.store


def get_cache(request: Request) -> PlanCache:
    """The app's plan cache."""
    return request.app.state.cache


def effective_settings(request: Request) -> dict[str, Any]:
    """Display settings: server settings overridden by values saved in the store."""
    s: Settings = request.app.state.settings
    saved = request.app.state.store.settings()
    return {
        "lang": saved.get("lang") or s.lang,
        "tiles": saved.get("tiles") or s.tiles,
        "tiles_attribution": saved.get("tiles_attribution") or s.tiles_attribution,
        "tianditu_key": saved.get("tianditu_key") or s.tianditu_key,
    }


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ""
    return value.strip()


def token_matches(given: str | None, token: str) -> bool:
    """Compare a given token with the server's in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def require_write(request: Request) -> None:
    """Allow the request only with the right bearer token (see the module docstring)."""
    token = get_settings(request).token
    if not token:
        raise ApiError(
            403,
            "writes_disabled",
            "writes are disabled because the server has no token: start it with the "
            "environment variable GRIDMAP_TOKEN=<secret> and send the header "
            "'Authorization: Bearer <secret>'",
        )
    given = _bearer(request)
    if given is None:
        raise ApiError(
            401,
            "missing_token",
            "this endpoint needs the header 'Authorization: Bearer <GRIDMAP_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token_matches(given, token):
        raise ApiError(403, "invalid_token", "the bearer token is not the server's GRIDMAP_TOKEN")


def reads_allowed(request: Request) -> bool:
    """Whether the request may read (always, unless private reads are on)."""
    s = get_settings(request)
    if not s.private_reads:
        return True
    if not s.token:
        return False
    return token_matches(_bearer(request), s.token) or token_matches(
        request.cookies.get(TOKEN_COOKIE), s.token
    )


def require_read(request: Request) -> None:
    """Refuse reads without the token when ``GRIDMAP_PRIVATE_READS`` is on."""
    if not reads_allowed(request):
        raise ApiError(
            401,
            "missing_token",
            "reads are private on this server: send 'Authorization: Bearer <GRIDMAP_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def plan_record(
    store: Annotated[Store, Depends(get_store)],
    plan: Annotated[
        int | None, Query(ge=1, le=2**62, description="plan id (default: the newest plan)")
    ] = None,
) -> PlanRecord:
    """The plan chosen with ``?plan=`` (default the newest); 404 when there is none."""
    if plan is None:
        plan = store.latest_plan_id()
        if plan is None:
            raise ApiError(
                404,
                "no_plan",
                "the store has no plan yet: upload footprints with POST /api/plans",
            )
    try:
        return store.plan(plan)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


def plan_view(
    record: Annotated[PlanRecord, Depends(plan_record)],
    cache: Annotated[PlanCache, Depends(get_cache)],
) -> PlanView:
    """The cached view of the chosen plan's current version."""
    return cache.view(record)


def page_lang(request: Request, lang: str | None = None) -> str:
    """Language of the page: ``?lang=`` if valid, else the setting (``zh`` default)."""
    if lang in LANGS:
        return lang
    saved = effective_settings(request)["lang"]
    return saved if saved in LANGS else "zh"


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """Parse ``minx,miny,maxx,maxy`` in WGS84; raise a 422 :class:`ApiError` if bad."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or not all(v == v and abs(v) != float("inf") for v in vals):
        raise ApiError(
            422,
            "invalid_bbox",
            f"bbox must be four numbers minx,miny,maxx,maxy (WGS84), got {text[:80]!r}",
        )
    minx, miny, maxx, maxy = vals
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise ApiError(
            422,
            "invalid_bbox",
            "bbox must be in WGS84: longitudes in [-180, 180], latitudes in [-90, 90]",
        )
    if minx > maxx or miny > maxy:
        raise ApiError(422, "invalid_bbox", "bbox must have minx <= maxx and miny <= maxy")
    return vals  # type: ignore[return-value]


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
