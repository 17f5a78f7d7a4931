// Multi-primary mode against a real 3-node PouchDB Server cluster (CouchDB protocol, continuous two-way
// replication through `_replicate`; server/couchdb/cluster.mjs), through the packed package as a user installs it.
// Bounds are generous (seconds): replication between the nodes is asynchronous.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { sleep } from './cluster.mjs';
import { startCouchCluster } from '../../server/couchdb/cluster.mjs';

let consumer;
let replikit;
let cluster;
before(async () => {
  consumer = await installedPackage();
  replikit = consumer.module;
  cluster = await startCouchCluster({ nodes: 3 });
});
after(async () => {
  await cluster?.stop();
  consumer?.cleanup();
});

const options = (urls, extra = {}) => ({
  topology: 'multi-primary',
  protocol: 'couchdb',
  database: 'app',
  endpoints: urls.map((url) => ({ url })),
  headers: cluster.headers, // every node requires its server admin
  health: { intervalMs: 250, timeoutMs: 500 },
  requestTimeoutMs: 1500,
  ...extra,
});

/** A node's raw CouchDB answer for `path` (JSON, or null for a 404). */
async function raw(i, path) {
  const r = await cluster.fetch(`${cluster.endpoints[i]}/app/${path}`, { headers: { accept: 'application/json' } });
  if (r.status === 404) return null;
  assert.equal(r.status, 200, `node ${i} ${path}`);
  return r.json();
}

const docPath = (collection, id) => `${encodeURIComponent(`${collection}:${id}`)}?conflicts=true&revs=true`;

/** Waits until every node (of `nodes`) has `collection/id` at one revision with no conflict; returns node 0's copy. */
async function converged(collection, id, nodes = [0, 1, 2], timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let seen = [];
  while (Date.now() < deadline) {
    seen = await Promise.all(nodes.map((i) => raw(i, docPath(collection, id)).catch((e) => ({ error: e.message }))));
    const revs = new Set(seen.map((d) => d?._rev ?? null));
    if (revs.size === 1 && seen.every((d) => !d?._conflicts && !d?.error)) return seen[0];
    await sleep(100);
  }
  assert.fail(`${collection}/${id} did not converge on nodes ${nodes}: ${JSON.stringify(seen)}`);
}

describe('multi-primary CRUD on a healthy cluster', () => {
  let db;
  before(async () => {
    db = await replikit.createClient(options(cluster.endpoints));
  });
  after(() => db?.close());

  test('versions are revisions, conditions and errors are typed, the stored shape is documented', async () => {
    const notes = db.collection('notes');
    const a = await notes.create({ title: 'hello' }, { id: 'crud-1' });
    assert.match(a.version, /^1-[0-9a-f]{32}$/);
    assert.ok(cluster.endpoints.includes(a.meta.endpoint));
    const b = await notes.update('crud-1', { n: 1 }, { ifVersion: a.version });
    assert.match(b.version, /^2-/);
    assert.deepEqual(b.data, { title: 'hello', n: 1 });
    assert.deepEqual((await notes.get('crud-1', { readPolicy: 'network-only' })).data, b.data, 'read-your-writes');
    await assert.rejects(notes.replace('crud-1', { x: 1 }, { ifVersion: a.version }), (e) => {
      assert.equal(e.code, 'conflict');
      assert.equal(e.current.version, b.version, 'the conflict carries the current document');
      return true;
    });
    await assert.rejects(notes.create({}, { id: 'crud-1' }), { code: 'already_exists' });
    await assert.rejects(notes.update('nope', { a: 1 }), { code: 'not_found' });
    await assert.rejects(notes.replace('crud-1', {}, { ifVersion: { rev: 1 } }), { code: 'invalid_argument', argument: 'ifVersion' });
    const stored = await raw(cluster.endpoints.indexOf(b.meta.endpoint), docPath('notes', 'crud-1'));
    assert.equal(stored.collection, 'notes');
    assert.deepEqual(stored.data, b.data);
    assert.equal(stored.updatedAt, b.updatedAt);
    await notes.delete('crud-1', { ifVersion: b.version });
    assert.equal(await notes.get('crud-1', { readPolicy: 'network-only' }), null);
    await assert.rejects(notes.delete('crud-1'), { code: 'not_found' });
  });

  test('list pages through one collection in id order', async () => {
    const pages = db.collection('pages');
    const others = db.collection('pages2'); // a name sharing the prefix must not leak in
    for (const id of ['e', 'a', 'd', 'c', 'b']) await pages.create({ id }, { id });
    await others.create({}, { id: 'z' });
    const seen = [];
    let after;
    do {
      const page = await pages.list({ limit: 2, after, readPolicy: 'network-only' });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((d) => d.id));
      after = page.next ?? undefined;
    } while (after);
    assert.deepEqual(seen, ['a', 'b', 'c', 'd', 'e']);
  });

  test('the topology has no single primary: every node that is up takes writes', async () => {
    assert.equal(db.effectiveOptions().topology, 'multi-primary');
    assert.equal(db.effectiveOptions().readPreference, 'nearest');
    const deadline = Date.now() + 5000;
    while (db.topology().some((e) => e.state !== 'up') && Date.now() < deadline) await sleep(50);
    for (const e of db.topology()) {
      assert.equal(e.state, 'up');
      assert.equal(e.writable, true);
      assert.equal(e.primary, false);
      assert.equal(e.role, 'primary');
    }
  });

  test('bad multi-primary options are rejected by name', async () => {
    const bad = async (extra, argument) =>
      assert.rejects(replikit.createClient({ ...options(cluster.endpoints), ...extra }), { code: 'invalid_argument', argument });
    await bad({ database: undefined }, 'database');
    await bad({ database: 'Bad Name' }, 'database');
    await bad({ readPreference: 'replica' }, 'readPreference');
    await bad({ protocol: 'replikit' }, 'protocol');
    await bad({ endpoints: [{ url: cluster.endpoints[0], role: 'replica' }] }, 'endpoints[0].role');
  });
});

test('writes made through different nodes reach every node', async () => {
  const pinned = await Promise.all(cluster.endpoints.map((url) => replikit.createClient(options([url]))));
  try {
    const made = [];
    for (const [i, db] of pinned.entries()) {
      for (let k = 0; k < 4; k++) {
        const d = await db.collection('spread').create({ node: i, k });
        assert.equal(d.meta.endpoint, cluster.endpoints[i]);
        made.push(d);
      }
    }
    for (const d of made) {
      const copy = await converged('spread', d.id);
      assert.deepEqual(copy.data, d.data);
      assert.equal(copy._rev, d.version);
    }
  } finally {
    for (const db of pinned) db.close();
  }
});

test('a node killed mid-workload: writes move to another node, nothing is lost or applied twice', async () => {
  const db = await replikit.createClient(options(cluster.endpoints));
  const coll = db.collection('workload');
  const acked = [];
  const failures = [];
  let killed = -1;
  let afterKill = new Set();
  try {
    const started = Date.now();
    for (let n = 0; Date.now() - started < 6000; n++) {
      try {
        const created = await coll.create({ n });
        const updated = await coll.update(created.id, { updated: true });
        acked.push(updated);
        if (killed >= 0) afterKill.add(updated.meta.endpoint);
      } catch (e) {
        failures.push(`${n}: ${e.code} ${e.message}`);
      }
      if (killed < 0 && Date.now() - started > 1500) {
        killed = cluster.endpoints.indexOf(acked.at(-1).meta.endpoint); // the node this session writes to
        await cluster.kill(killed);
      }
    }
    assert.deepEqual(failures, [], 'no write failed');
    assert.ok(killed >= 0 && afterKill.size > 0);
    assert.ok(!afterKill.has(cluster.endpoints[killed]), 'no write was acknowledged by the dead node');
    assert.ok(acked.length > 10, `a real workload ran (${acked.length} documents)`);
  } finally {
    db.close();
    if (killed >= 0) await cluster.start(killed);
  }
  for (const d of acked) {
    const copy = await converged('workload', d.id);
    assert.deepEqual(copy.data, d.data, `${d.id} has its acknowledged data on every node`);
    assert.equal(copy._revisions.ids.length, 2, `${d.id}: one create and one update, each applied once`);
  }
  const all = await raw(0, `_all_docs?startkey=${encodeURIComponent('"workload:"')}&endkey=${encodeURIComponent('"workload;"')}`);
  assert.equal(all.rows.length, acked.length, 'no document beyond the acknowledged ones');
});

test('a write whose answer was lost is retried and applied exactly once', async () => {
  let dropped = 0;
  // The first _bulk_docs reaches the node, then the connection "resets" before the answer arrives.
  const lossy = async (input, init) => {
    const response = await fetch(input, init);
    if (dropped === 0 && String(input).endsWith('/_bulk_docs')) {
      dropped++;
      throw new TypeError('fetch failed: connection reset');
    }
    return response;
  };
  const db = await replikit.createClient(options(cluster.endpoints, { fetch: lossy }));
  try {
    const coll = db.collection('lossy');
    const created = await coll.create({ v: 1 });
    assert.equal(dropped, 1, 'the first write answer was lost');
    const updated = await coll.update(created.id, { v: 2 });
    assert.match(updated.version, /^2-/, 'the create counted once');
    const copy = await converged('lossy', created.id);
    assert.equal(copy._rev, updated.version);
    assert.equal(copy._revisions.ids.length, 2);
  } finally {
    db.close();
  }
});

describe('concurrent updates at two nodes: conflicts settled per strategy, converged on all nodes', () => {
  const merge = ({ versions }) => Object.assign({}, ...versions.map((v) => v.data), { merged: versions.length });
  for (const [name, conflict] of [
    ['server-wins', 'server-wins'],
    ['last-writer-wins', 'last-writer-wins'],
    ['client-wins', 'client-wins'],
    ['a function', merge],
  ]) {
    test(name, async () => {
      const [one, two] = await Promise.all([0, 1].map((i) => replikit.createClient(options([cluster.endpoints[i]]))));
      const resolver = await replikit.createClient(options(cluster.endpoints, { conflict }));
      try {
        const events = [];
        resolver.on('conflict', (c) => events.push(c));
        // Both nodes take an update of the same version before either hears of the other's. Replication is
        // fast, so a round may not conflict; try again with a new document then.
        let id;
        let mine;
        let winner;
        for (let round = 0; round < 8 && !winner; round++) {
          id = `conflict-${events.length}-${round}-${Math.random().toString(36).slice(2)}`;
          const base = await one.collection('c').create({ v: 0 }, { id });
          await converged('c', id);
          const results = await Promise.allSettled([
            one.collection('c').update(id, { v: 'one', one: true }, { ifVersion: base.version }),
            two.collection('c').update(id, { v: 'two', two: true }, { ifVersion: base.version }),
          ]);
          if (results.some((r) => r.status === 'rejected')) continue; // one saw the other's write first
          mine = results.map((r) => r.value);
          // Wait until every node has both revisions, so the resolver sees the conflict wherever it reads.
          const deadline = Date.now() + 5000;
          while (Date.now() < deadline) {
            const copies = await Promise.all([0, 1, 2].map((i) => raw(i, docPath('c', id))));
            if (copies.every((d) => d?._conflicts?.length)) {
              winner = copies[2];
              break;
            }
            await sleep(50);
          }
        }
        assert.ok(winner, 'a conflict was made');
        const settled = await resolver.collection('c').get(id, { readPolicy: 'network-only' });
        assert.equal(events.length, 1, 'one conflict event');
        const event = events[0];
        assert.equal(event.source, 'revisions');
        assert.equal(event.versions.length, 2);
        assert.deepEqual([event.doc.version, event.doc.data], [settled.version, settled.data]);
        const later = mine[0].updatedAt === mine[1].updatedAt ? null : mine[0].updatedAt > mine[1].updatedAt ? mine[0] : mine[1];
        if (name === 'server-wins' || (later === null && name !== 'a function')) {
          // (a tie in updatedAt keeps the server's winner under last-writer-wins too)
          assert.equal(settled.version, winner._rev, "CouchDB's deterministic winner stands");
          assert.deepEqual(settled.data, winner.data);
        }
        if (name === 'last-writer-wins' || name === 'client-wins') {
          if (later) assert.deepEqual(settled.data, later.data, 'the later write stands');
          assert.equal(event.resolution, 'kept');
        }
        if (name === 'a function') {
          assert.deepEqual(settled.data, { v: settled.data.v, one: true, two: true, merged: 2 });
          assert.equal(event.resolution, 'merged');
          assert.match(settled.version, /^3-/, 'the merge is a new revision over the winner');
        }
        const copy = await converged('c', id);
        assert.equal(copy._rev, settled.version, 'every node has the settled version and no conflict');
        assert.deepEqual(copy.data, settled.data);
      } finally {
        one.close();
        two.close();
        resolver.close();
      }
    });
  }
});

test('a delete over a conflict no read settled leaves nothing alive on any node', async () => {
  const db = await replikit.createClient(options(cluster.endpoints));
  const coll = db.collection('gone');
  try {
    const base = await coll.create({ v: 0 });
    await converged('gone', base.id);
    // Two concurrent children of the base, written to node 0 as a replicator would write them: a conflict that
    // replication spreads to every node and that no read through the SDK has seen.
    const baseHash = base.version.split('-')[1];
    const branches = [0, 1].map((branch) => {
      const hash = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
      return {
        _id: `gone:${base.id}`, _rev: `2-${hash}`, _revisions: { start: 2, ids: [hash, baseHash] },
        collection: 'gone', data: { branch }, updatedAt: new Date().toISOString(),
      };
    });
    const posted = await cluster.fetch(`${cluster.endpoints[0]}/app/_bulk_docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ new_edits: false, docs: branches }),
    });
    assert.equal(posted.status, 201);
    const path = encodeURIComponent(`gone:${base.id}`);
    /** Node i's leaves (`open_revs=all`), live or deleted. */
    const leaves = async (i) => (await raw(i, `${path}?open_revs=all`)).map((l) => l.ok);
    const bothLive = (ls) => ls.filter((l) => !l._deleted).length === 2;
    let seen = [];
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(100)) {
      seen = await Promise.all([0, 1, 2].map(leaves));
      if (seen.every(bothLive)) break;
    }
    assert.ok(seen.every(bothLive), `the conflict on every node: ${JSON.stringify(seen)}`);

    await coll.delete(base.id);

    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(100)) {
      seen = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const r = await cluster.fetch(`${cluster.endpoints[i]}/app/${path}`, { headers: { accept: 'application/json' } });
          return { status: r.status, doc: await r.json(), leaves: await leaves(i) };
        }),
      );
      if (seen.every((n) => n.status === 404 && n.leaves.every((l) => l._deleted))) break;
    }
    for (const [i, n] of seen.entries()) {
      // CouchDB says `deleted`, PouchDB Server `missing`; the leaves show the tombstones either way.
      assert.equal(n.status, 404, `node ${i} answers 404: ${JSON.stringify(n.doc)}`);
      assert.ok(['deleted', 'missing'].includes(n.doc.reason), JSON.stringify(n.doc));
      assert.ok(n.leaves.length >= 2, `node ${i} keeps the tombstones: ${JSON.stringify(n.leaves)}`);
      assert.deepEqual(n.leaves.filter((l) => !l._deleted), [], `node ${i}: no live leaf`);
    }
    assert.equal(await coll.get(base.id, { readPolicy: 'network-only' }), null);
  } finally {
    db.close();
  }
});

test('offline: writes made while every node is down are queued and applied once when one comes back', async () => {
  const db = await replikit.createClient(options(cluster.endpoints, { primaryWaitMs: 500, offline: { queueWrites: true } }));
  const synced = [];
  db.on('synced', (w) => synced.push(w));
  const coll = db.collection('offline');
  const base = await coll.create({ v: 0 });
  await converged('offline', base.id);
  const killed = [];
  try {
    for (const i of [0, 1, 2]) {
      await cluster.kill(i);
      killed.push(i);
    }
    const draft = await coll.create({ v: 'new' });
    assert.equal(draft.meta.pending, true, 'queued, not failed');
    const edited = await coll.update(base.id, { v: 1 }, { ifVersion: base.version });
    assert.equal(edited.meta.pending, true);
    assert.equal((await db.pendingWrites()).length, 2);
    await cluster.start(1);
    killed.splice(killed.indexOf(1), 1);
    await db.flush();
    assert.equal(synced.length, 2, 'both writes synced');
    assert.equal((await db.pendingWrites()).length, 0);
    for (const i of killed.splice(0)) await cluster.start(i);
    const made = await converged('offline', draft.id);
    assert.deepEqual(made.data, { v: 'new' });
    const updated = await converged('offline', base.id);
    assert.deepEqual(updated.data, { v: 1 });
    assert.equal(updated._revisions.ids.length, 2, 'the queued update applied once');
  } finally {
    for (const i of killed) await cluster.start(i);
    db.close();
  }
});
