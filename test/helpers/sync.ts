/**
 * Deterministic "nothing more is coming" checks for publish/subscribe tests, without sleeping.
 *
 * The broker handles one connection's packets in order and writes to one connection in order, so
 * a marker published by the same publisher after its messages reaches each subscriber after every
 * earlier message that subscriber was going to get. `synced(pub, ...subs)` publishes such a marker
 * to each subscriber's own `$sync/<clientId>` topic (a `$` topic, so `#` subscriptions never see it
 * [MQTT-4.7.2-1]) and waits until each has it; `got(c)` is what `c` received apart from markers.
 *
 * The marker goes at QoS 2: MQTT.js emits an incoming QoS 2 message only when its PUBREL arrives,
 * and a QoS 2 marker takes the same path (and the same session queue), so it cannot overtake an
 * earlier QoS 2 message, nor a QoS 1/2 delivery waiting for room in the in-flight window.
 */
import type { Packet } from 'mqtt-packet';
import { connect, until, type Received } from './mqtt.js';
import type { RawClient } from './raw.js';

export type Client = Awaited<ReturnType<typeof connect>>;

const SYNC = '$sync/';

function syncTopic(c: Client): string {
  return SYNC + c.options.clientId!;
}

/** Subscribes `c` to its marker topic; call once before `synced`. */
export async function syncable(c: Client): Promise<Client> {
  await c.subscribeAsync(syncTopic(c), { qos: 2 });
  return c;
}

/** `connect` + `syncable`. */
export async function connectSync(port: number, opts: Parameters<typeof connect>[1] = {}): Promise<Client> {
  return syncable(await connect(port, opts));
}

/** Waits until every message `pub` published so far has reached each of `subs` (see the header). */
export async function synced(pub: Client, ...subs: Client[]): Promise<void> {
  const token = 'sync-' + Math.random().toString(16).slice(2);
  for (const s of subs) await pub.publishAsync(syncTopic(s), token, { qos: 2 });
  await until(
    () => subs.every((s) => s.received.some((r) => r.topic === syncTopic(s) && r.payload.toString() === token)),
    5000,
    'sync markers',
  );
}

/** Messages received apart from sync markers. */
export function got(c: Client): Received[] {
  return c.received.filter((r) => !r.topic.startsWith(SYNC));
}

/** [topic, payload] pairs of `got(c)`. */
export function pairs(c: Client): Array<[string, string]> {
  return got(c).map((r) => [r.topic, r.payload.toString()]);
}

/**
 * For a RawClient subscriber: PINGREQ/PINGRESP. Only meaningful once the publisher's messages have
 * been handled by the broker (a QoS 1/2 publisher that got its acknowledgement). Returns and removes
 * every packet received before the PINGRESP.
 */
export async function rawSettled(raw: RawClient): Promise<Packet[]> {
  raw.send({ cmd: 'pingreq' });
  await until(() => raw.packets.some((p) => p.cmd === 'pingresp') || raw.closed, 5000, 'PINGRESP');
  const i = raw.packets.findIndex((p) => p.cmd === 'pingresp');
  if (i < 0) throw new Error('connection closed while waiting for PINGRESP');
  return raw.packets.splice(0, i + 1).slice(0, i);
}

/** A short random string to keep each test's topics and client ids apart. */
export function nonce(): string {
  return Math.random().toString(36).slice(2, 10);
}

/** Subscription Identifiers of a received v5 PUBLISH, sorted (mqtt-packet gives a number or an array). */
export function subIds(packet: { properties?: { subscriptionIdentifier?: number | number[] } }): number[] {
  const v = packet.properties?.subscriptionIdentifier;
  if (v === undefined) return [];
  return (Array.isArray(v) ? [...v] : [v]).sort((a, b) => a - b);
}
