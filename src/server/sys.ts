/**
 * $SYS: the broker describing itself over MQTT, in two forms.
 *
 * 1. Mosquitto's `$SYS/broker/...` tree, every `sys.interval` seconds: the 51 topics Mosquitto 2.0
 *    publishes (its 53 less the deprecated `clients/active|inactive`), with the same names and plain
 *    decimal payloads so that mosquitto-exporter and existing dashboards read Junction as they read
 *    Mosquitto, plus Junction's own under `$SYS/broker/junction/`. Retained, QoS 0, and published
 *    only when the text changed since the last time. `load/*` are per-minute rates smoothed over
 *    1, 5 and 15 minutes exactly as Mosquitto computes them (sys_tree.c `calc_load`).
 * 2. EMQX's presence events `$SYS/brokers/<node>/clients/<clientid>/connected|disconnected`: JSON,
 *    QoS 0, not retained, with EMQX's fields plus `protocol` and `listener`.
 *
 * Everything goes through `router.publish` with origin protocol `internal`, so ACLs, retained
 * storage and delivery are the same as for any message. Access: a leading wildcard never matches a
 * `$` topic, so with an ACL file only an explicit `$SYS/...` grant opens it (see README "$SYS").
 */
import type { Core } from '../core/core.js';
import type { MessageDraft } from '../core/message.js';
import { NO_PROPS } from '../core/message.js';
import type { ClientInfo } from '../core/presence.js';
import type { CloseKind } from '../core/stats.js';
import { Histogram } from '../core/stats.js';
import { droppedTotal, readGauges, sum, sumBySource } from './metrics/readings.js';

export interface SysOptions {
  /** Seconds between updates of the `$SYS/broker/...` tree; 0 = none. */
  readonly interval: number;
  /** Publish presence events. */
  readonly presence: boolean;
  /** Node name in `$SYS/brokers/<node>/...`. */
  readonly node: string;
  readonly version: string;
}

const ORIGIN = { clientId: '$SYS', protocol: 'internal' } as const;
const INTERNAL = { source: 'internal' } as const;
/** $SYS values are retained in memory only: storage would hold stale ones, and they are made again at start. */
const INTERNAL_RETAINED = { source: 'internal', transient: true } as const;

/** The Mosquitto-compatible topics, in Mosquitto's order (tests check the list against the spec). */
export const MOSQUITTO_TOPICS: readonly string[] = [
  'bytes/received',
  'bytes/sent',
  'clients/connected',
  'clients/disconnected',
  'clients/expired',
  'clients/maximum',
  'clients/total',
  'heap/current',
  'heap/maximum',
  ...['bytes/received', 'bytes/sent', 'messages/received', 'messages/sent', 'publish/received', 'publish/sent', 'connections', 'sockets', 'publish/dropped'].flatMap((t) =>
    ['1min', '5min', '15min'].map((p) => `load/${t}/${p}`),
  ),
  'messages/received',
  'messages/sent',
  'messages/stored',
  'publish/bytes/received',
  'publish/bytes/sent',
  'publish/messages/dropped',
  'publish/messages/received',
  'publish/messages/sent',
  'retained messages/count',
  'shared_subscriptions/count',
  'store/messages/bytes',
  'store/messages/count',
  'subscriptions/count',
  'uptime',
  'version',
];

export const JUNCTION_TOPICS: readonly string[] = [
  'junction/connections/mqtt',
  'junction/connections/stomp',
  'junction/queues/count',
  'junction/queues/messages',
  'junction/queues/dlq_messages',
  'junction/store/commit_p99_seconds',
];

/** `/`, `+`, `#` and `%` in a client id would change the topic's shape: percent-encode them. */
export function presenceTopicId(clientId: string): string {
  return clientId.replace(/[/+#%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** Counters whose per-minute rate `load/<name>` reports. */
const LOADS = ['bytes/received', 'bytes/sent', 'messages/received', 'messages/sent', 'publish/received', 'publish/sent', 'connections', 'sockets', 'publish/dropped'] as const;
type LoadName = (typeof LOADS)[number];
const PERIODS = [
  ['1min', 60],
  ['5min', 300],
  ['15min', 900],
] as const;

export class SysPublisher {
  private timer: NodeJS.Timeout | undefined;
  private readonly last = new Map<string, string>();
  private readonly startedAt = Date.now();
  private heapMax = 0;
  /** Smoothed per-minute rates by load name and period. */
  private readonly loads = new Map<string, number>();
  private prevCounts: Record<LoadName, number> | undefined;
  private prevAt = 0;
  private prevCommit: Float64Array | undefined;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly core: Core,
    private opts: SysOptions,
  ) {}

  start(): void {
    this.schedule();
    if (this.opts.presence) this.listen();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unlisten?.();
    this.unlisten = undefined;
  }

  /** The node name in presence topics (fixed until restart). */
  get node(): string {
    return this.opts.node;
  }

  /** New `sys.*` settings (reload): the interval and presence switch apply at once. */
  update(opts: SysOptions): void {
    const intervalChanged = opts.interval !== this.opts.interval;
    const presenceChanged = opts.presence !== this.opts.presence;
    this.opts = opts;
    if (intervalChanged) this.schedule();
    if (presenceChanged) {
      this.unlisten?.();
      this.unlisten = undefined;
      if (opts.presence) this.listen();
    }
  }

  /** Publishes every `$SYS/broker/...` topic whose value changed (all of them the first time). */
  publishTree(now = Date.now()): number {
    let published = 0;
    for (const [topic, payload] of this.values(now)) {
      if (this.last.get(topic) === payload) continue;
      this.last.set(topic, payload);
      this.publish(`$SYS/broker/${topic}`, payload, true);
      published++;
    }
    return published;
  }

  /** Every topic (below `$SYS/broker/`) with its payload now. */
  values(now = Date.now()): Map<string, string> {
    const core = this.core;
    const st = core.stats;
    const g = readGauges(core, true);
    const heap = process.memoryUsage().heapUsed;
    if (heap > this.heapMax) this.heapMax = heap;
    let opened = 0;
    for (const e of st.endpoints.values()) opened += e.opened;
    let rejected = 0;
    for (const r of st.rejectedAt.values()) rejected += sum(r);
    const packetsIn = sum(st.mqttPacketsIn) + sum(st.stompFramesIn);
    const packetsOut = sum(st.mqttPacketsOut) + sum(st.stompFramesOut);
    const publishIn = sumBySource(st.received, ['mqtt', 'stomp', 'http']);
    const publishOut = sum(st.delivered);
    const dropped = droppedTotal(st);
    const counts: Record<LoadName, number> = {
      'bytes/received': st.bytesReceived,
      'bytes/sent': st.bytesSent,
      'messages/received': packetsIn,
      'messages/sent': packetsOut,
      'publish/received': publishIn,
      'publish/sent': publishOut,
      connections: opened,
      sockets: opened + rejected,
      'publish/dropped': dropped,
    };
    this.updateLoads(counts, now);
    const connected = core.presence.count;
    const stored = g.retained + g.inflight + g.sessionQueued;
    const v = new Map<string, string>();
    const put = (k: string, n: number): void => void v.set(k, String(Math.round(n)));
    put('bytes/received', st.bytesReceived);
    put('bytes/sent', st.bytesSent);
    put('clients/connected', connected);
    put('clients/disconnected', g.sessionsOffline);
    put('clients/expired', st.sessionsExpired);
    put('clients/maximum', core.presence.maximum);
    put('clients/total', connected + g.sessionsOffline);
    put('heap/current', heap);
    put('heap/maximum', this.heapMax);
    for (const name of LOADS) for (const [p] of PERIODS) v.set(`load/${name}/${p}`, (this.loads.get(`${name}/${p}`) ?? 0).toFixed(2));
    put('messages/received', packetsIn);
    put('messages/sent', packetsOut);
    put('messages/stored', stored);
    put('publish/bytes/received', st.publishBytesIn);
    put('publish/bytes/sent', st.publishBytesOut);
    put('publish/messages/dropped', dropped);
    put('publish/messages/received', publishIn);
    put('publish/messages/sent', publishOut);
    put('retained messages/count', g.retained);
    put('shared_subscriptions/count', st.subscriptionsShared);
    put('store/messages/bytes', g.retainedBytes + g.sessionQueuedBytes);
    put('store/messages/count', stored);
    put('subscriptions/count', st.subscriptionsExact + st.subscriptionsWildcard + st.subscriptionsShared);
    v.set('uptime', `${Math.floor((now - this.startedAt) / 1000)} seconds`);
    v.set('version', `junction ${this.opts.version}`);
    // Junction's own.
    let mqtt = 0;
    let stomp = 0;
    for (const e of st.endpoints.values()) {
      if (e.protocol === 'mqtt') mqtt += sum(e.open);
      else stomp += sum(e.open);
    }
    put('junction/connections/mqtt', mqtt);
    put('junction/connections/stomp', stomp);
    put('junction/queues/count', g.queues);
    put('junction/queues/messages', g.queueReady + g.queueUnacked - g.dlqMessages);
    put('junction/queues/dlq_messages', g.dlqMessages);
    v.set('junction/store/commit_p99_seconds', this.commitP99().toFixed(6));
    return v;
  }

  // -- internals ------------------------------------------------------------------------------

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.opts.interval <= 0) return;
    this.publishTree();
    this.timer = setInterval(() => this.publishTree(), this.opts.interval * 1000);
    this.timer.unref();
  }

  /** Mosquitto's load averages: per-minute rates since the last update, smoothed per period. */
  private updateLoads(counts: Record<LoadName, number>, now: number): void {
    const prev = this.prevCounts;
    const secs = (now - this.prevAt) / 1000;
    this.prevCounts = counts;
    this.prevAt = now;
    if (!prev || secs <= 0) return;
    for (const name of LOADS) {
      const perMinute = ((counts[name] - prev[name]) * 60) / secs;
      for (const [p, period] of PERIODS) {
        const k = `${name}/${p}`;
        const factor = Math.exp(-secs / period);
        this.loads.set(k, perMinute + factor * ((this.loads.get(k) ?? 0) - perMinute));
      }
    }
  }

  /** p99 of the storage commits since the last update (0 when there were none). */
  private commitP99(): number {
    const h = this.core.stats.storeCommit;
    const now = h.counts.slice();
    const prev = this.prevCommit;
    this.prevCommit = now;
    const d = new Histogram(h.bounds);
    for (let i = 0; i < now.length; i++) {
      d.counts[i] = now[i]! - (prev?.[i] ?? 0);
      d.count += d.counts[i]!;
    }
    return d.count > 0 ? d.quantile(0.99) : 0;
  }

  private listen(): void {
    this.unlisten = this.core.presence.listen({
      connected: (c) => this.presence(c, undefined, 0),
      disconnected: (c, reason, at) => this.presence(c, reason, at),
    });
  }

  /**
   * Published on the next microtask: the connection that reports itself may be inside the
   * session registry (a takeover) or the router, which a nested publish must not re-enter.
   */
  private presence(c: ClientInfo, closed: CloseKind | undefined, at: number): void {
    const event = closed === undefined ? 'connected' : 'disconnected';
    const topic = `$SYS/brokers/${this.opts.node}/clients/${presenceTopicId(c.clientId)}/${event}`;
    // Nobody listening (the usual case): no JSON, no message. Not retained, so nothing is missed.
    if (!this.core.router.hasReceivers(topic)) return;
    const body = JSON.stringify(closed === undefined ? this.connectedPayload(c) : this.disconnectedPayload(c, closed, at));
    queueMicrotask(() => this.publish(topic, body, false));
  }

  /** What EMQX's connected and disconnected events both carry. */
  private clientFields(c: ClientInfo): Record<string, unknown> {
    return {
      clientid: c.clientId,
      username: c.username ?? null,
      ipaddress: hostOf(c.remoteAddress),
      sockport: c.localPort,
      proto_name: c.protocol === 'mqtt' ? (c.protoVer === 3 ? 'MQIsdp' : 'MQTT') : 'STOMP',
      proto_ver: c.protoVer,
    };
  }

  private connectedPayload(c: ClientInfo): object {
    return {
      ...this.clientFields(c),
      keepalive: c.keepalive,
      clean_start: c.cleanStart,
      expiry_interval: c.expiryInterval,
      connack: 0,
      connected_at: c.connectedAt,
      ts: Date.now(),
      protocol: c.protocol,
      listener: c.listener,
    };
  }

  private disconnectedPayload(c: ClientInfo, reason: CloseKind, at: number): object {
    return {
      ...this.clientFields(c),
      reason,
      connected_at: c.connectedAt,
      disconnected_at: at,
      ts: at,
      protocol: c.protocol,
      listener: c.listener,
    };
  }

  private publish(topic: string, payload: string, retain: boolean): void {
    const draft: MessageDraft = { topic, payload: Buffer.from(payload, 'utf8'), qos: 0, retain, props: NO_PROPS, origin: ORIGIN };
    this.core.router.publish(draft, retain ? INTERNAL_RETAINED : INTERNAL);
  }
}

/** `1.2.3.4:5678` or `[::1]:5678` / `::1:5678` -> the address. */
function hostOf(remote: string): string {
  const i = remote.lastIndexOf(':');
  const host = i < 0 ? remote : remote.slice(0, i);
  return host.startsWith('::ffff:') ? host.slice(7) : host.replace(/^\[|\]$/g, '');
}
