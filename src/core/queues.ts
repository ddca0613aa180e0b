/**
 * Durable named queues: point-to-point delivery shared by both protocols (design.md "Queues").
 *
 * A queue holds entries in priority order (0-9, higher first; FIFO within a priority) and hands
 * each to exactly one consumer, round robin among those with room (prefetch, socket, window). An
 * entry leaves the queue only when its consumer acknowledges it. A consumer that goes away or
 * NACKs gives its entries back, marked redelivered; after `maxDeliveries` attempts, on a NACK with
 * requeue refused, or on expiry when the queue says so, an entry moves to `DLQ.<name>` with its
 * origin and reason. Every change is written through Persistence, so a queue survives kill -9
 * exactly as sessions do: entries reference messages stored once.
 *
 * Queues are created on first use: STOMP /queue/<name>, MQTT `$queue/<name>` (publish to enqueue,
 * subscribe to consume), and topic bindings from the config.
 */
import { isExpired, type Message, type UserProperty } from './message.js';
import type { Persistence } from './persistence.js';
import type { DeliverySource, RoomListener, Session, Subscription } from './session.js';
import { DEAD_LETTER_REASONS, type Stats } from './stats.js';
import type { QueueEntryRecord, QueueRecord } from '../../storage/store.js';

export interface QueueOptions {
  /** Delivery attempts before an entry is dead-lettered. */
  readonly maxDeliveries: number;
  /** Dead-letter expired entries instead of dropping them. */
  readonly deadLetterExpired: boolean;
  /** Unacknowledged entries per consumer when its subscription names none. */
  readonly defaultPrefetch: number;
}

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = { maxDeliveries: 5, deadLetterExpired: false, defaultPrefetch: 100 };

export const DLQ_PREFIX = 'DLQ.';
const PRIORITIES = 10;
const DEFAULT_PRIORITY = 4;

export type DeadLetterReason = 'rejected' | 'expired' | 'max_deliveries';

export class QueueEntry implements DeliverySource {
  consumer: Consumer | undefined;
  constructor(
    readonly queue: Queue,
    readonly seq: number,
    readonly message: Message,
    readonly priority: number,
    public deliveries: number,
    public redelivered: boolean,
    readonly deadLetter: QueueEntryRecord['deadLetter'],
  ) {}

  get annotations(): readonly UserProperty[] | undefined {
    const d = this.deadLetter;
    // RabbitMQ's names, so that tools written for its dead-letter queues read ours.
    return d ? [['x-first-death-queue', d.queue], ['x-first-death-reason', d.reason]] : undefined;
  }

  settle(outcome: 'acked' | 'requeue' | 'reject'): void {
    this.queue.settle(this, outcome);
  }

  record(): QueueEntryRecord {
    const r: QueueEntryRecord = {
      seq: this.seq,
      messageId: this.message.id,
      priority: this.priority,
      deliveries: this.deliveries,
      redelivered: this.redelivered,
    };
    return this.deadLetter ? { ...r, deadLetter: this.deadLetter } : r;
  }
}

export class Consumer {
  /** Entries delivered and not yet settled. */
  out = 0;
  constructor(
    readonly session: Session,
    readonly sub: Subscription,
    readonly prefetch: number,
  ) {}
}

export class Queue implements RoomListener {
  private readonly ready: QueueEntry[][] = Array.from({ length: PRIORITIES }, () => []);
  private readyCount = 0;
  private readonly consumers: Consumer[] = [];
  private next = 0;
  private nextSeq = 1;
  private dispatching = false;
  /** Entries out for delivery. */
  unacked = 0;
  /** Set by the router per publish so that several matching bindings enqueue once. */
  matchEpoch = 0;

  constructor(
    readonly name: string,
    private readonly registry: QueueRegistry,
  ) {}

  get depth(): number {
    return this.readyCount + this.unacked;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  /** Adds `msg` at the back of its priority. */
  enqueue(msg: Message, deadLetter?: QueueEntryRecord['deadLetter']): QueueEntry {
    const entry = new QueueEntry(this, this.nextSeq++, msg, priorityOf(msg), 0, false, deadLetter);
    const p = this.registry.persist;
    p.ref(msg);
    p.write({ kind: 'qentry.put', queue: this.name, entry: entry.record() });
    this.ready[entry.priority]!.push(entry);
    this.readyCount++;
    this.dispatch();
    return entry;
  }

  /** Puts a stored entry back at start (restart). */
  restore(entry: QueueEntry): void {
    if (entry.seq >= this.nextSeq) this.nextSeq = entry.seq + 1;
    this.registry.persist.restoreRef(entry.message.id);
    this.ready[entry.priority]!.push(entry);
    this.readyCount++;
  }

  addConsumer(session: Session, sub: Subscription): void {
    this.removeConsumer(session, sub.key);
    this.consumers.push(new Consumer(session, sub, sub.prefetch ?? this.registry.options.defaultPrefetch));
    session.roomListeners.add(this);
    this.dispatch();
  }

  removeConsumer(session: Session, key: string): void {
    const i = this.consumers.findIndex((c) => c.session === session && c.sub.key === key);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.next > i) this.next--;
    if (!this.consumers.some((c) => c.session === session)) session.roomListeners.delete(this);
  }

  /** Hands ready entries to consumers with room, highest priority first. */
  dispatch(): void {
    // settle() from inside a delivery (auto-ack) calls back here: the outer loop carries on.
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      const now = Date.now();
      while (this.readyCount > 0) {
        const entry = this.peek();
        if (isExpired(entry.message, now)) {
          this.take(entry);
          this.registry.stats.expired++;
          if (this.registry.options.deadLetterExpired) this.deadLetter(entry, 'expired');
          else this.remove(entry);
          continue;
        }
        const c = this.pickConsumer();
        if (!c) break;
        this.take(entry);
        entry.deliveries++;
        entry.consumer = c;
        c.out++;
        this.unacked++;
        this.registry.persist.write({ kind: 'qentry.put', queue: this.name, entry: entry.record() });
        c.session.offer(entry.message, [c.sub], false, entry.redelivered, entry);
      }
    } finally {
      this.dispatching = false;
    }
  }

  /** How a delivery ended (DeliverySource.settle). */
  settle(entry: QueueEntry, outcome: 'acked' | 'requeue' | 'reject'): void {
    const c = entry.consumer;
    if (!c) return; // settled already
    entry.consumer = undefined;
    c.out--;
    this.unacked--;
    if (outcome === 'acked') this.remove(entry);
    else if (outcome === 'reject') this.deadLetter(entry, 'rejected', c.session.clientId);
    else if (entry.deliveries >= this.registry.options.maxDeliveries) this.deadLetter(entry, 'max_deliveries', c.session.clientId);
    else {
      entry.redelivered = true;
      this.registry.stats.redelivered++;
      this.registry.persist.write({ kind: 'qentry.put', queue: this.name, entry: entry.record() });
      // Back at the front of its priority: it was first in line before.
      this.ready[entry.priority]!.unshift(entry);
      this.readyCount++;
    }
    this.dispatch();
  }

  /** Removes every ready entry; returns how many. */
  purge(): number {
    let n = 0;
    for (const level of this.ready) {
      for (const e of level.splice(0)) {
        this.remove(e);
        n++;
      }
    }
    this.readyCount = 0;
    return n;
  }

  /** Ready entries in delivery order, without touching them (admin browse). */
  *browse(): IterableIterator<QueueEntry> {
    for (let p = PRIORITIES - 1; p >= 0; p--) yield* this.ready[p]!;
  }

  /** Entries waiting for a consumer (ready). */
  get waiting(): number {
    return this.readyCount;
  }

  /** The ready entry with sequence number `seq` (admin API); entries out for delivery are not. */
  findReady(seq: number): QueueEntry | undefined {
    for (const level of this.ready) {
      const e = level.find((x) => x.seq === seq);
      if (e) return e;
    }
    return undefined;
  }

  /** Deletes a ready entry (admin API); false when it is not ready (gone, or out for delivery). */
  deleteReady(entry: QueueEntry): boolean {
    if (!this.unready(entry)) return false;
    this.remove(entry);
    return true;
  }

  /**
   * Moves a ready entry to the back of `target` as a fresh entry (DLQ replay). The target's put and
   * this queue's delete are queued in the same turn, so they reach storage in one atomic batch: a
   * crash leaves the message in exactly one of the two queues.
   */
  moveReady(entry: QueueEntry, target: Queue): boolean {
    if (target === this || !this.unready(entry)) return false;
    target.enqueue(entry.message); // refs the message first: the delete below cannot free it
    this.remove(entry);
    return true;
  }

  private unready(entry: QueueEntry): boolean {
    const level = this.ready[entry.priority]!;
    const i = level.indexOf(entry);
    if (i < 0) return false;
    level.splice(i, 1);
    this.readyCount--;
    return true;
  }

  private peek(): QueueEntry {
    for (let p = PRIORITIES - 1; p >= 0; p--) {
      const level = this.ready[p]!;
      if (level.length > 0) return level[0]!;
    }
    throw new Error('peek on an empty queue');
  }

  private take(entry: QueueEntry): void {
    this.ready[entry.priority]!.shift();
    this.readyCount--;
  }

  private pickConsumer(): Consumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const c = this.consumers[idx]!;
      if (c.out < c.prefetch && c.session.attached && c.session.canTake(c.sub.qos)) {
        this.next = idx + 1;
        return c;
      }
    }
    return undefined;
  }

  private remove(entry: QueueEntry): void {
    const p = this.registry.persist;
    p.write({ kind: 'qentry.del', queue: this.name, seq: entry.seq });
    p.unref(entry.message);
  }

  /** `consumer`: the client whose reject or last failed delivery sent it there, when there is one. */
  private deadLetter(entry: QueueEntry, reason: DeadLetterReason, consumer?: string): void {
    this.registry.onDeadLetter?.(this.name, entry.message, reason, consumer);
    this.registry.stats.deadLettered++;
    this.registry.stats.deadLetteredBy[DEAD_LETTER_REASONS.indexOf(reason)]!++;
    // The DLQ's own rejects are dropped: a dead letter never loops.
    if (!this.name.startsWith(DLQ_PREFIX)) {
      // As RabbitMQ, a dead letter loses its expiry: else an expired one would expire again in the DLQ.
      const msg = entry.message.expiresAt === undefined ? entry.message : this.registry.withoutExpiry(entry.message);
      this.registry.get(DLQ_PREFIX + this.name).enqueue(msg, { queue: this.name, reason, at: Date.now() });
    }
    this.remove(entry);
  }
}

function priorityOf(msg: Message): number {
  const p = msg.props.priority;
  return p === undefined ? DEFAULT_PRIORITY : Math.max(0, Math.min(PRIORITIES - 1, Math.trunc(p)));
}

export class QueueRegistry {
  readonly queues = new Map<string, Queue>();
  /** Set by the Router: a copy of `msg` with an id of its own and no expiry (dead letters). */
  withoutExpiry: (msg: Message) => Message = (msg) => msg;
  /** Told of each dead-lettered message (log `queue.dead_lettered`, traces). */
  onDeadLetter: ((queue: string, msg: Message, reason: DeadLetterReason, consumer?: string) => void) | undefined;

  constructor(
    readonly persist: Persistence,
    readonly stats: Stats,
    readonly options: QueueOptions = DEFAULT_QUEUE_OPTIONS,
  ) {}

  /** The queue `name`, created (durably) on first use. */
  get(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, this);
      this.queues.set(name, q);
      const rec: QueueRecord = { name, createdAt: Date.now() };
      this.persist.write({ kind: 'queue.put', queue: rec });
    }
    return q;
  }

  /** Re-creates a stored queue without writing it again. */
  restore(rec: QueueRecord): Queue {
    let q = this.queues.get(rec.name);
    if (!q) {
      q = new Queue(rec.name, this);
      this.queues.set(rec.name, q);
    }
    return q;
  }

  /** Deletes a queue and its entries. */
  delete(name: string): boolean {
    const q = this.queues.get(name);
    if (!q) return false;
    q.purge();
    this.queues.delete(name);
    this.persist.write({ kind: 'queue.del', name });
    return true;
  }
}

/** `$queue/<name>` -> name, or undefined for any other topic. */
export function queueNameOf(topic: string): string | undefined {
  return topic.startsWith('$queue/') && topic.length > 7 ? topic.slice(7) : undefined;
}
