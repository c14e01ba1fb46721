import { ENTRIES_QUEUE, withTimeout, type DatabaseHandle, type Logger } from '@inflow/shared';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { DatabaseGate } from './entries/database-gate.ts';
import { EntriesRepository } from './entries/entries.repository.ts';
import { EntryBatcher } from './entries/entry-batcher.ts';
import { createEntryProcessor } from './entries/entries.consumer.ts';
import { logPersisted } from './entries/persisted-log.ts';
import type { WorkerMetrics } from './metrics.ts';
import { RedisRefusals } from './redis-refusals.ts';

/**
 * How long a job's lock lasts without renewal. BullMQ renews it every half of this from a timer
 * of its own, so it stays renewed while a batch INSERT runs long; only a process that is gone
 * (or whose event loop is blocked for seconds) loses it. Default 30 s: with it, a SIGKILLed
 * worker's jobs waited a minute for the stalled check. https://docs.bullmq.io/guide/jobs/stalled
 */
const LOCK_DURATION_MS = 8_000;
/** How often the stalled check looks for jobs whose lock expired (default 30 s). */
const STALLED_INTERVAL_MS = 2_000;
/**
 * A stalled job is one whose worker died; that says nothing against the entry, so stalls never
 * fail it (BullMQ's default of 1 fails a job that stalls twice). A falsely stalled job (a worker
 * that was only slow) runs twice at worst, and the primary key keeps its row single.
 */
const MAX_STALLED_COUNT = Number.MAX_SAFE_INTEGER;
/** While the database is unavailable: how long each pause lasts, and how often it is probed. */
const DATABASE_WAIT_MS = 1_000;
/** How long the gate's probe waits for PostgreSQL's answer. */
const DATABASE_PROBE_TIMEOUT_MS = 2_000;

export interface EntryWorkerOptions {
  /** Owned by the caller; BullMQ duplicates it for its blocking connection. */
  redis: Redis;
  database: DatabaseHandle;
  instanceId: string;
  concurrency: number;
  logger: Logger;
  metrics: WorkerMetrics;
}

export interface EntryWorker {
  worker: Worker;
  /** Open while PostgreSQL takes writes; closed, the worker takes no jobs. */
  gate: DatabaseGate;
  close(force?: boolean): Promise<void>;
}

/** A BullMQ Worker on the entries queue whose jobs are written in batches. */
export function createEntryWorker(options: EntryWorkerOptions): EntryWorker {
  const log = options.logger.child({ module: 'worker' });
  const repository = new EntriesRepository(options.database.db);
  // At low load each entry is written at once; at high load the jobs that arrive while an INSERT
  // commits share the next one (entry-batcher.ts).
  const { metrics } = options;
  const consumerLog = options.logger.child({ module: 'consumer' });
  const insertMany = async (rows: Parameters<typeof repository.insertMany>[0]) => {
    const startedAt = performance.now();
    const inserted = await repository.insertMany(rows);
    metrics.batchWritten(rows.length, (performance.now() - startedAt) / 1000);
    logPersisted(consumerLog, options.instanceId, rows, inserted);
    return inserted;
  };
  const batcher = new EntryBatcher(insertMany, { maxBatch: 100, maxConcurrentWrites: 2 });
  // The probe does what a write needs (a SELECT 1 passes on a read-only standby).
  const gate = new DatabaseGate({
    probe: () => withTimeout(repository.probeWrite(), DATABASE_PROBE_TIMEOUT_MS, 'PostgreSQL did not answer'),
    probeIntervalMs: DATABASE_WAIT_MS,
    logger: log,
  });
  // Queue.rateLimit pauses fetching for every worker of the queue, which is right: they share
  // the database.
  const queue = new Queue(ENTRIES_QUEUE, { connection: options.redis });
  queue.on('error', (error) => {
    log.warn({ err: error }, 'queue error');
  });
  const worker = new Worker(
    ENTRIES_QUEUE,
    createEntryProcessor({
      batcher,
      gate,
      pauseQueue: (ms) => queue.rateLimit(ms),
      pauseMs: DATABASE_WAIT_MS,
      metrics,
      instanceId: options.instanceId,
      logger: consumerLog,
    }),
    {
      connection: options.redis,
      concurrency: options.concurrency,
      autorun: false,
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      maxStalledCount: MAX_STALLED_COUNT,
    },
  );

  // An 'error' event without a listener would crash the process; these are connection errors
  // that the worker recovers from by reconnecting, or a Redis that refuses writes for now.
  const refusals = new RedisRefusals(log);
  worker.on('error', (error) => {
    if (refusals.refused(error)) return;
    log.warn({ err: error }, 'worker error');
  });
  worker.on('active', () => {
    refusals.tookWrite();
  });
  worker.on('stalled', (jobId) => {
    log.warn({ entryId: jobId }, 'entry stalled (its worker stopped renewing the lock), back in the queue');
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
  return {
    worker,
    gate,
    async close(force = false) {
      gate.stop();
      await worker.close(force);
      await queue.close();
    },
  };
}
