/**
 * SUBSCRIBE / UNSUBSCRIBE: per-filter reason codes, then retained messages after SUBACK as the
 * filter's Retain Handling says.
 */
import type { Qos } from '../../src/core/message.js';
import type { Session, Subscription } from '../../src/core/session.js';
import { isTopicError, parseFilter } from '../../src/core/topic.js';
import type { MqttConnection } from './connection.js';
import { encodeSuback, encodeUnsuback } from './encode.js';
import type { SubscribePacket, UnsubscribePacket } from './packets.js';
import { MqttError, ReasonCode } from './reason-codes.js';

export function handleSubscribe(conn: MqttConnection, session: Session, p: SubscribePacket): void {
  const s = conn.settings;
  const v5 = conn.version === 5;
  const identifier = p.props.subscriptionId;
  if (identifier !== undefined && !s.subscriptionIdentifiers) {
    throw new MqttError(ReasonCode.SubscriptionIdentifiersNotSupported, 'subscription identifiers not supported');
  }
  const mark = conn.core.persist.mark;
  const codes: number[] = [];
  const retainedToSend: Array<{ sub: Subscription; existed: boolean }> = [];
  // v3.1.1 has a single failure code.
  const failure = (code: number): number => (v5 ? code : 0x80);
  for (const req of p.subscriptions) {
    const filter = parseFilter(req.filter, s.topicLimits);
    if (isTopicError(filter)) {
      if (filter.error === 'too-long' || filter.error === 'too-deep') conn.core.stats.topicLimitRefused++;
      codes.push(failure(ReasonCode.TopicFilterInvalid));
      conn.log.info('subscription refused', { clientId: conn.clientId, filter: req.filter, reason: filter.reason });
      continue;
    }
    if (filter.share !== undefined) {
      if (req.noLocal) throw new MqttError(ReasonCode.ProtocolError, 'No Local on a shared subscription'); // [MQTT-3.8.3-4]
      if (!s.sharedSubscriptions) {
        codes.push(failure(ReasonCode.SharedSubscriptionsNotSupported));
        continue;
      }
    }
    if (filter.wildcard && !s.wildcardSubscriptions) {
      codes.push(failure(ReasonCode.WildcardSubscriptionsNotSupported));
      continue;
    }
    // The ACL speaks of topics: a shared subscription is checked on its filter, a queue on `$queue/<name>`.
    if (!conn.core.access.authorize(conn.identity!, 'subscribe', filter.filter)) {
      codes.push(v5 ? s.subscribeDeniedCode : 0x80);
      conn.log.info('subscription refused', {
        evt: 'acl.denied',
        action: 'subscribe',
        clientId: conn.clientId,
        username: conn.identity?.username,
        peer: conn.transport.remoteAddress,
        protocol: 'mqtt',
        topic: req.filter,
        filter: req.filter,
        reason: 'not authorized',
      });
      continue;
    }
    // limits.maxSubscriptions; replacing one of the client's own filters adds none.
    if (s.maxSubscriptions > 0 && session.subscriptions.size >= s.maxSubscriptions && !session.subscriptions.has(req.filter)) {
      conn.core.stats.subscriptionsRefused++;
      codes.push(failure(ReasonCode.QuotaExceeded));
      conn.log.info('subscription refused', { clientId: conn.clientId, filter: req.filter, reason: `the client has ${s.maxSubscriptions} subscriptions, the limit` });
      continue;
    }
    const sub: Subscription = {
      key: req.filter,
      filter,
      qos: req.qos as Qos,
      noLocal: req.noLocal,
      retainAsPublished: req.retainAsPublished,
      retainHandling: req.retainHandling,
      ...(identifier !== undefined ? { identifier } : {}),
      ...(filter.queue === undefined && conn.core.access.needsReadCheck?.(conn.identity!, filter.filter) ? { readCheck: true } : {}),
    };
    // [MQTT-3.8.4-3]: a subscription with the same filter replaces the existing one.
    const existed = conn.core.router.subscribe(session, sub);
    codes.push(sub.qos);
    if (sub.retainHandling === 0 || (sub.retainHandling === 1 && !existed)) retainedToSend.push({ sub, existed });
  }
  // A durable session's subscription is on disk before the SUBACK says it exists; retained messages
  // follow the SUBACK [MQTT-3.3.1-9].
  if (conn.core.tracing.on) {
    for (const [i, req] of p.subscriptions.entries()) conn.trace('subscribe', req.filter, { qos: req.qos, code: codes[i], ...(identifier !== undefined ? { identifier } : {}) });
  }
  const sendRetained = (): void => {
    for (const { sub } of retainedToSend) conn.core.router.sendRetained(session, sub);
  };
  conn.ack(encodeSuback(conn.version, p.packetId, codes), conn.core.persist.since(mark), undefined, sendRetained);
}

export function handleUnsubscribe(conn: MqttConnection, session: Session, p: UnsubscribePacket): void {
  const mark = conn.core.persist.mark;
  const codes = p.filters.map((f) => (conn.core.router.unsubscribe(session, f) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted));
  conn.ack(encodeUnsuback(conn.version, p.packetId, codes), conn.core.persist.since(mark));
}
