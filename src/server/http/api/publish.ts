/**
 * `POST /api/v1/publish` (role publisher): one message into the router, as a client's PUBLISH
 * would be (retained, `$delayed/<s>/<topic>`, `$queue/<q>` all apply), counted as coming from
 * `http` in the metrics. Body:
 * `{topic | queue, payload, payloadEncoding: "utf8"|"base64", qos, retain, properties}` with
 * properties `{payloadFormatIndicator, contentType, responseTopic, correlationData (base64),
 * userProperties ({k: v} or [[k, v], ...]), messageExpiryInterval (s), priority (0-9)}`.
 *
 * The reply comes once what the publish wrote is on disk: 200 `{id, routed}`, or 202
 * `{id, routed: 0, reason: "no_matching_subscribers"}` (EMQX's answer) when nobody received it
 * (a retained message is still stored then). The admin token is trusted: no ACL is asked.
 */
import type { MessageProps, Qos, UserProperty } from '../../../core/message.js';
import { validateTopicName } from '../../../core/topic.js';
import type { HttpApp } from '../app.js';
import { HttpError, badRequest, json, ok } from '../reply.js';
import { objectBody, onlyKeys } from './views.js';
import { validQueueName } from './queues.js';

const FIELDS = ['topic', 'queue', 'payload', 'payloadEncoding', 'qos', 'retain', 'properties'];
const PROPERTY_FIELDS = ['payloadFormatIndicator', 'contentType', 'responseTopic', 'correlationData', 'userProperties', 'messageExpiryInterval', 'priority'];

function readProps(raw: unknown, now: number): { props: MessageProps; expiresAt: number | undefined } {
  if (raw === undefined) return { props: {}, expiresAt: undefined };
  const p = objectBody(raw);
  onlyKeys(p, PROPERTY_FIELDS);
  const out: { -readonly [K in keyof MessageProps]: MessageProps[K] } = {};
  const str = (k: string): string | undefined => {
    const v = p[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badRequest(`properties.${k} must be a string`);
    return v;
  };
  const pfi = p['payloadFormatIndicator'];
  if (pfi !== undefined && pfi !== 0 && pfi !== 1) throw badRequest('properties.payloadFormatIndicator must be 0 or 1');
  if (pfi === 1) out.payloadUtf8 = true;
  const ct = str('contentType');
  if (ct !== undefined) out.contentType = ct;
  const rt = str('responseTopic');
  if (rt !== undefined) {
    const bad = validateTopicName(rt);
    if (bad) throw badRequest(`properties.responseTopic: ${bad.reason}`);
    out.responseTopic = rt;
  }
  const cd = str('correlationData');
  if (cd !== undefined) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(cd)) throw badRequest('properties.correlationData must be base64');
    out.correlationData = Buffer.from(cd, 'base64');
  }
  const up = p['userProperties'];
  if (up !== undefined) {
    let pairs: UserProperty[];
    if (Array.isArray(up)) {
      if (!up.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string')) {
        throw badRequest('properties.userProperties must be {name: value} or [[name, value], ...] with string names and values');
      }
      pairs = up.map((x) => [x[0] as string, x[1] as string] as const);
    } else if (typeof up === 'object' && up !== null) {
      pairs = Object.entries(up).map(([k, v]) => {
        if (typeof v !== 'string') throw badRequest(`properties.userProperties.${k} must be a string`);
        return [k, v] as const;
      });
    } else throw badRequest('properties.userProperties must be {name: value} or [[name, value], ...]');
    if (pairs.length > 0) out.user = pairs;
  }
  const pr = p['priority'];
  if (pr !== undefined) {
    if (!Number.isInteger(pr) || (pr as number) < 0 || (pr as number) > 9) throw badRequest('properties.priority must be an integer 0..9');
    out.priority = pr as number;
  }
  const mei = p['messageExpiryInterval'];
  let expiresAt: number | undefined;
  if (mei !== undefined) {
    if (!Number.isInteger(mei) || (mei as number) < 0 || (mei as number) > 0xffffffff) throw badRequest('properties.messageExpiryInterval must be seconds, an integer 0..4294967295');
    expiresAt = now + (mei as number) * 1000;
  }
  return { props: out, expiresAt };
}

export function mountPublish(app: HttpApp): void {
  app.route('POST', '/api/v1/publish', 'publisher', async (req) => {
    const body = objectBody(await req.json());
    onlyKeys(body, FIELDS);
    const { topic, queue, payload, payloadEncoding, qos, retain } = body;
    if ((topic === undefined) === (queue === undefined)) throw badRequest('give exactly one of topic and queue');
    const limits = { maxLength: req.broker.config.mqtt.maxTopicLength, maxLevels: req.broker.config.mqtt.maxTopicLevels };
    let target: string;
    if (topic !== undefined) {
      if (typeof topic !== 'string') throw badRequest('topic must be a string', 'BAD_TOPIC');
      const bad = validateTopicName(topic, limits);
      if (bad) throw badRequest(`topic: ${bad.reason}`, 'BAD_TOPIC');
      if (topic === '$SYS' || topic.startsWith('$SYS/')) throw badRequest('$SYS topics are the broker\'s own', 'BAD_TOPIC');
      target = topic;
    } else {
      if (typeof queue !== 'string' || !validQueueName(queue)) throw badRequest('queue must be a queue name (non-empty, no + # or U+0000)', 'BAD_QUEUE_NAME');
      target = `$queue/${queue}`;
    }
    if (payload !== undefined && typeof payload !== 'string') throw badRequest('payload must be a string (utf8 text, or base64 with payloadEncoding: "base64")');
    if (payloadEncoding !== undefined && payloadEncoding !== 'utf8' && payloadEncoding !== 'base64') throw badRequest('payloadEncoding must be utf8 or base64');
    const text = (payload as string | undefined) ?? '';
    if (payloadEncoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(text.replace(/\s+/g, ''))) throw badRequest('payload is not valid base64');
    const bytes = Buffer.from(text, payloadEncoding === 'base64' ? 'base64' : 'utf8');
    if (qos !== undefined && qos !== 0 && qos !== 1 && qos !== 2) throw badRequest('qos must be 0, 1 or 2');
    if (retain !== undefined && typeof retain !== 'boolean') throw badRequest('retain must be true or false');
    if (retain === true && queue !== undefined) throw badRequest('a queue message cannot be retained');
    if (retain === true && !req.broker.config.mqtt.retainAvailable) throw badRequest('retained messages are off (mqtt.retainAvailable: false)');
    const now = Date.now();
    const { props, expiresAt } = readProps(body['properties'], now);
    const result = req.broker.core.router.publish(
      {
        topic: target,
        payload: bytes,
        qos: (qos as Qos | undefined) ?? 0,
        retain: retain === true,
        expiresAt,
        props,
        origin: { clientId: `$admin/${req.principal?.name ?? '?'}`, protocol: 'internal' },
      },
      { source: 'http' },
    );
    if (result.durable) {
      try {
        await result.durable;
      } catch (err) {
        throw new HttpError(503, 'STORE_WRITE_FAILED', `the message could not be stored: ${String(err)}`);
      }
    }
    const id = result.id ?? null;
    if (result.matched === 0) return json(202, { id, routed: 0, reason: 'no_matching_subscribers' });
    return ok({ id, routed: result.matched });
  });
}
