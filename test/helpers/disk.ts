/**
 * Disk stores for tests, on either engine: temporary data directories (removed after the test
 * file), a KvStore on one, the rows a data directory holds, and the reasons a case cannot run here:
 * rocksdb where its prebuilt binary cannot load (Node 22 and 24: loading it aborts the process, so
 * never open a rocksdb store in-process without `DISK_ENGINES`' skip first), a tmpfs where this
 * process may not mount one. A KvStore cannot be reopened after close: build a new one with
 * `diskStore(engine, dir)` for every broker start on the same directory. `startedBroker` starts
 * `junction start` as a child process and waits until it has finished starting.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { recordedEngine, rocksdbLoads, type DiskEngine } from '../../storage/engine-choice.js';
import { LevelEngine } from '../../storage/engines/leveldb.js';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import type { StoredState } from '../../storage/store.js';
import { until } from './mqtt.js';
import { freePort, startBrokerProcess, type BrokerProcess } from './process-broker.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh empty directory under the system temp dir, removed after the test file. */
export function tempDir(prefix = 'junction-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** rocksdb's load probe (a child process, once per test file). */
export const rocks = rocksdbLoads();

/** Both disk engines, each with why it cannot run here (undefined: it can). */
export const DISK_ENGINES: ReadonlyArray<{ readonly engine: DiskEngine; readonly skip: string | undefined }> = [
  { engine: 'rocksdb', skip: rocks.ok ? undefined : rocks.detail },
  { engine: 'leveldb', skip: undefined },
];

/** A test or suite name that says why it is skipped, when it is. */
export function skipNote(name: string, skip: string | undefined): string {
  return skip === undefined ? name : `${name} (skipped: ${skip})`;
}

/** A KvStore on `engine` in data directory `dir` (laid out as the broker lays it out). */
export function diskStore(engine: DiskEngine, dir: string, sync = true): KvStore {
  const kv = engine === 'rocksdb' ? new RocksEngine(engineDir(dir, engine)) : new LevelEngine(engineDir(dir, engine));
  return new KvStore(dir, kv, sync);
}

/** Row counts per kind of MQTT record, as MemoryStore.counts() names them. */
export interface Rows {
  readonly messages: number;
  readonly sessions: number;
  readonly subs: number;
  readonly pending: number;
  readonly incoming: number;
  readonly retained: number;
}

/** The MQTT rows of MemoryStore.counts() (which also counts other kinds). */
export function memoryRows(counts: Readonly<Record<string, number>>): Rows {
  const n = (k: keyof Rows): number => counts[k] ?? 0;
  return { messages: n('messages'), sessions: n('sessions'), subs: n('subs'), pending: n('pending'), incoming: n('incoming'), retained: n('retained') };
}

export function rowsOf(state: StoredState): Rows {
  return {
    messages: state.messages.size,
    sessions: state.sessions.length,
    subs: state.subscriptions.length,
    pending: state.pending.length,
    incoming: state.incoming.length,
    retained: state.retained.length,
  };
}

/** Opens the data directory `dir` with the engine it was made with (no broker may hold it), counts its rows, closes it. */
export async function storedRows(dir: string): Promise<Rows> {
  const engine = recordedEngine(dir);
  if (engine !== 'rocksdb' && engine !== 'leveldb') throw new Error(`${dir} records no disk engine (${String(engine)})`);
  const store = diskStore(engine, dir);
  try {
    return rowsOf(await store.open());
  } finally {
    await store.close();
  }
}

let mountProbe: { reason: string | undefined } | undefined;

/**
 * Why this process cannot mount a tmpfs (not root, or a container without CAP_SYS_ADMIN), or
 * undefined when it can. Asked once per test file, by mounting one.
 */
export function tmpfsUnavailable(): string | undefined {
  if (mountProbe) return mountProbe.reason;
  const at = tempDir('junction-mount-probe-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', at], { encoding: 'utf8' });
  let reason: string | undefined;
  if (r.error) reason = `cannot run mount: ${r.error.message}`;
  else if (r.status !== 0) reason = `mount -t tmpfs fails here: ${r.stderr.trim() || `exit ${String(r.status)}`}`;
  else spawnSync('umount', [at], { stdio: 'ignore' });
  return (mountProbe = { reason }).reason;
}

/** Mounts a tmpfs at `at` with mount options `opts` (e.g. `size=8m`, `remount,ro`). */
export function mountTmpfs(at: string, opts: string): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', at], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount ${at} (${opts}): ${r.stderr}`);
}

export function umount(at: string): void {
  spawnSync('umount', [at], { stdio: 'ignore' });
}

/**
 * `junction start` with `args` as a child process (helpers/process-broker.ts) on `port` or a free
 * one, once it has finished starting: it listens first, and handles SIGTERM as a clean stop (exit
 * 0) only after. Needs the default log level (info) for its "broker started" line. A free port can
 * be taken by another process before the broker binds it (then something else answered on it):
 * the broker exits saying so, and it is started again on another port.
 */
export async function startedBroker(args: string[], port?: number): Promise<BrokerProcess> {
  for (let attempt = 1; ; attempt++) {
    const at = attempt === 1 && port !== undefined ? port : await freePort();
    let b: BrokerProcess | undefined;
    let failure: string;
    try {
      b = await startBrokerProcess(args, at);
      const proc = b.proc;
      await until(() => b!.output().includes('"broker started"') || proc.exitCode !== null, 15_000, 'the broker to finish starting');
      if (proc.exitCode === null) return b;
      failure = b.output();
    } catch (err) {
      await b?.kill('SIGKILL');
      failure = String(err);
    }
    if (!/already in use/.test(failure) || attempt === 3) throw new Error(`broker on port ${at} did not start: ${failure}`);
  }
}
