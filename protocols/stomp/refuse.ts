/**
 * Refusing a connection the listener does not admit (a connection limit, the connect rate): an
 * ERROR frame right away, in STOMP 1.0 form that every version reads, then close. Nothing is read
 * and no parser is made; the socket goes after `deadlineMs` if the peer does not close first.
 */
import type { Duplex } from 'node:stream';
import type { RefusalKind } from '../../src/core/transport.js';
import { serializeFrame } from './frame.js';

export function refuseStomp(stream: Duplex, why: RefusalKind, deadlineMs: number): void {
  const timer = setTimeout(() => stream.destroy(), deadlineMs);
  timer.unref();
  stream.on('error', () => undefined);
  stream.once('close', () => clearTimeout(timer));
  const message = why === 'rate' ? 'connection rate exceeded' : 'connection limit reached';
  const detail = why === 'rate' ? 'too many new connections on this listener; try again later' : 'the broker has as many connections as it takes; try again later';
  stream.end(serializeFrame('ERROR', [['message', message], ['content-type', 'text/plain']], Buffer.from(detail + '\n', 'utf8'), '1.0'));
}
