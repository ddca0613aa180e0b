/**
 * LevelDB engine (`classic-level@3.0.0`, maintained by the Level project): prebuilt for Node 18+
 * on x64, arm64 and musl, so it loads wherever Node does. Synced batches are honoured and written
 * off the event loop, and concurrent synced batches share fsyncs (shared/dependencies.md).
 */
import { ClassicLevel } from 'classic-level';
import { EngineClosedError, prefixEnd, type KvEngine, type KvOp } from '../kv.js';

export class LevelEngine implements KvEngine {
  readonly name = 'leveldb';
  private readonly db: ClassicLevel<Buffer, Buffer>;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(location: string) {
    this.db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  }

  async open(): Promise<void> {
    await this.db.open({ createIfMissing: true, errorIfExists: false });
    this.state = 'open';
  }

  private check(): void {
    if (this.state !== 'open') throw new EngineClosedError(this.name);
  }

  async write(ops: readonly KvOp[], sync: boolean): Promise<void> {
    this.check();
    await this.db.batch(ops as KvOp[], { sync });
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
    if (this.state !== 'open') {
      this.state = 'closed';
      return;
    }
    this.state = 'closed';
    await this.db.close();
  }
}
