/**
 * BrokerAccess: the broker's AccessControl, built from the `auth` config: a password file, an ACL
 * file, an HTTP hook, anonymous access (broker-wide, overridable per listener), and a lockout of
 * addresses that keep failing. Both protocols ask the same questions through it.
 *
 * Reload (SIGHUP, or the files changing) is all or nothing: the new password and ACL files are read
 * and checked completely before they replace the old ones; a file with an error leaves the old
 * rules in force, and says so. Junction never falls back to "no ACL".
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { AccessControl, Action, AuthResult, Credentials, Identity } from '../../core/access.js';
import { parseDelayedTopic } from '../../core/delayed.js';
import type { Logger } from '../../core/log.js';
import type { Stats } from '../../core/stats.js';
import { Acl, AclError, type CompiledAcl } from './acl.js';
import { HttpAuthHook, type HttpHookSettings } from './http-hook.js';
import { Lockout, addressOf, type LockoutSettings } from './lockout.js';
import { PasswordFileError, PasswordVerifier, parsePasswordFile } from './passwords.js';

export interface AuthSettings {
  readonly passwordFile?: string | undefined;
  readonly aclFile?: string | undefined;
  /** undefined: false when a password file or HTTP hook is configured, true otherwise. */
  readonly allowAnonymous?: boolean | undefined;
  /** Listener name -> allowAnonymous, for listeners that override the broker-wide setting. */
  readonly listenerAnonymous: ReadonlyMap<string, boolean>;
  readonly http?: HttpHookSettings | undefined;
  readonly lockout: LockoutSettings;
}

export class AuthLoadError extends Error {
  constructor(
    message: string,
    /** The file, and the line when the problem is on one (reload errors name both). */
    readonly file?: string,
    readonly line?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'AuthLoadError';
  }
}

/** The password and ACL files read and checked, ready to replace those in force (reload). */
export interface AuthMaterial {
  readonly passwords: PasswordVerifier | undefined;
  readonly acl: Acl | undefined;
}

/**
 * How a connected client was let in, so that a reload can tell whether it still would be:
 * the password-file entry (its hash string) it matched, anonymous access on its listener, or a
 * way a reload cannot take back (a client certificate, the auth hook, a username taken as given).
 */
type Basis =
  | { readonly kind: 'password'; readonly user: string; readonly hash: string }
  | { readonly kind: 'anonymous'; readonly listener: string }
  | { readonly kind: 'certificate' | 'hook' | 'unchecked' };

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new AuthLoadError(`cannot read ${what} ${path}: ${code}`, path, undefined, `cannot read ${what}: ${code}`);
  }
}

function loadPasswords(path: string): PasswordVerifier {
  try {
    return new PasswordVerifier(parsePasswordFile(readFile(path, 'password file'), path));
  } catch (err) {
    if (err instanceof PasswordFileError) throw new AuthLoadError(err.message, err.file, err.line, err.reason);
    throw err instanceof AuthLoadError ? err : new AuthLoadError((err as Error).message, path);
  }
}

function loadAcl(path: string): Acl {
  try {
    return Acl.parse(readFile(path, 'ACL file'), path);
  } catch (err) {
    if (err instanceof AclError) throw new AuthLoadError(err.message, err.file, err.line, err.reason);
    throw err instanceof AuthLoadError ? err : new AuthLoadError((err as Error).message, path);
  }
}

export class BrokerAccess implements AccessControl {
  private passwords: PasswordVerifier | undefined;
  /**
   * Users a reload removed from the password file or gave a new hash: their old credentials are
   * refused as "not authorized" (MQTT 5 0x87, 3.1.1 code 5), as operations.md asks of a revoked
   * user, not as a mistyped password. Forgotten at their next successful login.
   */
  private revoked = new Set<string>();
  private acl: Acl | undefined;
  /** Compiled rules per connection identity; replaced whole on reload. */
  private compiled = new WeakMap<Identity, CompiledAcl>();
  /** How each identity handed out was admitted (see Basis). */
  private readonly basis = new WeakMap<Identity, Basis>();
  private hook: HttpAuthHook | undefined;
  private lockout: Lockout;
  private anonymous: boolean;
  private watchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  /** Told after a reload changed the rules (the broker re-checks existing subscriptions). */
  onReload: () => void = () => undefined;
  lastReload: { readonly at: number; readonly ok: boolean; readonly error?: string } = { at: Date.now(), ok: true };

  constructor(
    private s: AuthSettings,
    private readonly log: Logger,
    private readonly stats: Stats,
  ) {
    // Everything is read before the broker accepts a client: a bad file stops the start.
    if (s.passwordFile !== undefined) this.passwords = loadPasswords(s.passwordFile);
    if (s.aclFile !== undefined) this.acl = loadAcl(s.aclFile);
    this.hook = s.http ? new HttpAuthHook(s.http) : undefined;
    this.lockout = new Lockout(s.lockout);
    this.anonymous = s.allowAnonymous ?? (s.passwordFile === undefined && s.http === undefined);
  }

  /** For the start-up log: what is in force. */
  describe(): Record<string, unknown> {
    return {
      allowAnonymous: this.anonymous,
      ...(this.s.allowAnonymous === undefined ? { allowAnonymousBecause: this.anonymous ? 'no password file or auth hook' : 'a password file or auth hook is set' } : {}),
      ...(this.passwords ? { users: this.passwords.size, passwordFile: this.s.passwordFile } : {}),
      ...(this.acl ? { aclRules: this.acl.ruleCount, aclFile: this.s.aclFile } : {}),
      ...(this.hook ? { authHook: this.s.http?.url } : {}),
      ...(this.s.listenerAnonymous.size > 0 ? { anonymousPerListener: Object.fromEntries(this.s.listenerAnonymous) } : {}),
    };
  }

  async authenticate(c: Credentials): Promise<AuthResult> {
    const address = addressOf(c.remoteAddress);
    if (this.lockout.isBanned(address)) {
      this.stats.authBanned++;
      return { ok: false, reason: 'banned' };
    }
    const result = await this.check(c);
    if (result.ok) this.lockout.succeed(address);
    else {
      this.stats.authFailures++;
      // An auth hook that is down is no guess at a password: counting it would lock out every
      // device behind an address once the hook is back.
      if (result.reason !== 'unavailable' && this.lockout.fail(address)) {
        this.stats.authBans++;
        this.log.warn('address locked out after repeated failed logins', { address, seconds: this.s.lockout.banMs / 1000 });
      }
    }
    return result;
  }

  private async check(c: Credentials): Promise<AuthResult> {
    const ok = (username: string | undefined, basis: Basis): AuthResult => {
      const identity = username === undefined ? { clientId: c.clientId } : { clientId: c.clientId, username };
      this.basis.set(identity, basis);
      return { ok: true, identity };
    };
    // A verified client certificate is the identity: no password needed (use_identity_as_username).
    if (c.certIdentity !== undefined) return ok(c.certIdentity, { kind: 'certificate' });
    if (c.username === undefined) {
      const allowed = this.s.listenerAnonymous.get(c.listener) ?? this.anonymous;
      return allowed ? ok(undefined, { kind: 'anonymous', listener: c.listener }) : { ok: false, reason: 'not-authorized' };
    }
    const passwords = this.passwords;
    if (passwords?.has(c.username)) {
      // The entry checked, read before the await: a reload meanwhile must not be credited to it.
      const hash = passwords.hashOf(c.username)!;
      if (await passwords.verify(c.username, c.password ?? Buffer.alloc(0))) {
        this.revoked.delete(c.username);
        return ok(c.username, { kind: 'password', user: c.username, hash });
      }
      return { ok: false, reason: this.revoked.has(c.username) ? 'not-authorized' : 'bad-credentials' };
    }
    if (this.hook) {
      const r = await this.hook.check(c);
      if (r.ok) return ok(c.username, { kind: 'hook' });
      this.log.info('auth hook refused', { clientId: c.clientId, username: c.username, why: r.why });
      return { ok: false, reason: r.why.startsWith('hook answered') || r.why === 'cached' ? 'bad-credentials' : 'unavailable' };
    }
    if (this.passwords) return { ok: false, reason: this.revoked.has(c.username) ? 'not-authorized' : 'bad-credentials' };
    // No password file and no hook: usernames are taken as given (Mosquitto without password_file).
    return ok(c.username, { kind: 'unchecked' });
  }

  authorize(who: Identity, action: Action, topicOrFilter: string): boolean {
    if (!this.acl) return true;
    // `$delayed/<s>/<topic>` is routed to <topic> later: that topic's write rule applies.
    if (action === 'publish') topicOrFilter = parseDelayedTopic(topicOrFilter)?.topic ?? topicOrFilter;
    const rules = this.rulesOf(who);
    const allowed =
      action === 'publish' ? rules.canPublish(topicOrFilter) : action === 'subscribe' ? rules.canSubscribe(topicOrFilter) : rules.canRead(topicOrFilter);
    if (!allowed) {
      this.stats.aclDenied++;
      // junction_authorization_denied_total{action}: publish, subscribe, deliver (a read check).
      this.stats.deniedBy[action === 'publish' ? 0 : action === 'subscribe' ? 1 : 2]!++;
    }
    return allowed;
  }

  needsReadCheck(who: Identity, filter: string): boolean {
    return this.acl !== undefined && this.rulesOf(who).needsReadCheck(filter);
  }

  private rulesOf(who: Identity): CompiledAcl {
    let r = this.compiled.get(who);
    if (!r) {
      r = this.acl!.compile(who.username, who.clientId);
      this.compiled.set(who, r);
    }
    return r;
  }

  /**
   * Reads and checks the password and ACL files `s` names, without using them: the first step of
   * an all-or-nothing reload. Throws AuthLoadError (file, line, reason).
   */
  static load(s: AuthSettings): AuthMaterial {
    return {
      passwords: s.passwordFile !== undefined ? loadPasswords(s.passwordFile) : undefined,
      acl: s.aclFile !== undefined ? loadAcl(s.aclFile) : undefined,
    };
  }

  /** Puts new settings and files read by `load` in force (reload: after every check passed). */
  install(s: AuthSettings, m: AuthMaterial): void {
    const hookChanged = JSON.stringify(s.http) !== JSON.stringify(this.s.http);
    const lockoutChanged = JSON.stringify(s.lockout) !== JSON.stringify(this.s.lockout);
    this.s = s;
    if (this.passwords) {
      for (const [user, hash] of this.passwords.entries()) if (m.passwords?.hashOf(user) !== hash) this.revoked.add(user);
    }
    this.passwords = m.passwords;
    this.acl = m.acl;
    this.compiled = new WeakMap();
    if (hookChanged) this.hook = s.http ? new HttpAuthHook(s.http) : undefined;
    if (lockoutChanged) this.lockout = new Lockout(s.lockout);
    this.anonymous = s.allowAnonymous ?? (s.passwordFile === undefined && s.http === undefined);
    this.lastReload = { at: Date.now(), ok: true };
    this.log.info('auth reloaded', this.describe());
  }

  /** A reload refused because of a password or ACL file: the rules in force stay; logged and counted. */
  reloadFailed(error: string): void {
    this.lastReload = { at: Date.now(), ok: false, error };
    this.stats.authReloadFailures++;
    this.log.error('auth reload failed: the previous rules stay in force', { error });
  }

  /**
   * Whether the client holding `who` would be let in again with what it logged in with: its
   * password-file entry unchanged (same user, same hash), anonymous access still open on its
   * listener. Certificates and hook answers are not taken back here (TLS and the hook's cache
   * rule them); a username that was never checked stays valid only while nothing checks any.
   */
  stillValid(who: Identity): boolean {
    const b = this.basis.get(who);
    if (!b) return true;
    switch (b.kind) {
      case 'password':
        return this.passwords !== undefined ? this.passwords.hashOf(b.user) === b.hash : this.hook === undefined;
      case 'anonymous':
        return this.s.listenerAnonymous.get(b.listener) ?? this.anonymous;
      case 'unchecked':
        return this.passwords === undefined && this.hook === undefined;
      case 'certificate':
      case 'hook':
        return true;
    }
  }

  /** Re-reads the password and ACL files; all or nothing. Returns the error, if any. */
  reload(): string | undefined {
    try {
      this.install(this.s, BrokerAccess.load(this.s));
      this.onReload();
      return undefined;
    } catch (err) {
      const error = (err as Error).message;
      this.reloadFailed(error);
      return error;
    }
  }

  /** Reloads when the password or ACL file changes (watching their directories, so replacing a file by rename counts). */
  watchFiles(): void {
    const files = [this.s.passwordFile, this.s.aclFile].filter((f): f is string => f !== undefined);
    const dirs = new Map<string, Set<string>>();
    for (const f of files) {
      const set = dirs.get(dirname(f)) ?? new Set();
      set.add(basename(f));
      dirs.set(dirname(f), set);
    }
    for (const [dir, names] of dirs) {
      try {
        const w = watch(dir, (_event, name) => {
          if (name !== null && names.has(name.toString())) this.scheduleReload();
        });
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (err) {
        this.log.warn('cannot watch auth files: reload them with SIGHUP', { dir, error: String(err) });
      }
    }
  }

  /** Editors write a file in several steps: wait until it has been quiet for a moment. */
  private scheduleReload(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      this.reload();
    }, 200);
    this.reloadTimer.unref();
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
  }
}
