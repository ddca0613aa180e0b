/**
 * QoS 0 / 1 / 2 in both directions: acknowledgement flows and packet ids, QoS 2 exactly once
 * (resent PUBLISH, unknown PUBREL), PUBACK reason codes, invalid topic names, Receive Maximum in both
 * directions, and message order per topic.
 */
import type { IConnackPacket, IPublishPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { connectSync, got, nonce, rawSettled, synced } from '../helpers/sync.js';

function publishes(packets: Packet[]): IPublishPacket[] {
  return packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
}

describe('QoS flows', async () => {
  const b = await startBroker();

  for (const version of [4, 5] as const) {
    it(`QoS 1 from a client: PUBACK with the same packet id (v${version}) [MQTT-4.3.2-2] [MQTT-2.2.1-5]`, async () => {
      const n = nonce();
      const sub = await connectSync(b.port, { protocolVersion: version });
      await sub.subscribeAsync(`q1/${n}`, { qos: 1 });
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      raw.send({ cmd: 'publish', topic: `q1/${n}`, qos: 1, messageId: 1234, payload: 'one', retain: false, dup: false });
      const ack = await raw.next('puback');
      expect(ack.messageId).toBe(1234);
      if (version === 5) expect(ack.reasonCode ?? 0).toBe(0);
      await synced(await connect(b.port), sub);
      expect(got(sub).map((m) => [m.payload.toString(), m.packet.qos])).toEqual([['one', 1]]);
      raw.end();
    });

    it(`QoS 2 from a client: PUBREC, PUBREL, PUBCOMP with the same id; delivered once (v${version}) [MQTT-4.3.3-2] [MQTT-4.3.3-3]`, async () => {
      const n = nonce();
      const sub = await connectSync(b.port, { protocolVersion: version });
      await sub.subscribeAsync(`q2/${n}`, { qos: 2 });
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      raw.send({ cmd: 'publish', topic: `q2/${n}`, qos: 2, messageId: 77, payload: 'two', retain: false, dup: false });
      expect((await raw.next('pubrec')).messageId).toBe(77);
      raw.send({ cmd: 'pubrel', messageId: 77 });
      expect((await raw.next('pubcomp')).messageId).toBe(77);
      await synced(await connect(b.port), sub);
      expect(got(sub).map((m) => [m.payload.toString(), m.packet.qos])).toEqual([['two', 2]]);
      raw.end();
    });

    it(`QoS 2 exactly once: a PUBLISH resent with DUP before PUBREL is not delivered again (v${version}) [MQTT-4.3.3-9] [MQTT-4.3.3-10]`, async () => {
      const n = nonce();
      const sub = await connectSync(b.port, { protocolVersion: version });
      await sub.subscribeAsync(`eo/${n}`, { qos: 2 });
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      const pub = (payload: string, dup: boolean): void =>
        raw.send({ cmd: 'publish', topic: `eo/${n}`, qos: 2, messageId: 5, payload, retain: false, dup });
      pub('first', false);
      expect((await raw.next('pubrec')).messageId).toBe(5);
      // Resent after PUBREC (lost PUBREC) and twice in a row without waiting.
      pub('first', true);
      pub('first', true);
      expect((await raw.next('pubrec')).messageId).toBe(5);
      expect((await raw.next('pubrec')).messageId).toBe(5);
      raw.send({ cmd: 'pubrel', messageId: 5 });
      expect((await raw.next('pubcomp')).messageId).toBe(5);
      // After PUBCOMP the id is free again: the same id now carries a new message.
      pub('second', false);
      await raw.next('pubrec');
      raw.send({ cmd: 'pubrel', messageId: 5 });
      await raw.next('pubcomp');
      await synced(await connect(b.port), sub);
      expect(got(sub).map((m) => m.payload.toString())).toEqual(['first', 'second']);
      raw.end();
    });
  }

  it('PUBREL for an unknown packet id: v5 PUBCOMP 0x92, v3.1.1 PUBCOMP [MQTT-3.7.2-1]', async () => {
    const raw5 = await RawClient.connect(b.port, 5);
    await raw5.handshake();
    raw5.send({ cmd: 'pubrel', messageId: 4242 });
    const c5 = await raw5.next('pubcomp');
    expect([c5.messageId, c5.reasonCode]).toEqual([4242, 0x92]);
    const raw4 = await RawClient.connect(b.port, 4);
    await raw4.handshake();
    raw4.send({ cmd: 'pubrel', messageId: 4243 });
    expect((await raw4.next('pubcomp')).messageId).toBe(4243);
    // Neither connection is closed for it.
    raw5.send({ cmd: 'pingreq' });
    await raw5.next('pingresp');
    raw4.send({ cmd: 'pingreq' });
    await raw4.next('pingresp');
    raw5.end();
    raw4.end();
  });

  it('v5 PUBACK / PUBREC say 0x10 No matching subscribers when nobody subscribes, 0x00 otherwise', async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    raw.send({ cmd: 'publish', topic: `nosub/${n}`, qos: 1, messageId: 1, payload: 'x', retain: false, dup: false });
    expect((await raw.next('puback')).reasonCode).toBe(0x10);
    raw.send({ cmd: 'publish', topic: `nosub/${n}`, qos: 2, messageId: 2, payload: 'x', retain: false, dup: false });
    expect((await raw.next('pubrec')).reasonCode).toBe(0x10);
    raw.send({ cmd: 'pubrel', messageId: 2 });
    expect((await raw.next('pubcomp')).reasonCode ?? 0).toBe(0);
    const sub = await connect(b.port);
    await sub.subscribeAsync(`nosub/${n}`, { qos: 1 });
    raw.send({ cmd: 'publish', topic: `nosub/${n}`, qos: 1, messageId: 3, payload: 'x', retain: false, dup: false });
    expect((await raw.next('puback')).reasonCode ?? 0).toBe(0);
    raw.end();
  });

  describe('invalid topic names in PUBLISH', () => {
    // [MQTT-3.3.2-2] wildcards; [MQTT-4.7.3-1] / 3.3.2.3.4 empty without alias; [MQTT-1.5.4-2] U+0000.
    const cases: Array<[string, string, number]> = [
      ['a single-level wildcard', 'a/+', 0x90],
      ['a multi-level wildcard', 'a/#', 0x90],
      ['a lone "#"', '#', 0x90],
      ['an empty topic without a topic alias', '', 0x82],
      ['U+0000', 'a\u0000b', 0x81],
    ];
    for (const [what, topic, code] of cases) {
      for (const qos of [0, 1] as const) {
        it(`v5: ${what} at QoS ${qos} -> DISCONNECT 0x${code.toString(16)} and close`, async () => {
          const raw = await RawClient.connect(b.port, 5);
          await raw.handshake();
          raw.send({ cmd: 'publish', topic, qos, messageId: qos ? 1 : undefined, payload: 'x', retain: false, dup: false } as Packet);
          const d = await raw.next('disconnect');
          expect(d.reasonCode).toBe(code);
          await raw.waitClosed();
        });
      }
      it(`v3.1.1: ${what} -> connection closed without a reply`, async () => {
        const raw = await RawClient.connect(b.port, 4);
        await raw.handshake();
        raw.send({ cmd: 'publish', topic, qos: 1, messageId: 1, payload: 'x', retain: false, dup: false });
        await raw.waitClosed();
        expect(raw.packets).toEqual([]);
      });
    }

    it('a subscriber does not get the refused message', async () => {
      const sub = await connectSync(b.port);
      await sub.subscribeAsync('#', { qos: 1 });
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake();
      raw.send({ cmd: 'publish', topic: 'bad/+', qos: 1, messageId: 1, payload: 'x', retain: false, dup: false });
      await raw.waitClosed();
      await synced(await connect(b.port), sub);
      expect(got(sub).filter((m) => m.topic.startsWith('bad/'))).toEqual([]);
    });
  });

  for (const version of [4, 5] as const) {
    it(`QoS 1 and 2 to a subscriber: distinct non-zero packet ids, acknowledged flows complete (v${version}) [MQTT-2.2.1-2] [MQTT-4.3.2-1] [MQTT-4.3.3-1]`, async () => {
      const n = nonce();
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `out/${n}/#`, qos: 2 }] });
      await raw.next('suback');
      const pub = await connect(b.port, { protocolVersion: version });
      for (let i = 0; i < 4; i++) await pub.publishAsync(`out/${n}/q1`, `a${i}`, { qos: 1 });
      for (let i = 0; i < 4; i++) await pub.publishAsync(`out/${n}/q2`, `b${i}`, { qos: 2 });
      const first = publishes(await rawSettled(raw));
      expect(first.map((p) => [p.payload.toString(), p.qos, p.dup])).toEqual([
        ...[0, 1, 2, 3].map((i) => [`a${i}`, 1, false]),
        ...[0, 1, 2, 3].map((i) => [`b${i}`, 2, false]),
      ]);
      const ids = first.map((p) => p.messageId!);
      expect(ids.every((id) => id > 0 && id <= 65535)).toBe(true);
      expect(new Set(ids).size).toBe(8);

      for (const p of first.slice(0, 4)) raw.send({ cmd: 'puback', messageId: p.messageId! });
      for (const p of first.slice(4)) {
        raw.send({ cmd: 'pubrec', messageId: p.messageId! });
        expect((await raw.next('pubrel')).messageId).toBe(p.messageId);
        raw.send({ cmd: 'pubcomp', messageId: p.messageId! });
      }
      // Nothing is resent once every flow is complete.
      await pub.publishAsync(`out/${n}/q1`, 'last', { qos: 1 });
      const rest = await rawSettled(raw);
      expect(publishes(rest).map((p) => p.payload.toString())).toEqual(['last']);
      expect(rest.filter((p) => p.cmd === 'pubrel')).toEqual([]);
      raw.end();
    });
  }

  it('v5: PUBREC for an unknown packet id is answered with PUBREL 0x92', async () => {
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    raw.send({ cmd: 'pubrec', messageId: 999 });
    const rel = await raw.next('pubrel');
    expect([rel.messageId, rel.reasonCode]).toEqual([999, 0x92]);
    raw.end();
  });

  it("v5: the broker keeps to the client's Receive Maximum when sending QoS 1/2 [MQTT-3.3.4-9]", async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake({ properties: { receiveMaximum: 2 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `rmo/${n}`, qos: 1 }] });
    await raw.next('suback');
    const pub = await connect(b.port);
    for (let i = 0; i < 5; i++) await pub.publishAsync(`rmo/${n}`, `m${i}`, { qos: 1 });
    const first = publishes(await rawSettled(raw));
    expect(first.map((p) => p.payload.toString())).toEqual(['m0', 'm1']);
    raw.send({ cmd: 'puback', messageId: first[0]!.messageId! });
    const next = await raw.next('publish');
    expect(next.payload.toString()).toBe('m2');
    expect(publishes(await rawSettled(raw))).toEqual([]);
    for (const p of [first[1]!, next]) raw.send({ cmd: 'puback', messageId: p.messageId! });
    await until(() => publishes(raw.packets).length === 2);
    expect(publishes(raw.packets).map((p) => p.payload.toString())).toEqual(['m3', 'm4']);
    raw.end();
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`keeps the order of QoS 1 messages on one topic, also when they queue (v${protocolVersion}) [MQTT-4.6.0-5]`, async () => {
      const n = nonce();
      const N = 200;
      // Receive Maximum 3 makes most messages wait in the session queue (v5); v3.1.1 uses maxInflight.
      const sub = await connect(b.port, { protocolVersion, ...(protocolVersion === 5 ? { properties: { receiveMaximum: 3 } } : {}) });
      await sub.subscribeAsync(`ord/${n}`, { qos: 1 });
      const pub = await connect(b.port, { protocolVersion });
      await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync(`ord/${n}`, String(i), { qos: 1 })));
      await until(() => sub.received.length >= N, 10_000, `${N} messages`);
      expect(sub.received.map((r) => Number(r.payload.toString()))).toEqual(Array.from({ length: N }, (_, i) => i));
    });
  }
});

describe('Receive Maximum from the client side (mqtt.receiveMaximum 3)', async () => {
  const b = await startBroker({ config: { mqtt: { receiveMaximum: 3 } } });

  it('is announced in CONNACK', async () => {
    const raw = await RawClient.connect(b.port, 5);
    const ack = (await raw.handshake()) as IConnackPacket;
    expect(ack.properties?.receiveMaximum).toBe(3);
    raw.end();
  });

  it('a 4th unreleased QoS 2 PUBLISH gets DISCONNECT 0x93; a resend of a held id does not count [MQTT-3.3.4-7]', async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    for (const id of [1, 2, 3]) {
      raw.send({ cmd: 'publish', topic: `rm/${n}`, qos: 2, messageId: id, payload: 'x', retain: false, dup: false });
      expect((await raw.next('pubrec')).messageId).toBe(id);
    }
    raw.send({ cmd: 'publish', topic: `rm/${n}`, qos: 2, messageId: 2, payload: 'x', retain: false, dup: true });
    expect((await raw.next('pubrec')).messageId).toBe(2);
    raw.send({ cmd: 'publish', topic: `rm/${n}`, qos: 2, messageId: 4, payload: 'x', retain: false, dup: false });
    const d = await raw.next('disconnect');
    expect(d.reasonCode).toBe(0x93);
    await raw.waitClosed();
  });

  it('a client that completes its flows may send any number of messages', async () => {
    const n = nonce();
    const sub = await connect(b.port);
    await sub.subscribeAsync(`rm-ok/${n}`, { qos: 2 });
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    for (let id = 1; id <= 10; id++) {
      raw.send({ cmd: 'publish', topic: `rm-ok/${n}`, qos: 2, messageId: id, payload: String(id), retain: false, dup: false });
      await raw.next('pubrec');
      raw.send({ cmd: 'pubrel', messageId: id });
      await raw.next('pubcomp');
    }
    await until(() => sub.received.length === 10);
    expect(raw.closed).toBe(false);
    raw.end();
  });
});
