/**
 * Backpressure: a subscriber that stops reading (over WebSocket or TCP) never makes the broker
 * buffer without bound. What the broker hands to that socket stops near the output limit (4 MiB)
 * plus what the kernel buffers; QoS 0 messages beyond it are dropped and counted (qos0Dropped);
 * QoS 1 messages wait in the session queue and all arrive once the subscriber reads again. A
 * subscriber that keeps reading (at QoS 1) gets everything meanwhile.
 */
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { WsRaw } from './ws-client.js';

const MiB = 1024 * 1024;
const PAYLOAD = Buffer.alloc(64 * 1024, 'p');
/** 48 MiB in all: far more than the output limit plus any kernel socket buffers on loopback. */
const COUNT = 768;
/** Bytes a stalled subscriber may have been handed: the 4 MiB limit, one batch over it, kernel buffers. */
const BOUND = 24 * MiB;

const nonce = (): string => Math.random().toString(36).slice(2, 10);

describe('backpressure', async () => {
  const b = await startBroker();
  const stats = b.broker.core.stats;

  /** Publishes COUNT messages at QoS 1 (acknowledged, so the broker has routed each one). */
  async function flood(topic: string): Promise<void> {
    const pub = await connect(b.port);
    for (let i = 0; i < COUNT; i += 32) {
      await Promise.all(Array.from({ length: Math.min(32, COUNT - i) }, () => pub.publishAsync(topic, PAYLOAD, { qos: 1 })));
    }
    await pub.endAsync();
  }

  const wsSocket = (c: WsRaw): net.Socket => (c.ws as unknown as { _socket: net.Socket })._socket;

  const stalled = {
    async websocket(topic: string, qos: 0 | 1): Promise<{ pause: () => void; resume: () => void; client: WsRaw }> {
      const c = await WsRaw.connect(`ws://127.0.0.1:${b.httpPort}/mqtt`, ['mqtt']);
      c.send(WsRaw.encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: `slow-ws-${nonce()}`, keepalive: 0 }));
      await c.next('connack');
      c.send(WsRaw.encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] }));
      await c.next('suback');
      return { pause: () => wsSocket(c).pause(), resume: () => wsSocket(c).resume(), client: c };
    },
    async tcp(topic: string): Promise<{ pause: () => void }> {
      const c = await RawClient.connect(b.port, 5);
      await c.handshake({ keepalive: 0 });
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
      await c.next('suback');
      return { pause: () => c.socket.pause() };
    },
  };

  for (const transport of ['websocket', 'tcp'] as const) {
    it(`a ${transport} subscriber that stops reading: bounded, QoS 0 beyond the limit dropped and counted; a reading subscriber gets all`, async () => {
      const topic = `bp/${transport}/${nonce()}`;
      const slow = transport === 'websocket' ? await stalled.websocket(topic, 0) : await stalled.tcp(topic);
      slow.pause();
      // At QoS 1, so that a busy machine slowing this reader down cannot make its copies droppable too.
      const fast = await connect(b.port);
      await fast.subscribeAsync(topic, { qos: 1 });
      const sentBefore = stats.bytesSent;
      const droppedBefore = stats.qos0Dropped;
      await flood(topic);
      await until(() => fast.received.length === COUNT, 20_000, 'the reading subscriber got everything');
      const toSlow = stats.bytesSent - sentBefore - COUNT * PAYLOAD.length;
      expect(toSlow).toBeLessThan(BOUND);
      expect(stats.qos0Dropped - droppedBefore).toBeGreaterThan(COUNT / 2);
      await fast.endAsync();
    }, 60_000);
  }

  it('QoS 1 to a stalled WebSocket subscriber waits in its session queue; all of it arrives once it reads again', async () => {
    const topic = `bp/queue/${nonce()}`;
    const slow = await stalled.websocket(topic, 1);
    slow.pause();
    const sentBefore = stats.bytesSent;
    const droppedBefore = stats.qos0Dropped + stats.queueDropped;
    await flood(topic);
    expect(stats.bytesSent - sentBefore).toBeLessThan(BOUND);
    slow.resume();
    // Acknowledge as they come, so the in-flight window moves on.
    const acked = new Set<number>();
    let received = 0;
    await until(
      () => {
        for (const p of slow.client.packets.splice(0)) {
          if (p.cmd !== 'publish') continue;
          received++;
          acked.add(p.messageId!);
          slow.client.send(WsRaw.encode({ cmd: 'puback', messageId: p.messageId! }));
        }
        return received === COUNT;
      },
      30_000,
      'every queued message',
    );
    expect(stats.qos0Dropped + stats.queueDropped).toBe(droppedBefore);
  }, 60_000);
});
