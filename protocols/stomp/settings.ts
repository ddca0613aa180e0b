/**
 * StompSettings: the limits and choices the STOMP adapter applies, resolved from config once.
 */
import type { TopicLimits } from '../../src/core/topic.js';
import type { TopicMapping } from './destinations.js';
import type { FrameLimits } from './frame.js';

export interface StompSettings {
  readonly frameLimits: FrameLimits;
  /** ms the broker offers to send heart-beats at and asks to receive them at; 0 = none. */
  readonly heartbeatMs: number;
  readonly connectTimeoutMs: number;
  readonly topicMapping: TopicMapping;
  readonly topicLimits: TopicLimits;
  /** Unacknowledged messages per client-ack subscription when SUBSCRIBE names no prefetch-count. */
  readonly defaultPrefetch: number;
  readonly outputBufferLimit: number;
  /** ms a congested connection may go without a write completing before it is closed; 0: never. */
  readonly drainTimeoutMs: number;
  /** Subscriptions per connection; 0: no limit. */
  readonly maxSubscriptions: number;
  /** SEND frames a second per connection (token bucket); 0: no limit. */
  readonly publishRate: number;
  readonly publishBurst: number;
  /** Over the rate: stop reading until the bucket refills, or ERROR and close. */
  readonly publishRateAction: 'pause' | 'disconnect';
  /** `server` header of CONNECTED. */
  readonly serverName: string;
}
