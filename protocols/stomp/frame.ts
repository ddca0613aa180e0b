/**
 * STOMP 1.0 / 1.1 / 1.2 frames: a streaming parser and a serializer (STOMP 1.2 "Frames and
 * Headers", "Value Encoding", "Heart-beating").
 *
 *   COMMAND EOL (header-name ":" header-value EOL)* EOL body NUL EOL*
 *
 * - EOL is LF or CR LF (1.2); CR LF is accepted from every version, since clients send it anyway.
 * - From 1.1 on, header names and values are escaped (\r \n \c \\), except in CONNECT and
 *   CONNECTED; an undefined escape is a fatal error. 1.0 has no escaping.
 * - A `content-length` header gives the body's length (it may then hold NUL bytes); otherwise the
 *   body ends at the first NUL.
 * - Repeated headers: the first one wins.
 * - A lone EOL between frames is a heart-beat.
 * Limits on frame, header line and header count are enforced while bytes arrive, so a peer cannot
 * make the broker buffer more than the limit.
 */
import { isUtf8 } from 'node:buffer';

export type StompVersion = '1.0' | '1.1' | '1.2';

export interface Frame {
  readonly command: string;
  /** In arrival order, unescaped; `header()` gives the first value of a name. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

export function header(f: Frame, name: string): string | undefined {
  for (const [k, v] of f.headers) if (k === name) return v;
  return undefined;
}

export interface FrameLimits {
  /** Largest body, in bytes. */
  readonly maxBody: number;
  /** Longest command or header line, in bytes. */
  readonly maxHeaderLine: number;
  readonly maxHeaders: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = { maxBody: 1024 * 1024, maxHeaderLine: 8 * 1024, maxHeaders: 100 };

/** A malformed frame or a passed limit: the connection gets an ERROR frame with `message`, then closes. */
export class FrameError extends Error {
  constructor(
    message: string,
    /** The `receipt` header of the bad frame, when it was read before the error. */
    readonly receipt?: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** A frame over a size limit (body, header line, header count): counted apart (`packetsTooLarge`). */
export class FrameLimitError extends FrameError {}

const NUL = 0;
const LF = 10;
const CR = 13;
const EMPTY = Buffer.alloc(0);
const NO_ESCAPES = new Set(['CONNECT', 'CONNECTED']);

export function unescapeHeader(s: string, version: StompVersion): string {
  if (version === '1.0' || !s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i];
    if (n === 'n') out += '\n';
    else if (n === 'c') out += ':';
    else if (n === '\\') out += '\\';
    else if (n === 'r' && version === '1.2') out += '\r';
    else throw new FrameError(`undefined escape sequence \\${n ?? ''} in a header`);
  }
  return out;
}

export function escapeHeader(s: string, version: StompVersion): string {
  if (version === '1.0') return s.replace(/[\r\n]/g, ' ');
  let out = '';
  for (const c of s) {
    if (c === '\\') out += '\\\\';
    else if (c === '\n') out += '\\n';
    else if (c === ':') out += '\\c';
    else if (c === '\r') out += version === '1.2' ? '\\r' : ' ';
    else out += c;
  }
  return out;
}

/** Splits a byte stream into frames. `version` is set once CONNECT has negotiated it. */
export class FrameParser {
  version: StompVersion = '1.2';
  private buf: Buffer = EMPTY;
  /** Where the frame being read starts (after heart-beat EOLs). */
  private start = 0;
  /**
   * Once a frame's headers are read and only its body is missing: the bytes it needs in all (from
   * `start`, with content-length), or where its body starts (without: it ends at a NUL). Chunks that
   * cannot complete it wait in `pending`, so a large body sent in small pieces is joined once and its
   * headers parsed once, not once per piece.
   */
  private wait: { readonly need: number } | { readonly bodyStart: number } | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(readonly limits: FrameLimits = DEFAULT_FRAME_LIMITS) {}

  /** Bytes buffered and not yet returned as frames. */
  get buffered(): number {
    return this.buf.length - this.start + this.pendingBytes;
  }

  push(chunk: Buffer): void {
    const w = this.wait;
    if (w !== undefined) {
      const have = this.buf.length - this.start + this.pendingBytes + chunk.length;
      const incomplete =
        'need' in w ? have < w.need : chunk.indexOf(NUL) < 0 && have - w.bodyStart <= this.limits.maxBody;
      if (incomplete) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        return;
      }
    }
    const parts = this.start >= this.buf.length ? [] : [this.buf.subarray(this.start)];
    parts.push(...this.pending, chunk);
    this.buf = parts.length === 1 ? chunk : Buffer.concat(parts);
    this.start = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.wait = undefined;
  }

  /** Heart-beat EOLs seen since the last call (lets the connection count them as activity). */
  heartbeats = 0;

  /** The next whole frame, or undefined when more bytes are needed. Throws FrameError. */
  next(): Frame | undefined {
    // Still waiting for a body whose missing bytes have not all arrived: nothing to parse again.
    if (this.wait !== undefined) return undefined;
    const buf = this.buf;
    // Heart-beats: EOLs between frames.
    while (this.start < buf.length && (buf[this.start] === LF || buf[this.start] === CR)) {
      if (buf[this.start] === CR) {
        // A CR at the end of what arrived is kept until the next byte shows whether an LF follows.
        if (this.start + 1 === buf.length) return undefined;
        if (buf[this.start + 1] !== LF) throw new FrameError('CR not followed by LF between frames');
      }
      if (buf[this.start] === LF) this.heartbeats++;
      this.start++;
    }
    if (this.start >= buf.length) return undefined;
    // Headers end at the first empty line.
    let pos = this.start;
    const lines: string[] = [];
    for (;;) {
      const lf = buf.indexOf(LF, pos);
      if (lf < 0) {
        // A CR last may be the first half of this line's CR LF: it is not part of the line.
        const partial = buf.length - pos - (buf[buf.length - 1] === CR ? 1 : 0);
        if (partial > this.limits.maxHeaderLine) throw new FrameLimitError(`header line longer than ${this.limits.maxHeaderLine} bytes`);
        return undefined;
      }
      let end = lf;
      if (end > pos && buf[end - 1] === CR) end--;
      if (end - pos > this.limits.maxHeaderLine) throw new FrameLimitError(`header line longer than ${this.limits.maxHeaderLine} bytes`);
      if (!isUtf8(buf.subarray(pos, end))) throw new FrameError('frame headers are not valid UTF-8');
      const line = buf.toString('utf8', pos, end);
      pos = lf + 1;
      if (line === '') break;
      lines.push(line);
      if (lines.length > this.limits.maxHeaders + 1) throw new FrameLimitError(`more than ${this.limits.maxHeaders} headers`);
    }
    const command = lines[0];
    if (command === undefined) throw new FrameError('empty frame');
    const escaped = this.version !== '1.0' && !NO_ESCAPES.has(command);
    const headers: Array<readonly [string, string]> = [];
    let contentLength: number | undefined;
    // Looked up first: the ERROR for a bad header names the frame's receipt wherever it stands.
    const receipt = receiptOf(lines, escaped, this.version);
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon < 0) throw new FrameError(`header line without a colon: ${JSON.stringify(line.slice(0, 64))}`, receipt);
      const rawName = line.slice(0, colon);
      const rawValue = line.slice(colon + 1);
      let name: string;
      let value: string;
      try {
        name = escaped ? unescapeHeader(rawName, this.version) : rawName;
        // 1.0 leaves whitespace handling open; many 1.0 clients send "name: value".
        value = escaped ? unescapeHeader(rawValue, this.version) : this.version === '1.0' ? rawValue.trim() : rawValue;
      } catch (err) {
        throw err instanceof FrameError ? new FrameError(err.message, receipt) : err;
      }
      headers.push([name, value]);
      if (name === 'content-length' && contentLength === undefined) {
        if (!/^\d+$/.test(value.trim())) throw new FrameError(`invalid content-length ${JSON.stringify(value)}`, receipt);
        contentLength = Number(value.trim());
        if (contentLength > this.limits.maxBody) throw new FrameLimitError(`body of ${contentLength} bytes exceeds the limit of ${this.limits.maxBody}`, receipt);
      }
    }
    let body: Buffer;
    if (contentLength !== undefined) {
      if (buf.length < pos + contentLength + 1) {
        this.wait = { need: pos + contentLength + 1 - this.start };
        return undefined;
      }
      if (buf[pos + contentLength] !== NUL) throw new FrameError('frame body not followed by NUL after content-length bytes', receipt);
      body = Buffer.from(buf.subarray(pos, pos + contentLength));
      pos += contentLength + 1;
    } else {
      const nul = buf.indexOf(NUL, pos);
      if (nul < 0) {
        if (buf.length - pos > this.limits.maxBody) throw new FrameLimitError(`body exceeds the limit of ${this.limits.maxBody} bytes (no content-length)`, receipt);
        this.wait = { bodyStart: pos - this.start };
        return undefined;
      }
      // The NUL may come in the chunk that carries the body past the limit: check here too.
      if (nul - pos > this.limits.maxBody) throw new FrameLimitError(`body exceeds the limit of ${this.limits.maxBody} bytes (no content-length)`, receipt);
      body = nul === pos ? EMPTY : Buffer.from(buf.subarray(pos, nul));
      pos = nul + 1;
    }
    this.start = pos;
    return { command, headers, body };
  }
}

/** The first `receipt` header among a frame's lines (command first), best effort for an ERROR frame. */
function receiptOf(lines: readonly string[], escaped: boolean, version: StompVersion): string | undefined {
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('receipt:')) continue;
    const raw = line.slice('receipt:'.length);
    if (!escaped) return version === '1.0' ? raw.trim() : raw;
    try {
      return unescapeHeader(raw, version);
    } catch {
      return raw;
    }
  }
  return undefined;
}

/** Serializes a frame; `content-length` is added whenever there is a body (always for MESSAGE). */
export function serializeFrame(
  command: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Buffer | undefined,
  version: StompVersion,
): Buffer {
  // Unescaped frames (1.0, CONNECT/CONNECTED) still get 1.0's treatment: a line end from a 1.1/1.2
  // publisher's header must not start a new header (or the body) in a 1.0 subscriber's MESSAGE.
  const rules = version !== '1.0' && !NO_ESCAPES.has(command) ? version : '1.0';
  let head = command + '\n';
  for (const [k, v] of headers) head += escapeHeader(k, rules) + ':' + escapeHeader(v, rules) + '\n';
  if (body !== undefined) head += `content-length:${body.length}\n`;
  head += '\n';
  const h = Buffer.from(head, 'utf8');
  const b = body ?? EMPTY;
  const out = Buffer.allocUnsafe(h.length + b.length + 1);
  h.copy(out, 0);
  b.copy(out, h.length);
  out[h.length + b.length] = NUL;
  return out;
}
