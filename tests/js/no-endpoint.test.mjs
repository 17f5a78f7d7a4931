// Calls that no endpoint can serve, as a new user meets them, through the packed package: a cluster that went
// down (offline writes resolve at once, pages say they come from the cache), a URL nobody listens on, and a URL
// where another kind of server answers. Each failure says why, per endpoint (`error.causes`).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
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

/** Waits until the client has marked every endpoint down. */
async function untilAllDown(db) {
  const deadline = Date.now() + 10000;
  while (!db.topology().every((e) => e.state === 'down')) {
    assert.ok(Date.now() < deadline, `endpoints not down: ${JSON.stringify(db.topology())}`);
    await sleep(50);
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

test('with the cluster down, writes queue at once and pages come from the cache and say so', async () => {
  const db = await replikit.createClient({
    primary: cluster.endpoints[0],
    replicas: cluster.endpoints.slice(1),
    headers: cluster.headers,
    health: { intervalMs: 200, timeoutMs: 300 },
    offline: { queueWrites: true },
  });
  try {
    const todos = db.collection('todos');
    for (let i = 0; i < 3; i++) await todos.create({ i }, { id: `t${i}` });
    const online = await todos.list();
    assert.deepEqual(online.meta, { fromCache: false, complete: true, endpoint: online.meta.endpoint });
    assert.ok(online.meta.endpoint.startsWith('http://127.0.0.1:'));
    for (const n of ['n0', 'n1', 'n2']) await cluster.admin(n, 'kill');
    await untilAllDown(db);

    // Default primaryWaitMs is 5 s: a queued write must not wait for it.
    const started = Date.now();
    for (let i = 3; i < 8; i++) {
      const d = await todos.create({ i }, { id: `t${i}` });
      assert.equal(d.meta.pending, true);
    }
    const took = Date.now() - started;
    assert.ok(took < 2000, `5 queued writes took ${took} ms`);
    assert.equal((await db.pendingWrites()).length, 5);

    const page = await todos.list();
    assert.deepEqual(page.meta, { fromCache: true, complete: false, endpoint: null });
    assert.equal(page.items.length, 8, 'the 3 synced and the 5 queued');
    assert.ok(page.items.filter((d) => d.meta.pending).length === 5);

    await assert.rejects(todos.list({ readPolicy: 'network-only' }), (e) => {
      assert.ok(e instanceof replikit.ReplikitError);
      assert.equal(e.code, 'unavailable');
      assert.equal(e.causes.length, 3, JSON.stringify(e.causes));
      assert.ok(e.causes.every((c) => c.code === 'unreachable' && cluster.endpoints.includes(c.endpoint)));
      return true;
    });
    for (const n of ['n0', 'n1', 'n2']) await cluster.admin(n, 'start');
    await db.flush();
    assert.equal((await db.pendingWrites()).length, 0);
    const synced = await todos.list({ readPolicy: 'network-only' });
    assert.equal(synced.items.length, 8);
  } finally {
    await db.close();
  }
});

test('a URL nobody listens on and a server that is not a gateway fail with causes that tell them apart', async () => {
  const other = createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('<h1>Not Found</h1>');
  });
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  const notGateway = `http://127.0.0.1:${other.address().port}`;
  const nobody = `http://127.0.0.1:${await closedPort()}`;
  const db = await replikit.createClient({
    endpoints: [{ url: notGateway, role: 'primary' }, { url: nobody, role: 'replica' }],
    health: { intervalMs: 200, timeoutMs: 300 },
    primaryWaitMs: 1000,
  });
  try {
    await untilAllDown(db);
    const todos = db.collection('todos');
    await assert.rejects(todos.get('a', { readPolicy: 'network-only' }), (e) => {
      assert.notEqual(e.code, 'not_found', 'a 404 from another server is not a missing document');
      const by = Object.fromEntries(e.causes.map((c) => [c.endpoint, c]));
      assert.equal(by[notGateway]?.code, 'not_a_gateway', JSON.stringify(e.causes));
      assert.equal(by[notGateway]?.status, 404);
      assert.equal(by[nobody]?.code, 'unreachable', JSON.stringify(e.causes));
      return true;
    });
    await assert.rejects(todos.create({}), (e) => {
      assert.equal(e.code, 'no_primary');
      assert.ok(e.causes.some((c) => c.code === 'not_a_gateway'), JSON.stringify(e.causes));
      return true;
    });
  } finally {
    await db.close();
    await new Promise((r) => other.close(r));
  }
});

test('an aborted call sends nothing and queues nothing; aborting one in flight rejects it with aborted', async () => {
  const db = await replikit.createClient({
    primary: cluster.endpoints[0],
    replicas: cluster.endpoints.slice(1),
    headers: cluster.headers,
    offline: { queueWrites: true },
  });
  try {
    const todos = db.collection('todos');
    const aborted = AbortSignal.abort();
    await assert.rejects(todos.create({ x: 1 }, { id: 'never', signal: aborted }), { code: 'aborted' });
    await sleep(200);
    assert.equal((await cluster.fetch(`${cluster.endpoints[0]}/v1/c/todos/never`)).status, 404, 'nothing was sent');
    assert.equal((await db.pendingWrites()).length, 0, 'nothing was queued');
    const controller = new AbortController();
    const read = todos.get('t0', { signal: controller.signal, readPolicy: 'network-only' });
    controller.abort();
    await assert.rejects(read, { code: 'aborted' });
    assert.ok(await todos.get('t0', { readPolicy: 'network-only' }), 'the client goes on');
  } finally {
    await db.close();
  }
});
