/**
 * DISCONNECT from the client: a normal end that discards the will unless the reason is 0x04, and
 * (v5) may change the Session Expiry Interval, though never from 0 to more [MQTT-3.14.2-2].
 */
import type { MqttConnection } from './connection.js';
import type { DisconnectPacket } from './packets.js';
import { MqttError, ReasonCode } from './reason-codes.js';

export function handleDisconnect(conn: MqttConnection, p: DisconnectPacket): void {
  let expiry: number | undefined;
  const asked = p.props.sessionExpiry;
  if (asked !== undefined) {
    if (conn.connectExpiry === 0 && asked > 0) {
      throw new MqttError(ReasonCode.ProtocolError, 'DISCONNECT sets a session expiry after CONNECT set none');
    }
    expiry = Math.min(asked, conn.settings.maxSessionExpiry);
  }
  const withWill = p.reasonCode === ReasonCode.DisconnectWithWillMessage;
  conn.closeKind = 'client_disconnect';
  conn.end(undefined, withWill ? 'client disconnected with will' : 'client disconnected', withWill, !withWill, expiry);
}
