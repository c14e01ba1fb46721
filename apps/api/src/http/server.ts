import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
import { clientErrorHandler } from './client-error.ts';

// How long a draining API keeps its idle keep-alive connections (see drain below).
const DRAIN_IDLE_MS = 2_000;

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
 * `liveness.draining` is shared with the app, which answers "Connection: close" and fails
 * /healthz while it is set.
 */
export async function startHttpServer(options: {
  app: RequestListener;
  port: number;
  instanceId: string;
  liveness: { draining: boolean };
  /** Called when the drain starts, for responses that never end by themselves (event streams). */
  onDrain: () => void;
}): Promise<HttpServer> {
  const { liveness } = options;
  const server = createServer(options.app);
  server.listen(options.port);
  server.on('clientError', clientErrorHandler(options.instanceId));
  // nginx keeps idle upstream connections open for 60 s (keepalive_timeout in nginx.conf). Node
  // must keep them longer, or nginx reuses a socket Node just closed and answers 502.
  // https://github.com/nodejs/node/issues/27363
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await once(server, 'listening');

  // The responses not yet sent. closeIdleConnections() only closes the connections idle at that
  // moment: a keep-alive connection (nginx's upstream pool) busy with a request would stay open
  // after its response, for keepAliveTimeout, and hold the shutdown past its deadline.
  const unsent = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (liveness.draining) res.shouldKeepAlive = false;
    unsent.add(res);
    // 'close', not 'finish': an event stream the client left never finishes.
    res.once('close', () => unsent.delete(res));
  });

  const drain = () =>
    new Promise<void>((resolve, reject) => {
      liveness.draining = true;
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
