/**
 * $SYS (operations.md "$SYS"): Mosquitto's 51 `$SYS/broker/...` topics with the same names and
 * plain decimal payloads, plus Junction's own, retained, every sys.interval seconds and only when
 * changed; EMQX-style presence events with percent-encoded client ids; 0 turns the tree off.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { StompRaw, nonce } from '../helpers/stomp.js';

/** The 53 topics of Mosquitto 2.0's sys_tree.c, below $SYS/broker/. */
const MOSQUITTO_53 = [
  'bytes/received', 'bytes/sent',
  'clients/active', 'clients/connected', 'clients/disconnected', 'clients/expired', 'clients/inactive', 'clients/maximum', 'clients/total',
  'heap/current', 'heap/maximum',
  ...['bytes/received', 'bytes/sent', 'messages/received', 'messages/sent', 'publish/received', 'publish/sent', 'connections', 'sockets', 'publish/dropped'].flatMap((t) =>
    ['1min', '5min', '15min'].map((p) => `load/${t}/${p}`),
  ),
  'messages/received', 'messages/sent', 'messages/stored',
  'publish/bytes/received', 'publish/bytes/sent', 'publish/messages/dropped', 'publish/messages/received', 'publish/messages/sent',
  'retained messages/count', 'shared_subscriptions/count', 'store/messages/bytes', 'store/messages/count', 'subscriptions/count', 'uptime', 'version',
];
const JUNCTION = ['junction/connections/mqtt', 'junction/connections/stomp', 'junction/queues/count', 'junction/queues/messages', 'junction/queues/dlq_messages', 'junction/store/commit_p99_seconds'];

/** mosquitto_sub -v on `filter` until `count` messages: [topic, payload] pairs. */
function mosquittoSub(port: number, filter: string, count: number, extra: string[] = []): Promise<Array<[string, string]>> {
  return new Promise((resolve, reject) => {
    const p = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', filter, '-v', '-C', String(count), '-W', '10', ...extra]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`mosquitto_sub exited ${code}: ${out}`));
      resolve(
        out
          .trim()
          .split('\n')
          .map((l) => {
            // `-v` prints "topic payload"; "retained messages/count" has a space of its own.
            const m = /^(\$SYS\/broker\/(?:retained messages\/count|\S+)) (.*)$/.exec(l);
            return m ? ([m[1]!, m[2]!] as [string, string]) : (['?', l] as [string, string]);
          }),
      );
    });
  });
}

describe('$SYS/broker: the Mosquitto-compatible tree', async () => {
  const tb = await startBroker({ config: { sys: { interval: 1 } } });

  it('publishes exactly the 51 Mosquitto topics (its 53 less clients/active|inactive) and Junction\'s 6, retained, plain decimal', async () => {
    const got = await mosquittoSub(tb.port, '$SYS/broker/#', 57, ['--retained-only']);
    const topics = got.map(([t]) => t.slice('$SYS/broker/'.length));
    const expected = MOSQUITTO_53.filter((t) => t !== 'clients/active' && t !== 'clients/inactive');
    expect(expected).toHaveLength(51);
    expect([...topics].sort()).toEqual([...expected, ...JUNCTION].sort());
    const values = new Map(got.map(([t, p]) => [t.slice('$SYS/broker/'.length), p]));
    for (const [t, p] of values) {
      if (t === 'uptime') expect(p).toMatch(/^\d+ seconds$/);
      else if (t === 'version') expect(p).toMatch(/^junction \d+\.\d+\.\d+/);
      else if (t.startsWith('load/') || t === 'junction/store/commit_p99_seconds') expect(p, t).toMatch(/^\d+\.\d+$/);
      else expect(p, t).toMatch(/^\d+$/);
    }
    expect(Number(values.get('heap/current'))).toBeGreaterThan(1_000_000);
    expect(Number(values.get('heap/maximum'))).toBeGreaterThanOrEqual(Number(values.get('heap/current')));
  });

  it('counts what clients do: publishes, bytes, clients, subscriptions, retained', async () => {
    const n = nonce();
    const sub = await connect(tb.port, { clientId: `sys-sub-${n}` });
    await sub.subscribeAsync([`sys/count/${n}`, `$share/g/sys/share/${n}`], { qos: 1 });
    const pub = await connect(tb.port, { clientId: `sys-pub-${n}` });
    const read = async (topic: string): Promise<number> => {
      const [[, p]] = (await mosquittoSub(tb.port, `$SYS/broker/${topic}`, 1)) as [[string, string]];
      return Number(p);
    };
    const before = await read('publish/messages/received');
    const bytesBefore = await read('publish/bytes/received');
    for (let i = 0; i < 10; i++) await pub.publishAsync(`sys/count/${n}`, '12345', { qos: 1 });
    await until(() => sub.received.length === 10, 3000, 'the messages');
    await sleep(1200); // the next update
    expect((await read('publish/messages/received')) - before).toBe(10);
    expect((await read('publish/bytes/received')) - bytesBefore).toBe(50);
    expect(await read('clients/connected')).toBeGreaterThanOrEqual(2);
    expect(await read('shared_subscriptions/count')).toBeGreaterThanOrEqual(1);
    expect(await read('junction/connections/mqtt')).toBeGreaterThanOrEqual(2);
    await sub.endAsync();
    await pub.endAsync();
  });

  it('publishes a topic again only when its value changed', async () => {
    const c = await connect(tb.port);
    await c.subscribeAsync('$SYS/broker/version', { qos: 0 });
    await c.subscribeAsync('$SYS/broker/uptime', { qos: 0 });
    await sleep(2500); // two or three updates
    const version = c.received.filter((r) => r.topic === '$SYS/broker/version');
    const uptime = c.received.filter((r) => r.topic === '$SYS/broker/uptime');
    expect(version).toHaveLength(1); // the retained copy only
    expect(version[0]!.packet.retain).toBe(true);
    expect(uptime.length).toBeGreaterThanOrEqual(2);
    await c.endAsync();
  });

  it('a leading wildcard never reaches $SYS [MQTT-4.7.2-1]', async () => {
    const c = await connect(tb.port);
    await c.subscribeAsync(['#', '+/broker/uptime'], { qos: 0 });
    await sleep(1300);
    expect(c.received.filter((r) => r.topic.startsWith('$'))).toEqual([]);
    await c.endAsync();
  });
});

describe('$SYS presence events (EMQX layout)', async () => {
  const tb = await startBroker({ config: { sys: { interval: 0 } } });
  const node = `junction@${hostname()}`;

  it('connected and disconnected, JSON, QoS 0, not retained, with percent-encoded client ids', async () => {
    const watcher = await connect(tb.port);
    await watcher.subscribeAsync(`$SYS/brokers/+/clients/#`, { qos: 1 });
    const id = `dev/1+2#3%4-${nonce()}`;
    const encoded = id.replace('/', '%2F').replace('+', '%2B').replace('#', '%23').replace('%4', '%254');
    const c = await connect(tb.port, { clientId: id, protocolVersion: 4, keepalive: 30, username: 'sensor-user' });
    await until(() => watcher.received.some((r) => r.topic.endsWith('/connected') && r.topic.includes(encoded)), 3000, 'connected');
    await c.endAsync();
    await until(() => watcher.received.some((r) => r.topic.endsWith('/disconnected') && r.topic.includes(encoded)), 3000, 'disconnected');
    const con = watcher.received.find((r) => r.topic === `$SYS/brokers/${node}/clients/${encoded}/connected`)!;
    const dis = watcher.received.find((r) => r.topic === `$SYS/brokers/${node}/clients/${encoded}/disconnected`)!;
    expect(con).toBeDefined();
    expect(dis).toBeDefined();
    for (const r of [con, dis]) {
      expect(r.packet.qos).toBe(0);
      expect(r.packet.retain).toBe(false);
    }
    const cj = JSON.parse(con.payload.toString()) as Record<string, unknown>;
    expect(cj).toMatchObject({
      clientid: id,
      username: 'sensor-user',
      ipaddress: '127.0.0.1',
      sockport: tb.port,
      proto_name: 'MQTT',
      proto_ver: 4,
      keepalive: 30,
      clean_start: true,
      expiry_interval: 0,
      connack: 0,
      protocol: 'mqtt',
      listener: 'mqtt',
    });
    expect(typeof cj['connected_at']).toBe('number');
    expect(typeof cj['ts']).toBe('number');
    const dj = JSON.parse(dis.payload.toString()) as Record<string, unknown>;
    expect(dj).toMatchObject({ clientid: id, username: 'sensor-user', reason: 'client_disconnect', protocol: 'mqtt', listener: 'mqtt', connected_at: cj['connected_at'] });
    expect(dj['disconnected_at'] as number).toBeGreaterThanOrEqual(cj['connected_at'] as number);
    await watcher.endAsync();
  });

  it('STOMP clients by their client-id header; a dropped socket is socket_error', async () => {
    const watcher = await connect(tb.port);
    await watcher.subscribeAsync(`$SYS/brokers/${node}/clients/+/+`, { qos: 0 });
    const id = `stomp-dev-${nonce()}`;
    const s = await StompRaw.open(tb.stompPort, '1.2', { 'client-id': id, login: 'ops' });
    await until(() => watcher.received.some((r) => r.topic.endsWith(`/${id}/connected`)), 3000, 'connected');
    s.end();
    await until(() => watcher.received.some((r) => r.topic.endsWith(`/${id}/disconnected`)), 3000, 'disconnected');
    const cj = JSON.parse(watcher.received.find((r) => r.topic.endsWith(`/${id}/connected`))!.payload.toString()) as Record<string, unknown>;
    expect(cj).toMatchObject({ clientid: id, username: 'ops', proto_name: 'STOMP', proto_ver: '1.2', protocol: 'stomp', listener: 'stomp' });
    const dj = JSON.parse(watcher.received.find((r) => r.topic.endsWith(`/${id}/disconnected`))!.payload.toString()) as Record<string, unknown>;
    expect(dj['reason']).toBe('socket_error');
    await watcher.endAsync();
  });

  it('node.name names the node; sys.interval 0 publishes no $SYS/broker tree; sys.presence false no events', async () => {
    const other = await startBroker({ config: { node: { name: 'edge-7' }, sys: { interval: 0, presence: false } } });
    const w = await connect(other.port);
    await w.subscribeAsync('$SYS/#', { qos: 0 });
    const c = await connect(other.port);
    await c.endAsync();
    await sleep(300);
    expect(w.received).toEqual([]);
    await w.endAsync();
    await other.stop();
    const named = await startBroker({ config: { node: { name: 'edge-8' }, sys: { interval: 0 } } });
    const w2 = await connect(named.port, { clientId: 'w2' });
    await w2.subscribeAsync('$SYS/brokers/edge-8/clients/+/connected', { qos: 0 });
    await connect(named.port, { clientId: 'c2' });
    await until(() => w2.received.some((r) => r.topic === '$SYS/brokers/edge-8/clients/c2/connected'), 3000, 'edge-8 event');
    await named.stop();
  });
});
