/**
 * Two CONNECTs with the same client id while the first still waits for its session row to reach
 * disk: the newest claim wins [MQTT-3.1.4-3]; the older connection never gets a CONNACK and never
 * attaches, so one session never has two connections.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../storage/memory.js';
import type { Store, StoredState, WriteOp } from '../../storage/store.js';
import { startBroker } from '../helpers/broker.js';
import { until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';

/** Holds every write until `release()`: a disk that is slow on purpose. */
class GatedStore implements Store {
  readonly engine = 'memory';
  private gate: Promise<void> | undefined;
  private open_: (() => void) | undefined;
  constructor(private readonly inner: MemoryStore) {}
  hold(): void {
    this.gate = new Promise((r) => (this.open_ = r));
  }
  release(): void {
    this.open_?.();
    this.gate = undefined;
  }
  open(): Promise<StoredState> {
    return this.inner.open();
  }
  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.gate) await this.gate;
    return this.inner.write(ops);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('CONNECT race for one client id', async () => {
  const store = new GatedStore(new MemoryStore());
  const b = await startBroker({ store });

  it('the newer connection owns the session; the older one is closed without CONNACK', async () => {
    store.hold();
    const first = await RawClient.connect(b.port, 5);
    first.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, clientId: 'race', keepalive: 60, properties: { sessionExpiryInterval: 600 } });
    await until(() => b.logs.length > 0 && b.broker.core.sessions.get('race') !== undefined, 2000, 'first CONNECT seen');
    const second = await RawClient.connect(b.port, 5);
    second.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, clientId: 'race', keepalive: 60, properties: { sessionExpiryInterval: 600 } });
    await new Promise((r) => setTimeout(r, 100));
    store.release();

    const ack = await second.next('connack');
    expect(ack.reasonCode).toBe(0);
    await first.waitClosed();
    expect(first.packets.filter((p) => p.cmd === 'connack')).toEqual([]);

    // The session delivers to the second connection only.
    second.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'race/t', qos: 1 }] });
    await second.next('suback');
    const pub = await RawClient.connect(b.port, 5);
    await pub.handshake();
    pub.send({ cmd: 'publish', topic: 'race/t', payload: 'hi', qos: 0, dup: false, retain: false });
    const msg = await second.next('publish');
    expect(msg.payload.toString()).toBe('hi');
    for (const c of [first, second, pub]) c.end();
  });
});
