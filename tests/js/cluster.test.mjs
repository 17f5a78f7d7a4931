// The client against a real dev cluster (PostgreSQL streaming replication behind replikit-server), through
// the packed package as a user installs it. Failover bounds are generous (seconds), never milliseconds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { recordingFetch, sleep, startCluster } from './cluster.mjs';

let consumer;
let replikit;
before(async () => {
  consumer = await installedPackage();
  replikit = consumer.module;
});
after(() => consumer?.cleanup());

const options = (cluster, extra = {}) => ({
  primary: cluster.endpoints[0],
  replicas: cluster.endpoints.slice(1),
  headers: cluster.headers,
  health: { intervalMs: 250, timeoutMs: 500 },
  requestTimeoutMs: 1500,
  ...extra,
});

/** Reads `id` in a loop until stopped; counts failures. */
function reader(coll, id) {
  const stats = { ok: 0, failed: 0, errors: [] };
  let running = true;
  const done = (async () => {
    while (running) {
      try {
        const doc = await coll.get(id);
        assert.ok(doc, 'the document is always there');
        stats.ok++;
      } catch (e) {
        stats.failed++;
        stats.errors.push(`${e.code}: ${e.message}`);
      }
      await sleep(10);
    }
  })();
  return { stats, stop: async () => { running = false; await done; } };
}

describe('CRUD and routing on a healthy cluster', () => {
  let cluster;
  let db;
  let rec;
  before(async () => {
    cluster = await startCluster();
    rec = recordingFetch();
    db = await replikit.createClient(options(cluster, { fetch: rec.fetch }));
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  test('create, get, replace, update, list, delete round trip', async () => {
    const notes = db.collection('notes');
    const a = await notes.create({ title: 'first', tags: ['x'] });
    assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7');
    assert.ok(Number.isSafeInteger(a.version) && a.version > 0, 'a version is a whole number below 2^53');
    assert.deepEqual(a.data, { title: 'first', tags: ['x'] });
    const strip = ({ meta, ...doc }) => doc;
    assert.deepEqual(a.meta, { fromCache: false, pending: false, endpoint: cluster.endpoints[0] }, 'written on the primary');
    const read = await notes.get(a.id);
    assert.deepEqual(strip(read), strip(a));
    assert.equal(read.meta.pending, false);
    assert.ok(cluster.endpoints.slice(1).includes(read.meta.endpoint), 'read on a replica');
    const b = await notes.replace(a.id, { title: 'second' }, { ifVersion: a.version });
    assert.ok(b.version > a.version, 'a new version at every write');
    const c = await notes.update(a.id, { tags: null, done: true });
    assert.deepEqual(c.data, { title: 'second', done: true });
    await notes.create({ title: 'other' }, { id: 'zz-other' });
    const page = await notes.list({ limit: 1 });
    assert.equal(page.items.length, 1);
    assert.ok(page.next);
    const rest = await notes.list({ after: page.next });
    assert.deepEqual([...page.items, ...rest.items].map((d) => d.id).sort(), [a.id, 'zz-other'].sort());
    await notes.delete(a.id);
    assert.equal(await notes.get(a.id), null);
  });

  test('conditional writes and existing ids fail with their codes', async () => {
    const notes = db.collection('notes');
    const a = await notes.create({ n: 1 }, { id: 'cond' });
    const updated = await notes.update('cond', { n: 2 }, { ifVersion: a.version });
    await assert.rejects(notes.replace('cond', { n: 3 }, { ifVersion: a.version }), (e) => {
      assert.ok(e instanceof replikit.ReplikitError);
      assert.equal(e.code, 'conflict');
      assert.equal(e.status, 412);
      assert.equal(e.endpoint, cluster.endpoints[0], 'the primary answered');
      assert.equal(e.retryable, false);
      assert.equal(e.current.version, updated.version);
      assert.deepEqual(e.current.data, { n: 2 });
      return true;
    });
    await assert.rejects(notes.create({}, { id: a.id }), (e) => e.code === 'already_exists');
    await assert.rejects(notes.update('missing', { n: 1 }), (e) => e.code === 'not_found');
    await assert.rejects(notes.delete('missing'), (e) => e.code === 'not_found');
  });

  test('bad arguments reject before any request with invalid_argument', async () => {
    const notes = db.collection('notes');
    const before = rec.log.length;
    const cases = [
      [() => notes.create([1, 2]), 'data'],
      [() => notes.create('text'), 'data'],
      [() => notes.create({}, { id: '' }), 'id'],
      [() => notes.get(42), 'id'],
      [() => notes.get('x'.repeat(300)), 'id'],
      [() => notes.replace('a', null), 'data'],
      [() => notes.update('a', { a: 1 }, { ifVersion: -1 }), 'ifVersion'],
      [() => notes.get('a', { ifVersion: 1 }), 'ifVersion'],
      [() => notes.list({ limit: 0 }), 'limit'],
      [() => notes.get('a', { signal: 'no' }), 'signal'],
    ];
    for (const [call, argument] of cases) {
      await assert.rejects(call(), (e) => e.code === 'invalid_argument' && e.argument === argument, argument);
    }
    const sent = rec.log.slice(before).filter((e) => !e.url.endsWith('/v1/health'));
    assert.deepEqual(sent, [], 'nothing was sent');
  });

  test('writes land on the primary and reads on replicas (X-Replikit-Node)', async () => {
    const notes = db.collection('routing');
    rec.log.length = 0;
    for (let i = 0; i < 20; i++) {
      const d = await notes.create({ i });
      await notes.get(d.id);
    }
    const ops = rec.log.filter((e) => !e.url.endsWith('/v1/health'));
    const writes = ops.filter((e) => e.method === 'POST');
    const reads = ops.filter((e) => e.method === 'GET');
    assert.equal(writes.length, 20);
    assert.ok(writes.every((e) => e.node === 'n0'), `writes: ${writes.map((e) => e.node)}`);
    assert.ok(reads.every((e) => e.node === 'n1' || e.node === 'n2'), `reads: ${reads.map((e) => e.node)}`);
    const topology = db.topology();
    assert.deepEqual(topology.map((e) => [e.nodeId, e.role, e.state, e.primary]), [
      ['n0', 'primary', 'up', true],
      ['n1', 'replica', 'up', false],
      ['n2', 'replica', 'up', false],
    ]);
  });

  test('read-your-writes under replicaPreferred, even with local durability', async () => {
    const notes = db.collection('ryw');
    for (let i = 0; i < 30; i++) {
      const d = await notes.replace('counter', { i }, { durability: 'local' });
      const read = await notes.get('counter');
      assert.ok(read.version >= d.version, `read v${read.version} after writing v${d.version}`);
      assert.equal(read.data.i, i);
    }
  });

  test('an own __proto__ key stays data and pollutes nothing', async () => {
    const notes = db.collection('notes');
    const data = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    const doc = await notes.create(data, { id: 'proto' });
    const read = await notes.get('proto');
    for (const d of [doc, read]) {
      assert.ok(Object.hasOwn(d.data, '__proto__'));
      assert.equal(Object.getPrototypeOf(d.data), Object.prototype);
    }
    assert.equal({}.polluted, undefined);
  });

  test('an aborted call rejects with aborted', async () => {
    const notes = db.collection('notes');
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(notes.get('proto', { signal: controller.signal }), (e) => e.code === 'aborted');
  });
});

describe('failover on a real cluster', () => {
  test('kill the primary, promote a replica: writes resume within 1 s, a reader sees 0 failed reads', async (t) => {
    const cluster = await startCluster();
    const db = await replikit.createClient(options(cluster));
    const events = [];
    for (const name of ['primary', 'endpointDown', 'endpointUp', 'retry', 'topology']) {
      db.on(name, (payload) => events.push({ name, payload }));
    }
    try {
      const notes = db.collection('failover');
      const created = await notes.create({ v: 0 }, { id: 'doc' });
      const r = reader(notes, 'doc');
      await sleep(300);
      await cluster.admin('n0', 'kill');
      await sleep(500);
      await cluster.admin('n1', 'promote');
      const promotedAt = Date.now();
      const written = await notes.update('doc', { v: 1 });
      const tookMs = Date.now() - promotedAt;
      t.diagnostic(`first write ${tookMs} ms after the promotion`);
      assert.ok(tookMs < 1000, `the first write after the promotion took ${tookMs} ms`);
      assert.ok(written.version > created.version);
      assert.equal(Math.floor(written.version / 2 ** 40), 2, 'the new term is in the version');
      await sleep(300);
      await r.stop();
      t.diagnostic(`reader: ${r.stats.ok} reads ok, ${r.stats.failed} failed`);
      assert.equal(r.stats.failed, 0, r.stats.errors.join('\n'));
      assert.ok(r.stats.ok > 10, `the reader kept reading (${r.stats.ok})`);
      const primary = db.topology().find((e) => e.primary);
      assert.equal(primary?.nodeId, 'n1');
      assert.equal(primary.term, 2);
      const primaries = events.filter((e) => e.name === 'primary').map((e) => [e.payload.url, e.payload.term]);
      assert.deepEqual(primaries.at(-1), [cluster.endpoints[1], 2], 'a primary event named the new primary');
      assert.ok(primaries.some(([url]) => url === null), 'and one said there was none while n0 was gone');
      const down = events.find((e) => e.name === 'endpointDown');
      assert.equal(down?.payload.url, cluster.endpoints[0], 'n0 was reported down');
      assert.ok(events.some((e) => e.name === 'topology' && Array.isArray(e.payload) && e.payload.length === 3));
    } finally {
      await db.close();
      await cluster.stop();
    }
  });

  test('kill or hang a replica: reads move on within one request', async (t) => {
    const cluster = await startCluster();
    const db = await replikit.createClient(options(cluster, { readPreference: 'replica' }));
    try {
      const notes = db.collection('replicas');
      await notes.create({ v: 0 }, { id: 'doc' });
      for (let i = 0; i < 10; i++) await notes.get('doc'); // both replicas known and up
      await cluster.admin('n1', 'kill');
      for (let i = 0; i < 10; i++) assert.ok(await notes.get('doc'));
      await cluster.admin('n1', 'start');
      await sleep(1500);
      await cluster.admin('n2', 'hang');
      const started = Date.now();
      for (let i = 0; i < 10; i++) assert.ok(await notes.get('doc'));
      const took = Date.now() - started;
      t.diagnostic(`ten reads with n2 hung: ${took} ms`);
      assert.ok(took < 1500 + 3000, `ten reads with a hung replica took ${took} ms (one timeout at most)`);
      const hung = db.topology().find((e) => e.nodeId === 'n2' || e.url === cluster.endpoints[2]);
      assert.notEqual(hung.state, 'up', 'the hung replica is not considered up');
      await cluster.admin('n2', 'unhang');
    } finally {
      await db.close();
      await cluster.stop();
    }
  });

  test('split brain: the old primary restarted on its old term never gets a write', async () => {
    const cluster = await startCluster();
    const rec = recordingFetch();
    const db = await replikit.createClient(options(cluster, { fetch: rec.fetch }));
    try {
      const notes = db.collection('split');
      await notes.create({ v: 0 }, { id: 'doc' });
      await cluster.admin('n0', 'kill');
      await cluster.admin('n1', 'promote');
      await notes.update('doc', { v: 1 });
      await cluster.admin('n0', 'start'); // claims primary on term 1
      await sleep(1000);
      const n0 = db.topology()[0];
      assert.equal(n0.role, 'primary');
      assert.equal(n0.term, 1, 'the old primary reports its old term');
      assert.equal(n0.primary, false, 'and is not trusted');
      rec.log.length = 0;
      for (let i = 0; i < 10; i++) await notes.update('doc', { v: i + 2 });
      const writesToOld = rec.log.filter((e) => e.method !== 'GET' && e.url.startsWith(cluster.endpoints[0]));
      assert.deepEqual(writesToOld, []);
      assert.equal((await notes.get('doc', { readPreference: 'primary' })).data.v, 11);
    } finally {
      await db.close();
      await cluster.stop();
    }
  });
});

test('close() lets a Node script exit by itself', () => {
  const script = `
    const { createClient } = await import(${JSON.stringify(consumer.url)});
    const db = await createClient({ primary: 'http://127.0.0.1:9', replicas: ['http://127.0.0.1:10'], health: { intervalMs: 100 } });
    await new Promise((r) => setTimeout(r, 300));
    await db.close();
    console.log('closed');`;
  const started = Date.now();
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(out.trim(), 'closed');
  assert.ok(Date.now() - started < 15000);
});
