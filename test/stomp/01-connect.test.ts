/**
 * STOMP connection set-up: CONNECT and STOMP frames, version negotiation (STOMP 1.2 "Protocol
 * Negotiation"), the CONNECTED headers, heart-beating both ways ("Heart-beating"), the connect
 * timeout, frames out of place (anything before CONNECT, a second CONNECT), login/passcode, and
 * the real clients (stompit, @stomp/stompjs over TCP). Every refusal is an ERROR frame and then a
 * close, never a silent close; the broker serves other clients as before afterwards.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import {
  StompRaw,
  hdr,
  nonce,
  stompitConnect,
  stompitDisconnect,
  stompitSend,
  stompitSubscribe,
  stompjsConnect,
  stompjsSubscribe,
  stompjsSync,
  until,
  type StompFrame,
} from '../helpers/stomp.js';

/** A fresh pair of clients still gets a message through: the broker was not hurt by what went before. */
async function healthy(port: number): Promise<void> {
  const dest = `/topic/c01/healthy/${nonce()}`;
  const sub = await StompRaw.open(port);
  await sub.subscribe({ destination: dest, id: 'h' });
  const pub = await StompRaw.open(port);
  await pub.publish({ destination: dest }, 'still here');
  const [m] = await sub.messages(1);
  expect(m!.body.toString()).toBe('still here');
  sub.end();
  pub.end();
}

function expectErrorFrame(f: StompFrame, messagePart: RegExp): void {
  expect(f.command).toBe('ERROR');
  expect(hdr(f, 'message')).toMatch(messagePart);
  // The body says more, as text (STOMP 1.2 "ERROR").
  expect(hdr(f, 'content-type')).toMatch(/^text\/plain/);
  expect(f.body.length).toBeGreaterThan(0);
}

describe('STOMP CONNECT', async () => {
  const b = await startBroker();
  const port = b.stompPort;

  describe('CONNECT and STOMP frames', () => {
    for (const command of ['CONNECT', 'STOMP']) {
      it(`${command} gets CONNECTED with version, heart-beat, server and session [STOMP 1.2 "CONNECTED Frame"]`, async () => {
        const c = await StompRaw.connect(port);
        const f = await c.handshake({ 'accept-version': '1.2', host: 'junction' }, command);
        expect(hdr(f, 'version')).toBe('1.2');
        // Default stomp.heartbeat is 10000 ms: offered both ways.
        expect(hdr(f, 'heart-beat')).toBe('10000,10000');
        expect(hdr(f, 'server')).toMatch(/^Junction\/\d+\.\d+\.\d+/);
        expect(hdr(f, 'session')).toMatch(/\S/);
        // CONNECTED is a frame without a body.
        expect(f.body.length).toBe(0);
        // The connection works: a frame with a receipt gets it.
        await c.sync();
        c.end();
      });
    }

    it('gives every connection its own session id', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const c = await StompRaw.connect(port);
        const f = await c.handshake({ 'accept-version': '1.2', host: 'junction' });
        ids.add(hdr(f, 'session')!);
        c.end();
      }
      expect(ids.size).toBe(5);
    });

    it('accepts login and passcode (the allow-all default)', async () => {
      const c = await StompRaw.connect(port);
      const f = await c.handshake({ 'accept-version': '1.2', host: 'junction', login: 'guest', passcode: 'guest' });
      expect(f.command).toBe('CONNECTED');
      await c.sync();
      c.end();
    });

    it('accepts a CONNECT without a host header', async () => {
      const c = await StompRaw.connect(port);
      const f = await c.handshake({ 'accept-version': '1.2' });
      expect(hdr(f, 'version')).toBe('1.2');
      c.end();
    });
  });

  describe('version negotiation [STOMP 1.2 "Protocol Negotiation"]', () => {
    for (const [accept, version] of [
      ['1.0', '1.0'],
      ['1.1', '1.1'],
      ['1.2', '1.2'],
      ['1.0,1.1', '1.1'],
      ['1.1,1.0,1.2', '1.2'],
      ['1.0,1.1,1.2', '1.2'],
      ['1.2,2.0', '1.2'],
      ['0.9,1.1', '1.1'],
    ] as const) {
      it(`accept-version:${accept} -> ${version} (the highest both speak)`, async () => {
        const c = await StompRaw.connect(port);
        const f = await c.handshake({ 'accept-version': accept, host: 'junction' });
        if (version === '1.0') {
          // A 1.0 session: CONNECTED may leave out version (STOMP 1.0 has none); if present it says 1.0.
          expect(hdr(f, 'version') ?? '1.0').toBe('1.0');
        } else {
          expect(hdr(f, 'version')).toBe(version);
        }
        await c.sync();
        c.end();
      });
    }

    it('a CONNECT without accept-version is a STOMP 1.0 session: no heart-beating, no escaping', async () => {
      const c = await StompRaw.connect(port);
      const f = await c.handshake({ host: 'junction', 'heart-beat': '100,100' });
      expect(hdr(f, 'version') ?? '1.0').toBe('1.0');
      // 1.0 has no heart-beating: the CONNECTED heart-beat header, if any, must not promise beats.
      expect(hdr(f, 'heart-beat') ?? '0,0').toBe('0,0');
      // 1.0 has no header escaping: a backslash travels as it is, where 1.1/1.2 would refuse "\q".
      const dest = `/topic/c01/v10/${nonce()}`;
      await c.subscribe({ destination: dest });
      await c.publish({ destination: dest, 'x-path': 'C:\\q\\n' }, 'v1.0');
      const [m] = await c.messages(1);
      expect(hdr(m!, 'x-path')).toBe('C:\\q\\n');
      c.end();
    });

    for (const accept of ['2.0', '1.3,2.0', '1', '']) {
      it(`accept-version:${JSON.stringify(accept)} (nothing we speak) -> ERROR with version:1.0,1.1,1.2, then close`, async () => {
        const c = await StompRaw.connect(port);
        c.send('CONNECT', { 'accept-version': accept, host: 'junction' });
        const f = await c.expectError();
        expectErrorFrame(f, /version/i);
        expect(hdr(f, 'version')).toBe('1.0,1.1,1.2');
        await healthy(port);
      });
    }

    it('@stomp/stompjs limited to 1.1 gets a 1.1 session; to 1.0, a 1.0 session', async () => {
      const v11 = await stompjsConnect(port, {}, ['1.1']);
      expect(v11.client.connectedVersion).toBe('1.1');
      const v10 = await stompjsConnect(port, {}, ['1.0']);
      expect(v10.client.connectedVersion ?? '1.0').toBe('1.0');
      for (const c of [v11, v10]) await c.client.deactivate();
    });
  });

  describe('real clients', () => {
    it('stompit connects (1.2), subscribes, sends and disconnects with a receipt', async () => {
      const client = await stompitConnect(port, { login: 'guest', passcode: 'guest' });
      const dest = `/topic/c01/stompit/${nonce()}`;
      const { messages } = await stompitSubscribe(client, { destination: dest, ack: 'auto' });
      await stompitSend(client, { destination: dest, 'content-type': 'text/plain' }, 'hello stompit');
      await until(() => messages.length === 1);
      expect(messages[0]!.body.toString()).toBe('hello stompit');
      await stompitDisconnect(client);
    });

    it('@stomp/stompjs connects (1.2) with login/passcode and round-trips a message', async () => {
      const c = await stompjsConnect(port, { connectHeaders: { host: 'junction', login: 'guest', passcode: 'guest' } });
      expect(c.client.connectedVersion).toBe('1.2');
      const dest = `/topic/c01/stompjs/${nonce()}`;
      const { messages } = await stompjsSubscribe(c, dest);
      c.client.publish({ destination: dest, body: 'hello stompjs' });
      await stompjsSync(c);
      expect(messages.map((m) => m.body)).toEqual(['hello stompjs']);
      await c.client.deactivate();
      expect(c.errors).toEqual([]);
    });
  });

  describe('frames out of place', () => {
    for (const command of ['SEND', 'SUBSCRIBE', 'DISCONNECT', 'CONNECTED', 'ACK', 'BEGIN']) {
      it(`${command} before CONNECT -> ERROR, then close`, async () => {
        const c = await StompRaw.connect(port);
        c.send(command, { destination: '/topic/c01/early', id: '1', transaction: 't', receipt: 'early-1' }, 'x');
        const f = await c.expectError();
        expectErrorFrame(f, /CONNECT/);
        // The frame asked for a receipt: the ERROR names it (STOMP 1.2 "ERROR").
        expect(hdr(f, 'receipt-id')).toBe('early-1');
        await healthy(port);
      });
    }

    for (const command of ['CONNECT', 'STOMP']) {
      it(`a second ${command} on a connected session -> ERROR, then close`, async () => {
        const c = await StompRaw.open(port);
        c.send(command, { 'accept-version': '1.2', host: 'junction' });
        const f = await c.expectError();
        expectErrorFrame(f, /connected/i);
        await healthy(port);
      });
    }

    it('an invalid heart-beat header -> ERROR, then close', async () => {
      const c = await StompRaw.connect(port);
      c.send('CONNECT', { 'accept-version': '1.2', host: 'junction', 'heart-beat': 'often' });
      expectErrorFrame(await c.expectError(), /heart-beat/);
      await healthy(port);
    });
  });
});

// Each test has connections of its own and waits for timers: they run side by side.
describe.concurrent('STOMP heart-beating [STOMP 1.2 "Heart-beating"]', async () => {
  // Short intervals so that the test takes a second, not minutes.
  const b = await startBroker({ config: { stomp: { heartbeat: 200 } } });
  const port = b.stompPort;

  it('CONNECTED offers the configured interval both ways', async () => {
    const c = await StompRaw.connect(port);
    const f = await c.handshake({ 'accept-version': '1.2', host: 'junction', 'heart-beat': '0,0' });
    expect(hdr(f, 'heart-beat')).toBe('200,200');
    c.end();
  });

  it('sends EOL heart-beats to a client that asks for them, and none to one that does not', async () => {
    const asks = await StompRaw.open(port, '1.2', { 'heart-beat': '0,200' });
    const quiet = await StompRaw.open(port, '1.2', { 'heart-beat': '0,0' });
    await until(() => asks.heartbeats >= 3, 5000, 'three heart-beats');
    expect(quiet.heartbeats).toBe(0);
    // Heart-beats are EOLs between frames: no frame came with them.
    expect(asks.frames).toEqual([]);
    asks.end();
    quiet.end();
  });

  it('closes a client that promised heart-beats and went silent, with an ERROR first', async () => {
    const silent = await StompRaw.open(port, '1.2', { 'heart-beat': '200,0' });
    const f = await silent.expectError(5000);
    expectErrorFrame(f, /heart-beat/);
    await healthy(port);
  });

  // Where a connection must survive, the client asks for 500 ms: each side beats at the slower of
  // what one offers and the other wants, so the broker's grace (twice that) is a second, enough for
  // a loaded test machine (broker and clients share one event loop here).
  it('keeps a client that sends its heart-beats (LF and CR LF), while a silent one is closed', async () => {
    const beating = await StompRaw.open(port, '1.2', { 'heart-beat': '500,500' });
    const silent = await StompRaw.open(port, '1.2', { 'heart-beat': '200,200' });
    let n = 0;
    // STOMP 1.2 allows EOL = CR LF: both kinds count.
    const timer = setInterval(() => beating.write(n++ % 2 === 0 ? '\n' : '\r\n'), 100);
    try {
      await silent.expectError(5000);
      // Past the beating client's grace time (twice 500 ms) after the silent one was closed.
      const seen = beating.heartbeats;
      await until(() => beating.heartbeats >= seen + 3, 5000, 'three more broker heart-beats');
      expect(beating.closed).toBe(false);
      expect(await beating.sync()).toEqual([]);
    } finally {
      clearInterval(timer);
      beating.end();
    }
  });

  it('@stomp/stompjs with heart-beats both ways stays connected and sees the broker beat', async () => {
    let pongs = 0;
    const c = await stompjsConnect(port, {
      heartbeatIncoming: 500,
      heartbeatOutgoing: 500,
      // stompjs logs "<<< PONG" for each heart-beat it receives; it closes the connection itself
      // when nothing arrives for twice the interval.
      debug: (line) => {
        if (line.includes('<<< PONG')) pongs++;
      },
    });
    await until(() => pongs >= 3, 5000, 'three heart-beats from the broker');
    expect(c.closed).toBe(false);
    await stompjsSync(c);
    await c.client.deactivate();
    expect(c.errors).toEqual([]);
  });

  it('a 1.0 session has no heart-beating: a silent 1.0 client stays', async () => {
    const v10 = await StompRaw.open(port, '1.0', { 'heart-beat': '200,200' });
    // A 1.2 client with the same header is closed after its grace time; by then the 1.0 one must not be.
    const v12 = await StompRaw.open(port, '1.2', { 'heart-beat': '200,200' });
    await v12.expectError(5000);
    expect(v10.closed).toBe(false);
    expect(v10.heartbeats).toBe(0);
    await v10.sync();
    v10.end();
  });
});

describe.concurrent('STOMP connect timeout', async () => {
  // stomp.connectTimeout is in seconds; 1 is the smallest.
  const b = await startBroker({ config: { stomp: { connectTimeout: 1 } } });
  const port = b.stompPort;

  it('closes a connection that sends no CONNECT within the timeout, with an ERROR first', async () => {
    const c = await StompRaw.connect(port);
    const f = await c.expectError(5000);
    expectErrorFrame(f, /CONNECT/);
    await healthy(port);
  });

  it('closes a connection whose CONNECT never ends (no NUL) within the timeout', async () => {
    const c = await StompRaw.connect(port);
    c.write('CONNECT\naccept-version:1.2\nhost:junction\n\n');
    expectErrorFrame(await c.expectError(5000), /CONNECT/);
  });

  it('does not close a client that connected in time', async () => {
    const early = await StompRaw.open(port);
    const late = await StompRaw.connect(port);
    // The late one is closed after the timeout; the early one, connected, is still served then.
    await late.expectError(5000);
    expect(early.closed).toBe(false);
    await early.sync();
    early.end();
  });
});
