/**
 * Command line clients (mosquitto_pub / mosquitto_sub, openssl, junction) as child processes,
 * killed after the test file if still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const running = new Set<ChildProcess>();
afterAll(() => {
  for (const p of running) p.kill('SIGKILL');
});

/** Starts `cmd`; the promise settles when it exits (killed after `timeoutMs`). */
export function run(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<Run> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(p);
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(timer);
      running.delete(p);
      resolve({ code, stdout, stderr });
    });
  });
}
