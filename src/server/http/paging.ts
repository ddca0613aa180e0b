/**
 * Cursor paging for list endpoints: `?limit=` (default 100, at most 1000) and `&cursor=` (opaque)
 * -> `{"data":[…],"meta":{"limit":100,"nextCursor":"…"|null}}`.
 *
 * Items are ordered by a stable string key (client id, topic, queue name, message sequence number
 * padded to sort as text); the cursor is the last key of the page, base64url-encoded. A page is
 * "the next `limit` items whose key sorts after the cursor", so items added or removed between
 * two requests shift nothing: no item is shown twice, and none still present is skipped.
 */
import { badRequest } from './reply.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export interface Page<T> {
  readonly data: T[];
  readonly meta: { readonly limit: number; readonly nextCursor: string | null };
}

export interface PageRequest {
  readonly limit: number;
  /** Key after which the page starts; undefined for the first page. */
  readonly after: string | undefined;
}

/** Reads `limit` and `cursor` from a query; 400 when either is malformed. */
export function pageRequest(query: URLSearchParams): PageRequest {
  const l = query.get('limit');
  let limit = DEFAULT_LIMIT;
  if (l !== null) {
    if (!/^\d+$/.test(l) || Number(l) < 1 || Number(l) > MAX_LIMIT) throw badRequest(`limit must be an integer 1..${MAX_LIMIT}, got ${JSON.stringify(l)}`, 'BAD_LIMIT');
    limit = Number(l);
  }
  const c = query.get('cursor');
  let after: string | undefined;
  if (c !== null && c !== '') {
    try {
      const parsed = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { k?: unknown }).k !== 'string') throw new Error('shape');
      after = (parsed as { k: string }).k;
    } catch {
      throw badRequest('cursor is not one this server gave out: pass meta.nextCursor of the previous page as it is', 'BAD_CURSOR');
    }
  }
  return { limit, after };
}

function cursorOf(key: string): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

/** Compares keys by UTF-16 code units: the same order whatever the locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One page of `items` ordered by `keyOf`, mapped by `view` (only the items on the page are
 * mapped). `items` may be any iterable; it is walked once.
 */
export function paginate<T, V = T>(items: Iterable<T>, keyOf: (item: T) => string, req: PageRequest, view?: (item: T) => V): Page<V> {
  const keyed: Array<{ key: string; item: T }> = [];
  for (const item of items) {
    const key = keyOf(item);
    if (req.after === undefined || compare(key, req.after) > 0) keyed.push({ key, item });
  }
  keyed.sort((a, b) => compare(a.key, b.key));
  const slice = keyed.slice(0, req.limit);
  const more = keyed.length > req.limit;
  const data = slice.map(({ item }) => (view ? view(item) : (item as unknown as V)));
  return { data, meta: { limit: req.limit, nextCursor: more ? cursorOf(slice[slice.length - 1]!.key) : null } };
}

/** A number as a key that sorts as text in numeric order (sequence numbers, ids). */
export function numericKey(n: number): string {
  return n.toString().padStart(16, '0');
}
