// The dashboard writes what servers say as text: a node id, a node header and admin states carrying HTML are shown
// literally and run nothing. A stand-in gateway and admin API send them; the real scripts/serve-www.mjs serves the
// real www/ and dist/ to headless Chromium.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium } from '../js/helpers.mjs';
import { sleep, startServeWww } from './processes.mjs';

const HOSTILE = '<img src=x onerror="window.__pwned=(window.__pwned||0)+1">';
const TOKEN = 'hostile-test-token';
const dir = mkdtempSync(join(tmpdir(), 'replikit-hostile-dashboard-'));
const servers = [];
let www;
let browser;

function listen(handler) {
  const s = createServer(handler);
  servers.push(s);
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${s.address().port}`)));
}

before(async () => {
  // A "gateway" that calls itself HOSTILE in its health report and its X-Replikit-Node header.
  const gateway = await listen((req, res) => {
    const cors = {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': '*',
      'access-control-allow-methods': '*',
      'access-control-expose-headers': 'x-replikit-node, x-replikit-position, x-replikit-term',
    };
    if (req.method === 'OPTIONS') return res.writeHead(204, cors).end();
    const head = { ...cors, 'content-type': 'application/json', 'x-replikit-node': HOSTILE, 'x-replikit-position': '1', 'x-replikit-term': '1' };
    if (req.url === '/v1/health') {
      return res.writeHead(200, head).end(JSON.stringify({ nodeId: HOSTILE, role: 'primary', term: 1, position: 1, lagMs: 0, readOnly: false }));
    }
    if (req.url.startsWith('/v1/c/notes?')) return res.writeHead(200, head).end('{"items":[],"next":null}');
    res.writeHead(404, head).end('{"error":{"code":"not_found","message":"no"}}');
  });
  const admin = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      primary: HOSTILE,
      replication: 'sync',
      autoFailover: false,
      nodes: [{ nodeId: HOSTILE, url: gateway, gateway: HOSTILE, postgres: HOSTILE, role: 'primary', term: 1, position: 1, lagMs: 0 }],
    }));
  });
  const clusterFile = join(dir, 'cluster.json');
  writeFileSync(clusterFile, JSON.stringify({
    endpoints: [gateway],
    nodes: [{ nodeId: HOSTILE, url: gateway }],
    adminUrl: admin,
    adminToken: 'a',
    gatewayToken: TOKEN,
    pid: 1,
    dataDir: '/x/hostile',
  }));
  const { child, url } = await startServeWww(clusterFile, join(dir, 'url'));
  www = { child, url };
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  www?.child.kill('SIGTERM');
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a hostile node id, node header and admin states are rendered as text, not HTML', async () => {
  const page = await browser.newPage();
  await page.goto(www.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
  // Health checks every 250 ms, admin status every second, the chart every 500 ms, traffic every 500 ms.
  await page.waitForFunction((h) => document.querySelector('#topology tbody').textContent.includes(h), HOSTILE, { timeout: 10000 });
  await sleep(2500);
  const seen = await page.evaluate(() => ({
    pwned: window.__pwned ?? 0,
    images: document.querySelectorAll('img').length,
    table: document.querySelector('#topology tbody').textContent,
    legend: document.getElementById('legend').textContent,
    lastRead: document.getElementById('last-read').textContent,
  }));
  assert.equal(seen.pwned, 0, 'no injected handler ran');
  assert.equal(seen.images, 0, 'no element was injected');
  assert.ok(seen.legend.includes(HOSTILE), `the legend shows the id as text: ${seen.legend}`);
  const shown = seen.table.split(HOSTILE).length - 1;
  assert.ok(shown >= 3, `the table shows the node id and both states as text (${shown} times): ${seen.table}`);
  assert.ok(seen.lastRead === '' || seen.lastRead.includes(HOSTILE), seen.lastRead);
  await page.close();
});
