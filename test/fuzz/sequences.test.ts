/**
 * The connection state machines under well-formed packets and frames in the wrong order, and the
 * sizes a hostile client can push: protocols/mqtt/connection.ts and protocols/stomp/connection.ts
 * with their handlers, on a running broker.
 *
 * - Random sequences (fast-check, fixed seed): MQTT packets of every kind with packet ids from a
 *   small pool (PUBREL before PUBLISH, PUBACK/PUBREC/PUBCOMP for unknown ids, QoS 2 resends,
 *   SUBSCRIBE before CONNECT, a second CONNECT, AUTH, DISCONNECT midway) and STOMP frames of every
 *   command (frames before CONNECT, ACK/NACK of unknown and real ids, COMMIT/ABORT of transactions
 *   never begun, BEGIN twice, UNSUBSCRIBE of unknown ids, a second CONNECT). After each sequence a
 *   probe (PINGREQ / SEND with a receipt) must be answered, or the broker must have closed the
 *   connection: a connection that neither answers nor closes is a stuck state machine.
 * - The same out-of-order cases one by one with the answer each must get.
 * - Thousands of subscriptions from one client (MQTT and STOMP), removed when it goes.
 * - Topics far deeper than the limit (refused cleanly: MQTT 0x90 / 0x8F, STOMP ERROR), and, on a
 *   broker whose limit is raised to 65535 levels, topics tens of thousands of levels deep through
 *   the topic tree and the retained index (Aedes crashed past 100 levels).
 * - STOMP frames with 100,000 headers: an ERROR as soon as the count passes the limit.
 * Throughout: no error logged, no uncaught exception, the broker's state back to its baseline.
 */
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { connectBytes, packet, props, str, u16, u32 } from '../helpers/bytes.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { cases, seed, summary, timeout } from './harness.js';
import { chunk, encode, sequenceArb, versionArb, type Version } from './mqtt-gen.js';
import { clientFrame, coherentTransactions, connectFrame, disconnectFrame, encodeFrame } from './stomp-gen.js';
import { Health, backToBaseline, brokerErrors, clearFuzzLeftovers, counters, fuzzTcp, trapProcessErrors } from './wire.js';

const PINGREQ = Buffer.from([0xc0, 0x00]);

/** Counts PINGRESPs in what the broker sent; throws if the bytes are not valid MQTT packets. */
function pingresps(data: readonly Buffer[], v: Version): { pingresp: number; cmds: string[] } {
  const parser = mqttPacket.parser({ protocolVersion: v === 3 ? 3 : v });
  const cmds: string[] = [];
  let error: Error | undefined;
  parser.on('packet', (p: Packet) => cmds.push(p.cmd));
  parser.on('error', (e: Error) => (error ??= e));
  for (const d of data) parser.parse(d);
  if (error) throw new Error(`broker sent an unparsable packet after ${cmds.join(',')}: ${error.message}`);
  return { pingresp: cmds.filter((c) => c === 'pingresp').length, cmds };
}

async function checkClean(tb: TestBroker, base: ReturnType<typeof counters>, trap: { errors: string[] }): Promise<void> {
  clearFuzzLeftovers(tb);
  await backToBaseline(tb, base);
  expect(brokerErrors(tb)).toEqual([]);
  expect(trap.errors).toEqual([]);
}

describe('fuzz: connection state machines (packets and frames out of order, sizes)', async () => {
  const tb = await startBroker({ config: { mqtt: { maxSessionExpiry: 0, connectTimeout: 2 }, stomp: { connectTimeout: 2 } } });
  const trap = trapProcessErrors();
  afterAll(() => trap.dispose());
  // Inputs first: generating them holds the event loop, which the health clients should not see.
  const mqttSequences = (() => {
    const s = seed(9101);
    const n = cases(300);
    const list = fc.sample(
      versionArb.chain((v) => fc.tuple(fc.constant(v), sequenceArb(v), fc.array(fc.nat(), { maxLength: 4 }))),
      { seed: s, numRuns: n },
    );
    return { s, n, list };
  })();
  const stompSequences = (() => {
    const s = seed(9202);
    const n = cases(300);
    const step = fc.oneof({ weight: 40, arbitrary: clientFrame(true) }, { weight: 1, arbitrary: connectFrame(true) }, { weight: 1, arbitrary: disconnectFrame });
    const list = fc.sample(
      fc.tuple(fc.nat(9), connectFrame(true), fc.array(step, { minLength: 1, maxLength: 25 }), fc.array(fc.nat(), { maxLength: 4 })),
      { seed: s, numRuns: n },
    );
    return { s, n, list };
  })();
  const health = await Health.start(tb, 'seq');
  const base = counters(tb);
  afterAll(async () => {
    await health.finish();
    await checkClean(tb, base, trap);
  });

  it('MQTT: random well-formed packet sequences; afterwards a PINGREQ is answered or the connection is closed', async () => {
    const { s, n, list } = mqttSequences;
    const t0 = Date.now();
    let answered = 0;
    let closed = 0;
    const reasons = new Map<string, number>();
    for (let i = 0; i < list.length; i += 8) {
      await Promise.all(
        list.slice(i, i + 8).map(async ([v, seq, cuts]) => {
          const bytes = Buffer.concat(seq.map(encode));
          const pings = seq.filter((p) => p.first === 0xc0).length;
          const r = await fuzzTcp(tb.port, chunk(bytes, cuts), { gapMs: 0, ending: 'wait', lingerMs: 0, trailer: PINGREQ, untilReply: (d) => pingresps(d, v).pingresp > pings });
          const got = pingresps(r.data, v);
          if (r.closedByBroker) {
            closed++;
            const last = got.cmds[got.cmds.length - 1] ?? 'nothing';
            reasons.set(last, (reasons.get(last) ?? 0) + 1);
          }
          else {
            expect(got.pingresp, `no PINGRESP to the probe and not closed: ${bytes.toString('hex')} -> ${got.cmds.join(',')}`).toBeGreaterThan(pings);
            answered++;
          }
        }),
      );
    }
    summary('mqtt sequences', { cases: n, seed: s, answered, closed, ms: Date.now() - t0, lastBeforeClose: JSON.stringify(Object.fromEntries(reasons)) });
    expect(answered).toBeGreaterThan(0);
    expect(closed).toBeGreaterThan(0);
    await checkClean(tb, base, trap);
  }, timeout(20_000));

  it('STOMP: random well-formed frame sequences; afterwards a SEND with a receipt is answered or the connection is closed', async () => {
    const { s, n, list } = stompSequences;
    const t0 = Date.now();
    const reasons = new Map<string, number>();
    let answered = 0;
    let closed = 0;
    for (let i = 0; i < list.length; i += 8) {
      await Promise.all(
        list.slice(i, i + 8).map(async ([k, c, rest, cuts], j) => {
          const frames = coherentTransactions(k === 0 ? rest : [c, ...rest], 10, i + j);
          const bytes = Buffer.concat(frames.map(encodeFrame));
          const probe = `probe-${i + j}`;
          const trailer = Buffer.from(`SEND\ndestination:/topic/fz/probe\nreceipt:${probe}\n\n\0`);
          const r = await fuzzTcp(tb.stompPort, chunk(bytes, cuts), { gapMs: 0, ending: 'wait', lingerMs: 0, trailer, untilReply: (d) => Buffer.concat(d).includes(`receipt-id:${probe}`) });
          const text = Buffer.concat(r.data).toString('latin1');
          if (r.closedByBroker) {
            closed++;
            const m = /message:([^\n]*)/.exec(text);
            reasons.set(m?.[1] ?? 'none', (reasons.get(m?.[1] ?? 'none') ?? 0) + 1);
            // Never a silent close: an ERROR frame comes first, unless the client sent DISCONNECT.
            const disconnected = frames.some((f) => f.command.toString() === 'DISCONNECT');
            expect(disconnected || text.includes('ERROR\n'), `closed without ERROR: ${JSON.stringify(bytes.toString('latin1'))} -> ${JSON.stringify(text)}`).toBe(true);
          } else {
            expect(text, `no RECEIPT for the probe and not closed: ${JSON.stringify(bytes.toString('latin1'))}`).toContain(`receipt-id:${probe}`);
            answered++;
          }
        }),
      );
    }
    summary('stomp sequences', { cases: n, seed: s, answered, closed, ms: Date.now() - t0, errors: JSON.stringify(Object.fromEntries(reasons)) });
    expect(answered).toBeGreaterThan(0);
    expect(closed).toBeGreaterThan(0);
    await checkClean(tb, base, trap);
  }, timeout(20_000));

  describe('MQTT packets out of order, one by one', () => {
    const ack = (type: number, id: number, code?: number): Buffer => packet(type, u16(id), ...(code === undefined ? [] : [code, props()]));

    it('PUBREL before any PUBLISH: PUBCOMP 0x92 Packet Identifier not found (v5), PUBCOMP (3.1.1); the connection stays', async () => {
      for (const v of [4, 5] as const) {
        const c = await RawClient.connect(tb.port, v);
        await c.handshake();
        c.send(ack(0x62, 42));
        const comp = await c.next('pubcomp');
        expect(comp.messageId).toBe(42);
        if (v === 5) expect(comp.reasonCode).toBe(0x92);
        c.send(PINGREQ);
        await c.next('pingresp');
        c.end();
      }
    });

    it('PUBACK and PUBCOMP for ids never sent are ignored; PUBREC for one gets PUBREL 0x92 (v5)', async () => {
      const c = await RawClient.connect(tb.port, 5);
      await c.handshake();
      c.send(ack(0x40, 9));
      c.send(ack(0x70, 10));
      c.send(ack(0x50, 11));
      const rel = await c.next('pubrel');
      expect([rel.messageId, rel.reasonCode]).toEqual([11, 0x92]);
      c.send(PINGREQ);
      await c.next('pingresp');
      c.end();
    });

    it('QoS 2 PUBLISH resent before PUBREL: PUBREC again, delivered once [MQTT-4.3.3-?]', async () => {
      const sub = await connect(tb.port, { clientId: 'seq-qos2-sub' });
      await sub.subscribeAsync('fz/seq/qos2', { qos: 2 });
      const c = await RawClient.connect(tb.port, 5);
      await c.handshake();
      const pub = packet(0x34, str('fz/seq/qos2'), u16(5), props(), Buffer.from('once'));
      c.send(pub);
      await c.next('pubrec');
      c.send(packet(0x3c, str('fz/seq/qos2'), u16(5), props(), Buffer.from('once')));
      await c.next('pubrec');
      c.send(ack(0x62, 5));
      await c.next('pubcomp');
      await until(() => sub.received.length >= 1, 3000, 'delivery');
      c.send(PINGREQ);
      await c.next('pingresp');
      expect(sub.received.map((r) => r.payload.toString())).toEqual(['once']);
      c.end();
      await sub.endAsync();
    });

    it('SUBSCRIBE, PUBLISH or PINGREQ before CONNECT: closed without an answer [MQTT-3.1.0-1]', async () => {
      for (const first of [packet(0x82, u16(1), str('fz/#'), 0), packet(0x30, str('fz/x'), Buffer.from('x')), PINGREQ]) {
        const r = await fuzzTcp(tb.port, [first], { gapMs: 0, ending: 'wait', lingerMs: 0 });
        expect(r.closedByBroker).toBe(true);
        expect(r.bytesIn).toBe(0);
      }
    });

    it('a second CONNECT: DISCONNECT 0x82 (v5), closed (3.1.1) [MQTT-3.1.0-2]', async () => {
      for (const v of [4, 5] as const) {
        const c = await RawClient.connect(tb.port, v);
        await c.handshake();
        c.send(connectBytes({ version: v }));
        if (v === 5) expect((await c.next('disconnect')).reasonCode).toBe(0x82);
        await c.waitClosed();
      }
    });

    it('AUTH without an authentication method at CONNECT: DISCONNECT 0x82 [MQTT-4.12.0-1]', async () => {
      const c = await RawClient.connect(tb.port, 5);
      await c.handshake();
      c.send(packet(0xf0, 0x18, props()));
      expect((await c.next('disconnect')).reasonCode).toBe(0x82);
      await c.waitClosed();
    });

    it('DISCONNECT raising the session expiry from 0: DISCONNECT 0x82 [MQTT-3.14.2-2]', async () => {
      const c = await RawClient.connect(tb.port, 5);
      await c.handshake();
      c.send(packet(0xe0, 0x00, props(0x11, u32(60))));
      expect((await c.next('disconnect')).reasonCode).toBe(0x82);
      await c.waitClosed();
    });

    it('a client that never acknowledges fills its window and is still answered (PINGREQ), and leaves nothing behind', async () => {
      const c = await RawClient.connect(tb.port, 5);
      await c.handshake({ properties: { receiveMaximum: 2 } });
      c.send(packet(0x82, u16(1), props(), str('fz/seq/noack/#'), 1));
      await c.next('suback');
      const pub = await connect(tb.port, { clientId: 'seq-noack-pub' });
      for (let i = 0; i < 50; i++) await pub.publishAsync(`fz/seq/noack/${i}`, 'x', { qos: 1 });
      c.send(PINGREQ);
      await until(() => c.packets.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP');
      // Receive Maximum 2: two deliveries in flight, the rest queued [MQTT-3.3.4-9].
      expect(c.packets.filter((p) => p.cmd === 'publish')).toHaveLength(2);
      c.end();
      await pub.endAsync();
      await backToBaseline(tb, base);
    });
  });

  describe('STOMP frames out of order, one by one', () => {
    async function errorFor(frames: string[], open = true): Promise<string> {
      const c = open ? await StompRaw.open(tb.stompPort, '1.2') : await StompRaw.connect(tb.stompPort);
      for (const f of frames) c.write(f);
      const e = await c.expectError();
      return hdr(e, 'message') ?? '';
    }

    it('SEND, SUBSCRIBE or ACK before CONNECT: ERROR, then close', async () => {
      for (const f of ['SEND\ndestination:/topic/fz\n\nx\0', 'SUBSCRIBE\nid:1\ndestination:/topic/fz\n\n\0', 'ACK\nid:1-1\n\n\0']) {
        expect(await errorFor([f], false)).toMatch(/CONNECT/);
      }
    });

    it('ACK and NACK of ids never given, UNSUBSCRIBE of an unknown id: receipts, the connection stays', async () => {
      const c = await StompRaw.open(tb.stompPort, '1.2');
      c.send('ACK', { id: '5-77', receipt: 'a' });
      await c.receipt('a');
      c.send('NACK', { id: '12-65535', receipt: 'n' });
      await c.receipt('n');
      c.send('UNSUBSCRIBE', { id: 'never', receipt: 'u' });
      await c.receipt('u');
      await c.sync();
      c.end();
    });

    it('COMMIT or ABORT of a transaction never begun, BEGIN twice, SEND in an unknown transaction: ERROR, then close', async () => {
      expect(await errorFor(['COMMIT\ntransaction:nope\n\n\0'])).toMatch(/unknown transaction/);
      expect(await errorFor(['ABORT\ntransaction:nope\n\n\0'])).toMatch(/unknown transaction/);
      expect(await errorFor(['BEGIN\ntransaction:t\n\n\0', 'BEGIN\ntransaction:t\n\n\0'])).toMatch(/already begun/);
      expect(await errorFor(['SEND\ndestination:/topic/fz\ntransaction:nope\n\nx\0'])).toMatch(/unknown transaction/);
    });

    it('a second CONNECT: ERROR, then close', async () => {
      expect(await errorFor(['CONNECT\naccept-version:1.2\nhost:x\n\n\0'])).toMatch(/already connected/);
    });

    it('ACK of a real delivery twice, and of a delivery of another subscription: receipts, acknowledged once', async () => {
      const q = `fzseq${Date.now()}`;
      const c = await StompRaw.open(tb.stompPort, '1.2');
      await c.subscribe({ destination: `/queue/${q}`, id: 's', ack: 'client-individual' });
      await c.publish({ destination: `/queue/${q}` }, 'one');
      const [m] = await c.messages(1);
      const id = hdr(m!, 'ack')!;
      c.send('ACK', { id, receipt: 'a1' });
      await c.receipt('a1');
      c.send('ACK', { id, receipt: 'a2' });
      await c.receipt('a2');
      c.send('NACK', { id, receipt: 'a3' });
      await c.receipt('a3');
      expect(tb.broker.core.router.queues.get(q).depth).toBe(0);
      c.end();
    });
  });

  it('thousands of subscriptions from one MQTT client and one STOMP connection; all gone with them', async () => {
    const N = 5000;
    const before = tb.broker.core.router.subscriptionCount;
    const c = await connect(tb.port, { clientId: 'seq-many-subs' });
    let granted = 0;
    for (let i = 0; i < N; i += 500) {
      const filters = Array.from({ length: 500 }, (_, k) => `fz/many/${i + k}`);
      const acks = await c.subscribeAsync(filters, { qos: 1 });
      // A broker with a subscription quota may refuse some (0x97 Quota exceeded); none may be lost.
      for (const a of acks) {
        expect([1, 0x97, 0x80]).toContain(a.qos);
        if (a.qos === 1) granted++;
      }
    }
    expect(tb.broker.core.router.subscriptionCount - before).toBe(granted);
    await c.publishAsync('fz/many/0', 'hit', { qos: 1 });
    if (granted > 0) await until(() => c.received.length > 0, 3000, 'a message through one of 5000 subscriptions');

    const s = await StompRaw.open(tb.stompPort, '1.2');
    const frames: string[] = [];
    for (let i = 0; i < 3000; i++) frames.push(`SUBSCRIBE\nid:${i}\ndestination:/topic/fz/many/s/${i}\n${i === 2999 ? 'receipt:last\n' : ''}\n\0`);
    s.write(frames.join(''));
    await s.receipt('last', 10_000);
    expect(tb.broker.core.router.subscriptionCount - before).toBe(granted + 3000);
    await s.publish({ destination: '/topic/fz/many/s/2999' }, 'hit');
    await s.messages(1);

    await c.endAsync();
    s.send('DISCONNECT', { receipt: 'bye' });
    await s.receipt('bye');
    await until(() => tb.broker.core.router.subscriptionCount === before, 5000, 'subscriptions removed');
    await checkClean(tb, base, trap);
  }, timeout(10_000));

  it('topics deeper than the limit (129 levels up to 65535 bytes of slashes): refused cleanly, the connection answers as the spec says', async () => {
    const deep = (levels: number): string => Array.from({ length: levels }, (_, i) => (i === 0 ? 'fz' : 'a')).join('/');
    const ok = deep(128);
    for (const topic of [deep(129), deep(1000), deep(30000), '/'.repeat(65534)]) {
      // PUBLISH (v5): DISCONNECT 0x90 Topic Name invalid.
      const p = await RawClient.connect(tb.port, 5);
      await p.handshake();
      p.send(packet(0x30, str(topic), props(), Buffer.from('x')));
      expect((await p.next('disconnect')).reasonCode).toBe(0x90);
      await p.waitClosed();
      // SUBSCRIBE: 0x8F (v5) and 0x80 (3.1.1) for that filter, and with a '#' at the end.
      for (const v of [4, 5] as const) {
        const c = await RawClient.connect(tb.port, v);
        await c.handshake();
        const opts = v === 5 ? [props()] : [];
        c.send(packet(0x82, u16(1), ...opts, str(topic), 1, str(topic.slice(0, 60000) + '/#'), 0));
        expect((await c.next('suback')).granted).toEqual(v === 5 ? [0x8f, 0x8f] : [0x80, 0x80]);
        c.end();
      }
      // STOMP: ERROR then close.
      const s = await StompRaw.open(tb.stompPort, '1.2');
      s.send('SEND', { destination: `/topic/${topic}` }, 'x');
      await s.expectError();
    }
    // 128 levels still work end to end.
    const c = await connect(tb.port, { clientId: 'seq-deep-128' });
    await c.subscribeAsync(ok, { qos: 1 });
    await c.publishAsync(ok, 'deep', { qos: 1 });
    await until(() => c.received.length === 1, 3000, 'a 128-level message');
    await c.endAsync();
    await checkClean(tb, base, trap);
  }, timeout(10_000));

  it('STOMP frames with 100,000 headers are refused with an ERROR once past the limit', async () => {
    const s = await StompRaw.open(tb.stompPort, '1.2');
    s.write('SEND\ndestination:/topic/fz/h\n' + 'x-h:v\n'.repeat(100_000) + '\nbody\0');
    const e = await s.expectError(10_000);
    expect(hdr(e, 'message')).toMatch(/more than 100 headers/);
    await checkClean(tb, base, trap);
  }, timeout(10_000));
});

describe('fuzz: topics tens of thousands of levels deep when the limit allows them', async () => {
  const tb = await startBroker({ config: { mqtt: { maxTopicLevels: 65535 } } });
  const trap = trapProcessErrors();
  afterAll(() => {
    trap.dispose();
    expect(trap.errors).toEqual([]);
  });

  it('publish, wildcard and exact subscriptions, retained messages at 30,000 levels: delivered, no stack overflow', async () => {
    const base = counters(tb);
    const levels = 30000;
    const topic = Array.from({ length: levels }, (_, i) => (i === 0 ? 'fz' : 'a')).join('/');
    // A filter with '+' at every other level and '#' last: the tree walk goes all the way down.
    const wild = topic.split('/').map((l, i) => (i % 2 === 1 ? '+' : l)).join('/');
    const sub = await connect(tb.port, { clientId: 'deep-sub' });
    await sub.subscribeAsync([topic, wild + '/#', 'fz/#', '#'], { qos: 1 });
    const pub = await connect(tb.port, { clientId: 'deep-pub' });
    await pub.publishAsync(topic, 'deep', { qos: 1, retain: true });
    await until(() => sub.received.length >= 1, 5000, 'the deep message');
    // One copy per session, whatever the number of matching subscriptions (they overlap).
    expect(sub.received.map((r) => r.topic.length)).toEqual([topic.length]);
    // Retained: found again through '#' and through the deep wildcard filter. A session that is
    // stored sends its SUBACK (then the retained messages) after the storage write, from a promise
    // callback: a failure there once went unhandled and brought the whole process down.
    const late = await connect(tb.port, { clientId: 'deep-late', properties: { sessionExpiryInterval: 60 } });
    await late.subscribeAsync(['#'], { qos: 1 });
    await late.subscribeAsync([wild], { qos: 1 });
    await until(() => late.received.length >= 2, 5000, 'the retained deep message twice');
    expect(late.received.every((r) => r.packet.retain && r.topic === topic)).toBe(true);
    await pub.publishAsync(topic, '', { qos: 1, retain: true });
    for (const c of [sub, pub]) await c.endAsync();
    await late.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    await backToBaseline(tb, base);
    expect(brokerErrors(tb)).toEqual([]);
    expect(trap.errors).toEqual([]);
  }, timeout(10_000));
});
