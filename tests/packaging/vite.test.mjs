// Packaging: install the packed tarball into a tiny Vite app, build it for production, serve the build on
// 127.0.0.1 and load it in headless Chromium (Debian's, through playwright-core) to call the package.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { consumerDir, launchChromium, npmInstall, root, tarball } from '../js/helpers.mjs';

const require = createRequire(import.meta.url);
const viteVersion = require(join(root, 'node_modules', 'vite', 'package.json')).version;
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

let app;
let server;
let browser;

/** A static file server for the production build, on an ephemeral loopback port. */
function serve(dir) {
  const s = createServer((req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    const file = path.startsWith(dir) && existsSync(path) && statSync(path).isFile() ? path : join(dir, 'index.html');
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

before(async () => {
  app = consumerDir();
  cpSync(join(root, 'tests', 'packaging', 'vite-app'), app.dir, { recursive: true });
  npmInstall(app.dir, [tarball(), `vite@${viteVersion}`]);
  execFileSync(join(app.dir, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], {
    cwd: app.dir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  server = await serve(join(app.dir, 'dist'));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  app?.cleanup();
});

test('a Vite 7 production build bundles the package and its .wasm', () => {
  const assets = execFileSync('ls', [join(app.dir, 'dist', 'assets')], { encoding: 'utf8' });
  assert.match(assets, /\.wasm/, `the .wasm was emitted as an asset: ${assets}`);
});

test('the built app calls the package in headless Chromium', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => document.getElementById('result').textContent !== 'pending', null, { timeout: 20000 });
  const text = await page.textContent('#result');
  assert.deepEqual(errors, []);
  assert.ok(!text.startsWith('error'), text);
  assert.deepEqual(JSON.parse(text), {
    version: '0.1.0',
    roles: ['primary', 'replica'],
    collection: 'notes',
    bad: { isReplikitError: true, code: 'invalid_argument', argument: 'primary' },
  });
});
