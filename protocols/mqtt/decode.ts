/**
 * Framing and decoding of the packets a client sends (MQTT 3.1, 3.1.1 and 5.0).
 *
 * Framer: splits the byte stream into packets, and refuses a packet whose declared size passes the
 * configured maximum before buffering its body (mqtt-packet would buffer a declared 256 MB).
 * decodePacket: every fixed-header flag, property, string and length rule of the specifications;
 * any breach throws an MqttError with the reason code to disconnect with. We decode ourselves rather
 * than through mqtt-packet's parser because it accepts ill-formed UTF-8 (replacing it), regroups user
 * properties by name, and checks no property rules (see shared/dependencies.md); mqtt-packet still
 * encodes the packets we send that are not on the publish path (encode.ts).
 */
import type { Qos } from '../../src/core/message.js';
import {
  PacketType,
  type AckPacket,
  type ClientPacket,
  type ConnectPacket,
  type ProtocolVersion,
  type PublishPacket,
  type SubscriptionRequest,
  type WillPacket,
} from './packets.js';
import { readProperties, type Properties } from './properties.js';
import { Reader } from './reader.js';
import { MqttError, ReasonCode } from './reason-codes.js';

const EMPTY_PROPS: Properties = Object.freeze({}) as Properties;
const EMPTY = Buffer.alloc(0);

function malformed(msg: string): MqttError {
  return new MqttError(ReasonCode.MalformedPacket, msg);
}

function protocolError(msg: string): MqttError {
  return new MqttError(ReasonCode.ProtocolError, msg);
}

/** Splits a byte stream into packets; `next()` fills type/flags/body bounds of the next whole one. */
export class Framer {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /**
   * Chunks of a packet still arriving, not yet joined to `buf`: a large packet sent in many small
   * pieces is copied once, when it is complete, not once per piece.
   */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the packet at `pos` needs in all, once its fixed header has been read; 0 before. */
  private need = 0;
  type = 0;
  flags = 0;
  bodyStart = 0;
  bodyEnd = 0;

  constructor(public maxPacketSize: number) {}

  get body(): Buffer {
    return this.buf;
  }

  /** Bytes received but not yet returned as packets. */
  get buffered(): number {
    return this.buf.length - this.pos + this.pendingBytes;
  }

  push(chunk: Buffer): void {
    if (this.need > 0 && this.buf.length - this.pos + this.pendingBytes + chunk.length < this.need) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      return;
    }
    const parts = this.pos >= this.buf.length ? [] : [this.buf.subarray(this.pos)];
    parts.push(...this.pending, chunk);
    this.buf = parts.length === 1 ? chunk : Buffer.concat(parts);
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** True when a whole packet is ready (see the fields); false when more bytes are needed. */
  next(): boolean {
    const buf = this.buf;
    const start = this.pos;
    const avail = buf.length - start;
    this.need = 0;
    if (avail < 2) return false;
    let len = 0;
    let mul = 1;
    let i = 1;
    for (;;) {
      if (i > 4) throw malformed('remaining length longer than 4 bytes');
      if (i >= avail) return false;
      const b = buf[start + i]!;
      len += (b & 0x7f) * mul;
      i++;
      if ((b & 0x80) === 0) break;
      mul *= 128;
    }
    const total = i + len;
    if (total > this.maxPacketSize) {
      throw new MqttError(ReasonCode.PacketTooLarge, `packet of ${total} bytes exceeds the maximum of ${this.maxPacketSize}`);
    }
    if (avail < total) {
      this.need = total;
      return false;
    }
    const h = buf[start]!;
    this.type = h >> 4;
    this.flags = h & 0x0f;
    this.bodyStart = start + i;
    this.bodyEnd = start + total;
    this.pos = start + total;
    return true;
  }
}

/** CONNECT needs its own entry: the version is not known before it. `onVersion` learns it early for error replies. */
export function decodeConnect(buf: Buffer, start: number, end: number, flags: number, onVersion: (v: ProtocolVersion) => void): ConnectPacket {
  if (flags !== 0) throw malformed('CONNECT fixed header flags must be 0');
  const r = new Reader(buf, start, end);
  const protocolName = r.utf8();
  const level = r.u8();
  let version: ProtocolVersion;
  if (protocolName === 'MQTT' && (level === 4 || level === 5)) version = level;
  else if (protocolName === 'MQIsdp' && level === 3) version = 3;
  else if (protocolName === 'MQTT' || protocolName === 'MQIsdp') {
    // [MQTT-3.1.2-2]: answer with CONNACK 0x01 / 0x84, then close.
    throw new MqttError(ReasonCode.UnsupportedProtocolVersion, `unsupported protocol level ${level}`);
  } else {
    throw malformed(`unknown protocol name ${JSON.stringify(protocolName)}`); // [MQTT-3.1.2-1]
  }
  onVersion(version);
  const cf = r.u8();
  if (cf & 0x01) throw malformed('CONNECT reserved flag must be 0'); // [MQTT-3.1.2-3]
  const cleanStart = (cf & 0x02) !== 0;
  const willFlag = (cf & 0x04) !== 0;
  const willQos = (cf >> 3) & 0x03;
  const willRetain = (cf & 0x20) !== 0;
  const hasPassword = (cf & 0x40) !== 0;
  const hasUsername = (cf & 0x80) !== 0;
  if (willQos === 3) throw malformed('will QoS 3'); // [MQTT-3.1.2-14]
  if (!willFlag && (willQos !== 0 || willRetain)) throw malformed('will QoS/retain set without will flag'); // [MQTT-3.1.2-13] [MQTT-3.1.2-15]
  if (version !== 5 && hasPassword && !hasUsername) throw malformed('password flag without username flag'); // [MQTT-3.1.2-22]
  const keepAlive = r.u16();
  const props = version === 5 ? readProperties(r, 'connect') : EMPTY_PROPS;
  const clientId = r.utf8();
  let will: WillPacket | undefined;
  if (willFlag) {
    const willProps = version === 5 ? readProperties(r, 'will') : EMPTY_PROPS;
    const topic = r.utf8();
    const payload = r.binary();
    will = { topic, payload, qos: willQos as Qos, retain: willRetain, props: willProps };
  }
  const username = hasUsername ? r.utf8() : undefined;
  const password = hasPassword ? r.binary() : undefined;
  if (r.remaining !== 0) throw malformed('bytes left after CONNECT payload');
  const packet: ConnectPacket = {
    type: PacketType.CONNECT,
    protocolName,
    version,
    cleanStart,
    keepAlive,
    clientId,
    props,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(will ? { will } : {}),
  };
  return packet;
}

export function decodePublish(buf: Buffer, start: number, end: number, flags: number, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw malformed('PUBLISH QoS 3'); // [MQTT-3.3.1-4]
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw protocolError('DUP set on a QoS 0 PUBLISH'); // [MQTT-3.3.1-2]
  const r = new Reader(buf, start, end);
  const topic = r.utf8();
  let packetId = 0;
  if (qos > 0) {
    packetId = r.u16();
    if (packetId === 0) throw protocolError('packet identifier 0'); // [MQTT-2.2.1-3]
  }
  const props = version === 5 ? readProperties(r, 'publish') : EMPTY_PROPS;
  const payload = r.pos === end ? EMPTY : r.rest();
  return { type: PacketType.PUBLISH, qos: qos as Qos, dup, retain: (flags & 0x01) !== 0, topic, packetId, props, payload };
}

const PUBACK_CODES = new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]);
const PUBREL_CODES = new Set([0x00, 0x92]);

function decodeAck(type: AckPacket['type'], r: Reader, version: ProtocolVersion): AckPacket {
  const packetId = r.u16();
  if (packetId === 0) throw protocolError('packet identifier 0');
  let reasonCode = 0;
  let props = EMPTY_PROPS;
  if (version === 5) {
    if (r.remaining > 0) {
      reasonCode = r.u8();
      const ok = type === PacketType.PUBACK || type === PacketType.PUBREC ? PUBACK_CODES : PUBREL_CODES;
      if (!ok.has(reasonCode)) throw protocolError(`invalid reason code 0x${reasonCode.toString(16)}`);
    }
    if (r.remaining > 0) props = readProperties(r, 'ack');
  }
  if (r.remaining !== 0) throw malformed('bytes left after acknowledgement');
  return { type, packetId, reasonCode, props };
}

/** Decodes any packet but CONNECT for a connection speaking `version`. */
export function decodePacket(type: number, flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): ClientPacket {
  if (type === PacketType.PUBLISH) return decodePublish(buf, start, end, flags, version);
  // [MQTT-2.2.2-1]: PUBREL, SUBSCRIBE, UNSUBSCRIBE carry 0b0010, every other packet 0.
  const expectFlags = type === PacketType.PUBREL || type === PacketType.SUBSCRIBE || type === PacketType.UNSUBSCRIBE ? 2 : 0;
  if (flags !== expectFlags) throw malformed(`invalid fixed header flags for packet type ${type}`);
  const r = new Reader(buf, start, end);
  switch (type) {
    case PacketType.CONNECT:
      throw protocolError('second CONNECT'); // [MQTT-3.1.0-2]
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return decodeAck(type, r, version);
    case PacketType.SUBSCRIBE: {
      const packetId = r.u16();
      if (packetId === 0) throw protocolError('packet identifier 0');
      const props = version === 5 ? readProperties(r, 'subscribe') : EMPTY_PROPS;
      const subscriptions: SubscriptionRequest[] = [];
      while (r.remaining > 0) {
        const filter = r.utf8();
        const o = r.u8();
        // [MQTT-3.8.3-5] reserved bits; in 3.1.1 bits 2-7 [MQTT-3-8.3-4]
        if (version === 5 ? o & 0xc0 : o & 0xfc) throw malformed('SUBSCRIBE reserved option bits set');
        const qos = o & 0x03;
        if (qos === 3) throw malformed('SUBSCRIBE QoS 3');
        const rh = (o >> 4) & 0x03;
        if (rh === 3) throw protocolError('Retain Handling 3');
        subscriptions.push({
          filter,
          qos: qos as Qos,
          noLocal: version === 5 && (o & 0x04) !== 0,
          retainAsPublished: version === 5 && (o & 0x08) !== 0,
          retainHandling: (version === 5 ? rh : 0) as 0 | 1 | 2,
        });
      }
      if (subscriptions.length === 0) throw protocolError('SUBSCRIBE without topic filters'); // [MQTT-3.8.3-3]
      return { type: PacketType.SUBSCRIBE, packetId, props, subscriptions };
    }
    case PacketType.UNSUBSCRIBE: {
      const packetId = r.u16();
      if (packetId === 0) throw protocolError('packet identifier 0');
      const props = version === 5 ? readProperties(r, 'unsubscribe') : EMPTY_PROPS;
      const filters: string[] = [];
      while (r.remaining > 0) filters.push(r.utf8());
      if (filters.length === 0) throw protocolError('UNSUBSCRIBE without topic filters'); // [MQTT-3.10.3-2]
      return { type: PacketType.UNSUBSCRIBE, packetId, props, filters };
    }
    case PacketType.PINGREQ:
      if (r.remaining !== 0) throw malformed('PINGREQ with a body');
      return { type: PacketType.PINGREQ };
    case PacketType.DISCONNECT: {
      let reasonCode = 0;
      let props = EMPTY_PROPS;
      if (version === 5) {
        if (r.remaining > 0) reasonCode = r.u8();
        if (r.remaining > 0) props = readProperties(r, 'disconnect');
      }
      if (r.remaining !== 0) throw malformed('bytes left after DISCONNECT');
      return { type: PacketType.DISCONNECT, reasonCode, props };
    }
    case PacketType.AUTH: {
      if (version !== 5) throw malformed('AUTH is an MQTT 5 packet');
      let reasonCode = 0;
      let props = EMPTY_PROPS;
      if (r.remaining > 0) reasonCode = r.u8();
      if (r.remaining > 0) props = readProperties(r, 'auth');
      if (r.remaining !== 0) throw malformed('bytes left after AUTH');
      return { type: PacketType.AUTH, reasonCode, props };
    }
    case PacketType.CONNACK:
    case PacketType.SUBACK:
    case PacketType.UNSUBACK:
    case PacketType.PINGRESP:
      throw protocolError(`packet type ${type} is only sent by a server`);
    default:
      throw malformed(`reserved packet type ${type}`);
  }
}
