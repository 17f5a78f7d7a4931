// Cache hits in headless Chromium (Debian's /usr/bin/chromium through playwright-core; never downloads one):
// serves bench/browser/index.html and the package's dist/ from a local http server on 127.0.0.1.
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

/** Runs the page's cache-hit benchmark; always closes the browser and the server. */
export async function browserCacheHits({ endpoints, ids, n }) {
  const server = await serve();
  let browser;
  try {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.bench, null, { timeout: 20000 });
    const result = await page.evaluate((a) => window.bench.run(a), { endpoints, ids, n });
    result.version = browser.version();
    result.pageErrors = errors;
    return result;
  } finally {
    await browser?.close().catch(() => {});
    server.close();
    server.closeAllConnections?.();
  }
}
