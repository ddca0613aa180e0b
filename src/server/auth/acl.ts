/**
 * ACL file, Mosquitto's format (mosquitto.conf(5) "acl_file"):
 *
 *   topic [read|write|readwrite|deny] <filter>     before any `user` line: anonymous clients
 *   user <name>
 *   topic [read|write|readwrite|deny] <filter>     that user's rules
 *   pattern [read|write|readwrite|deny] <filter>   every client; %u = username, %c = client id
 *
 * The access word may be left out (readwrite). A `deny` rule wins over any grant that matches the
 * same topic. Read means subscribe and receive, write means publish. A file with any bad line is
 * refused whole, with file, line and reason: a broken ACL never leaves the broker open.
 *
 * Checks run on the publish and delivery paths, so each client's rules are compiled once (at its
 * first check) into filter sets (a trie per access kind): a check costs a walk bounded by the
 * topic's depth, not a scan of the rules, and allocates nothing but the level strings.
 */
import { filterCovers, filtersIntersect, isTopicError, parseFilter } from '../../core/topic.js';

export type Access = 'read' | 'write' | 'readwrite' | 'deny';

interface Rule {
  readonly access: Access;
  readonly filter: string;
  readonly line: number;
}

export class AclError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'AclError';
  }
}

const ACCESS = new Set<Access>(['read', 'write', 'readwrite', 'deny']);

class Level {
  readonly children = new Map<string, Level>();
  plus: Level | undefined;
  /** A filter ends here with '#': it matches this level and everything below it. */
  hash = false;
  /** A filter ends exactly here. */
  end = false;
}

/**
 * Topic filters that answer one question: does any of them match this topic? (The router's
 * TopicTree visits every matching value through a callback; a yes or no needs neither.) Matches as
 * core/topic.ts `matches` does, which test/unit/acl.test.ts checks.
 */
export class FilterSet {
  private readonly exact = new Set<string>();
  private readonly root = new Level();
  size = 0;

  add(filter: string): void {
    this.size++;
    if (!filter.includes('+') && !filter.includes('#')) {
      this.exact.add(filter);
      return;
    }
    let node = this.root;
    for (const level of filter.split('/')) {
      if (level === '#') {
        node.hash = true;
        return;
      }
      let next = level === '+' ? node.plus : node.children.get(level);
      if (!next) {
        next = new Level();
        if (level === '+') node.plus = next;
        else node.children.set(level, next);
      }
      node = next;
    }
    node.end = true;
  }

  matches(topic: string): boolean {
    if (this.size === 0) return false;
    if (this.exact.has(topic)) return true;
    // A filter starting with a wildcard does not match a topic starting with '$' [MQTT-4.7.2-1].
    return matchFrom(this.root, topic, 0, topic.charCodeAt(0) === 0x24);
  }
}

/** Whether a filter below `node` matches `topic` from `start` (the beginning of a level). */
function matchFrom(node: Level, topic: string, start: number, noWildcard: boolean): boolean {
  // "a/#" matches "a" itself and everything below it [MQTT-4.7.1-2].
  if (node.hash && !noWildcard) return true;
  const slash = topic.indexOf('/', start);
  const end = slash < 0 ? topic.length : slash;
  const next = node.children.size > 0 ? node.children.get(topic.slice(start, end)) : undefined;
  if (next && (slash < 0 ? next.end || next.hash : matchFrom(next, topic, end + 1, false))) return true;
  const plus = noWildcard ? undefined : node.plus;
  return plus !== undefined && (slash < 0 ? plus.end || plus.hash : matchFrom(plus, topic, end + 1, false));
}

/** One client's rules, compiled. */
export class CompiledAcl {
  private readonly read = new FilterSet();
  private readonly write = new FilterSet();
  private readonly deny = new FilterSet();
  private readonly readFilters: string[] = [];
  private readonly denyFilters: string[] = [];

  constructor(rules: readonly Rule[]) {
    for (const r of rules) {
      if (r.access === 'deny') {
        this.deny.add(r.filter);
        this.denyFilters.push(r.filter);
        continue;
      }
      if (r.access !== 'write') {
        this.read.add(r.filter);
        this.readFilters.push(r.filter);
      }
      if (r.access !== 'read') this.write.add(r.filter);
    }
  }

  canPublish(topic: string): boolean {
    return !this.deny.matches(topic) && this.write.matches(topic);
  }

  /** Receive a message on `topic` (a delivery through a wildcard subscription, a retained message). */
  canRead(topic: string): boolean {
    return !this.deny.matches(topic) && this.read.matches(topic);
  }

  /**
   * Subscribe to `filter`: allowed when some read grant covers it and no deny rule covers it
   * wholly. A deny rule covering only part of it is enforced per delivery (`needsReadCheck`).
   */
  canSubscribe(filter: string): boolean {
    if (this.denyFilters.some((d) => filterCovers(d, filter))) return false;
    return this.readFilters.some((g) => filterCovers(g, filter));
  }

  /** False when every topic `filter` can match is readable, so deliveries need no check. */
  needsReadCheck(filter: string): boolean {
    if (this.denyFilters.some((d) => filtersIntersect(d, filter))) return true;
    return !this.readFilters.some((g) => filterCovers(g, filter));
  }
}

/** Substitutes %u and %c; undefined when the value would change the filter's shape. */
function substitute(filter: string, username: string | undefined, clientId: string): string | undefined {
  let out = filter;
  if (out.includes('%u')) {
    // Mosquitto skips the rule for a client without a username, and so do we; a value with
    // wildcards or separators would widen the rule, so it is skipped too.
    if (username === undefined || /[+#/]/.test(username)) return undefined;
    out = out.split('%u').join(username);
  }
  if (out.includes('%c')) {
    if (/[+#/]/.test(clientId)) return undefined;
    out = out.split('%c').join(clientId);
  }
  return out;
}

export class Acl {
  private constructor(
    private readonly anonymous: readonly Rule[],
    private readonly users: ReadonlyMap<string, readonly Rule[]>,
    private readonly patterns: readonly Rule[],
    readonly ruleCount: number,
  ) {}

  /** Parses an ACL file's text; throws AclError naming the line. */
  static parse(text: string, file: string): Acl {
    const anonymous: Rule[] = [];
    const users = new Map<string, Rule[]>();
    const patterns: Rule[] = [];
    let current: Rule[] = anonymous;
    let count = 0;
    const lines = text.split(/\r?\n/);
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const lineNo = n + 1;
      const m = /^(\S+)\s*(.*)$/.exec(line)!;
      const word = m[1]!;
      const rest = m[2]!;
      if (word === 'user') {
        if (rest === '') throw new AclError(file, lineNo, 'user needs a name');
        current = users.get(rest) ?? [];
        users.set(rest, current);
        continue;
      }
      if (word !== 'topic' && word !== 'pattern') {
        throw new AclError(file, lineNo, `unknown directive ${JSON.stringify(word)}: expected topic, pattern or user`);
      }
      const am = /^(read|write|readwrite|deny)\s+(.+)$/.exec(rest);
      const access: Access = am ? (am[1] as Access) : 'readwrite';
      const filter = am ? am[2]!.trim() : rest;
      if (filter === '') throw new AclError(file, lineNo, `${word} needs a topic filter`);
      if (!am && ACCESS.has(filter as Access)) throw new AclError(file, lineNo, `${word} ${filter} needs a topic filter`);
      // Check the shape now (with placeholders filled), so that a typo fails the load, not a check.
      // `$queue/<name>` names one queue when subscribed to, but a rule's `$queue/...` is a filter
      // over queue names: `$queue/#` grants every queue (RabbitMQ's `.*`), `$queue/team-a/+` some.
      const shape = filter.split('%u').join('u').split('%c').join('c');
      const probe = parseFilter(shape.startsWith('$queue/') ? `queue/${shape.slice('$queue/'.length)}` : shape);
      if (isTopicError(probe)) throw new AclError(file, lineNo, `invalid topic filter ${JSON.stringify(filter)}: ${probe.reason}`);
      if (probe.share !== undefined) throw new AclError(file, lineNo, 'ACL filters name topics, not $share/ subscriptions');
      const rule: Rule = { access, filter, line: lineNo };
      (word === 'pattern' ? patterns : current).push(rule);
      count++;
    }
    return new Acl(anonymous, users, patterns, count);
  }

  /** The rules that apply to one client, compiled. */
  compile(username: string | undefined, clientId: string): CompiledAcl {
    const own = username === undefined ? this.anonymous : (this.users.get(username) ?? []);
    const rules: Rule[] = [...own];
    for (const p of this.patterns) {
      const filter = substitute(p.filter, username, clientId);
      if (filter !== undefined) rules.push({ ...p, filter });
    }
    return new CompiledAcl(rules);
  }
}
