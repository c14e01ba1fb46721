import { databaseUnavailable, describeIssue, entryIdSchema, HttpError, idempotencyKeyReused, invalidField, isDatabaseUnavailable, newEntrySchema, notFound, queueFull, queueUnavailable, withTimeout, type Entry, type EntryJob } from '@inflow/shared';
import { decodeCursor, encodeCursor, type Cursor } from './cursor.ts';
import { newEntryId } from './entry-id.ts';
import type { EntriesRepository } from './entries.repository.ts';
import { toEntry } from './entries.repository.ts';
import type { EntryQueue, PendingEntry } from './entries.queue.ts';
import { publicFailedReason } from './failed-reason.ts';
import { fingerprintOf, IDEMPOTENCY_KEY, type IdempotencyStore } from './idempotency.ts';
import type { QueueCapacity } from './queue-capacity.ts';
import type { ReplicaAcks } from './replica-acks.ts';

const PAGE_LIMITS = Object.freeze({ default: 50, max: 200 });

// An add that has not reached Redis by then is answered 503; the client may retry with its
// Idempotency-Key without risking a duplicate.
const ENQUEUE_TIMEOUT_MS = 3_000;

export type EntryStatus =
  | ({ status: 'persisted' } & Entry)
  | ({ status: 'queued' | 'processing' | 'failed' } & PendingEntry & { attemptsMade: number; failedReason?: string });

export interface Accepted {
  entry: EntryJob;
  /** True when an Idempotency-Key matched an earlier request: nothing new was enqueued. */
  replayed: boolean;
}

export interface Page {
  entries: Entry[];
  next: string | null;
}

/** The entries use cases. Routes adapt HTTP to these calls; nothing here knows about Express. */
export class EntriesService {
  readonly #repository: EntriesRepository;
  readonly #queue: EntryQueue;
  readonly #idempotency: IdempotencyStore;
  readonly #capacity: QueueCapacity;
  readonly #instanceId: string;
  readonly #replicaAcks: ReplicaAcks | undefined;

  constructor(deps: {
    repository: EntriesRepository;
    queue: EntryQueue;
    idempotency: IdempotencyStore;
    capacity: QueueCapacity;
    instanceId: string;
    /** With REDIS_REPLICA_ACKS > 0: an entry is accepted once that many replicas hold it. */
    replicaAcks?: ReplicaAcks | undefined;
  }) {
    this.#repository = deps.repository;
    this.#queue = deps.queue;
    this.#idempotency = deps.idempotency;
    this.#capacity = deps.capacity;
    this.#instanceId = deps.instanceId;
    this.#replicaAcks = deps.replicaAcks;
  }

  /**
   * Validates and enqueues an entry. Resolves only once Redis holds the job (and, with replica
   * acks, once enough replicas hold it too).
   */
  async accept(body: unknown, idempotencyKey: string | undefined): Promise<Accepted> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw invalidField('Idempotency-Key', 'Idempotency-Key must be 1 to 128 visible ASCII characters');
    }
    const parsed = newEntrySchema.safeParse(body);
    if (!parsed.success) {
      const { field, message } = describeIssue(parsed.error);
      throw invalidField(field, message);
    }
    const entry: EntryJob = {
      id: newEntryId(),
      author: parsed.data.author,
      message: parsed.data.message,
      acceptedBy: this.#instanceId,
      acceptedAt: new Date().toISOString(),
    };

    // Before anything is written: a full queue takes no new entry, and no idempotency record.
    if (!(await this.#redisCall(() => this.#capacity.hasRoom()))) {
      throw queueFull();
    }

    if (idempotencyKey === undefined) {
      await this.#enqueue(entry);
      return { entry, replayed: false };
    }

    const fingerprint = fingerprintOf(entry.author, entry.message);
    const earlier = await this.#redisCall(() =>
      this.#idempotency.claim(idempotencyKey, { id: entry.id, acceptedBy: entry.acceptedBy, fingerprint }),
    );
    if (earlier !== undefined) {
      if (earlier.fingerprint !== fingerprint) throw idempotencyKeyReused();
      // The same fingerprint: this retry carries the first request's author and message.
      const first: EntryJob = { ...entry, id: earlier.id, acceptedBy: earlier.acceptedBy };
      // The first request may have claimed the key and then failed to enqueue (Redis died in
      // between). Enqueue again unless the row exists: the same job id makes it a no-op while
      // the job lives (its data, acceptedAt included, stays the first's), and the primary key
      // guards the row after that. Renewing the key after it is a write of this connection
      // whatever the enqueue wrote, so the replicas' confirmation (WAIT) covers the first
      // request's job too.
      if (!(await this.#isPersisted(first.id))) {
        await this.#enqueue(first, () => this.#idempotency.renew(idempotencyKey));
      }
      return { entry: first, replayed: true };
    }

    // When this fails (503), the key stays claimed: whether Redis took the job is not known (a
    // deadline passed, a connection broke mid-command, the replicas did not confirm), and the
    // client's retry with the key must find this entry, not make a second. The retry enqueues it
    // again unless its row exists (above), and answers 202 only once that worked.
    await this.#enqueue(entry);
    return { entry, replayed: false };
  }

  async get(id: string): Promise<EntryStatus> {
    if (!entryIdSchema.safeParse(id).success) throw invalidField('id', 'id must be a UUID');
    const row = await this.#dbCall(() => this.#repository.findById(id));
    if (row !== undefined) return { status: 'persisted', ...toEntry(row) };

    const queued = await this.#redisCall(() => this.#queue.findState(id));
    if (queued === undefined) {
      // The job may have completed (and been removed) between the two reads.
      const late = await this.#dbCall(() => this.#repository.findById(id));
      if (late !== undefined) return { status: 'persisted', ...toEntry(late) };
      throw notFound(`no entry with id ${id}`);
    }
    return {
      status: queued.status,
      ...queued.entry,
      attemptsMade: queued.attemptsMade,
      ...(queued.status === 'failed' ? { failedReason: publicFailedReason(queued.reason) } : {}),
    };
  }

  async list(query: { limit?: unknown; before?: unknown }): Promise<Page> {
    const limit = parseLimit(query.limit);
    let before: Cursor | undefined;
    if (query.before !== undefined) {
      before = typeof query.before === 'string' ? decodeCursor(query.before) : undefined;
      if (before === undefined) throw invalidField('before', 'before must be a cursor returned as "next" by this API');
    }
    // One extra row tells whether another page follows.
    const rows = await this.#dbCall(() => this.#repository.listNewestFirst(limit + 1, before));
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      entries: page.map(toEntry),
      next: rows.length > limit && last !== undefined ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
    };
  }

  /**
   * Whether the entry's row exists. While PostgreSQL is unreachable the answer is "no": the
   * caller then enqueues again, which is harmless (see above), so a retried POST is accepted
   * during a database outage like a first one.
   */
  async #isPersisted(id: string): Promise<boolean> {
    try {
      return await this.#repository.exists(id);
    } catch (error) {
      if (isDatabaseUnavailable(error)) return false;
      throw error;
    }
  }

  /**
   * With replica acks, a write the replicas did not confirm is a 503 queue_unavailable: the
   * entry may be in the queue or not, and a retry with the same Idempotency-Key is safe
   * (docs/api.md). `thenWrite` runs after the enqueue, on the same connection, before the WAIT.
   */
  async #enqueue(entry: EntryJob, thenWrite?: () => Promise<void>): Promise<void> {
    const write = () =>
      withTimeout(
        (async () => {
          await this.#queue.enqueue(entry);
          await thenWrite?.();
        })(),
        ENQUEUE_TIMEOUT_MS,
        'Redis did not take the job',
      );
    const acks = this.#replicaAcks;
    await this.#redisCall(() => (acks === undefined ? write() : acks.confirmed(write)));
  }

  async #redisCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw queueUnavailable(error);
    }
  }

  async #dbCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof HttpError || !isDatabaseUnavailable(error)) throw error;
      throw databaseUnavailable(error);
    }
  }
}

function parseLimit(raw: unknown): number {
  if (raw === undefined) return PAGE_LIMITS.default;
  const value = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 1 && value <= PAGE_LIMITS.max)) {
    throw invalidField('limit', `limit must be an integer from 1 to ${PAGE_LIMITS.max}`);
  }
  return value;
}
