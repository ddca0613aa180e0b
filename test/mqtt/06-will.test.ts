/**
 * Will messages: published with their QoS and retain flag when a connection ends without a normal
 * DISCONNECT (socket lost, keep-alive timeout, protocol error, takeover, v5 DISCONNECT 0x04), not
 * after a normal DISCONNECT; the v5 Will Delay Interval (delayed, cancelled by a reconnect, cut short
 * by the end of the session); will properties passed through; retained wills; mosquitto clients.
 */
import { describe, expect, it } from 'vitest';
import type { IConnectPacket, IDisconnectPacket } from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { connectBytes, exited, rawSubscribe, readPublishes, startClient, str, tapBytes, varint } from './lifecycle-helpers.js';

const id = (tag: string): string => `c06-${tag}-${Math.random().toString(16).slice(2, 8)}`;

type Will = NonNullable<IConnectPacket['will']>;

/** A raw client of `version` connected with `will` (and `extra` CONNECT fields). */
async function willClient(port: number, version: 3 | 4 | 5, will: Will, extra: Partial<IConnectPacket> = {}): Promise<RawClient> {
  const raw = await RawClient.connect(port, version);
  const ack = await raw.handshake({
    clientId: id(`w${version}`),
    ...(version === 3 ? { protocolId: 'MQIsdp', protocolVersion: 3 } : {}),
    will,
    ...extra,
  });
  expect(version === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
  return raw;
}

describe('MQTT will', async () => {
  const b = await startBroker();

  /** An MQTT.js v5 client subscribed to `topic` at QoS 2. */
  async function watch(topic: string): Promise<Awaited<ReturnType<typeof connect>>> {
    const w = await connect(b.port);
    await w.subscribeAsync(topic, { qos: 2 });
    return w;
  }

  /**
   * Proves nothing else arrived on `topic` so far: publishes a marker there and waits for it, so a
   * will the broker had published before would be in `received` ahead of it.
   */
  async function onlyMarker(w: Awaited<ReturnType<typeof watch>>, topic: string): Promise<string[]> {
    const pub = await connect(b.port);
    await pub.publishAsync(topic, 'marker', { qos: 1 });
    await until(() => w.received.some((r) => r.payload.toString() === 'marker'), 3000, 'marker');
    await pub.endAsync();
    return w.received.map((r) => r.payload.toString());
  }

  describe('published when the connection is lost', () => {
    for (const version of [3, 4, 5] as const) {
      for (const qos of [0, 1, 2] as const) {
        it(`v${version}: a QoS ${qos} will is published with QoS ${qos} after the socket is destroyed [MQTT-3.1.2-8]`, async () => {
          const topic = `c06/lost/${id(`v${version}q${qos}`)}`;
          const w = await watch(topic);
          const raw = await willClient(b.port, version, { topic, payload: Buffer.from(`gone ${version}/${qos}`), qos, retain: false });
          raw.end();
          await until(() => w.received.length === 1, 3000, 'will');
          const got = w.received[0]!;
          expect([got.topic, got.payload.toString(), got.packet.qos, got.packet.retain]).toEqual([topic, `gone ${version}/${qos}`, qos, false]);
        });
      }
    }

    for (const version of [4, 5] as const) {
      it(`v${version}: published after a protocol error closes the connection`, async () => {
        const topic = `c06/error/${id(`v${version}`)}`;
        const w = await watch(topic);
        const raw = await willClient(b.port, version, { topic, payload: Buffer.from('broken'), qos: 1, retain: false });
        raw.send(Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61])); // PUBLISH with QoS 3 [MQTT-3.3.1-4]
        await raw.waitClosed();
        await until(() => w.received.length === 1, 3000, 'will');
        expect(w.received[0]!.payload.toString()).toBe('broken');
      });
    }
  });

  describe('keep alive', () => {
    for (const version of [4, 5] as const) {
      // Both versions side by side (it.concurrent) to share the wait.
      it.concurrent(`v${version}: published when nothing arrives within 1.5 x keep alive; a pinging client stays [MQTT-3.1.2-24]`, async ({ expect }) => {
        const topic = `c06/keepalive/${id(`v${version}`)}`;
        const w = await watch(topic);
        const silent = await willClient(b.port, version, { topic, payload: Buffer.from('silent'), qos: 1, retain: false }, { keepalive: 1 });
        const started = Date.now();
        const pinging = await willClient(b.port, version, { topic, payload: Buffer.from('pinging'), qos: 1, retain: false }, { keepalive: 1 });
        const pinger = setInterval(() => pinging.send({ cmd: 'pingreq' }), 400);
        try {
          await silent.waitClosed(6000);
          const elapsed = Date.now() - started;
          // The broker's clock started before CONNACK reached us, so only the keep alive itself is a safe floor.
          expect(elapsed).toBeGreaterThanOrEqual(1000);
          expect(elapsed).toBeLessThan(6000);
          if (version === 5) {
            const d = silent.packets.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
            expect(d?.reasonCode).toBe(0x8d);
          }
          await until(() => w.received.length === 1, 3000, 'will');
          expect(w.received[0]!.payload.toString()).toBe('silent');
          await sleep(Math.max(0, 2500 - (Date.now() - started)));
          expect(pinging.closed).toBe(false);
        } finally {
          clearInterval(pinger);
        }
        pinging.send({ cmd: 'disconnect' });
        await pinging.waitClosed();
        expect(await onlyMarker(w, topic)).toEqual(['silent', 'marker']);
      });
    }
  });

  describe('normal DISCONNECT', () => {
    for (const version of [3, 4, 5] as const) {
      it(`v${version}: a normal DISCONNECT discards the will [MQTT-3.1.2-10] [MQTT-3.14.4-3]`, async () => {
        const topic = `c06/normal/${id(`v${version}`)}`;
        const w = await watch(topic);
        const raw = await willClient(b.port, version, { topic, payload: Buffer.from('not sent'), qos: 1, retain: false });
        raw.send(version === 5 ? { cmd: 'disconnect', reasonCode: 0 } : { cmd: 'disconnect' });
        await raw.waitClosed();
        expect(await onlyMarker(w, topic)).toEqual(['marker']);
      });
    }

    it('v5: DISCONNECT 0x04 Disconnect with Will Message publishes the will', async () => {
      const topic = `c06/dc04/${id('v5')}`;
      const w = await watch(topic);
      const raw = await willClient(b.port, 5, { topic, payload: Buffer.from('asked for'), qos: 2, retain: false });
      raw.send({ cmd: 'disconnect', reasonCode: 0x04 });
      await raw.waitClosed();
      await until(() => w.received.length === 1, 3000, 'will');
      expect([w.received[0]!.payload.toString(), w.received[0]!.packet.qos]).toEqual(['asked for', 2]);
    });
  });

  describe('retain', () => {
    for (const version of [4, 5] as const) {
      it(`v${version}: a will with Will Retain 1 is published as a retained message [MQTT-3.1.2-17]`, async () => {
        const topic = `c06/retained/${id(`v${version}`)}`;
        const raw = await willClient(b.port, version, { topic, payload: Buffer.from('last words'), qos: 1, retain: true });
        const live = await watch(topic);
        raw.end();
        await until(() => live.received.length === 1, 3000, 'will');
        // Later subscribers get it from the retained store, with RETAIN 1.
        const later = await watch(topic);
        await until(() => later.received.length === 1, 3000, 'retained will');
        expect([later.received[0]!.payload.toString(), later.received[0]!.packet.retain, later.received[0]!.packet.qos]).toEqual(['last words', true, 1]);
      });

      it(`v${version}: a will with Will Retain 0 is not retained [MQTT-3.1.2-16]`, async () => {
        const topic = `c06/unretained/${id(`v${version}`)}`;
        const live = await watch(topic);
        const raw = await willClient(b.port, version, { topic, payload: Buffer.from('once'), qos: 1, retain: false });
        raw.end();
        await until(() => live.received.length === 1, 3000, 'will');
        const later = await watch(topic);
        expect(await onlyMarker(later, topic)).toEqual(['marker']);
      });
    }
  });

  describe('with mqtt.retainAvailable false', async () => {
    const nr = await startBroker({ config: { mqtt: { retainAvailable: false } } });

    it('v5: a will with Will Retain 1 is refused with CONNACK 0x9A Retain not supported [MQTT-3.2.2-13]', async () => {
      const raw = await RawClient.connect(nr.port, 5);
      const ack = await raw.handshake({ clientId: id('nr5'), will: { topic: 'c06/nr', payload: Buffer.from('x'), qos: 0, retain: true } });
      expect(ack.reasonCode).toBe(0x9a);
      await raw.waitClosed();
      const ok = await RawClient.connect(nr.port, 5);
      const ack2 = await ok.handshake({ clientId: id('nr5ok'), will: { topic: 'c06/nr', payload: Buffer.from('x'), qos: 0, retain: false } });
      expect(ack2.reasonCode).toBe(0);
      expect(ack2.properties?.retainAvailable).toBe(false);
      ok.end();
    });

    it('v4: a will with Will Retain 1 is refused with a non-zero return code', async () => {
      const raw = await RawClient.connect(nr.port, 4);
      const ack = await raw.handshake({ clientId: id('nr4'), will: { topic: 'c06/nr', payload: Buffer.from('x'), qos: 0, retain: true } });
      expect(ack.returnCode).not.toBe(0);
      await raw.waitClosed();
    });
  });

  describe('takeover', () => {
    for (const version of [4, 5] as const) {
      it(`v${version}: the will of a connection taken over is published [MQTT-3.1.4-3]`, async () => {
        const topic = `c06/takeover/${id(`v${version}`)}`;
        const w = await watch(topic);
        const clientId = id('to');
        const old = await willClient(b.port, version, { topic, payload: Buffer.from('taken over'), qos: 1, retain: false }, { clientId });
        const fresh = await RawClient.connect(b.port, version);
        await fresh.handshake({ clientId });
        await old.waitClosed();
        await until(() => w.received.length === 1, 3000, 'will');
        expect(w.received[0]!.payload.toString()).toBe('taken over');
        fresh.end();
      });
    }
  });

  describe('will properties (v5)', () => {
    it('passes user properties in order, content type, response topic, correlation data, format and expiry [MQTT-3.1.3-10]', async () => {
      const topic = `c06/props/${id('v5')}`;
      const sub = await RawClient.connect(b.port, 5);
      await sub.handshake({ clientId: id('propsub') });
      await rawSubscribe(sub, topic, 1);
      const tap = tapBytes(sub);

      const props = Buffer.concat([
        Buffer.from([0x01, 0x01]), // Payload Format Indicator: UTF-8
        Buffer.from([0x02, 0, 0, 0, 100]), // Message Expiry Interval 100 s
        Buffer.from([0x03]),
        str('text/plain'),
        Buffer.from([0x08]),
        str('c06/reply'),
        Buffer.from([0x09]),
        str(Buffer.from([1, 2, 3])),
        ...[
          ['a', '1'],
          ['b', '2'],
          ['a', '3'],
        ].flatMap(([k, v]) => [Buffer.from([0x26]), str(k!), str(v!)]),
      ]);
      const raw = await RawClient.connect(b.port, 5);
      // Flags: clean, will, will QoS 1.
      raw.send(connectBytes({ level: 5, flags: 0x02 | 0x04 | 0x08, payload: [str(id('props')), Buffer.concat([varint(props.length), props]), str(topic), str('héllo')] }));
      expect((await raw.next('connack')).reasonCode).toBe(0);
      raw.end();

      await sub.next('publish');
      const [got] = readPublishes(tap.bytes());
      expect(got).toBeDefined();
      expect(got!.topic).toBe(topic);
      expect(got!.payload.toString()).toBe('héllo');
      expect(got!.user).toEqual([
        ['a', '1'],
        ['b', '2'],
        ['a', '3'],
      ]);
      expect(got!.contentType).toBe('text/plain');
      expect(got!.responseTopic).toBe('c06/reply');
      expect(got!.correlationData).toEqual(Buffer.from([1, 2, 3]));
      expect(got!.payloadFormat).toBe(1);
      expect(got!.messageExpiry).toBeGreaterThan(90);
      expect(got!.messageExpiry).toBeLessThanOrEqual(100);
      sub.end();
    });
  });

  it("v5: the will's Message Expiry Interval counts from its publication, not from CONNECT (5.0 §3.1.3.2.4)", async () => {
    const topic = `c06/will-expiry/${id('v5')}`;
    const sub = await RawClient.connect(b.port, 5);
    await sub.handshake({ clientId: id('wesub') });
    await rawSubscribe(sub, topic, 1);
    const tap = tapBytes(sub);
    const raw = await willClient(b.port, 5, { topic, payload: Buffer.from('fresh'), qos: 1, retain: false, properties: { messageExpiryInterval: 2 } });
    await sleep(1500); // most of the will's lifetime: it is still published with all of it
    raw.end();
    await sub.next('publish');
    const [got] = readPublishes(tap.bytes());
    expect(got?.payload.toString()).toBe('fresh');
    expect(got?.messageExpiry).toBe(2);
    sub.end();
  });

  it('v5: a will payload that is not UTF-8 although its Payload Format Indicator says so is refused with CONNACK 0x99', async () => {
    const raw = await RawClient.connect(b.port, 5);
    const willProps = Buffer.from([2, 0x01, 0x01]);
    raw.send(connectBytes({ level: 5, flags: 0x02 | 0x04, payload: [str(id('pfi')), willProps, str('c06/pfi'), str(Buffer.from([0xff, 0xfe]))] }));
    expect((await raw.next('connack')).reasonCode).toBe(0x99);
    await raw.waitClosed();
  });

  describe('Will Delay Interval (v5)', () => {
    // Timed cases run side by side (it.concurrent) to share their waits.
    const v5Will = (topic: string, payload: string, delay: number): Will => ({
      topic,
      payload: Buffer.from(payload),
      qos: 1,
      retain: false,
      properties: { willDelayInterval: delay },
    });

    it.concurrent('delays the will by the interval [MQTT-3.1.3-9]', async ({ expect }) => {
      const topic = `c06/delay/${id('1s')}`;
      const w = await watch(topic);
      const raw = await willClient(b.port, 5, v5Will(topic, 'late', 1), { clean: false, properties: { sessionExpiryInterval: 60 } });
      const t0 = Date.now();
      raw.end();
      await until(() => w.received.length === 1, 5000, 'delayed will');
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(900); // not before the delay
      expect(elapsed).toBeLessThan(4000);
      expect(w.received[0]!.payload.toString()).toBe('late');
    });

    it.concurrent('delays a will requested by DISCONNECT 0x04 as well', async ({ expect }) => {
      const topic = `c06/delay04/${id('1s')}`;
      const w = await watch(topic);
      const raw = await willClient(b.port, 5, v5Will(topic, 'late 04', 1), { clean: false, properties: { sessionExpiryInterval: 60 } });
      const t0 = Date.now();
      raw.send({ cmd: 'disconnect', reasonCode: 0x04 });
      await until(() => w.received.length === 1, 5000, 'delayed will');
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(4000);
    });

    it.concurrent('a reconnect to the session before the delay cancels the will [MQTT-3.1.3-9]', async ({ expect }) => {
      const topic = `c06/cancel/${id('2s')}`;
      const w = await watch(topic);
      const clientId = id('cancel');
      const raw = await willClient(b.port, 5, v5Will(topic, 'cancelled', 2), { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      raw.end();
      await raw.waitClosed();
      const back = await RawClient.connect(b.port, 5);
      expect((await back.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } })).sessionPresent).toBe(true);
      await sleep(3000);
      expect(await onlyMarker(w, topic)).toEqual(['marker']);
      back.send({ cmd: 'disconnect', reasonCode: 0 });
    });

    it.concurrent('a takeover that resumes the session before the delay cancels the will', async ({ expect }) => {
      const topic = `c06/cancel-to/${id('1s')}`;
      const w = await watch(topic);
      const clientId = id('cancelto');
      const old = await willClient(b.port, 5, v5Will(topic, 'cancelled by takeover', 1), { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      const fresh = await RawClient.connect(b.port, 5);
      await fresh.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      await old.waitClosed();
      await sleep(2000);
      expect(await onlyMarker(w, topic)).toEqual(['marker']);
      fresh.send({ cmd: 'disconnect', reasonCode: 0 });
    });

    it.concurrent('publishes at the end of the session when the session expiry is shorter than the delay [MQTT-3.1.3-9]', async ({ expect }) => {
      const topic = `c06/sessionend/${id('1s')}`;
      const w = await watch(topic);
      const raw = await willClient(b.port, 5, v5Will(topic, 'session over', 30), { clean: false, properties: { sessionExpiryInterval: 1 } });
      const t0 = Date.now();
      raw.end();
      await until(() => w.received.length === 1, 5000, 'will at session end');
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(4000);
    });

    it.concurrent('publishes at once when the session ends with the connection (expiry 0)', async ({ expect }) => {
      const topic = `c06/expiry0/${id('now')}`;
      const w = await watch(topic);
      const raw = await willClient(b.port, 5, v5Will(topic, 'now', 30));
      raw.end();
      await until(() => w.received.length === 1, 3000, 'will');
      expect(w.received[0]!.payload.toString()).toBe('now');
    });
  });

  describe('mosquitto clients', () => {
    /** mosquitto_sub with a will, running until we signal it; resolves once its SUBACK arrived. */
    async function mosquittoWithWill(version: 'mqttv311' | 'mqttv5', topic: string, extra: string[] = []): Promise<ReturnType<typeof startClient>> {
      const c = startClient('mosquitto_sub', [
        ...['-h', '127.0.0.1', '-p', String(b.port), '-V', version, '-d', '-i', id('mosq'), '-t', `${topic}/in`],
        ...['--will-topic', topic, '--will-payload', `mosquitto ${version}`, '--will-qos', '1'],
        ...extra,
      ]);
      await until(() => c.output().includes('received SUBACK'), 5000, 'mosquitto_sub subscribed');
      return c;
    }

    for (const version of ['mqttv311', 'mqttv5'] as const) {
      it(`mosquitto_sub (${version}) killed with SIGKILL: its will is published`, async () => {
        const topic = `c06/mosq/kill/${version}`;
        const w = await watch(topic);
        const c = await mosquittoWithWill(version, topic);
        c.kill('SIGKILL');
        await exited(c);
        await until(() => w.received.length === 1, 3000, 'will');
        expect([w.received[0]!.payload.toString(), w.received[0]!.packet.qos]).toEqual([`mosquitto ${version}`, 1]);
      });
    }

    it('mosquitto_sub (mqttv311) ended with SIGINT sends DISCONNECT: no will', async () => {
      const topic = `c06/mosq/int/v311`;
      const w = await watch(topic);
      const c = await mosquittoWithWill('mqttv311', topic);
      c.kill('SIGINT');
      await exited(c);
      expect(c.output()).toContain('sending DISCONNECT');
      expect(await onlyMarker(w, topic)).toEqual(['marker']);
    });

    it('mosquitto_sub (mqttv5) ended with SIGINT sends DISCONNECT 0x04: the will is published', async () => {
      const topic = `c06/mosq/int/v5`;
      const w = await watch(topic);
      const c = await mosquittoWithWill('mqttv5', topic);
      c.kill('SIGINT');
      await exited(c);
      await until(() => w.received.length === 1, 3000, 'will');
      expect(w.received[0]!.payload.toString()).toBe('mosquitto mqttv5');
    });

    it('mosquitto_sub (mqttv5) with -D will user-property and will-delay-interval: properties kept, will delayed', async () => {
      const topic = `c06/mosq/props`;
      const sub = await RawClient.connect(b.port, 5);
      await sub.handshake({ clientId: id('mosqpropsub') });
      await rawSubscribe(sub, topic, 1);
      const tap = tapBytes(sub);
      const c = await mosquittoWithWill('mqttv5', topic, [
        ...['-c', '-x', '60'],
        ...['-D', 'will', 'user-property', 'origin', 'mosquitto'],
        ...['-D', 'will', 'content-type', 'text/plain'],
        ...['-D', 'will', 'will-delay-interval', '1'],
      ]);
      const t0 = Date.now();
      c.kill('SIGKILL');
      await exited(c);
      await sub.next('publish', 5000);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(4000);
      const [got] = readPublishes(tap.bytes());
      expect(got?.user).toEqual([['origin', 'mosquitto']]);
      expect(got?.contentType).toBe('text/plain');
      sub.end();
    });

    describe('with mqtt.maxKeepAlive 1', async () => {
      const k = await startBroker({ config: { mqtt: { maxKeepAlive: 1 } } });

      it('mosquitto_sub (mqttv5, -k 5) follows Server Keep Alive 1; stopped with SIGSTOP, the keep-alive timeout publishes its will', async () => {
        const topic = `c06/mosq/stop`;
        const w = await connect(k.port);
        await w.subscribeAsync(topic, { qos: 1 });
        const c = startClient('mosquitto_sub', [
          ...['-h', '127.0.0.1', '-p', String(k.port), '-V', 'mqttv5', '-d', '-k', '5', '-i', id('mosqstop'), '-t', `${topic}/in`],
          ...['--will-topic', topic, '--will-payload', 'stopped', '--will-qos', '1'],
        ]);
        try {
          // A PINGREQ within 4 s shows it took the Server Keep Alive of 1 s over its own 5 s.
          await until(() => c.output().includes('sending PINGREQ'), 4000, 'a PINGREQ from mosquitto_sub');
          expect(w.received).toEqual([]);
          c.kill('SIGSTOP');
          await until(() => w.received.length === 1, 6000, 'will after keep-alive timeout');
          expect(w.received[0]!.payload.toString()).toBe('stopped');
        } finally {
          c.kill('SIGKILL');
          await exited(c);
        }
      });
    });
  });
});
