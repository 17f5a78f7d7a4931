// The built package through its public entry points (self-referenced by name), as ESM and as CommonJS.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { createClient, init, ReplikitError, version } from 'replikit';

const require = createRequire(import.meta.url);
const options = { primary: 'http://127.0.0.1:7100', replicas: ['http://127.0.0.1:7101', 'http://127.0.0.1:7102'] };

test('createClient validates options and describes the topology (ESM)', async () => {
  await init();
  await init(); // idempotent
  assert.match(version(), /^\d+\.\d+\.\d+$/);
  const db = await createClient(options);
  const topology = db.topology();
  assert.deepEqual(topology.map((e) => [e.url, e.role, e.state]), [
    ['http://127.0.0.1:7100', 'primary', 'unknown'],
    ['http://127.0.0.1:7101', 'replica', 'unknown'],
    ['http://127.0.0.1:7102', 'replica', 'unknown'],
  ]);
  assert.equal(Object.getPrototypeOf(topology[0]), Object.prototype, 'plain objects, not Maps');
  assert.equal(db.effectiveOptions().readPreference, 'replicaPreferred');
  assert.equal(db.collection('users').name, 'users');
  await db.close();
});

test('bad options reject with a ReplikitError naming the option', async () => {
  const cases = [
    [undefined, 'options'],
    [{}, 'endpoints'],
    [{ primary: 'ftp://x' }, 'primary'],
    [{ ...options, readPreference: 'secondary' }, 'readPreference'],
    [{ ...options, health: { intervalMs: -1 } }, 'health.intervalMs'],
    [{ ...options, retry: { maxAttempts: 2.5 } }, 'retry.maxAttempts'],
    [{ ...options, requestTimoutMs: 5 }, 'requestTimoutMs'],
    [{ ...options, headers: { 'X-Evil': 'a\r\nb' } }, 'headers.X-Evil'],
  ];
  for (const [opts, argument] of cases) {
    await assert.rejects(createClient(opts), (e) => {
      assert.ok(e instanceof ReplikitError, `${argument}: a ReplikitError`);
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'ReplikitError');
      assert.equal(e.code, 'invalid_argument');
      assert.equal(e.argument, argument);
      assert.equal(e.retryable, false);
      assert.match(e.message, new RegExp(argument.replace(/[.[\]]/g, '\\$&')));
      return true;
    });
  }
});

test('collection names and event names are checked; listeners unsubscribe', async () => {
  const db = await createClient(options);
  for (const bad of ['', 'a/b', 'x'.repeat(65), 'é']) {
    assert.throws(() => db.collection(bad), (e) => e instanceof ReplikitError && e.code === 'invalid_argument');
  }
  assert.throws(() => db.on('primry', () => {}), (e) => e.code === 'invalid_argument' && /primry/.test(e.message));
  const off = db.on('primary', () => {});
  db.on('primary', () => {});
  assert.equal(db.listenerCount('primary'), 2);
  off();
  off(); // a second call is harmless
  assert.equal(db.listenerCount('primary'), 1);
  await db.close();
  assert.equal(db.listenerCount('primary'), 0);
  assert.throws(() => db.collection('users'), (e) => e.code === 'aborted');
});

test('the CommonJS entry works and has its own working error class', async () => {
  const cjs = require('replikit');
  assert.equal(typeof cjs.createClient, 'function');
  const db = await cjs.createClient(options);
  assert.equal(db.topology().length, 3);
  await assert.rejects(cjs.createClient({ primary: 1 }), (e) => e instanceof cjs.ReplikitError && e.argument === 'primary');
});
