/**
 * The process logger: one line per event, JSON (default, for log shippers) or text (for people).
 * Writes synchronously to stdout so that nothing is lost when the process exits right after.
 */
import { writeSync } from 'node:fs';
import type { LogFields, Logger } from '../core/log.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogOptions {
  readonly level: LogLevel;
  readonly format: 'json' | 'text';
  /** Where lines go; stdout's file descriptor by default. Tests pass a function. */
  readonly sink?: (line: string) => void;
}

function stdoutSink(line: string): void {
  try {
    writeSync(1, line + '\n');
  } catch {
    // stdout closed (EPIPE): logging must never take the broker down.
  }
}

export function createLogger(opts: LogOptions, bound: LogFields = {}): Logger {
  const min = RANK[opts.level];
  const sink = opts.sink ?? stdoutSink;
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[level] < min) return;
    const time = new Date().toISOString();
    const all = fields ? { ...bound, ...fields } : bound;
    if (opts.format === 'json') {
      sink(JSON.stringify({ time, level, msg, ...all }));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(all)) line += ` ${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`;
    sink(line);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(opts, { ...bound, ...fields }),
  };
}
