/**
 * The web dashboard in a real browser (operations.md "Dashboard"): Debian's Chromium, headless,
 * driven by playwright-core, against a broker with admin tokens. It logs in with a token, watches
 * 5 new MQTT clients appear on the Clients page within 3 s (pushed by the SSE stream, no polling),
 * kicks one (confirm dialog; the MQTT 5 client gets DISCONNECT 0x98), replays a DLQ to its origin
 * queue (selected, then all), and visits every page. Any console error, uncaught exception or CSP
 * violation fails it. Screenshots of each page go to test-artifacts/dashboard/ (git-ignored).
 *
 * Also, without a browser: the files' headers (strict CSP with the import map's hash, no cookie),
 * the vendor mapping onto node_modules, and paths that try to leave the served folders.
 *
 * Chromium is required, not optional: CI installs it (.ci/run).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Broker } from '../../src/server/broker.js';
import { loadConfig } from '../../src/server/config.js';
import { MemoryStore } from '../../storage/memory.js';
import { connect, until } from '../helpers/mqtt.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { TOKENS, TOKEN_CONFIG, apiClient, startApiBroker } from './api-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/dashboard/', import.meta.url));

/**
 * Waits until `expr` (JavaScript, run in the page) is true. Polled from here through
 * page.evaluate: Playwright's waitForFunction polls with eval inside the page, which the
 * dashboard's CSP (no 'unsafe-eval') rightly refuses.
 */
async function pageTrue(page: Page, expr: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if ((await page.evaluate(expr)) === true) return;
    if (Date.now() > end) throw new Error(`not true within ${timeoutMs} ms: ${expr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('dashboard: static files', async () => {
  const { api } = await startApiBroker();

  it('serves index.html at / with a strict CSP that allows only the import map inline, and no cookie', async () => {
    const res = await fetch(`${api.base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('set-cookie')).toBeNull();
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    expect(csp).not.toContain('unsafe');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).toContain('<script type="importmap">');
    expect(html).not.toMatch(/<script>(?!\s*<\/script>)/);
  });

  it('maps /ui/vendor/{preact,htm,uplot}/ onto the packages in node_modules, gzipped on request', async () => {
    for (const path of ['/ui/vendor/preact/preact.mjs', '/ui/vendor/preact/hooks/hooks.mjs', '/ui/vendor/htm/htm.mjs', '/ui/vendor/uplot/uPlot.esm.js', '/ui/vendor/uplot/uPlot.min.css', '/ui/app.js', '/ui/style.css']) {
      const res = await fetch(api.base + path, { headers: { 'Accept-Encoding': 'gzip' } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(path.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
      expect(res.headers.get('etag'), path).toBeTruthy();
      const again = await fetch(api.base + path, { headers: { 'If-None-Match': res.headers.get('etag')! } });
      expect(again.status, path).toBe(304);
    }
    const big = await fetch(`${api.base}/ui/vendor/uplot/uPlot.esm.js`, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(big.headers.get('content-encoding')).toBe('gzip');
  });

  it('refuses paths outside the served folders and unknown vendors with 404', async () => {
    for (const path of ['/ui/vendor/preact/%2e%2e/package.json', '/ui/%2e%2e/package.json', '/ui/..%2fpackage.json', '/ui/vendor/preact/../../package.json', '/ui/vendor/rocksdb/index.js', '/ui/lib/../../package.json', '/ui/README', '/ui/vendor/htm/../src/index.mjs']) {
      const res = await fetch(api.base + path);
      expect(res.status, path).toBe(404);
    }
  });
});

describe('dashboard in a real browser (headless Chromium)', async () => {
  // Started from a real config file, as `junction start -c`, so that Reload reads it again.
  const dir = mkdtempSync(join(tmpdir(), 'junction-dashboard-'));
  const configFile = join(dir, 'junction.yaml');
  const fileConfig = (level: string): string =>
    stringify({
      mqtt: { host: '127.0.0.1', port: 0 },
      stomp: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      log: { level },
      admin: { tokens: TOKEN_CONFIG },
    });
  writeFileSync(configFile, fileConfig('warn'));
  const broker = await Broker.start(loadConfig({ file: configFile }), { store: new MemoryStore(), configSource: { file: configFile }, logSink: () => undefined });
  const tb = { port: broker.port('mqtt'), stompPort: broker.port('stomp') };
  const api = apiClient(`http://127.0.0.1:${broker.port('http')}`);
  const profile = join(dir, 'chromium-profile');
  let context: BrowserContext | undefined;
  /** Clients the first test leaves connected for the second. */
  const cleanup: Array<() => void> = [];
  afterAll(async () => {
    for (const c of cleanup) c();
    await context?.close();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function browser(): Promise<BrowserContext> {
    if (context) return context;
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package (apt-get install chromium); .ci/run installs it`);
    mkdirSync(ARTIFACTS, { recursive: true });
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1400, height: 900 } });
    return context;
  }

  /** Messages dead-lettered from `orders` into DLQ.orders by a STOMP consumer's NACK requeue:false. */
  async function fillDlq(queue: string, n: number): Promise<void> {
    for (let i = 1; i <= n; i++) {
      const r = await api.post('/api/v1/publish', { queue, payload: JSON.stringify({ order: i, sku: `A-${i}` }), properties: { contentType: 'application/json' } });
      expect(r.status).toBe(200);
    }
    const c = await StompRaw.open(tb.stompPort);
    await c.subscribe({ destination: `/queue/${queue}`, id: 's', ack: 'client-individual' });
    for (const m of await c.messages(n)) {
      c.send('NACK', { id: hdr(m, 'ack')!, requeue: 'false', receipt: `n-${hdr(m, 'ack')}` });
      await c.receipt(`n-${hdr(m, 'ack')}`);
    }
    c.end();
  }

  it('logs in, shows 5 new MQTT clients within 3 s, kicks one, replays a DLQ; no console errors', async () => {
    // Data for the pages: a DLQ with 3 messages, a retained JSON message, a subscriber.
    await fillDlq('orders', 3);
    expect((await api.get('/api/v1/queues/DLQ.orders')).body.ready).toBe(3);
    await api.post('/api/v1/publish', { topic: 'plant/boiler/status', payload: '{"temp":71.5,"ok":true}', retain: true, qos: 1 });
    const watcher = await connect(tb.port, { clientId: 'dash-watcher' });
    await watcher.subscribeAsync(['plant/+/status', 'plant/#'], { qos: 1 });

    const page: Page = (await browser()).pages()[0] ?? (await (await browser()).newPage());
    // Fail fast with the step that did not happen rather than at the test's timeout.
    page.setDefaultTimeout(8000);
    page.setDefaultNavigationTimeout(20_000);
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`exception: ${err.message}`));
    // CSP violations are console errors in Chromium too; the event catches any the console misses.
    await page.addInitScript("document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))");
    const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

    // Log in.
    await page.goto(`${api.base}/`);
    await page.waitForSelector('input[name=token]');
    await shot('01-login');
    await page.fill('input[name=token]', TOKENS.admin);
    await page.click('button[type=submit]');
    await page.waitForSelector('#page-overview');
    await page.waitForSelector('#live-mode.live', { timeout: 5000 });
    // The token is in sessionStorage, not in a cookie.
    expect(await page.evaluate("sessionStorage.getItem('junction.token')")).toBe(TOKENS.admin);
    expect((await (await browser()).cookies()).length).toBe(0);
    await pageTrue(page, "document.querySelector('#card-dlq .card-value')?.textContent === '3'", 5000);
    await page.waitForTimeout(1500); // a couple of stats points on the charts
    await shot('02-overview');

    // Clients: 5 new MQTT clients appear within 3 s of connecting, pushed by the stream.
    await page.click('nav a[href="#/clients"]');
    await page.waitForSelector('#clients-table tr[data-client="dash-watcher"]');
    const ids = [1, 2, 3, 4, 5].map((i) => `dash-new-${i}`);
    const t0 = Date.now();
    const clients = await Promise.all(ids.map((clientId) => connect(tb.port, { clientId })));
    await pageTrue(page, `${JSON.stringify(ids)}.every((id) => document.querySelector('#clients-table tr[data-client="' + id + '"]'))`, 3000);
    expect(Date.now() - t0).toBeLessThan(3000); // from before the first CONNECT
    await shot('03-clients');

    // The drawer shows a client's subscriptions.
    await page.click('#clients-table tr[data-client="dash-watcher"] td:first-child');
    await page.waitForSelector('.drawer dl.facts');
    await pageTrue(page, "[...document.querySelectorAll('.drawer td code')].some((c) => c.textContent === 'plant/+/status')");
    await shot('04-client-drawer');
    await page.click('.drawer button[aria-label=Close]');

    // Kick one, after the confirmation: the client gets DISCONNECT 0x98 and leaves the list.
    const victim = clients[2]!;
    const disconnect = new Promise<number | undefined>((resolve) => victim.once('disconnect', (p) => resolve(p.reasonCode)));
    await page.click('#clients-table tr[data-client="dash-new-3"] button.kick');
    await page.waitForSelector('.dialog [data-confirm]');
    await shot('05-kick-confirm');
    await page.click('.dialog [data-confirm]');
    expect(await disconnect).toBe(0x98);
    await pageTrue(page, "!document.querySelector('#clients-table tr[data-client=\"dash-new-3\"]')", 3000);
    expect((await api.get('/api/v1/clients/dash-new-3')).status).toBe(404);
    expect((await api.get('/api/v1/clients/dash-new-2')).status).toBe(200);

    // DLQ: browse (non-destructive), replay one selected message, then the rest, to the origin queue.
    await page.click('nav a[href="#/queues"]');
    await page.click('#queues-table tr[data-queue="DLQ.orders"] a');
    await pageTrue(page, "document.querySelectorAll('#queue-messages tbody tr[data-id]').length === 3");
    const dlqBefore = (await api.get('/api/v1/queues/DLQ.orders/messages')).body.data as Array<{ id: number; deliveryCount: number; death: { reason: string; fromQueue: string } }>;
    expect(dlqBefore.map((m) => m.death)).toEqual(dlqBefore.map(() => expect.objectContaining({ reason: 'rejected', fromQueue: 'orders' })));
    await shot('06-dlq');
    const firstId = dlqBefore[0]!.id;
    await page.click(`#queue-messages tr[data-id="${firstId}"] input[type=checkbox]`);
    await page.click('#replay-button');
    await page.waitForSelector('.dialog [data-confirm]');
    await page.click('.dialog [data-confirm]');
    await pageTrue(page, "document.querySelectorAll('#queue-messages tbody tr[data-id]').length === 2", 5000);
    expect((await api.get('/api/v1/queues/orders')).body.ready).toBe(1);
    await page.click('#replay-form input[name=which]'); // "all"
    await page.click('#replay-button');
    await page.click('.dialog [data-confirm]');
    await pageTrue(page, "document.querySelectorAll('#queue-messages tbody tr[data-id]').length === 0", 5000);
    expect((await api.get('/api/v1/queues/orders')).body.ready).toBe(3);
    expect((await api.get('/api/v1/queues/DLQ.orders')).body.ready).toBe(0);
    // Browsing left the messages as they were: their delivery counts did not grow.
    const orders = (await api.get('/api/v1/queues/orders/messages')).body.data as Array<{ deliveryCount: number }>;
    expect(orders.map((m) => m.deliveryCount)).toEqual(dlqBefore.map((m) => m.deliveryCount));
    await page.click('#queues-table tr[data-queue="orders"] a');
    await pageTrue(page, "document.querySelectorAll('#queue-messages tbody tr[data-id]').length === 3");
    await shot('07-queue-after-replay');

    // Topics: the lazy tree and "who receives?".
    await page.click('nav a[href="#/topics"]');
    await page.waitForSelector('.tree-row[data-topic="plant"]');
    await page.click('.tree-row[data-topic="plant"] .twisty');
    await page.waitForSelector('.tree-row[data-topic="plant/boiler"]');
    await page.fill('input[name=match]', 'plant/boiler/status');
    await page.click('.panel button[type=submit]');
    await pageTrue(page, "document.querySelectorAll('#who-receives tbody tr').length === 2");
    await shot('08-topics');

    // Retained: the JSON payload, pretty.
    await page.click('nav a[href="#/retained"]');
    await page.click('#retained-table tr:has-text("plant/boiler/status")');
    await pageTrue(page, "document.querySelector('.payload-body')?.textContent.includes('\"temp\": 71.5')");
    await shot('09-retained');
    await page.click('.drawer button[aria-label=Close]');

    // Publish reaches the watcher.
    await page.click('nav a[href="#/publish"]');
    await page.fill('#publish-form input[name=dest]', 'plant/pump/status');
    await page.fill('#publish-form textarea[name=payload]', 'running');
    await page.click('#publish-form button[type=submit]');
    await page.waitForSelector('#publish-result');
    expect(await page.textContent('#publish-result')).toContain('reached 1 subscription');
    await until(() => watcher.received.some((m) => m.topic === 'plant/pump/status' && m.payload.toString() === 'running'));
    await shot('10-publish');

    // Traces: start one on a client from the form and tail it live.
    await page.click('nav a[href="#/traces"]');
    await page.selectOption('#trace-form select[name=type]', 'clientId');
    await page.fill('#trace-form input[name=value]', 'dash-new-1');
    await page.fill('#trace-form input[name=name]', 'dash-trace');
    await page.click('#trace-form button[type=submit]');
    await page.waitForSelector('#traces-table tr:has-text("dash-trace")');
    await page.waitForSelector('#trace-tail .live-badge.live');
    await clients[0]!.publishAsync('plant/line1/count', '17', { qos: 1 });
    await pageTrue(page, "document.querySelector('#trace-tail pre.log')?.textContent.includes('publish.in') === true");
    await shot('11-traces');

    // Listeners and config, and Reload.
    await page.click('nav a[href="#/system"]');
    await page.waitForSelector('#listeners-table tbody tr');
    await page.waitForSelector('#config-json');
    expect(await page.textContent('#config-json')).not.toContain(TOKENS.admin);
    // Reload after an edit of the file: the result names the changed key.
    writeFileSync(configFile, fileConfig('info'));
    await page.click('#reload-button');
    await page.click('.dialog [data-confirm]');
    await page.waitForSelector('#reload-result');
    expect(await page.textContent('#reload-result')).toContain('log.level');
    await shot('12-system');

    // Back to the overview: the new connections are on it.
    await page.click('nav a[href="#/overview"]');
    await pageTrue(page, "document.querySelector('#card-connections .card-value')?.textContent === '5'", 5000);
    await shot('13-overview-after');

    expect(problems).toEqual([]);
    for (const c of [...clients, watcher]) cleanup.push(() => c.end(true));
  }, 90_000);
  it('falls back to polling /overview every 5 s when the event stream cannot be had', async () => {
    const page = await (await browser()).newPage();
    page.setDefaultTimeout(8000);
    page.setDefaultNavigationTimeout(20_000);
    const problems: string[] = [];
    page.on('console', (m) => {
      // The refused stream itself is logged as a failed request: that one is expected here.
      if (m.type() === 'error' && !/ERR_FAILED|ERR_ABORTED/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`exception: ${err.message}`));
    // As a proxy that cannot pass text/event-stream would: the stream request fails.
    await page.route('**/api/v1/stream', (route) => route.abort());
    await page.addInitScript(`sessionStorage.setItem('junction.token', ${JSON.stringify(TOKENS.viewer)})`);
    await page.goto(`${api.base}/#/clients`);
    await page.waitForSelector('#live-mode.polling');
    await page.waitForSelector('#clients-table tr[data-client="dash-watcher"]');
    // Without client events the list follows the polls: a new client shows within a poll or two.
    const late = await connect(tb.port, { clientId: 'dash-polled' });
    await pageTrue(page, `!!document.querySelector('#clients-table tr[data-client="dash-polled"]')`, 12_000);
    await page.click('nav a[href="#/overview"]');
    await pageTrue(page, "document.querySelector('#card-connections .card-value')?.textContent === '6'", 12_000);
    await page.screenshot({ path: join(ARTIFACTS, '14-polling.png'), fullPage: true });
    expect(problems).toEqual([]);
    late.end(true);
    await page.close();
  }, 40_000);
});
