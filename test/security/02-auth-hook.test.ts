/**
 * The HTTP auth hook against a small HTTP server in this test: a 2xx with {"ok":true} admits;
 * {"ok":false}, another status, a body that is not JSON, a timeout and an unreachable hook deny;
 * answers are remembered for cacheSeconds (both kinds, keyed by the credentials), an outage is
 * not; users in the password file never reach the hook; MQTT (TCP and WebSocket) and STOMP alike.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/disk.js';
import { connect, sleep } from '../helpers/mqtt.js';
import { freePort } from '../helpers/process-broker.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { RC, connack, nonce, setPassword } from './setup.js';

interface HookRequest {
  readonly protocol: string;
  readonly clientId: string;
  readonly username: string | null;
  readonly password: string | null;
  readonly remoteAddress: string;
  readonly listener: string;
  readonly certIdentity: string | null;
  readonly method: string;
  readonly contentType: string | undefined;
}

/**
 * The hook: admits `<name>` with password `pw-<name>` as {"ok":true}; usernames starting with a
 * keyword get that behaviour instead (deny, status, created, badjson, truthy, slow).
 */
async function startHook(): Promise<{ url: string; requests: HookRequest[]; asked: (username: string) => number }> {
  const requests: HookRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const r = { ...(JSON.parse(body) as HookRequest), method: req.method ?? '', contentType: req.headers['content-type'] };
      requests.push(r);
      const user = r.username ?? '';
      const json = (status: number, value: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (user.startsWith('deny')) return json(200, { ok: false });
      if (user.startsWith('status')) return json(403, { ok: true });
      if (user.startsWith('created')) return json(201, { ok: true });
      if (user.startsWith('truthy')) return json(200, { ok: 'yes' });
      if (user.startsWith('badjson')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"ok": true');
      }
      if (user.startsWith('slow')) return void setTimeout(() => json(200, { ok: true }), 3000);
      json(200, { ok: r.password === `pw-${user}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/auth`, requests, asked: (username) => requests.filter((r) => r.username === username).length };
}

describe('HTTP auth hook', async () => {
  const hook = await startHook();
  const dir = tempDir('junction-hook-');
  const passwordFile = join(dir, 'passwd');
  await setPassword(passwordFile, 'fileuser', 'file-secret');
  // A timeout with room for a loaded machine (the whole suite on 2 cores); one broker with a short
  // one for the hook that answers after 3 s.
  const auth = (cacheSeconds: number, url = hook.url, timeout = 5000) => ({ http: { url, timeout, cacheSeconds }, lockout: { attempts: 0 } });
  const b = await startBroker({ config: { auth: { ...auth(60), passwordFile } } });
  const impatient = await startBroker({ config: { auth: auth(60, hook.url, 500) } });
  const uncached = await startBroker({ config: { auth: auth(0) } });
  const shortCache = await startBroker({ config: { auth: auth(2) } });
  const unreachable = await startBroker({ config: { auth: auth(60, `http://127.0.0.1:${await freePort()}/auth`) } });
  const user = (tag: string): string => `${tag}-${nonce()}`;

  it('admits on a 2xx with {"ok":true}: a JSON POST with the credentials, client id, address and listener', async () => {
    const name = user('admit');
    const clientId = `hook-${nonce()}`;
    const r = await connack(b.port, 5, { clientId, username: name, password: `pw-${name}` });
    expect(r.code).toBe(RC.v5.success);
    r.raw.end();
    const req = hook.requests.find((q) => q.username === name)!;
    expect(req).toMatchObject({ method: 'POST', contentType: 'application/json', protocol: 'mqtt', clientId, password: `pw-${name}`, listener: 'mqtt', certIdentity: null });
    expect(req.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    const created = user('created');
    const c = await connack(b.port, 4, { username: created, password: 'anything' });
    expect(c.code).toBe(RC.v4.accepted);
    c.raw.end();
  });

  it('denies {"ok":false} and a wrong password as bad credentials (0x86 / 4)', async () => {
    expect((await connack(b.port, 5, { username: user('deny'), password: 'x' })).code).toBe(RC.v5.badCredentials);
    const name = user('admit');
    expect((await connack(b.port, 4, { username: name, password: 'wrong' })).code).toBe(RC.v4.badCredentials);
  });

  it('denies a non-2xx status even with {"ok":true}, a body that is not JSON, and an "ok" that is not true', async () => {
    for (const tag of ['status', 'badjson', 'truthy']) {
      const name = user(tag);
      const r = await connack(b.port, 5, { username: name, password: 'x' });
      expect(r.code, tag).toBe(RC.v5.badCredentials);
      expect(hook.asked(name), tag).toBe(1);
    }
  });

  it('a hook that does not answer within the timeout denies (0x87), says why in the log, and is not remembered', async () => {
    const name = user('slow');
    const mark = impatient.logs.length;
    const started = Date.now();
    const r = await connack(impatient.port, 5, { username: name, password: 'x' });
    expect(r.code).toBe(RC.v5.notAuthorized);
    expect(Date.now() - started).toBeLessThan(2800); // the hook answers after 3 s
    expect(impatient.logs.slice(mark).find((l) => l.msg === 'auth hook refused')?.fields['why']).toBe('hook timed out after 500 ms');
    expect((await connack(impatient.port, 4, { username: name, password: 'x' })).code).toBe(RC.v4.notAuthorized);
    expect(hook.asked(name)).toBe(2);
  });

  it('an unreachable hook denies', async () => {
    const r = await connack(unreachable.port, 5, { username: user('admit'), password: 'x' });
    expect(r.code).toBe(RC.v5.notAuthorized);
    expect(unreachable.logs.find((l) => l.msg === 'auth hook refused')?.fields['why']).toMatch(/^hook unreachable/);
  });

  // The hook sees the client id and may decide by it, so an answer is remembered for the same
  // client id, username, password, protocol and listener: a device that reconnects.
  it('answers are remembered for cacheSeconds: the same credentials are not asked again, other ones are', async () => {
    const name = user('admit');
    const clientId = `device-${nonce()}`;
    for (let i = 0; i < 3; i++) {
      const r = await connack(b.port, i === 1 ? 4 : 5, { clientId, username: name, password: `pw-${name}` });
      expect(r.code).toBe(0);
      r.raw.end();
    }
    expect(hook.asked(name)).toBe(1);
    // A refusal is remembered too, separately from the admitted password.
    expect((await connack(b.port, 5, { clientId, username: name, password: 'guess' })).code).toBe(RC.v5.badCredentials);
    expect((await connack(b.port, 5, { clientId, username: name, password: 'guess' })).code).toBe(RC.v5.badCredentials);
    expect(hook.asked(name)).toBe(2);
    // Another client id with the same username and password is asked about.
    const other = await connack(b.port, 5, { username: name, password: `pw-${name}` });
    expect(other.code).toBe(0);
    other.raw.end();
    expect(hook.asked(name)).toBe(3);
  });

  it('cacheSeconds 0 asks every time; a short cache asks again once it expired', async () => {
    const name = user('admit');
    const clientId = `device-${nonce()}`;
    for (let i = 0; i < 2; i++) (await connack(uncached.port, 5, { clientId, username: name, password: `pw-${name}` })).raw.end();
    expect(hook.asked(name)).toBe(2);
    const other = user('admit');
    for (let i = 0; i < 2; i++) (await connack(shortCache.port, 5, { clientId, username: other, password: `pw-${other}` })).raw.end();
    expect(hook.asked(other)).toBe(1);
    await sleep(2100);
    const again = await connack(shortCache.port, 5, { clientId, username: other, password: `pw-${other}` });
    expect(again.code).toBe(0);
    again.raw.end();
    expect(hook.asked(other)).toBe(2);
  });

  it('users of the password file are checked there and never sent to the hook', async () => {
    const before = hook.requests.length;
    const ok = await connack(b.port, 5, { username: 'fileuser', password: 'file-secret' });
    expect(ok.code).toBe(0);
    ok.raw.end();
    expect((await connack(b.port, 5, { username: 'fileuser', password: `pw-fileuser` })).code).toBe(RC.v5.badCredentials);
    expect(hook.requests.length).toBe(before);
  });

  it('no username: anonymous access is off by default when a hook is set, and the hook is not asked', async () => {
    const before = hook.requests.length;
    expect((await connack(b.port, 5)).code).toBe(RC.v5.notAuthorized);
    expect(hook.requests.length).toBe(before);
    expect(b.logs.find((l) => l.msg === 'access control')?.fields).toMatchObject({ allowAnonymous: false, authHook: hook.url });
  });

  it('STOMP login/passcode go to the hook as protocol "stomp"; a refusal is an ERROR', async () => {
    const name = user('admit');
    const c = await StompRaw.connect(b.stompPort);
    await c.handshake({ 'accept-version': '1.2', host: 'junction', login: name, passcode: `pw-${name}` });
    c.end();
    expect(hook.requests.find((q) => q.username === name)).toMatchObject({ protocol: 'stomp', listener: 'stomp', password: `pw-${name}` });
    const denied = await StompRaw.connect(b.stompPort);
    denied.send('CONNECT', { 'accept-version': '1.2', host: 'junction', login: user('deny'), passcode: 'x' });
    expect(hdr(await denied.expectError(), 'message')).toBe('access refused');
  });

  it('MQTT over WebSocket goes to the hook with the http listener name', async () => {
    const name = user('admit');
    const web = await connect(b.httpPort, { protocol: 'ws', path: '/mqtt', username: name, password: `pw-${name}` });
    expect(web.connected).toBe(true);
    expect(hook.requests.find((q) => q.username === name)?.listener).toBe('http');
    const err = await connect(b.httpPort, { protocol: 'ws', path: '/mqtt', username: user('deny'), password: 'x' }).catch((e: unknown) => e as { code?: number });
    expect((err as { code?: number }).code).toBe(RC.v5.badCredentials);
  });
});
