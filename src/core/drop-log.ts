/**
 * DropLog: messages a client never gets because of a limit are logged per client and burst, not
 * per message. A burst starts with one warning naming the client and the reason; drops that follow
 * are summed; once a whole interval passes without a drop for that client, one line gives the
 * totals. The counters in Stats count every message; this keeps the log readable when a slow
 * consumer loses thousands a second (no silent drops, no log flood).
 *
 * One timer for all clients, running only while some burst is open.
 */
import type { Logger } from './log.js';
import type { Message } from './message.js';
import type { Tracing } from './tracing.js';

/**
 * queue-full: the session queue held `maxQueuedMessages`; queue-bytes: it held `maxQueuedBytes`;
 * socket-full: a QoS 0 message met a connection over its output buffer; too-large: the message
 * exceeds the client's Maximum Packet Size.
 */
export type DropReason = 'queue-full' | 'queue-bytes' | 'socket-full' | 'too-large';

interface Burst {
  readonly startedAt: number;
  total: number;
  /** Drops since the last tick; 0 at a tick ends the burst. */
  recent: number;
  readonly reasons: Partial<Record<DropReason, number>>;
}

export class DropLog {
  private readonly bursts = new Map<string, Burst>();
  private timer: NodeJS.Timeout | undefined;
  /** Running traces see every dropped message (the log sees bursts). */
  tracing: Tracing | undefined;

  constructor(
    private readonly log: Logger,
    /** Quiet time that ends a burst, in ms. */
    private readonly intervalMs = 10_000,
  ) {}

  dropped(clientId: string, reason: DropReason, count = 1, msg?: Message): void {
    if (this.tracing?.on) this.tracing.emit('drop', { clientId, topic: msg?.topic }, { reason, qos: msg?.qos, payload: msg?.payload });
    let b = this.bursts.get(clientId);
    if (!b) {
      b = { startedAt: Date.now(), total: 0, recent: 0, reasons: {} };
      this.bursts.set(clientId, b);
      this.log.warn('dropping messages for a client', { clientId, reason, note: `further drops are summed until none for ${this.intervalMs / 1000} s` });
      if (!this.timer) {
        this.timer = setInterval(this.tick, this.intervalMs);
        this.timer.unref();
      }
    }
    b.total += count;
    b.recent += count;
    b.reasons[reason] = (b.reasons[reason] ?? 0) + count;
  }

  /** Open bursts (tests, status). */
  get open(): number {
    return this.bursts.size;
  }

  private readonly tick = (): void => {
    for (const [clientId, b] of this.bursts) {
      if (b.recent > 0) b.recent = 0;
      else this.close(clientId, b);
    }
    if (this.bursts.size === 0) this.stop();
  };

  private close(clientId: string, b: Burst): void {
    this.bursts.delete(clientId);
    this.log.warn('messages dropped for a client', { clientId, dropped: b.total, ...b.reasons, seconds: Math.round((Date.now() - b.startedAt) / 1000) });
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Logs every open burst's totals now (broker stop). */
  flush(): void {
    for (const [clientId, b] of this.bursts) this.close(clientId, b);
    this.stop();
  }
}
