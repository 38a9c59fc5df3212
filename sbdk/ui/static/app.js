// The page of `sbdk ui` (issue #18): a single page over the JSON API of sbdk/ui/app.py, hash routed.
// Every value from the API is put in the page as text (createElement/textContent); the only HTML
// inserted is highlight.js's output for SQL, which escapes the code it highlights.
'use strict';

(() => {
  const view = document.getElementById('view');
  const liveEl = document.getElementById('live');

  // app.js is the first deferred script: the vendored libraries are evaluated after it, before
  // DOMContentLoaded. Pages that draw charts, graphs or SQL wait for this.
  const libsReady = new Promise((resolve) => {
    if (document.readyState === 'complete') resolve();
    else {
      document.addEventListener('DOMContentLoaded', () => resolve(), { once: true });
      window.addEventListener('load', () => resolve(), { once: true });
    }
  });

  libsReady.then(() => {
    if (!window.Chart) return;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = '#475467';
  });

  // ---- DOM helpers -------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== 'string') node[key] = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(node, child);
      else if (child instanceof Node) node.appendChild(child);
      else node.appendChild(document.createTextNode(String(child)));
    }
    return node;
  }

  function slug(value) {
    if (value === null || value === undefined || value === '') return 'none';
    return String(value).toLowerCase().replace(/[^a-z0-9_-]+/g, '-');
  }

  function badge(status, label) {
    const text = label || (status === null || status === undefined || status === '' ? 'none' : String(status));
    return el('span', { class: `status status-${slug(status)}`, text });
  }

  function nodeHref(uniqueId) {
    return `#/node/${encodeURIComponent(uniqueId)}`;
  }

  function runHref(runId) {
    return `#/runs/${encodeURIComponent(runId)}`;
  }

  function nodeLink(uniqueId, name, props) {
    if (!uniqueId) return el('span', { text: name || '' });
    return el('a', { href: nodeHref(uniqueId), ...(props || {}) }, name || shortName(uniqueId));
  }

  function shortName(uniqueId) {
    const parts = String(uniqueId).split('.');
    if (parts[0] === 'source' && parts.length >= 4) return parts.slice(2).join('.');
    // A generic test's id ends with dbt's hash of it: its name is the part before.
    if ((parts[0] === 'test' || parts[0] === 'unit_test') && parts.length >= 4) return parts[2];
    return parts[parts.length - 1];
  }

  function section(title, props, ...children) {
    return el('section', { class: 'card', ...(props || {}) }, title ? el('h2', { text: title }) : null, ...children);
  }

  function errorBox(err, props) {
    const e = normalizeError(err);
    return el('div', { class: 'error', role: 'alert', ...(props || {}) },
      el('strong', { class: 'error-message', text: e.error }),
      e.hint ? el('div', { class: 'error-hint', text: e.hint }) : null);
  }

  function normalizeError(err) {
    if (err && typeof err === 'object' && 'error' in err) return { error: String(err.error), hint: err.hint ? String(err.hint) : '' };
    return { error: err && err.message ? err.message : String(err), hint: '' };
  }

  function dl(pairs) {
    const list = el('dl', { class: 'facts' });
    for (const [term, value] of pairs) {
      if (value === null || value === undefined || value === '') continue;
      append(list, [el('dt', { text: term }), el('dd', {}, value)]);
    }
    return list;
  }

  // ---- formatting --------------------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat();
  const dateFormat = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });

  function fmtNum(n) {
    if (n === null || n === undefined || n === '') return '–';
    return typeof n === 'number' ? numberFormat.format(n) : String(n);
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || s === '' || Number.isNaN(Number(s))) return '–';
    const v = Number(s);
    if (v < 10) return `${v.toFixed(2)} s`;
    if (v < 60) return `${v.toFixed(1)} s`;
    const m = Math.floor(v / 60);
    return m < 60 ? `${m} min ${Math.round(v - m * 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function fmtAgo(date) {
    const secs = (Date.now() - date.getTime()) / 1000;
    if (secs < 0) return '';
    if (secs < 60) return 'just now';
    if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
    if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
    return `${Math.floor(secs / 86400)} d ago`;
  }

  function when(iso) {
    if (!iso) return el('span', { class: 'muted', text: '–' });
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return el('span', { text: iso });
    const ago = fmtAgo(date);
    return el('time', { datetime: iso, title: iso }, dateFormat.format(date), ago ? el('span', { class: 'muted', text: ` (${ago})` }) : null);
  }

  function shortDate(iso) {
    const date = new Date(iso);
    if (!iso || Number.isNaN(date.getTime())) return String(iso || '');
    const pad = (n) => String(n).padStart(2, '0');
    return `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  // Rows a run loaded: the tables it kept as they were (up to date) are left out.
  function sumRows(rows, kept) {
    if (!rows || typeof rows !== 'object') return null;
    const skip = new Set(Array.isArray(kept) ? kept : []);
    const values = Object.entries(rows).filter(([name, v]) => typeof v === 'number' && !skip.has(name)).map(([, v]) => v);
    return values.length ? values.reduce((a, b) => a + b, 0) : null;
  }

  function cellValue(value) {
    if (value === null || value === undefined) return el('span', { class: 'null', text: 'null' });
    if (value === '') return el('span', { class: 'null', text: '(empty)' });
    if (typeof value === 'object') return JSON.stringify(value);
    if (typeof value === 'boolean') return value ? 'true' : 'false';
    return String(value);
  }

  const NUMERIC_TYPE = /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)/i;

  // A table of query-like results: {columns, types, rows}.
  function dataTable(result, props) {
    const types = result.types || [];
    const numeric = (result.columns || []).map((_, i) => NUMERIC_TYPE.test(types[i] || ''));
    const head = el('tr', {}, (result.columns || []).map((name, i) => el('th', { class: numeric[i] ? 'num' : null },
      el('span', { class: 'col-name', text: name }),
      types[i] ? el('span', { class: 'col-type', text: types[i] }) : null)));
    const body = el('tbody');
    for (const row of result.rows || []) {
      const tr = el('tr');
      row.forEach((value, i) => {
        const text = value !== null && typeof value === 'object' ? JSON.stringify(value) : value;
        tr.appendChild(el('td', {
          class: numeric[i] || typeof value === 'number' ? 'num' : null,
          title: typeof text === 'string' && text.length > 40 ? text : null,
        }, cellValue(value)));
      });
      body.appendChild(tr);
    }
    return el('div', { class: 'table-wrap', ...(props || {}) }, el('table', { class: 'data' }, el('thead', {}, head), body));
  }

  // A table from plain rows: columns = [{label, cell(row) -> node/text, class}]
  function simpleTable(columns, rows, props) {
    const head = el('tr', {}, columns.map((c) => el('th', { class: c.class || null, text: c.label })));
    const body = el('tbody', {}, rows.map((row) => {
      const tr = el('tr', {}, columns.map((c) => el('td', { class: c.class || null }, c.cell(row))));
      return tr;
    }));
    return el('div', { class: 'table-wrap', ...(props || {}) }, el('table', {}, el('thead', {}, head), body));
  }

  function sqlBlock(code, props) {
    const codeEl = el('code', { class: 'hljs language-sql' });
    const text = code || '';
    if (window.hljs && text) {
      // highlight.js escapes the code it is given: its output is safe HTML.
      codeEl.innerHTML = window.hljs.highlight(text, { language: 'sql', ignoreIllegals: true }).value;
    } else {
      codeEl.textContent = text;
    }
    return el('pre', { class: 'sql', ...(props || {}) }, codeEl);
  }

  // ---- API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.error ? body.error : `HTTP ${status}`);
      this.status = status;
      this.error = this.message;
      this.hint = body && body.hint ? body.hint : '';
    }
  }

  async function api(path, options) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' }, ...(options || {}) });
    } catch (exc) {
      throw new ApiError(0, { error: 'The sbdk ui server cannot be reached.', hint: 'Is `sbdk ui` still running?' });
    }
    let body = null;
    const type = res.headers.get('content-type') || '';
    if (type.includes('json')) {
      try { body = await res.json(); } catch (exc) { body = null; }
    }
    if (!res.ok) throw new ApiError(res.status, body || { error: `${res.status} ${res.statusText}` });
    if (body && typeof body === 'object' && 'building' in body) noteBuilding(body.building);
    return body;
  }

  function postJson(payload) {
    return { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(payload) };
  }

  // ---- routing -------------------------------------------------------------------------------

  const ROUTES = {
    overview: renderOverview,
    runs: renderRuns,
    run: renderRun,
    lineage: renderLineage,
    node: renderNode,
    sql: renderSql,
    notfound: renderNotFound,
  };
  // Pages whose data is fetched again when a run ends (the SQL page keeps what the user typed).
  const REFRESHED = new Set(['overview', 'runs', 'run', 'lineage', 'node']);

  function parseRoute() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [head, ...rest] = hash.split('/');
    const tail = rest.join('/');
    const decode = (s) => { try { return decodeURIComponent(s); } catch (exc) { return s; } };
    if (!head) return { name: 'overview' };
    if (head === 'runs' && !tail) return { name: 'runs' };
    if (head === 'runs') return { name: 'run', id: decode(tail) };
    if (head === 'lineage' && !tail) return { name: 'lineage' };
    if (head === 'node' && tail) return { name: 'node', id: decode(tail) };
    if (head === 'sql' && !tail) return { name: 'sql' };
    return { name: 'notfound' };
  }

  let navCounter = 0;
  let current = null;

  function setReady(name) {
    document.body.dataset.ready = name;
  }

  class Page {
    constructor(route) {
      this.id = ++navCounter;
      this.route = route;
      this.cleanups = [];
      this.listeners = [];
      this.state = {};
    }
    alive() { return current === this; }
    // Replaces the view with `root` and drops what the previous render of this page drew.
    mount(root) {
      if (!this.alive()) return false;
      this.teardown();
      view.replaceChildren(root);
      return true;
    }
    teardown() {
      for (const fn of this.cleanups.splice(0)) {
        try { fn(); } catch (exc) { /* a chart already gone */ }
      }
      this.listeners = [];
    }
    track(obj) {
      this.cleanups.push(() => obj.destroy());
      return obj;
    }
    // Live events for this page while it is shown: fn(eventName, data).
    onEvent(fn) { this.listeners.push(fn); }
  }

  async function navigate() {
    if (current) current.teardown();
    const route = parseRoute();
    const page = new Page(route);
    current = page;
    setReady('');
    for (const link of document.querySelectorAll('#nav a')) {
      const active = link.dataset.nav === route.name || (link.dataset.nav === 'runs' && route.name === 'run');
      link.classList.toggle('active', active);
      if (active) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    }
    await render(page, false);
  }

  async function render(page, refresh) {
    try {
      await ROUTES[page.route.name](page, refresh);
    } catch (err) {
      if (!page.alive()) return;
      if (refresh) return; // keep what is shown; the next event or navigation tries again
      page.mount(el('div', {}, el('h1', { text: titleOf(page.route) }), errorBox(err, { id: 'page-error' })));
    }
    if (page.alive()) {
      setReady(page.route.name);
      if (refresh) document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }
  }

  function titleOf(route) {
    return { overview: 'Overview', runs: 'Runs', run: 'Run', lineage: 'Lineage', node: 'Node', sql: 'SQL' }[route.name] || 'Not found';
  }

  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  function scheduleRefresh(routes) {
    if (!current || !REFRESHED.has(current.route.name)) return;
    if (routes && !routes.includes(current.route.name)) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshNow, 250);
  }

  async function refreshNow() {
    if (refreshing) { refreshAgain = true; return; }
    const page = current;
    if (!page || !REFRESHED.has(page.route.name)) return;
    refreshing = true;
    try {
      await render(page, true);
    } finally {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; refreshNow(); }
    }
  }

  // ---- live indicator (Server-Sent Events) -------------------------------------------------

  const live = { connecting: true, connected: false, running: null, last: null };

  function noteBuilding(building) {
    if (building && !live.running) {
      live.running = { run_id: building.run_id, trigger: building.trigger, stage: null, done: 0, planned: null, fromApi: true };
      renderLive();
    } else if (!building && live.running && live.running.fromApi) {
      live.running = null;
      renderLive();
    }
  }

  function liveText() {
    const r = live.running;
    if (r) {
      const done = r.planned ? `${r.done}/${r.planned} nodes done` : `${r.done} nodes done`;
      return `building: ${r.stage || r.trigger || 'starting'} · ${done}`;
    }
    if (live.connecting) return 'connecting';
    if (!live.connected) return 'offline, reconnecting';
    if (live.last) return `idle · last run ${live.last.status}`;
    return 'idle';
  }

  function renderLive() {
    const state = live.running ? 'building' : live.connected ? 'idle' : live.connecting ? 'connecting' : 'offline';
    liveEl.className = `live live-${state}`;
    liveEl.dataset.state = state;
    liveEl.textContent = liveText();
    for (const mirror of document.querySelectorAll('[data-live-text]')) mirror.textContent = liveText();
  }

  function ensureRunning(data) {
    if (!live.running || (data.run_id && live.running.run_id && live.running.run_id !== data.run_id)) {
      live.running = { run_id: data.run_id, trigger: data.trigger, stage: null, done: 0, planned: null };
    }
    live.running.fromApi = false;
    return live.running;
  }

  function onLiveEvent(name, data) {
    switch (name) {
      case 'run_started':
        live.running = { run_id: data.run_id, trigger: data.trigger, stage: null, done: 0, planned: null };
        scheduleRefresh(['overview', 'runs']);
        break;
      case 'stage':
        ensureRunning(data).stage = data.stage;
        break;
      case 'nodes_planned':
        ensureRunning(data).planned = data.nodes;
        break;
      case 'node_started':
        ensureRunning(data);
        break;
      case 'node_finished':
        ensureRunning(data).done += 1;
        break;
      case 'run_finished':
        live.running = null;
        live.last = { run_id: data.run_id, status: data.status };
        scheduleRefresh();
        break;
      default:
        break;
    }
    renderLive();
    if (current) for (const fn of current.listeners.slice()) fn(name, data);
  }

  function connectEvents() {
    if (!window.EventSource) return;
    const source = new EventSource('/api/events');
    source.onopen = () => {
      const wasOffline = !live.connected;
      live.connecting = false;
      live.connected = true;
      renderLive();
      // Events may have been missed while disconnected: what is shown is fetched again.
      if (wasOffline && connectedOnce) scheduleRefresh();
      connectedOnce = true;
    };
    source.onerror = () => {
      live.connecting = false;
      live.connected = false;
      renderLive();
      // EventSource reconnects by itself after a network error, but gives up after an HTTP error.
      if (source.readyState === EventSource.CLOSED) setTimeout(connectEvents, 5000);
    };
    const names = ['run_started', 'stage', 'stage_finished', 'nodes_planned', 'node_started', 'node_finished', 'run_finished'];
    for (const name of names) {
      source.addEventListener(name, (event) => {
        let data = {};
        try { data = JSON.parse(event.data) || {}; } catch (exc) { data = {}; }
        onLiveEvent(name, data);
      });
    }
  }
  let connectedOnce = false;

  function buildingBanner(data) {
    const banners = [];
    if (data && data.building) {
      const b = data.building;
      banners.push(el('div', { class: 'banner banner-building', id: 'banner-building', role: 'status' },
        el('strong', { text: 'A build is running: showing the state before it.' }), ' ',
        el('span', { 'data-live-text': '', text: liveText() }),
        b.run_id ? [' · ', el('a', { href: runHref(b.run_id), text: `follow run ${b.run_id}` })] : null,
        b.started_at ? [' · started ', when(b.started_at)] : null));
    } else if (data && data.stale) {
      banners.push(el('div', { class: 'banner banner-stale', id: 'banner-stale', role: 'status' },
        el('strong', { text: 'Stale: ' }), 'this is the last complete state, not the current one.'));
    }
    return banners;
  }

  // ---- Overview ------------------------------------------------------------------------------

  async function renderOverview(page) {
    const data = await api('/api/overview');
    document.getElementById('brand-project').textContent = data.project || '';
    document.title = data.project ? `${data.project} · sbdk` : 'sbdk';
    const last = data.last_run;
    const tests = data.tests || {};
    const failed = (last && ['failed', 'killed', 'interrupted'].includes(last.status)) || (tests.fail || 0) + (tests.error || 0) > 0;
    const target = data.target || {};

    const nextSteps = (data.next_steps || []).length
      ? el('section', { class: `card next-steps${failed ? ' next-steps-failed' : ''}`, id: 'overview-next-steps' },
        el('h2', { text: failed ? 'Something failed: next steps' : 'Next steps' }),
        el('ul', {}, data.next_steps.map((step) => el('li', {}, withCode(step)))))
      : null;

    const lastRun = section('Last run', { id: 'overview-last-run' }, last
      ? [
        el('div', { class: 'headline' }, badge(last.status), ' ', el('a', { href: runHref(last.run_id), text: `run ${last.run_id}` })),
        dl([
          ['Trigger', last.trigger],
          ['Started', when(last.started_at)],
          ['Took', fmtSeconds(last.seconds)],
          ['Rows loaded', fmtNum(sumRows(last.rows, last.kept))],
          ['dbt', last.dbt ? dbtCounts(last.dbt) : null],
          ['Error', last.error ? el('span', { class: 'error-text', text: last.error }) : null],
        ]),
      ]
      : el('p', { class: 'muted' }, withCode('No run yet: run `sbdk dev` to build the project.')));

    const testsCard = section('Tests', { id: 'overview-tests' },
      el('div', { class: 'counts' },
        countBadge('pass', tests.pass), countBadge('fail', tests.fail), countBadge('warn', tests.warn),
        countBadge('error', tests.error), countBadge('skipped', tests.skipped),
        tests.not_run ? countBadge('none', tests.not_run, 'not run') : null),
      el('p', { class: 'muted', text: `${fmtNum(tests.total || 0)} tests in the project` }));

    const projectCard = section('Project', { id: 'overview-project' }, dl([
      ['Project', data.project],
      ['Target', [target.name, target.type ? ` (${target.type})` : ''].join('')],
      ['Where', target.describe],
      ['dbt project', data.dbt_project ? el('code', { text: data.dbt_project }) : null],
      ['Database', data.database ? el('code', { text: data.database }) : null],
    ]));

    const tables = data.tables || [];
    const tablesCard = section(`Tables (${tables.length})`, { id: 'overview-tables' }, tables.length
      ? simpleTable([
        { label: 'Table', cell: (t) => nodeLink(t.unique_id, `${t.schema ? `${t.schema}.` : ''}${t.name}`) },
        { label: 'Kind', cell: (t) => el('span', { class: `kind kind-${slug(t.kind)}`, text: t.kind || '' }) },
        ...(tables.some((t) => t.type) ? [{ label: 'Type', cell: (t) => t.type || '' }] : []),
        { label: 'Rows', class: 'num', cell: (t) => fmtNum(t.rows) },
      ], tables)
      : el('p', { class: 'muted', text: 'No tables yet.' }));

    const root = el('div', { class: 'page page-overview' },
      el('h1', { text: data.project ? `Overview of ${data.project}` : 'Overview' }),
      buildingBanner(data),
      failed ? nextSteps : null,
      el('div', { class: 'grid' }, lastRun, testsCard, projectCard),
      tablesCard,
      failed ? null : nextSteps);
    page.mount(root);
  }

  function countBadge(status, count, label) {
    const b = badge(status, `${fmtNum(count || 0)} ${label || status}`);
    if (!count) b.classList.add('zero');
    return el('span', { class: 'count' }, b);
  }

  // Text with `code` spans, as the CLI's messages write commands: still text nodes only.
  function withCode(text) {
    return String(text).split('`').map((part, i) => (i % 2 ? el('code', { text: part }) : part));
  }

  // dbt's counts of a run, keyed `pass`/`fail`... or `models_passed`/`tests_failed`...: the badge's
  // status comes from the key's last word.
  const COUNT_STATUS = {
    passed: 'pass', pass: 'pass', success: 'success', succeeded: 'success', failed: 'fail', fail: 'fail',
    errored: 'error', error: 'error', warned: 'warn', warn: 'warn', skipped: 'skipped',
  };

  function dbtCounts(dbt) {
    const order = ['success', 'pass', 'warn', 'fail', 'error', 'skipped'];
    const statusOf = (key) => COUNT_STATUS[String(key).split('_').pop()] || 'none';
    const keys = Object.keys(dbt).filter((k) => typeof dbt[k] === 'number' && dbt[k] > 0)
      .sort((a, b) => (order.indexOf(statusOf(a)) + 1 || 99) - (order.indexOf(statusOf(b)) + 1 || 99));
    if (!keys.length) return el('span', { class: 'muted', text: 'nothing ran' });
    return el('span', { class: 'counts' }, keys.map((k) => badge(statusOf(k), `${fmtNum(dbt[k])} ${k.replace(/_/g, ' ')}`)));
  }

  // ---- Runs ------------------------------------------------------------------------------------

  const STAGE_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#e15759', '#9c755f'];

  async function renderRuns(page) {
    const data = await api('/api/runs?limit=50');
    const runs = data.runs || [];
    const chartBox = el('div', { class: 'chart-box', id: 'runs-chart' }, el('canvas', { 'aria-label': 'Seconds per stage of the last runs', role: 'img' }));
    const table = simpleTable([
      { label: 'Run', cell: (r) => el('a', { href: runHref(r.run_id), text: r.run_id }) },
      { label: 'Trigger', cell: (r) => r.trigger || '' },
      { label: 'Status', cell: (r) => badge(r.status) },
      { label: 'Started', cell: (r) => when(r.started_at) },
      { label: 'Took', class: 'num', cell: (r) => fmtSeconds(r.seconds) },
      { label: 'Rows', class: 'num', cell: (r) => fmtNum(sumRows(r.rows, r.kept)) },
      { label: 'dbt', cell: (r) => (r.dbt ? dbtCounts(r.dbt) : el('span', { class: 'muted', text: '–' })) },
    ], runs, { id: 'runs-table' });
    table.querySelectorAll('tbody tr').forEach((tr, i) => {
      tr.classList.add('clickable');
      tr.dataset.runId = runs[i].run_id;
      tr.addEventListener('click', (event) => {
        if (event.target.closest('a')) return;
        location.hash = runHref(runs[i].run_id);
      });
    });
    const root = el('div', { class: 'page page-runs' },
      el('h1', { text: 'Runs' }),
      buildingBanner(data),
      runs.length ? section('Seconds per stage', {}, chartBox) : null,
      section(`History (${runs.length})`, {}, runs.length ? table : el('p', { class: 'muted' }, withCode('No run yet: run `sbdk dev`.'))));
    page.mount(root);
    if (runs.length) {
      await libsReady;
      if (page.alive()) drawStagesChart(page, chartBox.querySelector('canvas'), runs.slice(0, 30).reverse());
    }
  }

  function drawStagesChart(page, canvas, runs) {
    if (!window.Chart) return;
    const stages = [];
    for (const r of runs) for (const name of Object.keys(r.stages || {})) if (!stages.includes(name)) stages.push(name);
    const chart = new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels: runs.map((r) => shortDate(r.started_at)),
        datasets: stages.map((name, i) => ({
          label: name,
          data: runs.map((r) => (r.stages && typeof r.stages[name] === 'number' ? r.stages[name] : 0)),
          backgroundColor: STAGE_COLOURS[i % STAGE_COLOURS.length],
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'seconds' } } },
        plugins: {
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? `run ${runs[items[0].dataIndex].run_id} · ${runs[items[0].dataIndex].status}` : ''),
              label: (item) => `${item.dataset.label}: ${fmtSeconds(item.raw)}`,
            },
          },
        },
        onClick: (event, elements) => {
          if (elements.length) location.hash = runHref(runs[elements[0].index].run_id);
        },
        onHover: (event, elements) => {
          event.native.target.style.cursor = elements.length ? 'pointer' : 'default';
        },
      },
    });
    page.track(chart);
  }

  // ---- One run ---------------------------------------------------------------------------------

  async function renderRun(page) {
    const runId = page.route.id;
    const [data] = await Promise.all([api(`/api/runs/${encodeURIComponent(runId)}`), libsReady]);
    const run = data.run || {};
    const model = {
      stages: (data.stages || []).map((s) => ({ ...s })),
      nodes: new Map(),
    };
    for (const n of data.nodes || []) model.nodes.set(n.unique_id || `running:${n.name}`, { ...n });

    const stagesBox = el('div');
    const nodesBox = el('div');
    const filter = el('input', { type: 'search', placeholder: 'Filter by name, type or status', class: 'filter wide', id: 'run-nodes-filter' });
    const counter = el('span', { class: 'muted' });

    // While a run goes on, only its last stage is running; an earlier stage's time is the client's
    // estimate until the run's own figures come with the refresh at its end.
    function stageSeconds(s) {
      if (s.seconds !== null && s.seconds !== undefined) return fmtSeconds(s.seconds);
      if (s.estimate !== undefined) return `≈ ${fmtSeconds(s.estimate)}`;
      if (data.live && s === model.stages[model.stages.length - 1]) return badge('running');
      return '–';
    }

    function drawStages() {
      stagesBox.replaceChildren(model.stages.length
        ? simpleTable([
          { label: 'Stage', cell: (s) => s.name || '' },
          { label: 'Detail', cell: (s) => s.detail || '' },
          { label: 'Seconds', class: 'num', cell: (s) => stageSeconds(s) },
        ], model.stages, { id: 'run-stages' })
        : el('p', { class: 'muted', text: 'No stage recorded.' }));
    }

    function drawNodes() {
      const needle = filter.value.trim().toLowerCase();
      const nodes = [...model.nodes.values()].filter((n) => !needle
        || [n.name, n.resource_type, n.status, n.unique_id].some((v) => v && String(v).toLowerCase().includes(needle)));
      counter.textContent = `${model.nodes.size} nodes${needle ? `, ${nodes.length} shown` : ''}`;
      const table = simpleTable([
        { label: 'Node', cell: (n) => nodeLink(n.unique_id, n.name) },
        { label: 'Type', cell: (n) => n.resource_type || '' },
        { label: 'Status', cell: (n) => badge(n.status) },
        { label: 'Seconds', class: 'num', cell: (n) => fmtSeconds(n.seconds) },
        { label: 'Message', cell: (n) => (n.message ? el('span', { class: 'message', title: n.message, text: n.message }) : '') },
      ], nodes, { id: 'run-nodes' });
      table.querySelectorAll('tbody tr').forEach((tr, i) => {
        tr.dataset.id = nodes[i].unique_id || '';
        tr.dataset.status = nodes[i].status || '';
      });
      nodesBox.replaceChildren(model.nodes.size ? table : el('p', { class: 'muted', id: 'run-nodes', text: data.live ? 'No dbt node finished yet.' : 'No dbt node ran.' }));
    }
    filter.addEventListener('input', drawNodes);

    const failures = data.failures || [...model.nodes.values()]
      .filter((n) => ['error', 'fail'].includes(n.status))
      .map((n) => ({ unique_id: n.unique_id, name: n.name, message: n.message, compiled_sql: null }));

    const summary = section('Summary', { id: 'run-summary' },
      el('div', { class: 'headline' }, badge(run.status), data.live ? el('span', { class: 'live-tag', text: 'live: updates node by node' }) : null),
      dl([
        ['Trigger', run.trigger],
        ['Started', when(run.started_at)],
        ['Ended', run.ended_at ? when(run.ended_at) : null],
        ['Took', fmtSeconds(run.seconds)],
        ['Rows loaded', fmtNum(sumRows(run.rows, run.kept))],
        ['dbt', run.dbt ? dbtCounts(run.dbt) : null],
        ['Options', run.options && Object.keys(run.options).length ? el('code', { text: JSON.stringify(run.options) }) : null],
        ['Kept', run.kept && run.kept.length ? run.kept.join(', ') : null],
        ['dbt skipped', run.dbt_skipped ? String(run.dbt_skipped) : null],
        ['Error', run.error ? el('span', { class: 'error-text', text: run.error }) : null],
      ]));

    const rows = run.rows && Object.keys(run.rows).length
      ? section('Rows by table', {}, simpleTable([
        { label: 'Table', cell: (r) => r[0] },
        { label: 'Rows', class: 'num', cell: (r) => fmtNum(r[1]) },
      ], Object.entries(run.rows)))
      : null;

    const failuresCard = failures.length
      ? section(`Failures (${failures.length})`, { id: 'run-failures', class: 'card failures' }, failures.map((f) => el('article', { class: 'failure' },
        el('h3', {}, nodeLink(f.unique_id, f.name)),
        f.message ? el('pre', { class: 'message-block', text: f.message }) : null,
        f.compiled_sql ? el('details', { open: true }, el('summary', { text: 'Compiled SQL' }), sqlBlock(f.compiled_sql)) : null)))
      : null;

    const root = el('div', { class: 'page page-run' },
      el('p', { class: 'crumbs' }, el('a', { href: '#/runs', text: 'Runs' }), ' / ', run.run_id || runId),
      el('h1', {}, `Run ${run.run_id || runId}`),
      el('div', { class: 'grid grid-2' }, summary, section('Stages', {}, stagesBox)),
      failuresCard,
      section('dbt nodes', {}, el('div', { class: 'toolbar' }, filter, counter), nodesBox),
      rows);
    drawStages();
    drawNodes();
    if (!page.mount(root)) return;

    if (data.live) {
      page.onEvent((name, ev) => {
        if (ev.run_id && ev.run_id !== (run.run_id || runId)) return;
        if (name === 'stage') {
          const previous = model.stages[model.stages.length - 1];
          if (previous && previous.seconds == null && previous.seen !== undefined) previous.estimate = (performance.now() - previous.seen) / 1000;
          if (!previous || previous.name !== ev.stage) model.stages.push({ name: ev.stage, detail: ev.detail, seconds: null, seen: performance.now() });
          drawStages();
        } else if (name === 'stage_finished') {
          const stage = model.stages.find((s) => s.name === ev.stage);
          if (stage) { stage.seconds = ev.seconds; drawStages(); }
        } else if (name === 'node_started') {
          model.nodes.set(`running:${ev.name}`, { unique_id: null, name: ev.name, resource_type: ev.resource_type, status: 'running', seconds: null, message: null });
          drawNodes();
        } else if (name === 'node_finished') {
          model.nodes.delete(`running:${ev.name}`);
          model.nodes.set(ev.unique_id || `done:${ev.name}`, {
            unique_id: ev.unique_id, name: ev.name, resource_type: ev.resource_type, status: ev.status, seconds: ev.seconds, message: ev.message || null,
          });
          drawNodes();
        } else if (name === 'run_finished') {
          scheduleRefresh(['run']);
        }
      });
    }
  }

  // ---- Lineage -------------------------------------------------------------------------------

  const LAYER_SHAPES = {
    source: 'barrel', seed: 'cut-rectangle', snapshot: 'hexagon', staging: 'round-rectangle',
    intermediate: 'round-rectangle', mart: 'rectangle', model: 'round-rectangle', test: 'diamond',
    exposure: 'round-tag', other: 'ellipse',
  };
  const STATUS_COLOURS = {
    good: ['#dcfae6', '#079455'], bad: ['#fee4e2', '#d92d20'], warn: ['#fef0c7', '#dc6803'],
    skipped: ['#eaecf0', '#667085'], running: ['#d1e9ff', '#1570ef'], none: ['#ffffff', '#98a2b3'],
  };

  function statusGroup(status) {
    const s = slug(status);
    if (['success', 'pass', 'succeeded'].includes(s)) return 'good';
    if (['error', 'fail', 'failed', 'runtime-error', 'killed'].includes(s)) return 'bad';
    if (['warn', 'partial-success', 'interrupted'].includes(s)) return 'warn';
    if (['skipped', 'no-op'].includes(s)) return 'skipped';
    if (s === 'running') return 'running';
    return 'none';
  }

  async function renderLineage(page, refresh) {
    const [data] = await Promise.all([api('/api/lineage'), libsReady]);
    const allNodes = data.nodes || [];
    const allEdges = data.edges || [];
    const byId = new Map(allNodes.map((n) => [n.id, n]));
    const state = page.state;
    if (state.showTests === undefined) state.showTests = false;

    const graphBox = el('div', { id: 'lineage-graph', class: 'graph' });
    const panel = el('aside', { id: 'lineage-panel', class: 'card panel' });
    const listBox = el('div');
    const showTests = el('input', { type: 'checkbox', id: 'lineage-show-tests', checked: state.showTests });
    const search = el('input', { type: 'search', id: 'lineage-search', placeholder: 'Find a node', list: 'lineage-names', class: 'filter' });
    const names = el('datalist', { id: 'lineage-names' });
    const legend = el('div', { class: 'legend' },
      ['success', 'error', 'warn', 'skipped', 'none'].map((s) => badge(s, { success: 'success / pass', error: 'error / fail', warn: 'warn', skipped: 'skipped', none: 'not run' }[s])));

    const root = el('div', { class: 'page page-lineage' },
      el('h1', { text: 'Lineage' }),
      el('div', { class: 'toolbar' },
        el('label', { class: 'check' }, showTests, ' show tests'),
        search, names, legend),
      el('div', { class: 'lineage-layout' }, graphBox, panel),
      el('p', { class: 'muted shapes' }, 'Left to right: sources (double border), staging, intermediate (dashed), marts (bold), ',
        'exposures (tag); tests are diamonds. Colour is the last status.'),
      listBox);
    if (!page.mount(root)) return;

    let cy = null;
    let selected = refresh ? state.selected : null;
    let restoreViewport = refresh;

    function visibleNodes() {
      return allNodes.filter((n) => state.showTests || !['test', 'unit_test'].includes(n.layer) && !['test', 'unit_test'].includes(n.resource_type));
    }

    function drawPanel(node) {
      if (!node) {
        panel.replaceChildren(el('h2', { text: 'Select a node' }),
          el('p', { class: 'muted', text: 'Click a node to see its upstream and downstream; double-click to open it.' }));
        return;
      }
      const graphNode = cy && cy.getElementById(node.id);
      const up = graphNode && graphNode.length ? graphNode.predecessors('node').length : 0;
      const down = graphNode && graphNode.length ? graphNode.successors('node').length : 0;
      panel.replaceChildren(
        el('h2', { text: node.name }),
        el('div', { class: 'headline' }, badge(node.status), ' ', el('span', { class: `kind kind-${slug(node.layer)}`, text: node.layer || '' })),
        dl([
          ['Type', node.resource_type],
          ['Materialized', node.materialized],
          ['Upstream', `${up} nodes`],
          ['Downstream', `${down} nodes`],
          ['Id', el('code', { text: node.id })],
        ]),
        node.description ? el('p', { class: 'description', text: node.description }) : null,
        el('a', { href: nodeHref(node.id), id: 'lineage-open', class: 'button', text: 'Open' }));
    }

    function drawList(nodes) {
      const order = ['source', 'seed', 'snapshot', 'staging', 'intermediate', 'model', 'mart', 'exposure', 'test', 'other'];
      const sorted = nodes.slice().sort((a, b) => ((order.indexOf(a.layer) + 1 || 99) - (order.indexOf(b.layer) + 1 || 99)) || String(a.name).localeCompare(String(b.name)));
      listBox.replaceChildren(el('details', { open: true, id: 'lineage-list', class: 'card' },
        el('summary', { text: `Nodes (${nodes.length})` }),
        el('ul', { class: 'node-list' }, sorted.map((n) => el('li', {},
          el('a', { class: 'lineage-node', href: nodeHref(n.id), dataset: { id: n.id }, text: n.name }),
          ' ', el('span', { class: `kind kind-${slug(n.layer)}`, text: n.layer || '' }),
          ' ', badge(n.status))))));
      names.replaceChildren(...sorted.map((n) => el('option', { value: n.name })));
    }

    function select(id) {
      if (!cy) return;
      cy.elements().removeClass('faded highlighted selected-node');
      const node = id ? cy.getElementById(id) : null;
      if (!node || !node.length) {
        selected = null;
        state.selected = null;
        delete graphBox.dataset.selected;
        drawPanel(null);
        return;
      }
      selected = id;
      state.selected = id;
      graphBox.dataset.selected = id;
      const keep = node.union(node.predecessors()).union(node.successors());
      cy.elements().not(keep).addClass('faded');
      keep.addClass('highlighted');
      node.addClass('selected-node');
      drawPanel(byId.get(id));
    }

    function draw() {
      if (cy) { cy.destroy(); cy = null; }
      const nodes = visibleNodes();
      const shown = new Set(nodes.map((n) => n.id));
      drawList(nodes);
      if (!allNodes.length) {
        graphBox.replaceChildren(el('p', { class: 'muted empty' }, withCode('The dbt project has no nodes yet: `sbdk dev` parses and builds it.')));
        return;
      }
      if (!window.cytoscape) {
        graphBox.replaceChildren(el('p', { class: 'muted', text: 'The graph library did not load.' }));
        return;
      }
      const elements = nodes.map((n) => ({
        data: {
          id: n.id,
          label: n.name,
          layer: n.layer,
          group: statusGroup(n.status),
          shape: LAYER_SHAPES[n.layer] || 'ellipse',
          w: Math.max(48, Math.min(260, String(n.name).length * 7 + 22)),
        },
        classes: `layer-${slug(n.layer)}`,
      }));
      allEdges.forEach((e, i) => {
        if (shown.has(e.source) && shown.has(e.target)) elements.push({ data: { id: `edge-${i}`, source: e.source, target: e.target } });
      });
      const style = [
        {
          selector: 'node',
          style: {
            label: 'data(label)', shape: 'data(shape)', width: 'data(w)', height: 28,
            'font-size': 11, 'font-family': 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
            'text-valign': 'center', 'text-halign': 'center', color: '#101828',
            'border-width': 1.5, 'background-color': STATUS_COLOURS.none[0], 'border-color': STATUS_COLOURS.none[1],
          },
        },
        ...Object.entries(STATUS_COLOURS).map(([group, [fill, line]]) => ({
          selector: `node[group = "${group}"]`, style: { 'background-color': fill, 'border-color': line },
        })),
        { selector: 'node.layer-mart', style: { 'border-width': 3, 'font-weight': 'bold' } },
        { selector: 'node.layer-source', style: { 'border-style': 'double', 'border-width': 4 } },
        { selector: 'node.layer-intermediate', style: { 'border-style': 'dashed' } },
        { selector: 'node.layer-test', style: { height: 18, 'font-size': 8, width: 'data(w)' } },
        { selector: 'node.layer-exposure', style: { 'border-width': 2, 'border-style': 'dotted' } },
        {
          selector: 'edge',
          style: {
            width: 1.3, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', 'arrow-scale': 0.8,
            'line-color': '#98a2b3', 'target-arrow-color': '#98a2b3',
          },
        },
        { selector: '.faded', style: { opacity: 0.15 } },
        { selector: 'edge.highlighted', style: { 'line-color': '#1570ef', 'target-arrow-color': '#1570ef', width: 2 } },
        { selector: 'node.selected-node', style: { 'border-color': '#1570ef', 'border-width': 4 } },
      ];
      cy = window.cytoscape({
        container: graphBox,
        elements,
        style,
        layout: hasDagre()
          ? { name: 'dagre', rankDir: 'LR', nodeSep: 14, rankSep: 70, edgeSep: 8, padding: 16, animate: false }
          : { name: 'breadthfirst', directed: true, padding: 16 },
        minZoom: 0.1,
        maxZoom: 3,
        boxSelectionEnabled: false,
        autoungrabify: true,
      });
      page.cleanups.push(() => {
        // A refresh after a run draws the graph again: keep where the user had zoomed and panned.
        if (cy) { state.viewport = { zoom: cy.zoom(), pan: { ...cy.pan() } }; cy.destroy(); }
        cy = null;
      });
      if (restoreViewport && state.viewport) cy.viewport(state.viewport);
      restoreViewport = false;
      // For tests and the console: the graph is drawn on a canvas, so its instance and contents
      // are reachable from the container.
      graphBox.cy = cy;
      graphBox.dataset.nodes = String(cy.nodes().length);
      graphBox.dataset.edges = String(cy.edges().length);
      cy.on('tap', 'node', (event) => select(event.target.id()));
      cy.on('tap', (event) => { if (event.target === cy) select(null); });
      cy.on('dbltap', 'node', (event) => { location.hash = nodeHref(event.target.id()); });
      cy.on('mouseover', 'node', () => { graphBox.style.cursor = 'pointer'; });
      cy.on('mouseout', 'node', () => { graphBox.style.cursor = ''; });
      select(selected && shown.has(selected) ? selected : null);
    }

    showTests.addEventListener('change', () => {
      state.showTests = showTests.checked;
      draw();
    });
    search.addEventListener('change', () => {
      const wanted = search.value.trim().toLowerCase();
      const match = visibleNodes().find((n) => String(n.name).toLowerCase() === wanted || n.id.toLowerCase() === wanted);
      if (match && cy) {
        select(match.id);
        cy.animate({ center: { eles: cy.getElementById(match.id) }, zoom: Math.max(cy.zoom(), 1) }, { duration: 250 });
      }
    });
    draw();
  }

  function hasDagre() {
    try {
      // cytoscape throws for an unknown layout name; registered by cytoscape-dagre when it loaded.
      return Boolean(window.cytoscape && window.cytoscape('layout', 'dagre'));
    } catch (exc) {
      return false;
    }
  }

  // ---- Node --------------------------------------------------------------------------------

  const ROWS_PAGE = 50;

  async function renderNode(page) {
    const id = page.route.id;
    const base = `/api/nodes/${encodeURIComponent(id)}`;
    const node = await api(base);
    const state = page.state;
    if (state.offset === undefined) state.offset = 0;
    if (state.limit === undefined) state.limit = ROWS_PAGE;
    const hasData = Boolean(node.relation);
    // The node's `chart` may carry its data or only the suggested axes: then the data is fetched.
    const suggested = node.chart || null;
    let chartQuery = '';
    if (state.x) chartQuery = chartParams(state.x, state.y);
    else if (suggested && !suggested.data) chartQuery = chartParams(suggested.x, suggested.y);
    const [rows, profile, chart] = await Promise.all([
      hasData ? api(`${base}/rows?offset=${state.offset}&limit=${state.limit}`).catch((e) => ({ failed: e })) : null,
      hasData ? api(`${base}/profile`).catch((e) => ({ failed: e })) : null,
      hasData && chartQuery ? api(`${base}/chart?${chartQuery}`).catch((e) => ({ failed: e })) : suggested,
      libsReady,
    ]);

    const relation = node.relation ? `${node.relation.schema ? `${node.relation.schema}.` : ''}${node.relation.name}` : null;
    const header = el('div', { class: 'node-header' },
      el('p', { class: 'crumbs' }, el('a', { href: '#/lineage', text: 'Lineage' }), ' / ', node.layer || node.resource_type || ''),
      el('h1', {}, node.name || id, ' ', badge(node.status)),
      el('div', { class: 'tags' },
        el('span', { class: `kind kind-${slug(node.layer)}`, text: node.layer || '' }),
        [...new Set([node.resource_type, node.materialized])].filter((t) => t && t !== node.layer)
          .map((t) => el('span', { class: 'tag', text: t }))),
      node.description ? el('p', { class: 'description', id: 'node-description', text: node.description }) : null,
      dl([
        ['Relation', relation ? el('code', { text: relation }) : null],
        ['Rows', node.rows === null || node.rows === undefined ? null : fmtNum(node.rows)],
        ['Last run', node.last_seconds === null || node.last_seconds === undefined ? null : `took ${fmtSeconds(node.last_seconds)}`],
        ['Last message', node.status_message ? el('span', { class: 'error-text', text: node.status_message }) : null],
        ['Path', node.path ? el('code', { text: node.path }) : null],
        ['Id', el('code', { text: node.id || id })],
        ['Upstream', (node.parents || []).length ? linkList(node.parents) : null],
        ['Downstream', (node.children || []).length ? linkList(node.children) : null],
      ]));

    const columns = node.columns || [];
    const columnsCard = section(`Columns (${columns.length})`, {}, columns.length
      ? simpleTable([
        { label: 'Column', cell: (c) => el('code', { text: c.name }) },
        { label: 'Type', cell: (c) => c.type || '' },
        { label: 'Description', cell: (c) => c.description || '' },
      ], columns, { id: 'node-columns' })
      : el('p', { class: 'muted', id: 'node-columns', text: 'No columns documented or found.' }));

    const tests = node.tests || [];
    const testsCard = tests.length ? section(`Tests (${tests.length})`, {}, simpleTable([
      { label: 'Test', cell: (t) => nodeLink(t.id, t.name) },
      { label: 'Column', cell: (t) => (t.column ? el('code', { text: t.column }) : '') },
      { label: 'Last status', cell: (t) => badge(t.status) },
      ...(tests.some((t) => t.message) ? [{ label: 'Message', cell: (t) => (t.message ? el('span', { class: 'message', title: t.message, text: t.message }) : '') }] : []),
    ], tests, { id: 'node-tests' })) : null;

    const sqlCard = (node.raw_sql || node.compiled_sql) ? section('SQL', { id: 'node-sql' }, sqlTabs(node, state)) : null;

    const rowsCard = hasData ? section('Rows', { id: 'node-rows-card' }, el('div', { id: 'node-rows' }, rowsView(page, base, rows))) : null;
    const profileCard = hasData ? section('Profile', {}, el('div', { id: 'node-profile' })) : null;
    const chartCard = hasData && (chart || columns.length) ? section('Chart', {}, el('div', { id: 'node-chart' })) : null;

    const root = el('div', { class: 'page page-node' },
      header,
      el('div', { class: 'grid grid-2' }, columnsCard, testsCard || sqlCard),
      testsCard ? sqlCard : null,
      chartCard, rowsCard, profileCard);
    if (!page.mount(root)) return;

    if (profileCard) drawProfile(page, root.querySelector('#node-profile'), profile);
    if (chartCard) drawChartSection(page, base, root.querySelector('#node-chart'), chart, columns);
  }

  function linkList(ids) {
    return el('span', { class: 'links' }, ids.map((uid, i) => [i ? ', ' : null, nodeLink(uid, shortName(uid))]));
  }

  function sqlTabs(node, state) {
    const tabs = [['compiled', 'Compiled SQL', node.compiled_sql], ['raw', 'Raw SQL', node.raw_sql]].filter((t) => t[2]);
    if (!tabs.some((t) => t[0] === state.sqlTab)) state.sqlTab = tabs[0][0];
    const bar = el('div', { class: 'tabs', role: 'tablist' });
    const panels = el('div');
    for (const [key, label, code] of tabs) {
      const panel = el('div', { class: 'tab-panel', id: `node-sql-${key}`, role: 'tabpanel', hidden: state.sqlTab !== key }, sqlBlock(code));
      const button = el('button', {
        type: 'button', class: `tab${state.sqlTab === key ? ' active' : ''}`, role: 'tab', 'aria-selected': String(state.sqlTab === key), id: `node-sql-tab-${key}`, text: label,
      });
      button.addEventListener('click', () => {
        state.sqlTab = key;
        for (const b of bar.children) { b.classList.toggle('active', b === button); b.setAttribute('aria-selected', String(b === button)); }
        for (const p of panels.children) p.hidden = p !== panel;
      });
      bar.appendChild(button);
      panels.appendChild(panel);
    }
    return [bar, panels];
  }

  function rowsView(page, base, rows) {
    const box = el('div');
    const fill = (result) => {
      if (!result) return;
      if (result.failed) {
        box.replaceChildren(errorBox(result.failed));
        return;
      }
      const total = typeof result.total === 'number' ? result.total : null;
      const count = (result.rows || []).length;
      const first = count ? result.offset + 1 : 0;
      const lastIndex = result.offset + count;
      const prev = el('button', { type: 'button', id: 'node-rows-prev', text: '← Prev', disabled: result.offset <= 0 });
      const next = el('button', { type: 'button', id: 'node-rows-next', text: 'Next →', disabled: total !== null ? lastIndex >= total : count < result.limit });
      const info = el('span', { class: 'pager-info', text: `rows ${fmtNum(first)}–${fmtNum(lastIndex)} of ${total === null ? '?' : fmtNum(total)}` });
      const go = async (offset) => {
        page.state.offset = Math.max(0, offset);
        setReady('');
        prev.disabled = true;
        next.disabled = true;
        const fresh = await api(`${base}/rows?offset=${page.state.offset}&limit=${page.state.limit}`).catch((e) => ({ failed: e }));
        if (!page.alive()) return;
        fill(fresh);
        setReady('node');
      };
      prev.addEventListener('click', () => go(result.offset - page.state.limit));
      next.addEventListener('click', () => go(result.offset + page.state.limit));
      box.replaceChildren(
        el('div', { class: 'toolbar pager' }, prev, info, next),
        count ? dataTable(result) : el('p', { class: 'muted', text: 'No rows.' }));
    };
    fill(rows);
    return box;
  }

  const ISO_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/;

  function fmtValue(value) {
    if (value === null || value === undefined) return '–';
    if (value === '') return '(empty)';
    if (typeof value === 'string' && ISO_TIME.test(value)) {
      // Histogram bounds of dates and timestamps: the day, and the time only when there is one.
      const [, day, hm, secs] = ISO_TIME.exec(value);
      return hm === '00:00' && (!secs || /^:00(\.0*)?$/.test(secs)) ? day : `${day} ${hm}`;
    }
    if (typeof value === 'number') return Number.isInteger(value) ? fmtNum(value) : fmtNum(Math.round(value * 1000) / 1000);
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  function drawProfile(page, box, profile) {
    if (!profile) return;
    if (profile.failed) {
      box.replaceChildren(errorBox(profile.failed));
      return;
    }
    const cards = [];
    const charts = [];
    for (const col of profile.columns || []) {
      const card = el('div', { class: 'profile-col', dataset: { column: col.name } },
        el('h3', {}, el('code', { text: col.name }), ' ', el('span', { class: 'col-type', text: col.type || '' })),
        dl([
          ['Nulls', col.nulls_pct === null || col.nulls_pct === undefined ? null : `${Number(col.nulls_pct).toFixed(1)} %`],
          ['Distinct', fmtValue(col.distinct)],
          ['Min', fmtValue(col.min)],
          ['Max', fmtValue(col.max)],
        ]));
      if (col.histogram && col.histogram.length) {
        const canvas = el('canvas', { 'aria-label': `Histogram of ${col.name}`, role: 'img' });
        card.appendChild(el('div', { class: 'histogram' }, canvas));
        charts.push([canvas, col.histogram]);
      } else if (col.top && col.top.length) {
        const max = Math.max(...col.top.map((t) => t.count || 0), 1);
        card.appendChild(el('ol', { class: 'top-values' }, col.top.map((t) => el('li', {},
          el('span', { class: 'top-value', title: t.value === null ? 'null' : String(t.value) }, cellValue(t.value)),
          el('span', { class: 'top-bar' }, el('span', { style: `width:${Math.round(((t.count || 0) / max) * 100)}%` })),
          el('span', { class: 'num top-count', text: fmtNum(t.count) })))));
      }
      cards.push(card);
    }
    const sampled = profile.sampled && profile.sample_rows ? `, profiled on a sample of ${fmtNum(profile.sample_rows)}` : '';
    box.replaceChildren(el('p', { class: 'muted', text: `${fmtNum(profile.rows)} rows${sampled}` }), el('div', { class: 'profile-grid' }, cards));
    if (!window.Chart) return;
    for (const [canvas, bins] of charts) {
      page.track(new window.Chart(canvas, {
        type: 'bar',
        data: {
          labels: bins.map((b) => `${fmtValue(b.lo)} – ${fmtValue(b.hi)}`),
          datasets: [{ data: bins.map((b) => b.count), backgroundColor: '#84adea', barPercentage: 1, categoryPercentage: 0.95 }],
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => `${fmtNum(item.raw)} rows` } } },
          scales: { x: { display: false }, y: { display: false, beginAtZero: true } },
        },
      }));
    }
  }

  function chartParams(x, ys) {
    const params = new URLSearchParams();
    if (x) params.append('x', x);
    for (const y of ys || []) params.append('y', y);
    return params.toString();
  }

  function drawChartSection(page, base, box, spec, columns) {
    const state = page.state;
    const names = (spec && !spec.failed && spec.columns && spec.columns.length ? spec.columns : columns.map((c) => c.name));
    const yNames = spec && !spec.failed && Array.isArray(spec.numeric) && spec.numeric.length ? spec.numeric : names;
    const current = spec && !spec.failed ? spec : null;
    const xSelect = el('select', { id: 'node-chart-x', 'aria-label': 'x column' },
      el('option', { value: '', text: 'x column…' }),
      names.map((n) => el('option', { value: n, text: n, selected: current ? current.x === n : state.x === n })));
    const ySelect = el('select', { id: 'node-chart-y', multiple: true, size: Math.min(5, Math.max(2, yNames.length)), 'aria-label': 'y columns' },
      yNames.map((n) => el('option', { value: n, text: n, selected: current ? (current.y || []).includes(n) : (state.y || []).includes(n) })));
    const canvasBox = el('div', { class: 'chart-box chart-main', hidden: true });
    const message = el('div', { class: 'chart-message' });
    const kindLabel = el('span', { class: 'muted' });
    let chart = null;

    const draw = (s) => {
      if (chart) { chart.destroy(); chart = null; }
      canvasBox.replaceChildren();
      canvasBox.hidden = true;
      message.replaceChildren();
      kindLabel.textContent = s && !s.failed ? (s.kind === 'line' ? 'time series' : 'categories') : '';
      if (s && s.failed) {
        message.appendChild(errorBox(s.failed, { id: 'node-chart-error' }));
        return;
      }
      if (!s || !s.data) {
        message.appendChild(el('p', { class: 'muted', text: 'Pick an x column and one or more y columns.' }));
        return;
      }
      if (!window.Chart) return;
      const canvas = el('canvas', { role: 'img', 'aria-label': `${(s.y || []).join(', ')} by ${s.x}` });
      canvasBox.appendChild(canvas);
      canvasBox.hidden = false;
      const series = (s.data && s.data.series) || {};
      chart = new window.Chart(canvas, {
        type: s.kind === 'line' ? 'line' : 'bar',
        data: {
          labels: ((s.data && s.data.x) || []).map((v) => (v === null || v === undefined ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v))),
          datasets: Object.entries(series).map(([name, values], i) => ({
            label: name,
            data: values,
            borderColor: STAGE_COLOURS[i % STAGE_COLOURS.length],
            backgroundColor: s.kind === 'line' ? STAGE_COLOURS[i % STAGE_COLOURS.length] : `${STAGE_COLOURS[i % STAGE_COLOURS.length]}cc`,
            pointRadius: s.kind === 'line' && values.length > 60 ? 0 : 2,
            borderWidth: s.kind === 'line' ? 2 : 0,
            tension: 0.15,
          })),
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          interaction: { mode: 'index', intersect: false },
          scales: { x: { title: { display: true, text: s.x || '' }, ticks: { maxTicksLimit: 12, autoSkip: true } }, y: { beginAtZero: s.kind !== 'line' } },
        },
      });
    };
    page.cleanups.push(() => { if (chart) chart.destroy(); chart = null; });

    const update = async () => {
      const x = xSelect.value;
      const ys = [...ySelect.selectedOptions].map((o) => o.value);
      if (!x || !ys.length) return;
      state.x = x;
      state.y = ys;
      setReady('');
      const fresh = await api(`${base}/chart?${chartParams(x, ys)}`).catch((e) => ({ failed: e }));
      if (!page.alive()) return;
      draw(fresh);
      setReady('node');
    };
    xSelect.addEventListener('change', update);
    ySelect.addEventListener('change', update);

    box.replaceChildren(
      el('div', { class: 'toolbar chart-controls' },
        el('label', {}, 'x ', xSelect),
        el('label', {}, 'y ', ySelect),
        kindLabel),
      message, canvasBox);
    draw(spec);
  }

  // ---- SQL -------------------------------------------------------------------------------------

  const SQL_KEY = 'sbdk-ui-sql';

  async function renderSql(page) {
    let saved = '';
    try { saved = localStorage.getItem(SQL_KEY) || ''; } catch (exc) { saved = ''; }
    const input = el('textarea', {
      id: 'sql-input', spellcheck: 'false', rows: 8, placeholder: 'select * from main.daily_kpis order by 1 desc', 'aria-label': 'SQL query',
    });
    input.value = saved;
    const limit = el('input', { id: 'sql-limit', type: 'number', min: '1', step: '1', value: '1000', 'aria-label': 'Row cap' });
    const runButton = el('button', { type: 'button', id: 'sql-run', class: 'primary', text: 'Run' });
    const csvButton = el('button', { type: 'button', id: 'sql-csv', text: 'Download CSV' });
    const errorEl = el('div', { id: 'sql-error', class: 'error', role: 'alert', hidden: true });
    const result = el('div', { id: 'sql-result' });
    const status = el('span', { class: 'muted', id: 'sql-status' });

    const body = () => ({ sql: input.value, limit: Math.max(1, parseInt(limit.value, 10) || 1000) });
    const showError = (err) => {
      const e = normalizeError(err);
      errorEl.replaceChildren(el('strong', { class: 'error-message', text: e.error }), e.hint ? el('div', { class: 'error-hint', text: e.hint }) : null);
      errorEl.hidden = false;
    };
    const busy = (on, text) => {
      runButton.disabled = on;
      csvButton.disabled = on;
      status.textContent = text || '';
    };

    const run = async () => {
      if (!input.value.trim()) return;
      try { localStorage.setItem(SQL_KEY, input.value); } catch (exc) { /* private mode */ }
      setReady('');
      busy(true, 'running…');
      errorEl.hidden = true;
      try {
        const res = await api('/api/query', postJson(body()));
        if (!page.alive()) return;
        const count = (res.rows || []).length;
        result.replaceChildren(
          el('p', { class: 'result-meta' },
            `${fmtNum(count)} ${count === 1 ? 'row' : 'rows'} in ${fmtSeconds(res.seconds)}`,
            res.truncated ? el('span', { class: 'truncated', text: ` · truncated to ${fmtNum(res.limit)} rows` }) : null),
          dataTable(res));
      } catch (err) {
        if (!page.alive()) return;
        result.replaceChildren();
        showError(err);
      } finally {
        busy(false);
        if (page.alive()) setReady('sql');
      }
    };

    const downloadCsv = async () => {
      if (!input.value.trim()) return;
      errorEl.hidden = true;
      busy(true, 'preparing CSV…');
      try {
        const res = await fetch('/api/query.csv', { ...postJson(body()), headers: { 'Content-Type': 'application/json', Accept: 'text/csv' } });
        if (!res.ok) {
          let payload = null;
          try { payload = await res.json(); } catch (exc) { payload = null; }
          throw new ApiError(res.status, payload || { error: `${res.status} ${res.statusText}` });
        }
        const blob = await res.blob();
        const disposition = res.headers.get('content-disposition') || '';
        const match = /filename="?([^";]+)"?/i.exec(disposition);
        const url = URL.createObjectURL(blob);
        const link = el('a', { href: url, download: match ? match[1] : 'query.csv', hidden: true });
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (err) {
        if (page.alive()) showError(err);
      } finally {
        busy(false);
      }
    };

    runButton.addEventListener('click', run);
    csvButton.addEventListener('click', downloadCsv);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        run();
      }
    });

    page.mount(el('div', { class: 'page page-sql' },
      el('h1', { text: 'SQL' }),
      el('p', { class: 'muted', text: 'Read-only queries on the project database. Ctrl+Enter (⌘+Enter) runs.' }),
      section(null, { class: 'card sql-editor' },
        input,
        el('div', { class: 'toolbar' }, runButton, el('label', {}, 'row cap ', limit), csvButton, status)),
      errorEl,
      result));
    input.focus();
  }

  function renderNotFound(page) {
    page.mount(el('div', { class: 'page' }, el('h1', { text: 'Not found' }),
      el('p', {}, 'No page at ', el('code', { text: location.hash }), '. ', el('a', { href: '#/', text: 'Back to the overview' }))));
  }

  // ---- start ---------------------------------------------------------------------------------

  window.addEventListener('hashchange', navigate);
  renderLive();
  navigate();
  // The project's name in the header and the title, whichever page was opened first.
  api('/api/project').then((data) => {
    document.getElementById('brand-project').textContent = data.project || '';
    document.title = data.project ? `${data.project} · sbdk` : 'sbdk';
  }).catch(() => {});
  // The event stream waits for the libraries so the first page's request goes out first.
  libsReady.then(connectEvents);
})();
