/**
 * CONNECT and CONNACK for MQTT 3.1 (MQIsdp, level 3), 3.1.1 and 5.0: protocol name and level,
 * connect flags, client identifiers, session present, packet order, connect timeout, enhanced
 * authentication refusal, and the limits a v5 CONNACK announces.
 */
import { describe, expect, it } from 'vitest';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { cmds, connectBytes, runClient, str, tapBytes } from './lifecycle-helpers.js';

const id = (tag: string): string => `c01-${tag}-${Math.random().toString(16).slice(2, 8)}`;

/** Sends `bytes` as the first thing on a new connection; resolves with what came back once it closed. */
async function sendConnect(port: number, bytes: Buffer, version: 3 | 4 | 5 = 4): Promise<{ raw: RawClient; bytes: Buffer }> {
  const raw = await RawClient.connect(port, version);
  const tap = tapBytes(raw);
  raw.send(bytes);
  await raw.waitClosed();
  return { raw, bytes: tap.bytes() };
}

describe('MQTT CONNECT', async () => {
  const b = await startBroker();

  describe('protocol name and level', () => {
    it('accepts MQTT 3.1 (MQIsdp, level 3) and answers a ping', async () => {
      const raw = await RawClient.connect(b.port, 3);
      const ack = await raw.handshake({ protocolId: 'MQIsdp', protocolVersion: 3, clientId: id('v31') });
      expect(ack.returnCode).toBe(0);
      expect(ack.sessionPresent).toBe(false);
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
      raw.end();
    });

    it('accepts MQTT 3.1.1 (level 4) and 5.0 (level 5)', async () => {
      const v4 = await RawClient.connect(b.port, 4);
      expect((await v4.handshake({ clientId: id('v4') })).returnCode).toBe(0);
      const v5 = await RawClient.connect(b.port, 5);
      expect((await v5.handshake({ clientId: id('v5') })).reasonCode).toBe(0);
      v4.end();
      v5.end();
    });

    for (const [name, level] of [
      ['MQTT', 3],
      ['MQTT', 6],
      ['MQTT', 0],
      ['MQTT', 255],
      ['MQIsdp', 4],
      ['MQIsdp', 5],
    ] as const) {
      it(`answers ${name} level ${level} with CONNACK return code 1 and closes [MQTT-3.1.2-2]`, async () => {
        const r = await sendConnect(b.port, connectBytes({ name, level, payload: [str(id('lvl'))] }));
        // The level is unknown, so the broker cannot know the client's CONNACK format: it answers in
        // the 3.1.1 form (as Mosquitto), which has the same bytes a v5 client reads as reason code 1.
        expect(r.bytes).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x01]));
      });
    }

    for (const [name, level] of [
      ['MQTX', 4],
      ['mqtt', 4],
      ['MQisdp', 3],
      ['', 4],
      ['MQTT-SN', 5],
    ] as const) {
      it(`closes without a CONNACK on protocol name ${JSON.stringify(name)} (level ${level}) [MQTT-3.1.2-1]`, async () => {
        const r = await sendConnect(b.port, connectBytes({ name, level, payload: [str(id('name'))] }));
        expect(r.bytes.length).toBe(0);
      });
    }
  });

  describe('connect flags', () => {
    for (const level of [3, 4] as const) {
      const name = level === 3 ? 'MQIsdp' : 'MQTT';
      it(`v${level}: closes without a CONNACK when the reserved flag is set [MQTT-3.1.2-3]`, async () => {
        const r = await sendConnect(b.port, connectBytes({ name, level, flags: 0x03, payload: [str(id('rsv'))] }), level);
        expect(r.bytes.length).toBe(0);
      });
    }

    it('v5: answers the reserved flag with CONNACK 0x81 Malformed Packet and closes [MQTT-3.1.2-3]', async () => {
      const r = await sendConnect(b.port, connectBytes({ level: 5, flags: 0x03, payload: [str(id('rsv5'))] }), 5);
      expect(cmds(r.raw.packets)).toEqual(['connack']);
      expect((r.raw.packets[0] as IConnackPacket).reasonCode).toBe(0x81);
    });

    // flags, why
    const willCases: Array<[number, string]> = [
      [0x02 | 0x08, 'Will QoS 1 without the Will Flag [MQTT-3.1.2-13]'],
      [0x02 | 0x10, 'Will QoS 2 without the Will Flag [MQTT-3.1.2-13]'],
      [0x02 | 0x20, 'Will Retain without the Will Flag [MQTT-3.1.2-15]'],
      [0x02 | 0x04 | 0x18, 'Will QoS 3 [MQTT-3.1.2-14]'],
    ];
    for (const [flags, why] of willCases) {
      const hasWill = (flags & 0x04) !== 0;
      it(`v4: closes without a CONNACK on ${why}`, async () => {
        const payload = [str(id('will4')), ...(hasWill ? [str('will/t'), str('gone')] : [])];
        const r = await sendConnect(b.port, connectBytes({ level: 4, flags, payload }));
        expect(r.bytes.length).toBe(0);
      });
      it(`v5: answers ${why} with CONNACK 0x81 and closes`, async () => {
        const payload = [str(id('will5')), ...(hasWill ? [Buffer.from([0]), str('will/t'), str('gone')] : [])];
        const r = await sendConnect(b.port, connectBytes({ level: 5, flags, payload }), 5);
        expect(cmds(r.raw.packets)).toEqual(['connack']);
        expect((r.raw.packets[0] as IConnackPacket).reasonCode).toBe(0x81);
      });
    }

    it('refuses a will topic with a wildcard (v4: closed; v5: CONNACK 0x90 Topic Name invalid)', async () => {
      const r4 = await sendConnect(b.port, connectBytes({ level: 4, flags: 0x06, payload: [str(id('wt4')), str('will/+'), str('x')] }));
      expect(r4.bytes.length).toBe(0);
      const r5 = await sendConnect(b.port, connectBytes({ level: 5, flags: 0x06, payload: [str(id('wt5')), Buffer.from([0]), str('will/#'), str('x')] }), 5);
      expect(cmds(r5.raw.packets)).toEqual(['connack']);
      expect((r5.raw.packets[0] as IConnackPacket).reasonCode).toBe(0x90);
    });

    for (const level of [3, 4] as const) {
      it(`v${level}: closes without a CONNACK on a password without a user name [MQTT-3.1.2-22]`, async () => {
        const name = level === 3 ? 'MQIsdp' : 'MQTT';
        const r = await sendConnect(b.port, connectBytes({ name, level, flags: 0x42, payload: [str(id('pw')), str('secret')] }), level);
        expect(r.bytes.length).toBe(0);
      });
    }

    it('v5: accepts a password without a user name (allowed since 5.0)', async () => {
      const raw = await RawClient.connect(b.port, 5);
      raw.send(connectBytes({ level: 5, flags: 0x42, payload: [str(id('pw5')), str('secret')] }));
      expect((await raw.next('connack')).reasonCode).toBe(0);
      raw.end();
    });

    it('closes when the User Name Flag is set but the payload has no user name [MQTT-3.1.2-19]', async () => {
      const r = await sendConnect(b.port, connectBytes({ level: 4, flags: 0x82, payload: [str(id('nouser'))] }));
      expect(r.bytes.length).toBe(0);
    });
  });

  describe('client identifier', () => {
    it('v5: assigns a unique identifier to an empty one and returns it in CONNACK [MQTT-3.2.2-16]', async () => {
      const a = await RawClient.connect(b.port, 5);
      const ackA = await a.handshake({ clientId: '' });
      const b2 = await RawClient.connect(b.port, 5);
      // Clean Start 0 with Session Expiry Interval 10 (mqtt-packet refuses to encode an empty id without Clean Start).
      b2.send(connectBytes({ level: 5, flags: 0x00, props: Buffer.from([5, 0x11, 0, 0, 0, 10]), payload: [str('')] }));
      const ackB = (await b2.next('connack')) as IConnackPacket;
      expect(ackA.reasonCode).toBe(0);
      expect(ackB.reasonCode).toBe(0);
      const assignedA = ackA.properties?.assignedClientIdentifier;
      const assignedB = ackB.properties?.assignedClientIdentifier;
      expect(assignedA).toMatch(/^.+$/);
      expect(assignedB).toMatch(/^.+$/);
      expect(assignedA).not.toBe(assignedB);
      // The assigned id is the session's real id: connecting with it takes the first connection over.
      const c = await RawClient.connect(b.port, 5);
      expect((await c.handshake({ clientId: assignedA! })).reasonCode).toBe(0);
      const d = (await a.next('disconnect')) as IDisconnectPacket;
      expect(d.reasonCode).toBe(0x8e);
      await a.waitClosed();
      b2.end();
      c.end();
    });

    it('v5: sends no Assigned Client Identifier when the client chose one', async () => {
      const raw = await RawClient.connect(b.port, 5);
      const ack = await raw.handshake({ clientId: id('own') });
      expect(ack.properties?.assignedClientIdentifier).toBeUndefined();
      raw.end();
    });

    it('v4: accepts an empty identifier with Clean Session 1 [MQTT-3.1.3-6]', async () => {
      const raw = await RawClient.connect(b.port, 4);
      const ack = await raw.handshake({ clientId: '', clean: true });
      expect(ack.returnCode).toBe(0);
      expect(ack.sessionPresent).toBe(false);
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
      raw.end();
    });

    it('v4: refuses an empty identifier with Clean Session 0: return code 2, closed [MQTT-3.1.3-8]', async () => {
      const raw = await RawClient.connect(b.port, 4);
      raw.send(connectBytes({ level: 4, flags: 0x00, payload: [str('')] }));
      const ack = await raw.next('connack');
      expect(ack.returnCode).toBe(2);
      expect(ack.sessionPresent).toBe(false); // [MQTT-3.2.2-4]
      await raw.waitClosed();
    });

    it('v3.1: refuses an empty identifier with return code 2 (3.1 requires 1-23 characters)', async () => {
      const raw = await RawClient.connect(b.port, 3);
      raw.send(connectBytes({ name: 'MQIsdp', level: 3, payload: [str('')] }));
      expect((await raw.next('connack')).returnCode).toBe(2);
      await raw.waitClosed();
    });

    it('accepts identifiers with multi-byte UTF-8 and punctuation [MQTT-3.1.3-5 allows more]', async () => {
      for (const v of [4, 5] as const) {
        const raw = await RawClient.connect(b.port, v);
        const ack = await raw.handshake({ clientId: `${id('utf8')}-é-日本-/#+$` });
        expect(v === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
        raw.end();
      }
    });

    describe('with mqtt.maxClientIdLength 8 and mqtt.allowEmptyClientId false', async () => {
      const small = await startBroker({ config: { mqtt: { maxClientIdLength: 8, allowEmptyClientId: false } } });

      it('accepts an identifier of exactly 8 bytes', async () => {
        for (const v of [4, 5] as const) {
          const raw = await RawClient.connect(small.port, v);
          const ack = await raw.handshake({ clientId: `abcdefg${v}` });
          expect(v === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
          raw.end();
        }
      });

      for (const [what, clientId] of [
        ['9 ASCII bytes', 'abcdefghi'],
        ['5 characters that are 10 UTF-8 bytes', 'ééééé'],
        ['an empty identifier', ''],
      ] as const) {
        it(`refuses ${what}: v4 return code 2, v5 0x85 Client Identifier not valid, then closes`, async () => {
          const r4 = await RawClient.connect(small.port, 4);
          const a4 = await r4.handshake({ clientId, clean: true });
          expect(a4.returnCode).toBe(2);
          expect(a4.sessionPresent).toBe(false);
          await r4.waitClosed();
          const r5 = await RawClient.connect(small.port, 5);
          const a5 = await r5.handshake({ clientId, clean: true });
          expect(a5.reasonCode).toBe(0x85);
          await r5.waitClosed();
        });
      }

      it('mosquitto_pub reports the refusal of a too long identifier (3.1.1 and 5.0)', async () => {
        const r4 = await runClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(small.port), '-V', 'mqttv311', '-i', 'much-too-long', '-t', 'c01/x', '-m', 'x']);
        expect(r4.code).not.toBe(0);
        expect(r4.stderr).toMatch(/identifier rejected/i);
        const r5 = await runClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(small.port), '-V', 'mqttv5', '-i', 'much-too-long', '-t', 'c01/x', '-m', 'x']);
        expect(r5.code).not.toBe(0);
        expect(r5.stderr).toMatch(/client identifier not valid/i);
      });
    });
  });

  describe('session present', () => {
    it('v4: 0 on a new session, 1 on resuming it, 0 with Clean Session 1 [MQTT-3.2.2-1] [MQTT-3.2.2-2] [MQTT-3.2.2-3]', async () => {
      const clientId = id('sp4');
      const seen: boolean[] = [];
      for (const clean of [false, false, true, false]) {
        const raw = await RawClient.connect(b.port, 4);
        const ack = await raw.handshake({ clientId, clean });
        expect(ack.returnCode).toBe(0);
        seen.push(ack.sessionPresent);
        raw.send({ cmd: 'disconnect' });
        await raw.waitClosed();
      }
      // The clean session of the third connection ended with it, so the fourth starts a new one.
      expect(seen).toEqual([false, true, false, false]);
    });

    it('v5: follows Clean Start and Session Expiry Interval [MQTT-3.2.2-2] [MQTT-3.2.2-3]', async () => {
      const clientId = id('sp5');
      const steps: Array<{ clean: boolean; expiry: number }> = [
        { clean: false, expiry: 60 },
        { clean: false, expiry: 60 },
        { clean: true, expiry: 0 }, // discards the session; expiry 0 ends the new one at disconnect
        { clean: false, expiry: 60 },
      ];
      const seen: boolean[] = [];
      for (const s of steps) {
        const raw = await RawClient.connect(b.port, 5);
        const ack = await raw.handshake({ clientId, clean: s.clean, properties: { sessionExpiryInterval: s.expiry } });
        expect(ack.reasonCode).toBe(0);
        seen.push(ack.sessionPresent);
        raw.send({ cmd: 'disconnect', reasonCode: 0 });
        await raw.waitClosed();
      }
      expect(seen).toEqual([false, true, false, false]);
    });
  });

  describe('packet order', () => {
    for (const first of ['publish', 'subscribe', 'disconnect'] as const) {
      it(`closes without a reply when the first packet is ${first.toUpperCase()} [MQTT-3.1.0-1]`, async () => {
        const raw = await RawClient.connect(b.port, 4);
        const tap = tapBytes(raw);
        if (first === 'publish') raw.send({ cmd: 'publish', topic: 'c01/first', payload: 'x', qos: 0, dup: false, retain: false });
        else if (first === 'subscribe') raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'c01/#', qos: 0 }] });
        else raw.send({ cmd: 'disconnect' });
        await raw.waitClosed();
        expect(tap.bytes().length).toBe(0);
      });
    }

    it('v5: a second CONNECT gets DISCONNECT 0x82 Protocol Error and the connection closes [MQTT-3.1.0-2]', async () => {
      const raw = await RawClient.connect(b.port, 5);
      const clientId = id('twice5');
      await raw.handshake({ clientId });
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId, keepalive: 60 });
      const d = (await raw.next('disconnect')) as IDisconnectPacket;
      expect(d.reasonCode).toBe(0x82);
      await raw.waitClosed();
      expect(cmds(raw.packets)).toEqual([]);
    });

    it('v4: a second CONNECT closes the connection without a reply [MQTT-3.1.0-2]', async () => {
      const raw = await RawClient.connect(b.port, 4);
      const clientId = id('twice4');
      await raw.handshake({ clientId });
      const tap = tapBytes(raw);
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60 });
      await raw.waitClosed();
      expect(tap.bytes().length).toBe(0);
    });
  });

  describe('connect timeout (mqtt.connectTimeout 1)', async () => {
    const t = await startBroker({ config: { mqtt: { connectTimeout: 1 } } });

    it('closes a socket that sends nothing, or only part of a CONNECT, and keeps a connected client', async () => {
      const silent = await RawClient.connect(t.port, 4);
      const partial = await RawClient.connect(t.port, 4);
      partial.send(connectBytes({ payload: [str(id('partial'))] }).subarray(0, 6));
      const good = await RawClient.connect(t.port, 4);
      await good.handshake({ clientId: id('good'), keepalive: 0 });
      const started = Date.now();
      await Promise.all([silent.waitClosed(5000), partial.waitClosed(5000)]);
      expect(silent.packets).toEqual([]);
      expect(partial.packets).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5000);
      // The timer belongs to the CONNECT phase only.
      await sleep(Math.max(0, 1500 - (Date.now() - started)));
      good.send({ cmd: 'pingreq' });
      await good.next('pingresp');
      expect(good.closed).toBe(false);
      good.end();
    });
  });

  describe('authentication', () => {
    it('v5: refuses an Authentication Method with CONNACK 0x8C Bad authentication method and closes [MQTT-4.12.0-1]', async () => {
      const raw = await RawClient.connect(b.port, 5);
      const ack = await raw.handshake({ clientId: id('auth'), properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('x') } });
      expect(ack.reasonCode).toBe(0x8c);
      expect(ack.sessionPresent).toBe(false);
      await raw.waitClosed();
    });

    it('v5: an AUTH packet after a CONNECT without a method is a Protocol Error (DISCONNECT 0x82)', async () => {
      const raw = await RawClient.connect(b.port, 5);
      await raw.handshake({ clientId: id('auth2') });
      raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
      expect(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode).toBe(0x82);
      await raw.waitClosed();
    });
  });

  describe('CONNACK properties and keep alive', async () => {
    const p = await startBroker({
      config: { mqtt: { receiveMaximum: 7, maxPacketSize: 4096, topicAliasMaximum: 3, maxKeepAlive: 30, maxSessionExpiry: 100 } },
    });

    it('v5: announces Receive Maximum, Maximum Packet Size and Topic Alias Maximum from config', async () => {
      const raw = await RawClient.connect(p.port, 5);
      const ack = await raw.handshake({ clientId: id('props'), keepalive: 20 });
      expect(ack.reasonCode).toBe(0);
      expect(ack.properties).toMatchObject({ receiveMaximum: 7, maximumPacketSize: 4096, topicAliasMaximum: 3 });
      // Keep alive within the maximum and no session expiry asked: nothing to override.
      expect(ack.properties?.serverKeepAlive).toBeUndefined();
      expect(ack.properties?.sessionExpiryInterval).toBeUndefined();
      raw.end();
    });

    it('v5: announces the defaults (32, 1 MiB, 10) on a default broker', async () => {
      const raw = await RawClient.connect(b.port, 5);
      const ack = await raw.handshake({ clientId: id('defprops') });
      expect(ack.properties).toMatchObject({ receiveMaximum: 32, maximumPacketSize: 1048576, topicAliasMaximum: 10 });
      expect(ack.properties?.serverKeepAlive).toBeUndefined();
      raw.end();
    });

    it('v5: enforces the announced Maximum Packet Size (DISCONNECT 0x95) [MQTT-3.2.2-15 ff.]', async () => {
      const raw = await RawClient.connect(p.port, 5);
      await raw.handshake({ clientId: id('big') });
      raw.send({ cmd: 'publish', topic: 'c01/big', payload: Buffer.alloc(5000), qos: 0, dup: false, retain: false });
      expect(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode).toBe(0x95);
      await raw.waitClosed();
    });

    for (const asked of [60, 0]) {
      it(`v5: a keep alive of ${asked} is answered with Server Keep Alive 30 (mqtt.maxKeepAlive) [MQTT-3.2.2-21]`, async () => {
        const raw = await RawClient.connect(p.port, 5);
        const ack = await raw.handshake({ clientId: id(`ka${asked}`), keepalive: asked });
        expect(ack.reasonCode).toBe(0);
        expect(ack.properties?.serverKeepAlive).toBe(30);
        raw.end();
      });
    }

    it('v5: a Session Expiry Interval over mqtt.maxSessionExpiry is answered with the maximum', async () => {
      const raw = await RawClient.connect(p.port, 5);
      const ack = await raw.handshake({ clientId: id('sei'), properties: { sessionExpiryInterval: 1000 } });
      expect(ack.properties?.sessionExpiryInterval).toBe(100);
      raw.end();
    });

    it('v4: refuses a keep alive over mqtt.maxKeepAlive with return code 2; accepts 30 and 0', async () => {
      const over = await RawClient.connect(p.port, 4);
      expect((await over.handshake({ clientId: id('ka4'), keepalive: 31 })).returnCode).toBe(2);
      await over.waitClosed();
      for (const keepalive of [30, 0]) {
        const raw = await RawClient.connect(p.port, 4);
        expect((await raw.handshake({ clientId: id('ka4ok'), keepalive })).returnCode).toBe(0);
        raw.end();
      }
    });

    describe('with mqtt.maxKeepAlive 1', async () => {
      const k = await startBroker({ config: { mqtt: { maxKeepAlive: 1 } } });

      it('v5: the Server Keep Alive is the one enforced: silence ends the connection with DISCONNECT 0x8D [MQTT-3.2.2-21]', async () => {
        const raw = await RawClient.connect(k.port, 5);
        const ack = await raw.handshake({ clientId: id('ska'), keepalive: 60 });
        expect(ack.properties?.serverKeepAlive).toBe(1);
        const d = (await raw.next('disconnect', 6000)) as IDisconnectPacket;
        expect(d.reasonCode).toBe(0x8d);
        await raw.waitClosed();
      });
    });
  });

  describe('mosquitto clients', () => {
    for (const v of ['mqttv31', 'mqttv311', 'mqttv5'] as const) {
      it(`mosquitto_pub -V ${v} connects and publishes`, async () => {
        const sub = await connect(b.port, { protocolVersion: 5 });
        const topic = `c01/mosq/${v}`;
        await sub.subscribeAsync(topic, { qos: 1 });
        const r = await runClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b.port), '-V', v, '-q', '1', '-i', id('mp'), '-t', topic, '-m', `hello ${v}`]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        await until(() => sub.received.length === 1, 3000, 'message from mosquitto_pub');
        expect(sub.received[0]!.payload.toString()).toBe(`hello ${v}`);
      });
    }
  });
});
