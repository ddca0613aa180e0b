/**
 * Trace API (operations.md: `POST /traces`; `GET /traces`, `/traces/{n}/log?offset=`,
 * `/traces/{n}/stream` (SSE); `POST /traces/{n}/stop`; `DELETE`, admin role): tokens and roles,
 * validation with the spec's codes and JSON error bodies, trace.maxTraces (409), a file reaching
 * trace.maxFileSize stops the trace (size_limit), durationSeconds expiry, paging the JSON lines by
 * offset, the live tail over SSE read with fetch() and a stream reader, stop then DELETE removes
 * the file; the hooks are off whenever no trace runs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, until } from '../helpers/mqtt.js';
import { TOKENS, startApiBroker } from './api-helpers.js';
import { SseReader, has, mosquitto, removeTrace, startTrace, traceLog, traceName, waitTrace, type TraceLine } from './traces-helpers.js';

describe('traces: admin API', async () => {
  const { tb, api } = await startApiBroker({ config: { trace: { maxTraces: 3, maxFileSize: 4096 } } });
  const core = tb.broker.core;
  const path = (name: string, tail = ''): string => `/api/v1/traces/${encodeURIComponent(name)}${tail}`;

  afterEach(async () => {
    for (const t of (await api.get('/api/v1/traces')).body.data as TraceLine[]) await api.del(path(t['name'] as string));
    expect(core.tracing.on).toBe(false);
  });

  it('admin only: no token 401 (WWW-Authenticate Bearer), viewer and publisher tokens 403, JSON error bodies', async () => {
    const name = traceName('auth');
    await startTrace(api, { name, type: 'clientId', value: 'tr-auth' });
    const calls: Array<[string, string]> = [
      ['POST', '/api/v1/traces'],
      ['GET', '/api/v1/traces'],
      ['GET', path(name)],
      ['GET', path(name, '/log')],
      ['GET', path(name, '/stream')],
      ['POST', path(name, '/stop')],
      ['DELETE', path(name)],
    ];
    for (const [method, p] of calls) {
      const body = method === 'POST' ? { name: traceName('x'), type: 'clientId', value: 'x' } : undefined;
      const none = await api.request(method, p, { token: null, ...(body ? { body } : {}) });
      expect(none.status, `${method} ${p}`).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="junction"/);
      expect(none.body.error.code).toEqual(expect.any(String));
      for (const token of [TOKENS.viewer, TOKENS.publisher]) {
        const low = await api.request(method, p, { token, ...(body ? { body } : {}) });
        expect(low.status, `${method} ${p}`).toBe(403);
        expect(low.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
      }
    }
    // None of that created, stopped or deleted anything.
    expect((await api.get('/api/v1/traces')).body.data.map((t: TraceLine) => [t['name'], t['status']])).toEqual([[name, 'running']]);
  });

  it('validation: 400 BAD_TRACE for a bad type, duration, filter, address, name, payload mode or field; 400 BAD_JSON; 409 TRACE_EXISTS for a name in use', async () => {
    const ok = { name: traceName('valid'), type: 'topic', value: 'a/+/c', durationSeconds: 3600, payload: 'hex', payloadLimit: 0 };
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...ok, type: 'username' }, /^type/],
      [{ ...ok, durationSeconds: 3601 }, /^durationSeconds/],
      [{ ...ok, durationSeconds: 0 }, /^durationSeconds/],
      [{ ...ok, durationSeconds: 1.5 }, /^durationSeconds/],
      [{ ...ok, value: 'a/#/c' }, /^value/],
      [{ ...ok, value: 'a/b+' }, /^value/],
      [{ ...ok, value: '' }, /^value/],
      [{ ...ok, type: 'ip', value: '10.0.0.300' }, /^value/],
      [{ ...ok, type: 'ip', value: 'example.com' }, /^value/],
      [{ ...ok, name: 'has space' }, /^name/],
      [{ ...ok, name: '../etc' }, /^name/],
      [{ ...ok, name: 'x'.repeat(65) }, /^name/],
      [{ ...ok, payload: 'base64' }, /^payload/],
      [{ ...ok, payloadLimit: -1 }, /^payloadLimit/],
      [{ ...ok, extra: true }, /unknown field extra/],
    ];
    for (const [body, message] of bad) {
      const r = await api.post('/api/v1/traces', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('BAD_TRACE');
      expect(r.body.error.message).toMatch(message);
    }
    for (const body of ['[1]', '"x"']) {
      const r = await api.request('POST', '/api/v1/traces', { body, headers: { 'Content-Type': 'application/json' } });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('BAD_TRACE');
    }
    const broken = await api.request('POST', '/api/v1/traces', { body: '{"name":', headers: { 'Content-Type': 'application/json' } });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('BAD_JSON');
    expect((await api.get('/api/v1/traces')).body.data).toEqual([]);
    expect(core.tracing.on).toBe(false);

    const view = await startTrace(api, ok);
    expect(view).toMatchObject({ type: 'topic', value: 'a/+/c', durationSeconds: 3600, payload: 'hex', payloadLimit: 0 });
    expect(Date.parse(view['endsAt'] as string) - Date.parse(view['startedAt'] as string)).toBe(3600_000);
    const dup = await api.post('/api/v1/traces', { ...ok, type: 'clientId', value: 'other' });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('TRACE_EXISTS');
    // Still the first one.
    expect((await api.get(path(ok.name))).body).toMatchObject({ type: 'topic', value: 'a/+/c', status: 'running' });
  });

  it('404 TRACE_NOT_FOUND for an unknown name on every path', async () => {
    for (const [method, p] of [
      ['GET', path('no-such-trace')],
      ['GET', path('no-such-trace', '/log')],
      ['GET', path('no-such-trace', '/stream')],
      ['POST', path('no-such-trace', '/stop')],
      ['DELETE', path('no-such-trace')],
    ] as const) {
      const r = await api.request(method, p);
      expect(r.status, `${method} ${p}`).toBe(404);
      expect(r.body.error.code).toBe('TRACE_NOT_FOUND');
    }
  });

  it('trace.maxTraces: running and stopped traces count; one more is refused with 409 TRACE_LIMIT until one is deleted', async () => {
    const names = [traceName('max'), traceName('max'), traceName('max')];
    for (const name of names) await startTrace(api, { name, type: 'clientId', value: name });
    const over = { name: traceName('max-over'), type: 'clientId', value: 'x' };
    const r = await api.post('/api/v1/traces', over);
    expect(r.status).toBe(409);
    expect(r.body.error).toEqual({ code: 'TRACE_LIMIT', message: expect.stringContaining('trace.maxTraces') });
    expect((await api.post(path(names[0]!, '/stop'))).body).toMatchObject({ status: 'stopped', stopReason: 'stopped' });
    expect((await api.post('/api/v1/traces', over)).status).toBe(409);
    expect((await api.del(path(names[0]!))).status).toBe(204);
    await startTrace(api, over);
    // The list: cursor paging over names.
    const list = await api.get('/api/v1/traces?limit=2');
    expect(list.status).toBe(200);
    const all = [...names.slice(1), over.name].sort();
    expect(list.body.data.map((t: TraceLine) => t['name'])).toEqual(all.slice(0, 2));
    expect(list.body.meta).toMatchObject({ limit: 2, nextCursor: expect.any(String) });
    const rest = await api.get(`/api/v1/traces?limit=2&cursor=${encodeURIComponent(list.body.meta.nextCursor)}`);
    expect(rest.body.data.map((t: TraceLine) => t['name'])).toEqual(all.slice(2));
    expect(rest.body.meta.nextCursor).toBeNull();
  });

  it('a trace whose file reaches trace.maxFileSize stops with stopReason size_limit; the file stays within it and readable', async () => {
    const name = traceName('size');
    const view = await startTrace(api, { name, type: 'clientId', value: 'tr-size', payload: 'text', payloadLimit: 1000 });
    const c = await connect(tb.port, { clientId: 'tr-size' });
    for (let i = 0; i < 12; i++) await c.publishAsync('tr/size', 'p'.repeat(600), { qos: 1 });
    await until(() => tb.broker.traces!.get(name).status === 'stopped', 3000, 'the trace to stop');
    const stopped = (await api.get(path(name))).body as TraceLine;
    expect(stopped).toMatchObject({ status: 'stopped', stopReason: 'size_limit', stoppedAt: expect.any(String) });
    expect(core.tracing.on).toBe(false);
    const file = view['file'] as string;
    expect(stopped['size']).toBeLessThanOrEqual(4096);
    expect(stopped['size']).toBeGreaterThan(4096 - 800); // it stopped at the line that did not fit
    expect(statSync(file).size).toBe(stopped['size']);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(stopped['events'] as number);
    const events = await traceLog(api, name);
    expect(events).toEqual(lines.map((l) => JSON.parse(l) as TraceLine));
    expect(events[0]).toMatchObject({ evt: 'connect' });
    // Nothing more is written once stopped.
    await c.publishAsync('tr/size', 'more', { qos: 1 });
    await c.endAsync();
    expect(statSync(file).size).toBe(stopped['size']);
    const log = await api.get(path(name, '/log'));
    expect(log.body.meta).toMatchObject({ running: false, size: stopped['size'], nextOffset: stopped['size'] });
    await removeTrace(api, name);
    expect(existsSync(file)).toBe(false);
  });

  it('durationSeconds: the trace stops by itself (stopReason expired) and the hooks go off', async () => {
    const name = traceName('expiry');
    const view = await startTrace(api, { name, type: 'topic', value: 'tr/expiry/#', durationSeconds: 1 });
    expect(Date.parse(view['endsAt'] as string) - Date.parse(view['startedAt'] as string)).toBe(1000);
    expect(core.tracing.on).toBe(true);
    const deadline = Date.now() + 10_000;
    let now: TraceLine = view;
    while (now['status'] === 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      now = (await api.get(path(name))).body as TraceLine;
    }
    expect(now).toMatchObject({ status: 'stopped', stopReason: 'expired' });
    expect(core.tracing.on).toBe(false);
    // A later publish to the topic is not recorded.
    await mosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-t', 'tr/expiry/a', '-m', 'late']);
    expect(await traceLog(api, name)).toEqual([]);
  });

  it('GET /log pages JSON lines by offset: whole lines per page, nextOffset to go on, a line longer than limit still comes; bad offsets 400', async () => {
    const name = traceName('page');
    await startTrace(api, { name, type: 'topic', value: 'tr/page/#' });
    const c = await connect(tb.port, { clientId: 'tr-page' });
    for (let i = 0; i < 6; i++) await c.publishAsync(`tr/page/${i}`, `m${i}`, { qos: 0 });
    await c.endAsync();
    const all = await waitTrace(api, name, (e) => e.filter((x) => x['evt'] === 'route').length === 6, 'six routes');
    expect(all.map((e) => e['evt'])).toEqual(Array.from({ length: 6 }, () => ['publish.in', 'route']).flat());
    expect(all.map((e) => e['topic'])).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5].map((i) => `tr/page/${i}`));

    const first = await api.get(path(name, '/log?offset=0&limit=300'));
    expect(first.status).toBe(200);
    const { size } = first.body.meta;
    expect(first.body.data.length).toBeGreaterThan(0);
    expect(first.body.data.length).toBeLessThan(all.length);
    expect(first.body.meta).toMatchObject({ offset: 0, running: true });
    expect(first.body.meta.nextOffset).toBeLessThanOrEqual(300);
    // Pages of 300 bytes, and of 10 bytes (shorter than any line: one line each), give the same events.
    expect(await traceLog(api, name, 300)).toEqual(all);
    expect(await traceLog(api, name, 10)).toEqual(all);
    const one = await api.get(path(name, '/log?limit=10'));
    expect(one.body.data).toEqual([all[0]]);

    const end = await api.get(path(name, `/log?offset=${size + 1000}`));
    expect(end.status).toBe(200);
    expect(end.body).toEqual({ data: [], meta: { offset: size, nextOffset: size, size, running: true } });
    for (const q of ['offset=abc', 'offset=-1', 'limit=x', `offset=${first.body.meta.nextOffset - 1}`]) {
      const r = await api.get(path(name, `/log?${q}`));
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toEqual(expect.any(String));
    }
  });

  it('GET /stream: live `trace` events over SSE (fetch + stream reader), `stopped` on stop and the stream ends; stop then DELETE removes the file', async () => {
    const name = traceName('sse');
    const view = await startTrace(api, { name, type: 'topic', value: 'tr/sse/+', payload: 'text' });
    const res = await fetch(api.base + path(name, '/stream'), { headers: { Authorization: `Bearer ${TOKENS.admin}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sse = new SseReader(res);
    await until(() => sse.comments.includes('connected'), 3000, 'the connected comment');
    await mosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-i', 'tr-sse-pub', '-t', 'tr/sse/a', '-m', 'live one']);
    await mosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-i', 'tr-sse-pub', '-t', 'tr/sse/b/deeper', '-m', 'not traced']);
    await mosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-i', 'tr-sse-pub', '-t', 'tr/sse/b', '-m', 'live two']);
    await until(() => sse.named('trace').length === 4, 3000, 'four trace events');
    const live = sse.named('trace');
    expect(live.map((e) => [e['evt'], e['topic'], e['payload'] ?? e['matched']])).toEqual([
      ['publish.in', 'tr/sse/a', 'live one'],
      ['route', 'tr/sse/a', 0],
      ['publish.in', 'tr/sse/b', 'live two'],
      ['route', 'tr/sse/b', 0],
    ]);
    // The same events as in the file.
    expect(live).toEqual(await traceLog(api, name));

    const stop = await api.post(path(name, '/stop'));
    expect(stop.body).toMatchObject({ status: 'stopped', stopReason: 'stopped', events: 4 });
    await sse.done;
    expect(sse.named('stopped')).toEqual([{ name }]);
    expect(core.tracing.on).toBe(false);

    // A stopped trace's stream says so at once and ends.
    const again = new SseReader(await fetch(api.base + path(name, '/stream'), { headers: { Authorization: `Bearer ${TOKENS.admin}` } }));
    await again.done;
    expect(again.named('stopped')).toEqual([{ name }]);
    expect(again.named('trace')).toEqual([]);

    const file = view['file'] as string;
    expect(existsSync(file)).toBe(true);
    expect((await api.del(path(name))).status).toBe(204);
    expect(existsSync(file)).toBe(false);
    expect((await api.get(path(name))).status).toBe(404);
    expect((await api.get(path(name, '/log'))).status).toBe(404);
  });

  it('DELETE of a running trace ends its live streams and removes its file; the hooks go off', async () => {
    const name = traceName('sse-del');
    const view = await startTrace(api, { name, type: 'clientId', value: 'tr-sse-del' });
    const sse = new SseReader(await fetch(api.base + path(name, '/stream'), { headers: { Authorization: `Bearer ${TOKENS.admin}` } }));
    await until(() => sse.comments.includes('connected'), 3000, 'the connected comment');
    const c = await connect(tb.port, { clientId: 'tr-sse-del' });
    await until(() => sse.named('trace').some((e) => e['evt'] === 'connack'), 3000, 'connack on the stream');
    expect(has(sse.named('trace'), 'connect', { clientId: 'tr-sse-del' })).toBe(true);
    expect(core.tracing.on).toBe(true);
    expect((await api.del(path(name))).status).toBe(204);
    await sse.done;
    expect(sse.named('stopped')).toEqual([{ name }]);
    expect(existsSync(view['file'] as string)).toBe(false);
    expect(core.tracing.on).toBe(false);
    await c.endAsync();
  });
});
