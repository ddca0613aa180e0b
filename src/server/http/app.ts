/**
 * HttpApp: the broker's HTTP side (admin API, health, metrics, dashboard) behind every http
 * listener's plain requests, or behind its own listener when `admin.bind` is set. One small router
 * and one place for what every route shares:
 *
 * - Routes: `app.route('GET', '/api/v1/clients/:id', 'viewer', handler)`. `:name` matches one path
 *   segment, percent-decoded (`a%2Fb` -> `a/b`); a last `*name` matches the rest of the path, each
 *   segment decoded and joined with `/`, so `/retained/a%2Fb` and `/retained/a/b` both give `a/b`.
 *   The most literal pattern wins; HEAD is served by GET routes; a known path with another method
 *   gets 405 with `Allow`. A trailing slash is ignored unless a `*tail` route takes it.
 * - Auth: role `null` is public; otherwise a token (auth.ts) with that role or a higher one:
 *   401 (with `WWW-Authenticate: Bearer realm="junction"`), 403, 429 (auth.ts, FailureLimiter).
 * - Bodies: JSON, at most 1 MiB (413 beyond, from Content-Length before reading or while reading);
 *   any Content-Type is read as JSON, as `curl -d` sends form encoding by default.
 * - Errors: handlers throw HttpError (reply.ts); anything else is a 500 with the error logged, and
 *   every error body is `{"error":{"code","message"}}`.
 * - Availability: `/api/` routes answer 503 NOT_READY while the broker is draining or its storage
 *   is closed (`unavailable`); health and static routes do not ask.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../core/log.js';
import type { Broker } from '../broker.js';
import { FailureLimiter, TokenAuth, roleAllows, type Principal, type Role, type TokenConfig } from './auth.js';
import { HttpError, badRequest, errorReply, send, type Reply } from './reply.js';
import { SseStream, type SseOptions } from './sse.js';

export const BODY_LIMIT = 1 << 20;

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** What a handler receives. */
export interface ApiRequest {
  readonly raw: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** The path as sent (not decoded), without the query. */
  readonly path: string;
  /** `:name` and `*name` values, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The peer's address (IPv4-mapped IPv6 addresses as plain IPv4). */
  readonly ip: string;
  /** The token's name and role; undefined on public routes. */
  readonly principal: Principal | undefined;
  readonly broker: Broker;
  /** The body parsed as JSON; undefined when empty. 400 BAD_JSON, 413 PAYLOAD_TOO_LARGE. */
  json(): Promise<unknown>;
  /** The body's bytes (at most 1 MiB). */
  bytes(): Promise<Buffer>;
  /** Starts a server-sent event stream on this response; the handler then returns undefined. */
  sse(opts?: SseOptions): SseStream;
}

/** A Reply to send, or undefined when the handler has written the response itself (SSE). */
export type Handler = (req: ApiRequest) => Reply | undefined | Promise<Reply | undefined>;

type Segment = { readonly kind: 'literal'; readonly text: string } | { readonly kind: 'param' | 'tail'; readonly name: string };

interface Route {
  readonly method: Method;
  readonly pattern: string;
  readonly segments: readonly Segment[];
  readonly role: Role | null;
  readonly handler: Handler;
  readonly literals: number;
}

export interface HttpAppOptions {
  readonly broker: Broker;
  readonly tokens: readonly TokenConfig[];
  readonly log: Logger;
  /** Why the API cannot answer now (draining, storage closed), or undefined when it can. */
  readonly unavailable: () => string | undefined;
  /** Failed token attempts per address and minute before 429 (default 20). */
  readonly authFailureLimit?: number;
}

function splitPath(path: string): string[] {
  // '/a/b' -> ['a', 'b']; '/' -> []; empty segments inside are kept (topics may have empty levels).
  return path === '/' || path === '' ? [] : path.slice(1).split('/');
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`malformed percent-encoding in path segment ${JSON.stringify(segment)}`, 'BAD_PATH');
  }
}

function clientIp(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '?';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class HttpApp {
  readonly auth: TokenAuth;
  readonly limiter: FailureLimiter;
  private readonly routes: Route[] = [];
  private readonly streams = new Set<SseStream>();
  private notifyListeners: Array<(event: string, data: unknown) => void> = [];
  private readonly closeHandlers: Array<() => void> = [];
  /** ms since epoch: when the app (and so the broker) started. */
  readonly startedAt = Date.now();
  readonly broker: Broker;
  private readonly log: Logger;
  private readonly unavailable: () => string | undefined;

  constructor(opts: HttpAppOptions) {
    this.broker = opts.broker;
    this.log = opts.log;
    this.unavailable = opts.unavailable;
    this.auth = new TokenAuth(opts.tokens);
    this.limiter = new FailureLimiter(opts.authFailureLimit ?? 20);
  }

  /**
   * Adds a route. `role` null: no token asked (health, metrics, dashboard files). Patterns start
   * with `/`; `:name` is one segment, a final `*name` the rest of the path.
   */
  route(method: Method, pattern: string, role: Role | null, handler: Handler): this {
    const segments: Segment[] = splitPath(pattern).map((s, i, all) => {
      if (s.startsWith(':')) return { kind: 'param', name: s.slice(1) };
      if (s.startsWith('*')) {
        if (i !== all.length - 1) throw new Error(`route ${pattern}: *${s.slice(1)} must be the last segment`);
        return { kind: 'tail', name: s.slice(1) };
      }
      return { kind: 'literal', text: s };
    });
    if (this.routes.some((r) => r.method === method && r.pattern === pattern)) throw new Error(`route ${method} ${pattern} registered twice`);
    this.routes.push({ method, pattern, segments, role, handler, literals: segments.filter((s) => s.kind === 'literal').length });
    return this;
  }

  /** Open SSE streams (the stream endpoint's subscriber count, tests). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Ends every SSE stream (broker stop: the listener could not close while they are open). */
  closeStreams(): void {
    for (const s of [...this.streams]) s.close();
  }

  /** Broker stop: ends the SSE streams and runs the `onClose` handlers (timers of route modules). */
  close(): void {
    this.closeStreams();
    for (const h of this.closeHandlers.splice(0)) h();
  }

  onClose(handler: () => void): void {
    this.closeHandlers.push(handler);
  }

  /**
   * Tells `/api/v1/stream` readers about something that happened (`event: reload`, ...): every
   * listener added with `onNotify` gets it. Listeners must not throw.
   */
  notify(event: string, data: unknown): void {
    for (const l of this.notifyListeners) l(event, data);
  }

  /** Adds a listener of `notify`; returns the function that removes it. */
  onNotify(listener: (event: string, data: unknown) => void): () => void {
    this.notifyListeners = [...this.notifyListeners, listener];
    return () => {
      this.notifyListeners = this.notifyListeners.filter((l) => l !== listener);
    };
  }

  /** The listeners' request handler. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    void this.dispatch(req, res).then(
      () => this.log.debug('http request', { method: req.method, path: pathOf(req.url), status: res.statusCode, durationMs: Math.round(performance.now() - started) }),
      (err: unknown) => {
        this.log.error('http request failed', { method: req.method, path: pathOf(req.url), error: String(err) });
        if (!res.headersSent) send(res, errorReply(new HttpError(500, 'INTERNAL', 'internal error; see the broker log')));
        else res.destroy();
      },
    );
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | { allow: string[] } | undefined {
    const parts = splitPath(path);
    let best: { route: Route; params: Record<string, string> } | undefined;
    const allow = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      const methodOk = route.method === method || (method === 'HEAD' && route.method === 'GET');
      if (!methodOk) {
        allow.add(route.method);
        if (route.method === 'GET') allow.add('HEAD');
        continue;
      }
      if (!best || moreSpecific(route, best.route)) best = { route, params };
    }
    if (best) return best;
    return allow.size > 0 ? { allow: [...allow] } : undefined;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    const head = method === 'HEAD';
    const reply = (r: Reply): void => send(res, r, head);
    try {
      let found = this.match(method, path);
      if (found === undefined && path.length > 1 && path.endsWith('/')) {
        path = path.slice(0, -1);
        found = this.match(method, path);
      }
      if (found === undefined) throw new HttpError(404, 'NOT_FOUND', `no such path: ${method} ${path}`);
      if ('allow' in found) {
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; allowed: ${found.allow.join(', ')}`, { Allow: found.allow.join(', ') });
      }
      const { route, params } = found;
      const ip = clientIp(req);
      const principal = route.role === null ? undefined : this.authenticate(req, ip, route.role);
      if (path.startsWith('/api/')) {
        const why = this.unavailable();
        if (why !== undefined) throw new HttpError(503, 'NOT_READY', why, { 'Retry-After': '5' });
      }
      this.checkDeclaredLength(req);
      let body: Promise<Buffer> | undefined;
      const bytes = (): Promise<Buffer> => (body ??= readBody(req));
      const api: ApiRequest = {
        raw: req,
        res,
        method,
        path,
        params,
        query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
        ip,
        principal,
        broker: this.broker,
        bytes,
        json: async () => {
          const b = await bytes();
          if (b.length === 0) return undefined;
          try {
            return JSON.parse(b.toString('utf8')) as unknown;
          } catch (err) {
            throw badRequest(`the body is not valid JSON: ${(err as Error).message}`, 'BAD_JSON');
          }
        },
        sse: (opts) => {
          const s = new SseStream(res, opts);
          this.streams.add(s);
          s.onClose(() => this.streams.delete(s));
          return s;
        },
      };
      const out = await route.handler(api);
      if (out !== undefined) reply(out);
      else if (!res.headersSent) reply({ status: 204 });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      reply(errorReply(err));
      // A body nobody read (413, or an error before the handler read it) is drained, so the client
      // gets to read this answer instead of a reset while it is still sending.
      if (!req.complete) discardBody(req);
    }
  }

  /** The principal for a route that asks for `role`; throws 429, 401 or 403. */
  private authenticate(req: IncomingMessage, ip: string, role: Role): Principal {
    const wait = this.limiter.blockedFor(ip);
    if (wait > 0) {
      throw new HttpError(429, 'TOO_MANY_AUTH_FAILURES', `too many failed token attempts from ${ip}; try again in ${wait} s`, { 'Retry-After': String(wait) });
    }
    const outcome = this.auth.check(req.headers.authorization);
    const challenge = { 'WWW-Authenticate': 'Bearer realm="junction"' };
    if (!outcome.ok) {
      switch (outcome.reason) {
        case 'missing':
          throw new HttpError(401, 'UNAUTHORIZED', 'a token is needed: Authorization: Bearer <token>', challenge);
        case 'no-tokens':
          throw new HttpError(401, 'UNAUTHORIZED', 'no admin tokens are configured: create one with `junction token create NAME --role admin` and add its line to admin.tokens', challenge);
        case 'malformed':
        case 'bad-token':
          this.limiter.fail(ip);
          this.log.warn('admin API: bad token', { evt: 'auth.failed', peer: ip, path: pathOf(req.url) });
          throw new HttpError(401, 'BAD_TOKEN', 'the token is not valid', { 'WWW-Authenticate': 'Bearer realm="junction", error="invalid_token"' });
      }
    }
    const principal = outcome.principal;
    if (!roleAllows(principal.role, role)) {
      throw new HttpError(403, 'FORBIDDEN', `token ${principal.name} has role ${principal.role}; this needs ${role}`);
    }
    return principal;
  }

  private checkDeclaredLength(req: IncomingMessage): void {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > BODY_LIMIT) throw tooLarge();
  }
}

function tooLarge(): HttpError {
  return new HttpError(413, 'PAYLOAD_TOO_LARGE', `request bodies are limited to ${BODY_LIMIT} bytes (1 MiB)`);
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

function matchSegments(segments: readonly Segment[], parts: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s.kind === 'tail') {
      const rest = parts.slice(i);
      if (rest.length === 0 || (rest.length === 1 && rest[0] === '')) return undefined;
      params[s.name] = rest.map(decode).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (s.kind === 'literal') {
      if (part !== s.text) return undefined;
    } else {
      if (part === '') return undefined;
      params[s.name] = decode(part);
    }
  }
  return parts.length === segments.length ? params : undefined;
}

/** More literal segments win; then a fixed length over a tail. */
function moreSpecific(a: Route, b: Route): boolean {
  if (a.literals !== b.literals) return a.literals > b.literals;
  const aTail = a.segments.some((s) => s.kind === 'tail');
  const bTail = b.segments.some((s) => s.kind === 'tail');
  return !aTail && bTail;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > BODY_LIMIT) {
        failed = true;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
    });
  });
}

/** Reads and drops what is left of a body, up to 64 MiB; past that the connection is closed. */
function discardBody(req: IncomingMessage): void {
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > 64 * BODY_LIMIT) req.socket.destroy();
  });
  req.resume();
}
