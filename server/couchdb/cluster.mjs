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
// This file is the entry point, the library module and the composition: one CouchNode per process
// (node-process.mjs), the replications between them (mesh.mjs), the admin API (admin-api.mjs), the error type
// (error.mjs). What is decided here: the data directory and ports, one operator action at a time, start-up and
// stop order, and the CLI.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startAdminApi } from './admin-api.mjs';
import { CouchClusterError } from './error.mjs';
import { ensureDatabase, postReplications, waitConverged } from './mesh.mjs';
import { CouchNode, freePorts, pouchdbServerBin } from './node-process.mjs';

export { CouchClusterError };

/** Where temp data goes: $REPLIKIT_DEV_DIR, else /dev/shm (tmpfs) when writable, else the OS temp dir. */
function baseDir() {
  if (process.env.REPLIKIT_DEV_DIR) return process.env.REPLIKIT_DEV_DIR;
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    if (fs.statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {}
  return os.tmpdir();
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

function validate(count, database, port) {
  if (!Number.isInteger(count) || count < 1 || count > 32) {
    throw new CouchClusterError('bad_request', `nodes must be an integer from 1 to 32, got ${count}`, 400);
  }
  if (!/^[a-z][a-z0-9_$()+/-]*$/.test(database)) {
    throw new CouchClusterError('bad_request', `invalid CouchDB database name ${JSON.stringify(database)}`, 400);
  }
  if (!Number.isInteger(port) || port < 0 || port + count - 1 > 65535) {
    throw new CouchClusterError('bad_request', `invalid port ${port}`, 400);
  }
}

/** The supervisor behind startCouchCluster's handle: its nodes, the operator actions, start-up and stop. */
class CouchCluster {
  constructor({ ports, root, ownsDir, database, bin, logLevel, log, admin, corsOrigins }) {
    this.database = database;
    this.root = root;
    this.ownsDir = ownsDir;
    this.log = log;
    this.stopping = false;
    this.admin = null;
    this.stopped = null;
    this.queue = Promise.resolve();
    const isStopping = () => this.stopping;
    this.nodeAdmin = admin; // the nodes' server admin ({ user, password }); `admin` is the admin API
    this.corsOrigins = corsOrigins;
    this.nodes = ports.map((port, index) => new CouchNode({ index, port, root, bin, logLevel, log, isStopping, admin, corsOrigins }));
  }

  /** Every node up with the database, then every replication, then the admin API; stops all on a failure. */
  async boot(adminPort) {
    try {
      await Promise.all(this.nodes.map((node) => node.spawn()));
      await Promise.all(this.nodes.map((node) => ensureDatabase(node, this.database)));
      await Promise.all(this.nodes.map((node) => postReplications(node, this.nodes, this.database)));
      this.admin = await startAdminApi({ port: adminPort, cluster: this, log: this.log });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  nodeAt(i) {
    const node = typeof i === 'number' ? this.nodes[i] : this.nodes.find((n) => n.nodeId === i);
    if (!node) throw new CouchClusterError('unknown_node', `no node ${JSON.stringify(i)}`, 404);
    return node;
  }

  // Operator actions run one at a time (like the PG dev cluster's lock).
  #serialized(fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  kill(i) {
    return this.#serialized(async () => {
      const node = this.nodeAt(i);
      if (node.state === 'stopped') throw new CouchClusterError('invalid_state', `${node.nodeId} is not running`, 409);
      const pid = node.child?.pid;
      await node.kill('SIGKILL');
      this.log(`killed ${node.nodeId} (pid ${pid})`);
      return { nodeId: node.nodeId, killed: true };
    });
  }

  /** Restarts a stopped node on its port and directory, and posts its outgoing replications again. */
  start(i) {
    return this.#serialized(async () => {
      const node = this.nodeAt(i);
      if (node.state !== 'stopped') throw new CouchClusterError('invalid_state', `${node.nodeId} is already running`, 409);
      const t0 = Date.now();
      try {
        await node.spawn();
        await ensureDatabase(node, this.database);
        await postReplications(node, this.nodes, this.database);
      } catch (e) {
        if (node.child) await node.kill();
        throw e;
      }
      const tookMs = Date.now() - t0;
      this.log(`${node.nodeId} running on ${node.url} (pid ${node.child.pid}) in ${tookMs} ms`);
      return { nodeId: node.nodeId, started: true, pid: node.child.pid, tookMs };
    });
  }

  hang(i) {
    return this.#serialized(async () => {
      const node = this.nodeAt(i);
      if (node.state !== 'running') throw new CouchClusterError('invalid_state', `${node.nodeId} is ${node.state}, not running`, 409);
      node.hang();
      this.log(`hung ${node.nodeId} (SIGSTOP)`);
      return { nodeId: node.nodeId, hung: true };
    });
  }

  unhang(i) {
    return this.#serialized(async () => {
      const node = this.nodeAt(i);
      if (node.state !== 'hung') throw new CouchClusterError('invalid_state', `${node.nodeId} is ${node.state}, not hung`, 409);
      node.unhang();
      this.log(`unhung ${node.nodeId} (SIGCONT)`);
      return { nodeId: node.nodeId, hung: false };
    });
  }

  /** Per node: state as the supervisor knows it, and doc_count/update_seq when the node answers within 500 ms. */
  async status() {
    const rows = await Promise.all(this.nodes.map((node) => node.status(this.database)));
    return { topology: 'multi-primary', protocol: 'couchdb', database: this.database, nodes: rows };
  }

  /** See mesh.mjs: `(docPath?, timeoutMs = 30000)`, every running node on the same revision(s). */
  waitConverged(docPath, timeoutMs = 30000) {
    return waitConverged(this.nodes, this.database, docPath, timeoutMs);
  }

  /** Closes the admin API, lets the running action finish, stops every node, removes a temp data directory. */
  stop() {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.stopped = (async () => {
      if (this.admin) await this.admin.close();
      await this.queue;
      await Promise.all(this.nodes.map((node) => node.terminate()));
      if (this.ownsDir) fs.rmSync(this.root, { recursive: true, force: true });
      live.delete(this);
      this.log('stopped');
    })();
    return this.stopped;
  }

  /** Synchronous last resort for process 'exit': SIGKILL every child, remove the temp directory. */
  killNowSync() {
    this.stopping = true;
    for (const node of this.nodes) node.killNowSync();
    if (this.ownsDir) {
      try { fs.rmSync(this.root, { recursive: true, force: true }); } catch {}
    }
  }
}

/** What startCouchCluster resolves to: plain data, live node getters, and the actions as standalone functions. */
function publicHandle(cluster, startupMs) {
  const { nodes, database, root, admin } = cluster;
  const info = {
    topology: 'multi-primary',
    protocol: 'couchdb',
    database,
    endpoints: nodes.map((n) => n.url),
    nodes: nodes.map((n) => ({ nodeId: n.nodeId, url: n.url })),
    adminUrl: admin.url,
    adminToken: admin.token,
    // Every node's server admin, the only user its database admits (basic auth).
    couchUser: cluster.nodeAdmin.user,
    couchPassword: cluster.nodeAdmin.password,
    corsOrigins: cluster.corsOrigins,
    pid: process.pid,
    dataDir: root,
  };
  const headers = { authorization: nodes[0].auth };
  return {
    /** The `headers` client option the nodes require (basic auth of the server admin). */
    headers,
    /** fetch with that authorization added (unless the call sets one). */
    fetch: (url, init = {}) => fetch(url, { ...init, headers: { ...headers, ...init.headers } }),
    couchUser: info.couchUser,
    couchPassword: info.couchPassword,
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
    adminUrl: admin.url,
    adminToken: admin.token,
    dataDir: root,
    startupMs,
    /** The JSON object the CLI prints. */
    info,
    kill: (i) => cluster.kill(i),
    start: (i) => cluster.start(i),
    hang: (i) => cluster.hang(i),
    unhang: (i) => cluster.unhang(i),
    status: () => cluster.status(),
    waitConverged: (docPath, timeoutMs) => cluster.waitConverged(docPath, timeoutMs),
    stop: () => cluster.stop(),
  };
}

/**
 * Starts the cluster: `nodes` pouchdb-server processes (c0, c1, ...) on 127.0.0.1 (`port` for c0 and the next
 * ports for the others, or free ports when 0), the database on every node, continuous push replications from
 * every node to every other node, and the admin API on `adminPort` (0: a free port). Data goes to `dataDir`
 * (kept) or to a temp directory (removed by stop()). `log` receives supervisor messages (default: none).
 * Every node has one server admin with a generated password (the handle's `couchUser`/`couchPassword`, and
 * `headers` for a client), the only user its database admits; browsers may call the nodes from `corsOrigins` only.
 */
export async function startCouchCluster({
  nodes: count = 3,
  port = 0,
  database = 'app',
  dataDir,
  adminPort = 0,
  corsOrigins = [],
  logLevel = 'info',
  log = () => {},
} = {}) {
  validate(count, database, port);
  const bin = pouchdbServerBin();
  const began = Date.now();
  const ownsDir = !dataDir;
  const root = ownsDir ? fs.mkdtempSync(path.join(baseDir(), 'replikit-couch-')) : path.resolve(dataDir);
  fs.mkdirSync(root, { recursive: true });
  const ports = port === 0 ? await freePorts(count) : Array.from({ length: count }, (_, i) => port + i);
  const admin = { user: 'replikit', password: randomBytes(16).toString('hex') };
  const cluster = new CouchCluster({ ports, root, ownsDir, database, bin, logLevel, log, admin, corsOrigins });
  live.add(cluster);
  installExitHook();
  await cluster.boot(adminPort);
  const startupMs = Date.now() - began;
  const nodeList = cluster.nodes.map((n) => `${n.nodeId} ${n.url}`).join(', ');
  log(`${count} nodes ready in ${startupMs} ms: ${nodeList}; admin ${cluster.admin.url}`);
  return publicHandle(cluster, startupMs);
}

// ---- CLI ------------------------------------------------------------------------------------------------------
const USAGE = `usage: node server/couchdb/cluster.mjs [--nodes 3] [--port 7300] [--admin-port 7400] [--database app]
                                       [--data-dir DIR] [--cors-origin ORIGIN]... [--stop-on-stdin-close]
                                       [--state-file FILE]
  --port 0 picks free ports for every node and the admin API; --admin-port defaults to --port + 100.
  --state-file defaults to couch-cluster-<port>.json in $XDG_RUNTIME_DIR/replikit, else <tmp>/replikit-<uid>.
  The JSON line goes to stdout when it is a pipe; a terminal gets a summary without the secrets.
  Every node requires its server admin (couchUser/couchPassword in the JSON line and the state file, mode 0600);
  --cors-origin (repeatable) is a browser origin allowed to call the nodes (default: none).`;

/** The command line as parseArgs values; prints the usage and exits 2 when it does not parse. */
function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        nodes: { type: 'string', default: '3' },
        port: { type: 'string', default: '7300' },
        'admin-port': { type: 'string' },
        database: { type: 'string', default: 'app' },
        'data-dir': { type: 'string' },
        'stop-on-stdin-close': { type: 'boolean', default: false },
        'state-file': { type: 'string' },
        'cors-origin': { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) {
    console.error(`couch-cluster: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
}

/** The integer option `--name` (0 to 65535); prints the usage and exits 2 otherwise. */
function intOption(values, name) {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 0 || v > 65535) {
    console.error(`couch-cluster: --${name} must be an integer, got ${values[name]}\n${USAGE}`);
    process.exit(2);
  }
  return v;
}

/**
 * Stops the cluster (and removes the state file) on SIGINT/SIGTERM/SIGHUP, and on stdin EOF when `onStdinClose`;
 * a second signal exits at once. `getCluster()` is null while starting: then it exits 1 and the exit hook kills
 * what was spawned. Returns `isShuttingDown()`.
 */
function stopOnSignals({ getCluster, stateFile, onStdinClose, log }) {
  let shuttingDown = false;
  const shutdown = async (why) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`stopping (${why})`);
    const cluster = getCluster();
    if (!cluster) process.exit(1); // still starting: the exit hook kills what was spawned
    await cluster.stop();
    if (stateFile) fs.rmSync(stateFile, { force: true });
    process.exit(0);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => (shuttingDown ? process.exit(1) : shutdown(sig)));
  }
  if (onStdinClose) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
  return () => shuttingDown;
}

async function main() {
  const values = parseCommandLine();
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = intOption(values, 'port');
  const adminPort = values['admin-port'] !== undefined ? intOption(values, 'admin-port') : port === 0 ? 0 : port + 100;
  const log = (msg) => process.stderr.write(`couch-cluster: ${msg}\n`);
  // Without --state-file, the per-user default: with stdout on a terminal, the secrets go nowhere else.
  const stateFile = values['state-file'] ? path.resolve(values['state-file']) : defaultStateFile(port);

  let cluster = null;
  const isShuttingDown = stopOnSignals({
    getCluster: () => cluster, stateFile, onStdinClose: values['stop-on-stdin-close'], log,
  });
  try {
    cluster = await startCouchCluster({
      nodes: intOption(values, 'nodes'),
      port,
      adminPort,
      database: values.database,
      dataDir: values['data-dir'],
      corsOrigins: values['cors-origin'],
      log,
    });
  } catch (e) {
    log(`failed to start: ${e.message}`);
    process.exit(1);
  }
  if (isShuttingDown()) {
    await cluster.stop();
    process.exit(0);
  }
  if (stateFile) {
    fs.rmSync(stateFile, { force: true });
    fs.writeFileSync(stateFile, JSON.stringify(cluster.info, null, 2), { mode: 0o600, flag: 'wx' });
  }
  if (process.stdout.isTTY) {
    // A terminal (and its scrollback, a screen share) gets no secret: the state file holds them.
    const nodes = cluster.info.nodes.map((n) => `  ${n.nodeId}  ${n.url}`).join('\n');
    process.stdout.write(`couch-cluster ready\n${nodes}\n  admin  ${cluster.info.adminUrl}\n`
      + `  state  ${stateFile} (mode 0600): couchUser/couchPassword (basic auth on every node), adminToken\n`);
  } else {
    process.stdout.write(`${JSON.stringify(cluster.info)}\n`);
  }
}

/** The default state file, as scripts/start.sh names it: couch-cluster-<port>.json in the per-user directory. */
function defaultStateFile(port) {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const dir = runtime && fs.existsSync(runtime) ? path.join(runtime, 'replikit') : path.join(os.tmpdir(), `replikit-${process.getuid()}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid()) throw new Error(`${dir} is not a directory of yours; pass --state-file`);
  fs.chmodSync(dir, 0o700);
  return path.join(dir, `couch-cluster-${port === 0 ? `pid${process.pid}` : port}.json`);
}

const invokedAs = process.argv[1] ? pathToFileURL(fs.realpathSync(process.argv[1])).href : '';
if (import.meta.url === invokedAs) {
  main().catch((e) => {
    process.stderr.write(`couch-cluster: ${e.stack ?? e}\n`);
    process.exit(1);
  });
}
