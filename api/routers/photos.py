"""Photos of events (随手拍): one or more images attached to a reported event.

Photos are files next to the store (``<store>.photos/<event id>/<sha256>.<ext>``), not in
it: the store keeps the events, the folder the pictures. Only JPEG, PNG and WebP images
up to :data:`MAX_PHOTO_BYTES` are accepted, checked on their first bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, UploadFile
from fastapi.responses import FileResponse

from ..auth import Principal, check_scope, require
from ..deps import ReadAccess, get_store
from ..errors import ApiError
from ..schemas import ErrorBody
from ..store import NotFound, Store

router = APIRouter(prefix="/api/events", tags=["events"])

#: Largest photo accepted (5 MB).
MAX_PHOTO_BYTES = 5 * 1024 * 1024
#: Image types accepted: content type -> (file suffix, leading magic bytes).
IMAGE_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "image/jpeg": ("jpg", (b"\xff\xd8\xff",)),
    "image/png": ("png", (b"\x89PNG\r\n\x1a\n",)),
    "image/webp": ("webp", (b"RIFF",)),
}
_NAME = re.compile(r"^[0-9a-f]{16}\.(jpg|png|webp)$")
_EventId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$", description="event id"),
]


def photos_dir(store: Store) -> FilePath:
    """The folder of a store's event photos (``<store>.photos``)."""
    return store.path.with_name(store.path.name + ".photos")


def _sniff(head: bytes) -> str | None:
    """The image type of a file from its first bytes, or None."""
    for ctype, (_suffix, magics) in IMAGE_TYPES.items():
        if any(head.startswith(m) for m in magics):
            if ctype == "image/webp" and head[8:12] != b"WEBP":
                continue
            return ctype
    return None


def _event(store: Store, event_id: str) -> dict[str, Any]:
    try:
        return store.event(event_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@router.post(
    "/{event_id}/photo",
    status_code=201,
    responses={
        401: {"model": ErrorBody, "description": "token missing"},
        403: {"model": ErrorBody, "description": "role without the right or out of scope"},
        404: {"model": ErrorBody, "description": "no such event"},
        413: {"model": ErrorBody, "description": "photo larger than 5 MB"},
        415: {"model": ErrorBody, "description": "not a JPEG, PNG or WebP image"},
    },
)
async def add_photo(
    event_id: _EventId,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP image, at most 5 MB")],
    store: Annotated[Store, Depends(get_store)],
    principal: Annotated[Principal, require("events.report")],
) -> dict[str, Any]:
    """Attach a photo to an event (role: worker or admin; a scoped user only to events
    of grids in their scope). Answers the stored photo's ``name``, ``bytes``,
    ``content_type`` and ``url``."""
    row = _event(store, event_id)
    check_scope(principal, [str(row.get("grid_code") or "")], "add photos to events")
    folder = photos_dir(store) / event_id
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await photo.read(256 * 1024):
                size += len(chunk)
                if size > MAX_PHOTO_BYTES:
                    raise ApiError(
                        413,
                        "photo_too_large",
                        f"photo {photo.filename!r} is larger than "
                        f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB",
                    )
                if len(head) < 16:
                    head += chunk[: 16 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        ctype = _sniff(head)
        if size == 0 or ctype is None:
            raise ApiError(
                415,
                "not_an_image",
                f"photo {photo.filename!r} is not a JPEG, PNG or WebP image"
                + (" (empty file)" if size == 0 else ""),
            )
        name = f"{digest.hexdigest()[:16]}.{IMAGE_TYPES[ctype][0]}"
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / name)
    except BaseException:
        FilePath(tmp).unlink(missing_ok=True)
        raise
    info = {"name": name, "bytes": size, "content_type": ctype}
    store.log_write(principal.actor, "event.photo", f"events/{event_id}", after=info)
    return {"event_id": event_id, **info, "url": f"/api/events/{event_id}/photos/{name}"}


@router.get(
    "/{event_id}/photos",
    dependencies=[ReadAccess],
    responses={404: {"model": ErrorBody, "description": "no such event"}},
)
def list_photos(event_id: _EventId, store: Annotated[Store, Depends(get_store)]) -> dict:
    """The photos attached to an event (names and URLs)."""
    _event(store, event_id)
    folder = photos_dir(store) / event_id
    names = (
        sorted(p.name for p in folder.iterdir() if _NAME.match(p.name)) if folder.is_dir() else []
    )
    return {
        "event_id": event_id,
        "photos": [{"name": n, "url": f"/api/events/{event_id}/photos/{n}"} for n in names],
    }


@router.get(
    "/{event_id}/photos/{name}",
    dependencies=[ReadAccess],
    responses={404: {"model": ErrorBody, "description": "no such photo"}},
)
def get_photo(
    event_id: _EventId,
    name: Annotated[str, Path(max_length=32, description="photo name from the upload")],
    store: Annotated[Store, Depends(get_store)],
) -> FileResponse:
    """One photo of an event."""
    path = photos_dir(store) / event_id / name
    if not _NAME.match(name) or not path.is_file():
        raise ApiError(404, "not_found", f"event {event_id!r} has no photo {name[:32]!r}")
    suffix = name.rsplit(".", 1)[1]
    ctype = next(c for c, (s, _m) in IMAGE_TYPES.items() if s == suffix)
    return FileResponse(path, media_type=ctype, headers={"X-Content-Type-Options": "nosniff"})
