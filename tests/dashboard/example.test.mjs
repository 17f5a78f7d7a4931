// examples/node-failover.mjs in its short mode: it starts its own dev cluster, kills the primary and promotes a
// replica while reading and writing, and must end with no failed read and no lost write.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { leftBehind } from './processes.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('the failover example: no failed read, no lost write, writes move to the promoted replica', async () => {
  const run = await promisify(execFile)(process.execPath, ['examples/node-failover.mjs'], {
    cwd: root,
    env: { ...process.env, REPLIKIT_EXAMPLE_SECONDS: '8' },
    timeout: 60000,
  }).catch((e) => e);
  const lines = run.stdout.trim().split('\n');
  assert.equal(run.code ?? 0, 0, `the example exits 0:\n${run.stdout}\n${run.stderr}`);
  assert.ok(lines.filter((l) => /^t=\d+s reads ok=\d+ failed=\d+ writes ok=\d+ failed=\d+ primary=\S+ p50/.test(l)).length >= 6,
    `one line per second:\n${run.stdout}`);
  assert.match(lines.at(-2), /^summary: reads ok=\d+ failed=0 writes ok=\d+ failed=\d+ lost=0 primary=n[12]/);
  const summary = JSON.parse(lines.at(-1));
  assert.equal(summary.reads.failed, 0, 'no failed read');
  assert.equal(summary.lost, 0, 'no lost write');
  assert.ok(summary.reads.ok > 100 && summary.writes.ok > 50, `work was done: ${lines.at(-1)}`);
  assert.ok(summary.checked > 0, 'acknowledged writes were checked on the new primary');
  // n1 unless n2 had replayed more of the old primary's WAL when the example chose whom to promote.
  assert.equal(summary.primary, summary.promoted);
  assert.ok(['n1', 'n2'].includes(summary.promoted), `promoted ${summary.promoted}`);
  const dataDir = run.stdout.match(/dev cluster ready \(data in (\S+)\)/)?.[1];
  assert.ok(dataDir, 'the example started its own cluster');
  assert.deepEqual(await leftBehind(dataDir), [], 'the example stopped its PostgreSQL nodes');
});
