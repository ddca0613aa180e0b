/**
 * TokenBucket: `rate` tokens a second, holding at most `burst`; one token per event (a connection
 * accepted, a PUBLISH read). Time comes in as an argument so the caller reads the clock once.
 *
 * `take` refuses when no whole token is left (connections: refuse the one over). `borrow` always
 * takes and says how long until the balance is back at zero (publishes: the packet is already
 * read, so it is handled and reading pauses for that long); the debt never exceeds one token per
 * event handled while paused, which is none.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Takes a token if a whole one is there. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Takes a token, into debt if need be; returns the ms until the balance is back at zero (0: none owed). */
  borrow(now: number): number {
    this.refill(now);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
}
