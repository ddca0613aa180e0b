/**
 * The MQTT adapter: attach one MqttConnection to each transport a listener hands over.
 */
import type { Core } from '../../src/core/core.js';
import type { Connection, Transport } from '../../src/core/transport.js';
import { MqttConnection } from './connection.js';
import type { MqttSettings } from './settings.js';

export type { MqttSettings } from './settings.js';
export { DEFAULT_MQTT_SETTINGS } from './settings.js';
export { refuseMqtt } from './refuse.js';

export function mqttAdapter(core: Core, settings: MqttSettings): (transport: Transport) => Connection {
  return (transport) => new MqttConnection(transport, core, settings);
}
