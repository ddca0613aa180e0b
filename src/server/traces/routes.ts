/**
 * The trace API (`/api/v1/traces`, admin role): start, list, read, tail (SSE), stop, delete.
 * Shapes: a trace is TraceView (manager.ts); `/log?offset=N&limit=B` answers
 * `{data: [event...], meta: {offset, nextOffset, size, running}}` with whole lines only, so a
 * reader passes `nextOffset` back to go on; `/stream` sends `event: trace` per event from now
 * on, then `event: stopped` when the trace ends, and closes.
 */
import type { HttpApp } from '../http/app.js';
import { HttpError, created, noContent, ok } from '../http/reply.js';
import { pageRequest, paginate } from '../http/paging.js';
import { TraceError, type TraceManager } from './manager.js';

const LOG_READ_DEFAULT = 1024 * 1024;
const LOG_READ_MAX = 16 * 1024 * 1024;

function managerOf(app: HttpApp): TraceManager {
  const m = app.broker.traces;
  if (!m) throw new HttpError(503, 'NOT_READY', 'traces are not available yet');
  return m;
}

/** Runs `fn`, turning a TraceError into the API's JSON error. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TraceError) throw new HttpError(err.status, err.code, err.message);
    throw err;
  }
}

function nonNegative(text: string | null, name: string, def: number, max: number): number {
  if (text === null || text === '') return def;
  if (!/^\d+$/.test(text)) throw new HttpError(400, 'BAD_REQUEST', `${name} must be a whole number of bytes`);
  return Math.min(Number(text), max);
}

export function mountTraces(app: HttpApp): void {
  app.route('POST', '/api/v1/traces', 'admin', async (req) => {
    const body = await req.json();
    return created(guarded(() => managerOf(app).create(body)));
  });

  app.route('GET', '/api/v1/traces', 'admin', (req) => {
    const page = pageRequest(req.query);
    return ok(paginate(managerOf(app).list(), (t) => t.name, page));
  });

  app.route('GET', '/api/v1/traces/:name', 'admin', (req) => ok(guarded(() => managerOf(app).get(req.params['name']!))));

  app.route('GET', '/api/v1/traces/:name/log', 'admin', (req) => {
    const offset = nonNegative(req.query.get('offset'), 'offset', 0, Number.MAX_SAFE_INTEGER);
    const limit = nonNegative(req.query.get('limit'), 'limit', LOG_READ_DEFAULT, LOG_READ_MAX);
    const r = guarded(() => managerOf(app).read(req.params['name']!, offset, Math.max(1, limit)));
    return ok({ data: r.events, meta: { offset: r.offset, nextOffset: r.nextOffset, size: r.size, running: r.running } });
  });

  app.route('GET', '/api/v1/traces/:name/stream', 'admin', (req) => {
    const m = managerOf(app);
    const name = req.params['name']!;
    guarded(() => m.get(name)); // 404 before the stream opens
    const s = req.sse({ retryMs: 2000 });
    const off = m.onEvent(
      name,
      (e) => s.send('trace', e),
      () => {
        s.send('stopped', { name });
        s.close();
      },
    );
    s.onClose(off);
    return undefined;
  });

  app.route('POST', '/api/v1/traces/:name/stop', 'admin', (req) => ok(guarded(() => managerOf(app).stop(req.params['name']!))));

  app.route('DELETE', '/api/v1/traces/:name', 'admin', (req) => {
    guarded(() => managerOf(app).delete(req.params['name']!));
    return noContent();
  });
}
