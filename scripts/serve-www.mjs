// The demo's web server (`npm start` runs it; no dependencies): serves the dashboard in www/, the built package's
// dist/ at /replikit/ (as an app would get it from a CDN or a bundler), the cluster's kind (topology, protocol,
// database) and endpoints at /config.json, and proxies /admin/* to the dev cluster's admin API, adding the bearer
// token so that it never reaches the browser. Either dev cluster: `replikit-server dev-cluster` (primary-replica,
// PostgreSQL) or `server/couchdb/cluster.mjs` (multi-primary, CouchDB protocol); both have the same admin API shape.
//
//   REPLIKIT_CLUSTER_FILE=<the dev cluster's JSON line> [REPLIKIT_WWW_PORT=8080] node scripts/serve-www.mjs
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

const clusterFile = process.env.REPLIKIT_CLUSTER_FILE;
if (!clusterFile) {
  console.error('serve-www: set REPLIKIT_CLUSTER_FILE to the dev cluster JSON (scripts/start.sh does)');
  process.exit(2);
}
const cluster = JSON.parse(readFileSync(clusterFile, 'utf8'));
const port = Number(process.env.REPLIKIT_WWW_PORT ?? 8080);
// What the browser may know: the cluster's kind (the PG dev cluster's JSON has none: primary-replica), the
// endpoints, and a run id so each cluster gets a fresh IndexedDB cache.
const config = JSON.stringify({
  topology: cluster.topology ?? 'primary-replica',
  protocol: cluster.protocol ?? 'replikit',
  database: cluster.database ?? null,
  endpoints: cluster.endpoints,
  nodes: cluster.nodes.map(({ nodeId, url }) => ({ nodeId, url })),
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

async function proxyAdmin(req, res, path) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  try {
    const upstream = await fetch(cluster.adminUrl + path, {
      method: req.method,
      headers: { authorization: `Bearer ${cluster.adminToken}`, 'content-type': 'application/json' },
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
      signal: AbortSignal.timeout(90000),
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
  } catch (e) {
    const error = { code: 'proxy', message: `the dev cluster's admin API did not answer: ${e.message}` };
    res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error }));
  }
}

const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path.startsWith('/admin/')) {
    // Only the dashboard's own scripts send this header; a form or a page on another site cannot without a
    // CORS preflight, which this server never grants: no cross-site request can kill a node.
    if (req.headers['x-replikit-demo'] !== '1') return res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"code":"forbidden","message":"admin calls need the x-replikit-demo header"}}');
    return void proxyAdmin(req, res, path);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return res.writeHead(405).end();
  if (path === '/config.json') {
    return res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(config);
  }
  const file = path.startsWith('/replikit/')
    ? fileUnder(dirs.dist, path.slice('/replikit/'.length))
    : fileUnder(dirs.www, path === '/' ? 'index.html' : path.slice(1));
  if (!file) return res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  sendFile(res, file);
});

server.on('error', (e) => {
  const taken = e.code === 'EADDRINUSE';
  console.error(`serve-www: ${taken ? `127.0.0.1:${port} is already in use` : e.message}`);
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
