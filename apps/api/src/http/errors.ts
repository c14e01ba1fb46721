/**
 * The API's error catalogue. Domain and route code throw these; the error middleware is the only
 * place that turns an error into a response: `{"error": {"code", "message", "field"?}}`.
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

export const invalidField = (field: string, message: string) => new HttpError(400, 'invalid_field', message, { field });

export const invalidJson = (cause: unknown) =>
  new HttpError(400, 'invalid_json', 'the body is not valid JSON', { field: 'body', cause });

/**
 * JSON is UTF-8 (RFC 8259, section 8.1), so a body that is not is not JSON either. Refused rather
 * than decoded with U+FFFD in place of the bad bytes, which would store text the client never sent.
 */
export const invalidUtf8 = () =>
  new HttpError(400, 'invalid_json', 'the body is not valid UTF-8 (JSON must be UTF-8)', { field: 'body' });

export const notFound = (message = 'no such resource') => new HttpError(404, 'not_found', message);

export const methodNotAllowed = (method: string, allowed: readonly string[]) =>
  new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed.join(' or ')}`, {
    headers: { Allow: allowed.join(', ') },
  });

export const payloadTooLarge = (limitBytes: number) =>
  new HttpError(413, 'payload_too_large', `the body must be at most ${limitBytes} bytes`, { field: 'body' });

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

export const serviceUnavailable = (code: 'queue_unavailable' | 'database_unavailable' | 'shutting_down', message: string, cause?: unknown) =>
  new HttpError(503, code, message, { headers: { 'Retry-After': '1' }, cause });

/**
 * The public GET /readyz when this instance cannot serve: ready or not, nothing more. Which
 * dependency failed, and why, is for the ops port and the log.
 */
export const notReady = () => new HttpError(503, 'not_ready', 'this instance is not ready to serve requests; retry', { headers: { 'Retry-After': '1' } });

/** GET /api/events while this instance already serves as many streams as it may (EVENTS_MAX_STREAMS). */
export const tooManyStreams = () =>
  new HttpError(503, 'too_many_streams', 'this instance serves as many event streams as it can; reconnect in a few seconds', {
    headers: { 'Retry-After': '5' },
  });

export const internalError = () => new HttpError(500, 'internal_error', 'internal server error');
