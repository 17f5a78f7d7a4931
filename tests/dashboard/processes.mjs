// Helpers of the demo tests: processes left behind by a dev cluster, found by a path in their command line.
import { readdirSync, readFileSync } from 'node:fs';

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
