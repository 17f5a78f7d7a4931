// Failover from Node, end to end: a reader and a writer run flat out while the primary is killed (t = 3 s) and a
// replica is promoted (t = 4 s) through the dev cluster's admin API. One line per second, then a check of every
// acknowledged write on the new primary. Exit code 0 only with no failed read and no lost write.
//
//   npm run example:failover                       starts its own dev cluster (target/debug/replikit-server)
//   REPLIKIT_CLUSTER="$(cat <state file>)" ...     uses a running one (e.g. from `npm start`): its state file holds
//                                                   the endpoints, the gateways' token and the admin token
//   REPLIKIT_EXAMPLE_SECONDS=8                       how long to run (default 12)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from 'replikit';

const seconds = Number(process.env.REPLIKIT_EXAMPLE_SECONDS ?? 12);
const KILL_AT_MS = 3000;
const PROMOTE_AT_MS = 4000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cluster = process.env.REPLIKIT_CLUSTER
  ? { ...JSON.parse(process.env.REPLIKIT_CLUSTER), stop: async () => {} }
  : await startCluster();
const nodeOf = (url) => cluster.nodes.find((n) => n.url === url)?.nodeId ?? url;

async function admin(path, body) {
  const r = await fetch(cluster.adminUrl + path, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${cluster.adminToken}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`admin ${path}: ${json.error?.message ?? r.status}`);
  return json;
}

const db = await createClient({
  endpoints: cluster.nodes.map((n, i) => ({ url: n.url, role: i === 0 ? 'primary' : 'replica' })),
  headers: { authorization: `Bearer ${cluster.gatewayToken}` }, // every gateway of the dev cluster requires it
  health: { intervalMs: 250, timeoutMs: 500 },
  requestTimeoutMs: 1500,
});
db.on('primary', ({ url, term }) => console.log(`  [event] writes now go to ${url ? nodeOf(url) : 'nobody'} (term ${term})`));
const docs = db.collection('failover');

const total = { reads: { ok: 0, failed: 0 }, writes: { ok: 0, failed: 0 } };
let second = { reads: { ok: 0, failed: 0 }, writes: { ok: 0, failed: 0 }, readMs: [], writeMs: [] };
const acked = new Map(); // id -> { version, n }: what the cluster acknowledged
const errors = new Map(); // error code -> count
const started = Date.now();
const running = () => Date.now() - started < seconds * 1000;

async function timed(kind, op) {
  const t0 = performance.now();
  try {
    const result = await op();
    second[`${kind}Ms`].push(performance.now() - t0);
    second[`${kind}s`].ok++;
    total[`${kind}s`].ok++;
    return result;
  } catch (e) {
    second[`${kind}s`].failed++;
    total[`${kind}s`].failed++;
    errors.set(`${kind} ${e.code ?? e.message}`, (errors.get(`${kind} ${e.code ?? e.message}`) ?? 0) + 1);
    return undefined;
  }
}

async function writer() {
  for (let n = 0; running(); n++) {
    const ids = [...acked.keys()];
    if (n % 3 === 2 && ids.length) {
      const id = ids[Math.floor(Math.random() * ids.length)];
      const doc = await timed('write', () => docs.update(id, { n }));
      if (doc) acked.set(id, { version: doc.version, n });
      else acked.delete(id); // unknown outcome (it may have applied): no longer a fair check
    } else {
      const doc = await timed('write', () => docs.create({ n }));
      if (doc) acked.set(doc.id, { version: doc.version, n });
    }
    await sleep(10);
  }
}

async function reader() {
  while (running()) {
    const ids = [...acked.keys()];
    if (ids.length) {
      const id = ids[Math.max(0, ids.length - 1 - Math.floor(Math.random() * 20))];
      await timed('read', async () => {
        const doc = await docs.get(id);
        if (!doc) throw Object.assign(new Error(`read ${id}: missing`), { code: 'missing' });
        return doc;
      });
    }
    await sleep(5);
  }
}

async function operator() {
  await sleep(KILL_AT_MS - (Date.now() - started));
  const before = await admin('/admin/status');
  console.log(`  [operator] t=${elapsed()}s kill ${before.primary} (the primary)`);
  await admin(`/admin/nodes/${before.primary}/kill`, {});
  await sleep(PROMOTE_AT_MS - (Date.now() - started));
  // Promote the most advanced running replica (ties go to the first), as an operator (or Patroni) would.
  const { nodes } = await admin('/admin/status');
  const candidates = nodes.filter((n) => n.role === 'replica' && n.postgres === 'running');
  if (!candidates.length) throw new Error('no running replica to promote');
  const target = candidates.reduce((best, n) => ((n.position ?? 0) > (best.position ?? 0) ? n : best));
  const r = await admin(`/admin/nodes/${target.nodeId}/promote`, {});
  console.log(`  [operator] t=${elapsed()}s promoted ${target.nodeId} in ${r.tookMs} ms`);
  return target.nodeId;
}

const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
const p50 = (xs) => (xs.length ? xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(1) : '-');
const primaryNow = () => {
  const p = db.topology().find((e) => e.primary);
  return p ? nodeOf(p.url) : 'none';
};

const ticker = setInterval(() => {
  const s = second;
  second = { reads: { ok: 0, failed: 0 }, writes: { ok: 0, failed: 0 }, readMs: [], writeMs: [] };
  console.log(
    `t=${Math.round((Date.now() - started) / 1000)}s reads ok=${s.reads.ok} failed=${s.reads.failed} ` +
      `writes ok=${s.writes.ok} failed=${s.writes.failed} primary=${primaryNow()} ` +
      `p50 read=${p50(s.readMs)}ms write=${p50(s.writeMs)}ms`,
  );
}, 1000);

console.log(`failover example: ${seconds} s against ${cluster.endpoints.join(' ')}; kill the primary at 3 s, promote at 4 s`);
const [promoted] = await Promise.all([operator(), writer(), reader()]);
clearInterval(ticker);

// Every acknowledged write must be on the new primary, at (at least) the acknowledged version.
let lost = 0;
const pendingChecks = [...acked];
await Promise.all(Array.from({ length: 8 }, async () => {
  for (let next = pendingChecks.pop(); next; next = pendingChecks.pop()) {
    const [id, { version, n }] = next;
    const doc = await docs.get(id, { readPreference: 'primary', readPolicy: 'network-only' }).catch(() => null);
    if (!doc || doc.version < version || (doc.version === version && doc.data.n !== n)) {
      lost++;
      console.log(`  LOST ${id}: acknowledged v${version} n=${n}, primary has ${doc ? `v${doc.version} n=${doc.data.n}` : 'nothing'}`);
    }
  }
}));
const primary = primaryNow();
await db.close();
await cluster.stop();

for (const [what, count] of errors) console.log(`  errors: ${what} x${count}`);
const summary = { reads: total.reads, writes: total.writes, checked: acked.size, lost, primary, promoted, seconds };
console.log(
  `summary: reads ok=${total.reads.ok} failed=${total.reads.failed} writes ok=${total.writes.ok} ` +
    `failed=${total.writes.failed} lost=${lost} primary=${primary} (${acked.size} acknowledged documents checked)`,
);
console.log(JSON.stringify(summary));
process.exitCode = total.reads.failed === 0 && lost === 0 ? 0 : 1;

/** Starts a dev cluster on free ports; it stops when we close its stdin (or die). */
async function startCluster() {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const bin = process.env.REPLIKIT_SERVER_BIN ?? join(root, 'target', 'debug', 'replikit-server');
  const dir = mkdtempSync(join(tmpdir(), 'replikit-example-'));
  const child = spawn(bin, ['dev-cluster', '--port', '0', '--json', '--stop-on-stdin-close', '--state-file', join(dir, 'state.json')], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.on('data', (d) => log.push(String(d)));
  console.log('starting a dev cluster (primary + 2 replicas, synchronous replication)…');
  const info = await new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`cannot run ${bin} (cargo build -p replikit-server): ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`dev-cluster exited with ${code}:\n${log.join('')}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line)));
  });
  console.log(`dev cluster ready (data in ${info.dataDir})`);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    ...info,
    async stop() {
      child.stdin.end();
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
