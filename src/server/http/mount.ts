/**
 * Everything the HttpApp serves, mounted in one place: one line per module. A module exports a
 * `mountX(app)` that registers its routes with `app.route(...)` (see /tmp/http-app-api.md and
 * app.ts); it reads the broker as `app.broker` (or `req.broker` inside a handler).
 */
import type { HttpApp } from './app.js';
import { mountApi } from './api/index.js';
import { mountHealth } from './health.js';
import { mountMetrics } from '../metrics/http.js';
import { mountDashboard } from '../dashboard.js';
import { mountTraces } from '../traces/routes.js';

export function mountRoutes(app: HttpApp): void {
  mountHealth(app);
  mountApi(app);
  mountMetrics(app);
  mountDashboard(app);
  mountTraces(app);
}
