import { describe, it, expect, expectTypeOf, beforeEach, afterEach } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import {
  CONFIG_KEYS,
  ConfigError,
  DEFAULT_CONFIG,
  type Config,
  type ConfigKey,
  describeKey,
  loadConfig,
  validateConfig,
} from '../../src/server/config.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'junction-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(text: string, name = 'junction.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Runs `fn`, expects a ConfigError, returns it for field checks. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, got none');
}

function invalid(raw: unknown): ConfigError {
  return configError(() => validateConfig(raw, 'junction.yaml'));
}


/** The README's configuration reference: from its heading to the next top-level section. */
function configReference(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('## Configuration reference');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('defaults', () => {
  it('no file gives every default', () => {
    const c = loadConfig({});
    expect(c).toEqual(DEFAULT_CONFIG);
    expect(c.node.name).toBe(`junction@${hostname()}`);
    expect(c.mqtt).toMatchObject({ host: '0.0.0.0', port: 1883, maxKeepAlive: 65535, maxPacketSize: 1048576 });
    expect(c.mqtt).toMatchObject({ receiveMaximum: 32, maxInflight: 32, maxQueuedMessages: 100000, queueDropPolicy: 'oldest' });
    expect(c.mqtt).toMatchObject({ queueQos0: false, topicAliasMaximum: 10, maxTopicLevels: 128, connectTimeout: 10 });
    expect(c.mqtt.maxSessionExpiry).toBe(4294967295);
    expect(c.mqtt.retainAvailable && c.mqtt.sharedSubscriptions && c.mqtt.allowEmptyClientId).toBe(true);
    expect(c.storage).toEqual({ engine: 'auto', dir: resolve(process.cwd(), 'data'), sync: true });
    expect(c.log).toEqual({ level: 'info', format: 'json' });
  });

  it('an empty file or one with only comments gives every default', () => {
    expect(loadConfig({ file: writeConfig('') })).toEqual(DEFAULT_CONFIG);
    expect(loadConfig({ file: writeConfig('# nothing set yet\n') })).toEqual(DEFAULT_CONFIG);
  });

  it('a section whose keys are all commented out is empty, not an error', () => {
    expect(loadConfig({ file: writeConfig('mqtt:\n  # port: 1884\n') })).toEqual(DEFAULT_CONFIG);
  });

  it('is typed from the schema: numbers, booleans, enum unions, readonly', () => {
    expectTypeOf<Config['mqtt']['port']>().toEqualTypeOf<number>();
    expectTypeOf<Config['mqtt']['queueQos0']>().toEqualTypeOf<boolean>();
    expectTypeOf<Config['mqtt']['queueDropPolicy']>().toEqualTypeOf<'oldest' | 'newest'>();
    expectTypeOf<Config['storage']['engine']>().toEqualTypeOf<'auto' | 'rocksdb' | 'leveldb' | 'memory'>();
    expectTypeOf<Config['log']['level']>().toEqualTypeOf<'debug' | 'info' | 'warn' | 'error' | 'silent'>();
    expectTypeOf<Config['node']>().toEqualTypeOf<{ readonly name: string }>();
    expectTypeOf<'mqtt.maxKeepAlive'>().toExtend<ConfigKey>();
    expectTypeOf<'mqtt.maxKeepalive'>().not.toExtend<ConfigKey>();
  });

  it('the result is deeply frozen', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.mqtt)).toBe(true);
  });
});

describe('queues.bindings', () => {
  const reason = (v: unknown): string => {
    try {
      validateConfig({ queues: { bindings: v } }, 'j.yaml', '/');
    } catch (err) {
      return (err as ConfigError).message;
    }
    return 'valid';
  };
  it('checks each item and names it', () => {
    expect(reason([{ queue: 'q', filter: 'a/#' }])).toBe('valid');
    expect(reason('q')).toBe('j.yaml: queues.bindings: wrong type: expected a list of { queue: NAME, filter: TOPIC-FILTER }, got the string "q"');
    expect(reason([{ queue: 'q' }])).toMatch(/queues.bindings: item 1: filter must be a non-empty topic filter/);
    expect(reason([{ queue: 'q', filter: 'a', extra: 1 }])).toMatch(/item 1: unknown key extra/);
    expect(reason([{ queue: 'a+b', filter: 'a' }])).toMatch(/item 1: queue must be a non-empty name/);
  });
});

describe('a valid file', () => {
  it('sets every key', () => {
    const file = writeConfig(`
node:
  name: edge-7
metrics:
  enabled: false
  auth: token
  perObject: true
  perObjectMaxQueues: 50
  deliveryLatencySampleRate: 0.25
sys:
  interval: 0
  presence: false
mqtt:
  host: 127.0.0.1
  port: 0
  maxKeepAlive: 600
  maxPacketSize: 128
  receiveMaximum: 10
  maxInflight: 5
  maxQueuedMessages: 0
  queueDropPolicy: newest
  queueQos0: true
  topicAliasMaximum: 0
  maxTopicLength: 1024
  maxTopicLevels: 16
  maxClientIdLength: 23
  connectTimeout: 3600
  maxSessionExpiry: 0
  retainAvailable: false
  sharedSubscriptions: false
  wildcardSubscriptions: false
  subscriptionIdentifiers: false
  allowEmptyClientId: false
stomp:
  host: 127.0.0.2
  port: 0
  maxBodySize: 4096
  maxHeaderLine: 512
  maxHeaders: 20
  heartbeat: 0
  connectTimeout: 5
  topicMapping: rabbitmq
http:
  host: 127.0.0.3
  port: 8090
  mqttPath: /ws/mqtt
  stompPath: false
  allowedOrigins: [https://dash.example.com, 'http://localhost:8080']
  perMessageDeflate: true
tls:
  cert: tls/server.pem
  key: tls/server.key
  passphrase: secret
  ca: /etc/ssl/ca.pem
  minVersion: TLSv1.3
  ciphers: ECDHE-ECDSA-AES128-GCM-SHA256
  requestCert: true
  requireClientCert: true
  useIdentityAs: san
  mqttPort: 8884
  stompPort: 61615
auth:
  passwordFile: passwd
  aclFile: /etc/junction/acl
  allowAnonymous: true
  subscribeDeniedCode: 0x80
  http:
    url: http://127.0.0.1:9000/auth
    timeout: 500
    cacheSeconds: 0
  lockout:
    attempts: 3
    window: 10
    duration: 30
queues:
  maxDeliveries: 3
  deadLetterExpired: true
  prefetch: 1
  bindings:
    - { queue: orders, filter: shop/+/order }
    - queue: audit
      filter: '#'
limits:
  maxConnections: 10
  listenerMaxConnections: 5
  maxConnectionsPerAddress: 2
  connectRate: 7
  connectBurst: 9
  maxSubscriptions: 0
  maxQueuedBytes: 1024
  publishRate: 100
  publishBurst: 200
  publishRateAction: disconnect
  outputBufferSize: 65536
  drainTimeout: 0
  dropLogInterval: 1
storage:
  engine: memory
  dir: /var/lib/junction
  sync: false
admin:
  bind: 127.0.0.1:8081
  tokens:
    - { name: ops, sha256: "${'AB'.repeat(32)}", role: admin }
log:
  level: silent
  format: text
  file: logs/junction.log
trace:
  maxTraces: 3
  maxFileSize: 8192
  dir: /var/tmp/traces
`);
    expect(loadConfig({ file })).toEqual({
      node: { name: 'edge-7' },
      metrics: { enabled: false, auth: 'token', perObject: true, perObjectMaxQueues: 50, deliveryLatencySampleRate: 0.25 },
      sys: { interval: 0, presence: false },
      mqtt: {
        host: '127.0.0.1',
        port: 0,
        maxKeepAlive: 600,
        maxPacketSize: 128,
        receiveMaximum: 10,
        maxInflight: 5,
        maxQueuedMessages: 0,
        queueDropPolicy: 'newest',
        queueQos0: true,
        topicAliasMaximum: 0,
        maxTopicLength: 1024,
        maxTopicLevels: 16,
        maxClientIdLength: 23,
        connectTimeout: 3600,
        maxSessionExpiry: 0,
        retainAvailable: false,
        sharedSubscriptions: false,
        wildcardSubscriptions: false,
        subscriptionIdentifiers: false,
        allowEmptyClientId: false,
      },
      stomp: {
        host: '127.0.0.2',
        port: 0,
        maxBodySize: 4096,
        maxHeaderLine: 512,
        maxHeaders: 20,
        heartbeat: 0,
        connectTimeout: 5,
        topicMapping: 'rabbitmq',
      },
      http: {
        host: '127.0.0.3',
        port: 8090,
        mqttPath: '/ws/mqtt',
        stompPath: false,
        allowedOrigins: ['https://dash.example.com', 'http://localhost:8080'],
        perMessageDeflate: true,
      },
      tls: {
        cert: join(dirname(file), 'tls/server.pem'),
        key: join(dirname(file), 'tls/server.key'),
        passphrase: 'secret',
        ca: '/etc/ssl/ca.pem',
        minVersion: 'TLSv1.3',
        ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
        requestCert: true,
        requireClientCert: true,
        useIdentityAs: 'san',
        mqttPort: 8884,
        stompPort: 61615,
      },
      auth: {
        passwordFile: join(dirname(file), 'passwd'),
        aclFile: '/etc/junction/acl',
        allowAnonymous: true,
        subscribeDeniedCode: 0x80,
        http: { url: 'http://127.0.0.1:9000/auth', timeout: 500, cacheSeconds: 0 },
        lockout: { attempts: 3, window: 10, duration: 30 },
      },
      listeners: undefined,
      queues: {
        maxDeliveries: 3,
        deadLetterExpired: true,
        prefetch: 1,
        bindings: [
          { queue: 'orders', filter: 'shop/+/order' },
          { queue: 'audit', filter: '#' },
        ],
      },
      limits: {
        maxConnections: 10,
        listenerMaxConnections: 5,
        maxConnectionsPerAddress: 2,
        connectRate: 7,
        connectBurst: 9,
        maxSubscriptions: 0,
        maxQueuedBytes: 1024,
        publishRate: 100,
        publishBurst: 200,
        publishRateAction: 'disconnect',
        outputBufferSize: 65536,
        drainTimeout: 0,
        dropLogInterval: 1,
      },
      storage: { engine: 'memory', dir: '/var/lib/junction', sync: false },
      admin: { bind: { host: '127.0.0.1', port: 8081 }, tokens: [{ name: 'ops', sha256: 'ab'.repeat(32), role: 'admin' }] },
      log: { level: 'silent', format: 'text', file: join(dirname(file), 'logs/junction.log') },
      trace: { maxTraces: 3, maxFileSize: 8192, dir: '/var/tmp/traces' },
    });
  });

  it('keys left out keep their defaults', () => {
    const c = loadConfig({ file: writeConfig('mqtt:\n  port: 1884\n') });
    expect(c.mqtt.port).toBe(1884);
    expect(c.mqtt.host).toBe('0.0.0.0');
    expect(c.log).toEqual(DEFAULT_CONFIG.log);
  });

  it('accepts the range ends', () => {
    expect(validateConfig({ mqtt: { port: 65535, maxPacketSize: 268435455 } }, 'x.yaml').mqtt.port).toBe(65535);
    expect(validateConfig({ mqtt: { maxSessionExpiry: 4294967295, connectTimeout: 1 } }, 'x.yaml').mqtt.connectTimeout).toBe(1);
  });
});

describe('errors', () => {
  it('ConfigError carries file, key path and reason, and a message made of them', () => {
    const e = invalid({ mqtt: { port: 70000 } });
    expect(e.file).toBe('junction.yaml');
    expect(e.keyPath).toBe('mqtt.port');
    expect(e.reason).toBe('out of range: expected an integer 0..65535, got 70000');
    expect(e.message).toBe(`junction.yaml: mqtt.port: ${e.reason}`);
  });

  it('unknown key, suggesting the closest known key', () => {
    const e = invalid({ mqtt: { maxKeepalive: 60 } });
    expect(e.keyPath).toBe('mqtt.maxKeepalive');
    expect(e.reason).toBe('unknown key (did you mean mqtt.maxKeepAlive?)');
    expect(invalid({ mqtt: { prot: 1 } }).reason).toBe('unknown key (did you mean mqtt.port?)');
    expect(invalid({ node: { port: 1 } }).reason).toBe('unknown key (did you mean mqtt.port?)');
    expect(invalid({ port: 1 }).reason).toBe('unknown key (did you mean mqtt.port?)');
  });

  it('unknown key with nothing close says only that', () => {
    const e = invalid({ mqtt: { bananas: true } });
    expect(e.message).toBe('junction.yaml: mqtt.bananas: unknown key');
  });

  it('unknown sections, top-level and nested', () => {
    expect(invalid({ mqtts: { port: 1 } }).message).toBe('junction.yaml: mqtts: unknown key (did you mean mqtt?)');
    const nested = invalid({ mqtt: { tls: { cert: 'a.pem' } } });
    expect(nested.keyPath).toBe('mqtt.tls');
    expect(nested.reason).toMatch(/^unknown key/);
  });

  it('a value where a section belongs, or a section where a value belongs', () => {
    expect(invalid({ mqtt: 1883 }).message).toBe(
      'junction.yaml: mqtt: wrong type: expected a mapping with keys ' +
        'host, port, maxKeepAlive, maxPacketSize, receiveMaximum, maxInflight, maxQueuedMessages, queueDropPolicy, ' +
        'queueQos0, topicAliasMaximum, maxTopicLength, maxTopicLevels, maxClientIdLength, connectTimeout, ' +
        'maxSessionExpiry, retainAvailable, sharedSubscriptions, wildcardSubscriptions, subscriptionIdentifiers, ' +
        'allowEmptyClientId, got 1883',
    );
    expect(invalid({ mqtt: { port: { value: 1 } } }).reason).toBe('wrong type: expected an integer 0..65535, got a mapping');
    expect(invalid(['mqtt']).message).toBe(
      'junction.yaml: wrong type: expected a mapping with keys node, metrics, sys, mqtt, stomp, http, tls, auth, listeners, queues, limits, storage, admin, log, trace, got a list',
    );
  });

  it('numbers must be integers and must not be quoted', () => {
    const quoted = invalid({ mqtt: { port: '1883' } });
    expect(quoted.reason).toBe('wrong type: expected an integer 0..65535, got the string "1883" (write numbers without quotes)');
    expect(invalid({ mqtt: { port: 'auto' } }).reason).toBe('wrong type: expected an integer 0..65535, got the string "auto"');
    expect(invalid({ mqtt: { port: 1883.5 } }).reason).toBe('wrong type: expected an integer 0..65535, got 1883.5');
    expect(invalid({ mqtt: { maxQueuedMessages: true } }).reason).toBe('wrong type: expected an integer >= 0, got true');
  });

  it('booleans are strict: no quoted true, no yes/on', () => {
    expect(invalid({ storage: { sync: 'true' } }).reason).toBe(
      'wrong type: expected true or false, got the string "true" (write booleans without quotes)',
    );
    expect(invalid({ mqtt: { queueQos0: 'yes' } }).reason).toBe('wrong type: expected true or false, got the string "yes"');
    expect(invalid({ mqtt: { queueQos0: 1 } }).reason).toBe('wrong type: expected true or false, got 1');
  });

  it('an empty value is an error that says how to get the default', () => {
    expect(invalid({ mqtt: { port: null } }).reason).toBe(
      'wrong type: expected an integer 0..65535, got an empty value (remove the key to get the default)',
    );
    expect(invalid({ node: { name: '' } }).reason).toBe('expected a non-empty string, got an empty string');
  });

  it('out of range, at both ends', () => {
    expect(invalid({ mqtt: { port: -1 } }).reason).toBe('out of range: expected an integer 0..65535, got -1');
    expect(invalid({ mqtt: { maxPacketSize: 127 } }).reason).toBe('out of range: expected an integer 128..268435455, got 127');
    expect(invalid({ mqtt: { maxPacketSize: 268435456 } }).keyPath).toBe('mqtt.maxPacketSize');
    expect(invalid({ mqtt: { receiveMaximum: 0 } }).reason).toBe('out of range: expected an integer 1..65535, got 0');
    expect(invalid({ mqtt: { connectTimeout: 3601 } }).reason).toBe('out of range: expected an integer 1..3600, got 3601');
    expect(invalid({ mqtt: { maxSessionExpiry: 4294967296 } }).keyPath).toBe('mqtt.maxSessionExpiry');
    expect(invalid({ mqtt: { maxQueuedMessages: -1 } }).reason).toBe('out of range: expected an integer >= 0, got -1');
  });

  it('a value outside an enum', () => {
    expect(invalid({ log: { level: 'verbose' } }).message).toBe(
      'junction.yaml: log.level: expected one of debug, info, warn, error, silent; got "verbose"',
    );
    expect(invalid({ storage: { engine: 'lmdb' } }).reason).toBe('expected one of auto, rocksdb, leveldb, memory; got "lmdb"');
    expect(invalid({ mqtt: { queueDropPolicy: 1 } }).reason).toBe('wrong type: expected one of oldest, newest; got 1');
  });

  it('the same errors come out of a file, with the file path', () => {
    const file = writeConfig('mqtt:\n  port: "1883"\n');
    const e = configError(() => loadConfig({ file }));
    expect(e.file).toBe(file);
    expect(e.message).toBe(`${file}: mqtt.port: wrong type: expected an integer 0..65535, got the string "1883" (write numbers without quotes)`);
    // YAML 1.2: `on` is a string, not a boolean.
    expect(configError(() => loadConfig({ file: writeConfig('storage:\n  sync: on\n') })).keyPath).toBe('storage.sync');
  });

  it('YAML syntax errors give file, line, column and the parser reason', () => {
    const dup = writeConfig('mqtt:\n  port: 1\n  port: 2\n');
    const e = configError(() => loadConfig({ file: dup }));
    expect([e.file, e.keyPath, e.line, e.column]).toEqual([dup, '', 3, 3]);
    expect(e.message).toBe(`${dup}:3:3: YAML syntax error: Map keys must be unique`);

    const tab = configError(() => loadConfig({ file: writeConfig('mqtt:\n  port: 1\n\thost: x\n') }));
    expect(tab.line).toBe(3);
    expect(tab.reason).toMatch(/^YAML syntax error: /);

    const flow = configError(() => loadConfig({ file: writeConfig('log:\n  level: [info\n') }));
    expect(flow.reason).toMatch(/^YAML syntax error: .*\]/);
  });

  it('more than one YAML document is a syntax error', () => {
    const e = configError(() => loadConfig({ file: writeConfig('mqtt:\n  port: 1\n---\nmqtt:\n  port: 2\n') }));
    expect(e.reason).toBe('YAML syntax error: a config file holds one YAML document');
    expect(e.line).toBe(3);
  });

  it('a missing file is named in the error', () => {
    const file = join(dir, 'nope.yaml');
    const e = configError(() => loadConfig({ file }));
    expect(e.message).toBe(`${file}: cannot read config file: file not found`);
  });

  it('a directory given as the file is named in the error', () => {
    expect(configError(() => loadConfig({ file: dir })).message).toBe(`${dir}: cannot read config file: is a directory`);
  });
});

describe('overrides', () => {
  it('win over the file and are converted from flag text', () => {
    const file = writeConfig('mqtt:\n  port: 1884\n  host: 10.0.0.1\nlog:\n  level: debug\n');
    const c = loadConfig({
      file,
      overrides: [
        { key: 'mqtt.port', value: '0', source: '--mqtt-port' },
        { key: 'log.level', value: 'warn', source: '--log-level' },
      ],
    });
    expect(c.mqtt.port).toBe(0);
    expect(c.mqtt.host).toBe('10.0.0.1');
    expect(c.log.level).toBe('warn');
  });

  it('apply without a file, and accept typed values', () => {
    const c = loadConfig({ overrides: [{ key: 'mqtt.port', value: 0 }, { key: 'storage.sync', value: 'false' }] });
    expect(c.mqtt.port).toBe(0);
    expect(c.storage.sync).toBe(false);
  });

  it('are validated like the file, naming the flag', () => {
    const e = configError(() => loadConfig({ overrides: [{ key: 'mqtt.port', value: 'abc', source: '--mqtt-port' }] }));
    expect([e.file, e.keyPath]).toEqual(['command line', '--mqtt-port']);
    expect(e.message).toBe('command line: --mqtt-port: wrong type: expected an integer 0..65535, got the string "abc"');
    const range = configError(() => loadConfig({ overrides: [{ key: 'mqtt.port', value: '65536', source: '--mqtt-port' }] }));
    expect(range.reason).toBe('out of range: expected an integer 0..65535, got 65536');
    const engine = configError(() => loadConfig({ overrides: [{ key: 'storage.engine', value: 'lmdb', source: '--storage' }] }));
    expect(engine.message).toBe('command line: --storage: expected one of auto, rocksdb, leveldb, memory; got "lmdb"');
  });

  it('name the key when no flag is given', () => {
    const e = configError(() => loadConfig({ overrides: [{ key: 'mqtt.connectTimeout', value: 0 }] }));
    expect(e.keyPath).toBe('mqtt.connectTimeout');
  });

  it('are checked after the file: a bad file still fails even if a flag would replace the value', () => {
    const file = writeConfig('mqtt:\n  port: "1883"\n');
    const e = configError(() => loadConfig({ file, overrides: [{ key: 'mqtt.port', value: '1' }] }));
    expect(e.file).toBe(file);
  });
});

describe('storage.dir', () => {
  it('resolves relative to the config file when set in it', () => {
    mkdirSync(join(dir, 'etc'));
    const file = writeConfig('storage:\n  dir: ../var/data\n', 'etc/junction.yaml');
    expect(loadConfig({ file }).storage.dir).toBe(join(dir, 'var', 'data'));
  });

  it('keeps an absolute path', () => {
    const file = writeConfig('storage:\n  dir: /srv/junction\n');
    expect(loadConfig({ file }).storage.dir).toBe('/srv/junction');
  });

  it('resolves relative to the working directory when set by flag, even with a file', () => {
    const file = writeConfig('storage:\n  dir: from-file\n');
    const c = loadConfig({ file, overrides: [{ key: 'storage.dir', value: 'from-flag', source: '--data-dir' }] });
    expect(c.storage.dir).toBe(resolve(process.cwd(), 'from-flag'));
  });

  it('keeps its default relative to the working directory when the file does not set it', () => {
    expect(loadConfig({ file: writeConfig('log:\n  level: warn\n') }).storage.dir).toBe(resolve(process.cwd(), 'data'));
  });

  it('validateConfig resolves against the named file, or a given base directory', () => {
    expect(validateConfig({ storage: { dir: 'd' } }, join(dir, 'j.yaml')).storage.dir).toBe(join(dir, 'd'));
    expect(validateConfig({ storage: { dir: 'd' } }, 'test', '/base').storage.dir).toBe('/base/d');
  });
});

describe('README configuration reference', () => {
  const doc = configReference();

  it('has one table row per key, with the schema type and default', () => {
    const rows = new Map<string, string[]>();
    for (const line of doc.split('\n')) {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      const key = /^`([\w.]+)`$/.exec(cells[0] ?? '')?.[1];
      // Dotted keys, and the one top-level key (`listeners`); other 4-column tables have neither.
      if (key !== undefined && cells.length === 4 && (key.includes('.') || key === 'listeners')) rows.set(key, cells);
    }
    expect([...rows.keys()]).toEqual(CONFIG_KEYS);
    for (const key of CONFIG_KEYS) {
      const d = describeKey(key);
      const [, type, def] = rows.get(key) ?? [];
      expect(type, key).toBe(d.expected);
      expect(def, key).toBe(d.defaultText ?? `\`${String(d.default)}\``);
    }
  });

  it('has a full example that is valid and sets every default', () => {
    const example = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    expect(validateConfig(parse(example ?? ''), 'example', process.cwd())).toEqual(DEFAULT_CONFIG);
    for (const key of CONFIG_KEYS) expect(example, key).toContain(`${key.split('.').at(-1)}:`);
  });
});
