// A first look at the SDK from Node: create a client, inspect it, see what a configuration mistake looks like.
// Run with `npm start` (which builds the package first) or `node examples/hello.mjs` after `npm run build`.
import { createClient, ReplikitError, version } from 'replikit';

const primary = process.env.REPLIKIT_PRIMARY ?? 'http://127.0.0.1:7100';
const replicas = (process.env.REPLIKIT_REPLICAS ?? 'http://127.0.0.1:7101,http://127.0.0.1:7102').split(',');

const db = await createClient({ primary, replicas, readPreference: 'nearest' });
console.log(`replikit ${version()}: a client for ${db.topology().length} endpoints`);
for (const e of db.topology()) console.log(`  ${e.url.padEnd(24)} configured as ${e.role}, state ${e.state}`);
console.log('effective options:', JSON.stringify(db.effectiveOptions()));

const users = db.collection('users');
console.log(`collection handle: ${users.name}`);

try {
  await createClient({ primary, health: { intervalMs: 'often' } });
} catch (e) {
  if (!(e instanceof ReplikitError)) throw e;
  console.log(`a bad option is caught at start-up: ${e.code} (${e.argument}): ${e.message}`);
}
await db.close();
