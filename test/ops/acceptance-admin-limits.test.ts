/**
 * Operations acceptance (issue 10, found by the operator check in /tmp/ops-check): the `admin.bind`
 * listener (API, dashboard, metrics) is apart from the devices' connection limits. It used to share
 * `limits.maxConnections` with them, so Prometheus's keep-alive scrape socket alone filled a limit of
 * 1, and devices at the limit locked the operator out of the API and /metrics (503 "connection limit
 * reached") exactly when they were needed.
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { connect } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { TOKENS, startApiBroker } from './api-helpers.js';

/** A keep-alive GET, as Prometheus scrapes: the socket stays open after the answer. */
function keepAliveGet(agent: http.Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ agent, host: '127.0.0.1', port, path, headers: { Authorization: `Bearer ${TOKENS.admin}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

describe('operations acceptance: the admin listener and limits.*', async () => {
  const { tb, api } = await startApiBroker({ config: { admin: { bind: '127.0.0.1:0' as never }, limits: { maxConnections: 1, maxConnectionsPerAddress: 1 } } });
  const adminPort = tb.broker.port('admin');

  it('with a device at maxConnections and a keep-alive scraper, /metrics and the API answer; a second device is refused', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect(await keepAliveGet(agent, adminPort, '/metrics')).toBe(200);
    const device = await connect(tb.port, { clientId: 'acc-limit-1' });
    expect(await keepAliveGet(agent, adminPort, '/metrics')).toBe(200);
    // Other operator connections too, from the same address, while the scraper's socket is open.
    expect((await api.get('/api/v1/clients/acc-limit-1')).status).toBe(200);
    expect((await fetch(`${api.base}/health`)).status).toBe(200);
    // The devices' limit still holds for devices.
    const second = await RawClient.connect(tb.port, 5);
    await second.waitClosed();
    expect((await api.get('/api/v1/overview')).body.connections.mqtt).toBe(1);
    agent.destroy();
    await device.endAsync();
  });
});
