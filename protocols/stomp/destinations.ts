/**
 * STOMP destinations <-> the one namespace (design.md "One namespace"):
 *   /topic/<T>  the MQTT topic <T> verbatim (MQTT wildcards in SUBSCRIBE), or with
 *               `stomp.topicMapping: rabbitmq` RabbitMQ's form: /topic/a.b.c is a/b/c, `*` is `+`
 *   /queue/<Q>  the durable queue <Q> (core topic `$queue/<Q>`)
 * Anything else (RabbitMQ's /exchange/, /amq/queue/, /temp-queue/...) is refused with a reason.
 */

export type TopicMapping = 'mqtt' | 'rabbitmq';

export type Destination =
  | { readonly kind: 'topic'; readonly topic: string }
  | { readonly kind: 'queue'; readonly queue: string; readonly topic: string }
  | { readonly kind: 'invalid'; readonly reason: string };

const TOPIC = '/topic/';
const QUEUE = '/queue/';

/** Parses a destination; `filter` allows wildcards (SUBSCRIBE). */
export function parseDestination(dest: string, mapping: TopicMapping): Destination {
  if (dest.startsWith(QUEUE)) {
    const queue = dest.slice(QUEUE.length);
    if (queue.length === 0) return { kind: 'invalid', reason: 'empty queue name' };
    if (queue.includes('\u0000')) return { kind: 'invalid', reason: 'queue name contains U+0000' };
    return { kind: 'queue', queue, topic: `$queue/${queue}` };
  }
  if (dest.startsWith(TOPIC)) {
    const rest = dest.slice(TOPIC.length);
    if (rest.length === 0) return { kind: 'invalid', reason: 'empty topic' };
    return { kind: 'topic', topic: mapping === 'rabbitmq' ? fromRabbit(rest) : rest };
  }
  return {
    kind: 'invalid',
    reason: `unsupported destination ${JSON.stringify(dest)}: use /topic/<topic> or /queue/<queue>`,
  };
}

/** The destination header of a MESSAGE for a message on `topic`. */
export function topicDestination(topic: string, mapping: TopicMapping): string {
  return TOPIC + (mapping === 'rabbitmq' ? toRabbit(topic) : topic);
}

export function queueDestination(queue: string): string {
  return QUEUE + queue;
}

// RabbitMQ's STOMP topic routing keys: words split by '.', `*` one word, `#` zero or more words.
function fromRabbit(key: string): string {
  return key
    .split('.')
    .map((w) => (w === '*' ? '+' : w))
    .join('/');
}

function toRabbit(topic: string): string {
  return topic
    .split('/')
    .map((w) => (w === '+' ? '*' : w))
    .join('.');
}
