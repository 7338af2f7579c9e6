/* gridmap map page.
 *
 * Everything the page shows comes from the server: strings (config.strings), the base
 * map (config.tiles) and the data (the JSON API). Layers live in a registry: to add a
 * layer (flood colours, evacuation routes, ...) call registerLayer({...}) with
 *   id        unique name, also the key of its label in the strings (layer_<id>)
 *   available (ctx) -> bool: whether the layer has data for this plan
 *   show      (ctx) -> bool: on when the page opens
 *   create    async (ctx) -> L.Layer
 *   legend    (ctx) -> HTML string, shown while the layer is on
 * The page exposes window.gridmap (ready flag, gridCount(), search(code), ...) for
 * tests and for scripting from the browser console.
 *
 * City scale: grids come simplified for the zoom (GET /api/grids?zoom=), all of them once
 * at the opening zoom, then finer geometry for the grids in view as the map zooms in;
 * buildings load by view from a zoom on. gridmap.drawn is true once the grids of the
 * current view are drawn (gridmap.viewSeq / drawnSeq count views; the page fires
 * "gridmap:drawn" on window), and gridmap.timings.drawn is the first time it was.
 * Colours: red, orange, yellow and blue belong to the flood grades; events use one
 * sequential ramp (config.event_palette); flagged grids have a dotted black outline.
 * Phones (narrow screens): the layer list and the legend start collapsed, a grid's
 * details open in a bottom sheet, "my grid" and an event report form sit in the bar.
 */
(function () {
  'use strict';

  const CFG = JSON.parse(document.getElementById('gridmap-config').textContent);
  const S = CFG.strings;
  const API = CFG.api;
  // no red, orange, yellow or blue outside the flood grades
  const KIND_COLOURS = { community: '#8c8c8c', rural: '#7fbf7b', special: '#c2a5cf' };
  const FLAG_STYLE = { color: '#111111', weight: 2.5, dashArray: '2 4' };
  const SELECT_COLOUR = '#00a087';
  const PAL = CFG.event_palette || {};
  const RATE_COLOURS = PAL.rate_ramp || ['#efedf5', '#bcbddc', '#9e9ac8', '#6a51a3', '#3f007d'];
  const HEAT_GRADIENT = PAL.heat_gradient || { 0: '#efedf5', 0.25: '#bcbddc', 0.5: '#9e9ac8', 0.75: '#6a51a3', 1: '#3f007d' };
  const NO_DATA = PAL.no_data || '#d9d9d9';
  const BUILDING_MIN_ZOOM = 15;
  const LABEL_MIN_PX = [34, 26]; // a grid gets a label when it is at least this big on screen
  const LOD_MIN = 8;
  const LOD_FULL = 17;
  const MY_GRID_KEY = 'gridmap.myGrid';
  const TOKEN_KEY = 'gridmap.token';
  const narrow = () => window.matchMedia('(max-width: 640px)').matches;

  const gm = (window.gridmap = {
    ready: false,
    readyAt: null,
    error: null,
    map: null,
    layers: {},
    selected: null,
    gridCount: () => gridIndex.size,
    gridCodes: () => Array.from(gridIndex.keys()),
    search: (code) => searchGrid(code),
    select: (code) => selectGrid(code, { zoom: true }),
    gridBounds: (code) => {
      const l = gridIndex.get(code);
      return l ? boundsArray(l.getBounds()) : null;
    },
    mapBounds: () => boundsArray(map.getBounds()),
    popupCode: () => {
      const p = map._popup;
      const src = p && map.hasLayer(p) ? p._source : null;
      return src && src.feature ? src.feature.properties.grid_code : null;
    },
    timings: { script: performance.now() },
    registerLayer: (def) => registerLayer(def),
    // a button on the map (top left, beside the zoom buttons) for the page's modes
    mapButton: (id, text, onClick) => {
      const Button = L.Control.extend({
        options: { position: 'topleft' },
        onAdd: () => {
          const b = L.DomUtil.create('button', id);
          b.type = 'button';
          b.id = id;
          b.textContent = text;
          L.DomEvent.disableClickPropagation(b);
          b.addEventListener('click', onClick);
          return b;
        },
      });
      new Button().addTo(map);
      return document.getElementById(id);
    },
    // city scale: the grids of the current view are drawn
    drawn: false,
    viewSeq: 0,
    drawnSeq: 0,
    gridLevel: (code) => lodOf.get(code),
    labelCount: () => labelLayer ? labelLayer.getLayers().length : 0,
    labels: () => labelLayer ? labelLayer.getLayers().map((m) => m.options.code) : [],
    // search over the API (grids, communities, streets, buildings) and opening a result
    searchAll: (q) => searchApi(q),
    openResult: (r) => openResult(r),
    // phone: "my grid" and the event report form
    myGrid: () => localStorage.getItem(MY_GRID_KEY),
    setMyGrid: (code) => setMyGrid(code),
    openMyGrid: () => openMyGrid(),
    openReport: () => openReport(),
    narrow: () => narrow(),
    // write requests: the token the user entered (kept in localStorage)
    token: () => localStorage.getItem(TOKEN_KEY),
    authHeaders: () => authHeaders(),
    showBuildings: () => showBuildings(),
    status: (text, isError) => status(text, isError),
  });

  // ------------------------------------------------------------------ helpers
  function esc(value) {
    return String(value ?? '').replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    }[c]));
  }
  function fmt(template, vars) {
    return String(template).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
  }
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    return Number(v).toLocaleString(CFG.lang === 'zh' ? 'zh-CN' : 'en-US', {
      maximumFractionDigits: digits ?? 0,
    });
  }
  function boundsArray(b) {
    return [[b.getSouth(), b.getWest()], [b.getNorth(), b.getEast()]];
  }
  function planQuery() {
    return CFG.plan ? 'plan=' + encodeURIComponent(CFG.plan.id) : '';
  }
  async function getJSON(url) {
    const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!res.ok) {
      let message = res.status + ' ' + res.statusText;
      try {
        const body = await res.json();
        if (body && body.error) message = body.error.message;
      } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return res.json();
  }
  let statusTimer = null;
  function status(text, isError, sticky) {
    const el = document.getElementById('status');
    clearTimeout(statusTimer);
    if (!text) { el.hidden = true; return; }
    el.textContent = text;
    el.className = isError ? 'error' : '';
    el.hidden = false;
    if (!sticky) statusTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }
  function kindLabel(kind) { return S.kinds[kind] || kind || '–'; }
  function flagList(flags) {
    return String(flags || '').split(';').filter(Boolean);
  }
  function flagHtml(flags) {
    const list = flagList(flags);
    if (!list.length) return '–';
    return list.map((f) => '<span class="flag">' + esc(S.flag_labels[f] || f) + '</span>').join('');
  }
  function authHeaders() {
    const t = localStorage.getItem(TOKEN_KEY);
    return t ? { Authorization: 'Bearer ' + t } : {};
  }
  function rows(pairs) {
    return '<table class="figures">' + pairs.map(([k, v]) =>
      '<tr><th>' + esc(k) + '</th><td>' + v + '</td></tr>').join('') + '</table>';
  }

  // --------------------------------------------------------------------- map
  const mapEl = document.getElementById('map');
  const map = (gm.map = L.map(mapEl, { preferCanvas: true, zoomControl: true, minZoom: 3, maxZoom: 19 }));
  L.control.scale({ imperial: false }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  if (CFG.tiles.kind === 'none' || !CFG.tiles.layers.length) {
    mapEl.classList.add('no-tiles');
    map.attributionControl.addAttribution(esc(S.tiles_none));
  } else {
    for (const t of CFG.tiles.layers) {
      L.tileLayer(t.url, {
        subdomains: t.subdomains || 'abc',
        attribution: esc(t.attribution || ''),
        maxZoom: 19,
      }).addTo(map);
    }
  }
  if (CFG.tiles.warning) status(CFG.tiles.warning, true);
  map.setView([47.73, 128.9], 12); // replaced by the plan extent when it loads

  // ----------------------------------------------------------- header / i18n
  document.title = S.title;
  document.getElementById('search-input').placeholder = S.search_placeholder;
  document.getElementById('search-button').textContent = S.search_button;
  const langLink = document.getElementById('lang-switch');
  langLink.textContent = S.lang_switch;
  {
    const params = new URLSearchParams(window.location.search);
    params.set('lang', CFG.lang === 'zh' ? 'en' : 'zh');
    langLink.href = '?' + params.toString();
  }
  if (CFG.plan) {
    const s = CFG.plan.summary || {};
    const zh = CFG.lang === 'zh';
    document.getElementById('plan-info').textContent =
      S.plan + (zh ? '：' : ': ') + CFG.plan.name + (zh ? '（' : ' (') + S.version + ' ' +
      CFG.plan.version + (zh ? '）' : ')') + ' · ' + S.grids_total + ' ' + num(s.grids) + ' · ' +
      S.households_total + ' ' + num(s.households);
  }
  if (CFG.plans.length > 1) {
    const sel = document.getElementById('plan-select');
    for (const p of CFG.plans) {
      const o = document.createElement('option');
      o.value = p.id;
      o.textContent = '#' + p.id + ' ' + p.name + ' (v' + p.version + ')';
      if (CFG.plan && p.id === CFG.plan.id) o.selected = true;
      sel.appendChild(o);
    }
    sel.hidden = false;
    sel.addEventListener('change', () => {
      const params = new URLSearchParams(window.location.search);
      params.set('plan', sel.value);
      window.location.search = params.toString();
    });
  }

  // ---------------------------------------------------------- layer registry
  const REGISTRY = [];
  function registerLayer(def) { REGISTRY.push(def); }
  const ctx = { cfg: CFG, strings: S, map, gridData: null, stats: null };
  const gridIndex = new Map(); // grid_code -> L.Path

  // the legend: a header button folds it (folded at the start on phones)
  const legend = L.control({ position: 'bottomleft' });
  legend.onAdd = () => {
    const div = L.DomUtil.create('div', 'legend-box');
    div.innerHTML = '<button type="button" class="legend-toggle" aria-expanded="true"></button>' +
      '<div class="legend"></div>';
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    div.querySelector('.legend-toggle').addEventListener('click', () => foldLegend(!div.classList.contains('folded')));
    return div;
  };
  legend.addTo(map);
  function foldLegend(folded) {
    const box = legend.getContainer();
    box.classList.toggle('folded', folded);
    const btn = box.querySelector('.legend-toggle');
    btn.textContent = (S.legend || 'Legend') + (folded ? ' ▸' : ' ▾');
    btn.setAttribute('aria-expanded', String(!folded));
  }
  foldLegend(narrow());
  gm.foldLegend = foldLegend;
  function updateLegend() {
    const parts = [];
    for (const def of REGISTRY) {
      const layer = gm.layers[def.id];
      if (layer && map.hasLayer(layer) && def.legend) {
        parts.push('<h4>' + esc(S['layer_' + def.id] || def.id) + '</h4>' + def.legend(ctx));
      }
    }
    if (narrow()) parts.reverse(); // a small box: the thematic layers (registered last) first
    const box = legend.getContainer();
    box.querySelector('.legend').innerHTML = parts.join('');
    box.style.display = parts.length ? '' : 'none';
  }
  map.on('overlayadd overlayremove', updateLegend);

  // a plan layer (roads, community outlines) simplified for the zoom: loaded at the opening
  // zoom, and again with finer shapes when the map zooms in two levels (or fully)
  async function planLayer(c, name, options) {
    const url = (z) => API + '/plans/' + c.cfg.plan.id + '/layers/' + name + '?zoom=' + z;
    let level = c.zoom0 || lodLevel(map.getZoom());
    const layer = L.geoJSON(await getJSON(url(level)), options);
    map.on('zoomend', async () => {
      const want = lodLevel(map.getZoom());
      if (want <= level || (want < level + 2 && want !== LOD_FULL)) return;
      level = want;
      const data = await getJSON(url(want)).catch(() => null);
      if (data && level === want) { layer.clearLayers(); layer.addData(data); }
    });
    return layer;
  }

  // background: roads, rivers and railways from the plan's barrier layer
  registerLayer({
    id: 'background',
    available: (c) => !!c.cfg.plan,
    show: (c) => c.cfg.tiles.kind === 'none',
    create: async (c) => {
      if (!map.getPane('gm-background')) map.createPane('gm-background').style.zIndex = 350;
      const styles = {
        water: { color: '#80cdc1', weight: 4, opacity: 0.9 }, // teal: blue is a flood grade
        rail: { color: '#555', weight: 2, dashArray: '6 4', opacity: 0.9 },
        road: { color: '#bdb7aa', weight: 5, opacity: 0.95 },
      };
      return planLayer(c, 'barriers', {
        interactive: false,
        pane: 'gm-background',
        renderer: L.canvas({ pane: 'gm-background' }),
        style: (f) => {
          const st = styles[f.properties.class] || styles.road;
          const poly = /Polygon/.test(f.geometry.type);
          return poly ? { ...st, weight: 1, fill: true, fillColor: st.color, fillOpacity: 0.6 } : st;
        },
      });
    },
    legend: () =>
      '<div><span class="ln" style="border-top:5px solid #bdb7aa"></span>' + esc(S.legend_road) + '</div>' +
      '<div><span class="ln" style="border-top:4px solid #80cdc1"></span>' + esc(S.legend_water) + '</div>',
  });

  // outlines are hairlines at city zooms, where thousands of grids share the screen;
  // flags show from DETAIL_ZOOM on
  const DETAIL_ZOOM = 13;
  let detailed = true;
  function gridStyle(f) {
    const flagged = detailed && flagList(f.properties.flags).length > 0;
    return {
      color: flagged ? FLAG_STYLE.color : '#52606d',
      weight: flagged ? FLAG_STYLE.weight : (detailed ? 1 : 0.4),
      dashArray: flagged ? FLAG_STYLE.dashArray : null,
      fillColor: KIND_COLOURS[f.properties.kind] || '#999',
      fillOpacity: 0.3,
    };
  }
  function restyleGrids() {
    const want = map.getZoom() >= DETAIL_ZOOM;
    if (want === detailed) return;
    detailed = want;
    const grids = gm.layers.grids;
    if (!grids) return;
    grids.eachLayer((l) => { if (l !== highlighted) l.setStyle(gridStyle(l.feature)); });
  }

  // ------------------------------------------------- grid shapes by zoom level
  // Every layer drawn with the grids' shapes (grids, flood, event rates) registers its
  // code -> polygon index here; finer geometry for the view replaces the shapes in all.
  const shapeIndexes = [];
  const lodOf = new Map(); // grid_code -> level of its loaded geometry
  const gridBox = new Map(); // grid_code -> L.LatLngBounds
  const labelAt = new Map(); // grid_code -> [lat, lon] of its label
  function lodLevel(zoom) { return Math.min(Math.max(Math.floor(zoom), LOD_MIN), LOD_FULL); }
  function gridShapes(data, options) {
    const index = new Map();
    const layer = L.geoJSON(data, {
      ...options,
      onEachFeature: (f, l) => {
        index.set(f.properties.grid_code, l);
        if (options.onEachFeature) options.onEachFeature(f, l);
      },
    });
    shapeIndexes.push(index);
    return layer;
  }
  function noteGrids(data) {
    for (const f of data.features) {
      const p = f.properties;
      lodOf.set(p.grid_code, data.zoom);
      if (p.label) labelAt.set(p.grid_code, [p.label[1], p.label[0]]);
    }
  }
  function applyDetail(data) {
    for (const f of data.features) {
      const code = f.properties.grid_code;
      if ((lodOf.get(code) || 0) >= data.zoom || !f.geometry) continue;
      const depth = f.geometry.type === 'Polygon' ? 1 : 2;
      const latlngs = L.GeoJSON.coordsToLatLngs(f.geometry.coordinates, depth);
      for (const index of shapeIndexes) {
        const l = index.get(code);
        if (l) { l.feature.geometry = f.geometry; l.setLatLngs(latlngs); }
      }
      lodOf.set(code, data.zoom);
      const g = gridIndex.get(code);
      if (g) gridBox.set(code, g.getBounds());
    }
  }
  function viewBbox(pad) {
    const b = map.getBounds().pad(pad || 0);
    const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
    return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180),
      clamp(b.getNorth(), -90, 90)].map((v) => v.toFixed(6)).join(',');
  }
  function codesInView(pad) {
    const view = map.getBounds().pad(pad || 0);
    const out = [];
    for (const [code, b] of gridBox) if (view.intersects(b)) out.push(code);
    return out;
  }
  let detailSeq = 0;
  async function loadDetail() {
    const level = lodLevel(map.getZoom());
    const need = codesInView(0).some((c) => (lodOf.get(c) || 0) < level);
    if (!need) return;
    const seq = ++detailSeq;
    const data = await getJSON(API + '/grids?' + planQuery() + '&zoom=' + level + '&bbox=' + viewBbox(0.25));
    if (seq !== detailSeq) return;
    applyDetail(data);
  }

  // labels: code ending and households, placed at the server's label points, biggest
  // grids first; a label whose box overlaps one already placed is left out
  let labelLayer = null;
  function labelHtml(p) {
    return '<b>' + esc(String(p.grid_code).slice(-3)) + '</b><br>' + esc(num(p.households)) + esc(S.unit_households);
  }
  function placeLabels() {
    if (!labelLayer || !map.hasLayer(labelLayer)) return;
    labelLayer.clearLayers();
    const size = map.getSize();
    const cand = [];
    for (const code of codesInView(0.1)) {
      const b = gridBox.get(code);
      const nw = map.latLngToContainerPoint(b.getNorthWest());
      const se = map.latLngToContainerPoint(b.getSouthEast());
      const w = se.x - nw.x;
      const h = se.y - nw.y;
      if (w < LABEL_MIN_PX[0] || h < LABEL_MIN_PX[1]) continue;
      cand.push([w * h, code]);
    }
    cand.sort((a, b) => b[0] - a[0]);
    const placed = [];
    const [lw, lh] = [46, 30];
    for (const [, code] of cand.slice(0, 1500)) {
      const layer = gridIndex.get(code);
      const at = labelAt.get(code) || layer.getBounds().getCenter();
      const pt = map.latLngToContainerPoint(at);
      if (pt.x < -lw || pt.y < -lh || pt.x > size.x + lw || pt.y > size.y + lh) continue;
      const box = [pt.x - lw / 2, pt.y - lh / 2, pt.x + lw / 2, pt.y + lh / 2];
      if (placed.some((o) => box[0] < o[2] && box[2] > o[0] && box[1] < o[3] && box[3] > o[1])) continue;
      placed.push(box);
      L.marker(at, {
        interactive: false,
        keyboard: false,
        code,
        icon: L.divIcon({ className: 'grid-label', html: labelHtml(layer.feature.properties), iconSize: [lw, lh] }),
      }).addTo(labelLayer);
      if (placed.length >= 400) break;
    }
  }
  function popupHtml(p) {
    const range = p.kind === 'special' ? '–' : esc(p.range_min) + '–' + esc(p.range_max);
    return '<b>' + esc(S.grid_code) + ' ' + esc(p.grid_code) + '</b>' + rows([
      [S.community, esc(p.community_name || p.community_code || '–')],
      [S.kind, esc(kindLabel(p.kind))],
      [S.households, esc(num(p.households))],
      [S.range, range],
      [S.flags, flagHtml(p.flags)],
    ]) + '<a data-grid="' + esc(p.grid_code) + '" class="details">' + esc(S.panel_title) + ' »</a>';
  }
  registerLayer({
    id: 'grids',
    available: (c) => !!c.cfg.plan,
    show: () => true,
    create: async (c) => {
      const data = await c.gridPromise;
      noteGrids(data);
      detailed = (c.zoom0 || map.getZoom()) >= DETAIL_ZOOM;
      map.on('zoomend', restyleGrids);
      // one tooltip and one popup for the whole layer (cheap with thousands of grids)
      const layer = gridShapes(data, {
        style: gridStyle,
        onEachFeature: (f, l) => {
          gridIndex.set(f.properties.grid_code, l);
          gridBox.set(f.properties.grid_code, l.getBounds());
        },
      });
      if (!narrow()) {
        layer.bindTooltip((l) => esc(l.feature.properties.grid_code.slice(-6)) + ' · ' +
          esc(num(l.feature.properties.households)) + ' ' + esc(S.unit_households), { sticky: true, direction: 'top' });
        // on phones the bottom sheet shows the details instead of a popup
        layer.bindPopup((l) => popupHtml(l.feature.properties), { maxWidth: 320 });
      }
      layer.on('click', (e) => {
        if (reportPick) return;
        if (!e.fromSearch) selectGrid(e.layer.feature.properties.grid_code, { zoom: false, popup: false });
      });
      return layer;
    },
    legend: () => Object.keys(KIND_COLOURS).map((k) =>
      '<div><span class="sw" style="background:' + KIND_COLOURS[k] + ';opacity:.6"></span>' +
      esc(S.kinds[k]) + '</div>').join('') +
      '<div><span class="ln" style="border-top:2.5px dotted ' + FLAG_STYLE.color + '"></span>' +
      esc(S.legend_flagged) + '</div>' +
      '<div><span class="ln" style="border-top:4px solid ' + SELECT_COLOUR + '"></span>' +
      esc(S.legend_selected || '') + '</div>',
  });

  registerLayer({
    id: 'labels',
    available: (c) => !!c.cfg.plan,
    show: () => true,
    create: async (c) => {
      await c.gridPromise;
      labelLayer = L.layerGroup();
      labelLayer.on('add', () => setTimeout(placeLabels, 0));
      return labelLayer;
    },
    legend: () => '<div class="note">' + esc(S.legend_labels || '') + '</div>',
  });

  // community outlines are drawn over the grids (not clickable)
  registerLayer({
    id: 'communities',
    available: (c) => !!c.cfg.plan,
    show: () => true,
    create: async (c) => {
      const style = () => (map.getZoom() >= DETAIL_ZOOM
        ? { color: '#1f2933', weight: 2.5, fill: false, dashArray: '8 4' }
        : { color: '#1f2933', weight: 1.2, fill: false, dashArray: '4 3' });
      const layer = await planLayer(c, 'communities', { interactive: false, style });
      map.on('zoomend', () => layer.setStyle(style));
      return layer;
    },
    legend: () => '<div><span class="ln" style="border-top:2.5px dashed #1f2933"></span>' +
      esc(S.legend_community) + '</div>',
  });

  // buildings, fetched for the current view only (they can be many)
  let buildingSeq = 0;
  function buildingColour(hh) { // greys: no flood colour, no event colour
    if (!hh) return '#f7f7f7';
    if (hh < 20) return '#cccccc';
    if (hh < 60) return '#969696';
    if (hh < 120) return '#636363';
    return '#252525';
  }
  registerLayer({
    id: 'buildings',
    available: (c) => !!c.cfg.plan,
    show: () => false,
    create: async (c) => {
      const group = L.geoJSON(null, {
        style: (f) => ({ color: '#222', weight: 0.5, fillColor: buildingColour(f.properties.households), fillOpacity: 0.9 }),
      });
      group.bindTooltip((l) => esc(l.feature.properties.building_id) + ' · ' +
        esc(num(l.feature.properties.households)) + ' ' + esc(S.unit_households) + ' · ' +
        esc(l.feature.properties.grid_code || ''));
      async function refresh() {
        if (!map.hasLayer(group)) return;
        const seq = ++buildingSeq;
        let filter = null;
        if (map.getZoom() >= BUILDING_MIN_ZOOM) filter = 'bbox=' + viewBbox(0.1);
        else if (gm.selected) filter = 'grid=' + encodeURIComponent(gm.selected); // the opened grid's
        if (!filter) {
          group.clearLayers();
          status(S.zoom_for_buildings);
          return;
        }
        try {
          const data = await getJSON(API + '/buildings?' + planQuery() + '&limit=4000&' + filter);
          if (seq !== buildingSeq) return;
          group.clearLayers();
          group.addData(data);
          if (data.truncated) status(fmt(S.buildings_truncated, { shown: data.features.length, total: data.total }));
        } catch (e) {
          status(fmt(S.load_failed, { message: e.message }), true);
        }
      }
      map.on('moveend', refresh);
      group.on('add', refresh);
      group.refresh = refresh;
      return group;
    },
    legend: () => [[0, 'legend_no_data'], [10], [40], [90], [150]].map(([hh, key], i) =>
      '<div><span class="sw" style="background:' + buildingColour(hh) + '"></span>' +
      (key ? esc(S[key]) : ['', '<20', '20–59', '60–119', '≥120'][i] + ' ' + esc(S.unit_households)) + '</div>').join(''),
  });

  registerLayer({
    id: 'events_heat',
    available: (c) => !!c.cfg.plan && c.cfg.has_events,
    show: () => false,
    create: async (c) => {
      const data = await getJSON(API + '/events?' + planQuery() + '&limit=100000');
      const pts = data.features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0], 1]);
      // saturate at a density that grows with the number of events
      const max = Math.max(1, Math.sqrt(pts.length) / 4);
      // the event ramp (sequential, colour-blind safe); the radius grows with the zoom
      // so that the heat stays a surface, not single-point blobs, when zoomed in
      const heat = L.heatLayer(pts, { radius: 16, blur: 14, maxZoom: 17, minOpacity: 0.3, max, gradient: HEAT_GRADIENT });
      const fit = () => {
        const z = map.getZoom();
        const r = z >= 15 ? 16 * Math.pow(1.6, Math.min(z, 18) - 14) : 16;
        heat.setOptions({ radius: r, blur: Math.round(r * 0.9) });
      };
      map.on('zoomend', fit);
      fit();
      return heat;
    },
    legend: () => '<div><span class="ramp" style="background:linear-gradient(to right,' +
      Object.keys(HEAT_GRADIENT).sort((a, b) => a - b).map((k) => HEAT_GRADIENT[k]).join(',') +
      ')"></span></div><div class="note">' + esc(S.legend_heat) + '</div>',
  });

  let rateBreaks = [];
  function rateColour(v) {
    if (v === null || v === undefined) return NO_DATA;
    let i = 0;
    while (i < rateBreaks.length && v > rateBreaks[i]) i += 1;
    return RATE_COLOURS[Math.min(i, RATE_COLOURS.length - 1)];
  }
  registerLayer({
    id: 'event_rates',
    available: (c) => !!c.cfg.plan && c.cfg.has_events,
    show: () => false,
    create: async (c) => {
      const stats = await loadStats();
      await c.gridPromise;
      const rate = new Map(stats.grids.map((g) => [g.grid_code, g.per_100_households]));
      const values = stats.grids.map((g) => g.per_100_households).filter((v) => v !== null).sort((a, b) => a - b);
      rateBreaks = [0.2, 0.4, 0.6, 0.8].map((q) => values.length ? values[Math.floor(q * (values.length - 1))] : 0);
      return gridShapes(c.gridData, {
        interactive: false,
        style: (f) => ({ color: '#555', weight: 0.5, fillColor: rateColour(rate.get(f.properties.grid_code)), fillOpacity: 0.75 }),
      });
    },
    legend: () => {
      const edges = [0, ...rateBreaks];
      return RATE_COLOURS.map((col, i) => '<div><span class="sw" style="background:' + col + '"></span>' +
        (i < rateBreaks.length ? '≤ ' + num(rateBreaks[i], 2) : '> ' + num(edges[edges.length - 1], 2)) + '</div>').join('') +
        '<div><span class="sw" style="background:' + NO_DATA + '"></span>' + esc(S.legend_no_data) + '</div>';
    },
  });

  // flood colours: the plan's "flood" overlay (grade per grid from gridmap.grade_flood)
  const FLOOD_ORDER = ['red', 'orange', 'yellow', 'blue', 'none'];
  const FLOOD_DEFAULT = { red: '#e60000', orange: '#ff8c00', yellow: '#ffd700', blue: '#1e6fd9', none: '#9e9e9e' };
  let floodPromise = null;
  function loadFlood() {
    if (!floodPromise) {
      floodPromise = getJSON(API + '/plans/' + CFG.plan.id + '/overlays/flood').then((d) => {
        d.byCode = new Map(d.grids.map((g) => [g.grid_code, g]));
        d.colours = { ...FLOOD_DEFAULT, ...(d.palette || {}) };
        ctx.flood = d;
        return d;
      });
    }
    return floodPromise;
  }
  registerLayer({
    id: 'flood',
    available: (c) => !!c.cfg.plan && (c.cfg.overlays || []).includes('flood'),
    show: () => false,
    create: async (c) => {
      const flood = await loadFlood();
      await c.gridPromise;
      return gridShapes(c.gridData, {
        interactive: false,
        style: (f) => {
          const g = flood.byCode.get(f.properties.grid_code);
          const grade = g ? g.grade : 'none';
          return {
            color: '#444', weight: 0.5, fillColor: flood.colours[grade] || flood.colours.none,
            fillOpacity: grade === 'none' ? 0.15 : 0.7,
          };
        },
      });
    },
    legend: (c) => {
      const flood = c.flood;
      if (!flood) return '';
      const thr = flood.thresholds || {};
      return FLOOD_ORDER.map((k) => {
        let range = '';
        if (k === 'red' && thr.red !== undefined) range = ' (' + S.water_depth + ' ≥ ' + thr.red + ' m)';
        if (k === 'orange' && thr.orange !== undefined) range = ' (' + thr.orange + '–' + thr.red + ' m)';
        if (k === 'yellow' && thr.yellow !== undefined) range = ' (' + thr.yellow + '–' + thr.orange + ' m)';
        if (k === 'blue' && thr.yellow !== undefined) range = ' (< ' + thr.yellow + ' m)';
        return '<div><span class="sw" style="background:' + flood.colours[k] + '"></span>' +
          esc(S.flood[k] + range) + '</div>';
      }).join('');
    },
  });

  // evacuation: the plan's "evacuation" overlay (gridmap.plan_evacuation): buildings to
  // move coloured by departure wave (those not placed by reason, ringed in magenta), routes
  // coloured by wave, shelters as circles sized by their load (islands at the peak ringed in
  // light blue, closed ones grey), roads flooded at the peak dashed in a colour no route uses
  // (as gridmap.evacuation.outputs; the overlay's palette wins): no red, orange, yellow, blue
  const EVAC_WAVES = ['#762a83', '#1b7837', '#c51b7d', '#5aae61', '#9970ab', '#00441b',
    '#de77ae', '#40004b'];
  const EVAC_FLOODED = '#35978f';
  const EVAC_REASONS = { needs_transport: '#000000', no_capacity: '#d9d9d9', no_route: '#737373',
    cut_off: '#252525' };
  const EVAC_UNPLACED_RING = '#ff00ff';
  let evacPromise = null;
  function loadEvacuation() {
    if (!evacPromise) {
      evacPromise = getJSON(API + '/plans/' + CFG.plan.id + '/overlays/evacuation').then((d) => {
        const pal = d.palette || {};
        d.waveColours = pal.waves || EVAC_WAVES;
        d.flooded = pal.flooded || EVAC_FLOODED;
        d.reasonColours = Object.assign({}, EVAC_REASONS, pal.reasons || {});
        const shelters = (d.shelters.features || []).map((f) => f.properties);
        const total = (p) => (p.load || 0) + (p.transport_load || 0);
        d.used = shelters.filter((p) => total(p) > 0).sort((a, b) => total(b) - total(a));
        d.maxLoad = Math.max(1, ...shelters.map(total));
        d.total = total;
        ctx.evacuation = d;
        return d;
      });
    }
    return evacPromise;
  }
  function waveColour(evac, w) {
    const list = evac.waveColours;
    return list[((Math.max(1, w || 1) - 1) % list.length)];
  }
  function shelterPopup(p) {
    const r = [
      [S.evac_load, esc(num(p.load)) + ' / ' + esc(num(p.capacity)) + ' ' + esc(S.unit_persons)],
      [S.evac_pct_used, esc(num(p.pct_used, 1)) + '%'],
    ];
    if (p.transport_load) r.push([S.evac_driven, esc(num(p.transport_load)) + ' ' + esc(S.unit_persons)]);
    if (p.status && p.status !== 'open') r.push([S.evac_status, esc(S.evac_closed)]);
    else if (p.island_at_peak) r.push([S.evac_status, esc(S.evac_island)]);
    return '<b>' + esc(S.evac_shelter) + ' ' + esc(p.name || p.shelter_id || '') + '</b>' + rows(r);
  }
  function evacBuildingTip(p) {
    const placed = p.status === 'placed' || p.status === 'partly_placed';
    const what = placed ? S.evac_wave + ' ' + esc(num(p.wave)) + (p.shelter ? ' → ' + esc(p.shelter) : '')
      : esc((S.evac_reason || {})[p.status] || p.status || '');
    return esc(p.building_id || '') + ' · ' + esc(num(p.households_to_move)) + ' ' + esc(S.unit_households) +
      ' · ' + what;
  }
  registerLayer({
    id: 'evacuation',
    available: (c) => !!c.cfg.plan && (c.cfg.overlays || []).includes('evacuation'),
    show: () => false,
    create: async () => {
      const evac = await loadEvacuation();
      const routes = L.geoJSON(evac.routes, {
        style: (f) => ({ color: waveColour(evac, f.properties.wave), weight: 2.5, opacity: 0.85,
          dashArray: f.properties.mode === 'vehicle' ? '2 6' : null }),
      });
      routes.bindTooltip((l) => esc(l.feature.properties.shelter || '') + ' · ' +
        esc(num(l.feature.properties.persons)) + ' ' + esc(S.unit_persons) +
        (l.feature.properties.wave ? ' · ' + esc(S.evac_wave) + ' ' + esc(num(l.feature.properties.wave)) : ''),
      { sticky: true });
      const impassable = L.geoJSON(evac.impassable, {
        interactive: false,
        style: { color: evac.flooded, weight: 3, dashArray: '6 5', opacity: 0.95 },
      });
      const buildings = L.geoJSON(evac.buildings || { type: 'FeatureCollection', features: [] }, {
        pointToLayer: (f, latlng) => {
          const p = f.properties;
          const placed = p.status === 'placed' || p.status === 'partly_placed';
          return L.circleMarker(latlng, placed
            ? { radius: 4, color: waveColour(evac, p.wave), weight: 1, fillColor: waveColour(evac, p.wave), fillOpacity: 0.9 }
            : { radius: 6, color: EVAC_UNPLACED_RING, weight: 2,
              fillColor: evac.reasonColours[p.status] || '#000', fillOpacity: 1 });
        },
      });
      buildings.bindTooltip((l) => evacBuildingTip(l.feature.properties), { sticky: true });
      const shelters = L.geoJSON(evac.shelters, {
        pointToLayer: (f, latlng) => {
          const p = f.properties;
          const closed = p.status && p.status !== 'open';
          return L.circleMarker(latlng, {
            radius: 5 + 15 * Math.sqrt(evac.total(p) / evac.maxLoad),
            color: closed ? '#555' : (p.island_at_peak ? evac.flooded : '#222'),
            weight: p.island_at_peak ? 3 : 1.5,
            fillColor: closed ? '#9e9e9e' : '#ffffff', fillOpacity: 0.9,
          });
        },
      });
      shelters.bindPopup((l) => shelterPopup(l.feature.properties), { maxWidth: 280 });
      gm.layers.evacuation_shelters = shelters;
      gm.layers.evacuation_buildings = buildings;
      return L.featureGroup([routes, impassable, buildings, shelters]);
    },
    legend: (c) => {
      const evac = c.evacuation;
      if (!evac) return '';
      const s = evac.summary || {};
      const un = s.unplaced_persons || {};
      const byWave = s.persons_by_wave || {};
      const nWaves = s.waves || Object.keys(byWave).length;
      let html = '';
      if (nWaves) {
        html += '<div class="note">' + esc(S.evac_waves) + '</div>';
        for (let w = 1; w <= nWaves; w++) {
          html += '<div><span class="sw" style="background:' + waveColour(evac, w) + '"></span>' +
            esc(S.evac_wave) + ' ' + w + ': ' + esc(num(byWave[w] || 0)) + ' ' + esc(S.unit_persons) + '</div>';
        }
      } else {
        html += '<div class="note">' + esc(S.evac_routes) + '</div>';
      }
      Object.keys(evac.reasonColours).forEach((r) => {
        if (!un[r]) return;
        html += '<div><span class="sw" style="background:' + evac.reasonColours[r] + ';outline:2px solid ' +
          EVAC_UNPLACED_RING + '"></span>' + esc((S.evac_reason || {})[r] || r) + ': ' + esc(num(un[r])) +
          ' ' + esc(S.unit_persons) + '</div>';
      });
      const shown = evac.used.slice(0, 8);
      if (shown.length) {
        html += '<div class="note">' + esc(S.evac_shelters_used) + '</div>' + shown.map((p) =>
          '<div><span class="sw" style="width:10px;border-radius:50%;background:#fff;border:1px solid #222"></span>' +
          esc(p.name || p.shelter_id) + ' ' + esc(num(evac.total(p))) + ' / ' + esc(num(p.capacity)) + '</div>').join('');
        if (evac.used.length > shown.length) html += '<div>' + esc(S.evac_other_shelters) + '</div>';
      }
      html += '<div><span class="sw" style="width:10px;border-radius:50%;background:#fff;border:1px solid #222"></span>' +
        esc(S.evac_circle) + '</div>' +
        '<div><span class="sw" style="width:10px;border-radius:50%;background:#fff;border:2px solid ' + evac.flooded +
        '"></span>' + esc(S.evac_island) + '</div>' +
        '<div><span class="ln" style="border-top:3px dashed ' + evac.flooded + '"></span>' +
        esc(S.evac_impassable) + '</div>';
      return html + rows([
        [S.evac_placed, esc(num(s.placed_persons)) + ' ' + esc(S.unit_persons)],
        [S.evac_cut_off, esc(num(un.cut_off || 0)) + ' ' + esc(S.unit_persons)],
        [S.evac_no_capacity, esc(num(un.no_capacity || 0)) + ' ' + esc(S.unit_persons)],
        [S.evac_needs_transport, esc(num(un.needs_transport || 0)) + ' ' + esc(S.unit_persons)],
        [S.evac_clearance, esc(num(s.clearance_time_min, 1)) + ' ' + esc(S.unit_min)],
      ]);
    },
  });

  let statsPromise = null;
  function loadStats() {
    if (!statsPromise) {
      statsPromise = getJSON(API + '/stats/grids?' + planQuery()).then((s) => { ctx.stats = s; return s; });
    }
    return statsPromise;
  }

  // ------------------------------------------------------------ grid panel
  let highlighted = null;
  function highlight(layer) {
    if (highlighted) highlighted.setStyle(gridStyle(highlighted.feature));
    highlighted = layer;
    if (layer) {
      layer.setStyle({ color: SELECT_COLOUR, weight: 4, dashArray: null });
      layer.bringToFront();
    }
  }
  function floodFigures(code) {
    if (!(CFG.overlays || []).includes('flood')) return Promise.resolve(null);
    return loadFlood().then((f) => f.byCode.get(code) || null);
  }
  function eventFigures(code) {
    if (!CFG.has_events) return Promise.resolve(null);
    return loadStats().then((s) => s.grids.find((g) => g.grid_code === code) || null);
  }
  function panelHtml(p, ev, fl) {
    const pairs = [
      [S.grid_code, esc(p.grid_code)],
      [S.grid_name, esc(p.name || '–')],
      [S.community, esc((p.community_name || '') + (p.community_code ? ' (' + p.community_code + ')' : ''))],
      [S.kind, esc(kindLabel(p.kind))],
      [S.households, esc(num(p.households))],
      [S.buildings, esc(num(p.buildings))],
      [S.range, p.kind === 'special' ? '–' : esc(p.range_min) + '–' + esc(p.range_max)],
      [S.difficult, esc(p.difficult ? S.yes : S.no)],
      [S.flags, flagHtml(p.flags)],
    ];
    if (p.flag_reason) pairs.push([S.flag_reason, esc(p.flag_reason)]);
    pairs.push([S.worker, esc(p.worker || S.unassigned)]);
    pairs.push([S.area, esc(num(p.area_m2)) + ' ' + esc(S.unit_m2)]);
    pairs.push([S.compactness, esc(num(p.polsby_popper, 3))]);
    if (fl) {
      const col = (ctx.flood && ctx.flood.colours[fl.grade]) || '#999';
      pairs.push([S.flood_grade, '<span class="sw" style="display:inline-block;width:12px;height:10px;background:' +
        col + '"></span> ' + esc(S.flood[fl.grade] || fl.grade)]);
      pairs.push([S.households_at_risk, esc(num(fl.households_at_risk))]);
      pairs.push([S.persons_at_risk, esc(num(fl.persons_at_risk))]);
    }
    if (ev) {
      pairs.push([S.events, esc(num(ev.events))]);
      pairs.push([S.per_100, esc(num(ev.per_100_households, 2))]);
      if (ev.open !== undefined) pairs.push([S.open_events, esc(num(ev.open))]);
      if (ev.on_time_rate !== null && ev.on_time_rate !== undefined) {
        pairs.push([S.on_time_rate, esc(num(ev.on_time_rate * 100, 1)) + '%']);
      }
    }
    const mine = localStorage.getItem(MY_GRID_KEY) === p.grid_code;
    return rows(pairs) + '<div class="panel-actions">' +
      '<button type="button" data-action="set-mine"' + (mine ? ' disabled' : '') + '>' +
      esc(mine ? (S.my_grid_is || '') : (S.my_grid_set || '')) + '</button>' +
      '<button type="button" data-action="report">' + esc(S.report || '') + '</button></div>';
  }
  function openPanel(code) {
    const layer = gridIndex.get(code);
    if (!layer) return;
    const panel = document.getElementById('panel');
    document.getElementById('panel-title').textContent = S.panel_title + ' ' + code.slice(-6);
    const body = document.getElementById('panel-body');
    body.innerHTML = panelHtml(layer.feature.properties, null);
    panel.hidden = false;
    panel.dataset.grid = code;
    panel.classList.remove('expanded');
    if (!narrow()) map.invalidateSize(); // a bottom sheet lies over the map instead
    // the map holds the main figures of a grid; the rest comes with the grid itself
    const full = getJSON(API + '/grids/' + encodeURIComponent(code) + '?' + planQuery())
      .then((f) => ({ ...layer.feature.properties, ...f.properties }));
    Promise.all([full, eventFigures(code), floodFigures(code)]).then(([p, ev, fl]) => {
      if (panel.dataset.grid === code) body.innerHTML = panelHtml(p, ev, fl);
    }).catch((e) => status(fmt(S.load_failed, { message: e.message }), true));
  }
  function selectGrid(code, opts) {
    const layer = gridIndex.get(code);
    if (!layer) return false;
    gm.selected = code;
    highlight(layer);
    openPanel(code); // first: the panel narrows the map
    if (opts.zoom) {
      // on phones keep the grid clear of the bottom sheet
      const sheet = narrow() ? document.getElementById('panel').offsetHeight : 0;
      map.fitBounds(layer.getBounds(), {
        paddingTopLeft: [30, 30], paddingBottomRight: [30, 30 + sheet], maxZoom: 18, animate: false,
      });
    }
    else if (narrow()) {
      // a tapped grid under the bottom sheet moves up into the part of the map left free
      const free = map.getSize().y - document.getElementById('panel').offsetHeight;
      const at = map.latLngToContainerPoint(labelAt.get(code) || layer.getBounds().getCenter());
      if (at.y > free - 30) map.panBy([0, at.y - free / 2], { animate: false });
    }
    if (opts.buildings) showBuildings();
    if (opts.popup !== false && !narrow()) {
      // the popup is bound to the whole layer: a click event on the grid opens it there
      layer.fire('click', { latlng: layer.getBounds().getCenter(), fromSearch: true }, true);
    }
    return true;
  }
  document.getElementById('panel-close').addEventListener('click', () => {
    document.getElementById('panel').hidden = true;
    highlight(null);
    gm.selected = null;
    if (!narrow()) map.invalidateSize();
  });
  // the bottom sheet: its handle (the title bar) folds it out to most of the screen
  document.getElementById('panel-head').addEventListener('click', (e) => {
    if (e.target.id === 'panel-close' || !narrow()) return;
    document.getElementById('panel').classList.toggle('expanded');
  });
  document.getElementById('panel-body').addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const code = document.getElementById('panel').dataset.grid;
    if (btn.dataset.action === 'set-mine') setMyGrid(code);
    if (btn.dataset.action === 'report') openReport(code);
  });
  function showBuildings() {
    const b = gm.layers.buildings;
    if (!b) return;
    if (!map.hasLayer(b)) b.addTo(map); // the layer list follows (overlayadd)
    else if (b.refresh) b.refresh();
  }

  // "my grid": a grid worker's own grid, remembered on the phone
  function setMyGrid(code) {
    if (!code || !gridIndex.has(code)) return false;
    localStorage.setItem(MY_GRID_KEY, code);
    status(fmt(S.my_grid_saved || '{code}', { code }));
    const btn = document.querySelector('#panel-body button[data-action=set-mine]');
    if (btn && document.getElementById('panel').dataset.grid === code) {
      btn.disabled = true;
      btn.textContent = S.my_grid_is || '';
    }
    return true;
  }
  function openMyGrid() {
    const code = localStorage.getItem(MY_GRID_KEY);
    if (code && gridIndex.has(code)) return selectGrid(code, { zoom: true, buildings: true, popup: false });
    status(S.my_grid_none || '', false);
    return false;
  }
  document.getElementById('my-grid').addEventListener('click', openMyGrid);
  map.on('popupopen', (e) => {
    const a = e.popup.getElement().querySelector('a.details');
    if (a) a.addEventListener('click', () => selectGrid(a.dataset.grid, { zoom: true, popup: false }));
  });

  // search: GET /api/search lists grids, communities, streets and named buildings; one
  // exact or single match opens at once, several are listed under the box to pick from
  const resultsEl = document.getElementById('search-results');
  let searchSeq = 0;
  let suggestTimer = null;
  function hideResults() { resultsEl.hidden = true; resultsEl.innerHTML = ''; }
  function resultLabel(r) {
    const type = (S.search_types || {})[r.type] || r.type;
    let name = r.name || '';
    if (r.type === 'grid') name = (r.name ? r.name + ' · ' : '') + (r.community_name || '') + ' ' + r.code.slice(-3);
    if (r.type === 'street' && !r.name) name = type + ' ' + r.code.slice(-3);
    if (r.type === 'community' && !r.name) name = type + ' ' + r.code.slice(-3);
    let extra = r.type === 'grid' && r.households !== undefined && r.households !== null
      ? esc(num(r.households)) + esc(S.unit_households) : '';
    if (r.type === 'building') extra = esc(r.code);
    return '<span class="rtype">' + esc(type) + '</span> ' + esc(name.trim()) +
      (r.type === 'grid' || r.type === 'community' || r.type === 'street' ? ' <small>' + esc(r.code) + '</small>' : '') +
      (extra ? ' <small>' + extra + '</small>' : '');
  }
  function showResults(list, q, total) {
    resultsEl.innerHTML = list.map((r, i) => '<li role="option" tabindex="-1" data-i="' + i + '">' + resultLabel(r) + '</li>').join('') +
      (total > list.length ? '<li class="more">' + esc(fmt(S.search_more || '', { n: total - list.length })) + '</li>' : '');
    resultsEl.hidden = false;
    resultsEl.onclick = (e) => {
      const li = e.target.closest('li[data-i]');
      if (!li) return;
      hideResults();
      openResult(list[Number(li.dataset.i)]);
    };
    status(fmt(S.search_many, { n: total, code: q }));
  }
  async function searchApi(text) {
    const q = String(text || '').trim();
    if (!q || !CFG.plan) return [];
    const seq = ++searchSeq;
    const data = await getJSON(API + '/search?' + planQuery() + '&limit=12&q=' + encodeURIComponent(q.slice(0, 64)));
    return seq === searchSeq ? data : null;
  }
  function openResult(r) {
    hideResults();
    if (r.type === 'grid' && gridIndex.has(r.code)) {
      return selectGrid(r.code, { zoom: true, buildings: true });
    }
    const [w, sth, e, n] = r.bbox;
    const b = L.latLngBounds([sth, w], [n, e]);
    if (r.type === 'building') {
      map.fitBounds(b, { maxZoom: 18, animate: false });
      if (r.grid_code && gridIndex.has(r.grid_code)) selectGrid(r.grid_code, { zoom: false, popup: false });
      showBuildings();
    } else {
      map.fitBounds(b, { padding: [20, 20], animate: false });
    }
    status(resultLabel(r).replace(/<[^>]+>/g, ''));
    return true;
  }
  async function searchGrid(text) {
    const q = String(text || '').trim();
    if (!q) return false;
    if (gridIndex.has(q)) return selectGrid(q, { zoom: true, buildings: true });
    let data;
    try {
      data = await searchApi(q);
    } catch (e) {
      status(fmt(S.load_failed, { message: e.message }), true);
      return false;
    }
    if (!data) return false; // a newer search runs
    const list = data.results || [];
    if (!list.length) { hideResults(); status(fmt(S.search_not_found, { code: q }), true); return false; }
    const exact = list.filter((r) => r.match === 'exact');
    if (list.length === 1 || exact.length === 1) return openResult(exact[0] || list[0]);
    showResults(list, q, data.total);
    return false;
  }
  document.getElementById('search').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(suggestTimer);
    searchGrid(document.getElementById('search-input').value);
  });
  {
    // suggestions while typing (after a pause)
    const input = document.getElementById('search-input');
    input.addEventListener('input', () => {
      clearTimeout(suggestTimer);
      const q = input.value.trim();
      if (q.length < 2) { hideResults(); return; }
      suggestTimer = setTimeout(async () => {
        try {
          const data = await searchApi(q);
          if (data && input.value.trim() === q && data.results.length) showResults(data.results, q, data.total);
        } catch (e) { /* the submit reports errors */ }
      }, 300);
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') hideResults();
      const first = resultsEl.querySelector('li[data-i]');
      if (e.key === 'ArrowDown' && first && !resultsEl.hidden) { e.preventDefault(); first.focus(); }
    });
    // the list by keyboard: arrows move, Enter opens, Escape goes back to the box
    resultsEl.addEventListener('keydown', (e) => {
      const li = e.target.closest('li[data-i]');
      if (!li) return;
      if (e.key === 'Enter') { e.preventDefault(); li.click(); }
      if (e.key === 'Escape') { hideResults(); input.focus(); }
      const next = e.key === 'ArrowDown' ? li.nextElementSibling : e.key === 'ArrowUp' ? li.previousElementSibling : null;
      if (next && next.dataset.i !== undefined) { e.preventDefault(); next.focus(); }
      if (e.key === 'ArrowUp' && !li.previousElementSibling) { e.preventDefault(); input.focus(); }
    });
    map.on('click', hideResults);
  }

  // ------------------------------------------------------------- report form
  // An event report from the field: category, text, where (the phone's position or a
  // tap on the map), an optional photo (at most 5 MB). Writes need a token; the one the
  // worker enters is kept on the phone.
  const MAX_PHOTO = 5 * 1024 * 1024;
  const reportEl = document.getElementById('report');
  let reportPick = false;
  let reportMarker = null;
  let reportAt = null;
  function setReportAt(latlng, how) {
    reportAt = latlng;
    if (!reportMarker) {
      reportMarker = L.circleMarker(latlng, { radius: 8, color: '#111', weight: 2, fillColor: '#fff', fillOpacity: 1 });
    }
    reportMarker.setLatLng(latlng).addTo(map);
    const f = reportEl.querySelector('form');
    f.querySelector('.where').textContent = (how ? how + ': ' : '') + latlng.lat.toFixed(6) + ', ' + latlng.lng.toFixed(6);
  }
  function buildReportForm() {
    const cats = Object.entries(S.categories || {}).map(([k, v]) => '<option value="' + esc(k) + '">' + esc(v) + '</option>').join('');
    reportEl.innerHTML = '<form id="report-form" novalidate>' +
      '<div class="sheet-head"><h2>' + esc(S.report_title || '') + '</h2>' +
      '<button type="button" class="close" aria-label="' + esc(S.close) + '">×</button></div>' +
      '<label>' + esc(S.category) + '<select name="category" required>' + cats + '</select></label>' +
      (CFG.event_text_field ? '<label>' + esc(S.report_text || '') + '<textarea name="text" rows="3" maxlength="500"></textarea></label>' : '') +
      '<div class="loc"><span>' + esc(S.report_where || '') + '</span> <span class="where">–</span><br>' +
      '<button type="button" data-act="gps">' + esc(S.report_gps || '') + '</button> ' +
      '<button type="button" data-act="tap">' + esc(S.report_tap || '') + '</button></div>' +
      '<label>' + esc(S.report_photo || '') + '<input type="file" name="photo" accept="image/jpeg,image/png,image/webp" capture="environment"></label>' +
      '<label class="token">' + esc(S.report_token || '') + '<input type="password" name="token" autocomplete="off"></label>' +
      '<div class="msg" role="alert"></div>' +
      '<button type="submit" class="primary">' + esc(S.report_send || '') + '</button></form>';
    const f = reportEl.querySelector('form');
    f.querySelector('.close').addEventListener('click', closeReport);
    f.querySelector('[data-act=gps]').addEventListener('click', () => {
      if (!navigator.geolocation) { reportMsg(S.report_no_gps, true); return; }
      reportMsg(S.loading);
      navigator.geolocation.getCurrentPosition(
        (pos) => { reportMsg(''); setReportAt(L.latLng(pos.coords.latitude, pos.coords.longitude), S.report_gps); map.setView(reportAt, Math.max(map.getZoom(), 16)); },
        (err) => reportMsg(fmt(S.report_gps_failed || '{message}', { message: err.message }), true),
        { enableHighAccuracy: true, timeout: 15000 },
      );
    });
    f.querySelector('[data-act=tap]').addEventListener('click', () => {
      reportPick = true;
      reportEl.classList.add('picking');
      status(S.report_tap_hint, false, true);
    });
    f.querySelector('input[name=photo]').addEventListener('change', (e) => {
      const file = e.target.files[0];
      if (file && file.size > MAX_PHOTO) { e.target.value = ''; reportMsg(S.report_photo_too_big, true); } else reportMsg('');
    });
    f.addEventListener('submit', (e) => { e.preventDefault(); submitReport(f); });
  }
  function reportMsg(text, isError) {
    const m = reportEl.querySelector('.msg');
    m.textContent = text || '';
    m.className = 'msg' + (isError ? ' error' : '');
  }
  map.on('click', (e) => {
    if (!reportPick) return;
    reportPick = false;
    reportEl.classList.remove('picking');
    status(null);
    setReportAt(e.latlng, S.report_tap);
  });
  function openReport(code) {
    if (!reportEl.firstChild) buildReportForm();
    const f = reportEl.querySelector('form');
    f.querySelector('.token').hidden = !!localStorage.getItem(TOKEN_KEY);
    reportMsg('');
    const at = code && labelAt.get(code);
    if (at) setReportAt(L.latLng(at[0], at[1]), S.report_grid);
    document.getElementById('panel').hidden = true;
    reportEl.hidden = false;
    return f;
  }
  function closeReport() {
    reportEl.hidden = true;
    reportPick = false;
    reportEl.classList.remove('picking');
    if (reportMarker) reportMarker.remove();
  }
  async function submitReport(f) {
    if (!reportAt) { reportMsg(S.report_need_place, true); return; }
    const token = f.elements.token.value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token);
    if (!localStorage.getItem(TOKEN_KEY)) { reportMsg(S.report_need_token, true); f.querySelector('.token').hidden = false; return; }
    const body = {
      reported_at: new Date().toISOString(),
      category: f.elements.category.value,
      source: 'grid_worker',
      lon: Number(reportAt.lng.toFixed(7)),
      lat: Number(reportAt.lat.toFixed(7)),
    };
    if (CFG.event_text_field && f.elements.text && f.elements.text.value.trim()) {
      body[CFG.event_text_field] = f.elements.text.value.trim();
    }
    const photo = f.elements.photo.files[0];
    if (photo && photo.size > MAX_PHOTO) { reportMsg(S.report_photo_too_big, true); return; }
    const send = f.querySelector('button[type=submit]');
    send.disabled = true;
    reportMsg(S.report_sending);
    try {
      const res = await fetch(API + '/events?' + planQuery(), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
        body: JSON.stringify(body),
      });
      const out = await res.json().catch(() => ({}));
      if (res.status === 401 || res.status === 403) {
        if (res.status === 401 || (out.error && out.error.code !== 'out_of_scope')) localStorage.removeItem(TOKEN_KEY);
        f.querySelector('.token').hidden = false;
      }
      if (!res.ok) {
        const why = (out.errors && out.errors[0] && out.errors[0].errors[0].message) || (out.error && out.error.message) || res.status;
        throw new Error(why);
      }
      const id = out.accepted[0];
      gm.lastReport = { id, photo: null };
      if (photo) {
        const fd = new FormData();
        fd.append('photo', photo, photo.name);
        const pr = await fetch(API + '/events/' + encodeURIComponent(id) + '/photo', {
          method: 'POST', credentials: 'same-origin', headers: authHeaders(), body: fd,
        });
        const pout = await pr.json().catch(() => ({}));
        if (!pr.ok) throw new Error(fmt(S.report_photo_failed || '{message}', { message: (pout.error && pout.error.message) || pr.status }));
        gm.lastReport.photo = pout.name;
      }
      f.reset();
      closeReport();
      status(fmt(S.report_done || '{id}', { id }));
    } catch (e) {
      reportMsg(fmt(S.load_failed, { message: e.message }), true);
    } finally {
      send.disabled = false;
    }
  }
  document.getElementById('report-button').addEventListener('click', () => openReport(gm.selected));

  // ------------------------------------------------------------------ start
  async function start() {
    if (!CFG.plan) {
      status(S.no_plan, false, true);
      gm.ready = true;
      gm.readyAt = performance.now();
      document.body.dataset.ready = 'true';
      return;
    }
    status(S.loading, false, true);
    // all grids once, simplified for the zoom that shows the whole plan
    let zoom0 = 12;
    if (CFG.plan.extent) {
      const [w, sth, e, n] = CFG.plan.extent;
      zoom0 = map.getBoundsZoom(L.latLngBounds([sth, w], [n, e]), false, L.point(20, 20));
    }
    ctx.zoom0 = lodLevel(zoom0);
    ctx.gridPromise = getJSON(API + '/grids?' + planQuery() + '&zoom=' + ctx.zoom0).then((d) => {
      ctx.gridData = d;
      gm.timings.grids = performance.now();
      return d;
    });
    const defs = REGISTRY.filter((def) => def.available(ctx));
    const eager = (def) => def.id === 'grids' || def.id === 'buildings' || def.show(ctx);
    // the layers shown at start load in parallel ...
    const pending = defs.map((def) => (eager(def) && def.id !== 'grids'
      ? def.create(ctx).catch((e) => {
        status(fmt(S.load_failed, { message: e.message }), true);
        return null;
      })
      : null));
    // ... but the grids are drawn as soon as they arrive
    const gi = defs.findIndex((def) => def.id === 'grids');
    if (gi >= 0) {
      const grids = await defs[gi].create(ctx);
      gm.timings.gridLayer = performance.now();
      gm.layers.grids = grids;
      const b = grids.getBounds();
      if (b.isValid()) map.fitBounds(b, { padding: [10, 10], animate: false });
      grids.addTo(map);
      gm.timings.gridsAdded = performance.now();
      map.on('moveend', onView);
      await onView();
      gm.timings.drawn = performance.now();
    }
    const created = await Promise.all(pending);
    if (gi >= 0) created[gi] = gm.layers.grids;
    gm.timings.layers = performance.now();
    // ... and the others are added in registry order (it is the drawing order above
    // the grids; roads and water have their own pane below them)
    const overlays = {};
    defs.forEach((def, i) => {
      const label = esc(S['layer_' + def.id] || def.id);
      if (eager(def)) {
        if (!created[i]) return;
        gm.layers[def.id] = created[i];
        if (def.show(ctx) && !map.hasLayer(created[i])) created[i].addTo(map);
        overlays[label] = created[i];
        return;
      }
      // the others are created on first use, so the page opens fast
      const placeholder = L.layerGroup();
      placeholder.once('add', async () => {
        try {
          const layer = await def.create(ctx);
          placeholder.addLayer(layer);
          gm.layers[def.id + '_inner'] = layer;
          updateLegend();
        } catch (e) {
          status(fmt(S.load_failed, { message: e.message }), true);
        }
      });
      gm.layers[def.id] = placeholder;
      overlays[label] = placeholder;
    });
    // the layer list: folded at the start on phones; its toggle opens it, × folds it
    const control = L.control.layers(null, overlays, { collapsed: narrow(), position: 'topright' }).addTo(map);
    {
      const box = control.getContainer();
      const toggle = box.querySelector('.leaflet-control-layers-toggle');
      toggle.title = S.layers;
      toggle.setAttribute('aria-label', S.layers);
      L.DomEvent.on(toggle, 'click', (e) => { L.DomEvent.preventDefault(e); control.expand(); });
      const fold = L.DomUtil.create('button', 'layers-fold', box.querySelector('.leaflet-control-layers-list'));
      fold.type = 'button';
      fold.textContent = '× ' + S.layers;
      L.DomEvent.on(fold, 'click', (e) => { L.DomEvent.stop(e); control.collapse(); });
      gm.layerControl = control;
    }
    map.on('overlayadd', (e) => { if (e.layer === labelLayer) placeLabels(); });
    updateLegend();
    status(null);
    const params = new URLSearchParams(window.location.search);
    if (params.get('grid')) {
      await searchGrid(params.get('grid'));
      if (params.get('mine') === '1' && gm.selected) setMyGrid(gm.selected);
    } else if (params.get('mine') === '1') {
      openMyGrid();
    }
    gm.ready = true;
    gm.readyAt = gm.timings.ready = performance.now();
    document.body.dataset.ready = 'true';
  }
  // after every move: finer grid shapes for the view, then labels; "drawn" when done
  async function onView() {
    const seq = ++gm.viewSeq;
    gm.drawn = false;
    try {
      await loadDetail();
    } catch (e) {
      status(fmt(S.load_failed, { message: e.message }), true);
    }
    if (seq !== gm.viewSeq) return;
    placeLabels();
    gm.timings.view = performance.now();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    if (seq !== gm.viewSeq) return;
    gm.drawn = true;
    gm.drawnSeq = seq;
    window.dispatchEvent(new CustomEvent('gridmap:drawn', { detail: { seq } }));
  }
  start().catch((e) => {
    gm.error = e.message;
    status(fmt(S.load_failed, { message: e.message }), true, true);
  });
})();
