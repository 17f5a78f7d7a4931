// The Replikit demo dashboard. It uses the package exactly as an app would: `createClient` with public options,
// `db.topology()`, events, and a collection. The one wrapper is the public `fetch` option: it records which node
// answered each request (X-Replikit-Node) for the chart, and fails every request while "Client offline" is on.
// /config.json says which dev cluster runs: primary-replica (the gateway over PostgreSQL, `npm start`) or
// multi-primary (CouchDB-protocol nodes that all take writes, `npm run start:couchdb`).
import { createClient, version } from '/replikit/index.js';
import { TrafficChart } from './chart.js';
import { TopologyView } from './topology.js';
// What a server sends (node ids, versions, headers, states) is written with textContent or as DOM nodes (dom.js),
// never into innerHTML: a hostile node id shows as text.
import { h } from './dom.js';

const $ = (id) => document.getElementById(id);
const PALETTE = ['var(--n0)', 'var(--n1)', 'var(--n2)', '#ae3ec9', '#1098ad', '#74b816'];

const config = await (await fetch('/config.json')).json();
const multi = config.topology === 'multi-primary';
const nodeIds = config.nodes.map((n) => n.nodeId);
const nodeOfUrl = new Map(config.nodes.map((n) => [new URL(n.url).origin, n.nodeId]));
const colorOf = (nodeId) => PALETTE[nodeIds.indexOf(nodeId) % PALETTE.length] ?? '#888';

let offline = false;
const chart = new TrafficChart({ read: $('chart-reads'), write: $('chart-writes') }, nodeIds, colorOf);
const lastServed = { read: $('last-read'), write: $('last-write') };

/** The client's fetch: the network, unless the dashboard took the client offline; records who answered. */
async function dashboardFetch(input, init) {
  if (offline) throw new TypeError('offline (dashboard toggle)');
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const [kind, prep] = multi ? couchKind(url, method) : [url.pathname === '/v1/health' ? null : method === 'GET' ? 'read' : 'write', false];
  try {
    const response = await fetch(input, init);
    const node = response.headers.get('x-replikit-node') ?? nodeOfUrl.get(url.origin) ?? null;
    const ok = response.status < 500 && response.status !== 421;
    if (kind && !(prep && ok)) {
      chart.record(kind, node, ok);
      if (ok) lastServed[kind].replaceChildren('last from ', h('b', { style: `color:${colorOf(node)}` }, node ?? '?'));
    }
    return response;
  } catch (e) {
    if (kind && !offline) chart.record(kind, null, false);
    throw e;
  }
}

/**
 * CouchDB protocol: `GET /{db}` is the health check; a write is `GET ?revs=true` (or `?open_revs` when settling a
 * conflict) then `POST _bulk_docs`, charted once, as the POST (the GET only when it fails). [kind, prep].
 */
function couchKind(url, method) {
  if (method === 'GET' && url.pathname === `/${config.database}`) return [null, false];
  if (method !== 'GET') return ['write', false];
  return url.searchParams.has('revs') || url.searchParams.has('open_revs') ? ['write', true] : ['read', false];
}

const common = {
  health: { intervalMs: 250, timeoutMs: 500 },
  requestTimeoutMs: 1500,
  primaryWaitMs: 2000, // how long a write waits for a primary (multi-primary: any writable node) before it is queued offline
  offline: { queueWrites: true },
  cache: { name: `replikit-demo-${config.runId}` },
  fetch: dashboardFetch,
  headers: config.headers ?? {}, // the credentials the cluster's nodes require (from /config.json, same origin only)
};
const db = await createClient(multi
  // Every node takes writes: no roles; readPreference is 'nearest' (the default) and durability does not apply.
  ? { topology: 'multi-primary', protocol: config.protocol, database: config.database, endpoints: config.nodes.map((n) => ({ url: n.url })), ...common }
  : { endpoints: config.nodes.map((n, i) => ({ url: n.url, role: i === 0 ? 'primary' : 'replica' })), ...common });
$('version').textContent = version();
const notes = db.collection('notes');
const traffic = db.collection('traffic');

/** A version as shown: the counter (`v7`), or a CouchDB revision shortened (`rev 3-9f2c1a`, full in the title). */
const shortVersion = (v) => (typeof v === 'string' ? `rev ${v.slice(0, v.indexOf('-') + 7)}` : `v${v}`);

// Multi-primary: the node that took this session's last write. The client keeps writing (and reading) there while
// it is up, else it picks the nearest writable node. Known from each write's result (`meta.endpoint`).
let sessionUrl = null;
function wrote(doc) {
  if (!multi || !doc?.meta?.endpoint || doc.meta.pending || doc.meta.endpoint === sessionUrl) return;
  sessionUrl = doc.meta.endpoint;
  renderTopology(false);
}

if (multi) {
  $('mode').hidden = false;
  $('mode').textContent = `multi-primary · ${config.protocol === 'couchdb' ? 'CouchDB' : config.protocol} · every node takes writes`;
  $('subtitle').textContent = 'a CRUD client in your browser, against a live multi-primary cluster of PouchDB Server nodes';
  $('autofailover-toggle').hidden = true; // nothing is ever promoted
  $('topology').classList.add('multi'); // no term, no lag: CouchDB has neither
  $('position-head').textContent = 'Update seq';
  $('notes-hint').innerHTML = `The collection <code>notes</code> in the database <code></code>: writes go to the nearest node, then stay (reads too) on the node that took the session's last write while it is up.`;
  $('notes-hint').querySelectorAll('code')[1].textContent = config.database;
}

// ---- Event log -------------------------------------------------------------------------------------------
const events = $('events');
function log(kind, message) {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  const t = new Date();
  const time = `${t.toTimeString().slice(0, 8)}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  li.innerHTML = `<time>${time}</time><span class="kind ${kind}"></span><span class="msg"></span>`;
  li.children[1].textContent = kind;
  li.children[2].textContent = message;
  events.prepend(li);
  while (events.children.length > 200) events.lastChild.remove();
}
$('clear-events').onclick = () => events.replaceChildren();
const node = (url) => nodeOfUrl.get(url && new URL(url).origin) ?? url ?? 'none';
const what = (w) => `${w.kind} ${w.collection}/${w.id.slice(-8)}`;
db.on('primary', ({ url, term }) => log('primary', url ? `writes now go to ${node(url)} (term ${term})` : 'no usable primary'));
db.on('endpointDown', (e) => log('endpointDown', `${node(e.url)} is down${e.lastError ? `: ${e.lastError}` : ''}`));
db.on('endpointUp', (e) => log('endpointUp', multi ? `${node(e.url)} is up (${e.writable ? 'writable' : e.role ?? '?'})` : `${node(e.url)} is up (${e.role ?? '?'}, term ${e.term ?? '?'})`));
db.on('retry', (r) => log('retry', `attempt ${r.attempt} after ${r.error.code} from ${node(r.endpoint)}`));
db.on('queued', (w) => { log('queued', `${what(w)} queued offline`); refreshPending(); });
db.on('synced', (w) => {
  if (multi) {
    wrote(w.doc);
    log('synced', `${what(w)} reached ${w.doc?.meta.endpoint ? node(w.doc.meta.endpoint) : 'the cluster'}${w.doc ? ` (${shortVersion(w.doc.version)})` : ''}`);
  } else log('synced', `${what(w)} reached the primary${w.doc ? ` (v${w.doc.version})` : ''}`);
  refreshPending();
  scheduleList();
});
db.on('conflict', (w) => {
  if (w.source === 'revisions') {
    // Multi-primary: concurrent writes on different nodes became conflicting revisions, settled by this read.
    const versions = w.versions.map((v) => shortVersion(v.version).replace('rev ', '')).join(', ');
    log('conflict', `${w.collection}/${w.id.slice(-8)}: ${w.versions.length} revisions (${versions}), ${w.resolution} ${shortVersion(w.doc.version)}`);
  } else log('conflict', `${what(w)}: ${w.resolution}`);
  scheduleList();
});
db.on('syncFailed', (w) => { log('syncFailed', `${what(w)}: ${w.error.code}`); refreshPending(); scheduleList(); });
db.on('syncPaused', (w) => { log('syncPaused', `${what(w)}: ${w.error.code}, outbox kept`); refreshPending(); });
db.on('storageError', (e) => log('storageError', e.message));

// ---- Topology and operator controls ----------------------------------------------------------------------
const table = new TopologyView($('topology').tBodies[0], config.nodes, colorOf, operate, multi);
let status = null;

async function admin(path, body) {
  // The custom header makes any cross-site attempt a CORS preflight the demo server never grants.
  const r = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'x-replikit-demo': '1' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(json.error?.message ?? `HTTP ${r.status}`);
  return json;
}

async function operate(nodeId, action, button) {
  button.classList.add('busy');
  button.disabled = true;
  const started = performance.now();
  log('operator', `${action} ${nodeId}…`);
  try {
    const r = await admin(`/admin/nodes/${nodeId}/${action}`, {});
    const took = r.tookMs ?? Math.round(performance.now() - started);
    log('operator', `${action} ${nodeId}: done in ${took} ms`);
  } catch (e) {
    log('error', `${action} ${nodeId}: ${e.message}`);
  } finally {
    button.classList.remove('busy');
    await pollStatus();
  }
}

async function pollStatus() {
  try {
    status = await admin('/admin/status');
  } catch {
    status = null;
  }
  table.updateServer(status);
  const af = $('autofailover-toggle');
  af.classList.toggle('on', !!status?.autoFailover);
  af.setAttribute('aria-pressed', String(!!status?.autoFailover));
  af.textContent = `Auto-failover ${status?.autoFailover ? 'on' : 'off'}`;
}

$('autofailover-toggle').onclick = async () => {
  const enabled = !status?.autoFailover;
  try {
    await admin('/admin/auto-failover', { enabled });
    log('operator', `auto-failover ${enabled ? 'on: a replica is promoted after the primary is down for 3 s' : 'off'}`);
  } catch (e) {
    log('error', `auto-failover: ${e.message}`);
  }
  await pollStatus();
};

function renderTopology(sample) {
  const topology = db.topology();
  const pill = $('current-primary');
  if (multi) {
    table.updateClient(topology, sample, sessionUrl);
    const writable = topology.filter((e) => e.writable);
    const session = writable.find((e) => e.url === sessionUrl);
    pill.textContent = session ? `writes → ${node(session.url)} · this session's node`
      : writable.length ? `writes → the nearest of ${writable.map((e) => node(e.url)).join(', ')}` : 'writes → no writable node';
    pill.title = session ? 'the node that took the last write; the next one goes there too while it is up' : '';
    pill.dataset.writeNode = session ? node(session.url) : '';
    pill.dataset.primary = '';
    pill.classList.toggle('warn', !writable.length);
    return;
  }
  table.updateClient(topology, sample);
  const p = topology.find((e) => e.primary);
  pill.textContent = p ? `writes → ${node(p.url)} · term ${p.term}` : 'writes → no primary';
  pill.dataset.primary = p ? node(p.url) : '';
  pill.classList.toggle('warn', !p);
}
db.on('topology', () => renderTopology(false));
setInterval(() => renderTopology(true), 250); // also samples the RTT sparklines, at a steady rate
setInterval(pollStatus, 1000);

// ---- Offline toggle and pending writes -------------------------------------------------------------------
async function refreshPending() {
  const n = (await db.pendingWrites()).length;
  const pill = $('pending-count');
  pill.textContent = `${n} pending write${n === 1 ? '' : 's'}`;
  pill.dataset.count = String(n);
  pill.classList.toggle('warn', n > 0);
}
setInterval(refreshPending, 1000);

$('online-toggle').onclick = () => {
  offline = !offline;
  const b = $('online-toggle');
  b.textContent = offline ? 'Client offline' : 'Client online';
  b.setAttribute('aria-pressed', String(!offline));
  b.classList.toggle('on', !offline);
  b.classList.toggle('off-alert', offline);
  log('operator', offline
    ? `client offline: every request fails; writes queue after 2 s without a ${multi ? 'writable node' : 'primary'}`
    : `client online: the outbox syncs as soon as a ${multi ? 'node' : 'primary'} answers`);
  if (!offline) db.flush().catch((e) => log('error', `flush: ${e.code ?? e.message}`));
  scheduleList();
};

// ---- Background traffic ----------------------------------------------------------------------------------
let trafficOn = true;
$('traffic-toggle').onclick = () => {
  trafficOn = !trafficOn;
  const b = $('traffic-toggle');
  b.textContent = trafficOn ? 'Traffic on' : 'Traffic off';
  b.classList.toggle('on', trafficOn);
  b.setAttribute('aria-pressed', String(trafficOn));
};
async function trafficLoop() {
  for (let tick = 0; ; tick++) {
    const started = Date.now();
    if (trafficOn && !offline) {
      // Write one of 8 small documents; read back the previous one (written, so never a 404).
      await Promise.allSettled([
        traffic.replace(`tick-${tick % 8}`, { tick, at: new Date().toISOString() }).then(wrote),
        tick > 0 ? traffic.get(`tick-${(tick - 1) % 8}`) : null,
      ]);
    }
    await new Promise((r) => setTimeout(r, Math.max(100, 500 - (Date.now() - started))));
  }
}
trafficLoop();

// ---- Notes: a CRUD console ---------------------------------------------------------------------------------
const list = $('notes');
let listTimer = null;
let listing = false;
function scheduleList(delay = 0) {
  clearTimeout(listTimer);
  listTimer = setTimeout(refreshList, delay);
}

async function refreshList() {
  if (listing) return scheduleList(300);
  listing = true;
  try {
    const page = await notes.list({ limit: 100 });
    if (!list.querySelector('input')) renderNotes(page.items); // do not disturb an edit in progress
  } catch (e) {
    log('error', `list notes: ${e.code ?? e.message}`);
  } finally {
    listing = false;
    scheduleList(3000);
  }
}

function renderNotes(items) {
  $('notes-empty').hidden = items.length > 0;
  list.replaceChildren(...items.sort((a, b) => b.id.localeCompare(a.id)).map(noteRow));
}

function noteRow(doc) {
  const li = document.createElement('li');
  li.className = 'note';
  li.dataset.id = doc.id;
  li.dataset.testid = 'note';
  li.dataset.pending = String(doc.meta.pending);
  li.dataset.fromCache = String(doc.meta.fromCache);
  li.dataset.version = String(doc.version);
  const served = doc.meta.endpoint ? node(doc.meta.endpoint) : null;
  li.dataset.servedBy = served ?? '';
  li.append(
    h('span', { class: 'text' }),
    h('span', { class: 'badges' },
      h('span', { class: 'badge', 'data-testid': 'version', title: multi ? `revision ${doc.version}` : 'version' }, shortVersion(doc.version)),
      served && h('span', { class: 'badge', 'data-testid': 'served-by', title: 'the node that answered', style: `color:${colorOf(served)}` }, served),
      doc.meta.fromCache && h('span', { class: 'badge cache', 'data-testid': 'badge-cache', title: 'served from the local cache' }, 'fromCache'),
      doc.meta.pending && h('span', { class: 'badge pending', 'data-testid': 'badge-pending', title: 'queued offline, not synced yet' }, 'pending')),
    h('button', { class: 'edit', title: 'edit' }, 'edit'),
    h('button', { class: 'del', title: 'delete' }, 'delete'),
  );
  li.querySelector('.text').textContent = doc.data.text ?? JSON.stringify(doc.data);
  li.querySelector('.edit').onclick = () => editNote(li, doc);
  li.querySelector('.del').onclick = () => mutate(`delete ${doc.id.slice(-8)}`, () => notes.delete(doc.id));
  return li;
}

function editNote(li, doc) {
  const input = document.createElement('input');
  input.value = doc.data.text ?? '';
  li.querySelector('.text').replaceWith(input);
  input.focus();
  const save = () => {
    input.onblur = null;
    input.remove();
    if (input.value !== doc.data.text) {
      mutate(`update ${doc.id.slice(-8)}`, () => notes.update(doc.id, { text: input.value }, { ifVersion: doc.version })).then((d) => {
        wrote(d);
        if (multi && d && !d.meta.pending) log('write', `updated notes/${d.id.slice(-8)} on ${node(d.meta.endpoint)} (${shortVersion(d.version)})`);
      });
    } else scheduleList();
  };
  input.onblur = save;
  input.onkeydown = (e) => { if (e.key === 'Enter') save(); if (e.key === 'Escape') { input.value = doc.data.text; save(); } };
}

/** Runs a write, logs a failure with its error code, and refreshes the list. */
async function mutate(label, write) {
  try {
    return await write();
  } catch (e) {
    log('error', `${label}: ${e.code ?? ''} ${e.message}`);
    return null;
  } finally {
    scheduleList();
  }
}

$('create-form').onsubmit = async (e) => {
  e.preventDefault();
  const input = $('create-input');
  const text = input.value.trim();
  if (!text) return;
  const button = $('create-button');
  button.classList.add('busy');
  input.value = '';
  const doc = await mutate('create', () => notes.create({ text, at: new Date().toISOString() }));
  button.classList.remove('busy');
  wrote(doc);
  if (doc && !doc.meta.pending) log('write', `created notes/${doc.id.slice(-8)} on ${node(doc.meta.endpoint)}${multi ? ` (${shortVersion(doc.version)})` : ''}`);
};

// Legend, first draw, first data.
$('legend').replaceChildren(...nodeIds.map((n) => h('span', {}, h('i', { class: 'swatch', style: `background:${colorOf(n)}` }), n)),
  h('span', {}, h('i', { class: 'swatch', style: 'background:var(--fail)' }), 'failed attempts'));
setInterval(() => chart.draw(), 500);
chart.draw();
renderTopology(true);
pollStatus();
refreshPending();
refreshList();
document.body.dataset.ready = 'true';
window.replikitDemo = { db }; // for poking around in the console
