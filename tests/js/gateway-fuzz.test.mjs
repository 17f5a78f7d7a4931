// A fuzz pass over the gateway: random methods, paths, headers and bodies (seeded). No request may get a 500,
// hang, or be refused without a JSON error carrying a stable code.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startCluster } from './cluster.mjs';
import { prng } from './helpers.mjs';

const seed = Number(process.env.REPLIKIT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const COUNT = Number(process.env.REPLIKIT_FUZZ_COUNT ?? 1500);
let cluster;
before(async () => { cluster = await startCluster(['--replicas', '1']); });
after(async () => { await cluster?.stop(); });


test(`the gateway answers ${COUNT} random requests with no 500 and no hang (seed ${seed})`, { timeout: 180000 }, async () => {
  const rand = prng(seed);
  const pick = (l) => l[Math.floor(rand() * l.length)];
  const junk = () => pick(['', '.', '..', '%2e%2e', 'a'.repeat(300), '%00', 'ü', '%ZZ', 'x y', '__proto__', '{}', '-_-', 'users', 'a/b', '%2F']);
  const random = () => pick(['v1', 'v2', '', 'admin', '..']) + '/' + pick(['c', 'health', 'x', '']) + '/' + junk() + (rand() < 0.5 ? '/' + junk() : '');
  const valid = () => `v1/c/${pick(['users', 'notes', junk()])}` + pick(['', `/${junk()}`, `/${junk()}`, `?limit=${pick(['0', '5', '1001', 'x', '-1'])}&after=${junk()}`]);
  const segs = () => (rand() < 0.75 ? valid() : random());
  const body = () => pick([undefined, '', '{', 'null', '[]', '{"data":1}', '{"data":{}}', '{"id":5,"data":{}}', '{"id":"..","data":{}}',
    `{"data":{"k":"${'x'.repeat(2 * 1024 * 1024)}"}}`, '{"__proto__":{"a":1}}', '{"data":{"k":"\\u0000"}}', '{"id":"a\\u0000","data":{}}', JSON.stringify({ data: { n: rand() } }), '\u0000\u0001']);
  const headers = () => {
    const h = {};
    if (rand() < 0.3) h['if-match'] = pick(['"1"', '*', 'W/"x"', '"-1"', '"99999999999999999999"', 'garbage']);
    if (rand() < 0.3) h['x-replikit-min-position'] = pick(['0', '-5', 'abc', '18446744073709551615', '99999999999']);
    if (rand() < 0.3) h['x-replikit-max-wait-ms'] = pick(['0', '100', '-1', '99999999', 'x']);
    if (rand() < 0.2) h['x-replikit-durability'] = pick(['local', 'quorum', 'visible', 'everything']);
    if (rand() < 0.2) h['idempotency-key'] = pick(['k', '', 'x'.repeat(1000), 'ü']);
    if (rand() < 0.2) h['content-type'] = pick(['text/plain', 'application/json', 'application/xml']);
    return h;
  };
  const seen = {};
  for (let i = 0; i < COUNT; i++) {
    const url = `${pick(cluster.endpoints)}/${segs()}`;
    const method = pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']);
    const b = ['GET', 'HEAD'].includes(method) ? undefined : body();
    let r;
    try {
      r = await cluster.fetch(url, { method, headers: headers(), body: b, signal: AbortSignal.timeout(5000) });
    } catch (e) {
      if (e.name === 'TimeoutError') assert.fail(`${method} ${url} hung (seed ${seed})`);
      continue; // a URL fetch refuses to send (bad characters) never reached the gateway
    }
    const text = await r.text();
    seen[r.status] = (seen[r.status] ?? 0) + 1;
    assert.ok(r.status < 500 || r.status === 503, `${method} ${url} -> ${r.status} ${text.slice(0, 200)} (seed ${seed})`);
    if (r.status >= 400 && method !== 'HEAD') {
      const code = JSON.parse(text)?.error?.code;
      assert.match(code ?? '', /^[a-z_]+$/, `${method} ${url} -> ${r.status} without a code: ${text.slice(0, 200)}`);
    }
  }
  console.log(`gateway fuzz: ${COUNT} requests, statuses ${JSON.stringify(seen)}, seed ${seed}`);
});
