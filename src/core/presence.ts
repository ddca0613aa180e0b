/**
 * Presence: the one place an adapter reports that a client connection opened (its CONNECT was
 * accepted) or closed, with why. It keeps the connection gauges and counters in Stats (so that
 * opened - closed is always the number of open connections) and tells whoever listens: $SYS
 * presence events, the admin API's live `client` events.
 *
 * Listeners run synchronously on the connection's path; they must be cheap and must not throw.
 */
import type { Protocol } from './message.js';
import { CLOSE_REASONS, type CloseKind, type EndpointStats, type Stats } from './stats.js';

export interface ClientInfo {
  /** MQTT client id; for STOMP the `client-id` header, else the broker's session id. */
  readonly clientId: string;
  readonly protocol: Exclude<Protocol, 'internal'>;
  /** As the metrics' `version` label spells it: 3.1, 3.1.1, 5, 1.0, 1.1, 1.2. */
  readonly version: string;
  /** Index of `version` in MQTT_VERSIONS / STOMP_VERSIONS. */
  readonly versionIndex: number;
  /** MQTT: 3, 4 or 5 (EMQX `proto_ver`); STOMP: the version text. */
  readonly protoVer: number | string;
  readonly listener: string;
  /** host:port as the listener saw it. */
  readonly remoteAddress: string;
  /** The broker's port the client reached (EMQX `sockport`); 0 when the transport has none. */
  readonly localPort: number;
  readonly username: string | undefined;
  /** Seconds; STOMP: the heart-beat the client promised, in seconds (0 = none). */
  readonly keepalive: number;
  readonly cleanStart: boolean;
  /** Session Expiry Interval in seconds (STOMP: 0). */
  readonly expiryInterval: number;
  /** ms since epoch. */
  readonly connectedAt: number;
  readonly endpoint: EndpointStats;
}

export interface PresenceListener {
  connected?(client: ClientInfo): void;
  disconnected?(client: ClientInfo, reason: CloseKind, at: number): void;
}

export class Presence {
  private listeners: PresenceListener[] = [];
  /** Connections open now (CONNECT accepted, not closed yet). */
  count = 0;
  /** Most connections open at once since the start ($SYS clients/maximum). */
  maximum = 0;

  constructor(private readonly stats: Stats) {}

  /** Adds a listener; returns the function that removes it. */
  listen(l: PresenceListener): () => void {
    this.listeners = [...this.listeners, l];
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }

  connected(c: ClientInfo): void {
    c.endpoint.opened++;
    c.endpoint.open[c.versionIndex]!++;
    if (++this.count > this.maximum) this.maximum = this.count;
    for (const l of this.listeners) l.connected?.(c);
  }

  disconnected(c: ClientInfo, reason: CloseKind): void {
    c.endpoint.open[c.versionIndex]!--;
    c.endpoint.closed[CLOSE_REASONS.indexOf(reason)]!++;
    this.count--;
    const at = Date.now();
    for (const l of this.listeners) l.disconnected?.(c, reason, at);
  }
}
