/**
 * Password file: one `user:hash` per line, in Mosquitto's `$7$` format (PBKDF2-HMAC-SHA512, with
 * the iteration count, salt and hash in the string: `$7$<iterations>$<salt base64>$<hash base64>`),
 * so files made by `mosquitto_passwd` work here and ours work in Mosquitto. `junction passwd`
 * writes 100,000 iterations (Mosquitto writes 101).
 *
 * Verifying runs PBKDF2 on the libuv pool, never on the event loop, and compares in constant time.
 * A slow hash makes a reconnect storm slow too, so a successful verification is remembered for a
 * while as an HMAC under a key that lives only in this process: a repeated login costs one HMAC.
 */
import { createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export const DEFAULT_ITERATIONS = 100_000;
const SALT_BYTES = 12;
const HASH_BYTES = 64;

export class PasswordFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'PasswordFileError';
  }
}

interface Entry {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function parseHash(s: string): Entry | undefined {
  const m = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(s);
  if (!m) return undefined;
  const iterations = Number(m[1]);
  const salt = Buffer.from(m[2]!, 'base64');
  const hash = Buffer.from(m[3]!, 'base64');
  if (iterations < 1 || salt.length === 0 || hash.length === 0) return undefined;
  return { iterations, salt, hash };
}

/** A new `$7$` hash string for `password`. */
export async function hashPassword(password: string, iterations = DEFAULT_ITERATIONS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await pbkdf2Async(password, salt, iterations, HASH_BYTES, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Parses a password file's text; throws PasswordFileError naming the line. */
export function parsePasswordFile(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.lastIndexOf(':');
    if (colon <= 0) throw new PasswordFileError(file, n + 1, 'expected user:hash');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!parseHash(hash)) {
      throw new PasswordFileError(file, n + 1, `unsupported hash for ${JSON.stringify(user)}: expected $7$<iterations>$<salt>$<hash> (PBKDF2-SHA512, as mosquitto_passwd writes)`);
    }
    users.set(user, hash);
  }
  return users;
}

/** Renders a password file (sorted by user, as mosquitto_passwd keeps its files readable). */
export function renderPasswordFile(users: ReadonlyMap<string, string>): string {
  return [...users].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([u, h]) => `${u}:${h}\n`).join('');
}

export class PasswordVerifier {
  private readonly key = randomBytes(32);
  /** HMAC(user, password) of recent successes -> when that memory expires. */
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    private readonly rememberMs = 10 * 60_000,
    private readonly maxRemembered = 100_000,
  ) {}

  get size(): number {
    return this.users.size;
  }

  /** The users and their hash strings (a reload compares them with the previous file's). */
  entries(): IterableIterator<[string, string]> {
    return this.users.entries();
  }

  has(user: string): boolean {
    return this.users.has(user);
  }

  /** The hash string of `user` (a reload compares it to the one a connected client logged in with). */
  hashOf(user: string): string | undefined {
    return this.users.get(user);
  }

  async verify(user: string, password: Buffer): Promise<boolean> {
    const stored = this.users.get(user);
    const entry = stored === undefined ? undefined : parseHash(stored);
    const mac = createHmac('sha256', this.key).update(user).update('\u0000').update(stored ?? '').update('\u0000').update(password).digest('base64');
    const until = this.recent.get(mac);
    if (until !== undefined && until > Date.now()) return entry !== undefined;
    // An unknown user costs as much as a known one, so timing does not tell which users exist.
    const e = entry ?? { iterations: DEFAULT_ITERATIONS, salt: Buffer.alloc(SALT_BYTES), hash: Buffer.alloc(HASH_BYTES) };
    const got = await pbkdf2Async(password, e.salt, e.iterations, e.hash.length, 'sha512');
    const ok = entry !== undefined && timingSafeEqual(got, e.hash);
    if (ok) {
      if (this.recent.size >= this.maxRemembered) this.recent.delete(this.recent.keys().next().value!);
      this.recent.set(mac, Date.now() + this.rememberMs);
    }
    return ok;
  }
}
