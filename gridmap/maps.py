"""Folium maps of grid plans, and HTML pages that work offline.

Maps are published in WGS84. Neighbouring grids get different colours (a greedy
graph colouring of the grid adjacency), every grid is labelled with its code and
households, and a popup shows its figures.

Every HTML map gridmap writes goes through :func:`save_html` (or :func:`offline_html`
on rendered text): folium's pages load Leaflet, jQuery, Bootstrap and Font Awesome
from public CDNs, which leaves a blank page on an office intranet. Leaflet and
Leaflet.heat are shipped with gridmap (``gridmap/vendor``) and inlined; the other
assets are not used by gridmap's maps and are dropped. No base map is drawn unless one
is asked for (``tiles=None`` is the default), so a page needs no network at all.
"""

from __future__ import annotations

import base64
import functools
import html
import logging
import os
import re
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from branca.element import MacroElement
from folium.template import Template

from .crs import to_wgs84
from .io import atomic_write
from .plan import Plan, flag_labels

log = logging.getLogger("gridmap")

#: Twelve distinguishable fill colours for grids (neighbours never share one). Red,
#: orange, yellow and blue are kept for the flood grades (:data:`gridmap.flood.PALETTE`),
#: so no grid is filled with them.
PALETTE = [
    "#66c2a5",
    "#bc80bd",
    "#b3de69",
    "#fccde5",
    "#bababa",
    "#8dd3c7",
    "#c2a5cf",
    "#f1b6da",
    "#7fbc41",
    "#d9f0d3",
    "#9970ab",
    "#a6dba0",
]
#: Outline of a flagged grid (magenta: not a flood colour, not a grid fill).
FLAGGED_COLOUR = "#d01c8b"
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
    tiles: str | None = None,
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
        ``"osm"``, any XYZ URL template, or None (default) for no base map: the
        page then needs no network.
    attribution : str, optional
        Attribution for a custom tile URL.
    show_buildings : bool
        Add a buildings layer (coloured like their grid).
    labels : bool, optional
        Label each grid with the end of its code and its households (default: when
        ≤ 1,500 grids). Labels that would overlap are hidden in the page, the larger
        grid's first, and come back as one zooms in.
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
    grids["flags"] = grids["flags"].fillna("").astype(str)
    grids["flag_text"] = [flag_labels(f, "both", sep="; ") for f in grids["flags"]]
    grids["kind_label"] = grids["kind"].map(KIND_LABELS).fillna(grids["kind"]).astype(str)
    bounds = grids.total_bounds
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    add_tiles(m, tiles, attribution)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])

    cols = [
        "grid_code",
        "community_name",
        "kind_label",
        "households",
        "range_min",
        "range_max",
        "buildings",
        "flags",
        "flag_text",
        "weak_pct",
        "color",
    ]
    layer = folium.FeatureGroup(name="网格 Grids", show=True)
    folium.GeoJson(
        grids[cols + ["geometry"]].to_json(drop_id=True),
        name="grids",
        style_function=lambda f: {
            "fillColor": f["properties"]["color"],
            "color": FLAGGED_COLOUR if f["properties"]["flags"] else "#333333",
            "weight": 3 if f["properties"]["flags"] else 1,
            "fillOpacity": 0.45,
            # dashed: at least half of the households rest on weak estimates
            "dashArray": "6 4" if (f["properties"]["weak_pct"] or 0) >= 50 else None,
        },
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.7},
        popup=folium.GeoJsonPopup(
            fields=[
                "grid_code",
                "community_name",
                "kind_label",
                "households",
                "range_min",
                "range_max",
                "buildings",
                "flag_text",
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
        # the largest grids first: where labels collide, the larger grid keeps its own
        order = np.argsort(-shapely.area(plan.grids.geometry.values), kind="stable")
        for i in order:
            code, hh, p = grids["grid_code"].iat[i], grids["households"].iat[i], pts[i]
            folium.Marker(
                [p.y, p.x],
                icon=folium.DivIcon(
                    class_name="gm-label",
                    icon_size=(0, 0),
                    html=f'<div style="display:inline-block;font:10px sans-serif;white-space:nowrap;'
                    f"transform:translate(-50%,-50%);text-align:center;color:#111;"
                    f'text-shadow:0 0 2px #fff,0 0 2px #fff">{html.escape(code[-6:])}'
                    f"<br>{int(hh)}户</div>",
                ),
                interactive=False,
            ).add_to(lab)
        lab.add_to(m)
        _Declutter(lab).add_to(m)

    _legend(m, plan.communities is not None, show_buildings)
    folium.LayerControl(collapsed=True).add_to(m)
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


def add_tiles(m: folium.Map, tiles: str | None, attribution: str | None = None) -> None:
    """Add a base map to `m`: a preset of :data:`TILES`, an XYZ URL template, or
    nothing for None or ``"none"`` (the default of every gridmap map: no network)."""
    if tiles is None or tiles == "none":
        return
    if tiles in TILES:
        url, attr = TILES[tiles]
    else:
        url, attr = tiles, attribution or "base map"
    folium.TileLayer(url, attr=attr, name="底图 Base map", max_zoom=19).add_to(m)


def _legend(m: folium.Map, communities: bool, buildings: bool) -> None:
    fills = "".join(
        f'<span style="display:inline-block;width:9px;height:12px;background:{c}"></span>'
        for c in PALETTE[:6]
    )
    rows = [
        f"<div>{fills} 网格（颜色只区分相邻网格）Grids (colours tell neighbours apart)</div>",
        legend_row(
            f"border:3px solid {FLAGGED_COLOUR};background:#fff", "有标记的网格 Flagged grid"
        ),
        legend_row(
            "border:2px dashed #333;background:#fff",
            "户数多为弱估计（≥ 50 %）Mostly weak estimates",
        ),
    ]
    if communities:
        rows.append(legend_row("border-top:3px solid #000;height:0", "社区边界 Community boundary"))
    if buildings:
        rows.append(
            legend_row(
                f"border:1px solid #222;background:{PALETTE[0]}",
                "楼栋（与所属网格同色）Buildings (colour of their grid)",
            )
        )
    rows.append("<div>标注：编码后六位 / 户数 Labels: code ending / households</div>")
    m.get_root().html.add_child(folium.Element(legend_box("网格规划 Grid plan", rows)))


def legend_row(swatch_style: str, label: str) -> str:
    """One legend entry: a 14 px swatch drawn with CSS `swatch_style`, then `label`."""
    return (
        f'<div><span style="display:inline-block;width:14px;height:12px;'
        f'vertical-align:middle;margin-right:6px;{swatch_style}"></span>{html.escape(label)}</div>'
    )


def legend_box(title: str, rows: list[str], *, element_id: str = "gm-legend") -> str:
    """A map legend that folds away (a ``<details>`` box, closed at start on phones).

    Parameters
    ----------
    title : str
        Shown in the fold's header (plain text).
    rows : list of str
        HTML of the entries (e.g. :func:`legend_row`).
    element_id : str
        The box's ``id``.
    """
    eid = html.escape(element_id)
    return (
        f'<details id="{eid}" open style="position:fixed;bottom:24px;left:10px;z-index:9999;'
        "background:#fff;padding:6px 10px;border:1px solid #999;border-radius:4px;"
        "font:12px sans-serif;line-height:1.5;max-width:min(360px,75vw);max-height:45vh;"
        f'overflow:auto"><summary style="cursor:pointer;font-weight:bold">{html.escape(title)}'
        f"</summary>{''.join(rows)}</details>"
        f"<script>if(window.innerWidth<600){{document.getElementById('{eid}')"
        ".removeAttribute('open');}</script>"
    )


class _Declutter(MacroElement):
    """Hides the labels of `layer` that would overlap a label already shown.

    Runs in the page after every zoom and pan: labels are taken in the layer's order
    (the first ones win), measured on screen, and hidden while they touch a shown one,
    so that the map is legible at every zoom and more labels appear as one zooms in.
    """

    _template = Template(
        """
{% macro script(this, kwargs) %}
(function () {
    var map = {{ this._parent.get_name() }}, layer = {{ this.layer.get_name() }};
    function declutter() {
        if (!map.hasLayer(layer)) { return; }
        var els = [];
        layer.eachLayer(function (mk) {
            var el = mk.getElement && mk.getElement();
            if (el && el.firstChild) { els.push(el.firstChild); }
        });
        var rects = els.map(function (e) { return e.getBoundingClientRect(); });
        var shown = [];
        for (var i = 0; i < els.length; i++) {
            var r = rects[i], ok = r.width > 0;
            for (var j = 0; ok && j < shown.length; j++) {
                var q = shown[j];
                if (r.left < q.right + 2 && r.right + 2 > q.left &&
                    r.top < q.bottom + 1 && r.bottom + 1 > q.top) { ok = false; }
            }
            if (ok) { shown.push(r); }
            els[i].style.visibility = ok ? "" : "hidden";
        }
    }
    map.on("zoomend moveend overlayadd resize", declutter);
    map.whenReady(declutter);
})();
{% endmacro %}
"""
    )

    def __init__(self, layer: folium.FeatureGroup):
        super().__init__()
        self._name = "Declutter"
        self.layer = layer


def _note(m: folium.Map, text: str) -> None:
    box = (
        '<div style="position:fixed;top:10px;left:50px;z-index:9999;background:#fffbe6;'
        f'padding:6px 10px;border:1px solid #d4b106;font:12px sans-serif">{html.escape(text)}</div>'
    )
    m.get_root().html.add_child(folium.Element(box))


# ============================================================================ offline
#: Folder of the third-party files shipped with gridmap (see ``vendor/README.md``).
VENDOR = Path(__file__).with_name("vendor")

#: Remote assets of folium pages that gridmap replaces by its own copy, by the end of
#: their URL: (vendored file, kind).
_INLINED = {
    "leaflet.js": ("leaflet/leaflet.js", "js"),
    "leaflet.css": ("leaflet/leaflet.css", "css"),
    "leaflet_heat.min.js": ("leaflet.heat/leaflet-heat.js", "js"),
    "leaflet-heat.js": ("leaflet.heat/leaflet-heat.js", "js"),
}
#: Remote assets folium adds to every page that gridmap's maps do not use (jQuery,
#: Bootstrap, Font Awesome, awesome-markers), by a piece of their URL.
_DROPPED = ("jquery", "bootstrap", "fontawesome", "awesome-markers", "awesome.rotate")

#: Folium's popups build their content with ``$(html)[0]`` and its front-layer option
#: with ``$(document).ready(f)``; this is all of jQuery they need.
_JQUERY_SHIM = (
    "if(typeof window.$==='undefined'){window.$=function(h){"
    "if(h===document){return {ready:function(f){if(document.readyState==='loading')"
    "{document.addEventListener('DOMContentLoaded',f);}else{f();}}};}"
    "var t=document.createElement('template');t.innerHTML=String(h).trim();"
    "return [t.content.firstElementChild];};}"
)

_REMOTE_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"'](?P<js>(?:https?:)?//[^\"']+)[\"'][^>]*>\s*</script>"
    r"|<link\b[^>]*\bhref=[\"'](?P<css>(?:https?:)?//[^\"']+)[\"'][^>]*>",
    re.IGNORECASE,
)


class OfflineError(ValueError):
    """A page needs a remote asset gridmap does not ship (it would be blank offline)."""


def offline_html(text: str, *, strict: bool = True) -> str:
    """Make a rendered folium page work without a network.

    Leaflet and Leaflet.heat are inlined from gridmap's own copies (Leaflet's images as
    data URIs); jQuery, Bootstrap, Font Awesome and awesome-markers, which folium adds
    to every page but gridmap's maps do not use, are dropped (the one jQuery call of
    folium's popups gets a small stand-in). Running it again on its output changes
    nothing. Links in the page's text (``<a href>``, attributions) are left alone.

    Parameters
    ----------
    text : str
        The page, e.g. ``m.get_root().render()`` of a folium map.
    strict : bool
        Raise :class:`OfflineError` when the page loads any other remote script or
        stylesheet (e.g. folium's ``HeatMapWithTime`` or a branca colour scale, which
        need timedimension and d3). With ``strict=False`` such tags are kept and a
        warning is logged.

    Returns
    -------
    str
        The page, with no ``<script src>`` or ``<link href>`` to another host.

    Raises
    ------
    OfflineError
        `strict` and the page needs a remote asset gridmap does not ship.
    FileNotFoundError
        gridmap's vendored Leaflet is missing (a broken installation).
    """
    unknown: list[str] = []
    dropped = False

    def replace(match: re.Match) -> str:
        nonlocal dropped
        url = match.group("js") or match.group("css")
        name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1].lower()
        if name in _INLINED:
            return _inline(*_INLINED[name])
        if any(part in url.lower() for part in _DROPPED):
            if match.group("js") and "jquery" in url.lower():
                dropped = True
                return f"<script>{_JQUERY_SHIM}</script>"
            return ""
        unknown.append(url)
        return match.group(0)

    out = _REMOTE_TAG.sub(replace, text)
    if not dropped and "$(" in out and _JQUERY_SHIM not in out:
        out = out.replace("<head>", f"<head>\n<script>{_JQUERY_SHIM}</script>", 1)
    if unknown:
        msg = (
            "the page loads remote assets gridmap does not ship, so it would not work "
            "offline: " + ", ".join(dict.fromkeys(unknown))
        )
        if strict:
            raise OfflineError(msg)
        log.warning(msg)
    return out


def save_html(m: Any, path: str | os.PathLike, *, strict: bool = True) -> Path:
    """Write a folium map (or any branca element) as one HTML file that works offline.

    The page is rendered, passed through :func:`offline_html` and written atomically
    (through a temporary file, then renamed) with the user's usual file mode.

    Parameters
    ----------
    m : folium.Map or branca.element.Element
        The map.
    path : path-like
        The HTML file to write; its folder is created.
    strict : bool
        See :func:`offline_html`.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = offline_html(m.get_root().render(), strict=strict)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path


def make_offline(path: str | os.PathLike, *, strict: bool = True) -> Path:
    """Rewrite an HTML file written by folium's ``save`` so that it works offline.

    See :func:`offline_html`. A file that is already offline is left as it is.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = offline_html(text, strict=strict)
    if new != text:
        atomic_write(path, lambda p: p.write_text(new, encoding="utf-8"))
    return path


@functools.lru_cache(maxsize=8)
def _inline(rel: str, kind: str) -> str:
    """The vendored file `rel` as an inline ``<script>`` or ``<style>`` element."""
    f = VENDOR / rel
    if not f.is_file():
        raise FileNotFoundError(f"gridmap's vendored {rel} is missing from {VENDOR}")
    body = f.read_text(encoding="utf-8")
    if kind == "css":

        def data_uri(match: re.Match) -> str:
            img = f.parent / match.group(1)
            if not img.is_file():
                return match.group(0)
            return f"url(data:image/png;base64,{base64.b64encode(img.read_bytes()).decode()})"

        body = re.sub(r"url\((images/[^)]+\.png)\)", data_uri, body)
        return f"<style>{body}</style>"
    return "<script>" + body.replace("</script", "<\\/script") + "</script>"
