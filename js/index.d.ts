// Public types of the `replikit` package (hand-written; the generated glue types are in glue.d.ts).

/** Where reads go. Writes always go to the primary. Default `'replicaPreferred'` (multi-primary: `'nearest'`). */
export type ReadPreferenceMode = 'primary' | 'primaryPreferred' | 'replica' | 'replicaPreferred' | 'nearest';

/**
 * A read preference with endpoint tags and a staleness bound, as MongoDB's. `tagSets` are tried in order: reads
 * go to the endpoints whose `tags` hold every pair of the first set that some eligible endpoint matches (`{}`
 * matches any endpoint). `maxStalenessMs` overrides the client's for these reads. Mode `'primary'` takes no
 * `tagSets`: the primary is the only endpoint it may read from.
 * @example
 * { mode: 'nearest', tagSets: [{ region: 'eu', zone: 'a' }, { region: 'eu' }, {}], maxStalenessMs: 10000 }
 */
export type ReadPreferenceOptions =
  | { mode: 'primary'; tagSets?: never; maxStalenessMs?: number }
  | { mode: Exclude<ReadPreferenceMode, 'primary'>; tagSets?: Array<Record<string, string>>; maxStalenessMs?: number };

/** A read preference: a mode (`'nearest'`), or an object with the mode, tag sets and a staleness bound. */
export type ReadPreference = ReadPreferenceMode | ReadPreferenceOptions;

/** `'session'` (default): reads never return data older than this client's own acknowledged writes. */
export type Consistency = 'session' | 'eventual';

/** How far a write travels before it is acknowledged. Default `'quorum'`. */
export type Durability = 'local' | 'quorum' | 'visible';

export type Role = 'primary' | 'replica';

/**
 * How the cluster is organised. `'primary-replica'` (default): one primary takes writes, replicas serve reads
 * (the Replikit gateway). `'multi-primary'`: every node takes writes and the nodes replicate to each other
 * (CouchDB, PouchDB Server); see docs/ARCHITECTURE.md for what each guarantees.
 */
export type TopologyKind = 'primary-replica' | 'multi-primary';

/** The protocol the endpoints speak: `'replikit'` (the gateway, protocol v1) or `'couchdb'`. */
export type Protocol = 'replikit' | 'couchdb';

/**
 * A document's version: a number (Replikit gateway: a new one at every write, never one the document had before, below
 * 2^53; `0` on the copy of a write still queued) or a CouchDB revision string such as `'3-9f2c…'`.
 */
export type Version = number | string;

export interface EndpointOptions {
  /** Base URL of a gateway, `http://` or `https://`, no query or credentials. */
  url: string;
  /** The configured role; the endpoint's health reports have the last word. */
  role?: Role;
  /** Labels of this endpoint (`{ region: 'eu', zone: 'a' }`), matched by a read preference's `tagSets`. */
  tags?: Record<string, string>;
}

export interface HealthOptions {
  /** Time between health checks of one endpoint, in ms. Default 1000, at least 50. */
  intervalMs?: number;
  /** A health check slower than this counts as failed, in ms. Default 1000, at least 10. */
  timeoutMs?: number;
  /** Failed checks in a row before an endpoint is `down`. Default 2, 1 to 100. */
  failureThreshold?: number;
}

export interface RetryOptions {
  /** Attempts per operation, the first included. Default 3, 1 to 20. */
  maxAttempts?: number;
  /** Full-jitter backoff base, in ms. Default 25. */
  baseDelayMs?: number;
  /** Backoff cap, in ms. Default 1000; not below baseDelayMs. */
  maxDelayMs?: number;
}

/** The options both topologies take. */
interface CommonOptions<T extends object = Record<string, unknown>> {
  consistency?: Consistency;
  /** Replicas reporting more lag than this are not read from, in ms. Default 30000. */
  maxStalenessMs?: number;
  health?: HealthOptions;
  /** Timeout of one request to one endpoint, in ms. Default 5000. */
  requestTimeoutMs?: number;
  /** How long a write waits for a usable primary (multi-primary: any node) before failing with `no_primary`, in ms. Default 5000. */
  primaryWaitMs?: number;
  retry?: RetryOptions;
  /** Extra request headers (e.g. Authorization), sent to the configured endpoints only. */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). Useful for tests, proxies and instrumentation. */
  fetch?: typeof fetch;
  cache?: CacheOptions;
  /** The default read policy; also per call. */
  readPolicy?: ReadPolicy;
  offline?: {
    /**
     * Queue writes that find no usable primary within `primaryWaitMs` (or are made while `navigator.onLine` is
     * false) and resolve them at once with `meta.pending`. Default: true in browsers, false in Node.
     */
    queueWrites?: boolean;
  };
  /** How conflicts are settled; a resolver may be written for the app's document type (`ConflictInput<Note>`). */
  conflict?: ConflictStrategy<T>;
}

/**
 * Options of {@link createClient}. Every duration is in milliseconds and at most one hour. Unknown keys are
 * rejected. `T` is the document type a custom conflict resolver is written for (inferred from it).
 */
export type ClientOptions<T extends object = Record<string, unknown>> = PrimaryReplicaOptions<T> | MultiPrimaryOptions<T>;

/** A primary-replica cluster (the Replikit gateway): either `endpoints`, or the `primary` / `replicas` shorthand. */
export type PrimaryReplicaOptions<T extends object = Record<string, unknown>> = CommonOptions<T> & {
  topology?: 'primary-replica';
  protocol?: 'replikit';
  database?: never;
  readPreference?: ReadPreference;
  durability?: Durability;
} & (
    | { endpoints: EndpointOptions[]; primary?: never; replicas?: never }
    | { primary?: string; replicas?: string[]; endpoints?: never }
  );

/**
 * A multi-primary cluster (CouchDB protocol): writes go to the nearest healthy node and fail over to another;
 * a session's writes and reads stay on the node that took its last write while it is up. `readPreference` may
 * only be `'nearest'` and `durability` does not apply.
 * @example
 * const db = await createClient({ topology: 'multi-primary', protocol: 'couchdb', database: 'app',
 *   endpoints: [{ url: 'http://127.0.0.1:7300' }, { url: 'http://127.0.0.1:7301' }] });
 */
export interface MultiPrimaryOptions<T extends object = Record<string, unknown>> extends CommonOptions<T> {
  topology: 'multi-primary';
  /** Default `'couchdb'` (the only multi-primary protocol). */
  protocol?: 'couchdb';
  /** The CouchDB database every collection lives in (lowercase letter first, then a-z 0-9 _$()+-/). */
  database: string;
  /** The nodes (no `role`: every node is a primary). */
  endpoints: Omit<EndpointOptions, 'role'>[];
  /**
   * Reads go to the session's node, else the nearest one. Tag sets do not apply here (a non-empty `tagSets` is
   * an `invalid_argument`): the session's node has this client's writes, whatever its tags.
   */
  readPreference?: 'nearest' | { mode: 'nearest'; tagSets?: [] | [Record<string, never>]; maxStalenessMs?: number };
  /** Does not apply: a write is acknowledged by the node that took it. */
  durability?: never;
  primary?: never;
  replicas?: never;
}

/** Where a returned document came from. */
export interface DocMeta {
  /** Served from the local cache (with `endpoint` set: revalidated there, `304 Not Modified`). */
  fromCache: boolean;
  /** A local offline write to it is queued and not synced yet. */
  pending: boolean;
  /** The endpoint that answered, or null when none did. */
  endpoint: string | null;
}

/** A stored document. `version` changes with every write of it (see {@link Version}). */
export interface Doc<T extends object = Record<string, unknown>> {
  id: string;
  version: Version;
  data: T;
  /** RFC 3339 time of the last write, as the server reported it (local time for a pending write). */
  updatedAt: string;
  /** Where the SDK got it; on every document it returns or emits, except where {@link StoredDoc} is noted. */
  meta: DocMeta;
}

/** A document as the server stores it, without the SDK's `meta` (`PendingWrite.base`, `ReplikitError.current`). */
export type StoredDoc<T extends object = Record<string, unknown>> = Omit<Doc<T>, 'meta'>;

/**
 * How reads use the local cache. `network-first` (default): ask an endpoint, serve the cache when none can
 * answer. `cache-first`: a cached copy younger than `cache.ttlMs` is the answer. `stale-while-revalidate`: answer
 * from cache, refresh in the background (emits `change`). `network-only`, `cache-only`. A document with a
 * pending offline write is always served from the cache (except `network-only`).
 */
export type ReadPolicy = 'network-first' | 'cache-first' | 'stale-while-revalidate' | 'network-only' | 'cache-only';

export interface CacheOptions {
  /**
   * Default: `'indexeddb'` in browsers, `'memory'` in Node. `'file'` (Node only, with `path`): queued writes are
   * kept as files and survive the process (documents are cached in memory). `'none'` turns the cache (and the
   * outbox's persistence) off. In memory, queued writes are lost when the process exits.
   */
  store?: 'indexeddb' | 'memory' | 'file' | 'none';
  /** The folder of the `'file'` store (created, mode 0700; one process per folder). */
  path?: string;
  /** The IndexedDB database name (also names the tabs' channel and lock). Default `'replikit'`. */
  name?: string;
  /** Least recently used entries past this are evicted (never ones with pending writes). Default 1000. */
  maxEntries?: number;
  /** Entries older than this are revalidated before `cache-first` uses them. Default: no expiry. */
  ttlMs?: number;
}

/** A queued offline write (`db.pendingWrites()`, and the payload of `queued`). */
export interface PendingWrite {
  seq: number;
  /** The idempotency key it is sent with: syncing it twice cannot apply it twice. */
  key: string;
  kind: 'create' | 'replace' | 'update' | 'delete';
  collection: string;
  id: string;
  /** The data (create, replace) or merge patch (update); null for delete. */
  data: Record<string, unknown> | null;
  /** The version it was made against (sent as `If-Match`). */
  baseVersion: Version | null;
  /** The document as it was at `baseVersion`, if this client had it cached. */
  base: StoredDoc | null;
  /** When the app made it (ms since the epoch). */
  editedAt: number;
  reapplied: number;
}

/**
 * What a custom conflict resolver is given: an {@link OutboxConflictInput} or a {@link RevisionConflictInput}.
 * `versions` tells them apart (`if (c.versions)` narrows to a revision conflict).
 */
export type ConflictInput<T extends object = Record<string, unknown>> = OutboxConflictInput<T> | RevisionConflictInput<T>;

/** A queued offline write met a newer server version when it synced (HTTP 412). */
export interface OutboxConflictInput<T extends object = Record<string, unknown>> {
  /** The document as this client's queued writes left it; null for a delete. */
  local: Doc<T> | null;
  /** The server's current version; null when it was deleted there. */
  remote: Doc<T> | null;
  /** The version the write was made against, if this client had it cached. */
  base: Doc<T> | null;
  versions?: undefined;
  collection?: undefined;
  id?: undefined;
}

/** A multi-primary document has conflicting revisions (found by a read). */
export interface RevisionConflictInput<T extends object = Record<string, unknown>> {
  local: null;
  /** The server's deterministic winner. */
  remote: Doc<T>;
  base: null;
  /** Every conflicting version, the winner first. */
  versions: Doc<T>[];
  collection: string;
  id: string;
}

/** A custom conflict resolver: the data to write, or null to keep the server's version. */
export type ConflictResolver<T extends object = Record<string, unknown>> = (
  conflict: ConflictInput<T>,
) => T | null | Promise<T | null>;

/**
 * How conflicts are settled. Default `'server-wins'`. A queued write that meets a newer server version (HTTP 412)
 * when it syncs: `'server-wins'` drops the local change, `'client-wins'` re-applies it, `'last-writer-wins'`
 * compares the local edit time with the server's `updatedAt`. A multi-primary revision conflict found by a read:
 * `'server-wins'` keeps CouchDB's deterministic winner, `'last-writer-wins'` (and `'client-wins'`, which has no
 * local side there) the version with the latest `updatedAt`; the other revisions are deleted. A function returns
 * the data to write (over the server's version / as the merge of all versions), or null to keep the server's.
 */
export type ConflictStrategy<T extends object = Record<string, unknown>> =
  | 'server-wins'
  | 'client-wins'
  | 'last-writer-wins'
  | ConflictResolver<T>;

export type EndpointState = 'unknown' | 'up' | 'suspect' | 'down';

/** One endpoint as the client sees it (`db.topology()`). */
export interface EndpointInfo {
  url: string;
  nodeId: string | null;
  role: Role | null;
  state: EndpointState;
  rttMs: number | null;
  lagMs: number | null;
  term: number | null;
  position: number | null;
  lastError: string | null;
  /** The tags configured for this endpoint (`{}` when none). */
  tags: Record<string, string>;
  /** Whether this is the primary (primary-replica; always false in a multi-primary cluster). */
  primary: boolean;
  /** Whether writes may go here now: the primary, or in a multi-primary cluster every node that is up. */
  writable: boolean;
}

/** Stable error codes; `ReplikitError.code` is one of these. */
export type ErrorCode =
  | 'invalid_argument'
  | 'conflict'
  | 'already_exists'
  | 'not_found'
  | 'no_primary'
  | 'unavailable'
  | 'timeout'
  | 'protocol'
  | 'unauthorized'
  | 'aborted'
  | 'storage'
  | 'quota'
  | 'session_lost';

/**
 * The payload of `conflict` for a queued offline write that met a newer server version when it synced: the
 * write as it was queued, the three versions the strategy saw, and what was done.
 */
export interface OutboxConflictEvent extends Omit<PendingWrite, 'base'> {
  source: 'outbox';
  /** The version the write was made against, if this client had it cached. */
  base: Doc | null;
  /** The document as this client's queued writes left it; null for a delete. */
  local: Doc | null;
  /** The server's current version; null when it was deleted there. */
  remote: Doc | null;
  /** `'dropped'`: the server's version stands; `'reapplied'`: the write is queued again over it. */
  resolution: 'dropped' | 'reapplied';
}

/** The payload of `change`: a document changed by another tab or by a background revalidation. */
export interface ChangeEvent {
  collection: string;
  id: string;
  /** The document now, or null when it was deleted. */
  doc: Doc | null;
  source: 'tab' | 'revalidate';
}

/** The payload of `conflict` for a multi-primary revision conflict, once it is settled. */
export interface RevisionConflictEvent {
  source: 'revisions';
  collection: string;
  id: string;
  /** Every conflicting version, the server's winner first. */
  versions: Doc[];
  /** The document that stands now. */
  doc: Doc;
  /** `'kept'`: one version was kept and the others deleted; `'merged'`: the resolver's data was written. */
  resolution: 'kept' | 'merged';
}

/** The payload of `conflict`; `source` tells the two kinds apart. */
export type ConflictEvent = OutboxConflictEvent | RevisionConflictEvent;

/** The payload of `synced`: the queued write, and the document the server stored (null for a delete). */
export interface SyncedEvent extends PendingWrite {
  doc: Doc | null;
}

/** The payload of `syncFailed`: the queued write, and why it failed for good. */
export interface SyncFailedEvent extends PendingWrite {
  error: ReplikitError;
}

/**
 * The payload of `syncPaused`: the server refused this client's credentials (401/403) while flushing `id`. Every
 * queued write is kept; automatic flushes wait until `db.flush()` is called again (after new credentials).
 */
export interface SyncPausedEvent extends PendingWrite {
  error: ReplikitError;
}

/** The payload of `storageError`: the local store failed (`storage`), or is full (`quota`). */
export type StorageError = ReplikitError & { readonly code: 'storage' | 'quota' };

/** Why one endpoint could not serve a call (`ReplikitError.causes`). */
export interface ErrorCause {
  endpoint: string;
  /** The failure's code, as `ReplikitError.code` (`timeout`, `unavailable`, ...). */
  code: string;
  message: string;
  /** The HTTP status, when the endpoint answered. */
  status?: number;
}

/** Every rejection of the SDK is a `ReplikitError`. */
export declare class ReplikitError extends Error {
  constructor(
    message: string,
    details?: Partial<Pick<ReplikitError, 'code' | 'retryable' | 'status' | 'endpoint' | 'argument' | 'current' | 'causes'>>,
  );
  readonly name: 'ReplikitError';
  readonly code: ErrorCode;
  /** Whether the same operation may succeed later. */
  readonly retryable: boolean;
  /** The HTTP status, when an endpoint answered. */
  readonly status?: number;
  /** The endpoint that failed, when one did. */
  readonly endpoint?: string;
  /** For `invalid_argument`: the option or argument at fault, by JSON path (`health.intervalMs`). */
  readonly argument?: string;
  /** For `conflict`: the server's current document (or null when it was deleted). */
  readonly current?: StoredDoc | null;
  /** Why no endpoint could serve the call, endpoint by endpoint. */
  readonly causes?: ErrorCause[];
}

/** Events and the payload each passes to its listener. */
export interface ClientEvents {
  topology: EndpointInfo[];
  primary: { url: string | null; term: number | null };
  endpointDown: EndpointInfo;
  endpointUp: EndpointInfo;
  retry: { attempt: number; endpoint: string; error: ReplikitError };
  change: ChangeEvent;
  queued: PendingWrite;
  synced: SyncedEvent;
  /** A conflict was settled: narrow on `source` (`'outbox'` or `'revisions'`). */
  conflict: ConflictEvent;
  /** A queued write failed for good (e.g. `already_exists`); it was removed from the outbox. */
  syncFailed: SyncFailedEvent;
  syncPaused: SyncPausedEvent;
  /** The local store failed (code `storage` or `quota`); the cache carries on in memory. */
  storageError: StorageError;
  /**
   * A write of this client (at `term`, `position`) is not in the database's history any more: a failover lost it
   * (asynchronous replication's tail). The read that found out rejects with code `session_lost`; from then on
   * the session's read-your-writes starts afresh from the client's next write.
   */
  sessionLost: { term: number; position: number };
}

export type ClientEvent = keyof ClientEvents;

/** Options every call takes. */
export interface BaseCallOptions {
  /** Aborts the call; it rejects with `aborted` (a write may still have been applied: retry it safely with `ifVersion`). */
  signal?: AbortSignal;
}

export interface ReadOptions extends BaseCallOptions {
  /** Overrides the client's read preference for this call (a mode, or an object with `tagSets`). */
  readPreference?: ReadPreference;
  /** Overrides the client's read policy for this call (`list` knows network-first, network-only, cache-only). */
  readPolicy?: ReadPolicy;
}

export interface WriteOptions extends BaseCallOptions {
  /** Overrides the client's durability for this write. */
  durability?: Durability;
}

export interface CreateOptions extends WriteOptions {
  /** The new document's id (1 to 256 bytes, not `.` or `..`). Default: a client-generated UUIDv7. */
  id?: string;
}

export interface ConditionalWriteOptions extends WriteOptions {
  /** Apply only if the stored version is this one; else reject with `conflict` (and `current`). */
  ifVersion?: Version;
}

export interface ListOptions extends ReadOptions {
  /** Documents per page, 1 to 1000 (server default 100). */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

/** Where a page came from. */
export interface PageMeta {
  /** Listed from the local cache (no endpoint could answer, or `cache-only`). */
  fromCache: boolean;
  /** False when the page may miss documents: a page from the cache holds only the ones cached here. */
  complete: boolean;
  /** The endpoint that answered, or null when none did. */
  endpoint: string | null;
}

export interface Page<T extends object = Record<string, unknown>> {
  items: Doc<T>[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
  meta: PageMeta;
}

/** A JSON merge patch (RFC 7396): listed fields are set, `null` removes a field. */
export type MergePatch<T> = { [K in keyof T]?: T[K] | null };

/**
 * A handle on one collection (`[A-Za-z0-9_-]{1,64}`). Writes go to the primary with one idempotency key
 * across retries; reads follow the read preference and never return data older than this client's own writes
 * (consistency `session`).
 */
export interface Collection<T extends object = Record<string, unknown>> {
  readonly name: string;
  /**
   * Creates a document. Rejects with `already_exists` if the id is taken.
   * @example
   * const doc = await users.create({ name: 'Ada' });
   */
  create(data: T, options?: CreateOptions): Promise<Doc<T>>;
  /** The document, or null when there is none. */
  get(id: string, options?: ReadOptions): Promise<Doc<T> | null>;
  /** Creates or replaces the document. */
  replace(id: string, data: T, options?: ConditionalWriteOptions): Promise<Doc<T>>;
  /** Merge-patches the document; rejects with `not_found` if there is none. */
  update(id: string, patch: MergePatch<T>, options?: ConditionalWriteOptions): Promise<Doc<T>>;
  /** Deletes the document; rejects with `not_found` if there is none. */
  delete(id: string, options?: ConditionalWriteOptions): Promise<void>;
  /** One page of documents ordered by id. */
  list(options?: ListOptions): Promise<Page<T>>;
}

/** What {@link Client.effectiveOptions} returns: every option, defaults filled in. */
export interface EffectiveOptions {
  topology: TopologyKind;
  protocol: Protocol;
  database: string | null;
  /** Every endpoint, the shorthand expanded; `role` is null where none was configured. */
  endpoints: { url: string; role: Role | null }[];
  readPreference: ReadPreference;
  consistency: Consistency;
  maxStalenessMs: number;
  health: Required<HealthOptions>;
  requestTimeoutMs: number;
  primaryWaitMs: number;
  durability: Durability;
  retry: Required<RetryOptions>;
  /** The header names (values are left out). */
  headers: string[];
  cache: Required<Omit<CacheOptions, 'ttlMs' | 'path'>> & { ttlMs: number | null; path: string | null };
  readPolicy: ReadPolicy;
  offline: { queueWrites: boolean };
  conflict: 'server-wins' | 'client-wins' | 'last-writer-wins' | 'function';
}

export interface Client {
  /**
   * A handle on a collection; throws `invalid_argument` for a bad name.
   * @example
   * const users = db.collection<{ name: string }>('users');
   */
  collection<T extends object = Record<string, unknown>>(name: string): Collection<T>;
  /** A snapshot of every endpoint. */
  topology(): EndpointInfo[];
  /** The validated options with defaults filled in (header values are omitted). */
  effectiveOptions(): EffectiveOptions;
  /**
   * Subscribes to an event; returns a function that unsubscribes. An unknown event name throws `invalid_argument`.
   * @example
   * const off = db.on('primary', ({ url }) => console.log('primary is now', url));
   */
  on<E extends ClientEvent>(event: E, listener: (payload: ClientEvents[E]) => void): () => void;
  /** The highest position among this client's acknowledged writes (what its reads wait for). */
  sessionPosition(): number;
  /** The queued offline writes, oldest first. */
  pendingWrites(): Promise<PendingWrite[]>;
  /**
   * Syncs the outbox now. Resolves when it is empty; rejects with the first write that failed for good after
   * the call began (a `syncFailed` before it is not this call's). While no primary is reachable it keeps waiting.
   */
  flush(): Promise<void>;
  /** Removes every cached document and queued write, here and in IndexedDB (a user logging out: before `close()`). */
  clearCache(): Promise<void>;
  /** Listeners subscribed to `event`. */
  listenerCount(event: ClientEvent): number;
  /**
   * Stops timers and in-flight work, and closes the IndexedDB connection (another tab may upgrade the database);
   * pending and later calls, `clearCache()` and `pendingWrites()` included, reject with `aborted`.
   */
  close(): Promise<void>;
}

/**
 * Creates a client; loads the WebAssembly module first if needed. Rejects with `invalid_argument` naming
 * the option at fault. `T` is inferred from a typed conflict resolver (`conflict: (c: ConflictInput<Note>) => ...`).
 * @example
 * import { createClient } from 'replikit';
 * const db = await createClient({ primary: 'http://127.0.0.1:7100', replicas: ['http://127.0.0.1:7101'] });
 */
export declare function createClient<T extends object = Record<string, unknown>>(options: ClientOptions<T>): Promise<Client>;

/**
 * Loads the WebAssembly module ahead of time (optional: `createClient` does it). In browsers it fetches
 * `replikit.wasm` from next to the entry file unless given a URL, Response, or compiled Module.
 */
export declare function init(input?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;

/** The SDK version. Call after `init()` (or after `createClient` resolved). */
export declare function version(): string;
