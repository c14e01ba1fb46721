/**
 * The error catalogue: every error body either app sends is made here, in the one shape
 * `{"error": {"code", "message", "field"?}}` (docs/api.md#errors). Domain and route code throw an
 * HttpError; the boundaries (the API's error middleware, its raw-socket clientError answer, the
 * worker's health server) are the only places that turn one into a response, with `errorBody`.
 * Modelled on fastify's lib/errors.js: one list of codes, so the documented table (docs/api.md#errors)
 * can be checked against it (tests/docs).
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { field?: string; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.field = options.field;
    this.headers = options.headers ?? {};
  }
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/** The response body of `error`; `field` only when the error names one. */
export function errorBody(error: HttpError): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.field === undefined ? {} : { field: error.field }),
    },
  };
}

// 400

export const invalidField = (field: string, message: string) => new HttpError(400, 'invalid_field', message, { field });

export const invalidJson = (cause: unknown) =>
  new HttpError(400, 'invalid_json', 'the body is not valid JSON', { field: 'body', cause });

/**
 * JSON is UTF-8 (RFC 8259, section 8.1), so a body that is not is not JSON either. Refused rather
 * than decoded with U+FFFD in place of the bad bytes, which would store text the client never sent.
 */
export const invalidUtf8 = () =>
  new HttpError(400, 'invalid_json', 'the body is not valid UTF-8 (JSON must be UTF-8)', { field: 'body' });

export const incompleteBody = () => new HttpError(400, 'bad_request', 'the request body was incomplete', { field: 'body' });

export const badPathEncoding = () => new HttpError(400, 'bad_request', 'the URL path is not valid percent-encoding', { field: 'path' });

export const undecodableBody = () =>
  new HttpError(400, 'bad_request', 'the body does not match its Content-Encoding', { field: 'Content-Encoding' });

/** A request Node's HTTP parser refused (an unknown method, a malformed header line, …). */
export const unparsableRequest = () => new HttpError(400, 'bad_request', 'the request could not be parsed as HTTP');

// 404, 405, 408, 411

export const notFound = (message = 'no such resource') => new HttpError(404, 'not_found', message);

/** `allowed` as the Allow header lists it (RFC 9110, section 15.5.6): HEAD included where GET is. */
export const methodNotAllowed = (method: string, allowed: readonly string[]) =>
  new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed.join(' or ')}`, {
    headers: { Allow: allowed.join(', ') },
  });

export const requestTimeout = () => new HttpError(408, 'request_timeout', 'the request took too long to arrive');

/**
 * nginx's answer to a request body without a Content-Length (Transfer-Encoding: chunked): nginx
 * cannot bound a chunked body's extensions, so the edge takes only sized bodies (docs/api.md).
 */
export const lengthRequired = () =>
  new HttpError(411, 'length_required', 'the body must be sent with a Content-Length (chunked request bodies are not accepted)', { field: 'Transfer-Encoding' });

// 413, 415, 422, 431

export const payloadTooLarge = (limitBytes: number) =>
  new HttpError(413, 'payload_too_large', `the body must be at most ${limitBytes} bytes`, { field: 'body' });

export const chunkExtensionsTooLarge = () => new HttpError(413, 'payload_too_large', 'the chunk extensions are too large');

export const unsupportedMediaType = (message = 'the body must be JSON (Content-Type: application/json)') =>
  new HttpError(415, 'unsupported_media_type', message, { field: 'Content-Type' });

/** A Content-Encoding body-parser cannot undo (it inflates gzip, deflate and br). */
export const unsupportedEncoding = () =>
  new HttpError(415, 'unsupported_media_type', 'the Content-Encoding must be gzip, deflate, br or identity', { field: 'Content-Encoding' });

/** A charset other than UTF-8 (utf-16, latin1, …): one charset is accepted, and only one. */
export const unsupportedCharset = () =>
  unsupportedMediaType('the body must be JSON encoded as UTF-8 (Content-Type: application/json, with no charset or charset=utf-8)');

export const idempotencyKeyReused = () =>
  new HttpError(
    422,
    'idempotency_key_reused',
    'this Idempotency-Key was already used for a different entry; use a new key for a new entry',
    { field: 'Idempotency-Key' },
  );

export const uriTooLong = () => new HttpError(414, 'uri_too_long', 'the URL is too long');

/** nginx's answer when an address is over its rate or one of its bounds on requests in progress. */
export const rateLimited = () =>
  new HttpError(429, 'rate_limited', 'too many requests from this address; slow down and retry', { headers: { 'Retry-After': '1' } });

export const headersTooLarge = () => new HttpError(431, 'headers_too_large', 'the request headers are too large');

/** A request line without an HTTP version: nginx answers it (deploy/nginx/edge/paths.conf). */
export const http09NotSupported = () => new HttpError(400, 'bad_request', 'HTTP/0.9 is not supported: send an HTTP/1.1 request line');

// 500, 502, 503

/** Anything unexpected. The details go to the log only. */
export const internalError = () => new HttpError(500, 'internal_error', 'internal server error');

/** nginx's answer when no API replica answered (a refused connection, a timeout). */
export const badGateway = () =>
  new HttpError(502, 'bad_gateway', 'no API replica answered; if this was a POST, retry it with the same Idempotency-Key', {
    headers: { 'Retry-After': '1' },
  });

// A 503 the client should retry in a second; `cause` is for the log only.
const retryShortly = (code: string, message: string, cause?: unknown) =>
  new HttpError(503, code, message, { headers: { 'Retry-After': '1' }, cause });

/**
 * POST /api/entries when Redis did not take the job, or did not say so in time: not accepted, and
 * possibly in the queue all the same (a deadline passed, the replicas did not confirm), which is
 * why the retry should carry the same Idempotency-Key (docs/api.md).
 */
export const queueUnavailable = (cause: unknown) =>
  retryShortly('queue_unavailable', 'the queue is unavailable right now; the entry was not accepted, please retry (with the same Idempotency-Key)', cause);

/** POST /api/entries while Redis is at QUEUE_MEMORY_LIMIT_PERCENT of its maxmemory (entries/queue-capacity.ts). */
export const queueFull = () => retryShortly('queue_unavailable', 'the queue is full right now; the entry was not accepted, please retry later');

/** GET /api/stats while the queue's counts cannot be read. */
export const queueCountsUnavailable = (cause: unknown) => retryShortly('queue_unavailable', 'the queue is unavailable right now', cause);

export const databaseUnavailable = (cause: unknown) => retryShortly('database_unavailable', 'the database is unavailable right now, please retry', cause);

/** GET /api/events on an instance that drains: the browser reconnects, through nginx, elsewhere. */
export const noNewStreams = () => retryShortly('shutting_down', 'this instance takes no new event streams; reconnect');

/**
 * The public GET /readyz when this instance cannot serve: ready or not, nothing more. Which
 * dependency failed, and why, is for the ops port and the log.
 */
export const notReady = () => new HttpError(503, 'not_ready', 'this instance is not ready to serve requests; retry', { headers: { 'Retry-After': '1' } });

/**
 * The detailed readiness (the API's ops port, the worker's health port) when a dependency
 * fails: the names of those that failed, never their errors (see describeCheckFailure).
 */
export const dependencyUnavailable = (failed: readonly string[]) =>
  new HttpError(503, 'dependency_unavailable', `not ready: ${failed.join(' and ')} unavailable`);

/** The detailed readiness of an instance that drains. */
export const shuttingDown = () => new HttpError(503, 'shutting_down', 'this instance is shutting down');

/**
 * GET /api/entries while this instance serves as many list reads as its share of the database
 * pool allows (apps/api/src/entries/read-admission.ts): another replica, or this one in a moment,
 * has room.
 */
export const tooManyReads = () =>
  retryShortly('too_many_reads', 'this instance serves as many list reads as it can right now; retry in a second');

/** GET /api/events while this instance already serves as many streams as it may (EVENTS_MAX_STREAMS). */
export const tooManyStreams = () =>
  new HttpError(503, 'too_many_streams', 'this instance serves as many event streams as it can; reconnect in a few seconds', {
    headers: { 'Retry-After': '5' },
  });
