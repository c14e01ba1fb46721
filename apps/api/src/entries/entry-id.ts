import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

// 256 ids' worth of random bytes, drawn from the OS at once.
const POOL_BYTES = 16 * 256;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

function pooledRandom(): Uint8Array {
  if (offset === POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  offset += 16;
  return pool.subarray(offset - 16, offset);
}

/**
 * A new entry id: a UUIDv7, whose leading milliseconds keep the primary key index growing at its
 * right edge. uuid's own v7() asks crypto.getRandomValues for 16 bytes on every call, one trip to
 * the OS per id on the hot path of POST /api/entries; the pool above makes it one per 256 ids.
 * With its own random source, v7() fills the 74 bits after the timestamp at random instead of
 * with a per-process counter (RFC 9562 allows both): ids of one millisecond are unordered among
 * themselves, which nothing relies on.
 */
export function newEntryId(): string {
  return uuidv7({ rng: pooledRandom });
}
