/**
 * SEND -> core MessageDraft, and core Delivery -> MESSAGE headers: the one place STOMP headers and
 * neutral message properties meet (design.md "Crossing the boundary"). Bodies are bytes, never
 * re-encoded; content-length is always sent.
 */
import type { MessageDraft, MessageProps, UserProperty } from '../../src/core/message.js';
import type { Delivery } from '../../src/core/session.js';
import { parseDestination, queueDestination, topicDestination, type TopicMapping } from './destinations.js';
import type { Frame } from './frame.js';

/** Headers with a meaning of their own; every other SEND header travels as a user property. */
const PROTOCOL_HEADERS = new Set([
  'destination',
  'content-length',
  'content-type',
  'receipt',
  'transaction',
  'persistent',
  'retain',
  'reply-to',
  'correlation-id',
  'expires',
  'priority',
  'x-delay',
  'message-id',
  'subscription',
  'ack',
  'redelivered',
  'retain-handling',
]);

export class ConvertError extends Error {}

function first(f: Frame, name: string): string | undefined {
  for (const [k, v] of f.headers) if (k === name) return v;
  return undefined;
}

/** The message a SEND carries to core topic `topic`, and its delay (x-delay) if any. */
export function sendToDraft(f: Frame, topic: string, sessionId: string, mapping: TopicMapping, now: number): { draft: MessageDraft; delayMs: number } {
  const props: { -readonly [K in keyof MessageProps]: MessageProps[K] } = {};
  const contentType = first(f, 'content-type');
  if (contentType !== undefined) props.contentType = contentType;
  const replyTo = first(f, 'reply-to');
  if (replyTo !== undefined) {
    const d = parseDestination(replyTo, mapping);
    if (d.kind === 'invalid') throw new ConvertError(`reply-to: ${d.reason}`);
    props.responseTopic = d.topic;
  }
  const correlation = first(f, 'correlation-id');
  if (correlation !== undefined) props.correlationData = Buffer.from(correlation, 'utf8');
  const priority = first(f, 'priority');
  if (priority !== undefined) {
    if (!/^\d$/.test(priority)) throw new ConvertError(`priority must be 0-9, got ${JSON.stringify(priority)}`);
    props.priority = Number(priority);
  }
  const user: UserProperty[] = [];
  const seen = new Set<string>();
  for (const [k, v] of f.headers) {
    // Repeated headers: the first wins (STOMP 1.2 "Repeated Header Entries").
    if (PROTOCOL_HEADERS.has(k) || seen.has(k)) continue;
    seen.add(k);
    user.push([k, v]);
  }
  if (user.length > 0) props.user = user;
  let expiresAt: number | undefined;
  const expires = first(f, 'expires');
  if (expires !== undefined && expires !== '0') {
    // ActiveMQ's header: absolute, ms since the epoch.
    if (!/^\d+$/.test(expires)) throw new ConvertError(`expires must be ms since the epoch, got ${JSON.stringify(expires)}`);
    expiresAt = Number(expires);
  }
  let delayMs = 0;
  const delay = first(f, 'x-delay');
  if (delay !== undefined) {
    if (!/^\d+$/.test(delay)) throw new ConvertError(`x-delay must be ms, got ${JSON.stringify(delay)}`);
    delayMs = Number(delay);
  }
  const draft: MessageDraft = {
    topic,
    payload: f.body,
    qos: first(f, 'persistent') === 'true' ? 1 : 0,
    retain: first(f, 'retain') === 'true',
    expiresAt: expiresAt !== undefined && expiresAt < now ? now : expiresAt,
    props,
    origin: { clientId: sessionId, protocol: 'stomp' },
  };
  return { draft, delayMs };
}

/**
 * The message-id of a delivery: `<message>-<delivery>` when it awaits an ACK (so the ACK names the
 * delivery, in every version), the broker's message id otherwise.
 */
export function messageIdOf(d: Delivery): string {
  return d.id > 0 ? `${d.message.id}-${d.id}` : `${d.message.id}`;
}

/** The delivery id an ACK/NACK names (its `id` in 1.2, `message-id` before), or undefined. */
export function deliveryIdOf(ackId: string): number | undefined {
  const m = /^\d+-(\d+)$/.exec(ackId);
  if (!m) return undefined;
  const id = Number(m[1]);
  return id > 0 && id <= 65535 ? id : undefined;
}

/** Headers of the MESSAGE frame for `d` through the subscription `subId` with `dest`. */
export function messageHeaders(
  d: Delivery,
  subId: string,
  dest: string,
  withAckHeader: boolean,
  mapping: TopicMapping,
): Array<readonly [string, string]> {
  const m = d.message;
  const p = m.props;
  const id = messageIdOf(d);
  const h: Array<readonly [string, string]> = [
    ['destination', dest],
    ['message-id', id],
    ['subscription', subId],
  ];
  if (withAckHeader) h.push(['ack', id]);
  if (d.redelivery) h.push(['redelivered', 'true']);
  if (d.retain) h.push(['retain', 'true']);
  if (m.qos > 0) h.push(['persistent', 'true']);
  if (p.contentType !== undefined) h.push(['content-type', p.contentType]);
  if (p.responseTopic !== undefined) {
    const q = p.responseTopic.startsWith('$queue/') ? p.responseTopic.slice(7) : undefined;
    h.push(['reply-to', q !== undefined ? queueDestination(q) : topicDestination(p.responseTopic, mapping)]);
  }
  if (p.correlationData !== undefined) h.push(['correlation-id', p.correlationData.toString('utf8')]);
  if (m.expiresAt !== undefined) h.push(['expires', `${m.expiresAt}`]);
  if (p.priority !== undefined) h.push(['priority', `${p.priority}`]);
  if (p.user) for (const [k, v] of p.user) if (!PROTOCOL_HEADERS.has(k)) h.push([k, v]);
  if (d.annotations) for (const [k, v] of d.annotations) h.push([k, v]);
  return h;
}
