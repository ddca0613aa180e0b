/**
 * The small pieces behind the limits, where a seam is real: the token bucket (connect and publish
 * rates), the per-client drop log (one line per burst), the CONNECT peek of a refused connection,
 * and the limits a listener entry may set for itself.
 */
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DropLog } from '../../src/core/drop-log.js';
import type { LogFields, Logger } from '../../src/core/log.js';
import { TokenBucket } from '../../src/core/token-bucket.js';
import { listenerLimits, listenersOf, validateConfig } from '../../src/server/config.js';
import { connectLevel } from '../../protocols/mqtt/refuse.js';

describe('TokenBucket', () => {
  it('take: a full burst at once, then `rate` a second; never more than the burst saved up', () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(499)).toBe(false); // 0.998 of a token
    expect(b.take(500)).toBe(true);
    expect(b.take(10_000)).toBe(true); // refilled to 3, not 19
    expect([b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, false]);
  });

  it('borrow: always takes; says how long until the balance is back at zero', () => {
    const b = new TokenBucket(10, 2, 0);
    expect([b.borrow(0), b.borrow(0)]).toEqual([0, 0]);
    expect(b.borrow(0)).toBe(100); // one token owed at 10 a second
    expect(b.borrow(100)).toBe(100);
    expect(b.borrow(1000)).toBe(0);
  });
});

describe('DropLog', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function capture(): { log: Logger; lines: Array<{ msg: string; fields: LogFields }> } {
    const lines: Array<{ msg: string; fields: LogFields }> = [];
    const at = (msg: string, fields?: LogFields): void => void lines.push({ msg, fields: fields ?? {} });
    const log: Logger = { debug: at, info: at, warn: at, error: at, child: () => log };
    return { log, lines };
  }

  it('one line when a burst starts, one with the totals when a quiet interval ends it; per client', () => {
    vi.useFakeTimers();
    const { log, lines } = capture();
    const d = new DropLog(log, 1000);
    for (let i = 0; i < 1000; i++) d.dropped('a', 'socket-full');
    d.dropped('a', 'queue-full', 5);
    d.dropped('b', 'too-large');
    expect(lines.map((l) => [l.msg, l.fields['clientId']])).toEqual([
      ['dropping messages for a client', 'a'],
      ['dropping messages for a client', 'b'],
    ]);
    vi.advanceTimersByTime(1000); // the first tick sees drops: the bursts go on
    d.dropped('a', 'socket-full');
    vi.advanceTimersByTime(1000); // b quiet for a whole interval: its burst ends
    expect(lines.slice(2).map((l) => [l.msg, l.fields['clientId']])).toEqual([['messages dropped for a client', 'b']]);
    vi.advanceTimersByTime(1000);
    expect(lines.at(-1)).toMatchObject({ msg: 'messages dropped for a client', fields: { clientId: 'a', dropped: 1006, 'socket-full': 1001, 'queue-full': 5 } });
    expect(d.open).toBe(0);
    d.dropped('a', 'socket-full'); // a new burst: a new first line
    expect(lines.at(-1)).toMatchObject({ msg: 'dropping messages for a client', fields: { clientId: 'a' } });
    d.flush();
    expect(lines.at(-1)).toMatchObject({ msg: 'messages dropped for a client', fields: { clientId: 'a', dropped: 1 } });
  });
});

describe('connectLevel: the protocol level of a refused connection CONNECT', () => {
  it('reads 3.1 (MQIsdp), 3.1.1 and 5 from their first bytes; waits for more; gives up on anything else', () => {
    for (const v of [3, 4, 5] as const) {
      const bytes = mqttPacket.generate({ cmd: 'connect', protocolId: v === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: v, clean: true, clientId: 'c', keepalive: 1 }, { protocolVersion: v });
      expect(connectLevel(bytes)).toBe(v);
      expect(connectLevel(bytes.subarray(0, 5))).toBeUndefined();
    }
    expect(connectLevel(Buffer.from('GET / HTTP/1.1\r\n'))).toBeNull();
    expect(connectLevel(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBeNull();
  });
});

describe('limits of a listener entry', () => {
  it('default to the limits section; an entry overrides them; burst 0 means the rate', () => {
    const c = validateConfig(
      {
        limits: { listenerMaxConnections: 50, connectRate: 20 },
        listeners: [{ protocol: 'mqtt' }, { protocol: 'mqtt', port: 1884, maxConnections: 5, maxConnectionsPerAddress: 2, connectRate: 1, connectBurst: 4 }],
      },
      'j.yaml',
      '/',
    );
    const [a, b] = listenersOf(c);
    expect(listenerLimits(c, a!)).toEqual({ maxConnections: 50, maxConnectionsPerAddress: 0, connectRate: 20, connectBurst: 20 });
    expect(listenerLimits(c, b!)).toEqual({ maxConnections: 5, maxConnectionsPerAddress: 2, connectRate: 1, connectBurst: 4 });
  });

  it('are checked like any key', () => {
    const reason = (entry: Record<string, unknown>): string => {
      try {
        validateConfig({ listeners: [{ protocol: 'mqtt', ...entry }] }, 'j.yaml', '/');
        return 'valid';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(reason({ maxConnections: -1 })).toBe('j.yaml: listeners: item 1: maxConnections: out of range: expected an integer >= 0, got -1');
    expect(reason({ connectRate: '5' })).toMatch(/connectRate: wrong type: expected an integer >= 0, got the string "5" \(write numbers without quotes\)/);
    expect(reason({ maxConections: 1 })).toMatch(/unknown key \(did you mean maxConnections\?\)/);
  });
});
