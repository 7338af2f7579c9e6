// gridmap GridEditor: the browser side of gridmap.widget.GridEditor (anywidget ES module).
//
// `L` (Leaflet 1.9.4) is defined above this file by gridmap/widget/editor.py, which
// prepends the vendored leaflet.js evaluated into a local object: no CDN, no globals.
//
// The browser draws and collects paint strokes; Python owns the plan. A stroke (a click
// on a building, a lasso, a brush drag) sends {type: "assign", ids, to_grid}; buttons
// send {type: "undo" | "redo" | "lock" | "unlock" | "replan" | "save"}. Python answers
// by updating the synced traits (_grids, _building_grid, _table, _changed, message).

const STATUS_FILL = { low: '#6baed6', ok: '#74c476', high: '#fb6a4a', special: '#bdbdbd' };
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173'];
const STROKE_COLOUR = '#ffd400';
const ACTIVE_COLOUR = '#ff7f00';

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function hashColour(code) {
  let h = 0;
  for (let i = 0; i < code.length; i++) h = (h * 31 + code.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

function statusOf(hh, min, max, special) {
  if (special) return 'special';
  if (hh < min) return 'low';
  if (hh > max) return 'high';
  return 'ok';
}

// ray casting on lon/lat: is (x, y) inside the ring?
function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const xi = ring[i][0];
    const yi = ring[i][1];
    const xj = ring[j][0];
    const yj = ring[j][1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

const TEMPLATE = `
<div class="gm-toolbar">
  <span class="gm-tools" role="group" aria-label="tool">
    <button type="button" data-tool="grid" title="click a grid to make it the active grid">grid</button>
    <button type="button" data-tool="click" title="click a building to move it into the active grid">click</button>
    <button type="button" data-tool="lasso" title="draw around buildings to move them">lasso</button>
    <button type="button" data-tool="brush" title="drag the circle over buildings to move them">brush</button>
  </span>
  <label>r <input class="gm-radius" type="range" min="5" max="150" step="5" value="25"><span class="gm-radius-v">25 m</span></label>
  <label>active <select class="gm-active" aria-label="active grid"></select></label>
  <button type="button" data-act="undo">undo</button>
  <button type="button" data-act="redo">redo</button>
  <button type="button" data-act="lock">lock</button>
  <button type="button" data-act="unlock">unlock</button>
  <button type="button" data-act="replan" title="re-plan the unlocked grids of the active grid's community">re-plan rest</button>
</div>
<div class="gm-body">
  <div class="gm-map"></div>
  <div class="gm-side">
    <div class="gm-preview" hidden></div>
    <table class="gm-table"><thead><tr><th>grid</th><th>households</th><th>range</th><th></th></tr></thead><tbody></tbody></table>
  </div>
</div>
<div class="gm-footer">
  <input class="gm-reason" type="text" placeholder="reason (kept in the history)" aria-label="reason">
  <input class="gm-path" type="text" aria-label="save as">
  <button type="button" data-act="save">save</button>
  <span class="gm-message" role="status"></span>
</div>`;

function render({ model, el }) {
  el.classList.add('gm-editor');
  el.innerHTML = TEMPLATE;
  const $ = (sel) => el.querySelector(sel);
  const mapEl = $('.gm-map');
  mapEl.style.height = model.get('height') + 'px';
  const map = L.map(mapEl, { preferCanvas: true, zoomSnap: 0.25, attributionControl: false });
  L.control.scale({ imperial: false }).addTo(map);
  el._gmMap = map; // for tests and the browser console

  let tool = 'brush';
  let radius = 25;
  let stroke = new Set();
  let strokeShape = null;
  let painting = false;
  let lasso = [];
  let gridProps = new Map();
  let gridLayers = new Map();
  let bgrid = model.get('_building_grid');
  const B = model.get('_buildings');
  const n = B.ids.length;

  // ------------------------------------------------------------------ grids
  let gridLayer = null;
  function gridStyle(p, projected) {
    const active = p.code === model.get('active_grid');
    const status = projected ?? p.status;
    return {
      color: active ? ACTIVE_COLOUR : (p.violations.length ? '#c00000' : '#334e68'),
      weight: active ? 4 : (p.locked ? 3 : 1),
      dashArray: p.locked ? '2 5' : (p.violations.length && !active ? '6 3' : null),
      fillColor: STATUS_FILL[status] || '#999',
      fillOpacity: projected ? 0.55 : 0.25,
    };
  }
  function drawGrids() {
    const data = model.get('_grids');
    if (gridLayer) map.removeLayer(gridLayer);
    gridProps = new Map();
    gridLayers = new Map();
    gridLayer = L.geoJSON(data, {
      style: (f) => gridStyle(f.properties),
      onEachFeature: (f, l) => {
        gridProps.set(f.properties.code, f.properties);
        gridLayers.set(f.properties.code, l);
        l.bindTooltip(() => {
          const p = f.properties;
          return esc(p.code.slice(-6)) + ' · ' + p.households + ' (' + p.min + '–' + p.max + ')' +
            (p.locked ? ' · locked' : '') + (p.violations.length ? ' · ' + esc(p.violations.join(', ')) : '');
        }, { sticky: true });
        l.on('click', () => { if (tool === 'grid') setActive(f.properties.code); });
      },
    }).addTo(map);
    gridLayer.bringToBack();
    fillSelect();
  }

  // -------------------------------------------------------------- buildings
  const bLayers = new Array(n);
  const bGroup = L.featureGroup().addTo(map);
  for (let i = 0; i < n; i++) {
    const fp = B.footprints ? B.footprints[i] : null;
    const layer = fp
      ? L.geoJSON({ type: 'Feature', geometry: fp, properties: {} }, { bubblingMouseEvents: false })
      : L.circleMarker([B.y[i], B.x[i]], { radius: 3, bubblingMouseEvents: false });
    layer.on('click', () => {
      if (tool === 'click') { stroke = new Set(lockedOut([i])); finishStroke(); }
      else if (tool === 'grid' && bgrid[i]) setActive(bgrid[i]);
    });
    layer.bindTooltip(() => esc(B.ids[i]) + ' · ' + B.households[i] + ' hh · ' + esc((bgrid[i] || '').slice(-6)),
      { sticky: true });
    bLayers[i] = layer;
    bGroup.addLayer(layer);
  }
  function buildingStyle(i) {
    const code = bgrid[i];
    const sel = stroke.has(i);
    return {
      color: sel ? '#000' : '#333',
      weight: sel ? 1.5 : 0.4,
      fillColor: sel ? STROKE_COLOUR : hashColour(code || '-'),
      fillOpacity: code === model.get('active_grid') ? 0.95 : 0.7,
    };
  }
  function styleBuildings(only) {
    const idx = only || bLayers.keys();
    for (const i of idx) bLayers[i].setStyle(buildingStyle(i));
  }
  // ------------------------------------------------------------ the stroke
  function candidates(test) {
    const active = model.get('active_grid');
    const out = [];
    for (let i = 0; i < n; i++) {
      if (bgrid[i] === active) continue;
      if (test(B.x[i], B.y[i])) out.push(i);
    }
    return out;
  }
  function lockedOut(ids) {
    return ids.filter((i) => !(gridProps.get(bgrid[i]) || {}).locked);
  }
  function brushAt(latlng) {
    const dy = radius / 111320;
    const dx = radius / (111320 * Math.cos((latlng.lat * Math.PI) / 180));
    const hit = candidates((x, y) => Math.abs(x - latlng.lng) <= dx && Math.abs(y - latlng.lat) <= dy &&
      map.distance(latlng, [y, x]) <= radius);
    const before = stroke.size;
    for (const i of lockedOut(hit)) stroke.add(i);
    if (stroke.size !== before) { styleBuildings(hit.filter((i) => stroke.has(i))); preview(); }
  }
  function preview() {
    const box = $('.gm-preview');
    const active = model.get('active_grid');
    if (!stroke.size || !gridProps.has(active)) { box.hidden = true; restyleGrids(null); return; }
    const delta = new Map([[active, 0]]);
    for (const i of stroke) {
      const hh = B.households[i];
      delta.set(active, delta.get(active) + hh);
      delta.set(bgrid[i], (delta.get(bgrid[i]) || 0) - hh);
    }
    const projected = new Map();
    const rows = [];
    for (const [code, d] of delta) {
      const p = gridProps.get(code);
      if (!p) continue;
      const hh = p.households + d;
      const st = statusOf(hh, p.min, p.max, p.status === 'special');
      projected.set(code, st);
      rows.push('<div class="gm-st-' + st + '">' + esc(code.slice(-6)) + ': ' + p.households + ' → <b>' + hh +
        '</b> (' + p.min + '–' + p.max + ')' + (st === 'ok' || st === 'special' ? '' : ' ⚠ ' + st) + '</div>');
    }
    box.innerHTML = '<div>' + stroke.size + ' buildings → ' + esc(active.slice(-6)) + '</div>' + rows.join('');
    box.hidden = false;
    restyleGrids(projected);
  }
  function restyleGrids(projected) {
    for (const [code, l] of gridLayers) {
      l.setStyle(gridStyle(gridProps.get(code), projected ? projected.get(code) : undefined));
    }
  }
  function clearStroke() {
    const was = Array.from(stroke);
    stroke = new Set();
    styleBuildings(was);
    if (strokeShape) { map.removeLayer(strokeShape); strokeShape = null; }
    preview();
  }
  function finishStroke() {
    const active = model.get('active_grid');
    const ids = Array.from(stroke).filter((i) => bgrid[i] !== active).map((i) => B.ids[i]);
    if (!active) setMessage('pick the active grid first (grid tool)');
    else if ((gridProps.get(active) || {}).locked) setMessage('the active grid ' + active.slice(-6) + ' is locked');
    else if (!ids.length) setMessage('nothing to move');
    else {
      setMessage('moving ' + ids.length + ' buildings into ' + active.slice(-6) + ' …');
      styleBuildings(Array.from(stroke));
      preview();
      model.send({ type: 'assign', ids, to_grid: active });
      return; // the stroke stays highlighted until Python answers
    }
    clearStroke();
  }

  // pointer events: lasso and brush paint with mouse, pen or finger
  function latlngOf(ev) { return map.mouseEventToLatLng(ev); }
  mapEl.addEventListener('pointerdown', (ev) => {
    if (tool !== 'lasso' && tool !== 'brush') return;
    if (ev.button !== 0 || ev.target.closest('.leaflet-control')) return;
    ev.preventDefault();
    painting = true;
    mapEl.setPointerCapture(ev.pointerId);
    clearStroke();
    const ll = latlngOf(ev);
    if (tool === 'lasso') {
      lasso = [ll];
      strokeShape = L.polyline(lasso, { color: '#000', weight: 2, dashArray: '4 4', interactive: false }).addTo(map);
    } else {
      strokeShape = L.circle(ll, { radius, color: '#000', weight: 1, fillColor: STROKE_COLOUR,
        fillOpacity: 0.2, interactive: false }).addTo(map);
      brushAt(ll);
    }
  });
  mapEl.addEventListener('pointermove', (ev) => {
    if (!painting) return;
    const ll = latlngOf(ev);
    if (tool === 'lasso') {
      lasso.push(ll);
      strokeShape.setLatLngs(lasso);
    } else {
      strokeShape.setLatLng(ll);
      brushAt(ll);
    }
  });
  function endPaint(ev) {
    if (!painting) return;
    painting = false;
    try { mapEl.releasePointerCapture(ev.pointerId); } catch (e) { /* released */ }
    if (tool === 'lasso' && lasso.length > 2) {
      const ring = lasso.map((p) => [p.lng, p.lat]);
      for (const i of lockedOut(candidates((x, y) => inRing(x, y, ring)))) stroke.add(i);
    }
    lasso = [];
    finishStroke();
  }
  mapEl.addEventListener('pointerup', endPaint);
  mapEl.addEventListener('pointercancel', endPaint);

  // --------------------------------------------------------------- controls
  function setTool(t) {
    tool = t;
    el.querySelectorAll('[data-tool]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.tool === t)));
    const painting_ = t === 'lasso' || t === 'brush';
    if (painting_) map.dragging.disable(); else map.dragging.enable();
    mapEl.classList.toggle('gm-painting', painting_);
  }
  el.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => setTool(b.dataset.tool)));
  const radiusEl = $('.gm-radius');
  radiusEl.addEventListener('input', () => {
    radius = Number(radiusEl.value);
    $('.gm-radius-v').textContent = radius + ' m';
  });
  el.querySelectorAll('[data-act]').forEach((b) => b.addEventListener('click', () => {
    const act = b.dataset.act;
    setMessage(act + ' …');
    model.send(act === 'save' ? { type: 'save', path: $('.gm-path').value } : { type: act });
  }));
  const reasonEl = $('.gm-reason');
  reasonEl.value = model.get('reason');
  reasonEl.addEventListener('change', () => { model.set('reason', reasonEl.value); model.save_changes(); });
  const pathEl = $('.gm-path');
  pathEl.value = model.get('save_path');
  pathEl.addEventListener('change', () => { model.set('save_path', pathEl.value); model.save_changes(); });
  const selectEl = $('.gm-active');
  function fillSelect() {
    const codes = Array.from(gridProps.keys()).sort();
    const active = model.get('active_grid');
    selectEl.innerHTML = '<option value="">–</option>' + codes.map((c) =>
      '<option value="' + esc(c) + '"' + (c === active ? ' selected' : '') + '>' + esc(c.slice(-6)) + '</option>').join('');
  }
  selectEl.addEventListener('change', () => setActive(selectEl.value));
  function setActive(code) {
    model.set('active_grid', code);
    model.save_changes();
  }
  function setMessage(text) { $('.gm-message').textContent = text; }

  function drawTable() {
    const rows = model.get('_table');
    const changed = new Set(model.get('_changed').map((r) => r.code));
    const active = model.get('active_grid');
    const first = (r) => (changed.has(r.grid_code) ? 0 : r.grid_code === active ? 1 : 2);
    rows.sort((a, b) => first(a) - first(b) || (a.grid_code < b.grid_code ? -1 : 1));
    $('.gm-table tbody').innerHTML = rows.map((r) => {
      const cls = ['gm-st-' + r.status];
      if (changed.has(r.grid_code)) cls.push('gm-changed');
      if (r.grid_code === active) cls.push('gm-active-row');
      const marks = (r.locked ? '🔒 ' : '') + esc(r.violations.join(', '));
      return '<tr class="' + cls.join(' ') + '" data-code="' + esc(r.grid_code) + '"><td>' + esc(r.grid_code.slice(-6)) +
        '</td><td>' + r.households + '</td><td>' + (r.status === 'special' ? '–' : r.min + '–' + r.max) +
        '</td><td>' + marks + '</td></tr>';
    }).join('');
  }
  $('.gm-table tbody').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-code]');
    if (tr) setActive(tr.dataset.code);
  });
  function syncButtons() {
    el.querySelector('[data-act="undo"]').disabled = !model.get('can_undo');
    el.querySelector('[data-act="redo"]').disabled = !model.get('can_redo');
  }

  // ------------------------------------------------------- model -> view
  model.on('change:_grids', () => { drawGrids(); clearStroke(); });
  model.on('change:_building_grid', () => { bgrid = model.get('_building_grid'); stroke = new Set(); styleBuildings(); clearStroke(); });
  model.on('change:_table', drawTable);
  model.on('change:_changed', drawTable);
  model.on('change:active_grid', () => { restyleGrids(null); styleBuildings(); fillSelect(); drawTable(); preview(); });
  model.on('change:message', () => setMessage(model.get('message')));
  model.on('change:can_undo', syncButtons);
  model.on('change:can_redo', syncButtons);

  drawGrids();
  styleBuildings();
  drawTable();
  syncButtons();
  setTool('brush');
  setMessage(model.get('message'));
  // the notebook may attach the output only after render: fit the grids once the map
  // has a size, and keep Leaflet told about later resizes
  let fitted = false;
  function fit() {
    const bounds = gridLayer.getBounds();
    if (fitted || !mapEl.clientWidth || !mapEl.clientHeight || !bounds.isValid()) return;
    map.invalidateSize();
    map.fitBounds(bounds, { animate: false });
    fitted = true;
  }
  map.setView([0, 0], 2); // a view until the first fit
  fit();
  const ro = new ResizeObserver(() => { map.invalidateSize(); fit(); });
  ro.observe(mapEl);
  return () => { ro.disconnect(); map.remove(); };
}

export default { render };
