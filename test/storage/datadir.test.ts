/**
 * `junction start --data-dir D` on a directory it must not use: the process exits with code 1, says
 * why on stderr in one line naming D, and leaves D exactly as it was (names, sizes, contents, times).
 *
 * Unreadable or unwritable directories: as root, `chmod 000` stops nothing (that case runs only as
 * a regular user), so the cases that fail for root too are a path under a regular file (ENOTDIR)
 * and a read-only mount (EROFS, when this process may mount a tmpfs).
 */
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, until } from '../helpers/mqtt.js';
import { MAIN, freePort, startBrokerProcess } from '../helpers/process-broker.js';
import { tempDir } from '../helpers/rocks.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `junction start` and waits for it to exit; one that keeps running is killed and reported. */
async function runStart(args: string[], timeoutMs = 15_000): Promise<Run> {
  const port = await freePort();
  const proc = spawn(process.execPath, [MAIN, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Everything about a directory tree a broker could change: names, types, sizes, modes, times, contents, inodes of sockets. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    const st = statSync(d);
    out.push(`${rel || '.'} dir mode=${st.mode.toString(8)} mtime=${st.mtimeMs}`);
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const s = statSync(path);
      if (s.isDirectory()) walk(path, join(rel, name));
      else if (!s.isFile()) out.push(`${join(rel, name)} special ino=${s.ino} mode=${s.mode.toString(8)} mtime=${s.mtimeMs}`); // control socket
      else {
        const sha = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
        out.push(`${join(rel, name)} size=${s.size} mode=${s.mode.toString(8)} mtime=${s.mtimeMs} sha=${sha}`);
      }
    }
  };
  walk(dir, '');
  return out;
}

/** The refusal every case expects: exit code 1 and one `junction: cannot start:` line naming `dir`. */
function expectRefused(run: Run, dir: string, why: RegExp): void {
  const ctx = `exit ${String(run.code)}; stderr: ${run.stderr}; stdout: ${run.stdout}`;
  expect(run.code, ctx).toBe(1);
  const lines = run.stderr.trim().split('\n');
  expect(lines, ctx).toHaveLength(1); // a message, not a stack trace
  expect(lines[0], ctx).toMatch(/^junction: cannot start: /);
  expect(lines[0], ctx).toContain(dir);
  expect(lines[0], ctx).toMatch(why);
}

const isRoot = process.getuid?.() === 0;

/** Whether this process may mount a tmpfs (root outside a restricted container). */
function mountWorks(): boolean {
  const at = tempDir('junction-mount-probe-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', at], { stdio: 'ignore' });
  if (r.status !== 0) return false;
  spawnSync('umount', [at], { stdio: 'ignore' });
  return true;
}
const canMount = mountWorks();

function mount(at: string, opts: string): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', at], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount ${at}: ${r.stderr}`);
}

function umount(at: string): void {
  spawnSync('umount', [at], { stdio: 'ignore' });
}

describe('data directory checks at start (junction start --data-dir)', () => {
  it('refuses a directory held by another running broker, which keeps running', async () => {
    const dir = join(tempDir('junction-held-'), 'data');
    const port = await freePort();
    const first = await startBrokerProcess(['--storage', 'rocksdb', '--data-dir', dir], port);
    try {
      // Listening comes before the control socket is made in the directory: wait for the whole start.
      await until(() => first.output().includes('"broker started"'), 10_000, 'the first broker to finish starting');
      const before = snapshot(dir);
      const run = await runStart(['--storage', 'rocksdb', '--data-dir', dir]);
      expectRefused(run, dir, /in use by another running broker/);
      expect(snapshot(dir)).toEqual(before);
      // The first broker still serves, durably.
      const c = await connect(port);
      await c.publishAsync('held/check', 'x', { qos: 1, retain: true });
      await c.endAsync();
    } finally {
      await first.kill('SIGTERM');
    }
  });

  it('refuses a non-empty directory without junction.json (some other data)', async () => {
    const dir = tempDir('junction-foreign-');
    writeFileSync(join(dir, 'notes.txt'), 'not junction data\n');
    mkdirSync(join(dir, 'db'));
    writeFileSync(join(dir, 'db', 'CURRENT'), 'MANIFEST-000001\n');
    const before = snapshot(dir);
    expectRefused(await runStart(['--data-dir', dir]), dir, /not empty and has no junction\.json/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses a directory written in a newer format', async () => {
    const dir = tempDir('junction-newer-');
    writeFileSync(join(dir, 'junction.json'), JSON.stringify({ format: 99, engine: 'rocksdb' }) + '\n');
    mkdirSync(join(dir, 'rocksdb'));
    const before = snapshot(dir);
    expectRefused(await runStart(['--data-dir', dir]), dir, /format 99.*newer.*upgrade/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses a directory of another engine', async () => {
    const dir = tempDir('junction-other-engine-');
    writeFileSync(join(dir, 'junction.json'), JSON.stringify({ format: 1, engine: 'leveldb' }) + '\n');
    mkdirSync(join(dir, 'leveldb'));
    writeFileSync(join(dir, 'leveldb', 'CURRENT'), 'MANIFEST-000001\n');
    const before = snapshot(dir);
    // Asked for rocksdb explicitly: the default (auto) would follow the directory to leveldb.
    expectRefused(await runStart(['--storage', 'rocksdb', '--data-dir', dir]), dir, /belongs to the leveldb engine/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses a path under a regular file (unusable even for root) and names the path', async () => {
    const parent = tempDir('junction-notdir-');
    const file = join(parent, 'file');
    writeFileSync(file, 'a file, not a directory\n');
    const dir = join(file, 'sub');
    const before = snapshot(parent);
    expectRefused(await runStart(['--data-dir', dir]), dir, /not a directory/);
    expect(snapshot(parent)).toEqual(before);
  });

  it('names the flag when --data-dir is empty', async () => {
    const run = await runStart(['--data-dir', '']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/^junction: bad configuration: .*--data-dir/);
  });

  it.skipIf(!canMount)('refuses an empty directory on a read-only file system (EROFS: fails for root too)', async () => {
    const dir = tempDir('junction-ro-');
    mount(dir, 'ro,size=64k');
    try {
      const before = snapshot(dir);
      expectRefused(await runStart(['--data-dir', dir]), dir, /read-only/i);
      expect(snapshot(dir)).toEqual(before);
    } finally {
      umount(dir);
    }
  });

  it.skipIf(!canMount)('refuses an existing data directory remounted read-only, and leaves it untouched', async () => {
    const mnt = tempDir('junction-ro-data-');
    const dir = join(mnt, 'data');
    mount(mnt, 'size=16m');
    try {
      const port = await freePort();
      const b = await startBrokerProcess(['--storage', 'rocksdb', '--data-dir', dir], port);
      const c = await connect(port);
      await c.publishAsync('ro/kept', 'kept', { qos: 1, retain: true });
      await c.endAsync();
      expect(await b.kill('SIGTERM')).toBe(0);
      mount(mnt, 'remount,ro');
      const before = snapshot(dir);
      expectRefused(await runStart(['--storage', 'rocksdb', '--data-dir', dir]), dir, /read-only/i);
      expect(snapshot(dir)).toEqual(before);
    } finally {
      umount(mnt);
    }
  });

  it.skipIf(isRoot)('refuses an unreadable directory (chmod 000; root ignores modes, so regular users only)', async () => {
    const dir = tempDir('junction-unreadable-');
    writeFileSync(join(dir, 'junction.json'), JSON.stringify({ format: 1, engine: 'rocksdb' }) + '\n');
    chmodSync(dir, 0o000);
    try {
      expectRefused(await runStart(['--data-dir', dir]), dir, /permission denied/i);
    } finally {
      chmodSync(dir, 0o700);
    }
  });
});
