/**
 * Admin API: queues. Browsing never changes a message (no delivery count, no redelivered flag, no
 * storage write: unlike RabbitMQ's get-messages); purge takes ready messages only; one message can
 * be deleted; a DLQ is replayed to each message's origin queue (or a target) with one atomic
 * storage batch per message (the put into the target and the delete from the DLQ together); queues
 * are created, listed and deleted with 409s for non-empty, consumed and config-bound queues.
 */
import { describe, expect, it } from 'vitest';
import type { WriteOp } from '../../storage/store.js';
import { MemoryStore } from '../../storage/memory.js';
import { connect, until } from '../helpers/mqtt.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { startBroker } from '../helpers/broker.js';
import { TOKENS, TOKEN_CONFIG, apiClient, startApiBroker } from './api-helpers.js';

/** A memory store that keeps every batch written to it (to see what reached storage, and how). */
class RecordingStore extends MemoryStore {
  readonly batches: WriteOp[][] = [];
  override async write(ops: readonly WriteOp[]): Promise<void> {
    this.batches.push([...ops]);
    return super.write(ops);
  }
}

let n = 0;
const qname = (what: string): string => `${what}-${Date.now().toString(36)}-${n++}`;

describe('admin API: queues', async () => {
  const store = new RecordingStore();
  const { tb, api } = await startApiBroker({ store, config: { queues: { bindings: [{ queue: 'bound-q', filter: 'bound/#' }], maxDeliveries: 5 } } });
  const stomp = (headers: Record<string, string> = {}): Promise<StompWire> => StompWire.connect(tb.stompPort, headers);

  it('browse is non-destructive: delivery counts and redelivered flags stay, nothing is written, consumers later see them as before', async () => {
    const q = qname('browse');
    const p = await stomp();
    for (const body of ['m1', 'm2', 'm3']) await p.send(`/queue/${q}`, body, { persistent: 'true' });
    // m1 goes out once and comes back (consumer gone): deliveryCount 1, redelivered.
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'client-individual', { 'prefetch-count': '1' });
    await c.waitMessages(1);
    c.destroy();
    await c.closedPromise;
    await until(() => tb.broker.core.router.queues.queues.get(q)?.waiting === 3, 3000, 'm1 back in the queue');

    await tb.broker.core.persist.barrier();
    const before = store.batches.length;
    let first: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 3; i++) {
      const r = await api.get(`/api/v1/queues/${q}/messages`, TOKENS.viewer);
      expect(r.status).toBe(200);
      const data = r.body.data as Array<Record<string, unknown>>;
      expect(data.map((m) => [m['payload'], m['deliveryCount'], m['redelivered']])).toEqual([
        ['m1', 1, true],
        ['m2', 0, false],
        ['m3', 0, false],
      ]);
      if (i === 0) first = data;
      else expect(data).toEqual(first);
    }
    expect(first[1]).toMatchObject({ id: expect.any(Number), priority: 4, payloadEncoding: 'utf8', size: 2, truncated: false, death: null, expiresAt: null });
    // Nothing reached storage because of the browsing.
    await tb.broker.core.persist.barrier();
    expect(store.batches.slice(before).flat().filter((op) => op.kind === 'qentry.put' || op.kind === 'qentry.del')).toEqual([]);
    expect((await api.get(`/api/v1/queues/${q}`)).body).toMatchObject({ name: q, kind: 'normal', ready: 3, unacked: 0, consumers: 0, deadLetterTo: `DLQ.${q}` });

    const c2 = await stomp();
    await c2.subscribe(`/queue/${q}`, 's2', 'auto');
    const got = await c2.waitMessages(3);
    expect(got.map((m) => [m.body.toString(), m.headers['redelivered']])).toEqual([
      ['m1', 'true'],
      ['m2', undefined],
      ['m3', undefined],
    ]);
  });

  it('browse pages by queue order with cursors; payloads truncate and switch to base64 on request', async () => {
    const q = qname('pages');
    const p = await stomp();
    for (let i = 0; i < 5; i++) await p.send(`/queue/${q}`, `body-${i}-${'x'.repeat(100)}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await api.get(`/api/v1/queues/${q}/messages?limit=2&truncate=6${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const m of r.body.data as Array<{ payload: string; truncated: boolean }>) {
        expect(m.truncated).toBe(true);
        seen.push(m.payload);
      }
      cursor = r.body.meta.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(['body-0', 'body-1', 'body-2', 'body-3', 'body-4']);
    const b64 = await api.get(`/api/v1/queues/${q}/messages?limit=1&encoding=base64`);
    expect(Buffer.from(b64.body.data[0].payload, 'base64').toString()).toMatch(/^body-0-x+$/);
    expect(b64.body.data[0].payloadEncoding).toBe('base64');
  });

  it('purge removes ready messages only; the unacked one stays with its consumer', async () => {
    const q = qname('purge');
    const p = await stomp();
    for (const body of ['a', 'b', 'c']) await p.send(`/queue/${q}`, body);
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'client-individual', { 'prefetch-count': '1' });
    const [held] = await c.waitMessages(1);
    expect((await api.post(`/api/v1/queues/${q}/purge`, undefined, TOKENS.viewer)).status).toBe(403);
    const r = await api.post(`/api/v1/queues/${q}/purge`);
    expect(r.body).toEqual({ purged: 2 });
    expect((await api.get(`/api/v1/queues/${q}`)).body).toMatchObject({ ready: 0, unacked: 1, consumers: 1 });
    c.ack(held!);
    await until(() => tb.broker.core.router.queues.queues.get(q)?.unacked === 0, 3000, 'ack');
    expect((await api.get(`/api/v1/queues/${q}`)).body).toMatchObject({ ready: 0, unacked: 0 });
    expect((await api.post('/api/v1/queues/no-such-queue/purge')).status).toBe(404);
  });

  it('DELETE one message by id: 204, gone from the queue and from storage; 404 after', async () => {
    const q = qname('delone');
    const p = await stomp();
    for (const body of ['keep1', 'drop', 'keep2']) await p.send(`/queue/${q}`, body);
    const list = (await api.get(`/api/v1/queues/${q}/messages`)).body.data as Array<{ id: number; payload: string }>;
    const drop = list.find((m) => m.payload === 'drop')!;
    expect((await api.del(`/api/v1/queues/${q}/messages/${drop.id}`, TOKENS.viewer)).status).toBe(403);
    expect((await api.del(`/api/v1/queues/${q}/messages/${drop.id}`)).status).toBe(204);
    expect(((await api.get(`/api/v1/queues/${q}/messages`)).body.data as Array<{ payload: string }>).map((m) => m.payload)).toEqual(['keep1', 'keep2']);
    const state = await store.open();
    expect(state.queueEntries.filter((e) => e.queue === q).map((e) => e.entry.seq)).not.toContain(drop.id);
    const again = await api.del(`/api/v1/queues/${q}/messages/${drop.id}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('MESSAGE_NOT_FOUND');
  });

  it('DLQ: browse shows the death; replay moves each message to its origin queue, one atomic batch per message', async () => {
    const q = qname('orders');
    const p = await stomp();
    for (const body of ['d1', 'd2', 'd3', 'd4']) await p.send(`/queue/${q}`, body, { persistent: 'true' });
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'client-individual');
    const msgs = await c.waitMessages(4);
    for (const m of msgs) c.nack(m, { requeue: 'false' });
    await c.disconnect();
    await until(() => tb.broker.core.router.queues.queues.get(`DLQ.${q}`)?.waiting === 4, 3000, 'four dead letters');

    const dlqItem = (await api.get(`/api/v1/queues/DLQ.${q}`)).body;
    expect(dlqItem).toMatchObject({ kind: 'dlq', ready: 4, deadLetterTo: null });
    const dead = (await api.get(`/api/v1/queues/DLQ.${q}/messages`)).body.data as Array<Record<string, unknown>>;
    expect(dead.map((m) => m['payload'])).toEqual(['d1', 'd2', 'd3', 'd4']);
    expect(dead[0]!['death']).toEqual({ reason: 'rejected', fromQueue: q, count: 1, firstAt: expect.any(String) });
    expect(dead[0]!['headers']).toEqual({});

    // One by id, to its origin.
    await tb.broker.core.persist.barrier();
    const mark = store.batches.length;
    const one = await api.post(`/api/v1/queues/DLQ.${q}/replay`, { ids: [dead[1]!['id']] });
    expect(one.body).toEqual({ moved: 1, skipped: 0 });
    const batches = store.batches.slice(mark);
    const movedBatch = batches.find((b) => b.some((op) => op.kind === 'qentry.put' && op.queue === q));
    expect(movedBatch).toBeDefined();
    expect(movedBatch).toContainEqual({ kind: 'qentry.del', queue: `DLQ.${q}`, seq: dead[1]!['id'] });
    // Exactly once in storage: in the origin queue, not in the DLQ.
    const state = await store.open();
    const where = state.queueEntries.filter((e) => e.entry.messageId === dead[1]!['messageId']).map((e) => e.queue);
    expect(where).toEqual([q]);

    // One (limit) to a chosen target, then the rest to the origin.
    const target = qname('elsewhere');
    expect((await api.post(`/api/v1/queues/DLQ.${q}/replay`, { target, limit: 1 })).body).toEqual({ moved: 1, skipped: 0 });
    expect((await api.post(`/api/v1/queues/DLQ.${q}/replay`, {})).body).toEqual({ moved: 2, skipped: 0 });
    expect((await api.get(`/api/v1/queues/DLQ.${q}`)).body.ready).toBe(0);
    expect(((await api.get(`/api/v1/queues/${target}/messages`)).body.data as Array<{ payload: string }>).map((m) => m.payload)).toEqual(['d1']);
    const back = (await api.get(`/api/v1/queues/${q}/messages`)).body.data as Array<{ payload: string; deliveryCount: number; death: unknown }>;
    expect(back.map((m) => [m.payload, m.deliveryCount, m.death])).toEqual([
      ['d2', 0, null],
      ['d3', 0, null],
      ['d4', 0, null],
    ]);
    // A consumer of the origin gets them again.
    const again = await stomp();
    await again.subscribe(`/queue/${q}`, 's', 'auto');
    expect((await again.waitMessages(3)).map((m) => m.body.toString())).toEqual(['d2', 'd3', 'd4']);

    // Messages that are no dead letters have no origin: skipped.
    const plain = qname('plain');
    await p.send(`/queue/${plain}`, 'x');
    expect((await api.post(`/api/v1/queues/${plain}/replay`, {})).body).toEqual({ moved: 0, skipped: 1 });
    for (const bad of [{ target: 'a+b' }, { ids: 'x' }, { limit: 0 }, { what: 1 }]) expect((await api.post(`/api/v1/queues/${plain}/replay`, bad)).status, JSON.stringify(bad)).toBe(400);
  });

  it('PUT creates (201, then 204), GET lists, DELETE refuses non-empty with ifEmpty, consumed and config-bound queues (409)', async () => {
    const q = qname('made');
    expect((await api.put(`/api/v1/queues/${q}`, undefined, TOKENS.viewer)).status).toBe(403);
    const made = await api.put(`/api/v1/queues/${q}`);
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: q, kind: 'normal', durable: true, ready: 0, unacked: 0, delayed: 0, consumers: 0, deadLetterTo: `DLQ.${q}`, ttlMs: null, maxLength: null, maxPriority: 9 });
    expect((await api.put(`/api/v1/queues/${q}`)).status).toBe(204);
    expect((await api.put(`/api/v1/queues/${q}`, { ttlMs: 5 })).status).toBe(400);
    expect((await api.put(`/api/v1/queues/${encodeURIComponent('bad#name')}`)).status).toBe(400);
    const names = ((await api.get('/api/v1/queues?limit=1000')).body.data as Array<{ name: string }>).map((x) => x.name);
    expect(names).toContain(q);
    expect(names).toContain('bound-q');
    expect([...names].sort()).toEqual(names);

    const pub = await connect(tb.port);
    await pub.publishAsync(`$queue/${q}`, 'one', { qos: 1 });
    const full = await api.del(`/api/v1/queues/${q}?ifEmpty=true`);
    expect(full.status).toBe(409);
    expect(full.body.error.code).toBe('QUEUE_NOT_EMPTY');
    const consumer = await stomp();
    await consumer.subscribe(`/queue/${q}`, 's', 'client-individual');
    await consumer.waitMessages(1);
    const used = await api.del(`/api/v1/queues/${q}`);
    expect(used.status).toBe(409);
    expect(used.body.error.code).toBe('QUEUE_IN_USE');
    await consumer.disconnect();
    expect((await api.del('/api/v1/queues/bound-q')).body.error.code).toBe('QUEUE_BOUND');
    expect((await api.del(`/api/v1/queues/${q}`)).status).toBe(204);
    expect((await api.get(`/api/v1/queues/${q}`)).status).toBe(404);
    expect((await api.get(`/api/v1/queues/${q}/messages`)).body.error.code).toBe('QUEUE_NOT_FOUND');
    const state = await store.open();
    expect(state.queues.map((r) => r.name)).not.toContain(q);
  });

  it('what was replayed and deleted is what a restarted broker has', async () => {
    const q = qname('restart');
    const p = await stomp();
    for (const body of ['r1', 'r2']) await p.send(`/queue/${q}`, body, { persistent: 'true' });
    const c = await stomp();
    await c.subscribe(`/queue/${q}`, 's', 'client-individual');
    for (const m of await c.waitMessages(2)) c.nack(m, { requeue: 'false' });
    await c.disconnect();
    await until(() => tb.broker.core.router.queues.queues.get(`DLQ.${q}`)?.waiting === 2, 3000, 'dead letters');
    expect((await api.post(`/api/v1/queues/DLQ.${q}/replay`, { limit: 1 })).body).toEqual({ moved: 1, skipped: 0 });
    await tb.stop();
    const again = await startBroker({ store, config: { admin: { tokens: TOKEN_CONFIG } } });
    const api2 = apiClient(`http://127.0.0.1:${again.httpPort}`);
    expect(((await api2.get(`/api/v1/queues/${q}/messages`)).body.data as Array<{ payload: string }>).map((m) => m.payload)).toEqual(['r1']);
    expect(((await api2.get(`/api/v1/queues/DLQ.${q}/messages`)).body.data as Array<{ payload: string }>).map((m) => m.payload)).toEqual(['r2']);
  });
});
