// Compiled with `tsc --noEmit` against the installed package: the public types must accept correct use
// and reject wrong use (each @ts-expect-error fails the build if the types let the mistake through).
import { createClient, init, ReplikitError, version } from 'replikit';
import type {
  Client,
  ClientOptions,
  ConflictEvent,
  ConflictInput,
  Doc,
  EndpointInfo,
  ErrorCause,
  ErrorCode,
  Page,
  PageMeta,
  PendingWrite,
  ReadPreference,
} from 'replikit';

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
    if (c.source === 'revisions') console.log(c.versions.length, c.doc.version, c.resolution === 'merged');
    else console.log(c.kind, c.seq, c.key, c.base?.meta.fromCache, c.resolution === 'dropped', c.remote?.version, queued.length, fromCache);
  });
  const describe = (c: ConflictEvent): string => {
    switch (c.source) {
      case 'outbox':
        return `${c.kind} ${c.collection}/${c.id} ${c.resolution}`;
      case 'revisions':
        return `${c.versions.length} revisions of ${c.collection}/${c.id} ${c.resolution}`;
    }
  };
  offline.on('conflict', (c) => console.log(describe(c)));
  offline.on('synced', (w) => console.log(w.kind, w.doc?.version));
  offline.on('syncFailed', (w) => console.log(w.id, w.error.code));
  offline.on('storageError', (e) => {
    const code: 'storage' | 'quota' = e.code;
    console.log(code, e.retryable);
  });
  offline.on('change', (c) => console.log(c.source, c.doc?.id));
  await offline.flush();
  await offline.clearCache();
  // A resolver written for the app's document type, as a function of its own and inline.
  const mergeUsers = async (c: ConflictInput<User>): Promise<User | null> => {
    if (c.versions) return { name: c.versions.map((v) => v.data.name).join(' / '), age: c.remote.data.age };
    return c.local && c.remote ? { ...c.remote.data, ...c.local.data } : null;
  };
  await createClient({ primary: 'http://a', conflict: mergeUsers });
  await createClient({ primary: 'http://a', conflict: (c: ConflictInput<User>) => c.remote?.data ?? null });
  await createClient({
    primary: 'http://a',
    conflict: (c: { local: Doc<User> | null; remote: Doc<User> | null }) => c.local?.data ?? null,
  });
  const typedOptions: ClientOptions<User> = { primary: 'http://a', conflict: mergeUsers };
  await createClient(typedOptions);
  // @ts-expect-error a resolver answers the document type it was written for
  await createClient({ primary: 'http://a', conflict: (c: ConflictInput<User>) => (c.local ? { nom: 'x' } : null) });
  // @ts-expect-error an outbox conflict has no versions: narrow on them first
  await createClient({ primary: 'http://a', conflict: (c: ConflictInput<User>) => c.versions[0].data });
  // Endpoint tags, and a read preference that uses them, client-wide and per call.
  const tagged = await createClient({
    endpoints: [
      { url: 'http://127.0.0.1:7100', role: 'primary', tags: { region: 'eu', zone: 'a' } },
      { url: 'http://127.0.0.1:7101', tags: { region: 'us' } },
    ],
    readPreference: { mode: 'nearest', tagSets: [{ region: 'eu', zone: 'a' }, { region: 'eu' }, {}], maxStalenessMs: 10000 },
  });
  const near: ReadPreference = { mode: 'replicaPreferred', tagSets: [{ zone: 'a' }] };
  await tagged.collection<User>('users').get('ada', { readPreference: near });
  await tagged.collection<User>('users').get('ada', { readPreference: { mode: 'primary' } });
  const listed = await tagged.collection<User>('users').list({ readPreference: 'nearest' });
  const meta: PageMeta = listed.meta;
  const served: { fromCache: boolean; complete: boolean; endpoint: string | null } = meta;
  console.log(served.complete, served.fromCache, served.endpoint?.length);
  // @ts-expect-error mode 'primary' reads from the primary only: no tag sets
  await createClient({ primary: 'http://a', readPreference: { mode: 'primary', tagSets: [{ region: 'eu' }] } });
  // @ts-expect-error a read preference object needs its mode
  await users.get('ada', { readPreference: { tagSets: [{ region: 'eu' }] } });
  // @ts-expect-error tag values are strings
  await createClient({ endpoints: [{ url: 'http://a', tags: { rack: 3 } }] });
  // @ts-expect-error tag sets are a list of tag maps
  await createClient({ primary: 'http://a', readPreference: { mode: 'nearest', tagSets: { region: 'eu' } } });
  // @ts-expect-error unknown read preference mode in the object form
  await createClient({ primary: 'http://a', readPreference: { mode: 'secondary' } });
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
  await createClient({
    topology: 'multi-primary',
    database: 'app',
    endpoints: [{ url: 'http://a', tags: { region: 'eu' } }],
    readPreference: { mode: 'nearest', tagSets: [{}] },
  });
  // @ts-expect-error tag sets do not apply to multi-primary reads (the session's node is read)
  await createClient({
    topology: 'multi-primary',
    database: 'app',
    endpoints: [{ url: 'http://a' }],
    readPreference: { mode: 'nearest', tagSets: [{ region: 'eu' }] },
  });
  // @ts-expect-error a multi-primary cluster reads from the nearest node only
  await createClient({ topology: 'multi-primary', database: 'app', endpoints: [{ url: 'http://a' }], readPreference: 'replica' });
  // @ts-expect-error durability does not apply to a multi-primary cluster
  await createClient({ topology: 'multi-primary', database: 'app', endpoints: [{ url: 'http://a' }], durability: 'quorum' });
  // @ts-expect-error multi-primary nodes have no role
  await createClient({ topology: 'multi-primary', database: 'app', endpoints: [{ url: 'http://a', role: 'primary' }] });
  try {
    await createClient({ endpoints: [{ url: 'http://a', role: 'replica' }] });
  } catch (e) {
    if (e instanceof ReplikitError) {
      const code: ErrorCode = e.code;
      console.log(code, e.retryable, e.argument, e.status, e.current?.version);
      const causes: ErrorCause[] = e.causes ?? [];
      for (const cause of causes) console.log(cause.endpoint, cause.code, cause.message, cause.status ?? 'no answer');
      // @ts-expect-error `current` is the server's stored document: it carries no SDK meta
      console.log(e.current?.meta);
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
