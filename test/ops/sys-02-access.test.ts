/**
 * $SYS access (operations.md "$SYS"): with an ACL file, $SYS is denied unless a rule names it: a
 * leading wildcard (`#`, `+/...`) never matches a `$` topic, so `topic read #` does not open it. A
 * denied SUBSCRIBE gets 0x87 (MQTT 5), 0x80 (3.1.1) or a STOMP ERROR, and counts in
 * junction_authorization_denied_total{action="subscribe"}. Without an ACL file, everything is
 * allowed, $SYS included (as Mosquitto).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ISubackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { delta, scrape } from './metrics-helpers.js';

describe('$SYS access with an ACL file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'junction-sys-acl-'));
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, ['user app', 'topic read #', 'topic write app/#', '', 'user ops', 'topic read $SYS/#', ''].join('\n'));
  const tb = await startBroker({ config: { auth: { aclFile }, sys: { interval: 1 } } });

  it('a user granted only `#` is refused $SYS/#: SUBACK 0x87 (v5), 0x80 (3.1.1); counted as a denied subscribe', async () => {
    const before = await scrape(tb);
    const v5 = await RawClient.connect(tb.port, 5);
    await v5.handshake({ clientId: 'app-5', username: 'app' });
    v5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$SYS/#', qos: 0 }, { topic: '#', qos: 0 }] });
    expect(((await v5.next('suback')) as ISubackPacket).granted).toEqual([0x87, 0]);
    const v4 = await RawClient.connect(tb.port, 4);
    await v4.handshake({ clientId: 'app-4', username: 'app' });
    v4.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$SYS/broker/uptime', qos: 1 }] });
    expect(((await v4.next('suback')) as ISubackPacket).granted).toEqual([0x80]);
    const after = await scrape(tb);
    expect(delta(before, after, 'junction_authorization_denied_total', { action: 'subscribe' })).toBe(2);
    // Its `#` subscription gets no $SYS message either (no leading wildcard reaches `$` topics).
    await v4.settle(1300);
    await v5.settle(0);
    expect(v5.packets.filter((p) => p.cmd === 'publish' && p.topic.startsWith('$'))).toEqual([]);
    v5.socket.destroy();
    v4.socket.destroy();
  });

  it('a STOMP SUBSCRIBE to /topic/$SYS/... is answered with an ERROR', async () => {
    const s = await StompRaw.open(tb.stompPort, '1.2', { login: 'app' });
    s.send('SUBSCRIBE', { destination: '/topic/$SYS/broker/uptime', id: '1', receipt: 'r1' });
    const err = await s.expectError();
    expect(hdr(err, 'message')).toBe('not authorized');
    await s.waitClosed();
  });

  it('an explicit `topic read $SYS/#` grant opens it', async () => {
    const c = await connect(tb.port, { clientId: 'ops-1', username: 'ops' });
    const [granted] = await c.subscribeAsync('$SYS/broker/uptime', { qos: 0 });
    expect(granted!.qos).toBe(0);
    await until(() => c.received.some((r) => r.topic === '$SYS/broker/uptime'), 3000, '$SYS/broker/uptime');
    expect(c.received[0]!.payload.toString()).toMatch(/^\d+ seconds$/);
    await c.endAsync();
  });
});

describe('$SYS access without an ACL file', async () => {
  const tb = await startBroker({ config: { sys: { interval: 1 } } });

  it('is open to every client, as in Mosquitto', async () => {
    const c = await connect(tb.port);
    const [granted] = await c.subscribeAsync('$SYS/broker/version', { qos: 0 });
    expect(granted!.qos).toBe(0);
    await until(() => c.received.length > 0, 3000, 'the retained version');
    expect(c.received[0]!.payload.toString()).toMatch(/^junction /);
    await c.endAsync();
  });
});
