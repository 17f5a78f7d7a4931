// Helpers of the demo tests: the real `scripts/start.sh` started and stopped as a user would, and processes left
// behind by a dev cluster, found by a path in their command line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Pids of live processes whose command line contains `needle` (e.g. a cluster's data or state file path). */
export function processesWith(needle) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline;
    try { cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { continue; }
    if (cmdline.includes(needle)) pids.push(`${entry}: ${cmdline.trim().slice(0, 160)}`);
  }
  return pids;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `scripts/serve-www.mjs` on a free port for the cluster described by `clusterFile`; resolves once it listens. */
export async function startServeWww(clusterFile, readyFile) {
  const child = spawn(process.execPath, ['scripts/serve-www.mjs'], {
    cwd: root,
    env: { ...process.env, REPLIKIT_CLUSTER_FILE: clusterFile, REPLIKIT_WWW_PORT: '0', REPLIKIT_WWW_READY_FILE: readyFile },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let url;
  for (let i = 0; i < 100 && !url; i++) {
    await sleep(50);
    try { url = readFileSync(readyFile, 'utf8'); } catch {}
  }
  assert.ok(url, 'serve-www listens');
  return { child, url };
}

/** Waits until `processesWith(needle)` is empty (the cluster's shutdown takes a moment); returns what is left. */
export async function leftBehind(needle, ms = 10000) {
  const deadline = Date.now() + ms;
  let left = processesWith(needle);
  while (left.length && Date.now() < deadline) {
    await sleep(200);
    left = processesWith(needle);
  }
  return left;
}

/** Runs `bash scripts/start.sh` with `env`; resolves once it printed the dashboard URL. */
export async function startDemo(env, stateFile) {
  const child = spawn('bash', ['scripts/start.sh'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 120000;
  let url;
  while (!(url = out.match(/open (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1])) {
    if (child.exitCode !== null || Date.now() > deadline) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* it already exited */ }
      throw new Error(`start.sh did not print the URL:\n${out}`);
    }
    await sleep(100);
  }
  return { child, exited, url, output: () => out, cluster: JSON.parse(readFileSync(stateFile, 'utf8')) };
}

/**
 * Stops a demo with Ctrl-C and checks that nothing is left: no cluster process (found by its data dir, named
 * `dataLeft` in the message), no supervisor (by its state file, `supervisorLeft`), no dashboard server.
 */
export async function stopDemo(demo, stateFile, { dataLeft, supervisorLeft }) {
  const t0 = Date.now();
  process.kill(demo.child.pid, 'SIGINT'); // Ctrl-C
  const stopped = await Promise.race([demo.exited.then(() => true), new Promise((r) => setTimeout(r, 30000, false).unref())]);
  if (!stopped) process.kill(-demo.child.pid, 'SIGKILL');
  console.log(`start.sh stopped ${Date.now() - t0} ms after SIGINT`);
  assert.ok(stopped, `start.sh stopped on SIGINT:\n${demo.output()}`);
  assert.deepEqual(await leftBehind(demo.cluster.dataDir), [], dataLeft);
  assert.deepEqual(await leftBehind(stateFile), [], supervisorLeft);
  const www = await fetch(demo.url).then(() => 'still answering', () => 'gone');
  assert.equal(www, 'gone', 'the dashboard server stopped');
}
