/**
 * Replies of the HTTP app: what a handler returns (a JSON body, raw bytes, nothing) and the one
 * error type every handler throws. Every error leaves the app as
 * `{"error":{"code":"CLIENT_NOT_FOUND","message":"…"}}` with its status; codes are
 * UPPER_SNAKE names a script can switch on, messages are for people.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

export interface Reply {
  readonly status: number;
  /** Serialised as JSON unless `contentType` is given (then a string or Buffer sent as is). */
  readonly body?: unknown;
  readonly contentType?: string;
  readonly headers?: OutgoingHttpHeaders;
}

/** 200 with a JSON body. */
export function ok(body: unknown, headers?: OutgoingHttpHeaders): Reply {
  return { status: 200, body, ...(headers ? { headers } : {}) };
}

export function created(body: unknown): Reply {
  return { status: 201, body };
}

export function noContent(): Reply {
  return { status: 204 };
}

export function json(status: number, body: unknown): Reply {
  return { status, body };
}

/** Bytes or text as they are, e.g. `/metrics` (text/plain; version=0.0.4) or a dashboard file. */
export function raw(status: number, contentType: string, body: string | Buffer, headers?: OutgoingHttpHeaders): Reply {
  return { status, body, contentType, ...(headers ? { headers } : {}) };
}

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    /** UPPER_SNAKE, stable: CLIENT_NOT_FOUND, BAD_REQUEST, QUEUE_NOT_EMPTY, ... */
    readonly code: string,
    message: string,
    readonly headers: OutgoingHttpHeaders = {},
    /** More fields beside code and message in the error object (e.g. reload errors). */
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, code = 'BAD_REQUEST'): HttpError => new HttpError(400, code, message);
export const notFound = (code: string, message: string): HttpError => new HttpError(404, code, message);
export const conflict = (code: string, message: string): HttpError => new HttpError(409, code, message);

/** Writes `reply` (HEAD: headers only). */
export function send(res: ServerResponse, reply: Reply, head = false): void {
  const headers: OutgoingHttpHeaders = { 'Cache-Control': 'no-store', ...reply.headers };
  let body: string | Buffer | undefined;
  if (reply.body !== undefined && reply.status !== 204 && reply.status !== 304) {
    if (reply.contentType !== undefined) {
      body = reply.body as string | Buffer;
      headers['Content-Type'] = reply.contentType;
    } else {
      body = JSON.stringify(reply.body);
      headers['Content-Type'] = 'application/json; charset=utf-8';
    }
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  res.writeHead(reply.status, headers);
  res.end(head ? undefined : body);
}

export function errorReply(err: HttpError): Reply {
  return { status: err.status, body: { error: { code: err.code, message: err.message, ...err.details } }, headers: err.headers };
}
