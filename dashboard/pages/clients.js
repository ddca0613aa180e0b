/**
 * Clients: every session the broker holds (MQTT and STOMP, connected or offline) with the
 * filters of `GET /clients`; a drawer with one client's details and subscriptions; Kick (after a
 * confirmation, optionally discarding the session). The list reloads when a `client` event says
 * someone connected or left (a new client shows within a second, not at the next poll).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, query, seg } from '../lib/api.js';
import { ago, num, time } from '../lib/format.js';
import { Drawer, ErrorBox, Pager, ask, checked, html, toast, toastError, useLoad, usePager, val } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').Client} Client */

const EMPTY = { like: '', username: '', ip: '', protocol: '', listener: '', state: '', hasBacklog: false };

/**
 * Kicks a client after asking; resolves true when it was kicked.
 * @param {string} clientId
 * @param {boolean} connected
 */
export async function kick(clientId, connected) {
  const answer = await ask({
    title: connected ? `Kick ${clientId}?` : `Discard the session of ${clientId}?`,
    body: connected
      ? html`<p>The connection is closed now (MQTT 5 clients get DISCONNECT 0x98, STOMP clients an ERROR frame); its will is published. The client may reconnect.</p>`
      : html`<p>The client is offline: its session, subscriptions and queued messages are discarded.</p>`,
    confirm: connected ? 'Kick' : 'Discard session',
    danger: true,
    ...(connected ? { option: 'Also discard its session (subscriptions and queued messages)' } : {}),
  });
  if (!answer.ok) return false;
  try {
    await api(`/api/v1/clients/${seg(clientId)}${answer.option ? '?discardSession=true' : ''}`, { method: 'DELETE' });
    toast(connected ? `Kicked ${clientId}${answer.option ? ' and discarded its session' : ''}` : `Discarded the session of ${clientId}`, 'ok');
    return true;
  } catch (err) {
    toastError(err);
    return false;
  }
}

/** @param {{ id: string, onClose: () => void, onKicked: () => void }} props */
function ClientDrawer({ id, onClose, onKicked }) {
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').ClientDetail>>} */
  const c = useLoad(() => api(`/api/v1/clients/${seg(id)}`), [id]);
  const d = c.data;
  return html`<${Drawer} title=${id} onClose=${onClose}>
    <${ErrorBox} error=${c.error} />
    ${d
      ? html`<dl class="facts">
          <dt>State</dt><dd><span class=${`dot ${d.state ?? 'connected'}`}></span>${d.state ?? 'connected'}</dd>
          <dt>Protocol</dt><dd>${d.protocol} ${d.version ?? ''}</dd>
          <dt>Listener</dt><dd>${d.listener ?? '–'}${d.tls ? ' (TLS)' : ''}</dd>
          <dt>Address</dt><dd>${d.ip ? `${d.ip}:${d.port ?? ''}` : '–'}</dd>
          <dt>Username</dt><dd>${d.username ?? '–'}</dd>
          <dt>Connected</dt><dd>${d.connectedAt ? html`${time(d.connectedAt)} <span class="muted">(${ago(d.connectedAt)})</span>` : '–'}</dd>
          <dt>Keep alive</dt><dd>${d.keepalive === null ? '–' : `${d.keepalive} s`}</dd>
          <dt>Clean start</dt><dd>${d.cleanStart === null ? '–' : d.cleanStart ? 'yes' : 'no'}</dd>
          <dt>Session expiry</dt><dd>${num(d.sessionExpiry)} s</dd>
          <dt>In flight / queued</dt><dd>${num(d.inflight)} / ${num(d.queued)}</dd>
          <dt>Messages in / out</dt><dd>${num(d.msgsIn)} / ${num(d.msgsOut)}</dd>
          ${d.sessionId ? html`<dt>Session id</dt><dd><code>${d.sessionId}</code></dd>` : null}
        </dl>
        <h3>Subscriptions (${d.subscriptions.length})</h3>
        ${d.subscriptions.length === 0
          ? html`<p class="muted">None.</p>`
          : html`<table class="grid compact">
              <thead><tr><th>Filter</th><th>QoS</th><th>Share</th><th>Options</th></tr></thead>
              <tbody>${d.subscriptions.map(
                (s) => html`<tr key=${s.key ?? s.filter}>
                  <td><code>${s.filter ?? s.topic}</code>${s.key && s.key !== s.filter ? html` <span class="muted">(id ${s.key})</span>` : null}</td>
                  <td>${s.qos}</td><td>${s.share ?? '–'}</td>
                  <td class="muted small">${[s.noLocal ? 'no local' : '', s.retainAsPublished ? 'retain as published' : '', s.identifier ? `id ${s.identifier}` : ''].filter(Boolean).join(', ') || '–'}</td>
                </tr>`,
              )}</tbody>
            </table>`}
        <div class="actions">
          <button type="button" class="danger" id="drawer-kick" onClick=${async () => {
            if (await kick(id, d.state !== 'offline')) onKicked();
          }}>${d.state === 'offline' ? 'Discard session' : 'Kick'}</button>
        </div>`
      : c.loading
        ? html`<p class="muted">Loading…</p>`
        : null}
  </${Drawer}>`;
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function ClientsPage({ live, arg }) {
  const [filters, setFilters] = useState(EMPTY);
  const [applied, setApplied] = useState(EMPTY);
  const [open, setOpen] = useState(arg || '');
  const pager = usePager();
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').Page<Client>>>} */
  const list = useLoad(
    () => api(`/api/v1/clients${query({ ...applied, limit: 100, cursor: pager.cursor })}`),
    [applied, pager.cursor],
  );
  const listeners = useLoad(() => api('/api/v1/listeners').then((/** @type {any} */ r) => /** @type {string[]} */ (r.data.map((/** @type {any} */ l) => l.name))), []);

  // Filters apply as one types, a moment after the last key.
  const typing = useRef(/** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined));
  useEffect(() => {
    clearTimeout(typing.current);
    typing.current = setTimeout(() => {
      pager.reset();
      setApplied(filters);
    }, 250);
    return () => clearTimeout(typing.current);
  }, [filters]);

  // Push: reload shortly after clients connect or leave (several at once make one reload).
  const reloadSoon = useRef(/** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined));
  useEffect(() => {
    const soon = () => {
      if (reloadSoon.current === undefined) {
        reloadSoon.current = setTimeout(() => {
          reloadSoon.current = undefined;
          void list.reload();
        }, 150);
      }
    };
    const offClient = live.onClient(soon);
    // In polling mode there are no client events: reload on each poll instead.
    const offTick = live.onTick(() => {
      if (live.mode.value !== 'live') soon();
    });
    return () => {
      offClient();
      offTick();
      clearTimeout(reloadSoon.current);
    };
  }, [live]);

  /** @param {keyof typeof EMPTY} k @param {string | boolean} v */
  const set = (k, v) => setFilters({ ...filters, [k]: v });
  const rows = list.data?.data ?? [];
  return html`<section>
    <h1>Clients</h1>
    <form class="filters" onSubmit=${(/** @type {Event} */ e) => e.preventDefault()}>
      <input type="search" name="like" placeholder="Client ID contains…" value=${filters.like} onInput=${(/** @type {Event} */ e) => set('like', val(e))} />
      <input type="search" name="username" placeholder="Username" value=${filters.username} onInput=${(/** @type {Event} */ e) => set('username', val(e))} />
      <input type="search" name="ip" placeholder="IP or CIDR (10.0.0.0/8)" value=${filters.ip} onInput=${(/** @type {Event} */ e) => set('ip', val(e))} />
      <select name="protocol" value=${filters.protocol} onChange=${(/** @type {Event} */ e) => set('protocol', val(e))}>
        <option value="">any protocol</option><option value="mqtt">MQTT</option><option value="stomp">STOMP</option>
      </select>
      <select name="listener" value=${filters.listener} onChange=${(/** @type {Event} */ e) => set('listener', val(e))}>
        <option value="">any listener</option>
        ${(listeners.data ?? []).map((l) => html`<option value=${l}>${l}</option>`)}
      </select>
      <select name="state" value=${filters.state} onChange=${(/** @type {Event} */ e) => set('state', val(e))}>
        <option value="">connected and offline</option><option value="connected">connected</option><option value="offline">offline</option>
      </select>
      <label class="check"><input type="checkbox" name="hasBacklog" checked=${filters.hasBacklog} onChange=${(/** @type {Event} */ e) => set('hasBacklog', checked(e))} /> with queued messages</label>
      <button type="button" onClick=${() => setFilters(EMPTY)}>Clear</button>
    </form>
    <${ErrorBox} error=${list.error} />
    <table class="grid" id="clients-table">
      <thead><tr>
        <th>Client ID</th><th>Protocol</th><th>Listener</th><th>Address</th><th>User</th><th>Connected</th>
        <th class="r">Keep alive</th><th class="r">In flight</th><th class="r">Queued</th><th class="r">Subs</th><th class="r">In / out</th><th></th>
      </tr></thead>
      <tbody>
        ${rows.map(
          (c) => html`<tr key=${c.clientId + (c.sessionId ?? '')} data-client=${c.clientId} class="clickable" onClick=${() => setOpen(c.clientId)}>
            <td><span class=${`dot ${c.state ?? 'connected'}`} title=${c.state ?? 'connected'}></span><code>${c.clientId}</code></td>
            <td>${c.protocol} ${c.version ?? ''}</td>
            <td>${c.listener ?? '–'}${c.tls ? html` <span class="badge">TLS</span>` : null}</td>
            <td>${c.ip ? `${c.ip}:${c.port ?? ''}` : '–'}</td>
            <td>${c.username ?? '–'}</td>
            <td title=${time(c.connectedAt)}>${c.connectedAt ? ago(c.connectedAt) : '–'}</td>
            <td class="r">${c.keepalive === null ? '–' : `${c.keepalive} s`}</td>
            <td class="r">${num(c.inflight)}</td>
            <td class="r">${num(c.queued)}</td>
            <td class="r">${num(c.subscriptions)}</td>
            <td class="r">${num(c.msgsIn)} / ${num(c.msgsOut)}</td>
            <td class="r"><button type="button" class="small danger kick" onClick=${async (/** @type {Event} */ e) => {
              e.stopPropagation();
              if (await kick(c.clientId, c.state !== 'offline')) void list.reload();
            }}>${c.state === 'offline' ? 'Discard' : 'Kick'}</button></td>
          </tr>`,
        )}
        ${rows.length === 0 && !list.loading ? html`<tr><td colspan="12" class="muted">No clients match.</td></tr>` : null}
      </tbody>
    </table>
    <${Pager} pager=${pager} nextCursor=${list.data?.meta.nextCursor} count=${rows.length} />
    ${open
      ? html`<${ClientDrawer} key=${open} id=${open} onClose=${() => setOpen('')} onKicked=${() => {
          setOpen('');
          void list.reload();
        }} />`
      : null}
  </section>`;
}
