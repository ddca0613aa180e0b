/**
 * ListenerTls: the TLS material of one listener and the checks on its clients.
 *
 * - Certificate, key, CA and SNI certificates are read from their files and checked (readable, PEM,
 *   key matches certificate, passphrase right, CA parses) before the listener opens, so a broker
 *   never starts with a listener it cannot serve; errors name the config key and the file.
 * - Rotation: when a file changes (fs.watch on its directory) or on SIGHUP, everything is read and
 *   checked again and handed to `server.setSecureContext`: new handshakes use the new material,
 *   connections already open keep theirs. Material that fails the checks is not used (logged; the
 *   previous material stays), so a half-copied key never takes a listener down.
 * - Client certificates: the server always completes the handshake itself (`rejectUnauthorized:
 *   false`) and judges the peer afterwards in `check`, so every refusal, a missing certificate as
 *   much as a wrong CA or an expired one, is logged with the peer address and counted in one place.
 */
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import tls from 'node:tls';
import type { Logger } from '../core/log.js';
import type { SniCertificate, TlsConfig } from './config.js';

/** A problem with the material of one config key: `tls.cert /etc/junction/server.pem: file not found`. */
export class TlsMaterialError extends Error {
  constructor(
    readonly key: string,
    readonly file: string,
    reason: string,
  ) {
    super(`${key} ${file}: ${reason}`);
    this.name = 'TlsMaterialError';
  }
}

interface Material {
  /** What `tls.createServer` and `setSecureContext` take. */
  readonly context: tls.SecureContextOptions;
  readonly sni: ReadonlyArray<{ readonly servername: string; readonly context: tls.SecureContext }>;
  /** The server certificate, for logs. */
  readonly cert: X509Certificate;
  /** Hash of every file's bytes: a change event that changed nothing is ignored. */
  readonly digest: string;
}

/** Material read and checked for a reload, not yet in use. */
export interface PreparedTls {
  readonly settings: TlsConfig;
  readonly material: Material;
}

export type ClientCheck = { readonly ok: true; readonly identity?: string } | { readonly ok: false; readonly reason: string };

function readPem(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new TlsMaterialError(key, file, `cannot read: ${why}`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file; at least one, each parsable. */
function parseCertificates(key: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new TlsMaterialError(key, file, 'no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)');
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsMaterialError(key, file, `certificate ${i + 1} in the file is not valid: ${(err as Error).message}`);
    }
  });
}

function parseKey(key: string, file: string, pem: Buffer, passphrase: string | undefined): KeyObject {
  try {
    return createPrivateKey(passphrase === undefined ? { key: pem } : { key: pem, passphrase });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // OpenSSL 3 says "interrupted or cancelled" when it would have prompted for the passphrase.
    if (passphrase === undefined && (e.code === 'ERR_MISSING_PASSPHRASE' || pem.includes('ENCRYPTED'))) {
      throw new TlsMaterialError(key, file, 'the key is encrypted: set passphrase');
    }
    if (passphrase !== undefined && /bad decrypt|decrypt/i.test(e.message)) throw new TlsMaterialError(key, file, 'wrong passphrase for the key');
    throw new TlsMaterialError(key, file, `not a private key in PEM: ${e.message}`);
  }
}

interface Pair {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly first: X509Certificate;
}

function loadPair(prefix: string, certFile: string, keyFile: string, passphrase: string | undefined): Pair {
  const cert = readPem(`${prefix}cert`, certFile);
  const key = readPem(`${prefix}key`, keyFile);
  const first = parseCertificates(`${prefix}cert`, certFile, cert)[0]!;
  const privateKey = parseKey(`${prefix}key`, keyFile, key, passphrase);
  if (!first.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(`${prefix}key`, keyFile, `does not match the certificate in ${certFile}`);
  }
  return { cert, key, first };
}

function loadMaterial(s: TlsConfig): Material {
  const hash = createHash('sha256');
  const pair = loadPair('tls.', s.cert, s.key, s.passphrase);
  hash.update(pair.cert).update(pair.key);
  let ca: Buffer | undefined;
  if (s.ca !== undefined) {
    ca = readPem('tls.ca', s.ca);
    parseCertificates('tls.ca', s.ca, ca);
    hash.update(ca);
  }
  const common = {
    minVersion: s.minVersion,
    ...(s.ciphers !== undefined ? { ciphers: s.ciphers } : {}),
    ...(ca !== undefined ? { ca } : {}),
  } satisfies tls.SecureContextOptions;
  const context: tls.SecureContextOptions = {
    ...common,
    cert: pair.cert,
    key: pair.key,
    ...(s.passphrase !== undefined ? { passphrase: s.passphrase } : {}),
  };
  // createSecureContext is OpenSSL's own last word (cipher list, key types it will not use).
  try {
    tls.createSecureContext(context);
  } catch (err) {
    const e = err as Error;
    const key = /cipher/i.test(e.message) ? 'tls.ciphers' : 'tls.cert';
    throw new TlsMaterialError(key, key === 'tls.ciphers' ? (s.ciphers ?? '') : s.cert, `rejected by OpenSSL: ${e.message}`);
  }
  const sni = s.sni.map((entry: SniCertificate, i) => {
    const p = loadPair(`tls.sni item ${i + 1}: `, entry.cert, entry.key, entry.passphrase);
    hash.update(p.cert).update(p.key);
    const options = { ...common, cert: p.cert, key: p.key, ...(entry.passphrase !== undefined ? { passphrase: entry.passphrase } : {}) };
    return { servername: entry.servername, context: tls.createSecureContext(options) };
  });
  return { context, sni, cert: pair.first, digest: hash.digest('hex') };
}

/** The identity a verified client certificate gives: its CN, or its first subject alternative name. */
export function certIdentity(cert: tls.PeerCertificate, source: 'cn' | 'san'): string | undefined {
  if (source === 'cn') {
    const cn: string | string[] | undefined = cert.subject?.CN;
    const first = Array.isArray(cn) ? cn[0] : cn;
    return first === undefined || first === '' ? undefined : first;
  }
  // "DNS:device-7.example.com, IP Address:10.0.0.7"; values with special characters come JSON-quoted.
  const m = /^[^:,]+:("(?:[^"\\]|\\.)*"|[^,]*)/.exec(cert.subjectaltname ?? '');
  const value = m?.[1];
  if (value === undefined || value === '') return undefined;
  return value.startsWith('"') ? (JSON.parse(value) as string) : value;
}

/** `*.example.com` stands for exactly one label in front of example.com. */
function sniMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === name;
  const suffix = pattern.slice(1);
  const label = name.slice(0, name.length - suffix.length);
  return name.endsWith(suffix) && label.length > 0 && !label.includes('.');
}

export class ListenerTls {
  private material: Material;
  private server: tls.Server | undefined;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** Reads and checks the material now; throws TlsMaterialError. */
  constructor(
    readonly listener: string,
    public settings: TlsConfig,
    private readonly log: Logger,
  ) {
    this.material = loadMaterial(settings);
  }

  /** Options for `tls.createServer` / `https.createServer`. */
  serverOptions(handshakeTimeoutMs: number): tls.TlsOptions {
    const s = this.settings;
    return {
      ...this.material.context,
      requestCert: s.requestCert || s.requireClientCert,
      // Judged in check(), where a refusal can be logged and counted.
      rejectUnauthorized: false,
      handshakeTimeout: handshakeTimeoutMs,
      ...(s.sni.length > 0 ? { SNICallback: this.sni } : {}),
    };
  }

  /** The server certificate now in use: subject, serial, SHA-256 fingerprint, expiry. */
  describe(): Record<string, string> {
    const c = this.material.cert;
    return { subject: c.subject.replace(/\n/g, ', '), serial: c.serialNumber, fingerprint256: c.fingerprint256, validTo: c.validTo };
  }

  /** Starts watching the files; new material goes to `server`. */
  attach(server: tls.Server): void {
    this.server = server;
    const cert = this.material.cert;
    if (Date.parse(cert.validTo) < Date.now()) this.log.warn('server certificate has expired: clients will refuse it', { listener: this.listener, ...this.describe() });
    const s = this.settings;
    const files = [s.cert, s.key, ...(s.ca !== undefined ? [s.ca] : []), ...s.sni.flatMap((e) => [e.cert, e.key])];
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    for (const [dir, names] of byDir) {
      try {
        // The directory, not the file: tools replace certificates by renaming a new file over the
        // old one, which a watch on the old file's inode would never see. `..data` is how
        // Kubernetes swaps a mounted secret.
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name) || name.startsWith('..')) this.schedule();
        });
        w.on('error', (err) => this.log.warn('cannot watch TLS files any more; SIGHUP still reloads them', { listener: this.listener, dir, error: err.message }));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn('cannot watch TLS files; SIGHUP reloads them', { listener: this.listener, dir, error: String(err) });
      }
    }
  }

  /** Reads and checks the material `settings` names without using it (reload); throws TlsMaterialError. */
  prepare(settings: TlsConfig = this.settings): PreparedTls {
    return { settings, material: loadMaterial(settings) };
  }

  /** Uses prepared material for new handshakes; false when it is what is in use already. */
  install(p: PreparedTls): boolean {
    if (p.material.digest === this.material.digest && JSON.stringify(p.settings) === JSON.stringify(this.settings)) return false;
    this.server?.setSecureContext(p.material.context);
    this.material = p.material;
    this.settings = p.settings;
    this.log.info('TLS material reloaded: new handshakes use it', { evt: 'tls.certificate_loaded', listener: this.listener, ...this.describe() });
    return true;
  }

  /**
   * Reads the files again and, when they changed (or `force`), uses them for new handshakes.
   * Returns whether new material is in use; bad material is logged and the old one kept.
   */
  reload(force = false): boolean {
    let next: Material;
    try {
      next = loadMaterial(this.settings);
    } catch (err) {
      this.log.warn('TLS material not reloaded: keeping the previous certificate', { listener: this.listener, error: (err as Error).message });
      return false;
    }
    if (!force && next.digest === this.material.digest) return false;
    this.server?.setSecureContext(next.context);
    this.material = next;
    this.log.info('TLS material reloaded: new handshakes use it', { evt: 'tls.certificate_loaded', listener: this.listener, ...this.describe() });
    return true;
  }

  /** After the handshake: may this client stay, and with which certificate identity? */
  check(socket: tls.TLSSocket): ClientCheck {
    const s = this.settings;
    if (!s.requestCert && !s.requireClientCert) return { ok: true };
    const cert = socket.getPeerCertificate();
    const sent = cert !== null && cert !== undefined && Object.keys(cert).length > 0;
    if (!sent) return s.requireClientCert ? { ok: false, reason: 'no client certificate (requireClientCert)' } : { ok: true };
    if (!socket.authorized) return { ok: false, reason: `client certificate rejected: ${String(socket.authorizationError)}` };
    if (s.useIdentityAs === undefined) return { ok: true };
    const identity = certIdentity(cert, s.useIdentityAs);
    if (identity === undefined) return { ok: false, reason: `client certificate has no ${s.useIdentityAs === 'cn' ? 'CN' : 'subject alternative name'} (useIdentityAs)` };
    return { ok: true, identity };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  /** Editors and `cp` write in several steps: wait for the burst to end, then try once more later. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.reloadQuietly()) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.reload();
        }, 1000);
        this.timer.unref();
      }
    }, 150);
    this.timer.unref();
  }

  /** A reload whose failure is not logged yet: files may still be being written. */
  private reloadQuietly(): boolean {
    try {
      const next = loadMaterial(this.settings);
      if (next.digest === this.material.digest) return true;
    } catch {
      return false;
    }
    this.reload();
    return true;
  }

  private readonly sni = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    const name = servername.toLowerCase();
    // No match: the listener's own certificate (the default context).
    cb(null, this.material.sni.find((e) => sniMatches(e.servername, name))?.context);
  };
}
