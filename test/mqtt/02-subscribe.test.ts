/**
 * SUBSCRIBE / UNSUBSCRIBE: reason codes per filter, topic matching (wildcards, empty levels, `$`
 * topics), overlapping and replaced subscriptions, the v5 subscription options and identifiers.
 */
import type { IPublishPacket, ISubackPacket, IUnsubackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { connectSync, got, nonce, pairs, rawSettled, subIds, synced, type Client } from '../helpers/sync.js';

describe('SUBSCRIBE / UNSUBSCRIBE', async () => {
  const b = await startBroker();

  async function rawSubscribe(raw: RawClient, filters: Array<{ topic: string; qos: 0 | 1 | 2 }>, messageId = 1): Promise<number[]> {
    raw.send({ cmd: 'subscribe', messageId, subscriptions: filters });
    const ack = (await raw.next('suback')) as ISubackPacket;
    expect(ack.messageId).toBe(messageId);
    return ack.granted as number[];
  }

  for (const version of [4, 5] as const) {
    it(`grants the requested QoS per filter (v${version}) [MQTT-3.9.3-1]`, async () => {
      const n = nonce();
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      const granted = await rawSubscribe(raw, [
        { topic: `s/${n}/q0`, qos: 0 },
        { topic: `s/${n}/q1`, qos: 1 },
        { topic: `s/${n}/q2`, qos: 2 },
      ]);
      expect(granted).toEqual([0, 1, 2]);
      raw.end();
    });

    const failure = version === 5 ? 0x8f : 0x80;
    it(`refuses invalid filters one by one with 0x${failure.toString(16)} and keeps the valid ones (v${version}) [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1]`, async () => {
      const n = nonce();
      const raw = await RawClient.connect(b.port, version);
      await raw.handshake();
      const bad = ['a/#/b', 'a+', '', '#/a', 'a/b#', '+a/b', 'a/b+/c', '##'];
      const granted = await rawSubscribe(raw, [...bad.map((topic) => ({ topic, qos: 1 as const })), { topic: `inv/${n}`, qos: 1 }]);
      expect(granted).toEqual([...bad.map(() => failure), 1]);
      // The connection stays open and the valid filter in the same packet works.
      const pub = await connect(b.port);
      await pub.publishAsync(`inv/${n}`, 'ok', { qos: 1 });
      const msg = (await raw.next('publish')) as IPublishPacket;
      expect([msg.topic, msg.payload.toString()]).toEqual([`inv/${n}`, 'ok']);
      raw.end();
    });
  }

  it('UNSUBACK v5: 0x00 for a removed subscription, 0x11 when none existed; no delivery afterwards [MQTT-3.11.3-1]', async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    expect(await rawSubscribe(raw, [{ topic: `us/${n}/a`, qos: 1 }, { topic: `us/${n}/+`, qos: 1 }])).toEqual([1, 1]);
    raw.send({ cmd: 'unsubscribe', messageId: 7, unsubscriptions: [`us/${n}/a`, `us/${n}/b`, `us/${n}/+`, `us/${n}/a`] });
    const ack = (await raw.next('unsuback')) as IUnsubackPacket;
    expect(ack.messageId).toBe(7);
    // The last filter repeats the first, already removed in this packet.
    expect(ack.granted).toEqual([0x00, 0x11, 0x00, 0x11]);
    const pub = await connect(b.port);
    await pub.publishAsync(`us/${n}/a`, 'gone', { qos: 1 });
    expect(await rawSettled(raw)).toEqual([]);
    raw.end();
  });

  it('UNSUBACK v3.1.1 echoes the packet id and stops delivery [MQTT-3.10.4-4] [MQTT-3.10.4-5]', async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 4);
    await raw.handshake();
    await rawSubscribe(raw, [{ topic: `us4/${n}`, qos: 1 }]);
    // Unsubscribing a filter that was never subscribed still gets an UNSUBACK.
    raw.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: [`us4/${n}`, `us4/${n}/never`] });
    expect((await raw.next('unsuback')).messageId).toBe(9);
    const pub = await connect(b.port, { protocolVersion: 4 });
    await pub.publishAsync(`us4/${n}`, 'gone', { qos: 1 });
    expect(await rawSettled(raw)).toEqual([]);
    raw.end();
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`matches '+' and '#' including empty levels and "a/#" matching "a" (v${protocolVersion}) [MQTT-4.7.1-2] [MQTT-4.7.1-3]`, async () => {
      const P = 'wc' + nonce();
      const topics = [P, `${P}/b`, `${P}/b/c`, `${P}//c`, `${P}/`, `/${P}`, `${P}/x/c`];
      // Expected matches written out by hand (not computed with the matcher under test).
      const expected: Record<string, string[]> = {
        [`${P}/#`]: [P, `${P}/b`, `${P}/b/c`, `${P}//c`, `${P}/`, `${P}/x/c`],
        [`${P}/+`]: [`${P}/b`, `${P}/`],
        [`${P}/+/c`]: [`${P}/b/c`, `${P}//c`, `${P}/x/c`],
        [`${P}//c`]: [`${P}//c`],
        [`+/${P}`]: [`/${P}`],
        ['+']: [P],
        ['#']: topics,
        [`${P}/b/#`]: [`${P}/b`, `${P}/b/c`],
        [`${P}/+/#`]: [`${P}/b`, `${P}/b/c`, `${P}//c`, `${P}/`, `${P}/x/c`],
        ['+/+']: [`${P}/b`, `${P}/`, `/${P}`],
        [`${P}/b/c/#`]: [`${P}/b/c`],
        [`/${P}`]: [`/${P}`],
      };
      const subs = new Map<string, Client>();
      for (const filter of Object.keys(expected)) {
        const c = await connectSync(b.port, { protocolVersion });
        await c.subscribeAsync(filter, { qos: 0 });
        subs.set(filter, c);
      }
      const pub = await connect(b.port, { protocolVersion });
      for (const t of topics) await pub.publishAsync(t, 'm', { qos: 0 });
      await synced(pub, ...subs.values());
      for (const [filter, c] of subs) {
        const mine = got(c)
          .map((r) => r.topic)
          .filter((t) => t.includes(P));
        expect({ filter, topics: mine }).toEqual({ filter, topics: expected[filter] });
      }
    });
  }

  it('a filter starting with a wildcard does not match $ topics; "$SYS/#" and "$x/+" do [MQTT-4.7.2-1]', async () => {
    const P = 'd' + nonce();
    const topics = [`$SYS/${P}/x`, `$${P}/x`, `${P}/x`];
    const expected: Record<string, string[]> = {
      '#': [`${P}/x`],
      '+/x': [`${P}/x`],
      '+/+': [`${P}/x`],
      '+/#': [`${P}/x`],
      [`+/${P}/x`]: [],
      '$SYS/#': [`$SYS/${P}/x`],
      [`$SYS/+/x`]: [`$SYS/${P}/x`],
      [`$${P}/+`]: [`$${P}/x`],
      [`$${P}/#`]: [`$${P}/x`],
    };
    const subs = new Map<string, Client>();
    for (const filter of Object.keys(expected)) {
      const c = await connectSync(b.port);
      await c.subscribeAsync(filter, { qos: 1 });
      subs.set(filter, c);
    }
    const pub = await connect(b.port);
    for (const t of topics) await pub.publishAsync(t, 'm', { qos: 1 });
    await synced(pub, ...subs.values());
    for (const [filter, c] of subs) {
      const mine = got(c)
        .map((r) => r.topic)
        .filter((t) => t.includes(P));
      expect({ filter, topics: mine }).toEqual({ filter, topics: expected[filter] });
    }
  });

  it('overlapping subscriptions (v5): one copy, at the highest granted QoS, with every Subscription Identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3]', async () => {
    const n = nonce();
    const sub = await connectSync(b.port);
    await sub.subscribeAsync(`ov/${n}/+`, { qos: 1, properties: { subscriptionIdentifier: 1 } });
    await sub.subscribeAsync(`ov/${n}/#`, { qos: 2, properties: { subscriptionIdentifier: 2 } });
    await sub.subscribeAsync(`ov/${n}/t`, { qos: 0 });
    await sub.subscribeAsync(`ov/${n}/t/deeper`, { qos: 1, properties: { subscriptionIdentifier: 3 } });
    const pub = await connect(b.port);
    await pub.publishAsync(`ov/${n}/t`, 'a', { qos: 2 });
    await pub.publishAsync(`ov/${n}/u`, 'b', { qos: 1 });
    await pub.publishAsync(`ov/${n}/t`, 'c', { qos: 0 });
    await synced(pub, sub);
    // Sorted: MQTT.js emits a QoS 2 message only at PUBREL, so arrival order is not emit order.
    const r = got(sub).sort((x, y) => x.payload.toString().localeCompare(y.payload.toString()));
    expect(r.map((m) => [m.topic, m.payload.toString(), m.packet.qos, subIds(m.packet)])).toEqual([
      [`ov/${n}/t`, 'a', 2, [1, 2]],
      [`ov/${n}/u`, 'b', 1, [1, 2]],
      [`ov/${n}/t`, 'c', 0, [1, 2]],
    ]);
  });

  it('overlapping subscriptions (v3.1.1): one copy at the highest QoS (documented choice)', async () => {
    const n = nonce();
    const sub = await connectSync(b.port, { protocolVersion: 4 });
    await sub.subscribeAsync(`ov4/${n}/+`, { qos: 0 });
    await sub.subscribeAsync(`ov4/${n}/#`, { qos: 2 });
    await sub.subscribeAsync(`ov4/${n}/t`, { qos: 1 });
    const pub = await connect(b.port, { protocolVersion: 4 });
    await pub.publishAsync(`ov4/${n}/t`, 'a', { qos: 2 });
    await pub.publishAsync(`ov4/${n}/t`, 'b', { qos: 1 });
    await synced(pub, sub);
    expect(got(sub).map((m) => [m.payload.toString(), m.packet.qos]).sort()).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('a SUBSCRIBE with an existing filter replaces the subscription (QoS, identifier) [MQTT-3.8.4-3]', async () => {
    const n = nonce();
    const sub = await connectSync(b.port);
    await sub.subscribeAsync(`rp/${n}`, { qos: 0, properties: { subscriptionIdentifier: 5 } });
    const granted = await sub.subscribeAsync(`rp/${n}`, { qos: 2, properties: { subscriptionIdentifier: 6 } });
    expect(granted.map((g) => g.qos)).toEqual([2]);
    const pub = await connect(b.port);
    await pub.publishAsync(`rp/${n}`, 'x', { qos: 2 });
    await synced(pub, sub);
    expect(got(sub).map((m) => [m.payload.toString(), m.packet.qos, subIds(m.packet)])).toEqual([['x', 2, [6]]]);
  });

  it('No Local: own messages are not delivered through a No Local subscription, others are [MQTT-3.8.3-3]', async () => {
    const n = nonce();
    const self = await connectSync(b.port);
    const other = await connectSync(b.port);
    await self.subscribeAsync(`nl/${n}/t`, { qos: 1, nl: true, properties: { subscriptionIdentifier: 1 } });
    await other.subscribeAsync(`nl/${n}/t`, { qos: 1, nl: true });
    await self.publishAsync(`nl/${n}/t`, 'from-self', { qos: 1 });
    await other.publishAsync(`nl/${n}/t`, 'from-other', { qos: 1 });
    await synced(self, self, other);
    await synced(other, self, other);
    expect(pairs(self)).toEqual([[`nl/${n}/t`, 'from-other']]);
    expect(pairs(other)).toEqual([[`nl/${n}/t`, 'from-self']]);

    // An overlapping subscription without No Local still delivers the own message, carrying only its identifier.
    await self.subscribeAsync(`nl/${n}/#`, { qos: 1, properties: { subscriptionIdentifier: 2 } });
    self.received.length = 0;
    await self.publishAsync(`nl/${n}/t`, 'again', { qos: 1 });
    await synced(self, self);
    expect(got(self).map((m) => [m.payload.toString(), subIds(m.packet)])).toEqual([['again', [2]]]);
  });

  it('Retain As Published: live retained messages keep RETAIN 1 only with the option [MQTT-3.3.1-12] [MQTT-3.3.1-13]', async () => {
    const n = nonce();
    const rap = await connectSync(b.port);
    const plain = await connectSync(b.port);
    await rap.subscribeAsync(`rap/${n}`, { qos: 1, rap: true });
    await plain.subscribeAsync(`rap/${n}`, { qos: 1 });
    const pub = await connect(b.port);
    await pub.publishAsync(`rap/${n}`, 'r', { qos: 1, retain: true });
    await pub.publishAsync(`rap/${n}`, 'n', { qos: 1, retain: false });
    await synced(pub, rap, plain);
    expect(got(rap).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([
      ['r', true],
      ['n', false],
    ]);
    expect(got(plain).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([
      ['r', false],
      ['n', false],
    ]);
    // Retained messages sent because of a new subscription carry RETAIN 1 either way [MQTT-3.3.1-9].
    const late = await connectSync(b.port);
    await late.subscribeAsync(`rap/${n}`, { qos: 1 });
    await synced(pub, late);
    expect(got(late).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([['r', true]]);
  });

  it('Retain Handling 0 / 1 / 2 [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    await pub.publishAsync(`rh/${n}/t`, 'kept', { qos: 1, retain: true });

    // 0: at every subscribe, also when the subscription already exists.
    const rh0 = await connectSync(b.port);
    await rh0.subscribeAsync(`rh/${n}/t`, { qos: 1, rh: 0 });
    await rh0.subscribeAsync(`rh/${n}/t`, { qos: 1, rh: 0 });
    await synced(pub, rh0);
    expect(pairs(rh0)).toEqual([
      [`rh/${n}/t`, 'kept'],
      [`rh/${n}/t`, 'kept'],
    ]);

    // 1: only when the subscription did not exist.
    const rh1 = await connectSync(b.port);
    await rh1.subscribeAsync(`rh/${n}/t`, { qos: 1, rh: 1 });
    await rh1.subscribeAsync(`rh/${n}/t`, { qos: 1, rh: 1 });
    await rh1.subscribeAsync(`rh/${n}/+`, { qos: 1, rh: 1 });
    await synced(pub, rh1);
    expect(pairs(rh1)).toEqual([
      [`rh/${n}/t`, 'kept'],
      [`rh/${n}/t`, 'kept'],
    ]);

    // 2: never; live messages still arrive.
    const rh2 = await connectSync(b.port);
    await rh2.subscribeAsync(`rh/${n}/t`, { qos: 1, rh: 2 });
    await synced(pub, rh2);
    expect(pairs(rh2)).toEqual([]);
    await pub.publishAsync(`rh/${n}/t`, 'live', { qos: 1 });
    await synced(pub, rh2);
    expect(got(rh2).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([['live', false]]);
  });

  it('Subscription Identifier: large values round-trip [MQTT-3.3.4-3]', async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    for (const [i, id] of [456789, 268435455, 128].entries()) {
      raw.send({ cmd: 'subscribe', messageId: i + 1, properties: { subscriptionIdentifier: id }, subscriptions: [{ topic: `sid/${n}/${id}`, qos: 1 }] });
      expect(((await raw.next('suback')) as ISubackPacket).granted).toEqual([1]);
    }
    const pub = await connect(b.port);
    for (const id of [456789, 268435455, 128]) {
      await pub.publishAsync(`sid/${n}/${id}`, 'x', { qos: 0 });
      const msg = (await raw.next('publish')) as IPublishPacket;
      expect([msg.topic, subIds(msg)]).toEqual([`sid/${n}/${id}`, [id]]);
    }
    raw.end();
  });

  it('Subscription Identifier 0 is a protocol error (DISCONNECT 0x82)', async () => {
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    // SUBSCRIBE id 1, properties: Subscription Identifier (0x0b) = 0, filter "x" QoS 0.
    raw.send(Buffer.from([0x82, 0x09, 0x00, 0x01, 0x02, 0x0b, 0x00, 0x00, 0x01, 0x78, 0x00]));
    const d = await raw.next('disconnect');
    expect(d.reasonCode).toBe(0x82);
    await raw.waitClosed();
  });

  it('delivers at min(published QoS, granted QoS) [MQTT-3.8.4-8]', async () => {
    const n = nonce();
    const subs: Client[] = [];
    for (const qos of [0, 1, 2] as const) {
      const c = await connectSync(b.port);
      const granted = await c.subscribeAsync(`dg/${n}`, { qos });
      expect(granted.map((g) => g.qos)).toEqual([qos]);
      subs.push(c);
    }
    const pub = await connect(b.port);
    for (const qos of [0, 1, 2] as const) await pub.publishAsync(`dg/${n}`, `p${qos}`, { qos });
    await synced(pub, ...subs);
    for (const [granted, c] of subs.entries()) {
      expect(got(c).map((m) => [m.payload.toString(), m.packet.qos])).toEqual([0, 1, 2].map((q) => [`p${q}`, Math.min(q, granted)]));
    }
  });

  it('several filters in one SUBSCRIBE each deliver; duplicates in one packet leave one subscription', async () => {
    const n = nonce();
    const raw = await RawClient.connect(b.port, 5);
    await raw.handshake();
    const granted = await rawSubscribe(raw, [
      { topic: `many/${n}/a`, qos: 0 },
      { topic: `many/${n}/b`, qos: 1 },
      { topic: `many/${n}/a`, qos: 2 },
    ]);
    expect(granted).toEqual([0, 1, 2]);
    const pub = await connect(b.port);
    await pub.publishAsync(`many/${n}/a`, 'A', { qos: 2 });
    await pub.publishAsync(`many/${n}/b`, 'B', { qos: 2 });
    const got2 = (await rawSettled(raw)).filter((p): p is IPublishPacket => p.cmd === 'publish');
    expect(got2.map((p) => [p.topic, p.qos])).toEqual([
      [`many/${n}/a`, 2],
      [`many/${n}/b`, 1],
    ]);
    raw.end();
  });
});
