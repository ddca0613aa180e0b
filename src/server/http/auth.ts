/**
 * Admin API tokens: the config holds only SHA-256 hashes (`admin.tokens: [{name, sha256, role}]`);
 * a token is 32 random bytes in hex, shown once by `junction token create`. A request presents it
 * as `Authorization: Bearer <token>` or, for Basic-only tools, as Basic `<name>:<token>` (EMQX's
 * API keys work that way). Hashes are compared with timingSafeEqual, and every configured token is
 * compared, so the time taken does not tell which one nearly matched.
 *
 * Roles are ordered: viewer < publisher < admin, each including the rights of those below it. A
 * publisher can read what a viewer reads (the dashboard's publish page needs the topic tree), and
 * can publish test messages; only admin changes state (kick, delete, purge, replay, reload).
 *
 * Brute force: after 20 failed attempts (a token presented and wrong) from one address within a
 * minute, that address gets 429 on every authenticated path until the minute since its oldest
 * counted failure has passed, even with a right token, so guessing learns nothing meanwhile. A
 * missing token is not counted: a dashboard that loads before its user logs in is not an attack.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const ROLES = ['viewer', 'publisher', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 1, publisher: 2, admin: 3 };

/** True when `held` grants what `needed` asks for. */
export function roleAllows(held: Role, needed: Role): boolean {
  return RANK[held] >= RANK[needed];
}

export interface TokenConfig {
  readonly name: string;
  /** Lowercase hex SHA-256 of the token text. */
  readonly sha256: string;
  readonly role: Role;
}

/** Who made a request. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new token: 32 random bytes, hex. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

export type AuthOutcome =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly reason: 'missing' | 'malformed' | 'bad-token' | 'no-tokens' };

interface Known {
  readonly name: string;
  readonly role: Role;
  readonly digest: Buffer;
}

const DUMMY = Buffer.alloc(32);

export class TokenAuth {
  private known: Known[] = [];

  constructor(tokens: readonly TokenConfig[]) {
    this.setTokens(tokens);
  }

  /** Replaces the tokens in force (config reload: tokens apply live). */
  setTokens(tokens: readonly TokenConfig[]): void {
    this.known = tokens.map((t) => ({ name: t.name, role: t.role, digest: Buffer.from(t.sha256, 'hex') }));
  }

  get count(): number {
    return this.known.length;
  }

  /** Checks an Authorization header value. */
  check(header: string | undefined): AuthOutcome {
    if (header === undefined || header.trim() === '') return { ok: false, reason: this.known.length === 0 ? 'no-tokens' : 'missing' };
    const space = header.indexOf(' ');
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    let name: string | undefined;
    let token: string;
    if (scheme === 'bearer') {
      token = value;
    } else if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { ok: false, reason: 'malformed' };
      name = decoded.slice(0, colon);
      token = decoded.slice(colon + 1);
    } else {
      return { ok: false, reason: 'malformed' };
    }
    if (token === '') return { ok: false, reason: 'malformed' };
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let match: Known | undefined;
    for (const k of this.known) {
      // Compare with every token, name or not, so the time does not depend on where a match is.
      const same = k.digest.length === 32 ? timingSafeEqual(k.digest, digest) : timingSafeEqual(DUMMY, digest);
      if (same && (name === undefined || name === k.name) && match === undefined) match = k;
    }
    if (!match) return { ok: false, reason: this.known.length === 0 ? 'no-tokens' : 'bad-token' };
    return { ok: true, principal: { name: match.name, role: match.role } };
  }
}

/** Failed attempts per address over a sliding minute (429 after `limit`). */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit = 20,
    private readonly windowMs = 60_000,
    /** Addresses remembered at most; past it the oldest is forgotten (memory stays bounded). */
    private readonly maxAddresses = 10_000,
  ) {}

  /** Seconds until `ip` may try again, or 0 when it may now. */
  blockedFor(ip: string, now = Date.now()): number {
    const list = this.prune(ip, now);
    if (!list || list.length < this.limit) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.windowMs - now) / 1000));
  }

  fail(ip: string, now = Date.now()): void {
    const list = this.prune(ip, now) ?? [];
    list.push(now);
    if (list.length > this.limit) list.shift();
    this.failures.delete(ip); // re-insert: Map order is then least recently failed first
    this.failures.set(ip, list);
    if (this.failures.size > this.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  private prune(ip: string, now: number): number[] | undefined {
    const list = this.failures.get(ip);
    if (!list) return undefined;
    while (list.length > 0 && list[0]! <= now - this.windowMs) list.shift();
    if (list.length === 0) {
      this.failures.delete(ip);
      return undefined;
    }
    return list;
  }
}
