/**
 * Publish a test message (`POST /publish`, role publisher) to a topic or a queue: payload as UTF-8
 * text or base64, QoS, retain, and the MQTT 5 properties the API takes. The answer says how many
 * subscriptions it reached (202 with `no_matching_subscribers` when none).
 */
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { base64OfText } from '../lib/format.js';
import { checked, errorText, html, val } from '../lib/ui.js';

/**
 * `k=v` lines as user properties.
 * @param {string} text
 * @returns {[string, string][]}
 */
function userProperties(text) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const i = l.indexOf('=');
      return /** @type {[string, string]} */ (i < 0 ? [l, ''] : [l.slice(0, i).trim(), l.slice(i + 1).trim()]);
    });
}

/** @param {{ live: import('../lib/live.js').Live, arg: string }} props */
export function PublishPage({ arg }) {
  const [f, setF] = useState({
    kind: /** @type {'topic' | 'queue'} */ ('topic'),
    dest: arg,
    payload: '',
    encoding: /** @type {'utf8' | 'base64'} */ ('utf8'),
    qos: '0',
    retain: false,
    contentType: '',
    responseTopic: '',
    correlationData: '',
    expiry: '',
    priority: '',
    user: '',
  });
  const [result, setResult] = useState(/** @type {{ ok: boolean, text: string } | null} */ (null));
  const [busy, setBusy] = useState(false);
  /** @param {keyof typeof f} k @param {string | boolean} v */
  const set = (k, v) => setF({ ...f, [k]: v });

  /** @param {Event} e */
  const submit = async (e) => {
    e.preventDefault();
    /** @type {Record<string, unknown>} */
    const props = {};
    if (f.contentType) props['contentType'] = f.contentType;
    if (f.responseTopic) props['responseTopic'] = f.responseTopic;
    if (f.correlationData) props['correlationData'] = base64OfText(f.correlationData);
    if (f.expiry) props['messageExpiryInterval'] = Number(f.expiry);
    if (f.priority) props['priority'] = Number(f.priority);
    const up = userProperties(f.user);
    if (up.length > 0) props['userProperties'] = up;
    /** @type {Record<string, unknown>} */
    const body = {
      [f.kind]: f.dest.trim(),
      payload: f.payload,
      payloadEncoding: f.encoding,
      qos: Number(f.qos),
      ...(f.kind === 'topic' ? { retain: f.retain } : {}),
      ...(Object.keys(props).length > 0 ? { properties: props } : {}),
    };
    setBusy(true);
    try {
      const r = await api('/api/v1/publish', { method: 'POST', body, accept: [202] });
      if (r.routed > 0) setResult({ ok: true, text: `Published (id ${r.id ?? '–'}): reached ${r.routed} subscription(s).` });
      else setResult({ ok: true, text: `Published (id ${r.id ?? '–'}), but no subscriber matched${f.retain ? '; it is kept as the retained message' : ''}.` });
    } catch (err) {
      setResult({ ok: false, text: errorText(err) });
    } finally {
      setBusy(false);
    }
  };

  return html`<section>
    <h1>Publish a test message</h1>
    <form class="form" id="publish-form" onSubmit=${submit}>
      <div class="row">
        <select name="kind" value=${f.kind} onChange=${(/** @type {Event} */ e) => set('kind', val(e))}>
          <option value="topic">Topic</option><option value="queue">Queue</option>
        </select>
        <input type="text" name="dest" required placeholder=${f.kind === 'topic' ? 'sensors/boiler/temp' : 'orders'} value=${f.dest}
          onInput=${(/** @type {Event} */ e) => set('dest', val(e))} />
      </div>
      <label>Payload
        <textarea name="payload" rows="6" spellcheck="false" value=${f.payload} onInput=${(/** @type {Event} */ e) => set('payload', val(e))}></textarea>
      </label>
      <div class="row">
        <label>Encoding
          <select name="encoding" value=${f.encoding} onChange=${(/** @type {Event} */ e) => set('encoding', val(e))}>
            <option value="utf8">UTF-8 text</option><option value="base64">base64 bytes</option>
          </select>
        </label>
        <label>QoS
          <select name="qos" value=${f.qos} onChange=${(/** @type {Event} */ e) => set('qos', val(e))}>
            <option value="0">0</option><option value="1">1</option><option value="2">2</option>
          </select>
        </label>
        ${f.kind === 'topic' ? html`<label class="check"><input type="checkbox" name="retain" checked=${f.retain} onChange=${(/** @type {Event} */ e) => set('retain', checked(e))} /> retain</label>` : null}
      </div>
      <details>
        <summary>Properties</summary>
        <div class="row">
          <label>Content type<input type="text" name="contentType" value=${f.contentType} onInput=${(/** @type {Event} */ e) => set('contentType', val(e))} /></label>
          <label>Response topic<input type="text" name="responseTopic" value=${f.responseTopic} onInput=${(/** @type {Event} */ e) => set('responseTopic', val(e))} /></label>
          <label>Correlation data (text)<input type="text" name="correlationData" value=${f.correlationData} onInput=${(/** @type {Event} */ e) => set('correlationData', val(e))} /></label>
        </div>
        <div class="row">
          <label>Expiry (s)<input type="number" min="0" name="expiry" value=${f.expiry} onInput=${(/** @type {Event} */ e) => set('expiry', val(e))} /></label>
          <label>Priority (0-9)<input type="number" min="0" max="9" name="priority" value=${f.priority} onInput=${(/** @type {Event} */ e) => set('priority', val(e))} /></label>
        </div>
        <label>User properties (one <code>name=value</code> a line)
          <textarea name="user" rows="3" spellcheck="false" value=${f.user} onInput=${(/** @type {Event} */ e) => set('user', val(e))}></textarea>
        </label>
      </details>
      <div class="actions"><button type="submit" class="primary" disabled=${busy}>Publish</button></div>
      ${result ? html`<div class=${result.ok ? 'ok-box' : 'error-box'} role="status" id="publish-result">${result.text}</div>` : null}
    </form>
  </section>`;
}
