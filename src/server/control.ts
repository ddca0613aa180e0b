/**
 * The control socket: `<data dir>/control.sock`, a Unix socket only the broker's user can open.
 * It lets `junction data export` read a running broker's data, which the engine's lock keeps any
 * other process from opening. One request per connection, one line: `export` -> the export file's
 * lines, streamed from one consistent snapshot of the store.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../core/log.js';
import { exportLines } from '../../storage/export.js';
import type { KvStore } from '../../storage/kv-store.js';

export function controlPath(dir: string): string {
  return join(dir, 'control.sock');
}

/** Unix socket paths are limited to about 107 bytes. */
const MAX_SOCKET_PATH = 100;

export interface ControlServer {
  close(): Promise<void>;
}

export async function startControl(store: KvStore, log: Logger): Promise<ControlServer | undefined> {
  const path = controlPath(store.dir);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    log.warn('data directory path too long for the control socket: export needs the broker stopped', { path });
    return undefined;
  }
  // Whoever left this behind is gone: the engine's lock, taken before this, says we own the directory.
  if (existsSync(path)) unlinkSync(path);
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    let line = '';
    const onData = (d: Buffer): void => {
      line += d.toString('utf8');
      const nl = line.indexOf('\n');
      if (nl < 0) {
        if (line.length > 1024) sock.destroy();
        return;
      }
      sock.off('data', onData);
      void serve(line.slice(0, nl).trim(), sock);
    };
    sock.on('data', onData);
  });
  const serve = async (cmd: string, sock: net.Socket): Promise<void> => {
    if (cmd !== 'export') {
      sock.end(`error: unknown command ${JSON.stringify(cmd)}\n`);
      return;
    }
    log.info('export requested on the control socket', { dir: store.dir });
    try {
      for await (const l of exportLines(store)) {
        if (!sock.write(l + '\n')) await new Promise((r) => sock.once('drain', r));
      }
      sock.end();
    } catch (err) {
      log.error('export failed', { error: String(err) });
      sock.destroy();
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise((resolve) =>
        server.close(() => {
          if (existsSync(path)) unlinkSync(path);
          resolve();
        }),
      ),
  };
}

/**
 * Asks a running broker for an export. Resolves to the readable socket, or undefined when no broker
 * answers on `dir`'s control socket.
 */
export function connectControl(dir: string): Promise<net.Socket | undefined> {
  const path = controlPath(dir);
  if (!existsSync(path)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const sock = net.connect(path, () => {
      sock.write('export\n');
      resolve(sock);
    });
    sock.once('error', () => resolve(undefined));
  });
}

/**
 * True when a broker answers on `dir`'s control socket: the directory is in use. Asked before the
 * storage engine opens, because LevelDB rotates its info log before it takes its lock.
 */
export function controlAnswers(dir: string): Promise<boolean> {
  const path = controlPath(dir);
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const sock = net.connect(path, () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
