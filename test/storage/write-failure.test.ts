/**
 * A storage write that fails. The broker must not acknowledge what is not on disk (v5: PUBACK /
 * PUBREC 0x80 Unspecified error; 3.1.1: no acknowledgement, so the client resends), must log and
 * count the failure, keep serving everyone else, lose nothing stored earlier, and acknowledge again
 * once writes succeed.
 *
 * Two ways to fail: a Store seam (FailingStore delegates to a MemoryStore and rejects `write` while
 * told to: the protocol is real, only the disk is replaced), and a real full disk: RocksDB and
 * LevelDB on a tiny tmpfs filled by a file the test then deletes (needs permission to mount, and
 * rocksdb a binary that loads; skipped, saying why, without).
 */
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';
import { DISK_ENGINES, diskStore, mountTmpfs, skipNote, tempDir, tmpfsUnavailable, umount } from '../helpers/disk.js';
import { connectSync, got, nonce, rawSettled, synced, syncable } from '../helpers/sync.js';
import { MemoryStore } from '../../storage/memory.js';
import type { StoredState, Store, WriteOp } from '../../storage/store.js';

/** The Store seam: a MemoryStore whose writes fail while `failing` is set. */
class FailingStore implements Store {
  readonly engine = 'memory';
  failing = false;
  constructor(readonly inner: MemoryStore) {}
  open(): Promise<StoredState> {
    return this.inner.open();
  }
  write(ops: readonly WriteOp[]): Promise<void> {
    return this.failing ? Promise.reject(new Error('injected write failure')) : this.inner.write(ops);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const raws: RawClient[] = [];
afterAll(() => {
  for (const r of raws) r.end();
});

async function raw(port: number, version: 4 | 5, clientId: string): Promise<RawClient> {
  const r = await RawClient.connect(port, version);
  raws.push(r);
  const ack = await r.handshake({ clientId });
  expect(ack.returnCode ?? ack.reasonCode ?? 0).toBe(0);
  return r;
}

function publish(topic: string, payload: string | Buffer, qos: 1 | 2, messageId: number, extra: Partial<IPublishPacket> = {}): IPublishPacket {
  return { cmd: 'publish', topic, payload, qos, messageId, dup: false, retain: false, ...extra };
}

describe('storage write failure (Store seam over MemoryStore)', () => {
  const store = new FailingStore(new MemoryStore());
  let tb: TestBroker;
  const n = nonce();
  const topic = `${n}/q`;
  const subId = `wf-sub-${n}`;
  const subOpts = { clientId: subId, clean: false, properties: { sessionExpiryInterval: 300 } };

  beforeAll(async () => {
    tb = await startBroker({ store, autoStop: false });
    // A persistent subscriber, offline: every QoS 1/2 publish to `topic` must be written.
    const s = await connectSync(tb.port, subOpts);
    await s.subscribeAsync(topic, { qos: 2 });
    await s.endAsync();
    const p = await connect(tb.port);
    await p.publishAsync(topic, 'stored-before', { qos: 1 });
    await p.publishAsync(`${n}/r`, 'retained-before', { qos: 1, retain: true });
    await p.endAsync();
  });
  afterAll(() => tb.stop());

  it('v5: PUBACK 0x80 for QoS 1 and PUBREC 0x80 for QoS 2 while writes fail; logged and counted', async () => {
    const r = await raw(tb.port, 5, `wf-p5-${n}`);
    const errors = tb.broker.core.stats.storageErrors;
    store.failing = true;
    try {
      r.send(publish(topic, 'refused-1', 1, 1));
      const ack = await r.next('puback');
      r.send(publish(topic, 'refused-2', 2, 2));
      const rec = await r.next('pubrec');
      r.send(publish(`${n}/r`, 'retained-refused', 1, 3, { retain: true }));
      const ackR = await r.next('puback');
      expect([ack.messageId, ack.reasonCode, rec.messageId, rec.reasonCode, ackR.messageId, ackR.reasonCode]).toEqual([1, 0x80, 2, 0x80, 3, 0x80]);
    } finally {
      store.failing = false;
    }
    expect(tb.broker.core.stats.storageErrors).toBeGreaterThan(errors);
    expect(tb.logs.some((l) => l.level === 'error' && l.msg === 'storage write failed')).toBe(true);
    // An error PUBREC ends that QoS 2 flow: the id is free again, and now the write succeeds.
    r.send(publish(topic, 'retried-2', 2, 2));
    const rec2 = await r.next('pubrec');
    expect([rec2.messageId, rec2.reasonCode ?? 0]).toEqual([2, 0]);
    r.send({ cmd: 'pubrel', messageId: 2 });
    expect((await r.next('pubcomp')).reasonCode ?? 0).toBe(0);
  });

  // Open bug, needs a design change: Router.publish offers the message to the sessions in memory
  // before its write is known to succeed, and a failed write takes nothing back. So a message the
  // publisher was told was not accepted (0x80) still reaches a subscriber that is online or comes
  // back before a restart; a publisher that retries it causes a duplicate, even at QoS 2.
  it.fails('a message refused with 0x80 is not delivered later', async () => {
    const t = `${n}/refused`;
    const opts = { clientId: `wf-refused-${n}`, clean: false, properties: { sessionExpiryInterval: 300 } };
    const s = await connectSync(tb.port, opts);
    await s.subscribeAsync(t, { qos: 2 });
    await s.endAsync();
    const r = await raw(tb.port, 5, `wf-refuser-${n}`);
    store.failing = true;
    try {
      r.send(publish(t, 'refused-q1', 1, 1));
      expect((await r.next('puback')).reasonCode).toBe(0x80);
      r.send(publish(t, 'refused-q2', 2, 2));
      expect((await r.next('pubrec')).reasonCode).toBe(0x80);
    } finally {
      store.failing = false;
    }
    const back = await connect(tb.port, opts);
    const p = await connect(tb.port);
    await synced(p, back);
    const delivered = got(back).map((m) => m.payload.toString());
    await Promise.all([back.endAsync(), p.endAsync()]);
    expect(delivered).toEqual([]);
  });

  it('3.1.1: no PUBACK while writes fail; after they recover the DUP resend is acknowledged', async () => {
    const r = await raw(tb.port, 4, `wf-p3-${n}`);
    const errors = tb.broker.core.stats.storageErrors;
    store.failing = true;
    try {
      r.send(publish(topic, 'v3-resent', 1, 7));
      await until(() => tb.broker.core.stats.storageErrors > errors, 5000, 'the failed write');
      // The failed batch has settled; a PINGRESP after it shows that no PUBACK was sent.
      expect((await rawSettled(r)).map((p) => p.cmd)).toEqual([]);
    } finally {
      store.failing = false;
    }
    r.send(publish(topic, 'v3-resent', 1, 7, { dup: true }));
    expect((await r.next('puback')).messageId).toBe(7);
  });

  it('other clients keep being served while writes fail', async () => {
    store.failing = true;
    try {
      // Nothing durable involved: a clean session, QoS 0 and QoS 1 through non-persistent sessions.
      const sub = await connect(tb.port);
      await sub.subscribeAsync(`${n}/live`, { qos: 1 });
      const pub = await connect(tb.port, { protocolVersion: 4 });
      await pub.publishAsync(`${n}/live`, 'qos0', { qos: 0 });
      const ack = await pub.publishAsync(`${n}/live`, 'qos1', { qos: 1 });
      expect(ack).toBeDefined();
      await until(() => sub.received.length === 2, 5000, 'live messages');
      expect(sub.received.map((m) => m.payload.toString())).toEqual(['qos0', 'qos1']);
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    } finally {
      store.failing = false;
    }
  });

  it('a persistent CONNECT is refused with Server unavailable while writes fail, and leaves no session behind', async () => {
    const handshake = async (clientId: string, expiry: number): Promise<{ code: number; present: boolean }> => {
      const r = await RawClient.connect(tb.port, 5);
      raws.push(r);
      const ack = await r.handshake({ clientId, clean: false, properties: { sessionExpiryInterval: expiry } });
      if (ack.reasonCode === 0) r.send({ cmd: 'disconnect', reasonCode: 0 });
      return { code: ack.reasonCode ?? 0, present: ack.sessionPresent };
    };
    const fresh = `wf-new-${n}`;
    const old = `wf-old-${n}`;
    expect(await handshake(old, 1)).toEqual({ code: 0, present: false });
    store.failing = true;
    try {
      // The session row cannot be written: CONNACK 0x88, not a session the broker cannot keep.
      expect(await handshake(fresh, 60)).toEqual({ code: 0x88, present: false });
      expect(await handshake(old, 1)).toEqual({ code: 0x88, present: false });
    } finally {
      store.failing = false;
    }
    // The refused new session was not kept: Session Present says what the server holds [MQTT-3.2.2-3].
    expect(await handshake(fresh, 60)).toEqual({ code: 0, present: false });
    // The existing one was offline again with its expiry running (1 s): it ends.
    await until(() => tb.broker.core.sessions.get(old) === undefined, 5000, 'the refused session to expire');
    expect(await handshake(old, 1)).toEqual({ code: 0, present: false });
  });

  it('loses nothing stored before the failure: restart on the same store', async () => {
    await tb.stop();
    tb = await startBroker({ store, autoStop: false });
    const s = await connect(tb.port, subOpts);
    await syncable(s);
    const p = await connect(tb.port);
    await synced(p, s);
    const delivered = got(s).map((m) => m.payload.toString());
    // Acknowledged before or after the failure: kept. What was refused (0x80, no PUBACK) is not promised.
    expect(delivered).toContain('stored-before');
    expect(delivered).toContain('retried-2');
    expect(delivered).toContain('v3-resent');
    const rs = await connectSync(tb.port);
    await rs.subscribeAsync(`${n}/r`, { qos: 1 });
    await synced(p, rs);
    expect(got(rs).map((m) => m.payload.toString())).toEqual(['retained-before']);
    await Promise.all([s.endAsync(), p.endAsync(), rs.endAsync()]);
  });
});

const noMount = tmpfsUnavailable();

for (const { engine, skip: noEngine } of DISK_ENGINES) {
  const skip = noEngine ?? noMount;
  describe(`disk full (${engine} on a small tmpfs)`, () => {
    it.skipIf(skip !== undefined)(
      skipNote(
        'refuses with 0x80 while the disk is full, keeps serving, acknowledges again once space is freed, and keeps every acknowledged message across a restart',
        skip,
      ),
      { timeout: 40_000 },
      async () => {
        const mnt = tempDir(`junction-full-${engine}-`);
        mountTmpfs(mnt, 'size=8m');
        const dir = join(mnt, 'data');
        let tb: TestBroker | undefined;
        try {
          tb = await startBroker({ store: diskStore(engine, dir), autoStop: false });
          const s = await connectSync(tb.port, { clientId: 'full-sub', clean: false, properties: { sessionExpiryInterval: 300 } });
          await s.subscribeAsync('full/#', { qos: 1 });
          await s.endAsync();

          const filler = join(mnt, 'filler');
          const free = (): number => {
            const st = statfsSync(mnt);
            return st.bavail * st.bsize;
          };
          writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 256 * 1024)));

          const p = await raw(tb.port, 5, 'full-pub');
          const acked: string[] = [];
          const body = Buffer.alloc(16 * 1024, 0x61);
          let refused: number | undefined;
          for (let i = 1; i <= 200 && refused === undefined; i++) {
            p.send(publish('full/t', Buffer.concat([Buffer.from(`m${i} `), body]), 1, i));
            const ack = await p.next('puback');
            if ((ack.reasonCode ?? 0) === 0) acked.push(`m${i}`);
            else refused = ack.reasonCode;
          }
          expect(refused, 'a write failed once the disk was full').toBe(0x80);
          expect(acked.length).toBeGreaterThan(0);
          expect(tb.broker.core.stats.storageErrors).toBeGreaterThan(0);
          expect(tb.logs.some((l) => l.level === 'error' && l.msg === 'storage write failed')).toBe(true);

          // Still serving: a non-persistent exchange needs no disk.
          const sub = await connect(tb.port);
          await sub.subscribeAsync('full-live', { qos: 1 });
          const pub = await connect(tb.port);
          await pub.publishAsync('full-live', 'still-here', { qos: 1 });
          await until(() => sub.received.length === 1, 5000, 'live message');

          rmSync(filler);
          let ok = false;
          for (let i = 1000; i < 1050 && !ok; i++) {
            p.send(publish('full/t', `after-${i}`, 1, i));
            const ack = await p.next('puback');
            ok = (ack.reasonCode ?? 0) === 0;
            if (ok) acked.push(`after-${i}`);
            else await new Promise((res) => setTimeout(res, 200));
          }
          expect(ok, 'acknowledged again after space was freed').toBe(true);
          await Promise.all([sub.endAsync(), pub.endAsync()]);

          // Everything acknowledged, before the disk filled and after it was freed, survives a restart.
          await tb.stop();
          tb = await startBroker({ store: diskStore(engine, dir), autoStop: false });
          const s2 = await connect(tb.port, { clientId: 'full-sub', clean: false, properties: { sessionExpiryInterval: 300 } });
          const marker = await connect(tb.port);
          await synced(marker, s2);
          const delivered = new Set(got(s2).map((m) => m.payload.toString().split(' ')[0]!));
          expect(acked.filter((m) => !delivered.has(m)), 'acknowledged but lost').toEqual([]);
          await Promise.all([s2.endAsync(), marker.endAsync()]);
        } finally {
          await tb?.stop();
          umount(mnt);
        }
      },
    );
  });
}
