/**
 * The admin API from the page: the token (sessionStorage, sent as `Authorization: Bearer`, never a
 * cookie, so no CSRF), JSON requests with the API's `{"error":{code,message}}` bodies turned into
 * ApiError, and server-sent events read with fetch() and a ReadableStream, since EventSource
 * cannot send an Authorization header.
 */

const TOKEN_KEY = 'junction.token';

/** @returns {string | null} */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string | null} token */
export function setToken(token) {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
  for (const l of authListeners) l(token);
}

/** @type {Set<(token: string | null) => void>} */
const authListeners = new Set();

/**
 * Calls `l` when the token changes (login, logout, a 401 from the API).
 * @param {(token: string | null) => void} l
 * @returns {() => void}
 */
export function onAuthChange(l) {
  authListeners.add(l);
  return () => authListeners.delete(l);
}

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {any} [body] the whole error body (reload errors carry more fields)
   */
  constructor(status, code, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * @param {string} path e.g. `/api/v1/clients?like=x`
 * @param {{ method?: string, body?: unknown, token?: string | null, signal?: AbortSignal }} [opts]
 * @returns {Promise<Response>}
 */
export async function rawRequest(path, opts = {}) {
  const token = opts.token === undefined ? getToken() : opts.token;
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  /** @type {RequestInit} */
  const init = { method: opts.method ?? 'GET', headers, credentials: 'omit', cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (opts.signal) init.signal = opts.signal;
  return fetch(path, init);
}

/**
 * A JSON request; resolves to the parsed body (undefined for 204), throws ApiError otherwise. A
 * 401 logs the page out (the token was revoked or is wrong), except when `token` is given
 * explicitly (the login form's check).
 * @template [T=any]
 * @param {string} path
 * @param {{ method?: string, body?: unknown, token?: string | null, signal?: AbortSignal, accept?: number[] }} [opts]
 *   `accept`: statuses above 299 that are answers, not errors (e.g. 422 of /reload)
 * @returns {Promise<T>}
 */
export async function api(path, opts = {}) {
  const res = await rawRequest(path, opts);
  const text = await res.text();
  /** @type {any} */
  let body;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  if (res.ok || (opts.accept ?? []).includes(res.status)) return /** @type {T} */ (body);
  const err = body && typeof body === 'object' && body.error ? body.error : { code: `HTTP_${res.status}`, message: res.statusText || `HTTP ${res.status}` };
  if (res.status === 401 && opts.token === undefined && getToken() !== null) setToken(null);
  throw new ApiError(res.status, String(err.code), String(err.message), body);
}

/** `encodeURIComponent` for one path segment: a topic `a/b` becomes `a%2Fb`, as the API asks. */
export const seg = encodeURIComponent;

/**
 * @param {Record<string, string | number | boolean | null | undefined>} params
 * @returns {string} `?a=1&b=2`, or '' when every value is empty
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/**
 * @typedef {{ event: string, data: string, id: string }} SseEvent
 */

/**
 * Opens a server-sent event stream and calls `onEvent` for each event until the stream ends, the
 * signal aborts, or the server fails it. Resolves when the stream ends; rejects on an HTTP error
 * (ApiError) or a network failure.
 * @param {string} path
 * @param {(e: SseEvent) => void} onEvent
 * @param {AbortSignal} signal
 * @param {() => void} [onOpen] called once the response headers are in
 */
export async function readSse(path, onEvent, signal, onOpen) {
  const token = getToken();
  /** @type {Record<string, string>} */
  const headers = { Accept: 'text/event-stream' };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  const res = await fetch(path, { headers, signal, credentials: 'omit', cache: 'no-store' });
  if (!res.ok || !res.body) {
    /** @type {any} */
    let body;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    if (res.status === 401 && getToken() !== null) setToken(null);
    throw new ApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? `HTTP ${res.status}`, body);
  }
  onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let id = '';
  /** @type {string[]} */
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // Lines end in \n, \r\n or \r (the SSE grammar); the last piece may be incomplete, and a
      // final \r waits, as its \n may come in the next chunk.
      const held = buffer.endsWith('\r') ? 1 : 0;
      const lines = buffer.slice(0, buffer.length - held).split(/\r\n|\r|\n/);
      buffer = (lines.pop() ?? '') + (held ? '\r' : '');
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id });
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id') id = val;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
