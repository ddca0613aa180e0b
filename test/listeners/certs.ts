/**
 * TLS material for the listener tests, made with openssl in a temporary directory: the development
 * set from certs/make-dev-certs.sh (what users run), plus what only tests need (a second CA, an
 * expired client certificate, certificates for SNI names).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const SCRIPT = fileURLToPath(new URL('../../certs/make-dev-certs.sh', import.meta.url));

export interface DevCerts {
  readonly dir: string;
  readonly ca: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** A temporary directory removed after the test file. */
export function tempDir(prefix = 'junction-tls-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs certs/make-dev-certs.sh into `dir` (again: new server and client certificates, same CA). */
export function makeDevCerts(dir: string, clientCn = 'dev-client'): DevCerts {
  execFileSync('bash', [SCRIPT, '--dir', dir, '--client-cn', clientCn], { stdio: 'pipe' });
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
  };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A self-signed CA `<name>.pem` / `<name>.key` in `dir`. */
export function makeCa(dir: string, name: string, cn: string): { cert: string; key: string } {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  openssl(
    ['req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '30', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', `${name}.pem`],
    dir,
  );
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

/**
 * A certificate `<name>.pem` / `<name>.key` signed by `ca`. `days: -1` makes one that expired
 * yesterday (openssl 3.0 takes a negative -days). `san`: e.g. `DNS:a.test,IP:127.0.0.1`.
 */
export function issue(
  dir: string,
  name: string,
  opts: { cn: string; ca: { cert: string; key: string }; days?: number; san?: string; usage?: 'clientAuth' | 'serverAuth' },
): { cert: string; key: string } {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${opts.cn}`, '-out', `${name}.csr`], dir);
  const ext = [`extendedKeyUsage=${opts.usage ?? 'clientAuth'}`, ...(opts.san ? [`subjectAltName=${opts.san}`] : [])].join('\n');
  execFileSync('bash', ['-c', `printf '%s\\n' "$1" > ${name}.ext`, '_', ext], { cwd: dir });
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', opts.ca.cert, '-CAkey', opts.ca.key, '-CAcreateserial', '-days', String(opts.days ?? 30), '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    dir,
  );
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

export interface Handshake {
  readonly authorized: boolean;
  readonly serial: string;
  readonly fingerprint256: string;
  readonly subjectCN: string;
}

/** One TLS handshake: what certificate the server shows (and whether it verifies against `ca`). */
export function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      const c = s.getPeerCertificate();
      resolve({ authorized: s.authorized, serial: c.serialNumber, fingerprint256: c.fingerprint256, subjectCN: String(c.subject?.CN ?? '') });
      s.end();
    });
    s.on('error', reject);
  });
}
