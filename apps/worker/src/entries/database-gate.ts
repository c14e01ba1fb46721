import { classifyDatabaseError, describeCheckFailure, describeDatabaseRefusal, type DatabaseRefusal, type Logger } from '@inflow/shared';

export interface DatabaseOutage {
  since: Date;
  /** `unavailable` (out of reach, usually ends by itself) or `misconfigured` (a person must act). */
  kind: 'unavailable' | 'misconfigured';
  /**
   * Why, in words fit for /readyz (describeCheckFailure: no address, role or table name); the
   * error itself is in the log. Follows the latest probe: an outage can turn into a refusal.
   */
  reason: string;
  /** What the database refuses, while `kind` is `misconfigured`. */
  refusal: DatabaseRefusal | undefined;
}

export interface DatabaseGateOptions {
  /**
   * Resolves when PostgreSQL takes the worker's writes: it must fail on everything a write would
   * fail on for the database's sake (read-only, a refused login, a missing table or privilege),
   * so a `select 1` is not enough (entries.repository.ts, probeWrite).
   */
  probe: () => Promise<void>;
  /** How often the closed gate asks PostgreSQL whether it takes writes again. */
  probeIntervalMs: number;
  logger: Logger;
}

/**
 * Whether PostgreSQL can take the worker's writes. A write that fails for the database's sake
 * (out of reach, or refusing the worker as configured: see shared's database-errors.ts) closes
 * the gate; while it is closed the consumer takes no job (it hands each one back to the queue
 * with BullMQ's rate limit, see entries.consumer.ts) and the gate probes the database every
 * `probeIntervalMs` until it takes writes, then opens by itself. No attempt is spent meanwhile,
 * so an outage or a misconfiguration of any length ends with every entry persisted and none
 * failed.
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

  /**
   * Closes the gate after `error`, one of the database's errors (classifyDatabaseError:
   * `unavailable` or `misconfigured`), and starts probing. A no-op while it is closed already.
   */
  close(error: unknown): void {
    if (this.#outage !== undefined || this.#stopped) return;
    this.#outage = { since: new Date(), ...describe(error) };
    const { kind, reason } = this.#outage;
    this.#options.logger.warn(
      { err: error, kind, reason },
      kind === 'misconfigured'
        ? "database refuses the worker's writes: not taking jobs until PostgreSQL takes them"
        : 'database unavailable: not taking jobs until PostgreSQL answers',
    );
    this.#scheduleProbe();
  }

  /** Stops probing for good (shutdown). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#probe);
  }

  #scheduleProbe(): void {
    this.#probe = setTimeout(() => {
      void this.#options.probe().then(
        () => {
          this.#reopen('database answers again: taking jobs');
        },
        (error: unknown) => {
          if (this.#stopped) return;
          const kind = classifyDatabaseError(error);
          if (kind !== 'unavailable' && kind !== 'misconfigured') {
            // Not the database's error: the gate has nothing to wait for. The jobs run again and
            // their bounded attempts decide, as for any unknown error.
            this.#options.logger.error({ err: error }, 'the database probe failed with an error that is not an outage');
            this.#reopen('database probe error is not an outage: taking jobs');
            return;
          }
          this.#follow(error);
          this.#scheduleProbe();
        },
      );
    }, this.#options.probeIntervalMs);
    this.#probe.unref();
  }

  /** Keeps the outage's start, takes the latest probe's reason; logs when the reason changes. */
  #follow(error: unknown): void {
    const outage = this.#outage;
    if (outage === undefined) return;
    const next = describe(error);
    if (next.reason === outage.reason) return;
    this.#outage = { since: outage.since, ...next };
    this.#options.logger.warn({ err: error, kind: next.kind, reason: next.reason, previous: outage.reason }, 'database still not taking writes, for another reason');
  }

  #reopen(message: string): void {
    const outage = this.#outage;
    this.#outage = undefined;
    if (outage !== undefined) this.#options.logger.info({ downForMs: Date.now() - outage.since.getTime(), kind: outage.kind }, message);
  }
}

function describe(error: unknown): Omit<DatabaseOutage, 'since'> {
  const refusal = describeDatabaseRefusal(error);
  if (refusal !== undefined) return { kind: 'misconfigured', reason: describeCheckFailure(error), refusal };
  // pg's own errors ("Connection terminated unexpectedly") carry no code to describe them by.
  const described = describeCheckFailure(error);
  return { kind: 'unavailable', reason: described.endsWith('(see the log)') ? 'PostgreSQL is out of reach (see the log)' : described, refusal };
}
