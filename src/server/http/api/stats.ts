/**
 * `GET /api/v1/stream` (SSE) and `GET /api/v1/stats/history`.
 *
 * The stream sends `event: stats` once a second (the metrics module's snapshot: counters, gauges,
 * rates, p99 latencies), `event: client` when a client connects or disconnects (so a dashboard
 * shows a new client at once, not at the next poll), and whatever else `app.notify()` is given
 * (`event: reload` after a reload). History is the stats source's 1 s ring (10 min), so a chart
 * fills on page load (EMQX's /monitor).
 *
 * The stats come from `broker.statsSource` (src/server/metrics/live.ts). Without one, a small
 * snapshot made here from the core's counters stands in and there is no history.
 */
import type { Core } from '../../../core/core.js';
import type { Broker } from '../../broker.js';
import type { HttpApp } from '../app.js';
import { ok } from '../reply.js';
import { splitAddress, intParam } from './views.js';

/** What the stream and /overview read from a stats snapshot (LiveStats's StatsSnapshot has more). */
export interface StatsLike {
  /** ms since epoch. */
  readonly at: number;
  readonly uptimeSeconds?: number;
  readonly rates?: { readonly inPerSec: number; readonly outPerSec: number };
  readonly latency?: { readonly storeCommitP99Seconds: number | null };
}

/** The metrics module's 1 Hz stats (broker.statsSource). */
export interface StatsSource {
  snapshot(): StatsLike;
  history(seconds: number): readonly StatsLike[];
  subscribe?(listener: (s: StatsLike) => void): () => void;
}

/** Presence as the stream listens to it (core.presence, src/core/presence.ts). */
interface PresenceClient {
  readonly clientId: string;
  readonly protocol: string;
  readonly version: string;
  readonly listener: string;
  readonly remoteAddress: string;
  readonly username: string | undefined;
  readonly connectedAt: number;
}
interface PresenceLike {
  listen(l: { connected?(c: PresenceClient): void; disconnected?(c: PresenceClient, reason: string, at: number): void }): () => void;
}

export function statsSourceOf(broker: Broker): StatsSource | undefined {
  // Read structurally: the metrics module adds the getter (`config` keeps the type from being weak).
  const b: { readonly config: unknown; readonly statsSource?: StatsSource | undefined } = broker;
  return b.statsSource;
}

function presenceOf(core: Core): PresenceLike | undefined {
  const c: { readonly stats: unknown; readonly presence?: PresenceLike } = core;
  return c.presence;
}

/** Connected clients per protocol, counted from the sessions. */
export function connectionCounts(broker: Broker): { mqtt: number; stomp: number } {
  const out = { mqtt: 0, stomp: 0 };
  for (const s of broker.core.sessions.sessions.values()) {
    if (!s.attached) continue;
    if (s.protocol === 'mqtt') out.mqtt++;
    else if (s.protocol === 'stomp') out.stomp++;
  }
  return out;
}

/** The stand-in snapshot when no stats source is set. */
class FallbackStats {
  private prev: { at: number; in: number; out: number } | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly startedAt: number,
  ) {}

  snapshot(): StatsLike & Record<string, unknown> {
    const core = this.broker.core;
    const now = Date.now();
    const counters = { messagesReceived: core.stats.messagesReceived, messagesDelivered: core.stats.messagesSent };
    const p = this.prev;
    const secs = p ? Math.max(0.001, (now - p.at) / 1000) : 1;
    const rates = {
      inPerSec: p ? Math.max(0, (counters.messagesReceived - p.in) / secs) : 0,
      outPerSec: p ? Math.max(0, (counters.messagesDelivered - p.out) / secs) : 0,
    };
    this.prev = { at: now, in: counters.messagesReceived, out: counters.messagesDelivered };
    return {
      at: now,
      uptimeSeconds: Math.floor((now - this.startedAt) / 1000),
      connections: connectionCounts(this.broker),
      sessions: core.sessions.size,
      retained: core.router.retained.size,
      counters,
      rates,
      latency: { storeCommitP99Seconds: null },
    };
  }
}

export function mountStats(app: HttpApp): void {
  const fallback = new FallbackStats(app.broker, app.startedAt);

  app.route('GET', '/api/v1/stats/history', 'viewer', (req) => {
    const seconds = intParam(req.query, 'seconds', 1, 3600) ?? 600;
    const src = statsSourceOf(req.broker);
    return ok({ data: src ? src.history(seconds) : [], meta: { seconds, source: src ? 'metrics' : 'none' } });
  });

  app.route('GET', '/api/v1/stream', 'viewer', (req) => {
    const stream = req.sse({ retryMs: 2000 });
    const offs: Array<() => void> = [];
    const src = statsSourceOf(req.broker);
    stream.send('stats', src ? src.snapshot() : fallback.snapshot());
    if (src?.subscribe) offs.push(src.subscribe((s) => stream.send('stats', s)));
    else {
      const timer = setInterval(() => stream.send('stats', src ? src.snapshot() : fallback.snapshot()), 1000);
      timer.unref();
      offs.push(() => clearInterval(timer));
    }
    const presence = presenceOf(req.broker.core);
    if (presence) {
      const view = (c: PresenceClient, event: string, at: number, reason?: string): Record<string, unknown> => {
        const { ip, port } = splitAddress(c.remoteAddress);
        return {
          event,
          clientId: c.clientId,
          protocol: c.protocol,
          version: c.version,
          listener: c.listener,
          ip,
          port,
          username: c.username ?? null,
          at: new Date(at).toISOString(),
          ...(reason !== undefined ? { reason } : {}),
        };
      };
      offs.push(
        presence.listen({
          connected: (c) => stream.send('client', view(c, 'connected', c.connectedAt)),
          disconnected: (c, reason, at) => stream.send('client', view(c, 'disconnected', at, reason)),
        }),
      );
    }
    offs.push(req.broker.http.onNotify((event, data) => stream.send(event, data)));
    stream.onClose(() => {
      for (const off of offs) off();
    });
    return undefined;
  });
}
