/**
 * HTTP authentication hook: the broker POSTs the credentials as JSON to a URL; a 2xx answer with
 * `{"ok": true}` admits. Anything else denies: another status, another body, a timeout, a
 * connection error. Answers are remembered for `cacheMs` (both kinds), keyed by an HMAC of the
 * credentials under a key of this process, so passwords are never kept in memory as such.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Credentials } from '../../core/access.js';

export interface HttpHookSettings {
  readonly url: string;
  readonly timeoutMs: number;
  readonly cacheMs: number;
}

export class HttpAuthHook {
  private readonly key = randomBytes(32);
  private readonly cache = new Map<string, { ok: boolean; until: number }>();

  constructor(private readonly s: HttpHookSettings) {}

  async check(c: Credentials): Promise<{ ok: boolean; why: string }> {
    const mac = createHmac('sha256', this.key)
      .update(JSON.stringify([c.protocol, c.clientId, c.username ?? null, c.listener]))
      .update('\u0000')
      .update(c.password ?? Buffer.alloc(0))
      .digest('base64');
    const hit = this.cache.get(mac);
    if (hit && hit.until > Date.now()) return { ok: hit.ok, why: 'cached' };
    let ok = false;
    let why: string;
    try {
      const res = await fetch(this.s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          protocol: c.protocol,
          clientId: c.clientId,
          username: c.username ?? null,
          password: c.password ? c.password.toString('utf8') : null,
          remoteAddress: c.remoteAddress,
          listener: c.listener,
          certIdentity: c.certIdentity ?? null,
        }),
        signal: AbortSignal.timeout(this.s.timeoutMs),
      });
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      ok = res.status >= 200 && res.status < 300 && typeof body === 'object' && body !== null && (body as { ok?: unknown }).ok === true;
      why = ok ? 'hook admitted' : `hook answered ${res.status}`;
    } catch (err) {
      why = (err as Error).name === 'TimeoutError' ? `hook timed out after ${this.s.timeoutMs} ms` : `hook unreachable: ${(err as Error).message}`;
      return { ok: false, why }; // an outage is not remembered: the next try asks again
    }
    if (this.s.cacheMs > 0) {
      if (this.cache.size > 100_000) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(mac, { ok, until: Date.now() + this.s.cacheMs });
    }
    return { ok, why };
  }
}
