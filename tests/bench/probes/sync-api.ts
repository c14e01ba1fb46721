/**
 * The synchronous peer, a bench probe and not a second product: the API's own app (createApp from
 * @inflow/api's build, in the app image, with a replica's environment) in which POST
 * /api/entries writes the row into PostgreSQL itself, one INSERT per request committed before the
 * answer, where the real API adds a job to the queue. Everything else is the API's: validation,
 * the Redis capacity check, the error mapping, the response (202 with the same body, so that one
 * load script and one reconciliation serve both designs; here the row exists when it is sent).
 * A database error is the 503 the API gives when it cannot enqueue. Run as web1, web2 and web3
 * behind an nginx with the project's nginx.conf (containers.ts).
 *
 *   node bench/sync-api.ts
 */
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { createApp, type AppDependencies } from '@inflow/api';
import { createDatabase, createLogger, createMetricsRegistry, createProducerRedis, loadApiConfig, type EntryJob } from '@inflow/shared';

const config = loadApiConfig(process.env);
const logger = createLogger({ service: 'bench-sync-api', instanceId: config.instanceId, level: config.logLevel });
const database = createDatabase(config.db, logger.child({ module: 'db' }));
const redis = createProducerRedis(config.redis);
redis.on('error', (error) => {
  logger.warn({ err: error }, 'Redis connection error');
});

/** Stands where the API's EntryQueue stands: `enqueue` is the INSERT, and nothing is ever queued. */
const insertInsteadOfQueue = {
  async enqueue(entry: EntryJob): Promise<void> {
    await database.db
      .insertInto('entries')
      .values({
        id: entry.id,
        author: entry.author,
        message: entry.message,
        accepted_by: entry.acceptedBy,
        persisted_by: entry.acceptedBy,
        created_at: new Date(entry.acceptedAt),
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  },
  findState: () => Promise.resolve(undefined),
  counts: () => Promise.resolve({ waiting: 0, active: 0, delayed: 0, failed: 0 }),
  oldestWaitingAgeSeconds: () => Promise.resolve(0),
  close: () => Promise.resolve(),
};

const app = createApp({
  instance: { instanceId: config.instanceId, hostname: hostname(), version: 'bench-sync', startedAt: new Date().toISOString() },
  trustProxyHops: config.trustProxyHops,
  idempotencyTtlSeconds: config.idempotencyTtlSeconds,
  queueMemoryLimitPercent: config.queueMemoryLimitPercent,
  logger,
  // EntryQueue's private fields make it nominal; the app calls only the methods above.
  queue: insertInsteadOfQueue as unknown as AppDependencies['queue'],
  redis,
  database,
  liveness: { draining: false },
  metrics: createMetricsRegistry({ service: 'bench-sync-api', instanceId: config.instanceId }),
});

const server = createServer(app);
// As in the API: above nginx's upstream keepalive_timeout (60 s).
server.keepAliveTimeout = 65_000;
server.listen(config.port);
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.allSettled([database.close(), redis.quit()]);
});
