/**
 * Fuzzing the MQTT decoder on its own (protocols/mqtt/decode.ts, reader.ts, properties.ts): the
 * Framer and decodeConnect / decodePacket as MqttConnection drives them, fed random bytes, valid
 * packets of every kind (3.1, 3.1.1, 5.0) and near misses mutated from them.
 *
 * What must hold for any input:
 * - the decoder returns a packet or throws an MqttError; never another error, never a hang (the
 *   watchdog of harness.ts kills a case that runs past FUZZ_CASE_MS);
 * - how TCP cuts the bytes changes nothing: a stream decodes to the same packets and the same
 *   error whether it arrives whole or in pieces;
 * - what it returns holds only well-formed strings without U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]
 *   and owns its bytes (overwriting the input afterwards changes no decoded packet);
 * - a declared size past the maximum is refused from the fixed header alone (0x95), before any of
 *   the body is buffered.
 * And for the near misses where the answer is known: ill-formed UTF-8 in any string is 0x81
 * Malformed Packet; a duplicated property (other than User Property) is 0x82 Protocol Error; an
 * unknown property id 0x81 and a known one out of place 0x82 [MQTT-2.2.2-?].
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Framer, decodeConnect, decodePacket } from '../../protocols/mqtt/decode.js';
import type { ClientPacket, ProtocolVersion } from '../../protocols/mqtt/packets.js';
import { readProperties, type PropertyContext } from '../../protocols/mqtt/properties.js';
import { Reader } from '../../protocols/mqtt/reader.js';
import { MqttError, ReasonCode } from '../../protocols/mqtt/reason-codes.js';
import { cases, guard, seed, slowestCase, summary, timeout, wellFormed } from './harness.js';
import {
  BAD_UTF8,
  byteMutationArb,
  chunk,
  encode,
  mutate,
  mutatedPacket,
  mutateBytes,
  randomBytes,
  streamArb,
  validPacket,
  versionArb,
  vbi,
  type Mutation,
  type Pkt,
  type Version,
} from './mqtt-gen.js';

/** What decoding a byte stream gave: the packets in order, then how it stopped. */
interface Outcome {
  readonly packets: unknown[];
  /** 'more' (waiting for bytes), 'not-connect' (first packet was not CONNECT), or the MqttError code. */
  readonly end: 'more' | 'not-connect' | number;
  readonly message?: string;
}

/**
 * Decodes `chunks` as one connection does: CONNECT first (its version applies after), then any
 * packet. Errors other than MqttError propagate (the property fails with them).
 */
function decodeStream(chunks: readonly Buffer[], maxPacketSize: number, onPacket?: (p: ClientPacket) => void): Outcome {
  const f = new Framer(maxPacketSize);
  let version: ProtocolVersion | undefined;
  const packets: ClientPacket[] = [];
  try {
    for (const c of chunks) {
      f.push(c);
      for (;;) {
        const before = f.buffered;
        if (!f.next()) break;
        // Progress: every packet consumes at least its two-byte fixed header.
        expect(before - f.buffered).toBeGreaterThanOrEqual(2);
        let p: ClientPacket;
        if (version === undefined) {
          if (f.type !== 1) return { packets, end: 'not-connect' };
          p = decodeConnect(f.body, f.bodyStart, f.bodyEnd, f.flags, (v) => (version = v));
          version = p.version;
        } else {
          p = decodePacket(f.type, f.flags, f.body, f.bodyStart, f.bodyEnd, version);
        }
        onPacket?.(p);
        packets.push(p);
      }
    }
  } catch (err) {
    if (err instanceof MqttError) return { packets, end: err.code, message: err.message };
    throw err;
  }
  return { packets, end: 'more' };
}

/** A plain, comparable copy of decoded packets (Buffers as hex). */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer' ? Buffer.from((x as { data: number[] }).data).toString('hex') : x)));
}

/** Every string anywhere in a decoded packet is well-formed and free of U+0000. */
function checkStrings(v: unknown, path = 'packet'): void {
  if (typeof v === 'string') {
    expect(wellFormed(v), `${path} is not well-formed: ${JSON.stringify(v)}`).toBe(true);
    expect(v.includes('\u0000'), `${path} holds U+0000`).toBe(false);
  } else if (Array.isArray(v)) v.forEach((x, i) => checkStrings(x, `${path}[${i}]`));
  else if (v && typeof v === 'object' && !Buffer.isBuffer(v)) for (const [k, x] of Object.entries(v)) checkStrings(x, `${path}.${k}`);
}

/** Decodes one packet's bytes with every entry point (as CONNECT and as each version's packet). */
function decodeAnyWay(bytes: Buffer, maxPacketSize: number): void {
  const f = new Framer(maxPacketSize);
  f.push(bytes);
  const attempt = (fn: () => ClientPacket): void => {
    try {
      checkStrings(fn());
    } catch (err) {
      if (!(err instanceof MqttError)) throw err;
      expect(Object.values(ReasonCode)).toContain(err.code);
    }
  };
  try {
    while (f.next()) {
      attempt(() => decodeConnect(f.body, f.bodyStart, f.bodyEnd, f.flags, () => undefined));
      for (const v of [3, 4, 5] as const) attempt(() => decodePacket(f.type, f.flags, f.body, f.bodyStart, f.bodyEnd, v));
    }
  } catch (err) {
    if (!(err instanceof MqttError)) throw err;
  }
}

function run<T>(name: string, arb: fc.Arbitrary<T>, base: number, fixedSeed: number, check: (v: T) => void): void {
  const n = cases(base);
  const s = seed(fixedSeed);
  const t0 = performance.now();
  fc.assert(
    fc.property(arb, (v) => check(v)),
    { numRuns: n, seed: s },
  );
  summary(name, { cases: n, seed: s, ms: Math.round(performance.now() - t0), slowestCaseMs: slowestCase(name) });
}

describe('fuzz: MQTT decoder (protocols/mqtt/decode.ts)', () => {
  const MAX_SIZES = [128, 1024, 65536, 268435460];

  it('valid packets of every kind and version decode without error, to what was encoded', () => {
    const name = 'mqtt valid seeds';
    run(name, versionArb.chain((v) => fc.tuple(fc.constant(v), validPacket(v))), 1000, 101, ([v, p]) => {
      const bytes = encode(p);
      const type = p.first >> 4;
      // As the first packet of a connection when it is a CONNECT, else after a CONNECT of version v.
      const stream = type === 1 ? [bytes] : [encode(connectOf(v)), bytes];
      const out = guard(name, bytes, () => decodeStream(stream, 268435460));
      expect(out.end, out.message).toBe('more');
      const got = out.packets[out.packets.length - 1] as ClientPacket;
      expect(got.type).toBe(type);
      checkStrings(got);
      if (got.type === 3) {
        const topic = p.body[0]! as { v: Buffer };
        expect(got.topic).toBe(topic.v.toString('utf8'));
        expect(got.qos).toBe((p.first >> 1) & 3);
        expect(got.payload.equals((p.body[p.body.length - 1] as { v: Buffer }).v)).toBe(true);
      }
      if (got.type === 8) expect(got.subscriptions.length).toBe(p.body.filter((f) => f.t === 'str').length);
    }, );
  }, timeout(10_000));

  it('mutated packets (structure and bytes) and random bytes: a packet or an MqttError, nothing else', () => {
    const name = 'mqtt mutated packets';
    const arb = fc.tuple(
      versionArb.chain((v) => fc.oneof({ weight: 4, arbitrary: mutatedPacket(v) }, { weight: 1, arbitrary: randomBytes })),
      fc.constantFrom(...MAX_SIZES),
    );
    run(name, arb, 3000, 202, ([bytes, max]) => guard(name, bytes, () => decodeAnyWay(bytes, max)));
  }, timeout(20_000));

  it('connection streams: same packets and error however TCP cuts them; strings well-formed; decoded packets own their bytes', () => {
    const name = 'mqtt streams';
    const arb = fc.tuple(versionArb.chain((v) => streamArb(v)), fc.constantFrom(...MAX_SIZES));
    run(name, arb, 1500, 303, ([st, max]) => {
      const whole = Buffer.concat(st.packets);
      const input = Buffer.from(whole);
      const once = guard(name, whole, () => decodeStream([input], max, checkStrings));
      const before = plain(once);
      // Decoded packets must not point into the socket's buffer.
      input.fill(0xa5);
      expect(plain(once)).toEqual(before);
      const split = guard(name, whole, () => decodeStream(chunk(whole, st.cuts), max));
      expect(plain(split)).toEqual(before);
      const byteByByte = guard(name, whole, () => decodeStream([...whole].map((x) => Buffer.from([x])), max));
      expect(plain(byteByByte)).toEqual(before);
    });
  }, timeout(20_000));

  it('property lists of random bytes in every packet context: properties or an MqttError', () => {
    const name = 'mqtt properties';
    const ctxs: PropertyContext[] = ['connect', 'will', 'publish', 'ack', 'subscribe', 'unsubscribe', 'disconnect', 'auth'];
    const arb = fc.tuple(
      fc.constantFrom(...ctxs),
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
        // A plausible length first, then random ids and values.
        fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.concat([vbi(u.length), Buffer.from(u)])),
      ),
    );
    run(name, arb, 3000, 404, ([ctx, bytes]) => {
      guard(name, bytes, () => {
        try {
          checkStrings(readProperties(new Reader(bytes, 0, bytes.length), ctx));
        } catch (err) {
          if (!(err instanceof MqttError)) throw err;
        }
      });
    });
  }, timeout(10_000));

  it('ill-formed UTF-8 or U+0000 in any string of a valid packet is 0x81 Malformed Packet [MQTT-1.5.4-1] [MQTT-1.5.4-2]', () => {
    const name = 'mqtt invalid utf-8';
    const arb = versionArb.chain((v) => fc.tuple(fc.constant(v), validPacket(v), fc.nat(), fc.nat(), fc.nat()));
    let applied = 0;
    run(name, arb, 2000, 505, ([v, p, a, b, c]) => {
      const m: Mutation = { kind: 'utf8', a, b, c };
      const q = mutate(p, m);
      const bytes = encode(q);
      if (bytes.equals(encode(p))) return; // a packet without strings (PINGREQ, acks)
      applied++;
      const out = guard(name, bytes, () => decodeStream(streamFor(v, q, bytes), 268435460));
      expect(out.end, `${BAD_UTF8[b % BAD_UTF8.length]!.toString('hex')} in ${bytes.toString('hex')}`).toBe(ReasonCode.MalformedPacket);
    });
    expect(applied).toBeGreaterThan(500);
  }, timeout(10_000));

  it('MQTT 5 properties: duplicates are 0x82 (User Property may repeat), unknown ids 0x81, misplaced ones 0x82', () => {
    const name = 'mqtt property rules';
    const SERVER_ONLY = new Set([0x12, 0x13, 0x1a, 0x24, 0x25, 0x28, 0x29, 0x2a]);
    const KNOWN = new Set([0x01, 0x02, 0x03, 0x08, 0x09, 0x0b, 0x11, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1c, 0x1f, 0x21, 0x22, 0x23, 0x26, 0x27, ...SERVER_ONLY]);
    const arb = fc.tuple(validPacket(5), fc.constantFrom<'dupProp' | 'badProp'>('dupProp', 'badProp'), fc.nat(), fc.nat(), fc.nat());
    let applied = 0;
    run(name, arb, 2000, 606, ([p, kind, a, b, c]) => {
      const q = mutate(p, { kind, a, b, c });
      const bytes = encode(q);
      if (bytes.equals(encode(p))) return; // nothing to act on
      applied++;
      const added = addedProp(p, q);
      const out = guard(name, bytes, () => decodeStream(streamFor(5, q, bytes), 268435460));
      if (kind === 'dupProp') {
        // A CONNECT's will properties may carry the duplicate: still 0x82; a user property may repeat.
        expect(out.end, bytes.toString('hex')).toBe(added === 0x26 ? 'more' : ReasonCode.ProtocolError);
      } else {
        expect(out.end, bytes.toString('hex')).toBe(KNOWN.has(added) ? ReasonCode.ProtocolError : ReasonCode.MalformedPacket);
      }
    });
    expect(applied).toBeGreaterThan(500);
  }, timeout(10_000));

  it('oversized and truncated remaining lengths: 0x95 from the fixed header alone, nothing buffered; 5-byte lengths 0x81', () => {
    const declared = [129, 1000, 16383, 16384, 2097151, 2097152, 268435455];
    for (const max of [128, 1024, 16384, 2097152]) {
      for (const len of declared) {
        const f = new Framer(max);
        // Only the fixed header arrives: the decision must not wait for the body.
        f.push(Buffer.concat([Buffer.from([0x30]), vbi(len)]));
        const total = 1 + vbi(len).length + len;
        if (total > max) {
          expect(() => f.next(), `declared ${len} with max ${max}`).toThrow(expect.objectContaining({ code: ReasonCode.PacketTooLarge }));
        } else {
          expect(f.next()).toBe(false);
        }
      }
    }
    for (const tail of [[0xff, 0xff, 0xff, 0xff, 0x7f], [0x80, 0x80, 0x80, 0x80, 0x00], [0xff, 0xff, 0xff, 0xff, 0xff]]) {
      const f = new Framer(268435460);
      f.push(Buffer.from([0x30, ...tail]));
      expect(() => f.next()).toThrow(expect.objectContaining({ code: ReasonCode.MalformedPacket }));
    }
    // Truncated: any prefix of a valid packet waits for more, it is never an error.
    const p = encode({ first: 0x32, body: [{ t: 'str', v: Buffer.from('fz/t') }, { t: 'u16', v: 7 }, { t: 'props', list: [] }, { t: 'raw', v: Buffer.alloc(300, 1) }] });
    for (let i = 0; i < p.length; i++) {
      const f = new Framer(1024);
      f.push(p.subarray(0, i));
      expect(f.next()).toBe(false);
    }
  });

  it('byte mutations of a whole CONNECT + traffic stream keep the decoder within MqttError', () => {
    const name = 'mqtt stream byte mutations';
    const arb = fc.tuple(versionArb.chain((v) => streamArb(v)), fc.array(byteMutationArb, { minLength: 1, maxLength: 4 }), fc.constantFrom(...MAX_SIZES));
    run(name, arb, 1500, 707, ([st, ms, max]) => {
      let bytes: Buffer = Buffer.concat(st.packets);
      for (const m of ms) bytes = mutateBytes(bytes, m, st.packets[0]);
      const whole = guard(name, bytes, () => decodeStream([bytes], max, checkStrings));
      const split = guard(name, bytes, () => decodeStream(chunk(bytes, st.cuts), max));
      expect(plain(split)).toEqual(plain(whole));
    });
  }, timeout(10_000));
});

/** A CONNECT of version v with nothing else in it. */
function connectOf(v: Version): Pkt {
  const body: Pkt['body'] = [{ t: 'str', v: Buffer.from(v === 3 ? 'MQIsdp' : 'MQTT') }, { t: 'u8', v }, { t: 'u8', v: 2 }, { t: 'u16', v: 60 }];
  if (v === 5) body.push({ t: 'props', list: [] });
  body.push({ t: 'str', v: Buffer.from('fz-seed') });
  return { first: 0x10, body };
}

/** The stream that puts packet `q` (encoded as `bytes`) where it belongs: alone if CONNECT, else after one. */
function streamFor(v: Version, q: Pkt, bytes: Buffer): Buffer[] {
  return q.first >> 4 === 1 ? [bytes] : [encode(connectOf(v)), bytes];
}

/** The id of the property that `q` has and `p` has not (first difference in property lists). */
function addedProp(p: Pkt, q: Pkt): number {
  const ids = (x: Pkt): number[] => {
    const out: number[] = [];
    for (const f of x.body) if (f.t === 'props') for (const pr of f.list) out.push(pr.id);
    return out;
  };
  const a = ids(p);
  const b = ids(q);
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return b[i]!;
  return -1;
}
