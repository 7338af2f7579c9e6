"""FastAPI dependencies: settings, store, plan lookup, language, bbox, authentication.

Authentication, roles and scopes live in :mod:`api.auth`; :data:`ReadAccess` refuses
reads without a valid token when ``GRIDMAP_PRIVATE_READS`` is on, and the write
endpoints ask for a permission with :func:`api.auth.require`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from .auth import TOKEN_COOKIE, reads_allowed, require, token_matches
from .errors import ApiError
from .geo import PlanCache, PlanView
from .settings import LANGS, Settings
from .store import NotFound, PlanRecord, Store

__all__ = [
    "TOKEN_COOKIE",
    "ReadAccess",
    "effective_settings",
    "get_cache",
    "get_settings",
    "get_store",
    "no_nameless_query",
    "page_lang",
    "parse_bbox",
    "plan_record",
    "plan_view",
    "reads_allowed",
    "require",
    "require_read",
    "token_matches",
]


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


def no_nameless_query(request: Request) -> None:
    """Refuse a query string with a parameter that has no name (``?=x``): no operation
    declares one, and silently ignoring it would hide a client's mistake."""
    if "" in request.query_params:
        raise ApiError(
            400, "bad_query", "the query string has a parameter without a name ('?=...')"
        )


def require_read(request: Request) -> None:
    """Refuse reads without a valid token when ``GRIDMAP_PRIVATE_READS`` is on."""
    if not reads_allowed(request):
        raise ApiError(
            401,
            "missing_token",
            "reads are private on this server: send 'Authorization: Bearer <token>' "
            "(GRIDMAP_TOKEN or a user token)",
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
