"""Folium maps of grid plans.

Maps are published in WGS84. Neighbouring grids get different colours (a greedy
graph colouring of the grid adjacency), every grid is labelled with its code and
households, and a popup shows its figures.
"""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from .crs import to_wgs84
from .plan import Plan

#: Twelve distinguishable fill colours for grids (neighbours never share one).
PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#86bcb6",
    "#8cd17d",
    "#d4a6c8",
]
KIND_LABELS = {
    "community": "社区网格 Community grid",
    "rural": "农村网格 Rural grid",
    "special": "专属网格 Special grid",
}
#: Base-map presets. ``None`` draws no tiles (the map stays usable offline).
TILES = {
    "osm": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap contributors"),
}


def plan_map(
    plan: Plan,
    *,
    tiles: str | None = "osm",
    attribution: str | None = None,
    show_buildings: bool = True,
    labels: bool | None = None,
    max_buildings: int = 30_000,
) -> folium.Map:
    """Draw a plan on a folium map.

    Parameters
    ----------
    plan : Plan
        The plan from :func:`gridmap.plan_grids` or :func:`gridmap.read_plan`.
    tiles : str or None
        ``"osm"``, any XYZ URL template, or None for no base map.
    attribution : str, optional
        Attribution for a custom tile URL.
    show_buildings : bool
        Add a buildings layer (coloured like their grid).
    labels : bool, optional
        Label each grid with its code and households (default: when ≤ 1,500 grids).
    max_buildings : int
        Above this many buildings the building layer is left out (the page would be
        too heavy); the map says so.

    Returns
    -------
    folium.Map
    """
    grids = to_wgs84(plan.grids, "plan grids").copy()
    grids["color"] = _colour_grids(plan.grids)
    grids["weak_pct"] = _weak_percent(plan)
    bounds = grids.total_bounds
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    _add_tiles(m, tiles, attribution)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])

    cols = [
        "grid_code",
        "community_name",
        "kind",
        "households",
        "range_min",
        "range_max",
        "buildings",
        "flags",
        "weak_pct",
        "color",
    ]
    layer = folium.FeatureGroup(name="网格 Grids", show=True)
    folium.GeoJson(
        grids[cols + ["geometry"]].to_json(drop_id=True),
        name="grids",
        style_function=lambda f: {
            "fillColor": f["properties"]["color"],
            "color": "#c00000" if f["properties"]["flags"] else "#333333",
            "weight": 2.5 if f["properties"]["flags"] else 1,
            "fillOpacity": 0.45,
            # dashed: at least half of the households rest on weak estimates
            "dashArray": "6 4" if (f["properties"]["weak_pct"] or 0) >= 50 else None,
        },
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.7},
        popup=folium.GeoJsonPopup(
            fields=[
                "grid_code",
                "community_name",
                "kind",
                "households",
                "range_min",
                "range_max",
                "buildings",
                "flags",
                "weak_pct",
            ],
            aliases=[
                "网格编码 Code",
                "社区 Community",
                "类型 Kind",
                "户数 Households",
                "下限 Min",
                "上限 Max",
                "楼栋 Buildings",
                "标记 Flags",
                "弱估计户数占比 % households on weak estimates",
            ],
            localize=True,
        ),
        tooltip=folium.GeoJsonTooltip(
            fields=["grid_code", "households"], aliases=["网格 Grid", "户数 Households"]
        ),
    ).add_to(layer)
    layer.add_to(m)

    if plan.communities is not None:
        comm = to_wgs84(plan.communities, "communities")
        folium.GeoJson(
            comm[["name", "geometry"]].to_json(drop_id=True),
            name="社区边界 Communities",
            style_function=lambda f: {"color": "#000000", "weight": 3, "fill": False},
            interactive=False,
        ).add_to(m)

    if show_buildings and len(plan.buildings) <= max_buildings:
        b = plan.buildings[["building_id", "households", "grid_code", "geometry"]].copy()
        colour_of = dict(zip(plan.grids["grid_code"], grids["color"], strict=True))
        b["color"] = b["grid_code"].map(colour_of).fillna("#777777")
        b["geometry"] = shapely.simplify(b.geometry.values, 0.5)
        b = to_wgs84(gpd.GeoDataFrame(b, crs=plan.crs), "buildings")
        folium.GeoJson(
            b.to_json(drop_id=True),
            name="楼栋 Buildings",
            style_function=lambda f: {
                "color": "#222222",
                "weight": 0.5,
                "fillColor": f["properties"]["color"],
                "fillOpacity": 0.9,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["building_id", "households", "grid_code"],
                aliases=["楼栋 Building", "户数 Households", "网格 Grid"],
            ),
            show=False,
        ).add_to(m)
    elif show_buildings:
        _note(
            m,
            f"楼栋过多（{len(plan.buildings):,}），未绘制楼栋图层 / "
            f"{len(plan.buildings):,} buildings: building layer left out",
        )

    if labels if labels is not None else len(grids) <= 1500:
        lab = folium.FeatureGroup(name="网格标注 Labels", show=True)
        pts = shapely.point_on_surface(grids.geometry.values)
        for code, hh, p in zip(grids["grid_code"], grids["households"], pts, strict=True):
            folium.Marker(
                [p.y, p.x],
                icon=folium.DivIcon(
                    html=f'<div style="font:10px sans-serif;white-space:nowrap;'
                    f"transform:translate(-50%,-50%);text-align:center;color:#111;"
                    f'text-shadow:0 0 2px #fff">{html.escape(code[-6:])}<br>{int(hh)}户</div>'
                ),
            ).add_to(lab)
        lab.add_to(m)

    _legend(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _weak_percent(plan: Plan) -> list[float | None]:
    """Per grid (in ``plan.grids`` order): % of households on weak estimates, or None.

    Weak = ``households_confidence`` below ``gridmap.households.WEAK_CONFIDENCE``.
    """
    from .households import weak_by_grid

    b = plan.buildings
    if "grid_code" not in b.columns or "households" not in b.columns:
        return [None] * len(plan.grids)
    share = weak_by_grid(b, by="grid_code").set_index("grid_code")["weak_share"]
    pct = plan.grids["grid_code"].map(share).to_numpy(dtype=float, na_value=np.nan)
    return [None if np.isnan(v) else round(100 * v) for v in pct]


def _colour_grids(grids: gpd.GeoDataFrame) -> list[str]:
    """Colour grids so that neighbours (sharing a border) get different colours."""
    geoms = grids.geometry.values
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    m = a < b
    a, b = a[m], b[m]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b]))
    )
    g = nx.Graph()
    g.add_nodes_from(range(len(geoms)))
    g.add_edges_from(zip(a[shared > 0].tolist(), b[shared > 0].tolist(), strict=True))
    colours = nx.greedy_color(g, strategy="largest_first")
    return [PALETTE[colours[i] % len(PALETTE)] for i in range(len(geoms))]


def _add_tiles(m: folium.Map, tiles: str | None, attribution: str | None) -> None:
    if tiles is None or tiles == "none":
        return
    if tiles in TILES:
        url, attr = TILES[tiles]
    else:
        url, attr = tiles, attribution or "base map"
    folium.TileLayer(url, attr=attr, name="底图 Base map", max_zoom=19).add_to(m)


def _legend(m: folium.Map) -> None:
    rows = "".join(f"<div>{html.escape(label)}</div>" for label in KIND_LABELS.values())
    box = f"""
    <div style="position:fixed;bottom:24px;left:12px;z-index:9999;background:#fff;
         padding:8px 10px;border:1px solid #999;font:12px sans-serif;line-height:1.5">
      <b>网格规划 Grid plan</b>{rows}
      <div><span style="display:inline-block;width:14px;border-top:3px solid #c00000"></span>
      有标记的网格 Flagged grid</div>
      <div><span style="display:inline-block;width:14px;border-top:2px dashed #333"></span>
      户数多为弱估计（≥ 50 %）Most households on weak estimates</div>
      <div>标注：编码后六位 / 户数 · Label: code (last 6 digits) / households</div>
    </div>"""
    m.get_root().html.add_child(folium.Element(box))


def _note(m: folium.Map, text: str) -> None:
    box = (
        '<div style="position:fixed;top:10px;left:50px;z-index:9999;background:#fffbe6;'
        f'padding:6px 10px;border:1px solid #d4b106;font:12px sans-serif">{html.escape(text)}</div>'
    )
    m.get_root().html.add_child(folium.Element(box))
