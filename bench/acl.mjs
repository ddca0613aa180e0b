#!/usr/bin/env node
// acl.mjs: what access control costs Junction (issue 6 "Done when"). Standalone, Junction only.
//
// 1. QoS 0 throughput, mqttload's fanin (20 publishers on bench/t<i> -> 1 subscriber on bench/#),
//    without an ACL and with a 1,000-rule ACL for anonymous clients: 998 unrelated
//    `topic read x/<i>/#`, `topic readwrite bench/#` and `topic deny bench/denied/#`. The deny rule
//    reaches into bench/#, so besides every PUBLISH every delivery through bench/# is checked too
//    (the worst case of a wildcard subscription). Runs alternate (none, acl, none, acl, ...), each on
//    a fresh broker; the medians are compared: the goal is acl >= 90% of none.
// 2. Connection rate: closed-loop MQTT 3.1.1 CONNECT -> CONNACK -> DISCONNECT, `--concurrency`
//    threads of a small C loader (as mqttload's connect scenario, plus username and password):
//    anonymous; with a password file (junction passwd's PBKDF2-SHA512, 100,000 iterations) and one
//    user logging in again and again (after the first, the broker's verification memory answers);
//    and "cold", every login a different user (a full PBKDF2 each).
//
//   node bench/acl.mjs [--rounds 3] [--duration 5] [--warmup 1] [--rules 1000] [--concurrency 8]
//                      [--cold-users 200] [--json FILE]
//
// Needs `npm run build` (it runs dist/src/server/main.js) and a C compiler (mqttload, the loader).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildLoader, cacheDir, freePort, repo, waitForPort } from './common.mjs';

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    rules: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    'cold-users': { type: 'string', default: '200' },
    json: { type: 'string' },
  },
});
const rounds = Number(opt.rounds);
const duration = Number(opt.duration);
const warmup = Number(opt.warmup);
const ruleCount = Number(opt.rules);
const concurrency = Number(opt.concurrency);
const coldUsers = Number(opt['cold-users']);

const main = path.join(repo, 'dist/src/server/main.js');
if (!fs.existsSync(main)) {
  console.error(`${main} not found: run \`npm run build\` first`);
  process.exit(1);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'junction-acl-bench-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

// -- files ----------------------------------------------------------------------------------------

const aclFile = path.join(dir, 'acl');
const rules = [];
for (let i = 0; rules.length < ruleCount - 2; i++) rules.push(`topic read x/${i}/#`);
rules.push('topic readwrite bench/#', 'topic deny bench/denied/#');
fs.writeFileSync(aclFile, `# ${rules.length} rules for anonymous clients\n${rules.join('\n')}\n`);

/** The password file: `bench` (warm) and bench-0..N-1 (cold), hashed as `junction passwd` does. */
async function passwordFile() {
  const { hashPassword } = await import(new URL(`file://${path.join(repo, 'dist/src/server/auth/passwords.js')}`).href);
  const names = ['bench', ...Array.from({ length: coldUsers }, (_, i) => `bench-${i}`)];
  // PBKDF2 runs on the libuv pool: hash in parallel.
  const hashes = await Promise.all(names.map((n) => hashPassword(`pw-${n}`)));
  const file = path.join(dir, 'passwd');
  fs.writeFileSync(file, names.map((n, i) => `${n}:${hashes[i]}\n`).join(''), { mode: 0o600 });
  const iterations = hashes[0].split('$')[2];
  return { file, iterations };
}

// The default limits.connectRate (1,000 new connections a second per listener) would measure the
// limit, not the authentication: lifted where this build has it.
const hasConnectRate = fs.readFileSync(path.join(repo, 'dist/src/server/config.js'), 'utf8').includes('connectRate');

function config(name, auth) {
  const lines = [];
  if (auth) lines.push('auth:', ...Object.entries(auth).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`));
  if (hasConnectRate) lines.push('limits:', '  connectRate: 0');
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

// -- broker ---------------------------------------------------------------------------------------

async function startJunction(configFile) {
  const port = await freePort();
  const args = [main, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), '--stomp-port', '0', '--http-port', '0', '--storage', 'memory', '--config', configFile];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const up = await waitForPort(port, 15_000);
  if (up !== true) {
    proc.kill('SIGKILL');
    throw new Error(`${up}: ${stderr}`);
  }
  const cpu0 = cpuSeconds(proc.pid);
  return {
    port,
    cpu: () => cpuSeconds(proc.pid) - cpu0,
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', resolve);
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** utime + stime of a process, in seconds (Linux /proc). */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

// -- 1. throughput --------------------------------------------------------------------------------

async function fanin(variant, configFile, loader) {
  const b = await startJunction(configFile);
  try {
    const r = spawnSync(loader, ['--port', String(b.port), '--scenario', 'fanin', '--pubs', '20', '--qos', '0', '--duration', String(duration), '--warmup', String(warmup)], {
      encoding: 'utf8',
      timeout: (duration + warmup + 60) * 1000,
    });
    const line = r.stdout.trim().split('\n').pop();
    if (r.status !== 0 || !line) throw new Error(`mqttload failed (${r.status}): ${r.stderr}`);
    const m = JSON.parse(line);
    return { variant, delivered_per_s: m.delivered_per_s, lost: m.lost, p99_us: m.lat_us_p99, broker_cpu_s: b.cpu() };
  } finally {
    await b.stop();
  }
}

// -- 2. connection rate ---------------------------------------------------------------------------

// mqttload's connect scenario sends no username, so the connect loop is a small C program of its
// own, compiled once into the cache dir (a Node client measures its own share of a busy machine's
// CPU rather than the broker). Each of `threads` threads loops: connect, CONNECT (3.1.1, clean
// session, username/password when given) -> CONNACK -> DISCONNECT -> the broker's close. Users:
// argv "-" none, "bench" that one user, "cold" bench-<k> with a different k each time (until `limit`).
const CONNLOAD_C = String.raw`
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static int port, threads, limit; static double secs; static const char *mode;
static atomic_int next_user, ok, refused, failed; static atomic_int stop;
static size_t str(unsigned char *o, const char *s) { size_t n = strlen(s); o[0] = n >> 8; o[1] = n & 255; memcpy(o + 2, s, n); return n + 2; }
static void *run(void *arg) {
  long id = (long)arg; unsigned long n = 0;
  while (!atomic_load(&stop)) {
    char user[64] = "", pass[64] = "", cid[64];
    if (!strcmp(mode, "bench")) { strcpy(user, "bench"); strcpy(pass, "pw-bench"); }
    else if (!strcmp(mode, "cold")) {
      int k = atomic_fetch_add(&next_user, 1); if (k >= limit) break;
      sprintf(user, "bench-%d", k); sprintf(pass, "pw-bench-%d", k);
    }
    sprintf(cid, "cl-%ld-%lu", id, n++);
    unsigned char body[256], p[260]; size_t b = 0;
    memcpy(body, "\0\4MQTT\4\2\0\x3c", 10); b = 10;
    if (*user) body[7] |= 0xc0;
    b += str(body + b, cid); if (*user) { b += str(body + b, user); b += str(body + b, pass); }
    p[0] = 0x10; p[1] = (unsigned char)b; memcpy(p + 2, body, b);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) }; a.sin_addr.s_addr = htonl(0x7f000001);
    unsigned char r[4]; size_t got = 0; ssize_t k = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, p, b + 2) == (ssize_t)(b + 2))
      while (got < 4 && (k = read(fd, r + got, 4 - got)) > 0) got += k;
    if (got == 4 && r[0] == 0x20) {
      if (r[3] == 0) atomic_fetch_add(&ok, 1); else atomic_fetch_add(&refused, 1);
      unsigned char d[2] = { 0xe0, 0 }; if (write(fd, d, 2) == 2) { char sink[64]; while (read(fd, sink, sizeof sink) > 0) {} }
    } else atomic_fetch_add(&failed, 1);
    struct linger l = { 1, 0 }; setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l); close(fd);
  }
  return NULL;
}
int main(int argc, char **argv) {
  if (argc < 6) return 64;
  port = atoi(argv[1]); threads = atoi(argv[2]); secs = atof(argv[3]); mode = argv[4]; limit = atoi(argv[5]);
  pthread_t *t = calloc(threads, sizeof *t); struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, (void *)i);
  if (strcmp(mode, "cold")) { usleep((useconds_t)(secs * 1e6)); atomic_store(&stop, 1); }
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1); double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\"connects\":%d,\"refused\":%d,\"failed\":%d,\"seconds\":%.3f,\"per_s\":%.1f}\n", ok, refused, failed, el, ok / el);
  return 0;
}
`;

function buildConnLoad() {
  const src = path.join(cacheDir, 'acl-connload.c');
  const bin = path.join(cacheDir, 'acl-connload');
  fs.mkdirSync(cacheDir, { recursive: true });
  if (fs.existsSync(bin) && fs.existsSync(src) && fs.readFileSync(src, 'utf8') === CONNLOAD_C) return bin;
  fs.writeFileSync(src, CONNLOAD_C);
  const cc = spawnSync('cc', ['-O2', '-o', `${bin}.${process.pid}`, src, '-lpthread'], { stdio: 'inherit' });
  if (cc.status !== 0) throw new Error('cc failed to build the connect loader');
  fs.renameSync(`${bin}.${process.pid}`, bin);
  return bin;
}

/** Runs the connect loader for `seconds` (or, "cold", until `limit` users logged in once each). */
function connectLoop(bin, port, mode, seconds, limit = 0) {
  const r = spawnSync(bin, [String(port), String(concurrency), String(seconds), mode, String(limit)], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`connect loader failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}

async function connectRate(bin, variant, configFile, mode, limit) {
  const b = await startJunction(configFile);
  try {
    if (mode !== 'cold') connectLoop(bin, b.port, mode, warmup); // warm: JIT, and the verification memory
    const cpu0 = b.cpu();
    const r = connectLoop(bin, b.port, mode, duration, limit);
    return { variant, ...r, broker_cpu_s: b.cpu() - cpu0 };
  } finally {
    await b.stop();
  }
}

// -- run ------------------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const k = (x) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
const rev = spawnSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim();
console.log(`acl bench: junction (${rev}) on node ${process.version}; ${os.cpus().length} cpus; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`${rounds} rounds x ${duration} s (warmup ${warmup} s); cache ${cacheDir}`);

const loader = buildLoader('mqttload');
const noneCfg = config('none');
const aclCfg = config('acl', { aclFile });
const through = [];
for (let r = 0; r < rounds; r++) {
  for (const [variant, cfg] of [
    ['none', noneCfg],
    [`acl-${rules.length}`, aclCfg],
  ]) {
    const res = await fanin(variant, cfg, loader);
    through.push(res);
    console.log(`  round ${r + 1} ${variant.padEnd(9)} ${k(res.delivered_per_s).padStart(7)}/s  lost ${res.lost}  p99 ${res.p99_us} us  broker CPU ${res.broker_cpu_s.toFixed(2)} s`);
  }
}
const med = (v) => median(through.filter((t) => t.variant === v).map((t) => t.delivered_per_s));
const none = med('none');
const acl = med(`acl-${rules.length}`);
const ratio = acl / none;
console.log(`\n== QoS 0 fanin 20 -> 1 (bench/#), median of ${rounds}`);
console.log(`no ACL              ${k(none).padStart(7)}/s`);
console.log(`ACL ${String(rules.length).padEnd(5)} rules     ${k(acl).padStart(7)}/s   ${(ratio * 100).toFixed(1)}% of no ACL  (goal >= 90%: ${ratio >= 0.9 ? 'met' : 'NOT met'})`);

console.log(`\n== connection rate: CONNECT -> CONNACK -> DISCONNECT, ${concurrency} at once`);
const connload = buildConnLoad();
const pw = await passwordFile();
const pwCfg = config('passwd', { passwordFile: pw.file });
const conns = [];
for (let r = 0; r < rounds; r++) {
  conns.push(await connectRate(connload, 'anonymous', noneCfg, '-'));
  conns.push(await connectRate(connload, 'password', pwCfg, 'bench'));
}
// Cold: each of the users logs in once; a full PBKDF2 per CONNECT.
conns.push(await connectRate(connload, 'password-cold', pwCfg, 'cold', coldUsers));
const cmed = (v) => median(conns.filter((c) => c.variant === v).map((c) => c.per_s));
const refusedAll = conns.reduce((a, c) => a + c.refused + c.failed, 0);
console.log(`anonymous           ${k(cmed('anonymous')).padStart(7)}/s`);
console.log(`password (warm)     ${k(cmed('password')).padStart(7)}/s   one user again and again: the verification memory answers`);
console.log(`password (cold)     ${k(cmed('password-cold')).padStart(7)}/s   ${coldUsers} users, each once: PBKDF2-SHA512 with ${pw.iterations} iterations each`);
if (refusedAll > 0) console.log(`warning: ${refusedAll} CONNECTs refused or failed`);

if (opt.json) {
  fs.writeFileSync(
    opt.json,
    JSON.stringify({ rev, node: process.version, rounds, duration, warmup, rules: rules.length, concurrency, throughput: through, ratio, connections: conns }, null, 2),
  );
}
process.exit(refusedAll > 0 || through.some((t) => t.lost > 0) ? 2 : 0);
