/**
 * A real browser: headless Chromium (Debian package `chromium`, driven by playwright-core) opens a
 * page that loads the MQTT.js browser bundle and @stomp/stompjs's UMD bundle, connects to the
 * broker's WebSocket endpoints (/mqtt and /stomp) from its own origin (allowed in
 * http.allowedOrigins), subscribes, and shows the values that an MQTT client and a STOMP client
 * publish over TCP; the test reads them from the page.
 *
 * Chromium is required, not optional: CI installs it (.ci/run); without it this test fails and says
 * how to install it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect } from '../helpers/mqtt.js';
import { StompTcp } from './stomp-tcp.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const bundle = (rel: string): Buffer => readFileSync(fileURLToPath(new URL(`../../node_modules/${rel}`, import.meta.url)));

/** The page: one list per protocol, filled with "<topic or destination> = <value>" as messages come. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Junction from a browser</title></head>
<body>
  <p>MQTT: <span id="mqtt-status">connecting</span>, STOMP: <span id="stomp-status">connecting</span></p>
  <ul id="mqtt"></ul>
  <ul id="stomp"></ul>
  <script src="/mqtt.min.js"></script>
  <script src="/stomp.umd.min.js"></script>
  <script>
    const ws = new URLSearchParams(location.search).get('ws');
    const show = (list, text) => {
      const li = document.createElement('li');
      li.textContent = text;
      document.getElementById(list).appendChild(li);
    };
    const status = (id, text) => (document.getElementById(id).textContent = text);

    const m = mqtt.connect('ws://127.0.0.1:' + ws + '/mqtt', { clientId: 'browser-' + Math.random().toString(16).slice(2), reconnectPeriod: 0 });
    m.on('connect', () => m.subscribe('dashboard/#', { qos: 1 }, (err) => status('mqtt-status', err ? 'error ' + err.message : 'subscribed')));
    m.on('message', (topic, payload) => show('mqtt', topic + ' = ' + payload.toString()));
    m.on('error', (err) => status('mqtt-status', 'error ' + err.message));

    const s = new StompJs.Client({ brokerURL: 'ws://127.0.0.1:' + ws + '/stomp', reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0 });
    s.onConnect = () => {
      s.watchForReceipt('subscribed', () => status('stomp-status', 'subscribed'));
      s.subscribe('/topic/dashboard/#', (msg) => show('stomp', msg.headers.destination + ' = ' + msg.body), { receipt: 'subscribed' });
    };
    s.onStompError = (f) => status('stomp-status', 'error ' + f.headers.message);
    s.onWebSocketClose = (e) => status('stomp-status', 'closed ' + e.code);
    s.activate();
  </script>
</body></html>`;

describe('a real browser (headless Chromium)', async () => {
  // The page's own server: it gives the page a real origin, which the broker must allow.
  const pages = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const files: Record<string, () => [string, Buffer | string]> = {
      '/': () => ['text/html; charset=utf-8', PAGE],
      '/mqtt.min.js': () => ['text/javascript', bundle('mqtt/dist/mqtt.min.js')],
      '/stomp.umd.min.js': () => ['text/javascript', bundle('@stomp/stompjs/bundles/stomp.umd.min.js')],
    };
    const file = files[path ?? '/'];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const [type, body] = file();
    res.writeHead(200, { 'Content-Type': type }).end(body);
  });
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  const pagePort = (pages.address() as { port: number }).port;
  const origin = `http://127.0.0.1:${pagePort}`;
  const b = await startBroker({ config: { http: { allowedOrigins: [origin] } } });

  let context: BrowserContext | undefined;
  const profile = mkdtempSync(join(tmpdir(), 'junction-chromium-'));
  afterAll(async () => {
    await context?.close();
    pages.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('shows values published over TCP by MQTT and STOMP clients, received over WebSocket', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package (apt-get install chromium); .ci/run installs it`);
    }
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    await page.goto(`${origin}/?ws=${b.httpPort}`);
    // Expressions as text: they run in the page, and this file is compiled without the DOM types.
    await page.waitForFunction(
      "document.getElementById('mqtt-status').textContent === 'subscribed' && document.getElementById('stomp-status').textContent === 'subscribed'",
      undefined,
      { timeout: 15_000 },
    );

    const mqttClient = await connect(b.port, { protocolVersion: 4 });
    await mqttClient.publishAsync('dashboard/boiler/temp', '71.5', { qos: 1 });
    const stompClient = await StompTcp.connect(b.stompPort);
    await stompClient.publish('/topic/dashboard/door', 'open');

    const items = async (list: string): Promise<string[]> => page.locator(`#${list} li`).allTextContents();
    await page.waitForFunction("document.querySelectorAll('#mqtt li').length === 2 && document.querySelectorAll('#stomp li').length === 2", undefined, {
      timeout: 15_000,
    });
    expect((await items('mqtt')).sort()).toEqual(['dashboard/boiler/temp = 71.5', 'dashboard/door = open']);
    expect((await items('stomp')).sort()).toEqual(['/topic/dashboard/boiler/temp = 71.5', '/topic/dashboard/door = open']);
    expect(problems).toEqual([]);
    // The broker saw the browser's Origin header and let it in.
    expect(b.logs.some((l) => l.msg === 'WebSocket upgrade refused')).toBe(false);
  }, 60_000);
});
