/**
 * The web dashboard (operations.md "Dashboard"), served by the HttpApp on the admin listener:
 * - `GET /` is dashboard/index.html; `GET /ui/<file>` the other files of dashboard/ (ES modules,
 *   CSS, the icon). No bundler: the browser loads the modules as they are in the repository.
 * - `GET /ui/vendor/<package>/<file>` maps onto the `dist/` folder of Preact, htm and uPlot in
 *   node_modules, found with require.resolve, so the lockfile pins their versions and nothing is
 *   vendored or committed. index.html's import map names these URLs (`preact`, `preact/hooks`,
 *   `htm`, `uplot`).
 *
 * Every file is public (the token is asked for by the API the page calls, in an `Authorization`
 * header, never a cookie) and goes out under a strict Content-Security-Policy: `default-src 'self'`,
 * no inline script except the import map itself, allowed by its SHA-256 (an import map cannot be
 * an external file in Chromium). Files are read on request (an edit shows on reload), revalidated
 * by ETag, and gzipped when the browser accepts it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { OutgoingHttpHeaders } from 'node:http';
import type { ApiRequest, HttpApp } from './http/app.js';
import { HttpError, raw, type Reply } from './http/reply.js';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

/** dashboard/ beside src/ (sources under a test runner) or beside dist/ (after a build). */
function findDashboardDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'dashboard');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/**
 * URL prefixes under /ui/vendor/ and the folder each maps to. Preact keeps its hooks in a
 * `hooks/dist/` of their own, so `preact/hooks` is a prefix of its own (the longest prefix wins).
 */
function vendorDirs(): ReadonlyArray<readonly [string, string]> {
  const require = createRequire(import.meta.url);
  const distOf = (specifier: string): string => dirname(require.resolve(specifier));
  return [
    ['preact/hooks', distOf('preact/hooks')],
    ['preact', distOf('preact')],
    ['htm', distOf('htm')],
    ['uplot', distOf('uplot')],
  ];
}

/** The Content-Security-Policy for every dashboard file; `importMapHash` is `sha256-<base64>`. */
export function contentSecurityPolicy(importMapHash: string | undefined): string {
  return [
    "default-src 'self'",
    `script-src 'self'${importMapHash ? ` '${importMapHash}'` : ''}`,
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The hash of index.html's inline `<script type="importmap">`, as CSP wants it. */
export function importMapHash(html: string): string | undefined {
  const m = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html);
  return m ? `sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}` : undefined;
}

interface Cached {
  readonly mtimeMs: number;
  readonly size: number;
  readonly body: Buffer;
  readonly etag: string;
  gzipped?: Buffer;
}

export function mountDashboard(app: HttpApp): void {
  const root = findDashboardDir();
  const vendor = vendorDirs();
  const cache = new Map<string, Cached>();
  let csp = contentSecurityPolicy(undefined);

  const load = async (file: string): Promise<Cached | undefined> => {
    let st;
    try {
      st = await stat(file);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const hit = cache.get(file);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
    const body = await readFile(file);
    const entry: Cached = { mtimeMs: st.mtimeMs, size: st.size, body, etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"` };
    cache.set(file, entry);
    return entry;
  };

  const serve = async (req: ApiRequest, base: string | undefined, rel: string): Promise<Reply> => {
    const type = TYPES[extname(rel)];
    // The route params are percent-decoded: refuse anything that could leave `base`.
    const segments = rel.split('/');
    if (base === undefined || type === undefined || segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\u0000'))) {
      throw new HttpError(404, 'NOT_FOUND', `no such dashboard file: ${rel}`);
    }
    const file = resolve(base, ...segments);
    if (!file.startsWith(base + sep)) throw new HttpError(404, 'NOT_FOUND', `no such dashboard file: ${rel}`);
    const entry = await load(file);
    if (!entry) {
      const hint = root === undefined ? ' (the dashboard/ folder was not found next to the installation)' : '';
      throw new HttpError(404, 'NOT_FOUND', `no such dashboard file: ${rel}${hint}`);
    }
    if (file === join(root ?? '', 'index.html')) csp = contentSecurityPolicy(importMapHash(entry.body.toString('utf8')));
    const headers: OutgoingHttpHeaders = {
      'Content-Security-Policy': csp,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'Cross-Origin-Opener-Policy': 'same-origin',
      // Revalidate every time: the URLs carry no version, an upgrade must show at the next load.
      'Cache-Control': 'no-cache',
      ETag: entry.etag,
      Vary: 'Accept-Encoding',
    };
    if (req.raw.headers['if-none-match'] === entry.etag) return { status: 304, headers };
    const gzipOk = /\bgzip\b/.test(String(req.raw.headers['accept-encoding'] ?? '')) && entry.size > 1024 && !type.startsWith('image/');
    if (gzipOk) {
      entry.gzipped ??= gzipSync(entry.body);
      return raw(200, type, entry.gzipped, { ...headers, 'Content-Encoding': 'gzip' });
    }
    return raw(200, type, entry.body, headers);
  };

  app.route('GET', '/', null, (req) => serve(req, root, 'index.html'));
  app.route('GET', '/ui/*file', null, (req) => serve(req, root, req.params['file']!));
  app.route('GET', '/ui/vendor/*file', null, (req) => {
    const path = req.params['file']!;
    const hit = vendor.find(([prefix]) => path.startsWith(prefix + '/'));
    if (!hit) throw new HttpError(404, 'NOT_FOUND', `no such vendor package: ${path.split('/')[0]} (served: ${vendor.map(([p]) => p).join(', ')})`);
    return serve(req, hit[1], path.slice(hit[0].length + 1));
  });
}
