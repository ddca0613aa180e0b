/**
 * Readings: the broker's state summed the way /metrics, the stats stream and $SYS report it. Gauges
 * are read from the core when asked (a walk over sessions and queues, once a scrape or a second),
 * never kept up to date on the message path; counters are the plain numbers in Stats.
 */
import type { Core } from '../../core/core.js';
import { DLQ_PREFIX } from '../../core/queues.js';
import { MESSAGE_SOURCES, type Stats } from '../../core/stats.js';

export interface Gauges {
  readonly sessionsOnline: number;
  readonly sessionsOffline: number;
  /** Sessions that outlive their connection (expiry > 0), connected or not. */
  readonly sessionsPersistent: number;
  readonly inflight: number;
  /** Messages waiting in session queues (offline sessions, full windows). */
  readonly sessionQueued: number;
  /** Payload bytes of the messages held for sessions (in flight and queued); 0 unless asked for. */
  readonly sessionQueuedBytes: number;
  readonly queues: number;
  readonly dlqs: number;
  readonly queueReady: number;
  readonly queueUnacked: number;
  /** Messages in dead-letter queues (ready + unacked). */
  readonly dlqMessages: number;
  readonly queueConsumers: number;
  /** Messages held back by `$delayed/` or `x-delay`. */
  readonly delayed: number;
  readonly retained: number;
  /** Payload bytes of the retained messages outside `$` topics; 0 unless asked for. */
  readonly retainedBytes: number;
}

/** `bytes`: also sum payload bytes (a walk over every held message: only for $SYS's store figures). */
export function readGauges(core: Core, bytes = false): Gauges {
  let online = 0;
  let offline = 0;
  let persistent = 0;
  let inflight = 0;
  let queued = 0;
  let heldBytes = 0;
  for (const s of core.sessions.sessions.values()) {
    if (s.attached) online++;
    else offline++;
    if (s.expiryInterval > 0) persistent++;
    inflight += s.inflight.size;
    queued += s.queued;
    if (bytes && (s.inflight.size > 0 || s.queued > 0)) for (const p of s.owed()) heldBytes += p.message.payload.length;
  }
  let queues = 0;
  let dlqs = 0;
  let ready = 0;
  let unacked = 0;
  let dlqMessages = 0;
  let consumers = 0;
  for (const q of core.router.queues.queues.values()) {
    const dlq = q.name.startsWith(DLQ_PREFIX);
    if (dlq) {
      dlqs++;
      dlqMessages += q.depth;
    } else queues++;
    ready += q.depth - q.unacked;
    unacked += q.unacked;
    consumers += q.consumerCount;
  }
  let retainedBytes = 0;
  if (bytes) core.router.retained.match('#', (m) => (retainedBytes += m.payload.length), Date.now());
  return {
    sessionsOnline: online,
    sessionsOffline: offline,
    sessionsPersistent: persistent,
    inflight,
    sessionQueued: queued,
    sessionQueuedBytes: heldBytes,
    queues,
    dlqs,
    queueReady: ready,
    queueUnacked: unacked,
    dlqMessages,
    queueConsumers: consumers,
    delayed: core.router.delayed.size,
    retained: core.router.retained.size,
    retainedBytes,
  };
}

/** Sum of a per-(source, qos) array over the sources named. */
export function sumBySource(a: Float64Array, sources: readonly (typeof MESSAGE_SOURCES)[number][] = MESSAGE_SOURCES): number {
  let n = 0;
  for (const src of sources) {
    const i = MESSAGE_SOURCES.indexOf(src) * 3;
    n += a[i]! + a[i + 1]! + a[i + 2]!;
  }
  return n;
}

export function sum(a: Float64Array): number {
  let n = 0;
  for (const v of a) n += v;
  return n;
}

/** Every message dropped, whatever the reason (junction_messages_dropped_total summed). */
export function droppedTotal(s: Stats): number {
  return s.noSubscribers + s.queueDropped + s.qos0Dropped + s.expired + s.oversizeDropped + s.publishDropped + s.qos0Offline + s.maxLengthDropped;
}

/** Open connections per protocol. */
export function connectionsByProtocol(s: Stats): { mqtt: number; stomp: number } {
  const out = { mqtt: 0, stomp: 0 };
  for (const e of s.endpoints.values()) out[e.protocol] += sum(e.open);
  return out;
}
