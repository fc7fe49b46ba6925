// The svcid operations console. Fetches the daemon's JSON (/console/api and its views) every
// few seconds and renders it with DOM calls and textContent only: nothing that came from the
// wire or a file is ever parsed as HTML. No framework, no external asset, no build step.
'use strict';

(function () {
  const REFRESH_MS = 3000;
  /** Engines asked for per refresh; the JSON says how many matched in all. */
  const ENGINE_LIMIT = 200;
  let refreshTimer = null;
  let renders = 0;
  let engineCounts = {};

  function byId(id) {
    return document.getElementById(id);
  }

  /** An element with a class and children (strings become text nodes, never markup). */
  function el(tag, className, ...children) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  /** A table row of cells; each cell a string or an element. */
  function row(cells) {
    const tr = document.createElement('tr');
    for (const cell of cells) {
      tr.append(cell instanceof Node && cell.nodeName === 'TD' ? cell : el('td', null, cell));
    }
    return tr;
  }

  function pair(term, value) {
    return el('div', null, el('dt', null, term), el('dd', null, value));
  }

  /** "5 s ago", "3 min ago", … measured on the daemon's clock (`now`), not the browser's. */
  function ago(when, now) {
    if (!when) return 'never';
    const seconds = Math.max(0, Math.round((Date.parse(now) - Date.parse(when)) / 1000));
    if (!Number.isFinite(seconds)) return String(when);
    if (seconds < 90) return seconds + ' s ago';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min ago';
    if (seconds < 172800) return Math.round(seconds / 3600) + ' h ago';
    return Math.round(seconds / 86400) + ' d ago';
  }

  /** A time cell: relative text, the exact time as its tooltip. */
  function timeCell(when, now) {
    const td = el('td', null, ago(when, now));
    if (when) td.title = String(when);
    return td;
  }

  function duration(seconds) {
    const d = Math.floor(seconds / 86400);
    const h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + s + 's';
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: 'no-store', credentials: 'same-origin', redirect: 'error' });
    const body = await response.json();
    if (!response.ok) throw new Error(path + ': ' + (body.message || response.status));
    return body;
  }

  function renderViewer(viewer) {
    byId('viewer').hidden = !viewer;
    if (!viewer) return;
    byId('viewer-name').textContent = viewer.name;
    const roles = viewer.roles || [];
    byId('viewer-roles').textContent = roles.length ? '(roles: ' + roles.join(', ') + ')' : '(no roles)';
    byId('logout').hidden = !viewer.logout;
  }

  function renderOverview(overview) {
    const now = overview.now;
    renderViewer(overview.viewer);
    byId('module').textContent = overview.module;
    document.title = overview.module + ' · svcid console';
    const sections = overview.sections || {};
    const configuration = sections.configuration || {};
    const reload = configuration.lastReload || {};
    const build = [
      pair('module', overview.module),
      pair('version', overview.version),
      pair('up', duration(overview.uptimeSeconds)),
      pair('started', overview.started),
      pair('last reload', reload.result === 'none' || !reload.result
        ? 'none since start'
        : reload.result + ' ' + ago(reload.at, now)),
    ];
    if (configuration.reloadsFailed > 0) {
      build.push(pair('failed reloads', String(configuration.reloadsFailed)));
    }
    byId('build').replaceChildren(...build);

    const registration = sections.registration;
    byId('registration-section').hidden = !registration;
    if (registration) {
      const items = [
        pair('engine id', registration.engineId || '—'),
        pair('status', registration.registered ? 'registered' : 'not registered'),
        pair('DPM', registration.dpmUrl || '—'),
        pair('since', ago(registration.since, now)),
      ];
      if (registration.lastError) items.push(pair('last error', registration.lastError));
      byId('registration').replaceChildren(...items);
    }

    const trust = sections.trust || { trusted: [] };
    byId('signing-kid').textContent = (trust.signing && trust.signing.kid) || '—';
    const trustRows = [];
    for (const deployment of trust.trusted || []) {
      for (const key of deployment.keys || []) {
        const revoked = el('td', key.revoked ? 'revoked' : null, key.revoked ? 'REVOKED' : 'no');
        const used = timeCell(key.lastUsed, now);
        if (key.usedRecently) used.className = 'recent';
        trustRows.push(row([
          deployment.deployment,
          deployment.module,
          (deployment.roles || []).join(', '),
          key.name,
          el('td', 'id', key.fingerprint),
          revoked,
          used,
        ]));
      }
    }
    if (trustRows.length === 0) trustRows.push(row(['no trusted deployment', '', '', '', '', '', '']));
    byId('trust').tBodies[0].replaceChildren(...trustRows);

    const refusals = sections.refusals || { rows: [] };
    byId('refusals-note').textContent = 'Calls refused with UNAUTHENTICATED since start, by reason, '
      + 'the deployment the token\'s kid names (- for none) and the peer\'s address; '
      + (refusals.total || 0) + ' in all (the same counts as svcid_authentications_refused_total).';
    const refusalRows = (refusals.rows || []).map((r) => row([
      r.reason, r.deployment, el('td', 'id', r.peer), String(r.count), timeCell(r.last, now),
    ]));
    if (refusalRows.length === 0) refusalRows.push(row(['none', '', '', '', '']));
    byId('refusals').tBodies[0].replaceChildren(...refusalRows);

    const links = (overview.views || []).map((view) => {
      const a = el('a', null, '/console/api/' + view);
      a.href = '/console/api/' + encodeURIComponent(view);
      return el('span', null, ' · ', a);
    });
    byId('view-links').replaceChildren(...links);
  }

  function engineQuery() {
    const params = new URLSearchParams();
    const status = byId('status-filter').value;
    const q = byId('id-filter').value.trim();
    if (status) params.set('status', status);
    if (q) params.set('q', q);
    params.set('sort', byId('sort').value);
    params.set('limit', String(ENGINE_LIMIT));
    return params.toString();
  }

  function renderCounts(counts, total) {
    engineCounts = counts || {};
    const active = byId('status-filter').value;
    const buttons = [['', 'all', total]].concat(
      ['READY', 'NEW', 'DISCONNECTED'].map((s) => [s, s, engineCounts[s] || 0]));
    byId('engine-counts').replaceChildren(...buttons.map(([value, label, count]) => {
      const button = el('button', value === active ? 'active' : null,
        value ? el('span', 'status status-' + value, label) : label, ' ', String(count));
      button.type = 'button';
      button.dataset.status = value;
      button.addEventListener('click', () => {
        byId('status-filter').value = value;
        refresh();
      });
      return button;
    }));
  }

  function renderEngines(view, now) {
    renderCounts(view.counts, view.total);
    const table = byId('engines');
    table.classList.toggle('replicated', Array.isArray(view.replicas));
    const rows = (view.engines || []).map((engine) => {
      const status = el('td', null, el('span', 'status status-' + engine.status, engine.status));
      const tr = row([
        el('td', 'id', engine.id),
        engine.address,
        status,
        timeCell(engine.statusSince, now),
        timeCell(engine.lastSeen, now),
        el('td', 'id', engine.registeredBy),
        el('td', 'constraints', engine.constraints),
        el('td', 'replica-column id', engine.checkedBy || '—'),
      ]);
      tr.dataset.status = engine.status;
      return tr;
    });
    if (rows.length === 0) {
      const td = el('td', 'muted', view.pending ? 'loading the fleet…' : 'no engine matches');
      td.colSpan = 8;
      rows.push(el('tr', null, td));
    }
    table.tBodies[0].replaceChildren(...rows);
    byId('engine-shown').textContent = 'showing ' + (view.engines || []).length + ' of '
      + view.matched + ' matching (' + view.total + ' engines)';

    const replicas = Array.isArray(view.replicas) ? view.replicas : null;
    byId('replicas-block').hidden = !replicas;
    if (replicas) {
      byId('replicas').tBodies[0].replaceChildren(...replicas.map((r) => row([
        el('td', 'id', r.id + (r.this ? ' (this one)' : '')),
        timeCell(r.started, now),
        r.leaseUntil ? String(r.leaseUntil) : '—',
        String(r.engines),
      ])));
    }
  }

  let lastNow = null;
  async function refreshEngines() {
    const view = await getJson('/console/api/engines?' + engineQuery());
    renderEngines(view, view.asOf || lastNow);
  }

  async function refresh() {
    clearTimeout(refreshTimer);
    try {
      const overview = await getJson('/console/api');
      lastNow = overview.now;
      renderOverview(overview);
      const hasEngines = (overview.views || []).includes('engines');
      byId('engines-section').hidden = !hasEngines;
      if (hasEngines) await refreshEngines();
      byId('error').hidden = true;
      byId('refreshed').textContent = 'updated ' + new Date().toLocaleTimeString()
        + ', every ' + REFRESH_MS / 1000 + ' s';
      renders += 1;
      document.documentElement.dataset.renders = String(renders);
      // For measurements (BENCHMARKS.md): the first complete render, on the page's own clock.
      if (renders === 1) performance.mark('console-rendered');
    } catch (error) {
      const banner = byId('error');
      banner.textContent = 'Cannot read the daemon: ' + error.message + ' (retrying).';
      banner.hidden = false;
    } finally {
      refreshTimer = setTimeout(refresh, REFRESH_MS);
    }
  }

  function start() {
    let typing = null;
    byId('filters').addEventListener('submit', (event) => event.preventDefault());
    byId('status-filter').addEventListener('change', refresh);
    byId('sort').addEventListener('change', refresh);
    byId('id-filter').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(refresh, 250);
    });
    refresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
