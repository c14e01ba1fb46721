import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';

/**
 * Polls `probe` until it returns a truthy value and returns that value; fails with `what` in the
 * message after `timeoutMs`. Errors thrown by the probe end the wait at once.
 */
export async function waitFor<T>(
  probe: () => Promise<T | false | undefined | null> | T | false | undefined | null,
  options: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== false && value !== undefined && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await sleep(options.intervalMs ?? 50);
  }
}

/**
 * The jobs of a BullMQ queue that may still run: waiting, paused, prioritized, active, delayed
 * (a retry's backoff) or waiting for children. Read straight from Redis, so it works whether or
 * not an API runs, in one MULTI: a job that moves from one of these lists to another while they
 * are read is counted once, never missed.
 */
export async function unfinishedJobs(redis: Redis, queue = 'entries'): Promise<number> {
  const key = (name: string) => `bull:${queue}:${name}`;
  const multi = redis.multi();
  for (const list of ['wait', 'paused', 'active']) multi.llen(key(list));
  for (const set of ['prioritized', 'delayed', 'waiting-children']) multi.zcard(key(set));
  const results = await multi.exec();
  if (results === null) throw new Error(`reading the ${queue} queue was aborted`);
  let total = 0;
  for (const [error, count] of results) {
    if (error !== null) throw error;
    total += Number(count);
  }
  return total;
}

/**
 * Waits until no job of the queue is left to run: every job added before the call has then
 * completed (its row committed) or failed for good. The positive signal that lets a test assert
 * that something did not happen (a duplicate row, a refused entry written after all).
 */
export async function waitForQueueDrained(redis: Redis, options: { timeoutMs: number; queue?: string }): Promise<void> {
  const queue = options.queue ?? 'entries';
  await waitFor(async () => (await unfinishedJobs(redis, queue)) === 0, {
    timeoutMs: options.timeoutMs,
    what: `the ${queue} queue to have no job left to run`,
    intervalMs: 100,
  });
}
