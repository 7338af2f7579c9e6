"""Step 6 of evacuation planning: tables for the grid workers, maps, files.

* :func:`tasks_by_grid`: the task sheet of every grid, by departure wave.
* :func:`grid_waves`: households per grid, wave and shelter (the organiser's table).
* :func:`evacuation_map`: a folium map (placed buildings coloured by wave, the buildings
  not placed by reason, shelters sized by load, routes and evacuation roads by wave,
  flooded roads in a colour no route uses) that works offline once written by
  :func:`write_evacuation_outputs` (Leaflet is inlined from the project's vendored copy,
  no CDN).
* :func:`write_evacuation_outputs`: every file.
"""

from __future__ import annotations

import html as _html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..crs import to_wgs84
from ..io import write_table
from ..maps import add_tiles, legend_box, legend_row, save_html
from ..roads import RoadNetwork
from .network import Access

if TYPE_CHECKING:  # pragma: no cover
    from .planner import EvacuationPlan

__all__ = [
    "FLOODED_ROAD_COLOUR",
    "REASON_COLOURS",
    "TABLE_COLUMNS",
    "WAVE_COLOURS",
    "evacuation_map",
    "grid_waves",
    "tasks_by_grid",
    "wave_colour",
    "write_evacuation_outputs",
]

#: Colours of the departure waves (wave 1 first), for buildings, routes and roads.
#: Red, orange, yellow and blue are kept for the flood grades.
WAVE_COLOURS = [
    "#762a83",
    "#1b7837",
    "#c51b7d",
    "#5aae61",
    "#9970ab",
    "#00441b",
    "#de77ae",
    "#40004b",
]

#: Colour of the roads flooded at the peak (and of the ring of island shelters): the
#: teal of water depth on the flood map, a colour no route uses.
FLOODED_ROAD_COLOUR = "#35978f"

#: Colours of the buildings not placed, by reason.
REASON_COLOURS = {
    "needs_transport": "#000000",
    "no_capacity": "#d9d9d9",
    "no_route": "#737373",
    "cut_off": "#252525",
}

#: Outline of the buildings not placed (magenta: no wave, reason or flood colour).
_UNPLACED_RING = "#ff00ff"

_REASON_LABELS = {
    "needs_transport": "需车辆/舟艇转运 needs transport",
    "no_capacity": "步行范围内避难所已满 no capacity",
    "no_route": "无道路通往避难所 no route",
    "cut_off": "洪峰时道路受淹 cut off at the peak",
}

#: Columns of the per-unit tables (``assignments``, ``unplaced``).
TABLE_COLUMNS = [
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
    "wave",
    "cut_stage",
    "cut_level_m",
    "cut_at_peak",
    "cut_road",
    "cut_time_h",
    "leave_by_h",
    "leave_by",
    "warning",
    "warning_zh",
    "status",
    "lon",
    "lat",
]

_COLOUR_ZH = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝", "none": "无"}
_RANK = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
_REASONS = ("no_capacity", "needs_transport", "no_route", "cut_off")


def wave_colour(wave: Any) -> str:
    """Colour of a departure wave (1-based)."""
    return WAVE_COLOURS[(int(wave) - 1) % len(WAVE_COLOURS)]


# --------------------------------------------------------------------------- frames


def base_table(
    demand: pd.DataFrame, unit_b: np.ndarray, b_pts: np.ndarray, crs: CRS
) -> pd.DataFrame:
    """The demand units with ``colour_zh``, ``floors`` and ``lon``/``lat``."""
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


def shelter_loads(
    sh: gpd.GeoDataFrame,
    choice: np.ndarray,
    t_choice: np.ndarray,
    persons: np.ndarray,
    households: np.ndarray,
) -> gpd.GeoDataFrame:
    """Shelters with their loads (walking and driven)."""
    n = len(sh)
    ok = choice >= 0
    load = np.bincount(choice[ok], weights=persons[ok], minlength=n).astype(np.int64)
    sh = sh.copy()
    sh["load"] = load
    sh["households"] = np.bincount(choice[ok], weights=households[ok], minlength=n).astype(np.int64)
    sh["units"] = np.bincount(choice[ok], minlength=n).astype(np.int64)
    sh["pct_used"] = np.round(100 * load / np.maximum(sh["capacity"].to_numpy(), 1), 1)
    tk = t_choice >= 0
    sh["transport_load"] = np.bincount(t_choice[tk], weights=persons[tk], minlength=n).astype(
        np.int64
    )
    cols = [
        "shelter_id",
        "name",
        "type",
        "capacity",
        "capacity_source",
        "depth_m",
        "status",
        "island_at_peak",
        "load",
        "households",
        "units",
        "pct_used",
        "transport_load",
        "geometry",
    ]
    return sh[cols]


def route_frame(
    rr: dict[str, Any],
    rv: dict[str, Any] | None,
    demand: pd.DataFrame,
    unit_b: np.ndarray,
    ub: np.ndarray,
    placed: np.ndarray,
    driven: np.ndarray,
    base: pd.DataFrame,
    ids: np.ndarray,
    names: np.ndarray,
    speed: float,
    arrival_s: np.ndarray,
    crs: CRS,
) -> gpd.GeoDataFrame:
    """One row per (building, shelter) route, walking and driven."""
    parts = [_routes_of(rr, placed, base, ub, ids, names, speed, arrival_s, "walk", crs)]
    if rv is not None:
        parts.append(_routes_of(rv, driven, base, ub, ids, names, speed, None, "vehicle", crs))
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs)


def _routes_of(
    rr: dict[str, Any],
    units: np.ndarray,
    base: pd.DataFrame,
    ub: np.ndarray,
    ids: np.ndarray,
    names: np.ndarray,
    speed: float,
    arrival_s: np.ndarray | None,
    mode: str,
    crs: CRS,
) -> gpd.GeoDataFrame:
    rb, rs, route_of = rr["rb"], rr["rs"], rr["route_of"]
    n = len(rb)
    sub = base.iloc[units]
    table = pd.DataFrame(
        {
            "r": route_of,
            "unit": sub["unit"].to_numpy().astype(str),
            "order": sub["unit"].to_numpy(),
            "households": sub["households"].to_numpy(),
        }
    ).sort_values(["r", "order"], kind="stable")
    g = table.groupby("r")
    idx = np.arange(n)
    first = np.full(n, -1, dtype=np.int64)
    if len(route_of):
        first[route_of[::-1]] = np.arange(len(route_of))[::-1]
    pick = sub.iloc[np.maximum(first, 0)] if n else sub.iloc[:0]
    metres = np.zeros(n)
    metres[route_of] = rr["metres"]
    if arrival_s is not None:
        arrival = np.zeros(n)
        np.maximum.at(arrival, route_of, arrival_s)
        travel = metres / speed / 60
        arrival_min = arrival / 60
    else:
        travel = arrival_min = np.full(n, np.nan)
    return gpd.GeoDataFrame(
        {
            "building_id": ub[rb] if n else np.empty(0, dtype=object),
            "grid_code": pick["grid_code"].to_numpy(),
            "colour": pick["colour"].to_numpy(),
            "shelter_id": ids[rs],
            "shelter": names[rs],
            "mode": mode,
            "units": g["unit"].agg(",".join).reindex(idx).to_numpy(dtype=object),
            "households": g["households"].sum().reindex(idx, fill_value=0).to_numpy(np.int64),
            "persons": rr["r_persons"].astype(np.int64),
            "route_length_m": np.round(metres, 1),
            "travel_time_min": np.round(travel, 2),
            "arrival_time_min": np.round(arrival_min, 2),
            "wave": pick["wave"].to_numpy(),
            "cut_stage": pick["cut_stage"].to_numpy(),
            "cut_level_m": pick["cut_level_m"].to_numpy(),
            "cut_at_peak": pick["cut_at_peak"].to_numpy(dtype=bool),
        },
        geometry=rr["geometry"],
        crs=crs,
    )


def roads_used(net: RoadNetwork, rr: dict[str, Any], ids: np.ndarray) -> gpd.GeoDataFrame:
    """The road edges walked on, with persons, main shelter, width, queue and wave."""
    used = rr["used"]
    out = net.edges_frame(used)
    geometry = out.pop("geometry")
    out["persons"] = rr["e_persons"][used].astype(np.int64)
    out["shelter_id"] = ids[rr["main"]] if len(used) else np.empty(0, dtype=object)
    out["width_m"] = rr["width"][used]
    out["queue_min"] = np.round(rr["queue_edge"][used] / 60, 2)
    out["wave"] = rr["e_wave"][used] if "e_wave" in rr else np.ones(len(used), dtype=np.int64)
    out["geometry"] = geometry
    return gpd.GeoDataFrame(out, geometry="geometry", crs=net.crs)


def building_frame(
    base: pd.DataFrame, unit_b: np.ndarray, ub: np.ndarray, b_geom: np.ndarray, crs: CRS
) -> gpd.GeoDataFrame:
    """One row per building with households to move: status, earliest wave, shelter."""
    nb = len(ub)
    placed = (base["status"] == "placed").to_numpy()
    df = pd.DataFrame(
        {
            "b": unit_b,
            "placed": placed,
            "status": base["status"].to_numpy(),
            "households": base["households"].to_numpy(),
            "persons": base["persons"].to_numpy(),
            "colour": base["colour"].to_numpy(),
            "grid_code": base["grid_code"].to_numpy(),
            "wave": base["wave"].to_numpy(),
            "cut_stage": base["cut_stage"].to_numpy(dtype=float),
            "shelter": np.where(placed, base["shelter"].to_numpy(dtype=object), None),
        }
    )
    g = df.groupby("b")
    idx = np.arange(nb)
    n_placed = g["placed"].sum().reindex(idx, fill_value=0).to_numpy()
    n_all = g.size().reindex(idx, fill_value=0).to_numpy()
    other = df[~df["placed"]].groupby("b")["status"].first().reindex(idx).to_numpy(dtype=object)
    status = np.where(
        n_placed == n_all, "placed", np.where(n_placed > 0, "partly_placed", other)
    ).astype(object)
    return gpd.GeoDataFrame(
        {
            "building_id": ub,
            "colour": g["colour"].first().reindex(idx).to_numpy(),
            "grid_code": g["grid_code"].first().reindex(idx).to_numpy(),
            "households_to_move": g["households"].sum().reindex(idx, fill_value=0).to_numpy(),
            "persons_to_move": g["persons"].sum().reindex(idx, fill_value=0).to_numpy(),
            "status": status,
            "wave": g["wave"].min().reindex(idx).to_numpy(),
            "cut_stage": g["cut_stage"].min().reindex(idx).to_numpy(),
            "shelter": g["shelter"].first().reindex(idx).to_numpy(dtype=object),
        },
        geometry=b_geom,
        crs=crs,
    )


def notes(plan: EvacuationPlan, net: RoadNetwork, flooded: np.ndarray, b_acc: Access) -> list[str]:
    """What was assumed, and what the planner should know."""
    p, s = plan.params, summary(plan)
    out = []
    if flooded.any():
        out.append(
            f"{int(flooded.sum())} of {net.n_edges} road edges are flooded at the peak "
            f"(water >= {p['flooded_road_depth']} m); "
            + (
                "routes avoid them (peak network)"
                if p["network"] == "peak"
                else "routes use the roads before the flood; waves order the departures"
            )
        )
    sh = plan.shelters
    closed = int((sh["status"] == "flooded").sum())
    if closed:
        out.append(f"{closed} shelters stand in flood water at the peak: closed")
    island = int(sh["island_at_peak"].sum())
    if island:
        out.append(
            f"{island} open shelters are islands at the peak (their roads flood): "
            "people must arrive before the cut; supplies by boat"
        )
    est = sh["capacity_source"] == "area_estimate"
    if est.any():
        out.append(
            f"{int(est.sum())} shelter capacities estimated at "
            f"{p['shelter_m2_per_person']:g} m² per person"
        )
    far = int((b_acc.offset > 200).sum())
    if far:
        out.append(f"{far} buildings are more than 200 m from the nearest road (walked straight)")
    for reason in _REASONS:
        if s[f"{reason}_persons"]:
            out.append(f"{s[f'{reason}_persons']:,} persons not placed: {reason}")
    if s["too_late_persons"]:
        out.append(
            f"{s['too_late_persons']:,} persons would have had to leave before the start "
            "of the clock (leave_by_h < 0)"
        )
    return out


# --------------------------------------------------------------------------- tables


def summary(plan: EvacuationPlan) -> dict[str, Any]:
    """Headline figures of a plan (:meth:`EvacuationPlan.summary`)."""
    a, u, sh = plan.assignments, plan.unplaced, plan.shelters
    persons = int(a["persons"].sum() + u["persons"].sum())
    out: dict[str, Any] = {
        "demand_units": len(a) + len(u),
        "households": int(a["households"].sum() + u["households"].sum()),
        "persons": persons,
        "placed_units": len(a),
        "placed_households": int(a["households"].sum()),
        "placed_persons": int(a["persons"].sum()),
        "placed_share": round(float(a["persons"].sum()) / persons, 4) if persons else 1.0,
    }
    for reason in _REASONS:
        r = u[u["reason"] == reason] if len(u) else u
        out[f"{reason}_units"] = len(r)
        out[f"{reason}_households"] = int(r["households"].sum()) if len(r) else 0
        out[f"{reason}_persons"] = int(r["persons"].sum()) if len(r) else 0
    out["transport_placed_persons"] = int(u.loc[u["shelter_id"].notna(), "persons"].sum())
    cols = ["wave", "persons", "leave_by_h"]
    both = pd.concat([d[cols] for d in (a, u) if len(d)] or [a[cols]])
    by_wave = both.groupby("wave")["persons"].sum() if len(both) else pd.Series(dtype=int)
    out["waves"] = int(plan.params.get("waves", 0))
    out["persons_by_wave"] = {int(k): int(v) for k, v in by_wave.items()}
    out["cut_at_peak_persons"] = int(a.loc[a["cut_at_peak"].astype(bool), "persons"].sum())
    late = pd.to_numeric(both["leave_by_h"], errors="coerce") < 0
    out["too_late_persons"] = int(both.loc[late, "persons"].sum())
    is_open = sh["status"] == "open"
    out.update(
        shelters=len(sh),
        shelters_open=int(is_open.sum()),
        shelters_used=int((sh["load"] > 0).sum()),
        shelters_island_at_peak=int(sh["island_at_peak"].sum()),
        capacity_open=int(sh.loc[is_open, "capacity"].sum()),
        mean_travel_time_min=(
            round(float(np.average(a["travel_time_min"], weights=a["persons"])), 1)
            if len(a)
            else 0.0
        ),
        max_travel_time_min=round(float(a["travel_time_min"].max()), 1) if len(a) else 0.0,
        max_walk_min=plan.params.get("max_walk_min"),
        clearance_time_min=round(float(plan.clearance_time_min), 1),
        impassable_edges=len(plan.impassable),
        impassable_km=round(float(plan.impassable["length_m"].sum()) / 1000, 2),
        network=plan.params.get("network"),
        solver=plan.solver.get("method"),
    )
    return out


def tasks_by_grid(plan: EvacuationPlan) -> pd.DataFrame:
    """Task sheets for the grid workers, one block of rows per grid, by departure wave.

    Every demand unit appears once, placed or not. Within a grid the rows are in
    departure order: wave, leave-by time, cut stage, then worst flood colour, lowest
    floor, deepest water, building and unit; ``priority`` numbers them 1, 2, ... per
    grid. Demand units without a grid come last (``grid_code`` empty).

    Returns
    -------
    pandas.DataFrame
        ``grid_code``, ``priority``, ``wave``, ``leave_by``, ``leave_by_h``,
        ``building_id``, ``unit``, ``colour``, ``colour_zh``, ``floors``,
        ``households``, ``persons``, ``shelter_id``, ``shelter``, ``route_length_m``,
        ``travel_time_min``, ``arrival_time_min``, ``cut_stage``, ``cut_level_m``,
        ``cut_road``, ``warning_zh``, ``status``, ``reason_zh``, ``lon``, ``lat``.
    """
    cols = [
        "grid_code",
        "wave",
        "leave_by",
        "leave_by_h",
        "building_id",
        "unit",
        "colour",
        "colour_zh",
        "floors",
        "households",
        "persons",
        "shelter_id",
        "shelter",
        "route_length_m",
        "travel_time_min",
        "arrival_time_min",
        "cut_stage",
        "cut_level_m",
        "cut_road",
        "warning_zh",
        "status",
        "reason_zh",
        "lon",
        "lat",
    ]
    extra = ["floor_from", "depth_m"]
    parts = [
        df.reindex(columns=cols + extra) for df in (plan.assignments, plan.unplaced) if len(df)
    ]
    if not parts:
        return pd.DataFrame(columns=["grid_code", "priority", *cols[1:]])
    t = pd.concat(parts, ignore_index=True)
    t["_rank"] = t["colour"].map(_RANK).fillna(0)
    t = t.sort_values(
        ["grid_code", "wave", "leave_by_h", "cut_stage", "_rank", "floor_from", "depth_m",
         "building_id", "unit"],
        ascending=[True, True, True, True, False, True, False, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)  # fmt: skip
    key = t["grid_code"].fillna("")
    t.insert(1, "priority", t.groupby(key, sort=False).cumcount() + 1)
    return t.drop(columns=["_rank", *extra])


def grid_waves(plan: EvacuationPlan) -> pd.DataFrame:
    """Households per grid, departure wave and shelter: what each grid worker organises.

    Returns
    -------
    pandas.DataFrame
        ``grid_code``, ``wave``, ``shelter_id``, ``shelter``, ``status`` (``placed`` or
        the reason), ``buildings``, ``units``, ``households``, ``persons``, ``leave_by``
        and ``leave_by_h`` (the earliest), ``cut_at_peak`` (any route cut at the peak),
        sorted by grid, wave and shelter.
    """
    t = pd.concat([d for d in (plan.assignments, plan.unplaced) if len(d)] or [plan.assignments])
    cols = [
        "grid_code",
        "wave",
        "shelter_id",
        "shelter",
        "status",
        "buildings",
        "units",
        "households",
        "persons",
        "leave_by",
        "leave_by_h",
        "cut_at_peak",
    ]
    if t.empty:
        return pd.DataFrame(columns=cols)
    t = t.assign(
        grid_code=t["grid_code"].fillna(""),
        shelter_id=t["shelter_id"].fillna(""),
        shelter=t["shelter"].fillna(""),
    )
    g = t.groupby(["grid_code", "wave", "shelter_id", "shelter", "status"], sort=True)
    out = g.agg(
        buildings=("building_id", "nunique"),
        units=("unit", "size"),
        households=("households", "sum"),
        persons=("persons", "sum"),
        leave_by=("leave_by", "min"),
        leave_by_h=("leave_by_h", "min"),
        cut_at_peak=("cut_at_peak", "any"),
    ).reset_index()
    for c in ("grid_code", "shelter_id", "shelter"):
        out[c] = out[c].replace("", None)
    return out[cols]


def shelter_table(plan: EvacuationPlan) -> pd.DataFrame:
    """Shelters as a table (no geometry) with ``lon``/``lat``, fullest first."""
    sh = plan.shelters
    table = pd.DataFrame(sh.drop(columns="geometry"))
    if len(sh):
        pts = to_wgs84(gpd.GeoDataFrame(geometry=sh.geometry.representative_point(), crs=sh.crs))
        table["lon"] = np.round(pts.geometry.x.to_numpy(), 6)
        table["lat"] = np.round(pts.geometry.y.to_numpy(), 6)
    return table.sort_values("pct_used", ascending=False, kind="stable").reset_index(drop=True)


def road_table(plan: EvacuationPlan) -> pd.DataFrame:
    """Evacuation roads by name and shelter: length (m), most persons on an edge, wave."""
    ru = plan.roads_used
    cols = [
        "name",
        "highway",
        "shelter_id",
        "shelter",
        "wave",
        "length_m",
        "persons_max",
        "queue_min_max",
    ]
    if ru.empty:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(ru.drop(columns="geometry"))
    df["name"] = df["name"].fillna("(无名 unnamed)")
    df["highway"] = df["highway"].fillna("")
    g = df.groupby(["name", "highway", "shelter_id"], as_index=False).agg(
        wave=("wave", "min"),
        length_m=("length_m", "sum"),
        persons_max=("persons", "max"),
        queue_min_max=("queue_min", "max"),
    )
    g["shelter"] = g["shelter_id"].map(plan.shelters.set_index("shelter_id")["name"])
    g["length_m"] = g["length_m"].round(1)
    return g[cols].sort_values("persons_max", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- map


def _legend_html(plan: EvacuationPlan) -> str:
    s = summary(plan)
    sw = legend_row

    def ln(style: str, label: str) -> str:
        return legend_row(f"{style};width:22px;height:0", label)

    waves = s["persons_by_wave"]
    items = ["<div>转移楼栋（按批次）Buildings to move, by wave</div>"]
    items += [
        sw(f"background:{wave_colour(w)}", f"第{w}批 wave {w}: {waves.get(w, 0):,} 人 persons")
        for w in range(1, int(plan.params.get("waves", 1)) + 1)
    ]
    for reason, colour in REASON_COLOURS.items():
        if s[f"{reason}_persons"]:
            items.append(
                sw(
                    f"background:{colour};border:2px solid {_UNPLACED_RING}",
                    f"{_REASON_LABELS[reason]}: {s[f'{reason}_persons']:,}",
                )
            )
    items += [
        sw(
            "border-radius:7px;border:2px solid #000;background:#fff",
            "避难所（大小=安置人数）shelter, size = load",
        ),
        sw(
            f"border-radius:7px;border:3px solid {FLOODED_ROAD_COLOUR};background:#fff",
            "洪峰时成孤岛的避难所 island at the peak",
        ),
        sw(
            "border-radius:7px;border:2px solid #555;background:#9e9e9e", "受淹关闭 flooded, closed"
        ),
        ln(
            f"border-top:3px dashed {FLOODED_ROAD_COLOUR}",
            "洪峰时受淹道路 road flooded at the peak",
        ),
        ln(
            f"border-top:4px solid {wave_colour(1)}",
            "转移道路（按批次着色，宽度=人数）evacuation roads by wave, width = persons",
        ),
        ln(
            f"border-top:2px solid {wave_colour(1)}",
            "转移路线（按批次着色，初始关闭）routes by wave (layer off at start)",
        ),
        ln("border-top:2px solid #8a8a8a", "道路 roads"),
    ]
    items.append(
        f"<div style='margin-top:4px'>步行安置 placed {s['placed_persons']:,} / "
        f"{s['persons']:,} 人 persons ({100 * s['placed_share']:.1f}%)；"
        f"洪峰时路线受淹 routes cut at the peak: {s['cut_at_peak_persons']:,}<br>"
        f"步行上限 walking limit {s['max_walk_min']:g} min；"
        f"全部到达 clearance ≈ {s['clearance_time_min']:.0f} min</div>"
    )
    return legend_box("避险转移 Evacuation plan", items, element_id="evac-legend")


def evacuation_map(
    plan: EvacuationPlan,
    *,
    tiles: str | None = None,
    attribution: str | None = None,
    max_routes: int = 3000,
    max_roads: int = 30_000,
):
    """Folium map of an evacuation plan.

    Shows the buildings placed in a shelter coloured by departure wave, the buildings not
    placed coloured by reason with a magenta outline (and a marker, so that they are seen
    at any zoom), the shelters as circles sized by their load (islands at the peak ringed
    in teal, closed shelters grey), the evacuation roads coloured by the earliest
    wave walking on them (width by persons), the individual routes when there are at
    most `max_routes` (a layer switched off at start), and the roads flooded at the peak
    dashed in teal, a colour no route uses. Popups and the legend are in Chinese
    and English. Save it with :func:`gridmap.maps.save_html` for a page that works offline.

    Parameters
    ----------
    plan : EvacuationPlan
        Result of :func:`gridmap.plan_evacuation`.
    tiles : str or None
        Base map: ``"osm"``, a tile URL template, or None for no base map.
    attribution : str, optional
        Attribution of a custom tile URL.
    max_routes : int
        Largest number of individual routes drawn.
    max_roads : int
        Largest road network drawn as a grey base layer (the map then reads without
        base tiles, offline).

    Returns
    -------
    folium.Map
    """
    import folium

    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    add_tiles(m, tiles, attribution)

    net = plan.roads
    if net is not None and 0 < len(net) <= max_roads:
        fg = folium.FeatureGroup(name="道路 roads")
        r = to_wgs84(net[["name", "geometry"]], "roads").copy()
        r["name"] = r["name"].fillna("").astype(str)
        folium.GeoJson(
            r,
            style_function=lambda _f: {"color": "#8a8a8a", "weight": 1.5, "opacity": 0.6},
            tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["道路 road"]),
        ).add_to(fg)
        fg.add_to(m)

    ru = plan.roads_used
    if len(ru):
        fg = folium.FeatureGroup(name="转移道路 evacuation roads")
        r = to_wgs84(ru, "roads").copy()
        r["name"] = r["name"].fillna("").astype(str)
        r["colour"] = r["wave"].map(wave_colour)
        pmax = max(float(r["persons"].max()), 1.0)
        r["w"] = 2 + 6 * np.sqrt(r["persons"] / pmax)
        folium.GeoJson(
            r[["name", "persons", "shelter_id", "wave", "queue_min", "colour", "w", "geometry"]],
            style_function=lambda f: {
                "color": f["properties"]["colour"],
                "weight": f["properties"]["w"],
                "opacity": 0.85,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "persons", "shelter_id", "wave", "queue_min"],
                aliases=[
                    "道路 road",
                    "通行人数 persons",
                    "去往 to",
                    "批次 wave",
                    "排队 queue (min)",
                ],
            ),
        ).add_to(fg)
        fg.add_to(m)

    imp = plan.impassable
    if len(imp):
        fg = folium.FeatureGroup(name=f"洪峰时受淹道路 flooded roads at the peak ({len(imp)})")
        r = to_wgs84(imp[["name", "depth_max_m", "cut_stage", "geometry"]], "roads").copy()
        r["name"] = r["name"].fillna("").astype(str)
        folium.GeoJson(
            r,
            style_function=lambda _f: {
                "color": FLOODED_ROAD_COLOUR,
                "weight": 2,
                "dashArray": "6 5",
                "opacity": 0.8,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "depth_max_m", "cut_stage"],
                aliases=["道路 road", "洪峰水深 peak depth (m)", "受淹进度 cut stage"],
            ),
        ).add_to(fg)
        fg.add_to(m)

    routes = plan.routes
    if 0 < len(routes) <= max_routes:
        fg = folium.FeatureGroup(name=f"转移路线 routes ({len(routes)})", show=False)
        r = to_wgs84(routes, "routes").copy()
        r["colour"] = r["wave"].map(wave_colour)
        r["building_id"] = r["building_id"].astype(str)
        folium.GeoJson(
            r[["building_id", "shelter", "mode", "persons", "route_length_m", "wave", "colour",
               "geometry"]],
            style_function=lambda f: {"color": f["properties"]["colour"], "weight": 1.5},
            tooltip=folium.GeoJsonTooltip(
                fields=["building_id", "shelter", "mode", "persons", "route_length_m", "wave"],
                aliases=["楼栋 building", "避难所 shelter", "方式 mode", "人数 persons",
                         "距离 length (m)", "批次 wave"],
            ),
        ).add_to(fg)  # fmt: skip
        fg.add_to(m)

    b = plan.buildings
    fields = ["building_id", "grid_code", "households_to_move", "persons_to_move", "wave",
              "shelter", "status"]  # fmt: skip
    aliases = ["楼栋 building", "网格 grid", "转移户 households", "转移人 persons", "批次 wave",
               "避难所 shelter", "状态 status"]  # fmt: skip
    if len(b):
        bw = to_wgs84(b, "buildings").copy()
        bw["building_id"] = bw["building_id"].astype(str)
        bw["grid_code"] = bw["grid_code"].fillna("").astype(str)
        bw["shelter"] = bw["shelter"].fillna("").astype(str)
        placed = bw["status"].isin(["placed", "partly_placed"])
        groups = [
            (
                f"第{int(w)}批转移楼栋 wave {int(w)}",
                placed & (bw["wave"] == w),
                wave_colour(w),
                None,
            )
            for w in sorted(bw.loc[placed, "wave"].dropna().unique())
        ]
        groups += [
            (_REASON_LABELS[r], bw["status"] == r, c, _UNPLACED_RING)
            for r, c in REASON_COLOURS.items()
        ]
        for label, mask, c, ring in groups:
            sub = bw[mask]
            if sub.empty:
                continue
            fg = folium.FeatureGroup(name=f"{label} ({len(sub)})")
            style = {
                "color": ring or c,
                "weight": 2 if ring else 1,
                "fillColor": c,
                "fillOpacity": 0.9 if ring else 0.75,
            }
            tip = folium.GeoJsonTooltip(fields=fields, aliases=aliases)
            folium.GeoJson(
                sub[[*fields, "geometry"]], style_function=lambda _f, st=style: st, tooltip=tip
            ).add_to(fg)
            # a marker per building too, so that they show at any zoom
            pts = sub[fields].assign(geometry=sub.geometry.representative_point().to_numpy())
            folium.GeoJson(
                gpd.GeoDataFrame(pts, geometry="geometry", crs=sub.crs),
                marker=folium.CircleMarker(radius=4 if ring else 3),
                style_function=lambda _f, st=style: {**st, "fillOpacity": 1.0},
                tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
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
        total = (pts["load"] + pts["transport_load"]).to_numpy(dtype=float)
        lmax = max(float(total.max()), 1.0)
        xy = shapely.get_coordinates(pts.geometry.to_numpy())
        for i, rec in enumerate(pts.itertuples()):
            closed = rec.status != "open"
            island = bool(rec.island_at_peak)
            ring = "#555555" if closed else (FLOODED_ROAD_COLOUR if island else "#000000")
            flag = (
                "受淹关闭 closed (flooded)"
                if closed
                else ("洪峰时成孤岛 island at the peak" if island else "开放 open")
            )
            popup = (
                f"<b>{_html.escape(str(rec.name))}</b> ({rec.shelter_id})<br>"
                f"步行安置 load {rec.load:,} + 车辆转运 driven {rec.transport_load:,} / "
                f"容量 capacity {rec.capacity:,} 人 ({rec.pct_used:.0f}%)<br>状态 status: {flag}"
            )
            folium.CircleMarker(
                location=[xy[i, 1], xy[i, 0]],
                radius=5 + 15 * float(np.sqrt(total[i] / lmax)),
                color=ring,
                weight=3 if island else 2,
                fill=True,
                fill_color="#9e9e9e" if closed else "#ffffff",
                fill_opacity=0.9,
                popup=folium.Popup(popup, max_width=320),
                tooltip=f"{rec.name}: {int(total[i])}/{rec.capacity}",
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


def _write_sheets(path: Path, groups: Any) -> None:
    """One XLSX sheet per (name, table) of `groups`, written straight with xlsxwriter
    (much faster than one ``DataFrame.to_excel`` per sheet)."""
    import xlsxwriter

    tmp = path.with_name(f".{path.name}.tmp.xlsx")
    book = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "nan_inf_to_errors": True})
    try:
        bold = book.add_format({"bold": True})
        for name, sub in groups:
            sheet = book.add_worksheet(str(name)[:31])
            sheet.write_row(0, 0, [str(c) for c in sub.columns], bold)
            values = sub.astype(object).where(sub.notna(), None).to_numpy()
            for r, row in enumerate(values.tolist(), start=1):
                sheet.write_row(r, 0, row)
    finally:
        book.close()
    os.replace(tmp, path)


def write_evacuation_outputs(
    plan: EvacuationPlan, out_dir: str | os.PathLike, *, tiles: str | None = None
) -> list[Path]:
    """Write the evacuation map and tables to `out_dir`.

    Files:

    - ``evacuation_map.html``: :func:`evacuation_map`, self-contained (works offline;
      the base map, when `tiles` is given, needs the internet);
    - ``evacuation_tasks.csv/.xlsx``: the task sheets of :func:`tasks_by_grid` (one
      table with a ``grid_code`` column), and ``evacuation_tasks_by_grid.xlsx`` (one
      sheet per grid, when there are at most 500 grids);
    - ``evacuation_grid_waves.csv/.xlsx``: households per grid, wave and shelter
      (:func:`grid_waves`);
    - ``shelter_summary.csv/.xlsx``; ``evacuation_unplaced.csv/.xlsx`` (every unit not
      placed, with its reason); ``evacuation_roads.csv/.xlsx`` (named evacuation roads);
    - ``evacuation_routes.geojson`` and ``evacuation_buildings.geojson`` (WGS84).

    Tables are written with :func:`gridmap.io.write_table` (CSV with BOM + XLSX).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_html(evacuation_map(plan, tiles=tiles), out / "evacuation_map.html")]
    tasks = tasks_by_grid(plan)
    paths += write_table(tasks, out / "evacuation_tasks", sheet_name="tasks")
    grids = tasks["grid_code"].dropna().unique()
    if 0 < len(grids) <= 500:
        path = out / "evacuation_tasks_by_grid.xlsx"
        _write_sheets(path, tasks.groupby(tasks["grid_code"].fillna("no_grid"), sort=True))
        paths.append(path)
    paths += write_table(grid_waves(plan), out / "evacuation_grid_waves", sheet_name="waves")
    paths += write_table(shelter_table(plan), out / "shelter_summary", sheet_name="shelters")
    paths += write_table(plan.unplaced, out / "evacuation_unplaced", sheet_name="unplaced")
    paths += write_table(road_table(plan), out / "evacuation_roads", sheet_name="roads")
    for name, gdf in (("routes", plan.routes), ("buildings", plan.buildings)):
        gj = out / f"evacuation_{name}.geojson"
        to_wgs84(gdf, name).to_file(gj, driver="GeoJSON", engine="pyogrio")
        paths.append(gj)
    return paths
