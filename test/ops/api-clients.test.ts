/**
 * Admin API: clients (operations.md "Admin REST API"): real MQTT (MQTT.js 5 and 3.1.1, mosquitto_sub,
 * MQTT over WebSocket) and STOMP clients, listed with their connection details, filtered, paged
 * with cursors, shown one by one with their subscriptions, and kicked: MQTT 5 DISCONNECT 0x98,
 * STOMP ERROR then close, with or without the session.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { TOKENS, startApiBroker } from './api-helpers.js';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill();
});

describe('admin API: clients', async () => {
  const { tb, api } = await startApiBroker();
  const tag = `c${Date.now().toString(36)}`;

  it('lists 5 new clients of both protocols and every transport, with their details', async () => {
    const v5 = await connect(tb.port, { clientId: `${tag}-v5`, protocolVersion: 5, keepalive: 42, username: 'alice', properties: { sessionExpiryInterval: 300 } });
    await connect(tb.port, { clientId: `${tag}-v311`, protocolVersion: 4, clean: true });
    await connect(0, { clientId: `${tag}-ws`, protocol: 'ws', host: '127.0.0.1', port: tb.httpPort, path: '/mqtt' } as never);
    const stomp = await StompWire.connect(tb.stompPort, { 'client-id': `${tag}-stomp` });
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(tb.port), '-i', `${tag}-mosq`, '-t', `${tag}/mosq/#`, '-V', 'mqttv311']);
    children.push(sub);
    await v5.subscribeAsync(`${tag}/a/+`, { qos: 1 });
    await v5.publishAsync(`${tag}/x`, 'hello', { qos: 1 });

    // mosquitto_sub connects on its own time: poll the API as a dashboard would.
    let list: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 100 && list.length < 5; i++) {
      list = (await api.get(`/api/v1/clients?like=${tag}`)).body.data;
      if (list.length < 5) await new Promise((r) => setTimeout(r, 50));
    }
    expect(list.map((c) => c['clientId']).sort()).toEqual([`${tag}-mosq`, `${tag}-stomp`, `${tag}-v311`, `${tag}-v5`, `${tag}-ws`]);
    const byId = new Map(list.map((c) => [c['clientId'], c]));
    expect(byId.get(`${tag}-v5`)).toMatchObject({
      protocol: 'mqtt',
      state: 'connected',
      version: '5',
      listener: 'mqtt',
      ip: '127.0.0.1',
      port: expect.any(Number),
      username: 'alice',
      keepalive: 42,
      cleanStart: true,
      sessionExpiry: 300,
      inflight: 0,
      queued: 0,
      subscriptions: 1,
      msgsIn: 1,
      tls: false,
    });
    expect(Date.parse(byId.get(`${tag}-v5`)!['connectedAt'] as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(byId.get(`${tag}-v311`)).toMatchObject({ version: '3.1.1', sessionExpiry: 0 });
    expect(byId.get(`${tag}-ws`)).toMatchObject({ listener: 'http', protocol: 'mqtt' });
    expect(byId.get(`${tag}-stomp`)).toMatchObject({ protocol: 'stomp', version: '1.2', sessionId: stomp.sessionId, listener: 'stomp' });
    expect(byId.get(`${tag}-mosq`)).toMatchObject({ version: '3.1.1', subscriptions: 1 });
  });

  it('filters: clientId, like, username, ip (address and CIDR), protocol, listener, state, hasBacklog', async () => {
    const ids = async (query: string): Promise<string[]> => {
      const r = await api.get(`/api/v1/clients?${query}`);
      expect(r.status, query).toBe(200);
      return (r.body.data as Array<{ clientId: string }>).map((c) => c.clientId).filter((id) => id.startsWith(tag)).sort();
    };
    expect(await ids(`clientId=${tag}-v5`)).toEqual([`${tag}-v5`]);
    expect(await ids(`like=${tag}-v`)).toEqual([`${tag}-v311`, `${tag}-v5`]);
    expect(await ids('username=alice')).toEqual([`${tag}-v5`]);
    expect((await ids('ip=127.0.0.0/8')).length).toBe(5);
    expect((await ids('ip=127.0.0.1')).length).toBe(5);
    expect(await ids('ip=10.0.0.0/8')).toEqual([]);
    expect(await ids('ip=::1/128')).toEqual([]);
    expect(await ids('protocol=stomp')).toEqual([`${tag}-stomp`]);
    expect(await ids('listener=http')).toEqual([`${tag}-ws`]);
    expect((await ids('state=connected')).length).toBe(5);
    expect(await ids('state=offline')).toEqual([]);
    expect(await ids('hasBacklog=true')).toEqual([]);
    for (const bad of ['ip=300.1.1.1', 'ip=10.0.0.0/33', 'protocol=amqp', 'state=gone', 'hasBacklog=maybe', 'limit=0']) {
      const r = await api.get(`/api/v1/clients?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toMatch(/^BAD_/);
    }
  });

  it('offline persistent sessions are listed too, with their backlog (hasBacklog, emqx#17703)', async () => {
    const id = `${tag}-offline`;
    const c = await connect(tb.port, { clientId: id, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
    await c.subscribeAsync(`${tag}/backlog`, { qos: 1 });
    await c.endAsync();
    const pub = await connect(tb.port);
    await pub.publishAsync(`${tag}/backlog`, 'kept', { qos: 1 });
    const r = await api.get(`/api/v1/clients?state=offline&hasBacklog=true&like=${tag}`);
    expect(r.body.data).toEqual([expect.objectContaining({ clientId: id, state: 'offline', queued: 1, connectedAt: null, subscriptions: 1 })]);
    const one = await api.get(`/api/v1/clients/${id}`);
    expect(one.body).toMatchObject({ clientId: id, state: 'offline', subscriptions: [expect.objectContaining({ filter: `${tag}/backlog`, qos: 1 })] });
  });

  it('pages with opaque cursors in client id order, nothing twice, nothing skipped', async () => {
    const ptag = `${tag}-page`;
    for (let i = 0; i < 7; i++) await connect(tb.port, { clientId: `${ptag}-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await api.get(`/api/v1/clients?like=${ptag}&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.meta.limit).toBe(3);
      seen.push(...(r.body.data as Array<{ clientId: string }>).map((c) => c.clientId));
      cursor = r.body.meta.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `${ptag}-${i}`));
    const bad = await api.get('/api/v1/clients?cursor=not-a-cursor');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_CURSOR');
  });

  it('GET /clients/{id}: the item plus its subscriptions; 404 CLIENT_NOT_FOUND; a STOMP client by client-id or session id', async () => {
    const r = await api.get(`/api/v1/clients/${tag}-v5`);
    expect(r.status).toBe(200);
    expect(r.body.subscriptions).toEqual([expect.objectContaining({ clientId: `${tag}-v5`, filter: `${tag}/a/+`, topic: `${tag}/a/+`, share: null, qos: 1 })]);
    const missing = await api.get(`/api/v1/clients/${tag}-nobody`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'CLIENT_NOT_FOUND', message: expect.any(String) } });
    const stomp = await api.get(`/api/v1/clients/${tag}-stomp`);
    expect(stomp.status).toBe(200);
    expect((await api.get(`/api/v1/clients/${stomp.body.sessionId}`)).body.clientId).toBe(`${tag}-stomp`);
    // A client id with a slash, percent-encoded in the path.
    await connect(tb.port, { clientId: `${tag}/slash id` });
    expect((await api.get(`/api/v1/clients/${encodeURIComponent(`${tag}/slash id`)}`)).body.clientId).toBe(`${tag}/slash id`);
  });

  it('kick: viewer 403; MQTT 5 gets DISCONNECT 0x98 and the persistent session stays; ?discardSession=true removes it', async () => {
    const id = `${tag}-kick5`;
    const raw = await RawClient.connect(tb.port, 5);
    await raw.handshake({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
    expect((await api.del(`/api/v1/clients/${id}`, TOKENS.viewer)).status).toBe(403);
    expect((await api.del(`/api/v1/clients/${id}`, TOKENS.publisher)).status).toBe(403);
    const r = await api.del(`/api/v1/clients/${id}`);
    expect(r.status).toBe(204);
    const d = await raw.next('disconnect');
    expect(d.reasonCode).toBe(0x98);
    await raw.waitClosed();
    const after = await api.get(`/api/v1/clients/${id}`);
    expect(after.body.state).toBe('offline');
    expect(tb.logs.some((l) => l.fields['evt'] === 'client.kicked' && l.fields['clientId'] === id)).toBe(true);

    const id2 = `${tag}-kick5b`;
    const c = await connect(tb.port, { clientId: id2, clean: false, properties: { sessionExpiryInterval: 600 } });
    const disconnected = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
    expect((await api.del(`/api/v1/clients/${id2}?discardSession=true`)).status).toBe(204);
    expect(await disconnected).toBe(0x98);
    expect((await api.get(`/api/v1/clients/${id2}`)).status).toBe(404);
    expect(tb.broker.core.sessions.get(id2)).toBeUndefined();
  });

  it('kick: a 3.1.1 client is closed; a STOMP client gets ERROR then the connection closes', async () => {
    const raw = await RawClient.connect(tb.port, 4);
    await raw.handshake({ clientId: `${tag}-kick4` });
    expect((await api.del(`/api/v1/clients/${tag}-kick4`)).status).toBe(204);
    await raw.waitClosed();
    expect(raw.packets.filter((p) => p.cmd === 'disconnect')).toEqual([]);

    const stomp = await StompWire.connect(tb.stompPort, { 'client-id': `${tag}-kickstomp` });
    expect((await api.del(`/api/v1/clients/${tag}-kickstomp`)).status).toBe(204);
    await stomp.closedPromise;
    const err = stomp.frames.find((f) => f.command === 'ERROR');
    expect(err?.headers['message']).toBe('disconnected by an administrator');
  });

  it('DELETE of an offline session discards it; 404 when there is neither connection nor session', async () => {
    const id = `${tag}-gone`;
    const c = await connect(tb.port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
    await c.endAsync();
    expect((await api.get(`/api/v1/clients/${id}`)).body.state).toBe('offline');
    expect((await api.del(`/api/v1/clients/${id}`)).status).toBe(204);
    expect((await api.get(`/api/v1/clients/${id}`)).status).toBe(404);
    const again = await api.del(`/api/v1/clients/${id}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('CLIENT_NOT_FOUND');
  });
});
