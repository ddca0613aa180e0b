/**
 * StompWire: a small STOMP 1.2 client over a plain TCP socket, for the queue and cross-protocol
 * tests that need to see every header and control every ACK/NACK (real clients hide both). It
 * frames the byte stream itself (content-length bodies with NUL bytes, heart-beat EOLs, 1.2 header
 * unescaping), so it checks the broker's serializer rather than sharing code with it.
 */
import net from 'node:net';
import { afterAll } from 'vitest';

export interface WireFrame {
  readonly command: string;
  /** First value of each header (STOMP 1.2 "Repeated Header Entries"). */
  readonly headers: Readonly<Record<string, string>>;
  /** Every header line in order. */
  readonly headerList: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  /** Date.now() when it was parsed. */
  readonly receivedAt: number;
}

export type AckMode = 'auto' | 'client' | 'client-individual';

const open = new Set<StompWire>();
afterAll(() => {
  for (const c of open) c.destroy();
});

function unescape(s: string): string {
  return s.replace(/\\([nrc\\])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'c' ? ':' : '\\'));
}

function escape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/:/g, '\\c');
}

export class StompWire {
  readonly frames: WireFrame[] = [];
  closed = false;
  /** The `session` header of CONNECTED: the broker's session (client) id of this connection. */
  sessionId = '';
  readonly closedPromise: Promise<void>;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  /** Frames handed out by next(). */
  private readonly taken = new WeakSet<WireFrame>();
  private nextReceipt = 1;

  private constructor(readonly socket: net.Socket) {
    open.add(this);
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        open.delete(this);
        this.wake();
        resolve();
      }),
    );
  }

  /** Connects and sends CONNECT (1.2, no heart-beats); resolves with the CONNECTED frame. */
  static async connect(port: number, headers: Record<string, string> = {}): Promise<StompWire> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    const c = new StompWire(socket);
    c.write('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0', ...headers });
    const f = await c.next((x) => x.command === 'CONNECTED' || x.command === 'ERROR');
    if (f.command !== 'CONNECTED') throw new Error(`CONNECT refused: ${f.headers['message']} ${f.body.toString()}`);
    c.sessionId = f.headers['session'] ?? '';
    return c;
  }

  /** Writes one frame; string bodies are UTF-8; content-length is always set. */
  write(command: string, headers: Record<string, string> | ReadonlyArray<readonly [string, string]>, body: Buffer | string = Buffer.alloc(0)): void {
    const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const list = Array.isArray(headers) ? (headers as ReadonlyArray<readonly [string, string]>) : Object.entries(headers);
    const esc = command !== 'CONNECT' && command !== 'STOMP';
    let head = command + '\n';
    for (const [k, v] of list) head += esc ? `${escape(k)}:${escape(v)}\n` : `${k}:${v}\n`;
    if (command === 'SEND' && !list.some(([k]) => k === 'content-length')) head += `content-length:${b.length}\n`;
    this.socket.write(Buffer.concat([Buffer.from(head + '\n', 'utf8'), b, Buffer.from([0])]));
  }

  /** Writes `command` with a receipt header and waits for its RECEIPT (an ERROR rejects). */
  async request(command: string, headers: Record<string, string>, body?: Buffer | string, timeoutMs = 5000): Promise<void> {
    const id = `r-${this.nextReceipt++}`;
    this.write(command, { ...headers, receipt: id }, body);
    const f = await this.next((x) => (x.command === 'RECEIPT' && x.headers['receipt-id'] === id) || x.command === 'ERROR', timeoutMs);
    if (f.command === 'ERROR') throw new Error(`${command} -> ERROR ${f.headers['message']}: ${f.body.toString()}`);
  }

  /** SEND; with `receipt` true, waits for the RECEIPT (a persistent message is then on disk). */
  async send(destination: string, body: Buffer | string, headers: Record<string, string> = {}, receipt = true): Promise<void> {
    if (receipt) await this.request('SEND', { destination, ...headers }, body);
    else this.write('SEND', { destination, ...headers }, body);
  }

  /** SUBSCRIBE with a receipt; returns the subscription id. */
  async subscribe(destination: string, id: string, ack: AckMode = 'auto', headers: Record<string, string> = {}): Promise<string> {
    await this.request('SUBSCRIBE', { destination, id, ack, ...headers });
    return id;
  }

  async unsubscribe(id: string): Promise<void> {
    await this.request('UNSUBSCRIBE', { id });
  }

  ack(msg: WireFrame, headers: Record<string, string> = {}): void {
    this.write('ACK', { id: msg.headers['ack']!, ...headers });
  }

  nack(msg: WireFrame, headers: Record<string, string> = {}): void {
    this.write('NACK', { id: msg.headers['ack']!, ...headers });
  }

  /** MESSAGE frames received so far (of subscription `sub`, when given). */
  messages(sub?: string): WireFrame[] {
    return this.frames.filter((f) => f.command === 'MESSAGE' && (sub === undefined || f.headers['subscription'] === sub));
  }

  bodies(sub?: string): string[] {
    return this.messages(sub).map((f) => f.body.toString('utf8'));
  }

  /** Waits for a frame matching `pred` that arrives (or arrived) and was not taken by an earlier next(). */
  async next(pred: (f: WireFrame) => boolean, timeoutMs = 5000): Promise<WireFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => !this.taken.has(x) && pred(x));
      if (f) {
        this.taken.add(f);
        return f;
      }
      if (this.closed) throw new Error('connection closed while waiting for a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for a frame; got ${this.frames.map((x) => x.command).join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until `n` MESSAGE frames (of `sub`) have arrived. */
  async waitMessages(n: number, sub?: string, timeoutMs = 5000): Promise<WireFrame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages(sub).length < n) {
      if (Date.now() > deadline) throw new Error(`timeout: ${this.messages(sub).length} of ${n} messages`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.messages(sub);
  }

  /** DISCONNECT with a receipt, then waits for the close. */
  async disconnect(): Promise<void> {
    if (this.closed) return;
    this.write('DISCONNECT', { receipt: 'bye' });
    await this.closedPromise;
  }

  /** Drops the TCP connection without DISCONNECT (as a crashed client). */
  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private parse(): void {
    for (;;) {
      // Heart-beats: bare EOLs between frames.
      let i = 0;
      while (i < this.buf.length && (this.buf[i] === 0x0a || this.buf[i] === 0x0d)) i++;
      if (i > 0) this.buf = this.buf.subarray(i);
      const end = this.buf.indexOf('\n\n');
      const endCr = this.buf.indexOf('\r\n\r\n');
      let headEnd: number;
      let bodyStart: number;
      if (endCr >= 0 && (end < 0 || endCr < end)) {
        headEnd = endCr;
        bodyStart = endCr + 4;
      } else if (end >= 0) {
        headEnd = end;
        bodyStart = end + 2;
      } else return;
      const lines = this.buf.subarray(0, headEnd).toString('utf8').split(/\r?\n/);
      const command = lines[0]!;
      const headerList: Array<readonly [string, string]> = [];
      const headers: Record<string, string> = {};
      const raw = command === 'CONNECTED';
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':');
        const k = raw ? line.slice(0, c) : unescape(line.slice(0, c));
        const v = raw ? line.slice(c + 1) : unescape(line.slice(c + 1));
        headerList.push([k, v]);
        if (!(k in headers)) headers[k] = v;
      }
      let body: Buffer;
      let next: number;
      const len = headers['content-length'];
      if (len !== undefined) {
        const n = Number(len);
        if (this.buf.length < bodyStart + n + 1) return;
        body = Buffer.from(this.buf.subarray(bodyStart, bodyStart + n));
        if (this.buf[bodyStart + n] !== 0) throw new Error(`no NUL after a ${n}-byte body`);
        next = bodyStart + n + 1;
      } else {
        const nul = this.buf.indexOf(0, bodyStart);
        if (nul < 0) return;
        body = Buffer.from(this.buf.subarray(bodyStart, nul));
        next = nul + 1;
      }
      this.buf = this.buf.subarray(next);
      this.frames.push({ command, headers, headerList, body, receivedAt: Date.now() });
      this.wake();
    }
  }
}
