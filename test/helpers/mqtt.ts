/**
 * MQTT.js helpers: connect with a promise, collect messages, wait for conditions.
 */
import mqtt, { type IClientOptions, type MqttClient, type IPublishPacket } from 'mqtt';
import { afterAll } from 'vitest';

const clients = new Set<MqttClient>();
afterAll(async () => {
  await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => undefined)));
});

export interface Received {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

export async function connect(port: number, opts: IClientOptions = {}): Promise<MqttClient & { received: Received[] }> {
  const client = mqtt.connect({
    host: '127.0.0.1',
    port,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clientId: 'mqttjs-' + Math.random().toString(16).slice(2, 10),
    ...opts,
  }) as MqttClient & { received: Received[] };
  clients.add(client);
  client.received = [];
  client.on('message', (topic, payload, packet) => client.received.push({ topic, payload, packet }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before connect')));
  });
  return client;
}

/** Polls `cond` until true or the timeout passes. */
export async function until(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
