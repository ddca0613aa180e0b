/**
 * Listeners: sockets accepted on each configured address and handed to their protocol's adapter as
 * a Transport. Binding errors name the listener and the port, so a broker never starts half-open.
 */
import net from 'node:net';
import type { Logger } from '../core/log.js';
import type { Connection, Transport } from '../core/transport.js';

export interface ListenerSpec {
  readonly name: string;
  readonly protocol: 'mqtt' | 'stomp';
  readonly host: string;
  readonly port: number;
}

export class ListenerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenerError';
  }
}

export class RunningListener {
  constructor(
    readonly spec: ListenerSpec,
    private readonly server: net.Server,
  ) {}

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.spec.port;
  }

  get host(): string {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.address : this.spec.host;
  }

  /** Stops accepting; connections already open are the broker's to close. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export async function listen(spec: ListenerSpec, accept: (t: Transport) => Connection, log: Logger): Promise<RunningListener> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    const transport: Transport = {
      stream: socket,
      listener: spec.name,
      remoteAddress: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
    };
    try {
      accept(transport);
    } catch (err) {
      log.error('adapter failed to accept a connection', { listener: spec.name, error: String(err) });
      socket.destroy();
    }
  });
  server.on('error', (err) => log.error('listener error', { listener: spec.name, error: err.message }));
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
      reject(new ListenerError(`listener ${spec.name} (${spec.protocol}): ${what}`));
    };
    server.once('error', onError);
    server.listen(spec.port, spec.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return new RunningListener(spec, server);
}
