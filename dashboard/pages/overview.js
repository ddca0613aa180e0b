/**
 * Overview: the figures of the moment (connections by protocol, message rates, p99 ack latency,
 * sessions, subscriptions, retained, queue and DLQ depth, event-loop lag, memory, version and
 * uptime, the last reload and its errors) and 10-minute charts that are full on load
 * (/stats/history) and move with each `stats` event.
 */
import { useEffect, useMemo } from 'preact/hooks';
import { bytes, duration, latency, num, rate, time, ago } from '../lib/format.js';
import { Card, Chart, html, useStore } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').Stats} Stats */

/**
 * Columns for a chart: times in seconds, then one array per picked value (null where missing).
 * @param {Stats[]} history
 * @param {((s: Stats) => number | null | undefined)[]} picks
 * @returns {[number[], ...(number | null)[][]]}
 */
function columns(history, picks) {
  const xs = history.map((s) => s.at / 1000);
  return [xs, ...picks.map((p) => history.map((s) => p(s) ?? null))];
}

/** @param {number | null | undefined} s seconds to milliseconds */
const ms = (s) => (s === null || s === undefined ? null : s * 1000);

/** @param {Stats | undefined} s */
function subscriptionsOf(s) {
  const x = s?.subscriptions;
  return x ? x.exact + x.wildcard + x.shared : undefined;
}

/** @param {{ live: import('../lib/live.js').Live }} props */
export function OverviewPage({ live }) {
  const history = useStore(live.history);
  const o = useStore(live.overview);
  useEffect(() => {
    void live.refreshOverview();
  }, [live]);
  const s = history[history.length - 1];
  const conns = s?.connections ?? o?.connections;
  const rates = s?.rates ?? o?.rates;
  const queues = s?.queues ?? o?.queues;
  const sessions = s?.sessions;
  const subs = subscriptionsOf(s) ?? o?.subscriptions;
  const reload = o?.lastReload;

  const charts = useMemo(
    () => ({
      conns: columns(history, [(x) => x.connections?.mqtt, (x) => x.connections?.stomp]),
      rates: columns(history, [(x) => x.rates?.inPerSec, (x) => x.rates?.outPerSec, (x) => x.rates?.droppedPerSec]),
      lat: columns(history, [(x) => ms(x.latency?.ackP99Seconds), (x) => ms(x.latency?.deliveryP99Seconds), (x) => ms(x.latency?.storeCommitP99Seconds)]),
      queues: columns(history, [(x) => x.queues?.ready, (x) => x.queues?.unacked, (x) => x.queues?.dlqMessages]),
      lag: columns(history, [(x) => ms(x.eventLoopLagSeconds)]),
    }),
    [history],
  );
  const msFmt = (/** @type {number} */ v) => `${v === 0 ? '0' : v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;
  const countFmt = (/** @type {number} */ v) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : String(Math.round(v * 100) / 100));

  return html`<section>
    <h1>Overview</h1>
    <div class="cards">
      <${Card} id="card-connections" label="Connections" value=${num((conns?.mqtt ?? 0) + (conns?.stomp ?? 0))}
        sub=${html`MQTT <b>${num(conns?.mqtt)}</b> · STOMP <b>${num(conns?.stomp)}</b>`} />
      <${Card} label="Messages in" value=${rate(rates?.inPerSec)} sub=${html`out <b>${rate(rates?.outPerSec)}</b>`} />
      <${Card} label="p99 ack latency" value=${latency(s?.latency?.ackP99Seconds)}
        sub=${html`delivery ${latency(s?.latency?.deliveryP99Seconds)} · commit ${latency(s?.latency?.storeCommitP99Seconds ?? o?.storeCommitP99Seconds)}`} />
      <${Card} label="Sessions" value=${typeof sessions === 'object' ? num(sessions.online + sessions.offline) : num(sessions ?? o?.sessions)}
        sub=${typeof sessions === 'object' ? html`online <b>${num(sessions.online)}</b> · offline <b>${num(sessions.offline)}</b>` : undefined} />
      <${Card} label="Subscriptions" value=${num(subs)}
        sub=${s?.subscriptions ? `exact ${num(s.subscriptions.exact)} · wildcard ${num(s.subscriptions.wildcard)} · shared ${num(s.subscriptions.shared)}` : undefined} />
      <${Card} label="Retained" value=${num(s?.retained ?? o?.retained)} />
      <${Card} label="Queues" value=${html`${num(queues?.count)}${s?.queues?.dlqs ? html` <span class="card-extra">+ ${num(s.queues.dlqs)} DLQ</span>` : null}`}
        sub=${html`ready <b>${num(queues?.ready)}</b> · unacked <b>${num(queues?.unacked)}</b>`} />
      <${Card} id="card-dlq" label="DLQ messages" value=${num(queues?.dlqMessages)} warn=${(queues?.dlqMessages ?? 0) > 0}
        sub=${html`<a href="#/queues">queues ›</a>`} />
      <${Card} label="Event-loop lag (p99)" value=${latency(s?.eventLoopLagSeconds)} warn=${(s?.eventLoopLagSeconds ?? 0) > 0.1} />
      <${Card} label="Memory" value=${bytes(s?.rssBytes)} sub=${s?.heapUsedBytes !== undefined ? `heap ${bytes(s.heapUsedBytes)}` : undefined} />
      <${Card} label="Broker" value=${o ? `v${o.version}` : '–'} sub=${o ? `${o.node} · up ${duration(s?.uptimeSeconds ?? o.uptimeSeconds)}` : undefined} />
      <${Card} id="card-reload" label="Last reload" warn=${reload !== undefined && !reload.ok}
        value=${!reload || reload.at === null ? 'none yet' : reload.ok ? 'applied' : 'failed'}
        sub=${reload?.at ? html`<span title=${time(reload.at)}>${ago(reload.at)}</span>` : html`<a href="#/system">reload ›</a>`} />
    </div>
    ${reload && !reload.ok && reload.errors.length > 0
      ? html`<div class="error-box" role="alert">
          <b>The last reload was rejected; the previous configuration stays in force.</b>
          <ul>${reload.errors.map((e) => html`<li><code>${[e.file, e.line].filter((x) => x !== null).join(':') || 'config'}</code>${e.path ? html` <code>${e.path}</code>` : null}: ${e.message}</li>`)}</ul>
        </div>`
      : null}
    <div class="charts">
      <${Chart} title="Connections" data=${charts.conns} fmt=${countFmt}
        series=${[{ label: 'MQTT', stroke: '#58a6ff' }, { label: 'STOMP', stroke: '#d2a8ff' }]} />
      <${Chart} title="Messages per second" data=${charts.rates} fmt=${countFmt}
        series=${[{ label: 'in', stroke: '#3fb950' }, { label: 'out', stroke: '#58a6ff' }, { label: 'dropped', stroke: '#f85149' }]} />
      <${Chart} title="p99 latency (10 s window)" data=${charts.lat} fmt=${msFmt}
        series=${[{ label: 'ack', stroke: '#e3b341' }, { label: 'delivery', stroke: '#58a6ff' }, { label: 'store commit', stroke: '#d2a8ff' }]} />
      <${Chart} title="Queue depth" data=${charts.queues} fmt=${countFmt}
        series=${[{ label: 'ready', stroke: '#3fb950' }, { label: 'unacked', stroke: '#e3b341' }, { label: 'DLQ', stroke: '#f85149' }]} />
      <${Chart} title="Event-loop lag (p99)" data=${charts.lag} fmt=${msFmt} series=${[{ label: 'lag', stroke: '#e3b341' }]} />
    </div>
    <p class="muted small">${history.length} s of history shown · figures update once a second while the stream is live.</p>
  </section>`;
}
