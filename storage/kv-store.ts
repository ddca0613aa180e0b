/**
 * KvStore: the Store interface on a disk KvEngine (RocksDB; LevelDB later), in a data directory:
 *
 *   <dir>/junction.json   { "format": 1, "engine": "rocksdb" }: checked before anything is opened
 *   <dir>/<engine>/       the engine's own files
 *
 * A directory written by another engine or by a newer format, or one that holds something other
 * than Junction data, is refused untouched. One `write` is one engine batch, synced unless
 * `storage.sync: false`.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from '../src/core/message.js';
import {
  FORMAT_VERSION,
  Prefix,
  decodeMessage,
  decodeSession,
  messageIdOf,
  metaKey,
  parseJson,
  splitClientKey,
  toKvOps,
} from './codec.js';
import { EngineClosedError, type KvEngine } from './kv.js';
import {
  StoreClosedError,
  StoreOpenError,
  type DelayedRecord,
  type PendingRecord,
  type QueueEntryRecord,
  type QueueRecord,
  type SessionRecord,
  type StoredState,
  type Store,
  type SubscriptionRecord,
  type WriteOp,
} from './store.js';

interface DirMeta {
  readonly format: number;
  readonly engine: string;
}

const META_FILE = 'junction.json';

export class KvStore implements Store {
  /** A write failed: reopen the engine before the next one (see write). */
  private damaged = false;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly kv: KvEngine,
    private readonly sync: boolean,
  ) {}

  get engine(): string {
    return this.kv.name;
  }

  async open(): Promise<StoredState> {
    await this.openEngine();
    return this.load();
  }

  /** Checks the directory and opens the engine without loading anything (export, import, compaction). */
  async openEngine(): Promise<void> {
    this.prepareDir();
    try {
      await this.kv.open();
    } catch (err) {
      throw new StoreOpenError(explainOpenError(this.dir, this.kv.name, err));
    }
    const format = await this.kv.get(metaKey('format'));
    if (format === undefined) {
      await this.kv.write(
        [
          { type: 'put', key: metaKey('format'), value: Buffer.from(String(FORMAT_VERSION)) },
          { type: 'put', key: metaKey('engine'), value: Buffer.from(this.kv.name) },
        ],
        true,
      );
    } else if (Number(format.toString()) !== FORMAT_VERSION) {
      await this.kv.close();
      throw new StoreOpenError(`data directory ${this.dir} holds format ${format.toString()}; this build reads format ${FORMAT_VERSION}`);
    }
  }

  /**
   * Every record but the meta keys, in key order, from one consistent snapshot of the engine (its
   * iterator's): the body of an export, the same whichever engine holds it.
   */
  async *records(): AsyncIterable<readonly [Buffer, Buffer]> {
    for await (const entry of this.kv.iterate(Buffer.alloc(0))) {
      if (entry[0][0] !== Prefix.meta) yield entry;
    }
  }

  /** Writes imported records (one batch per call; synced). */
  writeRecords(entries: ReadonlyArray<readonly [Buffer, Buffer]>): Promise<void> {
    return this.kv.write(
      entries.map(([key, value]) => ({ type: 'put', key, value })),
      true,
    );
  }

  /** True when the store holds no records (meta keys aside). */
  async isEmpty(): Promise<boolean> {
    for await (const _ of this.records()) return false;
    return true;
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    // The Store contract has one error for "closed", whatever the engine underneath.
    if (this.closed) throw new StoreClosedError(this.engine);
    if (this.damaged) {
      // After a failed write (disk full, I/O error) the engine's log may end in a torn record, and
      // RocksDB appends the next batches after it, acknowledges them, and drops them at the next
      // open, whose replay stops at the tear. Reopening replays up to the tear and starts a new log.
      // While that fails too (disk still full) this write fails and the next one tries again.
      await this.kv.close().catch(() => undefined);
      await this.kv.open();
      this.damaged = false;
    }
    try {
      await this.kv.write(toKvOps(ops), this.sync);
    } catch (err) {
      if (err instanceof EngineClosedError) throw new StoreClosedError(this.engine);
      this.damaged = true;
      throw err;
    }
  }

  compact(): Promise<void> {
    return this.kv.compact();
  }

  close(): Promise<void> {
    this.closed = true;
    return this.kv.close();
  }

  /** Creates or checks the data directory and its junction.json, before the engine touches it. */
  private prepareDir(): void {
    const metaPath = join(this.dir, META_FILE);
    let entries: string[];
    try {
      mkdirSync(this.dir, { recursive: true });
      entries = readdirSync(this.dir);
    } catch (err) {
      throw new StoreOpenError(`cannot use data directory ${this.dir}: ${(err as Error).message}`);
    }
    if (!existsSync(metaPath)) {
      if (entries.length > 0) {
        throw new StoreOpenError(
          `data directory ${this.dir} is not empty and has no ${META_FILE}: it is not a Junction data directory; refusing to touch it`,
        );
      }
      const meta: DirMeta = { format: FORMAT_VERSION, engine: this.kv.name };
      try {
        writeFileSync(metaPath, JSON.stringify(meta, null, 2) + '\n');
      } catch (err) {
        // A read-only or full file system: an operator's error to report, not a crash with a stack.
        throw new StoreOpenError(`cannot use data directory ${this.dir}: ${(err as Error).message}`);
      }
      return;
    }
    let meta: DirMeta;
    try {
      meta = JSON.parse(readFileSync(metaPath, 'utf8')) as DirMeta;
    } catch (err) {
      throw new StoreOpenError(`cannot read ${metaPath}: ${(err as Error).message}`);
    }
    if (typeof meta.format !== 'number' || meta.format > FORMAT_VERSION) {
      throw new StoreOpenError(
        `data directory ${this.dir} was written in format ${String(meta.format)}, newer than this build's ${FORMAT_VERSION}: upgrade Junction`,
      );
    }
    if (meta.engine !== this.kv.name) {
      throw new StoreOpenError(
        `data directory ${this.dir} belongs to the ${meta.engine} engine, not ${this.kv.name}: start with --storage ${meta.engine}, or export and import it (junction data export/import)`,
      );
    }
  }

  private async load(): Promise<StoredState> {
    const messages = new Map<number, Message>();
    const sessions: SessionRecord[] = [];
    const subscriptions: { clientId: string; sub: SubscriptionRecord }[] = [];
    const pending: { clientId: string; entry: PendingRecord }[] = [];
    const incoming: { clientId: string; packetId: number }[] = [];
    const retained: { topic: string; messageId: number }[] = [];
    const queues: QueueRecord[] = [];
    const queueEntries: { queue: string; entry: QueueEntryRecord }[] = [];
    const delayed: DelayedRecord[] = [];
    for await (const [key, value] of this.kv.iterate(Buffer.alloc(0))) {
      switch (key[0]) {
        case Prefix.message: {
          const id = messageIdOf(key);
          messages.set(id, decodeMessage(id, value));
          break;
        }
        case Prefix.retained:
          retained.push({ topic: key.toString('utf8', 1), messageId: parseJson<number>(value) });
          break;
        case Prefix.session:
          sessions.push(decodeSession(value));
          break;
        case Prefix.subscription:
          subscriptions.push({ clientId: splitClientKey(key).clientId, sub: parseJson<SubscriptionRecord>(value) });
          break;
        case Prefix.pending:
          pending.push({ clientId: splitClientKey(key).clientId, entry: parseJson<PendingRecord>(value) });
          break;
        case Prefix.incoming: {
          const { clientId, rest } = splitClientKey(key);
          incoming.push({ clientId, packetId: rest.readUInt16BE(0) });
          break;
        }
        case Prefix.queue:
          queues.push(parseJson<QueueRecord>(value));
          break;
        case Prefix.queueEntry:
          queueEntries.push({ queue: splitClientKey(key).clientId, entry: parseJson<QueueEntryRecord>(value) });
          break;
        case Prefix.delayed:
          delayed.push(parseJson<DelayedRecord>(value));
          break;
      }
    }
    return { messages, sessions, subscriptions, pending, incoming, retained, queues, queueEntries, delayed };
  }
}

function explainOpenError(dir: string, engine: string, err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/lock/i.test(msg) && /(unavailable|held|resource|busy)/i.test(msg)) {
    return `data directory ${dir} is in use by another running broker (${engine} lock held); stop it or use another --data-dir`;
  }
  if (/permission|EACCES/i.test(msg)) return `cannot open data directory ${dir}: permission denied (${msg})`;
  if (/corrupt/i.test(msg)) return `data directory ${dir} is corrupt: ${msg}`;
  return `cannot open ${engine} data in ${dir}: ${msg}`;
}

export function engineDir(dir: string, engine: string): string {
  return join(dir, engine);
}
