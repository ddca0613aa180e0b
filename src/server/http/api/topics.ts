/**
 * `/api/v1/subscriptions` and `/api/v1/topics/tree`.
 *
 * - Subscriptions: every subscription of every session (MQTT filters, `$share/<g>/<f>` members,
 *   STOMP subscriptions by id, queue consumers), filtered by `clientId`, `filter` (the text as
 *   subscribed), `share`, `qos`; `match=<topic>` lists those whose filter matches the topic, i.e.
 *   who would receive a message published there (every member of a shared group is listed, one
 *   of them gets each message; queue bindings from the config appear with `clientId` `$queue/<q>`).
 * - Topic tree: one level below `prefix` at a time (lazy), built from subscription filters and
 *   retained topics: `{level, topic, subscribers, retained, children}` where `subscribers` counts
 *   subscriptions whose filter is exactly that path, `retained` says whether that exact topic holds
 *   a retained message, and `children` counts the levels below it.
 */
import type { Broker } from '../../broker.js';
import type { HttpApp } from '../app.js';
import { pageRequest, paginate } from '../paging.js';
import { badRequest, ok } from '../reply.js';
import { clientView, subscriptionView } from './clients.js';
import { intParam } from './views.js';
import { validateTopicName } from '../../../core/topic.js';

type SubView = ReturnType<typeof subscriptionView>;

function allSubscriptions(broker: Broker): SubView[] {
  const out: SubView[] = [];
  for (const session of broker.core.sessions.sessions.values()) {
    const clientId = clientView(broker, session).clientId;
    for (const sub of session.subscriptions.values()) out.push(subscriptionView(clientId, sub));
  }
  return out;
}

function whoReceives(broker: Broker, topic: string): SubView[] {
  const out: SubView[] = [];
  for (const { clientId, key } of broker.core.router.subscribersOf(topic)) {
    const session = broker.core.sessions.get(clientId);
    const sub = session?.subscriptions.get(key);
    if (session && sub) out.push(subscriptionView(clientView(broker, session).clientId, sub));
    else if (clientId.startsWith('$queue/')) {
      // A queue bound by the config: it receives (enqueues) every matching message.
      out.push({ clientId, key, filter: null, topic, share: null, queue: clientId.slice(7), qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, identifier: null });
    }
  }
  return out;
}

interface TreeNode {
  subscribers: number;
  retained: boolean;
  readonly children: Set<string>;
}

export function mountTopics(app: HttpApp): void {
  app.route('GET', '/api/v1/subscriptions', 'viewer', (req) => {
    const q = req.query;
    const page = pageRequest(q);
    const match = q.get('match');
    let subs: SubView[];
    if (match !== null) {
      const bad = validateTopicName(match);
      if (bad) throw badRequest(`match must be a topic name (no wildcards): ${bad.reason}`, 'BAD_TOPIC');
      subs = whoReceives(req.broker, match);
    } else subs = allSubscriptions(req.broker);
    const clientId = q.get('clientId');
    const filter = q.get('filter');
    const share = q.get('share');
    const qos = intParam(q, 'qos', 0, 2);
    const picked = subs.filter(
      (s) =>
        (clientId === null || s['clientId'] === clientId) &&
        (filter === null || s['filter'] === filter) &&
        (share === null || s['share'] === share) &&
        (qos === undefined || s['qos'] === qos),
    );
    return ok(paginate(picked, (s) => `${String(s['clientId'])}\u0000${String(s['key'])}`, page));
  });

  app.route('GET', '/api/v1/topics/tree', 'viewer', (req) => {
    const prefix = req.query.get('prefix') ?? '';
    if (prefix.includes('\u0000')) throw badRequest('prefix must not contain U+0000');
    const base = prefix === '' ? [] : prefix.split('/');
    const depth = base.length;
    const nodes = new Map<string, TreeNode>();
    const visit = (topic: string, kind: 'sub' | 'retained'): void => {
      const levels = topic.split('/');
      if (levels.length <= depth) return;
      for (let i = 0; i < depth; i++) if (levels[i] !== base[i]) return;
      const level = levels[depth]!;
      let n = nodes.get(level);
      if (!n) {
        n = { subscribers: 0, retained: false, children: new Set() };
        nodes.set(level, n);
      }
      if (levels.length === depth + 1) {
        if (kind === 'sub') n.subscribers++;
        else n.retained = true;
      } else n.children.add(levels[depth + 1]!);
    };
    const router = req.broker.core.router;
    for (const session of req.broker.core.sessions.sessions.values()) {
      for (const sub of session.subscriptions.values()) {
        const f = sub.filter;
        visit(f.queue !== undefined ? `$queue/${f.queue}` : f.filter, 'sub');
      }
    }
    for (const msg of router.retained.all()) visit(msg.topic, 'retained');
    const data = [...nodes.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([level, n]) => ({
        level,
        topic: [...base, level].join('/'),
        subscribers: n.subscribers,
        retained: n.retained,
        children: n.children.size,
      }));
    return ok({ data, meta: { prefix } });
  });
}

