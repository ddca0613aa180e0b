/**
 * Topic names and filters (src/core/topic.ts): validateTopicName, parseFilter with `$share`, and the
 * reference matcher `matches()` that the TopicTree and RetainedIndex property tests use as oracle.
 * Spec: MQTT 5.0 section 4.7 (topic names and filters) and 4.8.2 (shared subscriptions).
 */
import { describe, expect, it } from 'vitest';
import { isTopicError, matches, parseFilter, validateTopicName, type ParsedFilter, type TopicError } from '../../src/core/topic.js';

function parsed(raw: string, limits?: { maxLength: number; maxLevels: number }): ParsedFilter {
  const r = parseFilter(raw, limits);
  if (isTopicError(r)) throw new Error(`expected ${JSON.stringify(raw)} to parse, got ${r.error}: ${r.reason}`);
  return r;
}

function errorOf(raw: string, limits?: { maxLength: number; maxLevels: number }): TopicError['error'] | undefined {
  const r = parseFilter(raw, limits);
  return isTopicError(r) ? r.error : undefined;
}

describe('validateTopicName', () => {
  it.each(['a', 'a/b/c', '/', '/a', 'a/', 'a//b', '//', '$SYS/broker/load', 'sport/tennis player1', 'ünï/cødé/😀', ' '])(
    'accepts %j',
    (name) => {
      expect(validateTopicName(name)).toBeNull();
    },
  );

  it('rejects the empty topic name [MQTT-4.7.3-1]', () => {
    expect(validateTopicName('')?.error).toBe('empty');
  });

  it.each(['+', '#', 'a/+', 'a/#', 'a+b', 'a#', 'sport/tennis/#', '+/x'])('rejects wildcards in %j [MQTT-4.7.1-1] [MQTT-3.3.2-2]', (name) => {
    expect(validateTopicName(name)?.error).toBe('wildcard');
  });

  it.each(['\u0000', 'a\u0000b', 'a/\u0000', '\u0000/a'])('rejects U+0000 in %j [MQTT-4.7.3-2] [MQTT-1.5.4-2]', (name) => {
    expect(validateTopicName(name)?.error).toBe('nul');
  });

  it('limits the length in UTF-8 bytes, not UTF-16 units [MQTT-4.7.3-3]', () => {
    const limits = { maxLength: 6, maxLevels: 128 };
    expect(validateTopicName('abcdef', limits)).toBeNull();
    expect(validateTopicName('abcdefg', limits)?.error).toBe('too-long');
    expect(validateTopicName('ééé', limits)).toBeNull(); // 3 chars, 6 bytes
    expect(validateTopicName('éééa', limits)?.error).toBe('too-long'); // 4 chars, 7 bytes
    expect(validateTopicName('😀😀', { maxLength: 7, maxLevels: 128 })?.error).toBe('too-long'); // 4 UTF-16 units, 8 bytes
  });

  it('accepts 65535 bytes by default and refuses 65536', () => {
    expect(validateTopicName('a'.repeat(65535))).toBeNull();
    expect(validateTopicName('a'.repeat(65536))?.error).toBe('too-long');
    expect(validateTopicName('é'.repeat(32768))?.error).toBe('too-long'); // 65536 bytes in 32768 chars
  });

  it('limits the number of levels, empty levels included', () => {
    const limits = { maxLength: 1000, maxLevels: 3 };
    expect(validateTopicName('a/b/c', limits)).toBeNull();
    expect(validateTopicName('//', limits)).toBeNull();
    expect(validateTopicName('a/b/c/d', limits)?.error).toBe('too-deep');
    expect(validateTopicName('///', limits)?.error).toBe('too-deep');
    expect(validateTopicName('a/'.repeat(128).slice(0, -1))).toBeNull(); // default: 128 levels
    expect(validateTopicName('a/'.repeat(129).slice(0, -1))?.error).toBe('too-deep');
  });
});

describe('parseFilter', () => {
  it.each([
    ['#', true],
    ['+', true],
    ['a/#', true],
    ['a/+/b', true],
    ['+/+', true],
    ['/+', true],
    ['+/', true],
    ['a//#', true],
    ['+/#', true],
    ['$SYS/#', true],
    ['a', false],
    ['a/b', false],
    ['/', false],
    ['//', false],
    ['$SYS/broker', false],
    ['sport/tennis player1', false],
  ] as const)('accepts %j (wildcard: %s)', (raw, wildcard) => {
    expect(parsed(raw)).toEqual({ raw, filter: raw, wildcard });
  });

  it.each(['a#', 'a/b#', '#a', 'a/#/b', '#/a', '#/#', 'a/##', 'sport/tennis#'])(
    "rejects %j: '#' must be the whole last level [MQTT-4.7.1-2]",
    (raw) => {
      expect(errorOf(raw)).toBe('bad-wildcard');
    },
  );

  it.each(['a+', '+a', 'a/b+/c', 'a/++', 'sport+', '+#', 'a/+#'])("rejects %j: '+' must be a whole level [MQTT-4.7.1-3]", (raw) => {
    expect(errorOf(raw)).toBe('bad-wildcard');
  });

  it('rejects the empty filter [MQTT-4.7.3-1]', () => {
    expect(errorOf('')).toBe('empty');
  });

  it('rejects U+0000 [MQTT-4.7.3-2]', () => {
    expect(errorOf('a/\u0000/#')).toBe('nul');
    expect(errorOf('$share/g\u0000/a')).toBe('nul');
  });

  it('applies the length and level limits to the whole text, $share prefix included [MQTT-4.7.3-3]', () => {
    expect(errorOf('a'.repeat(65535))).toBeUndefined();
    expect(errorOf('a'.repeat(65536))).toBe('too-long');
    expect(errorOf('$share/g/abc', { maxLength: 12, maxLevels: 10 })).toBeUndefined();
    expect(errorOf('$share/g/abcd', { maxLength: 12, maxLevels: 10 })).toBe('too-long');
    expect(errorOf('a/+/#', { maxLength: 100, maxLevels: 3 })).toBeUndefined();
    expect(errorOf('a/+/b/#', { maxLength: 100, maxLevels: 3 })).toBe('too-deep');
    expect(errorOf('$share/g/a', { maxLength: 100, maxLevels: 3 })).toBeUndefined();
    expect(errorOf('$share/g/a/b', { maxLength: 100, maxLevels: 3 })).toBe('too-deep');
  });

  describe('$share/<group>/<filter> [MQTT-4.8.2]', () => {
    it.each([
      ['$share/g/a/b', 'g', 'a/b', false],
      ['$share/group-1/#', 'group-1', '#', true],
      ['$share/g/+/x', 'g', '+/x', true],
      ['$share/g/$SYS/#', 'g', '$SYS/#', true],
      ['$share/g//', 'g', '/', false],
      ['$share/g//a', 'g', '/a', false],
      ['$share/$g/a', '$g', 'a', false],
      ['$share/ü/a', 'ü', 'a', false],
    ] as const)('parses %j into group %j and filter %j', (raw, share, filter, wildcard) => {
      expect(parsed(raw)).toEqual({ raw, filter, share, wildcard });
    });

    it.each([
      ['$share//a', 'empty group [MQTT-4.8.2-1]'],
      ['$share/', 'empty group, no filter'],
      ['$share//', 'empty group, empty filter'],
      ['$share/g', 'no filter'],
      ['$share/g/', 'empty filter'],
      ['$share/+/a', "'+' in the group [MQTT-4.8.2-2]"],
      ['$share/#/a', "'#' in the group [MQTT-4.8.2-2]"],
      ['$share/g+/a', "'+' in the group [MQTT-4.8.2-2]"],
      ['$share/g#/a', "'#' in the group [MQTT-4.8.2-2]"],
    ])('rejects %j (%s)', (raw) => {
      expect(errorOf(raw)).toBe('bad-share');
    });

    it('checks the wildcard rules on the filter after the group', () => {
      expect(errorOf('$share/g/a#')).toBe('bad-wildcard');
      expect(errorOf('$share/g/#/a')).toBe('bad-wildcard');
      expect(errorOf('$share/g/a+/b')).toBe('bad-wildcard');
    });

    it('treats look-alikes as plain filters: only the exact "$share/" prefix is special', () => {
      expect(parsed('$share')).toEqual({ raw: '$share', filter: '$share', wildcard: false });
      expect(parsed('$shared/g/a')).toEqual({ raw: '$shared/g/a', filter: '$shared/g/a', wildcard: false });
      expect(parsed('$SHARE/g/a')).toEqual({ raw: '$SHARE/g/a', filter: '$SHARE/g/a', wildcard: false });
      expect(parsed('a/$share/g/b')).toEqual({ raw: 'a/$share/g/b', filter: 'a/$share/g/b', wildcard: false });
    });
  });
});

describe('matches (the reference matcher)', () => {
  it.each([
    // Examples from MQTT 5.0 section 4.7.1.
    ['sport/tennis/player1', 'sport/tennis/player1/#', true],
    ['sport/tennis/player1/ranking', 'sport/tennis/player1/#', true],
    ['sport/tennis/player1/score/wimbledon', 'sport/tennis/player1/#', true],
    ['sport', 'sport/#', true],
    ['sport/tennis/player1', 'sport/tennis/+', true],
    ['sport/tennis/player1/ranking', 'sport/tennis/+', false],
    ['sport', 'sport/+', false],
    ['sport/', 'sport/+', true],
    ['/finance', '+/+', true],
    ['/finance', '/+', true],
    ['/finance', '+', false],
    ['sport/tennis/player1', 'sport/+/player1', true],
    ['a', '#', true],
    ['/', '#', true],
    ['/', '+/+', true],
    ['/', '+', false],
    ['a//b', 'a/+/b', true],
    ['a//b', 'a//b', true],
    ['a/b', 'a//b', false],
    ['a/b', 'a/b/#', true],
    ['a/b', 'a/b/+', false],
    ['a/b/c', 'a/b', false],
    ['a/b', 'a/b/c', false],
    ['A/b', 'a/b', false],
    // [MQTT-4.7.2-1]: a leading wildcard never matches a topic starting with '$'.
    ['$SYS/monitor/Clients', '#', false],
    ['$SYS/monitor/Clients', '+/monitor/Clients', false],
    ['$SYS', '+', false],
    ['$SYS/monitor/Clients', '$SYS/#', true],
    ['$SYS/monitor/Clients', '$SYS/monitor/+', true],
    ['$SYS', '$SYS/#', true],
    ['a/$SYS', 'a/+', true],
    ['a/$SYS', '#', true],
  ] as const)('topic %j, filter %j -> %s', (topic, filter, expected) => {
    expect(matches(topic, filter)).toBe(expected);
  });
});
