/**
 * The HTTP foundation of the admin API (src/server/http): routing and percent-decoding, token auth
 * (Bearer and Basic) with roles, 401/403/404/405/413/429 error bodies, paging cursors, SSE read by
 * fetch() + ReadableStream, health probes, `admin.bind`, and `junction token create`.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseCli } from '../../src/server/cli.js';
import { hashToken } from '../../src/server/http/auth.js';
import { paginate, pageRequest } from '../../src/server/http/paging.js';
import { ok } from '../../src/server/http/reply.js';
import { tokenCreateText } from '../../src/server/http/token-command.js';
import { startBroker } from '../helpers/broker.js';
import { MAIN } from '../helpers/process-broker.js';
import { connect } from '../helpers/mqtt.js';
import { TOKENS, TOKEN_CONFIG, apiClient, startApiBroker } from './api-helpers.js';

describe('admin HTTP foundation', async () => {
  const { tb, api } = await startApiBroker();
  const app = tb.broker.http;
  app.route('GET', '/test/echo/:a/:b', null, (req) => ok({ params: req.params, q: req.query.get('q') }));
  app.route('GET', '/test/tail/*rest', null, (req) => ok({ rest: req.params['rest'] }));
  app.route('GET', '/test/tail/fixed', null, () => ok({ fixed: true }));
  app.route('POST', '/test/body', 'viewer', async (req) => ok({ got: await req.json() }));
  app.route('GET', '/test/admin', 'admin', (req) => ok({ who: req.principal }));
  app.route('GET', '/test/publisher', 'publisher', (req) => ok({ who: req.principal }));
  app.route('GET', '/test/sse', 'viewer', (req) => {
    const s = req.sse();
    let n = 0;
    const t = setInterval(() => {
      s.send('tick', { n: ++n });
      if (n === 3) s.send('multi', 'line one\nline two');
    }, 20);
    s.onClose(() => clearInterval(t));
    return undefined;
  });

  it('decodes :params and *tails; a raw slash tail equals a percent-encoded one; literal beats tail', async () => {
    expect((await api.get('/test/echo/a%2Fb/%24SYS%20x?q=1%2B1')).body).toEqual({ params: { a: 'a/b', b: '$SYS x' }, q: '1+1' });
    expect((await api.get('/test/tail/a%2Fb')).body).toEqual({ rest: 'a/b' });
    expect((await api.get('/test/tail/a/b')).body).toEqual({ rest: 'a/b' });
    expect((await api.get('/test/tail/a//b/')).body).toEqual({ rest: 'a//b/' });
    expect((await api.get('/test/tail/fixed')).body).toEqual({ fixed: true });
    const bad = await api.get('/test/echo/%E0%A4%A/x');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_PATH');
  });

  it('answers 404 and 405 (with Allow) as JSON error bodies', async () => {
    const nf = await api.get('/api/v1/nothing-here');
    expect(nf.status).toBe(404);
    expect(nf.body).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String) } });
    const na = await api.del('/test/admin');
    expect(na.status).toBe(405);
    expect(na.headers.get('allow')).toContain('GET');
    expect(na.body.error.code).toBe('METHOD_NOT_ALLOWED');
  });

  it('401 without a token or with a wrong one, with WWW-Authenticate: Bearer realm="junction"', async () => {
    for (const token of [null, 'f'.repeat(64)]) {
      const r = await api.get('/test/admin', token);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="junction"/);
      expect(r.body.error.code).toBe(token === null ? 'UNAUTHORIZED' : 'BAD_TOKEN');
    }
  });

  it('roles: viewer < publisher < admin, each including the ones below (403 otherwise)', async () => {
    expect((await api.get('/test/admin', TOKENS.admin)).body.who).toEqual({ name: 'admin-token', role: 'admin' });
    const low = await api.get('/test/admin', TOKENS.viewer);
    expect(low.status).toBe(403);
    expect(low.body.error.code).toBe('FORBIDDEN');
    expect((await api.get('/test/admin', TOKENS.publisher)).status).toBe(403);
    expect((await api.get('/test/publisher', TOKENS.publisher)).status).toBe(200);
    expect((await api.get('/test/publisher', TOKENS.admin)).status).toBe(200);
    expect((await api.get('/test/publisher', TOKENS.viewer)).status).toBe(403);
    expect((await api.post('/test/body', { a: 1 }, TOKENS.viewer)).body).toEqual({ got: { a: 1 } });
  });

  it('accepts Basic name:token (EMQX-style), and only with the token\'s own name', async () => {
    const basic = (user: string, token: string): Record<string, string> => ({ Authorization: `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}` });
    const good = await api.request('GET', '/test/admin', { token: null, headers: basic('admin-token', TOKENS.admin) });
    expect(good.status).toBe(200);
    const wrongName = await api.request('GET', '/test/admin', { token: null, headers: basic('viewer-token', TOKENS.admin) });
    expect(wrongName.status).toBe(401);
  });

  it('bodies: JSON read whatever the Content-Type; 400 BAD_JSON; 413 over 1 MiB (declared or streamed)', async () => {
    const form = await api.request('POST', '/test/body', { body: '{"x":[1,2]}', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(form.body).toEqual({ got: { x: [1, 2] } });
    const bad = await api.post('/test/body', '{nope');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_JSON');
    const big = await api.post('/test/body', JSON.stringify({ pad: 'x'.repeat(1 << 20) }));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    // Chunked, with no Content-Length: counted while reading.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(64 * 1024).fill(32));
        c.close();
      },
    });
    const res = await fetch(`${api.base}/test/body`, { method: 'POST', headers: { Authorization: `Bearer ${TOKENS.viewer}` }, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('SSE: fetch() + ReadableStream gets the headers at once, then events; the stream ends at close', async () => {
    const ac = new AbortController();
    const res = await fetch(`${api.base}/test/sse`, { headers: { Authorization: `Bearer ${TOKENS.viewer}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: multi')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    expect(text).toContain('event: tick\ndata: {"n":1}\n\n');
    expect(text).toContain('event: multi\ndata: line one\ndata: line two\n\n');
    expect(app.openStreams).toBeGreaterThan(0);
    ac.abort();
    await expect.poll(() => app.openStreams).toBe(0);
  });

  it('/health and /health/live need no token; /health = /health/ready', async () => {
    for (const p of ['/health', '/health/ready', '/health/live']) {
      const r = await api.get(p, null);
      expect(r.status, p).toBe(200);
      expect(r.body).toEqual({ status: 'ok' });
    }
  });

  it('plain requests on the WebSocket endpoint paths still get 426', async () => {
    const r = await fetch(`${api.base}/mqtt`);
    expect(r.status).toBe(426);
  });

  it('paging: stable key order, opaque cursors, limit 1..1000', () => {
    const items = ['d', 'b', 'a', 'c', 'e'];
    const p1 = paginate(items, (s) => s, pageRequest(new URLSearchParams('limit=2')));
    expect(p1.data).toEqual(['a', 'b']);
    const p2 = paginate([...items, 'aa'], (s) => s, pageRequest(new URLSearchParams({ limit: '2', cursor: p1.meta.nextCursor! })));
    expect(p2.data).toEqual(['c', 'd']);
    const p3 = paginate(items, (s) => s, pageRequest(new URLSearchParams({ limit: '2', cursor: p2.meta.nextCursor! })));
    expect(p3).toEqual({ data: ['e'], meta: { limit: 2, nextCursor: null } });
    expect(paginate(items, (s) => s, pageRequest(new URLSearchParams())).meta.limit).toBe(100);
    for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'cursor=%%%']) expect(() => pageRequest(new URLSearchParams(q)), q).toThrow();
  });

  it('junction token create prints a token whose SHA-256 is in the config line', () => {
    const text = tokenCreateText('ops', 'admin');
    const token = text.split('\n')[1]!;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(text).toContain(`- { name: ops, sha256: "${hashToken(token)}", role: admin }`);
  });
});

describe('admin HTTP: brute force', async () => {
  const { tb, api } = await startApiBroker();
  tb.broker.http.route('GET', '/api/v1/test-limit', 'viewer', () => ok({}));

  it('429 after 20 failed tokens from one address in a minute, even for a right token; missing tokens do not count', async () => {
    for (let i = 0; i < 5; i++) expect((await api.get('/api/v1/test-limit', null)).status).toBe(401);
    for (let i = 0; i < 20; i++) expect((await api.get('/api/v1/test-limit', 'bad' + i)).status).toBe(401);
    const blocked = await api.get('/api/v1/test-limit', TOKENS.admin);
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('TOO_MANY_AUTH_FAILURES');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Public paths are not affected.
    expect((await api.get('/health', null)).status).toBe(200);
  });
});

describe('admin HTTP: admin.bind', async () => {
  // As the YAML file holds it (a string); the config reads it into { host, port }.
  const { tb, api } = await startApiBroker({ config: { admin: { bind: '127.0.0.1:0' as never } } });

  it('serves the API on its own listener; the device http listener then serves WebSocket upgrades only', async () => {
    expect(api.base).not.toBe(`http://127.0.0.1:${tb.httpPort}`);
    expect((await api.get('/health', null)).status).toBe(200);
    expect((await api.get('/test/none', null)).status).toBe(404);
    const device = apiClient(`http://127.0.0.1:${tb.httpPort}`);
    const r = await device.get('/health', null);
    expect(r.status).toBe(404);
    expect(r.body).toBeUndefined();
    // MQTT over WebSocket still works there.
    const c = await connect(0, { protocol: 'ws', host: '127.0.0.1', port: tb.httpPort, path: '/mqtt' } as never).catch((e: unknown) => e);
    expect(c).not.toBeInstanceOf(Error);
  });
});

describe('admin HTTP: health while not ready', async () => {
  const tb = await startBroker({ config: { admin: { tokens: TOKEN_CONFIG } } });
  const api = apiClient(`http://127.0.0.1:${tb.httpPort}`);

  it('503 with only the check names when a configured listener is not bound; /health/live stays 200', async () => {
    await tb.broker.listeners.find((l) => l.spec.name === 'stomp')!.close();
    const r = await api.get('/health', null);
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ status: 'fail', checks: { storage: 'ok', listeners: 'fail', draining: 'ok' } });
    expect((await api.get('/health/live', null)).status).toBe(200);
  });
});

describe('junction token create (CLI)', () => {
  it('parses NAME and --role; refuses a missing or unknown role and a bad name', () => {
    expect(parseCli(['token', 'create', 'ops', '--role', 'admin'])).toEqual({ kind: 'token-create', name: 'ops', role: 'admin' });
    for (const argv of [['token', 'create', 'ops'], ['token', 'create', 'ops', '--role', 'root'], ['token', 'create', 'a b', '--role', 'viewer'], ['token', 'create', '--role', 'viewer']]) {
      expect(parseCli(argv).kind, argv.join(' ')).toBe('error');
    }
  });

  it('prints the token and its config line', () => {
    const out = execFileSync(process.execPath, [MAIN, 'token', 'create', 'ci', '--role', 'viewer'], { encoding: 'utf8' });
    const token = out.split('\n')[1]!;
    expect(out).toContain(`- { name: ci, sha256: "${hashToken(token)}", role: viewer }`);
  });
});
