/**
 * STOMP input generators for the fuzz tests (fast-check arbitraries).
 *
 * A frame is kept as a small model (command, header lines as raw bytes, body, line ends,
 * terminator) so that mutations can reach what byte flips rarely hit: ill-formed UTF-8 and
 * undefined escapes in a header, content-length set to an extreme, wrong or repeated, hundreds of
 * headers, lines at the length limit, a missing colon or NUL. Byte-level mutations then work on the
 * encoded frame (mqtt-gen.ts `mutateBytes`).
 */
import fc from 'fast-check';
import { BAD_UTF8 } from './mqtt-gen.js';

export interface SFrame {
  command: Buffer;
  headers: Array<[Buffer, Buffer]>;
  body: Buffer;
  eol: '\n' | '\r\n';
  /** False: the terminating NUL is left out. */
  nul: boolean;
  /** EOLs after the frame (heart-beats). */
  after: number;
  /** A header written as a bare line, without its colon. */
  bare?: number;
}

const B = (s: string): Buffer => Buffer.from(s, 'utf8');

export function encodeFrame(f: SFrame): Buffer {
  const eol = B(f.eol);
  const parts: Buffer[] = [f.command, eol];
  f.headers.forEach(([k, v], i) => parts.push(...(i === f.bare ? [k, v, eol] : [k, B(':'), v, eol])));
  parts.push(eol, f.body);
  if (f.nul) parts.push(Buffer.from([0]));
  for (let i = 0; i < f.after; i++) parts.push(eol);
  return Buffer.concat(parts);
}

function cloneFrame(f: SFrame): SFrame {
  return { ...f, headers: f.headers.map(([k, v]) => [k, v]) };
}

// -- valid frames -------------------------------------------------------------------------------

/** Destinations under /topic/fz and /queue/fz (fuzz traffic stays apart from health checks). */
const anyDestination: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('/topic/fz', '/topic/fz/a', '/topic/fz/ü/日', '/topic/fz/+', '/topic/fz/#', '/queue/fzq', '/queue/fzq2', '/topic/fz//x'),
  fc.array(fc.constantFrom('a', 'b', 'c1', 'ü'), { minLength: 1, maxLength: 5 }).map((l) => '/topic/fz/' + l.join('/')),
  fc.constantFrom('/topic/', '/queue/', 'fz', '/bad/x', '/topic/fz/a#', '/topic/$share/g/x', '/temp-queue/x', ''),
);

/** Header text with the characters that matter to escaping (escaped per STOMP 1.2 by `esc`). */
const headerText = fc.array(fc.constantFrom('a', 'Z', '0', ' ', '-', ':', '\n', '\\', 'ü', '日', '\r'), { maxLength: 10 }).map((a) => a.join(''));

/** STOMP 1.2 "Value Encoding" (CONNECT keeps its bytes as they are). */
export function esc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c').replace(/\r/g, '\\r');
}

const txName = fc.constantFrom('tx1', 'tx2', 'tx-ü', 'tx:1');
const ackId = fc.oneof(fc.constantFrom('1-1', '2-3', '0-0', '99999-65535', '1-65536', 'x', '', '7'), fc.tuple(fc.nat(200), fc.nat(70000)).map(([m, d]) => `${m}-${d}`));
const receipt = fc.option(fc.stringMatching(/^r[0-9]{1,4}$/), { nil: undefined });

type Hdrs = Array<[string, string]>;

function frameOf(command: string, headers: Hdrs, body: Buffer, eol: '\n' | '\r\n', escaped: boolean): SFrame {
  return {
    command: B(command),
    headers: headers.map(([k, v]) => [B(escaped ? esc(k) : k), B(escaped ? esc(v) : v)]),
    body,
    eol,
    nul: true,
    after: 0,
  };
}

/** CONNECT or STOMP; `strict`: always agreeing on 1.2. */
export function connectFrame(strict = false): fc.Arbitrary<SFrame> {
  return fc
    .record({
      command: fc.constantFrom('CONNECT', 'STOMP'),
      accept: strict ? fc.constantFrom('1.2', '1.0,1.1,1.2', '1.1,1.2') : fc.constantFrom('1.2', '1.1', '1.0', '1.0,1.1,1.2', '1.1,1.2', undefined),
      hb: fc.constantFrom(undefined, '0,0', '0,1000', '5000,0', '10,10'),
      login: fc.option(fc.constantFrom('fz', 'ü'), { nil: undefined }),
      eol: fc.constantFrom<'\n' | '\r\n'>('\n', '\r\n'),
    })
    .map((c) => {
      const h: Hdrs = [];
      if (c.accept !== undefined) h.push(['accept-version', c.accept]);
      h.push(['host', 'junction']);
      if (c.hb !== undefined) h.push(['heart-beat', c.hb]);
      if (c.login !== undefined) h.push(['login', c.login], ['passcode', 'pw']);
      return frameOf(c.command, h, Buffer.alloc(0), c.eol, false);
    });
}

/** Destinations the broker accepts. */
const goodDestination: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('/topic/fz', '/topic/fz/a', '/topic/fz/ü/日', '/topic/fz/+', '/topic/fz/#', '/queue/fzq', '/queue/fzq2'),
  fc.array(fc.constantFrom('a', 'b'), { minLength: 1, maxLength: 3 }).map((l) => '/topic/fz/' + l.join('/')),
);

/**
 * Frames a client sends after CONNECT, valid in form (their content may still be refused).
 * `strict`: only values the broker accepts (destinations, ack modes, prefetch, retain-handling), so
 * that sequences get deep into the state machine instead of ending at the first ERROR.
 */
export function clientFrame(strict = false): fc.Arbitrary<SFrame> {
  const destination = strict ? goodDestination : anyDestination;
  const inTx = strict ? fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: txName }) : fc.option(txName, { nil: undefined });
  const eol = fc.constantFrom<'\n' | '\r\n'>('\n', '\r\n');
  const extra = fc.array(fc.tuple(headerText.filter((k) => k.length > 0), headerText), { maxLength: 3 });
  const body = fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u));
  const sendTo = strict ? destination.filter((d) => !d.includes('+') && !d.includes('#')) : destination;
  const send = fc.record({ d: sendTo, body, cl: fc.boolean(), r: receipt, tx: inTx, extra, eol }).map((x) => {
    const h: Hdrs = [['destination', x.d]];
    // Without content-length the body ends at the first NUL.
    const b = x.cl ? x.body : Buffer.from(x.body.filter((c) => c !== 0));
    if (x.cl) h.push(['content-length', String(b.length)]);
    if (x.r) h.push(['receipt', x.r]);
    if (x.tx) h.push(['transaction', x.tx]);
    h.push(['content-type', 'text/plain'], ...x.extra);
    return frameOf('SEND', h, b, x.eol, true);
  });
  const subscribe = fc
    .record({
      d: destination,
      id: strict ? fc.stringMatching(/^[a-z0-9]{1,3}$/) : fc.constantFrom('0', '1', 's-ü', 'dup'),
      ack: strict ? fc.constantFrom(undefined, 'auto', 'client', 'client-individual') : fc.constantFrom(undefined, 'auto', 'client', 'client-individual', 'bogus'),
      prefetch: strict ? fc.constantFrom(undefined, '0', '1', '2') : fc.constantFrom(undefined, '0', '1', '65536', 'x'),
      rh: strict ? fc.constantFrom(undefined, '0', '1', '2') : fc.constantFrom(undefined, '0', '1', '2', '3'),
      r: receipt,
      eol,
    })
    .map((x) => {
      const h: Hdrs = [['destination', x.d], ['id', x.id]];
      if (x.ack !== undefined) h.push(['ack', x.ack]);
      if (x.prefetch !== undefined) h.push(['prefetch-count', x.prefetch]);
      if (x.rh !== undefined) h.push(['retain-handling', x.rh]);
      if (x.r) h.push(['receipt', x.r]);
      return frameOf('SUBSCRIBE', h, Buffer.alloc(0), x.eol, true);
    });
  const unsubscribe = fc.record({ id: fc.constantFrom('0', '1', 'nope'), r: receipt, eol }).map((x) => {
    const h: Hdrs = [['id', x.id]];
    if (x.r) h.push(['receipt', x.r]);
    return frameOf('UNSUBSCRIBE', h, Buffer.alloc(0), x.eol, true);
  });
  const ack = fc.record({ cmd: fc.constantFrom('ACK', 'NACK'), id: strict ? ackId.filter((a) => /^\d+-([1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3})$/.test(a)) : ackId, tx: inTx, r: receipt, requeue: fc.boolean(), eol }).map((x) => {
    const h: Hdrs = [['id', x.id], ['message-id', x.id]];
    if (x.tx) h.push(['transaction', x.tx]);
    if (x.r) h.push(['receipt', x.r]);
    if (!x.requeue) h.push(['requeue', 'false']);
    return frameOf(x.cmd, h, Buffer.alloc(0), x.eol, true);
  });
  const tx = fc.record({ cmd: fc.constantFrom('BEGIN', 'COMMIT', 'ABORT'), tx: txName, r: receipt, eol }).map((x) => {
    const h: Hdrs = [['transaction', x.tx]];
    if (x.r) h.push(['receipt', x.r]);
    return frameOf(x.cmd, h, Buffer.alloc(0), x.eol, true);
  });
  return fc.oneof({ weight: 4, arbitrary: send }, { weight: 3, arbitrary: subscribe }, { weight: 1, arbitrary: unsubscribe }, { weight: 2, arbitrary: ack }, { weight: 2, arbitrary: tx });
}

export const disconnectFrame: fc.Arbitrary<SFrame> = receipt.map((r) => frameOf('DISCONNECT', r ? [['receipt', r]] : [], Buffer.alloc(0), '\n', true));

export function anyFrame(): fc.Arbitrary<SFrame> {
  return fc.oneof({ weight: 1, arbitrary: connectFrame() }, { weight: 6, arbitrary: clientFrame() }, { weight: 1, arbitrary: disconnectFrame });
}

// -- mutations ----------------------------------------------------------------------------------

const BAD_ESCAPES = ['\\t', '\\', '\\x', '\\r', '\\\\\\', '\\C', '\\0'].map(B);
const CONTENT_LENGTHS = ['', '-1', ' 5', '5 ', '1e3', '0x10', '99999999999999999999', '1.5', '+3', '٣', '00000000000000000000000001', '1048577', '268435456'];

export type FrameMutation = {
  kind: 'utf8' | 'escape' | 'contentLength' | 'dupContentLength' | 'repeatHeader' | 'longLine' | 'noColon' | 'command' | 'noNul' | 'nulInBody' | 'crlf' | 'emptyName';
  a: number;
  b: number;
  c: number;
};

export const frameMutationArb: fc.Arbitrary<FrameMutation> = fc.record({
  kind: fc.constantFrom('utf8', 'escape', 'contentLength', 'dupContentLength', 'repeatHeader', 'longLine', 'noColon', 'command', 'noNul', 'nulInBody', 'crlf', 'emptyName'),
  a: fc.nat(),
  b: fc.nat(),
  c: fc.nat(),
});

/** Applies `m` to a copy of `f`; `lineLimit` is the header line limit in force (longLine aims at it). */
export function mutateFrame(f: SFrame, m: FrameMutation, lineLimit: number): SFrame {
  const g = cloneFrame(f);
  const h = g.headers;
  const at = (n: number): number => n % Math.max(1, h.length);
  const insertAt = (buf: Buffer, bytes: Buffer, n: number): Buffer => {
    const i = buf.length === 0 ? 0 : n % (buf.length + 1);
    return Buffer.concat([buf.subarray(0, i), bytes, buf.subarray(i)]);
  };
  switch (m.kind) {
    case 'utf8': {
      const bad = BAD_UTF8[m.b % BAD_UTF8.length]!;
      if (h.length === 0 || m.a % 5 === 0) g.command = insertAt(g.command, bad, m.c);
      else {
        const e = h[at(m.a)]!;
        if (m.c % 2 === 0) e[1] = insertAt(e[1], bad, m.c);
        else e[0] = insertAt(e[0], bad, m.c);
      }
      break;
    }
    case 'escape': {
      if (h.length === 0) break;
      const e = h[at(m.a)]!;
      e[m.c % 2] = insertAt(e[m.c % 2]!, BAD_ESCAPES[m.b % BAD_ESCAPES.length]!, m.c);
      break;
    }
    case 'contentLength': {
      const real = g.body.length;
      const values = [...CONTENT_LENGTHS, String(real + 1), String(Math.max(0, real - 1)), String(real + 1000), '0'];
      const v = B(values[m.b % values.length]!);
      const i = h.findIndex(([k]) => k.toString() === 'content-length');
      if (i >= 0) h[i] = [B('content-length'), v];
      else h.splice(at(m.a), 0, [B('content-length'), v]);
      break;
    }
    case 'dupContentLength':
      h.push([B('content-length'), B(String((m.b % 3) + g.body.length))]);
      h.splice(at(m.a), 0, [B('content-length'), B(String(g.body.length))]);
      break;
    case 'repeatHeader': {
      // Around the default limit of 100 headers, and past it.
      const n = [1, 10, 99, 100, 101, 150, 300][m.b % 7]!;
      const e: [Buffer, Buffer] = h.length > 0 ? [...h[at(m.a)]!] : [B('x'), B('y')];
      for (let i = 0; i < n; i++) h.push([e[0], e[1]]);
      break;
    }
    case 'longLine': {
      const len = Math.max(1, lineLimit + [-2, -1, 0, 1, 2][m.b % 5]!);
      const e: [Buffer, Buffer] = [B('long'), Buffer.alloc(Math.max(0, len - 5), 0x61)];
      if (m.c % 3 === 0) g.command = Buffer.alloc(len, 0x41);
      else h.splice(at(m.a), 0, e);
      break;
    }
    case 'noColon':
      h.splice(at(m.a), 0, [B('no colon here'), Buffer.alloc(0)]);
      g.bare = at(m.a);
      break;
    case 'command':
      g.command = B(['send', 'SENDX', '', 'MESSAGE', 'CONNECTED', 'RECEIPT', 'ERROR', ' SEND', 'SEND ', 'NACK', 'DISCONNECT'][m.b % 11]!);
      break;
    case 'noNul':
      g.nul = false;
      break;
    case 'nulInBody':
      g.body = insertAt(g.body, Buffer.from([0]), m.c);
      break;
    case 'crlf':
      g.eol = g.eol === '\n' ? '\r\n' : '\n';
      g.after = m.b % 4;
      break;
    case 'emptyName':
      h.splice(at(m.a), 0, [Buffer.alloc(0), B('v')]);
      break;
  }
  return g;
}

export interface StompStream {
  /** A CONNECT (sometimes mutated) first, then valid and mutated frames, random bytes, heart-beats. */
  readonly frames: readonly Buffer[];
  readonly cuts: readonly number[];
}

/** A connection's worth of input: what a hostile or broken STOMP client might send. */
export function stompStreamArb(lineLimit: number, randomBytes: fc.Arbitrary<Buffer>): fc.Arbitrary<StompStream> {
  const mutated = fc.tuple(anyFrame(), fc.array(frameMutationArb, { minLength: 1, maxLength: 3 })).map(([f, ms]) => {
    let g = f;
    for (const m of ms) g = mutateFrame(g, m, lineLimit);
    return encodeFrame(g);
  });
  const first = fc.oneof(
    { weight: 5, arbitrary: connectFrame().map(encodeFrame) },
    { weight: 1, arbitrary: connectFrame().chain((f) => frameMutationArb.map((m) => encodeFrame(mutateFrame(f, m, lineLimit)))) },
    { weight: 1, arbitrary: mutated },
  );
  const next = fc.oneof(
    { weight: 5, arbitrary: clientFrame().map(encodeFrame) },
    { weight: 3, arbitrary: mutated },
    { weight: 1, arbitrary: anyFrame().map(encodeFrame) },
    { weight: 1, arbitrary: randomBytes },
    { weight: 1, arbitrary: fc.constantFrom('\n', '\r\n', '\n\n').map((x) => Buffer.from(x)) },
  );
  return fc.record({ first, rest: fc.array(next, { maxLength: 12 }), cuts: fc.array(fc.nat(), { maxLength: 6 }) }).map((r) => ({ frames: [r.first, ...r.rest], cuts: r.cuts }));
}

/**
 * Mostly coherent transactions: of the BEGIN / COMMIT / ABORT frames (and transaction headers) that
 * would be refused in this order, only one in `keepOneIn` stays; the others are turned into ones
 * that fit (a COMMIT of a transaction never begun becomes its BEGIN, and so on). Keeps random
 * sequences going deeper than their first "unknown transaction" ERROR.
 */
export function coherentTransactions(frames: readonly SFrame[], keepOneIn: number, salt: number): SFrame[] {
  const open = new Set<string>();
  return frames.map((f, i) => {
    const keep = (salt + i * 7919) % keepOneIn === 0;
    const cmd = f.command.toString();
    const txAt = f.headers.findIndex(([k]) => k.toString() === 'transaction');
    if (txAt < 0) return f;
    const tx = f.headers[txAt]![1].toString();
    const g = cloneFrame(f);
    if (cmd === 'BEGIN') {
      if (open.has(tx) && !keep) g.command = B('COMMIT');
    } else if (cmd === 'COMMIT' || cmd === 'ABORT') {
      if (!open.has(tx) && !keep) g.command = B('BEGIN');
    } else if (!open.has(tx) && !keep) {
      g.headers.splice(txAt, 1);
    }
    const now = g.command.toString();
    if (now === 'BEGIN') open.add(tx);
    if (now === 'COMMIT' || now === 'ABORT') open.delete(tx);
    return g;
  });
}
