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
 * first check) into topic trees: a check costs a walk bounded by the topic's depth, not a scan of
 * the rules.
 */
import { filterCovers, filtersIntersect, isTopicError, parseFilter } from '../../core/topic.js';
import { TopicTree } from '../../core/topic-tree.js';

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

/** One client's rules, compiled. */
export class CompiledAcl {
  private readonly read = new TopicTree<true>();
  private readonly write = new TopicTree<true>();
  private readonly deny = new TopicTree<true>();
  private readonly readFilters: string[] = [];
  private readonly denyFilters: string[] = [];

  constructor(rules: readonly Rule[]) {
    for (const r of rules) {
      const key = String(r.line);
      if (r.access === 'deny') {
        this.deny.add(r.filter, key, true);
        this.denyFilters.push(r.filter);
        continue;
      }
      if (r.access !== 'write') {
        this.read.add(r.filter, key, true);
        this.readFilters.push(r.filter);
      }
      if (r.access !== 'read') this.write.add(r.filter, key, true);
    }
  }

  canPublish(topic: string): boolean {
    return !hit(this.deny, topic) && hit(this.write, topic);
  }

  /** Receive a message on `topic` (a delivery through a wildcard subscription, a retained message). */
  canRead(topic: string): boolean {
    return !hit(this.deny, topic) && hit(this.read, topic);
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

function hit(tree: TopicTree<true>, topic: string): boolean {
  let found = false;
  if (tree.size > 0) tree.match(topic, () => (found = true));
  return found;
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
      const probe = parseFilter(filter.split('%u').join('u').split('%c').join('c'));
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
