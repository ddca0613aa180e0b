/**
 * Core: the routing core assembled: router, sessions, persistence, access control, stats. Adapters
 * receive a Core and call into it; it knows no protocol and no socket. `open` rebuilds memory from
 * storage (subscriptions into the topic tree, retained messages, sessions with what they are owed).
 */
import { BatchWriter } from '../../storage/batch-writer.js';
import type { StoredState, Store } from '../../storage/store.js';
import { allowAll, type AccessControl } from './access.js';
import { DropLog } from './drop-log.js';
import { silentLogger, type Logger } from './log.js';
import { isExpired, type Message } from './message.js';
import { Persistence } from './persistence.js';
import { Presence } from './presence.js';
import { Router } from './router.js';
import { QueueEntry, type QueueOptions } from './queues.js';
import { Pending, type Session, type SessionLimits, type Subscription } from './session.js';
import { NEVER_EXPIRES, SessionRegistry, willFromRecord } from './sessions.js';
import { Stats } from './stats.js';
import { isTopicError, parseFilter } from './topic.js';
import { Tracing } from './tracing.js';

export interface CoreOptions {
  readonly store: Store;
  readonly limits: SessionLimits;
  readonly access?: AccessControl;
  readonly log?: Logger;
  readonly queues?: QueueOptions;
  /** Counters to use (the broker shares them with its listeners and access control). */
  readonly stats?: Stats;
  /** Quiet time in ms that ends a client's burst of dropped messages in the log (DropLog). */
  readonly dropLogIntervalMs?: number;
}

export class Core {
  readonly stats: Stats;
  readonly store: Store;
  readonly writer: BatchWriter;
  readonly persist: Persistence;
  readonly router: Router;
  readonly sessions: SessionRegistry;
  readonly access: AccessControl;
  readonly log: Logger;
  /** Messages lost to a limit, logged per client and burst. */
  readonly drops: DropLog;
  /** Client connections opening and closing: connection metrics, $SYS presence events. */
  readonly presence: Presence;
  /** Hooks of running traces (one boolean check each while none runs). */
  readonly tracing = new Tracing();
  /** A store commit slower than this is logged (`store.slow_commit`), at most once per 10 s. */
  slowCommitMs = 500;
  private slowCommitLoggedAt = 0;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(opts: CoreOptions) {
    this.store = opts.store;
    this.stats = opts.stats ?? new Stats();
    this.log = opts.log ?? silentLogger;
    this.access = opts.access ?? allowAll;
    this.writer = new BatchWriter(opts.store, (err, ops) => {
      this.stats.storageErrors++;
      this.log.error('storage write failed', { engine: opts.store.engine, ops, error: String(err) });
    });
    this.writer.onCommit = (seconds, ops) => {
      this.stats.storeCommit.observe(seconds);
      this.stats.storeBatchOps.observe(ops);
      const now = Date.now();
      if (seconds * 1000 >= this.slowCommitMs && now - this.slowCommitLoggedAt >= 10_000) {
        this.slowCommitLoggedAt = now;
        this.log.warn('slow storage commit', { evt: 'store.slow_commit', durationMs: Math.round(seconds * 1000), ops, engine: opts.store.engine });
      }
    };
    this.persist = new Persistence(this.writer);
    this.presence = new Presence(this.stats);
    this.router = new Router(this.persist, this.stats, opts.queues, this.access);
    this.drops = new DropLog(this.log, opts.dropLogIntervalMs);
    this.drops.tracing = this.tracing;
    this.sessions = new SessionRegistry(this.router, this.persist, this.stats, opts.limits, this.drops);
    this.sessions.onExpired = (session) =>
      this.log.info('session expired', { evt: 'session.expired', clientId: session.clientId, protocol: session.protocol, username: session.identity?.username });
    this.router.queues.onDeadLetter = (queue, msg, reason, consumer) => {
      this.log.info('message dead-lettered', { evt: 'queue.dead_lettered', queue, reason, topic: msg.topic, messageId: msg.id });
      // A trace of the consumer that rejected it (or failed its last delivery) shows it; the
      // publisher is named in the line.
      if (this.tracing.on) {
        this.tracing.emit('dead_letter', { clientId: consumer ?? msg.origin.clientId, topic: msg.topic }, { queue, reason, publisher: msg.origin.clientId, qos: msg.qos, payload: msg.payload });
      }
    };
  }

  /** Loads storage and rebuilds memory. Call once before accepting connections. */
  async open(): Promise<void> {
    const state = await this.store.open();
    this.restore(state);
    this.router.delayed.start();
    this.sweepTimer = setInterval(() => this.sweep(), 60_000);
    this.sweepTimer.unref();
  }

  /** Writes what is queued and closes storage. Connections must be closed first. */
  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.drops.flush();
    this.sessions.stop();
    this.router.delayed.stop();
    await this.writer.drain();
    await this.store.close();
  }

  /**
   * Holds a session's subscriptions to its identity's current rights: refused ones are removed, and
   * each learns whether its deliveries need a read check. Returns the keys removed.
   */
  recheck(session: Session): string[] {
    const who = session.identity;
    if (!who) return [];
    const removed = this.router.recheck(session, (sub) => {
      const topic = sub.filter.queue !== undefined ? sub.filter.raw : sub.filter.filter;
      return {
        allowed: this.access.authorize(who, 'subscribe', topic),
        readCheck: sub.filter.queue === undefined && (this.access.needsReadCheck?.(who, topic) ?? false),
      };
    });
    if (removed.length > 0) this.log.warn('subscriptions removed: no longer allowed', { clientId: session.clientId, subscriptions: removed });
    return removed;
  }

  /** After the access rules changed: re-checks every session's subscriptions. */
  recheckAll(): number {
    let removed = 0;
    for (const session of this.sessions.sessions.values()) removed += this.recheck(session).length;
    return removed;
  }

  /** Frees expired retained messages and expired messages queued for offline sessions. */
  sweep(now = Date.now()): void {
    this.router.sweepRetained(now);
    for (const session of this.sessions.sessions.values()) if (!session.attached) session.dropExpired(now);
  }

  private restore(state: StoredState): void {
    const now = Date.now();
    const { messages } = state;
    let maxId = 0;
    for (const id of messages.keys()) if (id > maxId) maxId = id;
    this.router.seedMessageId(maxId + 1);

    for (const { topic, messageId } of state.retained) {
      const msg = messages.get(messageId);
      if (!msg || isExpired(msg, now)) this.persist.write({ kind: 'retained.del', topic });
      else this.router.restoreRetained(msg);
    }

    for (const rec of state.sessions) this.sessions.restore(rec);
    for (const { clientId, sub } of state.subscriptions) {
      const session = this.sessions.get(clientId);
      const filter = parseFilter(sub.filter);
      if (!session || isTopicError(filter)) {
        this.persist.write({ kind: 'sub.del', clientId, key: sub.key });
        continue;
      }
      const restored: Subscription = {
        key: sub.key,
        filter,
        qos: sub.qos,
        noLocal: sub.noLocal,
        retainAsPublished: sub.retainAsPublished,
        retainHandling: sub.retainHandling,
        ...(sub.identifier !== undefined ? { identifier: sub.identifier } : {}),
      };
      this.router.restore(session, restored);
    }
    // Restored subscriptions are held to their session's identity under the rules in force now,
    // before anything is queued through them: a wildcard that reaches a denied topic is checked per
    // delivery, a filter no longer allowed goes.
    for (const session of this.sessions.sessions.values()) this.recheck(session);
    for (const { clientId, entry } of state.pending) {
      const session = this.sessions.get(clientId);
      const msg = messages.get(entry.messageId);
      const stale = !msg || (entry.phase === 'queued' && isExpired(msg, now));
      if (!session || stale) {
        this.persist.write({ kind: 'pending.del', clientId, seq: entry.seq });
        if (msg) this.stats.expired++;
        continue;
      }
      const matched = entry.subKeys.flatMap((k) => session.subscriptions.get(k) ?? []);
      this.persist.restoreRef(msg.id);
      session.restorePending(
        new Pending(entry.seq, msg, entry.qos, entry.retain, matched, entry.packetId, entry.phase, entry.phase !== 'queued'),
      );
    }
    const queues = this.router.queues;
    for (const rec of state.queues) queues.restore(rec);
    for (const { queue, entry } of state.queueEntries) {
      const msg = messages.get(entry.messageId);
      if (!msg) {
        this.persist.write({ kind: 'qentry.del', queue, seq: entry.seq });
        continue;
      }
      const q = queues.restore({ name: queue, createdAt: now });
      // Entries out for delivery when the broker stopped are ready again, as if their consumer left.
      q.restore(new QueueEntry(q, entry.seq, msg, entry.priority, entry.deliveries, entry.redelivered || entry.deliveries > 0, entry.deadLetter));
    }
    for (const d of state.delayed) {
      const msg = messages.get(d.messageId);
      if (msg) this.router.delayed.restore(d.seq, msg, d.dueAt);
      else this.persist.write({ kind: 'delayed.del', seq: d.seq });
    }
    for (const { clientId, packetId } of state.incoming) {
      const session = this.sessions.get(clientId);
      if (session) session.incoming.add(packetId);
      else this.persist.write({ kind: 'incoming.del', clientId, packetId });
    }
    for (const id of messages.keys()) {
      if (!this.persist.referenced(id)) this.persist.write({ kind: 'message.del', id });
    }
    // Sessions connected when the broker stopped count as disconnected at the restart.
    for (const rec of state.sessions) {
      const session = this.sessions.get(rec.clientId);
      if (!session) continue;
      const will = rec.will ? willFromRecord(rec.will) : undefined;
      const disconnectedAt = rec.disconnectedAt ?? now;
      if (rec.expiryInterval === NEVER_EXPIRES && !will) continue;
      this.sessions.resumeOffline(session, disconnectedAt, will, rec.will?.dueAt ?? now + (will?.delayMs ?? 0));
    }
    this.log.info('storage restored', {
      engine: this.store.engine,
      sessions: this.sessions.size,
      retained: this.router.retained.size,
      messages: messages.size,
      queues: queues.queues.size,
      delayed: this.router.delayed.size,
    });
  }
}
