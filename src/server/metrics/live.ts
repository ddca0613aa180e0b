/**
 * LiveStats: the source of the admin API's `event: stats` (SSE, 1 Hz) and `/stats/history`.
 *
 * Once a second it takes a snapshot: the counters of /metrics summed to plain JSON, the gauges of
 * the moment, per-second rates (the difference from the previous snapshot), p99 latencies over the
 * last 10 s (from the histogram counts' difference), and the event-loop lag. The last 600
 * snapshots are kept in a ring so that a dashboard opened now draws 10 minutes at once (EMQX's
 * `/monitor`). Listeners are told each new snapshot; one that throws is dropped, not retried.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Core } from '../../core/core.js';
import { Histogram, type Stats } from '../../core/stats.js';
import { connectionsByProtocol, droppedTotal, readGauges, sum } from './readings.js';

export interface StatsSnapshot {
  /** ms since epoch. */
  readonly at: number;
  readonly uptimeSeconds: number;
  readonly connections: { readonly mqtt: number; readonly stomp: number };
  readonly sessions: { readonly online: number; readonly offline: number };
  readonly subscriptions: { readonly exact: number; readonly wildcard: number; readonly shared: number };
  readonly retained: number;
  readonly inflight: number;
  readonly sessionQueued: number;
  readonly queues: {
    readonly count: number;
    readonly dlqs: number;
    readonly ready: number;
    readonly unacked: number;
    readonly delayed: number;
    readonly dlqMessages: number;
    readonly consumers: number;
  };
  /** Totals since the start (the counters of /metrics, summed over their labels). */
  readonly counters: {
    readonly messagesReceived: number;
    readonly messagesDelivered: number;
    readonly messagesDropped: number;
    readonly messagesDeadLettered: number;
    readonly messagesRedelivered: number;
    readonly bytesReceived: number;
    readonly bytesSent: number;
    readonly connectionsOpened: number;
    readonly connectionsClosed: number;
    readonly connectionsRejected: number;
    readonly authorizationDenied: number;
  };
  /** Per second, over the last second. */
  readonly rates: {
    readonly inPerSec: number;
    readonly outPerSec: number;
    readonly droppedPerSec: number;
    readonly bytesInPerSec: number;
    readonly bytesOutPerSec: number;
  };
  /** p99 over the last 10 s, in seconds; null when nothing was observed. */
  readonly latency: {
    readonly ackP99Seconds: number | null;
    readonly deliveryP99Seconds: number | null;
    readonly storeCommitP99Seconds: number | null;
  };
  /** p99 event-loop delay over the last second, in seconds. */
  readonly eventLoopLagSeconds: number;
  readonly heapUsedBytes: number;
  readonly rssBytes: number;
}

const HISTORY = 600;
const WINDOW = 10;

/** Counts of several histograms with the same bounds, summed. */
function merged(list: readonly Histogram[]): Float64Array {
  const out = new Float64Array(list[0]!.counts.length);
  for (const h of list) for (let i = 0; i < out.length; i++) out[i]! += h.counts[i]!;
  return out;
}

/** p99 of the observations between two count snapshots, or null when there were none. */
function p99Between(bounds: readonly number[], now: Float64Array, then: Float64Array | undefined): number | null {
  const h = new Histogram(bounds);
  for (let i = 0; i < now.length; i++) {
    const d = now[i]! - (then?.[i] ?? 0);
    h.counts[i] = d;
    h.count += d;
  }
  return h.count > 0 ? h.quantile(0.99) : null;
}

interface Window {
  readonly ack: Float64Array;
  readonly delivery: Float64Array;
  readonly commit: Float64Array;
}

export type StatsListener = (s: StatsSnapshot) => void;

export class LiveStats {
  private readonly ring: StatsSnapshot[] = [];
  private readonly windows: Window[] = [];
  private readonly listeners = new Set<StatsListener>();
  private timer: NodeJS.Timeout | undefined;
  private lag: IntervalHistogram | undefined;
  private last: StatsSnapshot | undefined;
  private readonly startedAt = Date.now();

  constructor(private readonly core: Core) {}

  start(): void {
    if (this.timer) return;
    this.lag = monitorEventLoopDelay({ resolution: 10 });
    this.lag.enable();
    this.last = this.take();
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.lag?.disable();
    this.listeners.clear();
  }

  /** The latest snapshot (taken now if the ticker has not run yet). */
  snapshot(): StatsSnapshot {
    return this.last ?? this.take();
  }

  /** Snapshots of the last `seconds` (at most 600), oldest first. */
  history(seconds = HISTORY): StatsSnapshot[] {
    const n = Math.max(0, Math.min(HISTORY, Math.floor(seconds)));
    return n === 0 ? [] : this.ring.slice(-n);
  }

  /** Calls `l` with every new snapshot until the returned function is called. */
  subscribe(l: StatsListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private tick(): void {
    const s = this.take();
    this.last = s;
    this.ring.push(s);
    if (this.ring.length > HISTORY) this.ring.shift();
    for (const l of [...this.listeners]) {
      try {
        l(s);
      } catch {
        this.listeners.delete(l);
      }
    }
  }

  private take(): StatsSnapshot {
    const core = this.core;
    const st: Stats = core.stats;
    const g = readGauges(core);
    const now = Date.now();
    let opened = 0;
    let closed = 0;
    for (const e of st.endpoints.values()) {
      opened += e.opened;
      closed += sum(e.closed);
    }
    let rejected = 0;
    for (const r of st.rejectedAt.values()) rejected += sum(r);
    const counters = {
      messagesReceived: sum(st.received),
      messagesDelivered: sum(st.delivered),
      messagesDropped: droppedTotal(st),
      messagesDeadLettered: sum(st.deadLetteredBy),
      messagesRedelivered: sum(st.redeliveredBy),
      bytesReceived: st.bytesReceived,
      bytesSent: st.bytesSent,
      connectionsOpened: opened,
      connectionsClosed: closed,
      connectionsRejected: rejected,
      authorizationDenied: sum(st.deniedBy),
    };
    const prev = this.last;
    const secs = prev ? Math.max(0.001, (now - prev.at) / 1000) : 1;
    const rate = (a: number, b: number | undefined): number => (prev && b !== undefined ? Math.max(0, (a - b) / secs) : 0);
    const w: Window = { ack: merged(st.ackLatency), delivery: merged([...st.deliveryLatency]), commit: st.storeCommit.counts.slice() };
    const then = this.windows.length >= WINDOW ? this.windows[this.windows.length - WINDOW] : this.windows[0];
    this.windows.push(w);
    if (this.windows.length > WINDOW + 1) this.windows.shift();
    const lag = this.lag && this.lag.count > 0 ? this.lag.percentile(99) / 1e9 : 0;
    this.lag?.reset();
    const mem = process.memoryUsage();
    return {
      at: now,
      uptimeSeconds: Math.floor((now - this.startedAt) / 1000),
      connections: connectionsByProtocol(st),
      sessions: { online: g.sessionsOnline, offline: g.sessionsOffline },
      subscriptions: { exact: st.subscriptionsExact, wildcard: st.subscriptionsWildcard, shared: st.subscriptionsShared },
      retained: g.retained,
      inflight: g.inflight,
      sessionQueued: g.sessionQueued,
      queues: {
        count: g.queues,
        dlqs: g.dlqs,
        ready: g.queueReady,
        unacked: g.queueUnacked,
        delayed: g.delayed,
        dlqMessages: g.dlqMessages,
        consumers: g.queueConsumers,
      },
      counters,
      rates: {
        inPerSec: rate(counters.messagesReceived, prev?.counters.messagesReceived),
        outPerSec: rate(counters.messagesDelivered, prev?.counters.messagesDelivered),
        droppedPerSec: rate(counters.messagesDropped, prev?.counters.messagesDropped),
        bytesInPerSec: rate(counters.bytesReceived, prev?.counters.bytesReceived),
        bytesOutPerSec: rate(counters.bytesSent, prev?.counters.bytesSent),
      },
      latency: {
        ackP99Seconds: p99Between(st.ackLatency[0]!.bounds, w.ack, then?.ack),
        deliveryP99Seconds: p99Between(st.deliveryLatency[0].bounds, w.delivery, then?.delivery),
        storeCommitP99Seconds: p99Between(st.storeCommit.bounds, w.commit, then?.commit),
      },
      eventLoopLagSeconds: lag,
      heapUsedBytes: mem.heapUsed,
      rssBytes: mem.rss,
    };
  }
}
