/**
 * StompConnection: one STOMP client connection (1.0, 1.1, 1.2). It frames the byte stream
 * (frame.ts), insists on CONNECT/STOMP first, dispatches each frame with one switch to
 * handle-frames.ts, keeps heart-beats both ways, sends RECEIPTs in frame order (after the storage
 * write for persistent SENDs), and is the Outlet through which its Session sends MESSAGE frames.
 *
 * A STOMP connection has a session of its own that ends with it: its subscriptions go, and queue
 * messages it had not acknowledged go back to their queues to be redelivered. Every problem is
 * answered with an ERROR frame that says what was wrong (with receipt-id when the frame asked for
 * a receipt), then the connection closes: never a silent close.
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from '../../src/core/access.js';
import type { Core } from '../../src/core/core.js';
import type { Logger } from '../../src/core/log.js';
import type { CloseReason, Delivery, Outlet, SendResult, Session, Subscription } from '../../src/core/session.js';
import type { Connection, Transport } from '../../src/core/transport.js';
import { Output } from '../common/output.js';
import { messageHeaders } from './convert.js';
import { queueDestination, topicDestination } from './destinations.js';
import { FrameError, FrameParser, header, serializeFrame, type Frame, type StompVersion } from './frame.js';
import { handleAck, handleBegin, handleCommitOrAbort, handleConnect, handleSend, handleSubscribe, handleUnsubscribe } from './handle-frames.js';
import type { StompSettings } from './settings.js';

type State = 'awaiting-connect' | 'connecting' | 'open' | 'closed';

export type AckMode = 'auto' | 'client' | 'client-individual';

/** A SUBSCRIBE as this connection knows it: the core Subscription plus what MESSAGE frames need. */
export interface StompSubscription {
  readonly id: string;
  readonly destination: string;
  readonly queue: string | undefined;
  readonly ack: AckMode;
  readonly sub: Subscription;
}

/** A problem the client caused: answered with an ERROR frame, then the connection closes. */
export class StompError extends Error {
  constructor(
    message: string,
    readonly detail: string = message,
    readonly receipt?: string,
    /** More headers for the ERROR frame (e.g. `version` when no version could be agreed). */
    readonly headers: ReadonlyArray<readonly [string, string]> = [],
  ) {
    super(message);
    this.name = 'StompError';
  }
}

const CLOSE_MESSAGES: Record<CloseReason, string> = {
  'taken-over': 'session taken over',
  shutdown: 'server shutting down',
  kicked: 'disconnected by an administrator',
  expired: 'session expired',
};

export class StompConnection implements Outlet, Connection {
  state: State = 'awaiting-connect';
  version: StompVersion = '1.0';
  readonly sessionId = `stomp-${randomBytes(6).toString('hex')}`;
  session: Session | undefined;
  identity: Identity | undefined;
  log: Logger;
  readonly subs = new Map<string, StompSubscription>();
  /** Open transactions: the actions of their SENDs, ACKs and NACKs, applied at COMMIT. */
  readonly txs = new Map<string, Array<() => void>>();
  readonly closed: Promise<void>;
  readonly parser: FrameParser;
  private resolveClosed!: () => void;
  private readonly output: Output;
  private paused = false;
  private lastRead = Date.now();
  private lastWrite = Date.now();
  private connectTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private receiptTail: Promise<void> | undefined;

  constructor(
    readonly transport: Transport,
    readonly core: Core,
    readonly settings: StompSettings,
  ) {
    this.parser = new FrameParser(settings.frameLimits);
    this.output = new Output(transport.stream, settings.outputBufferLimit, (n) => (core.stats.bytesSent += n));
    this.log = core.log.child({ remote: transport.remoteAddress, listener: transport.listener, protocol: 'stomp' });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const stream = transport.stream;
    stream.on('data', this.onData);
    stream.on('drain', () => this.session?.drained());
    stream.on('error', (err: Error) => this.log.debug('socket error', { session: this.sessionId, error: err.message }));
    stream.on('close', () => this.end('connection lost'));
    this.connectTimer = setTimeout(() => this.fail(new StompError('no CONNECT frame within the connect timeout')), settings.connectTimeoutMs);
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  // -- Outlet ---------------------------------------------------------------------------------

  get writable(): boolean {
    return this.state === 'open' && this.output.writable;
  }

  send(d: Delivery): SendResult {
    for (const s of d.matched) {
      const sub = this.subs.get(s.key);
      if (!sub) continue; // unsubscribed since: nothing to send it through
      const dest = sub.queue !== undefined ? queueDestination(sub.queue) : topicDestination(d.message.topic, this.settings.topicMapping);
      const withAck = this.version === '1.2' && sub.ack !== 'auto';
      this.write(serializeFrame('MESSAGE', messageHeaders(d, sub.id, dest, withAck, this.settings.topicMapping), d.message.payload, this.version));
      this.core.stats.messagesSent++;
    }
    return this.writable ? 'sent' : 'full';
  }

  release(): void {
    // STOMP subscriptions are at most "QoS 1": there is no second acknowledgement phase.
  }

  close(reason: CloseReason): void {
    this.sendError(CLOSE_MESSAGES[reason], CLOSE_MESSAGES[reason]);
    this.end(reason);
  }

  // -- output ---------------------------------------------------------------------------------

  write(buf: Buffer): void {
    if (this.state === 'closed') return;
    this.lastWrite = Date.now();
    this.output.write(buf);
  }

  frame(command: string, headers: ReadonlyArray<readonly [string, string]>, body?: Buffer): void {
    this.write(serializeFrame(command, headers, body, this.version));
  }

  /**
   * Sends RECEIPT `id` (if any) once `durable` is on disk, after every earlier receipt.
   * `after` runs once it is written (DISCONNECT closes then).
   */
  receipt(id: string | undefined, durable: Promise<void> | undefined, after?: () => void): void {
    const send = (): void => {
      if (id !== undefined) this.frame('RECEIPT', [['receipt-id', id]]);
      after?.();
    };
    if (!durable && !this.receiptTail) {
      send();
      return;
    }
    const prev = this.receiptTail;
    const wait = durable ? (prev ? Promise.all([prev, durable]) : durable) : prev!;
    const tail: Promise<void> = wait.then(
      () => {
        if (this.receiptTail === tail) this.receiptTail = undefined;
        if (this.state !== 'closed') send();
      },
      () => {
        if (this.receiptTail === tail) this.receiptTail = undefined;
        // Not on disk: no receipt. Say so, since the client may wait for it.
        this.fail(new StompError('storage write failed', 'the message could not be stored; it was not accepted', id));
      },
    );
    this.receiptTail = tail;
  }

  // -- input ----------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    this.lastRead = Date.now();
    this.core.stats.bytesReceived += chunk.length;
    this.parser.push(chunk);
    this.process();
  };

  private process(): void {
    try {
      while (!this.paused && this.state !== 'closed') {
        const f = this.parser.next();
        if (!f) return;
        this.dispatch(f);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private dispatch(f: Frame): void {
    if (this.state === 'awaiting-connect') {
      if (f.command !== 'CONNECT' && f.command !== 'STOMP') {
        throw new StompError('expected a CONNECT or STOMP frame', `the first frame must be CONNECT or STOMP, got ${f.command}`, header(f, 'receipt'));
      }
      this.state = 'connecting';
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.pause();
      handleConnect(this, f).then(
        () => this.resume(),
        (err: unknown) => this.fail(err),
      );
      return;
    }
    const session = this.session!;
    switch (f.command) {
      case 'SEND':
        handleSend(this, session, f);
        break;
      case 'SUBSCRIBE':
        handleSubscribe(this, session, f);
        break;
      case 'UNSUBSCRIBE':
        handleUnsubscribe(this, session, f);
        break;
      case 'ACK':
      case 'NACK':
        handleAck(this, session, f);
        break;
      case 'BEGIN':
        handleBegin(this, f);
        break;
      case 'COMMIT':
      case 'ABORT':
        handleCommitOrAbort(this, f);
        break;
      case 'DISCONNECT':
        // Nothing after DISCONNECT is read; the receipt follows every earlier one (STOMP 1.2 "DISCONNECT").
        this.paused = true;
        this.receipt(header(f, 'receipt'), this.core.persist.barrier(), () => this.end('client disconnected'));
        break;
      case 'CONNECT':
      case 'STOMP':
        throw new StompError('already connected', 'a second CONNECT frame on one connection', header(f, 'receipt'));
      default:
        throw new StompError(`unknown command ${f.command}`, `${f.command} is not a STOMP ${this.version} client frame`, header(f, 'receipt'));
    }
  }

  private pause(): void {
    this.paused = true;
    this.transport.stream.pause();
  }

  private resume(): void {
    if (this.state === 'closed') return;
    this.paused = false;
    this.transport.stream.resume();
    this.process();
  }

  // -- lifecycle ------------------------------------------------------------------------------

  /** Called by handleConnect once CONNECTED is written. */
  opened(session: Session, version: StompVersion, clientBeat: readonly [number, number]): void {
    this.session = session;
    this.version = version;
    this.parser.version = version;
    this.state = 'open';
    this.log = this.log.child({ session: this.sessionId });
    if (version === '1.0') return;
    // STOMP 1.2 "Heart-beating": each side sends at the slower of what one offers and the other wants.
    const [cx, cy] = clientBeat;
    const beat = this.settings.heartbeatMs;
    const out = beat > 0 && cy > 0 ? Math.max(beat, cy) : 0;
    const inn = cx > 0 && beat > 0 ? Math.max(cx, beat) : 0;
    if (out > 0) {
      this.beatTimer = setInterval(() => {
        if (Date.now() - this.lastWrite >= out * 0.9) this.write(Buffer.from('\n'));
      }, out);
      this.beatTimer.unref();
    }
    if (inn > 0) {
      // Grace: twice the negotiated interval without a byte from the client.
      const grace = inn * 2;
      this.checkTimer = setInterval(() => {
        if (Date.now() - this.lastRead > grace) this.fail(new StompError('heart-beat timeout', `nothing received for ${grace} ms`));
      }, Math.max(250, Math.min(inn, 5000)));
      this.checkTimer.unref();
    }
  }

  /** Ends the connection because of `err`: an ERROR frame first (for a StompError or FrameError). */
  fail(err: unknown): void {
    if (this.state === 'closed') return;
    if (err instanceof StompError || err instanceof FrameError) {
      this.core.stats.protocolErrors++;
      const detail = err instanceof StompError ? err.detail : err.message;
      this.log.warn('stomp error', { session: this.sessionId, error: err.message, ...(detail !== err.message ? { detail } : {}) });
      this.sendError(err.message, detail, err.receipt, err instanceof StompError ? err.headers : []);
      this.end(err.message);
      return;
    }
    this.log.error('internal error', { session: this.sessionId, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    this.sendError('internal error', 'the broker failed to handle this frame');
    this.end('internal error');
  }

  private sendError(message: string, detail: string, receipt?: string, extra: ReadonlyArray<readonly [string, string]> = []): void {
    const headers: Array<readonly [string, string]> = [['message', message], ...extra, ['content-type', 'text/plain']];
    if (receipt !== undefined) headers.push(['receipt-id', receipt]);
    // ERROR frames may go out before the version is negotiated: 1.0 rules are readable by all.
    this.write(serializeFrame('ERROR', headers, Buffer.from(detail + '\n', 'utf8'), this.state === 'open' ? this.version : '1.0'));
  }

  /** The one way out: the session ends with the connection, queue messages it held go back. */
  end(why: string): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.output.flush();
    this.state = 'closed';
    for (const t of [this.connectTimer, this.beatTimer, this.checkTimer]) if (t) clearTimeout(t);
    this.txs.clear();
    if (wasOpen) this.log.info('client disconnected', { session: this.sessionId, reason: why });
    const session = this.session;
    if (session) this.core.sessions.disconnect(session, this, { discardWill: true, expiryInterval: 0 });
    const stream = this.transport.stream;
    stream.end();
    setTimeout(() => stream.destroy(), 2000).unref();
    this.resolveClosed();
  }
}
