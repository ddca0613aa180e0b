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
import type { Connection } from '../core/transport.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chooseEngine } from '../../storage/engine-choice.js';
import { LevelEngine } from '../../storage/engines/leveldb.js';
import { RocksEngine } from '../../storage/engines/rocksdb.js';
import { KvStore, engineDir } from '../../storage/kv-store.js';
import { MemoryStore } from '../../storage/memory.js';
import { StoreOpenError, type Store } from '../../storage/store.js';
import { mqttAdapter, type MqttSettings } from '../../protocols/mqtt/index.js';
import { stompAdapter, type StompSettings } from '../../protocols/stomp/index.js';
import { listenersOf, type Config, type ListenerConfig } from './config.js';
import { controlAnswers, startControl, type ControlServer } from './control.js';
import { listen, prepareTls, type ListenerContext, type RunningListener } from './listeners.js';
import { HttpApp } from './http/app.js';
import { mountRoutes } from './http/mount.js';
import { createLogger } from './log.js';
import { VERSION } from './version.js';

export interface BrokerOptions {
  /** Use this store instead of the one the config names (tests: restart on the same MemoryStore). */
  readonly store?: Store;
  readonly log?: Logger;
  /** Authentication and authorization (default: allow all). */
  readonly access?: AccessControl;
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

export class Broker {
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

  private constructor(
    readonly config: Config,
    readonly core: Core,
    readonly listeners: RunningListener[],
    readonly log: Logger,
    /** The storage engine in use and why it was chosen (status, health). */
    readonly storage: { readonly engine: string; readonly reason: string },
  ) {}

  static async start(config: Config, opts: BrokerOptions = {}): Promise<Broker> {
    const log = opts.log ?? createLogger({ level: config.log.level, format: config.log.format });
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
    const core = new Core({
      store,
      log,
      stats,
      access: opts.access ?? auth!,
      limits: {
        maxQueued: config.mqtt.maxQueuedMessages,
        dropPolicy: config.mqtt.queueDropPolicy,
        queueQos0: config.mqtt.queueQos0,
      },
      queues: {
        maxDeliveries: config.queues.maxDeliveries,
        deadLetterExpired: config.queues.deadLetterExpired,
        defaultPrefetch: config.queues.prefetch,
      },
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
    const mqtt = mqttAdapter(core, mqttSettings(config));
    const stomp = stompAdapter(core, stompSettings(config, VERSION));
    const ctx: ListenerContext = {
      adapters: { mqtt: (t) => broker.track(mqtt(t)), stomp: (t) => broker.track(stomp(t)) },
      log,
      stats: core.stats,
      handshakeTimeoutMs: config.mqtt.connectTimeout * 1000,
      // Room for a packet or frame at its limit, so an oversized one gets the protocol's own error.
      maxMessage: {
        mqtt: 2 * config.mqtt.maxPacketSize + 16,
        stomp: 2 * (config.stomp.maxBodySize + config.stomp.maxHeaders * config.stomp.maxHeaderLine),
      },
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
        broker.adminListener = await listen(spec, { ...ctx, http: serveHttp });
      } catch (err) {
        failed = { status: 'rejected', reason: err };
      }
    }
    if (failed) {
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
        listener: l.spec.name,
        protocol: l.spec.protocol,
        host: l.host,
        port: l.port,
        ...(l.spec.tls ? { tls: true, ...l.certificate() } : {}),
        ...(l.gateway ? { websocket: l.gateway.paths().join(' ') } : {}),
      });
    }
    if (broker.adminListener) log.info('listening', { listener: 'admin', protocol: 'http', host: broker.adminListener.host, port: broker.adminListener.port, serves: 'admin API, dashboard, metrics' });
    if (auth) {
      auth.onReload = () => void core.recheckAll();
      auth.watchFiles();
      log.info('access control', auth.describe());
    }
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
   * SIGHUP: TLS material, password file and ACL file are read again. A file with an error leaves
   * what was in force (never no ACL at all); returns that error, if any.
   */
  reload(): string | undefined {
    this.reloadTls();
    return this.auth?.reload();
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
    this.http.closeStreams();
    const closing = Promise.all([...this.listeners, ...(this.adminListener ? [this.adminListener] : [])].map((l) => l.close()));
    const all = [...this.connections];
    for (const c of all) c.close('shutdown');
    await Promise.all(all.map((c) => c.closed));
    await closing;
    await this.control?.close();
    this.auth?.close();
    this.storageOpen = false;
    await this.core.close();
    this.log.info('broker stopped');
  }
}
