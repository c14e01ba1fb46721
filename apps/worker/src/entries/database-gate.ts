import type { Logger } from '@inflow/shared';

export interface DatabaseOutage {
  since: Date;
  /** The error that closed the gate, for the logs and /readyz. */
  reason: string;
}

export interface DatabaseGateOptions {
  /** Resolves when PostgreSQL answers a query. */
  ping: () => Promise<void>;
  /** How often the closed gate asks PostgreSQL whether it is back. */
  probeIntervalMs: number;
  logger: Logger;
}

/**
 * Whether PostgreSQL can take the worker's writes. A write that fails because the database is
 * out of reach closes the gate; while it is closed the consumer takes no job (it hands each one
 * back to the queue with BullMQ's rate limit, see entries.consumer.ts) and the gate pings the
 * database every `probeIntervalMs` until it answers, then opens by itself. No attempt is spent
 * meanwhile, so an outage of any length ends with every entry persisted and none failed.
 */
export class DatabaseGate {
  readonly #options: DatabaseGateOptions;
  #outage: DatabaseOutage | undefined;
  #probe: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: DatabaseGateOptions) {
    if (!(options.probeIntervalMs > 0)) throw new RangeError('probeIntervalMs must be positive');
    this.#options = options;
  }

  get open(): boolean {
    return this.#outage === undefined;
  }

  /** The outage the gate is waiting out, or undefined while it is open. */
  get outage(): DatabaseOutage | undefined {
    return this.#outage;
  }

  /** Closes the gate after `error` (a no-op when it is closed already) and starts probing. */
  close(error: unknown): void {
    if (this.#outage !== undefined || this.#stopped) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.#outage = { since: new Date(), reason };
    this.#options.logger.warn({ err: error }, 'database unavailable: not taking jobs until PostgreSQL answers');
    this.#scheduleProbe();
  }

  /** Stops probing for good (shutdown). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#probe);
  }

  #scheduleProbe(): void {
    this.#probe = setTimeout(() => {
      void this.#options.ping().then(
        () => {
          const outage = this.#outage;
          this.#outage = undefined;
          if (outage !== undefined) {
            this.#options.logger.info({ downForMs: Date.now() - outage.since.getTime() }, 'database answers again: taking jobs');
          }
        },
        () => {
          if (!this.#stopped) this.#scheduleProbe();
        },
      );
    }, this.#options.probeIntervalMs);
    this.#probe.unref();
  }
}
