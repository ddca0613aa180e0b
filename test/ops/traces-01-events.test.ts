/**
 * Traces (operations.md "Structured logs and traces", EMQX model): what a running trace records of
 * real clients over real sockets. By client id (MQTT.js, STOMP), by topic filter with wildcards
 * (mosquitto_pub/mosquitto_sub), by IP address; the events connect, connack, subscribe,
 * publish.in, route (matched count), deliver, ack (PUBACK/PUBREC/PUBCOMP, STOMP ACK/NACK), drop
 * with its reason (ACL, session queue limit), dead_letter (NACK requeue:false, maxDeliveries),
 * disconnect; payload modes hidden / text / hex with payloadLimit. With no trace running the
 * hooks are off (`core.tracing.on` false).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connect, until } from '../helpers/mqtt.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { stompitConnect, stompitSend } from '../helpers/stomp.js';
import { startApiBroker } from './api-helpers.js';
import { has, mosquitto, mosquittoSub, removeTrace, startTrace, traceLog, traceName, waitTrace, type TraceLine } from './traces-helpers.js';

const evts = (events: TraceLine[]): string[] => events.map((e) => e['evt'] as string);

describe('traces: events of real clients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'junction-traces-01-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const aclFile = join(dir, 'acl');
  const dlQueue = `tr-dl-${process.pid}`;
  // `#` does not cover `$queue/...` (a $ topic): the queues these tests use are granted by name.
  writeFileSync(aclFile, `topic readwrite #\ntopic readwrite $queue/tr-stomp-q\ntopic readwrite $queue/${dlQueue}\ntopic deny tr/denied/#\n`);
  const { tb, api } = await startApiBroker({
    config: { auth: { aclFile }, mqtt: { maxQueuedMessages: 3 }, queues: { maxDeliveries: 2 }, trace: { dir: join(dir, 'traces') } },
  });
  const core = tb.broker.core;
  const h = ['-h', '127.0.0.1', '-p', String(tb.port)];

  // A failed test must not leave a trace running for the next one.
  afterEach(async () => {
    for (const t of (await api.get('/api/v1/traces')).body.data as TraceLine[]) await api.del(`/api/v1/traces/${t['name']}`);
  });

  it('no trace running: the hooks are off', () => {
    expect(core.tracing.on).toBe(false);
  });

  it('clientId trace of an MQTT 5 client: connect, connack, subscribe, deliver, PUBACK/PUBREC/PUBCOMP acks, publish.in, route, disconnect; payloads hidden, others not recorded', async () => {
    const name = traceName('cid');
    const view = await startTrace(api, { name, type: 'clientId', value: 'tr-cid-1' });
    expect(view).toMatchObject({ type: 'clientId', value: 'tr-cid-1', payload: 'hidden', durationSeconds: 600, size: 0, events: 0 });
    expect(view['file']).toBe(join(dir, 'traces', `${name}.log`));
    expect(core.tracing.on).toBe(true);

    const other = await connect(tb.port, { clientId: 'tr-cid-other' });
    const c = await connect(tb.port, { clientId: 'tr-cid-1' });
    await c.subscribeAsync('tr/cid/#', { qos: 2 });
    await other.publishAsync('tr/cid/q1', 'SECRET-q1-payload', { qos: 1 });
    await other.publishAsync('tr/cid/q2', 'SECRET-q2-payload', { qos: 2 });
    await until(() => c.received.length === 2, 3000, 'two deliveries');
    await c.publishAsync('tr/nobody/x', 'SECRET-self', { qos: 1 });
    await c.publishAsync('tr/cid/self', 'SECRET-self', { qos: 0 });
    await until(() => c.received.length === 3, 3000, 'own message back');
    await c.endAsync();
    await other.endAsync();

    const events = await waitTrace(api, name, (e) => has(e, 'disconnect'), 'disconnect');
    // Only this client: nothing of tr-cid-other (its connect, its publishes) is in the trace.
    expect(events.every((e) => e['clientId'] === 'tr-cid-1')).toBe(true);
    expect(events.every((e) => typeof e['peer'] === 'string' && (e['peer'] as string).startsWith('127.0.0.1:'))).toBe(true);
    expect(evts(events)[0]).toBe('connect');
    expect(evts(events)[1]).toBe('connack');
    expect(evts(events).at(-1)).toBe('disconnect');
    expect(events[0]).toMatchObject({ protocol: 'mqtt', version: 5, cleanStart: true, will: false });
    expect(events[1]).toMatchObject({ code: 0, sessionPresent: false });
    expect(events.find((e) => e['evt'] === 'subscribe')).toMatchObject({ topic: 'tr/cid/#', qos: 2, code: 2 });

    const delivers = events.filter((e) => e['evt'] === 'deliver');
    expect(delivers.map((d) => [d['topic'], d['qos']])).toEqual([
      ['tr/cid/q1', 1],
      ['tr/cid/q2', 2],
      ['tr/cid/self', 0],
    ]);
    // Payloads hidden by default: the size is given, the bytes are never written.
    for (const d of delivers) {
      expect(d['payload']).toBeUndefined();
      expect(d['payloadSize']).toBe(d['topic'] === 'tr/cid/self' ? 11 : 17);
    }
    const acks = events.filter((e) => e['evt'] === 'ack').map((e) => [e['packet'], e['packetId']]);
    const id1 = delivers[0]!['packetId'];
    const id2 = delivers[1]!['packetId'];
    expect(acks).toEqual([
      ['PUBACK', id1],
      ['PUBREC', id2],
      ['PUBCOMP', id2],
    ]);
    // Its own publishes: publish.in then route with the number of matching subscriptions.
    const pubs = events.filter((e) => e['evt'] === 'publish.in' || e['evt'] === 'route').map((e) => [e['evt'], e['topic'], e['matched'] ?? e['qos']]);
    expect(pubs).toEqual([
      ['publish.in', 'tr/nobody/x', 1],
      ['route', 'tr/nobody/x', 0],
      ['publish.in', 'tr/cid/self', 0],
      ['route', 'tr/cid/self', 1],
    ]);
    expect(events.at(-1)).toMatchObject({ evt: 'disconnect', closeReason: 'client_disconnect' });
    const text = readFileSync(view['file'] as string, 'utf8');
    expect(text).not.toContain('SECRET');
    // JSON lines: one event per line.
    expect(text.trimEnd().split('\n').map((l) => JSON.parse(l) as TraceLine)).toEqual(events);

    await removeTrace(api, name);
    expect(core.tracing.on).toBe(false);
  });

  it('topic trace with a wildcard filter (mosquitto_pub / mosquitto_sub, MQTT.js): intersecting subscriptions, publish.in, route with its matched count, deliver to each subscriber; other topics not recorded', async () => {
    const name = traceName('topic');
    await startTrace(api, { name, type: 'topic', value: 'tr/top/+/x' });
    const js = await connect(tb.port, { clientId: 'tr-top-js', protocolVersion: 4 });
    await js.subscribeAsync('tr/top/+/x', { qos: 1 });
    await js.subscribeAsync('tr/other/#', { qos: 1 });
    const sub = mosquittoSub([...h, '-V', 'mqttv5', '-i', 'tr-top-msub', '-t', 'tr/top/#', '-q', '1', '-C', '1']);
    try {
      // The trace itself says when mosquitto_sub's subscription is in place.
      await waitTrace(api, name, (e) => has(e, 'subscribe', { clientId: 'tr-top-msub' }), 'mosquitto_sub subscribed');
      await mosquitto('mosquitto_pub', [...h, '-V', 'mqttv311', '-i', 'tr-top-pub', '-t', 'tr/top/a/x', '-m', 'hello', '-q', '1']);
      await mosquitto('mosquitto_pub', [...h, '-V', 'mqttv311', '-i', 'tr-top-pub2', '-t', 'tr/top/b/y', '-m', 'not traced', '-q', '1']);
      await mosquitto('mosquitto_pub', [...h, '-V', 'mqttv311', '-i', 'tr-top-pub3', '-t', 'tr/other/z', '-m', 'not traced', '-q', '1']);
      expect(await sub.exited).toBe(0);
      expect(sub.output()).toBe('hello\n');
      await until(() => js.received.length === 2, 3000, 'both messages at MQTT.js');
    } finally {
      sub.child.kill();
    }
    const events = await waitTrace(api, name, (e) => e.filter((x) => x['evt'] === 'deliver').length === 2, 'two deliveries');
    expect(events.filter((e) => e['evt'] === 'subscribe').map((e) => [e['clientId'], e['topic']])).toEqual([
      ['tr-top-js', 'tr/top/+/x'],
      ['tr-top-msub', 'tr/top/#'],
    ]);
    expect(events.filter((e) => e['evt'] === 'publish.in')).toEqual([expect.objectContaining({ clientId: 'tr-top-pub', topic: 'tr/top/a/x', qos: 1, payloadSize: 5 })]);
    expect(events.filter((e) => e['evt'] === 'route')).toEqual([expect.objectContaining({ clientId: 'tr-top-pub', topic: 'tr/top/a/x', matched: 2 })]);
    expect(
      events
        .filter((e) => e['evt'] === 'deliver')
        .map((e) => e['clientId'])
        .sort(),
    ).toEqual(['tr-top-js', 'tr-top-msub']);
    // Nothing about tr/top/b/y or tr/other/z, and no connect (it names no topic).
    expect(events.every((e) => e['topic'] === 'tr/top/a/x' || e['evt'] === 'subscribe')).toBe(true);
    expect(has(events, 'connect')).toBe(false);
    await js.endAsync();
    await removeTrace(api, name);
    expect(core.tracing.on).toBe(false);
  });

  it('ip trace: MQTT 3.1.1 (mosquitto_pub) and STOMP clients from 127.0.0.1 are recorded; a trace of another address records nothing', async () => {
    const name = traceName('ip');
    const none = traceName('ip-none');
    const mapped = traceName('ip-mapped');
    await startTrace(api, { name, type: 'ip', value: '127.0.0.1' });
    await startTrace(api, { name: none, type: 'ip', value: '10.9.8.7' });
    // An IPv4-mapped IPv6 address is the same client address.
    const m = await startTrace(api, { name: mapped, type: 'ip', value: '::ffff:127.0.0.1' });
    expect(m['value']).toBe('127.0.0.1');
    await mosquitto('mosquitto_pub', [...h, '-V', 'mqttv311', '-i', 'tr-ip-pub', '-t', 'tr/ip/a', '-m', 'x']);
    const s = await StompWire.connect(tb.stompPort, { 'client-id': 'tr-ip-stomp' });
    await s.send('/topic/tr/ip/b', 'y');
    await s.disconnect();
    const events = await waitTrace(api, name, (e) => has(e, 'disconnect', { clientId: 'tr-ip-pub' }) && has(e, 'disconnect', { clientId: 'tr-ip-stomp' }), 'both disconnects');
    expect(events.every((e) => (e['peer'] as string).startsWith('127.0.0.1:'))).toBe(true);
    expect(events.find((e) => e['evt'] === 'connect' && e['clientId'] === 'tr-ip-pub')).toMatchObject({ protocol: 'mqtt', version: 4 });
    expect(events.find((e) => e['evt'] === 'connect' && e['clientId'] === 'tr-ip-stomp')).toMatchObject({ protocol: 'stomp', version: '1.2' });
    expect(has(events, 'publish.in', { clientId: 'tr-ip-pub', topic: 'tr/ip/a' })).toBe(true);
    expect(has(events, 'publish.in', { clientId: 'tr-ip-stomp', topic: 'tr/ip/b' })).toBe(true);
    expect((await traceLog(api, mapped)).length).toBe(events.length);
    expect(await traceLog(api, none)).toEqual([]);
    expect((await api.get(`/api/v1/traces/${none}`)).body).toMatchObject({ events: 0, size: 0, status: 'running' });
    await removeTrace(api, name);
    await removeTrace(api, none);
    expect(core.tracing.on).toBe(true); // one still runs
    await removeTrace(api, mapped);
    expect(core.tracing.on).toBe(false);
  });

  it('clientId trace of a STOMP client (client-id header): connect, connack, subscribe, publish.in, route, deliver, ACK, NACK, disconnect', async () => {
    const name = traceName('stomp');
    await startTrace(api, { name, type: 'clientId', value: 'tr-stomp-1' });
    const s = await StompWire.connect(tb.stompPort, { 'client-id': 'tr-stomp-1' });
    await s.subscribe('/queue/tr-stomp-q', 'sub-1', 'client-individual');
    await s.send('/queue/tr-stomp-q', 'm1');
    await s.send('/queue/tr-stomp-q', 'm2');
    const [m1, m2] = await s.waitMessages(2);
    s.ack(m1!);
    s.nack(m2!); // requeue (the default): delivered again
    const again = (await s.waitMessages(3))[2]!;
    expect(again.body.toString()).toBe('m2');
    s.ack(again);
    await s.disconnect();
    const events = await waitTrace(api, name, (e) => has(e, 'disconnect'), 'disconnect');
    expect(events.every((e) => e['clientId'] === 'tr-stomp-1')).toBe(true);
    // A queue hands a message to its consumer inside the publish, so `deliver` may come before `route`.
    expect(evts(events).filter((e) => e !== 'deliver')).toEqual(['connect', 'connack', 'subscribe', 'publish.in', 'route', 'publish.in', 'route', 'ack', 'ack', 'ack', 'disconnect']);
    expect(evts(events).filter((e) => e === 'deliver')).toHaveLength(3);
    expect(events[0]).toMatchObject({ protocol: 'stomp', version: '1.2' });
    expect(events[1]).toMatchObject({ frame: 'CONNECTED', version: '1.2', session: s.sessionId });
    expect(events[2]).toMatchObject({ destination: '/queue/tr-stomp-q', id: 'sub-1', ack: 'client-individual', granted: true });
    expect(events[3]).toMatchObject({ destination: '/queue/tr-stomp-q', payloadSize: 2 });
    expect(events.filter((e) => e['evt'] === 'route').map((e) => e['matched'])).toEqual([1, 1]);
    expect(events.filter((e) => e['evt'] === 'ack').map((e) => [e['frame'], e['id'], e['requeue']])).toEqual([
      ['ACK', m1!.headers['ack'], undefined],
      ['NACK', m2!.headers['ack'], true],
      ['ACK', again.headers['ack'], undefined],
    ]);
    expect(events.filter((e) => e['evt'] === 'deliver').map((e) => e['subscription'])).toEqual(['sub-1', 'sub-1', 'sub-1']);
    await removeTrace(api, name);
    expect(core.tracing.on).toBe(false);
  });

  it('drop with a reason: ACL-denied MQTT 5 publish and STOMP SEND (not_authorized), session queue full (queue-full)', async () => {
    const name = traceName('drop-acl');
    const qname = traceName('drop-q');
    await startTrace(api, { name, type: 'topic', value: 'tr/denied/#' });
    await startTrace(api, { name: qname, type: 'clientId', value: 'tr-drop-q' });

    const c = await connect(tb.port, { clientId: 'tr-drop-pub' });
    // MQTT.js rejects a PUBACK with an error code.
    await expect(c.publishAsync('tr/denied/a', 'no', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    const s = await StompWire.connect(tb.stompPort, { 'client-id': 'tr-drop-stomp' });
    s.write('SEND', { destination: '/topic/tr/denied/b' }, 'no');
    await s.closedPromise;
    const denied = await waitTrace(api, name, (e) => e.filter((x) => x['evt'] === 'drop').length === 2, 'two drops');
    expect(denied.filter((e) => e['evt'] === 'drop').map((e) => [e['clientId'], e['topic'], e['reason']])).toEqual([
      ['tr-drop-pub', 'tr/denied/a', 'not_authorized'],
      ['tr-drop-stomp', 'tr/denied/b', 'not_authorized'],
    ]);
    // A denied publish is never routed.
    expect(has(denied, 'route')).toBe(false);

    // An offline session holds at most mqtt.maxQueuedMessages (3): two of five are dropped.
    const q = await connect(tb.port, { clientId: 'tr-drop-q', clean: false, properties: { sessionExpiryInterval: 300 } });
    await q.subscribeAsync('tr/dropq', { qos: 1 });
    await q.endAsync();
    for (let i = 0; i < 5; i++) await c.publishAsync('tr/dropq', `m${i}`, { qos: 1 });
    const events = await waitTrace(api, qname, (e) => e.filter((x) => x['evt'] === 'drop').length === 2, 'two queue drops');
    expect(events.filter((e) => e['evt'] === 'drop')).toEqual([
      expect.objectContaining({ clientId: 'tr-drop-q', topic: 'tr/dropq', reason: 'queue-full', qos: 1, payloadSize: 2 }),
      expect.objectContaining({ clientId: 'tr-drop-q', topic: 'tr/dropq', reason: 'queue-full', qos: 1, payloadSize: 2 }),
    ]);
    await c.endAsync();
    await removeTrace(api, name);
    await removeTrace(api, qname);
    expect(core.tracing.on).toBe(false);
  });

  it('dead_letter: a STOMP NACK with requeue:false (rejected) and a message past queues.maxDeliveries (max_deliveries)', async () => {
    const queue = dlQueue;
    const name = traceName('dl');
    await startTrace(api, { name, type: 'topic', value: `$queue/${queue}` });
    const pub = await stompitConnect(tb.stompPort, { 'client-id': 'tr-dl-pub' });
    await stompitSend(pub, { destination: `/queue/${queue}` }, 'reject-me');
    await stompitSend(pub, { destination: `/queue/${queue}` }, 'retry-me');
    const s = await StompWire.connect(tb.stompPort, { 'client-id': 'tr-dl-consumer' });
    await s.subscribe(`/queue/${queue}`, 'd', 'client-individual', { 'prefetch-count': '1' });
    const first = (await s.waitMessages(1))[0]!;
    expect(first.body.toString()).toBe('reject-me');
    s.nack(first, { requeue: 'false' });
    // maxDeliveries 2: NACKed (requeued) twice, the second NACK dead-letters it.
    const second = (await s.waitMessages(2))[1]!;
    s.nack(second);
    const third = (await s.waitMessages(3))[2]!;
    expect(third.body.toString()).toBe('retry-me');
    s.nack(third);
    const events = await waitTrace(api, name, (e) => e.filter((x) => x['evt'] === 'dead_letter').length === 2, 'two dead letters');
    expect(events.filter((e) => e['evt'] === 'dead_letter').map((e) => [e['topic'], e['queue'], e['reason'], e['payloadSize']])).toEqual([
      [`$queue/${queue}`, queue, 'rejected', 9],
      [`$queue/${queue}`, queue, 'max_deliveries', 8],
    ]);
    // A dead letter is the consumer's event (its session: for STOMP the session id the CONNECTED
    // frame gave it), with the publisher's session named beside it.
    const dead = events.filter((x) => x['evt'] === 'dead_letter');
    for (const e of dead) {
      expect(e['clientId']).toMatch(/^stomp-/);
      expect(e['publisher']).toMatch(/^stomp-/);
      expect(e['publisher']).not.toBe(e['clientId']);
    }
    expect(new Set(dead.map((e) => e['clientId'])).size).toBe(1);
    expect(events.filter((e) => e['evt'] === 'publish.in').map((e) => e['clientId'])).toEqual(['tr-dl-pub', 'tr-dl-pub']);
    expect(events.filter((e) => e['evt'] === 'deliver').map((e) => e['clientId'])).toEqual(['tr-dl-consumer', 'tr-dl-consumer', 'tr-dl-consumer']);
    await until(() => core.router.queues.queues.get(`DLQ.${queue}`)?.waiting === 2, 3000, 'both in the DLQ');
    await s.disconnect();
    pub.destroy();
    await removeTrace(api, name);
    expect(core.tracing.on).toBe(false);
  });

  it('payload modes: text and hex written up to payloadLimit bytes (payloadTruncated), the size always given', async () => {
    const text = traceName('pl-text');
    const hex = traceName('pl-hex');
    await startTrace(api, { name: text, type: 'topic', value: 'tr/pl/text', payload: 'text', payloadLimit: 5 });
    await startTrace(api, { name: hex, type: 'topic', value: 'tr/pl/hex', payload: 'hex', payloadLimit: 4 });
    const c = await connect(tb.port, { clientId: 'tr-pl' });
    await c.publishAsync('tr/pl/text', 'hello world', { qos: 1 });
    await c.publishAsync('tr/pl/text', 'hi', { qos: 1 });
    await c.publishAsync('tr/pl/hex', Buffer.from([0, 1, 2, 0xff, 0x10]), { qos: 1 });
    await c.publishAsync('tr/pl/hex', Buffer.from([0xab]), { qos: 1 });
    await c.endAsync();
    const t = await waitTrace(api, text, (e) => e.filter((x) => x['evt'] === 'publish.in').length === 2, 'text publishes');
    expect(t.filter((e) => e['evt'] === 'publish.in').map((e) => [e['payload'], e['payloadSize'], e['payloadTruncated']])).toEqual([
      ['hello', 11, true],
      ['hi', 2, undefined],
    ]);
    const x = await waitTrace(api, hex, (e) => e.filter((y) => y['evt'] === 'publish.in').length === 2, 'hex publishes');
    expect(x.filter((e) => e['evt'] === 'publish.in').map((e) => [e['payload'], e['payloadSize'], e['payloadTruncated']])).toEqual([
      ['000102ff', 5, true],
      ['ab', 1, undefined],
    ]);
    await removeTrace(api, text);
    await removeTrace(api, hex);
    expect(core.tracing.on).toBe(false);
  });
});
