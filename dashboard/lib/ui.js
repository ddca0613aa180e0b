/**
 * Shared pieces of the pages: `html` (htm bound to Preact's h; no JSX, no build step), toasts,
 * a promise-returning confirm dialog, a side drawer, the payload viewer (text / JSON / hex), a
 * pager over the API's cursors, and a uPlot chart.
 */
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';
import { ApiError } from './api.js';
import { hexDump, payloadBytes, payloadText, prettyJson, bytes as fmtBytes } from './format.js';

export const html = htm.bind(h);

/**
 * The value of the input behind an event.
 * @param {Event} e
 */
export function val(e) {
  return /** @type {HTMLInputElement} */ (e.currentTarget).value;
}

/** @param {Event} e */
export function checked(e) {
  return /** @type {HTMLInputElement} */ (e.currentTarget).checked;
}

/**
 * A tiny store: the value, and listeners told of each change.
 * @template T
 */
export class Store {
  /** @param {T} value */
  constructor(value) {
    this.value = value;
    /** @type {Set<(v: T) => void>} */
    this.listeners = new Set();
  }

  /** @param {T} v */
  set(v) {
    this.value = v;
    for (const l of this.listeners) l(v);
  }

  /**
   * @param {(v: T) => void} l
   * @returns {() => void}
   */
  listen(l) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

/**
 * @template T
 * @param {Store<T>} store
 * @returns {T}
 */
export function useStore(store) {
  const [v, setV] = useState(store.value);
  useEffect(() => store.listen(setV), [store]);
  return v;
}

/* ---------- toasts ---------- */

/** @typedef {{ id: number, text: string, kind: 'ok' | 'error' | 'info' }} Toast */

/** @type {Store<Toast[]>} */
const toasts = new Store(/** @type {Toast[]} */ ([]));
let toastId = 0;

/**
 * Shows a short message in the corner for a few seconds.
 * @param {string} text
 * @param {'ok' | 'error' | 'info'} [kind]
 */
export function toast(text, kind = 'info') {
  const t = { id: ++toastId, text, kind };
  toasts.set([...toasts.value, t]);
  setTimeout(() => toasts.set(toasts.value.filter((x) => x.id !== t.id)), kind === 'error' ? 8000 : 4000);
}

/**
 * An error as people read it: the API's message, with what the role needs on a 403.
 * @param {unknown} err
 */
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return `Not allowed: ${err.message}`;
    return `${err.message} (${err.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** @param {unknown} err */
export function toastError(err) {
  toast(errorText(err), 'error');
}

export function Toasts() {
  const list = useStore(toasts);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${list.map((t) => html`<div key=${t.id} class=${`toast toast-${t.kind}`}>${t.text}</div>`)}
  </div>`;
}

/* ---------- confirm dialog ---------- */

/**
 * @typedef {{
 *   title: string, body?: any, confirm?: string, danger?: boolean,
 *   option?: string, optionDefault?: boolean
 * }} AskOptions
 * @typedef {{ ok: boolean, option: boolean }} AskResult
 * @typedef {AskOptions & { resolve: (r: AskResult) => void }} Asking
 */

/** @type {Store<Asking | null>} */
const asking = new Store(/** @type {Asking | null} */ (null));

/**
 * Asks the user to confirm; resolves to `{ok, option}` (option: the checkbox, when one is shown).
 * @param {AskOptions} opts
 * @returns {Promise<AskResult>}
 */
export function ask(opts) {
  return new Promise((resolve) => {
    asking.value?.resolve({ ok: false, option: false });
    asking.set({ ...opts, resolve });
  });
}

export function Dialogs() {
  const a = useStore(asking);
  const [option, setOption] = useState(false);
  const confirmRef = useRef(/** @type {HTMLButtonElement | null} */ (null));
  useEffect(() => {
    setOption(a?.optionDefault ?? false);
    if (a) confirmRef.current?.focus();
  }, [a]);
  if (!a) return null;
  /** @param {boolean} ok */
  const done = (ok) => {
    asking.set(null);
    a.resolve({ ok, option });
  };
  return html`<div class="backdrop" onClick=${(/** @type {MouseEvent} */ e) => e.target === e.currentTarget && done(false)}>
    <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title"
      onKeyDown=${(/** @type {KeyboardEvent} */ e) => e.key === 'Escape' && done(false)}>
      <h2 id="dialog-title">${a.title}</h2>
      ${a.body !== undefined ? html`<div class="dialog-body">${a.body}</div>` : null}
      ${a.option
        ? html`<label class="check"><input type="checkbox" name="dialog-option" checked=${option} onChange=${(/** @type {Event} */ e) => setOption(checked(e))} /> ${a.option}</label>`
        : null}
      <div class="actions">
        <button type="button" onClick=${() => done(false)}>Cancel</button>
        <button type="button" ref=${confirmRef} class=${a.danger ? 'danger' : 'primary'} data-confirm onClick=${() => done(true)}>${a.confirm ?? 'OK'}</button>
      </div>
    </div>
  </div>`;
}

/* ---------- drawer ---------- */

/**
 * A panel sliding in from the right.
 * @param {{ title: any, onClose: () => void, children?: any }} props
 */
export function Drawer({ title, onClose, children }) {
  useEffect(() => {
    /** @param {KeyboardEvent} e */
    const key = (e) => {
      if (e.key === 'Escape') onClose();
    };
    window.addEventListener('keydown', key);
    return () => window.removeEventListener('keydown', key);
  }, [onClose]);
  return html`<aside class="drawer" role="dialog" aria-label=${typeof title === 'string' ? title : 'details'}>
    <header>
      <h2>${title}</h2>
      <button type="button" class="icon" title="Close" aria-label="Close" onClick=${onClose}>×</button>
    </header>
    <div class="drawer-body">${children}</div>
  </aside>`;
}

/* ---------- payloads ---------- */

/**
 * A payload shown as text, pretty JSON or hex; JSON is picked first when it parses.
 * @param {{ p: import('./types.js').Payload }} props
 */
export function PayloadView({ p }) {
  const text = payloadText(p);
  const json = prettyJson(text);
  const [mode, setMode] = useState(/** @type {'text' | 'json' | 'hex'} */ (json !== null ? 'json' : text !== null ? 'text' : 'hex'));
  let body;
  if (mode === 'json') body = json ?? 'The payload is not JSON.';
  else if (mode === 'text') body = text ?? 'The payload is not UTF-8 text: see hex.';
  else body = hexDump(payloadBytes(p));
  /** @param {'text' | 'json' | 'hex'} m @param {string} label */
  const tab = (m, label) =>
    html`<button type="button" role="tab" aria-selected=${mode === m} class=${mode === m ? 'tab on' : 'tab'} onClick=${() => setMode(m)}>${label}</button>`;
  return html`<div class="payload">
    <div class="tabs" role="tablist">
      ${tab('text', 'Text')}${tab('json', 'JSON')}${tab('hex', 'Hex')}
      <span class="muted">${fmtBytes(p.size)}${p.truncated ? ' (truncated)' : ''}</span>
    </div>
    <pre class="payload-body">${body}</pre>
  </div>`;
}

/* ---------- paging ---------- */

/**
 * Cursor paging state: the cursor of the page shown and those before it.
 * @returns {{ cursor: string | undefined, page: number, next: (c: string) => void, back: () => void, reset: () => void }}
 */
export function usePager() {
  const [stack, setStack] = useState(/** @type {string[]} */ ([]));
  return {
    cursor: stack[stack.length - 1],
    page: stack.length + 1,
    next: (c) => setStack([...stack, c]),
    back: () => setStack(stack.slice(0, -1)),
    reset: () => setStack([]),
  };
}

/**
 * @param {{ pager: ReturnType<typeof usePager>, nextCursor: string | null | undefined, count: number }} props
 */
export function Pager({ pager, nextCursor, count }) {
  if (pager.page === 1 && !nextCursor) return html`<div class="pager muted">${count} shown</div>`;
  return html`<div class="pager">
    <button type="button" disabled=${pager.page === 1} onClick=${pager.back}>‹ Previous</button>
    <span class="muted">page ${pager.page}, ${count} shown</span>
    <button type="button" disabled=${!nextCursor} onClick=${() => nextCursor && pager.next(nextCursor)}>Next ›</button>
  </div>`;
}

/* ---------- data loading ---------- */

/**
 * Loads with `fn` whenever `deps` change; `reload()` loads again. Errors are kept, not thrown.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {unknown[]} deps
 * @returns {{ data: T | undefined, error: unknown, loading: boolean, reload: () => Promise<void> }}
 */
export function useLoad(fn, deps) {
  const [state, setState] = useState(/** @type {{ data: T | undefined, error: unknown, loading: boolean }} */ ({ data: undefined, error: undefined, loading: true }));
  const seq = useRef(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const run = async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await fnRef.current();
      if (mine === seq.current) setState({ data, error: undefined, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  };
  useEffect(() => {
    void run();
  }, deps);
  return { ...state, reload: run };
}

/** @param {{ error: unknown }} props */
export function ErrorBox({ error }) {
  if (error === undefined || error === null) return null;
  return html`<div class="error-box" role="alert">${errorText(error)}</div>`;
}

/* ---------- numbers and charts ---------- */

/**
 * One figure with its label.
 * @param {{ label: string, value: any, sub?: any, warn?: boolean, id?: string }} props
 */
export function Card({ label, value, sub, warn, id }) {
  return html`<div class=${warn ? 'card warn' : 'card'} id=${id}>
    <div class="card-label">${label}</div>
    <div class="card-value">${value}</div>
    ${sub !== undefined ? html`<div class="card-sub">${sub}</div>` : null}
  </div>`;
}

/**
 * A time-series chart (uPlot). `data[0]` holds times in seconds, the rest one array per series.
 * @param {{
 *   title: string, series: { label: string, stroke: string }[], data: uPlot.AlignedData,
 *   fmt?: (v: number) => string, height?: number
 * }} props
 */
export function Chart({ title, series, data, fmt, height = 170 }) {
  const box = useRef(/** @type {HTMLDivElement | null} */ (null));
  const plot = useRef(/** @type {uPlot | null} */ (null));
  const show = fmt ?? ((/** @type {number} */ v) => String(v));
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    /** @type {uPlot.Options} */
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: '#8b949e', grid: { stroke: '#30363d', width: 1 }, ticks: { stroke: '#30363d', width: 1 } },
        { stroke: '#8b949e', grid: { stroke: '#30363d', width: 1 }, ticks: { stroke: '#30363d', width: 1 }, size: 64, values: (_u, vals) => vals.map((v) => show(v)) },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5, points: { show: false }, value: (/** @type {uPlot} */ _u, /** @type {number | null} */ v) => (v === null ? '–' : show(v)) }))],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div ref=${box}></div>
  </figure>`;
}
