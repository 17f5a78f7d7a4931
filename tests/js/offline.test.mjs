// The local cache and offline writes in Node (memory store) against a real dev cluster, through the packed
// package: read policies, the outbox, exactly-once sync, every conflict strategy. The browser side (IndexedDB,
// reloads, tabs) is tests/e2e/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { sleep, startCluster } from './cluster.mjs';

let consumer;
let replikit;
let cluster;
before(async () => {
  consumer = await installedPackage();
  replikit = consumer.module;
  cluster = await startCluster();
});
after(async () => {
  await cluster?.stop();
  consumer?.cleanup();
});

/** A fetch that can be cut off (the client's network, not the cluster, goes away) and counts statuses. */
function cuttableFetch() {
  const state = { offline: false, statuses: [] };
  state.fetch = async (input, init) => {
    if (state.offline) throw new TypeError('fetch failed (test: network cut)');
    const r = await fetch(input, init);
    state.statuses.push(r.status);
    return r;
  };
  return state;
}

async function client(extra = {}) {
  const net = cuttableFetch();
  const db = await replikit.createClient({
    primary: cluster.endpoints[0],
    replicas: cluster.endpoints.slice(1),
    health: { intervalMs: 200, timeoutMs: 300 },
    requestTimeoutMs: 1000,
    primaryWaitMs: 600,
    fetch: net.fetch,
    headers: cluster.headers,
    ...extra,
  });
  const events = [];
  for (const name of ['queued', 'synced', 'conflict', 'syncFailed', 'change', 'storageError']) {
    db.on(name, (payload) => events.push({ name, payload }));
  }
  return { db, net, events };
}

/** The document as each node has it, asked directly (not through the SDK). */
async function onEveryNode(collection, id) {
  const out = [];
  for (const url of cluster.endpoints) {
    const r = await cluster.fetch(`${url}/v1/c/${collection}/${encodeURIComponent(id)}`, { headers: { 'x-replikit-min-position': '0' } });
    out.push(r.status === 200 ? await r.json() : r.status);
  }
  return out;
}

describe('read policies', () => {
  test('each policy serves from the cache or the network as it says', async () => {
    const { db, net } = await client();
    const notes = db.collection('policies');
    await notes.create({ n: 1 }, { id: 'p' });
    const revalidated = await notes.get('p');
    assert.deepEqual([revalidated.meta.fromCache, typeof revalidated.meta.endpoint], [true, 'string'], 'a 304 revalidation');
    assert.ok(net.statuses.includes(304), 'If-None-Match was answered 304');
    const fresh = await notes.get('p', { readPolicy: 'network-only' });
    assert.equal(fresh.meta.fromCache, false);
    assert.equal(await notes.get('uncached', { readPolicy: 'cache-only' }), null);
    net.offline = true;
    const cached = await notes.get('p', { readPolicy: 'cache-first' });
    assert.deepEqual([cached.data.n, cached.meta.fromCache, cached.meta.endpoint], [1, true, null]);
    const fallback = await notes.get('p');
    assert.deepEqual([fallback.data.n, fallback.meta.fromCache], [1, true], 'network-first serves the cache when no endpoint answers');
    await assert.rejects(notes.get('p', { readPolicy: 'network-only' }), (e) => ['unavailable', 'timeout'].includes(e.code));
    const page = await notes.list({ readPolicy: 'cache-only' });
    assert.deepEqual(page.items.map((d) => d.id), ['p']);
    await db.close();
  });

  test('stale-while-revalidate answers from cache and emits change when the server has news', async () => {
    const a = await client({ readPolicy: 'stale-while-revalidate' });
    const b = await client();
    const coll = 'swr';
    await a.db.collection(coll).create({ v: 1 }, { id: 's' });
    await b.db.collection(coll).update('s', { v: 2 });
    const stale = await a.db.collection(coll).get('s');
    assert.equal(stale.data.v, 1, 'the cached copy answers at once');
    for (let i = 0; i < 50 && !a.events.some((e) => e.name === 'change'); i++) await sleep(20);
    const change = a.events.find((e) => e.name === 'change');
    assert.deepEqual([change?.payload.id, change?.payload.doc.data.v, change?.payload.source], ['s', 2, 'revalidate']);
    assert.equal((await a.db.collection(coll).get('s', { readPolicy: 'cache-only' })).data.v, 2);
    await a.db.close();
    await b.db.close();
  });

  test('ttlMs makes cache-first revalidate old entries; maxEntries evicts the least recently used', async () => {
    const { db, net } = await client({ cache: { ttlMs: 100, maxEntries: 2 } });
    const c = db.collection('ttl');
    for (const id of ['a', 'b', 'c']) await c.create({ id }, { id });
    assert.equal(await c.get('a', { readPolicy: 'cache-only' }), null, 'a was evicted');
    assert.ok(await c.get('c', { readPolicy: 'cache-only' }));
    net.statuses.length = 0;
    await c.get('c', { readPolicy: 'cache-first' });
    assert.deepEqual(net.statuses, [], 'a fresh entry needs no request');
    await sleep(150);
    await c.get('c', { readPolicy: 'cache-first' });
    assert.ok(net.statuses.length > 0, 'an entry older than ttlMs is revalidated with a request');
    await db.close();
  });
});

describe('offline writes', () => {
  test('writes made offline resolve pending, survive until the network returns, and apply exactly once', async () => {
    const { db, net, events } = await client({ offline: { queueWrites: true } });
    const c = db.collection('outbox');
    const u0 = await c.create({ n: 0 }, { id: 'u' });
    const gone0 = await c.create({ n: 0 }, { id: 'gone' });
    net.offline = true;
    const started = Date.now();
    const created = await c.create({ n: 1 }, { id: 'new' });
    const updated = await c.update('u', { n: 2 });
    await c.delete('gone');
    assert.ok(Date.now() - started < 5000, 'offline writes resolve within primaryWaitMs, never hang');
    // A pending copy's version is 0, which no server version is (the next one cannot be predicted).
    assert.deepEqual([created.meta.pending, created.meta.fromCache, created.version], [true, true, 0]);
    assert.deepEqual([updated.meta.pending, updated.data.n, updated.version], [true, 2, 0]);
    const pending = await db.pendingWrites();
    assert.deepEqual(pending.map((p) => [p.kind, p.id, p.baseVersion]), [['create', 'new', null], ['update', 'u', u0.version], ['delete', 'gone', gone0.version]]);
    assert.equal(new Set(pending.map((p) => p.key)).size, 3);
    assert.equal((await c.get('u')).data.n, 2, 'reads see this client\'s own pending write');
    assert.equal(await c.get('gone'), null, 'and its pending delete');
    assert.equal(events.filter((e) => e.name === 'queued').length, 3);
    net.offline = false;
    await db.flush();
    assert.deepEqual(await db.pendingWrites(), []);
    assert.deepEqual(events.filter((e) => e.name === 'synced').map((e) => e.payload.id), ['new', 'u', 'gone']);
    await sleep(200);
    const versions = {};
    for (const id of ['new', 'u']) {
      const everywhere = await onEveryNode('outbox', id);
      versions[id] = everywhere[0].version;
      assert.deepEqual(everywhere.map((d) => d.version), [versions[id], versions[id], versions[id]], `${id} alike on every node`);
    }
    assert.ok(versions.u > u0.version, 'u written');
    assert.deepEqual(await onEveryNode('outbox', 'gone'), [404, 404, 404]);
    const synced = await c.get('u');
    assert.deepEqual([synced.meta.pending, synced.version], [false, versions.u]);
    await db.close();
  });

  test('a write to a document with a queued write waits its turn, so the server sees them in order', async () => {
    const { db, net } = await client({ offline: { queueWrites: true } });
    const c = db.collection('order');
    const o0 = await c.create({ step: 0 }, { id: 'o' });
    net.offline = true;
    await c.update('o', { step: 1, first: true });
    net.offline = false;
    const second = await c.update('o', { step: 2 });
    assert.equal(second.meta.pending, true, 'queued behind the first, not sent past it');
    await db.flush();
    const [onPrimary] = await onEveryNode('order', 'o');
    assert.deepEqual(onPrimary.data, { step: 2, first: true });
    assert.ok(onPrimary.version > o0.version);
    await db.close();
  });

  test('with the cluster down (every node killed) a write waits primaryWaitMs, queues, and syncs on restart', async () => {
    const { db } = await client({ offline: { queueWrites: true } });
    const c = db.collection('down');
    await c.create({ n: 0 }, { id: 'd' });
    for (const n of ['n0', 'n1', 'n2']) await cluster.admin(n, 'kill');
    try {
      const queued = await c.update('d', { n: 1 });
      assert.equal(queued.meta.pending, true);
    } finally {
      for (const n of ['n0', 'n1', 'n2']) await cluster.admin(n, 'start');
    }
    await db.flush();
    assert.deepEqual((await onEveryNode('down', 'd')).map((d) => d.data?.n), [1, 1, 1]);
    await db.close();
  });

  test('with the cache turned off, a queued write still waits in memory and syncs', async () => {
    const { db, net } = await client({ offline: { queueWrites: true }, cache: { store: 'none' } });
    net.offline = true;
    const queued = await db.collection('nocache').create({ n: 1 }, { id: 'q' });
    assert.equal(queued.meta.pending, true);
    assert.equal((await db.pendingWrites()).length, 1, 'the outbox kept it');
    net.offline = false;
    await db.flush();
    const everywhere = (await onEveryNode('nocache', 'q')).map((d) => d.version);
    assert.ok(everywhere[0] > 0 && everywhere.every((v) => v === everywhere[0]), `${everywhere}`);
    await db.close();
  });

  test('in Node writes are not queued unless asked: a write with no primary rejects', async () => {
    const { db, net } = await client();
    net.offline = true;
    await assert.rejects(db.collection('x').create({}), (e) => ['no_primary', 'unavailable', 'timeout'].includes(e.code) && e.retryable);
    assert.deepEqual(await db.pendingWrites(), []);
    await db.close();
  });
});

describe('conflicts while syncing', () => {
  /** `a` queues an update of a document that `b` changes meanwhile; then `a` syncs. */
  let round = 0;
  async function conflict(strategy, { bFirst = true } = {}) {
    const coll = `conflict_${typeof strategy === 'string' ? strategy.replace(/-/g, '_') : 'fn'}_${round++}`;
    const a = await client({ offline: { queueWrites: true }, conflict: strategy });
    const b = await client();
    await a.db.collection(coll).create({ who: 'base', a: 0, b: 0 }, { id: 'doc' });
    a.net.offline = true;
    if (!bFirst) await b.db.collection(coll).update('doc', { who: 'b', b: 1 });
    await a.db.collection(coll).update('doc', { who: 'a', a: 1 });
    if (bFirst) {
      await sleep(20);
      await b.db.collection(coll).update('doc', { who: 'b', b: 1 });
    }
    a.net.offline = false;
    await a.db.flush();
    const final = await b.db.collection(coll).get('doc', { readPreference: 'primary', readPolicy: 'network-only' });
    const ev = a.events.find((e) => e.name === 'conflict');
    const cached = await a.db.collection(coll).get('doc', { readPolicy: 'cache-only' });
    await a.db.close();
    await b.db.close();
    return { final, ev, cached };
  }

  test('server-wins drops the local change and the cache shows the server', async () => {
    const { final, ev, cached } = await conflict('server-wins');
    assert.deepEqual([final.data.who, final.data.a, final.version], ['b', 0, ev.payload.remote.version]);
    assert.deepEqual([ev.payload.resolution, ev.payload.remote.data.who, ev.payload.local.data.who], ['dropped', 'b', 'a']);
    assert.equal(cached.data.who, 'b');
  });

  test('client-wins re-applies the local change over the current version', async () => {
    const { final, ev, cached } = await conflict('client-wins');
    assert.deepEqual([final.data.who, final.data.a, final.data.b], ['a', 1, 1], 'the patch re-applied on theirs');
    assert.ok(final.version > ev.payload.remote.version);
    assert.equal(ev.payload.resolution, 'reapplied');
    assert.deepEqual([cached.data.who, cached.meta.pending], ['a', false]);
  });

  test('last-writer-wins keeps the later edit, either way round', async () => {
    const later = await conflict('last-writer-wins', { bFirst: true });
    assert.equal(later.final.data.who, 'b', 'the server edit came after the local one');
    const earlier = await conflict('last-writer-wins', { bFirst: false });
    assert.equal(earlier.final.data.who, 'a', 'the local edit came after the server one');
  });

  test('a function gets local, remote and base and its answer is written', async () => {
    const seen = [];
    const { final, ev } = await conflict(async ({ local, remote, base }) => {
      seen.push([local.data.who, remote.data.who, base.data.who]);
      return { who: 'merged', a: local.data.a, b: remote.data.b };
    });
    assert.deepEqual(seen, [['a', 'b', 'base']]);
    assert.deepEqual(final.data, { who: 'merged', a: 1, b: 1 });
    assert.equal(ev.payload.resolution, 'reapplied');
  });

  test('an online write with ifVersion that conflicts rejects with conflict and current', async () => {
    const { db } = await client();
    const c = db.collection('online_conflict');
    const x1 = await c.create({ v: 1 }, { id: 'x' });
    const x2 = await c.update('x', { v: 2 });
    await assert.rejects(c.update('x', { v: 3 }, { ifVersion: x1.version }), (e) => e.code === 'conflict' && e.current.version === x2.version);
    await db.close();
  });

  test('a queued write that fails for good is reported and flush() rejects with it', async () => {
    const a = await client({ offline: { queueWrites: true } });
    const b = await client();
    a.net.offline = true;
    await a.db.collection('permanent').create({ from: 'a' }, { id: 'taken' });
    await b.db.collection('permanent').create({ from: 'b' }, { id: 'taken' });
    a.net.offline = false;
    await assert.rejects(a.db.flush(), (e) => e.code === 'already_exists');
    const failed = a.events.find((e) => e.name === 'syncFailed');
    assert.deepEqual([failed.payload.id, failed.payload.error.code], ['taken', 'already_exists']);
    assert.deepEqual(await a.db.pendingWrites(), []);
    assert.equal((await a.db.collection('permanent').get('taken')).data.from, 'b');
    await a.db.close();
    await b.db.close();
  });
});

test('clearCache() forgets cached documents and queued writes', async () => {
  const { db, net } = await client({ offline: { queueWrites: true } });
  const c = db.collection('logout');
  await c.create({ secret: 1 }, { id: 'mine' });
  net.offline = true;
  await c.update('mine', { secret: 2 });
  await db.clearCache();
  assert.deepEqual(await db.pendingWrites(), []);
  assert.equal(await c.get('mine', { readPolicy: 'cache-only' }), null);
  await db.close();
});
