"""Compare two versions of a plan: grids added, removed and changed, buildings moved."""

from __future__ import annotations

import dataclasses
import html

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..plan import Plan
from .common import TOL_M2, splits_of

__all__ = ["PlanDiff", "diff"]


@dataclasses.dataclass
class PlanDiff:
    """Differences between two versions of a plan (see :func:`diff`).

    Attributes
    ----------
    added : geopandas.GeoDataFrame
        Grids of the new plan whose codes are not in the old one (new geometry).
    removed : geopandas.GeoDataFrame
        Grids of the old plan whose codes are gone (old geometry).
    changed : geopandas.GeoDataFrame
        Grids in both plans that differ: ``grid_code``, ``households_old``,
        ``households_new``, ``households_delta``, ``buildings_old``, ``buildings_new``,
        ``area_old_m2``, ``area_new_m2``, ``area_changed_m2`` (area of the symmetric
        difference), ``what`` (``;``-separated: ``households``, ``buildings``,
        ``geometry`` and changed attributes such as ``worker``) and the new geometry.
    moved : pandas.DataFrame
        Buildings (or split parts) now in another grid: ``building_id``, ``part``
        (``""`` for a whole building, else e.g. ``units 3-4``), ``households``,
        ``from_grid``, ``to_grid`` (several codes joined by ``;`` when a building's
        split changed).
    households : pandas.DataFrame
        Household change per grid: ``grid_code``, ``status`` (added, removed, changed),
        ``households_old``, ``households_new``, ``delta``; grids with a change only.
    """

    old: Plan
    new: Plan
    added: gpd.GeoDataFrame
    removed: gpd.GeoDataFrame
    changed: gpd.GeoDataFrame
    moved: pd.DataFrame
    households: pd.DataFrame

    def summary(self) -> dict[str, int]:
        """Counts: grids added, removed, changed; buildings moved; households moved."""
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "moved_buildings": int(self.moved["building_id"].nunique()) if len(self.moved) else 0,
            "moved_households": int(self.moved["households"].sum()) if len(self.moved) else 0,
        }

    @property
    def empty(self) -> bool:
        """True when the two plans have the same grids and assignments."""
        return not any(self.summary().values())

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<PlanDiff: {s['added']} added, {s['removed']} removed, {s['changed']} changed "
            f"grids; {s['moved_buildings']} buildings moved ({s['moved_households']} households)>"
        )

    def map(self, *, tiles: str | None = "osm"):
        """Draw the changes on a folium map (WGS84).

        Unchanged grids are outlined in grey, changed grids orange, added grids green,
        removed grids dashed red (old outline); moved buildings are blue with a tooltip
        giving where they came from.

        Parameters
        ----------
        tiles : str or None
            Base map as in :func:`gridmap.plan_map` (None: no base map, works offline).

        Returns
        -------
        folium.Map
        """
        import folium

        from ..crs import to_wgs84
        from ..maps import TILES

        new = to_wgs84(self.new.grids, "new grids")
        bounds = new.total_bounds if len(new) else to_wgs84(self.old.grids).total_bounds
        m = folium.Map(tiles=None, control_scale=True)
        if tiles not in (None, "none"):
            url, attr = TILES.get(tiles, (tiles, "base map"))
            folium.TileLayer(url, attr=attr, name="底图 Base map", max_zoom=19).add_to(m)
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
        touched = set(self.changed["grid_code"]) | set(self.added["grid_code"])
        same = new[~new["grid_code"].isin(touched)]
        if len(same):
            folium.GeoJson(
                same[["grid_code", "households", "geometry"]].to_json(drop_id=True),
                name="未变 Unchanged",
                style_function=lambda f: {"color": "#777", "weight": 1, "fillOpacity": 0.05},
                tooltip=folium.GeoJsonTooltip(["grid_code", "households"]),
            ).add_to(m)
        layers = (
            (self.removed, "删除 Removed", "#d62728", "6 4", 0.0, ["grid_code", "households"]),
            (
                self.changed,
                "变化 Changed",
                "#ff7f0e",
                None,
                0.35,
                ["grid_code", "households_old", "households_new", "what"],
            ),
            (self.added, "新增 Added", "#2ca02c", None, 0.35, ["grid_code", "households"]),
        )
        for gdf, name, colour, dash, fill, fields in layers:
            if not len(gdf):
                continue
            w = to_wgs84(gdf, name)[[*fields, "geometry"]]
            folium.GeoJson(
                w.to_json(drop_id=True, default=str),
                name=name,
                style_function=lambda f, c=colour, d=dash, o=fill: {
                    "color": c,
                    "weight": 3,
                    "dashArray": d,
                    "fillColor": c,
                    "fillOpacity": o,
                },
                tooltip=folium.GeoJsonTooltip(fields),
            ).add_to(m)
        if len(self.moved):
            bl = self.new.buildings[
                self.new.buildings["building_id"].isin(self.moved["building_id"])
            ]
            info = (
                self.moved.groupby("building_id")
                .agg(
                    from_grid=("from_grid", lambda x: ";".join(sorted(set(x)))),
                    to_grid=("to_grid", lambda x: ";".join(sorted(set(x)))),
                    households=("households", "sum"),
                )
                .reset_index()
            )
            bl = bl[["building_id", "geometry"]].merge(info, on="building_id")
            w = to_wgs84(gpd.GeoDataFrame(bl, geometry="geometry", crs=self.new.crs))
            folium.GeoJson(
                w.to_json(drop_id=True, default=str),
                name="移动的楼栋 Moved buildings",
                style_function=lambda f: {
                    "color": "#1f3b99",
                    "weight": 1,
                    "fillColor": "#1f77b4",
                    "fillOpacity": 0.9,
                },
                tooltip=folium.GeoJsonTooltip(
                    ["building_id", "households", "from_grid", "to_grid"],
                    aliases=["楼栋 Building", "户数 Households", "从 From", "到 To"],
                ),
            ).add_to(m)
        s = self.summary()
        box = (
            '<div style="position:fixed;bottom:24px;left:12px;z-index:9999;background:#fff;'
            'padding:8px 10px;border:1px solid #999;font:12px sans-serif;line-height:1.5">'
            "<b>版本比较 Plan diff</b>"
            f"<div style='color:#2ca02c'>新增 added: {s['added']}</div>"
            f"<div style='color:#d62728'>删除 removed: {s['removed']}</div>"
            f"<div style='color:#ff7f0e'>变化 changed: {s['changed']}</div>"
            f"<div style='color:#1f77b4'>移动楼栋 moved buildings: {s['moved_buildings']} "
            f"({s['moved_households']} 户)</div></div>"
        )
        m.get_root().html.add_child(folium.Element(box))
        folium.LayerControl(collapsed=False).add_to(m)
        return m

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>" + self.households.head(30).to_html(
            index=False
        )


def diff(old: Plan, new: Plan, *, tolerance_m2: float = TOL_M2) -> PlanDiff:
    """Compare two versions of a plan.

    Grids are matched by code: after :func:`renumber` most grids show as removed and
    added. Buildings are matched by ``building_id``.

    Parameters
    ----------
    old, new : Plan
        Two versions (e.g. before and after edits, or two saved files).
    tolerance_m2 : float
        A grid whose polygon changes by less than this area (m²) keeps its geometry.

    Returns
    -------
    PlanDiff
    """
    go = old.grids.to_crs(new.crs) if old.crs != new.crs else old.grids
    gn = new.grids
    co, cn = set(go["grid_code"]), set(gn["grid_code"])
    added = gn[~gn["grid_code"].isin(co)].reset_index(drop=True)
    removed = go[~go["grid_code"].isin(cn)].reset_index(drop=True)
    both = sorted(co & cn)
    o = go.set_index("grid_code").loc[both]
    n = gn.set_index("grid_code").loc[both]
    go_geom = o.geometry.values
    gn_geom = n.geometry.values
    sym = shapely.area(shapely.symmetric_difference(go_geom, gn_geom)) if len(both) else np.zeros(0)
    what = [[] for _ in both]
    hh_o = o["households"].to_numpy(dtype=np.int64)
    hh_n = n["households"].to_numpy(dtype=np.int64)
    bo = o["buildings"].to_numpy(dtype=np.int64)
    bn = n["buildings"].to_numpy(dtype=np.int64)
    for i in np.flatnonzero(hh_o != hh_n):
        what[i].append("households")
    for i in np.flatnonzero(bo != bn):
        what[i].append("buildings")
    for i in np.flatnonzero(sym > tolerance_m2):
        what[i].append("geometry")
    for col in ("kind", "difficult", "range_min", "range_max", "name", "worker"):
        if col in o.columns and col in n.columns:
            diffc = o[col].astype(str).to_numpy() != n[col].astype(str).to_numpy()
            for i in np.flatnonzero(diffc):
                what[i].append(col)
    ch = np.array([bool(w) for w in what], dtype=bool)
    changed = gpd.GeoDataFrame(
        {
            "grid_code": np.array(both, dtype=object)[ch] if len(both) else [],
            "households_old": hh_o[ch],
            "households_new": hh_n[ch],
            "households_delta": (hh_n - hh_o)[ch],
            "buildings_old": bo[ch],
            "buildings_new": bn[ch],
            "area_old_m2": shapely.area(go_geom)[ch] if len(both) else [],
            "area_new_m2": shapely.area(gn_geom)[ch] if len(both) else [],
            "area_changed_m2": sym[ch],
            "what": [";".join(w) for w, c in zip(what, ch, strict=True) if c],
        },
        geometry=list(gn_geom[ch]) if len(both) else [],
        crs=new.crs,
    )
    hh = pd.concat(
        [
            pd.DataFrame(
                {
                    "grid_code": added["grid_code"],
                    "status": "added",
                    "households_old": 0,
                    "households_new": added["households"].astype(np.int64),
                }
            ),
            pd.DataFrame(
                {
                    "grid_code": removed["grid_code"],
                    "status": "removed",
                    "households_old": removed["households"].astype(np.int64),
                    "households_new": 0,
                }
            ),
            pd.DataFrame(
                {
                    "grid_code": changed["grid_code"],
                    "status": "changed",
                    "households_old": changed["households_old"],
                    "households_new": changed["households_new"],
                }
            ),
        ],
        ignore_index=True,
    )
    hh["delta"] = hh["households_new"] - hh["households_old"]
    hh = hh[(hh["delta"] != 0) | (hh["status"] != "changed")]
    hh = hh.sort_values(["status", "grid_code"]).reset_index(drop=True)
    return PlanDiff(
        old=old,
        new=new,
        added=added,
        removed=removed,
        changed=changed,
        moved=_moved(old, new),
        households=hh,
    )


def _moved(old: Plan, new: Plan) -> pd.DataFrame:
    ao, an = _allocation(old), _allocation(new)
    cols = ["building_id", "part", "households", "from_grid", "to_grid"]
    m = ao.merge(an, on=["building_id", "key"], how="outer", suffixes=("_o", "_n"))
    exact = m[m["grid_o"].notna() & m["grid_n"].notna()]
    rows = exact[exact["grid_o"] != exact["grid_n"]]
    out = [
        pd.DataFrame(
            {
                "building_id": rows["building_id"],
                "part": rows["part_n"],
                "households": rows["households_n"].astype(np.int64),
                "from_grid": rows["grid_o"],
                "to_grid": rows["grid_n"],
            }
        )
    ]
    # Buildings whose split changed: compare the sets of grids per building.
    loose = m.loc[m["grid_o"].isna() | m["grid_n"].isna(), "building_id"].unique()
    if len(loose):
        go = (
            ao[ao["building_id"].isin(loose)]
            .groupby("building_id")["grid"]
            .agg(lambda x: ";".join(sorted(set(x))))
        )
        gn = (
            an[an["building_id"].isin(loose)]
            .groupby("building_id")["grid"]
            .agg(lambda x: ";".join(sorted(set(x))))
        )
        hn = an[an["building_id"].isin(loose)].groupby("building_id")["households"].sum()
        ids = [i for i in loose if go.get(i, "") != gn.get(i, "")]
        out.append(
            pd.DataFrame(
                {
                    "building_id": ids,
                    "part": "split changed",
                    "households": [int(hn.get(i, 0)) for i in ids],
                    "from_grid": [go.get(i, "") for i in ids],
                    "to_grid": [gn.get(i, "") for i in ids],
                }
            )
        )
    res = pd.concat(out, ignore_index=True)[cols]
    return res.sort_values(["building_id", "part"]).reset_index(drop=True)


def _allocation(plan: Plan) -> pd.DataFrame:
    """One row per whole building or split part: building_id, key, part, households, grid."""
    b = plan.buildings
    s = splits_of(plan)
    split_ids = set(s["building_id"])
    whole = b[~b["building_id"].isin(split_ids) & b["grid_code"].notna()]
    w = pd.DataFrame(
        {
            "building_id": whole["building_id"].astype(str).to_numpy(),
            "key": "",
            "part": "",
            "households": pd.to_numeric(whole["households"]).fillna(0).astype(np.int64).to_numpy(),
            "grid": whole["grid_code"].astype(str).to_numpy(),
        }
    )
    if len(s):
        f0 = s["floor_from"] if "floor_from" in s.columns else pd.Series(1, index=s.index)
        f1 = s["floor_to"] if "floor_to" in s.columns else pd.Series(1, index=s.index)
        key = (
            s["unit_from"].astype(str)
            + "-"
            + s["unit_to"].astype(str)
            + "/"
            + f0.astype(str)
            + "-"
            + f1.astype(str)
        )
        label = "units " + s["unit_from"].astype(str) + "-" + s["unit_to"].astype(str)
        if "floor_from" in s.columns:
            floors = s["floor_from"].astype(str) + "-" + s["floor_to"].astype(str)
            label = label.where(
                s.groupby("building_id")["unit_from"].transform("nunique") > 1,
                "floors " + floors,
            )
        p = pd.DataFrame(
            {
                "building_id": s["building_id"].astype(str).to_numpy(),
                "key": key.to_numpy(),
                "part": label.to_numpy(),
                "households": s["households"].astype(np.int64).to_numpy(),
                "grid": s["grid_code"].astype(str).to_numpy(),
            }
        )
        w = pd.concat([w, p], ignore_index=True)
    return w
