// One node of the CouchDB dev cluster: a pouchdb-server child process on 127.0.0.1, its directory and its state
// ('running' | 'stopped' | 'hung') as the supervisor knows it. It spawns the child, waits until the child answers
// with its own uuid, and kills (SIGTERM/SIGKILL), hangs (SIGSTOP) and unhangs (SIGCONT) it. It knows nothing of
// the other nodes: the replications between them are mesh.mjs, and cluster.mjs composes the nodes.
//
// Access: each node has one server admin (`admin`: { user, password }, the same on every node, set in its
// config.json, which pouchdb-server hashes at start) and the database admits only that user (its _security, set by
// mesh.mjs), so an anonymous request cannot read or write; CORS allows only the given browser origins (none by
// default). Every request of the supervisor carries the admin's basic auth (`this.auth`).
//
// Every child gets two preloads: replication-guard.cjs (pouchdb-server crashes when a replication peer dies;
// the guard makes replications retry instead) and lifeline.cjs (the child exits when the supervisor's end of
// its stdin pipe closes, so nothing outlives the supervisor, even after a SIGKILL).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CouchClusterError } from './error.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const GUARD = path.join(here, 'replication-guard.cjs');
const LIFELINE = path.join(here, 'lifeline.cjs');
export const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 30000;
const STATUS_TIMEOUT_MS = 500;
const STOP_GRACE_MS = 5000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** fetch with a time limit; resolves to the Response, rejects on network error or timeout. */
export function fetchWithin(url, ms, init = {}) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
}

/** The pouchdb-server executable script, resolved as this package's dependency. */
export function pouchdbServerBin() {
  let pkg;
  try {
    pkg = require.resolve('pouchdb-server/package.json');
  } catch {
    throw new CouchClusterError('not_installed', 'pouchdb-server is not installed: run `npm install` at the repository root');
  }
  return path.join(path.dirname(pkg), 'bin', 'pouchdb-server');
}

/** `n` distinct free loopback ports (all bound at once, then released). */
export async function freePorts(n) {
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

/** The end of a log file, for an error message; '' when it cannot be read. */
function tail(file, bytes = 2000) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

/** Node `c<index>`: one pouchdb-server process on 127.0.0.1:`port`, with its files in `<root>/c<index>/`. */
export class CouchNode {
  #bin;
  #logLevel;
  #log;
  #isStopping;

  /**
   * Stopped until spawn(). `bin` is pouchdbServerBin(); `log` receives supervisor messages; `isStopping()` tells
   * whether the whole cluster is stopping (an exit is then expected, so it is not logged).
   */
  constructor({ index, port, root, bin, logLevel, log, isStopping, admin, corsOrigins = [] }) {
    this.nodeId = `c${index}`;
    this.index = index;
    this.port = port;
    this.url = `http://${HOST}:${port}`;
    this.dir = path.join(root, this.nodeId);
    this.uuid = null;
    this.child = null;
    this.exited = null; // resolves with { code, signal[, error] } when the current child exits
    this.state = 'stopped'; // 'running' | 'stopped' | 'hung'
    this.lastExit = null;
    this.killing = false;
    this.admin = admin;
    /** The Authorization header value of the server admin. */
    this.auth = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`;
    this.corsOrigins = corsOrigins;
    this.#bin = bin;
    this.#logLevel = logLevel;
    this.#log = log;
    this.#isStopping = isStopping;
  }

  /** Spawns the pouchdb-server and resolves once it answers `GET /` with its own uuid. */
  async spawn() {
    await assertPortFree(this.port);
    const config = this.#writeConfig();
    const logFile = path.join(this.dir, 'server.log');
    const child = this.#launch(config, logFile);
    await this.#waitReady(child, logFile);
    this.state = 'running';
  }

  /** config.json backs pouchdb-server's /_config: a stable uuid (how we recognise our process), the log file. */
  #writeConfig() {
    fs.mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, 'config.json');
    let config = {};
    try {
      config = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {}
    config.couchdb = { ...config.couchdb, uuid: config.couchdb?.uuid ?? randomUUID() };
    config.log = { ...config.log, file: path.join(this.dir, 'log.txt'), level: this.#logLevel };
    // `--no-stdout-logs` on the command line is read by nomnom as "stdout-logs = false" and ignored; the
    // config key is what pouchdb-server actually checks.
    config.pouchdb_server = { ...config.pouchdb_server, 'no-stdout-logs': true };
    // The server admin (hashed by pouchdb-server when it starts); CORS only for the given origins.
    config.admins = { [this.admin.user]: this.admin.password };
    config.httpd = { ...config.httpd, enable_cors: this.corsOrigins.length > 0 };
    config.cors = { ...config.cors, origins: this.corsOrigins.join(', '), credentials: false };
    fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    this.uuid = config.couchdb.uuid;
    return file;
  }

  /** Starts the child with both preloads, its output appended to `logFile`, and follows its exit. */
  #launch(config, logFile) {
    const fd = fs.openSync(logFile, 'a');
    let child;
    try {
      child = spawn(
        process.execPath,
        ['--require', GUARD, '--require', LIFELINE, this.#bin,
          '--port', String(this.port), '--host', HOST, '--dir', this.dir, '--config', config,
          '--no-stdout-logs', '--no-color'],
        // cwd: pouchdb-server writes files (log.txt, config.json defaults) to its working directory.
        { cwd: this.dir, stdio: ['pipe', fd, fd], env: { ...process.env, REPLIKIT_COUCH_LIFELINE: '1' } },
      );
    } finally {
      fs.closeSync(fd);
    }
    child.stdin.on('error', () => {});
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('error', (e) => resolve({ code: null, signal: null, error: e }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    this.exited.then((exit) => {
      if (this.child !== child) return;
      this.child = null;
      this.state = 'stopped';
      this.lastExit = { ...exit, at: new Date().toISOString() };
      if (!this.#isStopping() && !this.killing) {
        this.#log(`${this.nodeId} (pid ${child.pid}) exited unexpectedly: code ${exit.code} signal ${exit.signal}`);
      }
    });
    return child;
  }

  /** Polls `GET /` until it answers with our uuid; SIGKILLs the child and throws on another server or timeout. */
  async #waitReady(child, logFile) {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.child !== child) {
        throw new CouchClusterError('start_failed', `${this.nodeId} exited while starting:\n${tail(logFile)}`);
      }
      try {
        const r = await fetchWithin(`${this.url}/`, 1000);
        const body = await r.json();
        if (body.uuid === this.uuid) return;
        throw new CouchClusterError('port_in_use', `${this.url} is answered by another server (uuid ${body.uuid})`, 409);
      } catch (e) {
        if (e instanceof CouchClusterError) {
          this.#signal('SIGKILL');
          throw e;
        }
      }
      if (Date.now() > deadline) {
        this.#signal('SIGKILL');
        throw new CouchClusterError('start_failed', `${this.nodeId} did not answer within ${READY_TIMEOUT_MS} ms:\n${tail(logFile)}`);
      }
      await sleep(50);
    }
  }

  /** Sends `signal` to a live child; a hung child is continued first so that it can act on a SIGTERM. */
  #signal(signal) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    try {
      if (this.state === 'hung' && signal !== 'SIGKILL') child.kill('SIGCONT');
      child.kill(signal);
    } catch {}
  }

  /** Sends `signal` (an operator's kill: not logged as unexpected) and resolves once the child has exited. */
  async kill(signal = 'SIGKILL') {
    const exited = this.exited;
    this.killing = true;
    try {
      this.#signal(signal);
      if (exited) await exited;
    } finally {
      this.killing = false;
    }
  }

  /** The cluster's stop: SIGTERM, SIGKILL after STOP_GRACE_MS, resolves once the child has exited. */
  async terminate() {
    if (!this.child) return;
    const exited = this.exited;
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Synchronous last resort (process 'exit'): SIGCONT then SIGKILL, without waiting. */
  killNowSync() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    try { child.kill('SIGCONT'); } catch {}
    try { child.kill('SIGKILL'); } catch {}
  }

  /** SIGSTOP: the process stays, and answers nothing until unhang(). */
  hang() {
    this.child.kill('SIGSTOP');
    this.state = 'hung';
  }

  /** SIGCONT: the same process resumes. */
  unhang() {
    this.child.kill('SIGCONT');
    this.state = 'running';
  }

  /** One CouchDB request with a JSON body (10 s limit); resolves `{ status, body }`, body `{}` if not JSON. */
  async request(method, urlPath, body) {
    const r = await fetchWithin(`${this.url}${urlPath}`, 10000, {
      method,
      headers: { authorization: this.auth, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json().catch(() => ({}));
    return { status: r.status, body: json };
  }

  /** The admin API's row for this node: its state, and doc_count/update_seq of `database` if it answers in 500 ms. */
  async status(database) {
    let info = null;
    if (this.state === 'running') {
      try {
        const r = await fetchWithin(`${this.url}/${database}`, STATUS_TIMEOUT_MS, { headers: { authorization: this.auth } });
        if (r.ok) info = await r.json();
      } catch {}
    }
    return {
      nodeId: this.nodeId,
      url: this.url,
      pid: this.child?.pid ?? null,
      state: this.state,
      // The PG dev cluster's word for the same thing, so the dashboard's code applies as is.
      gateway: this.state === 'running' ? 'up' : this.state === 'hung' ? 'hung' : 'down',
      docCount: info?.doc_count ?? null,
      updateSeq: info?.update_seq ?? null,
    };
  }
}
