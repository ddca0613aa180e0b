/**
 * MqttSettings: the broker-wide MQTT limits the adapter enforces, resolved from config once.
 */
import type { TopicLimits } from '../../src/core/topic.js';

export interface MqttSettings {
  readonly maxKeepAlive: number;
  readonly maxPacketSize: number;
  /** Unacknowledged QoS 1/2 PUBLISH a client may send (announced to v5 clients). */
  readonly receiveMaximum: number;
  /** Outgoing in-flight window per session (v5: also capped by the client's Receive Maximum). */
  readonly maxInflight: number;
  readonly topicAliasMaximum: number;
  readonly topicLimits: TopicLimits;
  readonly maxClientIdLength: number;
  readonly connectTimeoutMs: number;
  readonly maxSessionExpiry: number;
  readonly retainAvailable: boolean;
  readonly sharedSubscriptions: boolean;
  readonly wildcardSubscriptions: boolean;
  readonly subscriptionIdentifiers: boolean;
  readonly allowEmptyClientId: boolean;
  /** Bytes a connection may have waiting to be written before it counts as congested. */
  readonly outputBufferLimit: number;
  /** ms a congested connection may go without a write completing before it is closed; 0: never. */
  readonly drainTimeoutMs: number;
  /** Subscriptions per session; 0: no limit. */
  readonly maxSubscriptions: number;
  /** PUBLISH packets a second per connection (token bucket); 0: no limit. */
  readonly publishRate: number;
  /** Packets the bucket holds (a burst allowed at once). */
  readonly publishBurst: number;
  /** Over the rate: stop reading until the bucket refills, or disconnect (v5: 0x96). */
  readonly publishRateAction: 'pause' | 'disconnect';
  /** SUBACK code of a subscription the ACL refuses, for MQTT 5 (3.1.1 always gets 0x80). */
  readonly subscribeDeniedCode: number;
}

export const DEFAULT_MQTT_SETTINGS: MqttSettings = {
  maxKeepAlive: 65535,
  maxPacketSize: 1024 * 1024,
  receiveMaximum: 32,
  maxInflight: 32,
  topicAliasMaximum: 10,
  topicLimits: { maxLength: 65535, maxLevels: 128 },
  maxClientIdLength: 65535,
  connectTimeoutMs: 10_000,
  maxSessionExpiry: 0xffffffff,
  retainAvailable: true,
  sharedSubscriptions: true,
  wildcardSubscriptions: true,
  subscriptionIdentifiers: true,
  allowEmptyClientId: true,
  outputBufferLimit: 4 * 1024 * 1024,
  drainTimeoutMs: 30_000,
  maxSubscriptions: 10_000,
  publishRate: 0,
  publishBurst: 0,
  publishRateAction: 'pause',
  subscribeDeniedCode: 0x87,
};
