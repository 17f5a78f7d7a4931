#!/usr/bin/env node
// A Patroni + etcd cluster on loopback with a replikit-server gateway per node: consensus failover for real
// (etcd is Raft; Patroni holds the leader key there and promotes a synchronous standby when it expires).
//
//   node scripts/patroni/cluster.mjs [--sync on|quorum|off] [--strict]
//
// Three "machines" m0-m2, each: one etcd member, one Patroni managing one PostgreSQL 15 node, one gateway.
// Everything lives in a temp directory, on free ports of 127.0.0.1. Passwords and the gateway token are generated
// and kept in 0600 files (never on a command line or in a log). Prints one JSON line (endpoints, token file,
// Patroni REST URLs) and runs until Ctrl-C; stop() (also on SIGINT, SIGTERM and exit) leaves no process behind.
// Needs `bash scripts/bootstrap.sh patroni` (etcd, Patroni in .tools/patroni-venv) and a built replikit-server.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { etcdArgs, gatewayConninfo, gatewayRoleSql, patroniConfig, secret } from './config.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PG_BIN = process.env.REPLIKIT_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PATRONI = join(root, '.tools', 'patroni-venv', 'bin', 'patroni');
const SERVER_BIN = process.env.REPLIKIT_SERVER_BIN ?? join(root, 'target', 'debug', 'replikit-server');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `count` distinct free ports on 127.0.0.1 (held open together, so none is handed out twice). */
async function freePorts(count) {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** uid and gid of the `postgres` OS user, when we are root (PostgreSQL refuses to run as root). */
function postgresIds() {
  if (process.getuid() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs a `postgres` OS user to run PostgreSQL');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Write `text` to `path`, mode 0600, owned by `ids` (or us). */
function writeSecretFile(path, text, ids) {
  writeFileSync(path, text, { mode: 0o600 });
  if (ids) chownSync(path, ids.uid, ids.gid);
}

/** Every process whose command line mentions `needle` (our temp dir, unique to this cluster). */
function processesMentioning(needle) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

/** `pid`'s children (by /proc's ppid), for the backends of a postmaster. */
function childrenOf(pid) {
  const kids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) kids.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return kids;
}

const alive = (pid) => {
  try { process.kill(pid, 0); return true; } catch { return false; }
};
const kill = (pid, signal = 'SIGKILL') => {
  try { process.kill(pid, signal); } catch { /* already gone */ }
};

/** GET `url` as JSON with a short timeout; null when it does not answer 2xx. */
async function getJson(url, headers = {}) {
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(1500) });
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

/** Poll `check` every 250 ms until it returns a truthy value, or throw `what` after `ms`. */
async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms / 1000} s`);
    await sleep(250);
  }
}

/**
 * Start the cluster. `sync`: Patroni's synchronous mode ('on' = `synchronous_mode: true`, 'quorum', 'off');
 * `strict`: `synchronous_mode_strict`. Resolves once a leader, a synchronous standby (unless 'off') and every
 * gateway answer.
 */
export async function startPatroniCluster({ sync = 'on', strict = false, log = () => {}, killOnSignal = true } = {}) {
  for (const [path, hint] of [[PATRONI, 'bash scripts/bootstrap.sh patroni'], [SERVER_BIN, 'cargo build -p replikit-server'],
    [join(PG_BIN, 'postgres'), 'install PostgreSQL 15']]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`${hint}\``);
  }
  const ids = postgresIds();
  if (ids) {
    // Patroni runs from .tools/patroni-venv as postgres: every directory above it must let postgres through.
    const check = spawnSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', PATRONI, '--version']);
    if (check.status !== 0) throw new Error(`the postgres user cannot run ${PATRONI}: the checkout must be readable by it`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'replikit-patroni-'));
  const cluster = new PatroniCluster(dir, log, killOnSignal);
  try {
    await cluster.start({ ids, sync, strict });
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

class PatroniCluster {
  constructor(dir, log, killOnSignal) {
    this.dir = dir;
    this.log = log;
    this.machines = [];
    this.stopped = false;
    this.token = secret();
    this.tokenFile = join(dir, 'gateway', 'token');
    this.gatewayPassword = secret();
    this.superuserPassFile = join(dir, 'gateway', 'superuser.pgpass');
    // However this process ends (a failed test, Ctrl-C, the test runner's SIGTERM), nothing of ours outlives it:
    // 'exit' does not run on a signal's default action, so the signals get a handler that kills, then exits.
    this.emergency = () => {
      this.killAllSync();
      rmSync(this.dir, { recursive: true, force: true });
    };
    this.onSignal = (signal) => {
      this.emergency();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('exit', this.emergency);
    this.signals = killOnSignal ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : [];
    for (const signal of this.signals) process.once(signal, this.onSignal);
  }

  /** etcd, then Patroni on every machine, then the gateway role and the gateways. */
  async start({ ids, sync, strict }) {
    // Patroni (as postgres) must reach its node directory; nothing else in here is readable by others.
    chmodSync(this.dir, 0o711);
    mkdirSync(join(this.dir, 'gateway'), { mode: 0o700 });
    writeSecretFile(this.tokenFile, this.token);
    const ports = await freePorts(15);
    this.machines = ['m0', 'm1', 'm2'].map((name, i) => ({
      name,
      dir: join(this.dir, name),
      etcd: { name: `e${i}`, client: ports[i], peer: ports[3 + i] },
      pgPort: ports[6 + i],
      apiPort: ports[9 + i],
      gatewayPort: ports[12 + i],
      pids: {},
    }));
    for (const m of this.machines) {
      mkdirSync(m.dir, { mode: 0o700 });
      if (ids) chownSync(m.dir, ids.uid, ids.gid);
    }
    const etcdHosts = await this.startEtcd();
    const leader = await this.startPatroni({ ids, sync, strict, etcdHosts });
    await this.startGateways(leader);
  }

  async startEtcd() {
    const members = this.machines.map((m) => m.etcd);
    this.etcdToken = `replikit-${process.pid}-${Date.now()}`;
    for (const [i, m] of this.machines.entries()) {
      m.pids.etcd = this.spawn(`etcd-${m.name}`, 'etcd', etcdArgs(members, i, join(m.dir, 'etcd'), this.etcdToken));
    }
    const hosts = members.map((e) => `127.0.0.1:${e.client}`);
    await until('etcd answering', 20000, async () => (await getJson(`http://${hosts[0]}/health`))?.health === 'true');
    this.log(`etcd: 3 members on ${hosts.join(', ')}`);
    return hosts;
  }

  /** Patroni on every machine; resolves to the leader once a synchronous standby (unless 'off') streams. */
  async startPatroni({ ids, sync, strict, etcdHosts }) {
    const passwords = { superuser: secret(), replication: secret(), rewind: secret() };
    writeSecretFile(this.superuserPassFile, `127.0.0.1:*:*:postgres:${passwords.superuser}\n`);
    for (const m of this.machines) {
      const config = patroniConfig({ name: m.name, dir: m.dir, bin: PG_BIN, scope: 'replikit',
        namespace: `/${this.etcdToken}/`, etcdHosts, pgPort: m.pgPort, apiPort: m.apiPort, sync, strict, passwords });
      writeSecretFile(join(m.dir, 'patroni.yml'), JSON.stringify(config, null, 2), ids);
      m.pids.patroni = this.runPatroni(m, ids);
    }
    const leader = await until('a Patroni leader', 90000, () => this.leader());
    if (sync !== 'off') {
      await until('a synchronous standby', 60000, async () => (await this.members()).some((x) => /sync|quorum/.test(x.role)));
    }
    await until('every member streaming', 60000,
      async () => (await this.members()).filter((x) => x.state === 'streaming' || x.state === 'running').length === 3);
    this.log(`patroni: leader ${leader.name}, ${sync === 'off' ? 'async' : `synchronous_mode ${sync}`}${strict ? ' strict' : ''}`);
    return leader;
  }

  /** The gateway's role and database (created on the leader, replicated from there), then one gateway per node. */
  async startGateways(leader) {
    const sql = gatewayRoleSql(this.gatewayPassword);
    this.psql(leader, 'postgres', sql.postgres);
    this.psql(leader, 'replikit', sql.replikit);
    for (const m of this.machines) this.startGateway(m);
    await until('every gateway answering', 30000, async () => {
      const health = await Promise.all(this.machines.map((m) => this.gatewayHealth(m)));
      return health.every((h) => h) && health.some((h) => h.role === 'primary');
    });
    this.log(`gateways: ${this.endpoints().join(', ')}`);
  }

  /** Spawn `cmd args` detached, its output appended to logs/<label>.log; returns its pid. */
  spawn(label, cmd, args, options = {}) {
    mkdirSync(join(this.dir, 'logs'), { recursive: true, mode: 0o700 });
    const out = openSync(join(this.dir, 'logs', `${label}.log`), 'a', 0o600);
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], ...options });
    child.on('error', (e) => this.log(`${label}: ${e.message}`));
    child.unref();
    return child.pid;
  }

  /** Patroni as the postgres user: setpriv execs it, so the pid we keep is Patroni's own. */
  runPatroni(m, ids) {
    const env = { PATH: '/usr/bin:/bin', HOME: m.dir, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
    const file = join(m.dir, 'patroni.yml');
    if (!ids) return this.spawn(`patroni-${m.name}`, PATRONI, [file], { cwd: m.dir, env });
    return this.spawn(`patroni-${m.name}`, 'setpriv',
      ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', PATRONI, file], { cwd: m.dir, env });
  }

  startGateway(m) {
    const pgFile = join(this.dir, 'gateway', `${m.name}.pg`);
    writeSecretFile(pgFile, gatewayConninfo(m.pgPort, this.gatewayPassword));
    m.pids.gateway = this.spawn(`gateway-${m.name}`, SERVER_BIN, ['serve', '--listen', `127.0.0.1:${m.gatewayPort}`,
      '--pg-file', pgFile, '--node-id', m.name, '--auth-token-file', this.tokenFile]);
  }

  /** Run `sql` (on stdin, never argv) on machine `m` as the superuser, password from a 0600 pgpass file. */
  psql(m, db, sql) {
    const r = spawnSync(join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(m.pgPort),
      '-U', 'postgres', '-d', db, '-f', '-'], { input: sql, env: { ...process.env, PGPASSFILE: this.superuserPassFile }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql on ${m.name} failed: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Patroni's view of the members (`GET /cluster` from any live REST API): name, role, state, lag. */
  async members() {
    for (const m of this.machines) {
      const c = await getJson(`http://127.0.0.1:${m.apiPort}/cluster`);
      if (c) return c.members ?? [];
    }
    return [];
  }

  /** The machine whose Patroni answers `GET /primary` with 200 (the leader), or null. */
  async leader() {
    for (const m of this.machines) {
      if (m.lost) continue;
      const r = await fetch(`http://127.0.0.1:${m.apiPort}/primary`, { signal: AbortSignal.timeout(1500) }).catch(() => null);
      if (r?.status === 200) return m;
    }
    return null;
  }

  gatewayHealth(m) {
    return getJson(`http://127.0.0.1:${m.gatewayPort}/v1/health`, { authorization: `Bearer ${this.token}` });
  }

  endpoints() {
    return this.machines.map((m) => `http://127.0.0.1:${m.gatewayPort}`);
  }

  /** The postmaster's pid of machine `m` (first line of postmaster.pid), or null. */
  postmaster(m) {
    try {
      return Number(readFileSync(join(m.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
    } catch {
      return null;
    }
  }

  /**
   * Lose machine `m` as a machine is lost: SIGKILL its Patroni, its postmaster and every backend, its gateway and
   * (with `etcd`) its etcd member, all at once. Resolves, once none of them is alive, to the time (ms since the
   * epoch) the signals were sent.
   */
  async loseMachine(m, { etcd = true } = {}) {
    const postmaster = this.postmaster(m);
    const pids = [m.pids.patroni, postmaster, ...(postmaster ? childrenOf(postmaster) : []), m.pids.gateway];
    if (etcd) pids.push(m.pids.etcd);
    for (const pid of pids.filter(Boolean)) kill(pid);
    const at = Date.now();
    m.lost = true;
    await until(`${m.name}'s processes gone`, 5000, () => pids.filter(Boolean).every((p) => !alive(p)));
    return at;
  }

  /** SIGKILL everything of ours that is still alive; synchronous, so it also runs from an `exit` handler. */
  killAllSync() {
    for (const m of this.machines) {
      const postmaster = this.postmaster(m);
      for (const pid of [m.pids.patroni, m.pids.gateway, m.pids.etcd, postmaster, ...(postmaster ? childrenOf(postmaster) : [])]) {
        if (pid) kill(pid);
      }
    }
    for (const pid of processesMentioning(this.dir)) kill(pid);
  }

  /** Stop everything (Patroni first, so it stops PostgreSQL), then SIGKILL what remains and remove the temp dir. */
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    const postmasters = this.machines.map((m) => this.postmaster(m)).filter(Boolean);
    for (const m of this.machines) if (m.pids.gateway) kill(m.pids.gateway, 'SIGTERM');
    for (const m of this.machines) if (m.pids.patroni) kill(m.pids.patroni, 'SIGTERM');
    await until('Patroni and PostgreSQL stopped', 15000,
      () => [...this.machines.map((m) => m.pids.patroni), ...postmasters].every((p) => !p || !alive(p))).catch(() => {});
    for (const m of this.machines) if (m.pids.etcd) kill(m.pids.etcd, 'SIGTERM');
    await sleep(200);
    this.killAllSync();
    await until('no process of the cluster left', 5000, () => processesMentioning(this.dir).length === 0).catch(() => {});
    process.removeListener('exit', this.emergency);
    for (const signal of this.signals) process.removeListener(signal, this.onSignal);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Processes still running that belong to this cluster (for a test's final check). */
  leftovers() {
    return processesMentioning(this.dir);
  }

  /** What a client needs, as one JSON-able object. */
  info() {
    return {
      endpoints: this.endpoints(),
      tokenFile: this.tokenFile,
      patroni: this.machines.map((m) => `http://127.0.0.1:${m.apiPort}`),
      etcd: this.machines.map((m) => `http://127.0.0.1:${m.etcd.client}`),
      dir: this.dir,
    };
  }
}

// CLI: start, print the endpoints, run until Ctrl-C.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const sync = args.includes('--sync') ? args[args.indexOf('--sync') + 1] : 'on';
  const strict = args.includes('--strict');
  const log = (line) => console.error(`patroni-cluster: ${line}`);
  const cluster = await startPatroniCluster({ sync, strict, log, killOnSignal: false });
  console.log(JSON.stringify(cluster.info()));
  log(`running; logs in ${cluster.dir}/logs; Ctrl-C stops everything`);
  const stop = async () => {
    log('stopping');
    await cluster.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}
