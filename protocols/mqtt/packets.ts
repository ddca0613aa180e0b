/**
 * Packets as the adapter sees them after decoding (client -> server) and the packet type numbers.
 * These never leave protocols/mqtt: convert.ts turns them into core calls.
 */
import type { Qos } from '../../src/core/message.js';
import type { Properties } from './properties.js';

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

export type ProtocolVersion = 3 | 4 | 5;

export interface WillPacket {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: Qos;
  readonly retain: boolean;
  readonly props: Properties;
}

export interface ConnectPacket {
  readonly type: typeof PacketType.CONNECT;
  readonly protocolName: string;
  readonly version: ProtocolVersion;
  readonly cleanStart: boolean;
  readonly keepAlive: number;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: Buffer;
  readonly will?: WillPacket;
  readonly props: Properties;
}

export interface PublishPacket {
  readonly type: typeof PacketType.PUBLISH;
  readonly qos: Qos;
  readonly dup: boolean;
  readonly retain: boolean;
  readonly topic: string;
  readonly packetId: number;
  readonly props: Properties;
  readonly payload: Buffer;
}

export interface AckPacket {
  readonly type: typeof PacketType.PUBACK | typeof PacketType.PUBREC | typeof PacketType.PUBREL | typeof PacketType.PUBCOMP;
  readonly packetId: number;
  readonly reasonCode: number;
  readonly props: Properties;
}

export interface SubscriptionRequest {
  readonly filter: string;
  readonly qos: Qos;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  readonly type: typeof PacketType.SUBSCRIBE;
  readonly packetId: number;
  readonly props: Properties;
  readonly subscriptions: readonly SubscriptionRequest[];
}

export interface UnsubscribePacket {
  readonly type: typeof PacketType.UNSUBSCRIBE;
  readonly packetId: number;
  readonly props: Properties;
  readonly filters: readonly string[];
}

export interface PingreqPacket {
  readonly type: typeof PacketType.PINGREQ;
}

export interface DisconnectPacket {
  readonly type: typeof PacketType.DISCONNECT;
  readonly reasonCode: number;
  readonly props: Properties;
}

export interface AuthPacket {
  readonly type: typeof PacketType.AUTH;
  readonly reasonCode: number;
  readonly props: Properties;
}

export type ClientPacket =
  | ConnectPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | UnsubscribePacket
  | PingreqPacket
  | DisconnectPacket
  | AuthPacket;
