// The cluster table: one row per node, built once and updated in place (so buttons stay put while the data
// refreshes every 250 ms). Left: the client's view (`db.topology()`); right: the dev cluster's admin status.
import { sparkline } from './chart.js';

const ACTIONS = [
  ['kill', 'danger', 'Stop the gateway and PostgreSQL at once (a machine failure)'],
  ['start', '', 'Start the node again (a former primary comes back on its old term: split brain)'],
  ['promote', '', 'Promote this replica to primary (pg_promote); the other replicas follow it'],
  ['rejoin', '', 'pg_rewind the node and start it as a replica of the current primary'],
  ['hang', 'danger', 'The gateway accepts requests but answers nothing'],
  ['unhang', '', 'Let the held requests proceed'],
];
const SAMPLES = 40;

/** PostgreSQL's LSN notation (`0/5000060`) for a position. */
const lsn = (p) => (p == null ? '—' : `${Math.floor(p / 2 ** 32).toString(16).toUpperCase()}/${(p % 2 ** 32).toString(16).toUpperCase()}`);

export class TopologyView {
  /** `nodes`: [{nodeId, url}] from /config.json; `onAction(nodeId, action, button)` runs an operator action. */
  constructor(tbody, nodes, colorOf, onAction) {
    this.rows = new Map();
    for (const { nodeId, url } of nodes) {
      const tr = document.createElement('tr');
      tr.dataset.node = nodeId;
      tr.dataset.testid = `node-${nodeId}`;
      tr.innerHTML = `
        <td><span class="node-id"><span class="swatch" style="background:${colorOf(nodeId)}"></span>${nodeId}<span class="writes-tag" hidden>★ writes</span></span><span class="url">${url.replace('http://', '')}</span></td>
        <td><span class="role" data-f="role">…</span></td>
        <td><span class="state" data-f="state">unknown</span></td>
        <td class="num" data-f="term">—</td>
        <td class="num" data-f="position">—</td>
        <td class="num" data-f="lag">—</td>
        <td><span class="rtt"><span data-f="rtt">—</span><svg class="spark" viewBox="0 0 100 22" preserveAspectRatio="none"></svg></span></td>
        <td class="server" data-f="server">…</td>
        <td><div class="ops">${ACTIONS.map(([a, cls, title]) =>
          `<button class="${cls}" data-action="${a}" data-testid="${a}-${nodeId}" title="${title}">${a}</button>`).join('')}</div></td>`;
      for (const b of tr.querySelectorAll('button[data-action]')) b.onclick = () => onAction(nodeId, b.dataset.action, b);
      const f = (name) => tr.querySelector(`[data-f="${name}"]`);
      this.rows.set(nodeId, {
        tr, url, rtts: [],
        role: f('role'), state: f('state'), term: f('term'), position: f('position'), lag: f('lag'), rtt: f('rtt'),
        server: f('server'), spark: tr.querySelector('.spark'), tag: tr.querySelector('.writes-tag'),
        buttons: Object.fromEntries([...tr.querySelectorAll('button[data-action]')].map((b) => [b.dataset.action, b])),
      });
      tbody.append(tr);
    }
  }

  /** The client's view: `db.topology()`; with `sample`, adds a point to each RTT sparkline. */
  updateClient(topology, sample) {
    for (const row of this.rows.values()) {
      const e = topology.find((t) => t.url === row.url);
      if (!e) continue;
      row.tr.dataset.primary = String(e.primary);
      row.tr.dataset.state = e.state;
      row.tag.hidden = !e.primary;
      setText(row.role, e.role ?? '?');
      row.role.className = `role ${e.role ?? ''}${e.state === 'down' ? ' gone' : ''}`;
      row.role.title = e.state === 'down' ? 'the last role this client saw' : '';
      setText(row.state, e.state);
      row.state.className = `state ${e.state}`;
      row.state.title = e.lastError ?? '';
      setText(row.term, e.term ?? '—');
      setText(row.position, lsn(e.position));
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
      const stale = s.role === 'primary' && status.primary !== nodeId;
      row.server.innerHTML = `gateway <b class="${s.gateway === 'up' ? '' : s.gateway === 'hung' ? 'hung' : 'bad'}">${s.gateway}</b> · pg <b class="${s.postgres === 'running' ? '' : 'bad'}">${s.postgres}</b>`
        + (stale ? ' · <b class="bad" title="claims primary on an old term; rejoin it">stale primary</b>' : '');
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
