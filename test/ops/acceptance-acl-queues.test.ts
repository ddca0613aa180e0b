/**
 * Operations acceptance (issue 10, found by the operator check in /tmp/ops-check): an ACL can grant
 * queues by a filter over their names, as a RabbitMQ operator grants `.*`: `topic readwrite $queue/#`
 * used to fail the whole file ("a queue name must be non-empty and hold no wildcards"), so every queue,
 * DLQ.<q> included, had to be named one by one. Subscribing to `$queue/#` stays refused (a consumer
 * names one queue), and `#` still never reaches `$queue/...` [MQTT-4.7.2-1].
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/disk.js';
import { startBroker } from '../helpers/broker.js';
import { connect } from '../helpers/mqtt.js';
import { StompWire } from '../helpers/stomp-queue.js';
import { publishCode, subscribeCode } from '../security/setup.js';

const ACL = `user ops
topic readwrite $queue/#

user team
topic readwrite $queue/team-a/+
topic deny $queue/team-a/secret

user everyone
topic readwrite #
`;

describe('operations acceptance: ACL grants over queue names', async () => {
  const dir = tempDir('junction-acl-queues-');
  const aclFile = join(dir, 'acl');
  writeFileSync(aclFile, ACL);
  const tb = await startBroker({ config: { auth: { aclFile } } });

  it('the file loads with $queue/# and $queue/team-a/+ rules', () => {
    expect(tb.logs.find((l) => l.msg === 'access control')?.fields).toMatchObject({ aclRules: 4, aclFile });
  });

  it('$queue/#: any queue, DLQ.<q> included, over MQTT and STOMP', async () => {
    const c = await connect(tb.port, { username: 'ops' });
    expect(await publishCode(c, '$queue/orders', 'o1', 1)).toBe(0);
    expect(await subscribeCode(c, '$queue/orders')).toBe(1);
    expect(await subscribeCode(c, '$queue/DLQ.orders')).toBe(1);
    const s = await StompWire.connect(tb.stompPort, { login: 'ops', passcode: 'x' });
    await s.send('/queue/anything', 'a1', { persistent: 'true' });
    await s.subscribe('/queue/anything', 'q1', 'client-individual');
    const m = await s.next((f) => f.command === 'MESSAGE' || f.command === 'ERROR');
    expect(m.command).toBe('MESSAGE');
    await c.endAsync();
  });

  it('$queue/team-a/+: only those queues, and a deny wins; # grants no queue', async () => {
    const t = await connect(tb.port, { username: 'team' });
    expect(await publishCode(t, '$queue/team-a/jobs', 'j', 1)).toBe(0);
    expect(await subscribeCode(t, '$queue/team-a/jobs')).toBe(1);
    expect(await publishCode(t, '$queue/team-b/jobs', 'j', 1)).toBe(0x87);
    expect(await subscribeCode(t, '$queue/team-b/jobs')).toBe(0x87);
    expect(await subscribeCode(t, '$queue/team-a/secret')).toBe(0x87);
    const e = await connect(tb.port, { username: 'everyone' });
    expect(await publishCode(e, '$queue/orders', 'x', 1)).toBe(0x87);
    expect(await subscribeCode(e, '$queue/orders')).toBe(0x87);
    await t.endAsync();
    await e.endAsync();
  });
});
