/**
 * MemoryStore (storage/memory.ts): the shared Store conformance suite, plus what only the memory
 * engine promises (row counts, and a session.del that takes the session's rows with it).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../storage/memory.js';
import { storeConformance } from './store.conformance.js';

// A MemoryStore keeps its Maps across close(): reopening is opening the same instance again.
storeConformance('MemoryStore', {
  create: async () => new MemoryStore(),
  reopen: async (closed) => closed,
});

describe('MemoryStore', () => {
  it('counts its rows', async () => {
    const store = new MemoryStore();
    await store.open();
    await store.write([
      { kind: 'session.put', session: { clientId: 'c', protocol: 'mqtt', expiryInterval: 5 } },
      { kind: 'sub.put', clientId: 'c', sub: { key: 'a', filter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 } },
      { kind: 'pending.put', clientId: 'c', entry: { seq: 1, messageId: 1, qos: 1, retain: false, subKeys: ['a'], packetId: 0, phase: 'queued' } },
      { kind: 'incoming.put', clientId: 'c', packetId: 3 },
      { kind: 'retained.put', topic: 'a', messageId: 1 },
    ]);
    expect(store.counts()).toEqual({ messages: 0, sessions: 1, subs: 1, pending: 1, incoming: 1, retained: 1, queues: 0, queueEntries: 0, delayed: 0 });
  });

  it("session.del also drops that session's subscriptions, pending rows and incoming ids", async () => {
    const store = new MemoryStore();
    await store.open();
    await store.write([
      { kind: 'session.put', session: { clientId: 'c', protocol: 'mqtt', expiryInterval: 5 } },
      { kind: 'sub.put', clientId: 'c', sub: { key: 'a', filter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 } },
      { kind: 'pending.put', clientId: 'c', entry: { seq: 1, messageId: 1, qos: 1, retain: false, subKeys: ['a'], packetId: 0, phase: 'queued' } },
      { kind: 'incoming.put', clientId: 'c', packetId: 3 },
      { kind: 'session.del', clientId: 'c' },
    ]);
    expect(store.counts()).toEqual({ messages: 0, sessions: 0, subs: 0, pending: 0, incoming: 0, retained: 0, queues: 0, queueEntries: 0, delayed: 0 });
  });
});
