import { ENTRIES_QUEUE, type DatabaseHandle, type Logger } from '@inflow/shared';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { EntriesRepository } from './entries/entries.repository.ts';
import { EntryBatcher } from './entries/entry-batcher.ts';
import { createEntryProcessor } from './entries/entries.consumer.ts';
import type { WorkerMetrics } from './metrics.ts';

export interface EntryWorkerOptions {
  /** Owned by the caller; BullMQ duplicates it for its blocking connection. */
  redis: Redis;
  database: DatabaseHandle;
  instanceId: string;
  concurrency: number;
  logger: Logger;
  metrics: WorkerMetrics;
}

/** A BullMQ Worker on the entries queue whose jobs are written in batches. */
export function createEntryWorker(options: EntryWorkerOptions): Worker {
  const repository = new EntriesRepository(options.database.db);
  // At low load each entry is written at once; at high load the jobs that arrive while an INSERT
  // commits share the next one (entry-batcher.ts).
  const { metrics } = options;
  const insertMany = async (rows: Parameters<typeof repository.insertMany>[0]) => {
    const startedAt = performance.now();
    const inserted = await repository.insertMany(rows);
    metrics.batchWritten(rows.length, (performance.now() - startedAt) / 1000);
    return inserted;
  };
  const batcher = new EntryBatcher(insertMany, { maxBatch: 100, maxConcurrentWrites: 2 });
  const worker = new Worker(
    ENTRIES_QUEUE,
    createEntryProcessor({ batcher, metrics, instanceId: options.instanceId, logger: options.logger.child({ module: 'consumer' }) }),
    { connection: options.redis, concurrency: options.concurrency, autorun: false },
  );

  const log = options.logger.child({ module: 'worker' });
  // An 'error' event without a listener would crash the process; these are connection errors
  // that the worker recovers from by reconnecting.
  worker.on('error', (error) => {
    log.warn({ err: error }, 'worker error');
  });
  worker.on('failed', (job, error) => {
    if (job === undefined) return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || error.name === 'UnrecoverableError';
    if (final) metrics.failed();
    log[final ? 'error' : 'warn'](
      { entryId: job.id, attempt: job.attemptsMade, final, err: error },
      final ? 'entry failed for good, kept in the failed set' : 'entry attempt failed, will retry',
    );
  });
  return worker;
}
