/**
 * TopicTree and RetainedIndex against the reference matcher `matches()` (src/core/topic.ts), as EMQX
 * checks its topic index against emqx_topic:match/2 (t_prop_matches): random filter sets with `+`,
 * `#`, `$` levels and empty levels, the same filter under several keys, adds and removes interleaved,
 * then every (filter, key) entry a match visits must be exactly the brute-force set.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { RetainedIndex } from '../../src/core/retained.js';
import { TopicTree } from '../../src/core/topic-tree.js';
import { matches } from '../../src/core/topic.js';

// A small alphabet so random filters and topics often meet: '' gives empty levels, '$' levels test [MQTT-4.7.2-1].
const LITERAL = fc.constantFrom('a', 'b', 'c', '', '$SYS', '$a', 'x y');
const topicArb = fc.array(LITERAL, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'));
const filterArb = fc
  .tuple(fc.array(fc.oneof({ weight: 3, arbitrary: LITERAL }, { weight: 1, arbitrary: fc.constant('+') }), { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([levels, hash]) => levels.length > 0 || hash)
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'));
const keyArb = fc.constantFrom('k1', 'k2', 'k3');

type Op = { readonly op: 'add' | 'remove'; readonly filter: string; readonly key: string };
const opArb: fc.Arbitrary<Op> = fc.record({ op: fc.constantFrom('add', 'add', 'remove'), filter: filterArb, key: keyArb });

const entryId = (filter: string, key: string): string => `${filter}\u0001${key}`;

interface Value {
  readonly filter: string;
  readonly key: string;
  readonly n: number;
}

/** The tree's internals, read only to prove that removals leave no dead branches behind. */
interface TreeInternals {
  readonly exact: Map<string, unknown>;
  readonly root: { isEmpty(): boolean };
}

/** Applies `ops` to a TopicTree and to a plain Map model, checking each return value on the way. */
function build(ops: readonly Op[]): { tree: TopicTree<Value>; model: Map<string, Value> } {
  const tree = new TopicTree<Value>();
  const model = new Map<string, Value>();
  ops.forEach(({ op, filter, key }, n) => {
    const id = entryId(filter, key);
    if (op === 'add') {
      const value = { filter, key, n };
      expect(tree.add(filter, key, value)).toBe(!model.has(id));
      model.set(id, value);
    } else {
      expect(tree.remove(filter, key)).toBe(model.get(id));
      model.delete(id);
    }
  });
  return { tree, model };
}

function visited(tree: TopicTree<Value>, topic: string): string[] {
  const out: string[] = [];
  tree.match(topic, (v, key) => {
    expect(key).toBe(v.key);
    out.push(entryId(v.filter, v.key));
  });
  return out.sort();
}

function expected(model: Map<string, Value>, topic: string): string[] {
  return [...model.values()].filter((v) => matches(topic, v.filter)).map((v) => entryId(v.filter, v.key)).sort();
}

describe('TopicTree (property test against matches())', () => {
  it('match visits exactly the (filter, key) entries whose filter matches, each once [MQTT-4.7.1] [MQTT-4.7.2-1]', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.array(topicArb, { minLength: 1, maxLength: 12 }), (ops, topics) => {
        const { tree, model } = build(ops);
        expect(tree.size).toBe(model.size);
        for (const topic of topics) expect(visited(tree, topic)).toEqual(expected(model, topic));
      }),
      { numRuns: 400, seed: 0x5eed },
    );
  });

  it('stays correct after every single add and remove', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.array(topicArb, { minLength: 1, maxLength: 6 }), (ops, topics) => {
        for (let i = 1; i <= ops.length; i++) {
          const { tree, model } = build(ops.slice(0, i));
          for (const topic of topics) expect(visited(tree, topic)).toEqual(expected(model, topic));
        }
      }),
      { numRuns: 150, seed: 0xbeef },
    );
  });

  it('entries(), get() and size agree with what was added and removed', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const { tree, model } = build(ops);
        const listed = [...tree.entries()].map(([filter, key, v]) => {
          expect(v.filter).toBe(filter);
          expect(v.key).toBe(key);
          return entryId(filter, key);
        });
        expect(listed.sort()).toEqual([...model.keys()].sort());
        expect(tree.size).toBe(model.size);
        for (const v of model.values()) expect(tree.get(v.filter, v.key)).toBe(v);
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it('removing every entry prunes the tree to nothing', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.infiniteStream(fc.nat()), (ops, picks) => {
        const { tree, model } = build(ops);
        // Remove in a random order, including removals of entries that are not there.
        const left = [...model.values()];
        while (left.length) {
          const [v] = left.splice(picks.next().value % left.length, 1);
          expect(tree.remove(v!.filter, v!.key)).toBe(v);
          expect(tree.remove(v!.filter, v!.key)).toBeUndefined();
        }
        expect([...tree.entries()]).toEqual([]);
        expect(tree.size).toBe(0);
        const internals = tree as unknown as TreeInternals;
        expect(internals.exact.size).toBe(0);
        expect(internals.root.isEmpty()).toBe(true);
        for (const topic of ['a', '$SYS/a', 'a/b/c', '/']) expect(visited(tree, topic)).toEqual([]);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('keeps a filter under several keys apart: removing one key leaves the others', () => {
    const tree = new TopicTree<string>();
    for (const f of ['a/+', 'a/#', 'a/b']) for (const k of ['k1', 'k2']) tree.add(f, k, `${f} ${k}`);
    expect(tree.add('a/+', 'k1', 'again')).toBe(false);
    expect(tree.remove('a/+', 'k1')).toBe('again');
    expect(tree.remove('a/#', 'k2')).toBe('a/# k2');
    expect(tree.remove('a/b', 'k3')).toBeUndefined();
    const got: string[] = [];
    tree.match('a/b', (v) => got.push(v));
    expect(got.sort()).toEqual(['a/# k1', 'a/+ k2', 'a/b k1', 'a/b k2']);
    expect(tree.size).toBe(4);
  });

  it('removing a wildcard filter that was never added changes nothing', () => {
    const tree = new TopicTree<string>();
    tree.add('a/+/c', 'k', 'v');
    expect(tree.remove('a/+', 'k')).toBeUndefined();
    expect(tree.remove('a/+/c/#', 'k')).toBeUndefined();
    expect(tree.remove('+/+/c', 'k')).toBeUndefined();
    expect(tree.size).toBe(1);
    const got: string[] = [];
    tree.match('a/b/c', (v) => got.push(v));
    expect(got).toEqual(['v']);
  });
});

function message(topic: string, id: number, expiresAt?: number): Message {
  return {
    id,
    topic,
    payload: Buffer.from(String(id)),
    qos: 0,
    retain: true,
    createdAt: 0,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    props: {},
    origin: { clientId: 't', protocol: 'internal' },
  };
}

describe('RetainedIndex (property test against matches())', () => {
  const retainedOp = fc.record({ op: fc.constantFrom('set', 'set', 'delete'), topic: topicArb });

  it('match(filter) visits exactly the retained topics the filter matches, each once [MQTT-3.3.1-9] [MQTT-4.7.2-1]', () => {
    fc.assert(
      fc.property(fc.array(retainedOp, { maxLength: 40 }), fc.array(filterArb, { minLength: 1, maxLength: 12 }), (ops, filters) => {
        const index = new RetainedIndex();
        const model = new Map<string, Message>();
        ops.forEach(({ op, topic }, n) => {
          if (op === 'set') {
            const msg = message(topic, n);
            expect(index.set(msg)).toBe(model.get(topic));
            model.set(topic, msg);
          } else {
            expect(index.delete(topic)).toBe(model.get(topic));
            model.delete(topic);
          }
        });
        expect(index.size).toBe(model.size);
        expect([...index.all()].map((m) => m.topic).sort()).toEqual([...model.keys()].sort());
        for (const topic of model.keys()) expect(index.get(topic)).toBe(model.get(topic));
        for (const filter of filters) {
          const got: string[] = [];
          index.match(filter, (m) => got.push(m.topic));
          const want = [...model.keys()].filter((t) => matches(t, filter));
          expect(got.sort()).toEqual(want.sort());
        }
        for (const topic of [...model.keys()]) index.delete(topic);
        expect(index.size).toBe(0);
        expect((index as unknown as { root: { children: Map<string, unknown> } }).root.children.size).toBe(0);
      }),
      { numRuns: 400, seed: 0xcafe },
    );
  });

  it('never returns an expired message, and drops it when met', () => {
    const index = new RetainedIndex();
    index.set(message('r/live', 1, 2000));
    index.set(message('r/dead', 2, 1000));
    index.set(message('r/forever', 3));
    const got: string[] = [];
    index.match('r/#', (m) => got.push(m.topic), 1500);
    expect(got.sort()).toEqual(['r/forever', 'r/live']);
    expect(index.get('r/dead')).toBeUndefined();
    expect(index.size).toBe(2);
    expect(index.sweep(2000).map((m) => m.topic)).toEqual(['r/live']);
    expect(index.size).toBe(1);
  });
});
