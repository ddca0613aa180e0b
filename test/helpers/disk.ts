/**
 * RocksDB stores for tests: temporary data directories (removed after the test file), a KvStore on
 * one, and the rows a data directory holds. A KvStore cannot be reopened after close: build a new
 * one with `rocksStore(dir)` for every broker start on the same directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import type { StoredState } from '../../storage/store.js';

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

/** A KvStore on RocksDB in data directory `dir` (laid out as the broker lays it out). */
export function rocksStore(dir: string, sync = true): KvStore {
  return new KvStore(dir, new RocksEngine(engineDir(dir, 'rocksdb')), sync);
}

/** Row counts per kind, the shape of MemoryStore.counts(). */
export interface Rows {
  readonly messages: number;
  readonly sessions: number;
  readonly subs: number;
  readonly pending: number;
  readonly incoming: number;
  readonly retained: number;
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

/** Opens the RocksDB data directory `dir` (no broker may hold it), counts its rows, closes it. */
export async function storedRows(dir: string): Promise<Rows> {
  const store = rocksStore(dir);
  try {
    return rowsOf(await store.open());
  } finally {
    await store.close();
  }
}
