"""JSON errors: every 4xx/5xx answer has the body ``{"error": {"code", "message", ...}}``."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridmap.errors import GridmapError

from .store import EventConflict, NotFound, UserError, VersionConflict

log = logging.getLogger("gridmap.api")

_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


class ApiError(Exception):
    """An error answered as JSON.

    Parameters
    ----------
    status : int
        HTTP status.
    code : str
        Stable machine-readable code (``not_found``, ``invalid_bbox``, ...).
    message : str
        What is wrong and how to fix it.
    headers : dict, optional
        Extra response headers (``WWW-Authenticate``).
    **extra
        More members of the ``error`` object (``details``, ``current_version``...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The standard error body."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _field(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc)


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Turn pydantic errors into ``[{"field", "message", "type"}]`` (JSON-safe)."""
    return [
        {
            "field": _field(e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            400,
            "malformed_json",
            "the request body is not valid JSON",
            details=validation_details(errors),
        )
    details = validation_details(errors)
    first = details[0] if details else {"field": "", "message": "invalid request"}
    return error_response(
        422,
        "validation_error",
        f"{first['field']}: {first['message']}" if first["field"] else first["message"],
        details=details,
    )


def allowed_methods(request: Request) -> list[str]:
    """The methods the app documents for the request's path (its OpenAPI paths).

    Starlette's 405 lists the methods of the first route that matches the path only;
    a path served by several operations (``GET`` and ``PATCH /api/plans/{id}``) needs
    all of them. Paths outside the schema (pages, static files) get an empty list.
    """
    patterns = getattr(request.app.state, "allow_patterns", None)
    if patterns is None:
        patterns = []
        for template, ops in request.app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            methods = sorted(m.upper() for m in ops if m in _HTTP_METHODS)
            patterns.append((re.compile(regex + "$"), methods))
        request.app.state.allow_patterns = patterns
    path = request.url.path
    for regex, methods in patterns:
        if regex.match(path):
            return methods
    if path.startswith("/static/"):
        return ["GET", "HEAD"]
    return []


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such resource: {request.url.path}"
    if exc.status_code == 405:
        allow = allowed_methods(request) or [m.strip() for m in headers.get("Allow", "").split(",")]
        headers["Allow"] = ", ".join(m for m in allow if m)
        message = (
            f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        )
    return error_response(exc.status_code, code, message, headers or None)


async def _gridmap_error(request: Request, exc: GridmapError) -> JSONResponse:
    name = type(exc).__name__
    code = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return error_response(422, code, str(exc))


async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def _conflict(request: Request, exc: VersionConflict) -> JSONResponse:
    return error_response(
        409, "version_conflict", str(exc), current_version=exc.current, your_version=exc.expected
    )


async def _event_conflict(request: Request, exc: EventConflict) -> JSONResponse:
    return error_response(
        409,
        "revision_conflict",
        str(exc),
        current_revision=exc.current,
        your_revision=exc.expected,
    )


async def _user_error(request: Request, exc: UserError) -> JSONResponse:
    return error_response(422, "invalid_user", str(exc))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(GridmapError, _gridmap_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(VersionConflict, _conflict)
    app.add_exception_handler(EventConflict, _event_conflict)
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(Exception, _server_error)
