/**
 * The client frames after the connection is set up, one function each: CONNECT/STOMP, SEND,
 * SUBSCRIBE, UNSUBSCRIBE, ACK/NACK, BEGIN, COMMIT/ABORT. Each validates first and throws a
 * StompError (ERROR frame, then close) naming what was wrong; SEND, ACK and NACK inside a
 * transaction are kept as actions and applied together at COMMIT, in one storage batch.
 */
import type { Session, Subscription } from '../../src/core/session.js';
import { STOMP_VERSIONS, clock } from '../../src/core/stats.js';
import { isTopicError, parseFilter, validateTopicName } from '../../src/core/topic.js';
import type { StompConnection, StompSubscription, AckMode } from './connection.js';
import { StompError } from './connection.js';
import { ConvertError, deliveryIdOf, sendToDraft } from './convert.js';
import { parseDestination } from './destinations.js';
import { header, type Frame, type StompVersion } from './frame.js';

const VERSIONS: readonly StompVersion[] = ['1.2', '1.1', '1.0'];

function required(f: Frame, name: string): string {
  const v = header(f, name);
  if (v === undefined || v === '') throw new StompError(`missing ${name} header`, `${f.command} needs a ${name} header`, header(f, 'receipt'));
  return v;
}

function fail(f: Frame, message: string, detail = message): never {
  throw new StompError(message, detail, header(f, 'receipt'));
}

export async function handleConnect(conn: StompConnection, f: Frame): Promise<void> {
  const accept = header(f, 'accept-version') ?? '1.0';
  const offered = accept.split(',').map((v) => v.trim());
  const version = VERSIONS.find((v) => offered.includes(v));
  if (!version) {
    conn.endpoint.reject('unsupported_protocol');
    // STOMP 1.2 "Protocol Negotiation": ERROR with the versions we speak, then close.
    throw new StompError('unsupported protocol version', `Supported protocol versions are 1.0,1.1,1.2; the client offered ${accept}`, header(f, 'receipt'), [
      ['version', '1.0,1.1,1.2'],
    ]);
  }
  let beat: [number, number] = [0, 0];
  const hb = header(f, 'heart-beat');
  if (hb !== undefined && version !== '1.0') {
    const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(hb);
    if (!m) fail(f, 'invalid heart-beat header', `heart-beat must be "<cx>,<cy>" in ms, got ${JSON.stringify(hb)}`);
    beat = [Number(m[1]), Number(m[2])];
  }
  const login = header(f, 'login');
  const passcode = header(f, 'passcode');
  // Traces by client id see a STOMP client under its `client-id` header from the first frame.
  const traced = { clientId: header(f, 'client-id') || conn.sessionId, peer: conn.transport.remoteAddress };
  if (conn.core.tracing.on) conn.core.tracing.emit('connect', traced, { protocol: 'stomp', version, username: login, heartBeat: `${beat[0]},${beat[1]}`, host: header(f, 'host') });
  const auth = await conn.core.access.authenticate({
    protocol: 'stomp',
    clientId: conn.sessionId,
    remoteAddress: conn.transport.remoteAddress,
    listener: conn.transport.listener,
    ...(login !== undefined ? { username: login } : {}),
    ...(passcode !== undefined ? { password: Buffer.from(passcode, 'utf8') } : {}),
    ...(conn.transport.certIdentity !== undefined ? { certIdentity: conn.transport.certIdentity } : {}),
  });
  if (conn.isClosed()) return;
  if (!auth.ok) {
    conn.log.warn('connection refused', { evt: 'auth.failed', clientId: traced.clientId, username: login, peer: traced.peer, protocol: 'stomp', reason: `authentication failed: ${auth.reason}` });
    if (conn.core.tracing.on) conn.core.tracing.emit('connack', traced, { frame: 'ERROR', reason: auth.reason });
    conn.core.stats.connectionsRejected++;
    conn.endpoint.reject(auth.reason === 'bad-credentials' ? 'bad_credentials' : auth.reason === 'banned' ? 'banned' : 'not_authorized');
    fail(f, 'access refused', auth.reason === 'bad-credentials' ? 'bad login or passcode' : `not allowed to connect (${auth.reason})`);
  }
  conn.identity = auth.identity;
  // A STOMP connection's session lives exactly as long as the connection.
  const { session } = conn.core.sessions.open(conn.sessionId, { protocol: 'stomp', cleanStart: true, expiryInterval: 0, identity: auth.identity });
  const headers: Array<readonly [string, string]> = [];
  if (version !== '1.0') {
    headers.push(['version', version]);
    const b = conn.settings.heartbeatMs;
    headers.push(['heart-beat', `${b},${b}`]);
  }
  headers.push(['server', conn.settings.serverName], ['session', conn.sessionId]);
  conn.frame('CONNECTED', headers);
  // `traced`, not conn.trace: conn.client (the client-id header) is set only below.
  if (conn.core.tracing.on) conn.core.tracing.emit('connack', traced, { frame: 'CONNECTED', version, session: conn.sessionId });
  conn.core.stats.connectionsAccepted++;
  conn.opened(session, version, beat);
  conn.client = {
    // Presence events name a STOMP client by its `client-id` header (as RabbitMQ's), else its session.
    clientId: header(f, 'client-id') || conn.sessionId,
    protocol: 'stomp',
    version,
    versionIndex: STOMP_VERSIONS.indexOf(version),
    protoVer: version,
    listener: conn.transport.listener,
    remoteAddress: conn.transport.remoteAddress,
    localPort: conn.transport.localPort,
    username: auth.identity.username,
    keepalive: Math.round(beat[0] / 1000),
    cleanStart: true,
    expiryInterval: 0,
    connectedAt: Date.now(),
    endpoint: conn.endpoint,
  };
  conn.core.presence.connected(conn.client);
  conn.log.info('client connected', {
    evt: 'client.connected',
    clientId: conn.client.clientId,
    username: auth.identity.username,
    peer: conn.transport.remoteAddress,
    version,
    heartBeat: `${beat[0]},${beat[1]}`,
    ...(login !== undefined ? { login } : {}),
    ...(header(f, 'host') !== undefined ? { host: header(f, 'host') } : {}),
  });
  // Ids up to 65535 are in flight at once; past that, deliveries wait in the session queue.
  session.attach(conn, 65535);
}

export function handleSend(conn: StompConnection, _session: Session, f: Frame): void {
  const receipt = header(f, 'receipt');
  const destination = required(f, 'destination');
  const d = parseDestination(destination, conn.settings.topicMapping);
  if (d.kind === 'invalid') fail(f, 'invalid destination', d.reason);
  // The topic limits hold for queue names too (`$queue/<Q>`): one namespace, one set of limits.
  const bad = validateTopicName(d.topic, conn.settings.topicLimits);
  if (bad) {
    if (bad.error === 'too-long' || bad.error === 'too-deep') conn.core.stats.topicLimitRefused++;
    fail(f, 'invalid destination', d.kind === 'topic' ? `topic ${JSON.stringify(d.topic)}: ${bad.reason}` : `queue ${JSON.stringify(d.queue)}: ${bad.reason}`);
  }
  if (!conn.core.access.authorize(conn.identity!, 'publish', d.topic)) {
    conn.log.info('send refused', { evt: 'acl.denied', action: 'publish', clientId: conn.clientId, username: conn.identity?.username, peer: conn.transport.remoteAddress, topic: d.topic, reason: 'not authorized' });
    if (conn.core.tracing.on) conn.trace('drop', d.topic, { reason: 'not_authorized', destination, payload: f.body });
    conn.core.stats.publishDropped++;
    fail(f, 'not authorized', `not allowed to send to ${destination}`);
  }
  let built: ReturnType<typeof sendToDraft>;
  try {
    built = sendToDraft(f, d.topic, conn.sessionId, conn.settings.topicMapping, Date.now());
  } catch (err) {
    if (err instanceof ConvertError) fail(f, 'invalid header', err.message);
    throw err;
  }
  const { draft, delayMs } = built;
  const persist = conn.core.persist;
  const apply = (): Promise<void> | undefined => {
    const mark = persist.mark;
    const tracing = conn.core.tracing.on;
    if (tracing) conn.trace('publish.in', draft.topic, { destination, qos: draft.qos, retain: draft.retain, delayMs, payload: draft.payload });
    const { matched } = conn.core.router.publish(draft, { delayMs });
    if (tracing) conn.trace('route', draft.topic, { matched });
    return persist.since(mark);
  };
  const tx = header(f, 'transaction');
  if (tx !== undefined) {
    const actions = conn.txs.get(tx);
    if (!actions) fail(f, 'unknown transaction', `no transaction ${JSON.stringify(tx)} has begun`);
    actions.push(() => void apply());
    conn.receipt(receipt, undefined);
    return;
  }
  // A persistent message is on disk before its RECEIPT (design.md "Durability contract").
  if (receipt === undefined) conn.receipt(receipt, apply());
  else {
    const since = clock();
    conn.receipt(receipt, apply(), () => conn.core.stats.observeAck('stomp', draft.qos, since));
  }
}

export function handleSubscribe(conn: StompConnection, session: Session, f: Frame): void {
  const receipt = header(f, 'receipt');
  const destination = required(f, 'destination');
  // STOMP 1.0 has no required id: the destination names the subscription.
  const id = header(f, 'id') ?? (conn.version === '1.0' ? destination : required(f, 'id'));
  if (conn.subs.has(id)) fail(f, 'duplicate subscription id', `a subscription with id ${JSON.stringify(id)} already exists on this connection`);
  const max = conn.settings.maxSubscriptions;
  if (max > 0 && conn.subs.size >= max) {
    conn.core.stats.subscriptionsRefused++;
    fail(f, 'too many subscriptions', `this connection has ${max} subscriptions, the limit (limits.maxSubscriptions)`);
  }
  const ackText = header(f, 'ack') ?? 'auto';
  if (ackText !== 'auto' && ackText !== 'client' && !(ackText === 'client-individual' && conn.version !== '1.0')) {
    fail(f, 'invalid ack mode', `ack must be auto, client${conn.version === '1.0' ? '' : ' or client-individual'}, got ${JSON.stringify(ackText)}`);
  }
  const ack = ackText as AckMode;
  const prefetchText = header(f, 'prefetch-count');
  let prefetch: number | undefined;
  if (prefetchText !== undefined) {
    if (!/^\d+$/.test(prefetchText)) fail(f, 'invalid prefetch-count', `prefetch-count must be a whole number, got ${JSON.stringify(prefetchText)}`);
    // RabbitMQ's 0: no limit.
    prefetch = Number(prefetchText) === 0 ? 65535 : Math.min(65535, Number(prefetchText));
  }
  const rhText = header(f, 'retain-handling') ?? '0';
  if (rhText !== '0' && rhText !== '1' && rhText !== '2') fail(f, 'invalid retain-handling', 'retain-handling must be 0, 1 or 2');
  const d = parseDestination(destination, conn.settings.topicMapping);
  if (d.kind === 'invalid') fail(f, 'invalid destination', d.reason);
  const filter = parseFilter(d.topic, conn.settings.topicLimits);
  if (isTopicError(filter)) {
    if (filter.error === 'too-long' || filter.error === 'too-deep') conn.core.stats.topicLimitRefused++;
    fail(f, 'invalid destination', `${destination}: ${filter.reason}`);
  }
  if (filter.share !== undefined) fail(f, 'invalid destination', 'shared subscriptions are for MQTT; use /queue/<name> for competing consumers');
  if (!conn.core.access.authorize(conn.identity!, 'subscribe', d.topic)) {
    conn.log.info('subscription refused', { evt: 'acl.denied', action: 'subscribe', clientId: conn.clientId, username: conn.identity?.username, peer: conn.transport.remoteAddress, topic: d.topic, reason: 'not authorized' });
    if (conn.core.tracing.on) conn.trace('subscribe', d.topic, { destination, id, granted: false, reason: 'not_authorized' });
    fail(f, 'not authorized', `not allowed to subscribe to ${destination}`);
  }
  const sub: Subscription = {
    key: id,
    filter,
    qos: ack === 'auto' ? 0 : 1,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: Number(rhText) as 0 | 1 | 2,
    ...(prefetch !== undefined ? { prefetch } : {}),
    ...(d.kind === 'topic' && conn.core.access.needsReadCheck?.(conn.identity!, d.topic) ? { readCheck: true } : {}),
  };
  const s: StompSubscription = { id, destination, queue: d.kind === 'queue' ? d.queue : undefined, ack, sub };
  conn.subs.set(id, s);
  if (conn.core.tracing.on) conn.trace('subscribe', d.topic, { destination, id, ack, granted: true });
  const mark = conn.core.persist.mark;
  conn.core.router.subscribe(session, sub);
  // Retained messages follow the RECEIPT, with retain:true, unless retain-handling:2 (design.md).
  const retained = d.kind === 'topic' && sub.retainHandling !== 2;
  conn.receipt(receipt, conn.core.persist.since(mark), retained ? () => conn.core.router.sendRetained(session, sub) : undefined);
}

export function handleUnsubscribe(conn: StompConnection, session: Session, f: Frame): void {
  const receipt = header(f, 'receipt');
  let id = header(f, 'id');
  if (id === undefined) {
    if (conn.version !== '1.0') required(f, 'id');
    const dest = required(f, 'destination');
    id = [...conn.subs.values()].find((s) => s.destination === dest)?.id;
  }
  if (id !== undefined && conn.subs.delete(id)) conn.core.router.unsubscribe(session, id);
  conn.receipt(receipt, undefined);
}

export function handleAck(conn: StompConnection, session: Session, f: Frame): void {
  const nack = f.command === 'NACK';
  if (nack && conn.version === '1.0') fail(f, 'unknown command NACK', 'NACK is a STOMP 1.1 and 1.2 frame');
  const receipt = header(f, 'receipt');
  // 1.2 names the delivery with `id` (the MESSAGE's ack header); 1.0 and 1.1 with `message-id`.
  const ackId = header(f, 'id') ?? header(f, 'message-id');
  if (ackId === undefined) fail(f, 'missing id header', `${f.command} needs an ${conn.version === '1.2' ? 'id' : 'message-id'} header`);
  const deliveryId = deliveryIdOf(ackId);
  if (deliveryId === undefined && !/^\d+$/.test(ackId)) fail(f, 'invalid ack id', `${JSON.stringify(ackId)} is not an id this broker gave out`);
  const requeue = header(f, 'requeue') !== 'false';
  const apply = (): void => {
    if (conn.core.tracing.on) conn.trace('ack', undefined, { frame: f.command, id: ackId, ...(nack ? { requeue } : {}) });
    // A message sent without tracking (to an auto subscription, or a QoS 0 message) has nothing to ack.
    if (deliveryId === undefined) return;
    for (const id of ackTargets(conn, session, deliveryId)) {
      if (nack) session.rejected(id, requeue);
      else session.acked(id);
    }
  };
  const tx = header(f, 'transaction');
  if (tx !== undefined) {
    const actions = conn.txs.get(tx);
    if (!actions) fail(f, 'unknown transaction', `no transaction ${JSON.stringify(tx)} has begun`);
    actions.push(apply);
  } else {
    apply();
  }
  conn.receipt(receipt, undefined);
}

/**
 * The deliveries an ACK/NACK of `deliveryId` covers: that one (client-individual), or, for an
 * `ack:client` subscription, every delivery of the same subscription up to it (cumulative).
 */
function ackTargets(conn: StompConnection, session: Session, deliveryId: number): number[] {
  const target = session.inflight.get(deliveryId);
  if (!target) return []; // acknowledged already (e.g. by an earlier cumulative ACK)
  const cumulative = target.matched.map((s) => conn.subs.get(s.key)).find((s) => s?.ack === 'client');
  if (!cumulative) return [deliveryId];
  const ids: number[] = [];
  for (const [id, p] of session.inflight) {
    if (p.matched.some((s) => s.key === cumulative.id)) ids.push(id);
    if (id === deliveryId) break;
  }
  return ids;
}

export function handleBegin(conn: StompConnection, f: Frame): void {
  const tx = required(f, 'transaction');
  if (conn.txs.has(tx)) fail(f, 'transaction already begun', `transaction ${JSON.stringify(tx)} is already open`);
  conn.txs.set(tx, []);
  conn.receipt(header(f, 'receipt'), undefined);
}

export function handleCommitOrAbort(conn: StompConnection, f: Frame): void {
  const tx = required(f, 'transaction');
  const actions = conn.txs.get(tx);
  if (!actions) fail(f, 'unknown transaction', `no transaction ${JSON.stringify(tx)} has begun`);
  conn.txs.delete(tx);
  if (f.command === 'ABORT') {
    conn.receipt(header(f, 'receipt'), undefined);
    return;
  }
  // All of the transaction in this one turn: one storage batch, one fsync, or none of it.
  const persist = conn.core.persist;
  const mark = persist.mark;
  for (const a of actions) a();
  conn.receipt(header(f, 'receipt'), persist.since(mark));
}
