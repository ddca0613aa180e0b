/**
 * Encoding of what the broker sends. PUBLISH and the four acknowledgements are on the hot path and
 * written here by hand: a PUBLISH is assembled from pieces cached per message (topic bytes, the v5
 * properties that do not vary per receiver), and a QoS 0 PUBLISH that is identical for every
 * receiver is encoded once per fan-out and the same Buffer handed to every socket. The rarer packets
 * (CONNACK, SUBACK, UNSUBACK, DISCONNECT, AUTH) go through mqtt-packet's generator.
 */
import { generate, type IConnackPacket, type IDisconnectPacket, type ISubackPacket, type IUnsubackPacket } from 'mqtt-packet';
import type { Message, Qos, UserProperty } from '../../src/core/message.js';
import { PacketType, type ProtocolVersion } from './packets.js';
import { Prop } from './properties.js';

export function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}

function writeString(buf: Buffer, pos: number, bytes: Buffer): number {
  buf.writeUInt16BE(bytes.length, pos);
  bytes.copy(buf, pos + 2);
  return pos + 2 + bytes.length;
}

/** Per-message pieces, computed once per fan-out (the router offers one message to many sessions in a row). */
class MessageCache {
  msg: Message | undefined;
  topic: Buffer = Buffer.alloc(0);
  /** v5 properties that are the same for every receiver. */
  props: Buffer = Buffer.alloc(0);
  /** Whole QoS 0 packets shared by all receivers: [v3/v4 | v5][retain 0 | 1]. */
  readonly shared: (Buffer | undefined)[] = [undefined, undefined, undefined, undefined];

  load(msg: Message): void {
    if (this.msg === msg) return;
    this.msg = msg;
    this.topic = Buffer.from(msg.topic, 'utf8');
    this.props = staticProps(msg);
    this.shared.fill(undefined);
  }
}

function staticProps(msg: Message): Buffer {
  const p = msg.props;
  const parts: Buffer[] = [];
  if (p.payloadUtf8) parts.push(Buffer.from([Prop.PayloadFormatIndicator, 1]));
  if (p.contentType !== undefined) parts.push(stringProp(Prop.ContentType, p.contentType));
  if (p.responseTopic !== undefined) parts.push(stringProp(Prop.ResponseTopic, p.responseTopic));
  if (p.correlationData !== undefined) parts.push(binaryProp(Prop.CorrelationData, p.correlationData));
  if (p.user) for (const [k, v] of p.user) parts.push(pairProp(k, v));
  return parts.length === 0 ? Buffer.alloc(0) : Buffer.concat(parts);
}

function stringProp(id: number, s: string): Buffer {
  return binaryProp(id, Buffer.from(s, 'utf8'));
}

function binaryProp(id: number, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(3 + b.length);
  out[0] = id;
  writeString(out, 1, b);
  return out;
}

function pairProp(k: string, v: string): Buffer {
  const kb = Buffer.from(k, 'utf8');
  const vb = Buffer.from(v, 'utf8');
  const out = Buffer.allocUnsafe(5 + kb.length + vb.length);
  out[0] = Prop.UserProperty;
  writeString(out, writeString(out, 1, kb), vb);
  return out;
}

const cache = new MessageCache();

export interface PublishOptions {
  readonly version: ProtocolVersion;
  readonly qos: Qos;
  readonly packetId: number;
  readonly dup: boolean;
  readonly retain: boolean;
  /** v5 Topic Alias to send, or 0. */
  readonly topicAlias: number;
  /** Send an empty topic name (the alias is already known to the client). */
  readonly omitTopic: boolean;
  /** v5 Subscription Identifiers of the matching subscriptions. */
  readonly subscriptionIds: readonly number[] | undefined;
  /** v5 Message Expiry Interval to send (seconds left), or undefined. */
  readonly expiry: number | undefined;
  /** Per-delivery User Properties after the message's own (a dead letter's origin and reason). */
  readonly annotations: readonly UserProperty[] | undefined;
}

/** Encodes a PUBLISH. The result may be shared between receivers: never modify it. */
export function encodePublish(msg: Message, o: PublishOptions): Buffer {
  cache.load(msg);
  const v5 = o.version === 5;
  const dynamicFree = o.qos === 0 && !o.dup && o.topicAlias === 0 && !o.subscriptionIds && o.expiry === undefined && !o.annotations;
  const slot = (v5 ? 2 : 0) + (o.retain ? 1 : 0);
  if (dynamicFree) {
    const hit = cache.shared[slot];
    if (hit) return hit;
  }
  const topic = o.omitTopic ? 0 : cache.topic.length;
  let propsLen = 0;
  const annotations = v5 && o.annotations ? Buffer.concat(o.annotations.map(([k, v]) => pairProp(k, v))) : undefined;
  if (v5) {
    propsLen = cache.props.length + (annotations?.length ?? 0);
    if (o.expiry !== undefined) propsLen += 5;
    if (o.topicAlias) propsLen += 3;
    if (o.subscriptionIds) for (const id of o.subscriptionIds) propsLen += 1 + varintSize(id);
  }
  const payload = msg.payload;
  const remaining = 2 + topic + (o.qos ? 2 : 0) + (v5 ? varintSize(propsLen) + propsLen : 0) + payload.length;
  const buf = Buffer.allocUnsafe(1 + varintSize(remaining) + remaining);
  buf[0] = (PacketType.PUBLISH << 4) | (o.dup ? 0x08 : 0) | (o.qos << 1) | (o.retain ? 1 : 0);
  let pos = writeVarint(buf, 1, remaining);
  buf.writeUInt16BE(topic, pos);
  pos += 2;
  if (topic) pos += cache.topic.copy(buf, pos);
  if (o.qos) {
    buf.writeUInt16BE(o.packetId, pos);
    pos += 2;
  }
  if (v5) {
    pos = writeVarint(buf, pos, propsLen);
    pos += cache.props.copy(buf, pos);
    if (annotations) pos += annotations.copy(buf, pos);
    if (o.expiry !== undefined) {
      buf[pos++] = Prop.MessageExpiryInterval;
      buf.writeUInt32BE(o.expiry, pos);
      pos += 4;
    }
    if (o.topicAlias) {
      buf[pos++] = Prop.TopicAlias;
      buf.writeUInt16BE(o.topicAlias, pos);
      pos += 2;
    }
    if (o.subscriptionIds) {
      for (const id of o.subscriptionIds) {
        buf[pos++] = Prop.SubscriptionIdentifier;
        pos = writeVarint(buf, pos, id);
      }
    }
  }
  payload.copy(buf, pos);
  if (dynamicFree) cache.shared[slot] = buf;
  return buf;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP. v5 omits reason code 0 and empty properties (section 3.4.2.1). */
export function encodeAck(type: number, packetId: number, version: ProtocolVersion, reasonCode = 0, reasonString?: string): Buffer {
  const flags = type === PacketType.PUBREL ? 0x02 : 0;
  if (version !== 5 || (reasonCode === 0 && reasonString === undefined)) {
    const b = Buffer.allocUnsafe(4);
    b[0] = (type << 4) | flags;
    b[1] = 2;
    b.writeUInt16BE(packetId, 2);
    return b;
  }
  const rs = reasonString === undefined ? undefined : stringProp(Prop.ReasonString, reasonString);
  const propsLen = rs ? rs.length : 0;
  const remaining = 3 + (rs ? varintSize(propsLen) + propsLen : 0);
  const b = Buffer.allocUnsafe(1 + varintSize(remaining) + remaining);
  b[0] = (type << 4) | flags;
  let pos = writeVarint(b, 1, remaining);
  b.writeUInt16BE(packetId, pos);
  pos += 2;
  b[pos++] = reasonCode;
  if (rs) {
    pos = writeVarint(b, pos, propsLen);
    rs.copy(b, pos);
  }
  return b;
}

export const PINGRESP = Buffer.from([PacketType.PINGRESP << 4, 0]);

export type ConnackProperties = NonNullable<IConnackPacket['properties']>;

export function encodeConnack(version: ProtocolVersion, sessionPresent: boolean, code: number, properties?: ConnackProperties): Buffer {
  if (version !== 5) return generate({ cmd: 'connack', sessionPresent, returnCode: code }, { protocolVersion: version });
  const packet: IConnackPacket = { cmd: 'connack', sessionPresent, reasonCode: code };
  if (properties && Object.keys(properties).length > 0) packet.properties = properties;
  return generate(packet, { protocolVersion: 5 });
}

export function encodeSuback(version: ProtocolVersion, packetId: number, granted: number[], reasonString?: string): Buffer {
  const packet: ISubackPacket = { cmd: 'suback', messageId: packetId, granted };
  if (version === 5 && reasonString !== undefined) packet.properties = { reasonString };
  return generate(packet, { protocolVersion: version });
}

export function encodeUnsuback(version: ProtocolVersion, packetId: number, codes: number[]): Buffer {
  const packet: IUnsubackPacket = { cmd: 'unsuback', messageId: packetId, granted: version === 5 ? codes : [] };
  return generate(packet, { protocolVersion: version });
}

export function encodeDisconnect(code: number, reasonString?: string, sessionExpiry?: number): Buffer {
  const packet: IDisconnectPacket = { cmd: 'disconnect', reasonCode: code };
  const properties: NonNullable<IDisconnectPacket['properties']> = {};
  if (reasonString !== undefined) properties.reasonString = reasonString;
  if (sessionExpiry !== undefined) properties.sessionExpiryInterval = sessionExpiry;
  if (Object.keys(properties).length > 0) packet.properties = properties;
  return generate(packet, { protocolVersion: 5 });
}

export function encodeAuth(code: number, reasonString?: string): Buffer {
  return generate(
    { cmd: 'auth', reasonCode: code, ...(reasonString !== undefined ? { properties: { reasonString } } : {}) },
    { protocolVersion: 5 },
  );
}
