import { hostname } from 'node:os';
import { createDatabase, createMetricsRegistry, createProducerRedis, type ApiConfig, type DatabaseHandle, type Logger } from '@inflow/shared';
import type { Redis } from 'ioredis';
import type { AppDependencies } from './app.ts';
import { EntriesRepository } from './entries/entries.repository.ts';
import { EntriesService } from './entries/entries.service.ts';
import { EntryQueue } from './entries/entries.queue.ts';
import { IdempotencyStore } from './entries/idempotency.ts';
import { QueueCapacity } from './entries/queue-capacity.ts';
import { ReplicaAcks } from './entries/replica-acks.ts';
import { EntryEvents } from './events/entry-events.ts';
import { describeChanges, subscribeToQueueEvents } from './events/queue-events.ts';
import { dependencyChecks } from './health/readiness.ts';
import type { DrainState } from './http/server.ts';

/** The API's dependencies, and the clients under them that main.ts waits for and closes. */
export interface ApiDependencies extends AppDependencies {
  /** Set by the HTTP server's drain (main.ts); the apps only read it. */
  drainState: DrainState;
  events: EntryEvents;
  redis: Redis;
  database: DatabaseHandle;
}

/**
 * The composition root: every client and service of one API process, made once from the
 * configuration, for the public app and the ops server alike (both get the same objects).
 * Nothing connects yet: ioredis and the pg pool connect on first use, QueueEvents with the
 * first event stream. main.ts calls this; the in-process tests call it against their own
 * PostgreSQL and Redis.
 */
export function createDependencies(config: ApiConfig, options: { logger: Logger; version: string }): ApiDependencies {
  const { logger } = options;
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
  const eventsLogger = logger.child({ module: 'events' });
  // One QueueEvents per process, made when the first page connects (see entry-events.ts).
  const events = new EntryEvents({
    instanceId: config.instanceId,
    logger: eventsLogger,
    subscribe: (onChange) => subscribeToQueueEvents({ redis: config.redis, queue, logger: eventsLogger, onChange }),
    describe: describeChanges({ repository, queue, logger: eventsLogger }),
    maxClients: config.eventsMaxStreams,
  });

  return {
    instance: { instanceId: config.instanceId, hostname: hostname(), version: options.version, startedAt: new Date().toISOString() },
    trustProxyHops: config.trustProxyHops,
    entries: new EntriesService({
      repository,
      queue,
      idempotency: new IdempotencyStore(redis, config.idempotencyTtlSeconds),
      capacity: new QueueCapacity(redis, config.queueMemoryLimitPercent),
      instanceId: config.instanceId,
      replicaAcks: config.replicaAcks.count > 0 ? new ReplicaAcks(queue, { replicas: config.replicaAcks.count, timeoutMs: config.replicaAcks.timeoutMs }) : undefined,
    }),
    logger,
    queue,
    checks: dependencyChecks({ redis, database }),
    drainState: { draining: false },
    metrics: createMetricsRegistry({ service: 'api', instanceId: config.instanceId }),
    events,
    redis,
    database,
  };
}
