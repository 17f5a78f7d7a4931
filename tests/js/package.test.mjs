// The packed tarball as a user installs it, in a folder outside the repo: require() and import() in Node,
// and `tsc --noEmit` on a consumer file that uses the public types.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { consumerDir, npmInstall, root, tarball } from './helpers.mjs';

let consumer;
before(() => {
  consumer = consumerDir({
    'esm.mjs': `import { createClient, ReplikitError } from 'replikit';
const db = await createClient({ primary: 'http://127.0.0.1:7100' });
let code = null;
try { db.collection('no/slash'); } catch (e) { code = e instanceof ReplikitError && e.code; }
console.log(JSON.stringify({ endpoints: db.topology().length, code }));
await db.close();`,
    'cjs.cjs': `const { createClient, ReplikitError } = require('replikit');
createClient({ replicas: ['http://127.0.0.1:7101'] }).then(async (db) => {
  const e = await createClient({}).catch((e) => e);
  console.log(JSON.stringify({ role: db.topology()[0].role, err: e instanceof ReplikitError && e.argument }));
  await db.close();
});`,
  });
  npmInstall(consumer.dir, [tarball()]);
});
after(() => consumer?.cleanup());

const node = (file) => JSON.parse(execFileSync(process.execPath, [file], { cwd: consumer.dir, encoding: 'utf8' }));

test('the tarball ships only dist/, README and package.json', () => {
  const listed = execFileSync('tar', ['-tzf', tarball()], { encoding: 'utf8' }).trim().split('\n');
  assert.ok(listed.includes('package/dist/replikit.wasm'));
  assert.ok(listed.includes('package/dist/index.d.ts'));
  assert.ok(listed.every((f) => /^package\/(dist\/|README\.md$|package\.json$)/.test(f)), listed.join(', '));
});

test('import("replikit") works from another folder', () => {
  assert.deepEqual(node('esm.mjs'), { endpoints: 1, code: 'invalid_argument' });
});

test('require("replikit") works from another folder', () => {
  assert.deepEqual(node('cjs.cjs'), { role: 'replica', err: 'endpoints' });
});

test('the ./replikit.wasm subpath resolves to the module', () => {
  const path = execFileSync(process.execPath, ['-e', 'console.log(require.resolve("replikit/replikit.wasm"))'], {
    cwd: consumer.dir,
    encoding: 'utf8',
  }).trim();
  assert.deepEqual([...readFileSync(path).subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]);
});

test('tsc --noEmit accepts correct use of the public types and rejects wrong use', () => {
  copyFileSync(join(root, 'tests', 'types', 'consumer.ts'), join(consumer.dir, 'consumer.ts'));
  copyFileSync(join(root, 'tests', 'types', 'tsconfig.json'), join(consumer.dir, 'tsconfig.json'));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', consumer.dir], { encoding: 'utf8' });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
});
