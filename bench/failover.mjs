// Failover trials on one dev cluster: kill the primary, promote a replica (the server's `tookMs`), then time the
// client's first successful write after the promote answer (the client's own detection), while a reader loop
// runs all along; then rejoin the killed node and wait until the cluster is whole again.
import { performance } from 'node:perf_hooks';
import { createClient } from 'replikit';
import { waitForEndpointsUp } from './contenders.mjs';
import { sleep } from './lib.mjs';

/** Every node's gateway up and postgres running, one primary, every other node a streaming replica. */
async function waitHealthy(cluster, db, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await cluster.status().catch((e) => ({ error: String(e) }));
    const nodes = last.nodes ?? [];
    const primaries = nodes.filter((n) => n.role === 'primary');
    const ok =
      nodes.length > 0 &&
      nodes.every((n) => n.gateway === 'up' && n.postgres === 'running') &&
      primaries.length === 1 &&
      primaries[0].nodeId === last.primary &&
      nodes.filter((n) => n.role === 'replica').every((n) => n.lagMs !== null && n.term === primaries[0].term);
    const primaryUrl = primaries[0]?.url;
    const clientOk = db.topology().every((e) => e.state === 'up') && db.topology().some((e) => e.primary && e.url === primaryUrl);
    if (ok && clientOk) return last;
    await sleep(100);
  }
  throw new Error(`cluster not healthy in ${timeoutMs} ms: ${JSON.stringify(last)} client: ${JSON.stringify(db.topology())}`);
}

export async function failoverTrials({ cluster, trials = 10, log = () => {} }) {
  const [primary, ...replicas] = cluster.endpoints;
  const db = await createClient({
    primary,
    replicas,
    headers: cluster.headers,
    cache: { store: 'none' },
    readPolicy: 'network-only',
    health: { intervalMs: 250, timeoutMs: 500 },
    requestTimeoutMs: 1500,
  });
  const c = db.collection('failover');
  // The client's own view, for explaining slow trials: its events with their times.
  let events = [];
  const nodeOf = (url) => cluster.nodes?.find((n) => n.url === url)?.nodeId ?? url;
  db.on('primary', (p) => events.push({ at: performance.now(), what: `primary → ${p.url ? nodeOf(p.url) : 'none'} (term ${p.term})` }));
  db.on('endpointDown', (e) => events.push({ at: performance.now(), what: `down ${nodeOf(e.url)} (${e.lastError ?? ''})` }));
  db.on('endpointUp', (e) => events.push({ at: performance.now(), what: `up ${nodeOf(e.url)} as ${e.role} term ${e.term}` }));
  await waitForEndpointsUp(db);
  await c.replace('r', { v: 0 });
  await c.replace('w', { trial: -1 });

  // The reader loop: sequential network reads for the whole run, failures attributed to the current trial.
  let trial = -1;
  let running = true;
  const failedReads = new Array(trials).fill(0);
  const reads = new Array(trials).fill(0);
  const readErrors = [];
  const reader = (async () => {
    while (running) {
      const t = trial;
      try {
        const d = await c.get('r');
        if (!d) throw new Error('document r missing');
        if (t >= 0) reads[t]++;
      } catch (e) {
        if (t >= 0) failedReads[t]++;
        readErrors.push(`trial ${t}: ${e.code ?? ''} ${e.message}`);
      }
      await sleep(2);
    }
  })();

  const rows = [];
  try {
    await waitHealthy(cluster, db);
    for (let t = 0; t < trials; t++) {
      trial = t;
      const status = await cluster.status();
      const oldPrimary = status.primary;
      const ids = status.nodes.map((n) => n.nodeId);
      // Rotate the promoted node so every replica gets promoted in turn.
      const target = ids[(ids.indexOf(oldPrimary) + 1) % ids.length];
      events = [];
      const tKill = performance.now();
      await cluster.admin(oldPrimary, 'kill');
      const promote = await cluster.admin(target, 'promote');
      const tPromoted = performance.now();
      let writeErrors = 0;
      let detectMs;
      for (;;) {
        try {
          await c.replace('w', { trial: t });
          detectMs = performance.now() - tPromoted;
          break;
        } catch (e) {
          writeErrors++;
          if (performance.now() - tPromoted > 30000) throw new Error(`no successful write 30 s after promote: ${e.message}`);
        }
      }
      const killToWriteMs = performance.now() - tKill;
      const timeline = events
        .filter((e) => e.at <= tPromoted + detectMs + 1)
        .map((e) => `${(e.at - tPromoted).toFixed(0)} ms: ${e.what}`);
      const tRejoin = performance.now();
      await cluster.admin(oldPrimary, 'rejoin');
      await waitHealthy(cluster, db);
      const rejoinMs = performance.now() - tRejoin;
      const row = { trial: t + 1, killed: oldPrimary, promoted: target, promoteMs: promote.tookMs, detectMs, killToWriteMs, writeErrors, reads: reads[t], failedReads: failedReads[t], rejoinMs, timeline };
      rows.push(row);
      log(`  trial ${t + 1}: killed ${oldPrimary}, promoted ${target} in ${promote.tookMs} ms, first write ${detectMs.toFixed(1)} ms later, failed reads ${failedReads[t]}`);
    }
  } finally {
    running = false;
    await reader.catch(() => {});
    await db.close().catch(() => {});
  }
  return { rows, readErrors: readErrors.slice(0, 10) };
}
