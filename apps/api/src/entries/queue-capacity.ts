import type { Redis } from 'ioredis';

// How long one reading of Redis's memory is trusted. At the highest accept rate
// (docs/performance.md) a second of entries is a few MiB, far inside the headroom left above the limit,
// so one INFO per second per replica is enough and keeps INFO off the hot path.
const READING_TTL_MS = 1_000;

/**
 * Whether Redis has room for more entries. Redis runs with maxmemory and noeviction: at the
 * limit it refuses every write, and BullMQ's scripts are writes, the worker's included. A queue
 * filled to maxmemory could then never drain, so the API stops accepting at `limitPercent` of
 * maxmemory and leaves the rest to the worker (at maxmemory the worker cannot even move a job
 * to active).
 */
export class QueueCapacity {
  readonly #redis: Redis;
  readonly #limitPercent: number;
  #reading: { at: number; room: Promise<boolean> } | undefined;

  constructor(redis: Redis, limitPercent: number) {
    if (!(limitPercent > 0 && limitPercent < 100)) throw new RangeError('limitPercent must be between 0 and 100');
    this.#redis = redis;
    this.#limitPercent = limitPercent;
  }

  /** Resolves true while Redis is below the limit (or has no maxmemory); rejects when Redis does not answer. */
  hasRoom(): Promise<boolean> {
    const now = Date.now();
    if (this.#reading === undefined || now - this.#reading.at >= READING_TTL_MS) {
      const room = this.#read();
      this.#reading = { at: now, room };
      // A failed reading is not cached: the next request asks again.
      room.catch(() => {
        if (this.#reading?.room === room) this.#reading = undefined;
      });
    }
    return this.#reading.room;
  }

  async #read(): Promise<boolean> {
    const info = await this.#redis.info('memory');
    const used = field(info, 'used_memory');
    const max = field(info, 'maxmemory');
    return max === 0 || used < (max * this.#limitPercent) / 100;
  }
}

function field(info: string, name: string): number {
  const value = new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1];
  if (value === undefined) throw new Error(`Redis INFO memory has no ${name}`);
  return Number(value);
}
