/**
 * CONNECT -> CONNACK: protocol version, client id rules, keep alive, session expiry, will, the
 * client's v5 limits, authentication, then the session (takeover goes through the registry).
 */
import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { LogFields } from '../../src/core/log.js';
import type { Qos } from '../../src/core/message.js';
import type { Session, Will } from '../../src/core/session.js';
import { MQTT_VERSIONS, type RejectKind } from '../../src/core/stats.js';
import { NEVER_EXPIRES } from '../../src/core/sessions.js';
import { validateTopicName } from '../../src/core/topic.js';
import type { MqttConnection } from './connection.js';
import { toDraft } from './convert.js';
import { encodeConnack, type ConnackProperties } from './encode.js';
import type { ConnectPacket } from './packets.js';
import { MqttError, ReasonCode, toV3ReturnCode } from './reason-codes.js';

/** How a CONNACK refusal is counted in junction_connections_rejected_total. */
function rejectKindOf(code: number): RejectKind {
  switch (code) {
    case ReasonCode.BadUserNameOrPassword:
      return 'bad_credentials';
    case ReasonCode.Banned:
      return 'banned';
    case ReasonCode.ClientIdentifierNotValid:
      return 'client_id_rejected';
    case ReasonCode.UnsupportedProtocolVersion:
      return 'unsupported_protocol';
    // The broker cannot take a client now: stopping, or its storage failed.
    case ReasonCode.ServerUnavailable:
    case ReasonCode.ServerBusy:
    case ReasonCode.ServerShuttingDown:
      return 'draining';
    default:
      return 'not_authorized';
  }
}

/** Refuses the connection with CONNACK `code` (mapped to a 3.1.1 return code for old clients). */
function refuse(conn: MqttConnection, code: number, why: string, fields?: LogFields): void {
  const v = conn.version;
  const sent = v === 5 ? code : toV3ReturnCode(code);
  conn.write(encodeConnack(v, false, sent));
  if (conn.core.tracing.on) conn.trace('connack', undefined, { code: sent, reason: why });
  conn.core.stats.connectionsRejected++;
  conn.endpoint.reject(rejectKindOf(code));
  conn.log.warn('connection refused', { clientId: conn.clientId, reason: why, code, ...fields });
  conn.end(undefined, why, false);
}

/**
 * No CONNACK 0 after `sessions.open`: the session must not linger unattached with its clocks
 * stopped (open() cancels them). A new one goes; a resumed one is offline again, expiry from now.
 */
function abandon(conn: MqttConnection, session: Session, present: boolean): void {
  if (session.attached) return; // claimed meanwhile by a newer connection
  session.will = undefined; // the connection was never accepted: its will does not apply
  if (present) conn.core.sessions.resumeOffline(session, Date.now(), undefined, undefined);
  else conn.core.sessions.end(session);
}

export async function handleConnect(conn: MqttConnection, p: ConnectPacket): Promise<void> {
  const s = conn.settings;
  const v5 = p.version === 5;
  let clientId = p.clientId;
  let assigned: string | undefined;
  conn.clientId = clientId;
  if (conn.core.tracing.on) {
    conn.trace('connect', undefined, { protocol: 'mqtt', version: p.version, username: p.username, cleanStart: p.cleanStart, keepAlive: p.keepAlive, will: p.will !== undefined });
  }

  if (p.props.authMethod !== undefined) {
    // No enhanced authentication method is available yet [MQTT-4.12.0-1].
    return refuse(conn, ReasonCode.BadAuthenticationMethod, `authentication method ${p.props.authMethod} not supported`);
  }
  if (Buffer.byteLength(clientId) > s.maxClientIdLength) {
    conn.core.stats.clientIdTooLong++;
    return refuse(conn, ReasonCode.ClientIdentifierNotValid, 'client identifier too long');
  }
  if (clientId.length === 0) {
    // [MQTT-3.1.3-8] 3.1.1 accepts an empty id only with a clean session; v5 assigns one [MQTT-3.2.2-16].
    if (!s.allowEmptyClientId || (!v5 && !p.cleanStart) || p.version === 3) {
      return refuse(conn, ReasonCode.ClientIdentifierNotValid, 'empty client identifier');
    }
    clientId = `auto-${randomBytes(8).toString('hex')}`;
    conn.clientId = clientId;
    if (v5) assigned = clientId;
  }

  // Keep alive: a v5 client asking for more than the maximum (or for none) is told the maximum.
  let keepAlive = p.keepAlive;
  let serverKeepAlive: number | undefined;
  if (!v5 && keepAlive > s.maxKeepAlive) {
    // 3.1.1 has no way to tell the client the maximum; refuse as Mosquitto does (max_keepalive).
    // Keep alive 0 (no keep alive) stays allowed for 3.1.1 clients, as in Mosquitto.
    return refuse(conn, ReasonCode.ClientIdentifierNotValid, `keep alive ${keepAlive} exceeds the maximum ${s.maxKeepAlive}`);
  }
  if (v5 && s.maxKeepAlive < 65535 && (keepAlive === 0 || keepAlive > s.maxKeepAlive)) {
    keepAlive = s.maxKeepAlive;
    serverKeepAlive = keepAlive;
  }

  // Session expiry: v5 property; 3.1.1 clean session 0 means "never expires".
  const asked = v5 ? (p.props.sessionExpiry ?? 0) : p.cleanStart ? 0 : NEVER_EXPIRES;
  const expiry = Math.min(asked, s.maxSessionExpiry);
  conn.connectExpiry = asked;

  let will: Will | undefined;
  if (p.will) {
    const w = p.will;
    const bad = validateTopicName(w.topic, s.topicLimits);
    if (bad && (bad.error === 'too-long' || bad.error === 'too-deep')) conn.core.stats.topicLimitRefused++;
    if (bad) throw new MqttError(ReasonCode.TopicNameInvalid, `will topic ${bad.reason}`); // [MQTT-3.1.3-?]
    if (w.retain && !s.retainAvailable) return refuse(conn, ReasonCode.RetainNotSupported, 'will retain not supported');
    if (w.props.payloadFormat === 1 && !isUtf8(w.payload)) {
      return refuse(conn, ReasonCode.PayloadFormatInvalid, 'will payload is not UTF-8 as its format indicator says');
    }
    const now = Date.now();
    will = {
      // The expiry clock starts when the will is published (sessions.ts), not now.
      draft: { ...toDraft(clientId, w.topic, w.payload, w.qos as Qos, w.retain, w.props, now), expiresAt: undefined },
      delayMs: (w.props.willDelay ?? 0) * 1000,
      ...(w.props.messageExpiry !== undefined ? { expiryMs: w.props.messageExpiry * 1000 } : {}),
    };
  }

  if (v5) {
    conn.clientReceiveMaximum = p.props.receiveMaximum ?? 65535;
    conn.clientMaxPacketSize = p.props.maximumPacketSize ?? 268435460;
    conn.clientTopicAliasMaximum = p.props.topicAliasMaximum ?? 0;
    conn.requestProblemInfo = p.props.requestProblemInfo !== 0;
  }

  const auth = await conn.core.access.authenticate({
    protocol: 'mqtt',
    clientId,
    remoteAddress: conn.transport.remoteAddress,
    listener: conn.transport.listener,
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...(conn.transport.certIdentity !== undefined ? { certIdentity: conn.transport.certIdentity } : {}),
  });
  if (conn.isClosed()) return; // the socket went away while we waited
  if (!auth.ok) {
    const code = auth.reason === 'bad-credentials' ? ReasonCode.BadUserNameOrPassword : auth.reason === 'banned' ? ReasonCode.Banned : ReasonCode.NotAuthorized;
    return refuse(conn, code, `authentication failed: ${auth.reason}`, {
      evt: 'auth.failed',
      username: p.username,
      peer: conn.transport.remoteAddress,
      protocol: 'mqtt',
      authReason: auth.reason,
    });
  }
  conn.identity = auth.identity;

  const mark = conn.core.persist.mark;
  const { session, present, claim } = conn.core.sessions.open(clientId, {
    protocol: 'mqtt',
    cleanStart: p.cleanStart,
    expiryInterval: expiry,
    identity: conn.identity,
    ...(will ? { will } : {}),
  });

  let props: ConnackProperties | undefined;
  if (v5) {
    props = {};
    if (s.receiveMaximum < 65535) props.receiveMaximum = s.receiveMaximum;
    if (s.maxPacketSize < 268435455) props.maximumPacketSize = s.maxPacketSize;
    if (s.topicAliasMaximum > 0) props.topicAliasMaximum = s.topicAliasMaximum;
    if (!s.retainAvailable) props.retainAvailable = false;
    if (!s.wildcardSubscriptions) props.wildcardSubscriptionAvailable = false;
    if (!s.subscriptionIdentifiers) props.subscriptionIdentifiersAvailable = false;
    if (!s.sharedSubscriptions) props.sharedSubscriptionAvailable = false;
    if (assigned !== undefined) props.assignedClientIdentifier = assigned;
    if (serverKeepAlive !== undefined) props.serverKeepAlive = serverKeepAlive;
    if (expiry !== asked) props.sessionExpiryInterval = expiry;
  }
  // A new durable session is on disk before CONNACK says it exists.
  const durable = conn.core.persist.since(mark);
  if (durable) {
    let failed = false;
    await durable.catch(() => (failed = true));
    if (!conn.core.sessions.isCurrentClaim(session, claim)) {
      // A newer connection with this client id arrived while we waited: it owns the session.
      return conn.end(undefined, 'a newer connection claimed the client id', true);
    }
    if (failed) {
      abandon(conn, session, present);
      return refuse(conn, ReasonCode.ServerUnavailable, 'storage write failed');
    }
    if (conn.isClosed()) return abandon(conn, session, present);
  }
  // A resumed session's subscriptions are held to this connection's rights (it may be another user).
  if (present) conn.core.recheck(session);
  // [MQTT-3.2.2-2] Session Present is 0 whenever Clean Start was set.
  conn.write(encodeConnack(p.version, present && !p.cleanStart, ReasonCode.Success, props));
  if (conn.core.tracing.on) conn.trace('connack', undefined, { code: 0, sessionPresent: present && !p.cleanStart });
  conn.core.stats.connectionsAccepted++;
  conn.opened(session, keepAlive);
  conn.client = {
    clientId,
    protocol: 'mqtt',
    version: MQTT_VERSIONS[p.version - 3]!,
    versionIndex: p.version - 3,
    protoVer: p.version,
    listener: conn.transport.listener,
    remoteAddress: conn.transport.remoteAddress,
    localPort: conn.transport.localPort,
    username: conn.identity.username,
    keepalive: keepAlive,
    cleanStart: p.cleanStart,
    expiryInterval: expiry,
    connectedAt: Date.now(),
    endpoint: conn.endpoint,
  };
  conn.core.presence.connected(conn.client);
  conn.log.info('client connected', {
    evt: 'client.connected',
    clientId,
    peer: conn.transport.remoteAddress,
    protocol: 'mqtt',
    version: p.version,
    cleanStart: p.cleanStart,
    keepAlive,
    sessionPresent: present,
    ...(conn.identity.username !== undefined ? { username: conn.identity.username } : {}),
  });
  // After CONNACK: resend what the session still owes, then its queue [MQTT-4.4.0-1].
  const window = v5 ? Math.min(conn.clientReceiveMaximum, s.maxInflight) : s.maxInflight;
  session.attach(conn, window);
}
