// A hostile endpoint beside a real cluster: malformed JSON, wrong types, enormous and dripping bodies, odd
// statuses, redirects to another host, a huge term. The SDK must answer each with a clear error code, keep
// serving from the healthy endpoints, and never send its credentials anywhere it was not configured to.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { startCluster } from './cluster.mjs';

let consumer;
let replikit;
let cluster;
let hostile;
let thief;
const stolen = [];
const doc = JSON.stringify({ id: 'doc', version: 1, data: { ok: true }, updatedAt: '2026-01-01T00:00:00Z' });

const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20));

/** Each mode is the first path segment of the hostile endpoint's URL. */
const modes = {
  badjson: (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"nodeId": "h", "role":'),
  wrongtypes: (req, res) => res.writeHead(200).end(req.url.endsWith('/health')
    ? JSON.stringify({ nodeId: 5, role: 'boss', term: '1', position: -3, lagMs: 'x' })
    : JSON.stringify({ id: 1, version: '2', data: [], updatedAt: null })),
  huge: (req, res) => res.writeHead(200, { 'content-length': String(20 * 1024 * 1024) }).end('x'.repeat(20 * 1024 * 1024)),
  endless: (req, res) => {
    // No Content-Length, and the body never ends: the client must stop reading at its limit.
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    const pump = () => { while (res.write(chunk)) { /* until the socket pushes back */ } };
    res.on('drain', pump);
    pump();
  },
  // 20 KB on the wire, 20 MiB decoded: the declared length says nothing about what the client must hold.
  bomb: (req, res) => res.writeHead(200, {
    'content-type': 'application/json',
    'content-encoding': 'gzip',
    'content-length': String(bomb.length),
  }).end(bomb),
  drip: (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => res.write(' '), 100);
    res.on('close', () => clearInterval(timer));
  },
  status: (req, res) => res.writeHead(req.url.endsWith('/health') ? 418 : 302).end('<html>teapot</html>'),
  redirect: (req, res) => res.writeHead(307, { location: `http://127.0.0.1:${thief.address().port}/steal${req.url}` }).end(),
  hugeterm: (req, res) => res.writeHead(200).end(req.url.endsWith('/health')
    ? JSON.stringify({ nodeId: 'h', role: 'replica', term: Number.MAX_SAFE_INTEGER, position: 1, lagMs: 0, readOnly: true })
    : JSON.stringify({ error: { code: 'internal', message: '<script>alert(1)</script>' } })),
  proto: (req, res) => res.writeHead(200).end(req.url.endsWith('/health')
    ? JSON.stringify({ nodeId: 'h', role: 'replica', term: 1, position: 1, lagMs: 0, readOnly: true })
    : '{"id":"doc","version":1,"data":{"__proto__":{"polluted":true},"constructor":{"prototype":{"bad":1}}},"updatedAt":"t"}'),
};

const listen = (handler) => new Promise((resolve) => {
  const s = createServer(handler);
  s.listen(0, '127.0.0.1', () => resolve(s));
});

before(async () => {
  consumer = await installedPackage();
  replikit = consumer.module;
  thief = await listen((req, res) => {
    stolen.push({ url: req.url, authorization: req.headers.authorization ?? null });
    res.writeHead(200).end(doc);
  });
  hostile = await listen((req, res) => {
    const mode = req.url.split('/')[1];
    (modes[mode] ?? ((q, r) => r.writeHead(404).end()))(req, res);
  });
  cluster = await startCluster(['--replicas', '1']);
  const db = await replikit.createClient({ primary: cluster.endpoints[0], headers: cluster.headers });
  await db.collection('h').create({ ok: true }, { id: 'doc' });
  await db.close();
});

after(async () => {
  hostile?.closeAllConnections();
  hostile?.close();
  thief?.close();
  await cluster?.stop();
  consumer?.cleanup();
});

const url = (mode) => `http://127.0.0.1:${hostile.address().port}/${mode}`;

// `proto` serves a well-formed (other) document, which no client can tell from the truth: it is checked alone below.
for (const mode of Object.keys(modes).filter((m) => m !== 'proto')) {
  test(`beside a hostile "${mode}" replica, reads keep succeeding and credentials stay home`, async () => {
    const db = await replikit.createClient({
      endpoints: [{ url: cluster.endpoints[0], role: 'primary' }, { url: cluster.endpoints[1] }, { url: url(mode) }],
      readPreference: 'nearest',
      headers: cluster.headers,
      health: { intervalMs: 100, timeoutMs: 300 },
      requestTimeoutMs: 500,
    });
    let failed = 0;
    for (let i = 0; i < 30; i++) {
      const d = await db.collection('h').get('doc').catch(() => null);
      if (!d || d.data.ok !== true) failed++;
    }
    assert.equal(failed, 0, 'every read was answered from a healthy endpoint with the real document');
    assert.equal(Object.getPrototypeOf({}).polluted, undefined);
    const hostileView = db.topology()[2];
    if (mode !== 'hugeterm') assert.notEqual(hostileView.state, 'up', `${mode} is not trusted: ${JSON.stringify(hostileView)}`);
    assert.equal(hostileView.primary, false);
    assert.equal(db.topology()[0].primary, true, 'the real primary stays trusted');
    await db.close();
  });
}

test('a hostile endpoint on its own fails each call with a clear, documented code', async () => {
  const expect = {
    badjson: ['protocol', 'no_primary', 'unavailable'],
    wrongtypes: ['protocol', 'unavailable'],
    huge: ['protocol', 'unavailable'],
    endless: ['unavailable'],
    bomb: ['unavailable'],
    drip: ['timeout', 'unavailable'],
    status: ['protocol', 'unavailable'],
    redirect: ['unavailable'],
    hugeterm: ['protocol', 'unavailable'],
  };
  for (const [mode, codes] of Object.entries(expect)) {
    const db = await replikit.createClient({
      endpoints: [{ url: url(mode), role: 'replica' }],
      headers: { authorization: 'Bearer secret' },
      requestTimeoutMs: 500,
      primaryWaitMs: 300,
      retry: { maxAttempts: 1 },
      health: { timeoutMs: 300 },
    });
    const err = await db.collection('h').get('doc').then(() => null, (e) => e);
    assert.ok(err instanceof replikit.ReplikitError, `${mode}: a ReplikitError, got ${err}`);
    assert.ok(codes.includes(err.code), `${mode}: ${err.code} (${err.message})`);
    if (mode === 'endless' || mode === 'bomb') assert.match(err.message, /limit/, 'stopped at the size limit, not by a timeout');
    await db.close();
  }
  const proto = await replikit.createClient({ endpoints: [{ url: url('proto'), role: 'replica' }] });
  const d = await proto.collection('h').get('doc');
  assert.ok(Object.hasOwn(d.data, '__proto__'), 'a __proto__ key stays data');
  assert.equal({}.polluted, undefined);
  assert.equal({}.bad, undefined);
  await proto.close();
  assert.deepEqual(stolen, [], 'nothing ever reached the redirect target');
});
