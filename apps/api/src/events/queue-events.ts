import { ENTRIES_QUEUE, redisOptions, withTimeout, type Logger, type RedisConfig } from '@inflow/shared';
import { QueueEvents } from 'bullmq';
import type { EntriesRepository } from '../entries/entries.repository.ts';
import { toEntry } from '../entries/entries.repository.ts';
import type { EntryQueue, PendingEntry } from '../entries/entries.queue.ts';
import { publicFailedReason } from '../entries/failed-reason.ts';
import type { EntryUpdate, StatusChange, Subscription } from './entry-events.ts';

/**
 * Listens to the entries queue's events (a Redis stream every replica reads for itself, so an
 * entry accepted by web2 shows on a page served by web1) and reports each as a status change.
 *
 * QueueEvents needs a connection of its own (it blocks in XREAD); it gets one made from the
 * configuration with the apps' one set of options (redisOptions: unlimited retries, so it resumes
 * by itself after Redis restarts or fails over).
 */
export async function subscribeToQueueEvents(options: {
  redis: RedisConfig;
  /** The API's producer, for one read of the stream's current end. */
  queue: EntryQueue;
  logger: Logger;
  onChange: (id: string, change: StatusChange) => void;
}): Promise<Subscription> {
  // QueueEvents starts at "$" by default, and events added before its first XREAD are lost
  // (bullmq#2874). Starting from the id of the newest event now closes that gap.
  let lastEventId = '$';
  try {
    lastEventId = await withTimeout(options.queue.newestEventId(), 2_000, 'Redis did not answer');
  } catch (error) {
    options.logger.warn({ err: error }, 'could not read the end of the events stream; listening from now');
  }

  const queueEvents = new QueueEvents(ENTRIES_QUEUE, {
    connection: redisOptions(options.redis, 'consumer'),
    lastEventId,
  });
  queueEvents.on('error', (error) => {
    options.logger.warn({ err: error }, 'queue events error');
  });

  const queued = ({ jobId }: { jobId: string }) => {
    options.onChange(jobId, { status: 'queued' });
  };
  // "delayed" is a retry waiting for its backoff; "stalled" a job whose worker died, back in
  // the queue. Both are queued again as far as a person is concerned.
  queueEvents.on('added', queued);
  queueEvents.on('waiting', queued);
  queueEvents.on('delayed', queued);
  queueEvents.on('stalled', queued);
  queueEvents.on('active', ({ jobId }) => {
    options.onChange(jobId, { status: 'processing' });
  });
  queueEvents.on('completed', ({ jobId }) => {
    options.onChange(jobId, { status: 'persisted' });
  });
  // Emitted only once a job has no attempts left (a retry is "delayed" instead). The raw reason
  // may hold a database's or a socket's words; the stream is public (failed-reason.ts).
  queueEvents.on('failed', ({ jobId, failedReason }) => {
    options.onChange(jobId, { status: 'failed', failedReason: publicFailedReason(failedReason) });
  });

  return {
    async close() {
      await withTimeout(queueEvents.close(), 2_000, 'queue events did not close');
    },
  };
}

/**
 * Fills in one flush of changes: persisted entries from PostgreSQL (one query, with the worker
 * that wrote them), the others from their jobs (EntryQueue.findMany, one round trip). Reads that
 * fail leave the statuses alone; the page reconciles.
 */
export function describeChanges(deps: { repository: EntriesRepository; queue: EntryQueue; logger: Logger }) {
  return async (changes: ReadonlyMap<string, StatusChange>): Promise<EntryUpdate[]> => {
    const persisted: string[] = [];
    const pending: string[] = [];
    for (const [id, change] of changes) (change.status === 'persisted' ? persisted : pending).push(id);

    const [rows, jobs] = await Promise.all([
      persisted.length === 0
        ? []
        : deps.repository.findByIds(persisted).catch((error: unknown) => {
            deps.logger.warn({ err: error }, 'could not read persisted entries for the event stream');
            return [];
          }),
      deps.queue.findMany(pending).catch((error: unknown) => {
        deps.logger.warn({ err: error }, 'could not read job data for the event stream');
        return new Map<string, PendingEntry>();
      }),
    ]);

    const known = new Map<string, Omit<EntryUpdate, 'status'>>(jobs);
    for (const row of rows) known.set(row.id, toEntry(row));
    return [...changes].map(([id, change]) => ({ ...known.get(id), id, ...change }));
  };
}
