/**
 * `junction certs`: development TLS material, made by certs/make-dev-certs.sh (openssl), which ships
 * with the package; then the two lines that use it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** certs/make-dev-certs.sh from src/server/ (tests) or dist/src/server/ (the installed CLI). */
function script(): string {
  for (const up of ['../../certs', '../../../certs']) {
    const f = fileURLToPath(new URL(`${up}/make-dev-certs.sh`, import.meta.url));
    if (existsSync(f)) return f;
  }
  throw new Error('certs/make-dev-certs.sh is missing from this installation');
}

/** Runs the script; returns its exit code. */
export function makeDevCerts(dir: string, clientCn?: string, days?: number): number {
  const abs = resolve(dir);
  const args = [script(), '--dir', abs, ...(clientCn !== undefined ? ['--client-cn', clientCn] : []), ...(days !== undefined ? ['--days', String(days)] : [])];
  const r = spawnSync('bash', args, { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`junction: cannot run bash: ${r.error.message}\n`);
    return 1;
  }
  if (r.status !== 0) return r.status ?? 1;
  process.stdout.write(
    [
      '',
      'Start the broker with TLS (MQTT 8883, STOMP 61614):',
      `  junction start --tls-cert ${dir}/server.pem --tls-key ${dir}/server.key`,
      'and connect:',
      `  mosquitto_pub --cafile ${dir}/ca.pem -h localhost -p 8883 -t hello -m world`,
      '',
    ].join('\n'),
  );
  return 0;
}
