/**
 * KvStore on RocksDB (storage/kv-store.ts + storage/engines/rocksdb.ts): the shared Store
 * conformance suite, each test in a fresh temporary data directory, reopened by a new instance.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import { storeConformance } from './store.conformance.js';

const dirs: string[] = [];
const open = (dir: string): KvStore => new KvStore(dir, new RocksEngine(engineDir(dir, 'rocksdb')), true);

storeConformance('KvStore on RocksDB', {
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'junction-conformance-'));
    dirs.push(dir);
    return open(dir);
  },
  reopen: async (closed) => open((closed as KvStore).dir),
  cleanup: async () => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  },
});
