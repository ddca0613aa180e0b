/**
 * The ACL's filter sets (src/server/auth/acl.ts FilterSet) against the 20-line reference matcher
 * (core/topic.ts `matches`), and the compiled rules' answers: deny wins, %u/%c substitution.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Acl, FilterSet } from '../../src/server/auth/acl.js';
import { matches } from '../../src/core/topic.js';

const LITERAL = fc.constantFrom('a', 'b', 'c', '', '$SYS', '$a', 'x y');
const topicArb = fc.array(LITERAL, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'));
const filterArb = fc
  .tuple(fc.array(fc.oneof({ weight: 3, arbitrary: LITERAL }, { weight: 1, arbitrary: fc.constant('+') }), { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([levels, hash]) => levels.length > 0 || hash)
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));

describe('ACL FilterSet', () => {
  it('matches exactly when some filter matches by the reference matcher', () => {
    fc.assert(
      fc.property(fc.array(filterArb, { maxLength: 12 }), fc.array(topicArb, { minLength: 1, maxLength: 12 }), (filters, topics) => {
        const set = new FilterSet();
        for (const f of filters) set.add(f);
        for (const t of topics) expect(set.matches(t), `${t} against ${JSON.stringify(filters)}`).toBe(filters.some((f) => matches(t, f)));
      }),
      { numRuns: 500 },
    );
  });

  it('the cases that matter', () => {
    const set = new FilterSet();
    for (const f of ['a/#', '+/b', 'c', '#']) set.add(f);
    expect(set.matches('a')).toBe(true); // "a/#" includes its parent level
    expect(set.matches('$SYS/x')).toBe(false); // no leading wildcard reaches '$' topics
    const dollar = new FilterSet();
    dollar.add('$SYS/#');
    expect(dollar.matches('$SYS')).toBe(true);
    expect(dollar.matches('$SYSX/a')).toBe(false);
    const empty = new FilterSet();
    expect(empty.matches('a')).toBe(false);
    const levels = new FilterSet();
    levels.add('a/+');
    expect(levels.matches('a/')).toBe(true); // an empty level is a level
    expect(levels.matches('a')).toBe(false);
    expect(levels.matches('a/b/c')).toBe(false);
  });
});

describe('compiled ACL', () => {
  const acl = Acl.parse(
    ['topic read public/#', 'user alice', 'topic readwrite #', 'topic deny secret/#', 'pattern write devices/%u/%c/out', ''].join('\n'),
    'acl',
  );

  it('deny wins over a grant; read and write are separate', () => {
    const alice = acl.compile('alice', 'c1');
    expect(alice.canPublish('open/x')).toBe(true);
    expect(alice.canRead('secret/x')).toBe(false);
    expect(alice.canPublish('secret')).toBe(false);
    expect(alice.canSubscribe('#')).toBe(true);
    expect(alice.needsReadCheck('#')).toBe(true);
    expect(alice.needsReadCheck('open/#')).toBe(false);
    expect(alice.canSubscribe('secret/+')).toBe(false);
    const anon = acl.compile(undefined, 'c2');
    expect(anon.canRead('public/x')).toBe(true);
    expect(anon.canPublish('public/x')).toBe(false);
  });

  it('%u and %c fill whole levels; a value with wildcards or "/" skips the rule', () => {
    expect(acl.compile('bob', 'cam').canPublish('devices/bob/cam/out')).toBe(true);
    expect(acl.compile('bob', 'cam').canPublish('devices/bob/other/out')).toBe(false);
    expect(acl.compile(undefined, 'cam').canPublish('devices//cam/out')).toBe(false);
    expect(acl.compile('+', 'cam').canPublish('devices/x/cam/out')).toBe(false);
    expect(acl.compile('bob', 'a/b').canPublish('devices/bob/a/b/out')).toBe(false);
  });
});
