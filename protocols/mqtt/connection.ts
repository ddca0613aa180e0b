/**
 * MqttConnection: one MQTT client connection. It owns the byte stream: frames and decodes what
 * arrives, insists on CONNECT first, dispatches each packet with one switch to the handle-*.ts
 * functions, and is the Outlet through which its Session sends. Writes made during one event-loop
 * turn are gathered and written once per socket (one syscall for a burst of small packets).
 *
 * Every way a connection ends goes through `end()`: a protocol error (DISCONNECT with its reason
 * code first, for v5), keep-alive timeout, takeover, shutdown, the client's DISCONNECT, or the
 * socket closing under us. Only the client's own DISCONNECT (not 0x04) discards the will.
 */
import type { Core } from '../../src/core/core.js';
import type { Identity } from '../../src/core/access.js';
import type { Logger } from '../../src/core/log.js';
import type { ClientInfo } from '../../src/core/presence.js';
import type { CloseReason, Delivery, Outlet, SendResult, Session } from '../../src/core/session.js';
import type { CloseKind, EndpointStats } from '../../src/core/stats.js';
import { PublishRateLimit } from '../../src/core/publish-rate.js';
import type { Connection, Transport } from '../../src/core/transport.js';
import type { TraceEvent, TraceFields } from '../../src/core/tracing.js';
import { expiryLeft, subscriptionIds } from './convert.js';
import { Output } from '../common/output.js';
import { Framer, decodeConnect, decodePacket } from './decode.js';
import { encodeAck, encodeConnack, encodeDisconnect, encodePublish, PINGRESP, type PublishOptions } from './encode.js';
import { handleConnect } from './handle-connect.js';
import { handleDisconnect } from './handle-disconnect.js';
import { handlePublish, handlePubrel } from './handle-publish.js';
import { handleSubscribe, handleUnsubscribe } from './handle-subscribe.js';
import { PacketType, type ClientPacket, type ProtocolVersion } from './packets.js';
import { MqttError, ReasonCode, reasonName } from './reason-codes.js';
import type { MqttSettings } from './settings.js';

type State = 'awaiting-connect' | 'connecting' | 'open' | 'closed';

const CLOSE_CODES: Record<CloseReason, number> = {
  'taken-over': ReasonCode.SessionTakenOver,
  shutdown: ReasonCode.ServerShuttingDown,
  kicked: ReasonCode.AdministrativeAction,
  expired: ReasonCode.AdministrativeAction,
  'auth-revoked': ReasonCode.AdministrativeAction,
};

/** How each broker-side close is counted (junction_connections_closed_total, presence events). */
const CLOSE_KINDS: Record<CloseReason, CloseKind> = {
  'taken-over': 'takeover',
  shutdown: 'server_shutdown',
  kicked: 'kicked',
  expired: 'kicked',
  'auth-revoked': 'auth_revoked',
};

/** The close reason of a connection ended with `code` and no more specific reason set. */
function closeKindOf(code: number | undefined): CloseKind {
  if (code === undefined) return 'socket_error';
  if (code === ReasonCode.KeepAliveTimeout) return 'keepalive_timeout';
  return 'protocol_error';
}

export class MqttConnection implements Outlet, Connection {
  state: State = 'awaiting-connect';
  version: ProtocolVersion = 4;
  clientId = '';
  session: Session | undefined;
  identity: Identity | undefined;
  log: Logger;

  // What the client told us in CONNECT (v5).
  clientReceiveMaximum = 65535;
  clientMaxPacketSize = 268435460;
  clientTopicAliasMaximum = 0;
  requestProblemInfo = true;
  /** The session expiry the CONNECT asked for: a DISCONNECT may not raise it from 0 [MQTT-3.14.2-2]. */
  connectExpiry = 0;

  /** Inbound topic aliases (client -> broker). */
  readonly aliasesIn = new Map<number, string>();
  /** QoS 1/2 publishes whose acknowledgement is waiting for disk. */
  acksWaiting = 0;
  /** This listener's connection and byte counters. */
  readonly endpoint: EndpointStats;
  /** Set once CONNECT is accepted: reported to core.presence when the connection closes. */
  client: ClientInfo | undefined;
  /** Why the connection ends, when the place that ends it knows better than its reason code. */
  closeKind: CloseKind | undefined;
  /** PUBLISH packets received and sent (admin API: msgsIn, msgsOut). */
  msgsIn = 0;
  msgsOut = 0;

  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly framer: Framer;
  private paused = false;
  private keepAliveMs = 0;
  private lastRead = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private aliasesOut: Map<string, number> | undefined;
  private readonly output: Output;
  private ackTail: Promise<void> | undefined;
  /** limits.publishRate, once the connection is open; with the pause that it imposes. */
  private publishRate: PublishRateLimit | undefined;
  private readonly pub: { -readonly [K in keyof PublishOptions]: PublishOptions[K] } = {
    version: 4,
    qos: 0,
    packetId: 0,
    dup: false,
    retain: false,
    topicAlias: 0,
    omitTopic: false,
    subscriptionIds: undefined,
    expiry: undefined,
    annotations: undefined,
  };

  constructor(
    readonly transport: Transport,
    readonly core: Core,
    readonly settings: MqttSettings,
  ) {
    this.framer = new Framer(settings.maxPacketSize);
    this.endpoint = core.stats.endpoint(transport.listener, 'mqtt');
    this.output = new Output(transport.stream, settings.outputBufferLimit, this.onSent, settings.drainTimeoutMs, this.onStalled);
    this.log = core.log.child({ remote: transport.remoteAddress, listener: transport.listener });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const stream = transport.stream;
    stream.on('data', this.onData);
    stream.on('drain', this.onDrain);
    stream.on('error', (err: Error) => this.log.debug('socket error', { clientId: this.clientId, error: err.message }));
    stream.on('close', () => this.end(undefined, 'connection lost', true));
    // Nothing beyond the socket is kept for a client until its CONNECT is valid.
    this.timer = setTimeout(() => {
      core.stats.connectTimeouts++;
      this.log.info('connect timeout', { reason: `no valid CONNECT within ${settings.connectTimeoutMs / 1000} s`, state: this.state });
      this.end(undefined, 'no CONNECT within the connect timeout', true);
    }, settings.connectTimeoutMs);
  }

  /** A method, not a field read, so that checks after an await are not narrowed away by TypeScript. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  // -- Outlet ---------------------------------------------------------------------------------

  get writable(): boolean {
    return this.state === 'open' && this.output.writable;
  }

  send(d: Delivery): SendResult {
    const msg = d.message;
    const o = this.pub;
    o.version = this.version;
    o.qos = d.qos;
    o.packetId = d.id;
    o.dup = d.redelivery && d.qos > 0;
    o.retain = d.retain;
    o.topicAlias = 0;
    o.omitTopic = false;
    o.subscriptionIds = undefined;
    o.expiry = undefined;
    o.annotations = d.annotations;
    let newAlias = false;
    if (this.version === 5) {
      o.subscriptionIds = subscriptionIds(d);
      if (msg.expiresAt !== undefined) o.expiry = expiryLeft(d, Date.now());
      const aliases = this.aliasesOut;
      if (aliases) {
        const known = aliases.get(msg.topic);
        if (known !== undefined) {
          o.topicAlias = known;
          o.omitTopic = true;
        } else if (aliases.size < this.clientTopicAliasMaximum) {
          o.topicAlias = aliases.size + 1;
          newAlias = true;
        }
      }
    }
    const buf = encodePublish(msg, o);
    // [MQTT-3.1.2-24] never send more than the client's Maximum Packet Size.
    if (buf.length > this.clientMaxPacketSize) return 'dropped';
    if (newAlias) this.aliasesOut!.set(msg.topic, o.topicAlias);
    this.write(buf);
    this.msgsOut++;
    if (this.core.tracing.on) this.trace('deliver', msg.topic, { qos: d.qos, packetId: d.id, retain: d.retain, dup: o.dup, payload: msg.payload });
    const stats = this.core.stats;
    stats.messagesSent++;
    stats.delivered[d.qos]!++; // MESSAGE_SOURCES index 0: mqtt
    stats.publishBytesOut += msg.payload.length;
    if (d.redelivery) stats.redeliveredBy[0]!++;
    return this.writable ? 'sent' : 'full';
  }

  release(id: number): void {
    this.write(encodeAck(PacketType.PUBREL, id, this.version));
  }

  close(reason: CloseReason): void {
    this.closeKind ??= CLOSE_KINDS[reason];
    this.end(CLOSE_CODES[reason], reason === 'auth-revoked' ? 'credentials no longer valid after a configuration reload' : reason, reason !== 'taken-over');
  }

  /** A trace event about this client (call only when `core.tracing.on`). */
  trace(evt: TraceEvent, topic: string | undefined, fields: TraceFields): void {
    this.core.tracing.emit(evt, { clientId: this.clientId, peer: this.transport.remoteAddress, topic }, fields);
  }

  // -- output ---------------------------------------------------------------------------------

  write(buf: Buffer): void {
    if (this.state === 'closed') return;
    this.core.stats.mqttPacketsOut[buf[0]! >> 4]!++; // one packet per buffer, type in the first 4 bits
    this.output.write(buf);
  }

  private readonly onSent = (n: number): void => {
    this.core.stats.bytesSent += n;
    this.endpoint.bytesOut += n;
  };

  /**
   * Sends an acknowledgement once `durable` (the writes its PUBLISH caused) is on disk, in the order
   * the PUBLISH packets arrived [MQTT-4.6.0-2]. When the write fails, `failed` is sent instead (v5
   * error reason code) or nothing (v3: the client will resend). `after` runs once `ok` is written.
   */
  ack(ok: Buffer, durable: Promise<void> | undefined, failed?: Buffer, after?: () => void): void {
    if (!durable && !this.ackTail) {
      this.write(ok);
      after?.();
      return;
    }
    this.acksWaiting++;
    const prev = this.ackTail;
    const wait = durable ? (prev ? Promise.all([prev, durable]) : durable) : prev!;
    const tail: Promise<void> = wait.then(
      () => this.ackDone(ok, tail, after),
      () => this.ackDone(failed, tail),
    );
    this.ackTail = tail;
  }

  private ackDone(buf: Buffer | undefined, tail: Promise<void>, after?: () => void): void {
    this.acksWaiting--;
    if (this.ackTail === tail) this.ackTail = undefined;
    if (buf && this.state !== 'closed') {
      this.write(buf);
      // This runs in a promise callback: a throw would reject `tail` with no one to handle it, and
      // an unhandled rejection ends the process. It ends this connection instead.
      try {
        after?.();
      } catch (err) {
        this.fail(err);
      }
    }
  }

  // -- input ----------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    this.lastRead = Date.now();
    this.core.stats.bytesReceived += chunk.length;
    this.endpoint.bytesIn += chunk.length;
    this.framer.push(chunk);
    this.process();
  };

  private readonly onDrain = (): void => {
    this.session?.drained();
  };

  private process(): void {
    const f = this.framer;
    try {
      while (!this.paused && this.state !== 'closed' && f.next()) {
        this.core.stats.mqttPacketsIn[f.type]!++;
        if (this.state === 'awaiting-connect') {
          if (f.type !== PacketType.CONNECT) {
            // [MQTT-3.1.0-1]: the first packet must be CONNECT; nothing to answer.
            this.end(undefined, `first packet was type ${f.type}, not CONNECT`, true);
            return;
          }
          this.state = 'connecting';
          const packet = decodeConnect(f.body, f.bodyStart, f.bodyEnd, f.flags, (v) => (this.version = v));
          this.pause();
          handleConnect(this, packet).then(
            () => this.resume(),
            (err: unknown) => this.fail(err),
          );
          return;
        }
        this.dispatch(decodePacket(f.type, f.flags, f.body, f.bodyStart, f.bodyEnd, this.version));
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private dispatch(p: ClientPacket): void {
    const session = this.session!;
    switch (p.type) {
      case PacketType.PUBLISH:
        this.msgsIn++;
        // limits.publishRate over: v5 0x96 Message rate too high (3.1.1 has no code and is just closed), or reading pauses.
        if (this.publishRate?.take(this.pauseForRate, this.resumeAfterRate) === 'disconnect') {
          throw new MqttError(ReasonCode.MessageRateTooHigh, `more than ${this.settings.publishRate} PUBLISH a second`);
        }
        handlePublish(this, session, p);
        break;
      case PacketType.PUBACK:
        if (this.core.tracing.on) this.trace('ack', undefined, { packet: 'PUBACK', packetId: p.packetId, code: p.reasonCode });
        // An error reason code (v5) refuses the message: a queue dead-letters it, as for PUBREC below.
        if (p.reasonCode >= 0x80) session.rejected(p.packetId);
        // An unknown id is tolerated: after a takeover the client may ack what the old connection sent.
        else session.acked(p.packetId);
        break;
      case PacketType.PUBCOMP:
        if (this.core.tracing.on) this.trace('ack', undefined, { packet: 'PUBCOMP', packetId: p.packetId });
        session.acked(p.packetId);
        break;
      case PacketType.PUBREC:
        if (this.core.tracing.on) this.trace('ack', undefined, { packet: 'PUBREC', packetId: p.packetId, code: p.reasonCode });
        if (p.reasonCode >= 0x80) session.rejected(p.packetId);
        else if (!session.received(p.packetId)) {
          this.write(encodeAck(PacketType.PUBREL, p.packetId, this.version, ReasonCode.PacketIdentifierNotFound));
        }
        break;
      case PacketType.PUBREL:
        handlePubrel(this, session, p.packetId);
        break;
      case PacketType.SUBSCRIBE:
        handleSubscribe(this, session, p);
        break;
      case PacketType.UNSUBSCRIBE:
        handleUnsubscribe(this, session, p);
        break;
      case PacketType.PINGREQ:
        this.write(PINGRESP);
        break;
      case PacketType.DISCONNECT:
        handleDisconnect(this, p);
        break;
      case PacketType.AUTH:
        // No authentication method was accepted at CONNECT, so AUTH is out of place [MQTT-4.12.0-1].
        throw new MqttError(ReasonCode.ProtocolError, 'AUTH without an authentication method');
      case PacketType.CONNECT:
        throw new MqttError(ReasonCode.ProtocolError, 'second CONNECT');
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
      protocol: 'mqtt',
      waiting: this.output.waiting,
      reason: `nothing read for ${this.settings.drainTimeoutMs / 1000} s with the output buffer full`,
    });
    // It would not read a DISCONNECT either; what waits for it is dropped with the socket.
    this.end(undefined, 'slow consumer', true);
    this.transport.stream.destroy();
  };

  private resume(): void {
    if (this.state === 'closed') return;
    this.paused = false;
    this.transport.stream.resume();
    this.process();
  }

  // -- lifecycle ------------------------------------------------------------------------------

  /** Called by handleConnect once CONNACK is written and the session attached. */
  opened(session: Session, keepAliveSeconds: number): void {
    this.session = session;
    this.state = 'open';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.keepAliveMs = keepAliveSeconds * 1000;
    this.lastRead = Date.now();
    if (this.keepAliveMs > 0) this.armKeepAlive(this.keepAliveMs * 1.5);
    this.aliasesOut = this.version === 5 && this.clientTopicAliasMaximum > 0 ? new Map() : undefined;
    if (this.settings.publishRate > 0) this.publishRate = new PublishRateLimit(this.settings, this.core.stats, this.log, { clientId: this.clientId });
    this.log = this.log.child({ clientId: this.clientId });
  }

  /** [MQTT-3.1.2-24]: 1.5 x the keep alive without a packet ends the connection. */
  private armKeepAlive(ms: number): void {
    this.timer = setTimeout(() => {
      const limit = this.keepAliveMs * 1.5;
      const idle = Date.now() - this.lastRead;
      if (idle >= limit) this.end(ReasonCode.KeepAliveTimeout, 'keep alive timeout', true);
      else this.armKeepAlive(limit - idle);
    }, ms);
    this.timer.unref();
  }

  /** Ends the connection because of `err` (an MqttError, or a bug: then Unspecified error). */
  fail(err: unknown): void {
    if (err instanceof MqttError) {
      this.core.stats.protocolErrors++;
      if (err.code === ReasonCode.PacketTooLarge) this.core.stats.packetsTooLarge++;
      this.end(err.code, err.message, true);
      return;
    }
    this.log.error('internal error', { clientId: this.clientId, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    this.end(ReasonCode.UnspecifiedError, 'internal error', true);
  }

  /**
   * The one way out. `code`: the reason to tell a v5 client (CONNACK before the session exists,
   * DISCONNECT after); `abnormal`: whether the will is published.
   */
  end(code: number | undefined, why: string, abnormal: boolean, discardWill = !abnormal, expiryInterval?: number): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    const stream = this.transport.stream;
    if (this.state === 'connecting' && code === ReasonCode.UnsupportedProtocolVersion) this.endpoint.reject('unsupported_protocol');
    if (code !== undefined && !stream.destroyed) {
      if (wasOpen && this.version === 5) this.write(encodeDisconnect(code, this.requestProblemInfo ? why : undefined));
      else if (this.state === 'connecting') {
        // Errors before CONNACK are answered with CONNACK where the protocol has a code for them.
        if (this.version === 5) this.write(encodeConnack(5, false, code));
        else if (code === ReasonCode.UnsupportedProtocolVersion) this.write(encodeConnack(4, false, 1));
      }
    }
    this.output.flush();
    this.output.close();
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.publishRate?.close();
    const level = code === undefined || code < 0x80 || code === ReasonCode.SessionTakenOver || code === ReasonCode.ServerShuttingDown ? 'info' : 'warn';
    if (wasOpen || code !== undefined) {
      this.log[level]('client disconnected', {
        ...(wasOpen ? { evt: 'client.disconnected', closeReason: this.closeKind ?? closeKindOf(code), peer: this.transport.remoteAddress, protocol: 'mqtt', username: this.identity?.username } : {}),
        clientId: this.clientId,
        reason: why,
        ...(code !== undefined ? { code: reasonName(code) } : {}),
      });
    }
    if (this.core.tracing.on) this.trace('disconnect', undefined, { reason: why, ...(code !== undefined ? { code: reasonName(code) } : {}), closeReason: this.closeKind ?? closeKindOf(code) });
    if (this.client) this.core.presence.disconnected(this.client, this.closeKind ?? closeKindOf(code));
    const session = this.session;
    if (session) {
      this.core.sessions.disconnect(session, this, {
        discardWill,
        ...(expiryInterval !== undefined ? { expiryInterval } : {}),
      });
    }
    stream.end();
    // A peer that never reads must not keep the socket (and its buffers) forever.
    // Cleared at the close: until it fires, the timer would hold the connection and its buffers.
    if (!stream.destroyed) {
      const kill = setTimeout(() => stream.destroy(), 2000).unref();
      stream.once('close', () => clearTimeout(kill));
    }
    this.resolveClosed();
  }
}
