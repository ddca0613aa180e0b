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
};
