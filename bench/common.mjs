// common.mjs: what run.mjs and soak.mjs share: the load generator's build, free ports, waiting for a broker.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.dirname(here);
export const cacheDir = path.join(os.tmpdir(), 'junction-bench');

/** Compiles bench/mqttload.c into the cache dir when the binary is missing or older than the source. */
export function buildLoader() {
  const src = path.join(here, 'mqttload.c');
  const bin = path.join(cacheDir, 'mqttload');
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return bin;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  const cc = spawnSync('cc', ['-O2', '-o', tmp, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (cc.error) throw new Error(`cannot run cc to build mqttload (${cc.error.message}); install a C compiler, e.g. apt-get install -y gcc`);
  if (cc.status !== 0) throw new Error(`cc -O2 ${src} failed`);
  fs.renameSync(tmp, bin); // atomic: a concurrent bench never runs a half-written binary
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true once 127.0.0.1:port accepts a TCP connection, or an error text after timeoutMs. */
export async function waitForPort(port, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy(); // only probing: a held connection would count against the broker
        resolve(true);
      });
      s.once('error', () => resolve(false));
    }).catch(() => false);
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return `broker did not accept connections on port ${port} within ${timeoutMs / 1000} s`;
}
