import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** An Idempotency-Key header: 1 to 128 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * What a retry needs to be answered like the first request: the entry's id and the replica that
 * accepted it (the 202's body), and a fingerprint of what was sent, to tell a retry from a
 * different entry under the same key. Not the entry itself: a retry carries the same author and
 * message (the fingerprint proves it), so the record stays small whatever the message's length.
 */
export interface IdempotencyRecord {
  id: string;
  acceptedBy: string;
  fingerprint: string;
}

/**
 * A hash of what the client sent: 128 bits of SHA-256, as base64url (22 characters). Collisions
 * are out of reach at that length; the full 256 bits would only make every record larger.
 */
export function fingerprintOf(author: string, message: string): string {
  return createHash('sha256').update(author).update('\u0000').update(message).digest().subarray(0, 16).toString('base64url');
}

/**
 * Idempotency records live in Redis, next to the queue, so every replica sees the same ones.
 * The key is hashed: client keys may hold any visible character, Redis key names stay uniform
 * and short. A record is one string of about 80 bytes, "id acceptedBy fingerprint", kept for
 * `ttlSeconds` (docs/guarantees.md#what-stays-in-redis).
 */
export class IdempotencyStore {
  readonly #redis: Redis;
  readonly #ttlSeconds: string;

  constructor(redis: Redis, ttlSeconds: number) {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError('ttlSeconds must be a positive integer');
    this.#redis = redis;
    this.#ttlSeconds = String(ttlSeconds);
  }

  /**
   * Claims `key` for the record in one atomic step (SET NX GET). Returns undefined when the
   * claim is new, or the record that already held the key.
   */
  async claim(key: string, record: IdempotencyRecord): Promise<IdempotencyRecord | undefined> {
    const value = `${record.id} ${record.acceptedBy} ${record.fingerprint}`;
    const previous = (await this.#redis.call('SET', redisKey(key), value, 'NX', 'GET', 'EX', this.#ttlSeconds)) as string | null;
    if (previous === null) return undefined;
    const [id = '', acceptedBy = '', fingerprint = ''] = previous.split(' ');
    return { id, acceptedBy, fingerprint };
  }

  /** Gives `key` its whole expiry again: the retry that used it keeps it for as long as a first request would. */
  async renew(key: string): Promise<void> {
    await this.#redis.expire(redisKey(key), this.#ttlSeconds);
  }
}

function redisKey(key: string): string {
  return `inflow:idem:${createHash('sha256').update(key).digest().subarray(0, 16).toString('base64url')}`;
}
