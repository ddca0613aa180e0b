/**
 * Metrics: exact counter deltas with real clients (MQTT.js, mosquitto_pub, raw MQTT packets, raw
 * STOMP frames). Each test scrapes before and after and checks the difference, so tests sharing
 * the broker do not disturb each other's series (each uses its own topics and clients, and waits
 * until what it counts has happened).
 */
import { spawn } from 'node:child_process';
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, nonce } from '../helpers/stomp.js';
import { delta, scrape, v, type Scrape } from './metrics-helpers.js';

/** Scrapes until `ok(s)` holds (a close is counted when the broker sees the socket go). */
async function scrapeUntil(tb: Parameters<typeof scrape>[0], ok: (s: Scrape) => boolean, what: string): Promise<Scrape> {
  let s = await scrape(tb);
  const deadline = Date.now() + 5000;
  while (!ok(s)) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
    s = await scrape(tb);
  }
  return s;
}

describe('metrics: counter deltas', async () => {
  const tb = await startBroker({ config: { sys: { interval: 0 } } });

  it('1000 QoS 1 publishes to one subscriber: received, delivered, packets, acks and both latencies count exactly 1000', async () => {
    const sub = await connect(tb.port, { clientId: `m-sub-${nonce()}` });
    await sub.subscribeAsync('m/exact/+', { qos: 1 });
    const pub = await connect(tb.port, { clientId: `m-pub-${nonce()}` });
    const before = await scrape(tb);
    await Promise.all(Array.from({ length: 1000 }, (_, i) => pub.publishAsync(`m/exact/${i % 7}`, `p${i}`, { qos: 1 })));
    await until(() => sub.received.length === 1000, 10_000, '1000 messages');
    const after = await scrapeUntil(tb, (s) => delta(before, s, 'junction_packets_received_total', { protocol: 'mqtt', type: 'puback' }) === 1000, 'the subscriber acks');
    const d = (name: string, labels: Record<string, string> = {}): number => delta(before, after, name, labels);
    expect(d('junction_messages_received_total', { protocol: 'mqtt', qos: '1' })).toBe(1000);
    expect(d('junction_messages_received_total', { protocol: 'mqtt', qos: '0' })).toBe(0);
    expect(d('junction_messages_delivered_total', { protocol: 'mqtt', qos: '1' })).toBe(1000);
    expect(d('junction_packets_received_total', { protocol: 'mqtt', type: 'publish' })).toBe(1000);
    expect(d('junction_packets_sent_total', { protocol: 'mqtt', type: 'publish' })).toBe(1000);
    expect(d('junction_packets_sent_total', { protocol: 'mqtt', type: 'puback' })).toBe(1000);
    expect(d('junction_publish_ack_latency_seconds_count', { protocol: 'mqtt', qos: '1' })).toBe(1000);
    expect(d('junction_message_delivery_latency_seconds_count', { qos: '1' })).toBe(1000);
    expect(d('junction_messages_dropped_total', { reason: 'no_subscribers' })).toBe(0);
    // The +Inf bucket holds every observation.
    expect(d('junction_publish_ack_latency_seconds_bucket', { protocol: 'mqtt', qos: '1', le: '+Inf' })).toBe(1000);
    expect(d('junction_bytes_received_total', { listener: 'mqtt', protocol: 'mqtt' })).toBeGreaterThan(1000 * 10);
    await sub.endAsync();
    await pub.endAsync();
  });

  it('mosquitto_pub: QoS 0 and 2 publishes by version; no subscriber counts no_subscribers drops', async () => {
    const topic = `m/mosq/${nonce()}`;
    const before = await scrape(tb);
    const pub = (qos: string, version: string): Promise<number> =>
      new Promise((resolve) => {
        const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-V', version, '-q', qos, '-t', topic, '-m', 'x', '--repeat', '5']);
        p.on('exit', (code) => resolve(code ?? 1));
      });
    expect(await pub('0', 'mqttv311')).toBe(0);
    expect(await pub('2', 'mqttv5')).toBe(0);
    const after = await scrapeUntil(tb, (s) => delta(before, s, 'junction_connections_closed_total', { listener: 'mqtt', protocol: 'mqtt', reason: 'client_disconnect' }) === 2, 'both closes');
    const d = (name: string, labels: Record<string, string> = {}): number => delta(before, after, name, labels);
    expect(d('junction_messages_received_total', { protocol: 'mqtt', qos: '0' })).toBe(5);
    expect(d('junction_messages_received_total', { protocol: 'mqtt', qos: '2' })).toBe(5);
    expect(d('junction_messages_dropped_total', { reason: 'no_subscribers' })).toBe(10);
    expect(d('junction_packets_sent_total', { protocol: 'mqtt', type: 'pubrec' })).toBe(5);
    expect(d('junction_packets_received_total', { protocol: 'mqtt', type: 'pubrel' })).toBe(5);
    expect(d('junction_packets_sent_total', { protocol: 'mqtt', type: 'pubcomp' })).toBe(5);
    expect(d('junction_publish_ack_latency_seconds_count', { protocol: 'mqtt', qos: '2' })).toBe(5);
    expect(d('junction_connections_opened_total', { listener: 'mqtt', protocol: 'mqtt' })).toBe(2);
    expect(d('junction_packets_received_total', { protocol: 'mqtt', type: 'connect' })).toBe(2);
    expect(d('junction_packets_received_total', { protocol: 'mqtt', type: 'disconnect' })).toBe(2);
  });

  it('connections by version; closes by reason: client_disconnect, socket_error, takeover, keepalive_timeout, protocol_error', async () => {
    const before = await scrape(tb);
    const id = `m-conn-${nonce()}`;
    const v5 = await connect(tb.port, { clientId: `${id}-a` });
    const v4 = await connect(tb.port, { clientId: `${id}-b`, protocolVersion: 4 });
    const v3 = await RawClient.connect(tb.port, 3);
    await v3.handshake({ protocolId: 'MQIsdp', protocolVersion: 3, clientId: `${id}-c` });
    const open = await scrape(tb);
    expect(delta(before, open, 'junction_connections', { listener: 'mqtt', protocol: 'mqtt', version: '5' })).toBe(1);
    expect(delta(before, open, 'junction_connections', { listener: 'mqtt', protocol: 'mqtt', version: '3.1.1' })).toBe(1);
    expect(delta(before, open, 'junction_connections', { listener: 'mqtt', protocol: 'mqtt', version: '3.1' })).toBe(1);
    expect(delta(before, open, 'junction_connections_opened_total', { listener: 'mqtt', protocol: 'mqtt' })).toBe(3);

    await v5.endAsync(); // DISCONNECT
    v3.socket.destroy(); // no DISCONNECT
    const taker = await connect(tb.port, { clientId: `${id}-b`, protocolVersion: 4 }); // takes over v4
    const idle = await RawClient.connect(tb.port, 4);
    await idle.handshake({ clientId: `${id}-d`, keepalive: 1 }); // then silent: 1.5 s keep-alive timeout
    const bad = await RawClient.connect(tb.port, 4);
    await bad.handshake({ clientId: `${id}-e` });
    bad.send(Buffer.from([0x30, 0x02, 0x00, 0x00])); // PUBLISH with an empty topic name: protocol error
    const closed = (reason: string): ((s: Scrape) => number) => (s) => delta(before, s, 'junction_connections_closed_total', { listener: 'mqtt', protocol: 'mqtt', reason });
    const after = await scrapeUntil(tb, (s) => closed('keepalive_timeout')(s) === 1 && closed('protocol_error')(s) === 1 && closed('takeover')(s) === 1, 'the closes');
    expect(closed('client_disconnect')(after)).toBe(1);
    expect(closed('socket_error')(after)).toBe(1);
    expect(closed('takeover')(after)).toBe(1);
    expect(closed('keepalive_timeout')(after)).toBe(1);
    expect(closed('protocol_error')(after)).toBe(1);
    // Open now: the takeover's new connection only.
    expect(delta(before, after, 'junction_connections', { listener: 'mqtt', protocol: 'mqtt', version: '3.1.1' })).toBe(1);
    expect(delta(before, after, 'junction_connections', { listener: 'mqtt', protocol: 'mqtt', version: '5' })).toBe(0);
    expect(delta(before, after, 'junction_connections_opened_total', { listener: 'mqtt', protocol: 'mqtt' })).toBe(6);
    await taker.endAsync();
  }, 15_000);

  it('rejected: an unsupported protocol level, an empty client id on 3.1.1 without clean session', async () => {
    const before = await scrape(tb);
    const a = await RawClient.connect(tb.port, 4);
    a.send(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x09, 0x02, 0x00, 0x3c, 0x00, 0x00])); // level 9
    await a.waitClosed();
    const b = await RawClient.connect(tb.port, 4);
    b.send(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x3c, 0x00, 0x00])); // clean session 0, empty id
    expect((await b.next('connack')).returnCode).toBe(2);
    const after = await scrape(tb);
    expect(delta(before, after, 'junction_connections_rejected_total', { listener: 'mqtt', reason: 'unsupported_protocol' })).toBe(1);
    expect(delta(before, after, 'junction_connections_rejected_total', { listener: 'mqtt', reason: 'client_id_rejected' })).toBe(1);
    expect(delta(before, after, 'junction_connections_opened_total', { listener: 'mqtt', protocol: 'mqtt' })).toBe(0);
  });

  it('sessions online and offline, qos0_offline drops, expired sessions', async () => {
    const id = `m-sess-${nonce()}`;
    const c = await connect(tb.port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    await c.subscribeAsync(`m/sess/${id}`, { qos: 1 });
    const online = await scrape(tb);
    await c.endAsync();
    const offline = await scrapeUntil(tb, (s) => delta(online, s, 'junction_sessions', { state: 'offline' }) === 1, 'the session offline');
    expect(delta(online, offline, 'junction_sessions', { state: 'online' })).toBe(-1);
    const p = await connect(tb.port);
    await p.publishAsync(`m/sess/${id}`, 'q0', { qos: 0 });
    await p.publishAsync(`m/sess/${id}`, 'q1', { qos: 1 });
    const queued = await scrape(tb);
    expect(delta(offline, queued, 'junction_messages_dropped_total', { reason: 'qos0_offline' })).toBe(1);
    expect(delta(offline, queued, 'junction_session_queue_messages')).toBe(1);
    const expired = await scrapeUntil(tb, (s) => delta(offline, s, 'junction_sessions_expired_total') === 1, 'the expiry');
    expect(delta(online, expired, 'junction_sessions', { state: 'offline' })).toBe(0);
    expect(delta(offline, expired, 'junction_session_queue_messages')).toBe(0);
    await p.endAsync();
  }, 10_000);

  it('subscriptions by kind and distinct topic filters', async () => {
    const n = nonce();
    const before = await scrape(tb);
    const a = await connect(tb.port);
    const b = await connect(tb.port);
    await a.subscribeAsync([`m/sub/${n}`, `m/sub/${n}/+`, `$share/g/m/sub/${n}/#`], { qos: 0 });
    await b.subscribeAsync([`m/sub/${n}`, `$share/g/m/sub/${n}/#`], { qos: 0 });
    const after = await scrape(tb);
    expect(delta(before, after, 'junction_subscriptions', { kind: 'exact' })).toBe(2);
    expect(delta(before, after, 'junction_subscriptions', { kind: 'wildcard' })).toBe(1);
    expect(delta(before, after, 'junction_subscriptions', { kind: 'shared' })).toBe(2);
    // m/sub/n, m/sub/n/+ and the one shared group's filter.
    expect(delta(before, after, 'junction_topic_filters')).toBe(3);
    await a.endAsync();
    await b.endAsync();
    const gone = await scrapeUntil(tb, (s) => delta(before, s, 'junction_subscriptions', { kind: 'shared' }) === 0, 'the unsubscribes');
    expect(delta(before, gone, 'junction_topic_filters')).toBe(0);
    expect(delta(before, gone, 'junction_subscriptions', { kind: 'exact' })).toBe(0);
  });

  it('STOMP: persistent SENDs with receipts, deliveries to ack:auto and client subscribers, frames, queues and dead letters', async () => {
    const n = nonce();
    const before = await scrape(tb);
    const auto = await StompRaw.open(tb.stompPort);
    await auto.subscribe({ destination: `/topic/m/stomp/${n}`, id: 'a', ack: 'auto' });
    const client = await StompRaw.open(tb.stompPort, '1.1');
    await client.subscribe({ destination: `/topic/m/stomp/${n}`, id: 'c', ack: 'client' });
    const sender = await StompRaw.open(tb.stompPort, '1.0');
    for (let i = 0; i < 3; i++) await sender.publish({ destination: `/topic/m/stomp/${n}`, persistent: 'true' }, `s${i}`);
    await sender.publish({ destination: `/topic/m/stomp/${n}` }, 'plain');
    await auto.messages(4);
    await client.messages(4);
    // A queue message NACKed without requeue: dead-lettered as rejected.
    const consumer = await StompRaw.open(tb.stompPort);
    await consumer.subscribe({ destination: `/queue/m-q-${n}`, id: 'q', ack: 'client-individual' });
    await sender.publish({ destination: `/queue/m-q-${n}` }, 'bad');
    const [m] = await consumer.messages(1);
    consumer.send('NACK', { id: m!.headers.find(([k]) => k === 'ack')![1], requeue: 'false' });
    const after = await scrapeUntil(tb, (s) => delta(before, s, 'junction_messages_dead_lettered_total', { reason: 'rejected' }) === 1, 'the dead letter');
    const d = (name: string, labels: Record<string, string> = {}): number => delta(before, after, name, labels);
    expect(d('junction_connections', { listener: 'stomp', protocol: 'stomp', version: '1.2' })).toBe(2);
    expect(d('junction_connections', { listener: 'stomp', protocol: 'stomp', version: '1.1' })).toBe(1);
    expect(d('junction_connections', { listener: 'stomp', protocol: 'stomp', version: '1.0' })).toBe(1);
    expect(d('junction_messages_received_total', { protocol: 'stomp', qos: '1' })).toBe(3);
    expect(d('junction_messages_received_total', { protocol: 'stomp', qos: '0' })).toBe(2);
    // ack:auto gets 4 at QoS 0; ack:client gets the 3 persistent ones at QoS 1 and `plain` at 0; the queue consumer 1 at QoS 1.
    expect(d('junction_messages_delivered_total', { protocol: 'stomp', qos: '0' })).toBe(5);
    expect(d('junction_messages_delivered_total', { protocol: 'stomp', qos: '1' })).toBe(4);
    expect(d('junction_packets_received_total', { protocol: 'stomp', type: 'send' })).toBe(5);
    expect(d('junction_packets_received_total', { protocol: 'stomp', type: 'nack' })).toBe(1);
    expect(d('junction_packets_sent_total', { protocol: 'stomp', type: 'message' })).toBe(9);
    expect(d('junction_packets_sent_total', { protocol: 'stomp', type: 'connected' })).toBe(4);
    expect(d('junction_publish_ack_latency_seconds_count', { protocol: 'stomp', qos: '1' })).toBe(3);
    expect(d('junction_publish_ack_latency_seconds_count', { protocol: 'stomp', qos: '0' })).toBe(2);
    expect(d('junction_queues', { kind: 'normal' })).toBe(1);
    expect(d('junction_queues', { kind: 'dlq' })).toBe(1);
    expect(d('junction_queue_messages', { state: 'ready' })).toBe(1); // the dead letter, waiting in DLQ.m-q-n
    expect(d('junction_queue_consumers')).toBe(1);
    expect(v(after, 'junction_bytes_received_total', { listener: 'stomp', protocol: 'stomp' })).toBeGreaterThan(0);
    for (const c of [auto, client, sender, consumer]) c.send('DISCONNECT', { receipt: 'bye' });
    const closed = await scrapeUntil(
      tb,
      (s) => delta(before, s, 'junction_connections_closed_total', { listener: 'stomp', protocol: 'stomp', reason: 'client_disconnect' }) === 4,
      'the STOMP disconnects',
    );
    expect(delta(before, closed, 'junction_connections_opened_total', { listener: 'stomp', protocol: 'stomp' })).toBe(4);
  });

  it('redelivered: a QoS 1 message resent with DUP after a reconnect', async () => {
    const id = `m-redel-${nonce()}`;
    const raw = await RawClient.connect(tb.port, 5);
    await raw.handshake({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `m/redel/${id}`, qos: 1 }] });
    await raw.next('suback');
    const before = await scrape(tb);
    const p = await connect(tb.port);
    await p.publishAsync(`m/redel/${id}`, 'again', { qos: 1 });
    await raw.next('publish'); // not acknowledged
    raw.socket.destroy();
    const back = await RawClient.connect(tb.port, 5);
    await back.handshake({ clientId: id, clean: false, properties: { sessionExpiryInterval: 0 } });
    const resent = (await back.next('publish')) as IPublishPacket;
    expect(resent.dup).toBe(true);
    const after = await scrape(tb);
    expect(delta(before, after, 'junction_messages_redelivered_total', { protocol: 'mqtt' })).toBe(1);
    expect(delta(before, after, 'junction_messages_delivered_total', { protocol: 'mqtt', qos: '1' })).toBe(2);
    expect(delta(before, after, 'junction_message_delivery_latency_seconds_count', { qos: '1' })).toBe(1); // first transmission only
    back.send({ cmd: 'puback', messageId: resent.messageId! });
    back.socket.destroy();
    await p.endAsync();
  });
});

describe('metrics: per-object endpoint', async () => {
  it('is 404 unless metrics.perObject; then per-queue depth, consumers and head age, capped at the deepest perObjectMaxQueues', async () => {
    const off = await startBroker();
    expect((await scrape(off, '/metrics/per-object')).status).toBe(404);
    await off.stop();
    const tb = await startBroker({ config: { metrics: { perObject: true, perObjectMaxQueues: 2 } } });
    const s = await StompRaw.open(tb.stompPort);
    for (const [q, n] of [['alpha', 1], ['beta', 3], ['gamma', 2]] as const) for (let i = 0; i < n; i++) await s.publish({ destination: `/queue/${q}` }, 'x');
    const sent = Date.now();
    const r = await scrape(tb, '/metrics/per-object');
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect([...r.types]).toEqual([
      ['junction_queue_messages', 'gauge'],
      ['junction_queue_consumers', 'gauge'],
      ['junction_queue_head_message_timestamp_seconds', 'gauge'],
    ]);
    // The two deepest: beta (3) and gamma (2); alpha is left out.
    expect(v(r, 'junction_queue_messages', { queue: 'beta', state: 'ready' })).toBe(3);
    expect(v(r, 'junction_queue_messages', { queue: 'gamma', state: 'ready' })).toBe(2);
    expect(v(r, 'junction_queue_consumers', { queue: 'beta' })).toBe(0);
    expect(r.text).not.toContain('alpha');
    const head = v(r, 'junction_queue_head_message_timestamp_seconds', { queue: 'beta' });
    expect(head).toBeLessThanOrEqual(sent / 1000);
    expect(head).toBeGreaterThan(sent / 1000 - 60);
    s.end();
    await tb.stop();
  });
});
