import { isRedisWriteRefusal, type Logger } from '@inflow/shared';

/**
 * While Redis refuses writes the worker takes no job: BullMQ's fetch is a write, refused, and
 * BullMQ tries again every ~100 ms. A job already running cannot be completed (also a write);
 * its lock lapses and the stalled check puts it back once Redis takes writes again, without
 * spending an attempt (docs/guarantees.md). What is left is the log: one line when the refusals
 * start and one when Redis takes the worker's writes again, instead of ten a second.
 */
export class RedisRefusals {
  readonly #logger: Logger;
  #since: number | undefined;
  #count = 0;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** True when `error` is a refusal (logged once per episode); false for any other error. */
  refused(error: Error): boolean {
    if (!isRedisWriteRefusal(error)) return false;
    this.#count += 1;
    if (this.#since === undefined) {
      this.#since = Date.now();
      this.#logger.warn({ err: error }, 'Redis refuses writes: not taking jobs until it takes them again');
    }
    return true;
  }

  /**
   * Redis took a write of the worker's (a job became active): ends an episode. BullMQ says nothing
   * when a fetch succeeds and finds no job, so with an empty queue the episode ends at the next
   * job: the line says when jobs flow again, and refusedForMs includes the idle time.
   */
  tookWrite(): void {
    if (this.#since === undefined) return;
    this.#logger.info({ refusedForMs: Date.now() - this.#since, refusals: this.#count }, 'Redis takes writes again: taking jobs');
    this.#since = undefined;
    this.#count = 0;
  }
}
