/**
 * TopicTree<T>: topic filters -> values, each filter holding values under unique keys.
 *
 * Filters without wildcards live in one Map (an exact lookup per publish); wildcard filters live in
 * a trie with `+` and `#` children kept apart from the literal ones. Matching a topic costs one Map
 * lookup plus a walk bounded by topic depth and the number of wildcard branches that match, never by
 * the number of subscriptions. `$` topics are reached only by filters whose first level is literal
 * [MQTT-4.7.2-1]: the walk skips the root's `+` and `#` for them.
 */

class Node<T> {
  readonly children = new Map<string, Node<T>>();
  plus: Node<T> | undefined;
  /** Values of filters ending in `#` right below this node. */
  hash: Map<string, T> | undefined;
  /** Values of filters ending at this node. */
  values: Map<string, T> | undefined;

  isEmpty(): boolean {
    return this.children.size === 0 && !this.plus && !this.hash?.size && !this.values?.size;
  }
}

export class TopicTree<T> {
  private readonly exact = new Map<string, Map<string, T>>();
  private readonly root = new Node<T>();
  private wildcardCount = 0;
  private total = 0;
  private distinct = 0;

  get size(): number {
    return this.total;
  }

  /** Distinct filters holding at least one value. */
  get filterCount(): number {
    return this.distinct;
  }

  /** Adds or replaces the value under `key` for `filter`; returns false when it replaced one. */
  add(filter: string, key: string, value: T): boolean {
    let bucket: Map<string, T>;
    const wild = hasWildcard(filter);
    if (!wild) {
      bucket = this.exact.get(filter) ?? new Map();
      if (bucket.size === 0) this.exact.set(filter, bucket);
    } else {
      const levels = filter.split('/');
      let node = this.root;
      const last = levels.length - 1;
      for (let i = 0; i < last; i++) node = child(node, levels[i]!);
      if (levels[last] === '#') {
        node.hash ??= new Map();
        bucket = node.hash;
      } else {
        node = child(node, levels[last]!);
        node.values ??= new Map();
        bucket = node.values;
      }
    }
    const fresh = !bucket.has(key);
    if (fresh && bucket.size === 0) this.distinct++;
    bucket.set(key, value);
    if (fresh) {
      this.total++;
      if (wild) this.wildcardCount++;
    }
    return fresh;
  }

  get(filter: string, key: string): T | undefined {
    if (!hasWildcard(filter)) return this.exact.get(filter)?.get(key);
    return this.bucketOf(filter)?.get(key);
  }

  remove(filter: string, key: string): T | undefined {
    if (!hasWildcard(filter)) {
      const bucket = this.exact.get(filter);
      const value = bucket?.get(key);
      if (bucket && bucket.delete(key)) {
        this.total--;
        if (bucket.size === 0) {
          this.exact.delete(filter);
          this.distinct--;
        }
      }
      return value;
    }
    const levels = filter.split('/');
    const path: Node<T>[] = [this.root];
    let node: Node<T> | undefined = this.root;
    const last = levels.length - 1;
    for (let i = 0; i < levels.length && node; i++) {
      if (i === last && levels[i] === '#') break;
      node = levels[i] === '+' ? node.plus : node.children.get(levels[i]!);
      if (node) path.push(node);
    }
    if (!node) return undefined;
    const bucket = levels[last] === '#' ? node.hash : node.values;
    const value = bucket?.get(key);
    if (!bucket || !bucket.delete(key)) return undefined;
    this.total--;
    this.wildcardCount--;
    if (bucket.size === 0) this.distinct--;
    // Prune nodes left empty, bottom up, so the trie never holds dead branches.
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!;
      if (!n.isEmpty()) break;
      const parent = path[i - 1]!;
      const level = levels[i - 1]!;
      if (level === '+') parent.plus = undefined;
      else parent.children.delete(level);
    }
    return value;
  }

  /** Calls `visit` once per (filter, key) entry whose filter matches `topic`. */
  match(topic: string, visit: (value: T, key: string) => void): void {
    const bucket = this.exact.get(topic);
    if (bucket) for (const [k, v] of bucket) visit(v, k);
    if (this.wildcardCount === 0) return;
    const levels = topic.split('/');
    const root = this.root;
    const dollar = topic.charCodeAt(0) === 0x24; // '$'
    if (!dollar && root.hash) for (const [k, v] of root.hash) visit(v, k);
    // The literal first level is walked before the root's '+' (the stack pops it first).
    const nodes: Array<Node<T>> = [];
    if (!dollar && root.plus) nodes.push(root.plus);
    const first = root.children.get(levels[0]!);
    if (first) nodes.push(first);
    if (nodes.length > 0) walk(nodes, levels, visit);
  }

  /** Every entry, for restore checks and admin listings. */
  *entries(): IterableIterator<[filter: string, key: string, value: T]> {
    for (const [filter, bucket] of this.exact) for (const [k, v] of bucket) yield [filter, k, v];
    yield* entriesOf(this.root);
  }

  private bucketOf(filter: string): Map<string, T> | undefined {
    const levels = filter.split('/');
    let node: Node<T> | undefined = this.root;
    const last = levels.length - 1;
    for (let i = 0; i < last && node; i++) node = levels[i] === '+' ? node.plus : node.children.get(levels[i]!);
    if (!node) return undefined;
    if (levels[last] === '#') return node.hash;
    node = levels[last] === '+' ? node.plus : node.children.get(levels[last]!);
    return node?.values;
  }
}

function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

function child<T>(node: Node<T>, level: string): Node<T> {
  if (level === '+') return (node.plus ??= new Node());
  let c = node.children.get(level);
  if (!c) {
    c = new Node();
    node.children.set(level, c);
  }
  return c;
}

/**
 * Depth first from `nodes`, each reached after matching levels[0]. An explicit stack, not
 * recursion: topics may have up to 65535 levels (mqtt.maxTopicLevels), far past the call stack.
 */
function walk<T>(nodes: Array<Node<T>>, levels: string[], visit: (value: T, key: string) => void): void {
  const depths: number[] = nodes.map(() => 1);
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const i = depths.pop()!;
    // "a/#" matches "a" itself and everything below it [MQTT-4.7.1-2].
    if (node.hash) for (const [k, v] of node.hash) visit(v, k);
    if (i === levels.length) {
      if (node.values) for (const [k, v] of node.values) visit(v, k);
      continue;
    }
    // Pushed in reverse of the visiting order: the literal level, then '+'.
    if (node.plus) {
      nodes.push(node.plus);
      depths.push(i + 1);
    }
    const next = node.children.get(levels[i]!);
    if (next) {
      nodes.push(next);
      depths.push(i + 1);
    }
  }
}

/** Every entry below `root`, depth first with an explicit stack (see `walk`). */
function* entriesOf<T>(root: Node<T>): IterableIterator<[string, string, T]> {
  // Paths as strings (V8 concatenates without copying), not arrays copied per level.
  const stack: Array<[Node<T>, string | undefined]> = [[root, undefined]];
  const below = (path: string | undefined, level: string): string => (path === undefined ? level : path + '/' + level);
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (node.hash) for (const [k, v] of node.hash) yield [below(path, '#'), k, v];
    if (node.values && path !== undefined) for (const [k, v] of node.values) yield [path, k, v];
    if (node.plus) stack.push([node.plus, below(path, '+')]);
    const children = [...node.children];
    for (let i = children.length - 1; i >= 0; i--) stack.push([children[i]![1], below(path, children[i]![0])]);
  }
}
