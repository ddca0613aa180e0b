/**
 * The Junction dashboard: a token login, then one page per part of the broker, chosen by the URL
 * hash (`#/clients`, `#/queues/DLQ.orders`). Live figures come from lib/live.js (one SSE stream).
 * Static ES modules with Preact + htm, no build step (operations.md "Dashboard").
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError, getToken, onAuthChange, setToken } from './lib/api.js';
import { Live } from './lib/live.js';
import { duration } from './lib/format.js';
import { Dialogs, Toasts, html, useStore, val } from './lib/ui.js';
import { OverviewPage } from './pages/overview.js';
import { ClientsPage } from './pages/clients.js';
import { TopicsPage } from './pages/topics.js';
import { RetainedPage } from './pages/retained.js';
import { QueuesPage } from './pages/queues.js';
import { PublishPage } from './pages/publish.js';
import { TracesPage } from './pages/traces.js';
import { SystemPage } from './pages/system.js';

/**
 * @typedef {{ live: Live, arg: string }} PageProps `arg`: what follows the page in the hash
 * @typedef {{ id: string, label: string, view: (p: PageProps) => any }} PageDef
 */

/** @type {PageDef[]} */
const PAGES = [
  { id: 'overview', label: 'Overview', view: OverviewPage },
  { id: 'clients', label: 'Clients', view: ClientsPage },
  { id: 'topics', label: 'Topics', view: TopicsPage },
  { id: 'retained', label: 'Retained', view: RetainedPage },
  { id: 'queues', label: 'Queues', view: QueuesPage },
  { id: 'publish', label: 'Publish', view: PublishPage },
  { id: 'traces', label: 'Traces', view: TracesPage },
  { id: 'system', label: 'Listeners & config', view: SystemPage },
];

/** @returns {{ page: string, arg: string }} */
function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const slash = h.indexOf('/');
  const page = slash < 0 ? h : h.slice(0, slash);
  let arg = slash < 0 ? '' : h.slice(slash + 1);
  try {
    arg = decodeURIComponent(arg);
  } catch {
    // a hand-typed hash with a stray %: keep it as it is
  }
  return { page: PAGES.some((p) => p.id === page) ? page : 'overview', arg };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function Login() {
  const [token, setTok] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  /** @param {Event} e */
  const submit = async (e) => {
    e.preventDefault();
    const t = token.trim();
    if (t === '') return;
    setBusy(true);
    setError('');
    try {
      await api('/api/v1/overview', { token: t });
      setToken(t);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError(err.code === 'UNAUTHORIZED' ? err.message : 'This token is not valid.');
      else if (err instanceof ApiError) setError(`${err.message} (${err.code})`);
      else setError(`The broker did not answer: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <form class="login-box" onSubmit=${submit}>
      <h1><span class="logo" aria-hidden="true"></span>Junction</h1>
      <p>Sign in with an admin API token.</p>
      <label>Token
        <input type="password" name="token" autocomplete="off" spellcheck="false" autofocus
          value=${token} onInput=${(/** @type {Event} */ e) => setTok(val(e))} />
      </label>
      ${error ? html`<div class="error-box" role="alert">${error}</div>` : null}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Sign in'}</button>
      <p class="muted small">
        Create a token with <code>junction token create NAME --role viewer|publisher|admin</code> and add the line it
        prints to <code>admin.tokens</code> in the config. The token stays in this tab (session storage) and is sent
        in an Authorization header only.
      </p>
    </form>
  </main>`;
}

/** @param {{ live: Live }} props */
function LiveBadge({ live }) {
  const mode = useStore(live.mode);
  const text = { connecting: 'connecting…', live: 'live', polling: 'polling every 5 s', stopped: 'stopped' }[mode];
  return html`<span class=${`live-badge ${mode}`} id="live-mode" title="Live data: server-sent events from /api/v1/stream, else polling /api/v1/overview">${text}</span>`;
}

/** @param {{ live: Live }} props */
function Uptime({ live }) {
  const o = useStore(live.overview);
  const history = useStore(live.history);
  const last = history[history.length - 1];
  const up = last?.uptimeSeconds ?? o?.uptimeSeconds;
  if (!o) return null;
  return html`<span class="muted">${o.node} · v${o.version} · up ${duration(up)}</span>`;
}

function Shell() {
  const route = useRoute();
  const live = useMemo(() => new Live(), []);
  useEffect(() => {
    live.start();
    return () => live.stop();
  }, [live]);
  const page = PAGES.find((p) => p.id === route.page) ?? PAGES[0];
  const View = /** @type {PageDef} */ (page).view;
  useEffect(() => {
    document.title = `${page?.label ?? 'Junction'} · Junction`;
  }, [page]);
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/overview"><span class="logo" aria-hidden="true"></span>Junction</a>
      <${Uptime} live=${live} />
      <span class="spacer"></span>
      <${LiveBadge} live=${live} />
      <button type="button" class="link" onClick=${() => setToken(null)}>Sign out</button>
    </header>
    <nav class="side">
      ${PAGES.map((p) => html`<a href=${`#/${p.id}`} class=${p.id === page?.id ? 'on' : ''} aria-current=${p.id === page?.id ? 'page' : undefined}>${p.label}</a>`)}
    </nav>
    <main class="content" id=${`page-${page?.id}`}>
      <${View} key=${page?.id} live=${live} arg=${route.arg} />
    </main>
  </div>`;
}

function App() {
  const [token, setTok] = useState(getToken());
  useEffect(() => onAuthChange(setTok), []);
  return html`${token ? html`<${Shell} />` : html`<${Login} />`}<${Dialogs} /><${Toasts} />`;
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(html`<${App} />`, root);
}
