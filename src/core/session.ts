/**
 * Session: one client's state, independent of any connection and of any wire format.
 *
 * It holds the subscriptions, the messages owed to the client (in flight with a delivery id, or
 * queued behind the in-flight window / while offline) and the QoS 2 packet ids received and not yet
 * released. The connection attached as its Outlet does the I/O; the Session decides what to send.
 *
 * Invariants:
 * - `inflight.size <= window` while attached; ids in `inflight` are unique (1..65535).
 * - A durable session writes every change of its pending rows through Persistence; QoS 2 deliveries
 *   leave only after their row is on disk, and PUBREL only after the `released` phase is on disk, so
 *   a crash can never make the client see a QoS 2 message twice.
 * - Messages referenced by pending rows are counted in Persistence (stored once, freed at zero).
 */
import { isExpired, type Message, type MessageDraft, type Protocol, type Qos, type UserProperty } from './message.js';
import type { Identity } from './access.js';
import type { DropLog, DropReason } from './drop-log.js';
import type { Persistence } from './persistence.js';
import type { Stats } from './stats.js';
import type { ParsedFilter } from './topic.js';
import type { PendingRecord, SubscriptionRecord } from '../../storage/store.js';

export interface Subscription {
  /** Unique in the session: the MQTT filter text (with any $share prefix), or a STOMP subscription id. */
  readonly key: string;
  readonly filter: ParsedFilter;
  /** Granted maximum QoS. */
  readonly qos: Qos;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier. */
  readonly identifier?: number;
  /** Queue consumers: unacknowledged entries allowed (STOMP prefetch-count); the queue's default if absent. */
  readonly prefetch?: number;
  /** Each delivery is checked against the ACL: the filter reaches topics the client may not read. */
  readonly readCheck?: boolean;
}

export interface Delivery {
  /** Packet id / ack id for QoS 1 and 2; 0 for QoS 0. */
  readonly id: number;
  readonly message: Message;
  /** min(message QoS, granted QoS). */
  readonly qos: Qos;
  readonly retain: boolean;
  readonly matched: readonly Subscription[];
  /** The message was handed out before: MQTT DUP, STOMP redelivered:true. */
  readonly redelivery: boolean;
  /** Extra properties from where the message came (e.g. a dead-letter queue's origin and reason). */
  readonly annotations?: readonly UserProperty[];
}

/**
 * Where a delivery came from when it is not a plain fan-out copy: a queue entry, which must hear
 * how the delivery ended. A sourced delivery is never stored with the session: the queue keeps it.
 */
export interface DeliverySource {
  readonly annotations: readonly UserProperty[] | undefined;
  /** acked: done; requeue: back to the queue (consumer gone, NACK); reject: dead-letter it. */
  settle(outcome: 'acked' | 'requeue' | 'reject'): void;
}

/** Something to tell when this session can take more (a queue with this session as a consumer). */
export interface RoomListener {
  dispatch(): void;
}

/** 'full': written, but the outlet is over its buffer limit; 'dropped': it can never take this message. */
export type SendResult = 'sent' | 'full' | 'dropped';

/** auth-revoked: a reload no longer accepts the credentials the client connected with. */
export type CloseReason = 'taken-over' | 'shutdown' | 'expired' | 'kicked' | 'auth-revoked';

/** What a Session needs from the connection attached to it; each adapter implements it. */
export interface Outlet {
  send(d: Delivery): SendResult;
  /** QoS 2: the PUBREC for `id` is recorded; tell the client to release it (PUBREL). */
  release(id: number): void;
  /** False while the connection's output buffer is over its limit. */
  readonly writable: boolean;
  close(reason: CloseReason): void;
  /** The connection as the admin API lists it, once its CONNECT was accepted (adapters set it). */
  readonly client?: OutletClient | undefined;
  /** Application messages received from the client (PUBLISH, SEND) and sent to it (admin API). */
  readonly msgsIn?: number;
  readonly msgsOut?: number;
}

/** What the admin API shows about a connected client (presence.ts ClientInfo has these and more). */
export interface OutletClient {
  /** MQTT client id; STOMP `client-id` header, else the session id. */
  readonly clientId: string;
  /** 3.1, 3.1.1, 5, 1.0, 1.1, 1.2. */
  readonly version: string;
  readonly listener: string;
  /** host:port as the listener saw it. */
  readonly remoteAddress: string;
  readonly username: string | undefined;
  /** Seconds (STOMP: the heart-beat the client promised). */
  readonly keepalive: number;
  readonly cleanStart: boolean;
  /** Session Expiry Interval in seconds. */
  readonly expiryInterval: number;
  /** ms since epoch. */
  readonly connectedAt: number;
}

/** A will message and its delay; published when the connection ends without a normal disconnect. */
export interface Will {
  /** The message without `expiresAt`: its lifetime starts when it is published (`expiryMs`). */
  readonly draft: MessageDraft;
  /** Will Delay Interval in ms (MQTT 5); 0 publishes at once. */
  readonly delayMs: number;
  /** Message Expiry Interval in ms, counted from publication, not from CONNECT (MQTT 5 3.1.3.2.4). */
  readonly expiryMs?: number;
}

export interface SessionLimits {
  /** Queued messages per session; 0 = unlimited. */
  readonly maxQueued: number;
  /** Payload bytes queued per session; 0 or absent = unlimited. */
  readonly maxQueuedBytes?: number;
  readonly dropPolicy: 'oldest' | 'newest';
  /** Queue QoS 0 messages while offline. */
  readonly queueQos0: boolean;
}

/** A message owed to the client. One object per (session, message); mutable phase. */
export class Pending {
  /** Written to an outlet at least once: a resend carries the redelivery flag. */
  transmitted = false;
  constructor(
    readonly seq: number,
    readonly message: Message,
    readonly qos: Qos,
    readonly retain: boolean,
    readonly matched: readonly Subscription[],
    public packetId: number,
    public phase: 'queued' | 'sent' | 'released',
    public redelivery: boolean,
    readonly source: DeliverySource | undefined = undefined,
  ) {}

  record(): PendingRecord {
    return {
      seq: this.seq,
      messageId: this.message.id,
      qos: this.qos,
      retain: this.retain,
      subKeys: this.matched.map((s) => s.key),
      packetId: this.packetId,
      phase: this.phase,
    };
  }

  /** The `$share/<group>/<filter>` this delivery came through, if any. */
  get shareKey(): string | undefined {
    const first = this.matched[0];
    return first?.filter.share !== undefined ? first.filter.raw : undefined;
  }
}

export function subscriptionRecord(sub: Subscription): SubscriptionRecord {
  const rec: SubscriptionRecord = {
    key: sub.key,
    filter: sub.filter.raw,
    qos: sub.qos,
    noLocal: sub.noLocal,
    retainAsPublished: sub.retainAsPublished,
    retainHandling: sub.retainHandling,
  };
  return sub.identifier === undefined ? rec : { ...rec, identifier: sub.identifier };
}

export class Session {
  readonly subscriptions = new Map<string, Subscription>();
  /** In flight, by delivery id, in the order the ids were assigned. */
  readonly inflight = new Map<number, Pending>();
  /** QoS 2 packet ids received from the client and not yet released (PUBREL). */
  readonly incoming = new Set<number>();
  private queue: Pending[] = [];
  private queueHead = 0;
  /** Payload bytes of the queued entries (`maxQueuedBytes`). */
  private queueBytes = 0;
  private outlet: Outlet | undefined;
  private window = 1;
  private nextId = 1;
  private nextSeq = 1;
  /** QoS 2 deliveries written to storage, waiting for the batch to reach disk before they leave. */
  private awaitingDisk: Pending[] = [];
  /** In flight from an earlier connection, not resent yet because the new window is full. */
  private held: Pending[] = [];
  /** Who the connected client authenticated as (ACL checks on delivery); set by the adapter. */
  identity: Identity | undefined;
  /** Queues this session consumes from: told when it has room again. */
  readonly roomListeners = new Set<RoomListener>();
  /** Counts `SessionRegistry.open` calls: the newest connection claiming the session owns it. */
  claim = 0;
  /** The will of the connection now attached (or of the last one, while its delay runs). */
  will: Will | undefined;
  /** Set by the registry; used by the router to gather matches per publish without allocating maps. */
  matchEpoch = 0;
  matchScratch: Subscription[] = [];

  constructor(
    readonly clientId: string,
    readonly protocol: Protocol,
    /** Session Expiry Interval in seconds; 0 ends the session with the connection, 0xFFFFFFFF never. */
    public expiryInterval: number,
    /** Set when the session's state must survive a restart. */
    public durable: Persistence | null,
    private readonly limits: SessionLimits,
    private readonly stats: Stats,
    /** Where messages lost to a limit are reported per client (absent: counted only). */
    private readonly drops?: DropLog,
  ) {}

  get attached(): boolean {
    return this.outlet !== undefined;
  }

  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** True when a QoS 1/2 delivery offered now would leave at once. */
  get hasRoom(): boolean {
    return this.outlet !== undefined && this.outlet.writable && this.inflight.size < this.window && this.queued === 0;
  }

  /** Whether a delivery of `qos` offered now would leave at once (queue dispatch asks this). */
  canTake(qos: Qos): boolean {
    return qos === 0 ? this.outlet !== undefined && this.outlet.writable : this.hasRoom;
  }

  attach(outlet: Outlet, window: number): void {
    this.outlet = outlet;
    this.window = Math.max(1, window);
    // [MQTT-4.4.0-1]: resend unacknowledged PUBLISH (DUP) and PUBREL with their original ids, but
    // no more outstanding than the new window [MQTT-3.3.4-9]: a client may come back with a smaller
    // Receive Maximum. The rest are held and resent by pump() as acknowledgements free room.
    this.held = [];
    let outstanding = 0;
    for (const p of this.inflight.values()) {
      if (p.phase === 'released') outlet.release(p.packetId);
      else if (this.awaitingDisk.includes(p)) {
        // leaves once its row is on disk (sendAwaiting)
      } else if (outstanding >= this.window) {
        this.held.push(p);
        continue;
      } else this.transmit(p, p.transmitted || p.redelivery);
      if (this.inflight.get(p.packetId) === p) outstanding++;
    }
    this.pump();
    // Queues this session consumes from held their entries while it was away: offer them now.
    this.wake();
  }

  detach(): void {
    this.outlet = undefined;
  }

  get currentOutlet(): Outlet | undefined {
    return this.outlet;
  }

  /**
   * A message for this session through `matched` (all of its subscriptions that match, or the one
   * shared subscription picked). `retained`: sent because of a new subscription, not a live publish.
   */
  offer(msg: Message, matched: readonly Subscription[], retained = false, redelivery = false, source?: DeliverySource): void {
    let maxQos = -1;
    let rap = false;
    let local: Subscription[] | undefined;
    const self = msg.origin.clientId === this.clientId && msg.origin.protocol === this.protocol;
    for (const sub of matched) {
      if (self && sub.noLocal) {
        // [MQTT-3.8.3-3]: keep only the subscriptions without No Local.
        local ??= matched.filter((s) => !s.noLocal);
        continue;
      }
      if (sub.qos > maxQos) maxQos = sub.qos;
      if (sub.retainAsPublished) rap = true;
    }
    if (maxQos < 0) {
      source?.settle('requeue');
      return;
    }
    const subs = local ?? matched;
    // A queue delivery is acknowledged as the consumer subscribed (its ack mode), whatever the
    // message's own QoS: the entry stays in the queue until then.
    const qos = (source ? maxQos : Math.min(msg.qos, maxQos)) as Qos;
    // [MQTT-3.3.1-8] retained on subscribe: RETAIN 1; live: RETAIN only with Retain As Published [MQTT-3.3.1-12].
    const retain = retained || (msg.retain && rap);
    if (qos === 0) {
      const outlet = this.outlet;
      if (outlet) {
        if (!outlet.writable) {
          if (source) source.settle('requeue');
          else this.drop('socket-full', msg);
          return;
        }
        const r = outlet.send({
          id: 0,
          message: msg,
          qos: 0,
          retain,
          matched: subs,
          redelivery,
          ...(source?.annotations ? { annotations: source.annotations } : {}),
        });
        if (r === 'dropped') this.drop('too-large', msg);
        // Latency of live pub/sub only: not retained-on-subscribe, not queue waits.
        else if (!source && !retained) this.stats.observeDelivery(msg, 0);
        // Auto-acknowledged (STOMP ack:auto, MQTT QoS 0): done once written.
        source?.settle(r === 'dropped' ? 'reject' : 'acked');
        return;
      }
      if (source) {
        source.settle('requeue');
        return;
      }
      if (!this.limits.queueQos0 || !this.durable) {
        this.stats.qos0Offline++;
        return;
      }
    }
    const p = new Pending(this.nextSeq++, msg, qos, retain, subs, 0, 'queued', redelivery, source);
    if (qos > 0 && this.hasRoom) this.start(p);
    else this.enqueue(p);
  }

  /** PUBACK (QoS 1), PUBCOMP (QoS 2), STOMP ACK: the delivery is complete. */
  acked(id: number): boolean {
    const p = this.inflight.get(id);
    if (!p) return false;
    this.finish(p);
    this.pump();
    this.wake();
    return true;
  }

  /** PUBREC: the client has the QoS 2 message; after the phase is on disk, send PUBREL. */
  received(id: number): boolean {
    const p = this.inflight.get(id);
    if (!p || p.qos !== 2) return false;
    if (p.phase === 'released') {
      this.outlet?.release(id);
      return true;
    }
    p.phase = 'released';
    if (!this.durable) {
      this.outlet?.release(id);
      return true;
    }
    this.durable.write({ kind: 'pending.put', clientId: this.clientId, entry: p.record() });
    this.durable.barrier().then(
      () => {
        if (this.inflight.get(id) === p) this.outlet?.release(id);
      },
      () => undefined, // not on disk: the client resends PUBREC after reconnect
    );
    return true;
  }

  /**
   * Negative acknowledgement (STOMP NACK, MQTT v5 PUBACK/PUBREC with an error reason): the delivery
   * ends; a queue gets its message back (`requeue`) or dead-letters it.
   */
  rejected(id: number, requeue = false): boolean {
    const p = this.inflight.get(id);
    if (!p) return false;
    this.inflight.delete(p.packetId);
    if (p.source) p.source.settle(requeue ? 'requeue' : 'reject');
    else this.forget(p);
    this.pump();
    this.wake();
    return true;
  }

  /** The outlet's buffer drained below its limit. */
  drained(): void {
    this.pump();
    this.wake();
  }

  /**
   * The connection went away: deliveries that came from queues go back to them (to be redelivered,
   * marked as such, to another consumer); a session's own messages stay with it.
   */
  returnSourced(): void {
    const back: Pending[] = [];
    for (const p of this.inflight.values()) if (p.source) back.push(p);
    for (const p of back) this.inflight.delete(p.packetId);
    if (this.queued > 0) {
      const keep: Pending[] = [];
      for (let i = this.queueHead; i < this.queue.length; i++) {
        const p = this.queue[i]!;
        if (p.source) back.push(p);
        else keep.push(p);
      }
      this.queue = keep;
      this.queueHead = 0;
      this.queueBytes = bytesOf(keep);
    }
    this.held = this.held.filter((p) => !p.source);
    this.awaitingDisk = this.awaitingDisk.filter((p) => !p.source);
    for (const p of back) p.source!.settle('requeue');
  }

  /** QoS 2 from the client: returns false when `packetId` is already held (a resend: do not publish again). */
  holdIncoming(packetId: number): boolean {
    if (this.incoming.has(packetId)) return false;
    this.incoming.add(packetId);
    this.durable?.write({ kind: 'incoming.put', clientId: this.clientId, packetId });
    return true;
  }

  /** PUBREL: forget `packetId`; the adapter sends PUBCOMP once `durable.barrier()` says it is on disk. */
  releaseIncoming(packetId: number): boolean {
    if (!this.incoming.delete(packetId)) return false;
    this.durable?.write({ kind: 'incoming.del', clientId: this.clientId, packetId });
    return true;
  }

  /**
   * Removes and returns the unfinished deliveries that came through shared subscription `shareKey`
   * (queued, or QoS 1 sent without a PUBACK), so the router can hand them to another member.
   * A QoS 2 message once transmitted stays: the client may hold it already, so only this session
   * may complete it [MQTT-4.8.2-4], and if the session ends it goes to no one else [MQTT-4.8.2-5].
   */
  takeShared(shareKey: string): Pending[] {
    const taken: Pending[] = [];
    for (const p of this.inflight.values()) {
      if (p.shareKey === shareKey && p.phase === 'sent' && (p.qos < 2 || !p.transmitted)) taken.push(p);
    }
    for (const p of taken) this.inflight.delete(p.packetId);
    const keep: Pending[] = [];
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const p = this.queue[i]!;
      if (p.shareKey === shareKey) taken.push(p);
      else keep.push(p);
    }
    this.queue = keep;
    this.queueHead = 0;
    this.queueBytes = bytesOf(keep);
    for (const p of taken) this.forget(p);
    return taken;
  }

  /** Ends everything owed: used when the session is discarded. Returns nothing; frees storage. */
  clear(): void {
    this.returnSourced();
    for (const p of this.inflight.values()) this.forget(p);
    this.inflight.clear();
    for (let i = this.queueHead; i < this.queue.length; i++) this.forget(this.queue[i]!);
    this.queue = [];
    this.queueHead = 0;
    this.queueBytes = 0;
    if (this.durable) for (const id of this.incoming) this.durable.write({ kind: 'incoming.del', clientId: this.clientId, packetId: id });
    this.incoming.clear();
    this.awaitingDisk = [];
    this.held = [];
  }

  /** Re-creates a pending row read from storage (restart). */
  restorePending(p: Pending): void {
    if (p.seq >= this.nextSeq) this.nextSeq = p.seq + 1;
    if (p.phase === 'queued') {
      this.queue.push(p);
      this.queueBytes += p.message.payload.length;
    } else {
      p.transmitted = true;
      this.inflight.set(p.packetId, p);
    }
  }

  /** Every message owed, in flight first then queued (admin listings, tests). */
  *owed(): IterableIterator<Pending> {
    yield* this.inflight.values();
    for (let i = this.queueHead; i < this.queue.length; i++) yield this.queue[i]!;
  }

  /**
   * Drops queued messages whose expiry has passed, freeing their storage while the session is
   * offline (they would be skipped at delivery anyway). Returns how many were dropped.
   */
  dropExpired(now: number): number {
    let dropped = 0;
    const keep: Pending[] = [];
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const p = this.queue[i]!;
      if (isExpired(p.message, now)) {
        this.forget(p);
        dropped++;
      } else keep.push(p);
    }
    if (dropped > 0) {
      this.queue = keep;
      this.queueHead = 0;
      this.queueBytes = bytesOf(keep);
      this.stats.expired += dropped;
    }
    return dropped;
  }

  // -- internals ------------------------------------------------------------------------------

  private enqueue(p: Pending): void {
    const max = this.limits.maxQueued;
    const maxBytes = this.limits.maxQueuedBytes ?? 0;
    const size = p.message.payload.length;
    const full = (): DropReason | undefined =>
      max > 0 && this.queued >= max ? 'queue-full' : maxBytes > 0 && this.queueBytes + size > maxBytes ? 'queue-bytes' : undefined;
    let reason = full();
    if (reason !== undefined) {
      if (p.source) {
        p.source.settle('requeue'); // the queue keeps it; it is not the session's to drop
        return;
      }
      // A message larger than the whole byte allowance can never be queued, whatever the policy.
      if (this.limits.dropPolicy === 'newest' || (maxBytes > 0 && size > maxBytes)) {
        this.drop(reason, p.message);
        return;
      }
      while (reason !== undefined && this.queued > 0) {
        const oldest = this.shift();
        // A queue's entry goes back to its queue: it was never the session's to drop.
        if (oldest.source) oldest.source.settle('requeue');
        else {
          this.forget(oldest);
          this.drop(reason, oldest.message);
        }
        reason = full();
      }
    }
    this.queue.push(p);
    this.queueBytes += size;
    if (this.durable && !p.source) {
      this.durable.ref(p.message);
      this.durable.write({ kind: 'pending.put', clientId: this.clientId, entry: p.record() });
    }
  }

  /** Takes the head of the queue. */
  private shift(): Pending {
    const p = this.queue[this.queueHead]!;
    this.queue[this.queueHead++] = undefined as unknown as Pending;
    this.queueBytes -= p.message.payload.length;
    return p;
  }

  /** A message this client will never get because of a limit: counted, and logged per burst. */
  private drop(reason: DropReason, msg: Message): void {
    if (reason === 'socket-full') this.stats.qos0Dropped++;
    else if (reason === 'too-large') this.stats.oversizeDropped++;
    else this.stats.queueDropped++;
    this.drops?.dropped(this.clientId, reason, 1, msg);
  }

  /** Moves queued deliveries into flight while there is room. */
  private pump(): void {
    const outlet = this.outlet;
    if (!outlet) return;
    if (this.held.length > 0) {
      // Acked, PUBREC'd or handed to another shared member meanwhile: no longer held.
      this.held = this.held.filter((p) => this.inflight.get(p.packetId) === p && p.phase === 'sent');
      while (this.held.length > 0 && this.inflight.size - this.held.length < this.window && outlet.writable && this.outlet === outlet) {
        const p = this.held.shift()!;
        this.transmit(p, p.transmitted || p.redelivery);
      }
    }
    const now = Date.now();
    while (this.queued > 0 && this.inflight.size < this.window && outlet.writable && this.outlet === outlet) {
      const p = this.shift();
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      if (isExpired(p.message, now)) {
        if (p.source) p.source.settle('requeue'); // the queue decides: drop or dead-letter
        else {
          this.stats.expired++;
          this.forget(p);
        }
        continue;
      }
      if (p.qos === 0) {
        this.forget(p);
        const r = outlet.send({ id: 0, message: p.message, qos: 0, retain: p.retain, matched: p.matched, redelivery: p.redelivery, ...this.annotationsOf(p) });
        if (r === 'dropped') this.drop('too-large', p.message);
        else if (!p.source && !p.retain) this.stats.observeDelivery(p.message, 0);
        p.source?.settle(r === 'dropped' ? 'reject' : 'acked');
        continue;
      }
      this.start(p, true);
    }
  }

  /** Gives `p` a delivery id and sends it (QoS 2 on a durable session: once its row is on disk). */
  private start(p: Pending, fromQueue = false): void {
    p.packetId = this.allocId();
    p.phase = 'sent';
    this.inflight.set(p.packetId, p);
    if (this.durable && !p.source) {
      if (!fromQueue) this.durable.ref(p.message);
      this.durable.write({ kind: 'pending.put', clientId: this.clientId, entry: p.record() });
      if (p.qos === 2) {
        if (this.awaitingDisk.push(p) === 1) this.durable.barrier().then(this.sendAwaiting, this.sendAwaiting);
        return;
      }
    }
    this.transmit(p, p.redelivery);
  }

  private readonly sendAwaiting = (): void => {
    const list = this.awaitingDisk;
    this.awaitingDisk = [];
    for (const p of list) {
      if (this.outlet && this.inflight.get(p.packetId) === p && p.phase === 'sent' && !p.transmitted) {
        this.transmit(p, p.redelivery);
      }
    }
  };

  private transmit(p: Pending, redelivery: boolean): void {
    const outlet = this.outlet;
    if (!outlet) return;
    const r = outlet.send({ id: p.packetId, message: p.message, qos: p.qos, retain: p.retain, matched: p.matched, redelivery, ...this.annotationsOf(p) });
    if (r === 'dropped') {
      // [MQTT-3.1.2-25]: too large for the client: behave as if delivered (a queue dead-letters it).
      this.drop('too-large', p.message);
      this.inflight.delete(p.packetId);
      if (p.source) p.source.settle('reject');
      else this.forget(p);
      return;
    }
    // First transmissions of pub/sub messages only (a retained one may have been waiting for hours).
    if (!p.transmitted && !redelivery && !p.source && !p.retain) this.stats.observeDelivery(p.message, p.qos);
    p.transmitted = true;
  }

  private finish(p: Pending): void {
    this.inflight.delete(p.packetId);
    if (p.source) p.source.settle('acked');
    else this.forget(p);
  }

  private annotationsOf(p: Pending): { annotations?: readonly UserProperty[] } {
    const a = p.source?.annotations;
    return a ? { annotations: a } : {};
  }

  /** Tells the queues this session consumes from that it may take more. */
  private wake(): void {
    if (this.roomListeners.size === 0) return;
    for (const l of this.roomListeners) l.dispatch();
  }

  /** Drops the durable row and message reference of `p` (no-op for non-durable sessions). */
  private forget(p: Pending): void {
    if (!this.durable || p.source) return;
    this.durable.write({ kind: 'pending.del', clientId: this.clientId, seq: p.seq });
    this.durable.unref(p.message);
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }
}

function bytesOf(list: readonly Pending[]): number {
  let n = 0;
  for (const p of list) n += p.message.payload.length;
  return n;
}
