/**
 * STOMP frames on the wire, sent as raw bytes (STOMP 1.2 "STOMP Frames", "Value Encoding",
 * "Repeated Header Entries", "Size Limits", "Augmented BNF"): content-length bodies with NUL bytes,
 * bodies ended by NUL, header escaping in 1.1/1.2 both ways (none in CONNECT, none in 1.0),
 * repeated headers (the first wins), CRLF line ends, UTF-8 headers and binary bodies, the
 * configured limits, malformed frames and missing headers (ERROR, with receipt-id when the frame
 * asked for a receipt, then close), and framing across TCP chunks.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { StompRaw, escape, frameBytes, hdr, nonce, rawHdr, type StompFrame, type Version } from '../helpers/stomp.js';

async function healthy(port: number): Promise<void> {
  const dest = `/topic/c02/healthy/${nonce()}`;
  const c = await StompRaw.open(port);
  await c.subscribe({ destination: dest, id: 'h' });
  await c.publish({ destination: dest }, 'ok');
  expect((await c.messages(1))[0]!.body.toString()).toBe('ok');
  c.end();
}

/** A subscriber on `dest` and a publisher, both connected with `version`. */
async function pair(port: number, version: Version = '1.2'): Promise<{ dest: string; sub: StompRaw; pub: StompRaw }> {
  const dest = `/topic/c02/${nonce()}`;
  const sub = await StompRaw.open(port, version);
  await sub.subscribe({ destination: dest, id: 's' });
  const pub = await StompRaw.open(port, version);
  return { dest, sub, pub };
}

const expectError = async (c: StompRaw, message: RegExp): Promise<StompFrame> => {
  const f = await c.expectError();
  expect(hdr(f, 'message')).toMatch(message);
  return f;
};

describe('STOMP frames', async () => {
  const b = await startBroker();
  const port = b.stompPort;

  describe('bodies', () => {
    it('a content-length body may hold NUL bytes; it arrives whole, with content-length', async () => {
      const { dest, sub, pub } = await pair(port);
      const body = Buffer.from([0, 1, 0, 0, 0x41, 0, 0xff, 0]);
      pub.send('SEND', { destination: dest, 'content-length': String(body.length), receipt: 'r' }, body);
      await pub.receipt('r');
      const [m] = await sub.messages(1);
      expect(m!.body).toEqual(body);
      expect(hdr(m!, 'content-length')).toBe(String(body.length));
    });

    it('a body without content-length ends at the first NUL; MESSAGE still has content-length', async () => {
      const { dest, sub, pub } = await pair(port);
      // Two frames in one write: the first NUL ends the first body.
      pub.write(Buffer.concat([frameBytes('SEND', { destination: dest }, 'first body'), frameBytes('SEND', { destination: dest }, 'second')]));
      const ms = await sub.messages(2);
      expect(ms.map((m) => m.body.toString())).toEqual(['first body', 'second']);
      expect(ms.map((m) => hdr(m, 'content-length'))).toEqual(['10', '6']);
    });

    it('an empty body is delivered as an empty body with content-length:0', async () => {
      const { dest, sub, pub } = await pair(port);
      await pub.publish({ destination: dest });
      const [m] = await sub.messages(1);
      expect(m!.body.length).toBe(0);
      expect(hdr(m!, 'content-length')).toBe('0');
    });

    it('every byte value survives in a content-length body [STOMP 1.2 "Frames and Headers": bodies are octets]', async () => {
      const { dest, sub, pub } = await pair(port);
      const body = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));
      pub.send('SEND', { destination: dest, 'content-length': String(body.length), 'content-type': 'application/octet-stream' }, body);
      const [m] = await sub.messages(1);
      expect(m!.body.equals(body)).toBe(true);
      expect(hdr(m!, 'content-type')).toBe('application/octet-stream');
    });

    it('a NUL that does not follow the content-length bytes -> ERROR, then close', async () => {
      const c = await StompRaw.open(port);
      c.send('SEND', { destination: '/topic/c02/cl', 'content-length': '2' }, 'abc');
      await expectError(c, /NUL|content-length/i);
      await healthy(port);
    });

    for (const cl of ['-1', 'abc', '1.5', '0x10']) {
      it(`content-length:${cl} -> ERROR, then close`, async () => {
        const c = await StompRaw.open(port);
        c.send('SEND', { destination: '/topic/c02/cl', 'content-length': cl, receipt: 'bad-cl' }, 'x');
        const f = await expectError(c, /content-length/);
        expect(hdr(f, 'receipt-id')).toBe('bad-cl');
      });
    }
  });

  describe('header escaping [STOMP 1.2 "Value Encoding"]', () => {
    it('1.2: \\n \\c \\\\ \\r in a SEND header are decoded, and the MESSAGE escapes them again', async () => {
      const { dest, sub, pub } = await pair(port, '1.2');
      pub.send('SEND', [
        ['destination', dest],
        ['we\\cird\\nname', 'a\\cb\\nc\\\\d\\re'],
      ]);
      const [m] = await sub.messages(1);
      expect(hdr(m!, 'we:ird\nname')).toBe('a:b\nc\\d\re');
      // On the wire, in the broker's own escaping.
      expect(rawHdr(m!, 'we\\cird\\nname')).toBe('a\\cb\\nc\\\\d\\re');
    });

    it('1.2: an escaped destination names the topic with the character itself', async () => {
      const dest = `/topic/c02/${nonce()}/a:b`;
      const sub = await StompRaw.open(port, '1.2');
      await sub.subscribe({ destination: escape(dest, '1.2'), id: 's' });
      const pub = await StompRaw.open(port, '1.2');
      await pub.publish({ destination: escape(dest, '1.2') }, 'colon');
      const [m] = await sub.messages(1);
      expect(hdr(m!, 'destination')).toBe(dest);
      expect(rawHdr(m!, 'destination')).toBe(escape(dest, '1.2'));
    });

    it('1.1: \\n \\c \\\\ are decoded and escaped again; \\r is not a 1.1 escape -> ERROR', async () => {
      const { dest, sub, pub } = await pair(port, '1.1');
      pub.send('SEND', [
        ['destination', dest],
        ['k\\c1', 'x\\ny\\cz\\\\'],
      ]);
      const [m] = await sub.messages(1);
      expect(hdr(m!, 'k:1')).toBe('x\ny:z\\');
      expect(rawHdr(m!, 'k\\c1')).toBe('x\\ny\\cz\\\\');
      pub.send('SEND', { destination: dest, 'x-cr': 'a\\rb', receipt: 'cr' });
      const f = await expectError(pub, /escape/);
      expect(hdr(f, 'receipt-id')).toBe('cr');
    });

    it('a value sent by a 1.2 client reaches a 1.1, a 1.0 and a 1.2 subscriber each in its own encoding', async () => {
      const dest = `/topic/c02/${nonce()}`;
      const subs = new Map<Version, StompRaw>();
      for (const v of ['1.0', '1.1', '1.2'] as const) {
        const s = await StompRaw.open(port, v);
        await s.subscribe({ destination: dest, id: 's' });
        subs.set(v, s);
      }
      const pub = await StompRaw.open(port, '1.2');
      await pub.publish({ destination: dest, 'x-v': 'a\\cb\\\\c' }, 'enc');
      const m12 = (await subs.get('1.2')!.messages(1))[0]!;
      const m11 = (await subs.get('1.1')!.messages(1))[0]!;
      const m10 = (await subs.get('1.0')!.messages(1))[0]!;
      expect(rawHdr(m12, 'x-v')).toBe('a\\cb\\\\c');
      expect(rawHdr(m11, 'x-v')).toBe('a\\cb\\\\c');
      // 1.0 has no escaping: the value as it is (a 1.0 reader splits at the first colon only).
      expect(rawHdr(m10, 'x-v')).toBe('a:b\\c');
    });

    it('1.0: backslashes are plain characters both ways', async () => {
      const { dest, sub, pub } = await pair(port, '1.0');
      await pub.publish({ destination: dest, 'x-win': 'C:\\dir\\new', 'x-bad': '\\q' }, 'v10');
      const [m] = await sub.messages(1);
      expect(rawHdr(m!, 'x-win')).toBe('C:\\dir\\new');
      expect(rawHdr(m!, 'x-bad')).toBe('\\q');
    });

    it('a line end in a 1.2 header cannot start a new header or the body in a 1.0 MESSAGE', async () => {
      const dest = `/topic/c02/${nonce()}`;
      const v10 = await StompRaw.open(port, '1.0');
      await v10.subscribe({ destination: dest });
      const pub = await StompRaw.open(port, '1.2');
      await pub.publish({ destination: dest, 'x-inj': 'a\\nsubscription\\cevil\\n\\nfake body' }, 'real body');
      const [m] = await v10.messages(1);
      expect(hdr(m!, 'subscription')).toBe(dest);
      expect(m!.headers.filter(([k]) => k === 'subscription')).toHaveLength(1);
      expect(hdr(m!, 'x-inj')).toBe('a subscription:evil  fake body');
      expect(m!.body.toString()).toBe('real body');
    });

    for (const v of ['1.1', '1.2'] as const) {
      for (const bad of ['\\t', '\\a', 'end\\', '\\C', '\\N']) {
        it(`${v}: undefined escape ${JSON.stringify(bad)} -> ERROR, then close`, async () => {
          const c = await StompRaw.open(port, v);
          c.send('SEND', [
            ['destination', '/topic/c02/esc'],
            ['x-bad', bad],
          ]);
          await expectError(c, /escape/);
        });
      }
    }

    it('an undefined escape in a header name is refused the same way', async () => {
      const c = await StompRaw.open(port, '1.2');
      c.send('SEND', [
        ['destination', '/topic/c02/esc'],
        ['x\\tname', 'v'],
      ]);
      await expectError(c, /escape/);
      await healthy(port);
    });

    it('the ERROR for an undefined escape names the receipt of the bad frame', async () => {
      const c = await StompRaw.open(port, '1.2');
      c.send('SEND', [
        ['receipt', 'esc-1'],
        ['destination', '/topic/c02/esc'],
        ['x-bad', '\\t'],
      ]);
      const f = await expectError(c, /escape/);
      expect(hdr(f, 'receipt-id')).toBe('esc-1');
    });

    it('CONNECT headers are not unescaped: a backslash that would be an undefined escape is fine there', async () => {
      const c = await StompRaw.connect(port);
      const f = await c.handshake({ 'accept-version': '1.2', host: 'junction', login: 'dom\\user', passcode: 'p\\q:r' });
      expect(hdr(f, 'version')).toBe('1.2');
      // CONNECTED is not escaped either: no backslash sequences in its values.
      for (const [, v] of f.rawHeaders) expect(v).not.toMatch(/\\/);
      // The login went to the broker verbatim.
      expect(b.logs.some((l) => l.msg === 'client connected' && l.fields['login'] === 'dom\\user')).toBe(true);
      c.end();
    });
  });

  describe('repeated headers [STOMP 1.2 "Repeated Header Entries"]', () => {
    it('the first destination wins', async () => {
      const first = `/topic/c02/rep1/${nonce()}`;
      const second = `/topic/c02/rep2/${nonce()}`;
      const c = await StompRaw.open(port);
      await c.subscribe({ destination: first, id: 'a' });
      await c.subscribe({ destination: second, id: 'b' });
      await c.publish(
        [
          ['destination', first],
          ['destination', second],
        ],
        'rep',
      );
      const got = await c.sync();
      expect(got.map((f) => [f.command, hdr(f, 'subscription')])).toEqual([['MESSAGE', 'a']]);
    });

    it('the first value of a repeated user header is the one delivered', async () => {
      const { dest, sub, pub } = await pair(port);
      await pub.publish(
        [
          ['destination', dest],
          ['x-k', 'first'],
          ['x-k', 'second'],
        ],
        'rep',
      );
      const [m] = await sub.messages(1);
      expect(hdr(m!, 'x-k')).toBe('first');
    });

    it('the first content-length wins', async () => {
      const { dest, sub, pub } = await pair(port);
      pub.send(
        'SEND',
        [
          ['destination', dest],
          ['content-length', '3'],
          ['content-length', '1'],
        ],
        'a\0b',
      );
      const [m] = await sub.messages(1);
      expect(m!.body).toEqual(Buffer.from('a\0b'));
    });
  });

  describe('line ends', () => {
    it('1.2: a frame with CR LF line ends is read like one with LF', async () => {
      const { dest, sub, pub } = await pair(port);
      pub.send('SEND', { destination: dest, 'x-a': 'b', receipt: 'crlf' }, 'crlf body', '\r\n');
      await pub.receipt('crlf');
      const [m] = await sub.messages(1);
      expect(hdr(m!, 'destination')).toBe(dest);
      expect(hdr(m!, 'x-a')).toBe('b');
      expect(m!.body.toString()).toBe('crlf body');
    });

    it('1.2: CONNECT with CR LF line ends', async () => {
      const c = await StompRaw.connect(port);
      c.write(frameBytes('CONNECT', { 'accept-version': '1.2', host: 'junction' }, '', '\r\n'));
      const f = await c.next();
      expect(f.command).toBe('CONNECTED');
      c.end();
    });

    it('EOLs (LF and CR LF) between frames are heart-beats, not frames', async () => {
      const { dest, sub, pub } = await pair(port);
      pub.write(Buffer.concat([Buffer.from('\n\r\n\n'), frameBytes('SEND', { destination: dest }, 'one'), Buffer.from('\r\n\n'), frameBytes('SEND', { destination: dest }, 'two')]));
      expect((await sub.messages(2)).map((m) => m.body.toString())).toEqual(['one', 'two']);
      expect(await pub.sync()).toEqual([]);
    });
  });

  describe('UTF-8', () => {
    it('header names and values, destinations and text bodies in UTF-8 survive (1.2 and 1.0)', async () => {
      for (const v of ['1.2', '1.0'] as const) {
        const dest = `/topic/c02/ünï/日本/${nonce()}`;
        const sub = await StompRaw.open(port, v);
        await sub.subscribe({ destination: dest, id: 'u' });
        const pub = await StompRaw.open(port, v);
        await pub.publish({ destination: dest, 'x-ключ': 'значение 🚀', 'content-type': 'text/plain;charset=utf-8' }, 'grüße 👋');
        const [m] = await sub.messages(1);
        expect(hdr(m!, 'destination')).toBe(dest);
        expect(hdr(m!, 'x-ключ')).toBe('значение 🚀');
        expect(m!.body.toString('utf8')).toBe('grüße 👋');
        expect(hdr(m!, 'content-length')).toBe(String(Buffer.byteLength('grüße 👋')));
      }
    });

    it('headers that are not valid UTF-8 -> ERROR, then close', async () => {
      const c = await StompRaw.open(port);
      c.write(Buffer.concat([Buffer.from('SEND\ndestination:/topic/c02/bad\nx-b:'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('\n\n\0')]));
      await expectError(c, /UTF-8/);
      await healthy(port);
    });
  });

  describe('malformed frames', () => {
    for (const command of ['FOO', 'send', 'MESSAGE', 'RECEIPT', 'ERROR', 'CONNECTED', ' SEND']) {
      it(`unknown client command ${JSON.stringify(command)} -> ERROR, then close`, async () => {
        const c = await StompRaw.open(port);
        c.send(command, { destination: '/topic/c02/bad', receipt: 'bad-cmd' });
        const f = await expectError(c, /command/);
        expect(hdr(f, 'receipt-id')).toBe('bad-cmd');
        await healthy(port);
      });
    }

    it('a header line without a colon -> ERROR, then close', async () => {
      const c = await StompRaw.open(port);
      c.write('SEND\ndestination:/topic/c02/x\nno colon here\n\n\0');
      await expectError(c, /colon/);
    });

    it('a CR not followed by LF between frames -> ERROR, then close', async () => {
      const c = await StompRaw.open(port);
      c.write('\rSEND\ndestination:/topic/c02/x\n\n\0');
      await c.expectError();
    });
  });

  describe('required headers', () => {
    const cases: Array<[string, Version, Record<string, string>]> = [
      ['SEND without destination', '1.2', {}],
      ['SEND with an empty destination', '1.2', { destination: '' }],
      ['SUBSCRIBE without destination', '1.2', { id: 's' }],
      ['SUBSCRIBE without id (1.2)', '1.2', { destination: '/topic/c02/x' }],
      ['SUBSCRIBE without id (1.1)', '1.1', { destination: '/topic/c02/x' }],
      ['UNSUBSCRIBE without id (1.2)', '1.2', {}],
      ['UNSUBSCRIBE without id (1.1)', '1.1', { destination: '/topic/c02/x' }],
      ['ACK without id (1.2)', '1.2', {}],
      ['NACK without id (1.2)', '1.2', {}],
      ['ACK without message-id (1.1)', '1.1', { subscription: 's' }],
      ['BEGIN without transaction', '1.2', {}],
      ['COMMIT without transaction', '1.2', {}],
      ['ABORT without transaction', '1.2', {}],
    ];
    for (const [name, version, headers] of cases) {
      it(`${name} -> ERROR with receipt-id, then close`, async () => {
        const c = await StompRaw.open(port, version);
        const command = name.split(' ')[0]!;
        c.send(command, { ...headers, receipt: `req-${command}` });
        const f = await expectError(c, /missing|destination|id/);
        expect(hdr(f, 'receipt-id')).toBe(`req-${command}`);
        // What was wrong is said in the body too.
        expect(f.body.toString()).toMatch(new RegExp(command));
        await healthy(port);
      });
    }

    it('1.0: SUBSCRIBE without id is fine (the destination names it) and UNSUBSCRIBE by destination works', async () => {
      const dest = `/topic/c02/v10/${nonce()}`;
      const c = await StompRaw.open(port, '1.0');
      await c.subscribe({ destination: dest });
      await c.publish({ destination: dest }, 'one');
      expect((await c.messages(1))[0]!.body.toString()).toBe('one');
      c.send('UNSUBSCRIBE', { destination: dest, receipt: 'u' });
      await c.receipt('u');
      await c.publish({ destination: dest }, 'two');
      expect(await c.sync()).toEqual([]);
    });
  });

  describe('framing across TCP chunks', () => {
    it('a frame split into many small writes (inside EOLs, headers and body) is read once whole', async () => {
      const { dest, sub, pub } = await pair(port);
      pub.socket.setNoDelay(true);
      const body = Buffer.from('split\0body\r\n', 'utf8');
      const bytes = frameBytes('SEND', { destination: dest, 'content-length': String(body.length), 'x-h': 'a\\cb', receipt: 'split' }, body, '\r\n');
      // Byte by byte, waiting a little between writes so that they reach the broker as separate reads.
      for (let i = 0; i < bytes.length; i += 3) {
        pub.write(bytes.subarray(i, i + 3));
        await new Promise((r) => setTimeout(r, 1));
      }
      await pub.receipt('split');
      const [m] = await sub.messages(1);
      expect(m!.body).toEqual(body);
      expect(hdr(m!, 'x-h')).toBe('a:b');
      expect(await sub.sync()).toEqual([]);
    });

    it('many frames in one write are all read, in order, with their receipts in order', async () => {
      const { dest, sub, pub } = await pair(port);
      const frames: Buffer[] = [];
      for (let i = 0; i < 50; i++) {
        frames.push(frameBytes('SEND', i % 2 === 0 ? { destination: dest, receipt: `m${i}` } : { destination: dest, 'content-length': '2', receipt: `m${i}` }, i % 2 === 0 ? `m${i}` : 'x\0'));
        if (i % 10 === 0) frames.push(Buffer.from('\n'));
      }
      pub.write(Buffer.concat(frames));
      const ms = await sub.messages(50);
      expect(ms.map((m) => m.body.toString())).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? `m${i}` : 'x\0')));
      const receipts: string[] = [];
      for (let i = 0; i < 50; i++) receipts.push(hdr(await pub.next('RECEIPT'), 'receipt-id')!);
      expect(receipts).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    });
  });
});

describe('STOMP frame limits [STOMP 1.2 "Size Limits"]', async () => {
  const b = await startBroker({ config: { stomp: { maxBodySize: 100, maxHeaderLine: 64, maxHeaders: 5 } } });
  const port = b.stompPort;

  it('a body of exactly stomp.maxBodySize is accepted, with and without content-length', async () => {
    const { dest, sub, pub } = await pair(port);
    pub.send('SEND', { destination: dest, 'content-length': '100' }, Buffer.alloc(100, 0));
    pub.send('SEND', { destination: dest }, Buffer.alloc(100, 0x61));
    const ms = await sub.messages(2);
    expect(ms.map((m) => m.body.length)).toEqual([100, 100]);
  });

  it('content-length above stomp.maxBodySize -> ERROR before the body arrives, then close', async () => {
    const c = await StompRaw.open(port);
    // Only the headers: the broker must not wait for the 101 bytes.
    c.write('SEND\ndestination:/topic/c02/big\ncontent-length:101\nreceipt:big\n\n');
    const f = await expectError(c, /limit|body/);
    expect(hdr(f, 'receipt-id')).toBe('big');
    await healthy(port);
  });

  it('a body without content-length and no NUL within stomp.maxBodySize -> ERROR, then close', async () => {
    const c = await StompRaw.open(port);
    c.write(Buffer.concat([Buffer.from('SEND\ndestination:/topic/c02/big\n\n'), Buffer.alloc(150, 0x61)]));
    await expectError(c, /limit|NUL/);
    await healthy(port);
  });

  it('a header line longer than stomp.maxHeaderLine -> ERROR, then close (even before its LF)', async () => {
    const long = await StompRaw.open(port);
    long.send('SEND', { destination: '/topic/c02/x', 'x-long': 'y'.repeat(80) });
    await expectError(long, /header line/);
    const endless = await StompRaw.open(port);
    endless.write('SEND\ndestination:/topic/c02/x\nx-endless:' + 'z'.repeat(100));
    await expectError(endless, /header line/);
    await healthy(port);
  });

  it('a command line longer than stomp.maxHeaderLine without LF -> ERROR, then close', async () => {
    const c = await StompRaw.open(port);
    c.write('S'.repeat(100));
    await c.expectError();
  });

  it('stomp.maxHeaders headers are accepted; one more -> ERROR, then close', async () => {
    const ok = await StompRaw.open(port);
    ok.send('SEND', { destination: '/topic/c02/h', a: '1', b: '2', c: '3', receipt: 'five' });
    await ok.receipt('five');
    const c = await StompRaw.open(port);
    c.send('SEND', { destination: '/topic/c02/h', a: '1', b: '2', c: '3', d: '4', receipt: 'six' });
    await expectError(c, /headers/);
    await healthy(port);
  });
});
