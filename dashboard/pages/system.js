/**
 * Listeners and config: every listener with its transport, address, connections and TLS
 * certificate expiry (warned under 14 days, as docs/ops/alerts.yml does); the effective
 * configuration with secrets redacted and the keys waiting for a restart; and Reload (what SIGHUP
 * does): the keys it changed and those that need a restart, or the errors that made it keep the
 * old configuration. The API never writes the config file: edit the file, then reload.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { daysUntil, num, time } from '../lib/format.js';
import { ErrorBox, ask, errorText, html, toast, useLoad } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').Listener} Listener */
/** @typedef {{ result: 'applied' | 'rejected', changed?: string[], restartRequired?: string[], errors?: import('../lib/types.js').ReloadError[], at?: string | null }} ReloadOutcome */

/** @param {{ l: Listener }} props */
function Expiry({ l }) {
  if (!l.tls) return html`<span class="muted">–</span>`;
  const days = daysUntil(l.tls.notAfter);
  const subject = typeof l.tls.subject === 'string' ? l.tls.subject : l.tls.subject ? JSON.stringify(l.tls.subject) : '';
  const cls = days === null ? 'badge' : days < 0 ? 'badge bad' : days < 14 ? 'badge warn' : 'badge good';
  const text = days === null ? 'unknown' : days < 0 ? `expired ${-days} d ago` : `${days} d left`;
  return html`<span title=${subject}><span class=${cls}>${text}</span> <span class="muted small">${time(l.tls.notAfter)}</span></span>`;
}

/** @param {{ r: ReloadOutcome }} props */
function ReloadResult({ r }) {
  if (r.result === 'rejected') {
    return html`<div class="error-box" role="alert" id="reload-result">
      <b>Rejected: the configuration in force is unchanged.</b>
      <table class="grid compact">
        <thead><tr><th>File</th><th>Line</th><th>Key</th><th>Problem</th></tr></thead>
        <tbody>${(r.errors ?? []).map((e) => html`<tr><td><code>${e.file ?? '–'}</code></td><td>${e.line ?? '–'}</td><td><code>${e.path ?? '–'}</code></td><td>${e.message}</td></tr>`)}</tbody>
      </table>
    </div>`;
  }
  const changed = r.changed ?? [];
  const restart = r.restartRequired ?? [];
  return html`<div class="ok-box" role="status" id="reload-result">
    <b>Applied${r.at ? ` at ${time(r.at)}` : ''}.</b>
    ${changed.length === 0 && restart.length === 0 ? html` Nothing changed.` : null}
    ${changed.length > 0 ? html`<div>Changed now: ${changed.map((k) => html`<code class="key">${k}</code> `)}</div>` : null}
    ${restart.length > 0 ? html`<div class="warn-text">Need a restart (old value kept until then): ${restart.map((k) => html`<code class="key">${k}</code> `)}</div>` : null}
  </div>`;
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function SystemPage({ live }) {
  /** @type {ReturnType<typeof useLoad<{ data: Listener[] }>>} */
  const listeners = useLoad(() => api('/api/v1/listeners'), []);
  /** @type {ReturnType<typeof useLoad<Record<string, unknown> & { pendingRestart?: string[] }>>} */
  const config = useLoad(() => api('/api/v1/config'), []);
  const [reload, setReload] = useState(/** @type {ReloadOutcome | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [reloadError, setReloadError] = useState(/** @type {unknown} */ (undefined));

  // A reload made elsewhere (SIGHUP, another tab, a file change) shows here too.
  useEffect(
    () =>
      live.onReload((e) => {
        setReload(e);
        void config.reload();
        void listeners.reload();
      }),
    [live],
  );

  const doReload = async () => {
    const a = await ask({ title: 'Reload the configuration?', body: html`<p>Same as SIGHUP: the file is read and checked whole; if anything is wrong, nothing changes.</p>`, confirm: 'Reload' });
    if (!a.ok) return;
    setBusy(true);
    setReloadError(undefined);
    try {
      /** @type {ReloadOutcome} */
      const r = await api('/api/v1/reload', { method: 'POST', accept: [422] });
      setReload(r);
      toast(r.result === 'applied' ? 'Configuration reloaded' : 'Reload rejected: see the errors', r.result === 'applied' ? 'ok' : 'error');
      void config.reload();
      void listeners.reload();
    } catch (err) {
      setReloadError(err);
    } finally {
      setBusy(false);
    }
  };

  const { pendingRestart, ...effective } = config.data ?? {};
  return html`<section>
    <h1>Listeners and config</h1>
    <div class="panel">
      <h2>Listeners</h2>
      <${ErrorBox} error=${listeners.error} />
      <table class="grid" id="listeners-table">
        <thead><tr><th>Name</th><th>Protocol</th><th>Transport</th><th>Address</th><th>State</th><th class="r">Connections</th><th>Certificate</th></tr></thead>
        <tbody>${(listeners.data?.data ?? []).map(
          (l) => html`<tr key=${l.name}>
            <td>${l.name}${l.serves ? html` <span class="badge">${l.serves}</span>` : null}</td>
            <td>${l.protocol}</td><td>${l.transport}${l.websocketPaths ? html` <span class="muted small">${l.websocketPaths.join(' ')}</span>` : null}</td>
            <td><code>${l.bind}:${l.port}</code></td>
            <td><span class=${`dot ${l.running ? 'connected' : 'offline'}`}></span>${l.running ? 'running' : 'stopped'}</td>
            <td class="r">${num(l.connections)}</td>
            <td><${Expiry} l=${l} /></td>
          </tr>`,
        )}</tbody>
      </table>
    </div>
    <div class="panel">
      <div class="panel-head">
        <h2>Configuration</h2>
        <span class="spacer"></span>
        <button type="button" class="primary" id="reload-button" disabled=${busy} onClick=${doReload}>${busy ? 'Reloading…' : 'Reload'}</button>
      </div>
      <p class="muted small">The config file is the one source of truth: the API never writes it. Edit the file, then reload. Secrets are shown as ${'<redacted>'}.</p>
      ${reloadError ? html`<div class="error-box" role="alert">${errorText(reloadError)}</div>` : null}
      ${reload ? html`<${ReloadResult} r=${reload} />` : null}
      ${pendingRestart && pendingRestart.length > 0
        ? html`<div class="warn-box">Changed in the file, waiting for a restart: ${pendingRestart.map((k) => html`<code class="key">${k}</code> `)}</div>`
        : null}
      <${ErrorBox} error=${config.error} />
      ${config.data ? html`<pre class="config" id="config-json">${JSON.stringify(effective, null, 2)}</pre>` : null}
    </div>
  </section>`;
}
