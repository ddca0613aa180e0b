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
import type { TraceEvent, TraceFields } from '../../src/core/tracing.js';
import type { ClientInfo } from '../../src/core/presence.js';
import type { CloseReason, Delivery, Outlet, SendResult, Session, Subscription } from '../../src/core/session.js';
import { STOMP_SERVER_FRAMES, stompFrameIndex, type CloseKind, type EndpointStats } from '../../src/core/stats.js';
import { PublishRateLimit } from '../../src/core/publish-rate.js';
import type { Connection, Transport } from '../../src/core/transport.js';
import { Output } from '../common/output.js';
import { messageHeaders } from './convert.js';
import { queueDestination, topicDestination } from './destinations.js';
import { FrameError, FrameLimitError, FrameParser, header, serializeFrame, type Frame, type StompVersion } from './frame.js';
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
  'auth-revoked': 'credentials revoked: the login is no longer valid',
};

/** How each broker-side close is counted (junction_connections_closed_total, presence events). */
const CLOSE_KINDS: Record<CloseReason, CloseKind> = {
  'taken-over': 'takeover',
  shutdown: 'server_shutdown',
  kicked: 'kicked',
  expired: 'kicked',
  'auth-revoked': 'auth_revoked',
};

const OUT_CONNECTED = STOMP_SERVER_FRAMES.indexOf('CONNECTED');
const OUT_MESSAGE = STOMP_SERVER_FRAMES.indexOf('MESSAGE');
const OUT_RECEIPT = STOMP_SERVER_FRAMES.indexOf('RECEIPT');
const OUT_ERROR = STOMP_SERVER_FRAMES.indexOf('ERROR');

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
  /** limits.publishRate, once the connection is open; with the pause that it imposes. */
  private publishRate: PublishRateLimit | undefined;
  /** This listener's connection and byte counters. */
  readonly endpoint: EndpointStats;
  /** Set once CONNECT is accepted: reported to core.presence when the connection closes. */
  client: ClientInfo | undefined;
  /** Why the connection ends (connection metrics, presence events); socket_error when unset. */
  closeKind: CloseKind | undefined;
  /** SEND frames received and MESSAGE frames sent (admin API: msgsIn, msgsOut). */
  msgsIn = 0;
  msgsOut = 0;

  constructor(
    readonly transport: Transport,
    readonly core: Core,
    readonly settings: StompSettings,
  ) {
    this.parser = new FrameParser(settings.frameLimits);
    this.endpoint = core.stats.endpoint(transport.listener, 'stomp');
    this.output = new Output(transport.stream, settings.outputBufferLimit, this.onSent, settings.drainTimeoutMs, this.onStalled);
    this.log = core.log.child({ remote: transport.remoteAddress, listener: transport.listener, protocol: 'stomp' });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const stream = transport.stream;
    stream.on('data', this.onData);
    stream.on('drain', () => this.session?.drained());
    stream.on('error', (err: Error) => this.log.debug('socket error', { session: this.sessionId, error: err.message }));
    stream.on('close', () => this.end('connection lost'));
    this.connectTimer = setTimeout(() => {
      core.stats.connectTimeouts++;
      this.fail(new StompError('no CONNECT frame within the connect timeout'));
    }, settings.connectTimeoutMs);
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
      this.msgsOut++;
      if (this.core.tracing.on) this.trace('deliver', d.message.topic, { subscription: sub.id, destination: dest, qos: d.qos, ackId: d.id, payload: d.message.payload });
      const stats = this.core.stats;
      stats.messagesSent++;
      stats.delivered[3 + d.qos]!++; // MESSAGE_SOURCES index 1: stomp
      stats.publishBytesOut += d.message.payload.length;
      stats.stompFramesOut[OUT_MESSAGE]!++;
      if (d.redelivery) stats.redeliveredBy[1]!++;
    }
    return this.writable ? 'sent' : 'full';
  }

  release(): void {
    // STOMP subscriptions are at most "QoS 1": there is no second acknowledgement phase.
  }

  /** The client id in traces and evt lines: the `client-id` header, else the session id. */
  get clientId(): string {
    return this.client?.clientId ?? this.sessionId;
  }

  /** A trace event about this client (call only when `core.tracing.on`). */
  trace(evt: TraceEvent, topic: string | undefined, fields: TraceFields): void {
    this.core.tracing.emit(evt, { clientId: this.clientId, peer: this.transport.remoteAddress, topic }, fields);
  }

  close(reason: CloseReason): void {
    this.closeKind ??= CLOSE_KINDS[reason];
    this.sendError(CLOSE_MESSAGES[reason], CLOSE_MESSAGES[reason]);
    this.end(reason);
  }

  // -- output ---------------------------------------------------------------------------------

  write(buf: Buffer): void {
    if (this.state === 'closed') return;
    this.lastWrite = Date.now();
    this.output.write(buf);
  }

  frame(command: 'CONNECTED' | 'RECEIPT', headers: ReadonlyArray<readonly [string, string]>, body?: Buffer): void {
    this.core.stats.stompFramesOut[command === 'RECEIPT' ? OUT_RECEIPT : OUT_CONNECTED]!++;
    this.write(serializeFrame(command, headers, body, this.version));
  }

  private readonly onSent = (n: number): void => {
    this.core.stats.bytesSent += n;
    this.endpoint.bytesOut += n;
  };

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
        if (this.state === 'closed') return;
        // A throw here would reject `tail` with no one to handle it (the process would end).
        try {
          send();
        } catch (err) {
          this.fail(err);
        }
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
    this.endpoint.bytesIn += chunk.length;
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
    const kind = stompFrameIndex(f.command);
    if (kind >= 0) this.core.stats.stompFramesIn[kind]!++;
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
        this.msgsIn++;
        // limits.publishRate over: an ERROR and the close, or reading pauses.
        if (this.publishRate?.take(this.pauseForRate, this.resumeAfterRate) === 'disconnect') {
          throw new StompError('message rate too high', `more than ${this.settings.publishRate} SEND frames a second`, header(f, 'receipt'));
        }
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
        this.closeKind = 'client_disconnect';
        this.receipt(header(f, 'receipt'), this.core.persist.barrier(), () => this.end('client disconnected'));
        break;
      case 'CONNECT':
      case 'STOMP':
        throw new StompError('already connected', 'a second CONNECT frame on one connection', header(f, 'receipt'));
      default:
        throw new StompError(`unknown command ${f.command}`, `${f.command} is not a STOMP ${this.version} client frame`, header(f, 'receipt'));
    }
  }

  private readonly pauseForRate = (): void => this.pause();
  private readonly resumeAfterRate = (): void => this.resume();

  private pause(): void {
    this.paused = true;
    this.transport.stream.pause();
  }

  /** The output stayed over its limit for the drain timeout with nothing read by the client. */
  private readonly onStalled = (): void => {
    if (this.state === 'closed') return;
    this.core.stats.slowConsumers++;
    this.closeKind = 'slow_consumer';
    this.log.warn('slow consumer disconnected', {
      evt: 'slow_consumer.disconnected',
      clientId: this.clientId,
      peer: this.transport.remoteAddress,
      session: this.sessionId,
      waiting: this.output.waiting,
      reason: `nothing read for ${this.settings.drainTimeoutMs / 1000} s with the output buffer full`,
    });
    // It would not read an ERROR frame either; what waits for it is dropped with the socket.
    this.end('slow consumer');
    this.transport.stream.destroy();
  };

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
    if (this.settings.publishRate > 0) this.publishRate = new PublishRateLimit(this.settings, this.core.stats, this.log, { session: this.sessionId });
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
        if (Date.now() - this.lastRead <= grace) return;
        this.closeKind ??= 'keepalive_timeout';
        this.fail(new StompError('heart-beat timeout', `nothing received for ${grace} ms`));
      }, Math.max(250, Math.min(inn, 5000)));
      this.checkTimer.unref();
    }
  }

  /** Ends the connection because of `err`: an ERROR frame first (for a StompError or FrameError). */
  fail(err: unknown): void {
    if (this.state === 'closed') return;
    this.closeKind ??= 'protocol_error';
    if (err instanceof StompError || err instanceof FrameError) {
      this.core.stats.protocolErrors++;
      if (err instanceof FrameLimitError) this.core.stats.packetsTooLarge++;
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
    this.core.stats.stompFramesOut[OUT_ERROR]!++;
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
    if (wasOpen) {
      this.log.info('client disconnected', {
        evt: 'client.disconnected',
        clientId: this.clientId,
        username: this.identity?.username,
        peer: this.transport.remoteAddress,
        closeReason: this.closeKind ?? 'socket_error',
        session: this.sessionId,
        reason: why,
      });
    }
    if (this.core.tracing.on) this.trace('disconnect', undefined, { reason: why, closeReason: this.closeKind ?? 'socket_error' });
    if (this.client) this.core.presence.disconnected(this.client, this.closeKind ?? 'socket_error');
    const session = this.session;
    if (session) this.core.sessions.disconnect(session, this, { discardWill: true, expiryInterval: 0 });
    this.output.close();
    this.publishRate?.close();
    const stream = this.transport.stream;
    stream.end();
    // Cleared at the close: until it fires, the timer would hold the connection and its buffers.
    if (!stream.destroyed) {
      const kill = setTimeout(() => stream.destroy(), 2000).unref();
      stream.once('close', () => clearTimeout(kill));
    }
    this.resolveClosed();
  }
}
