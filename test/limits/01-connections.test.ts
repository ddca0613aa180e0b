/**
 * Limits at accept (README "Limits"): the broker's maximum (all listeners), a listener's maximum,
 * the maximum per source address and the connect rate (token bucket). A refused connection is
 * closed before anything is made for it (no session, no adapter): plain MQTT listeners answer
 * MQTT 5 with CONNACK 0x97 Quota exceeded / 0x9F Connection rate exceeded and 3.1.1 with return
 * code 3 (Server unavailable), STOMP with an ERROR frame, HTTP with 503; TLS listeners just close
 * (no handshake is spent on it). Each refusal is counted; the log has one line, not one per refusal.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { StompRaw } from '../helpers/stomp.js';
import { makeDevCerts, tempDir } from '../listeners/certs.js';
import { idleSocket, logged, run } from './helpers.js';

const QuotaExceeded = 0x97;
const ConnectionRateExceeded = 0x9f;

/**
 * A CONNECT on a plain socket (from `localAddress` if given): the CONNACK's reason code (v5) or
 * return code (3.1.1), or 'closed' when the broker closed without one.
 */
async function connackCode(port: number, version: 4 | 5 = 5, localAddress?: string): Promise<{ code: number | 'closed'; socket: net.Socket }> {
  const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  socket.on('error', () => undefined);
  const parser = mqttPacket.parser({ protocolVersion: version });
  const code = new Promise<number | 'closed'>((resolve) => {
    parser.on('packet', (p: mqttPacket.Packet) => {
      if (p.cmd === 'connack') resolve((version === 5 ? p.reasonCode : p.returnCode) ?? 0);
    });
    socket.on('data', (d: Buffer) => parser.parse(d));
    socket.once('close', () => resolve('closed'));
  });
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, clientId: `lim-${Math.random().toString(16).slice(2)}`, keepalive: 60 }, { protocolVersion: version }));
  return { code: await code, socket };
}

describe('connection limits at accept', async () => {
  const certs = makeDevCerts(tempDir());
  const b = await startBroker({
    config: {
      limits: { maxConnections: 1000 },
      listeners: [
        { name: 'mqtt', protocol: 'mqtt', host: '127.0.0.1', port: 0, maxConnections: 2 },
        { name: 'per-address', protocol: 'mqtt', host: '127.0.0.1', port: 0, maxConnectionsPerAddress: 2 },
        { name: 'rate', protocol: 'mqtt', host: '127.0.0.1', port: 0, connectRate: 1, connectBurst: 2 },
        { name: 'stomp', protocol: 'stomp', host: '127.0.0.1', port: 0, maxConnections: 1 },
        { name: 'stomp-rate', protocol: 'stomp', host: '127.0.0.1', port: 0, connectRate: 1, connectBurst: 1 },
        { name: 'http', protocol: 'http', host: '127.0.0.1', port: 0, maxConnections: 1 },
        { name: 'mqtts', protocol: 'mqtt', host: '127.0.0.1', port: 0, maxConnections: 1, tls: { cert: certs.serverCert, key: certs.serverKey } },
      ],
    },
  });
  const stats = b.broker.core.stats;
  const port = (name: string): number => b.broker.port(name);
  const gate = (name: string) => b.broker.listeners.find((l) => l.spec.name === name)!.gate;

  it("a listener's maxConnections: the one over gets CONNACK 0x97 (v5) / return code 3 (3.1.1), as mosquitto_pub reports, and no session; a closed one frees its place", async () => {
    const sessionsBefore = b.broker.core.sessions.size;
    const held = [await connect(port('mqtt')), await connect(port('mqtt'))];
    const before = stats.refusedMaxConnections;
    const v5 = await connackCode(port('mqtt'), 5);
    expect(v5.code).toBe(QuotaExceeded);
    const v4 = await connackCode(port('mqtt'), 4);
    expect(v4.code).toBe(3); // Server unavailable
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port('mqtt')), '-V', 'mqttv311', '-t', 'lim/x', '-m', 'x']);
    expect(pub.code).not.toBe(0);
    expect(pub.stderr).toMatch(/Connection Refused: broker unavailable/);
    const pub5 = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port('mqtt')), '-V', 'mqttv5', '-t', 'lim/x', '-m', 'x']);
    expect(pub5.code).not.toBe(0);
    expect(pub5.stderr).toMatch(/Connection error: Quota exceeded/);
    expect(stats.refusedMaxConnections - before).toBe(4);
    // Nothing was made for the refused clients.
    expect(b.broker.core.sessions.size).toBe(sessionsBefore + 2);
    // One log line for the four refusals (then one per 10 s while they go on).
    expect(logged(b, 'connection refused at accept', { listener: 'mqtt', reason: 'listener-max-connections' })).toHaveLength(1);
    expect(logged(b, 'connection refused at accept', { listener: 'mqtt' })[0]).toMatchObject({ limit: 2 });
    await held[0]!.endAsync();
    await until(() => gate('mqtt').open === 1, 3000, 'the closed connection counted out');
    const again = await connect(port('mqtt'));
    expect(again.connected).toBe(true);
    await Promise.all([again.endAsync(), held[1]!.endAsync()]);
  });

  it('maxConnectionsPerAddress: the third from 127.0.0.1 is refused (0x97), one from 127.0.0.2 is not', async () => {
    const before = stats.refusedPerAddress;
    const a = await connect(port('per-address'));
    const c = await connect(port('per-address'));
    const third = await connackCode(port('per-address'), 5);
    expect(third.code).toBe(QuotaExceeded);
    expect(stats.refusedPerAddress - before).toBe(1);
    expect(gate('per-address').openFrom('127.0.0.1')).toBe(2);
    const other = await connackCode(port('per-address'), 5, '127.0.0.2');
    expect(other.code).toBe(0);
    expect(logged(b, 'connection refused at accept', { listener: 'per-address', reason: 'address-max-connections' })).toHaveLength(1);
    other.socket.destroy();
    await Promise.all([a.endAsync(), c.endAsync()]);
  });

  it('connectRate (token bucket): past the burst, MQTT 5 clients get CONNACK 0x9F Connection rate exceeded; MQTT.js reports it', async () => {
    const before = stats.refusedConnectRate;
    const started = Date.now();
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await connackCode(port('rate'), 5));
    const elapsed = Date.now() - started;
    const refused = results.filter((r) => r.code === ConnectionRateExceeded).length;
    // A burst of 2, then 1 a second: however slow this machine, at least 4 - (seconds elapsed) refused.
    expect(refused).toBeGreaterThanOrEqual(Math.max(1, 4 - Math.ceil(elapsed / 1000)));
    expect(results.every((r) => r.code === 0 || r.code === ConnectionRateExceeded)).toBe(true);
    expect(stats.refusedConnectRate - before).toBe(refused);
    for (const r of results) r.socket.destroy();
    // MQTT.js, once the bucket is surely empty again.
    await connackCode(port('rate'), 5);
    const err = await connect(port('rate')).then(
      (c) => {
        void c.endAsync();
        return undefined;
      },
      (e: Error & { code?: number }) => e,
    );
    if (err) expect(err.code).toBe(ConnectionRateExceeded);
    expect(logged(b, 'connection refused at accept', { listener: 'rate', reason: 'connect-rate' })).toHaveLength(1);
  });

  it('STOMP: the connection over the limit, or over the rate, gets an ERROR frame and is closed', async () => {
    const held = await StompRaw.open(port('stomp'));
    const over = await StompRaw.connect(port('stomp'));
    const err = await over.expectError();
    expect(err.headers).toContainEqual(['message', 'connection limit reached']);
    held.socket.destroy();

    const first = await StompRaw.open(port('stomp-rate'));
    const refusedBefore = stats.refusedConnectRate;
    let rateError: string | undefined;
    for (let i = 0; i < 5 && rateError === undefined; i++) {
      const c = await StompRaw.connect(port('stomp-rate'));
      const f = await c.next(undefined, 3000).catch(() => undefined);
      if (f?.command === 'ERROR') rateError = f.headers.find(([k]) => k === 'message')?.[1];
      else c.send('CONNECT', { 'accept-version': '1.2', host: 'x' });
      c.socket.destroy();
    }
    expect(rateError).toBe('connection rate exceeded');
    expect(stats.refusedConnectRate).toBeGreaterThan(refusedBefore);
    first.socket.destroy();
  });

  it('HTTP listener: the connection over the limit gets 503 before any request is read', async () => {
    const held = await idleSocket(port('http'));
    const over = await idleSocket(port('http'));
    await over.closed;
    expect(Buffer.concat(over.data).toString()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*connection limit reached/);
    held.socket.destroy();
  });

  it('TLS listener: the connection over the limit is closed before the handshake (not a handshake failure)', async () => {
    const handshakeFailures = stats.tlsHandshakeFailures;
    const before = stats.refusedMaxConnections;
    const opts = { host: '127.0.0.1', port: port('mqtts'), ca: readFileSync(certs.ca), servername: 'localhost' };
    const held = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect(opts, () => resolve(s));
      s.once('error', reject);
    });
    const refused = await new Promise<string>((resolve) => {
      const s = tls.connect(opts, () => resolve('handshake completed'));
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(refused).not.toBe('handshake completed');
    expect(stats.refusedMaxConnections - before).toBe(1);
    expect(stats.tlsHandshakeFailures).toBe(handshakeFailures);
    held.destroy();
  });
});

describe('the broker-wide maxConnections counts every listener', async () => {
  const b = await startBroker({ config: { limits: { maxConnections: 2 } } });
  const stats = b.broker.core.stats;

  it('an MQTT and a STOMP client fill it; the next on either protocol is refused; a close frees a place', async () => {
    const mqttClient = await connect(b.port);
    const stompClient = await StompRaw.open(b.stompPort);
    const v5 = await connackCode(b.port, 5);
    expect(v5.code).toBe(QuotaExceeded);
    const stompOver = await StompRaw.connect(b.stompPort);
    expect((await stompOver.expectError()).headers).toContainEqual(['message', 'connection limit reached']);
    expect(stats.refusedMaxConnections).toBe(2);
    expect(logged(b, 'connection refused at accept', { reason: 'max-connections' })[0]).toMatchObject({ limit: 2 });
    await mqttClient.endAsync();
    await until(() => b.broker.listeners.reduce((n, l) => n + l.gate.open, 0) === 1, 3000, 'the MQTT client counted out');
    const next = await connect(b.port);
    expect(next.connected).toBe(true);
    await next.endAsync();
    stompClient.socket.destroy();
  });
});
