// Builds the npm package into dist/: cargo (wasm32, release) -> wasm-bindgen (web target) -> wasm-opt -Oz
// (from the npm `binaryen` package; never Debian's binaryen 108, whose output fails to load) -> entry points.
// Run through `npm run build`, which bootstraps the tools first.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const bindgenOut = join(root, 'target', 'bindgen');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
const debug = process.argv.includes('--debug');

console.log('build: cargo build --release --target wasm32-unknown-unknown');
run('cargo', ['build', '--release', '--target', 'wasm32-unknown-unknown', '-p', 'replikit', '--lib']);

console.log('build: wasm-bindgen --target web');
rmSync(bindgenOut, { recursive: true, force: true });
run(join(root, '.tools', 'bin', 'wasm-bindgen'), [
  '--target', 'web', '--out-dir', bindgenOut, '--out-name', 'replikit',
  join(root, 'target', 'wasm32-unknown-unknown', 'release', 'replikit.wasm'),
]);

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const wasmIn = join(bindgenOut, 'replikit_bg.wasm');
const wasmOut = join(dist, 'replikit.wasm');
if (debug) {
  copyFileSync(wasmIn, wasmOut);
} else {
  console.log('build: wasm-opt -Oz');
  // The features rustc enables by default for wasm32 since 1.82 (bulk memory, reference types, ...).
  run(join(root, 'node_modules', '.bin', 'wasm-opt'), [
    '-Oz', '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
    '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue',
    wasmIn, '-o', wasmOut,
  ]);
}

// The generated glue (ESM) and its types, kept for reference; the public types are js/index.d.ts.
// The glue's own default location names wasm-bindgen's file; ours ships as replikit.wasm next to it. Pointing
// it there keeps bundlers from warning about a file that does not exist (and makes the default correct).
const glue = readFileSync(join(bindgenOut, 'replikit.js'), 'utf8');
const defaultUrl = "new URL('replikit_bg.wasm', import.meta.url)";
if (!glue.includes(defaultUrl)) throw new Error(`build: the wasm-bindgen glue no longer contains ${defaultUrl}`);
writeFileSync(join(dist, 'glue.js'), glue.replace(defaultUrl, "new URL('replikit.wasm', import.meta.url)"));
copyFileSync(join(bindgenOut, 'replikit.d.ts'), join(dist, 'glue.d.ts'));
for (const f of ['index.js', 'node.mjs', 'api.js', 'errors.js']) copyFileSync(join(root, 'js', f), join(dist, f));
copyFileSync(join(root, 'js', 'index.d.ts'), join(dist, 'index.d.ts'));
copyFileSync(join(root, 'js', 'index.d.ts'), join(dist, 'index.d.cts'));

// CommonJS for `require('replikit')` in Node: the ESM node entry bundled into one .cjs file.
console.log('build: esbuild dist/node.cjs');
await build({
  entryPoints: [join(dist, 'node.mjs')],
  outfile: join(dist, 'node.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  define: { 'import.meta.url': '__replikit_import_meta_url' },
  banner: { js: 'const __replikit_import_meta_url = require("url").pathToFileURL(__filename).href;' },
});

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(dist, 'BUILD'), `replikit ${pkg.version} ${debug ? 'debug' : 'release'}\n`);
console.log(`build: dist/ ready (replikit ${pkg.version})`);
