/**
 * TraceManager: EMQX-style traces. A trace follows one client id, one topic filter or one IP
 * address for a bounded time (at most an hour) and writes what happens to it as JSON lines in a
 * file of its own (`<dir>/<name>.log`): connect, connack, subscribe, publish.in, route (how many
 * matched), deliver, ack, drop (with the reason), dead_letter, disconnect.
 *
 * Invariants:
 * - While no trace runs, `core.tracing.on` is false and every hook in the core and the adapters
 *   costs one boolean read; this manager sets it whenever a trace starts or stops.
 * - Payloads are hidden unless the trace asks for them (`payload: text | hex`), and then cut at
 *   `payloadLimit` bytes; the size is always given.
 * - At most `trace.maxTraces` traces exist at once (running or stopped: a stopped one keeps its
 *   file until deleted), each file at most `trace.maxFileSize` bytes: a trace that reaches it
 *   stops (`stopReason: "size_limit"`).
 * - Lines are appended with a synchronous write: a trace's file is complete when an event has
 *   happened (tests and operators read it at once), and traced clients are few by design.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../core/log.js';
import type { Stats } from '../../core/stats.js';
import { isTopicError, matches, parseFilter, filtersIntersect } from '../../core/topic.js';
import type { TraceEvent, TraceFields, TraceSink, TraceSubject, Tracing } from '../../core/tracing.js';

export const TRACE_TYPES = ['clientId', 'topic', 'ip'] as const;
export type TraceType = (typeof TRACE_TYPES)[number];
export const PAYLOAD_MODES = ['hidden', 'text', 'hex'] as const;
export type PayloadMode = (typeof PAYLOAD_MODES)[number];
export const MAX_DURATION_SECONDS = 3600;

export interface TraceSpec {
  readonly name: string;
  readonly type: TraceType;
  readonly value: string;
  readonly durationSeconds: number;
  readonly payload: PayloadMode;
  /** Bytes of payload written at most (text or hex). */
  readonly payloadLimit: number;
}

export interface TraceLimits {
  readonly maxTraces: number;
  readonly maxFileSize: number;
  /** Where trace files go; undefined: decided by the broker (data dir, or a temporary directory). */
  readonly dir?: string | undefined;
}

/** A request the manager refuses: HTTP status, code and message for the admin API. */
export class TraceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TraceError';
  }
}

export type StopReason = 'stopped' | 'expired' | 'size_limit' | 'write_error' | 'broker_stopped';

/** What the API shows of a trace. */
export interface TraceView extends TraceSpec {
  readonly status: 'running' | 'stopped';
  readonly startedAt: string;
  readonly endsAt: string;
  readonly stoppedAt: string | null;
  readonly stopReason: StopReason | null;
  /** Bytes in its file, and lines (events) written. */
  readonly size: number;
  readonly events: number;
  readonly file: string;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `::ffff:10.0.0.1:5000` -> 10.0.0.1; `[::1]:5000` and `::1:5000` -> ::1. */
export function hostOf(peer: string): string {
  let h = peer;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (bracket) h = bracket[1]!;
  else if (/:\d+$/.test(h) && (h.split(':').length === 2 || h.startsWith('::ffff:') || /^[0-9a-f:]+:\d+$/i.test(h))) h = h.replace(/:\d+$/, '');
  return h.startsWith('::ffff:') ? h.slice(7) : h;
}

class Trace {
  status: 'running' | 'stopped' = 'running';
  stoppedAt: number | undefined;
  stopReason: StopReason | undefined;
  size = 0;
  events = 0;
  private fd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly listeners = new Set<(event: Record<string, unknown>) => void>();
  /** Told once when the trace stops (SSE streams end). */
  readonly stopListeners = new Set<() => void>();

  constructor(
    readonly spec: TraceSpec,
    readonly file: string,
    readonly startedAt: number,
    private readonly manager: TraceManager,
  ) {
    this.fd = openSync(file, 'w', 0o600);
    this.timer = setTimeout(() => manager.stop(spec.name, 'expired'), spec.durationSeconds * 1000);
    this.timer.unref();
  }

  get endsAt(): number {
    return this.startedAt + this.spec.durationSeconds * 1000;
  }

  /** Whether an event about `subject` belongs in this trace. */
  wants(evt: TraceEvent, s: TraceSubject, filter: string | undefined): boolean {
    switch (this.spec.type) {
      case 'clientId':
        return s.clientId === this.spec.value;
      case 'ip':
        return s.peer !== undefined && hostOf(s.peer) === this.spec.value;
      case 'topic':
        if (s.topic === undefined) return false;
        // A subscription's filter is traced when it can receive what the trace's filter names.
        return evt === 'subscribe' ? filtersIntersect(s.topic, filter!) : matches(s.topic, filter!);
    }
  }

  write(event: Record<string, unknown>, maxFileSize: number): void {
    if (this.fd === undefined) return;
    const line = JSON.stringify(event) + '\n';
    const bytes = Buffer.byteLength(line);
    if (this.size + bytes > maxFileSize) {
      this.manager.stop(this.spec.name, 'size_limit');
      return;
    }
    try {
      writeSync(this.fd, line);
    } catch {
      this.manager.stop(this.spec.name, 'write_error');
      return;
    }
    this.size += bytes;
    this.events++;
    for (const l of this.listeners) l(event);
  }

  end(reason: StopReason): void {
    if (this.status === 'stopped') return;
    this.status = 'stopped';
    this.stoppedAt = Date.now();
    this.stopReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    for (const l of this.stopListeners) l();
    this.stopListeners.clear();
    this.listeners.clear();
  }

  view(): TraceView {
    return {
      ...this.spec,
      status: this.status,
      startedAt: iso(this.startedAt),
      endsAt: iso(this.endsAt),
      stoppedAt: this.stoppedAt === undefined ? null : iso(this.stoppedAt),
      stopReason: this.stopReason ?? null,
      size: this.size,
      events: this.events,
      file: this.file,
    };
  }
}

export class TraceManager implements TraceSink {
  private readonly traces = new Map<string, Trace>();
  /** Topic traces' filters, parsed once. */
  private readonly filters = new Map<string, string>();
  private running: Trace[] = [];
  private dir: string | undefined;
  private tempDir: string | undefined;

  constructor(
    private readonly tracing: Tracing,
    private readonly stats: Stats,
    private readonly log: Logger,
    private limits: TraceLimits,
    /** The directory when `limits.dir` is not set: `<data dir>/traces`, or undefined (memory storage). */
    private readonly defaultDir: string | undefined,
  ) {}

  /** New limits (config reload): they apply to traces started from now on, and to file sizes at once. */
  configure(limits: TraceLimits): void {
    this.limits = limits;
    this.dir = undefined;
  }

  /** Checks `body` (the API's JSON) and starts the trace it describes. */
  create(body: unknown): TraceView {
    const spec = this.validate(body);
    if (this.traces.has(spec.name)) throw new TraceError(409, 'TRACE_EXISTS', `a trace named ${spec.name} exists: delete it first or pick another name`);
    if (this.traces.size >= this.limits.maxTraces) {
      throw new TraceError(409, 'TRACE_LIMIT', `${this.traces.size} traces exist, the most trace.maxTraces allows: delete a stopped one first`);
    }
    const dir = this.directory();
    const trace = new Trace(spec, join(dir, `${spec.name}.log`), Date.now(), this);
    this.traces.set(spec.name, trace);
    if (spec.type === 'topic') this.filters.set(spec.name, spec.value);
    this.refresh();
    this.log.info('trace started', { name: spec.name, type: spec.type, value: spec.value, durationSeconds: spec.durationSeconds, payload: spec.payload, file: trace.file });
    return trace.view();
  }

  list(): TraceView[] {
    return [...this.traces.values()].map((t) => t.view());
  }

  get(name: string): TraceView {
    return this.find(name).view();
  }

  /**
   * Complete lines of the trace's file from byte `offset` (0 or a line start, as `nextOffset`
   * gives), at most `limit` bytes of them; when not one whole line fits in `limit` (a large
   * payload in text or hex) that one line comes alone, so a paging reader always moves on.
   */
  read(name: string, offset: number, limit: number): { events: unknown[]; offset: number; nextOffset: number; size: number; running: boolean } {
    const t = this.find(name);
    const size = t.size;
    const start = Math.min(Math.max(0, offset), size);
    let want = Math.min(limit, size - start);
    let buf = Buffer.alloc(0);
    let end = 0;
    if (want > 0) {
      const fd = openSync(t.file, 'r');
      try {
        // An offset inside a line would give a fragment that is not JSON.
        const before = Buffer.alloc(1);
        if (start > 0 && (readSync(fd, before, 0, 1, start - 1) !== 1 || before[0] !== 0x0a)) {
          throw new TraceError(400, 'BAD_OFFSET', `offset ${start} is not the start of a line: use 0 or a nextOffset from an earlier read`);
        }
        for (let grown = false; ; grown = true) {
          buf = Buffer.alloc(want);
          buf = buf.subarray(0, readSync(fd, buf, 0, want, start));
          // Whole lines only (past `limit`, just the first): the next read starts where this one stopped.
          end = (grown ? buf.indexOf(0x0a) : buf.lastIndexOf(0x0a)) + 1;
          if (end > 0 || buf.length < want || start + want >= size) break;
          want = Math.min(want * 2, size - start);
        }
      } finally {
        closeSync(fd);
      }
    }
    const events = buf
      .subarray(0, end)
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as unknown);
    return { events, offset: start, nextOffset: start + end, size, running: t.status === 'running' };
  }

  /** Live events of a running trace; returns the unsubscribe. `onStop` runs when the trace stops. */
  onEvent(name: string, fn: (event: Record<string, unknown>) => void, onStop: () => void): () => void {
    const t = this.find(name);
    if (t.status !== 'running') {
      onStop();
      return () => undefined;
    }
    t.listeners.add(fn);
    t.stopListeners.add(onStop);
    return () => {
      t.listeners.delete(fn);
      t.stopListeners.delete(onStop);
    };
  }

  stop(name: string, reason: StopReason = 'stopped'): TraceView {
    const t = this.find(name);
    if (t.status === 'running') {
      t.end(reason);
      this.refresh();
      this.log.info('trace stopped', { name, reason, events: t.events, size: t.size });
    }
    return t.view();
  }

  delete(name: string): void {
    const t = this.find(name);
    t.end('stopped');
    this.traces.delete(name);
    this.filters.delete(name);
    rmSync(t.file, { force: true });
    this.refresh();
  }

  /** Broker stop: every trace stops; files stay (a temporary directory goes). */
  close(): void {
    for (const t of this.traces.values()) t.end('broker_stopped');
    this.refresh();
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }

  get active(): number {
    return this.running.length;
  }

  record(evt: TraceEvent, subject: TraceSubject, fields: TraceFields): void {
    const now = Date.now();
    for (const t of this.running) {
      if (now >= t.endsAt) {
        this.stop(t.spec.name, 'expired');
        continue;
      }
      if (!t.wants(evt, subject, this.filters.get(t.spec.name))) continue;
      t.write(this.line(t.spec, evt, subject, fields, now), this.limits.maxFileSize);
    }
  }

  private line(spec: TraceSpec, evt: TraceEvent, s: TraceSubject, fields: TraceFields, now: number): Record<string, unknown> {
    const out: Record<string, unknown> = { time: iso(now), evt };
    if (s.clientId !== undefined) out['clientId'] = s.clientId;
    if (s.peer !== undefined) out['peer'] = s.peer;
    if (s.topic !== undefined) out['topic'] = s.topic;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      if (k === 'payload' && Buffer.isBuffer(v)) {
        out['payloadSize'] = v.length;
        if (spec.payload === 'hidden') continue;
        const cut = v.subarray(0, spec.payloadLimit);
        out['payload'] = spec.payload === 'hex' ? cut.toString('hex') : cut.toString('utf8');
        if (cut.length < v.length) out['payloadTruncated'] = true;
        continue;
      }
      out[k] = v;
    }
    return out;
  }

  private find(name: string): Trace {
    const t = this.traces.get(name);
    if (!t) throw new TraceError(404, 'TRACE_NOT_FOUND', `no trace named ${name}`);
    return t;
  }

  private refresh(): void {
    this.running = [...this.traces.values()].filter((t) => t.status === 'running');
    this.tracing.set(this, this.running.length > 0);
    this.stats.tracesActive = this.running.length;
  }

  private directory(): string {
    if (this.dir !== undefined) return this.dir;
    let dir = this.limits.dir ?? this.defaultDir;
    if (dir === undefined) {
      this.tempDir ??= mkdtempSync(join(tmpdir(), 'junction-traces-'));
      dir = this.tempDir;
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.dir = dir;
    return dir;
  }

  private validate(body: unknown): TraceSpec {
    const bad = (msg: string): never => {
      throw new TraceError(400, 'BAD_TRACE', msg);
    };
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('body must be a JSON object {name, type, value, durationSeconds, payload, payloadLimit}');
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) {
      if (!['name', 'type', 'value', 'durationSeconds', 'payload', 'payloadLimit'].includes(k)) bad(`unknown field ${k} (known: name, type, value, durationSeconds, payload, payloadLimit)`);
    }
    const { name, type, value } = b;
    if (typeof name !== 'string' || !NAME.test(name)) bad('name: 1-64 letters, digits, . _ -');
    if (typeof type !== 'string' || !(TRACE_TYPES as readonly string[]).includes(type)) bad(`type: one of ${TRACE_TYPES.join(', ')}`);
    if (typeof value !== 'string' || value === '') bad('value: a non-empty string (the client id, topic filter or IP address)');
    const v = value as string;
    if (type === 'topic') {
      const f = parseFilter(v);
      if (isTopicError(f)) bad(`value: not a topic filter: ${f.reason}`);
    }
    if (type === 'ip' && isIP(v) === 0) bad('value: an IPv4 or IPv6 address');
    const duration = b['durationSeconds'] ?? 600;
    if (typeof duration !== 'number' || !Number.isInteger(duration) || duration < 1 || duration > MAX_DURATION_SECONDS) {
      bad(`durationSeconds: an integer 1..${MAX_DURATION_SECONDS}`);
    }
    const payload = b['payload'] ?? 'hidden';
    if (typeof payload !== 'string' || !(PAYLOAD_MODES as readonly string[]).includes(payload)) bad(`payload: one of ${PAYLOAD_MODES.join(', ')}`);
    const payloadLimit = b['payloadLimit'] ?? 1024;
    if (typeof payloadLimit !== 'number' || !Number.isInteger(payloadLimit) || payloadLimit < 0 || payloadLimit > 1048576) bad('payloadLimit: an integer 0..1048576 (bytes)');
    return {
      name: name as string,
      type: type as TraceType,
      // Peers are matched by hostOf(), which gives IPv4-mapped addresses as plain IPv4.
      value: type === 'ip' ? v.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '') : v,
      durationSeconds: duration as number,
      payload: payload as PayloadMode,
      payloadLimit: payloadLimit as number,
    };
  }
}

