/**
 * Operations acceptance (issue 10, found by the operator check in /tmp/ops-check): one kick through
 * the admin API writes exactly one `client.kicked` log line (operations.md "Structured logs"), with
 * the client's username, peer, listener and protocol and the token name that kicked it. The MQTT and
 * STOMP adapters used to log a second line of their own, so counting `evt=client.kicked` over-counted.
 */
import { describe, expect, it } from 'vitest';
import { connect, until } from '../helpers/mqtt.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { startApiBroker } from './api-helpers.js';

describe('operations acceptance: kick log line', async () => {
  const { tb, api } = await startApiBroker();
  const kicked = (id: string) => tb.logs.filter((l) => l.fields['evt'] === 'client.kicked' && l.fields['clientId'] === id);

  it('MQTT 5: DISCONNECT 0x98 and one client.kicked line naming the connection and the token', async () => {
    const id = `acc-kick-mqtt-${Date.now()}`;
    const c = await connect(tb.port, { clientId: id, username: 'kim' });
    const code = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
    expect((await api.del(`/api/v1/clients/${id}`)).status).toBe(204);
    expect(await code).toBe(0x98);
    await until(() => tb.broker.core.sessions.get(id)?.attached !== true);
    const lines = kicked(id);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.fields).toMatchObject({ username: 'kim', listener: 'mqtt', protocol: 'mqtt', reason: 'kicked', by: 'admin-token', connected: true });
    expect(String(lines[0]!.fields['peer'])).toMatch(/^127\.0\.0\.1:\d+$/);
    c.end(true);
  });

  it('STOMP: ERROR then close, and one client.kicked line', async () => {
    const id = `acc-kick-stomp-${Date.now()}`;
    const s = await StompWire.connect(tb.stompPort, { 'client-id': id });
    expect((await api.del(`/api/v1/clients/${id}`)).status).toBe(204);
    const err = await s.next((f) => f.command === 'ERROR');
    expect(err.command).toBe('ERROR');
    const lines = kicked(id);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.fields).toMatchObject({ protocol: 'stomp', reason: 'kicked', connected: true });
  });

  it('an offline persistent session discarded by a kick: one line, connected false', async () => {
    const id = `acc-kick-offline-${Date.now()}`;
    const c = await connect(tb.port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
    await c.endAsync();
    await until(() => tb.broker.core.sessions.get(id)?.attached === false);
    expect((await api.del(`/api/v1/clients/${id}`)).status).toBe(204);
    const lines = kicked(id);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.fields).toMatchObject({ connected: false, discardSession: true });
  });
});
