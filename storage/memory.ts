/**
 * MemoryStore: the storage interface held in Maps. Used by tests and by `--storage memory` for
 * users who want no disk. It applies batches exactly as a disk store would (in order, all at once),
 * so a broker restarted on the same MemoryStore instance recovers like one restarted on disk.
 */
import type {
  DelayedRecord,
  MessageRecord,
  QueueEntryRecord,
  QueueRecord,
  PendingRecord,
  SessionRecord,
  StoredState,
  Store,
  SubscriptionRecord,
  WriteOp,
} from './store.js';
import { StoreClosedError } from './store.js';

export class MemoryStore implements Store {
  readonly engine = 'memory';
  private readonly messages = new Map<number, MessageRecord>();
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly subs = new Map<string, Map<string, SubscriptionRecord>>();
  private readonly pending = new Map<string, Map<number, PendingRecord>>();
  private readonly incoming = new Map<string, Set<number>>();
  private readonly retained = new Map<string, number>();
  private readonly queues = new Map<string, QueueRecord>();
  private readonly queueEntries = new Map<string, Map<number, QueueEntryRecord>>();
  private readonly delayed = new Map<number, DelayedRecord>();
  private closed = false;

  async open(): Promise<StoredState> {
    this.closed = false;
    const subscriptions = [...this.subs].flatMap(([clientId, m]) => [...m.values()].map((sub) => ({ clientId, sub })));
    const pending = [...this.pending].flatMap(([clientId, m]) =>
      [...m.values()].sort((a, b) => a.seq - b.seq).map((entry) => ({ clientId, entry })),
    );
    const incoming = [...this.incoming].flatMap(([clientId, s]) => [...s].map((packetId) => ({ clientId, packetId })));
    return {
      messages: new Map(this.messages),
      sessions: [...this.sessions.values()],
      subscriptions,
      pending,
      incoming,
      retained: [...this.retained].map(([topic, messageId]) => ({ topic, messageId })),
      queues: [...this.queues.values()],
      queueEntries: [...this.queueEntries].flatMap(([queue, m]) =>
        [...m.values()].sort((a, b) => a.seq - b.seq).map((entry) => ({ queue, entry })),
      ),
      delayed: [...this.delayed.values()].sort((a, b) => a.seq - b.seq),
    };
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.closed) throw new StoreClosedError(this.engine);
    for (const op of ops) this.apply(op);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Rows held, for tests that check that space is freed. */
  counts(): Record<string, number> {
    let subs = 0;
    let pending = 0;
    let incoming = 0;
    for (const m of this.subs.values()) subs += m.size;
    for (const m of this.pending.values()) pending += m.size;
    for (const s of this.incoming.values()) incoming += s.size;
    let queueEntries = 0;
    for (const m of this.queueEntries.values()) queueEntries += m.size;
    return {
      messages: this.messages.size,
      sessions: this.sessions.size,
      subs,
      pending,
      incoming,
      retained: this.retained.size,
      queues: this.queues.size,
      queueEntries,
      delayed: this.delayed.size,
    };
  }

  private apply(op: WriteOp): void {
    switch (op.kind) {
      case 'message.put':
        this.messages.set(op.message.id, op.message);
        break;
      case 'message.del':
        this.messages.delete(op.id);
        break;
      case 'session.put':
        this.sessions.set(op.session.clientId, op.session);
        break;
      case 'session.del':
        this.sessions.delete(op.clientId);
        this.subs.delete(op.clientId);
        this.pending.delete(op.clientId);
        this.incoming.delete(op.clientId);
        break;
      case 'sub.put':
        inner(this.subs, op.clientId).set(op.sub.key, op.sub);
        break;
      case 'sub.del':
        this.subs.get(op.clientId)?.delete(op.key);
        break;
      case 'pending.put':
        inner(this.pending, op.clientId).set(op.entry.seq, op.entry);
        break;
      case 'pending.del':
        this.pending.get(op.clientId)?.delete(op.seq);
        break;
      case 'incoming.put': {
        let s = this.incoming.get(op.clientId);
        if (!s) this.incoming.set(op.clientId, (s = new Set()));
        s.add(op.packetId);
        break;
      }
      case 'incoming.del':
        this.incoming.get(op.clientId)?.delete(op.packetId);
        break;
      case 'retained.put':
        this.retained.set(op.topic, op.messageId);
        break;
      case 'retained.del':
        this.retained.delete(op.topic);
        break;
      case 'queue.put':
        this.queues.set(op.queue.name, op.queue);
        break;
      case 'queue.del':
        this.queues.delete(op.name);
        break;
      case 'qentry.put':
        inner(this.queueEntries, op.queue).set(op.entry.seq, op.entry);
        break;
      case 'qentry.del':
        this.queueEntries.get(op.queue)?.delete(op.seq);
        break;
      case 'delayed.put':
        this.delayed.set(op.entry.seq, op.entry);
        break;
      case 'delayed.del':
        this.delayed.delete(op.seq);
        break;
    }
  }
}

function inner<K, V>(outer: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let m = outer.get(key);
  if (!m) outer.set(key, (m = new Map()));
  return m;
}
