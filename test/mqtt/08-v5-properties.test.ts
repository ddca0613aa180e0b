/**
 * MQTT 5 properties on the publish path: Message Expiry Interval, Topic Alias in both directions,
 * Maximum Packet Size in both directions, pass-through of the application properties, Payload
 * Format Indicator checks, User Property order on the wire, Request Problem Information.
 */
import type { IConnackPacket, IPublishPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { connectSync, got, nonce, pairs, rawSettled, synced } from '../helpers/sync.js';

// -- byte-level helpers: mqtt-packet groups user properties by name, so their order is checked here.

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  return Buffer.concat([u16(b.length), b]);
}

function userProp(k: string, v: string): Buffer {
  return Buffer.concat([Buffer.from([0x26]), str(k), str(v)]);
}

/** A v5 PUBLISH built by hand (QoS 0 when `packetId` is 0). */
function publishBytes(topic: string, packetId: number, props: Buffer, payload: Buffer): Buffer {
  const body = Buffer.concat([str(topic), packetId ? u16(packetId) : Buffer.alloc(0), varint(props.length), props, payload]);
  return Buffer.concat([Buffer.from([0x30 | (packetId ? 0x02 : 0)]), varint(body.length), body]);
}

function readVarint(b: Buffer, pos: number): [number, number] {
  let value = 0;
  let mul = 1;
  for (;;) {
    const d = b[pos++]!;
    value += (d & 0x7f) * mul;
    if ((d & 0x80) === 0) return [value, pos];
    mul *= 128;
  }
}

/** Splits captured bytes into packets and returns the user properties of each PUBLISH, in wire order. */
function publishUserProps(bytes: Buffer): Array<{ topic: string; user: Array<[string, string]> }> {
  const out: Array<{ topic: string; user: Array<[string, string]> }> = [];
  let pos = 0;
  while (pos < bytes.length) {
    const h = bytes[pos]!;
    const [len, bodyStart] = readVarint(bytes, pos + 1);
    const end = bodyStart + len;
    if (h >> 4 === 3) {
      let p = bodyStart;
      const tl = bytes.readUInt16BE(p);
      const topic = bytes.toString('utf8', p + 2, p + 2 + tl);
      p += 2 + tl;
      if ((h >> 1) & 3) p += 2;
      const [plen, ps] = readVarint(bytes, p);
      const user: Array<[string, string]> = [];
      const readStr = (at: number): [string, number] => {
        const l = bytes.readUInt16BE(at);
        return [bytes.toString('utf8', at + 2, at + 2 + l), at + 2 + l];
      };
      for (let q = ps; q < ps + plen; ) {
        const [id, next] = readVarint(bytes, q);
        q = next;
        if (id === 0x26) {
          const [k, a] = readStr(q);
          const [v, c] = readStr(a);
          user.push([k, v]);
          q = c;
        } else if (id === 0x01) q += 1;
        else if (id === 0x02) q += 4;
        else if (id === 0x23) q += 2;
        else if (id === 0x0b) q = readVarint(bytes, q)[1];
        else if (id === 0x03 || id === 0x08 || id === 0x09) q += 2 + bytes.readUInt16BE(q);
        else throw new Error(`unexpected property 0x${id.toString(16)}`);
      }
      out.push({ topic, user });
    }
    pos = end;
  }
  return out;
}

function publishes(packets: Packet[]): IPublishPacket[] {
  return packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
}

describe('MQTT 5 properties', async () => {
  const b = await startBroker();

  describe('Message Expiry Interval', () => {
    it('is forwarded to a connected subscriber', async () => {
      const n = nonce();
      const sub = await connectSync(b.port);
      await sub.subscribeAsync(`mx/${n}`, { qos: 1 });
      const pub = await connect(b.port);
      await pub.publishAsync(`mx/${n}`, 'e', { qos: 1, properties: { messageExpiryInterval: 10 } });
      await pub.publishAsync(`mx/${n}`, 'none', { qos: 1 });
      await synced(pub, sub);
      const [withExpiry, without] = got(sub);
      const left = withExpiry!.packet.properties?.messageExpiryInterval;
      expect(left).toBeGreaterThanOrEqual(9);
      expect(left).toBeLessThanOrEqual(10);
      expect(without!.packet.properties?.messageExpiryInterval).toBeUndefined();
    });

    it('counts down while the message waits for an offline session; expired messages are dropped [MQTT-3.3.2-5] [MQTT-3.3.2-6]', async () => {
      const n = nonce();
      const clientId = `mx-${n}`;
      const opts = { clientId, clean: false, properties: { sessionExpiryInterval: 300 } };
      const first = await connect(b.port, opts);
      await first.subscribeAsync(`mxo/${n}`, { qos: 1 });
      await first.endAsync();
      const pub = await connect(b.port);
      await pub.publishAsync(`mxo/${n}`, 'ten', { qos: 1, properties: { messageExpiryInterval: 10 } });
      await pub.publishAsync(`mxo/${n}`, 'one', { qos: 1, properties: { messageExpiryInterval: 1 } });
      await pub.publishAsync(`mxo/${n}`, 'forever', { qos: 1 });
      await sleep(1500);
      const again = await connectSync(b.port, opts);
      await synced(pub, again);
      const msgs = got(again);
      expect(msgs.map((m) => m.payload.toString())).toEqual(['ten', 'forever']);
      const left = msgs[0]!.packet.properties?.messageExpiryInterval ?? -1;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThan(10);
      expect(msgs[1]!.packet.properties?.messageExpiryInterval).toBeUndefined();
    });
  });

  describe('Topic Alias, client to broker', () => {
    it('an alias set with a topic is used with an empty topic, and can be remapped [MQTT-3.3.2-12]', async () => {
      const n = nonce();
      const sub = await connectSync(b.port);
      await sub.subscribeAsync(`ta/${n}/+`, { qos: 1 });
      const raw = await RawClient.connect(b.port, 5);
      const ack = (await raw.handshake()) as IConnackPacket;
      expect(ack.properties?.topicAliasMaximum).toBe(10);
      const send = (topic: string, alias: number, payload: string, id: number): void =>
        raw.send({ cmd: 'publish', topic, qos: 1, messageId: id, payload, retain: false, dup: false, properties: { topicAlias: alias } });
      send(`ta/${n}/a`, 1, 'p1', 1);
      send('', 1, 'p2', 2);
      send(`ta/${n}/b`, 10, 'p3', 3);
      send('', 10, 'p4', 4);
      send(`ta/${n}/c`, 1, 'p5', 5);
      send('', 1, 'p6', 6);
      for (let i = 1; i <= 6; i++) expect((await raw.next('puback')).messageId).toBe(i);
      await synced(await connect(b.port), sub);
      expect(pairs(sub)).toEqual([
        [`ta/${n}/a`, 'p1'],
        [`ta/${n}/a`, 'p2'],
        [`ta/${n}/b`, 'p3'],
        [`ta/${n}/b`, 'p4'],
        [`ta/${n}/c`, 'p5'],
        [`ta/${n}/c`, 'p6'],
      ]);
      // The publisher's alias is not passed on to a subscriber that asked for none.
      expect(got(sub).every((m) => m.packet.properties?.topicAlias === undefined)).toBe(true);
      raw.end();
    });

    for (const [what, alias] of [
      ['0', 0],
      ['above the Topic Alias Maximum', 11],
    ] as const) {
      it(`alias ${what} -> DISCONNECT 0x94 [MQTT-3.3.2-8] [MQTT-3.3.2-9]`, async () => {
        const raw = await RawClient.connect(b.port, 5);
        await raw.handshake();
        raw.send({ cmd: 'publish', topic: 'ta/bad', qos: 0, payload: 'x', retain: false, dup: false, properties: { topicAlias: alias } });
        expect((await raw.next('disconnect')).reasonCode).toBe(0x94);
        await raw.waitClosed();
      });
    }

    it('an empty topic with an alias never set on this connection -> DISCONNECT 0x82', async () => {
      const n = nonce();
      const first = await RawClient.connect(b.port, 5);
      await first.handshake();
      first.send({ cmd: 'publish', topic: `ta/${n}`, qos: 0, payload: 'x', retain: false, dup: false, properties: { topicAlias: 3 } });
      first.send({ cmd: 'pingreq' });
      await first.next('pingresp');
      // Aliases belong to one connection: another one cannot use alias 3.
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'publish', topic: '', qos: 0, payload: 'x', retain: false, dup: false, properties: { topicAlias: 3 } });
      expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
      await raw.waitClosed();
      first.end();
    });
  });

  describe('Topic Alias, broker to client', () => {
    it('with a Topic Alias Maximum: topic + alias first, then the alias alone; no alias once all are used [MQTT-3.3.2-10]', async () => {
      const n = nonce();
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake({ properties: { topicAliasMaximum: 2 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `tb/${n}/+`, qos: 1 }] });
      await raw.next('suback');
      const pub = await connect(b.port);
      for (const t of ['a', 'a', 'b', 'c', 'b', 'c', 'a']) await pub.publishAsync(`tb/${n}/${t}`, t, { qos: 0 });
      await pub.publishAsync(`tb/${n}/a`, 'end', { qos: 1 });
      const got5 = publishes(await rawSettled(raw));
      const seen = got5.map((p) => [p.topic, p.properties?.topicAlias, p.payload.toString()]);
      const a = seen[0]![1];
      const bAlias = seen[2]![1];
      expect(a).toBeGreaterThanOrEqual(1);
      expect(bAlias).toBeGreaterThanOrEqual(1);
      expect(a).not.toBe(bAlias);
      expect([a, bAlias].every((x) => (x as number) <= 2)).toBe(true);
      expect(seen).toEqual([
        [`tb/${n}/a`, a, 'a'],
        ['', a, 'a'],
        [`tb/${n}/b`, bAlias, 'b'],
        [`tb/${n}/c`, undefined, 'c'],
        ['', bAlias, 'b'],
        [`tb/${n}/c`, undefined, 'c'],
        ['', a, 'a'],
        ['', a, 'end'],
      ]);
      raw.end();
    });

    it('without a Topic Alias Maximum: every PUBLISH carries its topic and no alias [MQTT-3.3.2-11]', async () => {
      const n = nonce();
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `tn/${n}`, qos: 1 }] });
      await raw.next('suback');
      const pub = await connect(b.port);
      for (let i = 0; i < 3; i++) await pub.publishAsync(`tn/${n}`, String(i), { qos: 1 });
      const got5 = publishes(await rawSettled(raw));
      expect(got5.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([0, 1, 2].map(() => [`tn/${n}`, undefined]));
      raw.end();
    });

    it('MQTT.js with topicAliasMaximum resolves the aliases it is sent', async () => {
      const n = nonce();
      const sub = await connectSync(b.port, { properties: { topicAliasMaximum: 5 } });
      await sub.subscribeAsync(`tm/${n}/+`, { qos: 1 });
      const pub = await connect(b.port);
      for (const t of ['x', 'y', 'x', 'y']) await pub.publishAsync(`tm/${n}/${t}`, t, { qos: 1 });
      await synced(pub, sub);
      expect(pairs(sub)).toEqual(['x', 'y', 'x', 'y'].map((t) => [`tm/${n}/${t}`, t]));
    });
  });

  describe("the client's Maximum Packet Size", () => {
    it('a message larger than it is not sent to that client; the publisher is acknowledged and others get it [MQTT-3.1.2-24] [MQTT-3.1.2-25]', async () => {
      const n = nonce();
      const small = await RawClient.connect(b.port, 5);
      await small.handshake({ properties: { maximumPacketSize: 100 } });
      small.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `mps/${n}`, qos: 1 }] });
      await small.next('suback');
      const big = await connectSync(b.port);
      await big.subscribeAsync(`mps/${n}`, { qos: 1 });
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake();
      const large = Buffer.alloc(300, 0x41);
      raw.send({ cmd: 'publish', topic: `mps/${n}`, qos: 1, messageId: 1, payload: large, retain: false, dup: false });
      expect((await raw.next('puback')).reasonCode ?? 0).toBe(0);
      raw.send({ cmd: 'publish', topic: `mps/${n}`, qos: 0, payload: large, retain: false, dup: false });
      raw.send({ cmd: 'publish', topic: `mps/${n}`, qos: 1, messageId: 2, payload: 'tiny', retain: false, dup: false });
      expect((await raw.next('puback')).messageId).toBe(2);
      const toSmall = publishes(await rawSettled(small));
      expect(toSmall.map((p) => p.payload.toString())).toEqual(['tiny']);
      // The dropped QoS 1 message left no hole in the window: the small client still gets new ones.
      small.send({ cmd: 'puback', messageId: toSmall[0]!.messageId! });
      await synced(await connect(b.port), big);
      expect(got(big).map((m) => m.payload.length)).toEqual([300, 300, 4]);
      small.end();
      raw.end();
    });
  });

  describe('application properties', () => {
    it('Response Topic, Correlation Data, Content Type and Payload Format Indicator pass through unchanged [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-20] [MQTT-3.3.2-4]', async () => {
      const n = nonce();
      const sub = await connectSync(b.port);
      await sub.subscribeAsync(`app/${n}`, { qos: 2 });
      const sub4 = await connectSync(b.port, { protocolVersion: 4 });
      await sub4.subscribeAsync(`app/${n}`, { qos: 2 });
      const pub = await connect(b.port);
      const corr = Buffer.from([0x00, 0xff, 0x10, 0x80]);
      await pub.publishAsync(`app/${n}`, 'héllo', {
        qos: 1,
        properties: { responseTopic: `reply/${n}/ü`, correlationData: corr, contentType: 'application/x-thing; v=1', payloadFormatIndicator: true },
      });
      await pub.publishAsync(`app/${n}`, Buffer.from([0xff, 0xfe]), { qos: 1 });
      await synced(pub, sub, sub4);
      const [m, bin] = got(sub);
      const p = m!.packet.properties!;
      expect(m!.payload.toString()).toBe('héllo');
      expect(p.responseTopic).toBe(`reply/${n}/ü`);
      expect(Buffer.from(p.correlationData!)).toEqual(corr);
      expect(p.contentType).toBe('application/x-thing; v=1');
      expect(p.payloadFormatIndicator).toBe(true);
      // Nothing is added to a message published without properties.
      expect(bin!.payload).toEqual(Buffer.from([0xff, 0xfe]));
      expect(bin!.packet.properties?.payloadFormatIndicator).toBeFalsy();
      expect(bin!.packet.properties?.contentType).toBeUndefined();
      // A 3.1.1 subscriber gets the same payload bytes.
      expect(got(sub4).map((r) => r.payload)).toEqual([Buffer.from('héllo'), Buffer.from([0xff, 0xfe])]);
    });

    it('User Properties keep their order on the wire, repeated names interleaved [MQTT-3.3.2-17] [MQTT-3.3.2-18]', async () => {
      const n = nonce();
      const sub = await RawClient.connect(b.port, 5);
      await sub.handshake();
      sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `up/${n}`, qos: 1 }] });
      await sub.next('suback');
      const captured: Buffer[] = [];
      sub.socket.on('data', (d: Buffer) => captured.push(d));
      const user: Array<[string, string]> = [
        ['a', '1'],
        ['b', '2'],
        ['a', '3'],
        ['c', ''],
        ['a', '1'],
        ['ü', 'ß'],
        ['b', '4'],
      ];
      const props = Buffer.concat([
        Buffer.from([0x01, 0x01]),
        ...user.map(([k, v]) => userProp(k, v)),
        Buffer.from([0x03]),
        str('text/plain'),
      ]);
      const pub = await RawClient.connect(b.port, 5);
      await pub.handshake();
      pub.send(publishBytes(`up/${n}`, 1, props, Buffer.from('body')));
      expect((await pub.next('puback')).reasonCode ?? 0).toBe(0);
      await rawSettled(sub);
      const seen = publishUserProps(Buffer.concat(captured));
      expect(seen).toEqual([{ topic: `up/${n}`, user }]);
      sub.end();
      pub.end();
    });

    it('a Subscription Identifier in a client PUBLISH is a protocol error (DISCONNECT 0x82) [MQTT-3.3.4-6]', async () => {
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'publish', topic: 'sid/in/publish', qos: 1, messageId: 1, payload: 'x', retain: false, dup: false, properties: { subscriptionIdentifier: 5 } });
      expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
      await raw.waitClosed();
    });
  });

  describe('Payload Format Indicator 1 with a payload that is not UTF-8', () => {
    const bad = Buffer.from([0x61, 0xc3, 0x28, 0xff]);

    for (const qos of [1, 2] as const) {
      it(`QoS ${qos}: ${qos === 1 ? 'PUBACK' : 'PUBREC'} 0x99, not delivered, connection stays`, async () => {
        const n = nonce();
        const sub = await connectSync(b.port);
        await sub.subscribeAsync(`pfi/${n}`, { qos: 2 });
        const raw = await RawClient.connect(b.port, 5);
        await raw.handshake();
        raw.send({ cmd: 'publish', topic: `pfi/${n}`, qos, messageId: 9, payload: bad, retain: false, dup: false, properties: { payloadFormatIndicator: true } });
        const ack = await raw.next(qos === 1 ? 'puback' : 'pubrec');
        expect([ack.messageId, ack.reasonCode]).toEqual([9, 0x99]);
        // No Reason String on refused PUBACK/PUBREC (as Mosquitto): the code says it, and some clients reject properties there.
        expect(ack.properties?.reasonString).toBeUndefined();
        // Without the indicator the same bytes are fine.
        raw.send({ cmd: 'publish', topic: `pfi/${n}`, qos: 1, messageId: 10, payload: bad, retain: false, dup: false });
        expect((await raw.next('puback')).reasonCode ?? 0).toBe(0);
        await synced(await connect(b.port), sub);
        expect(got(sub).map((m) => m.payload)).toEqual([bad]);
        raw.end();
      });
    }

    it('QoS 0: DISCONNECT 0x99', async () => {
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'publish', topic: 'pfi/q0', qos: 0, payload: bad, retain: false, dup: false, properties: { payloadFormatIndicator: true } });
      expect((await raw.next('disconnect')).reasonCode).toBe(0x99);
      await raw.waitClosed();
    });

    it('Request Problem Information 0: the PUBACK carries no Reason String [MQTT-3.1.2-29]', async () => {
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake({ properties: { requestProblemInformation: false } });
      raw.send({ cmd: 'publish', topic: 'pfi/rpi', qos: 1, messageId: 3, payload: bad, retain: false, dup: false, properties: { payloadFormatIndicator: true } });
      const ack = await raw.next('puback');
      expect(ack.reasonCode).toBe(0x99);
      expect(ack.properties?.reasonString).toBeUndefined();
      expect(ack.properties?.userProperties).toBeUndefined();
      raw.end();
    });
  });
});

describe('the broker Maximum Packet Size (mqtt.maxPacketSize 1024)', async () => {
  const b = await startBroker({ config: { mqtt: { maxPacketSize: 1024 } } });

  it('is announced in CONNACK', async () => {
    const raw = await RawClient.connect(b.port, 5);
    const ack = (await raw.handshake()) as IConnackPacket;
    expect(ack.properties?.maximumPacketSize).toBe(1024);
    raw.end();
  });

  it('a packet of exactly the maximum is accepted; one byte more gets DISCONNECT 0x95; others are still served [MQTT-3.2.2-15]', async () => {
    const n = nonce();
    const sub = await connectSync(b.port);
    await sub.subscribeAsync(`big/${n}`, { qos: 0 });
    const other = await connect(b.port);

    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    // Fixed header 3 bytes (remaining length >= 128) + topic 2+len + property length 1 + payload.
    const topic = `big/${n}`;
    const fits = 1024 - 3 - (2 + topic.length) - 1;
    const exact = publishBytes(topic, 0, Buffer.alloc(0), Buffer.alloc(fits, 0x61));
    expect(exact.length).toBe(1024);
    raw.send(exact);
    raw.send({ cmd: 'pingreq' });
    await raw.next('pingresp');
    raw.send(publishBytes(topic, 0, Buffer.alloc(0), Buffer.alloc(fits + 1, 0x61)));
    expect((await raw.next('disconnect')).reasonCode).toBe(0x95);
    await raw.waitClosed();

    await other.publishAsync(topic, 'still here', { qos: 1 });
    await synced(other, sub);
    expect(got(sub).map((m) => m.payload.length)).toEqual([fits, 'still here'.length]);
  });

  it('v3.1.1: an oversized packet closes the connection without a reply', async () => {
    const raw = await RawClient.connect(b.port, 4);
    await raw.handshake();
    raw.send({ cmd: 'publish', topic: 'big/v4', qos: 0, payload: Buffer.alloc(2000), retain: false, dup: false });
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  it('the declared size is checked before the body arrives', async () => {
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    // A PUBLISH header announcing 100 MB, and nothing after it.
    raw.send(Buffer.concat([Buffer.from([0x30]), varint(100 * 1024 * 1024)]));
    expect((await raw.next('disconnect')).reasonCode).toBe(0x95);
    await raw.waitClosed();
  });
});
