/**
 * The conformance suite every Store implementation runs (aedes-persistence's abstract.js, STYLE.md
 * lesson 5). It knows only the Store interface of storage/store.ts: each engine's test file calls
 * `storeConformance(name, harness)` with a harness that makes an empty store and reopens one on
 * the same data (a MemoryStore reopens itself; a disk store opens a new instance on its directory).
 *
 * What it pins down: every WriteOp kind round-trips through open(); ops inside one write apply in
 * order; a later put replaces, a del removes only its row; pending rows come back in seq order per
 * session; a rejected write leaves no trace; write after close rejects with StoreClosedError.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import {
  StoreClosedError,
  type PendingRecord,
  type SessionRecord,
  type StoredState,
  type Store,
  type SubscriptionRecord,
  type WriteOp,
} from '../../storage/store.js';

export interface StoreHarness {
  /** A new, empty store, not yet opened. */
  create(): Promise<Store>;
  /** A store on the same data as `closed` (already closed by the suite), not yet opened. */
  reopen(closed: Store): Promise<Store>;
  /** Removes what create() made (directories...), after each test. */
  cleanup?(): Promise<void>;
}

let nextMessageId = 1;
/** A message with every optional field set, binary payload and correlation data included. */
export function fullMessage(overrides: Partial<Message> = {}): Message {
  return {
    id: nextMessageId++,
    topic: 'conformance/ü/😀',
    payload: Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    qos: 2,
    retain: true,
    createdAt: 1_700_000_000_123,
    expiresAt: 1_800_000_000_456,
    props: {
      payloadUtf8: true,
      contentType: 'application/octet-stream',
      responseTopic: 'reply/to',
      correlationData: Buffer.from([0, 1, 0xff]),
      user: [
        ['k', 'v1'],
        ['k', 'v2'],
        ['ä', ''],
      ],
    },
    origin: { clientId: 'publisher-1', protocol: 'mqtt' },
    ...overrides,
  };
}

/** A message with no optional field: they must not come back as present. */
export function bareMessage(overrides: Partial<Message> = {}): Message {
  return {
    id: nextMessageId++,
    topic: 'bare',
    payload: Buffer.alloc(0),
    qos: 0,
    retain: false,
    createdAt: 1,
    props: {},
    origin: { clientId: '', protocol: 'stomp' },
    ...overrides,
  };
}

const SESSION: SessionRecord = {
  clientId: 'client-ü',
  protocol: 'mqtt',
  expiryInterval: 0xffffffff,
  disconnectedAt: 1_700_000_000_000,
  will: {
    message: {
      topic: 'will/topic',
      payload: Buffer.from('gone'),
      qos: 1,
      retain: true,
      createdAt: 1_700_000_000_001,
      expiresAt: 1_700_000_100_000,
      props: { contentType: 'text/plain', user: [['why', 'crash']] },
      origin: { clientId: 'client-ü', protocol: 'mqtt' },
    },
    delayMs: 5000,
    dueAt: 1_700_000_005_000,
  },
};

const SUB: SubscriptionRecord = {
  key: '$share/g/a/+/#',
  filter: '$share/g/a/+/#',
  qos: 2,
  noLocal: true,
  retainAsPublished: true,
  retainHandling: 2,
  identifier: 268435455,
};

function pending(seq: number, messageId: number, over: Partial<PendingRecord> = {}): PendingRecord {
  return { seq, messageId, qos: 1, retain: false, subKeys: ['a/#', '$share/g/a/+/#'], packetId: 0, phase: 'queued', ...over };
}

/** A message with its payload as base64: deep equality on a large Buffer is slow in vitest. */
function flat(m: Message): unknown {
  return { ...m, payload: m.payload.toString('base64') };
}

/** StoredState with its lists sorted where the interface promises no order, for comparison. */
function normalized(state: StoredState): unknown {
  const by = (f: (x: never) => string) => (a: unknown, b: unknown) => (f(a as never) < f(b as never) ? -1 : f(a as never) > f(b as never) ? 1 : 0);
  return {
    messages: [...state.messages.entries()].sort((a, b) => a[0] - b[0]).map(([id, m]) => [id, flat(m)]),
    sessions: [...state.sessions].sort(by((s: SessionRecord) => s.clientId)),
    subscriptions: [...state.subscriptions].sort(by((s: { clientId: string; sub: SubscriptionRecord }) => `${s.clientId}\u0000${s.sub.key}`)),
    // Order across sessions is free; order inside one session is checked by its own test.
    pending: [...state.pending].sort(by((p: { clientId: string; entry: PendingRecord }) => `${p.clientId}\u0000${String(p.entry.seq).padStart(20, '0')}`)),
    incoming: [...state.incoming].sort(by((i: { clientId: string; packetId: number }) => `${i.clientId}\u0000${String(i.packetId).padStart(5, '0')}`)),
    retained: [...state.retained].sort(by((r: { topic: string }) => r.topic)),
  };
}

export function storeConformance(name: string, harness: StoreHarness): void {
  describe(`Store conformance: ${name}`, () => {
    const open: Store[] = [];

    afterEach(async () => {
      for (const s of open.splice(0)) await s.close().catch(() => undefined);
      await harness.cleanup?.();
    });

    async function fresh(): Promise<Store> {
      const store = await harness.create();
      open.push(store);
      await store.open();
      return store;
    }

    /** Closes `store`, opens it again on the same data and returns what open() loaded. */
    async function restart(store: Store): Promise<{ store: Store; state: StoredState }> {
      await store.close();
      const again = await harness.reopen(store);
      open.push(again);
      const state = await again.open();
      return { store: again, state };
    }

    it('opens empty', async () => {
      const store = await harness.create();
      open.push(store);
      const state = await store.open();
      expect(normalized(state)).toEqual({ messages: [], sessions: [], subscriptions: [], pending: [], incoming: [], retained: [] });
    });

    it('round-trips every put kind through close and open', async () => {
      const store = await fresh();
      const full = fullMessage();
      const bare = bareMessage();
      const big = bareMessage({ id: 2 ** 32 + 5, payload: Buffer.alloc(300_000, 0xab) });
      await store.write([
        { kind: 'message.put', message: full },
        { kind: 'message.put', message: bare },
        { kind: 'message.put', message: big },
        { kind: 'session.put', session: SESSION },
        { kind: 'session.put', session: { clientId: 'minimal', protocol: 'stomp', expiryInterval: 0 } },
        { kind: 'sub.put', clientId: SESSION.clientId, sub: SUB },
        { kind: 'sub.put', clientId: SESSION.clientId, sub: { key: 'x', filter: 'x', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 } },
        { kind: 'pending.put', clientId: SESSION.clientId, entry: pending(1, full.id) },
        { kind: 'pending.put', clientId: SESSION.clientId, entry: pending(2, full.id, { qos: 2, retain: true, packetId: 65535, phase: 'released', subKeys: [] }) },
        { kind: 'incoming.put', clientId: SESSION.clientId, packetId: 1 },
        { kind: 'incoming.put', clientId: SESSION.clientId, packetId: 65535 },
        { kind: 'retained.put', topic: full.topic, messageId: full.id },
        { kind: 'retained.put', topic: '$SYS/x', messageId: big.id },
      ]);
      const { state } = await restart(store);
      expect(normalized(state)).toEqual({
        messages: [
          [full.id, flat(full)],
          [bare.id, flat(bare)],
          [big.id, flat(big)],
        ].sort((a, b) => (a[0] as number) - (b[0] as number)),
        sessions: [SESSION, { clientId: 'minimal', protocol: 'stomp', expiryInterval: 0 }].sort((a, b) => (a.clientId < b.clientId ? -1 : 1)),
        subscriptions: [
          { clientId: SESSION.clientId, sub: SUB },
          { clientId: SESSION.clientId, sub: { key: 'x', filter: 'x', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 } },
        ],
        pending: [
          { clientId: SESSION.clientId, entry: pending(1, full.id) },
          { clientId: SESSION.clientId, entry: pending(2, full.id, { qos: 2, retain: true, packetId: 65535, phase: 'released', subKeys: [] }) },
        ],
        incoming: [
          { clientId: SESSION.clientId, packetId: 1 },
          { clientId: SESSION.clientId, packetId: 65535 },
        ],
        retained: [
          { topic: '$SYS/x', messageId: big.id },
          { topic: full.topic, messageId: full.id },
        ],
      });
      const back = state.messages.get(full.id)!;
      expect(Buffer.isBuffer(back.payload)).toBe(true);
      expect(Buffer.isBuffer(back.props.correlationData)).toBe(true);
      expect(back.props.user).toEqual(full.props.user); // order kept [MQTT-3.3.2-18]
      const bareBack = state.messages.get(bare.id)!;
      expect('expiresAt' in bareBack && bareBack.expiresAt !== undefined).toBe(false);
      expect(bareBack.payload.length).toBe(0);
    });

    it('returns what was written without a restart too', async () => {
      const store = await fresh();
      const m = fullMessage();
      await store.write([
        { kind: 'message.put', message: m },
        { kind: 'retained.put', topic: m.topic, messageId: m.id },
      ]);
      const { state } = await restart(store);
      expect(state.messages.get(m.id)).toEqual(m);
      expect(state.retained).toEqual([{ topic: m.topic, messageId: m.id }]);
    });

    it('each del removes exactly its row', async () => {
      const store = await fresh();
      const m1 = bareMessage();
      const m2 = bareMessage();
      const other = 'other-client';
      const puts: WriteOp[] = [];
      for (const c of [SESSION.clientId, other]) {
        puts.push(
          { kind: 'session.put', session: { ...SESSION, clientId: c } },
          { kind: 'sub.put', clientId: c, sub: SUB },
          { kind: 'sub.put', clientId: c, sub: { ...SUB, key: 'k2', filter: 'k2' } },
          { kind: 'pending.put', clientId: c, entry: pending(1, m1.id) },
          { kind: 'pending.put', clientId: c, entry: pending(2, m2.id) },
          { kind: 'incoming.put', clientId: c, packetId: 7 },
          { kind: 'incoming.put', clientId: c, packetId: 8 },
        );
      }
      await store.write([
        { kind: 'message.put', message: m1 },
        { kind: 'message.put', message: m2 },
        ...puts,
        { kind: 'retained.put', topic: 'r/1', messageId: m1.id },
        { kind: 'retained.put', topic: 'r/2', messageId: m2.id },
      ]);
      await store.write([
        { kind: 'message.del', id: m1.id },
        { kind: 'sub.del', clientId: SESSION.clientId, key: SUB.key },
        { kind: 'pending.del', clientId: SESSION.clientId, seq: 1 },
        { kind: 'incoming.del', clientId: SESSION.clientId, packetId: 7 },
        { kind: 'retained.del', topic: 'r/1' },
        // Deleting what is not there is not an error.
        { kind: 'message.del', id: 999_999 },
        { kind: 'sub.del', clientId: 'nobody', key: 'x' },
        { kind: 'pending.del', clientId: 'nobody', seq: 1 },
        { kind: 'incoming.del', clientId: 'nobody', packetId: 1 },
        { kind: 'retained.del', topic: 'never/set' },
        { kind: 'session.del', clientId: 'nobody' },
      ]);
      const { store: reopened, state } = await restart(store);
      expect([...state.messages.keys()]).toEqual([m2.id]);
      expect(state.retained).toEqual([{ topic: 'r/2', messageId: m2.id }]);
      const of = <T extends { clientId: string }>(rows: readonly T[], c: string): T[] => rows.filter((r) => r.clientId === c);
      expect(of(state.subscriptions, SESSION.clientId).map((s) => s.sub.key)).toEqual(['k2']);
      expect(of(state.subscriptions, other).map((s) => s.sub.key).sort()).toEqual(['$share/g/a/+/#', 'k2']);
      expect(of(state.pending, SESSION.clientId).map((p) => p.entry.seq)).toEqual([2]);
      expect(of(state.pending, other).map((p) => p.entry.seq)).toEqual([1, 2]);
      expect(of(state.incoming, SESSION.clientId).map((i) => i.packetId)).toEqual([8]);
      expect(of(state.incoming, other).map((i) => i.packetId).sort()).toEqual([7, 8]);
      expect(state.sessions.map((s) => s.clientId).sort()).toEqual([SESSION.clientId, other].sort());

      // session.del removes the session record; the other session keeps everything.
      await reopened.write([{ kind: 'session.del', clientId: SESSION.clientId }]);
      const after = (await restart(reopened)).state;
      expect(after.sessions.map((s) => s.clientId)).toEqual([other]);
      expect(of(after.subscriptions, other)).toHaveLength(2);
      expect(of(after.pending, other)).toHaveLength(2);
      expect(of(after.incoming, other)).toHaveLength(2);
    });

    it('a later put replaces the row with the same key', async () => {
      const store = await fresh();
      const m = bareMessage();
      await store.write([
        { kind: 'message.put', message: m },
        { kind: 'session.put', session: { clientId: 'c', protocol: 'mqtt', expiryInterval: 10 } },
        { kind: 'sub.put', clientId: 'c', sub: { ...SUB, qos: 0 } },
        { kind: 'pending.put', clientId: 'c', entry: pending(1, m.id) },
        { kind: 'retained.put', topic: 't', messageId: 1 },
      ]);
      const m2 = { ...m, payload: Buffer.from('second') };
      await store.write([
        { kind: 'message.put', message: m2 },
        { kind: 'session.put', session: { clientId: 'c', protocol: 'mqtt', expiryInterval: 20, disconnectedAt: 5 } },
        { kind: 'sub.put', clientId: 'c', sub: { ...SUB, qos: 1 } },
        { kind: 'pending.put', clientId: 'c', entry: pending(1, m.id, { phase: 'sent', packetId: 3 }) },
        { kind: 'incoming.put', clientId: 'c', packetId: 4 },
        { kind: 'incoming.put', clientId: 'c', packetId: 4 },
        { kind: 'retained.put', topic: 't', messageId: m.id },
      ]);
      const { state } = await restart(store);
      expect(state.messages.get(m.id)?.payload.toString()).toBe('second');
      expect(state.messages.size).toBe(1);
      expect(state.sessions).toEqual([{ clientId: 'c', protocol: 'mqtt', expiryInterval: 20, disconnectedAt: 5 }]);
      expect(state.subscriptions).toEqual([{ clientId: 'c', sub: { ...SUB, qos: 1 } }]);
      expect(state.pending).toEqual([{ clientId: 'c', entry: pending(1, m.id, { phase: 'sent', packetId: 3 }) }]);
      expect(state.incoming).toEqual([{ clientId: 'c', packetId: 4 }]);
      expect(state.retained).toEqual([{ topic: 't', messageId: m.id }]);
    });

    it('applies the ops of one write in order: put then del leaves nothing, del then put leaves the put', async () => {
      const store = await fresh();
      const gone = bareMessage();
      const kept = bareMessage();
      await store.write([
        { kind: 'message.put', message: gone },
        { kind: 'session.put', session: { clientId: 'gone', protocol: 'mqtt', expiryInterval: 1 } },
        { kind: 'sub.put', clientId: 'c', sub: SUB },
        { kind: 'pending.put', clientId: 'c', entry: pending(1, gone.id) },
        { kind: 'incoming.put', clientId: 'c', packetId: 9 },
        { kind: 'retained.put', topic: 'gone', messageId: gone.id },
        { kind: 'message.del', id: gone.id },
        { kind: 'session.del', clientId: 'gone' },
        { kind: 'sub.del', clientId: 'c', key: SUB.key },
        { kind: 'pending.del', clientId: 'c', seq: 1 },
        { kind: 'incoming.del', clientId: 'c', packetId: 9 },
        { kind: 'retained.del', topic: 'gone' },

        { kind: 'message.del', id: kept.id },
        { kind: 'message.put', message: kept },
        { kind: 'retained.del', topic: 'kept' },
        { kind: 'retained.put', topic: 'kept', messageId: kept.id },
        { kind: 'pending.del', clientId: 'c', seq: 2 },
        { kind: 'pending.put', clientId: 'c', entry: pending(2, kept.id) },
        { kind: 'incoming.del', clientId: 'c', packetId: 10 },
        { kind: 'incoming.put', clientId: 'c', packetId: 10 },
      ]);
      const { state } = await restart(store);
      expect([...state.messages.keys()]).toEqual([kept.id]);
      expect(state.sessions).toEqual([]);
      expect(state.subscriptions).toEqual([]);
      expect(state.pending).toEqual([{ clientId: 'c', entry: pending(2, kept.id) }]);
      expect(state.incoming).toEqual([{ clientId: 'c', packetId: 10 }]);
      expect(state.retained).toEqual([{ topic: 'kept', messageId: kept.id }]);
    });

    it('returns pending rows of a session in numeric seq order, whatever the write order', async () => {
      const store = await fresh();
      const seqs = [10, 2, 1, 100_000, 65_536, 256, 3, 2 ** 40];
      await store.write(seqs.map((seq) => ({ kind: 'pending.put', clientId: 'c', entry: pending(seq, 1) })));
      await store.write([{ kind: 'pending.put', clientId: 'b', entry: pending(5, 1) }]);
      const { state } = await restart(store);
      expect(state.pending.filter((p) => p.clientId === 'c').map((p) => p.entry.seq)).toEqual([...seqs].sort((a, b) => a - b));
      expect(state.pending.filter((p) => p.clientId === 'b').map((p) => p.entry.seq)).toEqual([5]);
    });

    it('keeps client ids and topics that prefix one another apart', async () => {
      const store = await fresh();
      await store.write([
        { kind: 'sub.put', clientId: 'a', sub: { ...SUB, key: 'b/c', filter: 'b/c' } },
        { kind: 'sub.put', clientId: 'a/b', sub: { ...SUB, key: 'c', filter: 'c' } },
        { kind: 'sub.put', clientId: 'ab', sub: { ...SUB, key: 'c', filter: 'c' } },
        { kind: 'pending.put', clientId: 'a', entry: pending(1, 1) },
        { kind: 'pending.put', clientId: 'ab', entry: pending(1, 1) },
        { kind: 'incoming.put', clientId: 'a', packetId: 1 },
        { kind: 'incoming.put', clientId: 'ab', packetId: 1 },
        { kind: 'retained.put', topic: 'a', messageId: 1 },
        { kind: 'retained.put', topic: 'a/b', messageId: 2 },
        { kind: 'retained.put', topic: 'ab', messageId: 3 },
      ]);
      await store.write([
        { kind: 'sub.del', clientId: 'a', key: 'b/c' },
        { kind: 'pending.del', clientId: 'a', seq: 1 },
        { kind: 'incoming.del', clientId: 'a', packetId: 1 },
        { kind: 'retained.del', topic: 'a' },
      ]);
      const { state } = await restart(store);
      expect(state.subscriptions.map((s) => `${s.clientId}|${s.sub.key}`).sort()).toEqual(['a/b|c', 'ab|c']);
      expect(state.pending.map((p) => p.clientId)).toEqual(['ab']);
      expect(state.incoming.map((p) => p.clientId)).toEqual(['ab']);
      expect(state.retained.map((r) => r.topic).sort()).toEqual(['a/b', 'ab']);
    });

    it('takes a large batch in one write', async () => {
      const store = await fresh();
      const ops: WriteOp[] = [];
      for (let i = 1; i <= 5000; i++) {
        ops.push({ kind: 'message.put', message: bareMessage({ id: 1_000_000 + i, topic: `bulk/${i}` }) });
        ops.push({ kind: 'pending.put', clientId: 'bulk', entry: pending(i, 1_000_000 + i) });
      }
      await store.write(ops);
      const { state } = await restart(store);
      expect(state.messages.size).toBe(5000);
      expect(state.pending.map((p) => p.entry.seq)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    });

    it('keeps the writes of successive batches, each in order', async () => {
      const store = await fresh();
      for (let i = 0; i < 20; i++) {
        await store.write([
          { kind: 'retained.put', topic: `t/${i % 3}`, messageId: i },
          { kind: 'incoming.put', clientId: 'c', packetId: i + 1 },
          ...(i > 0 ? [{ kind: 'incoming.del', clientId: 'c', packetId: i } as const] : []),
        ]);
      }
      const { state } = await restart(store);
      expect(normalized(state)).toMatchObject({
        retained: [
          { topic: 't/0', messageId: 18 },
          { topic: 't/1', messageId: 19 },
          { topic: 't/2', messageId: 17 },
        ],
        incoming: [{ clientId: 'c', packetId: 20 }],
      });
    });

    it('accepts an empty write', async () => {
      const store = await fresh();
      await store.write([]);
      const { state } = await restart(store);
      expect(state.messages.size).toBe(0);
    });

    it('rejects a write after close with StoreClosedError, and nothing of it lands', async () => {
      const store = await fresh();
      await store.write([{ kind: 'retained.put', topic: 'before', messageId: 1 }]);
      await store.close();
      const err = await store.write([{ kind: 'retained.put', topic: 'after', messageId: 2 }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreClosedError);
      // A second failing write and a second close are just as harmless.
      await expect(store.write([])).rejects.toBeInstanceOf(StoreClosedError);
      await store.close();
      const again = await harness.reopen(store);
      open.push(again);
      const state = await again.open();
      expect(state.retained).toEqual([{ topic: 'before', messageId: 1 }]);
    });

    it('writes awaited one after another and concurrently issued writes all land', async () => {
      const store = await fresh();
      // BatchWriter never overlaps writes, but a store must not lose data if a caller does.
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.write([{ kind: 'incoming.put', clientId: 'c', packetId: i + 1 }])));
      const { state } = await restart(store);
      expect(state.incoming.map((x) => x.packetId).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });
  });
}
