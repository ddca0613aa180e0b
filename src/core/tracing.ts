/**
 * Tracing: the hooks through which the core and the adapters tell running traces (EMQX's traces
 * by client id, topic filter or IP address) what happens to a client or a topic. The server's
 * TraceManager (src/server/traces) decides which trace wants an event and writes it.
 *
 * Invariant: with no trace running, a hook costs one boolean read at its call site:
 *   if (core.tracing.on) core.tracing.emit('deliver', { clientId, peer, topic }, { qos, payload });
 * Fields are built only inside that `if`.
 */

/** In the order a message meets them. */
export const TRACE_EVENTS = ['connect', 'connack', 'subscribe', 'publish.in', 'route', 'deliver', 'ack', 'drop', 'dead_letter', 'disconnect'] as const;
export type TraceEvent = (typeof TRACE_EVENTS)[number];

/** What a trace is matched on: its client, its peer's address (host:port), its topic. */
export interface TraceSubject {
  readonly clientId?: string | undefined;
  readonly peer?: string | undefined;
  readonly topic?: string | undefined;
}

export type TraceFields = Readonly<Record<string, unknown>>;

export interface TraceSink {
  record(evt: TraceEvent, subject: TraceSubject, fields: TraceFields): void;
}

export class Tracing {
  /** True while at least one trace runs: the only thing a hook reads when none does. */
  on = false;
  private sink: TraceSink | undefined;

  /** The sink to tell, and whether anything is listening (set by the trace manager). */
  set(sink: TraceSink | undefined, on: boolean): void {
    this.sink = sink;
    this.on = on && sink !== undefined;
  }

  emit(evt: TraceEvent, subject: TraceSubject, fields: TraceFields = {}): void {
    this.sink?.record(evt, subject, fields);
  }
}
