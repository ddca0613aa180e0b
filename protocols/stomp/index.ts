/**
 * The STOMP adapter: attach one StompConnection to each transport a listener hands over.
 */
import type { Core } from '../../src/core/core.js';
import type { Connection, Transport } from '../../src/core/transport.js';
import { StompConnection } from './connection.js';
import type { StompSettings } from './settings.js';

export type { StompSettings } from './settings.js';
export { refuseStomp } from './refuse.js';

export function stompAdapter(core: Core, settings: StompSettings): (transport: Transport) => Connection {
  return (transport) => new StompConnection(transport, core, settings);
}
