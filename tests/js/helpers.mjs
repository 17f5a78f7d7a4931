// Shared helpers for the JS test layer: the packed tarball and throwaway consumer folders.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The `npm pack` tarball: $REPLIKIT_TARBALL (set by scripts/test.sh), else packed now into target/pack. */
export function tarball() {
  if (process.env.REPLIKIT_TARBALL) return process.env.REPLIKIT_TARBALL;
  const dest = join(root, 'target', 'pack');
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dest], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const file = readdirSync(dest).find((f) => f.startsWith('replikit-') && f.endsWith('.tgz'));
  return join(dest, file);
}

/** A temp folder with `package.json` and the given files; removed by the returned `cleanup`. */
export function consumerDir(files = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'replikit-consumer-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '0.0.0' }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `npm install` quietly and offline-first (the cache is warm after the root install). */
export function npmInstall(dir, specs) {
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...specs], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Debian's Chromium through playwright-core (never a downloaded browser), headless, with no background traffic. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** mulberry32: a small seeded PRNG, so a random schedule can be replayed from its seed. */
export function prng(seed) {
  let a = seed;
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The packed tarball installed in a fresh folder outside the repo, as a user installs it: `module` is what
 * `import('replikit')` gives there, `url` its ESM entry (for child processes); `cleanup` removes the folder.
 */
export async function installedPackage() {
  const consumer = consumerDir();
  npmInstall(consumer.dir, [tarball()]);
  // require.resolve applies the `require` condition (node.cjs); the ESM entry is its sibling node.mjs.
  const cjs = createRequire(join(consumer.dir, 'package.json')).resolve('replikit');
  const url = pathToFileURL(cjs.replace(/node\.cjs$/, 'node.mjs')).href;
  return { ...consumer, url, module: await import(url) };
}
