/**
 * Health probes, public (no token), in the Kubernetes sense:
 * - `GET /health` = `GET /health/ready`: 200 `{"status":"ok"}` when the broker can serve, else 503
 *   `{"status":"fail","checks":{"storage":"ok","listeners":"fail","draining":"ok"}}`: storage
 *   closed, a configured listener not bound, or the broker draining. Only check names are shown.
 * - `GET /health/live`: 200 while the event loop answers; no dependency is checked, so a liveness
 *   probe never restarts a broker that is merely not ready.
 */
import type { Broker } from '../broker.js';
import type { HttpApp } from './app.js';
import { json, ok } from './reply.js';

export type Check = 'ok' | 'fail';

export function healthChecks(broker: Broker): { storage: Check; listeners: Check; draining: Check } {
  return {
    storage: broker.storageOpen ? 'ok' : 'fail',
    listeners: broker.listeners.every((l) => l.running) && (broker.adminListener?.running ?? true) ? 'ok' : 'fail',
    draining: broker.draining ? 'fail' : 'ok',
  };
}

export function mountHealth(app: HttpApp): void {
  const ready = (): ReturnType<typeof json> => {
    const checks = healthChecks(app.broker);
    const good = Object.values(checks).every((c) => c === 'ok');
    return good ? ok({ status: 'ok' }) : json(503, { status: 'fail', checks });
  };
  app.route('GET', '/health', null, ready);
  app.route('GET', '/health/ready', null, ready);
  app.route('GET', '/health/live', null, () => ok({ status: 'ok' }));
}
