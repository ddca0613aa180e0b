/**
 * STOMP test clients:
 * - StompRaw: a plain TCP socket that writes frames exactly as the test spells them (no escaping,
 *   no content-length unless given) and reads the broker's frames with a parser of its own (not the
 *   broker's), keeping the wire form of every header next to its unescaped value. For the wire rules
 *   that real clients will not break on purpose.
 * - stompit and @stomp/stompjs (over @stomp/tcp-wrapper) behind small promise wrappers; every client
 *   made here is closed after the test file.
 *
 * "Nothing more is coming" without sleeping: the broker handles one connection's frames in order and
 * writes to one connection in order, so once a publisher has the RECEIPT for its SEND, the messages
 * that SEND caused are already written to every subscriber's socket; a subscriber that then gets a
 * RECEIPT of its own (`sync()`) has everything that was written before it.
 */
import net from 'node:net';
import { Client as StompJsClient, Versions, type IMessage, type StompConfig, type StompHeaders } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import stompit from 'stompit';
import { afterAll } from 'vitest';
import { until } from './mqtt.js';

export type Version = '1.0' | '1.1' | '1.2';
export type HeaderList = ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string>>;

const cleanups = new Set<() => Promise<void> | void>();
afterAll(async () => {
  await Promise.all([...cleanups].map(async (c) => c()));
  cleanups.clear();
});

/** A short random string to keep each test's destinations apart. */
export function nonce(): string {
  return Math.random().toString(36).slice(2, 10);
}

// -- raw frames ------------------------------------------------------------------------------

export interface StompFrame {
  readonly command: string;
  /** Headers as they were on the wire (still escaped), in order, repeats included. */
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>;
  /** Headers unescaped with the rules of the version in force when the frame arrived. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

/** First value of header `name` (unescaped). */
export function hdr(f: StompFrame, name: string): string | undefined {
  for (const [k, v] of f.headers) if (k === name) return v;
  return undefined;
}

/** First wire value of header `name`. */
export function rawHdr(f: StompFrame, name: string): string | undefined {
  for (const [k, v] of f.rawHeaders) if (k === name) return v;
  return undefined;
}

/** STOMP 1.1/1.2 "Value Encoding", written independently of the broker's code (the test oracle). */
export function unescape(s: string, version: Version | undefined): string {
  if (version === undefined || version === '1.0') return s;
  const map: Record<string, string> = version === '1.2' ? { n: '\n', c: ':', '\\': '\\', r: '\r' } : { n: '\n', c: ':', '\\': '\\' };
  return s.replace(/\\(.?)/g, (all, c: string) => {
    const v = map[c];
    if (v === undefined) throw new Error(`undefined escape ${JSON.stringify(all)} from the broker`);
    return v;
  });
}

export function escape(s: string, version: Version): string {
  if (version === '1.0') return s;
  let out = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c');
  if (version === '1.2') out = out.replace(/\r/g, '\\r');
  return out;
}

function entries(h: HeaderList): Array<readonly [string, string]> {
  return Array.isArray(h) ? [...(h as ReadonlyArray<readonly [string, string]>)] : Object.entries(h as Record<string, string>);
}

/** The bytes of a frame exactly as given: LF line ends unless `eol` says otherwise, no escaping. */
export function frameBytes(command: string, headers: HeaderList = [], body: string | Buffer = '', eol = '\n'): Buffer {
  let head = command + eol;
  for (const [k, v] of entries(headers)) head += `${k}:${v}${eol}`;
  head += eol;
  return Buffer.concat([Buffer.from(head, 'utf8'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), Buffer.from([0])]);
}

export class StompRaw {
  /** Frames received and not yet taken by next()/sync(). */
  readonly frames: StompFrame[] = [];
  /** EOLs received between frames (the broker's heart-beats). */
  heartbeats = 0;
  closed = false;
  /** The negotiated version (from CONNECTED); headers of later frames are unescaped with its rules. */
  version: Version | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.parse();
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
    cleanups.add(() => void socket.destroy());
  }

  static connect(port: number): Promise<StompRaw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new StompRaw(s)));
      s.once('error', reject);
    });
  }

  /** A connected client: CONNECT with `accept-version` (1.2 by default) and `headers`, CONNECTED read. */
  static async open(port: number, version: Version = '1.2', headers: HeaderList = {}): Promise<StompRaw> {
    const c = await StompRaw.connect(port);
    await c.handshake({ 'accept-version': version, host: 'junction', ...Object.fromEntries(entries(headers)) });
    return c;
  }

  private parse(): void {
    for (;;) {
      let i = 0;
      while (i < this.buf.length && (this.buf[i] === 0x0a || this.buf[i] === 0x0d)) {
        if (this.buf[i] === 0x0a) this.heartbeats++;
        i++;
      }
      this.buf = this.buf.subarray(i);
      const end = this.buf.indexOf('\n\n');
      const endCr = this.buf.indexOf('\r\n\r\n');
      if (end < 0 && endCr < 0) return;
      const crlf = endCr >= 0 && (end < 0 || endCr < end);
      const headEnd = crlf ? endCr : end;
      const bodyStart = headEnd + (crlf ? 4 : 2);
      const lines = this.buf.toString('utf8', 0, headEnd).split(/\r?\n/);
      const command = lines.shift()!;
      const rawHeaders = lines.map((l): [string, string] => {
        const colon = l.indexOf(':');
        return colon < 0 ? [l, ''] : [l.slice(0, colon), l.slice(colon + 1)];
      });
      const escaped = command !== 'CONNECTED' && this.version !== undefined && this.version !== '1.0';
      const headers = rawHeaders.map(([k, v]): [string, string] => (escaped ? [unescape(k, this.version), unescape(v, this.version)] : [k, v]));
      const cl = headers.find(([k]) => k === 'content-length')?.[1];
      let bodyEnd: number;
      if (cl !== undefined) {
        bodyEnd = bodyStart + Number(cl);
        if (this.buf.length < bodyEnd + 1) return;
        if (this.buf[bodyEnd] !== 0) throw new Error(`broker frame ${command}: no NUL after content-length bytes`);
      } else {
        bodyEnd = this.buf.indexOf(0, bodyStart);
        if (bodyEnd < 0) return;
      }
      const body = Buffer.from(this.buf.subarray(bodyStart, bodyEnd));
      this.buf = this.buf.subarray(bodyEnd + 1);
      this.frames.push({ command, rawHeaders, headers, body });
      if (command === 'CONNECTED') {
        const v = headers.find(([k]) => k === 'version')?.[1];
        this.version = v === '1.1' || v === '1.2' ? v : '1.0';
      }
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async waitFor(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Writes a frame as given (see frameBytes). */
  send(command: string, headers: HeaderList = [], body: string | Buffer = '', eol = '\n'): void {
    this.write(frameBytes(command, headers, body, eol));
  }

  /** Sends CONNECT (or `command`) and returns CONNECTED; throws with the ERROR if one comes. */
  async handshake(headers: HeaderList, command = 'CONNECT'): Promise<StompFrame> {
    this.send(command, headers);
    const f = await this.next();
    if (f.command !== 'CONNECTED') throw new Error(`expected CONNECTED, got ${f.command} ${JSON.stringify(f.headers)} ${f.body.toString()}`);
    return f;
  }

  private describe(): string {
    return this.frames.map((f) => f.command).join(',') || 'nothing';
  }

  /**
   * The next frame with `command` (any command when not given), removing it and every frame before
   * it. Throws if the connection closes first.
   */
  async next(command?: string, timeoutMs = 3000): Promise<StompFrame> {
    const find = (): number => (command === undefined ? (this.frames.length > 0 ? 0 : -1) : this.frames.findIndex((f) => f.command === command));
    await this.waitFor(() => find() >= 0 || this.closed, timeoutMs, () => `${command ?? 'a frame'}; got ${this.describe()}`);
    const i = find();
    if (i < 0) throw new Error(`connection closed while waiting for ${command ?? 'a frame'}; got ${this.describe()}`);
    return this.frames.splice(0, i + 1)[i]!;
  }

  /** The RECEIPT for `id`; any frames before it stay in `frames`. */
  async receipt(id: string, timeoutMs = 3000): Promise<StompFrame> {
    const find = (): number => this.frames.findIndex((f) => f.command === 'RECEIPT' && hdr(f, 'receipt-id') === id);
    await this.waitFor(() => find() >= 0 || this.closed, timeoutMs, () => `RECEIPT ${id}; got ${this.describe()}`);
    const i = find();
    if (i < 0) throw new Error(`connection closed while waiting for RECEIPT ${id}; got ${this.describe()}`);
    return this.frames.splice(i, 1)[0]!;
  }

  /** The next frame must be an ERROR and the broker must close the connection after it. */
  async expectError(timeoutMs = 3000): Promise<StompFrame> {
    const f = await this.next(undefined, timeoutMs);
    if (f.command !== 'ERROR') throw new Error(`expected ERROR, got ${f.command} ${JSON.stringify(f.headers)}`);
    await this.waitClosed(timeoutMs);
    return f;
  }

  async waitClosed(timeoutMs = 3000): Promise<void> {
    await this.waitFor(() => this.closed, timeoutMs, () => 'the broker to close the connection');
  }

  /**
   * A round trip: SEND with a receipt to a topic of its own and wait for the RECEIPT. Returns (and
   * removes) every frame that arrived before it.
   */
  async sync(timeoutMs = 3000): Promise<StompFrame[]> {
    const id = 'sync-' + nonce();
    this.send('SEND', { destination: `/topic/junction-test-sync/${id}`, receipt: id });
    const find = (): number => this.frames.findIndex((f) => f.command === 'RECEIPT' && hdr(f, 'receipt-id') === id);
    await this.waitFor(() => find() >= 0 || this.closed, timeoutMs, () => `sync RECEIPT; got ${this.describe()}`);
    const i = find();
    if (i < 0) throw new Error(`connection closed while syncing; got ${this.describe()}`);
    return this.frames.splice(0, i + 1).slice(0, i);
  }

  /** Subscribes with a receipt and waits for it. */
  async subscribe(headers: HeaderList): Promise<void> {
    const id = 'sub-' + nonce();
    this.send('SUBSCRIBE', [...entries(headers), ['receipt', id]]);
    await this.receipt(id);
  }

  /** SEND with a receipt; resolves on the RECEIPT. */
  async publish(headers: HeaderList, body: string | Buffer = ''): Promise<void> {
    const id = 'send-' + nonce();
    this.send('SEND', [...entries(headers), ['receipt', id]], body);
    await this.receipt(id);
  }

  /** Waits until `n` MESSAGE frames are in `frames`, then takes them (and only them) out. */
  async messages(n: number, timeoutMs = 3000): Promise<StompFrame[]> {
    const count = (): number => this.frames.filter((f) => f.command === 'MESSAGE').length;
    await this.waitFor(() => count() >= n || this.closed, timeoutMs, () => `${n} MESSAGE frames; got ${this.describe()}`);
    if (count() < n) throw new Error(`connection closed with ${count()} of ${n} MESSAGE frames; got ${this.describe()}`);
    const out: StompFrame[] = [];
    for (let i = 0; i < this.frames.length && out.length < n; ) {
      if (this.frames[i]!.command === 'MESSAGE') out.push(this.frames.splice(i, 1)[0]!);
      else i++;
    }
    return out;
  }

  end(): void {
    this.socket.destroy();
  }
}

// -- stompit ----------------------------------------------------------------------------------

export interface StompitMessage {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly frame: stompit.IncomingFrame;
}

export async function stompitConnect(port: number, connectHeaders: stompit.Headers = {}): Promise<stompit.Client> {
  const client = await new Promise<stompit.Client>((resolve, reject) => {
    stompit.connect({ host: '127.0.0.1', port, connectHeaders: { host: 'junction', 'heart-beat': '0,0', ...connectHeaders } }, (err, c) =>
      err ? reject(err) : resolve(c),
    );
  });
  // A stompit client that gets an ERROR (e.g. "server shutting down" when the broker stops before
  // this file's clients are closed) emits 'error': the tests check what they expect instead.
  client.on('error', () => undefined);
  client.getTransportSocket().on('error', () => undefined);
  // stompit 1.0.0's own ERROR handler calls destroy() on the frame instead of the client (`this`
  // in a function callback), an uncaught 'error'; this one reads the body and destroys the client.
  client.setCommandHandler('ERROR', function (this: stompit.Client, frame: stompit.IncomingFrame) {
    frame.resume();
    frame.on('end', () => this.destroy(new Error(`ERROR frame: ${frame.headers['message'] ?? ''}`)));
  });
  cleanups.add(() => client.destroy());
  return client;
}

/** Sends a frame with a receipt and resolves when it comes (the frame is processed). */
export function stompitFrame(client: stompit.Client, command: string, headers: stompit.Headers, body?: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = client.sendFrame(command, { ...headers }, { onReceipt: resolve, onError: reject });
    if (body !== undefined) w.write(body);
    w.end();
  });
}

export function stompitSend(client: stompit.Client, headers: stompit.Headers, body: string | Buffer = ''): Promise<void> {
  return stompitFrame(client, 'SEND', headers, body);
}

/** A round trip: everything the broker wrote to `client` before it has been read. */
export function stompitSync(client: stompit.Client): Promise<void> {
  return stompitSend(client, { destination: `/topic/junction-test-sync/${nonce()}` });
}

/** Subscribes, collecting each MESSAGE with its whole body; resolves once the broker has the SUBSCRIBE. */
export async function stompitSubscribe(
  client: stompit.Client,
  headers: stompit.Headers,
): Promise<{ messages: StompitMessage[]; sub: stompit.Subscription }> {
  const messages: StompitMessage[] = [];
  const sub = client.subscribe({ ...headers }, (err, frame) => {
    if (err || !frame) return;
    const chunks: Buffer[] = [];
    frame.on('data', (c: Buffer) => chunks.push(c));
    frame.on('end', () => messages.push({ headers: frame.headers, body: Buffer.concat(chunks), frame }));
  });
  await stompitSync(client);
  return { messages, sub };
}

export function stompitDisconnect(client: stompit.Client): Promise<void> {
  return new Promise((resolve, reject) => client.disconnect((err) => (err ? reject(err) : resolve())));
}

// -- @stomp/stompjs ---------------------------------------------------------------------------

export interface StompJs {
  readonly client: StompJsClient;
  /** ERROR frames the client got. */
  readonly errors: IMessage[];
  closed: boolean;
}

/** An activated stompjs client over TCP, connected (no reconnects, no heart-beats unless `config` says). */
export async function stompjsConnect(port: number, config: StompConfig = {}, versions: Version[] = ['1.2', '1.1', '1.0']): Promise<StompJs> {
  const client = new StompJsClient({
    webSocketFactory: () => new TCPWrapper('127.0.0.1', port),
    connectHeaders: { host: 'junction' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    connectionTimeout: 5000,
    debug: () => undefined,
    ...config,
  });
  client.stompVersions = new Versions(versions);
  const s: StompJs = { client, errors: [], closed: false };
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onStompError = (f) => {
      s.errors.push(f as IMessage);
      reject(new Error(`ERROR ${f.headers['message'] ?? ''}`));
    };
    client.onWebSocketClose = () => {
      s.closed = true;
      reject(new Error('closed before CONNECTED'));
    };
    client.activate();
  });
  client.onStompError = (f) => void s.errors.push(f as IMessage);
  client.onWebSocketClose = () => void (s.closed = true);
  cleanups.add(() => client.deactivate({ force: true }));
  return s;
}

/** Runs `send(receiptId)` (a frame with that receipt header) and resolves on its RECEIPT. */
export function stompjsReceipt(c: StompJs, send: (receipt: string) => void): Promise<void> {
  const id = 'r-' + nonce();
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no RECEIPT ${id}`)), 3000);
    c.client.watchForReceipt(id, () => {
      clearTimeout(t);
      resolve();
    });
    send(id);
  });
}

/** Subscribes with a receipt, collecting messages. */
export async function stompjsSubscribe(c: StompJs, destination: string, headers: StompHeaders = {}): Promise<{ messages: IMessage[]; unsubscribe: () => void }> {
  const messages: IMessage[] = [];
  let sub: { unsubscribe: () => void } | undefined;
  await stompjsReceipt(c, (receipt) => {
    sub = c.client.subscribe(destination, (m) => void messages.push(m), { ...headers, receipt });
  });
  return { messages, unsubscribe: () => sub!.unsubscribe() };
}

/** A round trip for stompjs: SEND with a receipt to a topic of its own. */
export function stompjsSync(c: StompJs): Promise<void> {
  return stompjsReceipt(c, (receipt) => c.client.publish({ destination: `/topic/junction-test-sync/${nonce()}`, headers: { receipt } }));
}

export { until };
