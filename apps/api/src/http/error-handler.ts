import {
  badPathEncoding,
  errorBody,
  HttpError,
  incompleteBody,
  internalError,
  invalidJson,
  notFound,
  payloadTooLarge,
  undecodableBody,
  unsupportedCharset,
  unsupportedEncoding,
} from '@inflow/shared';
import type { ErrorRequestHandler, RequestHandler } from 'express';

export const BODY_LIMIT_BYTES = 16 * 1024;

interface BodyParserError {
  type: string;
  status?: number;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  return typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string';
}

/** Maps body-parser's failures (https://github.com/expressjs/body-parser#errors) into the catalogue. */
function fromBodyParser(error: BodyParserError): HttpError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      return invalidJson(error);
    case 'entity.too.large':
      return payloadTooLarge(BODY_LIMIT_BYTES);
    case 'encoding.unsupported':
      return unsupportedEncoding();
    case 'charset.unsupported':
      return unsupportedCharset();
    case 'request.aborted':
    case 'request.size.invalid':
      return incompleteBody();
    default:
      return undefined;
  }
}

/**
 * A body that does not decompress as its Content-Encoding says (body-parser inflates gzip,
 * deflate and br): body-parser passes zlib's error on as an exposed 400 (http-errors) without
 * a `type`, so it is not one of the typed errors above.
 */
function isUndecodableBody(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { status, expose } = error as { status?: unknown; expose?: unknown };
  return status === 400 && expose === true;
}

/**
 * The router fails to decode a percent-encoded path parameter (`/api/entries/%E0%A4%A`) with a
 * URIError carrying status 400: the client's mistake, not a server error.
 */
function isBadPathEncoding(error: unknown): boolean {
  return error instanceof URIError && (error as { status?: unknown }).status === 400;
}

/** The catalogue's error for what a handler threw, or undefined when it is not a known one. */
function knownError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  if (isBodyParserError(error)) return fromBodyParser(error);
  if (isBadPathEncoding(error)) return badPathEncoding();
  if (isUndecodableBody(error)) return undecodableBody();
  return undefined;
}

export const unknownRoute: RequestHandler = (req) => {
  throw notFound(`no route for ${req.method} ${req.path}`);
};

/** The one place where errors become responses. Registered last. */
export const errorHandler: ErrorRequestHandler = (error: unknown, req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  const httpError = knownError(error) ?? internalError();

  // A failure (an error nobody anticipated, or a dependency's, which the catalogue error carries
  // as its cause) is logged at error level with its details: the client sees only the catalogue
  // message. A 503 this instance answers by design (too many reads or streams, a full queue,
  // draining) is a refusal, not a failure: its request line is a warning (request-logger.ts).
  const failure = httpError.status >= 500 && (httpError !== error || httpError.cause !== undefined);
  if (failure) req.log.error({ err: error }, httpError.message);
  // pino-http reads this to log the request line at error level, with the error.
  res.err = failure ? (error as Error) : undefined;

  res.status(httpError.status).set(httpError.headers).json(errorBody(httpError));
};
