// The contenders of the read and write benchmarks. Each returns { name, op(loop, i), close() }.
//
// (a) raw     fetch of the gateway URLs, round-robin over the replicas (reads) or to the primary (writes): the floor.
// (b) peer    what a user would otherwise write: fetch + cockatiel (retry ×3 with exponential backoff, wrapped by a
//             consecutive-failure circuit breaker), round-robin over the replicas, writes to a fixed primary with an
//             Idempotency-Key kept across retries (without one a retried write is not safe).
// (c) replikit with no cache (store 'none', readPolicy 'network-only'), default readPreference and durability.
// (d) replikit cache hits: memory store, readPolicy 'cache-first', after one warming read of every id.
//
// `headers` is the cluster's `headers` (its gateway token, `cluster.headers`): every contender sends it on every
// request, the raw and cockatiel ones as fetch headers and replikit as its `headers` option, so all of them pay
// for the same Authorization header and the gateways' same token check.
import { randomUUID } from 'node:crypto';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleAll, retry, wrap } from 'cockatiel';
import { createClient } from 'replikit';

export const COLLECTION = 'bench';
export const WRITE_COLLECTION = 'benchw';

const docUrl = (base, collection, id) => `${base}/v1/c/${collection}/${encodeURIComponent(id)}`;

async function json(r) {
  if (!r.ok) {
    const text = await r.text();
    throw new Error(`HTTP ${r.status}: ${text.slice(0, 200)}`);
  }
  return r.json();
}

function peerPolicy() {
  const retryPolicy = retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() });
  const breaker = circuitBreaker(handleAll, { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(5) });
  return wrap(retryPolicy, breaker);
}

// ---------------------------------------------------------------------------------------------- reads

export function rawReader({ replicas, ids, headers }) {
  let rr = 0;
  return {
    name: '(a) raw fetch',
    op: (_l, i) => fetch(docUrl(replicas[rr++ % replicas.length], COLLECTION, ids[i % ids.length]), { headers }).then(json),
    close: async () => {},
  };
}

export function peerReader({ replicas, ids, headers }) {
  let rr = 0;
  const policy = peerPolicy();
  return {
    name: '(b) fetch + cockatiel',
    op: (_l, i) => {
      const id = ids[i % ids.length];
      // A retry moves on to the next replica, as a hand-written round-robin client would.
      return policy.execute(() => fetch(docUrl(replicas[rr++ % replicas.length], COLLECTION, id), { headers }).then(json));
    },
    close: async () => {},
  };
}

export async function replikitReader({ primary, replicas, headers, ids, cached = false, extra = {} }) {
  const db = await createClient({
    primary,
    replicas,
    headers,
    cache: { store: cached ? 'memory' : 'none', maxEntries: Math.max(1000, ids.length * 2) },
    readPolicy: cached ? 'cache-first' : 'network-only',
    ...extra,
  });
  const c = db.collection(COLLECTION);
  if (cached) {
    for (const id of ids) {
      const d = await c.get(id, { readPolicy: 'network-only' });
      if (!d) throw new Error(`warming read of ${id} found nothing`);
    }
    const hit = await c.get(ids[0]);
    if (!hit.meta.fromCache) throw new Error('a cache-first read after warming did not come from the cache');
  } else {
    await waitForEndpointsUp(db);
  }
  return {
    name: cached ? '(d) replikit cache hit' : '(c) replikit no cache',
    db,
    op: (_l, i) =>
      c.get(ids[i % ids.length]).then((d) => {
        if (!d) throw new Error('document missing');
        return d;
      }),
    close: () => db.close(),
  };
}

/** Waits until the client's first health checks are in, so no contender starts on unknown endpoints. */
export async function waitForEndpointsUp(db, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (db.topology().every((e) => e.state === 'up')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`endpoints not up: ${JSON.stringify(db.topology())}`);
}

// --------------------------------------------------------------------------------------------- writes

const payload = (i) => ({ n: i, at: 'bench', pad: 'x'.repeat(100) });

export function rawWriter({ primary, headers, withKey = false }) {
  return {
    name: withKey ? '(a′) raw fetch + Idempotency-Key' : '(a) raw fetch',
    op: (l, i) => {
      const h = { ...headers, 'content-type': 'application/json' };
      if (withKey) h['idempotency-key'] = randomUUID();
      return fetch(docUrl(primary, WRITE_COLLECTION, `w${l}`), {
        method: 'PUT',
        headers: h,
        body: JSON.stringify({ data: payload(i) }),
      }).then(json);
    },
    close: async () => {},
  };
}

export function peerWriter({ primary, headers }) {
  const policy = peerPolicy();
  return {
    name: '(b) fetch + cockatiel',
    op: (l, i) => {
      const key = randomUUID();
      const body = JSON.stringify({ data: payload(i) });
      return policy.execute(() =>
        fetch(docUrl(primary, WRITE_COLLECTION, `w${l}`), {
          method: 'PUT',
          headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': key },
          body,
        }).then(json),
      );
    },
    close: async () => {},
  };
}

export async function replikitWriter({ primary, replicas, headers }) {
  const db = await createClient({ primary, replicas, headers, cache: { store: 'none' } });
  await waitForEndpointsUp(db);
  const c = db.collection(WRITE_COLLECTION);
  return {
    name: '(c) replikit',
    db,
    op: (l, i) => c.replace(`w${l}`, payload(i)),
    close: () => db.close(),
  };
}
