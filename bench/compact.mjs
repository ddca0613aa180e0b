// compact.mjs: `node bench/compact.mjs DATA_DIR` compacts a stopped Junction's RocksDB data directory
// (KvStore.compact: a full-range compaction that drops deleted rows) and prints one JSON line with the
// keys left by kind and their bytes. Uses the build in dist/ (`npm run build`). bench/soak.mjs runs it.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repo } from './common.mjs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/compact.mjs DATA_DIR   (the broker must be stopped: RocksDB holds a lock)');
  process.exit(1);
}
const dist = (f) => pathToFileURL(path.join(repo, 'dist', 'storage', f)).href;
const { KvStore } = await import(dist('kv-store.js'));
const { RocksEngine } = await import(dist('engines/rocksdb.js'));
const { Prefix } = await import(dist('codec.js'));

const kinds = Object.fromEntries(Object.entries(Prefix).map(([name, byte]) => [byte, name]));
const engine = new RocksEngine(path.join(dir, 'rocksdb'));
const store = new KvStore(dir, engine, true);
await store.open();
const t0 = performance.now();
await store.compact();
const compactMs = Math.round(performance.now() - t0);
const keys = {};
let bytes = 0;
for await (const [key, value] of engine.iterate(Buffer.alloc(0))) {
  const kind = kinds[key[0]] ?? `0x${key[0].toString(16)}`;
  keys[kind] = (keys[kind] ?? 0) + 1;
  bytes += key.length + value.length;
}
await store.close();
const total = Object.values(keys).reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ keys, total, bytes, compact_ms: compactMs }));
