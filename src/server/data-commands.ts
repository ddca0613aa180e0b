/**
 * `junction data export` and `junction data import`: backup and restore of a data directory
 * through the portable export file (storage/export.ts), across engines and Node versions.
 */
import { createWriteStream, existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { chooseEngine, recordedEngine, type DiskEngine } from '../../storage/engine-choice.js';
import { LevelEngine } from '../../storage/engines/leveldb.js';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { exportLines, importFile } from '../../storage/export.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import { StoreOpenError } from '../../storage/store.js';
import { connectControl } from './control.js';

export function diskStore(dir: string, engine: DiskEngine): KvStore {
  const kv = engine === 'rocksdb' ? new RocksEngine(engineDir(dir, engine)) : new LevelEngine(engineDir(dir, engine));
  return new KvStore(dir, kv, true);
}

/** Writes to `out` (atomically: a temporary file renamed at the end) or to stdout. */
async function writeOut(source: AsyncIterable<string | Buffer>, out: string | undefined): Promise<void> {
  if (out === undefined) {
    await pipeline(Readable.from(source), process.stdout, { end: false });
    return;
  }
  const tmp = `${out}.partial`;
  await pipeline(Readable.from(source), createWriteStream(tmp));
  renameSync(tmp, out);
}

async function* withNewlines(lines: AsyncIterable<string>): AsyncIterable<string> {
  for await (const l of lines) yield l + '\n';
}

export async function dataExport(dataDir: string, out: string | undefined): Promise<string> {
  const dir = resolve(dataDir);
  if (!existsSync(dir) || recordedEngine(dir) === undefined) {
    throw new StoreOpenError(`${dir} is not a Junction data directory (no junction.json)`);
  }
  const live = await connectControl(dir);
  if (live) {
    await writeOut(live, out);
    return `exported ${dir} from the running broker`;
  }
  const choice = chooseEngine('auto', dir);
  if (choice.engine === 'memory') throw new StoreOpenError('nothing to export from a memory store');
  const store = diskStore(dir, choice.engine);
  await store.openEngine();
  try {
    await writeOut(withNewlines(exportLines(store)), out);
  } finally {
    await store.close();
  }
  return `exported ${dir} (${choice.engine}, broker not running)`;
}

export async function dataImport(dataDir: string, engine: DiskEngine, file: string): Promise<string> {
  const dir = resolve(dataDir);
  if (!existsSync(file) || !statSync(file).isFile()) throw new StoreOpenError(`${file}: no such file`);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new StoreOpenError(`data directory ${dir} is not empty: import only into a new or empty directory`);
  }
  chooseEngine(engine, dir); // refuses rocksdb where its binary cannot load, saying how to build it
  const store = diskStore(dir, engine);
  await store.openEngine();
  try {
    const n = await importFile(store, file);
    return `imported ${n} records into ${dir} (${engine})`;
  } finally {
    await store.close();
  }
}
