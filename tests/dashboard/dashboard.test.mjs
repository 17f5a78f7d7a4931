// The demo as a newcomer runs it: the real `scripts/start.sh` (dev cluster + dashboard server, on free ports and
// a temp state file), driven in headless Chromium (Debian's, through playwright-core): CRUD, a manual failover
// from the dashboard and one from the CLI, and an offline round trip. Saves test-output/dashboard.png.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { launchChromium } from '../js/helpers.mjs';
import { root, sleep, startDemo, stopDemo } from './processes.mjs';

const serverBin = process.env.REPLIKIT_SERVER_BIN ?? join(root, 'target', 'debug', 'replikit-server');
const dir = mkdtempSync(join(tmpdir(), 'replikit-demo-test-'));
const stateFile = join(dir, 'state.json');
// scripts/test.sh built the package and the server before this layer: start.sh skips its build step.
const env = {
  ...process.env,
  REPLIKIT_WWW_PORT: '0',
  REPLIKIT_CLUSTER_PORT: '0',
  REPLIKIT_STATE_FILE: stateFile,
  REPLIKIT_START_NO_BUILD: '1',
  REPLIKIT_SERVER_BIN: serverBin,
};
let demo; // { child, output(), url, cluster }
let browser;

before(async () => {
  const t0 = Date.now();
  demo = await startDemo(env, stateFile);
  console.log(`demo up in ${Date.now() - t0} ms at ${demo.url}`);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (demo) await stopDemo(demo, stateFile, { dataLeft: 'no PostgreSQL of the demo is left', supervisorLeft: 'no replikit-server of the demo is left' });
  rmSync(dir, { recursive: true, force: true });
});

test('a second start while the demo runs says so and exits 1', async () => {
  const second = await promisify(execFile)('bash', ['scripts/start.sh'], { cwd: root, env }).catch((e) => e);
  assert.equal(second.code, 1);
  assert.match(second.stdout, /replikit: a demo is already running \(pid \d+\); stop it with Ctrl-C in its terminal/);
});

test('the dashboard: CRUD, failover from the buttons and from the CLI, offline and back', async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(demo.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
  await page.waitForSelector('tr[data-node="n0"][data-primary="true"]', { timeout: 10000 });

  const note = (text) => page.locator('li.note', { hasText: text });
  const create = async (text) => {
    await page.fill('[data-testid=create-input]', text);
    await page.click('[data-testid=create-button]');
  };
  const synced = async (text, timeout = 10000) => {
    await page.waitForSelector(`li.note[data-pending="false"]:has-text("${text}")`, { timeout });
  };

  await create('before the failover');
  await synced('before the failover');

  // Manual failover from the operator buttons.
  await page.click('[data-testid=kill-n0]');
  await page.waitForSelector('tr[data-node="n0"][data-state="down"]', { timeout: 5000 });
  await page.waitForSelector('[data-testid=promote-n1]:not([disabled])', { timeout: 5000 });
  await page.click('[data-testid=promote-n1]');
  await page.waitForSelector('tr[data-node="n1"][data-primary="true"]', { timeout: 5000 });
  assert.equal(await page.getAttribute('[data-testid=current-primary]', 'data-primary'), 'n1');
  await create('after the failover');
  await synced('after the failover');

  // Offline: the write is queued (pending), then syncs when the client is back online.
  await page.click('[data-testid=online-toggle]');
  await create('written offline');
  await page.waitForSelector('li.note[data-pending="true"]:has-text("written offline") [data-testid=badge-pending]', { timeout: 10000 });
  await page.click('[data-testid=online-toggle]');
  await synced('written offline', 15000);
  assert.equal(await note('written offline').locator('[data-testid=badge-pending]').count(), 0);
  await page.waitForSelector('#events li[data-kind="synced"]', { timeout: 5000 });

  // On the cluster itself: the offline note reached the new primary exactly once.
  const n1 = demo.cluster.nodes.find((n) => n.nodeId === 'n1').url;
  const auth = { authorization: `Bearer ${demo.cluster.gatewayToken}` }; // from the 0600 state file
  const items = (await (await fetch(`${n1}/v1/c/notes`, { headers: auth })).json()).items;
  assert.deepEqual(items.map((d) => d.data.text).sort(), ['after the failover', 'before the failover', 'written offline']);

  // Manual failover from the CLI: the dashboard shows the new primary within a second.
  await page.click('[data-testid=kill-n1]');
  await page.waitForSelector('tr[data-node="n1"][data-state="down"]', { timeout: 5000 });
  const ctl = await promisify(execFile)(serverBin, ['ctl', '--state-file', stateFile, 'promote', 'n2']);
  const promoted = Date.now();
  assert.match(ctl.stdout, /tookMs/);
  await page.waitForSelector('tr[data-node="n2"][data-primary="true"]', { timeout: 5000, state: 'attached' });
  const seenMs = Date.now() - promoted;
  console.log(`the dashboard showed the CLI's promotion of n2 after ${seenMs} ms`);
  assert.ok(seenMs < 1000, `the dashboard showed n2 as primary ${seenMs} ms after ctl promote`);
  await create('after the CLI failover');
  await synced('after the CLI failover');

  await sleep(1500); // a little more traffic on the chart for the screenshot
  mkdirSync(join(root, 'test-output'), { recursive: true });
  await page.screenshot({ path: join(root, 'test-output', 'dashboard.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
