/**
 * HTTP routes of the metrics: `GET /metrics` (Prometheus text format 0.0.4, never OpenMetrics:
 * promtool 2.42 mis-lints it) and `GET /metrics/per-object` (per-queue series, off unless
 * `metrics.perObject`). Both are public unless `metrics.auth: token`, then any admin token (viewer
 * or above) is asked for; the check is made per request, so a reload switches it at once.
 */
import type { HttpApp, ApiRequest } from '../http/app.js';
import { HttpError, raw, type Reply } from '../http/reply.js';

function authorize(req: ApiRequest): void {
  const t = req.broker.telemetry;
  if (t?.config.auth !== 'token') return;
  const r = req.broker.http.auth.check(req.raw.headers.authorization);
  if (!r.ok) {
    throw new HttpError(401, 'UNAUTHORIZED', r.reason === 'missing' || r.reason === 'no-tokens' ? 'a token is required (metrics.auth: token)' : 'the token is not valid', {
      'WWW-Authenticate': 'Bearer realm="junction"',
    });
  }
}

export function mountMetrics(app: HttpApp): void {
  app.route('GET', '/metrics', null, async (req): Promise<Reply> => {
    const m = req.broker.telemetry?.metrics;
    if (!m) throw new HttpError(404, 'METRICS_DISABLED', 'metrics are off (metrics.enabled: false)');
    authorize(req);
    return raw(200, m.contentType, await m.text());
  });
  app.route('GET', '/metrics/per-object', null, async (req): Promise<Reply> => {
    const t = req.broker.telemetry;
    if (!t?.metrics || !t.config.perObject) throw new HttpError(404, 'PER_OBJECT_METRICS_DISABLED', 'per-object metrics are off (metrics.perObject: false)');
    authorize(req);
    return raw(200, t.metrics.contentType, await t.metrics.perObjectText());
  });
}
