/**
 * The Prometheus registry behind `GET /metrics`: exactly the `junction_*` families of
 * operations.md "Metrics" plus prom-client's default process metrics, in text format 0.0.4.
 *
 * Nothing here runs on the message path. Counters and histograms live in core Stats as plain
 * numbers and arrays (an indexed add per event); every family reads them in its `collect()` when
 * scraped. Gauges are summed from the core at that moment (readings.ts).
 *
 * Labels come only from closed sets: listener names from the config, protocols, versions, QoS,
 * and the reason enums of stats.ts. Every label set is present from the start with 0, so a rate
 * over a series born mid-burst never starts at NaN.
 */
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Core } from '../../core/core.js';
import type { Queue } from '../../core/queues.js';
import {
  CLOSE_REASONS,
  DEAD_LETTER_REASONS,
  DENY_ACTIONS,
  MESSAGE_SOURCES,
  MQTT_VERSIONS,
  REJECT_REASONS,
  STOMP_CLIENT_FRAMES,
  STOMP_SERVER_FRAMES,
  STOMP_VERSIONS,
  type EndpointStats,
  type Histogram as CoreHistogram,
  type Stats,
} from '../../core/stats.js';
import { listenersOf, type Config, type ListenerConfig } from '../config.js';
import { readGauges, type Gauges } from './readings.js';

type Labels = Record<string, string>;
type Series = Iterable<readonly [Labels, number]>;

/** MQTT packet types by their 4-bit code, as the `type` label spells them. */
const MQTT_TYPES: Readonly<Record<number, string>> = {
  1: 'connect',
  2: 'connack',
  3: 'publish',
  4: 'puback',
  5: 'pubrec',
  6: 'pubrel',
  7: 'pubcomp',
  8: 'subscribe',
  9: 'suback',
  10: 'unsubscribe',
  11: 'unsuback',
  12: 'pingreq',
  13: 'pingresp',
  14: 'disconnect',
  15: 'auth',
};
/** What a client may send, and what the broker sends: only these series exist. */
const MQTT_IN = [1, 3, 4, 5, 6, 7, 8, 10, 12, 14, 15];
const MQTT_OUT = [2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15];

export const DROP_REASONS = ['no_subscribers', 'queue_full', 'inflight_full', 'expired', 'too_large', 'not_authorized', 'qos0_offline', 'max_length'] as const;

/** The counter behind each `junction_messages_dropped_total{reason}`. */
export function dropCounts(s: Stats): Record<(typeof DROP_REASONS)[number], number> {
  return {
    no_subscribers: s.noSubscribers,
    queue_full: s.queueDropped,
    inflight_full: s.qos0Dropped,
    expired: s.expired,
    too_large: s.oversizeDropped,
    not_authorized: s.publishDropped,
    qos0_offline: s.qos0Offline,
    max_length: s.maxLengthDropped,
  };
}

/** Protocols a listener's connections can speak. */
function protocolsOf(l: ListenerConfig): Array<'mqtt' | 'stomp'> {
  if (l.protocol !== 'http') return [l.protocol];
  const out: Array<'mqtt' | 'stomp'> = [];
  if (l.websocket?.mqttPath !== false) out.push('mqtt');
  if (l.websocket?.stompPath !== false) out.push('stomp');
  return out;
}

/**
 * A histogram whose counts live in core `Histogram`s (cheap on the hot path), exported as
 * Prometheus's cumulative buckets when scraped. prom-client asks `getForPromString` for the text.
 */
class ReadHistogram extends Histogram<string> {
  constructor(
    private readonly meta: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[] },
    registry: Registry,
    private readonly read: () => Iterable<readonly [Labels, CoreHistogram]>,
  ) {
    super({ name: meta.name, help: meta.help, labelNames: [...meta.labelNames], buckets: [...meta.buckets], registers: [registry] });
  }

  getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: unknown[] }> {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    const { name } = this.meta;
    for (const [labels, h] of this.read()) {
      let acc = 0;
      for (let i = 0; i < h.bounds.length; i++) {
        acc += h.counts[i]!;
        values.push({ labels: { ...labels, le: h.bounds[i]! }, value: acc, metricName: `${name}_bucket` });
      }
      values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${name}_bucket` });
      values.push({ labels, value: h.sum, metricName: `${name}_sum` });
      values.push({ labels, value: h.count, metricName: `${name}_count` });
    }
    return Promise.resolve({ name, help: this.meta.help, type: 'histogram', aggregator: 'sum', values });
  }
}

export interface MetricsSources {
  readonly core: Core;
  readonly config: Config;
  readonly version: string;
  /** Certificate notAfter (ms since epoch) of each TLS listener, read at scrape. */
  readonly certificates: () => ReadonlyArray<readonly [listener: string, notAfter: number]>;
  /** The data directory of a disk store (store size), if any. */
  readonly dataDir?: string;
  /** metrics.perObjectMaxQueues in force (it applies on reload). */
  readonly perObjectMaxQueues: () => number;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  /** Per-queue series (`/metrics/per-object`), kept apart so /metrics stays bounded. */
  readonly perObject = new Registry();
  private storeSize = { at: 0, bytes: 0 };
  /** Sessions and queues summed once per scrape, before the families read them. */
  private gauges: Gauges;
  /** The queues /metrics/per-object shows, chosen once per scrape. */
  private top: Queue[] = [];

  constructor(
    private readonly src: MetricsSources,
    opts: { readonly processMetrics?: boolean } = {},
  ) {
    const { core, config } = src;
    const stats = core.stats;
    this.gauges = readGauges(core);
    // Every configured listener's series exist from the start, at 0.
    for (const l of listenersOf(config)) {
      for (const p of protocolsOf(l)) stats.endpoint(l.name, p);
      stats.rejectsOf(l.name);
    }
    this.define(stats);
    this.definePerObject();
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** `/metrics` in text format 0.0.4. */
  text(): Promise<string> {
    this.gauges = readGauges(this.src.core);
    return this.registry.metrics();
  }

  perObjectText(): Promise<string> {
    this.refreshTop();
    return this.perObject.metrics();
  }

  get contentType(): string {
    return Registry.PROMETHEUS_CONTENT_TYPE;
  }

  private counter(name: string, help: string, labelNames: readonly string[], read: () => Series): void {
    const c: Counter<string> = new Counter({
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      collect: () => {
        c.reset();
        for (const [labels, v] of read()) c.inc(labels, v);
      },
    });
  }

  private gauge(name: string, help: string, labelNames: readonly string[], read: () => Series, registry = this.registry): void {
    const g: Gauge<string> = new Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      collect: () => {
        g.reset();
        for (const [labels, v] of read()) g.set(labels, v);
      },
    });
  }

  private define(stats: Stats): void {
    const { core, version } = this.src;
    const endpoints = (): EndpointStats[] => [...stats.endpoints.values()];
    const gauges = (): Gauges => this.gauges;

    this.gauge('junction_build_info', 'Build identity: the Junction and Node.js versions (always 1).', ['version', 'node_version'], () => [[{ version, node_version: process.version }, 1]]);
    this.gauge('junction_connections', 'Open client connections (CONNECT accepted).', ['listener', 'protocol', 'version'], function* () {
      for (const e of endpoints()) {
        const versions = e.protocol === 'mqtt' ? MQTT_VERSIONS : STOMP_VERSIONS;
        for (let i = 0; i < versions.length; i++) yield [{ listener: e.listener, protocol: e.protocol, version: versions[i]! }, e.open[i]!];
      }
    });
    this.counter('junction_connections_opened_total', 'Client connections accepted (CONNECT answered with success).', ['listener', 'protocol'], function* () {
      for (const e of endpoints()) yield [{ listener: e.listener, protocol: e.protocol }, e.opened];
    });
    this.counter('junction_connections_closed_total', 'Accepted client connections that closed, by reason.', ['listener', 'protocol', 'reason'], function* () {
      for (const e of endpoints()) for (let i = 0; i < CLOSE_REASONS.length; i++) yield [{ listener: e.listener, protocol: e.protocol, reason: CLOSE_REASONS[i]! }, e.closed[i]!];
    });
    this.counter('junction_connections_rejected_total', 'Connections refused at accept, TLS handshake or CONNECT, by reason.', ['listener', 'reason'], function* () {
      for (const [listener, r] of stats.rejectedAt) for (let i = 0; i < REJECT_REASONS.length; i++) yield [{ listener, reason: REJECT_REASONS[i]! }, r[i]!];
    });
    this.counter('junction_authorization_denied_total', 'Publishes, subscriptions and deliveries the ACL refused.', ['action'], () =>
      DENY_ACTIONS.map((action, i) => [{ action }, stats.deniedBy[i]!] as const),
    );
    this.gauge('junction_sessions', 'Sessions held by the broker: online (a connection attached) or offline (waiting for its client).', ['state'], () => {
      const g = gauges();
      return [
        [{ state: 'online' }, g.sessionsOnline],
        [{ state: 'offline' }, g.sessionsOffline],
      ];
    });
    this.counter('junction_sessions_expired_total', 'Sessions ended by their expiry interval.', [], () => [[{}, stats.sessionsExpired]]);
    this.counter('junction_messages_received_total', 'Application messages in, by where they came from and QoS.', ['protocol', 'qos'], function* () {
      for (let s = 0; s < MESSAGE_SOURCES.length; s++) for (let q = 0; q < 3; q++) yield [{ protocol: MESSAGE_SOURCES[s]!, qos: String(q) }, stats.received[s * 3 + q]!];
    });
    this.counter('junction_messages_delivered_total', 'Application messages written to subscribers and consumers, by their protocol and QoS.', ['protocol', 'qos'], function* () {
      for (let s = 0; s < 2; s++) for (let q = 0; q < 3; q++) yield [{ protocol: MESSAGE_SOURCES[s]!, qos: String(q) }, stats.delivered[s * 3 + q]!];
    });
    this.counter('junction_messages_dropped_total', 'Messages not delivered, by reason.', ['reason'], () => Object.entries(dropCounts(stats)).map(([reason, v]) => [{ reason }, v] as const));
    this.counter('junction_messages_dead_lettered_total', 'Queue messages moved to a dead-letter queue, by reason.', ['reason'], () =>
      DEAD_LETTER_REASONS.map((reason, i) => [{ reason }, stats.deadLetteredBy[i]!] as const),
    );
    this.counter('junction_messages_redelivered_total', 'Deliveries resent after a missing acknowledgement or a reconnect.', ['protocol'], () =>
      [0, 1].map((i) => [{ protocol: MESSAGE_SOURCES[i]! }, stats.redeliveredBy[i]!] as const),
    );
    this.gauge('junction_messages_retained', 'Retained messages.', [], () => [[{}, core.router.retained.size]]);
    this.gauge('junction_messages_inflight', 'Deliveries sent and awaiting acknowledgement.', [], () => [[{}, gauges().inflight]]);
    this.gauge('junction_session_queue_messages', 'Messages queued for offline or slow sessions.', [], () => [[{}, gauges().sessionQueued]]);
    this.counter('junction_bytes_received_total', 'Bytes read from client sockets.', ['listener', 'protocol'], function* () {
      for (const e of endpoints()) yield [{ listener: e.listener, protocol: e.protocol }, e.bytesIn];
    });
    this.counter('junction_bytes_sent_total', 'Bytes written to client sockets.', ['listener', 'protocol'], function* () {
      for (const e of endpoints()) yield [{ listener: e.listener, protocol: e.protocol }, e.bytesOut];
    });
    this.counter('junction_packets_received_total', 'MQTT packets and STOMP frames received, by type.', ['protocol', 'type'], function* () {
      for (const t of MQTT_IN) yield [{ protocol: 'mqtt', type: MQTT_TYPES[t]! }, stats.mqttPacketsIn[t]!];
      for (let i = 0; i < STOMP_CLIENT_FRAMES.length; i++) yield [{ protocol: 'stomp', type: STOMP_CLIENT_FRAMES[i]!.toLowerCase() }, stats.stompFramesIn[i]!];
    });
    this.counter('junction_packets_sent_total', 'MQTT packets and STOMP frames sent, by type.', ['protocol', 'type'], function* () {
      for (const t of MQTT_OUT) yield [{ protocol: 'mqtt', type: MQTT_TYPES[t]! }, stats.mqttPacketsOut[t]!];
      for (let i = 0; i < STOMP_SERVER_FRAMES.length; i++) yield [{ protocol: 'stomp', type: STOMP_SERVER_FRAMES[i]!.toLowerCase() }, stats.stompFramesOut[i]!];
    });
    this.gauge('junction_subscriptions', 'Subscriptions in the topic index, by kind (queue consumers are junction_queue_consumers).', ['kind'], () => [
      [{ kind: 'exact' }, stats.subscriptionsExact],
      [{ kind: 'wildcard' }, stats.subscriptionsWildcard],
      [{ kind: 'shared' }, stats.subscriptionsShared],
    ]);
    this.gauge('junction_topic_filters', 'Distinct topic filters in the topic index.', [], () => [[{}, core.router.filterCount]]);
    this.gauge('junction_queues', 'Queues, by kind.', ['kind'], () => [
      [{ kind: 'normal' }, gauges().queues],
      [{ kind: 'dlq' }, gauges().dlqs],
    ]);
    this.gauge('junction_queue_messages', 'Messages in all queues, by state (delayed: held by $delayed/ or x-delay).', ['state'], () => [
      [{ state: 'ready' }, gauges().queueReady],
      [{ state: 'unacked' }, gauges().queueUnacked],
      [{ state: 'delayed' }, gauges().delayed],
    ]);
    this.gauge('junction_queue_consumers', 'Consumers of all queues.', [], () => [[{}, gauges().queueConsumers]]);

    const registry = this.registry;
    new ReadHistogram(
      {
        name: 'junction_message_delivery_latency_seconds',
        help: 'Publish received to the message written to the subscriber (pub/sub only; queue waits and retained deliveries excluded).',
        labelNames: ['qos'],
        buckets: stats.deliveryLatency[0].bounds,
      },
      registry,
      () => stats.deliveryLatency.map((h, q) => [{ qos: String(q) }, h] as const),
    );
    const ackSeries: ReadonlyArray<readonly [Labels, CoreHistogram]> = [
      [{ protocol: 'mqtt', qos: '1' }, stats.ackLatency[1]!],
      [{ protocol: 'mqtt', qos: '2' }, stats.ackLatency[2]!],
      [{ protocol: 'stomp', qos: '0' }, stats.ackLatency[3]!],
      [{ protocol: 'stomp', qos: '1' }, stats.ackLatency[4]!],
    ];
    new ReadHistogram(
      {
        name: 'junction_publish_ack_latency_seconds',
        help: 'Publish received to PUBACK/PUBREC/RECEIPT written, including the synchronous storage commit.',
        labelNames: ['protocol', 'qos'],
        buckets: stats.ackLatency[1]!.bounds,
      },
      registry,
      () => ackSeries,
    );
    new ReadHistogram(
      { name: 'junction_store_commit_duration_seconds', help: 'Storage write-batch commits (with sync, when storage.sync is on).', labelNames: [], buckets: stats.storeCommit.bounds },
      registry,
      () => [[{}, stats.storeCommit]],
    );
    new ReadHistogram(
      { name: 'junction_store_batch_operations', help: 'Operations per storage write batch.', labelNames: [], buckets: stats.storeBatchOps.bounds },
      registry,
      () => [[{}, stats.storeBatchOps]],
    );
    this.gauge('junction_store_size_bytes', 'Size of the storage engine files on disk (0 for the memory store).', [], () => [[{}, this.storeBytes()]]);
    this.gauge('junction_tls_certificate_expiry_timestamp_seconds', 'notAfter of each TLS listener certificate, in seconds since the epoch.', ['listener'], () =>
      this.src.certificates().map(([listener, notAfter]) => [{ listener }, Math.floor(notAfter / 1000)] as const),
    );
    this.gauge('junction_config_last_reload_successful', 'Whether the last configuration reload succeeded (1) or failed (0).', [], () => [[{}, stats.lastReloadSuccessful ? 1 : 0]]);
    this.gauge('junction_config_last_reload_success_timestamp_seconds', 'When the configuration was last loaded successfully (start or reload), seconds since the epoch.', [], () => [
      [{}, Math.floor(stats.lastReloadSuccessAt / 1000)],
    ]);
    this.counter('junction_config_reloads_total', 'Configuration reload attempts, by result.', ['result'], () => [
      [{ result: 'success' }, stats.reloadsSucceeded],
      [{ result: 'failure' }, stats.reloadsFailed],
    ]);
    this.gauge('junction_traces_active', 'Traces running.', [], () => [[{}, stats.tracesActive]]);
  }

  private definePerObject(): void {
    const queues = (): Queue[] => this.top;
    const r = this.perObject;
    this.gauge(
      'junction_queue_messages',
      'Messages in each queue, by state.',
      ['queue', 'state'],
      function* () {
        for (const q of queues()) {
          yield [{ queue: q.name, state: 'ready' }, q.depth - q.unacked];
          yield [{ queue: q.name, state: 'unacked' }, q.unacked];
        }
      },
      r,
    );
    this.gauge('junction_queue_consumers', 'Consumers of each queue.', ['queue'], () => queues().map((q) => [{ queue: q.name }, q.consumerCount] as const), r);
    this.gauge(
      'junction_queue_head_message_timestamp_seconds',
      'When the oldest ready message of each queue was published, seconds since the epoch (queues with ready messages only).',
      ['queue'],
      function* () {
        for (const q of queues()) {
          const head = q.browse().next();
          if (!head.done) yield [{ queue: q.name }, head.value.message.createdAt / 1000];
        }
      },
      r,
    );
  }

  /** The queues to show: all of them by name, or past metrics.perObjectMaxQueues the deepest ones. */
  private refreshTop(): void {
    const all = [...this.src.core.router.queues.queues.values()];
    const max = this.src.perObjectMaxQueues();
    const byName = (a: Queue, b: Queue): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    this.top = all.length <= max ? all.sort(byName) : all.sort((a, b) => b.depth - a.depth || byName(a, b)).slice(0, max);
  }

  /** Bytes of the storage engine's files, read at most every 10 s (a directory walk). */
  private storeBytes(): number {
    const dir = this.src.dataDir;
    if (dir === undefined) return 0;
    const now = Date.now();
    if (now - this.storeSize.at < 10_000) return this.storeSize.bytes;
    let bytes = 0;
    const walk = (d: string, depth: number): void => {
      let names: string[];
      try {
        names = readdirSync(d);
      } catch {
        return;
      }
      for (const n of names) {
        try {
          const st = statSync(join(d, n));
          if (st.isDirectory()) {
            if (depth < 2) walk(join(d, n), depth + 1);
          } else bytes += st.size;
        } catch {
          // a file removed by a compaction meanwhile
        }
      }
    };
    walk(dir, 0);
    this.storeSize = { at: now, bytes };
    return bytes;
  }
}
