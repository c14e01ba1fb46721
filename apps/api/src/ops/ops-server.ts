import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import {
  dependencyUnavailable,
  describeCheckFailure,
  errorBody,
  shuttingDown,
  type DependencyCheck,
  type HttpError,
  type Logger,
  type Registry,
} from '@inflow/shared';
import express, { Router, type Express } from 'express';
import type { EntryQueue } from '../entries/entries.queue.ts';
import { registerQueueGauges } from '../entries/queue-metrics.ts';
import type { InstanceInfo } from '../health/health.routes.ts';
import { readiness } from '../health/readiness.ts';
import { clientErrorHandler } from '../http/client-error.ts';
import { errorHandler, unknownRoute } from '../http/error-handler.ts';
import { metricsRoute, registerReadyGauge } from '../http/metrics.ts';
import { allowOnly } from '../http/method-guard.ts';
import { requestLogger } from '../http/request-logger.ts';
import type { DrainState } from '../http/server.ts';

/** What the ops server reads: a part of the app's dependencies (app.ts), the same objects. */
export interface OpsDependencies {
  instance: InstanceInfo;
  logger: Logger;
  /** For the queue gauges on /metrics. */
  queue: EntryQueue;
  /** What readiness checks (health/readiness.ts, dependencyChecks). */
  checks: readonly DependencyCheck[];
  drainState: Readonly<DrainState>;
  metrics: Registry;
}

/** One dependency as the ops /readyz shows it: the outcome, its time, and a reason in words. */
type CheckView = { ok: true; ms: number } | { ok: false; ms: number; reason: string };

/**
 * The internal "ops" app, on its own port (OPS_PORT, default 8081), which nginx never proxies:
 * GET /metrics (Prometheus), GET /readyz in detail (each dependency, how long it took, why it
 * failed) for the container health check and for people, GET /healthz with the instance's
 * host name and start time. A route added here is internal by construction: no spelling of a
 * path on the public port reaches it. The raw errors still go only to the log: a reason is
 * `connection refused`, never `connect ECONNREFUSED 172.28.0.3:5432`.
 */
export function createOpsApp(deps: OpsDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  const logger = deps.logger.child({ module: 'ops' });
  app.use((_req, res, next) => {
    res.set({ 'X-Instance-Id': deps.instance.instanceId, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' });
    next();
  });
  app.use(requestLogger(logger));
  registerQueueGauges(deps.metrics, deps.queue);

  const { checks } = deps;
  registerReadyGauge(deps.metrics, async () => !deps.drainState.draining && (await readiness(checks, logger)).ok);
  const router = Router();
  router
    .route('/healthz')
    .get((_req, res) => {
      res.json({ status: 'ok', ...deps.instance });
    })
    .all(allowOnly('GET'));
  router
    .route('/readyz')
    .get(async (_req, res) => {
      const result = await readiness(checks, logger);
      const views = Object.fromEntries(
        Object.entries(result.checks).map(([name, check]): [string, CheckView] => [
          name,
          check.ok ? check : { ok: false, ms: check.ms, reason: describeCheckFailure(result.errors[name]) },
        ]),
      );
      // Not thrown to the error middleware: these 503s carry the checks next to the error.
      let failure: HttpError | undefined;
      if (deps.drainState.draining) failure = shuttingDown();
      else if (!result.ok) failure = dependencyUnavailable(result.failed);
      if (failure !== undefined) {
        res.status(failure.status).json({ ...errorBody(failure), checks: views });
      } else {
        res.json({ status: 'ready', instanceId: deps.instance.instanceId, checks: views });
      }
    })
    .all(allowOnly('GET'));
  app.use(router);
  app.use(metricsRoute(deps.metrics));
  app.use(unknownRoute);
  app.use(errorHandler);
  return app;
}

export interface OpsServer {
  server: Server;
  /** Closes the server and every connection it holds (a scraper's keep-alive included). */
  close(): Promise<void>;
}

/**
 * Listens for the ops app. Its clients are the container health check and Prometheus on the
 * compose networks: short deadlines (5 s for headers, 10 s for a request) are plenty.
 */
export async function startOpsServer(options: { app: Express; port: number; instanceId: string }): Promise<OpsServer> {
  const server = createServer({ headersTimeout: 5_000, requestTimeout: 10_000, connectionsCheckingInterval: 1_000 }, options.app);
  server.on('clientError', clientErrorHandler(options.instanceId));
  server.listen(options.port);
  // Rejects on 'error' (EADDRINUSE): main then fails to start, naming it, rather than run without.
  await once(server, 'listening');
  return {
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
        server.closeAllConnections();
      }),
  };
}
