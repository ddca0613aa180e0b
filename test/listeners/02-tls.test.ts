/**
 * TLS listeners: mosquitto_pub/sub and MQTT.js over TLS with the development CA from
 * certs/make-dev-certs.sh; client certificates (accepted, CN or SAN as the identity the auth layer
 * sees; wrong CA, expired and missing ones refused, logged with the peer address and counted);
 * listeners of one broker with different TLS settings; a failed handshake (plain TCP to a TLS port)
 * leaves the other connections alone; STOMP over TLS; wss with client certificates; SNI.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { allowAll, type AccessControl, type Credentials } from '../../src/core/access.js';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { handshake, issue, makeCa, makeDevCerts, tempDir } from './certs.js';
import { run } from '../helpers/run.js';

const nonce = (): string => Math.random().toString(36).slice(2, 10);

describe('TLS listeners', async () => {
  const dir = tempDir();
  const certs = makeDevCerts(dir, 'sensor-7');
  const devCa = { cert: certs.ca, key: certs.caKey };
  const otherCa = makeCa(dir, 'other-ca', 'Some Other CA');
  const stranger = issue(dir, 'stranger', { cn: 'stranger', ca: otherCa });
  const expired = issue(dir, 'expired', { cn: 'expired-device', ca: devCa, days: -1 });
  const sanClient = issue(dir, 'san-client', { cn: 'not-this', ca: devCa, san: 'DNS:device-9.example.com,IP:10.0.0.9' });
  const alt = issue(dir, 'alt-server', { cn: 'alt.test', ca: devCa, san: 'DNS:alt.test', usage: 'serverAuth' });

  const seen: Credentials[] = [];
  const access: AccessControl = {
    authenticate: async (c) => {
      seen.push(c);
      return allowAll.authenticate(c);
    },
    authorize: () => true,
  };
  const server = { cert: certs.serverCert, key: certs.serverKey };
  const b = await startBroker({
    access,
    config: {
      listeners: [
        { name: 'mqtt', protocol: 'mqtt', host: '127.0.0.1', port: 0 },
        // Server authentication only, as most device fleets start.
        { name: 'tls', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { ...server, sni: [{ servername: 'alt.test', cert: alt.cert, key: alt.key }] } },
        // Mutual TLS: a valid client certificate or no connection; its CN is the username.
        { name: 'mutual', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { ...server, ca: certs.ca, requireClientCert: true, useIdentityAs: 'cn' } },
        // Asked for, not required; one that is sent must verify; its first SAN is the username.
        { name: 'optional', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { ...server, ca: certs.ca, requestCert: true, useIdentityAs: 'san' } },
        { name: 'stomps', protocol: 'stomp', host: '127.0.0.1', port: 0, tls: server },
        // WebSocket over TLS with the same client-certificate rules.
        { name: 'wss', protocol: 'http', host: '127.0.0.1', port: 0, tls: { ...server, ca: certs.ca, requireClientCert: true, useIdentityAs: 'cn' } },
      ],
    },
  });
  const port = (name: string): number => b.broker.port(name);
  const stats = b.broker.core.stats;
  // MQTT.js and node:tls take PEM contents, mosquitto_pub takes file names.
  const ca = readFileSync(certs.ca);
  const pair = (f: { cert: string; key: string }) => ({ cert: readFileSync(f.cert), key: readFileSync(f.key) });
  const client = pair({ cert: certs.clientCert, key: certs.clientKey });
  const mqtts = (name: string, opts: Record<string, unknown> = {}) => connect(port(name), { protocol: 'mqtts', ca, ...opts } as Parameters<typeof connect>[1]);

  /** The log lines of handshake failures since `from`, on listener `name`. */
  const failures = (name: string, from: number) => b.logs.slice(from).filter((l) => l.msg === 'TLS handshake failed' && l.fields['listener'] === name);

  /** Connects and expects the broker to refuse it: counted once, one log line with the peer. */
  async function refused(name: string, opts: Record<string, unknown>, reason: RegExp): Promise<void> {
    const before = stats.tlsHandshakeFailures;
    const mark = b.logs.length;
    await expect(mqtts(name, opts)).rejects.toThrow();
    await until(() => stats.tlsHandshakeFailures === before + 1, 5000, 'failure counted');
    const lines = failures(name, mark);
    expect(lines).toHaveLength(1);
    expect(String(lines[0]!.fields['remote'])).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(String(lines[0]!.fields['reason'])).toMatch(reason);
  }

  it('mosquitto_pub and mosquitto_sub with --cafile, MQTT 3.1.1 and 5, host name checked', async () => {
    for (const V of ['mqttv311', 'mqttv5']) {
      const topic = `tls/mosq/${nonce()}`;
      // -h localhost: mosquitto checks the name against the certificate (DNS:localhost).
      const base = ['--cafile', certs.ca, '-h', 'localhost', '-p', String(port('tls')), '-V', V];
      const sub = run('mosquitto_sub', [...base, '-t', topic, '-C', '1', '-W', '8', '-i', `msub-${nonce()}`]);
      await until(() => b.broker.core.router.subscribersOf(topic).length === 1, 5000, 'mosquitto_sub subscribed');
      const pub = await run('mosquitto_pub', [...base, '-t', topic, '-m', `over TLS ${V}`, '-q', '1']);
      expect(pub.code, pub.stderr).toBe(0);
      const r = await sub;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`over TLS ${V}`);
    }
  });

  it('mosquitto_pub without the CA does not trust the server', async () => {
    const wrong = await run('mosquitto_pub', ['--cafile', otherCa.cert, '-h', 'localhost', '-p', String(port('tls')), '-t', 'x', '-m', 'y']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/certificate verify failed|tls|ssl/i);
  });

  it('MQTT.js over mqtts shares topics with a plain TCP client', async () => {
    const topic = `tls/share/${nonce()}`;
    const tcp = await connect(port('mqtt'));
    await tcp.subscribeAsync(topic, { qos: 1 });
    const secure = await mqtts('tls');
    await secure.publishAsync(topic, 'from TLS', { qos: 1 });
    await until(() => tcp.received.length === 1);
    expect(tcp.received[0]!.payload.toString()).toBe('from TLS');
    await secure.subscribeAsync(`${topic}/back`, { qos: 1 });
    await tcp.publishAsync(`${topic}/back`, 'from TCP', { qos: 1 });
    await until(() => secure.received.length === 1);
    expect(secure.received[0]!.payload.toString()).toBe('from TCP');
  });

  it('a client certificate is accepted and its CN is the identity the auth layer sees', async () => {
    const mark = b.logs.length;
    const id = `mtls-${nonce()}`;
    const c = await mqtts('mutual', { ...client, clientId: id, username: 'claimed-name' });
    const creds = seen.find((s) => s.clientId === id);
    expect(creds?.certIdentity).toBe('sensor-7');
    expect(creds?.listener).toBe('mutual');
    // As Mosquitto's use_identity_as_username: the certificate wins over the CONNECT username.
    const auth = await allowAll.authenticate(creds!);
    expect(auth.ok && auth.identity.username).toBe('sensor-7');
    const logged = b.logs.slice(mark).find((l) => l.msg === 'client certificate verified');
    expect(logged?.fields).toMatchObject({ listener: 'mutual', identity: 'sensor-7' });
    await c.endAsync();
  });

  it('mosquitto_pub with --cert/--key on the mutual listener', async () => {
    const id = `mosq-mtls-${nonce()}`;
    const r = await run('mosquitto_pub', ['--cafile', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, '-h', 'localhost', '-p', String(port('mutual')), '-i', id, '-t', 'mtls/x', '-m', 'hi', '-q', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(seen.find((s) => s.clientId === id)?.certIdentity).toBe('sensor-7');
  });

  it('requireClientCert: no certificate, refused', async () => {
    await refused('mutual', {}, /no client certificate/);
  });

  it('requireClientCert: a certificate from another CA, refused', async () => {
    await refused('mutual', pair(stranger), /client certificate rejected: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT)/);
  });

  it('requireClientCert: an expired certificate, refused', async () => {
    await refused('mutual', pair(expired), /client certificate rejected: CERT_HAS_EXPIRED/);
  });

  it('mosquitto_pub without --cert on the mutual listener fails, and nothing is published', async () => {
    const before = stats.tlsHandshakeFailures;
    const id = `mosq-nocert-${nonce()}`;
    const r = await run('mosquitto_pub', ['--cafile', certs.ca, '-h', 'localhost', '-p', String(port('mutual')), '-i', id, '-t', 'mtls/y', '-m', 'hi', '-q', '1']);
    expect(r.code).not.toBe(0);
    expect(seen.some((s) => s.clientId === id)).toBe(false);
    await until(() => stats.tlsHandshakeFailures === before + 1, 5000, 'failure counted');
  });

  it('requestCert: no certificate is fine (no identity), a SAN certificate gives its first SAN, a foreign one is refused', async () => {
    const plainId = `opt-none-${nonce()}`;
    await (await mqtts('optional', { clientId: plainId })).endAsync();
    expect(seen.find((s) => s.clientId === plainId)?.certIdentity).toBeUndefined();
    const sanId = `opt-san-${nonce()}`;
    await (await mqtts('optional', { clientId: sanId, ...pair(sanClient) })).endAsync();
    expect(seen.find((s) => s.clientId === sanId)?.certIdentity).toBe('device-9.example.com');
    await refused('optional', pair(stranger), /client certificate rejected/);
  });

  it('per-listener settings differ in one broker: the same certificate-less client', async () => {
    await (await mqtts('tls')).endAsync();
    await (await mqtts('optional')).endAsync();
    await expect(mqtts('mutual')).rejects.toThrow();
  });

  it('plain TCP to a TLS port: logged with the peer address, counted; connections already open carry on', async () => {
    const topic = `tls/survivor/${nonce()}`;
    const survivor = await mqtts('tls');
    await survivor.subscribeAsync(topic, { qos: 1 });
    const before = stats.tlsHandshakeFailures;
    const mark = b.logs.length;
    const raw = net.connect(port('tls'), '127.0.0.1');
    const local = await new Promise<number>((resolve) => raw.once('connect', () => resolve(raw.localPort!)));
    raw.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00])); // an MQTT CONNECT
    await new Promise((resolve) => raw.once('close', resolve));
    await until(() => stats.tlsHandshakeFailures === before + 1, 5000, 'failure counted');
    expect(failures('tls', mark)[0]?.fields['remote']).toBe(`127.0.0.1:${local}`);
    const pub = await connect(port('mqtt'));
    await pub.publishAsync(topic, 'still here', { qos: 1 });
    await until(() => survivor.received.length === 1);
    expect(survivor.connected).toBe(true);
  });

  it('STOMP over TLS', async () => {
    const s = tls.connect({ host: '127.0.0.1', port: port('stomps'), ca });
    await new Promise((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.write('CONNECT\naccept-version:1.2\nhost:localhost\n\n\0');
    await until(() => got.includes('\0'), 5000, 'CONNECTED');
    expect(got.startsWith('CONNECTED\n')).toBe(true);
    expect(got).toContain('version:1.2');
    s.destroy();
  });

  it('wss: the client certificate of a WebSocket connection gives its identity too; none, refused', async () => {
    const id = `wss-${nonce()}`;
    const web = await connect(port('wss'), { protocol: 'wss', path: '/mqtt', ca, ...client, clientId: id });
    expect(seen.find((s) => s.clientId === id)).toMatchObject({ certIdentity: 'sensor-7', listener: 'wss' });
    await web.endAsync();
    const before = stats.tlsHandshakeFailures;
    await expect(connect(port('wss'), { protocol: 'wss', path: '/mqtt', ca, connectTimeout: 3000 })).rejects.toThrow();
    await until(() => stats.tlsHandshakeFailures === before + 1, 5000, 'failure counted');
  });

  it('SNI: the certificate for the name asked for, the listener default otherwise', async () => {
    const named = await handshake(port('tls'), { servername: 'alt.test', ca });
    expect(named.subjectCN).toBe('alt.test');
    expect(named.authorized).toBe(true);
    const other = await handshake(port('tls'), { servername: 'localhost' });
    expect(other.subjectCN).toBe('localhost');
    const none = await handshake(port('tls'));
    expect(none.subjectCN).toBe('localhost');
  });
});
