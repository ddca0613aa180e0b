/**
 * A persistent session keeps the identity that made it: across a broker restart its username
 * comes back from storage and the ACL holds for messages queued while the client is offline
 * (before and after the restart); a connection of another user with the same client id does not
 * inherit the session (its queued messages, its subscriptions).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/disk.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { freePort } from '../helpers/process-broker.js';
import { MemoryStore } from '../../storage/memory.js';
import { RawClient } from '../helpers/raw.js';
import { nonce } from './setup.js';

const ACL = `
user alice
topic readwrite #
topic deny secret/#

user bob
topic readwrite bob/#

user admin
topic readwrite #
`;

describe('identity of persistent sessions', async () => {
  const dir = tempDir('junction-identity-');
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, ACL);
  const port = await freePort();
  const store = new MemoryStore();
  let tb: TestBroker | undefined;
  const start = async (): Promise<TestBroker> => (tb = await startBroker({ store, autoStop: true, config: { mqtt: { port }, auth: { aclFile } } }));
  const restart = async (): Promise<void> => {
    await tb?.stop();
    await start();
  };
  await start();
  const persistent = (clientId: string, username: string, protocolVersion: 4 | 5 = 5) =>
    connect(port, { clientId, username, clean: false, protocolVersion, ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}) });

  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: "#" of an offline session queues only readable topics, before and after a restart`, async () => {
      const clientId = `alice-${protocolVersion}-${nonce()}`;
      const tag = nonce();
      const alice = await persistent(clientId, 'alice', protocolVersion);
      await alice.subscribeAsync('#', { qos: 1, ...(protocolVersion === 5 ? { rh: 2 } : {}) });
      await alice.endAsync();

      let admin = await connect(port, { username: 'admin' });
      await admin.publishAsync(`secret/${tag}/1`, 'hidden', { qos: 1 });
      await admin.publishAsync(`open/${tag}/1`, 'shown', { qos: 1 });
      await admin.endAsync();
      await restart();
      expect(tb!.broker.core.sessions.get(clientId)?.identity).toEqual({ clientId, username: 'alice' });
      admin = await connect(port, { username: 'admin' });
      await admin.publishAsync(`secret/${tag}/2`, 'hidden', { qos: 1 });
      await admin.publishAsync(`open/${tag}/2`, 'shown', { qos: 1 });

      const back = await persistent(clientId, 'alice', protocolVersion);
      await until(() => back.received.filter((m) => m.topic.includes(tag)).length >= 2, 5000, 'queued messages');
      await sleep(200);
      expect(back.received.filter((m) => m.topic.includes(tag)).map((m) => m.topic)).toEqual([`open/${tag}/1`, `open/${tag}/2`]);
      await back.endAsync();
    });
  }

  it('another user with the same client id does not get the session: no queued messages, no subscriptions, Session Present 0', async () => {
    const clientId = `shared-id-${nonce()}`;
    const alice = await persistent(clientId, 'alice');
    await alice.subscribeAsync('bob/#', { qos: 1 });
    await alice.endAsync();
    const admin = await connect(port, { username: 'admin' });
    await admin.publishAsync('bob/for-alice', 'queued for alice', { qos: 1 });

    const bob = await RawClient.connect(port, 4);
    const ack = await bob.handshake({ clientId, username: 'bob', clean: false });
    expect(ack.returnCode).toBe(0);
    expect(ack.sessionPresent).toBe(false);
    await admin.publishAsync('bob/later', "not through alice's subscription", { qos: 1 });
    expect((await bob.settle(300)).filter((p) => p.cmd === 'publish')).toEqual([]);
    bob.end();
  });
});
