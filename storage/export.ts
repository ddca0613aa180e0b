/**
 * Backup and restore: a data directory as one portable file, the same whichever engine wrote it.
 *
 * The file is JSON Lines: a header `{"junction":"data-export","version":1,"format":1}`, then one
 * line per stored record in key order, `{"t":"<kind>","k":"<base64 key>","v":"<base64 value>"}`.
 * Records are the KvStore's own (storage/codec.ts), so everything durable is carried without this
 * file knowing each kind (sessions, subscriptions, pending and in-flight messages, retained, and
 * whatever later kinds are added), and a rocksdb -> file -> leveldb -> file round trip gives the
 * same bytes. The meta keys (format, engine) are not exported: import writes its own.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { FORMAT_VERSION, Prefix } from './codec.js';
import type { KvStore } from './kv-store.js';

export const EXPORT_VERSION = 1;

const KINDS = new Map<number, string>([
  [Prefix.message, 'message'],
  [Prefix.retained, 'retained'],
  [Prefix.session, 'session'],
  [Prefix.subscription, 'subscription'],
  [Prefix.pending, 'pending'],
  [Prefix.incoming, 'incoming'],
  [Prefix.queue, 'queue'],
  [Prefix.queueEntry, 'queue-entry'],
  [Prefix.delayed, 'delayed'],
]);

export function exportHeader(): string {
  return JSON.stringify({ junction: 'data-export', version: EXPORT_VERSION, format: FORMAT_VERSION });
}

/** The export file's lines (each without its newline). */
export async function* exportLines(store: KvStore): AsyncIterable<string> {
  yield exportHeader();
  for await (const [k, v] of store.records()) {
    yield JSON.stringify({ t: KINDS.get(k[0]!) ?? 'other', k: k.toString('base64'), v: v.toString('base64') });
  }
}

export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

/**
 * Reads an export file into `store`, which must be open and empty. Returns the records written.
 * Batches of 1,000 records, each synced; the directory is only complete when this resolves.
 */
export async function importFile(store: KvStore, file: string): Promise<number> {
  if (!(await store.isEmpty())) throw new ImportError(`data directory ${store.dir} already holds data; import only into an empty one`);
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let lineNo = 0;
  let count = 0;
  let batch: Array<readonly [Buffer, Buffer]> = [];
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new ImportError(`${file}:${lineNo}: not JSON`);
    }
    if (lineNo === 1) {
      const h = rec as { junction?: unknown; version?: unknown; format?: unknown };
      if (h.junction !== 'data-export') throw new ImportError(`${file}: not a Junction export (no data-export header)`);
      if (h.version !== EXPORT_VERSION) throw new ImportError(`${file}: export version ${String(h.version)}; this build reads ${EXPORT_VERSION}`);
      if (h.format !== FORMAT_VERSION) throw new ImportError(`${file}: data format ${String(h.format)}; this build reads ${FORMAT_VERSION}`);
      continue;
    }
    const r = rec as { k?: unknown; v?: unknown };
    if (typeof r.k !== 'string' || typeof r.v !== 'string') throw new ImportError(`${file}:${lineNo}: record without k and v`);
    const key = Buffer.from(r.k, 'base64');
    if (key.length === 0 || key[0] === Prefix.meta) throw new ImportError(`${file}:${lineNo}: invalid record key`);
    batch.push([key, Buffer.from(r.v, 'base64')]);
    count++;
    if (batch.length >= 1000) {
      await store.writeRecords(batch);
      batch = [];
    }
  }
  if (lineNo === 0) throw new ImportError(`${file}: empty file`);
  if (batch.length > 0) await store.writeRecords(batch);
  return count;
}
