/**
 * Metrics of TLS listeners and reloads: junction_tls_certificate_expiry_timestamp_seconds gives
 * each TLS listener's notAfter (and nothing for plain ones), a failed TLS handshake counts in
 * junction_connections_rejected_total{reason="tls_handshake"}, and a reload moves the
 * junction_config_* series.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { sleep } from '../helpers/mqtt.js';
import { issue, makeCa, tempDir } from '../listeners/certs.js';
import { delta, scrape, v } from './metrics-helpers.js';

describe('metrics: TLS listeners and reloads', async () => {
  const dir = tempDir('junction-metrics-tls-');
  const ca = makeCa(dir, 'ca', 'Metrics CA');
  const server = issue(dir, 'server', { cn: 'localhost', ca, days: 20, san: 'DNS:localhost,IP:127.0.0.1', usage: 'serverAuth' });
  const notAfter = Date.parse(execFileSync('openssl', ['x509', '-in', server.cert, '-noout', '-enddate'], { encoding: 'utf8' }).trim().replace('notAfter=', ''));
  const tb = await startBroker({
    config: {
      listeners: [
        { name: 'plain', protocol: 'mqtt', host: '127.0.0.1', port: 0 },
        { name: 'secure', protocol: 'mqtt', host: '127.0.0.1', port: 0, tls: { cert: server.cert, key: server.key } },
        { name: 'http', protocol: 'http', host: '127.0.0.1', port: 0 },
      ],
    },
  });

  it('gives the notAfter of each TLS listener, in seconds', async () => {
    const s = await scrape(tb);
    expect(v(s, 'junction_tls_certificate_expiry_timestamp_seconds', { listener: 'secure' })).toBe(Math.floor(notAfter / 1000));
    expect(s.values.has('junction_tls_certificate_expiry_timestamp_seconds{listener="plain"}')).toBe(false);
    expect(v(s, 'junction_connections_rejected_total', { listener: 'secure', reason: 'tls_handshake' })).toBe(0);
  });

  it('counts a failed handshake (plain MQTT bytes to the TLS port) as rejected tls_handshake', async () => {
    const before = await scrape(tb);
    const sock = net.connect(tb.broker.port('secure'), '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]));
    sock.on('error', () => undefined);
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    let after = await scrape(tb);
    for (let i = 0; i < 50 && delta(before, after, 'junction_connections_rejected_total', { listener: 'secure', reason: 'tls_handshake' }) === 0; i++) {
      await sleep(20);
      after = await scrape(tb);
    }
    expect(delta(before, after, 'junction_connections_rejected_total', { listener: 'secure', reason: 'tls_handshake' })).toBe(1);
    expect(delta(before, after, 'junction_connections_rejected_total', { listener: 'plain', reason: 'tls_handshake' })).toBe(0);
  });

  it('junction_config_* follow the reload outcomes the broker records', async () => {
    // The reload itself is src/server/reload.ts's (tested with it); here, what the series show.
    const before = await scrape(tb);
    const stats = tb.broker.core.stats;
    stats.noteReload(false);
    const failed = await scrape(tb);
    expect(v(failed, 'junction_config_last_reload_successful')).toBe(0);
    expect(delta(before, failed, 'junction_config_reloads_total', { result: 'failure' })).toBe(1);
    expect(delta(before, failed, 'junction_config_last_reload_success_timestamp_seconds')).toBe(0);
    stats.noteReload(true, Date.now() + 5000);
    const ok = await scrape(tb);
    expect(v(ok, 'junction_config_last_reload_successful')).toBe(1);
    expect(delta(before, ok, 'junction_config_reloads_total', { result: 'success' })).toBe(1);
    expect(delta(before, ok, 'junction_config_last_reload_success_timestamp_seconds')).toBeGreaterThanOrEqual(4);
  });
});
