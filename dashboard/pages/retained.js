/**
 * Retained messages: browse by topic filter (`GET /retained?match=`), open one to see its payload
 * as text, pretty JSON or hex with its properties, delete it, or delete every match
 * (`DELETE /retained?match=`) after a confirmation that says how many.
 */
import { useState } from 'preact/hooks';
import { api, query, seg } from '../lib/api.js';
import { bytes, time } from '../lib/format.js';
import { Drawer, ErrorBox, Pager, PayloadView, ask, html, toast, toastError, useLoad, usePager, val } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').RetainedItem} RetainedItem */

/** @param {{ topic: string, onClose: () => void, onDeleted: () => void }} props */
function RetainedDrawer({ topic, onClose, onDeleted }) {
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').RetainedMessage>>} */
  const m = useLoad(() => api(`/api/v1/retained/${seg(topic)}`), [topic]);
  const del = async () => {
    const a = await ask({ title: 'Delete this retained message?', body: html`<p><code>${topic}</code>: new subscribers no longer receive it.</p>`, confirm: 'Delete', danger: true });
    if (!a.ok) return;
    try {
      await api(`/api/v1/retained/${seg(topic)}`, { method: 'DELETE' });
      toast(`Deleted the retained message on ${topic}`, 'ok');
      onDeleted();
    } catch (err) {
      toastError(err);
    }
  };
  const d = m.data;
  return html`<${Drawer} title=${topic} onClose=${onClose}>
    <${ErrorBox} error=${m.error} />
    ${d
      ? html`<dl class="facts">
          <dt>QoS</dt><dd>${d.qos}</dd>
          <dt>Size</dt><dd>${bytes(d.size)}</dd>
          <dt>Published</dt><dd>${time(d.publishedAt)}</dd>
          ${d.expiresAt ? html`<dt>Expires</dt><dd>${time(d.expiresAt)}</dd>` : null}
          ${Object.entries(d.properties ?? {}).map(([k, v]) => html`<dt>${k}</dt><dd><code>${typeof v === 'string' ? v : JSON.stringify(v)}</code></dd>`)}
        </dl>
        <${PayloadView} p=${d} />
        <div class="actions"><button type="button" class="danger" onClick=${del}>Delete</button></div>`
      : null}
  </${Drawer}>`;
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function RetainedPage({ arg }) {
  const [filter, setFilter] = useState(arg || '#');
  const [applied, setApplied] = useState(arg || '#');
  const [open, setOpen] = useState(arg && !/[+#]/.test(arg) ? arg : '');
  const pager = usePager();
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').Page<RetainedItem>>>} */
  const list = useLoad(() => api(`/api/v1/retained${query({ match: applied, limit: 100, cursor: pager.cursor })}`), [applied, pager.cursor]);
  const rows = list.data?.data ?? [];
  const deleteAll = async () => {
    // Count them all first: the confirmation says how many go.
    let n = 0;
    try {
      let cursor;
      do {
        /** @type {import('../lib/types.js').Page<RetainedItem>} */
        const page = await api(`/api/v1/retained${query({ match: applied, limit: 1000, cursor })}`);
        n += page.data.length;
        cursor = page.meta.nextCursor ?? undefined;
      } while (cursor);
    } catch (err) {
      return toastError(err);
    }
    if (n === 0) return toast('Nothing matches.', 'info');
    const a = await ask({ title: `Delete ${n} retained message${n === 1 ? '' : 's'}?`, body: html`<p>Every retained message matching <code>${applied}</code> is deleted.</p>`, confirm: `Delete ${n}`, danger: true });
    if (!a.ok) return;
    try {
      const r = await api(`/api/v1/retained${query({ match: applied })}`, { method: 'DELETE' });
      toast(`Deleted ${r.deleted} retained message(s)`, 'ok');
      pager.reset();
      void list.reload();
    } catch (err) {
      toastError(err);
    }
  };
  return html`<section>
    <h1>Retained messages</h1>
    <form class="filters" onSubmit=${(/** @type {Event} */ e) => {
      e.preventDefault();
      pager.reset();
      setApplied(filter.trim() || '#');
    }}>
      <input type="text" name="match" placeholder="topic filter, e.g. sensors/+/temp or #" value=${filter} onInput=${(/** @type {Event} */ e) => setFilter(val(e))} />
      <button type="submit" class="primary">Browse</button>
      <button type="button" class="danger" onClick=${deleteAll}>Delete all matching…</button>
    </form>
    <${ErrorBox} error=${list.error} />
    <table class="grid" id="retained-table">
      <thead><tr><th>Topic</th><th class="r">QoS</th><th class="r">Size</th><th>Published</th></tr></thead>
      <tbody>
        ${rows.map(
          (r) => html`<tr key=${r.topic} class="clickable" onClick=${() => setOpen(r.topic)}>
            <td><code>${r.topic}</code></td><td class="r">${r.qos}</td><td class="r">${bytes(r.size)}</td><td>${time(r.publishedAt)}</td>
          </tr>`,
        )}
        ${rows.length === 0 && !list.loading ? html`<tr><td colspan="4" class="muted">No retained message matches <code>${applied}</code>.</td></tr>` : null}
      </tbody>
    </table>
    <${Pager} pager=${pager} nextCursor=${list.data?.meta.nextCursor} count=${rows.length} />
    ${open
      ? html`<${RetainedDrawer} key=${open} topic=${open} onClose=${() => setOpen('')} onDeleted=${() => {
          setOpen('');
          void list.reload();
        }} />`
      : null}
  </section>`;
}
