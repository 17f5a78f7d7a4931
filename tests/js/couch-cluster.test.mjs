// The multi-primary CouchDB dev cluster (server/couchdb/cluster.mjs: 3 pouchdb-server nodes with continuous
// two-way replication): writes replicate everywhere, a node killed with SIGKILL takes no other node down (the
// replication guard), a restarted node catches up and replicates again, hang/unhang, the admin API, and the CLI
// leaves nothing behind when its stdin closes. Convergence bounds are generous (seconds), never milliseconds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { root } from './helpers.mjs';
import { startCouchCluster } from '../../server/couchdb/cluster.mjs';

const CONVERGE_MS = 20000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every node requires its server admin: the basic auth of each started cluster, by node origin.
const auths = new Map();
const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
function remember(info) {
  for (const url of info.endpoints) auths.set(new URL(url).origin, basic(info.couchUser, info.couchPassword));
}
/** fetch with the node admin's authorization of the cluster `url` belongs to. */
const authed = (url, init = {}) => fetch(url, { ...init, headers: { authorization: auths.get(new URL(url).origin), ...init.headers } });

/** A plain CouchDB PUT of a new document; returns its rev. */
async function put(url, db, id, body = {}) {
  const r = await authed(`${url}/${db}/${encodeURIComponent(id)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await r.json();
  assert.equal(r.status, 201, `PUT ${id} on ${url}: ${JSON.stringify(json)}`);
  return json.rev;
}

async function get(url, db, id) {
  const r = await authed(`${url}/${db}/${encodeURIComponent(id)}`);
  return r.status === 200 ? r.json() : null;
}

/** Polls until `url` has every id in `ids` (generous deadline); returns how long it took. */
async function waitDocs(url, db, ids, timeoutMs = CONVERGE_MS) {
  const t0 = Date.now();
  for (;;) {
    const missing = [];
    for (const id of ids) if (!(await get(url, db, id))) missing.push(id);
    if (missing.length === 0) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) assert.fail(`${url} still misses ${missing.join(', ')} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of processes whose command line mentions `text` (from /proc, so no pgrep needed). */
function processesMentioning(text) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

describe('a 3-node multi-primary pouchdb-server cluster', () => {
  let cluster;
  let urls;
  let db;
  before(async () => {
    cluster = await startCouchCluster({ nodes: 3, corsOrigins: ['http://127.0.0.1:8080'] });
    urls = cluster.endpoints;
    remember(cluster);
    db = cluster.database;
  });
  after(async () => {
    const dataDir = cluster?.dataDir;
    await cluster?.stop();
    if (dataDir) {
      assert.equal(existsSync(dataDir), false, 'stop() removes the temp data directory');
      assert.deepEqual(processesMentioning(dataDir), [], 'stop() leaves no pouchdb-server behind');
    }
  });

  test('starts 3 nodes on 127.0.0.1 with the database on each', async () => {
    assert.equal(urls.length, 3);
    assert.deepEqual(cluster.nodes.map((n) => n.nodeId), ['c0', 'c1', 'c2']);
    for (const url of urls) {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const info = await (await authed(`${url}/${db}`)).json();
      assert.equal(info.db_name, db);
    }
    const status = await cluster.status();
    assert.equal(status.topology, 'multi-primary');
    assert.deepEqual(status.nodes.map((n) => n.state), ['running', 'running', 'running']);
  });

  test('a node refuses anonymous reads and writes, and CORS to any origin but the allowed one', async () => {
    for (const url of urls) {
      const write = await fetch(`${url}/${db}/anonymous`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      assert.equal(write.status, 401, `anonymous PUT on ${url}`);
      const bulk = await fetch(`${url}/${db}/_bulk_docs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"docs":[{"_id":"anonymous"}]}' });
      assert.ok(bulk.status === 401 || (await bulk.json()).every((r) => r.error === 'unauthorized'), `anonymous _bulk_docs on ${url}`);
      for (const path of [`/${db}/_all_docs`, `/${db}/_changes`, `/${db}`]) {
        assert.equal((await fetch(`${url}${path}`)).status, 401, `anonymous GET ${path} on ${url}`);
      }
      const wrong = await fetch(`${url}/${db}/anonymous`, { method: 'PUT', headers: { authorization: basic('replikit', 'guess'), 'content-type': 'application/json' }, body: '{}' });
      assert.equal(wrong.status, 401, 'a guessed password');
      assert.equal(await get(url, db, 'anonymous'), null, 'nothing was written');
      const preflight = (origin) => fetch(`${url}/${db}/x`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT' } });
      assert.equal((await preflight('http://evil.example')).headers.get('access-control-allow-origin'), null);
      assert.equal((await preflight('http://127.0.0.1:8080')).headers.get('access-control-allow-origin'), 'http://127.0.0.1:8080');
    }
  });

  test('a document written on c0 appears on c1 and c2', async () => {
    const rev = await put(urls[0], db, 'from-c0', { hello: 'world' });
    await cluster.waitConverged('from-c0', CONVERGE_MS);
    for (const url of urls) {
      const doc = await get(url, db, 'from-c0');
      assert.equal(doc?._rev, rev, `${url} has the same revision`);
      assert.equal(doc.hello, 'world');
    }
  });

  test('kill -9 c1: c0 and c2 keep replicating between themselves and neither crashes', async () => {
    const [pid0, pid2] = [cluster.nodes[0].pid, cluster.nodes[2].pid];
    const pid1 = cluster.nodes[1].pid;
    await cluster.kill(1);
    assert.equal(alive(pid1), false, 'c1 is gone');
    assert.equal(cluster.nodes[1].state, 'stopped');
    const ids0 = [];
    const ids2 = [];
    for (let i = 0; i < 5; i++) {
      ids0.push(`down-c0-${i}`);
      ids2.push(`down-c2-${i}`);
      await put(urls[0], db, ids0[i], { i });
      await put(urls[2], db, ids2[i], { i });
    }
    await waitDocs(urls[0], db, ids2);
    await waitDocs(urls[2], db, ids0);
    // Several retry rounds against the dead peer (the guard retries at most every second).
    await sleep(3000);
    await put(urls[0], db, 'down-c0-late');
    await waitDocs(urls[2], db, ['down-c0-late']);
    for (const [i, pid] of [[0, pid0], [2, pid2]]) {
      assert.equal(cluster.nodes[i].pid, pid, `c${i} was not restarted`);
      assert.ok(alive(pid), `c${i} (pid ${pid}) is alive`);
      assert.equal(cluster.nodes[i].lastExit, null, `c${i} never exited`);
    }
    const status = await cluster.status();
    assert.deepEqual(status.nodes.map((n) => n.state), ['running', 'stopped', 'running']);
    assert.equal(status.nodes[1].docCount, null);
    assert.equal(status.nodes[0].docCount, status.nodes[2].docCount);
    const log = readFileSync(join(cluster.nodes[0].dir, 'server.log'), 'utf8');
    assert.match(log, /replication-guard.*paused/, 'the guard saw the replication to c1 fail and kept it');
  });

  test('restarted c1 gets everything written meanwhile, and its own writes reach c0 and c2', async () => {
    const started = Date.now();
    const r = await cluster.start(1);
    assert.equal(r.started, true);
    assert.equal(cluster.nodes[1].state, 'running');
    const caughtUp = await waitDocs(urls[1], db, ['from-c0', 'down-c0-0', 'down-c0-4', 'down-c2-0', 'down-c2-4', 'down-c0-late']);
    console.log(`# c1 restarted in ${r.tookMs} ms, caught up ${caughtUp} ms later (${Date.now() - started} ms in all)`);
    await cluster.waitConverged(CONVERGE_MS);
    const rev = await put(urls[1], db, 'from-c1-after-restart', { n: 1 });
    await cluster.waitConverged('from-c1-after-restart', CONVERGE_MS);
    for (const url of [urls[0], urls[2]]) assert.equal((await get(url, db, 'from-c1-after-restart'))?._rev, rev);
  });

  test('a node restarted while a peer is down catches that peer up once it is back', async () => {
    await cluster.kill(1);
    await cluster.kill(2);
    await put(urls[0], db, 'two-down-c0');
    await cluster.start(1); // its replication to c2 starts against a dead node and must retry
    await put(urls[1], db, 'two-down-c1');
    await waitDocs(urls[1], db, ['two-down-c0']);
    await waitDocs(urls[0], db, ['two-down-c1']);
    await cluster.start(2);
    await waitDocs(urls[2], db, ['two-down-c0', 'two-down-c1']);
    await put(urls[2], db, 'two-down-c2');
    await cluster.waitConverged('two-down-c2', CONVERGE_MS);
    await cluster.waitConverged(CONVERGE_MS);
  });

  test("no node's log holds the admin password (replications carry it in their URLs)", async () => {
    for (const node of cluster.nodes) {
      for (const file of readdirSync(node.dir).filter((f) => f.endsWith('.log') || f === 'log.txt')) {
        const text = readFileSync(join(node.dir, file), 'utf8');
        assert.ok(text.length > 0 || file !== 'server.log', `${node.nodeId}/${file} was written`);
        assert.ok(!text.includes(cluster.couchPassword), `${node.nodeId}/${file} holds the password`);
      }
    }
  });

  test('hang and unhang through the admin API (SIGSTOP / SIGCONT)', async () => {
    const admin = async (path, method = 'POST') => {
      const r = await fetch(`${cluster.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${cluster.adminToken}` } });
      return { status: r.status, body: await r.json() };
    };
    const pid2 = cluster.nodes[2].pid;
    assert.deepEqual((await admin('/admin/nodes/c2/hang')).body, { nodeId: 'c2', hung: true });
    let status = (await admin('/admin/status', 'GET')).body;
    assert.equal(status.nodes[2].state, 'hung');
    assert.equal(status.nodes[2].gateway, 'hung');
    assert.equal(status.nodes[2].docCount, null);
    assert.equal(typeof status.nodes[0].docCount, 'number');
    // A hung node does not answer; the others keep replicating.
    await assert.rejects(fetch(`${urls[2]}/${db}`, { signal: AbortSignal.timeout(500) }));
    await put(urls[0], db, 'while-c2-hung');
    await put(urls[1], db, 'while-c2-hung-c1');
    await cluster.waitConverged(CONVERGE_MS); // running nodes only: c0 and c1
    assert.equal((await admin('/admin/nodes/c2/hang')).status, 409, 'hanging a hung node is an invalid state');
    assert.deepEqual((await admin('/admin/nodes/c2/unhang')).body, { nodeId: 'c2', hung: false });
    assert.equal(cluster.nodes[2].pid, pid2, 'unhang resumes the same process');
    await waitDocs(urls[2], db, ['while-c2-hung', 'while-c2-hung-c1']);
    await cluster.waitConverged(CONVERGE_MS);
    status = (await admin('/admin/status', 'GET')).body;
    assert.deepEqual(status.nodes.map((n) => n.state), ['running', 'running', 'running']);
    assert.equal(new Set(status.nodes.map((n) => n.docCount)).size, 1, 'every node has the same documents');
  });

  test('admin API: bearer token, kill/start, errors as {error: {code, message}}', async () => {
    const call = async (path, { method = 'POST', token = cluster.adminToken } = {}) => {
      const headers = token ? { authorization: `Bearer ${token}` } : {};
      const r = await fetch(`${cluster.adminUrl}${path}`, { method, headers });
      return { status: r.status, body: await r.json() };
    };
    assert.match(cluster.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    let r = await call('/admin/status', { method: 'GET', token: null });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'unauthorized');
    r = await call('/admin/status', { method: 'GET', token: 'wrong' });
    assert.equal(r.status, 401);
    r = await call('/admin/nodes/c9/kill');
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'unknown_node');
    r = await call('/admin/nodes/c0/promote');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'bad_request');
    r = await call('/admin/nodes/c0/start');
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'invalid_state');
    assert.equal(typeof r.body.error.message, 'string');
    r = await call('/admin/nope', { method: 'GET' });
    assert.equal(r.status, 404);

    assert.deepEqual((await call('/admin/nodes/c0/kill')).body, { nodeId: 'c0', killed: true });
    assert.equal((await call('/admin/nodes/c0/unhang')).status, 409);
    await put(urls[2], db, 'while-c0-killed');
    r = await call('/admin/nodes/c0/start');
    assert.equal(r.status, 200);
    assert.equal(r.body.started, true);
    await waitDocs(urls[0], db, ['while-c0-killed']);
    await put(urls[0], db, 'c0-after-admin-restart');
    await cluster.waitConverged('c0-after-admin-restart', CONVERGE_MS);
  });
});

describe('the CLI', () => {
  test('prints one JSON line, serves the admin API, and stops everything when stdin closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'replikit-couch-cli-'));
    const stateFile = join(dir, 'state.json');
    const child = spawn(
      process.execPath,
      [join(root, 'server', 'couchdb', 'cluster.mjs'), '--port', '0', '--stop-on-stdin-close', '--state-file', stateFile],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const stderr = [];
    child.stderr.on('data', (d) => stderr.push(String(d)));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      const line = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no JSON line in 60 s:\n${stderr.join('')}`)), 60000);
        exited.then((e) => reject(new Error(`exited (${JSON.stringify(e)}):\n${stderr.join('')}`)));
        createInterface({ input: child.stdout }).once('line', (l) => {
          clearTimeout(timer);
          resolve(l);
        });
      });
      const info = JSON.parse(line);
      remember(info);
      assert.deepEqual(Object.keys(info), [
        'topology', 'protocol', 'database', 'endpoints', 'nodes', 'adminUrl', 'adminToken', 'couchUser', 'couchPassword', 'corsOrigins', 'pid', 'dataDir',
      ]);
      assert.equal(statSync(stateFile).mode & 0o777, 0o600, 'the state file holds the credentials: 0600');
      assert.equal(info.topology, 'multi-primary');
      assert.equal(info.protocol, 'couchdb');
      assert.equal(info.database, 'app');
      assert.equal(info.pid, child.pid);
      assert.deepEqual(info.nodes.map((n) => n.nodeId), ['c0', 'c1', 'c2']);
      assert.deepEqual(info.nodes.map((n) => n.url), info.endpoints);
      assert.deepEqual(JSON.parse(readFileSync(stateFile, 'utf8')), info, 'the state file holds the same object');

      const status = await (await fetch(`${info.adminUrl}/admin/status`, { headers: { authorization: `Bearer ${info.adminToken}` } })).json();
      const pids = status.nodes.map((n) => n.pid);
      assert.equal(pids.length, 3);
      for (const pid of pids) assert.ok(alive(pid));
      assert.equal(processesMentioning(info.dataDir).length, 3, 'three pouchdb-server processes');

      await put(info.endpoints[2], info.database, 'cli-doc');
      await waitDocs(info.endpoints[0], info.database, ['cli-doc']);

      child.stdin.end();
      let timer;
      const exit = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r('timeout'), 30000); })]);
      clearTimeout(timer);
      assert.deepEqual(exit, { code: 0, signal: null }, stderr.join(''));
      for (const pid of pids) assert.equal(alive(pid), false, `pouchdb-server pid ${pid} is gone`);
      assert.deepEqual(processesMentioning(info.dataDir), [], 'no process left with the data directory');
      assert.equal(existsSync(info.dataDir), false, 'the temp data directory is removed');
      assert.equal(existsSync(stateFile), false, 'the state file is removed');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
