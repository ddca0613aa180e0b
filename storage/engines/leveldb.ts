/**
 * LevelDB engine (`classic-level@3.0.0`, maintained by the Level project): prebuilt for Node 18+
 * on x64, arm64 and musl, so it loads wherever Node does. Synced batches are honoured and written
 * off the event loop, and concurrent synced batches share fsyncs (shared/dependencies.md).
 */
import { ClassicLevel } from 'classic-level';
import { EngineClosedError, prefixEnd, type KvEngine, type KvOp } from '../kv.js';

export class LevelEngine implements KvEngine {
  readonly name = 'leveldb';
  private dbOrUndefined: ClassicLevel<Buffer, Buffer> | undefined;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(private readonly location: string) {}

  async open(): Promise<void> {
    // Created here, not in the constructor: ClassicLevel makes its directory as soon as it exists,
    // and KvStore checks the data directory before any engine touches it.
    const db = new ClassicLevel<Buffer, Buffer>(this.location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open({ createIfMissing: true, errorIfExists: false });
    } catch (err) {
      // classic-level says only "Database failed to open" and keeps what went wrong (lock held by
      // another process, read-only file system, permission denied) in `cause`: KvStore explains
      // open failures from the message, so the cause goes into it.
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
      throw cause ? new Error(`${(err as Error).message}: ${cause.message}`, { cause: err }) : err;
    }
    this.dbOrUndefined = db;
    this.state = 'open';
  }

  private get db(): ClassicLevel<Buffer, Buffer> {
    if (this.state !== 'open' || !this.dbOrUndefined) throw new EngineClosedError(this.name);
    return this.dbOrUndefined;
  }

  private check(): void {
    if (this.state !== 'open') throw new EngineClosedError(this.name);
  }

  async write(ops: readonly KvOp[], sync: boolean): Promise<void> {
    // A chained batch: the array form copies every operation object first, which on Node 20 cost
    // several times the write itself (measured: bench/README.md, persist-qos1-leveldb).
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    await batch.write({ sync });
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.check();
    return this.db.get(key);
  }

  async *iterate(prefix: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    this.check();
    const end = prefixEnd(prefix);
    // An iterator reads from an implicit snapshot: a consistent view even while writes go on.
    for await (const entry of this.db.iterator({ gte: prefix, ...(end ? { lt: end } : {}) })) {
      if (this.state !== 'open') throw new EngineClosedError(this.name);
      yield entry;
    }
  }

  async compact(): Promise<void> {
    this.check();
    await this.db.compactRange(Buffer.alloc(0), Buffer.alloc(64, 0xff));
  }

  async close(): Promise<void> {
    const db = this.dbOrUndefined;
    if (this.state !== 'open' || !db) {
      this.state = 'closed';
      return;
    }
    this.state = 'closed';
    await db.close();
  }
}
