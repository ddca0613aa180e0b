/**
 * The one message type the routing core carries. Adapters convert wire packets/frames into a
 * MessageDraft at their edge (protocols/<p>/convert.ts) and nothing after that sees a packet.
 * Payloads are bytes end to end and are never re-encoded.
 */

export type Qos = 0 | 1 | 2;

/** Which adapter a message or session belongs to; 'internal' is the broker itself (e.g. $SYS, admin publish). */
export type Protocol = 'mqtt' | 'stomp' | 'internal';

/** A user property / extra header; order is preserved end to end ([MQTT-3.3.2-18]). */
export type UserProperty = readonly [name: string, value: string];

/** Protocol-neutral message properties (design.md "Crossing the boundary"). */
export interface MessageProps {
  /** MQTT Payload Format Indicator 1: the payload is UTF-8 text. */
  readonly payloadUtf8?: boolean;
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly user?: readonly UserProperty[];
  /** Queue priority 0-9, higher first (STOMP `priority` header, as ActiveMQ). */
  readonly priority?: number;
}

export const NO_PROPS: MessageProps = Object.freeze({});

export interface Origin {
  readonly clientId: string;
  readonly protocol: Protocol;
}

export interface Message {
  /** Assigned by the Router, unique for the life of the data directory; the storage key. */
  readonly id: number;
  /** MQTT topic name; a STOMP /topic/x arrives as "x". */
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: Qos;
  /** The retain flag as published. */
  readonly retain: boolean;
  /** ms since epoch. */
  readonly createdAt: number;
  /** ms since epoch; absent = never expires. */
  readonly expiresAt?: number;
  readonly props: MessageProps;
  readonly origin: Origin;
  /** stats clock() when the router took it in (delivery latency); memory only, absent after a restart. */
  readonly stampedAt?: number;
}

export type MessageDraft = Omit<Message, 'id' | 'createdAt' | 'stampedAt'>;

export function isExpired(msg: Message, now: number): boolean {
  return msg.expiresAt !== undefined && msg.expiresAt <= now;
}
