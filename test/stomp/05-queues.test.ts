/**
 * Durable queues shared by both protocols (design.md "One namespace", "Queues"): STOMP /queue/<q>
 * and MQTT `$queue/<q>` are one queue; FIFO; competing consumers of either protocol, round robin
 * within prefetch; unacknowledged messages of a consumer that leaves go to another one marked
 * redelivered (STOMP redelivered:true, MQTT DUP); maxDeliveries and NACK requeue:false dead-letter
 * to DLQ.<q> with origin and reason; expiry; delayed delivery (STOMP x-delay, MQTT
 * `$delayed/<s>/<topic>`), kept across a kill -9; priorities; topic bindings from the config.
 *
 * Decisions tested here (README reference): `$queue/...` is a `$` topic, so `#` and `+/...`
 * subscribers never see queue publications [MQTT-4.7.2-1]; a subscription to `$queue/#` (or any
 * wildcard in a queue name) is refused with Topic Filter Invalid, since a consumer consumes one
 * named queue; an MQTT v5 publish into a queue is acknowledged with Success, not No Matching
 * Subscribers, because the queue keeps it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPubackPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { freePort, startBrokerProcess, type BrokerProcess } from '../helpers/process-broker.js';
import { RawClient } from '../helpers/raw.js';
import { StompWire, type WireFrame } from '../helpers/stomp-queue.js';
import { nonce } from '../helpers/sync.js';

function userProps(p: IPublishPacket): Record<string, string | string[]> {
  return (p.properties?.userProperties ?? {}) as Record<string, string | string[]>;
}

describe('queues', async () => {
  const tb = await startBroker({
    config: {
      queues: {
        bindings: [
          // Two bindings of one queue that both match bind/<x>/x: the publication is enqueued once.
          { queue: 'bound', filter: 'bind/+/x' },
          { queue: 'bound', filter: 'bind/#' },
          { queue: 'bound-other', filter: 'other/+' },
        ],
      },
    },
  });
  const stomp = (): Promise<StompWire> => StompWire.connect(tb.stompPort);

  describe('one queue, both protocols', () => {
    it('STOMP SEND to /queue/q is kept until a consumer subscribes, then delivered FIFO once', async () => {
      const q = `/queue/fifo-${nonce()}`;
      const p = await stomp();
      for (let i = 0; i < 20; i++) await p.send(q, `m${i}`, i % 2 === 0 ? { persistent: 'true' } : {});
      const c = await stomp();
      await c.subscribe(q, 's', 'client-individual');
      const got = await c.waitMessages(20);
      expect(got.map((f) => f.body.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      for (const f of got) {
        expect(f.headers['destination']).toBe(q);
        expect(f.headers['subscription']).toBe('s');
        expect(f.headers['redelivered']).toBeUndefined();
        expect(f.headers['persistent']).toBe(Number(f.body.toString().slice(1)) % 2 === 0 ? 'true' : undefined);
        c.ack(f);
      }
      await c.disconnect();
      // Acknowledged messages are gone: the next consumer's first message is one sent afterwards.
      await p.send(q, 'after');
      const c2 = await stomp();
      await c2.subscribe(q, 's2', 'auto');
      const [first] = await c2.waitMessages(1);
      expect(first!.body.toString()).toBe('after');
      await p.send(q, 'after2');
      await c2.waitMessages(2);
      expect(c2.bodies()).toEqual(['after', 'after2']);
    });

    it('MQTT publish to $queue/q and STOMP SEND to /queue/q fill one queue; each consumer kind reads it', async () => {
      const n = nonce();
      const mq = await connect(tb.port);
      const ack = await mq.publishAsync(`$queue/both-${n}`, 'from-mqtt', { qos: 1 });
      // The queue keeps it: Success, not No Matching Subscribers (0x10).
      expect((ack as IPubackPacket | undefined)?.reasonCode ?? 0).toBe(0);
      const p = await stomp();
      await p.send(`/queue/both-${n}`, 'from-stomp');
      const c = await stomp();
      await c.subscribe(`/queue/both-${n}`, 's', 'client-individual');
      const got = await c.waitMessages(2);
      expect(got.map((f) => f.body.toString())).toEqual(['from-mqtt', 'from-stomp']);
      expect(got[0]!.headers['destination']).toBe(`/queue/both-${n}`);
      for (const f of got) c.ack(f);

      // And the other way: STOMP SEND -> MQTT $queue consumer.
      const sub = await connect(tb.port);
      await sub.subscribeAsync(`$queue/back-${n}`, { qos: 1 });
      await p.send(`/queue/back-${n}`, 'to-mqtt');
      await until(() => sub.received.length === 1, 3000, 'MQTT consumer');
      const r = sub.received[0]!;
      expect(r.topic).toBe(`$queue/back-${n}`);
      expect(r.payload.toString()).toBe('to-mqtt');
      // Delivered at the consumer's QoS (its ack mode), though sent non-persistent (QoS 0).
      expect(r.packet.qos).toBe(1);
      expect(r.packet.dup).toBe(false);
    });

    it('queue publications are $ topics: # and +/... subscribers never see them; $queue/# is refused [MQTT-4.7.2-1]', async () => {
      const n = nonce();
      const all = await connect(tb.port);
      await all.subscribeAsync('#', { qos: 1 });
      await all.subscribeAsync(`+/dollar-${n}`, { qos: 1 });
      for (const version of [5, 4] as const) {
        const raw = await RawClient.connect(tb.port, version);
        await raw.handshake();
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$queue/#', qos: 1 }, { topic: '$queue/+', qos: 1 }, { topic: '$queue/', qos: 1 }] });
        const suback = (await raw.next('suback')) as ISubackPacket;
        // Topic Filter Invalid (3.1.1: Failure): a consumer reads one named queue.
        expect(suback.granted).toEqual(version === 5 ? [0x8f, 0x8f, 0x8f] : [0x80, 0x80, 0x80]);
        raw.end();
      }

      const pub = await connect(tb.port);
      await pub.publishAsync(`$queue/dollar-${n}`, 'q', { qos: 1 });
      await pub.publishAsync(`t/dollar-${n}`, 'visible', { qos: 1 });
      await until(() => all.received.some((r) => r.topic === `t/dollar-${n}`), 3000, 'the plain message');
      // One copy for the two matching subscriptions; none of the queue publication.
      expect(all.received.filter((r) => r.topic.includes(`dollar-${n}`)).map((r) => r.topic)).toEqual([`t/dollar-${n}`]);
      // The queue still holds it for its consumer.
      const c = await connect(tb.port);
      await c.subscribeAsync(`$queue/dollar-${n}`, { qos: 1 });
      await until(() => c.received.length === 1, 3000, 'queue consumer');
      expect(c.received[0]!.payload.toString()).toBe('q');
    });
  });

  describe('competing consumers', () => {
    it('STOMP and MQTT consumers mixed: each message exactly once, round robin, FIFO per consumer', async () => {
      const n = nonce();
      const q = `rr-${n}`;
      const s1 = await stomp();
      await s1.subscribe(`/queue/${q}`, 'a', 'auto');
      const s2 = await stomp();
      await s2.subscribe(`/queue/${q}`, 'b', 'client-individual');
      const m1 = await connect(tb.port);
      await m1.subscribeAsync(`$queue/${q}`, { qos: 1 });
      const m2 = await connect(tb.port, { protocolVersion: 4 });
      await m2.subscribeAsync(`$queue/${q}`, { qos: 0 });
      const p = await stomp();
      const N = 40;
      for (let i = 0; i < N; i++) await p.send(`/queue/${q}`, String(i), {}, i === N - 1);
      const bodies = (): number[][] => [s1.bodies().map(Number), s2.bodies().map(Number), m1.received.map((r) => Number(r.payload.toString())), m2.received.map((r) => Number(r.payload.toString()))];
      await until(() => bodies().flat().length >= N, 5000, 'all messages');
      const per = bodies();
      // Every consumer had room all along (prefetch 100), so the split is exact.
      expect(per.map((b) => b.length)).toEqual([10, 10, 10, 10]);
      expect(per.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i));
      for (const b of per) {
        expect(b).toEqual([...b].sort((x, y) => x - y));
        // Round robin: consecutive messages of one consumer are 4 apart.
        for (let i = 1; i < b.length; i++) expect(b[i]! - b[i - 1]!).toBe(4);
      }
      for (const f of s2.messages()) s2.ack(f);
    });

    it('prefetch-count caps the unacknowledged messages of a consumer; an ACK makes room again', async () => {
      const q = `/queue/prefetch-${nonce()}`;
      const slow = await stomp();
      await slow.subscribe(q, 'slow', 'client-individual', { 'prefetch-count': '2' });
      const fast = await stomp();
      await fast.subscribe(q, 'fast', 'client-individual', { 'prefetch-count': '100' });
      const p = await stomp();
      for (let i = 0; i < 10; i++) await p.send(q, String(i));
      await until(() => slow.messages().length + fast.messages().length === 10, 3000, '10 messages');
      expect(slow.messages()).toHaveLength(2);
      expect(fast.messages()).toHaveLength(8);
      // fast stops acking: 100 is far away, so it keeps taking; slow acks one and takes one more.
      slow.ack(slow.messages()[0]!);
      await p.send(q, 'x');
      await p.send(q, 'y');
      await until(() => slow.messages().length + fast.messages().length === 12, 3000, '12 messages');
      expect(slow.messages()).toHaveLength(3);
    });

    it('MQTT consumer: its Receive Maximum is its prefetch; messages wait for PUBACKs', async () => {
      const q = `rm-${nonce()}`;
      const raw = await RawClient.connect(tb.port, 5);
      await raw.handshake({ properties: { receiveMaximum: 2 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$queue/${q}`, qos: 1 }] });
      await raw.next('suback');
      const p = await stomp();
      for (let i = 0; i < 5; i++) await p.send(`/queue/${q}`, String(i));
      const first = [await raw.next('publish'), await raw.next('publish')] as IPublishPacket[];
      expect(first.map((x) => x.payload.toString())).toEqual(['0', '1']);
      // Nothing more until a PUBACK: a PINGRESP comes back with nothing before it.
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
      expect(raw.packets.filter((x) => x.cmd === 'publish')).toHaveLength(0);
      raw.send({ cmd: 'puback', messageId: first[0]!.messageId! });
      const third = (await raw.next('publish')) as IPublishPacket;
      expect(third.payload.toString()).toBe('2');
      raw.end();
    });
  });

  describe('redelivery', () => {
    it('a STOMP consumer that disconnects with unacked messages: they go to an MQTT consumer with DUP, in order', async () => {
      const q = `redeliver-${nonce()}`;
      const a = await stomp();
      await a.subscribe(`/queue/${q}`, 'a', 'client-individual');
      const p = await stomp();
      for (let i = 0; i < 3; i++) await p.send(`/queue/${q}`, `r${i}`, { persistent: 'true' });
      await a.waitMessages(3);
      const b = await connect(tb.port);
      await b.subscribeAsync(`$queue/${q}`, { qos: 1 });
      // All three are out with `a`: b gets nothing yet (a later message goes to b, round robin).
      await p.send(`/queue/${q}`, 'r3');
      await until(() => b.received.length === 1, 3000, 'r3 at b');
      expect(b.received[0]!.payload.toString()).toBe('r3');
      expect(b.received[0]!.packet.dup).toBe(false);
      a.destroy();
      await until(() => b.received.length === 4, 3000, 'redelivered messages');
      const back = b.received.slice(1);
      expect(back.map((r) => r.payload.toString())).toEqual(['r0', 'r1', 'r2']);
      for (const r of back) expect(r.packet.dup).toBe(true);
    });

    it('an MQTT consumer that disconnects without PUBACK: its messages go to a STOMP consumer with redelivered:true', async () => {
      const q = `redeliver-m-${nonce()}`;
      const raw = await RawClient.connect(tb.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$queue/${q}`, qos: 1 }] });
      await raw.next('suback');
      const p = await stomp();
      await p.send(`/queue/${q}`, 'x0');
      await p.send(`/queue/${q}`, 'x1');
      await raw.next('publish');
      await raw.next('publish');
      const s = await stomp();
      await s.subscribe(`/queue/${q}`, 's', 'client-individual');
      raw.end();
      const got = await s.waitMessages(2);
      expect(got.map((f) => f.body.toString())).toEqual(['x0', 'x1']);
      for (const f of got) expect(f.headers['redelivered']).toBe('true');
    });

    it('NACK requeues: the message comes back marked redelivered (to the same consumer when it is the only one)', async () => {
      const q = `/queue/nack-${nonce()}`;
      const c = await stomp();
      await c.subscribe(q, 's', 'client-individual');
      const p = await stomp();
      await p.send(q, 'n');
      const [m] = await c.waitMessages(1);
      expect(m!.headers['redelivered']).toBeUndefined();
      c.nack(m!);
      const again = await c.waitMessages(2);
      expect(again[1]!.body.toString()).toBe('n');
      expect(again[1]!.headers['redelivered']).toBe('true');
      // A new delivery: a new ack id.
      expect(again[1]!.headers['ack']).not.toBe(m!.headers['ack']);
      c.ack(again[1]!);
    });

    it('an MQTT consumer with a persistent session gets what the queue held while it was offline', async () => {
      const n = nonce();
      const q = `offline-${n}`;
      const opts = { clientId: `qc-${n}`, clean: false, properties: { sessionExpiryInterval: 300 } } as const;
      const c = await connect(tb.port, opts);
      await c.subscribeAsync(`$queue/${q}`, { qos: 1 });
      await c.endAsync();
      const p = await stomp();
      for (let i = 0; i < 3; i++) await p.send(`/queue/${q}`, `o${i}`);
      const c2 = await connect(tb.port, opts);
      await until(() => c2.received.length === 3, 3000, 'queued messages after reconnect');
      expect(c2.received.map((r) => r.payload.toString())).toEqual(['o0', 'o1', 'o2']);
    });
  });

  describe('MQTT consumers', () => {
    it('a QoS 2 consumer: the entry leaves the queue at PUBCOMP, delivered once', async () => {
      const q = `q2-${nonce()}`;
      const c = await connect(tb.port);
      await c.subscribeAsync(`$queue/${q}`, { qos: 2 });
      const p = await stomp();
      await p.send(`/queue/${q}`, 'two', { persistent: 'true' });
      await until(() => c.received.length === 1, 3000, 'the message');
      expect(c.received[0]!.packet.qos).toBe(2);
      const queue = tb.broker.core.router.queues.queues.get(q)!;
      await until(() => queue.depth === 0, 3000, 'the entry to leave at PUBCOMP');
    });

    it('a v5 PUBACK with an error reason code rejects the message: dead-lettered (reason rejected)', async () => {
      const q = `pubrej-${nonce()}`;
      const raw = await RawClient.connect(tb.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$queue/${q}`, qos: 1 }] });
      await raw.next('suback');
      const p = await stomp();
      await p.send(`/queue/${q}`, 'refused');
      const pub = (await raw.next('publish')) as IPublishPacket;
      raw.send({ cmd: 'puback', messageId: pub.messageId!, reasonCode: 0x80 });
      const dlq = await stomp();
      await dlq.subscribe(`/queue/DLQ.${q}`, 'd', 'auto');
      const [dead] = await dlq.waitMessages(1);
      expect(dead!.body.toString()).toBe('refused');
      expect(dead!.headers['x-first-death-reason']).toBe('rejected');
      raw.end();
    });
  });

  describe('transactions', () => {
    it('SENDs to a queue inside BEGIN..COMMIT are enqueued at COMMIT; ABORT discards them and an ACK in it', async () => {
      const q = `/queue/tx-${nonce()}`;
      const c = await stomp();
      await c.subscribe(q, 's', 'client-individual');
      const p = await stomp();
      await p.request('BEGIN', { transaction: 't1' });
      await p.send(q, 'in-tx-1', { transaction: 't1' });
      await p.send(q, 'in-tx-2', { transaction: 't1' });
      await p.send(q, 'outside');
      const [first] = await c.waitMessages(1);
      expect(first!.body.toString()).toBe('outside');
      await p.request('COMMIT', { transaction: 't1' });
      await c.waitMessages(3);
      expect(c.bodies()).toEqual(['outside', 'in-tx-1', 'in-tx-2']);

      await p.request('BEGIN', { transaction: 't2' });
      await p.send(q, 'aborted', { transaction: 't2' });
      await p.request('ABORT', { transaction: 't2' });
      // An ACK inside an aborted transaction never happened: the message is still the consumer's.
      await c.request('BEGIN', { transaction: 'c1' });
      c.write('ACK', { id: first!.headers['ack']!, transaction: 'c1' });
      await c.request('ABORT', { transaction: 'c1' });
      for (const f of c.messages().slice(1)) c.ack(f);
      const other = await stomp();
      await other.subscribe(q, 'o', 'auto');
      c.destroy();
      const [back] = await other.waitMessages(1);
      expect(back!.body.toString()).toBe('outside');
      expect(back!.headers['redelivered']).toBe('true');
      await p.send(q, 'marker');
      await other.waitMessages(2);
      expect(other.bodies()).toEqual(['outside', 'marker']);
    });
  });

  describe('priority', () => {
    it('priority header 0-9: higher first, FIFO within a priority (default 4)', async () => {
      const q = `/queue/prio-${nonce()}`;
      const p = await stomp();
      const sends: Array<[string, string | undefined]> = [
        ['a', '1'],
        ['b', undefined],
        ['c', '9'],
        ['d', '4'],
        ['e', '0'],
        ['f', '9'],
        ['g', '7'],
      ];
      for (const [body, prio] of sends) await p.send(q, body, prio === undefined ? {} : { priority: prio });
      const c = await stomp();
      await c.subscribe(q, 's', 'client-individual');
      const got = await c.waitMessages(7);
      expect(got.map((f) => f.body.toString())).toEqual(['c', 'f', 'g', 'b', 'd', 'a', 'e']);
      expect(got[0]!.headers['priority']).toBe('9');
    });

    it('an invalid priority is an ERROR frame naming it', async () => {
      const p = await stomp();
      await expect(p.send(`/queue/prio-bad-${nonce()}`, 'x', { priority: '12' })).rejects.toThrow(/priority/);
      await p.closedPromise;
    });
  });

  describe('expiry', () => {
    it('an expired message is never delivered: STOMP expires (absolute ms) and MQTT Message Expiry Interval', async () => {
      const n = nonce();
      const q = `exp-${n}`;
      const p = await stomp();
      await p.send(`/queue/${q}`, 'stomp-short', { expires: String(Date.now() + 300) });
      await p.send(`/queue/${q}`, 'stomp-long', { expires: String(Date.now() + 60_000) });
      const mq = await connect(tb.port);
      await mq.publishAsync(`$queue/${q}`, 'mqtt-short', { qos: 1, properties: { messageExpiryInterval: 1 } });
      await mq.publishAsync(`$queue/${q}`, 'mqtt-long', { qos: 1, properties: { messageExpiryInterval: 60 } });
      await sleep(1100);
      const c = await stomp();
      await c.subscribe(`/queue/${q}`, 's', 'auto');
      await p.send(`/queue/${q}`, 'marker');
      await c.waitMessages(3);
      expect(c.bodies()).toEqual(['stomp-long', 'mqtt-long', 'marker']);
      expect(Number(c.messages()[0]!.headers['expires'])).toBeGreaterThan(Date.now());
      // An MQTT consumer sees the remaining lifetime as a Message Expiry Interval.
      const m = await connect(tb.port);
      await m.subscribeAsync(`$queue/${q}-m`, { qos: 1 });
      await p.send(`/queue/${q}-m`, 'e', { expires: String(Date.now() + 30_000) });
      await until(() => m.received.length === 1, 3000, 'MQTT consumer');
      const left = m.received[0]!.packet.properties?.messageExpiryInterval;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(30);
    });

    it('an expires time already past: never delivered, even to a waiting consumer', async () => {
      const q = `/queue/past-${nonce()}`;
      const c = await stomp();
      await c.subscribe(q, 's', 'auto');
      const p = await stomp();
      await p.send(q, 'old', { expires: String(Date.now() - 1000) });
      await p.send(q, 'marker');
      await c.waitMessages(1);
      expect(c.bodies()).toEqual(['marker']);
    });
  });

  describe('delayed delivery', () => {
    it('STOMP x-delay (ms): not delivered before its time', async () => {
      const q = `/queue/delay-${nonce()}`;
      const c = await stomp();
      await c.subscribe(q, 's', 'auto');
      const p = await stomp();
      const t0 = Date.now();
      await p.send(q, 'later', { 'x-delay': '700' });
      await p.send(q, 'now');
      const [first] = await c.waitMessages(1);
      expect(first!.body.toString()).toBe('now');
      await c.waitMessages(2);
      const at = Date.now();
      expect(c.bodies()).toEqual(['now', 'later']);
      expect(at - t0).toBeGreaterThanOrEqual(700);
    });

    it('MQTT $delayed/<s>/<topic>: to a topic and into a queue, not before its time; malformed delays are dropped', async () => {
      const n = nonce();
      const sub = await connect(tb.port);
      await sub.subscribeAsync(`del/${n}`, { qos: 1 });
      const c = await stomp();
      await c.subscribe(`/queue/del-${n}`, 's', 'auto');
      const pub = await connect(tb.port);
      const t0 = Date.now();
      await pub.publishAsync(`$delayed/1/del/${n}`, 'topic-later', { qos: 1 });
      await pub.publishAsync(`$delayed/1/$queue/del-${n}`, 'queue-later', { qos: 1 });
      await pub.publishAsync(`$delayed/x/del/${n}`, 'bad', { qos: 1 });
      await pub.publishAsync(`$delayed/1`, 'bad', { qos: 1 });
      await until(() => sub.received.length === 1 && c.messages().length === 1, 4000, 'delayed messages');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(sub.received[0]!.topic).toBe(`del/${n}`);
      expect(sub.received[0]!.payload.toString()).toBe('topic-later');
      expect(c.bodies()).toEqual(['queue-later']);
      // Nothing else: a marker published now is the next message.
      await pub.publishAsync(`del/${n}`, 'marker', { qos: 1 });
      await until(() => sub.received.length === 2, 3000, 'marker');
      expect(sub.received.map((r) => r.payload.toString())).toEqual(['topic-later', 'marker']);
    });
  });

  describe('bindings (config queues.bindings)', () => {
    it('a matching publication is also enqueued, once even when two bindings match; topic subscribers still get it', async () => {
      const n = nonce();
      const topicSub = await connect(tb.port);
      await topicSub.subscribeAsync(`bind/${n}/#`, { qos: 1 });
      const pub = await connect(tb.port);
      await pub.publishAsync(`bind/${n}/x`, 'both-match', { qos: 1 });
      await pub.publishAsync(`bind/${n}/y`, 'one-match', { qos: 0 });
      const s = await stomp();
      await s.send(`/topic/bind/${n}/x`, 'from-stomp');
      await s.send(`/topic/nobind/${n}`, 'not-bound');
      await until(() => topicSub.received.length === 3, 3000, 'topic subscriber');
      expect(topicSub.received.map((r) => r.payload.toString())).toEqual(['both-match', 'one-match', 'from-stomp']);

      const c = await stomp();
      await c.subscribe('/queue/bound', 'b', 'client-individual');
      await s.send('/queue/bound', `marker-${n}`);
      const got = await c.waitMessages(1);
      // The queue is shared by every test of this file: take what this test put there.
      await until(() => c.bodies().includes(`marker-${n}`), 3000, 'marker');
      const mine = c.messages().filter((f) => ['both-match', 'one-match', 'from-stomp', `marker-${n}`].includes(f.body.toString()));
      expect(mine.map((f) => f.body.toString())).toEqual(['both-match', 'one-match', 'from-stomp', `marker-${n}`]);
      expect(got.length).toBeGreaterThan(0);
      // A STOMP consumer of a queue always sees the queue as destination.
      for (const f of mine) expect(f.headers['destination']).toBe('/queue/bound');
      for (const f of c.messages()) c.ack(f);
    });

    it('an MQTT consumer of a bound queue gets the original topic name', async () => {
      const n = nonce();
      const c = await connect(tb.port);
      await c.subscribeAsync('$queue/bound-other', { qos: 1 });
      const pub = await connect(tb.port);
      await pub.publishAsync(`other/${n}`, 'o', { qos: 1 });
      await until(() => c.received.length === 1, 3000, 'bound message');
      expect(c.received[0]!.topic).toBe(`other/${n}`);
    });
  });
});

describe('queues: maxDeliveries and dead letters (maxDeliveries 2, deadLetterExpired)', async () => {
  const tb = await startBroker({ config: { queues: { maxDeliveries: 2, deadLetterExpired: true } } });
  const stomp = (): Promise<StompWire> => StompWire.connect(tb.stompPort);

  function deathOf(f: WireFrame): [string | undefined, string | undefined] {
    return [f.headers['x-first-death-queue'], f.headers['x-first-death-reason']];
  }

  it('NACKed maxDeliveries times -> DLQ.<q> with x-first-death-queue and x-first-death-reason', async () => {
    const q = `md-${nonce()}`;
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'client-individual');
    const p = await stomp();
    await p.send(`/queue/${q}`, 'poison', { persistent: 'true', 'x-app': 'kept' });
    await p.send(`/queue/${q}`, 'good');
    const [m1] = await c.waitMessages(2);
    expect(m1!.body.toString()).toBe('poison');
    c.ack(c.messages()[1]!);
    c.nack(m1!);
    const m2 = (await c.waitMessages(3))[2]!;
    expect(m2.body.toString()).toBe('poison');
    expect(m2.headers['redelivered']).toBe('true');
    c.nack(m2);
    const dlq = await stomp();
    await dlq.subscribe(`/queue/DLQ.${q}`, 'd', 'client-individual');
    const [dead] = await dlq.waitMessages(1);
    expect(dead!.body.toString()).toBe('poison');
    expect(dead!.headers['destination']).toBe(`/queue/DLQ.${q}`);
    expect(deathOf(dead!)).toEqual([q, 'max_deliveries']);
    expect(dead!.headers['x-app']).toBe('kept');
    expect(dead!.headers['persistent']).toBe('true');
    // Not delivered to the original queue's consumer again.
    await p.send(`/queue/${q}`, 'marker');
    await c.waitMessages(4);
    expect(c.messages()[3]!.body.toString()).toBe('marker');
  });

  it('NACK with requeue:false dead-letters at once (reason rejected); an MQTT DLQ consumer sees the reason as user properties', async () => {
    const q = `rej-${nonce()}`;
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'client-individual');
    const p = await stomp();
    await p.send(`/queue/${q}`, 'no');
    const [m] = await c.waitMessages(1);
    c.nack(m!, { requeue: 'false' });
    const d = await connect(tb.port);
    await d.subscribeAsync(`$queue/DLQ.${q}`, { qos: 1 });
    await until(() => d.received.length === 1, 3000, 'dead letter');
    expect(d.received[0]!.payload.toString()).toBe('no');
    const props = userProps(d.received[0]!.packet);
    expect(props['x-first-death-queue']).toBe(q);
    expect(props['x-first-death-reason']).toBe('rejected');
  });

  it('a consumer that disconnects repeatedly uses up the deliveries too (as RabbitMQ quorum queues count them)', async () => {
    const q = `gone-${nonce()}`;
    const p = await stomp();
    await p.send(`/queue/${q}`, 'hot');
    for (let i = 0; i < 2; i++) {
      const c = await stomp();
      await c.subscribe(`/queue/${q}`, 's', 'client-individual');
      const [m] = await c.waitMessages(1);
      expect(m!.headers['redelivered']).toBe(i === 0 ? undefined : 'true');
      c.destroy();
      await c.closedPromise;
    }
    const dlq = await stomp();
    await dlq.subscribe(`/queue/DLQ.${q}`, 'd', 'auto');
    const [dead] = await dlq.waitMessages(1);
    expect(deathOf(dead!)).toEqual([q, 'max_deliveries']);
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'auto');
    await p.send(`/queue/${q}`, 'marker');
    await c.waitMessages(1);
    expect(c.bodies()).toEqual(['marker']);
  });

  it('deadLetterExpired: an expired message goes to DLQ.<q> (reason expired) and is delivered from there', async () => {
    const q = `dexp-${nonce()}`;
    const p = await stomp();
    await p.send(`/queue/${q}`, 'stale', { expires: String(Date.now() + 200) });
    const mq = await connect(tb.port);
    await mq.publishAsync(`$queue/${q}`, 'stale-mqtt', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await sleep(1100);
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'auto');
    await p.send(`/queue/${q}`, 'marker');
    await c.waitMessages(1);
    expect(c.bodies()).toEqual(['marker']);
    const dlq = await stomp();
    await dlq.subscribe(`/queue/DLQ.${q}`, 'd', 'client-individual');
    const dead = await dlq.waitMessages(2);
    expect(dead.map((f) => f.body.toString())).toEqual(['stale', 'stale-mqtt']);
    for (const f of dead) {
      expect(deathOf(f)).toEqual([q, 'expired']);
      // As RabbitMQ, the dead letter lost its expiry (else it would expire again in the DLQ).
      expect(f.headers['expires']).toBeUndefined();
    }
  });
});

describe('queues: delayed messages survive kill -9 (leveldb child process)', () => {
  const dirs: string[] = [];
  let broker: BrokerProcess | undefined;
  afterAll(async () => {
    await broker?.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('x-delay and $delayed/<s>/... messages held at the kill are delivered after the restart, not before their time', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'junction-delayed-'));
    dirs.push(dir);
    const [port, stompPort] = [await freePort(), await freePort()];
    const args = ['--data-dir', dir, '--storage', 'leveldb', '--log-level', 'warn', '--stomp-port', String(stompPort)];
    broker = await startBrokerProcess(args, port);
    const p = await StompWire.connect(stompPort);
    const mq = await connect(port, { reconnectPeriod: 0 });
    const sentAt = { 'stomp-delayed': Date.now(), 'mqtt-delayed': 0 };
    // A receipt for a persistent SEND: on disk, delay included.
    await p.send('/queue/held', 'stomp-delayed', { persistent: 'true', 'x-delay': '2500' });
    await p.send('/queue/held', 'plain', { persistent: 'true' });
    sentAt['mqtt-delayed'] = Date.now();
    await mq.publishAsync('$delayed/2/$queue/held', 'mqtt-delayed', { qos: 1 });
    await broker.kill('SIGKILL');
    p.destroy();
    broker = await startBrokerProcess(args, port);
    const c = await StompWire.connect(stompPort);
    await c.subscribe('/queue/held', 's', 'client-individual');
    const [first] = await c.waitMessages(1);
    expect(first!.body.toString()).toBe('plain');
    const got = await c.waitMessages(3, undefined, 10_000);
    expect(got.map((f) => f.body.toString()).sort()).toEqual(['mqtt-delayed', 'plain', 'stomp-delayed']);
    const at = (body: string): number => got.find((f) => f.body.toString() === body)!.receivedAt;
    expect(at('stomp-delayed') - sentAt['stomp-delayed']).toBeGreaterThanOrEqual(2500);
    expect(at('mqtt-delayed') - sentAt['mqtt-delayed']).toBeGreaterThanOrEqual(2000);
    for (const f of got) c.ack(f);
    await c.disconnect();
  });
});
