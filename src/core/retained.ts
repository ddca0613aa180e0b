/**
 * RetainedIndex: the last retained message per topic, in a trie of topic levels so that a
 * subscription filter finds its retained messages by walking only the branches it matches.
 * Expired messages are never returned; they are removed when met and by `sweep`.
 */
import { isExpired, type Message } from './message.js';

class Node {
  readonly children = new Map<string, Node>();
  message: Message | undefined;
}

export class RetainedIndex {
  private readonly root = new Node();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(topic: string): Message | undefined {
    let node: Node | undefined = this.root;
    for (const level of topic.split('/')) {
      node = node.children.get(level);
      if (!node) return undefined;
    }
    return node.message;
  }

  /** Stores `msg` for its topic; returns the message it replaced. */
  set(msg: Message): Message | undefined {
    let node = this.root;
    for (const level of msg.topic.split('/')) {
      let c = node.children.get(level);
      if (!c) {
        c = new Node();
        node.children.set(level, c);
      }
      node = c;
    }
    const old = node.message;
    node.message = msg;
    if (!old) this.count++;
    return old;
  }

  /** Removes the retained message of `topic`; returns it. */
  delete(topic: string): Message | undefined {
    const levels = topic.split('/');
    const path: Node[] = [this.root];
    let node: Node | undefined = this.root;
    for (const level of levels) {
      node = node.children.get(level);
      if (!node) return undefined;
      path.push(node);
    }
    const old = node.message;
    if (!old) return undefined;
    node.message = undefined;
    this.count--;
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!;
      if (n.message || n.children.size) break;
      path[i - 1]!.children.delete(levels[i - 1]!);
    }
    return old;
  }

  /** Visits every unexpired retained message whose topic matches `filter` (no `$share` prefix). */
  match(filter: string, visit: (msg: Message) => void, now = Date.now()): void {
    const expired: Message[] = [];
    const collect = (msg: Message): void => {
      if (isExpired(msg, now)) expired.push(msg);
      else visit(msg);
    };
    walk(this.root, filter.split('/'), collect);
    for (const msg of expired) this.delete(msg.topic);
  }

  /** Removes expired messages; returns them so the caller can release their storage. */
  sweep(now = Date.now()): Message[] {
    const expired: Message[] = [];
    for (const msg of this.all()) if (isExpired(msg, now)) expired.push(msg);
    for (const msg of expired) this.delete(msg.topic);
    return expired;
  }

  *all(): IterableIterator<Message> {
    const stack: Node[] = [this.root];
    while (stack.length) {
      const node = stack.pop()!;
      if (node.message) yield node.message;
      for (const c of node.children.values()) stack.push(c);
    }
  }
}

/**
 * The messages under `root` whose topics match the filter levels `f`, depth first in the order of
 * the children. An explicit stack, not recursion: topics may have up to 65535 levels
 * (mqtt.maxTopicLevels), far past the call stack.
 */
function walk(root: Node, f: string[], visit: (msg: Message) => void): void {
  const nodes: Node[] = [root];
  const depths: number[] = [0];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const i = depths.pop()!;
    const atRoot = node === root;
    if (i === f.length) {
      if (node.message) visit(node.message);
      continue;
    }
    const level = f[i]!;
    if (level === '#') {
      // "a/#" includes "a" itself; a leading wildcard never reaches `$` topics [MQTT-4.7.2-1].
      if (!atRoot && node.message) visit(node.message);
      for (const [name, c] of node.children) if (!(atRoot && name.startsWith('$'))) subtree(c, visit);
      continue;
    }
    if (level === '+') {
      const children = [...node.children];
      for (let k = children.length - 1; k >= 0; k--) {
        const [name, c] = children[k]!;
        if (atRoot && name.startsWith('$')) continue;
        nodes.push(c);
        depths.push(i + 1);
      }
      continue;
    }
    const c = node.children.get(level);
    if (c) {
      nodes.push(c);
      depths.push(i + 1);
    }
  }
}

/** Every message from `top` down, parents before children (explicit stack, see `walk`). */
function subtree(top: Node, visit: (msg: Message) => void): void {
  const stack: Node[] = [top];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.message) visit(node.message);
    const children = [...node.children.values()];
    for (let k = children.length - 1; k >= 0; k--) stack.push(children[k]!);
  }
}
