// brokers.mjs: the brokers bench/run.mjs compares, one entry each.
//
// A broker is { name, listeners, prepare(ctx), command(run) }:
// - listeners: the kinds of listener it can open for the load: `mqtt` (MQTT over TCP), `mqtts` (MQTT
//   over TLS), `mqtt-ws` (MQTT over WebSocket, path /mqtt), `stomp` (STOMP over TCP). A scenario names
//   one (SCENARIOS in run.mjs, default `mqtt`); brokers without it sit that scenario out.
// - prepare({ cacheDir, repo, node }) runs once per bench run, only for brokers some chosen scenario
//   uses. It returns { skip: 'one-line reason' } when the broker cannot run here (binary missing,
//   install failed), else { version, warning?, ... }; the whole object comes back to command() as
//   `prepared`. It may be async.
// - command({ port, spare, listener, certs, dir, extra, prepared }) returns { file, args, env?, files? }
//   for one fresh broker with its `listener` on 127.0.0.1:port; `spare` is another free port for
//   what the broker needs besides (Mosquitto's TCP listener next to a WebSocket one, RabbitMQ's
//   Erlang distribution port); every other listener it opens by default must go to a free port (0)
//   or stay closed, so that runs never collide. `certs` is { ca, cert, key } (PEM files) for `mqtts`.
//   `file` must BE the broker, not a shell wrapper (a script that execs it is fine: the pid stays):
//   run.mjs reads CPU time and peak RSS from /proc/<pid> of the process it spawns. `dir` is an empty
//   directory private to this run (config, data); `files` maps names in it to contents written
//   before the start. `extra` is the scenario's entry for this broker (SCENARIOS in run.mjs), `{dir}`
//   in its strings already replaced; what each broker reads from it is said above its definition.
// - unavailable({ extra, prepared }) (optional) returns a one-line reason when this broker cannot run
//   a scenario with these extras here (Junction on RocksDB where rocksdb does not load), else undefined.
// - startTimeoutMs, stopTimeoutMs (optional): when the defaults in run.mjs are too short for it.
// - cleanup(prepared) (optional): stops what prepare() started (RabbitMQ's epmd); run at the end.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort, waitForPort } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Installed when no aedes is there yet; the reference numbers in README.md were taken with it. */
const AEDES_VERSION = '1.2.0';

/**
 * Junction from this repo's build, run by the Node binary `node` given to prepare() (run.mjs `--node`,
 * default the one running the bench). extra.storage: the engine for `--storage` (default memory);
 * extra.args: more arguments (e.g. `--data-dir`); extra.files (name -> text) are written into the run's
 * directory first, e.g. a config file for `--config`.
 */
const junction = {
  name: 'junction',
  listeners: ['mqtt', 'mqtts', 'mqtt-ws', 'stomp'],
  prepare({ repo, node = process.execPath }) {
    const main = path.join(repo, 'dist/src/server/main.js');
    if (!fs.existsSync(main)) return { skip: `${main} not found: run \`npm run build\` first` };
    const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout?.trim();
    if (!nodeVersion) return { skip: `${node} --version printed nothing: not a Node.js binary` };
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
    const rev = spawnSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim();
    const stale = newestSource(repo) > fs.statSync(main).mtimeMs;
    return {
      version: `${pkg.version}${rev ? ` (${rev})` : ''} on node ${nodeVersion}`,
      warning: stale ? 'dist/ is older than the TypeScript sources: run `npm run build` to bench the current code' : undefined,
      main,
      node,
      nodeVersion,
      rocksdb: rocksdbProbe(repo, node),
    };
  },
  unavailable({ extra, prepared }) {
    // Started anyway, Junction would refuse with the same reason; asking first makes it a skip, not a failure.
    if (extra.storage === 'rocksdb' && !prepared.rocksdb.ok) return prepared.rocksdb.detail;
    return undefined;
  },
  command({ port, listener, certs, dir, extra, prepared }) {
    // MQTT (1883), STOMP (61613) and HTTP/WebSocket (8083) open by default: the one under load gets
    // `port`, the others 0 (any free port), so two runs, or a run and a Junction already on this
    // machine, never collide. TLS opens MQTT over TLS and STOMP over TLS (8883, 61614): their ports
    // are config keys (tls.mqttPort, tls.stompPort), hence a config file.
    const at = (kind) => String(listener === kind ? port : 0);
    const files = { ...extra.files };
    const args = [prepared.main, 'start', '--host', '127.0.0.1', '--mqtt-port', at('mqtt'), '--stomp-port', at('stomp'), '--http-port', at('mqtt-ws')];
    if (listener === 'mqtts') {
      files['tls.yaml'] = `tls:\n  cert: ${JSON.stringify(certs.cert)}\n  key: ${JSON.stringify(certs.key)}\n  mqttPort: ${port}\n  stompPort: 0\n`;
      args.push('--config', path.join(dir, 'tls.yaml'));
    }
    args.push('--storage', extra.storage ?? 'memory', ...(extra.args ?? []));
    return { file: prepared.node, args, files };
  },
};

/**
 * Whether rocksdb loads under `node`, asked of Junction's own check (storage/engine-choice.ts, which
 * loads it in a child process because on Node 22/24 the load aborts the process): { ok, detail }.
 */
function rocksdbProbe(repo, node) {
  const url = pathToFileURL(path.join(repo, 'dist/storage/engine-choice.js')).href;
  const r = spawnSync(node, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(url)}); console.log(JSON.stringify(m.rocksdbLoads()))`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  try {
    const probe = JSON.parse(r.stdout.trim().split('\n').pop());
    return { ok: probe.ok === true, detail: String(probe.detail).replace(/\s+/g, ' ') };
  } catch {
    return { ok: false, detail: `cannot tell whether rocksdb loads: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}` };
  }
}

/**
 * Mosquitto in memory with unlimited queues, like shared/tools/mosq.sh. extra.conf: more config lines.
 * TLS with the same certificate and key as Junction's; WebSocket through its built-in libwebsockets.
 */
const mosquitto = {
  name: 'mosquitto',
  listeners: ['mqtt', 'mqtts', 'mqtt-ws'],
  prepare() {
    const bin = which('mosquitto', ['/usr/sbin', '/usr/local/sbin']);
    if (!bin) return { skip: 'mosquitto not installed (Debian/Ubuntu: apt-get install -y mosquitto)' };
    const help = spawnSync(bin, ['-h'], { encoding: 'utf8' });
    return { version: /version (\S+)/.exec(`${help.stdout}${help.stderr}`)?.[1] ?? '?', bin };
  },
  command({ port, spare, listener, certs, dir, extra, prepared }) {
    const listen = {
      mqtt: [`listener ${port} 127.0.0.1`],
      mqtts: [`listener ${port} 127.0.0.1`, `certfile ${certs?.cert}`, `keyfile ${certs?.key}`],
      // 2.0.11 exits with "Unable to start any listening sockets" when its only listener is a
      // WebSocket one: a plain one on the spare port goes with it.
      'mqtt-ws': [`listener ${spare} 127.0.0.1`, `listener ${port} 127.0.0.1`, 'protocol websockets'],
    }[listener];
    const conf = [
      ...listen,
      'allow_anonymous true',
      'max_queued_messages 0',
      'max_inflight_messages 0',
      // Started as root, mosquitto drops to user `mosquitto`, which may not exist or read `dir`.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      ...(extra.conf ?? []),
    ];
    return {
      file: prepared.bin,
      args: ['-c', path.join(dir, 'mosquitto.conf')],
      files: { 'mosquitto.conf': conf.join('\n') + '\n' },
    };
  },
};

/**
 * Aedes with its default in-memory persistence, via bench/aedes.mjs, on the Node running the bench
 * (`--node` is for Junction only). extra.env: more environment.
 */
const aedes = {
  name: 'aedes',
  listeners: ['mqtt'],
  prepare({ cacheDir }) {
    const dir = process.env.AEDES_PEER_DIR || path.join(cacheDir, 'aedes-peer');
    let version = aedesVersion(dir);
    if (!version && !process.env.AEDES_PEER_DIR) {
      process.stderr.write(`installing aedes@${AEDES_VERSION} into ${dir} (once) ...\n`);
      fs.mkdirSync(dir, { recursive: true });
      const pkg = path.join(dir, 'package.json');
      if (!fs.existsSync(pkg)) fs.writeFileSync(pkg, '{ "private": true }\n');
      const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `aedes@${AEDES_VERSION}`], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      if (npm.status === 0) version = aedesVersion(dir);
    }
    if (!version) return { skip: `aedes not installed in ${dir} (run \`npm install aedes\` there, or set AEDES_PEER_DIR)` };
    return { version, dir };
  },
  command({ port, extra, prepared }) {
    return {
      file: process.execPath,
      args: [path.join(here, 'aedes.mjs')],
      env: { AEDES_PEER_DIR: prepared.dir, AEDES_PORT: String(port), ...extra.env },
    };
  },
};

/**
 * RabbitMQ (Debian's rabbitmq-server) with its STOMP plugin, for the STOMP scenarios: a private node
 * per run (node name, data and log dirs, config, plugin list all in the run's dir), no AMQP listener,
 * STOMP on the port given, the Erlang distribution on `spare`. The Erlang port mapper (epmd) is one
 * process of our own for the whole bench run, on a free port (ERL_EPMD_PORT), stopped by cleanup();
 * otherwise the node would start (or join) a system-wide epmd on 4369 that outlives the bench.
 * `rabbitmq-server` with RABBITMQ_ALLOW_INPUT set execs erl, which execs beam.smp: the pid spawned
 * is the broker's. extra.conf: more rabbitmq.conf lines.
 */
const RABBITMQ_HOME = '/usr/lib/rabbitmq';
const rabbitmq = {
  name: 'rabbitmq',
  listeners: ['stomp'],
  startTimeoutMs: 120_000, // a fresh node boots in 5-15 s on a quiet 2-core machine, more on a busy one
  stopTimeoutMs: 30_000,
  async prepare() {
    const server = path.join(RABBITMQ_HOME, 'bin/rabbitmq-server');
    if (!fs.existsSync(server)) return { skip: `${server} not found (Debian/Ubuntu: apt-get install -y rabbitmq-server)` };
    const lib = fs.readdirSync(path.join(RABBITMQ_HOME, 'lib')).find((d) => d.startsWith('rabbitmq_server-'));
    const plugins = lib ? fs.readdirSync(path.join(RABBITMQ_HOME, 'lib', lib, 'plugins')) : [];
    if (!plugins.some((p) => p.startsWith('rabbitmq_stomp-'))) return { skip: `no rabbitmq_stomp plugin in ${RABBITMQ_HOME}/lib/${lib ?? '?'}/plugins` };
    const epmd = which('epmd', ['/usr/lib/erlang/bin']);
    if (!epmd) return { skip: 'epmd (Erlang) not found' };
    const epmdPort = await freePort();
    const child = spawn(epmd, ['-port', String(epmdPort)], { stdio: 'ignore' });
    const up = await waitForPort(epmdPort, 10_000);
    if (up !== true) {
      child.kill('SIGKILL');
      return { skip: `epmd: ${up}` };
    }
    return { version: lib.slice('rabbitmq_server-'.length), server, epmd: child, epmdPort };
  },
  cleanup(prepared) {
    prepared.epmd?.kill('SIGTERM');
  },
  command({ port, spare, dir, extra, prepared }) {
    const conf = [
      'listeners.tcp = none', // no AMQP listener: the load is STOMP only
      `stomp.listeners.tcp.1 = 127.0.0.1:${port}`,
      'loopback_users = none',
      ...(extra.conf ?? []),
    ];
    return {
      file: prepared.server,
      args: [],
      env: {
        HOME: dir, // the Erlang cookie
        ERL_EPMD_PORT: String(prepared.epmdPort),
        RABBITMQ_NODENAME: `bench${process.pid}p${port}@localhost`,
        RABBITMQ_DIST_PORT: String(spare),
        RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
        RABBITMQ_LOG_BASE: path.join(dir, 'log'),
        RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'), // + .conf
        RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'), // absent
        RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'), // absent: not /etc/rabbitmq's
        RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
        RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
        RABBITMQ_ALLOW_INPUT: '1', // exec erl in the foreground (else the script forks and waits) ...
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-noinput', // ... without a shell reading stdin
      },
      files: { 'rabbitmq.conf': conf.join('\n') + '\n', enabled_plugins: '[rabbitmq_stomp].\n' },
    };
  },
};

export const BROKERS = { junction, mosquitto, aedes, rabbitmq };

function aedesVersion(dir) {
  try {
    createRequire(path.join(dir, 'package.json')).resolve('aedes');
    return JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/aedes/package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function which(name, extraDirs) {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs]) {
    const file = path.join(dir || '.', name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}

/** Newest mtime (ms) of the .ts files the build compiles, to warn about a stale dist/. */
function newestSource(repo) {
  let newest = 0;
  for (const top of ['src', 'protocols', 'storage']) {
    const dir = path.join(repo, top);
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir, { recursive: true })) {
      if (String(f).endsWith('.ts')) newest = Math.max(newest, fs.statSync(path.join(dir, String(f))).mtimeMs);
    }
  }
  return newest;
}
