/**
 * The admin REST API under `/api/v1` (operations.md "Admin REST API"), one module per resource.
 * Traces are mounted by their own module (src/server/traces).
 */
import type { HttpApp } from '../app.js';
import { mountClients } from './clients.js';
import { mountPublish } from './publish.js';
import { mountQueues } from './queues.js';
import { mountRetained } from './retained.js';
import { mountStats } from './stats.js';
import { mountSystem } from './system.js';
import { mountTopics } from './topics.js';

export function mountApi(app: HttpApp): void {
  mountSystem(app);
  mountClients(app);
  mountTopics(app);
  mountRetained(app);
  mountQueues(app);
  mountPublish(app);
  mountStats(app);
}
