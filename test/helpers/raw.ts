/**
 * RawClient: a plain TCP socket that sends bytes or mqtt-packet-encoded packets and reads packets
 * back with mqtt-packet's parser. For the wire rules real clients will not break on purpose.
 */
import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export class RawClient {
  readonly packets: Packet[] = [];
  closed = false;
  private waiters: Array<() => void> = [];
  private readonly parser;

  private constructor(
    readonly socket: net.Socket,
    readonly version: 3 | 4 | 5,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      this.wake();
    });
    this.parser.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.parser.parse(d));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, version: 3 | 4 | 5 = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s, version)));
      s.once('error', reject);
    });
  }

  send(p: Packet | Buffer): void {
    this.socket.write(Buffer.isBuffer(p) ? p : mqttPacket.generate(p, { protocolVersion: this.version }));
  }

  /** Sends CONNECT and waits for CONNACK. */
  async handshake(opts: Partial<mqttPacket.IConnectPacket> = {}): Promise<mqttPacket.IConnackPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version as 4 | 5, clean: true, clientId: 'raw-' + Math.random().toString(16).slice(2), keepalive: 60, ...opts });
    return (await this.next('connack')) as mqttPacket.IConnackPacket;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for the next packet of `cmd` (removing it and everything before it from the list). */
  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 3000): Promise<Extract<Packet, { cmd: C }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return this.packets.splice(0, i + 1)[i] as Extract<Packet, { cmd: C }>;
      if (this.closed) throw new Error(`connection closed while waiting for ${cmd}; got ${this.packets.map((p) => p.cmd).join(',') || 'nothing'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${cmd}; got ${this.packets.map((p) => p.cmd).join(',') || 'nothing'}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the broker closes the connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Packets received within `ms` (without waiting for a specific one). */
  async settle(ms = 200): Promise<Packet[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.packets.splice(0);
  }

  end(): void {
    this.socket.destroy();
  }
}
