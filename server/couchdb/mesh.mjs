// The replication mesh of the CouchDB dev cluster: the database on every node, and a continuous push
// `POST /_replicate` from every node to every other node (n nodes, n·(n-1) replications), which is what makes the
// cluster multi-primary. A replication lives in the process of its source node, so it dies with that node; a
// restarted node posts its outgoing replications again (postReplications), and the incoming ones resume by
// themselves (replication-guard.cjs makes them retry). waitConverged tells when the running nodes agree.
import { CouchClusterError } from './error.mjs';
import { fetchWithin, sleep } from './node-process.mjs';

/**
 * Creates `database` on `node` (one that already exists, 412, is fine) and admits only the node's server admin to
 * it (`_security` members): CouchDB, and pouchdb-server, let anyone read and write a database without members.
 */
export async function ensureDatabase(node, database) {
  const { status, body } = await node.request('PUT', `/${database}`);
  if (status !== 201 && status !== 412) {
    throw new CouchClusterError('start_failed', `PUT ${node.url}/${database}: ${status} ${JSON.stringify(body)}`);
  }
  const only = { names: [node.admin.user], roles: ['_admin'] };
  const security = await node.request('PUT', `/${database}/_security`, { admins: only, members: only });
  if (security.status !== 200) {
    throw new CouchClusterError('start_failed', `PUT ${node.url}/${database}/_security: ${security.status} ${JSON.stringify(security.body)}`);
  }
}

/** `url` with the node admin's credentials, for a replication the node runs itself (it lives in that process). */
function withCredentials(url, admin) {
  const u = new URL(url);
  u.username = encodeURIComponent(admin.user);
  u.password = encodeURIComponent(admin.password);
  return u.href;
}

/** Starts node's continuous push replications to every other node of `nodes` (they live in node's process). */
export async function postReplications(node, nodes, database) {
  for (const peer of nodes) {
    if (peer === node) continue;
    const { status, body } = await node.request('POST', '/_replicate', {
      source: withCredentials(`${node.url}/${database}`, node.admin),
      target: withCredentials(`${peer.url}/${database}`, peer.admin),
      continuous: true,
    });
    if (status !== 200 || !body.ok) {
      throw new CouchClusterError('start_failed', `replication ${node.nodeId} -> ${peer.nodeId}: ${status} ${JSON.stringify(body)}`);
    }
  }
}

/** What `node` has at `target` (a `_rev`, or the `_all_docs` (id, rev) pairs as JSON), or why it could not say. */
async function observe(node, target, wholeDatabase) {
  try {
    const r = await fetchWithin(`${node.url}${target}`, 2000, { headers: { authorization: node.auth } });
    if (!r.ok) return `${node.nodeId}: HTTP ${r.status}`;
    const body = await r.json();
    const value = wholeDatabase
      ? JSON.stringify(body.rows.map((row) => [row.id, row.value.rev]))
      : body._rev;
    return { value };
  } catch (e) {
    return `${node.nodeId}: ${e.message}`;
  }
}

/**
 * Waits until every running node of `nodes` agrees: with `docPath` (a document id, or a path like `/app/id`), on
 * that document's `_rev`; without, on the winning revision of every document (`_all_docs`). Rejects after
 * `timeoutMs` with what each node had. Resolves `{ tookMs }`. Which nodes run is read again on every round.
 */
export async function waitConverged(nodes, database, docPath, timeoutMs = 30000) {
  if (typeof docPath === 'number') [docPath, timeoutMs] = [undefined, docPath];
  const t0 = Date.now();
  const target = docPath === undefined ? `/${database}/_all_docs`
    : docPath.startsWith('/') ? docPath : `/${database}/${encodeURIComponent(docPath)}`;
  for (;;) {
    const running = nodes.filter((n) => n.state === 'running');
    const seen = await Promise.all(running.map((node) => observe(node, target, docPath === undefined)));
    if (running.length > 0 && seen.every((s) => typeof s === 'object' && s.value === seen[0].value)) {
      return { tookMs: Date.now() - t0 };
    }
    if (Date.now() - t0 > timeoutMs) {
      const detail = seen.map((s, k) => `${running[k].nodeId}: ${typeof s === 'object' ? s.value.slice(0, 300) : s}`);
      throw new CouchClusterError('timeout', `nodes did not converge on ${target} within ${timeoutMs} ms:\n${detail.join('\n')}`);
    }
    await sleep(100);
  }
}
