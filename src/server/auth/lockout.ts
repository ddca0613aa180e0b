/**
 * Lockout: failed logins counted per source address in a sliding window; an address with too many
 * is refused for a cool-down without its credentials being looked at (fail2ban, inside the broker).
 */

export interface LockoutSettings {
  /** Failures within `windowMs` that lock an address out; 0 turns lockout off. */
  readonly attempts: number;
  readonly windowMs: number;
  readonly banMs: number;
}

export class Lockout {
  private readonly failures = new Map<string, number[]>();
  private readonly banned = new Map<string, number>();

  constructor(private readonly s: LockoutSettings) {}

  /** True while `address` is locked out. */
  isBanned(address: string, now = Date.now()): boolean {
    const until = this.banned.get(address);
    if (until === undefined) return false;
    if (until > now) return true;
    this.banned.delete(address);
    return false;
  }

  /** Records a failure; returns true when it locks the address out. */
  fail(address: string, now = Date.now()): boolean {
    if (this.s.attempts <= 0) return false;
    const since = now - this.s.windowMs;
    const list = (this.failures.get(address) ?? []).filter((t) => t > since);
    list.push(now);
    if (list.length >= this.s.attempts) {
      this.failures.delete(address);
      this.banned.set(address, now + this.s.banMs);
      return true;
    }
    this.failures.set(address, list);
    // Bound memory under a spray of addresses: forget the oldest records.
    if (this.failures.size > 100_000) this.failures.delete(this.failures.keys().next().value!);
    return false;
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }

  get bannedCount(): number {
    return this.banned.size;
  }
}

/** "1.2.3.4:5678" / "::1:5678" / "[::1]:5678" -> the address without the port. */
export function addressOf(remote: string): string {
  const colon = remote.lastIndexOf(':');
  const host = colon > 0 ? remote.slice(0, colon) : remote;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
