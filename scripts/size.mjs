// `npm run size`: raw and gzip bytes of what the package ships (run `npm run build` first).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const files = readdirSync(dist).filter((f) => /\.(wasm|js|mjs|cjs)$/.test(f)).sort();
const rows = files.map((f) => {
  const bytes = readFileSync(join(dist, f));
  return { file: f, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
});
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log('file'.padEnd(16), 'raw'.padStart(10), 'gzip'.padStart(10));
for (const r of rows) console.log(r.file.padEnd(16), kb(r.raw).padStart(10), kb(r.gzip).padStart(10));
const browser = rows.filter((r) => ['replikit.wasm', 'glue.js', 'api.js', 'errors.js', 'index.js'].includes(r.file));
const sum = (k) => browser.reduce((a, r) => a + r[k], 0);
console.log('browser total'.padEnd(16), kb(sum('raw')).padStart(10), kb(sum('gzip')).padStart(10), '(wasm + what index.js loads)');
const wasm = rows.find((r) => r.file === 'replikit.wasm');
console.log(`wasm gzip ${kb(wasm.gzip)} of the 100 KB goal`);
