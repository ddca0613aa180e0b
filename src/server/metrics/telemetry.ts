/**
 * Telemetry: what the broker tells about itself, assembled once per broker: the Prometheus
 * registry (`/metrics`, `/metrics/per-object`), the 1 Hz stats stream and its history (admin API
 * `event: stats`, `/stats/history`) and the `$SYS` publisher. `apply` takes new `metrics.*` and
 * `sys.*` settings on reload; `metrics.enabled` itself needs a restart (the registry and the
 * process metrics' event-loop monitor are made once).
 */
import type { Core } from '../../core/core.js';
import type { Config } from '../config.js';
import { SysPublisher } from '../sys.js';
import { LiveStats } from './live.js';
import { BrokerMetrics } from './registry.js';

export interface TelemetryOptions {
  readonly version: string;
  readonly certificates: () => ReadonlyArray<readonly [listener: string, notAfter: number]>;
  readonly dataDir?: string;
}

export class Telemetry {
  /** Undefined when `metrics.enabled` is false. */
  readonly metrics: BrokerMetrics | undefined;
  readonly live: LiveStats;
  readonly sys: SysPublisher;
  private settings: Config['metrics'];

  constructor(
    private readonly core: Core,
    config: Config,
    private readonly opts: TelemetryOptions,
  ) {
    this.settings = config.metrics;
    this.metrics = config.metrics.enabled
      ? new BrokerMetrics({
          core,
          config,
          version: opts.version,
          certificates: opts.certificates,
          perObjectMaxQueues: () => this.settings.perObjectMaxQueues,
          ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
        })
      : undefined;
    core.stats.latencySampleRate = config.metrics.enabled ? config.metrics.deliveryLatencySampleRate : 0;
    this.live = new LiveStats(core);
    this.sys = new SysPublisher(core, { interval: config.sys.interval, presence: config.sys.presence, node: config.node.name, version: opts.version });
  }

  /** The `metrics` settings in force. */
  get config(): Config['metrics'] {
    return this.settings;
  }

  start(): void {
    this.live.start();
    this.sys.start();
  }

  stop(): void {
    this.sys.stop();
    this.live.stop();
  }

  /** Reload: `metrics.*` (but `enabled`) and `sys.*` apply at once; the node name needs a restart. */
  apply(config: Config): void {
    this.settings = { ...config.metrics, enabled: this.settings.enabled };
    this.core.stats.latencySampleRate = this.settings.enabled ? config.metrics.deliveryLatencySampleRate : 0;
    this.sys.update({ interval: config.sys.interval, presence: config.sys.presence, node: this.sysNode, version: this.opts.version });
  }

  private get sysNode(): string {
    return this.sys.node;
  }
}
