import { DEFAULT_ENTRY_RETRY, ENTRIES_QUEUE, PERSIST_ENTRY_JOB, entryJobOptions, entryJobSchema, type EntryJob, type EntryRetryPolicy } from '@inflow/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * What a job says of its entry. A payload that is not a valid entry (a job added by something
 * other than this API) yields only the fields that are strings; the rest are null.
 */
export interface QueuedEntry {
  author: string | null;
  message: string | null;
  acceptedBy: string | null;
  acceptedAt: string | null;
}

export type QueuedState =
  | { status: 'queued' | 'processing'; entry: QueuedEntry; attemptsMade: number }
  | { status: 'failed'; entry: QueuedEntry; attemptsMade: number; reason: string };

function looseEntry(data: unknown): QueuedEntry {
  const record = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  const text = (key: keyof QueuedEntry) => (typeof record[key] === 'string' ? record[key] : null);
  return { author: text('author'), message: text('message'), acceptedBy: text('acceptedBy'), acceptedAt: text('acceptedAt') };
}

export interface QueueCounts {
  waiting: number;
  active: number;
  /** Waiting for a retry after a failed attempt. */
  delayed: number;
  failed: number;
}

/** The producer side of the entries queue. One per process: connections are not per request. */
export class EntryQueue {
  readonly #queue: Queue<EntryJob>;
  readonly #retry: EntryRetryPolicy;

  /** `redis` stays owned by the caller: closing the queue does not close it. */
  constructor(redis: Redis, onError: (error: Error) => void, retry: EntryRetryPolicy = DEFAULT_ENTRY_RETRY) {
    this.#queue = new Queue<EntryJob>(ENTRIES_QUEUE, { connection: redis });
    this.#retry = retry;
    // Without a listener an 'error' event would throw; connection errors are expected while
    // Redis restarts and are reported through /readyz and the 503s instead.
    this.#queue.on('error', onError);
  }

  /** Resolves once Redis has the job. Adding an id whose job still exists is a no-op. */
  async enqueue(entry: EntryJob): Promise<void> {
    await this.#queue.add(PERSIST_ENTRY_JOB, entry, entryJobOptions(entry.id, this.#retry));
  }

  /** What the queue knows of an entry, or undefined when it holds no job for it. */
  async findState(id: string): Promise<QueuedState | undefined> {
    // The state first, then the job: read the other way round, a job fetched while active and
    // found failed a moment later would be reported failed without its reason (and with the
    // attempts of before). Once the state says failed, the job's hash already holds the reason.
    const state = await this.#queue.getJobState(id);
    const job = await this.#queue.getJob(id);
    if (job === undefined) return undefined;
    // An invalid payload still has a state: the worker fails such a job at once, and that
    // failure is what a client asking about the id must see, not a 404.
    const parsed = entryJobSchema.safeParse(job.data);
    const entry: QueuedEntry = parsed.success ? parsed.data : looseEntry(job.data);
    switch (state) {
      case 'active':
        return { status: 'processing', entry, attemptsMade: job.attemptsMade };
      case 'failed':
        return { status: 'failed', entry, attemptsMade: job.attemptsMade, reason: job.failedReason };
      case 'waiting':
      case 'waiting-children':
      case 'prioritized':
      case 'delayed':
        return { status: 'queued', entry, attemptsMade: job.attemptsMade };
      default:
        // 'completed' (about to be removed) or 'unknown' (removed meanwhile): the row decides.
        return undefined;
    }
  }

  /** How many jobs wait, run, wait for a retry or failed for good. */
  async counts(): Promise<QueueCounts> {
    const counts = await this.#queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
    return {
      waiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0),
      active: counts['active'] ?? 0,
      delayed: counts['delayed'] ?? 0,
      failed: counts['failed'] ?? 0,
    };
  }

  /**
   * How long the oldest job still waiting has waited, in seconds (0 when none waits). BullMQ
   * pushes new jobs on the left of the wait list and takes from the right: the right end is
   * the oldest. Retries waiting in the delayed set are not counted here.
   */
  async oldestWaitingAgeSeconds(now: number = Date.now()): Promise<number> {
    const [oldest] = await this.#queue.getJobs(['wait'], 0, 0, true);
    if (oldest === undefined) return 0;
    return Math.max(0, (now - oldest.timestamp) / 1000);
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}
