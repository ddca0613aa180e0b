/**
 * PUBLISH from a client, and PUBREL (the second half of inbound QoS 2).
 * Order of checks: topic alias -> topic name -> flags the broker does not offer -> Receive Maximum
 * -> QoS 2 duplicate -> payload format -> authorization -> publish -> acknowledge after disk.
 */
import { isUtf8 } from 'node:buffer';
import type { Session } from '../../src/core/session.js';
import { clock } from '../../src/core/stats.js';
import { validateTopicName } from '../../src/core/topic.js';
import type { MqttConnection } from './connection.js';
import { toDraft } from './convert.js';
import { encodeAck } from './encode.js';
import { PacketType, type PublishPacket } from './packets.js';
import { MqttError, ReasonCode } from './reason-codes.js';

export function handlePublish(conn: MqttConnection, session: Session, p: PublishPacket): void {
  // junction_publish_ack_latency_seconds: from here to the PUBACK/PUBREC written.
  const since = p.qos > 0 ? clock() : 0;
  const s = conn.settings;
  const v5 = conn.version === 5;
  let topic = p.topic;
  const alias = p.props.topicAlias;
  if (alias !== undefined) {
    // [MQTT-3.3.2-8] [MQTT-3.3.2-9]: 1..Topic Alias Maximum.
    if (alias === 0 || alias > s.topicAliasMaximum) throw new MqttError(ReasonCode.TopicAliasInvalid, `topic alias ${alias} out of range`);
    if (topic.length > 0) conn.aliasesIn.set(alias, topic);
    else {
      const known = conn.aliasesIn.get(alias);
      if (known === undefined) throw new MqttError(ReasonCode.ProtocolError, `topic alias ${alias} has no topic yet`);
      topic = known;
    }
  } else if (v5 && topic.length === 0) {
    // Section 3.3.2.3.4: a zero-length Topic Name without a Topic Alias is a Protocol Error, not 0x90.
    throw new MqttError(ReasonCode.ProtocolError, 'empty topic name without a topic alias');
  }
  const bad = validateTopicName(topic, s.topicLimits);
  if (bad && (bad.error === 'too-long' || bad.error === 'too-deep')) conn.core.stats.topicLimitRefused++;
  if (bad) throw new MqttError(ReasonCode.TopicNameInvalid, `topic name ${bad.reason}`); // [MQTT-3.3.2-2] [MQTT-4.7.3-1]
  if (p.retain && !s.retainAvailable) throw new MqttError(ReasonCode.RetainNotSupported, 'retain not supported'); // [MQTT-3.3.1-?]

  const qos = p.qos;
  const id = p.packetId;
  if (qos > 0 && v5) {
    const resend = qos === 2 && session.incoming.has(id);
    // [MQTT-3.3.4-7]: more unacknowledged QoS 1/2 PUBLISH than our Receive Maximum.
    if (!resend && conn.acksWaiting + session.incoming.size >= s.receiveMaximum) {
      throw new MqttError(ReasonCode.ReceiveMaximumExceeded, `more than ${s.receiveMaximum} unacknowledged QoS 1/2 messages`);
    }
  }
  const persist = conn.core.persist;
  const mark = persist.mark;
  if (qos === 2 && !session.holdIncoming(id)) {
    // A resend of a QoS 2 message we already hold: acknowledge again, never publish twice [MQTT-4.3.3-?].
    conn.ack(encodeAck(PacketType.PUBREC, id, conn.version), persist.barrier());
    return;
  }
  const ackType = qos === 1 ? PacketType.PUBACK : PacketType.PUBREC;
  if (v5 && p.props.payloadFormat === 1 && !isUtf8(p.payload)) {
    return reject(conn, session, p, ReasonCode.PayloadFormatInvalid, 'payload is not UTF-8 as its format indicator says');
  }
  if (!conn.core.access.authorize(conn.identity!, 'publish', topic)) {
    conn.core.stats.publishDropped++;
    return reject(conn, session, p, ReasonCode.NotAuthorized, `not authorized to publish to ${topic}`);
  }
  const draft = toDraft(conn.clientId, topic, p.payload, qos, p.retain, p.props, Date.now());
  const tracing = conn.core.tracing.on;
  if (tracing) conn.trace('publish.in', topic, { qos, retain: p.retain, packetId: id, dup: p.dup, payload: p.payload });
  const { matched } = conn.core.router.publish(draft);
  if (tracing) conn.trace('route', topic, { matched });
  if (qos === 0) return;
  const durable = persist.since(mark);
  const code = v5 && matched === 0 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success;
  // A failed write: v5 learns why; a 3.1.1 client gets no acknowledgement and will resend.
  const failed = v5 ? encodeAck(ackType, id, 5, ReasonCode.UnspecifiedError) : undefined;
  if (failed && qos === 2) void durable?.catch(() => session.releaseIncoming(id));
  conn.ack(encodeAck(ackType, id, conn.version, code), durable, failed, () => conn.core.stats.observeAck('mqtt', qos, since));
}

/** A PUBLISH the broker will not route: v5 says why in PUBACK/PUBREC (or DISCONNECT for QoS 0). */
function reject(conn: MqttConnection, session: Session, p: PublishPacket, code: number, why: string): void {
  const denied = code === ReasonCode.NotAuthorized;
  conn.log.info('publish refused', {
    ...(denied ? { evt: 'acl.denied', action: 'publish', username: conn.identity?.username, peer: conn.transport.remoteAddress, protocol: 'mqtt' } : {}),
    clientId: conn.clientId,
    topic: p.topic,
    reason: why,
  });
  if (conn.core.tracing.on) conn.trace('drop', p.topic, { reason: denied ? 'not_authorized' : 'payload_format_invalid', qos: p.qos, payload: p.payload });
  if (conn.version !== 5) {
    // 3.1.1 has no way to say no: acknowledge so the client does not resend forever (as Mosquitto).
    if (p.qos === 1) conn.ack(encodeAck(PacketType.PUBACK, p.packetId, conn.version), undefined);
    if (p.qos === 2) conn.ack(encodeAck(PacketType.PUBREC, p.packetId, conn.version), undefined);
    return;
  }
  if (p.qos === 0) {
    if (code === ReasonCode.PayloadFormatInvalid) throw new MqttError(code, why);
    return;
  }
  // An error PUBREC ends the QoS 2 flow [MQTT-4.3.3-?]: forget the id.
  if (p.qos === 2) session.releaseIncoming(p.packetId);
  // No Reason String: the code says it, and some clients (Paho's test client) expect a bare
  // 3-byte PUBACK, as Mosquitto sends; the reason is in our log.
  conn.ack(encodeAck(p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, p.packetId, 5, code), undefined);
}

/** PUBREL: release the held QoS 2 id and answer PUBCOMP once that is on disk. */
export function handlePubrel(conn: MqttConnection, session: Session, id: number): void {
  const persist = conn.core.persist;
  const mark = persist.mark;
  const found = session.releaseIncoming(id);
  const code = found || conn.version !== 5 ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound;
  conn.ack(encodeAck(PacketType.PUBCOMP, id, conn.version, code), persist.since(mark));
}
