/**
 * MQTT and STOMP over WebSocket: MQTT.js over ws:// and wss://, @stomp/stompjs over ws://, and a
 * raw WebSocket client for what the transport itself must get right: subprotocols (`mqtt`,
 * `mqttv3.1`; `v10.stomp`..`v12.stomp`), packets split across messages and several packets in one,
 * ping/pong, a text message on /mqtt closed with 1003, text or binary STOMP frames, paths, allowed
 * origins, permessage-deflate. WebSocket and TCP clients share sessions, retained messages, queues.
 */
import { readFileSync } from 'node:fs';
import { Client as StompClient, type IMessage, type IStompSocket } from '@stomp/stompjs';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { makeDevCerts, tempDir } from './certs.js';
import { StompTcp, parseFrames } from './stomp-tcp.js';
import { WsRaw, refusal } from './ws-client.js';

const nonce = (): string => Math.random().toString(36).slice(2, 10);

describe('WebSocket listeners', async () => {
  const certs = makeDevCerts(tempDir());
  const b = await startBroker({
    config: {
      listeners: [
        { name: 'mqtt', protocol: 'mqtt', host: '127.0.0.1', port: 0 },
        { name: 'stomp', protocol: 'stomp', host: '127.0.0.1', port: 0 },
        { name: 'http', protocol: 'http', host: '127.0.0.1', port: 0 },
        { name: 'https', protocol: 'http', host: '127.0.0.1', port: 0, tls: { cert: certs.serverCert, key: certs.serverKey } },
        {
          name: 'strict',
          protocol: 'http',
          host: '127.0.0.1',
          port: 0,
          mqttPath: '/ws/mqtt',
          stompPath: false,
          allowedOrigins: ['https://dash.example.com'],
          perMessageDeflate: true,
        },
      ],
    },
  });
  const port = (name: string): number => b.broker.port(name);
  const ws = (path: string, listener = 'http'): string => `ws://127.0.0.1:${port(listener)}${path}`;
  const ca = readFileSync(certs.ca);

  describe('MQTT.js', () => {
    for (const protocolVersion of [4, 5] as const) {
      it(`over ws:// (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}), both ways with a TCP client`, async () => {
        const topic = `ws/mqttjs/${nonce()}`;
        const web = await connect(port('http'), { protocol: 'ws', path: '/mqtt', protocolVersion });
        const tcp = await connect(port('mqtt'));
        await web.subscribeAsync(topic, { qos: 1 });
        await tcp.subscribeAsync(`${topic}/up`, { qos: 1 });
        await tcp.publishAsync(topic, 'to the browser', { qos: 1 });
        await web.publishAsync(`${topic}/up`, Buffer.from([0, 1, 2, 255]), { qos: 2 });
        await until(() => web.received.length === 1 && tcp.received.length === 1);
        expect(web.received[0]!.payload.toString()).toBe('to the browser');
        expect([...tcp.received[0]!.payload]).toEqual([0, 1, 2, 255]);
      });
    }

    it('over wss:// with the listener certificate', async () => {
      const topic = `wss/mqttjs/${nonce()}`;
      const web = await connect(port('https'), { protocol: 'wss', path: '/mqtt', ca });
      await web.subscribeAsync(topic, { qos: 1 });
      const tcp = await connect(port('mqtt'));
      await tcp.publishAsync(topic, 'secure', { qos: 1 });
      await until(() => web.received.length === 1);
      expect(web.received[0]!.payload.toString()).toBe('secure');
    });

    it('shares sessions with TCP: a persistent session made over TCP resumes over WebSocket', async () => {
      const clientId = `roamer-${nonce()}`;
      const topic = `ws/session/${nonce()}`;
      const first = await connect(port('mqtt'), { clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
      await first.subscribeAsync(topic, { qos: 1 });
      await first.endAsync();
      const pub = await connect(port('mqtt'));
      await pub.publishAsync(topic, 'kept while offline', { qos: 1 });
      const web = await connect(port('http'), { protocol: 'ws', path: '/mqtt', clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
      await until(() => web.received.length === 1);
      expect(web.received[0]!.payload.toString()).toBe('kept while offline');
    });

    it('shares retained messages and queues with TCP and STOMP', async () => {
      const n = nonce();
      const tcp = await connect(port('mqtt'));
      await tcp.publishAsync(`ws/retained/${n}`, 'last value', { qos: 1, retain: true });
      const stomp = await StompTcp.connect(port('stomp'));
      await stomp.publish(`/queue/ws-jobs-${n}`, 'job 1', { persistent: 'true' });
      const web = await connect(port('http'), { protocol: 'ws', path: '/mqtt' });
      await web.subscribeAsync(`ws/retained/${n}`, { qos: 1 });
      await web.subscribeAsync(`$queue/ws-jobs-${n}`, { qos: 1 });
      await until(() => web.received.length === 2);
      expect(web.received.map((r) => r.payload.toString()).sort()).toEqual(['job 1', 'last value']);
    });
  });

  describe('@stomp/stompjs', () => {
    it('over ws:// with a v12.stomp subprotocol, both ways with MQTT over TCP', async () => {
      const topic = `ws/stompjs/${nonce()}`;
      const socket: WebSocket[] = [];
      const client = new StompClient({
        // Node 20 has no global WebSocket: hand stompjs the `ws` one.
        webSocketFactory: () => {
          const s = new WebSocket(ws('/stomp'), ['v12.stomp', 'v11.stomp', 'v10.stomp']);
          socket.push(s);
          return s as unknown as IStompSocket;
        },
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
      });
      const received: IMessage[] = [];
      const connected = new Promise<void>((resolve, reject) => {
        client.onConnect = () => resolve();
        client.onStompError = (f) => reject(new Error(f.headers['message']));
        client.onWebSocketError = () => reject(new Error('WebSocket error'));
      });
      client.activate();
      try {
        await connected;
        expect(socket[0]!.protocol).toBe('v12.stomp');
        client.subscribe(`/topic/${topic}`, (m) => received.push(m));
        const mqtt = await connect(port('mqtt'));
        await mqtt.subscribeAsync(`${topic}/up`, { qos: 1 });
        // The SUBSCRIBE is in before the publish once a receipt for a later frame is back.
        await new Promise<void>((resolve) => {
          client.watchForReceipt('sub-done', () => resolve());
          client.publish({ destination: `/topic/${topic}/ping`, headers: { receipt: 'sub-done' }, body: '' });
        });
        await mqtt.publishAsync(topic, 'from MQTT', { qos: 1 });
        client.publish({ destination: `/topic/${topic}/up`, body: 'from stompjs' });
        await until(() => received.length === 1 && mqtt.received.length === 1);
        expect(received[0]!.body).toBe('from MQTT');
        expect(mqtt.received[0]!.payload.toString()).toBe('from stompjs');
      } finally {
        await client.deactivate();
      }
    });
  });

  describe('raw WebSocket, MQTT', () => {
    const connectPacket = (clientId: string) =>
      WsRaw.encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId, keepalive: 60 });

    it('offers mqtt: chosen; mqttv3.1: chosen; the client order counts', async () => {
      expect((await WsRaw.connect(ws('/mqtt'), ['mqtt'])).protocol).toBe('mqtt');
      expect((await WsRaw.connect(ws('/mqtt'), ['mqttv3.1'])).protocol).toBe('mqttv3.1');
      expect((await WsRaw.connect(ws('/mqtt'), ['foo', 'mqttv3.1', 'mqtt'])).protocol).toBe('mqttv3.1');
    });

    it('a client offering no subprotocol at all is accepted (as EMQX); one offering only others is refused with 400', async () => {
      expect((await WsRaw.connect(ws('/mqtt'))).protocol).toBe('');
      const r = await refusal(ws('/mqtt'), ['v12.stomp', 'wamp']);
      expect(r).toMatchObject({ status: 400 });
      expect((r as { body: string }).body).toMatch(/mqtt, mqttv3\.1/);
      expect(await refusal(ws('/stomp'), ['mqtt'])).toMatchObject({ status: 400 });
    });

    it('a CONNECT split across messages, one byte each', async () => {
      const c = await WsRaw.connect(ws('/mqtt'), ['mqtt']);
      for (const byte of connectPacket(`split-${nonce()}`)) c.send(Buffer.from([byte]));
      const connack = await c.next('connack');
      expect(connack.reasonCode).toBe(0);
    });

    it('CONNECT, SUBSCRIBE and PUBLISH in one message; answers may come in any message cut', async () => {
      const topic = `ws/multi/${nonce()}`;
      const c = await WsRaw.connect(ws('/mqtt'), ['mqtt']);
      c.send(
        Buffer.concat([
          connectPacket(`multi-${nonce()}`),
          WsRaw.encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }),
          WsRaw.encode({ cmd: 'publish', topic, payload: Buffer.from('to myself'), qos: 0, dup: false, retain: false }),
        ]),
      );
      await c.next('connack');
      await c.next('suback');
      const p = await c.next('publish');
      expect(p.payload.toString()).toBe('to myself');
      expect(c.messages.every((m) => m.binary)).toBe(true);
    });

    it('a PUBLISH cut in the middle of its payload, the rest with the next packet', async () => {
      const topic = `ws/cut/${nonce()}`;
      const c = await WsRaw.connect(ws('/mqtt'), ['mqtt']);
      c.send(connectPacket(`cut-${nonce()}`));
      await c.next('connack');
      c.send(WsRaw.encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }));
      await c.next('suback');
      const bytes = Buffer.concat([
        WsRaw.encode({ cmd: 'publish', topic, payload: Buffer.alloc(3000, 'a'), qos: 1, messageId: 7, dup: false, retain: false }),
        WsRaw.encode({ cmd: 'pingreq' }),
      ]);
      c.send(bytes.subarray(0, 1500));
      c.send(bytes.subarray(1500));
      await until(() => ['puback', 'publish', 'pingresp'].every((cmd) => c.packets.some((p) => p.cmd === cmd)), 3000, 'answers');
      const find = <C extends string>(cmd: C) => c.packets.find((p) => p.cmd === cmd) as Extract<(typeof c.packets)[number], { cmd: C }>;
      expect(find('puback').messageId).toBe(7);
      expect(find('publish').payload.length).toBe(3000);
    });

    it('WebSocket ping gets a pong; MQTT PINGREQ gets PINGRESP', async () => {
      const c = await WsRaw.connect(ws('/mqtt'), ['mqtt']);
      c.send(connectPacket(`ping-${nonce()}`));
      await c.next('connack');
      c.ws.ping();
      await until(() => c.pongs === 1, 3000, 'pong');
      c.send(WsRaw.encode({ cmd: 'pingreq' }));
      await c.next('pingresp');
    });

    it('a text message on /mqtt closes with 1003 (unsupported data)', async () => {
      const c = await WsRaw.connect(ws('/mqtt'), ['mqtt']);
      c.send(connectPacket(`text-${nonce()}`));
      await c.next('connack');
      c.send('CONNECT', true);
      expect(await c.closed()).toBe(1003);
      expect(c.closeReason).toMatch(/binary/);
    });

    it('an unknown path is 404; a plain GET on an endpoint is 426 Upgrade Required', async () => {
      expect(await refusal(ws('/nowhere'), ['mqtt'])).toMatchObject({ status: 404 });
      const res = await fetch(`http://127.0.0.1:${port('http')}/mqtt`);
      expect(res.status).toBe(426);
    });

    it('allowed origins: listed ones and clients without Origin in, others 403; permessage-deflate when configured', async () => {
      const strict = (opts: WebSocket.ClientOptions = {}) => WsRaw.connect(ws('/ws/mqtt', 'strict'), ['mqtt'], opts);
      const allowed = await strict({ origin: 'https://dash.example.com' });
      expect(allowed.ws.extensions).toContain('permessage-deflate');
      await strict();
      expect(await refusal(ws('/ws/mqtt', 'strict'), ['mqtt'], { origin: 'https://evil.example.net' })).toMatchObject({ status: 403 });
      expect(await refusal(ws('/stomp', 'strict'), ['v12.stomp'])).toMatchObject({ status: 404 });
      // The default listener allows any origin and does not compress.
      const open = await WsRaw.connect(ws('/mqtt'), ['mqtt'], { origin: 'https://evil.example.net' });
      expect(open.ws.extensions).toBe('');
    });

    it('compressed messages carry packets like any others', async () => {
      const topic = `ws/deflate/${nonce()}`;
      const web = await connect(port('strict'), { protocol: 'ws', path: '/ws/mqtt' });
      await web.subscribeAsync(topic, { qos: 1 });
      const tcp = await connect(port('mqtt'));
      await tcp.publishAsync(topic, Buffer.alloc(20_000, 'z'), { qos: 1 });
      await until(() => web.received.length === 1);
      expect(web.received[0]!.payload.equals(Buffer.alloc(20_000, 'z'))).toBe(true);
    });
  });

  describe('raw WebSocket, STOMP', () => {
    const frame = (command: string, headers: Record<string, string>, body = ''): string =>
      `${command}\n${Object.entries(headers)
        .map(([k, v]) => `${k}:${v}`)
        .join('\n')}\n\n${body}\0`;

    it('over wss:// with the listener certificate', async () => {
      const c = await WsRaw.connect(`wss://127.0.0.1:${port('https')}/stomp`, ['v12.stomp'], { ca });
      c.send(frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' }), true);
      await until(() => c.messages.length > 0);
      expect(c.messages[0]!.data.toString()).toMatch(/^CONNECTED\n/);
    });

    it('picks the highest STOMP version offered', async () => {
      expect((await WsRaw.connect(ws('/stomp'), ['v10.stomp', 'v12.stomp', 'v11.stomp'])).protocol).toBe('v12.stomp');
      expect((await WsRaw.connect(ws('/stomp'), ['v10.stomp'])).protocol).toBe('v10.stomp');
    });

    it('frames come back as text to a client that sends text, a frame split over messages included', async () => {
      const topic = `ws/stomp-text/${nonce()}`;
      const c = await WsRaw.connect(ws('/stomp'), ['v12.stomp']);
      const connectFrame = frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' });
      c.send(connectFrame.slice(0, 10), true);
      c.send(connectFrame.slice(10) + frame('SUBSCRIBE', { id: '1', destination: `/topic/${topic}`, receipt: 's' }), true);
      await until(() => c.messages.some((m) => m.data.toString().includes('RECEIPT')));
      const tcp = await connect(port('mqtt'));
      await tcp.publishAsync(topic, 'grüße', { qos: 0 });
      await until(() => c.messages.some((m) => m.data.toString().startsWith('MESSAGE')));
      const texts = c.messages.map((m) => m.binary);
      expect(texts.every((binary) => !binary)).toBe(true);
      const msg = parseFrames(c.messages.map((m) => m.data.toString()).join('')).find((f) => f.command === 'MESSAGE');
      expect(msg?.body).toBe('grüße');
    });

    it('binary to a client that sends binary, and always binary for bodies that are not UTF-8', async () => {
      const topic = `ws/stomp-bin/${nonce()}`;
      const bin = await WsRaw.connect(ws('/stomp'), ['v12.stomp']);
      bin.send(Buffer.from(frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' })));
      bin.send(Buffer.from(frame('SUBSCRIBE', { id: '1', destination: `/topic/${topic}`, receipt: 's' })));
      const text = await WsRaw.connect(ws('/stomp'), ['v12.stomp']);
      text.send(frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' }), true);
      text.send(frame('SUBSCRIBE', { id: '1', destination: `/topic/${topic}`, receipt: 's' }), true);
      await until(() => [bin, text].every((c) => c.messages.some((m) => m.data.includes('RECEIPT'))));
      expect(bin.messages.every((m) => m.binary)).toBe(true);
      const tcp = await connect(port('mqtt'));
      await tcp.publishAsync(topic, Buffer.from([0xff, 0xfe, 0x00, 0x41]), { qos: 0 });
      await until(() => [bin, text].every((c) => c.messages.some((m) => m.data.subarray(0, 7).toString() === 'MESSAGE')));
      for (const c of [bin, text]) {
        const m = c.messages.find((x) => x.data.subarray(0, 7).toString() === 'MESSAGE')!;
        expect(m.binary).toBe(true);
        expect(m.data.includes(Buffer.from([0xff, 0xfe, 0x00, 0x41]))).toBe(true);
      }
    });
  });
});
