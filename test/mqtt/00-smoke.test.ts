import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { RawClient } from '../helpers/raw.js';

describe('smoke', async () => {
  const b = await startBroker();

  for (const protocolVersion of [4, 5] as const) {
    it(`delivers QoS 0/1/2 between MQTT.js clients (v${protocolVersion})`, async () => {
      const sub = await connect(b.port, { protocolVersion });
      const pub = await connect(b.port, { protocolVersion });
      await sub.subscribeAsync('smoke/+', { qos: 2 });
      for (const qos of [0, 1, 2] as const) await pub.publishAsync(`smoke/q${qos}`, `m${qos}`, { qos });
      await until(() => sub.received.length === 3);
      expect(sub.received.map((r) => [r.topic, r.payload.toString(), r.packet.qos])).toEqual([
        ['smoke/q0', 'm0', 0],
        ['smoke/q1', 'm1', 1],
        ['smoke/q2', 'm2', 2],
      ]);
    });
  }

  it('closes a connection whose first packet is not CONNECT', async () => {
    const raw = await RawClient.connect(b.port);
    raw.send({ cmd: 'pingreq' });
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });
});
