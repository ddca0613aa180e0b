/**
 * limits.maxSubscriptions (3 here): the subscription over it gets SUBACK 0x97 Quota exceeded
 * (MQTT 5) or 0x80 (3.1.1), the rest of the SUBSCRIBE is served; replacing a filter the client
 * already has adds nothing; an UNSUBSCRIBE makes room; a persistent session's subscriptions still
 * count after a reconnect. STOMP: the SUBSCRIBE over it gets an ERROR frame. Each one counted
 * (subscriptionsRefused) and logged.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect } from '../helpers/mqtt.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { logged, nonce, run, subackCodes } from './helpers.js';

const QuotaExceeded = 0x97;

describe('limits.maxSubscriptions', async () => {
  const b = await startBroker({ config: { limits: { maxSubscriptions: 3 } } });
  const stats = b.broker.core.stats;

  it('MQTT 5: the fourth filter of a SUBSCRIBE gets 0x97; a filter already held is replaced, not added; UNSUBSCRIBE frees a place', async () => {
    const n = nonce();
    const before = stats.subscriptionsRefused;
    const c = await connect(b.port);
    expect(await subackCodes(c, [`${n}/a`, `${n}/b`, `${n}/c`, `${n}/d`])).toEqual([1, 1, 1, QuotaExceeded]);
    expect(await subackCodes(c, [`${n}/a`], 2)).toEqual([2]);
    expect(await subackCodes(c, [`${n}/e`])).toEqual([QuotaExceeded]);
    await c.unsubscribeAsync(`${n}/b`);
    expect(await subackCodes(c, [`${n}/e`])).toEqual([1]);
    expect(stats.subscriptionsRefused - before).toBe(2);
    const lines = logged(b, 'subscription refused', { clientId: c.options.clientId });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ filter: `${n}/d`, reason: 'the client has 3 subscriptions, the limit' });
    await c.endAsync();
  });

  it('MQTT 3.1.1 (mosquitto_sub): over the limit, 0x80', async () => {
    const n = nonce();
    const args = ['-h', '127.0.0.1', '-p', String(b.port), '-V', 'mqttv311', '-C', '1', '-W', '2'];
    for (const t of ['a', 'b', 'c', 'd']) args.push('-t', `${n}/${t}`);
    const sub = await run('mosquitto_sub', [...args, '-d']);
    // mosquitto_sub -d prints the SUBACK's codes: granted QoS 0 three times, then 128.
    expect(sub.stdout).toMatch(/Subscribed \(mid: \d+\): 0, 0, 0, 128/);
  });

  it("a persistent session's subscriptions count after a reconnect", async () => {
    const n = nonce();
    const clientId = `subs-${n}`;
    const first = await connect(b.port, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(await subackCodes(first, [`${n}/1`, `${n}/2`, `${n}/3`])).toEqual([1, 1, 1]);
    await first.endAsync();
    const again = await connect(b.port, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(await subackCodes(again, [`${n}/4`])).toEqual([QuotaExceeded]);
    await again.endAsync();
  });

  it('STOMP: the SUBSCRIBE over the limit gets ERROR "too many subscriptions" (with its receipt id), then the connection closes', async () => {
    const before = stats.subscriptionsRefused;
    const c = await StompRaw.open(b.stompPort);
    for (const id of ['1', '2', '3']) await c.subscribe({ id, destination: `/topic/${nonce()}` });
    c.send('SUBSCRIBE', { id: '4', destination: `/topic/${nonce()}`, receipt: 'four' });
    const err = await c.expectError();
    expect(hdr(err, 'message')).toBe('too many subscriptions');
    expect(hdr(err, 'receipt-id')).toBe('four');
    expect(err.body.toString()).toMatch(/3 subscriptions, the limit \(limits\.maxSubscriptions\)/);
    expect(stats.subscriptionsRefused - before).toBe(1);
  });
});
