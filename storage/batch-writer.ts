/**
 * BatchWriter: group commit. Every op queued during one event-loop turn joins one batch, written
 * with one synchronous store.write; the promise each caller gets resolves when its batch is on disk.
 * Batches never overlap: while one is being written the next one collects ops, so a later delete
 * can never land before the put it undoes, and one fsync covers everything that arrived meanwhile.
 */
import type { Store, WriteOp } from './store.js';

interface Batch {
  readonly ops: WriteOp[];
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A failed batch is reported to whoever awaits it; nobody awaiting must not crash the process.
  done.catch(() => undefined);
  return { ops: [], done, resolve, reject };
}

export class BatchWriter {
  private collecting: Batch | undefined;
  private writing: Batch | undefined;
  private scheduled = false;
  /** Ops ever queued; lets a caller tell whether its own work added any. */
  private queued = 0;
  /** Told after each successful commit: its duration in seconds and its number of ops (metrics). */
  onCommit: ((seconds: number, ops: number) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly onError: (err: unknown, ops: number) => void = () => undefined,
  ) {}

  get opsQueued(): number {
    return this.queued;
  }

  /** Queues one op; returns the promise of the batch it joined. */
  add(op: WriteOp): Promise<void> {
    const batch = (this.collecting ??= newBatch());
    batch.ops.push(op);
    this.queued++;
    if (!this.scheduled && !this.writing) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return batch.done;
  }

  /** Resolves once everything queued so far is on disk. */
  barrier(): Promise<void> {
    return this.collecting?.done ?? this.writing?.done ?? Promise.resolve();
  }

  /** The promise of the batch now collecting, if it holds anything. */
  current(): Promise<void> | undefined {
    return this.collecting?.done;
  }

  /** Writes whatever is queued and waits for it (used at shutdown). */
  async drain(): Promise<void> {
    while (this.collecting || this.writing) {
      await this.barrier().catch(() => undefined);
      if (this.collecting && !this.writing && !this.scheduled) this.flush();
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.collecting;
    if (!batch || this.writing) return;
    this.collecting = undefined;
    this.writing = batch;
    const started = performance.now();
    // A store that throws instead of rejecting must fail only this batch: thrown here, in a
    // setImmediate, it would crash the process and leave `writing` set, stopping all later writes.
    let written: Promise<void>;
    try {
      written = this.store.write(batch.ops);
    } catch (err) {
      written = Promise.reject(err);
    }
    written.then(
      () => {
        this.onCommit?.((performance.now() - started) / 1000, batch.ops.length);
        this.finish(batch, undefined);
      },
      (err: unknown) => this.finish(batch, err ?? new Error('write failed')),
    );
  };

  private finish(batch: Batch, err: unknown): void {
    this.writing = undefined;
    if (err === undefined) batch.resolve();
    else {
      this.onError(err, batch.ops.length);
      batch.reject(err);
    }
    if (this.collecting) this.flush();
  }
}
