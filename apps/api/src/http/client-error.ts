import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { chunkExtensionsTooLarge, errorBody, headersTooLarge, requestTimeout, unparsableRequest, type HttpError } from '@inflow/shared';

// What Node's own handler answers (lib/_http_server.js), with a body in the API's error shape:
// Node's default is an empty 400, which nginx passes on as it is.
const ERRORS: Readonly<Record<string, () => HttpError>> = {
  // Over Node's 16 KiB of headers (nginx refuses 8 KiB already, with its own answer).
  HPE_HEADER_OVERFLOW: headersTooLarge,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: chunkExtensionsTooLarge,
  // headersTimeout or requestTimeout (http/server.ts, HTTP_TIMEOUTS) passed.
  ERR_HTTP_REQUEST_TIMEOUT: requestTimeout,
};

/**
 * The http.Server 'clientError' listener: a request Node's parser refuses (a method it does not
 * know, a malformed header line, …) never reaches Express, so it is answered here, on the raw
 * socket, in the one error shape. https://nodejs.org/api/http.html#event-clienterror
 */
export function clientErrorHandler(instanceId: string) {
  return (error: Error & { code?: string }, socket: Duplex): void => {
    // Nothing to answer: the peer is gone, or a response is already under way.
    const pending = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || pending?.headersSent === true) {
      socket.destroy();
      return;
    }
    const answer = (ERRORS[error.code ?? ''] ?? unparsableRequest)();
    const body = JSON.stringify(errorBody(answer));
    socket.end(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Instance-Id: ${instanceId}\r\n` +
        'X-Content-Type-Options: nosniff\r\n' +
        'Connection: close\r\n\r\n' +
        body,
    );
  };
}
