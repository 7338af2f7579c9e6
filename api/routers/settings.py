"""Display settings (language, base map) saved in the store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ..auth import Principal, require, writes_enabled
from ..deps import ReadAccess, effective_settings, get_settings, get_store
from ..schemas import ErrorBody, SettingsOut, SettingsPatch
from ..settings import Settings
from ..store import Store

router = APIRouter(prefix="/api/settings", tags=["settings"])


def _out(request: Request, settings: Settings) -> dict[str, Any]:
    eff = effective_settings(request)
    return {
        "lang": eff["lang"],
        "tiles": eff["tiles"],
        "tiles_attribution": eff["tiles_attribution"],
        "tianditu_key_set": bool(eff["tianditu_key"]),
        "private_reads": settings.private_reads,
        "writes_enabled": writes_enabled(settings, request.app.state.store),
        "max_upload_mb": settings.max_upload_mb,
    }


@router.get("", response_model=SettingsOut, dependencies=[ReadAccess])
def read_settings(
    request: Request, settings: Annotated[Settings, Depends(get_settings)]
) -> dict[str, Any]:
    """The effective display settings (server defaults overridden by saved values)."""
    return _out(request, settings)


@router.put(
    "",
    response_model=SettingsOut,
    responses={
        400: {"model": ErrorBody, "description": "malformed JSON"},
        401: {"model": ErrorBody, "description": "token missing"},
        403: {"model": ErrorBody, "description": "wrong token, not an admin, or writes disabled"},
        413: {"model": ErrorBody, "description": "body too large"},
        422: {"model": ErrorBody, "description": "invalid value"},
    },
)
def write_settings(
    request: Request,
    patch: SettingsPatch,
    store: Annotated[Store, Depends(get_store)],
    settings: Annotated[Settings, Depends(get_settings)],
    principal: Annotated[Principal, require("settings.write")],
) -> dict[str, Any]:
    """Save display settings; an empty string resets one to the server default.
    Role: admin."""
    values = {k: (v if v != "" else None) for k, v in patch.model_dump(exclude_unset=True).items()}
    store.set_settings(values, actor=principal.actor, secret=("tianditu_key",))
    return _out(request, settings)
