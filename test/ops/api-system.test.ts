/**
 * Admin API: overview, listeners, config (secrets redacted), reload (200 applied / 422 rejected),
 * publish (200 routed, 202 no subscribers, 400s; properties reach MQTT 5 and STOMP subscribers),
 * the SSE stream (`stats`, `client`, `reload` events) read with fetch(), stats history, and 503
 * while the broker drains.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { redact, toReloadReport } from '../../src/server/http/api/system.js';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { TOKENS, TOKEN_CONFIG, startApiBroker } from './api-helpers.js';

/** Reads SSE events from a fetch() body until `done` says so (or the time runs out). */
async function readEvents(res: Response, done: (events: Array<{ event: string; data: string }>) => boolean, timeoutMs = 5000): Promise<Array<{ event: string; data: string }>> {
  const reader = res.body!.getReader();
  const events: Array<{ event: string; data: string }> = [];
  let buf = '';
  const deadline = Date.now() + timeoutMs;
  while (!done(events)) {
    if (Date.now() > deadline) throw new Error(`timeout; events: ${events.map((e) => e.event).join(',')}`);
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += Buffer.from(value).toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) events.push({ event, data: data.join('\n') });
    }
  }
  return events;
}

describe('admin API: system', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'junction-api-'));
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, 'topic readwrite #\n');
  const { tb, api } = await startApiBroker({ config: { auth: { aclFile } } });
  const tag = `s${Date.now().toString(36)}`;

  it('overview: version, node, connections by protocol, sessions, subscriptions, retained, queues, rates, last reload', async () => {
    const c = await connect(tb.port, { clientId: `${tag}-ov` });
    await c.subscribeAsync(`${tag}/ov`, { qos: 1 });
    await c.publishAsync(`${tag}/ov/r`, 'r', { qos: 1, retain: true });
    await StompWire.connect(tb.stompPort);
    const r = await api.get('/api/v1/overview', TOKENS.viewer);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      node: tb.broker.config.node.name,
      uptimeSeconds: expect.any(Number),
      connections: { mqtt: expect.any(Number), stomp: expect.any(Number) },
      sessions: expect.any(Number),
      subscriptions: expect.any(Number),
      retained: expect.any(Number),
      queues: { count: expect.any(Number), ready: expect.any(Number), unacked: expect.any(Number), dlqMessages: expect.any(Number) },
      rates: { inPerSec: expect.any(Number), outPerSec: expect.any(Number) },
      lastReload: { ok: true },
    });
    expect(r.body.connections.mqtt).toBeGreaterThanOrEqual(1);
    expect(r.body.connections.stomp).toBeGreaterThanOrEqual(1);
    expect(r.body.subscriptions).toBeGreaterThanOrEqual(1);
    expect(r.body.retained).toBeGreaterThanOrEqual(1);
    expect('storeCommitP99Seconds' in r.body).toBe(true);
  });

  it('listeners: name, protocol, transport, bind, port, running, connections, tls', async () => {
    const r = await api.get('/api/v1/listeners');
    const byName = new Map((r.body.data as Array<Record<string, unknown>>).map((l) => [l['name'], l]));
    expect(byName.get('mqtt')).toMatchObject({ protocol: 'mqtt', transport: 'tcp', bind: '127.0.0.1', port: tb.port, running: true, tls: null });
    expect(byName.get('stomp')).toMatchObject({ protocol: 'stomp', transport: 'tcp', port: tb.stompPort });
    expect(byName.get('http')).toMatchObject({ protocol: 'http', transport: 'ws', port: tb.httpPort, websocketPaths: ['/mqtt', '/stomp'] });
    expect(byName.get('mqtt')!['connections']).toBeGreaterThanOrEqual(1);
  });

  it('config: admin only, secrets redacted, pendingRestart listed', async () => {
    expect((await api.get('/api/v1/config', TOKENS.viewer)).status).toBe(403);
    const r = await api.get('/api/v1/config');
    expect(r.status).toBe(200);
    expect(r.body.admin.tokens).toEqual(TOKEN_CONFIG.map((t) => ({ name: t.name, role: t.role, sha256: '<redacted>' })));
    expect(r.text).not.toContain(TOKEN_CONFIG[0]!.sha256);
    expect(r.body.auth.aclFile).toBe(aclFile);
    expect(r.body.mqtt.port).toBe(0);
    expect(r.body.pendingRestart).toEqual([]);
    expect(redact({ tls: { passphrase: 'p', cert: '/c' }, auth: { http: { url: 'https://u:pw@h/x' } }, list: [{ password: 'x' }] })).toEqual({
      tls: { passphrase: '<redacted>', cert: '/c' },
      auth: { http: { url: 'https://<redacted>@h/x' } },
      list: [{ password: '<redacted>' }],
    });
  });

  it('reload: 200 applied; a broken ACL file gives 422 rejected with the error, and the old rules stay', async () => {
    expect((await api.post('/api/v1/reload', undefined, TOKENS.publisher)).status).toBe(403);
    const good = await api.post('/api/v1/reload');
    expect(good.status).toBe(200);
    expect(good.body).toEqual({ result: 'applied', changed: expect.any(Array), restartRequired: expect.any(Array) });
    writeFileSync(aclFile, 'topic readwrite #\nbogus line here\n');
    const bad = await api.post('/api/v1/reload');
    expect(bad.status).toBe(422);
    expect(bad.body.result).toBe('rejected');
    expect(bad.body.errors).toEqual([expect.objectContaining({ message: expect.stringContaining('bogus') })]);
    // Still allowed by the old rules.
    const c = await connect(tb.port);
    await c.subscribeAsync(`${tag}/after`, { qos: 1 });
    const p = await connect(tb.port);
    await p.publishAsync(`${tag}/after`, 'ok', { qos: 1 });
    await until(() => c.received.length === 1);
    expect((await api.get('/api/v1/overview')).body.lastReload).toMatchObject({ ok: false, errors: [expect.objectContaining({ message: expect.stringContaining('bogus') })] });
    writeFileSync(aclFile, 'topic readwrite #\n');
    expect((await api.post('/api/v1/reload')).status).toBe(200);
    expect(toReloadReport({ result: 'rejected', errors: [{ file: 'f', line: 3, path: 'mqtt.port', message: 'm' }] })).toMatchObject({ ok: false, errors: [{ file: 'f', line: 3, path: 'mqtt.port', message: 'm' }] });
  });

  it('publish: 200 {id, routed} with properties reaching MQTT 5 and STOMP subscribers; 202 with nobody; publisher role needed', async () => {
    const sub = await connect(tb.port, { protocolVersion: 5 });
    await sub.subscribeAsync(`${tag}/pub/+`, { qos: 1 });
    const stomp = await StompWire.connect(tb.stompPort);
    await stomp.subscribe(`/topic/${tag}/pub/a`, 's1');
    const body = {
      topic: `${tag}/pub/a`,
      payload: 'aGVsbG8=',
      payloadEncoding: 'base64',
      qos: 1,
      properties: { contentType: 'text/plain', responseTopic: `${tag}/reply`, correlationData: Buffer.from('c-1').toString('base64'), userProperties: { a: '1' }, messageExpiryInterval: 60, payloadFormatIndicator: 1 },
    };
    expect((await api.post('/api/v1/publish', body, TOKENS.viewer)).status).toBe(403);
    const r = await api.post('/api/v1/publish', body, TOKENS.publisher);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: expect.any(Number), routed: 2 });
    await until(() => sub.received.length === 1);
    const got = sub.received[0]!;
    expect(got.payload.toString()).toBe('hello');
    expect(got.packet.qos).toBe(1);
    expect(got.packet.properties).toMatchObject({ contentType: 'text/plain', responseTopic: `${tag}/reply`, userProperties: { a: '1' }, payloadFormatIndicator: true });
    expect(got.packet.properties?.correlationData?.toString()).toBe('c-1');
    const [m] = await stomp.waitMessages(1);
    expect(m!.body.toString()).toBe('hello');
    expect(m!.headers['content-type']).toBe('text/plain');

    const nobody = await api.post('/api/v1/publish', { topic: `${tag}/nobody/here`, payload: 'x', retain: true }, TOKENS.publisher);
    expect(nobody.status).toBe(202);
    expect(nobody.body).toEqual({ id: expect.any(Number), routed: 0, reason: 'no_matching_subscribers' });
    // Retained all the same.
    expect((await api.get(`/api/v1/retained/${tag}/nobody/here`)).body.payload).toBe('x');

    const q = `${tag}-pubq`;
    const toQueue = await api.post('/api/v1/publish', { queue: q, payload: 'queued', properties: { priority: 7 } });
    expect(toQueue.body).toEqual({ id: expect.any(Number), routed: 1 });
    expect((await api.get(`/api/v1/queues/${q}/messages`)).body.data).toEqual([expect.objectContaining({ payload: 'queued', priority: 7, messageId: toQueue.body.id })]);
  });

  it('publish: 400 for each malformed body, with a JSON error', async () => {
    const bad: unknown[] = [
      {},
      { topic: 'a', queue: 'b' },
      { topic: 'a/+/b' },
      { topic: '' },
      { topic: '$SYS/broker/x' },
      { topic: 'a', qos: 3 },
      { topic: 'a', retain: 'yes' },
      { topic: 'a', payload: 5 },
      { topic: 'a', payload: '@@', payloadEncoding: 'base64' },
      { topic: 'a', payloadEncoding: 'hex' },
      { topic: 'a', unknown: 1 },
      { topic: 'a', properties: { userProperties: 'x' } },
      { topic: 'a', properties: { messageExpiryInterval: -1 } },
      { topic: 'a', properties: { bogus: 1 } },
      { queue: 'q', retain: true },
      [1, 2],
      '{not json',
    ];
    for (const b of bad) {
      const r = await api.post('/api/v1/publish', b);
      expect(r.status, JSON.stringify(b)).toBe(400);
      expect(r.body.error.code, JSON.stringify(b)).toMatch(/^BAD_/);
    }
  });

  it('stream: SSE read with fetch(): stats at once and every second, client events, reload events', async () => {
    const ac = new AbortController();
    const res = await fetch(`${api.base}/api/v1/stream`, { headers: { Authorization: `Bearer ${TOKENS.viewer}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const id = `${tag}-live`;
    setTimeout(() => void connect(tb.port, { clientId: id }).then((c) => c.endAsync()), 100);
    setTimeout(() => void api.post('/api/v1/reload'), 300);
    const events = await readEvents(res, (ev) => ev.filter((e) => e.event === 'stats').length >= 2 && ev.some((e) => e.event === 'reload') && ev.some((e) => e.event === 'client' && e.data.includes('"disconnected"')));
    ac.abort();
    const stats = JSON.parse(events.find((e) => e.event === 'stats')!.data);
    expect(stats).toMatchObject({ at: expect.any(Number), rates: { inPerSec: expect.any(Number), outPerSec: expect.any(Number) } });
    const clientEvents = events.filter((e) => e.event === 'client').map((e) => JSON.parse(e.data)).filter((e) => e.clientId === id);
    expect(clientEvents.map((e) => e.event)).toEqual(['connected', 'disconnected']);
    expect(clientEvents[0]).toMatchObject({ protocol: 'mqtt', version: '5', listener: 'mqtt', ip: '127.0.0.1' });
    expect(JSON.parse(events.find((e) => e.event === 'reload')!.data)).toMatchObject({ result: 'applied' });
  });

  it('stats history: the last seconds of snapshots; 400 for a bad seconds', async () => {
    const r = await api.get('/api/v1/stats/history?seconds=60');
    expect(r.status).toBe(200);
    expect(Array.isArray(r.body.data)).toBe(true);
    for (const s of r.body.data as Array<{ at: number }>) expect(s.at).toBeGreaterThan(Date.now() - 120_000);
    expect((await api.get('/api/v1/stats/history?seconds=0')).status).toBe(400);
  });
});

describe('admin API: 503 while the broker drains', async () => {
  const tb = await startBroker({ config: { admin: { tokens: TOKEN_CONFIG } } });

  it('a request that arrives once stopping has begun gets 503 NOT_READY with Retry-After', async () => {
    // A request whose headers are not complete keeps its connection busy, so the stop lets it finish.
    const socket = net.connect(tb.httpPort, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.write(`GET /api/v1/overview HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.viewer}\r\n`);
    await new Promise((r) => setTimeout(r, 50));
    const stopping = tb.broker.stop();
    socket.write('\r\n');
    await until(() => reply.includes('NOT_READY'), 3000, 'the 503 reply');
    socket.destroy();
    await stopping;
    expect(reply).toMatch(/^HTTP\/1\.1 503 /);
    expect(reply).toContain('"code":"NOT_READY"');
    expect(reply.toLowerCase()).toContain('retry-after: 5');
  });
});
