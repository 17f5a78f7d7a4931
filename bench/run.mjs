// `npm run bench` (after the build steps): every benchmark of issue 7 part 1 in one run, against dev clusters on
// loopback, printed as tables and written to BENCHMARKS.md. Each section is independent: one that throws is
// recorded as an error in its place and the others go on. Every cluster and the browser are stopped at the end.
//
// Env: BENCH_CELL_MS (measured ms per round of a load cell, default 1500), BENCH_WARMUP_MS (default 300), BENCH_ROUNDS (default 3),
// BENCH_TRIALS (failover trials, default 10), BENCH_ONLY (comma list of sections), BENCH_OUT (default BENCHMARKS.md).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
process.env.REPLIKIT_SERVER_BIN ??= join(root, 'target', 'release', 'replikit-server');

// Other work may be rebuilding dist/ at this moment: wait for a complete build (BUILD is written last).
for (let i = 0; !['node.mjs', 'glue.js', 'replikit.wasm', 'BUILD'].every((f) => existsSync(join(root, 'dist', f))); i++) {
  if (i === 0) console.log('waiting for dist/ (node scripts/build.mjs) ...');
  if (i > 120) throw new Error('dist/ is incomplete: run `node scripts/build.mjs` first');
  await new Promise((r) => setTimeout(r, 1000));
}

const { startCluster } = await import('../tests/js/cluster.mjs');
const { createClient, version: replikitVersion } = await import('replikit');
const C = await import('./contenders.mjs');
const { runLoad, combine, timeSequential, table, ms, us, int, ratio, sleep } = await import('./lib.mjs');
const { browserCacheHits } = await import('./browser.mjs');
const { failoverTrials } = await import('./failover.mjs');
const { boundary } = await import('./boundary.mjs');
const { profile, profileNamed } = await import('./profile.mjs');

const CELL_MS = Number(process.env.BENCH_CELL_MS ?? 1500);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 10);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const OUT = process.env.BENCH_OUT ?? join(root, 'BENCHMARKS.md');
const CONCURRENCY = [1, 16, 64];
const GOAL_P50 = 1.1;
const GOAL_TPUT = 0.9;
const N_IDS = 64;

const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
const log = (...a) => console.log(`[${elapsed()}]`, ...a);
const results = {};
const errors = {};
const clusters = new Set();

async function section(name, fn) {
  if (ONLY && !ONLY.has(name)) return;
  log(`== ${name}`);
  const start = performance.now();
  try {
    results[name] = await fn();
  } catch (e) {
    errors[name] = e?.stack ?? String(e);
    log(`!! ${name} failed: ${e?.message ?? e}`);
  }
  log(`== ${name} done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
}

async function withCluster(args, fn) {
  const cluster = await startCluster(args);
  clusters.add(cluster);
  try {
    return await fn(cluster);
  } finally {
    await cluster.stop();
    clusters.delete(cluster);
  }
}

// ------------------------------------------------------------------------------------ environment

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unavailable';
  }
}

function environment() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const osRelease = existsSync('/etc/os-release') ? /PRETTY_NAME="?([^"\n]*)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] : null;
  return {
    date: new Date().toISOString(),
    nproc: sh('nproc', []),
    cpu: model,
    memGiB: (totalmem() / 2 ** 30).toFixed(1),
    os: `${osRelease ?? 'unknown'} (${sh('uname', ['-sr'])})`,
    loadavg: loadavg().map((x) => x.toFixed(2)).join(' '),
    node: process.version,
    rustc: sh('rustc', ['--version']),
    replikit: replikitVersion(),
    dist: existsSync(join(root, 'dist', 'BUILD')) ? readFileSync(join(root, 'dist', 'BUILD'), 'utf8').trim() : 'unknown',
    postgres: sh('/usr/lib/postgresql/15/bin/postgres', ['--version']),
    server: sh(process.env.REPLIKIT_SERVER_BIN, ['--version']),
    cockatiel: JSON.parse(readFileSync(join(root, 'node_modules', 'cockatiel', 'package.json'), 'utf8')).version,
    playwright: JSON.parse(readFileSync(join(root, 'node_modules', 'playwright-core', 'package.json'), 'utf8')).version,
  };
}

// ----------------------------------------------------------------------------------------- sections

const ids = Array.from({ length: N_IDS }, (_, i) => `r${i}`);

// Every gateway request carries the cluster's token: `cluster.headers` (the client option) goes to every contender
// and client alike, `cluster.fetch` adds it to the harness's own fetches.

/** Creates the read documents on the primary and waits until every replica has them. */
async function seed(cluster) {
  const [primary, ...replicas] = cluster.endpoints;
  for (const id of ids) {
    const r = await cluster.fetch(`${primary}/v1/c/${C.COLLECTION}/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: { id, title: `document ${id}`, tags: ['bench', 'read'], n: Number(id.slice(1)), text: 'lorem ipsum '.repeat(15) } }),
    });
    if (!r.ok) throw new Error(`seed ${id}: HTTP ${r.status}`);
  }
  for (const url of replicas) {
    for (let i = 0; ; i++) {
      const r = await cluster.fetch(`${url}/v1/c/${C.COLLECTION}/${ids.at(-1)}`);
      await r.arrayBuffer();
      if (r.status === 200) break;
      if (i > 200) throw new Error(`replica ${url} never got the seeded documents`);
      await sleep(20);
    }
  }
}

/**
 * Every contender at every concurrency, in ROUNDS interleaved rounds (odd rounds in reverse order) so that drift
 * in the machine's load hits every contender alike; samples and ops of the rounds are pooled.
 */
async function loadTable(contenders, concurrencies = CONCURRENCY) {
  const rows = [];
  for (const concurrency of concurrencies) {
    const rounds = contenders.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      const order = contenders.map((_, i) => i);
      if (round % 2) order.reverse();
      for (const i of order) rounds[i].push(await runLoad({ concurrency, durationMs: CELL_MS, warmupMs: WARMUP_MS, op: contenders[i].op }));
    }
    contenders.forEach((c, i) => {
      const r = combine(rounds[i]);
      rows.push({ contender: c.name, ...r });
      log(`  ${c.name.padEnd(34)} c=${String(concurrency).padStart(2)} p50 ${ms(r.p50)} ms p99 ${ms(r.p99)} ms ${int(r.opsPerSec)} ops/s (rounds ${r.roundOpsPerSec.map(int).join(', ')})${r.errors ? ` errors ${r.errors} (${r.firstError})` : ''}`);
    });
  }
  return rows;
}

async function reads(cluster) {
  const [primary, ...replicas] = cluster.endpoints;
  const { headers } = cluster;
  const contenders = [
    C.rawReader({ replicas, headers, ids }),
    C.peerReader({ replicas, headers, ids }),
    await C.replikitReader({ primary, replicas, headers, ids }),
    await C.replikitReader({ primary, replicas, headers, ids, cached: true }),
  ];
  try {
    return await loadTable(contenders);
  } finally {
    for (const c of contenders) await c.close();
  }
}

async function writes(cluster) {
  const [primary, ...replicas] = cluster.endpoints;
  const { headers } = cluster;
  const contenders = [C.rawWriter({ primary, headers }), C.rawWriter({ primary, headers, withKey: true }), C.peerWriter({ primary, headers }), await C.replikitWriter({ primary, replicas, headers })];
  try {
    return await loadTable(contenders);
  } finally {
    for (const c of contenders) await c.close();
  }
}

async function nodeCacheHits(cluster) {
  const [primary, ...replicas] = cluster.endpoints;
  const c = await C.replikitReader({ primary, replicas, headers: cluster.headers, ids, cached: true });
  try {
    const n = 20000;
    await timeSequential(2000, (i) => c.op(0, i));
    const r = await timeSequential(n, (i) => c.op(0, i));
    let sink = 0;
    const text = JSON.stringify(await c.op(0, 0));
    const parse = await timeSequential(n, () => {
      sink += JSON.parse(text).version;
    });
    return { replikit: r, jsonParse: parse, docBytes: text.length, sink };
  } finally {
    await c.close();
  }
}

/**
 * The browser's page is served from a local origin known only once its server listens: this section has its own
 * cluster (sync, seeded like the shared one) started with `--cors-origin` that origin, as a web app's would be.
 */
async function browser() {
  return browserCacheHits({
    ids,
    n: 2000,
    withCluster: (origin, fn) =>
      withCluster(['--cors-origin', origin], async (cluster) => {
        log(`browser cluster up (CORS for ${origin}): ${cluster.endpoints.join(' ')}`);
        await seed(cluster);
        return fn(cluster);
      }),
  });
}

async function profiles(cluster) {
  const durationMs = 3000;
  const out = {
    raw: profile('raw', { endpoints: cluster.endpoints, headers: cluster.headers, ids, durationMs }),
    replikit: profile('replikit', { endpoints: cluster.endpoints, headers: cluster.headers, ids, durationMs }),
  };
  for (const mode of ['read-named', 'create-named']) {
    try {
      out[mode] = profileNamed(mode, { endpoints: cluster.endpoints, headers: cluster.headers, ids, durationMs });
    } catch (e) {
      out[mode] = { error: e?.stack ?? String(e) };
    }
  }
  return out;
}

/** Diagnostic variants of (c) at concurrency 16, to see what its overhead depends on. */
async function variants(cluster) {
  const [primary, ...replicas] = cluster.endpoints;
  const { headers } = cluster;
  const list = [
    ['(a) raw fetch', null],
    ['(c) replikit no cache, defaults', {}],
    ['(c) with health.intervalMs 60000', { health: { intervalMs: 60000 } }],
    ['(c) with consistency eventual', { consistency: 'eventual' }],
    ['(c) with readPreference nearest', { readPreference: 'nearest' }],
  ];
  const contenders = [];
  try {
    for (const [name, extra] of list) {
      const c = extra ? await C.replikitReader({ primary, replicas, headers, ids, extra }) : C.rawReader({ replicas, headers, ids });
      contenders.push({ ...c, name });
    }
    return await loadTable(contenders, [16]);
  } finally {
    for (const c of contenders) await c.close();
  }
}

function size() {
  const dist = join(root, 'dist');
  const files = readdirSync(dist).filter((f) => /\.(wasm|js|mjs|cjs)$/.test(f)).sort();
  const rows = files.map((f) => {
    const bytes = readFileSync(join(dist, f));
    return { file: f, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
  const browserFiles = ['replikit.wasm', 'glue.js', 'api.js', 'errors.js', 'index.js'];
  const b = rows.filter((r) => browserFiles.includes(r.file));
  rows.push({ file: 'browser total', raw: b.reduce((a, r) => a + r.raw, 0), gzip: b.reduce((a, r) => a + r.gzip, 0) });
  return rows;
}

// ------------------------------------------------------------------------------------------- report

const ratio3 = (x) => (Number.isFinite(x) ? `${x.toFixed(3)}×` : '—');
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const goalMark = (ok) => (ok ? 'yes' : '**no**');

function loadSection(rows, { goal = true } = {}) {
  const out = [];
  out.push(table(['contender', 'conc.', 'p50 ms', 'p99 ms', 'ops/s', 'ops/s per round', 'errors'], rows.map((r) => [r.contender, r.concurrency, ms(r.p50), ms(r.p99), int(r.opsPerSec), r.roundOpsPerSec.map(int).join(' / '), r.errors])));
  const ratios = [];
  for (const conc of CONCURRENCY) {
    const raw = rows.find((r) => r.concurrency === conc && r.contender.startsWith('(a) '));
    for (const r of rows.filter((x) => x.concurrency === conc && !x.contender.startsWith('(a) '))) {
      const p = r.p50 / raw.p50;
      const t = r.opsPerSec / raw.opsPerSec;
      const isReplikit = r.contender.includes('replikit');
      ratios.push([r.contender, conc, ratio3(p), ratio3(t), goal && isReplikit ? goalMark(p <= GOAL_P50) : '', goal && isReplikit ? goalMark(t >= GOAL_TPUT) : '']);
    }
  }
  out.push('');
  out.push(`Ratios to (a) raw fetch at the same concurrency (goal for replikit: p50 ≤ ${GOAL_P50.toFixed(2)}×, throughput ≥ ${GOAL_TPUT.toFixed(2)}×):`);
  out.push('');
  out.push(table(['contender / raw', 'conc.', 'p50 ratio', 'ops/s ratio', 'p50 goal met', 'ops/s goal met'], ratios));
  return out.join('\n');
}

function goalMisses() {
  const misses = [];
  const check = (label, rows) => {
    if (!rows) return;
    for (const conc of CONCURRENCY) {
      const raw = rows.find((r) => r.concurrency === conc && r.contender.startsWith('(a) '));
      for (const r of rows.filter((x) => x.concurrency === conc && x.contender.includes('replikit'))) {
        const p = r.p50 / raw.p50;
        const t = r.opsPerSec / raw.opsPerSec;
        if (p > GOAL_P50 || t < GOAL_TPUT) misses.push(`${label}, ${r.contender}, concurrency ${conc}: p50 ${ratio3(p)} (${ms(r.p50)} vs ${ms(raw.p50)} ms), throughput ${ratio3(t)} (${int(r.opsPerSec)} vs ${int(raw.opsPerSec)} ops/s)`);
      }
    }
  };
  check('reads', results.reads);
  check('writes (sync replication)', results['writes-sync']);
  check('writes (async replication)', results['writes-async']);
  return misses;
}

function report(env, totalSeconds) {
  const md = [];
  const err = (name) => (errors[name] ? `\n**This section failed:**\n\n\`\`\`\n${errors[name]}\n\`\`\`\n` : '');
  const skipped = (name) => !results[name] && !errors[name];
  md.push('# Replikit benchmarks');
  md.push('');
  md.push(`Generated by \`npm run bench\` on ${env.date} in ${totalSeconds.toFixed(0)} s. Do not edit by hand: run it again.`);
  md.push('');
  md.push('## Machine, versions, command');
  md.push('');
  md.push(`- machine: ${env.nproc} CPUs (\`nproc\`), ${env.cpu}, ${env.memGiB} GiB RAM, ${env.os}; load average at start ${env.loadavg}`);
  md.push(`- versions: Node ${env.node}; ${env.rustc}; replikit ${env.replikit} (${env.dist}); ${env.postgres}; ${env.server}; cockatiel ${env.cockatiel}; playwright-core ${env.playwright}${results.browser ? `; Chromium ${results.browser.version}` : ''}`);
  md.push('- command: `npm run bench`, i.e. `bash scripts/bootstrap.sh test && node scripts/build.mjs && cargo build -p replikit-server --release --quiet && node bench/run.mjs`');
  md.push(`- settings: each load cell is ${ROUNDS} interleaved rounds (odd rounds in reverse contender order, so drift in the machine's load hits every contender alike) of ${CELL_MS} ms measured after ${WARMUP_MS} ms of warm-up (discarded), samples pooled; N async loops issuing requests back to back; latency per op by \`performance.now()\`; p50/p99 nearest-rank; throughput = successful ops / measured seconds.`);
  md.push('- clusters: `replikit-server dev-cluster` (release build) with 1 primary + 2 replicas on 127.0.0.1, PostgreSQL 15 (`fsync = off`, data in /dev/shm), `--replication sync` (quorum ANY 1 of the standbys) unless said otherwise; client, gateways and PostgreSQL all share this machine\'s CPUs.');
  md.push('- credentials: the gateways require the cluster\'s generated token, so every request of every contender carries the same `Authorization: Bearer <token>` header (raw and cockatiel fetches as a fetch header, replikit through its `headers` option) and every gateway checks it alike.');
  md.push('- **Noise:** the machine is shared with other work and the load generator competes with the servers for 2 cores, so absolute numbers move from run to run. Compare contenders by the ratios measured in the same run, cell by cell, not across runs.');
  md.push('');

  md.push('## Reads');
  md.push('');
  md.push(`All read contenders read the same ${N_IDS} pre-created documents (~300 bytes of data each), cycling through the ids, from the same two replica gateways. (a) \`fetch(url, {headers}).then(r => r.json())\` round-robin over the replicas; (b) the same inside cockatiel \`wrap(retry(handleAll, {maxAttempts: 3, ExponentialBackoff}), circuitBreaker(handleAll, {halfOpenAfter: 1000, ConsecutiveBreaker(5)}))\`; (c) \`createClient({primary, replicas, headers, cache: {store: 'none'}, readPolicy: 'network-only'})\` and \`get(id)\` (readPreference replicaPreferred, consistency session: the defaults); (d) the same client with \`cache: {store: 'memory'}\`, \`readPolicy: 'cache-first'\`, after one warming read of every id.`);
  md.push('');
  md.push(results.reads ? loadSection(results.reads) : '');
  md.push(err('reads'));

  md.push('## Writes');
  md.push('');
  md.push('Each of the N loops replaces its own document (`PUT /v1/c/benchw/w{loop}`, ~130 bytes of data) on the primary. (a) raw `fetch` PUT without an idempotency key; (a′) the same with an `Idempotency-Key` (the gateway then also stores the response in the same transaction); (b) cockatiel as for reads, fixed primary, one `Idempotency-Key` per logical write kept across retries (a retried write without one is not safe); (c) `createClient({primary, replicas, headers, cache: {store: \'none\'}})` and `replace(id, data)`, default durability `quorum` (the client always sends an `Idempotency-Key`). The goal ratios compare (c) with (a); (c)/(a′) is the like-for-like comparison of the client itself.');
  for (const [key, title] of [['writes-sync', '### Sync replication (`--replication sync`, durability quorum)'], ['writes-async', '### Async replication (`--replication async`)']]) {
    md.push('');
    md.push(title);
    md.push('');
    if (results[key]) {
      md.push(loadSection(results[key]));
      const rows = results[key];
      const like = CONCURRENCY.map((conc) => {
        const a = rows.find((r) => r.concurrency === conc && r.contender.startsWith('(a′)'));
        const c = rows.find((r) => r.concurrency === conc && r.contender.includes('replikit'));
        return ['(c) replikit / (a′) raw + key', conc, ratio(c.p50 / a.p50), ratio(c.opsPerSec / a.opsPerSec)];
      });
      md.push('');
      md.push(table(['like for like', 'conc.', 'p50 ratio', 'ops/s ratio'], like));
    }
    md.push(err(key));
  }

  md.push('## Cache hits');
  md.push('');
  md.push('Sequential `get(id)` with `readPolicy: \'cache-first\'` after warming, one at a time, per-op time.');
  md.push('');
  const hitRows = [];
  const nh = results['cache-node'];
  if (nh) {
    hitRows.push(['Node', 'replikit memory store', nh.replikit.n, us(nh.replikit.p50), us(nh.replikit.p99), us(nh.replikit.wallMean)]);
    hitRows.push(['Node', `JSON.parse of the ${nh.docBytes}-byte document (reference)`, nh.jsonParse.n, us(nh.jsonParse.p50), us(nh.jsonParse.p99), us(nh.jsonParse.wallMean)]);
  }
  const b = results.browser;
  if (b) {
    hitRows.push([`Chromium`, `replikit IndexedDB store (effective store: ${b.indexeddb.store})`, b.indexeddb.n, us(b.indexeddb.p50), us(b.indexeddb.p99), us(b.indexeddb.wallMean)]);
    hitRows.push([`Chromium`, 'replikit memory store', b.memory.n, us(b.memory.p50), us(b.memory.p99), us(b.memory.wallMean)]);
    hitRows.push([`Chromium`, 'raw IndexedDB: one readonly transaction + get (reference)', b.rawIndexedDb.n, us(b.rawIndexedDb.p50), us(b.rawIndexedDb.p99), us(b.rawIndexedDb.wallMean)]);
  }
  if (hitRows.length) md.push(table(['where', 'what', 'ops', 'p50 µs', 'p99 µs', 'mean µs (wall / ops)'], hitRows));
  if (b) {
    md.push('');
    md.push(`Headless Chromium ${b.version} (Debian's, through playwright-core), page served from 127.0.0.1 (its own sync cluster, started with \`--cors-origin\` the page's origin; the token given to the page by the harness, not in any URL or argv), crossOriginIsolated=${b.crossOriginIsolated} (timer resolution ${b.crossOriginIsolated ? '5 µs' : '100 µs'}); page errors: ${b.pageErrors.length ? b.pageErrors.join('; ') : 'none'}.`);
  }
  md.push(err('cache-node'));
  md.push(err('browser'));

  md.push('## Failover');
  md.push('');
  md.push(`${TRIALS} trials on one sync cluster. A client (\`health: {intervalMs: 250, timeoutMs: 500}, requestTimeoutMs: 1500\`, no cache, network-only) runs a sequential reader loop through every trial. Each trial: \`GET /admin/status\` → \`kill\` the primary → \`promote\` the next node (its answer's \`tookMs\` is the server's promote time) → from the promote answer, the time until the client's first successful \`replace\` (the client's own detection; writes issued while no primary is known wait for one, up to primaryWaitMs) → \`rejoin\` the killed node and wait until every gateway is up, every PostgreSQL running, every replica streaming on the new term and the client sees them all up.`);
  md.push('');
  const fo = results.failover;
  if (fo) {
    md.push(table(['trial', 'killed', 'promoted', 'promote (server) ms', 'detection (client) ms', 'kill → first write ms', 'write errors', 'reads', 'failed reads', 'rejoin + healthy ms'], fo.rows.map((r) => [r.trial, r.killed, r.promoted, r.promoteMs, ms(r.detectMs, 1), ms(r.killToWriteMs, 1), r.writeErrors, r.reads, r.failedReads, int(r.rejoinMs)])));
    const sorted = (k) => fo.rows.map((r) => r[k]).sort((x, y) => x - y);
    const p50 = (a) => a[Math.ceil(a.length / 2) - 1];
    const sumFailed = fo.rows.reduce((a, r) => a + r.failedReads, 0);
    md.push('');
    md.push(table(['', 'p50 ms', 'max ms'], [
      ['server promote time (`tookMs`)', ms(p50(sorted('promoteMs')), 0), ms(Math.max(...sorted('promoteMs')), 0)],
      ['client detection (promote answer → first successful write)', ms(p50(sorted('detectMs')), 1), ms(Math.max(...sorted('detectMs')), 1)],
      ['kill → first successful write', ms(p50(sorted('killToWriteMs')), 1), ms(Math.max(...sorted('killToWriteMs')), 1)],
    ]));
    md.push('');
    const slow = fo.rows.filter((r) => r.detectMs > 200);
    if (slow.length) {
      md.push('');
      md.push(`Client events (times relative to the promote answer; negative = between kill and promote answer) in the trials where detection took over 200 ms:`);
      md.push('');
      for (const r of slow) md.push(`- trial ${r.trial} (${ms(r.detectMs, 0)} ms): ${r.timeline.length ? r.timeline.join('; ') : 'no client events'}`);
    }
    md.push('');
    md.push(`Failed reads over all trials: **${sumFailed}** (goal: 0) — ${sumFailed === 0 ? 'met' : '**not met**'}.${fo.readErrors.length ? ` First read errors: ${fo.readErrors.join('; ')}` : ''}`);
    if (fo.rows.length < TRIALS) md.push(`\nOnly ${fo.rows.length} of ${TRIALS} trials completed.`);
  }
  md.push(err('failover'));

  md.push('## The JS↔wasm boundary');
  md.push('');
  md.push('Documents whose `data` is exactly 1,024 / 102,400 / 1,000,000 bytes of JSON (records of mixed fields; the gateway refuses bodies over 1 MiB). Per-op p50 in ms, sequential. "JSON" = `JSON.stringify({id, data})` + `JSON.parse` of the document text, the least any JS client does. "stub" columns use an in-process `fetch` (the public `fetch` option) that answers like a primary without a network, so they measure the SDK itself: plain JS (`fetch(..., {body: JSON.stringify(...)}).then(r => r.json())`) vs `create`. `get` is a memory-cache hit of that document (cache-first). The last two columns are the same create on the real cluster (sync, quorum): raw fetch POST vs replikit.');
  md.push('');
  const bd = results.boundary;
  if (bd) {
    md.push(table(
      ['data bytes', 'ops', 'JSON ms', 'JSON.parse ms', 'stub plain JS ms', 'stub replikit create ms', 'create / JSON', 'create / plain', 'replikit get (hit) ms', 'get / JSON.parse', 'cluster raw POST ms', 'cluster replikit create ms', 'cluster ratio'],
      bd.map((r) => [int(r.bytes), r.n, ms(r.json.p50, 3), ms(r.parseOnly.p50, 3), ms(r.plain.p50, 3), ms(r.create.p50, 3), ratio(r.create.p50 / r.json.p50), ratio(r.create.p50 / r.plain.p50), ms(r.get.p50, 3), ratio(r.get.p50 / r.parseOnly.p50), ms(r.rawNet.p50, 2), ms(r.replikitNet.p50, 2), ratio(r.replikitNet.p50 / r.rawNet.p50)]),
    ));
  }
  md.push(err('boundary'));

  md.push('## Size');
  md.push('');
  if (results.size) {
    md.push(table(['file', 'raw bytes', 'gzip -9 bytes', 'raw', 'gzip'], results.size.map((r) => [r.file, int(r.raw), int(r.gzip), kb(r.raw), kb(r.gzip)])));
    const w = results.size.find((r) => r.file === 'replikit.wasm');
    md.push('');
    md.push(`The .wasm is ${kb(w.gzip)} gzip against the 100 KB goal (see README "Size"). "browser total" = replikit.wasm + glue.js + api.js + errors.js + index.js.`);
  }
  md.push(err('size'));

  md.push('## Where the time goes: profiles and variants');
  md.push('');
  const pr = results.profile;
  if (pr) {
    md.push('`node --cpu-prof` of a 3 s read run at concurrency 16 against the sync cluster, each contender in its own process (self time; "idle" is the event loop waiting on I/O):');
    md.push('');
    const cats = new Set([...pr.raw.categories, ...pr.replikit.categories].map((c) => c.name));
    const cat = (p, name) => p.categories.find((c) => c.name === name);
    md.push(table(['where', '(a) raw ms', '(a) raw %', '(c) replikit ms', '(c) replikit %'], [...cats].map((name) => [name, ms(cat(pr.raw, name)?.ms ?? 0, 0), ms(cat(pr.raw, name)?.pct ?? 0, 1), ms(cat(pr.replikit, name)?.ms ?? 0, 0), ms(cat(pr.replikit, name)?.pct ?? 0, 1)])));
    md.push('');
    md.push(`In those runs: raw ${int(pr.raw.run.opsPerSec)} ops/s (p50 ${ms(pr.raw.run.p50)} ms), replikit ${int(pr.replikit.run.opsPerSec)} ops/s (p50 ${ms(pr.replikit.run.p50)} ms); busy CPU per op: raw ${us((pr.raw.busyMs) / (pr.raw.run.opsPerSec * 3))} µs, replikit ${us((pr.replikit.busyMs) / (pr.replikit.run.opsPerSec * 3))} µs (approximate: busy time / ops of the 3 s window).`);
    md.push('');
    md.push('Top self-time functions of the replikit run (share of busy time):');
    md.push('');
    md.push(table(['function', 'self ms', '% of busy'], pr.replikit.top.map((f) => [`\`${f.name}\``, ms(f.ms, 0), ms(f.pctBusy, 1)])));
    md.push('');
    md.push('Top self-time functions of the raw run:');
    md.push('');
    md.push(table(['function', 'self ms', '% of busy'], pr.raw.top.map((f) => [`\`${f.name}\``, ms(f.ms, 0), ms(f.pctBusy, 1)])));
    const named = [
      ['read-named', 'reads at concurrency 16 (no cache, network-only), as above'],
      ['create-named', '`create` of 100 KB documents with the memory cache, against the in-process stub fetch (no network)'],
    ];
    for (const [key, what] of named) {
      const n = pr[key];
      if (!n) continue;
      md.push('');
      md.push(`With Rust function names (the same build before \`wasm-opt\`, \`target/bindgen/replikit_bg.wasm\`, loaded through its own glue): ${what}. Inclusive time (the function and all it calls) as a share of busy CPU time${n.run ? `; ${int(n.run.opsPerSec)} ops/s in that run` : ''}:`);
      md.push('');
      if (n.error) md.push(`\`\`\`\n${n.error}\n\`\`\``);
      else md.push(table(['function (inclusive)', 'ms', '% of busy'], n.top.map((f) => [`\`${f.name.replace(/\|/g, '\\|')}\``, ms(f.ms, 0), ms(f.pctBusy, 1)])));
    }
  }
  md.push(err('profile'));
  if (results.variants) {
    md.push('');
    md.push(`Variants of (c) at concurrency 16, interleaved in ${ROUNDS} rounds like the tables above (each variant is one option changed from the defaults):`);
    md.push('');
    const raw = results.variants[0];
    md.push(table(['contender', 'p50 ms', 'p99 ms', 'ops/s', 'p50 / raw', 'ops/s / raw'], results.variants.map((r) => [r.contender, ms(r.p50), ms(r.p99), int(r.opsPerSec), ratio(r.p50 / raw.p50), ratio(r.opsPerSec / raw.opsPerSec)])));
  }
  md.push(err('variants'));

  md.push('');
  md.push('## Findings');
  md.push('');
  const misses = goalMisses();
  md.push(misses.length ? 'Where replikit missed its goal in this run:\n\n' + misses.map((m) => `- ${m}`).join('\n') : 'Replikit met its p50 and throughput goals in every read and write cell of this run.');
  const notes = join(here, 'FINDINGS.md');
  if (existsSync(notes)) {
    md.push('');
    md.push(readFileSync(notes, 'utf8').trim());
  }
  if (errors.run) md.push(`\n**The run itself failed:**\n\n\`\`\`\n${errors.run}\n\`\`\`\n`);
  const failed = Object.keys(errors);
  if (failed.length) {
    md.push('');
    md.push(`Sections that failed in this run: ${failed.join(', ')} (errors above, in place).`);
  }
  md.push('');
  return md.join('\n');
}

// --------------------------------------------------------------------------------------------- main

// BENCH_REPORT_FROM=<json>: only re-render BENCHMARKS.md from a previous run's saved results (e.g. after
// editing bench/FINDINGS.md); nothing is measured.
const replay = process.env.BENCH_REPORT_FROM ? JSON.parse(readFileSync(process.env.BENCH_REPORT_FROM, 'utf8')) : null;
const env = replay?.env ?? environment();
let exitCode = 0;
if (replay) {
  Object.assign(results, replay.results);
  Object.assign(errors, replay.errors);
} else {
log(`replikit ${env.replikit}, ${env.node}, ${env.nproc} CPUs ${env.cpu}, load ${env.loadavg}`);
try {
  await section('size', async () => size());
  const needSync = !ONLY || ['reads', 'writes-sync', 'cache-node', 'boundary', 'profile', 'variants', 'failover'].some((s) => ONLY.has(s));
  if (needSync) {
    await withCluster([], async (cluster) => {
      log(`sync cluster up: ${cluster.endpoints.join(' ')}`);
      await seed(cluster);
      await section('reads', () => reads(cluster));
      await section('writes-sync', () => writes(cluster));
      await section('cache-node', () => nodeCacheHits(cluster));
      await section('boundary', () => boundary({ cluster, log }));
      await section('profile', () => profiles(cluster));
      await section('variants', () => variants(cluster));
      await section('failover', () => failoverTrials({ cluster, trials: TRIALS, log }));
    });
  }
  await section('browser', () => browser());
  if (!ONLY || ONLY.has('writes-async')) {
    await withCluster(['--replication', 'async'], async (cluster) => {
      log(`async cluster up: ${cluster.endpoints.join(' ')}`);
      await section('writes-async', () => writes(cluster));
    });
  }
} catch (e) {
  exitCode = 1;
  console.error(e);
  errors.run = e?.stack ?? String(e);
} finally {
  for (const c of clusters) await c.stop().catch(() => {});
}
}

const totalSeconds = replay?.totalSeconds ?? (performance.now() - t0) / 1000;
if (!replay) {
  const saved = join(tmpdir(), 'replikit-bench-results.json');
  writeFileSync(saved, JSON.stringify({ env, results, errors, totalSeconds }));
  log(`results saved to ${saved} (re-render with BENCH_REPORT_FROM=${saved} node bench/run.mjs)`);
}
const md = report(env, totalSeconds);
writeFileSync(OUT, md);
console.log('\n' + md);
log(`wrote ${OUT} in ${totalSeconds.toFixed(0)} s total`);
// A section that failed fails the command (missed performance goals do not: they are reported).
if (Object.keys(errors).length) exitCode = 1;
process.exit(exitCode);
