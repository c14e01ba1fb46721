import { ENTRIES_QUEUE, PERSIST_ENTRY_JOB, entryJobOptions, entryJobSchema, type EntryJob } from '@inflow/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export type QueuedState =
  | { status: 'queued' | 'processing'; entry: EntryJob; attemptsMade: number }
  | { status: 'failed'; entry: EntryJob; attemptsMade: number; reason: string };

/** The producer side of the entries queue. One per process: connections are not per request. */
export class EntryQueue {
  readonly #queue: Queue<EntryJob>;

  /** `redis` stays owned by the caller: closing the queue does not close it. */
  constructor(redis: Redis, onError: (error: Error) => void) {
    this.#queue = new Queue<EntryJob>(ENTRIES_QUEUE, { connection: redis });
    // Without a listener an 'error' event would throw; connection errors are expected while
    // Redis restarts and are reported through /readyz and the 503s instead.
    this.#queue.on('error', onError);
  }

  /** Resolves once Redis has the job. Adding an id whose job still exists is a no-op. */
  async enqueue(entry: EntryJob): Promise<void> {
    await this.#queue.add(PERSIST_ENTRY_JOB, entry, entryJobOptions(entry.id));
  }

  /** What the queue knows of an entry, or undefined when it holds no job for it. */
  async findState(id: string): Promise<QueuedState | undefined> {
    const job = await this.#queue.getJob(id);
    if (job === undefined) return undefined;
    const state = await job.getState();
    const parsed = entryJobSchema.safeParse(job.data);
    if (!parsed.success) return undefined;
    const entry = parsed.data;
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

  async close(): Promise<void> {
    await this.#queue.close();
  }
}
