/**
 * Certificate rotation without a restart: when the certificate, key or CA files change, new
 * handshakes use the new material and connections already open stay up; material that does not
 * check out (a key that does not match) is not used; SIGHUP re-reads the files of a running
 * `junction start` process.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { freePort, startBrokerProcess, type BrokerProcess } from '../helpers/process-broker.js';
import { handshake, issue, makeCa, makeDevCerts, tempDir } from './certs.js';

const nonce = (): string => Math.random().toString(36).slice(2, 10);

describe('certificate rotation', async () => {
  const dir = tempDir();
  const certs = makeDevCerts(dir);
  const caPem = (): Buffer => readFileSync(certs.ca);
  const b = await startBroker({
    config: {
      listeners: [
        { name: 'mqtt', protocol: 'mqtt', host: '127.0.0.1', port: 0 },
        { name: 'tls', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { cert: certs.serverCert, key: certs.serverKey } },
        { name: 'mutual', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requireClientCert: true } },
      ],
    },
  });
  const port = (name: string): number => b.broker.port(name);

  it('a new server certificate is used by new handshakes; the open connection stays up', async () => {
    const first = await handshake(port('tls'), { ca: caPem() });
    expect(first.authorized).toBe(true);
    const topic = `rotate/${nonce()}`;
    const old = await connect(port('tls'), { protocol: 'mqtts', ca: caPem() });
    await old.subscribeAsync(topic, { qos: 1 });
    const mark = b.logs.length;
    makeDevCerts(dir); // same CA, new server certificate (new serial), written by rename
    await until(() => b.logs.slice(mark).some((l) => l.msg === 'TLS material reloaded: new handshakes use it' && l.fields['listener'] === 'tls'), 5000, 'reload');
    const second = await handshake(port('tls'), { ca: caPem() });
    expect(second.authorized).toBe(true);
    expect(second.serial).not.toBe(first.serial);
    expect(second.fingerprint256).not.toBe(first.fingerprint256);
    // The connection made with the old certificate still works both ways.
    const pub = await connect(port('mqtt'));
    await pub.publishAsync(topic, 'after rotation', { qos: 1 });
    await until(() => old.received.length === 1);
    expect(old.connected).toBe(true);
    await old.publishAsync(`${topic}/up`, 'old connection publishes', { qos: 1 });
  });

  it('a key that does not match the certificate is not used: the previous material stays', async () => {
    const before = await handshake(port('tls'), { ca: caPem() });
    const mark = b.logs.length;
    const goodKey = readFileSync(certs.serverKey);
    const stray = issue(dir, 'stray', { cn: 'stray', ca: { cert: certs.ca, key: certs.caKey } });
    copyFileSync(stray.key, certs.serverKey);
    await until(() => b.logs.slice(mark).some((l) => l.msg === 'TLS material not reloaded: keeping the previous certificate'), 5000, 'refused reload');
    expect(b.logs.slice(mark).find((l) => l.msg.startsWith('TLS material not reloaded'))?.fields['error']).toMatch(/does not match the certificate/);
    const during = await handshake(port('tls'), { ca: caPem() });
    expect(during.serial).toBe(before.serial);
    expect(during.authorized).toBe(true);
    writeFileSync(certs.serverKey, goodKey);
  });

  it('a new CA file: client certificates of the new CA are accepted, without a restart', async () => {
    const newCa = makeCa(dir, 'ca-2026', 'Junction Dev CA 2026');
    const device = issue(dir, 'device-2026', { cn: 'device-2026', ca: newCa });
    const oldClient = await connect(port('mutual'), { protocol: 'mqtts', ca: caPem(), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) });
    const newClientOpts = { protocol: 'mqtts' as const, ca: caPem(), cert: readFileSync(device.cert), key: readFileSync(device.key) };
    await expect(connect(port('mutual'), newClientOpts)).rejects.toThrow();
    const mark = b.logs.length;
    // The CA file now holds both CAs, as during a real CA changeover.
    writeFileSync(certs.ca, Buffer.concat([readFileSync(certs.ca), readFileSync(newCa.cert)]));
    await until(() => b.logs.slice(mark).some((l) => l.msg === 'TLS material reloaded: new handshakes use it' && l.fields['listener'] === 'mutual'), 5000, 'reload');
    const fresh = await connect(port('mutual'), newClientOpts);
    expect(fresh.connected).toBe(true);
    expect(oldClient.connected).toBe(true);
    await oldClient.publishAsync('rotation/ca', 'still connected', { qos: 1 });
  });
});

describe('SIGHUP', () => {
  let proc: BrokerProcess | undefined;
  afterAll(async () => {
    await proc?.kill('SIGKILL');
  });

  it('re-reads the TLS files of a running broker; it keeps serving', async () => {
    const dir = tempDir();
    const certs = makeDevCerts(dir);
    const [port, tlsPort] = [await freePort(), await freePort()];
    const config = join(dir, 'junction.yaml');
    writeFileSync(config, `tls:\n  cert: server.pem\n  key: server.key\n  mqttPort: ${tlsPort}\n  stompPort: 0\n`);
    proc = await startBrokerProcess(['--config', config, '--storage', 'memory'], port);
    const before = await handshake(tlsPort, { ca: readFileSync(certs.ca) });
    expect(before.authorized).toBe(true);
    proc.proc.kill('SIGHUP');
    // SIGHUP runs the whole reload (config, auth and TLS files); unchanged material stays in use.
    await until(() => /"evt":"config.reloaded","trigger":"sighup"/.test(proc!.output()), 5000, 'reload logged');
    expect(proc.output()).toContain('SIGHUP: reloading TLS material');
    expect(proc.proc.exitCode).toBeNull();
    const c = await connect(tlsPort, { protocol: 'mqtts', ca: readFileSync(certs.ca) });
    expect(c.connected).toBe(true);
    await c.endAsync();
  });
});
