"""The gridmap web app: :func:`create_app` builds the FastAPI application.

Routers (one per resource) live in :mod:`api.routers`; the app keeps its settings,
project store, plan cache and job runner on ``app.state``. OpenAPI is at
``/openapi.json``; ``/docs`` serves Swagger UI from the app's own static files (no CDN);
ReDoc is switched off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import gridmap

from .deps import no_nameless_query
from .errors import error_body, install_error_handlers
from .geo import PlanCache, clean_json
from .jobs import Instance, JobRunner, exclusive, reap_dead_instances
from .routers import (
    audit,
    buildings,
    edits,
    events,
    grids,
    jobs,
    pages,
    photos,
    plans,
    search,
    stats,
    users,
)
from .routers import settings as settings_router
from .schemas import EventIn
from .settings import Settings
from .store import Store, plan_to_bytes

log = logging.getLogger("gridmap.api")
_STATIC = Path(__file__).resolve().parent / "static"

#: Start-up warning when no token is configured.
NO_TOKEN_WARNING = (
    "GRIDMAP_TOKEN is not set and the store has no users: the API is read-only and every "
    "write (POST/PUT/PATCH) is refused with 403. Set GRIDMAP_TOKEN=<secret> (or add users "
    "with 'gridmap users add') and send 'Authorization: Bearer <token>' to allow writes."
)
#: Request bodies documented through ``openapi_extra`` rather than a typed parameter
#: (they are validated item by item); their schemas are added to the components.
_EXTRA_COMPONENTS = (EventIn,)


class BodyLimitMiddleware:
    """Refuse request bodies larger than `max_bytes` with 413 (JSON error body).

    A declared ``Content-Length`` over the limit is refused before the body is read;
    a body without one is counted as it streams in.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                length = value
                break
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await self._reply(send, 400, "bad_request", "Content-Length is not a number")
                return
            if n > self.max_bytes:
                await self._reply(
                    send,
                    413,
                    "payload_too_large",
                    f"the request body ({n} bytes) exceeds the limit of {self.max_bytes} bytes "
                    "(GRIDMAP_MAX_UPLOAD_MB)",
                )
                return
        seen = 0
        limit = self.max_bytes

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(
                        413, f"the request body exceeds the limit of {limit} bytes"
                    )
            return message

        await self.app(scope, limited, send)

    @staticmethod
    async def _reply(send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps(error_body(code, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(store_path: str | Path | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the gridmap web app.

    Parameters
    ----------
    store_path : path-like, optional
        The project store; overrides ``settings.store_path``.
    settings : Settings, optional
        Server settings (default: :meth:`Settings.from_env`).

    Returns
    -------
    fastapi.FastAPI
    """
    settings = settings or Settings.from_env()
    if store_path is not None:
        settings = settings.with_values(store_path=Path(store_path))
    store = Store(settings.store_path)
    instance = Instance(store.uploads_dir)
    failed = reap_dead_instances(store, instance)
    if failed:
        log.warning("%d unfinished job(s) of stopped server processes marked failed", failed)
    runner = JobRunner(store, settings.job_workers, instance)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        latest = store.latest_plan_id()
        if latest is not None:
            app.state.cache.warm(store.plan(latest))  # the newest plan is shown first
        yield
        runner.shutdown(wait=False)
        store.close()

    app = FastAPI(
        title="gridmap API",
        version=gridmap.__version__,
        summary="Grid management (网格化管理): plans, grids, buildings, events, statistics.",
        description=(
            "Reads are public unless `GRIDMAP_PRIVATE_READS=1`; writes need "
            "`Authorization: Bearer <token>`: `GRIDMAP_TOKEN` (bootstrap admin) or a user "
            "token (`gridmap users add NAME --role viewer|worker|planner|admin "
            "[--scope CODE]`). Roles: viewer reads; worker reports and handles events; "
            "planner edits and uploads plans; admin does everything (settings, users, "
            "audit log). A scope (code prefix) limits writes to its grids. Every write is "
            "in the audit log (`GET /api/audit`). GeoJSON is WGS84 (EPSG:4326). "
            'Every error has the body `{"error": {"code": ..., "message": ...}}`.'
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        dependencies=[Depends(no_nameless_query)],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.cache = PlanCache(store, settings.plan_cache)
    app.state.jobs = runner
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    routers = (plans, grids, buildings, events, stats, jobs, settings_router, users, audit, pages)
    routers += (search, photos, edits)
    for module in routers:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if not settings.token and not store.has_users():
        log.warning(NO_TOKEN_WARNING)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the schemas of :data:`_EXTRA_COMPONENTS` included."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in _EXTRA_COMPONENTS:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas.setdefault(model.__name__, js)
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            if isinstance(op, dict) and "responses" in op:
                _common_responses(op)
    app.openapi_schema = doc
    return doc


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def _common_responses(op: dict[str, Any]) -> None:
    """Document the errors every operation can answer: 400 (malformed query or body),
    401 (a token is needed: private reads, or a write), 413 (body over the limit)."""
    responses = op["responses"]
    responses.setdefault("400", _error_response("malformed request (query, JSON or form)"))
    responses.setdefault(
        "401", _error_response("token missing (reads too with GRIDMAP_PRIVATE_READS=1)")
    )
    if "requestBody" in op:
        responses.setdefault("413", _error_response("body over GRIDMAP_MAX_UPLOAD_MB"))


def store_plan(store: Store, plan: Any, name: str, comment: str = "") -> int:
    """Store a :class:`gridmap.Plan` as a new plan (version 1); return its id."""
    summary = clean_json(plan.summary())
    return store.add_plan(name, plan_to_bytes(plan), summary, list(plan.notes), comment).id


def event_rows(events: Any, view: Any) -> list[dict[str, Any]]:
    """Rows for :meth:`Store.add_events` from an events GeoDataFrame (any CRS).

    Events outside the plan are skipped. Times without an offset are taken as +08:00.
    """
    import numpy as np
    import pandas as pd

    from gridmap.crs import to_wgs84

    from .geo import CST

    ev = to_wgs84(events, "events").reset_index(drop=True)
    pts = ev.geometry
    lon, lat = pts.x.to_numpy(float), pts.y.to_numpy(float)
    gidx = view.locate(lon, lat)

    def times(col: str) -> pd.Series:
        if col not in ev:
            return pd.Series([pd.NaT] * len(ev))
        t = pd.to_datetime(ev[col], errors="coerce", format="ISO8601")
        if getattr(t.dt, "tz", None) is None:
            t = t.dt.tz_localize(CST)
        return t.dt.tz_convert(CST)

    rep, dl, cl = times("reported_at"), times("deadline"), times("closed_at")
    rows = []
    for i in np.flatnonzero((gidx >= 0) & rep.notna().to_numpy()):
        rows.append(
            {
                "event_id": str(ev["event_id"].iloc[i]) if "event_id" in ev else f"S{i:07d}",
                "plan_id": view.plan_id,
                "grid_code": str(view.codes[gidx[i]]),
                "reported_at": rep.iloc[i].isoformat(),
                "reported_ts": rep.iloc[i].timestamp(),
                "category": str(ev["category"].iloc[i]) if "category" in ev else "",
                "source": str(ev["source"].iloc[i]) if "source" in ev else "grid_worker",
                "status": str(ev["status"].iloc[i]) if "status" in ev else "open",
                "deadline": None if pd.isna(dl.iloc[i]) else dl.iloc[i].isoformat(),
                "closed_at": None if pd.isna(cl.iloc[i]) else cl.iloc[i].isoformat(),
                "lon": float(lon[i]),
                "lat": float(lat[i]),
            }
        )
    return rows


#: Columns of a flood grading's grid table kept in the ``flood`` overlay.
FLOOD_COLUMNS = (
    "grid_code",
    "grade",
    "grade_zh",
    "grade_share",
    "households",
    "households_at_risk",
    "persons_at_risk",
    "households_red",
    "households_orange",
    "households_yellow",
    "households_blue",
)


def attach_flood(store: Store, plan_id: int, grading: Any) -> int:
    """Store the per-grid grades of a :func:`gridmap.grade_flood` result as the plan's
    ``flood`` overlay (shown as the flood-colour layer of the map); return the grid count.
    """
    import pandas as pd

    grids = grading.grids
    if grids is None:
        raise ValueError("the flood grading has no grid table (grade a plan, not buildings)")
    cols = [c for c in FLOOD_COLUMNS if c in grids.columns]
    table = pd.DataFrame(grids[cols])
    table["grid_code"] = table["grid_code"].astype(str)
    store.set_overlay(
        plan_id,
        "flood",
        {
            "grids": clean_json(table.to_dict("records")),
            "thresholds": clean_json(dict(grading.thresholds)),
            "palette": _flood_palette(),
            "sources": [str(s.get("name", s.get("kind", ""))) for s in grading.sources],
        },
    )
    return len(table)


def _flood_palette() -> dict[str, str]:
    try:
        from gridmap.flood import PALETTE

        return dict(PALETTE)
    except ImportError:  # pragma: no cover - the overlay comes from gridmap.flood
        return {}


#: Shelter columns kept in the ``evacuation`` overlay (points).
EVAC_SHELTER_COLUMNS = (
    "shelter_id",
    "name",
    "type",
    "capacity",
    "load",
    "transport_load",
    "households",
    "pct_used",
    "status",
    "island_at_peak",
)
#: Route columns kept in the ``evacuation`` overlay (lines building -> shelter).
EVAC_ROUTE_COLUMNS = (
    "building_id",
    "grid_code",
    "colour",
    "shelter_id",
    "shelter",
    "mode",
    "households",
    "persons",
    "route_length_m",
    "travel_time_min",
    "arrival_time_min",
    "wave",
    "cut_stage",
    "cut_level_m",
    "cut_at_peak",
)
#: Impassable road columns kept in the ``evacuation`` overlay.
EVAC_ROAD_COLUMNS = ("edge", "name", "highway", "length_m", "depth_max_m", "cut_stage")
#: Building columns kept in the ``evacuation`` overlay (points: placed by wave, the others
#: by reason).
EVAC_BUILDING_COLUMNS = (
    "building_id",
    "grid_code",
    "colour",
    "households_to_move",
    "persons_to_move",
    "status",
    "wave",
    "cut_stage",
    "shelter",
)
_EVAC_REASONS = ("cut_off", "no_capacity", "needs_transport", "no_route")


def evacuation_overlay(evac: Any) -> dict[str, Any]:
    """The ``evacuation`` overlay of a :func:`gridmap.plan_evacuation` result.

    Returns
    -------
    dict
        ``summary`` (:meth:`EvacuationPlan.summary` plus ``unplaced_persons`` by
        reason), ``palette`` (colours of the waves, the reasons and the flooded roads,
        as on the folium map) and the WGS84 FeatureCollections ``shelters`` (points),
        ``buildings`` (points: the buildings with households to move), ``routes`` and
        ``impassable`` (lines: roads flooded at the peak).
    """
    import geopandas as gpd

    from .geo import geojson_wgs84

    summary = dict(evac.summary())
    summary["unplaced_persons"] = {
        reason: int(summary.get(f"{reason}_persons", 0)) for reason in _EVAC_REASONS
    }
    summary["persons_by_wave"] = {
        str(k): int(v) for k, v in (summary.get("persons_by_wave") or {}).items()
    }
    sh = evac.shelters
    points = gpd.GeoDataFrame(
        sh.drop(columns=sh.geometry.name), geometry=sh.geometry.representative_point(), crs=sh.crs
    )
    b = evac.buildings
    b_points = gpd.GeoDataFrame(
        b.drop(columns=b.geometry.name), geometry=b.geometry.representative_point(), crs=b.crs
    )
    try:
        from gridmap.evacuation.outputs import FLOODED_ROAD_COLOUR, REASON_COLOURS, WAVE_COLOURS

        palette = {
            "waves": list(WAVE_COLOURS),
            "reasons": dict(REASON_COLOURS),
            "flooded": FLOODED_ROAD_COLOUR,
        }
    except ImportError:  # pragma: no cover - the overlay comes from gridmap.evacuation
        palette = {}
    return clean_json(
        {
            "summary": summary,
            "palette": palette,
            "shelters": geojson_wgs84(points, EVAC_SHELTER_COLUMNS),
            "buildings": geojson_wgs84(b_points, EVAC_BUILDING_COLUMNS),
            "routes": geojson_wgs84(evac.routes, EVAC_ROUTE_COLUMNS),
            "impassable": geojson_wgs84(evac.impassable, EVAC_ROAD_COLUMNS),
        }
    )


def attach_evacuation(store: Store, plan_id: int, evac: Any) -> int:
    """Store a :func:`gridmap.plan_evacuation` result as the plan's ``evacuation``
    overlay (shown as the evacuation layer of the map); return the route count.
    """
    data = evacuation_overlay(evac)
    store.set_overlay(plan_id, "evacuation", data)
    return len(data["routes"]["features"])


def _sample_flood(store: Store, plan_id: int, plan: Any, layers: dict, data: Any) -> Any:
    """Grade the sample plan for floods as the main job does, attach the overlay and
    return the grading."""
    from gridmap.flood import grade_flood
    from gridmap.sample import sample_paths

    paths = sample_paths(data)
    grading = grade_flood(
        plan,
        depth=paths.get("flood_depth"),
        extent=layers.get("flood_extent"),
        dem=paths.get("dem"),
    )
    log.info("sample flood grades stored for %d grids", attach_flood(store, plan_id, grading))
    return grading


def _sample_evacuation(store: Store, plan_id: int, grading: Any, layers: dict) -> None:
    """Plan the sample's evacuation as the main job does and attach the overlay."""
    from gridmap.evacuation import plan_evacuation

    evac = plan_evacuation(grading, layers["roads"], layers["shelters"])
    log.info("sample evacuation stored: %d routes", attach_evacuation(store, plan_id, evac))


def seed_sample(store: Store, data: str | Path | None = None) -> int | None:
    """Fill an empty store with the sample town's plan (version 1), events, flood grades
    and evacuation plan.

    Returns the plan id, or None when the store already had a plan. The events are
    loaded when the sample has an ``events`` layer; the flood overlay when
    :mod:`gridmap.flood` and the sample's flood inputs are there; the evacuation
    overlay (:func:`gridmap.plan_evacuation` on that grading with the sample's roads
    and shelters) after the flood grading.
    """
    if store.latest_plan_id() is not None:
        return None
    with exclusive(store.uploads_dir / ".seed.lock"):  # two `gridmap serve` at once
        return _seed_sample(store, data)


def _seed_sample(store: Store, data: str | Path | None) -> int | None:
    if store.latest_plan_id() is not None:
        return None
    from gridmap.pipeline import plan_sample

    log.info("the store has no plan: planning the sample town (takes a little while)")
    plan = plan_sample(data)
    plan_id = store_plan(store, plan, "示例城镇 Sample town", "gridmap serve: sample town")
    try:
        from gridmap.sample import load_sample

        layers = load_sample(data)
    except Exception as exc:  # noqa: BLE001 - events are optional
        log.info("sample events not loaded: %s", exc)
        return plan_id
    events = layers.get("events") if isinstance(layers, dict) else None
    if events is not None and len(events):
        cache = PlanCache(store, 1)
        view = cache.view(store.plan(plan_id))
        rows = event_rows(events, view)
        existing = store.existing_event_ids(r["event_id"] for r in rows)
        rows = [r for r in rows if r["event_id"] not in existing]
        if rows:
            store.add_events(rows)
        log.info("sample events stored: %d", len(rows))
    try:
        grading = _sample_flood(store, plan_id, plan, layers, data)
    except Exception as exc:  # noqa: BLE001 - the flood layer is optional
        log.warning("sample flood grades not stored: %s", exc)
        return plan_id
    try:
        _sample_evacuation(store, plan_id, grading, layers)
    except Exception as exc:  # noqa: BLE001 - the evacuation layer is optional
        log.warning("sample evacuation not stored: %s", exc)
    return plan_id
