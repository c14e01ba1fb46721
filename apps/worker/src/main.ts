import { once } from 'node:events';
import {
  CheckFailure,
  createDatabase,
  createLogger,
  createMetricsRegistry,
  createShutdown,
  handleShutdownSignals,
  loadConfigOrExit,
  loadWorkerConfig,
  withTimeout,
  createWorkerRedis,
} from '@inflow/shared';
import { createHealthServer } from './health/health-server.ts';
import { WorkerMetrics } from './metrics.ts';
import { createEntryWorker } from './worker.ts';

const config = loadConfigOrExit(() => loadWorkerConfig(process.env), 'worker');
const logger = createLogger({ service: 'worker', instanceId: config.instanceId, level: config.logLevel });

const metrics = new WorkerMetrics(createMetricsRegistry({ service: 'worker', instanceId: config.instanceId }));
const database = createDatabase(config.db, logger.child({ module: 'db' }), { applicationName: `inflow-worker/${config.instanceId}` });
const redis = createWorkerRedis(config.redis);
redis.on('error', (error) => {
  logger.warn({ err: error, module: 'redis' }, 'Redis connection error');
});
const entryWorker = createEntryWorker({
  redis,
  database,
  instanceId: config.instanceId,
  concurrency: config.concurrency,
  logger,
  metrics,
});
const { worker } = entryWorker;
metrics.watchState(() => ({
  databaseAvailable: entryWorker.gate.open,
  databaseRefusal: entryWorker.gate.outage?.refusal?.cause,
  consuming: worker.isRunning(),
}));

const health = createHealthServer({
  instanceId: config.instanceId,
  metrics: metrics.registry,
  checks: [
    { name: 'redis', check: async () => {
        await withTimeout(redis.ping(), 2_000, 'Redis did not answer');
      },
    },
    { name: 'postgres', check: () => database.ping() },
    {
      name: 'consumer',
      check: () => {
        const { outage } = entryWorker.gate;
        if (!worker.isRunning()) return Promise.reject(new Error('the worker is not consuming'));
        if (outage !== undefined) {
          // The reason is written for readers (the gate's describeCheckFailure); the error itself is in the log.
          return Promise.reject(
            new CheckFailure(`waiting for the database since ${outage.since.toISOString()}: ${outage.reason}; no job is taken until PostgreSQL takes writes`),
          );
        }
        return Promise.resolve();
      },
    },
  ],
});
health.listen(config.healthPort);
await once(health, 'listening');

void worker.run().catch((error: unknown) => {
  logger.fatal({ err: error }, 'worker stopped consuming');
  void shutdown('worker failure');
});
logger.info({ concurrency: config.concurrency, healthPort: config.healthPort }, 'worker consuming');

// Leaves room inside the shutdown deadline for the force close and the pool.
const closeGraceMs = Math.max(config.shutdownTimeoutMs - 2_000, 100);

const shutdown = createShutdown(
  [
    {
      // Finish the active jobs so none is left locked (it would wait for the stalled check).
      // close() has no deadline of its own and can hang while Redis is unreachable
      // (bullmq#4656): after the grace period, force it.
      name: 'close worker',
      run: async () => {
        try {
          await withTimeout(entryWorker.close(), closeGraceMs, 'the worker did not finish its jobs');
        } catch (error) {
          logger.warn({ err: error }, 'forcing the worker closed; unfinished jobs will be redelivered');
          await withTimeout(entryWorker.close(true), 1_000, 'the worker did not close');
        }
      },
    },
    { name: 'close redis', run: async () => {
        await redis.quit();
      },
    },
    { name: 'close health server', run: () => void health.close() },
    { name: 'close database', run: () => database.close() },
  ],
  { logger, timeoutMs: config.shutdownTimeoutMs },
);
handleShutdownSignals(shutdown, logger);
