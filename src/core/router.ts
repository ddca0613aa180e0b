/**
 * Router: the publish path and the subscription index.
 *
 * publish: assign an id, update retained (durably), match the topic in the TopicTree, and offer the
 * message once per matching session with every subscription of that session that matched (so one
 * copy carries all MQTT 5 Subscription Identifiers), plus once per shared group to one member
 * picked round robin, skipping members with no room. Nothing here awaits: the only wait on the
 * publish path is the adapter waiting for `durable` before it acknowledges.
 *
 * This is also the seam for clustering later (design.md): everything a node delivers goes through
 * `publish`, and interest changes go through `subscribe` / `unsubscribe`.
 */
import type { AccessControl } from './access.js';
import { DelayedMessages, parseDelayedTopic } from './delayed.js';
import { isExpired, type Message, type MessageDraft } from './message.js';
import type { Persistence } from './persistence.js';
import { QueueRegistry, queueNameOf, type Queue, type QueueOptions } from './queues.js';
import { RetainedIndex } from './retained.js';
import type { Session, Subscription } from './session.js';
import { subscriptionRecord } from './session.js';
import { SOURCE_INDEX, clock, type MessageSource, type Stats } from './stats.js';
import { TopicTree } from './topic-tree.js';

interface Member {
  readonly session: Session;
  readonly sub: Subscription;
}

/** A shared subscription `$share/<group>/<filter>`: competing consumers. */
class SharedGroup {
  readonly members: Member[] = [];
  private next = 0;

  constructor(readonly key: string) {}

  /** Round robin, preferring a member that can take the message now, then one that is online. */
  pick(qos: number, exclude?: Session, allowed?: (m: Member) => boolean): Member | undefined {
    const n = this.members.length;
    let online: number | undefined;
    let any: number | undefined;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const m = this.members[idx]!;
      if (m.session === exclude || (allowed && !allowed(m))) continue;
      any ??= idx;
      if (!m.session.attached) continue;
      online ??= idx;
      if (qos === 0 || m.session.hasRoom) return this.take(idx);
    }
    const idx = online ?? any;
    return idx === undefined ? undefined : this.take(idx);
  }

  remove(session: Session): void {
    const i = this.members.findIndex((m) => m.session === session);
    if (i < 0) return;
    this.members.splice(i, 1);
    if (this.next > i) this.next--;
  }

  private take(idx: number): Member {
    this.next = idx + 1;
    return this.members[idx]!;
  }
}

type Route =
  | { readonly kind: 'session'; readonly member: Member }
  | { readonly kind: 'group'; readonly group: SharedGroup }
  | { readonly kind: 'queue'; readonly queue: Queue };

export interface PublishResult {
  /** Sessions (or shared groups) the message was offered to. */
  readonly matched: number;
  /** The message's id; absent when it was discarded (a malformed `$delayed/` topic). */
  readonly id?: number;
  /** Resolves when the writes this publish caused are on disk; undefined when it caused none. */
  readonly durable: Promise<void> | undefined;
}

export interface PublishOptions {
  /** Hold the message back this long before routing it (STOMP x-delay). */
  readonly delayMs?: number;
  /** Counted as coming from here (metrics) instead of its origin's protocol: `http` for the admin API, `internal` for wills. */
  readonly source?: MessageSource;
  /** A retained message kept in memory only: the broker's own $SYS values, made again at every start. */
  readonly transient?: boolean;
}

export class Router {
  readonly retained = new RetainedIndex();
  readonly queues: QueueRegistry;
  readonly delayed: DelayedMessages;
  private readonly tree = new TopicTree<Route>();
  private readonly groups = new Map<string, SharedGroup>();
  private nextMessageId = 1;
  private epoch = 0;
  /** Epoch of the publish being dispatched; sessions compare it to gather their matches. */
  private current = 0;
  private currentTopic = '';
  private readonly touched: Session[] = [];
  private readonly picked: SharedGroup[] = [];
  private readonly boundQueues: Queue[] = [];

  constructor(
    private readonly persist: Persistence,
    private readonly stats: Stats,
    queueOptions?: QueueOptions,
    /** Asked per delivery only for subscriptions flagged `readCheck` (wildcards that reach denied topics). */
    private readonly access?: AccessControl,
  ) {
    this.queues = new QueueRegistry(persist, stats, queueOptions);
    this.queues.withoutExpiry = (msg) => this.stamp({ ...msg, expiresAt: undefined }, msg.createdAt);
    this.delayed = new DelayedMessages(persist, (msg) => this.route(msg));
  }

  get subscriptionCount(): number {
    return this.tree.size;
  }

  /** Distinct filters in the topic index (shared groups and queue bindings count once each). */
  get filterCount(): number {
    return this.tree.filterCount;
  }

  /** Message ids continue after the highest one found in storage. */
  seedMessageId(next: number): void {
    if (next > this.nextMessageId) this.nextMessageId = next;
  }

  /** Gives a draft its id and creation time. */
  stamp(draft: MessageDraft, createdAt = Date.now()): Message {
    const msg: Message = {
      id: this.nextMessageId++,
      topic: draft.topic,
      payload: draft.payload,
      qos: draft.qos,
      retain: draft.retain,
      createdAt,
      expiresAt: draft.expiresAt,
      props: draft.props,
      origin: draft.origin,
      // Only while latencies are observed (metrics.enabled, a sample rate above 0).
      stampedAt: this.stats.latencySampleRate > 0 ? clock() : undefined,
    };
    return msg;
  }

  /**
   * The one entry for every message: from any adapter, wills, the broker itself. `$delayed/<s>/<t>`
   * (or `opts.delayMs`) holds it back; `$queue/<name>` enqueues it; anything else is routed to
   * matching subscriptions, shared groups and bound queues.
   */
  publish(draft: MessageDraft, opts: PublishOptions = {}): PublishResult {
    const mark = this.persist.mark;
    const stats = this.stats;
    stats.messagesReceived++;
    const source = SOURCE_INDEX[opts.source ?? draft.origin.protocol];
    stats.received[source * 3 + draft.qos]!++;
    // Client payload bytes ($SYS publish/bytes/received); the broker's own messages are not traffic.
    if (source !== SOURCE_INDEX.internal) stats.publishBytesIn += draft.payload.length;
    let delayMs = opts.delayMs ?? 0;
    const delayed = parseDelayedTopic(draft.topic);
    if (delayed) {
      draft = { ...draft, topic: delayed.topic };
      delayMs = delayed.seconds * 1000;
    } else if (draft.topic.startsWith('$delayed/')) {
      return { matched: 0, durable: undefined }; // malformed delay: discarded, as EMQX does
    }
    const msg = this.stamp(draft);
    if (delayMs > 0) {
      this.delayed.hold(msg, msg.createdAt + delayMs);
      return { matched: 1, id: msg.id, durable: this.persist.since(mark) };
    }
    const matched = this.route(msg, opts.transient);
    // A drop only when nothing keeps it either: a retained message stays, and the broker's own
    // messages ($SYS, wills) with no listener are not a client's loss.
    if (matched === 0 && !msg.retain && (opts.source ?? msg.origin.protocol) !== 'internal') stats.noSubscribers++;
    return { matched, id: msg.id, durable: this.persist.since(mark) };
  }

  /** Binds queue `name` to a topic filter: every matching publication is also enqueued there. */
  bindQueue(name: string, filter: string): void {
    const queue = this.queues.get(name);
    this.tree.add(filter, `$queue/${name}`, { kind: 'queue', queue });
  }

  /** Adds or replaces `sub` in `session`; returns true when a subscription with its key existed. */
  subscribe(session: Session, sub: Subscription): boolean {
    const old = session.subscriptions.get(sub.key);
    if (old) this.unindex(session, old);
    session.subscriptions.set(sub.key, sub);
    this.index(session, sub);
    session.durable?.write({ kind: 'sub.put', clientId: session.clientId, sub: subscriptionRecord(sub) });
    return old !== undefined;
  }

  /** Puts a restored subscription back in the index without writing it again. */
  restore(session: Session, sub: Subscription): void {
    session.subscriptions.set(sub.key, sub);
    this.index(session, sub);
  }

  unsubscribe(session: Session, key: string): boolean {
    const sub = session.subscriptions.get(key);
    if (!sub) return false;
    session.subscriptions.delete(key);
    this.unindex(session, sub);
    session.durable?.write({ kind: 'sub.del', clientId: session.clientId, key });
    return true;
  }

  /** Offers the retained messages matching `sub` to `session` (never for shared subscriptions). */
  sendRetained(session: Session, sub: Subscription): void {
    if (sub.filter.share !== undefined) return; // [MQTT-4.8.2-?] shared subscriptions get no retained messages
    const subs = [sub];
    // A retained message is given only to a subscriber allowed to read its topic.
    this.retained.match(sub.filter.filter, (msg) => this.mayRead(session, sub, msg.topic) && session.offer(msg, subs, true), Date.now());
  }

  private route(msg: Message, transient = false): number {
    const queue = queueNameOf(msg.topic);
    if (queue !== undefined) {
      this.queues.get(queue).enqueue(msg);
      return 1;
    }
    if (msg.retain) this.setRetained(msg, transient);
    return this.dispatch(msg);
  }

  /** Removes every subscription of a session that ends. */
  removeAll(session: Session): void {
    for (const key of [...session.subscriptions.keys()]) this.unsubscribe(session, key);
  }

  /**
   * A session went offline: its unfinished shared-subscription deliveries go to other members that
   * are online, so a competing consumer that leaves does not sit on messages.
   */
  handOver(session: Session): void {
    session.returnSourced();
    for (const sub of session.subscriptions.values()) {
      if (sub.filter.share === undefined) continue;
      const group = this.groups.get(sub.filter.raw);
      if (!group || !group.members.some((m) => m.session !== session && m.session.attached)) continue;
      for (const p of session.takeShared(sub.filter.raw)) {
        const m = group.pick(p.message.qos, session);
        m?.session.offer(p.message, [m.sub], false, true);
      }
    }
  }

  /** Removes expired retained messages (and their storage). */
  sweepRetained(now = Date.now()): number {
    const expired = this.retained.sweep(now);
    for (const msg of expired) {
      this.persist.write({ kind: 'retained.del', topic: msg.topic });
      this.persist.unref(msg);
    }
    return expired.length;
  }

  /** Puts a restored retained message back without writing it again. */
  restoreRetained(msg: Message): void {
    this.retained.set(msg);
    this.persist.restoreRef(msg.id);
  }

  /**
   * Removes the retained message of `topic`, as a retained publish with an empty payload does
   * (admin API); true when there was one.
   */
  clearRetained(topic: string): boolean {
    const old = this.retained.delete(topic);
    if (!old) return false;
    this.persist.write({ kind: 'retained.del', topic });
    this.persist.unref(old);
    return true;
  }

  /** Sessions whose filters match `topic` ("who receives topic T"). */
  subscribersOf(topic: string): Array<{ clientId: string; key: string }> {
    const out: Array<{ clientId: string; key: string }> = [];
    this.tree.match(topic, (route) => {
      if (route.kind === 'session') out.push({ clientId: route.member.session.clientId, key: route.member.sub.key });
      else if (route.kind === 'group') for (const m of route.group.members) out.push({ clientId: m.session.clientId, key: m.sub.key });
      else out.push({ clientId: `$queue/${route.queue.name}`, key: `$queue/${route.queue.name}` });
    });
    return out;
  }

  // -- internals ------------------------------------------------------------------------------

  private setRetained(msg: Message, transient = false): void {
    // [MQTT-3.3.1-10] an empty payload clears; [MQTT-3.3.1-11] and is not stored.
    if (msg.payload.length === 0) {
      const old = this.retained.delete(msg.topic);
      if (old) {
        this.persist.write({ kind: 'retained.del', topic: msg.topic });
        this.persist.unref(old);
      }
      return;
    }
    if (isExpired(msg, msg.createdAt)) return;
    if (transient) {
      const old = this.retained.set(msg);
      if (old) this.persist.unref(old); // a stored one from before: freed
      return;
    }
    const old = this.retained.set(msg);
    this.persist.ref(msg);
    this.persist.write({ kind: 'retained.put', topic: msg.topic, messageId: msg.id });
    if (old) this.persist.unref(old);
  }

  /**
   * Whether a publication on `topic` would reach any subscription, group or bound queue: the
   * broker's own notices (presence events) skip building a message nobody takes.
   */
  hasReceivers(topic: string): boolean {
    this.found = false;
    this.tree.match(topic, this.foundOne);
    return this.found;
  }

  private found = false;
  private readonly foundOne = (): void => {
    this.found = true;
  };

  private dispatch(msg: Message): number {
    this.current = ++this.epoch;
    this.currentTopic = msg.topic;
    this.tree.match(msg.topic, this.visit);
    const touched = this.touched;
    const picked = this.picked;
    const bound = this.boundQueues;
    const n = touched.length + picked.length + bound.length;
    for (let i = 0; i < touched.length; i++) {
      const s = touched[i]!;
      s.offer(msg, s.matchScratch);
    }
    touched.length = 0;
    for (let i = 0; i < picked.length; i++) {
      const m = picked[i]!.pick(msg.qos, undefined, this.readFilter);
      m?.session.offer(msg, [m.sub]);
    }
    picked.length = 0;
    for (let i = 0; i < bound.length; i++) bound[i]!.enqueue(msg);
    bound.length = 0;
    return n;
  }

  private readonly visit = (route: Route): void => {
    if (route.kind === 'group') {
      this.picked.push(route.group);
      return;
    }
    if (route.kind === 'queue') {
      // Several bindings of one queue may match: enqueue once.
      if (route.queue.matchEpoch !== this.current) {
        route.queue.matchEpoch = this.current;
        this.boundQueues.push(route.queue);
      }
      return;
    }
    const { session, sub } = route.member;
    if (sub.readCheck && !this.mayRead(session, sub, this.currentTopic)) return;
    if (session.matchEpoch !== this.current) {
      session.matchEpoch = this.current;
      session.matchScratch = [sub];
      this.touched.push(session);
    } else {
      session.matchScratch.push(sub);
    }
  };

  /** The ACL allows `session` to receive `topic` through `sub` (checked only where `sub` needs it). */
  private mayRead(session: Session, sub: Subscription, topic: string): boolean {
    if (!sub.readCheck || !this.access || !session.identity) return true;
    return this.access.authorize(session.identity, 'read', topic);
  }

  private readonly readFilter = (m: Member): boolean => this.mayRead(m.session, m.sub, this.currentTopic);

  /** The ACL allows `who` to publish to `topic` (for messages sent on a client's behalf: wills). */
  mayPublish(who: Session['identity'], topic: string): boolean {
    return !this.access || !who || this.access.authorize(who, 'publish', topic);
  }

  /**
   * Re-checks every subscription of `session` after the rules changed: `keep` says whether it may
   * stay and with which `readCheck`; refused ones are removed. Returns the keys removed.
   */
  recheck(session: Session, keep: (sub: Subscription) => { allowed: boolean; readCheck: boolean }): string[] {
    const removed: string[] = [];
    for (const sub of [...session.subscriptions.values()]) {
      const v = keep(sub);
      if (!v.allowed) {
        this.unsubscribe(session, sub.key);
        removed.push(sub.key);
      } else if ((sub.readCheck ?? false) !== v.readCheck) {
        const next: Subscription = { ...sub, readCheck: v.readCheck };
        this.unindex(session, sub);
        session.subscriptions.set(sub.key, next);
        this.index(session, next);
      }
    }
    return removed;
  }

  private index(session: Session, sub: Subscription): void {
    const f = sub.filter;
    if (f.queue !== undefined) {
      this.queues.get(f.queue).addConsumer(session, sub);
      return;
    }
    if (f.share === undefined) {
      if (this.tree.add(f.filter, session.clientId + '\u0000' + sub.key, { kind: 'session', member: { session, sub } })) {
        if (f.filter.includes('+') || f.filter.includes('#')) this.stats.subscriptionsWildcard++;
        else this.stats.subscriptionsExact++;
      }
      return;
    }
    let group = this.groups.get(f.raw);
    if (!group) {
      group = new SharedGroup(f.raw);
      this.groups.set(f.raw, group);
      this.tree.add(f.filter, f.raw, { kind: 'group', group });
    }
    if (!group.members.some((m) => m.session === session)) this.stats.subscriptionsShared++;
    group.remove(session);
    group.members.push({ session, sub });
  }

  private unindex(session: Session, sub: Subscription): void {
    const f = sub.filter;
    if (f.queue !== undefined) {
      this.queues.queues.get(f.queue)?.removeConsumer(session, sub.key);
      return;
    }
    if (f.share === undefined) {
      if (this.tree.remove(f.filter, session.clientId + '\u0000' + sub.key) !== undefined) {
        if (f.filter.includes('+') || f.filter.includes('#')) this.stats.subscriptionsWildcard--;
        else this.stats.subscriptionsExact--;
      }
      return;
    }
    const group = this.groups.get(f.raw);
    if (!group) return;
    if (group.members.some((m) => m.session === session)) this.stats.subscriptionsShared--;
    group.remove(session);
    if (group.members.length === 0) {
      this.groups.delete(f.raw);
      this.tree.remove(f.filter, f.raw);
    }
  }
}
