/**
 * Reader: bounds-checked reads of MQTT data types (section 1.5) from one packet body.
 * Running past the end is a Malformed Packet; strings must be well-formed UTF-8 without U+0000
 * ([MQTT-1.5.4-1], [MQTT-1.5.4-2]), which mqtt-packet does not check.
 */
import { isUtf8 } from 'node:buffer';
import { MqttError, ReasonCode } from './reason-codes.js';

function malformed(msg: string): MqttError {
  return new MqttError(ReasonCode.MalformedPacket, msg);
}

export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos + 1 > this.end) throw malformed('packet too short');
    return this.buf[this.pos++]!;
  }

  u16(): number {
    if (this.pos + 2 > this.end) throw malformed('packet too short');
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(): number {
    if (this.pos + 4 > this.end) throw malformed('packet too short');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  varint(): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return value;
      mul *= 128;
    }
    throw malformed('variable byte integer longer than 4 bytes');
  }

  binary(): Buffer {
    const len = this.u16();
    if (this.pos + len > this.end) throw malformed('binary data overruns packet');
    // Copied so that a stored value never pins the socket's read buffer.
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return out;
  }

  utf8(): string {
    const len = this.u16();
    const start = this.pos;
    if (start + len > this.end) throw malformed('string overruns packet');
    this.pos += len;
    return decodeUtf8(this.buf, start, start + len);
  }

  /** The rest of the packet, copied. */
  rest(): Buffer {
    const out = Buffer.from(this.buf.subarray(this.pos, this.end));
    this.pos = this.end;
    return out;
  }
}

export function decodeUtf8(buf: Buffer, start: number, end: number): string {
  const s = buf.toString('utf8', start, end);
  // Node replaces every ill-formed sequence with U+FFFD, so only then is a full check needed.
  if (s.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) throw malformed('string is not well-formed UTF-8');
  if (s.includes('\u0000')) throw malformed('string contains U+0000');
  return s;
}
