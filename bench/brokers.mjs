// brokers.mjs: the brokers bench/run.mjs compares, one entry each.
//
// A broker is { name, prepare(ctx), command(run) }:
// - prepare({ cacheDir, repo }) runs once per bench run. It returns { skip: 'one-line reason' } when
//   the broker cannot run here (binary missing, install failed), else { version, warning?, ... }; the
//   whole object comes back to command() as `prepared`.
// - command({ port, dir, extra, prepared }) returns { file, args, env?, files? } for one fresh broker
//   on 127.0.0.1:port. `file` must BE the broker, not a shell wrapper: run.mjs reads CPU time and
//   peak RSS from /proc/<pid> of the process it spawns. `dir` is an empty directory private to this
//   run (config, data); `files` maps names in it to contents written before the start. `extra` is
//   the scenario's entry for this broker (SCENARIOS in run.mjs), `{dir}` in its strings already
//   replaced; what each broker reads from it is said above its definition.
// - unavailable({ extra, prepared }) (optional) returns a one-line reason when this broker cannot run
//   a scenario with these extras here (Junction on RocksDB where rocksdb does not load), else undefined.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
  command({ port, extra, prepared }) {
    return {
      file: prepared.node,
      // The STOMP (61613) and HTTP/WebSocket (8083) listeners open by default too: port 0 (any free
      // port) keeps two runs, or a run and a Junction already on this machine, from colliding.
      args: [prepared.main, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), '--stomp-port', '0', '--http-port', '0',
        '--storage', extra.storage ?? 'memory', ...(extra.args ?? [])],
      files: extra.files,
    };
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

/** Mosquitto in memory with unlimited queues, like shared/tools/mosq.sh. extra.conf: more config lines. */
const mosquitto = {
  name: 'mosquitto',
  prepare() {
    const bin = which('mosquitto', ['/usr/sbin', '/usr/local/sbin']);
    if (!bin) return { skip: 'mosquitto not installed (Debian/Ubuntu: apt-get install -y mosquitto)' };
    const help = spawnSync(bin, ['-h'], { encoding: 'utf8' });
    return { version: /version (\S+)/.exec(`${help.stdout}${help.stderr}`)?.[1] ?? '?', bin };
  },
  command({ port, dir, extra, prepared }) {
    const conf = [
      `listener ${port} 127.0.0.1`,
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

export const BROKERS = { junction, mosquitto, aedes };

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
