/**
 * Listeners: connections accepted on each configured address and handed to their protocol's adapter
 * as a Transport (a Duplex of bytes): TCP, TLS (its own certificate, CA and client-certificate rules
 * per listener), and HTTP(S), whose WebSocket endpoints turn each WebSocket into such a stream
 * (websocket.ts). Adapters cannot tell which one they are on, except for `certIdentity`.
 *
 * Binding and TLS-material errors name the listener and the port, so a broker never starts
 * half-open. A failed TLS handshake (wrong CA, expired or missing client certificate, plain TCP to
 * a TLS port) is logged with the peer address and counted in `tlsHandshakeFailures`; it touches no
 * other connection.
 *
 * Every accepted socket passes the listener's gate (admission.ts: connection limits, connect
 * rate) before the server's own handlers see it: a refused one gets no TLS handshake, no HTTP
 * parser, no adapter. Plain MQTT and STOMP listeners answer it in their protocol when that is
 * cheap (CONNACK 0x9F / 0x97, an ERROR frame), plain HTTP with 503, TLS listeners just close.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../core/log.js';
import type { Stats } from '../core/stats.js';
import type { Connection, Refuse, Transport } from '../core/transport.js';
import { refusalKind, type Admission, type ListenerGate } from './admission.js';
import type { ListenerConfig, ListenerLimits } from './config.js';
import { ListenerTls, TlsMaterialError } from './tls.js';
import { WebSocketGateway } from './websocket.js';

export type ListenerSpec = ListenerConfig;

export type Accept = (t: Transport) => Connection;

export interface ListenerContext {
  readonly adapters: { readonly mqtt: Accept; readonly stomp: Accept };
  readonly log: Logger;
  readonly stats: Stats;
  /** Time a client has to complete the TLS handshake. */
  readonly handshakeTimeoutMs: number;
  /** Largest WebSocket message accepted per protocol. */
  readonly maxMessage: { readonly mqtt: number; readonly stomp: number };
  /** The broker-wide connection count and limit; each listener gets its gate from it. */
  readonly admission: Admission;
  readonly limitsOf: (spec: ListenerSpec) => ListenerLimits;
  /** How each protocol says no to a connection its listener does not admit (plain TCP only). */
  readonly refusers: { readonly mqtt: Refuse; readonly stomp: Refuse };
  /**
   * Plain HTTP requests on http listeners (the admin API, health, metrics, dashboard: HttpApp).
   * Absent: only WebSocket upgrades are served (`admin.bind` moved the app to its own listener).
   */
  readonly http?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Refused connections answered at once per listener; past that, refused ones are just closed. */
const MAX_ANSWERING = 32;
/** The most a refused connection may take to be told. */
const REFUSAL_DEADLINE_MS = 1000;

/**
 * Puts `admit` in front of the server's own 'connection' handlers (TLS handshake, HTTP parser,
 * the adapter): they run only for sockets it admits. They are all registered when the server is
 * made, so taking them out and calling them from one gate keeps their order.
 */
function gateConnections(server: net.Server, admit: (socket: net.Socket) => boolean): void {
  const inner = server.listeners('connection') as Array<(socket: net.Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    if (!admit(socket)) return;
    for (const handler of inner) handler.call(server, socket);
  });
}

export class ListenerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenerError';
  }
}

function label(spec: ListenerSpec): string {
  return `listener ${spec.name} (${spec.protocol}${spec.tls ? ' over TLS' : ''}, port ${spec.port})`;
}

/** Reads and checks a listener's TLS material; throws ListenerError naming the listener, key and file. */
export function prepareTls(spec: ListenerSpec, log: Logger): ListenerTls | undefined {
  if (!spec.tls) return undefined;
  try {
    return new ListenerTls(spec.name, spec.tls, log);
  } catch (err) {
    if (err instanceof TlsMaterialError) throw new ListenerError(`${label(spec)}: ${err.message}`);
    throw err;
  }
}

function remoteOf(socket: net.Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

export class RunningListener {
  /** Raw sockets, so that close() can end those still in a handshake or idle HTTP keep-alive. */
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly spec: ListenerSpec,
    private readonly server: net.Server,
    private readonly tls: ListenerTls | undefined,
    readonly gateway: WebSocketGateway | undefined,
    /** Connection limits and connect rate of this listener. */
    readonly gate: ListenerGate,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.spec.port;
  }

  /** Bound and accepting (health: a configured listener that is not is a failed check). */
  get running(): boolean {
    return this.server.listening;
  }

  get host(): string {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.address : this.spec.host;
  }

  /** Certificate in use (TLS listeners). */
  certificate(): Record<string, string> | undefined {
    return this.tls?.describe();
  }

  /** The listener's TLS material and rules (reload prepares and installs through it). */
  get tlsMaterial(): ListenerTls | undefined {
    return this.tls;
  }

  /** Reads the TLS files again (SIGHUP); true when new material is in use. */
  reloadTls(): boolean {
    return this.tls?.reload(true) ?? false;
  }

  /**
   * Stops accepting; connections handed to adapters are the broker's to close. What was never
   * handed over (a handshake in progress, an idle HTTP connection) is ended after a grace period.
   */
  close(): Promise<void> {
    this.tls?.close();
    this.gate.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // http and https servers: idle keep-alive connections would hold close() up.
      if (this.server instanceof http.Server || this.server instanceof https.Server) this.server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 3000);
      timer.unref();
    });
  }
}

export async function listen(spec: ListenerSpec, ctx: ListenerContext, tlsMaterial?: ListenerTls): Promise<RunningListener> {
  const { log, stats } = ctx;
  const handshakeFailed = (socket: net.Socket, reason: string): void => {
    stats.tlsHandshakeFailures++;
    stats.reject(spec.name, 'tls_handshake');
    log.warn('TLS handshake failed', { listener: spec.name, remote: remoteOf(socket), reason });
  };
  /** After a TLS handshake: the listener's client-certificate rules; the identity, or refusal. */
  const verified = (socket: tls.TLSSocket): { identity?: string } | undefined => {
    const check = tlsMaterial!.check(socket);
    if (!check.ok) {
      handshakeFailed(socket, check.reason);
      socket.destroy();
      return undefined;
    }
    if (check.identity !== undefined) log.info('client certificate verified', { listener: spec.name, remote: remoteOf(socket), identity: check.identity });
    return check.identity !== undefined ? { identity: check.identity } : {};
  };
  // The bound port (spec.port may be 0): set once listening, before any connection is handed over.
  let boundPort = spec.port;
  const hand = (socket: net.Socket, accept: Accept, identity?: string): void => {
    const transport: Transport = {
      stream: socket,
      listener: spec.name,
      remoteAddress: remoteOf(socket),
      localPort: boundPort,
      ...(identity !== undefined ? { certIdentity: identity } : {}),
    };
    try {
      accept(transport);
    } catch (err) {
      log.error('adapter failed to accept a connection', { listener: spec.name, error: String(err) });
      socket.destroy();
    }
  };

  let server: net.Server;
  let gateway: WebSocketGateway | undefined;
  if (spec.protocol === 'http') {
    const identities = new WeakMap<net.Socket, string>();
    if (tlsMaterial) {
      const s = https.createServer({ ...tlsMaterial.serverOptions(ctx.handshakeTimeoutMs), noDelay: true });
      s.on('secureConnection', (socket: tls.TLSSocket) => {
        const v = verified(socket);
        if (v?.identity !== undefined) identities.set(socket, v.identity);
      });
      server = s;
    } else {
      server = http.createServer({ noDelay: true });
    }
    if (spec.websocket) {
      gateway = new WebSocketGateway(
        spec.name,
        spec.websocket,
        {
          mqtt: { protocol: 'mqtt', maxPayload: ctx.maxMessage.mqtt, accept: ctx.adapters.mqtt },
          stomp: { protocol: 'stomp', maxPayload: ctx.maxMessage.stomp, accept: ctx.adapters.stomp },
        },
        log,
        stats,
        (socket) => identities.get(socket),
        ctx.http,
      );
      gateway.attach(server as http.Server);
    } else {
      // The admin listener (`admin.bind`): HTTP only, no WebSocket endpoints.
      const handler = ctx.http;
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        if (handler) return handler(req, res);
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      });
      server.on('upgrade', (_req: IncomingMessage, socket: net.Socket) => {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      });
    }
  } else {
    const accept = ctx.adapters[spec.protocol];
    server = tlsMaterial
      ? tls.createServer({ ...tlsMaterial.serverOptions(ctx.handshakeTimeoutMs), noDelay: true }, (socket) => {
          const v = verified(socket);
          if (v) hand(socket, accept, v.identity);
        })
      : net.createServer({ noDelay: true }, (socket) => hand(socket, accept));
  }
  if (spec.protocol === 'http') {
    // A connection that makes no request (no WebSocket upgrade) within the connect timeout is
    // closed, as MQTT and STOMP connections are without a CONNECT. Its first request ends the
    // clock: keep-alive is the HTTP server's business then, and ws clears it on upgrade.
    // Registered before the gate goes in front of 'connection': it runs for admitted sockets only.
    server.on(tlsMaterial ? 'secureConnection' : 'connection', (socket: net.Socket) => {
      socket.setTimeout(ctx.handshakeTimeoutMs);
      socket.once('timeout', () => {
        ctx.stats.connectTimeouts++;
        log.info('connect timeout', { listener: spec.name, remote: remoteOf(socket), reason: `no request within ${ctx.handshakeTimeoutMs / 1000} s` });
        socket.destroy();
      });
    });
    server.prependListener('request', (req: http.IncomingMessage) => req.socket.setTimeout(0));
  }
  const gate = ctx.admission.gate(spec.name, ctx.limitsOf(spec));
  gateConnections(server, (socket) => {
    const refusal = gate.admit(socket);
    if (refusal === undefined) return true;
    socket.on('error', () => undefined);
    // Telling costs a little (a few bytes read or written); under a flood, refused ones just close.
    if (tlsMaterial || gate.answering >= MAX_ANSWERING) {
      socket.destroy();
      return false;
    }
    gate.answering++;
    socket.once('close', () => gate.answering--);
    const why = refusalKind(refusal);
    if (spec.protocol === 'http') {
      const body = why === 'rate' ? 'connection rate exceeded; try again later\n' : 'connection limit reached; try again later\n';
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      setTimeout(() => socket.destroy(), REFUSAL_DEADLINE_MS).unref();
    } else {
      ctx.refusers[spec.protocol](socket, why, REFUSAL_DEADLINE_MS);
    }
    return false;
  });
  if (tlsMaterial) {
    server.on('tlsClientError', (err: Error & { reason?: string }, socket: tls.TLSSocket) => {
      // OpenSSL's `reason` ("wrong version number", "tlsv1 alert unknown ca") without its file:line.
      handshakeFailed(socket, err.reason ?? err.message.trim());
      // Node leaves the socket open after a handshake timeout (ERR_TLS_HANDSHAKE_TIMEOUT): a peer
      // that never sent a ClientHello would keep it for good.
      socket.destroy();
    });
    tlsMaterial.attach(server as tls.Server);
  }
  server.on('error', (err) => log.error('listener error', { listener: spec.name, error: err.message }));
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const what =
          err.code === 'EADDRINUSE'
            ? `port ${spec.port} on ${spec.host} is already in use`
            : err.code === 'EACCES'
              ? `no permission to bind port ${spec.port} on ${spec.host}`
              : err.code === 'EADDRNOTAVAIL'
                ? `address ${spec.host} is not available on this machine`
                : err.message;
        reject(new ListenerError(`${label(spec)}: ${what}`));
      };
      server.once('error', onError);
      server.listen(spec.port, spec.host, () => {
        server.off('error', onError);
        const a = server.address();
        if (typeof a === 'object' && a) boundPort = a.port;
        resolve();
      });
    });
  } catch (err) {
    tlsMaterial?.close();
    throw err;
  }
  return new RunningListener(spec, server, tlsMaterial, gateway, gate);
}
