/**
 * protocols/stomp/frame.ts on its own: serializeFrame then FrameParser gives back the same command,
 * headers and body for random headers and bodies in each version (property tests with fast-check),
 * whatever the TCP chunking; escapeHeader/unescapeHeader round trips and the undefined escapes
 * (STOMP 1.2 "Value Encoding"); no escaping in CONNECT/CONNECTED and in 1.0; limits and the
 * malformed inputs that must raise a FrameError (with the frame's receipt when it has one).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameError, FrameParser, escapeHeader, header, serializeFrame, unescapeHeader, type Frame, type StompVersion } from '../../protocols/stomp/frame.js';

const VERSIONS: readonly StompVersion[] = ['1.0', '1.1', '1.2'];

// Characters that matter to the encoding, plus ordinary and multi-byte ones.
const CHARS = ['a', 'Z', '0', '-', ' ', '\t', ':', '\n', '\r', '\\', 'c', 'n', 'r', 'ü', '日', '🚀'];

/** What a header name or value may hold when it is sent with `version` in a frame `command`. */
function textArb(version: StompVersion, command: string, kind: 'name' | 'value'): fc.Arbitrary<string> {
  const escaped = version !== '1.0' && command !== 'CONNECT' && command !== 'CONNECTED';
  const allowed = CHARS.filter((c) => {
    if (escaped) return version === '1.2' || c !== '\r'; // 1.1 has no escape for CR
    // Unescaped: no line ends anywhere, no colon in a name (the first colon ends the name).
    if (c === '\n' || c === '\r') return false;
    return kind === 'value' || c !== ':';
  });
  let arb = fc.array(fc.constantFrom(...allowed), { minLength: kind === 'name' ? 1 : 0, maxLength: 12 }).map((a) => a.join(''));
  // 1.0 values lose surrounding whitespace (many 1.0 clients write "name: value").
  if (version === '1.0' && kind === 'value') arb = arb.filter((v) => v === v.trim());
  if (kind === 'name') arb = arb.filter((n) => n !== 'content-length');
  return arb;
}

function frameArb(version: StompVersion): fc.Arbitrary<{ command: string; headers: Array<[string, string]>; body: Buffer | undefined }> {
  return fc.constantFrom('SEND', 'MESSAGE', 'SUBSCRIBE', 'ACK', 'ERROR', 'CONNECT', 'CONNECTED').chain((command) =>
    fc.record({
      command: fc.constant(command),
      headers: fc.array(fc.tuple(textArb(version, command, 'name'), textArb(version, command, 'value')), { maxLength: 6 }),
      body: fc.option(fc.uint8Array({ maxLength: 48 }).map((u) => Buffer.from(u)), { nil: undefined }),
    }),
  );
}

/** Pushes `chunks` one by one, collecting every frame the parser gives. */
function parseChunks(version: StompVersion, chunks: readonly Buffer[]): { frames: Frame[]; parser: FrameParser } {
  const parser = new FrameParser();
  parser.version = version;
  const frames: Frame[] = [];
  for (const c of chunks) {
    parser.push(c);
    for (let f = parser.next(); f; f = parser.next()) frames.push(f);
  }
  return { frames, parser };
}

function parseOne(version: StompVersion, bytes: Buffer | string): Frame {
  const { frames } = parseChunks(version, [Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8')]);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

function parseError(version: StompVersion, bytes: Buffer | string, parser = new FrameParser()): FrameError {
  parser.version = version;
  parser.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8'));
  try {
    while (parser.next());
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return err as FrameError;
  }
  throw new Error('no FrameError');
}

/** What the parser must give back for a serialized frame: content-length is added when there is a body. */
function expected(f: { command: string; headers: Array<[string, string]>; body: Buffer | undefined }): Frame {
  const headers: Array<readonly [string, string]> = [...f.headers];
  if (f.body !== undefined) headers.push(['content-length', String(f.body.length)]);
  return { command: f.command, headers, body: f.body ?? Buffer.alloc(0) };
}

const plain = (f: Frame): { command: string; headers: Array<[string, string]>; body: number[] } => ({
  command: f.command,
  headers: f.headers.map(([k, v]) => [k, v]),
  body: [...f.body],
});

describe('STOMP frames: serialize then parse', () => {
  for (const version of VERSIONS) {
    it(`${version}: gives back command, headers (in order, repeats kept) and body`, () => {
      fc.assert(
        fc.property(frameArb(version), (f) => {
          const bytes = serializeFrame(f.command, f.headers, f.body, version);
          expect(plain(parseOne(version, bytes))).toEqual(plain(expected(f)));
        }),
        { numRuns: 300 },
      );
    });

    it(`${version}: several frames with heart-beat EOLs between, cut into random TCP chunks, parse the same`, () => {
      const eolArb = fc.array(fc.constantFrom('\n', '\r\n'), { maxLength: 3 }).map((a) => a.join(''));
      fc.assert(
        fc.property(
          fc.array(fc.tuple(frameArb(version), eolArb), { minLength: 1, maxLength: 5 }),
          fc.array(fc.nat(), { maxLength: 12 }),
          (list, cutsRaw) => {
            const bytes = Buffer.concat(list.flatMap(([f, eol]) => [Buffer.from(eol), serializeFrame(f.command, f.headers, f.body, version)]));
            const cuts = [...new Set(cutsRaw.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
            const chunks: Buffer[] = [];
            let prev = 0;
            for (const c of [...cuts, bytes.length]) {
              chunks.push(bytes.subarray(prev, c));
              prev = c;
            }
            const { frames, parser } = parseChunks(version, chunks);
            expect(frames.map(plain)).toEqual(list.map(([f]) => plain(expected(f))));
            expect(parser.heartbeats).toBe(list.reduce((n, [, eol]) => n + eol.split('\n').length - 1, 0));
            expect(parser.buffered).toBe(0);
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  it('a frame without a body gets no content-length and ends at its NUL', () => {
    const bytes = serializeFrame('RECEIPT', [['receipt-id', 'r1']], undefined, '1.2');
    expect(bytes.toString()).toBe('RECEIPT\nreceipt-id:r1\n\n\0');
  });

  it('CONNECT and CONNECTED are never escaped; other frames are, from 1.1 on [STOMP 1.2 "Value Encoding"]', () => {
    expect(serializeFrame('CONNECTED', [['server', 'a:b\\c']], undefined, '1.2').toString()).toBe('CONNECTED\nserver:a:b\\c\n\n\0');
    expect(serializeFrame('MESSAGE', [['k:1', 'a:b\\c\nd\re']], undefined, '1.2').toString()).toBe('MESSAGE\nk\\c1:a\\cb\\\\c\\nd\\re\n\n\0');
    expect(serializeFrame('MESSAGE', [['k', 'a:b\\c\nd']], undefined, '1.1').toString()).toBe('MESSAGE\nk:a\\cb\\\\c\\nd\n\n\0');
    // 1.0 cannot carry a line end in a header: it becomes a space; nothing else changes.
    expect(serializeFrame('MESSAGE', [['k', 'a:b\\c\nd']], undefined, '1.0').toString()).toBe('MESSAGE\nk:a:b\\c d\n\n\0');
    const connect = parseOne('1.2', 'CONNECT\nlogin:dom\\user\npasscode:a\\qb:c\n\n\0');
    expect(header(connect, 'login')).toBe('dom\\user');
    expect(header(connect, 'passcode')).toBe('a\\qb:c');
  });

  it('the first of repeated headers is what header() gives; all are kept in order', () => {
    const f = parseOne('1.2', 'SEND\ndestination:/topic/a\ndestination:/topic/b\nx:1\nx:2\n\n\0');
    expect(header(f, 'destination')).toBe('/topic/a');
    expect(header(f, 'x')).toBe('1');
    expect(f.headers).toEqual([
      ['destination', '/topic/a'],
      ['destination', '/topic/b'],
      ['x', '1'],
      ['x', '2'],
    ]);
  });

  it('the first content-length decides the body', () => {
    const f = parseOne('1.2', 'SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0');
    expect(f.body).toEqual(Buffer.from('a\0b'));
  });

  it('1.0 trims header values; 1.1/1.2 keep their spaces', () => {
    expect(header(parseOne('1.0', 'SEND\nk:  v \n\n\0'), 'k')).toBe('v');
    expect(header(parseOne('1.2', 'SEND\nk:  v \n\n\0'), 'k')).toBe('  v ');
  });

  it('CR LF line ends are read in every version', () => {
    for (const v of VERSIONS) {
      const f = parseOne(v, 'SEND\r\ndestination:/topic/x\r\n\r\nbody\0');
      expect(f.command).toBe('SEND');
      expect(header(f, 'destination')).toBe('/topic/x');
      expect(f.body.toString()).toBe('body');
    }
  });
});

describe('STOMP header escaping', () => {
  for (const version of ['1.1', '1.2'] as const) {
    it(`${version}: unescape(escape(s)) === s, and the escaped form holds no colon or line end`, () => {
      const chars = CHARS.filter((c) => version === '1.2' || c !== '\r');
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 30 }).map((a) => a.join('')), (s) => {
          const e = escapeHeader(s, version);
          expect(e).not.toMatch(version === '1.2' ? /[:\n\r]/ : /[:\n]/);
          expect(unescapeHeader(e, version)).toBe(s);
        }),
        { numRuns: 500 },
      );
    });
  }

  it('1.0 has no escape sequences: backslashes are plain', () => {
    expect(unescapeHeader('a\\nb\\q\\', '1.0')).toBe('a\\nb\\q\\');
    expect(escapeHeader('a\\b:c', '1.0')).toBe('a\\b:c');
  });

  for (const [version, bad] of [
    ['1.2', '\\t'],
    ['1.2', 'x\\'],
    ['1.2', '\\N'],
    ['1.2', '\\ '],
    ['1.1', '\\r'],
    ['1.1', '\\t'],
  ] as const) {
    it(`${version}: ${JSON.stringify(bad)} is an undefined escape (fatal) [STOMP 1.2 "Value Encoding"]`, () => {
      expect(() => unescapeHeader(bad, version)).toThrow(FrameError);
      const err = parseError(version, `SEND\ndestination:/topic/x\nk:${bad}\n\n\0`);
      expect(err.message).toMatch(/escape/);
    });
  }

  it('the error for a bad header carries the receipt of the frame, before or after it', () => {
    expect(parseError('1.2', 'SEND\nreceipt:r1\nk:\\t\n\n\0').receipt).toBe('r1');
    expect(parseError('1.2', 'SEND\nk:\\t\nreceipt:r2\n\n\0').receipt).toBe('r2');
    expect(parseError('1.2', 'SEND\ncontent-length:x\nreceipt:r\\c3\n\n\0').receipt).toBe('r:3');
    expect(parseError('1.2', 'SEND\nno colon\nreceipt:r4\n\n\0').receipt).toBe('r4');
  });
});

describe('STOMP frame limits and malformed input', () => {
  const limits = { maxBody: 10, maxHeaderLine: 20, maxHeaders: 3 };

  it('a body of exactly maxBody is fine; content-length above it fails before the body arrives', () => {
    expect(parseChunks('1.2', [Buffer.from('SEND\ncontent-length:10\n\n0123456789\0')]).frames).toHaveLength(1);
    const err = parseError('1.2', 'SEND\ncontent-length:11\nreceipt:big\n\n', new FrameParser(limits));
    expect(err.message).toMatch(/limit/);
    expect(err.receipt).toBe('big');
  });

  it('no NUL within maxBody bytes (no content-length) fails without waiting for more', () => {
    const p = new FrameParser(limits);
    p.push(Buffer.from('SEND\n\n0123456789'));
    expect(p.next()).toBeUndefined();
    p.push(Buffer.from('a'));
    expect(() => p.next()).toThrow(/limit/);
  });

  it('a header line longer than maxHeaderLine fails, with or without its LF', () => {
    expect(parseError('1.2', 'SEND\nk:' + 'v'.repeat(30) + '\n\n\0', new FrameParser(limits)).message).toMatch(/header line/);
    expect(parseError('1.2', 'SEND\nk:' + 'v'.repeat(30), new FrameParser(limits)).message).toMatch(/header line/);
    // The limit counts bytes: "k:" and 7 three-byte characters are 23 bytes, though only 9 characters.
    expect(parseError('1.2', 'SEND\nk:日日日日日日日\n\n\0', new FrameParser(limits)).message).toMatch(/header line/);
  });

  it('maxHeaders headers are fine, one more fails', () => {
    const p = new FrameParser(limits);
    p.push(Buffer.from('SEND\na:1\nb:2\nc:3\n\n\0'));
    expect(p.next()?.headers).toHaveLength(3);
    expect(parseError('1.2', 'SEND\na:1\nb:2\nc:3\nd:4\n\n\0', new FrameParser(limits)).message).toMatch(/headers/);
  });

  it('a content-length body must be followed by NUL', () => {
    expect(parseError('1.2', 'SEND\ncontent-length:1\n\nab\0').message).toMatch(/NUL/);
  });

  for (const cl of ['-1', 'x', '1.0', '']) {
    it(`content-length ${JSON.stringify(cl)} fails`, () => {
      expect(parseError('1.2', `SEND\ncontent-length:${cl}\n\nx\0`).message).toMatch(/content-length/);
    });
  }

  it('a CR not followed by LF between frames fails; headers that are not UTF-8 fail', () => {
    expect(parseError('1.2', '\rSEND\n\n\0').message).toMatch(/CR/);
    const bad = Buffer.concat([Buffer.from('SEND\nk:'), Buffer.from([0xff, 0xfe]), Buffer.from('\n\n\0')]);
    expect(parseError('1.2', bad).message).toMatch(/UTF-8/);
  });

  it('waits for more bytes instead of failing on a frame that is only incomplete', () => {
    const p = new FrameParser(limits);
    for (const part of ['SE', 'ND\nk', ':v\r', '\n\r\n', 'abc']) {
      p.push(Buffer.from(part));
      expect(p.next()).toBeUndefined();
    }
    p.push(Buffer.from('\0'));
    expect(p.next()?.body.toString()).toBe('abc');
  });
});
