/**
 * SIGHUP on a `junction start --config` child process, as operators and logrotate send it: a
 * changed configuration applies, a broken one is refused (logged with file, line and key path; the
 * broker and its clients carry on), a revoked user is disconnected, and `log.file` is reopened
 * after logrotate renamed it. A mosquitto_sub subscriber stays connected throughout.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/disk.js';
import { connect, until } from '../helpers/mqtt.js';
import { freePort, startBrokerProcess } from '../helpers/process-broker.js';
import { RC, connack, mosquittoPasswd } from '../security/setup.js';
import { run } from '../helpers/run.js';

describe('SIGHUP on junction start', () => {
  it('changed, broken and revoked-user configurations; log reopened after logrotate', async () => {
    const dir = tempDir('junction-sighup-ops-');
    const passwd = join(dir, 'passwd');
    const logFile = join(dir, 'junction.log');
    const config = join(dir, 'junction.yaml');
    await mosquittoPasswd(passwd, 'dave', 'dave-pw');
    await mosquittoPasswd(passwd, 'sub', 'sub-pw');
    const yaml = (maxSubscriptions: number): string =>
      `auth:\n  passwordFile: ${passwd}\n  lockout: { attempts: 0 }\nlimits:\n  maxSubscriptions: ${maxSubscriptions}\nlog:\n  file: ${logFile}\n`;
    writeFileSync(config, yaml(10));
    const port = await freePort();
    const proc = await startBrokerProcess(['--config', config, '--storage', 'memory'], port);
    const lines = (file = logFile): Array<Record<string, unknown>> =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
    const evts = (evt: string, file = logFile): Array<Record<string, unknown>> => lines(file).filter((l) => l['evt'] === evt);
    const sighup = async (evt: 'config.reloaded' | 'config.reload_failed', file = logFile): Promise<Record<string, unknown>> => {
      const n = evts(evt, file).length;
      proc.proc.kill('SIGHUP');
      await until(() => evts(evt, file).length > n, 8000, evt);
      return evts(evt, file).at(-1)!;
    };
    // A live subscriber that must never notice any of this.
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-u', 'sub', '-P', 'sub-pw', '-i', 'live-sub', '-t', 'live/#'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let received = '';
    sub.stdout.on('data', (d: Buffer) => (received += d.toString()));
    try {
      await until(() => evts('client.connected').some((l) => l['clientId'] === 'live-sub'), 8000, 'mosquitto_sub connected');
      const pub = async (text: string): Promise<void> => {
        const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'sub', '-P', 'sub-pw', '-t', 'live/x', '-m', text, '-q', '1']);
        expect(r.code).toBe(0);
      };
      await pub('one');
      await until(() => received.includes('one'), 5000, 'first message');

      // Changed: applied, and named in the log line.
      writeFileSync(config, yaml(20));
      const applied = await sighup('config.reloaded');
      expect(applied).toMatchObject({ level: 'info', trigger: 'sighup', changed: ['limits.maxSubscriptions'], restartRequired: [] });
      expect(typeof applied['time']).toBe('string');

      // Broken: refused with file, line and key path; the broker carries on.
      writeFileSync(config, `${yaml(30)}limits:\n  publishRate: 5\n`);
      const failed = await sighup('config.reload_failed');
      expect(failed).toMatchObject({ level: 'error', file: config, line: expect.any(Number), path: '' });
      expect(String(failed['reason'])).toMatch(/unique/i);
      await pub('two');
      await until(() => received.includes('two'), 5000, 'message after the failed reload');

      // A revoked user: disconnected at the reload, refused after.
      const dave = await connect(port, { username: 'dave', password: 'dave-pw', clientId: 'dave-revoked', reconnectPeriod: 0 });
      let reason: number | undefined;
      dave.on('disconnect', (p) => (reason = p.reasonCode));
      writeFileSync(config, yaml(20));
      expect((await run('mosquitto_passwd', ['-D', passwd, 'dave'])).code).toBe(0);
      const revoked = await sighup('config.reloaded');
      expect(revoked['revoked']).toBe(1);
      await until(() => reason !== undefined, 5000, 'DISCONNECT to the revoked client');
      expect(reason).toBe(0x98);
      expect(evts('client.disconnected').find((l) => l['clientId'] === 'dave-revoked')).toMatchObject({ closeReason: 'auth_revoked' });
      expect((await connack(port, 5, { username: 'dave', password: 'dave-pw' })).code).toBe(RC.v5.notAuthorized);

      // logrotate: rename, then HUP; new lines go to a new file under the old name.
      renameSync(logFile, `${logFile}.1`);
      const reopened = await sighup('config.reloaded');
      expect(reopened['changed']).toEqual([]);
      const rotatedCount = lines(`${logFile}.1`).length;
      await pub('three');
      await until(() => received.includes('three'), 5000, 'message after the rotation');
      await until(() => evts('client.connected').length > 0, 5000, 'a line in the new file');
      expect(lines(`${logFile}.1`).length).toBe(rotatedCount);
      expect(received.trim().split('\n')).toEqual(['one', 'two', 'three']);
      expect(proc.proc.exitCode).toBe(null);
    } finally {
      sub.kill();
      await proc.kill('SIGTERM');
    }
  });
});
