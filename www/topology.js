// The cluster table: one row per node, built once and updated in place (so buttons stay put while the data
// refreshes every 250 ms). Left: the client's view (`db.topology()`); right: the dev cluster's admin status.
// Two kinds of cluster: primary-replica (the gateway over PostgreSQL: one primary, promote/rejoin) and
// multi-primary (CouchDB-protocol nodes: every node that is up takes writes; only kill/start/hang/unhang).
// Everything the servers say (node ids, URLs, states) is written as text (dom.js), never as HTML.
import { sparkline } from './chart.js';
import { h } from './dom.js';

const ACTIONS = [
  ['kill', 'danger', 'Stop the gateway and PostgreSQL at once (a machine failure)'],
  ['start', '', 'Start the node again (a former primary comes back on its old term: split brain)'],
  ['promote', '', 'Promote this replica to primary (pg_promote); the other replicas follow it'],
  ['rejoin', '', 'pg_rewind the node and start it as a replica of the current primary'],
  ['hang', 'danger', 'The gateway accepts requests but answers nothing'],
  ['unhang', '', 'Let the held requests proceed'],
];
// Multi-primary (server/couchdb/cluster.mjs): nothing to promote or rejoin.
const MULTI_ACTIONS = [
  ['kill', 'danger', 'SIGKILL the node (a machine failure); writes move to another node at once'],
  ['start', '', 'Start the node again on its data; replication brings it up to date'],
  ['hang', 'danger', 'SIGSTOP the node: it accepts connections but answers nothing'],
  ['unhang', '', 'SIGCONT the node: the held requests proceed'],
];
const SAMPLES = 40;

/** PostgreSQL's LSN notation (`0/5000060`) for a position. */
const lsn = (p) => (p == null ? '—' : `${Math.floor(p / 2 ** 32).toString(16).toUpperCase()}/${(p % 2 ** 32).toString(16).toUpperCase()}`);

export class TopologyView {
  /**
   * `nodes`: [{nodeId, url}] from /config.json; `onAction(nodeId, action, button)` runs an operator action;
   * `multi`: a multi-primary cluster (other columns, actions and marks).
   */
  constructor(tbody, nodes, colorOf, onAction, multi = false) {
    this.rows = new Map();
    this.multi = multi;
    const actions = multi ? MULTI_ACTIONS : ACTIONS;
    for (const { nodeId, url } of nodes) {
      const tr = document.createElement('tr');
      tr.dataset.node = nodeId;
      tr.dataset.testid = `node-${nodeId}`;
      const spark = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      spark.setAttribute('class', 'spark');
      spark.setAttribute('viewBox', '0 0 100 22');
      spark.setAttribute('preserveAspectRatio', 'none');
      const writesTag = h('span', { class: 'writes-tag', hidden: '' }, multi ? '★ writable' : '★ writes');
      const sessionTag = multi
        ? h('span', { class: 'session-tag', hidden: '', title: "the node that took this session's last write: its writes and reads stay here while it is up" }, 'session writes')
        : null;
      tr.append(
        h('td', {},
          h('span', { class: 'node-id' }, h('span', { class: 'swatch', style: `background:${colorOf(nodeId)}` }), nodeId, writesTag, sessionTag),
          h('span', { class: 'url' }, url.replace('http://', ''))),
        h('td', {}, h('span', { class: 'role', 'data-f': 'role' }, '…')),
        h('td', {}, h('span', { class: 'state', 'data-f': 'state' }, 'unknown')),
        h('td', { class: 'num col-term', 'data-f': 'term' }, '—'),
        h('td', { class: 'num', 'data-f': 'position' }, '—'),
        h('td', { class: 'num col-lag', 'data-f': 'lag' }, '—'),
        h('td', {}, h('span', { class: 'rtt' }, h('span', { 'data-f': 'rtt' }, '—'), spark)),
        h('td', { class: 'server', 'data-f': 'server' }, '…'),
        h('td', {}, h('div', { class: 'ops' }, actions.map(([a, cls, title]) =>
          h('button', { class: cls, 'data-action': a, 'data-testid': `${a}-${nodeId}`, title }, a)))),
      );
      for (const b of tr.querySelectorAll('button[data-action]')) b.onclick = () => onAction(nodeId, b.dataset.action, b);
      const f = (name) => tr.querySelector(`[data-f="${name}"]`);
      this.rows.set(nodeId, {
        tr, url, rtts: [],
        role: f('role'), state: f('state'), term: f('term'), position: f('position'), lag: f('lag'), rtt: f('rtt'),
        server: f('server'), spark: tr.querySelector('.spark'), tag: tr.querySelector('.writes-tag'),
        sessionTag: tr.querySelector('.session-tag'),
        buttons: Object.fromEntries([...tr.querySelectorAll('button[data-action]')].map((b) => [b.dataset.action, b])),
      });
      tbody.append(tr);
    }
  }

  /**
   * The client's view: `db.topology()`; with `sample`, adds a point to each RTT sparkline. Multi-primary:
   * `sessionUrl` is the node that took the session's last write (where its next write goes while it is up).
   */
  updateClient(topology, sample, sessionUrl = null) {
    for (const row of this.rows.values()) {
      const e = topology.find((t) => t.url === row.url);
      if (!e) continue;
      row.tr.dataset.primary = String(e.primary);
      row.tr.dataset.state = e.state;
      if (this.multi) {
        const session = e.writable && e.url === sessionUrl;
        row.tr.dataset.writable = String(e.writable);
        row.tr.dataset.sessionNode = String(session);
        row.tag.hidden = !e.writable;
        row.sessionTag.hidden = !session;
        setText(row.role, e.role ?? '?');
        row.role.className = `role ${e.role ?? ''}${e.writable ? '' : ' gone'}`;
        row.role.title = e.writable ? 'every node that is up takes writes' : 'not writable while it is not up';
      } else {
        row.tag.hidden = !e.primary;
        setText(row.role, e.role ?? '?');
        row.role.className = `role ${e.role ?? ''}${e.state === 'down' ? ' gone' : ''}`;
        row.role.title = e.state === 'down' ? 'the last role this client saw' : '';
      }
      setText(row.state, e.state);
      row.state.className = `state ${e.state}`;
      row.state.title = e.lastError ?? '';
      setText(row.term, e.term ?? '—');
      setText(row.position, this.multi ? e.position ?? '—' : lsn(e.position));
      setText(row.lag, e.lagMs == null ? '—' : `${e.lagMs} ms`);
      const rtt = e.state === 'down' ? null : e.rttMs;
      setText(row.rtt, rtt == null ? '—' : `${rtt.toFixed(1)} ms`);
      if (!sample) continue;
      row.rtts.push(rtt);
      if (row.rtts.length > SAMPLES) row.rtts.shift();
      sparkline(row.spark, row.rtts);
    }
  }

  /** The dev cluster's view: `GET /admin/status` (null when unknown); enables the actions that make sense. */
  updateServer(status) {
    for (const [nodeId, row] of this.rows) {
      const s = status?.nodes.find((n) => n.nodeId === nodeId);
      if (!s) {
        setText(row.server, '…');
        continue;
      }
      if (this.multi) {
        // server/couchdb/cluster.mjs: state running|stopped|hung; docCount/updateSeq null when not asked.
        const cls = s.state === 'running' ? '' : s.state === 'hung' ? 'hung' : 'bad';
        row.server.replaceChildren('pouchdb ', h('b', { class: cls }, s.state),
          s.docCount == null ? '' : ` · ${s.docCount} docs · seq ${s.updateSeq}`);
        const enabled = { kill: s.state !== 'stopped', start: s.state === 'stopped', hang: s.state === 'running', unhang: s.state === 'hung' };
        for (const [a, b] of Object.entries(row.buttons)) if (!b.classList.contains('busy')) b.disabled = !enabled[a];
        continue;
      }
      const stale = s.role === 'primary' && status.primary !== nodeId;
      row.server.replaceChildren(
        'gateway ', h('b', { class: s.gateway === 'up' ? '' : s.gateway === 'hung' ? 'hung' : 'bad' }, s.gateway),
        ' · pg ', h('b', { class: s.postgres === 'running' ? '' : 'bad' }, s.postgres),
        stale ? [' · ', h('b', { class: 'bad', title: 'claims primary on an old term; rejoin it' }, 'stale primary')] : '');
      if (stale) row.role.className = 'role stale';
      const down = s.gateway === 'down' || s.postgres === 'stopped';
      const enabled = {
        kill: !(s.gateway === 'down' && s.postgres === 'stopped'),
        start: down,
        promote: s.role === 'replica' && !down,
        rejoin: status.primary !== nodeId && status.primary != null,
        hang: s.gateway === 'up',
        unhang: s.gateway === 'hung',
      };
      for (const [a, b] of Object.entries(row.buttons)) if (!b.classList.contains('busy')) b.disabled = !enabled[a];
    }
  }
}

function setText(el, value) {
  const s = String(value);
  if (el.textContent !== s) el.textContent = s;
}
