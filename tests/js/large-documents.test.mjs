// Large documents through the packed package against a real cluster: a collection whose documents add up to far
// more than the client's 16 MiB response limit is paged through completely (the gateway caps a page in bytes as
// well as in count).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { startCluster } from './cluster.mjs';

let consumer;
let cluster;
let db;
before(async () => {
  consumer = await installedPackage();
  cluster = await startCluster(['--replicas', '1', '--replication', 'async']);
  db = await consumer.module.createClient({
    primary: cluster.endpoints[0],
    replicas: cluster.endpoints.slice(1),
    headers: cluster.headers,
    cache: { store: 'memory', maxEntries: 4 },
  });
});
after(async () => {
  await db?.close();
  await cluster?.stop();
  consumer?.cleanup();
});

test('24 documents of 900 KB are listed through the SDK, every one once, in pages', async () => {
  const big = db.collection('big');
  const s = 'x'.repeat(900_000);
  for (let i = 0; i < 24; i++) {
    await big.create({ s, i }, { id: `d${String(i).padStart(2, '0')}` });
  }
  const seen = [];
  let after;
  let pages = 0;
  do {
    const page = await big.list({ limit: 1000, after });
    assert.ok(page.items.length >= 1, 'every page holds a document');
    for (const doc of page.items) {
      assert.equal(doc.data.s.length, 900_000);
      seen.push(doc.id);
    }
    after = page.next ?? undefined;
    pages++;
  } while (after);
  assert.deepEqual(seen, Array.from({ length: 24 }, (_, i) => `d${String(i).padStart(2, '0')}`));
  assert.ok(pages >= 3, `${pages} pages`);
});
