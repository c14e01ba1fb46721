import { classifyDatabaseError, describeIssue, entryJobSchema, type Logger } from '@inflow/shared';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { WorkerMetrics } from '../metrics.ts';
import type { DatabaseGate } from './database-gate.ts';
import type { EntryBatcher } from './entry-batcher.ts';

/**
 * The queue entry point: adapts a job to a row and hands it to the batcher. No SQL and no rules
 * of its own; the payload schema comes from the shared queue contract, the meaning of a
 * database error from shared's classifyDatabaseError.
 *
 * What becomes of a job whose write fails:
 * - the database is unavailable or refuses the worker as configured (a password, read-only, a
 *   missing table or privilege): the gate closes, and the job goes back to the queue with no
 *   attempt spent (BullMQ's manual rate limit: `pauseQueue`, then RateLimitError). Every worker
 *   of the queue stops fetching for `pauseMs`, and again until the gate opens;
 * - the database refused the row: the job fails for good at once (UnrecoverableError);
 * - anything else: the job spends one attempt and is retried with backoff.
 * https://docs.bullmq.io/guide/rate-limiting#manual-rate-limit
 */
export function createEntryProcessor(deps: {
  batcher: EntryBatcher;
  gate: DatabaseGate;
  /** Stops every worker of the queue from fetching jobs for `ms` (Queue.rateLimit). */
  pauseQueue: (ms: number) => Promise<void>;
  /** How long one pause lasts; the gate's probe decides whether the next job waits again. */
  pauseMs: number;
  metrics: Pick<WorkerMetrics, 'persisted' | 'duplicate'>;
  instanceId: string;
  logger: Logger;
}) {
  const handBack = async (): Promise<never> => {
    await deps.pauseQueue(deps.pauseMs);
    throw Worker.RateLimitError();
  };

  return async (job: Job): Promise<void> => {
    const parsed = entryJobSchema.safeParse(job.data);
    if (!parsed.success) {
      const { field, message } = describeIssue(parsed.error);
      throw new UnrecoverableError(`invalid job payload: ${field}: ${message}`);
    }
    if (!deps.gate.open) return handBack();
    const entry = parsed.data;
    let outcome;
    try {
      outcome = await deps.batcher.persist({
        id: entry.id,
        author: entry.author,
        message: entry.message,
        accepted_by: entry.acceptedBy,
        persisted_by: deps.instanceId,
        created_at: new Date(entry.acceptedAt),
      });
    } catch (error) {
      switch (classifyDatabaseError(error)) {
        case 'unavailable':
        case 'misconfigured':
          deps.gate.close(error);
          return handBack();
        case 'refused':
          throw new UnrecoverableError(`the database refused the entry: ${(error as Error).message}`);
        case 'unknown':
          throw error;
      }
    }
    if (outcome.inserted) {
      // Its log line is the batch's, written when the INSERT committed (persisted-log.ts).
      deps.metrics.persisted(outcome.queueLatencyMs);
    } else {
      // At-least-once delivery: the job ran before (e.g. its worker died before acknowledging).
      deps.metrics.duplicate();
      deps.logger.info({ entryId: entry.id, attempt: job.attemptsMade + 1 }, 'entry already persisted, redelivery ignored');
    }
  };
}
