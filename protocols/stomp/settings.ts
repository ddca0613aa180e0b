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
  /** `server` header of CONNECTED. */
  readonly serverName: string;
}
