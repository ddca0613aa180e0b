/**
 * Wire-level fuzzing helpers: hostile connections over TCP and WebSocket, a well-behaved MQTT and
 * STOMP pair that keep publishing and receiving meanwhile (Health), and the checks that follow a
 * fuzzing phase: broker counters back at their baseline, no error logged, no uncaught exception or
 * unhandled rejection in this process (the broker runs in it).
 */
import net from 'node:net';
import { expect } from 'vitest';
import WebSocket from 'ws';
import type { TestBroker } from '../helpers/broker.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { fuzzMs, settledHeap, summary } from './harness.js';

// -- broker state -------------------------------------------------------------------------------

export interface Counters {
  readonly sessions: number;
  readonly subscriptions: number;
  readonly connections: number;
  readonly queued: number;
  readonly queues: number;
  readonly delayed: number;
}

/** Connections the broker tracks (Broker keeps them private; read for this check only). */
function connectionCount(tb: TestBroker): number {
  const set = (tb.broker as unknown as { connections?: unknown }).connections;
  if (!(set instanceof Set)) throw new Error('Broker.connections is no longer a Set: update test/fuzz/wire.ts');
  return set.size;
}

export function counters(tb: TestBroker): Counters {
  const core = tb.broker.core;
  let queued = 0;
  for (const q of core.router.queues.queues.values()) queued += q.depth;
  return {
    sessions: core.sessions.size,
    subscriptions: core.router.subscriptionCount,
    connections: connectionCount(tb),
    queued,
    queues: core.router.queues.queues.size,
    delayed: core.router.delayed.size,
  };
}

/**
 * Waits until the broker holds what it held at `base` (connections, sessions, subscriptions):
 * whatever the fuzzing connections made must go with them. Queues the fuzzing filled are purged
 * first (a durable queue keeps its messages by design; that is not a leak).
 */
export async function backToBaseline(tb: TestBroker, base: Counters, timeoutMs = 10_000): Promise<void> {
  try {
    await until(
      () => {
        const c = counters(tb);
        return c.connections === base.connections && c.sessions === base.sessions && c.subscriptions === base.subscriptions;
      },
      timeoutMs,
      'broker counters back at the baseline',
    );
  } catch (err) {
    const { connections, sessions, subscriptions } = counters(tb);
    expect({ connections, sessions, subscriptions }, String(err)).toEqual({ connections: base.connections, sessions: base.sessions, subscriptions: base.subscriptions });
  }
}

/** Clears what fuzzing may legitimately leave: retained messages under its topics, queued messages. */
export function clearFuzzLeftovers(tb: TestBroker): void {
  const router = tb.broker.core.router;
  for (const q of router.queues.queues.values()) q.purge();
  // An empty retained message clears a topic through the router, which also releases the storage.
  for (const m of [...router.retained.all()]) {
    if (m.topic.startsWith('health/')) continue;
    router.publish({ topic: m.topic, payload: Buffer.alloc(0), qos: 0, retain: true, expiresAt: undefined, props: {}, origin: { clientId: 'fuzz-cleanup', protocol: 'internal' } });
  }
}

/** Error-level broker log lines (an internal error is a bug). */
export function brokerErrors(tb: TestBroker): string[] {
  return tb.logs.filter((l) => l.level === 'error' || l.msg === 'internal error').map((l) => `${l.msg} ${JSON.stringify(l.fields)}`);
}

/** Collects uncaught exceptions and unhandled rejections in this process while installed. */
export function trapProcessErrors(): { readonly errors: string[]; dispose(): void } {
  const errors: string[] = [];
  const onErr = (err: unknown): void => {
    errors.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  };
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  return {
    errors,
    dispose: () => {
      process.off('uncaughtException', onErr);
      process.off('unhandledRejection', onErr);
    },
  };
}

// -- hostile connections ------------------------------------------------------------------------

export type Ending = 'destroy' | 'end' | 'wait';

export interface FuzzOptions {
  /** ms between chunks (0: back to back in one turn). */
  readonly gapMs: number;
  /** How we leave if the broker has not closed by then: RST, FIN, or wait for the broker. */
  readonly ending: Ending;
  /** ms to wait for the broker to close before ending ourselves. */
  readonly lingerMs: number;
  /** Bytes written after the chunks (e.g. a PINGREQ to see whether the connection still answers). */
  readonly trailer?: Buffer;
  /** Leave (RST) as soon as what arrived satisfies this. */
  readonly untilReply?: (data: readonly Buffer[]) => boolean;
}

export interface FuzzResult {
  readonly closedByBroker: boolean;
  readonly bytesIn: number;
  readonly data: Buffer[];
}

/** Bytes of the broker's answers kept per connection. */
const KEEP = 1 << 20;

/** One hostile TCP connection: writes `chunks`, reads whatever comes back, then leaves as told. */
export function fuzzTcp(port: number, chunks: readonly Buffer[], o: FuzzOptions): Promise<FuzzResult> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    const data: Buffer[] = [];
    let bytesIn = 0;
    let closed = false;
    let closedByBroker = false;
    let timer: NodeJS.Timeout | undefined;
    s.on('data', (d: Buffer) => {
      bytesIn += d.length;
      if (bytesIn <= KEEP) data.push(d);
      if (o.untilReply?.(data)) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('end', () => (closedByBroker = true));
    s.on('close', () => {
      closed = true;
      if (timer) clearTimeout(timer);
      resolve({ closedByBroker, bytesIn, data });
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (closed || closedByBroker) break;
        s.write(c);
        if (o.gapMs > 0) await sleep(o.gapMs);
      }
      if (o.trailer && !closed) s.write(o.trailer);
      if (closed) return;
      timer = setTimeout(() => {
        if (o.ending === 'end') s.end();
        else s.destroy();
      }, o.ending === 'wait' ? Math.max(o.lingerMs, 5000) : o.lingerMs);
    });
  });
}

/** One hostile WebSocket connection: each chunk one binary message (one in ten sent as text). */
export function fuzzWs(url: string, protocol: string, chunks: readonly Buffer[], o: FuzzOptions): Promise<FuzzResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [protocol]);
    const data: Buffer[] = [];
    let bytesIn = 0;
    let closedByBroker = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      resolve({ closedByBroker, bytesIn, data });
    };
    ws.on('message', (d: Buffer) => {
      bytesIn += d.length;
      if (bytesIn <= KEEP) data.push(d);
    });
    ws.on('error', () => finish());
    ws.on('close', () => {
      closedByBroker = closedByBroker || !done;
      finish();
    });
    ws.on('open', async () => {
      let i = 0;
      for (const c of chunks) {
        if (ws.readyState !== WebSocket.OPEN) break;
        ws.send(c, { binary: ++i % 10 !== 0 });
        if (o.gapMs > 0) await sleep(o.gapMs);
      }
      timer = setTimeout(() => (o.ending === 'end' ? ws.close() : ws.terminate()), o.lingerMs);
    });
  });
}

/**
 * Runs `one(i)` on `concurrency` connections at a time until `ms` have passed; returns how many
 * ran. Each `one` must end its connection (fuzzTcp/fuzzWs do).
 */
export async function runFor(ms: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<number> {
  const deadline = Date.now() + ms;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) await one(n++);
    }),
  );
  return n;
}

// -- the well-behaved clients -------------------------------------------------------------------

/**
 * An MQTT 5 publisher and subscriber and a STOMP 1.2 publisher and subscriber that keep working
 * while the fuzzing runs: every `everyMs` each publisher sends the next numbered message (MQTT at
 * QoS 1, STOMP SEND with a receipt), awaiting its acknowledgement; both subscribers take both
 * streams. `finish()` stops them and asserts that each subscriber got every message, once and in
 * order, and that no well-behaved connection was closed.
 */
export class Health {
  private stopped = false;
  private loops: Array<Promise<void>> = [];
  readonly sent = { mqtt: 0, stomp: 0 };
  /** The next sequence number each subscriber expects, per stream. */
  private readonly expect = { mqttSub: { m: 1, s: 1 }, stompSub: { m: 1, s: 1 } };
  readonly problems: string[] = [];
  /** Slowest publish round trip (ms), for the report. */
  slowestMs = 0;

  private constructor(
    private readonly mqttPub: Awaited<ReturnType<typeof connect>>,
    private readonly mqttSub: Awaited<ReturnType<typeof connect>>,
    private readonly stompPub: StompRaw,
    private readonly stompSub: StompRaw,
    private readonly everyMs: number,
    readonly tag: string,
  ) {}

  static async start(tb: TestBroker, tag: string, everyMs = 25): Promise<Health> {
    const mqttSub = await connect(tb.port, { protocolVersion: 5, clientId: `health-${tag}-mqtt-sub-7f3a` });
    await mqttSub.subscribeAsync(`health/${tag}/#`, { qos: 1 });
    const mqttPub = await connect(tb.port, { protocolVersion: 5, clientId: `health-${tag}-mqtt-pub-7f3a` });
    const stompSub = await StompRaw.open(tb.stompPort, '1.2');
    await stompSub.subscribe({ destination: `/topic/health/${tag}/#`, id: 'health', ack: 'auto' });
    const stompPub = await StompRaw.open(tb.stompPort, '1.2');
    const h = new Health(mqttPub, mqttSub, stompPub, stompSub, everyMs, tag);
    mqttSub.on('message', (topic, payload) => h.got('mqttSub', topic, payload.toString()));
    for (const c of [mqttSub, mqttPub]) c.on('close', () => h.stopped || h.problems.push(`${c.options.clientId} closed`));
    h.loops = [h.loop('mqtt'), h.loop('stomp')];
    return h;
  }

  private got(who: 'mqttSub' | 'stompSub', topic: string, body: string): void {
    const m = /^([ms])-(\d+)$/.exec(body);
    if (!m || !topic.startsWith(`health/${this.tag}/`)) return;
    const stream = m[1] as 'm' | 's';
    const n = Number(m[2]);
    const want = this.expect[who][stream];
    if (n !== want) this.problems.push(`${who} got ${stream}-${n}, expected ${stream}-${want}`);
    this.expect[who][stream] = n + 1;
  }

  private drainStompSub(): void {
    for (const f of this.stompSub.frames.splice(0)) {
      if (f.command !== 'MESSAGE') continue;
      const dest = hdr(f, 'destination') ?? '';
      this.got('stompSub', dest.replace(/^\/topic\//, ''), f.body.toString());
    }
  }

  private async loop(kind: 'mqtt' | 'stomp'): Promise<void> {
    while (!this.stopped) {
      const n = this.sent[kind] + 1;
      const t0 = Date.now();
      try {
        if (kind === 'mqtt') await this.mqttPub.publishAsync(`health/${this.tag}/mqtt`, `m-${n}`, { qos: 1 });
        else {
          // A generous wait: a test generating its inputs may hold the event loop for a while.
          const receipt = `health-${n}`;
          this.stompPub.send('SEND', { destination: `/topic/health/${this.tag}/stomp`, receipt }, `s-${n}`);
          await this.stompPub.receipt(receipt, 30_000);
        }
      } catch (err) {
        this.problems.push(`${kind} publish ${n} failed: ${String(err)}`);
        return;
      }
      this.sent[kind] = n;
      this.slowestMs = Math.max(this.slowestMs, Date.now() - t0);
      this.drainStompSub();
      await sleep(this.everyMs);
    }
  }

  /** Stops publishing and checks that everything sent arrived, once and in order, at both subscribers. */
  async finish(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    const complete = (): boolean => {
      this.drainStompSub();
      const e = this.expect;
      return e.mqttSub.m > this.sent.mqtt && e.mqttSub.s > this.sent.stomp && e.stompSub.m > this.sent.mqtt && e.stompSub.s > this.sent.stomp;
    };
    await until(complete, 10_000, 'every health message at both subscribers').catch((err: unknown) => this.problems.push(String(err)));
    expect(this.problems, JSON.stringify({ sent: this.sent, expect: this.expect })).toEqual([]);
    expect(this.sent.mqtt).toBeGreaterThan(0);
    expect(this.sent.stomp).toBeGreaterThan(0);
    expect(this.mqttSub.connected && this.mqttPub.connected).toBe(true);
    expect(this.stompSub.closed || this.stompPub.closed).toBe(false);
  }
}

/**
 * The wire-level fuzzing check both protocols share: a warm-up (so lazily built things are in the
 * heap baseline), then `one` on 16 connections at a time for the fuzzing time, beside a
 * well-behaved MQTT and STOMP pair. Afterwards no error logged or thrown, the broker's counters back
 * to where they were, and the heap within a few MB of its baseline (more would be a leak per
 * connection). Returns nothing: it asserts.
 */
export async function hostileStreamsCheck(
  tb: TestBroker,
  trap: { readonly errors: string[] },
  health: 'mqtt' | 'stomp',
  label: string,
  fixedSeed: number,
  distinctInputs: number,
  one: (i: number) => Promise<unknown>,
): Promise<void> {
  const h = await Health.start(tb, health);
  const base = counters(tb);
  const t0 = Date.now();
  const warm = await runFor(1500, 16, one);
  clearFuzzLeftovers(tb);
  await backToBaseline(tb, base);
  expect(brokerErrors(tb)).toEqual([]);
  tb.logs.length = 0;
  const heapBase = await settledHeap();

  const n = await runFor(fuzzMs(4000), 16, (i) => one(warm + i));
  await h.finish();
  clearFuzzLeftovers(tb);
  await backToBaseline(tb, base);
  expect(brokerErrors(tb)).toEqual([]);
  expect(trap.errors).toEqual([]);
  tb.logs.length = 0;
  const heapAfter = await settledHeap();
  summary(label, {
    seed: fixedSeed,
    connections: warm + n,
    distinctInputs,
    ms: Date.now() - t0,
    protocolErrors: tb.broker.core.stats.protocolErrors,
    healthMqtt: h.sent.mqtt,
    healthStomp: h.sent.stomp,
    slowestHealthMs: h.slowestMs,
    heapBaseMB: (heapBase / 1e6).toFixed(1),
    heapAfterMB: (heapAfter / 1e6).toFixed(1),
  });
  expect(n).toBeGreaterThan(50);
  expect(heapAfter - heapBase).toBeLessThan(Math.max(8e6, heapBase * 0.15));
}
