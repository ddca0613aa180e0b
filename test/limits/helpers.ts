/**
 * Helpers for the limits tests: the Mosquitto command line clients (helpers/run.ts), log lines
 * by message, and a raw socket that just sits there.
 */
import net from 'node:net';
import { afterAll } from 'vitest';
import type { LogFields } from '../../src/core/log.js';
import type { TestBroker } from '../helpers/broker.js';
import type { connect } from '../helpers/mqtt.js';

export { run, type Run } from '../helpers/run.js';

const sockets = new Set<net.Socket>();
afterAll(() => {
  for (const s of sockets) s.destroy();
});

/** Log lines with message `msg` (and, if given, fields matching `where`). */
export function logged(b: TestBroker, msg: string, where: Partial<Record<string, unknown>> = {}): LogFields[] {
  return b.logs.filter((l) => l.msg === msg && Object.entries(where).every(([k, v]) => l.fields[k] === v)).map((l) => l.fields);
}

/** A plain TCP connection that sends nothing unless told; `closed` resolves when the peer closes it. */
export async function idleSocket(port: number): Promise<{ socket: net.Socket; data: Buffer[]; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.add(socket);
  const data: Buffer[] = [];
  socket.on('data', (d: Buffer) => data.push(d));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, data, closed };
}

/** Resolves with true when `p` settles within `ms`, false otherwise. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const r = await Promise.race([p.then(() => true as const), timeout]);
  clearTimeout(timer);
  return r;
}

export const nonce = (): string => Math.random().toString(36).slice(2, 10);

/** A topic (or filter) of `n` levels. */
export function levels(n: number, last = 'x'): string {
  return [...Array.from({ length: n - 1 }, (_, i) => `l${i}`), last].join('/');
}

/** The SUBACK reason codes MQTT.js got (it rejects the promise when one is a failure). */
export async function subackCodes(c: Awaited<ReturnType<typeof connect>>, filters: string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: unknown[] } }).packet?.granted;
    if (!granted) throw err;
    return granted.map((g) => (typeof g === 'number' ? g : (g as { qos: number }).qos));
  }
}
