/**
 * Admin API: subscriptions (incl. "who receives topic T"), the lazy topic tree, and retained
 * messages (list by filter, get with payload encodings, delete one, delete every match), with
 * topics in paths percent-encoded or as a raw slash tail.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connect, sleep } from '../helpers/mqtt.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { TOKENS, startApiBroker } from './api-helpers.js';

describe('admin API: subscriptions and topics', async () => {
  const { tb, api } = await startApiBroker({ config: { queues: { bindings: [{ queue: 'api-bound', filter: 'bound/+/x' }] } } });
  const tag = `t${Date.now().toString(36)}`;

  it('lists subscriptions with filters, and match=<topic> says who would receive it', async () => {
    const a = await connect(tb.port, { clientId: `${tag}-a` });
    const b = await connect(tb.port, { clientId: `${tag}-b` });
    const g1 = await connect(tb.port, { clientId: `${tag}-g1` });
    const g2 = await connect(tb.port, { clientId: `${tag}-g2` });
    await a.subscribeAsync(`${tag}/room/+/temp`, { qos: 1 });
    await a.subscribeAsync(`${tag}/other`, { qos: 0 });
    await b.subscribeAsync(`${tag}/#`, { qos: 2 });
    await g1.subscribeAsync(`$share/grp/${tag}/room/#`, { qos: 1 });
    await g2.subscribeAsync(`$share/grp/${tag}/room/#`, { qos: 0 });
    const stomp = await StompWire.connect(tb.stompPort, { 'client-id': `${tag}-s` });
    await stomp.subscribe(`/topic/${tag}/room/1/temp`, 's1');

    const all = (await api.get(`/api/v1/subscriptions?limit=1000`)).body.data as Array<Record<string, unknown>>;
    const mine = all.filter((s) => String(s['clientId']).startsWith(tag));
    expect(mine).toHaveLength(6);
    expect(mine).toContainEqual(expect.objectContaining({ clientId: `${tag}-g1`, filter: `$share/grp/${tag}/room/#`, topic: `${tag}/room/#`, share: 'grp', qos: 1 }));
    expect(mine).toContainEqual(expect.objectContaining({ clientId: `${tag}-s`, key: 's1', filter: `${tag}/room/1/temp` }));

    const byClient = await api.get(`/api/v1/subscriptions?clientId=${tag}-a`);
    expect((byClient.body.data as Array<{ filter: string }>).map((s) => s.filter).sort()).toEqual([`${tag}/other`, `${tag}/room/+/temp`]);
    expect((await api.get(`/api/v1/subscriptions?share=grp&qos=0`)).body.data).toEqual([expect.objectContaining({ clientId: `${tag}-g2` })]);
    expect((await api.get(`/api/v1/subscriptions?filter=${encodeURIComponent(`${tag}/#`)}`)).body.data).toEqual([expect.objectContaining({ clientId: `${tag}-b` })]);

    const who = await api.get(`/api/v1/subscriptions?match=${encodeURIComponent(`${tag}/room/1/temp`)}`);
    expect((who.body.data as Array<{ clientId: string }>).map((s) => s.clientId).sort()).toEqual([`${tag}-a`, `${tag}-b`, `${tag}-g1`, `${tag}-g2`, `${tag}-s`]);
    const none = await api.get(`/api/v1/subscriptions?match=${encodeURIComponent(`${tag}/nothing/here/at/all`)}`);
    expect((none.body.data as Array<{ clientId: string }>).map((s) => s.clientId)).toEqual([`${tag}-b`]);
    // A queue bound by the config receives too.
    expect((await api.get('/api/v1/subscriptions?match=bound/7/x')).body.data).toEqual([expect.objectContaining({ clientId: '$queue/api-bound', queue: 'api-bound' })]);
    const bad = await api.get('/api/v1/subscriptions?match=a/%2B/b');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_TOPIC');
  });

  it('topic tree: one level at a time, with subscriber and retained counts', async () => {
    const p = await connect(tb.port);
    await p.publishAsync(`${tag}/tree/a/b`, 'r1', { qos: 1, retain: true });
    await p.publishAsync(`${tag}/tree/a`, 'r2', { qos: 1, retain: true });
    const s = await connect(tb.port);
    await s.subscribeAsync(`${tag}/tree/a`);
    await s.subscribeAsync(`${tag}/tree/c/+`);
    const top = await api.get(`/api/v1/topics/tree?prefix=${encodeURIComponent(`${tag}/tree`)}`);
    expect(top.status).toBe(200);
    expect(top.body.data).toEqual([
      { level: 'a', topic: `${tag}/tree/a`, subscribers: 1, retained: true, children: 1 },
      { level: 'c', topic: `${tag}/tree/c`, subscribers: 0, retained: false, children: 1 },
    ]);
    const below = await api.get(`/api/v1/topics/tree?prefix=${encodeURIComponent(`${tag}/tree/c`)}`);
    expect(below.body.data).toEqual([{ level: '+', topic: `${tag}/tree/c/+`, subscribers: 1, retained: false, children: 0 }]);
    const root = await api.get('/api/v1/topics/tree');
    expect(root.body.data).toContainEqual(expect.objectContaining({ level: tag, topic: tag }));
  });

  it('retained: list by filter, get one (encoded or raw path, utf8/base64, truncate), delete one, delete every match', async () => {
    const rtag = `${tag}-ret`;
    // Async: the broker runs in this process and must keep answering.
    await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-t', `${rtag}/a/b`, '-m', 'héllo wörld', '-r', '-q', '1']);
    const p = await connect(tb.port);
    await p.publishAsync(`${rtag}/bin`, Buffer.from([0xff, 0x00, 0x01]), { qos: 1, retain: true, properties: { contentType: 'application/octet-stream', userProperties: { k: 'v' } } });
    // QoS 1: the PUBACK says the broker has it before the API is asked.
    await p.publishAsync(`${rtag}/a/c`, 'x', { qos: 1, retain: true });

    const list = await api.get(`/api/v1/retained?match=${encodeURIComponent(`${rtag}/#`)}`);
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([
      { topic: `${rtag}/a/b`, qos: 1, size: Buffer.byteLength('héllo wörld'), publishedAt: expect.any(String), expiresAt: null },
      { topic: `${rtag}/a/c`, qos: 1, size: 1, publishedAt: expect.any(String), expiresAt: null },
      { topic: `${rtag}/bin`, qos: 1, size: 3, publishedAt: expect.any(String), expiresAt: null },
    ]);
    expect((await api.get(`/api/v1/retained?match=${encodeURIComponent(`${rtag}/a/+`)}&limit=1`)).body.meta.nextCursor).not.toBeNull();

    const encoded = await api.get(`/api/v1/retained/${encodeURIComponent(`${rtag}/a/b`)}`);
    expect(encoded.body).toMatchObject({ topic: `${rtag}/a/b`, payload: 'héllo wörld', payloadEncoding: 'utf8', truncated: false, qos: 1 });
    const rawTail = await api.get(`/api/v1/retained/${rtag}/a/b?truncate=2`);
    expect(rawTail.body).toMatchObject({ payload: 'h', payloadEncoding: 'utf8', truncated: true, size: 13 });
    const b64 = await api.get(`/api/v1/retained/${rtag}/a/b?encoding=base64`);
    expect(Buffer.from(b64.body.payload, 'base64').toString()).toBe('héllo wörld');
    const bin = await api.get(`/api/v1/retained/${encodeURIComponent(`${rtag}/bin`)}`);
    expect(bin.body).toMatchObject({ payload: Buffer.from([0xff, 0, 1]).toString('base64'), payloadEncoding: 'base64', properties: { contentType: 'application/octet-stream', userProperties: [['k', 'v']] } });

    expect((await api.del(`/api/v1/retained/${rtag}/a/b`, TOKENS.viewer)).status).toBe(403);
    expect((await api.del(`/api/v1/retained/${encodeURIComponent(`${rtag}/a/b`)}`)).status).toBe(204);
    const gone = await api.get(`/api/v1/retained/${rtag}/a/b`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('RETAINED_NOT_FOUND');
    expect((await api.del(`/api/v1/retained/${rtag}/a/b`)).status).toBe(404);
    // A new subscriber gets no retained message for it any more.
    const s = await connect(tb.port);
    await s.subscribeAsync(`${rtag}/#`, { qos: 1 });
    await sleep(200);
    expect(s.received.map((r) => r.topic).sort()).toEqual([`${rtag}/a/c`, `${rtag}/bin`]);

    expect((await api.del('/api/v1/retained')).status).toBe(400);
    const many = await api.del(`/api/v1/retained?match=${encodeURIComponent(`${rtag}/#`)}`);
    expect(many.body).toEqual({ deleted: 2 });
    expect((await api.get(`/api/v1/retained?match=${encodeURIComponent(`${rtag}/#`)}`)).body.data).toEqual([]);
    const badFilter = await api.get('/api/v1/retained?match=a/%23/b');
    expect(badFilter.status).toBe(400);
  });
});
