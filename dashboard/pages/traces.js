/**
 * Traces (EMQX's model): start one by client id, topic filter or IP for a bounded time, see the
 * running and finished ones, stop or delete them, and tail one live: its log so far
 * (`/traces/{n}/log?offset=`, JSON lines) then its events as they happen (`/traces/{n}/stream`,
 * server-sent events read with fetch so the token stays in a header).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, rawRequest, readSse, seg } from '../lib/api.js';
import { bytes, num, time } from '../lib/format.js';
import { ErrorBox, ask, html, toast, toastError, useLoad, val } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').Trace} Trace */

const MAX_LINES = 2000;

/**
 * A trace log line (one JSON object) as a short text: time, event, the fields that say who and what.
 * @param {string} line
 */
function describe(line) {
  /** @type {any} */
  let e;
  try {
    e = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof e !== 'object' || e === null) return line;
  const { time: t, at, ts, evt, event, type, ...rest } = e;
  const when = t ?? at ?? ts;
  const name = evt ?? event ?? type ?? '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${when ? `${time(when)} ` : ''}${name ? `${name} ` : ''}${fields}`;
}

/**
 * The log so far: JSON lines as text, or a JSON object with the lines in it.
 * @param {string} name
 * @returns {Promise<string[]>}
 */
async function loadLog(name) {
  const res = await rawRequest(`/api/v1/traces/${seg(name)}/log?offset=0`);
  const text = await res.text();
  if (!res.ok) {
    /** @type {any} */
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    throw new ApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? `HTTP ${res.status}`, body);
  }
  if ((res.headers.get('content-type') ?? '').includes('application/json')) {
    /** @type {any} */
    const body = JSON.parse(text);
    const items = Array.isArray(body) ? body : (body.data ?? body.lines ?? body.events ?? body.log ?? []);
    if (typeof items === 'string') return items.split('\n').filter((l) => l !== '');
    return items.map((/** @type {unknown} */ x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  }
  return text.split('\n').filter((l) => l !== '');
}

/** @param {{ name: string, onClose: () => void, onStopped: () => void }} props */
function Tail({ name, onClose, onStopped }) {
  const [lines, setLines] = useState(/** @type {string[]} */ ([]));
  const [state, setState] = useState('loading');
  const [error, setError] = useState(/** @type {unknown} */ (undefined));
  const [follow, setFollow] = useState(true);
  const box = useRef(/** @type {HTMLPreElement | null} */ (null));
  useEffect(() => {
    const abort = new AbortController();
    /** @param {string[]} more */
    const add = (more) => setLines((l) => [...l, ...more].slice(-MAX_LINES));
    (async () => {
      try {
        add(await loadLog(name));
        setState('connecting');
        await readSse(
          `/api/v1/traces/${seg(name)}/stream`,
          (e) => {
            if (e.event === 'stopped') {
              add(['— the trace stopped —']);
              onStopped();
            } else add([e.data]);
          },
          abort.signal,
          () => setState('live'),
        );
        setState('ended');
      } catch (err) {
        if (abort.signal.aborted) return;
        setError(err);
        setState('failed');
      }
    })();
    return () => abort.abort();
  }, [name]);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);
  return html`<div class="panel" id="trace-tail">
    <div class="panel-head">
      <h2>Trace ${name}</h2>
      <span class=${`live-badge ${state === 'live' ? 'live' : state === 'failed' ? 'stopped' : 'polling'}`}>${state}</span>
      <span class="muted">${lines.length} event(s)</span>
      <span class="spacer"></span>
      <label class="check"><input type="checkbox" checked=${follow} onChange=${() => setFollow(!follow)} /> follow</label>
      <button type="button" class="small" onClick=${() => setLines([])}>Clear</button>
      <button type="button" class="small" onClick=${onClose}>Close</button>
    </div>
    <${ErrorBox} error=${error} />
    <pre class="log" ref=${box}>${lines.map(describe).join('\n')}</pre>
  </div>`;
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function TracesPage({ live, arg }) {
  /** @type {ReturnType<typeof useLoad<Trace[]>>} */
  const list = useLoad(() => api('/api/v1/traces').then((/** @type {any} */ r) => (Array.isArray(r) ? r : r.data ?? [])), []);
  const [tail, setTail] = useState(arg);
  // Sizes and event counts move while traces run: reload the list every few seconds of stats.
  const lastLoad = useRef(0);
  useEffect(
    () =>
      live.onTick(() => {
        if (Date.now() - lastLoad.current < 5000) return;
        lastLoad.current = Date.now();
        void list.reload();
      }),
    [live],
  );
  const [f, setF] = useState({ name: '', type: 'clientId', value: '', durationSeconds: '600', payload: 'hidden', payloadLimit: '1024' });
  /** @param {keyof typeof f} k @param {string} v */
  const set = (k, v) => setF({ ...f, [k]: v });

  /** @param {Event} e */
  const start = async (e) => {
    e.preventDefault();
    const name = f.name.trim() || `${f.type}-${Date.now().toString(36)}`;
    try {
      await api('/api/v1/traces', {
        method: 'POST',
        body: { name, type: f.type, value: f.value.trim(), durationSeconds: Number(f.durationSeconds), payload: f.payload, payloadLimit: Number(f.payloadLimit) },
      });
      toast(`Trace ${name} started`, 'ok');
      setTail(name);
      void list.reload();
    } catch (err) {
      toastError(err);
    }
  };
  /** @param {string} name */
  const stop = async (name) => {
    try {
      await api(`/api/v1/traces/${seg(name)}/stop`, { method: 'POST' });
      toast(`Trace ${name} stopped`, 'ok');
      void list.reload();
    } catch (err) {
      toastError(err);
    }
  };
  /** @param {string} name */
  const remove = async (name) => {
    const a = await ask({ title: `Delete trace ${name}?`, body: html`<p>Its log file is deleted.</p>`, confirm: 'Delete', danger: true });
    if (!a.ok) return;
    try {
      await api(`/api/v1/traces/${seg(name)}`, { method: 'DELETE' });
      if (tail === name) setTail('');
      void list.reload();
    } catch (err) {
      toastError(err);
    }
  };
  const traces = list.data ?? [];
  const notThere = list.error instanceof ApiError && list.error.status === 404;
  return html`<section>
    <h1>Traces</h1>
    <form class="filters" id="trace-form" onSubmit=${start}>
      <select name="type" value=${f.type} onChange=${(/** @type {Event} */ e) => set('type', val(e))}>
        <option value="clientId">client ID</option><option value="topic">topic filter</option><option value="ip">IP address</option>
      </select>
      <input type="text" name="value" required placeholder=${f.type === 'clientId' ? 'sensor-17' : f.type === 'topic' ? 'sensors/#' : '10.0.0.7'} value=${f.value} onInput=${(/** @type {Event} */ e) => set('value', val(e))} />
      <input type="text" name="name" placeholder="name (optional)" value=${f.name} onInput=${(/** @type {Event} */ e) => set('name', val(e))} />
      <label>for <input type="number" class="narrow" min="1" max="3600" name="durationSeconds" value=${f.durationSeconds} onInput=${(/** @type {Event} */ e) => set('durationSeconds', val(e))} /> s</label>
      <select name="payload" value=${f.payload} onChange=${(/** @type {Event} */ e) => set('payload', val(e))}>
        <option value="hidden">payloads hidden</option><option value="text">payloads as text</option><option value="hex">payloads as hex</option>
      </select>
      <button type="submit" class="primary">Start trace</button>
    </form>
    ${notThere ? html`<div class="error-box">This broker has no trace API (/api/v1/traces).</div>` : html`<${ErrorBox} error=${list.error} />`}
    <table class="grid" id="traces-table">
      <thead><tr><th>Name</th><th>By</th><th>State</th><th>Started</th><th>Ends</th><th class="r">Events</th><th class="r">Size</th><th></th></tr></thead>
      <tbody>
        ${traces.map((t) => {
          const state = t.state ?? t.status ?? '–';
          const running = state === 'running';
          return html`<tr key=${t.name}>
            <td><code>${t.name}</code></td>
            <td>${t.type} <code>${t.value}</code></td>
            <td>${state}</td>
            <td>${time(t.startedAt)}</td>
            <td>${time(t.endsAt ?? t.stoppedAt)}</td>
            <td class="r">${num(t.events)}</td>
            <td class="r">${bytes(t.size ?? t.bytes)}</td>
            <td class="r buttons">
              <button type="button" class="small" onClick=${() => setTail(t.name)}>Tail</button>
              ${running ? html`<button type="button" class="small" onClick=${() => stop(t.name)}>Stop</button>` : null}
              <button type="button" class="small danger" onClick=${() => remove(t.name)}>Delete</button>
            </td>
          </tr>`;
        })}
        ${traces.length === 0 && !list.loading && !list.error ? html`<tr><td colspan="8" class="muted">No traces.</td></tr>` : null}
      </tbody>
    </table>
    ${tail ? html`<${Tail} key=${tail} name=${tail} onClose=${() => setTail('')} onStopped=${() => void list.reload()} />` : null}
  </section>`;
}
