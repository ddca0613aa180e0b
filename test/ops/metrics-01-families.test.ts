/**
 * Metrics (operations.md "Metrics"): GET /metrics serves exactly the spec's junction_* families
 * plus prom-client's process metrics, in text format 0.0.4, with every label set present at 0
 * from the start, labels only from closed sets, and nothing promtool objects to beyond the three
 * known nodejs_active_*_total findings.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect } from '../helpers/mqtt.js';
import { StompRaw } from '../helpers/stomp.js';
import { key, run, scrape, SPEC_FAMILIES, v } from './metrics-helpers.js';

/** promtool's findings on prom-client 15.1.3's default metrics (operations.md). */
const KNOWN_FINDINGS = [
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
];

describe('metrics: GET /metrics families and labels', async () => {
  const tb = await startBroker();
  const fresh = await scrape(tb);

  it('answers 200 in Prometheus text format 0.0.4, without a token by default', () => {
    expect(fresh.status).toBe(200);
    expect(fresh.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(fresh.text).not.toContain('# EOF'); // not OpenMetrics
  });

  it('has exactly the junction_* families of the spec, each with its type', () => {
    const junction = Object.fromEntries([...fresh.types].filter(([n]) => n.startsWith('junction_')));
    expect(junction).toEqual(SPEC_FAMILIES);
  });

  it("has prom-client's default process metrics unchanged (31 families)", () => {
    const other = [...fresh.types.keys()].filter((n) => !n.startsWith('junction_'));
    expect(other.length).toBe(31);
    expect(other).toEqual(expect.arrayContaining(['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']));
  });

  it('initialises every label set at 0 at start', () => {
    const zero = (name: string, labels: Record<string, string> = {}): void => expect(v(fresh, name, labels), key(name, labels)).toBe(0);
    for (const l of ['mqtt', 'stomp', 'http']) {
      for (const reason of ['max_connections', 'bad_credentials', 'not_authorized', 'banned', 'unsupported_protocol', 'client_id_rejected', 'tls_handshake', 'draining']) {
        zero('junction_connections_rejected_total', { listener: l, reason });
      }
    }
    // mqtt and stomp listeners speak their protocol; the http listener both (WebSocket).
    for (const [listener, protocol] of [['mqtt', 'mqtt'], ['stomp', 'stomp'], ['http', 'mqtt'], ['http', 'stomp']] as const) {
      zero('junction_connections_opened_total', { listener, protocol });
      zero('junction_bytes_received_total', { listener, protocol });
      zero('junction_bytes_sent_total', { listener, protocol });
      for (const reason of ['client_disconnect', 'keepalive_timeout', 'protocol_error', 'socket_error', 'kicked', 'takeover', 'auth_revoked', 'slow_consumer', 'server_shutdown']) {
        zero('junction_connections_closed_total', { listener, protocol, reason });
      }
      for (const version of protocol === 'mqtt' ? ['3.1', '3.1.1', '5'] : ['1.0', '1.1', '1.2']) zero('junction_connections', { listener, protocol, version });
    }
    for (const protocol of ['mqtt', 'stomp', 'http']) for (const qos of ['0', '1', '2']) zero('junction_messages_received_total', { protocol, qos });
    for (const protocol of ['mqtt', 'stomp']) {
      for (const qos of ['0', '1', '2']) zero('junction_messages_delivered_total', { protocol, qos });
      zero('junction_messages_redelivered_total', { protocol });
    }
    for (const reason of ['no_subscribers', 'queue_full', 'inflight_full', 'expired', 'too_large', 'not_authorized', 'qos0_offline', 'max_length']) {
      zero('junction_messages_dropped_total', { reason });
    }
    for (const reason of ['rejected', 'expired', 'max_deliveries', 'max_length']) zero('junction_messages_dead_lettered_total', { reason });
    for (const action of ['publish', 'subscribe', 'deliver']) zero('junction_authorization_denied_total', { action });
    for (const kind of ['exact', 'wildcard', 'shared']) zero('junction_subscriptions', { kind });
    for (const state of ['ready', 'unacked', 'delayed']) zero('junction_queue_messages', { state });
    for (const kind of ['normal', 'dlq']) zero('junction_queues', { kind });
    for (const result of ['success', 'failure']) zero('junction_config_reloads_total', { result });
    for (const type of ['connect', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'unsubscribe', 'pingreq', 'disconnect', 'auth']) {
      zero('junction_packets_received_total', { protocol: 'mqtt', type });
    }
    for (const type of ['connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'suback', 'unsuback', 'pingresp', 'disconnect', 'auth']) {
      zero('junction_packets_sent_total', { protocol: 'mqtt', type });
    }
    for (const type of ['connect', 'stomp', 'send', 'subscribe', 'unsubscribe', 'ack', 'nack', 'begin', 'commit', 'abort', 'disconnect']) {
      zero('junction_packets_received_total', { protocol: 'stomp', type });
    }
    for (const type of ['connected', 'message', 'receipt', 'error']) zero('junction_packets_sent_total', { protocol: 'stomp', type });
    zero('junction_message_delivery_latency_seconds_count', { qos: '1' });
    zero('junction_publish_ack_latency_seconds_count', { protocol: 'stomp', qos: '1' });
    expect([...fresh.values.keys()].some((k) => k.startsWith('junction_build_info{') && k.includes(`node_version="${process.version}"`))).toBe(true);
    expect(v(fresh, 'junction_config_last_reload_successful')).toBe(1);
  });

  it('histogram buckets are the spec ones', () => {
    const les = (name: string, labels: Record<string, string> = {}): string[] =>
      [...fresh.values.keys()]
        .filter((k) => k.startsWith(`${name}_bucket{`) && Object.entries(labels).every(([a, b]) => k.includes(`${a}="${b}"`)))
        .map((k) => /le="([^"]+)"/.exec(k)![1]!);
    expect(les('junction_message_delivery_latency_seconds', { qos: '0' })).toEqual(['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '+Inf']);
    expect(les('junction_store_commit_duration_seconds')).toHaveLength(13);
    expect(les('junction_store_commit_duration_seconds')[0]).toBe('0.0001');
    expect(les('junction_store_commit_duration_seconds').at(-2)).toBe('1');
    expect(les('junction_store_batch_operations')).toEqual(['1', '2', '5', '10', '20', '50', '100', '200', '500', '1000', '+Inf']);
    expect(les('junction_publish_ack_latency_seconds', { protocol: 'mqtt', qos: '1' })).toHaveLength(13);
  });

  it('never labels a series with a client id, user, topic or queue, and promtool finds only the 3 known problems', async () => {
    const secret = 'clientid-b7f3e1';
    const c = await connect(tb.port, { clientId: secret, username: 'user-x9k2' });
    await c.subscribeAsync('topic-q4z8/#', { qos: 1 });
    await c.publishAsync('topic-q4z8/a', 'x', { qos: 1 });
    await c.publishAsync('$queue/queue-m3p7', 'y', { qos: 1 });
    const s = await StompRaw.open(tb.stompPort, '1.2', { 'client-id': 'stomp-secret-5t2' });
    await s.publish({ destination: '/queue/queue-r8w1' }, 'z');
    const after = await scrape(tb);
    for (const word of [secret, 'user-x9k2', 'topic-q4z8', 'queue-m3p7', 'queue-r8w1', 'stomp-secret-5t2']) expect(after.text).not.toContain(word);
    const r = await run('promtool', ['check', 'metrics'], after.text);
    const findings = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
    expect(findings.sort()).toEqual(KNOWN_FINDINGS);
    // The junction_* families alone: not a single finding.
    const own = after.text
      .split('\n\n')
      .filter((block) => block.includes('# TYPE junction_'))
      .join('\n\n');
    const mine = await run('promtool', ['check', 'metrics'], own + '\n');
    expect(mine.stdout + mine.stderr).toBe('');
    expect(mine.code).toBe(0);
    s.end();
    await c.endAsync();
  });
});

describe('metrics: switches', () => {
  it('metrics.enabled: false: /metrics answers 404 and latencies are not observed', async () => {
    const tb = await startBroker({ config: { metrics: { enabled: false } } });
    const r = await scrape(tb);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text)).toEqual({ error: { code: 'METRICS_DISABLED', message: expect.any(String) as unknown } });
    const c = await connect(tb.port);
    await c.subscribeAsync('off/t', { qos: 1 });
    await c.publishAsync('off/t', 'x', { qos: 1 });
    expect(tb.broker.core.stats.ackLatency[1]!.count).toBe(0);
    expect(tb.broker.core.stats.deliveryLatency[1].count).toBe(0);
    await c.endAsync();
    await tb.stop();
  });

  it('metrics.auth: token: 401 with WWW-Authenticate without a token, 200 with any admin token', async () => {
    const { hashToken, newToken } = await import('../../src/server/http/auth.js');
    const token = newToken();
    const tb = await startBroker({ config: { metrics: { auth: 'token', perObject: true }, admin: { tokens: [{ name: 'prom', sha256: hashToken(token), role: 'viewer' }] } } });
    const none = await scrape(tb);
    expect(none.status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${tb.httpPort}/metrics`)).headers.get('www-authenticate')).toBe('Bearer realm="junction"');
    expect((await scrape(tb, '/metrics', { authorization: 'Bearer nope' })).status).toBe(401);
    const ok = await scrape(tb, '/metrics', { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.types.get('junction_connections')).toBe('gauge');
    expect((await scrape(tb, '/metrics/per-object')).status).toBe(401);
    expect((await scrape(tb, '/metrics/per-object', { authorization: `Basic ${Buffer.from(`prom:${token}`).toString('base64')}` })).status).toBe(200);
    await tb.stop();
  });

  it('metrics.deliveryLatencySampleRate: 0 observes no delivery or ack latency', async () => {
    const tb = await startBroker({ config: { metrics: { deliveryLatencySampleRate: 0 } } });
    const c = await connect(tb.port);
    await c.subscribeAsync('rate0/t', { qos: 1 });
    for (let i = 0; i < 5; i++) await c.publishAsync('rate0/t', 'x', { qos: 1 });
    const s = await scrape(tb);
    expect(v(s, 'junction_messages_delivered_total', { protocol: 'mqtt', qos: '1' })).toBe(5);
    expect(v(s, 'junction_message_delivery_latency_seconds_count', { qos: '1' })).toBe(0);
    await c.endAsync();
    await tb.stop();
  });
});
