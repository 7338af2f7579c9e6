"""Emergency evacuation planning (避险转移): who moves, to which shelter, by which road.

:func:`plan_evacuation` takes a flood grading (:func:`gridmap.grade_flood`), a road
network and shelters, and answers the planners' questions grid by grid: which households
move (转移谁), to which shelter (转到哪), by which road, how long it takes, and which
households cannot be placed and why. :func:`evacuation_map` and
:func:`write_evacuation_outputs` publish the plan; :meth:`EvacuationPlan.tasks_by_grid`
gives each grid worker a task list, worst flood colour and lowest floor first.

Method
------
1. **Who moves.** By default every household on a flooded floor
   (:meth:`gridmap.FloodGrading.households_to_move`): in red and orange buildings these
   are all their households at risk, in yellow and blue buildings the ground-floor
   households under water. The demand unit is a unit group (单元) of a building: the
   households to move of one unit go together and are never split between shelters;
   ``persons = ceil(households * persons_per_household)`` per demand unit.
2. **Roads.** The network (:mod:`gridmap.roads`) is built in the buildings' metric CRS.
   Flood depth is sampled along every road edge every ``sample_spacing`` metres (10 m,
   ends included); an edge whose deepest point is at least ``flooded_road_depth``
   (0.3 m, knee-deep water in which walking becomes unsafe and cars stall) is
   impassable and left out of routing. By default the hazard of the grading (often
   the peak of a design flood) is used, which cuts off most households standing in
   deep water; pass ``depth=`` with the water expected at evacuation time to plan
   with that instead, or ``depth=[]`` for routes on dry roads.
3. **Access.** Buildings (centroid) and shelters (point, or a polygon's representative
   point) are attached to their nearest road edge at the foot of the perpendicular; the
   walk goes perpendicular to the edge, then along it to one of its ends (or straight
   along it to a shelter on the same edge). Of equally near edges a passable one is
   taken. A building whose access edge is flooded, or from which no passable path
   reaches an open shelter, is ``cut_off``. Shelters in water at least
   ``flooded_road_depth`` deep, or on a flooded access edge, are closed.
4. **Travel times.** Shortest paths from every shelter (multi-source Dijkstra over a
   CSR matrix, :func:`scipy.sparse.csgraph.dijkstra`), walking at ``speed_kmh``.
5. **Assignment** (see :func:`plan_evacuation`, Notes): minimise the total travel time
   in person-seconds subject to shelter capacities, each demand unit going whole to one
   shelter, unplaced persons penalised by flood colour so that red households are
   placed first when capacity is short. Demand that cannot be placed is reported with
   its reason (``cut_off`` or ``no_capacity``), never dropped.
6. **Clearance time** with a congestion allowance (``congestion``).
7. **Early departure.** Cut-off demand is also assigned, on the dry network and with
   the capacity left, to the shelter it would reach by leaving before the roads flood
   (``early_*`` columns of ``unplaced``): these households move first, or by boat.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.windows import Window
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from tqdm import tqdm

from . import _raster
from . import roads as _roads
from .crs import metric_crs, require_crs, to_metric, to_wgs84
from .errors import CRSError, InputError, SchemaError
from .io import write_table

log = logging.getLogger("gridmap")

__all__ = [
    "EXACT_MAX_PAIRS",
    "FLOODED_ROAD_DEPTH_M",
    "K_NEAREST",
    "PEDESTRIAN_FLOW",
    "PRIORITY_WEIGHT",
    "SHELTER_M2_PER_PERSON",
    "WALKING_SPEED_KMH",
    "EvacuationPlan",
    "evacuation_map",
    "plan_evacuation",
    "run_evacuation",
    "write_evacuation_outputs",
]

#: Default floor area per sheltered person (m²) used to estimate a shelter's capacity
#: when it is not given. GB 51143-2015 《防灾避难场所设计规范》 sets the minimum
#: effective area per person at 2.0 m² for short-term fixed shelters (短期固定避难场所;
#: 0.5 m² for emergency assembly places, more for medium and long stays), and
#: GB 21734-2008 asks for more than 1.5 m² per person; flood evacuees stay for days, so
#: the short-term value is used. Change it with ``shelter_m2_per_person``.
SHELTER_M2_PER_PERSON = 2.0

#: Default walking speed (km/h) of an evacuating crowd (about 1.1 m/s).
WALKING_SPEED_KMH = 4.0

#: Default water depth (m) from which a road is impassable on foot.
FLOODED_ROAD_DEPTH_M = 0.3

#: Default spacing (m) of the depth samples along road edges.
SAMPLE_SPACING_M = 10.0

#: Default number of nearest reachable shelters each demand unit may be sent to.
K_NEAREST = 8

#: Pedestrian flow capacity, persons per metre of walkable width per second (about
#: 75 persons/min/m, the maximum flow of Fruin's walkway levels of service and of the
#: Highway Capacity Manual).
PEDESTRIAN_FLOW = 1.25

#: Weight of an unplaced person by flood colour: when capacity is short, one red person
#: left without shelter costs as much as four orange persons (sixteen yellow ...).
PRIORITY_WEIGHT: dict[str, int] = {"red": 64, "orange": 16, "yellow": 4, "blue": 1, "none": 1}

#: Problems with at most this many (demand unit, shelter) pairs are also solved as one
#: exact mixed-integer programme (warm-started with the flow solution).
EXACT_MAX_PAIRS = 20_000

#: Rounds of re-assignment for demand left over when its nearest shelters are full.
MAX_ROUNDS = 3

REASON_ZH = {
    "cut_off": "道路受淹或不通，无法到达避难所（需舟艇救援或提前转移）",
    "no_capacity": "可到达的避难所容量已满",
}
_COLOUR_ZH = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝", "none": "无"}
_RANK = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
_NAME_COLUMNS = ("name", "名称", "shelter", "NAME")
_CAPACITY_COLUMNS = ("capacity", "容量", "容纳人数", "可容纳人数", "CAPACITY")
_LEVELS_COLUMNS = ("levels", "层数", "building:levels")
_AREA_COLUMNS = ("floor_area_m2", "area_m2", "建筑面积", "面积")
_TYPE_COLUMNS = ("type", "类型", "use")
_PRED_MAX = 40_000_000  # largest shelters x nodes predecessor matrix kept in memory
_INF = np.inf


def _progress(it: Iterable, **kw: Any) -> Iterable:
    return tqdm(it, disable=not sys.stderr.isatty(), leave=False, **kw)


# --------------------------------------------------------------------------- result


@dataclass
class EvacuationPlan:
    """Result of :func:`plan_evacuation`.

    Attributes
    ----------
    assignments : pandas.DataFrame
        One row per placed demand unit: ``building_id``, ``unit``, ``grid_code``,
        ``community_code``, ``colour``, ``colour_zh``, ``depth_m``, ``floor_from``,
        ``floor_to``, ``floors`` (e.g. ``"1-2"``), ``households``, ``persons``,
        ``shelter_id``, ``shelter``, ``route_length_m``, ``travel_time_min`` (walking,
        free flow), ``arrival_time_min`` (with the congestion allowance), ``status``
        (``placed``), ``lon``, ``lat`` (building centroid, WGS84).
    unplaced : pandas.DataFrame
        The same columns for demand units that could not be placed; ``status`` and
        ``reason`` are ``cut_off`` or ``no_capacity``, ``reason_zh`` explains.
    shelters : geopandas.GeoDataFrame
        ``shelter_id``, ``name``, ``type``, ``capacity``, ``capacity_source``
        (``given``/``area_estimate``), ``depth_m``, ``status`` (``open``, ``flooded``,
        ``cut_off``: its road is flooded), ``load`` (persons), ``households``,
        ``units``, ``pct_used``, ``geometry`` (metric CRS).
    routes : geopandas.GeoDataFrame
        One row per (building, shelter): ``building_id``, ``grid_code``, ``colour``,
        ``shelter_id``, ``shelter``, ``units``, ``households``, ``persons``,
        ``route_length_m``, ``travel_time_min``, ``arrival_time_min``, ``geometry``
        (LineString: building -> road -> shelter, metric CRS; publish with
        :meth:`routes_wgs84`).
    impassable : geopandas.GeoDataFrame
        Flooded road edges: ``edge``, ``u``, ``v``, ``highway``, ``name``,
        ``length_m``, ``depth_max_m``, ``geometry``.
    roads_used : geopandas.GeoDataFrame
        Road edges on evacuation routes (the evacuation roads): ``persons`` walking
        along them, ``shelter_id`` (the shelter most of them go to), ``queue_min``
        (time for them to pass at :data:`PEDESTRIAN_FLOW`), ``width_m``.
    buildings : geopandas.GeoDataFrame
        The buildings with households to move (metric CRS), with ``colour``,
        ``households_to_move``, ``persons_to_move``, ``status`` (``placed``,
        ``partly_placed``, ``cut_off``, ``no_capacity``).
    clearance_time_min : float
        Time (minutes) at which the last placed person reaches a shelter, everyone
        starting at once: the largest ``arrival_time_min``.
    crs : pyproj.CRS
        The metric CRS of the geometries.
    params : dict
        The settings used.
    solver : dict
        ``method``, ``objective`` and ``lower_bound`` (person-seconds plus penalties),
        ``gap``, ``rounds``, ``split_units`` (units the flow split, repaired),
        ``seconds``.
    notes : list of str
        What was assumed or dropped.
    """

    assignments: pd.DataFrame
    unplaced: pd.DataFrame
    shelters: gpd.GeoDataFrame
    routes: gpd.GeoDataFrame
    impassable: gpd.GeoDataFrame
    roads_used: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    clearance_time_min: float
    crs: Any
    params: dict[str, Any] = field(default_factory=dict)
    solver: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"EvacuationPlan({s['placed_persons']:,} of {s['persons']:,} persons placed in "
            f"{s['shelters_used']} shelters; unplaced: {s['cut_off_persons']:,} cut off, "
            f"{s['no_capacity_persons']:,} no capacity; clearance "
            f"{s['clearance_time_min']:.0f} min)"
        )

    def summary(self) -> dict[str, Any]:
        """Headline figures of the plan.

        Returns
        -------
        dict
            ``demand_units``, ``households``, ``persons``, ``placed_units``,
            ``placed_households``, ``placed_persons``, ``cut_off_units``,
            ``cut_off_households``, ``cut_off_persons``, ``no_capacity_units``,
            ``no_capacity_households``, ``no_capacity_persons``, ``shelters``,
            ``shelters_open``, ``shelters_used``, ``capacity_open``,
            ``mean_travel_time_min``, ``max_travel_time_min``, ``clearance_time_min``,
            ``impassable_edges``, ``impassable_km``, ``solver``.
        """
        a, u, sh = self.assignments, self.unplaced, self.shelters
        out: dict[str, Any] = {
            "demand_units": len(a) + len(u),
            "households": int(a["households"].sum() + u["households"].sum()),
            "persons": int(a["persons"].sum() + u["persons"].sum()),
            "placed_units": len(a),
            "placed_households": int(a["households"].sum()),
            "placed_persons": int(a["persons"].sum()),
        }
        for reason in ("cut_off", "no_capacity"):
            r = u[u["reason"] == reason]
            out[f"{reason}_units"] = len(r)
            out[f"{reason}_households"] = int(r["households"].sum())
            out[f"{reason}_persons"] = int(r["persons"].sum())
        is_open = sh["status"] == "open"
        out.update(
            shelters=len(sh),
            shelters_open=int(is_open.sum()),
            shelters_used=int((sh["load"] > 0).sum()),
            capacity_open=int(sh.loc[is_open, "capacity"].sum()),
            mean_travel_time_min=(
                round(float(np.average(a["travel_time_min"], weights=a["persons"])), 1)
                if len(a)
                else 0.0
            ),
            max_travel_time_min=round(float(a["travel_time_min"].max()), 1) if len(a) else 0.0,
            clearance_time_min=round(float(self.clearance_time_min), 1),
            impassable_edges=len(self.impassable),
            impassable_km=round(float(self.impassable["length_m"].sum()) / 1000, 2),
            solver=self.solver.get("method"),
        )
        return out

    def tasks_by_grid(self) -> pd.DataFrame:
        """Task lists for the grid workers, one block of rows per grid.

        Every demand unit appears once, placed or not. Within a grid the rows are in
        priority order: worst flood colour first (red, orange, yellow, blue), then the
        lowest floor, the deepest water, building and unit; ``priority`` numbers them
        1, 2, ... per grid. Demand units without a grid come last (``grid_code`` empty).

        Returns
        -------
        pandas.DataFrame
            ``grid_code``, ``priority``, ``building_id``, ``unit``, ``colour``,
            ``colour_zh``, ``floors``, ``households``, ``persons``, ``shelter_id``,
            ``shelter``, ``route_length_m``, ``travel_time_min``,
            ``arrival_time_min``, ``status``, ``reason_zh``, ``lon``, ``lat``.
        """
        cols = [
            "grid_code",
            "building_id",
            "unit",
            "colour",
            "colour_zh",
            "floors",
            "floor_from",
            "depth_m",
            "households",
            "persons",
            "shelter_id",
            "shelter",
            "route_length_m",
            "travel_time_min",
            "arrival_time_min",
            "status",
            "reason_zh",
            "lon",
            "lat",
        ]
        parts = [df.reindex(columns=cols) for df in (self.assignments, self.unplaced) if len(df)]
        if not parts:
            return pd.DataFrame(columns=["priority", *cols]).drop(columns=["floor_from", "depth_m"])
        t = pd.concat(parts, ignore_index=True)
        t["_rank"] = t["colour"].map(_RANK).fillna(0)
        t = t.sort_values(
            ["grid_code", "_rank", "floor_from", "depth_m", "building_id", "unit"],
            ascending=[True, False, True, False, True, True],
            na_position="last",
            kind="stable",
        ).reset_index(drop=True)
        key = t["grid_code"].fillna("")
        t.insert(1, "priority", t.groupby(key, sort=False).cumcount() + 1)
        return t.drop(columns=["_rank", "floor_from", "depth_m"])

    def routes_wgs84(self) -> gpd.GeoDataFrame:
        """Routes in WGS84 (EPSG:4326) for publishing."""
        return to_wgs84(self.routes, "routes")

    def shelter_table(self) -> pd.DataFrame:
        """Shelters as a table (no geometry) with ``lon``/``lat``, fullest first."""
        sh = self.shelters
        table = pd.DataFrame(sh.drop(columns="geometry"))
        if len(sh):
            pts = to_wgs84(gpd.GeoDataFrame(geometry=sh.geometry.representative_point()))
            table["lon"] = np.round(pts.geometry.x.to_numpy(), 6)
            table["lat"] = np.round(pts.geometry.y.to_numpy(), 6)
        return table.sort_values("pct_used", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- demand


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _levels_int(b: pd.DataFrame) -> np.ndarray:
    if "levels" not in b.columns:
        return np.ones(len(b), dtype=np.int64)
    lv = pd.to_numeric(b["levels"], errors="coerce").to_numpy(dtype=float, na_value=1.0)
    return np.maximum(1, np.round(np.nan_to_num(lv, nan=1.0))).astype(np.int64)


def _rows_for_counts(graded: Any, counts: Any) -> pd.DataFrame:
    """households_to_move()-style rows for `counts` households per building.

    Households are taken from the lowest floor up (all units of a floor before the next
    floor), as households are spread over units and floors by the flood grading.
    """
    b = graded.buildings
    if isinstance(counts, pd.Series):
        if not counts.index.equals(b.index):
            counts = counts.reindex(b.index)
        counts = counts.to_numpy()
    h = pd.to_numeric(pd.Series(np.asarray(counts).ravel()), errors="coerce")
    if len(h) != len(b):
        raise InputError(f"who() returned {len(h)} values for {len(b)} buildings", source="who")
    total = b["households"].to_numpy(dtype=np.int64)
    h = np.clip(np.round(h.fillna(0).to_numpy(dtype=float)), 0, total).astype(np.int64)
    moved = h > 0
    b2 = b.copy()
    b2["flooded_floors"] = np.where(moved, _levels_int(b), 0)
    b2["households_at_risk"] = np.where(moved, total, 0)
    rows = replace(graded, buildings=b2).households_to_move()
    if rows.empty:
        return rows
    rows = rows.sort_values(["building_id", "floor", "unit"], kind="stable")
    want = pd.Series(h, index=b["building_id"].astype(str).to_numpy())
    hh = rows["households"].to_numpy(dtype=np.int64)
    before = rows.groupby("building_id", sort=False)["households"].cumsum().to_numpy() - hh
    take = np.clip(rows["building_id"].map(want).to_numpy(dtype=np.int64) - before, 0, hh)
    rows = rows.assign(households=take)
    return rows[take > 0]


def _demand(graded: Any, who: Any, pph: float) -> pd.DataFrame:
    """Demand units: one row per (building, unit) with households to move."""
    from .flood import COLOURS

    b = graded.buildings
    if who is None:
        rows = graded.households_to_move()
    elif callable(who):
        rows = _rows_for_counts(graded, who(b))
    else:
        colours = {who} if isinstance(who, str) else set(who)
        unknown = colours - set(COLOURS)
        if unknown:
            raise InputError(
                f"unknown colour(s) {sorted(unknown)}; use {', '.join(COLOURS)}", source="who"
            )
        rows = graded.households_to_move()
        rows = rows[rows["colour"].isin(colours)]
    if rows is None or len(rows) == 0:
        return pd.DataFrame(
            {
                "building_id": pd.Series([], dtype=object),
                "unit": pd.Series([], dtype=np.int64),
                "grid_code": pd.Series([], dtype=object),
                "community_code": pd.Series([], dtype=object),
                "colour": pd.Series([], dtype=object),
                "depth_m": pd.Series([], dtype=float),
                "floor_from": pd.Series([], dtype=np.int64),
                "floor_to": pd.Series([], dtype=np.int64),
                "households": pd.Series([], dtype=np.int64),
                "persons": pd.Series([], dtype=np.int64),
            }
        )
    rows = rows.astype({"building_id": str})
    g = rows.groupby(["building_id", "unit"], sort=False)
    d = g.agg(
        grid_code=("grid_code", "first"),
        community_code=("community_code", "first"),
        colour=("colour", "first"),
        depth_m=("depth_m", "first"),
        floor_from=("floor", "min"),
        floor_to=("floor", "max"),
        households=("households", "sum"),
    ).reset_index()
    d["unit"] = d["unit"].astype(np.int64)
    d["households"] = d["households"].astype(np.int64)
    d["persons"] = np.ceil(d["households"].to_numpy() * pph - 1e-9).astype(np.int64)
    d = d[d["households"] > 0].reset_index(drop=True)
    for c in ("grid_code", "community_code"):
        d[c] = d[c].astype(object).where(d[c].notna(), None)
    return d


# --------------------------------------------------------------------------- shelters


def _pick(gdf: pd.DataFrame, names: Iterable[str]) -> str | None:
    return next((c for c in names if c in gdf.columns), None)


def _read_shelters(shelters: Any) -> gpd.GeoDataFrame:
    if isinstance(shelters, gpd.GeoDataFrame):
        require_crs(shelters, "shelters")
        return shelters
    if not isinstance(shelters, str | os.PathLike):
        raise InputError(
            f"shelters must be a GeoDataFrame or a path, got {type(shelters).__name__}",
            source="shelters",
        )
    import pyogrio

    from .load import read_layer

    path = Path(shelters)
    if not path.exists():
        raise InputError("file not found", source=str(path), where="shelters")
    layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    layer = None
    if len(layers) > 1:
        if "shelters" not in layers:
            raise InputError(
                f"the file has several layers ({', '.join(layers)}) and none is named "
                "'shelters'; pass the shelters as a GeoDataFrame",
                source=str(path),
            )
        layer = "shelters"
    return read_layer(path, layer=layer, geom_types=("point", "polygon"))


def _shelters(shelters: Any, crs: CRS, m2pp: float) -> gpd.GeoDataFrame:
    """Shelters in the metric CRS with ``shelter_id``, ``name``, ``capacity``, ..."""
    raw = _read_shelters(shelters)
    if len(raw) == 0:
        raise InputError("no shelters given", source="shelters")
    gdf = to_metric(raw, crs, "shelters").reset_index(drop=True)
    geoms = gdf.geometry.to_numpy()
    kind = shapely.get_type_id(geoms)
    if (kind < 0).any() or not np.isin(kind, [0, 3, 4, 6]).all():
        bad = int(np.flatnonzero((kind < 0) | ~np.isin(kind, [0, 3, 4, 6]))[0])
        raise SchemaError(
            "shelters must be points or polygons", source="shelters", where=f"row {bad}"
        )
    n = len(gdf)
    ids = [f"S{i + 1:03d}" for i in range(n)]
    ncol = _pick(gdf, _NAME_COLUMNS)
    names = (
        gdf[ncol].astype(object).where(gdf[ncol].notna(), None).to_numpy(dtype=object)
        if ncol
        else np.array(ids, dtype=object)
    )
    names = np.where(pd.isna(names), np.array(ids, dtype=object), names)
    tcol = _pick(gdf, _TYPE_COLUMNS)
    types = gdf[tcol].astype(object).to_numpy() if tcol else np.full(n, None, dtype=object)
    ccol = _pick(gdf, _CAPACITY_COLUMNS)
    given = (
        pd.to_numeric(gdf[ccol], errors="coerce").to_numpy(dtype=float)
        if ccol
        else np.full(n, np.nan)
    )
    if (given < 0).any():
        bad = int(np.flatnonzero(given < 0)[0])
        raise SchemaError(
            f"negative capacity ({given[bad]:g})", source="shelters", where=f"{ccol}, row {bad}"
        )
    lcol = _pick(gdf, _LEVELS_COLUMNS)
    levels = (
        np.nan_to_num(pd.to_numeric(gdf[lcol], errors="coerce").to_numpy(dtype=float), nan=1.0)
        if lcol
        else np.ones(n)
    )
    acol = _pick(gdf, _AREA_COLUMNS)
    area = (
        pd.to_numeric(gdf[acol], errors="coerce").to_numpy(dtype=float)
        if acol
        else np.full(n, np.nan)
    )
    polygon = np.isin(kind, [3, 6])
    area = np.where(np.isnan(area) & polygon, shapely.area(geoms) * np.maximum(levels, 1), area)
    estimate = np.floor(area / m2pp)
    missing = np.isnan(given)
    if (missing & np.isnan(estimate)).any():
        bad = int(np.flatnonzero(missing & np.isnan(estimate))[0])
        raise SchemaError(
            "capacity is missing and cannot be estimated (a point shelter needs a "
            f"'capacity' or '{_AREA_COLUMNS[0]}' value)",
            source="shelters",
            where=f"row {bad} ({names[bad]})",
        )
    capacity = np.where(missing, estimate, np.floor(given)).astype(np.int64)
    out = gpd.GeoDataFrame(
        {
            "shelter_id": ids,
            "name": names,
            "type": types,
            "capacity": capacity,
            "capacity_source": np.where(missing, "area_estimate", "given"),
        },
        geometry=geoms,
        crs=gdf.crs,
    )
    return out


# --------------------------------------------------------------------------- hazard


def _hazard_sources(graded: Any, depth: Any) -> list[dict[str, Any]]:
    if depth is None:
        return list(getattr(graded, "sources", []) or [])
    return [
        {"kind": "depth", "path": Path(p), "name": f"depth:{Path(p).name}"} for p in _as_list(depth)
    ]


def _sample_raster(path: Path, x: np.ndarray, y: np.ndarray, crs: CRS) -> np.ndarray:
    """Raster values at points (0 outside the raster, for no data, NaN and < 0)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=str(path), where="depth")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read depth raster: {exc}", source=str(path)) from exc
    out = np.zeros(len(x), dtype=float)
    with src, _raster.raster_env():
        if src.crs is None:
            raise CRSError("raster has no coordinate reference system", source=str(path))
        rcrs = CRS.from_user_input(src.crs.to_wkt())
        if rcrs != crs and len(x):
            x, y = Transformer.from_crs(crs, rcrs, always_xy=True).transform(x, y)
            x, y = np.asarray(x), np.asarray(y)
        inv = ~src.transform
        col = np.floor(inv.a * x + inv.b * y + inv.c)
        row = np.floor(inv.d * x + inv.e * y + inv.f)
        inside = (row >= 0) & (row < src.height) & (col >= 0) & (col < src.width)
        idx = np.flatnonzero(inside)
        if len(idx) == 0:
            return out
        r, c = row[idx].astype(np.int64), col[idx].astype(np.int64)
        tile_size = _raster.TILE_SIZE
        n_tc = src.width // tile_size + 1
        tile = (r // tile_size) * n_tc + c // tile_size
        order = np.argsort(tile, kind="stable")
        tile, idx, r, c = tile[order], idx[order], r[order], c[order]
        starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
        ends = np.r_[starts[1:], len(tile)]
        for s, e in _progress(list(zip(starts, ends, strict=True)), desc=f"depth {path.name}"):
            rr, cc = r[s:e], c[s:e]
            r0, c0 = int(rr.min()), int(cc.min())
            window = Window(c0, r0, int(cc.max()) - c0 + 1, int(rr.max()) - r0 + 1)
            arr = _raster.read_band(src, window)
            out[idx[s:e]] = arr[rr - r0, cc - c0]
    out = np.nan_to_num(out, nan=0.0)
    return np.maximum(out, 0.0)


def _point_depth(
    x: np.ndarray, y: np.ndarray, crs: CRS, sources: list[dict[str, Any]]
) -> np.ndarray:
    """Worst flood depth over the hazard sources at points (metric CRS)."""
    depth = np.zeros(len(x), dtype=float)
    if len(x) == 0:
        return depth
    for s in sources:
        kind = s.get("kind")
        if kind == "depth":
            d = _sample_raster(s["path"], x, y, crs)
        elif kind == "extent":
            d = _extent_depth(s, x, y, crs)
        elif kind == "dem" and s.get("name") not in (None, "dem"):
            d = _dem_depth(s, x, y, crs)
        else:
            continue
        np.maximum(depth, d, out=depth)
    return depth


def _extent_depth(source: dict[str, Any], x: np.ndarray, y: np.ndarray, crs: CRS) -> np.ndarray:
    """Depth of flood-extent polygons with a depth column at points (0 elsewhere)."""
    layer, col = source.get("layer"), source.get("depth_column")
    out = np.zeros(len(x))
    if layer is None or col is None:
        return out  # an extent without depth says nothing about the roads
    gdf = layer.to_crs(crs) if CRS.from_user_input(layer.crs) != crs else layer
    depth = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=float)
    poly = shapely.make_valid(gdf.geometry.to_numpy())
    p_idx, e_idx = shapely.STRtree(poly).query(shapely.points(x, y), predicate="intersects")
    d = np.nan_to_num(depth[e_idx], nan=0.0)
    np.maximum.at(out, p_idx, d)
    return out


def _dem_depth(source: dict[str, Any], x: np.ndarray, y: np.ndarray, crs: CRS) -> np.ndarray:
    """Connected-flood depth of a DEM source (as graded) at points."""
    from . import flood

    src = rasterio.open(source["dem"])
    with src:
        model = flood._dem_surface(
            src, source.get("water_level"), source.get("rivers"), max_cells=flood.DEM_MAX_CELLS
        )
        rcrs = CRS.from_user_input(src.crs.to_wkt())
    if rcrs != crs:
        x, y = Transformer.from_crs(crs, rcrs, always_xy=True).transform(x, y)
        x, y = np.asarray(x), np.asarray(y)
    d = model["surface"] - model["ground"]
    inv = ~model["transform"]
    col = np.floor(inv.a * x + inv.b * y + inv.c).astype(np.int64)
    row = np.floor(inv.d * x + inv.e * y + inv.f).astype(np.int64)
    ok = (row >= 0) & (row < d.shape[0]) & (col >= 0) & (col < d.shape[1])
    out = np.zeros(len(x))
    out[ok] = np.nan_to_num(d[row[ok], col[ok]], nan=0.0)
    return np.maximum(out, 0.0)


def _edge_depth(net: _roads._Network, sources: list[dict[str, Any]], spacing: float) -> np.ndarray:
    """Deepest water along every edge, sampled every `spacing` m (ends included)."""
    if not sources or net.n_edges == 0:
        return np.zeros(net.n_edges)
    glen = shapely.length(net.geometry)
    n_seg = np.maximum(1, np.ceil(glen / spacing)).astype(np.int64)
    edge, j = _raster.expand_runs(np.zeros(net.n_edges, np.int64), n_seg + 1)
    frac = j / n_seg[edge]
    pts = shapely.line_interpolate_point(net.geometry[edge], frac, normalized=True)
    xy = shapely.get_coordinates(pts)
    d = _point_depth(xy[:, 0], xy[:, 1], net.crs, sources)
    starts = np.cumsum(n_seg + 1) - (n_seg + 1)
    return np.maximum.reduceat(d, starts)


# --------------------------------------------------------------------------- routing


@dataclass
class _Access:
    """Where points join the road network: edge, fraction along it, offset distance."""

    edge: np.ndarray
    t: np.ndarray
    offset: np.ndarray
    snap: np.ndarray  # foot points (shapely)


def _access(
    points: np.ndarray, net: _roads._Network, tree: shapely.STRtree, passable: np.ndarray
) -> _Access:
    """Nearest edge of each point (of equally near edges, a passable one)."""
    if len(points) == 0:
        e = np.empty(0, np.int64)
        return _Access(e, np.empty(0), np.empty(0), np.empty(0, dtype=object))
    idx, dist = tree.query_nearest(points, all_matches=True, return_distance=True)
    order = np.lexsort((idx[1], passable[idx[1]] == 0, idx[0]))
    p, e, d = idx[0][order], idx[1][order], dist[order]
    first = np.r_[True, p[1:] != p[:-1]]
    edge = np.empty(len(points), dtype=np.int64)
    off = np.empty(len(points))
    edge[p[first]], off[p[first]] = e[first], d[first]
    lines = net.geometry[edge]
    t = shapely.line_locate_point(lines, points, normalized=True)
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
    snap = shapely.line_interpolate_point(lines, t, normalized=True)
    return _Access(edge, t, off, snap)


@dataclass
class _Router:
    """Shortest paths from the open shelters over the passable roads."""

    net: _roads._Network
    passable: np.ndarray
    n: int  # real nodes; shelter k is virtual node n + k
    matrix: sparse.csr_matrix
    keys: np.ndarray  # sorted unordered node-pair keys of the routing edges
    key_edge: np.ndarray  # edge id of each key (shortest passable edge)
    shelter_edge: np.ndarray
    shelter_t: np.ndarray
    shelter_off: np.ndarray
    dist: np.ndarray  # (shelters, needed nodes) float32 metres
    needed: np.ndarray  # sorted node ids with a dist column
    pred: np.ndarray | None  # (shelters, n + shelters) int32, when small enough
    open: np.ndarray  # shelters that take evacuees (reached from their access edge)


def _router(
    net: _roads._Network,
    passable: np.ndarray,
    acc: _Access,
    needed_nodes: np.ndarray,
    is_open: np.ndarray,
) -> _Router:
    """Dijkstra from every open shelter (a virtual node on its access edge)."""
    n = net.n_nodes
    m = len(acc.edge)
    e = np.flatnonzero(passable)
    a, b = np.minimum(net.u[e], net.v[e]), np.maximum(net.u[e], net.v[e])
    key = a.astype(np.int64) * n + b
    order = np.lexsort((net.length[e], key))
    key, e = key[order], e[order]
    first = np.r_[True, key[1:] != key[:-1]][: len(key)]
    key, e = key[first], e[first]
    rows = [np.minimum(net.u[e], net.v[e])]
    cols = [np.maximum(net.u[e], net.v[e])]
    data = [net.length[e]]
    ok = passable[acc.edge]  # a shelter on a flooded edge is not connected
    k = np.flatnonzero(ok)
    se = acc.edge[k]
    length = net.length[se]
    rows += [n + k, n + k]
    cols += [net.u[se], net.v[se]]
    data += [acc.t[k] * length + acc.offset[k], (1 - acc.t[k]) * length + acc.offset[k]]
    size = n + m
    mat = sparse.csr_matrix(
        (np.maximum(np.concatenate(data), 1e-6), (np.concatenate(rows), np.concatenate(cols))),
        shape=(size, size),
    )
    needed = np.unique(needed_nodes)
    dist = np.full((m, len(needed)), _INF, dtype=np.float32)
    keep_pred = m * size <= _PRED_MAX
    pred = np.full((m, size), -9999, dtype=np.int32) if keep_pred else None
    chunk = 32
    sources = np.flatnonzero(ok & is_open)
    for i in _progress(range(0, len(sources), chunk), desc="shortest paths"):
        s = sources[i : i + chunk]
        if keep_pred:
            d, p = dijkstra(mat, directed=False, indices=n + s, return_predecessors=True)
            pred[s] = p
        else:
            d = dijkstra(mat, directed=False, indices=n + s)
        dist[s] = d[:, needed]
    return _Router(
        net,
        passable,
        n,
        mat,
        key,
        e,
        acc.edge,
        acc.t,
        acc.offset,
        dist,
        needed,
        pred,
        np.asarray(is_open, dtype=bool),
    )


def _costs(
    rt: _Router, b_acc: _Access, bpos: np.ndarray, spos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Network distance (m) from buildings `bpos` to shelters `spos` (paired arrays).

    Returns (distance, end) with end 0 = via the edge's ``u``, 1 = via ``v``, 2 = along
    the shared edge; distance is inf when there is no passable path.
    """
    net = rt.net
    e = b_acc.edge[bpos]
    t, off = b_acc.t[bpos], b_acc.offset[bpos]
    length = net.length[e]
    ia = np.searchsorted(rt.needed, net.u[e])
    ib = np.searchsorted(rt.needed, net.v[e])
    da = rt.dist[spos, ia].astype(float) + t * length
    db = rt.dist[spos, ib].astype(float) + (1 - t) * length
    end = (db < da).astype(np.int8)
    best = np.minimum(da, db)
    same = (rt.shelter_edge[spos] == e) & rt.passable[e]
    same &= rt.open[spos]
    if same.any():
        direct = np.abs(t - rt.shelter_t[spos]) * length + rt.shelter_off[spos]
        win = same & (direct <= best)
        best = np.where(win, direct, best)
        end[win] = 2
    best = best + off
    best[~rt.passable[e]] = _INF
    return best, end


def _candidates(
    rt: _Router,
    b_acc: _Access,
    buildings: np.ndarray,
    allowed: np.ndarray,
    k: int,
    chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest allowed shelters of each building: (shelter, metres), -1/inf padded."""
    sh = np.flatnonzero(allowed)
    nb = len(buildings)
    kk = min(k, len(sh))
    cand = np.full((nb, max(kk, 1)), -1, dtype=np.int64)
    cost = np.full((nb, max(kk, 1)), _INF)
    if kk == 0 or nb == 0:
        return cand, cost
    for i in range(0, nb, chunk):
        bpos = buildings[i : i + chunk]
        bb = np.repeat(bpos, len(sh))
        ss = np.tile(sh, len(bpos))
        d, _ = _costs(rt, b_acc, bb, ss)
        d = d.reshape(len(bpos), len(sh))
        part = (
            np.argpartition(d, kk - 1, axis=1)[:, :kk]
            if kk < len(sh)
            else np.tile(np.arange(len(sh)), (len(bpos), 1))
        )
        dd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(dd, axis=1, kind="stable")
        part = np.take_along_axis(part, order, axis=1)
        dd = np.take_along_axis(dd, order, axis=1)
        c = sh[part]
        c[~np.isfinite(dd)] = -1
        cand[i : i + len(bpos)] = c
        cost[i : i + len(bpos)] = dd
    return cand, cost


# --------------------------------------------------------------------------- assignment


def _objective(persons: np.ndarray, pen: np.ndarray, cost: np.ndarray, choice: np.ndarray) -> float:
    """Total cost of a choice (candidate column of each unit, -1 = unplaced)."""
    placed = choice >= 0
    c = cost[np.arange(len(choice)), np.maximum(choice, 0)]
    return float((persons * np.where(placed, c, pen)).sum())


def _highs() -> Any:
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    return h


def _pass_model(
    h: Any,
    n_rows: int,
    rows: np.ndarray,
    vals: np.ndarray,
    counts: np.ndarray,
    cost: np.ndarray,
    upper: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    n_integer: int = 0,
) -> None:
    """Pass a column-wise model to HiGHS (columns ``0..n_integer-1`` integer)."""
    import highspy

    lp = highspy.HighsLp()
    n_cols = len(cost)
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.asarray(upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lower, dtype=float)
    lp.row_upper_ = np.asarray(row_upper, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.r_[0, np.cumsum(counts)].astype(np.int32)
    lp.a_matrix_.index_ = np.asarray(rows, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(vals, dtype=float)
    if n_integer:
        kinds = [highspy.HighsVarType.kInteger] * n_integer
        lp.integrality_ = kinds + [highspy.HighsVarType.kContinuous] * (n_cols - n_integer)
    h.passModel(lp)


def _assignment_columns(
    n: int, cand: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sparse columns of x[i, j] (rows i and n + shelter) and y[i] (row i)."""
    ui, ji = np.nonzero(cand >= 0)
    used, srow = np.unique(cand[ui, ji], return_inverse=True)
    m = len(ui)
    rows = np.empty(2 * m + n, dtype=np.int64)
    rows[0 : 2 * m : 2], rows[1 : 2 * m : 2], rows[2 * m :] = ui, n + srow, np.arange(n)
    vals = np.ones(2 * m + n)
    vals[1 : 2 * m : 2] = weight[ui]
    counts = np.r_[np.full(m, 2), np.ones(n, dtype=np.int64)]
    return ui, ji, used, rows, vals, counts


def _transport(
    supply: np.ndarray, pen: np.ndarray, cand: np.ndarray, cost: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, float]:
    """Transportation LP: persons of each building flow to candidate shelters.

    ``min sum cost*f + pen*y`` s.t. ``sum_j f[g, j] + y[g] = supply[g]``,
    ``sum_g f[g, s] <= cap[s]``. Supplies and capacities are integers and the
    constraint matrix is totally unimodular, so the simplex vertex is integral.
    Returns the flows (G x k) and the optimum (a lower bound of the assignment).
    """
    import highspy

    g_n = len(supply)
    ui, ji, used, rows, vals, counts = _assignment_columns(g_n, cand, np.ones(g_n))
    vals[:] = 1.0
    h = _highs()
    _pass_model(
        h,
        g_n + len(used),
        rows,
        vals,
        counts,
        np.r_[cost[ui, ji], pen],
        np.r_[supply[ui], supply],
        np.r_[supply, np.full(len(used), -highspy.kHighsInf)],
        np.r_[supply, cap[used]],
    )
    h.setOptionValue("solver", "simplex")
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"HiGHS LP failed: {h.modelStatusToString(h.getModelStatus())}")
    x = np.asarray(h.getSolution().col_value)
    flows = np.zeros(cand.shape, dtype=np.int64)
    flows[ui, ji] = np.round(x[: len(ui)]).astype(np.int64)
    return flows, float(h.getInfo().objective_function_value)


def _mip(
    persons: np.ndarray,
    pen: np.ndarray,
    cand: np.ndarray,
    cost: np.ndarray,
    cap: np.ndarray,
    start: np.ndarray | None,
    time_limit: float,
) -> np.ndarray | None:
    """Exact assignment MIP: binary x[u, j] (unit u to candidate j), y[u] unplaced.

    ``min sum persons*cost*x + persons*pen*y`` s.t. ``sum_j x[u, j] + y[u] = 1`` and
    ``sum_u persons[u] x[u, j] <= cap[s]`` for each shelter. Returns the chosen
    candidate column per unit (-1 = unplaced), or None when HiGHS found no solution.
    """
    import highspy

    u_n = len(persons)
    cand = np.where(persons[:, None] <= cap[np.maximum(cand, 0)], cand, -1)
    ui, ji, used, rows, vals, counts = _assignment_columns(u_n, cand, persons)
    m = len(ui)
    h = _highs()
    _pass_model(
        h,
        u_n + len(used),
        rows,
        vals,
        counts,
        np.r_[persons[ui] * cost[ui, ji], persons * pen],
        np.ones(m + u_n),
        np.r_[np.ones(u_n), np.full(len(used), -highspy.kHighsInf)],
        np.r_[np.ones(u_n), cap[used]],
        n_integer=m,
    )
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 1e-6)
    if start is not None:
        col = np.zeros(m + u_n)
        pos = pd.Series(np.arange(m), index=ui * cand.shape[1] + ji)
        key = np.arange(u_n) * cand.shape[1] + np.maximum(start, 0)
        hit = pos.reindex(key).to_numpy()
        ok = (start >= 0) & ~np.isnan(hit)
        col[hit[ok].astype(np.int64)] = 1.0
        col[m + np.flatnonzero(~ok)] = 1.0
        sol = highspy.HighsSolution()
        sol.col_value = col.tolist()
        h.setSolution(sol)
    h.run()
    sol = h.getSolution()
    if not sol.value_valid:
        return None
    x = np.asarray(sol.col_value)[:m] > 0.5
    choice = np.full(u_n, -1, dtype=np.int64)
    choice[ui[x]] = ji[x]
    return choice


def _pack(
    persons: np.ndarray,
    group: np.ndarray,
    flows: np.ndarray,
    cand: np.ndarray,
    cost: np.ndarray,
    residual: np.ndarray,
) -> np.ndarray:
    """Greedy whole-unit packing of split buildings along their flows (a warm start).

    Largest units first; each goes to the candidate with the most flow quota left that
    can still take it, else to the cheapest candidate with room, else stays unplaced.
    """
    quota = flows.copy()
    res = residual.copy()
    choice = np.full(len(persons), -1, dtype=np.int64)
    for u in np.argsort(-persons, kind="stable"):
        g, p = group[u], persons[u]
        c = cand[g]
        fits = (c >= 0) & (res[np.maximum(c, 0)] >= p)
        if not fits.any():
            continue
        q = np.where(fits & (quota[g] > 0), quota[g], -1)
        j = int(q.argmax()) if q.max() > 0 else int(np.where(fits, cost[g], np.inf).argmin())
        choice[u] = j
        res[c[j]] -= p
        quota[g, j] -= p
    return choice


def _assign(
    persons: np.ndarray,
    weight: np.ndarray,
    group: np.ndarray,
    cand: np.ndarray,
    seconds: np.ndarray,
    cap: np.ndarray,
    *,
    exact_max_pairs: int,
    time_limit: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Assign whole demand units to candidate shelters (see plan_evacuation, Notes).

    `group` gives each unit's building (row of `cand`/`seconds`): units of a building
    share its candidates and walking times. Returns the chosen candidate column of each
    unit (-1 = unplaced) and solver info. Costs are tenths of a second per person.
    """
    t0 = time.perf_counter()
    cost = np.where(cand >= 0, np.round(np.nan_to_num(seconds, posinf=0.0) * 10), 0.0)
    big = float(cost.max(initial=0.0)) + 1.0
    g_weight = np.zeros(len(cand), dtype=np.int64)
    np.maximum.at(g_weight, group, weight)
    pen = g_weight * big
    supply = np.bincount(group, weights=persons, minlength=len(cand)).astype(np.int64)
    flows, bound = _transport(supply, pen, cand, cost, cap)
    method = "transportation LP (HiGHS simplex)"
    whole = (flows == supply[:, None]) & (supply[:, None] > 0)
    g_choice = np.where(whole.any(axis=1), whole.argmax(axis=1), -1)
    g_split = (g_choice < 0) & (flows.sum(axis=1) > 0)
    choice = g_choice[group]
    u_cost, u_pen, u_cand = cost[group], pen[group], cand[group]
    split = np.flatnonzero(g_split[group])
    if len(split):
        done = np.flatnonzero(choice >= 0)
        load = np.bincount(u_cand[done, choice[done]], weights=persons[done], minlength=len(cap))
        residual = np.maximum(cap - load, 0).astype(np.int64)
        start = _pack(persons[split], group[split], flows, cand, cost, residual)
        got = _mip(
            persons[split],
            u_pen[split],
            u_cand[split],
            u_cost[split],
            residual,
            start,
            min(time_limit, 10.0),
        )
        choice[split] = got if got is not None else start
        method += " + MIP repair of split buildings (HiGHS)"
    obj = _objective(persons, u_pen, u_cost, choice)
    pairs = int((u_cand >= 0).sum())
    if 0 < pairs <= exact_max_pairs and obj > bound + 0.5:
        got = _mip(persons, u_pen, u_cand, u_cost, cap, choice, time_limit)
        if got is not None and _objective(persons, u_pen, u_cost, got) < obj:
            choice = got
            obj = _objective(persons, u_pen, u_cost, choice)
        method += " + exact MIP (HiGHS)"
    info = {
        "method": method,
        "objective": obj / 10,
        "lower_bound": bound / 10,
        "gap": (obj - bound) / max(abs(obj), 1.0),
        "units": len(persons),
        "buildings": len(cand),
        "pairs": pairs,
        "split_units": len(split),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return choice, info


# --------------------------------------------------------------------------- routes


def _edge_lookup(rt: _Router, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    key = np.minimum(a, b).astype(np.int64) * rt.n + np.maximum(a, b)
    pos = np.searchsorted(rt.keys, key)
    return rt.key_edge[pos]


def _paths(
    rt: _Router, start: np.ndarray, shelter: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node paths start -> shelter: (path index, node, edge into the next node).

    Returns the steps sorted by path: for every path its nodes in walking order from
    `start` to the node where the shelter's access edge begins; ``edge`` is the edge
    from each node to the next (-1 on the last node).
    """
    n = rt.n
    p_all = np.arange(len(start))
    steps_p, steps_node = [p_all], [start.astype(np.int64)]
    order_sh = np.argsort(shelter, kind="stable")
    uniq = np.unique(shelter)
    for i in range(0, len(uniq), 32):
        chunk = uniq[i : i + 32]
        if rt.pred is not None:
            pred = rt.pred[chunk]
        else:
            _, pred = dijkstra(
                rt.matrix, directed=False, indices=n + chunk, return_predecessors=True
            )
        row_of = np.full(int(uniq.max()) + 1, -1, dtype=np.int64)
        row_of[chunk] = np.arange(len(chunk))
        sel = order_sh[np.isin(shelter[order_sh], chunk)]
        active, cur = sel, start[sel].astype(np.int64)
        rows = row_of[shelter[sel]]
        while len(active):
            nxt = pred[rows, cur].astype(np.int64)
            go = (nxt >= 0) & (nxt < n)
            active, cur, rows = active[go], nxt[go], rows[go]
            steps_p.append(active)
            steps_node.append(cur)
    p = np.concatenate(steps_p)
    node = np.concatenate(steps_node)
    order = np.argsort(p, kind="stable")  # steps were appended in walking order
    p, node = p[order], node[order]
    edge = np.full(len(p), -1, dtype=np.int64)
    more = np.flatnonzero(p[:-1] == p[1:])
    if len(more):
        edge[more] = _edge_lookup(rt, node[more], node[more + 1])
    return p, node, edge


def _line_coords(
    net: _roads._Network, p: np.ndarray, node: np.ndarray, edge: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of each path following the edge geometries: (coords, path index)."""
    used, inv = np.unique(edge[edge >= 0], return_inverse=True)
    coords, cidx = shapely.get_coordinates(net.geometry[used], return_index=True)
    count = np.bincount(cidx, minlength=len(used))
    first = np.cumsum(count) - count
    step = np.flatnonzero(edge >= 0)
    ue = inv  # used-edge index of each step
    fwd = net.u[edge[step]] == node[step]
    n_take = count[ue] - 1
    run, pos = _raster.expand_runs(np.zeros(len(step), np.int64), n_take)
    src = np.where(fwd[run], first[ue][run] + 1 + pos, first[ue][run] + count[ue][run] - 2 - pos)
    # assemble: each path = its start node, then the coordinates of its steps
    heads = np.r_[True, p[1:] != p[:-1]]
    head_idx = np.flatnonzero(heads)
    pieces_path = np.r_[p[head_idx], p[step][run]]
    pieces_xy = np.vstack([np.c_[net.x[node[head_idx]], net.y[node[head_idx]]], coords[src]])
    pieces_key = np.r_[np.full(len(head_idx), -1), np.arange(len(run))]
    order = np.lexsort((pieces_key, pieces_path))
    return pieces_xy[order], pieces_path[order]


# --------------------------------------------------------------------------- main


def plan_evacuation(
    graded: Any,
    roads: Any,
    shelters: Any,
    *,
    depth: str | os.PathLike | list | None = None,
    who: Callable[[gpd.GeoDataFrame], Any] | Iterable[str] | None = None,
    persons_per_household: float | None = None,
    speed_kmh: float = WALKING_SPEED_KMH,
    flooded_road_depth: float | None = FLOODED_ROAD_DEPTH_M,
    shelter_m2_per_person: float | None = None,
    congestion: float | str = "bottleneck",
    k_nearest: int = K_NEAREST,
    network_type: str = "walking",
    snap_tolerance: float = _roads.SNAP_TOLERANCE_M,
    sample_spacing: float = SAMPLE_SPACING_M,
    time_limit: float = 30.0,
    early_departure: bool = True,
) -> EvacuationPlan:
    """Plan the evacuation: who moves, to which shelter, by which road, grid by grid.

    Parameters
    ----------
    graded : gridmap.FloodGrading
        Result of :func:`gridmap.grade_flood` (buildings with ``colour``, ``depth_m``,
        ``flooded_floors``, ``households_at_risk``, ``levels``, ``units``,
        ``households`` and, from a plan, ``grid_code``).
    roads : networkx graph, path or geopandas.GeoDataFrame
        Road network: an osmnx/networkx graph, a GraphML file, an OSM ``.pbf``
        extract, or a line layer (noded at crossings); see :mod:`gridmap.roads`.
        A graph without a ``crs`` attribute is taken to be in the buildings' CRS.
    shelters : geopandas.GeoDataFrame or path
        Points or polygons with ``name`` (名称), ``type`` and ``capacity`` (persons;
        容量). Where the capacity is missing it is estimated as floor area /
        `shelter_m2_per_person`: a polygon's area times its ``levels`` (层数; 1 when
        missing), or a ``floor_area_m2`` column.
    depth : path or list of paths, optional
        Flood-depth rasters for the roads (any CRS). By default the hazard sources of
        the grading are reused (``graded.sources``: depth rasters, flood extents with
        a depth, DEM flooding). Pass the water situation at evacuation time to plan
        with it instead; ``[]`` treats every road as passable.
    who : None, set of colours or callable, optional
        Who moves. None (default): every household on a flooded floor, i.e. all
        households at risk (in red and orange buildings these are all their
        households at risk; in yellow and blue ones the flooded ground floors). A set
        of colours, e.g. ``{"red", "orange"}``: the households at risk in buildings of
        those colours. A callable ``who(buildings) -> per-building households to
        move`` (array or Series aligned with ``graded.buildings``): that many
        households per building, from the lowest floor up.
    persons_per_household : float, optional
        Persons per household; default the grading's (2.62, China 2020 census).
        A demand unit of ``h`` households counts ``ceil(h * persons_per_household)``
        persons (rounded up per unit, never down: a shelter place is not shared).
    speed_kmh : float
        Walking speed (default 4 km/h).
    flooded_road_depth : float or None
        Depth (m) from which a road edge is impassable (default 0.3 m); None keeps all
        roads passable. A shelter standing in water this deep is ``flooded`` and
        closed.
    shelter_m2_per_person : float, optional
        Floor area per person for estimated capacities; default
        :data:`SHELTER_M2_PER_PERSON` = 2.0 m² (GB 51143-2015 short-term shelters).
    congestion : float or "bottleneck"
        Congestion allowance for the clearance time. ``"bottleneck"`` (default): a
        person's arrival time is the free walking time plus the time the busiest road
        edge of their route needs to pass everyone routed over it,
        ``persons_on_edge / (width * PEDESTRIAN_FLOW)`` with the width from
        :data:`gridmap.roads.ROAD_WIDTH_M` and 1.25 persons/m/s (everyone leaving at
        once: a simple upper-bound allowance, not a crowd simulation). A number
        (e.g. 1.3) multiplies the walking times instead.
    k_nearest : int
        Candidate shelters per demand unit: the `k_nearest` (default 8) nearest
        reachable open shelters by walking time.
    network_type : str
        pyrosm network type for ``.pbf`` roads (default ``"walking"``).
    snap_tolerance : float
        For line layers: gap (m) closed when noding (default 1 m).
    sample_spacing : float
        Spacing (m) of the depth samples along road edges (default 10 m).
    time_limit : float
        Time limit (s) of each MIP solve (default 30 s).
    early_departure : bool
        For demand cut off by flooded roads, also find the shelter it would go to if
        it left before the roads flood (routing on the dry network, with the capacity
        left after the main assignment): the ``early_*`` columns of ``unplaced`` and
        ``early_load`` of ``shelters``. These households must move first, or by boat.

    Returns
    -------
    EvacuationPlan

    Raises
    ------
    InputError, SchemaError, CRSError
        For unusable inputs (the message names the file, column or row).

    Notes
    -----
    **Formulation.** Demand units ``u`` (``p_u`` persons, colour weight ``w_u`` of
    :data:`PRIORITY_WEIGHT`), open shelters ``s`` (capacity ``C_s``), walking time
    ``t_us`` (s, over passable roads) to the ``k_nearest`` reachable shelters::

        minimise   sum_us p_u t_us x_us + sum_u p_u w_u M y_u
        subject to sum_s x_us + y_u = 1          for every unit u
                   sum_u p_u x_us  <= C_s        for every shelter s
                   x_us in {0, 1}

    with ``M`` one tenth of a second longer than the longest candidate walk, so that
    leaving a person without shelter costs more than any walk, and a red person left
    over costs as much as four orange ones (weights 64/16/4/1). This is a generalised
    assignment problem: a unit is never split. Walking times are rounded to 0.1 s.

    **Solution.** (1) The transportation relaxation (persons flow from buildings to
    shelters; a building's units share its walking times, so one supply per building
    gives the same relaxation) is solved exactly by HiGHS (dual simplex; the matrix is
    totally unimodular, so the optimal vertex is integral). Its optimum is a lower
    bound, and an optimal vertex splits at most about one building per full shelter.
    (2) Buildings the flow sent whole to one shelter keep it; the units of split
    buildings are re-assigned whole by a small HiGHS MIP over the remaining
    capacities (warm-started by a greedy packing along the flows). (3) When the
    problem has at most :data:`EXACT_MAX_PAIRS` (unit, shelter) pairs, the full MIP
    above is solved by HiGHS warm-started with that solution, so small plans are
    optimal (within ``time_limit``). ``solver`` reports the objective, the lower bound
    and the gap of each round. (4) Units left unplaced because their `k_nearest`
    shelters are full get up to :data:`MAX_ROUNDS` - 1 more rounds with the nearest
    shelters that still have room for them. The LP has one row per building with
    households to move and ``k_nearest`` columns per building: 10,000 buildings
    (100,000 households) solve in a few seconds (``bench/bench_evacuation.py``).

    **Reasons.** ``cut_off``: the building's access road is flooded or no passable
    road leads from it to an open shelter (flooded roads, disconnected network; also
    when every reachable shelter is flooded). ``no_capacity``: shelters are reachable,
    but all that are reachable are full.
    """
    if not hasattr(graded, "buildings") or not hasattr(graded, "households_to_move"):
        raise InputError(
            "graded must be a FloodGrading (gridmap.grade_flood)", source="plan_evacuation"
        )
    pph, m2pp = _check_params(
        graded, persons_per_household, speed_kmh, k_nearest, shelter_m2_per_person, congestion
    )
    speed = speed_kmh / 3.6
    clock = _Clock()
    buildings = graded.buildings
    require_crs(buildings, "buildings")
    crs = metric_crs(buildings, "buildings")
    demand = _demand(graded, who, pph)
    clock.lap("demand")
    net = _roads._network(
        roads,
        crs=crs,
        default_crs=buildings.crs,
        network_type=network_type,
        snap_tolerance=snap_tolerance,
    )
    if net.n_edges == 0:
        raise InputError("the road network has no edges", source=net.source)
    clock.lap("road network")
    sh = _shelters(shelters, crs, m2pp)
    clock.lap("shelters")

    # flood depth on the roads and at the shelters
    sources = _hazard_sources(graded, depth) if flooded_road_depth is not None else []
    thr = _INF if flooded_road_depth is None else float(flooded_road_depth)
    s_pts = shapely.point_on_surface(sh.geometry.to_numpy())
    edge_depth = _edge_depth(net, sources, sample_spacing)
    s_xy = shapely.get_coordinates(s_pts)
    s_depth = _point_depth(s_xy[:, 0], s_xy[:, 1], crs, sources)
    passable = edge_depth < thr
    clock.lap("road depth")

    # where buildings and shelters join the roads
    tree = shapely.STRtree(net.geometry)
    s_acc = _access(s_pts, net, tree, passable)
    ub = pd.unique(demand["building_id"]) if len(demand) else np.empty(0, dtype=object)
    pos_of = pd.Series(
        np.arange(len(buildings)), index=buildings["building_id"].astype(str).to_numpy()
    )
    b_rows = pos_of.reindex(ub).to_numpy().astype(np.int64)
    b_geom = to_metric(buildings.iloc[b_rows], crs, "buildings").geometry.to_numpy()
    b_pts = shapely.centroid(b_geom)
    b_acc = _access(b_pts, net, tree, passable)
    unit_b = pd.Index(ub).get_indexer(demand["building_id"]) if len(demand) else np.empty(0, int)
    status = np.where(s_depth >= thr, "flooded", "open").astype(object)
    status[(status == "open") & ~passable[s_acc.edge]] = "cut_off"
    sh["depth_m"] = np.round(s_depth, 3)
    sh["status"] = status
    cap = sh["capacity"].to_numpy(dtype=np.int64)
    is_open = (status == "open") & (cap > 0)
    clock.lap("access")

    needed = np.r_[net.u[b_acc.edge], net.v[b_acc.edge]]
    rt = _router(net, passable, s_acc, needed, is_open)
    clock.lap("shortest paths")

    persons = demand["persons"].to_numpy(dtype=np.int64)
    weight = demand["colour"].map(PRIORITY_WEIGHT).fillna(1).to_numpy(dtype=np.int64)
    residual = np.where(is_open, cap, 0)
    opts = {"k": k_nearest, "time_limit": time_limit, "speed": speed}
    choice, reachable, rounds = _assign_rounds(
        rt, b_acc, unit_b, persons, weight, residual, np.arange(len(demand)), **opts
    )
    residual -= _load(choice, persons, len(cap))
    clock.lap("assignment")

    # cut-off units: where they could go if they left before the roads flood
    early = np.full(len(demand), -1, dtype=np.int64)
    early_m = np.full(len(demand), np.nan)
    cut = np.flatnonzero((choice < 0) & ~reachable)
    dry_ok = (status != "flooded") & (cap > 0)
    if early_departure and len(cut) and (~passable).any() and dry_ok.any():
        dry = _router(net, np.ones(net.n_edges, dtype=bool), s_acc, needed, dry_ok)
        got, _, early_rounds = _assign_rounds(
            dry, b_acc, unit_b, persons, weight, np.where(dry_ok, residual, 0), cut, **opts
        )
        early[cut] = got[cut]
        ok = cut[got[cut] >= 0]
        early_m[ok] = _costs(dry, b_acc, unit_b[ok], early[ok])[0]
        for r in early_rounds:
            r["early_departure"] = True
        rounds += early_rounds
        clock.lap("early departure")

    placed = np.flatnonzero(choice >= 0)
    rr = _routes(rt, b_acc, s_acc, b_pts, s_xy, unit_b[placed], choice[placed], persons[placed])
    travel_s = rr["metres"] / speed
    if congestion == "bottleneck":
        arrival_s = travel_s + rr["queue_s"]
    else:
        arrival_s = travel_s * float(congestion)
    clock.lap("routes")

    # ---- tables
    base = _base_table(demand, unit_b, b_pts, crs)
    names = sh["name"].to_numpy(dtype=object)
    ids = sh["shelter_id"].to_numpy(dtype=object)
    a = base.iloc[placed].copy()
    a["shelter_id"] = ids[choice[placed]]
    a["shelter"] = names[choice[placed]]
    a["route_length_m"] = np.round(rr["metres"], 1)
    a["travel_time_min"] = np.round(travel_s / 60, 2)
    a["arrival_time_min"] = np.round(arrival_s / 60, 2)
    a["status"] = "placed"
    assignments = a[_TABLE_COLUMNS].reset_index(drop=True)

    left = np.flatnonzero(choice < 0)
    un = base.iloc[left].copy()
    reason = np.where(reachable[left], "no_capacity", "cut_off")
    un["shelter_id"] = un["shelter"] = None
    un["route_length_m"] = un["travel_time_min"] = un["arrival_time_min"] = np.nan
    un["status"] = reason
    un = un[_TABLE_COLUMNS].copy()
    un["reason"] = reason
    un["reason_zh"] = pd.Series(reason, dtype=object).map(REASON_ZH).to_numpy()
    e = early[left]
    un["early_shelter_id"] = np.where(e >= 0, ids[np.maximum(e, 0)], None)
    un["early_shelter"] = np.where(e >= 0, names[np.maximum(e, 0)], None)
    un["early_route_length_m"] = np.round(early_m[left], 1)
    un["early_travel_time_min"] = np.round(early_m[left] / speed / 60, 2)
    unplaced = un.reset_index(drop=True)

    sh = _shelter_loads(sh, choice, early, persons, demand["households"].to_numpy())
    routes = _route_frame(rr, demand, unit_b, ub, placed, ids, names, speed, arrival_s, crs)
    imp = np.flatnonzero(~passable)
    impassable = net.edges_frame(imp)
    impassable.insert(len(impassable.columns) - 1, "depth_max_m", np.round(edge_depth[imp], 3))
    roads_used = _roads_used(net, rr, ids)
    bl = _building_frame(demand, unit_b, ub, b_geom, choice, reachable, crs)
    clock.lap("tables")

    notes = _notes(net, passable, status, sh, flooded_road_depth, m2pp, unplaced)
    first = rounds[0] if rounds else {}
    solver_out = {
        "method": first.get("method", "none"),
        "objective": first.get("objective", 0.0),
        "lower_bound": first.get("lower_bound", 0.0),
        "gap": first.get("gap", 0.0),
        "split_units": sum(r["split_units"] for r in rounds),
        "rounds": len(rounds),
        "round_details": rounds,
        "seconds": round(sum(r["seconds"] for r in rounds), 3),
    }
    params = {
        "persons_per_household": pph,
        "speed_kmh": float(speed_kmh),
        "flooded_road_depth": flooded_road_depth,
        "shelter_m2_per_person": m2pp,
        "congestion": congestion,
        "pedestrian_flow": PEDESTRIAN_FLOW,
        "k_nearest": int(k_nearest),
        "sample_spacing": float(sample_spacing),
        "early_departure": bool(early_departure),
        "hazard_sources": [s.get("name") for s in sources],
        "who": _who_label(who),
        "road_nodes": net.n_nodes,
        "road_edges": net.n_edges,
        "road_source": net.source,
        "timings_s": clock.total(),
    }
    return EvacuationPlan(
        assignments=assignments,
        unplaced=unplaced,
        shelters=sh,
        routes=routes,
        impassable=impassable,
        roads_used=roads_used,
        buildings=bl,
        clearance_time_min=float(arrival_s.max() / 60) if len(arrival_s) else 0.0,
        crs=crs,
        params=params,
        solver=solver_out,
        notes=notes,
    )


_TABLE_COLUMNS = [
    "building_id",
    "unit",
    "grid_code",
    "community_code",
    "colour",
    "colour_zh",
    "depth_m",
    "floor_from",
    "floor_to",
    "floors",
    "households",
    "persons",
    "shelter_id",
    "shelter",
    "route_length_m",
    "travel_time_min",
    "arrival_time_min",
    "status",
    "lon",
    "lat",
]


class _Clock:
    """Step timings, logged to the ``gridmap`` logger."""

    def __init__(self) -> None:
        self.t0 = self.t = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.t, 3)
        log.info("evacuation: %s %.2f s", name, now - self.t)
        self.t = now

    def total(self) -> dict[str, float]:
        return {**self.laps, "total": round(time.perf_counter() - self.t0, 3)}


def _check_params(
    graded: Any,
    persons_per_household: float | None,
    speed_kmh: float,
    k_nearest: int,
    shelter_m2_per_person: float | None,
    congestion: float | str,
) -> tuple[float, float]:
    if speed_kmh <= 0:
        raise InputError(f"speed_kmh must be > 0, got {speed_kmh}", source="speed_kmh")
    if k_nearest < 1:
        raise InputError(f"k_nearest must be >= 1, got {k_nearest}", source="k_nearest")
    pph = float(
        persons_per_household
        if persons_per_household is not None
        else getattr(graded, "persons_per_household", 2.62)
    )
    if pph <= 0:
        raise InputError(
            f"persons_per_household must be > 0, got {pph}", source="persons_per_household"
        )
    m2pp = float(
        shelter_m2_per_person if shelter_m2_per_person is not None else SHELTER_M2_PER_PERSON
    )
    if m2pp <= 0:
        raise InputError(
            f"shelter_m2_per_person must be > 0, got {m2pp}", source="shelter_m2_per_person"
        )
    if isinstance(congestion, str):
        if congestion != "bottleneck":
            raise InputError(
                f"congestion must be a number >= 1 or 'bottleneck', got {congestion!r}",
                source="congestion",
            )
    elif not float(congestion) >= 1:
        raise InputError(f"congestion factor must be >= 1, got {congestion}", source="congestion")
    return pph, m2pp


def _who_label(who: Any) -> Any:
    if who is None:
        return "households on flooded floors"
    if callable(who):
        return f"callable {getattr(who, '__name__', '')}".strip()
    return sorted({who} if isinstance(who, str) else set(who))


def _load(choice: np.ndarray, persons: np.ndarray, n: int) -> np.ndarray:
    ok = choice >= 0
    return np.bincount(choice[ok], weights=persons[ok], minlength=n).astype(np.int64)


def _assign_rounds(
    rt: _Router,
    b_acc: _Access,
    unit_b: np.ndarray,
    persons: np.ndarray,
    weight: np.ndarray,
    capacity: np.ndarray,
    units: np.ndarray,
    *,
    k: int,
    time_limit: float,
    speed: float,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Assign `units` to shelters in rounds; returns (shelter or -1, reachable, infos).

    Round 1 offers each unit its `k` nearest reachable open shelters; later rounds offer
    the units left over the `k` nearest shelters that still have room for them.
    """
    n = len(persons)
    choice = np.full(n, -1, dtype=np.int64)
    reachable = np.zeros(n, dtype=bool)
    residual = capacity.astype(np.int64).copy()
    infos: list[dict[str, Any]] = []
    todo = np.asarray(units, dtype=np.int64)
    for rnd in range(MAX_ROUNDS):
        if len(todo) == 0:
            break
        # round 1: the nearest open shelters (full or not, so that reachability is
        # known); later rounds: the nearest shelters with room left
        allowed = rt.open if rnd == 0 else rt.open & (residual >= persons[todo].min())
        if not allowed.any():
            break
        blds = np.unique(unit_b[todo])
        cand, metres = _candidates(rt, b_acc, blds, allowed, k)
        group = np.searchsorted(blds, unit_b[todo])
        if rnd == 0:
            reachable[todo] = (cand >= 0).any(axis=1)[group]
        # a building may use the shelters with room for its smallest unit left to place
        smallest = np.full(len(blds), np.iinfo(np.int64).max)
        np.minimum.at(smallest, group, persons[todo])
        cand = np.where(
            (cand >= 0) & (smallest[:, None] <= residual[np.maximum(cand, 0)]), cand, -1
        )
        go = (cand >= 0).any(axis=1)
        keep = go[group]
        if not keep.any():
            break
        todo = todo[keep]
        new_id = np.cumsum(go) - 1
        group = new_id[group[keep]]
        cand, metres = cand[go], metres[go]
        col, info = _assign(
            persons[todo],
            weight[todo],
            group,
            cand,
            metres / speed,
            residual,
            exact_max_pairs=EXACT_MAX_PAIRS,
            time_limit=time_limit,
        )
        ok = col >= 0
        chosen = cand[group[ok], col[ok]]
        choice[todo[ok]] = chosen
        residual -= np.bincount(chosen, weights=persons[todo[ok]], minlength=len(residual)).astype(
            np.int64
        )
        info.update(round=rnd + 1, placed_units=int(ok.sum()))
        infos.append(info)
        if ok.all() or not ok.any():
            break
        todo = todo[~ok]
    return choice, reachable, infos


def _routes(
    rt: _Router,
    b_acc: _Access,
    s_acc: _Access,
    b_pts: np.ndarray,
    s_xy: np.ndarray,
    ub: np.ndarray,
    us: np.ndarray,
    persons: np.ndarray,
) -> dict[str, Any]:
    """Routes of placed units (building `ub`, shelter `us`): lengths, geometry, flows.

    Returns a dict with ``metres`` and ``queue_s`` per unit, ``route_of`` (route of each
    unit), ``rb``/``rs`` (building and shelter of each route), ``r_persons``,
    ``geometry`` (route lines), ``e_persons`` (persons on each edge), ``queue_edge``
    (seconds to pass everyone on each edge), ``width``, ``main`` (main shelter per used
    edge) and ``used`` (edges with walkers).
    """
    net = rt.net
    metres, end = _costs(rt, b_acc, ub, us)
    pair = pd.DataFrame({"b": ub, "s": us, "end": end})
    rkey = pair.drop_duplicates(["b", "s"]).reset_index(drop=True)
    route_of = (
        pd.MultiIndex.from_frame(rkey[["b", "s"]]).get_indexer(
            pd.MultiIndex.from_frame(pair[["b", "s"]])
        )
        if len(pair)
        else np.empty(0, dtype=np.int64)
    )
    rb = rkey["b"].to_numpy(dtype=np.int64)
    rs = rkey["s"].to_numpy(dtype=np.int64)
    rend = rkey["end"].to_numpy(dtype=np.int64)
    r_persons = np.bincount(route_of, weights=persons, minlength=len(rb))
    bedge, sedge_r = b_acc.edge[rb], s_acc.edge[rs]
    via = rend < 2
    start = np.where(rend == 0, net.u[bedge], net.v[bedge])
    pkey = pd.DataFrame({"n": start[via], "s": rs[via]})
    upath = pkey.drop_duplicates().reset_index(drop=True)
    path_of = np.full(len(rb), -1, dtype=np.int64)
    if len(upath):
        path_of[via] = pd.MultiIndex.from_frame(upath).get_indexer(pd.MultiIndex.from_frame(pkey))
        sp, snode, sedge = _paths(rt, upath["n"].to_numpy(), upath["s"].to_numpy())
    else:
        sp = snode = sedge = np.empty(0, dtype=np.int64)
    p_sh = upath["s"].to_numpy(dtype=np.int64)

    # persons per edge: the path edges plus the access edges at both ends
    p_persons = np.bincount(path_of[via], weights=r_persons[via], minlength=len(upath))
    step = sedge >= 0
    other = bedge != sedge_r
    e = np.r_[sedge[step], bedge, sedge_r[other]]
    s = np.r_[p_sh[sp[step]], rs, rs[other]]
    w = np.r_[p_persons[sp[step]], r_persons, r_persons[other]]
    e_persons = np.bincount(e, weights=w, minlength=net.n_edges)
    width = _roads._edge_width(net.highway)
    queue_edge = e_persons / (width * PEDESTRIAN_FLOW)
    p_queue = np.zeros(len(upath))
    if step.any():
        np.maximum.at(p_queue, sp[step], queue_edge[sedge[step]])
    r_queue = np.maximum(queue_edge[bedge], queue_edge[sedge_r])
    r_queue[via] = np.maximum(r_queue[via], p_queue[path_of[via]])
    used = np.flatnonzero(e_persons > 0)
    if len(e):
        flows = pd.DataFrame({"e": e, "s": s, "w": w}).groupby(["e", "s"], as_index=False)["w"]
        best = (
            flows.sum()
            .sort_values(["e", "w"], ascending=[True, False], kind="stable")
            .drop_duplicates("e")
            .set_index("e")["s"]
        )
        main = best.reindex(used).fillna(0).to_numpy(dtype=np.int64)
    else:
        main = np.empty(0, dtype=np.int64)

    # geometry: building -> foot on its road -> path -> foot of the shelter -> shelter
    if len(upath):
        pxy, pidx = _line_coords(net, sp, snode, sedge)
        p_count = np.bincount(pidx, minlength=len(upath))
        p_first = np.cumsum(p_count) - p_count
    else:
        pxy, p_count, p_first = np.empty((0, 2)), np.zeros(0, int), np.zeros(0, int)
    rk = np.arange(len(rb))
    pp = np.maximum(path_of, 0)
    mid_n = np.where(via, p_count[pp] if len(p_count) else 0, 0)
    run, pos = _raster.expand_runs(np.where(via, p_first[pp] if len(p_first) else 0, 0), mid_n)
    b_xy = shapely.get_coordinates(b_pts)
    pieces = [
        (rk, 0, b_xy[rb]),
        (rk, 1, shapely.get_coordinates(b_acc.snap)[rb]),
        (run, 2, pxy[pos] if len(pos) else np.empty((0, 2))),
        (rk, 3, shapely.get_coordinates(s_acc.snap)[rs]),
        (rk, 4, s_xy[rs]),
    ]
    r_idx = np.concatenate([p[0] for p in pieces])
    r_ord = np.concatenate([np.full(len(p[0]), p[1]) for p in pieces])
    r_xy = np.vstack([p[2] for p in pieces])
    order = np.lexsort((r_ord, r_idx))
    geoms = (
        shapely.linestrings(r_xy[order], indices=r_idx[order])
        if len(rb)
        else np.empty(0, dtype=object)
    )
    return {
        "metres": metres,
        "queue_s": r_queue[route_of] if len(route_of) else np.empty(0),
        "route_of": route_of,
        "rb": rb,
        "rs": rs,
        "r_persons": r_persons,
        "geometry": geoms,
        "e_persons": e_persons,
        "queue_edge": queue_edge,
        "width": width,
        "main": main,
        "used": used,
    }


def _base_table(
    demand: pd.DataFrame, unit_b: np.ndarray, b_pts: np.ndarray, crs: CRS
) -> pd.DataFrame:
    base = demand.copy()
    base["colour_zh"] = base["colour"].map(_COLOUR_ZH)
    ff, ft = base["floor_from"].astype(str), base["floor_to"].astype(str)
    base["floors"] = np.where(ff == ft, ff, ff + "-" + ft)
    if len(b_pts):
        wgs = to_wgs84(gpd.GeoDataFrame(geometry=b_pts, crs=crs)).geometry
        base["lon"] = np.round(wgs.x.to_numpy(), 6)[unit_b]
        base["lat"] = np.round(wgs.y.to_numpy(), 6)[unit_b]
    else:
        base["lon"] = base["lat"] = np.empty(0)
    return base


def _shelter_loads(
    sh: gpd.GeoDataFrame,
    choice: np.ndarray,
    early: np.ndarray,
    persons: np.ndarray,
    households: np.ndarray,
) -> gpd.GeoDataFrame:
    n = len(sh)
    ok = choice >= 0
    load = _load(choice, persons, n)
    sh["load"] = load
    sh["households"] = np.bincount(choice[ok], weights=households[ok], minlength=n).astype(np.int64)
    sh["units"] = np.bincount(choice[ok], minlength=n).astype(np.int64)
    sh["pct_used"] = np.round(100 * load / np.maximum(sh["capacity"].to_numpy(), 1), 1)
    sh["early_load"] = _load(early, persons, n)
    return sh[
        [
            "shelter_id",
            "name",
            "type",
            "capacity",
            "capacity_source",
            "depth_m",
            "status",
            "load",
            "households",
            "units",
            "pct_used",
            "early_load",
            "geometry",
        ]
    ]


def _route_frame(
    rr: dict[str, Any],
    demand: pd.DataFrame,
    unit_b: np.ndarray,
    ub: np.ndarray,
    placed: np.ndarray,
    ids: np.ndarray,
    names: np.ndarray,
    speed: float,
    arrival_s: np.ndarray,
    crs: CRS,
) -> gpd.GeoDataFrame:
    rb, rs, route_of = rr["rb"], rr["rs"], rr["route_of"]
    n = len(rb)
    table = pd.DataFrame(
        {
            "r": route_of,
            "unit": demand["unit"].to_numpy()[placed].astype(str),
            "households": demand["households"].to_numpy()[placed],
            "order": demand["unit"].to_numpy()[placed],
        }
    ).sort_values(["r", "order"], kind="stable")
    g = table.groupby("r")
    units = g["unit"].agg(",".join).reindex(np.arange(n)).to_numpy(dtype=object)
    households = g["households"].sum().reindex(np.arange(n), fill_value=0).to_numpy()
    metres = np.zeros(n)
    metres[route_of] = rr["metres"]
    arrival = np.zeros(n)
    np.maximum.at(arrival, route_of, arrival_s)
    first = demand.groupby("building_id", sort=False)[["colour", "grid_code"]].first()
    return gpd.GeoDataFrame(
        {
            "building_id": ub[rb] if n else np.empty(0, dtype=object),
            "grid_code": first["grid_code"].reindex(ub[rb]).to_numpy() if n else [],
            "colour": first["colour"].reindex(ub[rb]).to_numpy() if n else [],
            "shelter_id": ids[rs],
            "shelter": names[rs],
            "units": units,
            "households": households.astype(np.int64),
            "persons": rr["r_persons"].astype(np.int64),
            "route_length_m": np.round(metres, 1),
            "travel_time_min": np.round(metres / speed / 60, 2),
            "arrival_time_min": np.round(arrival / 60, 2),
        },
        geometry=rr["geometry"],
        crs=crs,
    )


def _roads_used(net: _roads._Network, rr: dict[str, Any], ids: np.ndarray) -> gpd.GeoDataFrame:
    used = rr["used"]
    out = net.edges_frame(used)
    geometry = out.pop("geometry")
    out["persons"] = rr["e_persons"][used].astype(np.int64)
    out["shelter_id"] = ids[rr["main"]] if len(used) else np.empty(0, dtype=object)
    out["width_m"] = rr["width"][used]
    out["queue_min"] = np.round(rr["queue_edge"][used] / 60, 2)
    out["geometry"] = geometry
    return gpd.GeoDataFrame(out, geometry="geometry", crs=net.crs)


def _building_frame(
    demand: pd.DataFrame,
    unit_b: np.ndarray,
    ub: np.ndarray,
    b_geom: np.ndarray,
    choice: np.ndarray,
    reachable: np.ndarray,
    crs: CRS,
) -> gpd.GeoDataFrame:
    nb = len(ub)
    g = pd.DataFrame(
        {
            "b": unit_b,
            "placed": choice >= 0,
            "reach": reachable,
            "households": demand["households"].to_numpy(),
            "persons": demand["persons"].to_numpy(),
            "colour": demand["colour"].to_numpy(),
            "grid_code": demand["grid_code"].to_numpy(),
        }
    ).groupby("b")
    idx = np.arange(nb)
    n_placed = g["placed"].sum().reindex(idx, fill_value=0).to_numpy()
    n_all = g.size().reindex(idx, fill_value=0).to_numpy()
    reach = g["reach"].any().reindex(idx, fill_value=False).to_numpy(dtype=bool)
    out = gpd.GeoDataFrame(
        {
            "building_id": ub,
            "colour": g["colour"].first().reindex(idx).to_numpy(),
            "grid_code": g["grid_code"].first().reindex(idx).to_numpy(),
            "households_to_move": g["households"].sum().reindex(idx, fill_value=0).to_numpy(),
            "persons_to_move": g["persons"].sum().reindex(idx, fill_value=0).to_numpy(),
            "status": np.select(
                [n_placed == n_all, n_placed > 0, reach],
                ["placed", "partly_placed", "no_capacity"],
                "cut_off",
            ),
        },
        geometry=b_geom,
        crs=crs,
    )
    return out


def _notes(
    net: _roads._Network,
    passable: np.ndarray,
    status: np.ndarray,
    sh: gpd.GeoDataFrame,
    flooded_road_depth: float | None,
    m2pp: float,
    unplaced: pd.DataFrame,
) -> list[str]:
    notes = []
    if (~passable).any():
        notes.append(
            f"{int((~passable).sum())} of {net.n_edges} road edges impassable "
            f"(water >= {flooded_road_depth} m)"
        )
    for st, what in (("flooded", "stand in flood water"), ("cut_off", "are on flooded roads")):
        if (status == st).any():
            notes.append(f"{int((status == st).sum())} shelters {what}: closed")
    est = sh["capacity_source"] == "area_estimate"
    if est.any():
        notes.append(f"{int(est.sum())} shelter capacities estimated at {m2pp:g} m² per person")
    cut = unplaced[unplaced["reason"] == "cut_off"]
    if len(cut):
        early = cut["early_shelter_id"].notna()
        notes.append(
            f"{int(cut['persons'].sum())} persons cut off by flooded roads: "
            f"{int(cut.loc[early, 'persons'].sum())} of them have a shelter if they leave "
            "before the roads flood (early_* columns), the others need boats"
        )
    return notes


# --------------------------------------------------------------------------- outputs


_SHELTER_COLOURS = [
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
]


def _legend_html(plan: EvacuationPlan) -> str:
    from .flood import PALETTE

    rows = [
        (f"background:{PALETTE['red']}", "红 red"),
        (f"background:{PALETTE['orange']}", "橙 orange"),
        (f"background:{PALETTE['yellow']}", "黄 yellow"),
        (f"background:{PALETTE['blue']}", "蓝 blue"),
    ]
    items = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;{style};'
        f'margin-right:6px;vertical-align:middle"></span>{label}</div>'
        for style, label in rows
    )
    s = plan.summary()
    return (
        '<div style="position:fixed;bottom:24px;left:24px;z-index:9999;background:white;'
        "padding:8px 10px;border:1px solid #888;border-radius:4px;font:12px sans-serif;"
        'line-height:1.6;max-width:300px">'
        "<b>避险转移 Evacuation plan</b>"
        "<div>需转移楼栋（按风险颜色）/ buildings to evacuate by flood colour</div>"
        f"{items}"
        '<div><span style="display:inline-block;width:14px;height:14px;border-radius:7px;'
        'border:2px solid #333;margin-right:6px;vertical-align:middle"></span>'
        "避难所（大小=安置人数）/ shelter (size = load)</div>"
        '<div><span style="display:inline-block;width:22px;border-top:3px solid #1f77b4;'
        'margin-right:6px;vertical-align:middle"></span>转移路线（按避难所着色）/ '
        "evacuation roads, coloured by shelter</div>"
        '<div><span style="display:inline-block;width:22px;border-top:3px dashed #00008b;'
        'margin-right:6px;vertical-align:middle"></span>受淹道路 / flooded road '
        f"(≥ {plan.params.get('flooded_road_depth')} m)</div>"
        f"<div style='margin-top:4px'>已安置 placed {s['placed_persons']:,} / "
        f"{s['persons']:,} 人 persons；无法到达 cut off {s['cut_off_persons']:,}；"
        f"容量不足 no capacity {s['no_capacity_persons']:,}<br>"
        f"全部到达 clearance ≈ {s['clearance_time_min']:.0f} min</div>"
        "</div>"
    )


def evacuation_map(
    plan: EvacuationPlan,
    *,
    tiles: str | None = "osm",
    attribution: str | None = None,
    max_routes: int = 2000,
):
    """Folium map of an evacuation plan.

    Shows the buildings with households to move in their flood colours (popup: households,
    persons, status), the shelters as circles sized by load (popup: load / capacity,
    % used; closed shelters grey), the evacuation roads coloured by the shelter most of
    their walkers go to (line width by persons), the individual building -> shelter routes
    when there are at most `max_routes` of them (a layer switched off at start), and the
    flooded roads dashed; legend in Chinese and English.

    Parameters
    ----------
    plan : EvacuationPlan
        Result of :func:`plan_evacuation`.
    tiles : str or None
        Base map: a preset of :data:`gridmap.maps.TILES` (``"osm"``), a tile URL
        template, or None for no base map (usable offline).
    attribution : str, optional
        Attribution of a custom tile URL.
    max_routes : int
        Largest number of individual routes drawn.

    Returns
    -------
    folium.Map
    """
    import folium

    from .flood import PALETTE

    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    if tiles is not None and tiles != "none":
        from .maps import TILES

        url, attr = TILES.get(tiles, (tiles, attribution or "base map"))
        folium.TileLayer(url, attr=attr, name="底图 Base map", max_zoom=19).add_to(m)
    colour_of = {
        sid: _SHELTER_COLOURS[i % len(_SHELTER_COLOURS)]
        for i, sid in enumerate(plan.shelters["shelter_id"])
    }

    imp = plan.impassable
    if len(imp):
        fg = folium.FeatureGroup(name=f"受淹道路 flooded roads ({len(imp)})")
        folium.GeoJson(
            to_wgs84(imp[["name", "depth_max_m", "geometry"]].fillna({"name": ""}), "roads"),
            style_function=lambda _f: {"color": "#00008b", "weight": 2.5, "dashArray": "6 6"},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "depth_max_m"], aliases=["道路 road", "最大水深 depth (m)"]
            ),
        ).add_to(fg)
        fg.add_to(m)

    b = plan.buildings
    for colour in ("red", "orange", "yellow", "blue", "none"):
        sub = b[b["colour"] == colour]
        if sub.empty:
            continue
        sub = to_wgs84(sub, "buildings").copy()
        sub["building_id"] = sub["building_id"].astype(str)
        sub["grid_code"] = sub["grid_code"].fillna("").astype(str)
        fg = folium.FeatureGroup(name=f"需转移楼栋 buildings: {_COLOUR_ZH[colour]} ({len(sub)})")
        fill = PALETTE.get(colour, "#9e9e9e")
        folium.GeoJson(
            sub[
                [
                    "building_id",
                    "grid_code",
                    "households_to_move",
                    "persons_to_move",
                    "status",
                    "geometry",
                ]
            ],
            style_function=lambda _f, c=fill: {
                "color": c,
                "weight": 1,
                "fillColor": c,
                "fillOpacity": 0.7,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=[
                    "building_id",
                    "grid_code",
                    "households_to_move",
                    "persons_to_move",
                    "status",
                ],
                aliases=[
                    "楼栋 building",
                    "网格 grid",
                    "转移户 households",
                    "转移人 persons",
                    "状态 status",
                ],
            ),
        ).add_to(fg)
        fg.add_to(m)

    ru = plan.roads_used
    if len(ru):
        fg = folium.FeatureGroup(name="转移道路 evacuation roads")
        r = to_wgs84(ru, "roads").copy()
        r["name"] = r["name"].fillna("").astype(str)
        r["colour"] = r["shelter_id"].map(colour_of)
        pmax = max(float(r["persons"].max()), 1.0)
        r["w"] = 2 + 6 * np.sqrt(r["persons"] / pmax)
        folium.GeoJson(
            r[["name", "persons", "shelter_id", "queue_min", "colour", "w", "geometry"]],
            style_function=lambda f: {
                "color": f["properties"]["colour"],
                "weight": f["properties"]["w"],
                "opacity": 0.85,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "persons", "shelter_id", "queue_min"],
                aliases=["道路 road", "通行人数 persons", "去往 to shelter", "排队 queue (min)"],
            ),
        ).add_to(fg)
        fg.add_to(m)

    routes = plan.routes
    if 0 < len(routes) <= max_routes:
        fg = folium.FeatureGroup(name=f"转移路线 routes ({len(routes)})", show=False)
        r = to_wgs84(routes, "routes").copy()
        r["colour"] = r["shelter_id"].map(colour_of)
        r["building_id"] = r["building_id"].astype(str)
        folium.GeoJson(
            r[
                [
                    "building_id",
                    "shelter",
                    "persons",
                    "route_length_m",
                    "travel_time_min",
                    "colour",
                    "geometry",
                ]
            ],
            style_function=lambda f: {"color": f["properties"]["colour"], "weight": 1.5},
            tooltip=folium.GeoJsonTooltip(
                fields=["building_id", "shelter", "persons", "route_length_m", "travel_time_min"],
                aliases=[
                    "楼栋 building",
                    "避难所 shelter",
                    "人数 persons",
                    "距离 length (m)",
                    "步行 walk (min)",
                ],
            ),
        ).add_to(fg)
        fg.add_to(m)

    sh = plan.shelters
    if len(sh):
        fg = folium.FeatureGroup(name=f"避难所 shelters ({len(sh)})")
        pts = to_wgs84(
            gpd.GeoDataFrame(
                sh.drop(columns="geometry"), geometry=sh.geometry.representative_point(), crs=sh.crs
            ),
            "shelters",
        )
        lmax = max(float(pts["load"].max()), 1.0)
        for rec in pts.itertuples():
            colour = colour_of[rec.shelter_id] if rec.status == "open" else "#9e9e9e"
            popup = (
                f"<b>{rec.name}</b> ({rec.shelter_id})<br>安置 load {rec.load:,} / 容量 capacity "
                f"{rec.capacity:,} 人 ({rec.pct_used:.0f}%)<br>状态 status: {rec.status}"
            )
            folium.CircleMarker(
                location=[rec.geometry.y, rec.geometry.x],
                radius=5 + 15 * math.sqrt(rec.load / lmax),
                color="#333333",
                weight=2,
                fill=True,
                fill_color=colour,
                fill_opacity=0.8,
                popup=folium.Popup(popup, max_width=300),
                tooltip=f"{rec.name}: {rec.load}/{rec.capacity}",
            ).add_to(fg)
        fg.add_to(m)

    m.get_root().html.add_child(folium.Element(_legend_html(plan)))
    folium.LayerControl(collapsed=True).add_to(m)
    extent = [g for g in (b, sh) if len(g)]
    if extent:
        bounds = np.array([to_wgs84(g).total_bounds for g in extent])
        w, s_, e, n = bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()
        m.fit_bounds([[s_, w], [n, e]])
    return m


def write_evacuation_outputs(plan: EvacuationPlan, out_dir: str | os.PathLike) -> list[Path]:
    """Write the evacuation map and tables to `out_dir`.

    Files: ``evacuation_map.html``; ``evacuation_tasks.csv/.xlsx`` (the per-grid task
    lists of :meth:`EvacuationPlan.tasks_by_grid`, one table with a ``grid_code``
    column); ``evacuation_tasks_by_grid.xlsx`` (one sheet per grid, when there are at
    most 500 grids); ``shelter_summary.csv/.xlsx``; ``evacuation_unplaced.csv/.xlsx``;
    ``evacuation_roads.csv/.xlsx`` (named evacuation roads: persons and length per road
    name and shelter); ``evacuation_routes.geojson`` (WGS84). Tables are written with
    :func:`gridmap.io.write_table` (CSV with BOM + XLSX).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    html = out / "evacuation_map.html"
    evacuation_map(plan).save(str(html))
    paths.append(html)
    tasks = plan.tasks_by_grid()
    paths += write_table(tasks, out / "evacuation_tasks", sheet_name="tasks")
    grids = tasks["grid_code"].dropna().unique()
    if 0 < len(grids) <= 500:
        path = out / "evacuation_tasks_by_grid.xlsx"
        tmp = path.with_name(f".{path.name}.tmp.xlsx")
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for code, sub in tasks.groupby(tasks["grid_code"].fillna("no_grid"), sort=True):
                sub.to_excel(writer, sheet_name=str(code)[:31], index=False)
        os.replace(tmp, path)
        paths.append(path)
    paths += write_table(plan.shelter_table(), out / "shelter_summary", sheet_name="shelters")
    paths += write_table(plan.unplaced, out / "evacuation_unplaced", sheet_name="unplaced")
    paths += write_table(_road_table(plan), out / "evacuation_roads", sheet_name="roads")
    gj = out / "evacuation_routes.geojson"
    plan.routes_wgs84().to_file(gj, driver="GeoJSON", engine="pyogrio")
    paths.append(gj)
    return paths


def _road_table(plan: EvacuationPlan) -> pd.DataFrame:
    """Evacuation roads by name and shelter: length (m) and most persons on an edge."""
    ru = plan.roads_used
    cols = ["name", "highway", "shelter_id", "shelter", "length_m", "persons_max", "queue_min_max"]
    if ru.empty:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(ru.drop(columns="geometry"))
    df["name"] = df["name"].fillna("(无名 unnamed)")
    df["highway"] = df["highway"].fillna("")
    g = df.groupby(["name", "highway", "shelter_id"], as_index=False).agg(
        length_m=("length_m", "sum"),
        persons_max=("persons", "max"),
        queue_min_max=("queue_min", "max"),
    )
    g["shelter"] = g["shelter_id"].map(plan.shelters.set_index("shelter_id")["name"])
    g["length_m"] = g["length_m"].round(1)
    return g[cols].sort_values("persons_max", ascending=False, kind="stable").reset_index(drop=True)


def run_evacuation(
    plan_path: str | os.PathLike,
    depth: str | os.PathLike | list,
    roads: Any,
    shelters: Any,
    out: str | os.PathLike,
    *,
    road_depth: str | os.PathLike | list | None = None,
    **kwargs: Any,
) -> list[Path]:
    """Grade a saved plan against flood depth rasters and write its evacuation plan.

    What ``gridmap evacuate -p plan.gpkg --depth D.tif --roads ROADS --shelters S -o out/``
    runs: :func:`gridmap.read_plan`, :func:`gridmap.grade_flood` with `depth`,
    :func:`plan_evacuation` (roads flooded by `road_depth`, by default the same
    rasters), :func:`write_evacuation_outputs` into `out`.

    Parameters
    ----------
    plan_path : path
        A plan GeoPackage (``Plan.to_file``).
    depth : path or list of paths
        Flood-depth rasters for grading.
    roads, shelters
        As in :func:`plan_evacuation` (paths are typical here).
    out : path
        Output folder.
    road_depth : path or list of paths, optional
        Depth rasters for the roads, when they differ from `depth`.
    **kwargs
        Passed to :func:`plan_evacuation`.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from .flood import grade_flood
    from .plan import read_plan

    plan = read_plan(plan_path)
    graded = grade_flood(plan, depth=depth)
    evac = plan_evacuation(graded, roads, shelters, depth=road_depth, **kwargs)
    log.info("%r", evac)
    return write_evacuation_outputs(evac, out)
