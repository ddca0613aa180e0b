/**
 * WebSocket as a transport: an HTTP(S) listener's upgrade requests on the MQTT and STOMP paths
 * become WebSocket connections (the `ws` library), and each connection becomes a Duplex byte stream
 * handed to the protocol adapter exactly like a TCP socket (as mochi-mqtt wraps a WebSocket as a
 * net.Conn). The adapters cannot tell: message boundaries mean nothing, so an MQTT packet split over
 * several WebSocket messages, or several packets in one, frame as they would on TCP.
 *
 * - Handshake: the path picks the endpoint (404 otherwise), the Origin header must be allowed when
 *   the listener lists origins (403), and a client that offers subprotocols must offer one of the
 *   endpoint's (400): `mqtt` and `mqttv3.1`; `v12.stomp`, `v11.stomp`, `v10.stomp`. A client that
 *   offers none at all is accepted (the protocol version is in CONNECT anyway), as EMQX does.
 * - MQTT goes in binary messages both ways; a text message closes with 1003 (unsupported data).
 * - STOMP is text: frames go out as text messages while the client sends text, as binary once it
 *   sends binary, and as binary whenever the bytes are not valid UTF-8 (a binary body), since a
 *   text message must be UTF-8.
 * - Why not ws's createWebSocketStream: it sends every chunk as binary and takes text messages like
 *   binary ones, so it could neither answer STOMP clients in text nor close /mqtt on text.
 * - Backpressure: a write completes when the bytes are on the socket, so the stream's
 *   `writableLength` counts everything not yet sent and 'drain' comes when it has been: the
 *   adapters' output limit applies to WebSocket clients as to TCP ones. Reading pauses the socket
 *   while the adapter is not reading.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Logger } from '../core/log.js';
import type { Stats } from '../core/stats.js';
import type { Connection, Transport } from '../core/transport.js';
import type { WebSocketConfig } from './config.js';

/** WebSocket close codes (RFC 6455, section 7.4.1). */
export const CloseCode = {
  Normal: 1000,
  UnsupportedData: 1003,
  InternalError: 1011,
} as const;

/** Subprotocols per endpoint, in the server's order of preference. */
export const SUBPROTOCOLS = {
  mqtt: ['mqtt', 'mqttv3.1'],
  stomp: ['v12.stomp', 'v11.stomp', 'v10.stomp'],
} as const;

type Protocol = keyof typeof SUBPROTOCOLS;

/**
 * One WebSocket connection as a Duplex of bytes. `textOut`: 'never' (MQTT) or 'mirror' (STOMP:
 * text while the client's last message was text).
 */
export class WebSocketStream extends Duplex {
  private clientSentText = true;
  private readonly onMessage = (raw: RawData, isBinary: boolean): void => {
    const data = raw as Buffer; // binaryType 'nodebuffer': fragments arrive joined
    if (!isBinary && this.mode === 'binary-only') {
      this.ws.close(CloseCode.UnsupportedData, 'MQTT over WebSocket takes binary messages only');
      this.destroy();
      return;
    }
    this.clientSentText = !isBinary;
    if (!this.push(data)) this.ws.pause();
  };

  constructor(
    private readonly ws: WebSocket,
    private readonly mode: 'binary-only' | 'mirror',
  ) {
    super();
    ws.on('message', this.onMessage);
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      done(new Error('WebSocket is closing'));
      return;
    }
    const binary = this.mode === 'binary-only' || !this.clientSentText || !isUtf8(chunk);
    // The callback runs once the frame is written to the socket: writableLength stays honest.
    this.ws.send(chunk, { binary }, (err) => done(err ?? null));
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.Normal);
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN) ws.close(err ? CloseCode.InternalError : CloseCode.Normal);
    if (ws.readyState !== WebSocket.CLOSED) {
      // A peer that never answers the closing handshake does not keep its socket.
      const t = setTimeout(() => ws.terminate(), 2000);
      t.unref();
      ws.once('close', () => clearTimeout(t));
    }
    done(err);
  }
}

export interface Endpoint {
  readonly protocol: Protocol;
  /** Largest WebSocket message accepted (ws closes with 1009 beyond it). */
  readonly maxPayload: number;
  readonly accept: (t: Transport) => Connection;
}

/** The WebSocket side of one http listener. */
export class WebSocketGateway {
  private readonly endpoints = new Map<string, { endpoint: Endpoint; server: WebSocketServer }>();

  constructor(
    private readonly listener: string,
    private readonly config: WebSocketConfig,
    endpoints: { readonly mqtt: Endpoint; readonly stomp: Endpoint },
    private readonly log: Logger,
    private readonly stats: Stats,
    /** Identity from the client certificate of a wss connection (the listener's TLS checks). */
    private readonly identityOf: (socket: Socket) => string | undefined,
    /** Plain HTTP requests (the HttpApp); absent: 404, or 426 on an endpoint path. */
    private readonly http?: (req: IncomingMessage, res: ServerResponse) => void,
  ) {
    for (const [path, endpoint] of [
      [config.mqttPath, endpoints.mqtt],
      [config.stompPath, endpoints.stomp],
    ] as const) {
      if (path === false) continue;
      const server = new WebSocketServer({
        noServer: true,
        perMessageDeflate: config.perMessageDeflate,
        maxPayload: endpoint.maxPayload,
        clientTracking: false,
        handleProtocols: (offered) => pickSubprotocol(endpoint.protocol, offered) ?? false,
      });
      this.endpoints.set(path, { endpoint, server });
    }
  }

  /** Routes the http server's requests and upgrades here. */
  attach(server: HttpServer): void {
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.request(req, res));
  }

  paths(): string[] {
    return [...this.endpoints.keys()];
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const path = pathOf(req);
    const refuse = (status: number, reason: string): void => {
      this.stats.connectionsRejected++;
      // A refused Origin is a matter of rights; a wrong path or subprotocol, of protocol.
      this.stats.reject(this.listener, status === 403 ? 'not_authorized' : 'unsupported_protocol');
      this.log.info('WebSocket upgrade refused', { listener: this.listener, remote: remoteAddress, path, status, reason });
      const body = `${reason}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const hit = this.endpoints.get(path);
    if (!hit) return refuse(404, `no WebSocket endpoint at ${path}; endpoints: ${this.paths().join(', ')}`);
    const origin = req.headers.origin;
    const allowed = this.config.allowedOrigins;
    if (origin !== undefined && allowed.length > 0 && !allowed.includes(origin.toLowerCase())) {
      return refuse(403, `origin ${origin} is not allowed`);
    }
    const offered = req.headers['sec-websocket-protocol'];
    const protocol = hit.endpoint.protocol;
    if (offered !== undefined && pickSubprotocol(protocol, parseList(offered)) === undefined) {
      return refuse(400, `no supported subprotocol offered (${offered}); ${path} speaks ${SUBPROTOCOLS[protocol].join(', ')}`);
    }
    socket.on('error', () => undefined); // a reset during the handshake is the client's business
    hit.server.handleUpgrade(req, socket, head, (ws) => {
      const stream = new WebSocketStream(ws, protocol === 'mqtt' ? 'binary-only' : 'mirror');
      const identity = this.identityOf(socket);
      const transport: Transport = {
        stream,
        listener: this.listener,
        remoteAddress,
        localPort: socket.localPort ?? 0,
        ...(identity !== undefined ? { certIdentity: identity } : {}),
      };
      try {
        hit.endpoint.accept(transport);
      } catch (err) {
        this.log.error('adapter failed to accept a connection', { listener: this.listener, error: String(err) });
        stream.destroy();
      }
    });
  }

  /**
   * Plain HTTP requests: an endpoint path answers 426 (a WebSocket client is needed); anything
   * else goes to the HttpApp when this listener serves it (no `admin.bind`), else 404.
   */
  private request(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req);
    const ws = this.endpoints.has(path);
    if (!ws && this.http) return this.http(req, res);
    res.writeHead(ws ? 426 : 404, { 'Content-Type': 'text/plain; charset=utf-8', ...(ws ? { Upgrade: 'websocket' } : {}) });
    res.end(ws ? `${path} is a WebSocket endpoint: connect with a WebSocket client\n` : `not found; WebSocket endpoints: ${this.paths().join(', ')}\n`);
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function parseList(header: string): Set<string> {
  return new Set(
    header
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  );
}

/**
 * MQTT: the client's first supported choice (`mqtt` for 3.1.1 and 5, `mqttv3.1` for 3.1). STOMP:
 * the highest version the client offers; the version is negotiated again in CONNECT.
 */
function pickSubprotocol(protocol: Protocol, offered: ReadonlySet<string>): string | undefined {
  const supported: readonly string[] = SUBPROTOCOLS[protocol];
  if (protocol === 'mqtt') return [...offered].find((p) => supported.includes(p));
  return supported.find((p) => offered.has(p));
}
