/**
 * Backup and restore across engines: `junction data export` / `junction data import` run as the
 * real CLI (dist), against a stopped broker and a running one; a broker restarted on the imported
 * directory delivers what the old one would have.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { rocksdbLoads, type DiskEngine } from '../../storage/engine-choice.js';
import { until } from '../helpers/mqtt.js';
import { MAIN, freePort, startBrokerProcess } from '../helpers/process-broker.js';
import { skipNote } from '../helpers/disk.js';

const run = promisify(execFile);
const rocks = rocksdbLoads();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `junction-export-${name}-`));
  dirs.push(d);
  return d;
}

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [MAIN, ...args], { maxBuffer: 64 * 1024 * 1024 });
}

async function cliFails(...args: string[]): Promise<string> {
  try {
    await cli(...args);
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    expect(e.code).toBe(1);
    return e.stderr ?? '';
  }
  throw new Error(`junction ${args.join(' ')} succeeded`);
}

/** A broker on `dir` with: an offline persistent session owed 3 QoS 1 messages, a retained message. */
async function populate(dir: string, engine: DiskEngine): Promise<void> {
  const port = await freePort();
  const b = await startBrokerProcess(['--data-dir', dir, '--storage', engine, '--log-level', 'warn'], port);
  try {
    const sub = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion: 5, clientId: 'exp-sub', clean: false, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0 });
    await sub.subscribeAsync('exp/#', { qos: 1, rap: true });
    await sub.endAsync();
    const pub = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0 });
    for (let i = 1; i <= 3; i++) {
      await pub.publishAsync(`exp/${i}`, Buffer.from([0, i, 255]), { qos: 1, properties: { userProperties: { n: String(i) } } });
    }
    await pub.publishAsync('exp/state', 'kept', { qos: 1, retain: true });
    await pub.endAsync();
  } finally {
    await b.kill('SIGTERM');
  }
}

/** Connects the persistent session on a broker over `dir` and collects what it is owed. */
async function drain(dir: string, engine: DiskEngine): Promise<string[]> {
  const port = await freePort();
  const b = await startBrokerProcess(['--data-dir', dir, '--storage', engine, '--log-level', 'warn'], port);
  try {
    const got: string[] = [];
    const sub = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, clientId: 'exp-sub', clean: false, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0, resubscribe: false });
    sub.on('message', (t, p, packet) => got.push(`${t}=${p.toString('hex')} retain=${packet.retain} n=${String(packet.properties?.userProperties?.['n'] ?? '')}`));
    await new Promise<void>((resolve, reject) => {
      sub.once('connect', (ack) => (ack.sessionPresent ? resolve() : reject(new Error('session lost'))));
      sub.once('error', reject);
    });
    await until(() => got.length >= 4, 5000, 'queued messages');
    await sub.subscribeAsync('exp/state', { qos: 1 });
    await until(() => got.length >= 5, 5000, 'retained message');
    await sub.endAsync();
    return got.sort();
  } finally {
    await b.kill('SIGTERM');
  }
}

// Queued while offline: three messages and the retained one (Retain As Published keeps its flag);
// then the retained message again for the new subscription.
const expected = [
  'exp/1=0001ff retain=false n=1',
  'exp/2=0002ff retain=false n=2',
  'exp/3=0003ff retain=false n=3',
  'exp/state=6b657074 retain=true n=',
  'exp/state=6b657074 retain=true n=',
];

describe('data export / import', () => {
  it.skipIf(!rocks.ok)(skipNote('round trip rocksdb -> file -> leveldb -> file gives identical files', rocks.ok ? undefined : rocks.detail), { timeout: 60_000 }, async () => {
    const a = tmp('rocks');
    const b = join(tmp('level-parent'), 'data');
    await populate(a, 'rocksdb');
    const f1 = join(tmp('files'), 'a.jsonl');
    const f2 = join(tmp('files'), 'b.jsonl');
    await cli('data', 'export', '--data-dir', a, '--out', f1);
    await cli('data', 'import', '--data-dir', b, '--engine', 'leveldb', f1);
    await cli('data', 'export', '--data-dir', b, '--out', f2);
    const text = readFileSync(f1, 'utf8');
    expect(text.split('\n')[0]).toBe('{"junction":"data-export","version":1,"format":1}');
    expect(text).toContain('"t":"session"');
    expect(text).toContain('"t":"pending"');
    expect(text).toContain('"t":"retained"');
    expect(readFileSync(f2, 'utf8')).toBe(text);
    // The imported directory serves what the original would have.
    expect(await drain(b, 'leveldb')).toEqual(expected);
  });

  it('a running broker exports through its control socket, consistently with a stopped one', { timeout: 60_000 }, async () => {
    const dir = tmp('live');
    await populate(dir, 'leveldb');
    const stopped = (await cli('data', 'export', '--data-dir', dir)).stdout;
    const port = await freePort();
    const b = await startBrokerProcess(['--data-dir', dir, '--storage', 'leveldb', '--log-level', 'warn'], port);
    try {
      const live = (await cli('data', 'export', '--data-dir', dir)).stdout;
      // The session row changes when the restarted broker records it as still offline; the rest is equal.
      const body = (s: string): string[] => s.split('\n').filter((l) => !l.includes('"t":"session"'));
      expect(body(live)).toEqual(body(stopped));
      expect(live.split('\n').filter(Boolean).length).toBe(stopped.split('\n').filter(Boolean).length);
    } finally {
      await b.kill('SIGTERM');
    }
    const copy = join(tmp('copy-parent'), 'data');
    const f = join(tmp('files'), 'live.jsonl');
    writeFileSync(f, stopped);
    await cli('data', 'import', '--data-dir', copy, '--engine', 'leveldb', f);
    expect(await drain(copy, 'leveldb')).toEqual(expected);
  });

  it('import refuses a non-empty directory, a bad file, and touches nothing', async () => {
    const dir = tmp('busy');
    writeFileSync(join(dir, 'keep.txt'), 'x');
    const f = join(tmp('files'), 'bad.jsonl');
    writeFileSync(f, '{"junction":"data-export","version":1,"format":1}\n');
    expect(await cliFails('data', 'import', '--data-dir', dir, '--engine', 'leveldb', f)).toMatch(/not empty/);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('x');
    const notExport = join(tmp('files'), 'other.jsonl');
    writeFileSync(notExport, '{"hello":1}\n');
    const fresh = join(tmp('fresh-parent'), 'data');
    expect(await cliFails('data', 'import', '--data-dir', fresh, '--engine', 'leveldb', notExport)).toMatch(/not a Junction export/);
    const newer = join(tmp('files'), 'newer.jsonl');
    writeFileSync(newer, '{"junction":"data-export","version":1,"format":99}\n');
    const fresh2 = join(tmp('fresh-parent'), 'data2');
    mkdirSync(fresh2);
    expect(await cliFails('data', 'import', '--data-dir', fresh2, '--engine', 'leveldb', newer)).toMatch(/format 99/);
    expect(await cliFails('data', 'export', '--data-dir', tmp('empty'))).toMatch(/not a Junction data directory/);
  });

  it.skipIf(rocks.ok)(skipNote('asking for rocksdb where it cannot load says how to build it', rocks.ok ? 'rocksdb loads here' : undefined), async () => {
    const f = join(tmp('files'), 'x.jsonl');
    writeFileSync(f, '{"junction":"data-export","version":1,"format":1}\n');
    expect(await cliFails('data', 'import', '--data-dir', join(tmp('r'), 'd'), '--engine', 'rocksdb', f)).toMatch(/npm rebuild rocksdb --build-from-source/);
  });
});
