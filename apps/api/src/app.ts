import express, { type Express } from 'express';
import { entriesRoutes } from './entries/entries.routes.ts';
import type { EntriesService } from './entries/entries.service.ts';
import type { ListReadAdmission } from './entries/read-admission.ts';
import type { EntryEvents } from './events/entry-events.ts';
import { eventsRoutes } from './events/events.routes.ts';
import { healthRoutes } from './health/health.routes.ts';
import { errorHandler, unknownRoute } from './http/error-handler.ts';
import { httpMetrics } from './http/metrics.ts';
import { requestLogger } from './http/request-logger.ts';
import { securityHeaders } from './http/security-headers.ts';
import type { OpsDependencies } from './ops/ops-server.ts';
import { pageRoutes } from './page/page.routes.ts';
import { statsRoutes } from './stats/stats.routes.ts';

/** The ops server's dependencies (the same objects), and what only the public app needs. */
export interface AppDependencies extends OpsDependencies {
  trustProxyHops: number;
  /** The entries use cases, built by main.ts over the one repository, queue and Redis client. */
  entries: EntriesService;
  /** How many list reads this replica serves at once, per address and in all. */
  listReads: ListReadAdmission;
  /** The live event stream (GET /api/events); without it the route answers 404. */
  events?: EntryEvents;
  /** The built page (dist/public); without it GET / answers 404. */
  publicDir?: string;
}

/**
 * Builds the public Express app (PORT, behind nginx) from dependencies main.ts made: it opens no
 * connection and builds no client of its own, so tests hand it theirs. Its internal
 * counterpart, /metrics and the detailed readiness, is ops/ops-server.ts, built from the same
 * dependencies. Listening and draining belong to http/server.ts, signals and shutdown to main.ts.
 */
export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  // Exactly the proxies in front of us (nginx: one hop), so req.ip is the client, not nginx.
  app.set('trust proxy', deps.trustProxyHops);

  app.use((_req, res, next) => {
    res.set('X-Instance-Id', deps.instance.instanceId);
    // While draining, tell keep-alive peers (nginx) to drop this connection after the response.
    if (deps.drainState.draining) res.set('Connection', 'close');
    next();
  });
  app.use(securityHeaders);
  app.use(requestLogger(deps.logger));
  app.use(httpMetrics(deps.metrics));

  app.use(
    healthRoutes({
      instance: deps.instance,
      drainState: deps.drainState,
      checks: deps.checks,
      logger: deps.logger.child({ module: 'health' }),
    }),
  );
  app.use(entriesRoutes(deps.entries, deps.listReads));
  app.use(statsRoutes(deps.queue));
  if (deps.events !== undefined) app.use(eventsRoutes(deps.events, deps.drainState));
  if (deps.publicDir !== undefined) app.use(pageRoutes({ publicDir: deps.publicDir, instanceId: deps.instance.instanceId }));
  app.use(unknownRoute);
  app.use(errorHandler);
  return app;
}
