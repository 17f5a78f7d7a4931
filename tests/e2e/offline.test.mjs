// End to end in headless Chromium (Debian's, through playwright-core) against a real dev cluster: the
// installed package's IndexedDB cache and outbox across a whole-cluster outage, a page reload, and two tabs.
import assert from 'node:assert/strict';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { consumerDir, launchChromium, npmInstall, tarball } from '../js/helpers.mjs';
import { sleep, startCluster } from '../js/cluster.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
let consumer;
let server;
let browser;
let cluster;

/** Serves the test page at / and the installed package's dist/ at /replikit/. */
function serve(pkgDist) {
  const s = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = path.startsWith('/replikit/')
      ? normalize(join(pkgDist, path.slice('/replikit/'.length)))
      : join(here, 'app', 'index.html');
    if (!file.startsWith(pkgDist) && !file.startsWith(here)) return res.writeHead(403).end();
    if (!existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

before(async () => {
  consumer = consumerDir();
  npmInstall(consumer.dir, [tarball()]);
  const pkgDist = dirname(createRequire(join(consumer.dir, 'package.json')).resolve('replikit/replikit.wasm'));
  server = await serve(pkgDist);
  // The page calls the gateways from its own origin: the only one they allow.
  cluster = await startCluster(['--cors-origin', `http://127.0.0.1:${server.address().port}`]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  await cluster?.stop();
  consumer?.cleanup();
});

const appUrl = (db) => `http://127.0.0.1:${server.address().port}/?db=${db}&endpoints=${cluster.endpoints.join(',')}`;

/**
 * The gateway token reaches the context's pages from this process's memory (as an app would have its credentials),
 * never in a URL: window.clusterHeaders is what the page passes as the client's `headers` option.
 */
async function giveToken(context) {
  if (context.tokenGiven) return;
  await context.addInitScript((headers) => { window.clusterHeaders = headers; }, cluster.headers);
  context.tokenGiven = true;
}

async function openPage(context, db) {
  await giveToken(context);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(appUrl(db));
  await page.waitForFunction(() => window.app);
  await page.evaluate(() => window.app.open());
  page.errors = errors;
  return page;
}

const call = (page, ...args) => page.evaluate((a) => window.app.call(...a), args);
const nodes = ['n0', 'n1', 'n2'];

async function onEveryNode(collection, id) {
  const out = [];
  for (const url of cluster.endpoints) {
    const r = await cluster.fetch(`${url}/v1/c/${collection}/${id}`);
    out.push(r.status === 200 ? (await r.json()).version : r.status);
  }
  return out;
}

/** The one version every node shows (versions are compared, not counted: docs/PROTOCOL.md, Versions). */
function alike(versions, what) {
  assert.ok(versions[0] > 0 && versions.every((v) => v === versions[0]), `${what}: ${versions}`);
  return versions[0];
}

test('with the whole cluster down, writes queue in IndexedDB, survive a reload, and sync exactly once', async () => {
  const context = await browser.newContext();
  let page = await openPage(context, 'reload');
  const options = await page.evaluate(() => window.app.open());
  assert.deepEqual([options.cache.store, options.offline.queueWrites], ['indexeddb', true], 'browser defaults');
  const a0 = await call(page, 'notes', 'create', { n: 0 }, { id: 'a' });
  await call(page, 'notes', 'create', { n: 0 }, { id: 'b' });

  for (const n of nodes) await cluster.admin(n, 'kill');
  try {
    const updated = await call(page, 'notes', 'update', 'a', { n: 1 });
    const created = await call(page, 'notes', 'create', { n: 1 }, { id: 'c' });
    await call(page, 'notes', 'delete', 'b');
    assert.deepEqual([updated.result.meta.pending, created.result.meta.pending], [true, true]);
    assert.ok(updated.ms < 5000, `an offline write resolved in ${Math.round(updated.ms)} ms, it did not hang`);

    await page.reload();
    await page.waitForFunction(() => window.app);
    await page.evaluate(() => window.app.open());
    const pending = await page.evaluate(() => window.app.pending());
    assert.deepEqual(pending.map((p) => [p.kind, p.id]), [['update', 'a'], ['create', 'c'], ['delete', 'b']], 'the outbox survived the reload');
    const a = await call(page, 'notes', 'get', 'a');
    assert.deepEqual([a.result.data.n, a.result.meta.fromCache, a.result.meta.pending], [1, true, true], 'reads come from the cache');
    assert.equal((await call(page, 'notes', 'get', 'b')).result, null);
  } finally {
    for (const n of nodes) await cluster.admin(n, 'start');
  }
  await page.evaluate(() => window.app.flush());
  assert.deepEqual(await page.evaluate(() => window.app.pending()), []);
  await sleep(300);
  assert.ok(alike(await onEveryNode('notes', 'a'), 'a updated on the primary and every replica') > a0.result.version);
  alike(await onEveryNode('notes', 'c'), 'c created on every node');
  assert.deepEqual(await onEveryNode('notes', 'b'), [404, 404, 404]);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('two tabs share one outbox and flush it once; a change in one tab reaches the other', async () => {
  const context = await browser.newContext();
  const one = await openPage(context, 'tabs');
  const two = await openPage(context, 'tabs');
  await call(one, 'tabs', 'create', { from: 'one' }, { id: 'shared' });
  for (let i = 0; i < 50 && !(await two.evaluate(() => window.app.events.some((e) => e.name === 'change'))); i++) await sleep(20);
  const change = (await two.evaluate(() => window.app.events)).find((e) => e.name === 'change');
  assert.deepEqual([change?.id, change?.source], ['shared', 'tab'], 'the other tab heard of the write');
  assert.equal((await call(two, 'tabs', 'get', 'shared', { readPolicy: 'cache-only' })).result.data.from, 'one');

  for (const n of nodes) await cluster.admin(n, 'kill');
  try {
    for (let i = 0; i < 5; i++) await call(one, 'tabs', 'create', { i }, { id: `t${i}` });
    assert.equal((await two.evaluate(() => window.app.pending())).length, 5, 'the other tab sees the same outbox');
  } finally {
    for (const n of nodes) await cluster.admin(n, 'start');
  }
  await Promise.all([one.evaluate(() => window.app.flush()), two.evaluate(() => window.app.flush())]);
  const synced = (await one.evaluate(() => window.app.events)).concat(await two.evaluate(() => window.app.events)).filter((e) => e.name === 'synced');
  assert.equal(synced.length, 5, `five writes synced once in all, not once per tab: ${JSON.stringify(synced)}`);
  await sleep(300);
  for (let i = 0; i < 5; i++) alike(await onEveryNode('tabs', `t${i}`), `t${i} on every node`);
  await context.close();
});

test('a database the store cannot open degrades to memory with a storageError, and the client keeps working', async () => {
  const context = await browser.newContext();
  await giveToken(context);
  const page = await context.newPage();
  await page.goto(appUrl('newer'));
  await page.waitForFunction(() => window.app);
  // A newer version of the app upgraded this database past what this build knows: opening it fails.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open('newer', 99);
    req.onsuccess = () => { req.result.close(); resolve(); };
    req.onerror = () => reject(req.error);
  }));
  const options = await page.evaluate(() => window.app.open());
  assert.equal(options.cache.store, 'indexeddb');
  await sleep(50);
  const errors = (await page.evaluate(() => window.app.events)).filter((e) => e.name === 'storageError');
  assert.deepEqual(errors.map((e) => e.code), ['storage'], 'the app was told, with a code');
  await call(page, 'degraded', 'create', { ok: true }, { id: 'x' });
  const cached = await call(page, 'degraded', 'get', 'x', { readPolicy: 'cache-only' });
  assert.equal(cached.result.data.ok, true, 'the cache carries on in memory');
  await context.close();
});

test('a hidden tab stops health-checking and a visible one resumes at once', async () => {
  const context = await browser.newContext();
  const page = await openPage(context, 'hidden');
  const count = () => page.evaluate(() => window.app.healthChecks);
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await sleep(600);
  assert.ok((await count()) >= 6, 'visible: three endpoints checked every 200 ms');
  await setHidden(true);
  await sleep(300); // checks already in flight finish
  const before = await count();
  await sleep(1500);
  assert.equal(await count(), before, 'no periodic check while hidden');
  await setHidden(false);
  await sleep(100);
  assert.ok((await count()) >= before + 3, 'every endpoint re-checked as soon as the tab is visible');
  await context.close();
});

test('close() closes the IndexedDB connection: another tab can upgrade the database at once', async () => {
  const context = await browser.newContext();
  const page = await openPage(context, 'closing');
  await call(page, 'notes', 'create', { text: 'x' }, { id: 'c1' });
  await page.evaluate(() => window.app.close());
  // A version change is blocked while any connection stays open; after close() it must go through.
  const outcome = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const req = indexedDB.open('closing', 1000);
        const timer = setTimeout(() => resolve('timed out'), 3000);
        req.onblocked = () => resolve('blocked');
        req.onsuccess = () => {
          clearTimeout(timer);
          req.result.close();
          resolve('upgraded');
        };
        req.onerror = () => resolve(`error: ${req.error}`);
      }),
  );
  assert.equal(outcome, 'upgraded');
  assert.deepEqual(page.errors, []);
  await context.close();
});
