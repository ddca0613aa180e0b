/**
 * Server-sent events (text/event-stream) for `/api/v1/stream` and trace tails. Written for
 * fetch() + ReadableStream readers as much as for EventSource: the headers go out at once with a
 * first comment, so `await fetch()` resolves without waiting for the first event; a comment every
 * 15 s keeps proxies and idle timers from closing the stream.
 *
 * A reader that does not keep up is dropped once more than `maxBuffered` bytes wait for it (a
 * dashboard tab left in the background must not grow the broker's memory); it reconnects and
 * starts afresh. Every open stream is ended when the broker stops.
 */
import type { ServerResponse } from 'node:http';

export interface SseOptions {
  /** Bytes allowed to wait in the socket buffer before the reader is dropped (default 1 MiB). */
  readonly maxBuffered?: number;
  /** Keep-alive comment interval in ms (default 15 s). */
  readonly keepAliveMs?: number;
  /** `retry:` sent first: how long EventSource waits before reconnecting, in ms. */
  readonly retryMs?: number;
}

export class SseStream {
  private closedFlag = false;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly closeHandlers: Array<() => void> = [];
  private readonly maxBuffered: number;

  constructor(
    private readonly res: ServerResponse,
    opts: SseOptions = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 1 << 20;
    res.socket?.setNoDelay(true);
    res.socket?.setTimeout(0);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // nginx and similar proxies would otherwise hold events back in their buffer.
      'X-Accel-Buffering': 'no',
    });
    res.write(`${opts.retryMs !== undefined ? `retry: ${opts.retryMs}\n` : ''}: connected\n\n`);
    this.keepAlive = setInterval(() => this.comment('keep-alive'), opts.keepAliveMs ?? 15_000);
    this.keepAlive.unref();
    res.on('close', () => this.finish());
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Sends one event. `data` that is not a string is sent as JSON; a multi-line string becomes
   * several `data:` lines, as the format requires. Returns false once the stream is closed.
   */
  send(event: string | undefined, data: unknown, id?: string | number): boolean {
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    let frame = '';
    if (id !== undefined) frame += `id: ${id}\n`;
    if (event !== undefined) frame += `event: ${event}\n`;
    for (const line of text.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
    return this.write(frame + '\n');
  }

  comment(text: string): boolean {
    return this.write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
  }

  /** Called once when the stream ends, whoever ended it. */
  onClose(handler: () => void): void {
    if (this.closedFlag) handler();
    else this.closeHandlers.push(handler);
  }

  close(): void {
    if (this.closedFlag) return;
    this.res.end();
    this.finish();
  }

  private write(chunk: string): boolean {
    if (this.closedFlag) return false;
    if (this.res.writableLength > this.maxBuffered) {
      // Too far behind: drop it rather than buffer without end.
      this.res.destroy();
      this.finish();
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  private finish(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearInterval(this.keepAlive);
    for (const h of this.closeHandlers.splice(0)) {
      try {
        h();
      } catch {
        // a close handler's failure must not keep the others from running
      }
    }
  }
}
