"""Request and response models of the JSON API (pydantic)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gridmap.events.times import zone_of
from gridmap.events.workflow import normalise_status

from .i18n import CATEGORY_LABELS, SOURCE_LABELS, STATUS_LABELS
from .store import ROLES

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

# ------------------------------------------------------------------ times
#: China Standard Time: the offset of times given without one.
_CST = timezone(timedelta(hours=8), "Asia/Shanghai")
#: The zone given to a time sent without an offset: +08:00 like :data:`_CST`, but a
#: distinct object, so that an event can re-read such a time in its own place's zone.
ASSUMED_CST = timezone(timedelta(hours=8), "+08:00 (assumed)")
#: ISO 8601 times the API accepts: a date, or a date and time with an optional offset.
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
#: Earliest and latest accepted times (China Standard Time), so that every time can be
#: shown in any offset and as a timestamp.
TIME_MIN = datetime(1900, 1, 1, tzinfo=_CST)
TIME_MAX = datetime(2200, 1, 1, tzinfo=_CST)
_TIME_HELP = "e.g. 2025-06-01T09:30:00+08:00; without an offset China Standard Time (+08:00)"


def parse_iso_time(value: Any) -> datetime:
    """Read an API time: an ISO 8601 string matching :data:`TIME_PATTERN` (or a
    datetime) between :data:`TIME_MIN` and :data:`TIME_MAX`; naive times are +08:00.

    Returns
    -------
    datetime
        Timezone-aware.

    Raises
    ------
    ValueError
        Not such a string, not a real date, or out of range (the message says which).
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and re.fullmatch(TIME_PATTERN, value):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a real date and time ({exc})") from None
    else:
        shown = repr(value)[:60]
        raise ValueError(f"{shown} is not an ISO 8601 time ({_TIME_HELP})")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ASSUMED_CST)
    try:
        dt.astimezone(UTC)
        ok = TIME_MIN <= dt < TIME_MAX
    except OverflowError:
        ok = False
    if not ok:
        raise ValueError(
            f"{dt.isoformat()} is outside the accepted range 1900-01-01 to 2199-12-31 "
            "(China Standard Time)"
        )
    return dt


#: A time in requests: ISO 8601 text (see :func:`parse_iso_time`), documented by pattern.
IsoTime = Annotated[
    datetime,
    BeforeValidator(parse_iso_time),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TIME_PATTERN,
            "description": f"ISO 8601 time, 1900-2199 ({_TIME_HELP})",
            "examples": ["2025-06-01T09:30:00+08:00"],
        }
    ),
]


def _assumed(value: datetime | None) -> bool:
    """Whether `value` was sent without an offset (see :data:`ASSUMED_CST`)."""
    return value is not None and value.tzinfo is ASSUMED_CST


# ------------------------------------------------------------------- text
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _checked_text(value: str, pattern: re.Pattern[str]) -> str:
    bad = pattern.search(value)
    if bad is not None:
        raise ValueError(
            f"contains the control character U+{ord(bad.group()):04X} at position "
            f"{bad.start()}; it would not be stored as sent, remove it"
        )
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise ValueError(
            f"contains an unpaired surrogate U+{ord(bad.group()):04X} at position "
            f"{bad.start()}: not valid Unicode"
        )
    return value


def single_line(value: str) -> str:
    """Refuse text with control characters (NUL, tab, line breaks...) or lone surrogates."""
    return _checked_text(value, _CONTROL)


def multi_line(value: str) -> str:
    """Like :func:`single_line`, but tab and line breaks are allowed."""
    return _checked_text(value, _CONTROL_MULTILINE)


#: Names: no control characters (they are stored and shown exactly as sent).
Name = Annotated[
    str,
    AfterValidator(single_line),
    WithJsonSchema({"type": "string", "pattern": r"^[^\x00-\x1f\x7f]*$"}),
]
#: Free text (comments): no control characters except tab and line breaks.
Text = Annotated[
    str,
    AfterValidator(multi_line),
    WithJsonSchema({"type": "string", "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"}),
]


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

    Times are ISO 8601 strings; a time without an offset is read in the zone of the
    event's place (Asia/Jakarta in Jakarta, as :func:`gridmap.read_events` does), China
    Standard Time (+08:00) where the place is not in the zone table. The point must lie
    inside the plan area; the grid is assigned by point-in-polygon.
    """

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="your id for the event; generated when absent",
    )
    reported_at: IsoTime = Field(description="ISO 8601 time the event was reported")
    category: str = Field(
        description="one of the seven categories, as code or Chinese name: "
        + ", ".join(f"{k} ({v[0]})" for k, v in CATEGORY_LABELS.items())
    )
    source: str = Field("grid_worker", description="grid_worker (网格员) or resident (居民随手拍)")
    status: str = Field("open", description="open, closed or cancelled (办理中/已办结/已撤销)")
    deadline: IsoTime | None = Field(None, description="ISO 8601 deadline for closing it")
    closed_at: IsoTime | None = Field(None, description="ISO 8601 time it was closed")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="longitude (WGS84)")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="latitude (WGS84)")
    description: str | None = Field(
        None, max_length=500, description="what the reporter saw, in their words (事件描述)"
    )

    @model_validator(mode="after")
    def _local_times(self) -> EventIn:
        """Times sent without an offset are read in the zone of the event's place (for
        example +07:00 in Jakarta), as :func:`gridmap.read_events` reads files; China
        Standard Time where the place is not known."""
        naive = [f for f in ("reported_at", "deadline", "closed_at") if _assumed(getattr(self, f))]
        zone = zone_of(np.array([self.lon]), np.array([self.lat])) if naive else None
        if zone is not None:
            for f in naive:
                local = getattr(self, f).replace(tzinfo=ZoneInfo(zone))
                setattr(self, f, parse_iso_time(local))
        return self

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        key = value.strip()
        code = CATEGORY_INPUT.get(key) or CATEGORY_INPUT.get(key.lower())
        if code is None:
            raise ValueError(f"unknown category {value!r}; use one of {sorted(CATEGORY_LABELS)}")
        return code

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        key = value.strip()
        code = SOURCE_INPUT.get(key) or SOURCE_INPUT.get(key.lower())
        if code is None:
            raise ValueError(f"unknown source {value!r}; use grid_worker or resident")
        return code

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        key = value.strip()
        code = STATUS_INPUT.get(key) or STATUS_INPUT.get(key.lower())
        if code is None:
            raise ValueError(f"unknown status {value!r}; use open, closed or cancelled")
        return code

    @model_validator(mode="after")
    def _order(self) -> EventIn:
        if self.closed_at is not None and self.closed_at < self.reported_at:
            raise ValueError("closed_at is earlier than reported_at")
        if self.deadline is not None and self.deadline < self.reported_at:
            raise ValueError("deadline is earlier than reported_at")
        return self


class EventPatch(BaseModel):
    """A step of the event loop (上报 → 受理 → 分派 → 处置 → 反馈 → 办结), or a new
    deadline.

    ``status`` is the next step: ``accepted``, ``assigned`` (with ``worker``),
    ``handled``, ``feedback``, ``closed``, or ``cancelled`` from any step before
    ``closed``; a ``reported`` (or ``open``) event may also be ``closed`` at once
    (handled on the spot). Any other move is refused (422, naming the next step).
    ``at`` is when the step was taken (default: now; not earlier than the previous
    step, not in the future); ``closed_at`` is accepted for ``closed`` as before and
    must then equal ``at``. ``revision`` (from ``GET /api/events/{id}``), when given,
    must be the event's current revision: a change made meanwhile gives 409.
    """

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(
        None,
        description="the step: accepted (受理), assigned (分派), handled (处置), feedback "
        "(反馈), closed (办结) or cancelled (撤销)",
    )
    at: IsoTime | None = Field(None, description="ISO 8601 time of the step (default: now)")
    note: str | None = Field(None, max_length=2000, description="what was done, the answer ...")
    worker: str | None = Field(
        None, min_length=1, max_length=100, description="the worker (for assigned)"
    )
    closed_at: IsoTime | None = Field(None, description="ISO 8601 time it was closed")
    deadline: IsoTime | None = Field(None, description="ISO 8601 deadline for closing it")
    revision: int | None = Field(None, ge=0, le=2**31, description="the revision you changed")

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = value.strip()
        code = normalise_status(key) or STATUS_INPUT.get(key) or STATUS_INPUT.get(key.lower())
        if code is None:
            raise ValueError(
                f"unknown status {value!r}; use one of accepted, assigned, handled, feedback, "
                "closed, cancelled"
            )
        return code


class EventStep(BaseModel):
    """One step of an event's loop."""

    status: str = Field(description="reported, accepted, assigned, handled, feedback, closed, ...")
    at: str = Field(description="ISO 8601 time of the step")
    note: str | None = None
    worker: str | None = None
    actor: str | None = Field(None, description="who recorded the step (user name)")


class EventOut(BaseModel):
    """One stored event."""

    event_id: str
    plan_id: int | None = None
    grid_code: str | None = Field(None, description="grid the event was assigned on arrival")
    reported_at: str
    category: str
    source: str
    status: str
    deadline: str | None = None
    closed_at: str | None = None
    lon: float
    lat: float
    received: str
    revision: int = Field(description="increases with every change")
    worker: str | None = Field(None, description="the worker it is assigned to")
    description: str | None = Field(None, description="what the reporter saw (事件描述)")
    history: list[EventStep] = Field(
        default_factory=list,
        description="the loop so far, oldest first: the report, then every step taken",
    )
    next_steps: list[str] = Field(
        default_factory=list, description="the statuses the event may go to next"
    )


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

    model_config = ConfigDict(extra="forbid")

    grid_code: str = Field(min_length=1, max_length=15, pattern=r"^\d{1,15}$")
    name: Name | None = Field(None, max_length=100, description="grid name")
    worker: Name | None = Field(None, max_length=100, description="grid worker (网格员)")


class PlanPatch(BaseModel):
    """An edit of a plan; saved as a new version.

    ``version`` must be the plan's current version (optimistic concurrency): if
    somebody saved a newer version meanwhile, the edit is refused with 409.
    """

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31, description="the version you edited")
    name: Name | None = Field(None, min_length=1, max_length=200, description="new plan name")
    grids: list[GridEdit] = Field(default_factory=list, max_length=100_000)
    comment: Text = Field("", max_length=500, description="why (kept in the plan history)")


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

    model_config = ConfigDict(extra="forbid")

    lang: Literal["zh", "en", ""] | None = None
    tiles: str | None = Field(
        None,
        max_length=1000,
        description="none, osm, tianditu or an http(s) XYZ template with {z}, {x} and {y}",
    )
    tiles_attribution: Name | None = Field(None, max_length=300)
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
        description="persons not placed, by reason: no_capacity (every shelter within the "
        "walking limit full), needs_transport (none within it), no_route, cut_off (peak "
        "network only)",
    )
    persons_by_wave: dict[str, int] = Field(
        default_factory=dict, description="persons by departure wave (1 leaves first)"
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
        description="route lines (building -> shelter): shelter_id, shelter, persons, wave, "
        "cut_stage, mode (walk/vehicle), ...",
    )
    buildings: FeatureCollectionOut = Field(
        default_factory=FeatureCollectionOut,
        description="buildings with households to move (points): status (placed or the "
        "reason), wave, households_to_move, shelter",
    )
    palette: dict[str, Any] = Field(
        default_factory=dict,
        description="colours: waves (list, wave 1 first), reasons, flooded (roads)",
    )
    impassable: FeatureCollectionOut = Field(
        default_factory=FeatureCollectionOut,
        description="road edges flooded (impassable) at the peak: name, highway, depth_max_m, "
        "cut_stage, length_m",
    )


# ------------------------------------------------------------------ users
class UserIn(BaseModel):
    """A new user; the answer holds their token, shown this once."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[\w.@\-]+$",
        description="1-64 letters, digits, '_', '.', '@', '-'",
    )
    role: Literal[ROLES] = Field(description="viewer, worker, planner or admin")  # type: ignore[valid-type]
    scope: str | None = Field(
        None,
        pattern=r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$",
        description="code prefix the user may write in: district (6 digits), street (9), "
        "community (12) or grid (15); none = everywhere",
    )


class UserOut(BaseModel):
    """A user (the token is never shown again)."""

    name: str
    role: str
    scope: str | None = None
    created: str
    created_by: str
    revoked: str | None = None


class UserCreated(UserOut):
    """A new user with their token."""

    token: str = Field(description="the bearer token; keep it, it is not shown again")


# ------------------------------------------------------------------ audit
class AuditEntry(BaseModel):
    """One write, as the audit log keeps it."""

    id: int
    at: str = Field(description="UTC time of the write")
    who: str = Field(description="user name; GRIDMAP_TOKEN for the bootstrap token")
    role: str
    action: str = Field(description="events.add, event.update, plan.edit, plan.create, ...")
    target: str = Field(description="what was written, e.g. plan/1, events/E1")
    before: Any = Field(None, description="state before (versions, values), if any")
    after: Any = Field(None, description="state after (versions, ids, values), if any")
    client: str = Field(description="client address")


class AuditOut(BaseModel):
    """Audit entries, newest first."""

    entries: list[AuditEntry]
    truncated: bool = Field(description="whether more entries matched than limit")
