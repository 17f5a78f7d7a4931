// scripts/serve-www.mjs (the dashboard's server) against what another web page, a rebound DNS name or a stray
// request can send it: it answers only its own Host and origin, never lets a page frame it, bounds bodies, and a
// malformed request target does not kill it. Its dev cluster is a stand-in admin API that records what reached it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServeWww } from './processes.mjs';

const ADMIN_TOKEN = 'admin-token-never-in-the-browser';
const GATEWAY_TOKEN = 'gateway-token-for-the-dashboard';
const dir = mkdtempSync(join(tmpdir(), 'replikit-serve-www-test-'));
let admin; // the stand-in admin API
const reached = []; // what reached it: { method, url, authorization, body }
let www; // { child, port, origin }

before(async () => {
  admin = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    reached.push({ method: req.method, url: req.url, authorization: req.headers.authorization, body });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"autoFailover":true}');
  });
  await new Promise((r) => admin.listen(0, '127.0.0.1', r));
  const clusterFile = join(dir, 'cluster.json');
  writeFileSync(clusterFile, JSON.stringify({
    endpoints: ['http://127.0.0.1:1'],
    nodes: [{ nodeId: 'n0', url: 'http://127.0.0.1:1', pgPort: 2 }],
    adminUrl: `http://127.0.0.1:${admin.address().port}`,
    adminToken: ADMIN_TOKEN,
    gatewayToken: GATEWAY_TOKEN,
    pgPassword: 'pg-password-never-in-the-browser',
    pid: 1,
    dataDir: '/x/y',
  }), { mode: 0o600 });
  const { child, url } = await startServeWww(clusterFile, join(dir, 'url'));
  const port = Number(new URL(url).port);
  www = { child, port, origin: `http://127.0.0.1:${port}` };
});

after(async () => {
  www?.child.kill('SIGTERM');
  admin?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One request with exactly these headers (Host included); resolves { status, headers, body }. */
function send(method, path, headers = {}, body = undefined) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: www.port, method, path, headers: { host: `127.0.0.1:${www.port}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    if (typeof body === 'function') body(req);
    else req.end(body);
  });
}

const dashboard = () => ({ origin: www.origin, 'x-replikit-demo': '1', 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' });

test('a foreign Host (DNS rebinding) gets 421 and reaches neither the admin API nor the credentials', async () => {
  const before = reached.length;
  for (const host of [`evil.example:${www.port}`, 'evil.example', `127.0.0.1.evil.example:${www.port}`]) {
    const toggle = await send('POST', '/admin/auto-failover', { ...dashboard(), host, origin: `http://${host}` }, '{"enabled":false}');
    assert.equal(toggle.status, 421, host);
    const config = await send('GET', '/config.json', { host });
    assert.equal(config.status, 421, host);
    assert.ok(!config.body.includes(GATEWAY_TOKEN));
  }
  assert.equal(reached.length, before, 'nothing reached the admin API');
  // Its own Host, from its own page: answered and forwarded with the admin token.
  const own = await send('POST', '/admin/auto-failover', dashboard(), '{"enabled":false}');
  assert.equal(own.status, 200);
  assert.deepEqual(reached.at(-1), { method: 'POST', url: '/admin/auto-failover', authorization: `Bearer ${ADMIN_TOKEN}`, body: '{"enabled":false}' });
  assert.equal((await send('GET', '/', { host: `localhost:${www.port}` })).status, 200, 'localhost is its own too');
});

test('a POST from another origin, or without one, is 403 and not forwarded', async () => {
  const before = reached.length;
  for (const origin of ['http://evil.example', `http://127.0.0.1:${www.port + 1}`, 'null', undefined]) {
    const headers = { ...dashboard(), origin };
    if (origin === undefined) delete headers.origin;
    const r = await send('POST', '/admin/nodes/n0/kill', headers, '{}');
    assert.equal(r.status, 403, `origin ${origin}`);
  }
  const crossSite = await send('POST', '/admin/nodes/n0/kill', { ...dashboard(), 'sec-fetch-site': 'cross-site' }, '{}');
  assert.equal(crossSite.status, 403);
  assert.equal(reached.length, before);
});

test('the credentials in /config.json go only to the dashboard page, never the admin token or the PG password', async () => {
  const own = await send('GET', '/config.json', { 'sec-fetch-site': 'same-origin' });
  assert.equal(own.status, 200);
  const config = JSON.parse(own.body);
  assert.deepEqual(config.headers, { authorization: `Bearer ${GATEWAY_TOKEN}` });
  assert.ok(!own.body.includes(ADMIN_TOKEN) && !own.body.includes('pg-password'), own.body);
  for (const headers of [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }]) {
    const r = await send('GET', '/config.json', headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.ok(!r.body.includes(GATEWAY_TOKEN));
  }
});

test("every answer forbids framing: Content-Security-Policy frame-ancestors 'none'", async () => {
  for (const [path, host] of [['/', null], ['/config.json', null], ['/nope', null], ['/', 'evil.example']]) {
    const r = await send('GET', path, host ? { host } : {});
    assert.match(r.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, `${path} (${r.status})`);
    assert.equal(r.headers['x-frame-options'], 'DENY');
  }
});

test('a request body over 64 KiB is 413 and not forwarded, declared or streamed', async () => {
  const before = reached.length;
  const big = 'x'.repeat(65 * 1024);
  const declared = await send('POST', '/admin/auto-failover', dashboard(), big);
  assert.equal(declared.status, 413);
  const streamed = await send('POST', '/admin/auto-failover', { ...dashboard(), 'transfer-encoding': 'chunked' }, (req) => {
    for (let i = 0; i < 20; i++) req.write('y'.repeat(8 * 1024));
    req.end();
  }).catch((e) => ({ status: `reset (${e.code})` }));
  assert.ok(streamed.status === 413 || String(streamed.status).startsWith('reset'), `streamed: ${streamed.status}`);
  assert.equal(reached.length, before, 'nothing reached the admin API');
});

test('a malformed request target (GET http://[) is answered 400 and the server lives on', async () => {
  for (const target of ['http://[', '//[', 'http://%zz']) {
    const answer = await new Promise((resolve) => {
      const socket = connect(www.port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${www.port}\r\n\r\n`));
      let text = '';
      socket.on('data', (d) => (text += d)).on('close', () => resolve(text)).on('error', () => resolve(text));
      setTimeout(() => socket.destroy(), 2000);
    });
    assert.match(answer, /^HTTP\/1\.1 (400|404)/, `${target}: ${answer.slice(0, 80)}`);
  }
  assert.equal(www.child.exitCode, null, 'still running');
  assert.equal((await send('GET', '/')).status, 200);
});
