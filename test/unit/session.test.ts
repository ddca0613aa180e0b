/**
 * Session (src/core/session.ts) without a socket. The Outlet is the unit seam between the core and
 * a connection, so a recording outlet stands in for MqttConnection here; durable sessions run on the
 * real Persistence -> BatchWriter -> MemoryStore stack. Spec rules are MQTT 5.0 unless tagged 3.1.1.
 */
import { describe, expect, it } from 'vitest';
import type { Message, Qos } from '../../src/core/message.js';
import { Persistence } from '../../src/core/persistence.js';
import { Session, type CloseReason, type Delivery, type Outlet, type SendResult, type SessionLimits, type Subscription } from '../../src/core/session.js';
import { Stats } from '../../src/core/stats.js';
import { parseFilter, isTopicError } from '../../src/core/topic.js';
import { BatchWriter } from '../../storage/batch-writer.js';
import { MemoryStore } from '../../storage/memory.js';

/** Records what the session hands out; `writable` and `result` steer it. */
class RecordingOutlet implements Outlet {
  readonly sent: Delivery[] = [];
  readonly released: number[] = [];
  readonly closed: CloseReason[] = [];
  writable = true;
  result: SendResult = 'sent';

  send(d: Delivery): SendResult {
    this.sent.push(d);
    return this.result;
  }

  release(id: number): void {
    this.released.push(id);
  }

  close(reason: CloseReason): void {
    this.closed.push(reason);
  }

  /** Payloads sent so far, as text. */
  get payloads(): string[] {
    return this.sent.map((d) => d.message.payload.toString());
  }
}

const LIMITS: SessionLimits = { maxQueued: 0, dropPolicy: 'oldest', queueQos0: false };

let nextId = 1;
function msg(payload: string, qos: Qos, opts: { retain?: boolean; from?: string; protocol?: 'mqtt' | 'stomp'; expiresAt?: number } = {}): Message {
  return {
    id: nextId++,
    topic: 't/' + payload,
    payload: Buffer.from(payload),
    qos,
    retain: opts.retain ?? false,
    createdAt: Date.now(),
    ...(opts.expiresAt !== undefined ? { expiresAt: opts.expiresAt } : {}),
    props: {},
    origin: { clientId: opts.from ?? 'publisher', protocol: opts.protocol ?? 'mqtt' },
  };
}

function sub(raw: string, qos: Qos, opts: Partial<Pick<Subscription, 'noLocal' | 'retainAsPublished' | 'identifier'>> = {}): Subscription {
  const filter = parseFilter(raw);
  if (isTopicError(filter)) throw new Error(filter.reason);
  return { key: raw, filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...opts };
}

function session(limits: Partial<SessionLimits> = {}, clientId = 'c1'): { s: Session; stats: Stats } {
  const stats = new Stats();
  return { s: new Session(clientId, 'mqtt', 0, null, { ...LIMITS, ...limits }, stats), stats };
}

function durableSession(limits: Partial<SessionLimits> = {}): { s: Session; stats: Stats; store: MemoryStore; persist: Persistence } {
  const stats = new Stats();
  const store = new MemoryStore();
  const persist = new Persistence(new BatchWriter(store));
  return { s: new Session('d1', 'mqtt', 3600, persist, { ...LIMITS, ...limits }, stats), stats, store, persist };
}

const ALL = sub('t/#', 2);

describe('Session: in-flight window', () => {
  it('sends at most `window` QoS 1/2 deliveries and queues the rest in order [MQTT-4.9.0-2]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 2);
    for (let i = 1; i <= 5; i++) s.offer(msg(`m${i}`, 1), [ALL]);
    expect(out.payloads).toEqual(['m1', 'm2']);
    expect(out.sent.map((d) => d.id)).toEqual([1, 2]);
    expect(s.inflight.size).toBe(2);
    expect(s.queued).toBe(3);
    expect(s.hasRoom).toBe(false);

    expect(s.acked(1)).toBe(true);
    expect(out.payloads).toEqual(['m1', 'm2', 'm3']);
    expect(out.sent[2]!.id).toBe(3);
    s.acked(2);
    s.acked(3);
    expect(out.payloads).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    s.acked(4);
    s.acked(5);
    expect(s.inflight.size).toBe(0);
    expect(s.queued).toBe(0);
    expect(s.hasRoom).toBe(true);
  });

  it('treats a window below 1 as 1', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 0);
    s.offer(msg('a', 1), [ALL]);
    s.offer(msg('b', 1), [ALL]);
    expect(out.payloads).toEqual(['a']);
  });

  it('does not count QoS 0 against the window, and never queues it behind a full window', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 1);
    s.offer(msg('q1', 1), [ALL]);
    s.offer(msg('q1b', 1), [ALL]);
    s.offer(msg('q0', 0), [ALL]);
    expect(out.payloads).toEqual(['q1', 'q0']);
    expect(out.sent[1]).toMatchObject({ id: 0, qos: 0, redelivery: false });
  });

  it('ignores an ack for an id not in flight', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 2);
    s.offer(msg('a', 1), [ALL]);
    expect(s.acked(7)).toBe(false);
    expect(s.acked(1)).toBe(true);
    expect(s.acked(1)).toBe(false);
  });

  it('never reuses a packet id that is still in flight, across the 65535 wrap [MQTT-2.2.1-3]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 2);
    s.offer(msg('held', 1), [ALL]); // id 1 stays in flight throughout
    const m = msg('x', 1);
    const bad: number[] = [];
    for (let i = 0; i < 70_000; i++) {
      s.offer(m, [ALL]);
      const id = out.sent[out.sent.length - 1]!.id;
      if (id === 1 || id < 1 || id > 65535) bad.push(id);
      s.acked(id);
    }
    expect(bad).toEqual([]);
    expect(out.sent.at(-1)!.id).toBe(70_001 - 65535 + 1); // wrapped once, skipping 1
    expect([...s.inflight.keys()]).toEqual([1]);
  });

  it('queues QoS 1 while the outlet is not writable and sends it on drained()', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    out.writable = false;
    s.offer(msg('a', 1), [ALL]);
    expect(out.sent).toEqual([]);
    expect(s.queued).toBe(1);
    out.writable = true;
    s.drained();
    expect(out.payloads).toEqual(['a']);
  });

  it('drops QoS 0 while the outlet is not writable, and counts it', () => {
    const { s, stats } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    out.writable = false;
    s.offer(msg('a', 0), [ALL]);
    expect(out.sent).toEqual([]);
    expect(s.queued).toBe(0);
    expect(stats.qos0Dropped).toBe(1);
  });

  it("frees the slot of a delivery the outlet can never take (too large) [MQTT-3.1.2-25]", () => {
    const { s, stats } = session();
    const out = new RecordingOutlet();
    s.attach(out, 1);
    out.result = 'dropped';
    s.offer(msg('big', 1), [ALL]);
    expect(s.inflight.size).toBe(0);
    expect(stats.oversizeDropped).toBe(1);
    out.result = 'sent';
    s.offer(msg('next', 1), [ALL]);
    expect(out.payloads).toEqual(['big', 'next']);
    expect(s.inflight.size).toBe(1);
  });

  it('drops queued messages that expired while waiting [MQTT-3.3.2-5]', () => {
    const { s, stats } = session();
    const out = new RecordingOutlet();
    s.offer(msg('old', 1, { expiresAt: Date.now() - 1 }), [ALL]);
    s.offer(msg('fresh', 1, { expiresAt: Date.now() + 60_000 }), [ALL]);
    s.attach(out, 10);
    expect(out.payloads).toEqual(['fresh']);
    expect(stats.expired).toBe(1);
  });
});

describe('Session: queueing while detached', () => {
  it('queues QoS 1 and 2 while detached and sends them in order on attach [MQTT-3.1.2-5]', () => {
    const { s } = session();
    s.offer(msg('a', 1), [ALL]);
    s.offer(msg('b', 2), [ALL]);
    s.offer(msg('c', 1), [ALL]);
    expect(s.queued).toBe(3);
    expect(s.attached).toBe(false);
    const out = new RecordingOutlet();
    s.attach(out, 2);
    expect(out.payloads).toEqual(['a', 'b']);
    expect(out.sent.map((d) => [d.qos, d.redelivery])).toEqual([
      [1, false],
      [2, false],
    ]);
    s.acked(out.sent[0]!.id);
    expect(out.payloads).toEqual(['a', 'b', 'c']);
  });

  it('drops QoS 0 while detached unless queueQos0 is set on a durable session', async () => {
    const plain = session({ queueQos0: true });
    plain.s.offer(msg('a', 0), [ALL]);
    expect(plain.s.queued).toBe(0);

    const durableNoQ0 = durableSession({ queueQos0: false });
    durableNoQ0.s.offer(msg('a', 0), [ALL]);
    expect(durableNoQ0.s.queued).toBe(0);

    const d = durableSession({ queueQos0: true });
    d.s.offer(msg('q0', 0), [ALL]);
    d.s.offer(msg('q1', 1), [ALL]);
    expect(d.s.queued).toBe(2);
    const out = new RecordingOutlet();
    d.s.attach(out, 10);
    expect(out.sent.map((x) => [x.message.payload.toString(), x.qos, x.id])).toEqual([
      ['q0', 0, 0],
      ['q1', 1, 1],
    ]);
    await d.persist.barrier();
    // The QoS 0 row is gone once sent; the QoS 1 row stays until acknowledged.
    expect(d.store.counts()).toMatchObject({ pending: 1, messages: 1 });
  });

  it("drop policy 'oldest' keeps the newest maxQueued messages and counts the drops", () => {
    const { s, stats } = session({ maxQueued: 2, dropPolicy: 'oldest' });
    for (const p of ['a', 'b', 'c', 'd']) s.offer(msg(p, 1), [ALL]);
    expect(s.queued).toBe(2);
    expect(stats.queueDropped).toBe(2);
    const out = new RecordingOutlet();
    s.attach(out, 10);
    expect(out.payloads).toEqual(['c', 'd']);
  });

  it("drop policy 'newest' keeps the first maxQueued messages and counts the drops", () => {
    const { s, stats } = session({ maxQueued: 2, dropPolicy: 'newest' });
    for (const p of ['a', 'b', 'c', 'd']) s.offer(msg(p, 1), [ALL]);
    expect(s.queued).toBe(2);
    expect(stats.queueDropped).toBe(2);
    const out = new RecordingOutlet();
    s.attach(out, 10);
    expect(out.payloads).toEqual(['a', 'b']);
  });

  it('applies the queue limit to the queue behind a full window too, not to what is in flight', () => {
    const { s, stats } = session({ maxQueued: 1, dropPolicy: 'oldest' });
    const out = new RecordingOutlet();
    s.attach(out, 1);
    for (const p of ['a', 'b', 'c']) s.offer(msg(p, 1), [ALL]);
    expect(out.payloads).toEqual(['a']);
    expect(s.queued).toBe(1);
    expect(stats.queueDropped).toBe(1);
    s.acked(1);
    expect(out.payloads).toEqual(['a', 'c']);
  });

  it('frees dropped messages from storage on a durable session', async () => {
    const d = durableSession({ maxQueued: 1, dropPolicy: 'oldest' });
    d.s.offer(msg('a', 1), [ALL]);
    d.s.offer(msg('b', 1), [ALL]);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 1, messages: 1 });
    const state = await d.store.open();
    expect([...state.messages.values()].map((m) => m.payload.toString())).toEqual(['b']);
  });
});

describe('Session: what each delivery carries', () => {
  it('downgrades to min(message QoS, granted QoS) [MQTT-3.8.4-8]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    s.offer(msg('2to1', 2), [sub('t/#', 1)]);
    s.offer(msg('2to0', 2), [sub('t/#', 0)]);
    s.offer(msg('0to0', 0), [sub('t/#', 2)]);
    s.offer(msg('1to1', 1), [sub('t/#', 2)]);
    expect(out.sent.map((d) => [d.message.payload.toString(), d.qos])).toEqual([
      ['2to1', 1],
      ['2to0', 0],
      ['0to0', 0],
      ['1to1', 1],
    ]);
    expect(out.sent[1]!.id).toBe(0);
  });

  it('uses the highest QoS among overlapping subscriptions and carries all of them [MQTT-3.3.4-2] [MQTT-3.3.4-3]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    const a = sub('t/+', 0, { identifier: 1 });
    const b = sub('t/#', 1, { identifier: 2 });
    s.offer(msg('m', 2), [a, b]);
    expect(out.sent).toHaveLength(1);
    expect(out.sent[0]!.qos).toBe(1);
    expect(out.sent[0]!.matched).toEqual([a, b]);
  });

  it('does not deliver to a No Local subscription its own messages [MQTT-3.8.3-3]', () => {
    const { s } = session({}, 'me');
    const out = new RecordingOutlet();
    s.attach(out, 10);
    const nl = sub('t/#', 1, { noLocal: true });
    s.offer(msg('own', 1, { from: 'me' }), [nl]);
    expect(out.sent).toEqual([]);
    s.offer(msg('other', 1, { from: 'you' }), [nl]);
    expect(out.payloads).toEqual(['other']);
  });

  it('with No Local on one of two matching subscriptions, delivers through the other only', () => {
    const { s } = session({}, 'me');
    const out = new RecordingOutlet();
    s.attach(out, 10);
    const nl = sub('t/#', 2, { noLocal: true, identifier: 1 });
    const plain = sub('t/+', 1, { identifier: 2 });
    s.offer(msg('own', 2, { from: 'me' }), [nl, plain]);
    expect(out.sent).toHaveLength(1);
    expect(out.sent[0]!.matched).toEqual([plain]);
    expect(out.sent[0]!.qos).toBe(1); // the No Local subscription's QoS 2 does not count
  });

  it('No Local compares the origin protocol too: a STOMP client with the same id is someone else', () => {
    const { s } = session({}, 'me');
    const out = new RecordingOutlet();
    s.attach(out, 10);
    s.offer(msg('stomp', 1, { from: 'me', protocol: 'stomp' }), [sub('t/#', 1, { noLocal: true })]);
    expect(out.payloads).toEqual(['stomp']);
  });

  it('sets RETAIN on live messages only with Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    s.offer(msg('r-plain', 0, { retain: true }), [sub('t/#', 0)]);
    s.offer(msg('r-rap', 0, { retain: true }), [sub('t/#', 0, { retainAsPublished: true })]);
    s.offer(msg('nr-rap', 0, { retain: false }), [sub('t/#', 0, { retainAsPublished: true })]);
    s.offer(msg('r-mixed', 1, { retain: true }), [sub('t/#', 1), sub('t/+', 1, { retainAsPublished: true })]);
    expect(out.sent.map((d) => [d.message.payload.toString(), d.retain])).toEqual([
      ['r-plain', false],
      ['r-rap', true],
      ['nr-rap', false],
      ['r-mixed', true],
    ]);
  });

  it('sets RETAIN on messages sent because of a new subscription [MQTT-3.3.1-8]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    s.offer(msg('stored', 1, { retain: true }), [sub('t/#', 1)], true);
    expect(out.sent[0]).toMatchObject({ retain: true, qos: 1 });
  });
});

describe('Session: acknowledgement flow', () => {
  it('QoS 1: PUBACK ends the delivery', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 10);
    s.offer(msg('a', 1), [ALL]);
    expect(s.received(1)).toBe(false); // PUBREC for a QoS 1 delivery is not ours to take
    expect(out.released).toEqual([]);
    expect(s.acked(1)).toBe(true);
    expect(s.inflight.size).toBe(0);
  });

  it('QoS 2: PUBREC -> PUBREL (again on a repeated PUBREC) -> PUBCOMP frees the slot [MQTT-4.3.3]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 1);
    s.offer(msg('a', 2), [ALL]);
    s.offer(msg('b', 2), [ALL]);
    expect(out.payloads).toEqual(['a']);
    expect(s.received(99)).toBe(false);
    expect(s.received(1)).toBe(true);
    expect(out.released).toEqual([1]);
    expect(s.inflight.get(1)?.phase).toBe('released');
    expect(out.payloads).toEqual(['a']); // the slot is held until PUBCOMP
    expect(s.received(1)).toBe(true);
    expect(out.released).toEqual([1, 1]);
    expect(s.acked(1)).toBe(true);
    expect(out.payloads).toEqual(['a', 'b']);
  });

  it('a rejected delivery (v5 error reason code) ends like an ack', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 1);
    s.offer(msg('a', 1), [ALL]);
    s.offer(msg('b', 1), [ALL]);
    expect(s.rejected(1)).toBe(true);
    expect(out.payloads).toEqual(['a', 'b']);
  });

  it('durable QoS 2: the PUBLISH leaves only once its pending row is on disk, PUBREL once "released" is', async () => {
    const d = durableSession();
    const out = new RecordingOutlet();
    d.s.attach(out, 10);
    d.s.offer(msg('q2', 2), [ALL]);
    expect(out.sent).toEqual([]);
    await d.persist.barrier();
    expect(out.payloads).toEqual(['q2']);
    const state = await d.store.open();
    expect(state.pending.map((p) => p.entry.phase)).toEqual(['sent']);

    expect(d.s.received(1)).toBe(true);
    expect(out.released).toEqual([]);
    await d.persist.barrier();
    await Promise.resolve();
    expect(out.released).toEqual([1]);
    expect((await d.store.open()).pending.map((p) => p.entry.phase)).toEqual(['released']);

    d.s.acked(1);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 0, messages: 0 });
  });

  it('durable: a message fanned out is stored once and freed with its last reference', async () => {
    const d = durableSession();
    const out = new RecordingOutlet();
    d.s.attach(out, 10);
    const m = msg('shared', 1);
    d.s.offer(m, [sub('t/#', 1)]);
    d.s.offer(m, [sub('t/+', 1)]);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 2, messages: 1 });
    d.s.acked(1);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 1, messages: 1 });
    d.s.acked(2);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 0, messages: 0 });
  });

  it('holds incoming QoS 2 packet ids until PUBREL [MQTT-4.3.3-10]', async () => {
    const d = durableSession();
    expect(d.s.holdIncoming(5)).toBe(true);
    expect(d.s.holdIncoming(5)).toBe(false); // a resend: not published again
    expect(d.s.holdIncoming(6)).toBe(true);
    await d.persist.barrier();
    expect(d.store.counts().incoming).toBe(2);
    expect(d.s.releaseIncoming(5)).toBe(true);
    expect(d.s.releaseIncoming(5)).toBe(false);
    expect(d.s.holdIncoming(5)).toBe(true); // the id is free for a new message
    await d.persist.barrier();
    expect(d.store.counts().incoming).toBe(2);
  });
});

describe('Session: attach after a detach', () => {
  it('resends unacknowledged PUBLISH with the same ids and the redelivery flag, then the queue [MQTT-4.4.0-1] [MQTT-3.3.1-1]', () => {
    const { s } = session();
    const first = new RecordingOutlet();
    s.attach(first, 2);
    for (const p of ['a', 'b', 'c']) s.offer(msg(p, 1), [ALL]);
    expect(first.sent.map((d) => [d.id, d.redelivery])).toEqual([
      [1, false],
      [2, false],
    ]);
    s.acked(1); // 'c' goes out as id 3
    s.detach();
    expect(s.attached).toBe(false);
    s.offer(msg('d', 1), [ALL]);

    const second = new RecordingOutlet();
    s.attach(second, 2);
    expect(second.sent.map((d) => [d.message.payload.toString(), d.id, d.redelivery])).toEqual([
      ['b', 2, true],
      ['c', 3, true],
    ]);
    s.acked(2);
    expect(second.sent.map((d) => [d.message.payload.toString(), d.redelivery])).toEqual([
      ['b', true],
      ['c', true],
      ['d', false], // never sent before: no DUP
    ]);
    expect(first.sent).toHaveLength(3); // nothing went to the old outlet after detach
  });

  it('QoS 2: resends PUBREL, not PUBLISH, for a delivery whose PUBREC arrived [MQTT-4.4.0-1]', () => {
    const { s } = session();
    const first = new RecordingOutlet();
    s.attach(first, 10);
    s.offer(msg('rec', 2), [ALL]);
    s.offer(msg('norec', 2), [ALL]);
    s.received(1);
    s.detach();
    const second = new RecordingOutlet();
    s.attach(second, 10);
    expect(second.released).toEqual([1]);
    expect(second.sent.map((d) => [d.message.payload.toString(), d.id, d.redelivery])).toEqual([['norec', 2, true]]);
  });

  it('a delivery the detached session never transmitted goes out without the redelivery flag', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 1);
    out.writable = false;
    s.offer(msg('a', 1), [ALL]);
    s.detach();
    const again = new RecordingOutlet();
    s.attach(again, 1);
    expect(again.sent.map((d) => d.redelivery)).toEqual([false]);
  });
});

describe('Session: takeShared', () => {
  it('hands back queued and sent-but-unacknowledged QoS 1 deliveries of one shared subscription, keeps the rest [MQTT-4.8.2-4] [MQTT-4.8.2-5]', () => {
    const { s } = session();
    const out = new RecordingOutlet();
    s.attach(out, 4);
    const shared = sub('$share/g/t/#', 2);
    const other = sub('$share/h/t/#', 2);
    const own = sub('t/#', 2);
    s.offer(msg('s-rec', 2), [shared]); // id 1, will get PUBREC
    s.offer(msg('s-sent', 1), [shared]); // id 2
    s.offer(msg('s-sent-q2', 2), [shared]); // id 3, no PUBREC yet
    s.offer(msg('own-sent', 1), [own]); // id 4
    s.offer(msg('s-queued', 1), [shared]);
    s.offer(msg('h-queued', 1), [other]);
    s.offer(msg('own-queued', 1), [own]);
    s.received(1);

    const taken = s.takeShared('$share/g/t/#');
    expect(taken.map((p) => p.message.payload.toString())).toEqual(['s-sent', 's-queued']);
    // A QoS 2 PUBLISH once sent (PUBREC seen or not) may already be with the client: only this
    // session may finish it.
    expect([...s.inflight.keys()]).toEqual([1, 3, 4]);
    expect([...s.owed()].map((p) => p.message.payload.toString())).toEqual(['s-rec', 's-sent-q2', 'own-sent', 'h-queued', 'own-queued']);
    expect(s.queued).toBe(2);

    // The freed slot is used by what stays queued.
    s.acked(4);
    expect(out.payloads.slice(4)).toEqual(['h-queued', 'own-queued']);
  });

  it('frees the storage of what it hands back on a durable session', async () => {
    const d = durableSession();
    d.s.offer(msg('a', 1), [sub('$share/g/t/#', 1)]);
    d.s.offer(msg('b', 1), [sub('t/#', 1)]);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 2, messages: 2 });
    expect(d.s.takeShared('$share/g/t/#')).toHaveLength(1);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 1, messages: 1 });
  });
});

describe('Session: clear', () => {
  it('drops everything owed and frees its storage', async () => {
    const d = durableSession();
    const out = new RecordingOutlet();
    d.s.attach(out, 1);
    d.s.offer(msg('a', 1), [ALL]);
    d.s.offer(msg('b', 1), [ALL]);
    d.s.holdIncoming(9);
    d.s.clear();
    expect(d.s.inflight.size).toBe(0);
    expect(d.s.queued).toBe(0);
    expect(d.s.incoming.size).toBe(0);
    await d.persist.barrier();
    expect(d.store.counts()).toMatchObject({ pending: 0, messages: 0, incoming: 0 });
  });
});
