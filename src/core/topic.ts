/**
 * Topic names and filters: validation, `$share` parsing and the reference matcher.
 * Pure functions; errors are neutral values that adapters map to reason codes or ERROR frames.
 */

export interface TopicLimits {
  /** Maximum length in UTF-8 bytes. */
  readonly maxLength: number;
  /** Maximum number of levels ("a/b/c" has 3). */
  readonly maxLevels: number;
}

export const DEFAULT_TOPIC_LIMITS: TopicLimits = { maxLength: 65535, maxLevels: 128 };

export type TopicErrorKind = 'empty' | 'wildcard' | 'nul' | 'too-long' | 'too-deep' | 'bad-wildcard' | 'bad-share' | 'bad-queue';

export interface TopicError {
  readonly error: TopicErrorKind;
  readonly reason: string;
}

export interface ParsedFilter {
  /** The text as subscribed, including any `$share/<group>/` prefix. */
  readonly raw: string;
  /** The topic filter to match against (the part after `$share/<group>/`). */
  readonly filter: string;
  /** Shared subscription group, when subscribed as `$share/<group>/<filter>`. */
  readonly share?: string;
  /** Queue name, when subscribed as `$queue/<name>` (a consumer of that durable queue). */
  readonly queue?: string;
  /** True when the filter holds `+` or `#`. */
  readonly wildcard: boolean;
}

function topicError(error: TopicErrorKind, reason: string): TopicError {
  return { error, reason };
}

function checkCommon(s: string, limits: TopicLimits): TopicError | null {
  if (s.length === 0) return topicError('empty', 'must not be empty');
  if (s.includes('\u0000')) return topicError('nul', 'must not contain U+0000'); // [MQTT-1.5.4-2]
  // Cheap pre-check: UTF-16 length is a lower bound on the UTF-8 byte length.
  if (s.length > limits.maxLength || Buffer.byteLength(s) > limits.maxLength) {
    return topicError('too-long', `longer than ${limits.maxLength} bytes`);
  }
  let levels = 1;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 0x2f) levels++;
  if (levels > limits.maxLevels) return topicError('too-deep', `more than ${limits.maxLevels} levels`);
  return null;
}

/** A topic name as published: no wildcards [MQTT-3.3.2-2], non-empty [MQTT-4.7.3-1], no U+0000. */
export function validateTopicName(name: string, limits: TopicLimits = DEFAULT_TOPIC_LIMITS): TopicError | null {
  const common = checkCommon(name, limits);
  if (common) return common;
  if (name.includes('+') || name.includes('#')) return topicError('wildcard', 'wildcards are not allowed in a topic name');
  return null;
}

function checkFilterLevels(filter: string): TopicError | null {
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return topicError('bad-wildcard', "'#' must be the whole last level"); // [MQTT-4.7.1-2]
    }
    if (level.includes('+') && level !== '+') {
      return topicError('bad-wildcard', "'+' must occupy a whole level"); // [MQTT-4.7.1-3]
    }
  }
  return null;
}

/** A subscription filter, with `$share/<group>/<filter>` parsed once here. */
export function parseFilter(raw: string, limits: TopicLimits = DEFAULT_TOPIC_LIMITS): ParsedFilter | TopicError {
  const common = checkCommon(raw, limits);
  if (common) return common;
  if (raw.startsWith('$queue/')) {
    const name = raw.slice(7);
    if (name.length === 0 || name.includes('+') || name.includes('#')) {
      return topicError('bad-queue', 'a queue name must be non-empty and hold no wildcards');
    }
    return { raw, filter: raw, queue: name, wildcard: false };
  }
  let filter = raw;
  let share: string | undefined;
  if (raw.startsWith('$share/')) {
    const slash = raw.indexOf('/', 7);
    share = slash < 0 ? raw.slice(7) : raw.slice(7, slash);
    // [MQTT-4.8.2-1] [MQTT-4.8.2-2]: a non-empty group without wildcards, then a filter.
    if (share.length === 0 || share.includes('+') || share.includes('#')) {
      return topicError('bad-share', 'shared subscription group must be non-empty and hold no wildcards');
    }
    if (slash < 0 || slash === raw.length - 1) {
      return topicError('bad-share', 'shared subscription needs a topic filter after the group');
    }
    filter = raw.slice(slash + 1);
  }
  const bad = checkFilterLevels(filter);
  if (bad) return bad;
  const wildcard = filter.includes('+') || filter.includes('#');
  return share === undefined ? { raw, filter, wildcard } : { raw, filter, share, wildcard };
}

export function isTopicError(v: ParsedFilter | TopicError): v is TopicError {
  return 'error' in v;
}

/**
 * The reference matcher, written for clarity, not speed: the test oracle for TopicTree and
 * RetainedIndex. A filter starting with a wildcard never matches a `$` topic [MQTT-4.7.2-1].
 */
export function matches(topic: string, filter: string): boolean {
  const t = topic.split('/');
  const f = filter.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // also matches the parent level: "a/#" matches "a"
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return t.length === f.length;
}

/**
 * True when every topic `inner` matches is also matched by `outer` (filters without `$share`).
 * Used to decide whether a subscription is wholly inside an ACL grant.
 */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const i = inner.split('/');
  // A leading wildcard never reaches `$` topics [MQTT-4.7.2-1].
  if ((o[0] === '+' || o[0] === '#') && i[0]!.startsWith('$')) return false;
  for (let k = 0; k < o.length; k++) {
    if (o[k] === '#') return true;
    if (k >= i.length) return false;
    if (i[k] === '#') return false;
    if (o[k] === '+') continue;
    if (i[k] === '+' || i[k] !== o[k]) return false;
  }
  return o.length === i.length;
}

/** True when some topic matches both filters. */
export function filtersIntersect(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  const dollarX = x[0]!.startsWith('$');
  const dollarY = y[0]!.startsWith('$');
  if ((dollarX && (y[0] === '+' || y[0] === '#')) || (dollarY && (x[0] === '+' || x[0] === '#'))) return false;
  for (let k = 0; ; k++) {
    const p = x[k];
    const q = y[k];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}
