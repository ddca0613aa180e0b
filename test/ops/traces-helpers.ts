/**
 * Trace test helpers: start a trace through the API, read its JSON lines (paging with
 * `nextOffset`), wait for events, remove it; run mosquitto_pub/mosquitto_sub; read an SSE stream
 * with fetch() and a stream reader as the dashboard does.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import type { Api } from './api-helpers.js';

export type TraceLine = Record<string, any>;

let seq = 0;
/** A trace name unique within the test run. */
export const traceName = (what: string): string => `${what}-${process.pid}-${seq++}`;

/** POST /api/v1/traces, expecting 201; returns the trace's view. */
export async function startTrace(api: Api, body: Record<string, unknown>): Promise<TraceLine> {
  const r = await api.post('/api/v1/traces', body);
  expect(r.status, r.text).toBe(201);
  expect(r.body).toMatchObject({ name: body['name'], status: 'running', stopReason: null });
  return r.body as TraceLine;
}

/** Every event of the trace's file, read page by page from offset 0. */
export async function traceLog(api: Api, name: string, limit?: number): Promise<TraceLine[]> {
  const out: TraceLine[] = [];
  let offset = 0;
  for (;;) {
    const r = await api.get(`/api/v1/traces/${encodeURIComponent(name)}/log?offset=${offset}${limit !== undefined ? `&limit=${limit}` : ''}`);
    expect(r.status, r.text).toBe(200);
    out.push(...(r.body.data as TraceLine[]));
    const next = r.body.meta.nextOffset as number;
    if (next >= (r.body.meta.size as number)) return out;
    // Each page must move on, or a reader would loop for ever.
    expect(next).toBeGreaterThan(offset);
    offset = next;
  }
}

/** Polls the trace's log until `cond` holds for its events; returns them. */
export async function waitTrace(api: Api, name: string, cond: (events: TraceLine[]) => boolean, what: string, timeoutMs = 5000): Promise<TraceLine[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await traceLog(api, name);
    if (cond(events)) return events;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}; trace ${name} has: ${events.map((e) => `${e['evt']}(${e['clientId'] ?? ''} ${e['topic'] ?? ''})`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const has = (events: TraceLine[], evt: string, fields: Record<string, unknown> = {}): boolean =>
  events.some((e) => e['evt'] === evt && Object.entries(fields).every(([k, v]) => e[k] === v));

/** POST stop (200, status stopped) then DELETE (204); GET then answers 404. */
export async function removeTrace(api: Api, name: string): Promise<void> {
  const s = await api.post(`/api/v1/traces/${encodeURIComponent(name)}/stop`);
  expect(s.status, s.text).toBe(200);
  expect(s.body.status).toBe('stopped');
  const d = await api.del(`/api/v1/traces/${encodeURIComponent(name)}`);
  expect(d.status, d.text).toBe(204);
  expect((await api.get(`/api/v1/traces/${encodeURIComponent(name)}`)).status).toBe(404);
}

/** Runs mosquitto_pub (or another mosquitto tool) to its end; rejects on a non-zero exit. */
export function mosquitto(tool: 'mosquitto_pub' | 'mosquitto_sub', args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${tool} ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout)));
  });
}

/** Starts a long-running mosquitto_sub; the caller waits for it (its exit) or kills it. */
export function mosquittoSub(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export interface SseEvent {
  readonly event: string | undefined;
  readonly data: string;
}

/** An SSE response read with fetch() + a stream reader: parsed events as they come, and the end. */
export class SseReader {
  readonly events: SseEvent[] = [];
  /** Text before the first event (comments such as `: connected`). */
  comments: string[] = [];
  ended = false;
  readonly done: Promise<void>;

  constructor(readonly response: Response) {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    this.done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event: string | undefined;
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
              else if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length > 0) this.events.push({ event, data: data.join('\n') });
          }
        }
      } catch {
        // aborted by the test
      }
      this.ended = true;
    })();
  }

  /** The `data` of events named `name`, parsed as JSON. */
  named(name: string): TraceLine[] {
    return this.events.filter((e) => e.event === name).map((e) => JSON.parse(e.data) as TraceLine);
  }
}
