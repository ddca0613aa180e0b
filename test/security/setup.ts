/**
 * Helpers for the security tests: password files made by `junction passwd` and by Debian's
 * `mosquitto_passwd`, files replaced atomically (as editors and config management do), and the
 * CONNACK a raw client gets for a set of credentials.
 */
import { spawn } from 'node:child_process';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { MqttClient } from 'mqtt';
import { RawClient } from '../helpers/raw.js';
import { MAIN } from '../helpers/process-broker.js';
import { run, type Run } from '../helpers/run.js';

export const nonce = (): string => Math.random().toString(36).slice(2, 10);

/** `junction passwd [args...]` with `stdin` as its standard input. Needs `npm run build`. */
export function junctionPasswd(args: readonly string[], stdin: string): Promise<Run> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run npm run build`);
  const p = spawn(process.execPath, [MAIN, 'passwd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  p.stdin.end(stdin);
  const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
  return new Promise((resolve, reject) => {
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Sets `user`'s password in `file` with `junction passwd --password-stdin`; throws on failure. */
export async function setPassword(file: string, user: string, password: string): Promise<void> {
  const r = await junctionPasswd(['--password-stdin', file, user], `${password}\n`);
  if (r.code !== 0) throw new Error(`junction passwd ${user} failed (${r.code}): ${r.stderr}`);
}

/** Debian's `mosquitto_passwd -b` (creating the file with -c when it does not exist yet). */
export async function mosquittoPasswd(file: string, user: string, password: string): Promise<void> {
  const r = await run('mosquitto_passwd', [...(existsSync(file) ? [] : ['-c']), '-b', file, user, password]);
  if (r.code !== 0) throw new Error(`mosquitto_passwd ${user} failed (${r.code}): ${r.stderr}${r.stdout}`);
}

/** Replaces `file` by renaming a complete new one over it, so a watcher never reads half of it. */
export function replaceFile(file: string, text: string): void {
  const tmp = `${file}.new-${nonce()}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export interface ConnackResult {
  /** 3.1.1 return code or v5 reason code. */
  readonly code: number;
  /** The broker closed the connection after CONNACK. */
  readonly closed: boolean;
  readonly raw: RawClient;
}

/**
 * CONNECT with `username`/`password` on a raw socket: the CONNACK code, and whether the broker
 * closed the connection (it must, after a refusal [MQTT-3.2.2-5]). An accepted client is left open.
 */
export async function connack(port: number, version: 4 | 5, opts: { clientId?: string; username?: string; password?: string } = {}): Promise<ConnackResult> {
  const raw = await RawClient.connect(port, version);
  const ack = await raw.handshake({
    clientId: opts.clientId ?? `sec-${nonce()}`,
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: Buffer.from(opts.password) } : {}),
  });
  const code = (version === 5 ? ack.reasonCode : ack.returnCode) ?? 0;
  if (code !== 0) await raw.waitClosed();
  return { code, closed: raw.closed, raw };
}

/** MQTT 5 reason codes and 3.1.1 return codes the security tests expect. */
export const RC = {
  v5: { success: 0x00, badCredentials: 0x86, notAuthorized: 0x87, banned: 0x8a },
  v4: { accepted: 0, badCredentials: 4, notAuthorized: 5 },
} as const;

/**
 * Publishes with MQTT.js and returns the PUBACK/PUBREC reason code (MQTT.js rejects on a code of
 * 0x80 or more; 0 for QoS 0 and for 3.1.1).
 */
export async function publishCode(client: MqttClient, topic: string, payload: string, qos: 0 | 1 | 2, retain = false): Promise<number> {
  try {
    const p = await client.publishAsync(topic, payload, { qos, retain });
    return (p as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

/** Resolves once a TCP connection to 127.0.0.1:`port` is accepted. */
export async function accepting(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepts connections on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Subscribes one filter with MQTT.js and returns the SUBACK code (MQTT.js rejects on 0x80 or more). */
export async function subscribeCode(client: MqttClient, filter: string, qos: 0 | 1 | 2 = 1): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos });
    return granted[0]?.qos ?? -1;
  } catch (err) {
    const code = (err as { packet?: { granted?: unknown[] } }).packet?.granted?.[0];
    if (typeof code === 'number') return code;
    throw err;
  }
}
