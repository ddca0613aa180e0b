/**
 * Live data for every page, pushed by the broker: one `/api/v1/stream` (server-sent events, read
 * with fetch so the token stays in a header) gives `stats` once a second, `client` when a client
 * connects or leaves, and `reload` after a reload. The last 10 minutes of stats start from
 * `/api/v1/stats/history`, so the charts are full as soon as the page opens.
 *
 * When the stream cannot be had (a proxy that buffers, an old broker), the page polls
 * `/api/v1/overview` every 5 s instead and keeps trying the stream again, backing off to 30 s.
 */
import { api, ApiError, readSse } from './api.js';
import { Store } from './ui.js';

/** Points kept for the charts: 10 minutes at 1 Hz. */
export const HISTORY_SECONDS = 600;
export const POLL_MS = 5000;

/** @typedef {'connecting' | 'live' | 'polling' | 'stopped'} Mode */
/** @typedef {import('./types.js').Stats} Stats */

export class Live {
  constructor() {
    /** @type {Store<Mode>} */
    this.mode = new Store(/** @type {Mode} */ ('connecting'));
    /** The stats of the last 10 minutes, oldest first; a new array on each change. @type {Store<Stats[]>} */
    this.history = new Store(/** @type {Stats[]} */ ([]));
    /** @type {Store<import('./types.js').Overview | undefined>} */
    this.overview = new Store(/** @type {import('./types.js').Overview | undefined} */ (undefined));
    /** @type {Set<(e: import('./types.js').ClientEvent) => void>} */
    this.clientListeners = new Set();
    /** @type {Set<(e: import('./types.js').ReloadEvent) => void>} */
    this.reloadListeners = new Set();
    /** Called on each refresh point: a stats event (live) or a poll (fallback). @type {Set<() => void>} */
    this.tickListeners = new Set();
    this.abort = new AbortController();
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pollTimer = undefined;
  }

  start() {
    void this.loadHistory();
    void this.refreshOverview();
    void this.streamLoop();
  }

  stop() {
    this.abort.abort();
    this.stopPolling();
    this.mode.set('stopped');
  }

  /**
   * @param {(e: import('./types.js').ClientEvent) => void} l
   * @returns {() => void}
   */
  onClient(l) {
    this.clientListeners.add(l);
    return () => this.clientListeners.delete(l);
  }

  /**
   * @param {(e: import('./types.js').ReloadEvent) => void} l
   * @returns {() => void}
   */
  onReload(l) {
    this.reloadListeners.add(l);
    return () => this.reloadListeners.delete(l);
  }

  /**
   * @param {() => void} l
   * @returns {() => void}
   */
  onTick(l) {
    this.tickListeners.add(l);
    return () => this.tickListeners.delete(l);
  }

  async refreshOverview() {
    try {
      this.overview.set(await api('/api/v1/overview', { signal: this.abort.signal }));
    } catch {
      // The pages show their own errors; the header keeps the last overview.
    }
  }

  async loadHistory() {
    try {
      /** @type {{ data: Stats[] }} */
      const h = await api(`/api/v1/stats/history?seconds=${HISTORY_SECONDS}`, { signal: this.abort.signal });
      const known = this.history.value;
      const first = known[0]?.at ?? Infinity;
      // Points that came over the stream while the history loaded stay after the older ones.
      this.history.set([...h.data.filter((s) => s.at < first), ...known].slice(-HISTORY_SECONDS));
    } catch {
      // No history (an older broker): the charts fill as the stream goes.
    }
  }

  /** @param {Stats} s */
  push(s) {
    const list = this.history.value;
    const next = list.length >= HISTORY_SECONDS ? list.slice(list.length - HISTORY_SECONDS + 1) : list.slice();
    next.push(s);
    this.history.set(next);
    for (const l of this.tickListeners) l();
  }

  async streamLoop() {
    let delay = 2000;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await readSse(
          '/api/v1/stream',
          (e) => this.dispatch(e.event, e.data),
          signal,
          () => {
            delay = 2000;
            this.stopPolling();
            this.mode.set('live');
          },
        );
      } catch (err) {
        if (signal.aborted) return;
        // A revoked token logs the page out (api.js); nothing more to try.
        if (err instanceof ApiError && err.status === 401) return this.stop();
      }
      if (signal.aborted) return;
      this.startPolling();
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  }

  /**
   * @param {string} event
   * @param {string} data
   */
  dispatch(event, data) {
    /** @type {any} */
    let v;
    try {
      v = JSON.parse(data);
    } catch {
      return;
    }
    if (event === 'stats') this.push(v);
    else if (event === 'client') for (const l of this.clientListeners) l(v);
    else if (event === 'reload') {
      for (const l of this.reloadListeners) l(v);
      void this.refreshOverview();
    }
  }

  startPolling() {
    if (this.pollTimer !== undefined) return;
    this.mode.set('polling');
    const poll = async () => {
      await this.refreshOverview();
      const o = this.overview.value;
      if (o) {
        this.push({
          at: Date.now(),
          uptimeSeconds: o.uptimeSeconds,
          connections: o.connections,
          retained: o.retained,
          queues: { ...o.queues },
          rates: o.rates,
          latency: { storeCommitP99Seconds: o.storeCommitP99Seconds },
        });
      }
    };
    void poll();
    this.pollTimer = setInterval(poll, POLL_MS);
  }

  stopPolling() {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }
}
