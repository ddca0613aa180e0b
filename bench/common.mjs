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

/**
 * Compiles bench/<name>.c (mqttload, stompload) into the cache dir when the binary is missing or older
 * than the source. mqttload links OpenSSL for --tls 1; without its headers (libssl-dev) it is built
 * without TLS, with one warning, and the TLS scenarios then fail saying so.
 */
export function buildLoader(name = 'mqttload') {
  const src = path.join(here, `${name}.c`);
  const bin = path.join(cacheDir, name);
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return bin;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  const attempts = name === 'mqttload' ? [['-lssl', '-lcrypto', '-lpthread'], ['-DNO_TLS', '-lpthread']] : [[]];
  for (const [i, flags] of attempts.entries()) {
    const last = i === attempts.length - 1;
    const cc = spawnSync('cc', ['-O2', '-o', tmp, src, ...flags], { stdio: ['ignore', last ? 'inherit' : 'ignore', last ? 'inherit' : 'ignore'] });
    if (cc.error) throw new Error(`cannot run cc to build ${name} (${cc.error.message}); install a C compiler, e.g. apt-get install -y gcc`);
    if (cc.status === 0) {
      if (flags.includes('-DNO_TLS')) console.log(`warning: ${name} built without TLS (no OpenSSL headers: apt-get install -y libssl-dev)`);
      fs.renameSync(tmp, bin); // atomic: a concurrent bench never runs a half-written binary
      return bin;
    }
  }
  throw new Error(`cc -O2 ${src} failed`);
}

/**
 * A development CA and server certificate for localhost/127.0.0.1 (Junction's `junction certs`, i.e.
 * openssl) in the cache dir, made once: { ca, cert, key }, or { error } saying why not.
 */
export function devCerts() {
  const dir = path.join(cacheDir, 'certs');
  const files = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
  if (Object.values(files).every((f) => fs.existsSync(f))) return files;
  const main = path.join(repo, 'dist/src/server/main.js');
  if (!fs.existsSync(main)) return { error: `${main} not found: run \`npm run build\` first (it makes the test certificates)` };
  fs.rmSync(dir, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [main, 'certs', '--dir', dir], { encoding: 'utf8' });
  if (r.status !== 0) return { error: `junction certs failed: ${(r.stderr || r.stdout || '').trim().split('\n')[0]}` };
  return files;
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
