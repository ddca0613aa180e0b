// soak.mjs: does Junction's RocksDB data directory stay bounded under churn?
//
// `node bench/soak.mjs` (or `npm run bench -- --scenarios soak`). Rounds on ONE fresh data dir; each:
//   1. start Junction on it (--storage rocksdb, synchronous writes: the default);
//   2. online: mqttload, 20 pairs at QoS 1 with persistent sessions (--clean 0), --duration seconds;
//   3. offline: --offline subscribers with persistent sessions subscribe and disconnect, --queued
//      QoS 1 messages are published to each, then they come back and must get exactly those;
//   4. retained: --cycles times, set --retained retained topics and clear them again (empty retained
//      payload), then set the same KEEP topics (they must stay: one row each), and check with a new
//      subscriber that exactly the KEEP topics are retained;
//   5. stop the broker with SIGTERM, `du -sb` the dir, compact it (bench/compact.mjs), `du -sb` again.
// Then one table: per round the messages published, the sizes before and after compaction, and the
// keys left, which must be exactly the meta rows plus the soak's own persistent sessions,
// subscriptions and KEEP retained messages. Exit status 0 fine, 1 setup error, 2 a check failed.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { buildLoader, freePort, repo, waitForPort } from './common.mjs';

const PAIRS = 20; // mqttload pairs: client ids ld-0..ld-39, subscriptions on bench/t0..bench/t19
const KEEP = 10; // retained topics left set at the end of every round
const META_ROWS = 2; // format, engine
const STOP_TIMEOUT_MS = 15000;

const usage = `usage: node bench/soak.mjs [--rounds 3] [--duration 10] [--offline 10] [--queued 2000]
       [--retained 1000] [--cycles 3] [--dir DIR] [--keep]
  --duration S   seconds of online QoS 1 pairs per round      --offline N  subscribers that go offline
  --queued N     messages queued for each offline subscriber  --retained K topics per set/clear cycle
  --cycles N     retained set/clear cycles per round          --dir DIR    data dir (must not exist yet)
  --keep         keep the data dir and broker logs afterwards`;

const running = { broker: undefined }; // what Ctrl-C must stop

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`soak: ${err.message}`);
    stopNow();
    process.exit(1);
  },
);

async function main() {
  const opts = options();
  if (typeof opts === 'number') return opts;
  process.on('SIGINT', () => {
    stopNow();
    process.exit(130);
  });
  const main = path.join(repo, 'dist/src/server/main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} not found: run \`npm run build\` first`);
  const loader = buildLoader();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'junction-soak-'));
  const dataDir = opts.dir ?? path.join(work, 'data');
  if (fs.existsSync(dataDir)) throw new Error(`--dir ${dataDir} exists: the soak starts from a fresh data directory`);
  console.log(`soak: ${opts.rounds} rounds on ${dataDir}; per round ${opts.duration} s of ${PAIRS} QoS 1 pairs, ` +
    `${opts.offline} x ${opts.queued} queued, ${opts.cycles} x ${opts.retained} retained set/clear`);

  const rows = [];
  let trouble = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const row = await soakRound(round, { main, loader, work, dataDir, opts });
    rows.push(row);
    trouble = trouble.concat(row.problems.map((p) => `round ${round}: ${p}`));
    process.stderr.write(`  round ${round}: published ${row.published}, ${fmtBytes(row.before)} -> ${fmtBytes(row.after)}, ` +
      `${row.keys.total} keys${row.problems.length ? `  !! ${row.problems.join('; ')}` : ''}\n`);
  }

  const expected = expectedKeys(opts);
  printTable(rows, expected);
  const first = rows[0];
  const last = rows.at(-1);
  const dataGrowth = last.files.data - first.files.data;
  console.log(`after compaction, round 1 -> ${rows.length}: total ${signed(last.after - first.after)}, ` +
    `RocksDB data (SST, WAL, MANIFEST, OPTIONS) ${signed(dataGrowth)}, RocksDB info logs (LOG*) ${signed(last.files.infoLog - first.files.infoLog)}`);
  // Live rows are the same every round (same client ids, same KEEP topics), so the compacted data
  // files should be too; a few KB of MANIFEST/OPTIONS churn is not growth, a round's worth of rows is.
  if (rows.length > 1 && dataGrowth > Math.max(64 * 1024, 0.25 * first.files.data)) {
    trouble.push(`compacted RocksDB data grew by ${fmtBytes(dataGrowth)} over ${rows.length} rounds`);
  }
  if (opts.keep) console.log(`kept ${work} (data dir ${dataDir}, broker logs)`);
  else fs.rmSync(work, { recursive: true, force: true });
  if (opts.keep && opts.dir) console.log(`kept ${dataDir}`);
  else if (opts.dir) fs.rmSync(dataDir, { recursive: true, force: true });
  for (const t of trouble) console.log(`!! ${t}`);
  return trouble.length ? 2 : 0;
}

function options() {
  let v;
  try {
    v = parseArgs({
      options: {
        rounds: { type: 'string', default: '3' },
        duration: { type: 'string', default: '10' },
        offline: { type: 'string', default: '10' },
        queued: { type: 'string', default: '2000' },
        retained: { type: 'string', default: '1000' },
        cycles: { type: 'string', default: '3' },
        dir: { type: 'string' },
        keep: { type: 'boolean', default: false },
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
  const opts = { dir: v.dir && path.resolve(v.dir), keep: v.keep };
  const bad = [];
  for (const [name, min] of [['rounds', 1], ['offline', 0], ['queued', 0], ['retained', 0], ['cycles', 0]]) {
    opts[name] = Number(v[name]);
    if (!(Number.isInteger(opts[name]) && opts[name] >= min)) bad.push(`--${name} ${v[name]}: want a whole number >= ${min}`);
  }
  opts.duration = Number(v.duration);
  if (!(opts.duration > 0)) bad.push(`--duration ${v.duration}: want seconds > 0`);
  if (bad.length) {
    console.error(`${bad.join('\n')}\n${usage}`);
    return 1;
  }
  return opts;
}

/** One round: broker up, the three load phases, broker down, sizes and compaction. */
async function soakRound(round, { main, loader, work, dataDir, opts }) {
  const problems = [];
  const port = await freePort();
  const logFile = path.join(work, `broker-${round}.log`);
  const broker = startBroker(main, port, dataDir, logFile);
  let pairs = { sent: 0, delivered_per_s: 0 };
  let queued = 0;
  let retained = 0;
  try {
    const up = await Promise.race([waitForPort(port, 30000), broker.exited.then((how) => `broker stopped (${how})`)]);
    if (up !== true) throw new Error(`${up}${logTail(logFile)}`);

    pairs = await runLoader(loader, port, opts.duration);
    if (pairs.error) throw new Error(pairs.error);
    if (pairs.lost !== 0) problems.push(`pairs: ${pairs.lost} of ${pairs.expected} messages not delivered`);

    queued = await offlinePhase(port, round, opts, problems);
    retained = await retainedPhase(port, round, opts, problems);
  } finally {
    const how = await stopBroker(broker);
    if (how !== 'SIGTERM' && how !== 'exit 0') problems.push(`broker did not stop cleanly on SIGTERM (${how})${logTail(logFile)}`);
  }
  const before = du(dataDir);
  const compacted = compact(dataDir);
  const after = du(dataDir);
  const expected = expectedKeys(opts);
  for (const kind of new Set([...Object.keys(expected.keys), ...Object.keys(compacted.keys)])) {
    const left = compacted.keys[kind] ?? 0;
    if (left !== (expected.keys[kind] ?? 0)) problems.push(`${left} ${kind} rows left, expected ${expected.keys[kind] ?? 0}`);
  }
  return {
    round,
    published: pairs.sent + queued + retained,
    pairsRate: pairs.delivered_per_s,
    queued,
    retained,
    before,
    after,
    files: rocksFiles(path.join(dataDir, 'rocksdb')),
    keys: compacted,
    problems,
  };
}

function startBroker(main, port, dataDir, logFile) {
  const log = fs.openSync(logFile, 'w');
  // RocksDB named, not `auto`: the soak measures RocksDB's files, and compact.mjs opens RocksDB. Where
  // rocksdb does not load (Node 22/24), Junction refuses to start and says why.
  // STOMP and HTTP/WebSocket listeners open by default (61613, 8083): any free port, so no collision.
  const args = [main, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), '--stomp-port', '0', '--http-port', '0',
    '--storage', 'rocksdb', '--data-dir', dataDir];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', log, log],
    detached: true,
  });
  fs.closeSync(log);
  running.broker = child;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`));
    child.once('error', (err) => resolve(err.message));
  });
  return { child, exited };
}

/** SIGTERM and wait; SIGKILL after STOP_TIMEOUT_MS. Resolves how it ended. */
async function stopBroker({ child, exited }) {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
  running.broker = undefined;
  return exited;
}

function stopNow() {
  if (running.broker?.pid) {
    try {
      process.kill(-running.broker.pid, 'SIGKILL');
    } catch {}
  }
}

function runLoader(loader, port, duration) {
  const args = ['--port', String(port), '--scenario', 'pairs', '--pubs', String(PAIRS), '--qos', '1', '--window', '16',
    '--clean', '0', '--duration', String(duration), '--warmup', '0'];
  return new Promise((resolve) => {
    execFile(loader, args, { timeout: (duration + 90) * 1000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      try {
        if (!err) return resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch {}
      resolve({ error: `mqttload ${err ? `failed (${err.code ?? err.signal})` : 'printed no JSON'}: ${stderr.trim() || stdout.trim()}` });
    });
  });
}

/** MQTT.js client, connected, with `onMessage` attached before CONNACK (queued messages follow it at once). */
async function client(port, clientId, clean, onMessage) {
  const c = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 4, clientId, clean, reconnectPeriod: 0, connectTimeout: 30000 });
  if (onMessage) c.on('message', onMessage);
  const [err] = await Promise.race([once(c, 'connect').then(() => []), once(c, 'error')]);
  if (err) throw new Error(`${clientId}: ${err.message}`);
  return c;
}

/** Publishes `count` messages made by `make(i)` -> [topic, payload, opts], at most 500 unacknowledged. */
async function publishAll(c, count, make) {
  for (let i = 0; i < count; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 500); j++) batch.push(c.publishAsync(...make(j)));
    await Promise.all(batch);
  }
}

/** Offline subscribers: queue `queued` messages for each while away, then drain. Returns messages published. */
async function offlinePhase(port, round, opts, problems) {
  const topic = (i) => `soak/q/${i}`;
  for (let i = 0; i < opts.offline; i++) {
    const c = await client(port, `soak-q-${i}`, false);
    await c.subscribeAsync(topic(i), { qos: 1 });
    await c.endAsync();
  }
  const pub = await client(port, 'soak-pub', true);
  const payload = (i, n) => Buffer.from(`${round}/${i}/${n}`.padEnd(64, '.'));
  await publishAll(pub, opts.offline * opts.queued, (k) => [topic(k % opts.offline), payload(k % opts.offline, Math.floor(k / opts.offline)), { qos: 1 }]);
  await pub.endAsync();
  for (let i = 0; i < opts.offline; i++) {
    const seen = new Set();
    let extra = 0;
    let done;
    const all = new Promise((resolve) => (done = resolve));
    const c = await client(port, `soak-q-${i}`, false, (t, p) => {
      const text = p.toString();
      if (t !== topic(i) || !text.startsWith(`${round}/${i}/`) || seen.has(text)) extra++;
      else seen.add(text);
      if (seen.size === opts.queued) done();
    });
    if (opts.queued > 0) await Promise.race([all, sleep(60000)]);
    await sleep(200); // anything beyond the queued messages would show up now
    await c.endAsync();
    if (seen.size !== opts.queued || extra) problems.push(`offline subscriber ${i}: got ${seen.size} of ${opts.queued} queued messages, ${extra} unexpected`);
  }
  return opts.offline * opts.queued;
}

/** Retained set/clear cycles, then KEEP topics set; checks what is retained. Returns messages published. */
async function retainedPhase(port, round, opts, problems) {
  const pub = await client(port, 'soak-ret', true);
  for (let cycle = 0; cycle < opts.cycles; cycle++) {
    await publishAll(pub, opts.retained, (k) => [`soak/r/${k}`, Buffer.from(`round ${round} cycle ${cycle}`), { qos: 1, retain: true }]);
    await publishAll(pub, opts.retained, (k) => [`soak/r/${k}`, Buffer.alloc(0), { qos: 1, retain: true }]);
  }
  await publishAll(pub, KEEP, (k) => [`soak/keep/${k}`, Buffer.from(`round ${round}`), { qos: 1, retain: true }]);
  await pub.endAsync();

  const got = { cleared: 0, keep: 0 };
  const check = await client(port, 'soak-check', true, (t, _p, packet) => {
    if (packet.retain) got[t.startsWith('soak/keep/') ? 'keep' : 'cleared']++;
  });
  await check.subscribeAsync(['soak/r/#', 'soak/keep/#'], { qos: 0 });
  for (let t = 0; t < 50 && got.keep < KEEP; t++) await sleep(100);
  await sleep(300);
  await check.endAsync();
  if (got.cleared || got.keep !== KEEP) problems.push(`retained check: ${got.cleared} cleared topics still retained, ${got.keep} of ${KEEP} kept ones`);
  return opts.cycles * opts.retained * 2 + KEEP;
}

/** The rows a compacted store must hold after a round: everything else is garbage. */
function expectedKeys(opts) {
  const keys = {
    meta: META_ROWS,
    session: 2 * PAIRS + opts.offline, // ld-* (publishers too: clean session 0) and soak-q-*
    subscription: PAIRS + opts.offline,
    retained: KEEP,
    message: KEEP, // the KEEP retained messages' bodies
  };
  return { keys, total: Object.values(keys).reduce((a, b) => a + b, 0) };
}

function compact(dataDir) {
  const r = spawnSync(process.execPath, [path.join(repo, 'bench', 'compact.mjs'), dataDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench/compact.mjs ${dataDir} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** `du -sb`: apparent size in bytes, directories included. */
function du(dir) {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`du -sb ${dir}: ${r.stderr.trim()}`);
  return Number(r.stdout.split('\t')[0]);
}

/** RocksDB's files by role: info logs (LOG, LOG.old.*) are text diagnostics, not data. */
function rocksFiles(dir) {
  const out = { sst: 0, wal: 0, infoLog: 0, infoLogFiles: 0, data: 0 };
  for (const f of fs.readdirSync(dir)) {
    const size = fs.statSync(path.join(dir, f)).size;
    if (f === 'LOG' || f.startsWith('LOG.old')) {
      out.infoLog += size;
      out.infoLogFiles++;
      continue;
    }
    if (f.endsWith('.sst')) out.sst += size;
    else if (f.endsWith('.log')) out.wal += size;
    out.data += size;
  }
  return out;
}

function printTable(rows, expected) {
  const header = ['round', 'published', 'pairs/s', 'before', 'after', 'SST', 'WAL', 'info logs', 'keys', 'rows left (expected ' + expected.total + ')'];
  const lines = [header];
  for (const r of rows) {
    const left = Object.entries(r.keys.keys).map(([k, n]) => `${k} ${n}`).join(', ');
    lines.push([
      String(r.round),
      String(r.published),
      `${(r.pairsRate / 1000).toFixed(1)}k`,
      fmtBytes(r.before),
      fmtBytes(r.after),
      fmtBytes(r.files.sst),
      fmtBytes(r.files.wal),
      `${fmtBytes(r.files.infoLog)} (${r.files.infoLogFiles})`,
      String(r.keys.total),
      left,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  console.log(`\n== soak: RocksDB data dir size per round, before and after compaction (after: by file kind)`);
  for (const l of lines) console.log(l.map((c, i) => (i === 0 || i === l.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd());
  console.log(`published: messages per round (pairs + queued + retained set/clear + ${KEEP} kept); pairs/s: delivered/s of the online phase` +
    ` (synced writes)\nbefore/after: du -sb of the data dir; keys: rows after compaction (${Object.entries(expected.keys).map(([k, n]) => `${k} ${n}`).join(', ')} expected)\n`);
}

function fmtBytes(n) {
  if (Math.abs(n) < 1024) return `${n} B`;
  if (Math.abs(n) < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(2)} MiB`;
}

function signed(n) {
  return `${n >= 0 ? '+' : '-'}${fmtBytes(Math.abs(n))}`;
}

function logTail(file) {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return text ? `\n    broker log: ${text.split('\n').slice(-5).join('\n    ')}` : '';
  } catch {
    return '';
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
