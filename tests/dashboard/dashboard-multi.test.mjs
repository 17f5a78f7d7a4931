// The multi-primary demo as a newcomer runs it: the real `scripts/start.sh` with REPLIKIT_TOPOLOGY=multi-primary
// (what `npm run start:couchdb` runs: the CouchDB-protocol dev cluster + the dashboard server, on free ports and a
// temp state file), driven in headless Chromium (Debian's, through playwright-core): every node writable, a note
// with its revision and the node that served it, killing that node from the dashboard (writes move on at once, no
// failure), starting it again (it catches up), a revision conflict, and an offline round trip.
// Saves test-output/dashboard-multi.png.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { launchChromium } from '../js/helpers.mjs';
import { root, sleep, startDemo, stopDemo } from './processes.mjs';

const dir = mkdtempSync(join(tmpdir(), 'replikit-demo-multi-test-'));
const stateFile = join(dir, 'state.json');
// scripts/test.sh built the package before this layer: start.sh skips its build step.
const env = {
  ...process.env,
  REPLIKIT_TOPOLOGY: 'multi-primary',
  REPLIKIT_WWW_PORT: '0',
  REPLIKIT_CLUSTER_PORT: '0',
  REPLIKIT_STATE_FILE: stateFile,
  REPLIKIT_START_NO_BUILD: '1',
};
let demo; // { child, output(), url, cluster }
let browser;

/** fetch straight to a node, as its server admin (the only user its database admits; from the state file). */
function nodeFetch(url, init = {}) {
  const { couchUser, couchPassword } = demo.cluster;
  const authorization = `Basic ${Buffer.from(`${couchUser}:${couchPassword}`).toString('base64')}`;
  return fetch(url, { ...init, headers: { authorization, ...init.headers } });
}

/** A CouchDB document straight from one node (null when it has none or does not answer). */
async function couchDoc(nodeUrl, docId) {
  try {
    const r = await nodeFetch(`${nodeUrl}/${demo.cluster.database}/${encodeURIComponent(docId)}`, { signal: AbortSignal.timeout(1000) });
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

/** Waits until every node in `nodes` has `docId` (replication is asynchronous). */
async function replicated(nodes, docId, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const docs = await Promise.all(nodes.map((n) => couchDoc(n.url, docId)));
    if (docs.every(Boolean)) return docs;
    assert.ok(Date.now() < deadline, `${docId} reached ${nodes.map((n) => n.nodeId).join(', ')} within ${ms} ms`);
    await sleep(100);
  }
}

before(async () => {
  const t0 = Date.now();
  demo = await startDemo(env, stateFile);
  console.log(`demo up in ${Date.now() - t0} ms at ${demo.url}`);
  assert.equal(demo.cluster.topology, 'multi-primary');
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (demo) await stopDemo(demo, stateFile, { dataLeft: 'no pouchdb-server node of the demo is left', supervisorLeft: 'no cluster supervisor of the demo is left' });
  rmSync(dir, { recursive: true, force: true });
});

test('a second start while the demo runs says so and exits 1', async () => {
  const second = await promisify(execFile)('bash', ['scripts/start.sh'], { cwd: root, env }).catch((e) => e);
  assert.equal(second.code, 1);
  assert.match(second.stdout, /replikit: a demo is already running \(pid \d+\); stop it with Ctrl-C in its terminal/);
});

test('the multi-primary dashboard: every node writable, kill/start and hang/unhang from the buttons, a conflict, offline', async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const nodeIds = demo.cluster.nodes.map((n) => n.nodeId);
  assert.deepEqual(nodeIds, ['c0', 'c1', 'c2']);
  await page.goto(demo.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });

  // The mode, and 3 writable nodes (a ★ on each); only the operator actions that exist here.
  assert.match(await page.textContent('[data-testid=mode]'), /multi-primary · CouchDB · every node takes writes/);
  assert.equal(await page.isVisible('[data-testid=mode]'), true);
  await page.waitForFunction(() => document.querySelectorAll('tr[data-writable="true"]').length === 3, null, { timeout: 10000 });
  for (const id of nodeIds) {
    assert.equal(await page.isVisible(`tr[data-node="${id}"] .writes-tag`), true, `★ on ${id}`);
    for (const a of ['kill', 'hang']) assert.equal(await page.isEnabled(`[data-testid=${a}-${id}]`), true);
    for (const a of ['promote', 'rejoin']) assert.equal(await page.locator(`[data-testid=${a}-${id}]`).count(), 0);
  }
  assert.equal(await page.isVisible('[data-testid=autofailover-toggle]'), false);
  assert.equal(await page.locator('tr[data-primary="true"]').count(), 0, 'no node is "the" primary');

  const note = (text) => page.locator('li.note', { hasText: text });
  const create = async (text) => {
    await page.fill('[data-testid=create-input]', text);
    await page.click('[data-testid=create-button]');
  };
  const synced = async (text, timeout = 10000) => {
    await page.waitForSelector(`li.note[data-pending="false"]:has-text("${text}")`, { timeout });
  };
  /** The node of the `write` event logged for `verb` (created/updated) of a note id. */
  const writtenOn = async (verb, id) => {
    const li = page.locator('#events li[data-kind="write"]', { hasText: `${verb} notes/${id.slice(-8)}` }).first();
    await li.waitFor({ timeout: 5000 });
    return (await li.textContent()).match(/ on (c\d)/)[1];
  };
  const failures = () => page.locator('#events li[data-kind="error"], #events li[data-kind="syncFailed"]').allTextContents();

  // A note: its version is a CouchDB revision, and the note says which node served it.
  await create('first note');
  await synced('first note');
  const first = note('first note');
  const firstId = await first.getAttribute('data-id');
  assert.match(await first.getAttribute('data-version'), /^1-[0-9a-f]{32}$/);
  assert.match(await first.locator('[data-testid=version]').textContent(), /^rev 1-[0-9a-f]{6}$/);
  const took = await writtenOn('created', firstId);
  assert.ok(nodeIds.includes(await first.locator('[data-testid=served-by]').textContent()), 'the node that served it');
  // The session's write node: marked in its row and named by the pill (it sticks while the node is up).
  await page.waitForSelector(`tr[data-node="${took}"][data-session-node="true"] .session-tag`, { timeout: 5000 });
  assert.equal(await page.locator('tr[data-session-node="true"]').count(), 1);
  assert.equal(await page.getAttribute('[data-testid=current-primary]', 'data-write-node'), took);
  assert.match(await page.textContent('[data-testid=current-primary]'), new RegExp(`^writes → ${took} `));
  await replicated(demo.cluster.nodes, `notes:${firstId}`); // so the edit below finds it on the other nodes

  // Kill the node that took it: its row shows down within a few seconds; writes move on at once.
  const killed = Date.now();
  await page.click(`[data-testid=kill-${took}]`);
  await page.waitForSelector(`tr[data-node="${took}"][data-state="down"]`, { timeout: 5000 });
  console.log(`${took} showed down ${Date.now() - killed} ms after the kill button`);
  assert.equal(await page.getAttribute(`tr[data-node="${took}"]`, 'data-writable'), 'false');
  assert.equal(await page.isVisible(`tr[data-node="${took}"] .writes-tag`), false);
  await page.waitForSelector(`[data-testid=start-${took}]:not([disabled])`, { timeout: 5000 });

  const t1 = Date.now();
  await create('after the kill');
  await synced('after the kill');
  const afterId = await note('after the kill').getAttribute('data-id');
  const other = await writtenOn('created', afterId);
  console.log(`a note written ${Date.now() - t1} ms after ${took} was seen down, on ${other}`);
  assert.notEqual(other, took);
  await page.waitForFunction((n) => document.querySelector('[data-testid=current-primary]').dataset.writeNode === n, other, { timeout: 5000 });

  // Edit the first note (written on the dead node, replicated before it died) on another node.
  const firstRow = page.locator(`li.note[data-id="${firstId}"]`); // the text is an input while editing
  await firstRow.locator('button.edit').click();
  await firstRow.locator('input').fill('first note, edited');
  await firstRow.locator('input').press('Enter');
  await page.waitForSelector('li.note[data-pending="false"]:has-text("first note, edited")', { timeout: 10000 });
  assert.match(await note('first note, edited').getAttribute('data-version'), /^2-[0-9a-f]{32}$/);
  assert.notEqual(await writtenOn('updated', firstId), took);
  assert.deepEqual(await failures(), [], 'no failure in the event log');

  // Start it again: it comes back up, writable, and catches up with what was written while it was down.
  const started = Date.now();
  await page.click(`[data-testid=start-${took}]`);
  await page.waitForSelector(`tr[data-node="${took}"][data-state="up"][data-writable="true"]`, { timeout: 10000 });
  console.log(`${took} showed up ${Date.now() - started} ms after the start button`);
  const back = demo.cluster.nodes.find((n) => n.nodeId === took);
  await replicated([back], `notes:${afterId}`);
  await page.waitForSelector('#events li[data-kind="endpointUp"]', { timeout: 5000 });

  // Two nodes take conflicting revisions of one note behind the client's back (CouchDB's own API): the
  // dashboard's next list settles the conflict and logs it.
  const doc = (h, text) => ({ _id: 'notes:zz-conf', _rev: `1-${h.repeat(32)}`, collection: 'notes', data: { text }, updatedAt: new Date().toISOString() });
  for (const [i, h, text] of [[0, 'a', 'conflicted (c0)'], [1, 'b', 'conflicted (c1)']]) {
    const r = await nodeFetch(`${demo.cluster.nodes[i].url}/${demo.cluster.database}/_bulk_docs`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_edits: false, docs: [doc(h, text)] }),
    });
    assert.equal(r.status, 201);
  }
  const conflict = page.locator('#events li[data-kind="conflict"]').first();
  await conflict.waitFor({ timeout: 15000 });
  assert.match(await conflict.textContent(), /notes\/zz-conf: 2 revisions \(1-[ab]{6}, 1-[ab]{6}\), kept rev 1-[ab]{6}/);
  await page.waitForFunction(() => document.querySelectorAll('li.note[data-id="zz-conf"]').length === 1, null, { timeout: 5000 });

  // Hang a node that is not the session's: the client marks it down (its health checks time out); unhang it.
  const session = await page.getAttribute('[data-testid=current-primary]', 'data-write-node');
  const hung = nodeIds.find((id) => id !== session);
  const hangAt = Date.now();
  await page.click(`[data-testid=hang-${hung}]`);
  await page.waitForSelector(`tr[data-node="${hung}"][data-state="down"]`, { timeout: 5000 });
  console.log(`${hung} showed down ${Date.now() - hangAt} ms after the hang button`);
  await page.waitForSelector(`[data-testid=unhang-${hung}]:not([disabled])`, { timeout: 5000 });
  assert.match(await page.textContent(`tr[data-node="${hung}"] [data-f=server]`), /pouchdb hung/);
  await page.click(`[data-testid=unhang-${hung}]`);
  await page.waitForSelector(`tr[data-node="${hung}"][data-state="up"][data-writable="true"]`, { timeout: 5000 });

  // Offline: the write is queued (pending), then syncs when the client is back online.
  await page.click('[data-testid=online-toggle]');
  await create('written offline');
  await page.waitForSelector('li.note[data-pending="true"]:has-text("written offline") [data-testid=badge-pending]', { timeout: 10000 });
  await page.click('[data-testid=online-toggle]');
  await synced('written offline', 15000);
  await page.waitForSelector('#events li[data-kind="synced"]', { timeout: 5000 });

  // On the cluster itself: every node has every note, exactly once.
  const texts = ['after the kill', 'first note, edited', 'written offline'];
  const deadline = Date.now() + 10000;
  for (const n of demo.cluster.nodes) {
    for (;;) {
      const r = await (await nodeFetch(`${n.url}/${demo.cluster.database}/_all_docs?include_docs=true&startkey="notes:"&endkey="notes;"`)).json();
      const got = r.rows.map((row) => row.doc.data.text).filter((t) => !t.startsWith('conflicted')).sort();
      if (JSON.stringify(got) === JSON.stringify(texts) || Date.now() > deadline) {
        assert.deepEqual(got, texts, `the notes on ${n.nodeId}`);
        break;
      }
      await sleep(200);
    }
  }
  assert.deepEqual(await failures(), [], 'no failure in the event log');

  await sleep(1500); // a little more traffic on the chart for the screenshot
  mkdirSync(join(root, 'test-output'), { recursive: true });
  await page.screenshot({ path: join(root, 'test-output', 'dashboard-multi.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
