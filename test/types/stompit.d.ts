// The parts of stompit 1.0.0 (it ships no types) that the STOMP tests use.
declare module 'stompit' {
  import type { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';
  import type { Readable, Writable } from 'node:stream';

  namespace stompit {
    type Headers = Record<string, string | number>;

    interface ConnectOptions {
      host?: string;
      port?: number;
      timeout?: number;
      connectHeaders?: Headers;
    }

    interface IncomingFrame extends Readable {
      readonly command: string;
      readonly headers: Record<string, string>;
      readString(encoding: string, callback: (err: Error | null, body?: string) => void): void;
    }

    interface SendOptions {
      onReceipt?: () => void;
      onError?: (err: Error) => void;
    }

    interface Subscription {
      getId(): string | number;
      unsubscribe(headers?: Headers): void;
    }

    interface Transaction {
      readonly id: string | number;
      send(headers: Headers, options?: SendOptions): Writable;
      commit(options?: SendOptions): void;
      abort(options?: SendOptions): void;
    }

    class Client extends EventEmitter {
      send(headers: Headers | string, options?: SendOptions): Writable;
      sendFrame(command: string, headers: Headers, options?: SendOptions): Writable;
      subscribe(headers: Headers | string, onMessage: (err: Error | null, message: IncomingFrame) => void): Subscription;
      ack(message: IncomingFrame, headers?: Headers, options?: SendOptions, callback?: (err?: Error) => void): void;
      nack(message: IncomingFrame, headers?: Headers, options?: SendOptions, callback?: (err?: Error) => void): void;
      begin(headers?: Headers | string): Transaction;
      disconnect(callback?: (err: Error | null) => void): void;
      destroy(err?: Error): void;
      getTransportSocket(): Socket;
      setCommandHandler(command: string, handler: (this: Client, frame: IncomingFrame) => void): void;
    }

    function connect(options: ConnectOptions, callback: (err: Error | null, client: Client) => void): Client;
  }
  export = stompit;
}
