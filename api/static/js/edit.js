/* gridmap map page: edit mode for planners (issue 13).
 *
 * A planner or admin with a token redraws grids on the page:
 *   - the "Edit" button (top left of the map) opens the edit panel;
 *   - the grid tool picks the active grid (click a grid); click, brush (drag a circle)
 *     or box (drag a rectangle) select buildings; "Assign" moves them into the active
 *     grid with POST /api/plans/{id}/edits {version, op, args, reason};
 *   - while selecting, the panel shows what the totals would become; after the edit it
 *     shows the changed grids' households against their range and every rule they break;
 *   - undo / redo are edits too; the version history lists every version with its
 *     reason; two versions can be compared side by side (two synced maps);
 *   - a stale version (somebody else saved meanwhile) answers 409: the panel says so
 *     and offers to reload.
 * The token is asked once and kept with the page's other writes (localStorage
 * "gridmap.token", shared with the report form and the dispatcher): writes need the
 * Authorization header; the page's sign-in cookie is HttpOnly and only good for reads.
 * Everything comes from this server: it works offline.
 * window.gridmapEdit exposes the state for tests and the browser console.
 */
(function () {
  'use strict';

  const CFG = JSON.parse(document.getElementById('gridmap-config').textContent);
  const API = CFG.api;
  const TOKEN_KEY = 'gridmap.token'; // shared with gridmap.js and dispatch.js
  const BUILDING_MIN_ZOOM = 15;
  const STATUS_FILL = { low: '#6baed6', ok: '#74c476', high: '#fb6a4a', special: '#bdbdbd' };
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
    '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173'];
  const ACTIVE = '#ff7f00';
  const SELECTED = '#ffd400';

  const T = {
    zh: {
      edit: '编辑', close_edit: '退出编辑', title: '编辑网格', token: '令牌（规划员或管理员）',
      sign_in: '确定', token_note: '修改需要规划员或管理员的令牌。',
      tool_grid: '选网格', tool_click: '点选', tool_brush: '刷选', tool_box: '框选',
      active: '当前网格', none: '（点击网格选择）', selected: '已选 {n} 栋，{hh} 户',
      assign: '划入当前网格', clear: '清除选择', undo: '撤销', redo: '重做',
      reason: '原因（记入历史）', totals: '变化的网格', preview: '划入后', range: '范围',
      history: '版本历史', compare: '对比', compare_title: '版本对比', close: '关闭',
      reload: '重新加载', conflict: '冲突：此方案已被他人修改（现为第 {current} 版，您编辑的是第 {yours} 版）。您的修改未保存。请重新加载后再做一次。',
      saved: '已保存为第 {v} 版', moving: '正在保存…', zoom_in: '放大后可选择楼栋',
      nothing: '没有可划入的楼栋', pick_active: '请先选择当前网格', locked: '网格 {code} 已锁定',
      households: '户', buildings: '栋', version: '版本', removed: '撤销的网格', added: '新网格',
      bad_token: '令牌无效或无权修改：{message}', failed: '失败：{message}', ok: '符合',
      changed_only: '户数有变化的网格以橙色边框标出',
      truncated: '此范围内楼栋过多，只显示 {shown} / {total} 栋：请放大后再选择',
    },
    en: {
      edit: 'Edit', close_edit: 'Leave edit', title: 'Edit grids', token: 'Token (planner or admin)',
      sign_in: 'OK', token_note: 'Edits need a planner or admin token.',
      tool_grid: 'Grid', tool_click: 'Click', tool_brush: 'Brush', tool_box: 'Box',
      active: 'Active grid', none: '(click a grid)', selected: '{n} buildings selected, {hh} households',
      assign: 'Assign to active grid', clear: 'Clear', undo: 'Undo', redo: 'Redo',
      reason: 'Reason (kept in the history)', totals: 'Changed grids', preview: 'After assigning',
      range: 'range', history: 'Version history', compare: 'Compare', compare_title: 'Compare versions',
      close: 'Close', reload: 'Reload',
      conflict: 'Conflict: somebody changed this plan (it is at version {current}, you edited version {yours}). Your change was not saved. Reload and make it again.',
      saved: 'Saved as version {v}', moving: 'Saving…', zoom_in: 'Zoom in to select buildings',
      nothing: 'No building to assign', pick_active: 'Pick the active grid first', locked: 'Grid {code} is locked',
      households: 'households', buildings: 'buildings', version: 'version', removed: 'Removed grids',
      added: 'New grids', bad_token: 'Token refused: {message}', failed: 'Failed: {message}', ok: 'ok',
      changed_only: 'grids whose households changed have an orange outline',
      truncated: 'Too many buildings here: {shown} of {total} shown; zoom in to select',
    },
  }[CFG.lang === 'en' ? 'en' : 'zh'];

  function esc(v) {
    return String(v ?? '').replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    }[c]));
  }
  function fmt(t, vars) { return String(t).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m)); }
  function hashColour(code) {
    let h = 0;
    for (let i = 0; i < code.length; i++) h = (h * 31 + code.charCodeAt(i)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  function statusOf(hh, min, max, kind) {
    if (kind === 'special') return 'special';
    if (hh < min) return 'low';
    if (hh > max) return 'high';
    return 'ok';
  }

  const st = (window.gridmapEdit = {
    on: false,
    version: CFG.plan ? CFG.plan.version : null,
    startVersion: CFG.plan ? CFG.plan.version : null,
    active: null,
    tool: 'grid',
    radius: 25,
    selected: new Map(), // building_id -> {households, grid}
    grids: new Map(), // grid_code -> properties
    last: null, // last answer of POST /edits
    saved: null, // version of the last edit once the map shows it
    conflict: null,
    busy: false,
    versions: [],
    compare: null,
  });

  // ------------------------------------------------------------ API calls
  async function call(method, url, body) {
    const headers = { Accept: 'application/json' };
    const token = localStorage.getItem(TOKEN_KEY);
    if (token && method !== 'GET') headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(url, {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { /* empty */ }
    if (!res.ok) {
      const err = new Error((data && data.error && data.error.message) || res.status + ' ' + res.statusText);
      err.status = res.status;
      err.body = (data && data.error) || {};
      throw err;
    }
    return data;
  }
  const planUrl = () => API + '/plans/' + CFG.plan.id;

  // ------------------------------------------------------------- start up
  function whenReady(fn) {
    const gm = window.gridmap;
    if (gm && gm.ready && gm.map) fn(gm);
    else setTimeout(() => whenReady(fn), 100);
  }
  if (!CFG.plan) return;
  whenReady(setup);

  function setup(gm) {
    const map = gm.map;
    const main = document.getElementById('main');
    let gridLayer = null;
    const bLayer = L.geoJSON(null, {
      style: (f) => buildingStyle(f.properties),
      onEachFeature: (f, l) => {
        l.on('click', (e) => {
          L.DomEvent.stopPropagation(e);
          if (st.tool === 'click') toggle(f.properties);
          else if (st.tool === 'grid' && f.properties.grid_code) setActive(f.properties.grid_code);
        });
      },
    });
    bLayer.bindTooltip((l) => esc(l.feature.properties.building_id) + ' · ' + esc(l.feature.properties.households) +
      ' ' + esc(T.households) + ' · ' + esc(String(l.feature.properties.grid_code || '').slice(-6)), { sticky: true });
    let bSeq = 0;
    let hidden = [];
    const labels = L.layerGroup();
    let strokeShape = null;
    let painting = null;

    // toggle button: a map control, so it stays next to the zoom buttons at any width
    gm.mapButton('edit-toggle', T.edit, () => (st.on ? leave() : enter()));

    const panel = document.createElement('aside');
    panel.id = 'edit-panel';
    panel.hidden = true;
    panel.innerHTML = `
      <div class="edit-head"><h2>${esc(T.title)}</h2><span id="edit-version"></span></div>
      <form id="edit-login" hidden>
        <p>${esc(T.token_note)}</p>
        <input id="edit-token" type="password" autocomplete="current-password" aria-label="${esc(T.token)}" placeholder="${esc(T.token)}">
        <button type="submit">${esc(T.sign_in)}</button>
      </form>
      <div id="edit-conflict" class="edit-conflict" role="alert" hidden></div>
      <div class="edit-tools" role="group">
        <button type="button" data-tool="grid">${esc(T.tool_grid)}</button>
        <button type="button" data-tool="click">${esc(T.tool_click)}</button>
        <button type="button" data-tool="brush">${esc(T.tool_brush)}</button>
        <button type="button" data-tool="box">${esc(T.tool_box)}</button>
        <input id="edit-radius" type="range" min="5" max="150" step="5" value="25" aria-label="radius">
      </div>
      <div class="edit-row">${esc(T.active)}: <b id="edit-active">${esc(T.none)}</b></div>
      <div class="edit-row" id="edit-selected"></div>
      <div id="edit-preview"></div>
      <input id="edit-reason" type="text" maxlength="500" placeholder="${esc(T.reason)}" aria-label="${esc(T.reason)}">
      <div class="edit-actions">
        <button type="button" id="edit-assign" class="primary">${esc(T.assign)}</button>
        <button type="button" id="edit-clear">${esc(T.clear)}</button>
        <button type="button" id="edit-undo">${esc(T.undo)}</button>
        <button type="button" id="edit-redo">${esc(T.redo)}</button>
      </div>
      <div id="edit-message" role="status"></div>
      <div id="edit-totals"></div>
      <details id="edit-history-box"><summary>${esc(T.history)}</summary>
        <div class="edit-compare-row"><select id="edit-cmp-a" aria-label="A"></select>
        <select id="edit-cmp-b" aria-label="B"></select>
        <button type="button" id="edit-compare">${esc(T.compare)}</button></div>
        <ol id="edit-history" reversed></ol>
      </details>`;
    main.appendChild(panel);
    const $ = (id) => document.getElementById(id);
    L.DomEvent.disableClickPropagation(panel);
    L.DomEvent.disableScrollPropagation(panel);

    // ------------------------------------------------------------ enter/leave
    async function enter() {
      st.on = true;
      panel.hidden = false;
      document.body.classList.add('editing');
      $('edit-toggle').textContent = T.close_edit;
      $('edit-toggle').setAttribute('aria-pressed', 'true');
      $('edit-login').hidden = !!localStorage.getItem(TOKEN_KEY);
      // the page's grids and labels show the version it loaded: edit mode draws its own
      hidden = ['grids', 'labels'].map((id) => gm.layers[id]).filter((l) => l && map.hasLayer(l));
      hidden.forEach((l) => map.removeLayer(l));
      labels.addTo(map);
      map.invalidateSize();
      setTool(st.tool);
      try {
        await reload();
      } catch (e) {
        message(fmt(T.failed, { message: e.message }), true);
      }
      map.on('moveend', loadBuildings);
      map.on('moveend', placeLabels);
    }
    function leave() {
      st.on = false;
      panel.hidden = true;
      document.body.classList.remove('editing');
      $('edit-toggle').textContent = T.edit;
      $('edit-toggle').setAttribute('aria-pressed', 'false');
      map.off('moveend', loadBuildings);
      map.off('moveend', placeLabels);
      setTool('grid');
      if (gridLayer) map.removeLayer(gridLayer);
      map.removeLayer(bLayer);
      map.removeLayer(labels);
      if (strokeShape) { map.removeLayer(strokeShape); strokeShape = null; }
      map.invalidateSize();
      // the rest of the page shows the version it loaded: reload it when edits were made
      if (st.version !== st.startVersion) window.location.reload();
      else hidden.forEach((l) => l.addTo(map));
    }

    // the current version, its grids, the buildings in view and the history
    async function reload() {
      const plan = await call('GET', planUrl());
      st.version = plan.version;
      st.conflict = null;
      $('edit-conflict').hidden = true;
      await Promise.all([loadGrids(), loadBuildings(), loadVersions()]);
      revalidateSelection();
      render();
    }
    async function loadGrids() {
      const data = await call('GET', API + '/grids?plan=' + CFG.plan.id);
      st.grids = new Map(data.features.map((f) => [f.properties.grid_code, f.properties]));
      if (st.active && !st.grids.has(st.active)) st.active = null;
      if (gridLayer) map.removeLayer(gridLayer);
      gridLayer = L.geoJSON(data, {
        style: (f) => gridStyle(f.properties),
        onEachFeature: (f, l) => {
          l.on('click', () => { if (st.tool === 'grid') setActive(f.properties.grid_code); });
        },
      });
      gridLayer.bindTooltip((l) => {
        const p = l.feature.properties;
        return esc(p.grid_code.slice(-6)) + ' · ' + esc(p.households) + ' ' + esc(T.households) +
          (p.kind === 'special' ? '' : ' (' + p.range_min + '–' + p.range_max + ')');
      }, { sticky: true });
      if (st.on) { gridLayer.addTo(map); gridLayer.bringToBack(); }
      placeLabels();
    }
    // labels: code ending and households of the grids big enough on screen, biggest first
    function placeLabels() {
      labels.clearLayers();
      if (!st.on || !gridLayer) return;
      const view = map.getBounds();
      const cand = [];
      gridLayer.eachLayer((l) => {
        const b = l.getBounds();
        if (!view.intersects(b)) return;
        const nw = map.latLngToContainerPoint(b.getNorthWest());
        const se = map.latLngToContainerPoint(b.getSouthEast());
        if (se.x - nw.x >= 60 && se.y - nw.y >= 36) cand.push([(se.x - nw.x) * (se.y - nw.y), l]);
      });
      cand.sort((x, y) => y[0] - x[0]);
      for (const [, l] of cand.slice(0, 300)) {
        const p = l.feature.properties;
        L.marker(l.getBounds().getCenter(), {
          interactive: false,
          keyboard: false,
          icon: L.divIcon({ className: 'edit-label st-' + statusOf(p.households, p.range_min, p.range_max, p.kind),
            html: '<b>' + esc(p.grid_code.slice(-3)) + '</b><br>' + esc(p.households), iconSize: [44, 30] }),
        }).addTo(labels);
      }
    }
    async function loadBuildings() {
      if (!st.on) return;
      if (!map.hasLayer(bLayer)) bLayer.addTo(map);
      const seq = ++bSeq;
      if (map.getZoom() < BUILDING_MIN_ZOOM) {
        bLayer.clearLayers();
        message(T.zoom_in);
        return;
      }
      const b = map.getBounds();
      const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(',');
      const data = await call('GET', API + '/buildings?plan=' + CFG.plan.id + '&limit=4000&bbox=' + bbox);
      if (seq !== bSeq) return;
      bLayer.clearLayers();
      bLayer.addData(data);
      bLayer.bringToFront();
      if (data.truncated) message(fmt(T.truncated, { shown: data.features.length, total: data.total }), true);
    }
    async function loadVersions() {
      st.versions = await call('GET', planUrl() + '/versions');
      const list = st.versions.slice().sort((a, b) => b.version - a.version);
      $('edit-history').innerHTML = list.map((v) => '<li value="' + esc(v.version) + '"><b>' + esc(T.version) + ' ' +
        esc(v.version) + '</b> · ' + esc(v.op || '') + ' · ' + esc(v.actor || '') + ' · <time>' +
        esc(String(v.at || '').replace('T', ' ').slice(0, 19)) + '</time>' +
        (v.reason ? '<div class="edit-reason">' + esc(v.reason) + '</div>' : '') + '</li>').join('');
      const opts = list.map((v) => '<option value="' + esc(v.version) + '">' + esc(T.version) + ' ' + esc(v.version) + '</option>').join('');
      $('edit-cmp-a').innerHTML = opts;
      $('edit-cmp-b').innerHTML = opts;
      if (list.length > 1) $('edit-cmp-a').value = String(list[1].version);
      if (list.length) $('edit-cmp-b').value = String(list[0].version);
    }

    // ---------------------------------------------------------------- styles
    function gridStyle(p, projected) {
      const active = p.grid_code === st.active;
      const flagged = String(p.flags || '').length > 0;
      return {
        color: active ? ACTIVE : (flagged ? '#c00000' : '#334e68'),
        weight: active ? 4 : 1,
        fillColor: STATUS_FILL[projected || statusOf(p.households, p.range_min, p.range_max, p.kind)],
        fillOpacity: projected ? 0.55 : 0.3,
      };
    }
    function buildingStyle(p) {
      const sel = st.selected.has(p.building_id);
      return {
        color: sel ? '#000' : '#333',
        weight: sel ? 1.5 : 0.5,
        fillColor: sel ? SELECTED : hashColour(String(p.grid_code || '-')),
        fillOpacity: p.grid_code === st.active ? 0.95 : 0.75,
      };
    }
    function restyle(projected) {
      if (gridLayer) gridLayer.eachLayer((l) => l.setStyle(gridStyle(l.feature.properties, projected && projected.get(l.feature.properties.grid_code))));
      bLayer.eachLayer((l) => l.setStyle(buildingStyle(l.feature.properties)));
    }

    // ------------------------------------------------------------- selection
    function selectable(p) {
      return p.grid_code !== st.active && !(st.grids.get(p.grid_code) || {}).locked;
    }
    function toggle(p) {
      if (st.selected.has(p.building_id)) st.selected.delete(p.building_id);
      else if (selectable(p)) st.selected.set(p.building_id, { households: p.households || 0, grid: p.grid_code });
      render();
    }
    function selectWhere(test) {
      let added = 0;
      bLayer.eachLayer((l) => {
        const p = l.feature.properties;
        if (!st.selected.has(p.building_id) && selectable(p) && test(l.getBounds().getCenter())) {
          st.selected.set(p.building_id, { households: p.households || 0, grid: p.grid_code });
          added += 1;
        }
      });
      if (added) render();
    }
    function revalidateSelection() {
      // after a reload the buildings may sit in other grids now
      const now = new Map();
      bLayer.eachLayer((l) => { now.set(l.feature.properties.building_id, l.feature.properties); });
      for (const [id, s] of st.selected) {
        const p = now.get(id);
        if (!p || !selectable(p)) st.selected.delete(id);
        else s.grid = p.grid_code;
      }
    }
    function setActive(code) {
      st.active = code;
      for (const [id, s] of st.selected) if (s.grid === code) st.selected.delete(id);
      render();
    }
    function setTool(t) {
      st.tool = t;
      panel.querySelectorAll('[data-tool]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.tool === t)));
      const paint = st.on && (t === 'brush' || t === 'box');
      if (paint) map.dragging.disable(); else map.dragging.enable();
      map.getContainer().classList.toggle('edit-painting', paint);
    }
    panel.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => setTool(b.dataset.tool)));
    $('edit-radius').addEventListener('input', (e) => { st.radius = Number(e.target.value); });

    // brush and box: pointer events, so mouse, pen and fingers all work
    const mapEl = map.getContainer();
    mapEl.addEventListener('pointerdown', (ev) => {
      if (!st.on || (st.tool !== 'brush' && st.tool !== 'box')) return;
      if (ev.button !== 0 || ev.target.closest('.leaflet-control')) return;
      ev.preventDefault();
      mapEl.setPointerCapture(ev.pointerId);
      const ll = map.mouseEventToLatLng(ev);
      painting = { start: ll };
      if (st.tool === 'brush') {
        strokeShape = L.circle(ll, { radius: st.radius, color: '#000', weight: 1, fillColor: SELECTED, fillOpacity: 0.2, interactive: false }).addTo(map);
        brush(ll);
      } else {
        strokeShape = L.rectangle(L.latLngBounds(ll, ll), { color: '#000', weight: 1, dashArray: '4 4', fillOpacity: 0.1, interactive: false }).addTo(map);
      }
    });
    mapEl.addEventListener('pointermove', (ev) => {
      if (!painting) return;
      const ll = map.mouseEventToLatLng(ev);
      if (st.tool === 'brush') { strokeShape.setLatLng(ll); brush(ll); } else strokeShape.setBounds(L.latLngBounds(painting.start, ll));
    });
    function endPaint(ev) {
      if (!painting) return;
      try { mapEl.releasePointerCapture(ev.pointerId); } catch (e) { /* released */ }
      if (st.tool === 'box') {
        const box = strokeShape.getBounds();
        selectWhere((c) => box.contains(c));
      }
      painting = null;
      if (strokeShape) { map.removeLayer(strokeShape); strokeShape = null; }
    }
    mapEl.addEventListener('pointerup', endPaint);
    mapEl.addEventListener('pointercancel', endPaint);
    function brush(ll) { selectWhere((c) => map.distance(ll, c) <= st.radius); }

    // ---------------------------------------------------------------- panel
    function message(text, isError) {
      const el = $('edit-message');
      el.textContent = text || '';
      el.className = isError ? 'error' : '';
    }
    function projection() {
      if (!st.selected.size || !st.active || !st.grids.has(st.active)) return null;
      const delta = new Map([[st.active, 0]]);
      for (const s of st.selected.values()) {
        delta.set(st.active, delta.get(st.active) + s.households);
        delta.set(s.grid, (delta.get(s.grid) || 0) - s.households);
      }
      return delta;
    }
    function totalsRow(code, hh, min, max, kind, violations, details, before, inRange) {
      const status = inRange === true ? 'ok' : statusOf(hh, min, max, kind);
      const v = violations || [];
      const ok = (status === 'ok' || status === 'special') && !v.length;
      return '<tr class="st-' + status + '" data-code="' + esc(code) + '"><td>' + esc(code.slice(-6)) + '</td><td>' +
        (before !== undefined ? esc(before) + ' → ' : '') + '<b class="hh">' + esc(hh) + '</b></td><td>' +
        (kind === 'special' ? '–' : esc(min) + '–' + esc(max)) + '</td><td class="viol">' +
        (ok ? '✓ ' + esc(T.ok) : '⚠ ' + esc((details && details.length ? details : (v.length ? v : [status])).join('; '))) + '</td></tr>';
    }
    function render() {
      const active = st.grids.get(st.active);
      $('edit-version').textContent = st.version !== null ? T.version + ' ' + st.version : '';
      $('edit-active').textContent = active
        ? st.active.slice(-6) + ' · ' + active.households + ' ' + T.households + (active.kind === 'special' ? '' : ' (' + active.range_min + '–' + active.range_max + ')')
        : T.none;
      let hh = 0;
      for (const s of st.selected.values()) hh += s.households;
      $('edit-selected').textContent = fmt(T.selected, { n: st.selected.size, hh });
      const delta = projection();
      const projected = new Map();
      if (delta) {
        const rowsHtml = [];
        for (const [code, d] of delta) {
          const p = st.grids.get(code);
          if (!p) continue;
          projected.set(code, statusOf(p.households + d, p.range_min, p.range_max, p.kind));
          rowsHtml.push(totalsRow(code, p.households + d, p.range_min, p.range_max, p.kind, [], null, p.households));
        }
        $('edit-preview').innerHTML = '<h3>' + esc(T.preview) + '</h3><table class="edit-table">' + rowsHtml.join('') + '</table>';
      } else {
        $('edit-preview').innerHTML = '';
      }
      const last = st.last;
      if (last) {
        let html = '<h3>' + esc(T.totals) + ' (' + esc(T.version) + ' ' + esc(last.version) + ')</h3><table class="edit-table">' +
          last.changed.map((c) => totalsRow(c.code, c.households, c.min, c.max, c.kind, c.violations, c.details, undefined, c.in_range)).join('') + '</table>';
        if (last.removed && last.removed.length) html += '<div>' + esc(T.removed) + ': ' + last.removed.map(esc).join(', ') + '</div>';
        if (last.added && last.added.length) html += '<div>' + esc(T.added) + ': ' + last.added.map(esc).join(', ') + '</div>';
        $('edit-totals').innerHTML = html;
      } else {
        $('edit-totals').innerHTML = '';
      }
      $('edit-assign').disabled = st.busy || !st.selected.size || !active;
      $('edit-undo').disabled = st.busy;
      $('edit-redo').disabled = st.busy;
      restyle(delta ? projected : null);
    }

    // ----------------------------------------------------------------- edits
    async function edit(op, args) {
      if (st.busy) return null;
      st.busy = true;
      render();
      message(T.moving);
      try {
        const res = await call('POST', planUrl() + '/edits', {
          version: st.version, op, args, reason: $('edit-reason').value || '',
        });
        st.last = res;
        st.version = res.version;
        st.selected.clear();
        render(); // the totals of the changed grids at once
        await Promise.all([loadGrids(), loadBuildings(), loadVersions()]);
        st.busy = false;
        st.saved = res.version;
        message(fmt(T.saved, { v: res.version }));
        render();
        return res;
      } catch (e) {
        st.busy = false;
        if (e.status === 409) showConflict(e.body);
        else if (e.status === 401 || e.status === 403) {
          message(fmt(T.bad_token, { message: e.message }), true);
          $('edit-login').hidden = false;
        } else message(fmt(T.failed, { message: e.message }), true);
        render();
        return null;
      }
    }
    function showConflict(body) {
      st.conflict = body;
      const box = $('edit-conflict');
      box.innerHTML = esc(fmt(T.conflict, { current: body.current_version ?? '?', yours: body.your_version ?? st.version })) +
        ' <button type="button" id="edit-reload">' + esc(T.reload) + '</button>';
      box.hidden = false;
      message('');
      $('edit-reload').addEventListener('click', () => {
        reload().catch((e) => message(fmt(T.failed, { message: e.message }), true));
      });
    }
    $('edit-assign').addEventListener('click', () => {
      if (!st.active) { message(T.pick_active, true); return; }
      if ((st.grids.get(st.active) || {}).locked) { message(fmt(T.locked, { code: st.active.slice(-6) }), true); return; }
      const ids = Array.from(st.selected.keys());
      if (!ids.length) { message(T.nothing, true); return; }
      edit('move_buildings', { to_grid: st.active, ids });
    });
    $('edit-clear').addEventListener('click', () => { st.selected.clear(); render(); });
    $('edit-undo').addEventListener('click', () => edit('undo', {}));
    $('edit-redo').addEventListener('click', () => edit('redo', {}));
    $('edit-login').addEventListener('submit', (e) => {
      e.preventDefault();
      const token = $('edit-token').value.trim();
      if (!token) return;
      localStorage.setItem(TOKEN_KEY, token);
      $('edit-token').value = '';
      $('edit-login').hidden = true;
      message('');
    });

    // ------------------------------------------------- compare two versions
    async function compare(va, vb) {
      closeCompare();
      const [a, b] = await Promise.all([va, vb].map((v) => call('GET', planUrl() + '/versions/' + v + '/grids')));
      const hhA = new Map(a.features.map((f) => [f.properties.grid_code, f.properties.households]));
      const hhB = new Map(b.features.map((f) => [f.properties.grid_code, f.properties.households]));
      const codes = Array.from(new Set([...hhA.keys(), ...hhB.keys()])).sort();
      const diffs = codes.filter((c) => hhA.get(c) !== hhB.get(c)).map((c) =>
        '<span class="cmp-diff">' + esc(c.slice(-6)) + ': ' + esc(hhA.has(c) ? hhA.get(c) : '–') + ' → ' +
        esc(hhB.has(c) ? hhB.get(c) : '–') + '</span>');
      const box = document.createElement('div');
      box.id = 'edit-compare-view';
      box.innerHTML = '<div class="cmp-head"><b>' + esc(T.compare_title) + '</b> <span class="note">' + esc(T.changed_only) +
        '</span><button type="button" id="edit-compare-close">' + esc(T.close) + '</button>' +
        '<div class="cmp-diffs">' + diffs.join(' ') + '</div></div>' +
        '<div class="cmp-maps"><div class="cmp-side"><div class="cmp-label">' + esc(T.version) + ' ' + esc(va) +
        '</div><div class="cmp-map" id="edit-cmp-map-a"></div></div><div class="cmp-side"><div class="cmp-label">' +
        esc(T.version) + ' ' + esc(vb) + '</div><div class="cmp-map" id="edit-cmp-map-b"></div></div></div>';
      main.appendChild(box);
      L.DomEvent.disableClickPropagation(box);
      $('edit-compare-close').addEventListener('click', closeCompare);
      const maps = [];
      [[a, hhB, 'edit-cmp-map-a'], [b, hhA, 'edit-cmp-map-b']].forEach(([data, other, id]) => {
        const m = L.map(id, { preferCanvas: true, zoomControl: false, attributionControl: false });
        const layer = L.geoJSON(data, {
          style: (f) => {
            const p = f.properties;
            const differs = other.get(p.grid_code) !== p.households;
            return { color: differs ? ACTIVE : '#334e68', weight: differs ? 3 : 1, fillOpacity: 0.35,
              fillColor: STATUS_FILL[statusOf(p.households, p.range_min, p.range_max, p.kind)] };
          },
        }).addTo(m);
        layer.bindTooltip((l) => esc(l.feature.properties.grid_code.slice(-6)) + ' · ' + esc(l.feature.properties.households) +
          ' ' + esc(T.households), { sticky: true });
        m.setView(map.getCenter(), map.getZoom(), { animate: false });
        maps.push({ map: m, layer, grids: data.features.length, changed: data.features.filter((f) => other.get(f.properties.grid_code) !== f.properties.households).length });
      });
      // keep both views on the same place
      let syncing = false;
      maps.forEach((x, i) => x.map.on('move', () => {
        if (syncing) return;
        syncing = true;
        const o = maps[1 - i].map;
        o.setView(x.map.getCenter(), x.map.getZoom(), { animate: false });
        syncing = false;
      }));
      st.compare = { versions: [Number(va), Number(vb)], maps };
    }
    function closeCompare() {
      if (!st.compare) return;
      st.compare.maps.forEach((x) => x.map.remove());
      const box = $('edit-compare-view');
      if (box) box.remove();
      st.compare = null;
    }
    $('edit-compare').addEventListener('click', () => {
      compare($('edit-cmp-a').value, $('edit-cmp-b').value).catch((e) => message(fmt(T.failed, { message: e.message }), true));
    });

    // for tests and the console
    st.enter = enter;
    st.leave = leave;
    st.setActive = setActive;
    st.setTool = setTool;
    st.reload = reload;
    st.compareVersions = (a, b) => compare(a, b);
    st.buildingCount = () => bLayer.getLayers().length;
    st.ready = true;
  }
})();
