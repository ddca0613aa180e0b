/**
 * startBroker(): a real broker in this process on a free port (127.0.0.1:0) with a memory store,
 * stopped automatically after the test file (or call stop()). Config is the defaults plus `config`.
 */
import { afterAll } from 'vitest';
import { Broker } from '../../src/server/broker.js';
import { validateConfig, type Config } from '../../src/server/config.js';
import type { AccessControl } from '../../src/core/access.js';
import type { Logger, LogFields } from '../../src/core/log.js';
import { MemoryStore } from '../../storage/memory.js';
import type { Store } from '../../storage/store.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface TestBroker {
  readonly broker: Broker;
  readonly port: number;
  readonly url: string;
  /** The STOMP listener's port. */
  readonly stompPort: number;
  /** The HTTP (WebSocket) listener's port. */
  readonly httpPort: number;
  readonly store: Store;
  /** Log lines captured while it ran (level, msg, fields). */
  readonly logs: Array<{ level: string; msg: string; fields: LogFields }>;
  stop(): Promise<void>;
}

function captureLogger(logs: TestBroker['logs'], bound: LogFields = {}): Logger {
  const at =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      logs.push({ level, msg, fields: { ...bound, ...fields } });
      if (process.env['JUNCTION_TEST_LOG']) console.log(level, msg, JSON.stringify({ ...bound, ...fields }));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => captureLogger(logs, { ...bound, ...f }) };
}

export interface StartOptions {
  /** As the YAML file holds it; `listeners` entries in the file's form ({ protocol, port, tls: {...} }). */
  readonly config?: DeepPartial<Omit<Config, 'listeners'>> & { readonly listeners?: ReadonlyArray<Record<string, unknown>> };
  /** Reuse a store (restart tests). */
  readonly store?: Store;
  /** Register an afterAll stop (default true). */
  readonly autoStop?: boolean;
  readonly access?: AccessControl;
}

export async function startBroker(opts: StartOptions = {}): Promise<TestBroker> {
  // With a listeners: list the host/port keys must stay unset (they would not be used).
  const own = opts.config?.listeners !== undefined;
  const raw = {
    ...opts.config,
    mqtt: { ...(own ? {} : { host: '127.0.0.1', port: 0 }), ...(opts.config?.mqtt ?? {}) },
    stomp: { ...(own ? {} : { host: '127.0.0.1', port: 0 }), ...(opts.config?.stomp ?? {}) },
    ...(own ? {} : { http: { host: '127.0.0.1', port: 0, ...(opts.config?.http ?? {}) } }),
    log: { level: 'debug', ...(opts.config?.log ?? {}) },
  };
  const config = validateConfig(raw, 'test-config.yaml', process.cwd());
  const store = opts.store ?? new MemoryStore();
  const logs: TestBroker['logs'] = [];
  const broker = await Broker.start(config, { store, log: captureLogger(logs), ...(opts.access ? { access: opts.access } : {}) });
  const portOf = (name: string): number => (broker.listeners.some((l) => l.spec.name === name) ? broker.port(name) : 0);
  const port = portOf('mqtt');
  const tb: TestBroker = {
    broker,
    port,
    stompPort: portOf('stomp'),
    httpPort: portOf('http'),
    url: `mqtt://127.0.0.1:${port}`,
    store,
    logs,
    stop: () => broker.stop(),
  };
  if (opts.autoStop !== false) afterAll(() => broker.stop());
  return tb;
}
