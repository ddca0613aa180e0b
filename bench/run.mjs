// run.mjs: `npm run bench` — Junction side by side with Mosquitto and Aedes, in one run, on this machine.
//
// For every scenario and round it starts each broker fresh on a free port, alternating A B C A B C
// so slow drifts of a shared machine hit all brokers alike, drives it with bench/mqttload.c (a
// closed-loop MQTT load generator, compiled on first use), reads the broker's CPU time and peak RSS
// from /proc, and stops it. Then it prints per scenario the medians and the ratio to Mosquitto.
// Exit status: 0 all runs fine; 1 nothing could run (setup or usage error); 2 a run failed or lost messages.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BROKERS } from './brokers.mjs';
import { buildLoader, cacheDir, freePort, repo, waitForPort } from './common.mjs';

// Scenarios by name. `load`: mqttload arguments (besides --port, --duration, --warmup).
// `brokers` (optional): per-broker extras for brokers.mjs (see the persist-* scenarios), where `{dir}`
// is the run's private directory; a broker set to null is skipped for that scenario. A scenario one
// of whose brokers cannot run it here (brokers.mjs `unavailable`, e.g. Junction on RocksDB under
// Node 22/24) is skipped whole, with one line saying why: its point is that comparison.
// A scenario that needs another load generator (STOMP) would add a field naming it here.
const PAIRS_QOS1 = ['--scenario', 'pairs', '--pubs', '20', '--qos', '1', '--window', '16'];
// Persistent sessions: Junction's data dir is a subdirectory because it must start empty (the run's
// dir holds broker.log); Mosquitto keeps everything in memory and writes (and fsyncs) mosquitto.db
// only at exit and every autosave_interval (30 min by default), never per message; Aedes has no disk
// persistence built in (bench/README.md says why aedes-persistence-level is not used).
const MOSQUITTO_PERSIST = { conf: ['persistence true', 'persistence_location {dir}/'] };
const JUNCTION_DATA = ['--data-dir', '{dir}/data'];
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
};
const BASELINE = 'mosquitto';
const STOP_TIMEOUT_MS = 5000;
const START_TIMEOUT_MS = 15000;

const usage = `usage: node bench/run.mjs [--rounds 3] [--duration 5] [--warmup 1] [--node PATH]
       [--scenarios ${Object.keys(SCENARIOS).join(',')}]
       [--brokers ${Object.keys(BROKERS).join(',')}] [--json FILE]
       node bench/run.mjs --scenarios soak [soak.mjs options]   (the storage soak, bench/soak.mjs)
--node PATH: the Node.js binary Junction runs on (default: the one running this script; Aedes stays on that)
(through npm: npm run bench -- --rounds 1)`;

const running = { broker: undefined, loader: undefined, dir: undefined }; // what Ctrl-C must clean up

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${err.message}`);
    abandon();
    process.exit(1);
  },
);

async function main() {
  // `--scenarios soak` is bench/soak.mjs (one broker, its own rounds and table): it gets the other options.
  const argv = process.argv.slice(2);
  const at = argv.findIndex((a, i) => a === '--scenarios=soak' || (a === '--scenarios' && argv[i + 1] === 'soak'));
  if (at >= 0) {
    const rest = argv.filter((_, i) => i !== at && !(argv[at] === '--scenarios' && i === at + 1));
    return spawnSync(process.execPath, [path.join(repo, 'bench', 'soak.mjs'), ...rest], { stdio: 'inherit' }).status ?? 1;
  }
  const opts = options();
  if (typeof opts === 'number') return opts;
  process.on('SIGINT', () => {
    abandon();
    process.exit(130);
  });

  const loader = buildLoader();
  const ready = [];
  const skipped = {}; // broker -> why
  const skippedScenarios = {}; // scenario -> why
  for (const name of opts.brokers) {
    const prepared = await BROKERS[name].prepare({ cacheDir, repo, node: opts.node });
    if (prepared.skip) {
      console.log(`skip ${name}: ${prepared.skip}`);
      skipped[name] = prepared.skip;
      continue;
    }
    if (prepared.warning) console.log(`warning ${name}: ${prepared.warning}`);
    ready.push({ broker: BROKERS[name], prepared });
  }
  if (ready.length === 0) {
    console.error('bench: no broker can run here');
    return 1;
  }

  const perRun = opts.duration + opts.warmup + 2;
  const eligible = (scenario) => ready.filter((b) => SCENARIOS[scenario].brokers?.[b.broker.name] !== null);
  const scenarios = [];
  for (const scenario of opts.scenarios) {
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
        const r = await runOnce(loader, b, def, opts);
        results[b.broker.name].push(r);
        process.stderr.write(`  ${scenario} round ${round}/${opts.rounds} ${b.broker.name}: ${describe(r)}\n`);
      }
    }
    const { baseline, brokers: summary } = summarize(results);
    report.scenarios[scenario] = { about: def.about, load: def.load, baseline, brokers: summary };
    printTable(scenario, def, opts, summary, baseline);
    trouble ||= Object.values(summary).some((s) => s.failed > 0 || s.lost !== 0);
  }
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
        scenarios: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
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
    scenarios: list(v.scenarios),
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

/** One fresh broker, one load run: { delivered_per_s, lat_us_p99, lost, cpu_s, cpu_us_per_msg, rss_mb, load } or { error }. */
async function runOnce(loader, { broker, prepared }, def, opts) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `junction-bench-${broker.name}-`));
  const extra = withDir(def.brokers?.[broker.name] ?? {}, dir);
  const cmd = broker.command({ port, dir, extra, prepared });
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
    const up = await Promise.race([waitForPort(port, START_TIMEOUT_MS), exited.then((how) => `broker stopped (${how})`)]);
    if (up !== true) return { error: `${up}${logTail(dir)}` };
    const before = procStat(child.pid);
    const load = await runLoader(loader, port, def, opts);
    const after = procStat(child.pid);
    if (load.error) return { error: `${load.error}${logTail(dir)}` };
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
      load,
    };
  } finally {
    await stop(child, exited);
    fs.rmSync(dir, { recursive: true, force: true });
    Object.assign(running, { broker: undefined, dir: undefined });
  }
}

function runLoader(loader, port, def, opts) {
  const args = ['--port', String(port), '--duration', String(opts.duration), '--warmup', String(opts.warmup), ...def.load];
  const timeout = (opts.duration + opts.warmup + 60) * 1000; // mqttload may wait 20 s each for subs and pubs to connect
  return new Promise((resolve) => {
    running.loader = execFile(loader, args, { timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      running.loader = undefined;
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        if (!err) return resolve(JSON.parse(last));
      } catch {}
      resolve({ error: `mqttload ${err ? (err.killed ? 'timed out' : `failed (${err.code ?? err.signal})`) : 'printed no JSON'}: ${stderr.trim() || last}` });
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
}

/** SIGTERM, then SIGKILL to the whole process group after STOP_TIMEOUT_MS. */
async function stop(child, exited) {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }, STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
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

function summarize(results) {
  const out = {};
  for (const [name, runs] of Object.entries(results)) {
    const ok = runs.filter((r) => !r.error);
    const rates = ok.map((r) => r.delivered_per_s);
    out[name] = {
      median_delivered_per_s: median(rates),
      min_delivered_per_s: ok.length ? Math.min(...rates) : null,
      max_delivered_per_s: ok.length ? Math.max(...rates) : null,
      median_lat_us_p99: median(ok.map((r) => r.lat_us_p99)),
      peak_rss_mb: ok.length ? Math.max(...ok.map((r) => r.rss_mb ?? 0)) : null,
      median_cpu_s: median(ok.map((r) => r.cpu_s).filter((c) => c !== null)),
      median_cpu_us_per_msg: median(ok.map((r) => r.cpu_us_per_msg).filter((c) => c !== null)),
      lost: ok.reduce((sum, r) => sum + r.lost, 0),
      failed: runs.length - ok.length,
      runs,
    };
  }
  // Ratios are to Mosquitto, or to the first broker with a result when Mosquitto has none.
  const baseline = out[BASELINE]?.median_delivered_per_s ? BASELINE : Object.keys(out).find((n) => out[n].median_delivered_per_s);
  for (const s of Object.values(out)) {
    const base = baseline && out[baseline].median_delivered_per_s;
    s.ratio = base && s.median_delivered_per_s !== null ? round2(s.median_delivered_per_s / base) : null;
  }
  return { baseline, brokers: out };
}

function printTable(scenario, def, opts, summary, baseline) {
  const k = (n) => (n === null ? '-' : `${(n / 1000).toFixed(1)}k`);
  const rows = [['broker', 'delivered/s', 'min-max', 'p99 us', 'RSS MB', 'CPU s', 'CPU us/msg', 'lost', `vs ${baseline ?? BASELINE}`]];
  for (const [name, s] of Object.entries(summary)) {
    const failed = s.failed ? ` (${s.failed} failed)` : '';
    rows.push([
      name,
      k(s.median_delivered_per_s),
      s.min_delivered_per_s === null ? '-' : `${k(s.min_delivered_per_s)}-${k(s.max_delivered_per_s)}`,
      s.median_lat_us_p99 === null ? '-' : String(Math.round(s.median_lat_us_p99)),
      s.peak_rss_mb === null ? '-' : s.peak_rss_mb.toFixed(1),
      s.median_cpu_s === null ? '-' : s.median_cpu_s.toFixed(2),
      s.median_cpu_us_per_msg === null ? '-' : String(s.median_cpu_us_per_msg),
      s.lost === 0 ? '0' : `${s.lost} !!`,
      (s.ratio === null ? '-' : s.ratio.toFixed(2)) + failed,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(`== ${scenario}: ${def.about} (${def.load.join(' ')}; ${opts.rounds} x ${opts.duration} s)`);
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  for (const [name, s] of Object.entries(summary)) {
    if (s.lost > 0) console.log(`!! ${name} LOST ${s.lost} messages in ${scenario}: its numbers are not valid (delivery is broken)`);
    if (s.lost < 0) console.log(`!! ${name} delivered ${-s.lost} messages MORE than were sent in ${scenario} (duplicates): not valid`);
    if (s.failed) console.log(`!! ${name}: ${s.failed} of ${s.runs.length} runs failed, see the errors above`);
  }
  console.log();
}

function describe(r) {
  if (r.error) return `FAILED: ${r.error}`;
  const lost = r.lost ? `  LOST ${r.lost} !!` : '';
  return `${Math.round(r.delivered_per_s)}/s  p99 ${r.lat_us_p99} us  cpu ${r.cpu_s} s (${r.cpu_us_per_msg} us/msg)  rss ${r.rss_mb} MB${lost}`;
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
