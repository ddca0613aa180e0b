/**
 * STOMP acknowledgement and transactions (STOMP 1.2 "SUBSCRIBE ack Header", "ACK", "NACK",
 * "BEGIN", "COMMIT", "ABORT"; design.md "Queues"): ack modes auto, client (cumulative) and
 * client-individual on /queue and /topic; ACK/NACK by `id` (1.2) and `message-id` (1.1, 1.0 ACK);
 * NACK requeues to another consumer with redelivered:true, or with `requeue:false` dead-letters to
 * DLQ.<q> naming origin and reason; prefetch-count; transactions applying SENDs and ACKs at COMMIT,
 * none of them on ABORT or disconnect; transaction errors.
 *
 * What a queue did is observed from outside: when a consumer goes away, exactly its unsettled
 * messages go to the next consumer, marked redelivered.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
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

/** The header a client of `version` names a MESSAGE with in ACK/NACK. */
function ackHeaders(m: StompFrame, version: Version): Record<string, string> {
  return version === '1.2' ? { id: hdr(m, 'ack')! } : { 'message-id': hdr(m, 'message-id')!, subscription: hdr(m, 'subscription')! };
}

async function ack(c: StompRaw, m: StompFrame, version: Version = '1.2', command = 'ACK', extra: Record<string, string> = {}): Promise<void> {
  const r = `${command}-${nonce()}`;
  c.send(command, { ...ackHeaders(m, version), ...extra, receipt: r });
  await c.receipt(r);
}

/** Sends `n` messages "<prefix>1".."<prefix>n" to `dest` (receipted). */
async function fill(port: number, dest: string, n: number, prefix = 'm', headers: Record<string, string> = {}): Promise<void> {
  const pub = await StompRaw.open(port);
  for (let i = 1; i <= n; i++) pub.send('SEND', { destination: dest, ...headers }, `${prefix}${i}`);
  await pub.sync();
  pub.end();
}

describe('STOMP ack modes and transactions', async () => {
  const b = await startBroker();
  const port = b.stompPort;

  describe('ack modes on /queue', () => {
    it('auto: a message is settled once sent; a later consumer gets nothing again', async () => {
      const q = `/queue/c04-auto-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a' });
      await fill(port, q, 3);
      expect(bodies(await a.messages(3))).toEqual(['m1', 'm2', 'm3']);
      // 1.2 auto: no ack header to answer.
      a.end();
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c' });
      await fill(port, q, 1, 'after');
      // The first message c sees is the new one: nothing of m1..m3 came back.
      expect(bodies(await c.messages(1))).toEqual(['after1']);
      expect(await c.sync()).toEqual([]);
    });

    it('auto: two consumers share the messages, each message to one of them', async () => {
      const q = `/queue/c04-auto2-${nonce()}`;
      const a = await StompRaw.open(port);
      const c = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a' });
      await c.subscribe({ destination: q, id: 'c' });
      await fill(port, q, 10);
      const got = [...(await a.sync()), ...(await c.sync())];
      expect(bodies(got).sort()).toEqual(['m1', 'm10', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    });

    for (const version of ['1.2', '1.1', '1.0'] as const) {
      it(`${version} client: ACK is cumulative; a consumer that dies gives back only what follows its ACK`, async () => {
        const q = `/queue/c04-client-${nonce()}`;
        const a = await StompRaw.open(port, version);
        await a.subscribe({ destination: q, id: 'a', ack: 'client' });
        await fill(port, q, 4);
        const ms = await a.messages(4);
        expect(bodies(ms)).toEqual(['m1', 'm2', 'm3', 'm4']);
        // ACK of m2 acknowledges m1 and m2 (STOMP 1.2 "SUBSCRIBE ack Header": client mode is cumulative).
        await ack(a, ms[1]!, version);
        const bb = await StompRaw.open(port);
        await bb.subscribe({ destination: q, id: 'b', ack: 'client-individual' });
        a.end();
        const back = await bb.messages(2);
        expect(bodies(back)).toEqual(['m3', 'm4']);
        for (const m of back) expect(hdr(m, 'redelivered')).toBe('true');
        expect(await bb.sync()).toEqual([]);
      });

      if (version !== '1.0') {
        it(`${version} client-individual: ACK settles that message only`, async () => {
          const q = `/queue/c04-indiv-${nonce()}`;
          const a = await StompRaw.open(port, version);
          await a.subscribe({ destination: q, id: 'a', ack: 'client-individual' });
          await fill(port, q, 4);
          const ms = await a.messages(4);
          await ack(a, ms[1]!, version);
          await ack(a, ms[3]!, version);
          const bb = await StompRaw.open(port);
          await bb.subscribe({ destination: q, id: 'b', ack: 'client-individual' });
          a.end();
          const back = await bb.messages(2);
          expect(bodies(back)).toEqual(['m1', 'm3']);
          for (const m of back) expect(hdr(m, 'redelivered')).toBe('true');
          expect(await bb.sync()).toEqual([]);
        });
      }
    }

    it('acknowledged messages are gone: a consumer that acked everything and left leaves nothing behind', async () => {
      const q = `/queue/c04-done-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual' });
      await fill(port, q, 3);
      for (const m of await a.messages(3)) await ack(a, m);
      a.send('DISCONNECT', { receipt: 'bye' });
      await a.receipt('bye');
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c' });
      expect(await c.sync()).toEqual([]);
    });

    it('ACK of a message already acknowledged is harmless (receipt, no error)', async () => {
      const q = `/queue/c04-twice-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client' });
      await fill(port, q, 2);
      const [m1, m2] = await a.messages(2);
      await ack(a, m2!);
      await ack(a, m1!);
      await ack(a, m2!);
      expect(await a.sync()).toEqual([]);
    });

    it('ACK with an id the broker never gave out -> ERROR', async () => {
      const a = await StompRaw.open(port);
      a.send('ACK', { id: 'no-such-id', receipt: 'bad-ack' });
      const f = await a.expectError();
      expect(hdr(f, 'receipt-id')).toBe('bad-ack');
    });
  });

  describe('ack modes on /topic', () => {
    it('1.2 client-individual and client: each MESSAGE has an ack header of its own; ACK and NACK are answered', async () => {
      const dest = `/topic/c04/t/${nonce()}`;
      const ci = await StompRaw.open(port);
      await ci.subscribe({ destination: dest, id: 'i', ack: 'client-individual' });
      const cc = await StompRaw.open(port);
      await cc.subscribe({ destination: dest, id: 'c', ack: 'client' });
      const pub = await StompRaw.open(port);
      for (let i = 1; i <= 3; i++) await pub.publish({ destination: dest, persistent: 'true' }, `p${i}`);
      for (const c of [ci, cc]) {
        const ms = await c.messages(3);
        expect(bodies(ms)).toEqual(['p1', 'p2', 'p3']);
        expect(new Set(ms.map((m) => hdr(m, 'ack'))).size).toBe(3);
        expect(new Set(ms.map((m) => hdr(m, 'message-id'))).size).toBe(3);
        await ack(c, ms[0]!, '1.2', 'NACK');
        await ack(c, ms[2]!);
        await ack(c, ms[1]!);
        // A topic has no queue to give a NACKed message back to: nothing comes again.
        expect(await c.sync()).toEqual([]);
      }
    });

    it('stompit and @stomp/stompjs ack on /topic', async () => {
      const dest = `/topic/c04/clients/${nonce()}`;
      const it2 = await stompitConnect(port);
      const js = await stompjsConnect(port);
      const s1 = await stompitSubscribe(it2, { destination: dest, ack: 'client-individual' });
      const s2 = await stompjsSubscribe(js, dest, { ack: 'client' });
      await stompitSend(it2, { destination: dest, persistent: 'true' }, 'ack me');
      await until(() => s1.messages.length === 1);
      await stompjsSync(js);
      expect(s2.messages).toHaveLength(1);
      await new Promise<void>((resolve, reject) => it2.ack(s1.messages[0]!.frame, {}, { onReceipt: resolve, onError: reject }));
      await stompjsReceipt(js, (receipt) => s2.messages[0]!.ack({ receipt }));
      await stompitSync(it2);
      expect(js.errors).toEqual([]);
    });
  });

  describe('ACK and NACK headers by version', () => {
    it('1.2: ACK with the id from the MESSAGE ack header settles it', async () => {
      const q = `/queue/c04-v12-${nonce()}`;
      const a = await StompRaw.open(port, '1.2');
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual' });
      await fill(port, q, 1);
      const [m] = await a.messages(1);
      expect(hdr(m!, 'ack')).toMatch(/\S/);
      await ack(a, m!, '1.2');
      a.end();
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c' });
      expect(await c.sync()).toEqual([]);
    });

    it('1.1: NACK by message-id and subscription requeues', async () => {
      const q = `/queue/c04-v11-${nonce()}`;
      const a = await StompRaw.open(port, '1.1');
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual', 'prefetch-count': '1' });
      await fill(port, q, 1);
      const [m] = await a.messages(1);
      expect(hdr(m!, 'ack')).toBeUndefined();
      const c = await StompRaw.open(port, '1.1');
      await c.subscribe({ destination: q, id: 'c', ack: 'client-individual', 'prefetch-count': '1' });
      await ack(a, m!, '1.1', 'NACK');
      const [again] = await c.messages(1);
      expect(again!.body.toString()).toBe('m1');
      expect(hdr(again!, 'redelivered')).toBe('true');
    });

    it('1.0: ACK by message-id works; NACK is not a 1.0 frame -> ERROR', async () => {
      const q = `/queue/c04-v10-${nonce()}`;
      const a = await StompRaw.open(port, '1.0');
      await a.subscribe({ destination: q, ack: 'client' });
      await fill(port, q, 2);
      const [m1, m2] = await a.messages(2);
      a.send('ACK', { 'message-id': hdr(m1!, 'message-id')!, receipt: 'a1' });
      await a.receipt('a1');
      a.send('NACK', { 'message-id': hdr(m2!, 'message-id')!, receipt: 'n1' });
      const f = await a.expectError();
      expect(hdr(f, 'message')).toMatch(/NACK/);
      expect(hdr(f, 'receipt-id')).toBe('n1');
      // m1 was acknowledged; m2 goes back when the connection ends.
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c' });
      const rest = await c.sync();
      expect(bodies(rest)).toEqual(['m2']);
    });
  });

  describe('NACK', () => {
    it('requeues the message to another consumer, with redelivered:true', async () => {
      const q = `/queue/c04-nack-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual', 'prefetch-count': '1' });
      await fill(port, q, 1);
      const [m] = await a.messages(1);
      expect(hdr(m!, 'redelivered')).toBeUndefined();
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c', ack: 'client-individual', 'prefetch-count': '1' });
      await ack(a, m!, '1.2', 'NACK');
      const [again] = await c.messages(1);
      expect(again!.body.toString()).toBe('m1');
      expect(hdr(again!, 'redelivered')).toBe('true');
      expect(await a.sync()).toEqual([]);
    });

    it('a NACKed message keeps its place: it comes back before the messages behind it', async () => {
      const q = `/queue/c04-order-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual', 'prefetch-count': '1' });
      await fill(port, q, 3);
      const [m1] = await a.messages(1);
      await ack(a, m1!, '1.2', 'NACK');
      const [again] = await a.messages(1);
      expect(again!.body.toString()).toBe('m1');
      expect(hdr(again!, 'redelivered')).toBe('true');
    });

    it('requeue:false dead-letters to DLQ.<q> with x-first-death-queue and x-first-death-reason', async () => {
      const name = `c04-dlq-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: `/queue/${name}`, id: 'a', ack: 'client-individual' });
      const dlq = await StompRaw.open(port);
      await dlq.subscribe({ destination: `/queue/DLQ.${name}`, id: 'd', ack: 'client-individual' });
      await fill(port, `/queue/${name}`, 2, 'm', { 'content-type': 'text/plain', 'x-order': '42' });
      const [m1, m2] = await a.messages(2);
      await ack(a, m1!, '1.2', 'NACK', { requeue: 'false' });
      const [dead] = await dlq.messages(1);
      expect(dead!.body.toString()).toBe('m1');
      expect(hdr(dead!, 'destination')).toBe(`/queue/DLQ.${name}`);
      expect(hdr(dead!, 'x-first-death-queue')).toBe(name);
      expect(hdr(dead!, 'x-first-death-reason')).toBe('rejected');
      // The message itself is unchanged.
      expect(hdr(dead!, 'content-type')).toBe('text/plain');
      expect(hdr(dead!, 'x-order')).toBe('42');
      // Gone from the queue: the other message is all a new consumer gets after `a` leaves.
      await ack(a, m2!, '1.2', 'NACK');
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: `/queue/${name}`, id: 'c' });
      a.end();
      expect(bodies(await c.messages(1))).toEqual(['m2']);
      expect(await c.sync()).toEqual([]);
      expect(await dlq.sync()).toEqual([]);
    });

    it('@stomp/stompjs nack with requeue:false', async () => {
      const name = `c04-jsdlq-${nonce()}`;
      const js = await stompjsConnect(port);
      const s = await stompjsSubscribe(js, `/queue/${name}`, { ack: 'client-individual' });
      const dlq = await StompRaw.open(port);
      await dlq.subscribe({ destination: `/queue/DLQ.${name}`, id: 'd' });
      await fill(port, `/queue/${name}`, 1);
      await stompjsSync(js);
      expect(s.messages).toHaveLength(1);
      await stompjsReceipt(js, (receipt) => s.messages[0]!.nack({ requeue: 'false', receipt }));
      const [dead] = await dlq.messages(1);
      expect(dead!.body.toString()).toBe('m1');
      expect(hdr(dead!, 'x-first-death-reason')).toBe('rejected');
    });
  });

  describe('prefetch-count', () => {
    it('caps the unacknowledged messages of a queue subscription; each ACK lets one more through', async () => {
      const q = `/queue/c04-prefetch-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual', 'prefetch-count': '2' });
      await fill(port, q, 5);
      const first = await a.sync();
      expect(bodies(first)).toEqual(['m1', 'm2']);
      await ack(a, first[0]!);
      expect(bodies(await a.sync())).toEqual(['m3']);
      // A NACK frees a slot too; the requeued message is first in line again.
      await ack(a, first[1]!, '1.2', 'NACK');
      expect(bodies(await a.sync())).toEqual(['m2']);
    });

    it('the next consumer gets what the first cannot take', async () => {
      const q = `/queue/c04-prefetch2-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual', 'prefetch-count': '1' });
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c', ack: 'client', 'prefetch-count': '3' });
      await fill(port, q, 6);
      const ga = await a.sync();
      const gc = await c.sync();
      expect(ga).toHaveLength(1);
      expect(gc).toHaveLength(3);
      expect(bodies([...ga, ...gc]).sort()).toEqual(['m1', 'm2', 'm3', 'm4']);
      // A cumulative ACK of c's last message frees all three of its slots.
      await ack(c, gc[2]!);
      const more = await c.sync();
      expect(bodies(more).sort()).toEqual(['m5', 'm6']);
    });

    it('without prefetch-count, a client-mode queue subscription gets queues.prefetch (default 100) at a time', async () => {
      const q = `/queue/c04-default-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual' });
      await fill(port, q, 103);
      const got = await a.sync();
      expect(got).toHaveLength(100);
      await ack(a, got[0]!);
      expect(await a.sync()).toHaveLength(1);
    });

    it('an auto subscription is not held back by prefetch', async () => {
      const q = `/queue/c04-autopf-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', 'prefetch-count': '1' });
      await fill(port, q, 5);
      expect(bodies(await a.messages(5))).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    });

    it('an invalid prefetch-count -> ERROR', async () => {
      const a = await StompRaw.open(port);
      a.send('SUBSCRIBE', { destination: '/queue/c04-bad', id: 'a', ack: 'client', 'prefetch-count': 'lots', receipt: 'pf' });
      const f = await a.expectError();
      expect(hdr(f, 'message')).toMatch(/prefetch/);
      expect(hdr(f, 'receipt-id')).toBe('pf');
    });
  });

  describe('transactions', () => {
    it('SENDs in a transaction reach nobody before COMMIT, then all at once; a SEND in it is receipted at once', async () => {
      const t = `/topic/c04/tx/${nonce()}`;
      const q = `/queue/c04-tx-${nonce()}`;
      const ts = await StompRaw.open(port);
      await ts.subscribe({ destination: t, id: 't' });
      const qs = await StompRaw.open(port);
      await qs.subscribe({ destination: q, id: 'q' });
      const p = await StompRaw.open(port);
      p.send('BEGIN', { transaction: 'tx1' });
      p.send('SEND', { destination: t, transaction: 'tx1' }, 'to topic');
      p.send('SEND', { destination: q, transaction: 'tx1', persistent: 'true' }, 'to queue');
      p.send('SEND', { destination: t, transaction: 'tx1', receipt: 'in-tx' }, 'to topic 2');
      await p.receipt('in-tx');
      expect(await ts.sync()).toEqual([]);
      expect(await qs.sync()).toEqual([]);
      p.send('COMMIT', { transaction: 'tx1', receipt: 'commit' });
      await p.receipt('commit');
      expect(bodies(await ts.messages(2))).toEqual(['to topic', 'to topic 2']);
      expect(bodies(await qs.messages(1))).toEqual(['to queue']);
    });

    it('ABORT discards the SENDs', async () => {
      const t = `/topic/c04/abort/${nonce()}`;
      const s = await StompRaw.open(port);
      await s.subscribe({ destination: t, id: 't' });
      const p = await StompRaw.open(port);
      p.send('BEGIN', { transaction: 'a' });
      p.send('SEND', { destination: t, transaction: 'a' }, 'never');
      p.send('ABORT', { transaction: 'a', receipt: 'abort' });
      await p.receipt('abort');
      await p.publish({ destination: t }, 'outside');
      expect(bodies(await s.sync())).toEqual(['outside']);
    });

    it('the transaction id is free again after COMMIT or ABORT', async () => {
      const p = await StompRaw.open(port);
      for (const end of ['COMMIT', 'ABORT', 'COMMIT']) {
        p.send('BEGIN', { transaction: 'same' });
        p.send(end, { transaction: 'same', receipt: end });
        await p.receipt(end);
      }
      expect(await p.sync()).toEqual([]);
    });

    it('ACKs in a transaction take effect at COMMIT; an ABORTed ACK leaves the message unacknowledged', async () => {
      const q = `/queue/c04-txack-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual' });
      await fill(port, q, 2);
      const [m1, m2] = await a.messages(2);
      a.send('BEGIN', { transaction: 'k' });
      await ack(a, m1!, '1.2', 'ACK', { transaction: 'k' });
      a.send('COMMIT', { transaction: 'k' });
      a.send('BEGIN', { transaction: 'x' });
      await ack(a, m2!, '1.2', 'ACK', { transaction: 'x' });
      a.send('ABORT', { transaction: 'x', receipt: 'ab' });
      await a.receipt('ab');
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c' });
      a.end();
      // m1's ACK was committed; m2's was aborted, so m2 goes to the next consumer.
      expect(bodies(await c.messages(1))).toEqual(['m2']);
      expect(await c.sync()).toEqual([]);
    });

    it('a NACK in a transaction waits for COMMIT too', async () => {
      const name = `c04-txnack-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: `/queue/${name}`, id: 'a', ack: 'client-individual' });
      const dlq = await StompRaw.open(port);
      await dlq.subscribe({ destination: `/queue/DLQ.${name}`, id: 'd' });
      await fill(port, `/queue/${name}`, 1);
      const [m] = await a.messages(1);
      a.send('BEGIN', { transaction: 'n' });
      await ack(a, m!, '1.2', 'NACK', { transaction: 'n', requeue: 'false' });
      expect(await dlq.sync()).toEqual([]);
      a.send('COMMIT', { transaction: 'n', receipt: 'c' });
      await a.receipt('c');
      expect(bodies(await dlq.messages(1))).toEqual(['m1']);
    });

    it('DISCONNECT discards an open transaction', async () => {
      const t = `/topic/c04/txdisc/${nonce()}`;
      const s = await StompRaw.open(port);
      await s.subscribe({ destination: t, id: 't' });
      const p = await StompRaw.open(port);
      p.send('BEGIN', { transaction: 'open' });
      p.send('SEND', { destination: t, transaction: 'open' }, 'never');
      p.send('DISCONNECT', { receipt: 'bye' });
      await p.receipt('bye');
      await p.waitClosed();
      expect(await s.sync()).toEqual([]);
    });

    it('a connection that drops discards its open transaction: an ACK in it never happened', async () => {
      const q = `/queue/c04-txdrop-${nonce()}`;
      const a = await StompRaw.open(port);
      await a.subscribe({ destination: q, id: 'a', ack: 'client-individual' });
      await fill(port, q, 1);
      const [m] = await a.messages(1);
      a.send('BEGIN', { transaction: 'open' });
      await ack(a, m!, '1.2', 'ACK', { transaction: 'open' });
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: q, id: 'c' });
      a.end();
      const [again] = await c.messages(1);
      expect(again!.body.toString()).toBe('m1');
      expect(hdr(again!, 'redelivered')).toBe('true');
    });

    it('stompit: begin, send, commit', async () => {
      const t = `/topic/c04/stompit-tx/${nonce()}`;
      const client = await stompitConnect(port);
      const { messages } = await stompitSubscribe(client, { destination: t });
      const tx = client.begin();
      tx.send({ destination: t }).end('in tx');
      await stompitSync(client);
      expect(messages).toEqual([]);
      await new Promise<void>((resolve, reject) => tx.commit({ onReceipt: resolve, onError: reject }));
      await until(() => messages.length === 1);
      expect(messages[0]!.body.toString()).toBe('in tx');
    });

    it('@stomp/stompjs: begin, publish, abort and commit', async () => {
      const t = `/topic/c04/stompjs-tx/${nonce()}`;
      const js = await stompjsConnect(port);
      const s = await stompjsSubscribe(js, t);
      const aborted = js.client.begin();
      js.client.publish({ destination: t, body: 'aborted', headers: { transaction: aborted.id } });
      aborted.abort();
      const tx = js.client.begin();
      js.client.publish({ destination: t, body: 'committed', headers: { transaction: tx.id } });
      await stompjsSync(js);
      expect(s.messages).toEqual([]);
      tx.commit();
      await stompjsSync(js);
      expect(s.messages.map((m) => m.body)).toEqual(['committed']);
      expect(js.errors).toEqual([]);
    });

    const errors: Array<[string, Array<[string, Record<string, string>]>]> = [
      ['COMMIT of an unknown transaction', [['COMMIT', { transaction: 'nope' }]]],
      ['ABORT of an unknown transaction', [['ABORT', { transaction: 'nope' }]]],
      ['SEND in an unknown transaction', [['SEND', { destination: '/topic/c04/x', transaction: 'nope' }]]],
      ['ACK in an unknown transaction', [['ACK', { id: '1-1', transaction: 'nope' }]]],
      [
        'BEGIN of a transaction already open',
        [
          ['BEGIN', { transaction: 'dup' }],
          ['BEGIN', { transaction: 'dup' }],
        ],
      ],
      [
        'COMMIT of a transaction already committed',
        [
          ['BEGIN', { transaction: 'once' }],
          ['COMMIT', { transaction: 'once' }],
          ['COMMIT', { transaction: 'once' }],
        ],
      ],
    ];
    for (const [what, frames] of errors) {
      it(`${what} -> ERROR with receipt-id, then close`, async () => {
        const p = await StompRaw.open(port);
        frames.forEach(([cmd, h], i) => p.send(cmd, i === frames.length - 1 ? { ...h, receipt: 'tx-err' } : h));
        const f = await p.expectError();
        expect(hdr(f, 'message')).toMatch(/transaction/);
        expect(hdr(f, 'receipt-id')).toBe('tx-err');
        const ok = await StompRaw.open(port);
        await ok.sync();
        ok.end();
      });
    }
  });
});
