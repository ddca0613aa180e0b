/**
 * Fuzzing a running broker with hostile MQTT connections (TCP, and WebSocket for one in eight):
 * each sends a CONNECT (mostly valid, sometimes mutated) and then a mix of valid packets, near
 * misses mutated from them (mqtt-gen.ts) and random bytes, cut into random pieces with random
 * gaps, and leaves with FIN or RST, or is closed by the broker. Meanwhile a well-behaved MQTT 5
 * and STOMP 1.2 pair keep publishing and receiving (wire.ts Health).
 *
 * The broker must: never throw an uncaught exception or unhandled rejection and never log an
 * error (an "internal error" is a bug in a handler); keep serving the well-behaved clients without
 * losing or reordering one of their messages; and once the fuzzing connections are gone, hold
 * exactly the connections, sessions and subscriptions it held before (mqtt.maxSessionExpiry is 0,
 * so no fuzzing session may outlive its connection), with the heap back near its baseline.
 *
 * A warm-up phase runs first so that one-time allocations (compiled code, lazily loaded modules)
 * are in the baseline, not counted as growth.
 */
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { cases, seed, timeout } from './harness.js';
import { chunk, streamArb, versionArb, type Stream } from './mqtt-gen.js';
import { fuzzTcp, fuzzWs, hostileStreamsCheck, trapProcessErrors, type Ending } from './wire.js';

interface Case {
  readonly stream: Stream;
  readonly gapMs: number;
  readonly ending: Ending;
  readonly lingerMs: number;
  readonly ws: boolean;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  stream: versionArb.chain((v) => streamArb(v)),
  gapMs: fc.constantFrom(0, 0, 0, 1, 3),
  ending: fc.constantFrom<Ending>('destroy', 'end'),
  lingerMs: fc.constantFrom(0, 10, 50, 150),
  ws: fc.nat(7).map((n) => n === 0),
});

describe('fuzz: MQTT connections over the wire (state machine of protocols/mqtt/connection.ts)', async () => {
  const tb = await startBroker({
    config: { mqtt: { maxPacketSize: 65536, maxSessionExpiry: 0, connectTimeout: 2 }, stomp: { connectTimeout: 2 } },
  });
  const trap = trapProcessErrors();
  afterAll(() => trap.dispose());
  const fixedSeed = seed(8101);
  const inputs = fc.sample(caseArb, { seed: fixedSeed, numRuns: Math.min(20_000, cases(1500)) });

  const one = (i: number): Promise<unknown> => {
    const c = inputs[i % inputs.length]!;
    const bytes = Buffer.concat(c.stream.packets);
    const o = { gapMs: c.gapMs, ending: c.ending, lingerMs: c.lingerMs };
    if (c.ws) return fuzzWs(`ws://127.0.0.1:${tb.httpPort}/mqtt`, 'mqtt', c.stream.packets, o);
    return fuzzTcp(tb.port, chunk(bytes, c.stream.cuts), o);
  };

  it('hostile streams on many connections: no crash, no error logged, well-behaved clients unaffected, state and heap back to baseline', async () => {
    await hostileStreamsCheck(tb, trap, 'mqtt', 'mqtt wire', fixedSeed, inputs.length, one);
  }, timeout(12_000));
});
