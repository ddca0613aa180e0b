/**
 * `/api/v1/overview`, `/listeners`, `/config`, `/reload`.
 *
 * - `/config` is the effective configuration with secrets redacted (TLS passphrases, token
 *   hashes, passwords, credentials in URLs), plus `pendingRestart`: keys changed in the file that
 *   keep their old value until a restart. The API never writes the config file: it is the one
 *   source of truth (EMQX's cluster.hocon trap).
 * - `/reload` does what SIGHUP does (`broker.reload()`): 200 `{result:"applied", changed,
 *   restartRequired}` or 422 `{result:"rejected", errors:[{file, line, path, message}]}`, and the
 *   old configuration stays whole. Readers of `/api/v1/stream` get `event: reload`.
 */
import { DLQ_PREFIX } from '../../../core/queues.js';
import type { Broker } from '../../broker.js';
import { VERSION } from '../../version.js';
import type { HttpApp } from '../app.js';
import { json, ok } from '../reply.js';
import { connectionCounts, statsSourceOf } from './stats.js';
import { iso } from './views.js';

export interface ReloadError {
  readonly file: string | null;
  readonly line: number | null;
  readonly path: string | null;
  readonly message: string;
}

/** A reload's outcome, whatever shape `broker.reload()` gives it in. */
export interface ReloadReport {
  readonly ok: boolean;
  readonly at: number;
  readonly changed: readonly string[];
  readonly restartRequired: readonly string[];
  readonly errors: readonly ReloadError[];
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function field(o: object, k: string): unknown {
  return (o as Record<string, unknown>)[k];
}

function reloadError(e: unknown): ReloadError {
  if (typeof e === 'string') return { file: null, line: null, path: null, message: e };
  if (typeof e !== 'object' || e === null) return { file: null, line: null, path: null, message: String(e) };
  const file = field(e, 'file');
  const line = field(e, 'line');
  const path = field(e, 'path') ?? field(e, 'keyPath');
  const message = field(e, 'message') ?? field(e, 'reason');
  return {
    file: typeof file === 'string' ? file : null,
    line: typeof line === 'number' ? line : null,
    path: typeof path === 'string' && path !== '' ? path : null,
    message: typeof message === 'string' ? message : String(e),
  };
}

/**
 * `broker.reload()` returns an error text or nothing (SIGHUP of TLS, password and ACL files), or
 * a richer object `{ok | result, changed, restartRequired, errors}` once the full reload exists.
 */
export function toReloadReport(outcome: unknown, at = Date.now()): ReloadReport {
  if (outcome === undefined || outcome === null) return { ok: true, at, changed: [], restartRequired: [], errors: [] };
  if (typeof outcome === 'string' || outcome instanceof Error) {
    return { ok: false, at, changed: [], restartRequired: [], errors: [reloadError(outcome)] };
  }
  if (typeof outcome !== 'object') return { ok: true, at, changed: [], restartRequired: [], errors: [] };
  const okField = field(outcome, 'ok');
  const result = field(outcome, 'result');
  const errorsRaw = field(outcome, 'errors');
  const errors = Array.isArray(errorsRaw) ? errorsRaw.map(reloadError) : [];
  const good = typeof okField === 'boolean' ? okField : typeof result === 'string' ? result === 'applied' : errors.length === 0;
  return { ok: good, at, changed: strings(field(outcome, 'changed')), restartRequired: strings(field(outcome, 'restartRequired')), errors };
}

/** Config keys whose values are secrets, wherever they appear (tls, sni, listeners, admin.tokens). */
const SECRET_KEYS = new Set(['passphrase', 'password', 'passcode', 'secret', 'sha256', 'token']);
export const REDACTED = '<redacted>';

/** A deep copy of `value` with secrets replaced by `<redacted>`. */
export function redact(value: unknown, key = ''): unknown {
  if (value === undefined) return undefined;
  if (SECRET_KEYS.has(key) && value !== null) return REDACTED;
  if (typeof value === 'string') return value.replace(/(\/\/)[^/@\s]*:[^/@\s]*@/g, `$1${REDACTED}@`);
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = redact(v, k);
    return out;
  }
  return value;
}

/** The last reload this process knows of: the reload module's record, or the last one done here. */
function lastReloadOf(broker: Broker, local: ReloadReport | undefined): { ok: boolean; at: string | null; errors: readonly ReloadError[] } {
  // `config` is there so the type is not a weak (all-optional) one, which TypeScript checks for overlap.
  const b: { readonly config: unknown; readonly lastReload?: unknown } = broker;
  const r = b.lastReload !== undefined ? toReloadReport(b.lastReload) : local;
  if (b.lastReload !== undefined && typeof b.lastReload === 'object' && b.lastReload !== null) {
    const at = field(b.lastReload, 'at');
    return { ok: r?.ok ?? true, at: typeof at === 'number' ? iso(at) : typeof at === 'string' ? at : null, errors: r?.errors ?? [] };
  }
  return r ? { ok: r.ok, at: iso(r.at), errors: r.errors } : { ok: true, at: null, errors: [] };
}

function pendingRestartOf(broker: Broker): string[] {
  const b: { readonly config: unknown; readonly pendingRestart?: unknown } = broker;
  return strings(b.pendingRestart);
}

export function mountSystem(app: HttpApp): void {
  let lastLocal: ReloadReport | undefined;
  // Every reload reaches /stream readers (the dashboard's Reload panel and overview): SIGHUP and
  // the file watch as well as POST /reload, so an operator sees a logrotate HUP or a broken edit.
  app.broker.reloadListeners.add((status, result) => {
    const report = toReloadReport(result, status.at);
    app.notify('reload', { result: report.ok ? 'applied' : 'rejected', at: iso(report.at), changed: report.changed, restartRequired: report.restartRequired, errors: report.errors, trigger: status.trigger });
  });

  app.route('GET', '/api/v1/overview', 'viewer', (req) => {
    const broker = req.broker;
    const core = broker.core;
    const snap = statsSourceOf(broker)?.snapshot();
    let subscriptions = 0;
    for (const s of core.sessions.sessions.values()) subscriptions += s.subscriptions.size;
    let ready = 0;
    let unacked = 0;
    let dlqMessages = 0;
    for (const q of core.router.queues.queues.values()) {
      ready += q.waiting;
      unacked += q.unacked;
      if (q.name.startsWith(DLQ_PREFIX)) dlqMessages += q.depth;
    }
    return ok({
      version: VERSION,
      node: broker.config.node.name,
      uptimeSeconds: Math.floor((Date.now() - req.broker.http.startedAt) / 1000),
      connections: connectionCounts(broker),
      sessions: core.sessions.size,
      subscriptions,
      retained: core.router.retained.size,
      queues: { count: core.router.queues.queues.size, ready, unacked, dlqMessages },
      rates: { inPerSec: snap?.rates?.inPerSec ?? 0, outPerSec: snap?.rates?.outPerSec ?? 0 },
      storeCommitP99Seconds: snap?.latency?.storeCommitP99Seconds ?? null,
      lastReload: lastReloadOf(broker, lastLocal),
    });
  });

  app.route('GET', '/api/v1/listeners', 'viewer', (req) => {
    const broker = req.broker;
    const perListener = new Map<string, number>();
    for (const s of broker.core.sessions.sessions.values()) {
      const l = s.currentOutlet?.client?.listener;
      if (l !== undefined) perListener.set(l, (perListener.get(l) ?? 0) + 1);
    }
    const all = [...broker.listeners, ...(broker.adminListener ? [broker.adminListener] : [])];
    const data = all.map((l) => {
      const spec = l.spec;
      const secure = spec.tls !== undefined;
      const cert = l.certificate();
      const validTo = cert?.['validTo'];
      return {
        name: spec.name,
        protocol: spec.protocol,
        transport: spec.protocol === 'http' ? (l === broker.adminListener ? (secure ? 'https' : 'http') : secure ? 'wss' : 'ws') : secure ? 'tls' : 'tcp',
        bind: l.host,
        port: l.port,
        running: l.running,
        connections: perListener.get(spec.name) ?? 0,
        ...(l.gateway ? { websocketPaths: l.gateway.paths() } : {}),
        ...(l === broker.adminListener ? { serves: 'admin' } : {}),
        tls: cert ? { subject: cert['subject'] ?? null, notAfter: validTo ? iso(Date.parse(validTo)) : null } : null,
      };
    });
    return ok({ data });
  });

  app.route('GET', '/api/v1/config', 'admin', (req) => {
    const config = redact(req.broker.config) as Record<string, unknown>;
    return ok({ ...config, pendingRestart: pendingRestartOf(req.broker) });
  });

  app.route('POST', '/api/v1/reload', 'admin', async (req) => {
    const broker = req.broker;
    // The reload logs its one config.reloaded / config.reload_failed line (trigger "api") and
    // notifies /stream readers itself; this line only says who asked.
    broker.log.info('reload requested through the admin API', { by: req.principal?.name });
    let outcome: unknown;
    try {
      outcome = await Promise.resolve(broker.reload());
    } catch (err) {
      outcome = err instanceof Error ? err : String(err);
    }
    const report = toReloadReport(outcome);
    lastLocal = report;
    if (!report.ok) return json(422, { result: 'rejected', errors: report.errors });
    return ok({ result: 'applied', changed: report.changed, restartRequired: report.restartRequired });
  });
}
