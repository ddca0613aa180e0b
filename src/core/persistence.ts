/**
 * Persistence: what the core writes, and when. Wraps the BatchWriter with the reference counts
 * that let a message fanned out to many sessions be stored once: the first durable reference
 * writes `message.put`, the last one released writes `message.del` (mosquitto's msg_store ref_count).
 * Only durable state references messages: pending rows of persistent sessions and retained topics.
 */
import type { BatchWriter } from '../../storage/batch-writer.js';
import type { WriteOp } from '../../storage/store.js';
import type { Message } from './message.js';

export class Persistence {
  private readonly refs = new Map<number, number>();

  constructor(private readonly writer: BatchWriter) {}

  /** Count of durable writes ever queued: compare before/after to see whether a call wrote. */
  get mark(): number {
    return this.writer.opsQueued;
  }

  write(op: WriteOp): void {
    void this.writer.add(op);
  }

  ref(msg: Message): void {
    const n = this.refs.get(msg.id) ?? 0;
    if (n === 0) this.write({ kind: 'message.put', message: msg });
    this.refs.set(msg.id, n + 1);
  }

  unref(msg: Message): void {
    const n = this.refs.get(msg.id);
    if (n === undefined) return;
    if (n > 1) this.refs.set(msg.id, n - 1);
    else {
      this.refs.delete(msg.id);
      this.write({ kind: 'message.del', id: msg.id });
    }
  }

  /** Counts a reference that is already on disk (restore at start). */
  restoreRef(id: number): void {
    this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
  }

  referenced(id: number): boolean {
    return this.refs.has(id);
  }

  /** Resolves when everything written so far is on disk. */
  barrier(): Promise<void> {
    return this.writer.barrier();
  }

  /** The durability promise for writes made since `mark`, or undefined when there were none. */
  since(mark: number): Promise<void> | undefined {
    return this.writer.opsQueued === mark ? undefined : this.writer.barrier();
  }
}
