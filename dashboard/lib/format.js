/**
 * Formatting for the pages: numbers, rates, bytes, durations, times, and message payloads as
 * text, pretty JSON or a hex dump. Pure functions, no DOM.
 */

/** @param {number | null | undefined} n */
export function num(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

/** @param {number | null | undefined} n messages (or anything) per second */
export function rate(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (n >= 100) return `${num(n)}/s`;
  if (n >= 10) return `${n.toFixed(1)}/s`;
  return `${n.toFixed(n === 0 ? 0 : 2)}/s`;
}

/** @param {number | null | undefined} b */
export function bytes(b) {
  if (b === null || b === undefined || Number.isNaN(b)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** @param {number | null | undefined} s seconds; shown in ms below 1 s */
export function latency(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '–';
  if (s < 0.001) return `${(s * 1000).toFixed(2)} ms`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`;
  return `${s.toFixed(2)} s`;
}

/** @param {number | null | undefined} s whole seconds, as `3d 4h`, `5m 10s` */
export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '–';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** @param {string | number | null | undefined} t ISO time or ms since epoch */
export function time(t) {
  if (t === null || t === undefined || t === '') return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** @param {string | number | null | undefined} t ISO time or ms since epoch, as `12s ago` */
export function ago(t) {
  if (t === null || t === undefined || t === '') return '–';
  const ms = new Date(t).getTime();
  if (Number.isNaN(ms)) return String(t);
  const s = Math.round((Date.now() - ms) / 1000);
  return s < 0 ? `in ${duration(-s)}` : `${duration(s)} ago`;
}

/** @param {string | null | undefined} t ISO time; whole days from now (negative once past) */
export function daysUntil(t) {
  if (!t) return null;
  const ms = new Date(t).getTime();
  return Number.isNaN(ms) ? null : Math.floor((ms - Date.now()) / 86_400_000);
}

/**
 * The payload's bytes from the API's `{payload, payloadEncoding}`.
 * @param {{ payload: string, payloadEncoding: 'utf8' | 'base64' }} p
 * @returns {Uint8Array}
 */
export function payloadBytes(p) {
  if (p.payloadEncoding === 'base64') {
    const bin = atob(p.payload);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new TextEncoder().encode(p.payload);
}

/**
 * Text as base64 of its UTF-8 bytes (btoa alone takes Latin-1 only).
 * @param {string} text
 */
export function base64OfText(text) {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * The payload as text: UTF-8 when it decodes, else null.
 * @param {{ payload: string, payloadEncoding: 'utf8' | 'base64' }} p
 * @returns {string | null}
 */
export function payloadText(p) {
  if (p.payloadEncoding === 'utf8') return p.payload;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes(p));
  } catch {
    return null;
  }
}

/**
 * Pretty JSON, or null when the text is not JSON.
 * @param {string | null} text
 */
export function prettyJson(text) {
  if (text === null || text.trim() === '') return null;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return null;
  }
}

/**
 * A hex dump, 16 bytes a line: offset, bytes, printable ASCII.
 * @param {Uint8Array} b
 * @param {number} [max] bytes shown at most
 */
export function hexDump(b, max = 64 * 1024) {
  const lines = [];
  const n = Math.min(b.length, max);
  for (let off = 0; off < n; off += 16) {
    const row = b.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  if (b.length > n) lines.push(`… ${b.length - n} more bytes`);
  return lines.join('\n');
}

/**
 * A short one-line preview of a payload for tables.
 * @param {{ payload: string, payloadEncoding: 'utf8' | 'base64' }} p
 * @param {number} [max]
 */
export function preview(p, max = 60) {
  const text = payloadText(p);
  if (text === null) {
    const b = payloadBytes(p);
    return `0x${Array.from(b.subarray(0, 16), (x) => x.toString(16).padStart(2, '0')).join('')}${b.length > 16 ? '…' : ''}`;
  }
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
