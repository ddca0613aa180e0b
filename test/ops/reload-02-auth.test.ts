/**
 * Reload and access control (operations.md "Hot reload"): an ACL file with no rules denies
 * everything (CVE-2018-12550); a broken ACL never opens access, checked against a live subscriber
 * (Mosquitto, given an ACL file with a bad line and SIGHUP, stops enforcing ACLs); clients whose
 * password-file entry changed or went are disconnected (`auth_revoked`: MQTT 5 DISCONNECT 0x98,
 * STOMP ERROR) and their reconnect refused, while everyone else stays, reload after reload.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IDisconnectPacket } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { StompRaw, hdr } from '../helpers/stomp.js';
import { tempDir } from '../helpers/disk.js';
import { RC, connack, mosquittoPasswd, publishCode, subscribeCode } from '../security/setup.js';
import { LOOPBACK, startFileBroker } from './reload-helpers.js';
import { run } from '../helpers/run.js';

describe('reload: ACL files', async () => {
  const dir = tempDir('junction-reload-acl-');
  const passwd = join(dir, 'passwd');
  const acl = join(dir, 'acl');
  await mosquittoPasswd(passwd, 'dave', 'dave-pw');
  await mosquittoPasswd(passwd, 'admin', 'admin-pw');
  const rules = (...dave: string[]): string => ['user admin', 'topic readwrite #', 'user dave', ...dave, ''].join('\n');
  writeFileSync(acl, rules('topic read room/#', 'topic write room/#'));
  const fb = await startFileBroker(`${LOOPBACK}auth:\n  passwordFile: ${passwd}\n  aclFile: ${acl}\n  lockout: { attempts: 0 }\n`, dir);
  const admin = await connect(fb.port, { username: 'admin', password: 'admin-pw', clientId: 'acl-admin' });

  it('a broken ACL never opens access: the live subscriber keeps receiving only what it was allowed', async () => {
    const dave = await connect(fb.port, { username: 'dave', password: 'dave-pw', clientId: 'acl-dave' });
    // '#' is granted as far as the rules reach: each delivery is checked.
    expect(await subscribeCode(dave, '#', 0)).toBe(0x87);
    await dave.subscribeAsync('room/#', { qos: 1 });
    const sub = await connect(fb.port, { username: 'dave', password: 'dave-pw', clientId: 'acl-dave-wide' });
    await admin.publishAsync('room/1', 'ok-1', { qos: 1 });
    await admin.publishAsync('secret/1', 'no-1', { qos: 1 });
    await until(() => dave.received.length === 1);

    // A grant-all plus a bad line: the whole file is refused, the old rules stay.
    writeFileSync(acl, rules('topic readwrite #', 'topic read room/#/bad'));
    const r = fb.broker.reload('sighup');
    expect(r.result).toBe('rejected');
    expect(r.result === 'rejected' && r.errors[0]).toEqual({ file: acl, line: 5, path: 'auth.aclFile', message: `invalid topic filter "room/#/bad": '#' must be the whole last level` });
    await admin.publishAsync('secret/2', 'no-2', { qos: 1 });
    await admin.publishAsync('room/2', 'ok-2', { qos: 1 });
    await until(() => dave.received.length === 2);
    await sleep(200);
    expect(dave.received.map((m) => m.payload.toString())).toEqual(['ok-1', 'ok-2']);
    expect(await subscribeCode(sub, 'secret/#')).toBe(0x87);
    expect(await publishCode(sub, 'secret/3', 'denied', 1)).toBe(0x87);
    // An unreadable ACL file too.
    writeFileSync(acl, '');
    const { code } = await run('chmod', ['000', acl]);
    expect(code).toBe(0);
    const unreadable = fb.broker.reload('sighup');
    await run('chmod', ['600', acl]);
    // root reads any file: then it is the empty file, which denies everything (next test).
    if (unreadable.result === 'rejected') expect(unreadable.errors[0]).toMatchObject({ file: acl, path: 'auth.aclFile' });
    writeFileSync(acl, rules('topic read room/#', 'topic write room/#'));
    expect(fb.broker.reload('sighup').result).toBe('applied');
    await dave.endAsync();
    await sub.endAsync();
  });

  it('an ACL file with no rules denies everything, to every user', async () => {
    const dave = await connect(fb.port, { username: 'dave', password: 'dave-pw', clientId: 'acl-dave-empty' });
    await dave.subscribeAsync('room/#', { qos: 1 });
    writeFileSync(acl, '# nothing is granted\n');
    expect(fb.broker.reload('api').result).toBe('applied');
    // The broker's own publish passes no publish check: only the delivery check could stop it.
    fb.broker.core.router.publish({ topic: 'room/3', payload: Buffer.from('after'), qos: 1, retain: false, props: {}, origin: { clientId: 'test', protocol: 'internal' } });
    await sleep(200);
    expect(dave.received).toEqual([]);
    expect(await publishCode(dave, 'room/3', 'denied', 1)).toBe(0x87);
    expect(await subscribeCode(dave, 'room/#')).toBe(0x87);
    expect(await publishCode(admin, 'anything', 'denied too', 1)).toBe(0x87);
    writeFileSync(acl, rules('topic read room/#', 'topic write room/#'));
    expect(fb.broker.reload('api').result).toBe('applied');
    expect(await publishCode(admin, 'anything', 'allowed again', 1)).toBe(0);
    await dave.endAsync();
  });
});

describe('reload: revoked users', async () => {
  const dir = tempDir('junction-reload-revoke-');
  const passwd = join(dir, 'passwd');
  await mosquittoPasswd(passwd, 'dave', 'dave-pw');
  await mosquittoPasswd(passwd, 'erin', 'erin-pw');
  await mosquittoPasswd(passwd, 'admin', 'admin-pw');
  const fb = await startFileBroker(`${LOOPBACK}auth:\n  passwordFile: ${passwd}\n  lockout: { attempts: 0 }\n`, dir);

  it('a reload that changes nothing disconnects nobody (logrotate sends SIGHUP daily)', async () => {
    const c = await connect(fb.port, { username: 'admin', password: 'admin-pw', clientId: 'idem' });
    for (let i = 0; i < 3; i++) expect(fb.broker.reload('sighup')).toEqual({ result: 'applied', changed: [], restartRequired: [], revoked: 0 });
    await sleep(100);
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('removed and changed users are disconnected (MQTT 5 0x98, 3.1.1 closed, STOMP ERROR) and refused; others stay', async () => {
    const dave5 = await connect(fb.port, { username: 'dave', password: 'dave-pw', clientId: 'dave-5', reconnectPeriod: 0 });
    let disconnect: IDisconnectPacket | undefined;
    dave5.on('disconnect', (p) => (disconnect = p));
    const dave3 = await connect(fb.port, { username: 'dave', password: 'dave-pw', clientId: 'dave-3', protocolVersion: 4, reconnectPeriod: 0 });
    const erin = await connect(fb.port, { username: 'erin', password: 'erin-pw', clientId: 'erin', reconnectPeriod: 0 });
    const stomp = await StompRaw.open(fb.stompPort, '1.2', { login: 'dave', passcode: 'dave-pw' });
    const admin = await connect(fb.port, { username: 'admin', password: 'admin-pw', clientId: 'admin-stays' });
    const from = fb.logs.length;

    // dave removed, erin's password changed, admin untouched.
    expect((await run('mosquitto_passwd', ['-D', passwd, 'dave'])).code).toBe(0);
    await mosquittoPasswd(passwd, 'erin', 'erin-new');
    const r = fb.broker.reload('sighup');
    expect(r).toMatchObject({ result: 'applied', revoked: 4 });

    await until(() => disconnect !== undefined && !dave3.connected && !erin.connected && stomp.closed, 5000, 'revoked clients closed');
    expect(disconnect?.reasonCode).toBe(0x98);
    const error = stomp.frames.find((f) => f.command === 'ERROR');
    expect(error && hdr(error, 'message')).toMatch(/credentials revoked/);
    expect(admin.connected).toBe(true);
    const closed = fb.events('client.disconnected', from).filter((f) => f['closeReason'] === 'auth_revoked').map((f) => f['clientId']);
    expect(closed).toHaveLength(4);
    expect(closed).toEqual(expect.arrayContaining(['dave-3', 'dave-5', 'erin', expect.stringMatching(/^stomp-/)]));
    const kicked = fb.events('client.kicked', from);
    expect(kicked.every((f) => f['reason'] === 'auth_revoked')).toBe(true);

    // Their reconnect is refused as not authorized (operations.md: 0x87 / 5), not as a mistyped
    // password; the new password works, and after it a wrong one is a wrong password again.
    expect((await connack(fb.port, 5, { username: 'dave', password: 'dave-pw' })).code).toBe(RC.v5.notAuthorized);
    expect((await connack(fb.port, 4, { username: 'dave', password: 'dave-pw' })).code).toBe(RC.v4.notAuthorized);
    expect((await connack(fb.port, 4, { username: 'erin', password: 'erin-pw' })).code).toBe(RC.v4.notAuthorized);
    const again = await connack(fb.port, 5, { username: 'erin', password: 'erin-new' });
    expect(again.code).toBe(0);
    again.raw.end();
    expect((await connack(fb.port, 5, { username: 'erin', password: 'erin-pw' })).code).toBe(RC.v5.badCredentials);
    await admin.endAsync();
  });
});
