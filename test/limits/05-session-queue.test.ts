/**
 * What a session may hold for its client: mqtt.maxInflight unacknowledged deliveries, then a queue
 * of at most mqtt.maxQueuedMessages messages and limits.maxQueuedBytes payload bytes. Past those,
 * messages are dropped (the oldest, by default), counted (queueDropped) and logged per client and
 * burst: one warning when the drops start, one line with the totals when they stop (never one
 * line per message, never silent).
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { logged, nonce } from './helpers.js';

describe('session queue limits', async () => {
  const b = await startBroker({
    config: {
      mqtt: { maxQueuedMessages: 5, maxInflight: 3 },
      limits: { maxQueuedBytes: 4096, dropLogInterval: 1 },
    },
  });
  const stats = b.broker.core.stats;
  const sessions = b.broker.core.sessions;

  /** A persistent session subscribed to `topic`, now offline. */
  async function offline(clientId: string, topic: string): Promise<void> {
    const c = await connect(b.port, { clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
    await c.subscribeAsync(topic, { qos: 1 });
    await c.endAsync();
    await until(() => sessions.get(clientId)?.attached === false);
  }

  /** Reconnects and returns every payload the session had kept, in order. */
  async function drain(clientId: string, expected: number): Promise<string[]> {
    const c = await connect(b.port, { clientId, clean: false, properties: { sessionExpiryInterval: 0 } });
    await until(() => c.received.length >= expected, 5000, `${expected} messages`);
    const s = sessions.get(clientId)!;
    await until(() => s.queued === 0 && s.inflight.size === 0, 5000, 'the session emptied');
    await c.endAsync();
    return c.received.map((r) => r.payload.toString());
  }

  it('mqtt.maxQueuedMessages: the oldest are dropped; counted, and logged once per burst with the total', async () => {
    const n = nonce();
    const clientId = `q-${n}`;
    await offline(clientId, `${n}/#`);
    const before = stats.queueDropped;
    const pub = await connect(b.port);
    for (let i = 0; i < 12; i++) await pub.publishAsync(`${n}/m`, `m${i}`, { qos: 1 });
    expect(stats.queueDropped - before).toBe(7);
    expect(await drain(clientId, 5)).toEqual(['m7', 'm8', 'm9', 'm10', 'm11']);
    expect(logged(b, 'dropping messages for a client', { clientId })).toEqual([expect.objectContaining({ reason: 'queue-full' })]);
    await until(() => logged(b, 'messages dropped for a client', { clientId }).length === 1, 5000, 'the burst summary');
    expect(logged(b, 'messages dropped for a client', { clientId })[0]).toMatchObject({ dropped: 7, 'queue-full': 7 });
    await pub.endAsync();
  });

  it('limits.maxQueuedBytes: payload bytes are capped too; a message larger than the whole allowance is never queued', async () => {
    const n = nonce();
    const clientId = `qb-${n}`;
    await offline(clientId, `${n}/#`);
    const before = stats.queueDropped;
    const pub = await connect(b.port);
    // 1,000 bytes each: four fit in 4,096.
    for (let i = 0; i < 5; i++) await pub.publishAsync(`${n}/m`, `b${i}`.padEnd(1000, '.'), { qos: 1 });
    expect(stats.queueDropped - before).toBe(1);
    await pub.publishAsync(`${n}/m`, 'huge'.padEnd(5000, '.'), { qos: 1 });
    expect(stats.queueDropped - before).toBe(2);
    expect((await drain(clientId, 4)).map((p) => p.slice(0, 2))).toEqual(['b1', 'b2', 'b3', 'b4']);
    await until(() => logged(b, 'messages dropped for a client', { clientId }).length === 1, 5000, 'the burst summary');
    expect(logged(b, 'messages dropped for a client', { clientId })[0]).toMatchObject({ dropped: 2, 'queue-bytes': 2 });
    await pub.endAsync();
  });

  it('mqtt.maxInflight: a client that does not acknowledge has at most 3 QoS 1 messages in flight; each PUBACK lets one more go', async () => {
    const n = nonce();
    const sub = await RawClient.connect(b.port, 4);
    await sub.handshake();
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${n}/#`, qos: 1 }] });
    await sub.next('suback');
    const pub = await connect(b.port);
    for (let i = 0; i < 5; i++) await pub.publishAsync(`${n}/m`, `i${i}`, { qos: 1 });
    const first = (await sub.settle(300)).filter((p) => p.cmd === 'publish');
    expect(first).toHaveLength(3);
    sub.send({ cmd: 'puback', messageId: first[0]!.messageId! });
    const next = await sub.next('publish');
    expect(next.payload.toString()).toBe('i3');
    expect((await sub.settle(300)).filter((p) => p.cmd === 'publish')).toHaveLength(0);
    sub.end();
    await pub.endAsync();
  });
});
