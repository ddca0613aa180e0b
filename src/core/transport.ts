/**
 * Transport: a connected byte stream as an adapter receives it. TCP, TLS and WebSocket all arrive
 * as a Duplex, so an adapter cannot tell (and must not care) which one it is on, except for the
 * identity a verified client certificate gives.
 */
import type { Duplex } from 'node:stream';

export interface Transport {
  readonly stream: Duplex;
  /** Listener name from config, for logs and per-listener rules. */
  readonly listener: string;
  readonly remoteAddress: string;
  /** The listener's port ($SYS presence `sockport`); known to the listener, no getsockname per client. */
  readonly localPort: number;
  /** Identity from a verified client certificate (CN or SAN, as the listener says). */
  readonly certIdentity?: string;
}

/** A live connection as the server tracks it, whatever its protocol. */
export interface Connection {
  /** Ends the connection from the broker's side (shutdown, admin kick). */
  close(reason: 'shutdown' | 'kicked'): void;
  readonly closed: Promise<void>;
}

/**
 * Why a listener refuses a connection at accept: `rate` (its connect rate) or `quota` (a
 * connection limit of the broker, the listener or the source address).
 */
export type RefusalKind = 'rate' | 'quota';

/**
 * How an adapter says no to a connection the listener will not admit, in its protocol's words if
 * that is cheap, then closes it. Nothing of the adapter (parser, session) is made for it.
 */
export type Refuse = (stream: Duplex, why: RefusalKind, deadlineMs: number) => void;
