/**
 * Authentication with a password file: MQTT 3.1.1 return codes 4/5 and MQTT 5 reason codes
 * 0x86/0x87 on raw sockets, MQTT.js over TCP and WebSocket, mosquitto_pub with -u/-P, STOMP
 * login/passcode (raw frames and stompit); anonymous access off by default with a password file
 * and on per listener; client certificates authenticate without a password and their CN is the
 * identity even when a username is sent; password files made by `junction passwd` and by Debian's
 * `mosquitto_passwd` work in either program (Mosquitto itself accepts a file Junction wrote).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/disk.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { freePort } from '../helpers/process-broker.js';
import { StompRaw, hdr, stompitConnect, stompitDisconnect, stompjsConnect } from '../helpers/stomp.js';
import { makeDevCerts } from '../listeners/certs.js';
import { run } from '../helpers/run.js';
import { RC, accepting, connack, junctionPasswd, mosquittoPasswd, nonce, publishCode, setPassword, subscribeCode } from './setup.js';

describe('authentication: password file', async () => {
  const dir = tempDir('junction-auth-');
  const passwordFile = join(dir, 'passwd');
  // Interop both ways: mosquitto_passwd creates the file, junction passwd adds to it (keeping bob),
  // then mosquitto_passwd adds to the file junction rewrote.
  await mosquittoPasswd(passwordFile, 'bob', 'bob-secret');
  await setPassword(passwordFile, 'alice', 'alice-secret');
  await mosquittoPasswd(passwordFile, 'carol', 'carol: with spaces and a colon');
  const aclFile = join(dir, 'acl');
  writeFileSync(
    aclFile,
    [
      'topic readwrite anon/#',
      'user alice',
      'topic readwrite #',
      'user bob',
      'topic readwrite #',
      'user carol',
      'topic readwrite #',
      // The client certificate's CN is the username: this identity may only use its own topics.
      'user sensor-7',
      'topic readwrite devices/sensor-7/#',
      '',
    ].join('\n'),
  );
  const certs = makeDevCerts(tempDir('junction-auth-tls-'), 'sensor-7');
  const server = { cert: certs.serverCert, key: certs.serverKey };
  const b = await startBroker({
    config: {
      auth: { passwordFile, aclFile, lockout: { attempts: 0 } },
      listeners: [
        { name: 'mqtt', protocol: 'mqtt', host: '127.0.0.1', port: 0 },
        { name: 'open', protocol: 'mqtt', host: '127.0.0.1', port: 0, allowAnonymous: true },
        { name: 'stomp', protocol: 'stomp', host: '127.0.0.1', port: 0 },
        { name: 'stomp-open', protocol: 'stomp', host: '127.0.0.1', port: 0, allowAnonymous: true },
        { name: 'http', protocol: 'http', host: '127.0.0.1', port: 0 },
        { name: 'mutual', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { ...server, ca: certs.ca, requireClientCert: true, useIdentityAs: 'cn' } },
      ],
    },
  });
  const port = (name: string): number => b.broker.port(name);
  const stats = b.broker.core.stats;
  const alice = { username: 'alice', password: 'alice-secret' };

  it('the start-up log says anonymous access is off and why (a password file is set)', () => {
    const line = b.logs.find((l) => l.msg === 'access control');
    expect(line?.fields).toMatchObject({ allowAnonymous: false, allowAnonymousBecause: 'a password file or auth hook is set', users: 3, aclRules: 5 });
    expect(line?.fields['anonymousPerListener']).toEqual({ open: true, 'stomp-open': true });
  });

  it('junction passwd writes $7$ PBKDF2-SHA512 hashes, mode 0600, and kept the users mosquitto_passwd wrote', () => {
    const lines = readFileSync(passwordFile, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(':')[0])).toEqual(['alice', 'bob', 'carol']);
    expect(lines[0]).toMatch(/^alice:\$7\$100000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(lines[1]).toMatch(/^bob:\$7\$101\$/); // mosquitto_passwd 2.0's iteration count
    expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
  });

  describe('MQTT 3.1.1 CONNACK return codes', () => {
    it('right password: 0; wrong password or unknown user: 4 (bad user name or password), then closed', async () => {
      const ok = await connack(port('mqtt'), 4, alice);
      expect(ok.code).toBe(RC.v4.accepted);
      ok.raw.end();
      for (const creds of [
        { username: 'alice', password: 'wrong' },
        { username: 'alice', password: '' },
        { username: 'alice' },
        { username: 'mallory', password: 'alice-secret' },
      ]) {
        const r = await connack(port('mqtt'), 4, creds);
        expect(r.code, JSON.stringify(creds)).toBe(RC.v4.badCredentials);
        expect(r.closed).toBe(true);
      }
    });

    it('no username where anonymous access is off: 5 (not authorized)', async () => {
      const r = await connack(port('mqtt'), 4);
      expect(r.code).toBe(RC.v4.notAuthorized);
      expect(r.closed).toBe(true);
    });
  });

  describe('MQTT 5 CONNACK reason codes', () => {
    it('right password: 0x00; wrong password or unknown user: 0x86; no username: 0x87', async () => {
      const ok = await connack(port('mqtt'), 5, { username: 'bob', password: 'bob-secret' });
      expect(ok.code).toBe(RC.v5.success);
      ok.raw.end();
      expect((await connack(port('mqtt'), 5, { username: 'bob', password: 'bob-secret ' })).code).toBe(RC.v5.badCredentials);
      expect((await connack(port('mqtt'), 5, { username: 'nobody', password: 'x' })).code).toBe(RC.v5.badCredentials);
      const anon = await connack(port('mqtt'), 5);
      expect(anon.code).toBe(RC.v5.notAuthorized);
      expect(anon.closed).toBe(true);
    });

    it('refusals are counted and logged with the reason; nothing of the client stays behind', async () => {
      const failures = stats.authFailures;
      const mark = b.logs.length;
      const clientId = `refused-${nonce()}`;
      await connack(port('mqtt'), 5, { clientId, username: 'alice', password: 'nope' });
      expect(stats.authFailures).toBe(failures + 1);
      const line = b.logs.slice(mark).find((l) => l.msg === 'connection refused');
      expect(line?.fields).toMatchObject({ clientId, reason: 'authentication failed: bad-credentials', code: RC.v5.badCredentials });
      expect(b.broker.core.sessions.get(clientId)).toBeUndefined();
    });
  });

  it('a password holding spaces and a colon (set by mosquitto_passwd) works', async () => {
    const r = await connack(port('mqtt'), 5, { username: 'carol', password: 'carol: with spaces and a colon' });
    expect(r.code).toBe(0);
    r.raw.end();
  });

  it('MQTT.js (3.1.1 and 5) with credentials publishes and subscribes; with a wrong password it gets the error', async () => {
    for (const protocolVersion of [4, 5] as const) {
      const topic = `auth/mqttjs/${protocolVersion}/${nonce()}`;
      const sub = await connect(port('mqtt'), { protocolVersion, ...alice });
      await sub.subscribeAsync(topic, { qos: 1 });
      const pub = await connect(port('mqtt'), { protocolVersion, username: 'bob', password: 'bob-secret' });
      await pub.publishAsync(topic, 'hello', { qos: 1 });
      await until(() => sub.received.length === 1);
      const err = await connect(port('mqtt'), { protocolVersion, username: 'alice', password: 'wrong' }).then(
        () => undefined,
        (e: unknown) => e as Error & { code?: number },
      );
      expect(err?.code).toBe(protocolVersion === 5 ? RC.v5.badCredentials : RC.v4.badCredentials);
    }
  });

  it('mosquitto_pub and mosquitto_sub with -u/-P (3.1.1 and 5); a wrong -P is refused and publishes nothing', async () => {
    for (const V of ['mqttv311', 'mqttv5']) {
      const topic = `auth/mosquitto/${V}/${nonce()}`;
      const base = ['-h', '127.0.0.1', '-p', String(port('mqtt')), '-V', V];
      const sub = run('mosquitto_sub', [...base, '-u', 'bob', '-P', 'bob-secret', '-t', topic, '-C', '1', '-W', '8']);
      const watcher = await connect(port('mqtt'), alice);
      await watcher.subscribeAsync(topic, { qos: 1 });
      await until(() => b.broker.core.router.subscribersOf(topic).length === 2, 5000, 'mosquitto_sub subscribed');
      const bad = await run('mosquitto_pub', [...base, '-u', 'alice', '-P', 'wrong', '-t', topic, '-m', 'must not arrive', '-q', '1']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/bad user name or password|not authori[sz]ed/i);
      const good = await run('mosquitto_pub', [...base, '-u', 'alice', '-P', 'alice-secret', '-t', topic, '-m', `from ${V}`, '-q', '1']);
      expect(good.code, good.stderr).toBe(0);
      const got = await sub;
      expect(got.stdout.trim()).toBe(`from ${V}`);
      await until(() => watcher.received.length === 1);
      expect(watcher.received.map((m) => m.payload.toString())).toEqual([`from ${V}`]);
    }
  });

  describe('anonymous access per listener', () => {
    it('a listener with allowAnonymous: true admits clients without a username (3.1.1 and 5); the others refuse them', async () => {
      for (const v of [4, 5] as const) {
        const open = await connack(port('open'), v);
        expect(open.code).toBe(0);
        open.raw.end();
        expect((await connack(port('mqtt'), v)).code).toBe(v === 5 ? RC.v5.notAuthorized : RC.v4.notAuthorized);
      }
    });

    it('on the anonymous listener a username still needs its password', async () => {
      expect((await connack(port('open'), 5, { username: 'alice', password: 'wrong' })).code).toBe(RC.v5.badCredentials);
      const ok = await connack(port('open'), 5, alice);
      expect(ok.code).toBe(0);
      ok.raw.end();
    });

    it('anonymous clients get the ACL rules before any user line', async () => {
      const anon = await connect(port('open'));
      await anon.subscribeAsync('anon/#', { qos: 1 });
      expect(await subscribeCode(anon, `other/${nonce()}`)).toBe(0x87);
      const pub = await connect(port('mqtt'), alice);
      await pub.publishAsync(`anon/${nonce()}`, 'to anonymous', { qos: 1 });
      await until(() => anon.received.length === 1);
    });
  });

  describe('STOMP login/passcode', () => {
    it('a right login is CONNECTED; a wrong passcode, an unknown login and no login get ERROR and close', async () => {
      const ok = await StompRaw.connect(port('stomp'));
      await ok.handshake({ 'accept-version': '1.2', host: 'junction', login: 'alice', passcode: 'alice-secret' });
      ok.end();
      for (const headers of [{ login: 'alice', passcode: 'wrong' }, { login: 'mallory', passcode: 'x' }, {}] as Array<Record<string, string>>) {
        const c = await StompRaw.connect(port('stomp'));
        c.send('CONNECT', { 'accept-version': '1.2', host: 'junction', ...headers });
        const err = await c.expectError();
        expect(hdr(err, 'message'), JSON.stringify(headers)).toBe('access refused');
        expect(err.body.toString()).toMatch('login' in headers ? /bad login or passcode/ : /not-authorized/);
      }
    });

    it('a STOMP 1.0 client with a wrong passcode gets ERROR too', async () => {
      const c = await StompRaw.connect(port('stomp'));
      c.send('CONNECT', { login: 'bob', passcode: 'wrong' });
      expect((await c.expectError()).command).toBe('ERROR');
    });

    it('stompit and @stomp/stompjs connect with login/passcode; with a wrong passcode stompjs gets the ERROR', async () => {
      const client = await stompitConnect(port('stomp'), { login: 'bob', passcode: 'bob-secret' });
      await stompitDisconnect(client);
      const js = await stompjsConnect(port('stomp'), { connectHeaders: { host: 'junction', login: 'carol', passcode: 'carol: with spaces and a colon' } });
      await js.client.deactivate();
      await expect(stompjsConnect(port('stomp'), { connectHeaders: { host: 'junction', login: 'bob', passcode: 'bob' } })).rejects.toThrow(/ERROR access refused/);
    });

    it('a STOMP listener with allowAnonymous: true admits a client without login', async () => {
      const c = await StompRaw.connect(port('stomp-open'));
      const f = await c.handshake({ 'accept-version': '1.2', host: 'junction' });
      expect(f.command).toBe('CONNECTED');
      c.end();
    });
  });

  describe('MQTT over WebSocket', () => {
    it('credentials as over TCP: right password connects and delivers, wrong one and none are refused', async () => {
      const topic = `auth/ws/${nonce()}`;
      const web = await connect(port('http'), { protocol: 'ws', path: '/mqtt', ...alice });
      await web.subscribeAsync(topic, { qos: 1 });
      const tcp = await connect(port('mqtt'), { username: 'bob', password: 'bob-secret' });
      await tcp.publishAsync(topic, 'over ws', { qos: 1 });
      await until(() => web.received.length === 1);
      for (const [opts, code] of [
        [{ username: 'alice', password: 'bad' }, RC.v5.badCredentials],
        [{}, RC.v5.notAuthorized],
      ] as const) {
        const err = await connect(port('http'), { protocol: 'ws', path: '/mqtt', ...opts }).then(
          () => undefined,
          (e: unknown) => e as Error & { code?: number },
        );
        expect(err?.code).toBe(code);
      }
      const v4 = await connect(port('http'), { protocol: 'ws', path: '/mqtt', protocolVersion: 4, username: 'alice', password: 'bad' }).catch((e: unknown) => e as Error & { code?: number });
      expect((v4 as { code?: number }).code).toBe(RC.v4.badCredentials);
    });
  });

  describe('client certificates', () => {
    const ca = readFileSync(certs.ca);
    const cert = readFileSync(certs.clientCert);
    const key = readFileSync(certs.clientKey);

    it('a verified certificate authenticates without a password; its CN is the identity the ACL sees', async () => {
      const watcher = await connect(port('mqtt'), alice);
      await watcher.subscribeAsync('devices/#', { qos: 1 });
      const device = await connect(port('mutual'), { protocol: 'mqtts', ca, cert, key, servername: 'localhost' });
      await device.publishAsync('devices/sensor-7/temp', '21.5', { qos: 1 });
      // Not its topic: sensor-7 may only write devices/sensor-7/#.
      expect(await publishCode(device, 'devices/sensor-8/temp', 'spoof', 1)).toBe(0x87);
      await until(() => watcher.received.length >= 1);
      await sleep(100);
      expect(watcher.received.map((m) => m.topic)).toEqual(['devices/sensor-7/temp']);
    });

    it('a username sent with a certificate does not replace the certificate identity', async () => {
      // alice may write anywhere; the certificate says sensor-7, and that is who this client is.
      const device = await connect(port('mutual'), { protocol: 'mqtts', ca, cert, key, servername: 'localhost', username: 'alice', password: 'not checked' });
      expect(await publishCode(device, 'devices/sensor-8/temp', 'as alice?', 1)).toBe(0x87);
    });

    it('mosquitto_pub with --cert/--key and no -u/-P publishes as the CN', async () => {
      const topic = `devices/sensor-7/${nonce()}`;
      const watcher = await connect(port('mqtt'), alice);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const r = await run('mosquitto_pub', ['--cafile', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, '-h', 'localhost', '-p', String(port('mutual')), '-t', topic, '-m', 'by certificate', '-q', '1']);
      expect(r.code, r.stderr).toBe(0);
      await until(() => watcher.received.length === 1);
      expect(watcher.received[0]!.payload.toString()).toBe('by certificate');
    });
  });
});

describe('junction passwd', () => {
  const dir = tempDir('junction-passwd-');

  it('-D removes a user; errors name the problem and exit 1', async () => {
    const file = join(dir, 'users');
    await setPassword(file, 'dave', 'one');
    await setPassword(file, 'erin', 'two');
    const del = await junctionPasswd(['-D', file, 'dave'], '');
    expect(del.code, del.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^erin:\$7\$/);
    expect(readFileSync(file, 'utf8')).not.toContain('dave');
    const missing = await junctionPasswd(['-D', file, 'dave'], '');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no user "dave"');
    const empty = await junctionPasswd(['--password-stdin', file, 'frank'], '\n');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('empty password');
    const noTty = await junctionPasswd([file, 'frank'], 'typed\n');
    expect(noTty.code).toBe(1);
    expect(noTty.stderr).toContain('--password-stdin');
  }, 60_000);

  it('refuses to rewrite a file with a line it cannot read, naming file and line, and leaves it alone', async () => {
    const file = join(dir, 'broken');
    writeFileSync(file, 'ok:$7$101$c2FsdA==$aGFzaA==\nplain:secret\n');
    const r = await junctionPasswd(['--password-stdin', file, 'new'], 'pw\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:2: unsupported hash for "plain"`);
    expect(readFileSync(file, 'utf8')).toContain('plain:secret');
  }, 60_000);
});

// Mosquitto (Debian's 2.0) reads a password file that junction passwd wrote.
const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

describe('Mosquitto reads a password file junction passwd wrote', () => {
  it.skipIf(MOSQUITTO === undefined)('mosquitto_pub logs in to Mosquitto as a user junction passwd made; a wrong password is refused', async () => {
    const dir = tempDir('junction-mosq-');
    const file = join(dir, 'passwd');
    await setPassword(file, 'alice', 'alice-secret');
    const mqttPort = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    // `user root`: as root Mosquitto would switch to the mosquitto user, who cannot read a 0600 file of ours.
    writeFileSync(conf, `user root\nlistener ${mqttPort} 127.0.0.1\npassword_file ${file}\n`);
    const proc = spawn(MOSQUITTO!, ['-c', conf], { stdio: 'ignore' });
    try {
      const base = ['-h', '127.0.0.1', '-p', String(mqttPort), '-t', 'interop', '-m', 'x'];
      await accepting(mqttPort);
      const ok = await run('mosquitto_pub', [...base, '-u', 'alice', '-P', 'alice-secret']);
      expect(ok.code, ok.stderr).toBe(0);
      const bad = await run('mosquitto_pub', [...base, '-u', 'alice', '-P', 'wrong']);
      expect(bad.code).not.toBe(0);
    } finally {
      proc.kill('SIGTERM');
    }
  }, 60_000);
});
