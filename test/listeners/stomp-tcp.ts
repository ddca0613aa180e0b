/**
 * A minimal STOMP 1.2 client over TCP for the listener tests: writes frames as given, collects the
 * broker's frames (split at NUL; these tests send no bodies holding NUL). The STOMP suites have
 * the thorough clients; this one only needs to CONNECT, SUBSCRIBE and SEND.
 */
import net from 'node:net';
import { afterAll } from 'vitest';
import { until } from '../helpers/mqtt.js';

const sockets = new Set<net.Socket>();
afterAll(() => {
  for (const s of sockets) s.destroy();
});

export interface Frame {
  readonly command: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export function parseFrames(text: string): Frame[] {
  return text
    .split('\0')
    .map((f) => f.replace(/^[\r\n]+/, ''))
    .filter((f) => f !== '')
    .map((f) => {
      const end = f.indexOf('\n\n');
      const [command, ...lines] = f.slice(0, end).split('\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (!(l.slice(0, i) in headers)) headers[l.slice(0, i)] = l.slice(i + 1);
      }
      return { command: command ?? '', headers, body: f.slice(end + 2) };
    });
}

export class StompTcp {
  private text = '';
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => (this.text += d.toString('utf8')));
    socket.on('error', () => undefined);
  }

  get frames(): Frame[] {
    return parseFrames(this.text);
  }

  static async connect(port: number): Promise<StompTcp> {
    const socket = net.connect(port, '127.0.0.1');
    sockets.add(socket);
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new StompTcp(socket);
    c.send('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' });
    await c.waitFor('CONNECTED');
    return c;
  }

  send(command: string, headers: Record<string, string>, body = ''): void {
    const lines = Object.entries(headers).map(([k, v]) => `${k}:${v}`);
    this.socket.write(`${command}\n${lines.join('\n')}\n\n${body}\0`);
  }

  /** SEND with a receipt, resolved when the RECEIPT arrives. */
  async publish(destination: string, body: string, headers: Record<string, string> = {}): Promise<void> {
    const receipt = `r-${Math.random().toString(36).slice(2)}`;
    this.send('SEND', { destination, receipt, 'content-type': 'text/plain', ...headers }, body);
    await until(() => this.frames.some((f) => f.command === 'RECEIPT' && f.headers['receipt-id'] === receipt), 5000, 'RECEIPT');
  }

  async waitFor(command: string, pred: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    await until(() => this.frames.some((f) => f.command === command && pred(f)), timeoutMs, `${command} frame`);
    return this.frames.find((f) => f.command === command && pred(f))!;
  }
}
