/**
 * Which storage engine to run, decided without ever crashing the broker.
 *
 * rocksdb@5.2.1's prebuilt binary loads on Node 20 but aborts the whole process (std::bad_alloc, an
 * uncatchable C++ abort) on Node 22 and 24 (shared/dependencies.md). So whether it loads is asked
 * of a child process first: `node -e "require('rocksdb')"` exits 0, or dies, and only then is it
 * loaded here. `auto` (the default) keeps the engine a data directory was made with, else takes
 * RocksDB when it loads and LevelDB otherwise.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { StoreOpenError } from './store.js';

export type DiskEngine = 'rocksdb' | 'leveldb';
export type EngineSetting = 'auto' | DiskEngine | 'memory';

export interface EngineChoice {
  readonly engine: DiskEngine | 'memory';
  /** Why, for the start-up log and status. */
  readonly reason: string;
}

let probed: { ok: boolean; detail: string } | undefined;

/** Loads rocksdb in a child process once per process and reports whether that survived. */
export function rocksdbLoads(): { ok: boolean; detail: string } {
  if (probed) return probed;
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = require.resolve('rocksdb');
  } catch {
    return (probed = { ok: false, detail: 'the rocksdb package is not installed' });
  }
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path)})`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 30_000,
  });
  if (r.status === 0) return (probed = { ok: true, detail: `rocksdb loads on Node ${process.version}` });
  const how = r.signal ? `aborts with ${r.signal}` : `exits with ${String(r.status)}`;
  const err = r.stderr.toString().trim().split('\n').slice(0, 2).join(' ');
  return (probed = { ok: false, detail: `rocksdb's binary ${how} on Node ${process.version}${err ? ` (${err})` : ''}` });
}

export const ROCKSDB_BUILD_HELP =
  'build it from source with `npm rebuild rocksdb --build-from-source --ignore-scripts=false` (needs python3, make and g++; ' +
  'about 15 minutes on 2 cores), or use --storage leveldb';

/** The engine recorded in `<dir>/junction.json`, if the directory has one. */
export function recordedEngine(dir: string): string | undefined {
  const path = join(dir, 'junction.json');
  if (!existsSync(path)) return undefined;
  try {
    const meta = JSON.parse(readFileSync(path, 'utf8')) as { engine?: unknown };
    return typeof meta.engine === 'string' ? meta.engine : undefined;
  } catch {
    return undefined; // KvStore reports the unreadable file with its path
  }
}

export function chooseEngine(setting: EngineSetting, dir: string): EngineChoice {
  if (setting === 'memory') return { engine: 'memory', reason: 'configured: nothing is kept across restarts' };
  if (setting === 'leveldb') return { engine: 'leveldb', reason: 'configured' };
  if (setting === 'rocksdb') {
    const probe = rocksdbLoads();
    if (!probe.ok) throw new StoreOpenError(`storage engine rocksdb cannot be used: ${probe.detail}; ${ROCKSDB_BUILD_HELP}`);
    return { engine: 'rocksdb', reason: 'configured' };
  }
  const recorded = recordedEngine(dir);
  if (recorded === 'leveldb') return { engine: 'leveldb', reason: `data directory ${dir} was made with leveldb` };
  if (recorded === 'rocksdb') {
    const probe = rocksdbLoads();
    if (!probe.ok) {
      throw new StoreOpenError(
        `data directory ${dir} was made with rocksdb, which cannot be used here: ${probe.detail}; ` +
          `${ROCKSDB_BUILD_HELP} after moving the data over with junction data export / import`,
      );
    }
    return { engine: 'rocksdb', reason: `data directory ${dir} was made with rocksdb` };
  }
  const probe = rocksdbLoads();
  return probe.ok
    ? { engine: 'rocksdb', reason: `default: ${probe.detail}` }
    : { engine: 'leveldb', reason: `default: ${probe.detail}, so leveldb` };
}
