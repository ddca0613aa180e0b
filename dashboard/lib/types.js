/**
 * Shapes of the admin API (/api/v1, operations.md "Admin REST API") as the dashboard reads them.
 * Types only: imported in JSDoc as `import('./types.js').Overview`. Fields a broker may not send
 * yet are optional, and the pages treat them so.
 */

/**
 * @template T
 * @typedef {{ data: T[], meta: { limit?: number, nextCursor?: string | null } & Record<string, unknown> }} Page
 */

/**
 * @typedef {{ file: string | null, line: number | null, path: string | null, message: string }} ReloadError
 * @typedef {{ ok: boolean, at: string | null, errors: ReloadError[] }} LastReload
 * @typedef {{
 *   version: string, node: string, uptimeSeconds: number,
 *   connections: { mqtt: number, stomp: number }, sessions: number, subscriptions: number, retained: number,
 *   queues: { count: number, ready: number, unacked: number, dlqMessages: number },
 *   rates: { inPerSec: number, outPerSec: number }, storeCommitP99Seconds: number | null,
 *   lastReload: LastReload
 * }} Overview
 */

/**
 * One `event: stats` of /api/v1/stream, also the items of /api/v1/stats/history.
 * @typedef {{
 *   at: number, uptimeSeconds?: number,
 *   connections?: { mqtt: number, stomp: number },
 *   sessions?: { online: number, offline: number } | number,
 *   subscriptions?: { exact: number, wildcard: number, shared: number },
 *   retained?: number, inflight?: number, sessionQueued?: number,
 *   queues?: { count: number, dlqs?: number, ready: number, unacked: number, delayed?: number, dlqMessages: number, consumers?: number },
 *   counters?: Record<string, number>,
 *   rates?: { inPerSec: number, outPerSec: number, droppedPerSec?: number, bytesInPerSec?: number, bytesOutPerSec?: number },
 *   latency?: { ackP99Seconds?: number | null, deliveryP99Seconds?: number | null, storeCommitP99Seconds?: number | null },
 *   eventLoopLagSeconds?: number, heapUsedBytes?: number, rssBytes?: number
 * }} Stats
 */

/**
 * `event: client` of /api/v1/stream.
 * @typedef {{ event: 'connected' | 'disconnected', clientId: string, protocol: string, version?: string, listener?: string, ip?: string, at: string, reason?: string }} ClientEvent
 */

/**
 * `event: reload` of /api/v1/stream.
 * @typedef {{ result: 'applied' | 'rejected', at: string | null, changed: string[], restartRequired: string[], errors: ReloadError[] }} ReloadEvent
 */

/**
 * @typedef {{
 *   clientId: string, protocol: string, state?: 'connected' | 'offline', version: string | null,
 *   listener: string | null, ip: string | null, port: number | null, username: string | null,
 *   connectedAt: string | null, keepalive: number | null, cleanStart: boolean | null, sessionExpiry: number,
 *   inflight: number, queued: number, subscriptions: number, msgsIn: number, msgsOut: number, tls: boolean,
 *   sessionId?: string
 * }} Client
 * @typedef {{
 *   clientId: string, key?: string, filter: string | null, topic?: string, share: string | null, queue?: string | null,
 *   qos: number, noLocal?: boolean, retainAsPublished?: boolean, retainHandling?: number, identifier?: number | null
 * }} Subscription
 * @typedef {Omit<Client, 'subscriptions'> & { subscriptions: Subscription[] }} ClientDetail
 */

/**
 * @typedef {{ level: string, topic: string, subscribers: number, retained: boolean, children: number }} TreeNode
 */

/**
 * @typedef {{ payload: string, payloadEncoding: 'utf8' | 'base64', size: number, truncated: boolean }} Payload
 * @typedef {{ topic: string, qos: number, size: number, publishedAt: string | null, expiresAt?: string | null }} RetainedItem
 * @typedef {RetainedItem & Payload & { properties?: Record<string, unknown> }} RetainedMessage
 */

/**
 * @typedef {{
 *   name: string, kind: 'normal' | 'dlq', durable: boolean, ready: number, unacked: number, delayed: number,
 *   consumers: number, deadLetterTo: string | null, ttlMs: number | null, maxLength: number | null, maxPriority: number
 * }} Queue
 * @typedef {{ reason: string, fromQueue: string, count: number, firstAt: string | null }} Death
 * @typedef {Payload & {
 *   id: number, topic?: string, enqueuedAt: string | null, priority: number, deliveryCount: number, redelivered?: boolean,
 *   expiresAt: string | null, headers: Record<string, string>, properties?: Record<string, unknown>, death: Death | null
 * }} QueueMessage
 */

/**
 * @typedef {{
 *   name: string, protocol: string, transport: string, bind: string, port: number, running: boolean,
 *   connections: number, tls: { subject: unknown, notAfter: string | null } | null, serves?: string, websocketPaths?: string[]
 * }} Listener
 */

/**
 * @typedef {{
 *   name: string, type: 'clientId' | 'topic' | 'ip', value: string, durationSeconds?: number,
 *   payload?: 'hidden' | 'text' | 'hex', payloadLimit?: number, state?: string, status?: string,
 *   startedAt?: string | null, endsAt?: string | null, stoppedAt?: string | null, size?: number, bytes?: number, events?: number
 * }} Trace
 */

export {};
