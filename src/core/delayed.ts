/**
 * DelayedMessages: messages held back until their time (MQTT `$delayed/<seconds>/<topic>` as in
 * EMQX, STOMP `x-delay` in ms as in RabbitMQ's delayed-message exchange), kept durably so that a
 * restart releases them on time. One timer, for the earliest; entries sorted by due time.
 */
import type { Message } from './message.js';
import type { Persistence } from './persistence.js';

interface Held {
  readonly seq: number;
  readonly message: Message;
  readonly dueAt: number;
}

/** setTimeout caps at 2^31-1 ms; longer delays re-arm. */
const MAX_TIMER_MS = 0x7fffffff;

export class DelayedMessages {
  private readonly held: Held[] = [];
  private nextSeq = 1;
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  constructor(
    private readonly persist: Persistence,
    private readonly release: (msg: Message) => void,
  ) {}

  get size(): number {
    return this.held.length;
  }

  hold(message: Message, dueAt: number): void {
    const h: Held = { seq: this.nextSeq++, message, dueAt };
    this.persist.ref(message);
    this.persist.write({ kind: 'delayed.put', entry: { seq: h.seq, messageId: message.id, dueAt } });
    this.insert(h);
    this.arm();
  }

  /** Re-creates a stored entry at start (its message reference is on disk already). */
  restore(seq: number, message: Message, dueAt: number): void {
    if (seq >= this.nextSeq) this.nextSeq = seq + 1;
    this.persist.restoreRef(message.id);
    this.insert({ seq, message, dueAt });
  }

  /** Starts the clock after a restore; overdue messages go out at once. */
  start(): void {
    this.arm();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  *list(): IterableIterator<{ readonly message: Message; readonly dueAt: number }> {
    yield* this.held;
  }

  private insert(h: Held): void {
    // Binary search: delays arrive in any order.
    let lo = 0;
    let hi = this.held.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.held[mid]!.dueAt <= h.dueAt) lo = mid + 1;
      else hi = mid;
    }
    this.held.splice(lo, 0, h);
  }

  private arm(): void {
    const first = this.held[0];
    if (!first) return;
    if (this.timer && this.armedFor <= first.dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = first.dueAt;
    this.timer = setTimeout(this.fire, Math.min(Math.max(0, first.dueAt - Date.now()), MAX_TIMER_MS));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    while (this.held.length > 0 && this.held[0]!.dueAt <= now) {
      const h = this.held.shift()!;
      this.persist.write({ kind: 'delayed.del', seq: h.seq });
      this.release(h.message);
      this.persist.unref(h.message);
    }
    this.arm();
  };
}

/** `$delayed/<seconds>/<topic>` -> { seconds, topic }; undefined for other topics or a malformed delay. */
export function parseDelayedTopic(topic: string): { seconds: number; topic: string } | undefined {
  if (!topic.startsWith('$delayed/')) return undefined;
  const slash = topic.indexOf('/', 9);
  if (slash < 0) return undefined;
  const s = topic.slice(9, slash);
  const rest = topic.slice(slash + 1);
  if (!/^\d{1,10}$/.test(s) || rest.length === 0) return undefined;
  return { seconds: Number(s), topic: rest };
}
