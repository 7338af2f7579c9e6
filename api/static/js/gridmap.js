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
 */
(function () {
  'use strict';

  const CFG = JSON.parse(document.getElementById('gridmap-config').textContent);
  const S = CFG.strings;
  const API = CFG.api;
  const KIND_COLOURS = { community: '#4e79a7', rural: '#59a14f', special: '#b07aa1' };
  const FLAG_COLOUR = '#d62728';
  const RATE_COLOURS = ['#ffffb2', '#fecc5c', '#fd8d3c', '#f03b20', '#bd0026'];
  const BUILDING_MIN_ZOOM = 15;

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

  const legend = L.control({ position: 'bottomleft' });
  legend.onAdd = () => {
    const div = L.DomUtil.create('div', 'legend');
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  legend.addTo(map);
  function updateLegend() {
    const parts = [];
    for (const def of REGISTRY) {
      const layer = gm.layers[def.id];
      if (layer && map.hasLayer(layer) && def.legend) {
        parts.push('<h4>' + esc(S['layer_' + def.id] || def.id) + '</h4>' + def.legend(ctx));
      }
    }
    const el = legend.getContainer();
    el.innerHTML = parts.join('');
    el.style.display = parts.length ? '' : 'none';
  }
  map.on('overlayadd overlayremove', updateLegend);

  // background: roads, rivers and railways from the plan's barrier layer
  registerLayer({
    id: 'background',
    available: (c) => !!c.cfg.plan,
    show: (c) => c.cfg.tiles.kind === 'none',
    create: async (c) => {
      const data = await getJSON(API + '/plans/' + c.cfg.plan.id + '/layers/barriers');
      const styles = {
        water: { color: '#6baed6', weight: 4, opacity: 0.9 },
        rail: { color: '#555', weight: 2, dashArray: '6 4', opacity: 0.9 },
        road: { color: '#bdb7aa', weight: 5, opacity: 0.95 },
      };
      return L.geoJSON(data, {
        interactive: false,
        style: (f) => {
          const st = styles[f.properties.class] || styles.road;
          const poly = /Polygon/.test(f.geometry.type);
          return poly ? { ...st, weight: 1, fill: true, fillColor: st.color, fillOpacity: 0.6 } : st;
        },
      });
    },
    legend: () =>
      '<div><span class="ln" style="border-top:5px solid #bdb7aa"></span>' + esc(S.legend_road) + '</div>' +
      '<div><span class="ln" style="border-top:4px solid #6baed6"></span>' + esc(S.legend_water) + '</div>',
  });

  function gridStyle(f) {
    const flagged = flagList(f.properties.flags).length > 0;
    return {
      color: flagged ? FLAG_COLOUR : '#334e68',
      weight: flagged ? 2 : 1,
      fillColor: KIND_COLOURS[f.properties.kind] || '#999',
      fillOpacity: 0.3,
    };
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
      // one tooltip and one popup for the whole layer (cheap with thousands of grids)
      const layer = L.geoJSON(data, {
        style: gridStyle,
        onEachFeature: (f, l) => { gridIndex.set(f.properties.grid_code, l); },
      });
      layer.bindTooltip((l) => esc(l.feature.properties.grid_code.slice(-6)) + ' · ' +
        esc(num(l.feature.properties.households)) + ' ' + esc(S.unit_households), { sticky: true, direction: 'top' });
      layer.bindPopup((l) => popupHtml(l.feature.properties), { maxWidth: 320 });
      layer.on('click', (e) => {
        if (!e.fromSearch) selectGrid(e.layer.feature.properties.grid_code, { zoom: false, popup: false });
      });
      return layer;
    },
    legend: () => Object.keys(KIND_COLOURS).map((k) =>
      '<div><span class="sw" style="background:' + KIND_COLOURS[k] + ';opacity:.6"></span>' +
      esc(S.kinds[k]) + '</div>').join('') +
      '<div><span class="sw" style="background:transparent;border:2px solid ' + FLAG_COLOUR + '"></span>' +
      esc(S.legend_flagged) + '</div>',
  });

  // community outlines are drawn over the grids (not clickable)
  registerLayer({
    id: 'communities',
    available: (c) => !!c.cfg.plan,
    show: () => true,
    create: async (c) => {
      const data = await getJSON(API + '/plans/' + c.cfg.plan.id + '/layers/communities');
      return L.geoJSON(data, {
        interactive: false,
        style: { color: '#1f2933', weight: 2.5, fill: false, dashArray: '8 4' },
      });
    },
    legend: () => '<div><span class="ln" style="border-top:2.5px dashed #1f2933"></span>' +
      esc(S.legend_community) + '</div>',
  });

  // buildings, fetched for the current view only (they can be many)
  let buildingSeq = 0;
  function buildingColour(hh) {
    if (!hh) return '#bbbbbb';
    if (hh < 20) return '#c6dbef';
    if (hh < 60) return '#6baed6';
    if (hh < 120) return '#2171b5';
    return '#08306b';
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
        if (map.getZoom() < BUILDING_MIN_ZOOM) {
          group.clearLayers();
          status(S.zoom_for_buildings);
          return;
        }
        const b = map.getBounds();
        const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(',');
        try {
          const data = await getJSON(API + '/buildings?' + planQuery() + '&limit=4000&bbox=' + bbox);
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
      return L.heatLayer(pts, { radius: 16, blur: 14, maxZoom: 17, minOpacity: 0.3, max });
    },
    legend: () => '<div><span class="ramp"></span></div><div class="note">' + esc(S.legend_heat) + '</div>',
  });

  let rateBreaks = [];
  function rateColour(v) {
    if (v === null || v === undefined) return '#dddddd';
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
      return L.geoJSON(c.gridData, {
        interactive: false,
        style: (f) => ({ color: '#555', weight: 0.5, fillColor: rateColour(rate.get(f.properties.grid_code)), fillOpacity: 0.75 }),
      });
    },
    legend: () => {
      const edges = [0, ...rateBreaks];
      return RATE_COLOURS.map((col, i) => '<div><span class="sw" style="background:' + col + '"></span>' +
        (i < rateBreaks.length ? '≤ ' + num(rateBreaks[i], 2) : '> ' + num(edges[edges.length - 1], 2)) + '</div>').join('') +
        '<div><span class="sw" style="background:#dddddd"></span>' + esc(S.legend_no_data) + '</div>';
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
      return L.geoJSON(c.gridData, {
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
  const EVAC_WAVES = ['#762a83', '#e7298a', '#1b9e77', '#66a61e', '#e6ab02', '#7570b3',
    '#fb9a99', '#b15928'];
  const EVAC_FLOODED = '#00bfff';
  const EVAC_REASONS = { needs_transport: '#000000', no_capacity: '#8c2d04', no_route: '#525252',
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
      layer.setStyle({ color: '#f2b134', weight: 4 });
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
    return rows(pairs);
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
    map.invalidateSize();
    Promise.all([eventFigures(code), floodFigures(code)]).then(([ev, fl]) => {
      if ((ev || fl) && panel.dataset.grid === code) body.innerHTML = panelHtml(layer.feature.properties, ev, fl);
    }).catch((e) => status(fmt(S.load_failed, { message: e.message }), true));
  }
  function selectGrid(code, opts) {
    const layer = gridIndex.get(code);
    if (!layer) return false;
    gm.selected = code;
    highlight(layer);
    openPanel(code); // first: the panel narrows the map
    if (opts.zoom) map.fitBounds(layer.getBounds(), { padding: [40, 40], maxZoom: 18, animate: false });
    if (opts.popup !== false) {
      // the popup is bound to the whole layer: a click event on the grid opens it there
      layer.fire('click', { latlng: layer.getBounds().getCenter(), fromSearch: true }, true);
    }
    return true;
  }
  document.getElementById('panel-close').addEventListener('click', () => {
    document.getElementById('panel').hidden = true;
    highlight(null);
    gm.selected = null;
    map.invalidateSize();
  });
  map.on('popupopen', (e) => {
    const a = e.popup.getElement().querySelector('a.details');
    if (a) a.addEventListener('click', () => selectGrid(a.dataset.grid, { zoom: true, popup: false }));
  });

  function searchGrid(text) {
    const q = String(text || '').trim();
    if (!q) return false;
    let code = gridIndex.has(q) ? q : null;
    if (!code) {
      const hits = gm.gridCodes().filter((c) => c.endsWith(q));
      if (hits.length === 1) code = hits[0];
      else if (hits.length > 1) { status(fmt(S.search_many, { n: hits.length, code: q })); return false; }
    }
    if (!code) { status(fmt(S.search_not_found, { code: q }), true); return false; }
    return selectGrid(code, { zoom: true });
  }
  document.getElementById('search').addEventListener('submit', (e) => {
    e.preventDefault();
    searchGrid(document.getElementById('search-input').value);
  });

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
    ctx.gridPromise = getJSON(API + '/grids?' + planQuery()).then((d) => {
      ctx.gridData = d;
      gm.timings.grids = performance.now();
      return d;
    });
    const defs = REGISTRY.filter((def) => def.available(ctx));
    const eager = (def) => def.id === 'grids' || def.id === 'buildings' || def.show(ctx);
    // the layers shown at start load in parallel ...
    const created = await Promise.all(defs.map((def) => (eager(def)
      ? def.create(ctx).catch((e) => {
        if (def.id === 'grids') throw e;
        status(fmt(S.load_failed, { message: e.message }), true);
        return null;
      })
      : null)));
    gm.timings.layers = performance.now();
    // ... and are added in registry order (it is the drawing order)
    const overlays = {};
    defs.forEach((def, i) => {
      const label = esc(S['layer_' + def.id] || def.id);
      if (eager(def)) {
        if (!created[i]) return;
        gm.layers[def.id] = created[i];
        if (def.show(ctx)) created[i].addTo(map);
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
    L.control.layers(null, overlays, { collapsed: false, position: 'topright' }).addTo(map);
    if (gm.layers.grids) {
      const b = gm.layers.grids.getBounds();
      if (b.isValid()) map.fitBounds(b, { padding: [10, 10], animate: false });
    }
    updateLegend();
    status(null);
    const params = new URLSearchParams(window.location.search);
    if (params.get('grid')) searchGrid(params.get('grid'));
    gm.ready = true;
    gm.readyAt = gm.timings.ready = performance.now();
    document.body.dataset.ready = 'true';
  }
  start().catch((e) => {
    gm.error = e.message;
    status(fmt(S.load_failed, { message: e.message }), true, true);
  });
})();
