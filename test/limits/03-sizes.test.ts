/**
 * Size limits on what clients send: packet and frame size (mqtt.maxPacketSize, stomp.maxBodySize),
 * topic length and levels (mqtt.maxTopicLength / maxTopicLevels, for MQTT topics, filters and will
 * topics and for every STOMP destination, queues included), client identifier length. Each breach
 * gets the protocol's answer, a log line and a counter; 1,000+ levels are refused cleanly (Aedes
 * crashed past 100), and deep topics within a raised limit still work.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { logged, nonce, run, subackCodes } from './helpers.js';

const PacketTooLarge = 0x95;
const TopicNameInvalid = 0x90;
const TopicFilterInvalid = 0x8f;
const ClientIdentifierNotValid = 0x85;

describe('size limits', async () => {
  const b = await startBroker({
    config: {
      mqtt: { maxPacketSize: 4096, maxTopicLength: 3000, maxClientIdLength: 23 },
      stomp: { maxBodySize: 4096 },
    },
  });
  const stats = b.broker.core.stats;
  const deep = Array.from({ length: 1000 }, () => 'a').join('/'); // 1,000 levels in 1,999 bytes: the level limit (128)
  const long = 'q'.repeat(3500); // one level, over the length limit (3000 bytes)

  it('MQTT packet over mqtt.maxPacketSize: v5 DISCONNECT 0x95, 3.1.1 closed; counted and logged [MQTT-3.2.2-15]', async () => {
    const before = stats.packetsTooLarge;
    const v5 = await RawClient.connect(b.port, 5);
    await v5.handshake();
    v5.send({ cmd: 'publish', topic: 'lim/big', payload: Buffer.alloc(8000), qos: 0, retain: false, dup: false });
    const d = await v5.next('disconnect');
    expect(d.reasonCode).toBe(PacketTooLarge);
    await v5.waitClosed();
    const v4 = await RawClient.connect(b.port, 4);
    await v4.handshake();
    v4.send({ cmd: 'publish', topic: 'lim/big', payload: Buffer.alloc(8000), qos: 0, retain: false, dup: false });
    await v4.waitClosed();
    expect(v4.packets.filter((p) => p.cmd !== 'connack')).toEqual([]);
    expect(stats.packetsTooLarge - before).toBe(2);
    expect(logged(b, 'client disconnected').some((f) => f['code'] === 'PacketTooLarge')).toBe(true);
  });

  it('STOMP body over stomp.maxBodySize: ERROR, then closed; counted', async () => {
    const before = stats.packetsTooLarge;
    const c = await StompRaw.open(b.stompPort);
    c.send('SEND', { destination: '/topic/lim/big', 'content-length': '8000', receipt: 'r1' }, Buffer.alloc(8000, 'x'));
    const err = await c.expectError();
    expect(hdr(err, 'message')).toMatch(/exceeds the limit of 4096/);
    expect(hdr(err, 'receipt-id')).toBe('r1');
    expect(stats.packetsTooLarge - before).toBe(1);
  });

  it('MQTT.js publishing to 1,000 levels: DISCONNECT 0x90 Topic Name invalid, the broker serves on [MQTT-4.7.3-?]', async () => {
    const before = stats.topicLimitRefused;
    const c = await connect(b.port);
    const disconnect = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
    c.publish(deep, 'x', { qos: 1 });
    expect(await disconnect).toBe(TopicNameInvalid);
    expect(stats.topicLimitRefused - before).toBe(1);
    const reason = logged(b, 'client disconnected').find((f) => f['code'] === 'TopicNameInvalid')?.['reason'];
    expect(reason).toBe('topic name more than 128 levels');
    // And the broker is fine.
    const ok = await connect(b.port);
    await ok.subscribeAsync('lim/ok', { qos: 1 });
    await ok.publishAsync('lim/ok', 'still here', { qos: 1 });
    await until(() => ok.received.length === 1);
    await ok.endAsync();
  });

  it('subscribing to 1,000 levels: SUBACK 0x8F (MQTT.js v5) and 0x80 (mosquitto_sub 3.1.1); other filters in the packet are granted', async () => {
    const before = stats.topicLimitRefused;
    const c = await connect(b.port);
    expect([...(await subackCodes(c, [deep, 'lim/fine'])), ...(await subackCodes(c, [long]))]).toEqual([TopicFilterInvalid, 1, TopicFilterInvalid]);
    const sub = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(b.port), '-V', 'mqttv311', '-t', deep, '-C', '1', '-W', '3']);
    expect(sub.stderr).toMatch(/All subscription requests were denied/);
    expect(stats.topicLimitRefused - before).toBe(3);
    expect(logged(b, 'subscription refused', { filter: deep })[0]?.['reason']).toBe('more than 128 levels');
    expect(logged(b, 'subscription refused', { filter: long })[0]?.['reason']).toBe('longer than 3000 bytes');
    await c.endAsync();
  });

  it('a will topic over the limits: CONNACK 0x90', async () => {
    const c = await RawClient.connect(b.port, 5);
    const ack = await c.handshake({ will: { topic: deep, payload: Buffer.from('w'), qos: 0, retain: false } });
    expect(ack.reasonCode).toBe(TopicNameInvalid);
    await c.waitClosed();
  });

  it('STOMP destinations over the limits: SEND and SUBSCRIBE to /topic and SEND to /queue get ERROR naming the limit', async () => {
    const before = stats.topicLimitRefused;
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['SEND', { destination: `/topic/${deep}` }, /more than 128 levels/],
      ['SUBSCRIBE', { destination: `/topic/${deep}`, id: '1' }, /more than 128 levels/],
      ['SEND', { destination: `/topic/${long}` }, /longer than 3000 bytes/],
      ['SEND', { destination: `/queue/${long}` }, /queue "q+": longer than 3000 bytes/],
      ['SUBSCRIBE', { destination: `/queue/${long}`, id: '1' }, /longer than 3000 bytes/],
    ];
    for (const [command, headers, why] of cases) {
      const c = await StompRaw.open(b.stompPort);
      c.send(command, { ...headers, receipt: 'r' });
      const err = await c.expectError();
      expect(hdr(err, 'message')).toBe('invalid destination');
      expect(err.body.toString()).toMatch(why);
    }
    expect(stats.topicLimitRefused - before).toBe(cases.length);
  });

  it('a client id over mqtt.maxClientIdLength: v5 CONNACK 0x85 (MQTT.js), 3.1.1 return code 2 (mosquitto_pub); counted', async () => {
    const before = stats.clientIdTooLong;
    const err = await connect(b.port, { clientId: 'x'.repeat(24) }).then(
      () => undefined,
      (e: Error & { code?: number }) => e,
    );
    expect(err?.code).toBe(ClientIdentifierNotValid);
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b.port), '-V', 'mqttv311', '-i', 'y'.repeat(24), '-t', 'lim/x', '-m', 'x']);
    expect(pub.stderr).toMatch(/identifier rejected/i);
    expect(stats.clientIdTooLong - before).toBe(2);
    expect(logged(b, 'connection refused', { reason: 'client identifier too long' })).toHaveLength(2);
    // 23 bytes is fine.
    const ok = await connect(b.port, { clientId: 'z'.repeat(23) });
    await ok.endAsync();
  });
});

describe('deep topics within a raised limit', async () => {
  const b = await startBroker({ config: { mqtt: { maxTopicLevels: 65535 } } });

  it('5,000 levels: subscribed, published, retained and delivered without trouble', async () => {
    const n = nonce();
    const topic = [...Array.from({ length: 4_999 }, () => 'a'), n].join('/');
    const filter = [...Array.from({ length: 4_999 }, () => 'a'), '+'].join('/');
    const sub = await connect(b.port);
    await sub.subscribeAsync(filter, { qos: 1 });
    const pub = await connect(b.port);
    await pub.publishAsync(topic, 'deep', { qos: 1, retain: true });
    await until(() => sub.received.length === 1, 10_000);
    expect(sub.received[0]!.topic).toBe(topic);
    const late = await connect(b.port);
    await late.subscribeAsync(filter, { qos: 1 });
    await until(() => late.received.length === 1, 10_000);
    await Promise.all([sub.endAsync(), pub.endAsync(), late.endAsync()]);
  }, 60_000);
});
