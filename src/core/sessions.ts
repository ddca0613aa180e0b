/**
 * SessionRegistry: sessions by client id, their lifetimes and their wills.
 *
 * Taking over a client id goes through `open` alone (design.md: one function to claim ownership and
 * resume), so no adapter closes another connection itself. A session outlives its connection by its
 * expiry interval; a will waits for its delay, is cancelled by a reconnect to the same session, and
 * is published at the latest when the session ends [MQTT-3.1.3-9].
 */
import type { Identity } from './access.js';
import type { MessageDraft, Protocol } from './message.js';
import type { Persistence } from './persistence.js';
import type { Router } from './router.js';
import { Session, type Outlet, type SessionLimits, type Will } from './session.js';
import type { DropLog } from './drop-log.js';
import type { Stats } from './stats.js';
import type { SessionRecord, WillRecord } from '../../storage/store.js';

export const NEVER_EXPIRES = 0xffffffff;

/** The will as published at `now`: its Message Expiry Interval starts then (MQTT 5 3.1.3.2.4). */
export function willMessage(will: Will, now: number): MessageDraft {
  return will.expiryMs === undefined ? will.draft : { ...will.draft, expiresAt: now + will.expiryMs };
}

/** A will read back from its session record (written by `writeSession`). */
export function willFromRecord(rec: WillRecord): Will {
  const { createdAt, expiresAt, ...draft } = rec.message;
  return { draft, delayMs: rec.delayMs, ...(expiresAt !== undefined ? { expiryMs: expiresAt - createdAt } : {}) };
}

export interface OpenOptions {
  readonly protocol: Protocol;
  /** MQTT Clean Start / Clean Session: discard any existing session. */
  readonly cleanStart: boolean;
  /** Seconds; 0 = the session ends with the connection; NEVER_EXPIRES = never. */
  readonly expiryInterval: number;
  readonly will?: Will;
  /** Who the client authenticated as; kept with the session so ACL checks hold while it is away. */
  readonly identity?: Identity | undefined;
}

export interface DisconnectOptions {
  /** True for a normal disconnect that discards the will (MQTT DISCONNECT 0x00, STOMP DISCONNECT). */
  readonly discardWill: boolean;
  /** MQTT 5 DISCONNECT may set a new Session Expiry Interval. */
  readonly expiryInterval?: number;
}

/** Wills count as the broker's own messages in the metrics (operations.md: `internal`). */
const WILL = { source: 'internal' } as const;

/** setTimeout caps at 2^31-1 ms (~24.8 days); longer expiries re-arm. */
const MAX_TIMER_MS = 0x7fffffff;

export class SessionRegistry {
  readonly sessions = new Map<string, Session>();
  private readonly expiryTimers = new Map<Session, NodeJS.Timeout>();
  private readonly willTimers = new Map<Session, NodeJS.Timeout>();
  /** Told of each session that expires (log `session.expired`). */
  onExpired: ((session: Session) => void) | undefined;

  constructor(
    private readonly router: Router,
    private readonly persist: Persistence,
    private readonly stats: Stats,
    private readonly limits: SessionLimits,
    /** Where sessions report messages lost to a limit. */
    private readonly drops?: DropLog,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  get(clientId: string): Session | undefined {
    return this.sessions.get(clientId);
  }

  /**
   * Claims `clientId` for a new connection: takes over a connected one (its connection is closed as
   * 'taken-over' and counts as an abnormal end for its will), then resumes or replaces the session.
   * The caller answers its client, then calls `session.attach` to start deliveries, unless
   * `isCurrentClaim` says a newer connection has claimed the session meanwhile.
   */
  open(clientId: string, opts: OpenOptions): { session: Session; present: boolean; claim: number } {
    let session = this.sessions.get(clientId);
    if (session?.attached) {
      const prev = session.currentOutlet!;
      this.detach(session, { discardWill: false });
      prev.close('taken-over');
      session = this.sessions.get(clientId);
    }
    // A session belongs to the identity that made it: another user with the same client id would
    // get its queued messages (read under the owner's rules), so it starts a new session instead.
    if (session && (opts.cleanStart || session.protocol !== opts.protocol || session.identity?.username !== opts.identity?.username)) {
      this.end(session);
      session = undefined;
    }
    const present = session !== undefined;
    if (session) {
      this.cancelTimers(session);
      session.will = undefined; // a reconnect before the will delay cancels the will [MQTT-3.1.3-9]
      const wasDurable = session.durable !== null;
      session.expiryInterval = opts.expiryInterval;
      if (wasDurable !== opts.expiryInterval > 0) this.setDurable(session, opts.expiryInterval > 0);
    } else {
      session = new Session(clientId, opts.protocol, opts.expiryInterval, null, this.limits, this.stats, this.drops);
      this.sessions.set(clientId, session);
      if (opts.expiryInterval > 0) session.durable = this.persist;
    }
    session.will = opts.will;
    session.identity = opts.identity;
    this.writeSession(session);
    // The newest claim wins: a connection still waiting (e.g. for its session row to reach disk)
    // when a newer one claims the same client id must give up instead of attaching.
    session.claim++;
    return { session, present, claim: session.claim };
  }

  /**
   * The connection behind `outlet` ended. Ignored when the session has since been taken over by
   * another connection (that takeover already handled this one's will).
   */
  disconnect(session: Session, outlet: Outlet, opts: DisconnectOptions): void {
    if (session.currentOutlet !== outlet) return;
    this.detach(session, opts);
  }

  /** False when a newer `open` of the same client id happened after the one that returned `claim`. */
  isCurrentClaim(session: Session, claim: number): boolean {
    return this.sessions.get(session.clientId) === session && session.claim === claim;
  }

  /**
   * Forgets the will when its client may not publish to the will topic: the ACL's write rule is
   * checked when the will is due, as Mosquitto does (the rules may have changed since CONNECT).
   */
  private dropDeniedWill(session: Session): void {
    const will = session.will;
    if (will && !this.router.mayPublish(session.identity, will.draft.topic)) {
      session.will = undefined;
      this.stats.publishDropped++;
    }
  }

  /** Ends a session now: publishes a pending will, removes its subscriptions and stored state. */
  end(session: Session): void {
    if (this.sessions.get(session.clientId) !== session) return;
    this.cancelTimers(session);
    this.sessions.delete(session.clientId);
    this.dropDeniedWill(session);
    const will = session.will;
    session.will = undefined;
    this.router.removeAll(session);
    session.clear();
    if (session.durable) session.durable.write({ kind: 'session.del', clientId: session.clientId });
    session.durable = null;
    if (will) this.router.publish(willMessage(will, Date.now()), WILL);
  }

  /** Ends every session whose connection is gone and stops timers (broker stop). */
  stop(): void {
    for (const t of this.expiryTimers.values()) clearTimeout(t);
    for (const t of this.willTimers.values()) clearTimeout(t);
    this.expiryTimers.clear();
    this.willTimers.clear();
  }

  /** Re-creates a session read from storage at start (the caller restores subs and pending). */
  restore(rec: SessionRecord): Session {
    const session = new Session(rec.clientId, rec.protocol, rec.expiryInterval, this.persist, this.limits, this.stats, this.drops);
    session.identity = rec.username === undefined ? { clientId: rec.clientId } : { clientId: rec.clientId, username: rec.username };
    this.sessions.set(rec.clientId, session);
    return session;
  }

  /** Starts the expiry (and will) clock of a restored, disconnected session. */
  resumeOffline(session: Session, disconnectedAt: number, will: Will | undefined, willDueAt: number | undefined): void {
    session.will = will;
    const now = Date.now();
    if (session.expiryInterval !== NEVER_EXPIRES) {
      const left = disconnectedAt + session.expiryInterval * 1000 - now;
      if (left <= 0) {
        this.stats.sessionsExpired++;
        this.onExpired?.(session);
        this.end(session);
        return;
      }
      this.armExpiry(session, left);
    }
    if (will) {
      const due = (willDueAt ?? now) - now;
      if (due <= 0) this.publishWill(session);
      else this.armWill(session, due);
    }
  }

  // -- internals ------------------------------------------------------------------------------

  private detach(session: Session, opts: DisconnectOptions): void {
    session.detach();
    if (opts.expiryInterval !== undefined) session.expiryInterval = opts.expiryInterval;
    if (opts.discardWill) session.will = undefined;
    this.router.handOver(session);
    if (session.expiryInterval === 0) {
      this.end(session);
      return;
    }
    const will = session.will;
    if (will && will.delayMs === 0) this.publishWill(session);
    else if (will) this.armWill(session, Math.min(will.delayMs, session.expiryInterval * 1000));
    if (session.expiryInterval !== NEVER_EXPIRES) this.armExpiry(session, session.expiryInterval * 1000);
    this.writeSession(session, Date.now());
  }

  private publishWill(session: Session): void {
    this.dropDeniedWill(session);
    const will = session.will;
    session.will = undefined;
    const t = this.willTimers.get(session);
    if (t) clearTimeout(t);
    this.willTimers.delete(session);
    if (!will) return;
    if (session.durable && this.sessions.get(session.clientId) === session) this.writeSession(session, Date.now());
    this.router.publish(willMessage(will, Date.now()), WILL);
  }

  private armWill(session: Session, ms: number): void {
    const t = setTimeout(() => this.publishWill(session), Math.min(ms, MAX_TIMER_MS));
    t.unref();
    this.willTimers.set(session, t);
  }

  private armExpiry(session: Session, ms: number): void {
    const due = Date.now() + ms;
    const fire = (): void => {
      const left = due - Date.now();
      if (left > 0) {
        const again = setTimeout(fire, Math.min(left, MAX_TIMER_MS));
        again.unref();
        this.expiryTimers.set(session, again);
        return;
      }
      this.expiryTimers.delete(session);
      this.stats.sessionsExpired++;
      this.onExpired?.(session);
      this.end(session);
    };
    const t = setTimeout(fire, Math.min(ms, MAX_TIMER_MS));
    t.unref();
    this.expiryTimers.set(session, t);
  }

  private cancelTimers(session: Session): void {
    const e = this.expiryTimers.get(session);
    if (e) clearTimeout(e);
    this.expiryTimers.delete(session);
    const w = this.willTimers.get(session);
    if (w) clearTimeout(w);
    this.willTimers.delete(session);
  }

  /** Session row: written at connect and at disconnect of a durable session. */
  private writeSession(session: Session, disconnectedAt?: number): void {
    if (!session.durable) return;
    const will = session.will;
    const now = Date.now();
    const rec: SessionRecord = {
      clientId: session.clientId,
      protocol: session.protocol,
      expiryInterval: session.expiryInterval,
      ...(session.identity?.username !== undefined ? { username: session.identity.username } : {}),
      ...(disconnectedAt !== undefined ? { disconnectedAt } : {}),
      ...(will
        ? {
            will: {
              // As if published now: expiresAt - createdAt keeps the lifetime (willFromRecord).
              message: { ...willMessage(will, now), createdAt: now },
              delayMs: will.delayMs,
              ...(disconnectedAt !== undefined ? { dueAt: disconnectedAt + will.delayMs } : {}),
            },
          }
        : {}),
    };
    session.durable.write({ kind: 'session.put', session: rec });
  }

  /** A session's durability changed at reconnect (MQTT 5 expiry 0 <-> > 0): write or drop its rows. */
  private setDurable(session: Session, durable: boolean): void {
    if (durable) {
      session.durable = this.persist;
      for (const sub of session.subscriptions.values()) this.router.subscribe(session, sub);
      // Messages already owed stay in memory only: they were accepted under a non-durable session.
      return;
    }
    const d = session.durable!;
    for (const key of session.subscriptions.keys()) d.write({ kind: 'sub.del', clientId: session.clientId, key });
    for (const p of session.owed()) {
      d.write({ kind: 'pending.del', clientId: session.clientId, seq: p.seq });
      d.unref(p.message);
    }
    for (const id of session.incoming) d.write({ kind: 'incoming.del', clientId: session.clientId, packetId: id });
    d.write({ kind: 'session.del', clientId: session.clientId });
    session.durable = null;
  }
}

