/**
 * kill -9 crash test for STOMP and durable queues (design.md "Durability contract"; the pattern of
 * crash.test.ts): the broker runs as a child process on a RocksDB or LevelDB data directory; a STOMP
 * producer SENDs numbered persistent messages with receipts to /queue/<q>, keeping a window of
 * receipts outstanding, while a STOMP `client-individual` consumer reads and ACKs them; the broker is
 * killed with SIGKILL at random moments and restarted on the same directory, both clients
 * reconnecting. At the end every message whose RECEIPT arrived has reached the consumer at least
 * once; deliveries past the first are counted and printed, with how many carried redelivered:true
 * (a duplicate whose first delivery the broker had not yet recorded on disk at the kill may lack
 * it, so that count is reported, not asserted). The seed is printed so that a failing round can be
 * replayed (CRASH_SEED=...).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rocksdbLoads } from '../../storage/engine-choice.js';
import { sleep, until } from '../helpers/mqtt.js';
import { freePort, startBrokerProcess, type BrokerProcess } from '../helpers/process-broker.js';
import { StompWire } from '../helpers/stomp-queue.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function connectRetrying(port: number, stopped: () => boolean): Promise<StompWire | undefined> {
  while (!stopped()) {
    try {
      return await StompWire.connect(port);
    } catch {
      await sleep(100);
    }
  }
  return undefined;
}

/** SENDs numbered persistent messages, `window` receipts outstanding, reconnecting after a crash. */
class Producer {
  readonly receipted = new Set<number>();
  private next = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly port: number,
    private readonly destination: string,
    private readonly window: number,
  ) {
    this.done = this.run();
  }

  get sent(): number {
    return this.next;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const c = await connectRetrying(this.port, () => !this.running);
      if (!c) return;
      const inflight = new Set<Promise<void>>();
      while (this.running && !c.closed) {
        if (inflight.size >= this.window) {
          await Promise.race(inflight);
          continue;
        }
        const n = this.next++;
        const p: Promise<void> = c
          .send(this.destination, JSON.stringify({ n }), { persistent: 'true' })
          .then(
            () => void this.receipted.add(n),
            () => undefined, // no RECEIPT: the message may or may not be stored
          )
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.allSettled(inflight);
      c.destroy();
    }
  }

  /** Stops sending; resolves once every outstanding SEND has its RECEIPT or failed. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** A client-individual consumer that ACKs what it reads and resubscribes after a crash. */
class Consumer {
  /** n -> deliveries seen */
  readonly got = new Map<number, number>();
  redelivered = 0;
  /** A second delivery of a message without redelivered:true. */
  unflagged = 0;
  private running = true;
  private current: StompWire | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly port: number,
    private readonly destination: string,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const c = await connectRetrying(this.port, () => !this.running);
      if (!c) return;
      this.current = c;
      try {
        await c.subscribe(this.destination, 'crash', 'client-individual', { 'prefetch-count': '16' });
        for (;;) {
          const m = await c.next((f) => f.command === 'MESSAGE' || f.command === 'ERROR', 60_000);
          if (m.command === 'ERROR') break;
          const { n } = JSON.parse(m.body.toString()) as { n: number };
          const before = this.got.get(n) ?? 0;
          this.got.set(n, before + 1);
          if (m.headers['redelivered'] === 'true') this.redelivered++;
          else if (before > 0) this.unflagged++;
          c.ack(m);
        }
      } catch {
        // connection lost (broker killed): reconnect
      }
      c.destroy();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.current?.destroy();
    await this.done;
  }
}

const rocks = rocksdbLoads();

describe.each([
  { engine: 'rocksdb', skip: !rocks.ok },
  { engine: 'leveldb', skip: false },
])('kill -9 crash test, STOMP producer and queue consumer ($engine)', ({ engine, skip }) => {
  if (skip) console.warn(`skipping rocksdb STOMP crash test: ${rocks.detail}`);
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.skipIf(skip)('every receipted SEND reaches the client-individual consumer at least once across SIGKILLs', { timeout: 120_000 }, async () => {
    const seed = Number(process.env['CRASH_SEED'] ?? Date.now() % 1_000_000);
    const random = rng(seed);
    const dir = mkdtempSync(join(tmpdir(), 'junction-crash-stomp-'));
    dirs.push(dir);
    const [port, stompPort] = [await freePort(), await freePort()];
    const args = ['--data-dir', dir, '--storage', engine, '--log-level', 'warn', '--stomp-port', String(stompPort)];
    let broker: BrokerProcess = await startBrokerProcess(args, port);
    const destination = '/queue/crash-stomp';
    const ctx = `seed ${seed}, ${engine}`;
    const producer = new Producer(stompPort, destination, 8);
    const consumer = new Consumer(stompPort, destination);
    try {
      for (let r = 0; r < 4; r++) {
        await sleep(300 + random() * 1200);
        await broker.kill('SIGKILL');
        await sleep(random() * 400);
        broker = await startBrokerProcess(args, port);
      }
      await sleep(500);
      await producer.stop();
      await until(
        () => [...producer.receipted].every((n) => (consumer.got.get(n) ?? 0) > 0),
        30_000,
        `every receipted message at the consumer (${ctx})`,
      ).catch((err: unknown) => {
        const missing = [...producer.receipted].filter((n) => !consumer.got.has(n));
        throw new Error(`${String(err)}: ${missing.length} of ${producer.receipted.size} missing (${missing.slice(0, 20).join(',')})\n${broker.output()}`);
      });
      await consumer.stop();

      expect(producer.receipted.size, ctx).toBeGreaterThan(0);
      for (const n of consumer.got.keys()) expect(n, `consumer got #${n}, never sent (${ctx})`).toBeLessThan(producer.sent);
      const duplicates = [...consumer.got.values()].reduce((a, t) => a + t - 1, 0);
      console.log(
        `STOMP crash test (${ctx}): ${producer.sent} sent, ${producer.receipted.size} receipted, ${consumer.got.size} distinct received, ${duplicates} duplicate deliveries, ${consumer.redelivered} marked redelivered, ${consumer.unflagged} duplicates not marked`,
      );
    } finally {
      await consumer.stop();
      await producer.stop();
      await broker.kill('SIGKILL');
    }
  });
});
