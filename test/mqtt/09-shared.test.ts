/**
 * Shared subscriptions `$share/<group>/<filter>` (MQTT 5 section 4.8.2; also accepted from 3.1.1
 * clients): one member per message, round robin, groups and plain subscribers side by side, hand
 * over of unacknowledged messages when a member leaves, no retained messages, share name checks.
 */
import type { IPublishPacket, ISubackPacket, IUnsubackPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { connectSync, got, nonce, pairs, rawSettled, synced, type Client } from '../helpers/sync.js';

function publishes(packets: Packet[]): IPublishPacket[] {
  return packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
}

describe('shared subscriptions', async () => {
  const b = await startBroker();

  it('each message goes to exactly one member, round robin, v5 and v3.1.1 members alike (section 4.8.2)', async () => {
    const n = nonce();
    const members: Client[] = [];
    for (const protocolVersion of [5, 4, 5] as const) {
      const c = await connectSync(b.port, { protocolVersion });
      const granted = await c.subscribeAsync(`$share/g${n}/sh/${n}/+`, { qos: 1 });
      expect(granted.map((g) => g.qos)).toEqual([1]);
      members.push(c);
    }
    const pub = await connect(b.port);
    const N = 9;
    for (let i = 0; i < N; i++) await pub.publishAsync(`sh/${n}/t`, String(i), { qos: 1 });
    await synced(pub, ...members);
    const owner = new Map<number, number>();
    for (const [m, c] of members.entries()) {
      for (const r of got(c)) {
        const i = Number(r.payload.toString());
        expect(owner.has(i)).toBe(false);
        owner.set(i, m);
        expect(r.topic).toBe(`sh/${n}/t`);
      }
    }
    expect([...owner.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i));
    // Round robin: the first three messages go to three different members, then the pattern repeats.
    const order = Array.from({ length: N }, (_, i) => owner.get(i)!);
    expect(new Set(order.slice(0, 3)).size).toBe(3);
    for (let i = 3; i < N; i++) expect(order[i]).toBe(order[i - 3]);
  });

  it('two groups on one filter each get every message at their granted QoS; a plain subscriber gets every message too [MQTT-4.8.2-3]', async () => {
    const n = nonce();
    const groupA = [await connectSync(b.port), await connectSync(b.port, { protocolVersion: 4 })];
    const groupB = [await connectSync(b.port)];
    for (const c of groupA) await c.subscribeAsync(`$share/a${n}/two/${n}/#`, { qos: 1 });
    for (const c of groupB) await c.subscribeAsync(`$share/b${n}/two/${n}/#`, { qos: 0 });
    const plain = await connectSync(b.port);
    await plain.subscribeAsync(`two/${n}/#`, { qos: 1 });
    const pub = await connect(b.port);
    const N = 6;
    for (let i = 0; i < N; i++) await pub.publishAsync(`two/${n}/x`, String(i), { qos: 1 });
    await synced(pub, ...groupA, ...groupB, plain);
    const all = Array.from({ length: N }, (_, i) => String(i));
    const payloads = (cs: Client[]): string[] => cs.flatMap((c) => got(c).map((r) => r.payload.toString())).sort();
    expect(payloads(groupA)).toEqual(all);
    expect(groupA.map((c) => got(c).length)).toEqual([3, 3]);
    expect(payloads(groupB)).toEqual(all);
    expect(got(groupB[0]!).every((r) => r.packet.qos === 0)).toBe(true);
    expect(payloads([plain])).toEqual(all);
  });

  it('a client with a shared and a plain subscription on the same filter gets a copy through each', async () => {
    const n = nonce();
    const c = await connectSync(b.port);
    await c.subscribeAsync(`$share/g${n}/both/${n}`, { qos: 1, properties: { subscriptionIdentifier: 1 } });
    await c.subscribeAsync(`both/${n}`, { qos: 1, properties: { subscriptionIdentifier: 2 } });
    const pub = await connect(b.port);
    await pub.publishAsync(`both/${n}`, 'm', { qos: 1 });
    await synced(pub, c);
    const ids = got(c)
      .map((r) => r.packet.properties?.subscriptionIdentifier)
      .sort();
    expect(ids).toEqual([1, 2]);
  });

  for (const version of [5, 4] as const) {
    it(`a member that disconnects hands its unacknowledged QoS 1 messages to the remaining member (v${version})`, async () => {
      const n = nonce();
      const filter = `$share/h${n}/ho/${n}`;
      const lazy = await RawClient.connect(b.port, version);
      await lazy.handshake();
      lazy.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] });
      await lazy.next('suback');
      const busy = await connectSync(b.port);
      await busy.subscribeAsync(filter, { qos: 1 });
      const pub = await connect(b.port);
      const N = 6;
      for (let i = 0; i < N; i++) await pub.publishAsync(`ho/${n}`, String(i), { qos: 1 });
      const held = publishes(await rawSettled(lazy));
      expect(held.length).toBe(N / 2); // round robin; never acknowledged
      lazy.end();
      await until(() => got(busy).length >= N, 5000, 'handed-over messages');
      await synced(pub, busy);
      expect(
        got(busy)
          .map((r) => Number(r.payload.toString()))
          .sort((x, y) => x - y),
      ).toEqual(Array.from({ length: N }, (_, i) => i));
    });
  }

  it('a persistent member that disconnects also hands over, and does not get those messages again on return', async () => {
    const n = nonce();
    const filter = `$share/p${n}/hp/${n}`;
    const clientId = `lazy-${n}`;
    const lazy = await RawClient.connect(b.port, 5);
    await lazy.handshake({ clientId, clean: true, properties: { sessionExpiryInterval: 120 } });
    lazy.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] });
    await lazy.next('suback');
    const busy = await connectSync(b.port);
    await busy.subscribeAsync(filter, { qos: 1 });
    const pub = await connect(b.port);
    for (let i = 0; i < 4; i++) await pub.publishAsync(`hp/${n}`, String(i), { qos: 1 });
    expect(publishes(await rawSettled(lazy)).length).toBe(2);
    lazy.end();
    await until(() => got(busy).length >= 4, 5000, 'handed-over messages');

    const back = await RawClient.connect(b.port, 5);
    const ack = await back.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 120 } });
    expect(ack.sessionPresent).toBe(true);
    expect(publishes(await rawSettled(back))).toEqual([]);
    // It is still a member: new messages reach it again.
    for (let i = 4; i < 8; i++) await pub.publishAsync(`hp/${n}`, String(i), { qos: 1 });
    expect(publishes(await rawSettled(back)).length).toBe(2);
    back.end();
  });

  it('a QoS 2 delivery cut off by a disconnect stays with that member and is completed when it returns [MQTT-4.8.2-4] [MQTT-4.8.2-5]', async () => {
    const n = nonce();
    const filter = `$share/q${n}/q2/${n}`;
    const clientId = `q2-${n}`;
    const lazy = await RawClient.connect(b.port, 5);
    await lazy.handshake({ clientId, properties: { sessionExpiryInterval: 120 } });
    lazy.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 2 }] });
    await lazy.next('suback');
    const busy = await connectSync(b.port);
    await busy.subscribeAsync(filter, { qos: 2 });
    const pub = await connect(b.port);
    for (let i = 0; i < 4; i++) await pub.publishAsync(`q2/${n}`, String(i), { qos: 2 });
    const held = publishes(await rawSettled(lazy));
    expect(held.length).toBe(2);
    lazy.end(); // neither PUBREC nor anything else: the client may have the messages already
    await until(() => b.logs.some((l) => l.msg === 'client disconnected' && l.fields['clientId'] === clientId), 5000, 'disconnect');
    await synced(pub, busy);
    const busyGot = got(busy).map((r) => r.payload.toString());
    expect(busyGot.length).toBe(2);
    expect(busyGot.some((p) => held.some((h) => h.payload.toString() === p))).toBe(false);

    const back = await RawClient.connect(b.port, 5);
    await back.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 120 } });
    const again = publishes(await rawSettled(back));
    expect(again.map((p) => [p.messageId, p.payload.toString(), p.dup])).toEqual(held.map((p) => [p.messageId, p.payload.toString(), true]));
    back.end();
  });

  it('shared subscriptions get no retained messages (section 4.8.2)', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    await pub.publishAsync(`shr/${n}/t`, 'kept', { qos: 1, retain: true });
    const member = await connectSync(b.port);
    await member.subscribeAsync(`$share/r${n}/shr/${n}/+`, { qos: 1, rh: 0 });
    const plain = await connectSync(b.port);
    await plain.subscribeAsync(`shr/${n}/+`, { qos: 1 });
    await synced(pub, member, plain);
    expect(pairs(member)).toEqual([]);
    expect(pairs(plain)).toEqual([[`shr/${n}/t`, 'kept']]);
    await pub.publishAsync(`shr/${n}/t`, 'live', { qos: 1 });
    await synced(pub, member);
    expect(pairs(member)).toEqual([[`shr/${n}/t`, 'live']]);
  });

  for (const version of [5, 4] as const) {
    const failure = version === 5 ? 0x8f : 0x80;
    it(`invalid share names are refused with 0x${failure.toString(16)} (v${version}) [MQTT-4.8.2-1] [MQTT-4.8.2-2]`, async () => {
      const n = nonce();
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      const bad = ['$share//x', '$share/g', '$share/g/', '$share/a+b/x', '$share/a#b/x', '$share/+/x', '$share/#'];
      raw.send({
        cmd: 'subscribe',
        messageId: 3,
        subscriptions: [...bad.map((topic) => ({ topic, qos: 1 as const })), { topic: `$share/ok${n}/v/${n}/#`, qos: 1 }],
      });
      const ack = (await raw.next('suback')) as ISubackPacket;
      expect(ack.granted).toEqual([...bad.map(() => failure), 1]);
      raw.end();
    });
  }

  it('No Local on a shared subscription -> DISCONNECT 0x82 [MQTT-3.8.3-4]', async () => {
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/nl/x', qos: 1, nl: true }] });
    expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
    await raw.waitClosed();
  });

  it('after a member unsubscribes, the other member gets every message', async () => {
    const n = nonce();
    const filter = `$share/u${n}/us/${n}`;
    const leaving = await connectSync(b.port);
    const staying = await connectSync(b.port);
    await leaving.subscribeAsync(filter, { qos: 1 });
    await staying.subscribeAsync(filter, { qos: 1 });
    const r = (await leaving.unsubscribeAsync(filter)) as IUnsubackPacket | undefined;
    expect(r?.granted).toEqual([0]);
    const pub = await connect(b.port);
    for (let i = 0; i < 4; i++) await pub.publishAsync(`us/${n}`, String(i), { qos: 1 });
    await synced(pub, leaving, staying);
    expect(got(leaving)).toEqual([]);
    expect(got(staying).map((m) => m.payload.toString())).toEqual(['0', '1', '2', '3']);
  });
});
