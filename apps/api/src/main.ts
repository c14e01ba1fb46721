import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  createDatabase,
  createLogger,
  createShutdown,
  handleShutdownSignals,
  loadApiConfig,
  loadConfigOrExit,
  createMetricsRegistry,
  createProducerRedis,
  withTimeout,
} from '@inflow/shared';
import { createApp, type AppDependencies } from './app.ts';
import { EntriesRepository } from './entries/entries.repository.ts';
import { EntriesService } from './entries/entries.service.ts';
import { EntryQueue } from './entries/entries.queue.ts';
import { IdempotencyStore } from './entries/idempotency.ts';
import { QueueCapacity } from './entries/queue-capacity.ts';
import { EntryEvents } from './events/entry-events.ts';
import { describeChanges, subscribeToQueueEvents } from './events/queue-events.ts';
import { dependencyChecks } from './health/readiness.ts';
import { startHttpServer, type DrainState } from './http/server.ts';
import { createOpsApp, startOpsServer } from './ops/ops-server.ts';

// How long main waits for Redis and PostgreSQL before it listens anyway.
const STARTUP_WAIT_MS = 15_000;

const config = loadConfigOrExit(() => loadApiConfig(process.env), 'api');
const logger = createLogger({ service: 'api', instanceId: config.instanceId, level: config.logLevel });
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const database = createDatabase(config.db, logger.child({ module: 'db' }));
const redisLogger = logger.child({ module: 'redis' });
const redis = createProducerRedis(config.redis);
// ioredis reconnects by itself; the errors are logged, and /readyz and the 503s report them.
redis.on('error', (error) => {
  redisLogger.warn({ err: error }, 'Redis connection error');
});
const queue = new EntryQueue(
  redis,
  (error) => {
    redisLogger.warn({ err: error }, 'queue error');
  },
  config.entryRetry,
);
const repository = new EntriesRepository(database.db);
const drainState: DrainState = { draining: false };
const eventsLogger = logger.child({ module: 'events' });
// One QueueEvents per process, made when the first page connects (see entry-events.ts).
const events = new EntryEvents({
  instanceId: config.instanceId,
  logger: eventsLogger,
  subscribe: (onChange) => subscribeToQueueEvents({ redis: config.redis, queue, logger: eventsLogger, onChange }),
  describe: describeChanges({ repository, queue, logger: eventsLogger }),
  maxClients: config.eventsMaxStreams,
});

// The one set of dependencies, for the public app and for the ops server alike.
const deps: AppDependencies = {
  instance: { instanceId: config.instanceId, hostname: hostname(), version, startedAt: new Date().toISOString() },
  trustProxyHops: config.trustProxyHops,
  entries: new EntriesService({
    repository,
    queue,
    idempotency: new IdempotencyStore(redis, config.idempotencyTtlSeconds),
    capacity: new QueueCapacity(redis, config.queueMemoryLimitPercent),
    instanceId: config.instanceId,
  }),
  logger,
  queue,
  checks: dependencyChecks({ redis, database }),
  drainState,
  metrics: createMetricsRegistry({ service: 'api', instanceId: config.instanceId }),
  events,
  // dist/public, from src/main.ts (node --watch) as from dist/main.js.
  publicDir: fileURLToPath(new URL('../dist/public', import.meta.url)),
};
const app = createApp(deps);

// The ops port first: while main waits for Redis and PostgreSQL below, its /readyz already says
// which one it waits for.
const ops = await startOpsServer({ app: createOpsApp(deps), port: config.opsPort, instanceId: config.instanceId }).catch(
  (error: unknown): Promise<never> => {
    // EADDRINUSE and the like: a replica without its health check would never turn healthy.
    logger.fatal({ err: error, opsPort: config.opsPort }, 'cannot listen on OPS_PORT');
    // Exit once the line is out (or after 2 s, should stdout never drain); nothing else runs.
    logger.flush(() => process.exit(1));
    setTimeout(() => process.exit(1), 2_000);
    return new Promise<never>(() => undefined);
  },
);

// Listen only once Redis and PostgreSQL answer: nginx sends a replica traffic the moment it
// accepts connections (a restarted one included), and until Redis is connected every POST would
// be a 503. Bounded, so that a replica started while a dependency is down still comes up and
// reports it through /readyz and its 503s.
const startupDeadline = Date.now() + STARTUP_WAIT_MS;
for (;;) {
  const ready = await Promise.all([withTimeout(redis.ping(), 1_000, 'Redis did not answer'), database.ping(1_000)]).then(
    () => true,
    (error: unknown) => {
      if (Date.now() > startupDeadline) logger.warn({ err: error }, 'dependencies not ready; listening anyway');
      return false;
    },
  );
  if (ready || Date.now() > startupDeadline) break;
  await sleep(200);
}

const http = await startHttpServer({
  app,
  port: config.port,
  instanceId: config.instanceId,
  drainState,
  // Event streams never end by themselves: end them, or the drain waits for ever. The browsers
  // reconnect through nginx to another replica and reconcile.
  onDrain: () => {
    events.endStreams();
  },
});
logger.info({ port: config.port, opsPort: config.opsPort, version }, 'api listening');

const shutdown = createShutdown(
  [
    // Stop taking connections; requests already in flight finish, keep-alive peers are told to
    // close, and nginx sends new requests to the other replicas (http/server.ts).
    { name: 'drain http', run: () => http.drain() },
    { name: 'close queue events', run: () => events.close() },
    { name: 'close queue', run: () => queue.close() },
    { name: 'close redis', run: async () => {
        await redis.quit();
      },
    },
    { name: 'close database', run: () => database.close() },
    // Last: until here the container health check and Prometheus can still see the shutdown.
    { name: 'close ops server', run: () => ops.close() },
  ],
  { logger, timeoutMs: config.shutdownTimeoutMs },
);
handleShutdownSignals(shutdown, logger);
