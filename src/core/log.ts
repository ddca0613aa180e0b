/**
 * Logger: the interface the core and adapters log through. One event per call, with a short
 * message and structured fields; the server decides the format (src/server/log.ts).
 */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * The `evt` field: a stable name for the events operators search and alert on (the message text
 * may change, these do not). Lines that are not one of these carry no `evt`. Their other fields,
 * where they apply: clientId, username, peer (address:port), listener, protocol, topic, queue,
 * reason, durationMs. `auth.failed` and `acl.denied` are throttled per client by the process log.
 */
export const LOG_EVENTS = [
  'client.connected',
  'client.disconnected',
  'client.kicked',
  'auth.failed',
  'acl.denied',
  'session.expired',
  'queue.dead_lettered',
  'slow_consumer.disconnected',
  'config.reloaded',
  'config.reload_failed',
  'listener.started',
  'listener.failed',
  'tls.certificate_loaded',
  'store.slow_commit',
] as const;
export type LogEvent = (typeof LOG_EVENTS)[number];

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
