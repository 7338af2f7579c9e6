"""Plans as the web layer publishes them: cached WGS84 GeoJSON, lookups, event figures.

A :class:`PlanView` is built once per plan version (plan versions never change) and
kept in a small LRU cache (:class:`PlanCache`). It holds the decoded
:class:`gridmap.Plan`, one pre-serialised GeoJSON feature per grid (so a filtered
request only joins strings), the whole grid FeatureCollection (plain and gzipped), a
spatial index of the grids for point-in-polygon, and lazily the buildings and the
background layers.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from gridmap.crs import WGS84, to_wgs84
from gridmap.events.schema import OPEN_STATUSES
from gridmap.plan import GRID_COLUMNS

from .store import EVENT_FIELDS, PlanRecord, Store

#: China Standard Time (no daylight saving): given to times without an offset.
CST = timezone(timedelta(hours=8), "Asia/Shanghai")
#: Grid columns published in GeoJSON properties.
GRID_PROPS = tuple(GRID_COLUMNS)
#: Building columns published in GeoJSON properties (those the plan has).
BUILDING_PROPS = ("building_id", "grid_code", "households", "use", "levels", "units", "name")
#: Background layers a plan can publish.
PLAN_LAYERS = ("communities", "barriers", "compounds")
_PRECISION = 6  # decimal places of published lon/lat (about 0.1 m)
#: Grid properties the features by zoom carry (empty ones left out); the rest is
#: one ``GET /api/grids/{code}`` away.
LOD_PROPS = (
    "grid_code",
    "community_code",
    "community_name",
    "kind",
    "households",
    "range_min",
    "range_max",
    "flags",
    "name",
)
#: From this zoom on, ``GET /api/grids?zoom=`` sends the grids' full geometry.
FULL_ZOOM = 17
#: Coarsest level of simplified geometry: lower zooms get this one.
MIN_LOD_ZOOM = 8
#: Metres per pixel at zoom 0 on the equator (Web Mercator, 256-pixel tiles).
_M_PER_PX_Z0 = 156_543.033_928


def clean_json(value: Any) -> Any:
    """Make `value` JSON-safe: NaN/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value


def _geojson_geoms(geoms: np.ndarray) -> np.ndarray:
    """Return GeoJSON strings of `geoms` with coordinates rounded to ``_PRECISION``."""
    rounded = shapely.transform(geoms, lambda c: np.round(c, _PRECISION))
    return shapely.to_geojson(rounded)


def _prop_strings(props: pd.DataFrame) -> list[str]:
    """One JSON object string per row (properties cleaned of NaN)."""
    return [
        json.dumps(clean_json(r), ensure_ascii=False, separators=(",", ":"))
        for r in props.to_dict("records")
    ]


def _feature_strings(
    props: pd.DataFrame, geoms: np.ndarray, prop_json: list[str] | None = None
) -> list[str]:
    """One GeoJSON Feature string per row (properties cleaned of NaN)."""
    gj = _geojson_geoms(geoms)
    return [
        '{"type":"Feature","properties":'
        + r
        + ',"geometry":'
        + (g if g is not None else "null")
        + "}"
        for r, g in zip(prop_json or _prop_strings(props), gj, strict=True)
    ]


def feature_collection(features: list[str], **members: Any) -> bytes:
    """Join feature strings into a FeatureCollection (extra top-level `members`)."""
    head = json.dumps({"type": "FeatureCollection", **clean_json(members)}, ensure_ascii=False)
    return (head[:-1] + ',"features":[' + ",".join(features) + "]}").encode()


def geojson_wgs84(gdf: Any, columns: Iterable[str]) -> dict[str, Any]:
    """A GeoDataFrame (any CRS) as a GeoJSON FeatureCollection dict in WGS84.

    Only the `columns` the frame has are kept as properties; coordinates are rounded
    to ``_PRECISION`` decimals and NaN becomes null.
    """
    if gdf is None or len(gdf) == 0:
        return {"type": "FeatureCollection", "features": []}
    w = to_wgs84(gdf, "overlay") if gdf.crs is not None else gdf
    cols = [c for c in columns if c in w.columns and c != w.geometry.name]
    props = pd.DataFrame(w[cols]).reset_index(drop=True)
    return json.loads(feature_collection(_feature_strings(props, w.geometry.to_numpy())))


def lod_level(zoom: float) -> int:
    """The level of detail served at map zoom `zoom`: an integer zoom clipped to
    ``[MIN_LOD_ZOOM, FULL_ZOOM]`` (``FULL_ZOOM`` means the full geometry)."""
    return int(min(max(math.floor(zoom), MIN_LOD_ZOOM), FULL_ZOOM))


def pixel_metres(zoom: float, lat: float) -> float:
    """Ground metres one screen pixel covers at `zoom` and latitude `lat` (degrees)."""
    return _M_PER_PX_Z0 * math.cos(math.radians(max(-85.0, min(85.0, lat)))) / 2.0**zoom


def _simplified(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify a coverage of polygons so that shared edges stay shared.

    Coverage simplification (Visvalingam-Whyatt over the shared edges) keeps neighbours
    gap-free; any polygon it leaves invalid or empty falls back to its own
    topology-preserving simplification.
    """
    try:
        out = shapely.coverage_simplify(geoms, tolerance)
    except Exception:  # noqa: BLE001 - not a clean coverage: simplify one by one
        out = shapely.simplify(geoms, tolerance, preserve_topology=True)
    bad = shapely.is_empty(out) | ~shapely.is_valid(out)
    if bad.any():
        out = out.copy()
        out[bad] = shapely.simplify(geoms[bad], tolerance, preserve_topology=True)
    return out


def _round_props(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if "area_m2" in out:
        out["area_m2"] = out["area_m2"].astype(float).round(1)
    if "polsby_popper" in out:
        out["polsby_popper"] = out["polsby_popper"].astype(float).round(3)
    if "levels" in out:
        out["levels"] = pd.to_numeric(out["levels"], errors="coerce").astype(float).round(1)
    return out


class PlanView:
    """One plan version, ready to publish.

    Parameters
    ----------
    record : PlanRecord
        The store's record (id, version, ...).
    plan : gridmap.Plan
        The decoded plan.
    """

    def __init__(self, record: PlanRecord, plan: Any):
        self.record = record
        self.plan = plan
        self.plan_id = record.id
        self.version = record.version
        self.etag = f'"plan-{record.id}-v{record.version}-{record.sha256[:12]}"'
        grids = plan.grids.reset_index(drop=True)
        self.grids_wgs = to_wgs84(grids, "plan grids")
        cols = [c for c in GRID_PROPS if c in grids.columns]
        props = _round_props(pd.DataFrame(grids[cols]))
        self.grid_props = props
        self._prop_json = _prop_strings(props)
        self.features = _feature_strings(props, self.grids_wgs.geometry.to_numpy(), self._prop_json)
        self.bounds = shapely.bounds(self.grids_wgs.geometry.to_numpy())
        self.codes = grids["grid_code"].astype(str).to_numpy()
        self.code_index = {c: i for i, c in enumerate(self.codes)}
        self.communities = (
            grids["community_code"].astype(str).to_numpy()
            if "community_code" in grids
            else np.full(len(grids), "", dtype=object)
        )
        self.households = pd.to_numeric(grids["households"], errors="coerce").to_numpy(float)
        self.geojson = feature_collection(self.features, plan_id=self.plan_id, version=self.version)
        self.geojson_gz = gzip.compress(self.geojson, compresslevel=5)
        self._tree = shapely.STRtree(grids.geometry.to_numpy())
        self._metric_geoms = grids.geometry.to_numpy()
        self._to_metric = Transformer.from_crs(WGS84, plan.crs, always_xy=True)
        self._lock = threading.Lock()
        self._buildings: dict[str, Any] | None = None
        self._layers: dict[str, bytes] = {}
        self._lods: dict[int, list[str]] = {}
        self._lod_gz: dict[int, bytes] = {}
        self._label_points: np.ndarray | None = None
        self._memo: dict[str, Any] = {}
        total = self.bounds
        self.extent = (
            [
                float(total[:, 0].min()),
                float(total[:, 1].min()),
                float(total[:, 2].max()),
                float(total[:, 3].max()),
            ]
            if len(total)
            else None
        )

    # ----------------------------------------------------------------- grids
    def select(self, *, community: str | None = None, bbox: tuple | None = None) -> np.ndarray:
        """Positions of grids in `community` and/or intersecting `bbox` (WGS84)."""
        mask = np.ones(len(self.codes), dtype=bool)
        if community is not None:
            mask &= self.communities == community
        if bbox is not None:
            minx, miny, maxx, maxy = bbox
            b = self.bounds
            mask &= (b[:, 0] <= maxx) & (b[:, 2] >= minx) & (b[:, 1] <= maxy) & (b[:, 3] >= miny)
            if mask.any():
                box = shapely.box(minx, miny, maxx, maxy)
                idx = np.flatnonzero(mask)
                hit = shapely.intersects(self.grids_wgs.geometry.to_numpy()[idx], box)
                mask[idx[~hit]] = False
        return np.flatnonzero(mask)

    def memo(self, name: str, build: Callable[[], Any]) -> Any:
        """A value derived from this plan version, built once (e.g. the search index)."""
        with self._lock:
            if name in self._memo:
                return self._memo[name]
        value = build()
        with self._lock:
            return self._memo.setdefault(name, value)

    # ------------------------------------------------------ level of detail
    @property
    def label_points(self) -> np.ndarray:
        """(n, 2) lon/lat of a point inside each grid where its label goes.

        The centre of the grid's largest inscribed circle (its pole of
        inaccessibility, to a tolerance of a tenth of the grid's size), so that the label
        sits well inside even an L-shaped or long grid.
        """
        with self._lock:
            if self._label_points is None:
                geoms = self._metric_geoms
                size = np.sqrt(np.maximum(shapely.area(geoms), 1.0))
                centre = shapely.get_point(shapely.maximum_inscribed_circle(geoms, size / 10), 0)
                missing = shapely.is_empty(centre) | shapely.is_missing(centre)
                if missing.any():
                    centre[missing] = shapely.point_on_surface(geoms[missing])
                wgs = gpd.GeoSeries(centre, crs=self.plan.crs).to_crs(WGS84)
                self._label_points = np.round(shapely.get_coordinates(wgs.to_numpy()), _PRECISION)
            return self._label_points

    def lod_features(self, zoom: float) -> list[str]:
        """Grid features for map zoom `zoom`: geometry simplified to about half a screen
        pixel (coverage simplification, so neighbours stay gap-free), coordinates
        rounded to what the zoom can show, and a ``label`` property (lon, lat of the
        label point). Built once per level and plan version."""
        level = lod_level(zoom)
        with self._lock:
            if level in self._lods:
                return self._lods[level]
        geoms = self._metric_geoms
        if level < FULL_ZOOM and len(geoms):
            lat = (self.extent[1] + self.extent[3]) / 2
            geoms = _simplified(geoms, 0.5 * pixel_metres(level, lat))
        wgs = gpd.GeoSeries(geoms, crs=self.plan.crs).to_crs(WGS84).to_numpy()
        # decimals that stay well under a pixel: 1e-4 deg (~11 m) up to zoom 10, 1e-5
        # up to 13, then the published precision
        decimals = 4 if level <= 10 else 5 if level <= 13 else _PRECISION
        gj = shapely.to_geojson(shapely.transform(wgs, lambda c: np.round(c, decimals)))
        labels = self.label_points
        feats = [
            '{"type":"Feature","properties":'
            + props[:-1]
            + f',"label":[{lon:.6f},{lat:.6f}]}},"geometry":'
            + (g if g is not None else "null")
            + "}"
            for props, g, (lon, lat) in zip(self._lod_props(), gj, labels, strict=True)
        ]
        with self._lock:
            self._lods.setdefault(level, feats)
            return self._lods[level]

    def _lod_props(self) -> list[str]:
        """Properties of the features by zoom: those of :data:`LOD_PROPS` that are set."""
        cols = [c for c in LOD_PROPS if c in self.grid_props.columns]
        recs = clean_json(self.grid_props[cols].to_dict("records"))
        return [
            json.dumps(
                {k: v for k, v in r.items() if k == "grid_code" or v not in ("", None)},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            for r in recs
        ]

    def lod_collection(self, zoom: float) -> tuple[bytes, bytes]:
        """The whole plan's grids at `zoom` as a FeatureCollection: (plain, gzipped)."""
        level = lod_level(zoom)
        feats = self.lod_features(level)
        data = feature_collection(feats, plan_id=self.plan_id, version=self.version, zoom=level)
        with self._lock:
            gz = self._lod_gz.get(level)
        if gz is None:
            gz = gzip.compress(data, compresslevel=5)
            with self._lock:
                self._lod_gz[level] = gz
        return data, gz

    def grid_feature(self, code: str) -> dict[str, Any] | None:
        """The GeoJSON feature of one grid as a dict, or None."""
        i = self.code_index.get(code)
        if i is None:
            return None
        feat = json.loads(self.features[i])
        feat["bbox"] = [float(v) for v in self.bounds[i]]
        return feat

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Grid position holding each lon/lat point (-1 outside every grid).

        The test runs in the plan's metric CRS; a point on a shared boundary goes to
        the grid with the smallest code.
        """
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        out = np.full(len(lon), -1, dtype=np.int64)
        if len(lon) == 0:
            return out
        x, y = self._to_metric.transform(lon, lat)
        pts = shapely.points(x, y)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            return out
        p_idx, g_idx = self._tree.query(pts[ok], predicate="intersects")
        if len(p_idx) == 0:
            return out
        src = np.flatnonzero(ok)[p_idx]
        order = np.lexsort((self.codes[g_idx], src))
        src, g_idx = src[order], g_idx[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        out[src[first]] = g_idx[first]
        return out

    # ------------------------------------------------------------- buildings
    def _building_index(self) -> dict[str, Any]:
        with self._lock:
            if self._buildings is None:
                b = self.plan.buildings.reset_index(drop=True)
                wgs = to_wgs84(gpd.GeoDataFrame(b, geometry=b.geometry, crs=self.plan.crs))
                geoms = wgs.geometry.to_numpy()
                cols = [c for c in BUILDING_PROPS if c in b.columns]
                props = _round_props(pd.DataFrame(b[cols]))
                self._buildings = {
                    "props": props,
                    "geoms": geoms,
                    "n": len(b),
                    "grid_code": b["grid_code"].astype(str).to_numpy()
                    if "grid_code" in b
                    else np.full(len(b), "", dtype=object),
                    "tree": shapely.STRtree(geoms),
                }
            return self._buildings

    def buildings(
        self, *, grid: str | None = None, bbox: tuple | None = None, limit: int = 5000
    ) -> tuple[list[str], int]:
        """Building features of a grid and/or in a bbox; return (features, total matched)."""
        idx = self._building_index()
        sel: np.ndarray | None = None
        if bbox is not None:
            sel = np.sort(idx["tree"].query(shapely.box(*bbox), predicate="intersects"))
        if grid is not None:
            in_grid = np.flatnonzero(idx["grid_code"] == grid)
            sel = in_grid if sel is None else np.intersect1d(sel, in_grid)
        if sel is None:
            sel = np.arange(idx["n"])
        # features are serialised per request: a city holds a million buildings
        take = sel[:limit]
        feats = _feature_strings(idx["props"].iloc[take], idx["geoms"][take]) if len(take) else []
        return feats, int(len(sel))

    # ---------------------------------------------------------------- layers
    def layer(self, name: str, zoom: float | None = None) -> bytes | None:
        """GeoJSON of a background layer (``communities``, ``barriers``, ``compounds``).

        Returns None when the plan does not have the layer. Barrier features get a
        ``class`` property: ``water``, ``rail`` or ``road``. With `zoom`, geometry is
        simplified to about half a screen pixel at that zoom (communities as a coverage,
        so that neighbours keep their shared edges); from ``FULL_ZOOM`` on it is whole.
        """
        level = None if zoom is None else lod_level(zoom)
        if level == FULL_ZOOM:
            level = None
        key = name if level is None else f"{name}@{level}"
        with self._lock:
            if key in self._layers:
                return self._layers[key]
        gdf = getattr(self.plan, name, None)
        if gdf is None or len(gdf) == 0:
            return None
        gdf = gdf.reset_index(drop=True)
        if level is not None and self.extent is not None:
            tol = 0.5 * pixel_metres(level, (self.extent[1] + self.extent[3]) / 2)
            geoms = gdf.geometry.to_numpy()
            polygonal = bool(np.all(np.isin(shapely.get_type_id(geoms), (3, 6))))
            if name == "communities" and polygonal:
                geoms = _simplified(geoms, tol)
            else:
                geoms = shapely.simplify(geoms, tol, preserve_topology=True)
            gdf = gdf.set_geometry(gpd.GeoSeries(geoms, crs=gdf.crs, index=gdf.index))
        wgs = to_wgs84(gpd.GeoDataFrame(gdf, geometry=gdf.geometry, crs=self.plan.crs))
        props = pd.DataFrame(
            {
                c: wgs[c].astype(object).where(wgs[c].notna(), None).astype(str)
                for c in wgs.columns
                if c != wgs.geometry.name
            }
        )
        if name == "barriers":
            label = (
                props["barrier"]
                if "barrier" in props
                else pd.Series([""] * len(props), dtype=object)
            )
            props["class"] = np.select(
                [
                    label.str.startswith("waterway").to_numpy(),
                    label.str.startswith("railway").to_numpy(),
                ],
                ["water", "rail"],
                default="road",
            )
        members = {"layer": name} if level is None else {"layer": name, "zoom": level}
        data = feature_collection(_feature_strings(props, wgs.geometry.to_numpy()), **members)
        with self._lock:
            self._layers[key] = data
        return data


class PlanCache:
    """LRU cache of :class:`PlanView` per (plan id, version).

    Parameters
    ----------
    store : Store
        Where plans are read from.
    size : int
        How many plan versions to keep decoded.
    """

    def __init__(self, store: Store, size: int = 4):
        self.store = store
        self.size = max(1, int(size))
        self._views: OrderedDict[tuple[int, int], PlanView] = OrderedDict()
        self._locks: dict[tuple[int, int], threading.Lock] = {}
        self._lock = threading.Lock()
        self._derived: OrderedDict[tuple, Any] = OrderedDict()
        self._plans: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def put(self, record: PlanRecord, plan: Any) -> None:
        """Keep the decoded plan of `record`'s version (e.g. just made by an edit), so
        neither the next edit nor the first view of it decodes the store's bytes."""
        with self._lock:
            self._plans[(record.id, record.version)] = plan
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)

    def plan(self, record: PlanRecord) -> Any:
        """The :class:`gridmap.Plan` of `record`'s version (kept, viewed or decoded)."""
        key = (record.id, record.version)
        with self._lock:
            if key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key]
            if key in self._views:
                return self._views[key].plan
            decoding = key in self._locks  # a view is being built (e.g. warm at start)
        if decoding:
            return self.view(record).plan
        plan = self.store.plan_object(record.id, record.version)
        self.put(record, plan)
        return plan

    def view(self, record: PlanRecord) -> PlanView:
        """Return the view of `record`'s version, decoding the plan on first use."""
        key = (record.id, record.version)
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._views:
                    return self._views[key]
            with self._lock:
                plan = self._plans.get(key)
            if plan is None:
                plan = self.store.plan_object(record.id, record.version)
            view = PlanView(record, plan)
            with self._lock:
                self._views[key] = view
                while len(self._views) > self.size:
                    self._views.popitem(last=False)
                self._locks.pop(key, None)
            return view

    def has(self, record: PlanRecord) -> bool:
        """Whether `record`'s version is decoded already."""
        with self._lock:
            return (record.id, record.version) in self._views

    def warm(self, record: PlanRecord) -> None:
        """Decode `record`'s version in a background thread (no-op when cached).

        The map page calls this so that the plan is ready when the page asks for it.
        """
        if self.has(record):
            return

        def run() -> None:
            try:
                self.view(record)
            except Exception:  # noqa: BLE001 - the request that needs it will report it
                logging.getLogger("gridmap.api").exception("warming plan %s failed", record.id)

        threading.Thread(target=run, name=f"gridmap-warm-{record.id}", daemon=True).start()

    def derived(self, key: tuple, build: Callable[[], Any], size: int = 16) -> Any:
        """Memoise a value derived from plan views and events under `key` (small LRU)."""
        with self._lock:
            if key in self._derived:
                self._derived.move_to_end(key)
                return self._derived[key]
        value = build()
        with self._lock:
            self._derived[key] = value
            while len(self._derived) > size:
                self._derived.popitem(last=False)
        return value


# ------------------------------------------------------------------- events
def parse_time(value: datetime) -> datetime:
    """Give a naive time the China Standard Time offset."""
    return value if value.tzinfo is not None else value.replace(tzinfo=CST)


def iso_cst(value: datetime | None) -> str | None:
    """ISO 8601 text of a time in China Standard Time (``+08:00``)."""
    if value is None:
        return None
    return parse_time(value).astimezone(CST).isoformat()


def events_frame(cache: PlanCache, view: PlanView) -> pd.DataFrame:
    """All stored events with the position of their grid in `view` (``gidx``, -1 outside).

    Memoised per plan version and events revision.
    """
    rev = cache.store.events_revision()

    def build() -> pd.DataFrame:
        rows = cache.store.events()
        df = pd.DataFrame(rows)
        if len(df) == 0:
            df = pd.DataFrame(columns=["fid", *EVENT_FIELDS])
        gidx = view.locate(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
        df["gidx"] = gidx
        df["plan_grid"] = np.where(gidx >= 0, view.codes[np.maximum(gidx, 0)], None)
        return df

    return cache.derived(("events", view.plan_id, view.version, rev), build)


def event_features(df: pd.DataFrame) -> list[str]:
    """GeoJSON features of an events frame (grid code as of the viewed plan)."""
    if len(df) == 0:
        return []
    props = pd.DataFrame(
        {
            "event_id": df["event_id"],
            "grid_code": df["plan_grid"],
            "reported_at": df["reported_at"],
            "category": df["category"],
            "source": df["source"],
            "status": df["status"],
            "deadline": df["deadline"],
            "closed_at": df["closed_at"],
            "worker": df["worker"] if "worker" in df else None,
        }
    )
    props = props.astype(object).where(props.notna(), None)
    geoms = shapely.points(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    return _feature_strings(props, geoms)


def grid_stats(
    cache: PlanCache, view: PlanView, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any]:
    """Per-grid event figures for `view`, memoised per plan version and events revision.

    Uses :func:`gridmap.events.event_stats` when the events module is installed, else
    simple counts.

    Returns
    -------
    dict
        ``grids`` (list of per-grid dicts: ``grid_code``, ``households``, ``events``,
        ``per_100_households``, ``open``, ``closed``, ``due``, ``closed_on_time``,
        ``on_time_rate``, ...), ``summary`` and ``method``.
    """
    rev = cache.store.events_revision()
    key = ("stats", view.plan_id, view.version, rev, _ts(start), _ts(end))
    return cache.derived(key, lambda: _compute_stats(cache, view, start, end))


def _ts(t: datetime | None) -> float | None:
    return None if t is None else parse_time(t).timestamp()


def _compute_stats(
    cache: PlanCache, view: PlanView, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    df = events_frame(cache, view)
    if start is not None:
        df = df[df["reported_ts"] >= _ts(start)]
    if end is not None:
        df = df[df["reported_ts"] < _ts(end)]
    try:
        from gridmap.events import event_stats
    except ImportError:  # the events module is optional for the web layer
        event_stats = None
    if event_stats is not None and len(df):
        try:
            return _stats_with_module(event_stats, view, df, start, end)
        except Exception:  # noqa: BLE001 - fall back to plain counts, never fail the request
            logging.getLogger("gridmap.api").exception("event_stats failed; using plain counts")
    return _simple_stats(view, df)


_STAT_COLUMNS = (
    "grid_code",
    "households",
    "events",
    "per_100_households",
    "open",
    "closed",
    "cancelled",
    "due",
    "closed_on_time",
    "on_time_rate",
    "overdue",
    "no_deadline",
    "unknown",
    "median_handling_hours",
    "mean_handling_hours",
)
#: Columns of a community that lead its row in ``/api/stats/communities``.
_COMMUNITY_COLUMNS = ("community_code", "street_code", "community_name", "grids")


def _stats_with_module(event_stats, view, df, start, end) -> dict[str, Any]:
    ev = gpd.GeoDataFrame(
        {
            "event_id": df["event_id"].to_numpy(),
            "category": df["category"].to_numpy(),
            "source": df["source"].to_numpy(),
            "status": df["status"].to_numpy(),
        },
        geometry=gpd.points_from_xy(df["lon"].to_numpy(float), df["lat"].to_numpy(float)),
        crs=4326,
    )
    for col in ("reported_at", "deadline", "closed_at"):
        ev[col] = pd.to_datetime(
            df[col].to_numpy(), utc=True, errors="coerce", format="ISO8601"
        ).tz_convert("Asia/Shanghai")
    st = event_stats(view.plan, ev, start=start, end=end)
    g = st.grids
    cols = [c for c in _STAT_COLUMNS if c in g.columns]
    cats = [c for c in g.columns if c.startswith("cat_")]
    out = g[cols + cats].copy()
    out["grid_code"] = out["grid_code"].astype(str)
    summary = {k: clean_json(v) for k, v in st.summary.items()}
    communities = []
    if st.communities is not None:
        c = st.communities
        keep = [k for k in (*_COMMUNITY_COLUMNS, *_STAT_COLUMNS[1:]) if k in c.columns]
        communities = clean_json(c[keep].astype({"community_code": str}).to_dict("records"))
    return {
        "method": "gridmap.events.event_stats",
        "summary": summary,
        "grids": clean_json(out.to_dict("records")),
        "communities": communities,
    }


def _simple_stats(view: PlanView, df: pd.DataFrame) -> dict[str, Any]:
    n = len(view.codes)
    gidx = df["gidx"].to_numpy(np.int64) if len(df) else np.zeros(0, np.int64)
    ok = gidx >= 0
    status = df["status"].to_numpy(object) if len(df) else np.zeros(0, object)
    counts = np.bincount(gidx[ok], minlength=n)
    open_ = np.bincount(gidx[ok & np.isin(status, sorted(OPEN_STATUSES))], minlength=n)
    closed = np.bincount(gidx[ok & (status == "closed")], minlength=n)
    hh = view.households
    with np.errstate(divide="ignore", invalid="ignore"):
        per100 = np.where(hh > 0, counts * 100.0 / hh, np.nan)
    due, on_time = _on_time(df, gidx, ok, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(due > 0, on_time / due, np.nan)
    rows = pd.DataFrame(
        {
            "grid_code": view.codes,
            "households": pd.Series(hh, dtype=float).round().astype("Int64"),
            "events": counts,
            "per_100_households": np.round(per100, 3),
            "open": open_,
            "closed": closed,
            "due": due,
            "closed_on_time": on_time,
            "on_time_rate": np.round(rate, 4),
        }
    )
    total_due = int(due.sum())
    return {
        "method": "counts",
        "summary": {
            "events": int(len(df)),
            "assigned": int(ok.sum()),
            "unassigned": int((~ok).sum()),
            "on_time_rate": float(on_time.sum() / total_due) if total_due else None,
        },
        "grids": clean_json(rows.to_dict("records")),
    }


def _on_time(df: pd.DataFrame, gidx: np.ndarray, ok: np.ndarray, n: int):
    if len(df) == 0:
        return np.zeros(n, np.int64), np.zeros(n, np.int64)
    deadline = pd.to_datetime(df["deadline"], utc=True, errors="coerce", format="ISO8601")
    closed_at = pd.to_datetime(df["closed_at"], utc=True, errors="coerce", format="ISO8601")
    has_deadline = deadline.notna().to_numpy()
    is_closed = (df["status"] == "closed").to_numpy() & closed_at.notna().to_numpy()
    now = pd.Timestamp.now(tz="UTC")
    due = has_deadline & (is_closed | (deadline <= now).to_numpy())
    on_time = due & is_closed & (closed_at <= deadline).fillna(False).to_numpy()
    return (
        np.bincount(gidx[ok & due], minlength=n),
        np.bincount(gidx[ok & on_time], minlength=n),
    )
