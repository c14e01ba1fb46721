import { createHash } from 'node:crypto';
import type { EntryJob } from '@inflow/shared';
import type { Redis } from 'ioredis';

/** An Idempotency-Key header: 1 to 128 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

// Long enough for any client's retry loop; short enough that Redis does not keep keys forever.
const TTL_SECONDS = 24 * 3600;

interface IdempotencyRecord {
  entry: EntryJob;
  fingerprint: string;
}

/** A hash of what the client sent, to tell a retry from a different entry under the same key. */
export function fingerprintOf(author: string, message: string): string {
  return createHash('sha256').update(author).update('\u0000').update(message).digest('base64url');
}

/**
 * Idempotency records live in Redis, next to the queue, so every replica sees the same ones.
 * The key is hashed: client keys may hold any visible character, Redis key names stay uniform.
 */
export class IdempotencyStore {
  readonly #redis: Redis;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /**
   * Claims `key` for `entry` in one atomic step (SET NX GET). Returns undefined when the claim
   * is new, or the record that already held the key.
   */
  async claim(key: string, entry: EntryJob, fingerprint: string): Promise<IdempotencyRecord | undefined> {
    const record: IdempotencyRecord = { entry, fingerprint };
    const previous = (await this.#redis.call(
      'SET',
      redisKey(key),
      JSON.stringify(record),
      'NX',
      'GET',
      'EX',
      String(TTL_SECONDS),
    )) as string | null;
    return previous === null ? undefined : (JSON.parse(previous) as IdempotencyRecord);
  }

  /** Gives a key back after its entry could not be enqueued, so a retry is not told "accepted". */
  async release(key: string): Promise<void> {
    await this.#redis.del(redisKey(key));
  }
}

function redisKey(key: string): string {
  return `inflow:idempotency:${createHash('sha256').update(key).digest('hex')}`;
}
