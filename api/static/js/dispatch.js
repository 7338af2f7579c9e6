/* gridmap map page: the dispatcher's event list (issue 15, the six-step loop).
 *
 * The "派单 Dispatch" button (top left of the map) opens a list of events by grid and
 * time window (GET /api/events?grid=&start=&end=&status=&order=desc&offset=&limit=).
 * Each row shows the event's step of the loop 上报 → 受理 → 分派 → 处置 → 反馈 → 办结
 * and a button for the next step (PATCH /api/events/{id} {"status", "worker", "note"};
 * assigning asks for the worker). "History" shows the steps taken so far
 * (GET /api/events/{id}). The server checks the order; its message is shown as is.
 * Writes need a token: the one the report form keeps (localStorage "gridmap.token").
 * On a phone the list is a bottom sheet. Colours: the event palette's step ramp.
 * window.gridmapDispatch exposes the state for tests and the browser console.
 */
(function () {
  'use strict';

  const gm = window.gridmap;
  if (!gm || !gm.map) return;
  const CFG = JSON.parse(document.getElementById('gridmap-config').textContent);
  const API = CFG.api;
  const TOKEN_KEY = 'gridmap.token'; // shared with the report form of gridmap.js
  const PAGE = 30;
  const STEP_COLOURS = (CFG.event_palette && CFG.event_palette.steps) || {
    reported: '#dadaeb', accepted: '#bcbddc', assigned: '#9e9ac8', handled: '#807dba',
    feedback: '#6a51a3', closed: '#3f007d', open: '#bdbdbd', cancelled: '#969696', unknown: '#f0f0f0',
  };
  // the next step of each status (the server checks it again)
  const NEXT = {
    reported: 'accepted', open: 'accepted', accepted: 'assigned', assigned: 'handled',
    handled: 'feedback', feedback: 'closed',
  };
  const T = {
    zh: {
      button: '派单', title: '事件派单', grid: '网格', from: '从', to: '到', status: '状态',
      active: '未办结', all: '全部', show: '查询', more: '更多', none: '没有事件',
      history: '经过', worker: '网格员', note: '备注', token: '令牌（网格员或管理员）',
      need_worker: '分派需要填写网格员', need_token: '办理需要令牌', done: '{id}：{status}',
      count: '{n} / {total} 条', close: '关闭', loading: '加载中…', by: '经办',
      steps: {
        reported: '上报', accepted: '受理', assigned: '分派', handled: '处置', feedback: '反馈',
        closed: '办结', open: '办理中', cancelled: '已撤销', unknown: '状态不明',
      },
      go: { accepted: '受理', assigned: '分派', handled: '处置', feedback: '反馈', closed: '办结' },
    },
    en: {
      button: 'Dispatch', title: 'Event dispatch', grid: 'Grid', from: 'From', to: 'To',
      status: 'Status', active: 'Not closed', all: 'All', show: 'Show', more: 'More',
      none: 'No events', history: 'History', worker: 'Worker', note: 'Note',
      token: 'Token (worker or admin)', need_worker: 'Assigning needs a worker',
      need_token: 'Handling events needs a token', done: '{id}: {status}',
      count: '{n} of {total}', close: 'Close', loading: 'Loading…', by: 'by',
      steps: {
        reported: 'reported', accepted: 'accepted', assigned: 'assigned', handled: 'handled',
        feedback: 'feedback', closed: 'closed', open: 'open', cancelled: 'cancelled',
        unknown: 'unknown',
      },
      go: { accepted: 'Accept', assigned: 'Assign', handled: 'Handled', feedback: 'Feed back', closed: 'Close' },
    },
  }[CFG.lang === 'en' ? 'en' : 'zh'];
  const CATEGORIES = (CFG.strings && CFG.strings.categories) || {};
  const map = gm.map;
  const st = { open: false, items: [], total: 0, offset: 0, filters: {}, busy: false, seq: 0 };

  function esc(value) {
    return String(value ?? '').replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    }[c]));
  }
  function fmt(template, vars) {
    return String(template).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
  }
  function when(iso) {
    return iso ? String(iso).slice(0, 16).replace('T', ' ') : '–';
  }
  function badge(status) {
    const dark = ['handled', 'feedback', 'closed'].includes(status);
    return '<span class="dispatch-badge" style="background:' + esc(STEP_COLOURS[status] || '#f0f0f0') +
      ';color:' + (dark ? '#fff' : '#1f2933') + '">' + esc(T.steps[status] || status) + '</span>';
  }
  function headers(json) {
    const h = { Accept: 'application/json' };
    if (json) h['Content-Type'] = 'application/json';
    const t = localStorage.getItem(TOKEN_KEY);
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }
  async function call(url, options) {
    const res = await fetch(url, { credentials: 'same-origin', ...options });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((body.error && body.error.message) || res.status + ' ' + res.statusText);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  // ------------------------------------------------------------------ the panel
  gm.mapButton('dispatch-toggle', T.button, () => (st.open ? close() : open()))
    .setAttribute('aria-pressed', 'false');

  const statusOptions = ['active', 'all', 'reported', 'open', 'accepted', 'assigned', 'handled',
    'feedback', 'closed', 'cancelled'].map((s) => '<option value="' + s + '">' +
    esc(s === 'active' ? T.active : s === 'all' ? T.all : T.steps[s]) + '</option>').join('');
  const panel = document.createElement('aside');
  panel.id = 'dispatch';
  panel.hidden = true;
  panel.setAttribute('aria-label', T.title);
  panel.innerHTML =
    '<div class="dispatch-head"><h2>' + esc(T.title) + '</h2>' +
    '<button type="button" class="close" aria-label="' + esc(T.close) + '">×</button></div>' +
    '<form id="dispatch-filters" autocomplete="off">' +
    '<label>' + esc(T.grid) + '<input name="grid" list="dispatch-grids" maxlength="64" inputmode="numeric"></label>' +
    '<datalist id="dispatch-grids"></datalist>' +
    '<label>' + esc(T.from) + '<input name="from" type="date"></label>' +
    '<label>' + esc(T.to) + '<input name="to" type="date"></label>' +
    '<label>' + esc(T.status) + '<select name="status">' + statusOptions + '</select></label>' +
    '<button type="submit" class="primary">' + esc(T.show) + '</button></form>' +
    '<label class="dispatch-token" hidden>' + esc(T.token) +
    '<input name="token" type="password" autocomplete="off"></label>' +
    '<div class="dispatch-msg" role="status"></div>' +
    '<div class="dispatch-count"></div>' +
    '<ul id="dispatch-list"></ul>' +
    '<button type="button" class="dispatch-more" hidden>' + esc(T.more) + '</button>';
  document.getElementById('main').appendChild(panel);
  const form = panel.querySelector('#dispatch-filters');
  const list = panel.querySelector('#dispatch-list');
  const more = panel.querySelector('.dispatch-more');
  const tokenBox = panel.querySelector('.dispatch-token');
  panel.querySelector('.close').addEventListener('click', close);
  form.addEventListener('submit', (e) => { e.preventDefault(); load(false); });
  more.addEventListener('click', () => load(true));
  tokenBox.querySelector('input').addEventListener('change', (e) => {
    const t = e.target.value.trim();
    if (t) { localStorage.setItem(TOKEN_KEY, t); tokenBox.hidden = true; message(''); }
  });
  L.DomEvent.disableClickPropagation(panel);
  L.DomEvent.disableScrollPropagation(panel);

  function message(text, isError) {
    const m = panel.querySelector('.dispatch-msg');
    m.textContent = text || '';
    m.className = 'dispatch-msg' + (isError ? ' error' : '');
  }

  function open(grid) {
    st.open = true;
    for (const id of ['panel', 'report']) {
      const el = document.getElementById(id);
      if (el) el.hidden = true;
    }
    const codes = gm.gridCodes ? gm.gridCodes() : [];
    panel.querySelector('#dispatch-grids').innerHTML =
      codes.map((c) => '<option value="' + esc(c) + '">').join('');
    const g = grid || gm.selected || (gm.myGrid && gm.myGrid()) || '';
    form.elements.grid.value = g || '';
    panel.hidden = false;
    document.getElementById('dispatch-toggle').setAttribute('aria-pressed', 'true');
    return load(false);
  }
  function close() {
    st.open = false;
    panel.hidden = true;
    document.getElementById('dispatch-toggle').setAttribute('aria-pressed', 'false');
  }

  function query(offset) {
    const f = form.elements;
    const p = new URLSearchParams();
    if (CFG.plan) p.set('plan', CFG.plan.id);
    const grid = f.grid.value.trim();
    if (grid) p.set('grid', grid);
    if (f.from.value) p.set('start', f.from.value);
    if (f.to.value) { // the whole "to" day
      const end = new Date(f.to.value + 'T00:00:00Z');
      end.setUTCDate(end.getUTCDate() + 1);
      p.set('end', end.toISOString().slice(0, 10));
    }
    if (f.status.value !== 'all') p.set('status', f.status.value);
    p.set('order', 'desc');
    p.set('offset', String(offset));
    p.set('limit', String(PAGE));
    return p.toString();
  }

  async function load(append) {
    const seq = ++st.seq;
    const offset = append ? st.items.length : 0;
    message(T.loading);
    try {
      const fc = await call(API + '/events?' + query(offset), { headers: headers(false) });
      if (seq !== st.seq) return;
      const items = fc.features.map((f) => f.properties);
      st.items = append ? st.items.concat(items) : items;
      st.total = fc.total;
      message('');
      render();
    } catch (err) {
      if (seq === st.seq) message(err.message, true);
    }
  }

  function render() {
    list.innerHTML = st.items.length ? st.items.map(row).join('') :
      '<li class="dispatch-empty">' + esc(T.none) + '</li>';
    panel.querySelector('.dispatch-count').textContent =
      fmt(T.count, { n: st.items.length, total: st.total });
    more.hidden = st.items.length >= st.total;
  }

  function row(e) {
    const next = NEXT[e.status];
    const id = esc(e.event_id);
    const action = next
      ? '<div class="dispatch-act">' +
        (next === 'assigned'
          ? '<input class="dispatch-worker" placeholder="' + esc(T.worker) + '" maxlength="100" aria-label="' + esc(T.worker) + '">'
          : '') +
        '<input class="dispatch-note" placeholder="' + esc(T.note) + '" maxlength="2000" aria-label="' + esc(T.note) + '">' +
        '<button type="button" class="dispatch-next" data-next="' + next + '">' + esc(T.go[next]) + '</button></div>'
      : '';
    return '<li class="dispatch-row" data-id="' + id + '" data-status="' + esc(e.status) + '">' +
      '<div class="dispatch-line">' + badge(e.status) +
      '<b>' + esc(CATEGORIES[e.category] || e.category) + '</b>' +
      '<span class="dispatch-grid">' + esc(String(e.grid_code || '–').slice(-6)) + '</span></div>' +
      '<div class="dispatch-meta">' + id + ' · ' + esc(when(e.reported_at)) +
      (e.worker ? ' · ' + esc(T.worker) + ' ' + esc(e.worker) : '') + '</div>' +
      action +
      '<button type="button" class="dispatch-history-toggle" aria-expanded="false">' + esc(T.history) + '</button>' +
      '<ol class="dispatch-history" hidden></ol></li>';
  }

  list.addEventListener('click', (e) => {
    const li = e.target.closest('.dispatch-row');
    if (!li) return;
    if (e.target.classList.contains('dispatch-next')) advance(li, e.target.dataset.next);
    else if (e.target.classList.contains('dispatch-history-toggle')) toggleHistory(li, e.target);
  });

  async function toggleHistory(li, button) {
    const ol = li.querySelector('.dispatch-history');
    if (!ol.hidden) { ol.hidden = true; button.setAttribute('aria-expanded', 'false'); return; }
    try {
      const ev = await call(API + '/events/' + encodeURIComponent(li.dataset.id), { headers: headers(false) });
      showHistory(ol, ev.history);
      ol.hidden = false;
      button.setAttribute('aria-expanded', 'true');
    } catch (err) {
      message(err.message, true);
    }
  }
  function showHistory(ol, history) {
    ol.innerHTML = history.map((h) => '<li>' + badge(h.status) + ' ' + esc(when(h.at)) +
      (h.worker ? ' · ' + esc(T.worker) + ' ' + esc(h.worker) : '') +
      (h.actor ? ' · ' + esc(T.by) + ' ' + esc(h.actor) : '') +
      (h.note ? '<div class="dispatch-note-text">' + esc(h.note) + '</div>' : '') + '</li>').join('');
  }

  async function advance(li, next) {
    if (!localStorage.getItem(TOKEN_KEY)) {
      tokenBox.hidden = false;
      message(T.need_token, true);
      return null;
    }
    const body = { status: next };
    const worker = li.querySelector('.dispatch-worker');
    if (next === 'assigned') {
      if (!worker || !worker.value.trim()) { message(T.need_worker, true); return null; }
      body.worker = worker.value.trim();
    }
    const note = li.querySelector('.dispatch-note');
    if (note && note.value.trim()) body.note = note.value.trim();
    const button = li.querySelector('.dispatch-next');
    button.disabled = true;
    try {
      const ev = await call(API + '/events/' + encodeURIComponent(li.dataset.id), {
        method: 'PATCH', headers: headers(true), body: JSON.stringify(body),
      });
      const i = st.items.findIndex((x) => x.event_id === ev.event_id);
      if (i >= 0) st.items[i] = { ...st.items[i], status: ev.status, worker: ev.worker, closed_at: ev.closed_at };
      render();
      const fresh = list.querySelector('.dispatch-row[data-id="' + CSS.escape(ev.event_id) + '"]');
      if (fresh) {
        const ol = fresh.querySelector('.dispatch-history');
        showHistory(ol, ev.history);
        ol.hidden = false;
        fresh.querySelector('.dispatch-history-toggle').setAttribute('aria-expanded', 'true');
      }
      message(fmt(T.done, { id: ev.event_id, status: T.steps[ev.status] || ev.status }));
      return ev;
    } catch (err) {
      if (err.status === 401 || err.status === 403) tokenBox.hidden = false;
      message(err.message, true);
      button.disabled = false;
      return null;
    }
  }

  window.gridmapDispatch = {
    state: st,
    open: (grid) => open(grid),
    close: () => close(),
    load: () => load(false),
    advance: (id) => {
      const li = list.querySelector('.dispatch-row[data-id="' + CSS.escape(id) + '"]');
      return li && NEXT[li.dataset.status] ? advance(li, NEXT[li.dataset.status]) : null;
    },
  };
})();
