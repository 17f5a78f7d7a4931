// The JS↔wasm boundary: documents of ~1 KB, ~100 KB and ~1 MB (of `data` JSON) through `create` and `get`,
// against JSON.stringify + JSON.parse alone.
//
// To isolate the SDK from the network, `create` runs against an in-process stub `fetch` (the public `fetch`
// option) that answers health checks and echoes the created document; the same stub also serves a plain-JS
// baseline (JSON.stringify → fetch → r.json()), so the Request/Response cost is counted on both sides. `get` is
// a cache-first memory hit of the document just created. A last pair of columns does the same create end to end
// on the real cluster (raw fetch POST vs replikit create, default durability).
//
// Every client and every baseline fetch carries the cluster's `headers` (its gateway token): the real gateways
// need it, and the stub pairs send it too (the stub ignores it) so that both sides build the same request.
import { performance } from 'node:perf_hooks';
import { createClient } from 'replikit';
import { waitForEndpointsUp } from './contenders.mjs';
import { summarize } from './lib.mjs';

/** A document whose `data` serializes to exactly `bytes` bytes of JSON: a list of small records plus padding. */
export function makeData(bytes) {
  const items = [];
  const base = { kind: 'bench', items, pad: '' };
  let len = JSON.stringify(base).length;
  for (let i = 0; ; i++) {
    const item = { i, name: `item-${i}`, tags: ['alpha', 'beta'], value: i * 1.5, ok: i % 2 === 0 };
    const add = JSON.stringify(item).length + (items.length ? 1 : 0);
    if (len + add > bytes - 16) break;
    items.push(item);
    len += add;
  }
  base.pad = 'p'.repeat(bytes - JSON.stringify(base).length);
  if (JSON.stringify(base).length !== bytes) throw new Error('makeData size mismatch');
  return base;
}

export const STUB = 'http://stub.invalid';
const HEALTH = '{"nodeId":"s0","role":"primary","term":1,"position":1,"lagMs":null,"readOnly":false}';
const stubHeaders = { 'content-type': 'application/json', 'x-replikit-node': 's0', 'x-replikit-position': '1' };

/** A fetch that answers like a primary gateway without a network: health, and POST echoing `{id, data}` as a document. */
export async function stubFetch(input, init) {
  const req = input instanceof Request ? input : new Request(input, init);
  const path = new URL(req.url).pathname;
  if (path === '/v1/health') return new Response(HEALTH, { status: 200, headers: stubHeaders });
  if (req.method === 'POST') {
    const body = await req.text(); // {"id":..., "data":...}: add version and updatedAt without parsing it
    const doc = `{"version":1,"updatedAt":"2026-11-22T00:00:00.000000Z",${body.slice(1)}`;
    return new Response(doc, { status: 201, headers: { ...stubHeaders, etag: '"1"' } });
  }
  return new Response('{"error":{"code":"not_found","message":"stub"}}', { status: 404, headers: stubHeaders });
}

async function timeOps(n, warm, op) {
  for (let i = 0; i < warm; i++) await op(-1 - i);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op(i);
    samples.push(performance.now() - t0);
  }
  return summarize(samples);
}

export async function boundary({ cluster, sizes = [[1024, 300], [102400, 40], [1000000, 8]], log = () => {} }) {
  const { headers } = cluster;
  const stubDb = await createClient({ primary: STUB, headers, fetch: stubFetch, cache: { store: 'memory', maxEntries: 2000 }, readPolicy: 'cache-first' });
  await waitForEndpointsUp(stubDb);
  const stub = stubDb.collection('boundary');
  const [primary, ...replicas] = cluster.endpoints;
  const realDb = await createClient({ primary, replicas, headers, cache: { store: 'none' } });
  await waitForEndpointsUp(realDb);
  const real = realDb.collection('boundary');
  const run = Date.now().toString(36);
  const rows = [];
  try {
    for (const [bytes, n] of sizes) {
      const data = makeData(bytes);
      const text = JSON.stringify({ id: 'x', version: 1, updatedAt: '2026-11-22T00:00:00.000000Z', data });
      let sink = 0;
      const json = await timeOps(n, 2, async () => {
        const s = JSON.stringify({ id: 'x', data });
        sink += s.length;
        sink += JSON.parse(text).version;
      });
      const parseOnly = await timeOps(n, 2, async () => {
        sink += JSON.parse(text).version;
      });
      const plain = await timeOps(n, 2, async (i) => {
        const r = await stubFetch(`${STUB}/v1/c/boundary`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ id: `p-${bytes}-${i}`, data }) });
        sink += (await r.json()).version;
      });
      const create = await timeOps(n, 2, async (i) => {
        sink += (await stub.create(data, { id: `c-${bytes}-${i}` })).version;
      });
      const get = await timeOps(n, 2, async (i) => {
        const d = await stub.get(`c-${bytes}-${Math.max(0, i)}`);
        if (!d?.meta.fromCache) throw new Error('boundary get missed the cache');
        sink += d.version;
      });
      const rawNet = await timeOps(Math.min(n, 20), 1, async (i) => {
        const r = await fetch(`${primary}/v1/c/boundary`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ id: `rn-${run}-${bytes}-${i}`, data }) });
        if (r.status !== 201) throw new Error(`raw create: HTTP ${r.status} ${await r.text()}`);
        sink += (await r.json()).version;
      });
      const replikitNet = await timeOps(Math.min(n, 20), 1, async (i) => {
        sink += (await real.create(data, { id: `kn-${run}-${bytes}-${i}` })).version;
      });
      if (!sink) throw new Error('nothing measured');
      const row = { bytes, n, json, parseOnly, plain, create, get, rawNet, replikitNet };
      rows.push(row);
      log(`  ${bytes} B: JSON ${json.p50.toFixed(3)} ms, stub plain ${plain.p50.toFixed(3)} ms, replikit create ${create.p50.toFixed(3)} ms, get ${get.p50.toFixed(3)} ms`);
    }
  } finally {
    await stubDb.close().catch(() => {});
    await realDb.close().catch(() => {});
  }
  return rows;
}
