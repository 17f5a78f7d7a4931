// Shared helpers of the benchmark: the load loop, percentiles, tables.
import { performance } from 'node:perf_hooks';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** p-th percentile (0..100) of an ascending array, nearest rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Summary of latency samples (ms). */
export function summarize(samples) {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

/**
 * N concurrent async loops calling `op(loop, i)` back to back for `durationMs` after `warmupMs` of the same
 * (discarded). Every op is timed with performance.now(); a rejected op counts as an error, not a sample.
 * Throughput = successful ops / elapsed seconds of the measured window.
 */
export async function runLoad({ concurrency, durationMs, warmupMs, op }) {
  const phase = async (ms, record) => {
    const samples = [];
    let errors = 0;
    let firstError = null;
    const start = performance.now();
    const end = start + ms;
    let counter = 0;
    const loop = async (l) => {
      while (performance.now() < end) {
        const i = counter++;
        const t0 = performance.now();
        try {
          await op(l, i);
          if (record) samples.push(performance.now() - t0);
        } catch (e) {
          errors++;
          firstError ??= e;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, l) => loop(l)));
    const elapsed = (performance.now() - start) / 1000;
    return { samples, errors, firstError, elapsed };
  };
  if (warmupMs > 0) await phase(warmupMs, false);
  const { samples, errors, firstError, elapsed } = await phase(durationMs, true);
  return { concurrency, samples, errors, firstError, elapsed };
}

/** Pools rounds of runLoad (same contender and concurrency) into one result; keeps each round's ops/s. */
export function combine(rounds) {
  const samples = rounds.flatMap((r) => r.samples);
  const elapsed = rounds.reduce((a, r) => a + r.elapsed, 0);
  const s = summarize(samples);
  const e = rounds.find((r) => r.firstError)?.firstError;
  return {
    concurrency: rounds[0].concurrency,
    ...s,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    firstError: e ? `${e?.code ?? ''} ${e?.message ?? e}`.trim() : null,
    opsPerSec: s.n / elapsed,
    roundOpsPerSec: rounds.map((r) => r.samples.length / r.elapsed),
  };
}

/** Times `n` sequential calls of `op(i)`; returns per-op samples (ms) summary and the mean from wall time. */
export async function timeSequential(n, op) {
  const samples = new Array(n);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op(i);
    samples[i] = performance.now() - t0;
  }
  const total = performance.now() - start;
  return { ...summarize(samples), wallMean: total / n };
}

export const ms = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
export const us = (xMs) => (Number.isFinite(xMs) ? (xMs * 1000).toFixed(1) : '—');
export const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');
export const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');

/** A Markdown table (which also reads fine in a terminal). */
export function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c ?? '')));
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(cells[0]), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.slice(1).map(line)].join('\n');
}
