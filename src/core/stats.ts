/**
 * Stats: plain counters the core and adapters bump on their paths; metrics and $SYS read them.
 * Numbers only, no labels beyond the closed sets named here, so bumping costs one add.
 */
import type { Message, Qos } from './message.js';

export class Stats {
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  publishDropped = 0;
  /** Messages dropped because a session queue was full. */
  queueDropped = 0;
  /** QoS 0 messages dropped because the receiver's socket was over its buffer limit. */
  qos0Dropped = 0;
  /** Messages dropped because they expired before delivery. */
  expired = 0;
  /** Messages not sent because they exceeded the client's Maximum Packet Size. */
  oversizeDropped = 0;
  storageErrors = 0;
  /** Failed logins (bad credentials, not authorized), banned attempts, and lockouts started. */
  authFailures = 0;
  authBanned = 0;
  authBans = 0;
  authReloadFailures = 0;
  /** Publishes, subscriptions and deliveries an ACL refused. */
  aclDenied = 0;
  /** Queue entries handed back for another delivery (consumer gone, NACK). */
  redelivered = 0;
  /** Queue entries moved to a dead-letter queue. */
  deadLettered = 0;
  connectionsAccepted = 0;
  connectionsRejected = 0;
  protocolErrors = 0;
  /** TLS handshakes that failed or whose client certificate was refused (wrong CA, expired, missing, plain TCP). */
  tlsHandshakeFailures = 0;

  // Limits (README "Limits"): each refusal or disconnect counted once, at the place it happens.
  /** Connections closed at accept: the broker's or the listener's maximum was reached. */
  refusedMaxConnections = 0;
  /** Connections closed at accept: their source address had its maximum. */
  refusedPerAddress = 0;
  /** Connections closed at accept: the listener's connect rate was exceeded. */
  refusedConnectRate = 0;
  /** Connections closed because no valid CONNECT came within the connect timeout. */
  connectTimeouts = 0;
  /** MQTT packets and STOMP frames (or their header lines) over the size limits. */
  packetsTooLarge = 0;
  /** Topic names, filters and destinations over maxTopicLength or maxTopicLevels. */
  topicLimitRefused = 0;
  /** CONNECTs refused for a client identifier over maxClientIdLength. */
  clientIdTooLong = 0;
  /** Subscriptions refused because the client had limits.maxSubscriptions. */
  subscriptionsRefused = 0;
  /** Times a client's publish rate ran over limits.publishRate (reading paused, or disconnected). */
  publishRateLimited = 0;
  /** Connections closed because their output stayed over the buffer limit for the drain timeout. */
  slowConsumers = 0;

  // Metrics (operations.md "Metrics"): counters by the closed label sets below, bumped where the
  // event happens (one indexed add); src/server/metrics reads them on scrape.
  /** Application messages in, by MESSAGE_SOURCES x qos (index source * 3 + qos). */
  readonly received = new Float64Array(MESSAGE_SOURCES.length * 3);
  /** Application messages written to subscribers or consumers, by MESSAGE_SOURCES x qos. */
  readonly delivered = new Float64Array(MESSAGE_SOURCES.length * 3);
  /** Deliveries resent after a missing ack or a reconnect, by MESSAGE_SOURCES (the receiver's). */
  readonly redeliveredBy = new Float64Array(MESSAGE_SOURCES.length);
  /** Publishes routed to nobody (no subscription, group or bound queue matched). */
  noSubscribers = 0;
  /** QoS 0 messages for an offline session that does not queue them. */
  qos0Offline = 0;
  /** Queue messages refused because the queue was at its maximum length. */
  maxLengthDropped = 0;
  /** Dead letters by DEAD_LETTER_REASONS. */
  readonly deadLetteredBy = new Float64Array(DEAD_LETTER_REASONS.length);
  /** ACL refusals by DENY_ACTIONS. */
  readonly deniedBy = new Float64Array(DENY_ACTIONS.length);
  /** Payload bytes of application messages in and out ($SYS publish/bytes). */
  publishBytesIn = 0;
  publishBytesOut = 0;
  /** MQTT packets by type (the fixed header's 4 bits) in and out. */
  readonly mqttPacketsIn = new Float64Array(16);
  readonly mqttPacketsOut = new Float64Array(16);
  /** STOMP frames by STOMP_CLIENT_FRAMES / STOMP_SERVER_FRAMES. */
  readonly stompFramesIn = new Float64Array(STOMP_CLIENT_FRAMES.length);
  readonly stompFramesOut = new Float64Array(STOMP_SERVER_FRAMES.length);
  /** Subscriptions in the topic index by kind; queue consumers are counted by their queues. */
  subscriptionsExact = 0;
  subscriptionsWildcard = 0;
  subscriptionsShared = 0;
  sessionsExpired = 0;
  /** Socket-level counters per listener and protocol, created on first use. */
  readonly endpoints = new Map<string, EndpointStats>();
  /** Delivery latency (publish received -> written to the subscriber) by qos, seconds. */
  readonly deliveryLatency = [new Histogram(LATENCY_BUCKETS), new Histogram(LATENCY_BUCKETS), new Histogram(LATENCY_BUCKETS)] as const;
  /** Publish -> PUBACK/PUBREC/RECEIPT by ACK_LATENCY_SERIES (index protocol * 3 + qos). */
  readonly ackLatency = Array.from({ length: 6 }, () => new Histogram(LATENCY_BUCKETS));
  /** Store write-batch commits (with sync): seconds, and operations per batch. */
  readonly storeCommit = new Histogram(COMMIT_BUCKETS);
  readonly storeBatchOps = new Histogram(BATCH_BUCKETS);
  /** Share of deliveries whose latency is observed (metrics.deliveryLatencySampleRate). */
  latencySampleRate = 1;
  /** Config reloads (the reload path sets these). */
  reloadsSucceeded = 0;
  reloadsFailed = 0;
  lastReloadSuccessful = true;
  /** ms since epoch of the last successful reload, or the start. */
  lastReloadSuccessAt = Date.now();
  /** Running traces (the trace registry sets this). */
  tracesActive = 0;

  /** Refused connections per listener, by REJECT_REASONS. */
  readonly rejectedAt = new Map<string, Float64Array>();

  /** The counters of connections on `listener` speaking `protocol`. */
  endpoint(listener: string, protocol: 'mqtt' | 'stomp'): EndpointStats {
    const key = `${listener}\u0000${protocol}`;
    let e = this.endpoints.get(key);
    if (!e) {
      e = new EndpointStats(listener, protocol, this.rejectsOf(listener));
      this.endpoints.set(key, e);
    }
    return e;
  }

  /** The refusal counters of `listener` (one array per listener, whatever the protocol). */
  rejectsOf(listener: string): Float64Array {
    let r = this.rejectedAt.get(listener);
    if (!r) {
      r = new Float64Array(REJECT_REASONS.length);
      this.rejectedAt.set(listener, r);
    }
    return r;
  }

  /** A connection refused by `listener` (at accept, TLS handshake, or CONNECT). */
  reject(listener: string, reason: RejectKind): void {
    this.rejectsOf(listener)[REJECT_INDEX[reason]]!++;
  }

  /** A configuration reload ended (junction_config_* metrics). */
  noteReload(ok: boolean, at = Date.now()): void {
    if (ok) {
      this.reloadsSucceeded++;
      this.lastReloadSuccessAt = at;
    } else this.reloadsFailed++;
    this.lastReloadSuccessful = ok;
  }

  /** Delivery latency of one message written now (skipped by the sample rate). */
  observeDelivery(msg: Message, qos: Qos): void {
    const rate = this.latencySampleRate;
    if (rate < 1 && (rate <= 0 || Math.random() >= rate)) return;
    const ms = msg.stampedAt !== undefined ? clock() - msg.stampedAt : Date.now() - msg.createdAt;
    this.deliveryLatency[qos].observe(ms / 1000);
  }

  /** Publish received at `since` (clock()) and acknowledged now. */
  observeAck(protocol: 'mqtt' | 'stomp', qos: Qos, since: number): void {
    const rate = this.latencySampleRate;
    if (rate < 1 && (rate <= 0 || Math.random() >= rate)) return;
    this.ackLatency[(protocol === 'mqtt' ? 0 : 3) + qos]!.observe((clock() - since) / 1000);
  }
}

let runNow = -1;
const endRun = (): void => {
  runNow = -1;
};

/**
 * performance.now() read once per synchronous run of the event loop (reset at the next microtask
 * checkpoint): a fan-out to 100 subscribers, or a chunk of 50 PUBLISH packets, costs one clock
 * read, not one each. A clock read is a system call on some virtual machines (200+ ns), which per
 * delivery would cost a fan-out a large share of its throughput. Latencies are then measured from
 * the run that took the message in to the run that wrote it: 0 when both are the same run (it is
 * under the first bucket), exact when it waited (a full window, a queue, an offline session, a
 * storage commit before an acknowledgement).
 */
export function clock(): number {
  if (runNow < 0) {
    runNow = performance.now();
    queueMicrotask(endRun);
  }
  return runNow;
}

/** Where a message came from, for the message counters: an adapter, the admin API, or the broker. */
export const MESSAGE_SOURCES = ['mqtt', 'stomp', 'http', 'internal'] as const;
export type MessageSource = (typeof MESSAGE_SOURCES)[number];
export const SOURCE_INDEX: Readonly<Record<MessageSource, number>> = { mqtt: 0, stomp: 1, http: 2, internal: 3 };

export const DEAD_LETTER_REASONS = ['rejected', 'expired', 'max_deliveries', 'max_length'] as const;
export type DeadLetterKind = (typeof DEAD_LETTER_REASONS)[number];
export const DENY_ACTIONS = ['publish', 'subscribe', 'deliver'] as const;

/** Why an open connection closed (junction_connections_closed_total, presence events). */
export const CLOSE_REASONS = [
  'client_disconnect',
  'keepalive_timeout',
  'protocol_error',
  'socket_error',
  'kicked',
  'takeover',
  'auth_revoked',
  'slow_consumer',
  'server_shutdown',
] as const;
export type CloseKind = (typeof CLOSE_REASONS)[number];

/** Why a connection was refused (junction_connections_rejected_total). */
export const REJECT_REASONS = [
  'max_connections',
  'bad_credentials',
  'not_authorized',
  'banned',
  'unsupported_protocol',
  'client_id_rejected',
  'tls_handshake',
  'draining',
] as const;
export type RejectKind = (typeof REJECT_REASONS)[number];
const REJECT_INDEX = Object.fromEntries(REJECT_REASONS.map((r, i) => [r, i])) as Record<RejectKind, number>;

/** Protocol versions as the `version` label spells them. */
export const MQTT_VERSIONS = ['3.1', '3.1.1', '5'] as const;
export const STOMP_VERSIONS = ['1.0', '1.1', '1.2'] as const;

export const STOMP_CLIENT_FRAMES = ['CONNECT', 'STOMP', 'SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'BEGIN', 'COMMIT', 'ABORT', 'DISCONNECT'] as const;
export const STOMP_SERVER_FRAMES = ['CONNECTED', 'MESSAGE', 'RECEIPT', 'ERROR'] as const;
const STOMP_IN_INDEX = new Map<string, number>(STOMP_CLIENT_FRAMES.map((c, i) => [c, i]));
/** Index of a client frame's command in `stompFramesIn`, or -1 (an unknown command). */
export function stompFrameIndex(command: string): number {
  return STOMP_IN_INDEX.get(command) ?? -1;
}

/** Seconds: .0005 ... 2.5 (12 buckets). */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds: .0001 ... 1 (12 buckets). */
export const COMMIT_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];
/** Operations per batch: 1 ... 1000. */
export const BATCH_BUCKETS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/**
 * A histogram cheap enough for the hot path: a bucket count per bound plus one for +Inf (not
 * cumulative; the exporter sums), a sum and a count. No labels: one instance per label set.
 */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** The last value observed and its bucket: a fan-out observes one latency many times in a row. */
  private lastV = Number.NaN;
  private lastI = 0;

  observe(v: number): void {
    let i = this.lastI;
    if (v !== this.lastV) {
      const b = this.bounds;
      i = 0;
      while (i < b.length && v > b[i]!) i++;
      this.lastV = v;
      this.lastI = i;
    }
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  /** The value below which `q` (0..1) of the observations fall, interpolated within its bucket. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (seen + c >= rank && c > 0) {
        const lower = i === 0 ? 0 : this.bounds[i - 1]!;
        // Past the last bound there is no upper edge: report the last bound, as Prometheus does.
        if (i === this.bounds.length) return lower;
        return lower + (this.bounds[i]! - lower) * ((rank - seen) / c);
      }
      seen += c;
    }
    return this.bounds[this.bounds.length - 1]!;
  }
}

/** Counters of one listener and protocol; each connection keeps a reference to its own. */
export class EndpointStats {
  /** Connections accepted (CONNECT answered with success). */
  opened = 0;
  /** Open connections by protocol version index (MQTT_VERSIONS or STOMP_VERSIONS). */
  readonly open = new Float64Array(3);
  readonly closed = new Float64Array(CLOSE_REASONS.length);
  bytesIn = 0;
  bytesOut = 0;
  constructor(
    readonly listener: string,
    readonly protocol: 'mqtt' | 'stomp',
    /** The listener's refusal counters (shared by its protocols). */
    readonly rejected: Float64Array,
  ) {}

  reject(reason: RejectKind): void {
    this.rejected[REJECT_INDEX[reason]]!++;
  }
}
