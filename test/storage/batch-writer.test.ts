/**
 * BatchWriter (storage/batch-writer.ts): group commit. A store whose writes the test completes by
 * hand shows which ops went into which store.write, that writes never overlap, and when each
 * caller's promise settles.
 */
import { describe, expect, it } from 'vitest';
import { BatchWriter } from '../../storage/batch-writer.js';
import { MemoryStore } from '../../storage/memory.js';
import type { StoredState, Store, WriteOp } from '../../storage/store.js';

interface PendingWrite {
  readonly ops: readonly WriteOp[];
  resolve(): void;
  reject(err: unknown): void;
}

/** A Store whose writes stay open until the test settles them; records overlap. */
class HeldStore implements Store {
  readonly engine = 'held';
  readonly writes: PendingWrite[] = [];
  active = 0;
  maxActive = 0;

  async open(): Promise<StoredState> {
    return { messages: new Map(), sessions: [], subscriptions: [], pending: [], incoming: [], retained: [], queues: [], queueEntries: [], delayed: [] };
  }

  write(ops: readonly WriteOp[]): Promise<void> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return new Promise<void>((resolve, reject) => {
      this.writes.push({
        ops: [...ops],
        resolve: () => {
          this.active--;
          resolve();
        },
        reject: (err) => {
          this.active--;
          reject(err);
        },
      });
    });
  }

  async close(): Promise<void> {}

  /** The ops of write `i`, as packet ids (every op in these tests is an incoming.put). */
  ids(i: number): number[] {
    return this.writes[i]!.ops.map((op) => (op.kind === 'incoming.put' ? op.packetId : -1));
  }
}

const op = (packetId: number): WriteOp => ({ kind: 'incoming.put', clientId: 'c', packetId });
/** Lets pending setImmediate callbacks and promise reactions run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Tracks whether a promise has settled, without awaiting it. */
function watch(p: Promise<void>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const w: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  p.then(
    () => (w.state = 'resolved'),
    (e: unknown) => {
      w.state = 'rejected';
      w.error = e;
    },
  );
  return w;
}

describe('BatchWriter', () => {
  it('puts every op queued in one event-loop turn into one store.write, in order', async () => {
    const store = new HeldStore();
    const w = new BatchWriter(store);
    const a = watch(w.add(op(1)));
    const b = watch(w.add(op(2)));
    const c = watch(w.add(op(3)));
    expect(store.writes).toHaveLength(0); // nothing is written inside the turn
    await turn();
    expect(store.writes).toHaveLength(1);
    expect(store.ids(0)).toEqual([1, 2, 3]);
    await turn();
    expect([a.state, b.state, c.state]).toEqual(['pending', 'pending', 'pending']); // not on disk yet
    store.writes[0]!.resolve();
    await turn();
    expect([a.state, b.state, c.state]).toEqual(['resolved', 'resolved', 'resolved']);
    expect(w.opsQueued).toBe(3);
  });

  it('never overlaps writes: ops arriving during a write wait and go out together in the next one', async () => {
    const store = new HeldStore();
    const w = new BatchWriter(store);
    const first = watch(w.add(op(1)));
    await turn();
    const second = [watch(w.add(op(2)))];
    await turn();
    second.push(watch(w.add(op(3))));
    await turn();
    second.push(watch(w.add(op(4))));
    await turn();
    expect(store.writes).toHaveLength(1); // still waiting for the first
    store.writes[0]!.resolve();
    await turn();
    expect(first.state).toBe('resolved');
    expect(store.writes).toHaveLength(2);
    expect(store.ids(1)).toEqual([2, 3, 4]);
    expect(second.map((s) => s.state)).toEqual(['pending', 'pending', 'pending']);
    store.writes[1]!.resolve();
    await turn();
    expect(second.map((s) => s.state)).toEqual(['resolved', 'resolved', 'resolved']);
    expect(store.maxActive).toBe(1);
  });

  it('a failed write rejects the promises of its batch only, reports it, and the next batch still writes', async () => {
    const store = new HeldStore();
    const errors: Array<[unknown, number]> = [];
    const w = new BatchWriter(store, (err, n) => errors.push([err, n]));
    const failed = [watch(w.add(op(1))), watch(w.add(op(2)))];
    await turn();
    const next = watch(w.add(op(3)));
    const boom = new Error('disk full');
    store.writes[0]!.reject(boom);
    await turn();
    expect(failed.map((f) => [f.state, f.error])).toEqual([
      ['rejected', boom],
      ['rejected', boom],
    ]);
    expect(errors).toEqual([[boom, 2]]);
    expect(store.writes).toHaveLength(2);
    expect(store.ids(1)).toEqual([3]);
    store.writes[1]!.resolve();
    await turn();
    expect(next.state).toBe('resolved');
    // Later batches are unaffected.
    const later = watch(w.add(op(4)));
    await turn();
    store.writes[2]!.resolve();
    await turn();
    expect(later.state).toBe('resolved');
  });

  it('a failed batch nobody awaits does not become an unhandled rejection', async () => {
    const store = new HeldStore();
    const w = new BatchWriter(store);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      void w.add(op(1));
      await turn();
      store.writes[0]!.reject(new Error('nobody listens'));
      await turn();
      await turn();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('a store whose write throws instead of rejecting fails that batch, not the process', async () => {
    let calls = 0;
    const store: Store = {
      engine: 'throwing',
      open: () => new HeldStore().open(),
      write: () => {
        calls++;
        if (calls === 1) throw new Error('sync failure');
        return Promise.resolve();
      },
      close: async () => undefined,
    };
    const errors: unknown[] = [];
    const w = new BatchWriter(store, (err) => errors.push(err));
    await expect(w.add(op(1))).rejects.toThrow('sync failure');
    expect(errors).toHaveLength(1);
    await expect(w.add(op(2))).resolves.toBeUndefined();
  });

  describe('barrier()', () => {
    it('resolves at once when nothing is queued or being written', async () => {
      const w = new BatchWriter(new HeldStore());
      const b = watch(w.barrier());
      await Promise.resolve();
      expect(b.state).toBe('resolved');
    });

    it('waits for the batch now collecting, which is written after the one in flight', async () => {
      const store = new HeldStore();
      const w = new BatchWriter(store);
      void w.add(op(1));
      await turn();
      void w.add(op(2));
      const b = watch(w.barrier());
      store.writes[0]!.resolve();
      await turn();
      expect(b.state).toBe('pending'); // op 2 is in the second write, still open
      store.writes[1]!.resolve();
      await turn();
      expect(b.state).toBe('resolved');
    });

    it('with nothing collecting, waits for the write in flight', async () => {
      const store = new HeldStore();
      const w = new BatchWriter(store);
      void w.add(op(1));
      await turn();
      const b = watch(w.barrier());
      await turn();
      expect(b.state).toBe('pending');
      store.writes[0]!.resolve();
      await turn();
      expect(b.state).toBe('resolved');
    });

    it('rejects when the batch it waits for fails', async () => {
      const store = new HeldStore();
      const w = new BatchWriter(store);
      void w.add(op(1));
      const b = watch(w.barrier());
      await turn();
      store.writes[0]!.reject(new Error('io'));
      await turn();
      expect(b.state).toBe('rejected');
    });

    it('current() is the promise of the collecting batch, undefined when nothing collects', async () => {
      const store = new HeldStore();
      const w = new BatchWriter(store);
      expect(w.current()).toBeUndefined();
      const p = w.add(op(1));
      expect(w.current()).toBe(p);
      await turn();
      expect(w.current()).toBeUndefined();
      store.writes[0]!.resolve();
      await p;
    });
  });

  describe('drain()', () => {
    it('resolves at once with nothing queued', async () => {
      await new BatchWriter(new HeldStore()).drain();
    });

    it('writes what is queued and waits for every batch, the one in flight and the next', async () => {
      const store = new HeldStore();
      const w = new BatchWriter(store);
      void w.add(op(1));
      await turn();
      void w.add(op(2));
      const d = watch(w.drain());
      store.writes[0]!.resolve();
      await turn();
      expect(d.state).toBe('pending');
      expect(store.ids(1)).toEqual([2]);
      store.writes[1]!.resolve();
      await turn();
      expect(d.state).toBe('resolved');
      expect(store.maxActive).toBe(1);
    });

    it('does not reject or hang when a batch fails', async () => {
      const store = new HeldStore();
      const w = new BatchWriter(store);
      void w.add(op(1));
      const d = watch(w.drain());
      await turn();
      store.writes[0]!.reject(new Error('io'));
      await turn();
      expect(d.state).toBe('resolved');
    });

    it('leaves everything on a real store', async () => {
      const store = new MemoryStore();
      await store.open();
      const w = new BatchWriter(store);
      for (let i = 1; i <= 100; i++) {
        void w.add(op(i));
        if (i % 10 === 0) await Promise.resolve();
      }
      await w.drain();
      expect(store.counts().incoming).toBe(100);
    });
  });

  it('a closed store fails the batch with StoreClosedError and the writer carries on', async () => {
    const store = new MemoryStore();
    await store.open();
    const errors: unknown[] = [];
    const w = new BatchWriter(store, (err) => errors.push(err));
    await store.close();
    await expect(w.add(op(1))).rejects.toMatchObject({ name: 'StoreClosedError' });
    expect(errors).toHaveLength(1);
    await store.open();
    await expect(w.add(op(2))).resolves.toBeUndefined();
    expect(store.counts().incoming).toBe(1);
  });
});
