/**
 * Topics: a lazy tree of the topic space (from subscription filters and retained topics), one
 * level fetched when a node opens, with subscriber and retained counts; and "who receives
 * `a/b/c`?" (`GET /subscriptions?match=`): every subscription a message there would reach.
 */
import { useState } from 'preact/hooks';
import { api, query } from '../lib/api.js';
import { ErrorBox, html, useLoad, val } from '../lib/ui.js';

/** @typedef {import('../lib/types.js').TreeNode} TreeNode */

/** @param {string} prefix */
const level = (prefix) => api(`/api/v1/topics/tree${query({ prefix })}`).then((/** @type {{ data: TreeNode[] }} */ r) => r.data);

/** @param {{ node: TreeNode, depth: number, onAsk: (topic: string) => void }} props */
function Node({ node, depth, onAsk }) {
  const [open, setOpen] = useState(false);
  const [children, setChildren] = useState(/** @type {TreeNode[] | null} */ (null));
  const [error, setError] = useState(/** @type {unknown} */ (undefined));
  const toggle = async () => {
    if (open) return setOpen(false);
    setOpen(true);
    try {
      setChildren(await level(node.topic));
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  };
  const wildcard = node.level === '+' || node.level === '#';
  return html`<li class="tree-node">
    <div class="tree-row" data-topic=${node.topic}>
      ${node.children > 0
        ? html`<button type="button" class="twisty" aria-expanded=${open} aria-label=${open ? 'Collapse' : 'Expand'} onClick=${toggle}>${open ? '▾' : '▸'}</button>`
        : html`<span class="twisty"></span>`}
      <code class=${wildcard ? 'wild' : ''}>${node.level === '' ? '(empty)' : node.level}</code>
      ${node.subscribers > 0 ? html`<span class="badge" title="subscriptions with exactly this filter">${node.subscribers} sub${node.subscribers === 1 ? '' : 's'}</span>` : null}
      ${node.retained ? html`<a class="badge retained" href=${`#/retained/${encodeURIComponent(node.topic)}`} title="holds a retained message">retained</a>` : null}
      ${node.children > 0 ? html`<span class="muted small">${node.children} below</span>` : null}
      ${!wildcard && !node.topic.includes('+') && !node.topic.includes('#')
        ? html`<button type="button" class="link small" onClick=${() => onAsk(node.topic)}>who receives?</button>`
        : null}
    </div>
    <${ErrorBox} error=${error} />
    ${open && children
      ? html`<ul class="tree">${children.map((c) => html`<${Node} key=${c.topic} node=${c} depth=${depth + 1} onAsk=${onAsk} />`)}</ul>`
      : null}
  </li>`;
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function TopicsPage({ arg }) {
  const root = useLoad(() => level(''), []);
  const [topic, setTopic] = useState(arg);
  const [asked, setAsked] = useState(arg);
  /** @type {ReturnType<typeof useLoad<import('../lib/types.js').Page<import('../lib/types.js').Subscription> | null>>} */
  const who = useLoad(() => (asked ? api(`/api/v1/subscriptions${query({ match: asked, limit: 1000 })}`) : Promise.resolve(null)), [asked]);
  /** @param {string} t */
  const askFor = (t) => {
    setTopic(t);
    setAsked(t);
  };
  return html`<section>
    <h1>Topics</h1>
    <div class="two-col">
      <div class="panel">
        <div class="panel-head"><h2>Topic tree</h2><button type="button" class="small" onClick=${root.reload}>Refresh</button></div>
        <${ErrorBox} error=${root.error} />
        ${root.data && root.data.length === 0 ? html`<p class="muted">No subscriptions and no retained messages yet.</p>` : null}
        <ul class="tree root">${(root.data ?? []).map((n) => html`<${Node} key=${n.topic} node=${n} depth=${0} onAsk=${askFor} />`)}</ul>
      </div>
      <div class="panel">
        <h2>Who receives a topic?</h2>
        <form class="filters" onSubmit=${(/** @type {Event} */ e) => {
          e.preventDefault();
          setAsked(topic.trim());
        }}>
          <input type="text" name="match" placeholder="a/b/c (a topic name, no wildcards)" value=${topic} onInput=${(/** @type {Event} */ e) => setTopic(val(e))} />
          <button type="submit" class="primary">Ask</button>
        </form>
        <${ErrorBox} error=${who.error} />
        ${who.data
          ? html`<p>${who.data.data.length === 0 ? html`Nobody: a message on <code>${asked}</code> would reach no subscriber.` : html`A message on <code>${asked}</code> reaches these ${who.data.data.length} subscription(s):`}</p>
            ${who.data.data.length > 0
              ? html`<table class="grid compact" id="who-receives">
                  <thead><tr><th>Client</th><th>Filter</th><th>QoS</th><th>Shared group</th></tr></thead>
                  <tbody>${who.data.data.map(
                    (s) => html`<tr key=${s.clientId + (s.key ?? '')}>
                      <td>${s.queue && s.clientId.startsWith('$queue/') ? html`queue <a href=${`#/queues/${encodeURIComponent(s.queue)}`}>${s.queue}</a>` : html`<a href=${`#/clients/${encodeURIComponent(s.clientId)}`}><code>${s.clientId}</code></a>`}</td>
                      <td><code>${s.filter ?? s.topic ?? ''}</code></td><td>${s.qos}</td><td>${s.share ?? '–'}</td>
                    </tr>`,
                  )}</tbody>
                </table>`
              : null}
            ${who.data.data.some((s) => s.share) ? html`<p class="muted small">Each message to a shared group goes to one of its members.</p>` : null}`
          : null}
      </div>
    </div>
  </section>`;
}
