/**
 * Refusing a connection the listener does not admit (a connection limit, the connect rate). Only
 * the first bytes of its CONNECT are read, to learn the protocol level, so that an MQTT 5 client
 * gets CONNACK 0x9F Connection rate exceeded or 0x97 Quota exceeded and a 3.1 / 3.1.1 client return
 * code 3 Server unavailable, as it would from a broker that read its CONNECT. No framer, no
 * connection object, no session: at most 64 bytes are kept, and the socket goes after `deadlineMs`.
 */
import type { Duplex } from 'node:stream';
import type { RefusalKind } from '../../src/core/transport.js';
import { encodeConnack } from './encode.js';
import { ReasonCode, toV3ReturnCode } from './reason-codes.js';

/** Enough for the fixed header, the protocol name (MQTT or MQIsdp) and the level. */
const HEAD = 64;

/** The protocol level of a CONNECT that starts `buf`; undefined: more bytes needed; null: not a CONNECT. */
export function connectLevel(buf: Buffer): number | undefined | null {
  if (buf.length === 0) return undefined;
  if (buf[0] !== 0x10) return null;
  let i = 1;
  for (;;) {
    if (i > 4) return null;
    if (i >= buf.length) return undefined;
    if ((buf[i++]! & 0x80) === 0) break;
  }
  if (i + 2 > buf.length) return undefined;
  const nameLength = buf.readUInt16BE(i);
  if (nameLength > 6) return null;
  const at = i + 2 + nameLength;
  return at < buf.length ? buf[at]! : undefined;
}

export function refuseMqtt(stream: Duplex, why: RefusalKind, deadlineMs: number): void {
  const timer = setTimeout(() => stream.destroy(), deadlineMs);
  timer.unref();
  stream.on('error', () => undefined);
  stream.once('close', () => clearTimeout(timer));
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk.subarray(0, HEAD)]);
    const level = connectLevel(head);
    if (level === undefined && head.length < HEAD) return;
    stream.off('data', onData);
    stream.pause();
    if (typeof level !== 'number') {
      stream.destroy();
      return;
    }
    const code = why === 'rate' ? ReasonCode.ConnectionRateExceeded : ReasonCode.QuotaExceeded;
    stream.end(level === 5 ? encodeConnack(5, false, code) : encodeConnack(4, false, toV3ReturnCode(code)));
  };
  stream.on('data', onData);
}
