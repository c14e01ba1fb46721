import { DEFAULT_ENTRY_RETRY, ENTRIES_QUEUE, PERSIST_ENTRY_JOB, entryJobOptions, withTimeout, type EntryJob, type EntryRetryPolicy } from '@inflow/shared';
import { Queue, QueueKeys } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AckChannel } from './replica-acks.ts';

/**
 * An entry as its job tells it, shaped like a persisted one (shared Entry) so that a client
 * reads both alike: what the API accepted, with the fields only a row has still null. A payload
 * that is not a valid entry (a job added by something other than this API) yields only the
 * fields that are strings; the rest are null.
 */
export interface PendingEntry {
  id: string;
  author: string | null;
  message: string | null;
  acceptedBy: string | null;
  persistedBy: null;
  createdAt: string | null;
  persistedAt: null;
}

export type QueuedState =
  | { status: 'queued' | 'processing'; entry: PendingEntry; attemptsMade: number }
  | { status: 'failed'; entry: PendingEntry; attemptsMade: number; reason: string };

/**
 * The one job-to-entry view: findState and findMany both read a job's data through it. Field by
 * field rather than through entryJobSchema, so that a payload that is not a valid entry still
 * shows what it has: its job has a state a client may ask about (the worker fails it at once).
 */
function pendingEntry(id: string, data: unknown): PendingEntry {
  const record = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  const text = (key: keyof EntryJob) => (typeof record[key] === 'string' ? record[key] : null);
  return { id, author: text('author'), message: text('message'), acceptedBy: text('acceptedBy'), persistedBy: null, createdAt: text('acceptedAt'), persistedAt: null };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface QueueCounts {
  waiting: number;
  active: number;
  /** Waiting for a retry after a failed attempt. */
  delayed: number;
  failed: number;
}

/**
 * The producer side of the entries queue, and the only module that knows how BullMQ keeps it in
 * Redis. One per process: connections are not per request.
 */
export class EntryQueue implements AckChannel {
  readonly #queue: Queue<EntryJob>;
  readonly #redis: Redis;
  readonly #retry: EntryRetryPolicy;
  readonly #keys = new QueueKeys();
  #generation = 0;

  /** `redis` stays owned by the caller: closing the queue does not close it. */
  constructor(redis: Redis, onError: (error: Error) => void, retry: EntryRetryPolicy = DEFAULT_ENTRY_RETRY) {
    this.#queue = new Queue<EntryJob>(ENTRIES_QUEUE, { connection: redis });
    this.#redis = redis;
    this.#retry = retry;
    // Without a listener an 'error' event would throw; connection errors are expected while
    // Redis restarts and are reported through /readyz and the 503s instead.
    this.#queue.on('error', onError);
    // Every (re)connection is a new connection for WAIT (replica-acks.ts).
    redis.on('ready', () => {
      this.#generation += 1;
    });
  }

  /**
   * Redis WAIT on the producer connection, which BullMQ's Queue sends its commands on (it uses a
   * client it is given as it is, without duplicating it; test/replica-acks.test.ts checks).
   * The deadline is only for a Redis that does not answer at all: WAIT itself returns after
   * `timeoutMs` with the replicas it has.
   */
  async waitForReplicas(numReplicas: number, timeoutMs: number): Promise<number> {
    return withTimeout(this.#redis.wait(numReplicas, timeoutMs), timeoutMs + 2_000, 'Redis did not answer WAIT');
  }

  connectionGeneration(): number {
    return this.#generation;
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
    const entry = pendingEntry(id, job.data);
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

  /**
   * The entries of those ids that have a job, by id, in one round trip: each job's data field
   * (BullMQ keeps a job as a hash under its key) through one pipeline. For the event stream,
   * whose batches are up to a hundred ids; the job's state is not read.
   */
  async findMany(ids: readonly string[]): Promise<Map<string, PendingEntry>> {
    const found = new Map<string, PendingEntry>();
    if (ids.length === 0) return found;
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hget(this.#keys.toKey(ENTRIES_QUEUE, id), 'data');
    const results = (await withTimeout(pipeline.exec(), 2_000, 'Redis did not answer')) ?? [];
    results.forEach(([error, data], index) => {
      const id = ids[index];
      if (id !== undefined && error === null && typeof data === 'string') found.set(id, pendingEntry(id, parseJson(data)));
    });
    return found;
  }

  /** The id of the newest event in the queue's event stream, "0-0" when it has none. */
  async newestEventId(): Promise<string> {
    const [newest] = await this.#redis.xrevrange(this.#keys.toKey(ENTRIES_QUEUE, 'events'), '+', '-', 'COUNT', 1);
    return newest?.[0] ?? '0-0';
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
