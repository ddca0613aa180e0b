/**
 * Listener configuration and start-up: the default listeners (design.md), a `listeners:` list
 * replacing them, its errors (file, key path, item), and start-up refusals that name the listener
 * and the port (port in use, unreadable certificate or key, key not matching the certificate, bad
 * CA, passphrase, cipher list), after which nothing stays open. `junction certs` and the flags
 * `--http-port`, `--tls-cert`, `--tls-key`: TLS in two commands.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/server/broker.js';
import { parseCli } from '../../src/server/cli.js';
import { ConfigError, DEFAULT_CONFIG, listenersOf, loadConfig, validateConfig } from '../../src/server/config.js';
import { ListenerError } from '../../src/server/listeners.js';
import { silentLogger } from '../../src/core/log.js';
import { MemoryStore } from '../../storage/memory.js';
import { MAIN, freePort, startBrokerProcess, type BrokerProcess } from '../helpers/process-broker.js';
import { issue, makeDevCerts, tempDir } from './certs.js';
import { run } from '../helpers/run.js';

function reason(raw: unknown): string {
  try {
    validateConfig(raw, '/etc/junction/junction.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'valid';
}

/** Can `port` be bound now? (Whatever a failed start opened must be closed again.) */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('default listeners', () => {
  it('MQTT 1883, STOMP 61613, HTTP 8083 with /mqtt and /stomp; nothing over TLS without a certificate', () => {
    expect(listenersOf(DEFAULT_CONFIG).map((l) => [l.name, l.protocol, l.port, l.tls !== undefined])).toEqual([
      ['mqtt', 'mqtt', 1883, false],
      ['stomp', 'stomp', 61613, false],
      ['http', 'http', 8083, false],
    ]);
    expect(listenersOf(DEFAULT_CONFIG)[2]?.websocket).toEqual({ mqttPath: '/mqtt', stompPath: '/stomp', allowedOrigins: [], perMessageDeflate: false });
  });

  it('with tls.cert and tls.key: MQTT over TLS 8883 and STOMP over TLS 61614 too, paths relative to the file', () => {
    const c = validateConfig({ tls: { cert: 'tls/server.pem', key: 'tls/server.key' } }, '/etc/junction/junction.yaml');
    const tls = listenersOf(c).filter((l) => l.tls);
    expect(tls.map((l) => [l.name, l.protocol, l.port])).toEqual([
      ['mqtts', 'mqtt', 8883],
      ['stomps', 'stomp', 61614],
    ]);
    expect(tls[0]?.tls).toMatchObject({ cert: '/etc/junction/tls/server.pem', key: '/etc/junction/tls/server.key', minVersion: 'TLSv1.2' });
  });

  it('--http-port, --host, --tls-cert, --tls-key set their keys', () => {
    const cmd = parseCli(['start', '--http-port', '0', '--host', '127.0.0.1', '--tls-cert', 'c.pem', '--tls-key', 'k.pem']);
    if (cmd.kind !== 'start') throw new Error(cmd.kind);
    const c = loadConfig({ overrides: cmd.overrides });
    expect([c.http.port, c.http.host, c.mqtt.host, c.stomp.host]).toEqual([0, '127.0.0.1', '127.0.0.1', '127.0.0.1']);
    expect(listenersOf(c).map((l) => l.name)).toEqual(['mqtt', 'stomp', 'http', 'mqtts', 'stomps']);
  });
});

describe('a listeners: list', () => {
  it('opens exactly its entries; names derived from protocol and TLS, made unique; default ports per protocol', () => {
    const c = validateConfig(
      {
        listeners: [
          { protocol: 'mqtt' },
          { protocol: 'mqtt', port: 1884 },
          { protocol: 'mqtt', tls: { cert: 's.pem', key: 's.key' } },
          { protocol: 'http', tls: { cert: 's.pem', key: 's.key' }, mqttPath: '/ws', stompPath: false },
          { name: 'devices', protocol: 'stomp', host: '10.0.0.1' },
        ],
      },
      '/etc/junction/junction.yaml',
    );
    expect(listenersOf(c).map((l) => [l.name, l.protocol, l.host, l.port])).toEqual([
      ['mqtt', 'mqtt', '0.0.0.0', 1883],
      ['mqtt-2', 'mqtt', '0.0.0.0', 1884],
      ['mqtts', 'mqtt', '0.0.0.0', 8883],
      ['https', 'http', '0.0.0.0', 8084],
      ['devices', 'stomp', '10.0.0.1', 61613],
    ]);
    expect(listenersOf(c)[3]?.websocket).toMatchObject({ mqttPath: '/ws', stompPath: false });
  });

  it('errors name the item and the key', () => {
    const at = '/etc/junction/junction.yaml: listeners: ';
    expect(reason({ listeners: [] })).toBe(`${at}an empty list opens no listener: remove the key to get the default listeners`);
    expect(reason({ listeners: [{ port: 1 }] })).toBe(`${at}item 1: protocol: missing: expected one of mqtt, stomp, http`);
    expect(reason({ listeners: [{ protocol: 'amqp' }] })).toBe(`${at}item 1: protocol: expected one of mqtt, stomp, http; got "amqp"`);
    expect(reason({ listeners: [{ protocol: 'mqtt', prot: 1 }] })).toMatch(/item 1: prot: unknown key \(did you mean port\?\)/);
    expect(reason({ listeners: [{ protocol: 'mqtt', tls: { cert: 'c', key: 'k', requireClientcert: true } }] })).toBe(
      `${at}item 1: tls.requireClientcert: unknown key (did you mean requireClientCert?)`,
    );
    expect(reason({ listeners: [{ protocol: 'mqtt', tls: { key: 'k' } }] })).toBe(`${at}item 1: tls.cert: missing: a TLS listener needs a certificate`);
    expect(reason({ listeners: [{ protocol: 'mqtt', tls: { cert: 'c', key: 'k', requireClientCert: true } }] })).toMatch(/item 1: tls.ca: missing: requireClientCert needs the CA/);
    expect(reason({ listeners: [{ protocol: 'mqtt', tls: { cert: 'c', key: 'k', ca: 'a', useIdentityAs: 'cn' } }] })).toMatch(/item 1: tls.useIdentityAs: needs requestCert/);
    expect(reason({ listeners: [{ protocol: 'mqtt', tls: { cert: 'c', key: 'k', minVersion: 'TLSv1.1' } }] })).toMatch(/tls.minVersion: expected one of TLSv1.2, TLSv1.3/);
    expect(reason({ listeners: [{ protocol: 'mqtt', tls: { cert: 'c', key: 'k', sni: [{ servername: 'a b', cert: 'x', key: 'y' }] } }] })).toMatch(/sni item 1: servername: expected a host name/);
    expect(reason({ listeners: [{ protocol: 'stomp', mqttPath: '/mqtt' }] })).toBe(`${at}item 1: mqttPath: only http listeners have WebSocket endpoints (this one is stomp)`);
    expect(reason({ listeners: [{ protocol: 'http', stompPath: 'stomp' }] })).toMatch(/item 1: stompPath: expected a path starting with \//);
    expect(reason({ listeners: [{ protocol: 'http', allowedOrigins: ['*'] }] })).toMatch(/item 1: allowedOrigins: item 1: expected an origin/);
    expect(reason({ listeners: [{ protocol: 'mqtt', port: 1883 }, { protocol: 'stomp', port: 1883 }] })).toBe(`${at}item 2: port: 1883 on 0.0.0.0 is listener mqtt's port too`);
    expect(reason({ listeners: [{ protocol: 'mqtt', name: 'a' }, { protocol: 'stomp', name: 'a' }] })).toBe(`${at}item 2: name: a is the name of item 1 too`);
  });

  it('keys of the default listeners are refused next to a list (they would do nothing), in the file and as flags', () => {
    expect(reason({ listeners: [{ protocol: 'mqtt' }], mqtt: { port: 1884 } })).toBe(
      '/etc/junction/junction.yaml: mqtt.port: not used when the file has a listeners: list; set it in the listener entry instead',
    );
    expect(reason({ listeners: [{ protocol: 'mqtt' }], tls: { cert: 'c', key: 'k' } })).toMatch(/tls.cert: not used when the file has a listeners: list/);
    expect(reason({ listeners: [{ protocol: 'mqtt' }], mqtt: { maxKeepAlive: 60 } })).toBe('valid');
    const dir = tempDir();
    const file = join(dir, 'junction.yaml');
    writeFileSync(file, 'listeners:\n  - { protocol: mqtt, port: 1884 }\n');
    expect(() => loadConfig({ file, overrides: [{ key: 'mqtt.port', value: '1885', source: '--mqtt-port' }] })).toThrow(
      `command line: --mqtt-port: not used: ${file} has a listeners: list; set port in the listener entry instead`,
    );
  });

  it('tls section rules: key with cert, CA for client certificates, nothing TLS without a certificate', () => {
    expect(reason({ tls: { cert: 'c' } })).toBe('/etc/junction/junction.yaml: tls.key: missing: a certificate needs its private key');
    expect(reason({ tls: { ca: 'ca.pem' } })).toMatch(/tls.ca: set, but tls.cert is not/);
    expect(reason({ tls: { requireClientCert: true } })).toMatch(/tls.requireClientCert: set, but tls.cert is not/);
    expect(reason({ tls: { cert: 'c', key: 'k', requestCert: true } })).toMatch(/tls.ca: missing: requestCert needs the CA/);
    expect(reason({ http: { mqttPath: '/ws', stompPath: '/ws' } })).toMatch(/http.stompPath: \/ws is the mqttPath too/);
  });
});

describe('start-up refusals name the listener and the port; nothing stays open', () => {
  const dir = tempDir();
  const certs = makeDevCerts(dir);
  const other = issue(dir, 'other', { cn: 'other', ca: { cert: certs.ca, key: certs.caKey } });
  writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n');
  const encrypted = join(dir, 'encrypted.key');
  spawnSync('openssl', ['pkey', '-in', certs.serverKey, '-aes256', '-passout', 'pass:sesame', '-out', encrypted]);

  /** Starts with an MQTT listener on a known free port first, then `entry`; expects a ListenerError. */
  async function refusedStart(entry: Record<string, unknown>): Promise<string> {
    const first = await freePort();
    const config = validateConfig({ listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: first }, { host: '127.0.0.1', ...entry }] }, join(dir, 'junction.yaml'));
    const err = await Broker.start(config, { store: new MemoryStore(), log: silentLogger }).then(
      async (b) => {
        await b.stop();
        throw new Error('started');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ListenerError);
    expect(await bindable(first)).toBe(true);
    return (err as Error).message;
  }

  it('a port in use', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    afterAll(() => busy.close());
    expect(await refusedStart({ name: 'dashboard', protocol: 'http', port })).toBe(
      `listener dashboard (http, port ${port}): port ${port} on 127.0.0.1 is already in use`,
    );
  });

  it('an unreadable certificate or key', async () => {
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'missing.pem', key: 'server.key' } })).toBe(
      `listener mqtts (mqtt over TLS, port 0): tls.cert ${join(dir, 'missing.pem')}: cannot read: file not found`,
    );
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'server.pem', key: dir } })).toMatch(/tls.key .*: cannot read: is a directory/);
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'garbage.pem', key: 'server.key' } })).toMatch(/tls.cert .*garbage.pem: no PEM certificate/);
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'server.pem', key: 'garbage.pem' } })).toMatch(/tls.key .*garbage.pem: not a private key/);
  });

  it('a key that does not match the certificate', async () => {
    expect(await refusedStart({ protocol: 'stomp', port: 0, tls: { cert: 'server.pem', key: other.key } })).toBe(
      `listener stomps (stomp over TLS, port 0): tls.key ${other.key}: does not match the certificate in ${certs.serverCert}`,
    );
  });

  it('a bad CA file', async () => {
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'server.pem', key: 'server.key', ca: 'garbage.pem', requireClientCert: true } })).toMatch(
      /listener mqtts .*: tls.ca .*garbage.pem: no PEM certificate in the file/,
    );
  });

  it('an encrypted key: passphrase missing or wrong; right passphrase starts', async () => {
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'server.pem', key: encrypted } })).toMatch(/tls.key .*: the key is encrypted: set passphrase/);
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'server.pem', key: encrypted, passphrase: 'open' } })).toMatch(/wrong passphrase/);
    const ok = validateConfig({ listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { cert: 'server.pem', key: encrypted, passphrase: 'sesame' } }] }, join(dir, 'j.yaml'));
    const b = await Broker.start(ok, { store: new MemoryStore(), log: silentLogger });
    await b.stop();
  });

  it('a cipher list OpenSSL does not know', async () => {
    expect(await refusedStart({ protocol: 'mqtt', port: 0, tls: { cert: 'server.pem', key: 'server.key', ciphers: 'NO-SUCH-CIPHER' } })).toMatch(/tls.ciphers .*rejected by OpenSSL/);
  });

  it('junction start exits 1 and says why on stderr', async () => {
    const port = await freePort();
    const r = await run(process.execPath, [MAIN, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), '--stomp-port', '0', '--http-port', '0', '--storage', 'memory', '--tls-cert', join(dir, 'nope.pem'), '--tls-key', certs.serverKey]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`junction: cannot start: listener mqtts (mqtt over TLS, port 8883): tls.cert ${join(dir, 'nope.pem')}: cannot read: file not found\n`);
  });
});

describe('TLS in two commands: junction certs, then junction start --tls-cert --tls-key', () => {
  let proc: BrokerProcess | undefined;
  afterAll(async () => {
    await proc?.kill('SIGKILL');
  });

  it('makes a CA, a server certificate for localhost and a client certificate; mosquitto_pub --cafile connects', async () => {
    const dir = join(tempDir(), 'certs');
    const made = await run(process.execPath, [MAIN, 'certs', '--dir', dir, '--client-cn', 'device-1']);
    expect(made.code, made.stderr).toBe(0);
    for (const f of ['ca.pem', 'ca.key', 'server.pem', 'server.key', 'client.pem', 'client.key']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(made.stdout).toContain(`mosquitto_pub --cafile ${dir}/ca.pem -h localhost -p 8883`);
    const subject = spawnSync('openssl', ['x509', '-in', join(dir, 'client.pem'), '-noout', '-subject'], { encoding: 'utf8' }).stdout;
    expect(subject).toMatch(/CN ?= ?device-1/);
    // The default TLS port is 8883; this test moves it to a free one so that parallel runs never collide.
    const [port, tlsPort] = [await freePort(), await freePort()];
    const config = join(dir, 'ports.yaml');
    writeFileSync(config, `tls:\n  mqttPort: ${tlsPort}\n  stompPort: 0\n`);
    proc = await startBrokerProcess(['--config', config, '--storage', 'memory', '--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key')], port);
    const pub = await run('mosquitto_pub', ['--cafile', join(dir, 'ca.pem'), '-h', 'localhost', '-p', String(tlsPort), '-t', 'hello', '-m', 'world']);
    expect(pub.code, pub.stderr).toBe(0);
    // Running it again keeps the CA: clients keep trusting the new server certificate.
    copyFileSync(join(dir, 'ca.pem'), join(dir, 'ca-before.pem'));
    expect((await run(process.execPath, [MAIN, 'certs', '--dir', dir])).code).toBe(0);
    const again = await run('mosquitto_pub', ['--cafile', join(dir, 'ca-before.pem'), '-h', 'localhost', '-p', String(tlsPort), '-t', 'hello', '-m', 'again']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('certs flags are checked', () => {
    expect(parseCli(['certs'])).toEqual({ kind: 'certs', dir: 'certs/dev' });
    expect(parseCli(['certs', '--dir', 'x', '--client-cn', 'a', '--days', '30'])).toEqual({ kind: 'certs', dir: 'x', clientCn: 'a', days: 30 });
    expect(parseCli(['certs', '--days', '-1'])).toMatchObject({ kind: 'error' });
    expect(parseCli(['certs', '--dir', ''])).toMatchObject({ kind: 'error' });
  });
});
