"""The grid partition engine: :func:`plan_grids`, the steps put together.

load → households → **atoms → blocks → tessellation → hierarchy → pieces/regions →
codes** → grids. Every step is a module of this package; this one only runs them in
order and assembles the :class:`~gridmap.plan.Plan`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import metric_crs, to_metric
from ..errors import PlanError, SchemaError
from ..plan import GRID_COLUMNS, Plan
from . import atoms as _atoms
from .blocks import RANK_ARTERIAL, RANK_WALL, blocks, prepare_barriers
from .codes import grid_codes, reading_order
from .communities import CommunityJob, plan_communities
from .crossings import tessellation_crossings
from .geometry import (
    PRECISION,
    gc_paused,
    locate_points,
    polsby_popper,
    polygonal,
    polygonal_parts,
    snap,
)
from .hierarchy import (
    COMMUNITY_SIZE,
    STREET_SIZE,
    group_units,
    number_communities,
    planning_area,
    prepare_communities,
    source_communities,
)
from .pieces import RANK_FACTOR
from .tessellation import Tessellation, dissolve, tessellate, unit_graph

log = logging.getLogger("gridmap")

__all__ = ["INSTITUTION_USES", "MAJOR_HIGHWAYS", "RURAL_USES", "plan_grids"]

#: Building uses that become special grids (专属网格) by default.
INSTITUTION_USES = frozenset({"school", "hospital", "market", "enterprise", "government"})
#: Building uses that are rural houses (natural villages are built from them).
RURAL_USES = frozenset({"rural_house"})
#: Road classes that are arterials (``--arterials-only`` keeps these, rivers and rails).
MAJOR_HIGHWAYS = frozenset({"motorway", "trunk", "primary", "secondary"})

_OPEN_LAND_GAP = 100.0  # m of empty land between footprints that acts like an arterial
_LOOSE_INSTITUTION_GAP = 50.0
_CRUMB_M2 = 0.01  # m²: a grid part smaller than this is snap-rounding debris


@gc_paused()
def plan_grids(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    barriers: gpd.GeoDataFrame | list[gpd.GeoDataFrame] | None = None,
    difficult: gpd.GeoDataFrame | str | Callable | np.ndarray | pd.Series | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    institutions: gpd.GeoDataFrame | None = None,
    household_range: tuple[int, int] = (300, 500),
    difficult_range: tuple[int, int] = (200, 300),
    admin_code: str | None = None,
    seed: int = 0,
    village_distance: float = 150.0,
    village_join_distance: float = 2000.0,
    institution_uses: frozenset[str] | set[str] = INSTITUTION_USES,
    rural_uses: frozenset[str] | set[str] = RURAL_USES,
    community_size: tuple[int, int] = COMMUNITY_SIZE,
    street_size: tuple[int, int] = STREET_SIZE,
    street_column: str | None = None,
    admin_boundaries: bool = True,
    open_land_gap: float = _OPEN_LAND_GAP,
    workers: int | None = None,
    progress: bool | None = None,
) -> Plan:
    """Partition an area into grids (网格) of 300–500 households.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Footprints from :func:`gridmap.read_buildings`. When ``households`` is missing
        or incomplete, :func:`gridmap.estimate_households` is run first.
    communities : geopandas.GeoDataFrame, optional
        Community (社区/村) polygons, with ``street_code`` and ``community_code``
        (3-digit) or a 12-digit ``code``, and ``name``; codes that are missing or not
        3-digit are replaced by a numbering in reading order. Without the layer,
        planning communities of `community_size` households are derived (see
        :mod:`gridmap.partition.hierarchy`).
    barriers : GeoDataFrame or list of GeoDataFrame, optional
        Roads, rivers, railways, walls (lines, or polygons whose outlines are used).
        They are ranked (water/rail, arterial, local road, wall; see
        :mod:`gridmap.partition.blocks`); grids cross the weakest one only when the
        household range cannot be met otherwise, and every crossing is listed.
    difficult : GeoDataFrame, str, callable or array, optional
        Difficult areas: polygons, the name of a boolean building column, a callable
        ``f(buildings) -> bool array``, or a boolean array. Their grids use
        `difficult_range`.
    compounds : geopandas.GeoDataFrame, optional
        Compound (小区) polygons; a compound that fits in one grid is kept whole and
        its wall acts as a barrier. Without it, a ``compound_id`` building column is
        used when present.
    institutions : geopandas.GeoDataFrame, optional
        Institution polygons (school, hospital, market, enterprise, government) that
        become special grids. Buildings whose ``use`` is in `institution_uses` become
        special grids too.
    household_range, difficult_range : tuple of int
        Inclusive household ranges of ordinary and difficult grids.
    admin_code : str, optional
        6-digit GB/T 2260 district code that starts every grid code (``000000`` when
        not given).
    seed : int
        Seed of every random choice; the same input and seed give the same plan.
    village_distance : float
        Rural houses closer than this (m) belong to the same natural village.
    village_join_distance : float
        A village below the floor grows together with neighbours whose nearest homes
        are at most this far (m); up to twice as far it joins only a neighbour with
        which it makes an in-range grid; otherwise it is flagged ``isolated_village``.
    institution_uses, rural_uses : set of str
        Building uses treated as institutions and as rural houses.
    community_size, street_size : tuple of int
        Household ranges of derived planning communities and streets.
    street_column : str, optional
        Column of the community layer that names each community's street, used when
        the layer has no valid ``street_code``.
    admin_boundaries : bool
        Without `communities`, when the footprints were read from an OSM extract
        (``.pbf``), use its administrative boundaries as communities and streets (see
        :func:`gridmap.partition.hierarchy.source_communities`); ``False`` derives
        planning communities instead. ``params["hierarchy"]`` records the choice
        (``given``, ``osm_admin`` or ``derived``).
    open_land_gap : float
        Neighbouring buildings separated by at least this much empty land (m) are
        treated as across an arterial (a river, park or rail yard nobody mapped).
    workers : int, optional
        Worker processes (default: one per core for large jobs; environment variable
        ``GRIDMAP_WORKERS`` overrides).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    Plan
    """
    lo, hi = _check_range(household_range, "household_range")
    dlo, dhi = _check_range(difficult_range, "difficult_range")
    ranges = ((lo, hi), (dlo, dhi))
    cs = _check_range(community_size, "community_size")
    ss = _check_range(street_size, "street_size")
    notes: list[str] = []
    b = _prepare_buildings(buildings, notes)
    crs = metric_crs(b, "buildings")
    b = to_metric(b, crs, "buildings").reset_index(drop=True)
    hierarchy = "given" if communities is not None else "derived"
    if communities is None and admin_boundaries:
        src, src_street, src_code, note = source_communities(buildings.attrs.get("source_path"), b)
        if src is not None:
            communities, hierarchy = src, "osm_admin"
            street_column = street_column or src_street
            admin_code = admin_code or src_code
        notes[:0] = [note] if note else []
    admin = _admin_code(admin_code, notes)
    footprints = np.asarray(shapely.make_valid(b.geometry.values), dtype=object)
    mixed = np.flatnonzero(~np.isin(shapely.get_type_id(footprints), (3, 6)))
    if len(mixed):  # a repair that left lines or points beside the area (rare)
        footprints[mixed] = [polygonal(g) for g in footprints[mixed]]
    bad = shapely.is_empty(footprints)
    if bad.any():
        raise SchemaError(
            f"{int(bad.sum())} footprints have no area after repair, e.g. rows "
            f"{np.flatnonzero(bad)[:5].tolist()}",
            source="buildings",
        )
    bars = prepare_barriers(barriers, crs)
    bar_lines = bars.geometry.values
    bar_rank = bars["rank"].to_numpy()

    # ------------------------------------------------------------- planning areas
    given = communities is not None
    if given:
        comms = prepare_communities(communities, crs, notes)
        areas = comms.geometry.values
    else:
        comms = None
        areas = np.array([planning_area(shapely.point_on_surface(footprints))], dtype=object)
    b_area, anchor, part = _atoms.locate_buildings(footprints, areas)
    outside = b_area < 0
    if outside.any():
        notes.append(
            f"{int(outside.sum())} buildings ({int(b['households'].to_numpy()[outside].sum())} "
            "households) lie outside every community polygon and were not planned "
            "(grid_code left empty)."
        )

    # ------------------------------------------------------------- special areas, compounds
    inst = _institution_polygons(institutions, crs, areas)
    comp_m = to_metric(compounds, crs, "compounds") if compounds is not None else None
    # institution outlines cut blocks (special grids); compound walls act through the
    # atoms and the adjacency ranks instead (cutting blocks along every wall leaves
    # pieces too small to balance)
    extra = [shapely.get_parts(shapely.boundary(inst["geometry"]))] if len(inst) else []
    extra_lines = np.concatenate(extra) if extra else None
    blk, blk_area, dead_ends = blocks(areas, bar_lines, extra_lines=extra_lines)
    blk_inst = _block_institutions(blk, blk_area, inst)

    # ------------------------------------------------------------- building classes
    hh = b["households"].to_numpy(dtype=np.int64)
    use = b["use"].astype(str).to_numpy() if "use" in b.columns else np.full(len(b), "unknown")
    b_blk = locate_points(anchor, blk)
    b_blk[outside] = -1
    b_inst = np.where(b_blk >= 0, blk_inst[np.maximum(b_blk, 0)], -1)
    lost = ~outside & (b_blk < 0)
    if lost.any():  # an anchor on no block (numerical edge): nearest block of its area
        b_blk[lost] = _nearest(anchor[lost], blk)
        b_inst[lost] = blk_inst[b_blk[lost]]
    b_diff = _difficult_flags(b, anchor, difficult, crs)
    comm_kind = (
        comms["kind"].astype(str).to_numpy()
        if given and "kind" in comms.columns
        else np.full(len(areas), "")
    )
    is_inst = np.isin(use, list(institution_uses))
    b_rural = np.isin(use, list(rural_uses)) | (
        (comm_kind[np.maximum(b_area, 0)] == "village") & ~is_inst
    )
    b_comp = _compound_ids(b, anchor, comp_m)
    loose = ~outside & (b_inst < 0) & is_inst
    loose_group = np.full(len(b), -1, dtype=np.int64)
    if loose.any():
        li = np.flatnonzero(loose)
        key = pd.factorize(pd.Series(b_area[li]).astype(str) + "|" + pd.Series(use[li]))[0]
        loose_group[li] = _atoms.cluster_points(
            shapely.get_coordinates(anchor[li]), _LOOSE_INSTITUTION_GAP, key
        )

    # ------------------------------------------------------------- units and seeds
    ceil = np.where(b_diff[:, None], [[dlo, dhi]], [[lo, hi]])
    ceil[loose] = np.iinfo(np.int32).max  # institution buildings are never split
    planned = ~outside & (b_inst < 0)
    units_f = _num(b, "units", 1.0)
    levels_f = _num(b, "levels", 1.0)
    units = _atoms.make_units(
        b["building_id"].to_numpy(), hh, units_f, levels_f, b_area, ceil, planned
    )
    seeds, seed_unit, seed_main = _atoms.unit_seeds(units, anchor, part)
    nbu = len(units)
    n_inst = len(inst)
    block_unit = np.where(blk_inst >= 0, nbu + blk_inst, -1)

    tess = tessellate(
        blk,
        seeds,
        seed_unit,
        seed_main,
        block_zone=blk_area,
        barrier_lines=bar_lines,
        barrier_rank=bar_rank,
        block_unit=block_unit,
    )
    nu = tess.n_units
    if given:  # the communities as the partition sees them: the union of their faces
        comms = comms.set_geometry(
            dissolve(tess.faces, blk_area[tess.block], len(comms), single=False)
        )
    ua = _unit_attributes(
        tess, units, nbu, n_inst, inst, hh, b_inst, anchor, seeds, seed_unit, seed_main,
        blk_area, b_diff, b_rural, b_comp, loose_group,
    )  # fmt: skip
    host = _faceless_hosts(tess, seeds, seed_unit, seed_main)
    if len(host):  # a unit whose cells vanished rides with the unit around it
        np.add.at(ua["households"], host[:, 1], ua["households"][host[:, 0]])
        ua["households"][host[:, 0]] = 0
    edges, length, cost, rank = unit_graph(tess, RANK_FACTOR)
    rank, cost = _open_land(edges, length, cost, rank, units, nbu, part, open_land_gap)
    rank, cost = _walls(edges, length, cost, rank, ua["compound"])

    # ------------------------------------------------------------- hierarchy
    if given:
        unit_comm = ua["area"]
        street_of = _street_labels(comms, street_column, ua, unit_comm, tess, ss, seed)
        comms = number_communities(comms, street_of, notes)
    else:
        unit_comm, comms = _derive_communities(
            tess, ua, edges, cost, cs, ss, seed, crs, notes, bars
        )
    n_comm = len(comms)
    if len(host):
        unit_comm = unit_comm.copy()
        unit_comm[host[:, 0]] = -1

    # ------------------------------------------------------------- per community
    groups, group_kind, building_group = _atoms.unit_groups(
        ua["households"], ua["xy"], unit_comm, ua["compound"], ua["rural"], ua["difficult"],
        ua["loose"], (hi, dhi), village_distance, ua["optional_of"],
    )  # fmt: skip
    special_name = _special_names(ua, b, groups, group_kind, use)
    job = CommunityJob(
        tess=tess, ua=ua, unit_comm=unit_comm, edges=edges, length=length, cost=cost,
        rank=rank, groups=groups, group_kind=group_kind, building_group=building_group,
        special_name=special_name,
        ranges=ranges, seed=seed, join=village_join_distance, n_comm=n_comm,
    )  # fmt: skip
    results = plan_communities(job, workers, progress)

    # ------------------------------------------------------------- assemble grids
    grid_rows: list[dict[str, Any]] = []
    unit_grid = np.full(nu, -1, dtype=np.int64)
    for ci, (uidx, lab, metas, geoms) in enumerate(results):
        base = len(grid_rows)
        unit_grid[uidx] = base + lab
        for m, g in zip(metas, geoms, strict=True):
            grid_rows.append({**m, "_community": ci, "geometry": g})
    if len(host):
        unit_grid[host[:, 0]] = unit_grid[host[:, 1]]
    grids = gpd.GeoDataFrame(grid_rows, geometry="geometry", crs=crs)
    _check_polygons(grids, notes)
    ci = grids["_community"].to_numpy()
    seq = reading_order(grids.geometry.values, ci)
    street = comms["street_code"].to_numpy()[ci]
    community = comms["community_code"].to_numpy()[ci]
    grids["grid_code"] = grid_codes(admin, street, community, seq)
    grids["community_code"] = community
    grids["street_code"] = street
    grids["community_name"] = comms["name"].astype(str).to_numpy()[ci]
    grids["worker"] = ""
    grids["area_m2"] = shapely.area(grids.geometry.values)
    grids["polsby_popper"] = polsby_popper(grids.geometry.values)
    code_of = grids["grid_code"].to_numpy()

    # ------------------------------------------------------------- buildings, splits
    out_b, splits = _building_tables(
        b, units, unit_grid, code_of, b_inst, nbu, outside, b_diff, comms, b_area, unit_comm
    )
    nb_per_grid = pd.Series(out_b["grid_code"]).value_counts()
    grids["buildings"] = nb_per_grid.reindex(grids["grid_code"]).fillna(0).astype(int).to_numpy()
    _flag_out_of_range(grids)
    _flag_split_compounds(grids, out_b["grid_code"].to_numpy(), b_comp, hh, b_diff, ranges)
    crossing_table = tessellation_crossings(
        tess, unit_grid, grids, bars["barrier"].to_numpy(), dead_ends, bar_lines
    )
    if len(crossing_table):
        m = grids["grid_code"].isin(set(crossing_table["grid_code"]))
        grids.loc[m, "flags"] = grids.loc[m, "flags"].map(lambda f: _add_flag(f, "crosses_barrier"))
    grids = grids[GRID_COLUMNS + ["geometry"]].sort_values("grid_code", kind="stable")
    grids = grids.reset_index(drop=True)

    res = grids[grids["kind"] != "special"]
    inr = ((res["households"] >= res["range_min"]) & (res["households"] <= res["range_max"])).mean()
    notes.append(
        f"{len(grids)} grids ({(grids['kind'] == 'community').sum()} community, "
        f"{(grids['kind'] == 'rural').sum()} rural, {(grids['kind'] == 'special').sum()} special) "
        f"in {n_comm} communities; {inr:.1%} of residential grids in range; "
        f"{len(crossing_table)} barrier crossings; {splits['building_id'].nunique()} buildings "
        "split by units."
    )
    params = {
        "household_range": [lo, hi],
        "difficult_range": [dlo, dhi],
        "admin_code": admin,
        "seed": seed,
        "village_distance": village_distance,
        "village_join_distance": village_join_distance,
        "institution_uses": sorted(institution_uses),
        "rural_uses": sorted(rural_uses),
        "communities_given": given,
        "hierarchy": hierarchy,
        "community_size": list(cs),
        "street_size": list(ss),
        "open_land_gap": open_land_gap,
    }
    comms_out = comms[
        ["street_code", "community_code", "name"]
        + [c for c in ("kind", "source_code") if c in comms.columns]
        + ["geometry"]
    ]
    return Plan(
        grids=grids,
        buildings=out_b,
        crs=crs,
        splits=splits,
        crossings=crossing_table,
        communities=comms_out,
        barriers=bars if len(bars) else None,
        compounds=comp_m,
        notes=notes,
        params=params,
    )


# ==================================================================== preparation
def _check_range(r, name: str) -> tuple[int, int]:
    try:
        lo, hi = (int(r[0]), int(r[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise PlanError(f"{name} must be a pair of integers (min, max), got {r!r}") from exc
    if not 0 < lo <= hi:
        raise PlanError(f"{name} must satisfy 0 < min <= max, got {r!r}")
    return lo, hi


def _admin_code(admin_code, notes: list[str]) -> str:
    if admin_code is None:
        notes.append("No admin_code given: grid codes start with 000000.")
        return "000000"
    admin = str(admin_code).strip()
    if len(admin) != 6 or not admin.isdigit():
        raise PlanError(f"admin_code must be a 6-digit GB/T 2260 code, got {admin_code!r}")
    return admin


def _prepare_buildings(buildings, notes: list[str]) -> gpd.GeoDataFrame:
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise SchemaError(
            "buildings must be a GeoDataFrame (use gridmap.read_buildings), got "
            f"{type(buildings).__name__}"
        )
    if len(buildings) == 0:
        raise PlanError("no buildings to plan", source="buildings")
    if "building_id" not in buildings.columns:
        raise SchemaError(
            "column 'building_id' is missing; read footprints with gridmap.read_buildings",
            source="buildings",
        )
    if buildings["building_id"].duplicated().any():
        dup = buildings.loc[buildings["building_id"].duplicated(), "building_id"].head(5).tolist()
        raise SchemaError(f"duplicate building_id values, e.g. {dup}", source="buildings")
    missing = buildings.geometry.isna().to_numpy() | shapely.is_empty(buildings.geometry.values)
    if missing.any():
        raise SchemaError(
            f"{int(missing.sum())} buildings have empty geometry, e.g. rows "
            f"{np.flatnonzero(missing)[:5].tolist()}",
            source="buildings",
        )
    need = (
        "households" not in buildings.columns
        or "households_source" not in buildings.columns
        or buildings["households"].isna().any()
        or "units" not in buildings.columns
    )
    if need:
        from ..households import estimate_households

        buildings = estimate_households(buildings)
        notes.append("Households were missing or incomplete: estimated with estimate_households().")
    return buildings


def _num(b: pd.DataFrame, col: str, default: float) -> np.ndarray:
    if col not in b.columns:
        return np.full(len(b), default)
    v = pd.to_numeric(b[col], errors="coerce").astype(float).to_numpy()
    return np.where(np.isfinite(v) & (v > 0), v, default)


def _nearest(points: np.ndarray, polys: np.ndarray) -> np.ndarray:
    src, tgt = shapely.STRtree(polys).query_nearest(points, all_matches=False)
    out = np.zeros(len(points), dtype=np.int64)
    out[src] = tgt
    return out


def _difficult_flags(b, pts, difficult, crs) -> np.ndarray:
    if difficult is None:
        if "difficult" in b.columns:
            return b["difficult"].fillna(False).astype(bool).to_numpy()
        return np.zeros(len(b), dtype=bool)
    if isinstance(difficult, gpd.GeoDataFrame):
        if len(difficult) == 0:
            return np.zeros(len(b), dtype=bool)
        d = to_metric(difficult, crs, "difficult")
        area = shapely.union_all(shapely.make_valid(d.geometry.values))
        return shapely.intersects(area, pts)
    if isinstance(difficult, str):
        if difficult not in b.columns:
            raise SchemaError(
                f"difficult={difficult!r} names no building column; columns are {list(b.columns)}",
                source="buildings",
            )
        return b[difficult].fillna(False).astype(bool).to_numpy()
    flags = np.asarray(difficult(b) if callable(difficult) else difficult, dtype=bool)
    if flags.shape != (len(b),):
        raise SchemaError(
            f"difficult flags have shape {flags.shape}, expected ({len(b)},) — one per building"
        )
    return flags


def _compound_ids(b, pts, compounds_m) -> np.ndarray:
    if compounds_m is not None and len(compounds_m):
        cid = (
            compounds_m["compound_id"].astype(str).to_numpy()
            if "compound_id" in compounds_m.columns
            else np.array([f"C{i + 1:05d}" for i in range(len(compounds_m))], dtype=object)
        )
        geoms = shapely.make_valid(compounds_m.geometry.values)
        pi, gi = shapely.STRtree(geoms).query(pts, predicate="within")
        out = np.full(len(b), None, dtype=object)
        out[pi] = cid[gi]
        return out
    if "compound_id" in b.columns:
        v = b["compound_id"].astype(object)
        return v.where(v.notna() & (v.astype(str) != ""), None).to_numpy()
    return np.full(len(b), None, dtype=object)


def _institution_polygons(institutions, crs, areas) -> pd.DataFrame:
    """Institution polygons clipped to the area holding most of each; the earlier row
    keeps an overlap."""
    cols = {"geometry": [], "area": [], "name": [], "use": []}
    if institutions is None or len(institutions) == 0:
        return pd.DataFrame(cols)
    m = to_metric(institutions, crs, "institutions")
    geoms = np.array([polygonal(g) for g in snap(m.geometry.values)], dtype=object)
    home, _, clipped = _atoms.locate_buildings(geoms, areas)
    names = m["name"].astype(str).to_numpy() if "name" in m.columns else np.full(len(m), "")
    uses = m["use"].astype(str).to_numpy() if "use" in m.columns else np.full(len(m), "institution")
    clipped = snap(clipped)
    out = []
    for i in range(len(m)):
        if home[i] < 0:
            continue
        g = polygonal(clipped[i])
        for prev in out:
            if prev["area"] == home[i] and shapely.intersects(prev["geometry"], g):
                g = polygonal(shapely.difference(g, prev["geometry"], grid_size=PRECISION))
        if g.is_empty or g.area < 1.0:
            continue
        out.append({"geometry": g, "area": int(home[i]), "name": names[i], "use": uses[i]})
    return pd.DataFrame(out if out else cols)


def _block_institutions(blk: np.ndarray, blk_area: np.ndarray, inst: pd.DataFrame) -> np.ndarray:
    out = np.full(len(blk), -1, dtype=np.int64)
    if len(inst) == 0 or len(blk) == 0:
        return out
    geoms = np.asarray(inst["geometry"].to_numpy(), dtype=object)
    rep = shapely.point_on_surface(blk)
    bi, ii = shapely.STRtree(geoms).query(rep, predicate="within")
    ok = inst["area"].to_numpy()[ii] == blk_area[bi]
    bi, ii = bi[ok], ii[ok]
    o = np.lexsort((ii, bi))
    bi, ii = bi[o], ii[o]
    first = np.r_[True, bi[1:] != bi[:-1]] if len(bi) else np.zeros(0, bool)
    out[bi[first]] = ii[first]
    return out


def _unit_attributes(
    tess, units, nbu, n_inst, inst, hh, b_inst, anchor, seeds, seed_unit, seed_main,
    blk_area, b_diff, b_rural, b_comp, loose_group,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per unit of the tessellation: households, location, area and classes."""
    nu = tess.n_units
    households = np.zeros(nu, dtype=np.int64)
    households[:nbu] = units.households
    if n_inst:
        households[nbu : nbu + n_inst] = np.bincount(
            b_inst[b_inst >= 0], weights=hh[b_inst >= 0], minlength=n_inst
        ).astype(np.int64)
    xy = np.zeros((nu, 2))
    xy[seed_unit[seed_main]] = seeds[seed_main]
    rest = np.arange(nbu, nu)
    face_of = np.full(nu, -1, dtype=np.int64)
    face_of[tess.unit] = np.arange(len(tess.faces))
    if len(rest):
        xy[rest] = shapely.get_coordinates(shapely.point_on_surface(tess.faces[face_of[rest]]))
    area = np.full(nu, -1, dtype=np.int64)
    area[tess.unit] = blk_area[tess.block]
    area[:nbu] = units.area
    bld = np.full(nu, -1, dtype=np.int64)
    bld[:nbu] = units.building
    has_b = bld >= 0
    difficult = np.zeros(nu, dtype=bool)
    difficult[has_b] = b_diff[bld[has_b]]
    rural = np.zeros(nu, dtype=bool)
    rural[has_b] = b_rural[bld[has_b]]
    compound = np.full(nu, None, dtype=object)
    compound[has_b] = b_comp[bld[has_b]]
    loose = np.full(nu, -1, dtype=np.int64)
    loose[has_b] = loose_group[bld[has_b]]
    fixed = np.full(nu, -1, dtype=np.int64)
    fixed[nbu : nbu + n_inst] = np.arange(n_inst)
    optional_of = np.full(nu, -1, dtype=np.int64)
    optional_of[:nbu] = np.where(units.optional, units.optional_group, -1)
    # orphan land units take the class of nothing: ordinary land
    return {
        "households": households,
        "xy": xy,
        "area": area,
        "building": bld,
        "difficult": difficult,
        "rural": rural,
        "compound": compound,
        "loose": loose,
        "fixed": fixed,
        "optional_of": optional_of,
        "inst_name": np.asarray(inst["name"].to_numpy() if n_inst else [], dtype=object),
        "inst_use": np.asarray(inst["use"].to_numpy() if n_inst else [], dtype=object),
    }


def _open_land(edges, length, cost, rank, units, nbu, part, gap):
    """Treat wide empty land between two buildings as an arterial barrier."""
    if gap is None or gap <= 0 or len(edges) == 0:
        return rank, cost
    both = (edges[:, 0] < nbu) & (edges[:, 1] < nbu)
    idx = np.flatnonzero(both)
    if not len(idx):
        return rank, cost
    ba = units.building[edges[idx, 0]]
    bb = units.building[edges[idx, 1]]
    diff = ba != bb
    idx, ba, bb = idx[diff], ba[diff], bb[diff]
    # the distance between two vertices bounds the footprints' distance from above:
    # only pairs whose first vertices lie `gap` apart or more need the exact distance
    coords, owner = shapely.get_coordinates(part, return_index=True)
    first = np.full((len(part), 2), np.inf)  # an empty part: always measured exactly
    pos = np.searchsorted(owner, np.arange(len(part)))
    has = pos < len(owner)
    has[has] = owner[pos[has]] == np.flatnonzero(has)
    first[has] = coords[pos[has]]
    far = ~(np.hypot(*(first[ba] - first[bb]).T) < gap)
    idx, ba, bb = idx[far], ba[far], bb[far]
    d = shapely.distance(part[ba], part[bb])
    wide = idx[d >= gap]
    rank = rank.copy()
    cost = cost.copy()
    up = wide[rank[wide] < RANK_ARTERIAL]
    rank[up] = RANK_ARTERIAL
    cost[up] = length[up] * RANK_FACTOR[RANK_ARTERIAL]
    return rank, cost


def _walls(edges, length, cost, rank, compound):
    """Neighbours on two sides of a compound wall (different compounds, or in and out
    of one) are across the weakest barrier, a wall."""
    if len(edges) == 0:
        return rank, cost
    key = pd.Series(compound).astype(object).where(pd.notna(compound), "").astype(str)
    key = key.to_numpy()
    wall = (key[edges[:, 0]] != key[edges[:, 1]]) & (rank < RANK_WALL)
    if not wall.any():
        return rank, cost
    rank = rank.copy()
    cost = cost.copy()
    rank[wall] = RANK_WALL
    cost[wall] = length[wall] * RANK_FACTOR[RANK_WALL]
    return rank, cost


def _street_labels(comms, street_column, ua, unit_comm, tess, ss, seed):
    """A street label per community: given codes, a named column, or derived."""
    code = comms["street_code"].astype(str).str.strip() if "street_code" in comms.columns else None
    if code is not None and code.str.fullmatch(r"\d{3}").all():
        return None
    if street_column is not None:
        if street_column not in comms.columns:
            raise SchemaError(
                f"street_column={street_column!r} is not a column of the community layer; "
                f"columns are {[c for c in comms.columns if c != 'geometry']}",
                source="communities",
            )
        return comms[street_column].astype(str).to_numpy()
    n = len(comms)
    has = unit_comm >= 0
    w = np.bincount(unit_comm[has], weights=ua["households"][has], minlength=n).astype(np.int64)
    if w.sum() <= ss[1] or n == 1:
        return np.zeros(n, dtype=np.int64)
    xy = shapely.get_coordinates(shapely.point_on_surface(comms.geometry.values))
    return group_units(w, xy, tess.zone_edges, tess.zone_length, ss, seed=seed)


def _derive_communities(tess, ua, edges, cost, cs, ss, seed, crs, notes, bars):
    """Planning communities and streets when no community layer is given."""
    w = ua["households"]
    lab = group_units(w, ua["xy"], edges, cost, cs, seed=seed)
    n = int(lab.max()) + 1
    geoms = dissolve(tess.faces, lab[tess.unit], n)
    comms = gpd.GeoDataFrame(
        {"name": [f"规划社区 {i + 1}" for i in range(n)]}, geometry=list(geoms), crs=crs
    )
    # streets from the community graph
    ce = lab[edges]
    m = ce[:, 0] != ce[:, 1]
    ce = np.sort(ce[m], axis=1)
    cc = cost[m]
    cw = np.bincount(lab, weights=w, minlength=n).astype(np.int64)
    cxy = shapely.get_coordinates(shapely.point_on_surface(geoms))
    street = (
        np.zeros(n, dtype=np.int64)
        if cw.sum() <= ss[1]
        else group_units(cw, cxy, ce, cc, ss, seed=seed)
    )
    comms = number_communities(comms, street, notes)
    comms["name"] = [
        f"规划社区 {s}-{c}"
        for s, c in zip(comms["street_code"], comms["community_code"], strict=True)
    ]
    what = "major roads, rivers and railways given as barriers" if len(bars) else "buildings"
    notes.append(
        f"No community layer was given: {n} planning communities of about "
        f"{cs[0]:,}–{cs[1]:,} households and {len(set(street.tolist()))} streets of "
        f"{ss[0]:,}–{ss[1]:,} were derived from the {what}; grids nest in them."
    )
    return lab, comms


def _special_names(ua, b, groups, group_kind, use) -> dict[int, str]:
    names: dict[int, str] = {}
    for g in np.flatnonzero(group_kind == "special"):
        members = np.flatnonzero(groups == g)
        bi = ua["building"][members]
        bi = bi[bi >= 0]
        names[int(g)] = str(use[bi[0]]) if len(bi) else "institution"
    for k, (nm, us) in enumerate(zip(ua["inst_name"], ua["inst_use"], strict=True)):
        names[1_000_000 + k] = str(nm) if nm and str(nm) != "nan" else str(us)
    return names


def _faceless_hosts(tess: Tessellation, seeds, seed_unit, seed_main) -> np.ndarray:
    """Units left without a face (a seed within a centimetre of a block's outline
    whose cell vanished) and the unit whose face holds their main seed: (unit, host)."""
    nf = np.bincount(tess.unit, minlength=tess.n_units)
    lost = np.flatnonzero(nf[: int(seed_unit.max()) + 1 if len(seed_unit) else 0] == 0)
    if not len(lost):
        return np.empty((0, 2), dtype=np.int64)
    main = np.flatnonzero(seed_main)
    where = np.full(tess.n_units, -1, dtype=np.int64)
    where[seed_unit[main]] = main
    pts = shapely.points(seeds[where[lost]])
    src, face = shapely.STRtree(tess.faces).query_nearest(pts, all_matches=False)
    host = np.full(len(lost), -1, dtype=np.int64)
    host[src] = tess.unit[face]
    ok = host >= 0
    return np.column_stack([lost[ok], host[ok]]).astype(np.int64)


# ======================================================================= finish
def _check_polygons(grids: gpd.GeoDataFrame, notes: list[str]) -> None:
    """Every grid must be one valid Polygon; say so loudly if the engine failed that."""
    geoms = grids.geometry.values
    types = shapely.get_type_id(geoms)
    bad = (types != 3) | ~shapely.is_valid(geoms)
    if bad.any():
        fixed = []
        for i in np.flatnonzero(bad):
            parts, _ = polygonal_parts(np.array([shapely.make_valid(geoms[i])], dtype=object))
            # a part under 1 dm² (a spike of a few grid cells the repair cut off) is
            # snap-rounding debris, not land
            parts = parts[shapely.area(parts) >= _CRUMB_M2] if len(parts) > 1 else parts
            fixed.append(i)
            if len(parts) == 1:
                geoms[i] = parts[0]
        still = (shapely.get_type_id(geoms) != 3).sum()
        log.warning("%d grid polygons needed repair; %d are not single polygons", len(fixed), still)
        notes.append(f"{len(fixed)} grid polygons needed repair; {still} are not single polygons.")
        grids.geometry.values[:] = geoms


def _building_tables(b, units, unit_grid, code_of, b_inst, nbu, outside, b_diff, comms,
                     b_area, unit_comm):  # fmt: skip
    out_b = b.copy()
    n = len(b)
    grid = np.full(n, -1, dtype=np.int64)
    whole = units.part < 0
    grid[units.building[whole]] = unit_grid[np.flatnonzero(whole)]
    sp = units.splits.copy()
    if len(sp):
        sp["_grid"] = unit_grid[sp["unit"].to_numpy()]
        sp["_b"] = units.building[sp["unit"].to_numpy()]
        main = sp.sort_values(["_b", "households", "part"], ascending=[True, False, True])
        main = main.drop_duplicates("_b")
        grid[main["_b"].to_numpy()] = main["_grid"].to_numpy()
    inst_b = np.flatnonzero(b_inst >= 0)
    grid[inst_b] = unit_grid[nbu + b_inst[inst_b]]
    comm_of_b = np.full(n, -1, dtype=np.int64)
    has = grid >= 0
    # a building's community is that of its grid's units
    unit_of_b = np.full(n, -1, dtype=np.int64)
    unit_of_b[units.building] = np.arange(len(units))
    unit_of_b[inst_b] = nbu + b_inst[inst_b]
    comm_of_b[has] = unit_comm[unit_of_b[has]]
    code = np.where(has, code_of[np.maximum(grid, 0)], None)
    out_b["community_code"] = np.where(
        has, comms["community_code"].to_numpy()[np.maximum(comm_of_b, 0)], None
    )
    out_b["grid_code"] = code
    out_b["difficult"] = b_diff
    out_b["planned"] = ~outside
    if len(sp):
        sp["grid_code"] = code_of[sp["_grid"].to_numpy()]
        n_grids = sp.groupby("building_id")["grid_code"].transform("nunique")
        sp = sp[n_grids > 1]
    splits = pd.DataFrame(
        {
            "building_id": sp["building_id"].to_numpy() if len(sp) else [],
            "part": sp["part"].to_numpy(dtype=np.int64) if len(sp) else [],
            "unit_from": sp["unit_from"].to_numpy(dtype=np.int64) if len(sp) else [],
            "unit_to": sp["unit_to"].to_numpy(dtype=np.int64) if len(sp) else [],
            "floor_from": sp["floor_from"].to_numpy(dtype=np.int64) if len(sp) else [],
            "floor_to": sp["floor_to"].to_numpy(dtype=np.int64) if len(sp) else [],
            "households": sp["households"].to_numpy(dtype=np.int64) if len(sp) else [],
            "grid_code": sp["grid_code"].to_numpy() if len(sp) else [],
        }
    )
    for col in ("part", "unit_from", "unit_to", "floor_from", "floor_to", "households"):
        splits[col] = splits[col].astype("int64")
    splits["building_id"] = splits["building_id"].astype(object)
    splits["grid_code"] = splits["grid_code"].astype(object)
    return out_b, splits.reset_index(drop=True)


def _flag_out_of_range(grids: gpd.GeoDataFrame) -> None:
    h = grids["households"].to_numpy()
    res = grids["kind"].to_numpy() != "special"
    out = res & ((h < grids["range_min"].to_numpy()) | (h > grids["range_max"].to_numpy()))
    grids["flags"] = [
        _add_flag(f, "out_of_range") if o else f for f, o in zip(grids["flags"], out, strict=True)
    ]


def _flag_split_compounds(grids, b_code, b_comp, hh, b_diff, ranges) -> None:
    """Flag grids holding part of a compound that would fit in one grid but was split."""
    (lo, hi), (dlo, dhi) = ranges
    has = np.array([c is not None for c in b_comp], dtype=bool)
    if not has.any():
        return
    df = pd.DataFrame({"c": b_comp[has], "g": b_code[has], "h": hh[has], "d": b_diff[has]})
    df = df[df["g"].notna()]
    agg = df.groupby("c").agg(n=("g", "nunique"), h=("h", "sum"), d=("d", "mean"))
    cap = np.where(agg["d"] >= 0.5, dhi, hi)
    split = agg[(agg["n"] > 1) & (agg["h"] <= cap)]
    if len(split) == 0:
        return
    reasons: dict[str, list[str]] = {}
    pairs = df.loc[df["c"].isin(split.index), ["c", "g"]].drop_duplicates()
    for cid, code in zip(pairs["c"].tolist(), pairs["g"].tolist(), strict=True):
        row = split.loc[cid]
        reasons.setdefault(code, []).append(
            f"compound {cid} ({int(row['h'])} households) split over {int(row['n'])} grids: "
            "keeping it whole left no in-range plan"
        )
    m = grids["grid_code"].isin(list(reasons))
    grids.loc[m, "flags"] = grids.loc[m, "flags"].map(lambda f: _add_flag(f, "split_compound"))
    grids.loc[m, "flag_reason"] = [
        "; ".join([r for r in (old,) if r] + reasons[c])
        for old, c in zip(grids.loc[m, "flag_reason"], grids.loc[m, "grid_code"], strict=True)
    ]


def _add_flag(flags: str, flag: str) -> str:
    parts = [f for f in str(flags or "").split(";") if f]
    if flag not in parts:
        parts.append(flag)
    return ";".join(parts)
