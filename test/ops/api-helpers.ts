/**
 * Admin API test helpers: a broker with one token per role, and a small fetch wrapper.
 * `const { tb, api } = await startApiBroker(); const r = await api.get('/api/v1/clients');`
 */
import { hashToken, newToken, type Role } from '../../src/server/http/auth.js';
import { startBroker, type StartOptions, type TestBroker } from '../helpers/broker.js';

export const TOKENS: Record<Role, string> = { admin: newToken(), publisher: newToken(), viewer: newToken() };

export const TOKEN_CONFIG = (Object.keys(TOKENS) as Role[]).map((role) => ({ name: `${role}-token`, sha256: hashToken(TOKENS[role]), role }));

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON (undefined for an empty body); `any` so assertions can read any shape. */
  readonly body: any;
  readonly text: string;
}

export interface Api {
  readonly base: string;
  request(method: string, path: string, opts?: { body?: unknown; token?: string | null; headers?: Record<string, string> }): Promise<ApiResponse>;
  get(path: string, token?: string | null): Promise<ApiResponse>;
  post(path: string, body?: unknown, token?: string | null): Promise<ApiResponse>;
  put(path: string, body?: unknown, token?: string | null): Promise<ApiResponse>;
  del(path: string, token?: string | null): Promise<ApiResponse>;
}

/** Requests to `base`, with the admin token unless told otherwise (`null`: no Authorization). */
export function apiClient(base: string, defaultToken: string | null = TOKENS.admin): Api {
  const request: Api['request'] = async (method, path, opts = {}) => {
    const token = opts.token === undefined ? defaultToken : opts.token;
    const headers: Record<string, string> = { ...(token !== null ? { Authorization: `Bearer ${token}` } : {}), ...opts.headers };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  return {
    base,
    request,
    get: (path, token) => request('GET', path, { ...(token !== undefined ? { token } : {}) }),
    post: (path, body, token) => request('POST', path, { body, ...(token !== undefined ? { token } : {}) }),
    put: (path, body, token) => request('PUT', path, { body, ...(token !== undefined ? { token } : {}) }),
    del: (path, token) => request('DELETE', path, { ...(token !== undefined ? { token } : {}) }),
  };
}

/** startBroker with the three role tokens in admin.tokens; `api` talks to its http listener. */
export async function startApiBroker(opts: StartOptions = {}): Promise<{ tb: TestBroker; api: Api }> {
  const config = { ...opts.config, admin: { tokens: TOKEN_CONFIG, ...(opts.config?.admin ?? {}) } } as StartOptions['config'];
  const tb = await startBroker({ ...opts, config });
  const port = tb.broker.adminListener ? tb.broker.port('admin') : tb.httpPort;
  return { tb, api: apiClient(`http://127.0.0.1:${port}`) };
}
