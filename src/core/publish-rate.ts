/**
 * PublishRateLimit: limits.publishRate for one connection, whatever its protocol. A publish over
 * the rate either ends the connection (the adapter says so in its protocol's words) or is handled
 * and reading pauses until the bucket is even again (the default, as EMQX's messages_rate: the
 * client is slowed, nothing lost). Counted per event, logged once per client per 10 s.
 */
import type { LogFields, Logger } from './log.js';
import type { Stats } from './stats.js';
import { TokenBucket } from './token-bucket.js';

export interface PublishRateSettings {
  readonly publishRate: number;
  readonly publishBurst: number;
  readonly publishRateAction: 'pause' | 'disconnect';
}

const LOG_EVERY_MS = 10_000;

export class PublishRateLimit {
  private readonly bucket: TokenBucket;
  private timer: NodeJS.Timeout | undefined;
  private limited = 0;
  private loggedAt = 0;

  constructor(
    private readonly s: PublishRateSettings,
    private readonly stats: Stats,
    private readonly log: Logger,
    /** Who the log line is about (client id or session). */
    private readonly about: LogFields,
  ) {
    this.bucket = new TokenBucket(s.publishRate, s.publishBurst, Date.now());
  }

  /**
   * One publish read. Returns 'disconnect' when it is over the rate and the action says so; with
   * 'pause', calls `pause` now and `resume` once the debt is paid.
   */
  take(pause: () => void, resume: () => void): 'ok' | 'paused' | 'disconnect' {
    const now = Date.now();
    const wait = this.bucket.borrow(now);
    if (wait === 0) return 'ok';
    const s = this.s;
    this.stats.publishRateLimited++;
    this.limited++;
    if (now - this.loggedAt >= LOG_EVERY_MS) {
      this.log.warn('publish rate limit reached', { ...this.about, rate: s.publishRate, burst: s.publishBurst, action: s.publishRateAction, times: this.limited });
      this.loggedAt = now;
      this.limited = 0;
    }
    if (s.publishRateAction === 'disconnect') return 'disconnect';
    pause();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      resume();
    }, wait);
    return 'paused';
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
