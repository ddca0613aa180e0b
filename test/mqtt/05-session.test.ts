/**
 * Session lifecycle: takeover of a client id, persistent sessions (3.1.1 Clean Session 0, v5
 * Session Expiry Interval) and what they keep while offline, Clean Start, expiry (set at CONNECT or
 * at DISCONNECT), the offline queue limit and its drop policies, resending unacknowledged QoS 1/2
 * after a reconnect, and the in-flight window (client Receive Maximum, mqtt.maxInflight).
 */
import { describe, expect, it } from 'vitest';
import type { IClientOptions } from 'mqtt';
import type { IConnackPacket, IConnectPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { cmds, rawSubscribe, runClient, tapBytes } from './lifecycle-helpers.js';

const id = (tag: string): string => `c05-${tag}-${Math.random().toString(16).slice(2, 8)}`;

/** Options for an MQTT.js client that keeps its session: 3.1.1 Clean Session 0, v5 expiry 60 s. */
function persistent(clientId: string, version: 4 | 5, expiry = 60): IClientOptions {
  return version === 5
    ? { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: expiry } }
    : { clientId, protocolVersion: 4, clean: false };
}

/** Raw CONNECT that keeps the session. */
async function rawPersistent(port: number, version: 4 | 5, clientId: string, extra: Pick<IConnectPacket, 'properties'> = {}): Promise<{ raw: RawClient; ack: IConnackPacket }> {
  const raw = await RawClient.connect(port, version);
  const ack = await raw.handshake({
    clientId,
    clean: false,
    ...(version === 5 ? { properties: { sessionExpiryInterval: 60, ...extra.properties } } : {}),
  });
  return { raw, ack };
}

const texts = (c: { received: Array<{ payload: Buffer }> }): string[] => c.received.map((r) => r.payload.toString());

describe('MQTT sessions', async () => {
  const b = await startBroker();

  describe('takeover', () => {
    for (const oldV of [4, 5] as const) {
      for (const newV of [4, 5] as const) {
        const what = oldV === 5 ? 'gets DISCONNECT 0x8E Session taken over and is closed' : 'is closed without a DISCONNECT';
        it(`a v${newV} connection with the id of a v${oldV} one: the old one ${what} [MQTT-3.1.4-3]`, async () => {
          const clientId = id(`to${oldV}${newV}`);
          const old = await RawClient.connect(b.port, oldV);
          await old.handshake({ clientId });
          const tap = tapBytes(old);
          const fresh = await RawClient.connect(b.port, newV);
          const ack = await fresh.handshake({ clientId });
          expect(newV === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
          await old.waitClosed();
          if (oldV === 5) {
            expect(cmds(old.packets)).toEqual(['disconnect']);
            expect((old.packets[0] as IDisconnectPacket).reasonCode).toBe(0x8e);
          } else {
            expect(tap.bytes().length).toBe(0);
          }
          // The new connection is the live one.
          fresh.send({ cmd: 'pingreq' });
          await fresh.next('pingresp');
          fresh.end();
        });
      }
    }

    for (const version of [4, 5] as const) {
      it(`v${version}: taking over without a clean start resumes the session and its subscriptions`, async () => {
        const clientId = id(`tores${version}`);
        const topic = `c05/takeover/${clientId}`;
        const pub = await connect(b.port);
        const { raw: old } = await rawPersistent(b.port, version, clientId);
        await rawSubscribe(old, topic, 1);
        const { raw: fresh, ack } = await rawPersistent(b.port, version, clientId);
        expect(ack.sessionPresent).toBe(true);
        await old.waitClosed();
        await pub.publishAsync(topic, 'after takeover', { qos: 1 });
        const p = await fresh.next('publish');
        expect(p.payload.toString()).toBe('after takeover');
        fresh.send({ cmd: 'puback', messageId: p.messageId! });
        fresh.end();
      });
    }

    it('v5: taking over with Clean Start discards the session and its subscriptions', async () => {
      const clientId = id('toclean');
      const topic = `c05/takeover-clean/${clientId}`;
      const pub = await connect(b.port);
      const { raw: old } = await rawPersistent(b.port, 5, clientId);
      await rawSubscribe(old, topic, 1);
      const fresh = await RawClient.connect(b.port, 5);
      const ack = await fresh.handshake({ clientId, clean: true, properties: { sessionExpiryInterval: 60 } });
      expect(ack.sessionPresent).toBe(false);
      await old.waitClosed();
      await rawSubscribe(fresh, `${topic}/marker`, 1);
      await pub.publishAsync(topic, 'old subscription', { qos: 1 });
      await pub.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
      const p = await fresh.next('publish');
      expect(p.topic).toBe(`${topic}/marker`);
      fresh.end();
    });
  });

  describe('persistent sessions', () => {
    for (const version of [4, 5] as const) {
      const how = version === 4 ? 'Clean Session 0' : 'Session Expiry Interval 60';
      it(`v${version} (${how}): keeps subscriptions and QoS 1/2 messages published while offline, not QoS 0 [MQTT-3.1.2-4] [MQTT-3.1.2-5]`, async () => {
        const clientId = id(`keep${version}`);
        const topic = `c05/keep/${clientId}`;
        const pub = await connect(b.port);
        const first = await connect(b.port, persistent(clientId, version));
        await first.subscribeAsync(`${topic}/+`, { qos: 2 });
        await first.endAsync();
        for (const qos of [0, 1, 2] as const) await pub.publishAsync(`${topic}/q${qos}`, `offline q${qos}`, { qos });
        const back = await connect(b.port, persistent(clientId, version));
        await until(() => back.received.length === 2, 3000, 'queued messages');
        // No new SUBSCRIBE: the session's subscription still routes live messages.
        await pub.publishAsync(`${topic}/live`, 'live q0', { qos: 0 });
        await until(() => back.received.length === 3, 3000, 'live message');
        expect(back.received.map((r) => [r.topic, r.payload.toString(), r.packet.qos])).toEqual([
          [`${topic}/q1`, 'offline q1', 1],
          [`${topic}/q2`, 'offline q2', 2],
          [`${topic}/live`, 'live q0', 0],
        ]);
        await back.endAsync();
      });
    }

    it('reports Session Present 1 on resuming a persistent session (MQTT.js)', async () => {
      const clientId = id('sp');
      const first = await connect(b.port, persistent(clientId, 5));
      await first.endAsync();
      const raw = await RawClient.connect(b.port, 5);
      const ack = await raw.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(ack.sessionPresent).toBe(true);
      raw.end();
    });

    describe('with mqtt.queueQos0 true', async () => {
      const q0 = await startBroker({ config: { mqtt: { queueQos0: true } } });
      for (const version of [4, 5] as const) {
        it(`v${version}: QoS 0 messages published while offline are queued too`, async () => {
          const clientId = id(`q0${version}`);
          const topic = `c05/q0/${clientId}`;
          const pub = await connect(q0.port);
          const first = await connect(q0.port, persistent(clientId, version));
          await first.subscribeAsync(topic, { qos: 1 });
          await first.endAsync();
          for (const n of [1, 2]) await pub.publishAsync(topic, `q0-${n}`, { qos: 0 });
          await pub.publishAsync(topic, 'q1', { qos: 1 });
          const back = await connect(q0.port, persistent(clientId, version));
          await until(() => back.received.length === 3, 3000, 'queued messages');
          expect(back.received.map((r) => [r.payload.toString(), r.packet.qos])).toEqual([
            ['q0-1', 0],
            ['q0-2', 0],
            ['q1', 1],
          ]);
        });
      }
    });

    for (const version of [4, 5] as const) {
      it(`v${version}: a clean start discards the stored session: no queued messages, no subscriptions [MQTT-3.1.2-4]`, async () => {
        const clientId = id(`clean${version}`);
        const topic = `c05/clean/${clientId}`;
        const pub = await connect(b.port);
        const first = await connect(b.port, persistent(clientId, version));
        await first.subscribeAsync(topic, { qos: 1 });
        await first.endAsync();
        await pub.publishAsync(topic, 'queued for the old session', { qos: 1 });
        const raw = await RawClient.connect(b.port, version);
        const ack = await raw.handshake({ clientId, clean: true, ...(version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) });
        expect(ack.sessionPresent).toBe(false);
        await rawSubscribe(raw, `${topic}/marker`, 1);
        await pub.publishAsync(topic, 'live on the old subscription', { qos: 1 });
        await pub.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
        const p = await raw.next('publish');
        expect([p.topic, p.payload.toString()]).toEqual([`${topic}/marker`, 'marker']);
        raw.end();
      });
    }
  });

  describe('session expiry', () => {
    // The two timed tests run side by side (it.concurrent) to share one wait.
    it.concurrent('v5: a session ends after its expiry; DISCONNECT may change the expiry (raise from > 0, lower, set 0) [MQTT-3.1.2-23] (5.0 §3.14.2.2.2)', async ({ expect }) => {
      // Scenarios run side by side to share one wait; each reports its own Session Present.
      const scenario = async (tag: string, connectExpiry: number, disconnectExpiry: number | undefined): Promise<boolean> => {
        const clientId = id(`exp-${tag}`);
        const raw = await RawClient.connect(b.port, 5);
        await raw.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: connectExpiry } });
        await rawSubscribe(raw, `c05/expiry/${clientId}`, 1);
        raw.send({ cmd: 'disconnect', reasonCode: 0, ...(disconnectExpiry !== undefined ? { properties: { sessionExpiryInterval: disconnectExpiry } } : {}) });
        await raw.waitClosed();
        await sleep(2500);
        const again = await RawClient.connect(b.port, 5);
        const ack = await again.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
        again.end();
        return ack.sessionPresent;
      };
      const [expired, raised, lowered, zeroed, kept] = await Promise.all([
        scenario('1s', 1, undefined),
        scenario('raised', 1, 60),
        scenario('lowered', 60, 1),
        scenario('zeroed', 60, 0),
        scenario('kept', 60, undefined),
      ]);
      expect({ expired, raised, lowered, zeroed, kept }).toEqual({ expired: false, raised: true, lowered: false, zeroed: false, kept: true });
    });

    it.concurrent('v5: an expired session loses its subscriptions and queued messages', async ({ expect }) => {
      const clientId = id('exp-content');
      const topic = `c05/expired/${clientId}`;
      const pub = await connect(b.port);
      const first = await connect(b.port, persistent(clientId, 5, 1));
      await first.subscribeAsync(topic, { qos: 1 });
      await first.endAsync();
      await pub.publishAsync(topic, 'queued before expiry', { qos: 1 });
      await sleep(2500);
      const raw = await RawClient.connect(b.port, 5);
      const ack = await raw.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(ack.sessionPresent).toBe(false);
      await rawSubscribe(raw, `${topic}/marker`, 1);
      await pub.publishAsync(topic, 'after expiry', { qos: 1 });
      await pub.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
      expect((await raw.next('publish')).topic).toBe(`${topic}/marker`);
      raw.end();
    });

    it('v5: DISCONNECT that sets an expiry after CONNECT set 0 is a Protocol Error (DISCONNECT 0x82); the session still ends (5.0 §3.14.2.2.2)', async () => {
      const clientId = id('raise0');
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 0 } });
      raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
      const d = (await raw.next('disconnect')) as IDisconnectPacket;
      expect(d.reasonCode).toBe(0x82);
      await raw.waitClosed();
      const again = await RawClient.connect(b.port, 5);
      const ack = await again.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(ack.sessionPresent).toBe(false);
      again.end();
    });

    it('v5: a CONNECT without a Session Expiry Interval ends the session with the connection', async () => {
      const clientId = id('noexp');
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake({ clientId, clean: false });
      raw.end();
      await raw.waitClosed();
      await sleep(50);
      const again = await RawClient.connect(b.port, 5);
      expect((await again.handshake({ clientId, clean: false })).sessionPresent).toBe(false);
      again.end();
    });
  });

  describe('offline queue limit (mqtt.maxQueuedMessages 3)', async () => {
    const oldest = await startBroker({ config: { mqtt: { maxQueuedMessages: 3, queueDropPolicy: 'oldest' } } });
    const newest = await startBroker({ config: { mqtt: { maxQueuedMessages: 3, queueDropPolicy: 'newest' } } });

    for (const [policy, broker, survivors] of [
      ['oldest', oldest, ['m3', 'm4', 'm5']],
      ['newest', newest, ['m1', 'm2', 'm3']],
    ] as const) {
      it(`queueDropPolicy ${policy}: of 5 messages published offline, ${survivors.join(', ')} are delivered`, async () => {
        const clientId = id(`limit-${policy}`);
        const topic = `c05/limit/${clientId}`;
        const pub = await connect(broker.port);
        const first = await connect(broker.port, persistent(clientId, 5));
        await first.subscribeAsync(topic, { qos: 1 });
        await first.endAsync();
        for (let n = 1; n <= 5; n++) await pub.publishAsync(topic, `m${n}`, { qos: 1 });
        const back = await connect(broker.port, persistent(clientId, 5));
        await until(() => back.received.length >= 3, 3000, 'queued messages');
        await pub.publishAsync(topic, 'live', { qos: 1 });
        await until(() => back.received.at(-1)?.payload.toString() === 'live', 3000, 'live message');
        expect(texts(back)).toEqual([...survivors, 'live']);
      });
    }
  });

  describe('resending after a reconnect', () => {
    for (const version of [4, 5] as const) {
      for (const how of ['socket lost', 'taken over'] as const) {
        it(`v${version}, ${how}: an unacknowledged QoS 1 PUBLISH is resent with DUP and the same packet id [MQTT-4.4.0-1] [MQTT-3.3.1-1]`, async () => {
          const clientId = id(`dup${version}`);
          const topic = `c05/dup/${clientId}`;
          const pub = await connect(b.port);
          const { raw: a } = await rawPersistent(b.port, version, clientId);
          await rawSubscribe(a, topic, 1);
          await pub.publishAsync(topic, 'unacked', { qos: 1 });
          const first = await a.next('publish');
          expect(first.dup).toBe(false);
          if (how === 'socket lost') {
            a.end();
            await a.waitClosed();
          }
          const { raw: c, ack } = await rawPersistent(b.port, version, clientId);
          expect(ack.sessionPresent).toBe(true);
          const again = await c.next('publish');
          expect([again.dup, again.qos, again.messageId, again.topic, again.payload.toString()]).toEqual([true, 1, first.messageId, topic, 'unacked']);
          c.send({ cmd: 'puback', messageId: again.messageId! });
          c.send({ cmd: 'disconnect' });
          await c.waitClosed();
          // Acknowledged: the next connection gets only what is published later.
          const { raw: d } = await rawPersistent(b.port, version, clientId);
          await pub.publishAsync(topic, 'next', { qos: 1 });
          const next = await d.next('publish');
          expect([next.dup, next.payload.toString()]).toEqual([false, 'next']);
          d.end();
        });
      }
    }

    for (const version of [4, 5] as const) {
      it(`v${version}: a QoS 2 PUBLISH without PUBREC is resent with DUP; after PUBREC, PUBREL is resent instead [MQTT-4.4.0-1]`, async () => {
        const clientId = id(`q2${version}`);
        const topic = `c05/q2/${clientId}`;
        const pub = await connect(b.port);
        const { raw: a } = await rawPersistent(b.port, version, clientId);
        await rawSubscribe(a, topic, 2);
        await pub.publishAsync(topic, 'exactly once', { qos: 2 });
        const p1 = await a.next('publish');
        expect(p1.qos).toBe(2);
        a.end();
        await a.waitClosed();

        const { raw: c } = await rawPersistent(b.port, version, clientId);
        const p2 = await c.next('publish');
        expect([p2.dup, p2.qos, p2.messageId, p2.payload.toString()]).toEqual([true, 2, p1.messageId, 'exactly once']);
        c.send({ cmd: 'pubrec', messageId: p2.messageId! });
        expect((await c.next('pubrel')).messageId).toBe(p1.messageId);
        c.end();
        await c.waitClosed();

        const { raw: d } = await rawPersistent(b.port, version, clientId);
        const rel = await d.next('pubrel');
        expect(rel.messageId).toBe(p1.messageId);
        expect(d.packets.filter((p) => p.cmd === 'publish')).toEqual([]);
        d.send({ cmd: 'pubcomp', messageId: rel.messageId! });
        d.send({ cmd: 'disconnect' });
        await d.waitClosed();

        // Complete: nothing is resent any more.
        const { raw: e } = await rawPersistent(b.port, version, clientId);
        await pub.publishAsync(topic, 'later', { qos: 2 });
        const p3 = (await e.next('publish')) as IPublishPacket;
        expect([p3.dup, p3.payload.toString()]).toEqual([false, 'later']);
        expect(cmds(e.packets)).toEqual([]);
        e.end();
      });
    }
  });

  describe('QoS 2 from the client across a reconnect', () => {
    for (const version of [4, 5] as const) {
      it(`v${version}: a PUBLISH resent after a reconnect is not delivered twice; PUBREL on the new connection completes it [MQTT-4.3.3-2] [MQTT-4.4.0-1]`, async () => {
        const clientId = id(`in2-${version}`);
        const topic = `c05/in2/${clientId}`;
        const watcher = await connect(b.port);
        await watcher.subscribeAsync(topic, { qos: 2 });
        const { raw: a } = await rawPersistent(b.port, version, clientId);
        a.send({ cmd: 'publish', topic, payload: Buffer.from('once'), qos: 2, messageId: 7, dup: false, retain: false });
        expect((await a.next('pubrec')).messageId).toBe(7);
        a.end();
        await a.waitClosed();
        const { raw: c, ack } = await rawPersistent(b.port, version, clientId);
        expect(ack.sessionPresent).toBe(true);
        c.send({ cmd: 'publish', topic, payload: Buffer.from('once'), qos: 2, messageId: 7, dup: true, retain: false });
        expect((await c.next('pubrec')).messageId).toBe(7);
        c.send({ cmd: 'pubrel', messageId: 7 });
        expect((await c.next('pubcomp')).messageId).toBe(7);
        // A new message with the released id is a new message.
        c.send({ cmd: 'publish', topic, payload: Buffer.from('again'), qos: 2, messageId: 7, dup: false, retain: false });
        await c.next('pubrec');
        c.send({ cmd: 'pubrel', messageId: 7 });
        await c.next('pubcomp');
        await until(() => watcher.received.length >= 2, 3000, 'messages');
        await sleep(100);
        expect(texts(watcher)).toEqual(['once', 'again']);
        c.end();
      });
    }
  });

  describe('in-flight window', () => {
    it('v5: the client Receive Maximum caps unacknowledged QoS 1 deliveries; QoS 0 still flows [MQTT-3.3.4-9]', async () => {
      const clientId = id('rm');
      const topic = `c05/rm/${clientId}`;
      const pub = await connect(b.port);
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake({ clientId, properties: { receiveMaximum: 2 } });
      await rawSubscribe(raw, topic, 1);
      for (const n of [1, 2, 3]) await pub.publishAsync(topic, `m${n}`, { qos: 1 });
      const m1 = await raw.next('publish');
      const m2 = await raw.next('publish');
      expect([m1.payload.toString(), m2.payload.toString()]).toEqual(['m1', 'm2']);
      await pub.publishAsync(topic, 'q0', { qos: 0 });
      const q0 = await raw.next('publish');
      expect([q0.qos, q0.payload.toString()]).toEqual([0, 'q0']);
      expect(raw.packets).toEqual([]);
      expect(await raw.settle(300)).toEqual([]); // m3 is held
      raw.send({ cmd: 'puback', messageId: m1.messageId! });
      const m3 = await raw.next('publish');
      expect([m3.qos, m3.dup, m3.payload.toString()]).toEqual([1, false, 'm3']);
      raw.end();
    });

    it('v5: a smaller Receive Maximum on reconnect also caps the resend of unacknowledged messages [MQTT-3.3.4-9]', async () => {
      const clientId = id('rm-re');
      const topic = `c05/rm-re/${clientId}`;
      const pub = await connect(b.port);
      const { raw: a } = await rawPersistent(b.port, 5, clientId, { properties: { receiveMaximum: 3 } });
      await rawSubscribe(a, topic, 1);
      for (const n of [1, 2, 3]) await pub.publishAsync(topic, `m${n}`, { qos: 1 });
      for (let n = 0; n < 3; n++) await a.next('publish');
      a.end();
      await a.waitClosed();
      const { raw: c } = await rawPersistent(b.port, 5, clientId, { properties: { receiveMaximum: 1 } });
      const first = await c.next('publish');
      expect([first.dup, first.payload.toString()]).toEqual([true, 'm1']);
      expect(await c.settle(300)).toEqual([]);
      const got = [first];
      for (let n = 0; n < 2; n++) {
        c.send({ cmd: 'puback', messageId: got.at(-1)!.messageId! });
        got.push(await c.next('publish'));
        expect(c.packets).toEqual([]);
      }
      expect(got.map((p) => p.payload.toString())).toEqual(['m1', 'm2', 'm3']);
      c.end();
    });

    describe('with mqtt.maxInflight 2', async () => {
      const w = await startBroker({ config: { mqtt: { maxInflight: 2 } } });
      for (const version of [4, 5] as const) {
        it(`v${version}: no more than 2 QoS 1 deliveries are unacknowledged, whatever the client allows`, async () => {
          const clientId = id(`mi${version}`);
          const topic = `c05/mi/${clientId}`;
          const pub = await connect(w.port);
          const raw = await RawClient.connect(w.port, version);
          await raw.handshake({ clientId, ...(version === 5 ? { properties: { receiveMaximum: 100 } } : {}) });
          await rawSubscribe(raw, topic, 1);
          for (const n of [1, 2, 3, 4]) await pub.publishAsync(topic, `m${n}`, { qos: 1 });
          const got = [await raw.next('publish'), await raw.next('publish')];
          expect(await raw.settle(300)).toEqual([]);
          raw.send({ cmd: 'puback', messageId: got[1]!.messageId! });
          got.push(await raw.next('publish'));
          expect(await raw.settle(200)).toEqual([]);
          raw.send({ cmd: 'puback', messageId: got[0]!.messageId! });
          got.push(await raw.next('publish'));
          expect(got.map((p) => p.payload.toString())).toEqual(['m1', 'm2', 'm3', 'm4']);
          raw.end();
        });
      }
    });
  });

  describe('mosquitto clients', () => {
    for (const v of ['mqttv311', 'mqttv5'] as const) {
      it(`mosquitto_sub -c (${v}) resumes its session and gets the QoS 1 message published while it was away`, async () => {
        const clientId = id(`mosq-${v}`);
        const topic = `c05/mosq/${clientId}`;
        const base = ['-h', '127.0.0.1', '-p', String(b.port), '-V', v, '-c', '-i', clientId, '-q', '1', '-t', topic];
        const first = await runClient('mosquitto_sub', [...base, '-E']);
        expect(first.code).toBe(0);
        const pub = await connect(b.port);
        await pub.publishAsync(topic, `while away ${v}`, { qos: 1 });
        const second = await runClient('mosquitto_sub', [...base, '-C', '1', '-W', '5']);
        expect(second.code).toBe(0);
        expect(second.stdout).toBe(`while away ${v}\n`);
      });
    }
  });
});
