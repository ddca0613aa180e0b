#!/usr/bin/env node
// bench/metrics.mjs: what metrics cost. Runs Junction twice per scenario, `metrics.enabled: true`
// (the default: latency histograms observed per delivery and acknowledgement, process metrics,
// /metrics scraped once a second as a demanding Prometheus would) and `metrics.enabled: false`
// (plain counters only, nothing scraped), under the same mqttload, in alternating order per round,
// and prints the throughput of each side by side with the loss, plus the idle RSS each adds.
//
//   npm run build && node bench/metrics.mjs [--rounds 3] [--duration 5] [--warmup 1] [--scrape-ms 1000]
//                                           [--scenarios fanout,fanout-qos1,pairs-qos1] [--node PATH] [--json FILE]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildLoader, cacheDir, freePort, repo, waitForPort } from './common.mjs';

const opts = { rounds: 3, duration: 5, warmup: 1, 'scrape-ms': 1000, node: process.execPath, json: '', scenarios: 'fanout,fanout-qos1,pairs-qos1' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opts)) throw new Error(`unknown option --${k}`);
  opts[k] = typeof opts[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const SCENARIOS = {
  fanout: { about: '1 publisher -> 100 subscribers, QoS 0', load: ['--scenario', 'fanout', '--subs', '100', '--qos', '0'] },
  'fanout-qos1': { about: '1 publisher -> 50 subscribers, QoS 1', load: ['--scenario', 'fanout', '--subs', '50', '--qos', '1', '--window', '16'] },
  'pairs-qos1': { about: '20 publishers -> 20 subscribers, QoS 1, 16 in flight each', load: ['--scenario', 'pairs', '--pubs', '20', '--qos', '1', '--window', '16'] },
};
const SIDES = { on: 'metrics:\n  enabled: true\n', off: 'metrics:\n  enabled: false\n' };

const main = path.join(repo, 'dist/src/server/main.js');
if (!fs.existsSync(main)) {
  console.error(`${main} not found: run \`npm run build\` first`);
  process.exit(1);
}
const loader = buildLoader('mqttload');
const dir = fs.mkdtempSync(path.join(cacheDir, 'metrics-'));
for (const [side, yaml] of Object.entries(SIDES)) fs.writeFileSync(path.join(dir, `${side}.yaml`), yaml);

/** Brokers started and not yet stopped: killed if the bench itself fails. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

async function startJunction(side) {
  const [mqtt, http] = [await freePort(), await freePort()];
  const child = spawn(
    opts.node,
    [main, 'start', '--config', path.join(dir, `${side}.yaml`), '--host', '127.0.0.1', '--mqtt-port', String(mqtt), '--stomp-port', '0', '--http-port', String(http), '--storage', 'memory'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  for (const port of [mqtt, http]) {
    const ok = await waitForPort(port, 30_000);
    if (ok !== true) throw new Error(ok);
  }
  return { child, mqtt, http };
}

async function stop(b) {
  b.child.kill('SIGTERM');
  await new Promise((r) => b.child.once('exit', r));
}

/** User + system CPU seconds of a live process (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticks;
}
const ticks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Scrapes /metrics every `ms` until stopped; returns the count and the slowest scrape. */
function scraper(port, ms) {
  let n = 0;
  let slowest = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      const t = performance.now();
      const r = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
      if (r) await r.text();
      slowest = Math.max(slowest, performance.now() - t);
      n++;
      await new Promise((res) => setTimeout(res, ms));
    }
  })();
  return async () => {
    on = false;
    await loop;
    return { scrapes: n, slowestMs: slowest };
  };
}

/** Runs mqttload without blocking this process (the scraper runs meanwhile); resolves with its JSON line. */
function load(port, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(loader, ['--host', '127.0.0.1', '--port', String(port), '--duration', String(opts.duration), '--warmup', String(opts.warmup), ...args]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), (opts.duration + opts.warmup + 60) * 1000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop();
      if (code !== 0 || !line) reject(new Error(`mqttload failed (${code}): ${err}`));
      else resolve(JSON.parse(line));
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const nodeVersion = spawnSync(opts.node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`metrics bench: junction on node ${nodeVersion}, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}; ${opts.rounds} rounds x ${opts.duration} s; /metrics scraped every ${opts['scrape-ms']} ms on the "on" side`);

const results = {};
for (const name of opts.scenarios.split(',')) {
  const sc = SCENARIOS[name];
  if (!sc) throw new Error(`unknown scenario ${name}: ${Object.keys(SCENARIOS).join(', ')}`);
  results[name] = { on: [], off: [], onCpu: [], offCpu: [], about: sc.about };
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate which side goes first, so drift over the run does not favour one.
    for (const side of round % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
      const b = await startJunction(side);
      const stopScrape = side === 'on' ? scraper(b.http, opts['scrape-ms']) : undefined;
      const cpu0 = cpuSeconds(b.child.pid);
      const r = await load(b.mqtt, sc.load);
      const s = await stopScrape?.();
      // Broker CPU per delivered message (scrapes included on the "on" side): steadier than msg/s on
      // a shared machine, where the two sides' rates swing by more than the difference looked for.
      const cpuUs = ((cpuSeconds(b.child.pid) - cpu0) * 1e6) / Math.max(1, r.received);
      await stop(b);
      results[name][side].push(r.delivered_per_s);
      results[name][`${side}Cpu`].push(cpuUs);
      console.log(`  ${name} round ${round + 1} ${side.padEnd(3)}: ${Math.round(r.delivered_per_s).toLocaleString('en')} msg/s, ${cpuUs.toFixed(2)} CPU us/msg, p99 ${r.lat_us_p99} us${s ? `, ${s.scrapes} scrapes (slowest ${s.slowestMs.toFixed(1)} ms)` : ''}`);
    }
  }
}

// Idle RSS: a fresh broker, 5 s after start (the "on" side scraped once, as Prometheus would).
const idle = {};
for (const side of ['off', 'on', 'off', 'on']) {
  const b = await startJunction(side);
  if (side === 'on') await (await fetch(`http://127.0.0.1:${b.http}/metrics`)).text();
  await new Promise((r) => setTimeout(r, 5000));
  (idle[side] ??= []).push(rssKiB(b.child.pid));
  await stop(b);
}

console.log('\n| scenario | metrics on (msg/s) | metrics off (msg/s) | lost with metrics on | CPU us/msg on | CPU us/msg off | CPU added |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
const summary = {};
for (const [name, r] of Object.entries(results)) {
  const on = median(r.on);
  const off = median(r.off);
  const lost = (1 - on / off) * 100;
  const cpuOn = median(r.onCpu);
  const cpuOff = median(r.offCpu);
  const cpuAdded = (cpuOn / cpuOff - 1) * 100;
  summary[name] = { on, off, lostPercent: lost, cpuUsPerMsgOn: cpuOn, cpuUsPerMsgOff: cpuOff, cpuAddedPercent: cpuAdded };
  console.log(`| ${name} (${r.about}) | ${Math.round(on).toLocaleString('en')} | ${Math.round(off).toLocaleString('en')} | ${lost.toFixed(1)} % | ${cpuOn.toFixed(2)} | ${cpuOff.toFixed(2)} | ${cpuAdded.toFixed(1)} % |`);
}
const rssOn = median(idle.on);
const rssOff = median(idle.off);
console.log(`\nidle RSS: metrics on ${(rssOn / 1024).toFixed(1)} MiB, off ${(rssOff / 1024).toFixed(1)} MiB: metrics add ${((rssOn - rssOff) / 1024).toFixed(1)} MiB`);
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ node: nodeVersion, opts, results, summary, idleRssKiB: idle }, null, 2));
fs.rmSync(dir, { recursive: true, force: true });
