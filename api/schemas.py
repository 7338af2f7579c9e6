"""Request and response models of the JSON API (pydantic)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .i18n import CATEGORY_LABELS, SOURCE_LABELS, STATUS_LABELS

#: Category as sent (code or Chinese name) -> code.
CATEGORY_INPUT: dict[str, str] = {
    **{code: code for code in CATEGORY_LABELS},
    **{zh: code for code, (zh, _en) in CATEGORY_LABELS.items()},
}
#: Source as sent -> code.
SOURCE_INPUT: dict[str, str] = {
    **{code: code for code in SOURCE_LABELS},
    **{zh: code for code, (zh, _en) in SOURCE_LABELS.items()},
    "随手拍": "resident",
    "居民": "resident",
}
#: Status as sent -> code.
STATUS_INPUT: dict[str, str] = {
    **{code: code for code in STATUS_LABELS},
    **{zh: code for code, (zh, _en) in STATUS_LABELS.items()},
    "办结": "closed",
    "撤销": "cancelled",
}
_TILE_WORDS = ("none", "osm", "tianditu")
_GRID_CODE = re.compile(r"^\d{1,15}$")


# ---------------------------------------------------------------- errors
class ErrorInfo(BaseModel):
    """The ``error`` object of every error response."""

    code: str = Field(description="machine-readable code, e.g. not_found, invalid_bbox")
    message: str = Field(description="what is wrong and how to fix it")
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx response."""

    error: ErrorInfo


# ---------------------------------------------------------------- events
class EventIn(BaseModel):
    """One event (事件) report.

    Times are ISO 8601 strings; a time without an offset is China Standard Time
    (+08:00). The point must lie inside the plan area; the grid is assigned by
    point-in-polygon.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="your id for the event; generated when absent",
    )
    reported_at: datetime = Field(description="ISO 8601 time the event was reported")
    category: str = Field(
        description="one of the seven categories, as code or Chinese name: "
        + ", ".join(f"{k} ({v[0]})" for k, v in CATEGORY_LABELS.items())
    )
    source: str = Field("grid_worker", description="grid_worker (网格员) or resident (居民随手拍)")
    status: str = Field("open", description="open, closed or cancelled (办理中/已办结/已撤销)")
    deadline: datetime | None = Field(None, description="ISO 8601 deadline for closing it")
    closed_at: datetime | None = Field(None, description="ISO 8601 time it was closed")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="longitude (WGS84)")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="latitude (WGS84)")

    @field_validator("reported_at", "deadline", "closed_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 time string, e.g. 2025-06-01T09:30:00+08:00")
        if not re.match(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?", value):
            raise ValueError("must be an ISO 8601 time, e.g. 2025-06-01T09:30:00+08:00")
        return value

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        code = CATEGORY_INPUT.get(value) or CATEGORY_INPUT.get(value.lower())
        if code is None:
            raise ValueError(f"unknown category {value!r}; use one of {sorted(CATEGORY_LABELS)}")
        return code

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        code = SOURCE_INPUT.get(value) or SOURCE_INPUT.get(value.lower())
        if code is None:
            raise ValueError(f"unknown source {value!r}; use grid_worker or resident")
        return code

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        code = STATUS_INPUT.get(value) or STATUS_INPUT.get(value.lower())
        if code is None:
            raise ValueError(f"unknown status {value!r}; use open, closed or cancelled")
        return code

    @model_validator(mode="after")
    def _order(self) -> EventIn:
        from .geo import parse_time

        rep = parse_time(self.reported_at)
        if self.closed_at is not None and parse_time(self.closed_at) < rep:
            raise ValueError("closed_at is earlier than reported_at")
        if self.deadline is not None and parse_time(self.deadline) < rep:
            raise ValueError("deadline is earlier than reported_at")
        return self


class EventItemError(BaseModel):
    """Why one event of a batch was refused."""

    index: int = Field(description="position of the event in the request (0 for one object)")
    event_id: str | None = None
    errors: list[dict[str, str]]


class EventsAccepted(BaseModel):
    """Answer of ``POST /api/events``."""

    accepted: list[str] = Field(description="ids of the stored events")
    errors: list[EventItemError] = Field(description="refused events with the reasons")
    plan_id: int | None = Field(None, description="plan whose grids the events were assigned to")


# ----------------------------------------------------------------- plans
class GridEdit(BaseModel):
    """New values for one grid's editable fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    grid_code: str = Field(min_length=1, max_length=15, pattern=r"^\d{1,15}$")
    name: str | None = Field(None, max_length=100, description="grid name")
    worker: str | None = Field(None, max_length=100, description="grid worker (网格员)")


class PlanPatch(BaseModel):
    """An edit of a plan; saved as a new version.

    ``version`` must be the plan's current version (optimistic concurrency): if
    somebody saved a newer version meanwhile, the edit is refused with 409.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1, le=2**31, description="the version you edited")
    name: str | None = Field(None, min_length=1, max_length=200, description="new plan name")
    grids: list[GridEdit] = Field(default_factory=list, max_length=100_000)
    comment: str = Field("", max_length=500, description="why (kept in the plan history)")


class PlanOut(BaseModel):
    """A plan's current state."""

    id: int
    name: str
    version: int
    created: str
    updated: str
    summary: dict[str, Any]
    notes: list[str]
    comment: str = ""
    versions: list[dict[str, Any]] | None = None


class JobAccepted(BaseModel):
    """Answer of ``POST /api/plans``: the job that builds the plan."""

    job: str
    status_url: str


class JobOut(BaseModel):
    """A background job."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    message: str
    plan_id: int | None = None
    error: str | None = None
    created: str
    updated: str


# -------------------------------------------------------------- settings
class SettingsPatch(BaseModel):
    """Display settings saved in the store (``""`` resets one to the server default)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lang: Literal["zh", "en", ""] | None = None
    tiles: str | None = Field(
        None,
        max_length=1000,
        description="none, osm, tianditu or an http(s) XYZ template with {z}, {x} and {y}",
    )
    tiles_attribution: str | None = Field(None, max_length=300)
    tianditu_key: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9]*$")

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: str | None) -> str | None:
        if value is None or value == "" or value.lower() in _TILE_WORDS:
            return value
        if not re.match(r"^https?://", value) or not all(p in value for p in ("{z}", "{x}", "{y}")):
            raise ValueError(
                "tiles must be none, osm, tianditu or an http(s) URL template with {z}, {x}, {y}"
            )
        if any(ch in value for ch in "<>\"'` \\"):
            raise ValueError("tiles URL contains characters not allowed in a URL")
        return value


class SettingsOut(BaseModel):
    """The effective display settings (the token is never shown)."""

    lang: str
    tiles: str
    tiles_attribution: str | None
    tianditu_key_set: bool
    private_reads: bool
    writes_enabled: bool
    max_upload_mb: float


# ---------------------------------------------------------------- overlays
class FeatureCollectionOut(BaseModel):
    """A GeoJSON FeatureCollection in WGS84 (EPSG:4326)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]] = Field(
        default_factory=list, description="GeoJSON Features (geometry + properties)"
    )


class EvacuationSummary(BaseModel):
    """Headline figures of an evacuation plan (:meth:`EvacuationPlan.summary` and more)."""

    model_config = ConfigDict(extra="allow")

    persons: int = Field(0, description="persons to move")
    placed_persons: int = Field(0, description="persons placed in a shelter")
    unplaced_persons: dict[str, int] = Field(
        default_factory=dict,
        description="persons not placed, by reason: cut_off (flooded roads), no_capacity",
    )
    clearance_time_min: float | None = Field(
        None, description="minutes until the last placed person reaches a shelter"
    )


class EvacuationOverlay(BaseModel):
    """The ``evacuation`` overlay of a plan (from :func:`gridmap.plan_evacuation`)."""

    plan_id: int
    name: Literal["evacuation"] = "evacuation"
    summary: EvacuationSummary = Field(default_factory=EvacuationSummary)
    shelters: FeatureCollectionOut = Field(
        default_factory=FeatureCollectionOut,
        description="shelter points: shelter_id, name, capacity, load, pct_used, status",
    )
    routes: FeatureCollectionOut = Field(
        default_factory=FeatureCollectionOut,
        description="route lines (building -> shelter): shelter_id, shelter, persons, ...",
    )
    impassable: FeatureCollectionOut = Field(
        default_factory=FeatureCollectionOut,
        description="flooded, impassable road edges: name, highway, depth_max_m, length_m",
    )
