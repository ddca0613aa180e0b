/**
 * `/api/v1/retained`: list (`?match=<filter>`, all when absent, paged by topic), one message
 * (`/retained/{topic}`: percent-encoded `a%2Fb` or a raw tail `a/b`), delete one (as a retained
 * publish with an empty payload does), delete every match (`DELETE /retained?match=<filter>` ->
 * `{deleted:n}`; `match` is required there, `#` deletes all but `$` topics).
 *
 * Payloads: `?encoding=auto|base64` (auto: UTF-8 text when valid, else base64) and `?truncate=N`
 * bytes, as RabbitMQ's get-messages API; a single message is returned whole by default.
 */
import type { Message } from '../../../core/message.js';
import { isTopicError, parseFilter } from '../../../core/topic.js';
import type { Broker } from '../../broker.js';
import type { HttpApp } from '../app.js';
import { pageRequest, paginate } from '../paging.js';
import { badRequest, noContent, notFound, ok } from '../reply.js';
import { iso, payloadOptions, payloadView, propertiesView } from './views.js';

function summary(msg: Message): Record<string, unknown> {
  return { topic: msg.topic, qos: msg.qos, size: msg.payload.length, publishedAt: iso(msg.createdAt), expiresAt: iso(msg.expiresAt) };
}

/** Retained messages matching `filter`, or all of them (with `$` topics) when it is null. */
function matching(broker: Broker, filter: string | null): Message[] {
  const retained = broker.core.router.retained;
  if (filter === null) {
    const now = Date.now();
    return [...retained.all()].filter((m) => m.expiresAt === undefined || m.expiresAt > now);
  }
  const parsed = parseFilter(filter);
  if (isTopicError(parsed) || parsed.share !== undefined || parsed.queue !== undefined) {
    throw badRequest(`match must be a topic filter such as a/+/c or a/#${isTopicError(parsed) ? `: ${parsed.reason}` : ''}`, 'BAD_FILTER');
  }
  const out: Message[] = [];
  retained.match(parsed.filter, (m) => out.push(m));
  return out;
}

export function mountRetained(app: HttpApp): void {
  app.route('GET', '/api/v1/retained', 'viewer', (req) => {
    const page = pageRequest(req.query);
    return ok(paginate(matching(req.broker, req.query.get('match')), (m) => m.topic, page, summary));
  });

  app.route('DELETE', '/api/v1/retained', 'admin', (req) => {
    const match = req.query.get('match');
    if (match === null || match === '') throw badRequest('DELETE /retained needs ?match=<filter> (# for every topic but $ ones)', 'MATCH_REQUIRED');
    const router = req.broker.core.router;
    let deleted = 0;
    for (const m of matching(req.broker, match)) if (router.clearRetained(m.topic)) deleted++;
    req.broker.log.info('retained messages deleted', { evt: 'retained.deleted', match, deleted, by: req.principal?.name });
    return ok({ deleted });
  });

  app.route('GET', '/api/v1/retained/*topic', 'viewer', (req) => {
    const topic = req.params['topic']!;
    const msg = req.broker.core.router.retained.get(topic);
    if (!msg || (msg.expiresAt !== undefined && msg.expiresAt <= Date.now())) throw notFound('RETAINED_NOT_FOUND', `no retained message on ${topic}`);
    return ok({ ...summary(msg), ...payloadView(msg.payload, payloadOptions(req.query)), properties: propertiesView(msg) });
  });

  app.route('DELETE', '/api/v1/retained/*topic', 'admin', (req) => {
    const topic = req.params['topic']!;
    if (!req.broker.core.router.clearRetained(topic)) throw notFound('RETAINED_NOT_FOUND', `no retained message on ${topic}`);
    req.broker.log.info('retained message deleted', { evt: 'retained.deleted', topic, by: req.principal?.name });
    return noContent();
  });
}
