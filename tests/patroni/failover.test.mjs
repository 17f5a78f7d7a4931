// The installed npm package against a Patroni + etcd cluster (scripts/patroni/cluster.mjs): consensus failover
// for real. The leader's machine is lost (its Patroni, PostgreSQL, gateway and etcd member SIGKILLed together);
// the SDK keeps reading from the standbys, writes resume once Patroni's leader key expires and a synchronous
// standby is promoted, and every acknowledged write is on the new leader exactly once.
// `npm run test:patroni`; bounds are generous (Patroni's leader TTL alone is 20 s), the measured gap is printed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startPatroniCluster } from '../../scripts/patroni/cluster.mjs';
import { installedPackage } from '../js/helpers.mjs';

// The mode under test: Patroni's synchronous_mode ('on' = true, 'quorum') and synchronous_mode_strict ('1').
const sync = process.env.REPLIKIT_PATRONI_SYNC ?? 'on';
const strict = process.env.REPLIKIT_PATRONI_STRICT === '1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (line) => console.log(`# ${line}`);

let consumer;
let cluster;
before(async () => {
  consumer = await installedPackage();
  const started = Date.now();
  cluster = await startPatroniCluster({ sync, strict, log });
  log(`cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
after(async () => {
  await cluster?.stop();
  consumer?.cleanup();
  assert.deepEqual(cluster?.leftovers() ?? [], [], 'no process of the cluster is left behind');
});

/** Runs `step` in a loop until stopped, recording each outcome with its time. */
function loop(step, pauseMs) {
  const outcomes = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const start = Date.now();
      try {
        const value = await step(i);
        outcomes.push({ i, start, end: Date.now(), ok: true, value });
      } catch (e) {
        outcomes.push({ i, start, end: Date.now(), ok: false, error: `${e.code ?? e.name}: ${e.message}` });
      }
      await sleep(pauseMs);
    }
  })();
  return { outcomes, stop: async () => { running = false; await done; } };
}

test(`${sync === 'on' ? 'synchronous_mode' : `synchronous_mode ${sync}`}${strict ? ' strict' : ''}: the leader machine is lost: reads go on, writes resume after Patroni promotes, no acknowledged write is lost`, async () => {
  const token = readFileSync(cluster.tokenFile, 'utf8').trim();
  const leader = await cluster.leader();
  const endpoints = cluster.endpoints();
  const leaderUrl = endpoints[cluster.machines.indexOf(leader)];
  const db = await consumer.module.createClient({
    primary: leaderUrl,
    replicas: endpoints.filter((u) => u !== leaderUrl),
    headers: { authorization: `Bearer ${token}` },
    health: { intervalMs: 250, timeoutMs: 500 },
    requestTimeoutMs: 1500,
    primaryWaitMs: 60000, // a write waits through the whole gap rather than fail
    offline: { queueWrites: false },
  });
  const notes = db.collection('notes');
  await notes.create({ seed: true }, { id: 'seed' });

  const writes = loop((i) => notes.create({ n: i }, { id: `w-${i}` }).then((d) => ({ id: d.id, version: d.version, endpoint: d.meta.endpoint })), 20);
  const reads = loop(() => notes.get('seed').then((d) => { assert.ok(d, 'the seed is always there'); return d.meta.endpoint; }), 20);
  await sleep(3000);

  const killedAt = await cluster.loseMachine(leader);
  log(`lost ${leader.name} (the leader: Patroni, PostgreSQL, gateway, etcd member)`);

  // Patroni's view: when a new leader answers GET /primary, and when it has a synchronous standby again.
  const newLeader = await pollUntil(60000, () => cluster.leader());
  const promotedAt = Date.now();
  const syncAgainAt = await pollUntil(60000, async () =>
    (await cluster.members()).some((m) => /sync|quorum/.test(m.role) && m.state === 'streaming') && Date.now());
  await pollUntil(30000, () => writes.outcomes.find((o) => o.ok && o.end > promotedAt && o.start > killedAt));
  await sleep(3000);
  await writes.stop();
  await reads.stop();

  // Writes resumed with the first one the new leader acknowledged (one acknowledged by the old leader just before
  // the kill may arrive a moment after it).
  const newLeaderUrl = endpoints[cluster.machines.indexOf(newLeader)];
  const firstAfterKill = writes.outcomes.find((o) => o.ok && o.value.endpoint === newLeaderUrl);
  const gap = (firstAfterKill.end - killedAt) / 1000;
  const failedWrites = writes.outcomes.filter((o) => !o.ok);
  const readsInGap = reads.outcomes.filter((o) => o.start >= killedAt && o.end <= firstAfterKill.end);
  // A read right after the promotion may reject once with session_lost: the session's mark is the position
  // measured after its last write's commit, which can lie a little past the old timeline's switch point (WAL
  // written but not yet streamed, e.g. hint-bit full-page images), so the gateway errs on the safe side
  // (server/src/gateway/session.rs). Nothing was lost: every acknowledged write is checked below.
  const sessionLost = reads.outcomes.filter((o) => !o.ok && o.error.startsWith('session_lost'));
  const failedReads = reads.outcomes.filter((o) => !o.ok && !o.error.startsWith('session_lost'));
  log(`new leader ${newLeader.name} after ${((promotedAt - killedAt) / 1000).toFixed(1)} s; a synchronous standby again `
    + `${((syncAgainAt - promotedAt) / 1000).toFixed(1)} s after that`);
  const carried = firstAfterKill.start < killedAt ? 'the write in flight at the kill, carried through' : 'a write started after the kill';
  log(`write gap ${gap.toFixed(1)} s to the first write acknowledged after the kill (${carried}); `
    + `writes ok=${writes.outcomes.filter((o) => o.ok).length} `
    + `failed=${failedWrites.length}; reads in the gap ok=${readsInGap.filter((o) => o.ok).length}, `
    + `reads failed otherwise=${failedReads.length}, session_lost=${sessionLost.length}`);

  assert.ok(gap > 5 && gap < 60, `writes resumed ${gap} s after the kill (Patroni's TTL is 20 s)`);
  assert.ok(readsInGap.filter((o) => o.ok).length >= 20, 'the standbys kept serving reads during the gap');
  assert.equal(failedReads.length, 0, `no read failed: ${failedReads.slice(0, 3).map((o) => o.error)}`);
  assert.ok(sessionLost.length <= 1, `session_lost at most once: ${sessionLost.length}`);
  assert.ok(failedWrites.length <= 2, `at most the writes in flight at the kill fail: ${failedWrites.map((o) => o.error)}`);

  // Every acknowledged write is on the new leader, applied once (the version its create answered), read there
  // directly.
  const acknowledged = writes.outcomes.filter((o) => o.ok).map((o) => o.value);
  for (const { id, version } of acknowledged) {
    const r = await fetch(`${newLeaderUrl}/v1/c/notes/${id}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `acknowledged write ${id} is on the new leader`);
    const doc = await r.json();
    assert.equal(doc.version, version, `${id} was applied once`);
    assert.equal(doc.data.n, Number(id.slice(2)));
  }
  log(`${acknowledged.length} acknowledged writes checked on ${newLeader.name}`);
  await db.close();
});

/** Poll `check` every 100 ms until truthy; fail after `ms`. */
async function pollUntil(ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `not within ${ms / 1000} s`);
    await sleep(100);
  }
}
