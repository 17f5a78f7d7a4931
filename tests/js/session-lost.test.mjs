// Read-your-writes across a failover that loses an asynchronous tail, through the packed package against a real
// cluster: the standby's WAL receiver is frozen so the client's last write never reaches it, the primary is
// killed, the receiver too (what the kernel had buffered for it dies with it), and the standby is promoted. The
// client's next read must reject with `session_lost` (and `sessionLost` fire once), never show older data.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { sleep, startCluster } from './cluster.mjs';

/** The pid of the WAL receiver of the PostgreSQL node whose data directory is `dataDir`. */
function walReceiver(dataDir) {
  const postmaster = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0].trim();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (ppid === postmaster && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('walreceiver')) return Number(pid);
    } catch {
      // the process ended while we looked
    }
  }
  throw new Error(`no WAL receiver under postmaster ${postmaster}`);
}

async function until(what, f, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let consumer;
let cluster;
let frozen;
before(async () => {
  consumer = await installedPackage();
  cluster = await startCluster(['--replicas', '1', '--replication', 'async']);
});
after(async () => {
  if (frozen) process.kill(frozen, 'SIGKILL');
  await cluster?.stop();
  consumer?.cleanup();
});

test('a read after a failover that lost this client\'s write rejects with session_lost, once', async () => {
  const [n0, n1] = cluster.endpoints;
  const db = await consumer.module.createClient({
    primary: n0,
    replicas: [n1],
    headers: cluster.headers,
    health: { intervalMs: 250, timeoutMs: 500 },
    requestTimeoutMs: 1500,
  });
  const lostEvents = [];
  db.on('sessionLost', (e) => lostEvents.push(e));
  const t = db.collection('t');
  await t.create({ v: 1 }, { id: 'kept' });
  assert.equal((await t.get('kept')).data.v, 1);

  frozen = walReceiver(join(cluster.dataDir, 'n1'));
  process.kill(frozen, 'SIGSTOP');
  await t.create({ v: 2 }, { id: 'lost' });
  const lostAt = (await (await cluster.fetch(`${n0}/v1/health`)).json()).position;

  await cluster.admin('n0', 'kill');
  process.kill(frozen, 'SIGKILL');
  frozen = undefined;
  await until('n1 back after its receiver died', async () => (await cluster.fetch(`${n1}/v1/health`)).ok);
  await cluster.admin('n1', 'promote');
  // Another client moves the new timeline past the lost write's position: a bare position cannot tell any more.
  const other = await consumer.module.createClient({ primary: n1, headers: cluster.headers });
  for (let i = 0; ; i++) {
    await other.collection('fill').create({ pad: 'x'.repeat(2000) }, { id: `f${i}` });
    if ((await (await cluster.fetch(`${n1}/v1/health`)).json()).position > lostAt) break;
  }
  await other.close();
  await until('the client sees n1 as primary', () => db.topology().some((e) => e.url === n1 && e.primary));

  await assert.rejects(t.get('lost'), (e) => {
    assert.equal(e.code, 'session_lost');
    assert.equal(e.retryable, false);
    return true;
  });
  assert.equal(lostEvents.length, 1);
  assert.equal(lostEvents[0].term, 1);
  // Told once; the session starts afresh: the write that survived is read, the lost one is gone.
  assert.equal((await t.get('kept')).data.v, 1);
  assert.equal(await t.get('lost'), null);
  assert.equal(lostEvents.length, 1);
  await db.close();
});
