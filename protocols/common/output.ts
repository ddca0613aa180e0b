/**
 * Output: what a connection writes during one event-loop turn, gathered and written to its stream
 * once, when the turn's I/O is done (setImmediate). A burst of small packets or frames then costs
 * one write (one syscall, one TCP segment where it fits) instead of one each. Shared by the
 * protocol adapters; it knows bytes and streams, no protocol.
 */
import type { Duplex } from 'node:stream';

let dirty: Output[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = [];
  for (const o of list) o.flush();
}

export class Output {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private queued = false;

  constructor(
    private readonly stream: Duplex,
    /** Bytes waiting (here and in the stream) above which the connection counts as congested. */
    private readonly limit: number,
    /** Told how many bytes each flush hands to the stream (byte counters). */
    private readonly onSent: (bytes: number) => void = () => undefined,
  ) {}

  /** Below its buffer limit: the connection may take more. */
  get writable(): boolean {
    return this.bytes + this.stream.writableLength < this.limit;
  }

  write(buf: Buffer): void {
    this.chunks.push(buf);
    this.bytes += buf.length;
    if (!this.queued) {
      this.queued = true;
      dirty.push(this);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushAll);
      }
    }
  }

  /** Writes what is gathered now (also used right before closing). */
  flush(): void {
    this.queued = false;
    const n = this.chunks.length;
    if (n === 0) return;
    const data = n === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    this.onSent(this.bytes);
    this.chunks = [];
    this.bytes = 0;
    if (!this.stream.destroyed) this.stream.write(data);
  }

  /** Drops what is gathered (the connection is gone). */
  discard(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
