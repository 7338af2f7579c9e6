"""Maps of events (step 6): heat maps, rates per grid and hot spots on a folium map.

Colours: red, orange, yellow and blue are the flood grades'; events use one
sequential, colour-blind-safe purple ramp (:mod:`gridmap.events.palette`).
"""

from __future__ import annotations

import html
import json
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from ..crs import WGS84, to_wgs84
from ..errors import InputError
from ..maps import add_tiles
from .assign import grids_of
from .hotspots import hotspots
from .palette import COLD_STYLE, HEAT_GRADIENT, HOT_STYLE, NO_DATA, RATE_RAMP
from .stats import EventStats, event_stats, per_grid_table, period_index

__all__ = ["event_map"]

_HOT_LABELS = {"hot": "热点 Hot spot", "cold": "冷点 Cold spot"}


def event_map(
    plan: Any,
    events: gpd.GeoDataFrame,
    *,
    stats: EventStats | None = None,
    hot: gpd.GeoDataFrame | bool | None = None,
    max_points: int = 50_000,
    period: Literal["month", "week"] = "month",
    bin_m: float = 100.0,
    tiles: str | None = None,
    attribution: str | None = None,
) -> Any:
    """Draw events on a folium map: heat maps, choropleth, hot spots, grid popups.

    Parameters
    ----------
    plan : Plan, geopandas.GeoDataFrame or path-like
        The grids.
    events : geopandas.GeoDataFrame
        Events from :func:`read_events`.
    stats : EventStats, optional
        Per-grid KPIs (computed with :func:`event_stats` when None).
    hot : GeoDataFrame, bool or None
        Result of :func:`hotspots`; None computes it on ``per_100_households`` (on
        ``events`` when no grid has households); False leaves the layer out.
    max_points : int
        Above this many events the heat maps are aggregated: events are counted in
        `bin_m` squares of the metric CRS (larger squares if still too many) and the
        heat is weighted by the counts. A note on the map says so.
    period : {"month", "week"}
        Step of the animated heat map.
    bin_m : float
        Side of the aggregation squares in metres.
    tiles : str or None
        Base map: None (default) draws none, so the page needs no network; a preset of
        :data:`gridmap.maps.TILES` or a URL template (see :func:`gridmap.maps.add_tiles`).
    attribution : str, optional
        Attribution of a `tiles` URL template.

    Returns
    -------
    folium.Map
        In WGS84, with layers: 每百户事件数 Events per 100 households (choropleth with
        KPI popups per grid; the only layer shown on opening), 事件热力图 Event heat map,
        事件时序热力图 Event heat map by month/week (a period slider in the legend),
        热点/冷点网格 Hot/cold spot grids, and a LayerControl. All in one purple ramp
        (:mod:`gridmap.events.palette`; red, orange, yellow and blue are left to the
        flood grades). One legend box has a section per layer, shown while the layer
        is on. The heat radius is set in metres (a third of a typical grid side, or
        most of an aggregation square) and rescaled on every zoom, so the heat keeps
        its shape from city to street level. Only Leaflet and Leaflet.heat are used
        (no d3, no TimeDimension), so the page can be made to work offline.
    """
    import folium
    from folium.plugins import HeatMap

    grids = grids_of(plan)
    if period not in ("month", "week"):
        raise InputError(f"period must be 'month' or 'week', not {period!r}", source="event_map")
    if stats is None:
        stats = event_stats(grids, events)
    table = per_grid_table(stats).set_index("grid_code")

    # -- grid layer data (WGS84) ----------------------------------------------
    geoms = shapely.simplify(grids.geometry.to_numpy(), 0.5, preserve_topology=True)
    gw = to_wgs84(
        gpd.GeoDataFrame({"grid_code": grids["grid_code"]}, geometry=geoms, crs=grids.crs)
    )
    gw = gw.set_geometry(shapely.transform(gw.geometry.to_numpy(), lambda c: np.round(c, 6)))
    kpi = table.reindex(grids["grid_code"])
    value_col = "per_100_households"
    caption = "每百户事件数 Events per 100 households"
    vals = kpi[value_col].to_numpy(dtype=float)
    if not np.isfinite(vals).any():
        value_col, caption = "events", "事件数 Events (无户数 no household data)"
        vals = kpi["events"].to_numpy(dtype=float)

    minx, miny, maxx, maxy = gw.total_bounds
    m = folium.Map(tiles=None, control_scale=True)
    add_tiles(m, tiles, attribution)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    title = "事件 Events"
    m.get_root().html.add_child(
        folium.Element(
            '<div id="gridmap-title" style="position:fixed;top:10px;left:60px;z-index:9999;'
            "background:rgba(255,255,255,.85);padding:4px 10px;border-radius:4px;"
            f'font:bold 15px sans-serif">{html.escape(title)}</div>'
        )
    )

    # -- choropleth + popups (the one layer shown on opening) ------------------
    finite = vals[np.isfinite(vals)]
    vmax = float(np.nanpercentile(finite, 95)) if len(finite) else 1.0
    if not vmax > 0:
        vmax = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    breaks = np.linspace(0.0, vmax, len(RATE_RAMP) + 1)
    cls = np.clip(np.searchsorted(breaks, vals, side="right") - 1, 0, len(RATE_RAMP) - 1)
    fills = np.where(np.isfinite(vals), np.asarray(RATE_RAMP, dtype=object)[cls], NO_DATA)
    props = _popup_props(grids, kpi)
    props["_fill"] = fills
    layer = gpd.GeoDataFrame(props, geometry=gw.geometry.to_numpy(), crs=WGS84)
    fields = list(_POPUP_FIELDS)
    rate_name = caption.split(" (")[0]
    folium.GeoJson(
        layer.to_json(drop_id=True),
        name=rate_name,
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "color": "#636363",
            "weight": 0.6,
            "fillOpacity": _FILL_OPACITY,
        },
        highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
        popup=folium.GeoJsonPopup(fields=fields, aliases=[_POPUP_FIELDS[f] for f in fields]),
        tooltip=folium.GeoJsonTooltip(fields=["grid_code"], aliases=["网格 Grid"]),
    ).add_to(m)

    # -- heat maps (off on opening) ------------------------------------------------
    lon, lat, when = _event_lonlat(events)
    n_ev = len(lon)
    heat, frames, labels, aggregated, used_bin = _heat_data(
        lon, lat, when, grids.crs, max_points=max_points, period=period, bin_m=bin_m
    )
    radius_m = _heat_radius_m(grids, used_bin if aggregated else None)
    heat_max = _heat_scale(heat, grids.crs, radius_m)
    time_max = max((_heat_scale(f, grids.crs, radius_m) for f in frames), default=1.0)
    heat_name = "事件热力图 Event heat map"
    step = "按月 by month" if period == "month" else "按周 by week"
    time_name = f"事件时序热力图 Event heat map {step}"
    gradient = {float(k): v for k, v in HEAT_GRADIENT.items()}
    heat_layer, time_layer = (
        HeatMap(
            points,
            name=name,
            radius=14,
            blur=11,
            min_opacity=0.3,
            max_zoom=_HEAT_MAX_ZOOM,
            gradient=gradient,
            show=False,
        ).add_to(m)
        for points, name in ((heat, heat_name), (frames[0] if frames else [], time_name))
    )

    # -- hot spots (off on opening) ------------------------------------------------
    if hot is None:
        hot = hotspots(grids, stats, value=value_col) if np.isfinite(vals).sum() >= 3 else False
    hot_name = "热点/冷点网格 Hot/cold spot grids"
    if isinstance(hot, gpd.GeoDataFrame) and len(hot):
        sig = hot[hot["hotspot"].isin(["hot", "cold"])]
        if len(sig):
            hw = to_wgs84(sig[["grid_code", "hotspot", sig.geometry.name]].copy())
            hw["label"] = hw["hotspot"].map(_HOT_LABELS)
            folium.GeoJson(
                hw.to_json(drop_id=True),
                name=hot_name,
                style_function=lambda f: {
                    **(HOT_STYLE if f["properties"]["hotspot"] == "hot" else COLD_STYLE),
                    "fill": False,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=["grid_code", "label"], aliases=["网格 Grid", ""]
                ),
                show=False,
            ).add_to(m)
        else:
            hot_name += " (无 none)"
            folium.FeatureGroup(name=hot_name, show=False).add_to(m)
    else:
        hot_name = ""

    note = f"{n_ev:,} 条事件 events"
    if aggregated:
        note += (
            f"；超过 {max_points:,} 条，热力图按 {used_bin:g} m 方格聚合、按数量加权 / "
            f"above {max_points:,}: heat maps aggregated to {used_bin:g} m squares, weighted by counts"
        )
    note_id = "gridmap-aggregation-note" if aggregated else "gridmap-note"
    legend = _legend_html(
        rate_name=rate_name,
        caption=caption,
        breaks=breaks,
        has_no_data=bool((~np.isfinite(vals)).any()),
        heat_name=heat_name,
        time_name=time_name,
        labels=labels,
        hot_name=hot_name,
        note=f'<div id="{note_id}" class="gm-ev-note">{html.escape(note)}</div>',
    )
    m.get_root().html.add_child(folium.Element(legend))
    control = folium.LayerControl(collapsed=True).add_to(m)
    m.add_child(
        _map_script(
            m, control, heat_layer, time_layer, frames, labels, radius_m, (heat_max, time_max)
        )
    )
    return m


#: Fill opacity of the rate layer (its legend swatches use the same).
_FILL_OPACITY = 0.6

#: Leaflet.heat's ``maxZoom``: it weighs points by 1/2^(maxZoom - zoom), and Leaflet's
#: layer control disables a layer above its ``maxZoom``, so it is the map's top zoom; the
#: page script divides the layer's ``max`` by the same factor, which keeps the colours of
#: the heat the same at every zoom (the radius is in metres).
_HEAT_MAX_ZOOM = 18


def _heat_radius_m(grids: gpd.GeoDataFrame, bin_m: float | None) -> float:
    """Heat radius on the ground: about a third of a typical grid's side (or most of an
    aggregation square), so that the heat keeps its shape when zooming in."""
    if bin_m is not None:
        return float(bin_m) * 0.8
    side = float(np.median(np.sqrt(shapely.area(grids.geometry.to_numpy()))))
    return float(np.clip(side / 3.0, 25.0, 250.0))


def _legend_html(
    *,
    rate_name: str,
    caption: str,
    breaks: np.ndarray,
    has_no_data: bool,
    heat_name: str,
    time_name: str,
    labels: list[str],
    hot_name: str,
    note: str,
) -> str:
    """One legend box with a section per layer; sections follow the layer switches."""
    esc = html.escape

    def swatch(colour: str, text: str) -> str:
        return (
            f'<div class="gm-ev-row"><i style="background:{colour};opacity:{_FILL_OPACITY}">'
            f"</i>{esc(text)}</div>"
        )

    rows = []
    for k, colour in enumerate(RATE_RAMP):
        lo, hi = breaks[k], breaks[k + 1]
        text = f"≥ {lo:.3g}" if k == len(RATE_RAMP) - 1 else f"{lo:.3g} – {hi:.3g}"
        rows.append(swatch(colour, text))
    if has_no_data:
        rows.append(swatch(NO_DATA, "无数据 no data"))
    rate = (
        f'<section data-layer="{esc(rate_name, quote=True)}"><b>{esc(caption)}</b>'
        f"<small>（最高档含 ≥ p95 capped at p95）</small>{''.join(rows)}</section>"
    )
    bar = ", ".join(f"{c} {float(k) * 100:g}%" for k, c in HEAT_GRADIENT.items())
    heat = (
        f'<section data-layer="{esc(heat_name, quote=True)}" style="display:none">'
        f"<b>{esc(heat_name)}</b>"
        f'<div class="gm-ev-bar" style="background:linear-gradient(to right, {bar})"></div>'
        '<div class="gm-ev-ends"><span>少 fewer</span><span>多 more</span></div></section>'
    )
    period_labels = labels or ["—"]
    time = (
        f'<section data-layer="{esc(time_name, quote=True)}" style="display:none">'
        f"<b>{esc(time_name)}</b>"
        f'<div class="gm-ev-bar" style="background:linear-gradient(to right, {bar})"></div>'
        f'<label class="gm-ev-time"><input id="gridmap-period" type="range" min="0" '
        f'max="{len(period_labels) - 1}" value="0" step="1" aria-label="period">'
        f'<span id="gridmap-period-label">{esc(period_labels[0])}</span></label></section>'
    )
    hot = ""
    if hot_name:
        line = '<svg width="28" height="10"><line x1="1" y1="5" x2="27" y2="5" '
        hot = (
            f'<section data-layer="{esc(hot_name, quote=True)}" style="display:none">'
            f"<b>{esc(hot_name)}</b>"
            f'<div class="gm-ev-row">{line}stroke="{HOT_STYLE["color"]}" '
            f'stroke-width="{HOT_STYLE["weight"]}"/></svg>{esc(_HOT_LABELS["hot"])} '
            "(Gi* z &gt; 0)</div>"
            f'<div class="gm-ev-row">{line}stroke="{COLD_STYLE["color"]}" '
            f'stroke-width="{COLD_STYLE["weight"]}" stroke-dasharray="{COLD_STYLE["dashArray"]}"/>'
            f"</svg>{esc(_HOT_LABELS['cold'])} (Gi* z &lt; 0)</div></section>"
        )
    style = (
        "<style>"
        "#gridmap-events-legend{position:fixed;bottom:24px;left:10px;z-index:9999;"
        "max-width:min(320px,calc(100vw - 20px));max-height:45vh;overflow:auto;"
        "background:rgba(255,255,255,.94);padding:6px 9px;border-radius:4px;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.4 sans-serif;color:#222}"
        "#gridmap-events-legend section{margin-bottom:4px}"
        "#gridmap-events-legend b{display:block}"
        "#gridmap-events-legend small{display:block;color:#555}"
        ".gm-ev-row{display:flex;align-items:center;gap:6px;white-space:nowrap}"
        ".gm-ev-row i{display:inline-block;width:18px;height:12px;border:1px solid #999}"
        ".gm-ev-bar{height:10px;border:1px solid #999;margin-top:2px}"
        ".gm-ev-ends{display:flex;justify-content:space-between;color:#555}"
        ".gm-ev-time{display:flex;align-items:center;gap:6px}"
        ".gm-ev-time input{flex:1;min-width:0}"
        ".gm-ev-note{color:#555;border-top:1px solid #ddd;padding-top:3px}"
        "</style>"
    )
    return (
        f'{style}<div id="gridmap-events-legend" role="region" aria-label="legend">'
        f"{rate}{heat}{time}{hot}{note}</div>"
    )


def _heat_scale(points: list, metric: Any, radius_m: float) -> float:
    """Events (or weights) that make the darkest heat: three times the 99th percentile
    of the sums per square of half the heat radius (about Leaflet.heat's own cells; a
    pixel sums the blobs of a dozen cells around it), at least 1."""
    if not len(points):
        return 1.0
    arr = np.asarray(points, dtype=float)
    w = arr[:, 2] if arr.shape[1] > 2 else np.ones(len(arr))
    to_m = Transformer.from_crs(WGS84, metric, always_xy=True)
    x, y = (np.asarray(a, dtype=float) for a in to_m.transform(arr[:, 1], arr[:, 0]))
    side = max(radius_m / 2.0, 1.0)
    ix = np.floor((x - np.nanmin(x)) / side).astype(np.int64)
    iy = np.floor((y - np.nanmin(y)) / side).astype(np.int64)
    _, inv = np.unique(ix * (int(iy.max()) + 1) + iy, return_inverse=True)
    sums = np.bincount(inv, weights=w)
    return float(max(3.0 * np.percentile(sums, 99), 1.0))


def _map_script(
    m: Any,
    control: Any,
    heat: Any,
    timed: Any,
    frames: list,
    labels: list[str],
    metres: float,
    scale: tuple[float, float],
) -> Any:
    """The page script: the layer list open on wide screens, heat radius in metres and
    heat scale (both kept on zoom), legend sections that follow the layer switches, and
    the period slider of the time heat map."""
    from branca.element import MacroElement
    from jinja2 import Template

    class MapScript(MacroElement):
        """See :func:`_map_script`."""

        _template = Template(
            """{% macro script(this, kwargs) %}
(function () {
  var map = {{ this.map }}, heat = {{ this.heat }}, timed = {{ this.timed }};
  // the layer list: open on a wide screen, a button on a phone
  if (window.innerWidth > 640) { {{ this.control }}.expand(); }
  var frames = {{ this.frames }}, labels = {{ this.labels }}, metres = {{ this.metres }};
  var scale = {{ this.scale }}, top = {{ this.top }};
  function resize() {
    var z = map.getZoom();
    var mpp = 156543.03392 * Math.cos(map.getCenter().lat * Math.PI / 180) / Math.pow(2, z);
    var r = Math.max(4, Math.min(90, metres / mpp));
    var f = 1 / Math.pow(2, Math.max(0, Math.min(top - z, 12)));
    [heat, timed].forEach(function (h, i) {
      h.setOptions({radius: r, blur: Math.max(3, r * 0.75), max: scale[i] * f});
    });
  }
  map.on("zoomend", resize);
  map.whenReady(resize);
  var legend = document.getElementById("gridmap-events-legend");
  function show(name, on) {
    if (!legend) { return; }
    legend.querySelectorAll("section[data-layer]").forEach(function (s) {
      if (s.getAttribute("data-layer") === name) { s.style.display = on ? "" : "none"; }
    });
  }
  map.on("overlayadd", function (e) { show(e.name, true); });
  map.on("overlayremove", function (e) { show(e.name, false); });
  var slider = document.getElementById("gridmap-period");
  var label = document.getElementById("gridmap-period-label");
  if (slider) {
    slider.addEventListener("input", function () {
      var i = Number(slider.value);
      timed.setLatLngs(frames[i] || []);
      if (label) { label.textContent = labels[i] || ""; }
    });
  }
})();
{% endmacro %}"""
        )

        def __init__(self, m, control, heat, timed, frames, labels, metres, scale):
            super().__init__()
            self._name = "GridmapEventScript"
            self.map = m.get_name()
            self.control = control.get_name()
            self.heat = heat.get_name()
            self.timed = timed.get_name()
            self.frames = json.dumps(frames, separators=(",", ":"))
            self.labels = json.dumps(list(labels), ensure_ascii=False)
            self.metres = f"{metres:.1f}"
            self.scale = json.dumps([round(float(s), 3) for s in scale])
            self.top = _HEAT_MAX_ZOOM

    return MapScript(m, control, heat, timed, frames, labels, metres, scale)


_POPUP_FIELDS = {
    "grid_code": "网格编码 Grid code",
    "households": "户数 Households",
    "events": "事件数 Events",
    "per_100_households": "每百户事件 Per 100 households",
    "on_time_rate": "按时办结率 On-time rate",
    "open": "未办结 Open",
    "overdue": "超期 Overdue",
    "median_handling_hours": "办理时长中位数 Median hours",
}


def _popup_props(grids: gpd.GeoDataFrame, kpi: pd.DataFrame) -> pd.DataFrame:
    """Popup values as display strings (JSON has no NaN)."""

    def fmt(values: pd.Series, spec: str) -> np.ndarray:
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.array([format(x, spec) if np.isfinite(x) else "—" for x in v], dtype=object)

    out = pd.DataFrame({"grid_code": grids["grid_code"].to_numpy(dtype=object)})
    out["households"] = fmt(grids["households"].astype("Float64"), ".0f")
    out["events"] = fmt(kpi["events"], ".0f")
    out["per_100_households"] = fmt(kpi["per_100_households"], ".2f")
    out["on_time_rate"] = np.array(
        [f"{x:.1%}" if np.isfinite(x) else "—" for x in kpi["on_time_rate"].to_numpy(dtype=float)],
        dtype=object,
    )
    out["open"] = fmt(kpi["open"], ".0f")
    out["overdue"] = fmt(kpi["overdue"], ".0f")
    out["median_handling_hours"] = fmt(kpi["median_handling_hours"], ".1f")
    return out


def _event_lonlat(events: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    if {"lon", "lat"} <= set(events.columns) and pd.api.types.is_float_dtype(events["lon"]):
        lon = events["lon"].to_numpy(dtype=float)
        lat = events["lat"].to_numpy(dtype=float)
    else:
        pts = to_wgs84(events[[events.geometry.name]]).geometry
        pts = pts.where(pts.geom_type == "Point", pts.representative_point())
        lon, lat = pts.x.to_numpy(dtype=float), pts.y.to_numpy(dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    return lon[ok], lat[ok], events["reported_at"][ok]


def _heat_data(
    lon: np.ndarray,
    lat: np.ndarray,
    when: pd.Series,
    metric: Any,
    *,
    max_points: int,
    period: str,
    bin_m: float,
) -> tuple[list, list, list[str], bool, float]:
    """Heat points, animation frames and labels; aggregated to squares when large."""
    n = len(lon)
    pidx, ptable = period_index(when, period, None, None)
    labels = list(ptable["period"]) or ["—"]
    n_p = max(len(ptable), 1)
    pidx = np.maximum(pidx, 0)
    aggregated = n > max_points
    used_bin = bin_m
    if not aggregated:
        heat = np.round(np.column_stack([lat, lon]), 5).tolist()
        order = np.argsort(pidx, kind="stable")
        bounds = np.searchsorted(pidx[order], np.arange(n_p + 1))
        pts = np.round(np.column_stack([lat, lon]), 5)[order]
        frames = [pts[bounds[i] : bounds[i + 1]].tolist() for i in range(n_p)]
        return heat, frames, labels, False, used_bin

    to_m = Transformer.from_crs(WGS84, metric, always_xy=True)
    x, y = (np.asarray(a, dtype=float) for a in to_m.transform(lon, lat))
    x0, y0 = np.nanmin(x), np.nanmin(y)
    while True:
        ix = np.floor((x - x0) / used_bin).astype(np.int64)
        iy = np.floor((y - y0) / used_bin).astype(np.int64)
        cell = ix * (int(iy.max()) + 1) + iy
        cells, inv, counts = np.unique(cell, return_inverse=True, return_counts=True)
        if len(cells) <= max_points:
            break
        used_bin *= 2
    ny = int(iy.max()) + 1
    cx = x0 + (cells // ny + 0.5) * used_bin
    cy = y0 + (cells % ny + 0.5) * used_bin
    back = Transformer.from_crs(metric, WGS84, always_xy=True)
    clon, clat = (np.asarray(a, dtype=float) for a in back.transform(cx, cy))
    cap = max(float(np.percentile(counts, 99)), 1.0)
    w = np.round(np.minimum(counts / cap, 1.0), 3)
    heat = np.column_stack([np.round(clat, 5), np.round(clon, 5), w]).tolist()
    # per period and cell
    pc = pidx.astype(np.int64) * len(cells) + inv
    keys, pcounts = np.unique(pc, return_counts=True)
    kp, kc = keys // len(cells), keys % len(cells)
    cap_t = max(float(np.percentile(pcounts, 99)), 1.0)
    wt = np.round(np.minimum(pcounts / cap_t, 1.0), 3)
    rows = np.column_stack([np.round(clat[kc], 5), np.round(clon[kc], 5), wt])
    bounds = np.searchsorted(kp, np.arange(n_p + 1))
    frames = [rows[bounds[i] : bounds[i + 1]].tolist() for i in range(n_p)]
    return heat, frames, labels, True, used_bin
