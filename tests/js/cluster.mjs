// Starts a real dev cluster (PostgreSQL primary + standbys behind replikit-server gateways) for a test file,
// and stops it (SIGTERM: the cluster removes its temp directory) when the file is done.
// The gateways require the cluster's generated token: `cluster.headers` is the client option that carries it
// (`createClient({ ..., headers: cluster.headers })`), `cluster.fetch` a fetch that adds it, for direct checks.
// The token comes from the cluster's stdout pipe (its JSON line, as in its 0600 state file), never from argv.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { root } from './helpers.mjs';

export const serverBin = process.env.REPLIKIT_SERVER_BIN ?? join(root, 'target', 'debug', 'replikit-server');

/** Starts `replikit-server dev-cluster --port 0 --json` with `args`; resolves when it printed its endpoints. */
export async function startCluster(args = []) {
  const dir = mkdtempSync(join(tmpdir(), 'replikit-cluster-test-'));
  // --stop-on-stdin-close: if this test process dies without stop(), the cluster still goes away.
  const child = spawn(
    serverBin,
    ['dev-cluster', '--port', '0', '--json', '--stop-on-stdin-close', '--state-file', join(dir, 'state.json'), ...args],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const stderr = [];
  child.stderr.on('data', (d) => stderr.push(String(d)));
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev-cluster not ready in 60 s:\n${stderr.join('')}`)), 60000);
    child.on('exit', (code) => reject(new Error(`dev-cluster exited with ${code}:\n${stderr.join('')}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const headers = { authorization: `Bearer ${info.gatewayToken}` };
  return {
    ...info,
    /** The `headers` client option every client of this cluster needs. */
    headers,
    /** fetch with the gateway token added (unless the call sets authorization itself). */
    fetch: (url, init = {}) => fetch(url, { ...init, headers: { ...headers, ...init.headers } }),
    /** POST /admin/nodes/{node}/{action}: kill, start, promote, rejoin, hang, unhang. */
    async admin(node, action) {
      const r = await fetch(`${info.adminUrl}/admin/nodes/${node}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${info.adminToken}` },
      });
      const body = await r.json();
      if (!r.ok) throw new Error(`admin ${action} ${node}: ${r.status} ${JSON.stringify(body)}`);
      return body;
    },
    async status() {
      const r = await fetch(`${info.adminUrl}/admin/status`, { headers: { authorization: `Bearer ${info.adminToken}` } });
      return r.json();
    },
    logs: () => stderr.join(''),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timeout = setTimeout(() => child.kill('SIGKILL'), 20000);
      await exited;
      clearTimeout(timeout);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A `fetch` that records which node answered each request (X-Replikit-Node) and where it went. */
export function recordingFetch() {
  const log = [];
  const wrapped = async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const entry = { method: request.method, url: request.url, at: Date.now(), node: null, status: null };
    log.push(entry);
    const response = await fetch(request);
    entry.node = response.headers.get('x-replikit-node');
    entry.status = response.status;
    return response;
  };
  return { fetch: wrapped, log };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
