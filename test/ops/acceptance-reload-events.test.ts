/**
 * Operations acceptance (issue 10, found by the operator check in /tmp/ops-check): every reload
 * reaches `/api/v1/stream` readers as one `event: reload` (operations.md: "`stats` at 1 Hz plus
 * `client` and `reload` events"), whatever triggered it: the file watch (the path SIGHUP takes too)
 * and a rejected file, not only `POST /reload`. And one reload writes one `config.reloaded` line:
 * the API used to log a second one of its own.
 */
import { describe, expect, it } from 'vitest';
import { sleep, until } from '../helpers/mqtt.js';
import { TOKENS, TOKEN_CONFIG, apiClient } from './api-helpers.js';
import { LOOPBACK, startFileBroker } from './reload-helpers.js';

interface SseEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** Reads server-sent events from `res` into `out` until the body ends or is aborted. */
async function collect(res: Response, out: SseEvent[]): Promise<void> {
  const reader = res.body!.getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += Buffer.from(value).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data !== '') out.push({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  } catch {
    // aborted
  }
}

describe('operations acceptance: reload events on /api/v1/stream', async () => {
  const base = (level: string): string => `${LOOPBACK}admin: { tokens: ${JSON.stringify(TOKEN_CONFIG)} }\nlog: { level: ${level} }\n`;
  const fb = await startFileBroker(base('info'));
  const api = apiClient(`http://127.0.0.1:${fb.httpPort}`);

  it('a file-watch reload, a rejected file and POST /reload each send one reload event', async () => {
    const ac = new AbortController();
    const res = await fetch(`${api.base}/api/v1/stream`, { headers: { Authorization: `Bearer ${TOKENS.admin}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    const events: SseEvent[] = [];
    const reading = collect(res, events);
    const reloads = (): SseEvent[] => events.filter((e) => e.event === 'reload');
    await until(() => events.some((e) => e.event === 'stats'), 5000, 'a stats event');

    // Changed on disk, no API call: the watch reloads (as SIGHUP would).
    fb.write(base('debug'));
    await until(() => reloads().length === 1, 5000, 'the watch reload event');
    expect(reloads()[0]!.data).toMatchObject({ result: 'applied', trigger: 'watch' });
    expect(reloads()[0]!.data['changed']).toContain('log.level');

    // A broken file: rejected, with the file and the reason.
    fb.write(`${base('debug')}mqtt: { nope: 1 }\n`);
    await until(() => reloads().length === 2, 5000, 'the rejected reload event');
    expect(reloads()[1]!.data).toMatchObject({ result: 'rejected', trigger: 'watch' });
    expect((reloads()[1]!.data['errors'] as unknown[]).length).toBeGreaterThan(0);

    // Fixed, then asked for through the API: one event and one config.reloaded line for it.
    fb.write(base('info'));
    await until(() => reloads().length === 3, 5000, 'the fixed reload event');
    const from = fb.logs.length;
    const r = await api.post('/api/v1/reload');
    expect(r.status).toBe(200);
    await until(() => reloads().length >= 4, 5000, 'the API reload event');
    await sleep(300);
    expect(reloads()).toHaveLength(4);
    expect(reloads()[3]!.data).toMatchObject({ result: 'applied', trigger: 'api' });
    expect(fb.events('config.reloaded', from)).toHaveLength(1);
    ac.abort();
    await reading;
  });
});
