/**
 * Reloading the password and ACL files: on file change (in-process broker) and on SIGHUP (a
 * `junction start` child process). New rules take effect for connected clients; existing
 * subscriptions are re-checked (refused ones removed, wildcards that now reach a denied topic
 * checked per delivery); a file with an error, or a missing one, leaves the previous rules in force
 * (never "no ACL") and is logged and counted; a start with a bad file fails naming file, line and
 * reason.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/disk.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { MAIN, freePort, startBrokerProcess } from '../helpers/process-broker.js';
import { StompRaw } from '../helpers/stomp.js';
import { run } from '../helpers/run.js';
import { RC, connack, junctionPasswd, mosquittoPasswd, nonce, publishCode, replaceFile, setPassword, subscribeCode } from './setup.js';

const acl = (...daveRules: string[]): string => ['user admin', 'topic readwrite #', 'user dave', ...daveRules, ''].join('\n');

describe('reload on file change', async () => {
  const dir = tempDir('junction-reload-');
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await mosquittoPasswd(passwordFile, 'dave', 'dave-1');
  await mosquittoPasswd(passwordFile, 'admin', 'admin-pw');
  writeFileSync(aclFile, acl('topic readwrite room/#'));
  const b = await startBroker({ config: { auth: { passwordFile, aclFile, lockout: { attempts: 0 } } } });
  const stats = b.broker.core.stats;
  const dave = { username: 'dave', password: 'dave-1' };
  const admin = await connect(b.port, { username: 'admin', password: 'admin-pw' });

  /** Runs `change` and waits for the reload it causes; returns the log lines since. */
  async function reloaded(change: () => void | Promise<void>, msg = 'auth reloaded'): Promise<typeof b.logs> {
    const mark = b.logs.length;
    await change();
    await until(() => b.logs.slice(mark).some((l) => l.msg === msg), 10_000, msg);
    // The debounced reload may see the file once more (two events for one rename): let it settle.
    await sleep(300);
    return b.logs.slice(mark);
  }

  it('new ACL rules apply to connected clients; subscriptions no longer allowed are removed (MQTT and STOMP)', async () => {
    const c = await connect(b.port, { ...dave, clientId: `dave-${nonce()}` });
    await c.subscribeAsync(['room/#', 'room/a'], { qos: 1 });
    const s = await StompRaw.connect(b.stompPort);
    await s.handshake({ 'accept-version': '1.2', host: 'junction', login: 'dave', passcode: 'dave-1' });
    await s.subscribe({ id: 'all', destination: '/topic/room/#' });
    expect(await publishCode(c, 'room/b', 'before', 1)).toBe(0);
    await until(() => c.received.length === 1);
    await s.messages(1);
    c.received.length = 0;

    const lines = await reloaded(() => replaceFile(aclFile, acl('topic readwrite room/a', 'topic read lobby/#')));
    const removed = lines.filter((l) => l.msg === 'subscriptions removed: no longer allowed').map((l) => l.fields['subscriptions']);
    expect(removed).toContainEqual(['room/#']);
    expect(removed).toContainEqual(['all']); // the STOMP subscription's id

    await admin.publishAsync('room/b', 'after: not for dave', { qos: 1 });
    await admin.publishAsync('room/a', 'after: for dave', { qos: 1 });
    await until(() => c.received.length === 1);
    await sleep(100);
    expect(c.received.map((m) => `${m.topic} ${m.payload.toString()}`)).toEqual(['room/a after: for dave']);
    expect(s.frames.filter((f) => f.command === 'MESSAGE')).toEqual([]);
    expect(await publishCode(c, 'room/b', 'denied now', 1)).toBe(0x87);
    expect(await subscribeCode(c, 'lobby/#')).toBe(1);
    s.end();
  });

  it('a subscription that now reaches a denied topic stays, and that topic is no longer delivered through it', async () => {
    await reloaded(() => replaceFile(aclFile, acl('topic read lobby/#')));
    const c = await connect(b.port, dave);
    await c.subscribeAsync('lobby/#', { qos: 1 });
    // Written in place this time (not renamed): the watcher sees that too.
    await reloaded(() => writeFileSync(aclFile, acl('topic read lobby/#', 'topic deny lobby/secret')));
    await admin.publishAsync('lobby/secret', 'hidden', { qos: 1 });
    await admin.publishAsync('lobby/news', 'shown', { qos: 1 });
    await until(() => c.received.length === 1);
    await sleep(100);
    expect(c.received.map((m) => m.topic)).toEqual(['lobby/news']);
    // And the other way: the deny rule goes, the topic is delivered again.
    await reloaded(() => replaceFile(aclFile, acl('topic read lobby/#')));
    await admin.publishAsync('lobby/secret', 'shown now', { qos: 1 });
    await until(() => c.received.length === 2);
    expect(c.received[1]!.topic).toBe('lobby/secret');
  });

  it('an ACL file with an error keeps the previous rules, logged with file, line and reason, and counted', async () => {
    await reloaded(() => replaceFile(aclFile, acl('topic readwrite room/#')));
    const c = await connect(b.port, dave);
    await c.subscribeAsync('room/#', { qos: 1 });
    const failures = stats.authReloadFailures;
    // The broken file would grant dave everything; none of it may take effect.
    const lines = await reloaded(
      () => replaceFile(aclFile, acl('topic readwrite #', 'topic readwrite room/#/oops')),
      'auth reload failed: the previous rules stay in force',
    );
    const line = lines.find((l) => l.msg === 'auth reload failed: the previous rules stay in force')!;
    expect(line.level).toBe('error');
    expect(line.fields['error']).toBe(`${aclFile}:5: invalid topic filter "room/#/oops": '#' must be the whole last level`);
    expect(stats.authReloadFailures).toBeGreaterThan(failures);
    expect(b.broker.access?.lastReload.ok).toBe(false);
    expect(await publishCode(c, 'other/x', 'still denied', 1)).toBe(0x87);
    expect(await publishCode(c, 'room/x', 'still allowed', 1)).toBe(0);
    await until(() => c.received.length === 1); // the subscription is still there
  });

  it('a deleted ACL file keeps the previous rules (never "no ACL")', async () => {
    const c = await connect(b.port, dave);
    const lines = await reloaded(() => rmSync(aclFile), 'auth reload failed: the previous rules stay in force');
    expect(lines.find((l) => l.msg.startsWith('auth reload failed'))?.fields['error']).toBe(`cannot read ACL file ${aclFile}: ENOENT`);
    expect(await publishCode(c, 'other/x', 'still denied', 1)).toBe(0x87);
    await reloaded(() => writeFileSync(aclFile, acl('topic readwrite room/#')));
    expect(b.broker.access?.lastReload.ok).toBe(true);
  });

  it('password file changes: a new user logs in, a changed password and a removed user are refused, without a restart', async () => {
    await reloaded(() => setPassword(passwordFile, 'erin', 'erin-1'));
    const erin = await connack(b.port, 5, { username: 'erin', password: 'erin-1' });
    expect(erin.code).toBe(0);
    erin.raw.end();
    // dave logged in with dave-1 before (remembered by the verifier): the new file still wins.
    await reloaded(() => mosquittoPasswd(passwordFile, 'dave', 'dave-2'));
    // A revoked credential is "not authorized" (operations.md), not a mistyped password.
    expect((await connack(b.port, 5, { username: 'dave', password: 'dave-1' })).code).toBe(RC.v5.notAuthorized);
    const dave2 = await connack(b.port, 5, { username: 'dave', password: 'dave-2' });
    expect(dave2.code).toBe(0);
    dave2.raw.end();
    await reloaded(async () => {
      const r = await junctionPasswd(['-D', passwordFile, 'erin'], '');
      expect(r.code).toBe(0);
    });
    expect((await connack(b.port, 5, { username: 'erin', password: 'erin-1' })).code).toBe(RC.v5.notAuthorized);
  });

  it('a password file with an error keeps the previous users', async () => {
    const lines = await reloaded(() => replaceFile(passwordFile, 'dave:plaintext\n'), 'auth reload failed: the previous rules stay in force');
    expect(lines.find((l) => l.msg.startsWith('auth reload failed'))?.fields['error']).toMatch(new RegExp(`^${passwordFile}:1: unsupported hash for "dave"`));
    const still = await connack(b.port, 5, { username: 'dave', password: 'dave-2' });
    expect(still.code).toBe(0);
    still.raw.end();
    expect((await connack(b.port, 5, { username: 'dave', password: 'plaintext' })).code).toBe(RC.v5.badCredentials);
  });
});

describe('SIGHUP and start-up (junction start)', () => {
  const dir = tempDir('junction-sighup-');

  it('SIGHUP re-reads the ACL: new rules apply and a removed grant removes the subscription; a broken file keeps the rules', async () => {
    const aclFile = join(dir, 'acl');
    writeFileSync(aclFile, acl('topic readwrite room/#'));
    const config = join(dir, 'junction.yaml');
    writeFileSync(config, `auth:\n  aclFile: ${aclFile}\n`);
    const port = await freePort();
    const proc = await startBrokerProcess(['--config', config, '--storage', 'memory'], port);
    try {
      // No file change: only the signal can cause this reload.
      const before = proc.output().split('auth reloaded').length;
      proc.proc.kill('SIGHUP');
      await until(() => proc.output().split('auth reloaded').length === before + 1, 10_000, 'reload on SIGHUP');
      expect(proc.output()).toContain('SIGHUP: reloading TLS material, password and ACL files');

      const c = await connect(port, { username: 'dave' });
      await c.subscribeAsync('room/#', { qos: 1 });
      const a = await connect(port, { username: 'admin' });
      writeFileSync(aclFile, acl('topic readwrite hall/#'));
      proc.proc.kill('SIGHUP');
      await until(() => proc.output().includes('subscriptions removed: no longer allowed'), 10_000, 'subscription removed');
      await a.publishAsync('room/x', 'gone', { qos: 1 });
      expect(await publishCode(c, 'hall/x', 'allowed now', 1)).toBeLessThan(0x80);
      expect(await publishCode(c, 'room/x', 'denied now', 1)).toBe(0x87);

      writeFileSync(aclFile, acl('topic readwrite #', 'bogus line'));
      proc.proc.kill('SIGHUP');
      await until(() => proc.output().includes('auth reload failed'), 10_000, 'failed reload logged');
      expect(proc.output()).toContain(`${aclFile}:5: unknown directive`);
      expect(await publishCode(c, 'room/x', 'still denied', 1)).toBe(0x87);
      expect(c.received).toEqual([]);
      expect(proc.proc.exitCode).toBe(null);
    } finally {
      await proc.kill('SIGTERM');
    }
  }, 60_000);

  async function startFails(auth: string): Promise<string> {
    const config = join(dir, `bad-${nonce()}.yaml`);
    writeFileSync(config, `auth:\n${auth}`);
    const r = await run(process.execPath, [MAIN, 'start', '--config', config, '--storage', 'memory', '--host', '127.0.0.1', '--mqtt-port', '0', '--stomp-port', '0', '--http-port', '0'], 30_000);
    expect(r.code).toBe(1);
    return r.stderr;
  }

  it('a start with a bad ACL file fails naming file, line and reason', async () => {
    const aclFile = join(dir, 'bad.acl');
    writeFileSync(aclFile, '# comment\ntopic read ok/#\nuser x\ntopic deny y/#/z\n');
    expect(await startFails(`  aclFile: ${aclFile}\n`)).toContain(`junction: cannot start: ${aclFile}:4: invalid topic filter "y/#/z"`);
    writeFileSync(aclFile, 'topic read\n');
    expect(await startFails(`  aclFile: ${aclFile}\n`)).toContain(`junction: cannot start: ${aclFile}:1: topic read needs a topic filter`);
    writeFileSync(aclFile, 'topic read ok/#\nuser\n');
    expect(await startFails(`  aclFile: ${aclFile}\n`)).toContain(`junction: cannot start: ${aclFile}:2: user needs a name`);
    writeFileSync(aclFile, 'topic read $share/g/x\n');
    expect(await startFails(`  aclFile: ${aclFile}\n`)).toContain(`${aclFile}:1: ACL filters name topics, not $share/ subscriptions`);
  }, 90_000);

  it('a start with a bad or missing password file fails naming it', async () => {
    const passwordFile = join(dir, 'bad.passwd');
    writeFileSync(passwordFile, 'ok:$7$101$c2FsdA==$aGFzaA==\nnocolon\n');
    expect(await startFails(`  passwordFile: ${passwordFile}\n`)).toContain(`junction: cannot start: ${passwordFile}:2: expected user:hash`);
    const missing = join(dir, 'missing.passwd');
    expect(await startFails(`  passwordFile: ${missing}\n`)).toContain(`junction: cannot start: cannot read password file ${missing}: ENOENT`);
  }, 60_000);
});
