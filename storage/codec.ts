/**
 * The on-disk layout of a KvStore: keys and record encodings. Format version 1.
 *
 *   M <u64 id>                      message: 0x01 <u32 header length> <JSON header> <payload bytes>
 *   R <topic>                       retained: JSON message id
 *   S <clientId>                    session record (JSON)
 *   U <clientId> 0x00 <key>         subscription record (JSON)
 *   P <clientId> 0x00 <u64 seq>     pending record (JSON)
 *   I <clientId> 0x00 <u16 id>      incoming QoS 2 packet id (empty value)
 *   Q <queue>                       queue record (JSON)
 *   E <queue> 0x00 <u64 seq>        queue entry (JSON)
 *   D <u64 seq>                     delayed message (JSON)
 *   0x00 meta/<name>                format version, engine
 *
 * U+0000 cannot appear in an MQTT or STOMP client id or queue name (both protocols reject it), so
 * it separates the client id (or queue name) from the rest and keeps each client's rows contiguous and in order. Payloads are stored as
 * bytes, never re-encoded; everything else is JSON so that an export file can carry it as is.
 */
import type { Message, MessageProps, Protocol, Qos } from '../src/core/message.js';
import type { PendingRecord, SessionRecord, SubscriptionRecord, WriteOp } from './store.js';
export type { DelayedRecord, QueueEntryRecord, QueueRecord } from './store.js';
import type { KvOp } from './kv.js';

export const FORMAT_VERSION = 1;

export const Prefix = {
  message: 0x4d, // M
  retained: 0x52, // R
  session: 0x53, // S
  subscription: 0x55, // U
  pending: 0x50, // P
  incoming: 0x49, // I
  queue: 0x51, // Q
  queueEntry: 0x45, // E
  delayed: 0x44, // D
  meta: 0x00,
} as const;

const EMPTY = Buffer.alloc(0);

function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export function messageKey(id: number): Buffer {
  return Buffer.concat([Buffer.of(Prefix.message), u64(id)]);
}

function textKey(prefix: number, text: string): Buffer {
  return Buffer.concat([Buffer.of(prefix), Buffer.from(text, 'utf8')]);
}

function clientKey(prefix: number, clientId: string, rest: Buffer): Buffer {
  return Buffer.concat([Buffer.of(prefix), Buffer.from(clientId, 'utf8'), Buffer.of(0), rest]);
}

export function metaKey(name: string): Buffer {
  return textKey(Prefix.meta, `meta/${name}`);
}

/** Splits a client row key into client id and the rest. */
export function splitClientKey(key: Buffer): { clientId: string; rest: Buffer } {
  const nul = key.indexOf(0, 1);
  return { clientId: key.toString('utf8', 1, nul), rest: key.subarray(nul + 1) };
}

interface MessageHeader {
  t: string;
  q: Qos;
  r: boolean;
  c: number;
  e?: number;
  p?: JsonProps;
  o: [string, Protocol];
}

/** MessageProps with binary correlation data as base64, for JSON. */
export interface JsonProps {
  payloadUtf8?: boolean;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string;
  user?: Array<[string, string]>;
}

export function propsToJson(p: MessageProps): JsonProps | undefined {
  const out: JsonProps = {};
  let any = false;
  if (p.payloadUtf8) (out.payloadUtf8 = true), (any = true);
  if (p.contentType !== undefined) (out.contentType = p.contentType), (any = true);
  if (p.responseTopic !== undefined) (out.responseTopic = p.responseTopic), (any = true);
  if (p.correlationData !== undefined) (out.correlationData = p.correlationData.toString('base64')), (any = true);
  if (p.user !== undefined) (out.user = p.user.map(([k, v]) => [k, v])), (any = true);
  return any ? out : undefined;
}

export function propsFromJson(j: JsonProps | undefined): MessageProps {
  if (!j) return {};
  const out: { -readonly [K in keyof MessageProps]: MessageProps[K] } = {};
  if (j.payloadUtf8) out.payloadUtf8 = true;
  if (j.contentType !== undefined) out.contentType = j.contentType;
  if (j.responseTopic !== undefined) out.responseTopic = j.responseTopic;
  if (j.correlationData !== undefined) out.correlationData = Buffer.from(j.correlationData, 'base64');
  if (j.user !== undefined) out.user = j.user.map(([k, v]) => [k, v] as const);
  return out;
}

export function encodeMessage(m: Message): Buffer {
  const h: MessageHeader = { t: m.topic, q: m.qos, r: m.retain, c: m.createdAt, o: [m.origin.clientId, m.origin.protocol] };
  if (m.expiresAt !== undefined) h.e = m.expiresAt;
  const p = propsToJson(m.props);
  if (p) h.p = p;
  const header = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.allocUnsafe(5 + header.length + m.payload.length);
  out[0] = 1;
  out.writeUInt32BE(header.length, 1);
  header.copy(out, 5);
  m.payload.copy(out, 5 + header.length);
  return out;
}

export function decodeMessage(id: number, b: Buffer): Message {
  if (b[0] !== 1) throw new Error(`message ${id}: unknown record version ${b[0]}`);
  const len = b.readUInt32BE(1);
  const h = JSON.parse(b.toString('utf8', 5, 5 + len)) as MessageHeader;
  return {
    id,
    topic: h.t,
    payload: Buffer.from(b.subarray(5 + len)),
    qos: h.q,
    retain: h.r,
    createdAt: h.c,
    expiresAt: h.e,
    props: propsFromJson(h.p),
    origin: { clientId: h.o[0], protocol: h.o[1] },
  };
}

export function messageIdOf(key: Buffer): number {
  return Number(key.readBigUInt64BE(1));
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}

/** Session records carry a will message: its payload and correlation data as base64. */
export function encodeSession(s: SessionRecord): Buffer {
  if (!s.will) return json(s);
  const m = s.will.message;
  return json({
    ...s,
    will: { ...s.will, message: { ...m, payload: m.payload.toString('base64'), props: propsToJson(m.props) ?? {} } },
  });
}

export function decodeSession(b: Buffer): SessionRecord {
  const raw = JSON.parse(b.toString('utf8')) as SessionRecord & {
    will?: { message: { payload: string; props: JsonProps } & Record<string, unknown>; delayMs: number; dueAt?: number };
  };
  if (!raw.will) return raw;
  const m = raw.will.message;
  return {
    ...raw,
    will: {
      ...raw.will,
      message: { ...(m as unknown as Omit<Message, 'id'>), payload: Buffer.from(m.payload, 'base64'), props: propsFromJson(m.props) },
    },
  } as SessionRecord;
}

/** Turns core write ops into engine ops. */
export function toKvOps(ops: readonly WriteOp[]): KvOp[] {
  const out: KvOp[] = new Array<KvOp>(ops.length);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.kind) {
      case 'message.put':
        out[i] = { type: 'put', key: messageKey(op.message.id), value: encodeMessage(op.message) };
        break;
      case 'message.del':
        out[i] = { type: 'del', key: messageKey(op.id) };
        break;
      case 'session.put':
        out[i] = { type: 'put', key: textKey(Prefix.session, op.session.clientId), value: encodeSession(op.session) };
        break;
      case 'session.del':
        out[i] = { type: 'del', key: textKey(Prefix.session, op.clientId) };
        break;
      case 'sub.put':
        out[i] = { type: 'put', key: clientKey(Prefix.subscription, op.clientId, Buffer.from(op.sub.key)), value: json(op.sub) };
        break;
      case 'sub.del':
        out[i] = { type: 'del', key: clientKey(Prefix.subscription, op.clientId, Buffer.from(op.key)) };
        break;
      case 'pending.put':
        out[i] = { type: 'put', key: clientKey(Prefix.pending, op.clientId, u64(op.entry.seq)), value: json(op.entry) };
        break;
      case 'pending.del':
        out[i] = { type: 'del', key: clientKey(Prefix.pending, op.clientId, u64(op.seq)) };
        break;
      case 'incoming.put':
        out[i] = { type: 'put', key: clientKey(Prefix.incoming, op.clientId, Buffer.of(op.packetId >> 8, op.packetId & 0xff)), value: EMPTY };
        break;
      case 'incoming.del':
        out[i] = { type: 'del', key: clientKey(Prefix.incoming, op.clientId, Buffer.of(op.packetId >> 8, op.packetId & 0xff)) };
        break;
      case 'retained.put':
        out[i] = { type: 'put', key: textKey(Prefix.retained, op.topic), value: json(op.messageId) };
        break;
      case 'retained.del':
        out[i] = { type: 'del', key: textKey(Prefix.retained, op.topic) };
        break;
      case 'queue.put':
        out[i] = { type: 'put', key: textKey(Prefix.queue, op.queue.name), value: json(op.queue) };
        break;
      case 'queue.del':
        out[i] = { type: 'del', key: textKey(Prefix.queue, op.name) };
        break;
      case 'qentry.put':
        out[i] = { type: 'put', key: clientKey(Prefix.queueEntry, op.queue, u64(op.entry.seq)), value: json(op.entry) };
        break;
      case 'qentry.del':
        out[i] = { type: 'del', key: clientKey(Prefix.queueEntry, op.queue, u64(op.seq)) };
        break;
      case 'delayed.put':
        out[i] = { type: 'put', key: Buffer.concat([Buffer.of(Prefix.delayed), u64(op.entry.seq)]), value: json(op.entry) };
        break;
      case 'delayed.del':
        out[i] = { type: 'del', key: Buffer.concat([Buffer.of(Prefix.delayed), u64(op.seq)]) };
        break;
    }
  }
  return out;
}

export function parseJson<T>(b: Buffer): T {
  return JSON.parse(b.toString('utf8')) as T;
}

export type { PendingRecord, SubscriptionRecord };
