/**
 * Admission: whether a listener takes a connection it has just accepted, decided before anything
 * is made for it (no TLS handshake, no HTTP parser, no adapter, no session).
 *
 * Checked in this order, each refusal counted and logged: the broker's `limits.maxConnections`
 * (all listeners together), the listener's own maximum, its maximum per source address, then its
 * connect rate (a token bucket; a connection refused for a maximum takes no token). A connection
 * counts from accept until its socket closes, whatever happens in between.
 *
 * Refusal logs are per listener and reason: the first refusal is logged at once, then one line per
 * 10 s sums those that followed, so a connection flood cannot flood the log as well.
 */
import type net from 'node:net';
import type { Logger } from '../core/log.js';
import type { Stats } from '../core/stats.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { RefusalKind } from '../core/transport.js';
import type { ListenerLimits } from './config.js';

export type Refusal = 'max-connections' | 'listener-max-connections' | 'address-max-connections' | 'connect-rate';

const LOG_WINDOW_MS = 10_000;

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
export function addressOf(socket: net.Socket): string {
  const a = socket.remoteAddress ?? '?';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The broker-wide count, shared by every listener's gate. */
export class Admission {
  /** Connections open on all listeners. */
  open = 0;

  constructor(
    /** 0: no limit. A config reload changes it. */
    public maxConnections: number,
    readonly stats: Stats,
    readonly log: Logger,
  ) {}

  gate(listener: string, limits: ListenerLimits): ListenerGate {
    return new ListenerGate(this, listener, limits);
  }
}

export class ListenerGate {
  /** Connections open on this listener. */
  open = 0;
  /** Refused connections being answered politely right now (see `politely`). */
  answering = 0;
  private readonly perAddress = new Map<string, number>();
  private bucket: TokenBucket | undefined;
  private readonly logWindows = new Map<Refusal, { count: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly broker: Admission,
    readonly listener: string,
    public limits: ListenerLimits,
  ) {
    this.bucket = limits.connectRate > 0 ? new TokenBucket(limits.connectRate, limits.connectBurst, Date.now()) : undefined;
  }

  /** New limits (config reload): connections already in stay; the connect rate starts a full bucket. */
  update(limits: ListenerLimits): void {
    if (JSON.stringify(limits) === JSON.stringify(this.limits)) return;
    this.limits = limits;
    this.bucket = limits.connectRate > 0 ? new TokenBucket(limits.connectRate, limits.connectBurst, Date.now()) : undefined;
  }

  /** Counts `socket` in when the limits allow (its close counts it out); otherwise says why not. */
  admit(socket: net.Socket): Refusal | undefined {
    const b = this.broker;
    const l = this.limits;
    if (b.maxConnections > 0 && b.open >= b.maxConnections) return this.refused('max-connections', socket);
    if (l.maxConnections > 0 && this.open >= l.maxConnections) return this.refused('listener-max-connections', socket);
    const address = addressOf(socket);
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (l.maxConnectionsPerAddress > 0 && fromAddress >= l.maxConnectionsPerAddress) return this.refused('address-max-connections', socket);
    if (this.bucket && !this.bucket.take(Date.now())) return this.refused('connect-rate', socket);
    b.open++;
    this.open++;
    this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      b.open--;
      this.open--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n > 0) this.perAddress.set(address, n);
      else this.perAddress.delete(address);
    });
    return undefined;
  }

  /** Connections open from `address` on this listener (tests, status). */
  openFrom(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  private refused(why: Refusal, socket: net.Socket): Refusal {
    const stats = this.broker.stats;
    // junction_connections_rejected_total has one reason for limits at accept, the rate included.
    stats.reject(this.listener, 'max_connections');
    if (why === 'connect-rate') stats.refusedConnectRate++;
    else if (why === 'address-max-connections') stats.refusedPerAddress++;
    else stats.refusedMaxConnections++;
    const open = this.logWindows.get(why);
    if (open) {
      open.count++;
      return why;
    }
    this.broker.log.warn('connection refused at accept', { listener: this.listener, remote: addressOf(socket), reason: why, ...this.limitOf(why) });
    this.openLogWindow(why);
    return why;
  }

  /** While the window is open, refusals are summed; each window that saw some logs their number. */
  private openLogWindow(why: Refusal): void {
    const timer = setTimeout(() => {
      const w = this.logWindows.get(why);
      this.logWindows.delete(why);
      if (w && w.count > 0) {
        this.broker.log.warn('connections refused at accept', { listener: this.listener, reason: why, count: w.count, seconds: LOG_WINDOW_MS / 1000, ...this.limitOf(why) });
        this.openLogWindow(why);
      }
    }, LOG_WINDOW_MS);
    timer.unref();
    this.logWindows.set(why, { count: 0, timer });
  }

  private limitOf(why: Refusal): Record<string, number> {
    switch (why) {
      case 'max-connections':
        return { limit: this.broker.maxConnections };
      case 'listener-max-connections':
        return { limit: this.limits.maxConnections };
      case 'address-max-connections':
        return { limit: this.limits.maxConnectionsPerAddress };
      case 'connect-rate':
        return { rate: this.limits.connectRate, burst: this.limits.connectBurst };
    }
  }

  /** Stops the log windows (listener closed). */
  close(): void {
    for (const w of this.logWindows.values()) clearTimeout(w.timer);
    this.logWindows.clear();
  }
}

export function refusalKind(why: Refusal): RefusalKind {
  return why === 'connect-rate' ? 'rate' : 'quota';
}
