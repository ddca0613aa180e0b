// run.mjs: `npm run bench` — Junction side by side with Mosquitto and Aedes (MQTT) and RabbitMQ (STOMP),
// in one run, on this machine.
//
// For every scenario and round it starts each broker fresh on a free port, alternating A B C A B C
// so slow drifts of a shared machine hit all brokers alike, drives it with bench/mqttload.c or
// bench/stompload.c (closed-loop load generators, compiled on first use), reads the broker's CPU time
// and peak RSS from /proc, and stops it. Then it prints per scenario the medians and the ratio to the
// scenario's reference broker (Mosquitto for MQTT, RabbitMQ for STOMP).
// Exit status: 0 all runs fine; 1 nothing could run (setup or usage error); 2 a run failed or lost messages.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BROKERS } from './brokers.mjs';
import { buildLoader, cacheDir, devCerts, freePort, repo, waitForPort } from './common.mjs';

// Scenarios by name. `load`: load generator arguments (besides --port, --duration, --warmup).
// `listener` (default `mqtt`): what the load connects to (brokers.mjs: mqtt, mqtts, mqtt-ws, stomp);
// `stomp` runs stompload.c, the others mqttload.c; brokers without that listener sit the scenario out.
// `brokers` (optional): per-broker extras for brokers.mjs (see the persist-* scenarios), where `{dir}`
// is the run's private directory; a broker set to null is skipped for that scenario. A scenario one
// of whose brokers cannot run it here (brokers.mjs `unavailable`, e.g. Junction on RocksDB under
// Node 22/24) is skipped whole, with one line saying why: its point is that comparison.
// `baseline` (default mosquitto): the broker the ratios are to. `unit` (default delivered/s): what
// the rate counts. `vs`: the plain TCP twin of a TLS or WebSocket scenario; when both ran, the table
// adds each broker's rate here divided by its rate there. `group`: opt-in scenarios, run with
// `--scenarios <group>` (or by name), not by default.
const PAIRS_QOS1 = ['--scenario', 'pairs', '--pubs', '20', '--qos', '1', '--window', '16'];
// Persistent sessions: Junction's data dir is a subdirectory because it must start empty (the run's
// dir holds broker.log); Mosquitto keeps everything in memory and writes (and fsyncs) mosquitto.db
// only at exit and every autosave_interval (30 min by default), never per message; Aedes has no disk
// persistence built in (bench/README.md says why aedes-persistence-level is not used).
const MOSQUITTO_PERSIST = { conf: ['persistence true', 'persistence_location {dir}/'] };
const JUNCTION_DATA = ['--data-dir', '{dir}/data'];
// STOMP: 10 producers and 10 consumers; RabbitMQ's STOMP plugin is the reference. Topic messages are
// not stored by either broker (RabbitMQ's subscription queues are exclusive, non-durable), so Junction
// runs in memory there; the queue scenario is the durable path: Junction on RocksDB with every batch
// fsynced before the RECEIPT, RabbitMQ with a durable queue (/queue/ destinations are declared durable)
// and persistent messages, whose RECEIPT waits for its publisher confirm.
const STOMP = { group: 'stomp', listener: 'stomp', baseline: 'rabbitmq' };
const STOMP_PEERS = ['--producers', '10', '--consumers', '10'];
// Transports: the same load over TCP, TLS and WebSocket; the TLS and WebSocket scenarios name their TCP
// twin in `vs`. Connection rate: 8 threads, each in a loop of connect (+ TLS handshake, + WebSocket
// upgrade), CONNECT -> CONNACK, DISCONNECT, the broker's close; p50/p99 are of the time from socket()
// to CONNACK. Mosquitto gets `set_tcp_nodelay true` in all of them: Junction sets TCP_NODELAY on every
// socket, and with Mosquitto's default (Nagle on) a TLS handshake waits for the client's delayed ACK,
// which held it to ~160 connects/s at p50 47 ms instead of ~700/s at 6 ms (bench/README.md).
const TRANSPORTS = { group: 'transports', brokers: { mosquitto: { conf: ['set_tcp_nodelay true'] }, aedes: null } };
const CONNECT = ['--scenario', 'connect', '--conns', '8'];
const SCENARIOS = {
  fanout: { about: '1 publisher -> 100 subscribers, one topic, QoS 0', load: ['--scenario', 'fanout', '--subs', '100', '--qos', '0'] },
  fanin: { about: '20 publishers -> 1 subscriber on bench/#, QoS 0', load: ['--scenario', 'fanin', '--pubs', '20', '--qos', '0'] },
  'pairs-qos1': {
    about: '20 publisher/subscriber pairs, QoS 1, window 16',
    load: PAIRS_QOS1,
  },
  // The engine is named, not `auto`, so that each table is one engine's number on every Node version.
  'persist-qos1': {
    about: 'pairs-qos1 with persistent sessions; Junction on RocksDB, every batch fsynced',
    load: [...PAIRS_QOS1, '--clean', '0'],
    brokers: { junction: { storage: 'rocksdb', args: JUNCTION_DATA }, mosquitto: MOSQUITTO_PERSIST },
  },
  'persist-qos1-leveldb': {
    about: 'persist-qos1 with Junction on LevelDB, every batch fsynced',
    load: [...PAIRS_QOS1, '--clean', '0'],
    brokers: {
      junction: { storage: 'leveldb', args: JUNCTION_DATA },
      mosquitto: MOSQUITTO_PERSIST,
      aedes: null, // same in-memory Aedes as in persist-qos1: one measurement of it is enough
    },
  },
  'persist-qos1-nosync': {
    about: 'persist-qos1 with Junction storage.sync: false (RocksDB without fsync)',
    load: [...PAIRS_QOS1, '--clean', '0'],
    brokers: {
      junction: {
        storage: 'rocksdb',
        args: ['--config', '{dir}/nosync.yaml', ...JUNCTION_DATA],
        files: { 'nosync.yaml': 'storage:\n  sync: false\n' },
      },
      mosquitto: MOSQUITTO_PERSIST,
      aedes: null, // same in-memory Aedes as in persist-qos1: one measurement of it is enough
    },
  },
  'stomp-topic': {
    ...STOMP,
    about: '10 producers SEND to /topic/bench -> 10 consumers (ack auto), non-persistent',
    load: [...STOMP_PEERS, '--dest', '/topic/bench', '--window', '64'],
  },
  'stomp-topic-receipts': {
    ...STOMP,
    about: 'stomp-topic with persistent:true and a receipt on every SEND, window 16',
    load: [...STOMP_PEERS, '--dest', '/topic/bench', '--persistent', '1', '--receipts', '1', '--window', '16'],
  },
  'stomp-queue': {
    ...STOMP,
    about: '10 producers SEND persistent:true with receipts to /queue/bench -> 10 consumers, client-individual ACKs, prefetch 64; Junction on RocksDB, fsync per batch',
    load: [...STOMP_PEERS, '--dest', '/queue/bench', '--persistent', '1', '--receipts', '1', '--window', '16', '--prefetch', '64'],
    brokers: { junction: { storage: 'rocksdb', args: JUNCTION_DATA } },
  },
  'tcp-pairs-qos1': { ...TRANSPORTS, about: 'pairs-qos1 (Mosquitto with set_tcp_nodelay true)', load: PAIRS_QOS1 },
  'tls-pairs-qos1': { ...TRANSPORTS, listener: 'mqtts', vs: 'tcp-pairs-qos1', about: 'tcp-pairs-qos1 over TLS', load: [...PAIRS_QOS1, '--tls', '1'] },
  'ws-pairs-qos1': { ...TRANSPORTS, listener: 'mqtt-ws', vs: 'tcp-pairs-qos1', about: 'tcp-pairs-qos1 over WebSocket', load: [...PAIRS_QOS1, '--ws', '1'] },
  'tcp-connect': { ...TRANSPORTS, unit: 'connects/s', about: 'connection rate over TCP, 8 concurrent connectors', load: CONNECT },
  'tls-connect': { ...TRANSPORTS, listener: 'mqtts', unit: 'connects/s', vs: 'tcp-connect', about: 'connection rate over TLS, full handshakes', load: [...CONNECT, '--tls', '1'] },
  'ws-connect': { ...TRANSPORTS, listener: 'mqtt-ws', unit: 'connects/s', vs: 'tcp-connect', about: 'connection rate over WebSocket', load: [...CONNECT, '--ws', '1'] },
};
// `--scenarios <group>` runs the group's scenarios.
const GROUPS = {};
for (const [name, def] of Object.entries(SCENARIOS)) if (def.group) (GROUPS[def.group] ??= []).push(name);
const DEFAULT_SCENARIOS = Object.keys(SCENARIOS).filter((n) => !SCENARIOS[n].group);
const BASELINE = 'mosquitto';
const STOP_TIMEOUT_MS = 5000;
const START_TIMEOUT_MS = 15000;

const usage = `usage: node bench/run.mjs [--rounds 3] [--duration 5] [--warmup 1] [--node PATH]
       [--scenarios ${DEFAULT_SCENARIOS.join(',')}]
       [--brokers ${Object.keys(BROKERS).join(',')}] [--json FILE]
       node bench/run.mjs --scenarios soak [soak.mjs options]   (the storage soak, bench/soak.mjs)
       node bench/run.mjs --scenarios metrics [metrics.mjs options]   (metrics on vs off, bench/metrics.mjs)
       node bench/run.mjs --scenarios acl [acl.mjs options]   (1,000-rule ACL vs none, password connects, bench/acl.mjs)
opt-in scenarios (by name, or a group name for the group):
${Object.entries(GROUPS).map(([g, names]) => `  ${g}: ${names.join(',')}`).join('\n')}
--node PATH: the Node.js binary Junction runs on (default: the one running this script; Aedes stays on that)
(through npm: npm run bench -- --rounds 1)`;

const running = { broker: undefined, loader: undefined, dir: undefined, prepared: [] }; // what Ctrl-C must clean up

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${err.message}`);
    abandon();
    process.exit(1);
  },
);

async function main() {
  // `--scenarios soak|metrics|acl` are Junction-only benches with their own rounds and tables
  // (bench/soak.mjs, metrics.mjs, acl.mjs): they get the other options.
  const argv = process.argv.slice(2);
  for (const own of ['soak', 'metrics', 'acl']) {
    const at = argv.findIndex((a, i) => a === `--scenarios=${own}` || (a === '--scenarios' && argv[i + 1] === own));
    if (at < 0) continue;
    const rest = argv.filter((_, i) => i !== at && !(argv[at] === '--scenarios' && i === at + 1));
    return spawnSync(process.execPath, [path.join(repo, 'bench', `${own}.mjs`), ...rest], { stdio: 'inherit' }).status ?? 1;
  }
  const opts = options();
  if (typeof opts === 'number') return opts;
  process.on('SIGINT', () => {
    abandon();
    process.exit(130);
  });

  const loaders = {};
  for (const scenario of opts.scenarios) loaders[loaderOf(SCENARIOS[scenario])] ??= buildLoader(loaderOf(SCENARIOS[scenario]));
  const ready = [];
  const skipped = {}; // broker -> why
  const skippedScenarios = {}; // scenario -> why
  // Only the brokers some chosen scenario uses are prepared (no RabbitMQ for MQTT, no Aedes for STOMP).
  const wanted = opts.brokers.filter((name) => opts.scenarios.some((s) => takesPart(BROKERS[name], SCENARIOS[s])));
  for (const name of wanted) {
    const prepared = await BROKERS[name].prepare({ cacheDir, repo, node: opts.node });
    if (prepared.skip) {
      console.log(`skip ${name}: ${prepared.skip}`);
      skipped[name] = prepared.skip;
      continue;
    }
    if (prepared.warning) console.log(`warning ${name}: ${prepared.warning}`);
    ready.push({ broker: BROKERS[name], prepared });
    running.prepared.push({ broker: BROKERS[name], prepared });
  }
  if (ready.length === 0) {
    console.error(wanted.length ? 'bench: no broker can run here' : 'bench: none of the chosen brokers runs the chosen scenarios');
    return 1;
  }

  const perRun = opts.duration + opts.warmup + 2;
  const eligible = (scenario) => ready.filter((b) => takesPart(b.broker, SCENARIOS[scenario]));
  const needsCerts = opts.scenarios.some((s) => SCENARIOS[s].listener === 'mqtts');
  const certs = needsCerts ? devCerts() : undefined;
  const scenarios = [];
  for (const scenario of opts.scenarios) {
    if (SCENARIOS[scenario].listener === 'mqtts' && certs.error) {
      console.log(`skip scenario ${scenario}: no TLS certificate: ${certs.error}`);
      skippedScenarios[scenario] = certs.error;
      continue;
    }
    if (eligible(scenario).length === 0) {
      console.log(`skip scenario ${scenario}: none of the brokers that can run it is available`);
      skippedScenarios[scenario] = 'no broker';
      continue;
    }
    const why = eligible(scenario)
      .map((b) => [b.broker.name, b.broker.unavailable?.({ extra: SCENARIOS[scenario].brokers?.[b.broker.name] ?? {}, prepared: b.prepared })])
      .find(([, reason]) => reason);
    if (why) {
      console.log(`skip scenario ${scenario}: ${why[0]} cannot run it here: ${why[1]}`);
      skippedScenarios[scenario] = `${why[0]}: ${why[1]}`;
    } else {
      scenarios.push(scenario);
    }
  }
  if (scenarios.length === 0) {
    console.error('bench: none of the scenarios can run here');
    cleanup();
    return 1;
  }
  const runs = opts.rounds * scenarios.reduce((n, s) => n + eligible(s).length, 0);
  console.log(`${os.cpus().length} cpus (${os.cpus()[0]?.model.trim()}), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ` +
    `bench on node ${process.version}; ` + ready.map((b) => `${b.broker.name} ${b.prepared.version}`).join(', '));
  console.log(`${runs} runs of ~${perRun} s (${opts.rounds} rounds; scenarios ${scenarios.join(', ')})\n`);

  const report = { date: new Date().toISOString(), machine: machine(), options: opts, versions: {}, skipped, skipped_scenarios: skippedScenarios, scenarios: {} };
  for (const b of ready) report.versions[b.broker.name] = b.prepared.version;
  let trouble = false;
  for (const scenario of scenarios) {
    const def = SCENARIOS[scenario];
    const brokers = eligible(scenario);
    const results = Object.fromEntries(brokers.map((b) => [b.broker.name, []]));
    for (let round = 1; round <= opts.rounds; round++) {
      for (const b of brokers) {
        const r = await runOnce(loaders[loaderOf(def)], b, def, opts, certs);
        results[b.broker.name].push(r);
        process.stderr.write(`  ${scenario} round ${round}/${opts.rounds} ${b.broker.name}: ${describe(r, def)}\n`);
      }
    }
    const { baseline, brokers: summary } = summarize(results, def.baseline ?? BASELINE);
    // TLS/WebSocket next to plain TCP: each broker's rate divided by its own rate in the twin scenario.
    const twin = def.vs && report.scenarios[def.vs];
    if (twin) {
      for (const [name, s] of Object.entries(summary)) {
        const base = twin.brokers[name]?.median_delivered_per_s;
        s.vs_tcp = base && s.median_delivered_per_s !== null ? round2(s.median_delivered_per_s / base) : null;
      }
    }
    report.scenarios[scenario] = { about: def.about, load: def.load, baseline, vs: twin ? def.vs : undefined, brokers: summary };
    printTable(scenario, def, opts, summary, baseline, twin ? def.vs : undefined);
    trouble ||= Object.values(summary).some((s) => s.failed > 0 || s.lost !== 0);
  }
  report.load_average_end = os.loadavg().map(round2);
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  cleanup();
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    console.log(`wrote ${opts.json}`);
  }
  console.log('Noise: on a 2-core shared machine the same broker varies 1.05-1.25x against itself; read the min-max spread,\n' +
    'and treat a ratio within 0.25 of a target as undecided: rerun with more rounds (see bench/README.md).');
  return trouble ? 2 : 0;
}

/** The parsed command line, or the exit status when there is nothing to run (help, usage error). */
function options() {
  let v;
  try {
    v = parseArgs({
      options: {
        rounds: { type: 'string', default: '3' },
        duration: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '1' },
        scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
        brokers: { type: 'string', default: Object.keys(BROKERS).join(',') },
        json: { type: 'string' },
        node: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    console.error(`${err.message}\n${usage}`);
    return 1;
  }
  if (v.help) {
    console.log(usage);
    return 0;
  }
  const opts = {
    rounds: Number(v.rounds),
    duration: Number(v.duration),
    warmup: Number(v.warmup),
    scenarios: [...new Set(list(v.scenarios).flatMap((s) => GROUPS[s] ?? [s]))],
    brokers: list(v.brokers),
    json: v.json,
    // npm runs scripts in the package's directory; a relative --node means the caller's (INIT_CWD).
    node: v.node === undefined ? process.execPath : path.resolve(process.env.INIT_CWD ?? process.cwd(), v.node),
  };
  const bad = [
    !(Number.isInteger(opts.rounds) && opts.rounds > 0) && `--rounds ${v.rounds}: want a whole number > 0`,
    !(opts.duration > 0) && `--duration ${v.duration}: want seconds > 0`,
    !(opts.warmup >= 0) && `--warmup ${v.warmup}: want seconds >= 0`,
    ...opts.scenarios.filter((s) => !SCENARIOS[s]).map((s) => `unknown scenario ${s}`),
    ...opts.brokers.filter((b) => !BROKERS[b]).map((b) => `unknown broker ${b}`),
    !isExecutable(opts.node) && `--node ${v.node}: not an executable file`,
  ].filter(Boolean);
  if (bad.length) {
    console.error(`${bad.join('\n')}\n${usage}`);
    return 1;
  }
  return opts;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function list(s) {
  return [...new Set(s.split(',').map((x) => x.trim()).filter(Boolean))];
}

function loaderOf(def) {
  return def.listener === 'stomp' ? 'stompload' : 'mqttload';
}

/** Whether a broker runs in a scenario: it has the scenario's listener and is not left out by name. */
function takesPart(broker, def) {
  return broker.listeners.includes(def.listener ?? 'mqtt') && def.brokers?.[broker.name] !== null;
}

/** Stops what the brokers' prepare() started (RabbitMQ's epmd). */
function cleanup() {
  for (const { broker, prepared } of running.prepared.splice(0)) broker.cleanup?.(prepared);
}

/** One fresh broker, one load run: { delivered_per_s, lat_us_p99, lost, cpu_s, cpu_us_per_msg, rss_mb, load } or { error }. */
async function runOnce(loader, { broker, prepared }, def, opts, certs) {
  const port = await freePort();
  let spare = await freePort();
  while (spare === port) spare = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `junction-bench-${broker.name}-`));
  const extra = withDir(def.brokers?.[broker.name] ?? {}, dir);
  const cmd = broker.command({ port, spare, listener: def.listener ?? 'mqtt', certs, dir, extra, prepared });
  for (const [name, text] of Object.entries(cmd.files ?? {})) fs.writeFileSync(path.join(dir, name), text);
  const log = fs.openSync(path.join(dir, 'broker.log'), 'w');
  const child = spawn(cmd.file, cmd.args, { env: { ...process.env, ...cmd.env }, stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  Object.assign(running, { broker: child, dir });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`));
    child.once('error', (err) => resolve(err.message));
  });
  try {
    const up = await Promise.race([waitForPort(port, broker.startTimeoutMs ?? START_TIMEOUT_MS), exited.then((how) => `broker stopped (${how})`)]);
    if (up !== true) return { error: `${up}${logTail(dir)}` };
    const before = procStat(child.pid);
    const load = await runLoader(loader, port, def, opts);
    const after = procStat(child.pid);
    if (load.error) return { error: `${load.error}${logTail(dir)}` };
    if (load.receipts_missing) return { error: `${load.receipts_missing} SENDs never got their RECEIPT${logTail(dir)}` };
    const cpu = before && after ? after.cpu_s - before.cpu_s : null;
    return {
      delivered_per_s: load.delivered_per_s,
      lat_us_p99: load.lat_us_p99,
      lost: load.lost,
      cpu_s: cpu === null ? null : round2(cpu),
      // Per delivery over the same span as cpu_s (connect, warmup, measured, drain): what the broker
      // spends per message hardly depends on how busy the machine is, unlike delivered/s.
      cpu_us_per_msg: cpu === null || !load.received ? null : Math.round((cpu * 1e6) / load.received),
      rss_mb: after ? round2(after.rss_kb / 1024) : null,
      // The load generator's CPU over the measured interval, in % of one core: near 100 (one thread)
      // would mean it, not the broker, sets the pace.
      loadgen_cpu_pct: load.loadgen_cpu_s === undefined ? null : Math.round((100 * load.loadgen_cpu_s) / load.seconds),
      load,
    };
  } finally {
    await stop(child, exited, broker.stopTimeoutMs ?? STOP_TIMEOUT_MS);
    fs.rmSync(dir, { recursive: true, force: true });
    Object.assign(running, { broker: undefined, dir: undefined });
  }
}

function runLoader(loader, port, def, opts) {
  const args = ['--port', String(port), '--duration', String(opts.duration), '--warmup', String(opts.warmup), ...def.load];
  const timeout = (opts.duration + opts.warmup + 80) * 1000; // the loaders may wait 20-30 s each for subs and pubs to connect
  const name = path.basename(loader);
  return new Promise((resolve) => {
    running.loader = execFile(loader, args, { timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      running.loader = undefined;
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        if (!err) return resolve(JSON.parse(last));
      } catch {}
      resolve({ error: `${name} ${err ? (err.killed ? 'timed out' : `failed (${err.code ?? err.signal})`) : 'printed no JSON'}: ${stderr.trim() || last}` });
    });
  });
}

/** CPU seconds (user + system, all threads) and peak RSS of a live process, or undefined. */
function procStat(pid) {
  try {
    // Fields after "(comm)" start at field 3; utime and stime are fields 14 and 15, in clock ticks.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { cpu_s: (Number(f[11]) + Number(f[12])) / clockTicks(), rss_kb: Number(/VmHWM:\s*(\d+)/.exec(status)?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

let ticks;
function clockTicks() {
  ticks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
  return ticks;
}

/** Stops what is running now at once, on Ctrl-C or a crash of the bench itself. */
function abandon() {
  running.loader?.kill('SIGKILL');
  if (running.broker?.pid) {
    try {
      process.kill(-running.broker.pid, 'SIGKILL');
    } catch {}
  }
  if (running.dir) fs.rmSync(running.dir, { recursive: true, force: true });
  cleanup();
}

/**
 * SIGTERM, then SIGKILL to the whole process group after timeoutMs. Also when the broker itself has
 * exited: helpers it started in its group (RabbitMQ's erl_child_setup) must not outlive the run.
 */
async function stop(child, exited, timeoutMs) {
  if (child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    await exited;
    clearTimeout(timer);
  }
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {}
}

function logTail(dir) {
  try {
    const text = fs.readFileSync(path.join(dir, 'broker.log'), 'utf8').trim();
    return text ? `\n    broker log: ${text.split('\n').slice(-5).join('\n    ')}` : '';
  } catch {
    return '';
  }
}

/** Replaces `{dir}` in every string of a scenario's per-broker extras. */
function withDir(value, dir) {
  if (typeof value === 'string') return value.replaceAll('{dir}', dir);
  if (Array.isArray(value)) return value.map((v) => withDir(v, dir));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withDir(v, dir)]));
  return value;
}

function summarize(results, reference) {
  const out = {};
  for (const [name, runs] of Object.entries(results)) {
    const ok = runs.filter((r) => !r.error);
    const rates = ok.map((r) => r.delivered_per_s);
    out[name] = {
      median_delivered_per_s: median(rates),
      min_delivered_per_s: ok.length ? Math.min(...rates) : null,
      max_delivered_per_s: ok.length ? Math.max(...rates) : null,
      median_lat_us_p50: median(ok.map((r) => r.load.lat_us_p50)),
      median_lat_us_p99: median(ok.map((r) => r.lat_us_p99)),
      median_loadgen_cpu_pct: median(ok.map((r) => r.loadgen_cpu_pct).filter((c) => c !== null)),
      peak_rss_mb: ok.length ? Math.max(...ok.map((r) => r.rss_mb ?? 0)) : null,
      median_cpu_s: median(ok.map((r) => r.cpu_s).filter((c) => c !== null)),
      median_cpu_us_per_msg: median(ok.map((r) => r.cpu_us_per_msg).filter((c) => c !== null)),
      lost: ok.reduce((sum, r) => sum + r.lost, 0),
      failed: runs.length - ok.length,
      runs,
    };
  }
  // Ratios are to the reference broker (Mosquitto; RabbitMQ for STOMP), or to the first broker with a
  // result when the reference has none.
  const baseline = out[reference]?.median_delivered_per_s ? reference : Object.keys(out).find((n) => out[n].median_delivered_per_s);
  for (const s of Object.values(out)) {
    const base = baseline && out[baseline].median_delivered_per_s;
    s.ratio = base && s.median_delivered_per_s !== null ? round2(s.median_delivered_per_s / base) : null;
  }
  return { baseline, brokers: out };
}

function printTable(scenario, def, opts, summary, baseline, twin) {
  const k = (n) => (n === null ? '-' : `${(n / 1000).toFixed(1)}k`);
  const connects = def.unit === 'connects/s';
  const n = (x) => (x === null || x === undefined ? '-' : String(Math.round(x)));
  const rows = [[
    'broker', def.unit ?? 'delivered/s', 'min-max', ...(connects ? ['p50 us'] : []), 'p99 us', 'RSS MB', 'CPU s',
    connects ? 'CPU us/conn' : 'CPU us/msg', connects ? 'failed' : 'lost', 'loader CPU %', `vs ${baseline ?? def.baseline ?? BASELINE}`,
    ...(twin ? [`vs ${twin}`] : []),
  ]];
  for (const [name, s] of Object.entries(summary)) {
    const failed = s.failed ? ` (${s.failed} failed)` : '';
    rows.push([
      name,
      k(s.median_delivered_per_s),
      s.min_delivered_per_s === null ? '-' : `${k(s.min_delivered_per_s)}-${k(s.max_delivered_per_s)}`,
      ...(connects ? [n(s.median_lat_us_p50)] : []),
      n(s.median_lat_us_p99),
      s.peak_rss_mb === null ? '-' : s.peak_rss_mb.toFixed(1),
      s.median_cpu_s === null ? '-' : s.median_cpu_s.toFixed(2),
      n(s.median_cpu_us_per_msg),
      s.lost === 0 ? '0' : `${s.lost} !!`,
      n(s.median_loadgen_cpu_pct),
      (s.ratio === null ? '-' : s.ratio.toFixed(2)) + failed,
      ...(twin ? [s.vs_tcp === null || s.vs_tcp === undefined ? '-' : s.vs_tcp.toFixed(2)] : []),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(`== ${scenario}: ${def.about} (${def.load.join(' ')}; ${opts.rounds} x ${opts.duration} s)`);
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  for (const [name, s] of Object.entries(summary)) {
    if (s.lost > 0 && connects) console.log(`!! ${name}: ${s.lost} connections failed in ${scenario} (see the errors above)`);
    else if (s.lost > 0) console.log(`!! ${name} LOST ${s.lost} messages in ${scenario}: its numbers are not valid (delivery is broken)`);
    if (s.lost < 0) console.log(`!! ${name} delivered ${-s.lost} messages MORE than were sent in ${scenario} (duplicates): not valid`);
    if (s.failed) console.log(`!! ${name}: ${s.failed} of ${s.runs.length} runs failed, see the errors above`);
  }
  console.log();
}

function describe(r, def) {
  if (r.error) return `FAILED: ${r.error}`;
  const connects = def.unit === 'connects/s';
  const lost = r.lost ? (connects ? `  ${r.lost} FAILED !!` : `  LOST ${r.lost} !!`) : '';
  return `${Math.round(r.delivered_per_s)}/s  p99 ${r.lat_us_p99} us  cpu ${r.cpu_s} s (${r.cpu_us_per_msg} us/${connects ? 'conn' : 'msg'})  ` +
    `rss ${r.rss_mb} MB  loader ${r.loadgen_cpu_pct}% cpu${lost}`;
}

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function round2(x) {
  return Math.round(x * 100) / 100;
}

function machine() {
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim(),
    memory_gb: round2(os.totalmem() / 2 ** 30),
    load_average: os.loadavg().map(round2),
    node: process.version,
  };
}
