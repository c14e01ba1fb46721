import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
import { clientErrorHandler } from './client-error.ts';

// How long a draining API keeps its idle keep-alive connections (see drain below).
const DRAIN_IDLE_MS = 2_000;

/**
 * Node's deadlines for one request, so that a slow client (or one that stops sending) cannot hold
 * a connection, a socket and a parser for as long as it likes. https://nodejs.org/api/http.html
 *
 * - `requestMs` (server.requestTimeout), 10 s: the whole request, headers and body, from its
 *   first byte. This is the deadline for a whole body: nginx has none of its own (only
 *   client_body_timeout, between two reads), and passes bodies on as they arrive
 *   (proxy_request_buffering off), so Node sees the client's own pace. A body is at most
 *   16 KiB: 10 s asks 1.6 KiB/s of a client, which any real one exceeds many times over (a JSON
 *   entry is a few hundred bytes and arrives with its headers), while a client dribbling bytes
 *   to hold connections open loses each one after 10 s. Were nginx to buffer bodies instead, the
 *   request would reach Node whole and at once, and the deadline would never be near. A
 *   response may take as long as it needs: the deadline ends when the request has arrived (an
 *   event stream lasts for hours).
 * - `headersMs` (server.headersTimeout), 5 s: the request line and headers, a few hundred bytes
 *   that nginx sends in one write (it gives clients 5 s for them too, client_header_timeout).
 *   Node requires it to be at most requestMs.
 * - `checkIntervalMs` (connectionsCheckingInterval), 1 s: how often Node looks for expired
 *   requests. Its default, 30 s, would let a 10 s deadline run to 40 s.
 * - `keepAliveMs` (server.keepAliveTimeout), 65 s: nginx keeps idle upstream connections for
 *   60 s (keepalive_timeout in nginx.conf); Node must keep them longer, or nginx reuses a socket
 *   Node just closed and answers 502 (https://github.com/nodejs/node/issues/27363). The
 *   header deadline starts with a request's first byte, not with the idle connection, so it
 *   need not exceed this.
 *
 * A request that misses a deadline is answered 408 request_timeout (http/client-error.ts).
 */
export interface HttpTimeouts {
  readonly requestMs: number;
  readonly headersMs: number;
  readonly checkIntervalMs: number;
  readonly keepAliveMs: number;
}

export const HTTP_TIMEOUTS: HttpTimeouts = Object.freeze({
  requestMs: 10_000,
  headersMs: 5_000,
  checkIntervalMs: 1_000,
  keepAliveMs: 65_000,
});

/**
 * Whether this instance drains: set once by drain() below, read by the app, which then fails
 * /readyz (public and ops) and answers "Connection: close", and by the event streams' route.
 */
export interface DrainState {
  draining: boolean;
}

export interface HttpServer {
  server: Server;
  /**
   * Stops taking connections and resolves once every request in flight has been answered. Used
   * for a graceful stop behind nginx: no request a replica accepted is cut, and none is refused
   * in a way nginx could not retry elsewhere.
   */
  drain(): Promise<void>;
}

/**
 * Listens with the timeouts nginx's upstream keep-alive needs, and knows how to drain.
 * `drainState` is shared with the app (see DrainState).
 */
export async function startHttpServer(options: {
  app: RequestListener;
  port: number;
  instanceId: string;
  drainState: DrainState;
  /** Called when the drain starts, for responses that never end by themselves (event streams). */
  onDrain: () => void;
  /** HTTP_TIMEOUTS unless given (tests use shorter ones). */
  timeouts?: HttpTimeouts;
}): Promise<HttpServer> {
  const { drainState } = options;
  const timeouts = options.timeouts ?? HTTP_TIMEOUTS;
  // As options, not properties: createServer checks that headersTimeout <= requestTimeout, and
  // connectionsCheckingInterval can only be given here.
  const server = createServer(
    {
      requestTimeout: timeouts.requestMs,
      headersTimeout: timeouts.headersMs,
      connectionsCheckingInterval: timeouts.checkIntervalMs,
      keepAliveTimeout: timeouts.keepAliveMs,
    },
    options.app,
  );
  server.listen(options.port);
  server.on('clientError', clientErrorHandler(options.instanceId));
  await once(server, 'listening');

  // The responses not yet sent. closeIdleConnections() only closes the connections idle at that
  // moment: a keep-alive connection (nginx's upstream pool) busy with a request would stay open
  // after its response, for keepAliveTimeout, and hold the shutdown past its deadline.
  const unsent = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (drainState.draining) res.shouldKeepAlive = false;
    unsent.add(res);
    // 'close', not 'finish': an event stream the client left never finishes.
    res.once('close', () => unsent.delete(res));
  });

  const drain = () =>
    new Promise<void>((resolve, reject) => {
      drainState.draining = true;
      // Requests in flight answer with "Connection: close", so their connections end with them.
      for (const res of unsent) if (!res.headersSent) res.shouldKeepAlive = false;
      // Stop listening: a new connection is refused, and nginx tries the next replica (safe for a
      // POST too: nothing was sent). net's close, not http's: http's also closes the idle
      // keep-alive connections at once, and one that nginx picks from its pool at that very
      // moment takes a request with it; nginx does not replay a POST it sent, so the client would
      // get a 502. Idle connections stay open for DRAIN_IDLE_MS instead: nginx either uses one
      // (its answer says "Connection: close", so it ends race-free) or, once the refused
      // connections have taken this replica out of rotation, leaves it alone.
      const idleTimer = setTimeout(() => {
        server.closeIdleConnections();
      }, DRAIN_IDLE_MS);
      NetServer.prototype.close.call(server, (error?: Error) => {
        clearTimeout(idleTimer);
        if (error) reject(error);
        else resolve();
      });
      options.onDrain();
    });

  return { server, drain };
}
