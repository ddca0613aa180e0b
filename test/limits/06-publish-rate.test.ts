/**
 * limits.publishRate (a token bucket per connection, limits.publishBurst deep). With the default
 * action, `pause`, a client over the rate is slowed down: the broker stops reading its socket until
 * the bucket allows more, and nothing is lost (MQTT 3.1.1 and 5, STOMP alike). With `disconnect`,
 * MQTT 5 clients get DISCONNECT 0x96 Message rate too high, 3.1.1 clients are closed (no code to
 * give) and STOMP clients an ERROR frame. Counted (publishRateLimited) and logged once per client
 * per 10 s, not per message.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { logged, nonce, run } from './helpers.js';

const MessageRateTooHigh = 0x96;

describe('publish rate, action pause (the default)', async () => {
  // 10 a second, 5 at once: 25 publishes take at least (25 - 5 - 1) / 10 s, however fast the machine.
  const b = await startBroker({ config: { limits: { publishRate: 10, publishBurst: 5 } } });
  const stats = b.broker.core.stats;
  const MIN_MS = 1500;

  it('MQTT 5 (MQTT.js): 25 QoS 1 publishes sent at once are all acknowledged and delivered in order, paced to the rate', async () => {
    const n = nonce();
    const sub = await connect(b.port);
    await sub.subscribeAsync(`${n}/#`, { qos: 1 });
    const pub = await connect(b.port);
    const before = stats.publishRateLimited;
    const started = Date.now();
    await Promise.all(Array.from({ length: 25 }, (_, i) => pub.publishAsync(`${n}/m`, `p${i}`, { qos: 1 })));
    expect(Date.now() - started).toBeGreaterThanOrEqual(MIN_MS);
    await until(() => sub.received.length === 25);
    expect(sub.received.map((r) => r.payload.toString())).toEqual(Array.from({ length: 25 }, (_, i) => `p${i}`));
    expect(stats.publishRateLimited - before).toBeGreaterThan(0);
    expect(pub.connected).toBe(true);
    // One line for the whole burst.
    expect(logged(b, 'publish rate limit reached', { clientId: pub.options.clientId })).toEqual([expect.objectContaining({ rate: 10, burst: 5, action: 'pause' })]);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('MQTT 3.1.1 (mosquitto_pub --repeat 25): slowed down, not cut off; everything arrives', async () => {
    const n = nonce();
    const sub = await connect(b.port);
    await sub.subscribeAsync(`${n}/#`, { qos: 1 });
    const started = Date.now();
    const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b.port), '-V', 'mqttv311', '-q', '1', '-t', `${n}/m`, '-m', 'x', '--repeat', '25', '--repeat-delay', '0'], 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(MIN_MS);
    await until(() => sub.received.length === 25);
    await sub.endAsync();
  });

  it('STOMP: 25 SEND frames written at once all get their RECEIPT, paced to the rate', async () => {
    const n = nonce();
    const c = await StompRaw.connect(b.stompPort);
    const session = hdr(await c.handshake({ 'accept-version': '1.2', host: 'junction' }), 'session');
    const started = Date.now();
    for (let i = 0; i < 25; i++) c.send('SEND', { destination: `/topic/${n}`, receipt: `r${i}` }, `s${i}`);
    for (let i = 0; i < 25; i++) await c.receipt(`r${i}`, 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(MIN_MS);
    expect(logged(b, 'publish rate limit reached', { session })).toHaveLength(1);
    c.socket.destroy();
  });
});

describe('publish rate, action disconnect', async () => {
  const b = await startBroker({ config: { limits: { publishRate: 5, publishBurst: 5, publishRateAction: 'disconnect' } } });
  const stats = b.broker.core.stats;

  it('MQTT 5: DISCONNECT 0x96 Message rate too high once past the burst', async () => {
    const before = stats.publishRateLimited;
    const c = await connect(b.port);
    const disconnect = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
    for (let i = 0; i < 20; i++) c.publish(`rate/${nonce()}`, 'x', { qos: 0 });
    expect(await disconnect).toBe(MessageRateTooHigh);
    expect(stats.publishRateLimited - before).toBe(1);
    expect(logged(b, 'client disconnected', { clientId: c.options.clientId })[0]).toMatchObject({ code: 'MessageRateTooHigh', reason: 'more than 5 PUBLISH a second' });
  });

  it('MQTT 3.1.1: closed (3.1.1 has no reason code)', async () => {
    const c = await RawClient.connect(b.port, 4);
    await c.handshake();
    for (let i = 0; i < 20; i++) c.send({ cmd: 'publish', topic: 'rate/v4', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
    await c.waitClosed();
    expect(c.packets.filter((p) => p.cmd !== 'connack')).toEqual([]);
  });

  it('STOMP: ERROR "message rate too high", then closed', async () => {
    const c = await StompRaw.open(b.stompPort);
    for (let i = 0; i < 20; i++) c.send('SEND', { destination: '/topic/rate/stomp' }, 'x');
    const err = await c.expectError();
    expect(hdr(err, 'message')).toBe('message rate too high');
    expect(err.body.toString()).toMatch(/more than 5 SEND frames a second/);
  });
});
