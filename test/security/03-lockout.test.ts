/**
 * Lockout: failed logins counted per source address within a window; after `attempts` of them
 * the address is refused for `duration` seconds (v5 0x8A Banned, 3.1.1 5, STOMP ERROR) even with
 * the right password and without asking the hook; logged and counted; a success clears the count;
 * failures older than the window do not count; MQTT and STOMP failures add up; an auth hook outage
 * is not a wrong password and locks nobody out. Each case has a broker of its own (every client
 * here comes from 127.0.0.1, one address).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/disk.js';
import { sleep } from '../helpers/mqtt.js';
import { freePort } from '../helpers/process-broker.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { RC, connack, mosquittoPasswd } from './setup.js';

describe('lockout after repeated failed logins', async () => {
  const dir = tempDir('junction-lockout-');
  const passwordFile = join(dir, 'passwd');
  // mosquitto_passwd's 101 iterations: many failed logins, quickly.
  await mosquittoPasswd(passwordFile, 'lee', 'right');
  const lockout = { attempts: 3, window: 60, duration: 1 };
  const good = { username: 'lee', password: 'right' };
  const bad = { username: 'lee', password: 'wrong' };

  async function admitted(port: number, version: 4 | 5 = 5): Promise<boolean> {
    const r = await connack(port, version, good);
    r.raw.end();
    return r.code === 0;
  }

  it('the third failure locks the address out: 0x8A (v5) / 5 (3.1.1) / STOMP ERROR even with the right password, until the cool-down ends', async () => {
    const b = await startBroker({ config: { auth: { passwordFile, lockout } } });
    const stats = b.broker.core.stats;
    const mark = b.logs.length;
    for (let i = 0; i < 3; i++) expect((await connack(b.port, 5, bad)).code).toBe(RC.v5.badCredentials);
    expect(stats.authBans).toBe(1);
    const line = b.logs.slice(mark).find((l) => l.msg === 'address locked out after repeated failed logins');
    expect(line?.level).toBe('warn');
    expect(line?.fields).toMatchObject({ address: '127.0.0.1', seconds: 1 });
    const banned = await connack(b.port, 5, good);
    expect(banned.code).toBe(RC.v5.banned);
    expect(banned.closed).toBe(true);
    expect((await connack(b.port, 4, good)).code).toBe(RC.v4.notAuthorized);
    const stomp = await StompRaw.connect(b.stompPort);
    stomp.send('CONNECT', { 'accept-version': '1.2', host: 'junction', login: 'lee', passcode: 'right' });
    expect((await stomp.expectError()).body.toString()).toMatch(/banned/);
    expect(stats.authBanned).toBe(3);
    await sleep(1100);
    expect(await admitted(b.port, 5)).toBe(true);
    expect(await admitted(b.port, 4)).toBe(true);
    await b.stop();
  });

  it('a successful login clears the count', async () => {
    const b = await startBroker({ config: { auth: { passwordFile, lockout } } });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) expect((await connack(b.port, 5, bad)).code).toBe(RC.v5.badCredentials);
      expect(await admitted(b.port)).toBe(true);
    }
    expect(b.broker.core.stats.authBans).toBe(0);
    await b.stop();
  });

  it('failures older than the window do not count', async () => {
    const b = await startBroker({ config: { auth: { passwordFile, lockout: { attempts: 3, window: 1, duration: 60 } } } });
    for (let i = 0; i < 2; i++) await connack(b.port, 5, bad);
    await sleep(1100);
    for (let i = 0; i < 2; i++) expect((await connack(b.port, 5, bad)).code).toBe(RC.v5.badCredentials);
    expect(await admitted(b.port)).toBe(true);
    await b.stop();
  });

  it('MQTT and STOMP failures from one address add up', async () => {
    const b = await startBroker({ config: { auth: { passwordFile, lockout } } });
    await connack(b.port, 5, bad);
    await connack(b.port, 4, bad);
    const stomp = await StompRaw.connect(b.stompPort);
    stomp.send('CONNECT', { 'accept-version': '1.2', host: 'junction', login: 'lee', passcode: 'wrong' });
    expect(hdr(await stomp.expectError(), 'message')).toBe('access refused');
    expect((await connack(b.port, 5, good)).code).toBe(RC.v5.banned);
    await b.stop();
  });

  it('lockout.attempts 0 never locks out', async () => {
    const b = await startBroker({ config: { auth: { passwordFile, lockout: { attempts: 0 } } } });
    for (let i = 0; i < 6; i++) await connack(b.port, 5, bad);
    expect(await admitted(b.port)).toBe(true);
    await b.stop();
  });

  describe('with an auth hook', () => {
    /** A hook on `port` that admits everyone, counting requests; closed after the test file. */
    async function hookOn(port = 0): Promise<{ url: string; asked: () => number }> {
      let asked = 0;
      const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          asked++;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
        });
      });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      afterAll(() => server.close());
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, asked: () => asked };
    }

    it('a locked-out address is refused without asking the hook', async () => {
      const hook = await hookOn();
      const b = await startBroker({ config: { auth: { passwordFile, http: { url: hook.url, cacheSeconds: 0 }, lockout } } });
      for (let i = 0; i < 3; i++) await connack(b.port, 5, bad); // lee is in the password file: no hook
      expect((await connack(b.port, 5, { username: 'hooked', password: 'x' })).code).toBe(RC.v5.banned);
      expect(hook.asked()).toBe(0);
      await b.stop();
    });

    it('a hook that cannot be reached is an outage, not a wrong password: it locks nobody out', async () => {
      const port = await freePort();
      const b = await startBroker({ config: { auth: { http: { url: `http://127.0.0.1:${port}/`, cacheSeconds: 0 }, lockout } } });
      // Nothing listens yet: each login is refused as the hook is unavailable (0x87), more often than `attempts`.
      for (let i = 0; i < lockout.attempts + 1; i++) expect((await connack(b.port, 5, { username: 'hooked', password: 'x' })).code).toBe(RC.v5.notAuthorized);
      const hook = await hookOn(port);
      const r = await connack(b.port, 5, { username: 'hooked', password: 'x' });
      expect(r.code).toBe(0);
      expect(hook.asked()).toBe(1);
      r.raw.end();
      expect(b.broker.core.stats.authBans).toBe(0);
      await b.stop();
    });
  });
});
