/**
 * The process log (operations.md "Structured logs and traces"): pino JSON lines with `time` (ISO),
 * `level` (label), `msg`, `evt` and the spec's fields; secrets and payloads redacted; auth.failed
 * and acl.denied throttled per client with a `suppressed` count; level and format changed by a
 * reload; the text format for people.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/server/broker.js';
import { loadConfig } from '../../src/server/config.js';
import { LogHub } from '../../src/server/log.js';
import { MemoryStore } from '../../storage/memory.js';
import { tempDir } from '../helpers/disk.js';
import { connect, sleep, until } from '../helpers/mqtt.js';
import { StompRaw } from '../helpers/stomp.js';
import { connack, mosquittoPasswd, publishCode } from '../security/setup.js';
import { LOOPBACK } from './reload-helpers.js';

type Line = Record<string, unknown>;

describe('log lines of a running broker', async () => {
  const dir = tempDir('junction-logs-');
  const passwd = join(dir, 'passwd');
  const acl = join(dir, 'acl');
  await mosquittoPasswd(passwd, 'dave', 'dave-secret-pw');
  writeFileSync(acl, 'user dave\ntopic readwrite dave/#\n');
  const file = join(dir, 'junction.yaml');
  const yaml = (level: string, format = 'json'): string => `${LOOPBACK}auth:\n  passwordFile: ${passwd}\n  aclFile: ${acl}\n  lockout: { attempts: 0 }\nlog:\n  level: ${level}\n  format: ${format}\n`;
  writeFileSync(file, yaml('debug'));
  const raw: string[] = [];
  const broker = await Broker.start(loadConfig({ file }), { store: new MemoryStore(), logSink: (l) => raw.push(l), configSource: { file } });
  afterAll(() => broker.stop());
  const port = broker.port('mqtt');
  const json = (from = 0): Line[] => raw.slice(from).map((l) => JSON.parse(l) as Line);
  const evt = (name: string, from = 0): Line[] => json(from).filter((l) => l['evt'] === name);

  it('every line is JSON with an ISO time, a level label and msg; start-up names listeners', () => {
    for (const l of json()) {
      expect(l['time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(['debug', 'info', 'warn', 'error']).toContain(l['level']);
      expect(typeof l['msg']).toBe('string');
    }
    expect(evt('listener.started').map((l) => l['listener']).sort()).toEqual(['http', 'mqtt', 'stomp']);
  });

  it('client.connected and client.disconnected carry clientId, username, peer, listener, protocol', async () => {
    const from = raw.length;
    const c = await connect(port, { clientId: 'log-dave', username: 'dave', password: 'dave-secret-pw' });
    await c.endAsync();
    await until(() => evt('client.disconnected', from).length === 1);
    expect(evt('client.connected', from)[0]).toMatchObject({ level: 'info', clientId: 'log-dave', username: 'dave', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/), listener: 'mqtt', protocol: 'mqtt' });
    expect(evt('client.disconnected', from)[0]).toMatchObject({ clientId: 'log-dave', username: 'dave', closeReason: 'client_disconnect', listener: 'mqtt' });
  });

  it('passwords and passcodes never reach the log; password, token, authorization and payload fields are redacted', async () => {
    const from = raw.length;
    const s = await StompRaw.open(broker.port('stomp'), '1.2', { login: 'dave', passcode: 'dave-secret-pw', 'client-id': 'stomp-dave' });
    s.socket.end();
    await connack(port, 5, { username: 'dave', password: 'wrong-secret-pw' });
    broker.log.info('fields test', { password: 'p-secret', token: 't-secret', authorization: 'Bearer a-secret', payload: 'payload-secret', nested: { passcode: 'n-secret' }, kept: 'visible' });
    await until(() => json(from).some((l) => l['msg'] === 'fields test'));
    const text = raw.slice(from).join('\n');
    for (const secret of ['dave-secret-pw', 'wrong-secret-pw', 'p-secret', 't-secret', 'a-secret', 'payload-secret', 'n-secret']) expect(text).not.toContain(secret);
    expect(json(from).find((l) => l['msg'] === 'fields test')).toMatchObject({ password: '[redacted]', token: '[redacted]', authorization: '[redacted]', payload: '[redacted]', nested: { passcode: '[redacted]' }, kept: 'visible' });
    expect(evt('client.connected', from).find((l) => l['protocol'] === 'stomp')).toMatchObject({ clientId: 'stomp-dave', username: 'dave' });
  });

  it('auth.failed and acl.denied: one line per client per 60 s, however many times it happens', async () => {
    const from = raw.length;
    // 'mallory', not 'dave': dave's failed login of the test above is still inside its window.
    for (let i = 0; i < 5; i++) expect((await connack(port, 5, { username: 'mallory', password: `bad-${i}` })).code).toBe(0x86);
    const failed = evt('auth.failed', from);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 'warn', username: 'mallory', protocol: 'mqtt', peer: expect.stringMatching(/^127\.0\.0\.1:/) });
    const c = await connect(port, { clientId: 'log-acl', username: 'dave', password: 'dave-secret-pw' });
    for (let i = 0; i < 5; i++) expect(await publishCode(c, `other/${i}`, 'x', 1)).toBe(0x87);
    const denied = evt('acl.denied', from);
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ action: 'publish', topic: 'other/0', clientId: 'log-acl', username: 'dave' });
    await c.endAsync();
  });

  it('a reload changes the level and the format at once', async () => {
    writeFileSync(file, yaml('warn'));
    expect(broker.reload('api').result).toBe('applied');
    let from = raw.length;
    const c = await connect(port, { clientId: 'log-quiet', username: 'dave', password: 'dave-secret-pw' });
    await c.endAsync();
    await sleep(100);
    expect(evt('client.connected', from)).toEqual([]);
    writeFileSync(file, yaml('info', 'text'));
    expect(broker.reload('api').result).toBe('applied');
    from = raw.length;
    const t = await connect(port, { clientId: 'log-text', username: 'dave', password: 'dave-secret-pw' });
    await t.endAsync();
    await until(() => raw.slice(from).some((l) => l.includes('client connected')));
    const line = raw.slice(from).find((l) => l.includes('client connected'))!;
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  client connected /);
    expect(line).toContain(' evt=client.connected');
    expect(line).toContain(' clientId=log-text');
    writeFileSync(file, yaml('debug'));
    expect(broker.reload('api').result).toBe('applied');
  });
});

describe('LogHub', () => {
  it('a throttled key reports how many lines it left out once its window ends', async () => {
    const lines: Line[] = [];
    const hub = new LogHub({ level: 'info', format: 'json', sink: (l) => lines.push(JSON.parse(l) as Line), throttleMs: 200 });
    const log = hub.logger({ listener: 'mqtt' });
    for (let i = 0; i < 5; i++) log.warn('authentication failed', { evt: 'auth.failed', username: 'mallory', peer: `10.0.0.1:${1000 + i}` });
    log.warn('authentication failed', { evt: 'auth.failed', username: 'other' });
    expect(lines.map((l) => l['username'])).toEqual(['mallory', 'other']);
    await until(() => lines.length === 3, 2000, 'summary line');
    expect(lines[2]).toMatchObject({ evt: 'auth.failed', username: 'mallory', suppressed: 4, listener: 'mqtt' });
    // The next window starts afresh.
    log.warn('authentication failed', { evt: 'auth.failed', username: 'mallory' });
    expect(lines).toHaveLength(4);
    expect(lines[3]!['suppressed']).toBeUndefined();
    hub.close();
  });

  it('text lines redact too', () => {
    const lines: string[] = [];
    const hub = new LogHub({ level: 'debug', format: 'text', sink: (l) => lines.push(l) });
    hub.logger().info('hello world', { evt: 'client.connected', password: 'pw', clientId: 'a b' });
    expect(lines[0]).toMatch(/ INFO  hello world evt=client\.connected password=\[redacted\] clientId="a b"$/);
    hub.close();
  });
});
