/**
 * A subscriber that stops reading (Aedes' drainTimeout lesson): what waits for it is bounded by
 * limits.outputBufferSize (64 KiB here) plus the kernel's buffers, QoS 0 messages beyond that are
 * dropped (counted as qos0Dropped and logged per burst), and once its output has stayed full for
 * limits.drainTimeout (2 s here) without the client reading a byte, the broker closes it, logs
 * "slow consumer disconnected" and counts slowConsumers. Over TCP, WebSocket and STOMP alike.
 * Meanwhile the publisher's acknowledgements and a reading subscriber never wait for it, and a
 * subscriber that reads slowly but keeps reading is not cut off.
 */
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { WsRaw } from '../listeners/ws-client.js';
import { logged, nonce } from './helpers.js';

const PAYLOAD = Buffer.alloc(256 * 1024, 's');
/** The most the flood may take: far beyond the output limit plus loopback kernel buffers. */
const MAX_MESSAGES = 320; // 80 MiB

describe('slow consumers', async () => {
  const b = await startBroker({ config: { limits: { outputBufferSize: 65536, drainTimeout: 2, dropLogInterval: 1 } } });
  const stats = b.broker.core.stats;

  it('stalled TCP, WebSocket and STOMP subscribers are disconnected after the drain timeout; nobody else waits for them', async () => {
    const topic = `slow/${nonce()}`;
    const before = { slow: stats.slowConsumers, qos0: stats.qos0Dropped };

    // Three subscribers that stop reading.
    const tcpId = `slow-tcp-${nonce()}`;
    const tcp = await RawClient.connect(b.port, 5);
    await tcp.handshake({ clientId: tcpId, keepalive: 0 });
    tcp.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await tcp.next('suback');
    tcp.socket.pause();

    const wsId = `slow-ws-${nonce()}`;
    const ws = await WsRaw.connect(`ws://127.0.0.1:${b.httpPort}/mqtt`, ['mqtt']);
    ws.send(WsRaw.encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: wsId, keepalive: 0 }));
    await ws.next('connack');
    ws.send(WsRaw.encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
    await ws.next('suback');
    const wsSocket = (ws.ws as unknown as { _socket: net.Socket })._socket;
    wsSocket.pause();

    const stomp = await StompRaw.connect(b.stompPort);
    const stompId = hdr(await stomp.handshake({ 'accept-version': '1.2', host: 'junction', 'heart-beat': '0,0' }), 'session')!;
    await stomp.subscribe({ id: '1', destination: `/topic/${topic}` });
    stomp.socket.pause();

    // One that reads, slowly: a little every 200 ms.
    const sipping = await RawClient.connect(b.port, 5);
    await sipping.handshake({ keepalive: 0 });
    sipping.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await sipping.next('suback');
    sipping.socket.pause();
    const sip = setInterval(() => {
      sipping.socket.resume();
      setTimeout(() => sipping.socket.pause(), 20);
    }, 200);

    // And one that reads everything, at QoS 1.
    const fast = await connect(b.port);
    await fast.subscribeAsync(topic, { qos: 1 });

    const pub = await connect(b.port);
    let sent = 0;
    try {
      // Until the stalled ones are gone: the kernel's buffers fill first, then the clock runs.
      while (stats.slowConsumers - before.slow < 3 && sent < MAX_MESSAGES) {
        // Acknowledged at once: the publisher never waits for the stalled ones.
        await Promise.all(Array.from({ length: 8 }, () => pub.publishAsync(topic, PAYLOAD, { qos: 1 })));
        sent += 8;
        await new Promise((r) => setTimeout(r, 20));
      }
      await until(() => stats.slowConsumers - before.slow === 3, 10_000, 'the three stalled subscribers disconnected');
      await until(() => fast.received.length === sent, 30_000, 'the reading subscriber got everything');
    } finally {
      clearInterval(sip);
    }
    expect(stats.qos0Dropped - before.qos0).toBeGreaterThan(0);

    // Logged once each, with the reason.
    const lines = logged(b, 'slow consumer disconnected');
    expect(lines.filter((l) => l['clientId'] === tcpId)).toHaveLength(1);
    expect(lines.filter((l) => l['clientId'] === wsId)).toHaveLength(1);
    expect(lines.filter((l) => l['session'] === stompId)).toHaveLength(1);
    expect(lines[0]?.['reason']).toBe('nothing read for 2 s with the output buffer full');
    // Their dropped QoS 0 messages: one warning when the drops began, a total when they ended.
    expect(logged(b, 'dropping messages for a client', { clientId: tcpId })).toEqual([expect.objectContaining({ reason: 'socket-full' })]);
    await until(() => logged(b, 'messages dropped for a client', { clientId: tcpId }).length === 1, 5000, 'the drop summary');

    // The stalled sockets are closed under them; the slow reader is still connected.
    tcp.socket.resume();
    await tcp.waitClosed(5000);
    wsSocket.resume();
    await ws.closed(5000);
    stomp.socket.resume();
    await stomp.waitClosed(5000);
    expect(sipping.closed).toBe(false);
    expect(fast.connected).toBe(true);
    sipping.end();
    await Promise.all([fast.endAsync(), pub.endAsync()]);
  }, 90_000);
});
