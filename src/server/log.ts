/**
 * The process log: one line per event, pino JSON lines (default, for log shippers) or text (for
 * people), on stdout or in `log.file`.
 *
 * Invariants:
 * - Core and adapter code log through the small `Logger` of src/core/log.ts (msg + fields, with an
 *   `evt` name for the events operators alert on); only this file knows pino.
 * - Writes are synchronous (SonicBoom `sync: true`): nothing is lost when the process exits right
 *   after a line, and a line is on disk when a test or an operator looks for it.
 * - Secrets and payloads never reach the log: `password`, `passcode`, `token`, `authorization`
 *   and `payload` fields are replaced by "[redacted]", at the top level and one level down
 *   (pino `redact` for JSON; the same list by hand for text).
 * - `auth.failed` and `acl.denied` are throttled as EMQX does: at most one line per key (event and
 *   client) per 60 s; the events left out are counted and told in a `suppressed` field, on the
 *   key's next line or in a summary line once its window has ended.
 * - Level, format and destination can change while the broker runs (config reload); `reopen()`
 *   opens `log.file` again under its name (logrotate renames the file, then sends SIGHUP).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { LogFields, Logger } from '../core/log.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
type Level = Exclude<LogLevel, 'silent'>;
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogOptions {
  readonly level: LogLevel;
  readonly format: 'json' | 'text';
  /** A file to append to (created if missing); stdout when absent. */
  readonly file?: string | undefined;
  /** Where lines go instead of stdout or the file (tests). */
  readonly sink?: (line: string) => void;
  /** The throttling window of auth.failed and acl.denied, ms (default 60 s; tests shorten it). */
  readonly throttleMs?: number;
}

/** Field names whose values never reach the log. */
export const REDACTED_KEYS = ['password', 'passcode', 'token', 'authorization', 'payload'] as const;
const REDACTED = new Set<string>(REDACTED_KEYS);
const CENSOR = '[redacted]';

/** Events throttled per key (EMQX's log throttling of authentication and authorization failures). */
const THROTTLED = new Set(['auth.failed', 'acl.denied']);
export const THROTTLE_WINDOW_MS = 60_000;
/** Keys remembered at most; past this, one key per event stands for all clients. */
const MAX_THROTTLE_KEYS = 10_000;

interface Destination {
  write(line: string): void;
  reopen(): void;
  close(): void;
}

/**
 * Lines to a file descriptor: stdout (fd 1) or an opened file, through pino's SonicBoom.
 *
 * The lines of one event-loop turn go out in one synchronous write at the end of the turn (and at
 * exit), not one write each: a connection storm logs two lines per client, and a write system call
 * per line was the largest single cost of a connect. Synchronous, so a line is never lost to a
 * write still in flight at exit, and order is kept; only a kill -9 can lose one turn's lines.
 */
class FileDestination implements Destination {
  readonly stream: pino.DestinationStream & { reopen(file?: string): void; end(): void; flushSync(): void };
  private pending = '';
  private scheduled = false;
  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };
  private readonly flushAtExit = (): void => this.flush();

  constructor(readonly file: string | undefined) {
    if (file !== undefined) {
      // Opened here first so that an unusable path fails now, with the OS's reason (reload: 422).
      mkdirSync(dirname(file), { recursive: true });
      closeSync(openSync(file, 'a'));
    }
    this.stream = pino.destination({ dest: file ?? 1, sync: true, append: true }) as FileDestination['stream'];
    // A full disk or a closed stdout (EPIPE) must never take the broker down.
    (this.stream as unknown as NodeJS.EventEmitter).on('error', () => undefined);
    process.on('exit', this.flushAtExit);
  }

  write(line: string): void {
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushLater);
    }
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = '';
    try {
      this.stream.write(lines);
    } catch {
      // see the 'error' handler above
    }
  }

  reopen(): void {
    this.flush();
    if (this.file === undefined) return;
    try {
      this.stream.reopen();
    } catch {
      // the directory went away: keep writing to the open descriptor
    }
  }

  close(): void {
    this.flush();
    process.off('exit', this.flushAtExit);
    if (this.file === undefined) return;
    try {
      this.stream.flushSync();
    } catch {
      // nothing buffered, or nowhere to write it
    }
    this.stream.end();
  }
}

/** Lines to a function (tests). */
class SinkDestination implements Destination {
  constructor(private readonly sink: (line: string) => void) {}
  write(line: string): void {
    this.sink(line.endsWith('\n') ? line.slice(0, -1) : line);
  }
  reopen(): void {}
  close(): void {}
}

function redactValue(value: unknown, depth: number): unknown {
  if (depth > 1 || typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = REDACTED.has(k.toLowerCase()) ? CENSOR : redactValue(v, depth + 1);
    if (r !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = r;
  }
  return out ?? value;
}

/** `fields` with the secret and payload fields replaced (text format; JSON uses pino's redact). */
export function redact(fields: LogFields): LogFields {
  return redactValue(fields, 0) as LogFields;
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v);
}

interface Throttle {
  until: number;
  suppressed: number;
  readonly evt: string;
  readonly fields: LogFields;
  readonly level: Level;
  readonly msg: string;
  readonly window: number;
}

/**
 * Owns the destination and the pino instance; every Logger made from it follows a `configure`
 * (level, format, file) at once, since loggers hold the hub rather than a pino child.
 */
export class LogHub {
  private opts: LogOptions;
  private min: number;
  private dest: Destination;
  private pino: pino.Logger;
  private readonly throttles = new Map<string, Throttle>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Lines written (tests, status). */
  lines = 0;

  constructor(opts: LogOptions) {
    this.opts = opts;
    this.min = RANK[opts.level];
    this.dest = LogHub.open(opts);
    this.pino = this.make(opts.level);
  }

  /** The destination `opts` names; throws when `log.file` cannot be opened for appending. */
  private static open(opts: LogOptions): Destination {
    return opts.sink ? new SinkDestination(opts.sink) : new FileDestination(opts.file);
  }

  /** Checks that `file` can be opened for appending (reload validates before it swaps anything). */
  static check(file: string | undefined): void {
    if (file === undefined) return;
    mkdirSync(dirname(file), { recursive: true });
    closeSync(openSync(file, 'a'));
  }

  private make(level: LogLevel): pino.Logger {
    const dest = this.dest;
    return pino(
      {
        level,
        base: undefined,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]), censor: CENSOR },
      },
      { write: (line: string) => dest.write(line) },
    );
  }

  get options(): LogOptions {
    return this.opts;
  }

  /** A logger writing through this hub with `bound` fields on every line. */
  logger(bound: LogFields = EMPTY): Logger {
    return new HubLogger(this, bound);
  }

  enabled(level: Level): boolean {
    return RANK[level] >= this.min;
  }

  /** New level, format or destination (reload). A new file is opened before the old one closes. */
  configure(opts: LogOptions): void {
    const fileChanged = opts.file !== this.opts.file || opts.sink !== this.opts.sink;
    if (fileChanged) {
      const next = LogHub.open(opts);
      const old = this.dest;
      this.dest = next;
      old.close();
    }
    this.opts = opts;
    this.min = RANK[opts.level];
    this.pino = this.make(opts.level);
  }

  /** Opens `log.file` again under its name (after logrotate moved it away); stdout: nothing to do. */
  reopen(): void {
    this.dest.reopen();
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.flushThrottled(Infinity);
    this.dest.close();
  }

  emit(level: Level, msg: string, bound: LogFields, fields: LogFields | undefined): void {
    if (RANK[level] < this.min) return;
    let all = fields ? (bound === EMPTY ? fields : { ...bound, ...fields }) : bound;
    const evt = all['evt'];
    if (typeof evt === 'string' && THROTTLED.has(evt)) {
      const suppressed = this.throttle(evt, level, msg, all);
      if (suppressed === undefined) return;
      if (suppressed > 0) all = { ...all, suppressed };
    }
    this.write(level, msg, all);
  }

  private write(level: Level, msg: string, all: LogFields): void {
    this.lines++;
    if (this.opts.format === 'json') {
      this.pino[level](all, msg);
      return;
    }
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(redact(all))) if (v !== undefined) line += ` ${k}=${textValue(v)}`;
    this.dest.write(line + '\n');
  }

  /**
   * undefined: leave this line out (counted); a number: write it, with that many left out before
   * it. The key is the event and whoever it is about (username, else client id, else address).
   */
  private throttle(evt: string, level: Level, msg: string, fields: LogFields): number | undefined {
    const now = Date.now();
    const who = fields['username'] ?? fields['clientId'] ?? String(fields['peer'] ?? '').replace(/:\d+$/, '');
    let key = `${evt}\u0000${String(who)}`;
    if (!this.throttles.has(key) && this.throttles.size >= MAX_THROTTLE_KEYS) key = `${evt}\u0000*`;
    const t = this.throttles.get(key);
    if (t && now < t.until) {
      t.suppressed++;
      return undefined;
    }
    const before = t?.suppressed ?? 0;
    const window = this.opts.throttleMs ?? THROTTLE_WINDOW_MS;
    this.throttles.set(key, { until: now + window, suppressed: 0, evt, fields, level, msg, window });
    this.sweeper ??= setInterval(() => this.flushThrottled(Date.now()), Math.max(10, window / 6));
    this.sweeper.unref();
    return before;
  }

  /** Windows that ended: one summary line for each that left events out, then forgotten. */
  private flushThrottled(now: number): void {
    for (const [key, t] of this.throttles) {
      if (now < t.until) continue;
      this.throttles.delete(key);
      if (t.suppressed > 0 && RANK[t.level] >= this.min) {
        const { evt, clientId, username, peer, listener, protocol } = t.fields as Record<string, unknown>;
        const about = Object.fromEntries(Object.entries({ clientId, username, peer, listener, protocol }).filter(([, v]) => v !== undefined));
        this.write(t.level, `${t.msg} (${t.suppressed} more in the last ${t.window / 1000} s)`, { evt, ...about, suppressed: t.suppressed });
      }
    }
    if (this.throttles.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

const EMPTY: LogFields = Object.freeze({});

class HubLogger implements Logger {
  constructor(
    private readonly hub: LogHub,
    private readonly bound: LogFields,
  ) {}
  debug(msg: string, fields?: LogFields): void {
    this.hub.emit('debug', msg, this.bound, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.hub.emit('info', msg, this.bound, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.hub.emit('warn', msg, this.bound, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.hub.emit('error', msg, this.bound, fields);
  }
  child(fields: LogFields): Logger {
    return new HubLogger(this.hub, this.bound === EMPTY ? fields : { ...this.bound, ...fields });
  }
}

/** A logger with its own hub (the broker keeps the hub to reconfigure it: `new LogHub(opts)`). */
export function createLogger(opts: LogOptions, bound: LogFields = {}): Logger {
  return new LogHub(opts).logger(Object.keys(bound).length === 0 ? EMPTY : bound);
}

/** Last resort when the log itself cannot be written (start-up errors): stderr, plain. */
export function stderrLine(line: string): void {
  try {
    writeSync(2, line + '\n');
  } catch {
    // nowhere left to say it
  }
}
