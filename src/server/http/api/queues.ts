/**
 * `/api/v1/queues`: durable queues and their dead-letter queues (`DLQ.<name>`).
 *
 * - Browsing is non-destructive, unlike RabbitMQ's get-messages (which requeues and so marks a
 *   message redelivered): it reads the ready entries in delivery order (priority, then FIFO) from
 *   memory, which mirrors storage exactly, and changes nothing: no delivery count, no redelivered
 *   flag, no order. Entries out for delivery (unacked) belong to their consumer and are not listed.
 *   A message's `id` is its sequence number in the queue (the storage row key).
 * - Purge removes ready messages only; unacked ones stay with their consumers (RabbitMQ).
 * - Replay moves ready messages of a queue (usually a DLQ) to `target`, or each to the queue it
 *   was dead-lettered from (`death.fromQueue`, rabbitmq-server#10937). Each move queues the target's
 *   put and this queue's delete in one turn, so they reach storage in one atomic batch; the reply
 *   comes once they are on disk. Messages with no target (not dead letters) are skipped.
 * - Queues exist from first use (STOMP /queue/x, MQTT $queue/x, config bindings); `PUT` creates
 *   one ahead of use. `DELETE` refuses (409) a queue with consumers or bound by the config, and,
 *   with `?ifEmpty=true`, one holding messages.
 */
import { DLQ_PREFIX, type Queue, type QueueEntry } from '../../../core/queues.js';
import type { Broker } from '../../broker.js';
import type { ApiRequest, HttpApp } from '../app.js';
import { numericKey, pageRequest, paginate } from '../paging.js';
import { badRequest, conflict, created, noContent, notFound, ok } from '../reply.js';
import { boolParam, headersView, iso, objectBody, onlyKeys, payloadOptions, payloadView, propertiesView } from './views.js';

/** Priorities a queue orders by (queues.ts: 0-9). */
const MAX_PRIORITY = 9;

export function validQueueName(name: string): boolean {
  return name !== '' && !/[+#\u0000]/.test(name) && Buffer.byteLength(name) <= 65535 - 7;
}

function queueOf(req: ApiRequest): Queue {
  const name = req.params['q']!;
  const q = req.broker.core.router.queues.queues.get(name);
  if (!q) throw notFound('QUEUE_NOT_FOUND', `no queue named ${name}`);
  return q;
}

/** Delayed messages per destination queue (`$queue/<name>`), counted once per request. */
function delayedByQueue(broker: Broker): Map<string, number> {
  const out = new Map<string, number>();
  for (const { message } of broker.core.router.delayed.list()) {
    if (!message.topic.startsWith('$queue/')) continue;
    const name = message.topic.slice(7);
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

export function queueView(q: Queue, delayed: ReadonlyMap<string, number>): Record<string, unknown> {
  const dlq = q.name.startsWith(DLQ_PREFIX);
  return {
    name: q.name,
    kind: dlq ? 'dlq' : 'normal',
    durable: true,
    ready: q.waiting,
    unacked: q.unacked,
    delayed: delayed.get(q.name) ?? 0,
    consumers: q.consumerCount,
    // A DLQ's own rejects are dropped (queues.ts): it dead-letters nowhere.
    deadLetterTo: dlq ? null : DLQ_PREFIX + q.name,
    ttlMs: null,
    maxLength: null,
    maxPriority: MAX_PRIORITY,
  };
}

function messageView(e: QueueEntry, opts: ReturnType<typeof payloadOptions>): Record<string, unknown> {
  const msg = e.message;
  const d = e.deadLetter;
  return {
    id: e.seq,
    messageId: msg.id,
    topic: msg.topic,
    // When it entered this queue: its dead-lettering for a DLQ entry, else its publication.
    enqueuedAt: iso(d?.at ?? msg.createdAt),
    publishedAt: iso(msg.createdAt),
    priority: e.priority,
    deliveryCount: e.deliveries,
    redelivered: e.redelivered,
    expiresAt: iso(msg.expiresAt),
    headers: headersView(msg),
    properties: propertiesView(msg),
    ...payloadView(msg.payload, opts),
    death: d ? { reason: d.reason, fromQueue: d.queue, count: 1, firstAt: iso(d.at) } : null,
  };
}

function boundByConfig(broker: Broker, name: string): boolean {
  return broker.config.queues.bindings.some((b) => b.queue === name);
}

export function mountQueues(app: HttpApp): void {
  app.route('GET', '/api/v1/queues', 'viewer', (req) => {
    const page = pageRequest(req.query);
    const delayed = delayedByQueue(req.broker);
    return ok(paginate(req.broker.core.router.queues.queues.values(), (q) => q.name, page, (q) => queueView(q, delayed)));
  });

  app.route('GET', '/api/v1/queues/:q', 'viewer', (req) => ok(queueView(queueOf(req), delayedByQueue(req.broker))));

  app.route('PUT', '/api/v1/queues/:q', 'admin', async (req) => {
    const name = req.params['q']!;
    if (!validQueueName(name)) throw badRequest('a queue name is non-empty and holds no + # or U+0000', 'BAD_QUEUE_NAME');
    const body = objectBody(await req.json(), true);
    // Per-queue TTL, length limits and DLX targets are not settable yet: refuse rather than ignore.
    onlyKeys(body, ['durable']);
    if (body['durable'] === false) throw badRequest('queues are always durable');
    const registry = req.broker.core.router.queues;
    const existed = registry.queues.has(name);
    const q = registry.get(name);
    await req.broker.core.persist.barrier();
    if (existed) return noContent();
    req.broker.log.info('queue created', { evt: 'queue.created', queue: name, by: req.principal?.name });
    return created(queueView(q, delayedByQueue(req.broker)));
  });

  app.route('DELETE', '/api/v1/queues/:q', 'admin', async (req) => {
    const q = queueOf(req);
    if (q.consumerCount > 0) throw conflict('QUEUE_IN_USE', `queue ${q.name} has ${q.consumerCount} consumer(s): they must unsubscribe or be kicked first`);
    if (boundByConfig(req.broker, q.name)) throw conflict('QUEUE_BOUND', `queue ${q.name} is bound in queues.bindings of the config: remove the binding and reload first`);
    if (boolParam(req.query, 'ifEmpty') === true && q.depth > 0) throw conflict('QUEUE_NOT_EMPTY', `queue ${q.name} holds ${q.depth} message(s)`);
    req.broker.core.router.queues.delete(q.name);
    await req.broker.core.persist.barrier();
    req.broker.log.info('queue deleted', { evt: 'queue.deleted', queue: q.name, by: req.principal?.name });
    return noContent();
  });

  app.route('POST', '/api/v1/queues/:q/purge', 'admin', async (req) => {
    const q = queueOf(req);
    const purged = q.purge();
    await req.broker.core.persist.barrier();
    req.broker.log.info('queue purged', { evt: 'queue.purged', queue: q.name, purged, by: req.principal?.name });
    return ok({ purged });
  });

  app.route('GET', '/api/v1/queues/:q/messages', 'viewer', (req) => {
    const q = queueOf(req);
    const page = pageRequest(req.query);
    const opts = payloadOptions(req.query, 4096);
    // Read-only walk: browse() yields the entries as they are; nothing here assigns to them.
    return ok(paginate(q.browse(), (e) => numericKey(e.seq), page, (e) => messageView(e, opts)));
  });

  app.route('DELETE', '/api/v1/queues/:q/messages/:id', 'admin', async (req) => {
    const q = queueOf(req);
    const id = req.params['id']!;
    const entry = /^\d{1,15}$/.test(id) ? q.findReady(Number(id)) : undefined;
    if (!entry || !q.deleteReady(entry)) throw notFound('MESSAGE_NOT_FOUND', `queue ${q.name} has no ready message ${id} (gone, or out for delivery)`);
    await req.broker.core.persist.barrier();
    return noContent();
  });

  app.route('POST', '/api/v1/queues/:q/replay', 'admin', async (req) => {
    const q = queueOf(req);
    const body = objectBody(await req.json(), true);
    onlyKeys(body, ['target', 'ids', 'limit']);
    const { target, ids, limit } = body;
    if (target !== undefined && (typeof target !== 'string' || !validQueueName(target))) throw badRequest('target must be a queue name');
    if (target === q.name) throw badRequest('target is the queue itself');
    if (ids !== undefined && (!Array.isArray(ids) || !ids.every((i) => Number.isSafeInteger(i)))) throw badRequest('ids must be a list of message ids (integers)');
    if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) >= 1)) throw badRequest('limit must be an integer >= 1');
    const wanted = ids === undefined ? undefined : new Set(ids as number[]);
    const registry = req.broker.core.router.queues;
    let moved = 0;
    let skipped = 0;
    // A snapshot: moving changes the queue's ready list.
    for (const entry of [...q.browse()]) {
      if (limit !== undefined && moved >= (limit as number)) break;
      if (wanted && !wanted.has(entry.seq)) continue;
      const to = (target as string | undefined) ?? entry.deadLetter?.queue;
      if (to === undefined || to === q.name || !q.moveReady(entry, registry.get(to))) {
        skipped++;
        continue;
      }
      moved++;
    }
    await req.broker.core.persist.barrier();
    req.broker.log.info('queue messages replayed', { evt: 'queue.replayed', queue: q.name, target: target ?? 'origin', moved, skipped, by: req.principal?.name });
    return ok({ moved, skipped });
  });
}
