import { describeIssue, entryJobSchema, type Logger } from '@inflow/shared';
import { UnrecoverableError, type Job } from 'bullmq';
import type { WorkerMetrics } from '../metrics.ts';
import type { EntryBatcher } from './entry-batcher.ts';

// SQLSTATE 23514 (check_violation) and 22xxx (data exceptions): retrying cannot fix such a row.
const PERMANENT_SQLSTATE = /^(23514|22)/;

/**
 * The queue entry point: adapts a job to a row and hands it to the batcher. No SQL and no rules
 * of its own; the payload schema comes from the shared queue contract.
 */
export function createEntryProcessor(deps: {
  batcher: EntryBatcher;
  metrics: Pick<WorkerMetrics, 'persisted' | 'duplicate'>;
  instanceId: string;
  logger: Logger;
}) {
  return async (job: Job): Promise<void> => {
    const parsed = entryJobSchema.safeParse(job.data);
    if (!parsed.success) {
      const { field, message } = describeIssue(parsed.error);
      throw new UnrecoverableError(`invalid job payload: ${field}: ${message}`);
    }
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
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && PERMANENT_SQLSTATE.test(code)) {
        throw new UnrecoverableError(`the database refused the entry: ${(error as Error).message}`);
      }
      throw error;
    }
    if (outcome.inserted) {
      deps.metrics.persisted(outcome.queueLatencyMs);
      deps.logger.info(
        { entryId: entry.id, acceptedBy: entry.acceptedBy, persistedBy: deps.instanceId, queueLatencyMs: outcome.queueLatencyMs, attempt: job.attemptsMade + 1 },
        'entry persisted',
      );
    } else {
      // At-least-once delivery: the job ran before (e.g. its worker died before acknowledging).
      deps.metrics.duplicate();
      deps.logger.info({ entryId: entry.id, attempt: job.attemptsMade + 1 }, 'entry already persisted, redelivery ignored');
    }
  };
}
