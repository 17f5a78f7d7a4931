#!/usr/bin/env node
// A multi-primary (master-master) CouchDB-compatible dev cluster: N pouchdb-server processes on 127.0.0.1, each
// pushing its database to every other node with a continuous `POST /_replicate`, plus an admin HTTP API to kill,
// restart, hang and unhang nodes. The counterpart of `replikit-server dev-cluster` (PostgreSQL streaming
// replication, server/src/cluster) for tests, benchmarks and the dashboard; see server/couchdb/README.md.
//
//   node server/couchdb/cluster.mjs [--nodes 3] [--port 7300] [--admin-port 7400] [--database app]
//                                   [--data-dir DIR] [--stop-on-stdin-close] [--state-file FILE]
//
// prints one JSON line when ready and stops everything on SIGINT/SIGTERM (and on stdin EOF with the flag).
// As a library: `const cluster = await startCouchCluster({ nodes: 3 }); ...; await cluster.stop();`
//
// Every child gets two preloads: replication-guard.cjs (pouchdb-server crashes when a replication peer dies;
// the guard makes replications retry instead) and lifeline.cjs (the child exits when this process's end of
// its stdin pipe closes, so nothing outlives the supervisor, even after a SIGKILL).
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const GUARD = path.join(here, 'replication-guard.cjs');
const LIFELINE = path.join(here, 'lifeline.cjs');
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 30000;
const STATUS_TIMEOUT_MS = 500;
const STOP_GRACE_MS = 5000;
const ACTIONS = ['kill', 'start', 'hang', 'unhang'];

/** An error with a stable lowercase code and the HTTP status the admin API answers with. */
export class CouchClusterError extends Error {
  constructor(code, message, status = 500) {
    super(message);
    this.name = 'CouchClusterError';
    this.code = code;
    this.status = status;
  }
}

/** The pouchdb-server executable script, resolved as this package's dependency. */
function pouchdbServerBin() {
  let pkg;
  try {
    pkg = require.resolve('pouchdb-server/package.json');
  } catch {
    throw new CouchClusterError('not_installed', 'pouchdb-server is not installed: run `npm install` at the repository root');
  }
  return path.join(path.dirname(pkg), 'bin', 'pouchdb-server');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Where temp data goes: $REPLIKIT_DEV_DIR, else /dev/shm (tmpfs) when writable, else the OS temp dir. */
function baseDir() {
  if (process.env.REPLIKIT_DEV_DIR) return process.env.REPLIKIT_DEV_DIR;
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    if (fs.statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {}
  return os.tmpdir();
}

/** `n` distinct free loopback ports (all bound at once, then released). */
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createNetServer();
      await new Promise((resolve, reject) => s.once('error', reject).listen(0, HOST, resolve));
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** Throws `port_in_use` unless 127.0.0.1:`port` can be listened on. */
async function assertPortFree(port) {
  const s = createNetServer();
  try {
    await new Promise((resolve, reject) => s.once('error', reject).listen(port, HOST, resolve));
  } catch (e) {
    throw new CouchClusterError('port_in_use', `${HOST}:${port} is not free (${e.code ?? e.message})`, 409);
  } finally {
    await new Promise((r) => s.close(() => r()));
  }
}

/** fetch with a time limit; resolves to the Response, rejects on network error or timeout. */
function fetchWithin(url, ms, init = {}) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
}

function tail(file, bytes = 2000) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

// Clusters still running, killed synchronously if this process exits without stop() (a crashed test).
const live = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const cluster of live) cluster.killNowSync();
  });
}

/**
 * Starts the cluster: `nodes` pouchdb-server processes (c0, c1, ...) on 127.0.0.1 (`port` for c0 and the next
 * ports for the others, or free ports when 0), the database on every node, continuous push replications from
 * every node to every other node, and the admin API on `adminPort` (0: a free port). Data goes to `dataDir`
 * (kept) or to a temp directory (removed by stop()). `log` receives supervisor messages (default: none).
 */
export async function startCouchCluster({
  nodes: count = 3,
  port = 0,
  database = 'app',
  dataDir,
  adminPort = 0,
  logLevel = 'info',
  log = () => {},
} = {}) {
  if (!Number.isInteger(count) || count < 1 || count > 32) {
    throw new CouchClusterError('bad_request', `nodes must be an integer from 1 to 32, got ${count}`, 400);
  }
  if (!/^[a-z][a-z0-9_$()+/-]*$/.test(database)) {
    throw new CouchClusterError('bad_request', `invalid CouchDB database name ${JSON.stringify(database)}`, 400);
  }
  if (!Number.isInteger(port) || port < 0 || port + count - 1 > 65535) {
    throw new CouchClusterError('bad_request', `invalid port ${port}`, 400);
  }
  const bin = pouchdbServerBin();
  const began = Date.now();
  const ownsDir = !dataDir;
  const root = ownsDir ? fs.mkdtempSync(path.join(baseDir(), 'replikit-couch-')) : path.resolve(dataDir);
  fs.mkdirSync(root, { recursive: true });
  const ports = port === 0 ? await freePorts(count) : Array.from({ length: count }, (_, i) => port + i);
  const adminToken = randomBytes(16).toString('hex');

  const nodes = ports.map((p, i) => ({
    nodeId: `c${i}`,
    index: i,
    port: p,
    url: `http://${HOST}:${p}`,
    dir: path.join(root, `c${i}`),
    uuid: null,
    child: null,
    exited: null,
    state: 'stopped', // 'running' | 'stopped' | 'hung'
    lastExit: null,
  }));
  let stopping = false;
  let adminServer = null;
  let adminUrl = null;

  // Operator actions run one at a time (like the PG dev cluster's lock).
  let queue = Promise.resolve();
  const serialized = (fn) => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };

  function nodeAt(i) {
    const node = typeof i === 'number' ? nodes[i] : nodes.find((n) => n.nodeId === i);
    if (!node) throw new CouchClusterError('unknown_node', `no node ${JSON.stringify(i)}`, 404);
    return node;
  }

  /** config.json backs pouchdb-server's /_config: a stable uuid (how we recognise our process), the log file. */
  function writeConfig(node) {
    fs.mkdirSync(node.dir, { recursive: true });
    const file = path.join(node.dir, 'config.json');
    let config = {};
    try {
      config = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {}
    config.couchdb = { ...config.couchdb, uuid: config.couchdb?.uuid ?? randomUUID() };
    config.log = { ...config.log, file: path.join(node.dir, 'log.txt'), level: logLevel };
    // `--no-stdout-logs` on the command line is read by nomnom as "stdout-logs = false" and ignored; the
    // config key is what pouchdb-server actually checks.
    config.pouchdb_server = { ...config.pouchdb_server, 'no-stdout-logs': true };
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    node.uuid = config.couchdb.uuid;
    return file;
  }

  /** Spawns node's pouchdb-server and resolves once it answers `GET /` with its own uuid. */
  async function spawnNode(node) {
    await assertPortFree(node.port);
    const config = writeConfig(node);
    const logFile = path.join(node.dir, 'server.log');
    const fd = fs.openSync(logFile, 'a');
    let child;
    try {
      child = spawn(
        process.execPath,
        ['--require', GUARD, '--require', LIFELINE, bin,
          '--port', String(node.port), '--host', HOST, '--dir', node.dir, '--config', config,
          '--no-stdout-logs', '--no-color'],
        // cwd: pouchdb-server writes files (log.txt, config.json defaults) to its working directory.
        { cwd: node.dir, stdio: ['pipe', fd, fd], env: { ...process.env, REPLIKIT_COUCH_LIFELINE: '1' } },
      );
    } finally {
      fs.closeSync(fd);
    }
    child.stdin.on('error', () => {});
    node.child = child;
    node.exited = new Promise((resolve) => {
      child.once('error', (e) => resolve({ code: null, signal: null, error: e }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    node.exited.then((exit) => {
      if (node.child !== child) return;
      node.child = null;
      node.state = 'stopped';
      node.lastExit = { ...exit, at: new Date().toISOString() };
      if (!stopping && !node.killing) {
        log(`${node.nodeId} (pid ${child.pid}) exited unexpectedly: code ${exit.code} signal ${exit.signal}`);
      }
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (node.child !== child) {
        throw new CouchClusterError('start_failed', `${node.nodeId} exited while starting:\n${tail(logFile)}`);
      }
      try {
        const r = await fetchWithin(`${node.url}/`, 1000);
        const body = await r.json();
        if (body.uuid === node.uuid) break;
        throw new CouchClusterError('port_in_use', `${node.url} is answered by another server (uuid ${body.uuid})`, 409);
      } catch (e) {
        if (e instanceof CouchClusterError) {
          killChild(node, 'SIGKILL');
          throw e;
        }
      }
      if (Date.now() > deadline) {
        killChild(node, 'SIGKILL');
        throw new CouchClusterError('start_failed', `${node.nodeId} did not answer within ${READY_TIMEOUT_MS} ms:\n${tail(logFile)}`);
      }
      await sleep(50);
    }
    node.state = 'running';
  }

  function killChild(node, signal) {
    const child = node.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    try {
      if (node.state === 'hung' && signal !== 'SIGKILL') child.kill('SIGCONT');
      child.kill(signal);
    } catch {}
  }

  async function couch(node, method, urlPath, body) {
    const r = await fetchWithin(`${node.url}${urlPath}`, 10000, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json().catch(() => ({}));
    return { status: r.status, body: json };
  }

  async function ensureDatabase(node) {
    const { status, body } = await couch(node, 'PUT', `/${database}`);
    if (status !== 201 && status !== 412) {
      throw new CouchClusterError('start_failed', `PUT ${node.url}/${database}: ${status} ${JSON.stringify(body)}`);
    }
  }

  /** Starts node's continuous push replications to every other node (they live in node's process). */
  async function postReplications(node) {
    for (const peer of nodes) {
      if (peer === node) continue;
      const { status, body } = await couch(node, 'POST', '/_replicate', {
        source: `${node.url}/${database}`,
        target: `${peer.url}/${database}`,
        continuous: true,
      });
      if (status !== 200 || !body.ok) {
        throw new CouchClusterError('start_failed', `replication ${node.nodeId} -> ${peer.nodeId}: ${status} ${JSON.stringify(body)}`);
      }
    }
  }

  async function startNode(node) {
    const t0 = Date.now();
    await spawnNode(node);
    await ensureDatabase(node);
    await postReplications(node);
    log(`${node.nodeId} running on ${node.url} (pid ${node.child.pid}) in ${Date.now() - t0} ms`);
    return Date.now() - t0;
  }

  async function killNode(node, signal = 'SIGKILL') {
    const exited = node.exited;
    node.killing = true;
    try {
      killChild(node, signal);
      if (exited) await exited;
    } finally {
      node.killing = false;
    }
  }

  // ---- operator actions ----------------------------------------------------------------------------------
  const ops = {
    kill: (i) => serialized(async () => {
      const node = nodeAt(i);
      if (node.state === 'stopped') throw new CouchClusterError('invalid_state', `${node.nodeId} is not running`, 409);
      const pid = node.child?.pid;
      await killNode(node, 'SIGKILL');
      log(`killed ${node.nodeId} (pid ${pid})`);
      return { nodeId: node.nodeId, killed: true };
    }),
    start: (i) => serialized(async () => {
      const node = nodeAt(i);
      if (node.state !== 'stopped') throw new CouchClusterError('invalid_state', `${node.nodeId} is already running`, 409);
      try {
        const tookMs = await startNode(node);
        return { nodeId: node.nodeId, started: true, pid: node.child.pid, tookMs };
      } catch (e) {
        if (node.child) await killNode(node);
        throw e;
      }
    }),
    hang: (i) => serialized(async () => {
      const node = nodeAt(i);
      if (node.state !== 'running') throw new CouchClusterError('invalid_state', `${node.nodeId} is ${node.state}, not running`, 409);
      node.child.kill('SIGSTOP');
      node.state = 'hung';
      log(`hung ${node.nodeId} (SIGSTOP)`);
      return { nodeId: node.nodeId, hung: true };
    }),
    unhang: (i) => serialized(async () => {
      const node = nodeAt(i);
      if (node.state !== 'hung') throw new CouchClusterError('invalid_state', `${node.nodeId} is ${node.state}, not hung`, 409);
      node.child.kill('SIGCONT');
      node.state = 'running';
      log(`unhung ${node.nodeId} (SIGCONT)`);
      return { nodeId: node.nodeId, hung: false };
    }),
  };

  /** Per node: state as the supervisor knows it, and doc_count/update_seq when the node answers within 500 ms. */
  async function status() {
    const rows = await Promise.all(nodes.map(async (node) => {
      let info = null;
      if (node.state === 'running') {
        try {
          const r = await fetchWithin(`${node.url}/${database}`, STATUS_TIMEOUT_MS);
          if (r.ok) info = await r.json();
        } catch {}
      }
      return {
        nodeId: node.nodeId,
        url: node.url,
        pid: node.child?.pid ?? null,
        state: node.state,
        // The PG dev cluster's word for the same thing, so the dashboard's code applies as is.
        gateway: node.state === 'running' ? 'up' : node.state === 'hung' ? 'hung' : 'down',
        docCount: info?.doc_count ?? null,
        updateSeq: info?.update_seq ?? null,
      };
    }));
    return { topology: 'multi-primary', protocol: 'couchdb', database, nodes: rows };
  }

  /**
   * Waits until every running node agrees: with `docPath` (a document id, or a path like `/app/id`), on that
   * document's `_rev`; without, on the winning revision of every document (`_all_docs`). Rejects after
   * `timeoutMs` with what each node had. Resolves `{ tookMs }`.
   */
  async function waitConverged(docPath, timeoutMs = 30000) {
    if (typeof docPath === 'number') [docPath, timeoutMs] = [undefined, docPath];
    const t0 = Date.now();
    const target = docPath === undefined ? `/${database}/_all_docs`
      : docPath.startsWith('/') ? docPath : `/${database}/${encodeURIComponent(docPath)}`;
    let seen = [];
    for (;;) {
      const running = nodes.filter((n) => n.state === 'running');
      seen = await Promise.all(running.map(async (node) => {
        try {
          const r = await fetchWithin(`${node.url}${target}`, 2000);
          if (!r.ok) return `${node.nodeId}: HTTP ${r.status}`;
          const body = await r.json();
          const value = docPath === undefined
            ? JSON.stringify(body.rows.map((row) => [row.id, row.value.rev]))
            : body._rev;
          return { value };
        } catch (e) {
          return `${node.nodeId}: ${e.message}`;
        }
      }));
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

  // ---- admin API ---------------------------------------------------------------------------------------------
  function send(res, code, body) {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(text);
  }
  function authorized(req) {
    const given = Buffer.from(String(req.headers.authorization ?? ''));
    const expected = Buffer.from(`Bearer ${adminToken}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
  async function handle(req, res) {
    for await (const _ of req); // drain the body: node actions take none
    if (!authorized(req)) throw new CouchClusterError('unauthorized', 'missing or wrong admin token', 401);
    const { pathname } = new URL(req.url, 'http://admin');
    if (pathname === '/admin/status') {
      if (req.method !== 'GET') throw new CouchClusterError('method_not_allowed', 'use GET /admin/status', 405);
      return send(res, 200, await status());
    }
    const m = /^\/admin\/nodes\/([^/]+)\/([^/]+)$/.exec(pathname);
    if (!m) throw new CouchClusterError('not_found', 'no such admin route (GET /admin/status, POST /admin/nodes/{nodeId}/{kill|start|hang|unhang})', 404);
    if (req.method !== 'POST') throw new CouchClusterError('method_not_allowed', `use POST ${pathname}`, 405);
    const [id, action] = [decodeURIComponent(m[1]), m[2]];
    if (!ACTIONS.includes(action)) {
      throw new CouchClusterError('bad_request', `unknown action ${JSON.stringify(action)} (${ACTIONS.join(', ')})`, 400);
    }
    nodeAt(id);
    if (stopping) throw new CouchClusterError('invalid_state', 'the cluster is stopping', 409);
    return send(res, 200, await ops[action](id));
  }
  async function startAdmin() {
    adminServer = createServer((req, res) => {
      handle(req, res).catch((e) => {
        const err = e instanceof CouchClusterError ? e : new CouchClusterError('internal', e.message);
        if (err.status >= 500) log(`admin ${req.method} ${req.url}: ${err.message}`);
        if (!res.headersSent) send(res, err.status, { error: { code: err.code, message: err.message } });
      });
    });
    await new Promise((resolve, reject) => adminServer.once('error', reject).listen(adminPort, HOST, resolve));
    adminUrl = `http://${HOST}:${adminServer.address().port}`;
  }

  // ---- lifetime ---------------------------------------------------------------------------------------------
  let stopped = null;
  async function stop() {
    if (stopped) return stopped;
    stopping = true;
    stopped = (async () => {
      if (adminServer) {
        adminServer.closeAllConnections?.();
        await new Promise((r) => adminServer.close(() => r()));
      }
      await queue;
      await Promise.all(nodes.map(async (node) => {
        if (!node.child) return;
        const exited = node.exited;
        killChild(node, 'SIGTERM');
        const timer = setTimeout(() => killChild(node, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }));
      if (ownsDir) fs.rmSync(root, { recursive: true, force: true });
      live.delete(handleObj);
      log('stopped');
    })();
    return stopped;
  }

  const handleObj = {
    /** Synchronous last resort for process 'exit': SIGKILL every child, remove the temp directory. */
    killNowSync() {
      stopping = true;
      for (const node of nodes) {
        const child = node.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        try { child.kill('SIGCONT'); } catch {}
        try { child.kill('SIGKILL'); } catch {}
      }
      if (ownsDir) {
        try { fs.rmSync(root, { recursive: true, force: true }); } catch {}
      }
    },
  };
  live.add(handleObj);
  installExitHook();

  try {
    await Promise.all(nodes.map((node) => spawnNode(node)));
    await Promise.all(nodes.map((node) => ensureDatabase(node)));
    await Promise.all(nodes.map((node) => postReplications(node)));
    await startAdmin();
  } catch (e) {
    await stop();
    throw e;
  }
  const startupMs = Date.now() - began;
  log(`${count} nodes ready in ${startupMs} ms: ${nodes.map((n) => `${n.nodeId} ${n.url}`).join(', ')}; admin ${adminUrl}`);

  const info = {
    topology: 'multi-primary',
    protocol: 'couchdb',
    database,
    endpoints: nodes.map((n) => n.url),
    nodes: nodes.map((n) => ({ nodeId: n.nodeId, url: n.url })),
    adminUrl,
    adminToken,
    pid: process.pid,
    dataDir: root,
  };
  return {
    endpoints: info.endpoints,
    nodes: nodes.map((n) => ({
      nodeId: n.nodeId,
      url: n.url,
      get pid() { return n.child?.pid ?? null; },
      get state() { return n.state; },
      get lastExit() { return n.lastExit; },
      dir: n.dir,
    })),
    database,
    adminUrl,
    adminToken,
    dataDir: root,
    startupMs,
    /** The JSON object the CLI prints. */
    info,
    kill: ops.kill,
    start: ops.start,
    hang: ops.hang,
    unhang: ops.unhang,
    status,
    waitConverged,
    stop,
  };
}

// ---- CLI ------------------------------------------------------------------------------------------------------
const USAGE = `usage: node server/couchdb/cluster.mjs [--nodes 3] [--port 7300] [--admin-port 7400] [--database app]
                                       [--data-dir DIR] [--stop-on-stdin-close] [--state-file FILE]
  --port 0 picks free ports for every node and the admin API; --admin-port defaults to --port + 100.`;

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        nodes: { type: 'string', default: '3' },
        port: { type: 'string', default: '7300' },
        'admin-port': { type: 'string' },
        database: { type: 'string', default: 'app' },
        'data-dir': { type: 'string' },
        'stop-on-stdin-close': { type: 'boolean', default: false },
        'state-file': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    console.error(`couch-cluster: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const int = (name) => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < 0 || v > 65535) {
      console.error(`couch-cluster: --${name} must be an integer, got ${values[name]}\n${USAGE}`);
      process.exit(2);
    }
    return v;
  };
  const port = int('port');
  const adminPort = values['admin-port'] !== undefined ? int('admin-port') : port === 0 ? 0 : port + 100;
  const log = (msg) => process.stderr.write(`couch-cluster: ${msg}\n`);
  const stateFile = values['state-file'] ? path.resolve(values['state-file']) : null;

  let cluster = null;
  let shuttingDown = false;
  const shutdown = async (why) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`stopping (${why})`);
    if (!cluster) process.exit(1); // still starting: the exit hook kills what was spawned
    await cluster.stop();
    if (stateFile) fs.rmSync(stateFile, { force: true });
    process.exit(0);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => (shuttingDown ? process.exit(1) : shutdown(sig)));
  }
  if (values['stop-on-stdin-close']) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  try {
    cluster = await startCouchCluster({
      nodes: int('nodes'),
      port,
      adminPort,
      database: values.database,
      dataDir: values['data-dir'],
      log,
    });
  } catch (e) {
    log(`failed to start: ${e.message}`);
    process.exit(1);
  }
  if (shuttingDown) {
    await cluster.stop();
    process.exit(0);
  }
  if (stateFile) {
    fs.rmSync(stateFile, { force: true });
    fs.writeFileSync(stateFile, JSON.stringify(cluster.info, null, 2), { mode: 0o600, flag: 'wx' });
  }
  process.stdout.write(`${JSON.stringify(cluster.info)}\n`);
}

const invokedAs = process.argv[1] ? pathToFileURL(fs.realpathSync(process.argv[1])).href : '';
if (import.meta.url === invokedAs) {
  main().catch((e) => {
    process.stderr.write(`couch-cluster: ${e.stack ?? e}\n`);
    process.exit(1);
  });
}
