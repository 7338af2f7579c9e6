"""Redrawing the grids an edit touches: re-tessellation among their buildings, and
planner runs on an area (split, re-plan)."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..partition.atoms import distinct_seeds, footprint_seeds, strip_seeds
from ..partition.blocks import barrier_ranks
from ..partition.geometry import PRECISION, polsby_popper, polygonal, unit_strips
from ..partition.pieces import NON_RESIDENTIAL
from ..partition.tessellation import redraw
from ..plan import Plan
from .common import PSEUDO, editable_buildings, normalise_splits, splits_of

log = logging.getLogger("gridmap")

__all__ = ["forced_range", "replan_area", "retessellate"]


def retessellate(
    plan: Plan, b: pd.DataFrame, s: pd.DataFrame, region: list[str], keep: list[str]
) -> dict[str, shapely.Geometry]:
    """Redraw the polygons of the grids `region` from their (new) buildings.

    The union of their current polygons, cut by community borders and barriers, is
    tessellated among the seed points of the buildings (and split parts) assigned to
    those grids, exactly as :func:`gridmap.plan_grids` draws grids, and dissolved per
    grid. Grids of `region` left without buildings disappear (unless in `keep`).
    Returns ``{code: polygon}``.
    """
    g = plan.grids
    area = polygonal(
        shapely.union_all(g.loc[g["grid_code"].isin(region)].geometry.values, grid_size=PRECISION)
    )
    xy, unit, main, unit_label = _seeds(b, s, region)
    present = sorted(set(unit_label.tolist()))
    out_codes = [region[i] for i in present]
    out_codes += [k for k in keep if k not in out_codes]
    if len(xy) == 0:
        return {out_codes[0]: area} if out_codes else {}
    pos = {c: i for i, c in enumerate(out_codes)}
    label = np.array([pos[region[i]] for i in unit_label], dtype=np.int64)
    areas = np.array([area], dtype=object)
    if plan.communities is not None and len(plan.communities):
        cg = plan.communities.geometry.values
        cg = cg[shapely.intersects(cg, area)]
        if len(cg) > 1:
            pieces = np.array(
                [polygonal(x) for x in shapely.intersection(cg, area, grid_size=PRECISION)],
                dtype=object,
            )
            areas = pieces[~shapely.is_empty(pieces)]
    lines, ranks = _barrier_lines_ranked(plan, area)
    geoms = redraw(areas, xy, unit, main, label, len(out_codes), barrier_lines=lines,
                   barrier_rank=ranks)  # fmt: skip
    return dict(zip(out_codes, geoms, strict=True))


def _barrier_lines_ranked(plan: Plan, area: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Barrier lines (polygon barriers by their outline) near `area`, with their ranks."""
    bar = plan.barriers
    if bar is None or not len(bar):
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    ranks = bar["rank"].to_numpy() if "rank" in bar.columns else barrier_ranks(bar)[0]
    geoms = bar.geometry.values
    near = shapely.intersects(geoms, shapely.box(*shapely.bounds(area)).buffer(1.0))
    geoms, ranks = geoms[near], np.asarray(ranks)[near]
    poly = np.isin(shapely.get_type_id(geoms), (3, 6))
    lines = np.where(poly, shapely.boundary(geoms), geoms)
    keep = ~(shapely.is_empty(lines) | shapely.is_missing(lines))
    return np.asarray(lines[keep], dtype=object), np.asarray(ranks)[keep].astype(np.int64)


def _seeds(
    b: pd.DataFrame, s: pd.DataFrame, region: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seed points of the buildings and split parts assigned to the grids `region`.

    Every building (or split part) is a unit with a main seed; returns the seeds, the
    unit of each and whether it is the unit's main seed, and per unit the index into
    `region` of its grid.
    """
    pos = {c: i for i, c in enumerate(region)}
    geoms = b.geometry.values
    codes = b["grid_code"].to_numpy()
    split_ids = set(s["building_id"])
    here = np.flatnonzero(b["grid_code"].isin(region).to_numpy())
    ids = b["building_id"].to_numpy()[here]
    whole = here[np.array([i not in split_ids for i in ids], dtype=bool)]
    anchors = shapely.point_on_surface(geoms[whole])
    fxy, fi, fmain = footprint_seeds(anchors, geoms[whole])
    xy, unit, main = [fxy], [fi], [fmain]
    labels = [pos[c] for c in codes[whole]]
    sp = s[s["grid_code"].isin(region)]
    if len(sp):
        lookup = pd.Series(np.arange(len(b)), index=b["building_id"].to_numpy())
        for bid in sorted(set(sp["building_id"])):
            allp = s[s["building_id"] == bid].sort_values("part")
            bi = int(lookup[bid])
            anchor = shapely.point_on_surface(geoms[bi])
            pts, holder = strip_seeds(geoms[bi], anchor, allp["households"].to_numpy())
            for k, code in enumerate(allp["grid_code"].tolist()):
                if code not in pos:
                    continue
                u = len(labels)
                labels.append(pos[code])
                xy.append(pts[k : k + 1])
                unit.append(np.array([u]))
                main.append(np.ones(1, dtype=bool))
                if k == holder:
                    xy.append(shapely.get_coordinates(anchor))
                    unit.append(np.array([u]))
                    main.append(np.zeros(1, dtype=bool))
    if not labels:
        return np.empty((0, 2)), np.empty(0, np.int64), np.empty(0, bool), np.empty(0, np.int64)
    sxy, su, sm = distinct_seeds(
        np.concatenate(xy), np.concatenate(unit).astype(np.int64), np.concatenate(main)
    )
    return sxy, su, sm, np.array(labels, dtype=np.int64)


# ------------------------------------------------------------------ planner runs
def forced_range(households: int, n: int) -> tuple[int, int]:
    """A household range for which `n` is the only feasible number of grids."""
    t = households / n
    d = 0.9 / (n + 1)
    lo = max(1, int(np.floor(t * (1 - d))))
    hi = max(lo, int(np.ceil(t * (1 + d))))
    # Tighten until n is the only k with k*lo <= households <= k*hi.
    while hi > lo and (n - 1) * hi >= households:
        hi -= 1
    while lo < hi and (n + 1) * lo <= households:
        lo += 1
    return lo, hi


def replan_area(
    plan: Plan,
    area: shapely.Geometry,
    *,
    street: str,
    community: str,
    community_name: str,
    village: bool,
    codes: set[str],
    ranges: tuple[int, int] | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Run :func:`gridmap.plan_grids` on the buildings and parts of the grids `codes`.

    Returns the new grids (temporary codes ``~0001``...), and the plan's buildings and
    splits with those buildings and parts re-assigned to the temporary codes.
    """
    from ..partition import plan_grids

    b = editable_buildings(plan)
    s = splits_of(plan).copy()
    # Parts of split buildings in these grids: whole again when every part is here.
    part_in = s["grid_code"].isin(codes)
    all_here = s.assign(_in=part_in).groupby("building_id")["_in"].all()
    whole_again = set(all_here.index[all_here])
    pseudo_rows = s[part_in & ~s["building_id"].isin(whole_again)]
    split_ids = set(s["building_id"])
    mine = (b["grid_code"].isin(codes) & ~b["building_id"].isin(split_ids)) | b["building_id"].isin(
        whole_again
    )
    sel = b[mine.to_numpy()]
    pseudo = _pseudo_buildings(b, s, pseudo_rows)
    drop = [c for c in ("grid_code", "community_code") if c in b.columns]
    inp = pd.concat([sel.drop(columns=drop), pseudo.drop(columns=drop, errors="ignore")])
    inp = gpd.GeoDataFrame(inp, geometry="geometry", crs=plan.crs).reset_index(drop=True)
    p = plan.params
    rng = ranges or tuple(p.get("household_range", (300, 500)))
    drng = ranges or tuple(p.get("difficult_range", (200, 300)))
    admin = str(p.get("admin_code") or plan.grids["grid_code"].iloc[0][:6])
    comm = gpd.GeoDataFrame(
        {
            "community_code": [community],
            "street_code": [street],
            "name": [community_name],
            "kind": ["village" if village else "community"],
        },
        geometry=[area],
        crs=plan.crs,
    )
    if len(inp) == 0:
        new_grids = gpd.GeoDataFrame(
            [
                {
                    "grid_code": "~0001",
                    "community_code": community,
                    "street_code": street,
                    "community_name": community_name,
                    "kind": "special",  # as the partition draws land without homes
                    "households": 0,
                    "buildings": 0,
                    "range_min": 0,
                    "range_max": 0,
                    "difficult": False,
                    "flags": "no_households",
                    "flag_reason": "the community holds no households (no building with "
                    "households is mapped in it); a special grid of non-residential land",
                    "name": NON_RESIDENTIAL,
                    "worker": "",
                    "area_m2": area.area,
                    "polsby_popper": float(polsby_popper(np.array([area]))[0]),
                    "geometry": area,
                }
            ],
            geometry="geometry",
            crs=plan.crs,
        )
        s = s[~s["building_id"].isin(whole_again) & ~part_in]
        return new_grids, b, s
    bar = plan.barriers
    barriers = None
    if bar is not None and len(bar):
        label = bar["barrier"] if "barrier" in bar.columns else "barrier"
        barriers = gpd.GeoDataFrame({"name": label}, geometry=bar.geometry.values, crs=plan.crs)
    sub = plan_grids(
        inp,
        comm,
        barriers=barriers,
        difficult="difficult" if "difficult" in inp.columns else None,
        compounds=plan.compounds,
        institutions=None,
        household_range=rng,
        difficult_range=drng,
        admin_code=admin,
        seed=int(p.get("seed", 0)),
        village_distance=float(p.get("village_distance", 150.0)),
        village_join_distance=float(p.get("village_join_distance", 2000.0)),
        institution_uses=set(p.get("institution_uses", ())) or _default_uses("INSTITUTION_USES"),
        rural_uses=set(p.get("rural_uses", ())) or _default_uses("RURAL_USES"),
        progress=False,
    )
    for note in sub.notes:
        log.debug("planner: %s", note)
    tmp = {c: f"~{i + 1:04d}" for i, c in enumerate(sub.grids["grid_code"])}
    new_grids = sub.grids.copy()
    new_grids["grid_code"] = new_grids["grid_code"].map(tmp)
    new_grids["community_name"] = community_name
    sb = sub.buildings
    sb_grid = sb["grid_code"].map(tmp)
    ids = sb["building_id"].astype(str)
    is_pseudo = ids.str.contains(PSEUDO, regex=False).to_numpy()
    # Whole real buildings.
    assign = pd.Series(sb_grid.to_numpy()[~is_pseudo], index=ids.to_numpy()[~is_pseudo])
    m = b["building_id"].isin(assign.index).to_numpy()
    b.loc[m, "grid_code"] = b.loc[m, "building_id"].map(assign).to_numpy()
    # Split rows: remove the parts being re-planned, add what the planner made.
    s = s[~(part_in | s["building_id"].isin(whole_again))]
    ss = sub.splits.copy()
    ss["grid_code"] = ss["grid_code"].map(tmp)
    ss_pseudo = ss["building_id"].astype(str).str.contains(PSEUDO, regex=False)
    new_rows = [ss[~ss_pseudo]]
    # Pseudo buildings (parts of split buildings) -> split rows of the real building.
    prow = pseudo_rows.copy()
    if len(prow):
        pid = prow["building_id"].astype(str) + PSEUDO + prow["part"].astype(str)
        whole_p = pd.Series(sb_grid.to_numpy()[is_pseudo], index=ids.to_numpy()[is_pseudo])
        resplit = set(ss.loc[ss_pseudo, "building_id"])
        keep_rows = prow[~pid.isin(resplit).to_numpy()].copy()
        keep_rows["grid_code"] = pid[~pid.isin(resplit)].map(whole_p).to_numpy()
        new_rows.append(keep_rows)
        for _, sub_rows in ss[ss_pseudo].groupby("building_id"):
            real, part = str(sub_rows["building_id"].iloc[0]).split(PSEUDO)
            orig = prow[(prow["building_id"] == real) & (prow["part"].astype(str) == part)].iloc[0]
            r = sub_rows.copy()
            r["building_id"] = real
            u0 = int(orig["unit_from"])
            f0 = (
                int(orig["floor_from"])
                if "floor_from" in orig and pd.notna(orig["floor_from"])
                else 1
            )
            r["unit_from"] = r["unit_from"] + u0 - 1
            r["unit_to"] = r["unit_to"] + u0 - 1
            if "floor_from" in r.columns:
                r["floor_from"] = r["floor_from"] + f0 - 1
                r["floor_to"] = r["floor_to"] + f0 - 1
            new_rows.append(r)
    s = pd.concat([s, *[r for r in new_rows if len(r)]], ignore_index=True)
    for col in ("part", "unit_from", "unit_to", "households"):
        s[col] = s[col].astype("int64")
    for col in ("floor_from", "floor_to"):
        if col in s.columns:
            s[col] = pd.to_numeric(s[col]).fillna(1).astype("int64")
    b, s = normalise_splits(b, s, only=set(pseudo_rows["building_id"]) | set(ss["building_id"]))
    return new_grids, b, s


def _pseudo_buildings(b: pd.DataFrame, s: pd.DataFrame, rows: pd.DataFrame) -> gpd.GeoDataFrame:
    """One planner input building per split part: its unit strip of the footprint."""
    if not len(rows):
        return b.iloc[:0].copy()
    lookup = pd.Series(np.arange(len(b)), index=b["building_id"].to_numpy())
    out = []
    for bid, grp in rows.groupby("building_id", sort=True):
        base = b.iloc[int(lookup[bid])]
        allp = s[s["building_id"] == bid].sort_values("part")
        hh = allp["households"].to_numpy(dtype=float)
        frac = hh / hh.sum() if hh.sum() > 0 else np.full(len(hh), 1.0 / len(hh))
        strips = dict(zip(allp["part"], unit_strips(base.geometry, frac), strict=True))
        for _, r in grp.iterrows():
            row = base.copy()
            row["building_id"] = f"{bid}{PSEUDO}{int(r['part'])}"
            row["households"] = int(r["households"])
            row["units"] = int(r["unit_to"]) - int(r["unit_from"]) + 1
            if "floor_from" in r and pd.notna(r.get("floor_from")):
                row["levels"] = float(int(r["floor_to"]) - int(r["floor_from"]) + 1)
            strip = strips.get(r["part"])
            row["geometry"] = base.geometry if strip is None or strip.is_empty else strip
            out.append(row)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=b.crs)


def _default_uses(name: str) -> set[str]:
    from .. import partition

    return set(getattr(partition, name))
