"""The grid partition engine: :func:`plan_grids`.

How a plan is made, community by community:

1. **Atoms.** Buildings become the units the partition moves around. A compound whose
   households fit in one grid is a single atom (kept whole). A building with more
   households than the ceiling is split by units (单元) — or by floors when it has too
   few units — into parts. A natural village (rural houses clustered by distance) that
   fits in one grid is a single atom. Everything else is one atom per building;
   buildings without households (garages, shops) are atoms of weight 0 so that they
   still get a grid.
2. **Blocks.** The community, minus special-grid polygons (institutions), is cut into
   blocks along the barrier lines (major roads, rivers, railways). Blocks without
   buildings are joined to the neighbour they share most border with.
3. **Tessellation.** Each block is divided among its atoms' points by a Voronoi diagram
   clipped to the block, so grid polygons cover every square metre and follow the
   barriers exactly. Atoms whose cells share a border are neighbours.
4. **Pieces.** Atoms are grouped into connected pieces of one block, one difficulty
   class, one large compound or one village. A piece whose total cannot be split in
   range is merged with a neighbouring piece — across a barrier only when no in-range
   plan exists without crossing it; a village below the floor joins a neighbour only
   when that gives an in-range grid, otherwise it stays its own grid, flagged
   ``isolated_village``.
5. **Regions.** Each piece is cut into connected, compact grids in range by
   :func:`gridmap.regions.partition_region`; the number of grids is found there.
6. **Polygons and codes.** Cells are dissolved per grid, fragments and gaps are given
   to a neighbour, and grids get 15-digit codes numbered north→south, west→east.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from . import grids as _g
from .crs import metric_crs, to_metric
from .errors import PlanError, SchemaError
from .plan import CROSSING_COLUMNS, GRID_COLUMNS, Plan, empty_crossings
from .regions import partition_region

log = logging.getLogger("gridmap")

#: Building uses that become special grids (专属网格) by default.
INSTITUTION_USES = frozenset({"school", "hospital", "market", "enterprise", "government"})
#: Building uses that are rural houses (natural villages are built from them).
RURAL_USES = frozenset({"rural_house"})
#: Barrier classes taken from a road layer's ``highway`` column when deriving blocks.
MAJOR_HIGHWAYS = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary"})

_SHRINK = 1.0  # metres: footprint vertices are moved this far inside before seeding cells
_BIG_FOOTPRINT = 600.0  # m²: footprints larger than this seed cells from their outline too


@dataclass
class _Piece:
    atoms: list[int]
    households: int
    difficult_households: int
    rural: bool
    blocks: set[int]


# =========================================================================== API
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
    progress: bool | None = None,
) -> Plan:
    """Partition an area into grids (网格) of 300–500 households.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Footprints from :func:`gridmap.read_buildings`. When ``households`` is missing
        or incomplete, :func:`gridmap.estimate_households` is run first.
    communities : geopandas.GeoDataFrame, optional
        Community (社区/村) polygons with ``community_code`` and ``street_code``
        (3-digit) and ``name``; or a 12-digit ``code``. Without it, planning blocks are
        derived from the major roads in `barriers` and the plan's notes say so.
    barriers : GeoDataFrame or list of GeoDataFrame, optional
        Major roads, rivers and railways (lines, or polygons whose outlines are used).
        Grids do not straddle them unless no in-range plan exists otherwise.
    difficult : GeoDataFrame, str, callable or array, optional
        Difficult areas: polygons, the name of a boolean building column, a callable
        ``f(buildings) -> bool array``, or a boolean array. Their grids use
        `difficult_range`.
    compounds : geopandas.GeoDataFrame, optional
        Compound (小区) polygons; a compound that fits in one grid is kept whole.
        Without it, a ``compound_id`` building column is used when present.
    institutions : geopandas.GeoDataFrame, optional
        Institution polygons (school, hospital, market, enterprise, government) that
        become special grids. Buildings whose ``use`` is in `institution_uses` become
        special grids too.
    household_range, difficult_range : tuple of int
        Inclusive household ranges of ordinary and difficult grids.
    admin_code : str, optional
        6-digit GB/T 2260 district code that starts every grid code.
    seed : int
        Seed of every random choice; the same input and seed give the same plan.
    village_distance : float
        Rural houses closer than this (m) belong to the same natural village.
    village_join_distance : float
        A village below the floor joins a neighbouring village or piece only when
        their nearest atoms are at most this far apart (m); a grid worker cannot serve
        settlements kilometres apart. Otherwise it is flagged ``isolated_village``.
    institution_uses, rural_uses : set of str
        Building uses treated as institutions and as rural houses.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    Plan
    """
    lo, hi = _check_range(household_range, "household_range")
    dlo, dhi = _check_range(difficult_range, "difficult_range")
    notes: list[str] = []
    b = _prepare_buildings(buildings, notes)
    crs = metric_crs(b, "buildings")
    b = to_metric(b, crs, "buildings").reset_index(drop=True)

    barrier_gdf, barrier_lines, barrier_labels = _prepare_barriers(barriers, crs)
    comms, admin = _prepare_communities(communities, b, barrier_gdf, crs, admin_code, notes)
    compounds_m = to_metric(compounds, crs, "compounds") if compounds is not None else None
    inst_m = to_metric(institutions, crs, "institutions") if institutions is not None else None

    pts = shapely.point_on_surface(b.geometry.values)
    b_comm = _locate(pts, comms.geometry.values, "buildings", notes, nearest=True)
    b_diff = _difficult_flags(b, pts, difficult, crs)
    b_comp = _compound_ids(b, pts, compounds_m)
    b_use = b["use"].astype(str).to_numpy() if "use" in b.columns else np.full(len(b), "unknown")
    hh = b["households"].to_numpy(dtype=np.int64)

    comm_kind = (
        comms["kind"].astype(str).to_numpy() if "kind" in comms.columns else np.full(len(comms), "")
    )
    b_rural = np.isin(b_use, list(rural_uses)) | (
        (comm_kind[b_comm] == "village") & ~np.isin(b_use, list(institution_uses))
    )

    specials, b_special = _special_areas(inst_m, comms, pts, b_comm, b_use, institution_uses)

    ctx = _Context(
        b=b,
        pts=pts,
        hh=hh,
        b_comm=b_comm,
        b_diff=b_diff,
        b_comp=b_comp,
        b_rural=b_rural,
        b_special=b_special,
        ranges=((lo, hi), (dlo, dhi)),
        village_distance=village_distance,
        village_join_distance=village_join_distance,
        seed=seed,
    )

    grid_rows: list[dict[str, Any]] = []
    split_rows: list[pd.DataFrame] = []
    b_grid = np.full(len(b), -1, dtype=np.int64)
    jobs = [(ci, comms.geometry.values[ci], specials.get(ci, [])) for ci in range(len(comms))]
    for rows in _run_communities(ctx, jobs, barrier_lines, progress):
        for row in rows:
            idx = row.pop("buildings_idx")
            sp = row.pop("splits")
            row["_row"] = len(grid_rows)
            b_grid[idx] = row["_row"]
            if sp is not None:
                sp = sp.copy()
                sp["_grid"] = row["_row"]
                split_rows.append(sp)
            grid_rows.append(row)

    grids = gpd.GeoDataFrame(grid_rows, geometry="geometry", crs=crs)
    grids = _finish_grids(grids, comms, admin)
    code_of = grids["grid_code"].to_numpy()
    # b_grid holds row indexes into the pre-sort grid table: map through _row.
    row_to_code = pd.Series(code_of, index=grids["_row"].to_numpy())
    out_b = b.copy()
    out_b["community_code"] = comms["community_code"].to_numpy()[b_comm]
    out_b["grid_code"] = np.where(b_grid >= 0, row_to_code.reindex(b_grid).to_numpy(), None)
    out_b["difficult"] = b_diff
    splits = (
        pd.concat(split_rows, ignore_index=True)
        if split_rows
        else pd.DataFrame(
            columns=[
                "building_id",
                "part",
                "unit_from",
                "unit_to",
                "floor_from",
                "floor_to",
                "households",
                "_grid",
            ]
        )
    )
    splits["grid_code"] = row_to_code.reindex(splits["_grid"].to_numpy()).to_numpy()
    splits = splits.drop(columns="_grid")
    # A building whose parts all landed in one grid is not split after all.
    n_grids = splits.groupby("building_id")["grid_code"].transform("nunique")
    splits = splits[n_grids > 1].reset_index(drop=True)
    for col in ("part", "unit_from", "unit_to", "floor_from", "floor_to", "households"):
        splits[col] = splits[col].astype("int64")
    _flag_split_compounds(grids, out_b["grid_code"].to_numpy(), b_comp, hh, b_diff, ctx.ranges)
    crossings = _crossings(grids, barrier_lines, barrier_labels)
    if len(crossings):
        crossed = set(crossings["grid_code"])
        m = grids["grid_code"].isin(crossed)
        grids.loc[m, "flags"] = grids.loc[m, "flags"].map(lambda f: _add_flag(f, "crosses_barrier"))
    grids = grids.drop(columns="_row")[GRID_COLUMNS + ["geometry"]]
    grids = grids.sort_values("grid_code", kind="stable").reset_index(drop=True)

    res = grids[grids["kind"] != "special"]
    inr = ((res["households"] >= res["range_min"]) & (res["households"] <= res["range_max"])).mean()
    notes.append(
        f"{len(grids)} grids ({(grids['kind'] == 'community').sum()} community, "
        f"{(grids['kind'] == 'rural').sum()} rural, {(grids['kind'] == 'special').sum()} special); "
        f"{inr:.1%} of residential grids in range; {len(crossings)} barrier crossings; "
        f"{splits['building_id'].nunique()} buildings split by units."
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
        "communities_given": communities is not None,
    }
    return Plan(
        grids=grids,
        buildings=out_b,
        crs=crs,
        splits=splits,
        crossings=crossings,
        communities=comms,
        barriers=barrier_gdf,
        compounds=compounds_m,
        notes=notes,
        params=params,
    )


# ==================================================================== preparation
def _check_range(r: tuple[int, int], name: str) -> tuple[int, int]:
    try:
        lo, hi = (int(r[0]), int(r[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise PlanError(f"{name} must be a pair of integers (min, max), got {r!r}") from exc
    if not 0 < lo <= hi:
        raise PlanError(f"{name} must satisfy 0 < min <= max, got {r!r}")
    return lo, hi


def _prepare_buildings(buildings: gpd.GeoDataFrame, notes: list[str]) -> gpd.GeoDataFrame:
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise SchemaError(
            f"buildings must be a GeoDataFrame (use gridmap.read_buildings), got {type(buildings).__name__}"
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
    need_estimate = (
        "households" not in buildings.columns
        or "households_source" not in buildings.columns
        or buildings["households"].isna().any()
        or "units" not in buildings.columns
    )
    if need_estimate:
        from .households import estimate_households

        buildings = estimate_households(buildings)
        notes.append("Households were missing or incomplete: estimated with estimate_households().")
    bad = shapely.is_empty(buildings.geometry.values) | buildings.geometry.isna().to_numpy()
    if bad.any():
        raise SchemaError(
            f"{int(bad.sum())} buildings have empty geometry, e.g. rows {np.flatnonzero(bad)[:5].tolist()}",
            source="buildings",
        )
    return buildings


def _prepare_barriers(barriers, crs) -> tuple[gpd.GeoDataFrame | None, np.ndarray, np.ndarray]:
    if barriers is None:
        return None, np.array([], dtype=object), np.array([], dtype=object)
    layers = barriers if isinstance(barriers, list | tuple) else [barriers]
    frames = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, gpd.GeoDataFrame):
            raise SchemaError(f"barriers[{i}] must be a GeoDataFrame, got {type(layer).__name__}")
        if len(layer) == 0:
            continue
        m = to_metric(layer, crs, f"barriers[{i}]")
        label = _barrier_label(m)
        frames.append(
            gpd.GeoDataFrame({"barrier": label, "name": label}, geometry=m.geometry.values, crs=crs)
        )
    if not frames:
        return None, np.array([], dtype=object), np.array([], dtype=object)
    gdf = pd.concat(frames, ignore_index=True)
    geoms = gdf.geometry.values
    poly = np.isin(shapely.get_type_id(geoms), (3, 6))
    lines = np.where(poly, shapely.boundary(geoms), geoms)
    keep = ~shapely.is_empty(lines)
    return gdf, np.asarray(lines[keep], dtype=object), gdf["barrier"].to_numpy()[keep]


def _barrier_label(m: gpd.GeoDataFrame) -> np.ndarray:
    label = pd.Series([""] * len(m), index=m.index, dtype=object)
    for col in ("railway", "waterway", "highway"):
        if col in m.columns:
            v = m[col].astype(object)
            label = label.where(
                label != "", v.where(v.notna(), "").map(lambda s, c=col: f"{c}={s}" if s else "")
            )
    if "name" in m.columns:
        nm = m["name"].astype(object).where(m["name"].notna(), "")
        label = (label + " " + nm).str.strip()
    return label.where(label != "", "barrier").to_numpy()


def _prepare_communities(
    communities, b: gpd.GeoDataFrame, barrier_gdf, crs, admin_code, notes
) -> tuple[gpd.GeoDataFrame, str]:
    if communities is None:
        comms = _derive_blocks(b, barrier_gdf, crs)
        notes.append(
            f"No community layer was given: {len(comms)} planning blocks were derived by "
            "polygonizing the major roads (barriers) around the buildings; grids nest in them."
        )
    else:
        if not isinstance(communities, gpd.GeoDataFrame):
            raise SchemaError(
                f"communities must be a GeoDataFrame, got {type(communities).__name__}"
            )
        if len(communities) == 0:
            raise PlanError("the community layer is empty", source="communities")
        comms = to_metric(communities, crs, "communities").reset_index(drop=True).copy()
        geoms = shapely.make_valid(comms.geometry.values)
        geoms = np.array([_g._polygonal(g) for g in geoms], dtype=object)
        if shapely.is_empty(geoms).any():
            bad = np.flatnonzero(shapely.is_empty(geoms))[:5].tolist()
            raise PlanError(f"communities at rows {bad} have no polygon area", source="communities")
        comms = comms.set_geometry(geoms)
    if "community_code" not in comms.columns:
        if "code" in comms.columns and comms["code"].astype(str).str.len().eq(12).all():
            code = comms["code"].astype(str)
            comms["street_code"] = code.str[6:9]
            comms["community_code"] = code.str[9:12]
            admin_code = admin_code or code.iloc[0][:6]
        else:
            comms["community_code"] = [f"{i + 1:03d}" for i in range(len(comms))]
            notes.append("Communities had no community_code: numbered 001, 002, ... in file order.")
    if "street_code" not in comms.columns:
        comms["street_code"] = "001"
        notes.append("Communities had no street_code: all put in street 001.")
    for col in ("community_code", "street_code"):
        comms[col] = comms[col].astype(str).str.strip()
        bad = ~comms[col].str.fullmatch(r"\d{3}")
        if bad.any():
            raise SchemaError(
                f"column '{col}' must hold 3-digit codes; row {int(np.flatnonzero(bad)[0])} has "
                f"{comms[col][bad].iloc[0]!r}",
                source="communities",
            )
    dup = comms.duplicated(["street_code", "community_code"])
    if dup.any():
        raise SchemaError(
            f"duplicate street_code+community_code {comms.loc[dup, ['street_code', 'community_code']].iloc[0].tolist()}",
            source="communities",
        )
    if "name" not in comms.columns:
        comms["name"] = comms["community_code"]
    if admin_code is None:
        admin_code = "000000"
        notes.append("No admin_code given: grid codes start with 000000.")
    admin_code = str(admin_code)
    if len(admin_code) != 6 or not admin_code.isdigit():
        raise PlanError(f"admin_code must be a 6-digit GB/T 2260 code, got {admin_code!r}")
    return comms, admin_code


def _derive_blocks(b: gpd.GeoDataFrame, barrier_gdf, crs) -> gpd.GeoDataFrame:
    hull = shapely.buffer(
        shapely.convex_hull(shapely.union_all(shapely.point_on_surface(b.geometry.values))), 30.0
    )
    lines = np.array([], dtype=object)
    if barrier_gdf is not None:
        g = barrier_gdf.geometry.values
        lines = np.where(np.isin(shapely.get_type_id(g), (3, 6)), shapely.boundary(g), g)
    blocks = _g._community_blocks(hull, np.asarray(lines, dtype=object), min_area=1.0)
    if len(blocks) == 0:
        blocks = np.array([hull], dtype=object)
    # Absorb slivers (< 1 ha) into a neighbour so blocks are meaningful planning units.
    pts = shapely.point_on_surface(b.geometry.values)
    tree = shapely.STRtree(blocks)
    idx = tree.query(pts, predicate="within")
    has = np.zeros(len(blocks), dtype=bool)
    has[np.unique(idx[1])] = True
    merged, _ = _g._merge_empty_blocks(blocks, has)
    gdf = gpd.GeoDataFrame(
        {
            "community_code": [f"{i + 1:03d}" for i in range(len(merged))],
            "street_code": "001",
            "name": [f"规划片区 Block {i + 1}" for i in range(len(merged))],
        },
        geometry=list(merged),
        crs=crs,
    )
    order = _g._sequence_codes(gdf.geometry.values, np.zeros(len(gdf), dtype=int))
    gdf = gdf.iloc[np.argsort(order)].reset_index(drop=True)
    gdf["community_code"] = [f"{i + 1:03d}" for i in range(len(gdf))]
    return gdf


def _locate(
    pts: np.ndarray, polys: np.ndarray, what: str, notes: list[str], nearest: bool
) -> np.ndarray:
    """Index of the polygon holding each point (nearest polygon for points outside)."""
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(pts, predicate="intersects")
    out = np.full(len(pts), -1, dtype=np.int64)
    # A point on a shared border intersects two polygons: keep the first (deterministic).
    order = np.lexsort((gi, pi))
    pi, gi = pi[order], gi[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    out[pi[first]] = gi[first]
    missing = np.flatnonzero(out < 0)
    if len(missing) and nearest:
        near = tree.query_nearest(pts[missing], return_distance=True, all_matches=False)
        (src, tgt), dist = near
        out[missing[src]] = tgt
        notes.append(
            f"{len(missing)} {what} lie outside every community; each was given to the nearest "
            f"community (at most {dist.max():.0f} m away)."
        )
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
    if callable(difficult):
        flags = np.asarray(difficult(b), dtype=bool)
    else:
        flags = np.asarray(difficult, dtype=bool)
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
        tree = shapely.STRtree(compounds_m.geometry.values)
        pi, gi = tree.query(pts, predicate="within")
        out = np.full(len(b), None, dtype=object)
        out[pi] = cid[gi]
        return out
    if "compound_id" in b.columns:
        v = b["compound_id"].astype(object)
        return v.where(v.notna() & (v.astype(str) != ""), None).to_numpy()
    return np.full(len(b), None, dtype=object)


def _special_areas(inst_m, comms, pts, b_comm, b_use, institution_uses):
    """Special-grid polygons per community and each building's special group (or -1).

    An institution polygon is clipped to the community holding it; where institution
    polygons overlap, the earlier one keeps the overlap. Buildings inside a polygon (in
    the same community) belong to it. Institution buildings outside every polygon are
    clustered (50 m, same community and use) into special grids of their own.
    """
    specials: dict[int, list[dict[str, Any]]] = {}
    b_special = np.full(len(pts), -1, dtype=np.int64)
    group = 0
    if inst_m is not None and len(inst_m):
        geoms = shapely.make_valid(inst_m.geometry.values)
        names = (
            inst_m["name"].astype(str).to_numpy()
            if "name" in inst_m.columns
            else np.full(len(inst_m), "")
        )
        uses = (
            inst_m["use"].astype(str).to_numpy()
            if "use" in inst_m.columns
            else np.full(len(inst_m), "institution")
        )
        home = _locate(
            shapely.point_on_surface(geoms), comms.geometry.values, "institutions", [], nearest=True
        )
        clipped = shapely.intersection(geoms, comms.geometry.values[home])
        clipped = np.array([_g._polygonal(g) for g in clipped], dtype=object)
        # Overlaps: the earlier institution keeps the shared area.
        tree = shapely.STRtree(clipped)
        left, right = tree.query(clipped, predicate="intersects")
        for i in np.unique(right[left < right]):
            earlier = left[(right == i) & (left < i)]
            clipped[i] = _g._polygonal(
                shapely.difference(clipped[i], shapely.union_all(clipped[earlier]))
            )
        keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) >= 1.0)
        groups = np.full(len(clipped), -1, dtype=np.int64)
        groups[keep] = np.arange(int(keep.sum()))
        for i in np.flatnonzero(keep):
            specials.setdefault(int(home[i]), []).append(
                {"group": int(groups[i]), "geometry": clipped[i], "name": names[i], "use": uses[i]}
            )
        group = int(keep.sum())
        # Buildings inside an institution polygon of their own community (first match).
        pi, gi = shapely.STRtree(clipped[keep]).query(pts, predicate="intersects")
        gi = np.flatnonzero(keep)[gi]
        same = b_comm[pi] == home[gi]
        pi, gi = pi[same], gi[same]
        order = np.lexsort((gi, pi))
        pi, gi = pi[order], gi[order]
        first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
        b_special[pi[first]] = groups[gi[first]]
    # Institution buildings outside any institution polygon: cluster by 50 m per community+use.
    loose = np.flatnonzero(np.isin(b_use, list(institution_uses)) & (b_special < 0))
    if len(loose):
        xy = shapely.get_coordinates(pts[loose])
        key = pd.factorize(pd.Series(b_comm[loose]).astype(str) + "|" + pd.Series(b_use[loose]))[0]
        lab = _cluster(xy, 50.0, key)
        _, lab = np.unique(lab, return_inverse=True)
        b_special[loose] = group + lab
        firsts = loose[np.unique(lab, return_index=True)[1]]
        for k, bi in enumerate(firsts):
            specials.setdefault(int(b_comm[bi]), []).append(
                {"group": group + k, "geometry": None, "name": "", "use": str(b_use[bi])}
            )
    return specials, b_special


def _cluster(xy: np.ndarray, distance: float, key: np.ndarray | None = None) -> np.ndarray:
    """Single-linkage clusters of points closer than `distance` (and with equal `key`)."""
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = cKDTree(xy).query_pairs(distance, output_type="ndarray")
    if key is not None and len(pairs):
        pairs = pairs[key[pairs[:, 0]] == key[pairs[:, 1]]]
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


# ==================================================================== per community
@dataclass
class _Context:
    b: gpd.GeoDataFrame
    pts: np.ndarray
    hh: np.ndarray
    b_comm: np.ndarray
    b_diff: np.ndarray
    b_comp: np.ndarray
    b_rural: np.ndarray
    b_special: np.ndarray
    ranges: tuple[tuple[int, int], tuple[int, int]]
    village_distance: float
    village_join_distance: float
    seed: int


def _run_communities(ctx, jobs, barrier_lines, progress):
    """Plan every community, in a pool of worker processes when the job is large.

    Communities are independent, so they are planned in parallel (fork start method:
    the workers share the prepared inputs instead of copying them). Results come back
    in community order, so the plan does not depend on the number of workers.
    """
    global _WORKER_STATE
    workers = _worker_count(len(jobs), len(ctx.hh))
    bar = tqdm(total=len(jobs), desc="partition", unit="community", disable=progress is False)
    try:
        if workers <= 1:
            for job in jobs:
                yield _plan_community(ctx, *job, barrier_lines)
                bar.update()
            return
        _WORKER_STATE = (ctx, barrier_lines)
        mp = multiprocessing.get_context("fork")
        with mp.Pool(workers) as pool:
            for rows in pool.imap(_plan_community_job, jobs, chunksize=2):
                yield rows
                bar.update()
    finally:
        _WORKER_STATE = None
        bar.close()


_WORKER_STATE: tuple | None = None


def _plan_community_job(job):
    ctx, barrier_lines = _WORKER_STATE
    return _plan_community(ctx, *job, barrier_lines)


def _worker_count(n_communities: int, n_buildings: int) -> int:
    """Worker processes: one per core for big jobs, none (in-process) for small ones."""
    env = os.environ.get("GRIDMAP_WORKERS")
    if env:
        return max(1, int(env))
    if (
        n_communities < 4
        or n_buildings < 20_000
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return 1
    return max(1, min(os.cpu_count() or 1, 8, n_communities))


def _plan_community(ctx, ci, comm_geom, specials, barrier_lines):
    """Plan one community; return its grid rows.

    The community is cut into blocks and tessellated once. Compounds that fit in one
    grid are kept whole. Where that leaves no in-range split (the compounds are too
    lumpy for the household range), the atoms are grouped again with those compounds
    broken into their buildings and partitioned again on the same tessellation; the
    better of the two plans (fewer households out of range) is kept. Grids holding
    part of a broken compound are flagged ``split_compound`` later.
    """
    (lo, hi), (dlo, dhi) = ctx.ranges
    bidx = np.flatnonzero(ctx.b_comm == ci)
    special_polys = [s for s in specials if s["geometry"] is not None]
    residential_area = comm_geom
    if special_polys:
        residential_area = _g._polygonal(
            shapely.difference(comm_geom, shapely.union_all([s["geometry"] for s in special_polys]))
        )
    in_poly_special = np.isin(ctx.b_special[bidx], [s["group"] for s in special_polys])
    free = bidx[~in_poly_special]  # buildings tessellated in the residential area

    atoms = _build_atoms(ctx, free)
    # ---------------------------------------------------------------- points
    geoms = ctx.b.geometry.values
    pt_xy, _, pt_bld, pt_part = _seed_points(geoms, ctx.pts, atoms)
    # ---------------------------------------------------------------- blocks
    blocks = (
        _g._community_blocks(residential_area, barrier_lines)
        if not residential_area.is_empty
        else np.array([], dtype=object)
    )
    has_pts = np.zeros(len(blocks), dtype=bool)
    if len(blocks) and len(pt_xy):
        loc = _point_blocks(pt_xy, blocks)
        has_pts[np.unique(loc)] = True
    blocks, _ = (
        _g._merge_empty_blocks(blocks, has_pts) if len(blocks) else (blocks, np.zeros(0, bool))
    )

    grid_geoms: list[shapely.Geometry] = []
    grid_meta: list[dict[str, Any]] = []
    anchors: list[np.ndarray] = []
    locked: list[bool] = []

    if len(pt_xy) and len(blocks):
        # ------------------------------------------------------ tessellation
        pt_block = _point_blocks(pt_xy, blocks)
        cells = np.empty(len(pt_xy), dtype=object)
        on_edge = np.zeros(len(pt_xy), dtype=bool)
        edges_list, lens_list = [], []
        for k in range(len(blocks)):
            sel = np.flatnonzero(pt_block == k)
            if len(sel) == 0:
                continue
            c, e, ln, clipped = _g._tessellate_block(blocks[k], pt_xy[sel])
            cells[sel] = c
            on_edge[sel] = clipped
            edges_list.append(sel[e])
            lens_list.append(ln)
        if len(blocks) > 1:
            e, ln = _g._cross_block_adjacency(cells, pt_block, np.flatnonzero(on_edge))
            edges_list.append(e)
            lens_list.append(ln)
        pedges = np.concatenate(edges_list) if edges_list else np.empty((0, 2), np.int64)
        plens = np.concatenate(lens_list) if lens_list else np.empty(0)
        tess = (cells, pedges, plens, pt_bld, pt_part, pt_block)
        # ------------------------------------------------------- partition
        geoms_res, metas, lumpy = _group_and_partition(ctx, ci, atoms, tess, quick=True)
        if lumpy:
            atoms2 = _build_atoms(ctx, free, frozenset(lumpy))
            geoms2, metas2, _ = _group_and_partition(ctx, ci, atoms2, tess, quick=False)
            if _range_excess(metas2) < _range_excess(metas):
                geoms_res, metas = geoms2, metas2
        for geom, meta in zip(geoms_res, metas, strict=True):
            grid_geoms.append(geom)
            grid_meta.append(meta)
            anchors.append(meta["anchor_pts"])
            locked.append(False)
    elif len(pt_xy) == 0 and not residential_area.is_empty and not special_polys:
        # A community without any building: one empty grid covering it.
        grid_geoms.append(residential_area)
        kind = "rural" if ctx.b_rural[bidx].any() else "community"
        grid_meta.append(
            _empty_meta(kind, lo, hi, "no_households", "the community has no buildings")
        )
        anchors.append(np.array([], dtype=object))
        locked.append(False)

    # ------------------------------------------------ special grids from polygons
    for s in special_polys:
        members = bidx[ctx.b_special[bidx] == s["group"]]
        grid_geoms.append(s["geometry"])
        grid_meta.append(
            {
                "kind": "special",
                "households": int(ctx.hh[members].sum()),
                "range_min": 0,
                "range_max": 0,
                "difficult": False,
                "flags": "",
                "flag_reason": "",
                "name": s["name"] or s["use"],
                "buildings_idx": members,
                "anchor_pts": ctx.pts[members],
                "splits": None,
            }
        )
        anchors.append(ctx.pts[members])
        locked.append(True)

    if not grid_geoms:
        return []
    geoms_arr = np.array(grid_geoms, dtype=object)
    geoms_arr = _g._repair_coverage(comm_geom, geoms_arr, anchors, np.array(locked))
    rows = []
    for geom, meta in zip(geoms_arr, grid_meta, strict=True):
        row = {k: v for k, v in meta.items() if k != "anchor_pts"}
        row["_community"] = ci
        row["buildings"] = int(len(meta["buildings_idx"]))
        row["geometry"] = geom
        rows.append(row)
    return rows


def _range_excess(metas) -> int:
    """Households outside the range, summed over residential grids."""
    total = 0
    for r in metas:
        if r["kind"] != "special":
            h = r["households"]
            total += max(0, r["range_min"] - h) + max(0, h - r["range_max"])
    return total


def _group_and_partition(ctx, ci, atoms, tess, quick):
    """Partition one grouping of a community's buildings into atoms on a tessellation.

    Returns the grid polygons (dissolved cells), their metadata, and the compounds whose
    pieces could not be balanced while kept whole.
    """
    cells, pedges, plens, pt_bld, pt_part, pt_block = tess
    pt_atom = _atoms_of_points(atoms, pt_bld, pt_part)
    pt_atom = _split_disconnected_atoms(atoms, pt_atom, pt_bld, pedges, ctx.hh)
    aedges = pt_atom[pedges] if len(pedges) else np.empty((0, 2), np.int64)
    m = aedges[:, 0] != aedges[:, 1] if len(aedges) else np.zeros(0, bool)
    aedges, alens = aedges[m], plens[m]
    atom_block = _atom_block(pt_atom, pt_block, len(atoms["weight"]))
    atom_label, metas, lumpy = _partition_atoms(ctx, ci, atoms, aedges, alens, atom_block, quick)
    # Loose institution buildings were tessellated with the residential atoms: their
    # regions come after the residential ones in metas.
    geoms = _g._dissolve_cells(cells, atom_label[pt_atom], len(metas))
    return list(geoms), metas, lumpy


def _atoms_of_points(atoms, pt_bld, pt_part) -> np.ndarray:
    """The atom of every seed point, from its building (and unit part, for split ones)."""
    whole = [
        (m, a)
        for a, (m, p) in enumerate(zip(atoms["members"], atoms["part"], strict=True))
        if p is None
    ]
    out = np.full(len(pt_bld), -1, dtype=np.int64)
    if whole:
        mb = np.concatenate([m for m, _ in whole])
        ma = np.concatenate([np.full(len(m), a) for m, a in whole])
        lookup = pd.Series(ma, index=mb)
        sel = pt_part < 0
        out[sel] = lookup.reindex(pt_bld[sel]).fillna(-1).to_numpy(dtype=np.int64)
    parts = {
        (int(p[0]), int(p[1]["part"].iloc[0])): a
        for a, p in enumerate(atoms["part"])
        if p is not None
    }
    for i in np.flatnonzero(pt_part >= 0):
        out[i] = parts[(int(pt_bld[i]), int(pt_part[i]))]
    return out


def _empty_meta(kind, lo, hi, flag, reason) -> dict[str, Any]:
    return {
        "kind": kind,
        "households": 0,
        "range_min": lo,
        "range_max": hi,
        "difficult": False,
        "flags": flag,
        "flag_reason": reason,
        "name": "",
        "buildings_idx": np.zeros(0, dtype=np.int64),
        "anchor_pts": np.array([], dtype=object),
        "splits": None,
    }


def _build_atoms(ctx: _Context, free: np.ndarray, explode=frozenset()) -> dict[str, Any]:
    """Group the community's free buildings into atoms.

    Returns a dict of parallel arrays: ``weight``, ``difficult`` (bool), ``rural`` (bool),
    ``zone`` (str key), ``special`` (special group or -1), ``members`` (list of building
    index arrays), ``part`` (list: None or (building index, part row) for unit splits).
    """
    (lo, hi), (dlo, dhi) = ctx.ranges
    hh, diff, comp, rural, spec = ctx.hh, ctx.b_diff, ctx.b_comp, ctx.b_rural, ctx.b_special
    weight: list[int] = []
    difficult: list[bool] = []
    is_rural: list[bool] = []
    zone: list[str] = []
    special: list[int] = []
    members: list[np.ndarray] = []
    parts: list[Any] = []

    def add(w, d, r, z, s, mem, part=None):
        weight.append(int(w))
        difficult.append(bool(d))
        is_rural.append(bool(r))
        zone.append(z)
        special.append(int(s))
        members.append(np.asarray(mem, dtype=np.int64))
        parts.append(part)

    # Loose institution buildings: one atom per special group.
    sp_mask = spec[free] >= 0
    for grp in np.unique(spec[free][sp_mask]):
        mem = free[spec[free] == grp]
        add(hh[mem].sum(), False, False, f"special{grp}", grp, mem)
    res = free[~sp_mask]
    bhi = np.where(diff[res], dhi, hi)
    big = res[hh[res] > bhi]
    small = res[hh[res] <= bhi]

    # Villages.
    rur = small[rural[small]]
    if len(rur):
        xy = shapely.get_coordinates(ctx.pts[rur])
        vlab = _cluster(xy, ctx.village_distance)
        for v in np.unique(vlab):
            mem = rur[vlab == v]
            d = diff[mem].mean() >= 0.5
            vhi = dhi if d else hi
            if hh[mem].sum() <= vhi:
                add(hh[mem].sum(), d, True, f"village{v}", -1, mem)
            else:
                for bi in mem:
                    add(hh[bi], diff[bi], True, f"village{v}", -1, [bi])
    urb = small[~rural[small]]
    # Compounds.
    cids = comp[urb]
    has_c = np.array([c is not None for c in cids], dtype=bool)
    big_comp = set()
    if has_c.any():
        cser = pd.Series(urb[has_c]).groupby(pd.Series(cids[has_c]).to_numpy(), sort=True)
        big_ids = {c for c in comp[big] if c is not None}
        for cid, grp in cser:
            mem = grp.to_numpy()
            d = diff[mem].mean() >= 0.5
            chi = dhi if d else hi
            total = hh[mem].sum() + (hh[big][comp[big] == cid].sum() if cid in big_ids else 0)
            if total <= chi and cid not in big_ids and cid not in explode:
                add(hh[mem].sum(), d, False, f"compound{cid}", -1, mem)
            else:
                big_comp.add(cid)
                for bi in mem:
                    add(hh[bi], diff[bi], False, f"compound{cid}|d{int(diff[bi])}", -1, [bi])
    for bi in urb[~has_c]:
        add(hh[bi], diff[bi], False, f"d{int(diff[bi])}", -1, [bi])
    # Buildings above the ceiling: split by units (or floors).
    for bi in big:
        d = bool(diff[bi])
        blo, bhi_ = (dlo, dhi) if d else (lo, hi)
        table = _split_building(ctx.b.iloc[bi], int(hh[bi]), blo, bhi_)
        z = f"compound{comp[bi]}|d{int(d)}" if comp[bi] is not None else f"d{int(d)}"
        if rural[bi]:
            z = "rural_big"
        for p in range(len(table)):
            add(table["households"].iloc[p], d, rural[bi], z, -1, [bi], (bi, table.iloc[[p]]))
    return {
        "weight": np.array(weight, dtype=np.int64),
        "difficult": np.array(difficult, dtype=bool),
        "rural": np.array(is_rural, dtype=bool),
        "zone": np.array(zone, dtype=object),
        "special": np.array(special, dtype=np.int64),
        "members": members,
        "part": parts,
    }


def _split_building(row: pd.Series, households: int, lo: int, hi: int) -> pd.DataFrame:
    """Split a building with more households than `hi` into parts by units (or floors).

    The number of parts is the smallest m with m*lo <= households <= m*hi, or
    ceil(households / hi) when none exists (parts then join neighbours in the partition).
    Units are kept together; a building with fewer units than parts is split by floors.
    """
    m = None
    for cand in range(int(np.ceil(households / hi)), int(households // lo) + 1):
        if cand * lo <= households <= cand * hi:
            m = cand
            break
    if m is None:
        m = int(np.ceil(households / hi))
    units = int(row.get("units", 1) or 1) if pd.notna(row.get("units", 1)) else 1
    levels = int(round(float(row.get("levels", 1) or 1))) if pd.notna(row.get("levels", 1)) else 1
    bid = row["building_id"]
    if units >= m:
        per_unit = np.full(units, households // units, dtype=np.int64)
        per_unit[: households % units] += 1
        cum = np.cumsum(per_unit)
        cuts = [int(np.argmin(np.abs(cum - households * j / m))) + 1 for j in range(1, m)]
        edges = np.unique(np.clip(np.array([0, *cuts, units]), 0, units))
        rows = []
        for p in range(len(edges) - 1):
            a, b = edges[p], edges[p + 1]
            rows.append((bid, p + 1, a + 1, b, 1, levels, int(per_unit[a:b].sum())))
    else:
        per_floor = np.full(levels, households // levels, dtype=np.int64)
        per_floor[: households % levels] += 1
        cum = np.cumsum(per_floor)
        cuts = [int(np.argmin(np.abs(cum - households * j / m))) + 1 for j in range(1, m)]
        edges = np.unique(np.clip(np.array([0, *cuts, levels]), 0, levels))
        rows = []
        for p in range(len(edges) - 1):
            a, b = edges[p], edges[p + 1]
            rows.append((bid, p + 1, 1, units, a + 1, b, int(per_floor[a:b].sum())))
    return pd.DataFrame(
        rows,
        columns=[
            "building_id",
            "part",
            "unit_from",
            "unit_to",
            "floor_from",
            "floor_to",
            "households",
        ],
    )


def _seed_points(
    geoms: np.ndarray, rep: np.ndarray, atoms: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Seed points of the tessellation and the atom of each point.

    Every building gives its representative point; large footprints also give their
    outline (moved inside by 1 m) so cells follow the footprint. A building split into
    parts gives one point per unit strip.
    """
    xy_list, atom_list, bld_list, part_list = [], [], [], []
    whole_b, whole_a = [], []
    split_parts: dict[int, list[tuple[int, pd.DataFrame]]] = {}
    for a, (mem, part) in enumerate(zip(atoms["members"], atoms["part"], strict=True)):
        if part is None:
            whole_b.append(mem)
            whole_a.append(np.full(len(mem), a))
        else:
            split_parts.setdefault(int(part[0]), []).append((a, part[1]))
    if whole_b:
        wb = np.concatenate(whole_b)
        wa = np.concatenate(whole_a)
        xy_list.append(shapely.get_coordinates(rep[wb]))
        atom_list.append(wa)
        bld_list.append(wb)
        part_list.append(np.full(len(wb), -1))
        g = geoms[wb]
        big = shapely.area(g) > _BIG_FOOTPRINT
        if big.any():
            inner = shapely.buffer(g[big], -_SHRINK)
            inner = shapely.simplify(inner, 1.0)
            coords, idx = shapely.get_coordinates(inner, return_index=True)
            xy_list.append(coords)
            atom_list.append(wa[big][idx])
            bld_list.append(wb[big][idx])
            part_list.append(np.full(len(idx), -1))
    for bi, plist in split_parts.items():
        hh = np.array([p[1]["households"].iloc[0] for p in plist], dtype=float)
        strips = _g._unit_strips(geoms[bi], hh / hh.sum())
        for (a, table), s in zip(plist, strips, strict=True):
            if s.is_empty:
                s = geoms[bi]
            xy_list.append(shapely.get_coordinates(shapely.point_on_surface(s)))
            atom_list.append(np.array([a]))
            bld_list.append(np.array([bi]))
            part_list.append(np.array([int(table["part"].iloc[0])]))
    if not xy_list:
        empty = np.empty(0, dtype=np.int64)
        return np.empty((0, 2)), empty, empty, empty
    xy = np.concatenate(xy_list)
    at = np.concatenate(atom_list).astype(np.int64)
    bl = np.concatenate(bld_list).astype(np.int64)
    pp = np.concatenate(part_list).astype(np.int64)
    # Drop duplicate seeds (identical coordinates), keeping every atom at least one seed.
    keep = _g._dedupe_seeds(xy, at)
    return xy[keep], at[keep], bl[keep], pp[keep]


def _split_disconnected_atoms(atoms, pt_atom, pt_bld, pedges, hh) -> np.ndarray:
    """Split atoms whose cells are not one connected area (in place); return pt_atom.

    A compound cut by a barrier, or a village whose houses' cells are interleaved with a
    neighbour's, would otherwise make its grid discontiguous. Each connected part of
    such an atom becomes an atom of its own (same zone, difficulty and kind); every
    building goes with the part holding its first seed point.
    """
    n_pts = len(pt_atom)
    if n_pts == 0 or len(pedges) == 0:
        return pt_atom
    same = pedges[pt_atom[pedges[:, 0]] == pt_atom[pedges[:, 1]]]
    g = coo_matrix((np.ones(len(same)), (same[:, 0], same[:, 1])), shape=(n_pts, n_pts))
    _, comp = connected_components(g, directed=False)
    pairs = np.unique(np.column_stack([pt_atom, comp]), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=len(atoms["weight"]))
    broken = np.flatnonzero(counts > 1)
    if len(broken) == 0:
        return pt_atom
    pt_atom = pt_atom.copy()
    new_cols = {k: list(atoms[k]) for k in ("weight", "difficult", "rural", "zone", "special")}
    for a in broken:
        if atoms["part"][a] is not None:
            continue  # a unit part has one seed
        sel = np.flatnonzero(pt_atom == a)
        # the component of each building = the component of its first seed
        first = pd.Series(comp[sel], index=pt_bld[sel]).groupby(level=0).first()
        parts = sorted(set(first.to_numpy().tolist()))
        for c in parts[1:]:
            mem = first.index[first.to_numpy() == c].to_numpy()
            new = len(new_cols["weight"])
            for k in ("difficult", "rural", "zone", "special"):
                new_cols[k].append(new_cols[k][a])
            new_cols["weight"].append(int(hh[mem].sum()))
            atoms["members"].append(mem.astype(np.int64))
            atoms["part"].append(None)
            moved = sel[np.isin(pt_bld[sel], mem)]
            pt_atom[moved] = new
        keep = first.index[first.to_numpy() == parts[0]].to_numpy()
        atoms["members"][a] = keep.astype(np.int64)
        new_cols["weight"][a] = int(hh[keep].sum())
    atoms["weight"] = np.array(new_cols["weight"], dtype=np.int64)
    atoms["difficult"] = np.array(new_cols["difficult"], dtype=bool)
    atoms["rural"] = np.array(new_cols["rural"], dtype=bool)
    atoms["zone"] = np.array(new_cols["zone"], dtype=object)
    atoms["special"] = np.array(new_cols["special"], dtype=np.int64)
    return pt_atom


def _point_blocks(xy: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    pts = shapely.points(xy)
    tree = shapely.STRtree(blocks)
    pi, bi = tree.query(pts, predicate="intersects")
    out = np.full(len(xy), -1, dtype=np.int64)
    order = np.lexsort((bi, pi))
    pi, bi = pi[order], bi[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
    out[pi[first]] = bi[first]
    miss = np.flatnonzero(out < 0)
    if len(miss):
        src, tgt = tree.query_nearest(pts[miss], all_matches=False)
        out[miss[src]] = tgt
    return out


def _atom_block(pt_atom: np.ndarray, pt_block: np.ndarray, n_atoms: int) -> np.ndarray:
    """The block holding most seeds of each atom (ties: lowest block index)."""
    nb = int(pt_block.max()) + 1 if len(pt_block) else 1
    key, counts = np.unique(pt_atom * nb + pt_block, return_counts=True)
    atom, block = key // nb, key % nb
    order = np.lexsort((block, -counts, atom))
    atom, block = atom[order], block[order]
    first = np.r_[True, atom[1:] != atom[:-1]]
    out = np.zeros(n_atoms, dtype=np.int64)
    out[atom[first]] = block[first]
    return out


# ======================================================================= pieces
def _partition_atoms(ctx, ci, atoms, edges, lens, atom_block, quick=False):
    """Group atoms into pieces, merge infeasible pieces, and cut pieces into regions.

    Returns the region label of every atom and the metadata of every region.
    """
    (lo, hi), (dlo, dhi) = ctx.ranges
    n = len(atoms["weight"])
    w = atoms["weight"]
    label = np.full(n, -1, dtype=np.int64)
    metas: list[dict[str, Any]] = []
    lumpy: set[str] = set()

    special = atoms["special"] >= 0
    # Pieces: components over edges joining atoms of the same zone and block.
    zone_key = pd.factorize(
        pd.Series(atoms["zone"]).astype(str) + "|" + pd.Series(atom_block).astype(str)
    )[0]
    if len(edges):
        same = (
            (zone_key[edges[:, 0]] == zone_key[edges[:, 1]])
            & ~special[edges[:, 0]]
            & ~special[edges[:, 1]]
        )
        e = edges[same]
    else:
        e = np.empty((0, 2), np.int64)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    pieces: dict[int, _Piece] = {}
    for a in np.flatnonzero(~special):
        p = int(comp[a])
        if p not in pieces:
            pieces[p] = _Piece([], 0, 0, True, set())
        pc = pieces[p]
        pc.atoms.append(int(a))
        pc.households += int(w[a])
        pc.difficult_households += int(w[a]) if atoms["difficult"][a] else 0
        pc.rural = pc.rural and bool(atoms["rural"][a])
        pc.blocks.add(int(atom_block[a]))
    # Piece adjacency over all edges between non-special atoms.
    ns = ~special[edges[:, 0]] & ~special[edges[:, 1]] if len(edges) else np.zeros(0, bool)
    pe = comp[edges[ns]] if len(edges) else np.empty((0, 2), np.int64)
    axy = _atom_xy(ctx, atoms)
    pdist = np.hypot(*(axy[edges[ns, 0]] - axy[edges[ns, 1]]).T) if len(edges) else np.empty(0)
    isolated_flags: dict[int, str] = {}
    pieces = _merge_pieces(pieces, pe, pdist, ctx.ranges, ctx.village_join_distance, isolated_flags)

    rng_seed = int(ctx.seed) * 100_003 + int(ci)
    main_parts = _main_parts(atoms)

    def solve(pc: _Piece, effort: str = "full"):
        idx = np.array(sorted(pc.atoms), dtype=np.int64)
        d = (
            pc.difficult_households * 2 > pc.households
            if pc.households
            else (atoms["difficult"][idx].mean() >= 0.5)
        )
        plo, phi = (dlo, dhi) if d else (lo, hi)
        local = np.full(n, -1, dtype=np.int64)
        local[idx] = np.arange(len(idx))
        if len(edges):
            m = (local[edges[:, 0]] >= 0) & (local[edges[:, 1]] >= 0)
            le, ll = local[edges[m]], lens[m]
        else:
            le, ll = np.empty((0, 2), np.int64), np.empty(0)
        res = partition_region(
            w[idx], axy[idx], le, plo, phi, seed=rng_seed, edge_lengths=ll, effort=effort
        )
        return {"res": res, "idx": idx, "d": d, "lo": plo, "hi": phi}

    def whole_compounds(pc: _Piece) -> list[str]:
        out = []
        for a in pc.atoms:
            z = atoms["zone"][a]
            if z.startswith("compound") and "|" not in z:
                out.append(z[len("compound") :])
        return out

    def excess(sol) -> int:
        wts = sol["res"].weights
        return int(np.maximum(sol["lo"] - wts, 0).sum() + np.maximum(wts - sol["hi"], 0).sum())

    # First a quick solve. A piece that fails it and holds whole compounds is left to the
    # caller, which re-plans the community with those compounds broken up (when this is
    # a quick pass); otherwise the piece gets the full search at once.
    solved = {pid: solve(pc, "quick") for pid, pc in pieces.items()}
    # Lumpy pieces: compounds kept whole may leave no in-range split (handled by the
    # caller), and a piece alone may have no in-range split at all. Then try joining a
    # neighbouring piece (crossing a barrier: the plan reports it) and keep the join
    # only when it puts fewer households out of range.
    piece_of = np.full(n, -1, dtype=np.int64)
    for pid, pc in pieces.items():
        piece_of[pc.atoms] = pid
    if len(edges):
        pp = piece_of[edges]
        pp = pp[(pp[:, 0] >= 0) & (pp[:, 1] >= 0) & (pp[:, 0] != pp[:, 1])]
    else:
        pp = np.empty((0, 2), np.int64)
    for pid in sorted(pieces, key=lambda p: min(pieces[p].atoms)):
        if pid not in pieces or "unbalanced" not in solved[pid]["res"].status:
            continue
        if pieces[pid].rural:
            continue
        nbrs = np.unique(np.concatenate([pp[pp[:, 0] == pid, 1], pp[pp[:, 1] == pid, 0]]))
        nbrs = sorted(
            (q for q in nbrs.tolist() if q in pieces and not pieces[q].rural),
            key=lambda q: (pieces[q].households, q),
        )
        for q in nbrs[:4]:
            pc, qc = pieces[pid], pieces[q]
            merged = _Piece(
                pc.atoms + qc.atoms,
                pc.households + qc.households,
                pc.difficult_households + qc.difficult_households,
                pc.rural and qc.rural,
                pc.blocks | qc.blocks,
            )
            sol = solve(merged, "quick")
            if excess(sol) < excess(solved[pid]) + excess(solved[q]):
                pieces[pid] = merged
                solved[pid] = sol
                del pieces[q], solved[q]
                piece_of[merged.atoms] = pid
                pp = np.where(pp == q, pid, pp)
                pp = pp[pp[:, 0] != pp[:, 1]]
                if "unbalanced" not in sol["res"].status:
                    break

    # Pieces still unbalanced get the full search once (unless the caller will re-plan
    # the community with their compounds broken up).
    for pid, pc in pieces.items():
        if "unbalanced" in solved[pid]["res"].status and not (quick and whole_compounds(pc)):
            sol = solve(pc, "full")
            if excess(sol) < excess(solved[pid]):
                solved[pid] = sol

    for pid in sorted(pieces, key=lambda p: min(pieces[p].atoms)):
        pc = pieces[pid]
        sol = solved[pid]
        res, idx, d, plo, phi = sol["res"], sol["idx"], sol["d"], sol["lo"], sol["hi"]
        kind = "rural" if pc.rural else "community"
        if "unbalanced" in res.status:
            for a in idx:
                z = atoms["zone"][a]
                if z.startswith("compound") and "|" not in z:
                    lumpy.add(z[len("compound") :])
        for r in range(res.k):
            sel = idx[res.labels == r]
            label[sel] = len(metas)
            status = res.status[r]
            flags, reason = [], []
            if pid in isolated_flags and pc.households < plo:
                flags.append("isolated_village")
                reason.append(isolated_flags[pid])
            elif status != "ok":
                flags.append({"infeasible_total": "infeasible_split"}.get(status, status))
                reason.append(res.note or status)
            hh_r = int(w[sel].sum())
            if hh_r == 0:
                flags.append("no_households")
                reason.append("no households in this grid")
            metas.append(
                _region_meta(ctx, atoms, sel, kind, plo, phi, d, flags, reason, main_parts)
            )
    # Loose special groups: a region each.
    for a in np.flatnonzero(special):
        label[a] = len(metas)
        meta = _region_meta(ctx, atoms, np.array([a]), "special", 0, 0, False, [], [], main_parts)
        meta["range_min"] = meta["range_max"] = 0
        use = ctx.b["use"].iloc[atoms["members"][a][0]] if "use" in ctx.b.columns else "institution"
        meta["name"] = str(use)
        metas.append(meta)
    return label, metas, lumpy


def _atom_xy(ctx, atoms) -> np.ndarray:
    """Household-weighted centre of each atom's buildings."""
    mem = atoms["members"]
    n = len(mem)
    if n == 0:
        return np.empty((0, 2))
    lens = np.fromiter((len(m) for m in mem), dtype=np.int64, count=n)
    mb = np.concatenate(mem)
    ma = np.repeat(np.arange(n), lens)
    c = shapely.get_coordinates(ctx.pts[mb])
    w = np.maximum(ctx.hh[mb], 1).astype(float)
    tot = np.bincount(ma, w, minlength=n)
    return np.column_stack(
        [
            np.bincount(ma, w * c[:, 0], minlength=n) / tot,
            np.bincount(ma, w * c[:, 1], minlength=n) / tot,
        ]
    )


def _region_meta(ctx, atoms, sel, kind, lo, hi, difficult, flags, reason, main_parts):
    mem = [atoms["members"][a] for a in sel]
    bidx = np.unique(np.concatenate(mem)) if mem else np.zeros(0, np.int64)
    split_tables = [atoms["part"][a][1] for a in sel if atoms["part"][a] is not None]
    # A split building counts once, in the grid holding its largest part (for b_grid).
    whole = (
        np.unique(np.concatenate([atoms["members"][a] for a in sel if atoms["part"][a] is None]))
        if any(atoms["part"][a] is None for a in sel)
        else np.zeros(0, np.int64)
    )
    return {
        "kind": kind,
        "households": int(atoms["weight"][sel].sum()),
        "range_min": int(lo),
        "range_max": int(hi),
        "difficult": bool(difficult),
        "flags": ";".join(flags),
        "flag_reason": "; ".join(reason),
        "name": "",
        "buildings_idx": np.concatenate(
            [whole, np.array([atoms["part"][a][0] for a in sel if a in main_parts], dtype=np.int64)]
        ).astype(np.int64),
        "anchor_pts": ctx.pts[bidx] if len(bidx) else np.array([], dtype=object),
        "splits": pd.concat(split_tables, ignore_index=True) if split_tables else None,
    }


def _main_parts(atoms) -> set[int]:
    """Atoms holding the main part of a split building: most households, then lowest part.

    A split building is listed once in the building table, under the grid of its main
    part (the unit table lists every part).
    """
    best: dict[int, tuple[int, int, int]] = {}
    for a, part in enumerate(atoms["part"]):
        if part is None:
            continue
        bi, table = part
        key = (-int(table["households"].iloc[0]), int(table["part"].iloc[0]), a)
        if bi not in best or key < best[bi]:
            best[bi] = key
    return {key[2] for key in best.values()}


def _feasible(h: int, lo: int, hi: int) -> bool:
    if h == 0:
        return False
    k_min = -(-h // hi)
    return k_min * lo <= h


def _merge_pieces(
    pieces: dict[int, _Piece],
    pe: np.ndarray,
    pdist: np.ndarray,
    ranges,
    join_distance: float,
    isolated: dict[int, str],
):
    """Merge pieces whose totals cannot be split in range with a neighbouring piece.

    Preference: a merge that makes the total feasible; then one that stays within a
    block (no barrier crossing); then one that keeps the difficulty class; then the
    smallest merged total. Villages merge only when that gives a feasible total;
    otherwise they stay alone and are flagged ``isolated_village``.
    """
    (lo, hi), (dlo, dhi) = ranges

    def rng(p: _Piece) -> tuple[int, int]:
        d = p.difficult_households * 2 > p.households if p.households else False
        return (dlo, dhi) if d else (lo, hi)

    adj: dict[int, set[int]] = {p: set() for p in pieces}
    gap: dict[tuple[int, int], float] = {}
    for (a, b), dist in zip(pe.tolist(), pdist.tolist(), strict=True):
        if a != b and a in adj and b in adj:
            adj[a].add(b)
            adj[b].add(a)
            key = (min(a, b), max(a, b))
            gap[key] = min(gap.get(key, np.inf), dist)
    changed = True
    while changed:
        changed = False
        order = sorted(pieces, key=lambda p: (pieces[p].households, min(pieces[p].atoms)))
        for p in order:
            if p not in pieces:
                continue
            pc = pieces[p]
            plo, phi = rng(pc)
            if _feasible(pc.households, plo, phi) and pc.households > 0:
                continue
            best, best_key = None, None
            for q in sorted(adj[p]):
                qc = pieces[q]
                if pc.rural and gap.get((min(p, q), max(p, q)), np.inf) > join_distance:
                    continue  # settlements too far apart for one grid worker
                merged = _Piece(
                    pc.atoms + qc.atoms,
                    pc.households + qc.households,
                    pc.difficult_households + qc.difficult_households,
                    pc.rural and qc.rural,
                    pc.blocks | qc.blocks,
                )
                mlo, mhi = rng(merged)
                feas = _feasible(merged.households, mlo, mhi)
                crosses = (
                    not (pc.blocks & qc.blocks) and merged.households > 0 and pc.households > 0
                )
                key = (not feas, crosses, rng(qc) != (plo, phi), merged.households, q)
                if best_key is None or key < best_key:
                    best, best_key = q, key
            if best is None:
                if pc.rural and pc.households < plo:
                    isolated[p] = (
                        f"natural village of {pc.households} households below the floor of {plo}; "
                        "no neighbour in the community gives an in-range grid"
                    )
                continue
            feasible_merge = not best_key[0]
            below = pc.households < plo
            if pc.rural and not feasible_merge and pc.households > 0:
                if below:
                    isolated[p] = (
                        f"natural village of {pc.households} households below the floor of {plo}; "
                        "joining a neighbour would not give an in-range grid"
                    )
                continue
            if not feasible_merge and not (below or pc.households == 0):
                continue  # above the ceiling and infeasible: least-bad split later
            q = best
            qc = pieces.pop(q)
            pc.atoms += qc.atoms
            pc.households += qc.households
            pc.difficult_households += qc.difficult_households
            pc.rural = pc.rural and qc.rural
            pc.blocks |= qc.blocks
            isolated.pop(p, None)
            if q in isolated:
                isolated.pop(q)
            for r in adj.pop(q):
                adj[r].discard(q)
                if r != p:
                    adj[r].add(p)
                    adj[p].add(r)
                    kq, kp = (min(q, r), max(q, r)), (min(p, r), max(p, r))
                    gap[kp] = min(gap.get(kp, np.inf), gap.get(kq, np.inf))
            adj[p].discard(p)
            changed = True
    return pieces


# ======================================================================= finish
def _finish_grids(grids: gpd.GeoDataFrame, comms: gpd.GeoDataFrame, admin: str) -> gpd.GeoDataFrame:
    ci = grids["_community"].to_numpy()
    grids["community_code"] = comms["community_code"].to_numpy()[ci]
    grids["street_code"] = comms["street_code"].to_numpy()[ci]
    grids["community_name"] = comms["name"].astype(str).to_numpy()[ci]
    seq = _g._sequence_codes(grids.geometry.values, ci)
    if seq.max(initial=0) > 999:
        raise PlanError("a community has more than 999 grids; the 3-digit sequence would overflow")
    grids["grid_code"] = [
        f"{admin}{s}{c}{q:03d}"
        for s, c, q in zip(grids["street_code"], grids["community_code"], seq, strict=True)
    ]
    grids["worker"] = ""
    grids["area_m2"] = shapely.area(grids.geometry.values)
    grids["polsby_popper"] = _g.polsby_popper(grids.geometry.values)
    hh = grids["households"].to_numpy()
    res = grids["kind"].to_numpy() != "special"
    out = res & ((hh < grids["range_min"].to_numpy()) | (hh > grids["range_max"].to_numpy()))
    grids["flags"] = [
        _add_flag(f, "out_of_range") if o else f for f, o in zip(grids["flags"], out, strict=True)
    ]
    return grids.drop(columns=["_community"], errors="ignore")


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
    for cid, row in split.iterrows():
        for code in df.loc[df["c"] == cid, "g"].unique():
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


def _crossings(grids: gpd.GeoDataFrame, lines: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Every barrier line that runs through a grid's interior for more than 1 m."""
    if len(lines) == 0 or len(grids) == 0:
        return empty_crossings()
    inner = shapely.buffer(grids.geometry.values, -0.5)
    tree = shapely.STRtree(lines)
    gi, li = tree.query(inner, predicate="intersects")
    if len(gi) == 0:
        return empty_crossings()
    length = shapely.length(shapely.intersection(lines[li], inner[gi]))
    m = length > 1.0
    df = pd.DataFrame(
        {
            "grid_code": grids["grid_code"].to_numpy()[gi[m]],
            "barrier": labels[li[m]],
            "length_m": length[m],
            "_g": gi[m],
        }
    )
    if len(df) == 0:
        return empty_crossings()
    df = df.groupby(["grid_code", "barrier", "_g"], as_index=False)["length_m"].sum()
    hh = grids["households"].to_numpy()
    flags = grids["flags"].to_numpy()
    kinds = grids["kind"].to_numpy()

    def reason(g: int) -> str:
        if kinds[g] == "special":
            return "the institution's own polygon spans the barrier"
        if "isolated_village" in flags[g] or "infeasible" in flags[g] or "below_floor" in flags[g]:
            return f"no in-range grid exists on one side alone ({hh[g]} households)"
        return (
            "joined across the barrier: the land or households on one side cannot form an "
            "in-range grid on their own (empty land, a short or dead-end barrier, or too few households)"
        )

    df["reason"] = [reason(int(g)) for g in df["_g"]]
    df["length_m"] = df["length_m"].round(1)
    return df[CROSSING_COLUMNS].sort_values(["grid_code", "barrier"]).reset_index(drop=True)
