// A first look at the SDK from Node, against a running cluster (`npm start` starts a dev cluster for it).
// The dev cluster's gateways require its generated token: this reads the endpoints and the token from the
// cluster's state file (mode 0600): $REPLIKIT_STATE_FILE, else the default one of a cluster on port 7100
// ($XDG_RUNTIME_DIR/replikit/dev-cluster-7100.json, else <temp dir>/replikit-<uid>/dev-cluster-7100.json).
// For another cluster: REPLIKIT_PRIMARY, REPLIKIT_REPLICAS (comma-separated) and REPLIKIT_TOKEN.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, ReplikitError, version } from 'replikit';

const runtime = process.env.XDG_RUNTIME_DIR && existsSync(process.env.XDG_RUNTIME_DIR)
  ? join(process.env.XDG_RUNTIME_DIR, 'replikit') : join(tmpdir(), `replikit-${process.getuid()}`);
const stateFile = process.env.REPLIKIT_STATE_FILE ?? join(runtime, 'dev-cluster-7100.json');
const state = !process.env.REPLIKIT_PRIMARY && existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) : null;
const primary = process.env.REPLIKIT_PRIMARY ?? state?.endpoints[0] ?? 'http://127.0.0.1:7100';
const replicas = process.env.REPLIKIT_REPLICAS?.split(',') ?? state?.endpoints.slice(1) ?? ['http://127.0.0.1:7101', 'http://127.0.0.1:7102'];
const token = process.env.REPLIKIT_TOKEN ?? state?.gatewayToken;

const db = await createClient({ primary, replicas, headers: token ? { authorization: `Bearer ${token}` } : {} });
db.on('primary', ({ url, term }) => console.log(`  [event] primary is ${url ?? 'unknown'} (term ${term})`));
console.log(`replikit ${version()}`);

const users = db.collection('users');
const ada = await users.create({ name: 'Ada', langs: ['Analytical Engine'] });
console.log(`created ${ada.id} (version ${ada.version})`);
const updated = await users.update(ada.id, { born: 1815 }, { ifVersion: ada.version });
console.log(`updated to version ${updated.version}:`, JSON.stringify(updated.data));
const read = await users.get(ada.id); // from a replica, never older than our own write
console.log(`read back version ${read.version} (read-your-writes holds)`);

try {
  await users.replace(ada.id, { name: 'stale' }, { ifVersion: 1 });
} catch (e) {
  if (!(e instanceof ReplikitError)) throw e;
  console.log(`a stale conditional write fails: ${e.code}, current version ${e.current.version}`);
}
const page = await users.list({ limit: 5 });
console.log(`users: ${page.items.length} on the first page`);

console.log('topology:');
for (const e of db.topology()) {
  console.log(`  ${e.nodeId} ${e.url.padEnd(24)} ${e.role.padEnd(8)} ${e.state.padEnd(5)} term ${e.term} rtt ${e.rttMs} ms${e.primary ? '  <- writes' : ''}`);
}
await users.delete(ada.id);
await db.close();
