/**
 * RocksDB engine (`rocksdb@5.2.1`, Level's N-API binding of RocksDB 6.17): a promise adapter over
 * its callback API. The binding is loaded on first open, never at import, because on Node versions
 * its prebuilt binary does not support, loading it aborts the whole process (shared/dependencies.md).
 */
import { createRequire } from 'node:module';
import { EngineClosedError, prefixEnd, type KvEngine, type KvOp } from '../kv.js';

type Callback = (err: Error | undefined | null) => void;

/** The part of the binding's (abstract-leveldown 7) API used here, typed by us. */
interface RocksIterator {
  next(cb: (err: Error | undefined | null, key?: Buffer, value?: Buffer) => void): void;
  end(cb: Callback): void;
}
interface RocksDB {
  open(options: { createIfMissing: boolean; errorIfExists: boolean }, cb: Callback): void;
  batch(ops: KvOp[], options: { sync: boolean }, cb: Callback): void;
  get(key: Buffer, options: { asBuffer: true }, cb: (err: Error | undefined | null, value?: Buffer) => void): void;
  iterator(options: { gte: Buffer; lt?: Buffer; keyAsBuffer: true; valueAsBuffer: true }): RocksIterator;
  compactRange(start: Buffer, end: Buffer, cb: Callback): void;
  close(cb: Callback): void;
}
type RocksFactory = (location: string) => RocksDB;

export class RocksEngine implements KvEngine {
  readonly name = 'rocksdb';
  private db: RocksDB | undefined;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(private readonly location: string) {}

  async open(): Promise<void> {
    const require = createRequire(import.meta.url);
    const factory = require('rocksdb') as RocksFactory;
    const db = factory(this.location);
    await new Promise<void>((resolve, reject) =>
      db.open({ createIfMissing: true, errorIfExists: false }, (err) => (err ? reject(err) : resolve())),
    );
    this.db = db;
    this.state = 'open';
  }

  private live(): RocksDB {
    if (this.state !== 'open' || !this.db) throw new EngineClosedError(this.name);
    return this.db;
  }

  write(ops: readonly KvOp[], sync: boolean): Promise<void> {
    let db: RocksDB;
    try {
      db = this.live();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      db.batch(ops as KvOp[], { sync }, (err) => (err ? reject(err) : resolve()));
    });
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    let db: RocksDB;
    try {
      db = this.live();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      db.get(key, { asBuffer: true }, (err, value) => {
        if (err) {
          if (/notfound/i.test(err.message)) resolve(undefined);
          else reject(err);
          return;
        }
        resolve(value);
      });
    });
  }

  async *iterate(prefix: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    const db = this.live();
    const end = prefixEnd(prefix);
    const it = db.iterator({ gte: prefix, ...(end ? { lt: end } : {}), keyAsBuffer: true, valueAsBuffer: true });
    try {
      for (;;) {
        if (this.state !== 'open') throw new EngineClosedError(this.name);
        const entry = await new Promise<[Buffer, Buffer] | undefined>((resolve, reject) =>
          it.next((err, key, value) => (err ? reject(err) : resolve(key === undefined || value === undefined ? undefined : [key, value]))),
        );
        if (!entry) return;
        yield entry;
      }
    } finally {
      await new Promise<void>((resolve) => it.end(() => resolve()));
    }
  }

  compact(): Promise<void> {
    const db = this.live();
    return new Promise((resolve, reject) =>
      db.compactRange(Buffer.alloc(0), Buffer.alloc(64, 0xff), (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    if (this.state !== 'open' || !this.db) {
      this.state = 'closed';
      return;
    }
    const db = this.db;
    // Mark closed first: a call racing with close must be refused, not reach the native code.
    this.state = 'closed';
    await new Promise<void>((resolve, reject) => db.close((err) => (err ? reject(err) : resolve())));
  }
}
