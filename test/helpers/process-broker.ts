/**
 * A broker as a child process (`node dist/src/server/main.js start ...`): for tests that kill it
 * with SIGKILL and start it again on the same data directory and port. Needs `npm run build`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../dist/src/server/main.js', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export interface BrokerProcess {
  readonly proc: ChildProcess;
  readonly port: number;
  /** stdout + stderr so far. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startBrokerProcess(args: string[], port: number, timeoutMs = 15_000): Promise<BrokerProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run npm run build`);
  // A STOMP port of its own only when the test asks for one: parallel brokers must not collide.
  const stomp = args.includes('--stomp-port') ? [] : ['--stomp-port', '0'];
  if (!args.includes('--http-port')) stomp.push('--http-port', '0');
  const proc = spawn(process.execPath, [MAIN, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), ...stomp, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`broker exited with ${proc.exitCode}: ${out}`);
    // The STOMP port too when the test gave one: it is bound beside the MQTT one, not before it.
    const stompAt = args.indexOf('--stomp-port');
    const stompPort = stompAt >= 0 ? Number(args[stompAt + 1]) : 0;
    if ((await accepting(port)) && (stompPort === 0 || (await accepting(stompPort)))) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`broker did not listen on ${port}: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    port,
    output: () => out,
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
