"""The evacuation plan: :func:`plan_evacuation` runs the steps, :class:`EvacuationPlan` holds it."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..crs import metric_crs, require_crs, to_metric, to_wgs84
from ..errors import InputError
from ..roads import SNAP_TOLERANCE_M, RoadNetwork, road_network
from . import outputs
from .assignment import EXACT_MAX_PAIRS, PRIORITY_WEIGHT, assign
from .demand import Who, demand_units, household_persons, who_label
from .network import (
    PEDESTRIAN_FLOW,
    Access,
    all_pairs,
    attach,
    nearest_shelter,
    pairs_within,
    route_details,
    router,
)
from .shelters import SHELTER_M2_PER_PERSON, read_shelters, shelter_points
from .timing import (
    DEFAULT_WAVES,
    SAMPLE_SPACING_M,
    EdgeProfile,
    FloodRise,
    RiseClock,
    flood_rise,
    rise_clock,
    waves_of,
)

log = logging.getLogger("gridmap")

__all__ = [
    "FLOODED_ROAD_DEPTH_M",
    "ISLAND_SHARE",
    "MAX_WALK_MIN",
    "REASONS",
    "WALKING_SPEED_KMH",
    "EvacuationPlan",
    "plan_evacuation",
    "run_evacuation",
]

#: Default walking speed (km/h) of an evacuating crowd (about 1.1 m/s).
WALKING_SPEED_KMH = 4.0

#: Default longest walk (minutes) to a shelter: 60 min, 4 km at 4 km/h. Demand farther
#: from every shelter with room is ``needs_transport`` (vehicles or boats).
MAX_WALK_MIN = 60.0

#: Default water depth (m) from which a road is impassable on foot (knee-deep water, in
#: which walking becomes unsafe and cars stall).
FLOODED_ROAD_DEPTH_M = 0.3

#: A shelter is an island at the peak when the dry roads around it hold less than this
#: share of the length of the largest dry part of the network (or its own road floods).
ISLAND_SHARE = 0.1

#: Why demand is not placed (English, Chinese).
REASONS: dict[str, tuple[str, str]] = {
    "no_capacity": (
        "every shelter within the walking limit is full",
        "步行范围内的避难所已满，需车辆转运至更远的避难所",
    ),
    "needs_transport": (
        "no shelter within the walking limit: needs a vehicle or a boat",
        "步行范围内没有避难所，需车辆或舟艇转运",
    ),
    "no_route": (
        "no road leads to an open shelter, even before the flood",
        "没有道路通往开放的避难所（洪水前亦然），需舟艇或其他方式转移",
    ),
    "cut_off": (
        "the roads are flooded at the peak (plan on the peak network)",
        "洪峰时道路受淹，无法步行到达避难所（需提前转移或舟艇救援）",
    ),
}
_COLOUR_ZH = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝", "none": "无"}
_NETWORKS = ("pre_flood", "peak")


# --------------------------------------------------------------------------- result


@dataclass
class EvacuationPlan:
    """Result of :func:`plan_evacuation`.

    Attributes
    ----------
    assignments : pandas.DataFrame
        One row per demand unit placed in a shelter within the walking limit:
        ``building_id``, ``unit``, ``grid_code``, ``community_code``, ``colour``,
        ``colour_zh``, ``depth_m``, ``floor_from``, ``floor_to``, ``floors`` (e.g.
        ``"1-2"``), ``households``, ``persons``, ``shelter_id``, ``shelter``,
        ``route_length_m``, ``travel_time_min`` (walking, free flow),
        ``arrival_time_min`` (with the congestion allowance), ``wave`` (1 leaves
        first), ``cut_stage`` (stage of the flood's rise at which the route is cut: 0 =
        start, 1 = peak; above 1 or empty: open at the peak), ``cut_level_m`` (the water
        level then, with a DEM and a water level), ``cut_at_peak``, ``cut_road`` (where
        it is cut first), ``cut_time_h``, ``leave_by_h`` (hours after the start) and
        ``leave_by`` (clock time) with a rise rate or a hydrograph, ``warning`` and
        ``warning_zh`` ("route cut at the peak; leave with wave N"), ``status``
        (``placed``), ``lon``, ``lat`` (building centroid, WGS84).
    unplaced : pandas.DataFrame
        The same columns for the other demand units, plus ``reason`` (``no_capacity``,
        ``needs_transport``, ``no_route``; ``cut_off`` on the peak network), ``reason_zh``,
        ``reason_en``, ``nearest_shelter_id``, ``nearest_shelter``,
        ``nearest_distance_m`` (by road; straight line for ``no_route``). For
        ``no_capacity`` and ``needs_transport`` units, ``shelter_id``/``shelter``/
        ``route_length_m`` are the shelter with room they are driven to (places kept
        for them; empty when no shelter has room), and the wave and cut stage are those
        of that road; otherwise the wave is that of the building's own door.
    shelters : geopandas.GeoDataFrame
        ``shelter_id``, ``name``, ``type``, ``capacity``, ``capacity_source``
        (``given``/``area_estimate``), ``depth_m`` (peak), ``status`` (``open`` or
        ``flooded``: closed), ``island_at_peak`` (dry, but its roads are cut at the
        peak), ``load`` (persons walking there), ``households``, ``units``,
        ``pct_used``, ``transport_load`` (persons driven there), ``geometry``.
    routes : geopandas.GeoDataFrame
        One row per (building, shelter): ``building_id``, ``grid_code``, ``colour``,
        ``shelter_id``, ``shelter``, ``mode`` (``walk``/``vehicle``), ``units``,
        ``households``, ``persons``, ``route_length_m``, ``travel_time_min``,
        ``arrival_time_min``, ``wave``, ``cut_stage``, ``cut_level_m``, ``cut_at_peak``,
        ``geometry`` (building -> road -> shelter, metric CRS; see
        :meth:`routes_wgs84`).
    impassable : geopandas.GeoDataFrame
        Road edges flooded at the peak: ``edge``, ``u``, ``v``, ``highway``, ``name``,
        ``length_m``, ``depth_max_m``, ``cut_stage``, ``geometry``.
    roads_used : geopandas.GeoDataFrame
        Road edges walked on (the evacuation roads): ``persons``, ``shelter_id`` (where
        most of them go), ``width_m``, ``queue_min`` (time for them to pass at
        :data:`~gridmap.evacuation.network.PEDESTRIAN_FLOW`).
    buildings : geopandas.GeoDataFrame
        The buildings with households to move (metric CRS): ``colour``, ``grid_code``,
        ``households_to_move``, ``persons_to_move``, ``status`` (``placed``,
        ``partly_placed`` or the reason of the first unit left), ``wave`` (earliest),
        ``cut_stage`` (earliest), ``shelter`` (of the first unit placed).
    clearance_time_min : float
        Minutes until the last placed person reaches a shelter, everyone starting at once.
    crs : pyproj.CRS
        The metric CRS of the geometries.
    params : dict
        The settings used and the step timings.
    solver : dict
        Facts of the walking assignment (:func:`~gridmap.evacuation.assignment.assign`)
        and, under ``transport``, of the vehicle assignment.
    notes : list of str
        What was assumed, and what the planner should know.
    roads : geopandas.GeoDataFrame or None
        Every road edge: ``edge``, ``u``, ``v``, ``highway``, ``name``, ``length_m``,
        ``depth_max_m`` (peak), ``cut_stage`` (empty: never cut), ``flooded_at_peak``,
        ``persons`` (walking on it), ``geometry``.
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
    roads: gpd.GeoDataFrame | None = None

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"EvacuationPlan({s['placed_persons']:,} of {s['persons']:,} persons placed "
            f"({100 * s['placed_share']:.1f} %) in {s['shelters_used']} shelters, "
            f"{s['waves']} waves; not placed: {s['needs_transport_persons']:,} need "
            f"transport, {s['no_capacity_persons']:,} no capacity, "
            f"{s['no_route_persons']:,} no route, {s['cut_off_persons']:,} cut off; "
            f"clearance {s['clearance_time_min']:.0f} min)"
        )

    def summary(self) -> dict[str, Any]:
        """Headline figures of the plan.

        Returns
        -------
        dict
            ``demand_units``, ``households``, ``persons``; ``placed_units``,
            ``placed_households``, ``placed_persons`` and ``placed_share`` (of the
            persons); for each reason (``no_capacity``, ``needs_transport``,
            ``no_route``, ``cut_off``) ``<reason>_units``, ``_households``,
            ``_persons``; ``transport_placed_persons`` (driven to a shelter with room);
            ``waves``, ``persons_by_wave`` ({wave: persons, all demand}),
            ``cut_at_peak_persons`` (placed on routes cut at the peak);
            ``too_late_persons`` (leave-by time before the start); ``shelters``,
            ``shelters_open``, ``shelters_used``, ``shelters_island_at_peak``,
            ``capacity_open``, ``mean_travel_time_min``, ``max_travel_time_min``,
            ``max_walk_min``, ``clearance_time_min``, ``impassable_edges``,
            ``impassable_km``, ``network``, ``solver``.
        """
        return outputs.summary(self)

    def tasks_by_grid(self) -> pd.DataFrame:
        """Task sheets of the grid workers: every demand unit, grid by grid, by wave.

        See :func:`gridmap.evacuation.outputs.tasks_by_grid`.
        """
        return outputs.tasks_by_grid(self)

    def grid_waves(self) -> pd.DataFrame:
        """Households per grid, wave and shelter (the organiser's table).

        See :func:`gridmap.evacuation.outputs.grid_waves`.
        """
        return outputs.grid_waves(self)

    def routes_wgs84(self) -> gpd.GeoDataFrame:
        """Routes in WGS84 (EPSG:4326) for publishing."""
        return to_wgs84(self.routes, "routes")

    def shelter_table(self) -> pd.DataFrame:
        """Shelters as a table (no geometry) with ``lon``/``lat``, fullest first."""
        return outputs.shelter_table(self)


# --------------------------------------------------------------------------- helpers


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


def _check(
    speed_kmh: float,
    max_walk_min: float,
    waves: int,
    shelter_m2_per_person: float | None,
    congestion: float | str,
    network: str,
) -> float:
    if not speed_kmh > 0:
        raise InputError(f"speed_kmh must be > 0, got {speed_kmh}", source="speed_kmh")
    if not max_walk_min > 0:
        raise InputError(f"max_walk_min must be > 0, got {max_walk_min}", source="max_walk_min")
    if not (isinstance(waves, int | np.integer) and waves >= 1):
        raise InputError(f"waves must be an integer >= 1, got {waves!r}", source="waves")
    if network not in _NETWORKS:
        raise InputError(
            f"network must be one of {', '.join(_NETWORKS)}, got {network!r}", source="network"
        )
    m2pp = float(
        shelter_m2_per_person if shelter_m2_per_person is not None else SHELTER_M2_PER_PERSON
    )
    if not m2pp > 0:
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
    return m2pp


def _hazard_sources(graded: Any, depth: Any) -> list[dict[str, Any]]:
    if depth is None:
        return list(getattr(graded, "sources", []) or [])
    items = depth if isinstance(depth, list | tuple) else [depth]
    from pathlib import Path

    return [{"kind": "depth", "path": Path(p), "name": f"depth:{Path(p).name}"} for p in items]


def _island(net: RoadNetwork, flooded: np.ndarray, s_acc: Access) -> np.ndarray:
    """Shelters cut off at the peak: their access road floods, or the dry roads around
    them are a pocket (less than :data:`ISLAND_SHARE` of the length of the largest dry
    part of the network)."""
    if len(s_acc.edge) == 0:
        return np.zeros(0, dtype=bool)
    dry = ~flooded
    label = net.components(dry)
    edge_label = label[net.u]
    size = np.bincount(edge_label[dry], weights=net.length[dry], minlength=label.max() + 1)
    e = s_acc.edge
    small = size[edge_label[e]] < ISLAND_SHARE * size.max(initial=0.0)
    return flooded[e] | small


def _door_stage(rise: FloodRise, points: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Earliest cut stage at a building: over its centroid and its outline's vertices
    (the worst water anywhere at the building, as in the grading)."""
    if len(points) == 0:
        return np.empty(0)
    ring = shapely.get_exterior_ring(shapely.get_parts(geoms, return_index=True)[0])
    parts_of = shapely.get_parts(geoms, return_index=True)[1]
    xy, idx = shapely.get_coordinates(ring, return_index=True)
    owner = np.r_[np.arange(len(points)), parts_of[idx]]
    allxy = np.vstack([shapely.get_coordinates(points), xy])
    stage, _ = rise.at(allxy[:, 0], allxy[:, 1])
    out = np.full(len(points), np.inf)
    np.minimum.at(out, owner, stage)
    return out


def _names(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.full(len(idx), None, dtype=object)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


# --------------------------------------------------------------------------- main


def plan_evacuation(
    graded: Any,
    roads: Any,
    shelters: Any,
    *,
    depth: str | os.PathLike | list | None = None,
    who: Who = None,
    persons_per_household: float | None = None,
    region: str | None = None,
    network: str = "pre_flood",
    speed_kmh: float = WALKING_SPEED_KMH,
    max_walk_min: float = MAX_WALK_MIN,
    flooded_road_depth: float | None = FLOODED_ROAD_DEPTH_M,
    waves: int = DEFAULT_WAVES,
    rise_rate: float | None = None,
    hydrograph: Any = None,
    warning_time: Any = None,
    start_level: float | None = None,
    shelter_m2_per_person: float | None = None,
    congestion: float | str = "bottleneck",
    transport: bool = True,
    network_type: str = "walking",
    snap_tolerance: float = SNAP_TOLERANCE_M,
    sample_spacing: float = SAMPLE_SPACING_M,
    time_limit: float = 5.0,
) -> EvacuationPlan:
    """Plan the evacuation before the water comes: who moves, when, to which shelter, by which road.

    Parameters
    ----------
    graded : gridmap.FloodGrading
        Result of :func:`gridmap.grade_flood` (from a plan, to get the grids).
    roads : networkx graph, path or geopandas.GeoDataFrame
        Road network: an osmnx/networkx graph, a GraphML file, an OSM ``.pbf``
        extract, or a line layer (noded at crossings); see :mod:`gridmap.roads`.
    shelters : geopandas.GeoDataFrame or path
        Points or polygons with ``name``, ``type`` and ``capacity`` (persons); a
        missing capacity is estimated from the floor area (see
        :func:`~gridmap.evacuation.shelters.read_shelters`).
    depth : path or list of paths, optional
        Peak flood-depth rasters for the roads. By default the grading's hazard sources
        (depth rasters, flood extents with a depth, a DEM with a water level or river
        stages); ``[]``: the roads never flood.
    who : None, colour(s) or callable
        Who moves (:func:`~gridmap.evacuation.demand.demand_units`); default every
        household on a flooded floor.
    persons_per_household : float, optional
        Default: the households setting (:func:`gridmap.households.persons_per_household`)
        of `region`, else the grading's (the same setting, China 2.62 by default).
    region : str, optional
        Region of the households setting (``"CN"``, ``"ID"``, ...; ``"auto"``: the
        region that holds the buildings).
    network : {"pre_flood", "peak"}
        ``"pre_flood"`` (default): routes on the roads before the flood (people leave on
        the warning), everyone who must move is placed, and every route gets the stage
        of the rise at which it is cut, which orders the departure waves.
        ``"peak"``: routes on the roads still passable at the peak; demand with no such
        road is ``cut_off``.
    speed_kmh : float
        Walking speed (default 4 km/h).
    max_walk_min : float
        Longest walk to a shelter (default 60 min, i.e. 4 km at 4 km/h, free-flow time).
        Every shelter within it is a candidate; demand with none is ``needs_transport``.
    flooded_road_depth : float or None
        Depth (m) from which a road is impassable (default 0.3 m); None: roads are
        never cut. A shelter with water this deep at the peak is closed (``flooded``).
    waves : int
        Number of departure waves (default 3).
    rise_rate : float, optional
        Rise of the water (m/h): gives cut times and leave-by times
        (:func:`~gridmap.evacuation.timing.rise_clock`).
    hydrograph : table, mapping, pairs or CSV path, optional
        Water level over time (instead of `rise_rate`).
    warning_time : date and time, optional
        Clock time of hour 0 (the warning).
    start_level : float, optional
        Water level (m) at the start, with a DEM and a water level (default: the lowest
        ground where the water enters).
    shelter_m2_per_person : float, optional
        Floor area per person for estimated capacities (default 2.0 m²).
    congestion : float or "bottleneck"
        Congestion allowance of the arrival time: ``"bottleneck"`` (default) adds the
        time the busiest road of the route needs to let everyone routed over it pass
        (:data:`~gridmap.evacuation.network.PEDESTRIAN_FLOW` persons per metre of width
        per second, everyone leaving at once: an upper bound); a number multiplies the
        walking times.
    transport : bool
        Find the shelter with room for demand that cannot walk to one (``no_capacity``,
        ``needs_transport``), by road with no distance limit (default True).
    network_type, snap_tolerance
        As in :func:`gridmap.read_roads`.
    sample_spacing : float
        Spacing (m) of the flood samples along the roads (default 10 m).
    time_limit : float
        Time limit (s) of each MIP solve (default 5 s); ``solver`` reports the LP
        bound and the gap of the result.

    Returns
    -------
    EvacuationPlan

    Raises
    ------
    InputError, SchemaError, CRSError
        For unusable inputs (the message names the file, column or row).

    Notes
    -----
    The steps, one module each of :mod:`gridmap.evacuation`: **demand** (who moves,
    units never split), **network** (access, walking distances within the limit,
    routes), **shelters** (capacities; a shelter in water at the peak is closed, a dry
    one whose roads flood stays open, flagged ``island_at_peak``), **timing** (cut stage
    of every road, route and door; waves; clock), **assignment** (optimal over every
    shelter within the walking limit, HiGHS), **outputs** (tables, maps).

    Every demand unit is in ``assignments`` or in ``unplaced`` with its true reason,
    never dropped, and every one has a wave: that of its route, or of its own door.
    """
    if not hasattr(graded, "buildings") or not hasattr(graded, "households_to_move"):
        raise InputError(
            "graded must be a FloodGrading (gridmap.grade_flood)", source="plan_evacuation"
        )
    m2pp = _check(speed_kmh, max_walk_min, waves, shelter_m2_per_person, congestion, network)
    pph = household_persons(graded, persons_per_household, region)
    speed = speed_kmh / 3.6
    walk_m = max_walk_min * 60 * speed
    clock = _Clock()
    buildings = graded.buildings
    require_crs(buildings, "buildings")
    crs = metric_crs(buildings, "buildings")
    demand = demand_units(graded, who, pph)
    clock.lap("demand")
    net = road_network(
        roads,
        crs=crs,
        default_crs=buildings.crs,
        network_type=network_type,
        snap_tolerance=snap_tolerance,
    )
    if net.n_edges == 0:
        raise InputError("the road network has no edges", source=net.source)
    clock.lap("road network")
    sh = read_shelters(shelters, crs, m2pp)
    clock.lap("shelters")

    # the flood's rise on the roads, at the doors and at the shelters
    sources = _hazard_sources(graded, depth) if flooded_road_depth is not None else []
    rise = flood_rise(
        sources, CRS.from_user_input(crs), flooded_road_depth, start_level=start_level
    )
    profile = EdgeProfile.sample(net, rise, sample_spacing)
    flooded = profile.edge_stage <= 1.0
    s_pts = shelter_points(sh)
    s_xy = shapely.get_coordinates(s_pts)
    s_stage, s_depth = rise.at(s_xy[:, 0], s_xy[:, 1])
    ub = pd.unique(demand["building_id"]) if len(demand) else np.empty(0, dtype=object)
    pos_of = pd.Series(
        np.arange(len(buildings)), index=buildings["building_id"].astype(str).to_numpy()
    )
    b_rows = pos_of.reindex(ub).to_numpy().astype(np.int64)
    b_geom = to_metric(buildings.iloc[b_rows], crs, "buildings").geometry.to_numpy()
    b_pts = shapely.centroid(b_geom)
    b_xy = shapely.get_coordinates(b_pts).reshape(-1, 2)
    b_stage = _door_stage(rise, b_pts, b_geom)
    clock_ = rise_clock(rise, rise_rate=rise_rate, hydrograph=hydrograph, warning_time=warning_time)
    clock.lap("flood rise")

    # access, shelter status
    b_acc = attach(b_pts, net)
    s_acc = attach(s_pts, net)
    unit_b = pd.Index(ub).get_indexer(demand["building_id"]) if len(demand) else np.empty(0, int)
    cap = sh["capacity"].to_numpy(dtype=np.int64)
    status = np.where(s_stage <= 1.0, "flooded", "open").astype(object)
    is_open = (status == "open") & (cap > 0)
    sh["depth_m"] = np.round(s_depth, 3)
    sh["status"] = status
    sh["island_at_peak"] = _island(net, flooded, s_acc) & (status == "open")
    passable = ~flooded if network == "peak" else np.ones(net.n_edges, dtype=bool)
    clock.lap("access")

    # walking: every shelter within the limit
    open_idx = np.flatnonzero(is_open)
    needed = np.r_[net.u[b_acc.edge], net.v[b_acc.edge]]
    rt = router(net, passable, s_acc, open_idx, needed, limit=walk_m)
    pg, ps, pm = pairs_within(rt, b_acc, np.arange(len(ub)), walk_m)
    clock.lap("walking distances")
    persons = demand["persons"].to_numpy(dtype=np.int64)
    households = demand["households"].to_numpy(dtype=np.int64)
    weight = demand["colour"].map(PRIORITY_WEIGHT).fillna(1).to_numpy(dtype=np.int64)
    choice, solver = assign(
        persons,
        weight,
        unit_b,
        pg,
        ps,
        pm / speed,
        np.where(is_open, cap, 0),
        exact_max_pairs=EXACT_MAX_PAIRS,
        time_limit=time_limit,
    )
    clock.lap("assignment")

    # reasons for the rest
    n_units = len(demand)
    has_pair = np.zeros(len(ub), dtype=bool)
    has_pair[pg] = True
    left = np.flatnonzero(choice < 0)
    reason = np.full(n_units, None, dtype=object)
    near_s, near_m = nearest_shelter(net, passable, s_acc, open_idx, b_acc, np.arange(len(ub)))
    reason[left] = np.where(has_pair[unit_b[left]], "no_capacity", "needs_transport")
    no_road = left[~np.isfinite(near_m[unit_b[left]])]
    if len(no_road):
        if network == "peak":
            all_roads = np.ones(net.n_edges, dtype=bool)
            _, dry_m = nearest_shelter(net, all_roads, s_acc, open_idx, b_acc, np.arange(len(ub)))
            reason[no_road] = np.where(np.isfinite(dry_m[unit_b[no_road]]), "cut_off", "no_route")
        else:
            reason[no_road] = "no_route"
    if len(open_idx) and len(ub):
        # no road: the nearest open shelter in a straight line
        tree = shapely.STRtree(s_pts[open_idx])
        qi, qj = tree.query_nearest(b_pts, all_matches=False)
        straight = np.full(len(ub), -1, dtype=np.int64)
        straight[qi] = open_idx[qj]
        off = ~np.isfinite(near_m)
        near_s = np.where(off, straight, near_s)
        near_m = np.where(
            off & (straight >= 0), shapely.distance(b_pts, s_pts[np.maximum(straight, 0)]), near_m
        )

    # vehicles: the shelter with room for those who cannot walk to one
    residual = np.where(is_open, cap, 0) - np.bincount(
        choice[choice >= 0], weights=persons[choice >= 0], minlength=len(cap)
    ).astype(np.int64)
    t_choice = np.full(n_units, -1, dtype=np.int64)
    t_solver: dict[str, Any] = {}
    drive = np.flatnonzero(np.isin(reason, ["no_capacity", "needs_transport"]))
    rt_t = None
    if transport and len(drive) and (residual > 0).any():
        room = np.flatnonzero(is_open & (residual > 0))
        bl = np.unique(unit_b[drive])
        tg, ts, tm = all_pairs(net, passable, s_acc, room, b_acc, bl)
        got, t_solver = assign(
            persons[drive],
            weight[drive],
            np.searchsorted(bl, unit_b[drive]),
            tg,
            ts,
            tm / speed,
            np.maximum(residual, 0),
            exact_max_pairs=EXACT_MAX_PAIRS,
            time_limit=time_limit,
        )
        t_choice[drive] = got
        if (got >= 0).any():
            ends = np.r_[net.u[b_acc.edge[bl]], net.v[b_acc.edge[bl]]]
            rt_t = router(net, passable, s_acc, np.unique(got[got >= 0]), ends)
        clock.lap("transport")

    # routes, cut stages, waves, clock
    placed = np.flatnonzero(choice >= 0)
    rr = route_details(
        rt, b_acc, b_xy, s_xy, unit_b[placed], choice[placed], persons[placed],
        profile, b_stage, s_stage,
    )  # fmt: skip
    travel_s = rr["metres"] / speed
    arrival_s = (
        travel_s + rr["queue_s"] if congestion == "bottleneck" else travel_s * float(congestion)
    )
    driven = np.flatnonzero(t_choice >= 0)
    rv = None
    if len(driven):
        rv = route_details(
            rt_t, b_acc, b_xy, s_xy, unit_b[driven], t_choice[driven], persons[driven],
            profile, b_stage, s_stage,
        )  # fmt: skip
    clock.lap("routes")

    u_stage = b_stage[unit_b].astype(float) if n_units else np.empty(0)
    u_metres = np.full(n_units, np.nan)
    u_travel = np.full(n_units, np.nan)
    u_arrival = np.full(n_units, np.nan)
    u_cut_edge = np.full(n_units, -1, dtype=np.int64)
    u_shelter = np.where(choice >= 0, choice, t_choice)
    if len(placed):
        u_stage[placed] = rr["stage"][rr["route_of"]]
        u_cut_edge[placed] = rr["cut_edge"][rr["route_of"]]
        u_metres[placed] = rr["metres"]
        u_travel[placed] = travel_s
        u_arrival[placed] = arrival_s
    if rv is not None:
        u_stage[driven] = rv["stage"][rv["route_of"]]
        u_cut_edge[driven] = rv["cut_edge"][rv["route_of"]]
        u_metres[driven] = rv["metres"]
    u_wave = _waves(u_stage, waves, clock_)
    rr["e_wave"] = _waves(rr["e_stage"], waves, clock_, first=u_stage)
    timing = _timing(u_stage, u_wave, u_arrival, u_cut_edge, net, rise, clock_)

    # ---- tables
    base = outputs.base_table(demand, unit_b, b_pts, crs)
    ids = sh["shelter_id"].to_numpy(dtype=object)
    names = sh["name"].to_numpy(dtype=object)
    base["shelter_id"] = _names(ids, u_shelter)
    base["shelter"] = _names(names, u_shelter)
    base["route_length_m"] = np.round(u_metres, 1)
    base["travel_time_min"] = np.round(u_travel / 60, 2)
    base["arrival_time_min"] = np.round(u_arrival / 60, 2)
    for col, values in timing.items():
        base[col] = values
    base["status"] = np.where(choice >= 0, "placed", reason)
    assignments = base.iloc[placed][outputs.TABLE_COLUMNS].reset_index(drop=True)
    un = base.iloc[left][outputs.TABLE_COLUMNS].copy()
    un["reason"] = reason[left]
    un["reason_en"] = [REASONS[r][0] for r in reason[left]]
    un["reason_zh"] = [REASONS[r][1] for r in reason[left]]
    nb = near_s[unit_b[left]] if len(left) else np.empty(0, dtype=np.int64)
    un["nearest_shelter_id"] = _names(ids, nb)
    un["nearest_shelter"] = _names(names, nb)
    un["nearest_distance_m"] = np.round(near_m[unit_b[left]], 1) if len(left) else []
    unplaced = un.reset_index(drop=True)

    sh = outputs.shelter_loads(sh, choice, t_choice, persons, households)
    routes = outputs.route_frame(
        rr, rv, demand, unit_b, ub, placed, driven, base, ids, names, speed, arrival_s, crs
    )
    imp = np.flatnonzero(flooded)
    impassable = net.edges_frame(imp)
    impassable.insert(
        len(impassable.columns) - 1, "depth_max_m", np.round(profile.edge_depth[imp], 3)
    )
    impassable.insert(
        len(impassable.columns) - 1, "cut_stage", np.round(profile.edge_stage[imp], 3)
    )
    roads_used = outputs.roads_used(net, rr, ids)
    all_roads = net.edges_frame()
    geom = all_roads.pop("geometry")
    all_roads["depth_max_m"] = np.round(profile.edge_depth, 3)
    all_roads["cut_stage"] = np.where(
        np.isfinite(profile.edge_stage), np.round(profile.edge_stage, 3), np.nan
    )
    all_roads["flooded_at_peak"] = flooded
    all_roads["persons"] = rr["e_persons"].astype(np.int64)
    all_roads = gpd.GeoDataFrame(all_roads, geometry=geom, crs=net.crs)
    bl_frame = outputs.building_frame(base, unit_b, ub, b_geom, crs)
    clock.lap("tables")

    params = {
        "persons_per_household": pph,
        "region": region,
        "network": network,
        "speed_kmh": float(speed_kmh),
        "max_walk_min": float(max_walk_min),
        "max_walk_m": round(walk_m, 1),
        "flooded_road_depth": flooded_road_depth,
        "waves": int(waves),
        "shelter_m2_per_person": m2pp,
        "congestion": congestion,
        "pedestrian_flow": PEDESTRIAN_FLOW,
        "sample_spacing": float(sample_spacing),
        "hazard_sources": rise.sources,
        "cut_model": _cut_model(rise),
        "peak_level_m": rise.peak_level,
        "start_level_m": rise.start_level,
        "clock": clock_.source if clock_ is not None else None,
        "warning_time": str(clock_.start)
        if clock_ is not None and clock_.start is not None
        else None,
        "who": who_label(who),
        "road_nodes": net.n_nodes,
        "road_edges": net.n_edges,
        "road_source": net.source,
        "timings_s": clock.total(),
    }
    solver["transport"] = t_solver
    plan = EvacuationPlan(
        assignments=assignments,
        unplaced=unplaced,
        shelters=sh,
        routes=routes,
        impassable=impassable,
        roads_used=roads_used,
        buildings=bl_frame,
        clearance_time_min=float(np.nanmax(u_arrival) / 60) if len(placed) else 0.0,
        crs=crs,
        params=params,
        solver=solver,
        roads=all_roads,
    )
    plan.notes = outputs.notes(plan, net, flooded, b_acc)
    return plan


def _waves(
    stage: np.ndarray, n: int, clock: RiseClock | None, first: np.ndarray | None = None
) -> np.ndarray:
    """Waves of cut stages, by equal stretches of time when there is a clock.

    `first` (the units' stages) sets where the first wave starts, so that roads get the
    waves of the units walking on them.
    """
    ref = np.asarray(stage if first is None else first, dtype=float)
    if clock is None:
        values, peak, lead = np.asarray(stage, dtype=float), 1.0, ref
    else:
        values, peak, lead = clock.hours(stage), clock.peak_hours, clock.hours(ref)
        values = np.where(np.isfinite(values), values, np.inf)
        lead = np.where(np.isfinite(lead), lead, np.inf)
    cut = np.isfinite(lead) & (lead <= peak)
    if not cut.any():
        return np.full(len(values), n, dtype=np.int64)
    start = float(lead[cut].min())
    # shift so that the first unit's cut is the start of the first wave
    both = waves_of(np.r_[start, values], n, peak=peak)
    return both[1:]


def _cut_model(rise: FloodRise) -> str:
    if not (rise.depth_sources or rise.dem):
        return "none (roads never cut)"
    parts = []
    if rise.depth_sources:
        parts.append("depth in proportion to the peak depth (cut_stage = threshold / depth)")
    if rise.dem:
        parts.append("water level rising over the DEM, connected flooding (cut_level_m)")
    return "; ".join(parts)


def _timing(
    stage: np.ndarray,
    wave: np.ndarray,
    arrival_s: np.ndarray,
    cut_edge: np.ndarray,
    net: RoadNetwork,
    rise: FloodRise,
    clock: RiseClock | None,
) -> dict[str, np.ndarray]:
    """Cut, wave, clock and warning columns of the demand units."""
    n = len(stage)
    finite = np.isfinite(stage)
    cut_at_peak = stage <= 1.0
    level = rise.level_of(stage)
    road = np.full(n, None, dtype=object)
    has = cut_edge >= 0
    road[has] = net.name[cut_edge[has]]
    road[has & pd.isna(road)] = "(unnamed road)"
    if clock is not None:
        cut_h = clock.hours(stage)
        leave_h = cut_h - np.nan_to_num(arrival_s, nan=0.0) / 3600
        leave = clock.clock(leave_h)
    else:
        cut_h = leave_h = np.full(n, np.nan)
        leave = np.full(n, None, dtype=object)
    warn = np.full(n, None, dtype=object)
    warn_zh = np.full(n, None, dtype=object)
    i = np.flatnonzero(cut_at_peak)
    if len(i):
        fmt = np.char.mod
        st, wv = fmt("%.2f", stage[i]), wave[i].astype(str)
        pct = fmt("%d%%", np.round(100 * stage[i]).astype(np.int64))
        lvl_ok = np.isfinite(level[i])
        lv = np.where(lvl_ok, np.char.add(", water level ", fmt("%.2f m", level[i])), "")
        lv_zh = np.where(lvl_ok, np.char.add("，水位", fmt("%.2f m时", level[i])), "")
        rd = road[i].astype(str)
        at = np.where(has[i], np.char.add(" at ", rd), " at the door")
        at_zh = np.where(has[i], np.char.add(np.char.add("（", rd), "）"), "（楼门口）")
        lb = leave[i].astype(str)
        hours = fmt("%.1f", np.nan_to_num(leave_h[i]))
        by = np.where(
            leave[i] != None,  # noqa: E711 - element-wise
            np.char.add(" by ", lb),
            np.where(
                np.isfinite(leave_h[i]), np.char.add(np.char.add(" within ", hours), " h"), ""
            ),
        )
        by_zh = np.where(
            leave[i] != None,  # noqa: E711 - element-wise
            np.char.add(np.char.add("，", lb), "前出发"),
            np.where(
                np.isfinite(leave_h[i]), np.char.add(np.char.add("，", hours), "小时内出发"), ""
            ),
        )
        en = ["this route is cut at the peak (stage ", st, lv, at, "); leave with wave ", wv, by]
        zh = [
            "该路线洪峰时受淹",
            at_zh,
            "（涨水进度",
            pct,
            lv_zh,
            "中断）；须第",
            wv,
            "批转移",
            by_zh,
        ]
        warn[i] = _join(en)
        warn_zh[i] = _join(zh)
    return {
        "wave": wave,
        "cut_stage": np.where(finite, np.round(stage, 3), np.nan),
        "cut_level_m": np.round(level, 2),
        "cut_at_peak": cut_at_peak,
        "cut_road": road,
        "cut_time_h": np.round(cut_h, 2),
        "leave_by_h": np.round(leave_h, 2),
        "leave_by": leave,
        "warning": warn,
        "warning_zh": warn_zh,
    }


def _join(parts: list) -> np.ndarray:
    out = np.asarray(parts[0]).astype(object)
    for p in parts[1:]:
        out = out + np.asarray(p).astype(object)
    return out


def run_evacuation(
    plan_path: str | os.PathLike,
    depth: str | os.PathLike | list | None,
    roads: Any,
    shelters: Any,
    out: str | os.PathLike,
    *,
    road_depth: str | os.PathLike | list | None = None,
    dem: str | os.PathLike | None = None,
    water_level: float | str | None = None,
    tiles: str | None = None,
    **kwargs: Any,
):
    """Grade a saved plan for a flood and write its evacuation plan.

    What ``gridmap evacuate -p plan.gpkg --depth D.tif --roads R --shelters S -o out/``
    runs: :func:`gridmap.read_plan`, :func:`gridmap.grade_flood` with `depth` (and
    `dem` + `water_level`), :func:`plan_evacuation` (roads flooded by `road_depth`, by
    default the grading's sources), :func:`~gridmap.evacuation.write_evacuation_outputs`.

    Parameters
    ----------
    plan_path : path
        A plan GeoPackage (``Plan.to_file``).
    depth : path or list of paths, or None
        Peak flood-depth rasters for grading.
    roads, shelters
        As in :func:`plan_evacuation`.
    out : path
        Output folder.
    road_depth : path or list of paths, optional
        Depth rasters for the roads, when they differ from the grading's.
    dem, water_level : optional
        A DEM and the peak water level (m, or a water-surface raster): grading and cut
        levels from the rising water.
    tiles : str or None
        Base map of the evacuation map (None: none, fully offline).
    **kwargs
        Passed to :func:`plan_evacuation`.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from ..flood import grade_flood
    from ..plan import read_plan

    if depth is None and dem is None:
        raise InputError("give --depth rasters, or --dem with --water-level", source="evacuate")
    plan = read_plan(plan_path)
    graded = grade_flood(plan, depth=depth, dem=dem, water_level=water_level)
    evac = plan_evacuation(graded, roads, shelters, depth=road_depth, **kwargs)
    log.info("%r", evac)
    return outputs.write_evacuation_outputs(evac, out, tiles=tiles)
