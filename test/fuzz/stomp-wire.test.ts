/**
 * Fuzzing a running broker with hostile STOMP connections (TCP, and WebSocket for one in eight):
 * each sends a CONNECT (mostly valid, sometimes mutated), then valid frames of every command in
 * any order (SEND, SUBSCRIBE, ACK/NACK of ids the broker never gave, COMMIT/ABORT of transactions
 * never begun...), near misses mutated from them (stomp-gen.ts), random bytes and heart-beats, cut
 * into random pieces, and leaves with FIN or RST, or is closed by the broker after an ERROR.
 * Meanwhile a well-behaved MQTT 5 and STOMP 1.2 pair keep publishing and receiving.
 *
 * The broker must: never throw an uncaught exception or unhandled rejection and never log an
 * error; keep serving the well-behaved clients without losing or reordering a message; and once
 * the fuzzing connections are gone, hold exactly the connections, sessions and subscriptions it
 * held before (a STOMP session ends with its connection), with the heap back near its baseline.
 * Messages the fuzzing left in durable queues (/queue/fzq) are purged before that comparison.
 */
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { DEFAULT_FRAME_LIMITS } from '../../protocols/stomp/frame.js';
import { startBroker } from '../helpers/broker.js';
import { cases, seed, timeout } from './harness.js';
import { chunk, randomBytes } from './mqtt-gen.js';
import { stompStreamArb, type StompStream } from './stomp-gen.js';
import { fuzzTcp, fuzzWs, hostileStreamsCheck, trapProcessErrors, type Ending } from './wire.js';

interface Case {
  readonly stream: StompStream;
  readonly gapMs: number;
  readonly ending: Ending;
  readonly lingerMs: number;
  readonly ws: boolean;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  stream: stompStreamArb(DEFAULT_FRAME_LIMITS.maxHeaderLine, randomBytes),
  gapMs: fc.constantFrom(0, 0, 0, 1, 3),
  ending: fc.constantFrom<Ending>('destroy', 'end'),
  lingerMs: fc.constantFrom(0, 10, 50, 150),
  ws: fc.nat(7).map((n) => n === 0),
});

describe('fuzz: STOMP connections over the wire (state machine of protocols/stomp/connection.ts)', async () => {
  const tb = await startBroker({ config: { mqtt: { maxSessionExpiry: 0, connectTimeout: 2 }, stomp: { connectTimeout: 2 } } });
  const trap = trapProcessErrors();
  afterAll(() => trap.dispose());
  const fixedSeed = seed(8202);
  const inputs = fc.sample(caseArb, { seed: fixedSeed, numRuns: Math.min(20_000, cases(1500)) });

  const one = (i: number): Promise<unknown> => {
    const c = inputs[i % inputs.length]!;
    const o = { gapMs: c.gapMs, ending: c.ending, lingerMs: c.lingerMs };
    if (c.ws) return fuzzWs(`ws://127.0.0.1:${tb.httpPort}/stomp`, 'v12.stomp', c.stream.frames, o);
    return fuzzTcp(tb.stompPort, chunk(Buffer.concat(c.stream.frames), c.stream.cuts), o);
  };

  it('hostile frame streams on many connections: no crash, no error logged, well-behaved clients unaffected, state and heap back to baseline', async () => {
    await hostileStreamsCheck(tb, trap, 'stomp', 'stomp wire', fixedSeed, inputs.length, one);
  }, timeout(12_000));
});
