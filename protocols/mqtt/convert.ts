/**
 * PUBLISH (and will) <-> core Message: the one place MQTT properties become neutral message props
 * and back (design.md "Crossing the boundary").
 */
import type { MessageDraft, MessageProps, Qos } from '../../src/core/message.js';
import { NO_PROPS } from '../../src/core/message.js';
import type { Delivery } from '../../src/core/session.js';
import type { Properties } from './properties.js';

function messageProps(p: Properties): MessageProps {
  if (
    p.payloadFormat === undefined &&
    p.contentType === undefined &&
    p.responseTopic === undefined &&
    p.correlationData === undefined &&
    p.user === undefined
  ) {
    return NO_PROPS;
  }
  const out: { -readonly [K in keyof MessageProps]: MessageProps[K] } = {};
  if (p.payloadFormat === 1) out.payloadUtf8 = true;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.user !== undefined) out.user = p.user;
  return out;
}

export function toDraft(
  clientId: string,
  topic: string,
  payload: Buffer,
  qos: Qos,
  retain: boolean,
  props: Properties,
  now: number,
): MessageDraft {
  return {
    topic,
    payload,
    qos,
    retain,
    // Message Expiry Interval in seconds -> absolute time, so waiting in the broker counts [MQTT-3.3.2-6].
    expiresAt: props.messageExpiry !== undefined ? now + props.messageExpiry * 1000 : undefined,
    props: messageProps(props),
    origin: { clientId, protocol: 'mqtt' },
  };
}

/** Seconds left for an outgoing Message Expiry Interval; undefined when the message has no expiry. */
export function expiryLeft(d: Delivery, now: number): number | undefined {
  const at = d.message.expiresAt;
  if (at === undefined) return undefined;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

/** Subscription Identifiers of every matching subscription [MQTT-3.3.4-3]. */
export function subscriptionIds(d: Delivery): number[] | undefined {
  let ids: number[] | undefined;
  for (const s of d.matched) if (s.identifier !== undefined) (ids ??= []).push(s.identifier);
  return ids;
}
