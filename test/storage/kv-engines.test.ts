/**
 * KvStore on each disk engine (storage/kv-store.ts + storage/engines/*): the shared Store
 * conformance suite, each test in a fresh temporary data directory, reopened by a new instance.
 * RocksDB is skipped, saying why, where its binary cannot load (Node 22 and 24: it aborts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { rocksdbLoads, type DiskEngine } from '../../storage/engine-choice.js';
import { LevelEngine } from '../../storage/engines/leveldb.js';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import { storeConformance } from './store.conformance.js';

const engines: Record<DiskEngine, (dir: string) => KvStore> = {
  rocksdb: (dir) => new KvStore(dir, new RocksEngine(engineDir(dir, 'rocksdb')), true),
  leveldb: (dir) => new KvStore(dir, new LevelEngine(engineDir(dir, 'leveldb')), true),
};

const rocks = rocksdbLoads();
for (const [engine, open] of Object.entries(engines) as Array<[DiskEngine, (dir: string) => KvStore]>) {
  if (engine === 'rocksdb' && !rocks.ok) {
    describe.skip(`KvStore on rocksdb (skipped: ${rocks.detail})`, () => undefined);
    continue;
  }
  const dirs: string[] = [];
  storeConformance(`KvStore on ${engine}`, {
    create: async () => {
      const dir = mkdtempSync(join(tmpdir(), `junction-conformance-${engine}-`));
      dirs.push(dir);
      return open(dir);
    },
    reopen: async (closed) => open((closed as KvStore).dir),
    cleanup: async () => {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  });
}
