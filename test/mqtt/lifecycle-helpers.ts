/**
 * Small helpers shared by the connection/session/will tests (01, 05, 06): hand-built CONNECT bytes
 * for the rules mqtt-packet will not break, a byte tap on a RawClient, a reader for the v5 PUBLISH
 * properties mqtt-packet regroups (user properties lose their order there), and mosquitto clients.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { Packet } from 'mqtt-packet';
import type { RawClient } from '../helpers/raw.js';

const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);

/** A length-prefixed UTF-8 string / binary field. */
export function str(s: string | Buffer): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([u16(b.length), b]);
}

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

/** A whole packet: fixed header byte, remaining length, body. */
export function packet(header: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([header]), varint(body.length), body]);
}

export interface RawConnect {
  readonly name?: string;
  readonly level?: number;
  /** Connect flags byte; default 0x02 (clean). */
  readonly flags?: number;
  readonly keepAlive?: number;
  /** Encoded v5 property block (length included); default empty for level 5, none otherwise. */
  readonly props?: Buffer;
  /** Payload fields in order: client id, [will props, will topic, will payload], [username], [password]. */
  readonly payload: readonly Buffer[];
}

/** CONNECT bytes built field by field, so any flag or field can be wrong on purpose. */
export function connectBytes(o: RawConnect): Buffer {
  const level = o.level ?? 4;
  const props = o.props ?? (level === 5 ? Buffer.from([0]) : Buffer.alloc(0));
  return packet(0x10, str(o.name ?? 'MQTT'), Buffer.from([level, o.flags ?? 0x02]), u16(o.keepAlive ?? 60), props, ...o.payload);
}

/** Every byte the broker sends to `raw` from now on. */
export function tapBytes(raw: RawClient): { readonly bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  raw.socket.on('data', (d: Buffer) => chunks.push(d));
  return { bytes: () => Buffer.concat(chunks) };
}

export function cmds(packets: readonly Packet[]): string[] {
  return packets.map((p) => p.cmd);
}

/** Subscribes a RawClient and waits for the SUBACK. */
export async function rawSubscribe(raw: RawClient, topic: string, qos: 0 | 1 | 2, messageId = 1): Promise<void> {
  raw.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
  await raw.next('suback');
}

export interface PublishProps {
  readonly topic: string;
  readonly payload: Buffer;
  readonly user: Array<[string, string]>;
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly payloadFormat?: number;
  readonly messageExpiry?: number;
}

/** Reads the v5 PUBLISH packets in `bytes` (whatever else is there is skipped), keeping user property order. */
export function readPublishes(bytes: Buffer): PublishProps[] {
  const out: PublishProps[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const h = bytes[pos]!;
    let len = 0;
    let mul = 1;
    let i = pos + 1;
    for (;;) {
      const b = bytes[i++]!;
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    const end = i + len;
    if (h >> 4 === 3) {
      let p = i;
      const tlen = bytes.readUInt16BE(p);
      const topic = bytes.subarray(p + 2, p + 2 + tlen).toString('utf8');
      p += 2 + tlen;
      if ((h >> 1) & 0x03) p += 2;
      let plen = 0;
      let pmul = 1;
      for (;;) {
        const b = bytes[p++]!;
        plen += (b & 0x7f) * pmul;
        pmul *= 128;
        if ((b & 0x80) === 0) break;
      }
      const pend = p + plen;
      const rec: { -readonly [K in keyof PublishProps]: PublishProps[K] } = { topic, payload: Buffer.alloc(0), user: [] };
      const s = (): string => {
        const n = bytes.readUInt16BE(p);
        const v = bytes.subarray(p + 2, p + 2 + n);
        p += 2 + n;
        return v.toString('utf8');
      };
      while (p < pend) {
        const id = bytes[p++]!;
        switch (id) {
          case 0x01:
            rec.payloadFormat = bytes[p++]!;
            break;
          case 0x02:
            rec.messageExpiry = bytes.readUInt32BE(p);
            p += 4;
            break;
          case 0x03:
            rec.contentType = s();
            break;
          case 0x08:
            rec.responseTopic = s();
            break;
          case 0x09: {
            const n = bytes.readUInt16BE(p);
            rec.correlationData = Buffer.from(bytes.subarray(p + 2, p + 2 + n));
            p += 2 + n;
            break;
          }
          case 0x0b:
            while (bytes[p++]! & 0x80);
            break;
          case 0x23:
            p += 2;
            break;
          case 0x26: {
            const k = s();
            rec.user.push([k, s()]);
            break;
          }
          default:
            throw new Error(`unexpected PUBLISH property 0x${id.toString(16)}`);
        }
      }
      rec.payload = Buffer.from(bytes.subarray(pend, end));
      out.push(rec);
    }
    pos = end;
  }
  return out;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a mosquitto client to its end (killed after `timeoutMs`). */
export function runClient(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts a long-running mosquitto client; the caller ends it by its pid (child.kill). Through
 * `stdbuf -oL` (which execs it, same pid) so its `-d` lines arrive as they happen, not at exit.
 */
export function startClient(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: readonly string[]): ChildProcess & { output: () => string } {
  const child = spawn('stdbuf', ['-oL', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  return Object.assign(child, { output: () => text });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
