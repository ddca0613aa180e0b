/**
 * Shared pieces of the /api/v1 views: payloads as JSON (utf8 or base64, with RabbitMQ's
 * `encoding` and `truncate` query parameters), message properties, timestamps, query parameters
 * read with 400s that name the parameter, and client addresses with CIDR matching.
 *
 * Timestamps are ISO 8601 strings in UTC (`2024-05-01T12:00:00.000Z`), as EMQX's API gives them.
 */
import { BlockList, isIP } from 'node:net';
import { isUtf8 } from 'node:buffer';
import type { Message } from '../../../core/message.js';
import { badRequest } from '../reply.js';

export function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

export interface PayloadView {
  readonly payload: string;
  readonly payloadEncoding: 'utf8' | 'base64';
  /** Bytes of the whole payload. */
  readonly size: number;
  readonly truncated: boolean;
}

export interface PayloadOptions {
  /** auto: UTF-8 text when the bytes are valid UTF-8, else base64; base64: always base64. */
  readonly encoding: 'auto' | 'base64';
  /** Most payload bytes returned; undefined = all. */
  readonly truncate: number | undefined;
}

/** `?encoding=auto|base64&truncate=N`, with `defaultTruncate` when the query names none. */
export function payloadOptions(query: URLSearchParams, defaultTruncate?: number): PayloadOptions {
  const enc = query.get('encoding') ?? 'auto';
  if (enc !== 'auto' && enc !== 'base64') throw badRequest(`encoding must be auto or base64, got ${JSON.stringify(enc)}`);
  const t = intParam(query, 'truncate', 0, Number.MAX_SAFE_INTEGER);
  const truncate = t ?? defaultTruncate;
  return { encoding: enc, truncate };
}

export function payloadView(payload: Buffer, opts: PayloadOptions): PayloadView {
  const truncated = opts.truncate !== undefined && payload.length > opts.truncate;
  let bytes = truncated ? payload.subarray(0, opts.truncate) : payload;
  if (opts.encoding === 'auto' && truncated && !isUtf8(bytes)) {
    // A cut through a multi-byte character would turn the text into base64: back up to a boundary.
    for (let cut = 1; cut <= 3 && cut < bytes.length; cut++) {
      const shorter = bytes.subarray(0, bytes.length - cut);
      if (isUtf8(shorter)) {
        bytes = shorter;
        break;
      }
    }
  }
  const text = opts.encoding === 'auto' && isUtf8(bytes);
  return { payload: bytes.toString(text ? 'utf8' : 'base64'), payloadEncoding: text ? 'utf8' : 'base64', size: payload.length, truncated };
}

/** Message properties as the API shows (and `POST /publish` takes) them. */
export function propertiesView(msg: Message): Record<string, unknown> {
  const p = msg.props;
  const out: Record<string, unknown> = {};
  if (p.payloadUtf8 !== undefined) out['payloadFormatIndicator'] = p.payloadUtf8 ? 1 : 0;
  if (p.contentType !== undefined) out['contentType'] = p.contentType;
  if (p.responseTopic !== undefined) out['responseTopic'] = p.responseTopic;
  if (p.correlationData !== undefined) out['correlationData'] = p.correlationData.toString('base64');
  if (p.priority !== undefined) out['priority'] = p.priority;
  if (msg.expiresAt !== undefined) out['messageExpiryInterval'] = Math.max(0, Math.ceil((msg.expiresAt - Date.now()) / 1000));
  if (p.user !== undefined && p.user.length > 0) out['userProperties'] = p.user.map(([k, v]) => [k, v]);
  return out;
}

/** User properties / STOMP headers as an object (a repeated name keeps its last value). */
export function headersView(msg: Message): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of msg.props.user ?? []) out[k] = v;
  return out;
}

export function intParam(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) throw badRequest(`${name} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function boolParam(query: URLSearchParams, name: string): boolean | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw badRequest(`${name} must be true or false, got ${JSON.stringify(v)}`);
}

export function oneOfParam<const V extends readonly string[]>(query: URLSearchParams, name: string, values: V): V[number] | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!values.includes(v)) throw badRequest(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return v as V[number];
}

/** Splits a listener's `host:port` remote address (IPv6 hosts contain colons; IPv4-mapped ones are shown as IPv4). */
export function splitAddress(remote: string): { ip: string; port: number | null } {
  const i = remote.lastIndexOf(':');
  let ip = i < 0 ? remote : remote.slice(0, i);
  const port = i < 0 ? NaN : Number(remote.slice(i + 1));
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  return { ip, port: Number.isInteger(port) ? port : null };
}

/** `ip=` as a predicate: one address, or a CIDR block (`10.0.0.0/8`, `fd00::/8`). 400 when malformed. */
export function ipMatcher(spec: string): (ip: string) => boolean {
  const [addr, bits, extra] = spec.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) throw badRequest(`ip must be an address or a CIDR block such as 10.0.0.0/8, got ${JSON.stringify(spec)}`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  if (bits === undefined) list.addAddress(addr!, type);
  else {
    const n = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!(n >= 0 && n <= (family === 4 ? 32 : 128))) throw badRequest(`ip: bad prefix length /${bits}`);
    list.addSubnet(addr!, n, type);
  }
  return (ip) => {
    const f = isIP(ip);
    return f !== 0 && list.check(ip, f === 4 ? 'ipv4' : 'ipv6');
  };
}

/** The body as a JSON object (400 otherwise); an empty body is `{}` when `emptyOk`. */
export function objectBody(body: unknown, emptyOk = false): Record<string, unknown> {
  if (body === undefined && emptyOk) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Fails with 400 when `body` has keys outside `known`. */
export function onlyKeys(body: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(body)) if (!known.includes(k)) throw badRequest(`unknown field ${k} (known: ${known.join(', ')})`);
}
