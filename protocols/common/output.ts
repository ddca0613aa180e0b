/**
 * Output: what a connection writes during one event-loop turn, gathered and written to its stream
 * once, when the turn's I/O is done (setImmediate). A burst of small packets or frames then costs
 * one write (one syscall, one TCP segment where it fits) instead of one each. Shared by the
 * protocol adapters; it knows bytes and streams, no protocol.
 *
 * It also watches for a peer that stopped reading (Aedes' `drainTimeout` lesson, NATS' write
 * deadline): once the stream buffers more than its high-water mark (the kernel's buffers are full),
 * a timer runs; if no write completed in the drain timeout (the stream's buffer did not shrink),
 * `onStalled` is told once and the connection closes. A slow reader that keeps taking bytes is not
 * stalled; senders never wait for either (past `limit`, the connection counts as congested).
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
  /** Bytes handed to the stream so far; minus its writableLength, the bytes it has written. */
  private handed = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  private writtenAtArm = 0;

  constructor(
    private readonly stream: Duplex,
    /** Bytes waiting (here and in the stream) above which the connection counts as congested. */
    private readonly limit: number,
    /** Told how many bytes each flush hands to the stream (byte counters). */
    private readonly onSent: (bytes: number) => void = () => undefined,
    /** ms the output may stay over its limit without a write completing; 0: forever. */
    private readonly drainTimeoutMs = 0,
    /** Called once when that time passes: the peer stopped reading. */
    private readonly onStalled: () => void = () => undefined,
  ) {}

  /** Bytes waiting to be written: gathered here and buffered in the stream. */
  get waiting(): number {
    return this.bytes + this.stream.writableLength;
  }

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
    if (this.stream.destroyed) return;
    const below = this.stream.write(data);
    this.handed += data.length;
    if (!below && this.stallTimer === undefined) this.watch();
  }

  private get written(): number {
    return this.handed - this.stream.writableLength;
  }

  /** Data waits in the stream: check back after the drain timeout whether any of it was written. */
  private watch(): void {
    if (this.drainTimeoutMs <= 0) return;
    this.writtenAtArm = this.written;
    this.stallTimer = setTimeout(this.check, this.drainTimeoutMs);
    this.stallTimer.unref();
  }

  private readonly check = (): void => {
    this.stallTimer = undefined;
    if (this.stream.destroyed || this.stream.writableLength === 0) return;
    if (this.written > this.writtenAtArm) this.watch(); // slow, but reading
    else this.onStalled();
  };

  /** The connection is ending: no more stall checks. */
  close(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  /** Drops what is gathered (the connection is gone). */
  discard(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
