/**
 * Hot reload of the config file (operations.md "Hot reload"): what applies live, what waits for a
 * restart (reported, old value kept), all-or-nothing rejection with file, line and key path, the
 * admin API's 200/422 shapes, tokens applied live, the directory watch (atomic rename, Kubernetes
 * `..data` symlink swap), and a TLS certificate swapped under a running listener.
 */
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../../src/server/http/auth.js';
import { connect, until } from '../helpers/mqtt.js';
import { tempDir } from '../helpers/disk.js';
import { handshake, makeDevCerts } from '../listeners/certs.js';
import { apiClient } from './api-helpers.js';
import { LOOPBACK, startFileBroker } from './reload-helpers.js';

describe('reload: live keys, restart-only keys, rejection', async () => {
  const admin = newToken();
  const tokens = (...t: Array<[string, string]>): string => `admin:\n  tokens:\n${t.map(([n, tok]) => `    - { name: ${n}, sha256: "${hashToken(tok)}", role: admin }\n`).join('')}`;
  const base = (limits: string, extra = ''): string => `${LOOPBACK}limits:\n${limits}\n${tokens(['ops', admin])}${extra}`;
  const fb = await startFileBroker(base('  maxSubscriptions: 2'));
  const b = fb.broker;
  const api = apiClient(`http://127.0.0.1:${fb.httpPort}`, admin);

  it('a changed file: live keys apply at once, restart-only keys are reported and keep their running value', async () => {
    const c = await connect(fb.port, { clientId: 'stays-connected' });
    const from = fb.logs.length;
    fb.write(base('  maxSubscriptions: 5', 'node:\n  name: renamed@host\nsys:\n  interval: 0\n').replace('mqtt: { host: 127.0.0.1, port: 0 }', 'mqtt: { host: 127.0.0.1, port: 1 }'));
    const r = b.reload('api');
    expect(r).toMatchObject({ result: 'applied' });
    if (r.result !== 'applied') return;
    expect(r.changed).toEqual(expect.arrayContaining(['limits.maxSubscriptions', 'sys.interval']));
    expect(r.changed).not.toContain('mqtt.port');
    expect([...r.restartRequired].sort()).toEqual(['mqtt.port', 'node.name']);
    expect(b.pendingRestart).toEqual(r.restartRequired);
    expect(b.config.mqtt.port).toBe(0);
    expect(b.config.node.name).not.toBe('renamed@host');
    expect(b.config.limits.maxSubscriptions).toBe(5);
    // Logged at warn with the restart-only keys.
    const line = fb.logs.slice(from).find((l) => l.fields['evt'] === 'config.reloaded');
    expect(line?.level).toBe('warn');
    expect(line?.fields['restartRequired']).toEqual(r.restartRequired);
    // Nobody was disconnected, and the listener still serves on its old port.
    expect(c.connected).toBe(true);
    const n = await connect(fb.port, { clientId: 'after-reload' });
    // limits.maxSubscriptions applies to connections made after the reload.
    const granted = await n.subscribeAsync(['s/1', 's/2', 's/3', 's/4', 's/5'].map((t) => t), { qos: 0 });
    expect(granted.map((g) => g.qos)).toEqual([0, 0, 0, 0, 0]);
    expect(b.reloadStatus).toMatchObject({ ok: true, trigger: 'api', errors: [] });
    expect(b.core.stats.lastReloadSuccessful).toBe(true);
    await c.endAsync();
    await n.endAsync();
  });

  it('a broken file is rejected whole, with file, line and key path; nothing changes; 422 from the API', async () => {
    const before = b.config;
    const failures = b.reloadStatus.failures;
    const from = fb.logs.length;
    fb.write(`${LOOPBACK}limits:\n  maxSubscriptions: 9\n  publishRate: "10"\n${tokens(['ops', admin])}`);
    const r = b.reload('sighup');
    expect(r.result).toBe('rejected');
    if (r.result !== 'rejected') return;
    expect(r.errors).toEqual([{ file: fb.file, line: 6, path: 'limits.publishRate', message: expect.stringContaining('wrong type') }]);
    expect(b.config).toBe(before);
    expect(b.config.limits.maxSubscriptions).toBe(5);
    expect(b.reloadStatus).toMatchObject({ ok: false, trigger: 'sighup', failures: failures + 1 });
    expect(b.core.stats.lastReloadSuccessful).toBe(false);
    const line = fb.logs.slice(from).find((l) => l.fields['evt'] === 'config.reload_failed');
    expect(line?.level).toBe('error');
    expect(line?.fields).toMatchObject({ file: fb.file, line: 6, path: 'limits.publishRate' });

    // The same through the API: 422 with the spec's shape.
    const res = await api.post('/api/v1/reload');
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ result: 'rejected', errors: [{ file: fb.file, line: 6, path: 'limits.publishRate' }] });

    // A YAML syntax error and an unknown key name their lines too.
    fb.write(`${LOOPBACK}limits:\n  maxSubscriptions: [\n`);
    const syntax = b.reload('api');
    expect(syntax.result === 'rejected' && syntax.errors[0]).toMatchObject({ file: fb.file, line: expect.any(Number), path: '' });
    fb.write(`${LOOPBACK}\nlimits:\n  maxSubscriptionz: 3\n`);
    const unknown = b.reload('api');
    expect(unknown.result === 'rejected' && unknown.errors[0]).toMatchObject({ line: 6, path: 'limits.maxSubscriptionz', message: expect.stringContaining('did you mean') });
    expect(b.config).toBe(before);
  });

  it('admin tokens apply live; POST /api/v1/reload answers 200 {result, changed, restartRequired}', async () => {
    const second = newToken();
    expect((await api.get('/api/v1/overview', second)).status).toBe(401);
    fb.write(base('  maxSubscriptions: 5').replace(tokens(['ops', admin]), tokens(['ops', admin], ['ci', second])));
    const res = await api.post('/api/v1/reload');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ result: 'applied', changed: expect.arrayContaining(['admin.tokens']), restartRequired: [] });
    expect((await api.get('/api/v1/overview', second)).status).toBe(200);
    fb.write(base('  maxSubscriptions: 5').replace(tokens(['ops', admin]), tokens(['ci', second])));
    expect((await api.post('/api/v1/reload', undefined, second)).status).toBe(200);
    expect((await api.get('/api/v1/overview', admin)).status).toBe(401);
    fb.write(base('  maxSubscriptions: 5'));
    expect((await api.post('/api/v1/reload', undefined, second)).status).toBe(200);
  });

  it('the watch: a file renamed over the config reloads it within seconds; bytes unchanged, no reload', async () => {
    const successes = b.reloadStatus.successes;
    fb.write(base('  maxSubscriptions: 6'));
    await until(() => b.reloadStatus.successes === successes + 1, 5000, 'reload on rename');
    expect(b.reloadStatus.trigger).toBe('watch');
    expect(b.config.limits.maxSubscriptions).toBe(6);
    fb.write(base('  maxSubscriptions: 6')); // same bytes
    await new Promise((r) => setTimeout(r, 1200));
    expect(b.reloadStatus.successes).toBe(successes + 1);
  });
});

describe('reload: watch through a Kubernetes ConfigMap symlink swap', async () => {
  // The mounted directory: junction.yaml -> ..data/junction.yaml, ..data -> ..<timestamp>.
  const dir = tempDir('junction-configmap-');
  const version = (n: number, yaml: string): string => {
    const d = join(dir, `..v${n}`);
    mkdirSync(d);
    writeFileSync(join(d, 'junction.yaml'), yaml);
    return `..v${n}`;
  };
  symlinkSync(version(1, `${LOOPBACK}limits:\n  maxSubscriptions: 3\n`), join(dir, '..data'));
  symlinkSync('..data/junction.yaml', join(dir, 'junction.yaml'));
  const fb = await startFileBroker('', dir, join(dir, 'junction.yaml'));

  it('swapping ..data reloads the config', async () => {
    expect(fb.broker.config.limits.maxSubscriptions).toBe(3);
    const successes = fb.broker.reloadStatus.successes;
    symlinkSync(version(2, `${LOOPBACK}limits:\n  maxSubscriptions: 4\n`), join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(() => fb.broker.reloadStatus.successes === successes + 1, 5000, 'reload on ..data swap');
    expect(fb.broker.config.limits.maxSubscriptions).toBe(4);
  });
});

describe('reload: TLS certificate swap', async () => {
  const dir = tempDir('junction-reload-tls-');
  const certs = makeDevCerts(dir);
  const yaml = `listeners:\n  - { name: mqtt, protocol: mqtt, host: 127.0.0.1, port: 0 }\n  - { name: tls, protocol: mqtt, host: 127.0.0.1, port: 0, tls: { cert: ${certs.serverCert}, key: ${certs.serverKey} } }\n`;
  const fb = await startFileBroker(yaml);

  it('new handshakes get the new certificate, the open TLS connection stays; a broken key is rejected', async () => {
    const port = fb.broker.port('tls');
    const ca = readFileSync(certs.ca);
    const before = await handshake(port, { ca });
    const open = await connect(port, { protocol: 'mqtts', ca, clientId: 'tls-open' });
    makeDevCerts(dir); // new server certificate, same CA, same paths
    const r = fb.broker.reload('sighup');
    expect(r.result).toBe('applied');
    const after = await handshake(port, { ca });
    expect(after.authorized).toBe(true);
    expect(after.fingerprint256).not.toBe(before.fingerprint256);
    expect(open.connected).toBe(true);
    expect(fb.events('tls.certificate_loaded').some((f) => f['listener'] === 'tls')).toBe(true);

    // A key that does not match: the whole reload is refused and the certificate in use stays.
    const goodKey = readFileSync(certs.serverKey);
    writeFileSync(certs.serverKey, readFileSync(certs.caKey));
    const bad = fb.broker.reload('sighup');
    expect(bad.result).toBe('rejected');
    expect(bad.result === 'rejected' && bad.errors[0]).toMatchObject({ file: certs.serverKey, path: 'listeners[tls].tls.key', message: expect.stringContaining('does not match') });
    expect((await handshake(port, { ca })).fingerprint256).toBe(after.fingerprint256);
    writeFileSync(certs.serverKey, goodKey);
    await open.endAsync();
  });
});
