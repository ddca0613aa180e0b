/**
 * Hot reload: SIGHUP, `POST /api/v1/reload` and a watch on the config file and every file it names
 * all come here.
 *
 * All or nothing. The config file is parsed and validated, the password and ACL files read and
 * compiled, every TLS listener's SecureContext built and `log.file` opened, before anything in
 * force changes. Any error keeps the whole previous configuration (never "no ACL": a broken ACL
 * file cannot open access, unlike Mosquitto's), is logged with file, line, key path and reason,
 * sets the reload status (metrics: junction_config_last_reload_successful 0) and makes the API
 * answer 422.
 *
 * What applies live and what waits for a restart: keys that shape listeners (adding, removing,
 * ports, binds, protocols, WebSocket endpoints, client-certificate rules), storage, the node name,
 * `admin.bind` and `metrics.enabled` keep their running value and are reported in
 * `restartRequired` (and `broker.pendingRestart`). Everything else applies now: users and
 * passwords (clients whose password-file entry changed or went are disconnected, `auth_revoked`),
 * the ACL (next publish, subscribe and delivery; subscriptions no longer allowed are removed),
 * TLS material (new handshakes), log level, format and file, limits (new connections; session
 * queue limits and queue settings at once), `sys`, `metrics`, admin tokens, trace limits.
 *
 * The effective configuration is the new one with the restart-only keys put back to their running
 * values, so `restartRequired` is exactly where the effective and the loaded configuration differ.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import type { Logger } from '../core/log.js';
import { AuthLoadError, BrokerAccess, type AuthMaterial, type AuthSettings } from './auth/broker-access.js';
import { ConfigError, listenersOf, loadConfig, type Config, type ConfigOverrides, type ListenerConfig, type TlsConfig } from './config.js';
import { LogHub } from './log.js';
import type { RunningListener } from './listeners.js';
import { TlsMaterialError, type PreparedTls } from './tls.js';

/** One reason a reload was refused: the file and line at fault, the config key, what is wrong. */
export interface ReloadError {
  readonly file: string;
  readonly line: number | null;
  readonly path: string;
  readonly message: string;
}

export type ReloadResult =
  | {
      readonly result: 'applied';
      /** Keys whose new value is in force now. */
      readonly changed: readonly string[];
      /** Keys whose new value waits for a restart (their running value stays). */
      readonly restartRequired: readonly string[];
      /** Clients disconnected because their credentials no longer validate. */
      readonly revoked: number;
    }
  | { readonly result: 'rejected'; readonly errors: readonly ReloadError[] };

export type ReloadTrigger = 'start' | 'sighup' | 'api' | 'watch';

/** The last reload, for metrics (junction_config_*), `/overview` lastReload and the dashboard. */
export interface ReloadStatus {
  /** The last attempt succeeded. */
  readonly ok: boolean;
  /** ms since epoch of the last attempt (the start, before any). */
  readonly at: number;
  readonly trigger: ReloadTrigger;
  /** The last attempt's errors ([] when it succeeded). */
  readonly errors: readonly ReloadError[];
  /** ms since epoch of the last success (or the start). */
  readonly successAt: number;
  readonly successes: number;
  readonly failures: number;
  /** Of the last success. */
  readonly changed: readonly string[];
  readonly restartRequired: readonly string[];
}

/** Where the running configuration came from: read again by each reload. */
export interface ConfigSource {
  readonly file?: string | undefined;
  readonly overrides?: ConfigOverrides | undefined;
}

/** What a reload changes in the broker; Broker implements it (src/server/broker.ts). */
export interface Reloadable {
  readonly config: Config;
  readonly configSource: ConfigSource;
  readonly log: Logger;
  readonly listeners: readonly RunningListener[];
  /** The broker's own access control (undefined when a test gave its own). */
  readonly access: BrokerAccess | undefined;
  /** The process log, when the broker owns it (tests may give a logger of their own). */
  readonly logHub: LogHub | undefined;
  /** The `auth` settings `config` gives (broker.ts authSettings). */
  authSettings(config: Config): AuthSettings;
  /** Puts `config` in force (auth and TLS are installed by the reloader before). */
  applyConfig(config: Config): void;
  /** Disconnects clients whose credentials `stillValid` no longer accepts; returns how many. */
  revokeInvalid(): number;
  noteReload(status: ReloadStatus, result: ReloadResult): void;
}

// ---------------------------------------------------------------------------------------------
// Key paths: what changed, what needs a restart

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Leaf key paths -> JSON of the value; `listeners` entries by name: `listeners[mqtts].tls.cert`. */
function flatten(value: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (prefix === 'listeners' && Array.isArray(value)) {
    for (const l of value as ListenerConfig[]) flatten(l, `listeners[${l.name}]`, out);
    return out;
  }
  if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix === '' ? k : `${prefix}.${k}`, out);
    return out;
  }
  if (value !== undefined) out.set(prefix, JSON.stringify(value));
  return out;
}

/** Key paths whose values differ between `a` and `b`, in `b`'s order then `a`'s. */
export function configDiff(a: Config, b: Config): string[] {
  const fa = flatten(a, '', new Map());
  const fb = flatten(b, '', new Map());
  const out: string[] = [];
  for (const [k, v] of fb) if (fa.get(k) !== v) out.push(k);
  for (const k of fa.keys()) if (!fb.has(k)) out.push(k);
  return out;
}

/** TLS keys a running listener takes live: new SecureContext, new handshakes. */
const LIVE_TLS_KEYS = ['cert', 'key', 'passphrase', 'ca', 'ciphers', 'minVersion', 'sni'] as const;

/** `next`'s TLS settings with the client-certificate rules (set on the server at creation) of `running`. */
function liveTls(running: TlsConfig, next: TlsConfig): TlsConfig {
  const out: Record<string, unknown> = { ...running };
  for (const k of LIVE_TLS_KEYS) out[k] = next[k];
  return out as unknown as TlsConfig;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Keys of a listener entry that apply live (its limits and anonymous access); the rest shape the socket. */
const LIVE_LISTENER_KEYS = ['maxConnections', 'maxConnectionsPerAddress', 'connectRate', 'connectBurst', 'allowAnonymous'] as const;

/** `next` with every key that needs a restart put back to its value in `running`. */
export function effectiveConfig(running: Config, next: Config): Config {
  const tlsShapeSame = (running.tls.cert === undefined) === (next.tls.cert === undefined);
  let listeners = running.listeners;
  if (running.listeners !== undefined && next.listeners !== undefined) {
    listeners = running.listeners.map((l) => {
      const n = next.listeners!.find((x) => x.name === l.name);
      if (!n || n.protocol !== l.protocol) return l;
      const out: Record<string, unknown> = { ...l };
      for (const k of LIVE_LISTENER_KEYS) {
        if (n[k] === undefined) delete out[k];
        else out[k] = n[k];
      }
      if (n.tls !== undefined && l.tls !== undefined) out['tls'] = liveTls(l.tls, n.tls);
      return out as unknown as ListenerConfig;
    });
  }
  return deepFreeze({
    ...next,
    node: running.node,
    storage: running.storage,
    metrics: { ...next.metrics, enabled: running.metrics.enabled },
    admin: { ...next.admin, bind: running.admin.bind },
    mqtt: { ...next.mqtt, host: running.mqtt.host, port: running.mqtt.port },
    stomp: { ...next.stomp, host: running.stomp.host, port: running.stomp.port },
    http: running.http,
    tls: tlsShapeSame ? { ...liveTls(running.tls as unknown as TlsConfig, next.tls as unknown as TlsConfig), mqttPort: running.tls.mqttPort, stompPort: running.tls.stompPort } : running.tls,
    listeners,
  } as Config);
}

// ---------------------------------------------------------------------------------------------
// Errors with file and line

/** The line (1-based) of key path `keyPath` in YAML file `file`: as deep as the path can be followed. */
export function lineOf(file: string, keyPath: string, reason = ''): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  const parts = keyPath === '' ? [] : keyPath.split('.');
  // List items are named in the reason: "item 2: tls.cert: ..." under `listeners`.
  const item = /^item (\d+): ([\w.]+)?/.exec(reason);
  let node: unknown = doc.contents;
  let at: number | undefined = isNode(node) ? node.range?.[0] : undefined;
  const step = (part: string): boolean => {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isNode(p.key) ? String((p.key as { value?: unknown }).value) : String(p.key)) === part);
      if (!pair) return false;
      at = isNode(pair.key) ? pair.key.range?.[0] : at;
      node = pair.value;
      return true;
    }
    return false;
  };
  for (const part of parts) if (!step(part)) return at === undefined ? null : counter.linePos(at).line;
  if (item && isSeq(node)) {
    const entry = node.items[Number(item[1]) - 1];
    if (isNode(entry)) {
      node = entry;
      at = entry.range?.[0] ?? at;
      for (const part of (item[2] ?? '').split('.').filter((p) => p !== '')) if (!step(part)) break;
    }
  }
  return at === undefined ? null : counter.linePos(at).line;
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && 'range' in v;
}

function configError(err: ConfigError): ReloadError {
  const line = err.line ?? (err.file !== 'command line' ? lineOf(err.file, err.keyPath, err.reason) : null);
  return { file: err.file, line, path: err.keyPath, message: err.reason };
}

// ---------------------------------------------------------------------------------------------
// The reload

interface Prepared {
  /** What the files say. */
  readonly loaded: Config;
  /** That, with the restart-only keys at their running values: what goes in force. */
  readonly config: Config;
  readonly auth: AuthMaterial | undefined;
  readonly tls: ReadonlyArray<readonly [RunningListener, PreparedTls]>;
}

/**
 * Every check of the all-or-nothing reload; nothing in force is touched. Without a config file
 * the configuration given at start stands (flags, or a test's object): only the files it names
 * are read again.
 */
function prepare(b: Reloadable, initial: Config, errors: ReloadError[]): Prepared | undefined {
  const src = b.configSource;
  let next: Config;
  try {
    next = src.file === undefined ? initial : loadConfig({ file: src.file, overrides: src.overrides ?? [] });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    errors.push(configError(err));
    return undefined;
  }
  const config = effectiveConfig(b.config, next);
  // Password and ACL files apart, so that both are reported when both are broken.
  let auth: AuthMaterial | undefined;
  if (b.access) {
    const settings = b.authSettings(config);
    const loaded: { passwords?: AuthMaterial['passwords']; acl?: AuthMaterial['acl'] } = {};
    for (const [key, only] of [
      ['auth.passwordFile', { ...settings, aclFile: undefined }],
      ['auth.aclFile', { ...settings, passwordFile: undefined }],
    ] as const) {
      try {
        const m = BrokerAccess.load(only);
        if (key === 'auth.passwordFile') loaded.passwords = m.passwords;
        else loaded.acl = m.acl;
      } catch (err) {
        if (!(err instanceof AuthLoadError)) throw err;
        b.access.reloadFailed(err.message);
        errors.push({ file: err.file ?? (key === 'auth.aclFile' ? (settings.aclFile ?? '') : (settings.passwordFile ?? '')), line: err.line ?? null, path: key, message: err.reason ?? err.message });
      }
    }
    auth = { passwords: loaded.passwords, acl: loaded.acl };
  }
  const specs = listenersOf(config);
  const tls: Array<readonly [RunningListener, PreparedTls]> = [];
  for (const l of b.listeners) {
    const material = l.tlsMaterial;
    const spec = specs.find((s) => s.name === l.spec.name);
    if (!material || !spec?.tls) continue;
    try {
      tls.push([l, material.prepare(spec.tls)]);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      const prefix = `${err.key} ${err.file}: `;
      const path = config.listeners !== undefined ? `listeners[${l.spec.name}].${err.key}` : err.key;
      errors.push({ file: err.file, line: null, path, message: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message });
    }
  }
  if (config.log.file !== b.config.log.file && b.logHub) {
    try {
      LogHub.check(config.log.file);
    } catch (err) {
      errors.push({ file: config.log.file ?? '', line: null, path: 'log.file', message: `cannot open for appending: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
  }
  return errors.length > 0 ? undefined : { loaded: next, config, auth, tls };
}

export class Reloader {
  status: ReloadStatus;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Digest of every watched file when the configuration in force was read. */
  private digest = '';
  /** The configuration at start: what a reload without a config file starts from. */
  private readonly initial: Config;

  constructor(private readonly b: Reloadable) {
    this.initial = b.config;
    const now = Date.now();
    this.status = { ok: true, at: now, trigger: 'start', errors: [], successAt: now, successes: 0, failures: 0, changed: [], restartRequired: [] };
    this.digest = this.filesDigest(b.config);
  }

  /** Keys changed in the file that wait for a restart (GET /api/v1/config `pendingRestart`). */
  get pendingRestart(): readonly string[] {
    return this.status.restartRequired;
  }

  reload(trigger: ReloadTrigger): ReloadResult {
    const started = performance.now();
    const errors: ReloadError[] = [];
    const b = this.b;
    const prepared = prepare(b, this.initial, errors);
    const now = Date.now();
    const s = this.status;
    if (!prepared) {
      const result: ReloadResult = { result: 'rejected', errors };
      this.status = { ...s, ok: false, at: now, trigger, errors, failures: s.failures + 1 };
      const first = errors[0]!;
      b.log.error('configuration reload failed: the previous configuration stays in force', {
        evt: 'config.reload_failed',
        trigger,
        file: first.file,
        line: first.line,
        path: first.path,
        reason: first.message,
        errors,
      });
      b.noteReload(this.status, result);
      return result;
    }
    const old = b.config;
    const { config } = prepared;
    const changed = configDiff(old, config);
    const restartRequired = configDiff(config, prepared.loaded);
    // The swap: nothing below may fail for a reason the checks above could have found.
    if (b.access && prepared.auth) b.access.install(b.authSettings(config), prepared.auth);
    for (const [l, p] of prepared.tls) l.tlsMaterial?.install(p);
    b.applyConfig(config);
    const revoked = b.access ? b.revokeInvalid() : 0;
    this.digest = this.filesDigest(config);
    this.rewatch();
    const result: ReloadResult = { result: 'applied', changed, restartRequired, revoked };
    this.status = { ok: true, at: now, trigger, errors: [], successAt: now, successes: s.successes + 1, failures: s.failures, changed, restartRequired };
    b.log[restartRequired.length > 0 ? 'warn' : 'info']('configuration reloaded', {
      evt: 'config.reloaded',
      trigger,
      changed,
      restartRequired,
      ...(restartRequired.length > 0 ? { note: 'restartRequired keys keep their running value until the broker restarts' } : {}),
      revoked,
      durationMs: Math.round(performance.now() - started),
    });
    b.noteReload(this.status, result);
    return result;
  }

  /**
   * Watches the directories of the config file and of every file it names (password, ACL,
   * certificates, keys, CAs): a directory sees atomic renames and Kubernetes' `..data` symlink
   * swaps that a watch on the file itself would miss. A burst of events waits 500 ms of quiet;
   * a reload runs only when some watched file's bytes changed.
   */
  watch(): void {
    this.rewatch();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private files(config: Config): string[] {
    const out = new Set<string>();
    if (this.b.configSource.file !== undefined) out.add(this.b.configSource.file);
    if (config.auth.passwordFile !== undefined) out.add(config.auth.passwordFile);
    if (config.auth.aclFile !== undefined) out.add(config.auth.aclFile);
    for (const l of listenersOf(config)) {
      const t = l.tls;
      if (!t) continue;
      for (const f of [t.cert, t.key, t.ca, ...t.sni.flatMap((e) => [e.cert, e.key])]) if (f !== undefined) out.add(f);
    }
    return [...out];
  }

  private filesDigest(config: Config): string {
    const h = createHash('sha256');
    for (const f of this.files(config)) {
      h.update(f).update('\u0000');
      try {
        h.update(readFileSync(f));
      } catch (err) {
        h.update(`error:${(err as NodeJS.ErrnoException).code ?? ''}`);
      }
      h.update('\u0000');
    }
    return h.digest('hex');
  }

  private rewatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const byDir = new Map<string, Set<string>>();
    const add = (file: string): void => {
      const names = byDir.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      byDir.set(dirname(file), names);
    };
    for (const f of this.files(this.b.config)) {
      add(f);
      // A symlinked file (a ConfigMap's `file -> ..data/file`): its target's directory too.
      try {
        const real = realpathSync(f);
        if (real !== f) add(real);
      } catch {
        // missing now: the directory watch sees it come back
      }
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          const n = name === null ? null : name.toString();
          if (n === null || names.has(n) || n.startsWith('..')) this.schedule();
        });
        w.on('error', (err) => this.b.log.warn('cannot watch configuration files any more; SIGHUP still reloads', { dir, error: err.message }));
        this.watchers.push(w);
      } catch (err) {
        this.b.log.warn('cannot watch configuration files; SIGHUP reloads them', { dir, error: String(err) });
      }
    }
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Only when bytes changed: editors touch, rename and chmod without changing anything.
      if (this.filesDigest(this.b.config) === this.digest) return;
      try {
        this.reload('watch');
      } catch (err) {
        this.b.log.error('configuration reload crashed', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
      // A failed reload keeps the old files' digest: the next change tries again. Remember this
      // state so the same broken bytes are not reported again and again.
      this.digest = this.filesDigest(this.b.config);
    }, 500);
    this.timer.unref();
  }
}
