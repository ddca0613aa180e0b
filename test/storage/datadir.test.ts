/**
 * `junction start --data-dir D` on a directory it must not use: the process exits with code 1, says
 * why on stderr in one line naming D, and leaves D exactly as it was (names, sizes, contents, times).
 * The refusals that involve an engine run with `--storage rocksdb` and with `--storage leveldb`
 * (rocksdb skipped, saying why, where its binary cannot load); a directory of the other engine is
 * refused in both directions; where rocksdb cannot load, asking for it, or starting with the
 * default `auto` on a directory made with it, is refused with how to build it or move the data.
 *
 * Unreadable or unwritable directories: as root, `chmod 000` stops nothing (that case runs only as
 * a regular user), so the cases that fail for root too are a path under a regular file (ENOTDIR)
 * and a read-only mount (EROFS, when this process may mount a tmpfs).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, until } from '../helpers/mqtt.js';
import { MAIN, freePort } from '../helpers/process-broker.js';
import { DISK_ENGINES, mountTmpfs, rocks, skipNote, startedBroker, tempDir, tmpfsUnavailable, umount } from '../helpers/disk.js';
import type { DiskEngine } from '../../storage/engine-choice.js';

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
  // 'close', not 'exit': only then has all of stdout and stderr been read (under load 'exit' comes first).
  const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
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

/**
 * The refusal every case expects: exit code 1 and one `junction: cannot start:` line matching every
 * pattern in `why`, naming `dir` unless it is undefined (an engine that cannot load is no fault of
 * the directory).
 */
function expectRefused(run: Run, dir: string | undefined, ...why: RegExp[]): void {
  const ctx = `exit ${String(run.code)}; stderr: ${run.stderr}; stdout: ${run.stdout}`;
  expect(run.code, ctx).toBe(1);
  const lines = run.stderr.trim().split('\n');
  expect(lines, ctx).toHaveLength(1); // a message, not a stack trace
  expect(lines[0], ctx).toMatch(/^junction: cannot start: /);
  if (dir !== undefined) expect(lines[0], ctx).toContain(dir);
  for (const w of why) expect(lines[0], ctx).toMatch(w);
}

/** A snapshot without LevelDB's informational log and the mtime its rotation changes (see the open bug at the held-directory test). */
const withoutLevelInfoLog = (snap: string[]): string[] =>
  snap.filter((line) => !/^leveldb\/LOG(\.old)? /.test(line)).map((line) => line.replace(/^(leveldb dir .*) mtime=\S+$/, '$1'));

/**
 * A data directory as `engine` lays one out (junction.json, the engine's directory and a CURRENT
 * file in it), made without running the engine: a refusal must come before the engine opens it.
 */
function fakeDataDir(engine: DiskEngine, format = 1): string {
  const dir = tempDir(`junction-fake-${engine}-`);
  writeFileSync(join(dir, 'junction.json'), JSON.stringify({ format, engine }) + '\n');
  mkdirSync(join(dir, engine));
  writeFileSync(join(dir, engine, 'CURRENT'), 'MANIFEST-000001\n');
  return dir;
}

/** Starts a broker on `dir` with `args`, stores a retained message, stops it cleanly. */
async function populate(dir: string, args: string[], topic: string): Promise<void> {
  const b = await startedBroker(['--data-dir', dir, ...args]);
  try {
    const c = await connect(b.port);
    await c.publishAsync(topic, 'kept', { qos: 1, retain: true });
    await c.endAsync();
  } finally {
    expect(await b.kill('SIGTERM'), b.output()).toBe(0);
  }
}

/** The retained message on `topic` of a broker started on `dir` with the default `--storage auto`, and the engine it logged. */
async function startAuto(dir: string, topic: string): Promise<{ storage: string | undefined; retained: string[] }> {
  const b = await startedBroker(['--data-dir', dir]);
  try {
    const started = b
      .output()
      .split('\n')
      .find((l) => l.includes('"broker started"'));
    const c = await connect(b.port);
    await c.subscribeAsync(topic, { qos: 1 });
    await until(() => c.received.length > 0, 5000, 'the retained message');
    const retained = c.received.map((m) => m.payload.toString());
    await c.endAsync();
    return { storage: (JSON.parse(started ?? '{}') as { storage?: string }).storage, retained };
  } finally {
    await b.kill('SIGTERM');
  }
}

const isRoot = process.getuid?.() === 0;
const noMount = tmpfsUnavailable();
const rocksMissing = rocks.ok ? undefined : rocks.detail;

// Every case has its own directories and ports: they run concurrently (vitest's maxConcurrency, 5, at
// a time). A case starts up to three processes: generous time for a loaded 2-core machine.
describe.concurrent('data directory checks at start (junction start --data-dir)', { timeout: 60_000 }, () => {
  for (const { engine, skip } of DISK_ENGINES) {
    describe.skipIf(skip !== undefined)(skipNote(`--storage ${engine}`, skip), () => {
      it('refuses a directory held by another running broker, which keeps running', async () => {
        const dir = join(tempDir(`junction-held-${engine}-`), 'data');
        // Started means its control socket is in the directory too (made after it listens).
        const first = await startedBroker(['--storage', engine, '--data-dir', dir]);
        try {
          const before = snapshot(dir);
          const run = await runStart(['--storage', engine, '--data-dir', dir]);
          expectRefused(run, dir, /in use by another running broker/);
          expect(withoutLevelInfoLog(snapshot(dir))).toEqual(withoutLevelInfoLog(before));
          // The first broker still serves, durably.
          const c = await connect(first.port);
          await c.publishAsync('held/check', 'x', { qos: 1, retain: true });
          await c.endAsync();
        } finally {
          await first.kill('SIGTERM');
        }
      });

      // LevelDB renames its info log LOG to LOG.old before it takes its lock: the broker refuses
      // before the engine opens, when the directory's control socket answers.
      it('a refused start leaves even the running engine\'s info log alone', async () => {
        const dir = join(tempDir(`junction-held-log-${engine}-`), 'data');
        const first = await startedBroker(['--storage', engine, '--data-dir', dir]);
        try {
          const before = snapshot(dir);
          expectRefused(await runStart(['--storage', engine, '--data-dir', dir]), dir, /in use by another running broker/);
          expect(snapshot(dir)).toEqual(before);
        } finally {
          await first.kill('SIGTERM');
        }
      });

      it('refuses a non-empty directory without junction.json (some other data)', async () => {
        const dir = tempDir(`junction-foreign-${engine}-`);
        writeFileSync(join(dir, 'notes.txt'), 'not junction data\n');
        mkdirSync(join(dir, engine));
        writeFileSync(join(dir, engine, 'CURRENT'), 'MANIFEST-000001\n');
        const before = snapshot(dir);
        expectRefused(await runStart(['--storage', engine, '--data-dir', dir]), dir, /not empty and has no junction\.json/);
        expect(snapshot(dir)).toEqual(before);
      });

      it('refuses a directory written in a newer format', async () => {
        const dir = fakeDataDir(engine, 99);
        const before = snapshot(dir);
        expectRefused(await runStart(['--storage', engine, '--data-dir', dir]), dir, /format 99.*newer.*upgrade/);
        expect(snapshot(dir)).toEqual(before);
      });

      it.skipIf(noMount !== undefined)(
        skipNote('refuses an existing data directory remounted read-only, and leaves it untouched', noMount),
        async () => {
          const mnt = tempDir(`junction-ro-data-${engine}-`);
          const dir = join(mnt, 'data');
          mountTmpfs(mnt, 'size=16m');
          try {
            await populate(dir, ['--storage', engine], 'ro/kept');
            mountTmpfs(mnt, 'remount,ro');
            const before = snapshot(dir);
            expectRefused(await runStart(['--storage', engine, '--data-dir', dir]), dir, /read-only/i);
            expect(snapshot(dir)).toEqual(before);
          } finally {
            umount(mnt);
          }
        },
      );

      it.skipIf(isRoot)(
        skipNote('refuses an unreadable directory (chmod 000)', isRoot ? 'root ignores file modes' : undefined),
        async () => {
          const dir = fakeDataDir(engine);
          chmodSync(dir, 0o000);
          try {
            expectRefused(await runStart(['--storage', engine, '--data-dir', dir]), dir, /permission denied/i);
          } finally {
            chmodSync(dir, 0o700);
          }
        },
      );
    });
  }

  describe('a directory of the other engine', () => {
    it('refuses a rocksdb directory started with --storage leveldb (junction.json is read before any engine loads)', async () => {
      const dir = fakeDataDir('rocksdb');
      const before = snapshot(dir);
      expectRefused(await runStart(['--storage', 'leveldb', '--data-dir', dir]), dir, /belongs to the rocksdb engine, not leveldb/, /--storage rocksdb/, /junction data export\/import/);
      expect(snapshot(dir)).toEqual(before);
    });

    it.skipIf(rocksMissing !== undefined)(skipNote('refuses a leveldb directory started with --storage rocksdb', rocksMissing), async () => {
      const dir = fakeDataDir('leveldb');
      const before = snapshot(dir);
      expectRefused(await runStart(['--storage', 'rocksdb', '--data-dir', dir]), dir, /belongs to the leveldb engine, not rocksdb/, /--storage leveldb/);
      expect(snapshot(dir)).toEqual(before);
    });

    it.skipIf(rocksMissing === undefined)(
      skipNote('where rocksdb cannot load, --storage rocksdb is refused with how to build it, on a leveldb directory and on a new one, touching neither', rocksMissing === undefined ? 'rocksdb loads here' : undefined),
      async () => {
        const dir = fakeDataDir('leveldb');
        const before = snapshot(dir);
        const build = /storage engine rocksdb cannot be used: .*npm rebuild rocksdb --build-from-source.*--storage leveldb/;
        expectRefused(await runStart(['--storage', 'rocksdb', '--data-dir', dir]), undefined, build);
        expect(snapshot(dir)).toEqual(before);
        const fresh = join(tempDir('junction-fresh-'), 'data');
        expectRefused(await runStart(['--storage', 'rocksdb', '--data-dir', fresh]), undefined, build);
        expect(existsSync(fresh), 'the new directory was not made').toBe(false);
      },
    );

    it.skipIf(rocksMissing === undefined)(
      skipNote('where rocksdb cannot load, the default (auto) refuses a directory made with rocksdb and says how to proceed', rocksMissing === undefined ? 'rocksdb loads here: auto opens it (next test)' : undefined),
      async () => {
        const dir = fakeDataDir('rocksdb');
        const before = snapshot(dir);
        expectRefused(await runStart(['--data-dir', dir]), dir, /was made with rocksdb, which cannot be used here/, /npm rebuild rocksdb --build-from-source/, /junction data export \/ import/);
        expect(snapshot(dir)).toEqual(before);
      },
    );

    for (const { engine, skip } of DISK_ENGINES) {
      it.skipIf(skip !== undefined)(skipNote(`the default (auto) opens a directory made with ${engine} with ${engine}, and finds its data`, skip), async () => {
        const dir = join(tempDir(`junction-auto-${engine}-`), 'data');
        await populate(dir, ['--storage', engine], 'auto/kept');
        expect(await startAuto(dir, 'auto/kept')).toEqual({ storage: engine, retained: ['kept'] });
      });
    }
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

  it.skipIf(noMount !== undefined)(skipNote('refuses an empty directory on a read-only file system (EROFS: fails for root too)', noMount), async () => {
    const dir = tempDir('junction-ro-');
    mountTmpfs(dir, 'ro,size=64k');
    try {
      const before = snapshot(dir);
      expectRefused(await runStart(['--data-dir', dir]), dir, /read-only/i);
      expect(snapshot(dir)).toEqual(before);
    } finally {
      umount(dir);
    }
  });
});
