/**
 * `/api/v1/clients`: every session the broker holds, connected or offline, MQTT and STOMP.
 *
 * A client is found by its session key (MQTT client id; STOMP session id `stomp-…`) or, for STOMP,
 * by the `client-id` header it connected with. `DELETE` kicks: an MQTT 5 client gets DISCONNECT
 * 0x98 (Administrative action), a 3.1.1 client is closed, a STOMP client gets an ERROR frame and is
 * closed; counted as `closed_total{reason="kicked"}`. Its will is published (the connection did not
 * end normally), as EMQX does on a kick. With `?discardSession=true` the session goes too (else a
 * persistent session waits for the client as after any disconnect). An offline session has no
 * connection to close: deleting it discards it.
 */
import type { Session, Subscription } from '../../../core/session.js';
import type { Broker } from '../../broker.js';
import type { ApiRequest, HttpApp } from '../app.js';
import { pageRequest, paginate } from '../paging.js';
import { notFound, noContent, ok } from '../reply.js';
import { boolParam, ipMatcher, iso, oneOfParam, splitAddress } from './views.js';

export interface ClientView {
  readonly clientId: string;
  readonly protocol: string;
  readonly state: 'connected' | 'offline';
  readonly version: string | null;
  readonly listener: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly username: string | null;
  readonly connectedAt: string | null;
  readonly keepalive: number | null;
  readonly cleanStart: boolean | null;
  readonly sessionExpiry: number;
  readonly inflight: number;
  readonly queued: number;
  readonly subscriptions: number;
  readonly msgsIn: number;
  readonly msgsOut: number;
  readonly tls: boolean;
  /** STOMP: the broker's session id when the client named itself with a `client-id` header. */
  readonly sessionId?: string;
}

export function clientView(broker: Broker, session: Session): ClientView {
  const outlet = session.currentOutlet;
  const c = outlet?.client;
  const addr = c ? splitAddress(c.remoteAddress) : undefined;
  const spec = c ? broker.listeners.find((l) => l.spec.name === c.listener)?.spec : undefined;
  return {
    clientId: c?.clientId ?? session.clientId,
    protocol: session.protocol,
    state: session.attached ? 'connected' : 'offline',
    version: c?.version ?? null,
    listener: c?.listener ?? null,
    ip: addr?.ip ?? null,
    port: addr?.port ?? null,
    username: c?.username ?? session.identity?.username ?? null,
    connectedAt: iso(c?.connectedAt),
    keepalive: c?.keepalive ?? null,
    cleanStart: c?.cleanStart ?? null,
    sessionExpiry: session.expiryInterval,
    inflight: session.inflight.size,
    queued: session.queued,
    subscriptions: session.subscriptions.size,
    msgsIn: outlet?.msgsIn ?? 0,
    msgsOut: outlet?.msgsOut ?? 0,
    tls: spec?.tls !== undefined,
    ...(c && c.clientId !== session.clientId ? { sessionId: session.clientId } : {}),
  };
}

export function subscriptionView(clientId: string, sub: Subscription): Record<string, unknown> {
  const f = sub.filter;
  return {
    clientId,
    key: sub.key,
    filter: f.raw,
    topic: f.queue !== undefined ? `$queue/${f.queue}` : f.filter,
    share: f.share ?? null,
    queue: f.queue ?? null,
    qos: sub.qos,
    noLocal: sub.noLocal,
    retainAsPublished: sub.retainAsPublished,
    retainHandling: sub.retainHandling,
    identifier: sub.identifier ?? null,
  };
}

/** The session named `id`: a session key, or a STOMP client's `client-id`. */
export function findSession(broker: Broker, id: string): Session | undefined {
  const sessions = broker.core.sessions;
  const direct = sessions.get(id);
  if (direct) return direct;
  for (const s of sessions.sessions.values()) if (s.currentOutlet?.client?.clientId === id) return s;
  return undefined;
}

function clientNotFound(id: string): Error {
  return notFound('CLIENT_NOT_FOUND', `no client ${JSON.stringify(id)}: neither connected nor holding a session`);
}

function list(req: ApiRequest): ReturnType<typeof ok> {
  const q = req.query;
  const page = pageRequest(q);
  const clientId = q.get('clientId');
  const like = q.get('like');
  const username = q.get('username');
  const ip = q.get('ip');
  const inIp = ip ? ipMatcher(ip) : undefined;
  const protocol = oneOfParam(q, 'protocol', ['mqtt', 'stomp'] as const);
  const listener = q.get('listener');
  const state = oneOfParam(q, 'state', ['connected', 'offline'] as const);
  const hasBacklog = boolParam(q, 'hasBacklog');
  const broker = req.broker;
  const views: ClientView[] = [];
  for (const session of broker.core.sessions.sessions.values()) {
    if (protocol && session.protocol !== protocol) continue;
    if (state && (state === 'connected') !== session.attached) continue;
    if (hasBacklog !== undefined && session.queued > 0 !== hasBacklog) continue;
    const v = clientView(broker, session);
    if (clientId && v.clientId !== clientId && session.clientId !== clientId) continue;
    if (like && !v.clientId.includes(like)) continue;
    if (username && v.username !== username) continue;
    if (listener && v.listener !== listener) continue;
    if (inIp && (v.ip === null || !inIp(v.ip))) continue;
    views.push(v);
  }
  return ok(paginate(views, (v) => `${v.clientId}\u0000${v.sessionId ?? ''}`, page));
}

export function mountClients(app: HttpApp): void {
  app.route('GET', '/api/v1/clients', 'viewer', list);

  app.route('GET', '/api/v1/clients/:id', 'viewer', (req) => {
    const id = req.params['id']!;
    const session = findSession(req.broker, id);
    if (!session) throw clientNotFound(id);
    const v = clientView(req.broker, session);
    return ok({ ...v, subscriptions: [...session.subscriptions.values()].map((s) => subscriptionView(v.clientId, s)) });
  });

  app.route('DELETE', '/api/v1/clients/:id', 'admin', (req) => {
    const id = req.params['id']!;
    const discard = boolParam(req.query, 'discardSession') ?? false;
    const broker = req.broker;
    const session = findSession(broker, id);
    if (!session) throw clientNotFound(id);
    const sessions = broker.core.sessions;
    const outlet = session.currentOutlet;
    const connected = outlet !== undefined;
    // Read before close(): the one client.kicked line names the connection (the adapters log none).
    const v = clientView(broker, session);
    // close() ends the connection at once and hands the session back to the registry (offline).
    outlet?.close('kicked');
    const discarded = discard || !connected;
    if (discarded && sessions.get(session.clientId) === session) sessions.end(session);
    broker.log.info('client kicked', {
      evt: 'client.kicked',
      clientId: id,
      username: v.username ?? undefined,
      peer: outlet?.client?.remoteAddress,
      listener: v.listener ?? undefined,
      protocol: v.protocol,
      reason: 'kicked',
      by: req.principal?.name,
      connected,
      discardSession: discarded,
    });
    return noContent();
  });
}
