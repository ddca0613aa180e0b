/**
 * MQTT <-> STOMP on one routing core (design.md "One namespace", "Crossing the boundary"):
 * MQTT PUBLISH -> STOMP subscriber and STOMP SEND -> MQTT subscriber at QoS 0/1/2 and every ack
 * mode; the property/header table both ways (retain, content-type, response topic / correlation
 * data <-> reply-to / correlation-id, message expiry <-> expires, user properties <-> other headers,
 * QoS 1 <-> persistent:true); payload bytes unchanged (binary with NUL bytes, UTF-8); wildcard
 * subscriptions from both sides; retained messages to STOMP subscribers; mosquitto_pub/_sub.
 *
 * Clients: MQTT.js and mosquitto on one side; a frame-level client (test/helpers/stomp-queue.ts,
 * to read every header), stompit and @stomp/stompjs on the other.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { run } from '../helpers/run.js';
import { connect, until } from '../helpers/mqtt.js';
import { stompitConnect, stompitDisconnect, stompitSubscribe, stompjsConnect, stompjsReceipt, stompjsSubscribe } from '../helpers/stomp.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { nonce } from '../helpers/sync.js';

function userProps(p: IPublishPacket): Record<string, string | string[]> {
  return (p.properties?.userProperties ?? {}) as Record<string, string | string[]>;
}

/** Every byte value, NUL runs, and an embedded "frame end" (NUL + EOL), as STOMP bodies must survive. */
const BINARY = Buffer.concat([Buffer.from([0, 0, 0]), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\u0000\n\nSEND\n\n\u0000', 'latin1'), Buffer.from([0xff, 0xfe, 0])]);
const UTF8 = 'héllo wörld ✓ 日本語 🚀 — "quotes" \\ : \n new line';

describe('MQTT <-> STOMP', async () => {
  const tb = await startBroker();
  const stomp = (): Promise<StompWire> => StompWire.connect(tb.stompPort);

  describe('MQTT PUBLISH -> STOMP subscriber', () => {
    for (const ack of ['auto', 'client', 'client-individual'] as const) {
      it(`QoS 0/1/2 to a SUBSCRIBE ack:${ack}: persistent:true for QoS 1/2, ack header and in-flight tracking in the client modes`, async () => {
        const n = nonce();
        const s = await stomp();
        await s.subscribe(`/topic/x/${n}`, 's', ack);
        const pub = await connect(tb.port);
        for (const qos of [0, 1, 2] as const) await pub.publishAsync(`x/${n}`, `q${qos}`, { qos });
        const got = await s.waitMessages(3);
        expect(got.map((f) => f.body.toString())).toEqual(['q0', 'q1', 'q2']);
        expect(got.map((f) => f.headers['persistent'])).toEqual([undefined, 'true', 'true']);
        for (const f of got) {
          expect(f.headers['destination']).toBe(`/topic/x/${n}`);
          expect(f.headers['subscription']).toBe('s');
          expect(f.headers['content-length']).toBe('2');
          // STOMP 1.2: an ack header exactly when the subscription needs ACKs.
          expect(f.headers['ack'] !== undefined).toBe(ack !== 'auto');
          expect(f.headers['redelivered']).toBeUndefined();
        }
        const session = tb.broker.core.sessions.get(s.sessionId)!;
        if (ack === 'auto') {
          expect(session.inflight.size).toBe(0);
          return;
        }
        // QoS 1 and 2 wait for an ACK (QoS 0 does not: delivered at most once).
        expect(session.inflight.size).toBe(2);
        if (ack === 'client') s.ack(got[2]!); // cumulative: acknowledges q1 too
        else for (const f of got) s.ack(f);
        await s.request('SEND', { destination: `/topic/sync/${n}` });
        expect(session.inflight.size).toBe(0);
      });
    }

    it('stompit consumer with client-individual acks reads MQTT QoS 1 messages in order', async () => {
      const n = nonce();
      const c = await stompitConnect(tb.stompPort, { 'accept-version': '1.2' });
      const { messages } = await stompitSubscribe(c, { destination: `/topic/sit/${n}`, ack: 'client-individual' });
      const pub = await connect(tb.port);
      for (let i = 0; i < 5; i++) await pub.publishAsync(`sit/${n}`, `m${i}`, { qos: 1 });
      await until(() => messages.length === 5, 3000, 'stompit messages');
      expect(messages.map((m) => m.body.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      for (const m of messages) {
        expect(m.headers['persistent']).toBe('true');
        c.ack(m.frame);
      }
      await stompitDisconnect(c);
    });
  });

  describe('STOMP SEND -> MQTT subscriber', () => {
    it('non-persistent is QoS 0, persistent:true is QoS 1 (capped by the granted QoS), v5 and 3.1.1 subscribers', async () => {
      const n = nonce();
      const subs = [];
      for (const protocolVersion of [5, 4] as const) {
        for (const qos of [0, 1, 2] as const) {
          const c = await connect(tb.port, { protocolVersion });
          await c.subscribeAsync(`y/${n}`, { qos });
          subs.push({ c, qos });
        }
      }
      const s = await stomp();
      await s.send(`/topic/y/${n}`, 'plain');
      await s.send(`/topic/y/${n}`, 'persistent', { persistent: 'true' });
      for (const { c, qos } of subs) {
        await until(() => c.received.length === 2, 3000, 'two messages');
        expect(c.received.map((r) => r.topic)).toEqual([`y/${n}`, `y/${n}`]);
        expect(c.received.map((r) => r.payload.toString())).toEqual(['plain', 'persistent']);
        expect(c.received.map((r) => r.packet.qos)).toEqual([0, Math.min(1, qos)]);
      }
    });

    it('a persistent SEND with a receipt: the RECEIPT follows the durable write and the MQTT QoS 1 delivery completes', async () => {
      const n = nonce();
      const c = await connect(tb.port);
      await c.subscribeAsync(`yr/${n}`, { qos: 1 });
      const s = await stomp();
      for (let i = 0; i < 10; i++) await s.send(`/topic/yr/${n}`, String(i), { persistent: 'true' });
      await until(() => c.received.length === 10, 3000, 'ten messages');
      expect(c.received.map((r) => Number(r.payload.toString()))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
  });

  describe('the property table', () => {
    it('MQTT -> STOMP: content-type, reply-to, correlation-id, expires, user properties as headers, persistent', async () => {
      const n = nonce();
      const s = await stomp();
      await s.subscribe(`/topic/props/${n}/#`, 's', 'client-individual');
      const pub = await connect(tb.port);
      const before = Date.now();
      await pub.publishAsync(`props/${n}/a`, '{"v":1}', {
        qos: 1,
        properties: {
          contentType: 'application/json; charset=utf-8',
          responseTopic: `replies/${n}`,
          correlationData: Buffer.from('corr-7'),
          messageExpiryInterval: 60,
          payloadFormatIndicator: true,
          userProperties: { 'x-plain': 'v', 'with:colon': 'line\nbreak and back\\slash', 'ünï': 'çödé ✓' },
        },
      });
      const after = Date.now();
      await pub.publishAsync(`props/${n}/b`, 'to-queue-reply', { qos: 0, properties: { responseTopic: `$queue/rq-${n}` } });
      const [a, b] = await s.waitMessages(2);
      const h = a!.headers;
      expect(h['content-type']).toBe('application/json; charset=utf-8');
      expect(h['reply-to']).toBe(`/topic/replies/${n}`);
      expect(h['correlation-id']).toBe('corr-7');
      expect(Number(h['expires'])).toBeGreaterThanOrEqual(before + 60_000 - 1000);
      expect(Number(h['expires'])).toBeLessThanOrEqual(after + 60_000);
      expect(h['x-plain']).toBe('v');
      expect(h['with:colon']).toBe('line\nbreak and back\\slash');
      expect(h['ünï']).toBe('çödé ✓');
      expect(h['persistent']).toBe('true');
      // Escaped on the wire (STOMP 1.2 "Value Encoding"), not raw: the frame parsed into one header.
      expect(a!.headerList.filter(([k]) => k === 'with:colon')).toHaveLength(1);
      expect(b!.headers['reply-to']).toBe(`/queue/rq-${n}`);
      expect(b!.headers['persistent']).toBeUndefined();
      expect(b!.headers['expires']).toBeUndefined();
      for (const f of [a!, b!]) s.ack(f);
    });

    it('STOMP -> MQTT: Content Type, Response Topic, Correlation Data, Message Expiry Interval, User Properties, QoS 1', async () => {
      const n = nonce();
      const c = await connect(tb.port);
      await c.subscribeAsync(`props2/${n}/#`, { qos: 2 });
      const s = await stomp();
      await s.send(`/topic/props2/${n}/a`, 'hello', {
        persistent: 'true',
        'content-type': 'text/plain;charset=utf-8',
        'reply-to': `/topic/replies/${n}`,
        'correlation-id': 'c-42',
        expires: String(Date.now() + 30_000),
        'x-app': 'billing',
        'with:colon': 'a\nb',
        'ünï': 'çödé',
      });
      await s.send(`/topic/props2/${n}/b`, 'q', { 'reply-to': `/queue/rq-${n}` });
      await until(() => c.received.length === 2, 3000, 'two messages');
      const p = c.received[0]!.packet;
      expect(p.qos).toBe(1);
      expect(p.properties?.contentType).toBe('text/plain;charset=utf-8');
      expect(p.properties?.responseTopic).toBe(`replies/${n}`);
      expect(Buffer.from(p.properties!.correlationData!).toString()).toBe('c-42');
      expect(p.properties?.messageExpiryInterval).toBeGreaterThan(0);
      expect(p.properties?.messageExpiryInterval).toBeLessThanOrEqual(30);
      expect(userProps(p)).toEqual({ 'x-app': 'billing', 'with:colon': 'a\nb', 'ünï': 'çödé' });
      const q = c.received[1]!.packet;
      expect(q.qos).toBe(0);
      expect(q.properties?.responseTopic).toBe(`$queue/rq-${n}`);
      expect(q.properties?.messageExpiryInterval).toBeUndefined();
      // The STOMP-only headers (receipt, persistent, content-length...) are not user properties.
      expect(userProps(q)).toEqual({});
    });

    it('request/reply across protocols: an MQTT responder answers a STOMP requester on its reply-to', async () => {
      const n = nonce();
      const responder = await connect(tb.port);
      responder.on('message', (_t, payload, packet) => {
        const rt = packet.properties?.responseTopic;
        if (rt) void responder.publishAsync(rt, `re:${payload.toString()}`, { qos: 1, properties: { correlationData: packet.properties?.correlationData } });
      });
      await responder.subscribeAsync(`svc/${n}`, { qos: 1 });
      const s = await stomp();
      await s.subscribe(`/topic/reply/${n}`, 'r', 'auto');
      await s.send(`/topic/svc/${n}`, 'ping', { 'reply-to': `/topic/reply/${n}`, 'correlation-id': 'id-1', persistent: 'true' });
      const [reply] = await s.waitMessages(1);
      expect(reply!.body.toString()).toBe('re:ping');
      expect(reply!.headers['correlation-id']).toBe('id-1');
    });
  });

  describe('payload bytes unchanged', () => {
    it('binary with NUL bytes and UTF-8: MQTT -> stompjs and stompjs -> MQTT, content-length always set', async () => {
      const n = nonce();
      const sj = await stompjsConnect(tb.stompPort);
      const { messages } = await stompjsSubscribe(sj, `/topic/bin/${n}/#`);
      const mq = await connect(tb.port);
      await mq.subscribeAsync(`bin/${n}/from-stomp/#`, { qos: 1 });
      await mq.publishAsync(`bin/${n}/from-mqtt/bin`, BINARY, { qos: 1 });
      await mq.publishAsync(`bin/${n}/from-mqtt/utf8`, UTF8, { qos: 0 });
      await mq.publishAsync(`bin/${n}/from-mqtt/empty`, Buffer.alloc(0), { qos: 1 });
      await until(() => messages.length === 3, 3000, 'three STOMP messages');
      expect(Buffer.from(messages[0]!.binaryBody).equals(BINARY)).toBe(true);
      expect(messages[0]!.headers['content-length']).toBe(String(BINARY.length));
      expect(Buffer.from(messages[1]!.binaryBody).toString('utf8')).toBe(UTF8);
      expect(messages[1]!.headers['content-length']).toBe(String(Buffer.byteLength(UTF8)));
      expect(messages[2]!.binaryBody.length).toBe(0);
      expect(messages[2]!.headers['content-length']).toBe('0');

      await stompjsReceipt(sj, (receipt) => sj.client.publish({ destination: `/topic/bin/${n}/from-stomp/bin`, binaryBody: BINARY, headers: { receipt, persistent: 'true' } }));
      await stompjsReceipt(sj, (receipt) => sj.client.publish({ destination: `/topic/bin/${n}/from-stomp/utf8`, body: UTF8, headers: { receipt } }));
      await until(() => mq.received.length === 2, 3000, 'two MQTT messages');
      expect(mq.received[0]!.payload.equals(BINARY)).toBe(true);
      expect(mq.received[1]!.payload.toString('utf8')).toBe(UTF8);
    });

    it('a frame-level SEND with a binary body and content-length reaches MQTT byte for byte', async () => {
      const n = nonce();
      const mq = await connect(tb.port, { protocolVersion: 4 });
      await mq.subscribeAsync(`bin2/${n}`, { qos: 1 });
      const s = await stomp();
      await s.send(`/topic/bin2/${n}`, BINARY, { persistent: 'true' });
      await until(() => mq.received.length === 1, 3000, 'the message');
      expect(mq.received[0]!.payload.equals(BINARY)).toBe(true);
    });
  });

  describe('wildcards from both sides', () => {
    it('STOMP SUBSCRIBE /topic/... with + and #: one MESSAGE per matching subscription, destination is the real topic', async () => {
      const n = nonce();
      const s = await stomp();
      await s.subscribe(`/topic/w/${n}/+/temp`, 'plus');
      await s.subscribe(`/topic/w/${n}/#`, 'hash');
      const pub = await connect(tb.port);
      await pub.publishAsync(`w/${n}/a/temp`, '1', { qos: 1 });
      await pub.publishAsync(`w/${n}/b/hum`, '2', { qos: 1 });
      await pub.publishAsync(`w/${n}/c/d/temp`, '3', { qos: 1 });
      await pub.publishAsync(`w/${n}`, '4', { qos: 1 }); // "#" matches the parent level too
      await s.request('SEND', { destination: `/topic/sync/${n}` });
      expect(s.messages('plus').map((f) => [f.headers['destination'], f.body.toString()])).toEqual([[`/topic/w/${n}/a/temp`, '1']]);
      expect(s.messages('hash').map((f) => [f.headers['destination'], f.body.toString()])).toEqual([
        [`/topic/w/${n}/a/temp`, '1'],
        [`/topic/w/${n}/b/hum`, '2'],
        [`/topic/w/${n}/c/d/temp`, '3'],
        [`/topic/w/${n}`, '4'],
      ]);
    });

    it('MQTT wildcard subscriptions receive STOMP SENDs to /topic/...', async () => {
      const n = nonce();
      const plus = await connect(tb.port);
      await plus.subscribeAsync(`w2/${n}/+/x`, { qos: 1 });
      const hash = await connect(tb.port);
      await hash.subscribeAsync(`w2/${n}/#`, { qos: 1 });
      const s = await stomp();
      await s.send(`/topic/w2/${n}/a/x`, 'ax', { persistent: 'true' });
      await s.send(`/topic/w2/${n}/a/y`, 'ay', { persistent: 'true' });
      await s.send(`/topic/w2/${n}/a/b/x`, 'abx', { persistent: 'true' });
      await until(() => hash.received.length === 3, 3000, '# subscriber');
      expect(hash.received.map((r) => r.topic)).toEqual([`w2/${n}/a/x`, `w2/${n}/a/y`, `w2/${n}/a/b/x`]);
      expect(plus.received.map((r) => r.payload.toString())).toEqual(['ax']);
    });

    it('a STOMP # subscription does not see $ topics [MQTT-4.7.2-1]', async () => {
      const n = nonce();
      const s = await stomp();
      await s.subscribe('/topic/#', 'all');
      const pub = await connect(tb.port);
      await pub.publishAsync(`$queue/dollar-${n}`, 'q', { qos: 1 });
      await pub.publishAsync(`$custom/${n}`, 'c', { qos: 1 });
      await pub.publishAsync(`plain-${n}`, 'p', { qos: 1 });
      await until(() => s.bodies().includes('p'), 3000, 'plain message');
      const mine = s.messages().filter((f) => f.headers['destination']!.includes(n));
      expect(mine.map((f) => f.headers['destination'])).toEqual([`/topic/plain-${n}`]);
    });
  });

  describe('retained messages', () => {
    it('MQTT retained -> STOMP SUBSCRIBE gets them with retain:true after the RECEIPT; retain-handling:2 gets none', async () => {
      const n = nonce();
      const pub = await connect(tb.port);
      await pub.publishAsync(`r/${n}/a`, 'ra', { qos: 1, retain: true });
      await pub.publishAsync(`r/${n}/b`, 'rb', { qos: 0, retain: true, properties: { contentType: 'text/plain' } });
      const s = await stomp();
      await s.subscribe(`/topic/r/${n}/+`, 'r');
      const got = await s.waitMessages(2);
      expect(got.map((f) => f.body.toString()).sort()).toEqual(['ra', 'rb']);
      for (const f of got) expect(f.headers['retain']).toBe('true');
      expect(got.find((f) => f.body.toString() === 'rb')!.headers['content-type']).toBe('text/plain');
      // Live messages on the same subscription carry no retain header.
      await pub.publishAsync(`r/${n}/a`, 'live', { qos: 1 });
      await s.waitMessages(3);
      expect(s.messages()[2]!.headers['retain']).toBeUndefined();

      const none = await stomp();
      await none.subscribe(`/topic/r/${n}/+`, 'r2', 'auto', { 'retain-handling': '2' });
      await pub.publishAsync(`r/${n}/c`, 'after', { qos: 1 });
      const [first] = await none.waitMessages(1);
      expect(first!.body.toString()).toBe('after');
    });

    it('STOMP SEND retain:true is retained for MQTT and STOMP subscribers; an empty retained body clears it', async () => {
      const n = nonce();
      const s = await stomp();
      await s.send(`/topic/rs/${n}`, 'kept', { retain: 'true', persistent: 'true', 'x-k': 'v' });
      const mq = await connect(tb.port);
      await mq.subscribeAsync(`rs/${n}`, { qos: 1 });
      await until(() => mq.received.length === 1, 3000, 'retained message');
      expect(mq.received[0]!.packet.retain).toBe(true);
      expect(mq.received[0]!.payload.toString()).toBe('kept');
      expect(mq.received[0]!.packet.qos).toBe(1);
      expect(userProps(mq.received[0]!.packet)).toEqual({ 'x-k': 'v' });
      const s2 = await stomp();
      await s2.subscribe(`/topic/rs/${n}`, 'x');
      const [m] = await s2.waitMessages(1);
      expect([m!.body.toString(), m!.headers['retain']]).toEqual(['kept', 'true']);

      await s.send(`/topic/rs/${n}`, '', { retain: 'true' });
      const mq2 = await connect(tb.port);
      await mq2.subscribeAsync(`rs/${n}`, { qos: 1 });
      await s.send(`/topic/rs/${n}`, 'live');
      await until(() => mq2.received.length === 1, 3000, 'live message');
      expect(mq2.received.map((r) => [r.payload.toString(), r.packet.retain])).toEqual([['live', false]]);
    });
  });

  describe('mosquitto clients', () => {
    const base = (): string[] => ['-h', '127.0.0.1', '-p', String(tb.port)];

    for (const [V, qos] of [
      ['mqttv311', 1],
      ['mqttv5', 2],
    ] as const) {
      it(`mosquitto_pub (${V}, QoS ${qos}) -> STOMP subscriber`, async () => {
        const n = nonce();
        const s = await stomp();
        await s.subscribe(`/topic/mp/${n}/#`, 's', 'client-individual');
        const extra = V === 'mqttv5' ? ['-D', 'PUBLISH', 'user-property', 'origin', 'mosquitto', '-D', 'PUBLISH', 'content-type', 'text/plain'] : [];
        const r = await run('mosquitto_pub', [...base(), '-V', V, '-q', String(qos), '-t', `mp/${n}/t`, '-m', 'from mosquitto ✓', ...extra]);
        expect(r.code, r.stderr).toBe(0);
        const [m] = await s.waitMessages(1);
        expect(m!.body.toString()).toBe('from mosquitto ✓');
        expect(m!.headers['destination']).toBe(`/topic/mp/${n}/t`);
        expect(m!.headers['persistent']).toBe('true');
        if (V === 'mqttv5') {
          expect(m!.headers['origin']).toBe('mosquitto');
          expect(m!.headers['content-type']).toBe('text/plain');
        }
        s.ack(m!);
      });

      it(`STOMP SEND -> mosquitto_sub (${V})`, async () => {
        const n = nonce();
        const id = `msub-${n}`;
        const sub = run('mosquitto_sub', [...base(), '-V', V, '-q', String(qos), '-i', id, '-t', `ms/${n}/#`, '-C', '2', '-v']);
        await until(() => tb.broker.core.router.subscribersOf(`ms/${n}/x`).some((x) => x.clientId === id), 5000, 'mosquitto_sub subscribed');
        const s = await stomp();
        await s.send(`/topic/ms/${n}/x`, 'one', { persistent: 'true' });
        await s.send(`/topic/ms/${n}/y/z`, 'two ✓');
        const r = await sub;
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(`ms/${n}/x one\nms/${n}/y/z two ✓\n`);
      });
    }
  });
});
