// CPU profiles of a short read run (concurrency 16), raw fetch vs replikit without cache, each in its own
// `node --cpu-prof` child process, summarized by self time: top functions and where time goes (wasm, glue.js,
// undici/fetch, GC, idle).
//
// As a child: node --cpu-prof bench/profile.mjs child <raw|replikit> <endpointsJson> <idsJson> <ms>, with
// `{"headers": {...}}` (the cluster's client headers, i.e. its gateway token) on stdin: never in argv.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === 'child') {
  const [, , , mode, endpointsJson, idsJson, durationMs, extraJson] = process.argv;
  const { runLoad, combine } = await import('./lib.mjs');
  let stdin = '';
  for await (const chunk of process.stdin) stdin += chunk;
  const { headers } = JSON.parse(stdin || '{}');
  if (mode.endsWith('-named')) {
    // The same Rust build before wasm-opt (target/bindgen, written by scripts/build.mjs), which keeps the
    // function names, loaded through its own wasm-bindgen glue: the profile then names Rust functions.
    const bindgen = join(dirname(self), '..', 'target', 'bindgen');
    const glue = await import(pathToFileURL(join(bindgen, 'replikit.js')).href);
    glue.initSync({ module: readFileSync(join(bindgen, 'replikit_bg.wasm')) });
    const { ReplikitError } = await import('../dist/errors.js');
    glue.__setErrorClass(ReplikitError);
    if (mode === 'read-named') {
      const [primary, ...replicas] = JSON.parse(endpointsJson);
      const ids = JSON.parse(idsJson);
      const db = await glue.createClient({ primary, replicas, headers, cache: { store: 'none' }, readPolicy: 'network-only' });
      const { waitForEndpointsUp, COLLECTION } = await import('./contenders.mjs');
      await waitForEndpointsUp(db);
      const c = db.collection(COLLECTION);
      const r = combine([await runLoad({ concurrency: 16, durationMs: Number(durationMs), warmupMs: 300, op: (_l, i) => c.get(ids[i % ids.length]) })]);
      await db.close();
      process.stdout.write(JSON.stringify({ p50: r.p50, opsPerSec: r.opsPerSec, errors: r.errors }));
    } else {
      // create-named: 100 KB documents through create (memory cache) against the in-process stub fetch.
      const { stubFetch, STUB, makeData } = await import('./boundary.mjs');
      const db = await glue.createClient({ primary: STUB, headers, fetch: stubFetch, cache: { store: 'memory' }, readPolicy: 'cache-first' });
      const { waitForEndpointsUp } = await import('./contenders.mjs');
      await waitForEndpointsUp(db);
      const c = db.collection('profile');
      const data = makeData(102400);
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < Number(durationMs)) await c.create(data, { id: `p${n++}` });
      const elapsed = (performance.now() - t0) / 1000;
      await db.close();
      process.stdout.write(JSON.stringify({ p50: (elapsed * 1000) / n, opsPerSec: n / elapsed, errors: 0 }));
    }
    process.exit(0);
  }
  const { rawReader, replikitReader } = await import('./contenders.mjs');
  const [primary, ...replicas] = JSON.parse(endpointsJson);
  const ids = JSON.parse(idsJson);
  const extra = extraJson ? JSON.parse(extraJson) : {};
  const c = mode === 'raw' ? rawReader({ replicas, headers, ids }) : await replikitReader({ primary, replicas, headers, ids, extra });
  const r = combine([await runLoad({ concurrency: 16, durationMs: Number(durationMs), warmupMs: 300, op: c.op })]);
  await c.close();
  process.stdout.write(JSON.stringify({ p50: r.p50, opsPerSec: r.opsPerSec, errors: r.errors }));
  process.exit(0);
}

function category(frame) {
  const { functionName: f, url } = frame;
  if (f === '(idle)') return 'idle (waiting on I/O)';
  if (f === '(garbage collector)') return 'GC';
  if (f === '(program)') return 'program (native, unattributed)';
  if (url.endsWith('.wasm') || /^wasm-function|^\$/.test(f) || url.startsWith('wasm://')) return 'replikit .wasm';
  if (url.includes('/dist/glue.js')) return 'replikit glue.js';
  if (url.includes('undici')) return 'undici (fetch)';
  if (url.includes('/bench/')) return 'bench harness';
  if (url.startsWith('node:') || url === '') return 'node internals / builtins';
  return 'other JS';
}

function summarizeProfile(file, top = 12) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
  }
  let total = 0;
  const fns = new Map();
  const cats = new Map();
  for (const [id, t] of selfUs) {
    const n = byId.get(id);
    const f = n.callFrame;
    total += t;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? basename(f.url) : ''}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + t);
    const c = category(f);
    cats.set(c, (cats.get(c) ?? 0) + t);
  }
  const sort = (m) => [...m].sort((a, b) => b[1] - a[1]);
  const busy = total - (cats.get('idle (waiting on I/O)') ?? 0);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    categories: sort(cats).map(([name, t]) => ({ name, ms: t / 1000, pct: (100 * t) / total })),
    top: sort(fns).filter(([k]) => !k.startsWith('(idle)')).slice(0, top).map(([name, t]) => ({ name, ms: t / 1000, pctBusy: (100 * t) / busy })),
  };
}

/**
 * Inclusive time (the function and everything it calls) of the functions whose name matches `filter`, as a
 * share of all sampled time; a recursive function is counted once per stack.
 */
function inclusive(file, filter, top = 25) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  let total = 0;
  for (const t of selfUs.values()) total += t;
  const idle = p.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + (selfUs.get(n.id) ?? 0), 0);
  const incl = new Map();
  const walk = (id, stack) => {
    const n = byId.get(id);
    const key = n.callFrame.functionName.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{16}\]/g, '');
    let t = selfUs.get(id) ?? 0;
    const first = !stack.has(key);
    const next = first ? new Set(stack).add(key) : stack;
    for (const c of n.children ?? []) t += walk(c, next);
    if (first) incl.set(key, (incl.get(key) ?? 0) + t);
    return t;
  };
  walk(p.nodes[0].id, new Set());
  const busy = total - idle;
  return {
    busyMs: busy / 1000,
    top: [...incl]
      .filter(([k]) => filter.test(k) && !/externref shim|^wasm-to-js/.test(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, t]) => ({ name, ms: t / 1000, pctBusy: (100 * t) / busy })),
  };
}

const INTERESTING = new RegExp(
  [
    '^replikit::', 'gloo_net::http::request::RequestBuilder::build', 'Request::new_with_str', 'serde_json::de::from_str',
    'js_sys::JSON::(parse|stringify)$', 'Value as core::fmt::Display>::fmt', 'as core::clone::Clone>::clone$',
    'drop_in_place<serde_json::value::Value>', 'dlmalloc.*::malloc$', '^_Request$', '^any$', '^fetch$',
  ].join('|'),
);

function run(mode, { endpoints, headers, ids, durationMs, extra }) {
  const dir = mkdtempSync(join(tmpdir(), 'replikit-bench-prof-'));
  try {
    const args = ['--cpu-prof', '--cpu-prof-dir', dir, self, 'child', mode, JSON.stringify(endpoints), JSON.stringify(ids), String(durationMs)];
    if (extra) args.push(JSON.stringify(extra));
    const out = execFileSync(process.execPath, args, { encoding: 'utf8', timeout: 60000, input: JSON.stringify({ headers }) });
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.cpuprofile')));
    return { run: JSON.parse(out), file, dir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Profiles `mode` ('raw' | 'replikit') for `durationMs`; returns the run's numbers and the profile summary. */
export function profile(mode, { endpoints, headers, ids, durationMs = 3000, extra }) {
  const r = run(mode, { endpoints, headers, ids, durationMs, extra });
  try {
    return { run: r.run, ...summarizeProfile(r.file) };
  } finally {
    rmSync(r.dir, { recursive: true, force: true });
  }
}

/** Profiles the named (pre-wasm-opt) build: 'read-named' (reads at concurrency 16) or 'create-named' (100 KB creates). */
export function profileNamed(mode, { endpoints = [], headers, ids = [], durationMs = 3000 } = {}) {
  const r = run(mode, { endpoints, headers, ids, durationMs });
  try {
    return { run: r.run, ...inclusive(r.file, INTERESTING) };
  } finally {
    rmSync(r.dir, { recursive: true, force: true });
  }
}
