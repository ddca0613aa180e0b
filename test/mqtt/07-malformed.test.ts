/**
 * 07 malformed packets (mosquitto's test/broker/13-malformed-*.py): raw bytes a real client never
 * sends. For MQTT 5 the broker must send DISCONNECT with the right reason code before it closes
 * (0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet too large) [MQTT-4.13.1-1]; errors in
 * CONNECT are answered with CONNACK instead; MQTT 3.1.1 has no such packet, the broker just closes
 * [MQTT-4.8.0-1 (3.1.1)]. After every case a fresh client must still connect, publish and receive, and
 * a client connected since the start of the file must be undisturbed.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { cat, connectBytes, packet, props, str, u16, u32, varint } from '../helpers/bytes.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const PACKET_TOO_LARGE = 0x95;
const MAX_PACKET = 4096;

type Version = 4 | 5;
/** Builds the bad packet for a connection of `v` (properties exist only in v5). */
type Bytes = (v: Version) => Buffer;
/** An empty v5 property list, nothing in 3.1.1. */
const noProps = (v: Version): Buffer => (v === 5 ? props() : Buffer.alloc(0));

describe('07 malformed packets', async () => {
  const b = await startBroker({ config: { mqtt: { maxPacketSize: MAX_PACKET } } });
  const bystander = await connect(b.port, { protocolVersion: 5, clientId: 'malformed-bystander' });
  await bystander.subscribeAsync('malformed/health/#', { qos: 1 });
  let seq = 0;

  /** A fresh client connects, publishes and receives; the bystander receives too; nothing crashed inside. */
  async function assertHealthy(): Promise<void> {
    const topic = `malformed/health/${++seq}`;
    const c = await connect(b.port, { protocolVersion: 4, clientId: `malformed-health-${seq}` });
    await c.subscribeAsync(topic, { qos: 1 });
    await c.publishAsync(topic, 'ok', { qos: 1 });
    await until(() => c.received.some((r) => r.topic === topic), 3000, 'fresh client receives');
    await until(() => bystander.received.some((r) => r.topic === topic), 3000, 'bystander receives');
    expect(bystander.connected).toBe(true);
    await c.endAsync();
    expect(b.logs.filter((l) => l.level === 'error')).toEqual([]);
  }

  /** Connects cleanly, sends `bytes`, expects DISCONNECT `code` (v5) or a bare close (3.1.1). */
  async function rejectsAfterConnect(v: Version, bytes: Buffer, code: number | readonly number[]): Promise<void> {
    const raw = await RawClient.connect(b.port, v);
    const ack = await raw.handshake({ clientId: `malformed-raw-${++seq}` });
    expect(v === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
    raw.send(bytes);
    if (v === 5) {
      const d = (await raw.next('disconnect')) as IDisconnectPacket;
      if (typeof code === 'number') expect(d.reasonCode).toBe(code);
      else expect(code).toContain(d.reasonCode);
    }
    await raw.waitClosed();
    expect(raw.packets.map((p) => p.cmd)).toEqual([]);
    await assertHealthy();
  }

  /** Sends a bad CONNECT: v5 gets CONNACK `code` before the close, 3.1.1 a bare close. */
  async function rejectsConnect(v: Version, bytes: Buffer, code: number): Promise<void> {
    const raw = await RawClient.connect(b.port, v);
    raw.send(bytes);
    if (v === 5) {
      const ack = (await raw.next('connack')) as IConnackPacket;
      expect(ack.reasonCode).toBe(code);
    }
    await raw.waitClosed();
    expect(raw.packets.map((p) => p.cmd)).toEqual([]);
    await assertHealthy();
  }

  interface Case {
    readonly name: string;
    readonly bytes: Bytes;
    /** The v5 DISCONNECT reason code (several when the spec leaves the choice open). */
    readonly code: number | readonly number[];
    readonly only?: Version;
  }

  const cases: Case[] = [
    // -- fixed header ---------------------------------------------------------------------------
    { name: 'remaining length in 5 bytes (a Variable Byte Integer has at most 4) [MQTT-1.5.5]', bytes: () => cat(0x30, 0xff, 0xff, 0xff, 0xff, 0x01), code: MALFORMED },
    { name: 'reserved packet type 0 [MQTT-2.1.2]', bytes: () => cat(0x00, 0x00), code: MALFORMED },
    { name: 'packet type 15 in 3.1.1 (reserved there) [MQTT-2.2.1 (3.1.1)]', bytes: () => cat(0xf0, 0x00), code: MALFORMED, only: 4 },
    { name: 'AUTH when no authentication method was agreed [MQTT-4.12.0-1]', bytes: () => cat(0xf0, 0x00), code: PROTOCOL_ERROR, only: 5 },
    { name: 'SUBSCRIBE with fixed header flags 0b0000 [MQTT-3.8.1-1] [MQTT-2.1.3-1]', bytes: (v) => packet(0x80, u16(1), noProps(v), str('m/#'), 0x00), code: MALFORMED },
    { name: 'UNSUBSCRIBE with fixed header flags 0b0000 [MQTT-3.10.1-1]', bytes: (v) => packet(0xa0, u16(1), noProps(v), str('m/#')), code: MALFORMED },
    { name: 'PUBREL with fixed header flags 0b0000 [MQTT-3.6.1-1]', bytes: () => packet(0x60, u16(1)), code: MALFORMED },
    { name: 'PINGREQ with fixed header flags 0b0001 [MQTT-2.1.3-1]', bytes: () => cat(0xc1, 0x00), code: MALFORMED },
    { name: 'PUBLISH with QoS 3 [MQTT-3.3.1-4]', bytes: (v) => packet(0x36, str('m/t'), u16(1), noProps(v), 'x'.charCodeAt(0)), code: MALFORMED },
    // The spec forbids DUP on QoS 0 without naming the reason code; mosquitto answers Malformed.
    { name: 'PUBLISH QoS 0 with DUP set [MQTT-3.3.1-2]', bytes: (v) => packet(0x38, str('m/t'), noProps(v), 0x78), code: [MALFORMED, PROTOCOL_ERROR] },

    // -- packet identifiers ---------------------------------------------------------------------
    { name: 'PUBLISH QoS 1 with packet identifier 0 [MQTT-2.2.1-3]', bytes: (v) => packet(0x32, str('m/t'), u16(0), noProps(v), 0x78), code: PROTOCOL_ERROR },
    { name: 'PUBLISH QoS 2 with packet identifier 0 [MQTT-2.2.1-3]', bytes: (v) => packet(0x34, str('m/t'), u16(0), noProps(v), 0x78), code: PROTOCOL_ERROR },
    { name: 'SUBSCRIBE with packet identifier 0 [MQTT-2.2.1-3]', bytes: (v) => packet(0x82, u16(0), noProps(v), str('m/#'), 0x00), code: PROTOCOL_ERROR },
    { name: 'UNSUBSCRIBE with packet identifier 0 [MQTT-2.2.1-3]', bytes: (v) => packet(0xa2, u16(0), noProps(v), str('m/#')), code: PROTOCOL_ERROR },

    // -- strings --------------------------------------------------------------------------------
    { name: 'PUBLISH whose topic length prefix is cut short [MQTT-1.5.4]', bytes: () => packet(0x30, 0x00), code: MALFORMED },
    { name: 'SUBSCRIBE whose filter length prefix is cut short', bytes: (v) => packet(0x82, u16(1), noProps(v), 0x00), code: MALFORMED },
    { name: 'SUBSCRIBE whose filter has no options byte [MQTT-3.8.3]', bytes: (v) => packet(0x82, u16(1), noProps(v), str('m/#')), code: MALFORMED },
    { name: 'PUBLISH topic string overrunning the packet', bytes: () => packet(0x30, u16(100), Buffer.from('abc')), code: MALFORMED },
    { name: 'SUBSCRIBE filter string overrunning the packet', bytes: (v) => packet(0x82, u16(1), noProps(v), u16(500), Buffer.from('m/#'), 0x00), code: MALFORMED },
    { name: 'topic with ill-formed UTF-8 C3 28 [MQTT-1.5.4-1]', bytes: (v) => packet(0x30, str([0xc3, 0x28]), noProps(v), 0x78), code: MALFORMED },
    { name: 'topic with an encoded surrogate ED A0 80 [MQTT-1.5.4-1]', bytes: (v) => packet(0x30, str([0x61, 0xed, 0xa0, 0x80]), noProps(v), 0x78), code: MALFORMED },
    { name: "topic with an overlong '/' C0 AF [MQTT-1.5.4-1]", bytes: (v) => packet(0x30, str([0x61, 0xc0, 0xaf, 0x62]), noProps(v), 0x78), code: MALFORMED },
    { name: 'topic holding U+0000 [MQTT-1.5.4-2]', bytes: (v) => packet(0x30, str([0x61, 0x00, 0x62]), noProps(v), 0x78), code: MALFORMED },
    { name: 'subscription filter with ill-formed UTF-8 [MQTT-1.5.4-1]', bytes: (v) => packet(0x82, u16(1), noProps(v), str([0x6d, 0x2f, 0xc3, 0x28]), 0x00), code: MALFORMED },
    { name: 'subscription filter holding U+0000 [MQTT-1.5.4-2]', bytes: (v) => packet(0x82, u16(1), noProps(v), str([0x6d, 0x00]), 0x00), code: MALFORMED },
    { name: 'unsubscribe filter with an encoded surrogate [MQTT-1.5.4-1]', bytes: (v) => packet(0xa2, u16(1), noProps(v), str([0xed, 0xbf, 0xbf])), code: MALFORMED },

    // -- properties (v5) ------------------------------------------------------------------------
    { name: 'property length running past the packet [MQTT-2.2.2]', bytes: () => packet(0x30, str('m/t'), varint(50), 0x01, 0x01), code: MALFORMED, only: 5 },
    { name: 'property running past the property length', bytes: () => packet(0x30, str('m/t'), varint(2), 0x02, u32(60), 0x78), code: MALFORMED, only: 5 },
    { name: 'property length as a 5-byte Variable Byte Integer', bytes: () => packet(0x30, str('m/t'), 0x80, 0x80, 0x80, 0x80, 0x00), code: MALFORMED, only: 5 },
    { name: 'unknown property identifier 0x50', bytes: () => packet(0x30, str('m/t'), props(0x50, 0x00), 0x78), code: MALFORMED, only: 5 },
    { name: 'Subscription Identifier in a client PUBLISH [MQTT-3.3.4-6]', bytes: () => packet(0x30, str('m/t'), props(0x0b, varint(1)), 0x78), code: PROTOCOL_ERROR, only: 5 },
    { name: 'Session Expiry Interval (a CONNECT property) in PUBLISH', bytes: () => packet(0x30, str('m/t'), props(0x11, u32(1)), 0x78), code: PROTOCOL_ERROR, only: 5 },
    { name: 'Message Expiry Interval twice in PUBLISH [MQTT-3.3.2]', bytes: () => packet(0x30, str('m/t'), props(0x02, u32(10), 0x02, u32(20)), 0x78), code: PROTOCOL_ERROR, only: 5 },
    { name: 'Payload Format Indicator twice in PUBLISH', bytes: () => packet(0x30, str('m/t'), props(0x01, 0x00, 0x01, 0x00), 0x78), code: PROTOCOL_ERROR, only: 5 },
    { name: 'Subscription Identifier twice in SUBSCRIBE [MQTT-3.8.2.1]', bytes: () => packet(0x82, u16(1), props(0x0b, varint(1), 0x0b, varint(2)), str('m/#'), 0x00), code: PROTOCOL_ERROR, only: 5 },
    { name: 'Subscription Identifier 0 in SUBSCRIBE', bytes: () => packet(0x82, u16(1), props(0x0b, varint(0)), str('m/#'), 0x00), code: PROTOCOL_ERROR, only: 5 },

    // -- SUBSCRIBE / UNSUBSCRIBE payloads -------------------------------------------------------
    { name: 'SUBSCRIBE without a topic filter [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3])', bytes: (v) => packet(0x82, u16(1), noProps(v)), code: PROTOCOL_ERROR },
    { name: 'UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]', bytes: (v) => packet(0xa2, u16(1), noProps(v)), code: PROTOCOL_ERROR },
    { name: 'SUBSCRIBE with Retain Handling 3 [MQTT-3.8.3-4 (5.0)]', bytes: () => packet(0x82, u16(1), props(), str('m/#'), 0x30), code: PROTOCOL_ERROR, only: 5 },
    { name: 'SUBSCRIBE with reserved option bits set (3.1.1) [MQTT-3.8.3-4 (3.1.1)]', bytes: () => packet(0x82, u16(1), str('m/#'), 0x04), code: MALFORMED, only: 4 },
    { name: 'SUBSCRIBE with reserved option bits 6-7 set [MQTT-3.8.3-5]', bytes: () => packet(0x82, u16(1), props(), str('m/#'), 0x40), code: MALFORMED, only: 5 },
    { name: 'SUBSCRIBE with QoS 3', bytes: (v) => packet(0x82, u16(1), noProps(v), str('m/#'), 0x03), code: MALFORMED },

    // -- packets a client may not send ----------------------------------------------------------
    { name: 'CONNACK from a client', bytes: (v) => packet(0x20, 0x00, 0x00, ...(v === 5 ? [0x00] : [])), code: PROTOCOL_ERROR },
    { name: 'SUBACK from a client', bytes: (v) => packet(0x90, u16(1), noProps(v), 0x00), code: PROTOCOL_ERROR },
    { name: 'UNSUBACK from a client', bytes: (v) => packet(0xb0, u16(1), noProps(v)), code: PROTOCOL_ERROR },
    { name: 'PINGRESP from a client', bytes: () => cat(0xd0, 0x00), code: PROTOCOL_ERROR },
    { name: 'a second CONNECT [MQTT-3.1.0-2]', bytes: (v) => connectBytes({ version: v }), code: PROTOCOL_ERROR },
  ];

  for (const v of [4, 5] as const) {
    describe(`MQTT ${v === 5 ? '5.0' : '3.1.1'} after CONNECT`, () => {
      for (const c of cases) {
        if (c.only !== undefined && c.only !== v) continue;
        it(c.name, async () => {
          await rejectsAfterConnect(v, c.bytes(v), c.code);
        });
      }

      it(`refuses a packet over mqtt.maxPacketSize after reading only its fixed header (${v === 5 ? 'DISCONNECT 0x95' : 'close'}) [MQTT-3.2.2-15]`, async () => {
        // Only the header of a 200 MB PUBLISH is sent: the broker must not wait for the body.
        await rejectsAfterConnect(v, cat(0x30, varint(200 * 1024 * 1024)), PACKET_TOO_LARGE);
      });

      it('accepts a packet of exactly mqtt.maxPacketSize and refuses one byte more', async () => {
        const publish = (size: number): Buffer => {
          const head = cat(str('m/size'), noProps(v));
          const payloadLen = size - 3 - head.length; // 1 byte type + 2 bytes remaining length
          return packet(0x30, head, Buffer.alloc(payloadLen, 0x61));
        };
        expect(publish(MAX_PACKET).length).toBe(MAX_PACKET);
        const raw = await RawClient.connect(b.port, v);
        await raw.handshake({ clientId: `malformed-size-${v}` });
        raw.send(publish(MAX_PACKET));
        raw.send({ cmd: 'pingreq' });
        await raw.next('pingresp');
        raw.end();
        await rejectsAfterConnect(v, publish(MAX_PACKET + 1), PACKET_TOO_LARGE);
      });
    });
  }

  describe('malformed CONNECT', () => {
    for (const v of [4, 5] as const) {
      it(`client id with ill-formed UTF-8 C3 28 (v${v}) [MQTT-1.5.4-1] [MQTT-3.1.3-4]`, async () => {
        await rejectsConnect(v, connectBytes({ version: v, clientId: [0x63, 0xc3, 0x28] }), MALFORMED);
      });

      it(`client id with an encoded surrogate ED A0 80 (v${v}) [MQTT-1.5.4-1]`, async () => {
        await rejectsConnect(v, connectBytes({ version: v, clientId: [0x63, 0xed, 0xa0, 0x80] }), MALFORMED);
      });

      it(`client id holding U+0000 (v${v}) [MQTT-1.5.4-2]`, async () => {
        await rejectsConnect(v, connectBytes({ version: v, clientId: [0x63, 0x00] }), MALFORMED);
      });

      it(`client id string overrunning the packet (v${v})`, async () => {
        const good = connectBytes({ version: v, clientId: 'abc' });
        // Same packet, with the client id's length prefix (just before 'abc') raised to 200.
        const bad = Buffer.from(good);
        bad.writeUInt16BE(200, bad.length - 5);
        await rejectsConnect(v, bad, MALFORMED);
      });

      it(`a CONNECT over mqtt.maxPacketSize is refused from its fixed header (v${v})`, async () => {
        const raw = await RawClient.connect(b.port, v);
        raw.send(cat(0x10, varint(200 * 1024 * 1024)));
        await raw.waitClosed();
        await assertHealthy();
      });
    }

    it('Receive Maximum 0 in CONNECT -> CONNACK 0x82 [MQTT-3.1.2-? "Protocol Error ... value 0"]', async () => {
      await rejectsConnect(5, connectBytes({ version: 5, props: cat(0x21, u16(0)) }), PROTOCOL_ERROR);
    });

    it('Maximum Packet Size 0 in CONNECT -> CONNACK 0x82', async () => {
      await rejectsConnect(5, connectBytes({ version: 5, props: cat(0x27, u32(0)) }), PROTOCOL_ERROR);
    });

    it('Session Expiry Interval twice in CONNECT -> CONNACK 0x82', async () => {
      await rejectsConnect(5, connectBytes({ version: 5, props: cat(0x11, u32(1), 0x11, u32(2)) }), PROTOCOL_ERROR);
    });

    it('unknown property in CONNECT -> CONNACK 0x81', async () => {
      await rejectsConnect(5, connectBytes({ version: 5, props: cat(0x50, 0x00) }), MALFORMED);
    });

    it('Topic Alias (a PUBLISH property) in CONNECT -> CONNACK 0x82', async () => {
      await rejectsConnect(5, connectBytes({ version: 5, props: cat(0x23, u16(1)) }), PROTOCOL_ERROR);
    });
  });

  it('survives a burst of random garbage from 20 sockets at once (seeded mini-fuzz)', async () => {
    const rand = mulberry32(0x0707);
    const int = (n: number): number => Math.floor(rand() * n);
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
    const sockets: net.Socket[] = [];
    const CLIENT_HEADERS = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3a, 0x3b, 0x40, 0x50, 0x62, 0x70, 0x82, 0xa2, 0xc0, 0xe0, 0xf0];

    function garbage(i: number): Buffer[] {
      const v: Version = i % 2 === 0 ? 4 : 5;
      const chunks: Buffer[] = [];
      switch (i % 4) {
        case 0: // pure noise
          for (let k = 0; k < 5; k++) chunks.push(bytes(1 + int(400)));
          break;
        case 1: // a valid CONNECT, then packets with random types, flags and bodies
          chunks.push(connectBytes({ version: v, clientId: `fuzz-${i}` }));
          for (let k = 0; k < 30; k++) chunks.push(packet(int(256), bytes(int(40))));
          break;
        case 2: // a valid CONNECT, then random bodies behind fixed headers a client may send
          chunks.push(connectBytes({ version: v, clientId: `fuzz-${i}` }));
          for (let k = 0; k < 30; k++) chunks.push(packet(CLIENT_HEADERS[int(CLIENT_HEADERS.length)]!, bytes(int(40))));
          break;
        default: {
          // a valid CONNECT, then well-formed packets with a few bytes flipped
          chunks.push(connectBytes({ version: v, clientId: `fuzz-${i}` }));
          for (let k = 0; k < 30; k++) {
            const good = [
              packet(0x32, str(`fuzz/${k}`), u16(k + 1), noProps(v), bytes(int(20))),
              packet(0x82, u16(k + 1), noProps(v), str('fuzz/#'), 0x01),
              packet(0xa2, u16(k + 1), noProps(v), str('fuzz/#')),
              packet(0x40, u16(k + 1)),
              cat(0xc0, 0x00),
            ][int(5)]!;
            const bad = Buffer.from(good);
            for (let f = 0; f < 1 + int(3); f++) bad[int(bad.length)] = int(256);
            chunks.push(bad);
          }
        }
      }
      return chunks;
    }

    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const chunks = garbage(i);
        return new Promise<void>((resolve) => {
          const s = net.connect(b.port, '127.0.0.1');
          sockets.push(s);
          s.on('error', () => undefined);
          s.on('data', () => undefined);
          s.on('close', () => resolve());
          s.on('connect', () => {
            for (const c of chunks) s.write(c);
            // Whatever the broker made of it, give it a moment, then hang up.
            setTimeout(() => {
              s.destroy();
              resolve();
            }, 300);
          });
        });
      }),
    );
    for (const s of sockets) s.destroy();
    await assertHealthy();
  });
});

/** A small seeded PRNG so that a failing fuzz run can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
