import type { JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { authorSchema, entryIdSchema, messageSchema } from './entry.ts';
import type { RedisConfig } from './config.ts';

/** The one queue the API fills and the worker drains. */
export const ENTRIES_QUEUE = 'entries';
export const PERSIST_ENTRY_JOB = 'persist-entry';

/**
 * The job payload. The worker validates it again: the queue is a boundary, and a job written by
 * an older or newer API must fail loudly rather than write a bad row.
 */
export const entryJobSchema = z.strictObject({
  id: entryIdSchema,
  author: authorSchema,
  message: messageSchema,
  acceptedBy: z.string().min(1).max(64),
  acceptedAt: z.iso.datetime({ offset: true }),
});

export type EntryJob = z.output<typeof entryJobSchema>;

/**
 * How often an entry is tried when persisting it fails for an unknown reason (a bug, not an
 * outage). Attempts are NOT spent while PostgreSQL is unreachable or refuses the worker as
 * configured (a password, read-only, a missing table or privilege: database-errors.ts): the
 * worker then stops taking jobs until the database takes writes
 * (apps/worker/src/entries/database-gate.ts), however long that takes, and an entry the
 * database refuses fails at once. So this budget bounds only the
 * retries of errors nobody anticipated; an entry that exhausts it waits in the failed set for
 * a replay (npm run entries:replay).
 */
export interface EntryRetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Delay before the first retry; it doubles with every attempt. */
  readonly delayMs: number;
}

/** 10 attempts, 0.5 s, 1 s, 2 s, … 128 s apart: about four minutes. */
export const DEFAULT_ENTRY_RETRY: EntryRetryPolicy = Object.freeze({ attempts: 10, delayMs: 500 });

/**
 * Options for every entry job. The entry id is the job id, so adding the same entry twice while
 * its job exists is a no-op in BullMQ; once the job is gone, the entries primary key is the
 * guard (the worker inserts with ON CONFLICT DO NOTHING).
 */
export function entryJobOptions(entryId: string, retry: EntryRetryPolicy = DEFAULT_ENTRY_RETRY): JobsOptions {
  return {
    jobId: entryId,
    attempts: retry.attempts,
    // https://docs.bullmq.io/guide/retrying-failing-jobs
    backoff: { type: 'exponential', delay: retry.delayMs },
    // The row in PostgreSQL is the record of a persisted entry: keeping completed jobs would
    // only grow Redis (which runs with noeviction).
    removeOnComplete: true,
    // An entry that failed for good was accepted (202) and never persisted: its job is the only
    // copy, so it stays in the failed set, with its reason, until it is replayed. Never age or
    // count it out. https://docs.bullmq.io/guide/queues/auto-removal-of-jobs
    removeOnFail: false,
  };
}

/**
 * Whether an error means that the server this client talks to is no longer the primary: a
 * primary demoted by a failover keeps its connections and answers every write with READONLY.
 * ioredis then drops the connection and asks the sentinels again (2: and resends the command
 * that failed, where the client has an offline queue; the producer has none, so its command
 * fails and the request is answered 503).
 */
export function isDemotedPrimaryError(error: Error): boolean {
  return error.message.startsWith('READONLY');
}

/**
 * Errors by which a Redis says it takes no writes for now, not that anything is wrong with the
 * command: NOREPLICAS (the primary has no replica in sync: min-replicas-to-write, the replicated
 * layout), READONLY (a demoted primary, above) and MASTERDOWN (a replica that lost its primary).
 */
export function isRedisWriteRefusal(error: Error): boolean {
  return /^(NOREPLICAS|READONLY|MASTERDOWN) /.test(error.message);
}

/**
 * The one set of ioredis options every Redis client of the apps starts from: the producer, the
 * worker's and the API's event stream (BullMQ's QueueEvents). With sentinels (docs/guarantees.md),
 * the client asks them for the primary, and `failoverDetector` subscribes to their +switch-master
 * so a failover moves the client at once instead of when its socket to the old primary breaks;
 * READONLY (a demoted primary) reconnects too. TCP keep-alive finds a connection to a machine
 * that vanished without closing it, as soon as the kernel's keep-alive timing says (about 11
 * minutes by default; the Swarm stack shortens it: deploy/swarm/README.md#dead-peers-why-the-apps-recover-by-themselves).
 *
 * `use`: 'producer' fails fast (no offline queue, one retry: a command while Redis is away is a
 * 503 at once, not a request held until a reconnect;
 * https://docs.bullmq.io/patterns/failing-fast-when-redis-is-down); 'consumer' waits and
 * retries forever (BullMQ's blocking commands need maxRetriesPerRequest null, and the endless
 * reconnects are what let a worker resume by itself; https://docs.bullmq.io/guide/going-to-production).
 */
export function redisOptions(redis: RedisConfig, use: 'producer' | 'consumer') {
  // Not annotated as ioredis's RedisOptions: its optional fields allow `undefined`, which BullMQ's
  // connection type (QueueEvents) does not take; an object that has no such fields suits both.
  const where =
    redis.mode === 'sentinel'
      ? {
          sentinels: redis.sentinels.map(({ host, port }) => ({ host, port })),
          name: redis.masterName,
          failoverDetector: true,
          // ioredis waits for a sentinel's answer without a deadline by default: one sentinel
          // that takes the connection and never answers (paused, or its machine lost after the
          // handshake) would hold every reconnect for good. With one, it asks the next.
          sentinelCommandTimeout: 2_000,
        }
      : { host: redis.host, port: redis.port };
  return {
    ...where,
    connectTimeout: 2_000,
    keepAlive: 10_000,
    reconnectOnError: (error: Error) => (isDemotedPrimaryError(error) ? (2 as const) : false),
    ...(use === 'producer' ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 } : { maxRetriesPerRequest: null }),
  };
}

/**
 * An ioredis client that never stays disconnected unless it was closed on purpose. ioredis ends a
 * client for good (status "end", no more reconnects) when a connection attempt fails with an
 * error instead of a retry; with sentinels that happens when a failover is announced while the
 * client is still asking the sentinels (the failover detector closes the attempt: "Connection is
 * closed."). Seen here: after a failover the worker's main connection ended, its stalled check
 * hung on it, and its jobs stayed active forever. So a client that ends without quit() or
 * disconnect() connects again a second later. BullMQ's duplicates of it (the worker's blocking
 * connection) are made the same way.
 */
export class ResilientRedis extends Redis {
  #closing = false;

  constructor(options: RedisOptions) {
    super(options);
    this.on('end', () => {
      if (this.#closing) return;
      setTimeout(() => {
        if (!this.#closing && this.status === 'end') this.connect().catch(() => undefined);
      }, 1_000).unref();
    });
  }

  override duplicate(override?: Partial<RedisOptions>): ResilientRedis {
    return new ResilientRedis({ ...this.options, ...override });
  }

  override quit(callback?: Parameters<Redis['quit']>[0]): ReturnType<Redis['quit']> {
    this.#closing = true;
    return super.quit(callback);
  }

  override disconnect(reconnect = false): void {
    // ioredis disconnects with reconnect=true itself (reconnectOnError): that is no closing.
    if (!reconnect) this.#closing = true;
    super.disconnect(reconnect);
  }
}

/** The API's Redis client, shared by its BullMQ Queue and its idempotency records ('producer' above). */
export function createProducerRedis(redis: RedisConfig): Redis {
  return new ResilientRedis(redisOptions(redis, 'producer'));
}

/**
 * A consumer's Redis client ('consumer' above): the worker's (BullMQ duplicates it for its
 * blocking connection) and the API's event stream (QueueEvents, which blocks in XREAD on it).
 */
export function createWorkerRedis(redis: RedisConfig): Redis {
  return new ResilientRedis(redisOptions(redis, 'consumer'));
}
