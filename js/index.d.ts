// Public types of the `replikit` package (hand-written; the generated glue types are in glue.d.ts).

/** Where reads go. Writes always go to the primary. Default `'replicaPreferred'`. */
export type ReadPreference = 'primary' | 'primaryPreferred' | 'replica' | 'replicaPreferred' | 'nearest';

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

/** A document's version: a counter (Replikit gateway) or a CouchDB revision string such as `'3-9f2c…'`. */
export type Version = number | string;

export interface EndpointOptions {
  /** Base URL of a gateway, `http://` or `https://`, no query or credentials. */
  url: string;
  /** The configured role; the endpoint's health reports have the last word. */
  role?: Role;
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

interface CommonOptions {
  readPreference?: ReadPreference;
  consistency?: Consistency;
  /** Replicas reporting more lag than this are not read from, in ms. Default 30000. */
  maxStalenessMs?: number;
  health?: HealthOptions;
  /** Timeout of one request to one endpoint, in ms. Default 5000. */
  requestTimeoutMs?: number;
  /** How long a write waits for a usable primary (multi-primary: any node) before failing with `no_primary`, in ms. Default 5000. */
  primaryWaitMs?: number;
  durability?: Durability;
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
  conflict?: ConflictStrategy;
}

/**
 * Options of {@link createClient}: either `endpoints`, or the `primary` / `replicas` shorthand.
 * Every duration is in milliseconds and at most one hour. Unknown keys are rejected.
 */
export type ClientOptions = CommonOptions &
  (
    | ({ topology?: 'primary-replica'; protocol?: 'replikit'; database?: never } &
        (
          | { endpoints: EndpointOptions[]; primary?: never; replicas?: never }
          | { primary?: string; replicas?: string[]; endpoints?: never }
        ))
    | MultiPrimaryOptions
  );

/**
 * A multi-primary cluster (CouchDB protocol): writes go to the nearest healthy node and fail over to another;
 * a session's writes and reads stay on the node that took its last write while it is up. `readPreference` may
 * only be `'nearest'` and `durability` does not apply.
 * @example
 * const db = await createClient({ topology: 'multi-primary', protocol: 'couchdb', database: 'app',
 *   endpoints: [{ url: 'http://127.0.0.1:7300' }, { url: 'http://127.0.0.1:7301' }] });
 */
export interface MultiPrimaryOptions {
  topology: 'multi-primary';
  /** Default `'couchdb'` (the only multi-primary protocol). */
  protocol?: 'couchdb';
  /** The CouchDB database every collection lives in (lowercase letter first, then a-z 0-9 _$()+-/). */
  database: string;
  /** The nodes (no `role`: every node is a primary). */
  endpoints: { url: string }[];
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

/** A stored document. `version` changes with every write of it (a counter, or a CouchDB revision). */
export interface Doc<T extends object = Record<string, unknown>> {
  id: string;
  version: Version;
  data: T;
  /** RFC 3339 time of the last write, as the server reported it (local time for a pending write). */
  updatedAt: string;
  /** Present on documents the SDK returns; absent in event payloads' `remote`/`base` only when noted. */
  meta: DocMeta;
}

/**
 * How reads use the local cache. `network-first` (default): ask an endpoint, serve the cache when none can
 * answer. `cache-first`: a cached copy younger than `cache.ttlMs` is the answer. `stale-while-revalidate`: answer
 * from cache, refresh in the background (emits `change`). `network-only`, `cache-only`. A document with a
 * pending offline write is always served from the cache (except `network-only`).
 */
export type ReadPolicy = 'network-first' | 'cache-first' | 'stale-while-revalidate' | 'network-only' | 'cache-only';

export interface CacheOptions {
  /** Default: `'indexeddb'` in browsers, `'memory'` in Node. `'none'` turns the cache (and the outbox's persistence) off. */
  store?: 'indexeddb' | 'memory' | 'none';
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
  base: Omit<Doc, 'meta'> | null;
  /** When the app made it (ms since the epoch). */
  editedAt: number;
  reapplied: number;
}

/**
 * What a custom conflict resolver is given. For a queued offline write: the local version, the server's, and the
 * one both started from. For a multi-primary revision conflict: `remote` is the server's deterministic winner,
 * `versions` every conflicting version (the winner first), `local` and `base` are null.
 */
export interface ConflictInput<T extends object = Record<string, unknown>> {
  local: Doc<T> | null;
  remote: Doc<T> | null;
  base: Doc<T> | null;
  /** Multi-primary revision conflicts only. */
  versions?: Doc<T>[];
  collection?: string;
  id?: string;
}

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
  | ((conflict: ConflictInput<T>) => T | null | Promise<T | null>);

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
  | 'quota';

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

/** Every rejection of the SDK is a `ReplikitError`. */
export declare class ReplikitError extends Error {
  constructor(message: string, details?: Partial<Pick<ReplikitError, 'code' | 'retryable' | 'status' | 'endpoint' | 'argument' | 'current'>>);
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
  readonly current?: Doc | null;
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
  synced: PendingWrite & { doc: Doc | null };
  conflict:
    | (PendingWrite & { local: Doc | null; remote: Doc | null; resolution: 'dropped' | 'reapplied' })
    | RevisionConflictEvent;
  /** A queued write failed for good (e.g. `already_exists`); it was removed from the outbox. */
  syncFailed: PendingWrite & { error: ReplikitError };
  /** The local store failed (code `storage` or `quota`); the cache carries on in memory. */
  storageError: ReplikitError;
}

export type ClientEvent = keyof ClientEvents;

/** Options every call takes. */
export interface BaseCallOptions {
  /** Aborts the call; it rejects with `aborted` (a write may still have been applied: retry it safely with `ifVersion`). */
  signal?: AbortSignal;
}

export interface ReadOptions extends BaseCallOptions {
  /** Overrides the client's read preference for this call. */
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

export interface Page<T extends object = Record<string, unknown>> {
  items: Doc<T>[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
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
  effectiveOptions(): Required<Omit<CommonOptions, 'headers' | 'fetch' | 'conflict' | 'cache'>> & {
    endpoints: EndpointOptions[];
    headers: string[];
    cache: Required<Omit<CacheOptions, 'ttlMs'>> & { ttlMs: number | null };
    conflict: 'server-wins' | 'client-wins' | 'last-writer-wins' | 'function';
    topology: TopologyKind;
    protocol: Protocol;
    database: string | null;
  };
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
   * Syncs the outbox now. Resolves when it is empty; rejects with the first write that failed for good. While
   * no primary is reachable it keeps waiting.
   */
  flush(): Promise<void>;
  /** Removes every cached document and queued write, here and in IndexedDB (a user logging out). */
  clearCache(): Promise<void>;
  /** Listeners subscribed to `event`. */
  listenerCount(event: ClientEvent): number;
  /** Stops timers and in-flight work; later calls reject with `aborted`. */
  close(): Promise<void>;
}

/**
 * Creates a client; loads the WebAssembly module first if needed. Rejects with `invalid_argument` naming
 * the option at fault.
 * @example
 * import { createClient } from 'replikit';
 * const db = await createClient({ primary: 'http://127.0.0.1:7100', replicas: ['http://127.0.0.1:7101'] });
 */
export declare function createClient(options: ClientOptions): Promise<Client>;

/**
 * Loads the WebAssembly module ahead of time (optional: `createClient` does it). In browsers it fetches
 * `replikit.wasm` from next to the entry file unless given a URL, Response, or compiled Module.
 */
export declare function init(input?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;

/** The SDK version. Call after `init()` (or after `createClient` resolved). */
export declare function version(): string;
