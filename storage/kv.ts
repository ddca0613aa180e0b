/**
 * KvEngine: the small key-value interface every disk engine sits under (RocksDB, LevelDB).
 * Keys and values are bytes; keys iterate in byte order. A batch is atomic; with `sync` it resolves
 * only after the engine's fsync. Any call after `close()` rejects with EngineClosedError: the native
 * bindings crash the process when used after close (shared/dependencies.md), so the guard is here.
 */

export type KvOp = { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer } | { readonly type: 'del'; readonly key: Buffer };

export interface KvEngine {
  readonly name: string;
  open(): Promise<void>;
  write(ops: readonly KvOp[], sync: boolean): Promise<void>;
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Entries whose key starts with `prefix`, in key order. */
  iterate(prefix: Buffer): AsyncIterable<readonly [Buffer, Buffer]>;
  /** Rewrites the whole key range (frees space left by deletes); used by benchmarks and admin. */
  compact(): Promise<void>;
  close(): Promise<void>;
}

export class EngineClosedError extends Error {
  constructor(engine: string) {
    super(`${engine} engine is closed`);
    this.name = 'EngineClosedError';
  }
}

/** The smallest key greater than every key starting with `prefix` (for an exclusive upper bound). */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}
