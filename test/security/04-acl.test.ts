/**
 * ACL file (Mosquitto's acl_file format) on MQTT 3.1.1, MQTT 5 and STOMP: per-user rules, rules for
 * anonymous clients, `pattern` rules with %u and %c; denied PUBLISH per QoS and version (v5
 * PUBACK/PUBREC 0x87, otherwise dropped) and counted; denied SUBSCRIBE (0x87 in v5, 0x80 in 3.1.1,
 * 0x80 in both with auth.subscribeDeniedCode); a wildcard subscription never delivers a denied
 * topic, retained or not, shared or not; STOMP /topic/x is topic x and /queue/Q is $queue/Q; wills
 * and $delayed/ messages obey the publisher's write rules. No password file: usernames are taken
 * as given, so each case names the user it needs.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IPublishPacket } from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/disk.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { run } from '../helpers/run.js';
import { nonce, publishCode, subscribeCode } from './setup.js';

export const ACL = `
# Anonymous clients (rules before any user line).
topic read public/#

user alice
topic readwrite #
topic deny secret/#
topic deny vault

user bob
topic read sensors/#
topic write cmd/#
topic readwrite test/#
topic deny test/nosubscribe

# STOMP: /topic/chat/... is chat/..., /queue/jobs is $queue/jobs.
user carol
topic readwrite chat/#
topic deny chat/admin
topic readwrite $queue/jobs
topic write $queue/inbox

user admin
topic readwrite #

# Every client, anonymous ones included (%c); %u only for clients with a username.
pattern readwrite devices/%u/#
pattern readwrite clients/%c/#
`;

describe('ACL', async () => {
  const dir = tempDir('junction-acl-');
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, ACL);
  const b = await startBroker({ config: { auth: { aclFile } } });
  const strict = await startBroker({ config: { auth: { aclFile, subscribeDeniedCode: 0x80 } } });
  const stats = b.broker.core.stats;
  const as = (username: string, opts: Parameters<typeof connect>[1] = {}) => connect(b.port, { username, ...opts });
  const raw = async (username: string | undefined, version: 4 | 5, port = b.port): Promise<RawClient> => {
    const c = await RawClient.connect(port, version);
    const ack = await c.handshake({ clientId: `raw-${nonce()}`, ...(username !== undefined ? { username } : {}) });
    expect((version === 5 ? ack.reasonCode : ack.returnCode) ?? 0).toBe(0);
    return c;
  };
  /** An admin subscribed to `filter` (no retained messages), to see what gets through. */
  const watch = async (filter: string) => {
    const w = await as('admin');
    await w.subscribeAsync(filter, { qos: 2, rh: 2 });
    return w;
  };
  const topics = (c: { received: Array<{ topic: string }> }): string[] => c.received.map((m) => m.topic).sort();

  it('the start-up log counts the rules', () => {
    expect(b.logs.find((l) => l.msg === 'access control')?.fields).toMatchObject({ aclRules: 15, aclFile, allowAnonymous: true });
  });

  describe('denied PUBLISH', () => {
    it('MQTT 5: QoS 1 gets PUBACK 0x87, QoS 2 PUBREC 0x87 (its packet id free again), QoS 0 is dropped; none is delivered; counted', async () => {
      const w = await watch('sensors/#');
      const c = await raw('bob', 5);
      const dropped = stats.publishDropped;
      const denied = stats.aclDenied;
      c.send({ cmd: 'publish', topic: 'sensors/q0', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
      c.send({ cmd: 'publish', topic: 'sensors/q1', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false });
      const puback = await c.next('puback');
      expect(puback).toMatchObject({ messageId: 7, reasonCode: 0x87 });
      c.send({ cmd: 'publish', topic: 'sensors/q2', payload: Buffer.from('x'), qos: 2, messageId: 8, retain: false, dup: false });
      expect(await c.next('pubrec')).toMatchObject({ messageId: 8, reasonCode: 0x87 });
      // The refused QoS 2 flow is over: id 8 starts a new one at once, to a topic bob may write.
      c.send({ cmd: 'publish', topic: 'cmd/after', payload: Buffer.from('ok'), qos: 2, messageId: 8, retain: false, dup: false });
      expect((await c.next('pubrec')).reasonCode).toBe(0x10); // no matching subscribers: the watcher is on sensors/#
      c.send({ cmd: 'pubrel', messageId: 8 });
      await c.next('pubcomp');
      expect(stats.publishDropped - dropped).toBe(3);
      expect(stats.aclDenied - denied).toBe(3);
      await sleep(100);
      expect(w.received).toEqual([]);
      expect(c.closed).toBe(false);
      c.end();
    });

    it('MQTT 3.1.1: dropped at every QoS; QoS 1/2 still acknowledged so the client does not resend forever', async () => {
      const w = await watch('sensors/#');
      const c = await raw('bob', 4);
      c.send({ cmd: 'publish', topic: 'sensors/v4/q0', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
      c.send({ cmd: 'publish', topic: 'sensors/v4/q1', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false });
      await c.next('puback');
      c.send({ cmd: 'publish', topic: 'sensors/v4/q2', payload: Buffer.from('x'), qos: 2, messageId: 2, retain: false, dup: false });
      await c.next('pubrec');
      c.send({ cmd: 'pubrel', messageId: 2 });
      await c.next('pubcomp');
      c.send({ cmd: 'pingreq' });
      await c.next('pingresp');
      await sleep(100);
      expect(w.received).toEqual([]);
      c.end();
    });

    it('a denied retained PUBLISH does not replace the retained message', async () => {
      const topic = `sensors/retained/${nonce()}`;
      const admin = await as('admin');
      await admin.publishAsync(topic, 'original', { qos: 1, retain: true });
      const bob = await as('bob');
      expect(await publishCode(bob, topic, 'overwritten?', 1, true)).toBe(0x87);
      expect(await publishCode(bob, topic, '', 1, true)).toBe(0x87); // nor clear it
      const reader = await as('bob');
      await reader.subscribeAsync(topic, { qos: 1 });
      await until(() => reader.received.length === 1);
      expect(reader.received[0]!.payload.toString()).toBe('original');
    });

    it('an allowed PUBLISH goes through (bob may write cmd/#)', async () => {
      const w = await watch('cmd/#');
      const bob = await as('bob', { protocolVersion: 4 });
      await bob.publishAsync('cmd/go', 'go', { qos: 1 });
      await until(() => w.received.length === 1);
    });

    it('mosquitto_pub -V mqttv5 -q 1 to a denied topic reports "Not authorized"', async () => {
      const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b.port), '-V', 'mqttv5', '-u', 'bob', '-t', 'sensors/mosq', '-m', 'x', '-q', '1']);
      expect(r.stderr).toMatch(/Not authorized/);
    });
  });

  describe('denied SUBSCRIBE', () => {
    it('MQTT 5: 0x87 per refused filter, the others granted, in one SUBACK', async () => {
      const c = await raw('bob', 5);
      c.send({
        cmd: 'subscribe',
        messageId: 3,
        subscriptions: [
          { topic: 'sensors/+/temp', qos: 1 },
          { topic: 'cmd/x', qos: 1 }, // write only
          { topic: '#', qos: 0 }, // reaches far more than sensors/#
          { topic: 'test/nosubscribe', qos: 1 },
          { topic: 'test/other', qos: 2 },
        ],
      });
      expect((await c.next('suback')).granted).toEqual([1, 0x87, 0x87, 0x87, 2]);
      c.end();
    });

    it('MQTT 3.1.1: 0x80 for each refused filter', async () => {
      const c = await raw('bob', 4);
      c.send({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: 'cmd/#', qos: 1 }, { topic: 'sensors/#', qos: 1 }, { topic: 'test/nosubscribe', qos: 0 }] });
      expect((await c.next('suback')).granted).toEqual([0x80, 1, 0x80]);
      c.end();
    });

    it('auth.subscribeDeniedCode 0x80: MQTT 5 clients get 0x80 too (the interoperability suite\'s test/nosubscribe)', async () => {
      for (const version of [4, 5] as const) {
        const c = await raw('bob', version, strict.port);
        c.send({ cmd: 'subscribe', messageId: 5, subscriptions: [{ topic: 'test/nosubscribe', qos: 2 }, { topic: 'test/fine', qos: 2 }] });
        expect((await c.next('suback')).granted, `version ${version}`).toEqual([0x80, 2]);
        c.end();
      }
      const mqttjs = await connect(strict.port, { username: 'bob' });
      expect(await subscribeCode(mqttjs, 'test/nosubscribe')).toBe(0x80);
    });

    it('a refused subscription receives nothing', async () => {
      const bob = await as('bob');
      expect(await subscribeCode(bob, 'cmd/#')).toBe(0x87);
      const admin = await as('admin');
      await admin.publishAsync('cmd/secret-plan', 'x', { qos: 1 });
      await sleep(100);
      expect(bob.received).toEqual([]);
    });

    it('a filter wholly inside a deny rule is refused even under a wider grant', async () => {
      const alice = await as('alice');
      for (const f of ['secret/#', 'secret/a', 'secret/+/x', 'vault']) expect(await subscribeCode(alice, f), f).toBe(0x87);
      expect(await subscribeCode(alice, 'vault/inner')).toBe(1); // deny "vault" is that one topic
    });
  });

  describe('wildcard subscriptions never deliver a denied topic', () => {
    const published = ['secret/a', 'secret/b/c', 'vault', 'open/x', 'lobby', 'vault/inner'];

    it('"#", "+" and "+/+" with deny rules: only the readable topics arrive (3.1.1 and 5)', async () => {
      for (const protocolVersion of [4, 5] as const) {
        const alice = await as('alice', { protocolVersion });
        // Retained messages of the other cases would arrive too: take only what these publishes bring.
        alice.on('message', (_t, _p, packet) => packet.retain && alice.received.pop());
        for (const f of ['#', '+', '+/+']) expect(await subscribeCode(alice, f, 2)).toBe(2);
        const admin = await as('admin');
        for (const t of published) await admin.publishAsync(t, t, { qos: 1 });
        await admin.publishAsync('open/last', 'last', { qos: 1 });
        await until(() => alice.received.some((m) => m.topic === 'open/last'));
        await sleep(50);
        // "+" matches lobby and vault; "+/+" open/x, open/last, vault/inner, secret/a; "#" all: deny wins.
        expect(topics(alice).filter((t, i, all) => all.indexOf(t) === i)).toEqual(['lobby', 'open/last', 'open/x', 'vault/inner']);
        await alice.endAsync();
      }
    });

    it('a shared subscription "$share/g/#" skips the denied topics too', async () => {
      const alice = await as('alice');
      await alice.subscribeAsync(`$share/g-${nonce()}/#`, { qos: 1 });
      const admin = await as('admin');
      await admin.publishAsync('secret/shared', 'no', { qos: 1 });
      await admin.publishAsync('open/shared', 'yes', { qos: 1 });
      await until(() => alice.received.some((m) => m.topic === 'open/shared'));
      expect(topics(alice)).not.toContain('secret/shared');
    });

    it('mosquitto_sub -t "#" as alice never prints a denied topic', async () => {
      // On the broker that holds no retained messages of the other cases.
      const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(strict.port), '-u', 'alice', '-t', '#', '-v', '-W', '6', '-C', '2', '-q', '1']);
      await until(() => strict.broker.core.router.subscribersOf('mosq/check').length > 0, 5000, 'mosquitto_sub subscribed');
      const admin = await connect(strict.port, { username: 'admin' });
      await admin.publishAsync('secret/mosq', 'hidden', { qos: 1 });
      await admin.publishAsync('mosq/check', 'one', { qos: 1 });
      await admin.publishAsync('vault', 'hidden', { qos: 1 });
      await admin.publishAsync('mosq/check', 'two', { qos: 1 });
      const out = await sub;
      expect(out.stdout.trim().split('\n')).toEqual(['mosq/check one', 'mosq/check two']);
    });
  });

  describe('retained messages', () => {
    it('only those the subscriber may read are delivered, through any filter', async () => {
      const tag = nonce();
      const admin = await as('admin');
      for (const t of [`secret/${tag}`, `open/${tag}`, `sensors/${tag}`]) await admin.publishAsync(t, `retained ${t}`, { qos: 1, retain: true });
      for (const protocolVersion of [4, 5] as const) {
        const alice = await as('alice', { protocolVersion });
        await alice.subscribeAsync(['#', `+/${tag}`], { qos: 1 });
        const bob = await as('bob', { protocolVersion });
        await bob.subscribeAsync('sensors/#', { qos: 1 });
        await until(() => alice.received.filter((m) => m.topic.endsWith(tag)).length >= 4 && bob.received.some((m) => m.topic === `sensors/${tag}`));
        await sleep(100);
        const aliceTopics = alice.received.filter((m) => m.topic.endsWith(tag)).map((m) => m.topic);
        expect(aliceTopics.sort()).toEqual([`open/${tag}`, `open/${tag}`, `sensors/${tag}`, `sensors/${tag}`]);
        expect(alice.received.every((m) => (m.packet as IPublishPacket).retain)).toBe(true);
        expect(bob.received.map((m) => m.topic)).not.toContain(`secret/${tag}`);
      }
    });
  });

  describe('pattern rules and anonymous clients', () => {
    it('%u: each user has devices/<own name>/#, not another user\'s', async () => {
      const dave = await as('dave');
      expect(await subscribeCode(dave, 'devices/dave/#')).toBe(1);
      expect(await subscribeCode(dave, 'devices/erin/#')).toBe(0x87);
      expect(await publishCode(dave, 'devices/dave/state', 'mine', 1)).toBe(0);
      expect(await publishCode(dave, 'devices/erin/state', 'hers', 1)).toBe(0x87);
      await until(() => dave.received.length === 1);
    });

    it('%c: each client has clients/<own client id>/#, anonymous ones too', async () => {
      const anon = await connect(b.port, { clientId: 'cam-1' });
      expect(await subscribeCode(anon, 'clients/cam-1/#')).toBe(1);
      expect(await subscribeCode(anon, 'clients/cam-2/#')).toBe(0x87);
      expect(await publishCode(anon, 'clients/cam-1/frame', 'f', 1)).toBe(0);
      await until(() => anon.received.length === 1);
      expect(await publishCode(anon, 'clients/cam-2/frame', 'f', 1)).toBe(0x87);
    });

    it('a username or client id holding wildcards or "/" does not widen a pattern', async () => {
      const plus = await connect(b.port, { username: '+' });
      expect(await subscribeCode(plus, 'devices/+/#')).toBe(0x87);
      expect(await publishCode(plus, 'devices/someone/x', 'x', 1)).toBe(0x87);
      const hash = await connect(b.port, { clientId: '#' });
      expect(await subscribeCode(hash, 'clients/#')).toBe(0x87);
      const slash = await connect(b.port, { clientId: 'a/b' });
      expect(await publishCode(slash, 'clients/a/b/x', 'x', 1)).toBe(0x87);
    });

    it('anonymous clients get the rules before the first user line; users do not', async () => {
      const anon = await connect(b.port);
      expect(await subscribeCode(anon, 'public/#')).toBe(1);
      expect(await publishCode(anon, 'public/news', 'x', 1)).toBe(0x87); // read only
      expect(await subscribeCode(anon, 'open/#')).toBe(0x87);
      const bob = await as('bob');
      expect(await subscribeCode(bob, 'public/#')).toBe(0x87);
    });

    it('a user with no section of their own gets only the patterns', async () => {
      const frank = await as('frank');
      expect(await subscribeCode(frank, 'open/#')).toBe(0x87);
      expect(await publishCode(frank, 'open/x', 'x', 1)).toBe(0x87);
      expect(await subscribeCode(frank, 'devices/frank/#')).toBe(1);
    });
  });

  describe('STOMP', () => {
    const stomp = async (login: string): Promise<StompRaw> => {
      const c = await StompRaw.connect(b.stompPort);
      await c.handshake({ 'accept-version': '1.2', host: 'junction', login, passcode: 'any' });
      return c;
    };

    it('/topic/chat/x is topic chat/x: SEND and SUBSCRIBE allowed, chat/admin never delivered through /topic/chat/#', async () => {
      const carol = await stomp('carol');
      await carol.subscribe({ id: 's1', destination: '/topic/chat/#' });
      const admin = await as('admin');
      await admin.publishAsync('chat/admin', 'hidden', { qos: 1 });
      await admin.publishAsync('chat/room', 'hello', { qos: 1 });
      const [m] = await carol.messages(1);
      expect(hdr(m!, 'destination')).toBe('/topic/chat/room');
      const w = await watch('chat/#');
      await carol.publish({ destination: '/topic/chat/room' }, 'from stomp');
      await until(() => w.received.length === 1);
      expect(carol.frames.filter((f) => f.command === 'MESSAGE').map((f) => hdr(f, 'destination'))).not.toContain('/topic/chat/admin');
      carol.end();
    });

    it('SEND to a topic outside the rules: ERROR "not authorized", connection closed, nothing delivered', async () => {
      const w = await watch('other/#');
      const carol = await stomp('carol');
      carol.send('SEND', { destination: '/topic/other/x', receipt: 'r1' }, 'no');
      const err = await carol.expectError();
      expect(hdr(err, 'message')).toBe('not authorized');
      expect(err.body.toString()).toContain('/topic/other/x');
      await sleep(100);
      expect(w.received).toEqual([]);
    });

    it('SUBSCRIBE to a denied topic: ERROR', async () => {
      for (const destination of ['/topic/chat/admin', '/topic/other/#']) {
        const carol = await stomp('carol');
        carol.send('SUBSCRIBE', { id: 'x', destination, receipt: 'r' });
        expect(hdr(await carol.expectError(), 'message'), destination).toBe('not authorized');
      }
    });

    it('/queue/Q is $queue/Q: carol consumes jobs and may send to inbox, but not consume inbox or touch other queues', async () => {
      const carol = await stomp('carol');
      await carol.subscribe({ id: 'jobs', destination: '/queue/jobs' });
      await carol.publish({ destination: '/queue/jobs' }, 'job 1');
      const [job] = await carol.messages(1);
      expect(job!.body.toString()).toBe('job 1');
      await carol.publish({ destination: '/queue/inbox' }, 'write only');
      carol.send('SUBSCRIBE', { id: 'inbox', destination: '/queue/inbox', receipt: 'r' });
      expect(hdr(await carol.expectError(), 'message')).toBe('not authorized');
      const again = await stomp('carol');
      again.send('SEND', { destination: '/queue/other', receipt: 'r' }, 'x');
      expect(hdr(await again.expectError(), 'message')).toBe('not authorized');
    });

    it('the same rules hold for MQTT on $queue/...', async () => {
      const carol = await as('carol');
      expect(await subscribeCode(carol, '$queue/jobs')).toBe(1);
      expect(await subscribeCode(carol, '$queue/inbox')).toBe(0x87);
      expect(await subscribeCode(carol, '$queue/other')).toBe(0x87);
      // "#" does not reach $-topics [MQTT-4.7.2-1]: admin's readwrite # grants no queue.
      const admin = await as('admin');
      expect(await subscribeCode(admin, '$queue/jobs')).toBe(0x87);
    });

    it('retained messages to a STOMP subscriber are filtered the same way', async () => {
      const tag = nonce();
      const admin = await as('admin');
      await admin.publishAsync(`chat/admin`, 'retained secret', { qos: 1, retain: true });
      await admin.publishAsync(`chat/r-${tag}`, 'retained ok', { qos: 1, retain: true });
      const carol = await stomp('carol');
      await carol.subscribe({ id: 'r', destination: '/topic/chat/#' });
      await sleep(150);
      const got = carol.frames.filter((f) => f.command === 'MESSAGE').map((f) => hdr(f, 'destination'));
      expect(got).toContain(`/topic/chat/r-${tag}`);
      expect(got).not.toContain('/topic/chat/admin');
      await admin.publishAsync(`chat/admin`, '', { qos: 1, retain: true });
    });
  });

  describe('messages published on a client\'s behalf', () => {
    it('a will to a topic the client may not write is dropped when it would be published (as Mosquitto does)', async () => {
      const w = await watch('sensors/#');
      const wc = await watch('cmd/#');
      for (const [topic, watcher, expected] of [
        ['sensors/will', w, 0],
        ['cmd/will', wc, 1],
      ] as const) {
        const bob = await connect(b.port, { username: 'bob', will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false } });
        bob.stream.destroy(); // no DISCONNECT: the will is due
        if (expected === 1) await until(() => watcher.received.length === 1);
        else await sleep(200);
        expect(watcher.received.length, topic).toBe(expected);
      }
    });

    it('$delayed/<s>/<topic> is checked on <topic>: bob may delay to cmd/, not to sensors/', async () => {
      const w = await watch('#');
      const bob = await as('bob');
      expect(await publishCode(bob, '$delayed/1/sensors/later', 'no', 1)).toBe(0x87);
      expect(await publishCode(bob, '$delayed/1/cmd/later', 'yes', 1)).toBe(0);
      await until(() => w.received.length >= 1, 4000);
      await sleep(100);
      expect(topics(w)).toEqual(['cmd/later']);
    });
  });
});
