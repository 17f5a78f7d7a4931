// Shared helpers for the JS test layer: the packed tarball and throwaway consumer folders.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
