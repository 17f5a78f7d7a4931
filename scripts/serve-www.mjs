// The demo's web server (`npm start` runs it; no dependencies): serves the dashboard in www/, the built package's
// dist/ at /replikit/ (as an app would get it from a CDN or a bundler), the cluster's kind (topology, protocol,
// database), endpoints and the credentials its nodes require at /config.json, and proxies /admin/* to the dev
// cluster's admin API, adding the admin token so that it never reaches the browser. Either dev cluster:
// `replikit-server dev-cluster` (primary-replica, PostgreSQL) or `server/couchdb/cluster.mjs` (multi-primary,
// CouchDB protocol); both have the same admin API shape.
//
//   REPLIKIT_CLUSTER_FILE=<the dev cluster's JSON line> [REPLIKIT_WWW_PORT=8080] node scripts/serve-www.mjs
//
// Who may ask what. The dashboard needs the nodes' credentials in the browser (the client sends them), and its
// buttons drive the admin API, so this server answers only its own page:
// - Host must be 127.0.0.1:<port> or localhost:<port>, else 421: a page on another site whose name was rebound to
//   127.0.0.1 (DNS rebinding) sends its own Host, and must not reach /admin or /config.json;
// - a request with an Origin must come from those two origins, and any other method than GET/HEAD must carry
//   one (browsers always send it there), else 403; /config.json and /admin/* also refuse a Sec-Fetch-Site other
//   than same-origin (or none: typed in the address bar), and /admin/* wants the x-replikit-demo header, which no
//   cross-site form can send without a CORS preflight this server never grants;
// - every answer says `Content-Security-Policy: frame-ancestors 'none'` (and X-Frame-Options: DENY), so no other
//   page can frame the dashboard and click its buttons;
// - request bodies over 64 KiB are refused (413) before they are read whole, and a request target that is not a
//   URL (`GET http://[`) is a 400, not a crash.
//
// Listens on 127.0.0.1 only. With --stop-on-stdin-close it also exits when stdin closes (so a killed parent
// cannot leave it behind). With REPLIKIT_WWW_READY_FILE set it writes its URL there once listening.
import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dirs = { www: join(root, 'www'), dist: join(root, 'dist') };
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};
const MAX_BODY_BYTES = 64 * 1024;
const SECURITY_HEADERS = {
  'content-security-policy': "frame-ancestors 'none'; object-src 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const clusterFile = process.env.REPLIKIT_CLUSTER_FILE;
if (!clusterFile) {
  console.error('serve-www: set REPLIKIT_CLUSTER_FILE to the dev cluster JSON (scripts/start.sh does)');
  process.exit(2);
}
const cluster = JSON.parse(readFileSync(clusterFile, 'utf8'));
const port = Number(process.env.REPLIKIT_WWW_PORT ?? 8080);

/** The `headers` client option the cluster's nodes require: the gateways' bearer token, or CouchDB basic auth. */
function clientHeaders() {
  if (cluster.gatewayToken) return { authorization: `Bearer ${cluster.gatewayToken}` };
  if (cluster.couchUser) {
    return { authorization: `Basic ${Buffer.from(`${cluster.couchUser}:${cluster.couchPassword}`).toString('base64')}` };
  }
  return {};
}

// What the browser may know: the cluster's kind (the PG dev cluster's JSON has none: primary-replica), the
// endpoints, the credentials the client needs for them, and a run id so each cluster gets a fresh IndexedDB
// cache. Never the admin token (this server adds it to /admin/* itself) nor the PostgreSQL password.
const config = JSON.stringify({
  topology: cluster.topology ?? 'primary-replica',
  protocol: cluster.protocol ?? 'replikit',
  database: cluster.database ?? null,
  endpoints: cluster.endpoints,
  nodes: cluster.nodes.map(({ nodeId, url }) => ({ nodeId, url })),
  headers: clientHeaders(),
  runId: `${cluster.pid}-${String(cluster.dataDir ?? '').split(/[/\\]/).pop()}`,
});

/** A file under `base` for a URL path, or null when it escapes `base` or is not a file. */
function fileUnder(base, path) {
  let decoded;
  try { decoded = decodeURIComponent(path); } catch { return null; }
  const file = normalize(join(base, decoded));
  if (file !== base && !file.startsWith(base + sep)) return null;
  try { return statSync(file).isFile() ? file : null; } catch { return null; }
}

function sendFile(res, file) {
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
  createReadStream(file).pipe(res);
}

function refuse(res, status, code, message) {
  if (res.headersSent) return res.destroy();
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', connection: 'close' })
    .end(JSON.stringify({ error: { code, message } }));
}

/** The request body, at most MAX_BODY_BYTES; null (after answering 413) when it is longer. */
async function readBody(req, res) {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    refuse(res, 413, 'payload_too_large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    return null;
  }
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      refuse(res, 413, 'payload_too_large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
      req.destroy();
      return null;
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

async function proxyAdmin(req, res, path) {
  const body = await readBody(req, res);
  if (body === null) return;
  try {
    const upstream = await fetch(cluster.adminUrl + path, {
      method: req.method,
      headers: { authorization: `Bearer ${cluster.adminToken}`, 'content-type': 'application/json' },
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
      signal: AbortSignal.timeout(90000),
    });
    const answer = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(answer);
  } catch (e) {
    refuse(res, 502, 'proxy', `the dev cluster's admin API did not answer: ${e.message}`);
  }
}

/** The origins (and Host values) that are this server's own page. */
const own = {
  hosts: () => [`127.0.0.1:${server.address().port}`, `localhost:${server.address().port}`],
  origins: () => own.hosts().map((h) => `http://${h}`),
};

/** Why this request is not from the dashboard's own page, or null. `sensitive`: /config.json and /admin/*. */
function foreign(req, sensitive) {
  const origin = req.headers.origin;
  if (origin !== undefined && !own.origins().includes(origin)) return `origin ${origin} is not this dashboard's`;
  if (origin === undefined && req.method !== 'GET' && req.method !== 'HEAD') return `a ${req.method} needs an Origin`;
  const site = req.headers['sec-fetch-site'];
  if (sensitive && site !== undefined && site !== 'same-origin' && site !== 'none') return `sec-fetch-site is ${site}`;
  return null;
}

function handle(req, res) {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  if (!own.hosts().includes(String(req.headers.host ?? '').toLowerCase())) {
    return refuse(res, 421, 'misdirected', 'this server answers only http://127.0.0.1 and http://localhost on its port');
  }
  let path;
  try {
    path = new URL(req.url, 'http://127.0.0.1').pathname;
  } catch {
    return refuse(res, 400, 'bad_request', 'the request target is not a URL');
  }
  const sensitive = path === '/config.json' || path.startsWith('/admin/');
  const why = foreign(req, sensitive);
  if (why) return refuse(res, 403, 'forbidden', why);
  if (path.startsWith('/admin/')) {
    if (req.headers['x-replikit-demo'] !== '1') return refuse(res, 403, 'forbidden', 'admin calls need the x-replikit-demo header');
    return void proxyAdmin(req, res, path);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'method_not_allowed', 'GET or HEAD');
  if (path === '/config.json') {
    return res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(config);
  }
  const file = path.startsWith('/replikit/')
    ? fileUnder(dirs.dist, path.slice('/replikit/'.length))
    : fileUnder(dirs.www, path === '/' ? 'index.html' : path.slice(1));
  if (!file) return res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  sendFile(res, file);
}

const server = createServer((req, res) => {
  try {
    handle(req, res);
  } catch (e) {
    console.error(`serve-www: ${req.method} ${String(req.url).slice(0, 200)}: ${e.message}`);
    refuse(res, 500, 'internal', 'internal error');
  }
});
// A malformed request line or header: answered 400 by hand (no handler ran), the connection closed.
server.on('clientError', (e, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  else socket.destroy();
});

server.on('error', (e) => {
  const taken = e.code === 'EADDRINUSE';
  console.error(`serve-www: ${taken ? `127.0.0.1:${port} is already in use (REPLIKIT_WWW_PORT)` : e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}/`;
  if (process.env.REPLIKIT_WWW_READY_FILE) writeFileSync(process.env.REPLIKIT_WWW_READY_FILE, url);
  else console.log(`serve-www: dashboard on ${url}`);
});

const stop = () => { server.close(); server.closeAllConnections(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
if (process.argv.includes('--stop-on-stdin-close')) {
  process.stdin.on('end', stop).on('error', stop).resume();
}
