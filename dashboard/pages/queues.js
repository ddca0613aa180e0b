/**
 * Queues: depth (ready, unacked, delayed), consumers and dead-letter target of each queue; create,
 * purge (ready messages only, as RabbitMQ), delete. A queue opens to a non-destructive browse of
 * its messages (`GET /queues/{q}/messages` never counts as a delivery). A DLQ shows each message's
 * death reason and origin queue and replays all, the selected, or the first N messages to their
 * origin or to a chosen queue (`POST /queues/{q}/replay`); single messages can be deleted.
 *
 * The list follows the `stats` events: when the queue totals change, it reloads.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, query, seg } from '../lib/api.js';
import { bytes, num, preview, time } from '../lib/format.js';
import { Drawer, ErrorBox, Pager, PayloadView, ask, checked, html, toast, toastError, useLoad, usePager, val } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').Queue} Queue */
/** @typedef {import('../lib/types.js').QueueMessage} QueueMessage */

/** @param {import('../lib/types.js').Stats | undefined} s */
function queueTotals(s) {
  const q = s?.queues;
  return q ? `${q.count}/${q.ready}/${q.unacked}/${q.dlqMessages}/${q.consumers ?? ''}/${q.delayed ?? ''}` : '';
}

/** @param {{ queue: string, m: QueueMessage, onClose: () => void, onDeleted: () => void }} props */
function MessageDrawer({ queue, m, onClose, onDeleted }) {
  const del = async () => {
    const a = await ask({ title: `Delete message ${m.id}?`, body: html`<p>It is removed from <code>${queue}</code> for good.</p>`, confirm: 'Delete', danger: true });
    if (!a.ok) return;
    try {
      await api(`/api/v1/queues/${seg(queue)}/messages/${m.id}`, { method: 'DELETE' });
      toast(`Deleted message ${m.id}`, 'ok');
      onDeleted();
    } catch (err) {
      toastError(err);
    }
  };
  return html`<${Drawer} title=${`Message ${m.id}`} onClose=${onClose}>
    <dl class="facts">
      <dt>Enqueued</dt><dd>${time(m.enqueuedAt)}</dd>
      <dt>Priority</dt><dd>${m.priority}</dd>
      <dt>Deliveries</dt><dd>${m.deliveryCount}${m.redelivered ? ' (redelivered)' : ''}</dd>
      <dt>Expires</dt><dd>${m.expiresAt ? time(m.expiresAt) : 'never'}</dd>
      ${m.topic ? html`<dt>Topic</dt><dd><code>${m.topic}</code></dd>` : null}
      ${m.death
        ? html`<dt>Death reason</dt><dd><span class="badge bad">${m.death.reason}</span></dd>
            <dt>Origin queue</dt><dd><a href=${`#/queues/${encodeURIComponent(m.death.fromQueue)}`}>${m.death.fromQueue}</a></dd>
            <dt>Dead-lettered</dt><dd>${time(m.death.firstAt)}${m.death.count > 1 ? ` (${m.death.count} times)` : ''}</dd>`
        : null}
      ${Object.entries(m.headers).map(([k, v]) => html`<dt>${k}</dt><dd><code>${v}</code></dd>`)}
      ${Object.entries(m.properties ?? {}).map(([k, v]) => html`<dt>${k}</dt><dd><code>${typeof v === 'string' ? v : JSON.stringify(v)}</code></dd>`)}
    </dl>
    <${PayloadView} p=${m} />
    <div class="actions"><button type="button" class="danger" onClick=${del}>Delete message</button></div>
  </${Drawer}>`;
}

/** @param {{ q: Queue, queues: Queue[], onChanged: () => void, version: string }} props */
function QueueDetail({ q, queues, onChanged, version }) {
  const pager = usePager();
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').Page<QueueMessage>>>} */
  const msgs = useLoad(() => api(`/api/v1/queues/${seg(q.name)}/messages${query({ limit: 100, cursor: pager.cursor, truncate: 4096 })}`), [q.name, pager.cursor, version]);
  const [selected, setSelected] = useState(/** @type {Set<number>} */ (new Set()));
  const [which, setWhich] = useState(/** @type {'all' | 'selected' | 'first'} */ ('all'));
  const [firstN, setFirstN] = useState('10');
  const [target, setTarget] = useState(/** @type {'origin' | 'queue'} */ ('origin'));
  const [targetQueue, setTargetQueue] = useState('');
  const [open, setOpen] = useState(/** @type {QueueMessage | null} */ (null));
  const rows = msgs.data?.data ?? [];
  const dlq = q.kind === 'dlq';
  /** @param {number} id @param {boolean} on */
  const pick = (id, on) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    setSelected(next);
    if (on) setWhich('selected');
  };

  const purge = async () => {
    const a = await ask({ title: `Purge ${q.name}?`, body: html`<p>The ${num(q.ready)} ready message(s) are deleted; the ${num(q.unacked)} out for delivery stay.</p>`, confirm: 'Purge', danger: true });
    if (!a.ok) return;
    try {
      const r = await api(`/api/v1/queues/${seg(q.name)}/purge`, { method: 'POST' });
      toast(`Purged ${r.purged} message(s) from ${q.name}`, 'ok');
      onChanged();
    } catch (err) {
      toastError(err);
    }
  };

  const remove = async () => {
    const a = await ask({ title: `Delete queue ${q.name}?`, body: html`<p>The queue and its ${num(q.ready + q.unacked)} message(s) are deleted.</p>`, confirm: 'Delete queue', danger: true, option: 'Only if it is empty', optionDefault: true });
    if (!a.ok) return;
    try {
      await api(`/api/v1/queues/${seg(q.name)}${a.option ? '?ifEmpty=true' : ''}`, { method: 'DELETE' });
      toast(`Deleted queue ${q.name}`, 'ok');
      location.hash = '#/queues';
      onChanged();
    } catch (err) {
      toastError(err);
    }
  };

  const replay = async () => {
    /** @type {{ target?: string, ids?: number[], limit?: number }} */
    const body = {};
    if (target === 'queue') {
      if (targetQueue.trim() === '') return toast('Name the queue to replay to.', 'error');
      body.target = targetQueue.trim();
    }
    let what = 'all messages';
    if (which === 'selected') {
      if (selected.size === 0) return toast('Select messages first.', 'error');
      body.ids = [...selected];
      what = `${selected.size} selected message(s)`;
    } else if (which === 'first') {
      const n = Number(firstN);
      if (!Number.isInteger(n) || n < 1) return toast('N must be a whole number above 0.', 'error');
      body.limit = n;
      what = `the first ${n} message(s)`;
    }
    const dest = body.target ? html`queue <code>${body.target}</code>` : 'the queue each one died in';
    const a = await ask({ title: `Replay ${what}?`, body: html`<p>They move from <code>${q.name}</code> to ${dest}, one atomic write per message.</p>`, confirm: 'Replay' });
    if (!a.ok) return;
    try {
      const r = await api(`/api/v1/queues/${seg(q.name)}/replay`, { method: 'POST', body });
      toast(`Replayed ${r.moved} message(s)${r.skipped ? `, skipped ${r.skipped}` : ''}`, r.moved > 0 ? 'ok' : 'info');
      setSelected(new Set());
      onChanged();
    } catch (err) {
      toastError(err);
    }
  };

  return html`<div class="panel" id="queue-detail" data-queue=${q.name}>
    <div class="panel-head">
      <h2>${dlq ? html`<span class="badge bad">DLQ</span> ` : null}${q.name}</h2>
      <span class="muted">ready ${num(q.ready)} · unacked ${num(q.unacked)} · delayed ${num(q.delayed)} · consumers ${num(q.consumers)}${q.deadLetterTo ? ` · dead letters to ${q.deadLetterTo}` : ''}</span>
      <span class="spacer"></span>
      <button type="button" class="small" onClick=${() => void msgs.reload()}>Refresh</button>
      <button type="button" class="small danger" onClick=${purge}>Purge…</button>
      <button type="button" class="small danger" onClick=${remove}>Delete…</button>
    </div>
    ${dlq
      ? html`<form class="replay" id="replay-form" onSubmit=${(/** @type {Event} */ e) => {
          e.preventDefault();
          void replay();
        }}>
          <b>Replay</b>
          <label class="check"><input type="radio" name="which" checked=${which === 'all'} onChange=${() => setWhich('all')} /> all</label>
          <label class="check"><input type="radio" name="which" checked=${which === 'selected'} onChange=${() => setWhich('selected')} /> selected (${selected.size})</label>
          <label class="check"><input type="radio" name="which" checked=${which === 'first'} onChange=${() => setWhich('first')} /> first
            <input type="number" min="1" class="narrow" name="limit" value=${firstN} onInput=${(/** @type {Event} */ e) => {
              setFirstN(val(e));
              setWhich('first');
            }} /></label>
          <span class="sep">to</span>
          <label class="check"><input type="radio" name="target" checked=${target === 'origin'} onChange=${() => setTarget('origin')} /> origin queue</label>
          <label class="check"><input type="radio" name="target" checked=${target === 'queue'} onChange=${() => setTarget('queue')} /> queue</label>
          <input type="text" name="targetQueue" list="queue-names" placeholder="queue name" value=${targetQueue} onInput=${(/** @type {Event} */ e) => {
            setTargetQueue(val(e));
            setTarget('queue');
          }} />
          <datalist id="queue-names">${queues.filter((x) => x.name !== q.name).map((x) => html`<option value=${x.name}></option>`)}</datalist>
          <button type="submit" class="primary" id="replay-button">Replay</button>
        </form>`
      : null}
    <${ErrorBox} error=${msgs.error} />
    <table class="grid compact" id="queue-messages">
      <thead><tr>
        ${dlq ? html`<th><input type="checkbox" aria-label="select all" checked=${rows.length > 0 && rows.every((m) => selected.has(m.id))}
          onChange=${(/** @type {Event} */ e) => {
            setSelected(checked(e) ? new Set(rows.map((m) => m.id)) : new Set());
            if (checked(e)) setWhich('selected');
          }} /></th>` : null}
        <th class="r">Id</th><th>Enqueued</th><th class="r">Prio</th><th class="r">Deliveries</th>
        ${dlq ? html`<th>Death reason</th><th>Origin</th>` : null}
        <th class="r">Size</th><th>Payload</th>
      </tr></thead>
      <tbody>
        ${rows.map(
          (m) => html`<tr key=${m.id} class="clickable" data-id=${m.id} onClick=${() => setOpen(m)}>
            ${dlq ? html`<td onClick=${(/** @type {Event} */ e) => e.stopPropagation()}><input type="checkbox" aria-label=${`select ${m.id}`} checked=${selected.has(m.id)} onChange=${(/** @type {Event} */ e) => pick(m.id, checked(e))} /></td>` : null}
            <td class="r">${m.id}</td>
            <td>${time(m.enqueuedAt)}</td>
            <td class="r">${m.priority}</td>
            <td class="r">${m.deliveryCount}</td>
            ${dlq ? html`<td>${m.death ? html`<span class="badge bad">${m.death.reason}</span>` : '–'}</td><td>${m.death?.fromQueue ?? '–'}</td>` : null}
            <td class="r">${bytes(m.size)}</td>
            <td class="payload-preview"><code>${preview(m)}</code></td>
          </tr>`,
        )}
        ${rows.length === 0 && !msgs.loading ? html`<tr><td colspan="9" class="muted">No ready messages.${q.unacked > 0 ? ` ${q.unacked} are out for delivery and not shown.` : ''}</td></tr>` : null}
      </tbody>
    </table>
    <${Pager} pager=${pager} nextCursor=${msgs.data?.meta.nextCursor} count=${rows.length} />
    <p class="muted small">Browsing never delivers: delivery counts and the redelivered flag stay as they are.</p>
    ${open ? html`<${MessageDrawer} key=${open.id} queue=${q.name} m=${open} onClose=${() => setOpen(null)} onDeleted=${() => {
      setOpen(null);
      onChanged();
    }} />` : null}
  </div>`;
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function QueuesPage({ live, arg }) {
  const [version, setVersion] = useState(0);
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').Page<Queue>>>} */
  const list = useLoad(() => api('/api/v1/queues?limit=1000'), [version]);
  const [name, setName] = useState('');
  const bump = () => setVersion((v) => v + 1);

  // Reload when the queue totals in the stats change (push, no timer).
  const last = useRef('');
  useEffect(
    () =>
      live.onTick(() => {
        const h = live.history.value;
        const t = queueTotals(h[h.length - 1]);
        if (t !== last.current) {
          if (last.current !== '') bump();
          last.current = t;
        }
      }),
    [live],
  );

  const create = async () => {
    const n = name.trim();
    if (n === '') return;
    try {
      await api(`/api/v1/queues/${seg(n)}`, { method: 'PUT', body: {} });
      toast(`Queue ${n} is there`, 'ok');
      setName('');
      bump();
    } catch (err) {
      toastError(err);
    }
  };

  const queues = list.data?.data ?? [];
  const current = queues.find((q) => q.name === arg);
  return html`<section>
    <h1>Queues</h1>
    <${ErrorBox} error=${list.error} />
    <table class="grid" id="queues-table">
      <thead><tr><th>Name</th><th>Kind</th><th class="r">Ready</th><th class="r">Unacked</th><th class="r">Delayed</th><th class="r">Consumers</th><th>Dead letters to</th></tr></thead>
      <tbody>
        ${queues.map(
          (q) => html`<tr key=${q.name} data-queue=${q.name} class=${q.name === arg ? 'clickable on' : 'clickable'} onClick=${() => (location.hash = `#/queues/${encodeURIComponent(q.name)}`)}>
            <td><a href=${`#/queues/${encodeURIComponent(q.name)}`}>${q.name}</a></td>
            <td>${q.kind === 'dlq' ? html`<span class=${q.ready + q.unacked > 0 ? 'badge bad' : 'badge'}>DLQ</span>` : 'queue'}</td>
            <td class="r">${num(q.ready)}</td><td class="r">${num(q.unacked)}</td><td class="r">${num(q.delayed)}</td>
            <td class="r">${num(q.consumers)}</td><td>${q.deadLetterTo ?? '–'}</td>
          </tr>`,
        )}
        ${queues.length === 0 && !list.loading ? html`<tr><td colspan="7" class="muted">No queues yet: they appear when a message or a consumer first names them.</td></tr>` : null}
      </tbody>
    </table>
    <form class="filters" onSubmit=${(/** @type {Event} */ e) => {
      e.preventDefault();
      void create();
    }}>
      <input type="text" name="newQueue" placeholder="new queue name" value=${name} onInput=${(/** @type {Event} */ e) => setName(val(e))} />
      <button type="submit">Create queue</button>
    </form>
    ${arg && !current && !list.loading ? html`<div class="error-box">No queue named <code>${arg}</code>.</div>` : null}
    ${current ? html`<${QueueDetail} key=${current.name} q=${current} queues=${queues} onChanged=${bump} version=${String(version)} />` : null}
  </section>`;
}
