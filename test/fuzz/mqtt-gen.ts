/**
 * MQTT input generators for the fuzz tests (fast-check arbitraries).
 *
 * Valid packets are built as a small field model (`Pkt`: first byte, body fields, property lists)
 * rather than bytes, so that mutations can reach what a byte flip rarely hits: a string's bytes
 * (invalid UTF-8: overlong, surrogates, stray continuation bytes, U+0000), a length prefix or the
 * remaining length set to an extreme, an unknown or misplaced property id, a duplicated property.
 * Byte-level mutations (bit flips, truncation, duplication, splicing, insertion) then work on the
 * encoded packet. `validPacket(v)` gives seeds every decoder must accept; `mutatedPacket(v)` near
 * misses; `stream(v)` a CONNECT followed by a mix of both, cut into random chunks.
 */
import fc from 'fast-check';

export type Version = 3 | 4 | 5;

export type Field =
  | { t: 'u8' | 'u16' | 'u32' | 'vbi'; v: number }
  | { t: 'str' | 'bin'; v: Buffer; len?: number }
  | { t: 'props'; list: Prop[]; len?: number }
  | { t: 'raw'; v: Buffer };

export interface Prop {
  id: number;
  value: Field[];
}

export interface Pkt {
  first: number;
  body: Field[];
  /** Raw bytes to use as the remaining length instead of the real one. */
  remLen?: Buffer;
}

// -- encoding -----------------------------------------------------------------------------------

/** Variable Byte Integer; values past 268435455 give the 5-byte encodings a decoder must refuse. */
export function vbi(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function u16(n: number): Buffer {
  return Buffer.from([(n >> 8) & 0xff, n & 0xff]);
}

function encodeField(f: Field): Buffer {
  switch (f.t) {
    case 'u8':
      return Buffer.from([f.v & 0xff]);
    case 'u16':
      return u16(f.v);
    case 'u32': {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(f.v >>> 0);
      return b;
    }
    case 'vbi':
      return vbi(f.v);
    case 'str':
    case 'bin':
      return Buffer.concat([u16(f.len ?? f.v.length), f.v]);
    case 'props': {
      const body = Buffer.concat(f.list.flatMap((p) => [vbi(p.id), ...p.value.map(encodeField)]));
      return Buffer.concat([vbi(f.len ?? body.length), body]);
    }
    case 'raw':
      return f.v;
  }
}

export function encode(p: Pkt): Buffer {
  const body = Buffer.concat(p.body.map(encodeField));
  return Buffer.concat([Buffer.from([p.first & 0xff]), p.remLen ?? vbi(body.length), body]);
}

function cloneField(f: Field): Field {
  if (f.t === 'props') return { ...f, list: f.list.map((p) => ({ id: p.id, value: p.value.map(cloneField) })) };
  return { ...f };
}

export function clone(p: Pkt): Pkt {
  return { first: p.first, body: p.body.map(cloneField), ...(p.remLen ? { remLen: p.remLen } : {}) };
}

// -- values -------------------------------------------------------------------------------------

const s = (text: string): Field => ({ t: 'str', v: Buffer.from(text, 'utf8') });
const b = (bytes: Buffer | Uint8Array): Field => ({ t: 'bin', v: Buffer.from(bytes) });
const u8 = (v: number): Field => ({ t: 'u8', v });
const w16 = (v: number): Field => ({ t: 'u16', v });
const w32 = (v: number): Field => ({ t: 'u32', v });

/** Topic names valid for PUBLISH (fuzz topics stay under `fz/` so that health checks are apart). */
export const topicName: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('fz', 'fz/a', 'fz/a/b', 'fz/ü/日/🚀', 'fz//x', 'fz/a/b/c/d/e/f/g', 'fz/$x', 'fz/ '),
  fc.array(fc.constantFrom('a', 'b', 'x1', '', 'ü', '$'), { minLength: 1, maxLength: 6 }).map((l) => 'fz/' + l.join('/')),
);

/** Topic filters, valid ones and a few the broker refuses with a reason code (not a decode error). */
export const topicFilter: fc.Arbitrary<string> = fc.oneof(
  topicName,
  fc.constantFrom('fz/#', 'fz/+', 'fz/+/b', '$share/g/fz/#', '$share/g2/fz/+/x', '#', '+/+', 'fz/a#', 'fz/+x', '$share//x', '$share/g', '$queue/fzq', ''),
);

const clientId = fc.oneof(fc.constantFrom('', 'fz-client', 'fz-ü'), fc.stringMatching(/^fz-[a-z0-9]{1,12}$/));
const text = fc.string({ maxLength: 12 }).filter((x) => !x.includes('\u0000'));
const bytes = fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u));
const userProp = fc.tuple(text, text).map(([k, v]): Prop => ({ id: 0x26, value: [s(k), s(v)] }));

/** A valid property list for `ctx`: each allowed property at most once (user properties repeat). */
function propsArb(ctx: 'connect' | 'will' | 'publish' | 'ack' | 'subscribe' | 'unsubscribe' | 'disconnect' | 'auth'): fc.Arbitrary<Prop[]> {
  const one: Record<number, fc.Arbitrary<Field[]>> = {
    0x01: fc.constantFrom(0, 1).map((v) => [u8(v)]),
    0x02: fc.nat().map((v) => [w32(v)]),
    0x03: text.map((v) => [s(v)]),
    0x08: topicName.map((v) => [s(v)]),
    0x09: bytes.map((v) => [b(v)]),
    0x0b: fc.integer({ min: 1, max: 268435455 }).map((v): Field[] => [{ t: 'vbi', v }]),
    0x11: fc.constantFrom(0, 1, 60, 0xffffffff).map((v) => [w32(v)]),
    0x15: fc.constant([s('fz-method')]),
    0x16: bytes.map((v) => [b(v)]),
    0x17: fc.constantFrom(0, 1).map((v) => [u8(v)]),
    0x18: fc.constantFrom(0, 1, 5).map((v) => [w32(v)]),
    0x19: fc.constantFrom(0, 1).map((v) => [u8(v)]),
    0x1c: text.map((v) => [s(v)]),
    0x1f: text.map((v) => [s(v)]),
    0x21: fc.integer({ min: 1, max: 65535 }).map((v) => [w16(v)]),
    0x22: fc.integer({ min: 0, max: 65535 }).map((v) => [w16(v)]),
    0x23: fc.integer({ min: 1, max: 10 }).map((v) => [w16(v)]),
    0x27: fc.integer({ min: 1, max: 0xffffffff }).map((v) => [w32(v)]),
  };
  // Authentication is not offered by the broker: a CONNECT with a method is refused, not malformed.
  const ids: Record<typeof ctx, number[]> = {
    connect: [0x11, 0x21, 0x27, 0x22, 0x19, 0x17],
    will: [0x18, 0x01, 0x02, 0x03, 0x08, 0x09],
    publish: [0x01, 0x02, 0x23, 0x08, 0x09, 0x03],
    ack: [0x1f],
    subscribe: [0x0b],
    unsubscribe: [],
    disconnect: [0x11, 0x1f, 0x1c],
    auth: [0x15, 0x16, 0x1f],
  };
  const singles = ids[ctx].map((id) => fc.option(one[id]!.map((value): Prop => ({ id, value })), { nil: undefined }));
  return fc.tuple(fc.tuple(...singles), fc.array(userProp, { maxLength: 3 }), fc.boolean()).map(([opt, users, usersFirst]) => {
    const list = opt.filter((p): p is Prop => p !== undefined);
    return usersFirst ? [...users, ...list] : [...list, ...users];
  });
}

const props = (list: Prop[]): Field => ({ t: 'props', list });

export function connectArb(v: Version): fc.Arbitrary<Pkt> {
  return fc
    .record({
      clean: fc.boolean(),
      keepAlive: fc.constantFrom(0, 1, 30, 60, 65535),
      id: clientId,
      will: fc.option(fc.record({ qos: fc.constantFrom(0, 1, 2), retain: fc.boolean(), topic: topicName, payload: bytes, props: propsArb('will') }), {
        nil: undefined,
      }),
      username: fc.option(text, { nil: undefined }),
      password: fc.option(bytes, { nil: undefined }),
      props: propsArb('connect'),
    })
    .map((c) => {
      // 3.1 and 3.1.1: a password needs a username [MQTT-3.1.2-22].
      const password = v !== 5 && c.username === undefined ? undefined : c.password;
      let flags = c.clean ? 0x02 : 0;
      if (c.will) flags |= 0x04 | (c.will.qos << 3) | (c.will.retain ? 0x20 : 0);
      if (password !== undefined) flags |= 0x40;
      if (c.username !== undefined) flags |= 0x80;
      // 3.1 ids are at most 23 bytes in practice; an empty one is refused, not malformed.
      const body: Field[] = [s(v === 3 ? 'MQIsdp' : 'MQTT'), u8(v), u8(flags), w16(c.keepAlive)];
      if (v === 5) body.push(props(c.props));
      body.push(s(c.id));
      if (c.will) {
        if (v === 5) body.push(props(c.will.props));
        body.push(s(c.will.topic), b(c.will.payload));
      }
      if (c.username !== undefined) body.push(s(c.username));
      if (password !== undefined) body.push(b(password));
      return { first: 0x10, body };
    });
}

export function publishArb(v: Version): fc.Arbitrary<Pkt> {
  return fc
    .record({ qos: fc.constantFrom(0, 1, 2), dup: fc.boolean(), retain: fc.boolean(), topic: topicName, id: fc.integer({ min: 1, max: 65535 }), props: propsArb('publish'), payload: bytes })
    .map((p) => {
      const dup = p.dup && p.qos > 0; // [MQTT-3.3.1-2]
      const body: Field[] = [s(p.topic)];
      if (p.qos > 0) body.push(w16(p.id));
      if (v === 5) body.push(props(p.props));
      body.push({ t: 'raw', v: p.payload });
      return { first: 0x30 | (dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0), body };
    });
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP with the short and long v5 forms. */
export function ackArb(v: Version): fc.Arbitrary<Pkt> {
  return fc
    .record({ type: fc.constantFrom(4, 5, 6, 7), id: fc.integer({ min: 1, max: 65535 }), form: fc.constantFrom(0, 1, 2), props: propsArb('ack'), err: fc.boolean() })
    .map((a) => {
      const body: Field[] = [w16(a.id)];
      if (v === 5 && a.form > 0) {
        const code = a.type === 6 || a.type === 7 ? (a.err ? 0x92 : 0) : a.err ? 0x80 : 0x10;
        body.push(u8(code));
        if (a.form > 1) body.push(props(a.props));
      }
      return { first: (a.type << 4) | (a.type === 6 ? 2 : 0), body };
    });
}

export function subscribeArb(v: Version): fc.Arbitrary<Pkt> {
  const entry = fc.record({ filter: topicFilter, qos: fc.constantFrom(0, 1, 2), nl: fc.boolean(), rap: fc.boolean(), rh: fc.constantFrom(0, 1, 2) });
  return fc.record({ id: fc.integer({ min: 1, max: 65535 }), props: propsArb('subscribe'), subs: fc.array(entry, { minLength: 1, maxLength: 4 }) }).map((p) => {
    const body: Field[] = [w16(p.id)];
    if (v === 5) body.push(props(p.props));
    for (const e of p.subs) {
      const o = v === 5 ? e.qos | (e.nl ? 4 : 0) | (e.rap ? 8 : 0) | (e.rh << 4) : e.qos;
      body.push(s(e.filter), u8(o));
    }
    return { first: 0x82, body };
  });
}

export function unsubscribeArb(v: Version): fc.Arbitrary<Pkt> {
  return fc.record({ id: fc.integer({ min: 1, max: 65535 }), props: propsArb('unsubscribe'), filters: fc.array(topicFilter, { minLength: 1, maxLength: 4 }) }).map((p) => {
    const body: Field[] = [w16(p.id)];
    if (v === 5) body.push(props(p.props));
    for (const f of p.filters) body.push(s(f));
    return { first: 0xa2, body };
  });
}

const pingreq: Pkt = { first: 0xc0, body: [] };

export function disconnectArb(v: Version): fc.Arbitrary<Pkt> {
  if (v !== 5) return fc.constant({ first: 0xe0, body: [] });
  return fc.record({ form: fc.constantFrom(0, 1, 2), code: fc.constantFrom(0x00, 0x04, 0x80), props: propsArb('disconnect') }).map((d) => {
    const body: Field[] = [];
    if (d.form > 0) body.push(u8(d.code));
    if (d.form > 1) body.push(props(d.props.filter((p) => p.id !== 0x11)));
    return { first: 0xe0, body };
  });
}

function authArb(): fc.Arbitrary<Pkt> {
  return fc.record({ code: fc.constantFrom(0x00, 0x18, 0x19), props: propsArb('auth') }).map((a) => ({ first: 0xf0, body: [u8(a.code), props(a.props)] }));
}

/** Any packet a client may send after CONNECT, valid for `v` (DISCONNECT and AUTH excluded: they end a stream). */
export function afterConnectArb(v: Version): fc.Arbitrary<Pkt> {
  return fc.oneof(
    { weight: 4, arbitrary: publishArb(v) },
    { weight: 2, arbitrary: ackArb(v) },
    { weight: 2, arbitrary: subscribeArb(v) },
    { weight: 1, arbitrary: unsubscribeArb(v) },
    { weight: 1, arbitrary: fc.constant(pingreq) },
  );
}

/** Every valid packet kind for `v`, CONNECT included. */
export function validPacket(v: Version): fc.Arbitrary<Pkt> {
  const kinds = [connectArb(v), afterConnectArb(v), disconnectArb(v)];
  if (v === 5) kinds.push(authArb());
  return fc.oneof(...kinds);
}

// -- mutations ----------------------------------------------------------------------------------

/** Ill-formed UTF-8 (and U+0000, which MQTT strings must not hold). */
export const BAD_UTF8: readonly Buffer[] = [
  [0xc0, 0xaf], // overlong '/'
  [0xc0, 0x80], // overlong U+0000
  [0xe0, 0x80, 0xaf], // overlong, 3 bytes
  [0xf0, 0x80, 0x80, 0xaf], // overlong, 4 bytes
  [0xed, 0xa0, 0x80], // U+D800, a high surrogate
  [0xed, 0xbf, 0xbf], // U+DFFF, a low surrogate
  [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], // a surrogate pair written as CESU-8
  [0x80], // stray continuation byte
  [0xbf, 0xbf],
  [0xe2, 0x82], // truncated sequence
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
  [0xfe],
  [0xff],
  [0x00], // U+0000 [MQTT-1.5.4-2]
].map((a) => Buffer.from(a));

/** Unknown property ids, ids in the wrong packet (server-only ones), and multi-byte id encodings. */
const BAD_PROP_IDS = [0x00, 0x04, 0x05, 0x0a, 0x10, 0x12, 0x13, 0x14, 0x1a, 0x24, 0x25, 0x28, 0x29, 0x2a, 0x2b, 0x7f, 0x80, 0x3fff, 0x1fffff];

const EXTREME_LEN = [0, 1, 2, 0x7f, 0x80, 0x3fff, 0x4000, 0x7fff, 0xffff];
const EXTREME_REMLEN: readonly Buffer[] = [
  [0x00],
  [0x7f],
  [0xff, 0x7f],
  [0xff, 0xff, 0x7f],
  [0xff, 0xff, 0xff, 0x7f], // 268435455, the largest
  [0xff, 0xff, 0xff, 0xff, 0x7f], // 5 bytes
  [0x80, 0x80, 0x80, 0x80, 0x01],
  [0x80, 0x00], // non-minimal 0
  [0x80],
  [0xff],
  [0xff, 0xff, 0xff, 0xff],
].map((a) => Buffer.from(a));
const EXTREME_NUM = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 268435455, 268435456];

type FieldRef = { parent: Field[]; i: number };

/** Every field of a packet, nested property values included, in order. */
function fieldsOf(p: Pkt): FieldRef[] {
  const out: FieldRef[] = [];
  const visit = (list: Field[]): void => {
    for (let i = 0; i < list.length; i++) {
      out.push({ parent: list, i });
      const f = list[i]!;
      if (f.t === 'props') for (const pr of f.list) visit(pr.value);
    }
  };
  visit(p.body);
  return out;
}

function pick<T>(list: readonly T[], n: number): T | undefined {
  return list.length === 0 ? undefined : list[n % list.length];
}

/** A structural mutation: which kind, and numbers that choose where and what (taken modulo). */
export type Mutation = { kind: 'utf8' | 'len' | 'badProp' | 'dupProp' | 'num' | 'remLen' | 'first' | 'dropField' | 'dupField' | 'moveProp'; a: number; b: number; c: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('utf8', 'len', 'badProp', 'dupProp', 'num', 'remLen', 'first', 'dropField', 'dupField', 'moveProp'),
  a: fc.nat(),
  b: fc.nat(),
  c: fc.nat(),
});

/** Applies `m` to a copy of `p`; a mutation with nothing to act on leaves it as it was. */
export function mutate(p: Pkt, m: Mutation): Pkt {
  const q = clone(p);
  const refs = fieldsOf(q);
  const of = (...kinds: Field['t'][]): FieldRef[] => refs.filter((r) => kinds.includes(r.parent[r.i]!.t));
  switch (m.kind) {
    case 'utf8': {
      const r = pick(of('str'), m.a);
      if (!r) break;
      const f = r.parent[r.i] as Extract<Field, { t: 'str' | 'bin' }>;
      const bad = BAD_UTF8[m.b % BAD_UTF8.length]!;
      const at = f.v.length === 0 ? 0 : m.c % (f.v.length + 1);
      f.v = Buffer.concat([f.v.subarray(0, at), bad, f.v.subarray(at)]);
      break;
    }
    case 'len': {
      const r = pick(of('str', 'bin', 'props'), m.a);
      if (!r) break;
      const f = r.parent[r.i] as Extract<Field, { t: 'str' | 'bin' | 'props' }>;
      const real = f.t === 'props' ? encodeField({ ...f, len: undefined }).length - vbi(0).length : f.v.length;
      const choices = [...EXTREME_LEN, real + 1, Math.max(0, real - 1), real + 2, ...(f.t === 'props' ? [268435455, 268435456] : [])];
      f.len = choices[m.b % choices.length]!;
      break;
    }
    case 'badProp': {
      const r = pick(of('props'), m.a);
      if (!r) break;
      const f = r.parent[r.i] as Extract<Field, { t: 'props' }>;
      const id = BAD_PROP_IDS[m.b % BAD_PROP_IDS.length]!;
      f.list.splice(m.c % (f.list.length + 1), 0, { id, value: [u8(m.c & 0xff), w16(m.b & 0xffff)] });
      break;
    }
    case 'dupProp': {
      const r = pick(of('props'), m.a);
      if (!r) break;
      const f = r.parent[r.i] as Extract<Field, { t: 'props' }>;
      const src = pick(f.list, m.b);
      if (src) f.list.splice(m.c % (f.list.length + 1), 0, { id: src.id, value: src.value.map(cloneField) });
      break;
    }
    case 'moveProp': {
      // A property valid somewhere, in a packet where it is not allowed (or a server-only one).
      const r = pick(of('props'), m.a);
      if (!r) break;
      const f = r.parent[r.i] as Extract<Field, { t: 'props' }>;
      const foreign: Prop[] = [
        { id: 0x0b, value: [{ t: 'vbi', v: 1 + (m.b % 1000) }] },
        { id: 0x23, value: [w16(m.b & 0xffff)] },
        { id: 0x11, value: [w32(m.b)] },
        { id: 0x21, value: [w16(m.b & 0xffff)] },
        { id: 0x27, value: [w32(m.b)] },
        { id: 0x15, value: [s('x')] },
        { id: 0x18, value: [w32(m.b)] },
        { id: 0x12, value: [s('assigned')] },
        { id: 0x24, value: [u8(m.b & 0xff)] },
      ];
      f.list.splice(m.c % (f.list.length + 1), 0, foreign[m.b % foreign.length]!);
      break;
    }
    case 'num': {
      const r = pick(of('u8', 'u16', 'u32', 'vbi'), m.a);
      if (!r) break;
      const f = r.parent[r.i] as Extract<Field, { t: 'u8' | 'u16' | 'u32' | 'vbi' }>;
      f.v = EXTREME_NUM[m.b % EXTREME_NUM.length]!;
      break;
    }
    case 'remLen': {
      const real = encode({ ...q, remLen: undefined }).length;
      const choices = [...EXTREME_REMLEN, vbi(real + 1), vbi(Math.max(0, real - 3)), vbi(real * 2 + 100)];
      q.remLen = choices[m.a % choices.length]!;
      break;
    }
    case 'first':
      // Another type or other flags; type 0 is reserved.
      q.first = m.a % 2 === 0 ? (q.first & 0xf0) | (m.b & 0x0f) : m.b & 0xff;
      break;
    case 'dropField':
      if (q.body.length > 0) q.body.splice(m.a % q.body.length, 1);
      break;
    case 'dupField':
      if (q.body.length > 0) {
        const i = m.a % q.body.length;
        q.body.splice(i, 0, cloneField(q.body[i]!));
      }
      break;
  }
  return q;
}

/** A byte-level mutation of an encoded packet. */
export type ByteMutation = { kind: 'flip' | 'truncate' | 'duplicate' | 'splice' | 'extreme' | 'insert' | 'delete'; a: number; b: number; n: number; extra: Buffer };

export const byteMutationArb: fc.Arbitrary<ByteMutation> = fc.record({
  kind: fc.constantFrom('flip', 'truncate', 'duplicate', 'splice', 'extreme', 'insert', 'delete'),
  a: fc.nat(),
  b: fc.nat(),
  n: fc.integer({ min: 1, max: 8 }),
  extra: fc.uint8Array({ minLength: 1, maxLength: 32 }).map((u) => Buffer.from(u)),
});

export function mutateBytes(buf: Buffer, m: ByteMutation, other: Buffer = Buffer.alloc(0)): Buffer {
  const len = buf.length;
  const at = len === 0 ? 0 : m.a % len;
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(buf);
      if (len === 0) return out;
      for (let k = 0; k < m.n; k++) {
        const pos = (m.a + k * (m.b + 1) * 7919) % len;
        out[pos]! ^= 1 << ((m.b + k) % 8);
      }
      return out;
    }
    case 'truncate':
      return buf.subarray(0, at);
    case 'duplicate': {
      const end = Math.min(len, at + 1 + (m.b % 64));
      return Buffer.concat([buf.subarray(0, end), buf.subarray(at, end), buf.subarray(end)]);
    }
    case 'splice':
      // The head of this packet, the tail of another: their lengths no longer agree.
      return Buffer.concat([buf.subarray(0, at), other.subarray(other.length === 0 ? 0 : m.b % other.length)]);
    case 'extreme': {
      const out = Buffer.from(buf);
      if (len > 0) out[at] = [0x00, 0xff, 0x7f, 0x80][m.b % 4]!;
      return out;
    }
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.extra, buf.subarray(at)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(len, at + 1 + (m.b % 16)))]);
  }
}

/** A packet that is valid for `v`, mutated structurally and/or bytewise (the near misses). */
export function mutatedPacket(v: Version): fc.Arbitrary<Buffer> {
  return fc
    .tuple(validPacket(v), fc.array(mutationArb, { maxLength: 3 }), fc.option(byteMutationArb, { nil: undefined }), validPacket(v))
    .map(([p, ms, bm, other]) => {
      let q = p;
      for (const m of ms) q = mutate(q, m);
      const bytes = encode(q);
      return bm ? mutateBytes(bytes, bm, encode(other)) : bytes;
    });
}

/** Random bytes, sometimes starting with a plausible first byte. */
export const randomBytes: fc.Arbitrary<Buffer> = fc
  .tuple(fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), fc.uint8Array({ maxLength: 300 }))
  .map(([first, rest]) => Buffer.from(first === undefined ? rest : [first, ...rest]));

/** Cuts `buf` at the given points (taken modulo its length): TCP may deliver any split. */
export function chunk(buf: Buffer, cuts: readonly number[]): Buffer[] {
  if (buf.length === 0) return [buf];
  const points = [...new Set(cuts.map((c) => c % buf.length))].filter((c) => c > 0).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

export interface Stream {
  readonly version: Version;
  /** The packets in order: a CONNECT (maybe mutated) first, then valid and mutated ones. */
  readonly packets: readonly Buffer[];
  readonly cuts: readonly number[];
}

/** A connection's worth of input for `v`: what a hostile or broken client might send. */
export function streamArb(v: Version): fc.Arbitrary<Stream> {
  const next = fc.oneof(
    { weight: 3, arbitrary: afterConnectArb(v).map(encode) },
    { weight: 3, arbitrary: mutatedPacket(v) },
    { weight: 1, arbitrary: validPacket(v).map(encode) },
    { weight: 1, arbitrary: randomBytes },
  );
  const first = fc.oneof({ weight: 4, arbitrary: connectArb(v).map(encode) }, { weight: 1, arbitrary: mutatedPacket(v) });
  return fc.record({ first, rest: fc.array(next, { maxLength: 12 }), cuts: fc.array(fc.nat(), { maxLength: 6 }) }).map((r) => ({
    version: v,
    packets: [r.first, ...r.rest],
    cuts: r.cuts,
  }));
}

export const versionArb: fc.Arbitrary<Version> = fc.constantFrom(3, 4, 5);

/** `p` with its packet identifier set to `id` (PUBLISH QoS 1/2, the acks, SUBSCRIBE, UNSUBSCRIBE). */
export function withPacketId(p: Pkt, id: number): Pkt {
  const type = p.first >> 4;
  const q = clone(p);
  const at = type === 3 ? ((p.first >> 1) & 3) > 0 ? 1 : -1 : type >= 4 && type <= 11 ? 0 : -1;
  if (at >= 0 && q.body[at]?.t === 'u16') q.body[at] = { t: 'u16', v: id };
  return q;
}

/**
 * A sequence of well-formed packets in any order, as a confused or hostile client might send
 * them: usually a CONNECT first, then PUBLISH, acks, SUBSCRIBE, UNSUBSCRIBE, PINGREQ with packet
 * ids from a small pool (so that PUBREL, PUBACK, PUBREC, PUBCOMP meet ids that are unknown, in
 * flight or already released), and sometimes a second CONNECT, an AUTH, or a DISCONNECT midway.
 */
export function sequenceArb(v: Version): fc.Arbitrary<Pkt[]> {
  const id = fc.constantFrom(1, 2, 3, 7, 65535);
  const step = fc.oneof(
    { weight: 40, arbitrary: fc.tuple(afterConnectArb(v), id).map(([p, i]) => withPacketId(p, i)) },
    { weight: 1, arbitrary: connectArb(v) },
    { weight: 1, arbitrary: disconnectArb(v) },
    ...(v === 5 ? [{ weight: 1, arbitrary: authArb() }] : []),
  );
  return fc.tuple(fc.nat(9), connectArb(v), fc.array(step, { minLength: 1, maxLength: 25 })).map(([k, c, rest]) => (k === 0 ? rest : [c, ...rest]));
}
