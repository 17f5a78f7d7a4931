// The admin HTTP API of the CouchDB dev cluster, on 127.0.0.1 only: `GET /admin/status` and
// `POST /admin/nodes/{nodeId}/{kill|start|hang|unhang}`, in the shape of the PostgreSQL dev cluster's admin API
// (server/src/cluster) so the dashboard and the tests drive both alike. Every request needs
// `Authorization: Bearer <token>`, a random token per cluster compared in constant time (timingSafeEqual).
// A refusal is a CouchClusterError, answered as `{"error":{"code","message"}}` with its status. The API only
// routes: what an action does, and whether it is allowed in the node's state, is cluster.mjs's.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { CouchClusterError } from './error.mjs';
import { HOST } from './node-process.mjs';

const ACTIONS = ['kill', 'start', 'hang', 'unhang'];

function send(res, code, body) {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(text);
}

function authorized(req, token) {
  const given = Buffer.from(String(req.headers.authorization ?? ''));
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Answers one request, or throws the CouchClusterError to answer with. */
async function handle(req, res, token, cluster) {
  for await (const _ of req); // drain the body: node actions take none
  if (!authorized(req, token)) throw new CouchClusterError('unauthorized', 'missing or wrong admin token', 401);
  const { pathname } = new URL(req.url, 'http://admin');
  if (pathname === '/admin/status') {
    if (req.method !== 'GET') throw new CouchClusterError('method_not_allowed', 'use GET /admin/status', 405);
    return send(res, 200, await cluster.status());
  }
  const m = /^\/admin\/nodes\/([^/]+)\/([^/]+)$/.exec(pathname);
  if (!m) throw new CouchClusterError('not_found', 'no such admin route (GET /admin/status, POST /admin/nodes/{nodeId}/{kill|start|hang|unhang})', 404);
  if (req.method !== 'POST') throw new CouchClusterError('method_not_allowed', `use POST ${pathname}`, 405);
  const [id, action] = [decodeURIComponent(m[1]), m[2]];
  if (!ACTIONS.includes(action)) {
    throw new CouchClusterError('bad_request', `unknown action ${JSON.stringify(action)} (${ACTIONS.join(', ')})`, 400);
  }
  cluster.nodeAt(id);
  if (cluster.stopping) throw new CouchClusterError('invalid_state', 'the cluster is stopping', 409);
  return send(res, 200, await cluster[action](id));
}

/**
 * Listens on 127.0.0.1:`port` (0: a free port) for `cluster`, which provides `status()`, `nodeAt(nodeId)` (throws
 * `unknown_node`), `stopping`, and one method per action (`kill(nodeId)`, ...). `log` receives 5xx failures.
 * Resolves `{ url, token, close() }`; close() drops open connections and resolves once the server is closed.
 */
export async function startAdminApi({ port, cluster, log }) {
  const token = randomBytes(16).toString('hex');
  const server = createServer((req, res) => {
    handle(req, res, token, cluster).catch((e) => {
      const err = e instanceof CouchClusterError ? e : new CouchClusterError('internal', e.message);
      if (err.status >= 500) log(`admin ${req.method} ${req.url}: ${err.message}`);
      if (!res.headersSent) send(res, err.status, { error: { code: err.code, message: err.message } });
    });
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, HOST, resolve));
  return {
    url: `http://${HOST}:${server.address().port}`,
    token,
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
    },
  };
}
