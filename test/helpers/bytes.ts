/**
 * A tiny MQTT byte builder for packets no well-behaved encoder will produce (mqtt-packet's
 * `generate` refuses many of them). Every function returns a Buffer; `packet` adds the fixed header.
 */

type Part = Buffer | number[] | number;

function toBuf(p: Part): Buffer {
  if (Buffer.isBuffer(p)) return p;
  return Buffer.from(typeof p === 'number' ? [p] : p);
}

export function cat(...parts: Part[]): Buffer {
  return Buffer.concat(parts.map(toBuf));
}

export const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);
export const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Variable Byte Integer (MQTT 1.5.5). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** UTF-8 string or raw bytes with a two-byte length prefix (the prefix counts the bytes given). */
export function str(s: string | Buffer | number[]): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : toBuf(s);
  return cat(u16(b.length), b);
}

/** A property list: its Variable Byte Integer length, then the properties. */
export function props(...parts: Part[]): Buffer {
  const body = cat(...parts);
  return cat(varint(body.length), body);
}

/** A whole packet: `first` is the fixed header's first byte (type << 4 | flags). */
export function packet(first: number, ...body: Part[]): Buffer {
  const b = cat(...body);
  return cat(u8(first), varint(b.length), b);
}

export interface ConnectBytesOptions {
  readonly version: 4 | 5;
  readonly clientId?: string | Buffer | number[];
  readonly keepAlive?: number;
  /** v5 CONNECT properties, without their length. */
  readonly props?: Buffer;
  readonly cleanStart?: boolean;
}

/** A CONNECT with only a client id (and v5 properties); its fields can be broken on purpose. */
export function connectBytes(o: ConnectBytesOptions): Buffer {
  return packet(
    0x10,
    str('MQTT'),
    o.version,
    o.cleanStart === false ? 0x00 : 0x02,
    u16(o.keepAlive ?? 60),
    o.version === 5 ? props(o.props ?? Buffer.alloc(0)) : Buffer.alloc(0),
    str(o.clientId ?? 'bytes-' + Math.random().toString(16).slice(2, 10)),
  );
}
