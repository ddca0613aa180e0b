/**
 * A raw WebSocket client (the `ws` library) for the transport's own rules: which subprotocol was
 * chosen, how bytes are cut into messages, text or binary messages, ping/pong and close codes.
 * MQTT packets that arrive are parsed with mqtt-packet, whatever the message boundaries.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterAll } from 'vitest';
import WebSocket, { type ClientOptions } from 'ws';
import { until } from '../helpers/mqtt.js';

const open = new Set<WebSocket>();
afterAll(() => {
  for (const ws of open) ws.terminate();
});

export interface Refusal {
  readonly status: number;
  readonly body: string;
}

/** Tries the opening handshake; resolves with the HTTP refusal when the server answers other than 101. */
export function refusal(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<Refusal | 'opened'> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    open.add(ws);
    ws.on('open', () => {
      ws.terminate();
      resolve('opened');
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

export class WsRaw {
  readonly messages: Array<{ data: Buffer; binary: boolean }> = [];
  readonly packets: Packet[] = [];
  closeCode: number | undefined;
  closeReason = '';
  pongs = 0;
  private readonly parser = mqttPacket.parser({ protocolVersion: 5 });

  private constructor(readonly ws: WebSocket) {
    this.parser.on('packet', (p: Packet) => this.packets.push(p));
    this.parser.on('error', () => undefined);
    ws.on('message', (data, binary) => {
      const buf = data as Buffer;
      this.messages.push({ data: buf, binary });
      this.parser.parse(buf);
    });
    ws.on('pong', () => this.pongs++);
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    ws.on('error', () => undefined);
  }

  static connect(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WsRaw> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      open.add(ws);
      ws.once('open', () => resolve(new WsRaw(ws)));
      ws.once('error', reject);
    });
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  /** Sends one WebSocket message (binary unless `text`). */
  send(data: Buffer | string, text = false): void {
    this.ws.send(data, { binary: !text });
  }

  /** An MQTT packet encoded with mqtt-packet (v5 unless said). */
  static encode(p: Packet, protocolVersion: 4 | 5 = 5): Buffer {
    return mqttPacket.generate(p, { protocolVersion });
  }

  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 3000): Promise<Extract<Packet, { cmd: C }>> {
    await until(() => this.packets.some((p) => p.cmd === cmd), timeoutMs, `${cmd} over WebSocket`);
    const i = this.packets.findIndex((p) => p.cmd === cmd);
    return this.packets.splice(0, i + 1)[i] as Extract<Packet, { cmd: C }>;
  }

  async closed(timeoutMs = 3000): Promise<number> {
    await until(() => this.closeCode !== undefined, timeoutMs, 'WebSocket closed');
    return this.closeCode!;
  }
}
