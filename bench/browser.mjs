// Cache hits in headless Chromium (Debian's /usr/bin/chromium through playwright-core; never downloads one):
// serves bench/browser/index.html and the package's dist/ from a local http server on 127.0.0.1.
//
// The gateways answer a page only from an origin given with `--cors-origin` and only with the cluster's token:
// the caller's `withCluster(origin, fn)` starts (and stops) a cluster allowing this page's origin once the page's
// server listens, and the page gets the cluster's `headers` (the token) as an argument of `window.bench.run`
// over playwright's pipe to the browser: never in a URL, the served files or any process's argv.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = normalize(join(here, '..', 'dist'));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

function serve() {
  const s = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = path.startsWith('/replikit/') ? normalize(join(dist, path.slice('/replikit/'.length))) : join(here, 'browser', 'index.html');
    if (!file.startsWith(dist) && !file.startsWith(here)) return res.writeHead(403).end();
    if (!existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
    res.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

/**
 * Runs the page's cache-hit benchmark against the cluster `withCluster(origin, fn)` gives `fn` (one whose
 * gateways allow `origin`, the page's); always closes the browser and the server.
 */
export async function browserCacheHits({ withCluster, ids, n }) {
  const server = await serve();
  const origin = `http://127.0.0.1:${server.address().port}`;
  let browser;
  try {
    return await withCluster(origin, async ({ endpoints, headers }) => {
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = await (await browser.newContext()).newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => window.bench, null, { timeout: 20000 });
      const result = await page.evaluate((a) => window.bench.run(a), { endpoints, headers, ids, n });
      result.version = browser.version();
      result.pageErrors = errors;
      return result;
    });
  } finally {
    await browser?.close().catch(() => {});
    server.close();
    server.closeAllConnections?.();
  }
}
