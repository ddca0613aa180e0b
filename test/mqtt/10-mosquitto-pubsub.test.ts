/**
 * Interoperability with the Mosquitto command line clients (Debian mosquitto-clients 2.0.11):
 * mosquitto_pub / mosquitto_sub at QoS 0/1/2 in MQTT 3.1.1 and 5, retained messages, wildcards,
 * v5 properties. MQTT.js sits on the other side of each exchange.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { run as start, type Run } from '../helpers/run.js';
import { connect, until } from '../helpers/mqtt.js';
import { connectSync, got, nonce, synced } from '../helpers/sync.js';

const VERSIONS = [
  ['mqttv311', 4],
  ['mqttv5', 5],
] as const;

describe('mosquitto_pub / mosquitto_sub', async () => {
  const b = await startBroker();
  const base = ['-h', '127.0.0.1', '-p', String(b.port)];

  /** Resolves once `clientId` holds a subscription matching `topic` (mosquitto_sub has no "ready" signal). */
  async function subscribed(clientId: string, topic: string): Promise<void> {
    await until(() => b.broker.core.router.subscribersOf(topic).some((s) => s.clientId === clientId), 5000, `${clientId} subscribed`);
  }

  for (const [V, protocolVersion] of VERSIONS) {
    for (const qos of [0, 1, 2] as const) {
      it(`QoS ${qos} both ways (${V})`, async () => {
        const n = nonce();
        const id = `msub-${n}`;
        const sub = start('mosquitto_sub', [...base, '-V', V, '-i', id, '-q', String(qos), '-t', `mq/${n}/#`, '-C', '2', '-W', '10', '-F', '%t|%q|%r|%p']);
        await subscribed(id, `mq/${n}/x`);

        // mosquitto_pub -> MQTT.js and mosquitto_sub.
        const js = await connectSync(b.port, { protocolVersion });
        await js.subscribeAsync(`mq/${n}/from-mosquitto`, { qos: 2 });
        const pub = await start('mosquitto_pub', [...base, '-V', V, '-q', String(qos), '-t', `mq/${n}/from-mosquitto`, '-m', 'hello mosquitto']);
        expect(pub).toMatchObject({ code: 0, stderr: '' });
        // MQTT.js -> mosquitto_sub.
        const jsPub = await connect(b.port, { protocolVersion });
        await jsPub.publishAsync(`mq/${n}/from-mqttjs`, 'hello mqtt.js', { qos: 2 });

        const out = await sub;
        expect(out.code).toBe(0);
        expect(out.stdout.trim().split('\n')).toEqual([`mq/${n}/from-mosquitto|${qos}|0|hello mosquitto`, `mq/${n}/from-mqttjs|${qos}|0|hello mqtt.js`]);
        await synced(jsPub, js);
        expect(got(js).map((m) => [m.payload.toString(), m.packet.qos])).toEqual([['hello mosquitto', qos]]);
      });
    }

    it(`retained: mosquitto_pub -r, then mosquitto_sub -C 1 gets it with the retain flag; -n clears it (${V})`, async () => {
      const n = nonce();
      const topic = `mqr/${n}`;
      expect(await start('mosquitto_pub', [...base, '-V', V, '-q', '1', '-r', '-t', topic, '-m', 'kept'])).toMatchObject({ code: 0 });
      const out = await start('mosquitto_sub', [...base, '-V', V, '-q', '1', '-t', topic, '-C', '1', '-W', '10', '-F', '%t|%q|%r|%p']);
      expect(out.code).toBe(0);
      expect(out.stdout).toBe(`${topic}|1|1|kept\n`);

      expect(await start('mosquitto_pub', [...base, '-V', V, '-q', '1', '-r', '-n', '-t', topic])).toMatchObject({ code: 0 });
      const js = await connectSync(b.port, { protocolVersion });
      await js.subscribeAsync(topic, { qos: 1 });
      await synced(await connect(b.port), js);
      expect(got(js)).toEqual([]);
    });

    it(`wildcard subscriptions with mosquitto_sub (${V})`, async () => {
      const n = nonce();
      const id = `mwc-${n}`;
      const sub = start('mosquitto_sub', [...base, '-V', V, '-i', id, '-q', '1', '-t', `mw/${n}/+/x`, '-t', `mw/${n}/deep/#`, '-C', '4', '-W', '10', '-v']);
      await subscribed(id, `mw/${n}/deep`);
      await subscribed(id, `mw/${n}/a/x`);
      const pub = await connect(b.port, { protocolVersion });
      for (const t of [`mw/${n}/a/x`, `mw/${n}/b/y`, `mw/${n}/deep`, `mw/${n}/a/b/x`, `mw/${n}/deep/1/2`, `mw/${n}//x`]) {
        await pub.publishAsync(t, 'm', { qos: 1 });
      }
      const out = await sub;
      expect(out.code).toBe(0);
      expect(out.stdout.trim().split('\n')).toEqual([`mw/${n}/a/x m`, `mw/${n}/deep m`, `mw/${n}/deep/1/2 m`, `mw/${n}//x m`]);
    });
  }

  it('v5 properties from mosquitto_pub reach MQTT.js, and from MQTT.js reach mosquitto_sub', async () => {
    const n = nonce();
    const js = await connectSync(b.port);
    await js.subscribeAsync(`mp/${n}/in`, { qos: 1 });
    const pub = await start('mosquitto_pub', [
      ...base,
      '-V',
      'mqttv5',
      '-q',
      '1',
      '-t',
      `mp/${n}/in`,
      '-m',
      'props',
      '-D',
      'publish',
      'user-property',
      'k',
      'v',
      '-D',
      'publish',
      'content-type',
      'text/x-test',
      '-D',
      'publish',
      'response-topic',
      `mp/${n}/reply`,
    ]);
    expect(pub.code).toBe(0);
    await synced(await connect(b.port), js);
    const [m] = got(js);
    expect(m?.packet.properties).toMatchObject({ userProperties: { k: 'v' }, contentType: 'text/x-test', responseTopic: `mp/${n}/reply` });

    const id = `mprop-${n}`;
    const sub = start('mosquitto_sub', [...base, '-V', 'mqttv5', '-i', id, '-q', '1', '-t', `mp/${n}/out`, '-C', '1', '-W', '10', '-F', '%C|%R|%E|%P|%p']);
    await subscribed(id, `mp/${n}/out`);
    const jsPub = await connect(b.port);
    await jsPub.publishAsync(`mp/${n}/out`, 'back', {
      qos: 1,
      properties: { contentType: 'a/b', responseTopic: 'r/t', messageExpiryInterval: 100, userProperties: { x: 'y' } },
    });
    const out = await sub;
    expect(out.code).toBe(0);
    const [ct, rt, exp, up, payload] = out.stdout.trim().split('|');
    expect([ct, rt, up, payload]).toEqual(['a/b', 'r/t', 'x:y', 'back']);
    expect(Number(exp)).toBeGreaterThan(90);
    expect(Number(exp)).toBeLessThanOrEqual(100);
  });
});
