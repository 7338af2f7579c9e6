"""HTML pages: the map view, the sign-in form for private servers, the API docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..auth import TOKEN_COOKIE, client_address, identify, reads_allowed
from ..deps import effective_settings, get_settings, get_store, page_lang
from ..errors import ApiError
from ..i18n import page_strings
from ..settings import Settings, tile_config
from ..store import NotFound, Store

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
STATIC = "/static"
#: Security headers of the HTML pages: scripts and data only from this server; images
#: (base-map tiles) from anywhere; no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: http: https:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _login(request: Request, lang: str, failed: bool = False) -> HTMLResponse:
    s = page_strings(lang)
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "html_lang": "zh-CN" if lang == "zh" else "en",
            "title": s["login_title"],
            "message": s["login_failed"] if failed else s["login_message"],
            "button": s["login_button"],
            "lang": lang,
            "static": STATIC,
        },
        status_code=401,
        headers=PAGE_HEADERS,
    )


@router.get("/", response_class=HTMLResponse)
def map_page(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    lang: Annotated[str | None, Query(max_length=8)] = None,
    plan: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The map view (Leaflet): grids, buildings, events, search and a per-grid panel."""
    lang = page_lang(request, lang)
    if not reads_allowed(request):
        return _login(request, lang)
    eff = effective_settings(request)
    plans = store.plans()
    current = None
    if plan is not None:
        if not re.fullmatch(r"[0-9]{1,20}", plan):
            raise ApiError(
                422, "validation_error", f"plan must be a plan id (digits), not {plan!r}"
            )
        try:
            current = store.plan(int(plan))
        except NotFound as exc:
            raise ApiError(404, "not_found", f"{exc}; the plans are listed at /api/plans") from exc
    if current is None and plans:
        current = plans[0]
    cache = request.app.state.cache
    extent = None
    if current is not None:
        if cache.has(current):  # the page opens at the zoom that shows the whole plan
            extent = cache.view(current).extent
        else:
            cache.warm(current)  # decode while the browser loads the assets
    config = {
        "lang": lang,
        "api": "/api",
        "strings": page_strings(lang),
        "tiles": tile_config(eff["tiles"], eff["tianditu_key"], eff["tiles_attribution"]),
        "plan": None
        if current is None
        else {
            "id": current.id,
            "name": current.name,
            "version": current.version,
            "summary": current.summary,
            "extent": extent,
        },
        "plans": [{"id": p.id, "name": p.name, "version": p.version} for p in plans],
        "has_events": store.events_revision()[0] > 0,
        "overlays": store.overlay_names(current.id) if current is not None else [],
        "event_text_field": _event_text_field(),
        "event_palette": _event_palette(),
    }
    strings = config["strings"]
    return templates.TemplateResponse(
        request,
        "map.html",
        {
            "html_lang": "zh-CN" if lang == "zh" else "en",
            "title": strings["title"],
            "app_name": strings["app_name"],
            "config_json": _json_for_script(config),
            "static": STATIC,
            "my_grid": strings["my_grid"],
            "report": strings["report"],
        },
        headers=PAGE_HEADERS,
    )


def _event_text_field() -> str | None:
    """The field of ``POST /api/events`` that takes a report's text, if it has one."""
    from ..schemas import EventIn

    return next(
        (f for f in ("description", "text", "note", "content") if f in EventIn.model_fields),
        None,
    )


def _event_palette() -> dict[str, Any] | None:
    """Colours of the event layers (one sequential ramp), when the events module has them."""
    try:
        from gridmap.events.palette import palette
    except ImportError:
        return None
    return palette()


@router.post("/login")
def login(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    token: Annotated[str, Form(max_length=500)] = "",
    lang: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Check the token (GRIDMAP_TOKEN or any active user's) and keep it in an HttpOnly
    cookie for private reads of the page."""
    lang = page_lang(request, lang or None)
    store: Store = request.app.state.store
    if identify(token, settings, store, client_address(request)) is None:
        return _login(request, lang, failed=True)
    resp = RedirectResponse(f"/?lang={lang}", status_code=303)
    resp.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return resp


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI for ``/openapi.json``, with its assets served by this app (no CDN)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="gridmap API",
        swagger_js_url=f"{STATIC}/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The page icon."""
    return FileResponse(_HERE / "static" / "favicon.svg", media_type="image/svg+xml")
