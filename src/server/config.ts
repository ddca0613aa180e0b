// Broker configuration: one declarative SCHEMA table -> the typed, frozen `Config`.
//
// Invariants:
// - Every key lives in SCHEMA once: its type, range, default and doc line. The `Config` type, the
//   validator, the list of known keys (for "did you mean") and the docs test all derive from it, so a
//   later issue adds a key (or a section such as `stomp`) by adding one line or one object here.
// - Validation is strict: no unknown keys, no quoted numbers or booleans, no floats where an integer
//   is expected. A config file is small and read once; a silent coercion costs more than an error.
// - Errors are `ConfigError`s naming the source (file path or "command line"), the key path (or the
//   flag) and the reason; the first error wins.
// - Precedence: default < config file < overrides (CLI flags). A `Config` is fully defaulted and
//   deep-frozen; path values are absolute.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ROLES, type Role, type TokenConfig } from './http/auth.js';

// ---------------------------------------------------------------------------------------------
// Field kinds

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

interface ReadContext {
  /** Directory that relative paths are resolved against: the config file's, or cwd for flags. */
  readonly baseDir: string;
}

interface FieldSpec<T> {
  readonly default: T;
  /** Shown in the docs table when the default is computed (e.g. the hostname). */
  readonly defaultText?: string;
  /** "an integer 0..65535": used in error messages and in the docs table. */
  readonly expected: string;
  readonly doc: string;
  readonly read: (value: unknown, ctx: ReadContext) => Outcome<T>;
  /** Turns a CLI flag's text into the value `read` expects; text it cannot convert passes through. */
  readonly fromText?: (text: string) => unknown;
}

/** One leaf of the schema. A class so the walker can tell a field from a section with `instanceof`. */
export class Field<T> {
  readonly kind = 'field';
  constructor(readonly spec: FieldSpec<T>) {}
}

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const fail = (reason: string): Outcome<never> => ({ ok: false, reason });

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value (remove the key to get the default)';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function integer(min: number, max: number, def: number, doc: string): Field<number> {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer ${min}..${max}`;
  return new Field({
    default: def,
    expected,
    doc,
    read(value) {
      if (typeof value === 'number' && Number.isInteger(value)) {
        return value >= min && value <= max ? ok(value) : fail(`out of range: expected ${expected}, got ${value}`);
      }
      // The common mistake is `port: "1883"`; say what to do rather than coerce.
      const hint = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? ' (write numbers without quotes)' : '';
      return fail(`wrong type: expected ${expected}, got ${describe(value)}${hint}`);
    },
    fromText: (text) => (/^-?\d+$/.test(text) ? Number(text) : text),
  });
}

/** A number from 0 to 1 (a share or a rate). */
function fraction(def: number, doc: string): Field<number> {
  const expected = 'a number 0..1';
  return new Field({
    default: def,
    expected,
    doc,
    read(value) {
      if (typeof value === 'number' && Number.isFinite(value)) return value >= 0 && value <= 1 ? ok(value) : fail(`out of range: expected ${expected}, got ${value}`);
      return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
    },
    fromText: (text) => (/^\d*\.?\d+$/.test(text) ? Number(text) : text),
  });
}

function boolean(def: boolean, doc: string): Field<boolean> {
  const expected = 'true or false';
  return new Field({
    default: def,
    expected,
    doc,
    read(value) {
      if (typeof value === 'boolean') return ok(value);
      // YAML 1.2 reads yes/no/on/off as strings; reject them with the same message as "true".
      const hint = value === 'true' || value === 'false' ? ' (write booleans without quotes)' : '';
      return fail(`wrong type: expected ${expected}, got ${describe(value)}${hint}`);
    },
    fromText: (text) => (text === 'true' ? true : text === 'false' ? false : text),
  });
}

function text(def: string, doc: string, defaultText?: string): Field<string> {
  const expected = 'a non-empty string';
  return new Field({
    default: def,
    ...(defaultText === undefined ? {} : { defaultText }),
    expected,
    doc,
    read(value) {
      if (typeof value !== 'string') return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
      return value === '' ? fail(`expected ${expected}, got an empty string`) : ok(value);
    },
  });
}

/** A filesystem path; relative values resolve against the directory of whatever gave them. */
function path(def: string, doc: string): Field<string> {
  const base = text(def, doc).spec;
  return new Field({
    ...base,
    expected: 'a path',
    read(value, ctx) {
      const r = base.read(value, ctx);
      return r.ok ? ok(resolve(ctx.baseDir, r.value)) : r;
    },
  });
}

function oneOf<const V extends readonly string[]>(values: V, def: V[number], doc: string): Field<V[number]> {
  const expected = `one of ${values.join(', ')}`;
  const allowed = (value: unknown): value is V[number] => typeof value === 'string' && values.includes(value);
  return new Field<V[number]>({
    default: def,
    expected,
    doc,
    read(value) {
      if (allowed(value)) return ok(value);
      if (typeof value !== 'string') return fail(`wrong type: expected ${expected}; got ${describe(value)}`);
      return fail(`expected ${expected}; got ${JSON.stringify(value)}`);
    },
  });
}

/** A queue bound to a topic filter: every publication matching `filter` is also enqueued in `queue`. */
export interface QueueBinding {
  readonly queue: string;
  readonly filter: string;
}

function bindings(doc: string): Field<readonly QueueBinding[]> {
  const expected = 'a list of { queue: NAME, filter: TOPIC-FILTER }';
  return new Field<readonly QueueBinding[]>({
    default: [],
    defaultText: 'none',
    expected,
    doc,
    read(value) {
      if (!Array.isArray(value)) return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
      const out: QueueBinding[] = [];
      for (const [i, item] of value.entries()) {
        if (!isMapping(item)) return fail(`item ${i + 1}: expected { queue: NAME, filter: TOPIC-FILTER }, got ${describe(item)}`);
        for (const k of Object.keys(item)) if (k !== 'queue' && k !== 'filter') return fail(`item ${i + 1}: unknown key ${k}`);
        const { queue, filter } = item;
        if (typeof queue !== 'string' || queue === '' || /[+#\u0000]/.test(queue)) {
          return fail(`item ${i + 1}: queue must be a non-empty name without + # or U+0000, got ${describe(queue)}`);
        }
        if (typeof filter !== 'string' || filter === '') return fail(`item ${i + 1}: filter must be a non-empty topic filter, got ${describe(filter)}`);
        out.push({ queue, filter });
      }
      return ok(out);
    },
  });
}

/** `admin.bind`: `HOST:PORT`, `[IPv6]:PORT` or a bare port (then 127.0.0.1), for the admin listener. */
export interface AdminBind {
  readonly host: string;
  readonly port: number;
}

function hostPort(doc: string): Field<AdminBind | undefined> {
  const expected = 'HOST:PORT such as 127.0.0.1:8081 (or [::1]:8081, or a port alone for 127.0.0.1)';
  return new Field<AdminBind | undefined>({
    default: undefined,
    defaultText: 'none: the API is served on the http listeners',
    expected,
    doc,
    read(value) {
      const text = typeof value === 'number' ? String(value) : value;
      if (typeof text !== 'string') return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
      const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+))?:?(\d{1,5})$/.exec(text.trim());
      const port = m ? Number(m[3]) : NaN;
      if (!m || port > U16 || (m[1] === undefined && m[2] === undefined && text.includes(':'))) {
        return fail(`expected ${expected}, got ${describe(value)}`);
      }
      return ok({ host: m[1] ?? m[2] ?? '127.0.0.1', port });
    },
  });
}

function adminTokens(doc: string): Field<readonly TokenConfig[]> {
  const shape = '{ name: NAME, sha256: HEX, role: ROLE }';
  const expected = `a list of ${shape}`;
  return new Field<readonly TokenConfig[]>({
    default: [],
    defaultText: 'none (the API answers 401 until one is added)',
    expected,
    doc,
    read(value) {
      if (!Array.isArray(value)) return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
      const out: TokenConfig[] = [];
      for (const [i, item] of value.entries()) {
        const at = `item ${i + 1}`;
        if (!isMapping(item)) return fail(`${at}: expected ${shape}, got ${describe(item)}`);
        for (const k of Object.keys(item)) {
          if (k === 'token') return fail(`${at}: token: the config holds the token's sha256 only; \`junction token create\` prints the line to add`);
          if (k !== 'name' && k !== 'sha256' && k !== 'role') return fail(`${at}: unknown key ${k} (known: name, sha256, role)`);
        }
        const { name, sha256, role } = item;
        if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) return fail(`${at}: name: expected 1-64 letters, digits, . _ -, got ${describe(name)}`);
        if (out.some((t) => t.name === name)) return fail(`${at}: name: ${name} is the name of another token too`);
        if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) return fail(`${at}: sha256: expected 64 hex digits, got ${describe(sha256)}`);
        if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) return fail(`${at}: role: expected one of ${ROLES.join(', ')}, got ${describe(role)}`);
        out.push({ name, sha256: sha256.toLowerCase(), role: role as Role });
      }
      return ok(out);
    },
  });
}

/** An optional field: absent means "none" (no default value), e.g. a certificate path. */
function optional<T>(field: Field<T>): Field<T | undefined> {
  return new Field<T | undefined>({ ...field.spec, default: undefined, defaultText: 'none' });
}

/** A MQTT 5 reason code chosen from a few: written in hex (0x87) or decimal in the file. */
function reasonCode(allowed: readonly number[], def: number, doc: string): Field<number> {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const expected = `one of ${allowed.map(hex).join(', ')}`;
  return new Field<number>({
    default: def,
    defaultText: `\`${hex(def)}\``,
    expected,
    doc,
    read(value) {
      return typeof value === 'number' && allowed.includes(value) ? ok(value) : fail(`expected ${expected}, got ${describe(value)}`);
    },
    fromText: (text) => (/^(0x[0-9a-f]+|\d+)$/i.test(text) ? Number(text) : text),
  });
}

/** A WebSocket endpoint's URL path, or `false` for no endpoint. */
function endpoint(def: string, doc: string): Field<string | false> {
  const expected = 'a path starting with / (or false: no endpoint)';
  return new Field<string | false>({
    default: def,
    expected,
    doc,
    read(value) {
      if (value === false) return ok(false);
      if (typeof value !== 'string' || !value.startsWith('/') || /[\s?#]/.test(value)) {
        return fail(`expected ${expected}, got ${describe(value)}`);
      }
      return ok(value);
    },
  });
}

/** Browser origins allowed to open WebSocket connections: `https://host[:port]` each. */
function origins(doc: string): Field<readonly string[]> {
  const expected = 'a list of origins such as https://dash.example.com';
  return new Field<readonly string[]>({
    default: [],
    defaultText: 'any',
    expected,
    doc,
    read(value) {
      if (!Array.isArray(value)) return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
      const out: string[] = [];
      for (const [i, item] of value.entries()) {
        let origin: string | undefined;
        try {
          if (typeof item === 'string') origin = new URL(item).origin;
        } catch {
          origin = undefined;
        }
        // Browsers send the serialized origin: scheme, host, port; nothing else can ever match.
        if (origin === undefined || origin === 'null' || origin !== item.replace(/\/$/, '').toLowerCase()) {
          return fail(`item ${i + 1}: expected an origin such as https://dash.example.com (scheme, host, optional port, no path), got ${describe(item)}`);
        }
        out.push(origin);
      }
      return ok(out);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The schema: the one place keys are declared.

/** Storage engines, one list: later issues append 'rocksdb', 'leveldb'. */
export const STORAGE_ENGINES = ['auto', 'rocksdb', 'leveldb', 'memory'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export const METRICS_AUTH = ['none', 'token'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export const QUEUE_DROP_POLICIES = ['oldest', 'newest'] as const;
export const PUBLISH_RATE_ACTIONS = ['pause', 'disconnect'] as const;
export const STOMP_TOPIC_MAPPINGS = ['mqtt', 'rabbitmq'] as const;

export const LISTENER_PROTOCOLS = ['mqtt', 'stomp', 'http'] as const;
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export const IDENTITY_SOURCES = ['cn', 'san'] as const;

const U16 = 65535;
const U32 = 4294967295;

// ---------------------------------------------------------------------------------------------
// Listeners: the `tls` and `http` sections configure the default listeners; a `listeners:` list
// replaces them, each entry with the same TLS and WebSocket keys of its own.

/** TLS settings of one listener (or of the default TLS listeners); paths are absolute. */
export interface TlsConfig {
  readonly cert: string;
  readonly key: string;
  readonly passphrase?: string | undefined;
  readonly ca?: string | undefined;
  readonly minVersion: (typeof TLS_VERSIONS)[number];
  readonly ciphers?: string | undefined;
  /** Ask for a client certificate; one that is sent must verify against `ca`. */
  readonly requestCert: boolean;
  /** Refuse clients without a valid certificate. */
  readonly requireClientCert: boolean;
  readonly useIdentityAs?: (typeof IDENTITY_SOURCES)[number] | undefined;
  /** More certificates, chosen by the server name the client asks for (SNI). */
  readonly sni: readonly SniCertificate[];
}

export interface SniCertificate {
  /** `broker.example.com`, or `*.example.com` for any one label in front. */
  readonly servername: string;
  readonly cert: string;
  readonly key: string;
  readonly passphrase?: string | undefined;
}

/** WebSocket endpoints of an http listener. */
export interface WebSocketConfig {
  readonly mqttPath: string | false;
  readonly stompPath: string | false;
  /** Empty: any origin. Requests without an Origin header (non-browser clients) are always allowed. */
  readonly allowedOrigins: readonly string[];
  readonly perMessageDeflate: boolean;
}

export interface ListenerConfig {
  /** Unique; names the listener in logs and errors. */
  readonly name: string;
  readonly protocol: (typeof LISTENER_PROTOCOLS)[number];
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsConfig | undefined;
  /** http listeners only. */
  readonly websocket?: WebSocketConfig | undefined;
  /** Override `limits.listenerMaxConnections`, `maxConnectionsPerAddress`, `connectRate`, `connectBurst` here. */
  readonly maxConnections?: number | undefined;
  readonly maxConnectionsPerAddress?: number | undefined;
  readonly connectRate?: number | undefined;
  readonly connectBurst?: number | undefined;
  /** Overrides `auth.allowAnonymous` for this listener. */
  readonly allowAnonymous?: boolean | undefined;
}

const TLS_SECTION = {
  cert: optional(path('-', 'server certificate (PEM, may include the chain); relative to the config file')),
  key: optional(path('-', 'private key of the certificate (PEM)')),
  passphrase: optional(text('-', 'passphrase of an encrypted key')),
  ca: optional(path('-', 'CA certificates (PEM) that client certificates must chain to')),
  minVersion: oneOf(TLS_VERSIONS, 'TLSv1.2', 'oldest TLS version accepted'),
  ciphers: optional(text('-', "OpenSSL cipher list for TLS 1.2 (default: Node.js's)")),
  requestCert: boolean(false, 'ask clients for a certificate; one that is sent must verify against ca'),
  requireClientCert: boolean(false, 'refuse clients without a certificate that verifies against ca'),
  useIdentityAs: optional(oneOf(IDENTITY_SOURCES, 'cn', "cn | san: the client certificate's CN or first SAN becomes the username")),
};

const WEBSOCKET_SECTION = {
  mqttPath: endpoint('/mqtt', 'URL path of the MQTT over WebSocket endpoint; false: none'),
  stompPath: endpoint('/stomp', 'URL path of the STOMP over WebSocket endpoint; false: none'),
  allowedOrigins: origins('browser origins allowed to connect; empty: any (requests without Origin are always allowed)'),
  perMessageDeflate: boolean(false, 'offer permessage-deflate compression to WebSocket clients'),
};

/** Rules across TLS keys: [key, reason] of the first one broken (cert and key may both be absent). */
function tlsProblem(t: {
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
  requestCert: boolean;
  requireClientCert: boolean;
  useIdentityAs?: string | undefined;
}): readonly [string, string] | undefined {
  if (t.cert !== undefined && t.key === undefined) return ['key', 'missing: a certificate needs its private key'];
  if (t.key !== undefined && t.cert === undefined) return ['cert', 'missing: the private key needs its certificate'];
  const verifies = t.requestCert || t.requireClientCert;
  if (verifies && t.ca === undefined) {
    return ['ca', `missing: ${t.requireClientCert ? 'requireClientCert' : 'requestCert'} needs the CA that client certificates are checked against`];
  }
  if (t.useIdentityAs !== undefined && !verifies) {
    return ['useIdentityAs', 'needs requestCert: true or requireClientCert: true (no client certificate is asked for otherwise)'];
  }
  return undefined;
}

/**
 * Reads the mapping `given` against flat `fields` (plus `extra` keys the caller reads itself):
 * unknown keys get a suggestion from this mapping's keys; a failure's reason starts with the key.
 */
function readFields(fields: Section, given: Record<string, unknown>, ctx: ReadContext, extra: readonly string[] = []): Outcome<Mutable> {
  const known = [...Object.keys(fields), ...extra];
  for (const key of Object.keys(given)) {
    if (known.includes(key)) continue;
    const hint = closestMatch(key, known);
    return fail(`${key}: ${hint === undefined ? `unknown key (known: ${known.join(', ')})` : `unknown key (did you mean ${hint}?)`}`);
  }
  const out: Mutable = {};
  for (const [key, node] of Object.entries(fields)) {
    if (!(node instanceof Field)) throw new Error('listener fields are flat');
    const value = given[key];
    if (value === undefined) {
      out[key] = defaultOf(node);
      continue;
    }
    const r = node.spec.read(value, ctx);
    if (!r.ok) return fail(`${key}: ${r.reason}`);
    out[key] = r.value;
  }
  return ok(out);
}

function readSni(value: unknown, ctx: ReadContext): Outcome<readonly SniCertificate[]> {
  const shape = '{ servername: NAME, cert: FILE, key: FILE }';
  if (!Array.isArray(value)) return fail(`sni: wrong type: expected a list of ${shape}, got ${describe(value)}`);
  const fields = { servername: text('-', ''), cert: TLS_SECTION.cert, key: TLS_SECTION.key, passphrase: TLS_SECTION.passphrase };
  const out: SniCertificate[] = [];
  for (const [i, item] of value.entries()) {
    const at = `sni item ${i + 1}`;
    if (!isMapping(item)) return fail(`${at}: expected ${shape}, got ${describe(item)}`);
    const r = readFields(fields, item, ctx);
    if (!r.ok) return fail(`${at}: ${r.reason}`);
    const { servername, cert, key, passphrase } = r.value as { servername: string; cert?: string; key?: string; passphrase?: string };
    if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(servername)) {
      return fail(`${at}: servername: expected a host name such as broker.example.com or *.example.com, got ${describe(servername)}`);
    }
    if (cert === undefined || key === undefined) return fail(`${at}: ${cert === undefined ? 'cert' : 'key'}: missing`);
    out.push({ servername: servername.toLowerCase(), cert, key, ...(passphrase !== undefined ? { passphrase } : {}) });
  }
  return ok(out);
}

function readListenerTls(value: unknown, ctx: ReadContext): Outcome<TlsConfig> {
  if (!isMapping(value)) return fail(`wrong type: expected a mapping with cert, key and optional ca, requireClientCert, ...; got ${describe(value)}`);
  const r = readFields(TLS_SECTION, value, ctx, ['sni']);
  if (!r.ok) return r;
  const t = r.value as unknown as Omit<TlsConfig, 'sni' | 'cert' | 'key'> & { cert?: string; key?: string };
  if (t.cert === undefined) return fail('cert: missing: a TLS listener needs a certificate');
  const problem = tlsProblem(t);
  if (problem !== undefined) return fail(`${problem[0]}: ${problem[1]}`);
  const sni = value['sni'] === undefined ? ok([]) : readSni(value['sni'], ctx);
  if (!sni.ok) return sni;
  return ok({ ...t, cert: t.cert, key: t.key as string, sni: sni.value });
}

/** Limits a listener entry may set for itself (defaults: the `limits` section). */
const LISTENER_LIMIT_KEYS = ['maxConnections', 'maxConnectionsPerAddress', 'connectRate', 'connectBurst'] as const;

const LISTENER_FIELDS = {
  name: optional(text('-', '')),
  protocol: optional(oneOf(LISTENER_PROTOCOLS, 'mqtt', '')),
  host: text('0.0.0.0', ''),
  port: optional(integer(0, U16, 0, '')),
  allowAnonymous: optional(boolean(false, '')),
  maxConnections: optional(integer(0, Number.MAX_SAFE_INTEGER, 0, '')),
  maxConnectionsPerAddress: optional(integer(0, Number.MAX_SAFE_INTEGER, 0, '')),
  connectRate: optional(integer(0, Number.MAX_SAFE_INTEGER, 0, '')),
  connectBurst: optional(integer(0, Number.MAX_SAFE_INTEGER, 0, '')),
};

/** Port of a listener entry that names none: the well-known one for its protocol. */
function defaultPort(protocol: ListenerConfig['protocol'], tls: boolean): number {
  switch (protocol) {
    case 'mqtt':
      return tls ? 8883 : 1883;
    case 'stomp':
      return tls ? 61614 : 61613;
    case 'http':
      return tls ? 8084 : 8083;
  }
}

type UnnamedListener = Omit<ListenerConfig, 'name'> & { readonly name?: string | undefined };

function readListener(item: unknown, ctx: ReadContext): Outcome<UnnamedListener> {
  if (!isMapping(item)) return fail(`expected { protocol: mqtt | stomp | http, host, port, tls }, got ${describe(item)}`);
  const r = readFields({ ...LISTENER_FIELDS, ...WEBSOCKET_SECTION }, item, ctx, ['tls']);
  if (!r.ok) return r;
  const v = r.value;
  const protocol = v['protocol'] as ListenerConfig['protocol'] | undefined;
  if (protocol === undefined) return fail(`protocol: missing: expected one of ${LISTENER_PROTOCOLS.join(', ')}`);
  if (protocol !== 'http') {
    const wsKey = Object.keys(WEBSOCKET_SECTION).find((k) => item[k] !== undefined);
    if (wsKey !== undefined) return fail(`${wsKey}: only http listeners have WebSocket endpoints (this one is ${protocol})`);
  }
  let tls: TlsConfig | undefined;
  if (item['tls'] !== undefined) {
    const t = readListenerTls(item['tls'], ctx);
    if (!t.ok) return fail(`tls.${t.reason}`);
    tls = t.value;
  }
  let websocket: WebSocketConfig | undefined;
  if (protocol === 'http') {
    websocket = {
      mqttPath: v['mqttPath'] as string | false,
      stompPath: v['stompPath'] as string | false,
      allowedOrigins: v['allowedOrigins'] as readonly string[],
      perMessageDeflate: v['perMessageDeflate'] as boolean,
    };
    const problem = websocketProblem(websocket);
    if (problem !== undefined) return fail(problem);
  }
  return ok({
    name: v['name'] as string | undefined,
    protocol,
    host: v['host'] as string,
    port: (v['port'] as number | undefined) ?? defaultPort(protocol, tls !== undefined),
    ...(tls !== undefined ? { tls } : {}),
    ...(websocket !== undefined ? { websocket } : {}),
    ...(v['allowAnonymous'] !== undefined ? { allowAnonymous: v['allowAnonymous'] as boolean } : {}),
    ...Object.fromEntries(LISTENER_LIMIT_KEYS.flatMap((k) => (v[k] !== undefined ? [[k, v[k] as number]] : []))),
  });
}

function websocketProblem(w: { mqttPath: string | false; stompPath: string | false }): string | undefined {
  if (w.mqttPath !== false && w.mqttPath === w.stompPath) return `stompPath: ${w.stompPath} is the mqttPath too: give the endpoints different paths`;
  return undefined;
}

/** `mqtt`, `mqtts`, `stomp`, `stomps`, `http`, `https`: the name of a listener that has none. */
function baseName(l: UnnamedListener): string {
  return `${l.protocol}${l.tls !== undefined ? 's' : ''}`;
}

function listenerList(doc: string): Field<readonly ListenerConfig[] | undefined> {
  const expected = 'a list of { protocol, host, port, tls, ... }';
  return new Field<readonly ListenerConfig[] | undefined>({
    default: undefined,
    defaultText: 'the default listeners',
    expected,
    doc,
    read(value, ctx) {
      if (!Array.isArray(value)) return fail(`wrong type: expected ${expected}, got ${describe(value)}`);
      if (value.length === 0) return fail('an empty list opens no listener: remove the key to get the default listeners');
      const read: UnnamedListener[] = [];
      for (const [i, item] of value.entries()) {
        const r = readListener(item, ctx);
        if (!r.ok) return fail(`item ${i + 1}: ${r.reason}`);
        read.push(r.value);
      }
      // Names: explicit ones must be unique; a derived one takes `-<item number>` when it is taken.
      const explicit = new Map<string, number>();
      for (const [i, l] of read.entries()) {
        if (l.name === undefined) continue;
        const other = explicit.get(l.name);
        if (other !== undefined) return fail(`item ${i + 1}: name: ${l.name} is the name of item ${other} too`);
        explicit.set(l.name, i + 1);
      }
      const taken = new Set(explicit.keys());
      const out: ListenerConfig[] = [];
      for (const [i, l] of read.entries()) {
        let name = l.name;
        if (name === undefined) {
          name = taken.has(baseName(l)) ? `${baseName(l)}-${i + 1}` : baseName(l);
          taken.add(name);
        }
        const clash = out.find((o) => o.port !== 0 && o.port === l.port && o.host === l.host);
        if (clash) return fail(`item ${i + 1}: port: ${l.port} on ${l.host} is listener ${clash.name}'s port too`);
        out.push({ ...l, name });
      }
      return ok(out);
    },
  });
}

const SCHEMA = {
  node: {
    // EMQX's node naming (name@host), so presence topics read $SYS/brokers/junction@host/clients/...
    name: text(`junction@${hostname()}`, 'name of this broker node (used in $SYS topics)', '`junction@<hostname>`'),
  },
  metrics: {
    enabled: boolean(true, 'serve GET /metrics and observe latencies; false leaves only plain counters (no histograms, no process metrics)'),
    auth: oneOf(METRICS_AUTH, 'none', 'none: /metrics is public (as RabbitMQ and EMQX); token: it needs an admin.tokens token (any role)'),
    perObject: boolean(false, 'serve GET /metrics/per-object: queue depth, consumers and head age per queue'),
    perObjectMaxQueues: integer(1, 1000000, 1000, 'queues on /metrics/per-object at most (the deepest ones)'),
    deliveryLatencySampleRate: fraction(1, 'share of deliveries and acknowledgements whose latency is observed (0 = none)'),
  },
  sys: {
    interval: integer(0, 86400, 10, 'seconds between $SYS/broker/... updates (retained, published when changed); 0 = off'),
    presence: boolean(true, 'publish $SYS/brokers/<node>/clients/<clientid>/connected and /disconnected events'),
  },
  mqtt: {
    host: text('0.0.0.0', 'address the MQTT TCP listener binds to'),
    port: integer(0, U16, 1883, 'MQTT TCP port; 0 picks a free port'),
    maxKeepAlive: integer(0, U16, U16, 'seconds; a client asking for more is given this (MQTT 5: Server Keep Alive)'),
    maxPacketSize: integer(128, 268435455, 1048576, 'largest packet accepted, in bytes'),
    receiveMaximum: integer(1, U16, 32, 'unacknowledged QoS 1/2 PUBLISH a client may send (announced to MQTT 5 clients)'),
    maxInflight: integer(1, U16, 32, 'outgoing in-flight QoS 1/2 window per session; MQTT 5 uses the client Receive Maximum capped by this'),
    maxQueuedMessages: integer(0, Number.MAX_SAFE_INTEGER, 100000, 'messages queued per session (offline or window full); 0 = unlimited'),
    queueDropPolicy: oneOf(QUEUE_DROP_POLICIES, 'oldest', 'which message is dropped when the session queue is full'),
    queueQos0: boolean(false, 'queue QoS 0 messages for offline persistent sessions'),
    topicAliasMaximum: integer(0, U16, 10, 'topic aliases an MQTT 5 client may use towards the broker'),
    maxTopicLength: integer(1, U16, U16, 'longest topic name or filter, in bytes'),
    maxTopicLevels: integer(1, U16, 128, 'most levels in a topic name or filter'),
    maxClientIdLength: integer(1, U16, U16, 'longest client identifier, in bytes'),
    connectTimeout: integer(1, 3600, 10, 'seconds allowed between TCP accept and a valid CONNECT'),
    maxSessionExpiry: integer(0, U32, U32, 'seconds; cap on the session expiry a client may ask for'),
    retainAvailable: boolean(true, 'accept retained messages'),
    sharedSubscriptions: boolean(true, 'accept $share/<group>/<filter> subscriptions'),
    wildcardSubscriptions: boolean(true, 'accept + and # in subscriptions'),
    subscriptionIdentifiers: boolean(true, 'accept MQTT 5 Subscription Identifiers'),
    allowEmptyClientId: boolean(true, 'accept an empty client id (the broker assigns one)'),
  },
  stomp: {
    host: text('0.0.0.0', 'address the STOMP TCP listener binds to'),
    port: integer(0, U16, 61613, 'STOMP TCP port; 0 picks a free port'),
    maxBodySize: integer(0, 268435455, 1048576, 'largest frame body accepted, in bytes'),
    maxHeaderLine: integer(64, U16, 8192, 'longest command or header line, in bytes'),
    maxHeaders: integer(1, 1000, 100, 'most headers in one frame'),
    heartbeat: integer(0, 3600000, 10000, 'ms: how often the broker offers to send and asks to receive heart-beats (0 = none)'),
    connectTimeout: integer(1, 3600, 10, 'seconds allowed between TCP accept and a valid CONNECT'),
    topicMapping: oneOf(STOMP_TOPIC_MAPPINGS, 'mqtt', 'mqtt: /topic/a/b is topic a/b; rabbitmq: /topic/a.b is topic a/b, wildcards * and #'),
  },
  http: {
    host: text('0.0.0.0', 'address the HTTP listener (WebSocket endpoints) binds to'),
    port: integer(0, U16, 8083, 'HTTP port for WebSocket clients; 0 picks a free port'),
    ...WEBSOCKET_SECTION,
  },
  tls: {
    ...TLS_SECTION,
    mqttPort: integer(0, U16, 8883, 'MQTT over TLS port, opened when tls.cert is set'),
    stompPort: integer(0, U16, 61614, 'STOMP over TLS port, opened when tls.cert is set'),
  },
  auth: {
    passwordFile: optional(path('-', 'users and password hashes, one user:$7$... line each (mosquitto_passwd format); junction passwd manages it')),
    aclFile: optional(path('-', "ACL rules in Mosquitto's acl_file format; without one every client may use every topic")),
    allowAnonymous: optional(
      boolean(true, 'clients without a username may connect; when not set: false if a password file or auth hook is configured, true otherwise'),
    ),
    subscribeDeniedCode: reasonCode([0x87, 0x80], 0x87, 'SUBACK code for a subscription the ACL refuses, for MQTT 5 clients (3.1.1 always get 0x80)'),
    http: {
      url: optional(text('-', 'auth hook: the broker POSTs the credentials as JSON here; a 2xx with {"ok":true} admits')),
      timeout: integer(1, 60000, 2000, 'ms to wait for the auth hook; no answer in time denies'),
      cacheSeconds: integer(0, 86400, 60, 'seconds an auth hook answer is remembered; 0 = never'),
    },
    lockout: {
      attempts: integer(0, U16, 10, 'failed logins from one address within lockout.window that lock it out; 0 = never'),
      window: integer(1, 86400, 60, 'seconds over which failed logins are counted'),
      duration: integer(1, 604800, 300, 'seconds an address stays locked out'),
    },
  },
  listeners: listenerList('when set, exactly these listeners are opened, instead of those of mqtt, stomp, http and tls'),
  queues: {
    maxDeliveries: integer(1, U16, 5, 'delivery attempts before a queue message moves to DLQ.<queue>'),
    deadLetterExpired: boolean(false, 'move expired queue messages to DLQ.<queue> instead of dropping them'),
    prefetch: integer(1, U16, 100, 'unacknowledged messages per queue consumer when its subscription names none (STOMP prefetch-count)'),
    bindings: bindings('queues that also receive every publication matching a topic filter'),
  },
  limits: {
    maxConnections: integer(0, Number.MAX_SAFE_INTEGER, 100000, 'connections open at once on all listeners together; 0 = no limit'),
    listenerMaxConnections: integer(0, Number.MAX_SAFE_INTEGER, 0, "connections open at once on one listener (a listener entry's maxConnections overrides); 0 = no limit of its own"),
    maxConnectionsPerAddress: integer(0, Number.MAX_SAFE_INTEGER, 0, 'connections open at once from one source address, per listener (overridable per listener); 0 = no limit'),
    connectRate: integer(0, Number.MAX_SAFE_INTEGER, 0, 'new connections a second per listener, token bucket (overridable per listener); 0 = no limit'),
    connectBurst: integer(0, Number.MAX_SAFE_INTEGER, 0, 'new connections a listener takes at once (the bucket size; overridable per listener); 0 = connectRate'),
    maxSubscriptions: integer(0, Number.MAX_SAFE_INTEGER, 10000, 'subscriptions per client; 0 = no limit'),
    maxQueuedBytes: integer(0, Number.MAX_SAFE_INTEGER, 268435456, 'payload bytes queued per session, beside mqtt.maxQueuedMessages; 0 = no limit'),
    publishRate: integer(0, Number.MAX_SAFE_INTEGER, 0, 'MQTT PUBLISH packets and STOMP SEND frames a second per connection, token bucket; 0 = no limit'),
    publishBurst: integer(0, Number.MAX_SAFE_INTEGER, 0, 'publishes a connection may send at once (the bucket size); 0 = publishRate'),
    publishRateAction: oneOf(PUBLISH_RATE_ACTIONS, 'pause', 'pause: stop reading from the client until its rate allows more; disconnect: MQTT 5 DISCONNECT 0x96, STOMP ERROR'),
    outputBufferSize: integer(65536, 1073741824, 4194304, 'bytes waiting to be written to one connection before it counts as congested'),
    drainTimeout: integer(0, 3600, 30, 'seconds a congested connection may go without its client reading before it is closed; 0 = never'),
    dropLogInterval: integer(1, 3600, 10, "seconds without a drop that end a client's burst of dropped messages in the log"),
  },
  storage: {
    engine: oneOf(
      STORAGE_ENGINES,
      'auto',
      'auto: the engine the data directory was made with, else rocksdb where its binary loads, else leveldb; memory: nothing survives a restart',
    ),
    dir: path('./data', 'data directory; relative to the config file (in a file) or to the working directory (flag, default)'),
    sync: boolean(true, 'fsync each write batch before acknowledging'),
  },
  admin: {
    bind: hostPort('HOST:PORT of a listener of its own for the admin API, dashboard and metrics; the http listeners then serve WebSocket upgrades only'),
    tokens: adminTokens('admin API tokens: name, SHA-256 of the token, role (viewer < publisher < admin); `junction token create NAME --role ROLE` makes one'),
  },
  log: {
    level: oneOf(LOG_LEVELS, 'info', 'least severe level written'),
    format: oneOf(LOG_FORMATS, 'json', 'json: one JSON object per line; text: human-readable'),
    file: optional(path('-', 'file the log is appended to, reopened on SIGHUP (logrotate); stdout when not set')),
  },
  trace: {
    maxTraces: integer(1, 100, 10, 'traces kept at once, running or stopped (POST /api/v1/traces refuses more)'),
    maxFileSize: integer(4096, 1073741824, 67108864, 'bytes a trace file may reach; the trace stops there'),
    dir: optional(path('-', 'directory of trace files; default <storage.dir>/traces, or a temporary directory with memory storage')),
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Types derived from the schema

interface Section {
  readonly [key: string]: Field<unknown> | Section;
}

type Shape<S> = { readonly [K in keyof S]: S[K] extends Field<infer T> ? T : Shape<S[K]> };

/** The broker configuration: fully defaulted, deep-frozen. */
export type Config = Shape<typeof SCHEMA>;

type KeysOf<S, P extends string = ''> = {
  [K in keyof S & string]: S[K] extends Field<unknown> ? `${P}${K}` : KeysOf<S[K], `${P}${K}.`>;
}[keyof S & string];

/** A dotted key path such as 'mqtt.port'. */
export type ConfigKey = KeysOf<typeof SCHEMA>;

/** One value set from outside the file, e.g. a CLI flag. */
export interface ConfigOverride {
  readonly key: ConfigKey;
  /** Text from a flag (converted per the key's type: "1883" -> 1883), or an already typed value. */
  readonly value: string | number | boolean;
  /** Named in errors instead of the key, e.g. '--mqtt-port'. */
  readonly source?: string;
}
export type ConfigOverrides = readonly ConfigOverride[];

/** What a config problem is reported as. `file` is the path given, or 'command line' for overrides. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    /** Dotted key path or flag name; '' when the problem is not about one key (unreadable file, YAML syntax). */
    readonly keyPath: string,
    readonly reason: string,
    /** 1-based position of a YAML syntax error. */
    readonly line?: number,
    readonly column?: number,
  ) {
    super(
      line !== undefined
        ? `${file}:${line}:${column ?? 1}: ${reason}`
        : keyPath === ''
          ? `${file}: ${reason}`
          : `${file}: ${keyPath}: ${reason}`,
    );
  }
}

const OVERRIDE_SOURCE = 'command line';

// ---------------------------------------------------------------------------------------------
// Key lookup and suggestions

const SECTION = SCHEMA as Section;

function listKeys(section: Section, prefix: string, out: { fields: string[]; all: string[] }): void {
  for (const [key, node] of Object.entries(section)) {
    const full = prefix + key;
    out.all.push(full);
    if (node instanceof Field) out.fields.push(full);
    else listKeys(node, `${full}.`, out);
  }
}
const KEYS = { fields: [] as string[], all: [] as string[] };
listKeys(SECTION, '', KEYS);

/** Every field key path, in schema order (e.g. for docs and tests). */
export const CONFIG_KEYS: readonly ConfigKey[] = KEYS.fields as ConfigKey[];

function fieldAt(key: string): Field<unknown> | undefined {
  let node: Field<unknown> | Section | undefined = SECTION;
  for (const part of key.split('.')) {
    if (node === undefined || node instanceof Field || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node instanceof Field ? node : undefined;
}

/** The field spec behind a key (type text, default, doc): for docs and help output. */
export function describeKey(key: ConfigKey): { expected: string; default: unknown; defaultText?: string; doc: string } {
  const f = fieldAt(key);
  if (f === undefined) throw new Error(`not a config key: ${key}`);
  const { expected, doc, defaultText } = f.spec;
  return { expected, default: f.spec.default, doc, ...(defaultText === undefined ? {} : { defaultText }) };
}

/** Edits (insert, delete, substitute, swap two neighbours) to turn a into b: "strat" -> "start" is 1. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let j = 0; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(at(i, j), at(i - 2, j - 2) + 1);
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate closest to `word`, if it is close enough to be a typo: case is ignored, and up to
 * a third of the word's length in edits (at most 3) is allowed. Also used by the CLI for flags.
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= limit ? best : undefined;
}

/** `mqtt.maxKeepalive` -> `mqtt.maxKeepAlive`; `node.port` -> `mqtt.port` (same name, other section). */
function suggestKey(keyPath: string): string | undefined {
  const direct = closestMatch(keyPath, KEYS.all);
  if (direct !== undefined) return direct;
  const last = keyPath.slice(keyPath.lastIndexOf('.') + 1).toLowerCase();
  return KEYS.all.find((k) => k.slice(k.lastIndexOf('.') + 1).toLowerCase() === last);
}

function unknownKeyReason(keyPath: string): string {
  const hint = suggestKey(keyPath);
  return hint === undefined ? 'unknown key' : `unknown key (did you mean ${hint}?)`;
}

// ---------------------------------------------------------------------------------------------
// Validation

type Mutable = { [key: string]: unknown };

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readSection(schema: Section, raw: unknown, prefix: string, file: string, ctx: ReadContext): Mutable {
  // `mqtt:` with every child commented out parses as null: treat it as an empty section.
  const given = raw ?? {};
  if (!isMapping(given)) {
    const where = prefix === '' ? '' : prefix.slice(0, -1);
    const keys = Object.keys(schema).join(', ');
    throw new ConfigError(file, where, `wrong type: expected a mapping with keys ${keys}, got ${describe(given)}`);
  }
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(schema, key)) throw new ConfigError(file, prefix + key, unknownKeyReason(prefix + key));
  }
  const out: Mutable = {};
  for (const [key, node] of Object.entries(schema)) {
    const value = Object.hasOwn(given, key) ? given[key] : undefined;
    if (node instanceof Field) {
      out[key] = value === undefined ? defaultOf(node) : readField(node, value, file, prefix + key, ctx);
    } else {
      out[key] = readSection(node, value, `${prefix}${key}.`, file, ctx);
    }
  }
  return out;
}

function readField(field: Field<unknown>, value: unknown, file: string, keyPath: string, ctx: ReadContext): unknown {
  const r = field.spec.read(value, ctx);
  if (!r.ok) throw new ConfigError(file, keyPath, r.reason);
  return r.value;
}

/** Defaults go through `read` too, so a relative default path resolves against cwd like a flag. */
function defaultOf(field: Field<unknown>): unknown {
  if (field.spec.default === undefined) return undefined; // an optional key left out
  const r = field.spec.read(field.spec.default, { baseDir: process.cwd() });
  if (!r.ok) throw new Error(`schema default does not validate: ${r.reason}`);
  return r.value;
}

function applyOverride(target: Mutable, o: ConfigOverride): void {
  const label = o.source ?? o.key;
  const field = fieldAt(o.key);
  if (field === undefined) throw new ConfigError(OVERRIDE_SOURCE, label, unknownKeyReason(o.key));
  const raw = typeof o.value === 'string' && field.spec.fromText ? field.spec.fromText(o.value) : o.value;
  const value = readField(field, raw, OVERRIDE_SOURCE, label, { baseDir: process.cwd() });
  const parts = o.key.split('.');
  let section = target;
  for (const part of parts.slice(0, -1)) section = section[part] as Mutable;
  section[parts[parts.length - 1] as string] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Keys that only shape the default listeners: with a `listeners:` list they would do nothing. */
const DEFAULT_LISTENER_KEYS: readonly string[] = [
  'mqtt.host',
  'mqtt.port',
  'stomp.host',
  'stomp.port',
  ...CONFIG_KEYS.filter((k) => k.startsWith('http.') || k.startsWith('tls.')),
];

function givenIn(raw: unknown, key: string): boolean {
  let node = raw;
  for (const part of key.split('.')) {
    if (!isMapping(node)) return false;
    node = node[part];
  }
  return node !== undefined;
}

/** Rules across keys, checked once every key has been read on its own. */
function checkAcross(out: Config, raw: unknown, file: string, overrides: ConfigOverrides): void {
  const t = out.tls;
  if (t.cert === undefined && t.key === undefined) {
    const idle = (['passphrase', 'ca', 'ciphers', 'useIdentityAs'] as const).find((k) => t[k] !== undefined) ?? (t.requestCert ? 'requestCert' : t.requireClientCert ? 'requireClientCert' : undefined);
    if (idle !== undefined) throw new ConfigError(file, `tls.${idle}`, 'set, but tls.cert is not: the TLS listeners open only with a certificate (tls.cert and tls.key)');
  }
  const tlsRule = tlsProblem(t);
  if (tlsRule !== undefined) throw new ConfigError(file, `tls.${tlsRule[0]}`, tlsRule[1]);
  const ws = websocketProblem(out.http);
  if (ws !== undefined) throw new ConfigError(file, 'http.stompPath', ws.slice(ws.indexOf(': ') + 2));
  if (out.listeners === undefined) return;
  const inFile = DEFAULT_LISTENER_KEYS.find((k) => givenIn(raw, k));
  if (inFile !== undefined) {
    throw new ConfigError(file, inFile, 'not used when the file has a listeners: list; set it in the listener entry instead');
  }
  const flag = overrides.find((o) => DEFAULT_LISTENER_KEYS.includes(o.key));
  if (flag !== undefined) {
    throw new ConfigError(OVERRIDE_SOURCE, flag.source ?? flag.key, `not used: ${file} has a listeners: list; set ${flag.key.split('.')[1]} in the listener entry instead`);
  }
}

function build(raw: unknown, file: string, baseDir: string, overrides: ConfigOverrides): Config {
  const out = readSection(SECTION, raw, '', file, { baseDir });
  for (const o of overrides) applyOverride(out, o);
  checkAcross(out as unknown as Config, raw, file, overrides);
  // Sound: readSection produced exactly SCHEMA's shape, each value checked by its field's `read`.
  return deepFreeze(out) as unknown as Config;
}

/**
 * Validates an already parsed config object (what the YAML file holds). `file` names the source in
 * errors; relative paths resolve against its directory unless `baseDir` is given.
 */
export function validateConfig(raw: unknown, file: string, baseDir = dirname(resolve(file))): Config {
  return build(raw, file, baseDir, []);
}

/** All defaults, as `loadConfig({})` returns them (storage.dir resolved against cwd at import). */
export const DEFAULT_CONFIG: Config = build(undefined, '(defaults)', process.cwd(), []);

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new ConfigError(file, '', `cannot read config file: ${why}`);
  }
}

function parseYaml(text: string, file: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first !== undefined) {
    const { line, col } = lines.linePos(first.pos[0]);
    const reason = first.code === 'MULTIPLE_DOCS' ? 'a config file holds one YAML document' : first.message;
    throw new ConfigError(file, '', `YAML syntax error: ${reason}`, line, col);
  }
  return doc.toJS();
}

/** Reads `file` (YAML) if given, then applies `overrides`; throws `ConfigError`. */
export function loadConfig(opts: { file?: string; overrides?: ConfigOverrides } = {}): Config {
  const overrides = opts.overrides ?? [];
  if (opts.file === undefined) return build(undefined, OVERRIDE_SOURCE, process.cwd(), overrides);
  const raw = parseYaml(readText(opts.file), opts.file);
  return build(raw, opts.file, dirname(resolve(opts.file)), overrides);
}


/**
 * The listeners to open: the `listeners:` list when the file has one; otherwise the defaults,
 * MQTT and STOMP over TCP, HTTP (WebSocket), and MQTT and STOMP over TLS when tls.cert is set.
 */
export function listenersOf(config: Config): readonly ListenerConfig[] {
  if (config.listeners !== undefined) return config.listeners;
  const { mqtt, stomp, http, tls } = config;
  const out: ListenerConfig[] = [
    { name: 'mqtt', protocol: 'mqtt', host: mqtt.host, port: mqtt.port },
    { name: 'stomp', protocol: 'stomp', host: stomp.host, port: stomp.port },
    {
      name: 'http',
      protocol: 'http',
      host: http.host,
      port: http.port,
      websocket: { mqttPath: http.mqttPath, stompPath: http.stompPath, allowedOrigins: http.allowedOrigins, perMessageDeflate: http.perMessageDeflate },
    },
  ];
  if (tls.cert !== undefined && tls.key !== undefined) {
    const settings: TlsConfig = {
      cert: tls.cert,
      key: tls.key,
      passphrase: tls.passphrase,
      ca: tls.ca,
      minVersion: tls.minVersion,
      ciphers: tls.ciphers,
      requestCert: tls.requestCert,
      requireClientCert: tls.requireClientCert,
      useIdentityAs: tls.useIdentityAs,
      sni: [],
    };
    out.push({ name: 'mqtts', protocol: 'mqtt', host: mqtt.host, port: tls.mqttPort, tls: settings });
    out.push({ name: 'stomps', protocol: 'stomp', host: stomp.host, port: tls.stompPort, tls: settings });
  }
  return out;
}

/** What a listener admits: its own entry's limits, else those of the `limits` section. */
export interface ListenerLimits {
  /** Connections open at once on this listener; 0 = no limit of its own. */
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  /** New connections a second; 0 = no limit. */
  readonly connectRate: number;
  /** Bucket size (connectBurst, or connectRate when 0). */
  readonly connectBurst: number;
}

export function listenerLimits(config: Config, l: ListenerConfig): ListenerLimits {
  const d = config.limits;
  const connectRate = l.connectRate ?? d.connectRate;
  const burst = l.connectBurst ?? d.connectBurst;
  return {
    maxConnections: l.maxConnections ?? d.listenerMaxConnections,
    maxConnectionsPerAddress: l.maxConnectionsPerAddress ?? d.maxConnectionsPerAddress,
    connectRate,
    connectBurst: burst > 0 ? burst : connectRate,
  };
}
