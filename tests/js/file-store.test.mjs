// Queued writes in Node that survive the process (`cache: { store: 'file', path }`), through the packed package:
// a script queues writes while the cluster is down and is killed (SIGKILL, no chance to flush); a second process
// on the same folder syncs them, each applied once, in order.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { installedPackage } from './helpers.mjs';
import { startCluster } from './cluster.mjs';

let consumer;
let cluster;
let dir;
before(async () => {
  consumer = await installedPackage();
  cluster = await startCluster();
  dir = mkdtempSync(join(tmpdir(), 'replikit-outbox-'));
});
after(async () => {
  await cluster?.stop();
  consumer?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `body` in a child Node process with the installed package as `replikit`; resolves with its stdout lines.
 * The gateway token goes in the environment ($REPLIKIT_GATEWAY_TOKEN), never in argv, where `-e` puts the code.
 */
function script(body, { kill = false } = {}) {
  const code = `import * as replikit from ${JSON.stringify(consumer.url)};\n${body}`;
  const env = { ...process.env, REPLIKIT_GATEWAY_TOKEN: cluster.gatewayToken };
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      for (const line of String(d).split('\n').filter(Boolean)) {
        lines.push(line);
        // The script says READY when its writes are queued: kill it there, as a crash would.
        if (kill && line === 'READY') child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (kill ? signal === 'SIGKILL' : code === 0) resolve(lines);
      else reject(new Error(`script ended with ${code ?? signal}:\n${err}`));
    });
  });
}

test('writes queued in a file store survive a killed process and sync once from the next one', async () => {
  const options = (endpoints) => `{ ...${JSON.stringify({
    endpoints: endpoints.map((url, i) => ({ url, role: i === 0 ? 'primary' : 'replica' })),
    cache: { store: 'file', path: join(dir, 'outbox') },
    offline: { queueWrites: true },
    health: { intervalMs: 200, timeoutMs: 300 },
    primaryWaitMs: 300,
  })}, headers: { authorization: 'Bearer ' + process.env.REPLIKIT_GATEWAY_TOKEN } }`;
  // Unreachable endpoints (nothing listens on port 9 of 127.0.0.1): the writes are queued.
  await script(`
    const db = await replikit.createClient(${options(['http://127.0.0.1:9'])});
    const todos = db.collection('todos');
    await todos.create({ n: 1 }, { id: 'a' });
    await todos.update('a', { n: 2 });
    await todos.create({ n: 3 }, { id: 'b' });
    await todos.delete('b');
    const pending = await db.pendingWrites();
    if (pending.length !== 4) throw new Error('expected 4 queued writes, got ' + pending.length);
    console.log('READY');
    setInterval(() => {}, 1000); // stays up until it is killed
  `, { kill: true });
  const files = readdirSync(join(dir, 'outbox'));
  assert.equal(files.filter((f) => f.endsWith('.json')).length, 4, `one file per queued write: ${files}`);
  assert.equal(statSync(join(dir, 'outbox')).mode & 0o777, 0o700, 'the folder is private');

  const lines = await script(`
    const db = await replikit.createClient(${options(cluster.endpoints)});
    console.log('PENDING ' + (await db.pendingWrites()).length);
    await db.flush();
    console.log('AFTER ' + (await db.pendingWrites()).length);
    await db.close();
  `);
  assert.deepEqual(lines, ['PENDING 4', 'AFTER 0']);
  const a = await (await cluster.fetch(`${cluster.endpoints[0]}/v1/c/todos/a`)).json();
  assert.deepEqual(a.data, { n: 2 }, 'created then updated, in order');
  assert.equal((await cluster.fetch(`${cluster.endpoints[0]}/v1/c/todos/b`)).status, 404, 'created then deleted');
  assert.deepEqual(readdirSync(join(dir, 'outbox')).filter((f) => f.endsWith('.json')), [], 'synced files removed');
});

test('the file store needs a path', async () => {
  await assert.rejects(consumer.module.createClient({ primary: cluster.endpoints[0], cache: { store: 'file' } }), {
    code: 'invalid_argument',
    argument: 'cache.path',
  });
});
