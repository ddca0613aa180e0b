/**
 * What every fuzz test shares: how many cases to run (bounded in `npm test`, raised by `npm run
 * fuzz`), the seeds, a watchdog that turns a decoder stuck in a loop into a failure that names the
 * input, and a forced GC for the memory checks.
 *
 * Environment (all optional):
 * - FUZZ_SCALE: multiplies every bound below (cases per property, wire-level time); `npm run fuzz`
 *   sets 20.
 * - FUZZ_CASES: cases per property, whatever the test's own bound (overrides FUZZ_SCALE for them).
 * - FUZZ_TIME: seconds each wire-level fuzzing phase lasts (default 4, times FUZZ_SCALE).
 * - FUZZ_SEED: the fast-check seed, or `random` (default: a fixed seed per test, so `npm test`
 *   runs the same inputs every time). The seed in use is printed with each summary line.
 * - FUZZ_CASE_MS: how long one decoder case may take before the watchdog kills the run (default 5000).
 *
 * The watchdog is a worker thread: a synchronous decoder caught in a loop blocks this thread (and
 * every timer in it), so only another thread can notice. It writes the stuck input to stderr with
 * a direct write(2) and kills the process; vitest then reports the test file as failed.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

const SCALE = envInt('FUZZ_SCALE') ?? 1;

/** True under `npm run fuzz` (or whenever a FUZZ_ bound is set): no vitest timeouts then. */
export const LONG = SCALE > 1 || process.env['FUZZ_CASES'] !== undefined || process.env['FUZZ_TIME'] !== undefined;

/** Cases for a property whose bound in `npm test` is `base`. */
export function cases(base: number): number {
  return envInt('FUZZ_CASES') ?? base * SCALE;
}

/** The fast-check seed for a property whose fixed seed is `fixed`. */
export function seed(fixed: number): number {
  const v = process.env['FUZZ_SEED'];
  if (v === undefined || v === '') return fixed;
  if (v === 'random') return (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer or "random", got ${v}`);
  return n;
}

/** Milliseconds a wire-level fuzzing phase lasts. */
export function fuzzMs(baseMs = 4000): number {
  const s = envInt('FUZZ_TIME');
  return s !== undefined ? s * 1000 : baseMs * SCALE;
}

/**
 * A vitest timeout for a test expected to take about `ms` in `npm test`. Long runs get none to
 * speak of (6 hours): the watchdog and each wait's own timeout still bound them.
 */
export function timeout(ms: number): number {
  return LONG ? 6 * 3600_000 : Math.max(20_000, ms * 3 + 15_000);
}

/** One line per property: what ran, so a report can quote case counts and times. */
export function summary(name: string, fields: Record<string, string | number>): void {
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
  console.log(`[fuzz] ${name}: ${parts.join(' ')}`);
}

/** No lone surrogate: the string is valid Unicode (String.prototype.isWellFormed, not in our lib). */
export function wellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

// -- watchdog -----------------------------------------------------------------------------------

const DUMP = 4096;
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { state, bytes, label, limitMs } = workerData;
let last = -1;
let since = Date.now();
setInterval(() => {
  const n = Atomics.load(state, 0);
  if (Atomics.load(state, 1) === 0 || n !== last) { last = n; since = Date.now(); return; }
  if (Date.now() - since < limitMs) return;
  const len = Atomics.load(state, 2);
  const name = Buffer.from(label.subarray(0, Atomics.load(state, 3))).toString('utf8');
  fs.writeSync(2, '\\n[fuzz watchdog] ' + name + ': case ' + n + ' still running after ' + limitMs + ' ms; input (' + Atomics.load(state, 4) +
    ' bytes, first ' + len + ' in hex): ' + Buffer.from(bytes.subarray(0, len)).toString('hex') + '\\n');
  process.kill(process.pid, 'SIGKILL');
}, 50);
`;

let dog: { state: Int32Array; bytes: Uint8Array; label: Uint8Array } | undefined;

function watchdog(): NonNullable<typeof dog> {
  if (dog) return dog;
  const state = new Int32Array(new SharedArrayBuffer(5 * 4));
  const bytes = new Uint8Array(new SharedArrayBuffer(DUMP));
  const label = new Uint8Array(new SharedArrayBuffer(256));
  const limitMs = envInt('FUZZ_CASE_MS') ?? 5000;
  const w = new Worker(WATCHDOG, { eval: true, workerData: { state, bytes, label, limitMs } });
  w.unref();
  dog = { state, bytes, label };
  return dog;
}

/** Timing of guarded cases, per label. */
const slowest = new Map<string, number>();

/**
 * Runs one synchronous decoder case under the watchdog. `input` is what the dump shows if it
 * hangs. Returns what `fn` returns; rethrows what it throws.
 */
export function guard<T>(label: string, input: Buffer, fn: () => T): T {
  const d = watchdog();
  const name = Buffer.from(label, 'utf8').subarray(0, d.label.length);
  d.label.set(name);
  Atomics.store(d.state, 3, name.length);
  const n = Math.min(input.length, DUMP);
  d.bytes.set(input.subarray(0, n));
  Atomics.store(d.state, 2, n);
  Atomics.store(d.state, 4, input.length);
  Atomics.add(d.state, 0, 1);
  Atomics.store(d.state, 1, 1);
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    Atomics.store(d.state, 1, 0);
    const ms = performance.now() - t0;
    if (ms > (slowest.get(label) ?? 0)) slowest.set(label, ms);
  }
}

/** The slowest guarded case of `label` so far, in ms. */
export function slowestCase(label: string): number {
  return Math.round((slowest.get(label) ?? 0) * 10) / 10;
}

// -- memory -------------------------------------------------------------------------------------

let gcFn: (() => void) | undefined;

/** A full garbage collection (global.gc when exposed, else enabled at run time). */
export function forceGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g) gcFn = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  gcFn();
}

/** heapUsed after a forced GC, settled over a few turns (pending closes and timers run first). */
export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 50));
    forceGc();
  }
  return process.memoryUsage().heapUsed;
}

/** Writes a line straight to stderr (for failures the test wants visible even if the run dies). */
export function stderr(line: string): void {
  fs.writeSync(2, line + '\n');
}
