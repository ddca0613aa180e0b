/**
 * Reading /metrics in tests: one scrape parsed into series (`name{a="x",b="y"}` with labels in a
 * fixed order) and family types, and the difference between two scrapes.
 */
import { execFile } from 'node:child_process';
import type { TestBroker } from '../helpers/broker.js';

export interface Scrape {
  readonly text: string;
  readonly status: number;
  readonly contentType: string | null;
  /** `# TYPE` lines: family name -> type. */
  readonly types: Map<string, string>;
  /** Series key (name plus sorted labels) -> value. */
  readonly values: Map<string, number>;
}

/** A series key with its labels sorted by name: key('x_total', { b: '1', a: '2' }) = 'x_total{a="2",b="1"}'. */
export function key(name: string, labels: Record<string, string> = {}): string {
  const l = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(',');
  return l === '' ? name : `${name}{${l}}`;
}

export function parse(text: string): Pick<Scrape, 'types' | 'values'> {
  const types = new Map<string, string>();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const p of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]!] = p[2]!;
    values.set(key(m[1]!, labels), Number(m[3]));
  }
  return { types, values };
}

export async function scrape(tb: TestBroker, path = '/metrics', headers: Record<string, string> = {}): Promise<Scrape> {
  const r = await fetch(`http://127.0.0.1:${tb.httpPort}${path}`, { headers });
  const text = await r.text();
  return { text, status: r.status, contentType: r.headers.get('content-type'), ...(r.status === 200 ? parse(text) : { types: new Map(), values: new Map() }) };
}

/** Value of one series (0 when absent: callers check presence separately where it matters). */
export function v(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  return s.values.get(key(name, labels)) ?? Number.NaN;
}

/** after - before for one series. */
export function delta(before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}): number {
  return v(after, name, labels) - v(before, name, labels);
}

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(cmd: string, args: readonly string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** The junction_* families of operations.md "Metrics", with their types. */
export const SPEC_FAMILIES: Readonly<Record<string, string>> = {
  junction_build_info: 'gauge',
  junction_connections: 'gauge',
  junction_connections_opened_total: 'counter',
  junction_connections_closed_total: 'counter',
  junction_connections_rejected_total: 'counter',
  junction_authorization_denied_total: 'counter',
  junction_sessions: 'gauge',
  junction_sessions_expired_total: 'counter',
  junction_messages_received_total: 'counter',
  junction_messages_delivered_total: 'counter',
  junction_messages_dropped_total: 'counter',
  junction_messages_dead_lettered_total: 'counter',
  junction_messages_redelivered_total: 'counter',
  junction_messages_retained: 'gauge',
  junction_messages_inflight: 'gauge',
  junction_session_queue_messages: 'gauge',
  junction_bytes_received_total: 'counter',
  junction_bytes_sent_total: 'counter',
  junction_packets_received_total: 'counter',
  junction_packets_sent_total: 'counter',
  junction_subscriptions: 'gauge',
  junction_topic_filters: 'gauge',
  junction_queues: 'gauge',
  junction_queue_messages: 'gauge',
  junction_queue_consumers: 'gauge',
  junction_message_delivery_latency_seconds: 'histogram',
  junction_publish_ack_latency_seconds: 'histogram',
  junction_store_commit_duration_seconds: 'histogram',
  junction_store_batch_operations: 'histogram',
  junction_store_size_bytes: 'gauge',
  junction_tls_certificate_expiry_timestamp_seconds: 'gauge',
  junction_config_last_reload_successful: 'gauge',
  junction_config_last_reload_success_timestamp_seconds: 'gauge',
  junction_config_reloads_total: 'counter',
  junction_traces_active: 'gauge',
};
