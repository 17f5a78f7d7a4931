// Compiled with `tsc --noEmit` against the installed package: the public types must accept correct use
// and reject wrong use (each @ts-expect-error fails the build if the types let the mistake through).
import { createClient, init, ReplikitError, version } from 'replikit';
import type { Client, ClientOptions, Doc, EndpointInfo, ErrorCode, Page, PendingWrite } from 'replikit';

const page0 = (d: Doc<{ name: string }> | null): string | undefined => d?.id;

interface User {
  name: string;
  age?: number;
}

export async function main(): Promise<void> {
  await init();
  const options: ClientOptions = {
    primary: 'http://127.0.0.1:7100',
    replicas: ['http://127.0.0.1:7101'],
    readPreference: 'nearest',
    health: { intervalMs: 500 },
    durability: 'visible',
    headers: { Authorization: 'Bearer t' },
  };
  const db: Client = await createClient(options);
  const users = db.collection<User>('users');
  const name: string = users.name;
  const endpoints: EndpointInfo[] = db.topology();
  const off: () => void = db.on('primary', (p) => console.log(p.url, p.term, name, endpoints.length));
  db.on('retry', (r) => console.log(r.attempt, r.error.code));
  off();
  const doc: Doc<User> = await users.create({ name: 'Ada' }, { id: 'ada', durability: 'visible' });
  const again: Doc<User> | null = await users.get(doc.id, { readPreference: 'primary' });
  await users.update('ada', { age: null }, { ifVersion: doc.version, signal: new AbortController().signal });
  await users.replace('ada', { name: 'Ada L.' });
  const page: Page<User> = await users.list({ limit: 10, after: page0(again) });
  await users.delete(page.items[0]?.id ?? 'ada');
  console.log(doc.data.name, version(), db.sessionPosition());
  const offline = await createClient({
    primary: 'http://a',
    cache: { store: 'indexeddb', name: 'app', maxEntries: 500, ttlMs: 60000 },
    readPolicy: 'stale-while-revalidate',
    offline: { queueWrites: true },
    conflict: ({ local, remote }) => (local && remote ? { ...remote.data, ...local.data } : null),
  });
  const pendingDoc = await offline.collection<User>('users').get('ada', { readPolicy: 'cache-only' });
  const fromCache: boolean | undefined = pendingDoc?.meta.fromCache;
  const queued: PendingWrite[] = await offline.pendingWrites();
  offline.on('conflict', (c) => {
    if ('source' in c) console.log(c.versions.length, c.doc.version, c.resolution);
    else console.log(c.resolution, c.remote?.version, queued.length, fromCache);
  });
  offline.on('change', (c) => console.log(c.source, c.doc?.id));
  await offline.flush();
  await offline.clearCache();
  // @ts-expect-error unknown read policy
  await users.get('ada', { readPolicy: 'cache-then-network' });
  // @ts-expect-error data must match the collection's type
  await users.create({ nom: 'x' });
  // @ts-expect-error ifVersion is a version (number or revision string), not an object
  await users.delete('ada', { ifVersion: { rev: '1-a' } });
  const multi = await createClient({
    topology: 'multi-primary',
    protocol: 'couchdb',
    database: 'app',
    endpoints: [{ url: 'http://127.0.0.1:7300' }, { url: 'http://127.0.0.1:7301' }],
    conflict: ({ versions, remote }) => (versions ? Object.assign({}, ...versions.map((v) => v.data)) : remote?.data ?? null),
  });
  const rev: Doc<User> = await multi.collection<User>('users').update('ada', { age: 37 }, { ifVersion: '2-abc' });
  const writable: boolean = multi.topology()[0].writable;
  console.log(rev.version, writable, multi.effectiveOptions().topology);
  // @ts-expect-error a multi-primary cluster needs its database
  await createClient({ topology: 'multi-primary', endpoints: [{ url: 'http://a' }] });
  // @ts-expect-error multi-primary nodes have no role
  await createClient({ topology: 'multi-primary', database: 'app', endpoints: [{ url: 'http://a', role: 'primary' }] });
  try {
    await createClient({ endpoints: [{ url: 'http://a', role: 'replica' }] });
  } catch (e) {
    if (e instanceof ReplikitError) {
      const code: ErrorCode = e.code;
      console.log(code, e.retryable, e.argument, e.status);
    }
  }
  // @ts-expect-error readPreference is a closed set
  await createClient({ primary: 'http://a', readPreference: 'secondary' });
  // @ts-expect-error endpoints and the primary shorthand are exclusive
  await createClient({ primary: 'http://a', endpoints: [{ url: 'http://b' }] });
  // @ts-expect-error unknown event
  db.on('primry', () => {});
  // @ts-expect-error durations are numbers
  await createClient({ primary: 'http://a', requestTimeoutMs: '5s' });
  await db.close();
}
