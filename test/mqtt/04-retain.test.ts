/**
 * Retained messages: set, replace, clear, the RETAIN flag on delivery, expiry, wildcard and `$`
 * matching, and properties kept with the message.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep } from '../helpers/mqtt.js';
import { connectSync, got, nonce, pairs, synced } from '../helpers/sync.js';

describe('retained messages', async () => {
  const b = await startBroker();

  for (const protocolVersion of [4, 5] as const) {
    it(`a new subscriber gets the retained message with RETAIN 1; a newer one replaces it (v${protocolVersion}) [MQTT-3.3.1-5] [MQTT-3.3.1-8]`, async () => {
      const n = nonce();
      const pub = await connect(b.port, { protocolVersion });
      for (const qos of [0, 1, 2] as const) {
        await pub.publishAsync(`ret/${n}/q${qos}`, `first${qos}`, { qos, retain: true });
        await pub.publishAsync(`ret/${n}/q${qos}`, `second${qos}`, { qos, retain: true });
      }
      // Syncing through `pub` makes sure its QoS 0 publishes were handled before anyone subscribes.
      const probe = await connectSync(b.port);
      await synced(pub, probe);
      const sub = await connectSync(b.port, { protocolVersion });
      await sub.subscribeAsync(`ret/${n}/+`, { qos: 2 });
      await synced(pub, sub);
      const r = got(sub)
        .map((m) => [m.topic, m.payload.toString(), m.packet.qos, m.packet.retain])
        .sort();
      expect(r).toEqual([
        [`ret/${n}/q0`, 'second0', 0, true],
        [`ret/${n}/q1`, 'second1', 1, true],
        [`ret/${n}/q2`, 'second2', 2, true],
      ]);
    });

    it(`live messages carry RETAIN 0 to existing subscribers; a non-retained publish leaves the retained one (v${protocolVersion}) [MQTT-3.3.1-9]`, async () => {
      const n = nonce();
      const sub = await connectSync(b.port, { protocolVersion });
      await sub.subscribeAsync(`live/${n}`, { qos: 1 });
      const pub = await connect(b.port, { protocolVersion });
      await pub.publishAsync(`live/${n}`, 'kept', { qos: 1, retain: true });
      await pub.publishAsync(`live/${n}`, 'plain', { qos: 1, retain: false });
      await synced(pub, sub);
      expect(got(sub).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([
        ['kept', false],
        ['plain', false],
      ]);
      const late = await connectSync(b.port, { protocolVersion });
      await late.subscribeAsync(`live/${n}`, { qos: 1 });
      await synced(pub, late);
      expect(got(late).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([['kept', true]]);
    });
  }

  it('an empty retained payload clears the topic; current subscribers still get the empty message [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    await pub.publishAsync(`clr/${n}`, 'old', { qos: 1, retain: true });
    const current = await connectSync(b.port);
    await current.subscribeAsync(`clr/${n}`, { qos: 1 });
    await pub.publishAsync(`clr/${n}`, '', { qos: 1, retain: true });
    await synced(pub, current);
    expect(got(current).map((m) => [m.payload.toString(), m.packet.retain])).toEqual([
      ['old', true],
      ['', false],
    ]);
    const later = await connectSync(b.port);
    await later.subscribeAsync(`clr/${n}`, { qos: 1 });
    await later.subscribeAsync(`clr/#`, { qos: 1 });
    await synced(pub, later);
    expect(pairs(later).filter(([t]) => t.includes(n))).toEqual([]);
    // Clearing a topic that holds nothing is harmless, and the topic can be set again.
    await pub.publishAsync(`clr/${n}`, '', { qos: 0, retain: true });
    await pub.publishAsync(`clr/${n}`, 'new', { qos: 1, retain: true });
    const again = await connectSync(b.port);
    await again.subscribeAsync(`clr/${n}`, { qos: 1 });
    await synced(pub, again);
    expect(pairs(again)).toEqual([[`clr/${n}`, 'new']]);
  });

  it('retained messages are delivered at min(stored QoS, granted QoS) [MQTT-3.8.4-8]', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    await pub.publishAsync(`rq/${n}/two`, 'x', { qos: 2, retain: true });
    await pub.publishAsync(`rq/${n}/one`, 'y', { qos: 1, retain: true });
    const sub0 = await connectSync(b.port);
    await sub0.subscribeAsync(`rq/${n}/+`, { qos: 0 });
    const sub1 = await connectSync(b.port);
    await sub1.subscribeAsync(`rq/${n}/+`, { qos: 1 });
    const sub2 = await connectSync(b.port);
    await sub2.subscribeAsync(`rq/${n}/+`, { qos: 2 });
    await synced(pub, sub0, sub1, sub2);
    const qos = (c: typeof sub0): Array<[string, number]> => got(c).map((m) => [m.topic.split('/')[2]!, m.packet.qos] as [string, number]).sort();
    expect(qos(sub0)).toEqual([
      ['one', 0],
      ['two', 0],
    ]);
    expect(qos(sub1)).toEqual([
      ['one', 1],
      ['two', 1],
    ]);
    expect(qos(sub2)).toEqual([
      ['one', 1],
      ['two', 2],
    ]);
  });

  it('an expired retained message is never delivered; an unexpired one carries the time left [MQTT-3.3.2-5] [MQTT-3.3.2-6]', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    await pub.publishAsync(`rexp/${n}/short`, 'short', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync(`rexp/${n}/long`, 'long', { qos: 1, retain: true, properties: { messageExpiryInterval: 60 } });
    const early = await connectSync(b.port);
    await early.subscribeAsync(`rexp/${n}/+`, { qos: 1 });
    await synced(pub, early);
    expect(got(early).map((m) => m.payload.toString()).sort()).toEqual(['long', 'short']);
    for (const m of got(early)) {
      const left = m.packet.properties?.messageExpiryInterval ?? -1;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(m.payload.toString() === 'short' ? 1 : 60);
    }
    await sleep(1300);
    const late = await connectSync(b.port);
    await late.subscribeAsync(`rexp/${n}/+`, { qos: 1 });
    await late.subscribeAsync(`rexp/${n}/short`, { qos: 1 });
    await synced(pub, late);
    expect(got(late).map((m) => m.payload.toString())).toEqual(['long']);
    const left = got(late)[0]!.packet.properties?.messageExpiryInterval ?? -1;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(60);
  });

  it('a wildcard subscription gets every matching retained message, including "a/#" -> "a" [MQTT-3.8.4-4]', async () => {
    const n = nonce();
    const P = `rw/${n}`;
    const pub = await connect(b.port);
    for (const t of [P, `${P}/a`, `${P}/b/c`, `${P}/b/d`, `${P}//e`, `rw/${n}x/a`]) await pub.publishAsync(t, t, { qos: 1, retain: true });
    const expectations: Array<[string, string[]]> = [
      [`${P}/#`, [P, `${P}//e`, `${P}/a`, `${P}/b/c`, `${P}/b/d`]],
      [`${P}/+`, [`${P}/a`]],
      [`${P}/+/c`, [`${P}/b/c`]],
      [`${P}/+/+`, [`${P}//e`, `${P}/b/c`, `${P}/b/d`]],
      [`rw/+/a`, [`${P}/a`, `rw/${n}x/a`]],
    ];
    for (const [filter, topics] of expectations) {
      const sub = await connectSync(b.port);
      await sub.subscribeAsync(filter, { qos: 1 });
      await synced(pub, sub);
      const mine = got(sub)
        .map((m) => m.topic)
        .filter((t) => t.includes(n))
        .sort();
      expect({ filter, mine }).toEqual({ filter, mine: topics });
      expect(got(sub).every((m) => m.packet.retain)).toBe(true);
    }
  });

  it('retained messages on $ topics are not sent for "#" or "+/..." filters [MQTT-4.7.2-1]', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    await pub.publishAsync(`$r${n}/x`, 'dollar', { qos: 1, retain: true });
    await pub.publishAsync(`$SYS/r${n}/x`, 'sys', { qos: 1, retain: true });
    await pub.publishAsync(`r${n}/x`, 'plain', { qos: 1, retain: true });
    const cases: Array<[string, string[]]> = [
      ['#', ['plain']],
      ['+/x', ['plain']],
      ['+/+', ['plain']],
      [`+/r${n}/x`, []],
      [`$r${n}/#`, ['dollar']],
      [`$r${n}/+`, ['dollar']],
      ['$SYS/#', ['sys']],
    ];
    for (const [filter, payloads] of cases) {
      const sub = await connectSync(b.port);
      await sub.subscribeAsync(filter, { qos: 1 });
      await synced(pub, sub);
      const mine = got(sub)
        .filter((m) => m.topic.includes(`r${n}`))
        .map((m) => m.payload.toString());
      expect({ filter, mine }).toEqual({ filter, mine: payloads });
    }
  });

  it('a retained message keeps its v5 properties, user properties in order [MQTT-3.3.2-17] [MQTT-3.3.2-18]', async () => {
    const n = nonce();
    const pub = await connect(b.port);
    const properties = {
      userProperties: { alpha: '1', beta: ['2', '3'], gamma: 'ü' },
      contentType: 'text/plain',
      responseTopic: `reply/${n}`,
      correlationData: Buffer.from([0, 1, 2, 255]),
      payloadFormatIndicator: true,
    };
    await pub.publishAsync(`rprops/${n}`, 'hello', { qos: 1, retain: true, properties });
    const sub = await connectSync(b.port);
    await sub.subscribeAsync(`rprops/${n}`, { qos: 1 });
    await synced(pub, sub);
    const [m] = got(sub);
    expect(m?.payload.toString()).toBe('hello');
    const p = m!.packet.properties!;
    expect(p.userProperties).toEqual({ alpha: '1', beta: ['2', '3'], gamma: 'ü' });
    expect(Object.keys(p.userProperties!)).toEqual(['alpha', 'beta', 'gamma']);
    expect([p.contentType, p.responseTopic, p.payloadFormatIndicator]).toEqual(['text/plain', `reply/${n}`, true]);
    expect(Buffer.from(p.correlationData!)).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('a retained message from a v3.1.1 publisher reaches a v5 subscriber and vice versa', async () => {
    const n = nonce();
    const pub4 = await connect(b.port, { protocolVersion: 4 });
    const pub5 = await connect(b.port, { protocolVersion: 5 });
    await pub4.publishAsync(`rx/${n}/from4`, 'four', { qos: 1, retain: true });
    await pub5.publishAsync(`rx/${n}/from5`, 'five', { qos: 1, retain: true, properties: { userProperties: { k: 'v' } } });
    for (const protocolVersion of [4, 5] as const) {
      const sub = await connectSync(b.port, { protocolVersion });
      await sub.subscribeAsync(`rx/${n}/+`, { qos: 1 });
      await synced(pub5, sub);
      expect(pairs(sub).sort()).toEqual([
        [`rx/${n}/from4`, 'four'],
        [`rx/${n}/from5`, 'five'],
      ]);
    }
  });
});
