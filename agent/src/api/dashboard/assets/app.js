// Berth's dashboard: reads the lists of /berth/v1/, follows /berth/v1/events and posts the
// three actions (scale, node availability, rollback). Every string from the API is user input
// (names, labels, images, messages): it reaches the page only as text nodes and attribute
// values set through the DOM, never as markup.
'use strict';

// Relative to /dashboard/, so the page also works behind a path prefix (/v1.41/dashboard/).
const API = '../berth/v1';
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const CLUSTER_REFRESH_MS = 10000;
const NOTICE_MS = 8000;

const state = {
  cluster: null,
  nodes: new Map(),
  services: new Map(),
  tasks: new Map(),
};

// ---- DOM helpers -----------------------------------------------------------------------

/** An element with attributes (strings; `class`, `data-*`, `title`, ...) and children
 *  (nodes, or strings that become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function $(id) {
  return document.getElementById(id);
}

let noticeTimer = null;

/** A message under the header; errors stay until the next message, others fade. */
function notice(text, isError) {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = isError ? 'error' : 'info';
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, isError ? NOTICE_MS * 2 : NOTICE_MS);
}

// ---- API -------------------------------------------------------------------------------

async function call(method, path, body) {
  const init = { method, cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(API + path, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.message || `${r.status} ${r.statusText}`);
  return data;
}

function byId(list) {
  return new Map(list.map((o) => [o.id, o]));
}

let loading = null;

/** Reads every list again; used at start and after each (re)connect of the event stream,
 *  because removals that happened while disconnected are not replayed. */
function reload() {
  if (!loading) {
    loading = Promise.all([
      call('GET', '/cluster'), call('GET', '/nodes'), call('GET', '/services'), call('GET', '/tasks'),
    ]).then(([cluster, nodes, services, tasks]) => {
      state.cluster = cluster;
      state.nodes = byId(nodes);
      state.services = byId(services);
      state.tasks = byId(tasks);
      document.body.dataset.loaded = 'true';
      render();
    }).catch((e) => notice(`Cannot read the cluster: ${e.message}`, true))
      .finally(() => { loading = null; });
  }
  return loading;
}

let clusterTimer = null;

/** Reads the cluster summary again, at most once a second: node events come in bursts (every
 *  task that starts or stops changes its node's running count). */
function refreshCluster() {
  if (clusterTimer !== null) return;
  clusterTimer = setTimeout(() => {
    clusterTimer = null;
    call('GET', '/cluster').then((c) => { state.cluster = c; renderHeader(); }).catch(() => {});
  }, 1000);
}

// ---- event stream ----------------------------------------------------------------------

let source = null;
let retryMs = RETRY_MIN_MS;
let retryTimer = null;

function setConn(s) {
  const c = $('conn');
  c.dataset.state = s;
  c.textContent = s;
}

function connect() {
  clearTimeout(retryTimer);
  if (source) source.close();
  setConn('connecting');
  const es = new EventSource(API + '/events');
  source = es;
  es.onopen = () => {
    retryMs = RETRY_MIN_MS;
    setConn('live');
    reload();
  };
  es.onerror = () => {
    if (es !== source) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gives up on answers other than a 200 stream (a 503 while the manager has
      // no leader or is restarting): try again ourselves, backing off.
      setConn('offline');
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    } else {
      setConn('reconnecting');
    }
  };
  for (const kind of ['node', 'service', 'task']) {
    es.addEventListener(kind, (e) => apply(kind, e));
  }
}

function apply(kind, e) {
  let d;
  try {
    d = JSON.parse(e.data);
  } catch (_) {
    return;
  }
  const map = { node: state.nodes, service: state.services, task: state.tasks }[kind];
  if (d.action === 'remove') map.delete(d.id);
  else map.set(d.id, d.object);
  if (kind === 'node') refreshCluster();
  scheduleRender();
}

// ---- rendering -------------------------------------------------------------------------

let renderTimer = null;

/** Coalesces the events of one Raft index (often dozens) into one render. */
function scheduleRender() {
  if (renderTimer === null) renderTimer = setTimeout(render, 50);
}

function render() {
  clearTimeout(renderTimer);
  renderTimer = null;
  renderHeader();
  renderNodes();
  renderServices();
  renderBoard();
  renderStacks();
}

function hostname(nodeId) {
  const n = state.nodes.get(nodeId);
  return n ? n.hostname || n.id.slice(0, 12) : (nodeId || '').slice(0, 12);
}

function renderHeader() {
  const c = state.cluster;
  if (!c) return;
  const parts = [`cluster ${c.id.slice(0, 12)}`];
  if (c.leader) parts.push(`leader ${hostname(c.leader)}`);
  parts.push(`${state.nodes.size} nodes`, `${state.services.size} services`, `Raft term ${c.raft.term}`);
  $('cluster').textContent = parts.join(' · ');
}

function sortBy(list, key) {
  return list.sort((a, b) => key(a).localeCompare(key(b)));
}

/** Keeps one row per key in `tbody` (so inputs and focus survive updates), in list order.
 *  `make(item)` builds a new row's cells once; `fill(row, item)` updates them. */
function syncRows(tbody, items, make, fill) {
  const rows = tbody.rows_ || (tbody.rows_ = new Map());
  const keep = new Set();
  items.forEach((item, i) => {
    let row = rows.get(item.id);
    if (!row) {
      row = el('tr', {}, make(item));
      rows.set(item.id, row);
    }
    keep.add(item.id);
    fill(row, item);
    if (tbody.children[i] !== row) tbody.insertBefore(row, tbody.children[i] || null);
  });
  for (const [k, row] of rows) {
    if (!keep.has(k)) {
      row.remove();
      rows.delete(k);
    }
  }
}

/** Sets the text of cell `i` (and its title) when it changed. */
function text(row, i, value, title) {
  const cell = row.cells[i];
  const v = value === undefined || value === null ? '' : String(value);
  if (cell.textContent !== v) cell.textContent = v;
  if (title) cell.title = title;
  else cell.removeAttribute('title');
  return cell;
}

function bytes(n) {
  if (!n) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function cpus(nano) {
  return nano ? String(Math.round(nano / 1e7) / 100) : '';
}

function renderNodes() {
  const nodes = sortBy([...state.nodes.values()], (n) => n.hostname || n.id);
  syncRows($('nodes').tBodies[0], nodes, (n) => {
    const cells = Array.from({ length: 8 }, () => el('td'));
    const button = el('button', { type: 'button', 'data-node-action': n.hostname });
    button.addEventListener('click', () => {
      const target = button.dataset.target;
      act(button, `/nodes/${encodeURIComponent(n.id)}/availability`, { availability: target },
        `${target === 'drain' ? 'Draining' : 'Activating'} ${n.hostname}`, state.nodes);
    });
    return [...cells, el('td', { class: 'actions' }, button)];
  }, (row, n) => {
    row.dataset.node = n.hostname;
    row.dataset.availability = n.availability || '';
    const name = text(row, 0, n.hostname || n.id.slice(0, 12), n.id);
    if (n.leader) name.append(' ', el('span', { class: 'badge leader' }, 'leader'));
    text(row, 1, n.role);
    const st = text(row, 2, n.state, n.message);
    st.className = `state-${n.state || 'unknown'}`;
    const av = text(row, 3, n.availability);
    av.className = `avail-${n.availability || 'unknown'}`;
    text(row, 4, cpus(n.resources.nano_cpus));
    text(row, 5, bytes(n.resources.memory_bytes));
    text(row, 6, n.engine_version);
    text(row, 7, n.running_tasks);
    const button = row.cells[8].firstChild;
    const target = n.availability === 'drain' || n.availability === 'pause' ? 'active' : 'drain';
    button.dataset.target = target;
    button.textContent = target === 'drain' ? 'Drain' : 'Activate';
  });
}

function ports(s) {
  return s.ports.map((p) => `${p.published_port || ''}:${p.target_port || ''}/${p.protocol || 'tcp'}`
    + (p.publish_mode === 'host' ? ' (host)' : '')).join(', ');
}

function userLabels(s) {
  return Object.entries(s.labels).filter(([k]) => !k.startsWith('com.docker.'))
    .map(([k, v]) => `${k}=${v}`).join(', ');
}

function image(s) {
  return (s.image || '').replace(/@sha256:[0-9a-f]+$/, '');
}

function replicas(s) {
  const r = s.replicas;
  return `${r.running}/${r.desired}` + (s.mode.endsWith('job') ? ` (${r.completed} completed)` : '');
}

function renderServices() {
  const services = sortBy([...state.services.values()], (s) => s.name);
  $('no-services').hidden = services.length > 0;
  syncRows($('services').tBodies[0], services, (s) => {
    const cells = Array.from({ length: 8 }, () => el('td'));
    const input = el('input', {
      type: 'number', min: '0', step: '1', 'aria-label': `replicas of ${s.name}`,
      'data-scale-input': s.name,
    });
    input.addEventListener('input', () => { input.dataset.dirty = 'true'; });
    const scale = el('button', { type: 'button', 'data-scale': s.name }, 'Scale');
    const doScale = () => {
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0) {
        notice(`Replicas must be a whole number, not "${input.value}"`, true);
        return;
      }
      act(scale, `/services/${encodeURIComponent(s.id)}/scale`, { replicas: n },
        `Scaling ${s.name} to ${n}`, state.services).then((ok) => {
        if (ok) delete input.dataset.dirty;
      });
    };
    scale.addEventListener('click', doScale);
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') doScale(); });
    const rollback = el('button', { type: 'button', 'data-rollback': s.name }, 'Roll back');
    rollback.addEventListener('click', () => {
      act(rollback, `/services/${encodeURIComponent(s.id)}/rollback`, {},
        `Rolling ${s.name} back`, state.services);
    });
    return [...cells, el('td', { class: 'actions' }, input, scale, rollback)];
  }, (row, s) => {
    row.dataset.service = s.name;
    text(row, 0, s.name, s.id);
    text(row, 1, s.stack);
    text(row, 2, s.mode);
    text(row, 3, image(s), s.image);
    const rep = text(row, 4, replicas(s));
    rep.className = s.replicas.running < s.replicas.desired ? 'converging' : '';
    const u = s.update_status;
    text(row, 5, u ? u.state : '', u ? u.message : '');
    text(row, 6, ports(s));
    text(row, 7, userLabels(s));
    const [input, scale] = row.cells[8].children;
    const scalable = s.mode === 'replicated' || s.mode === 'replicated-job';
    input.disabled = !scalable;
    scale.disabled = !scalable;
    if (!input.dataset.dirty && document.activeElement !== input) {
      input.value = String(s.replicas.desired);
    }
  });
}

/** Tasks that belong on the board: those the orchestrator wants running (and job tasks not
 *  finished yet); tasks being shut down leave it, as in swarm-visualizer. */
function onBoard(t) {
  return t.desired_state === 'running' || (t.desired_state === 'complete' && t.state !== 'complete');
}

/** A stable colour per service, so one service's tasks are easy to follow across nodes. */
function hue(name) {
  let h = 0;
  for (const ch of name || '') h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

const STATE_CLASS = {
  running: 'ok', complete: 'ok', failed: 'bad', rejected: 'bad', orphaned: 'bad',
};

function card(t) {
  const c = el('div', {
    class: `task ${STATE_CLASS[t.state] || 'pending'}`,
    'data-task': t.id,
    'data-service': t.service_name || '',
    'data-state': t.state || '',
    title: [t.id, t.message, t.error].filter(Boolean).join('\n'),
  }, el('span', { class: 'task-name' }, t.name), el('span', { class: 'task-state' }, t.state || 'new'));
  c.style.setProperty('--hue', String(hue(t.service_name)));
  return c;
}

function renderBoard() {
  const columns = new Map();
  const nodes = sortBy([...state.nodes.values()], (n) => n.hostname || n.id);
  for (const n of nodes) columns.set(n.id, []);
  const unassigned = [];
  for (const t of state.tasks.values()) {
    if (!onBoard(t)) continue;
    const col = t.node_id && columns.get(t.node_id);
    if (col) col.push(t);
    else unassigned.push(t);
  }
  const board = [];
  for (const n of nodes) {
    const tasks = sortBy(columns.get(n.id), (t) => t.name);
    board.push(el('div', {
      class: `column avail-${n.availability || 'unknown'} state-${n.state || 'unknown'}`,
      'data-column': n.hostname,
    },
    el('h3', {}, n.hostname || n.id.slice(0, 12)),
    el('div', { class: 'muted' }, [n.role, n.state, n.availability].filter(Boolean).join(' · ')),
    tasks.map(card)));
  }
  if (unassigned.length) {
    board.push(el('div', { class: 'column', 'data-column': '' },
      el('h3', {}, 'not assigned'), sortBy(unassigned, (t) => t.name).map(card)));
  }
  $('board').replaceChildren(...board);
}

function renderStacks() {
  const stacks = new Map();
  for (const s of state.services.values()) {
    if (!s.stack) continue;
    if (!stacks.has(s.stack)) stacks.set(s.stack, { id: s.stack, services: [] });
    stacks.get(s.stack).services.push(s);
  }
  const list = sortBy([...stacks.values()], (s) => s.id);
  $('no-stacks').hidden = list.length > 0;
  syncRows($('stacks').tBodies[0], list, () => [el('td'), el('td'), el('td')], (row, st) => {
    row.dataset.stack = st.id;
    const services = sortBy(st.services, (s) => s.name);
    text(row, 0, st.id);
    text(row, 1, services.map((s) => s.name).join(', '));
    const running = services.reduce((a, s) => a + s.replicas.running, 0);
    const desired = services.reduce((a, s) => a + s.replicas.desired, 0);
    text(row, 2, `${running}/${desired}`);
  });
}

// ---- actions ---------------------------------------------------------------------------

/** Posts an action with `button` disabled meanwhile; the answer (the object after the
 *  change) goes into `map` at once, the event stream brings the rest. */
async function act(button, path, body, what, map) {
  button.disabled = true;
  try {
    const obj = await call('POST', path, body);
    if (obj && obj.id) map.set(obj.id, obj);
    notice(`${what}: done`, false);
    render();
    return true;
  } catch (e) {
    notice(`${what}: ${e.message}`, true);
    return false;
  } finally {
    button.disabled = false;
  }
}

// ---- start -----------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  connect();
  setInterval(refreshCluster, CLUSTER_REFRESH_MS);
});
