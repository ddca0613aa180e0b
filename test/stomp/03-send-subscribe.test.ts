/**
 * STOMP SEND, SUBSCRIBE, UNSUBSCRIBE, RECEIPT, DISCONNECT and MESSAGE (STOMP 1.2 "Client Frames",
 * "Server Frames", "Header receipt") with stompit, @stomp/stompjs and raw frames: the MESSAGE
 * headers, receipts in frame order for every frame that asks, DISCONNECT with a receipt, MQTT
 * wildcards in /topic subscriptions, the rabbitmq topic mapping, retained messages (design.md
 * "Crossing the boundary") and the destinations the broker refuses.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect } from '../helpers/mqtt.js';
import {
  StompRaw,
  hdr,
  nonce,
  stompitConnect,
  stompitSend,
  stompitSubscribe,
  stompitSync,
  stompjsConnect,
  stompjsReceipt,
  stompjsSubscribe,
  stompjsSync,
  until,
  type StompFrame,
  type Version,
} from '../helpers/stomp.js';

const bodies = (fs: readonly StompFrame[]): string[] => fs.map((f) => f.body.toString());

async function healthy(port: number): Promise<void> {
  const dest = `/topic/c03/healthy/${nonce()}`;
  const c = await StompRaw.open(port);
  await c.subscribe({ destination: dest, id: 'h' });
  await c.publish({ destination: dest }, 'ok');
  expect(bodies(await c.messages(1))).toEqual(['ok']);
  c.end();
}

describe('STOMP SEND and SUBSCRIBE', async () => {
  const b = await startBroker();
  const port = b.stompPort;

  describe('real clients', () => {
    it('stompit: SEND to /topic reaches a stompit subscriber with body, content-type and its own headers', async () => {
      const pub = await stompitConnect(port);
      const sub = await stompitConnect(port);
      const dest = `/topic/c03/stompit/${nonce()}`;
      const { messages } = await stompitSubscribe(sub, { destination: dest, id: 'sub-1', ack: 'auto' });
      await stompitSend(pub, { destination: dest, 'content-type': 'application/json', 'x-trace': 'abc' }, '{"n":1}');
      // A body with NUL bytes needs content-length (stompit does not add it): without, it would end at the first NUL.
      await stompitSend(pub, { destination: dest, 'content-length': 4 }, Buffer.from([0, 1, 2, 255]));
      await until(() => messages.length === 2);
      const [m1, m2] = messages;
      expect(m1!.body.toString()).toBe('{"n":1}');
      expect(m1!.headers['content-type']).toBe('application/json');
      expect(m1!.headers['x-trace']).toBe('abc');
      expect(m1!.headers['subscription']).toBe('sub-1');
      expect(m1!.headers['destination']).toBe(dest);
      expect(m2!.body).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(m2!.headers['content-type']).toBeUndefined();
    });

    it('@stomp/stompjs: text and binary bodies, custom headers, two subscribers', async () => {
      const pub = await stompjsConnect(port);
      const s1 = await stompjsConnect(port);
      const s2 = await stompjsConnect(port);
      const dest = `/topic/c03/stompjs/${nonce()}`;
      const a = await stompjsSubscribe(s1, dest);
      const c = await stompjsSubscribe(s2, dest, { id: 'mine' });
      await stompjsReceipt(pub, (receipt) => pub.client.publish({ destination: dest, body: 'text ✓', headers: { receipt, 'x-n': '1' } }));
      const bin = new Uint8Array([0, 10, 13, 0, 58, 92]);
      await stompjsReceipt(pub, (receipt) => pub.client.publish({ destination: dest, binaryBody: bin, headers: { receipt, 'content-type': 'application/octet-stream' } }));
      await stompjsSync(s1);
      await stompjsSync(s2);
      for (const got of [a.messages, c.messages]) {
        expect(got).toHaveLength(2);
        expect(got[0]!.body).toBe('text ✓');
        expect(got[0]!.headers['x-n']).toBe('1');
        expect([...got[1]!.binaryBody]).toEqual([...bin]);
        expect(got[1]!.headers['content-type']).toBe('application/octet-stream');
      }
      expect(c.messages[0]!.headers['subscription']).toBe('mine');
    });

    it('stompit and @stomp/stompjs talk to each other', async () => {
      const js = await stompjsConnect(port);
      const it2 = await stompitConnect(port);
      const dest = `/topic/c03/mixed/${nonce()}`;
      const jsSub = await stompjsSubscribe(js, dest);
      const itSub = await stompitSubscribe(it2, { destination: dest });
      await stompitSend(it2, { destination: dest }, 'from stompit');
      await stompjsReceipt(js, (receipt) => js.client.publish({ destination: dest, body: 'from stompjs', headers: { receipt } }));
      await stompjsSync(js);
      await stompitSync(it2);
      expect(jsSub.messages.map((m) => m.body)).toEqual(['from stompit', 'from stompjs']);
      expect(itSub.messages.map((m) => m.body.toString())).toEqual(['from stompit', 'from stompjs']);
    });
  });

  describe('MESSAGE headers [STOMP 1.2 "MESSAGE"]', () => {
    for (const version of ['1.0', '1.1', '1.2'] as const) {
      for (const ack of version === '1.0' ? (['auto', 'client'] as const) : (['auto', 'client', 'client-individual'] as const)) {
        it(`${version}, ack:${ack}: destination, message-id, subscription, content-length; ack header only in 1.2 client modes`, async () => {
          const dest = `/topic/c03/h/${nonce()}`;
          const sub = await StompRaw.open(port, version);
          await sub.subscribe({ destination: dest, id: 'sid', ack });
          const pub = await StompRaw.open(port);
          await pub.publish({ destination: dest, 'content-type': 'text/plain' }, 'one');
          await pub.publish({ destination: dest }, 'two');
          const [m1, m2] = await sub.messages(2);
          for (const m of [m1!, m2!]) {
            expect(hdr(m, 'destination')).toBe(dest);
            expect(hdr(m, 'subscription')).toBe('sid');
            expect(hdr(m, 'message-id')).toMatch(/\S/);
            expect(hdr(m, 'content-length')).toBe('3');
            if (version === '1.2' && ack !== 'auto') expect(hdr(m, 'ack')).toMatch(/\S/);
            else expect(hdr(m, 'ack')).toBeUndefined();
          }
          expect(hdr(m1!, 'message-id')).not.toBe(hdr(m2!, 'message-id'));
          expect(hdr(m1!, 'content-type')).toBe('text/plain');
          expect(hdr(m2!, 'content-type')).toBeUndefined();
          // Not a retained message, not a redelivery.
          expect(hdr(m1!, 'retain')).toBeUndefined();
          expect(hdr(m1!, 'redelivered')).toBeUndefined();
        });
      }
    }

    it('persistent:true travels as persistent:true; other SEND headers travel as they are', async () => {
      const dest = `/topic/c03/p/${nonce()}`;
      const sub = await StompRaw.open(port);
      await sub.subscribe({ destination: dest, id: 's', ack: 'client-individual' });
      const pub = await StompRaw.open(port);
      await pub.publish({ destination: dest, persistent: 'true', 'x-a': '1', 'correlation-id': 'c-9' }, 'p');
      const [m] = await sub.messages(1);
      expect(hdr(m!, 'persistent')).toBe('true');
      expect(hdr(m!, 'x-a')).toBe('1');
      expect(hdr(m!, 'correlation-id')).toBe('c-9');
      // The broker's own headers are not taken from the SEND.
      expect(m!.headers.filter(([k]) => k === 'destination')).toHaveLength(1);
    });

    it('a SEND cannot forge the headers the broker sets (message-id, subscription, ack, redelivered)', async () => {
      const dest = `/topic/c03/forge/${nonce()}`;
      const sub = await StompRaw.open(port);
      await sub.subscribe({ destination: dest, id: 'real', ack: 'client-individual' });
      const pub = await StompRaw.open(port);
      await pub.publish({ destination: dest, 'message-id': 'fake', subscription: 'fake', ack: 'fake', redelivered: 'true' }, 'f');
      const [m] = await sub.messages(1);
      for (const name of ['message-id', 'subscription', 'ack', 'redelivered']) {
        expect(m!.headers.filter(([k]) => k === name).map(([, v]) => v)).not.toContain('fake');
      }
      expect(hdr(m!, 'subscription')).toBe('real');
      expect(hdr(m!, 'redelivered')).toBeUndefined();
    });

    it('one MESSAGE per matching subscription of a connection, each naming its subscription', async () => {
      const base = `c03/overlap/${nonce()}`;
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: `/topic/${base}/+`, id: 'plus' });
      await c.subscribe({ destination: `/topic/${base}/#`, id: 'hash' });
      await c.publish({ destination: `/topic/${base}/x` }, 'o');
      const ms = await c.sync();
      expect(ms.map((m) => hdr(m, 'subscription')).sort()).toEqual(['hash', 'plus']);
      expect(bodies(ms)).toEqual(['o', 'o']);
    });
  });

  describe('RECEIPT [STOMP 1.2 "Header receipt"]', () => {
    it('every frame with a receipt gets its RECEIPT, in frame order, the DISCONNECT one last, then close', async () => {
      const q = `c03-rcpt-${nonce()}`;
      const c = await StompRaw.open(port);
      // A message for this connection to ACK, on a client-individual subscription of its own.
      const dest = `/topic/c03/rcpt/${nonce()}`;
      await c.subscribe({ destination: dest, id: 'acked', ack: 'client-individual' });
      await c.publish({ destination: dest }, 'to ack');
      const [m] = await c.messages(1);
      const frames: Array<[string, Record<string, string>]> = [
        // Persistent into a queue: a storage write before its receipt; later receipts must wait for it.
        ['SEND', { destination: `/queue/${q}`, persistent: 'true' }],
        ['SUBSCRIBE', { destination: `/topic/c03/rcpt2/${nonce()}`, id: 'x' }],
        ['ACK', { id: hdr(m!, 'ack')! }],
        ['UNSUBSCRIBE', { id: 'x' }],
        ['BEGIN', { transaction: 't1' }],
        ['SEND', { destination: dest, transaction: 't1' }],
        ['COMMIT', { transaction: 't1' }],
        ['BEGIN', { transaction: 't2' }],
        ['ABORT', { transaction: 't2' }],
        ['SEND', { destination: `/queue/${q}`, persistent: 'true' }],
        ['DISCONNECT', {}],
      ];
      c.write(Buffer.concat(frames.map(([cmd, h], i) => Buffer.from(`${cmd}\n${Object.entries({ ...h, receipt: `r${i}` }).map(([k, v]) => `${k}:${v}\n`).join('')}\n\0`))));
      await c.waitClosed();
      const receipts = c.frames.filter((f) => f.command === 'RECEIPT').map((f) => hdr(f, 'receipt-id'));
      expect(receipts).toEqual(frames.map((_, i) => `r${i}`));
      expect(c.frames.filter((f) => f.command === 'ERROR')).toEqual([]);
      // The last frame before the close is the DISCONNECT receipt.
      expect(hdr(c.frames.at(-1)!, 'receipt-id')).toBe(`r${frames.length - 1}`);
    });

    it('DISCONNECT: nothing after it is read; RECEIPT, then the broker closes', async () => {
      const dest = `/topic/c03/disc/${nonce()}`;
      const sub = await StompRaw.open(port);
      await sub.subscribe({ destination: dest, id: 's' });
      const c = await StompRaw.open(port);
      c.write(Buffer.from(`DISCONNECT\nreceipt:bye\n\n\0SEND\ndestination:${dest}\n\nafter\0`));
      await c.receipt('bye');
      await c.waitClosed();
      expect(c.frames).toEqual([]);
      expect(await sub.sync()).toEqual([]);
    });

    it('DISCONNECT without a receipt closes too', async () => {
      const c = await StompRaw.open(port);
      c.send('DISCONNECT');
      await c.waitClosed();
      expect(c.frames).toEqual([]);
    });

    it('@stomp/stompjs deactivate (DISCONNECT with receipt) ends cleanly', async () => {
      const c = await stompjsConnect(port);
      await c.client.deactivate();
      await until(() => c.closed);
      expect(c.errors).toEqual([]);
    });
  });

  describe('UNSUBSCRIBE', () => {
    it('stops delivery on that subscription only (by id)', async () => {
      const dest = `/topic/c03/unsub/${nonce()}`;
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: dest, id: 'a' });
      await c.subscribe({ destination: dest, id: 'b' });
      c.send('UNSUBSCRIBE', { id: 'a', receipt: 'u' });
      await c.receipt('u');
      await c.publish({ destination: dest }, 'after');
      const ms = await c.sync();
      expect(ms.map((m) => hdr(m, 'subscription'))).toEqual(['b']);
    });

    it('1.0: UNSUBSCRIBE by destination', async () => {
      const dest = `/topic/c03/unsub10/${nonce()}`;
      const c = await StompRaw.open(port, '1.0');
      await c.subscribe({ destination: dest });
      c.send('UNSUBSCRIBE', { destination: dest, receipt: 'u' });
      await c.receipt('u');
      await c.publish({ destination: dest }, 'after');
      expect(await c.sync()).toEqual([]);
    });

    it('stompit and @stomp/stompjs unsubscribe', async () => {
      const dest = `/topic/c03/unsub-clients/${nonce()}`;
      const it2 = await stompitConnect(port);
      const js = await stompjsConnect(port);
      const a = await stompitSubscribe(it2, { destination: dest });
      const j = await stompjsSubscribe(js, dest);
      await stompitSend(it2, { destination: dest }, 'one');
      // stompjs drops messages for a subscription as soon as unsubscribe() is called: take 'one' first.
      await stompjsSync(js);
      a.sub.unsubscribe();
      j.unsubscribe();
      await stompitSync(it2);
      await stompjsSync(js);
      await stompitSend(it2, { destination: dest }, 'two');
      await stompitSync(it2);
      await stompjsSync(js);
      expect(a.messages.map((m) => m.body.toString())).toEqual(['one']);
      expect(j.messages.map((m) => m.body)).toEqual(['one']);
    });

    it('the id is free again after UNSUBSCRIBE; a duplicate id while subscribed -> ERROR', async () => {
      const dest = `/topic/c03/dup/${nonce()}`;
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: dest, id: 'same' });
      c.send('UNSUBSCRIBE', { id: 'same' });
      await c.subscribe({ destination: dest, id: 'same' });
      c.send('SUBSCRIBE', { destination: dest, id: 'same', receipt: 'dup' });
      const f = await c.expectError();
      expect(hdr(f, 'message')).toMatch(/subscription/);
      expect(hdr(f, 'receipt-id')).toBe('dup');
    });
  });

  describe('wildcards in /topic subscriptions (MQTT filters)', () => {
    it('/topic/a/+ matches one level, /topic/a/# the parent and every level below', async () => {
      const a = `c03/w/${nonce()}`;
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: `/topic/${a}/+`, id: 'plus' });
      await c.subscribe({ destination: `/topic/${a}/#`, id: 'hash' });
      await c.subscribe({ destination: `/topic/${a}/+/c`, id: 'mid' });
      const pub = await StompRaw.open(port);
      for (const t of [a, `${a}/b`, `${a}/b/c`, `${a}/b/d`, `${a}x/b`, `other/${a}/b`]) await pub.publish({ destination: `/topic/${t}` }, t);
      const ms = await c.sync();
      const by = (id: string): string[] => ms.filter((m) => hdr(m, 'subscription') === id).map((m) => m.body.toString());
      expect(by('plus')).toEqual([`${a}/b`]);
      expect(by('hash')).toEqual([a, `${a}/b`, `${a}/b/c`, `${a}/b/d`]);
      expect(by('mid')).toEqual([`${a}/b/c`]);
      // The MESSAGE names the topic it was sent to, not the filter.
      for (const m of ms) expect(hdr(m, 'destination')).toBe(`/topic/${m.body.toString()}`);
    });

    it('a STOMP SEND reaches an MQTT wildcard subscriber and an MQTT publish a STOMP one', async () => {
      const a = `c03/x/${nonce()}`;
      const mq = await connect(b.port);
      await mq.subscribeAsync(`${a}/+`, { qos: 1 });
      const st = await StompRaw.open(port);
      await st.subscribe({ destination: `/topic/${a}/#`, id: 's' });
      await st.publish({ destination: `/topic/${a}/from-stomp` }, 'S');
      await mq.publishAsync(`${a}/from-mqtt`, 'M', { qos: 1 });
      await until(() => mq.received.length === 2);
      expect(mq.received.map((r) => [r.topic, r.payload.toString()]).sort()).toEqual([
        [`${a}/from-mqtt`, 'M'],
        [`${a}/from-stomp`, 'S'],
      ]);
      const ms = await st.messages(2);
      expect(ms.map((m) => [hdr(m, 'destination'), m.body.toString()])).toEqual([
        [`/topic/${a}/from-stomp`, 'S'],
        [`/topic/${a}/from-mqtt`, 'M'],
      ]);
      await mq.endAsync();
    });
  });

  describe('retained messages (design.md: retain:true on SEND, delivered on SUBSCRIBE)', () => {
    it('a retained MQTT message is delivered on SUBSCRIBE with retain:true, after the RECEIPT', async () => {
      const t = `c03/ret/${nonce()}`;
      const mq = await connect(b.port);
      await mq.publishAsync(t, 'kept', { qos: 1, retain: true });
      const c = await StompRaw.open(port);
      c.send('SUBSCRIBE', { destination: `/topic/${t}`, id: 'r', receipt: 'sub' });
      await c.receipt('sub');
      const [m] = await c.messages(1);
      expect(m!.body.toString()).toBe('kept');
      expect(hdr(m!, 'retain')).toBe('true');
      expect(hdr(m!, 'destination')).toBe(`/topic/${t}`);
      await mq.endAsync();
    });

    it('a wildcard SUBSCRIBE gets every matching retained message', async () => {
      const t = `c03/retw/${nonce()}`;
      const pub = await StompRaw.open(port);
      await pub.publish({ destination: `/topic/${t}/a`, retain: 'true' }, 'A');
      await pub.publish({ destination: `/topic/${t}/b`, retain: 'true' }, 'B');
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: `/topic/${t}/+`, id: 'w' });
      expect(bodies(await c.messages(2)).sort()).toEqual(['A', 'B']);
    });

    it('SEND with retain:true is retained: a later subscriber gets it; live subscribers get it without retain', async () => {
      const t = `/topic/c03/rets/${nonce()}`;
      const live = await StompRaw.open(port);
      await live.subscribe({ destination: t, id: 'l' });
      const pub = await StompRaw.open(port);
      await pub.publish({ destination: t, retain: 'true' }, 'state-1');
      const [lm] = await live.messages(1);
      // [MQTT-3.3.1-9]'s rule for live deliveries: the retain flag is for messages sent because of a new subscription.
      expect(hdr(lm!, 'retain')).toBeUndefined();
      const later = await StompRaw.open(port);
      await later.subscribe({ destination: t, id: 'r' });
      const [m] = await later.messages(1);
      expect(m!.body.toString()).toBe('state-1');
      expect(hdr(m!, 'retain')).toBe('true');
      // MQTT sees it retained too.
      const mq = await connect(b.port);
      await mq.subscribeAsync(t.slice('/topic/'.length));
      await until(() => mq.received.length === 1);
      expect(mq.received[0]!.packet.retain).toBe(true);
      expect(mq.received[0]!.payload.toString()).toBe('state-1');
      await mq.endAsync();
    });

    it('retain-handling:2 on SUBSCRIBE: no retained messages', async () => {
      const t = `/topic/c03/ret2/${nonce()}`;
      const pub = await StompRaw.open(port);
      await pub.publish({ destination: t, retain: 'true' }, 'kept');
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: t, id: 'no', 'retain-handling': '2' });
      expect(await c.sync()).toEqual([]);
      // A second subscription of the same connection without it does get the message.
      await c.subscribe({ destination: t, id: 'yes' });
      const [m] = await c.messages(1);
      expect(hdr(m!, 'subscription')).toBe('yes');
    });

    it('an empty retained SEND clears the retained message', async () => {
      const t = `/topic/c03/retc/${nonce()}`;
      const pub = await StompRaw.open(port);
      await pub.publish({ destination: t, retain: 'true' }, 'old');
      await pub.publish({ destination: t, retain: 'true' }, '');
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: t, id: 's' });
      expect(await c.sync()).toEqual([]);
    });
  });

  describe('invalid destinations', () => {
    const bad: Array<[string, string, Record<string, string>]> = [
      ['SEND', 'RabbitMQ /exchange/', { destination: '/exchange/amq.topic/x' }],
      ['SEND', '/temp-queue/', { destination: '/temp-queue/x' }],
      ['SEND', '/amq/queue/', { destination: '/amq/queue/x' }],
      ['SEND', 'no prefix', { destination: 'plain' }],
      ['SEND', 'an empty topic', { destination: '/topic/' }],
      ['SEND', 'an empty queue', { destination: '/queue/' }],
      ['SEND', 'a wildcard topic', { destination: '/topic/a/+' }],
      ['SEND', 'a # topic', { destination: '/topic/a/#' }],
      ['SUBSCRIBE', 'RabbitMQ /exchange/', { destination: '/exchange/amq.topic/x', id: 's' }],
      ['SUBSCRIBE', '/temp-queue/', { destination: '/temp-queue/x', id: 's' }],
      ['SUBSCRIBE', 'an empty topic', { destination: '/topic/', id: 's' }],
      ['SUBSCRIBE', 'an empty destination', { destination: '', id: 's' }],
      ['SUBSCRIBE', '# not last', { destination: '/topic/a/#/b', id: 's' }],
      ['SUBSCRIBE', 'a partial-level wildcard', { destination: '/topic/a/b+', id: 's' }],
      ['SUBSCRIBE', 'an MQTT shared subscription', { destination: '/topic/$share/g/a', id: 's' }],
    ];
    for (const [command, what, headers] of bad) {
      it(`${command} to ${what} (${JSON.stringify(headers.destination)}) -> ERROR with receipt-id, then close`, async () => {
        const c = await StompRaw.open(port);
        c.send(command, { ...headers, receipt: 'bad-dest' });
        const f = await c.expectError();
        expect(hdr(f, 'message')).toMatch(/destination/);
        expect(hdr(f, 'receipt-id')).toBe('bad-dest');
        await healthy(port);
      });
    }

    it('an invalid ack mode -> ERROR; 1.0 has no client-individual', async () => {
      const cases: Array<[Version, string]> = [
        ['1.2', 'sometimes'],
        ['1.0', 'client-individual'],
      ];
      for (const [v, ack] of cases) {
        const c = await StompRaw.open(port, v);
        c.send('SUBSCRIBE', { destination: '/topic/c03/ack', id: 's', ack });
        expect(hdr(await c.expectError(), 'message')).toMatch(/ack/);
      }
    });
  });
});

describe('STOMP stomp.topicMapping: rabbitmq', async () => {
  const b = await startBroker({ config: { stomp: { topicMapping: 'rabbitmq' } } });
  const port = b.stompPort;

  it('/topic/a.b.c is MQTT topic a/b/c both ways, and MESSAGE destinations use dots', async () => {
    const n = nonce();
    const mq = await connect(b.port);
    await mq.subscribeAsync(`rmq/${n}/+/c`, { qos: 1 });
    const c = await StompRaw.open(port);
    await c.subscribe({ destination: `/topic/rmq.${n}.b.c`, id: 's' });
    await c.publish({ destination: `/topic/rmq.${n}.b.c` }, 'from stomp');
    await until(() => mq.received.length === 1);
    expect(mq.received[0]!.topic).toBe(`rmq/${n}/b/c`);
    await mq.publishAsync(`rmq/${n}/b/c`, 'from mqtt', { qos: 1 });
    const ms = await c.messages(2);
    expect(ms.map((m) => [hdr(m, 'destination'), m.body.toString()])).toEqual([
      [`/topic/rmq.${n}.b.c`, 'from stomp'],
      [`/topic/rmq.${n}.b.c`, 'from mqtt'],
    ]);
    await mq.endAsync();
  });

  it('* matches one word, # zero or more words', async () => {
    const n = nonce();
    const c = await StompRaw.open(port);
    await c.subscribe({ destination: `/topic/rmq.${n}.*`, id: 'star' });
    await c.subscribe({ destination: `/topic/rmq.${n}.#`, id: 'hash' });
    await c.subscribe({ destination: `/topic/rmq.${n}.*.c`, id: 'mid' });
    const pub = await StompRaw.open(port);
    for (const t of ['', '.b', '.b.c', '.x.y.z']) await pub.publish({ destination: `/topic/rmq.${n}${t}` }, t || '(root)');
    const ms = await c.sync();
    const by = (id: string): string[] => ms.filter((m) => hdr(m, 'subscription') === id).map((m) => m.body.toString());
    expect(by('star')).toEqual(['.b']);
    expect(by('hash')).toEqual(['(root)', '.b', '.b.c', '.x.y.z']);
    expect(by('mid')).toEqual(['.b.c']);
  });

  it('queues are unchanged: /queue/<name> keeps its dots', async () => {
    const q = `rmq.q.${nonce()}`;
    const c = await StompRaw.open(port);
    await c.subscribe({ destination: `/queue/${q}`, id: 'q' });
    await c.publish({ destination: `/queue/${q}` }, 'queued');
    const [m] = await c.messages(1);
    expect(hdr(m!, 'destination')).toBe(`/queue/${q}`);
  });
});
