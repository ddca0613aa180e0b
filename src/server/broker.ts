/**
 * Broker: the process wiring. Opens storage, builds the core, starts every listener with its
 * adapter, and stops in the reverse order: stop accepting, disconnect clients (v5: 0x8B Server
 * shutting down), write what is queued, close storage.
 */
import type { AccessControl } from '../core/access.js';
import { BrokerAccess, type AuthSettings } from './auth/broker-access.js';
import { Stats } from '../core/stats.js';
import { Core } from '../core/core.js';
import type { Logger } from '../core/log.js';
import type { Connection, Transport } from '../core/transport.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chooseEngine } from '../../storage/engine-choice.js';
import { LevelEngine } from '../../storage/engines/leveldb.js';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import { MemoryStore } from '../../storage/memory.js';
import { StoreOpenError, type Store } from '../../storage/store.js';
import { mqttAdapter, refuseMqtt, type MqttSettings } from '../../protocols/mqtt/index.js';
import { refuseStomp, stompAdapter, type StompSettings } from '../../protocols/stomp/index.js';
import { Admission } from './admission.js';
import { ConfigError, listenerLimits, listenersOf, type Config, type ListenerConfig } from './config.js';
import { controlAnswers, startControl, type ControlServer } from './control.js';
import { listen, prepareTls, type ListenerContext, type RunningListener } from './listeners.js';
import { HttpApp } from './http/app.js';
import { mountRoutes } from './http/mount.js';
import type { LiveStats } from './metrics/live.js';
import { Telemetry } from './metrics/telemetry.js';
import { LogHub } from './log.js';
import { TraceManager } from './traces/manager.js';
import { join } from 'node:path';
import { Reloader, type ConfigSource, type Reloadable, type ReloadResult, type ReloadStatus, type ReloadTrigger } from './reload.js';
import type { SessionLimits } from '../core/session.js';
import type { QueueOptions } from '../core/queues.js';
import { VERSION } from './version.js';

export interface BrokerOptions {
  /** Use this store instead of the one the config names (tests: restart on the same MemoryStore). */
  readonly store?: Store;
  readonly log?: Logger;
  /** Authentication and authorization (default: allow all). */
  readonly access?: AccessControl;
  /** The config file and flags `config` came from: a reload reads them again (default: flags none, no file). */
  readonly configSource?: ConfigSource;
  /** Log lines go here instead of stdout or log.file (tests of the process log; ignored with `log`). */
  readonly logSink?: (line: string) => void;
}

export function mqttSettings(config: Config): MqttSettings {
  const m = config.mqtt;
  return {
    maxKeepAlive: m.maxKeepAlive,
    maxPacketSize: m.maxPacketSize,
    receiveMaximum: m.receiveMaximum,
    maxInflight: m.maxInflight,
    topicAliasMaximum: m.topicAliasMaximum,
    topicLimits: { maxLength: m.maxTopicLength, maxLevels: m.maxTopicLevels },
    maxClientIdLength: m.maxClientIdLength,
    connectTimeoutMs: m.connectTimeout * 1000,
    maxSessionExpiry: m.maxSessionExpiry,
    retainAvailable: m.retainAvailable,
    sharedSubscriptions: m.sharedSubscriptions,
    wildcardSubscriptions: m.wildcardSubscriptions,
    subscriptionIdentifiers: m.subscriptionIdentifiers,
    allowEmptyClientId: m.allowEmptyClientId,
    ...connectionLimits(config),
    subscribeDeniedCode: config.auth.subscribeDeniedCode,
  };
}

export function authSettings(config: Config, listeners: readonly ListenerConfig[]): AuthSettings {
  const a = config.auth;
  return {
    passwordFile: a.passwordFile,
    aclFile: a.aclFile,
    allowAnonymous: a.allowAnonymous,
    listenerAnonymous: new Map(listeners.flatMap((l) => (l.allowAnonymous === undefined ? [] : [[l.name, l.allowAnonymous] as const]))),
    http: a.http.url !== undefined ? { url: a.http.url, timeoutMs: a.http.timeout, cacheMs: a.http.cacheSeconds * 1000 } : undefined,
    lockout: { attempts: a.lockout.attempts, windowMs: a.lockout.window * 1000, banMs: a.lockout.duration * 1000 },
  };
}

/** The `limits` each MQTT and STOMP connection applies to itself. */
function connectionLimits(config: Config): Pick<MqttSettings, 'outputBufferLimit' | 'drainTimeoutMs' | 'maxSubscriptions' | 'publishRate' | 'publishBurst' | 'publishRateAction'> {
  const l = config.limits;
  return {
    outputBufferLimit: l.outputBufferSize,
    drainTimeoutMs: l.drainTimeout * 1000,
    maxSubscriptions: l.maxSubscriptions,
    publishRate: l.publishRate,
    publishBurst: l.publishBurst > 0 ? l.publishBurst : l.publishRate,
    publishRateAction: l.publishRateAction,
  };
}

function sessionLimitsOf(config: Config): SessionLimits {
  return {
    maxQueued: config.mqtt.maxQueuedMessages,
    maxQueuedBytes: config.limits.maxQueuedBytes,
    dropPolicy: config.mqtt.queueDropPolicy,
    queueQos0: config.mqtt.queueQos0,
  };
}

function queueOptionsOf(config: Config): QueueOptions {
  return {
    maxDeliveries: config.queues.maxDeliveries,
    deadLetterExpired: config.queues.deadLetterExpired,
    defaultPrefetch: config.queues.prefetch,
  };
}

/** The configured store, and why that engine (for the start-up log and status). */
export function stompSettings(config: Config, version: string): StompSettings {
  const s = config.stomp;
  return {
    frameLimits: { maxBody: s.maxBodySize, maxHeaderLine: s.maxHeaderLine, maxHeaders: s.maxHeaders },
    heartbeatMs: s.heartbeat,
    connectTimeoutMs: s.connectTimeout * 1000,
    topicMapping: s.topicMapping,
    topicLimits: { maxLength: config.mqtt.maxTopicLength, maxLevels: config.mqtt.maxTopicLevels },
    defaultPrefetch: config.queues.prefetch,
    ...connectionLimits(config),
    serverName: `Junction/${version}`,
  };
}

function openStore(config: Config): { store: Store; reason: string } {
  const { dir, sync } = config.storage;
  const choice = chooseEngine(config.storage.engine, dir);
  switch (choice.engine) {
    case 'memory':
      return { store: new MemoryStore(), reason: choice.reason };
    case 'rocksdb':
      return { store: new KvStore(dir, new RocksEngine(engineDir(dir, 'rocksdb')), sync), reason: choice.reason };
    case 'leveldb':
      return { store: new KvStore(dir, new LevelEngine(engineDir(dir, 'leveldb')), sync), reason: choice.reason };
  }
}

export class Broker implements Reloadable {
  private readonly connections = new Set<Connection>();
  private stopping: Promise<void> | undefined;
  private control: ControlServer | undefined;
  /** The broker's own access control (undefined when the caller gave one). */
  private auth: BrokerAccess | undefined;
  /** The admin API, health, metrics and dashboard (src/server/http; routes in http/mount.ts). */
  http!: HttpApp;
  /** The listener of `admin.bind`, when set (then http listeners serve WebSocket upgrades only). */
  adminListener: RunningListener | undefined;
  /** Storage open and usable (health: false before start completes and once stop closes it). */
  storageOpen = false;
  /** Metrics registry, stats stream and $SYS publisher (src/server/metrics, src/server/sys.ts). */
  telemetry: Telemetry | undefined;
  /** Traces by client id, topic or IP (src/server/traces; API /api/v1/traces). */
  traces: TraceManager | undefined;
  /** The process log, when the broker made it (not when the caller gave a logger). */
  logHub: LogHub | undefined;
  /** Where the config came from (reload reads it again). */
  configSource: ConfigSource = {};
  /** Hot reload: SIGHUP, POST /api/v1/reload, the file watch (src/server/reload.ts). */
  private reloader!: Reloader;
  /** Told after every reload attempt (admin API SSE `reload` events). */
  readonly reloadListeners = new Set<(status: ReloadStatus, result: ReloadResult) => void>();
  /** New connections are made by these; a reload replaces them (limits apply to new connections). */
  private accept!: { mqtt: (t: Transport) => Connection; stomp: (t: Transport) => Connection };
  /** The objects sessions and queues read their limits from: a reload updates them in place. */
  private sessionLimits!: { -readonly [K in keyof SessionLimits]: SessionLimits[K] };
  private admission!: Admission;

  private constructor(
    /** The configuration in force (a reload replaces it; restart-only keys keep their start value). */
    public config: Config,
    readonly core: Core,
    readonly listeners: RunningListener[],
    readonly log: Logger,
    /** The storage engine in use and why it was chosen (status, health). */
    readonly storage: { readonly engine: string; readonly reason: string },
  ) {}

  static async start(config: Config, opts: BrokerOptions = {}): Promise<Broker> {
    let logHub: LogHub | undefined;
    try {
      logHub = opts.log ? undefined : new LogHub({ level: config.log.level, format: config.log.format, file: config.log.file, ...(opts.logSink ? { sink: opts.logSink } : {}) });
    } catch (err) {
      throw new ConfigError(opts.configSource?.file ?? 'command line', 'log.file', `cannot open ${config.log.file} for appending: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const log = opts.log ?? logHub!.logger();
    // TLS material is read and checked before anything opens: a bad file stops the start cleanly.
    const specs = listenersOf(config);
    const tls = new Map(specs.map((spec) => [spec.name, prepareTls(spec, log)] as const));
    const stats = new Stats();
    // Password and ACL files too: read and checked before anything opens.
    const auth = opts.access ? undefined : new BrokerAccess(authSettings(config, specs), log, stats);
    const opened = opts.store ? { store: opts.store, reason: 'given by the caller' } : openStore(config);
    const store = opened.store;
    if (store instanceof KvStore && (await controlAnswers(store.dir))) {
      throw new StoreOpenError(`data directory ${store.dir} is in use by another running broker (its control socket answers); stop it or use another --data-dir`);
    }
    if (store instanceof KvStore && !config.storage.sync) {
      log.warn('storage.sync is false: acknowledged messages can be lost if the machine crashes', { dir: store.dir });
    }
    const sessionLimits = sessionLimitsOf(config);
    const core = new Core({
      store,
      log,
      stats,
      dropLogIntervalMs: config.limits.dropLogInterval * 1000,
      access: opts.access ?? auth!,
      // Fresh objects: a reload assigns new values into them, and every session and queue sees them.
      limits: sessionLimits,
      queues: queueOptionsOf(config),
    });
    try {
      await core.open();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    for (const b of config.queues.bindings) core.router.bindQueue(b.queue, b.filter);
    const listeners: RunningListener[] = [];
    const broker = new Broker(config, core, listeners, log, { engine: store.engine, reason: opened.reason });
    broker.auth = auth;
    broker.logHub = logHub;
    broker.traces = new TraceManager(core.tracing, core.stats, log, config.trace, store instanceof KvStore ? join(store.dir, 'traces') : undefined);
    broker.configSource = opts.configSource ?? {};
    broker.sessionLimits = sessionLimits;
    broker.storageOpen = true;
    const app = new HttpApp({
      broker,
      tokens: config.admin.tokens,
      log,
      unavailable: () => (broker.draining ? 'the broker is shutting down' : !broker.storageOpen ? 'storage is not open' : undefined),
    });
    broker.http = app;
    mountRoutes(app);
    const serveHttp = (req: IncomingMessage, res: ServerResponse): void => app.handle(req, res);
    broker.accept = { mqtt: mqttAdapter(core, mqttSettings(config)), stomp: stompAdapter(core, stompSettings(config, VERSION)) };
    broker.admission = new Admission(config.limits.maxConnections, core.stats, log);
    const ctx: ListenerContext = {
      adapters: { mqtt: (t) => broker.track(broker.accept.mqtt(t)), stomp: (t) => broker.track(broker.accept.stomp(t)) },
      log,
      stats: core.stats,
      handshakeTimeoutMs: config.mqtt.connectTimeout * 1000,
      // Room for a packet or frame at its limit, so an oversized one gets the protocol's own error.
      maxMessage: {
        mqtt: 2 * config.mqtt.maxPacketSize + 16,
        stomp: 2 * (config.stomp.maxBodySize + config.stomp.maxHeaders * config.stomp.maxHeaderLine),
      },
      admission: broker.admission,
      limitsOf: (spec) => listenerLimits(broker.config, spec),
      refusers: { mqtt: refuseMqtt, stomp: refuseStomp },
      // With admin.bind the app has its own listener and device http listeners only upgrade.
      ...(config.admin.bind === undefined ? { http: serveHttp } : {}),
    };
    // All at once: a client that sees one port open finds the others open too, near enough.
    const bound = await Promise.allSettled(specs.map((spec) => listen(spec, ctx, tls.get(spec.name))));
    for (const r of bound) if (r.status === 'fulfilled') listeners.push(r.value);
    let failed = bound.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const adminBind = config.admin.bind;
    if (!failed && adminBind !== undefined) {
      const spec: ListenerConfig = { name: 'admin', protocol: 'http', host: adminBind.host, port: adminBind.port };
      try {
        // Apart from the devices' connection limits (limits.*): Prometheus keeps a keep-alive
        // socket, and the API and dashboard must answer most when devices fill maxConnections.
        const operators = new Admission(0, core.stats, log);
        const unlimited = { maxConnections: 0, maxConnectionsPerAddress: 0, connectRate: 0, connectBurst: 0 };
        broker.adminListener = await listen(spec, { ...ctx, http: serveHttp, admission: operators, limitsOf: () => unlimited });
      } catch (err) {
        failed = { status: 'rejected', reason: err };
      }
    }
    if (failed) {
      log.error('listener failed: the broker does not start', { evt: 'listener.failed', error: failed.reason instanceof Error ? failed.reason.message : String(failed.reason) });
      for (const l of listeners) await l.close();
      broker.storageOpen = false;
      await core.close();
      throw failed.reason;
    }
    if (store instanceof KvStore) {
      broker.control = await startControl(store, log).catch((err: unknown) => {
        log.warn('control socket unavailable: export needs the broker stopped', { error: String(err) });
        return undefined;
      });
    }
    for (const l of listeners) {
      log.info('listening', {
        evt: 'listener.started',
        listener: l.spec.name,
        protocol: l.spec.protocol,
        host: l.host,
        port: l.port,
        ...(l.spec.tls ? { tls: true, ...l.certificate() } : {}),
        ...(l.gateway ? { websocket: l.gateway.paths().join(' ') } : {}),
      });
    }
    for (const l of listeners) if (l.spec.tls) log.info('TLS certificate loaded', { evt: 'tls.certificate_loaded', listener: l.spec.name, ...l.certificate() });
    if (broker.adminListener) log.info('listening', { evt: 'listener.started', listener: 'admin', protocol: 'http', host: broker.adminListener.host, port: broker.adminListener.port, serves: 'admin API, dashboard, metrics' });
    broker.telemetry = new Telemetry(core, config, {
      version: VERSION,
      certificates: () =>
        [...listeners, ...(broker.adminListener ? [broker.adminListener] : [])].flatMap((l) => {
          const notAfter = Date.parse(l.certificate()?.['validTo'] ?? '');
          return Number.isNaN(notAfter) ? [] : [[l.spec.name, notAfter] as const];
        }),
      ...(store instanceof KvStore ? { dataDir: store.dir } : {}),
    });
    broker.telemetry.start();
    if (auth) {
      auth.onReload = () => void core.recheckAll();
      log.info('access control', auth.describe());
    }
    // One watch for the config file and every file it names, auth and TLS files included.
    broker.reloader = new Reloader(broker);
    broker.reloader.watch();
    log.info('broker started', {
      node: config.node.name,
      storage: store.engine,
      storageReason: opened.reason,
      ...(store instanceof KvStore ? { dataDir: store.dir, sync: config.storage.sync } : {}),
    });
    return broker;
  }

  /** Stopping: no new work is taken (health, API 503). */
  get draining(): boolean {
    return this.stopping !== undefined;
  }

  /** Port a listener is bound to (tests start on port 0); 'admin' is the `admin.bind` listener. */
  port(name = 'mqtt'): number {
    if (name === 'admin' && this.adminListener) return this.adminListener.port;
    const l = this.listeners.find((x) => x.spec.name === name);
    if (!l) throw new Error(`no listener named ${name}`);
    return l.port;
  }

  /** Re-reads every TLS listener's files (SIGHUP): new handshakes use what changed. */
  reloadTls(): void {
    for (const l of this.listeners) if (l.spec.tls) l.reloadTls();
  }

  /**
   * SIGHUP, POST /api/v1/reload, the file watch: the config file and every file it names read
   * again, all or nothing (src/server/reload.ts). `{result: "applied", changed, restartRequired}`,
   * or `{result: "rejected", errors: [{file, line, path, message}]}` with nothing changed.
   */
  reload(trigger: ReloadTrigger = 'api'): ReloadResult {
    return this.reloader.reload(trigger);
  }

  /** The last reload attempt (metrics, /overview lastReload, dashboard). */
  get reloadStatus(): ReloadStatus {
    return this.reloader.status;
  }

  /** The same, under the name the admin API reads (`/overview` lastReload: ok, at, errors). */
  get lastReload(): ReloadStatus {
    return this.reloader.status;
  }

  /** Keys changed in the config file that wait for a restart (GET /api/v1/config `pendingRestart`). */
  get pendingRestart(): readonly string[] {
    return this.reloader.pendingRestart;
  }

  /** Opens log.file again under its name (SIGHUP after logrotate moved it). */
  reopenLogs(): void {
    this.logHub?.reopen();
  }

  /** Reloadable: the auth settings a config gives. */
  authSettings(config: Config): AuthSettings {
    return authSettings(config, listenersOf(config));
  }

  /** Reloadable: puts a checked configuration in force (auth and TLS material are installed already). */
  applyConfig(config: Config): void {
    this.config = config;
    this.logHub?.configure({ ...this.logHub.options, level: config.log.level, format: config.log.format, file: config.log.file });
    this.accept = { mqtt: mqttAdapter(this.core, mqttSettings(config)), stomp: stompAdapter(this.core, stompSettings(config, VERSION)) };
    this.admission.maxConnections = config.limits.maxConnections;
    const specs = listenersOf(config);
    for (const l of this.listeners) {
      const spec = specs.find((s) => s.name === l.spec.name);
      if (spec) l.gate.update(listenerLimits(config, spec));
    }
    Object.assign(this.sessionLimits, sessionLimitsOf(config));
    Object.assign(this.core.router.queues.options, queueOptionsOf(config));
    for (const b of config.queues.bindings) this.core.router.bindQueue(b.queue, b.filter);
    this.http.auth.setTokens(config.admin.tokens);
    this.telemetry?.apply(config);
    this.traces?.configure(config.trace);
    // The ACL may have changed: subscriptions are held to it (removed ones are logged by the core).
    if (this.auth) this.core.recheckAll();
  }

  /** Reloadable: disconnects clients whose credentials the reloaded files no longer accept. */
  revokeInvalid(): number {
    const access = this.auth;
    if (!access) return 0;
    let revoked = 0;
    for (const session of this.core.sessions.sessions.values()) {
      const outlet = session.currentOutlet;
      if (!outlet || !session.identity || access.stillValid(session.identity)) continue;
      this.log.warn('credentials no longer valid: disconnecting the client', {
        evt: 'client.kicked',
        reason: 'auth_revoked',
        clientId: session.clientId,
        username: session.identity.username,
        protocol: session.protocol,
      });
      outlet.close('auth-revoked');
      revoked++;
    }
    return revoked;
  }

  /** Reloadable: a reload ended (metrics read core.stats; the API's SSE listens here). */
  noteReload(status: ReloadStatus, result: ReloadResult): void {
    this.core.stats.noteReload(status.ok, status.at);
    for (const l of this.reloadListeners) l(status, result);
  }

  /** The 1 Hz stats stream and its history (admin API `/stream`, `/stats/history`). */
  get statsSource(): LiveStats | undefined {
    return this.telemetry?.live;
  }

  /** The access control in force, when it is the broker's own (status, tests). */
  get access(): BrokerAccess | undefined {
    return this.auth;
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private track(c: Connection): Connection {
    this.connections.add(c);
    void c.closed.then(() => this.connections.delete(c));
    return c;
  }

  private async doStop(): Promise<void> {
    this.log.info('broker stopping', { connections: this.connections.size });
    this.http.close();
    const closing = Promise.all([...this.listeners, ...(this.adminListener ? [this.adminListener] : [])].map((l) => l.close()));
    const all = [...this.connections];
    for (const c of all) c.close('shutdown');
    await Promise.all(all.map((c) => c.closed));
    await closing;
    await this.control?.close();
    this.telemetry?.stop();
    this.reloader.close();
    this.traces?.close();
    this.auth?.close();
    this.storageOpen = false;
    await this.core.close();
    this.log.info('broker stopped');
    this.logHub?.close();
  }
}
