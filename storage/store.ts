/**
 * The storage interface: everything durable goes through `Store.write`, an atomic batch that
 * resolves only once it is on disk (synchronous write). Records are plain data that know nothing
 * of any wire format; the core (src/core/persistence.ts) decides what to write and when.
 *
 * Key facts the implementations rely on:
 * - A message is stored once (`message.put`) however many sessions reference it; `pending` rows and
 *   `retained` rows point to it by id, and the core emits `message.del` when the last one goes.
 * - Ops inside one `write` apply in order and all-or-nothing; writes never overlap (BatchWriter).
 */
import type { Message, Protocol, Qos } from '../src/core/message.js';

export type MessageRecord = Message;

export interface WillRecord {
  readonly message: Omit<Message, 'id' | 'createdAt'> & { readonly createdAt: number };
  /** Will Delay Interval in ms. */
  readonly delayMs: number;
  /** ms since epoch at which the will is due (will delay), or undefined while the client is connected. */
  readonly dueAt?: number;
}

export interface SessionRecord {
  readonly clientId: string;
  readonly protocol: Protocol;
  /** Session Expiry Interval in seconds; 0xFFFFFFFF never expires. */
  readonly expiryInterval: number;
  /** The username the client last authenticated with (ACL checks while it is away). */
  readonly username?: string;
  /** ms since epoch when the client went away; absent while connected. */
  readonly disconnectedAt?: number;
  /** A will waiting for its delay (or for the session to end). */
  readonly will?: WillRecord;
}

export interface SubscriptionRecord {
  readonly key: string;
  /** The filter text as subscribed, `$share/<group>/` included. */
  readonly filter: string;
  readonly qos: Qos;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly identifier?: number;
}

/** A message owed to a session: queued, or in flight with its packet id. */
export interface PendingRecord {
  /** Per-session sequence: queue order, and the row key. */
  readonly seq: number;
  readonly messageId: number;
  readonly qos: Qos;
  readonly retain: boolean;
  /** Keys of the subscriptions that matched (for Subscription Identifiers / STOMP subscription ids). */
  readonly subKeys: readonly string[];
  /** 0 while queued; the packet id once sent. */
  readonly packetId: number;
  /** queued: not yet sent; sent: PUBLISH sent, unacknowledged; released: PUBREC received, PUBREL sent. */
  readonly phase: 'queued' | 'sent' | 'released';
}

/** A durable named queue (STOMP /queue/<name>, MQTT $queue/<name>). */
export interface QueueRecord {
  readonly name: string;
  readonly createdAt: number;
}

/** A message waiting in a queue, or out for delivery (deliveries counts the attempts). */
export interface QueueEntryRecord {
  /** Per-queue sequence: FIFO order within a priority, and the row key. */
  readonly seq: number;
  readonly messageId: number;
  /** 0-9, higher first. */
  readonly priority: number;
  readonly deliveries: number;
  readonly redelivered: boolean;
  /** Set on entries of a dead-letter queue: where the message came from and why it left. */
  readonly deadLetter?: { readonly queue: string; readonly reason: string; readonly at: number };
}

/** A message held back until `dueAt` (MQTT $delayed/<s>/<topic>, STOMP x-delay). */
export interface DelayedRecord {
  readonly seq: number;
  readonly messageId: number;
  /** ms since epoch. */
  readonly dueAt: number;
}

export type WriteOp =
  | { readonly kind: 'message.put'; readonly message: MessageRecord }
  | { readonly kind: 'message.del'; readonly id: number }
  | { readonly kind: 'session.put'; readonly session: SessionRecord }
  | { readonly kind: 'session.del'; readonly clientId: string }
  | { readonly kind: 'sub.put'; readonly clientId: string; readonly sub: SubscriptionRecord }
  | { readonly kind: 'sub.del'; readonly clientId: string; readonly key: string }
  | { readonly kind: 'pending.put'; readonly clientId: string; readonly entry: PendingRecord }
  | { readonly kind: 'pending.del'; readonly clientId: string; readonly seq: number }
  | { readonly kind: 'incoming.put'; readonly clientId: string; readonly packetId: number }
  | { readonly kind: 'incoming.del'; readonly clientId: string; readonly packetId: number }
  | { readonly kind: 'retained.put'; readonly topic: string; readonly messageId: number }
  | { readonly kind: 'retained.del'; readonly topic: string }
  | { readonly kind: 'queue.put'; readonly queue: QueueRecord }
  | { readonly kind: 'queue.del'; readonly name: string }
  | { readonly kind: 'qentry.put'; readonly queue: string; readonly entry: QueueEntryRecord }
  | { readonly kind: 'qentry.del'; readonly queue: string; readonly seq: number }
  | { readonly kind: 'delayed.put'; readonly entry: DelayedRecord }
  | { readonly kind: 'delayed.del'; readonly seq: number };

/** Everything needed to rebuild memory at start. */
export interface StoredState {
  readonly messages: ReadonlyMap<number, MessageRecord>;
  readonly sessions: readonly SessionRecord[];
  readonly subscriptions: readonly { readonly clientId: string; readonly sub: SubscriptionRecord }[];
  /** In seq order per session. */
  readonly pending: readonly { readonly clientId: string; readonly entry: PendingRecord }[];
  readonly incoming: readonly { readonly clientId: string; readonly packetId: number }[];
  readonly retained: readonly { readonly topic: string; readonly messageId: number }[];
  readonly queues: readonly QueueRecord[];
  /** In seq order per queue. */
  readonly queueEntries: readonly { readonly queue: string; readonly entry: QueueEntryRecord }[];
  readonly delayed: readonly DelayedRecord[];
}

export interface Store {
  /** Engine name for logs and status ("memory", "rocksdb", ...). */
  readonly engine: string;
  /** Loads everything durable. Called once, before any write. */
  open(): Promise<StoredState>;
  /** Applies `ops` atomically; resolves after a synchronous (fsync'd) write, rejects on failure. */
  write(ops: readonly WriteOp[]): Promise<void>;
  /** Waits for nothing: callers stop writing first. Further calls fail instead of crashing. */
  close(): Promise<void>;
}

export class StoreClosedError extends Error {
  constructor(engine: string) {
    super(`${engine} store is closed`);
    this.name = 'StoreClosedError';
  }
}

/** The store cannot be opened: the message says which directory and why, for the operator. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreOpenError';
  }
}
